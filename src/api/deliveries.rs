//! Delivery endpoints: enqueue messages for an incident, see how they went, operator test
//! sends, drill recipient lists, and the in-site inbox host sites read.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Authorized, role};
use super::error::{ApiError, Problem};
use super::extract::{IncidentId, Json, Path, Query};
use super::page::{cursor, limit as page_limit};
use crate::domain::message::{ChannelKind, Content, Purpose};
use crate::engine::{DeliveryRequest, EngineError};
use crate::store::{DeliveryFilter, DeliveryStatus, DeliveryView, InboxNotice};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    pub deliveries: Vec<DeliveryRequest>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enqueued {
    /// The deliveries' ids, in the order given (an existing id where the key was known).
    pub ids: Vec<i64>,
}

/// Send messages about an incident (paging someone by hand, a custom notice).
///
/// Each delivery is checked (phone numbers must be valid in their country's plan and are stored
/// in E.164, a national one read in `[organisation] default_region`; e-mail addresses valid;
/// e-mail needs a subject) and committed before the answer; the dispatcher sends it right after.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/deliveries",
    tag = "deliveries",
    params(("id" = i64, Path)),
    request_body = EnqueueRequest,
    responses((status = 202, body = Enqueued), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn enqueue(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    IncidentId(id): IncidentId,
    Json(req): Json<EnqueueRequest>,
) -> Result<(StatusCode, axum::Json<Enqueued>), ApiError> {
    // Notices, announcements and reports reach people and regulators only through their
    // approved campaigns; by hand, responders page.
    for (i, d) in req.deliveries.iter().enumerate() {
        if !matches!(d.purpose, Purpose::Page | Purpose::Drill) {
            return Err(ApiError::invalid(
                format!("deliveries[{i}].purpose"),
                format!(
                    "`{}` messages go out only through their approved campaign, not by hand; use `page` to reach responders",
                    d.purpose.as_str()
                ),
            ));
        }
    }
    let live = state.live();
    let ids = state
        .engine
        .enqueue(
            Some(id),
            req.deliveries,
            &live.delivery_ctx(),
            &caller.actor(),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(Enqueued { ids })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// pending, sending, sent, failed or dead.
    pub status: Option<String>,
    /// email, sms, voice, inbox, site_webhook or webhook.
    pub channel: Option<String>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    /// Counts of all this incident's deliveries: status → number.
    pub by_status: BTreeMap<String, i64>,
    /// channel → status → number.
    pub by_channel: BTreeMap<String, BTreeMap<String, i64>>,
    /// This page (newest first); recipients are masked.
    pub items: Vec<DeliveryView>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// How an incident's deliveries stand: counts by status and channel, and the rows, paged.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/deliveries",
    tag = "deliveries",
    params(("id" = i64, Path), DeliveryQuery),
    responses((status = 200, body = DeliveryList), (status = 400, body = Problem), (status = 404, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    IncidentId(id): IncidentId,
    Query(q): Query<DeliveryQuery>,
) -> Result<axum::Json<DeliveryList>, ApiError> {
    let limit = page_limit(q.limit)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<DeliveryStatus>()
                .map_err(|e| ApiError::bad_request("bad_query", format!("status={s}: {e}")))
        })
        .transpose()?;
    let channel = q
        .channel
        .as_deref()
        .map(|c| {
            c.parse::<ChannelKind>()
                .map_err(|e| ApiError::bad_request("bad_query", format!("channel={c}: {e}")))
        })
        .transpose()?;
    let store = state.engine.store();
    if store
        .incident(id)
        .await
        .map_err(EngineError::from)?
        .is_none()
    {
        return Err(ApiError::not_found(format!("there is no incident {id}")));
    }
    let counts = store.delivery_counts(id).await.map_err(EngineError::from)?;
    let mut by_status = BTreeMap::new();
    let mut by_channel: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (c, s, n) in counts {
        *by_status.entry(s.clone()).or_insert(0) += n;
        by_channel.entry(c).or_default().insert(s, n);
    }
    let deliveries = store
        .deliveries(&DeliveryFilter {
            id: None,
            incident_id: Some(id),
            status,
            channel,
            before: cursor(q.cursor.as_deref())?,
            limit,
        })
        .await
        .map_err(EngineError::from)?;
    Ok(axum::Json(DeliveryList {
        by_status,
        by_channel,
        next_cursor: super::page::next(&deliveries, limit, |d| d.id),
        items: deliveries,
    }))
}

/// One delivery (recipient masked).
#[utoipa::path(
    get,
    path = "/api/v1/deliveries/{delivery}",
    tag = "deliveries",
    params(("delivery" = i64, Path)),
    responses((status = 200, body = DeliveryView), (status = 404, body = Problem))
)]
pub async fn show(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    Path(delivery): Path<i64>,
) -> Result<axum::Json<DeliveryView>, ApiError> {
    state
        .engine
        .store()
        .deliveries(&DeliveryFilter {
            id: Some(delivery),
            limit: 1,
            ..Default::default()
        })
        .await
        .map_err(EngineError::from)?
        .pop()
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("there is no delivery {delivery}")))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSend {
    #[schema(value_type = String, example = "email")]
    pub channel: ChannelKind,
    pub to: String,
    #[serde(default)]
    pub locale: Option<String>,
    /// Words to send; a standard test message by default.
    #[serde(default)]
    pub text: Option<String>,
}

