//! A drill's scorecard, pure: [`compute`] judges each time of a [`Snapshot`] against the
//! scenario's [`Targets`] with the post-incident summary's rule (met on or before the target;
//! missed after it, or not reached when the drill ended past it); [`trend`] compares drills —
//! medians and the share of targets met, oldest to newest. `crate::engine::scorecard` reads the
//! snapshot from the store; `crate::render::drill` writes the after-action report.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Targets;
use crate::domain::duration::{HumanDuration, humanize, since, verdict};

/// The measures other than acknowledgement, in the order a scorecard lists them.
pub const MEASURES: [&str; 6] = [
    "contain",
    "grade",
    "report_draft",
    "report_approved",
    "notice_approved",
    "notice_delivered",
];

/// Action items are due this long after the after-action report.
pub const ACTION_ITEM_DUE_DAYS: i64 = 14;

/// The key prefix of the tasks an after-action report creates; the scorecard ignores them.
pub const ACTION_ITEM_PREFIX: &str = "aar-";

/// One time measured against its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Measure {
    /// `acknowledge`, or one of [`MEASURES`].
    pub id: String,
    /// The department responsible: the one paged (`acknowledge`), otherwise the owner of the
    /// task, obligation or gate the time belongs to.
    pub department: Option<String>,
    /// Where the clock starts: the department's page (`acknowledge`), otherwise the drill's
    /// start.
    pub from: DateTime<Utc>,
    /// When it was reached (before the drill ended).
    pub at: Option<DateTime<Utc>>,
    pub target_secs: Option<i64>,
    /// The target, e.g. `15m`.
    pub target: Option<String>,
    pub actual_secs: Option<i64>,
    /// e.g. `12m`, or `not reached`.
    pub actual: String,
    /// Met (on or before the target), missed (after it, or not reached when the drill ended
    /// past it); `None` without a target, or not reached while the target had not yet passed.
    pub met: Option<bool>,
}

/// A task that was not done in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TaskIssue {
    pub key: String,
    pub title: String,
    pub department: String,
    pub due_at: Option<DateTime<Utc>>,
    /// When it was closed; `None` for a task still open at the drill's end.
    pub closed_at: Option<DateTime<Utc>>,
    /// How late it was closed (late tasks), e.g. `20m`.
    pub late_by: Option<String>,
}

/// A regulator report version that was not complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ReportGap {
    pub obligation_key: String,
    pub version: i64,
    pub status: String,
    pub partial: bool,
    /// Labels of the required fields it left to follow.
    pub missing: Vec<String>,
}

/// How complete the notice and the regulator reports were.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Completeness {
    /// The facts claim the PIPL art. 57 exemption: no notice was needed.
    pub notice_exempt: bool,
    /// The notice elements the facts lacked at the drill's end (the notice gate's lint), in
    /// English. `[organisation] contact` is required configuration, so the contact element is
    /// never missing here.
    pub notice_missing: Vec<String>,
    /// The newest version of each report obligation that was partial or lacked fields.
    pub reports: Vec<ReportGap>,
}

/// A drill measured against its scenario's targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Scorecard {
    pub incident_id: i64,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// How long the drill ran, e.g. `2h 5m`.
    pub duration: String,
    /// Acknowledgement per department (by department id), then [`MEASURES`].
    pub measures: Vec<Measure>,
    /// Measures met and missed.
    pub met: usize,
    pub missed: usize,
    /// Tasks still open at the end.
    pub tasks_missed: Vec<TaskIssue>,
    /// Tasks closed after they were due.
    pub tasks_late: Vec<TaskIssue>,
    /// Departments whose page was never acknowledged.
    pub unacknowledged: Vec<String>,
    pub completeness: Completeness,
}

/// A department's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub department: String,
    pub paged_at: DateTime<Utc>,
    pub acked_at: Option<DateTime<Utc>>,
}

/// A task as the scorecard judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    pub key: String,
    pub title: String,
    pub department: String,
    pub due_at: Option<DateTime<Utc>>,
    /// When it was done, approved or rejected.
    pub closed_at: Option<DateTime<Utc>>,
}

