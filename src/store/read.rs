//! The read side: listings, timelines, metrics figures and the audit-chain check. On SQLite
//! these use the read-only pool, so they never wait for the writer.

use std::collections::HashMap;

use super::rows::{AlertRow, EventRow, IncidentRow, alert_columns, incident_columns};
use super::{Result, Store, on_pool};
use crate::domain::audit::{EventContent, GENESIS, alert_hash, event_hash};
use crate::domain::incident::{Category, Severity, Status};
use crate::domain::records::{AlertRecord, Event, Incident};

/// Filters for listing incidents; `None` means "any". Newest first, paged by `before`.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Option<Status>,
    pub open: Option<bool>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub drill: Option<bool>,
    pub before: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only alerts that opened or joined no incident (and were not silenced).
    pub unmatched: bool,
    /// Only alerts a silence silenced.
    pub silenced: bool,
    pub incident_id: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// The outcome of walking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub alerts_checked: u64,
    /// The first event at which the chain is broken, and why.
    pub broken_at: Option<i64>,
    pub problem: Option<String>,
    /// Hash of the last event: write it down somewhere else to detect a rewritten chain.
    pub head: String,
}

const PAGE: i64 = 5_000;

impl Store {
    /// A cheap round trip, for `/readyz` and the systemd watchdog.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, pool, _pg => { sqlx::query("SELECT 1").execute(pool).await?; });
        Ok(())
    }

    pub async fn incident(&self, id: i64) -> Result<Option<Incident>> {
        let row: Option<IncidentRow> = on_pool!(self, pool, _pg => {
            sqlx::query_as(concat!("SELECT ", incident_columns!(), " FROM incidents WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(Incident::try_from).transpose()
    }

    pub async fn incidents(&self, f: &IncidentFilter) -> Result<Vec<Incident>> {
        let rows: Vec<IncidentRow> = on_pool!(self, pool, _pg => {
            sqlx::query_as(concat!(
                "SELECT ", incident_columns!(), " FROM incidents WHERE ",
                "($1 IS NULL OR status = $1) AND ($2 IS NULL OR severity = $2) AND ($3 IS NULL OR category = $3) ",
                "AND ($4 IS NULL OR drill = $4) AND ($5 IS NULL OR id < $5) ",
                "AND ($6 IS NULL OR (status NOT IN ('closed', 'false_positive', 'merged')) = $6) ",
                "ORDER BY id DESC LIMIT $7"
            ))
            .bind(f.status.map(Status::as_str))
            .bind(f.severity.map(Severity::as_str))
            .bind(f.category.map(Category::as_str))
            .bind(f.drill)
            .bind(f.before)
            .bind(f.open)
            .bind(f.limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Incident::try_from).collect()
    }

    pub async fn alerts(&self, f: &AlertFilter) -> Result<Vec<AlertRecord>> {
        let rows: Vec<AlertRow> = on_pool!(self, pool, _pg => {
            sqlx::query_as(concat!(
                "SELECT ", alert_columns!(), " FROM alerts WHERE ",
                "($1 IS NULL OR incident_id = $1) AND ($2 = FALSE OR (incident_id IS NULL AND silence_id IS NULL)) ",
                "AND ($3 IS NULL OR id < $3) AND ($4 = FALSE OR silence_id IS NOT NULL) ",
                "ORDER BY id DESC LIMIT $5"
            ))
            .bind(f.incident_id)
            .bind(f.unmatched)
            .bind(f.before)
            .bind(f.silenced)
            .bind(f.limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(AlertRecord::try_from).collect()
    }

    /// The audited events of one incident and of the incidents merged into it (and into
    /// those), oldest first.
    pub async fn timeline(&self, incident_id: i64, after: i64, limit: i64) -> Result<Vec<Event>> {
        let rows: Vec<EventRow> = on_pool!(self, pool, pg => {
            let sql = if pg {
                "WITH RECURSIVE family(id) AS (SELECT $1::bigint UNION \
                 SELECT i.id FROM incidents i JOIN family f ON i.merged_into = f.id) \
                 SELECT id, at, actor, kind, incident_id, data, prev_hash, hash FROM events \
                 WHERE incident_id IN (SELECT id FROM family) AND id > $2 ORDER BY id LIMIT $3"
            } else {
                "WITH RECURSIVE family(id) AS (SELECT $1 UNION \
                 SELECT i.id FROM incidents i JOIN family f ON i.merged_into = f.id) \
                 SELECT id, at, actor, kind, incident_id, data, prev_hash, hash FROM events \
                 WHERE incident_id IN (SELECT id FROM family) AND id > $2 ORDER BY id LIMIT $3"
            };
            sqlx::query_as(sql)
            .bind(incident_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Event::try_from).collect()
    }

    /// Open (not closed, not false-positive) real incidents per severity; drills excluded.
    pub async fn open_incidents_by_severity(&self) -> Result<Vec<(Severity, i64)>> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool, _pg => {
            sqlx::query_as(
                "SELECT severity, COUNT(*) FROM incidents \
                 WHERE status NOT IN ('closed', 'false_positive', 'merged') AND drill = FALSE GROUP BY severity",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(s, n)| s.parse().ok().map(|s| (s, n)))
            .collect())
    }

    /// Walk the whole chain: ids dense from 1, each `prev_hash` equal to the previous hash,
    /// each hash recomputed from the content, and every alert an event vouches for unchanged.
    /// Stops at the first broken event. `progress` is called after each page.
    pub async fn verify_audit(&self, mut progress: impl FnMut(u64)) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            events: 0,
            alerts_checked: 0,
            broken_at: None,
            problem: None,
            head: GENESIS.to_string(),
        };
        let mut last_id = 0i64;
        // Alerts found in another incident than the event that vouched for them said, each
        // with that event and the incident they are in: cleared when a later event (a move, a
        // merge) vouches for them there.
        let mut moved: HashMap<i64, (i64, String, Option<i64>)> = HashMap::new();
        loop {
            let page: Vec<EventRow> = on_pool!(self, pool, _pg => {
                sqlx::query_as(
                    "SELECT id, at, actor, kind, incident_id, data, prev_hash, hash FROM events \
                     WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(last_id)
                .bind(PAGE)
                .fetch_all(pool)
                .await?
            });
            if page.is_empty() {
                if let Some((_, (event_id, problem, _))) =
                    moved.into_iter().min_by_key(|(_, v)| v.0)
                {
                    report.broken_at = Some(event_id);
                    report.problem = Some(problem);
                }
                return Ok(report);
            }
            let mut vouched: HashMap<i64, (String, Option<i64>, i64)> = HashMap::new();
            for e in &page {
                if let Some(problem) = check_event(e, last_id, &report.head) {
                    report.broken_at = Some(e.id);
                    report.problem = Some(problem);
                    return Ok(report);
                }
                collect_alert_hashes(e, &mut vouched);
                moved.retain(|id, (_, _, now_in)| {
                    vouched
                        .get(id)
                        .is_none_or(|(_, incident, _)| incident != now_in)
                });
                report.head = e.hash.clone();
                last_id = e.id;
                report.events += 1;
            }
            if let Some((event_id, problem)) = self.check_alerts(&vouched, &mut moved).await? {
                report.broken_at = Some(event_id);
                report.problem = Some(problem);
                return Ok(report);
            }
            report.alerts_checked += vouched.len() as u64;
            progress(report.events);
        }
    }

    /// Compare stored alerts with the hashes their events recorded. Returns the first mismatch
    /// of content; an alert in another incident than its event said goes to `moved`, for a
    /// later event to account for.
    async fn check_alerts(
        &self,
        vouched: &HashMap<i64, (String, Option<i64>, i64)>,
        moved: &mut HashMap<i64, (i64, String, Option<i64>)>,
    ) -> Result<Option<(i64, String)>> {
        if vouched.is_empty() {
            return Ok(None);
        }
        let ids: Vec<i64> = vouched.keys().copied().collect();
        let ids = serde_json::to_string(&ids).unwrap_or_default();
        let rows: Vec<AlertRow> = on_pool!(self, pool, pg => {
            let sql = if pg {
                concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)")
            } else {
                concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id IN (SELECT value FROM json_each($1))")
            };
            sqlx::query_as(sql).bind(ids).fetch_all(pool).await?
        });
        let mut first: Option<(i64, String)> = None;
        let mut found = 0;
        for r in &rows {
            let Some((want, incident, event_id)) = vouched.get(&r.id) else {
                continue;
            };
            found += 1;
            let problem = if &alert_hash(r.into()) != want || &r.hash != want {
                Some(format!(
                    "alert {} was changed after event {event_id} recorded it",
                    r.id
                ))
            } else {
                if r.incident_id != *incident {
                    moved.insert(
                        r.id,
                        (
                            *event_id,
                            format!(
                                "alert {} was moved to another incident after event {event_id}, and no event records the move",
                                r.id
                            ),
                            r.incident_id,
                        ),
                    );
                }
                None
            };
            if let Some(p) = problem
                && first.as_ref().is_none_or(|(e, _)| *event_id < *e)
            {
                first = Some((*event_id, p));
            }
        }
        if first.is_none() && found < vouched.len() {
            let present: std::collections::HashSet<i64> = rows.iter().map(|r| r.id).collect();
            let (id, (_, _, event_id)) = vouched
                .iter()
                .filter(|(id, _)| !present.contains(id))
                .min_by_key(|(_, (_, _, e))| *e)
                .map(|(id, v)| (*id, v.clone()))
                .unwrap_or_default();
            first = Some((
                event_id,
                format!("alert {id} recorded by event {event_id} is missing"),
            ));
        }
        Ok(first)
    }
}

fn check_event(e: &EventRow, last_id: i64, prev_hash: &str) -> Option<String> {
    if e.id != last_id + 1 {
        return Some(format!(
            "event ids jump from {last_id} to {}: events were deleted",
            e.id
        ));
    }
    if e.prev_hash != prev_hash {
        return Some(format!(
            "event {} does not follow event {last_id} (prev_hash differs)",
            e.id
        ));
    }
    let recomputed = event_hash(
        prev_hash,
        EventContent {
            id: e.id,
            at_micros: e.at,
            actor: &e.actor,
            kind: &e.kind,
            incident_id: e.incident_id,
            data: &e.data,
        },
    );
    if recomputed != e.hash {
        return Some(format!(
            "event {} ({}) was changed after it was written: its content no longer matches its hash",
            e.id, e.kind
        ));
    }
    None
}

/// Alerts an event vouches for: `data.alerts[] = {id, hash}`.
fn collect_alert_hashes(e: &EventRow, out: &mut HashMap<i64, (String, Option<i64>, i64)>) {
    let Ok(data) = serde_json::from_str::<serde_json::Value>(&e.data) else {
        return;
    };
    let Some(alerts) = data.get("alerts").and_then(|a| a.as_array()) else {
        return;
    };
    for a in alerts {
        if let (Some(id), Some(hash)) = (
            a.get("id").and_then(|v| v.as_i64()),
            a.get("hash").and_then(|v| v.as_str()),
        ) {
            out.insert(id, (hash.to_string(), e.incident_id, e.id));
        }
    }
}
