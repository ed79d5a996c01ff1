//! `mule node`: run a node in the foreground.

use std::path::PathBuf;

use libp2p::Multiaddr;

use crate::message::Limits;
use crate::net;
use crate::node::{Config, Node, NodeEvent};

/// Options of `mule node`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (repeatable) [default: all interfaces, OS-chosen TCP and QUIC ports].
    #[arg(long = "listen", value_name = "MULTIADDR")]
    listen: Vec<Multiaddr>,
    /// Bootstrap peer, `/ip4/../tcp/../p2p/<peer id>` (repeatable).
    #[arg(long = "bootstrap", value_name = "MULTIADDR")]
    bootstrap: Vec<Multiaddr>,
    /// Do not discover peers on the LAN with mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// Peer limit L: sync with at most L peers chosen by ring selection (0 = every peer).
    #[arg(long, default_value_t = net::Config::DEFAULT_MAX_ACTIVE_PEERS, value_name = "L")]
    max_active_peers: usize,
    /// Refuse and do not relay messages that have passed more than H relays.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_HOPS, value_name = "H")]
    max_hops: usize,
    /// Carry only messages addressed to this node (a collector); others get `no-route`.
    #[arg(long)]
    no_relay: bool,
    /// Refuse every request from this peer and every message it signed (repeatable).
    #[arg(long = "block", value_name = "PEER_ID")]
    block: Vec<libp2p::PeerId>,
    /// Inbound requests per second allowed per peer (sustained; bursts of twice that).
    #[arg(long, default_value_t = crate::node::auth::Policy::DEFAULT_REQUESTS_PER_SECOND, value_name = "N")]
    rate_limit: f64,
    /// Push chunk size in bytes.
    #[arg(long, default_value_t = crate::protocol::push::DEFAULT_CHUNK as u32, value_parser = clap::value_parser!(u32).range(1024..=crate::protocol::push::MAX_CHUNK as i64))]
    chunk_size: u32,
}

pub(super) async fn run(data_dir: PathBuf, args: Args) -> anyhow::Result<()> {
    let mut config = Config::new(&data_dir);
    if !args.listen.is_empty() {
        config.net.listen = args.listen;
    }
    for addr in &args.bootstrap {
        net::parse_bootstrap(addr)?;
    }
    config.net.bootstrap = args.bootstrap;
    config.net.mdns = !args.no_mdns;
    config.net.max_active_peers = args.max_active_peers;
    if args.max_hops > Limits::MAX_HOPS {
        anyhow::bail!(
            "--max-hops {} is over the format limit of {}",
            args.max_hops,
            Limits::MAX_HOPS
        );
    }
    config.limits.max_hops = args.max_hops;
    config.chunk_size = args.chunk_size as usize;
    config.relay = !args.no_relay;
    config.access.blocked = args.block.into_iter().collect();
    if args.rate_limit.is_nan() || args.rate_limit <= 0.0 {
        anyhow::bail!("--rate-limit must be a positive number of requests per second");
    }
    config.access.requests_per_second = args.rate_limit;
    config.access.burst = (args.rate_limit * 2.0).clamp(1.0, f64::from(u32::MAX)) as u32;

    let node = Node::start(config).await?;
    let control = crate::control::server::Server::start(node.clone()).await?;
    let mut events = node.subscribe();
    println!("peer id: {}", node.peer_id());
    for addr in node.listen_addrs() {
        println!("listening on {addr}");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            event = events.recv() => match event {
                Ok(NodeEvent::Listening(addr)) => println!("listening on {addr}"),
                Ok(NodeEvent::Stored { id, from: Some(peer) }) => {
                    tracing::info!(id = %id.short(), %peer, "received message");
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    tracing::info!("shutting down");
    control.stop().await;
    node.shutdown().await?;
    Ok(())
}
