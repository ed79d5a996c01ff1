//! 32 real nodes in one process, mDNS off, all bootstrapping from node 0, peer limit L = 1:
//! a message injected at node 0 reaches every node. Prints the hop histogram.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{start, wait_stored, TestNode, DEADLINE};
use mule::node::Content;

const NODES: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_reaches_all_32_nodes_with_one_active_peer_each() -> anyhow::Result<()> {
    common::init_tracing();
    let tweak = |c: &mut mule::node::Config| c.net.max_active_peers = 1;
    let first = start(None, tweak).await?;
    let mut nodes: Vec<TestNode> = vec![];
    for _ in 1..NODES {
        nodes.push(start(Some(&first), tweak).await?);
    }
    nodes.insert(0, first);

    // Wait until discovery has told every node about every other (Kademlia via node 0), so the
    // ring each node sees is the whole ring and L=1 selection forms one cycle.
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut lagging = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let s = n.status().await?;
            if s.known_peers < NODES - 1 || s.selected_peers.is_empty() {
                lagging.push((i, s.known_peers));
            }
        }
        if lagging.is_empty() {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "discovery incomplete after {:?}: (node, known peers) {lagging:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("mesh formed in {:?}", started.elapsed());

    let mut events: Vec<_> = nodes.iter().map(|n| n.subscribe()).collect();
    let sent = Instant::now();
    let id = nodes[0]
        .send(
            "*",
            Content::Bytes(b"fire at the north beach tonight".to_vec()),
            Duration::from_secs(3600),
        )
        .await?;
    let mut hops = BTreeMap::<usize, usize>::new();
    for (n, ev) in nodes.iter().zip(events.iter_mut()).skip(1) {
        wait_stored(n, ev, id).await?;
        let stored = n
            .store()
            .get(id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("vanished"))?;
        *hops.entry(stored.header.hops.len()).or_default() += 1;
    }
    let transfers: u64 = nodes.iter().map(|n| n.counters().content_transfers).sum();
    eprintln!(
        "full coverage of {} nodes in {:?}; hop histogram {hops:?}; {transfers} content transfers",
        NODES - 1,
        sent.elapsed()
    );
    assert_eq!(hops.values().sum::<usize>(), NODES - 1);
    // With L = 1 each node pushes to one peer: no node receives the content twice.
    assert_eq!(transfers, (NODES - 1) as u64);
    for n in nodes {
        n.node.shutdown().await?;
    }
    Ok(())
}
