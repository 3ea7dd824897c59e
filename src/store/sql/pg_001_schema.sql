CREATE TABLE tasks ( id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, task_id text NOT NULL UNIQUE, key_id text NOT NULL, model text NOT NULL, status text NOT NULL, spec text NOT NULL, prompt text, submit_ms bigint NOT NULL, scheduled_ms bigint, end_ms bigint, expire_ms bigint NOT NULL, attempt integer NOT NULL DEFAULT 0, lease_owner text, lease_until bigint, lease_token text, code text, message text, usage_input double precision, usage_output double precision, usage_sr integer, usage_ratio text, result text) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);CREATE INDEX tasks_key_submit ON tasks (key_id, submit_ms);CREATE INDEX tasks_active ON tasks (key_id) WHERE status IN ('PENDING', 'RUNNING');CREATE INDEX tasks_running ON tasks (lease_owner, lease_token) WHERE status = 'RUNNING';CREATE INDEX tasks_expire ON tasks (expire_ms) WHERE status IN ('SUCCEEDED', 'FAILED', 'CANCELED');CREATE TABLE pending ( id bigint PRIMARY KEY, key_id text NOT NULL) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_cost_delay = 0);CREATE INDEX pending_key ON pending (key_id, id);CREATE TABLE turns ( key_id text PRIMARY KEY, turn bigint NOT NULL DEFAULT 0);CREATE SEQUENCE turn_seq;CREATE TABLE idem ( key_id text NOT NULL, idem_key text NOT NULL, body_hash bytea NOT NULL, task_id text NOT NULL, expire_ms bigint NOT NULL, PRIMARY KEY (key_id, idem_key));CREATE INDEX idem_expire ON idem (expire_ms);CREATE TABLE keys ( key_id text PRIMARY KEY, salt bytea NOT NULL, hash bytea NOT NULL, name text NOT NULL DEFAULT '', created_ms bigint NOT NULL, revoked_ms bigint NOT NULL DEFAULT 0);CREATE TABLE secrets (name text PRIMARY KEY, value bytea NOT NULL);CREATE FUNCTION paddock_submit(p_task_id text, p_key_id text, p_model text, p_spec text, p_prompt text, p_submit_ms bigint, p_expire_ms bigint, p_idem_key text, p_body_hash bytea, p_max_active bigint, p_max_queue bigint, p_active bigint, p_depth bigint, OUT rc integer, OUT replay_id text, OUT active bigint, OUT depth bigint) LANGUAGE plpgsql AS $$
DECLARE
 old_hash bytea;
 new_id bigint;
BEGIN
 active := p_active;
 depth := p_depth;
 IF p_idem_key IS NOT NULL THEN
  SELECT i.body_hash, i.task_id INTO old_hash, replay_id FROM idem i
   WHERE i.key_id = p_key_id AND i.idem_key = p_idem_key
   AND i.expire_ms > p_submit_ms;
  IF FOUND THEN
   rc := CASE WHEN old_hash = p_body_hash THEN 1 ELSE 2 END;
   RETURN;
  END IF;
 END IF;
 IF p_max_active > 0 THEN
  IF active < 0 THEN
   SELECT count(*) INTO active FROM (SELECT 1 FROM tasks t
    WHERE t.key_id = p_key_id AND t.status IN ('PENDING', 'RUNNING')
    LIMIT p_max_active) a;
  END IF;
  IF active >= p_max_active THEN
   rc := 3;
   RETURN;
  END IF;
 END IF;
 IF p_max_queue > 0 THEN
  IF depth < 0 THEN
   SELECT count(*) INTO depth FROM (SELECT 1 FROM pending
    LIMIT p_max_queue) p;
  END IF;
  IF depth >= p_max_queue THEN
   rc := 4;
   RETURN;
  END IF;
 END IF;
 INSERT INTO tasks (task_id, key_id, model, status, spec, prompt,
  submit_ms, expire_ms) VALUES (p_task_id, p_key_id, p_model,
  'PENDING', p_spec, p_prompt, p_submit_ms, p_expire_ms)
  ON CONFLICT (task_id) DO NOTHING RETURNING id INTO new_id;
 IF new_id IS NULL THEN
  rc := 5;
  RETURN;
 END IF;
 INSERT INTO pending (id, key_id) VALUES (new_id, p_key_id);
 INSERT INTO turns (key_id) SELECT p_key_id WHERE NOT EXISTS
  (SELECT 1 FROM turns WHERE key_id = p_key_id) ON CONFLICT DO NOTHING;
 IF p_idem_key IS NOT NULL THEN
  INSERT INTO idem (key_id, idem_key, body_hash, task_id, expire_ms)
   VALUES (p_key_id, p_idem_key, p_body_hash, p_task_id, p_expire_ms)
   ON CONFLICT (key_id, idem_key) DO UPDATE SET
   body_hash = EXCLUDED.body_hash, task_id = EXCLUDED.task_id,
   expire_ms = EXCLUDED.expire_ms;
 END IF;
 rc := 0;
END $$;