//! Ring selection: which peers this node syncs with.
//!
//! Syncing with every known peer costs bandwidth, connections and storage work that grow with the
//! network. Syncing with too few, or with the wrong few, splits the overlay so that messages stop
//! spreading. Ring selection bounds the number of sync partners to a limit `L` while keeping the
//! overlay connected:
//!
//! - Every node places all known peers and itself on one ring, sorted by peer id. Every node
//!   sorts the same way, so nodes that know the same peers agree on the ring.
//! - A node at position `i` on a ring of `N` picks the peers at distances `1, 2, 4, …, 2^(L-1)`
//!   (`(i + 2^n) mod N`). Distance 1 alone already links the ring into one cycle, so the overlay
//!   stays strongly connected; the longer chords are shortcuts. Every distance below `2^L` is a
//!   sum of distinct chords, so with `L >= log2 N` the diameter is at most `L` hops, i.e.
//!   O(log N); with a smaller `L` it is about `N / 2^(L-1) + L` hops.
//! - When a distance lands on a peer already picked, or on a peer that keeps failing
//!   ([`ErrorLog`]), the node walks forward to the next usable peer. Failing peers are taken only
//!   when nothing else is left.
//!
//! [`select`] is the pure rule. [`Behaviour`] applies it inside the libp2p swarm: it tracks
//! discovered peers and sync errors, reports changes as [`Event`]s, dials newly selected peers
//! and keeps their connections open. It never denies a connection: Kademlia, identify and
//! inbound pushes from peers that selected *us* must keep working. Connections to peers that are
//! not selected simply close once idle.
//!
//! # Peer order
//!
//! `PeerId`'s `Ord` is derived from its multihash: `(code, digest length, digest)`. Valid peer
//! ids use code `0x00` (identity) or `0x12` (sha2-256) and digests of at most 42 bytes, so every
//! field's varint is one byte and this order equals the order of [`PeerId::to_bytes`]. The test
//! `peer_id_ord_matches_byte_order` checks that, so the ring is sorted by `PeerId` directly.