/// Everything the scorecard is computed from, read from the store (or written by a test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub incident_id: i64,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub pages: Vec<Page>,
    pub tasks: Vec<TaskState>,
    /// When each of [`MEASURES`] was reached, by id.
    pub reached: BTreeMap<&'static str, DateTime<Utc>>,
    /// The department responsible for each of [`MEASURES`], by id.
    pub owners: BTreeMap<&'static str, String>,
    pub completeness: Completeness,
}

fn target_of(targets: &Targets, id: &str) -> Option<HumanDuration> {
    match id {
        "contain" => targets.contain,
        "grade" => targets.grade,
        "report_draft" => targets.report_draft,
        "report_approved" => targets.report_approved,
        "notice_approved" => targets.notice_approved,
        "notice_delivered" => targets.notice_delivered,
        _ => None,
    }
}

fn ack_target(targets: &Targets, department: &str) -> Option<HumanDuration> {
    targets
        .acknowledge
        .get(department)
        .or_else(|| targets.acknowledge.get("default"))
        .copied()
}

/// Judge one time: reached at `at` (counted only up to the drill's end) from `from`.
fn measure(
    id: &str,
    department: Option<String>,
    from: DateTime<Utc>,
    at: Option<DateTime<Utc>>,
    target: Option<HumanDuration>,
    ended_at: DateTime<Utc>,
) -> Measure {
    let at = at.filter(|a| *a <= ended_at);
    let target_at = target.and_then(|t| chrono::Duration::from_std(t.0).ok().map(|d| from + d));
    Measure {
        id: id.to_string(),
        department,
        from,
        at,
        target_secs: target.map(|t| t.0.as_secs() as i64),
        target: target.map(|t| humanize(t.0)),
        actual_secs: at.map(|a| (a - from).num_seconds()),
        actual: since(from, at).unwrap_or_else(|| "not reached".into()),
        met: verdict(at, target_at, ended_at),
    }
}

fn task_issue(t: &TaskState, late: bool) -> TaskIssue {
    let late_by = match (late, t.closed_at, t.due_at) {
        (true, Some(c), Some(d)) => (c - d).to_std().ok().map(humanize),
        _ => None,
    };
    TaskIssue {
        key: t.key.clone(),
        title: t.title.clone(),
        department: t.department.clone(),
        due_at: t.due_at,
        closed_at: if late { t.closed_at } else { None },
        late_by,
    }
}

/// The scorecard of a snapshot: pure arithmetic, exact to the second.
pub fn compute(s: &Snapshot, targets: &Targets) -> Scorecard {
    let end = s.ended_at;
    let mut measures: Vec<Measure> = s
        .pages
        .iter()
        .map(|p| {
            let target = ack_target(targets, &p.department);
            measure(
                "acknowledge",
                Some(p.department.clone()),
                p.paged_at,
                p.acked_at,
                target,
                end,
            )
        })
        .collect();
    let fallback = s.pages.first().map(|p| p.department.clone());
    for id in MEASURES {
        let owner = s.owners.get(id).cloned().or_else(|| fallback.clone());
        let at = s.reached.get(id).copied();
        measures.push(measure(
            id,
            owner,
            s.started_at,
            at,
            target_of(targets, id),
            end,
        ));
    }
    let open_at_end = |t: &TaskState| t.closed_at.is_none_or(|c| c > end);
    let tasks_missed = s
        .tasks
        .iter()
        .filter(|t| open_at_end(t))
        .map(|t| task_issue(t, false))
        .collect();
    let tasks_late = s
        .tasks
        .iter()
        .filter(|t| !open_at_end(t))
        .filter(|t| matches!((t.closed_at, t.due_at), (Some(c), Some(d)) if c > d))
        .map(|t| task_issue(t, true))
        .collect();
    let unacknowledged = s
        .pages
        .iter()
        .filter(|p| p.acked_at.is_none_or(|a| a > end))
        .map(|p| p.department.clone())
        .collect();
    Scorecard {
        incident_id: s.incident_id,
        started_at: s.started_at,
        ended_at: end,
        duration: (end - s.started_at)
            .to_std()
            .map(humanize)
            .unwrap_or_else(|_| "0s".into()),
        met: measures.iter().filter(|m| m.met == Some(true)).count(),
        missed: measures.iter().filter(|m| m.met == Some(false)).count(),
        measures,
        tasks_missed,
        tasks_late,
        unacknowledged,
        completeness: s.completeness.clone(),
    }
}

