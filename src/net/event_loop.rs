//! The task that owns the Swarm. It turns commands into swarm calls and swarm events into
//! [`Request`]s and [`Event`]s, and never awaits anything but its inputs: the app's channels
//! are fed with `try_send` (a full request queue answers `busy`, a full peer-event channel
//! fills the [`Backlog`]).

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::metrics::{Recorder, Registry};
use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::backlog::Backlog;
use super::behaviour::BehaviourEvent;
use super::discovery::{Action, Heard, Policy};
use super::requests::{outcome, Outcome, Pending};
use super::{ring, Behaviour, BuildError, Command, Config, Error, Event, Inbound, Request, Status};
use crate::identity::Identity;
use crate::protocol::{diff, names, push, repo, Code, WireError};

/// Owns the Swarm; run it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    config: Config,
    commands: mpsc::Receiver<Command>,
    requests: mpsc::Sender<Request>,
    peers: mpsc::Sender<Event>,
    /// Peer events that did not fit into `peers` yet.
    backlog: Backlog,
    discovery: Policy,
    diff: Pending<diff::Response>,
    push: Pending<push::Response>,
    repo: Pending<repo::Response>,
    names: Pending<names::Response>,
    listen_addrs: Vec<Multiaddr>,
    /// libp2p's own metrics (`mule node --metrics`); recording is a few atomic adds per event.
    metrics: Option<libp2p::metrics::Metrics>,
    /// Inbound requests answered `busy` here because the app's request queue was full.
    busy: u64,
    /// Peers cut off for a cool-down, and until when.
    cooling: HashMap<PeerId, tokio::time::Instant>,
    /// One timer per cool-down; each yields its peer when its time is up.
    cooldown_ends: FuturesUnordered<BoxFuture<'static, PeerId>>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("peer_id", self.swarm.local_peer_id())
            .finish_non_exhaustive()
    }
}

