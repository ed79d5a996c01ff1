//! A running mule node: store + network + peer manager, in one value that tests can start many
//! times in one process.
//!
//! Tasks: the network [`EventLoop`](crate::net::EventLoop) owns the Swarm; the node's main task
//! (the peer [`manager`]) starts and stops one `sync` task per selected peer and spawns an
//! `inbound` task per request (at most [`manager::INBOUND_CAPACITY`] at once); a maintenance
//! tick closes stalled transfers; a collector task removes expired messages on its own
//! schedule. Every decision about what to
//! carry for whom is in [`relay`] (pure) and [`auth`]. See `diagrams/message-flow.svg`.
//!
//! The node knows nothing of the control socket: the CLI serves it on top of a running node.

mod arrivals;
pub mod auth;
pub mod backoff;
pub mod cooldown;
pub mod counters;
mod ctx;
mod exchange;
mod inbound;
pub mod invites;
pub mod manager;
pub mod metrics;
pub mod peers;
pub mod pings;
pub mod post;
pub mod pull;
pub mod relay;
pub mod schedule;
pub mod send;
mod sync;
pub mod transfers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use crate::identity::{self, Identity};
use crate::message::{Limits, MessageId};
use crate::net;
use crate::store::{self, Store};
use auth::Authoriser;
use counters::{Counters, Snapshot};
use ctx::Ctx;

pub use post::{Letter, PostError, Posted, Privacy, SealedFor};
pub use pull::{PullError, PullOptions, PullProgress, PullReport};
pub use send::{Content, SendError};

/// Node settings; `Default` plus the `with_*` methods cover tests and the CLI.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the key, the store and the control socket live.
    pub data_dir: PathBuf,
    /// Network settings.
    pub net: net::Config,
    /// Store settings.
    pub store: store::Config,
    /// Header limits (max hops, size, lifespan, clock skew).
    pub limits: Limits,
    /// Push chunk size.
    pub chunk_size: usize,
    /// Push chunks in flight per peer.
    pub push_window: usize,
    /// How often expired messages are collected.
    pub collect_interval: Duration,
    /// Whether to carry messages for others. A node that does not relay (a collector, a
    /// phone short of space) answers `no-route` to messages not addressed to it.
    pub relay: bool,
    /// Block list and request rate limits.
    pub access: auth::Policy,
    /// The access lists (`--acl`); `None`: `<data-dir>/trust/access.toml` if it exists, else
    /// everyone is allowed (today's open behaviour).
    pub acl_file: Option<PathBuf>,
    /// Peers to pull from (`--pull-from`: peer ids or name patterns of data mules), when they
    /// connect and every `pull_interval` after.
    pub pull_from: Vec<crate::trust::Pattern>,
    /// How often a `pull_from` peer is pulled from again while it stays around.
    pub pull_interval: Duration,
    /// Whether to keep a metrics registry ([`Node::metrics`]); off, libp2p's metrics are not
    /// recorded at all.
    pub metrics: bool,
    /// Whether to answer pings addressed to this node with pongs ([`pings`]; rate-limited).
    /// Off by default so a library user or benchmark opens no message it did not ask for; the
    /// CLI's `node`, `chat` and `robot` turn it on.
    pub answer_pings: bool,
    /// Whether to speak `/mule/push/2` (one stream per message larger than a chunk), as sender
    /// and receiver. On by default. Off, the node behaves as one from before `/mule/push/2`: it
    /// pushes chunks and peers find it does not support the protocol; for tests of mixed
    /// versions, and for comparing the two in benches.
    pub push2: bool,
}

