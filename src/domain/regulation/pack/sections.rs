//! A pack file as written → a checked [`Pack`]: each section compiled by its own function,
//! problems collected as `<key>: <message>` (the file is named by the caller).

use super::*;

mod condition;
use condition::condition;

pub(super) fn compile(
    raw: &PackFile,
    p: &mut Problems<'_>,
    departments: &[&str],
    template_exists: &dyn Fn(&str) -> bool,
) -> Pack {
    let code = raw.code.parse::<Jurisdiction>().unwrap_or_else(|e| {
        p.add("code", e);
        "XX".parse().expect("valid code")
    });
    if raw.name.trim().is_empty() {
        p.add("name", "name the law this pack encodes");
    }
    if raw.locale.trim().is_empty() {
        p.add(
            "locale",
            "give the language reports are written in, e.g. zh-CN or en",
        );
    }
    let timezone = raw.timezone.parse::<FixedOffset>().unwrap_or_else(|_| {
        p.add(
            "timezone",
            format!(
                "`{}` is not a UTC offset; write it like +08:00 or +01:00",
                raw.timezone
            ),
        );
        FixedOffset::east_opt(0).expect("UTC")
    });
    // Grades first: obligations refer to them.
    let grades = grades(raw, p);
    let grade_ids: Vec<&str> = grades.iter().map(|g| g.id.as_str()).collect();

    // Report specs and fields.
    let fields = fields(raw, p);
    let recipients = recipients(raw, p);
    let reports = reports(raw, p, &fields, template_exists);

    let cx = ObligationCx {
        code: &code,
        departments,
        grade_ids: &grade_ids,
        reports: &reports,
        recipients: &recipients,
    };
    let mut obligations: Vec<ObligationDef> = Vec::new();
    let mut ids = HashSet::new();
    for (i, o) in raw.obligations.iter().enumerate() {
        let at = format!("obligations[{i}]");
        check_id(&o.id, &format!("{at}.id"), p);
        if !ids.insert(o.id.as_str()) {
            p.add(
                &format!("{at}.id"),
                format!("obligation `{}` is listed twice", o.id),
            );
        }
        obligations.push(obligation(&at, o, p, &cx));
    }
    check_after(&obligations, p);
    Pack {
        code,
        name: raw.name.clone(),
        description: raw.description.clone(),
        file: Default::default(),
        locale: raw.locale.clone(),
        timezone,
        sources: raw.sources.clone(),
        grades,
        obligations,
        recipients,
        reports,
        fields,
    }
}

/// `[[grades]]`: highest first, the last with no criteria; criteria test facts, never grades.
fn grades(raw: &PackFile, p: &mut Problems<'_>) -> Vec<Grade> {
    let mut grades = Vec::new();
    let mut seen = HashSet::new();
    if raw.grades.is_empty() {
        p.add("grades", "list the grades, highest first, ending with the grade that applies when no criterion holds");
    }
    for (i, g) in raw.grades.iter().enumerate() {
        let at = format!("grades[{i}]");
        check_id(&g.id, &format!("{at}.id"), p);
        if !seen.insert(g.id.as_str()) {
            p.add(
                &format!("{at}.id"),
                format!("grade `{}` is listed twice", g.id),
            );
        }
        let last = i + 1 == raw.grades.len();
        if last && !g.criteria.is_empty() {
            p.add(&format!("{at}.criteria"), "the last grade is the one that applies when nothing else holds: give it no criteria");
        }
        if !last && g.criteria.is_empty() {
            p.add(
                &format!("{at}.criteria"),
                "only the last grade may have no criteria (a grade nobody can reach is a mistake)",
            );
        }
        let mut criteria = Vec::new();
        for (j, c) in g.criteria.iter().enumerate() {
            let at = format!("{at}.criteria[{j}]");
            check_id(&c.id, &format!("{at}.id"), p);
            if c.text.trim().is_empty() {
                p.add(
                    &format!("{at}.text"),
                    "say what the law says: it is the grade's \"why\"",
                );
            }
            let when = condition(&c.when, &format!("{at}.when"), p, None);
            if when.is_always() {
                p.add(&format!("{at}.when"), "a criterion must test something");
            }
            if when.grade_at_least.is_some() || when.grade_below.is_some() || has_grade_test(&when)
            {
                p.add(&format!("{at}.when"), "grades cannot depend on grades");
            }
            criteria.push(Criterion {
                id: c.id.clone(),
                text: c.text.trim().to_string(),
                when,
            });
        }
        grades.push(Grade {
            id: g.id.clone(),
            name: g.name.clone(),
            criteria,
        });
    }
    grades
}

