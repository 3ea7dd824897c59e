-- The status stream and the queue position (docs/extensions.md, E4).
-- tasks.rev: how many times the task's status or progress changed; an
-- event's id, so it only grows over the task's life. Every such change
-- notifies paddock_task with the task id (at the commit), so a stream
-- open on any node hears of it.
ALTER TABLE tasks ADD COLUMN rev bigint NOT NULL DEFAULT 0;
-- tasks.qseq: the task's number among its key's submits (1, 2, ...; 0 for
-- tasks from before this migration). queue_pos per key: pending rows,
-- the last number given, the highest number claimed. A PENDING task has
-- about qseq - claimed - 1 tasks of its key ahead of it.
ALTER TABLE tasks ADD COLUMN qseq bigint NOT NULL DEFAULT 0;
CREATE TABLE queue_pos ( key_id text PRIMARY KEY, pending bigint NOT NULL DEFAULT 0, seq bigint NOT NULL DEFAULT 0, claimed bigint NOT NULL DEFAULT 0);
INSERT INTO queue_pos (key_id, pending) SELECT key_id, count(*) FROM pending GROUP BY key_id;
CREATE FUNCTION paddock_task_rev() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
 NEW.rev := OLD.rev + 1;
 IF OLD.status = 'PENDING' AND NEW.status = 'RUNNING' THEN
  UPDATE queue_pos SET claimed = greatest(claimed, NEW.qseq)
   WHERE key_id = NEW.key_id;
 END IF;
 PERFORM pg_notify('paddock_task', NEW.task_id);
 RETURN NEW;
END $$;
CREATE TRIGGER tasks_rev BEFORE UPDATE OF status, progress ON tasks FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.progress IS DISTINCT FROM NEW.progress) EXECUTE FUNCTION paddock_task_rev();
-- A first enqueue takes the key's next number; a task released or
-- rescued back to pending keeps its own.
CREATE FUNCTION paddock_queue_pos() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
 q bigint;
BEGIN
 IF TG_OP = 'DELETE' THEN
  UPDATE queue_pos SET pending = pending - 1 WHERE key_id = OLD.key_id;
  RETURN OLD;
 END IF;
 SELECT t.qseq INTO q FROM tasks t WHERE t.id = NEW.id;
 IF coalesce(q, 0) = 0 THEN
  INSERT INTO queue_pos AS p (key_id, pending, seq) VALUES (NEW.key_id, 1, 1)
   ON CONFLICT (key_id) DO UPDATE SET pending = p.pending + 1,
   seq = p.seq + 1 RETURNING p.seq INTO q;
  UPDATE tasks SET qseq = q WHERE id = NEW.id;
 ELSE
  INSERT INTO queue_pos AS p (key_id, pending) VALUES (NEW.key_id, 1)
   ON CONFLICT (key_id) DO UPDATE SET pending = p.pending + 1;
 END IF;
 RETURN NEW;
END $$;
CREATE TRIGGER pending_pos AFTER INSERT OR DELETE ON pending FOR EACH ROW EXECUTE FUNCTION paddock_queue_pos();
