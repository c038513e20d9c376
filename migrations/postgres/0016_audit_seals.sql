-- Tamper evidence beyond the event chain (issue #17, M5). Each event may carry a MAC under
-- `[audit] key` (HMAC-SHA-256 of its hash), so a chain rewritten by someone without the key
-- shows. The rows people decide from are sealed in the chain (`audit.sealed` events);
-- `audit_baseline` records the one event that sealed the rows written before sealing began.
ALTER TABLE events ADD COLUMN mac TEXT;

CREATE TABLE audit_baseline (
    event_id BIGINT NOT NULL
);
