//! Notices resolved right before sending: a campaign's delivery holds no contact (recipient
//! `notice:<campaign>:<subject>`), and [`materialise`] gives it the subject's decrypted contact
//! and the campaign's stored words, with the name and the subject's own page link filled in.

use std::collections::HashMap;

use crate::domain::keyring::{Field, KeyRing};
use crate::domain::message::{ChannelKind, Content, Purpose, fill_link, fill_name};
use crate::store::{Claimed, Store, notice_key, parse_notice_recipient};

/// Why a notice delivery could not be resolved, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// The store could not be read: give the claim back (no attempt counted).
    Retry(String),
    /// No key, or a value that does not decrypt (a half-done key rotation?): an attempt that
    /// failed, retried with backoff until `max_attempts`.
    Transient(String),
    /// Nothing to send to: the subject is gone or purged, has no contact for the channel.
    Permanent(String),
}

/// The claimed deliveries that are a campaign's notices: `(index, campaign, subject row)`. Only
/// rows a campaign made count — purpose `notice` and the key naming the same campaign and
/// subject — never a caller's delivery that merely names such a recipient.
fn notice_refs(claimed: &[Claimed]) -> Vec<(usize, i64, i64)> {
    claimed
        .iter()
        .enumerate()
        .filter(|(_, c)| c.purpose == Purpose::Notice)
        .filter_map(|(i, c)| {
            let (cid, sid) = parse_notice_recipient(&c.recipient)?;
            let incident = c.incident_id?;
            let base = notice_key(incident, cid, sid, c.channel.as_str());
            let own = base.rsplit_once(':').map(|(p, _)| p)?;
            c.idempotency_key
                .starts_with(&format!("{own}:"))
                .then_some((i, cid, sid))
        })
        .collect()
}

/// Turn claimed notice deliveries (recipient `notice:<campaign>:<subject>`) into real ones: the
/// subject's decrypted contact and the campaign's words. Deliveries that cannot be resolved are
/// returned with the reason and what to do ([`Unresolved`]).
pub async fn materialise(
    store: &Store,
    keys: Option<&KeyRing>,
    claimed: &mut [Claimed],
) -> HashMap<i64, Unresolved> {
    let mut failed = HashMap::new();
    let refs = notice_refs(claimed);
    if refs.is_empty() {
        return failed;
    }
    let fail_all = |failed: &mut HashMap<i64, Unresolved>, why: Unresolved| {
        for (i, _, _) in &refs {
            failed.insert(claimed[*i].id, why.clone());
        }
    };
    let Some(keys) = keys else {
        fail_all(
            &mut failed,
            Unresolved::Transient("no contact encryption key is configured ([subjects] key_file): the subject's contact cannot be read".into()),
        );
        return failed;
    };
    let mut subject_ids: Vec<i64> = refs.iter().map(|r| r.2).collect();
    subject_ids.sort_unstable();
    subject_ids.dedup();
    let mut campaign_ids: Vec<i64> = refs.iter().map(|r| r.1).collect();
    campaign_ids.sort_unstable();
    campaign_ids.dedup();
    let (subjects, contents) = match tokio::join!(
        store.subject_contacts(&subject_ids),
        store.campaign_contents(&campaign_ids)
    ) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => {
            fail_all(
                &mut failed,
                Unresolved::Retry(format!("cannot read the subject or campaign: {e}")),
            );
            return failed;
        }
    };
    let subjects: HashMap<i64, _> = subjects.into_iter().map(|s| (s.id, s)).collect();
    let contents: HashMap<(i64, &str, &str), &crate::store::CampaignContent> = contents
        .iter()
        .map(|c| ((c.campaign_id, c.channel.as_str(), c.locale.as_str()), c))
        .collect();
    for (i, cid, sid) in refs {
        let d = &mut claimed[i];
        let r = resolve(d, cid, sid, &subjects, &contents, keys);
        match r {
            Ok((address, content)) => {
                d.recipient = address;
                d.content = content;
            }
            Err(why) => {
                failed.insert(d.id, why);
            }
        }
    }
    failed
}

