//! Extractors whose rejections are problem+json with a useful detail (axum's own answer in
//! plain text).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use http_body_util::{BodyExt, LengthLimitError, Limited};
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
        let too_large = || {
            ApiError::too_large(format!(
                "the request body is larger than {limit} bytes (server.max_body_bytes); send fewer alerts per request or raise the limit"
            ))
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        match Limited::new(req.into_body(), limit).collect().await {
            Ok(c) => Ok(Body(c.to_bytes())),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Err(e) => Err(ApiError::bad_request(
                "body_unreadable",
                format!("the request body could not be read: {e}"),
            )),
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

/// An incident id from the path.
pub struct IncidentId(pub i64);

impl FromRequestParts<AppState> for IncidentId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request("bad_path", e.body_text()))?;
        raw.trim_start_matches('#')
            .parse::<i64>()
            .map(IncidentId)
            .map_err(|_| {
                ApiError::not_found(format!(
                    "there is no incident `{raw}`; incident ids are numbers"
                ))
            })
    }
}
