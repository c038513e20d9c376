-- Tasks may be cancelled (issue #16, part 7: a drill's open tasks are cancelled, with the
-- reason "drill ended" in `note`, when the drill ends and its incident is closed).
--
-- SQLite cannot alter a CHECK constraint: the table is rebuilt with the same columns and the
-- wider CHECK. Other tables refer to tasks (approvals.task_id, campaigns.approval_task) by
-- name, so the old table is dropped and the new one renamed into its place (renaming the old
-- one away would rewrite those references); foreign keys are checked at commit, when the
-- referenced rows are back.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE tasks_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    key             TEXT    NOT NULL,             -- the playbook's task id (or an ad-hoc one)
    playbook        TEXT,
    title           TEXT    NOT NULL,
    department      TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    approval        BOOLEAN NOT NULL DEFAULT 0,
    approvers       TEXT    NOT NULL DEFAULT '[]',  -- JSON: departments that must all approve
    depends_on      TEXT    NOT NULL DEFAULT '[]',  -- JSON: task keys
    after_task      TEXT,                          -- due counts from this task's completion
    due_offset_secs INTEGER NOT NULL,
    due_at          INTEGER,                       -- NULL while waiting for after_task
    status          TEXT    NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'acked', 'done', 'approved', 'rejected', 'cancelled')),
    assignee        TEXT,
    acked_by        TEXT,
    acked_at        INTEGER,
    closed_by       TEXT,
    closed_at       INTEGER,
    note            TEXT,                          -- the completion note, or why it was cancelled
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (incident_id, key)
);

INSERT INTO tasks_new (id, incident_id, key, playbook, title, department, description, approval,
                       approvers, depends_on, after_task, due_offset_secs, due_at, status,
                       assignee, acked_by, acked_at, closed_by, closed_at, note, created_at,
                       updated_at)
SELECT id, incident_id, key, playbook, title, department, description, approval, approvers,
       depends_on, after_task, due_offset_secs, due_at, status, assignee, acked_by, acked_at,
       closed_by, closed_at, note, created_at, updated_at
FROM tasks;

DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX tasks_status ON tasks (status, due_at);
