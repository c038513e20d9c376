//! The SMTP dialogue of `incidentd sink`, without I/O: what each command line is answered, the
//! verdict on each recipient, and dot-unstuffing of the message lines.

use std::net::SocketAddr;

/// The server's name in its greeting and EHLO answer.
const NAME: &str = "incidentd-sink";
/// The largest message taken (advertised as SIZE); bigger ones get 552.
pub const MAX_MESSAGE: usize = 25 * 1024 * 1024;
/// RFC 5321 4.5.3.1.4: a command line, CRLF included.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 5321 4.5.3.1.8 asks servers to take at least 100.
const MAX_RECIPIENTS: usize = 1000;

pub const GREETING: &str =
    "220 incidentd-sink ESMTP incidentd sink (a trial sink: it keeps mail and delivers none)";
pub const LINE_TOO_LONG: &str = "500 5.5.2 Line too long (a command is at most 512 bytes)";
pub const TOO_BIG: &str = "552 5.3.4 Message too big (the limit is 26214400 bytes)";
pub const IDLE: &str = "421 4.4.2 incidentd-sink: idle too long, closing";
pub const SHUTTING_DOWN: &str = "421 4.3.2 incidentd-sink: shutting down";
const TEMPFAIL: &str = "451 4.3.0 Mailbox temporarily unavailable, try again later (test sink)";

/// What the connection does after a reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Read the next command.
    Command,
    /// Read the message lines up to the lone dot.
    Data,
    /// Close the connection.
    Close,
}

/// A message taken: the envelope with its content.
#[derive(Debug)]
pub struct Envelope {
    pub peer: SocketAddr,
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
}

/// One connection's state: who greeted, and the transaction under way.
#[derive(Debug)]
pub struct Session {
    peer: SocketAddr,
    greeted: bool,
    mail_from: Option<String>,
    rcpt_tos: Vec<String>,
}

impl Session {
    pub fn new(peer: SocketAddr) -> Self {
        Session {
            peer,
            greeted: false,
            mail_from: None,
            rcpt_tos: Vec::new(),
        }
    }

    /// The answer to one command line (without its line end), and what follows it.
    pub fn command(&mut self, line: &str) -> (String, Next) {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.trim();
        let reply = match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if arg.is_empty() => format!("501 5.5.4 Syntax: {verb} hostname"),
            "EHLO" => {
                self.greeted = true;
                self.reset();
                // Echoed back: nothing in it may end or split our reply.
                let arg: String = arg.chars().filter(|c| !c.is_control()).collect();
                format!(
                    "250-{NAME} greets {arg}\r\n250-SIZE {MAX_MESSAGE}\r\n250-8BITMIME\r\n\
                     250-SMTPUTF8\r\n250-PIPELINING\r\n250 HELP"
                )
            }
            "HELO" => {
                self.greeted = true;
                self.reset();
                format!("250 {NAME}")
            }
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => return self.data(arg),
            "RSET" => {
                self.reset();
                "250 2.0.0 OK".into()
            }
            "NOOP" => "250 2.0.0 OK".into(),
            "QUIT" => return ("221 2.0.0 Bye".into(), Next::Close),
            "VRFY" => "252 2.5.0 Cannot VRFY user, but will accept the message".into(),
            "HELP" => "214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP".into(),
            "STARTTLS" | "AUTH" | "BDAT" | "EXPN" | "ETRN" | "TURN" => {
                format!("502 5.5.1 {verb} not implemented (a trial sink)")
            }
            _ => "500 5.5.2 Command unrecognized".into(),
        };
        (reply, Next::Command)
    }

    /// The envelope of the message just read, ending the transaction.
    pub fn take(&mut self) -> Envelope {
        Envelope {
            peer: self.peer,
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_tos: std::mem::take(&mut self.rcpt_tos),
        }
    }

    pub fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_tos.clear();
    }

    fn mail(&mut self, arg: &str) -> String {
        if !self.greeted {
            return "503 5.5.1 Send EHLO or HELO first".into();
        }
        if self.mail_from.is_some() {
            return "503 5.5.1 Nested MAIL command".into();
        }
        let Some((from, params)) = strip_keyword(arg, "FROM:").and_then(path) else {
            return "501 5.5.4 Syntax: MAIL FROM:<address>".into();
        };
        let size = params.split_whitespace().find_map(|p| {
            p.get(..5)
                .filter(|k| k.eq_ignore_ascii_case("SIZE="))
                .map(|_| &p[5..])
        });
        if size
            .and_then(|s| s.parse::<usize>().ok())
            .is_some_and(|s| s > MAX_MESSAGE)
        {
            return TOO_BIG.into();
        }
        self.mail_from = Some(from);
        "250 2.1.0 OK".into()
    }

    fn rcpt(&mut self, arg: &str) -> String {
        if self.mail_from.is_none() {
            return "503 5.5.1 Need MAIL before RCPT".into();
        }
        let Some((to, _)) = strip_keyword(arg, "TO:")
            .and_then(path)
            .filter(|(a, _)| !a.is_empty())
        else {
            return "501 5.5.4 Syntax: RCPT TO:<address>".into();
        };
        if self.rcpt_tos.len() >= MAX_RECIPIENTS {
            return "452 4.5.3 Too many recipients".into();
        }
        match verdict(&to) {
            Some(refusal) => refusal,
            None => {
                self.rcpt_tos.push(to);
                "250 2.1.5 OK".into()
            }
        }
    }

    fn data(&mut self, arg: &str) -> (String, Next) {
        if !arg.is_empty() {
            return ("501 5.5.4 Syntax: DATA".into(), Next::Command);
        }
        if self.mail_from.is_none() {
            return ("503 5.5.1 Need MAIL before DATA".into(), Next::Command);
        }
        if self.rcpt_tos.is_empty() {
            return ("554 5.5.1 No valid recipients".into(), Next::Command);
        }
        ("354 End data with <CR><LF>.<CR><LF>".into(), Next::Data)
    }
}

