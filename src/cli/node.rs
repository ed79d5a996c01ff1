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
    #[arg(
        long = "listen",
        value_name = "MULTIADDR",
        env = "MULE_LISTEN",
        value_delimiter = ','
    )]
    listen: Vec<Multiaddr>,
    /// Bootstrap peer, `/ip4/../tcp/../p2p/<peer id>` (repeatable).
    #[arg(
        long = "bootstrap",
        value_name = "MULTIADDR",
        env = "MULE_BOOTSTRAP",
        value_delimiter = ','
    )]
    bootstrap: Vec<Multiaddr>,
    /// Do not discover peers on the LAN with mDNS.
    #[arg(long, env = "MULE_NO_MDNS")]
    no_mdns: bool,
    /// Peer limit L: sync with at most L peers chosen by ring selection (0 = every peer).
    #[arg(long, default_value_t = net::Config::DEFAULT_MAX_ACTIVE_PEERS, value_name = "L", env = "MULE_MAX_ACTIVE_PEERS")]
    max_active_peers: usize,
    /// Where the L peers sit on the ring sorted by peer id: `powers` (distances 1, 2, 4, ...,
    /// 2^(L-1); fine up to a few dozen nodes) or `scaled` (distances N^(i/L), spread over the
    /// whole ring: far fewer hops in large meshes).
    #[arg(long, default_value_t = net::ring::Fingers::default(), value_name = "FINGERS", env = "MULE_FINGERS")]
    fingers: net::ring::Fingers,
    /// Refuse and do not relay messages that have passed more than H relays.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_HOPS, value_name = "H", env = "MULE_MAX_HOPS")]
    max_hops: usize,
    /// Refuse (before any content) and do not forward messages larger than this many bytes
    /// (sizes as for --max-store-bytes) [default: 2GiB].
    #[arg(long, value_name = "BYTES", value_parser = parse_size, env = "MULE_MAX_MESSAGE_SIZE")]
    max_message_size: Option<u64>,
    /// Store quota: content bytes of the messages held plus those promised to transfers in
    /// progress. When full, relayed messages are evicted (expired first, then the soonest to
    /// expire); this node's own undelivered ones are kept, and what still does not fit is
    /// refused. Sizes: `500MB`, `2GiB`; K, M, G, T and KiB, MiB, GiB, TiB are powers of 1024,
    /// KB, MB, GB, TB powers of 1000.
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "1GiB", env = "MULE_MAX_STORE_BYTES")]
    max_store_bytes: u64,
    /// Refuse and do not forward messages that live longer than this, e.g. `7d`, `12h`
    /// [default: 30 days].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, env = "MULE_MAX_LIFESPAN")]
    max_lifespan: Option<std::time::Duration>,
    /// Access lists (TOML: `in`, `out`, `sender`; see README "Who may talk to whom")
    /// [default: <data-dir>/trust/access.toml if it exists, else everyone is allowed].
    #[arg(long, value_name = "FILE", env = "MULE_ACL")]
    acl: Option<PathBuf>,
    /// Pull from peers matching this pattern (a data mule's peer id or name, e.g. `mules`)
    /// when they connect and every `--pull-interval` after (repeatable).
    #[arg(
        long = "pull-from",
        value_name = "PATTERN",
        env = "MULE_PULL_FROM",
        value_delimiter = ','
    )]
    pull_from: Vec<crate::trust::Pattern>,
    /// How often `--pull-from` peers are pulled from again while they stay around.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration, env = "MULE_PULL_INTERVAL")]
    pull_interval: std::time::Duration,
    /// Carry only messages addressed to this node (a collector); others get `no-route`.
    #[arg(long, env = "MULE_NO_RELAY")]
    no_relay: bool,
    /// Refuse every request from this peer and every message it signed (repeatable).
    #[arg(
        long = "block",
        value_name = "PEER_ID",
        env = "MULE_BLOCK",
        value_delimiter = ','
    )]
    block: Vec<libp2p::PeerId>,
    /// Inbound requests per second allowed per peer (sustained; bursts of twice that).
    #[arg(long, default_value_t = crate::node::auth::Policy::DEFAULT_REQUESTS_PER_SECOND, value_name = "N", env = "MULE_RATE_LIMIT")]
    rate_limit: f64,
    /// Push chunk size in bytes.
    #[arg(long, default_value_t = crate::protocol::push::DEFAULT_CHUNK as u32, value_parser = clap::value_parser!(u32).range(1024..=crate::protocol::push::MAX_CHUNK as i64), env = "MULE_CHUNK_SIZE")]
    chunk_size: u32,
    /// Serve Prometheus metrics at `http://ADDR/metrics`: `HOST:PORT`, or a bare port on
    /// 127.0.0.1 (port 0: the OS chooses; the node prints the address).
    #[arg(long, value_name = "ADDR", value_parser = crate::metrics::parse_addr, env = "MULE_METRICS")]
    metrics: Option<std::net::SocketAddr>,
    /// How often expired messages are collected from the store (they are already hidden from
    /// every read once expired; collection frees their space).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_interval, env = "MULE_COLLECT_INTERVAL")]
    collect_interval: std::time::Duration,
}

