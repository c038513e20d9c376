//! The words `incidentd sink` shows for a message: its subject, decoded as a mail client would
//! (RFC 2047 encoded words in UTF-8, as incidentd writes them), cut to a terminal line.

use base64::Engine;

/// The message's `Subject:` header, unfolded and decoded; None without one.
pub fn subject(raw: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(raw);
    let mut value: Option<String> = None;
    for line in head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            break;
        }
        match (&mut value, line.starts_with([' ', '\t'])) {
            (Some(v), true) => v.push_str(line),
            (Some(_), false) => break,
            (None, _) => {
                let Some((name, rest)) = line.split_once(':') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("subject") {
                    value = Some(rest.to_string());
                }
            }
        }
    }
    value.map(|v| decode_words(v.trim()))
}

/// Decodes `=?utf-8?B?…?=` and `=?utf-8?Q?…?=` words; blanks between two encoded words go
/// (RFC 2047 section 6.2). Words in other charsets, or broken ones, stay as they are.
pub fn decode_words(s: &str) -> String {
    let mut out = String::new();
    let mut pending_blank = String::new();
    let mut after_word = false;
    for token in s.split_inclusive([' ', '\t']) {
        let word = token.trim_end_matches([' ', '\t']);
        let blank = &token[word.len()..];
        match decode_word(word) {
            Some(text) => {
                if !after_word {
                    out.push_str(&pending_blank);
                }
                out.push_str(&text);
                after_word = true;
            }
            None => {
                out.push_str(&pending_blank);
                out.push_str(word);
                after_word = word.is_empty() && after_word;
            }
        }
        pending_blank = blank.to_string();
    }
    out.push_str(&pending_blank);
    out
}

fn decode_word(word: &str) -> Option<String> {
    let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut parts = inner.splitn(3, '?');
    let (charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
    let charset = charset.split('*').next().unwrap_or(charset);
    if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("us-ascii") {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        "Q" | "q" => q_decode(text)?,
        _ => return None,
    };
    String::from_utf8(bytes).ok()
}

fn q_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = [bytes.next()?, bytes.next()?];
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            _ => out.push(b),
        }
    }
    Some(out)
}

/// At most `max` characters on one line: line breaks become spaces, a cut ends in `…`.
pub fn clip(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_unfolded_and_decoded() {
        let raw = b"From: a@b\r\nSubject: =?utf-8?b?44CQ5a6J5YWo5LqL5Lu244CR?=\r\n =?utf-8?q?_=E9=80=9A=E7=9F=A5?= now\r\nTo: c@d\r\n\r\nSubject: not this\r\n";
        assert_eq!(subject(raw).unwrap(), "【安全事件】 通知 now");
        assert_eq!(subject(b"To: c@d\r\n\r\nSubject: body\r\n"), None);
        assert_eq!(
            subject(b"subject:  plain words \n\n").unwrap(),
            "plain words"
        );
    }

    #[test]
    fn words_that_cannot_be_decoded_stay() {
        assert_eq!(decode_words("=?gbk?b?xxxx?= x"), "=?gbk?b?xxxx?= x");
        assert_eq!(decode_words("a =?utf-8?q?b?= c"), "a b c");
        assert_eq!(decode_words("=?utf-8?q?=ZZ?="), "=?utf-8?q?=ZZ?=");
    }

    #[test]
    fn clip_keeps_one_line() {
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(clip("通知通知", 2), "通知…");
    }
}
