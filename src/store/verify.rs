//! `incidentd audit verify`: walk the whole chain in one read snapshot and check
//! * each event: ids dense from 1, each `prev_hash` the previous hash, each hash recomputed
//!   from its content, and with `[audit] key` each MAC;
//! * each alert an event vouches for, unchanged and where the events put it;
//! * each sealed row (store::seals) against the last digest the chain holds for it: changed,
//!   added or deleted outside incidentd;
//! * optionally an anchored head (`--expect-head`): the chain still passes through it.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use futures_util::TryStreamExt;
use sqlx::Row;

use super::rows::{AlertRow, alert_columns};
use super::seals::Sealed;
use super::{Result, Store};
use crate::domain::audit::{EventContent, GENESIS, alert_hash, event_hash, mac_matches};

/// A head written down earlier: `ID:HASH`, or just `HASH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectHead {
    pub id: Option<i64>,
    pub hash: String,
}

impl FromStr for ExpectHead {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (id, hash) = match s.split_once(':') {
            Some((id, hash)) => (
                Some(id.trim().parse::<i64>().map_err(|_| {
                    format!("`{id}` is not an event id: give ID:HASH as `audit verify` or the daemon's log printed it")
                })?),
                hash.trim(),
            ),
            None => (None, s.trim()),
        };
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`{hash}` is not a head hash (64 hex digits): give ID:HASH as `audit verify` or the daemon's log printed it"
            ));
        }
        Ok(ExpectHead {
            id,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// The outcome of walking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub alerts_checked: u64,
    /// Sealed rows compared with the chain.
    pub rows_checked: u64,
    /// Whether `[audit] key` was given, so MACs were checked.
    pub keyed: bool,
    pub macs_checked: u64,
    /// Events without a MAC from before the key was set (all events when no key is given).
    pub unkeyed_events: u64,
    /// The event at which the trail stops being trustworthy, and why.
    pub broken_at: Option<i64>,
    pub problem: Option<String>,
    /// Every sealed row that differs (at most 100), the first also in `problem`.
    pub problems: Vec<String>,
    /// The last event: write `head_id:head` down somewhere else to detect a rewritten or
    /// truncated chain later (`--expect-head`).
    pub head_id: i64,
    pub head: String,
    pub head_mac: Option<String>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.problem.is_none()
    }

    fn fail(&mut self, at: Option<i64>, problem: String) {
        if self.problem.is_none() {
            self.broken_at = at;
            self.problem = Some(problem);
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct ChainRow {
    id: i64,
    at: i64,
    actor: String,
    kind: String,
    incident_id: Option<i64>,
    data: String,
    prev_hash: String,
    hash: String,
    mac: Option<String>,
}

/// One read snapshot for the whole walk, so a daemon writing meanwhile cannot make rows and
/// chain disagree.
enum Snap {
    Lite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Snap {
    async fn begin(store: &Store) -> Result<Snap> {
        Ok(match store {
            Store::Sqlite(s) => Snap::Lite(s.read.begin().await?),
            Store::Postgres(s) => {
                let mut t = s.pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *t)
                    .await?;
                Snap::Pg(t)
            }
        })
    }
}

macro_rules! on_snap {
    ($s:expr, $c:ident, $pg:ident => $body:expr) => {
        match &mut $s {
            Snap::Lite(t) => {
                let $c: &mut sqlx::SqliteConnection = &mut *t;
                let $pg = false;
                let _ = $pg;
                $body
            }
            Snap::Pg(t) => {
                let $c: &mut sqlx::PgConnection = &mut *t;
                let $pg = true;
                let _ = $pg;
                $body
            }
        }
    };
}

const PAGE: i64 = 5_000;
const MAX_PROBLEMS: usize = 100;

/// The last digest the chain holds for each sealed row: (table, key) → (digest, event).
type Seals = HashMap<(Sealed, String), (String, i64)>;

impl Store {
    /// [`Store::verify_audit_with`] without an anchored head.
    pub async fn verify_audit(&self, progress: impl FnMut(u64)) -> Result<VerifyReport> {
        self.verify_audit_with(None, progress).await
    }

    /// Walk the whole chain, then the sealed rows. Stops at the first broken event; lists
    /// every sealed row that differs. `progress` is called after each page of events.
    pub async fn verify_audit_with(
        &self,
        expect: Option<&ExpectHead>,
        mut progress: impl FnMut(u64),
    ) -> Result<VerifyReport> {
        let key = self.audit_key();
        let mut report = VerifyReport {
            events: 0,
            alerts_checked: 0,
            rows_checked: 0,
            keyed: key.is_some(),
            macs_checked: 0,
            unkeyed_events: 0,
            broken_at: None,
            problem: None,
            problems: Vec::new(),
            head_id: 0,
            head: GENESIS.to_string(),
            head_mac: None,
        };
        let mut snap = Snap::begin(self).await?;
        let mut seals: Seals = HashMap::new();
        let mut first_keyed: Option<i64> = None;
        let mut expect_seen = false;
        // Alerts found in another incident than the event that vouched for them said, each
        // with that event and the incident they are in: cleared when a later event (a move, a
        // merge) vouches for them there.
        let mut moved: HashMap<i64, (i64, String, Option<i64>)> = HashMap::new();
        loop {
            let last_id = report.head_id;
            let page: Vec<ChainRow> = on_snap!(snap, c, _pg => {
                sqlx::query_as(
                    "SELECT id, at, actor, kind, incident_id, data, prev_hash, hash, mac FROM events \
                     WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(last_id)
                .bind(PAGE)
                .fetch_all(&mut *c)
                .await?
            });
            if page.is_empty() {
                break;
            }
            let mut vouched: HashMap<i64, (String, Option<i64>, i64)> = HashMap::new();
            for e in &page {
                if let Some(problem) = check_event(e, report.head_id, &report.head) {
                    report.fail(Some(e.id), problem);
                    return Ok(report);
                }
                if let Some(problem) = check_mac(key, e, &mut first_keyed, &mut report) {
                    report.fail(Some(e.id), problem);
                    return Ok(report);
                }
                match expect.map(|x| check_expected(x, e)) {
                    Some(Err(problem)) => {
                        report.fail(Some(e.id), problem);
                        return Ok(report);
                    }
                    Some(Ok(true)) => expect_seen = true,
                    _ => {}
                }
                collect_alert_hashes(e, &mut vouched);
                collect_seals(e, &mut seals);
                moved.retain(|id, (_, _, now_in)| {
                    vouched
                        .get(id)
                        .is_none_or(|(_, incident, _)| incident != now_in)
                });
                report.head = e.hash.clone();
                report.head_id = e.id;
                report.head_mac = e.mac.clone();
                report.events += 1;
            }
            if let Some((event_id, problem)) = check_alerts(&mut snap, &vouched, &mut moved).await?
            {
                report.fail(Some(event_id), problem);
                return Ok(report);
            }
            report.alerts_checked += vouched.len() as u64;
            progress(report.events);
        }
        if let Some((_, (event_id, problem, _))) = moved.into_iter().min_by_key(|(_, v)| v.0) {
            report.fail(Some(event_id), problem);
            return Ok(report);
        }
        if let Some(problem) = check_end(expect, expect_seen, key.is_some(), &report) {
            report.fail(Some(report.head_id), problem);
            return Ok(report);
        }
        check_rows(&mut snap, seals, &mut report).await?;
        Ok(report)
    }
}

/// An event's MAC, when incidentd holds the audit key: it must match the event's hash, and once
/// one event carries a MAC every later one must. Counts what it checked in `report`.
fn check_mac(
    key: Option<&crate::domain::audit::AuditKey>,
    e: &ChainRow,
    first_keyed: &mut Option<i64>,
    report: &mut VerifyReport,
) -> Option<String> {
    let Some(k) = key else {
        report.unkeyed_events += 1;
        return None;
    };
    match &e.mac {
        Some(m) if mac_matches(k, &e.hash, m) => {
            report.macs_checked += 1;
            first_keyed.get_or_insert(e.id);
            None
        }
        Some(_) => Some(format!(
            "event {} ({}) has a MAC that does not match its hash: the chain was rewritten by someone without the audit key (or [audit] key is not the key it was written with)",
            e.id, e.kind
        )),
        None => {
            if let Some(k) = first_keyed {
                return Some(format!(
                    "event {} ({}) carries no MAC though event {k} before it does: events were rewritten or added without the audit key",
                    e.id, e.kind
                ));
            }
            report.unkeyed_events += 1;
            None
        }
    }
}

/// Whether `e` is the head written down earlier (by id, or by hash when no id was given); a
/// problem when it has the id but not the hash.
fn check_expected(x: &ExpectHead, e: &ChainRow) -> std::result::Result<bool, String> {
    match x.id {
        Some(id) if id == e.id => {
            if e.hash != x.hash {
                return Err(format!(
                    "event {} is not the head written down earlier ({}): the chain was rewritten up to there",
                    e.id, x.hash
                ));
            }
            Ok(true)
        }
        None if e.hash == x.hash => Ok(true),
        _ => Ok(false),
    }
}

/// What the end of the chain shows: a head written down earlier that was never met, or a
/// newest event without a MAC though the audit key is set.
fn check_end(
    expect: Option<&ExpectHead>,
    expect_seen: bool,
    keyed: bool,
    report: &VerifyReport,
) -> Option<String> {
    if let Some(x) = expect
        && !expect_seen
    {
        return Some(match x.id {
            Some(id) if id > report.head_id => format!(
                "the chain ends at event {} but event {id} ({}) was its head earlier: events were deleted from its end",
                report.head_id, x.hash
            ),
            _ => format!(
                "the head written down earlier ({}) is not in the chain: events were deleted from its end, or the chain was rewritten",
                x.hash
            ),
        });
    }
    if keyed && report.head_id > 0 && report.head_mac.is_none() {
        return Some(format!(
            "the newest event ({}) carries no MAC though [audit] key is set: the chain was rewritten without the key, or incidentd has not started since the key was set (starting it marks the chain)",
            report.head_id
        ));
    }
    None
}

async fn check_rows(snap: &mut Snap, mut seals: Seals, report: &mut VerifyReport) -> Result<()> {
    let head = report.head_id;
    let mut problems: Vec<(i64, String)> = Vec::new();
    for table in Sealed::ALL {
        let spec = table.spec();
        let mut check = |cols: Vec<String>| {
            let (key, digest) = spec.digest(&cols);
            report.rows_checked += 1;
            match seals.remove(&(table, key.clone())) {
                Some((want, _)) if want == digest => {}
                Some((_, event)) => problems.push((
                    event,
                    format!(
                        "{} {key} was changed outside incidentd after event {event} sealed it",
                        spec.table
                    ),
                )),
                None => problems.push((
                    head,
                    format!(
                        "{} {key} was added outside incidentd: no audit event seals it",
                        spec.table
                    ),
                )),
            }
        };
        on_snap!(*snap, c, pg => {
            let sql = spec.select(pg, false);
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *c);
            while let Some(r) = rows.try_next().await? {
                let cols = (0..r.len())
                    .map(|i| r.try_get::<Option<String>, _>(i).map(|v| v.unwrap_or_default()))
                    .collect::<std::result::Result<Vec<String>, sqlx::Error>>()?;
                check(cols);
            }
        });
    }
    for ((table, key), (_, event)) in seals {
        problems.push((
            event,
            format!(
                "{} {key}, sealed by event {event}, was deleted outside incidentd",
                table.spec().table
            ),
        ));
    }
    problems.sort();
    if let Some((at, first)) = problems.first() {
        report.fail(Some(*at), first.clone());
    }
    report.problems = problems
        .into_iter()
        .take(MAX_PROBLEMS)
        .map(|(_, p)| p)
        .collect();
    Ok(())
}

/// Compare stored alerts with the hashes their events recorded. Returns the first mismatch
/// of content; an alert in another incident than its event said goes to `moved`, for a
/// later event to account for.
async fn check_alerts(
    snap: &mut Snap,
    vouched: &HashMap<i64, (String, Option<i64>, i64)>,
    moved: &mut HashMap<i64, (i64, String, Option<i64>)>,
) -> Result<Option<(i64, String)>> {
    if vouched.is_empty() {
        return Ok(None);
    }
    let ids: Vec<i64> = vouched.keys().copied().collect();
    let ids = serde_json::to_string(&ids).unwrap_or_default();
    let rows: Vec<AlertRow> = on_snap!(*snap, c, pg => {
        let sql = if pg {
            concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)")
        } else {
            concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id IN (SELECT value FROM json_each($1))")
        };
        sqlx::query_as(sql).bind(ids).fetch_all(&mut *c).await?
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
        let present: HashSet<i64> = rows.iter().map(|r| r.id).collect();
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

fn check_event(e: &ChainRow, last_id: i64, prev_hash: &str) -> Option<String> {
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
fn collect_alert_hashes(e: &ChainRow, out: &mut HashMap<i64, (String, Option<i64>, i64)>) {
    if !e.data.contains("\"alerts\"") {
        return;
    }
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

/// Rows an `audit.sealed` or `audit.baseline` event seals: `data.rows = {table: {key: digest}}`.
fn collect_seals(e: &ChainRow, out: &mut Seals) {
    if e.kind != "audit.sealed" && e.kind != "audit.baseline" {
        return;
    }
    let Ok(data) = serde_json::from_str::<serde_json::Value>(&e.data) else {
        return;
    };
    let Some(tables) = data.get("rows").and_then(|r| r.as_object()) else {
        return;
    };
    for (table, rows) in tables {
        let (Some(t), Some(rows)) = (Sealed::by_table(table), rows.as_object()) else {
            continue;
        };
        for (key, digest) in rows {
            if let Some(d) = digest.as_str() {
                out.insert((t, key.clone()), (d.to_string(), e.id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_heads_read_as_printed() {
        let h = "ab".repeat(32);
        assert_eq!(
            format!("12:{h}").parse::<ExpectHead>().unwrap(),
            ExpectHead {
                id: Some(12),
                hash: h.clone()
            }
        );
        assert_eq!(h.parse::<ExpectHead>().unwrap().id, None);
        assert!(
            "x:abc"
                .parse::<ExpectHead>()
                .unwrap_err()
                .contains("event id")
        );
        assert!(
            "12:abc"
                .parse::<ExpectHead>()
                .unwrap_err()
                .contains("64 hex")
        );
    }
}
