-- Affected people (subjects) of an incident, the imports that brought them, and the notice
-- campaigns that tell them. Contacts (name, phone, e-mail) are stored only encrypted
-- (`<key id>:<base64>`, AES-256-GCM bound to the row) beside a masked form for listings; a purge
-- after the retention period clears both. Timestamps are UTC microseconds.

CREATE TABLE subjects (
    id            INTEGER PRIMARY KEY,
    incident_id   INTEGER NOT NULL REFERENCES incidents (id),
    subject_id    TEXT    NOT NULL,
    import_id     INTEGER NOT NULL,
    name_enc      TEXT,
    phone_enc     TEXT,
    email_enc     TEXT,
    name_mask     TEXT,
    phone_mask    TEXT,
    email_mask    TEXT,
    site_user_id  TEXT,
    locale        TEXT    NOT NULL,
    channels      TEXT    NOT NULL,  -- the channels this subject can be reached on: 'inbox;sms;email'
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    purged_at     INTEGER,
    UNIQUE (incident_id, subject_id)
);
-- An incident's subjects in id order: campaigns, listings and the purge walk them this way
-- (without it SQLite reads every subject of the incident and sorts them, per page).
CREATE INDEX subjects_incident ON subjects (incident_id, id);

CREATE TABLE subject_imports (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    actor        TEXT    NOT NULL,
    format       TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'done', 'interrupted', 'refused')),
    report       TEXT    NOT NULL DEFAULT '{}',
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX subject_imports_incident ON subject_imports (incident_id, id);

CREATE TABLE campaigns (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id   INTEGER NOT NULL REFERENCES incidents (id),
    actor         TEXT    NOT NULL,
    template      TEXT    NOT NULL,
    channels      TEXT    NOT NULL,  -- JSON list, in order of preference
    mode          TEXT    NOT NULL CHECK (mode IN ('all', 'first')),
    status        TEXT    NOT NULL
                  CHECK (status IN ('awaiting_approval', 'enqueueing', 'enqueued', 'cancelled')),
    approval_task INTEGER REFERENCES tasks (id),
    enqueued_to   INTEGER NOT NULL DEFAULT 0,  -- subjects.id enqueued up to
    subjects      INTEGER NOT NULL DEFAULT 0,
    deliveries    INTEGER NOT NULL DEFAULT 0,
    unreachable   INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER
);
CREATE INDEX campaigns_incident ON campaigns (incident_id, id);
CREATE INDEX campaigns_active ON campaigns (status) WHERE status IN ('awaiting_approval', 'enqueueing');

-- The approved words, rendered once per channel and locale when the campaign starts: what Legal
-- approved is what is sent, even if facts or templates change later. `named` holds a marker
-- where the subject's name goes; `anonymous` is the rendering for subjects without a name.
CREATE TABLE campaign_contents (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id),
    channel      TEXT    NOT NULL,
    locale       TEXT    NOT NULL,
    used_locale  TEXT    NOT NULL,
    named        TEXT    NOT NULL,
    anonymous    TEXT    NOT NULL,
    PRIMARY KEY (campaign_id, channel, locale)
);

-- A campaign's deliveries by channel, kept by whoever changes them (the campaign runner as it
-- enqueues, the dispatcher as outcomes are recorded), in the same transaction: progress is one
-- small read instead of a scan of millions of deliveries. Queued = enqueued - sent - dead.
CREATE TABLE campaign_progress (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id),
    channel      TEXT    NOT NULL,
    enqueued     INTEGER NOT NULL DEFAULT 0,
    sent         INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,  -- attempts that failed and are retried
    dead         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, channel)
);
