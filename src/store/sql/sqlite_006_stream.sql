-- The status stream and the queue position (docs/extensions.md, E4).
-- tasks.rev: how many times the task's status or progress changed; an
-- event's id, so it only grows over the task's life.
ALTER TABLE tasks ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER tasks_rev AFTER UPDATE OF status, progress ON tasks
 WHEN OLD.status IS NOT NEW.status OR OLD.progress IS NOT NEW.progress
 BEGIN UPDATE tasks SET rev = rev + 1 WHERE id = NEW.id; END;
-- tasks.qseq: the task's number among its key's submits (1, 2, ...; 0 for
-- tasks from before this migration); queues.seq: the last number given;
-- queues.claimed: the highest number claimed. A PENDING task has about
-- qseq - claimed - 1 tasks of its key ahead of it.
ALTER TABLE tasks ADD COLUMN qseq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER tasks_qseq AFTER INSERT ON tasks BEGIN
 INSERT INTO queues (key_id, seq) VALUES (NEW.key_id, 1)
  ON CONFLICT (key_id) DO UPDATE SET seq = seq + 1;
 UPDATE tasks SET qseq = (SELECT seq FROM queues WHERE key_id = NEW.key_id)
  WHERE id = NEW.id;
END;
CREATE TRIGGER tasks_claimed AFTER UPDATE OF status ON tasks
 WHEN OLD.status = 'PENDING' AND NEW.status = 'RUNNING'
 BEGIN UPDATE queues SET claimed = max(claimed, NEW.qseq)
  WHERE key_id = NEW.key_id; END;
