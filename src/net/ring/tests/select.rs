//! Tests of the pure selection rule: hand-made rings, overlay properties, peer id order.

use std::collections::{BTreeSet, VecDeque};

use libp2p::PeerId;
use proptest::prelude::*;

use super::{select, select_eligible, Fingers};

const P2: Fingers = Fingers::PowersOfTwo;

fn ids(n: u32) -> Vec<u32> {
    (0..n).collect()
}

fn never(_: &u32) -> bool {
    false
}

// ---- select: hand-made rings ----

#[test]
fn thirteen_peers_pick_powers_of_two() {
    assert_eq!(select(&0, &ids(13), 4, P2, never), vec![1, 2, 4, 8]);
    // Distances wrap around the ring: 5 + 8 = 13 = 0 (mod 13).
    assert_eq!(select(&5, &ids(13), 4, P2, never), vec![6, 7, 9, 0]);
}

#[test]
fn distances_count_ring_positions_not_id_values() {
    let peers: Vec<u32> = (1..=13).map(|k| k * 10).collect();
    assert_eq!(select(&10, &peers, 4, P2, never), vec![20, 30, 50, 90]);
}

#[test]
fn distance_landing_on_a_picked_peer_walks_forward() {
    // N = 6: distances 1, 2, 4, then 8 = 2 (mod 6), which is taken, so the walk takes 3.
    assert_eq!(select(&0, &ids(6), 4, P2, never), vec![1, 2, 4, 3]);
    // N = 7: 8 = 1 (mod 7): 1, 2 taken, take 3; 16 = 2: 2, 3, 4 taken, take 5.
    assert_eq!(select(&0, &ids(7), 5, P2, never), vec![1, 2, 4, 3, 5]);
    // The walk wraps past the end of the ring: self 4 of 6, 4 + 8 = 0 (mod 6) is taken.
    assert_eq!(select(&4, &ids(6), 4, P2, never), vec![5, 0, 2, 1]);
}

#[test]
fn bad_peers_are_skipped() {
    let bad = |p: &u32| [1, 4].contains(p);
    // 1 is bad: take 2; 2 is taken: take 3; 4 is bad: take 5; then 8.
    assert_eq!(select(&0, &ids(13), 4, P2, bad), vec![2, 3, 5, 8]);
    // The walk skips self too: 4 is bad, 0 is self, 1 and 2 are taken.
    assert_eq!(select(&0, &ids(5), 3, P2, |p| *p == 4), vec![1, 2, 3]);
}

#[test]
fn bad_peers_are_taken_when_nothing_else_is_left() {
    assert_eq!(select(&0, &ids(5), 3, P2, |_| true), vec![1, 2, 4]);
    // 4 is the only good peer and goes first; then the bad ones from each start.
    assert_eq!(select(&0, &ids(5), 3, P2, |p| *p != 4), vec![4, 2, 1]);
}

#[test]
fn no_limit_selects_everyone_in_ring_order() {
    assert_eq!(select(&3, &ids(6), 0, P2, never), vec![4, 5, 0, 1, 2]);
    assert_eq!(select(&3, &ids(6), 0, P2, |_| true), vec![4, 5, 0, 1, 2]);
}

#[test]
fn limit_at_or_above_peer_count_selects_everyone() {
    assert_eq!(select(&0, &ids(5), 4, P2, never), vec![1, 2, 3, 4]);
    assert_eq!(select(&0, &ids(5), 10, P2, never), vec![1, 2, 3, 4]);
    assert_eq!(select(&2, &ids(5), 4, P2, |_| true), vec![3, 4, 0, 1]);
}

#[test]
fn self_may_or_may_not_be_in_peers() {
    let without_self: Vec<u32> = (1..13).collect();
    assert_eq!(select(&0, &without_self, 4, P2, never), vec![1, 2, 4, 8]);
    assert_eq!(select(&0, &ids(13), 4, P2, never), vec![1, 2, 4, 8]);
}

#[test]
fn duplicates_and_input_order_are_ignored() {
    let mut messy: Vec<u32> = ids(13).into_iter().rev().collect();
    messy.extend([8, 8, 0, 3, 12, 1]);
    assert_eq!(select(&0, &messy, 4, P2, never), vec![1, 2, 4, 8]);
}

#[test]
fn tiny_rings() {
    assert!(select(&0, &[], 3, P2, never).is_empty());
    assert!(select(&0, &[0, 0], 3, P2, never).is_empty());
    assert_eq!(select(&0, &[7], 3, P2, never), vec![7]);
    assert_eq!(select(&0, &[7], 3, P2, |_| true), vec![7]);
}

#[test]
fn large_limits_do_not_overflow() {
    let peers = ids(1000);
    for limit in [63, 64, 65, 200, 998] {
        let picked = select(&0, &peers, limit, P2, |p| p.is_multiple_of(3));
        assert_eq!(picked.len(), limit);
        let distinct: BTreeSet<u32> = picked.iter().copied().collect();
        assert_eq!(distinct.len(), limit);
        assert!(!distinct.contains(&0));
    }
    assert_eq!(select(&0, &peers, 999, P2, never).len(), 999);
}

