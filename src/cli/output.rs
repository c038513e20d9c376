//! Terminal output: short tables and summaries that read well at 80 columns.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::duration::humanize;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn when(v: &Value) -> String {
    match v.as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        None => "—".into(),
    }
}

fn age(v: &Value) -> String {
    match v.as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()) {
        Some(t) => humanize((Utc::now() - t).to_std().unwrap_or_default()),
        None => "—".into(),
    }
}

pub fn incident_table(v: &Value) {
    let list = v["items"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no incidents match");
        return;
    }
    println!(
        "{:>6}  {:<3}  {:<14}  {:<16}  {:>6}  {:>8}  TITLE",
        "ID", "SEV", "STATUS", "CATEGORY", "ALERTS", "AGE"
    );
    for i in &list {
        let drill = if i["drill"].as_bool() == Some(true) {
            "[DRILL] "
        } else {
            ""
        };
        println!(
            "{:>6}  {:<3}  {:<14}  {:<16}  {:>6}  {:>8}  {drill}{}",
            i["id"].to_string(),
            s(&i["severity"]),
            s(&i["status"]),
            s(&i["category"]),
            i["alert_count"].to_string(),
            age(&i["first_seen_at"]),
            s(&i["title"])
        );
    }
    if let Some(n) = v["next_cursor"].as_str() {
        println!("… more: add --json and page with cursor={n}");
    }
}

pub fn incident_summary(i: &Value) {
    let drill = if i["drill"].as_bool() == Some(true) {
        " [DRILL]"
    } else {
        ""
    };
    println!(
        "  {} {} · {} · {}{drill}",
        i["id"],
        s(&i["title"]),
        s(&i["severity"]),
        s(&i["category"])
    );
    println!(
        "  status {} · facts v{}",
        s(&i["status"]),
        i["facts_version"]
    );
}

pub fn incident_detail(i: &Value) {
    detail_head(i);
    detail_facts(i);
    detail_alerts(i);
    detail_timeline(i);
}

/// The incident's title, severity, status and where it may go, and its times.
fn detail_head(i: &Value) {
    let drill = if i["drill"].as_bool() == Some(true) {
        "  [DRILL]"
    } else {
        ""
    };
    println!("Incident {} — {}{drill}", i["id"], s(&i["title"]));
    if !s(&i["summary"]).is_empty() {
        println!("  {}", s(&i["summary"]));
    }
    let rule = i["rule"]
        .as_str()
        .map(|r| format!(", rule {r}"))
        .unwrap_or_default();
    println!(
        "  severity   {} ({}{rule})",
        s(&i["severity"]),
        s(&i["category"])
    );
    let next: Vec<&str> = i["allowed_transitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "  status     {}  → may move to: {}",
        s(&i["status"]),
        next.join(", ")
    );
    println!(
        "  first seen {}   discovered {}",
        when(&i["first_seen_at"]),
        when(&i["discovered_at"])
    );
    println!(
        "  declared   {}   aware      {}",
        when(&i["declared_at"]),
        when(&i["aware_at"])
    );
    if !i["contained_at"].is_null() || !i["closed_at"].is_null() {
        println!(
            "  contained  {}   closed     {}",
            when(&i["contained_at"]),
            when(&i["closed_at"])
        );
    }
    println!("  created by {}", s(&i["created_by"]));
}

