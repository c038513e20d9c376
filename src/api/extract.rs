//! Extractors whose rejections are problem+json with a useful detail (axum's own answer in
//! plain text).

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

/// The raw request body, at most `server.max_body_bytes`, JSON content type (or none).
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or_default().trim().to_string();
            let ok = essence == "application/json"
                || essence.ends_with("+json")
                || essence == "text/csv"
                || essence == "application/x-ndjson";
            if !ok {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!("Content-Type `{essence}` is not accepted; send application/json"),
                ));
            }
        }
        let limit = state.live().max_body_bytes;
        read_limited(req, limit).await.map(Body)
    }
}

/// Read a body of at most `limit` bytes.
///
/// A body somewhat over the limit is read to its end (and dropped) before the 413 goes out, so
/// the sender, still writing, reliably gets the answer instead of a reset connection; a body
/// far over the limit is refused at once.
async fn read_limited(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::too_large(format!(
            "the request body is larger than {limit} bytes (server.max_body_bytes); send fewer alerts per request or raise the limit"
        ))
    };
    let drain_cap = drain_cap(limit);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > drain_cap) {
        return Err(too_large());
    }
    let mut body = req.into_body();
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_request(
                "body_unreadable",
                format!("the request body could not be read: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > drain_cap {
                break;
            }
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

/// Keeps each request's body aside until a handler reads it. A request refused from its head
/// alone (401, 403: see [`super::auth::Authorized`]) never has its body read; once the answer
/// is ready, what the client is still sending is read and dropped — at most as much as
/// [`read_limited`] would read, for at most [`DRAIN_FOR`] — so the client gets the answer
/// instead of a connection reset mid-upload.
pub(super) async fn drain_unread_body(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let slot = Arc::new(Mutex::new(Some(body)));
    let lazy = LazyBody {
        slot: slot.clone(),
        inner: None,
    };
    let res = next
        .run(Request::from_parts(
            parts,
            axum::body::Body::from_stream(lazy),
        ))
        .await;
    let unread = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(body) = unread {
        let cap = drain_cap(state.live().max_body_bytes);
        let _ = tokio::time::timeout(DRAIN_FOR, drain(body, cap)).await;
    }
    res
}

/// How long an unread body is drained before the answer goes out regardless.
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(5);

fn drain_cap(limit: usize) -> usize {
    limit.saturating_mul(4).max(1 << 20)
}

async fn drain(body: axum::body::Body, cap: usize) {
    let mut body = body;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > cap {
                return;
            }
        }
    }
}

/// The request body, taken from its slot when first polled.
struct LazyBody {
    slot: Arc<Mutex<Option<axum::body::Body>>>,
    inner: Option<axum::body::BodyDataStream>,
}

impl futures_core::Stream for LazyBody {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.inner.is_none() {
            let taken = self
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            match taken {
                Some(b) => self.inner = Some(b.into_data_stream()),
                None => return std::task::Poll::Ready(None),
            }
        }
        match self.inner.as_mut() {
            Some(s) => std::pin::Pin::new(s).poll_next(cx),
            None => std::task::Poll::Ready(None),
        }
    }
}

/// A JSON body in one of our own formats (unknown fields refused, paths named).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let Body(bytes) = Body::from_request(req, state).await?;
        Ok(Json(crate::ingest::from_json(&bytes)?))
    }
}

/// As [`Json`], but an empty body is `T::default()` (for bodies that are all optional).
pub struct MaybeJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let Body(bytes) = Body::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJson(T::default()));
        }
        Ok(MaybeJson(crate::ingest::from_json(&bytes)?))
    }
}

/// Query parameters, refused with the parameter named.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded_de(q).map(Query)
    }
}

fn serde_urlencoded_de<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::bad_request("bad_query", "the query string is not valid"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
}

/// Path parameters, refused as problem+json (axum's own answer is plain text).
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e| ApiError::bad_request("bad_path", e.body_text()))
    }
}

/// An incident id from the path.
pub struct IncidentId(pub i64);

/// An alert id from the path.
pub struct AlertId(pub i64);

/// A numeric id from the path (`#12` is read as 12); anything else is no such `what`.
async fn path_id(parts: &mut Parts, state: &AppState, what: &str) -> Result<i64, ApiError> {
    let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::bad_request("bad_path", e.body_text()))?;
    raw.trim_start_matches('#').parse::<i64>().map_err(|_| {
        ApiError::not_found(format!(
            "there is no {what} `{raw}`; {what} ids are numbers"
        ))
    })
}

impl FromRequestParts<AppState> for IncidentId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        path_id(parts, state, "incident").await.map(IncidentId)
    }
}

impl FromRequestParts<AppState> for AlertId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        path_id(parts, state, "alert").await.map(AlertId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(n: usize, size: usize) -> Request {
        let stream = chunks(n, size);
        Request::builder()
            .uri("/")
            .body(axum::body::Body::from_stream(stream))
            .unwrap()
    }

    fn chunks(
        chunks: usize,
        size: usize,
    ) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
        struct S(usize, usize);
        impl futures_core::Stream for S {
            type Item = Result<Vec<u8>, std::io::Error>;
            fn poll_next(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Self::Item>> {
                if self.0 == 0 {
                    return std::task::Poll::Ready(None);
                }
                self.0 -= 1;
                std::task::Poll::Ready(Some(Ok(vec![b'x'; self.1])))
            }
        }
        S(chunks, size)
    }

    #[tokio::test]
    async fn streamed_bodies_without_length_are_limited_too() {
        let e = read_limited(streamed(100, 1000), 65_536).await.unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        let ok = read_limited(streamed(10, 1000), 65_536).await.unwrap();
        assert_eq!(ok.len(), 10_000);
    }

    #[tokio::test]
    async fn declared_length_is_refused_before_reading() {
        let req = Request::builder()
            .uri("/")
            .header(header::CONTENT_LENGTH, "100000000")
            .body(axum::body::Body::empty())
            .unwrap();
        let e = read_limited(req, 65_536).await.unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }
}
