-- Playbooks applied to incidents: the joint response team, its paging state, and tasks.

-- Which playbook an incident runs, and at which severity it was applied (a raise re-applies).
CREATE TABLE incident_playbooks (
    incident_id INTEGER PRIMARY KEY REFERENCES incidents (id),
    playbook    TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    applied_at  INTEGER NOT NULL
);

-- The departments of an incident's team: the level paged so far and the acknowledgement that
-- stops escalation.
CREATE TABLE incident_team (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    department  TEXT    NOT NULL,
    level       INTEGER NOT NULL,
    paged_at    INTEGER NOT NULL,
    acked_at    INTEGER,
    acked_by    TEXT,
    PRIMARY KEY (incident_id, department)
) WITHOUT ROWID;

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
                    CHECK (status IN ('open', 'acked', 'done', 'approved', 'rejected')),
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
CREATE INDEX tasks_status ON tasks (status, due_at);

-- Decisions on approval tasks, one per approving department.
CREATE TABLE approvals (
    task_id     INTEGER NOT NULL REFERENCES tasks (id),
    department  TEXT    NOT NULL,
    decision    TEXT    NOT NULL CHECK (decision IN ('approved', 'rejected')),
    decided_by  TEXT    NOT NULL,
    decided_at  INTEGER NOT NULL,
    reason      TEXT,
    PRIMARY KEY (task_id, department)
) WITHOUT ROWID;
