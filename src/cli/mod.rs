//! The command line. `serve`, `check`, `migrate`, `audit verify` and `token` work offline on
//! the config file; `sink` is a trial peer for e-mail, SMS and voice; everything else is a
//! client of the running daemon.

mod announce;
mod client;
mod correlate;
mod deliveries;
mod drills;
mod heartbeats;
mod obligations;
mod offline;
mod output;
mod render;
mod reports;
mod silences;
mod sink;
mod subjects;
mod tasks;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use subjects::file_body;

const ABOUT: &str = "incidentd turns security alerts into handled incidents: it ingests alerts \
(Alertmanager, generic JSON), classifies them (personal-information leaks are always S1), opens \
and tracks incidents, and keeps every change in a tamper-evident audit trail.";

const AFTER: &str = "\
Getting started:
  incidentd check --config config/incidentd.toml      validate the configuration
  incidentd serve --config config/incidentd.toml      run the daemon (SQLite by default)
  export INCIDENTD_TOKEN=dev-responder-token          a token from the config (see README)
  incidentd alert --title '用户数据库疑似被拖库'       send a test alert
  incidentd incidents list --open                     see what is open
  incidentd incidents show 1                          one incident, its alerts and timeline
  incidentd deliveries 1                              how its messages went out
  incidentd send-test --channel email --to me@example.com   check a channel end to end

Client commands talk to the daemon at --url (INCIDENTD_URL) with --token (INCIDENTD_TOKEN).";

