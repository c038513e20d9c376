//! The configuration file's shape. Every struct refuses unknown keys.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::classify::Rules;
use crate::domain::duration::HumanDuration;
use crate::domain::facts::Jurisdiction;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: ServerConfig,
    pub store: StoreConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub paths: PathsConfig,
    pub organisation: OrganisationConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub channels: ChannelsConfig,
    #[serde(default)]
    pub dispatch: DispatchConfig,
    #[serde(default)]
    pub render: RenderConfig,
    #[serde(default)]
    pub departments: Vec<DepartmentConfig>,
    #[serde(default)]
    pub paging: PagingConfig,
    #[serde(default)]
    pub scheduler: SchedulerSection,
    #[serde(default)]
    pub subjects: SubjectsConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
    #[serde(default)]
    pub notices: NoticesConfig,
    #[serde(default)]
    pub announcements: AnnouncementsConfig,
    #[serde(default)]
    pub reports: ReportsConfig,
    #[serde(default)]
    pub regulators: Vec<RegulatorConfig>,
    #[serde(default)]
    pub drills: DrillsConfig,
    /// `[[heartbeats]]`: signals expected to keep arriving (dead-man's switches).
    #[serde(default)]
    pub heartbeats: Vec<crate::domain::heartbeat::HeartbeatSpec>,
}

/// `[drills]`: when scenarios run by themselves.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillsConfig {
    #[serde(default)]
    pub schedule: Vec<DrillSchedule>,
}

/// `[[drills.schedule]]`: run `scenario` on a cron schedule read in `time_zone`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillSchedule {
    /// A scenario's `name` in the drills folder.
    pub scenario: String,
    /// Six fields, seconds first, e.g. `0 0 10 * * Wed` (10:00 every Wednesday).
    pub cron: String,
    /// IANA zone the expression is read in, e.g. `Asia/Shanghai`.
    #[serde(default = "default_drill_zone")]
    pub time_zone: String,
}

fn default_drill_zone() -> String {
    "UTC".into()
}

impl DrillSchedule {
    /// The cron job's name: `drill.<scenario>`.
    pub fn job(&self) -> String {
        format!("{DRILL_JOB_PREFIX}{}", self.scenario)
    }
}

/// `[reports]`: regulator reports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// The departments that must all approve a report before it can be submitted.
    #[serde(default = "default_report_approvers")]
    pub approvers: Vec<String>,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            approvers: default_report_approvers(),
        }
    }
}

fn default_report_approvers() -> Vec<String> {
    vec!["government_relations".into(), "legal".into()]
}

/// `[[regulators]]`: where reports to a regulator are submitted. `id` is a jurisdiction pack's
/// recipient id (`[recipients.<id>]`, e.g. `cac_provincial`, `pdpc`); a regulator with neither
/// `email` nor `webhook` is submitted by hand (portal, hotline) and recorded with its reference.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegulatorConfig {
    pub id: String,
    /// How the organisation names it (shown with submissions).
    pub name: String,
    /// Its mailbox for reports (needs [channels.email]).
    #[serde(default)]
    pub email: Option<String>,
    /// A `[[channels.webhooks]]` target, by name, the report is POSTed to (signed).
    #[serde(default)]
    pub webhook: Option<String>,
}

impl RegulatorConfig {
    /// How reports can reach it, for messages: `e-mail, webhook` or `manual only`.
    pub fn routes(&self) -> String {
        let mut v = Vec::new();
        if self.email.is_some() {
            v.push("email");
        }
        if self.webhook.is_some() {
            v.push("webhook");
        }
        v.push("manual");
        v.join(", ")
    }
}

/// `[announcements]`: the public announcement page (`/announcements/{slug}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementsConfig {
    /// A `[[channels.webhooks]]` target (by name) each published version is pushed to, signed,
    /// e.g. the organisation's public website. None: served by incidentd only.
    #[serde(default)]
    pub webhook: Option<String>,
    /// The page template (`subject` + `html` parts) rendered in each of its locales.
    #[serde(default = "default_announcement_template")]
    pub template: String,
    /// The departments that must all approve a version before it is public (and paged when
    /// one waits for them).
    #[serde(default = "default_announcement_approvers")]
    pub approvers: Vec<String>,
}