impl Config {
    /// Defaults for a node keeping its state in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            net: net::Config::default(),
            store: store::Config::default(),
            limits: Limits::default(),
            chunk_size: crate::protocol::push::DEFAULT_CHUNK,
            push_window: 16,
            collect_interval: Duration::from_secs(60),
            relay: true,
            access: auth::Policy::default(),
            acl_file: None,
            pull_from: Vec::new(),
            pull_interval: Duration::from_secs(300),
            metrics: false,
            answer_pings: false,
            push2: true,
        }
    }

    /// A node for in-process tests: loopback TCP on an OS-chosen port, no mDNS.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Self::new(data_dir);
        config.net.listen = "/ip4/127.0.0.1/tcp/0".parse().into_iter().collect();
        config.net.mdns = false;
        config.store.cache_bytes = 4 << 20;
        config
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The identity could not be loaded.
    #[error(transparent)]
    Identity(#[from] identity::Error),
    /// The store could not be opened or failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The network could not start.
    #[error(transparent)]
    Net(#[from] net::Error),
    /// A request to the network task failed.
    #[error(transparent)]
    Request(#[from] net::RequestError),
    /// The trust state (roots, own chains) could not be loaded.
    #[error(transparent)]
    Trust(#[from] crate::trust::Error),
    /// The access lists could not be loaded.
    #[error(transparent)]
    Acl(#[from] crate::trust::acl::PolicyError),
    /// `--acl` names a file that does not exist.
    #[error("access list file {0} does not exist")]
    AclMissing(PathBuf),
    /// A blocking task (loading the key file) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A message to send was refused before it left.
    #[error("cannot send: {0}")]
    Send(#[from] SendError),
}

/// What happens inside a node, for tests and the CLI.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// A message was stored complete (`from` = the peer that pushed it; `None` = sent locally).
    Stored {
        /// The message.
        id: MessageId,
        /// Who pushed it.
        from: Option<PeerId>,
    },
    /// A chunk of a message was stored; `offset` is the new held length.
    Chunk {
        /// The message.
        id: MessageId,
        /// Who pushed it.
        peer: PeerId,
        /// Bytes held.
        offset: u64,
    },
    /// The node listens on an address (with `/p2p/<id>`).
    Listening(Multiaddr),
    /// The first connection to a peer was established (a pull waits for it after a dial).
    Connected(PeerId),
    /// A group invite sealed for this node arrived and its key was installed.
    Joined {
        /// The group.
        group: String,
    },
}

/// `mule status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// This node.
    pub peer_id: String,
    /// Where it listens.
    pub listen_addrs: Vec<String>,
    /// Peers with an open connection.
    pub connected_peers: Vec<String>,
    /// Peers ring selection chose.
    pub selected_peers: Vec<String>,
    /// Peers discovery reported.
    pub known_peers: usize,
    /// Messages waiting to be pushed, per selected peer.
    pub queues: BTreeMap<String, usize>,
    /// Complete messages held.
    pub messages: u64,
    /// Store quota in use: content bytes of complete messages plus declared bytes of transfers
    /// in progress.
    #[serde(default)]
    pub store_used: u64,
    /// The store quota (`--max-store-bytes`).
    #[serde(default)]
    pub store_quota: u64,
    /// Traffic counters.
    pub counters: Snapshot,
    /// Multi-chunk transfers in flight, both directions.
    #[serde(default)]
    pub transfers: Vec<transfers::TransferView>,
}

/// A running node. Cheap to clone; [`Node::shutdown`] stops it.
#[derive(Clone)]
pub struct Node {
    ctx: Arc<Ctx>,
    stop: watch::Sender<bool>,
    tasks: Arc<tokio::sync::Mutex<Option<JoinSet<()>>>>,
    metrics: Option<Arc<metrics::Metrics>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.ctx.peer_id)
            .finish_non_exhaustive()
    }
}

/// Capacity of the new-message broadcast; a sync task that lags behind does a full pass.
const NEWS_CAPACITY: usize = 4096;
/// How often stalled inbound transfers are reaped.
const MAINTENANCE_TICK: Duration = Duration::from_secs(5);

impl Node {
    /// Loads (or creates) the identity in `config.data_dir` and starts the node.
    pub async fn start(config: Config) -> Result<Self, Error> {
        let dir = config.data_dir.clone();
        let identity =
            tokio::task::spawn_blocking(move || Identity::load_or_create(&dir)).await??;
        Self::start_with(identity, config).await
    }

    /// Starts a node with a given identity.
    pub async fn start_with(identity: Identity, config: Config) -> Result<Self, Error> {
        let mut store_config = config.store.clone();
        // The store never evicts this node's own messages that no peer has yet.
        store_config.own_key = Some(identity.public_key());
        let store = Store::open(config.data_dir.join("store"), store_config).await?;
        let (trust, acl) = {
            let (dir, acl_file, id) = (
                config.data_dir.clone(),
                config.acl_file.clone(),
                identity.clone(),
            );
            tokio::task::spawn_blocking(move || load_trust(&dir, acl_file, &id)).await??
        };
        let auth = Authoriser::new(config.access.clone(), acl, trust.roots().clone());
        let mut net_config = config.net.clone();
        // Only trusted peers take ring slots, unless the out list trusts everyone.
        net_config.trusted_only = net_config.trusted_only || !auth.trusts_everyone();
        let mut registry = config
            .metrics
            .then(prometheus_client::registry::Registry::default);
        let (net, events, event_loop) = match registry.as_mut() {
            Some(registry) => net::with_metrics(&identity, net_config, registry)?,
            None => net::new(&identity, net_config)?,
        };
        let pulls = schedule::PullSchedule::new(config.pull_from.clone(), config.pull_interval);
        let (news, _) = broadcast::channel(NEWS_CAPACITY);
        let (node_events, _) = broadcast::channel(NEWS_CAPACITY);
        let ctx = Arc::new(Ctx {
            peer_id: identity.peer_id(),
            me: relay::Me::named(&identity, &trust, crate::message::now_ms()),
            identity,
            trust,
            store,
            net,
            counters: Counters::default(),
            auth,
            config,
            news,
            events: node_events,
            queues: Mutex::new(BTreeMap::new()),
            transfers: Mutex::new(transfers::Transfers::default()),
            pulls: Mutex::new(pulls),
            listen: Mutex::new(Vec::new()),
        });
        let metrics = registry.map(|r| Arc::new(metrics::Metrics::new(r, &ctx)));
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(event_loop.run());
        tasks.spawn(arrivals::run(
            ctx.clone(),
            ctx.events.subscribe(),
            stop_rx.clone(),
        ));
        tasks.spawn(collect_expired(
            ctx.store.clone(),
            ctx.config.collect_interval,
            stop_rx.clone(),
        ));
        tasks.spawn(manager::run(ctx.clone(), events, stop_rx));
        let node = Self {
            ctx,
            stop,
            tasks: Arc::new(tokio::sync::Mutex::new(Some(tasks))),
            metrics,
        };
        tracing::info!(peer_id = %node.ctx.peer_id, "node started");
        Ok(node)
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.ctx.peer_id
    }

    /// Who this node is, for the relay policy (which messages are addressed to it).
    pub fn me(&self) -> &relay::Me {
        &self.ctx.me
    }

    /// The roots this node verifies names against.
    pub fn roots(&self) -> &crate::trust::Roots {
        self.ctx.trust.roots()
    }

    /// The node's identity.
    pub fn identity(&self) -> &Identity {
        &self.ctx.identity
    }

    /// The store (read access for the CLI and tests).
    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    /// The network handle (tests craft requests with it).
    pub fn net(&self) -> &net::Handle {
        &self.ctx.net
    }

    /// The node's settings.
    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// The metrics registry, if [`Config::metrics`] asked for one (the `--metrics` endpoint
    /// serves it).
    pub fn metrics(&self) -> Option<Arc<metrics::Metrics>> {
        self.metrics.clone()
    }

    /// Traffic counters now.
    pub fn counters(&self) -> Snapshot {
        self.ctx.counters.snapshot()
    }

    /// Multi-chunk transfers in flight both ways, now: cheap (no store or network call), for
    /// progress bars that poll it.
    pub fn transfers(&self) -> Vec<transfers::TransferView> {
        self.ctx.transfers().snapshot(std::time::Instant::now())
    }

    /// Observes what the node does (stored messages, chunks, listen addresses).
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.ctx.events.subscribe()
    }

    /// Addresses the node listens on so far (with `/p2p/<id>`).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.ctx
            .listen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until the node listens on at least one address, at most `timeout`.
    pub async fn wait_listening(&self, timeout: Duration) -> Option<Vec<Multiaddr>> {
        let mut events = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let addrs = self.listen_addrs();
            if !addrs.is_empty() {
                return Some(addrs);
            }
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => return None,
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Peers, selection, queues and counters.
    pub async fn status(&self) -> Result<Status, Error> {
        let net = self.ctx.net.status().await?;
        let messages = self.ctx.store.len().await?;
        let usage = self.ctx.store.usage();
        let strings = |v: &[PeerId]| v.iter().map(ToString::to_string).collect();
        Ok(Status {
            peer_id: self.ctx.peer_id.to_string(),
            listen_addrs: self
                .listen_addrs()
                .iter()
                .map(ToString::to_string)
                .collect(),
            connected_peers: strings(&net.connected),
            selected_peers: strings(&net.selected),
            known_peers: net.known,
            queues: self
                .ctx
                .queues
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            messages,
            store_used: usage.used,
            store_quota: usage.quota,
            counters: self.ctx.counters.snapshot(),
            transfers: self.ctx.transfers().snapshot(std::time::Instant::now()),
        })
    }

    /// Stops every task, closes the network and the store. Other clones become inert.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        let _ = self.ctx.net.shutdown().await;
        if let Some(mut tasks) = self.tasks.lock().await.take() {
            while tasks.join_next().await.is_some() {}
        }
        let ctx = self.ctx.clone();
        drop(self);
        // Sync and inbound tasks hold the context until they end; they end on `stop`.
        let store = ctx.store.clone();
        drop(ctx);
        store.close().await.map_err(Error::from)
    }
}

