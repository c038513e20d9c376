//! The checks of `incidentd.toml`, one function per section, in the order problems are listed.
//! Each adds `<file>: <key>: <message>` problems; `load::validate` runs them all and builds the
//! settings only when there are none.

use std::collections::HashSet;
use std::sync::Arc;

use secrecy::ExposeSecret;

use super::schema::{RawConfig, Token};

/// The problems found so far, each `<file>: <key>: <message>`.
pub(super) struct Problems {
    shown: String,
    pub list: Vec<String>,
}

impl Problems {
    pub fn new(shown: &str) -> Problems {
        Problems {
            shown: shown.to_string(),
            list: Vec::new(),
        }
    }

    pub fn add(&mut self, key: &str, msg: String) {
        self.list.push(format!("{}: {key}: {msg}", self.shown));
    }
}

/// `[server]`: the public URL, the body limit and the edge limits.
pub(super) fn server(raw: &RawConfig, p: &mut Problems) {
    if let Err(e) = reqwest::Url::parse(&raw.server.public_url) {
        p.add(
            "server.public_url",
            format!("not a URL ({e}); write e.g. \"https://incidents.example.com\""),
        );
    }
    if raw.server.max_body_bytes < 1024 {
        p.add("server.max_body_bytes", "must be at least 1024".into());
    }
    for (key, msg) in edge_problems(&raw.server) {
        p.add(key, msg);
    }
}

/// `[[auth.tokens]]`: unique names and hashes, at least one role each; the tokens as the API checks them.
pub(super) fn tokens(raw: &RawConfig, p: &mut Problems) -> Vec<Token> {
    let mut names = HashSet::new();
    let mut hashes = HashSet::new();
    let mut tokens = Vec::new();
    for (i, t) in raw.auth.tokens.iter().enumerate() {
        let at = format!("auth.tokens[{i}]");
        if !names.insert(t.name.clone()) {
            p.add(
                &format!("{at}.name"),
                format!("`{}` is used by another token", t.name),
            );
        }
        if t.roles.is_empty() {
            p.add(&format!("{at}.roles"), "give at least one role".into());
        }
        let mut sha = [0u8; 32];
        match hex::decode_to_slice(t.sha256.trim(), &mut sha) {
            Ok(()) => {
                if !hashes.insert(sha) {
                    p.add(&format!("{at}.sha256"), "the same token hash appears twice".into());
                }
                tokens.push(Token {
                    name: t.name.clone(),
                    sha256: sha,
                    roles: t.roles.clone(),
                    departments: t.departments.clone(),
                });
            }
            Err(_) => p.add(
                &format!("{at}.sha256"),
                "must be 64 hex characters, the SHA-256 of the token (`incidentd token new` makes one)".into(),
            ),
        }
    }
    tokens
}

/// `[ingest]` and `[log]`.
pub(super) fn ingest_and_log(raw: &RawConfig, p: &mut Problems) {
    if raw.ingest.max_batch_alerts == 0
        || raw.ingest.queue_capacity == 0
        || raw.ingest.max_alerts_per_request == 0
    {
        p.add(
            "ingest",
            "max_alerts_per_request, max_batch_alerts and queue_capacity must be at least 1".into(),
        );
    }
    if raw.ingest.storm_incidents > 0 && raw.ingest.storm_window.0.is_zero() {
        p.add(
            "ingest.storm_window",
            "must be longer than 0s while storm_incidents is above 0 (set storm_incidents = 0 to turn storm control off)".into(),
        );
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.log.level) {
        p.add(
            "log.level",
            format!("not a log filter ({e}); use e.g. \"info\" or \"incidentd=debug,info\""),
        );
    }
}