/// The node's settings from its flags (and the config file and environment, applied by clap).
fn settings(data_dir: &std::path::Path, args: Args) -> anyhow::Result<Config> {
    let mut config = Config::new(data_dir);
    if !args.listen.is_empty() {
        config.net.listen = args.listen;
    }
    for addr in &args.bootstrap {
        net::parse_bootstrap(addr)?;
    }
    config.net.bootstrap = args.bootstrap;
    config.net.mdns = !args.no_mdns;
    config.net.max_active_peers = args.max_active_peers;
    config.net.fingers = args.fingers;
    if args.max_hops > Limits::MAX_HOPS {
        anyhow::bail!(
            "--max-hops {} is over the format limit of {}",
            args.max_hops,
            Limits::MAX_HOPS
        );
    }
    config.limits.max_hops = args.max_hops;
    if let Some(max) = args.max_message_size {
        config.limits.max_length = max;
    }
    config.store.max_bytes = args.max_store_bytes;
    if let Some(max) = args.max_lifespan {
        config.limits.max_lifespan = max;
    }
    config.acl_file = args.acl;
    config.pull_from = args.pull_from;
    config.pull_interval = args.pull_interval;
    config.collect_interval = args.collect_interval;
    config.chunk_size = args.chunk_size as usize;
    config.relay = !args.no_relay;
    config.access.blocked = args.block.into_iter().collect();
    if args.rate_limit.is_nan() || args.rate_limit <= 0.0 {
        anyhow::bail!("--rate-limit must be a positive number of requests per second");
    }
    config.access.requests_per_second = args.rate_limit;
    config.access.burst = (args.rate_limit * 2.0).clamp(1.0, f64::from(u32::MAX)) as u32;
    config.metrics = args.metrics.is_some();
    // Pongs are rate-limited (node::pings): answering costs little and tells pingers who is
    // reachable.
    config.answer_pings = true;
    Ok(config)
}

/// A node started from the CLI, with the control socket (so `mule send`, `status`... work
/// beside it) and the metrics endpoint if asked for.
pub(super) struct Running {
    /// The node.
    pub(super) node: Node,
    control: crate::control::server::Server,
    metrics: Option<crate::metrics::Server>,
}

impl Running {
    /// Starts the node `args` describe in `data_dir`, refusing if one already runs there.
    pub(super) async fn start(data_dir: &std::path::Path, args: Args) -> anyhow::Result<Self> {
        let metrics_addr = args.metrics;
        let node = Node::start(settings(data_dir, args)?).await?;
        let control = crate::control::server::Server::start(node.clone()).await?;
        let metrics = match (metrics_addr, node.metrics()) {
            (Some(addr), Some(registry)) => {
                match crate::metrics::Server::start(addr, registry).await {
                    Ok(server) => Some(server),
                    Err(e) => {
                        control.stop().await;
                        node.shutdown().await?;
                        return Err(e.into());
                    }
                }
            }
            _ => None,
        };
        Ok(Self {
            node,
            control,
            metrics,
        })
    }

    /// Prints the peer id, the listen addresses and the metrics address.
    pub(super) fn print_addresses(&self) -> anyhow::Result<()> {
        super::out!("peer id: {}", self.node.peer_id());
        for addr in self.node.listen_addrs() {
            super::out!("listening on {addr}");
        }
        if let Some(server) = &self.metrics {
            super::out!("metrics on http://{}/metrics", server.local_addr());
        }
        Ok(())
    }

    /// Stops the endpoints, then the node (every other clone of it must be gone by then: the
    /// store closes only when its last handle does).
    pub(super) async fn stop(self) -> anyhow::Result<()> {
        if let Some(server) = self.metrics {
            server.stop().await;
        }
        self.control.stop().await;
        self.node.shutdown().await?;
        Ok(())
    }
}

pub(super) async fn run(data_dir: PathBuf, args: Args, quiet: bool) -> anyhow::Result<()> {
    let running = Running::start(&data_dir, args).await?;
    let mut events = running.node.subscribe();
    running.print_addresses()?;
    let bars = super::progress::Transfers::spawn(running.node.clone(), quiet);
    let trim = tokio::spawn(trim_after_start_up());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            event = events.recv() => match event {
                Ok(NodeEvent::Listening(addr)) => super::out!("listening on {addr}"),
                Ok(NodeEvent::Stored { id, from: Some(peer) }) => {
                    tracing::info!(id = %id.short(), %peer, "received message");
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    tracing::info!("shutting down");
    trim.abort();
    if let Some(bars) = bars {
        bars.stop().await;
    }
    running.stop().await
}

/// How long after start-up the node drops its start-up code's pages: by then listening,
/// the first dials and the first discovery walk have run.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Drops the code pages start-up left mapped, once the node has settled ([`crate::resident`]).
async fn trim_after_start_up() {
    tokio::time::sleep(SETTLE).await;
    if let Ok(bytes) = tokio::task::spawn_blocking(crate::resident::trim_code).await {
        tracing::debug!(bytes, "dropped start-up code pages");
    }
}

/// A non-zero duration, e.g. `500ms`, `60s`, `5m` (a zero interval would spin).
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("the interval must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// A byte count with an optional unit: `B`; `K`, `M`, `G`, `T` or `KiB`, `MiB`, `GiB`, `TiB`
/// (powers of 1024); `KB`, `MB`, `GB`, `TB` (powers of 1000). Case does not matter, and a space
/// may separate the number from its unit.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "`{text}` is not a size (bytes, or a number with a unit such as 500MB or 2GiB)"
            ))
        }
    };
    let n: u64 = digits.parse().map_err(|_| {
        format!("`{text}` is not a size (bytes, or a number with a unit such as 500MB or 2GiB)")
    })?;
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999G").is_err());
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("3kb"), Ok(3_000));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("7B"), Ok(7));
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("-5MB").is_err());
    }
}
