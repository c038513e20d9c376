//! `incidentd subjects …` and `incidentd notices …`: affected people and the campaigns that
//! tell them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, ReadBuf};

use super::ClientArgs;
use super::client::{Client, print};

pub const SUBJECTS_HELP: &str = "\
Examples:
  incidentd subjects import 42 affected.csv        stream a list into incident 42, with progress
  incidentd subjects import 42 affected.ndjson
  incidentd subjects list 42                       masked, in import order
  incidentd subjects show 42 u-10086               one person: every notice, channel, time, provider id
  incidentd subjects keygen --id 2026              a new contact-encryption key for [subjects] key

A CSV list starts with a header naming its columns, from:
  subject_id,name,phone,email,site_user_id,locale,channels,jurisdiction
NDJSON has one object per line with the same fields. phone is international (+8613800000000)
or national in [organisation] default_region (13800000000 with CN); it is checked against
its country's numbering plan and stored as +8613800000000.
channels is inbox;sms;voice;email (default: every channel the row has a contact for).
Files must be UTF-8 (export GBK spreadsheets as UTF-8 first). Bad rows are reported with
their line and reason and the good ones are kept; importing a subject again updates it.";

pub const NOTICES_HELP: &str = "\
Examples:
  incidentd notices start 42 --channel inbox --channel sms          every subject, on both
  incidentd notices start 42 --channel sms --channel email --mode first   SMS, e-mail if SMS dies
  incidentd notices show 42 --watch                                  progress until all is sent

Nothing is sent before the incident's notice approval (the playbook's approve_notice task,
decided by Legal) is approved: a campaign started earlier waits for it. Starting the same
campaign again returns the existing one and exits 1 — nobody is told twice. A follow-up: after
the facts change (a new notice, approved on its own words), or --only-unreached on another
channel for the people no earlier campaign reached.";

