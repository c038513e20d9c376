//! Reading the configuration: file → environment overrides → secret files → typed → validated.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::checks::{self, Problems};
use super::schema::{RawConfig, Settings};
use crate::domain::classify::{Rules, RulesFile};
use crate::domain::source::{deserialize, parse_table};

const ENV_PREFIX: &str = "INCIDENTD__";

/// Everything wrong with a configuration, one problem per line, each naming file, key and problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn one(p: String) -> Self {
        ConfigError { problems: vec![p] }
    }
}

/// Load and validate the configuration at `path`, with overrides from the process environment.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    load_with_env(path, std::env::vars())
}

/// As [`load`], with the environment given explicitly (tests, and no global state).
pub fn load_with_env(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let shown = path.display().to_string();
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::one(format!("{shown}: cannot read the configuration: {e}")))?;
    let mut table = parse_table(&shown, &text).map_err(ConfigError::one)?;
    let from_env = apply_env(&mut table, env).map_err(|p| ConfigError {
        problems: p.into_iter().map(|p| format!("{shown}: {p}")).collect(),
    })?;
    resolve_secret_files(&mut table, &dir, "").map_err(|p| ConfigError {
        problems: p.into_iter().map(|p| format!("{shown}: {p}")).collect(),
    })?;
    let raw: RawConfig = deserialize(toml::Value::Table(table)).map_err(|(key, msg)| {
        let origin = from_env
            .iter()
            .find(|(p, _)| key.starts_with(p.as_str()))
            .map(|(_, var)| format!(" (value from environment variable {var})"))
            .unwrap_or_default();
        ConfigError::one(format!("{shown}: {key}: {msg}{origin}"))
    })?;
    validate(path, &dir, raw)
}

/// Load and compile a classification rules file.
pub fn load_rules(path: &Path) -> Result<Rules, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::one(format!(
            "{shown}: cannot read the classification rules: {e}"
        ))
    })?;
    let table = parse_table(&shown, &text).map_err(ConfigError::one)?;
    let file: RulesFile = deserialize(toml::Value::Table(table))
        .map_err(|(key, msg)| ConfigError::one(format!("{shown}: {key}: {msg}")))?;
    Rules::compile(&file).map_err(|errs| ConfigError {
        problems: errs.into_iter().map(|e| format!("{shown}: {e}")).collect(),
    })
}

/// `INCIDENTD__SERVER__LISTEN=0.0.0.0:8600` sets `server.listen`. Values are read as TOML when
/// they parse (`20`, `true`, `["CN","SG"]`), otherwise as strings. Returns (key, variable) pairs.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, Vec<String>> {
    let mut set = Vec::new();
    let mut problems = Vec::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let path: Vec<String> = var[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            problems.push(format!(
                "environment variable {var}: write levels as INCIDENTD__SECTION__KEY"
            ));
            continue;
        }
        match set_path(table, &path, env_value(&raw)) {
            Ok(()) => set.push((path.join("."), var)),
            Err(p) => problems.push(format!("environment variable {var}: {p}")),
        }
    }
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(problems)
    }
}

fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = table;
    for (i, seg) in parents.iter().enumerate() {
        let next_is_index = path[i + 1].parse::<usize>().is_ok();
        let entry = cur.entry(seg.clone()).or_insert_with(|| {
            if next_is_index {
                toml::Value::Array(Vec::new())
            } else {
                toml::Value::Table(toml::Table::new())
            }
        });
        cur = match entry {
            toml::Value::Table(t) => t,
            toml::Value::Array(items) => {
                let idx: usize = path[i + 1]
                    .parse()
                    .map_err(|_| format!("`{seg}` is a list: address its items by number"))?;
                if idx == items.len() {
                    items.push(toml::Value::Table(toml::Table::new()));
                }
                // the index segment is consumed here; descend into the item and skip it
                return match items.get_mut(idx) {
                    Some(toml::Value::Table(t)) => set_path(t, &path[i + 2..], value),
                    Some(_) => Err(format!("`{seg}[{idx}]` is not a table")),
                    None => Err(format!("`{seg}` has {} items; no item {idx}", items.len())),
                };
            }
            _ => return Err(format!("`{seg}` is a value, not a section")),
        };
    }
    cur.insert(last.clone(), value);
    Ok(())
}