/// One notice delivery's address (the subject's decrypted contact on its channel) and words
/// (the campaign's, in its locale, with the name and the page link filled in).
fn resolve(
    d: &Claimed,
    cid: i64,
    sid: i64,
    subjects: &HashMap<i64, crate::store::SubjectContacts>,
    contents: &HashMap<(i64, &str, &str), &crate::store::CampaignContent>,
    keys: &KeyRing,
) -> Result<(String, Content), Unresolved> {
    let gone = Unresolved::Permanent;
    let s = subjects
        .get(&sid)
        .ok_or_else(|| gone(format!("subject row {sid} does not exist")))?;
    if s.purged_at.is_some() {
        return Err(gone(
            "the subject's contact data was purged (retention period)".into(),
        ));
    }
    if Some(s.incident_id) != d.incident_id {
        return Err(gone(format!(
            "subject row {sid} belongs to incident {}, not this delivery's",
            s.incident_id
        )));
    }
    let open = |f: Field, v: &Option<String>| -> Result<Option<String>, Unresolved> {
        v.as_deref()
            .map(|x| keys.open(s.incident_id, &s.subject_id, f, x))
            .transpose()
            .map_err(Unresolved::Transient)
    };
    let address = match d.channel {
        ChannelKind::Sms | ChannelKind::Voice => open(Field::Phone, &s.phone_enc)?,
        ChannelKind::Email => open(Field::Email, &s.email_enc)?,
        ChannelKind::Inbox | ChannelKind::SiteWebhook => s.site_user_id.clone(),
        ChannelKind::Webhook => None,
    }
    .ok_or_else(|| gone(format!("the subject has no contact for {}", d.channel)))?;
    let name = open(Field::Name, &s.name_enc)?;
    let stored = contents
        .get(&(cid, d.channel.as_str(), d.locale.as_str()))
        .ok_or_else(|| {
            gone(format!(
                "campaign {cid} has no {} message for locale {}",
                d.channel, d.locale
            ))
        })?;
    let bad = |e: serde_json::Error| gone(format!("campaign {cid}'s stored message: {e}"));
    // The in-site inbox keeps what it is given in our own database, in the clear: it gets
    // the words without the name (the host site knows whose inbox it is).
    let name = name.filter(|_| d.channel != ChannelKind::Inbox);
    let content = match &name {
        Some(n) => fill_name(serde_json::from_str(&stored.named).map_err(bad)?, n),
        None => serde_json::from_str(&stored.anonymous).map_err(bad)?,
    };
    Ok((address, fill_link(content, &keys.link_token(cid, sid))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::notice_recipient;

    fn claimed(purpose: Purpose, key: &str, recipient: &str) -> Claimed {
        Claimed {
            id: 1,
            idempotency_key: key.into(),
            incident_id: Some(4),
            drill: false,
            purpose,
            channel: ChannelKind::Inbox,
            recipient: recipient.into(),
            locale: "en".into(),
            content: Content::default(),
            fallback: Vec::new(),
            attempts: 1,
        }
    }

    #[test]
    fn only_a_campaigns_own_deliveries_are_resolved() {
        let key = notice_key(4, 7, 12, "inbox");
        let rec = notice_recipient(7, 12);
        assert_eq!(
            notice_refs(&[claimed(Purpose::Notice, &key, &rec)]),
            [(0, 7, 12)]
        );
        // Its fallback keeps the key's prefix.
        assert_eq!(
            notice_refs(&[claimed(
                Purpose::Notice,
                &format!("{}>inbox", notice_key(4, 7, 12, "sms")),
                &rec
            )])
            .len(),
            1
        );
        // A caller's delivery that merely names such a recipient is left alone: another
        // purpose, another campaign or subject in the key, or a caller's own key.
        for c in [
            claimed(Purpose::Page, &key, &rec),
            claimed(Purpose::Notice, &notice_key(4, 8, 12, "inbox"), &rec),
            claimed(Purpose::Notice, &notice_key(4, 7, 13, "inbox"), &rec),
            claimed(Purpose::Notice, "4:key:anything", &rec),
        ] {
            assert!(notice_refs(std::slice::from_ref(&c)).is_empty(), "{c:?}");
        }
    }
}
