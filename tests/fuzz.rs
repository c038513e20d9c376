//! Fuzzing every parser that takes outside input: the Alertmanager and generic alert formats,
//! CSV and NDJSON subject imports, the configuration, jurisdiction packs, playbooks and drill
//! scenarios, and template names. Each property feeds random and mutated inputs and holds
//! that the parser answers — a value or an error a person can read — and never panics; the
//! subject splitter must also cut a stream into the same records however it arrives.
//!
//! Bounded: `PROPTEST_CASES` cases per property (256 by default; `.ci/run` sets it). The seeds
//! under `tests/fuzz/corpus/<target>/` run every time, before the random cases: every input
//! that once broke a parser is kept there as a regression case (proptest also records a
//! failing case's seed in `tests/fuzz.proptest-regressions`, which is committed).

use std::path::{Path, PathBuf};

use chrono::Utc;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

fn repo() -> &'static Path {
    crate::common::repo()
}

fn config() -> Config {
    Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// The corpus files of one target (seeds and kept regressions).
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = repo().join("tests/fuzz/corpus").join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{} holds no seeds", dir.display());
    out
}

/// An error a person can act on: not empty, one that says something.
fn readable(e: &str) {
    assert!(e.trim().len() >= 8, "an error too short to act on: {e:?}");
}

/// Mutations of a valid text: delete, duplicate or swap lines, cut it short, or splice bytes
/// in — the shapes a hand-edited file or a truncated request take.
fn mutate(seed: &[u8]) -> impl Strategy<Value = Vec<u8>> + use<> {
    let seed = seed.to_vec();
    let n = seed.len().max(1);
    (
        0usize..6,
        0..n,
        0..n,
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(move |(kind, a, b, junk)| {
            let lines: Vec<&[u8]> = seed.split(|c| *c == b'\n').collect();
            let (la, lb) = (a % lines.len(), b % lines.len());
            match kind {
                0 => {
                    let mut l = lines.clone();
                    l.remove(la);
                    l.join(&b'\n')
                }
                1 => {
                    let mut l = lines.clone();
                    l.insert(lb, lines[la]);
                    l.join(&b'\n')
                }
                2 => {
                    let mut l = lines.clone();
                    l.swap(la, lb);
                    l.join(&b'\n')
                }
                3 => seed[..a.min(seed.len())].to_vec(),
                4 => {
                    let mut s = seed.clone();
                    let at = a.min(s.len());
                    s.splice(at..at, junk);
                    s
                }
                _ => {
                    let mut s = seed.clone();
                    if !s.is_empty() {
                        let i = a % s.len();
                        s[i] = junk.first().copied().unwrap_or(b'"');
                    }
                    s
                }
            }
        })
}

// ------------------------------------------------------------------ alert formats

fn alertmanager(body: &[u8]) {
    if let Err(e) = incidentd::ingest::alertmanager::parse(body) {
        readable(&e.to_string());
    }
}

fn generic(body: &[u8]) {
    if let Err(e) = incidentd::ingest::generic::parse(body, Utc::now()) {
        readable(&e.to_string());
    }
}

#[test]
fn alert_format_corpus() {
    for (p, b) in corpus("alertmanager") {
        eprintln!("{}", p.display());
        alertmanager(&b);
    }
    for (p, b) in corpus("generic") {
        eprintln!("{}", p.display());
        generic(&b);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn alertmanager_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        alertmanager(&body);
    }

    #[test]
    fn alertmanager_mutated(body in mutate(&corpus("alertmanager")[0].1)) {
        alertmanager(&body);
    }

    #[test]
    fn generic_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        generic(&body);
    }

    #[test]
    fn generic_mutated(body in mutate(&corpus("generic")[0].1)) {
        generic(&body);
    }
}

// ------------------------------------------------------------------ subject imports

use incidentd::subjects::parse::{Format, Header, Record, Splitter, ndjson_subject};

/// The records of `body` fed in the chunks `cuts` makes.
fn records(format: Format, body: &[u8], cuts: &[usize]) -> Vec<Record> {
    let mut s = Splitter::new(format);
    let mut out = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts {
        s.feed(&body[at..c.max(at)], &mut out);
        at = c.max(at);
    }
    s.feed(&body[at..], &mut out);
    s.end(&mut out);
    out
}

/// The whole import path after the splitter: header, each row, validation.
fn import(format: Format, body: &[u8], cuts: &[usize]) {
    let rules = incidentd::subjects::Rules {
        locales: &["zh-CN".to_string(), "en".to_string()],
        default_locale: "zh-CN",
        region: incidentd::channels::parse_region("CN").ok(),
    };
    let recs = records(format, body, cuts);
    // However the bytes arrive, the same records come out.
    assert_eq!(
        recs,
        records(format, body, &[]),
        "chunking changed the records"
    );
    let mut header: Option<Header> = None;
    for r in recs {
        let raw = match r {
            Record::Line { text, .. } => ndjson_subject(&text),
            Record::Fields { fields, .. } => match &header {
                None => match Header::parse(&fields) {
                    Ok(h) => {
                        header = Some(h);
                        continue;
                    }
                    Err(e) => {
                        readable(&e);
                        return;
                    }
                },
                Some(h) => h.subject(&fields),
            },
            Record::Unreadable { reason, .. } => {
                readable(&reason);
                continue;
            }
            Record::NotUtf8 { .. } => continue,
        };
        match raw {
            Ok(raw) => {
                if let Err(e) = incidentd::subjects::validate(raw, &rules) {
                    readable(&e);
                }
            }
            Err(e) => readable(&e),
        }
    }
}

