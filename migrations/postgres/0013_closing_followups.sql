-- Closing is a checklist, and notice campaigns may follow up (issue #16, parts 4 and 6).
--
-- * A task may be `cancelled` (also when a drill ends: reason "drill ended"): a person forced the incident closed with a reason while the task
--   was still open (the reason is its note).
-- * A campaign records who it is for (`all`, or `unreached`: people no earlier campaign's
--   delivery reached) and the facts version it was asked for at (a follow-up after the facts
--   changed is a new notice).

ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('open', 'acked', 'done', 'approved', 'rejected', 'cancelled'));

ALTER TABLE campaigns ADD COLUMN audience TEXT NOT NULL DEFAULT 'all'
    CHECK (audience IN ('all', 'unreached'));
ALTER TABLE campaigns ADD COLUMN facts_version BIGINT;
