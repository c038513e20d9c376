//! The built-in in-site notice store, for host sites without a message centre of their own:
//! a delivery on this channel becomes a row the site reads through
//! `GET /api/v1/inbox/{site_user_id}`. The channel only sends: where the notice is kept is an
//! [`InboxSink`], which the process wiring gives it (the store, in `crate::server`).

use std::sync::Arc;

use super::{BoxFuture, Channel, ChannelKind, Limits, Outgoing, SendError, Sent};

/// Where in-site notices are kept.
pub trait InboxSink: Send + Sync {
    /// Keep `msg` for its site user and give the notice's id; an error is worth another try
    /// (the store was unavailable or the write failed), and says why.
    fn keep<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<i64, String>>;
}

pub struct InboxChannel {
    sink: Arc<dyn InboxSink>,
}

impl InboxChannel {
    pub fn new(sink: Arc<dyn InboxSink>) -> Self {
        InboxChannel { sink }
    }
}

impl Channel for InboxChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Inbox
    }
    fn provider(&self) -> &str {
        "inbox"
    }
    fn limits(&self) -> Limits {
        Limits {
            concurrency: 4,
            per_second: None,
        }
    }
    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            match self.sink.keep(msg).await {
                Ok(id) => Ok(Sent {
                    provider_message_id: Some(format!("inbox-{id}")),
                }),
                Err(m) => Err(SendError::Transient(m)),
            }
        })
    }
}
