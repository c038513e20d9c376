//! `incidentd reports`, `report draft|show|submit`, `summary`: regulator reports and the
//! post-incident summary.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::{Client, print};
use super::{ClientArgs, key_value};

pub const REPORTS_HELP: &str = "\
Examples:
  incidentd reports 42          every version of incident 42's regulator reports

Each line: report id, obligation, version, status (draft → approved → submitted; older drafts
superseded), and what is still to follow. `incidentd obligations --incident 42` lists the report
obligations (keys such as CN:cac_report_other) and their deadlines.";

pub const REPORT_HELP: &str = "\
A regulator report is drafted for one of the incident's report obligations, in the
jurisdiction's language, from its facts, timeline, notices and what you type with --input. The
required-field lint refuses a draft with missing fields and says how to fill each one (a fact to
set with `incidentd facts`, or an --input to give). With --partial an initial or supplementary
report may leave the fields the law lets follow later; they show as 待补充 / \"To follow\".

Each version needs the approval of [reports] approvers (default Government Relations and Legal):
`incidentd approvals`, `incidentd approve <task>`. Then submit it: by e-mail or webhook to the
regulator's address in [[regulators]], or record a submission made by hand (portal, hotline
12387) with the reference the regulator gave. Past the deadline, say why with --late-reason.
The submitted version is immutable; new facts go in the supplementary report the pack owes.

Examples:
  incidentd report draft 42 --obligation CN:cac_report_other \\
      --input system='会员中心' --input location='上海机房' --partial
  incidentd report show 7 --format md           the document as Markdown (or html)
  incidentd approve 31                          the version's approval task (GR, then Legal)
  incidentd report submit 7 --via email
  incidentd report submit 7 --via manual --reference 12387-2025-0001 --at 2025-06-01T10:30:00Z \\
      --late-reason '热线占线，改为门户报送'";

pub const SUMMARY_HELP: &str = "\
Examples:
  incidentd summary 42                 the times that matter, against their targets
  incidentd summary 42 --format md     the same as a Markdown document (or html)

Detected → discovered → declared → contained → individuals notified → first regulator report →
closing report → closed: each with its time after detection, its target (the obligations'
deadlines, the playbook's task deadlines) and met or MISSED; then every obligation and timed
task, and the condensed timeline. Closing an incident starts the closing report's clock.";

#[derive(Debug, Args)]
pub struct ReportsArgs {
    pub incident: i64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Draft the next version of a report owed by the incident.
    Draft {
        incident: i64,
        /// The obligation's key (`incidentd obligations --incident ID`), e.g. CN:cac_report_other.
        #[arg(long)]
        obligation: String,
        /// A value for one of the report's typed fields, as NAME=VALUE (repeat).
        #[arg(long = "input", value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        /// Leave the fields the law lets follow later marked "to follow".
        #[arg(long)]
        partial: bool,
        /// Why the report is late (printed in it).
        #[arg(long)]
        late_reason: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one version: its fields, or the document itself.
    Show {
        report: i64,
        /// md (Markdown) or html: print the document instead of its fields.
        #[arg(long)]
        format: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Submit an approved version (e-mail, webhook, or record a submission made by hand).
    Submit {
        report: i64,
        /// email, webhook or manual.
        #[arg(long)]
        via: String,
        /// The regulator's reference or receipt number (required with --via manual).
        #[arg(long)]
        reference: Option<String>,
        /// When it was submitted by hand (RFC 3339; required with --via manual).
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::Utc>>,
        /// Why it is late (required past the deadline).
        #[arg(long)]
        late_reason: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    pub incident: i64,
    /// md (Markdown) or html: print the summary as a document.
    #[arg(long)]
    pub format: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("-")
}

fn format_param(f: &str) -> anyhow::Result<&'static str> {
    match f {
        "md" | "markdown" => Ok("markdown"),
        "html" => Ok("html"),
        other => anyhow::bail!("--format {other}: use md or html"),
    }
}

fn line(r: &Value) {
    let follows: Vec<&str> = r["to_follow"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["field"].as_str()).collect())
        .unwrap_or_default();
    println!(
        "{:>5}  {:<28} v{:<3} {:<11} {}{}",
        r["id"],
        s(r, "obligation_key"),
        r["version"],
        s(r, "status"),
        s(r, "subject"),
        if follows.is_empty() {
            String::new()
        } else {
            format!("  [to follow: {}]", follows.join(", "))
        }
    );
}

pub async fn list(a: ReportsArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let v = c
        .call(
            Method::GET,
            &format!("/api/v1/incidents/{}/reports", a.incident),
            None,
        )
        .await?;
    print(&a.client, &v, |v| {
        let rows = v["items"].as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            println!(
                "incident {} has no report drafts yet (incidentd report draft {} --obligation …)",
                a.incident, a.incident
            );
        }
        rows.iter().for_each(line);
    });
    Ok(0)
}

pub async fn report(cmd: ReportCommand) -> anyhow::Result<i32> {
    match cmd {
        ReportCommand::Draft {
            incident,
            obligation,
            inputs,
            partial,
            late_reason,
            client,
        } => draft(incident, obligation, &inputs, partial, late_reason, client).await,
        ReportCommand::Show {
            report,
            format,
            client,
        } => show(report, format, client).await,
        ReportCommand::Submit {
            report,
            via,
            reference,
            at,
            late_reason,
            client,
        } => submit(report, via, reference, at, late_reason, client).await,
    }
}

/// `report draft`: the next version, with its typed inputs; it waits for its approval.
async fn draft(
    incident: i64,
    obligation: String,
    inputs: &[String],
    partial: bool,
    late_reason: Option<String>,
    client: ClientArgs,
) -> anyhow::Result<i32> {
    let mut m = Map::new();
    for p in inputs {
        let (k, v) = key_value(p, "input")?;
        m.insert(k, json!(v));
    }
    let c = Client::new(&client)?;
    let v = c
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{incident}/reports"),
            Some(json!({"obligation": obligation, "inputs": m, "partial": partial, "late_reason": late_reason})),
        )
        .await?;
    print(&client, &v, |v| {
        line(v);
        println!(
            "approval task {} waits for its approvers: incidentd approve {}",
            v["approval_task"], v["approval_task"]
        );
    });
    Ok(0)
}

