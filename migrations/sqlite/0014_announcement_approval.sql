-- The public announcement is approved before it is public (issue #16). Each version drafted
-- gets a gate: it waits for its approval task ([announcements] approvers, Public Relations and
-- Legal by default) and becomes the public version only when approved. The versions stay
-- append-only evidence; their gate is what changes. Versions from before this migration have
-- no gate and count as public.

CREATE TABLE announcement_gates (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    version         INTEGER NOT NULL,
    task_id         INTEGER REFERENCES tasks (id),   -- its approval, task `announcement-<announcement>-v<version>`
    status          TEXT    NOT NULL DEFAULT 'awaiting_approval'
                    CHECK (status IN ('awaiting_approval', 'public', 'rejected', 'superseded')),
    approvers       TEXT    NOT NULL DEFAULT '[]',   -- JSON: the departments that decide it
    webhook         TEXT,                            -- [announcements] webhook when drafted: pushed to once public
    decided_at      INTEGER,                         -- made public, rejected or superseded
    decided_by      TEXT,
    PRIMARY KEY (announcement_id, version)
);
CREATE INDEX announcement_gates_task ON announcement_gates (task_id);