#[derive(Debug, Subcommand)]
pub enum SubjectsCommand {
    /// Import a CSV or NDJSON list of affected people into an incident (streamed).
    Import {
        incident: i64,
        file: PathBuf,
        /// csv or ndjson (default: from the file's extension).
        #[arg(long)]
        format: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// An incident's affected people, contacts masked.
    List {
        incident: i64,
        /// Start after this row id (the previous page's last).
        #[arg(long)]
        after: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One person and every notice sent to them.
    Show {
        incident: i64,
        subject_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a new random contact-encryption key line for [subjects] key (works offline).
    Keygen {
        /// The key's id (letters, digits, - or _), e.g. the year.
        #[arg(long, default_value = "k1")]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum NoticesCommand {
    /// Start a notice campaign (it waits for the notice approval).
    Start(StartArgs),
    /// An incident's campaigns and their progress.
    Show {
        incident: i64,
        /// Only this campaign.
        campaign: Option<i64>,
        /// Refresh until every delivery is sent or dead.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub struct StartArgs {
    pub incident: i64,
    /// A channel, in order of preference (repeat): inbox, site_webhook, sms, voice, email.
    #[arg(long = "channel", required = true)]
    pub channels: Vec<String>,
    /// all: every chosen channel the person has; first: the first, falling back to the next.
    #[arg(long, default_value = "all")]
    pub mode: String,
    /// The notice template (default: [notices] template).
    #[arg(long)]
    pub template: Option<String>,
    /// A follow-up for the people no earlier campaign reached (no delivery reached its
    /// provider), e.g. on another channel.
    #[arg(long)]
    pub only_unreached: bool,
    /// Then show progress until every delivery is sent or dead.
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A file read as an upload body, counting the bytes sent.
struct Counted {
    file: tokio::fs::File,
    sent: Arc<AtomicU64>,
    buf: Box<[u8]>,
}

impl futures_core::Stream for Counted {
    type Item = std::io::Result<Vec<u8>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let me = self.get_mut();
        let mut rb = ReadBuf::new(&mut me.buf);
        match Pin::new(&mut me.file).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(None),
            Poll::Ready(Ok(())) => {
                me.sent
                    .fetch_add(rb.filled().len() as u64, Ordering::Relaxed);
                Poll::Ready(Some(Ok(rb.filled().to_vec())))
            }
        }
    }
}

/// A file as a streamed request body, counting the bytes read into `sent`.
pub fn file_body(file: tokio::fs::File, sent: Arc<AtomicU64>) -> reqwest::Body {
    reqwest::Body::wrap_stream(Counted {
        file,
        sent,
        buf: vec![0u8; 256 * 1024].into_boxed_slice(),
    })
}

pub async fn subjects(c: SubjectsCommand) -> anyhow::Result<i32> {
    match c {
        SubjectsCommand::Keygen { id } => keygen(&id),
        SubjectsCommand::Import {
            incident,
            file,
            format,
            client,
        } => import(incident, file, format, client).await,
        SubjectsCommand::List {
            incident,
            after,
            limit,
            client,
        } => list_subjects(incident, after, limit, client).await,
        SubjectsCommand::Show {
            incident,
            subject_id,
            client,
        } => show_subject(incident, &subject_id, client).await,
    }
}

/// `subjects keygen`: a new key line, checked as [subjects] key would read it.
fn keygen(id: &str) -> anyhow::Result<i32> {
    crate::subjects::crypto::KeyRing::parse(&format!("{id}:{}", "0".repeat(64)))
        .map_err(|e| anyhow::anyhow!(e))?;
    println!("{}", crate::subjects::crypto::KeyRing::generate(id));
    eprintln!(
        "Keep this line secret. Put it first in the key file named by [subjects] key_file \
         (older keys after it, one per line, until their data is purged)."
    );
    Ok(0)
}

/// `subjects list`: one page of an incident's subjects, contacts masked.
async fn list_subjects(
    incident: i64,
    after: Option<i64>,
    limit: u32,
    client: ClientArgs,
) -> anyhow::Result<i32> {
    let c = Client::new(&client)?;
    let mut path = format!("/api/v1/incidents/{incident}/subjects?limit={limit}");
    if let Some(a) = after {
        path.push_str(&format!("&cursor={a}"));
    }
    let v = c.call(Method::GET, &path, None).await?;
    print(&client, &v, |v| {
        println!("{} subjects", v["total"]);
        println!(
            "{:>8}  {:<20} {:<8} {:<16} {:<22} {:<8} channels",
            "row", "subject", "name", "phone", "email", "locale"
        );
        for s in v["items"].as_array().into_iter().flatten() {
            let f = |k: &str| s[k].as_str().unwrap_or("-").to_string();
            println!(
                "{:>8}  {:<20} {:<8} {:<16} {:<22} {:<8} {}",
                s["id"].as_i64().unwrap_or_default(),
                f("subject_id"),
                f("name"),
                f("phone"),
                f("email"),
                f("locale"),
                list(&s["channels"])
            );
        }
        if let Some(n) = v["next_cursor"].as_str() {
            println!("more: --after {n}");
        }
    });
    Ok(0)
}

/// `subjects show`: one person and every notice sent to them.
async fn show_subject(incident: i64, subject_id: &str, client: ClientArgs) -> anyhow::Result<i32> {
    let c = Client::new(&client)?;
    let path = format!(
        "/api/v1/incidents/{incident}/subjects/{}",
        percent_encoding::utf8_percent_encode(subject_id, percent_encoding::NON_ALPHANUMERIC)
    );
    let v = c.call(Method::GET, &path, None).await?;
    print(&client, &v, |v| {
        let s = &v["subject"];
        println!(
            "subject {} (row {}): name {}, phone {}, email {}, site user {}, locale {}, channels {}",
            s["subject_id"].as_str().unwrap_or("?"),
            s["id"],
            s["name"].as_str().unwrap_or("-"),
            s["phone"].as_str().unwrap_or("-"),
            s["email"].as_str().unwrap_or("-"),
            s["site_user_id"].as_str().unwrap_or("-"),
            s["locale"].as_str().unwrap_or("-"),
            list(&s["channels"]),
        );
        if s["purged_at"].is_string() {
            println!("contacts purged (retention period)");
        }
        let notices = v["notices"].as_array().cloned().unwrap_or_default();
        if notices.is_empty() {
            println!("no notice has been sent to this person");
        }
        for n in notices {
            println!("{}", notice_line(&n));
        }
    });
    Ok(0)
}

/// One notice sent to a person: campaign, channel, language, status, when, the provider's id,
/// the last error.
fn notice_line(n: &Value) -> String {
    let when = n["sent_at"]
        .as_i64()
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map_or("-".to_string(), |t| {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        });
    format!(
        "  campaign {} · {} · {} · {} · sent {} · {} {}{}",
        n["campaign"],
        n["channel"].as_str().unwrap_or("?"),
        n["locale"].as_str().unwrap_or("?"),
        n["status"].as_str().unwrap_or("?"),
        when,
        n["provider"].as_str().unwrap_or(""),
        n["provider_message_id"].as_str().unwrap_or(""),
        n["last_error"]
            .as_str()
            .map(|e| format!(" · {e}"))
            .unwrap_or_default(),
    )
}

/// `subjects import`: stream the file to the server with a progress bar, then print its report.
/// Exits 1 when the import did not finish.
async fn import(
    incident: i64,
    file: PathBuf,
    format: Option<String>,
    args: ClientArgs,
) -> anyhow::Result<i32> {
    let name = file.display().to_string();
    let content_type = content_type_of(&name, format.as_deref())?;
    let f = tokio::fs::File::open(&file)
        .await
        .with_context(|| format!("cannot open {name}"))?;
    let total = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    let sent = Arc::new(AtomicU64::new(0));
    let body = file_body(f, sent.clone());
    // No overall timeout: a large list takes as long as it takes.
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("incidentd-cli/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let url = format!(
        "{}/api/v1/incidents/{incident}/subjects",
        args.url.trim_end_matches('/')
    );
    let mut req = http
        .post(&url)
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = &args.token {
        req = req.bearer_auth(t);
    }
    let bar = upload_bar(&args, total, &name);
    let progress = follow_upload(sent.clone(), bar.clone(), total);
    let res = req.send().await;
    progress.abort();
    bar.set_position(sent.load(Ordering::Relaxed));
    bar.finish();
    let res = res.with_context(|| {
        format!(
            "the upload to {} failed (is incidentd running? set --url or INCIDENTD_URL)",
            args.url
        )
    })?;
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let detail = v["detail"]
            .as_str()
            .map(str::to_string)
            .unwrap_or(v.to_string());
        anyhow::bail!("{status}: {detail}");
    }
    print(&args, &v, |r| print_import(incident, r));
    Ok(if v["status"] == "done" { 0 } else { 1 })
}

/// The list's content type: from `--format`, else from the file's extension.
fn content_type_of(name: &str, format: Option<&str>) -> anyhow::Result<&'static str> {
    Ok(match format.unwrap_or(name).to_ascii_lowercase() {
        f if f == "csv" || f.ends_with(".csv") => "text/csv",
        f if f == "ndjson" || f == "jsonl" || f.ends_with(".ndjson") || f.ends_with(".jsonl") => {
            "application/x-ndjson"
        }
        _ => anyhow::bail!(
            "cannot tell the format of {name}: name it .csv or .ndjson, or give --format csv|ndjson"
        ),
    })
}

/// The upload's progress bar: on stderr, and only when it is a terminal (indicatif draws
/// nothing otherwise); hidden with --json.
fn upload_bar(args: &ClientArgs, total: u64, name: &str) -> ProgressBar {
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4))
    };
    bar.set_style(
        ProgressStyle::with_template(
            "importing {prefix}: {percent:>3}% [{bar:30}] {decimal_bytes} of {decimal_total_bytes} · {decimal_bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>-"),
    );
    bar.set_prefix(name.to_string());
    bar
}

