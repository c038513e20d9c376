//! What a batch does to incidents: placing alerts (`Batch`'s steps), opening incidents and
//! storm incidents, absorbing alerts into an incident's class and facts, and the events that
//! say so.

use super::*;

impl<'a> Batch<'a> {
    pub(super) fn new(max_alert: i64, max_incident: i64) -> Batch<'a> {
        Batch {
            next_alert: max_alert + 1,
            next_incident: max_incident + 1,
            first_copy: HashMap::new(),
            new_incidents: Vec::new(),
            opened_by: Vec::new(),
            by_group: HashMap::new(),
            new_keys: Vec::new(),
            placed: HashMap::new(),
            states: HashMap::new(),
            counts: HashMap::new(),
            joined: BTreeMap::new(),
            members: BTreeMap::new(),
            unmatched: BTreeMap::new(),
            rows: Vec::new(),
        }
    }

    /// New incidents: the opening alert, then every other alert of this batch that joined it;
    /// their events.
    pub(super) fn opened_events(
        &mut self,
        rules: &Rules,
        storm: Option<StormPolicy>,
        now: DateTime<Utc>,
    ) -> Vec<NewEvent> {
        let mut events = Vec::new();
        for (inc, actor) in self.new_incidents.iter_mut().zip(&self.opened_by) {
            let group = self.members.remove(&inc.id).unwrap_or_default();
            let changes = absorb(inc, &group[1..], rules, now);
            count_alerts(inc, &self.counts);
            let j = self.joined.remove(&inc.id).unwrap_or_default();
            inc.truncated_alerts = i64::try_from(j.truncated).unwrap_or(i64::MAX);
            describe_storm(inc, storm);
            events.push(opened_event(inc, actor, &j, storm, now));
            push_join_events(&mut events, inc.id, j, Some(actor), now);
            push_change_events(&mut events, inc, changes, now);
        }
        events
    }

    /// New incidents get a playbook timer (with playbooks) and a recompute timer (with packs).
    pub(super) fn new_timers(&self, policy: &IngestPolicy, now: DateTime<Utc>) -> Vec<NewTimer> {
        let mut timers: Vec<NewTimer> = Vec::new();
        if policy.respond {
            timers.extend(
                self.new_incidents
                    .iter()
                    .map(|i| crate::engine::response::playbook_timer(i, now)),
            );
        }
        if policy.regulate {
            timers.extend(
                self.new_incidents
                    .iter()
                    .map(|i| crate::engine::obligations::recompute_timer(i.id, now)),
            );
        }
        timers
    }

    /// Open incidents that collected alerts: absorbed, counted, written back; a playbook timer
    /// when their class changed, a recompute timer when their class or facts did.
    pub(super) async fn update_current(
        &mut self,
        tx: &mut WriteTx,
        rules: &Rules,
        policy: &IngestPolicy,
        timers: &mut Vec<NewTimer>,
        events: &mut Vec<NewEvent>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // New incidents were given their members already (`opened_events`).
        let ids: Vec<i64> = self.members.keys().copied().collect();
        let mut current = if ids.is_empty() {
            Vec::new()
        } else {
            tx.incidents(&ids).await?
        };
        for inc in &mut current {
            let was = inc.clone();
            let group = self.members.remove(&inc.id).unwrap_or_default();
            let before = (inc.category, inc.severity);
            let facts_version = inc.facts_version;
            let changes = absorb(inc, &group, rules, now);
            count_alerts(inc, &self.counts);
            if policy.respond && (inc.category, inc.severity) != before {
                timers.push(crate::engine::response::playbook_timer(inc, now));
            }
            if policy.regulate
                && ((inc.category, inc.severity) != before || inc.facts_version != facts_version)
            {
                timers.push(crate::engine::obligations::recompute_timer(inc.id, now));
            }
            let j = self.joined.remove(&inc.id).unwrap_or_default();
            inc.truncated_alerts = inc
                .truncated_alerts
                .max(i64::try_from(j.truncated).unwrap_or(i64::MAX));
            inc.updated_at = now;
            describe_storm(inc, policy.storm);
            push_join_events(events, inc.id, j, None, now);
            push_change_events(events, inc, changes, now);
            tx.update_incident_from(&was, inc).await?;
        }
        Ok(())
    }

    /// Each alert's newest state per incident, as `incident_alerts` rows.
    pub(super) fn alert_rows(&self) -> Vec<IncidentAlertRow<'a>> {
        self.states
            .iter()
            .filter_map(|(&(alert_key, incident_id), st)| {
                let (starts_at, resolved) = st.newest?;
                Some(IncidentAlertRow {
                    alert_key,
                    incident_id,
                    resolved,
                    starts_at,
                    alert_id: st.alert_id?,
                })
            })
            .collect()
    }

    /// An alert that opens an incident and found none to join: a new incident — or, when its
    /// intake bucket opened `storm.max_incidents` within the window, the bucket's storm
    /// incident (opened now if it has none).
    pub(super) fn open_for(
        &mut self,
        a: &'a PreparedAlert,
        actor: &'a str,
        buckets: &mut HashMap<String, Bucket>,
        storm: Option<StormPolicy>,
        now: DateTime<Utc>,
    ) -> (i64, Disposition) {
        let gk = a.row.group_key.as_str();
        let bucket = a.bucket().unwrap_or_default();
        let state = buckets.get_mut(&bucket);
        let (iid, disposition) = match (storm, state) {
            (Some(storm), Some(b)) if b.opened >= i64::from(storm.max_incidents) => match b.storm {
                Some(iid) => (iid, Disposition::Folded),
                None => {
                    let iid = self.next_incident;
                    self.next_incident += 1;
                    self.new_incidents
                        .push(storm_incident(iid, a, &bucket, storm, actor, now));
                    self.opened_by.push(actor);
                    self.new_keys.push((storm_key(&bucket), iid));
                    b.storm = Some(iid);
                    metrics::counter!("incidentd_storm_incidents_opened_total").increment(1);
                    (iid, Disposition::Opened)
                }
            },
            (_, state) => {
                let iid = self.next_incident;
                self.next_incident += 1;
                let mut inc = open_incident(iid, a, actor, now);
                inc.intake = Some(bucket);
                self.new_incidents.push(inc);
                self.opened_by.push(actor);
                if let Some(b) = state {
                    b.opened += 1;
                }
                (iid, Disposition::Opened)
            }
        };
        self.by_group.insert(gk, iid);
        self.new_keys.push((gk.to_string(), iid));
        (iid, disposition)
    }
}

