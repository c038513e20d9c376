-- Drills (issue #7): one row per drill run, started by hand or by its schedule. The drill's
-- incident (drill = true) carries the response; this row carries the exercise around it.

CREATE TABLE drills (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    scenario     TEXT    NOT NULL,
    mode         TEXT    NOT NULL,              -- tabletop | functional
    incident_id  INTEGER NOT NULL UNIQUE REFERENCES incidents (id),
    started_at   INTEGER NOT NULL,              -- UTC microseconds
    ends_at      INTEGER NOT NULL,              -- the time limit
    ended_at     INTEGER,
    status       TEXT    NOT NULL,              -- running | ended
    started_by   TEXT    NOT NULL,
    schedule_key TEXT    UNIQUE,                -- cron tick key: one drill per tick across instances
    scorecard    TEXT,                          -- JSON, when scored
    report       TEXT,                          -- JSON, the after-action report
    plan         TEXT    NOT NULL               -- JSON: targets, owner, objectives, capture recipients (as started)
);

CREATE INDEX drills_started ON drills (started_at);