impl Default for AnnouncementsConfig {
    fn default() -> Self {
        AnnouncementsConfig {
            webhook: None,
            template: default_announcement_template(),
            approvers: default_announcement_approvers(),
        }
    }
}

fn default_announcement_approvers() -> Vec<String> {
    vec!["public_relations".into(), "legal".into()]
}

fn default_announcement_template() -> String {
    "announcement/pi_leak".into()
}

/// `[console]`: the web console's sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// A session unused this long ends.
    #[serde(default = "default_console_idle")]
    pub idle_timeout: HumanDuration,
    /// A session ends this long after sign-in, used or not.
    #[serde(default = "default_console_lifetime")]
    pub session_lifetime: HumanDuration,
    /// Failed sign-ins per login (and per client address) within `lockout` before further
    /// attempts are refused until it passes.
    #[serde(default = "default_console_attempts")]
    pub max_failed_logins: u32,
    #[serde(default = "default_console_lockout")]
    pub lockout: HumanDuration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            idle_timeout: default_console_idle(),
            session_lifetime: default_console_lifetime(),
            max_failed_logins: default_console_attempts(),
            lockout: default_console_lockout(),
        }
    }
}

fn default_console_idle() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(1800))
}
fn default_console_lifetime() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(12 * 3600))
}
fn default_console_attempts() -> u32 {
    5
}
fn default_console_lockout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

/// `[audit]`: the audit chain's key and where its head goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// 64 hex digits: each audit event also carries HMAC-SHA-256 under this key, so someone
    /// who can write the database but does not hold the key cannot rewrite the chain. Keep it
    /// outside the database's host: usually `key_file` (a systemd credential). `incidentd
    /// audit keygen` makes one. Without it the chain is checked by its SHA-256 hashes only.
    #[serde(default)]
    pub key: Option<SecretString>,
    /// How often the daemon writes the chain's head (id, hash, MAC) to its log, so that a
    /// log kept elsewhere anchors it: `incidentd audit verify --expect-head ID:HASH`.
    #[serde(default = "default_head_every")]
    pub head_every: HumanDuration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            key: None,
            head_every: default_head_every(),
        }
    }
}

fn default_head_every() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(900))
}

/// `[subjects]`: affected people's contact data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectsConfig {
    /// Contact encryption keys, `<key id>:<64 hex digits>`, the first encrypting; usually given
    /// as `key_file` (a file beside the config, or a systemd credential). Without it, subject
    /// imports are refused. `incidentd subjects keygen` makes one.
    #[serde(default)]
    pub key: Option<SecretString>,
    /// How long after an incident closes its subjects' contacts are kept, then purged.
    #[serde(default = "default_retention")]
    pub retention: HumanDuration,
    /// Rows written per transaction during an import.
    #[serde(default = "default_import_batch")]
    pub import_batch: usize,
    /// How often to look for contacts past their retention.
    #[serde(default = "default_purge_every")]
    pub purge_every: HumanDuration,
}

impl Default for SubjectsConfig {
    fn default() -> Self {
        SubjectsConfig {
            key: None,
            retention: default_retention(),
            import_batch: default_import_batch(),
            purge_every: default_purge_every(),
        }
    }
}

fn default_retention() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(180 * 86_400))
}
fn default_purge_every() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(3600))
}
fn default_import_batch() -> usize {
    2000
}

/// `[notices]`: notice campaigns to affected people.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticesConfig {
    /// The notice template campaigns send.
    #[serde(default = "default_notice_template")]
    pub template: String,
    /// The playbook approval task that must be approved before a campaign sends anything.
    #[serde(default = "default_approval_task")]
    pub approval_task: String,
    /// Categories whose notices need no approval (e.g. a service-discontinuation notice).
    /// Personal-information categories always need it.
    #[serde(default)]
    pub approval_not_required: Vec<crate::domain::incident::Category>,
    /// Subjects enqueued per transaction while a campaign runs.
    #[serde(default = "default_campaign_batch")]
    pub batch: usize,
    /// Publish the public announcement when a campaign starts and fewer than this share of the
    /// affected people (the larger of `affected_subjects` and the subjects held) can be reached
    /// on its channels. 0 turns the rule off.
    #[serde(default = "default_reachable_below")]
    pub announce_when_reachable_below: f64,
    /// … or when more people than this are affected. 0 turns the rule off.
    #[serde(default)]
    pub announce_when_subjects_above: u64,
}

