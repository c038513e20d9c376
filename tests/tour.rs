//! The README's five-minute tour, run as the README writes it, against a daemon started on the
//! shipped configuration (`config/incidentd.toml`): every command of the tour's two blocks, in
//! order, read out of README.md itself, so the README and the daemon cannot drift apart.
//!
//! How the README's blocks are read:
//! * a command is a line (with its `\` continuations) starting with `incidentd `, `curl `, or
//!   `INCIDENTD_TOKEN=… incidentd `; `export INCIDENTD_TOKEN=…` sets the token for the commands
//!   after it; `alias` lines and `cargo run … serve` are skipped (the test started the daemon);
//! * a command whose trailing comment says `refused` must exit with a failure, every other one
//!   with 0;
//! * the comment lines right under a command that start with `#   ` are what it prints: each
//!   must appear in its output, in order, `…` standing for whatever varies (ids, hashes, times);
//!   under a `curl` command, `# <status> <json>` is the answer's status and exact body.
//!
//! What must differ from a person's terminal: the daemon's URL (`INCIDENTD_URL`, set by
//! `TestApp::cli`), and `--config config/incidentd.toml`, which becomes the test's own config.

use crate::common;

use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;

on_both_backends!(the_readme_five_minute_tour_runs_as_written);

/// One command of the tour: its line in README.md, its words, and what the README says of it.
#[derive(Debug)]
struct Step {
    line: usize,
    text: String,
    token: Option<String>,
    words: Vec<String>,
    refused: bool,
    prints: Vec<String>,
}

/// The five-minute tour's ```sh blocks, each as (first line number, lines).
fn tour_blocks() -> Vec<(usize, Vec<String>)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == "## Five-minute tour")
        .expect("README.md has a `## Five-minute tour` section");
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## "))
        .map_or(lines.len(), |i| start + 1 + i);
    let mut blocks = Vec::new();
    let mut current: Option<(usize, Vec<String>)> = None;
    for (i, l) in lines.iter().enumerate().take(end).skip(start) {
        match (&mut current, l.trim_end()) {
            (None, "```sh") => current = Some((i + 2, Vec::new())),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some((_, b)), _) => b.push((*l).to_string()),
            (None, _) => {}
        }
    }
    assert!(!blocks.is_empty(), "the tour has no ```sh block");
    blocks
}

