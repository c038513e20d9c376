-- Tasks may be cancelled (issue #16, part 7: a drill's open tasks are cancelled, with the
-- reason "drill ended" in `note`, when the drill ends and its incident is closed).
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('open', 'acked', 'done', 'approved', 'rejected', 'cancelled'));
COMMENT ON COLUMN tasks.note IS 'the completion note, or why the task was cancelled';