/// Moves the bar to the bytes sent, ten times a second, until all are.
fn follow_upload(
    sent: Arc<AtomicU64>,
    bar: ProgressBar,
    total: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let n = sent.load(Ordering::Relaxed);
            bar.set_position(n);
            if total > 0 && n >= total {
                // All sent: the rate shown stays the upload's, not the wait for the report.
                bar.finish();
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The server's import report: counts, who can be reached, and each bad row.
fn print_import(incident: i64, r: &Value) {
    println!(
        "{} rows in {:.1} s: {} accepted ({} new, {} updated), {} rejected, {} warnings",
        r["rows"],
        r["seconds"].as_f64().unwrap_or(0.0),
        r["accepted"],
        r["inserted"],
        r["updated"],
        r["rejected"],
        r["warnings"]
    );
    let reach: Vec<String> = r["reachable"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "reachable: {}; no channel at all: {}",
        if reach.is_empty() {
            "-".into()
        } else {
            reach.join(", ")
        },
        r["unreachable"]
    );
    println!(
        "incident {incident} now holds {} subjects (import {})",
        r["subjects_total"], r["import_id"]
    );
    for p in r["problems"].as_array().into_iter().flatten() {
        println!(
            "  line {:>7} {:<8} {}{}",
            p["line"],
            p["kind"].as_str().unwrap_or(""),
            p["subject_id"]
                .as_str()
                .map(|s| format!("[{s}] "))
                .unwrap_or_default(),
            p["reason"].as_str().unwrap_or("")
        );
    }
    if r["problems_truncated"] == true {
        println!("  … more problems: see GET /api/v1/incidents/{incident}/subject-imports");
    }
    if let Some(e) = r["error"].as_str() {
        println!("INTERRUPTED: {e} (the rows before it are kept; import the rest again)");
    }
}

/// A campaign on one line: what it is, how far it got, each channel's counts.
fn progress_line(c: &Value) -> String {
    let (done, total) = done_of(c);
    format!(
        "{} · {done}/{total} · {}",
        campaign_head(c),
        channels_line(c)
    )
}

/// `campaign 1 [enqueued] notice/pi_leak · 100000 subjects, 0 unreachable`.
fn campaign_head(c: &Value) -> String {
    format!(
        "campaign {} [{}] {} · {} subjects, {} unreachable",
        c["id"],
        c["status"].as_str().unwrap_or("?"),
        c["template"].as_str().unwrap_or("?"),
        c["subjects"],
        c["unreachable"],
    )
}

/// Deliveries sent or dead, of those enqueued.
fn done_of(c: &Value) -> (u64, u64) {
    let (mut done, mut total) = (0, 0);
    for (_, p) in c["progress"].as_object().into_iter().flatten() {
        let n = |k: &str| p[k].as_u64().unwrap_or(0);
        total += n("enqueued");
        done += n("sent") + n("dead");
    }
    (done, total)
}

fn channels_line(c: &Value) -> String {
    let mut channels = Vec::new();
    for (ch, p) in c["progress"].as_object().into_iter().flatten() {
        let n = |k: &str| p[k].as_i64().unwrap_or(0);
        let mut line = format!("{ch}: sent {}, queued {}", n("sent"), n("queued"));
        if n("dead") > 0 {
            line.push_str(&format!(", dead {}", n("dead")));
        }
        if n("failed_attempts") > 0 {
            line.push_str(&format!(", {} failed attempts", n("failed_attempts")));
        }
        channels.push(line);
    }
    if channels.is_empty() {
        "no deliveries yet".into()
    } else {
        channels.join(" · ")
    }
}

fn finished(c: &Value) -> bool {
    let queued: i64 = c["progress"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, p)| p["queued"].as_i64().unwrap_or(0))
        .sum();
    matches!(c["status"].as_str(), Some("enqueued" | "cancelled")) && queued == 0
}

async fn watch(
    c: &Client,
    incident: i64,
    campaign: Option<i64>,
    args: &ClientArgs,
) -> anyhow::Result<i32> {
    // One bar per campaign on stderr, drawn only when it is a terminal.
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let mut shown: BTreeMap<i64, ProgressBar> = BTreeMap::new();
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} · {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>-");
    loop {
        let v = c
            .call(
                Method::GET,
                &format!("/api/v1/incidents/{incident}/notices"),
                None,
            )
            .await?;
        let list: Vec<Value> = v
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|x| campaign.is_none_or(|id| x["id"] == id))
            .collect();
        if args.json {
            println!("{}", serde_json::to_string(&list).unwrap_or_default());
        } else {
            for x in &list {
                let bar = shown
                    .entry(x["id"].as_i64().unwrap_or_default())
                    .or_insert_with(|| bars.add(ProgressBar::new(0).with_style(style.clone())));
                let (done, total) = done_of(x);
                bar.set_length(total);
                bar.set_position(done);
                bar.set_prefix(campaign_head(x));
                bar.set_message(channels_line(x));
            }
        }
        if list.iter().all(finished) {
            for bar in shown.values() {
                bar.finish();
            }
            if !args.json && bars.is_hidden() {
                // Not a terminal: the outcome as text instead.
                for x in &list {
                    println!("{}", progress_line(x));
                }
            }
            return Ok(0);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub async fn notices(c: NoticesCommand) -> anyhow::Result<i32> {
    match c {
        NoticesCommand::Start(a) => {
            let c = Client::new(&a.client)?;
            let mut body = json!({ "channels": a.channels, "mode": a.mode });
            if let Some(t) = &a.template {
                body["template"] = json!(t);
            }
            if a.only_unreached {
                body["audience"] = json!("unreached");
            }
            let v = c
                .call(
                    Method::POST,
                    &format!("/api/v1/incidents/{}/notices", a.incident),
                    Some(body),
                )
                .await?;
            print(&a.client, &v, |v| {
                println!("{}", progress_line(v));
                if v["status"] == "awaiting_approval" {
                    println!(
                        "waiting for the notice approval (task {}): see `incidentd approvals`",
                        v["approval_task"]
                    );
                }
            });
            // Asking again for the same campaign started nothing: a refusal, not a success.
            if v["existing"] == true {
                eprintln!(
                    "refused: campaign {} exists already for these words, channels and audience; nothing new is sent (nobody gets the same notice twice). For the people it did not reach use --only-unreached on another channel; after the facts change, start a follow-up",
                    v["id"]
                );
                return Ok(1);
            }
            if a.watch {
                return watch(&c, a.incident, v["id"].as_i64(), &a.client).await;
            }
            Ok(0)
        }
        NoticesCommand::Show {
            incident,
            campaign,
            watch: w,
            client,
        } => {
            let c = Client::new(&client)?;
            if w {
                return watch(&c, incident, campaign, &client).await;
            }
            let v = c
                .call(
                    Method::GET,
                    &format!("/api/v1/incidents/{incident}/notices"),
                    None,
                )
                .await?;
            print(&client, &v, |v| {
                let campaigns = v["items"].as_array().cloned().unwrap_or_default();
                if campaigns.is_empty() {
                    println!("no notice campaign for incident {incident}");
                }
                for x in campaigns
                    .iter()
                    .filter(|x| campaign.is_none_or(|id| x["id"] == id))
                {
                    println!("{}", progress_line(x));
                    if let Some(e) = x["error"].as_str() {
                        println!("  {e}");
                    }
                }
            });
            Ok(0)
        }
    }
}

/// A list the API gives as an array (a subject's channels), on one line: `sms;email`.
fn list(v: &Value) -> String {
    let items: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(";")
    }
}
