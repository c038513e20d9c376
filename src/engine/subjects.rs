//! Importing affected people into an incident: a streamed list, checked row by row, sealed,
//! and written in batches while the rest of the body is still arriving.
//!
//! Good rows are kept whatever else the file holds; bad rows are reported with their line and
//! reason. A subject already on the incident is updated (never duplicated); a subject id
//! repeated within one file keeps its first row and reports the others. Every batch commits on
//! its own, so an import cut short (the client went away, the daemon stopped) keeps what it
//! wrote and says where it stopped. At the end the incident's `affected_subjects` fact is
//! raised to the number of subjects held (it may already be larger: an estimate), and, for a
//! list with a `jurisdiction` column, each `by_jurisdiction.<code>.affected_subjects` to the
//! subjects held there.

use std::collections::{BTreeMap, HashMap};

use axum::body::Body;
use chrono::Utc;
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::{Engine, EngineError};
use crate::domain::classify::Rules;
use crate::domain::time::to_micros;
use crate::store::NewEvent;
use crate::subjects::crypto::KeyRing;
use crate::subjects::parse::{self, Format, Header, Record, Splitter};
use crate::subjects::{self as subj, ValidSubject};

/// Problems listed in a report at most (the counts are always complete).
pub const MAX_PROBLEMS: usize = 1000;

/// One rejected row or warning.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportProblem {
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    /// `rejected` (the row was not kept) or `warning` (kept).
    pub kind: &'static str,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub import_id: i64,
    pub incident_id: i64,
    pub format: String,
    /// `done`, or `interrupted` when the body ended early (what was written is kept).
    pub status: String,
    /// Records read (header and blank lines not counted).
    pub rows: u64,
    /// Rows kept: new subjects plus updated ones.
    pub accepted: u64,
    pub inserted: u64,
    pub updated: u64,
    pub rejected: u64,
    pub warnings: u64,
    /// Accepted rows reachable on each channel.
    pub reachable: BTreeMap<String, u64>,
    /// Accepted rows with no channel at all.
    pub unreachable: u64,
    /// The first problems, by line.
    pub problems: Vec<ImportProblem>,
    pub problems_truncated: bool,
    /// Subjects the incident holds after this import.
    pub subjects_total: i64,
    /// SHA-256 over the accepted subject ids, in order: the audit trail keeps this, not them.
    pub subject_ids_sha256: String,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ImportReport {
    fn problem(
        &mut self,
        line: u64,
        subject_id: Option<String>,
        kind: &'static str,
        reason: String,
    ) {
        if kind == "rejected" {
            self.rejected += 1;
        } else {
            self.warnings += 1;
        }
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(ImportProblem {
                line,
                subject_id,
                kind,
                reason,
            });
        } else {
            self.problems_truncated = true;
        }
    }
}

/// What an import needs from the live configuration.
pub struct ImportCtx<'a> {
    pub keys: Option<std::sync::Arc<KeyRing>>,
    /// Locales the notice templates are written in.
    pub locales: Vec<String>,
    pub default_locale: &'a str,
    /// Where a phone number without a country code is read.
    pub region: Option<crate::domain::message::Region>,
    pub batch: usize,
    pub rules: &'a Rules,
}

struct Batch {
    rows: Vec<(u64, ValidSubject)>,
}

