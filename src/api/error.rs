//! Every error the API returns is `application/problem+json` (RFC 9457) with a `detail` a
//! person can act on. Internal causes go to the log, not to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::engine::EngineError;
use crate::ingest::FormatError;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`; `code` names the problem for programs.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable name, e.g. `malformed_json`, `invalid_field`.
    pub code: &'static str,
    /// The JSON path of the offending field, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A report's required fields without values, each with how to fill it (`report_incomplete`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub missing: Option<serde_json::Value>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    path: Option<String>,
    retry_after: Option<u32>,
    missing: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            path: None,
            retry_after: None,
            missing: None,
        }
    }

    /// With the list of a report's missing fields.
    pub fn with_missing(mut self, missing: serde_json::Value) -> Self {
        self.missing = Some(missing);
        self
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn invalid(path: impl Into<String>, detail: impl Into<String>) -> Self {
        let path = path.into();
        let detail = detail.into();
        ApiError {
            detail: if path.is_empty() {
                detail
            } else {
                format!("{path}: {detail}")
            },
            path: Some(path).filter(|p| !p.is_empty()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "")
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
        }
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "incidentd failed to handle this request; the cause is in its log",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// The `code` of a problem known only by its status (a rejection from the framework).
pub(crate) fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        411 => "length_required",
        413 => "too_large",
        415 => "unsupported_media_type",
        422 => "invalid_field",
        429 => "too_many_requests",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

fn title(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

/// Server file paths in a message (a template, a pack, a key file), which clients have no
/// business knowing: `/etc/incidentd/templates/notice/pi_leak.zh-CN.hbs:15` is shown as
/// `notice/pi_leak.zh-CN.hbs:15` — the template, as its author names it.
static SERVER_PATH: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?:[\w.@+~-]*/)+([\w.@+~-]+/[\w.@+~-]+\.(?:hbs|toml|db|sqlite|pem|key|crt))\b",
    )
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// `message` without server file paths (see [`SERVER_PATH`]).
pub(crate) fn without_server_paths(message: &str) -> std::borrow::Cow<'_, str> {
    SERVER_PATH.replace_all(message, "$1")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = match without_server_paths(&self.detail) {
            std::borrow::Cow::Borrowed(_) => self.detail,
            std::borrow::Cow::Owned(shown) => {
                // The client gets the template's name; the log keeps where it is.
                tracing::info!(status = self.status.as_u16(), detail = %self.detail, "refused; the answer leaves out the server's file paths");
                shown
            }
        };
        let body = Problem {
            kind: "about:blank",
            title: title(self.status),
            status: self.status.as_u16(),
            detail,
            code: self.code,
            path: self.path,
            missing: self.missing,
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(m) => ApiError::not_found(m),
            EngineError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            EngineError::Forbidden(m) => ApiError::forbidden(m),
            EngineError::Invalid { path, message } => ApiError::invalid(path, message),
            EngineError::Unavailable(m) => {
                tracing::warn!(error = %m, "request failed: store unavailable");
                ApiError::unavailable(format!("{m}; retry shortly"))
            }
            EngineError::Failed(m) => {
                tracing::error!(error = %m, "request failed");
                ApiError::internal()
            }
        }
    }
}

impl From<FormatError> for ApiError {
    fn from(e: FormatError) -> Self {
        if e.syntax {
            ApiError::bad_request("malformed_json", e.message)
        } else {
            ApiError::invalid(e.path, e.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_are_left_out_of_details() {
        let d = "the announcement cannot be rendered: /srv/incidentd/templates/announcement/pi_leak.zh-CN.hbs:15: datetime: bad (in the html part)";
        assert_eq!(
            without_server_paths(d),
            "the announcement cannot be rendered: announcement/pi_leak.zh-CN.hbs:15: datetime: bad (in the html part)"
        );
        let d = "config/../templates/notice/x.en.hbs: text: missing; /etc/incidentd/jurisdictions/cn.toml: bad";
        assert_eq!(
            without_server_paths(d),
            "notice/x.en.hbs: text: missing; jurisdictions/cn.toml: bad"
        );
        for kept in [
            "see /api/v1/openapi.json or POST /api/v1/incidents/3/announcement",
            "template `notice/pi_leak` has no version for fr: add notice/pi_leak.fr.hbs",
        ] {
            assert_eq!(without_server_paths(kept), kept);
        }
    }
}
