//! SMS segment counting: how many messages a text is split into, which is what a provider
//! charges for and what a phone reassembles.
//!
//! A text that fits the GSM 03.38 default alphabet (plus its extension table, whose characters
//! take an escape and so count 2) is sent as GSM-7: 160 septets in one message, 153 per part
//! once it is split (the rest of each part carries the concatenation header). Anything else —
//! Chinese, most emoji, curly quotes — is sent as UCS-2: 70 UTF-16 code units in one message,
//! 67 per part; a character outside the Basic Multilingual Plane (most emoji) takes 2 units.
//! Parts never split an escape sequence or a surrogate pair, so a long text may need one part
//! more than `units / 153` suggests.

use serde::Serialize;

/// How an SMS is encoded on the air.
// Not a `string_enum!`: its display names (`GSM-7`) are not its wire names (`gsm7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsEncoding {
    /// The GSM 03.38 7-bit default alphabet (with its extension table).
    Gsm7,
    /// UTF-16 (UCS-2 as providers call it).
    Ucs2,
}

impl SmsEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsEncoding::Gsm7 => "GSM-7",
            SmsEncoding::Ucs2 => "UCS-2",
        }
    }

    /// Units that fit one single message, and one part of a split message.
    pub fn limits(self) -> (usize, usize) {
        match self {
            SmsEncoding::Gsm7 => (160, 153),
            SmsEncoding::Ucs2 => (70, 67),
        }
    }
}

/// The result of [`sms_segments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SmsSegments {
    pub encoding: SmsEncoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// Messages the text is sent as (an empty text still counts as one).
    pub segments: usize,
}

/// The GSM 03.38 default alphabet, in table order (0x1B, the escape, is left out).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table: each is sent as escape + character, two septets.
const GSM7_EXTENSION: &str = "\x0c^{}\\[~]|€";

/// Septets `c` takes in GSM-7, or `None` when GSM-7 cannot carry it.
fn gsm7_cost(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Count how `text` is sent: its encoding, its length in that encoding's units and the number
/// of messages.
pub fn sms_segments(text: &str) -> SmsSegments {
    let gsm: Option<Vec<usize>> = text.chars().map(gsm7_cost).collect();
    let (encoding, costs) = match gsm {
        Some(costs) => (SmsEncoding::Gsm7, costs),
        None => (
            SmsEncoding::Ucs2,
            text.chars().map(char::len_utf16).collect(),
        ),
    };
    let units = costs.iter().sum();
    let (single, part) = encoding.limits();
    let segments = if units <= single {
        1
    } else {
        split_count(&costs, part)
    };
    SmsSegments {
        encoding,
        units,
        segments,
    }
}

/// Parts needed when each holds at most `part` units and no character is split across two.
fn split_count(costs: &[usize], part: usize) -> usize {
    let mut parts = 1;
    let mut used = 0;
    for &c in costs {
        if used + c > part {
            parts += 1;
            used = 0;
        }
        used += c;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str) -> (SmsEncoding, usize, usize) {
        let s = sms_segments(text);
        (s.encoding, s.units, s.segments)
    }

    #[test]
    fn the_default_alphabet_has_128_characters_less_the_escape() {
        assert_eq!(GSM7_BASIC.chars().count(), 127);
        assert_eq!(GSM7_EXTENSION.chars().count(), 10);
    }

    #[test]
    fn gsm7_single_message_holds_160() {
        assert_eq!(seg(""), (SmsEncoding::Gsm7, 0, 1));
        assert_eq!(seg(&"a".repeat(160)), (SmsEncoding::Gsm7, 160, 1));
        assert_eq!(seg(&"a".repeat(161)), (SmsEncoding::Gsm7, 161, 2));
    }

    #[test]
    fn gsm7_parts_hold_153() {
        assert_eq!(seg(&"a".repeat(306)), (SmsEncoding::Gsm7, 306, 2));
        assert_eq!(seg(&"a".repeat(307)), (SmsEncoding::Gsm7, 307, 3));
        assert_eq!(seg(&"a".repeat(459)), (SmsEncoding::Gsm7, 459, 3));
        assert_eq!(seg(&"a".repeat(460)), (SmsEncoding::Gsm7, 460, 4));
    }

    #[test]
    fn gsm7_accented_and_greek_letters_stay_single_septets() {
        assert_eq!(seg("Café @ 5€? ΔΩ ü"), (SmsEncoding::Gsm7, 16, 1));
        assert_eq!(seg("line\nbreak\r"), (SmsEncoding::Gsm7, 11, 1));
    }

    #[test]
    fn extension_characters_count_two() {
        for c in ['^', '{', '}', '\\', '[', '~', ']', '|', '€', '\x0c'] {
            assert_eq!(seg(&c.to_string()), (SmsEncoding::Gsm7, 2, 1), "{c:?}");
        }
        // 159 + one extension character = 161 septets: two messages.
        let t = format!("{}€", "a".repeat(159));
        assert_eq!(seg(&t), (SmsEncoding::Gsm7, 161, 2));
        let t = format!("{}€", "a".repeat(158));
        assert_eq!(seg(&t), (SmsEncoding::Gsm7, 160, 1));
    }

    #[test]
    fn an_escape_sequence_is_never_split_across_parts() {
        // 152 septets, then `€` (2) does not fit the first part's last septet.
        let t = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        let s = sms_segments(&t);
        assert_eq!((s.units, s.segments), (306, 3));
        // Same length without the straddle: two parts.
        let t = format!("{}€{}", "a".repeat(151), "a".repeat(153));
        assert_eq!(sms_segments(&t).segments, 2);
    }

    #[test]
    fn ucs2_single_message_holds_70() {
        assert_eq!(seg(&"中".repeat(70)), (SmsEncoding::Ucs2, 70, 1));
        assert_eq!(seg(&"中".repeat(71)), (SmsEncoding::Ucs2, 71, 2));
        assert_eq!(seg(&"中".repeat(134)), (SmsEncoding::Ucs2, 134, 2));
        assert_eq!(seg(&"中".repeat(135)), (SmsEncoding::Ucs2, 135, 3));
        assert_eq!(seg(&"中".repeat(201)), (SmsEncoding::Ucs2, 201, 3));
        assert_eq!(seg(&"中".repeat(202)), (SmsEncoding::Ucs2, 202, 4));
    }

    #[test]
    fn one_non_gsm_character_turns_the_whole_text_into_ucs2() {
        let t = format!("{}’", "a".repeat(69));
        assert_eq!(seg(&t), (SmsEncoding::Ucs2, 70, 1));
        let t = format!("{}’", "a".repeat(70));
        assert_eq!(seg(&t), (SmsEncoding::Ucs2, 71, 2));
        // Extension characters are one unit in UCS-2.
        assert_eq!(seg("中{}"), (SmsEncoding::Ucs2, 3, 1));
    }

    #[test]
    fn emoji_take_two_units_and_are_not_split() {
        assert_eq!(seg("🔒"), (SmsEncoding::Ucs2, 2, 1));
        assert_eq!(seg(&"🔒".repeat(35)), (SmsEncoding::Ucs2, 70, 1));
        assert_eq!(seg(&"🔒".repeat(36)), (SmsEncoding::Ucs2, 72, 2));
        // 66 units then an emoji: it moves whole to the second part.
        let t = format!("{}🔒{}", "中".repeat(66), "中".repeat(66));
        let s = sms_segments(&t);
        assert_eq!((s.units, s.segments), (134, 3));
    }
}
