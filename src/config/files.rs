//! Reading the folders the configuration names — playbooks, jurisdiction packs, drill
//! scenarios: every `*.toml` file directly in the folder, sorted by file name, read here and
//! handed to the domain as text ([`Source`]), which parses and checks it without I/O.

use std::path::Path;

use crate::domain::drill::Scenarios;
use crate::domain::playbook::Playbooks;
use crate::domain::regulation::Packs;
use crate::domain::source::Source;

/// The `*.toml` files directly in `dir`, sorted by file name, with their text; and the problems
/// of files that could not be read (`<file>: cannot read: …`). `what` names the folder in the
/// problem when the folder itself cannot be read, `setting` the `[paths]` key that moves it.
pub fn toml_sources(
    dir: &Path,
    what: &str,
    setting: &str,
) -> Result<(Vec<Source>, Vec<String>), Vec<String>> {
    let cannot = |e: std::io::Error| {
        vec![format!(
            "{}: cannot read the {what} folder: {e} (set [paths] {setting})",
            dir.display()
        )]
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let path = entry.map_err(cannot)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut sources = Vec::with_capacity(paths.len());
    let mut unreadable = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(Source { path, text }),
            Err(e) => unreadable.push(format!("{}: cannot read: {e}", path.display())),
        }
    }
    Ok((sources, unreadable))
}

/// The playbooks in `dir` (see [`Playbooks::from_sources`]).
pub fn playbooks(
    dir: &Path,
    departments: &[&str],
    template_exists: &dyn Fn(&str) -> bool,
) -> Result<Playbooks, Vec<String>> {
    let (files, unreadable) = toml_sources(dir, "playbooks", "playbooks")?;
    Playbooks::from_sources(dir, &files, unreadable, departments, template_exists)
}

/// The jurisdiction packs in `dir` (see [`Packs::from_sources`]).
pub fn packs(
    dir: &Path,
    departments: &[&str],
    template_exists: &dyn Fn(&str) -> bool,
) -> Result<Packs, Vec<String>> {
    let (files, unreadable) = toml_sources(dir, "jurisdiction packs", "jurisdictions")?;
    with_unreadable(
        unreadable,
        Packs::from_sources(&files, departments, template_exists),
    )
}

/// The drill scenarios in `dir` (see [`Scenarios::from_sources`]).
pub fn scenarios(
    dir: &Path,
    departments: &[&str],
    template_exists: &dyn Fn(&str) -> bool,
    playbook_ids: &[&str],
) -> Result<Scenarios, Vec<String>> {
    let (files, unreadable) = toml_sources(dir, "drill scenarios", "drills")?;
    with_unreadable(
        unreadable,
        Scenarios::from_sources(&files, departments, template_exists, playbook_ids),
    )
}

/// What was read, refused when a file could not be.
fn with_unreadable<T>(
    mut unreadable: Vec<String>,
    loaded: Result<T, Vec<String>>,
) -> Result<T, Vec<String>> {
    match loaded {
        Ok(t) if unreadable.is_empty() => Ok(t),
        Ok(_) => Err(unreadable),
        Err(mut problems) => {
            unreadable.append(&mut problems);
            Err(unreadable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::playbook::tests::DEFAULT;

    fn load(dir: &Path) -> Result<Playbooks, Vec<String>> {
        playbooks(dir, &["security", "government_relations", "legal"], &|_| {
            true
        })
    }

    #[test]
    fn only_toml_files_are_read() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("default.toml"), DEFAULT).unwrap();
        std::fs::write(d.path().join("README.md"), "not toml = [").unwrap();
        std::fs::create_dir(d.path().join("old.toml")).unwrap();
        assert_eq!(load(d.path()).unwrap().all().len(), 1);
    }

    #[test]
    fn a_missing_folder_is_named_with_its_setting() {
        let gone = tempfile::tempdir().unwrap().path().join("nope");
        let all = load(&gone).unwrap_err().join("\n");
        assert!(
            all.starts_with(&format!(
                "{}: cannot read the playbooks folder: ",
                gone.display()
            )) && all.ends_with("(set [paths] playbooks)"),
            "{all}"
        );
        let all = scenarios(&gone, &[], &|_| true, &[])
            .unwrap_err()
            .join("\n");
        assert!(
            all.contains("drill scenarios folder") && all.contains("[paths] drills"),
            "{all}"
        );
    }

    #[test]
    fn the_shipped_folders_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let departments = [
            "security",
            "government_relations",
            "legal",
            "public_relations",
            "customer_service",
            "it_operations",
        ];
        let pb = playbooks(&root.join("playbooks"), &departments, &|_| true)
            .unwrap_or_else(|e| panic!("{}", e.join("\n")));
        assert_eq!(pb.all().len(), 4);
        let packs = packs(&root.join("jurisdictions"), &departments, &|_| true)
            .unwrap_or_else(|e| panic!("{}", e.join("\n")));
        assert_eq!(packs.all().len(), 3);
        let ids: Vec<&str> = pb.all().iter().map(|p| p.id.as_str()).collect();
        scenarios(&root.join("drills"), &departments, &|_| true, &ids)
            .unwrap_or_else(|e| panic!("{}", e.join("\n")));
    }
}