#[test]
fn subject_import_corpus() {
    for (p, b) in corpus("subjects_csv") {
        eprintln!("{}", p.display());
        import(Format::Csv, &b, &[1, 7, 30]);
    }
    for (p, b) in corpus("subjects_ndjson") {
        eprintln!("{}", p.display());
        import(Format::Ndjson, &b, &[1, 7, 30]);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn csv_import_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        import(Format::Csv, &body, &cuts);
    }

    #[test]
    fn csv_import_mutated(
        body in mutate(&corpus("subjects_csv")[0].1),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        import(Format::Csv, &body, &cuts);
    }

    #[test]
    fn ndjson_import_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        import(Format::Ndjson, &body, &cuts);
    }

    #[test]
    fn ndjson_import_mutated(
        body in mutate(&corpus("subjects_ndjson")[0].1),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        import(Format::Ndjson, &body, &cuts);
    }
}

// ------------------------------------------------------------------ configuration and packs

/// Load the shipped configuration with `file` (a path under config/) replaced by `text`: the
/// whole of config/ is copied to a temporary folder, the file is overwritten, the config
/// loaded and its playbooks, packs and drills checked as `incidentd check` does.
fn load_with(file: &str, text: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("config"), dir.path());
    std::fs::write(dir.path().join(file), text).unwrap();
    // The templates stay where they are (a mutated file that is not UTF-8 stays as it is);
    // the store is never opened.
    if let Ok(main) = std::fs::read_to_string(dir.path().join("incidentd.toml")) {
        let main = main.replace(
            "templates = \"../templates\"",
            &format!("templates = \"{}\"", repo().join("templates").display()),
        );
        std::fs::write(dir.path().join("incidentd.toml"), main).unwrap();
    }
    match incidentd::config::load(&dir.path().join("incidentd.toml")) {
        Err(e) => readable(&e.to_string()),
        Ok(settings) => {
            let Ok(templates) = incidentd::server::load_templates(&settings) else {
                return;
            };
            if let Err(e) = incidentd::server::load_packs(&settings, &templates) {
                readable(&e.to_string());
            }
            let playbooks = match incidentd::server::load_playbooks(&settings, &templates) {
                Ok(p) => p,
                Err(e) => {
                    readable(&e.to_string());
                    None
                }
            };
            if let Err(e) =
                incidentd::server::load_drills(&settings, &templates, playbooks.as_ref())
            {
                readable(&e.to_string());
            }
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn shipped(file: &str) -> Vec<u8> {
    std::fs::read(repo().join("config").join(file)).unwrap()
}

#[test]
fn configuration_corpus() {
    for (p, b) in corpus("config") {
        eprintln!("{}", p.display());
        load_with("incidentd.toml", &b);
    }
}

proptest! {
    // Each case copies config/ and loads it: fewer cases than the in-memory parsers.
    #![proptest_config(Config { cases: config().cases.div_ceil(16), ..config() })]

    #[test]
    fn configuration_mutated(text in mutate(&shipped("incidentd.toml"))) {
        load_with("incidentd.toml", &text);
    }

    #[test]
    fn classification_rules_mutated(text in mutate(&shipped("classification.toml"))) {
        load_with("classification.toml", &text);
    }

    #[test]
    fn jurisdiction_pack_mutated(text in mutate(&shipped("jurisdictions/cn.toml"))) {
        load_with("jurisdictions/cn.toml", &text);
    }

    #[test]
    fn playbook_mutated(text in mutate(&shipped("playbooks/pi_incident.toml"))) {
        load_with("playbooks/pi_incident.toml", &text);
    }

    #[test]
    fn drill_scenario_mutated(text in mutate(&shipped("drills/phone_id_dump.toml"))) {
        load_with("drills/phone_id_dump.toml", &text);
    }
}

// ------------------------------------------------------------------ template names

proptest! {
    #![proptest_config(config())]

    /// Any name a request can carry: found, or refused by name — never a file outside the
    /// templates, never a panic.
    #[test]
    fn template_names(name in "[a-z_./\\\\%-]{0,40}|\\PC{0,20}") {
        let t = templates();
        let data = serde_json::json!({"incident": {"id": 1}});
        if let Err(e) = t.render(&name, incidentd::channels::ChannelKind::Email, "en", &data) {
            readable(&e.to_string());
        }
    }
}

fn templates() -> &'static incidentd::render::Templates {
    static T: std::sync::OnceLock<incidentd::render::Templates> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let settings = incidentd::config::load(&repo().join("config/incidentd.toml")).unwrap();
        incidentd::server::load_templates(&settings).unwrap()
    })
}
