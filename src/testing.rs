//! Helpers for the tests and benchmarks that start real nodes in one process on loopback: one
//! harness for both, so "start a node", "wait until selected" and "wait until stored" mean the
//! same everywhere. Built only with the `testing` feature (the tests and benches turn it on).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use libp2p::Multiaddr;
use tokio::sync::broadcast;

use crate::identity::Identity;
use crate::message::MessageId;
use crate::node::{Config, Node, NodeEvent};

/// Every wait in the tests ends by this deadline, with a message saying what did not happen.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Logs for a failing test: `RUST_LOG=mule=debug cargo test`.
pub fn init_test_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A node and the temp dir it lives in (removed on drop).
#[derive(Debug)]
pub struct TestNode {
    /// The node.
    pub node: Node,
    /// Its data dir.
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for TestNode {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

/// Starts a node with a fresh identity and waits until it listens; returns its addresses.
pub async fn start_node(config: Config) -> anyhow::Result<(Node, Vec<Multiaddr>)> {
    let node = Node::start_with(Identity::generate(), config)
        .await
        .context("cannot start node")?;
    let addrs = node
        .wait_listening(DEADLINE)
        .await
        .with_context(|| format!("node did not listen within {DEADLINE:?}"))?;
    Ok((node, addrs))
}

/// Starts a test node in a new temp dir with `tweak` applied to [`Config::for_tests`],
/// bootstrapping from `bootstrap`.
pub async fn start(
    bootstrap: Option<&Node>,
    tweak: impl FnOnce(&mut Config),
) -> anyhow::Result<TestNode> {
    start_as(Identity::generate(), tempfile::tempdir()?, bootstrap, tweak).await
}

/// [`start`] with a given identity in a given data dir (prepared beforehand, e.g. with trusted
/// roots, certificate chains or access lists).
pub async fn start_as(
    identity: Identity,
    dir: tempfile::TempDir,
    bootstrap: Option<&Node>,
    tweak: impl FnOnce(&mut Config),
) -> anyhow::Result<TestNode> {
    let mut config = test_config(dir.path(), bootstrap).await?;
    tweak(&mut config);
    let node = Node::start_with(identity, config)
        .await
        .context("cannot start node")?;
    node.wait_listening(DEADLINE)
        .await
        .with_context(|| format!("node did not listen within {DEADLINE:?}"))?;
    Ok(TestNode { node, dir })
}

async fn test_config(dir: &Path, bootstrap: Option<&Node>) -> anyhow::Result<Config> {
    let mut config = Config::for_tests(dir);
    if let Some(b) = bootstrap {
        config.net.bootstrap = b
            .wait_listening(DEADLINE)
            .await
            .context("bootstrap node never listened")?;
    }
    Ok(config)
}

/// Waits until each node selected at least its minimum number of peers.
pub async fn wait_all_selected(
    nodes: &[&Node],
    min: &[usize],
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let mut missing = Vec::new();
        for (node, &m) in nodes.iter().zip(min) {
            let selected = node.status().await?.selected_peers.len();
            if selected < m {
                missing.push(format!("{} selected {selected} of {m}", node.peer_id()));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("within {within:?}: {}", missing.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `node` selected at least `n` peers, within [`DEADLINE`].
pub async fn wait_selected(node: &Node, n: usize) -> anyhow::Result<()> {
    wait_all_selected(&[node], &[n], DEADLINE).await
}

/// When a message arrived at a node.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// `Stored` seen (or the store says complete).
    pub stored: Instant,
    /// First `Chunk` event of the message, if it had any.
    pub first_chunk: Option<Instant>,
    /// The `Chunk` event that completed the bytes (before sha256 check, fsync and commit).
    pub last_chunk: Option<Instant>,
}

/// Waits until `id` is stored at `node` (whose events `events` follows), calling `on_chunk`
/// with the held offset of each chunk event. Falls back to asking the store when the event
/// stream lagged (chunk events of a large message can overrun it) or is quiet.
pub async fn wait_stored_with(
    node: &Node,
    events: &mut broadcast::Receiver<NodeEvent>,
    id: MessageId,
    within: Duration,
    mut on_chunk: impl FnMut(u64),
) -> anyhow::Result<Arrival> {
    let deadline = tokio::time::Instant::now() + within;
    let mut arrival = Arrival {
        stored: Instant::now(),
        first_chunk: None,
        last_chunk: None,
    };
    if node.store().exists(id).await? {
        return Ok(arrival);
    }
    loop {
        match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Ok(Ok(NodeEvent::Stored { id: got, .. })) if got == id => break,
            Ok(Ok(NodeEvent::Chunk {
                id: got, offset, ..
            })) if got == id => {
                let now = Instant::now();
                arrival.first_chunk.get_or_insert(now);
                arrival.last_chunk = Some(now);
                on_chunk(offset);
            }
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => {
                if node.store().exists(id).await? {
                    break;
                }
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => bail!("node stopped"),
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "message {id} did not reach node {} within {within:?}",
                node.peer_id()
            );
        }
    }
    arrival.stored = Instant::now();
    Ok(arrival)
}

/// Waits until `id` is stored at `node`, within [`DEADLINE`].
pub async fn wait_stored(
    node: &Node,
    events: &mut broadcast::Receiver<NodeEvent>,
    id: MessageId,
) -> anyhow::Result<()> {
    wait_stored_with(node, events, id, DEADLINE, |_| {}).await?;
    Ok(())
}

/// Shuts nodes down, reporting (not failing on) errors.
pub async fn shutdown_all(nodes: Vec<Node>) {
    for node in nodes {
        if let Err(e) = node.shutdown().await {
            eprintln!("shutdown: {e}");
        }
    }
}
