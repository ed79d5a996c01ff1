//! The swarm side of ring selection: tracks known, trusted and failing peers, re-runs the pure
//! rule on every change, dials the selected peers and keeps their connections open.
//!
//! Decisions take the time as an argument (`*_at(.., now)`); only the thin public entry points
//! and the swarm callbacks read the clock, once per call, so every decision is testable with an
//! injected `now`.

use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use libp2p::{
    core::{transport::PortUse, Endpoint},
    swarm::{
        behaviour::ConnectionEstablished,
        dial_opts::{DialOpts, PeerCondition},
        ConnectionClosed, ConnectionDenied, ConnectionId, DialError, DialFailure, FromSwarm,
        NetworkBehaviour, NotifyHandler, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};

use super::{select_eligible, ErrorLog, Fingers, Handler};

/// Peers a [`Behaviour`] keeps on its ring at most; further discoveries are ignored until some
/// are removed. Bounds memory and the O(N) cost of each re-selection.
pub const MAX_KNOWN_PEERS: usize = 8192;

/// Minimum time between two dials of the same peer by a [`Behaviour`], so that a selected peer
/// whose connections keep failing or closing does not cause a dial storm.
pub const REDIAL_INTERVAL: Duration = Duration::from_secs(5);

/// Peers a [`Behaviour`] keeps marked as trusted at most; further marks are ignored until some
/// are unmarked. Bounds memory like [`MAX_KNOWN_PEERS`].
pub const MAX_TRUSTED_PEERS: usize = MAX_KNOWN_PEERS;

/// A change in the set of peers this node syncs with, from [`Behaviour`].
///
/// The sync layer reacts to these: start syncing with a selected peer, stop syncing with a
/// deselected one. Selection says nothing about inbound traffic, which is always accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The peer joined the selection: sync with it. [`Behaviour`] has already asked the swarm to
    /// dial it if it was not connected, and keeps its connections open.
    Selected(PeerId),
    /// The peer left the selection (removed, bad, or displaced by a closer peer): stop starting
    /// syncs with it. Its connections close once idle unless another protocol keeps them.
    Deselected(PeerId),
}

/// Swarm behaviour that applies ring selection to the peers this node knows.
///
/// Discovery feeds it ([`Behaviour::add_peer`], [`Behaviour::remove_peer`], and every
/// established connection), the sync layer reports failures ([`Behaviour::report_error`], and
/// every failed dial counts too), the app marks trusted peers ([`Behaviour::set_trusted`]). On
/// each change of the known set, of a peer's badness or (with trusted-only selection) of a known
/// peer's trust it re-runs [`select_eligible`], emits [`Event::Selected`] / [`Event::Deselected`] for the difference,
/// dials newly selected peers that are not connected, and tells each connection's [`Handler`]
/// whether to keep the connection open. A selected peer whose last connection closes is
/// redialled, at most once per [`REDIAL_INTERVAL`]. It never denies a connection.
///
/// Dials name only the peer id: the addresses come from the other behaviours of the swarm
/// (Kademlia, mDNS, identify, request-response) through
/// [`NetworkBehaviour::handle_pending_outbound_connection`]; `Swarm::add_peer_address` alone
/// stores nothing. Its timers use tokio, so the swarm must be polled inside a tokio runtime.
#[derive(Debug)]
pub struct Behaviour {
    local: PeerId,
    limit: usize,
    fingers: Fingers,
    /// Whether only `trusted` peers may be selected.
    trusted_only: bool,
    /// Every peer discovery reported, except `local`.
    known: BTreeSet<PeerId>,
    /// Peers the app marked trusted (known or not), at most [`MAX_TRUSTED_PEERS`].
    trusted: BTreeSet<PeerId>,
    /// Known peers that were bad at the last evaluation; a difference triggers re-selection.
    bad: BTreeSet<PeerId>,
    errors: ErrorLog<PeerId>,
    /// Current selection, in selection order.
    selected: Vec<PeerId>,
    /// The same peers as `selected`, for lookups.
    selected_set: HashSet<PeerId>,
    /// Established connections per peer; no entry means not connected.
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// When each peer was last dialled by this behaviour, for [`REDIAL_INTERVAL`].
    last_dial: HashMap<PeerId, Instant>,
    /// Selected, unconnected peers whose dial waits for [`REDIAL_INTERVAL`].
    redial: BTreeSet<PeerId>,
    /// Earliest time at which a redial or a badness expiry is due.
    next_wakeup: Option<Instant>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    events: VecDeque<ToSwarm<Event, bool>>,
    waker: Option<Waker>,
}

