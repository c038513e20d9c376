-- The web console (issue #18): people sign in with a login of [[departments.members]] and a
-- password set with `incidentd accounts password`. Only argon2id hashes are kept. Sessions
-- live in the store, so several instances share them; only a SHA-256 of the session cookie is
-- kept.
CREATE TABLE accounts (
    login         TEXT   PRIMARY KEY,
    password_hash TEXT   NOT NULL,      -- argon2id, PHC string
    updated_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash   TEXT   PRIMARY KEY,    -- hex SHA-256 of the cookie's value
    login        TEXT   NOT NULL,
    csrf         TEXT   NOT NULL,       -- the token every form of this session carries
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_login ON sessions (login);