/// The facts at their current version, lists joined.
fn detail_facts(i: &Value) {
    let Some(f) = i["facts"].as_object().filter(|f| !f.is_empty()) else {
        return;
    };
    println!("Facts (version {})", i["facts_version"]);
    for (k, v) in f {
        let shown = match v {
            Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map_or(x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            Value::String(x) => x.clone(),
            other => other.to_string(),
        };
        println!("  {k:<26} {shown}");
    }
}

/// Merged or storm notes, the alert counts and the first ten alerts.
fn detail_alerts(i: &Value) {
    let alerts = i["alerts"].as_array().cloned().unwrap_or_default();
    let truncated = i["truncated_alerts"].as_i64().unwrap_or(0);
    if let Some(into) = i["merged_into"].as_i64() {
        println!("  merged into incident {into}, which carries on");
    }
    if i["storm"].as_bool() == Some(true) {
        println!(
            "  storm incident: alerts of {} fold in here",
            s(&i["intake"])
        );
    }
    println!(
        "Alerts ({} firing, {} resolved; {} notifications{})",
        i["alerts_firing"],
        i["alerts_resolved"],
        i["alert_count"],
        if truncated > 0 {
            format!(", Alertmanager left out {truncated}")
        } else {
            String::new()
        }
    );
    for a in alerts.iter().take(10) {
        println!(
            "  {:>6}  {}  {:<8}  {}",
            a["id"].to_string(),
            when(&a["received_at"]),
            s(&a["status"]),
            s(&a["title"])
        );
    }
}

/// Every event of the timeline, with a note on what it did.
fn detail_timeline(i: &Value) {
    println!("Timeline");
    for e in i["timeline"].as_array().into_iter().flatten() {
        println!(
            "  {}  {:<24}  {:<24}  {}",
            when(&e["at"]),
            s(&e["kind"]),
            s(&e["actor"]),
            event_note(e)
        );
    }
}

fn event_note(e: &Value) -> String {
    let d = &e["data"];
    match s(&e["kind"]) {
        "incident.transitioned" => {
            format!("{} → {}  {}", s(&d["from"]), s(&d["to"]), s(&d["note"]))
        }
        "incident.reclassified" => format!(
            "{}/{} → {}/{}{}",
            s(&d["from"]["category"]),
            s(&d["from"]["severity"]),
            s(&d["to"]["category"]),
            s(&d["to"]["severity"]),
            d["reason"]
                .as_str()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default()
        ),
        "alerts.received" | "incident.opened" => {
            let alerts = d["alerts"].as_array().map_or(0, Vec::len);
            let resolved = d["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| s(&a["status"]) == "resolved")
                .count();
            if resolved > 0 {
                format!("{alerts} alert(s), {resolved} resolved")
            } else if alerts > 0 {
                format!("{alerts} alert(s)")
            } else {
                String::new()
            }
        }
        "incident.facts_updated" => format!("facts v{}", d["version"]),
        "task.cancelled" => format!("{}: {}", s(&d["task"]), s(&d["reason"])),
        "incident.closed_with_open_work" => format!(
            "forced: {}; obligations left open: {}",
            s(&d["reason"]),
            d["open_obligations"]
        ),
        "report_gate.satisfied" => format!(
            "{} approved by the approval of report {}",
            s(&d["task"]),
            d["report_id"]
        ),
        "heartbeat.late" => format!(
            "{} silent since {} (every {} + {})",
            s(&d["heartbeat"]),
            when(&d["silent_since"]),
            s(&d["interval"]),
            s(&d["grace"])
        ),
        "heartbeat.recovered" => format!(
            "{} back via {} after {}",
            s(&d["heartbeat"]),
            s(&d["via"]),
            s(&d["silent_for"])
        ),
        "silence.overridden" => format!(
            "silence {} matched alert {}, not applied: personal information",
            s(&d["silence"]),
            s(&d["alert_id"])
        ),
        "incident.updated" => {
            let keys: Vec<&String> = d["changes"]
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            format!(
                "{}{}",
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                d["reason"]
                    .as_str()
                    .map(|r| format!("  ({r})"))
                    .unwrap_or_default()
            )
        }
        _ => String::new(),
    }
}

pub fn alert_table(v: &Value) {
    let list = v["items"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no alerts match");
        return;
    }
    println!(
        "{:>8}  {:<20}  {:<8}  {:<14}  {:>8}  TITLE",
        "ID", "RECEIVED", "STATUS", "SOURCE", "INCIDENT"
    );
    for a in &list {
        let inc = match (a["incident_id"].as_i64(), a["silence_id"].as_i64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(s)) => format!("sil {s}"),
            (None, None) => "—".to_string(),
        };
        println!(
            "{:>8}  {:<20}  {:<8}  {:<14}  {:>8}  {}",
            a["id"].to_string(),
            when(&a["received_at"]),
            s(&a["status"]),
            s(&a["source"]),
            inc,
            s(&a["title"])
        );
    }
}
