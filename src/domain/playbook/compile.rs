//! One playbook file as written → a validated [`Playbook`], and the checks across files.

use crate::domain::source::{Source, deserialize, parse_table};
use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use super::{DEFAULT_PAGE_TEMPLATE, PI_TEAM, Playbook, TaskDef, TaskLint};
use crate::domain::duration::HumanDuration;
use crate::domain::incident::{Category, Severity};

/// A playbook file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaybookFile {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    page_template: Option<String>,
    team: Vec<String>,
    /// Absent: the default playbook.
    #[serde(rename = "match", default)]
    matching: Option<MatchSpec>,
    #[serde(default)]
    tasks: Vec<TaskSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchSpec {
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    severities: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskSpec {
    id: String,
    title: String,
    department: String,
    #[serde(default)]
    description: String,
    due: HumanDuration,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    approval: bool,
    #[serde(default)]
    approvers: Option<Vec<String>>,
    #[serde(default)]
    severities: Vec<String>,
    /// `"notice"`: the gate approves the notice to individuals (content lint first).
    #[serde(default)]
    lint: Option<String>,
}

pub(super) struct Context<'a> {
    pub departments: &'a [&'a str],
    pub template_exists: &'a dyn Fn(&str) -> bool,
}

/// Parse and validate one file: the playbook as far as it could be understood, with its
/// problems, each `<file>: <key>: <message>`; or, when it cannot even be deserialised, just
/// that problem.
pub(super) fn file(source: &Source, ctx: &Context<'_>) -> Result<Compiled, String> {
    let (path, shown) = (source.path.as_path(), source.shown());
    let table = parse_table(&shown, &source.text)?;
    let raw: PlaybookFile = deserialize(toml::Value::Table(table))
        .map_err(|(key, msg)| format!("{shown}: {key}: {msg}"))?;
    let (playbook, problems) = compile(&raw, path, ctx);
    let problems = problems
        .into_iter()
        .map(|e| format!("{shown}: {e}"))
        .collect();
    let empty_match = raw
        .matching
        .as_ref()
        .is_some_and(|m| m.categories.is_empty() && m.severities.is_empty());
    Ok(Compiled {
        playbook,
        problems,
        empty_match,
    })
}

/// One file, understood as far as possible.
pub(super) struct Compiled {
    pub playbook: Playbook,
    pub problems: Vec<String>,
    /// `[match]` present but empty: already a problem; it must not also count as a default.
    pub empty_match: bool,
}

/// Problems within one file, each `<key>: <message>`.
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.0.push(format!("{key}: {msg}"));
    }
}

/// The playbook (usable for the checks across files even when it has problems) and its problems.
fn compile(raw: &PlaybookFile, path: &Path, ctx: &Context<'_>) -> (Playbook, Vec<String>) {
    let mut p = Problems(Vec::new());
    check_id(&raw.id, "id", &mut p);
    if raw.name.trim().is_empty() {
        p.add(
            "name",
            "write a name people will recognise, e.g. \"个人信息安全事件应急预案\"",
        );
    }
    let page_template = raw
        .page_template
        .clone()
        .unwrap_or_else(|| DEFAULT_PAGE_TEMPLATE.to_string());
    if !(ctx.template_exists)(&page_template) {
        p.add(
            "page_template",
            format!(
                "no message template `{page_template}` (templates are `<kind>/<name>.<locale>.hbs` \
                 in the templates folder); add it or name an existing one"
            ),
        );
    }
    let (categories, severities) = match &raw.matching {
        Some(m) => parse_match(m, &mut p),
        None => (Vec::new(), Vec::new()),
    };
    check_team(&raw.team, ctx, &mut p);
    let mut playbook = Playbook {
        id: raw.id.clone(),
        name: raw.name.clone(),
        description: raw.description.clone(),
        file: path.to_path_buf(),
        categories,
        severities,
        departments: raw.team.clone(),
        page_template,
        tasks: Vec::new(),
    };
    check_pi_team(&playbook, &mut p);
    playbook.tasks = raw
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| compile_task(t, &task_key(i, &t.id), &playbook, ctx, &mut p))
        .collect();
    check_task_ids(&playbook.tasks, &mut p);
    check_references(&playbook, &mut p);
    check_cycles(&playbook.tasks, &mut p);
    check_applicability(&playbook, &mut p);
    (playbook, p.0)
}