/// Collects expired messages every `every`, on a task of its own: nothing else the node does
/// (a flood of inbound requests, a full writer queue) delays the schedule, and a collection
/// that fails is logged and tried again at the next one. Its removals share the store's
/// writer with pushes, whose queue is first come first served, so it is never starved there.
async fn collect_expired(store: Store, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = tick.tick() => {
                if let Err(e) = store.collect_expired(crate::message::now_ms()).await {
                    tracing::warn!(error = %e, "expiry collection failed");
                }
            }
        }
    }
}

/// Loads the roots and chains of `data_dir` and the access lists (`acl_file`, else
/// `<data-dir>/trust/access.toml` if it exists, else open to everyone).
fn load_trust(
    data_dir: &std::path::Path,
    acl_file: Option<PathBuf>,
    identity: &Identity,
) -> Result<(crate::trust::Trust, crate::trust::AccessPolicy), Error> {
    let trust = crate::trust::Trust::load(data_dir, identity)?;
    let path = match acl_file {
        Some(path) if !path.exists() => return Err(Error::AclMissing(path)),
        Some(path) => path,
        None => data_dir.join(crate::trust::acl::ACCESS_FILE),
    };
    let acl = crate::trust::AccessPolicy::load(&path, identity.peer_id())?;
    Ok((trust, acl))
}
