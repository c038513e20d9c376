//! The module map of ARCHITECTURE.md, checked: which top-level module may use which. A module
//! may use those of a lower layer; an arrow within a layer or upwards is a violation. Known
//! violations would be listed in [`KNOWN`] (none are today): the test fails when a new one
//! appears, and when one listed is gone (so the list is shortened as the code is).

use std::collections::BTreeSet;
use std::path::Path;

/// Each top-level module's layer, lowest first (ARCHITECTURE.md, "Layers").
const LAYERS: &[(&str, u8)] = &[
    ("domain", 0),
    ("channels", 1),
    ("config", 2),
    ("telemetry", 3),
    ("edge", 3),
    ("ingest", 3),
    ("render", 3),
    ("store", 3),
    ("subjects", 4),
    ("scheduler", 4),
    ("engine", 5),
    ("dispatch", 6),
    ("api", 7),
    ("console", 8),
    ("server", 9),
    ("cli", 10),
];

/// Arrows that go the wrong way today: (from, to). Remove a line when its arrow is gone; add
/// one only with its reason in ARCHITECTURE.md.
const KNOWN: &[(&str, &str)] = &[];

fn layer(m: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(n, _)| *n == m)
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("module `{m}` has no layer in src/architecture.rs"))
}

/// The top-level modules `path` (a file or a folder) names as `crate::…` in its code.
fn uses(path: &Path, out: &mut BTreeSet<String>) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
            uses(&e.path(), out);
        }
        return;
    }
    if path.extension().is_none_or(|x| x != "rs") {
        return;
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Code only: a comment naming another module is not an arrow.
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let name: String = line[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
}

/// Every arrow from one top-level module to another that is not downwards.
fn violations() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeSet::new();
    for (m, _) in LAYERS {
        let dir = src.join(m);
        let path = if dir.is_dir() {
            dir
        } else {
            src.join(format!("{m}.rs"))
        };
        let mut used = BTreeSet::new();
        uses(&path, &mut used);
        for u in used {
            if u != *m && LAYERS.iter().any(|(n, _)| *n == u) && layer(&u) >= layer(m) {
                found.insert((m.to_string(), u));
            }
        }
    }
    found
}

#[test]
fn no_module_uses_one_of_its_own_layer_or_above_but_the_known_ones() {
    let found = violations();
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = found.difference(&known).collect();
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(
        new.is_empty(),
        "new arrows against the layers of ARCHITECTURE.md (a module may use only lower layers): {new:?}"
    );
    assert!(
        gone.is_empty(),
        "these arrows are gone: remove them from KNOWN in src/architecture.rs and ARCHITECTURE.md: {gone:?}"
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for e in std::fs::read_dir(src).into_iter().flatten().flatten() {
        let name = e
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if !matches!(name.as_str(), "lib" | "main" | "architecture") {
            layer(&name);
        }
    }
}