impl Default for NoticesConfig {
    fn default() -> Self {
        NoticesConfig {
            template: default_notice_template(),
            approval_task: default_approval_task(),
            approval_not_required: Vec::new(),
            batch: default_campaign_batch(),
            announce_when_reachable_below: default_reachable_below(),
            announce_when_subjects_above: 0,
        }
    }
}

fn default_notice_template() -> String {
    "notice/pi_leak".into()
}
fn default_approval_task() -> String {
    "approve_notice".into()
}
fn default_reachable_below() -> f64 {
    0.5
}
fn default_campaign_batch() -> usize {
    5000
}

/// `[scheduler]`: persisted timers (escalations, deadlines) and cron jobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSection {
    /// The longest sleep between looks at the timer table (timers scheduled here wake it at
    /// once; this is for other instances' timers).
    #[serde(default = "default_scheduler_poll")]
    pub poll_interval: HumanDuration,
    /// Timers fired per transaction.
    #[serde(default = "default_scheduler_batch")]
    pub batch: usize,
    /// When to send the status digest of open S1/S2 incidents to their teams: six-field cron,
    /// seconds first, UTC. Empty: no digest.
    #[serde(default = "default_digest")]
    pub digest: String,
}

impl Default for SchedulerSection {
    fn default() -> Self {
        SchedulerSection {
            poll_interval: default_scheduler_poll(),
            batch: default_scheduler_batch(),
            digest: default_digest(),
        }
    }
}

fn default_scheduler_poll() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(1))
}
fn default_scheduler_batch() -> usize {
    // 10,000 timers due at one instant fire within 1 s on PostgreSQL too (benches/timers.rs).
    1024
}
fn default_digest() -> String {
    // 09:00, 13:00 and 17:00 in China (UTC+8).
    "0 0 1,5,9 * * *".into()
}

impl SchedulerSection {
    /// The scheduler's settings with the drill schedules as cron jobs (`drill:<scenario>`).
    pub fn with_drills(&self, drills: &DrillsConfig) -> SchedulerConfig {
        let mut c = self.to_config();
        for d in &drills.schedule {
            c.cron.push((d.job(), d.cron.clone()));
            if let Ok(tz) = d.time_zone.parse::<chrono_tz::Tz>() {
                c.cron_zones.insert(d.job(), tz);
            }
        }
        c
    }

    pub fn to_config(&self) -> SchedulerConfig {
        SchedulerConfig {
            poll_interval: self.poll_interval.0,
            batch: self.batch,
            cron: if self.digest.trim().is_empty() {
                Vec::new()
            } else {
                vec![("digest".to_string(), self.digest.clone())]
            },
            ..Default::default()
        }
    }
}

/// `[[departments]]`: who is in the joint response team, by escalation level.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentConfig {
    /// Short id playbooks use (`security`, `legal`, …).
    pub id: String,
    pub name: String,
    /// A page nobody in the department acknowledged within this pages the next level.
    #[serde(default = "default_escalate_after")]
    pub escalate_after: HumanDuration,
    pub members: Vec<MemberConfig>,
}

/// One person in a department.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// Short id, unique in the department (used in acknowledgement links); defaults to the
    /// member's position in the list.
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// International (`+8613800000000`), or national in `[organisation] default_region`;
    /// checked against the country's numbering plan and kept in E.164.
    #[serde(default)]
    pub phone: Option<String>,
    /// 1 is paged first; higher levels when lower ones do not acknowledge.
    #[serde(default = "default_member_level")]
    pub level: u32,
    /// Overdue tasks of the department page its lead (default: the highest level's members).
    #[serde(default)]
    pub lead: bool,
    #[serde(default)]
    pub locale: Option<String>,
    /// The person's login for the web console (unique across departments); a password is set
    /// with `incidentd accounts password LOGIN`. Without it the person has no console account.
    #[serde(default)]
    pub login: Option<String>,
    /// What the person may do in the console, for their department: `responder` (acknowledge,
    /// complete), `approver` (decide the department's approvals), `viewer` (read only).
    /// Default: responder and approver.
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
}

fn default_escalate_after() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(600))
}
fn default_member_level() -> u32 {
    1
}