#[derive(Debug, Parser)]
#[command(name = "incidentd", version, about = ABOUT, after_help = AFTER, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// The configuration file.
    #[arg(
        long,
        short,
        env = "INCIDENTD_CONFIG",
        default_value = "config/incidentd.toml"
    )]
    pub config: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// The daemon's address.
    #[arg(
        long,
        env = "INCIDENTD_URL",
        default_value = "http://127.0.0.1:8600",
        global = true
    )]
    pub url: String,
    /// Bearer token (from the config's [[auth.tokens]]); prefer the environment variable.
    #[arg(long, env = "INCIDENTD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the daemon's JSON answer instead of a summary.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (validates the configuration first).
    Serve(ConfigArg),
    /// Validate the configuration and classification rules; exit 1 naming each problem.
    Check(ConfigArg),
    /// Create or upgrade the database schema, then exit.
    Migrate(ConfigArg),
    /// The tamper-evident audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Make API tokens for the config's [[auth.tokens]].
    #[command(subcommand)]
    Token(TokenCommand),
    /// Web console accounts: the `login` of each [[departments.members]] and its password.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Declare an incident.
    Declare(DeclareArgs),
    /// Send an alert (the generic format), e.g. to try the classification rules.
    Alert(AlertArgs),
    /// List and show incidents.
    #[command(subcommand)]
    Incidents(IncidentsCommand),
    /// List recorded alerts (e.g. those that matched no rule).
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Merge an incident into another, which carries on with both.
    #[command(after_help = correlate::MERGE_HELP)]
    Merge(correlate::MergeArgs),
    /// Move an incident through its lifecycle.
    ///
    /// detected → triaged → contained → eradicated → recovered → closed; false_positive from
    /// detected or triaged; closed/false_positive → reopened → triaged.
    Transition(TransitionArgs),
    /// Update an incident's facts (versioned; may raise, never lower, the classification).
    Facts(FactsArgs),
    /// Change an incident's title, category, severity or clocks (some need --reason).
    Update(UpdateArgs),
    /// Preview a message template against the sample incident or a real one.
    #[command(after_help = render::HELP)]
    Render(RenderArgs),
    /// How an incident's messages stand: counts by status and channel, and each delivery.
    #[command(after_help = deliveries::LIST_HELP)]
    Deliveries(deliveries::DeliveriesArgs),
    /// Send a test message through a channel, end to end, and wait for the outcome (admin).
    #[command(name = "send-test", after_help = deliveries::SEND_TEST_HELP)]
    SendTest(deliveries::SendTestArgs),
    /// List tasks across incidents (mine, overdue, by department).
    #[command(after_help = tasks::TASKS_HELP)]
    Tasks(tasks::TasksArgs),
    /// Work on one task: ack, complete, add, reassign.
    #[command(subcommand, after_help = tasks::TASK_HELP)]
    Task(tasks::TaskCommand),
    /// Gates waiting for a decision.
    #[command(after_help = tasks::APPROVALS_HELP)]
    Approvals(tasks::ApprovalsArgs),
    /// Publish or update an incident's public announcement (/announcements/<slug>).
    #[command(after_help = announce::HELP)]
    Announce(announce::AnnounceArgs),
    /// Approve a gate for your departments.
    Approve(tasks::DecideArgs),
    /// Reject a gate (with a reason).
    Reject(tasks::DecideArgs),
    /// Affected people: import lists, list them (masked), show what each was told.
    #[command(subcommand, after_help = subjects::SUBJECTS_HELP)]
    Subjects(subjects::SubjectsCommand),
    /// Notice campaigns to affected people: start one, follow its progress.
    #[command(subcommand, after_help = subjects::NOTICES_HELP)]
    Notices(subjects::NoticesCommand),
    /// Drills: run a scenario now, list past and next drills, show a scorecard.
    #[command(subcommand, after_help = drills::HELP)]
    Drill(drills::DrillCommand),
    /// What the law asks of incidents — regulator reports, notices, announcements — by when,
    /// soonest first, with time left and why.
    #[command(after_help = obligations::HELP)]
    Obligations(obligations::ObligationsArgs),
    /// Record that an obligation other than a report was met outside incidentd.
    #[command(subcommand, after_help = obligations::MET_HELP)]
    Obligation(obligations::ObligationCommand),
    /// Every version of an incident's regulator reports.
    #[command(after_help = reports::REPORTS_HELP)]
    Reports(reports::ReportsArgs),
    /// Regulator reports: draft a version, show it, submit it once approved.
    #[command(subcommand, after_help = reports::REPORT_HELP)]
    Report(reports::ReportCommand),
    /// The post-incident summary: the times that matter against their targets, and the timeline.
    #[command(after_help = reports::SUMMARY_HELP)]
    Summary(reports::SummaryArgs),
    /// Silences (maintenance windows): add one, end one early, show one.
    #[command(subcommand, after_help = silences::SILENCE_HELP)]
    Silence(silences::SilenceCommand),
    /// List silences: active, pending, expired (kept).
    #[command(after_help = silences::LIST_HELP)]
    Silences(silences::SilencesArgs),
    /// Heartbeats (dead-man's switches): last seen, next due, late or not.
    #[command(after_help = heartbeats::LIST_HELP)]
    Heartbeats(heartbeats::HeartbeatsArgs),
    /// Signal a heartbeat by hand or from a script.
    #[command(subcommand)]
    Heartbeat(heartbeats::HeartbeatCommand),
    /// A trial sink for e-mail (SMTP) and SMS/voice (HTTP): keeps and shows what incidentd
    /// sends, delivers nothing. For trials and tests, never for production.
    #[command(after_help = sink::HELP)]
    Sink(sink::SinkArgs),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit trail on the database (offline, or beside a running daemon): the hash
    /// chain, each event's MAC under [audit] key, every alert an event recorded, and every
    /// sealed row (incidents, tasks, approvals, team, deliveries, campaigns, announcements,
    /// reports, obligations, grades) against the digest the chain holds for it. Exit code 1
    /// names the first problem; every differing row is listed.
    #[command(after_help = AUDIT_VERIFY_HELP)]
    Verify {
        #[command(flatten)]
        config: ConfigArg,
        /// A head written down earlier (`ID:HASH`, as verify and the daemon's log print it):
        /// the chain must still pass through it. Catches events deleted from the end and a
        /// chain rewritten as a whole.
        #[arg(long, value_name = "ID:HASH")]
        expect_head: Option<crate::store::ExpectHead>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a new random key for [audit] key (64 hex digits). Keep it off the database's host.
    Keygen,
}

const AUDIT_VERIFY_HELP: &str = "\
Examples:
  incidentd audit verify --config /etc/incidentd/incidentd.toml
  incidentd audit verify --config … --expect-head 4711:9f86d081884c7d65…   the head you kept
  incidentd audit verify --config … --json | jq .problems

