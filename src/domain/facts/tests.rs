use super::*;
use serde_json::json;

#[test]
fn unknown_field_is_refused_with_its_path() {
    let e = Facts::default()
        .apply_patch(&json!({"affected": 3}))
        .unwrap_err();
    assert!(e.message.contains("unknown field `affected`"), "{e}");
}

#[test]
fn wrong_type_names_the_path() {
    let e = Facts::default()
        .apply_patch(&json!({"data_types": ["phone", "fone"]}))
        .unwrap_err();
    assert_eq!(e.path, "data_types[1]");
    assert!(e.message.contains("not a known data type"), "{e}");
}

#[test]
fn merge_patch_replaces_and_clears() {
    let f = Facts::default()
        .apply_patch(&json!({"affected_subjects": 10, "cause": "x"}))
        .unwrap();
    let f = f
        .apply_patch(&json!({"affected_subjects": 12, "cause": null}))
        .unwrap();
    assert_eq!(f.affected_subjects, Some(12));
    assert_eq!(f.cause, None);
}

#[test]
fn mitigation_needs_justification() {
    let e = Facts::default()
        .apply_patch(&json!({"mitigation_effective": true}))
        .unwrap_err();
    assert_eq!(e.path, "mitigation_justification");
}

#[test]
fn the_total_follows_the_jurisdictions_unless_a_person_gave_one() {
    let f = Facts::default()
            .apply_patch(&json!({"by_jurisdiction": {"CN": {"affected_subjects": 2_300_000}, "sg": {"affected_subjects": 4000}}}))
            .unwrap();
    assert_eq!(f.affected_subjects, Some(2_304_000));
    assert_eq!(f.jurisdictions.len(), 2);
    // One jurisdiction changes, the other is kept, the derived total follows.
    let f = f
        .apply_patch(&json!({"by_jurisdiction": {"SG": {"affected_subjects": 4200}}}))
        .unwrap();
    assert_eq!(f.affected_subjects, Some(2_304_200));
    let sg: Jurisdiction = "SG".parse().unwrap();
    assert_eq!(f.for_jurisdiction(&sg).affected_subjects, Some(4200));
    assert_eq!(
        f.for_jurisdiction(&"CN".parse().unwrap()).affected_subjects,
        Some(2_300_000)
    );
    // A total of a person's own (2,200 people counted in both) moves with the counts.
    let f = f
        .apply_patch(&json!({"affected_subjects": 2_302_000}))
        .unwrap();
    let f = f
        .apply_patch(&json!({"by_jurisdiction": {"SG": {"affected_subjects": 4300}}}))
        .unwrap();
    assert_eq!(f.affected_subjects, Some(2_302_100));
    // Cleared, it is the sum again.
    let f = f.apply_patch(&json!({"affected_subjects": null})).unwrap();
    assert_eq!(f.affected_subjects, Some(2_304_300));
    let e = f
        .apply_patch(&json!({"affected_subjects": 4000}))
        .unwrap_err();
    assert_eq!(e.path, "by_jurisdiction.CN.affected_subjects");
    let e = f
        .apply_patch(&json!({"jurisdictions": ["CN"]}))
        .unwrap_err();
    assert_eq!(e.path, "jurisdictions");
    let e = f
        .apply_patch(&json!({"by_jurisdiction": {"SG": {"affected": 1}}}))
        .unwrap_err();
    assert!(e.message.contains("unknown field `affected`"), "{e}");
}

#[test]
fn absorb_only_grows() {
    let mut f = Facts {
        affected_subjects: Some(100),
        cause: Some("person".into()),
        ..Facts::default()
    };
    let alert = Facts {
        affected_subjects: Some(50),
        data_types: vec!["phone".parse().unwrap()],
        cause: Some("alert".into()),
        ..Facts::default()
    };
    assert!(f.absorb(&alert));
    assert_eq!(f.affected_subjects, Some(100));
    assert_eq!(f.cause, Some("person".into()));
    assert_eq!(f.data_types.len(), 1);
    assert!(!f.absorb(&alert));
}