/// `[paging]`: how responders are paged, by incident severity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagingConfig {
    /// Channels used at each severity, all at once (e.g. S1: voice + SMS + e-mail).
    #[serde(default = "default_paging_channels")]
    pub channels: std::collections::BTreeMap<
        crate::domain::incident::Severity,
        Vec<crate::domain::message::ChannelKind>,
    >,
    /// Signs the one-click acknowledgement links in pages (`ack_secret_file`); without it,
    /// pages carry no link.
    #[serde(default)]
    pub ack_secret: Option<SecretString>,
    /// How long an acknowledgement link works.
    #[serde(default = "default_ack_ttl")]
    pub ack_link_ttl: HumanDuration,
    /// Pages to one person on one channel within this long after the first are held and go
    /// out together, as one digest (`page/digest`), when the window ends; `0s` (the default)
    /// sends every page by itself. See docs/paging.md.
    #[serde(default = "no_coalescing")]
    pub coalesce: HumanDuration,
    /// Channels whose provider takes only approved templates and has no code for
    /// `page/digest`: pages on them are never coalesced. Filled in when loading.
    #[serde(skip)]
    pub no_digest: Vec<crate::domain::message::ChannelKind>,
}

impl Default for PagingConfig {
    fn default() -> Self {
        PagingConfig {
            channels: default_paging_channels(),
            ack_secret: None,
            ack_link_ttl: default_ack_ttl(),
            coalesce: no_coalescing(),
            no_digest: Vec::new(),
        }
    }
}

impl PagingConfig {
    /// Whether pages on `channel` are coalesced.
    pub fn coalesces(&self, channel: crate::domain::message::ChannelKind) -> bool {
        !self.coalesce.0.is_zero() && !self.no_digest.contains(&channel)
    }
}

fn no_coalescing() -> HumanDuration {
    HumanDuration(std::time::Duration::ZERO)
}

fn default_ack_ttl() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(24 * 3600))
}

fn default_paging_channels() -> std::collections::BTreeMap<
    crate::domain::incident::Severity,
    Vec<crate::domain::message::ChannelKind>,
> {
    use crate::domain::incident::Severity as S;
    use crate::domain::message::ChannelKind as K;
    [
        (S::S1, vec![K::Voice, K::Sms, K::Email]),
        (S::S2, vec![K::Sms, K::Email]),
        (S::S3, vec![K::Email]),
        (S::S4, vec![K::Email]),
    ]
    .into_iter()
    .collect()
}

impl DepartmentConfig {
    /// Members at `level`, and the levels in use, ascending.
    pub fn at_level(&self, level: u32) -> impl Iterator<Item = &MemberConfig> {
        self.members.iter().filter(move |m| m.level == level)
    }

    pub fn levels(&self) -> Vec<u32> {
        let mut l: Vec<u32> = self.members.iter().map(|m| m.level).collect();
        l.sort_unstable();
        l.dedup();
        l
    }

    /// Who an overdue task pages: members marked `lead`, else the highest level.
    pub fn leads(&self) -> Vec<&MemberConfig> {
        let marked: Vec<_> = self.members.iter().filter(|m| m.lead).collect();
        if !marked.is_empty() {
            return marked;
        }
        let top = self.levels().last().copied().unwrap_or(1);
        self.at_level(top).collect()
    }

    /// A member's id: given, or its position (1-based) in the list.
    pub fn member_id(&self, index: usize) -> String {
        self.members[index]
            .id
            .clone()
            .unwrap_or_else(|| (index + 1).to_string())
    }
}

pub use crate::channels::ChannelsConfig;

/// `[dispatch]`: how the dispatcher claims and retries deliveries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// Deliveries claimed in one batch.
    #[serde(default = "default_dispatch_batch")]
    pub batch_size: usize,
    /// How long a claim holds a delivery; a claim older than this (its claimer crashed) is
    /// taken again. Must be longer than the slowest channel's timeout.
    #[serde(default = "default_lease")]
    pub lease: HumanDuration,
    /// Attempts before a delivery is `dead`.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter, up to `backoff_max`.
    #[serde(default = "default_backoff_base")]
    pub backoff_base: HumanDuration,
    #[serde(default = "default_backoff_max")]
    pub backoff_max: HumanDuration,
    /// How often the dispatcher looks for work nobody told it about (other instances'
    /// deliveries, expired leases). New deliveries from this instance wake it at once.
    #[serde(default = "default_poll")]
    pub poll_interval: HumanDuration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            batch_size: default_dispatch_batch(),
            lease: default_lease(),
            max_attempts: default_max_attempts(),
            backoff_base: default_backoff_base(),
            backoff_max: default_backoff_max(),
            poll_interval: default_poll(),
        }
    }
}

