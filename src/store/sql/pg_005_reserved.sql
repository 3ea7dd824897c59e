-- Reserved for another branch's migration 005 (h/hooks); a no-op here so
-- that 006 follows without a gap. Replaced at merge.
SELECT 1;