//! Streaming parsers for subject lists: bytes arrive in chunks of any size, records come out
//! one at a time with the line they started on. Memory holds one record, never the file.
//!
//! * CSV (RFC 4180 with a header row): `,` between fields, `"` around fields that hold `,`,
//!   `"` (doubled) or line breaks; `\r\n` or `\n` line ends; a UTF-8 byte-order mark is
//!   skipped.
//! * NDJSON: one JSON object per line; blank lines are skipped.
//!
//! Text must be UTF-8. A record that is not is reported (with a hint for GBK/GB18030
//! exports, the usual culprit for Chinese names) and the rest of the file goes on.

use serde::Deserialize;

/// Longest record accepted; longer ones are reported and skipped.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;

/// What a record that cannot be read says.
pub const NOT_UTF8: &str = "this line is not UTF-8 text; the file may have been saved as GBK/GB18030 (common for Chinese spreadsheets): save it as UTF-8, e.g. `iconv -f GB18030 -t UTF-8 subjects.csv > subjects-utf8.csv`";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// From a `Content-Type` (or a file name's extension).
    pub fn detect(hint: &str) -> Option<Format> {
        let h = hint.to_ascii_lowercase();
        let essence = h.split(';').next().unwrap_or("").trim();
        if essence == "text/csv" || h.ends_with(".csv") {
            Some(Format::Csv)
        } else if matches!(
            essence,
            "application/x-ndjson" | "application/ndjson" | "application/jsonl"
        ) || h.ends_with(".ndjson")
            || h.ends_with(".jsonl")
        {
            Some(Format::Ndjson)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// A complete record, or why one could not be had.
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    Line { line: u64, bytes: Vec<u8> },
    TooLong { line: u64 },
}

/// Cuts a byte stream into records. CSV records may span lines inside quotes.
#[derive(Debug)]
pub struct Splitter {
    format: Format,
    buf: Vec<u8>,
    in_quotes: bool,
    /// Line the current record started on (1-based).
    start_line: u64,
    /// Lines seen so far.
    lines: u64,
    /// Skipping the rest of an over-long record.
    skipping: bool,
    at_start: bool,
    /// The next byte starts a field (CSV).
    field_start: bool,
    /// The last byte closed a quoted field (CSV).
    just_closed: bool,
}

impl Splitter {
    pub fn new(format: Format) -> Splitter {
        Splitter {
            format,
            buf: Vec::new(),
            in_quotes: false,
            start_line: 1,
            lines: 0,
            skipping: false,
            at_start: true,
            field_start: true,
            just_closed: false,
        }
    }

    /// Feed a chunk; complete records are pushed to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Record>) {
        if self.at_start && !chunk.is_empty() {
            let mut seen = self.buf.clone();
            seen.extend_from_slice(chunk);
            if seen.len() < 3 && [0xEF, 0xBB, 0xBF].starts_with(&seen) {
                // A chunk too short to tell; keep it (rare: only with tiny first chunks).
                self.buf.extend_from_slice(chunk);
                return;
            }
            self.at_start = false;
            if !self.buf.is_empty() {
                let mut joined = std::mem::take(&mut self.buf);
                joined.extend_from_slice(chunk);
                let rest = joined
                    .strip_prefix(&[0xEF, 0xBB, 0xBF][..])
                    .unwrap_or(&joined);
                let rest = rest.to_vec();
                return self.feed(&rest, out);
            }
            chunk = chunk.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(chunk);
        }
        for &b in chunk {
            if b == b'\n' {
                self.lines += 1;
                if !self.in_quotes {
                    self.finish(out);
                    continue;
                }
            }
            if self.skipping {
                continue;
            }
            if self.format == Format::Csv {
                // A quote opens a field only at its start (or re-opens right after a closing
                // quote: an escaped `""`); a stray quote inside an unquoted field is left to
                // the field parser, which rejects that one row.
                let closed_now = self.in_quotes && b == b'"';
                if closed_now {
                    self.in_quotes = false;
                } else if b == b'"' && (self.field_start || self.just_closed) {
                    self.in_quotes = true;
                }
                self.just_closed = closed_now;
                self.field_start = !self.in_quotes && b == b',';
            }
            if self.buf.len() >= MAX_RECORD_BYTES {
                out.push(Record::TooLong {
                    line: self.start_line,
                });
                self.buf.clear();
                self.skipping = true;
                // A runaway quote must not swallow the rest of the file.
                self.in_quotes = false;
                continue;
            }
            self.buf.push(b);
        }
    }

    /// The input ended: flush the last record (a file need not end with a line break).
    pub fn end(&mut self, out: &mut Vec<Record>) {
        self.in_quotes = false;
        self.finish(out);
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        self.field_start = true;
        self.just_closed = false;
        let start = self.start_line;
        self.start_line = self.lines + 1;
        if self.skipping {
            self.skipping = false;
            self.buf.clear();
            return;
        }
        let mut bytes = std::mem::take(&mut self.buf);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        out.push(Record::Line { line: start, bytes });
    }
}

