//! `spread`: one message flooding a mesh of N in-process nodes with peer limit L.
//!
//! - `MULE_BENCH_SPREAD_NODES` (default 100), `MULE_BENCH_SPREAD_L` (default 4),
//!   `MULE_BENCH_SEED` (default 42): which node sends.
//! - `MULE_BENCH_SPREAD_SETTLE_S` (default 60): longest wait for the mesh to form.
//! - `MULE_BENCH_SPREAD_FINGERS` (`powers`, default, or `scaled`): the ring's finger distances
//!   ([`mule::net::ring::Fingers`]). The BFS depth of both modes' ideal overlays is reported
//!   either way, beside the measured one.
//!
//! Star bootstrap from node 0, mDNS off. Once every node has selected min(L, N-1) peers and
//! discovery has settled, one 1 KiB broadcast is sent at a random node. Results: time until every
//! node stored it (goal ≤ 2 s), duplicate transfers (goal ≤ 10%), and the hop histogram beside
//! the ideal: the diameter of the ring-selection overlay computed with
//! [`mule::net::ring::select`] over the same peer ids.

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::{Goal, Record};
use libp2p::PeerId;
use mule::message::MessageId;
use mule::net::ring::Fingers;
use mule::node::{Content, Node, NodeEvent};
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

const BENCH: &str = "spread";
/// File descriptors budgeted per node: listener, store, and both ends of every in-process
/// connection (Kademlia discovery opens dozens per node; 100 nodes held ~11,400 fds in total).
const FDS_PER_NODE: u64 = 160;
/// Time given to pushes still in flight after the last node stored the message, before the
/// counters are read.
const COUNTER_SETTLE: Duration = Duration::from_secs(2);
/// Goal: every node has it within this.
const GOAL_MS: f64 = 2000.0;

fn main() -> anyhow::Result<()> {
    common::init_tracing();
    let n = common::env_u64("MULE_BENCH_SPREAD_NODES", 100).max(2) as usize;
    let l = common::env_u64("MULE_BENCH_SPREAD_L", 4) as usize;
    let seed = common::env_u64("MULE_BENCH_SEED", 42);
    let settle = Duration::from_secs(common::env_u64("MULE_BENCH_SPREAD_SETTLE_S", 60));
    let fingers: Fingers = match std::env::var("MULE_BENCH_SPREAD_FINGERS") {
        Ok(v) => v.parse().map_err(anyhow::Error::msg)?,
        Err(_) => Fingers::default(),
    };
    check_fds(n)?;
    let rt = common::runtime()?;
    rt.block_on(run(n, l, fingers, seed, settle))
}

/// Raises the soft open-files limit to the hard one if needed, or explains what to do.
fn check_fds(n: usize) -> anyhow::Result<()> {
    let need = n as u64 * FDS_PER_NODE + 256;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        bail!(
            "getrlimit(RLIMIT_NOFILE) failed: {}",
            std::io::Error::last_os_error()
        );
    }
    if lim.rlim_cur >= need {
        return Ok(());
    }
    let raised = libc::rlimit {
        rlim_cur: need.min(lim.rlim_max),
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 && raised.rlim_cur >= need {
        progress!(
            "raised the open-files limit from {} to {}",
            lim.rlim_cur,
            raised.rlim_cur
        );
        return Ok(());
    }
    bail!(
        "{n} nodes need about {need} open files, but the limit is {} (hard limit {}). \
         Raise it (`ulimit -n {need}`, or the hard limit in /etc/security/limits.conf) \
         or lower MULE_BENCH_SPREAD_NODES",
        lim.rlim_cur,
        lim.rlim_max
    )
}

