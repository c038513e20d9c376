//! Streaming parsers for subject lists: bytes arrive in chunks of any size, records come out
//! one at a time with the line they started on. Memory holds one record, never the file.
//!
//! * CSV (RFC 4180 with a header row), tokenised by `csv-core`'s push parser: `,` between
//!   fields, `"` around fields that hold `,`, `"` (doubled) or line breaks; `\r\n`, `\n` or
//!   `\r` line ends; blank lines skipped. A `"` inside an unquoted field is kept as written, as
//!   spreadsheets do.
//! * NDJSON: one JSON object per line; blank lines are skipped.
//!
//! A UTF-8 byte-order mark is skipped. Text must be UTF-8. A record that is not is reported
//! (with a hint for GBK/GB18030 exports, the usual culprit for Chinese names) and the rest of
//! the file goes on.

use serde::Deserialize;

use crate::domain::string_enum;

/// Longest record accepted; longer ones are reported and skipped.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;

/// What a record that cannot be read says.
pub const NOT_UTF8: &str = "this line is not UTF-8 text; the file may have been saved as GBK/GB18030 (common for Chinese spreadsheets): save it as UTF-8, e.g. `iconv -f GB18030 -t UTF-8 subjects.csv > subjects-utf8.csv`";

const BOM: &[u8] = b"\xEF\xBB\xBF";

string_enum! {
    /// How an upload of affected people is written.
    Format {
        Csv => "csv",
        Ndjson => "ndjson",
    } what = "a subjects file format"
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
}

/// A complete record, or why one could not be had. `line` is the line it started on (1-based).
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    /// One NDJSON line.
    Line { line: u64, text: String },
    /// One CSV record's fields, unquoted.
    Fields { line: u64, fields: Vec<String> },
    /// A record that is not UTF-8 text ([`NOT_UTF8`]).
    NotUtf8 { line: u64 },
    /// A record that cannot be read, and why.
    Unreadable { line: u64, reason: String },
}

impl Record {
    fn too_long(line: u64) -> Record {
        Record::Unreadable {
            line,
            reason: format!("the row is longer than {MAX_RECORD_BYTES} bytes"),
        }
    }
}

/// Cuts a byte stream into records.
#[derive(Debug)]
pub struct Splitter {
    /// The first bytes, held until a byte-order mark can be told apart.
    head: Option<Vec<u8>>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Csv(Box<CsvSplitter>),
    Lines(LineSplitter),
}

impl Splitter {
    pub fn new(format: Format) -> Splitter {
        Splitter {
            head: Some(Vec::new()),
            kind: match format {
                Format::Csv => Kind::Csv(Box::default()),
                Format::Ndjson => Kind::Lines(LineSplitter::default()),
            },
        }
    }

    /// Feed a chunk; complete records are pushed to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Record>) {
        match self.head.take() {
            None => self.pass(chunk, out),
            Some(mut head) => {
                head.extend_from_slice(chunk);
                if head.len() < BOM.len() && BOM.starts_with(&head) {
                    // Too short to tell (only with tiny first chunks).
                    self.head = Some(head);
                } else {
                    self.pass(head.strip_prefix(BOM).unwrap_or(&head), out);
                }
            }
        }
    }

    /// The input ended: flush the last record (a file need not end with a line break).
    pub fn end(&mut self, out: &mut Vec<Record>) {
        if let Some(head) = self.head.take() {
            self.pass(&head, out);
        }
        match &mut self.kind {
            Kind::Csv(c) => c.end(out),
            Kind::Lines(l) => l.end(out),
        }
    }

    fn pass(&mut self, bytes: &[u8], out: &mut Vec<Record>) {
        match &mut self.kind {
            Kind::Csv(c) => c.feed(bytes, out),
            Kind::Lines(l) => l.feed(bytes, out),
        }
    }
}

