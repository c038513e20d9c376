use super::*;
use crate::channels::{BoxFuture, Content, Limits, Outgoing, Purpose};
use crate::domain::duration::HumanDuration;
use std::sync::Mutex;

/// A channel that records what reaches it.
struct Recording {
    sent: Mutex<Vec<String>>,
    fail_first: Mutex<u32>,
}

impl Channel for Recording {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }
    fn provider(&self) -> &str {
        "recording"
    }
    fn limits(&self) -> Limits {
        Limits {
            concurrency: 1,
            per_second: None,
        }
    }
    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let mut f = self.fail_first.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                return Err(SendError::NotSent("connection refused".into()));
            }
            self.sent.lock().unwrap().push(msg.recipient.clone());
            Ok(Sent::default())
        })
    }
}

fn claimed(drill: bool, recipient: &str) -> Claimed {
    Claimed {
        id: 1,
        idempotency_key: "k".into(),
        incident_id: Some(7),
        drill,
        purpose: Purpose::Drill,
        channel: ChannelKind::Sms,
        recipient: recipient.into(),
        locale: "en".into(),
        content: Content::default(),
        fallback: Vec::new(),
        attempts: 1,
    }
}

#[tokio::test]
async fn drill_guard_never_lets_a_drill_reach_anyone_off_its_list() {
    let ch = Recording {
        sent: Mutex::new(Vec::new()),
        fail_first: Mutex::new(0),
    };
    let mut allow = DrillAllowList::new();
    allow.insert((7, "sms".into(), "+8613800000001".into()));
    // Allowed for a different incident or channel does not count.
    allow.insert((8, "sms".into(), "+8613800000002".into()));
    allow.insert((7, "email".into(), "+8613800000003".into()));
    for r in ["+8613800000002", "+8613800000003", "+8613800000009"] {
        let a = guarded_send(&ch, &claimed(true, r), &allow).await;
        assert!(
            matches!(a, Attempt::Refused(ref m) if m.contains("drill guard")),
            "{r}: {a:?}"
        );
    }
    assert!(
        ch.sent.lock().unwrap().is_empty(),
        "nothing reached the channel"
    );
    let a = guarded_send(&ch, &claimed(true, "+8613800000001"), &allow).await;
    assert!(matches!(a, Attempt::Sent(_)));
    // A real incident's delivery is not a drill: no list needed.
    let a = guarded_send(
        &ch,
        &claimed(false, "+8613800000009"),
        &DrillAllowList::new(),
    )
    .await;
    assert!(matches!(a, Attempt::Sent(_)));
    assert_eq!(
        *ch.sent.lock().unwrap(),
        vec!["+8613800000001".to_string(), "+8613800000009".to_string()]
    );
}

#[tokio::test]
async fn sends_that_never_left_are_retried_at_once_then_given_back() {
    let ch = Recording {
        sent: Mutex::new(Vec::new()),
        fail_first: Mutex::new(2),
    };
    let a = guarded_send(
        &ch,
        &claimed(false, "+8613800000001"),
        &DrillAllowList::new(),
    )
    .await;
    assert!(
        matches!(a, Attempt::Sent(_)),
        "third try inside one attempt: {a:?}"
    );
    *ch.fail_first.lock().unwrap() = 3;
    let a = guarded_send(
        &ch,
        &claimed(false, "+8613800000001"),
        &DrillAllowList::new(),
    )
    .await;
    assert!(matches!(a, Attempt::Failed(SendError::NotSent(_))), "{a:?}");
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_cap() {
    let cfg = DispatchConfig {
        backoff_base: HumanDuration(Duration::from_secs(10)),
        backoff_max: HumanDuration(Duration::from_secs(60)),
        ..DispatchConfig::default()
    };
    for _ in 0..100 {
        let b1 = backoff(&cfg, 1);
        assert!(
            b1 >= Duration::from_secs(5) && b1 <= Duration::from_secs(10),
            "{b1:?}"
        );
        let b3 = backoff(&cfg, 3);
        assert!(
            b3 >= Duration::from_secs(20) && b3 <= Duration::from_secs(40),
            "{b3:?}"
        );
        let b9 = backoff(&cfg, 9);
        assert!(
            b9 >= Duration::from_secs(30) && b9 <= Duration::from_secs(60),
            "{b9:?}"
        );
    }
}
