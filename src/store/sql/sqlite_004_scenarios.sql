-- Sandbox scenarios (docs/extensions.md, "Scenarios").
-- tasks.not_before: a PENDING task is not claimed before this (epoch ms;
-- a scenario's queue delay, 0 for every other task). It is never cleared:
-- a task released or rescued later is past it already.
ALTER TABLE tasks ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
-- tasks.queries: the queries a scenario's query-errors=N counted so far
-- (at most N; a task without one stays 0).
ALTER TABLE tasks ADD COLUMN queries INTEGER NOT NULL DEFAULT 0;
-- keys.scenario: a minted key's default scenario ('' : none).
ALTER TABLE keys ADD COLUMN scenario TEXT NOT NULL DEFAULT '';