impl Engine {
    /// Import a subject list from a request body.
    pub async fn import_subjects(
        &self,
        incident_id: i64,
        format: Format,
        body: Body,
        ctx: &ImportCtx<'_>,
        actor: &str,
    ) -> Result<ImportReport, EngineError> {
        let keys = ctx.keys.clone().ok_or_else(|| {
            EngineError::Conflict(
                "no contact encryption key is configured, so subjects cannot be stored: set [subjects] key_file (make a key with `incidentd subjects keygen`)".into(),
            )
        })?;
        let started = std::time::Instant::now();
        let import_id = self.start_import(incident_id, format, actor).await?;
        let mut report = ImportReport {
            import_id,
            incident_id,
            format: format.as_str().to_string(),
            ..Default::default()
        };
        let (to_writer, writer) = spawn_writer(self.store().clone(), keys, incident_id, import_id);
        let read_result = read_body(format, body, ctx, &mut report, to_writer).await;
        let w = writer.await.unwrap_or_else(|e| WriterState {
            error: Some(format!("the subject writer failed: {e}")),
            ..Default::default()
        });
        let refused = report.settle(w, &read_result);
        report.subjects_total = self.store().subject_count(incident_id).await?;
        report.seconds = started.elapsed().as_secs_f64();

        self.finish_import(&report, actor).await?;
        if refused {
            return Err(EngineError::invalid(
                "body",
                report.error.clone().unwrap_or_default(),
            ));
        }
        self.campaigns.notify_one();
        let total = report.subjects_total.max(0) as u64;
        if let Some(patch) = self.counts_patch(incident_id, total).await? {
            self.update_facts(incident_id, patch, ctx.rules, actor)
                .await?;
        }
        metrics::counter!("incidentd_subjects_imported_total", "outcome" => "accepted")
            .increment(report.accepted);
        metrics::counter!("incidentd_subjects_imported_total", "outcome" => "rejected")
            .increment(report.rejected);
        Ok(report)
    }
}

impl Engine {
    /// Check that the incident takes subjects (it exists and is not closed) and open the
    /// import's row.
    async fn start_import(
        &self,
        incident_id: i64,
        format: Format,
        actor: &str,
    ) -> Result<i64, EngineError> {
        let inc =
            self.store().incident(incident_id).await?.ok_or_else(|| {
                EngineError::NotFound(format!("there is no incident {incident_id}"))
            })?;
        if inc.status == crate::domain::incident::Status::Closed {
            return Err(EngineError::Conflict(format!(
                "incident {incident_id} is closed: reopen it before importing subjects"
            )));
        }
        let mut tx = self.store().begin_write().await?;
        let import_id = tx
            .create_import(incident_id, actor, format.as_str(), to_micros(Utc::now()))
            .await?;
        tx.commit().await?;
        Ok(import_id)
    }

