//! The network: one libp2p Swarm, owned by one task ([`EventLoop`]) and driven by commands.
//!
//! [`new`] builds the Swarm (TCP and QUIC with noise/yamux, identify, ping, mDNS, Kademlia,
//! connection limits, [`ring`] selection and the three mule protocols) and returns a cloneable
//! [`Handle`] for commands, the [`EventLoop`] to spawn, and the receivers of [`Event`]s.
//! The loop never awaits disk or the app: inbound requests leave as events carrying their
//! response channel, and the app answers later through the handle.

mod behaviour;
mod event_loop;
pub mod ring;

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

pub use behaviour::{Behaviour, IDENTIFY_VERSION, KAD_PROTOCOL};
pub use event_loop::EventLoop;

use crate::identity::Identity;
use crate::protocol::{diff, push, repo, Frame};

/// Capacity of the command channel (handles wait when it is full).
pub const COMMAND_CAPACITY: usize = 1024;
/// Capacity of the inbound-request channel; beyond it requests are answered `busy`.
pub const REQUEST_CAPACITY: usize = 1024;

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
    /// Most established connections in total.
    pub max_connections: u32,
    /// How long a connection with nothing to do stays open (selected peers stay open anyway).
    pub idle_timeout: Duration,
    /// Time for a request, including the remote app's handling.
    pub request_timeout: Duration,
    /// How often Kademlia re-bootstraps.
    pub bootstrap_interval: Duration,
    /// How often a random-key lookup widens the set of known peers.
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
            max_connections: 512,
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            bootstrap_interval: Duration::from_secs(300),
            discovery_walk_interval: Duration::from_secs(20),
        }
    }
}

/// Why the network could not start or a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bootstrap address without its peer id.
    #[error("bootstrap address {0} must end in /p2p/<peer id>")]
    BootstrapWithoutPeerId(Multiaddr),
    /// Listening failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// Building the transport or behaviour failed.
    #[error("cannot build the network: {0}")]
    Build(String),
}

/// Splits `/ip4/../tcp/../p2p/<id>` into the peer id and its address.
pub fn parse_bootstrap(addr: &Multiaddr) -> Result<(PeerId, Multiaddr), Error> {
    let mut base = addr.clone();
    match base.pop() {
        Some(Protocol::P2p(peer)) => Ok((peer, base)),
        _ => Err(Error::BootstrapWithoutPeerId(addr.clone())),
    }
}

/// Why an outbound request got no response. For `Timeout` and `ConnectionClosed` it is unknown
/// whether the peer processed the request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The peer could not be reached.
    #[error("could not dial peer")]
    Dial,
    /// No response within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// The connection closed before the response arrived.
    #[error("connection closed")]
    ConnectionClosed,
    /// The peer does not speak the protocol.
    #[error("peer does not support the protocol")]
    UnsupportedProtocols,
    /// Stream I/O failed (including a response that did not decode).
    #[error("stream error: {0}")]
    Io(String),
    /// The network task is gone.
    #[error("network is shut down")]
    Shutdown,
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
}

/// Something the app must act on.
#[derive(Debug)]
pub enum Event {
    /// A peer asks something.
    Request {
        /// Who (authenticated by noise).
        peer: PeerId,
        /// What.
        inbound: Inbound,
    },
    /// Ring selection chose this peer: start syncing with it.
    Selected(PeerId),
    /// Ring selection dropped this peer: stop syncing with it.
    Deselected(PeerId),
    /// A new listen address.
    Listening(Multiaddr),
}

/// Commands for the event loop. Built by [`Handle`]'s methods.
#[derive(Debug)]
pub(crate) enum Command {
    Diff(PeerId, diff::Request, Reply<diff::Response>),
    Push(PeerId, Frame<push::Request>, Reply<push::Response>),
    Repo(PeerId, Frame<repo::Request>, Reply<repo::Response>),
    RespondDiff(ResponseChannel<diff::Response>, diff::Response),
    RespondPush(ResponseChannel<push::Response>, push::Response),
    RespondRepo(ResponseChannel<repo::Response>, repo::Response),
    ReportError(PeerId),
    Disconnect(PeerId),
    Dial(Multiaddr),
    Status(oneshot::Sender<Status>),
    Shutdown,
}