fn default_dispatch_batch() -> usize {
    256
}
fn default_lease() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(60))
}
fn default_max_attempts() -> u32 {
    8
}
fn default_backoff_base() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_backoff_max() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(3600))
}
fn default_poll() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(2))
}

/// `[render]`: how templates are rendered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderConfig {
    /// IANA time zone for dates in messages.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The most segments a notice's SMS may take: the notice content lint (`check`, and the
    /// notice approval) fails past it. For other templates `render` and `check` only warn.
    #[serde(default = "default_sms_segments")]
    pub sms_max_segments: u32,
}

impl Default for RenderConfig {
    fn default() -> Self {
        RenderConfig {
            time_zone: default_time_zone(),
            sms_max_segments: default_sms_segments(),
        }
    }
}

fn default_time_zone() -> String {
    "Asia/Shanghai".into()
}
fn default_sms_segments() -> u32 {
    3
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `host:port`; port 0 picks a free port (the chosen address is logged).
    pub listen: SocketAddr,
    /// The address people and senders use to reach this daemon (links in notices).
    pub public_url: String,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub max_body_bytes: usize,
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// How long shutdown waits for requests and queued writes to finish.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: HumanDuration,
    /// How long a client may take to send a request's headers, counted from when it connects
    /// or from the first byte of a request on a kept-alive connection. Slower: disconnected.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: HumanDuration,
    /// How long a connection may sit without a request in progress before it is closed; also
    /// how long a response may wait for a client that stopped reading it.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// Connections open at once. At the limit a new connection closes the one idle longest;
    /// when every connection has a request in progress it is refused at once with 503.
    #[serde(default = "default_open_connections")]
    pub max_connections: usize,
    /// Accept the trial secrets of the shipped example configuration on a listen address other
    /// than loopback (they are public: a trial on a shared host only).
    #[serde(default)]
    pub allow_trial_secrets: bool,
}

fn default_body_limit() -> usize {
    4 * 1024 * 1024
}
fn default_request_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}
fn default_shutdown_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_header_read_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_idle_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(60))
}
fn default_open_connections() -> usize {
    1024
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (relative to the config file) or `postgres://user@host/db`.
    pub url: SecretString,
    /// Connections in the PostgreSQL pool (SQLite uses one writer and a few readers).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// SQLite only: `full` (every commit reaches the disk) or `normal` (faster, may lose the
    /// last commits on power loss, never on a crash of the daemon).
    #[serde(default)]
    pub sqlite_synchronous: SqliteSync,
    /// How long a write waits for the database before the request fails with 503.
    #[serde(default = "default_busy_timeout")]
    pub busy_timeout: HumanDuration,
}

/// Redacts the URL: it may carry a password.
impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &redact_url(self.url.expose_secret()))
            .field("max_connections", &self.max_connections)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &userinfo[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn default_max_connections() -> u32 {
    10
}
fn default_busy_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    #[default]
    Full,
    Normal,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    /// Hex SHA-256 of the token (`incidentd token new` prints both).
    pub sha256: String,
    pub roles: Vec<Role>,
    /// Departments the token's holder acts for: an `approver` decides approval tasks of these
    /// departments; `GET /api/v1/tasks?mine=true` lists their tasks.
    #[serde(default)]
    pub departments: Vec<String>,
}

/// What a bearer token may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Ingest,
    Responder,
    Approver,
    Admin,
    Viewer,
    Site,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Responder => "responder",
            Role::Approver => "approver",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::Site => "site",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
            format!("`{s}` is not a role; use ingest, responder, approver, admin, viewer or site")
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    /// Classification rules (relative to the config file).
    #[serde(default = "default_classification")]
    pub classification: PathBuf,
    /// Message templates, `<kind>/<name>.<locale>.hbs` (relative to the config file).
    #[serde(default = "default_templates")]
    pub templates: PathBuf,
    /// Playbooks, `*.toml` (relative to the config file).
    #[serde(default = "default_playbooks")]
    pub playbooks: PathBuf,
    /// Jurisdiction packs, `*.toml` (relative to the config file). When not given, the folder
    /// `jurisdictions` beside the config file is used if it exists; otherwise incidents are not
    /// graded and no regulator obligations are tracked.
    #[serde(default)]
    pub jurisdictions: Option<PathBuf>,
    /// Drill scenarios, `*.toml` (relative to the config file). When not given, the folder
    /// `drills` beside the config file is used if it exists; otherwise no scenarios.
    #[serde(default)]
    pub drills: Option<PathBuf>,
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            classification: default_classification(),
            templates: default_templates(),
            playbooks: default_playbooks(),
            jurisdictions: None,
            drills: None,
        }
    }
}