/// `[channels.*]`: each channel's own checks, unique webhook names, and the announcement's webhook among them.
pub(super) fn channels(raw: &RawConfig, p: &mut Problems) {
    let ch = &raw.channels;
    let sections = [
        ("channels.email", ch.email.as_ref().map(|c| c.problems())),
        (
            "channels.sms",
            ch.sms
                .as_ref()
                .map(|c| c.problems_for(crate::domain::message::ChannelKind::Sms)),
        ),
        (
            "channels.voice",
            ch.voice
                .as_ref()
                .map(|c| c.problems_for(crate::domain::message::ChannelKind::Voice)),
        ),
        (
            "channels.site_webhook",
            ch.site_webhook.as_ref().map(|c| c.problems()),
        ),
    ];
    for (section, found) in sections {
        for (key, msg) in found.unwrap_or_default() {
            p.add(&format!("{section}.{key}"), msg);
        }
    }
    let mut hook_names = HashSet::new();
    for (i, w) in ch.webhooks.iter().enumerate() {
        for (key, msg) in w.problems() {
            p.add(&format!("channels.webhooks[{i}].{key}"), msg);
        }
        if !hook_names.insert(w.name.as_str()) {
            p.add(
                &format!("channels.webhooks[{i}].name"),
                format!("`{}` is used by another webhook", w.name),
            );
        }
    }
    if let Some(hook) = &raw.announcements.webhook
        && !hook_names.contains(hook.as_str())
    {
        p.add(
            "announcements.webhook",
            format!(
                "no [[channels.webhooks]] target is named `{hook}`; configured: {}",
                if hook_names.is_empty() {
                    "none (add one with name, url and secret)".to_string()
                } else {
                    ch.webhooks
                        .iter()
                        .map(|w| w.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        );
    }
}

/// `[dispatch]`: a lease longer than twice the slowest channel's timeout, so a slow send is not claimed again while in flight.
pub(super) fn dispatch(raw: &RawConfig, p: &mut Problems) {
    let ch = &raw.channels;
    let d = &raw.dispatch;
    if d.batch_size == 0 || d.max_attempts == 0 {
        p.add(
            "dispatch",
            "batch_size and max_attempts must be at least 1".into(),
        );
    }
    if d.lease.0 < std::time::Duration::from_secs(1) {
        p.add("dispatch.lease", "must be at least 1s".into());
    }
    let timeouts = [
        ch.email
            .as_ref()
            .map(|c| ("channels.email.timeout", c.timeout.0)),
        ch.sms
            .as_ref()
            .map(|c| ("channels.sms.timeout", c.timeout.0)),
        ch.voice
            .as_ref()
            .map(|c| ("channels.voice.timeout", c.timeout.0)),
        ch.site_webhook
            .as_ref()
            .map(|c| ("channels.site_webhook.timeout", c.timeout.0)),
    ];
    let slowest = timeouts
        .into_iter()
        .flatten()
        .chain(
            ch.webhooks
                .iter()
                .map(|w| ("channels.webhooks[].timeout", w.timeout.0)),
        )
        .max_by_key(|(_, t)| *t);
    if let Some((key, t)) = slowest
        && d.lease.0 < t * 2
    {
        p.add(
            "dispatch.lease",
            format!(
                "{:?} is shorter than twice {key} ({t:?}): a slow send would be claimed and sent again while still in flight; make the lease longer",
                d.lease.0
            ),
        );
    }
    if d.backoff_base.0 > d.backoff_max.0 {
        p.add(
            "dispatch.backoff_base",
            "must not be longer than dispatch.backoff_max".into(),
        );
    }
}

/// `[render]`.
pub(super) fn render(raw: &RawConfig, p: &mut Problems) {
    if raw.render.time_zone.parse::<chrono_tz::Tz>().is_err() {
        p.add(
            "render.time_zone",
            format!(
                "`{}` is not an IANA time zone name; use one such as Asia/Shanghai, Asia/Singapore, Europe/Berlin or UTC",
                raw.render.time_zone
            ),
        );
    }
    if raw.render.sms_max_segments == 0 {
        p.add("render.sms_max_segments", "must be at least 1".into());
    }
}

/// Members' phones are kept in E.164 (read in `[organisation] default_region` when national), so paging sends what the providers take.
pub(super) fn member_phones(raw: &mut RawConfig, p: &mut Problems) {
    let region = match raw.organisation.default_region.as_deref() {
        Some(code) => match crate::domain::message::parse_region(code) {
            Ok(r) => Some(r),
            Err(e) => {
                p.add("organisation.default_region", e);
                None
            }
        },
        None => None,
    };
    // Members' phones are kept in E.164, so paging sends what the providers take.
    for (i, d) in raw.departments.iter_mut().enumerate() {
        for (j, m) in d.members.iter_mut().enumerate() {
            if let Some(ph) = &m.phone {
                match crate::domain::message::normalise_phone(ph, region) {
                    Ok(e164) => m.phone = Some(e164),
                    Err(msg) => p.add(&format!("departments[{i}].members[{j}].phone"), msg),
                }
            }
        }
    }
}

/// `[[departments]]`: ids, members who can be paged, logins and console roles; the departments tokens name.
pub(super) fn departments(raw: &RawConfig, p: &mut Problems) {
    let mut dept_ids = HashSet::new();
    let mut logins: HashSet<&str> = HashSet::new();
    for (i, d) in raw.departments.iter().enumerate() {
        let at = format!("departments[{i}]");
        if d.id.is_empty()
            || !d
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            p.add(
                &format!("{at}.id"),
                format!("`{}`: use lower-case letters, digits and _", d.id),
            );
        }
        if !dept_ids.insert(d.id.as_str()) {
            p.add(
                &format!("{at}.id"),
                format!("`{}` is used by another department", d.id),
            );
        }
        if d.members.is_empty() {
            p.add(
                &format!("{at}.members"),
                "give the department at least one member".into(),
            );
        }
        if !d.members.iter().any(|m| m.level == 1) {
            p.add(
                &format!("{at}.members"),
                "nobody has level = 1: nobody would be paged first".into(),
            );
        }
        let mut member_ids = HashSet::new();
        let logins = &mut logins;
        for (j, m) in d.members.iter().enumerate() {
            let mat = format!("{at}.members[{j}]");
            if !member_ids.insert(d.member_id(j)) {
                p.add(
                    &format!("{mat}.id"),
                    format!("`{}` is used by another member of {}", d.member_id(j), d.id),
                );
            }
            member(&mat, m, logins, p);
        }
    }
    for (i, t) in raw.auth.tokens.iter().enumerate() {
        for d in &t.departments {
            if !dept_ids.contains(d.as_str()) {
                p.add(
                    &format!("auth.tokens[{i}].departments"),
                    format!("`{d}` is not a [[departments]] id"),
                );
            }
        }
    }
}

/// One member of a department: reachable, a valid e-mail, a level, a login of their own and
/// console roles that exist.
fn member<'r>(
    mat: &str,
    m: &'r super::MemberConfig,
    logins: &mut HashSet<&'r str>,
    p: &mut Problems,
) {
    if m.email.is_none() && m.phone.is_none() {
        p.add(
            mat,
            format!(
                "{}: give an email or a phone, or nobody can page them",
                m.name
            ),
        );
    }
    if let Some(e) = &m.email
        && let Err(msg) = crate::domain::message::validate_recipient(
            crate::domain::message::ChannelKind::Email,
            e,
        )
    {
        p.add(&format!("{mat}.email"), msg);
    }
    if m.level == 0 {
        p.add(&format!("{mat}.level"), "levels start at 1".into());
    }
    if let Some(login) = &m.login {
        if login.is_empty()
            || login.len() > 64
            || !login
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            p.add(
                &format!("{mat}.login"),
                format!("`{login}`: use 1 to 64 lower-case letters, digits, `.`, `_` or `-`"),
            );
        } else if !logins.insert(login.as_str()) {
            p.add(
                &format!("{mat}.login"),
                format!("`{login}` is the login of another member: give each person their own"),
            );
        }
    }
    if let Some(roles) = &m.roles
        && let Some(r) = roles.iter().find(|r| {
            !matches!(
                r,
                crate::config::Role::Responder
                    | crate::config::Role::Approver
                    | crate::config::Role::Viewer
            )
        })
    {
        p.add(
            &format!("{mat}.roles"),
            format!(
                "`{}` is not a console role: give responder, approver or viewer",
                r.as_str()
            ),
        );
    }
}