/// Note alert `a` (row `id`) in incident `iid`: the newest notification of each alert counts
/// as firing or resolved on the incident, an older one (arriving late) changes nothing.
pub(super) fn track_state<'a>(
    states: &mut HashMap<(&'a str, i64), AlertState>,
    counts: &mut HashMap<i64, (i64, i64)>,
    held: &HashMap<String, HeldAlert>,
    a: &'a PreparedAlert,
    id: i64,
    iid: i64,
) {
    let st = states
        .entry((a.alert_key.as_str(), iid))
        .or_insert_with(|| AlertState {
            newest: held
                .get(&a.alert_key)
                .filter(|h| h.incident_id == iid)
                .map(|h| (h.starts_at, h.resolved)),
            alert_id: None,
        });
    let new = (a.row.occurred_at, a.resolved());
    let delta = counts.entry(iid).or_default();
    let mut bump = |resolved: bool, by: i64| {
        if resolved {
            delta.1 += by;
        } else {
            delta.0 += by;
        }
    };
    match st.newest {
        Some(old) if old >= new => return,
        Some(old) => {
            bump(old.1, -1);
            bump(new.1, 1);
        }
        None => bump(new.1, 1),
    }
    st.newest = Some(new);
    st.alert_id = Some(id);
}

pub(super) fn count_alerts(inc: &mut Incident, counts: &HashMap<i64, (i64, i64)>) {
    if let Some((firing, resolved)) = counts.get(&inc.id) {
        inc.alerts_firing = (inc.alerts_firing + firing).max(0);
        inc.alerts_resolved = (inc.alerts_resolved + resolved).max(0);
    }
}