/// `[fields.*]`: what a report shows and where each value comes from.
fn fields(raw: &PackFile, p: &mut Problems<'_>) -> BTreeMap<String, FieldSpec> {
    let mut fields = BTreeMap::new();
    for (id, f) in &raw.fields {
        let at = format!("fields.{id}");
        check_id(id, &at, p);
        if f.label.trim().is_empty() {
            p.add(
                &format!("{at}.label"),
                "give the field the label the report shows",
            );
        }
        check_source(&f.from, &format!("{at}.from"), p);
        fields.insert(
            id.clone(),
            FieldSpec {
                label: f.label.clone(),
                from: f.from.trim().to_string(),
            },
        );
    }
    fields
}

/// `[recipients.*]`: the regulators reports go to, by id.
fn recipients(raw: &PackFile, p: &mut Problems<'_>) -> BTreeMap<String, String> {
    let mut recipients = BTreeMap::new();
    for (id, r) in &raw.recipients {
        check_id(id, &format!("recipients.{id}"), p);
        if r.name.trim().is_empty() {
            p.add(
                &format!("recipients.{id}.name"),
                "name the regulator as people know it",
            );
        }
        recipients.insert(id.clone(), r.name.trim().to_string());
    }
    recipients
}

/// `[reports.*]`: each report's kind, template and required fields (those that may follow among
/// them).
fn reports(
    raw: &PackFile,
    p: &mut Problems<'_>,
    fields: &BTreeMap<String, FieldSpec>,
    template_exists: &dyn Fn(&str) -> bool,
) -> BTreeMap<String, ReportSpec> {
    let mut reports = BTreeMap::new();
    for (id, r) in &raw.reports {
        let at = format!("reports.{id}");
        check_id(id, &at, p);
        let k = match r.kind.parse::<ReportKind>() {
            Ok(k) => k,
            Err(e) => {
                p.add(&format!("{at}.kind"), e);
                ReportKind::Initial
            }
        };
        if !r.template.starts_with("regulator/") {
            p.add(
                &format!("{at}.template"),
                format!("`{}`: report templates are `regulator/<name>`", r.template),
            );
        } else if !template_exists(&r.template) {
            p.add(
                &format!("{at}.template"),
                format!(
                    "no template `{}` (files `templates/{}.<locale>.hbs`); add it or name an existing one",
                    r.template, r.template
                ),
            );
        }
        for (i, f) in r.required.iter().enumerate() {
            if !fields.contains_key(f) {
                p.add(
                    &format!("{at}.required[{i}]"),
                    format!("`{f}` is not a field of this pack; define it under [fields.{f}]"),
                );
            }
        }
        for (i, f) in r.may_follow.iter().enumerate() {
            if !r.required.contains(f) {
                p.add(
                    &format!("{at}.may_follow[{i}]"),
                    format!(
                        "`{f}` is not in `required`; only required fields can be marked to follow"
                    ),
                );
            }
        }
        reports.insert(
            id.clone(),
            ReportSpec {
                kind: k,
                template: r.template.clone(),
                required: r.required.clone(),
                may_follow: r.may_follow.clone(),
            },
        );
    }
    reports
}

/// What checking an obligation needs from the rest of the pack and the configuration.
struct ObligationCx<'a> {
    code: &'a Jurisdiction,
    /// The configured departments (empty: not checked).
    departments: &'a [&'a str],
    grade_ids: &'a [&'a str],
    reports: &'a BTreeMap<String, ReportSpec>,
    recipients: &'a BTreeMap<String, String>,
}

