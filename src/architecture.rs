//! The module map of ARCHITECTURE.md, checked: which top-level module may use which. A module
//! may use those of a lower layer; an arrow within a layer or upwards is a violation. Known
//! violations would be listed in [`KNOWN`] (none are today): the test fails when a new one
//! appears, and when one listed is gone (so the list is shortened as the code is).
//!
//! Also the size rule of ARCHITECTURE.md ("Small pieces"): no source file over [`MAX_FILE`]
//! lines, no function over [`MAX_FN`] lines unless a `Long because:` comment right above it
//! says why.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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

/// The most lines a source file has (unit tests, in `tests.rs` files, do not count).
const MAX_FILE: usize = 800;
/// The most lines a function has, from `fn` to its closing brace, without a reason.
const MAX_FN: usize = 100;

/// Every `.rs` file below `dir` but the unit-test files.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// Whether `line` (its indent removed) starts a function: `fn`, after any of `pub(…)`,
/// `const`, `async`, `unsafe`.
fn starts_fn(line: &str) -> bool {
    let mut rest = line;
    loop {
        let before = rest;
        for word in [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "const ",
            "async ",
            "unsafe ",
        ] {
            rest = rest.strip_prefix(word).unwrap_or(rest);
        }
        if rest == before {
            return rest.starts_with("fn ");
        }
    }
}

/// Functions (at the top level or one level in: `impl` and `mod` items) longer than `max`
/// lines without a `Long because:` in the comments right above them: (line, length).
fn long_functions(text: &str, max: usize) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for indent in ["", "    "] {
            let Some(rest) = line.strip_prefix(indent) else {
                continue;
            };
            if rest.starts_with(' ') || !starts_fn(rest) || rest.ends_with(';') {
                continue;
            }
            if rest.ends_with('}') && rest.contains('{') {
                continue; // a one-line function
            }
            let close = format!("{indent}}}");
            let Some(end) = lines[i + 1..].iter().position(|l| *l == close) else {
                continue;
            };
            let len = end + 2;
            let reason = lines[..i]
                .iter()
                .rev()
                .take_while(|l| {
                    let t = l.trim_start();
                    t.starts_with("//") || t.starts_with("#[")
                })
                .any(|l| l.contains("Long because:"));
            if len > max && !reason {
                out.push((i + 1, len));
            }
        }
    }
    out
}

#[test]
fn no_file_over_800_lines_and_no_function_over_100_without_a_reason() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files.sort();
    let mut problems = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let shown = f
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(f)
            .display();
        let n = text.lines().count();
        if n > MAX_FILE {
            problems.push(format!(
                "{shown}: {n} lines (at most {MAX_FILE}): split it by what it does"
            ));
        }
        for (line, len) in long_functions(&text, MAX_FN) {
            problems.push(format!(
                "{shown}:{line}: a function of {len} lines (at most {MAX_FN}): split it into named steps, or say why above it in a `// Long because:` comment"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_long_function_is_found_and_a_reason_excuses_it() {
    let body = "    let x = 1;\n".repeat(MAX_FN);
    let long = format!("impl A {{\n    pub async fn f() {{\n{body}    }}\n}}\n");
    assert_eq!(long_functions(&long, MAX_FN), vec![(2, MAX_FN + 2)]);
    let excused = format!("/// Does f.\n// Long because: a table.\nfn f() {{\n{body}}}\n");
    assert!(long_functions(&excused, MAX_FN).is_empty());
    let short = format!(
        "fn f() {{\n{}}}\nfn g() {{}}\n",
        "    let x = 1;\n".repeat(MAX_FN - 2)
    );
    assert!(long_functions(&short, MAX_FN).is_empty());
}
