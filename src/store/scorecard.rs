//! What a drill's scorecard reads besides tasks, team, reports and campaigns: the first grade,
//! the first delivery sent for a purpose, and the incident's audit events — each inside the
//! write transaction, so the scorecard and the after-action tasks it creates see one state.

use super::rows::EventRow;
use super::write::{Inner, on_tx};
use super::{Result, WriteTx};
use crate::domain::records::Event;

impl WriteTx {
    /// When the incident's first grade was recorded (any jurisdiction), in micros.
    pub async fn first_grade_at(&mut self, incident_id: i64) -> Result<Option<i64>> {
        let (at,): (Option<i64>,) = on_tx!(self, c, _pg => {
            sqlx::query_as("SELECT MIN(at) FROM grades WHERE incident_id = $1")
                .bind(incident_id)
                .fetch_one(&mut *c)
                .await?
        });
        Ok(at)
    }

    /// When the incident's first delivery for `purpose` (`notice`, `report`, …) was sent, in
    /// micros.
    pub async fn first_sent_at(&mut self, incident_id: i64, purpose: &str) -> Result<Option<i64>> {
        let (at,): (Option<i64>,) = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT MIN(sent_at) FROM deliveries WHERE incident_id = $1 AND purpose = $2 \
                 AND status = 'sent'",
            )
            .bind(incident_id)
            .bind(purpose)
            .fetch_one(&mut *c)
            .await?
        });
        Ok(at)
    }

    /// The incident's audited events, oldest first (at most `limit`).
    pub async fn events_of(&mut self, incident_id: i64, limit: i64) -> Result<Vec<Event>> {
        let rows: Vec<EventRow> = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT id, at, actor, kind, incident_id, data, prev_hash, hash FROM events \
                 WHERE incident_id = $1 ORDER BY id LIMIT $2",
            )
            .bind(incident_id)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(Event::try_from).collect()
    }
}
