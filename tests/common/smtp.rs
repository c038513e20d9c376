//! A real SMTP server process for tests (tests/support/smtp_sink.py): every message it accepts
//! is written as JSON (subject, text, html, …) and read back with [`Smtp::messages`].
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const PYTHON_ENV: &str = "INCIDENTD_TEST_PYTHON";

/// A running smtp_sink.py; killed when dropped.
pub struct Smtp {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Smtp {
    pub fn start() -> Smtp {
        let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("--out")
            .arg(dir.path())
            .args(["--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{python}` ({e}). The e-mail tests need Python 3 for their SMTP \
                     server: install it (Debian: apt-get install python3; on Python 3.12 or \
                     newer also python3-aiosmtpd or `pip install aiosmtpd`), or name an \
                     interpreter in {PYTHON_ENV}"
                )
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "{} exited before listening (see its error above); on Python 3.12 or newer \
                     install aiosmtpd (apt-get install python3-aiosmtpd or pip install aiosmtpd)",
                    script.display()
                )
            });
        Smtp { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message the server accepted, in order.
    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
