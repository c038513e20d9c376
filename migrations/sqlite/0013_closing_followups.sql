-- Closing is a checklist, and notice campaigns may follow up (issue #16, parts 4 and 6).
--
-- * A task may be `cancelled` (also when a drill ends: reason "drill ended"): a person forced the incident closed with a reason while the task
--   was still open (the reason is its note). SQLite cannot change a CHECK constraint in place,
--   so the table is rebuilt; `approvals` and `campaigns` reference tasks(id), so their checks
--   are deferred until the rows are back under the same ids.
-- * A campaign records who it is for (`all`, or `unreached`: people no earlier campaign's
--   delivery reached) and the facts version it was asked for at (a follow-up after the facts
--   changed is a new notice).

PRAGMA defer_foreign_keys = ON;

CREATE TABLE tasks_0013 AS SELECT * FROM tasks;
DROP TABLE tasks;
CREATE TABLE tasks (
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
    note            TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (incident_id, key)
);
INSERT INTO tasks SELECT * FROM tasks_0013;
DROP TABLE tasks_0013;
CREATE INDEX tasks_status ON tasks (status, due_at);

ALTER TABLE campaigns ADD COLUMN audience TEXT NOT NULL DEFAULT 'all'
    CHECK (audience IN ('all', 'unreached'));
ALTER TABLE campaigns ADD COLUMN facts_version INTEGER;