pub(super) fn open_incident(
    id: i64,
    a: &PreparedAlert,
    actor: &str,
    now: DateTime<Utc>,
) -> Incident {
    let mut inc = opened(a, actor, now);
    inc.id = id;
    inc
}

pub(super) fn opened(a: &PreparedAlert, actor: &str, now: DateTime<Utc>) -> Incident {
    let c = a
        .classification
        .as_ref()
        .expect("only classified alerts open incidents");
    let first_seen = a.occurred_at.min(now);
    Incident {
        summary: a.description.clone(),
        rule: Some(c.rule.clone()),
        facts: a.facts.clone(),
        first_seen_at: first_seen,
        discovered_at: first_seen,
        alert_count: 1,
        ..Incident::opening(
            a.row.title.clone(),
            c.category,
            c.severity,
            "alert",
            actor,
            now,
        )
    }
}

/// The storm incident of `bucket`, opened by alert `a`, the first of its alerts to fold.
pub(super) fn storm_incident(
    id: i64,
    a: &PreparedAlert,
    bucket: &str,
    storm: StormPolicy,
    actor: &str,
    now: DateTime<Utc>,
) -> Incident {
    let mut inc = open_incident(id, a, actor, now);
    let (source, rule) = bucket.split_once('|').unwrap_or((bucket, ""));
    inc.title = format!("告警风暴 / Alert storm: {rule} ({source})");
    inc.intake = Some(bucket.to_string());
    inc.storm = true;
    describe_storm(&mut inc, Some(storm));
    inc
}

/// A storm incident's summary, with its running count.
pub(super) fn describe_storm(inc: &mut Incident, storm: Option<StormPolicy>) {
    let (Some(storm), Some(bucket)) = (storm.filter(|_| inc.storm), inc.intake.as_deref()) else {
        return;
    };
    let (source, rule) = bucket.split_once('|').unwrap_or((bucket, ""));
    let window = crate::domain::duration::HumanDuration(storm.window);
    inc.summary = format!(
        "来源 {source} 的规则 {rule} 在 {window} 内已打开 {max} 个事件，此后本应各自打开事件的告警都并入本事件，逐条记录。\
         目前共收到 {n} 条告警通知，{firing} 个告警仍在告警，{resolved} 个已恢复。\n\
         Rule {rule} of source {source} opened {max} incidents within {window}; its further alerts that would each have \
         opened one are folded into this incident, every one recorded. So far: {n} notifications, {firing} alerts firing, \
         {resolved} resolved.",
        max = storm.max_incidents,
        n = inc.alert_count,
        firing = inc.alerts_firing,
        resolved = inc.alerts_resolved,
    );
}

/// What absorbing alerts changed on an incident.
#[derive(Default)]
pub(super) struct Changes {
    reclassified: Vec<Reclassified>,
    facts_changed: bool,
}

