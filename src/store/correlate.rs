//! Correlation's part of the write side: which open incident holds an alert already, the
//! state of each alert of an incident, how many incidents an intake bucket opened lately, and
//! moving alerts between incidents (move, merge).

use crate::domain::records::AlertRecord;

use super::Result;
use super::rows::{AlertRow, alert_columns};
use super::write::{BulkInsert, Inner, WriteTx, chunks, insert_chunks, on_tx};

/// An alert (source and fingerprint) as an open incident holds it: the newest notification's
/// state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldAlert {
    pub incident_id: i64,
    pub resolved: bool,
    pub starts_at: i64,
}

/// A row of `incident_alerts` to write (insert, or update the newest notification).
#[derive(Debug, Clone)]
pub struct IncidentAlertRow<'a> {
    pub alert_key: &'a str,
    pub incident_id: i64,
    pub resolved: bool,
    pub starts_at: i64,
    pub alert_id: i64,
}

static UPSERT_INCIDENT_ALERTS: BulkInsert = BulkInsert::new(
    "INSERT INTO incident_alerts (alert_key, incident_id, status, starts_at, alert_id)",
    5,
    " ON CONFLICT (alert_key, incident_id) DO UPDATE SET status = excluded.status, \
     starts_at = excluded.starts_at, alert_id = excluded.alert_id",
);

fn status(resolved: bool) -> &'static str {
    if resolved { "resolved" } else { "firing" }
}

impl WriteTx {
    /// Insert each alert's state in its incident, or replace it with a newer notification's.
    /// Each (alert key, incident) appears at most once in `rows`.
    pub async fn upsert_incident_alerts(&mut self, rows: &[IncidentAlertRow<'_>]) -> Result<()> {
        on_tx!(self, c, pg => {
            insert_chunks!(c, pg, UPSERT_INCIDENT_ALERTS, rows, |q, r| {
                q.bind(r.alert_key)
                    .bind(r.incident_id)
                    .bind(status(r.resolved))
                    .bind(r.starts_at)
                    .bind(r.alert_id)
            });
        });
        Ok(())
    }

    /// The alert keys an incident holds, with their state and newest notification.
    pub async fn incident_alert_states(
        &mut self,
        incident_id: i64,
    ) -> Result<Vec<(String, HeldAlert, i64)>> {
        let rows: Vec<(String, bool, i64, i64)> = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT ia.alert_key, ia.status = 'resolved', ia.starts_at, ia.alert_id FROM incident_alerts ia \
                 WHERE ia.incident_id = $1 AND ia.alert_key IN \
                 (SELECT DISTINCT source || '|' || fingerprint FROM alerts WHERE incident_id = $1)",
            )
            .bind(incident_id)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(k, resolved, starts_at, alert_id)| {
                (
                    k,
                    HeldAlert {
                        incident_id,
                        resolved,
                        starts_at,
                    },
                    alert_id,
                )
            })
            .collect())
    }

    /// One alert key's state in one incident, with its newest notification's row.
    pub async fn incident_alert(
        &mut self,
        alert_key: &str,
        incident_id: i64,
    ) -> Result<Option<(HeldAlert, i64)>> {
        let row: Option<(bool, i64, i64)> = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT status = 'resolved', starts_at, alert_id FROM incident_alerts \
                 WHERE alert_key = $1 AND incident_id = $2",
            )
            .bind(alert_key)
            .bind(incident_id)
            .fetch_optional(&mut *c)
            .await?
        });
        Ok(row.map(|(resolved, starts_at, alert_id)| {
            (
                HeldAlert {
                    incident_id,
                    resolved,
                    starts_at,
                },
                alert_id,
            )
        }))
    }

    /// What an incident holds that belongs to the people it affected or to regulators —
    /// subjects, notice campaigns, submitted reports, a public announcement — each as a count.
    pub async fn outward_work(&mut self, incident_id: i64) -> Result<[(&'static str, i64); 4]> {
        let (subjects, campaigns, reports, announcements): (i64, i64, i64, i64) = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM subjects WHERE incident_id = $1), \
                 (SELECT COUNT(*) FROM campaigns WHERE incident_id = $1), \
                 (SELECT COUNT(*) FROM reports WHERE incident_id = $1 AND status = 'submitted'), \
                 (SELECT COUNT(*) FROM announcements WHERE incident_id = $1)",
            )
            .bind(incident_id)
            .fetch_one(&mut *c)
            .await?
        });
        Ok([
            ("affected people imported", subjects),
            ("notice campaigns", campaigns),
            ("reports submitted", reports),
            ("a public announcement", announcements),
        ])
    }

    /// Take an alert key's state out of an incident (it moved elsewhere).
    pub async fn delete_incident_alert(&mut self, alert_key: &str, incident_id: i64) -> Result<()> {
        on_tx!(self, c, _pg => {
            sqlx::query("DELETE FROM incident_alerts WHERE alert_key = $1 AND incident_id = $2")
                .bind(alert_key)
                .bind(incident_id)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Move alert rows to another incident: all of `from`'s when `alert_key` is `None`, else
    /// that alert's notifications only. Returns their ids and content hashes, by id (the
    /// event recording the move vouches for them where they are now).
    pub async fn move_alerts(
        &mut self,
        from: i64,
        alert_key: Option<&str>,
        to: i64,
    ) -> Result<Vec<(i64, String)>> {
        let mut rows: Vec<(i64, String)> = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "UPDATE alerts SET incident_id = $3 WHERE incident_id = $1 \
                 AND ($2 IS NULL OR source || '|' || fingerprint = $2) RETURNING id, hash",
            )
            .bind(from)
            .bind(alert_key)
            .bind(to)
            .fetch_all(&mut *c)
            .await?
        });
        rows.sort_unstable();
        Ok(rows)
    }

    /// Let the keys `from` collected alerts under lead to `to` as well (a merge).
    pub async fn copy_incident_keys(&mut self, from: i64, to: i64) -> Result<u64> {
        let n = on_tx!(self, c, _pg => {
            sqlx::query(
                "INSERT INTO incident_keys (group_key, incident_id) \
                 SELECT group_key, $2 FROM incident_keys WHERE incident_id = $1 ON CONFLICT DO NOTHING",
            )
            .bind(from)
            .bind(to)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(n)
    }

    /// One alert (one notification's row), by id.
    pub async fn alert(&mut self, id: i64) -> Result<Option<AlertRecord>> {
        let row: Option<AlertRow> = on_tx!(self, c, _pg => {
            sqlx::query_as(concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
        });
        row.map(AlertRecord::try_from).transpose()
    }

    /// Point the recorded rows of an alert (those in no incident) at an incident: a recorded
    /// alert promoted or moved to one. Returns their ids and hashes, by id.
    pub async fn attach_recorded(
        &mut self,
        alert_key: &str,
        incident_id: i64,
    ) -> Result<Vec<(i64, String)>> {
        let mut rows: Vec<(i64, String)> = on_tx!(self, c, _pg => {
            sqlx::query_as(
                "UPDATE alerts SET incident_id = $2 WHERE incident_id IS NULL \
                 AND source || '|' || fingerprint = $1 RETURNING id, hash",
            )
            .bind(alert_key)
            .bind(incident_id)
            .fetch_all(&mut *c)
            .await?
        });
        rows.sort_unstable();
        Ok(rows)
    }
}
