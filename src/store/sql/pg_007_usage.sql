-- The usage ledger, quotas and admin keys (docs/extensions.md, "Usage"),
-- as sqlite_007: the same tables, the same triggers, and the submit with
-- its hold (paddock_submit_held) under the submit lock.
ALTER TABLE keys ADD COLUMN admin integer NOT NULL DEFAULT 0,
 ADD COLUMN quota_kind text NOT NULL DEFAULT '',
 ADD COLUMN quota_limit bigint NOT NULL DEFAULT 0,
 ADD COLUMN quota_period text NOT NULL DEFAULT '',
 ADD COLUMN balance bigint NOT NULL DEFAULT -1,
 ADD COLUMN balance_base bigint NOT NULL DEFAULT 0;
CREATE TABLE ledger (task_id text NOT NULL, phase integer NOT NULL,
 kind text NOT NULL, key_id text NOT NULL, model text NOT NULL,
 resolution integer NOT NULL, edit integer NOT NULL, price bigint NOT NULL,
 cs bigint NOT NULL, amount bigint NOT NULL, at_ms bigint NOT NULL,
 day integer NOT NULL, PRIMARY KEY (task_id, phase));
CREATE INDEX ledger_key_at ON ledger (key_id, at_ms) WHERE phase = 1;
CREATE INDEX ledger_at ON ledger (at_ms);
CREATE TABLE accounts (key_id text PRIMARY KEY,
 held_cs bigint NOT NULL DEFAULT 0, held_amount bigint NOT NULL DEFAULT 0,
 spent bigint NOT NULL DEFAULT 0);
CREATE TABLE usage_totals (key_id text NOT NULL, period text NOT NULL,
 cs bigint NOT NULL DEFAULT 0, amount bigint NOT NULL DEFAULT 0,
 PRIMARY KEY (key_id, period));
-- The YYYYMMDD of an epoch-ms instant in UTC+8.
CREATE FUNCTION paddock_day(p_ms bigint) RETURNS integer LANGUAGE sql
 IMMUTABLE AS $$
 SELECT to_char(to_timestamp((p_ms / 1000 + 28800)::double precision)
  AT TIME ZONE 'UTC', 'YYYYMMDD')::integer
$$;
CREATE FUNCTION paddock_ledger_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
 IF NEW.phase = 0 THEN
  INSERT INTO accounts (key_id, held_cs, held_amount)
   VALUES (NEW.key_id, NEW.cs, NEW.amount)
   ON CONFLICT (key_id) DO UPDATE SET
   held_cs = accounts.held_cs + EXCLUDED.held_cs,
   held_amount = accounts.held_amount + EXCLUDED.held_amount;
  RETURN NULL;
 END IF;
 UPDATE accounts a SET held_cs = a.held_cs - h.cs,
  held_amount = a.held_amount - h.amount, spent = a.spent + NEW.amount
  FROM ledger h WHERE h.task_id = NEW.task_id AND h.phase = 0
  AND a.key_id = NEW.key_id;
 IF NEW.kind = 'settle' THEN
  INSERT INTO usage_totals (key_id, period, cs, amount)
   VALUES (NEW.key_id, 'D' || NEW.day, NEW.cs, NEW.amount),
   (NEW.key_id, 'M' || (NEW.day / 100), NEW.cs, NEW.amount)
   ON CONFLICT (key_id, period) DO UPDATE SET
   cs = usage_totals.cs + EXCLUDED.cs,
   amount = usage_totals.amount + EXCLUDED.amount;
 END IF;
 RETURN NULL;
END $$;
CREATE TRIGGER ledger_insert AFTER INSERT ON ledger FOR EACH ROW
 EXECUTE FUNCTION paddock_ledger_insert();
