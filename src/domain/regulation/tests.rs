//! Smoke tests of the shipped packs; the table-driven rule tests are in `tests/regulation_rules.rs`.

use std::path::Path;

use super::*;

pub(crate) fn shipped() -> Packs {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/jurisdictions");
    Packs::load(&dir, &[], &|_| true).unwrap_or_else(|p| panic!("{}", p.join("\n")))
}

#[test]
fn shipped_packs_load() {
    let packs = shipped();
    let codes: Vec<&str> = packs.all().iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, ["CN", "EU", "SG"]);
}

#[test]
fn calendar_days_end_at_the_end_of_the_last_local_day() {
    let tz = FixedOffset::east_opt(8 * 3600).unwrap();
    // 2026-03-02 10:00 SGT = 02:00 UTC; 3 calendar days after that day: end of 2026-03-05 SGT.
    let start = "2026-03-02T02:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let d = deadline(
        start,
        Duration::from_secs(3 * 86_400),
        Counting::CalendarDaysAfter,
        tz,
    );
    assert_eq!(d.to_rfc3339(), "2026-03-05T15:59:59.999999+00:00");
}
