//! Messages arriving for this node: their envelope head is read once, and handed to what acts on
//! arrivals (group invites in [`super::invites`], pings in [`super::pings`]), so one arrival
//! costs one store read and one decryption of its head, not one per reader.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::ctx::Ctx;
use super::{invites, pings, relay, NodeEvent};
use crate::content::envelope::Head;
use crate::content::groups::Groups;
use crate::content::keys::Keyring;
use crate::content::open::{open, Opened, Outcome, Sealing};
use crate::message::{Header, MessageId};

/// A message from a peer, addressed to this node, that this node can read.
pub(super) struct Arrival {
    /// Its header.
    pub(super) header: Header,
    /// How it was sealed.
    pub(super) sealing: Sealing,
    /// Its envelope head (the attachment's body is never decrypted here).
    pub(super) head: Head,
}

/// Watches messages stored from peers and passes each readable one to invites and pings.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    mut events: broadcast::Receiver<NodeEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pong_budget = ctx.config.answer_pings.then(pings::Budget::default);
    loop {
        let event = tokio::select! {
            _ = stop.changed() => return,
            e = events.recv() => e,
        };
        match event {
            Ok(NodeEvent::Stored { id, from: Some(_) }) => {
                let Some(arrival) = read(&ctx, id).await else {
                    continue;
                };
                if !arrival.header.is_broadcast() {
                    invites::on_arrival(&ctx, &arrival).await;
                }
                if let Some(budget) = pong_budget.as_mut() {
                    pings::on_arrival(&ctx, &arrival, budget).await;
                }
            }
            Ok(_) => {}
            // Missed pings go unanswered, as on a lossy link; `mule inbox` installs invites.
            Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(
                missed = n,
                "some arrivals were not checked for group invites or pings; `mule inbox` installs invites"
            ),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The arrival `id` if it is addressed to this node, not its own, and readable by it.
async fn read(ctx: &Arc<Ctx>, id: MessageId) -> Option<Arrival> {
    let not_checked = |e: &dyn std::fmt::Display| {
        tracing::warn!(id = %id.short(), "arrival not checked for an invite or a ping: {e}");
    };
    let header = match ctx.store.get(id).await {
        Ok(stored) => stored?.header,
        Err(e) => {
            not_checked(&e);
            return None;
        }
    };
    if !relay::addresses(&header, &ctx.me, crate::message::now_ms()) || ctx.me.sent(&header) {
        return None;
    }
    let content = match ctx.store.read(id).await {
        Ok((_, content)) => content,
        Err(e) => {
            not_checked(&e);
            return None;
        }
    };
    let (identity, data_dir) = (ctx.identity.clone(), ctx.config.data_dir.clone());
    let opened = tokio::task::spawn_blocking(move || -> Result<Option<(Sealing, Head)>, String> {
        let keyring = Keyring::new(&identity, Groups::at(&data_dir).usable())
            .map_err(|e| format!("this node's keys: {e}"))?;
        match open(content, &keyring).map_err(|e| e.to_string())? {
            Outcome::Opened(o) => {
                let Opened { sealing, head, .. } = *o;
                Ok(head.map(|head| (sealing, head)))
            }
            Outcome::ForSomeoneElse => Ok(None),
        }
    })
    .await;
    match opened {
        Ok(Ok(Some((sealing, head)))) => Some(Arrival {
            header,
            sealing,
            head,
        }),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            not_checked(&e);
            None
        }
        Err(e) => {
            not_checked(&e);
            None
        }
    }
}
