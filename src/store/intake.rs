//! What the ingest writer reads before it plans a group commit, in one step: which alerts are
//! re-sends, which are held by an open incident already, which groups have an open incident,
//! how many incidents each intake bucket opened lately and which has a storm incident, the
//! silences active now, and the next ids with the head of the audit chain.
//!
//! On SQLite all of it runs under one lock of the writer connection's handle, statement after
//! statement, an index probe per key ([`super::raw`]). Each separate lookup was a round trip to
//! sqlx's connection thread — two thread wake-ups — and with small group commits (a few alerts
//! each, as single-alert senders make them) those round trips, not SQLite, were most of the
//! writer's time. PostgreSQL sends each step as one statement over the keys as JSON.

use std::collections::HashMap;

use super::Result;
use super::correlate::HeldAlert;
use super::silences::{ACTIVE_SILENCES, ACTIVE_SILENCES_SQLITE, ActiveSilence};
use super::write::{Inner, WriteTx, json, on_tx};
use crate::domain::audit::GENESIS;

/// One alert of the batch, as the lookups see it.
#[derive(Debug, Clone, Copy)]
pub struct IntakeKey<'a> {
    pub dedup: &'a str,
    /// `source|fingerprint`.
    pub alert: &'a str,
    /// Its correlation key.
    pub group: &'a str,
    /// Its intake bucket when it may open an incident (storm control counts those).
    pub bucket: Option<&'a str>,
}

/// What the writer needs to plan the batch.
#[derive(Debug, Default)]
pub struct IntakeLookups {
    /// Dedup key → (alert id, incident id) of alerts already stored.
    pub existing: HashMap<String, (i64, Option<i64>)>,
    /// Alert key → the open incident holding it.
    pub held: HashMap<String, HeldAlert>,
    /// Group key (or a bucket's storm key) → its newest open incident.
    pub open: HashMap<String, i64>,
    /// Bucket → incidents (storm incidents aside) it opened since the window began.
    pub opened: HashMap<String, i64>,
    pub max_alert: i64,
    pub max_incident: i64,
    /// The silences active at the batch's time.
    pub silences: Vec<ActiveSilence>,
}

/// The group key under which a bucket's storm incident collects alerts. It starts with `|`,
/// which no source name contains, so no sender's group key can collide with it.
pub fn storm_key(bucket: &str) -> String {
    format!("|storm|{bucket}")
}

const EXISTING_SQLITE: &str = "SELECT id, incident_id FROM alerts WHERE dedup_key = ?";
const EXISTING_PG: &str = "SELECT dedup_key, id, incident_id FROM alerts \
     WHERE dedup_key IN (SELECT jsonb_array_elements_text($1::jsonb))";
const HELD_SQLITE: &str = "SELECT ia.incident_id, ia.status = 'resolved', ia.starts_at \
     FROM incident_alerts ia JOIN incidents i ON i.id = ia.incident_id \
     WHERE ia.alert_key = ? AND i.status NOT IN ('closed', 'false_positive', 'merged') \
     ORDER BY ia.incident_id DESC LIMIT 1";
const HELD_PG: &str = "SELECT DISTINCT ON (ia.alert_key) ia.alert_key, ia.incident_id, \
     ia.status = 'resolved', ia.starts_at \
     FROM incident_alerts ia JOIN incidents i ON i.id = ia.incident_id \
     WHERE ia.alert_key IN (SELECT jsonb_array_elements_text($1::jsonb)) \
     AND i.status NOT IN ('closed', 'false_positive', 'merged') \
     ORDER BY ia.alert_key, ia.incident_id DESC";
const OPEN_SQLITE: &str = "SELECT MAX(k.incident_id) FROM incident_keys k \
     JOIN incidents i ON i.id = k.incident_id \
     WHERE k.group_key = ? AND i.status NOT IN ('closed', 'false_positive', 'merged')";
const OPEN_PG: &str = "SELECT k.group_key, MAX(k.incident_id) FROM incident_keys k \
     JOIN incidents i ON i.id = k.incident_id \
     WHERE k.group_key IN (SELECT jsonb_array_elements_text($1::jsonb)) \
     AND i.status NOT IN ('closed', 'false_positive', 'merged') GROUP BY k.group_key";
