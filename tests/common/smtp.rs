//! A real SMTP server process for tests: `incidentd sink` (this build's binary) keeps every
//! message it accepts, and [`Smtp::messages`] reads them back as a mail client sees them,
//! parsed with the `mail-parser` crate.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mail_parser::{Address, MessageParser, MimeHeaders, PartType};
use serde_json::{Value, json};

/// A running `incidentd sink`; killed when dropped.
pub struct Smtp {
    child: Child,
    pub port: u16,
    /// The sink's HTTP side (SMS and voice), `127.0.0.1:<port>`.
    pub http: String,
    dir: tempfile::TempDir,
}

impl Smtp {
    pub fn start() -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let mut child = spawn_sink(dir.path());
        let (smtp, http) = listening(&mut child);
        let port = smtp.rsplit(':').next().unwrap().parse().unwrap();
        Smtp {
            child,
            port,
            http,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every message the server accepted, in order, as JSON: peer, mail_from, rcpt_tos and size
    /// (the envelope), subject (RFC 2047 decoded), from, to, message_id, date, delivery
    /// (X-Incidentd-Delivery), content_type, parts (content types of the leaf parts), text and
    /// html (the decoded bodies of the text/plain and text/html parts, or null), raw.
    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && p.file_name().is_some_and(|n| {
                        n.to_string_lossy()
                            .starts_with(|c: char| c.is_ascii_digit())
                    })
            })
            .collect();
        files.sort();
        files.iter().map(|p| read_message(p)).collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped: a test that fails leaves no sink behind (the sink
/// never reads its standard input, so it does not notice its parent going).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `incidentd sink` on free ports, keeping messages in `dir`.
pub fn spawn_sink(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_incidentd"))
        .args([
            "sink",
            "--smtp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--out",
        ])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the sink's `SMTP <addr>` and `HTTP <addr>` lines; its further output is drained.
pub fn listening(child: &mut Child) -> (String, String) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = |what: &str| match lines.next() {
        Some(Ok(l)) if l.starts_with(what) => l[what.len()..].trim().to_string(),
        other => {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("incidentd sink did not print `{what}<address>` (got {other:?}):\n{err}")
        }
    };
    let smtp = next("SMTP ");
    let http = next("HTTP ");
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    std::thread::spawn(move || std::io::copy(&mut BufReader::new(stderr), &mut std::io::sink()));
    (smtp, http)
}

/// One kept message (`<n>.json`, its envelope, beside `<n>.eml`), parsed.
fn read_message(meta_path: &Path) -> Value {
    let mut record: Value = serde_json::from_slice(&std::fs::read(meta_path).unwrap()).unwrap();
    let raw = std::fs::read(meta_path.with_extension("eml")).unwrap();
    let parsed = parse(&raw);
    record
        .as_object_mut()
        .unwrap()
        .extend(parsed.as_object().unwrap().clone());
    record
}

/// What a mail client shows of a message.
pub fn parse(raw: &[u8]) -> Value {
    let msg = MessageParser::default()
        .parse(raw)
        .unwrap_or_else(|| panic!("not a message:\n{}", String::from_utf8_lossy(raw)));
    let header = |name: &'static str| msg.header_raw(name).map(unfold);
    let mut parts = Vec::new();
    let (mut text, mut html) = (None, None);
    leaves(&msg, &mut |part| {
        let ctype = content_type(part);
        let attachment = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
        match &part.body {
            PartType::Text(t) if ctype == "text/plain" && !attachment && text.is_none() => {
                text = Some(t.to_string());
            }
            PartType::Html(h) if ctype == "text/html" && !attachment && html.is_none() => {
                html = Some(h.to_string());
            }
            _ => {}
        }
        parts.push(ctype);
    });
    json!({
        "subject": msg.subject(),
        "from": msg.from().map(addresses),
        "to": msg.to().map(addresses),
        "message_id": header("Message-ID"),
        "date": header("Date"),
        "delivery": header("X-Incidentd-Delivery"),
        "content_type": content_type(msg.root_part()),
        "parts": parts,
        "text": text,
        "html": html,
        "raw": String::from_utf8_lossy(raw),
    })
}

/// Calls `f` on every part that is not a container, in the order they appear, going into
/// attached messages.
fn leaves<'a>(
    msg: &'a mail_parser::Message<'a>,
    f: &mut dyn FnMut(&'a mail_parser::MessagePart<'a>),
) {
    for part in &msg.parts {
        match &part.body {
            PartType::Multipart(_) => {}
            PartType::Message(inner) => leaves(inner, f),
            _ => f(part),
        }
    }
}

/// `type/subtype`, lower case; text/plain when the part names none.
fn content_type(part: &mail_parser::MessagePart) -> String {
    part.content_type().map_or("text/plain".into(), |c| {
        format!("{}/{}", c.ctype(), c.subtype().unwrap_or("plain")).to_ascii_lowercase()
    })
}

/// An address header as a mail client writes it: `Name <addr>, addr`, a display name with
/// specials in quotes.
fn addresses(a: &Address) -> String {
    let one = |a: &mail_parser::Addr| {
        let addr = a.address().unwrap_or_default();
        match a.name() {
            Some(name) if !name.is_empty() => {
                let name = if name.contains([
                    '(', ')', '<', '>', '@', ',', ':', ';', '.', '"', '[', ']', '\\',
                ]) {
                    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
                } else {
                    name.to_string()
                };
                format!("{name} <{addr}>")
            }
            _ => addr.to_string(),
        }
    };
    match a {
        Address::List(list) => list.iter().map(one).collect::<Vec<_>>().join(", "),
        Address::Group(groups) => groups
            .iter()
            .map(|g| {
                let members: Vec<String> = g.addresses.iter().map(one).collect();
                format!(
                    "{}: {};",
                    g.name.as_deref().unwrap_or_default(),
                    members.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A header's value as one line (RFC 5322 unfolding), without the blanks around it.
fn unfold(raw: &str) -> String {
    raw.replace("\r\n", "").replace('\n', "").trim().to_string()
}
