-- Webhooks (docs/extensions.md, "Webhooks"): a key's endpoints and the
-- outbox of their deliveries.
-- webhooks.events: bits 1 task.running, 2 task.succeeded, 4 task.failed,
-- 8 task.canceled. disabled_ms: 0 while enabled (a 410 sets it).
CREATE TABLE webhooks (
 webhook_id TEXT PRIMARY KEY,
 key_id TEXT NOT NULL,
 url TEXT NOT NULL,
 events INTEGER NOT NULL,
 secret TEXT NOT NULL,
 created_ms INTEGER NOT NULL,
 disabled_ms INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX webhooks_key ON webhooks (key_id);
-- deliveries: the outbox. A row is written by the trigger below in the
-- same transaction as the status change it tells of; delivery_id is the
-- webhook-id of every attempt; body and ts are set by the first attempt
-- and sent again as they are. state: 0 pending, 1 delivered, 2 dead.
CREATE TABLE deliveries (
 seq INTEGER PRIMARY KEY,
 delivery_id TEXT NOT NULL UNIQUE,
 webhook_id TEXT NOT NULL,
 task_id TEXT NOT NULL,
 event TEXT NOT NULL,
 state INTEGER NOT NULL DEFAULT 0,
 attempts INTEGER NOT NULL DEFAULT 0,
 created_ms INTEGER NOT NULL,
 next_ms INTEGER NOT NULL,
 updated_ms INTEGER NOT NULL,
 lease_owner TEXT,
 lease_until INTEGER NOT NULL DEFAULT 0,
 code INTEGER NOT NULL DEFAULT 0,
 error TEXT NOT NULL DEFAULT '',
 ts INTEGER NOT NULL DEFAULT 0,
 body TEXT);
CREATE INDEX deliveries_due ON deliveries (next_ms) WHERE state = 0;
CREATE INDEX deliveries_hook ON deliveries (webhook_id, seq);
CREATE INDEX deliveries_done ON deliveries (updated_ms) WHERE state <> 0;
-- One row per enabled endpoint of the task's key subscribed to the new
-- status; a key without webhooks costs one index probe.
CREATE TRIGGER tasks_webhooks AFTER UPDATE OF status ON tasks
 WHEN OLD.status <> NEW.status
 AND NEW.status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED')
BEGIN
 INSERT INTO deliveries (delivery_id, webhook_id, task_id, event,
  created_ms, next_ms, updated_ms)
 SELECT 'msg_' || lower(hex(randomblob(12))), w.webhook_id, NEW.task_id,
  'task.' || lower(NEW.status), t.now, t.now, t.now
 FROM webhooks w,
  (SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS now) t
 WHERE w.key_id = NEW.key_id AND w.disabled_ms = 0
 AND (w.events & CASE NEW.status WHEN 'RUNNING' THEN 1
  WHEN 'SUCCEEDED' THEN 2 WHEN 'FAILED' THEN 4 ELSE 8 END) <> 0;
END;
