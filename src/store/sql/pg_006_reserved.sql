-- Reserved: migration 006 belongs to another branch (h/hooks, h/stream);
-- this placeholder keeps the numbers gapless until they merge, and goes
-- then (the lead renumbers).
SELECT 1;