fn task_key(i: usize, id: &str) -> String {
    format!("tasks[{i}] ({id})")
}

/// Ids appear in URLs, CLI arguments and logs.
fn check_id(id: &str, key: &str, p: &mut Problems) {
    let ok = id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        p.add(
            key,
            format!("`{id}` is not a valid id; use lower-case letters, digits, `_` and `-`, e.g. `contain`"),
        );
    }
}

fn parse_match(m: &MatchSpec, p: &mut Problems) -> (Vec<Category>, Vec<Severity>) {
    if m.categories.is_empty() && m.severities.is_empty() {
        p.add(
            "match",
            "name at least one of `categories` or `severities`, or remove [match] to make this \
             the default playbook",
        );
    }
    (
        parse_list(&m.categories, "match.categories", p),
        parse_list(&m.severities, "match.severities", p),
    )
}

/// Parsed, without repeats, in the order written.
fn parse_list<T>(items: &[String], key: &str, p: &mut Problems) -> Vec<T>
where
    T: std::str::FromStr<Err = String> + PartialEq,
{
    let mut out = Vec::new();
    for (i, s) in items.iter().enumerate() {
        match s.parse::<T>() {
            Ok(v) if !out.contains(&v) => out.push(v),
            Ok(_) => {}
            Err(e) => p.add(&format!("{key}[{i}]"), e),
        }
    }
    out
}

fn check_team(team: &[String], ctx: &Context<'_>, p: &mut Problems) {
    if team.is_empty() {
        p.add(
            "team",
            "name the departments to page, e.g. team = [\"security\"]",
        );
    }
    let mut seen = HashSet::new();
    for (i, d) in team.iter().enumerate() {
        let key = format!("team[{i}]");
        if !ctx.departments.contains(&d.as_str()) {
            p.add(&key, unknown_department(d, ctx));
        } else if !seen.insert(d.as_str()) {
            p.add(&key, format!("`{d}` is listed twice"));
        }
    }
}

fn unknown_department(d: &str, ctx: &Context<'_>) -> String {
    format!(
        "`{d}` is not a department the configuration defines; use one of: {}",
        ctx.departments.join(", ")
    )
}

/// The privacy policy's promise: a PI incident is handled by Security, Government Relations and
/// Legal together. Any playbook a PI incident could select must page all three.
fn check_pi_team(pb: &Playbook, p: &mut Problems) {
    if !pb.can_match_personal_information() {
        return;
    }
    let missing: Vec<String> = PI_TEAM
        .iter()
        .filter(|d| !pb.departments.iter().any(|t| t == *d))
        .map(|d| format!("`{d}`"))
        .collect();
    if !missing.is_empty() {
        let why = if pb.is_default() {
            "the default playbook is chosen for any personal-information incident no other \
             playbook matches"
        } else {
            "this playbook can match personal-information incidents (pi_leak, pi_damage, pi_loss)"
        };
        p.add(
            "team",
            format!(
                "{why}, so its team must include security, government_relations and legal (the \
                 joint emergency response team); add {}",
                missing.join(", ")
            ),
        );
    }
}