/// `select` on the ring `0..n` for every node, as adjacency lists.
fn overlay(n: usize, limit: usize, fingers: Fingers, bad: &[bool]) -> Vec<Vec<usize>> {
    let peers: Vec<usize> = (0..n).collect();
    let is_bad = |p: &usize| bad.get(*p).copied().unwrap_or(false);
    peers
        .iter()
        .map(|me| select(me, &peers, limit, fingers, is_bad))
        .collect()
}

/// The longest shortest path of `graph` (`usize::MAX` if some node cannot reach another).
fn diameter(graph: &[Vec<usize>]) -> usize {
    (0..graph.len())
        .map(|from| {
            hops(graph, from)
                .into_iter()
                .map(|d| d.unwrap_or(usize::MAX))
                .max()
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

/// BFS hop counts from `from`; `None` = unreachable.
fn hops(graph: &[Vec<usize>], from: usize) -> Vec<Option<usize>> {
    let mut dist = vec![None; graph.len()];
    dist[from] = Some(0);
    let mut queue = VecDeque::from([from]);
    while let Some(node) = queue.pop_front() {
        let next = dist[node].map_or(0, |d| d + 1);
        for &peer in &graph[node] {
            if dist[peer].is_none() {
                dist[peer] = Some(next);
                queue.push_back(peer);
            }
        }
    }
    dist
}

#[test]
fn scaled_fingers_spread_geometrically() {
    let s = Fingers::Scaled;
    // N = 81, L = 4: 81^(i/4) = 1, 3, 9, 27.
    assert_eq!(select(&0, &ids(81), 4, s, never), vec![1, 3, 9, 27]);
    // N = 16, L = 4: the same as powers of two.
    assert_eq!(
        select(&0, &ids(16), 4, s, never),
        select(&0, &ids(16), 4, P2, never)
    );
    // N = 1000, L = 3: 1, 10, 100, wrapping from 995.
    assert_eq!(select(&995, &ids(1000), 3, s, never), vec![996, 5, 95]);
    // A distance landing on a picked peer walks forward, as with powers of two: N = 5 members
    // and L = 3 give 1, round(5^(1/3)) = 2, round(5^(2/3)) = 3.
    assert_eq!(select(&0, &ids(5), 3, s, never), vec![1, 2, 3]);
    // N = 4, L = 2: 1, then round(4^(1/2)) = 2.
    assert_eq!(select(&0, &ids(4), 2, s, never), vec![1, 2]);
}

#[test]
fn scaled_fingers_keep_large_rings_shallow() {
    // The target: N = 1000, L = 4 crosses in at most 20 hops (powers of two: ~127).
    let scaled = diameter(&overlay(1000, 4, Fingers::Scaled, &[]));
    let powers = diameter(&overlay(1000, 4, P2, &[]));
    assert!(scaled <= 20, "scaled diameter {scaled}");
    assert!(powers >= 100, "powers-of-two diameter {powers}");
}

#[test]
fn fingers_parse_and_print() {
    for f in [Fingers::PowersOfTwo, Fingers::Scaled] {
        assert_eq!(f.to_string().parse::<Fingers>(), Ok(f));
    }
    assert_eq!("powers-of-two".parse::<Fingers>(), Ok(P2));
    assert!("log".parse::<Fingers>().is_err());
}

#[test]
fn log_limit_gives_log_diameter() {
    for n in 2..=256usize {
        let ceil_log2 = (usize::BITS - (n - 1).leading_zeros()) as usize;
        let limit = ceil_log2.max(1);
        let graph = overlay(n, limit, P2, &[]);
        for from in 0..n {
            let worst = hops(&graph, from)
                .into_iter()
                .map(|d| d.unwrap_or(usize::MAX))
                .max();
            assert!(
                worst <= Some(limit),
                "n={n} limit={limit} from={from}: {worst:?} hops"
            );
        }
    }
}

proptest! {
    /// Without bad peers the overlay is strongly connected. With bad peers (the same for
    /// everyone), nobody syncs *to* a bad peer while good ones remain, so the property is:
    /// every node reaches every good node (all nodes if none is good), and ignoring edge
    /// direction everyone is connected.
    #[test]
    fn overlay_stays_connected(
        n in 2usize..200,
        limit in 1usize..6,
        scaled in any::<bool>(),
        bad in proptest::collection::vec(any::<bool>(), 200),
    ) {
        let bad = &bad[..n];
        let fingers = if scaled { Fingers::Scaled } else { P2 };

        let plain = overlay(n, limit, fingers, &[]);
        for from in 0..n {
            prop_assert!(hops(&plain, from).iter().all(Option::is_some), "from {}", from);
        }

        let graph = overlay(n, limit, fingers, bad);
        let good: Vec<usize> = (0..n).filter(|&p| !bad[p]).collect();
        let must_reach: Vec<usize> = if good.is_empty() { (0..n).collect() } else { good };
        for from in 0..n {
            let reach = hops(&graph, from);
            for &to in &must_reach {
                prop_assert!(reach[to].is_some(), "{} cannot reach {}", from, to);
            }
        }

        let mut undirected = vec![Vec::new(); n];
        for (from, picked) in graph.iter().enumerate() {
            for &to in picked {
                undirected[from].push(to);
                undirected[to].push(from);
            }
        }
        prop_assert!(hops(&undirected, 0).iter().all(Option::is_some));
    }

    /// Output depends on the set of peers only, never picks self or a duplicate, has the
    /// promised length, and contains no bad peer while enough good ones exist.
    #[test]
    fn selection_is_a_function_of_the_peer_set(
        peers in proptest::collection::vec(0u16..300, 0..120),
        me in 0u16..300,
        limit in 0usize..8,
        bad_modulus in 2u16..6,
    ) {
        let is_bad = |p: &u16| p.is_multiple_of(bad_modulus);
        let picked = select(&me, &peers, limit, P2, is_bad);

        let mut reordered: Vec<u16> = peers.iter().rev().copied().collect();
        reordered.extend(peers.iter().take(7));
        reordered.push(me);
        prop_assert_eq!(&select(&me, &reordered, limit, P2, is_bad), &picked);

        let others: BTreeSet<u16> = peers.iter().copied().filter(|p| *p != me).collect();
        let expected = if limit == 0 || others.len() <= limit { others.len() } else { limit };
        prop_assert_eq!(picked.len(), expected);
        let distinct: BTreeSet<u16> = picked.iter().copied().collect();
        prop_assert_eq!(distinct.len(), picked.len());
        prop_assert!(distinct.is_subset(&others));
        let good = others.iter().filter(|p| !is_bad(p)).count();
        if limit != 0 && others.len() > limit && good >= limit {
            prop_assert!(picked.iter().all(|p| !is_bad(p)));
        }
    }
}

// ---- PeerId order ----

#[test]
fn peer_id_ord_matches_byte_order() -> anyhow::Result<()> {
    let mut peers: Vec<PeerId> = (0..200).map(|_| PeerId::random()).collect();
    for _ in 0..50 {
        peers.push(
            libp2p::identity::Keypair::generate_ed25519()
                .public()
                .to_peer_id(),
        );
    }
    for k in 0..50u8 {
        // sha2-256 multihash: code 0x12, 32-byte digest.
        let mut bytes = vec![0x12, 0x20];
        bytes.extend((0..32u8).map(|i| i.wrapping_mul(k).wrapping_add(k)));
        peers.push(PeerId::from_bytes(&bytes)?);
    }
    let mut by_ord = peers.clone();
    by_ord.sort();
    let mut by_bytes = peers;
    by_bytes.sort_by_key(|p| p.to_bytes());
    assert_eq!(by_ord, by_bytes);
    Ok(())
}

// ---- select_eligible: trusted-only rings ----

#[test]
fn ineligible_peers_take_no_position_and_no_slot() {
    // Odd peers are untrusted: the ring is 0, 2, 4, ..., 24 (13 members), so distances
    // 1, 2, 4, 8 from 0 land on 2, 4, 8, 16.
    let peers = ids(25);
    let even = |p: &u32| p.is_multiple_of(2);
    assert_eq!(
        select_eligible(&0, &peers, 4, P2, even, never),
        vec![2, 4, 8, 16]
    );
    // Equal to `select` over the eligible peers alone.
    let trusted: Vec<u32> = peers.iter().copied().filter(even).collect();
    assert_eq!(
        select_eligible(&0, &peers, 4, P2, even, never),
        select(&0, &trusted, 4, P2, never)
    );
}

#[test]
fn no_eligible_peer_selects_nobody() {
    assert!(select_eligible(&0, &ids(10), 3, P2, |_| false, never).is_empty());
    assert!(select_eligible(&0, &ids(10), 0, P2, |_| false, never).is_empty());
}

#[test]
fn bad_and_ineligible_combine() {
    // Eligible: 0, 3, 6, 9, 12 (self 0); 3 is bad, so distance 1 walks to 6, then 6 is taken
    // at distance 2 and the walk takes 9.
    let eligible = |p: &u32| p.is_multiple_of(3);
    assert_eq!(
        select_eligible(&0, &ids(13), 2, P2, eligible, |p| *p == 3),
        vec![6, 9]
    );
}

proptest! {
    /// Never selects an ineligible peer, and the eligible-only answer equals plain `select`.
    #[test]
    fn only_eligible_peers_are_selected(
        peers in proptest::collection::vec(0u16..300, 0..120),
        me in 0u16..300,
        limit in 0usize..8,
        modulus in 2u16..5,
    ) {
        let eligible = |p: &u16| p % modulus != 1;
        let picked = select_eligible(&me, &peers, limit, P2, eligible, |_| false);
        prop_assert!(picked.iter().all(eligible));
        let filtered: Vec<u16> = peers.iter().copied().filter(eligible).collect();
        prop_assert_eq!(picked, select(&me, &filtered, limit, P2, |_| false));
    }
}