/// CSV records through `csv-core`, which keeps its place between chunks. What is ours: the
/// line each record starts on, the length limit (a runaway quote must not swallow the file),
/// and UTF-8.
#[derive(Debug)]
struct CsvSplitter {
    reader: csv_core::Reader,
    /// The current record's unquoted bytes, and where each field ends in them.
    output: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    /// Raw bytes of the current record consumed so far.
    taken: usize,
    /// Line breaks consumed so far.
    lines: u64,
    /// Line the current record started on.
    start_line: u64,
    /// Skipping the rest of an over-long record, up to the next line break.
    skipping: bool,
}

impl Default for CsvSplitter {
    fn default() -> Self {
        CsvSplitter {
            reader: csv_core::Reader::new(),
            output: vec![0; MAX_RECORD_BYTES + 1],
            out_len: 0,
            ends: vec![0; 16],
            ends_len: 0,
            taken: 0,
            lines: 0,
            start_line: 1,
            skipping: false,
        }
    }
}

impl CsvSplitter {
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<Record>) {
        while !input.is_empty() {
            if self.skipping {
                match input.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.lines += 1;
                        self.skipping = false;
                        input = &input[i + 1..];
                    }
                    None => return,
                }
                continue;
            }
            if self.taken == 0 {
                // Between records: line ends (blank lines, the `\n` of a `\r\n`) are ours to
                // count, so the record's first line is known.
                let blank = input
                    .iter()
                    .position(|&b| b != b'\n' && b != b'\r')
                    .unwrap_or(input.len());
                self.lines += count_lines(&input[..blank]);
                input = &input[blank..];
                if input.is_empty() {
                    return;
                }
                self.start_line = self.lines + 1;
            }
            // Never more than the limit allows, so an over-long record is noticed at it.
            let room = MAX_RECORD_BYTES + 1 - self.taken;
            let piece = &input[..input.len().min(room)];
            let (res, nin) = self.step(piece);
            self.lines += count_lines(&piece[..nin]);
            self.taken += nin;
            input = &input[nin..];
            match res {
                csv_core::ReadRecordResult::Record => self.emit(out),
                csv_core::ReadRecordResult::InputEmpty if self.taken <= MAX_RECORD_BYTES => {}
                _ => {
                    out.push(Record::too_long(self.start_line));
                    self.restart();
                    self.reader.reset();
                    // The rest of its line goes too, unless the limit fell on its end.
                    self.skipping = nin == 0 || piece[nin - 1] != b'\n';
                }
            }
        }
    }

    /// One call to the parser, growing the field index when a record has many fields.
    fn step(&mut self, input: &[u8]) -> (csv_core::ReadRecordResult, usize) {
        let mut consumed = 0;
        loop {
            let (res, nin, nout, nend) = self.reader.read_record(
                &input[consumed..],
                &mut self.output[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            consumed += nin;
            self.out_len += nout;
            self.ends_len += nend;
            match res {
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len();
                    self.ends.resize(n * 2, 0);
                }
                // Unquoted bytes never outnumber raw ones, and those are limited: the output
                // holds the limit, so it cannot fill before the limit is noticed.
                res => return (res, consumed),
            }
        }
    }

    fn end(&mut self, out: &mut Vec<Record>) {
        if self.skipping || self.taken == 0 {
            return;
        }
        // A line break settles whether the file ended inside a quoted field: outside one it
        // ends the record, inside one it is taken into the field. (The output has room: it
        // holds one byte more than the limit on raw bytes.)
        match self.step(b"\n").0 {
            csv_core::ReadRecordResult::Record => self.emit(out),
            _ => {
                out.push(Record::Unreadable {
                    line: self.start_line,
                    reason: "a quoted field is not closed: a `\"` opens it and none ends it before the end of the file".into(),
                });
                self.restart();
            }
        }
    }

    fn emit(&mut self, out: &mut Vec<Record>) {
        let line = self.start_line;
        let record = &self.output[..self.out_len];
        let mut fields = Vec::with_capacity(self.ends_len);
        let mut start = 0;
        let mut utf8 = true;
        for &end in &self.ends[..self.ends_len] {
            match std::str::from_utf8(&record[start..end]) {
                Ok(f) => fields.push(f.to_string()),
                Err(_) => utf8 = false,
            }
            start = end;
        }
        self.restart();
        if !utf8 {
            out.push(Record::NotUtf8 { line });
        } else if !(fields.len() == 1 && fields[0].trim().is_empty()) {
            out.push(Record::Fields { line, fields });
        }
    }

    /// Ready for the next record.
    fn restart(&mut self) {
        self.out_len = 0;
        self.ends_len = 0;
        self.taken = 0;
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// NDJSON lines.
#[derive(Debug)]
struct LineSplitter {
    buf: Vec<u8>,
    /// Line the current record started on (1-based).
    start_line: u64,
    /// Lines seen so far.
    lines: u64,
    /// Skipping the rest of an over-long line.
    skipping: bool,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter {
            buf: Vec::new(),
            start_line: 1,
            lines: 0,
            skipping: false,
        }
    }
}

impl LineSplitter {
    fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Record>) {
        while !chunk.is_empty() {
            let (part, rest, ended) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], &chunk[i + 1..], true),
                None => (chunk, &chunk[chunk.len()..], false),
            };
            if !self.skipping {
                if self.buf.len() + part.len() > MAX_RECORD_BYTES {
                    out.push(Record::too_long(self.start_line));
                    self.buf.clear();
                    self.skipping = true;
                } else {
                    self.buf.extend_from_slice(part);
                }
            }
            if ended {
                self.lines += 1;
                self.finish(out);
            }
            chunk = rest;
        }
    }

    fn end(&mut self, out: &mut Vec<Record>) {
        self.finish(out);
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        let line = self.start_line;
        self.start_line = self.lines + 1;
        if std::mem::take(&mut self.skipping) {
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
        out.push(match String::from_utf8(bytes) {
            Ok(text) => Record::Line { line, text },
            Err(_) => Record::NotUtf8 { line },
        });
    }
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
    pub fn parse(names: &[String]) -> Result<Header, String> {
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

    pub fn subject(&self, f: &[String]) -> Result<RawSubject, String> {
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

    /// The row's subject id, when it has one (so a rejected row can be named).
    pub fn subject_id<'f>(&self, f: &'f [String]) -> Option<&'f str> {
        self.index[0]
            .and_then(|i| f.get(i))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
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

    fn rec(line: u64, fields: &[&str]) -> Record {
        Record::Fields {
            line,
            fields: fields.iter().map(|f| f.to_string()).collect(),
        }
    }

    fn strings(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn records_cross_chunk_boundaries_and_keep_their_line_numbers() {
        let text = "\u{feff}subject_id,name\r\nu1,\"Li, Lei\"\n\n  \nu2,\"two\nlines\"\r\nu3,x";
        let bytes = text.as_bytes();
        let want = vec![
            rec(1, &["subject_id", "name"]),
            rec(2, &["u1", "Li, Lei"]),
            rec(5, &["u2", "two\nlines"]),
            rec(7, &["u3", "x"]),
        ];
        // Every split point gives the same records, and so do single bytes.
        for cut in 0..bytes.len() {
            let got = split(Format::Csv, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(got, want, "cut at {cut}");
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(split(Format::Csv, &bytewise), want);
    }

    #[test]
    fn ndjson_lines_keep_their_line_numbers() {
        let got = split(
            Format::Ndjson,
            &[b"\xEF\xBB\xBF{\"a\":1}\r\n\n {\"b\"", b":2}\n\xc0\xee\n{}"],
        );
        let line = |line, text: &str| Record::Line {
            line,
            text: text.into(),
        };
        assert_eq!(
            got,
            vec![
                line(1, "{\"a\":1}"),
                line(3, " {\"b\":2}"),
                Record::NotUtf8 { line: 4 },
                line(5, "{}"),
            ]
        );
    }

    #[test]
    fn quotes_follow_rfc_4180_and_a_stray_one_is_kept_as_written() {
        let got = split(
            Format::Csv,
            &[b"a,Screen 5\" TV\nb,\"say \"\"hi\"\"\"\nc,,\"b,\"\"c\"\"\"\n"],
        );
        assert_eq!(
            got,
            vec![
                rec(1, &["a", "Screen 5\" TV"]),
                rec(2, &["b", "say \"hi\""]),
                rec(3, &["c", "", "b,\"c\""]),
            ]
        );
    }

    #[test]
    fn a_quoted_field_left_open_at_the_end_is_reported() {
        let got = split(Format::Csv, &[b"a,b\nc,\"d\ne"]);
        assert_eq!(got[0], rec(1, &["a", "b"]));
        match &got[1] {
            Record::Unreadable { line: 2, reason } => assert!(reason.contains("not closed")),
            other => panic!("{other:?}"),
        }
        assert_eq!(got.len(), 2);
        // Closed just before the end: fine.
        assert_eq!(split(Format::Csv, &[b"c,\"d\""]), vec![rec(1, &["c", "d"])]);
    }

    #[test]
    fn rows_that_are_not_utf8_are_named_and_the_rest_go_on() {
        let got = split(Format::Csv, &[b"u9,\xc0\xee\xcb\xc4\nu10,x\n"]);
        assert_eq!(
            got,
            vec![Record::NotUtf8 { line: 1 }, rec(2, &["u10", "x"])]
        );
    }

    #[test]
    fn a_bom_split_over_tiny_chunks_is_still_skipped() {
        let got = split(Format::Csv, &[b"\xEF", b"\xBB", b"\xBFsubject_id\nu1\n"]);
        assert_eq!(got, vec![rec(1, &["subject_id"]), rec(2, &["u1"])]);
        assert_eq!(
            split(Format::Csv, &[b"\xEF\xBB"]),
            vec![Record::NotUtf8 { line: 1 }]
        );
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
        for format in [Format::Csv, Format::Ndjson] {
            let got = split(format, &[text.as_bytes()]);
            assert_eq!(got.len(), 4, "{format:?}: {got:?}");
            assert!(
                matches!(&got[1], Record::Unreadable { line: 2, reason } if reason.contains("longer than")),
                "{got:?}"
            );
        }
        let got = split(Format::Csv, &[text.as_bytes()]);
        assert_eq!(got[0], rec(1, &["a"]));
        // The runaway quote does not swallow what follows.
        assert_eq!(got[2..], [rec(3, &["b"]), rec(4, &["c"])]);
        // A row just within the limit is read.
        let fits = format!("{}\nb\n", "y".repeat(MAX_RECORD_BYTES));
        let got = split(Format::Csv, &[fits.as_bytes()]);
        assert_eq!(got.len(), 2, "{:?}", &got[1..]);
        assert_eq!(got[1], rec(2, &["b"]));
    }

    #[test]
    fn headers_name_known_columns_only() {
        let h = Header::parse(&strings(&["Subject_ID", "phone", "channels"])).unwrap();
        let row = strings(&["u1", " +8613800000000 ", "sms;voice"]);
        let s = h.subject(&row).unwrap();
        assert_eq!(s.subject_id, "u1");
        assert_eq!(h.subject_id(&row), Some("u1"));
        assert_eq!(s.phone.as_deref(), Some("+8613800000000"));
        assert_eq!(s.channels.as_deref(), Some("sms;voice"));
        assert!(
            h.subject(&strings(&["u1", "x"]))
                .unwrap_err()
                .contains("2 fields")
        );
        assert!(
            Header::parse(&strings(&["subject_id", "mobile"]))
                .unwrap_err()
                .contains("unknown column `mobile`")
        );
        assert!(
            Header::parse(&strings(&["name"]))
                .unwrap_err()
                .contains("subject_id")
        );
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