fn compile_task(
    t: &TaskSpec,
    at: &str,
    pb: &Playbook,
    ctx: &Context<'_>,
    p: &mut Problems,
) -> TaskDef {
    check_id(&t.id, &format!("{at}.id"), p);
    if t.title.trim().is_empty() {
        p.add(
            &format!("{at}.title"),
            "write what must be done, e.g. \"控制损失 / Contain\"",
        );
    }
    check_task_department(&t.department, &format!("{at}.department"), pb, ctx, p);
    if t.due.0.is_zero() {
        p.add(
            &format!("{at}.due"),
            "must be longer than zero, e.g. \"30m\" or \"4h\"",
        );
    }
    let approvers = match (&t.approvers, t.approval) {
        (None, true) => vec![t.department.clone()],
        (None, false) => Vec::new(),
        (Some(_), false) => {
            p.add(
                &format!("{at}.approvers"),
                "only an approval gate has approvers; add `approval = true` or remove `approvers`",
            );
            Vec::new()
        }
        (Some(list), true) => {
            if list.is_empty() {
                p.add(
                    &format!("{at}.approvers"),
                    "name at least one department, or remove the key to let the task's department decide",
                );
            }
            for (i, d) in list.iter().enumerate() {
                check_task_department(d, &format!("{at}.approvers[{i}]"), pb, ctx, p);
            }
            list.clone()
        }
    };
    let severities = parse_list(&t.severities, &format!("{at}.severities"), p);
    if !severities.is_empty()
        && !pb.severities.is_empty()
        && !severities.iter().any(|s| pb.severities.contains(s))
    {
        p.add(
            &format!("{at}.severities"),
            format!(
                "the task would never apply: the playbook only matches {}",
                join(&pb.severities)
            ),
        );
    }
    let lint = t.lint.as_deref().and_then(|l| match l.parse::<TaskLint>() {
        Ok(_) if !t.approval => {
            p.add(
                &format!("{at}.lint"),
                "only an approval gate runs a lint before it is approved; add `approval = true` or remove `lint`",
            );
            None
        }
        Ok(lint) => Some(lint),
        Err(e) => {
            p.add(&format!("{at}.lint"), e);
            None
        }
    });
    TaskDef {
        id: t.id.clone(),
        title: t.title.clone(),
        department: t.department.clone(),
        description: t.description.clone(),
        due: t.due.0,
        after: t.after.clone(),
        depends_on: t.depends_on.clone(),
        approval: t.approval,
        approvers,
        severities,
        lint,
    }
}

fn check_task_department(d: &str, key: &str, pb: &Playbook, ctx: &Context<'_>, p: &mut Problems) {
    if !ctx.departments.contains(&d) {
        p.add(key, unknown_department(d, ctx));
    } else if !pb.departments.iter().any(|t| t == d) {
        p.add(
            key,
            format!(
                "`{d}` is not in this playbook's team; add it to `team` or use one of: {}",
                pb.departments.join(", ")
            ),
        );
    }
}

fn check_task_ids(tasks: &[TaskDef], p: &mut Problems) {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, t) in tasks.iter().enumerate() {
        if let Some(j) = first.get(t.id.as_str()) {
            p.add(
                &format!("{}.id", task_key(i, &t.id)),
                format!("tasks[{j}] already uses this id; task ids must be unique in a playbook"),
            );
        } else {
            first.insert(&t.id, i);
        }
    }
}

/// Each task's outgoing edges: (key as written, target id).
fn edges(t: &TaskDef) -> impl Iterator<Item = (String, &str)> {
    let deps = t
        .depends_on
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("depends_on[{i}]"), d.as_str()));
    let after = t.after.iter().map(|a| ("after".to_string(), a.as_str()));
    deps.chain(after)
}

