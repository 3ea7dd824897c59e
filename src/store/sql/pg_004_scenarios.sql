-- Sandbox scenarios (docs/extensions.md, "Scenarios").
-- pending.not_before: the row is not claimed before this (epoch ms; a
-- scenario's queue delay, 0 for every other task). Rows a release or a
-- rescue inserts take the default: such a task is past its delay.
ALTER TABLE pending ADD COLUMN not_before bigint NOT NULL DEFAULT 0;
-- tasks.queries: the queries a scenario's query-errors=N counted so far
-- (at most N; a task without one stays 0).
ALTER TABLE tasks ADD COLUMN queries integer NOT NULL DEFAULT 0;
-- keys.scenario: a minted key's default scenario ('' : none).
ALTER TABLE keys ADD COLUMN scenario text NOT NULL DEFAULT '';
-- paddock_submit() with the delay; the form without it stays (a delay of
-- 0) for nodes still on the older binary during a rolling upgrade.
CREATE FUNCTION paddock_submit(p_task_id text, p_key_id text, p_model text, p_spec text, p_prompt text, p_submit_ms bigint, p_expire_ms bigint, p_idem_key text, p_body_hash bytea, p_max_active bigint, p_max_queue bigint, p_active bigint, p_depth bigint, p_not_before bigint, OUT rc integer, OUT replay_id text, OUT active bigint, OUT depth bigint) LANGUAGE plpgsql AS $$
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
 INSERT INTO pending (id, key_id, not_before)
  VALUES (new_id, p_key_id, p_not_before);
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

CREATE OR REPLACE FUNCTION paddock_submit(p_task_id text, p_key_id text, p_model text, p_spec text, p_prompt text, p_submit_ms bigint, p_expire_ms bigint, p_idem_key text, p_body_hash bytea, p_max_active bigint, p_max_queue bigint, p_active bigint, p_depth bigint, OUT rc integer, OUT replay_id text, OUT active bigint, OUT depth bigint) LANGUAGE sql AS $$
 SELECT * FROM paddock_submit(p_task_id, p_key_id, p_model, p_spec, p_prompt,
  p_submit_ms, p_expire_ms, p_idem_key, p_body_hash, p_max_active,
  p_max_queue, p_active, p_depth, 0::bigint)
$$;
-- paddock_claim() passes over rows still in their delay (a key whose
-- rows all wait gives its turn to the next key).
CREATE OR REPLACE FUNCTION paddock_claim(p_worker text, p_token text, p_retry boolean, p_now bigint, p_until bigint, p_models text[]) RETURNS SETOF tasks LANGUAGE plpgsql AS $$
DECLARE
 k text;
 claimed bigint;
BEGIN
 IF p_retry THEN
  RETURN QUERY SELECT * FROM tasks WHERE status = 'RUNNING'
   AND lease_owner = p_worker AND lease_token = p_token;
  IF FOUND THEN
   RETURN;
  END IF;
 END IF;
 FOR k IN
  WITH RECURSIVE ks(key_id) AS (
   (SELECT p.key_id FROM pending p ORDER BY p.key_id LIMIT 1)
   UNION ALL
   SELECT (SELECT p.key_id FROM pending p WHERE p.key_id > ks.key_id
    ORDER BY p.key_id LIMIT 1) FROM ks WHERE ks.key_id IS NOT NULL)
  SELECT ks.key_id FROM ks LEFT JOIN turns t ON t.key_id = ks.key_id
   WHERE ks.key_id IS NOT NULL
   ORDER BY coalesce(t.turn, 0), ks.key_id
 LOOP
  IF p_models IS NULL THEN
   DELETE FROM pending WHERE id = (SELECT p.id FROM pending p
    WHERE p.key_id = k AND p.not_before <= p_now
    ORDER BY p.id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id INTO claimed;
  ELSE
   DELETE FROM pending WHERE id = (SELECT p.id FROM pending p
    WHERE p.key_id = k AND p.model = ANY (p_models)
    AND p.not_before <= p_now ORDER BY p.id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id INTO claimed;
  END IF;
  CONTINUE WHEN claimed IS NULL;
  RETURN QUERY UPDATE tasks SET status = 'RUNNING',
   scheduled_ms = coalesce(scheduled_ms, p_now),
   attempt = attempt + 1, lease_owner = p_worker,
   lease_until = p_until, lease_token = p_token
   WHERE id = claimed AND status = 'PENDING' RETURNING *;
  IF FOUND THEN
   UPDATE turns SET turn = nextval('turn_seq') WHERE key_id =
    (SELECT t.key_id FROM turns t WHERE t.key_id = k
     FOR UPDATE SKIP LOCKED);
   RETURN;
  END IF;
  claimed := NULL; /* a stray queue row: gone now; next key */
 END LOOP;
END $$;
