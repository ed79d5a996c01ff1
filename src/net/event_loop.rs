//! The task that owns the Swarm. It turns commands into swarm calls and swarm events into
//! [`Event`]s, and never awaits anything but its two inputs.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, kad, mdns, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::behaviour::{BehaviourEvent, KAD_PROTOCOL};
use super::{
    parse_bootstrap, ring, Behaviour, Command, Config, Error, Event, Inbound, Reply, RequestError,
    Status,
};
use crate::identity::Identity;
use crate::protocol::{push, Code, Frame, WireError};

/// Outbound requests waiting for their response, per protocol.
struct Pending<T> {
    replies: HashMap<OutboundRequestId, Reply<T>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            replies: HashMap::new(),
        }
    }
}

impl<T> Pending<T> {
    fn resolve(&mut self, id: OutboundRequestId, result: Result<T, RequestError>) {
        if let Some(reply) = self.replies.remove(&id) {
            // The requester may have given up; that is its business.
            let _ = reply.send(result);
        }
    }
}

/// Owns the Swarm; run it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    config: Config,
    commands: mpsc::Receiver<Command>,
    requests: mpsc::Sender<Event>,
    peers: mpsc::UnboundedSender<Event>,
    diff: Pending<crate::protocol::diff::Response>,
    push: Pending<push::Response>,
    repo: Pending<crate::protocol::repo::Response>,
    listen_addrs: Vec<Multiaddr>,
    bootstrap_peers: HashSet<PeerId>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("peer_id", self.swarm.local_peer_id())
            .finish_non_exhaustive()
    }
}

fn outbound_error(e: OutboundFailure) -> RequestError {
    match e {
        OutboundFailure::DialFailure => RequestError::Dial,
        OutboundFailure::Timeout => RequestError::Timeout,
        OutboundFailure::ConnectionClosed => RequestError::ConnectionClosed,
        OutboundFailure::UnsupportedProtocols => RequestError::UnsupportedProtocols,
        OutboundFailure::Io(e) => RequestError::Io(e.to_string()),
    }
}