/// One `[[obligations]]` entry, checked (its id and `after` are checked across entries).
fn obligation(
    at: &str,
    o: &ObligationSpec,
    p: &mut Problems<'_>,
    cx: &ObligationCx<'_>,
) -> ObligationDef {
    let (code, departments, grade_ids, reports, recipients) = (
        cx.code,
        cx.departments,
        cx.grade_ids,
        cx.reports,
        cx.recipients,
    );
    if o.title.trim().is_empty() {
        p.add(
            &format!("{at}.title"),
            "give it a title people will recognise",
        );
    }
    if o.law.trim().is_empty() {
        p.add(
            &format!("{at}.law"),
            "cite the legal basis, e.g. \"PIPL art. 57\": it is shown as the why",
        );
    }
    let kind = o.kind.parse::<ObligationKind>().unwrap_or_else(|e| {
        p.add(&format!("{at}.kind"), e);
        ObligationKind::Record
    });
    let (report, report_kind) = report_of(at, o, kind, p, reports);
    let recipient_by_operator = recipients_of(at, o, kind, p, recipients);
    let clock = o.clock.parse::<Clock>().unwrap_or_else(|e| {
        p.add(&format!("{at}.clock"), e);
        Clock::DiscoveredAt
    });
    let (window, counting) = deadline(at, o, p);
    if !departments.is_empty() && !departments.contains(&o.owner.as_str()) {
        p.add(
            &format!("{at}.owner"),
            format!(
                "`{}` is not a configured department; use one of {}",
                o.owner,
                departments.join(", ")
            ),
        );
    }
    let reminders = o.reminders.clone().unwrap_or_else(|| vec![50, 80]);
    for (j, r) in reminders.iter().enumerate() {
        if *r == 0 || *r >= 100 {
            p.add(&format!("{at}.reminders[{j}]"), format!("{r}: a reminder is a per cent of the window between 1 and 99 (the deadline itself always reminds)"));
        }
    }
    let when = condition(&o.when, &format!("{at}.when"), p, Some(grade_ids));
    let exemptions = exemptions(at, o, p, grade_ids);
    let task = task(at, o, kind, p, code, departments);
    if clock == Clock::MaterialChange && (o.after.is_empty() || o.on_change_of.is_empty()) {
        p.add(&format!("{at}.clock"), "`material_change` counts from a change after a report: give `after` (the obligation whose report starts it) and `on_change_of` (the facts that matter)");
    }
    if !o.after.is_empty() && clock != Clock::MaterialChange {
        p.add(&format!("{at}.after"), "`after` is for reports that repeat on material change: use clock = \"material_change\"");
    }
    for (j, f) in o.on_change_of.iter().enumerate() {
        if !FACT_FIELDS.contains(&f.as_str()) {
            p.add(
                &format!("{at}.on_change_of[{j}]"),
                format!("`{f}` is not a fact; use one of {}", FACT_FIELDS.join(", ")),
            );
        }
    }
    ObligationDef {
        id: o.id.clone(),
        title: o.title.clone(),
        kind,
        report,
        report_kind,
        recipient: o.recipient.clone(),
        recipient_by_operator,
        law: o.law.trim().to_string(),
        when,
        clock,
        deadline: window,
        deadline_written: o.deadline.trim().to_string(),
        counting,
        owner: o.owner.clone(),
        reminders,
        after: o.after.clone(),
        on_change_of: o.on_change_of.clone(),
        exemptions,
        task,
    }
}
/// A report's recipient: one, or one per operator type; each under `[recipients]`.
fn recipients_of(
    at: &str,
    o: &ObligationSpec,
    kind: ObligationKind,
    p: &mut Problems<'_>,
    recipients: &BTreeMap<String, String>,
) -> BTreeMap<OperatorType, String> {
    let mut recipient_by_operator = BTreeMap::new();
    for (op, r) in &o.recipient_by_operator {
        match op.parse::<OperatorType>() {
            Ok(op) => {
                recipient_by_operator.insert(op, r.clone());
            }
            Err(e) => p.add(&format!("{at}.recipient_by_operator.{op}"), e),
        }
    }
    let named: Vec<&String> = o
        .recipient
        .iter()
        .chain(o.recipient_by_operator.values())
        .collect();
    if kind == ObligationKind::Report {
        if named.is_empty() && o.after.is_empty() {
            p.add(&format!("{at}.recipient"), "a report names its recipient (an id under [recipients]), or `recipient_by_operator`");
        }
        if o.recipient.is_some() && !o.recipient_by_operator.is_empty() {
            p.add(
                &format!("{at}.recipient"),
                "give `recipient` or `recipient_by_operator`, not both",
            );
        }
        if !o.recipient_by_operator.is_empty()
            && recipient_by_operator.len() < OperatorType::ALL.len()
        {
            p.add(
                &format!("{at}.recipient_by_operator"),
                "name a recipient for each operator type: cii, state_organ, other",
            );
        }
    } else if !named.is_empty() {
        p.add(&format!("{at}.recipient"), "only reports have a recipient");
    }
    for r in named {
        if !recipients.contains_key(r) {
            p.add(
                &format!("{at}.recipient"),
                format!("`{r}` is not under [recipients]; add [recipients.{r}] name = \"…\""),
            );
        }
    }
    recipient_by_operator
}

