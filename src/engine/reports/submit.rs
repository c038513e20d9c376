//! Submitting an approved report version: by e-mail or webhook through the outbox, or recorded
//! as submitted by hand with the regulator's reference.

use super::*;

impl Engine {
    /// Submit an approved version: by e-mail or webhook through the outbox (in this
    /// transaction), or recorded as submitted by hand. By hand it meets the obligation; through
    /// the outbox, the channel accepting it does ([`super::outcomes`]).
    pub async fn submit_report(
        &self,
        incident_id: i64,
        rid: i64,
        r: SubmitRequest,
        ctx: &ReportCtx<'_>,
        actor: &str,
    ) -> Result<ReportView, EngineError> {
        let now = Utc::now();
        let (via, reference, at) = submission_of(&r, now)?;
        let mut tx = self.store().begin_write().await?;
        let (inc, row) = incident_report(&mut tx, incident_id, rid).await?;
        must_be_approved(&row, ctx)?;
        let ob = report_obligation(&mut tx, incident_id, &row.obligation_key).await?;
        let late_reason = no_blank(r.late_reason.clone()).or(row.late_reason.clone());
        let late = check_late(&ob, at, late_reason.as_deref())?;
        let regulator = row
            .recipient
            .as_deref()
            .and_then(|id| ctx.regulators.iter().find(|g| g.id == id));
        let delivery_key = if via == "manual" {
            None
        } else {
            Some(
                enqueue_submission(
                    &mut tx,
                    &inc,
                    &row,
                    via,
                    regulator,
                    late_reason.as_deref(),
                    now,
                )
                .await?,
            )
        };
        tx.mark_report_submitted(
            rid,
            &Submission {
                at: to_micros(at),
                by: actor,
                via,
                reference: reference.as_deref(),
                delivery_key: delivery_key.as_deref(),
                late_reason: late_reason.as_deref(),
                now: to_micros(now),
            },
        )
        .await?;
        // By hand, the regulator's reference is the outcome; through the outbox, the
        // regulator's channel accepting it is (super::outcomes meets it then).
        let met_ref = format!("report:{rid}");
        let met = via == "manual"
            && tx
                .meet_obligation(
                    incident_id,
                    &ob.key,
                    to_micros(at),
                    actor,
                    &met_ref,
                    if late { late_reason.as_deref() } else { None },
                )
                .await?;
        let recipient_name = recipient_name(&row, regulator, ctx);
        let mut events = Vec::new();
        if met {
            events.push(crate::engine::obligations::met_event(
                incident_id,
                &ob.key,
                actor,
                &met_ref,
                if late { late_reason.as_deref() } else { None },
                ob.due_at.map(from_micros),
                at,
            ));
        }
        events.push(NewEvent::new(
            now,
            actor,
            "report.submitted",
            Some(incident_id),
            &json!({
                "report_id": rid, "obligation": ob.key, "report": row.report, "version": row.version,
                "via": via, "reference": reference, "submitted_at": at, "late": late,
                "late_reason": late_reason, "recipient": row.recipient, "recipient_name": recipient_name,
                "delivery_key": delivery_key, "content_hash": row.content_hash, "drill": inc.drill,
                "obligation_met": met,
                "detail": if via == "manual" { "recorded as submitted by hand: the obligation is met" } else { "queued: the obligation is met when the regulator's channel accepts it" },
            }),
        ));
        tx.append(&events).await?;
        let row = tx
            .report(rid)
            .await?
            .ok_or_else(|| EngineError::Failed("the report just submitted is gone".into()))?;
        tx.commit().await?;
        Ok(ReportView::of(&row, false))
    }
}

/// The incident and its report `rid`.
async fn incident_report(
    tx: &mut WriteTx,
    incident_id: i64,
    rid: i64,
) -> Result<(Incident, ReportRow), EngineError> {
    let inc = tx
        .incident(incident_id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("there is no incident {incident_id}")))?;
    let row = tx
        .report(rid)
        .await?
        .filter(|x| x.incident_id == incident_id)
        .ok_or_else(|| {
            EngineError::NotFound(format!("incident {incident_id} has no report {rid}"))
        })?;
    Ok((inc, row))
}

/// The regulator's name: from `[[regulators]]`, or as the jurisdiction's pack names it.
fn recipient_name(
    row: &ReportRow,
    regulator: Option<&crate::config::RegulatorConfig>,
    ctx: &ReportCtx<'_>,
) -> Option<String> {
    regulator.map(|g| g.name.clone()).or_else(|| {
        let code = row.jurisdiction.parse().ok()?;
        let pack = ctx.packs.get(&code)?;
        Some(pack.recipient_name(row.recipient.as_deref()?))
    })
}

