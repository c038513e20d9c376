//! The response's sections of `incidentd.toml`: departments and paging, the scheduler, notices
//! and subjects, the announcement, reports and regulators, the console, the audit, drills.

use super::*;

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
