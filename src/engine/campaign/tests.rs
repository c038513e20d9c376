use super::run::keys_on;
use super::*;

fn row(id: i64, channels: &str, audience: &str, facts_version: Option<i64>) -> CampaignRow {
    CampaignRow {
        id,
        incident_id: 4,
        actor: "t".into(),
        template: "notice/pi_leak".into(),
        channels: channels.into(),
        mode: "all".into(),
        status: "enqueued".into(),
        approval_task: None,
        enqueued_to: 0,
        subjects: 0,
        deliveries: 0,
        unreachable: 0,
        error: None,
        created_at: 0,
        started_at: Some(1),
        finished_at: None,
        audience: audience.into(),
        facts_version,
    }
}

fn ask(channels: &[&str], audience: Audience) -> (Vec<String>, CampaignRequest) {
    let req = CampaignRequest {
        channels: channels.iter().map(|c| c.parse().unwrap()).collect(),
        mode: Mode::All,
        template: None,
        audience,
    };
    (channels.iter().map(|c| c.to_string()).collect(), req)
}

#[test]
fn a_follow_up_is_a_new_notice_or_a_new_audience_never_the_same_words_again() {
    let first = [row(1, r#"["inbox","sms"]"#, "all", Some(2))];
    let t = "notice/pi_leak";
    // Exactly the same request: the campaign that exists.
    let (chs, req) = ask(&["inbox", "sms"], Audience::All);
    let same = followup_check(&first, t, &chs, &req, 2).unwrap();
    assert_eq!(same.map(|c| c.id), Some(1));
    // The same words to everyone on another channel: refused, naming the ways on.
    let (chs, req) = ask(&["voice"], Audience::All);
    let e = followup_check(&first, t, &chs, &req, 2).unwrap_err();
    assert!(
        matches!(&e, EngineError::Conflict(m) if m.contains("unreached")),
        "{e}"
    );
    // For the unreached, or after the facts changed: a new campaign.
    let (chs, req) = ask(&["voice"], Audience::Unreached);
    assert!(followup_check(&first, t, &chs, &req, 2).unwrap().is_none());
    let (chs, req) = ask(&["inbox", "sms"], Audience::All);
    assert!(followup_check(&first, t, &chs, &req, 3).unwrap().is_none());
    // Another template is another notice.
    assert!(
        followup_check(&first, "notice/other", &chs, &req, 2)
            .unwrap()
            .is_none()
    );
    // Nobody is unreached before a first campaign.
    let (chs, req) = ask(&["voice"], Audience::Unreached);
    assert!(matches!(
        followup_check(&[], t, &chs, &req, 2),
        Err(EngineError::Invalid { path, .. }) if path == "audience"
    ));
}

#[test]
fn earlier_keys_cover_fallbacks_onto_the_channel() {
    let e = row(7, r#"["sms","inbox"]"#, "all", None);
    let keys = keys_on(4, &e, 12, ChannelKind::Inbox);
    assert_eq!(
        keys,
        [
            notice_key(4, 7, 12, "inbox"),
            format!("{}>inbox", notice_key(4, 7, 12, "sms"))
        ]
    );
}