/// `FROM:<a@b> SIZE=10` without `FROM:` (any case), spaces after the colon allowed.
fn strip_keyword<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let head = arg.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| arg[keyword.len()..].trim_start())
}

/// `<a@b> PARAMS` → (`a@b`, `PARAMS`); a source route (`<@x,@y:a@b>`) is dropped; `<>` is the
/// null sender. A path without angle brackets is taken up to the first space.
fn path(s: &str) -> Option<(String, &str)> {
    let (inner, rest) = match s.strip_prefix('<') {
        Some(r) => r.split_once('>')?,
        None => s.split_once(' ').unwrap_or((s, "")),
    };
    let inner = match inner.strip_prefix('@') {
        Some(_) => inner.split_once(':')?.1,
        None => inner,
    };
    (!inner.contains(char::is_whitespace)).then(|| (inner.to_string(), rest.trim()))
}

/// The refusal for a recipient, by its local part: `tempfail…` is a temporary failure (451),
/// `reject…` a permanent one (550); anyone else is taken (None).
pub fn verdict(address: &str) -> Option<String> {
    let local = address
        .rsplit_once('@')
        .map_or(address, |(l, _)| l)
        .to_ascii_lowercase();
    if local.starts_with("tempfail") {
        Some(TEMPFAIL.to_string())
    } else if local.starts_with("reject") {
        Some(format!(
            "550 5.1.1 <{address}>: Recipient address rejected: no such user (test sink)"
        ))
    } else {
        None
    }
}