fn default_playbooks() -> PathBuf {
    PathBuf::from("playbooks")
}

fn default_templates() -> PathBuf {
    PathBuf::from("../templates")
}

fn default_classification() -> PathBuf {
    PathBuf::from("classification.toml")
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationConfig {
    pub name: String,
    /// `cii` (critical information infrastructure), `state_organ` or `other`: sets the Chinese
    /// reporting deadlines (1 h, 2 h, 4 h).
    pub operator_type: OperatorType,
    pub jurisdictions: Vec<Jurisdiction>,
    /// The personal-information protection officer, printed in notices.
    pub contact: String,
    #[serde(default = "default_locale")]
    pub default_locale: String,
    /// The country (ISO 3166 alpha-2, `CN`) whose numbering plan reads phone numbers given
    /// without a country code: `13800138000` is stored and sent as `+8613800138000`. None:
    /// every number needs its `+` and country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_region: Option<String>,
}

impl OrganisationConfig {
    /// `default_region` as a numbering plan (checked when the configuration is loaded).
    pub fn phone_region(&self) -> Option<crate::domain::message::Region> {
        self.default_region
            .as_deref()
            .and_then(|r| crate::domain::message::parse_region(r).ok())
    }
}

fn default_locale() -> String {
    "zh-CN".into()
}

pub use crate::domain::regulation::OperatorType;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Most alerts accepted in one request.
    #[serde(default = "default_max_alerts")]
    pub max_alerts_per_request: usize,
    /// Most alerts written in one database transaction (group commit).
    #[serde(default = "default_batch")]
    pub max_batch_alerts: usize,
    /// Requests waiting for the writer before new ones get 503 (Alertmanager retries those).
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
    /// Storm control: incidents one intake bucket (an alert source and classification rule)
    /// may open within `storm_window`; its further alerts that would open incidents fold into
    /// one storm incident instead. 0 turns storm control off.
    #[serde(default = "default_storm_incidents")]
    pub storm_incidents: u32,
    #[serde(default = "default_storm_window")]
    pub storm_window: HumanDuration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_alerts_per_request: default_max_alerts(),
            max_batch_alerts: default_batch(),
            queue_capacity: default_queue(),
            storm_incidents: default_storm_incidents(),
            storm_window: default_storm_window(),
        }
    }
}

impl IngestConfig {
    /// The storm policy the writer applies, `None` when storm control is off.
    pub fn storm(&self) -> Option<StormPolicy> {
        (self.storm_incidents > 0).then_some(StormPolicy {
            max_incidents: self.storm_incidents,
            window: self.storm_window.0,
        })
    }
}

fn default_storm_incidents() -> u32 {
    10
}
fn default_storm_window() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(600))
}