/// Split one complete CSV record into fields.
pub fn csv_fields(record: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = record.chars().peekable();
    let mut quoted = false;
    let mut field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && field_start {
            quoted = true;
            field_start = false;
        } else if c == '"' {
            return Err("a `\"` in the middle of an unquoted field: put the whole field in quotes and double the `\"` inside it".into());
        } else if c == ',' {
            fields.push(std::mem::take(&mut cur));
            field_start = true;
        } else {
            cur.push(c);
            field_start = false;
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// One subject as a list gives it, before validation.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawSubject {
    pub subject_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub site_user_id: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    /// `"sms;email"` in CSV; a list or such a string in NDJSON.
    #[serde(default, deserialize_with = "channels_field")]
    pub channels: Option<String>,
    /// The jurisdiction the person is affected in (`CN`, `SG`): the incident's
    /// `by_jurisdiction` counts follow the list.
    #[serde(default)]
    pub jurisdiction: Option<String>,
}

fn channels_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::One(s)) => Some(s),
        Some(Either::Many(v)) => Some(v.join(";")),
    })
}

/// The columns a CSV header may name.
pub const COLUMNS: [&str; 8] = [
    "subject_id",
    "name",
    "phone",
    "email",
    "site_user_id",
    "locale",
    "channels",
    "jurisdiction",
];

/// A CSV header: which column holds which field.
#[derive(Debug, Clone)]
pub struct Header {
    index: [Option<usize>; 8],
    width: usize,
}

impl Header {
    pub fn parse(record: &str) -> Result<Header, String> {
        let names = csv_fields(record)?;
        let mut index = [None; 8];
        for (i, n) in names.iter().enumerate() {
            let n = n.trim().to_ascii_lowercase();
            match COLUMNS.iter().position(|c| *c == n) {
                Some(k) if index[k].is_some() => {
                    return Err(format!("the header names `{n}` twice"));
                }
                Some(k) => index[k] = Some(i),
                None => {
                    return Err(format!(
                        "the header names an unknown column `{n}`; the columns are {}",
                        COLUMNS.join(", ")
                    ));
                }
            }
        }
        if index[0].is_none() {
            return Err(format!(
                "the header has no `subject_id` column; the first line must name the columns, e.g. {}",
                COLUMNS.join(",")
            ));
        }
        Ok(Header {
            index,
            width: names.len(),
        })
    }

    pub fn subject(&self, record: &str) -> Result<RawSubject, String> {
        let f = csv_fields(record)?;
        if f.len() != self.width {
            return Err(format!(
                "{} fields, but the header names {}",
                f.len(),
                self.width
            ));
        }
        let get = |k: usize| {
            self.index[k]
                .map(|i| f[i].trim().to_string())
                .filter(|s| !s.is_empty())
        };
        Ok(RawSubject {
            subject_id: get(0).unwrap_or_default(),
            name: get(1),
            phone: get(2),
            email: get(3),
            site_user_id: get(4),
            locale: get(5),
            channels: get(6),
            jurisdiction: get(7),
        })
    }
}

/// `text` with every `` `…` `` span replaced by `…`.
fn without_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for ch in text.chars() {
        if ch == '`' {
            if !inside {
                out.push('…');
            }
            inside = !inside;
        } else if !inside {
            out.push(ch);
        }
    }
    out
}