/// Replace every `<key>_file = "…"` with `<key> = <contents>`. A bare name is looked up in
/// `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`) first, then beside the config file.
fn resolve_secret_files(
    table: &mut toml::Table,
    dir: &Path,
    prefix: &str,
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        let at = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let Some(base) = key.strip_suffix("_file") {
            let Some(toml::Value::String(file)) = table.get(&key).cloned() else {
                continue;
            };
            if table.contains_key(base) {
                problems.push(format!("{at}: give either `{base}` or `{key}`, not both"));
                continue;
            }
            match read_secret(&file, dir) {
                Ok(s) => {
                    table.remove(&key);
                    table.insert(base.to_string(), toml::Value::String(s));
                }
                Err(e) => problems.push(format!("{at}: {e}")),
            }
            continue;
        }
        match table.get_mut(&key) {
            Some(toml::Value::Table(t)) => {
                if let Err(mut p) = resolve_secret_files(t, dir, &at) {
                    problems.append(&mut p);
                }
            }
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    if let toml::Value::Table(t) = item
                        && let Err(mut p) = resolve_secret_files(t, dir, &format!("{at}[{i}]"))
                    {
                        problems.append(&mut p);
                    }
                }
            }
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn read_secret(file: &str, dir: &Path) -> Result<String, String> {
    let p = Path::new(file);
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| PathBuf::from(d).join(file))
        .filter(|c| p.components().count() == 1 && c.is_file());
    let path = match credential {
        Some(c) => c,
        None if p.is_absolute() => p.to_path_buf(),
        None => dir.join(p),
    };
    let s = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

fn validate(path: &Path, dir: &Path, mut raw: RawConfig) -> Result<Settings, ConfigError> {
    let shown = path.display().to_string();
    let mut p = Problems::new(&shown);

    checks::server(&raw, &mut p);
    let store_url = match resolve_store_url(raw.store.url.expose_secret(), dir) {
        Ok(u) => u,
        Err(e) => {
            p.add("store.url", e);
            String::new()
        }
    };
    if raw.store.max_connections == 0 {
        p.add("store.max_connections", "must be at least 1".into());
    }
    let tokens = checks::tokens(&raw, &mut p);
    checks::ingest_and_log(&raw, &mut p);
    checks::channels(&raw, &mut p);
    checks::dispatch(&raw, &mut p);
    checks::render(&raw, &mut p);
    checks::member_phones(&mut raw, &mut p);
    checks::departments(&raw, &mut p);
    checks::paging(&mut raw, &mut p);
    checks::schedules(&raw, &mut p);
    let (subject_keys, audit_key) = checks::keys(&raw, &mut p);
    checks::audit_subjects_notices(&raw, &mut p);
    for (key, msg) in checks::regulator_problems(&raw) {
        p.add(&key, msg);
    }
    let heartbeats = checks::heartbeats(&raw, &mut p);
    let trial_secrets = checks::trial_secrets(&raw, &tokens, &mut p);
    let templates_path = dir.join(&raw.paths.templates);
    let playbooks_path = dir.join(&raw.paths.playbooks);
    let jurisdictions_path = match &raw.paths.jurisdictions {
        Some(p) => Some(dir.join(p)),
        None => Some(dir.join("jurisdictions")).filter(|p| p.is_dir()),
    };
    let drills_path = match &raw.paths.drills {
        Some(p) => Some(dir.join(p)),
        None => Some(dir.join("drills")).filter(|p| p.is_dir()),
    };
    let classification_path = dir.join(&raw.paths.classification);
    let rules = match load_rules(&classification_path) {
        Ok(r) => Some(r),
        Err(e) => {
            p.list.extend(e.problems);
            None
        }
    };
    match rules {
        Some(rules) if p.list.is_empty() => Ok(Settings {
            config_path: path.to_path_buf(),
            server: raw.server,
            store_url: SecretString::from(store_url),
            store: raw.store,
            tokens,
            classification_path,
            rules: Arc::new(rules),
            organisation: raw.organisation,
            ingest: raw.ingest,
            log: raw.log,
            channels: raw.channels,
            dispatch: raw.dispatch,
            render: raw.render,
            templates_path,
            playbooks_path,
            jurisdictions_path,
            drills_path,
            drills: raw.drills,
            departments: raw.departments,
            paging: raw.paging,
            scheduler: raw.scheduler,
            subjects: raw.subjects,
            subject_keys,
            audit_key,
            audit: raw.audit,
            console: raw.console,
            notices: raw.notices,
            announcements: raw.announcements,
            reports: raw.reports,
            regulators: raw.regulators,
            heartbeats,
            trial_secrets,
        }),
        _ => Err(ConfigError { problems: p.list }),
    }
}