/// Send a test message through a channel, end to end (outbox, dispatcher, provider).
#[utoipa::path(
    post,
    path = "/api/v1/deliveries/test",
    tag = "deliveries",
    request_body = TestSend,
    responses((status = 202, body = Enqueued), (status = 422, body = Problem))
)]
pub async fn test_send(
    State(state): State<AppState>,
    caller: Authorized<role::Admin>,
    Json(t): Json<TestSend>,
) -> Result<(StatusCode, axum::Json<Enqueued>), ApiError> {
    let now = chrono::Utc::now();
    let text = t.text.unwrap_or_else(|| {
        format!(
            "incidentd test message, sent {} by {}. If you received it, this channel works.",
            now.format("%Y-%m-%d %H:%M:%S UTC"),
            caller.actor()
        )
    });
    let req = DeliveryRequest {
        channel: t.channel,
        recipient: t.to,
        purpose: Purpose::Test,
        locale: t.locale,
        content: Some(Content {
            subject: Some("incidentd test message".into()),
            text,
            template: Some("test/send_test".into()),
            ..Default::default()
        }),
        template: None,
        recipient_name: None,
        fallback: Vec::new(),
        // Every test is a new message.
        idempotency_key: Some(format!(
            "test:{}:{}",
            now.timestamp_micros(),
            crate::channels::sign::nonce()
        )),
    };
    let live = state.live();
    let ids = state
        .engine
        .enqueue(None, vec![req], &live.delivery_ctx(), &caller.actor())
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(Enqueued { ids })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillRecipient {
    #[schema(value_type = String, example = "email")]
    pub channel: ChannelKind,
    pub recipient: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillRecipients {
    pub recipients: Vec<DrillRecipient>,
}

/// Add recipients a drill incident may reach (its responders and capture sinks). Every other
/// delivery of the drill is refused by the dispatcher's drill guard.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/drill/recipients",
    tag = "deliveries",
    params(("id" = i64, Path)),
    request_body = DrillRecipients,
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem))
)]
pub async fn allow_drill_recipients(
    State(state): State<AppState>,
    caller: Authorized<role::Admin>,
    IncidentId(id): IncidentId,
    Json(r): Json<DrillRecipients>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .allow_drill_recipients(
            id,
            r.recipients
                .into_iter()
                .map(|d| (d.channel, d.recipient))
                .collect(),
            &caller.actor(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

super::page::listing!(
    /// A site user's in-site notices, newest first.
    Inbox,
    InboxNotice
);

/// A site user's in-site notices, newest first (for host sites without a message centre).
#[utoipa::path(
    get,
    path = "/api/v1/inbox/{site_user_id}",
    tag = "inbox",
    params(("site_user_id" = String, Path), InboxQuery),
    responses((status = 200, body = Inbox))
)]
pub async fn inbox(
    State(state): State<AppState>,
    _: Authorized<role::Site>,
    Path(user): Path<String>,
    Query(q): Query<InboxQuery>,
) -> Result<axum::Json<Inbox>, ApiError> {
    let limit = page_limit(q.limit)?;
    let notices = state
        .engine
        .store()
        .inbox(&user, cursor(q.cursor.as_deref())?, limit)
        .await
        .map_err(EngineError::from)?;
    Ok(axum::Json(Inbox::paged(notices, limit, |n| n.id)))
}

/// Mark one of a site user's notices read.
#[utoipa::path(
    post,
    path = "/api/v1/inbox/{site_user_id}/{id}/read",
    tag = "inbox",
    params(("site_user_id" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem))
)]
pub async fn mark_read(
    State(state): State<AppState>,
    _: Authorized<role::Site>,
    Path((user, id)): Path<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    if state
        .engine
        .store()
        .inbox_mark_read(&user, id)
        .await
        .map_err(EngineError::from)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "site user `{user}` has no notice {id}"
        )))
    }
}