/// The deadline's window and how it is counted (elapsed, or whole calendar days after).
fn deadline(at: &str, o: &ObligationSpec, p: &mut Problems<'_>) -> (Duration, Counting) {
    let window = o
        .deadline
        .parse::<HumanDuration>()
        .map(|d| d.0)
        .unwrap_or_else(|e| {
            p.add(&format!("{at}.deadline"), e);
            Duration::from_secs(3600)
        });
    let counting = match o.counting.as_deref() {
        None | Some("elapsed") => Counting::Elapsed,
        Some("calendar_days_after") => {
            if window.as_secs() % 86_400 != 0 || window.is_zero() {
                p.add(
                    &format!("{at}.deadline"),
                    "calendar days are whole days: write it like 3d",
                );
            }
            Counting::CalendarDaysAfter
        }
        Some(other) => {
            p.add(
                &format!("{at}.counting"),
                format!("`{other}` is not a way to count; use elapsed or calendar_days_after"),
            );
            Counting::Elapsed
        }
    };
    (window, counting)
}

/// An obligation's `[[obligations.exemptions]]`: when the law lifts or holds it, and why.
fn exemptions(
    at: &str,
    o: &ObligationSpec,
    p: &mut Problems<'_>,
    grade_ids: &[&str],
) -> Vec<Exemption> {
    let mut exemptions = Vec::new();
    for (j, e) in o.exemptions.iter().enumerate() {
        let eat = format!("{at}.exemptions[{j}]");
        check_id(&e.id, &format!("{eat}.id"), p);
        let standing = match e.standing.parse::<Standing>() {
            Ok(Standing::Required) | Err(_) => {
                p.add(
                    &format!("{eat}.standing"),
                    format!(
                        "`{}`: an exemption's standing is exempt, not_required or hold",
                        e.standing
                    ),
                );
                Standing::Exempt
            }
            Ok(s) => s,
        };
        if e.text.trim().is_empty() {
            p.add(
                &format!("{eat}.text"),
                "say what the law says: it is the why",
            );
        }
        let when = condition(&e.when, &format!("{eat}.when"), p, Some(grade_ids));
        if when.is_always() {
            p.add(&format!("{eat}.when"), "an exemption must test something");
        }
        let unless = e
            .unless
            .as_ref()
            .map(|u| condition(u, &format!("{eat}.unless"), p, Some(grade_ids)));
        exemptions.push(Exemption {
            id: e.id.clone(),
            standing,
            text: e.text.trim().to_string(),
            when,
            unless,
        });
    }
    exemptions
}

/// A task obligation's `[obligations.task]`, as the task the response creates.
fn task(
    at: &str,
    o: &ObligationSpec,
    kind: ObligationKind,
    p: &mut Problems<'_>,
    code: &Jurisdiction,
    departments: &[&str],
) -> Option<TaskTemplate> {
    match (&o.task, kind) {
        (Some(t), ObligationKind::Task) => {
            if !departments.is_empty() && !departments.contains(&t.department.as_str()) {
                p.add(
                    &format!("{at}.task.department"),
                    format!("`{}` is not a configured department", t.department),
                );
            }
            if t.title.trim().is_empty() {
                p.add(&format!("{at}.task.title"), "give the task a title");
            }
            Some(TaskTemplate {
                key: format!(
                    "{}-{}",
                    code.as_str().to_ascii_lowercase(),
                    o.id.replace('_', "-")
                ),
                title: t.title.clone(),
                department: t.department.clone(),
                description: t.description.clone(),
            })
        }
        (None, ObligationKind::Task) => {
            p.add(
                &format!("{at}.task"),
                "a task obligation describes its task: [obligations.task] title, department",
            );
            None
        }
        (Some(_), _) => {
            p.add(&format!("{at}.task"), "only `kind = \"task\"` has a task");
            None
        }
        (None, _) => None,
    }
}