const OPENED: &str = "SELECT COUNT(*) FROM incidents \
     WHERE intake = $1 AND declared_at >= $2 AND storm = FALSE";
const OPENED_SQLITE: &str = "SELECT COUNT(*) FROM incidents \
     WHERE intake = ? AND declared_at >= ? AND storm = FALSE";
const IDS: &str = "SELECT (SELECT COALESCE(MAX(id), 0) FROM alerts), \
     (SELECT COALESCE(MAX(id), 0) FROM incidents), \
     (SELECT id FROM events ORDER BY id DESC LIMIT 1), \
     (SELECT hash FROM events ORDER BY id DESC LIMIT 1)";

fn unique<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut ks: Vec<&str> = keys.collect();
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// Each step's keys follow from the steps before: only alerts that are not re-sends are
/// looked up as held; only those no incident holds, by group; only those whose group has no
/// open incident count for storm control.
impl IntakeLookups {
    fn fresh<'k, 'a>(&self, keys: &'k [IntakeKey<'a>]) -> impl Iterator<Item = &'k IntakeKey<'a>> {
        keys.iter().filter(|k| !self.existing.contains_key(k.dedup))
    }

    fn alert_keys<'a>(&self, keys: &[IntakeKey<'a>]) -> Vec<&'a str> {
        unique(self.fresh(keys).map(|k| k.alert))
    }

    fn group_keys<'a>(&self, keys: &[IntakeKey<'a>]) -> Vec<&'a str> {
        unique(
            self.fresh(keys)
                .filter(|k| !self.held.contains_key(k.alert))
                .map(|k| k.group),
        )
    }

    fn buckets<'a>(&self, keys: &[IntakeKey<'a>]) -> Vec<&'a str> {
        unique(
            self.fresh(keys)
                .filter(|k| !self.held.contains_key(k.alert) && !self.open.contains_key(k.group))
                .filter_map(|k| k.bucket),
        )
    }
}