/// Builds the Swarm: TCP (noise, yamux), QUIC and DNS around the composed behaviour; with a
/// registry, the transport also counts bytes by direction and transport protocol.
fn build_swarm(
    identity: &Identity,
    config: &Config,
    registry: Option<&mut Registry>,
) -> Result<Swarm<Behaviour>, Error> {
    let behaviour = Behaviour::new(identity.keypair(), config)?;
    let builder = libp2p::SwarmBuilder::with_existing_identity(identity.keypair().clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(BuildError::Noise)?
        .with_quic()
        .with_dns()
        .map_err(BuildError::Dns)?;
    let swarm_config =
        |c: libp2p::swarm::Config| c.with_idle_connection_timeout(config.idle_timeout);
    // The two branches differ in the transport's type, so each finishes its own builder.
    Ok(match registry {
        Some(registry) => {
            let Ok(builder) = builder
                .with_bandwidth_metrics(registry)
                .with_behaviour(|_| behaviour);
            builder.with_swarm_config(swarm_config).build()
        }
        None => {
            let Ok(builder) = builder.with_behaviour(|_| behaviour);
            builder.with_swarm_config(swarm_config).build()
        }
    })
}

impl EventLoop {
    pub(super) fn new(
        identity: &Identity,
        config: Config,
        commands: mpsc::Receiver<Command>,
        requests: mpsc::Sender<Request>,
        peers: mpsc::Sender<Event>,
        mut registry: Option<&mut Registry>,
    ) -> Result<Self, Error> {
        let mut swarm = build_swarm(identity, &config, registry.as_deref_mut())?;
        let metrics = registry.map(libp2p::metrics::Metrics::new);
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|source| Error::Listen {
                    addr: addr.clone(),
                    source,
                })?;
        }
        let (discovery, start) = Policy::new(*swarm.local_peer_id(), &config.bootstrap)?;
        let mut event_loop = Self {
            swarm,
            config,
            commands,
            requests,
            peers,
            backlog: Backlog::default(),
            discovery,
            diff: Pending::default(),
            push: Pending::default(),
            repo: Pending::default(),
            names: Pending::default(),
            listen_addrs: Vec::new(),
            metrics,
            busy: 0,
            cooling: HashMap::new(),
            cooldown_ends: FuturesUnordered::new(),
        };
        event_loop.apply(start);
        Ok(event_loop)
    }

    /// A control for opening and accepting plain streams, for the [`Handle`](super::Handle).
    pub(super) fn stream_control(&self) -> libp2p_stream::Control {
        self.swarm.behaviour().stream.new_control()
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Runs until [`Handle::shutdown`](super::Handle::shutdown) or until every handle is dropped.
    pub async fn run(mut self) {
        let span = tracing::info_span!("net", node = %self.local_peer_id());
        async move {
            let mut bootstrap = tokio::time::interval(self.config.bootstrap_interval);
            bootstrap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The walk slows down while it finds nobody new (see `next_walk_interval`).
            let base = self.config.discovery_walk_interval;
            let mut walk_every = base;
            let mut known_at_last_walk = 0;
            let walk = tokio::time::sleep(walk_every);
            tokio::pin!(walk);
            loop {
                self.flush_peer_events();
                let waiting = !self.backlog.is_empty();
                tokio::select! {
                    biased;
                    command = self.commands.recv() => match command {
                        None | Some(Command::Shutdown) => break,
                        Some(command) => self.handle_command(command),
                    },
                    event = self.swarm.select_next_some() => self.handle_event(event),
                    // Wakes the loop once the app made room; the flush happens above.
                    _ = has_room(&self.peers), if waiting => {}
                    Some(peer) = self.cooldown_ends.next(), if !self.cooldown_ends.is_empty() => {
                        self.end_cool_down(peer);
                    }
                    _ = bootstrap.tick() => self.bootstrap(),
                    _ = &mut walk => {
                        let known = self.swarm.behaviour().ring.known_peers();
                        walk_every = next_walk_interval(walk_every, base, known > known_at_last_walk);
                        known_at_last_walk = known;
                        self.discovery_walk();
                        walk.as_mut().reset(tokio::time::Instant::now() + walk_every);
                    }
                }
            }
            tracing::debug!("network loop stopped");
        }
        .instrument(span)
        .await
    }

    fn bootstrap(&mut self) {
        // An empty routing table is normal for a LAN-only node; nothing to do then.
        if let Ok(query) = self.swarm.behaviour_mut().kad.bootstrap() {
            tracing::trace!(?query, "kademlia bootstrap");
        }
    }

    /// Looks up a random key: every peer the query meets joins the ring's view. Ring selection
    /// works on the peers a node knows, and a routing table alone holds only ~k per bucket.
    fn discovery_walk(&mut self) {
        if self.swarm.connected_peers().next().is_some() {
            self.swarm
                .behaviour_mut()
                .kad
                .get_closest_peers(PeerId::random());
        }
    }

    fn handle_command(&mut self, command: Command) {
        let b = self.swarm.behaviour_mut();
        match command {
            Command::Diff(peer, request, reply) => {
                let id = b
                    .diff
                    .send_request(&peer, crate::protocol::Frame::Ok(request));
                self.diff.insert(id, reply);
            }
            Command::Push(peer, request, reply) => {
                let id = b.push.send_request(&peer, request);
                self.push.insert(id, reply);
            }
            Command::Repo(peer, request, reply) => {
                let id = b.repo.send_request(&peer, request);
                self.repo.insert(id, reply);
            }
            Command::Names(peer, request, reply) => {
                let id = b
                    .names
                    .send_request(&peer, crate::protocol::Frame::Ok(request));
                self.names.insert(id, reply);
            }
            // A failed send means the peer gave up waiting (timeout, closed); nothing to do.
            Command::RespondDiff(ch, r) => drop(b.diff.send_response(ch, r)),
            Command::RespondPush(ch, r) => drop(b.push.send_response(ch, r)),
            Command::RespondRepo(ch, r) => drop(b.repo.send_response(ch, r)),
            Command::RespondNames(ch, r) => drop(b.names.send_response(ch, r)),
            Command::ReportError(peer) => b.ring.report_error(peer),
            Command::SetTrusted(peer, trusted) => b.ring.set_trusted(peer, trusted),
            Command::Disconnect(peer) => drop(self.swarm.disconnect_peer_id(peer)),
            Command::CoolDown(peer, duration) => self.cool_down(peer, duration),
            Command::Dial(addr) => {
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    tracing::warn!(%addr, error = %e, "dial failed");
                }
            }
            Command::Status(reply) => drop(reply.send(self.status())),
            Command::Shutdown => {}
        }
    }

    /// Cuts `peer` off until `duration` from now (or longer, if it is cut off already): the
    /// block list closes its connections and refuses new ones either way.
    fn cool_down(&mut self, peer: PeerId, duration: Duration) {
        let until = tokio::time::Instant::now() + duration;
        let end = self.cooling.entry(peer).or_insert(until);
        *end = (*end).max(until);
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        tracing::warn!(%peer, ?duration, "peer cut off: it kept asking after being refused for its rate");
        self.cooldown_ends.push(Box::pin(async move {
            tokio::time::sleep_until(until).await;
            peer
        }));
    }

    /// A cool-down timer of `peer` ran out: lets it connect again unless a later cool-down
    /// still holds.
    fn end_cool_down(&mut self, peer: PeerId) {
        let over = self
            .cooling
            .get(&peer)
            .is_some_and(|until| *until <= tokio::time::Instant::now());
        if over {
            self.cooling.remove(&peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            tracing::info!(%peer, "cool-down over: the peer may connect again");
        }
    }

    fn status(&self) -> Status {
        let b = self.swarm.behaviour();
        Status {
            peer_id: Some(*self.swarm.local_peer_id()),
            listen_addrs: self.listen_addrs.clone(),
            connected: self.swarm.connected_peers().copied().collect(),
            selected: b.ring.selected().copied().collect(),
            known: b.ring.known_peers(),
            queued_requests: super::REQUEST_CAPACITY.saturating_sub(self.requests.capacity()),
            queued_peer_events: super::PEER_EVENT_CAPACITY.saturating_sub(self.peers.capacity()),
            backlog: self.backlog.len(),
            busy: self.busy,
        }
    }

    /// Hands an inbound request to the app, or answers `busy` if the app is saturated.
    fn forward_request(&mut self, peer: PeerId, inbound: Inbound) {
        match self.requests.try_send(Request { peer, inbound }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Request { inbound, .. })) => {
                tracing::debug!(%peer, "request queue full; answering busy");
                self.busy += 1;
                self.answer_busy(inbound);
            }
            // The app is gone: dropping the channel tells the peer.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn answer_busy(&mut self, inbound: Inbound) {
        let busy = || WireError::new(Code::Busy, "receiver overloaded; retry later");
        let b = self.swarm.behaviour_mut();
        match inbound {
            Inbound::Diff(_, ch) => drop(b.diff.send_response(ch, diff::Response::Error(busy()))),
            Inbound::Push(_, ch) => drop(b.push.send_response(ch, push::Response::Error(busy()))),
            Inbound::Repo(_, ch) => drop(b.repo.send_response(ch, repo::Response::Error(busy()))),
            // The exchange has no error answer: closing the stream unanswered is the spec's
            // "cannot answer now", and the peer treats this node as nameless for now.
            Inbound::Names(_, ch) => drop(ch),
        }
    }

    /// Sends a peer event without waiting: what does not fit waits in the backlog.
    fn emit(&mut self, event: Event) {
        let peers = &self.peers;
        self.backlog.send(event, |e| peers.try_send(e));
    }

    fn flush_peer_events(&mut self) {
        if !self.backlog.is_empty() {
            let peers = &self.peers;
            self.backlog.flush(|e| peers.try_send(e));
        }
    }

    /// Applies discovery decisions to the swarm and the ring.
    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Address { peer, addr, kad } => {
                    tracing::trace!(%peer, %addr, kad, "learned address");
                    self.swarm.add_peer_address(peer, addr.clone());
                    if kad {
                        self.swarm.behaviour_mut().kad.add_address(&peer, addr);
                    }
                }
                Action::Join(peer) => self.swarm.behaviour_mut().ring.add_peer(peer),
                Action::Leave(peer) => self.swarm.behaviour_mut().ring.remove_peer(peer),
                Action::Dial(peer) => {
                    if let Err(e) = self.swarm.dial(peer) {
                        tracing::warn!(%peer, error = %e, "cannot dial bootstrap peer");
                    }
                }
            }
        }
    }

    /// Applies the discovery policy to what a source reported, if anything. Returns no
    /// inbound request, to fit [`Self::handle_behaviour_event`].
    fn discover(&mut self, heard: Option<Heard>) -> Option<(PeerId, Inbound)> {
        if let Some(heard) = heard {
            let swarm = &self.swarm;
            let actions = self.discovery.decide(heard, |p| swarm.is_connected(p));
            self.apply(actions);
        }
        None
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(metrics) = &self.metrics {
            metrics.record(&event);
        }
        match event {
            SwarmEvent::Behaviour(event) => self.handle_behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.clone().with(libp2p::multiaddr::Protocol::P2p(
                    *self.swarm.local_peer_id(),
                ));
                tracing::info!(address = %full, "listening");
                self.listen_addrs.push(address);
                self.emit(Event::Listening(full));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                if num_established.get() == 1 {
                    self.emit(Event::Connected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "outgoing connection failed");
            }
            _ => {}
        }
    }

    fn handle_behaviour_event(&mut self, event: BehaviourEvent) {
        if let Some(metrics) = &self.metrics {
            match &event {
                BehaviourEvent::Identify(e) => metrics.record(e),
                BehaviourEvent::Kad(e) => metrics.record(e),
                BehaviourEvent::Ping(e) => metrics.record(e),
                _ => {}
            }
        }
        let inbound = match event {
            BehaviourEvent::Ring(ring::Event::Selected(peer)) => {
                tracing::info!(%peer, "peer selected");
                self.emit(Event::Selected(peer));
                None
            }
            BehaviourEvent::Ring(ring::Event::Deselected(peer)) => {
                tracing::info!(%peer, "peer deselected");
                self.emit(Event::Deselected(peer));
                None
            }
            BehaviourEvent::Identify(e) => self.discover(Heard::from_identify(e)),
            BehaviourEvent::Mdns(e) => self.discover(Some(Heard::from_mdns(e))),
            BehaviourEvent::Kad(e) => self.discover(Heard::from_kad(e)),
            BehaviourEvent::Diff(e) => route(&mut self.diff, e, Inbound::Diff),
            BehaviourEvent::Push(e) => route(&mut self.push, e, Inbound::Push),
            BehaviourEvent::Repo(e) => route(&mut self.repo, e, Inbound::Repo),
            BehaviourEvent::Names(e) => route(&mut self.names, e, Inbound::Names),
            _ => None,
        };
        if let Some((peer, inbound)) = inbound {
            self.forward_request(peer, inbound);
        }
    }
}