impl EventLoop {
    pub(super) fn new(
        identity: &Identity,
        config: Config,
        commands: mpsc::Receiver<Command>,
        requests: mpsc::Sender<Event>,
        peers: mpsc::UnboundedSender<Event>,
    ) -> Result<Self, Error> {
        let build = |e: &dyn std::fmt::Display| Error::Build(e.to_string());
        let behaviour = Behaviour::new(identity.keypair(), &config)?;
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity.keypair().clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| build(&e))?
            .with_quic()
            .with_dns()
            .map_err(|e| build(&e))?
            .with_behaviour(|_| behaviour)
            .map_err(|e| build(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
            .build();
        for addr in &config.listen {
            swarm.listen_on(addr.clone()).map_err(|e| Error::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        }
        let mut bootstrap_peers = HashSet::new();
        for addr in &config.bootstrap {
            let (peer, base) = parse_bootstrap(addr)?;
            bootstrap_peers.insert(peer);
            swarm.add_peer_address(peer, base.clone());
            swarm.behaviour_mut().kad.add_address(&peer, base);
            swarm.behaviour_mut().ring.add_peer(peer);
            if let Err(e) = swarm.dial(peer) {
                tracing::warn!(%peer, error = %e, "cannot dial bootstrap peer");
            }
        }
        Ok(Self {
            swarm,
            config,
            commands,
            requests,
            peers,
            diff: Pending::default(),
            push: Pending::default(),
            repo: Pending::default(),
            listen_addrs: Vec::new(),
            bootstrap_peers,
        })
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Runs until [`Command::Shutdown`] or until every handle is dropped.
    pub async fn run(mut self) {
        let span = tracing::info_span!("net", node = %self.local_peer_id());
        async move {
            let mut bootstrap = tokio::time::interval(self.config.bootstrap_interval);
            bootstrap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut walk = tokio::time::interval(self.config.discovery_walk_interval);
            walk.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    command = self.commands.recv() => match command {
                        None | Some(Command::Shutdown) => break,
                        Some(command) => self.handle_command(command),
                    },
                    event = self.swarm.select_next_some() => self.handle_event(event),
                    _ = bootstrap.tick() => self.bootstrap(),
                    _ = walk.tick() => self.discovery_walk(),
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
                let id = b.diff.send_request(&peer, Frame::Ok(request));
                self.diff.replies.insert(id, reply);
            }
            Command::Push(peer, request, reply) => {
                let id = b.push.send_request(&peer, request);
                self.push.replies.insert(id, reply);
            }
            Command::Repo(peer, request, reply) => {
                let id = b.repo.send_request(&peer, request);
                self.repo.replies.insert(id, reply);
            }
            // A failed send means the peer gave up waiting (timeout, closed); nothing to do.
            Command::RespondDiff(ch, r) => drop(b.diff.send_response(ch, r)),
            Command::RespondPush(ch, r) => drop(b.push.send_response(ch, r)),
            Command::RespondRepo(ch, r) => drop(b.repo.send_response(ch, r)),
            Command::ReportError(peer) => b.ring.report_error(peer),
            Command::Disconnect(peer) => drop(self.swarm.disconnect_peer_id(peer)),
            Command::Dial(addr) => {
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    tracing::warn!(%addr, error = %e, "dial failed");
                }
            }
            Command::Status(reply) => {
                let b = self.swarm.behaviour();
                let _ = reply.send(Status {
                    peer_id: Some(*self.swarm.local_peer_id()),
                    listen_addrs: self.listen_addrs.clone(),
                    connected: self.swarm.connected_peers().copied().collect(),
                    selected: b.ring.selected().copied().collect(),
                    known: b.ring.known_peers(),
                });
            }
            Command::Shutdown => {}
        }
    }

    /// Hands an inbound request to the app, or answers `busy` if the app is saturated.
    fn forward_request(&mut self, peer: PeerId, inbound: Inbound) {
        match self.requests.try_send(Event::Request { peer, inbound }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Event::Request { inbound, .. })) => {
                let busy = || WireError::new(Code::Busy, "receiver overloaded; retry later");
                let b = self.swarm.behaviour_mut();
                tracing::debug!(%peer, "request queue full; answering busy");
                match inbound {
                    Inbound::Diff(_, ch) => drop(
                        b.diff
                            .send_response(ch, crate::protocol::diff::Response::Error(busy())),
                    ),
                    Inbound::Push(_, ch) => {
                        drop(b.push.send_response(ch, push::Response::Error(busy())))
                    }
                    Inbound::Repo(_, ch) => drop(
                        b.repo
                            .send_response(ch, crate::protocol::repo::Response::Error(busy())),
                    ),
                }
            }
            // The app is gone: dropping the channel tells the peer.
            Err(_) => {}
        }
    }

    fn emit(&self, event: Event) {
        let _ = self.peers.send(event);
    }

    fn learn_address(&mut self, peer: PeerId, addr: Multiaddr) {
        if peer == *self.swarm.local_peer_id() {
            return;
        }
        self.swarm.add_peer_address(peer, addr.clone());
        let b = self.swarm.behaviour_mut();
        b.kad.add_address(&peer, addr);
        b.ring.add_peer(peer);
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
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
                peer_id, endpoint, ..
            } => {
                tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
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
        match event {
            BehaviourEvent::Ring(ring::Event::Selected(peer)) => {
                tracing::info!(%peer, "peer selected");
                self.emit(Event::Selected(peer));
            }
            BehaviourEvent::Ring(ring::Event::Deselected(peer)) => {
                tracing::info!(%peer, "peer deselected");
                self.emit(Event::Deselected(peer));
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let kad = StreamProtocol::new(KAD_PROTOCOL);
                let speaks_mule = info
                    .protocols
                    .iter()
                    .any(|p| p.as_ref() == crate::protocol::push::PROTOCOL);
                if !speaks_mule {
                    return;
                }
                for addr in info.listen_addrs {
                    if is_dialable(&addr) {
                        self.swarm.add_peer_address(peer_id, addr.clone());
                        if info.protocols.contains(&kad) {
                            self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                        }
                    }
                }
                self.swarm.behaviour_mut().ring.add_peer(peer_id);
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    tracing::debug!(%peer, %addr, "mDNS discovered");
                    self.learn_address(peer, addr);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Expired(gone)) => {
                for (peer, _) in gone {
                    if !self.swarm.is_connected(&peer) && !self.bootstrap_peers.contains(&peer) {
                        self.swarm.behaviour_mut().ring.remove_peer(peer);
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetClosestPeers(Ok(ok)),
                ..
            }) => {
                for info in ok.peers {
                    for addr in info.addrs.into_iter().filter(is_dialable) {
                        self.swarm.add_peer_address(info.peer_id, addr);
                    }
                    if info.peer_id != *self.swarm.local_peer_id() {
                        self.swarm.behaviour_mut().ring.add_peer(info.peer_id);
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated { peer, old_peer, .. }) => {
                self.swarm.behaviour_mut().ring.add_peer(peer);
                if let Some(old) = old_peer {
                    if !self.swarm.is_connected(&old) {
                        self.swarm.behaviour_mut().ring.remove_peer(old);
                    }
                }
            }
            BehaviourEvent::Diff(event) => {
                let (pending, inbound) = (&mut self.diff, handle_rr(event));
                match inbound {
                    RrOutcome::Request(peer, req, ch) => {
                        self.forward_request(peer, Inbound::Diff(req, ch))
                    }
                    RrOutcome::Response(id, result) => pending.resolve(id, result),
                    RrOutcome::None => {}
                }
            }
            BehaviourEvent::Push(event) => match handle_rr(event) {
                RrOutcome::Request(peer, req, ch) => {
                    self.forward_request(peer, Inbound::Push(req, ch))
                }
                RrOutcome::Response(id, result) => self.push.resolve(id, result),
                RrOutcome::None => {}
            },
            BehaviourEvent::Repo(event) => match handle_rr(event) {
                RrOutcome::Request(peer, req, ch) => {
                    self.forward_request(peer, Inbound::Repo(req, ch))
                }
                RrOutcome::Response(id, result) => self.repo.resolve(id, result),
                RrOutcome::None => {}
            },
            _ => {}
        }
    }
}

/// Whether an address is worth dialling (not the unspecified address a peer listens on).
fn is_dialable(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    !addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

enum RrOutcome<Req, Resp> {
    Request(PeerId, Req, request_response::ResponseChannel<Resp>),
    Response(OutboundRequestId, Result<Resp, RequestError>),
    None,
}

fn handle_rr<Req, Resp>(event: request_response::Event<Req, Resp>) -> RrOutcome<Req, Resp> {
    use request_response::{Event as E, Message};
    match event {
        E::Message {
            peer,
            message: Message::Request {
                request, channel, ..
            },
            ..
        } => RrOutcome::Request(peer, request, channel),
        E::Message {
            message:
                Message::Response {
                    request_id,
                    response,
                },
            ..
        } => RrOutcome::Response(request_id, Ok(response)),
        E::OutboundFailure {
            request_id,
            error,
            peer,
            ..
        } => {
            tracing::debug!(%peer, %error, "request failed");
            RrOutcome::Response(request_id, Err(outbound_error(error)))
        }
        E::InboundFailure { peer, error, .. } => {
            tracing::debug!(%peer, %error, "inbound request failed");
            RrOutcome::None
        }
        E::ResponseSent { .. } => RrOutcome::None,
    }
}
