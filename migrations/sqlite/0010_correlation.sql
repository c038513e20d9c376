-- Correlation (issue #15): an incident keeps every alert with the state of its newest
-- notification and counts what still fires and what resolved; it may be merged into another
-- (which carries on); and it knows the intake bucket (source and rule) whose alert opened it,
-- so that a storm of incidents from one bucket folds into one storm incident.

ALTER TABLE incidents ADD COLUMN alerts_firing   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN alerts_resolved INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN merged_into     INTEGER REFERENCES incidents (id);
ALTER TABLE incidents ADD COLUMN intake          TEXT;     -- `source|rule` of the opening alert
ALTER TABLE incidents ADD COLUMN storm           BOOLEAN NOT NULL DEFAULT 0;
-- Incidents one bucket opened within the storm window (the writer counts them).
CREATE INDEX incidents_intake ON incidents (intake, declared_at) WHERE intake IS NOT NULL;

-- Each alert of an incident (`source|fingerprint`) and its newest notification: the one with the
-- latest start, `resolved` after `firing` for the same start. A key is in one open incident at a
-- time: its later notifications join that incident, whatever group they arrive in.
CREATE TABLE incident_alerts (
    alert_key   TEXT    NOT NULL,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    status      TEXT    NOT NULL CHECK (status IN ('firing', 'resolved')),
    starts_at   INTEGER NOT NULL,
    alert_id    INTEGER NOT NULL,
    PRIMARY KEY (alert_key, incident_id)
) WITHOUT ROWID;

INSERT INTO incident_alerts (alert_key, incident_id, status, starts_at, alert_id)
SELECT alert_key, incident_id, status, occurred_at, id FROM (
    SELECT source || '|' || fingerprint AS alert_key, incident_id, status, occurred_at, id,
           ROW_NUMBER() OVER (
               PARTITION BY incident_id, source, fingerprint
               ORDER BY occurred_at DESC, status = 'resolved' DESC, id DESC
           ) AS newest
    FROM alerts WHERE incident_id IS NOT NULL
) WHERE newest = 1;

UPDATE incidents SET
    alerts_firing = c.firing,
    alerts_resolved = c.resolved
FROM (
    SELECT incident_id,
           SUM(CASE WHEN status = 'firing' THEN 1 ELSE 0 END) AS firing,
           SUM(CASE WHEN status = 'resolved' THEN 1 ELSE 0 END) AS resolved
    FROM incident_alerts GROUP BY incident_id
) AS c
WHERE c.incident_id = incidents.id;

-- A survivor's timeline shows the incidents merged into it.
CREATE INDEX incidents_merged ON incidents (merged_into) WHERE merged_into IS NOT NULL;
