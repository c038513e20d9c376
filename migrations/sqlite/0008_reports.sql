-- Regulator reports (issue #6, item 4): every version of every report drafted for an
-- incident's report obligation (`CN:cac_report_other`), with what it was written from (the
-- facts snapshot, the inputs a person typed), its rendering, and how it was submitted. A new
-- draft supersedes the older unsubmitted versions; nothing is deleted. The submitted version is
-- immutable: the triggers refuse to change or delete it. Timestamps are UTC microseconds.

CREATE TABLE reports (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    obligation_key  TEXT    NOT NULL,       -- CN:cac_report_other, CN:cac_supplementary#2
    jurisdiction    TEXT    NOT NULL,
    obligation      TEXT    NOT NULL,       -- the pack's obligation id
    report          TEXT    NOT NULL,       -- the pack's report id ([reports.<id>])
    report_kind     TEXT    NOT NULL,       -- initial | supplementary | closing
    recipient       TEXT,                   -- the pack's recipient id ([[regulators]] id)
    version         INTEGER NOT NULL,       -- 1, 2, … per obligation_key
    status          TEXT    NOT NULL DEFAULT 'draft',  -- draft | approved | rejected | superseded | submitted
    locale          TEXT    NOT NULL,
    inputs          TEXT    NOT NULL,       -- JSON object: what a person typed when drafting
    fields          TEXT    NOT NULL,       -- JSON: the resolved fields, in the report's order
    missing         TEXT    NOT NULL,       -- JSON: required fields left to follow (partial)
    partial         BOOLEAN NOT NULL DEFAULT 0,
    subject         TEXT    NOT NULL,
    markdown        TEXT    NOT NULL,
    html            TEXT    NOT NULL,
    facts           TEXT    NOT NULL,       -- JSON: the facts it was written from
    facts_version   INTEGER NOT NULL,
    content_hash    TEXT    NOT NULL,       -- sha256 hex of subject, markdown and html
    task_id         INTEGER,                -- its approval task
    created_by      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    submitted_at    INTEGER,
    submitted_by    TEXT,
    via             TEXT,                   -- email | webhook | manual
    reference       TEXT,                   -- the regulator's reference (manual) or the delivery's
    delivery_key    TEXT,                   -- the outbox idempotency key (email, webhook)
    late_reason     TEXT,
    updated_at      INTEGER NOT NULL,
    UNIQUE (incident_id, obligation_key, version)
);
CREATE INDEX reports_incident ON reports (incident_id, obligation_key, version);

CREATE TRIGGER reports_submitted_update BEFORE UPDATE ON reports
WHEN OLD.status = 'submitted'
BEGIN
    SELECT RAISE(ABORT, 'a submitted report is immutable: draft a new version instead');
END;
CREATE TRIGGER reports_submitted_delete BEFORE DELETE ON reports
WHEN OLD.status = 'submitted'
BEGIN
    SELECT RAISE(ABORT, 'a submitted report is immutable: draft a new version instead');
END;
