//! Console accounts and sessions (issue #18). Passwords are kept as argon2id hashes, sessions
//! as the SHA-256 of their cookie; both live in the store so that instances share them.

use super::write::{Inner, on_tx};
use super::{Result, Store, on_pool};

/// A signed-in session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub login: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl Store {
    /// Set (or replace) a login's password hash.
    pub async fn set_password_hash(&self, login: &str, hash: &str, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        on_tx!(tx, c, _pg => {
            sqlx::query(
                "INSERT INTO accounts (login, password_hash, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (login) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
            )
            .bind(login)
            .bind(hash)
            .bind(now)
            .execute(&mut *c)
            .await?;
            // A new password ends the login's sessions.
            sqlx::query("DELETE FROM sessions WHERE login = $1").bind(login).execute(&mut *c).await?;
        });
        tx.commit().await
    }

    pub async fn password_hash(&self, login: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = on_pool!(self, pool, _pg => {
            sqlx::query_as("SELECT password_hash FROM accounts WHERE login = $1")
                .bind(login)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|r| r.0))
    }

    /// The logins that have a password.
    pub async fn accounts(&self) -> Result<Vec<(String, i64)>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as("SELECT login, updated_at FROM accounts ORDER BY login")
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        login: &str,
        csrf: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        on_tx!(tx, c, _pg => {
            sqlx::query(
                "INSERT INTO sessions (token_hash, login, csrf, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(token_hash)
            .bind(login)
            .bind(csrf)
            .bind(now)
            .execute(&mut *c)
            .await?;
        });
        tx.commit().await
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>> {
        let row = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT login, csrf, created_at, last_seen_at FROM sessions WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    pub async fn touch_session(&self, token_hash: &str, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        on_tx!(tx, c, _pg => {
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1")
                .bind(token_hash)
                .bind(now)
                .execute(&mut *c)
                .await?;
        });
        tx.commit().await
    }

    /// End a session (logout, expiry).
    pub async fn end_session(&self, token_hash: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        on_tx!(tx, c, _pg => {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(&mut *c)
                .await?;
        });
        tx.commit().await
    }
}

/// A department's page that nobody acknowledged yet, on an open incident.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WaitingPage {
    pub incident_id: i64,
    pub title: String,
    pub severity: String,
    pub level: i32,
    pub paged_at: i64,
}

impl Store {
    /// The department's pages still waiting for an acknowledgement, oldest first.
    pub async fn waiting_pages(&self, department: &str) -> Result<Vec<WaitingPage>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT t.incident_id, i.title, i.severity, t.level, t.paged_at FROM incident_team t \
                 JOIN incidents i ON i.id = t.incident_id \
                 WHERE t.department = $1 AND t.acked_at IS NULL \
                 AND i.status NOT IN ('closed', 'false_positive', 'merged') \
                 ORDER BY t.paged_at LIMIT 50",
            )
            .bind(department)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

impl Store {
    /// The titles of these incidents, by id (one query).
    pub async fn incident_titles(&self, ids: &[i64]) -> Result<Vec<(i64, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(ids).unwrap_or_default();
        let rows = on_pool!(self, pool, pg => {
            let sql = if pg {
                "SELECT id, title FROM incidents WHERE id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)"
            } else {
                "SELECT id, title FROM incidents WHERE id IN (SELECT value FROM json_each($1))"
            };
            sqlx::query_as(sql).bind(ids).fetch_all(pool).await?
        });
        Ok(rows)
    }
}