/// Regulators in `[[regulators]]` that no jurisdiction pack names as a recipient: a typo would
/// leave the real regulator without an address. `incidentd check` reports them.
pub fn unknown_regulators(
    regulators: &[super::RegulatorConfig],
    packs: &crate::domain::regulation::Packs,
) -> Vec<String> {
    regulators
        .iter()
        .enumerate()
        .filter(|(_, r)| !packs.all().iter().any(|p| p.recipients.contains_key(&r.id)))
        .map(|(i, r)| {
            let known: Vec<String> = packs
                .all()
                .iter()
                .flat_map(|p| p.recipients.keys().map(move |k| format!("{k} ({})", p.code)))
                .collect();
            format!(
                "regulators[{i}].id: `{}` is not a recipient of any jurisdiction pack; use one of {}",
                r.id,
                known.join(", ")
            )
        })
        .collect()
}

/// SQLite paths are relative to the config file's folder; PostgreSQL URLs pass through.
fn resolve_store_url(url: &str, dir: &Path) -> Result<String, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_string());
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(format!(
            "`{}` is not a supported store URL; use sqlite://path/to/incidentd.db or postgres://user@host/db",
            super::schema::redact_url(url)
        ));
    };
    let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
    if file.is_empty() || file.starts_with(':') {
        return Err("give the SQLite database a file path, e.g. sqlite://var/incidentd.db (in-memory databases lose everything)".into());
    }
    let path = Path::new(file);
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    };
    let mut out = format!("sqlite://{}", abs.display());
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
[[rules]]
name = "leak"
category = "pi_leak"
text = "leak"
"#;

    const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8600"

[store]
url = "sqlite://var/test.db"

[[auth.tokens]]
name = "am"
sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
roles = ["ingest"]