/// Completes once `peers` has room for one event (or is closed), without taking the slot.
async fn has_room(peers: &mpsc::Sender<Event>) {
    drop(peers.reserve().await);
}

/// Resolves a completed outbound request of one protocol, or wraps an inbound one for the app.
fn route<Req, Resp>(
    pending: &mut Pending<Resp>,
    event: request_response::Event<Req, Resp>,
    wrap: fn(Req, ResponseChannel<Resp>) -> Inbound,
) -> Option<(PeerId, Inbound)> {
    match outcome(event) {
        Outcome::Request(peer, request, channel) => Some((peer, wrap(request, channel))),
        Outcome::Response(id, result) => {
            pending.resolve(id, result);
            None
        }
        Outcome::None => None,
    }
}

/// How much slower than its base interval the discovery walk may get.
const MAX_WALK_SLOWDOWN: u32 = 16;

/// The next wait before a discovery walk: back to `base` while walks keep finding new peers,
/// twice as long (up to [`MAX_WALK_SLOWDOWN`] × `base`) after a walk that found nobody new.
///
/// Each walk dials peers this node is not connected to (a handshake each, for connections
/// that close again once idle): in a settled mesh of hundreds of nodes that upkeep, not
/// messages, was what kept every node busy. A newcomer is still found by the next walk of
/// some node within the longest interval, and tells others about itself by connecting.
fn next_walk_interval(current: Duration, base: Duration, found_new: bool) -> Duration {
    if found_new {
        base
    } else {
        current
            .saturating_mul(2)
            .min(base.saturating_mul(MAX_WALK_SLOWDOWN))
    }
}

#[cfg(test)]
mod walk_tests {
    use super::*;

    #[test]
    fn walks_slow_down_while_finding_nobody_and_reset_on_news() {
        let base = Duration::from_secs(20);
        let mut every = base;
        let mut seen = Vec::new();
        for _ in 0..6 {
            every = next_walk_interval(every, base, false);
            seen.push(every.as_secs());
        }
        assert_eq!(seen, [40, 80, 160, 320, 320, 320]);
        assert_eq!(next_walk_interval(every, base, true), base);
        assert_eq!(
            next_walk_interval(Duration::MAX, Duration::MAX, false),
            Duration::MAX
        );
    }
}