/// The commands of one block, with the token each runs as.
fn steps(first_line: usize, block: &[String]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut token: Option<String> = None;
    let mut i = 0;
    while i < block.len() {
        let line = first_line + i;
        let mut text = block[i].clone();
        while text.ends_with('\\') && i + 1 < block.len() {
            i += 1;
            text.pop();
            text.push_str(block[i].trim_start());
        }
        i += 1;
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with("alias ") || trimmed.starts_with("cargo run ")
        {
            continue;
        }
        if let Some(out) = trimmed.strip_prefix("#   ") {
            let step = steps
                .last_mut()
                .unwrap_or_else(|| panic!("README.md:{line}: output before any command"));
            step.prints.push(out.trim().to_string());
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(t) = trimmed.strip_prefix("export INCIDENTD_TOKEN=") {
            token = Some(t.split_whitespace().next().unwrap().to_string());
            continue;
        }
        let comment = text.split_once(" # ").map(|c| c.1);
        let mut words = shlex::split(trimmed)
            .unwrap_or_else(|| panic!("README.md:{line}: cannot split `{trimmed}`"));
        let mut this_token = token.clone();
        if let Some(t) = words[0].strip_prefix("INCIDENTD_TOKEN=") {
            this_token = Some(t.to_string());
            words.remove(0);
        }
        assert!(
            words[0] == "incidentd" || words[0] == "curl",
            "README.md:{line}: the tour test does not know how to run `{trimmed}`; \
             teach tests/tour.rs or keep the tour to `incidentd` and `curl` commands"
        );
        steps.push(Step {
            line,
            text: trimmed.to_string(),
            token: this_token,
            words,
            refused: comment.is_some_and(|c| c.contains("refused")),
            prints: Vec::new(),
        });
    }
    steps
}

/// Each expected line's pieces between `…` appear in `output` in order.
fn assert_prints(step: &Step, output: &str) {
    let mut at = 0;
    for expected in &step.prints {
        for piece in expected.split('…').map(str::trim).filter(|p| !p.is_empty()) {
            match output[at..].find(piece) {
                Some(i) => at += i + piece.len(),
                None => panic!(
                    "README.md:{}: `{}` should print `{expected}` (missing `{piece}` in order); it printed:\n{output}",
                    step.line, step.text
                ),
            }
        }
    }
}

async fn run_cli(app: &TestApp, step: &Step) {
    let config = app.config_arg();
    let mut args: Vec<&str> = step.words[1..].iter().map(String::as_str).collect();
    for w in 1..args.len() {
        if args[w - 1] == "--config" && args[w] == "config/incidentd.toml" {
            args[w] = &config;
        }
    }
    let token = step.token.as_deref().unwrap_or("");
    let (code, out, err) = app.cli(token, &args).await;
    let output = format!("{out}{err}");
    eprintln!("$ {}\n{output}", step.text);
    if step.refused {
        assert_ne!(
            code, 0,
            "README.md:{}: `{}` should be refused:\n{output}",
            step.line, step.text
        );
    } else {
        assert_eq!(
            code, 0,
            "README.md:{}: `{}` failed:\n{output}",
            step.line, step.text
        );
    }
    assert_prints(step, &output);
}

/// `curl` as the tour writes it: `-s`, `-H 'Name: value'`, `-d BODY` (a POST), `-X METHOD`, one
/// URL at 127.0.0.1:8600, optionally piped to `grep WORD`.
async fn run_curl(app: &TestApp, step: &Step) {
    let (command, grep) = match step.words.iter().position(|w| w == "|") {
        Some(p) => {
            assert_eq!(step.words[p + 1], "grep", "README.md:{}", step.line);
            (&step.words[..p], Some(step.words[p + 2].clone()))
        }
        None => (&step.words[..], None),
    };
    let mut method = Method::GET;
    let mut req_headers = Vec::new();
    let mut body = None;
    let mut url = None;
    let mut w = command[1..].iter();
    while let Some(word) = w.next() {
        match word.as_str() {
            "-s" => {}
            "-H" => {
                let (k, v) = w.next().unwrap().split_once(':').unwrap();
                req_headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            "-d" => {
                body = Some(w.next().unwrap().clone());
                if method == Method::GET {
                    method = Method::POST;
                }
            }
            "-X" => method = w.next().unwrap().parse().unwrap(),
            u if u.starts_with("http://127.0.0.1:8600/") => {
                url = Some(app.url(&u["http://127.0.0.1:8600".len()..]));
            }
            other => panic!(
                "README.md:{}: the tour test does not know curl's `{other}`",
                step.line
            ),
        }
    }
    let mut req = app.http.request(method, url.unwrap());
    for (k, v) in req_headers {
        req = req.header(k, v);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    eprintln!("$ {}\n{status} {text}", step.text);
    if let Some(word) = grep {
        assert!(
            status.is_success(),
            "README.md:{}: {status} {text}",
            step.line
        );
        assert!(
            text.lines().any(|l| l.contains(&word)),
            "README.md:{}: no line with `{word}` in:\n{text}",
            step.line
        );
        return;
    }
    match step.prints.as_slice() {
        [] => assert_eq!(status, StatusCode::OK, "README.md:{}: {text}", step.line),
        [expected] => {
            let (code, json) = expected.split_once(' ').unwrap();
            assert_eq!(
                status.as_str(),
                code,
                "README.md:{}: `{}`: {text}",
                step.line,
                step.text
            );
            let want: Value = serde_json::from_str(json).unwrap();
            let got: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(got, want, "README.md:{}: `{}`", step.line, step.text);
        }
        more => panic!(
            "README.md:{}: a curl command shows one answer, not {more:?}",
            step.line
        ),
    }
}

async fn the_readme_five_minute_tour_runs_as_written(backend: Backend) {
    let blocks = tour_blocks();
    let Some(app) = TestApp::spawn_shipped(backend, |_| {}).await else {
        return;
    };
    let mut ran = 0;
    for (first_line, block) in &blocks {
        for step in steps(*first_line, block) {
            match step.words[0].as_str() {
                "curl" => run_curl(&app, &step).await,
                _ => run_cli(&app, &step).await,
            }
            ran += 1;
        }
    }
    assert!(ran >= 10, "the tour ran only {ran} commands");
    app.stop().await;
}
