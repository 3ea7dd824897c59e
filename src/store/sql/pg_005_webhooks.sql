-- Webhooks (docs/extensions.md, "Webhooks"), as sqlite_005: a key's
-- endpoints and the outbox of their deliveries, written by a trigger in
-- the transaction of the status change; a NOTIFY on paddock_hooks wakes
-- the deliverers of every node.
CREATE TABLE webhooks (
 webhook_id text PRIMARY KEY,
 key_id text NOT NULL,
 url text NOT NULL,
 events integer NOT NULL,
 secret text NOT NULL,
 created_ms bigint NOT NULL,
 disabled_ms bigint NOT NULL DEFAULT 0);
CREATE INDEX webhooks_key ON webhooks (key_id);
CREATE TABLE deliveries (
 seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
 delivery_id text NOT NULL UNIQUE,
 webhook_id text NOT NULL,
 task_id text NOT NULL,
 event text NOT NULL,
 state integer NOT NULL DEFAULT 0,
 attempts integer NOT NULL DEFAULT 0,
 created_ms bigint NOT NULL,
 next_ms bigint NOT NULL,
 updated_ms bigint NOT NULL,
 lease_owner text,
 lease_until bigint NOT NULL DEFAULT 0,
 code integer NOT NULL DEFAULT 0,
 error text NOT NULL DEFAULT '',
 ts bigint NOT NULL DEFAULT 0,
 body text);
CREATE INDEX deliveries_due ON deliveries (next_ms) WHERE state = 0;
CREATE INDEX deliveries_hook ON deliveries (webhook_id, seq);
CREATE INDEX deliveries_done ON deliveries (updated_ms) WHERE state <> 0;
CREATE FUNCTION paddock_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
 bit integer;
 now_ms bigint;
BEGIN
 bit := CASE NEW.status WHEN 'RUNNING' THEN 1 WHEN 'SUCCEEDED' THEN 2
  WHEN 'FAILED' THEN 4 WHEN 'CANCELED' THEN 8 ELSE 0 END;
 IF bit = 0 THEN
  RETURN NULL;
 END IF;
 now_ms := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
 INSERT INTO deliveries (delivery_id, webhook_id, task_id, event,
  created_ms, next_ms, updated_ms)
 SELECT 'msg_' || substr(md5(random()::text || clock_timestamp()::text ||
  w.webhook_id), 1, 24), w.webhook_id, NEW.task_id,
  'task.' || lower(NEW.status), now_ms, now_ms, now_ms
 FROM webhooks w
 WHERE w.key_id = NEW.key_id AND w.disabled_ms = 0 AND (w.events & bit) <> 0;
 IF FOUND THEN
  PERFORM pg_notify('paddock_hooks', '');
 END IF;
 RETURN NULL;
END $$;
CREATE TRIGGER tasks_webhooks AFTER UPDATE OF status ON tasks
 FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
 EXECUTE FUNCTION paddock_webhooks();
