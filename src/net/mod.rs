//! The network: one libp2p Swarm, owned by one task ([`EventLoop`]) and driven by commands.
//!
//! [`new`] builds the Swarm (TCP and QUIC with noise/yamux, identify, ping, mDNS, Kademlia,
//! connection limits, [`ring`] selection and the four mule protocols) and returns a cloneable
//! [`Handle`] for commands, the [`EventLoop`] to spawn, and the receivers of [`Request`]s and
//! [`Event`]s. The loop never awaits disk or the app: inbound requests leave carrying their
//! response channel, and the app answers later through the handle.
//!
//! # Layout
//!
//! - `behaviour`: the composed libp2p behaviour.
//! - `event_loop`: the task that owns the Swarm; `requests` its outbound-request bookkeeping.
//! - `discovery`: which discovered peers join the ring (pure policy).
//! - `backlog`: peer events waiting for room in their bounded channel (pure).
//! - `handle`: the [`Handle`] and its commands.
//! - `error`: typed errors.
//! - [`ring`]: ring selection.

mod backlog;
mod behaviour;
mod discovery;
mod error;
mod event_loop;
mod handle;
mod requests;
pub mod ring;

use std::time::Duration;

use libp2p::metrics::Registry;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;

pub use behaviour::{Behaviour, IDENTIFY_VERSION, KAD_PROTOCOL};
pub use error::{BuildError, Error, RequestError, StreamError};
pub use event_loop::EventLoop;
pub use handle::Handle;
pub(crate) use handle::{Command, Reply};

use crate::identity::Identity;
use crate::protocol::{diff, names, push, repo, Frame};

/// Capacity of the command channel (handles wait when it is full).
pub const COMMAND_CAPACITY: usize = 1024;
/// Capacity of the inbound-request channel; beyond it requests are answered `busy`.
pub const REQUEST_CAPACITY: usize = 1024;
/// Capacity of the peer-event channel. When it is full the loop keeps the newest state per peer
/// in a backlog and delivers it once there is room, so a selection change is never lost and the
/// loop never waits for the app.
pub const PEER_EVENT_CAPACITY: usize = 256;

/// Network settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Bootstrap peers, each ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Whether to discover peers on the LAN with mDNS.
    pub mdns: bool,
    /// Peer limit L for ring selection; 0 = sync with every known peer.
    pub max_active_peers: usize,
    /// Where the L selected peers sit on the ring ([`ring::Fingers`]).
    pub fingers: ring::Fingers,
    /// Whether only peers marked trusted ([`Handle::set_trusted`]) take ring selection slots.
    /// Off by default: every known peer is eligible. Untrusted peers stay known and connected.
    pub trusted_only: bool,
    /// Most established connections in total.
    pub max_connections: u32,
    /// How long a connection with nothing to do stays open (selected peers stay open anyway).
    pub idle_timeout: Duration,
    /// Time for a request, including the remote app's handling.
    pub request_timeout: Duration,
    /// How often Kademlia re-bootstraps.
    pub bootstrap_interval: Duration,
    /// How often a random-key lookup widens the set of known peers: the base interval, which
    /// doubles (up to 16 times) after each walk that found no new peer.
    pub discovery_walk_interval: Duration,
}

impl Config {
    /// Default peer limit, as in the original design.
    pub const DEFAULT_MAX_ACTIVE_PEERS: usize = 2;

    /// Listen on all interfaces, OS-chosen TCP and QUIC ports.
    pub fn default_listen() -> Vec<Multiaddr> {
        ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: Self::default_listen(),
            bootstrap: Vec::new(),
            mdns: true,
            max_active_peers: Self::DEFAULT_MAX_ACTIVE_PEERS,
            fingers: ring::Fingers::default(),
            trusted_only: false,
            max_connections: 512,
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            bootstrap_interval: Duration::from_secs(300),
            discovery_walk_interval: Duration::from_secs(20),
        }
    }
}

/// Splits `/ip4/../tcp/../p2p/<id>` into the peer id and its address.
pub fn parse_bootstrap(addr: &Multiaddr) -> Result<(PeerId, Multiaddr), Error> {
    let mut base = addr.clone();
    match base.pop() {
        Some(Protocol::P2p(peer)) => Ok((peer, base)),
        _ => Err(Error::BootstrapWithoutPeerId(addr.clone())),
    }
}

