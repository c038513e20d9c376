use super::*;

#[test]
fn only_campaign_keys_name_a_campaign() {
    let k = notice_key(4, 7, 123, "sms");
    assert_eq!(k, "4:notice:7:000000000123:sms");
    assert_eq!(campaign_of_key(&k), Some(7));
    assert_eq!(campaign_of_key(&format!("{k}>email")), Some(7));
    // A caller's own key that merely contains the word is not a campaign's.
    assert_eq!(campaign_of_key("4:key:x:notice:7:1:sms"), None);
    assert_eq!(campaign_of_key("4:page:sms:abc"), None);
    assert_eq!(
        parse_notice_recipient(&notice_recipient(7, 123)),
        Some((7, 123))
    );
}
