//! State shared by a node's tasks (peer manager, sync tasks, inbound handler), and the few
//! helpers they all use.

use std::collections::BTreeMap;
use std::sync::Mutex;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::broadcast;

use super::auth::Authoriser;
use super::counters::Counters;
use super::relay::{self, Me};
use super::{Config, NodeEvent};
use crate::identity::Identity;
use crate::message::{Header, MessageId};
use crate::net;
use crate::store::{Delivery, PeerKey, Store, Stored};
use crate::trust::Trust;

/// The store's key for a peer (the store knows nothing of libp2p).
pub(super) fn peer_key(peer: &PeerId) -> PeerKey {
    PeerKey::from(peer.to_bytes())
}

/// State shared by a node's tasks.
pub(crate) struct Ctx {
    pub(super) peer_id: PeerId,
    pub(super) me: Me,
    pub(super) identity: Identity,
    /// The roots this node trusts and the chains naming it.
    pub(super) trust: Trust,
    pub(super) store: Store,
    pub(super) net: net::Handle,
    pub(super) counters: Counters,
    pub(super) auth: Authoriser,
    pub(super) config: Config,
    /// Ids of newly stored messages, for the sync tasks.
    pub(super) news: broadcast::Sender<MessageId>,
    /// Everything else, for observers.
    pub(super) events: broadcast::Sender<NodeEvent>,
    pub(super) queues: Mutex<BTreeMap<String, usize>>,
    /// Scheduled pulls from data mules.
    pub(super) pulls: Mutex<super::schedule::PullSchedule>,
    /// Multi-chunk transfers in flight, for `mule status`.
    pub(super) transfers: Mutex<super::transfers::Transfers>,
    pub(super) listen: Mutex<Vec<Multiaddr>>,
}

impl Ctx {
    pub(super) fn transfers(&self) -> std::sync::MutexGuard<'_, super::transfers::Transfers> {
        self.transfers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn set_queue(&self, peer: PeerId, len: usize) {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer.to_string(), len);
    }

    pub(super) fn remove_queue(&self, peer: PeerId) {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&peer.to_string());
    }

    /// Whether `stored` should be offered to `peer`: the relay policy, then the access policy.
    pub(super) fn should_offer(&self, peer: &PeerId, stored: &Stored) -> bool {
        let header = &stored.header;
        if let Err(skip) = relay::offer(header, peer, &self.me, &self.config.limits) {
            tracing::trace!(id = %header.id.short(), %skip, "not offered");
            return false;
        }
        self.auth.push_to(peer, header).is_ok()
    }

    /// The header as it leaves this node.
    pub(super) fn outgoing_header(&self, stored: &Stored) -> Header {
        relay::outgoing(&stored.header, &self.me)
    }

    /// Records delivery states towards `peer` in one commit.
    pub(super) async fn record_all(&self, peer: PeerId, states: Vec<(MessageId, Delivery)>) {
        if states.is_empty() {
            return;
        }
        let peer = peer_key(&peer);
        let rows = states
            .into_iter()
            .map(|(id, s)| (id, peer.clone(), s))
            .collect();
        if let Err(e) = self.store.set_deliveries(rows).await {
            tracing::warn!(error = %e, "cannot record delivery state");
        }
    }

    /// A new message is stored locally: every sync task offers it.
    pub(super) fn announce(&self, id: MessageId, from: Option<PeerId>) {
        let _ = self.news.send(id);
        let _ = self.events.send(NodeEvent::Stored { id, from });
    }

    /// Adds a listen address and tells observers.
    pub(super) fn listening(&self, addr: Multiaddr) {
        self.listen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(addr.clone());
        let _ = self.events.send(NodeEvent::Listening(addr));
    }
}
