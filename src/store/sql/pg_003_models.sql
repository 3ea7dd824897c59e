ALTER TABLE pending ADD COLUMN model text;UPDATE pending p SET model = t.model FROM tasks t WHERE t.id = p.id;CREATE FUNCTION paddock_pending_model() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
 IF NEW.model IS NULL THEN
  SELECT t.model INTO NEW.model FROM tasks t WHERE t.id = NEW.id;
 END IF;
 RETURN NEW;
END $$;CREATE TRIGGER pending_model BEFORE INSERT ON pending FOR EACH ROW EXECUTE FUNCTION paddock_pending_model();CREATE INDEX pending_key_model ON pending (key_id, model, id);DROP FUNCTION IF EXISTS paddock_claim(text, text, boolean, bigint, bigint);CREATE FUNCTION paddock_claim(p_worker text, p_token text, p_retry boolean, p_now bigint, p_until bigint, p_models text[]) RETURNS SETOF tasks LANGUAGE plpgsql AS $$
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
    WHERE p.key_id = k ORDER BY p.id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id INTO claimed;
  ELSE
   DELETE FROM pending WHERE id = (SELECT p.id FROM pending p
    WHERE p.key_id = k AND p.model = ANY (p_models)
    ORDER BY p.id LIMIT 1 FOR UPDATE SKIP LOCKED)
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
END $$;CREATE FUNCTION paddock_claim(p_worker text, p_token text, p_retry boolean, p_now bigint, p_until bigint) RETURNS SETOF tasks LANGUAGE sql AS $$ SELECT * FROM paddock_claim(p_worker, p_token, p_retry, p_now, p_until, NULL::text[]) $$;