/// One line of a message as it came (line end included): the end of the message (the lone
/// dot), or the line with a leading dot removed (RFC 5321 4.5.2).
pub fn unstuff(line: &[u8]) -> Option<&[u8]> {
    match line {
        b".\r\n" | b".\n" => None,
        [b'.', rest @ ..] => Some(rest),
        _ => Some(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let mut s = Session::new("127.0.0.1:4000".parse().unwrap());
        assert!(s.command("EHLO client.example").0.starts_with("250-"));
        s
    }

    fn code(reply: (String, Next)) -> String {
        reply.0[..3].to_string()
    }

    #[test]
    fn a_lone_dot_ends_the_message_and_a_leading_dot_is_removed() {
        assert_eq!(unstuff(b".\r\n"), None);
        assert_eq!(unstuff(b".\n"), None);
        assert_eq!(unstuff(b"..\r\n"), Some(&b".\r\n"[..]));
        assert_eq!(unstuff(b"..hidden\r\n"), Some(&b".hidden\r\n"[..]));
        assert_eq!(unstuff(b".x\r\n"), Some(&b"x\r\n"[..]));
        assert_eq!(unstuff(b"a.\r\n"), Some(&b"a.\r\n"[..]));
        assert_eq!(unstuff(b" .\r\n"), Some(&b" .\r\n"[..]));
    }

    #[test]
    fn recipients_are_answered_by_their_local_part() {
        assert_eq!(verdict("ok@example.org"), None);
        assert_eq!(verdict("not-tempfail@example.org"), None);
        assert!(
            verdict("tempfail-1@example.org")
                .unwrap()
                .starts_with("451 4.3.0")
        );
        assert!(
            verdict("TempFail@example.org")
                .unwrap()
                .starts_with("451 4.3.0")
        );
        let r = verdict("reject-me@example.org").unwrap();
        assert!(r.starts_with("550 5.1.1 <reject-me@example.org>"), "{r}");
        assert!(r.contains("Recipient address rejected"), "{r}");
        // The domain does not count, only the local part.
        assert_eq!(verdict("a@reject.example"), None);
    }

    #[test]
    fn a_transaction_collects_the_taken_recipients_only() {
        let mut s = session();
        assert_eq!(
            code(s.command("MAIL FROM:<security@example.com> BODY=8BITMIME")),
            "250"
        );
        assert_eq!(code(s.command("RCPT TO:<a@example.org>")), "250");
        assert_eq!(code(s.command("rcpt to: <tempfail@example.org>")), "451");
        assert_eq!(code(s.command("RCPT TO:<reject@example.org>")), "550");
        assert_eq!(
            code(s.command("RCPT TO:<@relay.example:b@example.org>")),
            "250"
        );
        assert_eq!(
            s.command("DATA"),
            ("354 End data with <CR><LF>.<CR><LF>".into(), Next::Data)
        );
        let e = s.take();
        assert_eq!(e.mail_from, "security@example.com");
        assert_eq!(e.rcpt_tos, ["a@example.org", "b@example.org"]);
        // The next transaction starts afresh on the same connection.
        assert_eq!(code(s.command("RCPT TO:<a@example.org>")), "503");
        assert_eq!(code(s.command("MAIL FROM:<>")), "250");
        assert_eq!(code(s.command("RSET")), "250");
        assert_eq!(code(s.command("DATA")), "503");
    }

    #[test]
    fn commands_out_of_order_or_malformed_are_refused() {
        let mut fresh = Session::new("127.0.0.1:4000".parse().unwrap());
        assert_eq!(code(fresh.command("MAIL FROM:<a@b>")), "503");
        assert_eq!(code(fresh.command("EHLO")), "501");
        let mut s = session();
        assert_eq!(code(s.command("MAIL TO:<a@b>")), "501");
        assert_eq!(code(s.command("MAIL FROM:<a@b")), "501");
        assert_eq!(code(s.command("MAIL FROM:<a@b>")), "250");
        assert_eq!(code(s.command("MAIL FROM:<a@b>")), "503");
        assert_eq!(code(s.command("RCPT TO:<>")), "501");
        assert_eq!(code(s.command("DATA")), "554");
        assert_eq!(code(s.command("RCPT TO:<c@d>")), "250");
        assert_eq!(code(s.command("DATA now")), "501");
        assert_eq!(code(s.command("STARTTLS")), "502");
        assert_eq!(code(s.command("FROB")), "500");
        assert_eq!(code(s.command("")), "500");
        assert_eq!(code(s.command("NOOP")), "250");
        let greeting = s.command("EHLO a\r\x1bb").0;
        assert!(
            greeting.starts_with("250-incidentd-sink greets ab\r\n"),
            "{greeting:?}"
        );
        assert_eq!(s.command("QUIT"), ("221 2.0.0 Bye".into(), Next::Close));
    }

    #[test]
    fn a_declared_size_over_the_limit_is_refused_before_the_message() {
        let mut s = session();
        let over = format!("MAIL FROM:<a@b> SIZE={}", MAX_MESSAGE + 1);
        assert_eq!(s.command(&over).0, TOO_BIG);
        assert!(TOO_BIG.contains(&MAX_MESSAGE.to_string()));
        assert_eq!(
            code(s.command(&format!("MAIL FROM:<a@b> size={MAX_MESSAGE}"))),
            "250"
        );
    }
}
