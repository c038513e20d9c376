use super::*;

#[test]
fn separators_and_labels() {
    assert_eq!(separated(0), "0");
    assert_eq!(separated(999), "999");
    assert_eq!(separated(1000), "1,000");
    assert_eq!(separated(1_234_567), "1,234,567");
    assert_eq!(
        display_label("报告单位 / Reporting unit", "zh-CN"),
        "报告单位"
    );
    assert_eq!(
        display_label("报告单位 / Reporting unit", "en"),
        "Reporting unit"
    );
    assert_eq!(display_label("Organisation", "zh-CN"), "Organisation");
}

#[test]
fn fill_hints_name_the_fact_or_input() {
    assert!(how_to_fill("facts.cause", 9).contains("PATCH /api/v1/incidents/9/facts"));
    assert!(how_to_fill("facts.cause", 9).contains("--set cause="));
    assert!(how_to_fill("input.system", 9).contains("--input system="));
    assert!(how_to_fill("organisation.contact", 9).contains("[organisation] contact"));
}
