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
use crate::domain::string_enum;

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

pub use crate::channels::ChannelsConfig;
pub use response::*;

mod response;

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

string_enum! {
    /// What a bearer token may do. `admin` may do everything.
    Role {
        Ingest => "ingest",
        Responder => "responder",
        Approver => "approver",
        Admin => "admin",
        Viewer => "viewer",
        Site => "site",
    } what = "a role"
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
