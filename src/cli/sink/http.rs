//! The HTTP side of `incidentd sink`: a stand-in for the `generic_http` SMS and voice gateways.
//! Every POST, to any path, is kept and answered as a gateway answers a message it took.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::out::Out;

const ABOUT: &str = "incidentd sink: a trial sink for incidentd's SMS and voice messages \
(the generic_http provider). POST a message to any path (the shipped configuration uses /sms \
and /voice); it is answered 200 {\"id\": \"sink-<n>\"}, printed, and kept as \
http-<n>.json under --out. Nothing is sent on to anyone. Not for production.\n";

/// Serves until `stop` turns true, then finishes the requests under way.
pub async fn serve(
    listener: TcpListener,
    out: Arc<Out>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = axum::Router::new().fallback(handle).with_state(out);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { super::smtp::stopped(&mut stop).await })
        .await
}

async fn handle(
    State(out): State<Arc<Out>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::GET && uri.path() == "/" {
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], ABOUT).into_response();
    }
    if method != Method::POST {
        let words = "the sink takes POST requests (GET / says what it is)\n";
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            words,
        )
            .into_response();
    }
    match out.http(&record(&method, &uri, &headers, &body)).await {
        Ok(n) => {
            axum::Json(json!({"id": format!("sink-{n}"), "status": "accepted"})).into_response()
        }
        Err(e) => {
            eprintln!("incidentd sink: {e:#}");
            // A 5xx is a temporary failure to incidentd: it tries again later.
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the sink cannot keep the request (see its error output)\n",
            )
                .into_response()
        }
    }
}

/// The request as it arrived: the body as JSON when it is JSON, else as text.
pub fn record(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        names
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let body = serde_json::from_slice::<Value>(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": names,
        "body": body,
        "received_at": chrono::Utc::now().to_rfc3339(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_recorded_with_its_body_as_json_or_text() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.append("x-twice", "a".parse().unwrap());
        headers.append("x-twice", "b".parse().unwrap());
        let uri: Uri = "/sms?x=1".parse().unwrap();
        let r = record(&Method::POST, &uri, &headers, br#"{"to":"+8613800138000"}"#);
        assert_eq!(r["path"], "/sms");
        assert_eq!(r["query"], "x=1");
        assert_eq!(r["headers"]["x-twice"], "a, b");
        assert_eq!(r["body"]["to"], "+8613800138000");
        let r = record(
            &Method::POST,
            &"/voice".parse().unwrap(),
            &headers,
            b"not json",
        );
        assert_eq!(r["body"], "not json");
        assert_eq!(r["query"], Value::Null);
    }
}
