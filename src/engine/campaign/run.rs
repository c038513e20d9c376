//! Running campaigns: starting one when its gate is approved (or recording individual notice
//! as impractical or not required), then enqueueing a batch of its people at a time, each
//! screened against what earlier campaigns of the incident already told them.

use super::*;
use chrono::DateTime;

impl Engine {
    /// Move every active campaign on: start the approved ones, enqueue a batch of each running
    /// one. Returns true if there is more to do right away.
    pub async fn run_campaigns(&self, ctx: &CampaignCtx<'_>) -> Result<bool, EngineError> {
        let mut more = false;
        for c in self.store().active_campaigns().await? {
            let r = match c.status.as_str() {
                "awaiting_approval" => self.maybe_start(&c, ctx).await,
                _ => self.enqueue_batch(&c, ctx).await,
            };
            match r {
                Ok(m) => more |= m,
                Err(EngineError::Unavailable(e)) => return Err(EngineError::Unavailable(e)),
                Err(e) => {
                    tracing::warn!(campaign = c.id, error = %e, "notice campaign cannot go on");
                    let mut tx = self.store().begin_write().await?;
                    tx.fail_campaign(c.id, &e.to_string()).await?;
                    tx.commit().await?;
                }
            }
        }
        Ok(more)
    }

    async fn maybe_start(
        &self,
        c: &CampaignRow,
        ctx: &CampaignCtx<'_>,
    ) -> Result<bool, EngineError> {
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let Some(c) = tx.campaign(c.id).await? else {
            return Ok(false);
        };
        if c.status != "awaiting_approval" {
            return Ok(true);
        }
        // Only notices reach affected people (campaigns asked for before this was checked at
        // creation included): anything else is cancelled, never sent.
        if !crate::render::is_notice(&c.template) {
            let why = format!(
                "`{}` is not a notice template (notice/…): campaigns send only notices",
                c.template
            );
            cancel(tx, &c, &why, now).await?;
            return Ok(false);
        }
        match approval_status(&mut tx, &c).await?.as_deref() {
            Some("approved") => {}
            Some("rejected") => {
                cancel(tx, &c, "the notice approval was rejected", now).await?;
                return Ok(false);
            }
            _ => return Ok(false),
        }
        let inc = tx
            .incident(c.incident_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("incident {} vanished", c.incident_id)))?;
        match self.held(&mut tx, &c, now).await? {
            Some(true) => {
                tx.commit().await?;
                return Ok(false);
            }
            Some(false) => return Ok(false),
            None => {}
        }
        if crate::domain::notice::exempt_from_individual_notice(&inc.facts) {
            let why = exempt_message(c.incident_id);
            cancel(tx, &c, &why, now).await?;
            return Ok(false);
        }
        let value = serde_json::to_value(&inc).unwrap_or_default();
        let channels: Vec<ChannelKind> = channels_of(&c);
        let locales = locales_of(&mut tx, &c, ctx).await?;
        // The rule for everyone (an announcement when too few can be reached one by one) is
        // the first campaign's business, not a follow-up's for the people it missed.
        let impractical = if c.audience == "unreached" {
            None
        } else {
            self.impractical(&inc, &channels, ctx).await?
        };
        if let Some(reason) = impractical {
            announce_impractical(&mut tx, &c, ctx, &reason, now).await?;
        }
        let link = notice_link(&mut tx, c.incident_id, ctx).await?;
        let mut contents = Vec::new();
        for locale in &locales {
            for ch in &channels {
                contents.push(render_content(&c, &value, ctx, *ch, locale, &link)?);
            }
            contents.push(
                render_content(&c, &value, ctx, ChannelKind::Email, locale, &link)?.into_page(),
            );
        }
        // Starting meets nothing: notice to individuals is met when the deliveries reach
        // people (super::outcomes).
        tx.start_campaign(c.id, &contents, to_micros(now)).await?;
        tx.append(&[NewEvent::new(
            now,
            "incidentd",
            "notice.campaign_started",
            Some(c.incident_id),
            &json!({
                "campaign": c.id,
                "approval_task": c.approval_task,
                "facts_version": inc.facts_version,
                "contents": contents.iter().map(|x| json!({
                    "channel": x.channel,
                    "locale": x.locale,
                    "used_locale": x.used_locale,
                    "sha256": crate::domain::audit::sha256_hex(x.named.as_bytes()),
                })).collect::<Vec<_>>(),
            }),
        )])
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Law enforcement or the regulator directs that individuals must not be told yet (SG):
    /// the campaign waits, approved, until the hold is lifted. Says so once on the timeline.
    /// `None` when nothing holds it; `Some(true)` when the hold was just written down in `tx`
    /// (the caller commits), `Some(false)` when it was already.
    async fn held(
        &self,
        tx: &mut WriteTx,
        c: &CampaignRow,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, EngineError> {
        let held: Vec<String> = tx
            .obligations_of(c.incident_id)
            .await?
            .into_iter()
            .filter(|o| o.kind == "notify_individuals" && o.standing == "hold")
            .map(|o| o.key)
            .collect();
        if held.is_empty() {
            return Ok(None);
        }
        if self
            .store()
            .has_event(c.incident_id, "notice.campaign_held")
            .await?
        {
            return Ok(Some(false));
        }
        tx.append(&[NewEvent::new(
                now,
                "incidentd",
                "notice.campaign_held",
                Some(c.incident_id),
                &json!({ "campaign": c.id, "holds": held,
                         "detail": "individual notice must not be given while law enforcement or the regulator directs so; clear the incident's `notification_hold` fact to send" }),
            )])
            .await?;
        Ok(Some(true))
    }

    /// Why telling people one by one is impractical, if the configured rule says so: too few
    /// of the affected reachable on the campaign's channels, or too many affected.
    async fn impractical(
        &self,
        inc: &crate::domain::records::Incident,
        channels: &[ChannelKind],
        ctx: &CampaignCtx<'_>,
    ) -> Result<Option<String>, EngineError> {
        let (share_below, above) = (
            ctx.notices.announce_when_reachable_below,
            ctx.notices.announce_when_subjects_above,
        );
        let mut held = 0u64;
        let mut reachable = 0u64;
        for (chs, n) in self.store().subject_reach(inc.id).await? {
            let n = n.max(0) as u64;
            held += n;
            let reach = parse_channels(&chs);
            if channels.iter().any(|c| subject_has(*c, &reach)) {
                reachable += n;
            }
        }
        let affected = held.max(inc.facts.affected_subjects.unwrap_or(0));
        if above > 0 && affected > above {
            return Ok(Some(format!(
                "individual notice is impractical: {affected} people are affected (more than {above})"
            )));
        }
        if share_below > 0.0 && affected > 0 && (reachable as f64) < share_below * affected as f64 {
            return Ok(Some(format!(
                "individual notice is impractical: {reachable} of {affected} affected people ({:.0}%) can be reached on {}, fewer than {:.0}%",
                100.0 * reachable as f64 / affected as f64,
                channels
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                100.0 * share_below
            )));
        }
        Ok(None)
    }

    /// Locales first seen in this batch (subjects imported after the start) get the words
    /// rendered at the start for the language they fall back to: never new words.
    async fn contents_for_new_locales(
        &self,
        tx: &mut WriteTx,
        c: &CampaignRow,
        subjects: &[crate::store::CampaignSubject],
        ctx: &CampaignCtx<'_>,
    ) -> Result<Vec<CampaignContent>, EngineError> {
        let known: BTreeSet<(String, String)> =
            tx.campaign_content_keys(c.id).await?.into_iter().collect();
        let mut extra: Vec<CampaignContent> = Vec::new();
        let mut stored: Option<Vec<CampaignContent>> = None;
        for s in subjects {
            if known.iter().any(|(ch, l)| ch == PAGE && *l == s.locale)
                || extra.iter().any(|x| x.locale == s.locale)
            {
                continue;
            }
            let have = ctx.templates.locales(&c.template);
            let used = crate::render::locale_chain(&s.locale)
                .into_iter()
                .find(|l| have.iter().any(|h| h.eq_ignore_ascii_case(l)))
                .ok_or_else(|| {
                    EngineError::Conflict(format!(
                        "campaign {}: no language of {} serves locale {}",
                        c.id, c.template, s.locale
                    ))
                })?;
            if stored.is_none() {
                stored = Some(self.store().campaign_contents(&[c.id]).await?);
            }
            let from: Vec<&CampaignContent> = stored
                .iter()
                .flatten()
                .filter(|x| x.locale.eq_ignore_ascii_case(&used))
                .collect();
            if from.is_empty() {
                return Err(EngineError::Conflict(format!(
                    "campaign {}: nothing was rendered for {used} at its start, so people with locale {} cannot be told words Legal approved; start a new campaign",
                    c.id, s.locale
                )));
            }
            extra.extend(from.into_iter().map(|x| CampaignContent {
                locale: s.locale.clone(),
                ..x.clone()
            }));
        }
        Ok(extra)
    }

    /// Enqueue the next batch of a running campaign's people: each on the channels they can be
    /// reached by, minus what earlier campaigns already told them (one message with fallbacks in
    /// `first` mode). Returns true while there is more to enqueue.
    async fn enqueue_batch(
        &self,
        c: &CampaignRow,
        ctx: &CampaignCtx<'_>,
    ) -> Result<bool, EngineError> {
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let Some(c) = tx.campaign(c.id).await? else {
            return Ok(false);
        };
        if c.status != "enqueueing" {
            return Ok(false);
        }
        let subjects = tx
            .subjects_after(c.incident_id, c.enqueued_to, ctx.notices.batch as i64)
            .await?;
        let channels: Vec<ChannelKind> = channels_of(&c);
        if subjects.is_empty() {
            finish_enqueueing(tx, &c, now).await?;
            return Ok(false);
        }
        let extra = self
            .contents_for_new_locales(&mut tx, &c, &subjects, ctx)
            .await?;
        if !extra.is_empty() {
            tx.add_campaign_contents(&extra).await?;
        }
        let screen = self.screen_batch(&mut tx, &c, &subjects, &extra).await?;
        let mut deliveries = Vec::new();
        let mut unreachable = 0;
        let mut in_audience = 0;
        for s in &subjects {
            if screen.reached.contains(&s.id) {
                continue;
            }
            in_audience += 1;
            let reach = parse_channels(&s.channels);
            let usable: Vec<ChannelKind> = channels
                .iter()
                .copied()
                .filter(|ch| subject_has(*ch, &reach))
                .collect();
            if usable.is_empty() {
                unreachable += 1;
                continue;
            }
            // Nobody gets the same words twice on one channel (an earlier campaign's delivery
            // of them that did not die); in `first` mode one message is all a person gets.
            let told = |ch: &ChannelKind| screen.told.contains(&(s.id, *ch));
            let usable: Vec<ChannelKind> = if c.mode == "first" && usable.iter().any(told) {
                Vec::new()
            } else {
                usable.into_iter().filter(|ch| !told(ch)).collect()
            };
            if usable.is_empty() {
                continue;
            }
            push_deliveries(&c, s, &usable, &mut deliveries);
        }
        let last = subjects.last().map_or(c.enqueued_to, |s| s.id);
        if !deliveries.is_empty() {
            tx.enqueue_deliveries_quietly(&deliveries, to_micros(now))
                .await?;
            tx.bump_campaign_progress(&progress_bumps(c.id, &deliveries))
                .await?;
        }
        tx.advance_campaign(
            c.id,
            last,
            in_audience,
            deliveries.len() as i64,
            unreachable,
            None,
        )
        .await?;
        tx.commit().await?;
        metrics::counter!("incidentd_notice_deliveries_enqueued_total")
            .increment(deliveries.len() as u64);
        Ok(true)
    }
}

/// The status of the campaign's approval task: `approved` when it needs none, `None` when its
/// task is gone.
async fn approval_status(tx: &mut WriteTx, c: &CampaignRow) -> Result<Option<String>, EngineError> {
    let Some(task) = c.approval_task else {
        return Ok(Some("approved".into()));
    };
    Ok(tx
        .tasks_of(c.incident_id)
        .await?
        .into_iter()
        .find(|t| t.id == task)
        .map(|t| t.status))
}

/// A person's notice deliveries on the channels still usable for them, added to `out`: in
/// `first` mode one delivery, with the other channels as its fallbacks; otherwise one per
/// channel. The content is resolved when each is sent.
fn push_deliveries(
    c: &CampaignRow,
    s: &crate::store::CampaignSubject,
    usable: &[ChannelKind],
    out: &mut Vec<NewDelivery>,
) {
    let empty = Content::default();
    let recipient = notice_recipient(c.id, s.id);
    let one = |ch: ChannelKind, fallback: Vec<FallbackTarget>| NewDelivery {
        idempotency_key: notice_key(c.incident_id, c.id, s.id, ch.as_str()),
        incident_id: Some(c.incident_id),
        purpose: Purpose::Notice,
        channel: ch,
        recipient: recipient.clone(),
        locale: s.locale.clone(),
        content: empty.clone(),
        fallback,
        fallback_of: None,
    };
    if c.mode == "first" {
        let fallback = usable[1..]
            .iter()
            .map(|ch| FallbackTarget {
                channel: *ch,
                recipient: recipient.clone(),
                content: empty.clone(),
            })
            .collect();
        out.push(one(usable[0], fallback));
    } else {
        out.extend(usable.iter().map(|ch| one(*ch, Vec::new())));
    }
}

/// What earlier campaigns of the incident already did for a batch's people.
#[derive(Default)]
struct Screen {
    /// People a delivery of an earlier campaign reached (only for an `unreached` campaign).
    reached: std::collections::HashSet<i64>,
    /// (person, channel) already given this campaign's words by an earlier campaign's
    /// delivery that did not die.
    told: std::collections::HashSet<(i64, ChannelKind)>,
}

/// The idempotency keys an earlier campaign `e` may have used for subject `s` on channel `ch`:
/// its own, and a fallback onto `ch` from another of its channels.
pub(super) fn keys_on(incident: i64, e: &CampaignRow, s: i64, ch: ChannelKind) -> Vec<String> {
    let mut keys = vec![notice_key(incident, e.id, s, ch.as_str())];
    for p in channels_of(e).into_iter().filter(|p| *p != ch) {
        keys.push(format!(
            "{}>{}",
            notice_key(incident, e.id, s, p.as_str()),
            ch.as_str()
        ));
    }
    keys
}

impl Engine {
    async fn screen_batch(
        &self,
        tx: &mut crate::store::WriteTx,
        c: &CampaignRow,
        subjects: &[crate::store::CampaignSubject],
        extra: &[CampaignContent],
    ) -> Result<Screen, EngineError> {
        let earlier: Vec<CampaignRow> = tx
            .campaigns_of(c.incident_id)
            .await?
            .into_iter()
            .filter(|e| e.id < c.id && e.started_at.is_some())
            .collect();
        if earlier.is_empty() {
            return Ok(Screen::default());
        }
        let mut ids: Vec<i64> = earlier.iter().map(|e| e.id).collect();
        ids.push(c.id);
        let mut words: HashMap<(i64, String, String), String> = HashMap::new();
        for x in self
            .store()
            .campaign_contents(&ids)
            .await?
            .into_iter()
            .chain(extra.iter().cloned())
        {
            words.insert((x.campaign_id, x.channel, x.locale.to_lowercase()), x.named);
        }
        let channels = channels_of(c);
        // (key, subject, channel, counts as "told" when not dead; else only "reached" if sent)
        let mut asks: Vec<(String, i64, ChannelKind, bool)> = Vec::new();
        for s in subjects {
            let locale = s.locale.to_lowercase();
            for e in &earlier {
                for ch in channels_of(e) {
                    let same = channels.contains(&ch)
                        && words
                            .get(&(e.id, ch.as_str().into(), locale.clone()))
                            .is_some_and(|w| {
                                words.get(&(c.id, ch.as_str().into(), locale.clone())) == Some(w)
                            });
                    if !same && c.audience != "unreached" {
                        continue;
                    }
                    for k in keys_on(c.incident_id, e, s.id, ch) {
                        asks.push((k, s.id, ch, same));
                    }
                }
            }
        }
        let keys: Vec<String> = asks.iter().map(|a| a.0.clone()).collect();
        let status = tx.delivery_statuses(&keys).await?;
        let mut screen = Screen::default();
        for (k, s, ch, same) in asks {
            match status.get(&k).map(String::as_str) {
                Some("sent") if c.audience == "unreached" => {
                    screen.reached.insert(s);
                }
                _ => {}
            }
            if same && status.get(&k).is_some_and(|st| st != "dead") {
                screen.told.insert((s, ch));
            }
        }
        Ok(screen)
    }
}

/// Cancel a campaign that waited to start, say why, and commit.
async fn cancel(
    mut tx: WriteTx,
    c: &CampaignRow,
    why: &str,
    now: DateTime<Utc>,
) -> Result<(), EngineError> {
    tx.cancel_campaign(c.id, why, to_micros(now)).await?;
    tx.append(&[NewEvent::new(
        now,
        "incidentd",
        "notice.campaign_cancelled",
        Some(c.incident_id),
        &json!({ "campaign": c.id, "reason": why }),
    )])
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The languages a campaign's words are rendered in: its people's, the organisation's, and
/// every language the template has, so that people imported later, in any locale, get words
/// rendered (and approved) now: their locale falls back to one of these.
async fn locales_of(
    tx: &mut WriteTx,
    c: &CampaignRow,
    ctx: &CampaignCtx<'_>,
) -> Result<BTreeSet<String>, EngineError> {
    let mut locales: BTreeSet<String> = tx
        .subject_locales(c.incident_id)
        .await?
        .into_iter()
        .collect();
    locales.insert(ctx.org.default_locale.clone());
    // Every language the template has, so that people imported later, in any locale, get
    // words rendered (and approved) now: their locale falls back to one of these.
    locales.extend(
        ctx.templates
            .locales(&c.template)
            .into_iter()
            .map(str::to_string),
    );
    Ok(locales)
}

/// Individual notice is impractical: publish the announcement instead. Refused before writing
/// anything (e.g. a fact the announcement needs), the campaign goes on and the refusal is
/// recorded; people can publish it by hand once the facts are there.
async fn announce_impractical(
    tx: &mut WriteTx,
    c: &CampaignRow,
    ctx: &CampaignCtx<'_>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), EngineError> {
    match crate::engine::announce::publish_in(
        tx,
        &ctx.announce,
        c.incident_id,
        "incidentd",
        reason,
        now,
    )
    .await
    {
        Ok(_) => {}
        Err(e @ (EngineError::Unavailable(_) | EngineError::Failed(_))) => return Err(e),
        // Refused before writing anything (e.g. a fact the announcement needs): the
        // campaign goes on; people can publish it by hand once the facts are there.
        Err(e) => {
            tracing::warn!(incident = c.incident_id, error = %e, "individual notice is impractical but the announcement cannot be published");
            tx.append(&[NewEvent::new(
                now,
                "incidentd",
                "announcement.refused",
                Some(c.incident_id),
                &json!({ "reason": reason, "error": e.to_string() }),
            )])
            .await?;
        }
    }
    Ok(())
}

/// A campaign with nobody left to enqueue: enqueued; and, since its deliveries may all have
/// ended already, a timer to see whether everyone was told.
async fn finish_enqueueing(
    mut tx: WriteTx,
    c: &CampaignRow,
    now: DateTime<Utc>,
) -> Result<(), EngineError> {
    tx.advance_campaign(c.id, c.enqueued_to, 0, 0, 0, Some(to_micros(now)))
        .await?;
    // Its deliveries may all have ended already: see whether everyone was told.
    tx.schedule_timers(
        &[crate::engine::outcomes::notices_timer(
            c.incident_id,
            c.id,
            to_micros(now),
        )],
        to_micros(now),
    )
    .await?;
    tx.append(&[NewEvent::new(
        now,
        "incidentd",
        "notice.campaign_enqueued",
        Some(c.incident_id),
        &json!({
            "campaign": c.id,
            "subjects": c.subjects,
            "deliveries": c.deliveries,
            "unreachable": c.unreachable,
        }),
    )])
    .await?;
    tx.commit().await?;
    Ok(())
}

/// How many deliveries a batch enqueued on each channel, as progress bumps.
fn progress_bumps(campaign_id: i64, deliveries: &[NewDelivery]) -> Vec<ProgressBump> {
    let mut per_channel: std::collections::BTreeMap<&str, i64> = Default::default();
    for d in deliveries {
        *per_channel.entry(d.channel.as_str()).or_default() += 1;
    }
    per_channel
        .into_iter()
        .map(|(ch, n)| ProgressBump {
            campaign_id,
            channel: ch.to_string(),
            enqueued: n,
            ..Default::default()
        })
        .collect()
}
