-- Regulation (issue #6): the two clocks the jurisdiction packs add, the regulatory grade per
-- jurisdiction as it changed, the obligations the packs impose (each a persisted deadline), and
-- the reports rendered for regulators. Timestamps are UTC microseconds.

ALTER TABLE incidents ADD COLUMN assessed_notifiable_at INTEGER;  -- SG reporting clock
ALTER TABLE incidents ADD COLUMN handling_closed_at     INTEGER;  -- CN closing-report clock

-- Grade history: a row each time an incident's grade in a jurisdiction changes; the newest is
-- the current grade. `why` names the criterion and the facts that met it.
CREATE TABLE grades (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    jurisdiction TEXT    NOT NULL,
    grade        TEXT    NOT NULL,
    criterion    TEXT,
    why          TEXT    NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX grades_incident ON grades (incident_id, jurisdiction, id);

-- What the packs say is owed, per incident: one row per obligation key (`CN:cac_report_other`,
-- `CN:cac_supplementary#2`), updated as facts and clocks change. An obligation that no longer
-- applies is `withdrawn`, never deleted.
CREATE TABLE obligations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    key          TEXT    NOT NULL,
    jurisdiction TEXT    NOT NULL,
    obligation   TEXT    NOT NULL,       -- the pack's obligation id
    kind         TEXT    NOT NULL,       -- report | notify_individuals | public_announcement | task | record | assessment
    report_kind  TEXT,                   -- initial | supplementary | closing
    recipient    TEXT,
    owner        TEXT    NOT NULL,       -- department reminded and escalated to
    standing     TEXT    NOT NULL,       -- required | exempt | not_required | hold | withdrawn
    clock        TEXT    NOT NULL,
    clock_start  INTEGER,
    due_at       INTEGER,                -- NULL while the clock has not started
    detail       TEXT    NOT NULL,       -- JSON: the assessment's outcome, with its why
    status       TEXT    NOT NULL DEFAULT 'open',  -- open | met
    met_at       INTEGER,
    met_by       TEXT,
    met_ref      TEXT,                   -- what met it: report id, campaign, task, announcement
    late_reason  TEXT,                   -- required when a report is met after due_at
    met_facts    TEXT,                   -- the facts when met (supplementary reports compare against them)
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (incident_id, key)
);
CREATE INDEX obligations_due ON obligations (status, due_at);