fn default_max_alerts() -> usize {
    10_000
}
fn default_batch() -> usize {
    5_000
}
fn default_queue() -> usize {
    4_096
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines. `RUST_LOG` overrides `level`.
    #[serde(default)]
    pub format: LogFormat,
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: default_level(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A bearer token as the daemon keeps it: the hash, never the token.
#[derive(Debug, Clone)]
pub struct Token {
    pub name: String,
    pub sha256: [u8; 32],
    pub roles: Vec<Role>,
    pub departments: Vec<String>,
}

/// The loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    pub server: ServerConfig,
    pub store: StoreConfig,
    /// `store.url` with a relative SQLite path resolved against the config file's folder.
    pub store_url: SecretString,
    pub tokens: Vec<Token>,
    pub classification_path: PathBuf,
    pub rules: Arc<Rules>,
    pub organisation: OrganisationConfig,
    pub ingest: IngestConfig,
    pub log: LogConfig,
    pub channels: ChannelsConfig,
    pub dispatch: DispatchConfig,
    pub render: RenderConfig,
    /// `paths.templates` resolved against the config file's folder.
    pub templates_path: PathBuf,
    /// `paths.playbooks` resolved against the config file's folder.
    pub playbooks_path: PathBuf,
    /// `paths.jurisdictions` resolved; `None`: not given and no `jurisdictions` folder.
    pub jurisdictions_path: Option<PathBuf>,
    /// `paths.drills` resolved; `None`: not given and no `drills` folder.
    pub drills_path: Option<PathBuf>,
    pub drills: DrillsConfig,
    pub departments: Vec<DepartmentConfig>,
    pub paging: PagingConfig,
    pub scheduler: SchedulerSection,
    pub subjects: SubjectsConfig,
    /// The parsed `subjects.key`, if given.
    pub subject_keys: Option<Arc<crate::domain::keyring::KeyRing>>,
    pub audit: AuditConfig,
    pub console: ConsoleConfig,
    /// The parsed `audit.key`, if given.
    pub audit_key: Option<Arc<crate::domain::audit::AuditKey>>,
    pub notices: NoticesConfig,
    pub announcements: AnnouncementsConfig,
    pub reports: ReportsConfig,
    pub regulators: Vec<RegulatorConfig>,
    /// `[[heartbeats]]`, compiled.
    pub heartbeats: Arc<crate::domain::heartbeat::Heartbeats>,
    /// The example configuration's public trial secrets still in use (`check` warns).
    pub trial_secrets: Vec<String>,
}

/// Storm control (`[ingest] storm_incidents`, `storm_window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StormPolicy {
    /// Incidents one intake bucket may open within `window` before the rest fold.
    pub max_incidents: u32,
    pub window: std::time::Duration,
}

/// The cron job name prefix of scheduled drills (`drill.<scenario>`).
pub const DRILL_JOB_PREFIX: &str = "drill.";

/// The template digests are rendered from.
pub const DIGEST_TEMPLATE: &str = "page/digest";

/// The channels whose provider sends only approved templates and has no code for
/// `page/digest`: their pages are never coalesced.
pub fn channels_without_digest(c: &ChannelsConfig) -> Vec<crate::domain::message::ChannelKind> {
    use crate::domain::message::ChannelKind;
    [(ChannelKind::Sms, &c.sms), (ChannelKind::Voice, &c.voice)]
        .into_iter()
        .filter_map(|(kind, cfg)| {
            let cfg = cfg.as_ref()?;
            (cfg.provider.template_only() && !cfg.templates.contains_key(DIGEST_TEMPLATE))
                .then_some(kind)
        })
        .collect()
}

/// How the scheduler runs. `[scheduler]` in the configuration maps onto this.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The longest sleep between looks at the timer table (timers scheduled in this process
    /// wake the scheduler at once).
    pub poll_interval: Duration,
    /// Timers taken (and handed to the handler) per transaction.
    pub batch: usize,
    /// Cron jobs: (name, six-field expression with seconds first, UTC).
    pub cron: Vec<(String, String)>,
    /// The IANA zone a job's expression is read in, by job name; UTC when absent.
    pub cron_zones: std::collections::HashMap<String, chrono_tz::Tz>,
    /// The first retry delay of a timer whose handler failed; doubles per failure.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Failures after which a timer is `dead`.
    pub max_attempts: u32,
    /// How long fired timers are kept (their keys refuse re-scheduling meanwhile).
    pub retain_fired: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            poll_interval: Duration::from_secs(1),
            batch: 256,
            cron: Vec::new(),
            cron_zones: Default::default(),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            // 1 + 2 + … + 256 s, then 5 min apart: about 50 minutes of trying.
            max_attempts: 18,
            retain_fired: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl SchedulerConfig {
    /// Check the settings and every cron job; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch == 0 {
            return Err("scheduler.batch must be at least 1".into());
        }
        if self.poll_interval.is_zero() {
            return Err("scheduler.poll_interval must be longer than zero".into());
        }
        if self.max_attempts == 0 {
            return Err("scheduler.max_attempts must be at least 1".into());
        }
        if self.retain_fired < Duration::from_secs(3600) {
            return Err(
                "scheduler.retain_fired must be at least 1h: a cron tick or escalation scheduled again within it must still find its fired key".into(),
            );
        }
        crate::domain::cron::validate_cron_jobs(&self.cron)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://var/x.db"), "sqlite://var/x.db");
    }
}