    /// Close the import's row with its report, and audit it; a campaign waiting for subjects
    /// resumes when some were accepted.
    async fn finish_import(&self, report: &ImportReport, actor: &str) -> Result<(), EngineError> {
        let (import_id, incident_id) = (report.import_id, report.incident_id);
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        tx.finish_import(
            import_id,
            &report.status,
            &serde_json::to_string(&report).unwrap_or_default(),
            to_micros(now),
        )
        .await?;
        tx.append(&[NewEvent::new(
            now,
            actor,
            "subjects.imported",
            Some(incident_id),
            &json!({
                "import_id": import_id,
                "format": report.format,
                "status": report.status,
                "rows": report.rows,
                "inserted": report.inserted,
                "updated": report.updated,
                "rejected": report.rejected,
                "warnings": report.warnings,
                "reachable": report.reachable,
                "unreachable": report.unreachable,
                "subjects_total": report.subjects_total,
                "subject_ids_sha256": report.subject_ids_sha256,
            }),
        )])
        .await?;
        if report.accepted > 0 {
            tx.resume_campaigns(incident_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The writer: seals and writes batches while the reader parses the next ones, on a task of
/// its own so that the two use both cores.
fn spawn_writer(
    store: crate::store::Store,
    keys: std::sync::Arc<KeyRing>,
    incident_id: i64,
    import_id: i64,
) -> (mpsc::Sender<Batch>, tokio::task::JoinHandle<WriterState>) {
    let (to_writer, mut batches) = mpsc::channel::<Batch>(2);
    let writer = tokio::spawn(async move {
        let mut w = WriterState::default();
        while let Some(b) = batches.recv().await {
            if let Err(e) = w.write(&store, &keys, incident_id, import_id, b).await {
                w.error = Some(e);
                break;
            }
        }
        // Drain so the reader never blocks on a writer that stopped.
        while batches.recv().await.is_some() {}
        w
    });
    (to_writer, writer)
}

impl ImportReport {
    /// Take in what the writer did and how reading ended; set the status. True when nothing
    /// was read at all (a bad header, a file that is not UTF-8 or empty): the import is refused.
    fn settle(&mut self, w: WriterState, read_result: &Result<(), String>) -> bool {
        self.inserted = w.inserted;
        self.updated = w.updated;
        self.accepted = w.inserted + w.updated;
        self.unreachable = w.unreachable;
        self.reachable = w.reachable;
        for (line, id) in w.duplicates {
            self.problem(
                line,
                Some(id),
                "rejected",
                "duplicate subject_id: an earlier row of this import has it; the first row is kept"
                    .into(),
            );
        }
        if w.more_duplicates > 0 {
            self.rejected += w.more_duplicates;
            self.problems_truncated = true;
        }
        self.problems.sort_by_key(|p| p.line);
        self.subject_ids_sha256 = hex::encode(w.hash.finish().as_ref());
        let interrupted = match (read_result, &w.error) {
            (_, Some(e)) => Some(format!("writing subjects failed: {e}")),
            (Err(e), None) => Some(e.clone()),
            _ => None,
        };
        // Nothing read at all (a bad header, a file that is not UTF-8 or empty): refused.
        let refused = self.rows == 0 && read_result.is_err();
        self.status = if refused {
            "refused"
        } else if interrupted.is_some() {
            "interrupted"
        } else {
            "done"
        }
        .into();
        self.error = interrupted;
        refused
    }
}

impl Engine {
    /// The facts change that makes the counts follow the subjects held: each jurisdiction's
    /// count raised to the subjects the list puts there, the total to every subject held.
    /// `None` when the facts already say as much (counts may be larger: estimates).
    async fn counts_patch(
        &self,
        incident_id: i64,
        total: u64,
    ) -> Result<Option<serde_json::Value>, EngineError> {
        let Some(inc) = self.store().incident(incident_id).await? else {
            return Ok(None);
        };
        let mut per = serde_json::Map::new();
        for (code, n) in self
            .store()
            .subject_counts_by_jurisdiction(incident_id)
            .await?
        {
            let Ok(j) = code.parse::<crate::domain::facts::Jurisdiction>() else {
                continue;
            };
            let n = n.max(0) as u64;
            let mine = inc
                .facts
                .by_jurisdiction
                .get(&j)
                .cloned()
                .unwrap_or_default();
            if mine.affected_subjects.is_none_or(|have| have < n) {
                let mut entry = serde_json::to_value(&mine).unwrap_or_else(|_| json!({}));
                entry["affected_subjects"] = json!(n);
                per.insert(j.as_str().to_string(), entry);
            }
        }
        let mut patch = serde_json::Map::new();
        if !per.is_empty() {
            patch.insert("by_jurisdiction".into(), serde_json::Value::Object(per));
        }
        // The total the change would leave (a derived total follows the counts), raised to
        // every subject held when that is more.
        let after = inc
            .facts
            .apply_patch(&serde_json::Value::Object(patch.clone()))
            .map(|f| f.affected_subjects)
            .unwrap_or(inc.facts.affected_subjects);
        if after.is_none_or(|n| n < total) {
            patch.insert("affected_subjects".into(), json!(total));
        }
        Ok((!patch.is_empty()).then_some(serde_json::Value::Object(patch)))
    }
}

#[derive(Default)]
struct WriterState {
    inserted: u64,
    updated: u64,
    unreachable: u64,
    reachable: BTreeMap<String, u64>,
    /// The first duplicates (line, id), then only a count: memory stays bounded.
    duplicates: Vec<(u64, String)>,
    more_duplicates: u64,
    hash: HashState,
    error: Option<String>,
}

struct HashState(aws_lc_rs::digest::Context);

impl Default for HashState {
    fn default() -> Self {
        HashState(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
    }
}

impl HashState {
    fn finish(self) -> aws_lc_rs::digest::Digest {
        self.0.finish()
    }
}

impl WriterState {
    async fn write(
        &mut self,
        store: &crate::store::Store,
        keys: &KeyRing,
        incident_id: i64,
        import_id: i64,
        b: Batch,
    ) -> Result<(), String> {
        let sealed: Vec<_> = b
            .rows
            .iter()
            .map(|(_, s)| subj::seal(keys, incident_id, s))
            .collect();
        let mut tx = store.begin_write().await.map_err(|e| e.to_string())?;
        let written = tx
            .upsert_subjects(incident_id, import_id, &sealed, to_micros(Utc::now()))
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        let by_id: HashMap<&str, bool> = written.iter().map(|(s, i)| (s.as_str(), *i)).collect();
        for (line, s) in &b.rows {
            match by_id.get(s.subject_id.as_str()) {
                Some(inserted) => {
                    if *inserted {
                        self.inserted += 1;
                    } else {
                        self.updated += 1;
                    }
                    if s.channels.is_empty() {
                        self.unreachable += 1;
                    }
                    for c in &s.channels {
                        *self.reachable.entry(c.as_str().to_string()).or_default() += 1;
                    }
                    self.hash.0.update(s.subject_id.as_bytes());
                    self.hash.0.update(b"\n");
                }
                None if self.duplicates.len() < MAX_PROBLEMS => {
                    self.duplicates.push((*line, s.subject_id.clone()))
                }
                None => self.more_duplicates += 1,
            }
        }
        Ok(())
    }
}

/// Read, parse and check the body, sending batches of good rows to the writer. `Err` when the
/// body broke off (what was read so far is still written).
async fn read_body(
    format: Format,
    mut body: Body,
    ctx: &ImportCtx<'_>,
    report: &mut ImportReport,
    to_writer: mpsc::Sender<Batch>,
) -> Result<(), String> {
    let rules = subj::Rules {
        locales: &ctx.locales,
        default_locale: ctx.default_locale,
        region: ctx.region,
    };
    let mut splitter = Splitter::new(format);
    let mut header: Option<Header> = None;
    let mut records = Vec::new();
    let mut filling = Filling::new(ctx.batch);
    let mut ended = false;
    let mut outcome = Ok(());
    while !ended {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    splitter.feed(&data, &mut records);
                }
            }
            Some(Err(e)) => {
                outcome = Err(format!(
                    "the upload broke off after line {}: {e}",
                    report.rows + 1
                ));
                ended = true;
            }
            None => {
                splitter.end(&mut records);
                ended = true;
            }
        }
        for r in records.drain(..) {
            let (line, raw, row) = match r {
                Record::Unreadable { line, reason } => {
                    unreadable(format, header.is_none(), line, reason, report)?;
                    continue;
                }
                Record::NotUtf8 { line } => {
                    unreadable(
                        format,
                        header.is_none(),
                        line,
                        parse::NOT_UTF8.into(),
                        report,
                    )?;
                    continue;
                }
                Record::Fields { line, fields } => match &header {
                    None => {
                        header = Some(
                            Header::parse(&fields)
                                .map_err(|e| format!("line {line} (the header): {e}"))?,
                        );
                        continue;
                    }
                    Some(h) => (line, h.subject(&fields), Row::Csv(fields)),
                },
                Record::Line { line, text } => {
                    (line, parse::ndjson_subject(&text), Row::Json(text))
                }
            };
            report.rows += 1;
            let valid = raw.and_then(|r| subj::validate(r, &rules));
            match valid {
                Err(reason) => {
                    let id = row.subject_id(header.as_ref());
                    report.problem(line, id, "rejected", reason);
                }
                Ok(s) => {
                    if let Some(full) = filling.add(line, s, report)
                        && to_writer.send(full).await.is_err()
                    {
                        return Err("the writer stopped".into());
                    }
                }
            }
        }
    }
    if !filling.rows.is_empty() {
        let _ = to_writer.send(Batch { rows: filling.rows }).await;
    }
    if format == Format::Csv && header.is_none() && outcome.is_ok() {
        return Err("the file is empty: the first line must name the columns, e.g. subject_id,name,phone,email,site_user_id,locale,channels,jurisdiction".into());
    }
    outcome
}

/// A record that could not be read is a rejected row; in a CSV file's header, it refuses the
/// import.
fn unreadable(
    format: Format,
    in_header: bool,
    line: u64,
    reason: String,
    report: &mut ImportReport,
) -> Result<(), String> {
    if format == Format::Csv && in_header {
        return Err(format!("line {line} (the header): {reason}"));
    }
    report.rows += 1;
    report.problem(line, None, "rejected", reason);
    Ok(())
}

/// The batch being filled, and the subject ids in it: a repeat within one statement is not
/// allowed.
struct Filling {
    rows: Vec<(u64, ValidSubject)>,
    ids: HashMap<String, u64>,
    size: usize,
}

impl Filling {
    fn new(size: usize) -> Filling {
        Filling {
            rows: Vec::with_capacity(size),
            ids: HashMap::new(),
            size,
        }
    }

    /// Add a checked row, or report it as a repeat within the batch; the batch when this row
    /// filled it.
    fn add(&mut self, line: u64, s: ValidSubject, report: &mut ImportReport) -> Option<Batch> {
        if let Some(first) = self.ids.get(&s.subject_id) {
            report.problem(
                line,
                Some(s.subject_id.clone()),
                "rejected",
                format!("duplicate subject_id: line {first} has it; the first row is kept"),
            );
            return None;
        }
        for w in &s.warnings {
            report.problem(line, Some(s.subject_id.clone()), "warning", w.clone());
        }
        self.ids.insert(s.subject_id.clone(), line);
        self.rows.push((line, s));
        if self.rows.len() < self.size {
            return None;
        }
        self.ids.clear();
        let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(self.size));
        Some(Batch { rows })
    }
}

/// A record as read, kept until its row is checked.
enum Row {
    Csv(Vec<String>),
    Json(String),
}

impl Row {
    /// The subject id of a rejected row, when it can be read, so the report can name it.
    fn subject_id(&self, header: Option<&Header>) -> Option<String> {
        let id = match self {
            Row::Csv(fields) => header?.subject_id(fields)?.to_string(),
            Row::Json(text) => serde_json::from_str::<serde_json::Value>(text)
                .ok()?
                .get("subject_id")?
                .as_str()?
                .to_string(),
        };
        (!id.is_empty() && id.len() <= 128).then_some(id)
    }
}

impl Engine {
    /// Purge the contacts of every incident closed longer ago than `retention`. The audit trail
    /// records how many subjects were purged and a hash of what was removed, never a contact.
    /// Returns the incidents purged.
    pub async fn purge_expired_subjects(
        &self,
        retention: std::time::Duration,
    ) -> Result<Vec<i64>, EngineError> {
        let now = Utc::now();
        let before = to_micros(now) - retention.as_micros() as i64;
        let ids = self.store().incidents_to_purge(before).await?;
        for id in &ids {
            let mut tx = self.store().begin_write().await?;
            let (count, sha256) = tx.purge_subjects(*id, to_micros(now)).await?;
            tx.append(&[NewEvent::new(
                now,
                "incidentd",
                "subjects.purged",
                Some(*id),
                &json!({
                    "subjects": count,
                    "sha256": sha256,
                    "retention_secs": retention.as_secs(),
                }),
            )])
            .await?;
            tx.commit().await?;
            tracing::info!(
                incident = id,
                subjects = count,
                "purged affected people's contact data after the retention period"
            );
        }
        Ok(ids)
    }
}
