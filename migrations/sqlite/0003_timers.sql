-- Persisted timers: escalations, playbook steps, cron ticks. A timer is fired by the scheduler in
-- the same transaction as its effects, and kept (status 'fired') afterwards so that scheduling
-- the same key again — a second instance's cron tick, a replayed escalation — does nothing.
-- Fired rows are pruned after a retention period. Timestamps are UTC microseconds.

CREATE TABLE timers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT    NOT NULL UNIQUE,          -- idempotency: e.g. escalate:42:security:2
    kind        TEXT    NOT NULL,                 -- the handler dispatches on it
    incident_id INTEGER REFERENCES incidents (id),
    due_at      INTEGER NOT NULL,                 -- when due; after a failure, when retried
    payload     TEXT    NOT NULL DEFAULT '{}',    -- JSON, the handler's business
    status      TEXT    NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'fired', 'dead')),
    attempts    INTEGER NOT NULL DEFAULT 0,       -- failed firings so far
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    done_at     INTEGER                           -- when fired, or given up
);
CREATE INDEX timers_due ON timers (due_at) WHERE status = 'pending';
CREATE INDEX timers_incident ON timers (incident_id) WHERE incident_id IS NOT NULL;
CREATE INDEX timers_done ON timers (done_at) WHERE status = 'fired';