/// A snapshot for `mule status`.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// This node.
    pub peer_id: Option<PeerId>,
    /// Where it listens.
    pub listen_addrs: Vec<Multiaddr>,
    /// Peers with an open connection.
    pub connected: Vec<PeerId>,
    /// Peers ring selection chose to sync with.
    pub selected: Vec<PeerId>,
    /// Peers discovery reported.
    pub known: usize,
    /// Inbound requests waiting for the app (at most [`REQUEST_CAPACITY`]).
    pub queued_requests: usize,
    /// Peer events waiting for the app in their channel (at most [`PEER_EVENT_CAPACITY`]).
    pub queued_peer_events: usize,
    /// Peer events that did not fit the channel and wait in the loop's backlog.
    pub backlog: usize,
    /// Inbound requests answered `busy` by the loop itself since it started, because the app's
    /// request queue was full (the app counts its own refusals).
    pub busy: u64,
}

/// An inbound request with the channel to answer it through [`Handle`].
#[derive(Debug)]
pub enum Inbound {
    /// `/mule/diff/1`.
    Diff(Frame<diff::Request>, ResponseChannel<diff::Response>),
    /// `/mule/push/1`.
    Push(Frame<push::Request>, ResponseChannel<push::Response>),
    /// `/mule/repo/1`.
    Repo(Frame<repo::Request>, ResponseChannel<repo::Response>),
    /// `/mule/names/1`: answer with this node's own chains.
    Names(Frame<names::Request>, ResponseChannel<names::Response>),
}

/// An inbound request, on the `requests` channel.
#[derive(Debug)]
pub struct Request {
    /// Who asks (authenticated by noise).
    pub peer: PeerId,
    /// What, with the channel to answer through.
    pub inbound: Inbound,
}

/// A change about peers or addresses, on the `peers` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Ring selection chose this peer: start syncing with it.
    Selected(PeerId),
    /// Ring selection dropped this peer: stop syncing with it.
    Deselected(PeerId),
    /// A new listen address.
    Listening(Multiaddr),
    /// The first connection to this peer was established (a good moment for a names exchange).
    Connected(PeerId),
}

/// Receivers of the loop's output: inbound requests and peer events travel apart, so a flood of
/// requests can never delay (or drop) a selection change.
#[derive(Debug)]
pub struct Events {
    /// Inbound requests.
    pub requests: mpsc::Receiver<Request>,
    /// Selection, connection and listen events.
    pub peers: mpsc::Receiver<Event>,
}

/// Builds the Swarm, starts listening and dials bootstrap peers.
pub fn new(identity: &Identity, config: Config) -> Result<(Handle, Events, EventLoop), Error> {
    build(identity, config, None)
}

/// [`new`], with libp2p's own metrics (connections, identify, Kademlia, ping, bytes by
/// transport) registered in `registry` under `libp2p_` and recorded by the loop as events pass.
pub fn with_metrics(
    identity: &Identity,
    config: Config,
    registry: &mut Registry,
) -> Result<(Handle, Events, EventLoop), Error> {
    build(identity, config, Some(registry))
}

fn build(
    identity: &Identity,
    config: Config,
    registry: Option<&mut Registry>,
) -> Result<(Handle, Events, EventLoop), Error> {
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (req_tx, req_rx) = mpsc::channel(REQUEST_CAPACITY);
    let (peer_tx, peer_rx) = mpsc::channel(PEER_EVENT_CAPACITY);
    let event_loop = EventLoop::new(identity, config, cmd_rx, req_tx, peer_tx, registry)?;
    let streams = event_loop.stream_control();
    Ok((
        Handle {
            commands: cmd_tx,
            streams,
        },
        Events {
            requests: req_rx,
            peers: peer_rx,
        },
        event_loop,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_needs_peer_id() -> anyhow::Result<()> {
        let id = Identity::from_seed([1; 32]).peer_id();
        let good: Multiaddr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{id}").parse()?;
        let (peer, addr) = parse_bootstrap(&good)?;
        assert_eq!(peer, id);
        assert_eq!(addr.to_string(), "/ip4/127.0.0.1/tcp/4001");
        let bad: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse()?;
        assert_eq!(
            parse_bootstrap(&bad)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("bootstrap address /ip4/127.0.0.1/tcp/4001 must end in /p2p/<peer id>")
        );
        Ok(())
    }
}