/// Whether a submission at `at` is late for the obligation; a late one must give the reasons
/// for the delay.
fn check_late(
    ob: &crate::store::ObligationRow,
    at: DateTime<Utc>,
    late_reason: Option<&str>,
) -> Result<bool, EngineError> {
    let late = ob.due_at.is_some_and(|d| to_micros(at) > d);
    if late && late_reason.is_none() {
        return Err(EngineError::invalid(
            "late_reason",
            format!(
                "`{}` was due {}; a report submitted after its deadline gives the reasons for the delay",
                ob.key,
                ob.due_at
                    .map(from_micros)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(late)
}

/// Only an approved version is submitted: a submitted one is immutable, a draft waits for its
/// approvers, any other is superseded.
pub(super) fn must_be_approved(row: &ReportRow, ctx: &ReportCtx<'_>) -> Result<(), EngineError> {
    let rid = row.id;
    match row.status.as_str() {
        "approved" => {}
        "submitted" => {
            return Err(EngineError::Conflict(format!(
                "report {rid} (version {}) was submitted {} via {}: it is immutable",
                row.version,
                row.submitted_at
                    .map(from_micros)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                row.via.as_deref().unwrap_or("?")
            )));
        }
        "draft" => {
            return Err(EngineError::Conflict(format!(
                "report {rid} waits for its approval (task {}) by {}: approve it first (POST /api/v1/approvals/{}/approve)",
                row.task_id.unwrap_or_default(),
                ctx.approvers.join(" and "),
                row.task_id.unwrap_or_default()
            )));
        }
        other => {
            return Err(EngineError::Conflict(format!(
                "report {rid} is {other}: draft a new version and have it approved"
            )));
        }
    }
    Ok(())
}

/// What a submission request says — how (`email`, `webhook`, `manual`), the regulator's
/// reference and when — checked: by hand needs the reference and the time, never in the future.
pub(super) fn submission_of(
    r: &SubmitRequest,
    now: DateTime<Utc>,
) -> Result<(&str, Option<String>, DateTime<Utc>), EngineError> {
    let via = r.via.trim();
    if !matches!(via, "email" | "webhook" | "manual") {
        return Err(EngineError::invalid(
            "via",
            format!(
                "`{via}`: submit by email, webhook or manual (by hand, with the reference the regulator gave)"
            ),
        ));
    }
    let reference = no_blank(r.reference.clone());
    if via == "manual" && (reference.is_none() || r.submitted_at.is_none()) {
        return Err(EngineError::invalid(
            if reference.is_none() {
                "reference"
            } else {
                "submitted_at"
            },
            "a report submitted by hand (portal, hotline 12387) is recorded with the regulator's reference and the time it was submitted: give `reference` and `submitted_at`",
        ));
    }
    let at = if via == "manual" {
        r.submitted_at.unwrap_or(now)
    } else {
        now
    };
    if at > now + crate::domain::time::MAX_SKEW {
        return Err(EngineError::invalid(
            "submitted_at",
            "is in the future: give the time it was submitted",
        ));
    }
    Ok((via, reference, at))
}

/// Queue an approved report for its regulator by e-mail or webhook (a drill's to its capture
/// recipient, marked as a drill); the delivery's key.
pub(super) async fn enqueue_submission(
    tx: &mut WriteTx,
    inc: &Incident,
    row: &ReportRow,
    via: &str,
    regulator: Option<&RegulatorConfig>,
    late_reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, EngineError> {
    let rid = row.id;
    let Some(g) = regulator else {
        return Err(EngineError::Conflict(format!(
            "no [[regulators]] entry has id `{}`: add one with its email or webhook, or submit by hand (via manual, with the reference)",
            row.recipient.as_deref().unwrap_or("(none)")
        )));
    };
    let (channel, recipient) = match via {
        "email" => (ChannelKind::Email, g.email.clone()),
        _ => (ChannelKind::Webhook, g.webhook.clone()),
    };
    let Some(mut recipient) = recipient else {
        return Err(EngineError::Conflict(format!(
            "regulator `{}` has no {via} address in [[regulators]]; it can be reached by: {}",
            g.id,
            g.routes()
        )));
    };
    let mut subject = row.subject.clone();
    // A scenario drill's report goes to the drill's capture recipient, never to the
    // regulator (a drill declared by hand keeps the address: the drill guard refuses it).
    if inc.drill {
        if let Some(capture) = crate::engine::drills::report_capture(tx, inc.id, channel).await? {
            recipient = capture.ok_or_else(|| {
                EngineError::Conflict(format!(
                    "this drill's scenario has no capture {via} recipient: a drill report never goes to the regulator; add [capture] {} to the scenario or submit by hand (via manual)",
                    if channel == ChannelKind::Email { "email" } else { "webhook" }
                ))
            })?;
        }
        if !subject.contains("DRILL") {
            subject = format!("{} {subject}", crate::engine::drills::DRILL_MARK);
        }
    }
    let key = format!("{}:report:{rid}:{}", inc.id, channel.as_str());
    tx.enqueue_deliveries(
        &[NewDelivery {
            idempotency_key: key.clone(),
            incident_id: Some(inc.id),
            purpose: Purpose::Report,
            channel,
            recipient,
            locale: row.locale.clone(),
            content: Content {
                subject: Some(subject),
                text: row.markdown.clone(),
                html: Some(row.html.clone()),
                template: None,
                params: Default::default(),
                data: Some(json!({
                    "title": row.subject, "report_id": rid, "version": row.version,
                    "obligation": row.obligation_key, "jurisdiction": row.jurisdiction,
                    "report": row.report, "report_kind": row.report_kind,
                    "recipient": row.recipient, "content_hash": row.content_hash,
                    "incident_id": inc.id, "late_reason": late_reason,
                })),
            },
            fallback: Vec::new(),
            fallback_of: None,
        }],
        to_micros(now),
    )
    .await?;
    Ok(key)
}