use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    convert::Infallible,
    future::Future,
    hash::Hash,
    pin::Pin,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use libp2p::{
    core::{transport::PortUse, upgrade::DeniedUpgrade, Endpoint},
    swarm::{
        behaviour::ConnectionEstablished,
        dial_opts::{DialOpts, PeerCondition},
        handler::{ConnectionEvent, FullyNegotiatedInbound, FullyNegotiatedOutbound},
        ConnectionClosed, ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent,
        ConnectionId, DialError, DialFailure, FromSwarm, NetworkBehaviour, NotifyHandler,
        SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};

/// Errors within [`BAD_PEER_WINDOW`] at which a peer counts as bad and is skipped by
/// [`select`] unless nothing else is left.
pub const BAD_PEER_ERRORS: usize = 10;

/// How long a sync error counts against a peer. After this a peer that came back (a phone out
/// of range, a laptop that slept) gets selected again.
pub const BAD_PEER_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Error timestamps kept per peer. More than [`BAD_PEER_ERRORS`] so that a bad peer's recovery
/// time stays exact, few enough that a flood of errors costs little memory.
pub const MAX_ERRORS_PER_PEER: usize = 64;

/// Peers an [`ErrorLog`] tracks at most; beyond it the peer with the oldest last error is
/// forgotten, so hostile churn cannot grow memory without bound.
pub const MAX_ERROR_PEERS: usize = 4096;

/// Peers a [`Behaviour`] keeps on its ring at most; further discoveries are ignored until some
/// are removed. Bounds memory and the O(N) cost of each re-selection.
pub const MAX_KNOWN_PEERS: usize = 8192;

/// Minimum time between two dials of the same peer by a [`Behaviour`], so that a selected peer
/// whose connections keep failing or closing does not cause a dial storm.
pub const REDIAL_INTERVAL: Duration = Duration::from_secs(5);

/// Ring selection: picks at most `limit` peers for `self_id` to sync with.
///
/// The ring is `peers` plus `self_id`, sorted by `Ord` and deduplicated (so `peers` may or may
/// not contain `self_id`, and may contain duplicates or come in any order). With `N` ring
/// members and `self_id` at position `i`:
///
/// - `limit == 0` (no limit), or at most `limit` other peers: all other peers, in ring order
///   starting after `self_id`.
/// - otherwise, for `n` in `0..limit`: start at `(i + 2^n) mod N` and walk forward to the first
///   peer that is neither `self_id`, nor already picked, nor `is_bad`. If every remaining peer is
///   bad, take the first remaining one from that start anyway: a bad peer beats no peer.
///
/// The result is in selection order (distance 1 first) and depends only on the arguments.
/// `is_bad` is called at most once per ring member.
#[must_use]
pub fn select<P: Ord + Clone>(
    self_id: &P,
    peers: &[P],
    limit: usize,
    is_bad: impl Fn(&P) -> bool,
) -> Vec<P> {
    let mut ring: Vec<&P> = Vec::with_capacity(peers.len().saturating_add(1));
    ring.extend(peers);
    ring.push(self_id);
    ring.sort_unstable();
    ring.dedup();
    let n = ring.len();
    let Ok(me) = ring.binary_search(&self_id) else {
        // `self_id` was pushed above; the search cannot miss. Selecting nobody is the safe answer.
        return Vec::new();
    };
    let others = n - 1;

    if limit == 0 || others <= limit {
        return (1..n).map(|k| ring[add_mod(me, k, n)].clone()).collect();
    }

    // Here `n >= 3` and at least one unpicked peer remains in every round, so a pick always
    // succeeds.
    let bad: Vec<bool> = ring.iter().map(|p| is_bad(p)).collect();
    let mut taken = vec![false; n];
    taken[me] = true;
    let mut picked = Vec::with_capacity(limit);
    let mut distance = 1; // 2^round mod n, doubled without overflow.
    for _ in 0..limit {
        let start = add_mod(me, distance, n);
        let walk = |k: usize| add_mod(start, k, n);
        let good = (0..n).map(walk).find(|&j| !taken[j] && !bad[j]);
        let Some(j) = good.or_else(|| (0..n).map(walk).find(|&j| !taken[j])) else {
            break;
        };
        taken[j] = true;
        picked.push(ring[j].clone());
        distance = add_mod(distance, distance, n);
    }
    picked
}

/// `(a + b) mod n` for `a, b < n`, without overflow.
fn add_mod(a: usize, b: usize, n: usize) -> usize {
    let room = n - a;
    if b >= room {
        b - room
    } else {
        a + b
    }
}

/// Sync errors per peer, to decide which peers are bad.
///
/// A peer is bad when it caused [`BAD_PEER_ERRORS`] or more errors within the last
/// [`BAD_PEER_WINDOW`]. Selection skips bad peers so that one unreachable or misbehaving peer
/// does not eat a sync slot, and the window lets it back once it recovers. Time is passed in
/// (`now`), so the log is deterministic and testable; callers should pass non-decreasing times.
/// Memory is bounded by [`MAX_ERRORS_PER_PEER`] and [`MAX_ERROR_PEERS`].
#[derive(Debug, Clone)]
pub struct ErrorLog<P> {
    errors: HashMap<P, VecDeque<Instant>>,
}

impl<P> Default for ErrorLog<P> {
    fn default() -> Self {
        Self {
            errors: HashMap::new(),
        }
    }
}

/// Whether an error at `at` still counts at `now`. An error exactly [`BAD_PEER_WINDOW`] old
/// no longer counts; one stamped after `now` does.
fn in_window(at: Instant, now: Instant) -> bool {
    now.saturating_duration_since(at) < BAD_PEER_WINDOW
}

impl<P: Eq + Hash + Clone> ErrorLog<P> {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one error with `peer` at `now`, dropping its expired errors. If the log already
    /// tracks [`MAX_ERROR_PEERS`] peers, expired entries are pruned and, if still full, the peer
    /// whose last error is oldest is forgotten.
    pub fn record(&mut self, peer: P, now: Instant) {
        if !self.errors.contains_key(&peer) && self.errors.len() >= MAX_ERROR_PEERS {
            self.prune(now);
            if self.errors.len() >= MAX_ERROR_PEERS {
                self.evict_stalest();
            }
        }
        let log = self.errors.entry(peer).or_default();
        log.retain(|&at| in_window(at, now));
        log.push_back(now);
        while log.len() > MAX_ERRORS_PER_PEER {
            log.pop_front();
        }
    }

    /// Number of `peer`'s errors that still count at `now` (at most [`MAX_ERRORS_PER_PEER`]).
    #[must_use]
    pub fn recent_errors(&self, peer: &P, now: Instant) -> usize {
        self.errors.get(peer).map_or(0, |log| {
            log.iter().filter(|&&at| in_window(at, now)).count()
        })
    }

    /// Whether `peer` is bad at `now`: [`BAD_PEER_ERRORS`] or more errors within the last
    /// [`BAD_PEER_WINDOW`].
    #[must_use]
    pub fn is_bad(&self, peer: &P, now: Instant) -> bool {
        self.recent_errors(peer, now) >= BAD_PEER_ERRORS
    }

    /// When `peer`, bad at `now`, stops being bad if no further errors occur: the moment its
    /// [`BAD_PEER_ERRORS`]-th most recent error leaves the window. `None` if it is not bad.
    /// Lets a driver wake up exactly when a re-selection could change.
    #[must_use]
    pub fn bad_until(&self, peer: &P, now: Instant) -> Option<Instant> {
        let log = self.errors.get(peer)?;
        let mut recent: Vec<Instant> = log
            .iter()
            .copied()
            .filter(|&at| in_window(at, now))
            .collect();
        let count = recent.len();
        if count < BAD_PEER_ERRORS {
            return None;
        }
        recent.sort_unstable();
        recent
            .get(count - BAD_PEER_ERRORS)
            .and_then(|at| at.checked_add(BAD_PEER_WINDOW))
    }

    /// Drops every error that no longer counts at `now`, and peers left without errors.
    pub fn prune(&mut self, now: Instant) {
        self.errors.retain(|_, log| {
            log.retain(|&at| in_window(at, now));
            !log.is_empty()
        });
    }

    /// Number of peers with recorded errors (expired ones included until pruned).
    #[must_use]
    pub fn tracked_peers(&self) -> usize {
        self.errors.len()
    }

    /// Forgets the peer whose most recent error is oldest.
    fn evict_stalest(&mut self) {
        let stalest = self
            .errors
            .iter()
            .min_by_key(|(_, log)| log.iter().max().copied())
            .map(|(peer, _)| peer.clone());
        if let Some(peer) = stalest {
            self.errors.remove(&peer);
        }
    }
}

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
/// every failed dial counts too). On each change of the known set or of a peer's badness it
/// re-runs [`select`], emits [`Event::Selected`] / [`Event::Deselected`] for the difference,
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
    /// Every peer on the ring except `local`.
    known: BTreeSet<PeerId>,
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
            known: BTreeSet::new(),
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

    /// Discovery (mDNS, Kademlia, identify, bootstrap list) found `peer`: put it on the ring.
    /// The local id and already known peers are ignored, as are new peers once
    /// [`MAX_KNOWN_PEERS`] are known.
    pub fn add_peer(&mut self, peer: PeerId) {
        self.add_peer_at(peer, Instant::now());
        self.wake();
    }

    /// Discovery says `peer` is gone (e.g. mDNS expiry): take it off the ring. Its error history
    /// is kept, so a flapping peer stays bad.
    pub fn remove_peer(&mut self, peer: PeerId) {
        if self.known.remove(&peer) {
            self.reselect(Instant::now());
            self.wake();
        }
    }

    /// A sync with `peer` failed. Enough errors make the peer bad for [`BAD_PEER_WINDOW`]
    /// (see [`ErrorLog`]), which may change the selection.
    pub fn report_error(&mut self, peer: PeerId) {
        self.report_error_at(peer, Instant::now());
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

    fn add_peer_at(&mut self, peer: PeerId, now: Instant) {
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

    fn report_error_at(&mut self, peer: PeerId, now: Instant) {
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
        let new = select(&self.local, &peers, self.limit, |p| bad.contains(p));
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

    fn on_swarm_event_at(&mut self, event: FromSwarm, now: Instant) {
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
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(event);
            }
            let Some(at) = self.next_wakeup else {
                self.timer = None;
                break;
            };
            let now = Instant::now();
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
            // The timer fired; its clock may be a hair ahead of `Instant::now()`.
            self.timer = None;
            self.tick(now.max(at));
        }
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Per-connection handler of [`Behaviour`]: speaks no protocol, only keeps the connection open
/// while its peer is selected.
///
/// The swarm closes a connection once it is idle and no handler wants it kept alive, so this
/// handler holds connections to sync partners open and lets all others expire.
#[derive(Debug, Clone)]
pub struct Handler {
    keep_alive: bool,
}

impl Handler {
    fn new(keep_alive: bool) -> Self {
        Self { keep_alive }
    }
}

impl ConnectionHandler for Handler {
    /// Whether the peer is selected, i.e. whether to keep the connection open.
    type FromBehaviour = bool;
    type ToBehaviour = Infallible;
    type InboundProtocol = DeniedUpgrade;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<DeniedUpgrade, ()> {
        SubstreamProtocol::new(DeniedUpgrade, ())
    }

    fn connection_keep_alive(&self) -> bool {
        self.keep_alive
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), Infallible>> {
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, keep_alive: bool) {
        self.keep_alive = keep_alive;
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<DeniedUpgrade, DeniedUpgrade>) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol, ..
            })
            | ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol, ..
            }) => match protocol {},
            // Nothing else concerns a handler without protocols.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::{BTreeSet, VecDeque},
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        },
        task::{Context, Poll, Wake},
        time::{Duration, Instant},
    };

    use futures::StreamExt;
    use libp2p::{
        core::{transport::PortUse, ConnectedPoint, Endpoint},
        swarm::{
            behaviour::ConnectionEstablished,
            dial_opts::{DialOpts, PeerCondition},
            ConnectionClosed, ConnectionId, DialError, DialFailure, FromSwarm, NetworkBehaviour,
            NotifyHandler, Swarm, SwarmEvent, ToSwarm,
        },
        Multiaddr, PeerId,
    };
    use proptest::prelude::*;

    use super::{
        select, Behaviour, ErrorLog, Event, BAD_PEER_ERRORS, BAD_PEER_WINDOW, MAX_ERRORS_PER_PEER,
        MAX_ERROR_PEERS, REDIAL_INTERVAL,
    };

    fn ids(n: u32) -> Vec<u32> {
        (0..n).collect()
    }

    fn never(_: &u32) -> bool {
        false
    }

    // ---- select: hand-made rings ----

    #[test]
    fn thirteen_peers_pick_powers_of_two() {
        assert_eq!(select(&0, &ids(13), 4, never), vec![1, 2, 4, 8]);
        // Distances wrap around the ring: 5 + 8 = 13 = 0 (mod 13).
        assert_eq!(select(&5, &ids(13), 4, never), vec![6, 7, 9, 0]);
    }

    #[test]
    fn distances_count_ring_positions_not_id_values() {
        let peers: Vec<u32> = (1..=13).map(|k| k * 10).collect();
        assert_eq!(select(&10, &peers, 4, never), vec![20, 30, 50, 90]);
    }

    #[test]
    fn distance_landing_on_a_picked_peer_walks_forward() {
        // N = 6: distances 1, 2, 4, then 8 = 2 (mod 6), which is taken, so the walk takes 3.
        assert_eq!(select(&0, &ids(6), 4, never), vec![1, 2, 4, 3]);
        // N = 7: 8 = 1 (mod 7): 1, 2 taken, take 3; 16 = 2: 2, 3, 4 taken, take 5.
        assert_eq!(select(&0, &ids(7), 5, never), vec![1, 2, 4, 3, 5]);
        // The walk wraps past the end of the ring: self 4 of 6, 4 + 8 = 0 (mod 6) is taken.
        assert_eq!(select(&4, &ids(6), 4, never), vec![5, 0, 2, 1]);
    }

    #[test]
    fn bad_peers_are_skipped() {
        let bad = |p: &u32| [1, 4].contains(p);
        // 1 is bad: take 2; 2 is taken: take 3; 4 is bad: take 5; then 8.
        assert_eq!(select(&0, &ids(13), 4, bad), vec![2, 3, 5, 8]);
        // The walk skips self too: 4 is bad, 0 is self, 1 and 2 are taken.
        assert_eq!(select(&0, &ids(5), 3, |p| *p == 4), vec![1, 2, 3]);
    }

    #[test]
    fn bad_peers_are_taken_when_nothing_else_is_left() {
        assert_eq!(select(&0, &ids(5), 3, |_| true), vec![1, 2, 4]);
        // 4 is the only good peer and goes first; then the bad ones from each start.
        assert_eq!(select(&0, &ids(5), 3, |p| *p != 4), vec![4, 2, 1]);
    }

    #[test]
    fn no_limit_selects_everyone_in_ring_order() {
        assert_eq!(select(&3, &ids(6), 0, never), vec![4, 5, 0, 1, 2]);
        assert_eq!(select(&3, &ids(6), 0, |_| true), vec![4, 5, 0, 1, 2]);
    }

    #[test]
    fn limit_at_or_above_peer_count_selects_everyone() {
        assert_eq!(select(&0, &ids(5), 4, never), vec![1, 2, 3, 4]);
        assert_eq!(select(&0, &ids(5), 10, never), vec![1, 2, 3, 4]);
        assert_eq!(select(&2, &ids(5), 4, |_| true), vec![3, 4, 0, 1]);
    }

    #[test]
    fn self_may_or_may_not_be_in_peers() {
        let without_self: Vec<u32> = (1..13).collect();
        assert_eq!(select(&0, &without_self, 4, never), vec![1, 2, 4, 8]);
        assert_eq!(select(&0, &ids(13), 4, never), vec![1, 2, 4, 8]);
    }

    #[test]
    fn duplicates_and_input_order_are_ignored() {
        let mut messy: Vec<u32> = ids(13).into_iter().rev().collect();
        messy.extend([8, 8, 0, 3, 12, 1]);
        assert_eq!(select(&0, &messy, 4, never), vec![1, 2, 4, 8]);
    }

    #[test]
    fn tiny_rings() {
        assert!(select(&0, &[], 3, never).is_empty());
        assert!(select(&0, &[0, 0], 3, never).is_empty());
        assert_eq!(select(&0, &[7], 3, never), vec![7]);
        assert_eq!(select(&0, &[7], 3, |_| true), vec![7]);
    }

    #[test]
    fn large_limits_do_not_overflow() {
        let peers = ids(1000);
        for limit in [63, 64, 65, 200, 998] {
            let picked = select(&0, &peers, limit, |p| p.is_multiple_of(3));
            assert_eq!(picked.len(), limit);
            let distinct: BTreeSet<u32> = picked.iter().copied().collect();
            assert_eq!(distinct.len(), limit);
            assert!(!distinct.contains(&0));
        }
        assert_eq!(select(&0, &peers, 999, never).len(), 999);
    }

    /// `select` on the ring `0..n` for every node, as adjacency lists.
    fn overlay(n: usize, limit: usize, bad: &[bool]) -> Vec<Vec<usize>> {
        let peers: Vec<usize> = (0..n).collect();
        let is_bad = |p: &usize| bad.get(*p).copied().unwrap_or(false);
        peers
            .iter()
            .map(|me| select(me, &peers, limit, is_bad))
            .collect()
    }

    /// BFS hop counts from `from`; `None` = unreachable.
    fn hops(graph: &[Vec<usize>], from: usize) -> Vec<Option<usize>> {
        let mut dist = vec![None; graph.len()];
        dist[from] = Some(0);
        let mut queue = VecDeque::from([from]);
        while let Some(node) = queue.pop_front() {
            let next = dist[node].map_or(0, |d| d + 1);
            for &peer in &graph[node] {
                if dist[peer].is_none() {
                    dist[peer] = Some(next);
                    queue.push_back(peer);
                }
            }
        }
        dist
    }

    #[test]
    fn log_limit_gives_log_diameter() {
        for n in 2..=256usize {
            let ceil_log2 = (usize::BITS - (n - 1).leading_zeros()) as usize;
            let limit = ceil_log2.max(1);
            let graph = overlay(n, limit, &[]);
            for from in 0..n {
                let worst = hops(&graph, from)
                    .into_iter()
                    .map(|d| d.unwrap_or(usize::MAX))
                    .max();
                assert!(
                    worst <= Some(limit),
                    "n={n} limit={limit} from={from}: {worst:?} hops"
                );
            }
        }
    }

    proptest! {
        /// Without bad peers the overlay is strongly connected. With bad peers (the same for
        /// everyone), nobody syncs *to* a bad peer while good ones remain, so the property is:
        /// every node reaches every good node (all nodes if none is good), and ignoring edge
        /// direction everyone is connected.
        #[test]
        fn overlay_stays_connected(
            n in 2usize..200,
            limit in 1usize..6,
            bad in proptest::collection::vec(any::<bool>(), 200),
        ) {
            let bad = &bad[..n];

            let plain = overlay(n, limit, &[]);
            for from in 0..n {
                prop_assert!(hops(&plain, from).iter().all(Option::is_some), "from {}", from);
            }

            let graph = overlay(n, limit, bad);
            let good: Vec<usize> = (0..n).filter(|&p| !bad[p]).collect();
            let must_reach: Vec<usize> = if good.is_empty() { (0..n).collect() } else { good };
            for from in 0..n {
                let reach = hops(&graph, from);
                for &to in &must_reach {
                    prop_assert!(reach[to].is_some(), "{} cannot reach {}", from, to);
                }
            }

            let mut undirected = vec![Vec::new(); n];
            for (from, picked) in graph.iter().enumerate() {
                for &to in picked {
                    undirected[from].push(to);
                    undirected[to].push(from);
                }
            }
            prop_assert!(hops(&undirected, 0).iter().all(Option::is_some));
        }

        /// Output depends on the set of peers only, never picks self or a duplicate, has the
        /// promised length, and contains no bad peer while enough good ones exist.
        #[test]
        fn selection_is_a_function_of_the_peer_set(
            peers in proptest::collection::vec(0u16..300, 0..120),
            me in 0u16..300,
            limit in 0usize..8,
            bad_modulus in 2u16..6,
        ) {
            let is_bad = |p: &u16| p.is_multiple_of(bad_modulus);
            let picked = select(&me, &peers, limit, is_bad);

            let mut reordered: Vec<u16> = peers.iter().rev().copied().collect();
            reordered.extend(peers.iter().take(7));
            reordered.push(me);
            prop_assert_eq!(&select(&me, &reordered, limit, is_bad), &picked);

            let others: BTreeSet<u16> = peers.iter().copied().filter(|p| *p != me).collect();
            let expected = if limit == 0 || others.len() <= limit { others.len() } else { limit };
            prop_assert_eq!(picked.len(), expected);
            let distinct: BTreeSet<u16> = picked.iter().copied().collect();
            prop_assert_eq!(distinct.len(), picked.len());
            prop_assert!(distinct.is_subset(&others));
            let good = others.iter().filter(|p| !is_bad(p)).count();
            if limit != 0 && others.len() > limit && good >= limit {
                prop_assert!(picked.iter().all(|p| !is_bad(p)));
            }
        }
    }

    // ---- PeerId order ----

    #[test]
    fn peer_id_ord_matches_byte_order() -> anyhow::Result<()> {
        let mut peers: Vec<PeerId> = (0..200).map(|_| PeerId::random()).collect();
        for _ in 0..50 {
            peers.push(
                libp2p::identity::Keypair::generate_ed25519()
                    .public()
                    .to_peer_id(),
            );
        }
        for k in 0..50u8 {
            // sha2-256 multihash: code 0x12, 32-byte digest.
            let mut bytes = vec![0x12, 0x20];
            bytes.extend((0..32u8).map(|i| i.wrapping_mul(k).wrapping_add(k)));
            peers.push(PeerId::from_bytes(&bytes)?);
        }
        let mut by_ord = peers.clone();
        by_ord.sort();
        let mut by_bytes = peers;
        by_bytes.sort_by_key(|p| p.to_bytes());
        assert_eq!(by_ord, by_bytes);
        Ok(())
    }

    // ---- ErrorLog ----

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn ten_errors_within_the_hour_make_a_peer_bad() {
        let t0 = Instant::now();
        let mut log = ErrorLog::new();
        for k in 0..9 {
            log.record(1u32, t0 + secs(k * 60));
        }
        let t = t0 + secs(9 * 60);
        assert!(!log.is_bad(&1, t));
        assert_eq!(log.bad_until(&1, t), None);
        log.record(1, t);
        assert_eq!(BAD_PEER_ERRORS, 10);
        assert_eq!(log.recent_errors(&1, t), 10);
        assert!(log.is_bad(&1, t));
        assert!(!log.is_bad(&2, t));
        // The first error leaves the window exactly one hour after it happened.
        assert_eq!(BAD_PEER_WINDOW, secs(3600));
        assert!(log.is_bad(&1, t0 + (BAD_PEER_WINDOW - secs(1))));
        assert!(!log.is_bad(&1, t0 + BAD_PEER_WINDOW));
        assert_eq!(log.bad_until(&1, t), Some(t0 + BAD_PEER_WINDOW));
        assert_eq!(log.bad_until(&1, t0 + BAD_PEER_WINDOW), None);
    }

    #[test]
    fn errors_spread_thinner_than_ten_per_hour_never_make_a_peer_bad() {
        let t0 = Instant::now();
        let mut log = ErrorLog::new();
        for k in 0..40 {
            let at = t0 + secs(k * 7 * 60);
            log.record(1u32, at);
            assert!(!log.is_bad(&1, at), "error {k}");
            assert!(log.recent_errors(&1, at) <= 9);
        }
    }

    #[test]
    fn bad_until_follows_the_tenth_most_recent_error() {
        let t0 = Instant::now();
        let mut log = ErrorLog::new();
        for k in 0..12 {
            log.record(1u32, t0 + secs(k));
        }
        let now = t0 + secs(11);
        assert_eq!(log.bad_until(&1, now), Some(t0 + secs(2) + BAD_PEER_WINDOW));
        assert!(log.is_bad(&1, t0 + (secs(1) + BAD_PEER_WINDOW)));
        assert!(!log.is_bad(&1, t0 + secs(2) + BAD_PEER_WINDOW));
    }

    #[test]
    fn errors_per_peer_are_capped() {
        let t0 = Instant::now();
        let mut log = ErrorLog::new();
        for _ in 0..(MAX_ERRORS_PER_PEER * 3) {
            log.record(1u32, t0);
        }
        assert_eq!(log.recent_errors(&1, t0), MAX_ERRORS_PER_PEER);
        assert!(log.is_bad(&1, t0));
    }

    #[test]
    fn tracked_peers_are_capped_by_evicting_the_stalest() {
        let t0 = Instant::now();
        let mut log = ErrorLog::new();
        let total = MAX_ERROR_PEERS + 10;
        for p in 0..total {
            log.record(p, t0 + Duration::from_millis(p as u64));
        }
        let end = t0 + secs(60);
        assert_eq!(log.tracked_peers(), MAX_ERROR_PEERS);
        for p in 0..10 {
            assert_eq!(log.recent_errors(&p, end), 0, "peer {p} should be evicted");
        }
        assert_eq!(log.recent_errors(&10, end), 1);
        assert_eq!(log.recent_errors(&(total - 1), end), 1);
    }

    #[test]
    fn expired_errors_are_pruned() {
        let t0 = Instant::now();
        let mut log = ErrorLog::new();
        for p in 0..MAX_ERROR_PEERS {
            log.record(p, t0);
        }
        log.record(0, t0 + secs(1800));
        log.prune(t0 + BAD_PEER_WINDOW);
        assert_eq!(log.tracked_peers(), 1);
        assert_eq!(log.recent_errors(&0, t0 + BAD_PEER_WINDOW), 1);
        // A full log makes room by pruning before it evicts anything current.
        for p in 0..MAX_ERROR_PEERS {
            log.record(p, t0 + BAD_PEER_WINDOW);
        }
        let later = t0 + BAD_PEER_WINDOW * 2;
        log.record(MAX_ERROR_PEERS, later);
        assert_eq!(log.tracked_peers(), 1);
        assert_eq!(log.recent_errors(&MAX_ERROR_PEERS, later), 1);
    }

    // ---- Behaviour without a swarm ----

    /// `n` random peer ids in ring order.
    fn sorted_peers(n: usize) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = (0..n).map(|_| PeerId::random()).collect();
        peers.sort();
        peers
    }

    fn take_actions(behaviour: &mut Behaviour) -> Vec<ToSwarm<Event, bool>> {
        behaviour.events.drain(..).collect()
    }

    fn events(actions: &[ToSwarm<Event, bool>]) -> Vec<Event> {
        actions
            .iter()
            .filter_map(|a| match a {
                ToSwarm::GenerateEvent(e) => Some(*e),
                _ => None,
            })
            .collect()
    }

    fn dials(actions: &[ToSwarm<Event, bool>]) -> Vec<PeerId> {
        actions
            .iter()
            .filter_map(|a| match a {
                ToSwarm::Dial { opts } => opts.get_peer_id(),
                _ => None,
            })
            .collect()
    }

    fn notifications(actions: &[ToSwarm<Event, bool>]) -> Vec<(PeerId, ConnectionId, bool)> {
        actions
            .iter()
            .filter_map(|a| match a {
                ToSwarm::NotifyHandler {
                    peer_id,
                    handler: NotifyHandler::One(c),
                    event,
                } => Some((*peer_id, *c, *event)),
                _ => None,
            })
            .collect()
    }

    fn endpoint() -> anyhow::Result<ConnectedPoint> {
        Ok(ConnectedPoint::Dialer {
            address: "/ip4/127.0.0.1/tcp/4001".parse::<Multiaddr>()?,
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        })
    }

    fn established(
        b: &mut Behaviour,
        peer: PeerId,
        id: usize,
        cp: &ConnectedPoint,
        now: Instant,
    ) -> ConnectionId {
        let connection_id = ConnectionId::new_unchecked(id);
        b.on_swarm_event_at(
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id: peer,
                connection_id,
                endpoint: cp,
                failed_addresses: &[],
                other_established: 0,
            }),
            now,
        );
        connection_id
    }

    fn closed(
        b: &mut Behaviour,
        peer: PeerId,
        connection_id: ConnectionId,
        cp: &ConnectedPoint,
        now: Instant,
    ) {
        b.on_swarm_event_at(
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id: peer,
                connection_id,
                endpoint: cp,
                cause: None,
                remaining_established: 0,
            }),
            now,
        );
    }

    #[test]
    fn discovered_peers_are_selected_and_dialled() {
        let peers = sorted_peers(14);
        let local = peers[0];
        let mut b = Behaviour::new(local, 4);
        let t = Instant::now();
        let mut current = BTreeSet::new();
        let mut dialled = BTreeSet::new();
        for &p in peers.iter().rev() {
            b.add_peer_at(p, t);
            let actions = take_actions(&mut b);
            for e in events(&actions) {
                match e {
                    Event::Selected(p) => assert!(current.insert(p), "selected twice"),
                    Event::Deselected(p) => assert!(current.remove(&p), "not selected"),
                }
            }
            dialled.extend(dials(&actions));
        }
        // Repeated and local discoveries change nothing.
        b.add_peer_at(peers[5], t);
        b.add_peer_at(local, t);
        assert!(take_actions(&mut b).is_empty());

        let expected = select(&local, &peers, 4, |_| false);
        assert_eq!(expected, vec![peers[1], peers[2], peers[4], peers[8]]);
        assert_eq!(b.selected().copied().collect::<Vec<_>>(), expected);
        assert_eq!(current, expected.iter().copied().collect());
        assert!(expected
            .iter()
            .all(|p| b.is_selected(p) && dialled.contains(p)));
        assert!(!b.is_selected(&peers[3]));
        assert_eq!(b.known_peers(), 13);

        // Removing a peer shifts the ring: 1, 3, 5, 9 are now at distances 1, 2, 4, 8.
        b.remove_peer(peers[2]);
        let actions = take_actions(&mut b);
        assert_eq!(
            events(&actions),
            vec![
                Event::Deselected(peers[2]),
                Event::Deselected(peers[4]),
                Event::Deselected(peers[8]),
                Event::Selected(peers[3]),
                Event::Selected(peers[5]),
                Event::Selected(peers[9]),
            ]
        );
        assert_eq!(
            b.selected().copied().collect::<Vec<_>>(),
            vec![peers[1], peers[3], peers[5], peers[9]]
        );
        assert_eq!(b.known_peers(), 12);
    }

    #[test]
    fn bad_peer_is_replaced_until_its_errors_expire() {
        let peers = sorted_peers(3);
        let (local, first, second) = (peers[0], peers[1], peers[2]);
        let mut b = Behaviour::new(local, 1);
        let t0 = Instant::now();
        b.add_peer_at(first, t0);
        b.add_peer_at(second, t0);
        take_actions(&mut b);
        assert!(b.is_selected(&first));

        for k in 0..BAD_PEER_ERRORS {
            assert!(b.is_selected(&first), "error {k}");
            b.report_error_at(first, t0 + secs(k as u64));
        }
        let bad_at = t0 + secs(BAD_PEER_ERRORS as u64 - 1);
        let actions = take_actions(&mut b);
        assert_eq!(
            events(&actions),
            vec![Event::Deselected(first), Event::Selected(second)]
        );
        assert_eq!(dials(&actions), vec![second]);
        // A wake-up is due when the first error leaves the window.
        assert_eq!(b.next_wakeup, Some(t0 + BAD_PEER_WINDOW));

        b.tick(bad_at + secs(60));
        assert!(take_actions(&mut b).is_empty());
        b.tick(t0 + BAD_PEER_WINDOW);
        let actions = take_actions(&mut b);
        assert_eq!(
            events(&actions),
            vec![Event::Deselected(second), Event::Selected(first)]
        );
        assert_eq!(b.next_wakeup, None);
    }

    #[test]
    fn when_all_peers_are_bad_they_are_still_selected() {
        let peers = sorted_peers(2);
        let mut b = Behaviour::new(peers[0], 1);
        let t0 = Instant::now();
        b.add_peer_at(peers[1], t0);
        for _ in 0..BAD_PEER_ERRORS {
            b.report_error_at(peers[1], t0);
        }
        assert!(b.is_selected(&peers[1]));
    }

    #[test]
    fn connections_are_discovery_and_get_keep_alive_updates() -> anyhow::Result<()> {
        let peers = sorted_peers(3);
        let (local, first, second) = (peers[0], peers[1], peers[2]);
        let cp = endpoint()?;
        let mut b = Behaviour::new(local, 1);
        let t0 = Instant::now();

        // An inbound connection from an unknown peer puts it on the ring; it is connected,
        // so it is not dialled, and its handler is told to keep the connection open.
        let c1 = established(&mut b, second, 1, &cp, t0);
        let actions = take_actions(&mut b);
        assert_eq!(b.known_peers(), 1);
        assert_eq!(events(&actions), vec![Event::Selected(second)]);
        assert!(dials(&actions).is_empty());
        assert_eq!(notifications(&actions), vec![(second, c1, true)]);

        // A closer peer displaces it: its handler is told to let the connection idle out.
        b.add_peer_at(first, t0);
        let actions = take_actions(&mut b);
        assert_eq!(
            events(&actions),
            vec![Event::Deselected(second), Event::Selected(first)]
        );
        assert_eq!(notifications(&actions), vec![(second, c1, false)]);
        assert_eq!(dials(&actions), vec![first]);

        // Closing an unselected peer's connection dials nobody.
        closed(&mut b, second, c1, &cp, t0);
        assert!(take_actions(&mut b).is_empty());
        Ok(())
    }

    #[test]
    fn selected_peer_is_redialled_at_most_once_per_interval() -> anyhow::Result<()> {
        let peers = sorted_peers(2);
        let (local, peer) = (peers[0], peers[1]);
        let cp = endpoint()?;
        let mut b = Behaviour::new(local, 1);
        let t0 = Instant::now();

        let c1 = established(&mut b, peer, 1, &cp, t0);
        take_actions(&mut b);
        closed(&mut b, peer, c1, &cp, t0);
        assert_eq!(dials(&take_actions(&mut b)), vec![peer]);

        // The redial connects and drops again at once: the next dial waits.
        let c2 = established(&mut b, peer, 2, &cp, t0 + secs(1));
        assert!(take_actions(&mut b).is_empty());
        closed(&mut b, peer, c2, &cp, t0 + secs(1));
        assert!(take_actions(&mut b).is_empty());
        assert_eq!(b.next_wakeup, Some(t0 + REDIAL_INTERVAL));
        b.tick(t0 + REDIAL_INTERVAL);
        assert_eq!(dials(&take_actions(&mut b)), vec![peer]);
        assert_eq!(b.next_wakeup, None);

        // A pending redial is dropped when the peer connects by itself.
        closed(
            &mut b,
            peer,
            ConnectionId::new_unchecked(99),
            &cp,
            t0 + REDIAL_INTERVAL,
        );
        b.report_error_at(peer, t0 + REDIAL_INTERVAL);
        let c3 = established(&mut b, peer, 3, &cp, t0 + REDIAL_INTERVAL);
        take_actions(&mut b);
        b.tick(t0 + REDIAL_INTERVAL * 2);
        assert!(dials(&take_actions(&mut b)).is_empty());
        closed(&mut b, peer, c3, &cp, t0 + REDIAL_INTERVAL * 3);
        assert_eq!(dials(&take_actions(&mut b)), vec![peer]);
        Ok(())
    }

    #[test]
    fn dial_failures_count_as_errors_except_local_ones() {
        let peers = sorted_peers(3);
        let (local, first, second) = (peers[0], peers[1], peers[2]);
        let mut b = Behaviour::new(local, 1);
        let t0 = Instant::now();
        b.add_peer_at(first, t0);
        b.add_peer_at(second, t0);
        take_actions(&mut b);

        let not_peer_faults = [
            DialError::DialPeerConditionFalse(PeerCondition::DisconnectedAndNotDialing),
            DialError::Aborted,
        ];
        for error in &not_peer_faults {
            for _ in 0..BAD_PEER_ERRORS {
                b.on_swarm_event_at(
                    FromSwarm::DialFailure(DialFailure {
                        peer_id: Some(first),
                        error,
                        connection_id: ConnectionId::new_unchecked(1),
                    }),
                    t0,
                );
            }
        }
        assert!(b.is_selected(&first));
        assert!(take_actions(&mut b).is_empty());

        let mut redials = 0;
        let mut now = t0;
        for k in 0..BAD_PEER_ERRORS {
            now += REDIAL_INTERVAL;
            b.tick(now);
            redials += dials(&take_actions(&mut b)).len();
            b.on_swarm_event_at(
                FromSwarm::DialFailure(DialFailure {
                    peer_id: Some(first),
                    error: &DialError::NoAddresses,
                    connection_id: ConnectionId::new_unchecked(k + 2),
                }),
                now,
            );
        }
        // Each failure schedules one redial; the tenth failure makes the peer bad instead.
        assert!(!b.is_selected(&first));
        assert!(b.is_selected(&second));
        assert_eq!(redials, BAD_PEER_ERRORS - 1);
    }

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn poll_hands_out_actions_and_wakes_on_changes() {
        let peers = sorted_peers(3);
        let mut b = Behaviour::new(peers[0], 1);
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);

        assert!(b.poll(&mut cx).is_pending());
        b.add_peer(peers[2]);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        let mut got = Vec::new();
        while let Poll::Ready(action) = b.poll(&mut cx) {
            got.push(action);
        }
        assert_eq!(events(&got), vec![Event::Selected(peers[2])]);
        assert_eq!(dials(&got), vec![peers[2]]);

        b.report_error(peers[1]);
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "unknown peer: nothing to do"
        );
        b.add_peer(peers[1]);
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        while let Poll::Ready(action) = b.poll(&mut cx) {
            got.push(action);
        }
        assert_eq!(
            events(&got)[1..],
            [Event::Deselected(peers[2]), Event::Selected(peers[1])]
        );
    }

    // ---- Behaviour in real swarms on 127.0.0.1 ----

    const DEADLINE: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_millis(300);

    fn new_swarm(limit: usize) -> anyhow::Result<Swarm<Behaviour>> {
        Ok(libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )?
            .with_behaviour(|key| Behaviour::new(key.public().to_peer_id(), limit))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
            .build())
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Side {
        A,
        B,
    }

    /// Polls both swarms until `stop` returns true (`true`) or `within` passes (`false`).
    async fn drive(
        a: &mut Swarm<Behaviour>,
        b: &mut Swarm<Behaviour>,
        within: Duration,
        mut stop: impl FnMut(Side, &SwarmEvent<Event>) -> bool,
    ) -> bool {
        let deadline = tokio::time::sleep(within);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                event = a.select_next_some() => if stop(Side::A, &event) { return true },
                event = b.select_next_some() => if stop(Side::B, &event) { return true },
                () = &mut deadline => return false,
            }
        }
    }

    #[tokio::test]
    async fn selected_connections_stay_open_and_others_idle_out() -> anyhow::Result<()> {
        let mut a = new_swarm(1)?;
        let mut b = new_swarm(1)?;
        let (a_id, b_id) = (*a.local_peer_id(), *b.local_peer_id());
        b.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
        let mut addr = None;
        let listening = drive(&mut a, &mut b, DEADLINE, |side, event| match event {
            SwarmEvent::NewListenAddr { address, .. } if side == Side::B => {
                addr = Some(address.clone());
                true
            }
            _ => false,
        })
        .await;
        let addr = addr
            .filter(|_| listening)
            .ok_or_else(|| anyhow::anyhow!("b not listening"))?;

        // `Behaviour` dials by peer id and relies on other behaviours (Kademlia, mDNS,
        // identify, request-response) for addresses, which this swarm lacks: dial by address.
        // The connection itself is discovery on both sides.
        a.dial(DialOpts::peer_id(b_id).addresses(vec![addr]).build())?;
        let (mut a_selected, mut b_selected, mut a_up, mut b_up) = (false, false, false, false);
        let connected = drive(&mut a, &mut b, DEADLINE, |side, event| {
            match (side, event) {
                (Side::A, SwarmEvent::Behaviour(Event::Selected(p))) => {
                    a_selected |= *p == b_id;
                }
                (Side::B, SwarmEvent::Behaviour(Event::Selected(p))) => {
                    b_selected |= *p == a_id;
                }
                (Side::A, SwarmEvent::ConnectionEstablished { peer_id, .. }) => {
                    a_up |= *peer_id == b_id;
                }
                (Side::B, SwarmEvent::ConnectionEstablished { peer_id, .. }) => {
                    b_up |= *peer_id == a_id;
                }
                _ => {}
            }
            a_selected && b_selected && a_up && b_up
        })
        .await;
        anyhow::ensure!(
            connected,
            "a and b did not connect and select each other within {DEADLINE:?}"
        );

        let closed_early = drive(&mut a, &mut b, IDLE * 5, |_, event| {
            matches!(event, SwarmEvent::ConnectionClosed { .. })
        })
        .await;
        anyhow::ensure!(!closed_early, "selected connection closed while idle");
        anyhow::ensure!(a.is_connected(&b_id), "a lost b");

        a.behaviour_mut().remove_peer(b_id);
        b.behaviour_mut().remove_peer(a_id);
        let closed = drive(&mut a, &mut b, DEADLINE, |side, event| {
            side == Side::A && matches!(event, SwarmEvent::ConnectionClosed { .. })
        })
        .await;
        anyhow::ensure!(
            closed,
            "unselected connection did not idle out within {DEADLINE:?}"
        );
        let redialled = drive(&mut a, &mut b, IDLE * 3, |_, event| {
            matches!(
                event,
                SwarmEvent::Dialing { .. } | SwarmEvent::ConnectionEstablished { .. }
            )
        })
        .await;
        anyhow::ensure!(!redialled, "unselected peer was redialled");
        Ok(())
    }
}
