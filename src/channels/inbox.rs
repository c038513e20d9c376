//! The built-in in-site notice store, for host sites without a message centre of their own:
//! a delivery on this channel becomes a row the site reads through
//! `GET /api/v1/inbox/{site_user_id}`.

use super::{BoxFuture, Channel, ChannelKind, Limits, Outgoing, SendError, Sent};
use crate::store::Store;

pub struct InboxChannel {
    store: Store,
}

impl InboxChannel {
    pub fn new(store: Store) -> Self {
        InboxChannel { store }
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
            match self.store.put_inbox_notice(msg).await {
                Ok(id) => Ok(Sent {
                    provider_message_id: Some(format!("inbox-{id}")),
                }),
                Err(crate::store::StoreError::Unavailable(m)) => Err(SendError::Transient(m)),
                Err(crate::store::StoreError::Failed(m)) => Err(SendError::Transient(m)),
            }
        })
    }
}