type Reply<T> = oneshot::Sender<Result<T, RequestError>>;

/// A cloneable handle to the network task.
#[derive(Clone, Debug)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
}

impl Handle {
    async fn send(&self, command: Command) -> Result<(), RequestError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| RequestError::Shutdown)
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| RequestError::Shutdown)?
    }

    /// Asks `peer` which of `request.ids` it holds.
    pub async fn diff(
        &self,
        peer: PeerId,
        request: diff::Request,
    ) -> Result<diff::Response, RequestError> {
        self.request(|r| Command::Diff(peer, request, r)).await
    }

    /// Sends a push request (or, in tests, a crafted frame).
    pub async fn push(
        &self,
        peer: PeerId,
        request: Frame<push::Request>,
    ) -> Result<push::Response, RequestError> {
        self.request(|r| Command::Push(peer, request, r)).await
    }

    /// Sends a repository request.
    pub async fn repo(
        &self,
        peer: PeerId,
        request: Frame<repo::Request>,
    ) -> Result<repo::Response, RequestError> {
        self.request(|r| Command::Repo(peer, request, r)).await
    }

    /// Answers an inbound diff request.
    pub async fn respond_diff(
        &self,
        ch: ResponseChannel<diff::Response>,
        r: diff::Response,
    ) -> Result<(), RequestError> {
        self.send(Command::RespondDiff(ch, r)).await
    }

    /// Answers an inbound push request.
    pub async fn respond_push(
        &self,
        ch: ResponseChannel<push::Response>,
        r: push::Response,
    ) -> Result<(), RequestError> {
        self.send(Command::RespondPush(ch, r)).await
    }

    /// Answers an inbound repository request.
    pub async fn respond_repo(
        &self,
        ch: ResponseChannel<repo::Response>,
        r: repo::Response,
    ) -> Result<(), RequestError> {
        self.send(Command::RespondRepo(ch, r)).await
    }

    /// Counts an error against `peer` for ring selection (10 in an hour make it bad).
    pub async fn report_error(&self, peer: PeerId) -> Result<(), RequestError> {
        self.send(Command::ReportError(peer)).await
    }

    /// Closes every connection to `peer`.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), RequestError> {
        self.send(Command::Disconnect(peer)).await
    }

    /// Dials an address (a bootstrap peer found later, a test).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), RequestError> {
        self.send(Command::Dial(addr)).await
    }

    /// Peers, addresses and selection, for `mule status`.
    pub async fn status(&self) -> Result<Status, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Status(tx)).await?;
        rx.await.map_err(|_| RequestError::Shutdown)
    }

    /// Stops the event loop (it also stops when every handle is dropped).
    pub async fn shutdown(&self) -> Result<(), RequestError> {
        self.send(Command::Shutdown).await
    }
}

/// Receivers of the loop's output: inbound requests and peer events travel apart, so a flood of
/// requests can never delay (or drop) a selection change.
#[derive(Debug)]
pub struct Events {
    /// Inbound requests.
    pub requests: mpsc::Receiver<Event>,
    /// Selection and listen events.
    pub peers: mpsc::UnboundedReceiver<Event>,
}

/// Builds the Swarm, starts listening and dials bootstrap peers.
pub fn new(identity: &Identity, config: Config) -> Result<(Handle, Events, EventLoop), Error> {
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (req_tx, req_rx) = mpsc::channel(REQUEST_CAPACITY);
    let (peer_tx, peer_rx) = mpsc::unbounded_channel();
    let event_loop = EventLoop::new(identity, config, cmd_rx, req_tx, peer_tx)?;
    Ok((
        Handle { commands: cmd_tx },
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
