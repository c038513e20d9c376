use super::*;
use crate::domain::drill::scenario::{check_coverage, declared_class};

#[test]
fn the_shipped_scenarios_load_against_the_shipped_config() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = crate::config::load(&repo.join("config/incidentd.toml")).unwrap();
    let t = load_templates(&s).unwrap();
    let pbs = load_playbooks(&s, &t).unwrap().unwrap();
    let all = load_drills(&s, &t, Some(&pbs)).unwrap();
    assert_eq!(all.names().len(), 3, "{:?}", all.names());
    // Each pages exactly the departments it lets the drill reach.
    for sc in all.all() {
        let problems = check_coverage(sc, &pbs, &s.rules);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert_eq!(
            pbs.select(
                declared_class(sc, &s.rules).0,
                declared_class(sc, &s.rules).1
            )
            .id,
            "pi_incident"
        );
    }
    // Leaving a paged department out, or naming a playbook the drill does not get, is named.
    let mut sc = all.get("phone_id_dump").unwrap().clone();
    sc.participants
        .departments
        .retain(|d| d != "customer_service" && d != "it_operations");
    let e = check_coverage(&sc, &pbs, &s.rules).join("\n");
    assert!(
            e.contains(
                "phone_id_dump.toml: participants.departments: playbook `pi_incident` pages it_operations, customer_service, which the participants leave out"
            ),
            "{e}"
        );
    sc.playbook = Some("cyber_general".into());
    let e = check_coverage(&sc, &pbs, &s.rules).join("\n");
    assert!(
            e.contains("playbook: names `cyber_general`, but the drill is declared as pi_leak S1, which selects playbook `pi_incident`"),
            "{e}"
        );
}