/// Parse one NDJSON line.
pub fn ndjson_subject(line: &str) -> Result<RawSubject, String> {
    let de = &mut serde_json::Deserializer::from_str(line);
    serde_path_to_error::deserialize::<_, RawSubject>(de).map_err(|e| {
        let path = e.path().to_string();
        // serde quotes the offending value between backticks: it may be a phone number or an
        // address, and reports are stored and shown, so leave it out.
        let inner = without_quoted(&e.into_inner().to_string());
        if path == "." || path.is_empty() {
            format!("not a subject object: {inner}")
        } else {
            format!("{path}: {inner}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(format: Format, chunks: &[&[u8]]) -> Vec<Record> {
        let mut s = Splitter::new(format);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut out);
        }
        s.end(&mut out);
        out
    }

    fn line(line: u64, s: &str) -> Record {
        Record::Line {
            line,
            bytes: s.as_bytes().to_vec(),
        }
    }

    #[test]
    fn records_cross_chunk_boundaries_and_keep_their_line_numbers() {
        let text = "\u{feff}subject_id,name\r\nu1,\"Li, Lei\"\n\nu2,\"two\nlines\"\nu3,x";
        let bytes = text.as_bytes();
        // Every split point gives the same records.
        for cut in 0..bytes.len() {
            let got = split(Format::Csv, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(
                got,
                vec![
                    line(1, "subject_id,name"),
                    line(2, "u1,\"Li, Lei\""),
                    line(4, "u2,\"two\nlines\""),
                    line(6, "u3,x"),
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_stray_quote_spoils_one_row_not_the_rest() {
        let got = split(
            Format::Csv,
            &[b"a,Screen 5\" TV\nb,\"say \"\"hi\"\"\"\nc,x\n"],
        );
        assert_eq!(
            got,
            vec![
                line(1, "a,Screen 5\" TV"),
                line(2, "b,\"say \"\"hi\"\"\""),
                line(3, "c,x"),
            ]
        );
        assert!(csv_fields("a,Screen 5\" TV").is_err());
        assert_eq!(
            csv_fields("b,\"say \"\"hi\"\"\"").unwrap(),
            ["b", "say \"hi\""]
        );
    }

    #[test]
    fn a_bom_split_over_tiny_chunks_is_still_skipped() {
        let got = split(Format::Csv, &[b"\xEF", b"\xBB", b"\xBFsubject_id\nu1\n"]);
        assert_eq!(got, vec![line(1, "subject_id"), line(2, "u1")]);
    }

    #[test]
    fn ndjson_errors_never_echo_values() {
        let e = ndjson_subject(r#"{"subject_id":"u1","phone":8613800000000}"#).unwrap_err();
        assert!(e.starts_with("phone:"), "{e}");
        assert!(!e.contains("8613800000000"), "{e}");
    }

    #[test]
    fn over_long_records_are_reported_and_skipped() {
        let long = "x".repeat(MAX_RECORD_BYTES + 10);
        let text = format!("a\n\"{long}\nb\nc\n");
        let got = split(Format::Csv, &[text.as_bytes()]);
        assert_eq!(got[0], line(1, "a"));
        assert_eq!(got[1], Record::TooLong { line: 2 });
        // The runaway quote does not swallow what follows.
        assert_eq!(got[2..], [line(3, "b"), line(4, "c")]);
    }

    #[test]
    fn csv_fields_follow_rfc_4180() {
        assert_eq!(
            csv_fields("a,,\"b,\"\"c\"\"\"").unwrap(),
            ["a", "", "b,\"c\""]
        );
        assert!(csv_fields("a,\"b").unwrap_err().contains("not closed"));
        assert!(csv_fields("a,b\"c").unwrap_err().contains("quotes"));
    }

    #[test]
    fn headers_name_known_columns_only() {
        let h = Header::parse("Subject_ID,phone,channels").unwrap();
        let s = h.subject("u1, +8613800000000 ,sms;voice").unwrap();
        assert_eq!(s.subject_id, "u1");
        assert_eq!(s.phone.as_deref(), Some("+8613800000000"));
        assert_eq!(s.channels.as_deref(), Some("sms;voice"));
        assert!(h.subject("u1,x").unwrap_err().contains("2 fields"));
        assert!(
            Header::parse("subject_id,mobile")
                .unwrap_err()
                .contains("unknown column `mobile`")
        );
        assert!(Header::parse("name").unwrap_err().contains("subject_id"));
    }

    #[test]
    fn ndjson_refuses_unknown_fields_with_their_name() {
        let s = ndjson_subject(r#"{"subject_id":"u1","channels":["sms","email"]}"#).unwrap();
        assert_eq!(s.channels.as_deref(), Some("sms;email"));
        let e = ndjson_subject(r#"{"subject_id":"u1","mobile":"1"}"#).unwrap_err();
        assert!(e.contains("mobile"), "{e}");
        let e = ndjson_subject(r#"{"subject_id":7}"#).unwrap_err();
        assert!(e.contains("subject_id"), "{e}");
    }

    #[test]
    fn formats_from_content_types_and_file_names() {
        assert_eq!(Format::detect("text/csv; charset=utf-8"), Some(Format::Csv));
        assert_eq!(Format::detect("application/x-ndjson"), Some(Format::Ndjson));
        assert_eq!(Format::detect("subjects.JSONL"), Some(Format::Ndjson));
        assert_eq!(Format::detect("application/json"), None);
    }
}