impl Behaviour {
    /// A behaviour for the node `local` that syncs with at most `limit` peers (`0`: all known
    /// peers). It starts knowing no peers.
    #[must_use]
    pub fn new(local: PeerId, limit: usize) -> Self {
        Self {
            local,
            limit,
            fingers: Fingers::default(),
            trusted_only: false,
            known: BTreeSet::new(),
            trusted: BTreeSet::new(),
            bad: BTreeSet::new(),
            errors: ErrorLog::new(),
            selected: Vec::new(),
            selected_set: HashSet::new(),
            connections: HashMap::new(),
            last_dial: HashMap::new(),
            redial: BTreeSet::new(),
            next_wakeup: None,
            timer: None,
            events: VecDeque::new(),
            waker: None,
        }
    }

    /// Chooses where the selected peers sit on the ring (default [`Fingers::PowersOfTwo`]).
    #[must_use]
    pub fn with_fingers(mut self, fingers: Fingers) -> Self {
        self.fingers = fingers;
        self
    }

    /// Restricts selection to peers marked trusted ([`Behaviour::set_trusted`]) when `on`.
    /// Untrusted peers stay known and may stay connected, but never take a selection slot.
    #[must_use]
    pub fn with_trusted_only(mut self, on: bool) -> Self {
        self.trusted_only = on;
        self
    }

    /// Discovery (mDNS, Kademlia, identify, bootstrap list) found `peer`: put it on the ring.
    /// Reads the clock; see [`Behaviour::add_peer_at`].
    pub fn add_peer(&mut self, peer: PeerId) {
        self.add_peer_at(peer, Instant::now());
        self.wake();
    }

    /// Discovery says `peer` is gone (e.g. mDNS expiry). Reads the clock; see
    /// [`Behaviour::remove_peer_at`].
    pub fn remove_peer(&mut self, peer: PeerId) {
        self.remove_peer_at(peer, Instant::now());
        self.wake();
    }

    /// A sync with `peer` failed. Reads the clock; see [`Behaviour::report_error_at`].
    pub fn report_error(&mut self, peer: PeerId) {
        self.report_error_at(peer, Instant::now());
        self.wake();
    }

    /// The app (un)marks `peer` as trusted. Reads the clock; see [`Behaviour::set_trusted_at`].
    pub fn set_trusted(&mut self, peer: PeerId, trusted: bool) {
        self.set_trusted_at(peer, trusted, Instant::now());
        self.wake();
    }

    /// The peers to sync with, in selection order.
    pub fn selected(&self) -> impl Iterator<Item = &PeerId> {
        self.selected.iter()
    }

    /// Whether this node should sync with `peer`.
    #[must_use]
    pub fn is_selected(&self, peer: &PeerId) -> bool {
        self.selected_set.contains(peer)
    }

    /// Number of peers on the ring besides the local node, for status output.
    #[must_use]
    pub fn known_peers(&self) -> usize {
        self.known.len()
    }

    /// Puts `peer` on the ring at `now`. The local id and already known peers are ignored, as
    /// are new peers once [`MAX_KNOWN_PEERS`] are known.
    pub fn add_peer_at(&mut self, peer: PeerId, now: Instant) {
        if peer == self.local || self.known.contains(&peer) {
            return;
        }
        if self.known.len() >= MAX_KNOWN_PEERS {
            tracing::debug!(%peer, max = MAX_KNOWN_PEERS, "ring full, ignoring discovered peer");
            return;
        }
        self.known.insert(peer);
        self.reselect(now);
    }

    /// Takes `peer` off the ring at `now`. Its error history and trust mark are kept, so a
    /// flapping peer stays bad and a returning trusted peer stays trusted.
    pub fn remove_peer_at(&mut self, peer: PeerId, now: Instant) {
        if self.known.remove(&peer) {
            self.reselect(now);
        }
    }

