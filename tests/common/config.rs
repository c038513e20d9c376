//! Pieces of the configurations the stories write (TOML text, appended to `config_text`'s
//! base): the shipped files' paths, the phone gateways at a local sink, approver tokens, and the
//! six departments with their members — written once here, so a story's config shows only what
//! it is about.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::DEPTS;
use super::sink::Sink;

/// The repository: the shipped configuration, templates and packs are found from here.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file or folder of the repository, e.g. `shipped("config/playbooks")`.
pub fn shipped(relative: &str) -> PathBuf {
    repo().join(relative)
}

/// The hex SHA-256 of a token, as `[[auth.tokens]] sha256` takes it.
pub fn token_sha(token: &str) -> String {
    hex::encode(incidentd::api::token_hash(token))
}

/// `[paths]`: the shipped templates and playbooks, then `more` (`(key, path)`; a `templates` or
/// `playbooks` entry replaces the shipped one).
pub fn paths(more: &[(&str, &Path)]) -> String {
    let mut c = String::from("\n[paths]\n");
    for (key, default) in [
        ("templates", "templates"),
        ("playbooks", "config/playbooks"),
    ] {
        if !more.iter().any(|(k, _)| *k == key) {
            let _ = writeln!(c, "{key} = \"{}\"", shipped(default).display());
        }
    }
    for (key, path) in more {
        let _ = writeln!(c, "{key} = \"{}\"", path.display());
    }
    c
}

/// The `generic_http` gateway of each channel named (`sms`, `voice`) at the sink's `/<channel>`.
pub fn phone_gateways(sink: &Sink, channels: &[&str]) -> String {
    channels
        .iter()
        .map(|ch| {
            format!(
                "\n[channels.{ch}]\nprovider = \"generic_http\"\nbase_url = \"{}\"\ntimeout = \"2s\"\n",
                sink.url(&format!("/{ch}"))
            )
        })
        .collect()
}

/// `[paging.channels]`: every severity paged on `channels` (a TOML list, e.g. `["sms"]`).
pub fn page_every_severity_by(channels: &str) -> String {
    format!(
        "\n[paging.channels]\nS1 = {channels}\nS2 = {channels}\nS3 = {channels}\nS4 = {channels}\n"
    )
}

/// A token that approves (and responds) for one department.
pub fn approver(name: &str, token: &str, department: &str) -> String {
    format!(
        "\n[[auth.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nroles = [\"approver\", \"responder\"]\ndepartments = [\"{department}\"]\n",
        token_sha(token)
    )
}

/// The phone of department `dept`'s level-`level` member (departments numbered from 1, in the
/// order of [`DEPTS`](super::DEPTS)): `+861390000{dept:02}0{level}`.
pub fn phone(dept: usize, level: usize) -> String {
    format!("+861390000{dept:02}0{level}")
}

/// A member of a department in a test configuration.
pub struct Member {
    name: String,
    level: usize,
    phone: Option<String>,
    email: Option<String>,
    lead: bool,
    locale: Option<&'static str>,
}

impl Member {
    pub fn new(name: impl Into<String>, level: usize) -> Member {
        Member {
            name: name.into(),
            level,
            phone: None,
            email: None,
            lead: false,
            locale: None,
        }
    }

    /// Department `n`'s (from 1) level-1 member, "<dept> on-call", on [`phone`]`(n, 1)`.
    pub fn on_call(n: usize, dept: &str) -> Member {
        Member::new(format!("{dept} on-call"), 1).phone(phone(n, 1))
    }

    /// Department `n`'s level-2 member and lead, "<dept> head", on [`phone`]`(n, 2)`.
    pub fn head(n: usize, dept: &str) -> Member {
        Member::new(format!("{dept} head"), 2)
            .phone(phone(n, 2))
            .lead()
    }

    pub fn phone(mut self, phone: impl Into<String>) -> Member {
        self.phone = Some(phone.into());
        self
    }

    pub fn no_phone(mut self) -> Member {
        self.phone = None;
        self
    }

    pub fn email(mut self, email: impl Into<String>) -> Member {
        self.email = Some(email.into());
        self
    }

    /// With the e-mail address `<dept>-oncall@example.com`.
    pub fn oncall_email(self, dept: &str) -> Member {
        self.email(format!("{dept}-oncall@example.com"))
    }

    pub fn lead(mut self) -> Member {
        self.lead = true;
        self
    }

    pub fn locale(mut self, locale: &'static str) -> Member {
        self.locale = Some(locale);
        self
    }
}

/// One `[[departments]]` entry with its members.
pub fn department(id: &str, escalate_after: &str, members: &[Member]) -> String {
    let mut c = format!(
        "\n[[departments]]\nid = \"{id}\"\nname = \"{id}\"\nescalate_after = \"{escalate_after}\"\n"
    );
    for m in members {
        let _ = writeln!(c, "[[departments.members]]\nname = \"{}\"", m.name);
        if let Some(p) = &m.phone {
            let _ = writeln!(c, "phone = \"{p}\"");
        }
        if let Some(e) = &m.email {
            let _ = writeln!(c, "email = \"{e}\"");
        }
        let _ = writeln!(c, "level = {}\nlead = {}", m.level, m.lead);
        if let Some(l) = m.locale {
            let _ = writeln!(c, "locale = \"{l}\"");
        }
    }
    c
}

/// The six departments of the shipped playbooks, each escalating after `escalate_after`, with
/// the members `members(n, dept)` gives (`n` counts from 1).
pub fn departments(escalate_after: &str, members: impl Fn(usize, &str) -> Vec<Member>) -> String {
    DEPTS
        .iter()
        .enumerate()
        .map(|(i, d)| department(d, escalate_after, &members(i + 1, d)))
        .collect()
}
