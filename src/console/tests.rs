use super::*;

#[test]
fn passwords_verify_against_their_argon2id_hash_only() {
    let h = hash_password("correct horse battery staple").unwrap();
    assert!(h.starts_with("$argon2id$"), "{h}");
    assert!(verify_password("correct horse battery staple", Some(&h)));
    assert!(!verify_password("correct horse battery stable", Some(&h)));
    // An unknown login is never let in, and costs a hash like a wrong password.
    assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
    assert!(!verify_password("anything", None));
}

#[test]
fn only_console_paths_are_places_to_go_back_to() {
    assert_eq!(
        safe_next(Some("/console/incidents/4")),
        "/console/incidents/4"
    );
    for bad in [
        "https://evil.example",
        "//evil.example",
        "/api/v1/x",
        "/console\\@x",
    ] {
        assert_eq!(safe_next(Some(bad)), "/console", "{bad}");
    }
    assert!(!same("", ""));
    assert!(same("ab", "ab") && !same("ab", "ac") && !same("ab", "abc"));
}
