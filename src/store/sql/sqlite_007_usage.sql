-- The usage ledger, quotas and admin keys (docs/extensions.md, "Usage").
-- keys: admin (0/1); a quota (kind 'seconds' or 'amount', '' none; its
-- limit in hundredths of a second or micro-units; period 'day' or
-- 'month'); a prepaid balance in micro-units (-1: none), of which what
-- the key spent since it was set (accounts.spent - balance_base) is gone.
ALTER TABLE keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN quota_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN quota_limit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN quota_period TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN balance INTEGER NOT NULL DEFAULT -1;
ALTER TABLE keys ADD COLUMN balance_base INTEGER NOT NULL DEFAULT 0;
-- ledger: per task a hold (phase 0, written by the submit) and at most one
-- end (phase 1: 'settle' with the billed seconds, or 'release' with 0),
-- written by the trigger below in the transaction of the status change.
-- cs: hundredths of a second; price and amount: micro-units; day: the
-- YYYYMMDD of at_ms in UTC+8.
CREATE TABLE ledger (task_id TEXT NOT NULL, phase INTEGER NOT NULL,
 kind TEXT NOT NULL, key_id TEXT NOT NULL, model TEXT NOT NULL,
 resolution INTEGER NOT NULL, edit INTEGER NOT NULL, price INTEGER NOT NULL,
 cs INTEGER NOT NULL, amount INTEGER NOT NULL, at_ms INTEGER NOT NULL,
 day INTEGER NOT NULL, PRIMARY KEY (task_id, phase)) WITHOUT ROWID;
CREATE INDEX ledger_key_at ON ledger (key_id, at_ms) WHERE phase = 1;
CREATE INDEX ledger_at ON ledger (at_ms);
-- accounts: per key what its open holds hold and all it ever spent.
CREATE TABLE accounts (key_id TEXT PRIMARY KEY,
 held_cs INTEGER NOT NULL DEFAULT 0, held_amount INTEGER NOT NULL DEFAULT 0,
 spent INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
-- usage_totals: settled usage per key and period ('D20261202', 'M202612').
CREATE TABLE usage_totals (key_id TEXT NOT NULL, period TEXT NOT NULL,
 cs INTEGER NOT NULL DEFAULT 0, amount INTEGER NOT NULL DEFAULT 0,
 PRIMARY KEY (key_id, period)) WITHOUT ROWID;
CREATE TRIGGER ledger_hold AFTER INSERT ON ledger WHEN NEW.phase = 0
BEGIN
 INSERT INTO accounts (key_id, held_cs, held_amount)
  VALUES (NEW.key_id, NEW.cs, NEW.amount)
  ON CONFLICT (key_id) DO UPDATE SET held_cs = held_cs + excluded.held_cs,
  held_amount = held_amount + excluded.held_amount;
END;
CREATE TRIGGER ledger_end AFTER INSERT ON ledger WHEN NEW.phase = 1
BEGIN
 UPDATE accounts SET
  held_cs = held_cs - (SELECT h.cs FROM ledger h
   WHERE h.task_id = NEW.task_id AND h.phase = 0),
  held_amount = held_amount - (SELECT h.amount FROM ledger h
   WHERE h.task_id = NEW.task_id AND h.phase = 0),
  spent = spent + NEW.amount
  WHERE key_id = NEW.key_id;
END;
CREATE TRIGGER ledger_settle AFTER INSERT ON ledger
 WHEN NEW.phase = 1 AND NEW.kind = 'settle'
BEGIN
 INSERT INTO usage_totals (key_id, period, cs, amount)
  VALUES (NEW.key_id, 'D' || NEW.day, NEW.cs, NEW.amount),
  (NEW.key_id, 'M' || (NEW.day / 100), NEW.cs, NEW.amount)
  ON CONFLICT (key_id, period) DO UPDATE SET cs = cs + excluded.cs,
  amount = amount + excluded.amount;
END;
-- A task's end: settle (SUCCEEDED: the billed usage.duration, whole
-- seconds, or hundredths for video-edit) or release (FAILED, CANCELED).
-- A status leaves PENDING/RUNNING for a terminal one once, and the key
-- (task_id, phase) refuses a second end: exactly once per task.
CREATE TRIGGER tasks_ledger_end AFTER UPDATE OF status ON tasks
 WHEN OLD.status IN ('PENDING', 'RUNNING')
 AND NEW.status IN ('SUCCEEDED', 'FAILED', 'CANCELED')
BEGIN
 INSERT OR IGNORE INTO ledger (task_id, phase, kind, key_id, model,
  resolution, edit, price, cs, amount, at_ms, day)
  SELECT b.task_id, 1, b.kind, b.key_id, b.model, b.resolution, b.edit,
  b.price, b.cs, (b.price * b.cs + 50) / 100, b.at_ms,
  CAST(strftime('%Y%m%d', b.at_ms / 1000 + 28800, 'unixepoch') AS INTEGER)
  FROM (SELECT h.task_id, h.key_id, h.model, h.resolution, h.edit, h.price,
   CASE WHEN NEW.status = 'SUCCEEDED' THEN 'settle' ELSE 'release' END
    AS kind,
   CASE WHEN NEW.status <> 'SUCCEEDED' THEN 0
    WHEN h.edit THEN CAST(round((coalesce(NEW.usage_input, 0) +
     coalesce(NEW.usage_output, 0)) * 100) AS INTEGER)
    ELSE CAST(round(coalesce(NEW.usage_output, 0)) AS INTEGER) * 100 END
    AS cs,
   coalesce(NEW.end_ms, h.at_ms) AS at_ms
   FROM ledger h WHERE h.task_id = NEW.task_id AND h.phase = 0) b;
END;