/// `report show`: one version's fields, or with --format the document itself.
async fn show(report: i64, format: Option<String>, client: ClientArgs) -> anyhow::Result<i32> {
    let c = Client::new(&client)?;
    if let Some(f) = format {
        let v = c
            .call(
                Method::GET,
                &format!("/api/v1/reports/{report}?format={}", format_param(&f)?),
                None,
            )
            .await?;
        println!("{}", v.as_str().unwrap_or_default());
        return Ok(0);
    }
    let v = c
        .call(Method::GET, &format!("/api/v1/reports/{report}"), None)
        .await?;
    print(&client, &v, |v| {
        line(v);
        for f in v["fields"].as_array().cloned().unwrap_or_default() {
            let value = if f["to_follow"] == true {
                "(to follow)".to_string()
            } else {
                f["value"].as_str().unwrap_or("-").replace('\n', "\n      ")
            };
            println!("  {}: {value}", s(&f, "label"));
        }
    });
    Ok(0)
}

/// `report submit`: by e-mail or webhook, or recorded as submitted by hand.
async fn submit(
    report: i64,
    via: String,
    reference: Option<String>,
    at: Option<chrono::DateTime<chrono::Utc>>,
    late_reason: Option<String>,
    client: ClientArgs,
) -> anyhow::Result<i32> {
    let c = Client::new(&client)?;
    let r = c
        .call(Method::GET, &format!("/api/v1/reports/{report}"), None)
        .await?;
    let incident = r["incident_id"].as_i64().unwrap_or_default();
    let v = c
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{incident}/reports/{report}/submit"),
            Some(json!({"via": via, "reference": reference, "submitted_at": at, "late_reason": late_reason})),
        )
        .await?;
    print(&client, &v, |v| {
        let by_hand = s(v, "via") == "manual";
        println!(
            "report {report} (v{}) submitted via {} at {}{}; {} {}",
            v["version"],
            s(v, "via"),
            s(v, "submitted_at"),
            v["reference"]
                .as_str()
                .map(|r| format!(", reference {r}"))
                .unwrap_or_default(),
            s(v, "obligation_key"),
            if by_hand {
                "is met"
            } else {
                "is met when the regulator's channel accepts it (see `incidentd obligations`)"
            }
        )
    });
    Ok(0)
}

pub async fn summary(a: SummaryArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let format = match &a.format {
        Some(f) => format_param(f)?,
        None if a.client.json => "json",
        None => "markdown",
    };
    let v = c
        .call(
            Method::GET,
            &format!("/api/v1/incidents/{}/summary?format={format}", a.incident),
            None,
        )
        .await?;
    match v.as_str() {
        Some(doc) => println!("{doc}"),
        None => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
    }
    Ok(0)
}