    /// Counts a failed sync with `peer` at `now`. Enough errors make the peer bad for
    /// [`BAD_PEER_WINDOW`](super::BAD_PEER_WINDOW) (see [`ErrorLog`]), which may change the
    /// selection.
    pub fn report_error_at(&mut self, peer: PeerId, now: Instant) {
        if peer == self.local {
            return;
        }
        let was_bad = self.errors.is_bad(&peer, now);
        self.errors.record(peer, now);
        if self.errors.is_bad(&peer, now) != was_bad && self.known.contains(&peer) {
            tracing::debug!(%peer, bad = !was_bad, "peer badness changed");
            self.reselect(now);
        }
    }

    /// Marks (`true`) or unmarks `peer` as trusted at `now`. With trusted-only selection a
    /// change to a known peer re-selects. Marks beyond [`MAX_TRUSTED_PEERS`] are ignored.
    pub fn set_trusted_at(&mut self, peer: PeerId, trusted: bool, now: Instant) {
        if peer == self.local {
            return;
        }
        let changed = if trusted {
            if !self.trusted.contains(&peer) && self.trusted.len() >= MAX_TRUSTED_PEERS {
                tracing::debug!(%peer, max = MAX_TRUSTED_PEERS, "trusted set full, ignoring");
                return;
            }
            self.trusted.insert(peer)
        } else {
            self.trusted.remove(&peer)
        };
        if changed && self.trusted_only && self.known.contains(&peer) {
            self.reselect(now);
        }
    }

    /// Whether `peer` is marked trusted.
    #[must_use]
    pub fn is_trusted(&self, peer: &PeerId) -> bool {
        self.trusted.contains(peer)
    }

    /// Whether `peer` may take a selection slot.
    fn is_eligible(&self, peer: &PeerId) -> bool {
        !self.trusted_only || self.trusted.contains(peer)
    }

    fn is_connected(&self, peer: &PeerId) -> bool {
        self.connections.contains_key(peer)
    }

    /// Re-runs [`select`] and queues events, handler notifications and dials for the difference.
    fn reselect(&mut self, now: Instant) {
        let errors = &self.errors;
        self.bad = self
            .known
            .iter()
            .filter(|p| errors.is_bad(p, now))
            .copied()
            .collect();
        let peers: Vec<PeerId> = self.known.iter().copied().collect();
        let bad = &self.bad;
        let new = select_eligible(
            &self.local,
            &peers,
            self.limit,
            self.fingers,
            |p| self.is_eligible(p),
            |p| bad.contains(p),
        );
        let new_set: HashSet<PeerId> = new.iter().copied().collect();

        let old = std::mem::take(&mut self.selected);
        let old_set = std::mem::take(&mut self.selected_set);
        for peer in old.iter().filter(|p| !new_set.contains(p)) {
            tracing::debug!(%peer, "ring deselected peer");
            self.redial.remove(peer);
            self.notify_handlers(*peer, false);
            self.events
                .push_back(ToSwarm::GenerateEvent(Event::Deselected(*peer)));
        }
        for peer in new.iter().filter(|p| !old_set.contains(p)) {
            tracing::debug!(%peer, "ring selected peer");
            self.notify_handlers(*peer, true);
            self.events
                .push_back(ToSwarm::GenerateEvent(Event::Selected(*peer)));
            if !self.is_connected(peer) {
                self.request_dial(*peer, now);
            }
        }
        self.selected = new;
        self.selected_set = new_set;
        self.schedule_badness_expiry(now);
    }

    /// Tells every connection to `peer` whether to keep itself open.
    fn notify_handlers(&mut self, peer: PeerId, keep_alive: bool) {
        if let Some(connections) = self.connections.get(&peer) {
            for &connection in connections {
                self.events.push_back(ToSwarm::NotifyHandler {
                    peer_id: peer,
                    handler: NotifyHandler::One(connection),
                    event: keep_alive,
                });
            }
        }
    }

