//! Shared helpers for multi-node tests: real nodes in one process, on 127.0.0.1, bounded waits.

#![allow(dead_code)]

use std::time::Duration;

use anyhow::Context;
use mule::identity::Identity;
use mule::message::MessageId;
use mule::node::{Config, Node, NodeEvent};
use tokio::sync::broadcast;

/// Every wait in the tests ends by this deadline, with a message saying what did not happen.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Logs for a failing test: `RUST_LOG=mule=debug cargo test`.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A node and the temp dir it lives in (removed on drop).
pub struct TestNode {
    pub node: Node,
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for TestNode {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

/// Starts a node with `tweak` applied to its test config, bootstrapping from `bootstrap`.
pub async fn start(
    bootstrap: Option<&Node>,
    tweak: impl FnOnce(&mut Config),
) -> anyhow::Result<TestNode> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_tests(dir.path());
    if let Some(b) = bootstrap {
        let addrs = b
            .wait_listening(DEADLINE)
            .await
            .context("bootstrap node never listened")?;
        config.net.bootstrap = addrs;
    }
    tweak(&mut config);
    let node = Node::start_with(Identity::generate(), config).await?;
    node.wait_listening(DEADLINE)
        .await
        .context("node never listened")?;
    Ok(TestNode { node, dir })
}

/// Waits until `node` selected at least `n` peers.
pub async fn wait_selected(node: &Node, n: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let status = node.status().await?;
        if status.selected_peers.len() >= n {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "node {} selected {} peers, wanted {n}",
            node.peer_id(),
            status.selected_peers.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for `id` to be stored at the node whose events `events` follows (or already there).
pub async fn wait_stored(
    node: &Node,
    events: &mut broadcast::Receiver<NodeEvent>,
    id: MessageId,
) -> anyhow::Result<()> {
    if node.store().exists(id).await? {
        return Ok(());
    }
    let wait = async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::Stored { id: got, .. }) if got == id => return Ok(()),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if node.store().exists(id).await? {
                        return Ok(());
                    }
                }
                Err(e) => return Err(anyhow::anyhow!("event stream ended: {e}")),
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .with_context(|| format!("message {id} never reached node {}", node.peer_id()))?
}