/// The report a report obligation is rendered by, and its kind.
fn report_of(
    at: &str,
    o: &ObligationSpec,
    kind: ObligationKind,
    p: &mut Problems<'_>,
    reports: &BTreeMap<String, ReportSpec>,
) -> (Option<String>, Option<ReportKind>) {
    match (&o.report, kind) {
        (Some(r), ObligationKind::Report) => match reports.get(r) {
            Some(spec) => (Some(r.clone()), Some(spec.kind)),
            None => {
                p.add(
                    &format!("{at}.report"),
                    format!(
                        "there is no [reports.{r}] in this pack to render it; name one of {} or add [reports.{r}] with kind, template and required",
                        ids_or_none(reports.keys())
                    ),
                );
                (None, None)
            }
        },
        (None, ObligationKind::Report) => {
            p.add(
                &format!("{at}.report"),
                "a report obligation names the report that renders it (an id under [reports])",
            );
            (None, None)
        }
        (Some(_), _) => {
            p.add(
                &format!("{at}.report"),
                "only `kind = \"report\"` has a report",
            );
            (None, None)
        }
        (None, _) => (None, None),
    }
}

/// `after` must name another report obligation of this pack.
fn check_after(obligations: &[ObligationDef], p: &mut Problems<'_>) {
    for (i, o) in obligations.iter().enumerate() {
        let others: Vec<String> = obligations
            .iter()
            .filter(|x| x.kind == ObligationKind::Report && x.id != o.id)
            .map(|x| x.id.clone())
            .collect();
        let hint = format!("use one of {}", ids_or_none(others.iter()));
        for (j, a) in o.after.iter().enumerate() {
            match obligations.iter().find(|x| &x.id == a) {
                Some(x) if x.kind == ObligationKind::Report && x.id != o.id => {}
                Some(_) => p.add(
                    &format!("obligations[{i}].after[{j}]"),
                    format!("`{a}` must be another report obligation; {hint}"),
                ),
                None => p.add(
                    &format!("obligations[{i}].after[{j}]"),
                    format!("there is no obligation `{a}` in this pack; {hint}"),
                ),
            }
        }
    }
}

/// `a, b, c`, or `(none yet)`.
fn ids_or_none<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    let all: Vec<&str> = ids.map(String::as_str).collect();
    if all.is_empty() {
        "(none yet)".into()
    } else {
        all.join(", ")
    }
}

fn has_grade_test(c: &Condition) -> bool {
    c.any
        .iter()
        .any(|a| a.grade_at_least.is_some() || a.grade_below.is_some() || has_grade_test(a))
}

fn check_id(id: &str, key: &str, p: &mut Problems<'_>) {
    if id.is_empty()
        || id.len() > 64
        || !id.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_uppercase()
                || c.is_ascii_digit()
                || c == '_'
                || c == '-'
        })
    {
        p.add(
            key,
            format!("`{id}`: ids are 1–64 letters, digits, `_` or `-`"),
        );
    }
}

fn check_source(from: &str, key: &str, p: &mut Problems<'_>) {
    let from = from.trim();
    if from == "input" {
        return;
    }
    let Some((source, name)) = from.split_once('.') else {
        p.add(
            key,
            format!(
                "`{from}`: write <source>.<name>, with source one of {}",
                FIELD_SOURCES.join(", ")
            ),
        );
        return;
    };
    let known: &[&str] = match source {
        "facts" => FACT_FIELDS,
        "incident" => INCIDENT_FIELDS,
        "organisation" => ORGANISATION_FIELDS,
        "assessment" => ASSESSMENT_FIELDS,
        "stats" => STATS_FIELDS,
        "timeline" => TIMELINE_FIELDS,
        "input" => {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                p.add(
                    key,
                    format!("`{from}`: an input's name is lower-case letters, digits and `_`"),
                );
            }
            return;
        }
        other => {
            p.add(
                key,
                format!(
                    "`{other}` is not a source; use one of {}",
                    FIELD_SOURCES.join(", ")
                ),
            );
            return;
        }
    };
    if !known.contains(&name) {
        p.add(
            key,
            format!(
                "`{from}`: {source} has no `{name}`; use one of {}",
                known.join(", ")
            ),
        );
    }
}
