-- incidentd schema, PostgreSQL.
-- Timestamps are UTC microseconds since the Unix epoch (BIGINT), the same in both backends;
-- `to_timestamp(col / 1e6)` shows them. Row ids are assigned by the writer under an advisory
-- lock, so several instances share one audit chain.

CREATE TABLE incidents (
    id               BIGINT  PRIMARY KEY,
    title            TEXT    NOT NULL,
    summary          TEXT    NOT NULL DEFAULT '',
    category         TEXT    NOT NULL,
    severity         TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    drill            BOOLEAN NOT NULL DEFAULT FALSE,
    origin           TEXT    NOT NULL,
    rule             TEXT,
    facts            TEXT    NOT NULL DEFAULT '{}',
    facts_version    BIGINT  NOT NULL DEFAULT 1,
    first_seen_at    BIGINT  NOT NULL,
    discovered_at    BIGINT  NOT NULL,
    declared_at      BIGINT,
    aware_at         BIGINT,
    contained_at     BIGINT,
    closed_at        BIGINT,
    updated_at       BIGINT  NOT NULL,
    alert_count      BIGINT  NOT NULL DEFAULT 0,
    truncated_alerts BIGINT  NOT NULL DEFAULT 0,
    created_by       TEXT    NOT NULL
);
CREATE INDEX incidents_status ON incidents (status, severity);

CREATE TABLE incident_keys (
    group_key   TEXT   NOT NULL,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    PRIMARY KEY (group_key, incident_id)
);

CREATE TABLE alerts (
    id          BIGINT PRIMARY KEY,
    dedup_key   TEXT   NOT NULL UNIQUE,
    source      TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    fingerprint TEXT   NOT NULL,
    group_key   TEXT   NOT NULL,
    title       TEXT   NOT NULL,
    detail      TEXT   NOT NULL,
    occurred_at BIGINT NOT NULL,
    ends_at     BIGINT,
    received_at BIGINT NOT NULL,
    category    TEXT,
    severity    TEXT,
    rule        TEXT,
    incident_id BIGINT REFERENCES incidents (id),
    hash        TEXT   NOT NULL
);
CREATE INDEX alerts_incident ON alerts (incident_id, id);

CREATE TABLE events (
    id          BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    incident_id BIGINT,
    data        TEXT   NOT NULL,
    prev_hash   TEXT   NOT NULL,
    hash        TEXT   NOT NULL
);
CREATE INDEX events_incident ON events (incident_id, id);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