fn check_references(pb: &Playbook, p: &mut Problems) {
    for (i, t) in pb.tasks.iter().enumerate() {
        for (key, target) in edges(t) {
            if pb.task(target).is_none() {
                p.add(
                    &format!("{}.{key}", task_key(i, &t.id)),
                    format!(
                        "no task `{target}` in this playbook; use one of: {}",
                        pb.tasks
                            .iter()
                            .map(|t| t.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }
}

/// Dependency cycles (`depends_on` and `after` both count), each reported once, at the task of
/// the cycle that comes first in the file: `a → b → a`.
fn check_cycles(tasks: &[TaskDef], p: &mut Problems) {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let graph: Vec<Vec<(String, usize)>> = tasks
        .iter()
        .map(|t| {
            edges(t)
                .filter_map(|(k, id)| index.get(id).map(|&j| (k, j)))
                .collect()
        })
        .collect();
    let mut search = CycleSearch {
        graph: &graph,
        state: vec![Visit::New; tasks.len()],
        stack: Vec::new(),
        cycles: Vec::new(),
    };
    for i in 0..tasks.len() {
        if search.state[i] == Visit::New {
            search.visit(i);
        }
    }
    let mut seen = HashSet::new();
    for cycle in search.cycles {
        if !seen.insert(cycle.clone()) {
            continue;
        }
        let (first, second) = (cycle[0], cycle[1 % cycle.len()]);
        let key = graph[first]
            .iter()
            .find(|(_, j)| *j == second)
            .map_or("depends_on", |(k, _)| k.as_str());
        let path: Vec<&str> = cycle
            .iter()
            .chain(std::iter::once(&first))
            .map(|&i| tasks[i].id.as_str())
            .collect();
        p.add(
            &format!("{}.{key}", task_key(first, &tasks[first].id)),
            format!(
                "dependency cycle {} (`depends_on` and `after` both count); remove one of these links",
                path.join(" → ")
            ),
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    OnStack,
    Done,
}

struct CycleSearch<'a> {
    graph: &'a [Vec<(String, usize)>],
    state: Vec<Visit>,
    stack: Vec<usize>,
    /// Each cycle as task indices, rotated to start at its first task in file order.
    cycles: Vec<Vec<usize>>,
}

impl CycleSearch<'_> {
    fn visit(&mut self, i: usize) {
        self.state[i] = Visit::OnStack;
        self.stack.push(i);
        for (_, j) in &self.graph[i] {
            match self.state[*j] {
                Visit::New => self.visit(*j),
                Visit::OnStack => {
                    let from = self.stack.iter().rposition(|k| k == j).unwrap_or(0);
                    let mut cycle = self.stack[from..].to_vec();
                    let start = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
                    cycle.rotate_left(start);
                    self.cycles.push(cycle);
                }
                Visit::Done => {}
            }
        }
        self.stack.pop();
        self.state[i] = Visit::Done;
    }
}

/// A task may only wait for tasks that exist at every severity where it applies itself (within
/// the playbook's severities): otherwise, at that severity, its dependency would never be done
/// or its due clock (`after`) would never start.
fn check_applicability(pb: &Playbook, p: &mut Problems) {
    let possible: Vec<Severity> = Severity::ALL
        .into_iter()
        .filter(|s| pb.severities.is_empty() || pb.severities.contains(s))
        .collect();
    for (i, t) in pb.tasks.iter().enumerate() {
        for (key, target) in edges(t) {
            let Some(dep) = pb.task(target) else {
                continue;
            };
            let missing: Vec<Severity> = possible
                .iter()
                .copied()
                .filter(|&s| t.applies_at(s) && !dep.applies_at(s))
                .collect();
            if !missing.is_empty() {
                p.add(
                    &format!("{}.{key}", task_key(i, &t.id)),
                    format!(
                        "`{target}` does not apply at {}, where `{}` does; give `{}` only \
                         severities `{target}` has, or remove this link",
                        join(&missing),
                        t.id,
                        t.id
                    ),
                );
            }
        }
    }
}

fn join(s: &[Severity]) -> String {
    s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Problems between files: duplicate ids, two defaults, ambiguous matches.
pub(super) fn across_files(compiled: &[Compiled]) -> Vec<String> {
    let mut problems = Vec::new();
    for (j, cb) in compiled.iter().enumerate() {
        let b = &cb.playbook;
        let shown = b.file.display();
        for ca in &compiled[..j] {
            let a = &ca.playbook;
            let other = a.file.display();
            if a.id == b.id {
                problems.push(format!(
                    "{shown}: id: playbook id `{}` is already used in {other}; ids must be unique",
                    b.id
                ));
            }
            if ca.empty_match || cb.empty_match {
                continue;
            }
            if a.is_default() && b.is_default() {
                problems.push(format!(
                    "{shown}: match: `{}` and `{}` ({other}) are both default playbooks (no \
                     [match]); only one may be — add a [match] to one of them",
                    b.id, a.id
                ));
            } else if a.specificity() == b.specificity()
                && let Some((c, s)) = overlap(a, b)
            {
                problems.push(format!(
                    "{shown}: match: `{}` and `{}` ({other}) both match {c} {s} with equal \
                     specificity, so neither wins; make their matches disjoint or one more specific",
                    b.id, a.id
                ));
            }
        }
    }
    problems
}

/// The first (category, severity) both playbooks match.
fn overlap(a: &Playbook, b: &Playbook) -> Option<(Category, Severity)> {
    Category::ALL.iter().find_map(|&c| {
        Severity::ALL
            .into_iter()
            .find(|&s| a.matches(c, s) && b.matches(c, s))
            .map(|s| (c, s))
    })
}