Keep the head it prints (or the `audit head` lines the daemon logs every [audit] head_every)
somewhere the database's owner cannot write; see SECURITY.md.";

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Set a console password (argon2id; only the hash is kept). Reads it from standard input
    /// (one line), or asks twice on a terminal. Ends the login's open sessions.
    #[command(
        after_help = "Examples:\n  incidentd accounts password legal-oncall --config /etc/incidentd/incidentd.toml\n  read -rs PW && printf '%s\\n' \"$PW\" | incidentd accounts password legal-oncall"
    )]
    Password {
        /// The member's `login` in [[departments.members]].
        login: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List the configured logins, their department and roles, and whether each has a password.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Generate a random token and print it with the config lines that accept it.
    New {
        /// A name for the token's holder, e.g. alertmanager or alice.
        #[arg(long)]
        name: String,
        /// Roles: ingest, responder, approver, admin, viewer, site.
        #[arg(long = "role", required = true)]
        roles: Vec<crate::config::Role>,
    },
    /// Print the SHA-256 of a token read from standard input (for an existing token).
    Hash,
}

#[derive(Debug, Args)]
pub struct DeclareArgs {
    #[arg(long)]
    pub title: String,
    #[arg(long, default_value = "")]
    pub summary: String,
    /// pi_leak, pi_damage, pi_loss, vulnerability, malware, network_attack, intrusion, …
    /// (omit: the rules decide).
    #[arg(long)]
    pub category: Option<crate::domain::Category>,
    /// S1 … S4 (omit: the rules decide; PI is always S1).
    #[arg(long)]
    pub severity: Option<crate::domain::Severity>,
    /// A drill: exercises everything but never reaches real people or regulators.
    #[arg(long)]
    pub drill: bool,
    /// When it was discovered (RFC 3339, UTC), if before now.
    #[arg(long)]
    pub discovered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it became known that personal information is affected (RFC 3339).
    #[arg(long)]
    pub aware_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Facts as KEY=VALUE (e.g. affected_subjects=1200, data_types=phone,id_number).
    #[arg(long = "fact", value_name = "KEY=VALUE")]
    pub facts: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct AlertArgs {
    #[arg(long)]
    pub title: String,
    #[arg(long, default_value = "cli")]
    pub source: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// A label as KEY=VALUE (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// An annotation as KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    #[arg(long)]
    pub fingerprint: Option<String>,
    /// The problem it belongs to: alerts with the same group key join one incident (without
    /// one, alerts join by fingerprint).
    #[arg(long)]
    pub group_key: Option<String>,
    /// Send the alert as resolved.
    #[arg(long)]
    pub resolved: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// Newest first.
    List {
        #[arg(long)]
        status: Option<crate::domain::Status>,
        /// Only open incidents.
        #[arg(long, conflicts_with = "closed")]
        open: bool,
        /// Only closed and false-positive incidents.
        #[arg(long)]
        closed: bool,
        #[arg(long)]
        severity: Option<crate::domain::Severity>,
        #[arg(long)]
        category: Option<crate::domain::Category>,
        /// Only drills (or, with --drill=false, only real incidents).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        drill: Option<bool>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One incident with its facts, alerts and timeline.
    Show {
        id: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Newest first.
    List {
        /// Only alerts that opened or joined no incident (and were not silenced).
        #[arg(long, conflicts_with = "silenced")]
        unmatched: bool,
        /// Only alerts a silence silenced.
        #[arg(long)]
        silenced: bool,
        #[arg(long)]
        incident: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Move an alert (every notification of it) to another incident; later ones follow.
    #[command(after_help = correlate::MOVE_HELP)]
    Move(correlate::MoveArgs),
    /// Open an incident for a recorded alert (one that opened or joined none).
    #[command(after_help = correlate::PROMOTE_HELP)]
    Promote(correlate::PromoteArgs),
}

#[derive(Debug, Args)]
pub struct TransitionArgs {
    pub id: i64,
    /// triaged, contained, eradicated, recovered, closed, false_positive, reopened.
    pub to: crate::domain::Status,
    /// Why (required for closed, false_positive and reopened).
    #[arg(long)]
    pub note: Option<String>,
    /// Close although tasks or obligations are open: the open tasks are cancelled with
    /// --reason; open obligations stay open (not met).
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why the incident is closed with open work (with --force).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct FactsArgs {
    pub id: i64,
    /// KEY=VALUE; numbers, true/false and comma lists are understood; KEY= clears.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A JSON merge patch file instead (or `-` for standard input).
    #[arg(long, conflicts_with = "set")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub id: i64,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub summary: Option<String>,
    #[arg(long)]
    pub category: Option<crate::domain::Category>,
    #[arg(long)]
    pub severity: Option<crate::domain::Severity>,
    #[arg(long)]
    pub discovered_at: Option<chrono::DateTime<chrono::Utc>>,
    #[arg(long)]
    pub aware_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the breach was assessed notifiable (SG clock; set automatically when the facts
    /// first make it notifiable).
    #[arg(long)]
    pub assessed_notifiable_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When handling ended (CN closing-report clock; the closing, unless given).
    #[arg(long)]
    pub handling_closed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Required to lower severity, change the category or move a clock.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The template: <kind>/<name>, e.g. notice/pi_leak or page/incident_opened.
    pub template: String,
    /// Only this channel: email, sms, voice, inbox, site_webhook or webhook (default: every
    /// channel the template has parts for).
    #[arg(long)]
    pub channel: Option<crate::domain::message::ChannelKind>,
    /// The recipient's locale, e.g. zh-CN or en; falls back zh-CN → zh → en
    /// (default: organisation.default_locale).
    #[arg(long)]
    pub locale: Option<String>,
    /// Use the built-in sample incident (works offline).
    #[arg(
        long,
        conflicts_with = "incident",
        required_unless_present = "incident"
    )]
    pub sample: bool,
    /// Use this incident, fetched from the running daemon (needs INCIDENTD_TOKEN).
    #[arg(long, value_name = "ID")]
    pub incident: Option<i64>,
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Run a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Serve(c) => offline::serve(&c.config).await,
        Command::Check(c) => offline::check(&c.config),
        Command::Migrate(c) => offline::migrate(&c.config).await,
        Command::Audit(AuditCommand::Verify {
            config,
            expect_head,
            json,
        }) => offline::audit_verify(&config.config, expect_head.as_ref(), json).await,
        Command::Audit(AuditCommand::Keygen) => offline::audit_keygen(),
        Command::Token(t) => offline::token(t),
        Command::Accounts(a) => offline::accounts(a).await,
        Command::Declare(a) => client::declare(a).await,
        Command::Alert(a) => client::alert(a).await,
        Command::Incidents(c) => client::incidents(c).await,
        Command::Alerts(AlertsCommand::Move(a)) => correlate::move_alert(a).await,
        Command::Alerts(AlertsCommand::Promote(a)) => correlate::promote(a).await,
        Command::Alerts(c) => client::alerts(c).await,
        Command::Merge(a) => correlate::merge(a).await,
        Command::Transition(a) => client::transition(a).await,
        Command::Facts(a) => client::facts(a).await,
        Command::Update(a) => client::update(a).await,
        Command::Render(a) => render::run(a).await,
        Command::Deliveries(a) => deliveries::list(a).await,
        Command::SendTest(a) => deliveries::send_test(a).await,
        Command::Tasks(a) => tasks::tasks(a).await,
        Command::Task(c) => tasks::task(c).await,
        Command::Approvals(a) => tasks::approvals(a).await,
        Command::Announce(a) => announce::run(a).await,
        Command::Approve(a) => tasks::decide(a, true).await,
        Command::Reject(a) => tasks::decide(a, false).await,
        Command::Subjects(c) => subjects::subjects(c).await,
        Command::Notices(c) => subjects::notices(c).await,
        Command::Drill(c) => drills::drill(c).await,
        Command::Obligations(a) => obligations::list(a).await,
        Command::Obligation(c) => obligations::obligation(c).await,
        Command::Reports(a) => reports::list(a).await,
        Command::Report(c) => reports::report(c).await,
        Command::Summary(a) => reports::summary(a).await,
        Command::Silence(c) => silences::silence(c).await,
        Command::Silences(a) => silences::list(a).await,
        Command::Heartbeats(a) => heartbeats::list(a).await,
        Command::Heartbeat(c) => heartbeats::heartbeat(c).await,
        Command::Sink(a) => sink::run(a).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// `KEY=VALUE` → (key, value), with a message naming the argument otherwise.
fn key_value(s: &str, what: &str) -> anyhow::Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| anyhow::anyhow!("{what} `{s}` must be KEY=VALUE"))
}
