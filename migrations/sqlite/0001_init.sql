-- incidentd schema, SQLite.
-- Timestamps are UTC microseconds since the Unix epoch (INTEGER), the same in both backends.
-- Row ids are assigned by the writer under the write lock, so the audit chain and its ids agree.

CREATE TABLE incidents (
    id               INTEGER PRIMARY KEY,
    title            TEXT    NOT NULL,
    summary          TEXT    NOT NULL DEFAULT '',
    category         TEXT    NOT NULL,
    severity         TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    drill            BOOLEAN NOT NULL DEFAULT 0,
    origin           TEXT    NOT NULL,            -- 'alert' | 'declaration'
    rule             TEXT,                        -- classification rule that set the category
    facts            TEXT    NOT NULL DEFAULT '{}',
    facts_version    INTEGER NOT NULL DEFAULT 1,
    first_seen_at    INTEGER NOT NULL,
    discovered_at    INTEGER NOT NULL,
    declared_at      INTEGER,
    aware_at         INTEGER,
    contained_at     INTEGER,
    closed_at        INTEGER,
    updated_at       INTEGER NOT NULL,
    alert_count      INTEGER NOT NULL DEFAULT 0,
    truncated_alerts INTEGER NOT NULL DEFAULT 0,
    created_by       TEXT    NOT NULL
);
CREATE INDEX incidents_status ON incidents (status, severity);

-- Keys under which open incidents collect further alerts (fingerprint or group-by labels).
CREATE TABLE incident_keys (
    group_key   TEXT    NOT NULL,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    PRIMARY KEY (group_key, incident_id)
) WITHOUT ROWID;

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    dedup_key   TEXT    NOT NULL UNIQUE,
    source      TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    group_key   TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    detail      TEXT    NOT NULL,                 -- JSON: description, labels, annotations, origin, facts
    occurred_at INTEGER NOT NULL,
    ends_at     INTEGER,
    received_at INTEGER NOT NULL,
    category    TEXT,
    severity    TEXT,
    rule        TEXT,
    incident_id INTEGER REFERENCES incidents (id),
    hash        TEXT    NOT NULL                  -- content hash, vouched for by an audit event
);
CREATE INDEX alerts_incident ON alerts (incident_id, id);

-- The audit trail: append-only, one hash chain.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    incident_id INTEGER,
    data        TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
CREATE INDEX events_incident ON events (incident_id, id);

CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
