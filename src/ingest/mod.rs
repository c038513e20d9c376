//! Alert formats: our generic JSON (strict) and Alertmanager's webhook (lenient: a foreign
//! format whose senders add fields over time). Both produce [`NewAlert`]s.

pub mod alertmanager;
pub mod generic;

use crate::domain::alert::NewAlert;

/// Text stored in PostgreSQL cannot contain NUL; nobody means to send one, so drop it at the edge.
pub(crate) fn clean(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    }
}

pub(crate) fn clean_map(
    m: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    m.into_iter().map(|(k, v)| (clean(k), clean(v))).collect()
}

/// Where a payload went wrong: `path` is the JSON path (`[2].labels`), empty for syntax errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub path: String,
    pub message: String,
    /// True for JSON syntax errors (400); false for content errors (422).
    pub syntax: bool,
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() || self.path == "." {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Deserialize JSON from bytes, naming the path of a bad field and the line/column of bad syntax.
pub fn from_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, FormatError> {
    // The plain parser first: tracking the path costs ~10% of ingest CPU, and only an error
    // needs it. A body that fails is parsed again to find where.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_error(if path == "." { String::new() } else { path }, &inner)
    })?;
    de.end().map_err(|e| json_error(String::new(), &e))?;
    Ok(value)
}

fn json_error(path: String, e: &serde_json::Error) -> FormatError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => FormatError {
            path: String::new(),
            message: format!(
                "malformed JSON at line {} column {}: {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ),
            syntax: true,
        },
        Category::Data => FormatError {
            path,
            message: strip_position(&e.to_string()),
            syntax: false,
        },
    }
}

/// serde_json appends " at line L column C" to its messages; we state the position ourselves.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// What every adapter returns.
pub type Alerts = Vec<NewAlert>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
        b: Vec<String>,
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let e = from_json::<T>(b"{\n  \"a\": 1,\n  \"b\": [\"x\",]\n}").unwrap_err();
        assert!(e.syntax);
        assert!(
            e.message.starts_with("malformed JSON at line 3 column"),
            "{e}"
        );
    }

    #[test]
    fn content_errors_carry_the_path() {
        let e = from_json::<T>(br#"{"a": 1, "b": ["x", 2]}"#).unwrap_err();
        assert!(!e.syntax);
        assert_eq!(e.path, "b[1]");
        let e = from_json::<T>(br#"{"a": 1, "b": [], "c": 3}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `c`"), "{e}");
    }

    #[test]
    fn trailing_garbage_is_syntax() {
        let e = from_json::<T>(br#"{"a": 1, "b": []} x"#).unwrap_err();
        assert!(e.syntax, "{e:?}");
    }
}