-- A task's end, once: see sqlite_007.
CREATE FUNCTION paddock_ledger_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
 INSERT INTO ledger (task_id, phase, kind, key_id, model, resolution, edit,
  price, cs, amount, at_ms, day)
  SELECT b.task_id, 1, b.kind, b.key_id, b.model, b.resolution, b.edit,
  b.price, b.cs, (b.price * b.cs + 50) / 100, b.at_ms, paddock_day(b.at_ms)
  FROM (SELECT h.task_id, h.key_id, h.model, h.resolution, h.edit, h.price,
   CASE WHEN NEW.status = 'SUCCEEDED' THEN 'settle' ELSE 'release' END
    AS kind,
   CASE WHEN NEW.status <> 'SUCCEEDED' THEN 0
    WHEN h.edit <> 0 THEN round(((coalesce(NEW.usage_input, 0) +
     coalesce(NEW.usage_output, 0)) * 100)::numeric)::bigint
    ELSE round(coalesce(NEW.usage_output, 0)::numeric)::bigint * 100 END
    AS cs,
   coalesce(NEW.end_ms, h.at_ms) AS at_ms
   FROM ledger h WHERE h.task_id = NEW.task_id AND h.phase = 0) b
  ON CONFLICT (task_id, phase) DO NOTHING;
 RETURN NULL;
END $$;
CREATE TRIGGER tasks_ledger_end AFTER UPDATE OF status ON tasks FOR EACH ROW
 WHEN (OLD.status IN ('PENDING', 'RUNNING')
 AND NEW.status IN ('SUCCEEDED', 'FAILED', 'CANCELED'))
 EXECUTE FUNCTION paddock_ledger_end();
-- Would a hold of p_cs and p_amount keep p_key_id within its quota and
-- balance at p_now? One statement: one snapshot of accounts and totals.
CREATE FUNCTION paddock_quota_ok(p_key_id text, p_now bigint, p_cs bigint,
 p_amount bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
 SELECT coalesce((SELECT
  (k.quota_kind = '' OR (CASE k.quota_kind
    WHEN 'seconds' THEN coalesce(a.held_cs, 0) + coalesce(u.cs, 0) + p_cs
    ELSE coalesce(a.held_amount, 0) + coalesce(u.amount, 0) + p_amount
   END) <= k.quota_limit)
  AND (k.balance < 0 OR coalesce(a.held_amount, 0) + p_amount <=
   k.balance - (coalesce(a.spent, 0) - k.balance_base))
  FROM keys k LEFT JOIN accounts a ON a.key_id = k.key_id
  LEFT JOIN usage_totals u ON u.key_id = k.key_id AND u.period =
   CASE k.quota_period WHEN 'month' THEN 'M' || (paddock_day(p_now) / 100)
   ELSE 'D' || paddock_day(p_now) END
  WHERE k.key_id = p_key_id), true)
$$;
-- paddock_submit() with the task's hold: a replay is answered first (it
-- holds nothing), then the quota (rc 6: refused), then the submit and,
-- when it inserted, the hold.
CREATE FUNCTION paddock_submit_held(p_task_id text, p_key_id text, p_model text, p_spec text, p_prompt text, p_submit_ms bigint, p_expire_ms bigint, p_idem_key text, p_body_hash bytea, p_max_active bigint, p_max_queue bigint, p_active bigint, p_depth bigint, p_not_before bigint, p_cs bigint, p_price bigint, p_resolution integer, p_edit integer, OUT rc integer, OUT replay_id text, OUT active bigint, OUT depth bigint) LANGUAGE plpgsql AS $$
DECLARE
 amt bigint := (p_price * p_cs + 50) / 100;
BEGIN
 IF (p_idem_key IS NULL OR NOT EXISTS (SELECT 1 FROM idem i
   WHERE i.key_id = p_key_id AND i.idem_key = p_idem_key
   AND i.expire_ms > p_submit_ms))
  AND NOT paddock_quota_ok(p_key_id, p_submit_ms, p_cs, amt) THEN
  rc := 6;
  active := -1;
  depth := -1;
  RETURN;
 END IF;
 SELECT s.rc, s.replay_id, s.active, s.depth INTO rc, replay_id, active, depth
  FROM paddock_submit(p_task_id, p_key_id, p_model, p_spec, p_prompt,
  p_submit_ms, p_expire_ms, p_idem_key, p_body_hash, p_max_active,
  p_max_queue, p_active, p_depth, p_not_before) s;
 IF rc = 0 THEN
  INSERT INTO ledger (task_id, phase, kind, key_id, model, resolution, edit,
   price, cs, amount, at_ms, day) VALUES (p_task_id, 0, 'hold', p_key_id,
   p_model, p_resolution, p_edit, p_price, p_cs, amt, p_submit_ms,
   paddock_day(p_submit_ms));
 END IF;
END $$;