async fn run(
    n: usize,
    l: usize,
    fingers: Fingers,
    seed: u64,
    settle: Duration,
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().context("tempdir")?;
    let want = if l == 0 { n - 1 } else { l.min(n - 1) };

    progress!("starting {n} nodes, L = {l}, fingers {fingers}");
    let t_start = Instant::now();
    let mut config = common::node_config(&tmp.path().join("n0"));
    config.net.max_active_peers = l;
    config.net.fingers = fingers;
    let (first, bootstrap) = common::start_node(config).await?;
    let mut nodes = vec![first];
    for i in 1..n {
        let mut config = common::node_config(&tmp.path().join(format!("n{i}")));
        config.net.max_active_peers = l;
        config.net.fingers = fingers;
        config.net.bootstrap = bootstrap.clone();
        let (node, _) = common::start_node(config)
            .await
            .with_context(|| format!("node {i}"))?;
        nodes.push(node);
    }
    progress!("  started in {:.2} s", t_start.elapsed().as_secs_f64());

    let formation = wait_mesh(&nodes, want, settle).await?;
    progress!(
        "  mesh formed in {:.2} s (known peers min {} mean {:.1}); {}",
        formation.elapsed.as_secs_f64(),
        formation.known_min,
        formation.known_mean,
        if formation.settled {
            "discovery settled"
        } else {
            "discovery still changing at the deadline"
        }
    );

    // The overlay: actual selections now, and the ideal with every node knowing every peer.
    let ids: Vec<PeerId> = nodes.iter().map(Node::peer_id).collect();
    let index: HashMap<PeerId, usize> = ids.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let ideal_of = |fingers: Fingers| -> Vec<Vec<usize>> {
        ids.iter()
            .map(|me| {
                mule::net::ring::select(me, &ids, l, fingers, |_| false)
                    .iter()
                    .filter_map(|p| index.get(p).copied())
                    .collect()
            })
            .collect()
    };
    let ideal = ideal_of(fingers);
    let diameter_of = |edges: &[Vec<usize>]| (0..n).filter_map(|s| eccentricity(edges, s)).max();
    let ideal_diameter_powers = diameter_of(&ideal_of(Fingers::PowersOfTwo));
    let ideal_diameter_scaled = diameter_of(&ideal_of(Fingers::Scaled));
    let mut actual = Vec::with_capacity(n);
    for node in &nodes {
        let selected = node.status().await?.selected_peers;
        actual.push(
            selected
                .iter()
                .filter_map(|s| s.parse::<PeerId>().ok())
                .filter_map(|p| index.get(&p).copied())
                .collect::<Vec<_>>(),
        );
    }

    let fds = common::open_fds();

    // Observe every node before sending.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watchers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        watchers.push(tokio::spawn(watch(i, node.subscribe(), tx.clone())));
    }
    drop(tx);
    let before: Vec<_> = nodes.iter().map(Node::counters).collect();

    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let origin = rng.gen_range(0..n);
    progress!("sending 1 KiB broadcast at node {origin}");
    let t0 = Instant::now();
    let id = nodes[origin]
        .send(
            mule::message::BROADCAST,
            Content::Bytes(common::random_bytes(1024, seed)),
            Duration::from_secs(3600),
        )
        .await?;
    // Events that arrived while `send` ran wait in the unbounded channel, stamped on arrival.
    let mut stored_at: HashMap<usize, Instant> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stored_at.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((i, got, at))) if got == id => {
                stored_at.entry(i).or_insert(at);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let reached = stored_at.len();
    let last = stored_at.values().max().copied().unwrap_or(t0);
    let spread_ms = (last - t0).as_secs_f64() * 1e3;
    if reached < n {
        progress!("  only {reached} of {n} nodes stored it within 60 s");
    } else {
        progress!("  all {n} nodes stored it in {spread_ms:.1} ms");
    }
    tokio::time::sleep(COUNTER_SETTLE).await;

    // Duplicates: content transfers beyond the N-1 needed.
    let after: Vec<_> = nodes.iter().map(Node::counters).collect();
    let transfers: u64 = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.content_transfers - b.content_transfers)
        .sum();
    let already_seen: u64 = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.duplicates - b.duplicates)
        .sum();
    // Content pushed on the wire: a push refused `already-seen` still carried its bytes.
    let pushed_bytes: u64 = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.bytes_sent - b.bytes_sent)
        .sum();
    let needed = (n - 1) as f64;
    let dup_ratio = (transfers as f64 - needed) / needed;
    let pushed = pushed_bytes as f64 / 1024.0;
    let wire_dup_ratio = (pushed - needed) / needed;

    // Hops: a relay appends itself, the sender does not, so path length = hops.len() + 1.
    let mut histogram: BTreeMap<usize, u64> = BTreeMap::new();
    let mut path_sum = 0usize;
    for (i, node) in nodes.iter().enumerate() {
        if i == origin {
            continue;
        }
        if let Some(stored) = node.store().get(id).await? {
            let path = stored.header.hops.len() + 1;
            *histogram.entry(path).or_default() += 1;
            path_sum += path;
        }
    }
    let max_path = histogram.keys().max().copied().unwrap_or(0);
    let mean_path = path_sum as f64 / histogram.values().sum::<u64>().max(1) as f64;
    let ideal_ecc = eccentricity(&ideal, origin);
    let ideal_diameter = diameter_of(&ideal);
    let actual_ecc = eccentricity(&actual, origin);
    let actual_diameter = diameter_of(&actual);
    progress!(
        "  transfers {transfers} for {} receivers ({:.1} % extra), already-seen answers {already_seen}, \
         content pushed {pushed:.0} times ({:.1} % extra)",
        n - 1,
        dup_ratio * 100.0,
        wire_dup_ratio * 100.0
    );
    progress!(
        "  path lengths {histogram:?}; ideal eccentricity {ideal_ecc:?} (diameter {ideal_diameter:?}), \
         actual overlay eccentricity {actual_ecc:?} (diameter {actual_diameter:?}); \
         ideal diameters: powers {ideal_diameter_powers:?}, scaled {ideal_diameter_scaled:?}"
    );

    let ctx = |r: Record| {
        r.ctx("nodes", n as u64)
            .ctx("L", l as u64)
            .ctx("fingers", fingers.to_string())
            .ctx("seed", seed)
            .ctx("origin", origin as u64)
            .ctx("bytes", 1024)
    };
    ctx(Record::new(BENCH, "time_to_all", spread_ms, "ms"))
        .goal(Goal::ValueAtMost(GOAL_MS))
        .ctx("reached", reached as u64)
        .ctx("mesh_formation_s", formation.elapsed.as_secs_f64())
        .ctx("all_selected_s", formation.all_selected.as_secs_f64())
        .ctx("known_peers_min", formation.known_min as u64)
        .ctx("known_peers_mean", formation.known_mean)
        .ctx("discovery_settled", formation.settled)
        .ctx("open_fds", fds)
        .ctx("process_rss_mib", common::self_status_mib("VmRSS:"))
        .ctx("process_hwm_mib", common::self_status_mib("VmHWM:"))
        .emit();
    ctx(Record::new(BENCH, "duplicates_ratio", dup_ratio, "ratio"))
        .goal(Goal::ValueAtMost(0.10))
        .ctx("content_transfers", transfers)
        .ctx("already_seen_answers", already_seen)
        .ctx("receivers", (n - 1) as u64)
        .ctx(
            "what",
            "(sum of counters.content_transfers - (N-1)) / (N-1); pushes refused as already-seen are not counted",
        )
        .emit();
    ctx(Record::new(BENCH, "duplicate_pushes_ratio", wire_dup_ratio, "ratio"))
        // Issue 12: at most 1.05 content pushes on the wire per delivery.
        .goal(Goal::ValueAtMost(0.05))
        .ctx("content_pushes", pushed.round() as u64)
        .ctx("pushed_bytes", pushed_bytes)
        .ctx("receivers", (n - 1) as u64)
        .ctx(
            "what",
            "(content pushes on the wire - (N-1)) / (N-1), from counters.bytes_sent; includes pushes answered already-seen",
        )
        .emit();
    let hist_json: serde_json::Map<String, serde_json::Value> = histogram
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut r = ctx(Record::new(BENCH, "max_hops", max_path as f64, "hops"));
    if let Some(e) = ideal_ecc {
        r = r.baseline(
            e as f64,
            "ideal: origin's eccentricity in the ring::select overlay with every peer known",
        );
    }
    r.ctx("hop_histogram", serde_json::Value::Object(hist_json))
        .ctx("mean_hops", mean_path)
        .ctx("ideal_diameter", ideal_diameter.map(|d| d as u64))
        .ctx(
            "ideal_diameter_powers",
            ideal_diameter_powers.map(|d| d as u64),
        )
        .ctx(
            "ideal_diameter_scaled",
            ideal_diameter_scaled.map(|d| d as u64),
        )
        .ctx("actual_overlay_eccentricity", actual_ecc.map(|d| d as u64))
        .ctx("actual_overlay_diameter", actual_diameter.map(|d| d as u64))
        .emit();

    for w in watchers {
        w.abort();
    }
    let t = Instant::now();
    common::shutdown_all(nodes).await;
    progress!("  shut down in {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Forwards every `Stored` at node `i` with its time.
async fn watch(
    i: usize,
    mut events: broadcast::Receiver<NodeEvent>,
    tx: mpsc::UnboundedSender<(usize, MessageId, Instant)>,
) {
    loop {
        match events.recv().await {
            Ok(NodeEvent::Stored { id, .. }) => {
                if tx.send((i, id, Instant::now())).is_err() {
                    return;
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

struct Formation {
    all_selected: Duration,
    elapsed: Duration,
    known_min: usize,
    known_mean: f64,
    settled: bool,
}

/// Waits until every node selected `want` peers, then until no node's known-peer count changes
/// for two polls in a row (or `settle` runs out).
async fn wait_mesh(nodes: &[Node], want: usize, settle: Duration) -> anyhow::Result<Formation> {
    let t0 = Instant::now();
    let deadline = t0 + settle;
    let mut previous: Option<Vec<(usize, Vec<String>)>> = None;
    let mut stable = 0;
    let mut all_selected = None;
    let mut report = Instant::now();
    loop {
        let mut view = Vec::with_capacity(nodes.len());
        let mut short = 0;
        for node in nodes {
            let s = node.status().await?;
            if s.selected_peers.len() < want {
                short += 1;
            }
            view.push((s.known_peers, s.selected_peers));
        }
        let known: Vec<usize> = view.iter().map(|v| v.0).collect();
        let known_min = known.iter().copied().min().unwrap_or(0);
        let known_mean = known.iter().sum::<usize>() as f64 / known.len().max(1) as f64;
        if report.elapsed() >= Duration::from_secs(5) {
            progress!(
                "  {:.0} s: {short} nodes short of {want} selected; known peers min {known_min} mean {known_mean:.1}",
                t0.elapsed().as_secs_f64()
            );
            report = Instant::now();
        }
        if short == 0 {
            let all_selected = *all_selected.get_or_insert_with(|| t0.elapsed());
            // Stable: no node's known peers or selection changed over two polls.
            stable = if previous.as_ref() == Some(&view) {
                stable + 1
            } else {
                0
            };
            if stable >= 2 {
                return Ok(Formation {
                    all_selected,
                    elapsed: t0.elapsed(),
                    known_min,
                    known_mean,
                    settled: true,
                });
            }
        }
        if Instant::now() >= deadline {
            if short > 0 {
                bail!(
                    "{short} of {} nodes selected fewer than {want} peers within {settle:?}",
                    nodes.len()
                );
            }
            return Ok(Formation {
                all_selected: all_selected.unwrap_or_default(),
                elapsed: t0.elapsed(),
                known_min,
                known_mean,
                settled: false,
            });
        }
        previous = Some(view);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Longest shortest path from `from` in the directed graph `edges` (`None` if some node is
/// unreachable).
fn eccentricity(edges: &[Vec<usize>], from: usize) -> Option<usize> {
    let mut dist = vec![usize::MAX; edges.len()];
    dist[from] = 0;
    let mut queue = VecDeque::from([from]);
    while let Some(u) = queue.pop_front() {
        for &v in &edges[u] {
            if dist[v] == usize::MAX {
                dist[v] = dist[u] + 1;
                queue.push_back(v);
            }
        }
    }
    dist.into_iter()
        .try_fold(0, |m, d| (d != usize::MAX).then_some(m.max(d)))
}