    /// Dials `peer` now, or once [`REDIAL_INTERVAL`] has passed since its last dial.
    fn request_dial(&mut self, peer: PeerId, now: Instant) {
        if let Some(&last) = self.last_dial.get(&peer) {
            if now.saturating_duration_since(last) < REDIAL_INTERVAL {
                self.redial.insert(peer);
                self.schedule(last.checked_add(REDIAL_INTERVAL).unwrap_or(now));
                return;
            }
        }
        if self.last_dial.len() >= MAX_KNOWN_PEERS {
            self.last_dial
                .retain(|_, &mut last| now.saturating_duration_since(last) < REDIAL_INTERVAL);
        }
        self.last_dial.insert(peer, now);
        self.redial.remove(&peer);
        self.events.push_back(ToSwarm::Dial {
            opts: DialOpts::peer_id(peer)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build(),
        });
    }

    fn schedule(&mut self, at: Instant) {
        self.next_wakeup = Some(self.next_wakeup.map_or(at, |next| next.min(at)));
    }

    /// Schedules a wake-up for the earliest moment a bad peer turns good again.
    fn schedule_badness_expiry(&mut self, now: Instant) {
        let earliest = self
            .bad
            .iter()
            .filter_map(|p| self.errors.bad_until(p, now))
            .min();
        if let Some(at) = earliest {
            self.schedule(at);
        }
    }

    /// Time-driven work: forget old errors, re-select if badness changed, run due redials.
    fn tick(&mut self, now: Instant) {
        self.next_wakeup = None;
        self.errors.prune(now);
        let errors = &self.errors;
        let bad = &self.bad;
        if self
            .known
            .iter()
            .any(|p| errors.is_bad(p, now) != bad.contains(p))
        {
            self.reselect(now);
        }
        for peer in std::mem::take(&mut self.redial) {
            if self.is_selected(&peer) && !self.is_connected(&peer) {
                self.request_dial(peer, now);
            }
        }
        self.last_dial
            .retain(|_, &mut last| now.saturating_duration_since(last) < REDIAL_INTERVAL);
        self.schedule_badness_expiry(now);
    }

    /// Applies a swarm event at `now`: connections are discovery and keep-alive bookkeeping,
    /// failed dials count as errors.
    pub fn on_swarm_event_at(&mut self, event: FromSwarm, now: Instant) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            }) => {
                let connections = self.connections.entry(peer_id).or_default();
                if !connections.contains(&connection_id) {
                    connections.push(connection_id);
                }
                self.redial.remove(&peer_id);
                self.add_peer_at(peer_id, now);
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => {
                if let Some(connections) = self.connections.get_mut(&peer_id) {
                    connections.retain(|&c| c != connection_id);
                    if connections.is_empty() {
                        self.connections.remove(&peer_id);
                    }
                }
                if self.is_selected(&peer_id) && !self.is_connected(&peer_id) {
                    self.request_dial(peer_id, now);
                }
            }
            FromSwarm::DialFailure(DialFailure {
                peer_id: Some(peer_id),
                error,
                ..
            }) => {
                // A false dial condition (already connected or dialling) or a local abort says
                // nothing about the peer.
                if matches!(
                    error,
                    DialError::DialPeerConditionFalse(_) | DialError::Aborted
                ) {
                    return;
                }
                self.report_error_at(peer_id, now);
                if self.is_selected(&peer_id) && !self.is_connected(&peer_id) {
                    self.request_dial(peer_id, now);
                }
            }
            _ => {}
        }
    }

    fn wake(&mut self) {
        if !self.events.is_empty() || self.next_wakeup.is_some() {
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(self.is_selected(&peer)))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(self.is_selected(&peer)))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.on_swarm_event_at(event, Instant::now());
    }

    fn on_connection_handler_event(
        &mut self,
        _peer_id: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        self.poll_at(cx, Instant::now())
    }
}

impl Behaviour {
    /// [`NetworkBehaviour::poll`] with the clock read once by the caller: hands out queued
    /// actions, runs time-driven work that is due at `now`, and arms the timer for the next.
    fn poll_at(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<ToSwarm<Event, bool>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(event);
            }
            let Some(at) = self.next_wakeup else {
                self.timer = None;
                break;
            };
            if now >= at {
                self.timer = None;
                self.tick(now);
                continue;
            }
            let deadline = tokio::time::Instant::from_std(at);
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                break;
            }
            // The timer fired, so `at` has passed even if `now` was read a hair earlier.
            self.timer = None;
            self.tick(at);
        }
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
#[path = "tests/behaviour.rs"]
mod tests;