[organisation]
name = "Example Co."
operator_type = "other"
jurisdictions = ["CN"]
contact = "privacy@example.com"
"#;

    fn write(dir: &Path, config: &str) -> PathBuf {
        std::fs::write(dir.join("classification.toml"), RULES).unwrap();
        let p = dir.join("incidentd.toml");
        std::fs::write(&p, config).unwrap();
        p
    }

    fn problems(config: &str, env: &[(&str, &str)]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), config);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        load_with_env(&p, env).unwrap_err().to_string()
    }

    #[test]
    fn loads_and_resolves_relative_sqlite_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), CONFIG);
        let s = load_with_env(&p, []).unwrap();
        assert_eq!(
            s.store_url.expose_secret(),
            &format!("sqlite://{}/var/test.db", dir.path().display())
        );
        assert_eq!(s.tokens.len(), 1);
        assert_eq!(s.rules.len(), 1);
    }

    #[test]
    fn members_phones_are_read_in_the_default_region() {
        let team = "\n[[departments]]\nid = \"soc\"\nname = \"SOC\"\n\
                    [[departments.members]]\nname = \"On call\"\nphone = \"138 0013 8000\"\nlevel = 1\n";
        let cn = CONFIG.replace(
            "contact = \"privacy@example.com\"",
            "contact = \"privacy@example.com\"\ndefault_region = \"cn\"",
        );
        // (The rest of this small configuration has problems of its own: paging channels.)
        let e = problems(&format!("{cn}{team}"), &[]);
        assert!(!e.contains(".phone"), "{e}");
        // Without a region the number cannot be placed; a region must have a numbering plan.
        let e = problems(&format!("{CONFIG}{team}"), &[]);
        assert!(
            e.contains("departments[0].members[0].phone: `1380***8000` has no country code"),
            "{e}"
        );
        let e = problems(&cn.replace("\"cn\"", "\"China\""), &[]);
        assert!(
            e.contains("organisation.default_region: `China` is not a country code"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = problems(
            &CONFIG.replace("[server]", "[server]\nlisten_port = 1"),
            &[],
        );
        assert!(e.contains("incidentd.toml: server.listen_port: unknown field `listen_port`, expected one of `listen`"), "{e}");
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let e = problems(&CONFIG.replace("127.0.0.1:0", "localhost"), &[]);
        assert!(e.contains("server.listen: invalid socket address"), "{e}");
        let e = problems(
            &CONFIG.replace("roles = [\"ingest\"]", "roles = [\"root\"]"),
            &[],
        );
        assert!(
            e.contains("auth.tokens[0].roles[0]: unknown variant `root`"),
            "{e}"
        );
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = problems(&CONFIG.replace("[store]", "[store"), &[]);
        assert!(e.contains("incidentd.toml:6:7: unclosed table"), "{e}");
    }

    #[test]
    fn environment_overrides_and_is_blamed() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), CONFIG);
        let env = [
            (
                "INCIDENTD__SERVER__LISTEN".to_string(),
                "127.0.0.1:9999".to_string(),
            ),
            (
                "INCIDENTD__STORE__MAX_CONNECTIONS".to_string(),
                "3".to_string(),
            ),
            (
                "INCIDENTD__AUTH__TOKENS__0__NAME".to_string(),
                "renamed".to_string(),
            ),
        ];
        let s = load_with_env(&p, env).unwrap();
        assert_eq!(s.server.listen.port(), 9999);
        assert_eq!(s.store.max_connections, 3);
        assert_eq!(s.tokens[0].name, "renamed");
        let e = problems(CONFIG, &[("INCIDENTD__STORE__MAX_CONNECTIONS", "many")]);
        assert!(
            e.contains("(value from environment variable INCIDENTD__STORE__MAX_CONNECTIONS)"),
            "{e}"
        );
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db_url"), "postgres://u:hunter2@h/db\n").unwrap();
        let p = write(
            dir.path(),
            &CONFIG.replace("url = \"sqlite://var/test.db\"", "url_file = \"db_url\""),
        );
        let s = load_with_env(&p, []).unwrap();
        assert_eq!(s.store_url.expose_secret(), "postgres://u:hunter2@h/db");
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let e = problems(
            &CONFIG.replace("url = ", "url_file = \"missing\"\nurl = "),
            &[],
        );
        assert!(
            e.contains("store.url_file: give either `url` or `url_file`"),
            "{e}"
        );
    }

    #[test]
    fn bad_token_hash_and_rules_are_reported_together() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), &CONFIG.replace("9f86d0", "zz86d0"));
        std::fs::write(
            dir.path().join("classification.toml"),
            "[[rules]]\nname='x'\ncategory='pi_leak'\ntext='('\n",
        )
        .unwrap();
        let e = load_with_env(&p, []).unwrap_err();
        assert_eq!(e.problems.len(), 2, "{e}");
        assert!(
            e.problems[0].contains("auth.tokens[0].sha256: must be 64 hex"),
            "{e}"
        );
        assert!(
            e.problems[1]
                .contains("classification.toml: rules[0] (x).text: invalid regular expression"),
            "{e}"
        );
    }

    #[test]
    fn store_url_must_be_supported() {
        let e = problems(&CONFIG.replace("sqlite://var/test.db", "mysql://x"), &[]);
        assert!(
            e.contains("store.url: `mysql://x` is not a supported store URL"),
            "{e}"
        );
    }

    #[test]
    fn channel_and_dispatch_sections_are_checked_with_their_keys() {
        let e = problems(
            &format!(
                "{CONFIG}\n[dispatch]\nlease = \"5s\"\nmax_attempts = 0\n\
                 [render]\ntime_zone = \"Mars/Olympus\"\n\
                 [channels.sms]\nprovider = \"aliyun\"\n\
                 [channels.site_webhook]\nurl = \"ftp://x\"\nsecret = \"tiny-s3cret\"\n\
                 [[channels.webhooks]]\nname = \"chat ops\"\nurl = \"https://x.example\"\nsecret = \"0123456789abcdef\"\n"
            ),
            &[],
        );
        for needle in [
            "dispatch: batch_size and max_attempts must be at least 1",
            "dispatch.lease: 5s is shorter than twice",
            "render.time_zone: `Mars/Olympus` is not an IANA time zone name",
            "channels.sms.key_id",
            "channels.sms.sign_name",
            "channels.site_webhook.url: `ftp` is not http or https",
            "channels.site_webhook.secret: use at least 16 characters",
            "channels.webhooks[0].name",
        ] {
            assert!(e.contains(needle), "`{needle}` missing from:\n{e}");
        }
        assert!(!e.contains("tiny-s3cret"), "secrets are never printed: {e}");
    }

    #[test]
    fn paging_must_cover_every_severity_and_reach_every_member() {
        let e = problems(
            &format!(
                "{CONFIG}\n[channels.sms]\nprovider = \"generic_http\"\nbase_url = \"http://127.0.0.1:9/\"\n\
                 [paging.channels]\nS1 = [\"sms\"]\nS2 = [\"sms\"]\nS3 = [\"sms\"]\n\
                 [[departments]]\nid = \"legal\"\nname = \"Legal\"\n\
                 [[departments.members]]\nname = \"Mail-only counsel\"\nemail = \"gc@example.com\"\n"
            ),
            &[],
        );
        assert!(
            e.contains("paging.channels.S4: say which channels page responders at S4"),
            "{e}"
        );
        assert!(
            e.contains("departments.legal.members: Mail-only counsel cannot be paged at S1: no address for any of [sms]"),
            "{e}"
        );
    }

    #[test]
    fn heartbeats_are_checked_with_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ok = format!(
            "{CONFIG}\n[[heartbeats]]\nname = \"alertmanager_watchdog\"\ninterval = \"1m\"\ngrace = \"4m\"\n\
             alert = {{ source = \"alertmanager\", labels = {{ alertname = \"^Watchdog$\" }} }}\n"
        );
        let s = load_with_env(&write(dir.path(), &ok), []).unwrap();
        assert_eq!(s.heartbeats.names(), vec!["alertmanager_watchdog"]);
        let e = problems(
            &format!(
                "{CONFIG}\n[[heartbeats]]\nname = \"w\"\ninterval = \"soon\"\ngrace = \"1m\"\n"
            ),
            &[],
        );
        assert!(
            e.contains("heartbeats[0].interval: `soon` is not a duration"),
            "{e}"
        );
        let e = problems(
            &format!(
                "{CONFIG}\n[[heartbeats]]\nname = \"w\"\ninterval = \"0s\"\ngrace = \"1m\"\nalert = {{ labels = {{ alertname = \"(\" }} }}\n"
            ),
            &[],
        );
        assert!(
            e.contains("incidentd.toml: heartbeats[0].interval: 0s is too short"),
            "{e}"
        );
        assert!(
            e.contains("heartbeats[0].alert.labels.alertname: invalid regular expression"),
            "{e}"
        );
        let e = problems(
            &format!("{CONFIG}\n[[heartbeats]]\nname = \"w\"\ninterval = \"1m\"\n"),
            &[],
        );
        assert!(e.contains("heartbeats[0]: missing field `grace`"), "{e}");
    }

    #[test]
    fn coalescing_is_bounded_and_shorter_than_escalation() {
        let e = problems(&format!("{CONFIG}\n[paging]\ncoalesce = \"2h\"\n"), &[]);
        assert!(
            e.contains("paging.coalesce: a held page waits this long"),
            "{e}"
        );
        let e = problems(
            &format!(
                "{CONFIG}\n[paging]\ncoalesce = \"10m\"\n\
                 [[departments]]\nid = \"legal\"\nname = \"Legal\"\nescalate_after = \"5m\"\n\
                 [[departments.members]]\nname = \"Counsel\"\nemail = \"gc@example.com\"\n"
            ),
            &[],
        );
        assert!(
            e.contains(
                "paging.coalesce: 10m is not shorter than departments.legal.escalate_after (5m)"
            ),
            "{e}"
        );
    }

    #[test]
    fn announcement_approvers_are_departments() {
        let legal = "[[departments]]\nid = \"legal\"\nname = \"Legal\"\n\
                     [[departments.members]]\nname = \"Counsel\"\nemail = \"gc@example.com\"\n";
        // The default, Public Relations and Legal, names a department that is not configured.
        let e = problems(&format!("{CONFIG}\n{legal}"), &[]);
        assert!(
            e.contains("announcements.approvers: `public_relations` is not a configured department; use one of legal"),
            "{e}"
        );
        let e = problems(
            &format!("{CONFIG}\n[announcements]\napprovers = []\n{legal}"),
            &[],
        );
        assert!(
            e.contains("announcements.approvers: name at least one department"),
            "{e}"
        );
        let e = problems(
            &format!("{CONFIG}\n[announcements]\napprovers = [\"legal\"]\n{legal}"),
            &[],
        );
        assert!(!e.contains("announcements.approvers"), "{e}");
    }

    #[test]
    fn announcements_name_a_configured_webhook_and_refuse_unknown_keys() {
        let e = problems(
            &format!("{CONFIG}\n[announcements]\nwebhook = \"public-site\"\n"),
            &[],
        );
        assert!(
            e.contains(
                "announcements.webhook: no [[channels.webhooks]] target is named `public-site`"
            ),
            "{e}"
        );
        let e = problems(&format!("{CONFIG}\n[announcements]\nhook = \"x\"\n"), &[]);
        assert!(e.contains("unknown field `hook`"), "{e}");
    }

    #[test]
    fn notice_campaigns_send_notice_templates_only() {
        let e = problems(
            &format!("{CONFIG}\n[notices]\ntemplate = \"page/incident_opened\"\n"),
            &[],
        );
        assert!(
            e.contains("notices.template: `page/incident_opened` is not a notice template"),
            "{e}"
        );
    }
}
