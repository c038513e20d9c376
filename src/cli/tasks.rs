//! `incidentd tasks`, `task`, `approvals`, `approve`, `reject`: the joint team's work.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::ClientArgs;
use super::client::{Client, print};

pub const TASKS_HELP: &str = "\
Examples:
  incidentd tasks                         open tasks across incidents
  incidentd tasks --mine                  tasks of the departments this token acts for, or assigned to it
  incidentd tasks --overdue               open tasks past their due time
  incidentd tasks --incident 42 --all     every task of incident 42, done ones too

A task shows what blocks it: `blocked by notice_approval (awaiting approval by legal)`.";

pub const TASK_HELP: &str = "\
Examples:
  incidentd task ack 42 contain                     acknowledge (stops the department's escalation)
  incidentd task ack-page 42 government_relations   acknowledge a department's page without a task
  incidentd task complete 42 contain --note 'host isolated 10:42'
  incidentd task add 42 --key call_bank --title 'Call the card issuer' --department legal --due 2h
  incidentd task reassign 42 contain --assignee alice";

pub const APPROVALS_HELP: &str = "\
Examples:
  incidentd approvals                      gates waiting for a decision
  incidentd approve 17 --reason 'wording checked'
  incidentd reject 17 --reason 'remedies section missing'

An approver's token names its departments ([[auth.tokens]] departments = [\"legal\"]); a gate is
approved when every approving department has approved, and one rejection rejects it.";

#[derive(Debug, Args)]
pub struct TasksArgs {
    #[arg(long)]
    pub incident: Option<i64>,
    #[arg(long)]
    pub mine: bool,
    #[arg(long)]
    pub overdue: bool,
    #[arg(long)]
    pub department: Option<String>,
    /// Include done, approved and rejected tasks.
    #[arg(long)]
    pub all: bool,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Acknowledge a task (and its department's page).
    Ack {
        incident: i64,
        task: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Acknowledge a department's page without a task (its escalation stops).
    AckPage {
        incident: i64,
        department: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Complete a task, with a note.
    Complete {
        incident: i64,
        task: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add a task by hand.
    Add {
        incident: i64,
        #[arg(long)]
        key: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        department: String,
        /// Due this long from now: 90m, 4h, 1d.
        #[arg(long)]
        due: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Give a task to another person or department.
    Reassign {
        incident: i64,
        task: String,
        #[arg(long)]
        assignee: Option<String>,
        #[arg(long)]
        department: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// Only gates of the departments this token acts for.
    #[arg(long)]
    pub mine: bool,
    /// Decided ones too.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The approval's id (from `incidentd approvals`).
    pub approval: i64,
    /// Why (required to reject, and with --override-warning).
    #[arg(long)]
    pub reason: Option<String>,
    /// Approve a notice although its public text looks internal (Legal, with --reason): the
    /// warning and the reason are recorded on the timeline.
    #[arg(long)]
    pub override_warning: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn blocked(t: &Value) -> String {
    t["blocked_by"]
        .as_array()
        .filter(|b| !b.is_empty())
        .map(|b| {
            let parts: Vec<String> = b
                .iter()
                .map(|x| format!("{} ({})", s(&x["task"]), s(&x["reason"])))
                .collect();
            format!("  blocked by {}", parts.join(", "))
        })
        .unwrap_or_default()
}

fn table(v: &Value) {
    let tasks = v["items"].as_array().cloned().unwrap_or_default();
    if tasks.is_empty() {
        println!("no tasks");
        return;
    }
    println!(
        "{:>5} {:>8}  {:<24} {:<20} {:<9} {:<17}  TITLE",
        "ID", "INCIDENT", "TASK", "DEPARTMENT", "STATUS", "DUE"
    );
    for t in tasks {
        let due = t["due_at"]
            .as_str()
            .map(|d| d.get(..16).unwrap_or(d).replace('T', " "))
            .unwrap_or_else(|| "-".into());
        let due = if t["overdue"] == true {
            format!("{due} !")
        } else {
            due
        };
        println!(
            "{:>5} {:>8}  {:<24} {:<20} {:<9} {:<17}  {}{}",
            s(&t["id"]),
            s(&t["incident_id"]),
            s(&t["key"]),
            s(&t["department"]),
            s(&t["status"]),
            due,
            s(&t["title"]),
            blocked(&t)
        );
    }
}

fn one(t: &Value) {
    println!(
        "task {} of incident {} ({}) is {}{}{}",
        s(&t["key"]),
        s(&t["incident_id"]),
        s(&t["department"]),
        s(&t["status"]),
        pending_approvers(t),
        blocked(t)
    );
}

/// For an approval still open after some departments approved it: who did, who is awaited.
fn pending_approvers(t: &Value) -> String {
    if t["approval"] != true || !matches!(t["status"].as_str(), Some("open" | "acked")) {
        return String::new();
    }
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let approved: Vec<String> = t["decisions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|d| d["decision"] == "approved")
                .filter_map(|d| d["department"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if approved.is_empty() {
        return String::new();
    }
    let waiting: Vec<String> = names(&t["approvers"])
        .into_iter()
        .filter(|d| !approved.contains(d))
        .collect();
    format!(
        ": approved by {}, still waits for {}",
        approved.join(" and "),
        waiting.join(" and ")
    )
}

pub async fn tasks(a: TasksArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let mut q = vec![format!("limit={}", a.limit)];
    if let Some(i) = a.incident {
        q.push(format!("incident={i}"));
    }
    if a.mine {
        q.push("mine=true".into());
    }
    if a.overdue {
        q.push("overdue=true".into());
    }
    if let Some(d) = &a.department {
        q.push(format!("department={d}"));
    }
    if a.all {
        q.push("all=true".into());
    }
    let v = c
        .call(Method::GET, &format!("/api/v1/tasks?{}", q.join("&")), None)
        .await?;
    print(&a.client, &v, table);
    Ok(0)
}

pub async fn task(cmd: TaskCommand) -> anyhow::Result<i32> {
    let (client, method, path, body) = match &cmd {
        TaskCommand::Ack {
            incident,
            task,
            client,
        } => (
            client,
            Method::POST,
            format!("/api/v1/incidents/{incident}/tasks/{task}/ack"),
            None,
        ),
        TaskCommand::AckPage {
            incident,
            department,
            client,
        } => {
            let c = Client::new(client)?;
            let v = c
                .call(
                    Method::POST,
                    &format!("/api/v1/incidents/{incident}/team/{department}/ack"),
                    None,
                )
                .await?;
            print(client, &v, |_| {
                println!("{department}'s page for incident {incident} is acknowledged")
            });
            return Ok(0);
        }
        TaskCommand::Complete {
            incident,
            task,
            note,
            client,
        } => (
            client,
            Method::POST,
            format!("/api/v1/incidents/{incident}/tasks/{task}/complete"),
            Some(json!({ "note": note })),
        ),
        TaskCommand::Add {
            incident,
            key,
            title,
            department,
            due,
            description,
            client,
        } => (
            client,
            Method::POST,
            format!("/api/v1/incidents/{incident}/tasks"),
            Some(
                json!({"key": key, "title": title, "department": department, "due": due, "description": description}),
            ),
        ),
        TaskCommand::Reassign {
            incident,
            task,
            assignee,
            department,
            client,
        } => (
            client,
            Method::POST,
            format!("/api/v1/incidents/{incident}/tasks/{task}/reassign"),
            Some(json!({"assignee": assignee, "department": department})),
        ),
    };
    let c = Client::new(client)?;
    let v = c.call(method, &path, body).await?;
    print(client, &v, one);
    Ok(0)
}

pub async fn approvals(a: ApprovalsArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let mut q = vec!["limit=200".to_string()];
    if a.mine {
        q.push("mine=true".into());
    }
    if a.all {
        q.push("all=true".into());
    }
    let v = c
        .call(
            Method::GET,
            &format!("/api/v1/approvals?{}", q.join("&")),
            None,
        )
        .await?;
    print(&a.client, &v, |v| {
        let tasks = v["items"].as_array().cloned().unwrap_or_default();
        if tasks.is_empty() {
            println!("no approvals waiting");
            return;
        }
        for t in tasks {
            let approvers: Vec<String> = t["approvers"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default();
            let decided: Vec<String> = t["decisions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|d| format!("{} {}", s(&d["department"]), s(&d["decision"])))
                        .collect()
                })
                .unwrap_or_default();
            println!(
                "{:>5}  incident {:<6} {:<24} by {:<32} {}{}{}",
                s(&t["id"]),
                s(&t["incident_id"]),
                s(&t["key"]),
                approvers.join(" + "),
                s(&t["status"]),
                if decided.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", decided.join(", "))
                },
                blocked(&t)
            );
        }
    });
    Ok(0)
}

pub async fn decide(a: DecideArgs, approve: bool) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let verb = if approve { "approve" } else { "reject" };
    let v = c
        .call(
            Method::POST,
            &format!("/api/v1/approvals/{}/{verb}", a.approval),
            Some(json!({ "reason": a.reason, "override_warning": a.override_warning })),
        )
        .await?;
    print(&a.client, &v, one);
    Ok(0)
}
