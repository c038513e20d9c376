use super::*;

#[test]
fn the_allow_list_holds_participants_captures_and_owner_only() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = crate::config::load(&repo.join("config/incidentd.toml")).unwrap();
    // The shipped scenario, with its (commented-out) webhook capture switched on.
    let text = std::fs::read_to_string(repo.join("config/drills/phone_id_dump.toml"))
        .unwrap()
        .replace(
            "# webhook = [\"drill-capture\"]",
            "webhook = [\"drill-capture\"]",
        );
    let ids: Vec<&str> = s.departments.iter().map(|d| d.id.as_str()).collect();
    let sc = crate::domain::drill::scenario::parse("x", &text, &ids, &|_| true, &["pi_incident"])
        .unwrap();
    let list = allow_list(&sc, &s.departments);
    let has = |k: ChannelKind, r: &str| list.iter().any(|(c, x)| *c == k && x == r);
    assert!(has(ChannelKind::Email, "drill-owner@example.com"));
    assert!(has(ChannelKind::Email, "security-oncall@example.com"));
    assert!(has(ChannelKind::Sms, "+8613800000001"));
    assert!(has(ChannelKind::Voice, "+8613900009901"));
    assert!(has(ChannelKind::Inbox, "drill-capture-user"));
    assert!(has(ChannelKind::Webhook, "drill-capture"));
    let cs = s
        .departments
        .iter()
        .find(|d| d.id == "customer_service")
        .unwrap();
    let phone = cs.members[0].phone.as_deref().unwrap();
    assert!(list.iter().any(|(_, r)| r == phone), "{list:?}");
    // A department that is not a participant is not let through.
    let mut only_security = sc.clone();
    only_security.participants.departments = vec!["security".into()];
    let list = allow_list(&only_security, &s.departments);
    assert!(!list.iter().any(|(_, r)| r == phone), "{list:?}");
}

#[test]
fn an_inject_headline_keeps_figures_whole() {
    let m =
        "溯源更新：受影响用户数上升至 120 万。/ Update: the affected count rises to 1.2 million.";
    assert_eq!(inject_headline(m), m);
    assert_eq!(
        inject_headline("\nFirst line 1.5%.\nsecond"),
        "First line 1.5%."
    );
    // Only a very long line is shortened: never inside a figure, and marked.
    let long = format!("{} count 1,234,567.89 people", "x ".repeat(91));
    let h = inject_headline(&long);
    assert!(h.ends_with("count…"), "{h}");
    assert!(h.chars().count() <= HEADLINE_MAX + 1);
    let cjk = "数".repeat(250);
    assert_eq!(inject_headline(&cjk).chars().count(), HEADLINE_MAX + 1);
}

#[test]
fn titles_and_messages_say_drill_first() {
    let d = declaration(&Scenario {
        name: "x".into(),
        description: String::new(),
        objectives: vec![],
        mode: Mode::Tabletop,
        owner: "o@example.com".into(),
        time_limit: crate::domain::duration::HumanDuration(std::time::Duration::from_secs(60)),
        start: crate::domain::drill::Start {
            title: "Leak".into(),
            summary: String::new(),
            category: None,
            severity: None,
            facts: Default::default(),
        },
        playbook: None,
        notice_template: None,
        participants: crate::domain::drill::Participants {
            departments: vec!["security".into()],
        },
        capture: Default::default(),
        synthetic_subjects: 0,
        targets: Default::default(),
        injects: vec![],
        file: Default::default(),
    });
    assert!(d.title.starts_with(DRILL_MARK), "{}", d.title);
    assert!(d.summary.starts_with(DRILL_MARK));
    assert!(d.drill);
}
