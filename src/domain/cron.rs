//! Cron expressions as the scheduler runs them (six fields, seconds first; tokio-cron-scheduler's
//! parser), checked without running anything: the configuration checks drill schedules and the
//! digest with these, the scheduler (`crate::scheduler::cron`) runs them.

use chrono::Utc;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// The parser tokio-cron-scheduler uses, so what passes here runs there.
pub fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
}

/// Parse a cron expression as the scheduler runs it: six fields, seconds first, UTC;
/// day-of-month and day-of-week must both match. The error says what is wrong.
pub fn validate_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "`{expr}` has {fields} field(s); cron expressions here have six, seconds first \
             (sec min hour day-of-month month day-of-week, UTC), e.g. `0 0 9 * * *` for 09:00:00 every day"
        ));
    }
    let cron = parser()
        .parse(expr)
        .map_err(|e| format!("`{expr}` is not a valid cron expression: {e}"))?;
    cron.find_next_occurrence(&Utc::now(), false)
        .map_err(|e| format!("`{expr}` never fires: {e}"))?;
    Ok(cron)
}

/// Check a list of (name, expression) jobs: valid, unique names usable in a timer key, and
/// valid expressions.
pub fn validate_cron_jobs(jobs: &[(String, String)]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (name, expr) in jobs {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(format!(
                "cron job name `{name}`: use 1–64 letters, digits, `_`, `-` or `.`"
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(format!("cron job `{name}` is defined twice"));
        }
        validate_cron(expr).map_err(|e| format!("cron job `{name}`: {e}"))?;
    }
    Ok(())
}
