-- The delivery outbox: every message incidentd sends is first a row here, written in the same
-- transaction as the change that caused it. The dispatcher claims due rows, sends them and
-- records the outcome. Timestamps are UTC microseconds.

CREATE TABLE deliveries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key     TEXT    NOT NULL UNIQUE,
    incident_id         INTEGER REFERENCES incidents (id),
    drill               BOOLEAN NOT NULL DEFAULT 0,   -- copied from the incident at enqueue
    purpose             TEXT    NOT NULL,             -- page | notice | announcement | report | drill | test
    channel             TEXT    NOT NULL,             -- email | sms | voice | inbox | site_webhook | webhook
    recipient           TEXT    NOT NULL,
    locale              TEXT    NOT NULL,
    content             TEXT    NOT NULL,             -- JSON: the rendered message
    fallback            TEXT    NOT NULL DEFAULT '[]', -- JSON: next channels to try if this one dies
    fallback_of         INTEGER REFERENCES deliveries (id),
    status              TEXT    NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'dead')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    next_attempt_at     INTEGER NOT NULL,             -- when due; while sending, when the lease ends
    sent_at             INTEGER,
    provider            TEXT,
    provider_message_id TEXT,
    last_error          TEXT,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'failed', 'sending');
-- Pages to responders are claimed before anything else that is due.
CREATE INDEX deliveries_due_pages ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'failed', 'sending') AND purpose = 'page';
-- Queue depth and the age of the oldest waiting delivery (metrics).
CREATE INDEX deliveries_queue ON deliveries (created_at) WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_incident ON deliveries (incident_id, id);

-- Who a drill may reach: deliveries of a drill incident to anyone else are refused.
CREATE TABLE drill_recipients (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    channel     TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    PRIMARY KEY (incident_id, channel, recipient)
) WITHOUT ROWID;

-- The built-in in-site notice store (the `inbox` channel).
CREATE TABLE inbox_notices (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    site_user_id TEXT    NOT NULL,
    delivery_id  INTEGER NOT NULL UNIQUE REFERENCES deliveries (id),
    incident_id  INTEGER REFERENCES incidents (id),
    locale       TEXT    NOT NULL,
    subject      TEXT,
    body         TEXT    NOT NULL,
    data         TEXT,
    created_at   INTEGER NOT NULL,
    read_at      INTEGER
);
CREATE INDEX inbox_user ON inbox_notices (site_user_id, id);