/// `[paging]`: the ack secret, coalescing shorter than escalation, channels that reach every member at every severity and are configured; which channels cannot carry a digest.
pub(super) fn paging(raw: &mut RawConfig, p: &mut Problems) {
    let ch = &raw.channels;
    if raw
        .paging
        .ack_secret
        .as_ref()
        .is_some_and(|k| k.expose_secret().len() < 16)
    {
        p.add("paging.ack_secret", "use at least 16 characters".into());
    }
    if raw.paging.coalesce.0 > std::time::Duration::from_secs(3600) {
        p.add(
            "paging.coalesce",
            "a held page waits this long before its digest goes out: use at most 1h (2m is a good start), or 0s for no coalescing".into(),
        );
    }
    if !raw.paging.coalesce.0.is_zero() {
        for d in raw
            .departments
            .iter()
            .filter(|d| d.escalate_after.0 <= raw.paging.coalesce.0)
        {
            p.add(
                "paging.coalesce",
                format!(
                    "{} is not shorter than departments.{}.escalate_after ({}): a page held for its digest could escalate before it is even sent; make coalesce shorter",
                    raw.paging.coalesce, d.id, d.escalate_after
                ),
            );
        }
    }
    // Template-only providers cannot send a digest without an approved template for it.
    raw.paging.no_digest = super::schema::channels_without_digest(&raw.channels);
    // Paging matters once there is someone to page.
    let paging = if raw.departments.is_empty() {
        Default::default()
    } else {
        raw.paging.channels.clone()
    };
    if !raw.departments.is_empty() {
        for sev in crate::domain::incident::Severity::ALL {
            match raw.paging.channels.get(&sev).map(Vec::as_slice) {
                None | Some([]) => p.add(
                    &format!("paging.channels.{sev}"),
                    format!(
                        "say which channels page responders at {sev}, e.g. {sev} = [\"sms\", \"email\"]"
                    ),
                ),
                Some(chans) => {
                    for d in &raw.departments {
                        for m in &d.members {
                            let reachable = chans.iter().any(|c| match c {
                                crate::domain::message::ChannelKind::Email => m.email.is_some(),
                                crate::domain::message::ChannelKind::Sms
                                | crate::domain::message::ChannelKind::Voice => m.phone.is_some(),
                                _ => false,
                            });
                            if !reachable {
                                p.add(
                                    &format!("departments.{}.members", d.id),
                                    format!(
                                        "{} cannot be paged at {sev}: no address for any of [{}]; add an email or a phone",
                                        m.name,
                                        chans
                                            .iter()
                                            .map(|c| c.as_str())
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    for (sev, chans) in &paging {
        for c in chans {
            let configured = match c {
                crate::domain::message::ChannelKind::Email => ch.email.is_some(),
                crate::domain::message::ChannelKind::Sms => ch.sms.is_some(),
                crate::domain::message::ChannelKind::Voice => ch.voice.is_some(),
                _ => false,
            };
            if !configured {
                p.add(
                    &format!("paging.channels.{sev}"),
                    format!(
                        "`{c}` cannot page responders here: use email, sms or voice, each with its [channels.{c}] section"
                    ),
                );
            }
        }
    }
}

/// `[[drills.schedule]]` and `[scheduler]`: time zones, cron lines, one schedule per scenario.
pub(super) fn schedules(raw: &RawConfig, p: &mut Problems) {
    for (i, d) in raw.drills.schedule.iter().enumerate() {
        if d.time_zone.parse::<chrono_tz::Tz>().is_err() {
            p.add(
                &format!("drills.schedule[{i}].time_zone"),
                format!(
                    "`{}` is not an IANA time zone; use e.g. `Asia/Shanghai` or `UTC`",
                    d.time_zone
                ),
            );
        }
        if let Err(e) = crate::domain::cron::validate_cron(&d.cron) {
            p.add(&format!("drills.schedule[{i}].cron"), e);
        }
    }
    if raw.drills.schedule.iter().any(|d| {
        !raw.drills
            .schedule
            .iter()
            .all(|o| std::ptr::eq(o, d) || o.scenario != d.scenario)
    }) {
        p.add("drills.schedule", "a scenario is scheduled twice: give it one [[drills.schedule]] with one cron expression".into());
    }
    if let Err(e) = raw.scheduler.to_config().validate() {
        p.add("scheduler", e);
    }
}

/// `[audit]`, `[subjects]` and `[notices]`.
pub(super) fn audit_subjects_notices(raw: &RawConfig, p: &mut Problems) {
    if raw.audit.head_every.0 < std::time::Duration::from_secs(1) {
        p.add("audit.head_every", "give at least 1s, e.g. \"15m\"".into());
    }
    if !(1..=10_000).contains(&raw.subjects.import_batch) {
        p.add("subjects.import_batch", "give 1 to 10000 rows".into());
    }
    if !(0.0..=1.0).contains(&raw.notices.announce_when_reachable_below) {
        p.add(
            "notices.announce_when_reachable_below",
            "give a share from 0 (off) to 1, e.g. 0.5".into(),
        );
    }
    if !(1..=50_000).contains(&raw.notices.batch) {
        p.add("notices.batch", "give 1 to 50000 subjects".into());
    }
    if !crate::domain::notice::is_notice(&raw.notices.template) {
        p.add(
            "notices.template",
            format!(
                "`{}` is not a notice template: campaigns send only notices to individuals (notice/…, e.g. notice/pi_leak)",
                raw.notices.template
            ),
        );
    }
    if let Some(c) = raw
        .notices
        .approval_not_required
        .iter()
        .find(|c| c.is_personal_information())
    {
        p.add(
            "notices.approval_not_required",
            format!("`{c}` is a personal-information category: its notices always need approval"),
        );
    }
}

/// `[subjects] key` and `[audit] key`: each parsed, when given.
pub(super) fn keys(
    raw: &RawConfig,
    p: &mut Problems,
) -> (
    Option<Arc<crate::domain::keyring::KeyRing>>,
    Option<Arc<crate::domain::audit::AuditKey>>,
) {
    let subject_keys = match &raw.subjects.key {
        Some(k) => match crate::domain::keyring::KeyRing::parse(k.expose_secret()) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                p.add("subjects.key", e);
                None
            }
        },
        None => None,
    };
    let audit_key = match &raw.audit.key {
        Some(k) => match crate::domain::audit::AuditKey::parse(k.expose_secret()) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                p.add("audit.key", e);
                None
            }
        },
        None => None,
    };
    (subject_keys, audit_key)
}

/// `[[heartbeats]]`, compiled.
pub(super) fn heartbeats(
    raw: &RawConfig,
    p: &mut Problems,
) -> Arc<crate::domain::heartbeat::Heartbeats> {
    match crate::domain::heartbeat::Heartbeats::compile(&raw.heartbeats) {
        Ok(h) => Arc::new(h),
        Err(found) => {
            for (key, msg) in found {
                p.add(&key, msg);
            }
            Default::default()
        }
    }
}

/// The example configuration's public trial secrets are refused on an address other hosts can
/// reach (unless `server.allow_trial_secrets`); the ones in use, for the banner.
pub(super) fn trial_secrets(raw: &RawConfig, tokens: &[Token], p: &mut Problems) -> Vec<String> {
    let trial_secrets = super::trial::found(raw, tokens);
    if !trial_secrets.is_empty()
        && !raw.server.listen.ip().is_loopback()
        && !raw.server.allow_trial_secrets
    {
        p.add(
            "server.listen",
            format!(
                "{} is reachable from other hosts, but the configuration still uses the public trial secrets of the example configuration: {}. Anyone who read the README can use them: make your own (`incidentd token new`, an ack_secret of your own, `incidentd subjects keygen`, `incidentd audit keygen`), listen on 127.0.0.1, or set server.allow_trial_secrets = true for a throw-away trial",
                raw.server.listen,
                trial_secrets.join(", ")
            ),
        );
    }
    trial_secrets
}

/// `[server]` edge limits: timeouts that end connections must be neither zero (every
/// connection would be cut at once) nor so long that they protect nothing.
pub(super) fn edge_problems(s: &super::schema::ServerConfig) -> Vec<(&'static str, String)> {
    use std::time::Duration;
    let mut out = Vec::new();
    let bounded = [
        (
            "server.header_read_timeout",
            s.header_read_timeout.0,
            Duration::from_secs(300),
            "10s",
        ),
        (
            "server.idle_timeout",
            s.idle_timeout.0,
            Duration::from_secs(3600),
            "60s",
        ),
    ];
    for (key, value, max, hint) in bounded {
        if value < Duration::from_millis(100) || value > max {
            out.push((
                key,
                format!(
                    "give 100ms to {}: a client that keeps a connection longer without finishing a request is cut off (e.g. {hint})",
                    crate::domain::duration::HumanDuration(max)
                ),
            ));
        }
    }
    if !(1..=1_000_000).contains(&s.max_connections) {
        out.push((
            "server.max_connections",
            "give 1 to 1000000 connections (the default, 1024, suits most sites; keep it below the process's open-file limit)".into(),
        ));
    }
    out
}

/// `[reports]` and `[[regulators]]`: approvers are departments; each regulator has a unique id,
/// a name, a well-formed mailbox (with [channels.email]) and/or a configured webhook target.
pub(super) fn regulator_problems(raw: &RawConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let departments: Vec<&str> = raw.departments.iter().map(|d| d.id.as_str()).collect();
    if raw.reports.approvers.is_empty() {
        out.push((
            "reports.approvers".into(),
            "name at least one department that approves regulator reports, e.g. [\"government_relations\", \"legal\"]".into(),
        ));
    }
    if raw.announcements.approvers.is_empty() {
        out.push((
            "announcements.approvers".into(),
            "name at least one department that approves the public announcement, e.g. [\"public_relations\", \"legal\"]".into(),
        ));
    }
    for a in &raw.announcements.approvers {
        if !departments.is_empty() && !departments.contains(&a.as_str()) {
            out.push((
                "announcements.approvers".into(),
                format!(
                    "`{a}` is not a configured department; use one of {}",
                    departments.join(", ")
                ),
            ));
        }
    }
    for a in &raw.reports.approvers {
        if !departments.is_empty() && !departments.contains(&a.as_str()) {
            out.push((
                "reports.approvers".into(),
                format!(
                    "`{a}` is not a configured department; use one of {}",
                    departments.join(", ")
                ),
            ));
        }
    }
    let hooks: Vec<&str> = raw
        .channels
        .webhooks
        .iter()
        .map(|w| w.name.as_str())
        .collect();
    let mut ids = HashSet::new();
    for (i, r) in raw.regulators.iter().enumerate() {
        let at = |k: &str| format!("regulators[{i}].{k}");
        if r.id.is_empty()
            || !r
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            out.push((at("id"), format!("`{}`: use the pack's recipient id ([recipients.<id>] in config/jurisdictions/*.toml), e.g. cac_provincial or pdpc", r.id)));
        }
        if !ids.insert(r.id.as_str()) {
            out.push((
                at("id"),
                format!(
                    "`{}` is configured twice; keep one entry per regulator",
                    r.id
                ),
            ));
        }
        if r.name.trim().is_empty() {
            out.push((at("name"), "name the regulator".into()));
        }
        if let Some(e) = &r.email {
            if let Err(err) = e.parse::<lettre::message::Mailbox>() {
                out.push((
                    at("email"),
                    format!(
                        "`{e}` is not a mailbox ({err}); write e.g. \"report@cac.example.gov.cn\""
                    ),
                ));
            }
            if raw.channels.email.is_none() {
                out.push((
                    at("email"),
                    "reports by e-mail need [channels.email]".into(),
                ));
            }
        }
        if let Some(h) = &r.webhook
            && !hooks.contains(&h.as_str())
        {
            out.push((
                at("webhook"),
                format!(
                    "no [[channels.webhooks]] target is named `{h}`; configured: {}",
                    if hooks.is_empty() {
                        "none (add one with name, url and secret)".to_string()
                    } else {
                        hooks.join(", ")
                    }
                ),
            ));
        }
    }
    out
}
