//! Splitting one template file into its parts. A part starts at a marker line — a handlebars
//! comment naming it, alone on its line — and runs to the next marker:
//!
//! ```text
//! {{!-- Paging a responder. Comments with more than one word are just comments. --}}
//! {{!-- subject --}}
//! [{{incident.severity}}] {{incident.title}}
//! {{!-- text --}}
//! …
//! ```

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::string_enum;

string_enum! {
    /// The parts a template file can hold.
    Part {
        /// E-mail subject; the title of in-site notices and webhooks.
        Subject => "subject",
        /// Plain text: the e-mail text part, the in-site notice, and the fallback for SMS/voice.
        Text => "text",
        /// The e-mail HTML part (rendered with HTML escaping).
        Html => "html",
        /// The SMS body.
        Sms => "sms",
        /// What a voice call says.
        Voice => "voice",
        /// `key=value` lines: the values template-only SMS/voice providers are sent.
        Params => "params",
    } what = "a template part"
}

/// One part's source and where it starts in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSource {
    pub part: Part,
    pub body: String,
    /// The file line of the marker; handlebars line `n` of `body` is file line `marker + n`.
    pub marker_line: usize,
}

/// A problem at a 1-based line of the file.
pub type LineError = (usize, String);

#[allow(clippy::expect_used)]
static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*\{\{!--\s*([A-Za-z_]+)\s*--\}\}\s*$").expect("the marker pattern is valid")
});

#[allow(clippy::expect_used)]
static COMMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)\{\{!--.*?--\}\}|\{\{![^}]*\}\}").expect("the comment pattern is valid")
});

/// Split `source` into parts, or say at which lines it is malformed.
pub fn split(source: &str) -> Result<Vec<PartSource>, Vec<LineError>> {
    let mut parts: Vec<PartSource> = Vec::new();
    let mut errors = Vec::new();
    let mut prelude = String::new();
    for (i, line) in source.split_inclusive('\n').enumerate() {
        let n = i + 1;
        if let Some(word) = MARKER.captures(line).and_then(|c| c.get(1)) {
            match word.as_str().parse::<Part>().ok() {
                Some(part) => {
                    if let Some(first) = parts.iter().find(|p| p.part == part) {
                        errors.push((
                            n,
                            format!(
                                "the `{part}` part appears twice (first at line {}): keep one",
                                first.marker_line
                            ),
                        ));
                    }
                    parts.push(PartSource {
                        part,
                        body: String::new(),
                        marker_line: n,
                    });
                    continue;
                }
                None => errors.push((
                    n,
                    format!(
                        "`{{{{!-- {} --}}}}` is not a part; the parts are {} (a comment of more than one word is fine)",
                        word.as_str(),
                        Part::ALL.map(Part::as_str).join(", ")
                    ),
                )),
            }
        }
        match parts.last_mut() {
            Some(p) => p.body.push_str(line),
            None => prelude.push_str(line),
        }
    }
    if let Some(line) = stray_line(&prelude) {
        errors.push((
            line,
            "text before the first part marker would never be sent: start it with a marker line such as {{!-- subject --}}, or make it a {{!-- comment --}}".into(),
        ));
    }
    if parts.is_empty() && errors.is_empty() {
        errors.push((
            1,
            "no parts: start each part with a marker line such as {{!-- subject --}}, {{!-- text --}} or {{!-- sms --}}".into(),
        ));
    }
    if errors.is_empty() {
        Ok(parts)
    } else {
        Err(errors)
    }
}

/// The `params` part's lines as `(line in the part, key, value template)`: one `key=value`
/// per line, blank and comment-only lines skipped. The key is fixed by the file; the value is
/// rendered on its own, so nothing it renders to can make another parameter.
pub fn param_lines(body: &str) -> Result<Vec<(usize, String, &str)>, Vec<LineError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in body.lines().enumerate() {
        let n = i + 1;
        if COMMENT.replace_all(line, "").trim().is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            errors.push((
                n,
                format!("`{}` is not key=value: give one parameter per line, e.g. id={{{{incident.id}}}}", line.trim()),
            ));
            continue;
        };
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            errors.push((
                n,
                format!("`{k}` is not a parameter name: use letters, digits and _"),
            ));
            continue;
        }
        out.push((n, k.to_string(), v));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The first line of `prelude` holding something other than comments and blanks.
fn stray_line(prelude: &str) -> Option<usize> {
    let stripped = COMMENT.replace_all(prelude, |c: &regex::Captures<'_>| {
        // Keep the line count so the reported line is right.
        "\n".repeat(c[0].matches('\n').count())
    });
    stripped
        .split('\n')
        .position(|l| !l.trim().is_empty())
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_marker_lines_and_keeps_lines() {
        let src = "{{!-- A note about this file. --}}\n{{!-- subject --}}\nHello {{x}}\n{{!-- text --}}\nline 1\nline 2\n";
        let parts = split(src).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].part, Part::Subject);
        assert_eq!(parts[0].body, "Hello {{x}}\n");
        assert_eq!(parts[0].marker_line, 2);
        assert_eq!(parts[1].part, Part::Text);
        assert_eq!(parts[1].body, "line 1\nline 2\n");
        assert_eq!(parts[1].marker_line, 4);
    }

    #[test]
    fn refuses_unknown_duplicate_and_stray_parts() {
        let e = split("{{!-- smss --}}\nx\n").unwrap_err();
        assert_eq!(e[0].0, 1);
        assert!(e[0].1.contains("`{{!-- smss --}}` is not a part"), "{e:?}");
        let e = split("{{!-- sms --}}\na\n{{!-- sms --}}\nb\n").unwrap_err();
        assert_eq!(e[0].0, 3);
        assert!(e[0].1.contains("appears twice (first at line 1)"), "{e:?}");
        let e = split("{{! ok }}\n\nDear {{name}}\n{{!-- text --}}\n").unwrap_err();
        assert_eq!(e[0].0, 3);
        assert!(e[0].1.contains("before the first part marker"), "{e:?}");
        let e = split("just text").unwrap_err();
        assert!(e[0].1.contains("before the first part marker"), "{e:?}");
        let e = split("").unwrap_err();
        assert!(e[0].1.contains("no parts"), "{e:?}");
    }
}