impl WriteTx {
    /// Everything the ingest writer reads about a batch (see the module notes). `storm_since`:
    /// count incidents per bucket from then, and find the buckets' storm incidents; `None`
    /// when storm control is off.
    pub async fn intake_lookups(
        &mut self,
        keys: &[IntakeKey<'_>],
        storm_since: Option<i64>,
        now: i64,
    ) -> Result<IntakeLookups> {
        let mut out = IntakeLookups::default();
        let head: (Option<i64>, Option<String>) = on_tx!(self, c, _pg => {
            if let Some(lite) = super::raw::AsSqlite::as_sqlite(&mut *c) {
                let mut h = lite.lock_handle().await?;
                sqlite_lookups(&mut h, keys, storm_since, now, &mut out)?
            } else {
                let existing: Vec<(String, i64, Option<i64>)> = sqlx::query_as(EXISTING_PG)
                    .bind(json(&keys.iter().map(|k| k.dedup).collect::<Vec<_>>()))
                    .fetch_all(&mut *c)
                    .await?;
                out.existing = existing.into_iter().map(|(k, id, inc)| (k, (id, inc))).collect();
                let held: Vec<(String, i64, bool, i64)> = sqlx::query_as(HELD_PG)
                    .bind(json(&out.alert_keys(keys)))
                    .fetch_all(&mut *c)
                    .await?;
                out.held = held
                    .into_iter()
                    .map(|(k, incident_id, resolved, starts_at)| {
                        (k, HeldAlert { incident_id, resolved, starts_at })
                    })
                    .collect();
                let open: Vec<(String, i64)> = sqlx::query_as(OPEN_PG)
                    .bind(json(&out.group_keys(keys)))
                    .fetch_all(&mut *c)
                    .await?;
                out.open = open.into_iter().collect();
                if let Some(since) = storm_since {
                    let buckets = out.buckets(keys);
                    for b in &buckets {
                        let (n,): (i64,) = sqlx::query_as(OPENED)
                            .bind(*b)
                            .bind(since)
                            .fetch_one(&mut *c)
                            .await?;
                        out.opened.insert(b.to_string(), n);
                    }
                    let storms: Vec<String> = buckets.iter().map(|b| storm_key(b)).collect();
                    let open: Vec<(String, i64)> = sqlx::query_as(OPEN_PG)
                        .bind(json(&storms))
                        .fetch_all(&mut *c)
                        .await?;
                    out.open.extend(open);
                }
                out.silences = sqlx::query_as(ACTIVE_SILENCES)
                    .bind(now)
                    .fetch_all(&mut *c)
                    .await?;
                let (alerts, incidents, id, hash): (i64, i64, Option<i64>, Option<String>) =
                    sqlx::query_as(IDS).fetch_one(&mut *c).await?;
                out.max_alert = alerts;
                out.max_incident = incidents;
                (id, hash)
            }
        });
        self.set_head(match head {
            (Some(id), Some(hash)) => (id, hash),
            _ => (0, GENESIS.to_string()),
        });
        Ok(out)
    }
}

/// The SQLite steps, on one locked handle. Returns the audit chain's head.
fn sqlite_lookups(
    h: &mut sqlx::sqlite::LockedSqliteHandle<'_>,
    keys: &[IntakeKey<'_>],
    storm_since: Option<i64>,
    now: i64,
    out: &mut IntakeLookups,
) -> Result<(Option<i64>, Option<String>)> {
    use super::raw::Stmt;
    {
        let mut st = Stmt::prepare(h, EXISTING_SQLITE)?;
        for k in keys {
            st.row().bind(k.dedup).each(|r| {
                if let Some(id) = r.int(0) {
                    out.existing.insert(k.dedup.to_string(), (id, r.int(1)));
                }
            })?;
        }
    }
    {
        let wanted = out.alert_keys(keys);
        let mut st = Stmt::prepare(h, HELD_SQLITE)?;
        for k in wanted {
            st.row().bind(k).each(|r| {
                if let (Some(incident_id), Some(resolved), Some(starts_at)) =
                    (r.int(0), r.int(1), r.int(2))
                {
                    let held = HeldAlert {
                        incident_id,
                        resolved: resolved != 0,
                        starts_at,
                    };
                    out.held.insert(k.to_string(), held);
                }
            })?;
        }
    }
    let probe_open = |h: &mut sqlx::sqlite::LockedSqliteHandle<'_>,
                      wanted: &[String],
                      out: &mut IntakeLookups|
     -> Result<()> {
        let mut st = Stmt::prepare(h, OPEN_SQLITE)?;
        for k in wanted {
            st.row().bind(k).each(|r| {
                if let Some(id) = r.int(0) {
                    out.open.insert(k.clone(), id);
                }
            })?;
        }
        Ok(())
    };
    let groups: Vec<String> = out.group_keys(keys).iter().map(|k| k.to_string()).collect();
    probe_open(h, &groups, out)?;
    if let Some(since) = storm_since {
        let buckets = out.buckets(keys);
        {
            let mut st = Stmt::prepare(h, OPENED_SQLITE)?;
            for b in &buckets {
                st.row().bind(*b).bind(since).each(|r| {
                    out.opened.insert(b.to_string(), r.int(0).unwrap_or(0));
                })?;
            }
        }
        let storms: Vec<String> = buckets.iter().map(|b| storm_key(b)).collect();
        probe_open(h, &storms, out)?;
    }
    {
        let mut st = Stmt::prepare(h, ACTIVE_SILENCES_SQLITE)?;
        st.row().bind(now).each(|r| {
            if let (Some(id), Some(matchers)) = (r.int(0), r.text(1)) {
                out.silences.push(ActiveSilence {
                    id,
                    matchers,
                    source: r.text(2),
                    rule: r.text(3),
                });
            }
        })?;
    }
    let mut head = (None, None);
    let mut st = Stmt::prepare(h, IDS)?;
    st.row().each(|r| {
        out.max_alert = r.int(0).unwrap_or(0);
        out.max_incident = r.int(1).unwrap_or(0);
        head = (r.int(2), r.text(3));
    })?;
    Ok(head)
}
