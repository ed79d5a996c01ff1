//! The composed NetworkBehaviour: limits first, then selection, discovery and the mule protocols.

use std::time::Duration;

use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, connection_limits, identify, identity, kad, mdns, ping, request_response,
    StreamProtocol,
};

use super::{ring, BuildError, Config, Error};
use crate::protocol::{diff, names, push, repo, Codec};

/// Kademlia protocol name: mule's own DHT, apart from the public IPFS one.
pub const KAD_PROTOCOL: &str = "/mule/kad/1";
/// Identify protocol version string.
pub const IDENTIFY_VERSION: &str = "/mule/1";

/// Every behaviour of a mule node. Field order matters: the first to deny a connection wins,
/// so limits come first.
#[derive(NetworkBehaviour)]
#[allow(missing_debug_implementations)]
pub struct Behaviour {
    /// Caps connections in total and per peer.
    pub limits: connection_limits::Behaviour,
    /// Peers cut off for a cool-down: their connections are closed and refused.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Chooses the L peers we sync with.
    pub ring: ring::Behaviour,
    /// Exchanges listen addresses and protocols.
    pub identify: identify::Behaviour,
    /// Liveness.
    pub ping: ping::Behaviour,
    /// LAN discovery (off with `--no-mdns`).
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Internet discovery through bootstrap peers.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// `/mule/diff/1`.
    pub diff: request_response::Behaviour<Codec<diff::Request, diff::Response>>,
    /// `/mule/push/1`.
    pub push: request_response::Behaviour<Codec<push::Request, push::Response>>,
    /// `/mule/repo/1`.
    pub repo: request_response::Behaviour<Codec<repo::Request, repo::Response>>,
    /// `/mule/names/1`.
    pub names: request_response::Behaviour<Codec<names::Request, names::Response>>,
    /// Plain streams: `/mule/push/2`, one per bulk transfer, framed by the node itself.
    pub stream: libp2p_stream::Behaviour,
}

impl Behaviour {
    pub(super) fn new(key: &identity::Keypair, config: &Config) -> Result<Self, Error> {
        let local = key.public().to_peer_id();
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(2))
            .with_max_pending_incoming(Some(64));
        let mdns = if config.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), local)
                    .map_err(BuildError::Mdns)?,
            )
        } else {
            None
        };
        let mut kad = kad::Behaviour::with_config(
            local,
            kad::store::MemoryStore::new(local),
            kad::Config::new(StreamProtocol::new(KAD_PROTOCOL)),
        );
        // Without AutoNAT nobody would confirm our address, and a client answers no queries.
        kad.set_mode(Some(kad::Mode::Server));
        let rr = request_response::Config::default()
            .with_request_timeout(config.request_timeout)
            .with_max_concurrent_streams(256);
        let full = || request_response::ProtocolSupport::Full;
        Ok(Self {
            limits: connection_limits::Behaviour::new(limits),
            blocked: allow_block_list::Behaviour::default(),
            ring: ring::Behaviour::new(local, config.max_active_peers)
                .with_trusted_only(config.trusted_only)
                .with_fingers(config.fingers),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_VERSION.into(), key.public())
                    .with_push_listen_addr_updates(true)
                    .with_interval(Duration::from_secs(300)),
            ),
            ping: ping::Behaviour::default(),
            mdns: Toggle::from(mdns),
            kad,
            diff: request_response::Behaviour::with_codec(
                Codec::new(diff::REQUEST_MAX, diff::RESPONSE_MAX),
                [(StreamProtocol::new(diff::PROTOCOL), full())],
                rr.clone(),
            ),
            push: request_response::Behaviour::with_codec(
                Codec::new(push::REQUEST_MAX, push::RESPONSE_MAX),
                [(StreamProtocol::new(push::PROTOCOL), full())],
                rr.clone(),
            ),
            repo: request_response::Behaviour::with_codec(
                Codec::new(repo::REQUEST_MAX, repo::RESPONSE_MAX),
                [(StreamProtocol::new(repo::PROTOCOL), full())],
                rr.clone(),
            ),
            names: request_response::Behaviour::with_codec(
                Codec::new(names::REQUEST_MAX, names::RESPONSE_MAX),
                [(StreamProtocol::new(names::PROTOCOL), full())],
                rr,
            ),
            stream: libp2p_stream::Behaviour::new(),
        })
    }
}
