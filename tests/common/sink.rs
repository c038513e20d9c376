//! A local HTTP server standing in for a provider or a host site: it records every request
//! exactly as it arrived and answers as told, per path.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the webhook signature: HMAC-SHA256 with `secret` over `timestamp.body`, signed
    /// within the last minute.
    pub fn assert_signed(&self, secret: &str) {
        let ts: i64 = self
            .header("x-incidentd-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        let sig = self.header("x-incidentd-signature").unwrap();
        let expected =
            incidentd::channels::sign::webhook_signature(secret.as_bytes(), ts, &self.body);
        assert_eq!(
            sig,
            format!("sha256={expected}"),
            "signature over timestamp.body"
        );
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    /// path → (status, body) to answer; 200 `{"id": "msg-<n>"}` otherwise.
    answers: HashMap<String, (u16, String)>,
    delay: Duration,
}

#[derive(Clone, Default)]
pub struct Sink {
    inner: Arc<Mutex<Inner>>,
    pub addr: Option<std::net::SocketAddr>,
}

impl Sink {
    pub async fn start() -> Sink {
        let mut sink = Sink::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        sink.addr = Some(listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(sink.inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        sink
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.unwrap())
    }

    pub fn answer(&self, path: &str, status: u16, body: &str) {
        self.inner
            .lock()
            .unwrap()
            .answers
            .insert(path.to_string(), (status, body.to_string()));
    }

    /// Hold every answer this long (keeps sends in flight).
    pub fn delay(&self, d: Duration) {
        self.inner.lock().unwrap().delay = d;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().received.len()
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let (answer, delay, n) = {
        let mut g = inner.lock().unwrap();
        let answer = g.answers.get(uri.path()).cloned();
        g.received.push(Received {
            path: uri.path().to_string(),
            headers,
            body,
        });
        (answer, g.delay, g.received.len())
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match answer {
        Some((status, body)) => (StatusCode::from_u16(status).unwrap(), body).into_response(),
        None => {
            let mut h = HeaderMap::new();
            h.insert("x-message-id", format!("msg-{n}").parse().unwrap());
            (StatusCode::OK, h, format!("{{\"id\":\"msg-{n}\"}}")).into_response()
        }
    }
}
