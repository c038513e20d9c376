//! Whole SMTP dialogues with the sink over an in-memory pipe.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::watch;

use super::super::out::Out;
use super::*;

struct Client {
    reader: BufReader<tokio::io::ReadHalf<DuplexStream>>,
    writer: tokio::io::WriteHalf<DuplexStream>,
}

impl Client {
    /// A connection to a fresh session keeping its messages in `dir`; its greeting is read.
    async fn connect(dir: &std::path::Path) -> (Client, watch::Sender<bool>) {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let out = Arc::new(Out::open(Some(dir), false).unwrap());
        let (stop_tx, stop) = watch::channel(false);
        let peer = "127.0.0.1:4000".parse().unwrap();
        tokio::spawn(connection(theirs, peer, out, stop));
        let (r, w) = tokio::io::split(ours);
        let mut c = Client {
            reader: BufReader::new(r),
            writer: w,
        };
        assert!(c.reply().await.starts_with("220 "));
        (c, stop_tx)
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// One reply, its lines joined with `|`; empty when the server closed.
    async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await.unwrap() == 0 {
                return lines.join("|");
            }
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("|");
            }
        }
    }

    async fn code(&mut self, command: &str) -> String {
        self.send(format!("{command}\r\n").as_bytes()).await;
        self.reply().await[..3].to_string()
    }
}

#[tokio::test]
async fn two_messages_on_one_connection_are_unstuffed_and_kept_before_their_250() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _stop) = Client::connect(dir.path()).await;
    let ehlo = {
        c.send(b"EHLO client.example\r\n").await;
        c.reply().await
    };
    assert!(ehlo.contains("250-SIZE 26214400"), "{ehlo}");
    assert!(ehlo.contains("PIPELINING"), "{ehlo}");
    for (n, body) in [(1, "first"), (2, "second")] {
        assert_eq!(c.code("MAIL FROM:<a@example.com>").await, "250");
        assert_eq!(c.code("RCPT TO:<b@example.org>").await, "250");
        assert_eq!(c.code("DATA").await, "354");
        c.send(format!("Subject: {body}\r\n\r\n..leading dot\r\n.\r\n").as_bytes())
            .await;
        let done = c.reply().await;
        assert_eq!(done, format!("250 2.0.0 Ok: queued as test-{n}"));
        // Kept before the answer: the files are there now.
        let eml = std::fs::read(dir.path().join(format!("00000{n}.eml"))).unwrap();
        assert_eq!(
            eml,
            format!("Subject: {body}\r\n\r\n.leading dot\r\n").as_bytes()
        );
        assert!(dir.path().join(format!("00000{n}.json")).exists());
    }
    assert_eq!(c.code("QUIT").await, "221");
    assert_eq!(c.reply().await, "", "closed after QUIT");
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _stop) = Client::connect(dir.path()).await;
    c.send(
        b"EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<reject@example.org>\r\n\
          RCPT TO:<tempfail@example.org>\r\nRCPT TO:<ok@example.org>\r\nDATA\r\n",
    )
    .await;
    let codes: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(c.reply().await[..3].to_string());
        }
        v
    };
    assert_eq!(codes, ["250", "250", "550", "451", "250", "354"]);
    c.send(b"hello\r\n.\r\n").await;
    assert!(c.reply().await.starts_with("250 "));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("000001.json")).unwrap()).unwrap();
    assert_eq!(meta["rcpt_tos"], serde_json::json!(["ok@example.org"]));
    assert_eq!(meta["mail_from"], "a@example.com");
}

#[tokio::test]
async fn a_long_command_line_is_refused_and_the_connection_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _stop) = Client::connect(dir.path()).await;
    let long = format!("EHLO {}", "x".repeat(600));
    assert_eq!(c.code(&long).await, "500");
    assert_eq!(c.code("NOOP").await, "250");
}

#[tokio::test]
async fn a_message_over_the_limit_is_refused_whole_and_the_next_one_taken() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _stop) = Client::connect(dir.path()).await;
    assert_eq!(c.code("HELO x").await, "250");
    assert_eq!(c.code("MAIL FROM:<a@example.com>").await, "250");
    assert_eq!(c.code("RCPT TO:<b@example.org>").await, "250");
    assert_eq!(c.code("DATA").await, "354");
    let line = format!("{}\r\n", "y".repeat(998));
    let lines = proto::MAX_MESSAGE / line.len() + 2;
    let writer = async {
        for _ in 0..lines {
            c.writer.write_all(line.as_bytes()).await.unwrap();
        }
        c.writer.write_all(b".\r\n").await.unwrap();
    };
    writer.await;
    assert!(c.reply().await.starts_with("552 5.3.4"));
    assert!(!dir.path().join("000001.eml").exists());
    assert_eq!(c.code("MAIL FROM:<a@example.com>").await, "250");
    assert_eq!(c.code("RCPT TO:<b@example.org>").await, "250");
    assert_eq!(c.code("DATA").await, "354");
    c.send(b"small\r\n.\r\n").await;
    assert_eq!(c.reply().await, "250 2.0.0 Ok: queued as test-1");
}

#[tokio::test]
async fn stopping_closes_a_waiting_connection_with_421() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, stop) = Client::connect(dir.path()).await;
    assert_eq!(c.code("EHLO x").await, "250");
    stop.send(true).unwrap();
    assert!(c.reply().await.starts_with("421 4.3.2"));
    assert_eq!(c.reply().await, "");
}
