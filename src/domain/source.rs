//! A file's text as the domain reads it: the configuration layer (`crate::config::files`) reads
//! the folders; the domain parses what was read, so parsing and every check run without I/O and
//! can be tested on text alone.

use std::path::PathBuf;

use serde::de::DeserializeOwned;

/// One file's path and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Source {
        Source {
            path: path.into(),
            text: text.into(),
        }
    }

    /// The path as problems name it.
    pub fn shown(&self) -> String {
        self.path.display().to_string()
    }
}

/// TOML syntax errors come back as `file:line:column: message` (column in characters).
/// `text` as a TOML table; on a syntax error, `<shown>:<line>:<column>: <message>`.
pub fn parse_table(shown: &str, text: &str) -> Result<toml::Table, String> {
    text.parse::<toml::Table>().map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        format!("{shown}:{line}:{col}: {}", e.message().trim())
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |n| before[n + 1..].chars().count())
        + 1;
    (line, col)
}

/// Typed deserialisation; on failure, the dotted key and the problem.
pub fn deserialize<T: DeserializeOwned>(v: toml::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." {
            "(top level)".into()
        } else {
            key
        };
        (key, e.inner().message().to_string())
    })
}
