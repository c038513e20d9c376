//! Drill runs: one row per drill, beside its (drill) incident.

use serde::Serialize;

use super::write::{Inner, on_tx};
use super::{Result, Store, WriteTx, on_pool};

/// A drill run.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DrillRow {
    pub id: i64,
    pub scenario: String,
    pub mode: String,
    pub incident_id: i64,
    #[serde(with = "crate::domain::time::micros")]
    pub started_at: i64,
    #[serde(with = "crate::domain::time::micros")]
    pub ends_at: i64,
    #[serde(with = "crate::domain::time::micros::option")]
    pub ended_at: Option<i64>,
    pub status: String,
    pub started_by: String,
    pub schedule_key: Option<String>,
    pub scorecard: Option<String>,
    pub report: Option<String>,
    /// JSON: what the drill was started with (targets, owner, objectives, capture recipients).
    #[serde(skip)]
    pub plan: String,
}

/// A drill to record.
#[derive(Debug, Clone)]
pub struct NewDrill<'a> {
    pub scenario: &'a str,
    pub mode: &'a str,
    pub incident_id: i64,
    pub started_at: i64,
    pub ends_at: i64,
    pub started_by: &'a str,
    pub schedule_key: Option<&'a str>,
    pub plan: &'a str,
}

macro_rules! drill_select {
    ($where:literal) => {
        concat!(
            "SELECT id, scenario, mode, incident_id, started_at, ends_at, ended_at, status, ",
            "started_by, schedule_key, scorecard, report, plan FROM drills ",
            $where
        )
    };
}

impl WriteTx {
    pub async fn insert_drill(&mut self, d: &NewDrill<'_>) -> Result<i64> {
        let (id,): (i64,) = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "INSERT INTO drills (scenario, mode, incident_id, started_at, ends_at, status, \
                 started_by, schedule_key, plan) VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $8) RETURNING id",
            )
            .bind(d.scenario)
            .bind(d.mode)
            .bind(d.incident_id)
            .bind(d.started_at)
            .bind(d.ends_at)
            .bind(d.started_by)
            .bind(d.schedule_key)
            .bind(d.plan)
            .fetch_one(&mut *c)
            .await?
        });
        Ok(id)
    }

    pub async fn drill_by_schedule_key(&mut self, key: &str) -> Result<Option<DrillRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(drill_select!("WHERE schedule_key = $1"))
                .bind(key)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    pub async fn drill_of_incident(&mut self, incident_id: i64) -> Result<Option<DrillRow>> {
        let row = on_tx!(self, c, _pg => {
            sqlx::query_as(drill_select!("WHERE incident_id = $1"))
                .bind(incident_id)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(row)
    }

    /// Mark a running drill ended; false when it had already ended.
    pub async fn end_drill(
        &mut self,
        id: i64,
        ended_at: i64,
        scorecard: Option<&str>,
        report: Option<&str>,
    ) -> Result<bool> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "UPDATE drills SET status = 'ended', ended_at = $2, scorecard = $3, report = $4 \
                 WHERE id = $1 AND status = 'running'",
            )
            .bind(id)
            .bind(ended_at)
            .bind(scorecard)
            .bind(report)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}

impl Store {
    pub async fn drill(&self, id: i64) -> Result<Option<DrillRow>> {
        let row = on_pool!(self, pool, _pg => {
            sqlx::query_as(drill_select!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// Drills, newest first.
    pub async fn drills(&self, limit: i64) -> Result<Vec<DrillRow>> {
        let rows = on_pool!(self, pool, _pg => {
            sqlx::query_as(drill_select!("ORDER BY started_at DESC, id DESC LIMIT $1"))
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }
}
