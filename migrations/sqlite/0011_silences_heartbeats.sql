-- Silences and heartbeats (issue #15, parts 4 and 5), SQLite. Timestamps are UTC microseconds.

-- Silences (maintenance windows): matching alerts are recorded, marked silenced, and page
-- nobody (never a personal-information category). Rows are never deleted: an expired silence
-- stays, with who ended it early and why.
CREATE TABLE silences (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    matchers      TEXT    NOT NULL,           -- JSON: [{"name", "op" ("=", "!=", "=~", "!~"), "value"}]
    source        TEXT,                       -- only alerts of this source (exactly)
    rule          TEXT,                       -- only alerts this classification rule matched
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expired_at    INTEGER,                    -- ended early, by whom and why
    expired_by    TEXT,
    expire_reason TEXT
);
CREATE INDEX silences_ends ON silences (ends_at) WHERE expired_at IS NULL;

-- The silence that silenced an alert (its incident_id is then NULL).
ALTER TABLE alerts ADD COLUMN silence_id INTEGER REFERENCES silences (id);
CREATE INDEX alerts_silence ON alerts (silence_id, id) WHERE silence_id IS NOT NULL;

-- Heartbeats (dead-man's switches): one row per configured heartbeat, its state. The check is a
-- persisted timer (kind `heartbeat.check`).
CREATE TABLE heartbeats (
    name          TEXT    PRIMARY KEY,
    created_at    INTEGER NOT NULL,           -- first configured: "never heard from since"
    armed_at      INTEGER NOT NULL,           -- watching (re)started: the daemon's last start
    last_seen_at  INTEGER,                    -- the last signal
    last_via      TEXT,                       -- alert:<source> or ping:<actor>
    late_since    INTEGER,                    -- while late: silent since (last signal, or created_at)
    late_at       INTEGER,                    -- while late: when that was noticed
    incident_id   INTEGER REFERENCES incidents (id),  -- the incident of the latest lateness
    updated_at    INTEGER NOT NULL
);
