-- Public announcements (issue #5): one per incident, served at /announcements/{slug}. Each
-- publication that changes the words appends a version; versions are never updated or deleted.
-- (0005 is left to the subjects migration.)

CREATE TABLE announcements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL UNIQUE REFERENCES incidents (id),
    slug        TEXT    NOT NULL UNIQUE,
    drill       BOOLEAN NOT NULL DEFAULT 0,   -- served, marked DRILL, never listed or in the feed
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL              -- the newest version's published_at
);

CREATE TABLE announcement_versions (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    version         INTEGER NOT NULL,         -- 1, 2, … per announcement
    published_at    INTEGER NOT NULL,
    actor           TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    template        TEXT    NOT NULL,
    locales         TEXT    NOT NULL,         -- JSON: [{"locale", "title", "html"}], default locale first
    content_hash    TEXT    NOT NULL,         -- sha256 of `locales`: same words, no new version
    facts_version   INTEGER NOT NULL,
    facts_hash      TEXT    NOT NULL,         -- sha256 of the incident's facts JSON it was rendered from
    PRIMARY KEY (announcement_id, version)
) WITHOUT ROWID;

-- Append-only: the published words are evidence.
CREATE TRIGGER announcement_versions_no_update BEFORE UPDATE ON announcement_versions
BEGIN SELECT RAISE(ABORT, 'announcement versions are append-only'); END;
CREATE TRIGGER announcement_versions_no_delete BEFORE DELETE ON announcement_versions
BEGIN SELECT RAISE(ABORT, 'announcement versions are append-only'); END;