/// One drill's value in a trend.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Point {
    /// When the drill ran (the date given with its scorecard).
    pub drill_at: DateTime<Utc>,
    /// The time taken; `None` if not reached.
    pub actual_secs: Option<i64>,
    pub met: Option<bool>,
}

/// How one department's acknowledgement went across drills.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AckTrend {
    pub department: String,
    /// The median time to acknowledge over the drills that reached it.
    pub median_secs: Option<i64>,
    pub median: Option<String>,
    /// The share of drills that met the target, of those judged (0.0–1.0).
    pub met_share: Option<f64>,
    /// Oldest first.
    pub series: Vec<Point>,
}

/// How one measure went across drills.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MeasureTrend {
    /// One of [`MEASURES`].
    pub id: String,
    pub median_secs: Option<i64>,
    pub median: Option<String>,
    pub met_share: Option<f64>,
    /// Oldest first.
    pub series: Vec<Point>,
}

/// Drills compared, oldest to newest.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Trend {
    pub drills: usize,
    pub acknowledge: Vec<AckTrend>,
    pub measures: Vec<MeasureTrend>,
}

/// The median of `v` (the mean of the middle two, rounded down, for an even count).
fn median(mut v: Vec<i64>) -> Option<i64> {
    v.sort_unstable();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]).div_euclid(2)),
    }
}

/// Median and share met of a series.
fn summarise(series: &[Point]) -> (Option<i64>, Option<String>, Option<f64>) {
    let m = median(series.iter().filter_map(|p| p.actual_secs).collect());
    let judged: Vec<bool> = series.iter().filter_map(|p| p.met).collect();
    let share = (!judged.is_empty())
        .then(|| judged.iter().filter(|x| **x).count() as f64 / judged.len() as f64);
    let shown = m.map(|s| humanize(std::time::Duration::from_secs(s.max(0) as u64)));
    (m, shown, share)
}

fn point(at: DateTime<Utc>, m: &Measure) -> Point {
    Point {
        drill_at: at,
        actual_secs: m.actual_secs,
        met: m.met,
    }
}

/// Compare drills: per department the median time to acknowledge, per measure the median and
/// the share of targets met, each with its series oldest to newest.
pub fn trend(cards: &[(DateTime<Utc>, Scorecard)]) -> Trend {
    let mut sorted: Vec<&(DateTime<Utc>, Scorecard)> = cards.iter().collect();
    sorted.sort_by_key(|(at, _)| *at);
    let mut acks: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    let mut others: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for (at, card) in sorted {
        for m in &card.measures {
            match (m.id.as_str(), &m.department) {
                ("acknowledge", Some(d)) => acks.entry(d.clone()).or_default().push(point(*at, m)),
                (id, _) => {
                    if let Some(known) = MEASURES.iter().find(|x| **x == id) {
                        others.entry(known).or_default().push(point(*at, m));
                    }
                }
            }
        }
    }
    let acknowledge = acks
        .into_iter()
        .map(|(department, series)| {
            let (median_secs, median, met_share) = summarise(&series);
            AckTrend {
                department,
                median_secs,
                median,
                met_share,
                series,
            }
        })
        .collect();
    let measures = MEASURES
        .iter()
        .filter_map(|id| others.remove(id).map(|s| (id, s)))
        .map(|(id, series)| {
            let (median_secs, median, met_share) = summarise(&series);
            MeasureTrend {
                id: id.to_string(),
                median_secs,
                median,
                met_share,
                series,
            }
        })
        .collect();
    Trend {
        drills: cards.len(),
        acknowledge,
        measures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![40, 10, 20, 30]), Some(25));
        assert_eq!(median(vec![5]), Some(5));
        assert_eq!(median(vec![]), None);
    }
}
