//! `incidentd drill run|list|show`: rehearse the emergency plan.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::ClientArgs;
use super::client::{Client, print};

pub const HELP: &str = "\
Examples:
  incidentd drill run phone_id_dump     start scenario config/drills/phone_id_dump.toml now
  incidentd drill list                  past drills, the next scheduled ones, and the trend
  incidentd drill show 3                one drill: its incident, scorecard and after-action report

A drill is an incident marked 【演练】DRILL that runs the real path — classification, playbook,
pages, approvals, notices, reports — but the dispatcher's drill guard lets it reach only the
scenario's participants (members of its departments), its capture recipients and its owner.
Scripted injects arrive on their timers (they survive a restart); at the scenario's time_limit
the drill ends, is scored against its [targets], and the after-action report goes to its owner.
Schedules: [[drills.schedule]] in the configuration (scenario, six-field cron, time_zone).";

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Start a drill of a scenario now (responder or admin).
    Run {
        /// The scenario's `name` (config/drills/*.toml).
        scenario: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Past and running drills, the next scheduled ones, and how drills compare.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One drill, with its scorecard and after-action report once it has ended.
    Show {
        id: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn time(v: &Value) -> String {
    v.as_str()
        .map(|d| d.get(..19).unwrap_or(d).replace('T', " "))
        .unwrap_or_else(|| "-".into())
}

fn one(d: &Value) {
    println!(
        "drill {} — {} ({}), incident {}, {}",
        s(&d["id"]),
        s(&d["scenario"]),
        s(&d["mode"]),
        s(&d["incident_id"]),
        s(&d["status"])
    );
    println!(
        "  started {} UTC by {}; ends {} UTC{}",
        time(&d["started_at"]),
        s(&d["started_by"]),
        time(&d["ends_at"]),
        d["ended_at"]
            .as_str()
            .map(|_| format!("; ended {} UTC", time(&d["ended_at"])))
            .unwrap_or_default()
    );
    let card = &d["scorecard"];
    if card.is_object() {
        println!(
            "\nscorecard: {} met, {} missed",
            s(&card["met"]),
            s(&card["missed"])
        );
        for m in card["measures"].as_array().into_iter().flatten() {
            let verdict = match m["met"].as_bool() {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "-",
            };
            let what = match m["department"].as_str() {
                Some(dep) => format!("{} ({dep})", s(&m["id"])),
                None => s(&m["id"]),
            };
            println!(
                "  {:<34} {:<14} target {:<10} {verdict}",
                what,
                s(&m["actual"]),
                s(&m["target"])
            );
        }
    }
    if d["report"].is_object() {
        println!("\nafter-action report: {}", s(&d["report"]["subject"]));
        for i in d["report"]["action_items"].as_array().into_iter().flatten() {
            println!("  action item task {}", s(i));
        }
    }
}

fn list(v: &Value) {
    let drills = v["items"].as_array().cloned().unwrap_or_default();
    if drills.is_empty() {
        println!("no drills yet");
    } else {
        println!(
            "{:>5}  {:<22} {:<10} {:>8}  {:<19}  {:<8} {:>4} {:>6}",
            "ID", "SCENARIO", "MODE", "INCIDENT", "STARTED (UTC)", "STATUS", "MET", "MISSED"
        );
        for d in &drills {
            println!(
                "{:>5}  {:<22} {:<10} {:>8}  {:<19}  {:<8} {:>4} {:>6}",
                s(&d["id"]),
                s(&d["scenario"]),
                s(&d["mode"]),
                s(&d["incident_id"]),
                time(&d["started_at"]),
                s(&d["status"]),
                s(&d["scorecard"]["met"]),
                s(&d["scorecard"]["missed"]),
            );
        }
    }
    println!();
    for n in v["scheduled"].as_array().into_iter().flatten() {
        println!(
            "next: {} at {} UTC (cron `{}` in {})",
            s(&n["scenario"]),
            time(&n["next_at"]),
            s(&n["cron"]),
            s(&n["time_zone"])
        );
    }
    let t = &v["trend"];
    if t["drills"].as_u64().unwrap_or(0) > 0 {
        println!("\ntrend over {} scored drills:", s(&t["drills"]));
        for a in t["acknowledge"].as_array().into_iter().flatten() {
            println!(
                "  acknowledge {:<24} {}",
                s(&a["department"]),
                trend_line(a)
            );
        }
        for m in t["measures"].as_array().into_iter().flatten() {
            println!("  {:<36} {}", s(&m["id"]), trend_line(m));
        }
    }
}

fn trend_line(v: &Value) -> String {
    let share = v["met_share"]
        .as_f64()
        .map(|f| format!("{:.0}% met", f * 100.0))
        .unwrap_or_else(|| "-".into());
    format!("median {}, {share}", s(&v["median"]))
}

pub async fn drill(cmd: DrillCommand) -> anyhow::Result<i32> {
    match cmd {
        DrillCommand::Run { scenario, client } => {
            let c = Client::new(&client)?;
            let v = c
                .call(
                    Method::POST,
                    "/api/v1/drills",
                    Some(json!({ "scenario": scenario })),
                )
                .await?;
            print(&client, &v, one);
        }
        DrillCommand::List { client } => {
            let c = Client::new(&client)?;
            let v = c.call(Method::GET, "/api/v1/drills", None).await?;
            print(&client, &v, list);
        }
        DrillCommand::Show { id, client } => {
            let c = Client::new(&client)?;
            let v = c
                .call(Method::GET, &format!("/api/v1/drills/{id}"), None)
                .await?;
            print(&client, &v, one);
        }
    }
    Ok(0)
}
