//! What the jurisdiction packs say an incident owes (table `obligations`, migration 0007).
//!
//! Interim, reports branch: the reading and meeting of obligations that report submission
//! needs, with the signatures of the obligations store on `main`; that file replaces this one
//! on merge.

use serde::Serialize;

use super::write::{Inner, on_tx};
use super::{Result, Store, WriteTx, on_pool};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ObligationRow {
    pub id: i64,
    pub incident_id: i64,
    pub key: String,
    pub jurisdiction: String,
    pub obligation: String,
    pub kind: String,
    pub report_kind: Option<String>,
    pub recipient: Option<String>,
    pub owner: String,
    pub standing: String,
    pub clock: String,
    pub clock_start: Option<i64>,
    pub due_at: Option<i64>,
    pub detail: String,
    pub status: String,
    pub met_at: Option<i64>,
    pub met_by: Option<String>,
    pub met_ref: Option<String>,
    pub late_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! obligation_select {
    ($where:literal) => {
        concat!(
            "SELECT id, incident_id, key, jurisdiction, obligation, kind, report_kind, recipient, owner, standing, ",
            "clock, clock_start, due_at, detail, status, met_at, met_by, met_ref, late_reason, created_at, updated_at ",
            "FROM obligations ",
            $where
        )
    };
}

impl WriteTx {
    pub async fn obligations_of(&mut self, incident_id: i64) -> Result<Vec<ObligationRow>> {
        let rows = on_tx!(self, c, _pg => {
            sqlx::query_as(obligation_select!("WHERE incident_id = $1 ORDER BY id"))
                .bind(incident_id)
                .fetch_all(&mut *c)
                .await?
        });
        Ok(rows)
    }

    pub async fn obligation(
        &mut self,
        incident_id: i64,
        key: &str,
    ) -> Result<Option<ObligationRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(obligation_select!("WHERE incident_id = $1 AND key = $2"))
                .bind(incident_id)
                .bind(key)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// Mark an open obligation met; `false` if it was not open.
    pub async fn meet_obligation(
        &mut self,
        incident_id: i64,
        key: &str,
        met_at: i64,
        met_by: &str,
        met_ref: &str,
        late_reason: Option<&str>,
    ) -> Result<bool> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE obligations SET status = 'met', met_at = $3, met_by = $4, met_ref = $5, late_reason = $6, \
                 updated_at = $3 WHERE incident_id = $1 AND key = $2 AND status = 'open'",
            )
            .bind(incident_id)
            .bind(key)
            .bind(met_at)
            .bind(met_by)
            .bind(met_ref)
            .bind(late_reason)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }
}

impl Store {
    pub async fn obligations_of(&self, incident_id: i64) -> Result<Vec<ObligationRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(obligation_select!("WHERE incident_id = $1 ORDER BY id"))
                .bind(incident_id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }
}
