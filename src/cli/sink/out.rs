//! What `incidentd sink` keeps and shows: each message numbered, written to `--out` (each file
//! whole or not at all: a temporary name, then a rename) before it is acknowledged, and a line
//! on standard output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use serde_json::{Value, json};

use super::proto::Envelope;

/// The numbering and the folder (if any) of one sink.
#[derive(Debug)]
pub struct Out {
    dir: Option<PathBuf>,
    /// Print a line per message (not in unit tests, whose output this would clutter).
    show: bool,
    mail: AtomicU64,
    http: AtomicU64,
}

impl Out {
    /// Creates the folder if missing; numbering continues after the files it already holds, so
    /// a second run never overwrites the first one's.
    pub fn open(dir: Option<&Path>, show: bool) -> anyhow::Result<Out> {
        let (mail, http) = match dir {
            Some(d) => {
                std::fs::create_dir_all(d)
                    .with_context(|| format!("cannot create --out {}", d.display()))?;
                highest(d)?
            }
            None => (0, 0),
        };
        Ok(Out {
            dir: dir.map(Path::to_path_buf),
            show,
            mail: AtomicU64::new(mail),
            http: AtomicU64::new(http),
        })
    }

    /// Keeps one e-mail as `<n>.eml` (as it arrived) and `<n>.json` (its envelope), the JSON
    /// last: a reader that lists the JSON files finds each one's message complete.
    pub async fn mail(&self, envelope: &Envelope, raw: &[u8]) -> anyhow::Result<u64> {
        let n = self.mail.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(dir) = &self.dir {
            let meta = json!({
                "peer": envelope.peer.to_string(),
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "size": raw.len(),
                "received_at": chrono::Utc::now().to_rfc3339(),
            });
            write_whole(dir, &format!("{n:06}.eml"), raw).await?;
            write_whole(dir, &format!("{n:06}.json"), &pretty(&meta)).await?;
        }
        if !self.show {
            return Ok(n);
        }
        let subject = super::show::subject(raw).unwrap_or_else(|| "(no subject)".into());
        say(&format!(
            "mail {n} from <{}> to {}: {}",
            envelope.mail_from,
            envelope.rcpt_tos.join(", "),
            super::show::clip(&subject, 100)
        ));
        Ok(n)
    }

    /// Keeps one HTTP request as `http-<n>.json`.
    pub async fn http(&self, record: &Value) -> anyhow::Result<u64> {
        let n = self.http.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(dir) = &self.dir {
            write_whole(dir, &format!("http-{n:06}.json"), &pretty(record)).await?;
        }
        if !self.show {
            return Ok(n);
        }
        let body = &record["body"];
        let mut line = format!(
            "http {n} {} {}",
            record["method"].as_str().unwrap_or("?"),
            record["path"].as_str().unwrap_or("?")
        );
        if let Some(to) = body["to"].as_str() {
            line.push_str(&format!(" to {to}"));
        }
        if let Some(text) = body["text"].as_str() {
            line.push_str(&format!(": {}", super::show::clip(text, 100)));
        }
        say(&line);
        Ok(n)
    }

    /// How many of each were taken.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.mail.load(Ordering::SeqCst),
            self.http.load(Ordering::SeqCst),
        )
    }
}

/// One line on standard output, flushed at once (a reader may be waiting for it). A reader that
/// went away does not stop the sink.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Writes under a temporary name, then renames: the file is there whole or not at all.
async fn write_whole(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, bytes)
        .await
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    tokio::fs::rename(&tmp, &path)
        .await
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// The highest mail and HTTP numbers already in `dir`.
fn highest(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read --out {}", dir.display()))?;
    let (mut mail, mut http) = (0, 0);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        match stem.strip_prefix("http-") {
            Some(n) => http = http.max(n.parse().unwrap_or(0)),
            None => mail = mail.max(stem.parse().unwrap_or(0)),
        }
    }
    Ok((mail, http))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn numbering_goes_on_after_an_earlier_run_and_nothing_half_written_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let envelope = Envelope {
            peer: "127.0.0.1:4000".parse().unwrap(),
            mail_from: "a@example.com".into(),
            rcpt_tos: vec!["b@example.org".into()],
        };
        let out = Out::open(Some(dir.path()), false).unwrap();
        assert_eq!(
            out.mail(&envelope, b"Subject: one\r\n\r\nhi\r\n")
                .await
                .unwrap(),
            1
        );
        assert_eq!(out.http(&json!({"method": "POST"})).await.unwrap(), 1);
        let again = Out::open(Some(dir.path()), false).unwrap();
        assert_eq!(again.mail(&envelope, b"\r\n").await.unwrap(), 2);
        assert_eq!(again.http(&json!({})).await.unwrap(), 2);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "000001.eml",
                "000001.json",
                "000002.eml",
                "000002.json",
                "http-000001.json",
                "http-000002.json"
            ]
        );
        let meta: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("000001.json")).unwrap())
                .unwrap();
        assert_eq!(meta["rcpt_tos"], json!(["b@example.org"]));
        assert_eq!(meta["size"], 20);
    }
}