/// Fold alerts into an incident: count, earliest sighting, facts, raise-only re-classification
/// (from each firing alert, then from the incident's facts if they changed).
pub(super) fn absorb(
    inc: &mut Incident,
    alerts: &[&PreparedAlert],
    rules: &Rules,
    now: DateTime<Utc>,
) -> Changes {
    let mut ch = Changes::default();
    for a in alerts {
        inc.alert_count += 1;
        if a.status != AlertStatus::Firing {
            continue;
        }
        inc.first_seen_at = inc.first_seen_at.min(a.occurred_at.min(now));
        ch.facts_changed |= inc.facts.absorb(&a.facts);
        if let Some(c) = &a.classification
            && let Some(r) = reclassify(inc, (c.category, c.severity), Some(&c.rule), now)
        {
            ch.reclassified.push(r);
        }
    }
    if ch.facts_changed {
        inc.facts_version += 1;
        if let Some(c) = classify_incident(rules, inc)
            && let Some(r) = reclassify(inc, (c.category, c.severity), Some(&c.rule), now)
        {
            ch.reclassified.push(r);
        }
    }
    ch
}

/// `alerts.received` / `alerts.recorded` data.
#[derive(Serialize)]
pub(super) struct AlertsData<'a> {
    pub(super) alerts: &'a [AlertItem<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) truncated_alerts: Option<u64>,
}

pub(super) fn opened_event(
    inc: &Incident,
    actor: &str,
    j: &Joined<'_>,
    storm: Option<StormPolicy>,
    now: DateTime<Utc>,
) -> NewEvent {
    #[derive(Serialize)]
    struct Opened<'a> {
        title: &'a str,
        category: Category,
        severity: Severity,
        status: Status,
        rule: Option<&'a str>,
        origin: &'a str,
        drill: bool,
        facts: &'a Facts,
        alerts: &'a [AlertItem<'a>],
        #[serde(skip_serializing_if = "Option::is_none")]
        storm: Option<serde_json::Value>,
    }
    let alerts = j.by_actor.get(actor).map(Vec::as_slice).unwrap_or_default();
    let storm = storm.filter(|_| inc.storm).map(|s| {
        json!({
            "bucket": inc.intake,
            "max_incidents": s.max_incidents,
            "window": crate::domain::duration::HumanDuration(s.window).to_string(),
        })
    });
    NewEvent::new(
        now,
        actor,
        "incident.opened",
        Some(inc.id),
        &Opened {
            title: &inc.title,
            category: inc.category,
            severity: inc.severity,
            status: inc.status,
            rule: inc.rule.as_deref(),
            origin: &inc.origin,
            drill: inc.drill,
            facts: &inc.facts,
            alerts,
            storm,
        },
    )
}

/// `alerts.received` per actor; `skip` is the actor whose alerts the opening event carries.
pub(super) fn push_join_events(
    events: &mut Vec<NewEvent>,
    incident_id: i64,
    j: Joined<'_>,
    skip: Option<&str>,
    now: DateTime<Utc>,
) {
    for (actor, items) in &j.by_actor {
        if Some(*actor) == skip {
            continue;
        }
        events.push(NewEvent::new(
            now,
            *actor,
            "alerts.received",
            Some(incident_id),
            &AlertsData {
                alerts: items,
                truncated_alerts: (j.truncated > 0).then_some(j.truncated),
            },
        ));
    }
}

pub(super) fn push_change_events(
    events: &mut Vec<NewEvent>,
    inc: &Incident,
    ch: Changes,
    now: DateTime<Utc>,
) {
    if ch.facts_changed {
        events.push(NewEvent::new(
            now,
            "incidentd",
            "incident.facts_updated",
            Some(inc.id),
            &json!({ "version": inc.facts_version, "facts": inc.facts, "source": "alerts" }),
        ));
    }
    for r in ch.reclassified {
        events.push(reclassified_event(inc.id, &r, "incidentd", None, now));
    }
}

pub(in crate::engine) fn reclassified_event(
    incident_id: i64,
    r: &Reclassified,
    actor: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> NewEvent {
    NewEvent::new(
        now,
        actor,
        "incident.reclassified",
        Some(incident_id),
        &json!({
            "from": { "category": r.from.0, "severity": r.from.1 },
            "to": { "category": r.to.0, "severity": r.to.1 },
            "rule": r.rule,
            "automatic": reason.is_none(),
            "reason": reason,
        }),
    )
}
