//! The pure selection rule: which of the peers on a sorted ring this node syncs with.
//!
//! Nothing here knows libp2p, clocks or I/O: [`select`] is a function of its arguments, so every
//! node that knows the same peers computes the same overlay, and the rule can be simulated at
//! scale in tests.

/// Ring selection: picks at most `limit` peers for `self_id` to sync with.
///
/// The ring is `peers` plus `self_id`, sorted by `Ord` and deduplicated (so `peers` may or may
/// not contain `self_id`, and may contain duplicates or come in any order). With `N` ring
/// members and `self_id` at position `i`:
///
/// - `limit == 0` (no limit), or at most `limit` other peers: all other peers, in ring order
///   starting after `self_id`.
/// - otherwise, for `n` in `0..limit`: start at `(i + 2^n) mod N` and walk forward to the first
///   peer that is neither `self_id`, nor already picked, nor `is_bad`. If every remaining peer is
///   bad, take the first remaining one from that start anyway: a bad peer beats no peer.
///
/// The result is in selection order (distance 1 first) and depends only on the arguments.
/// `is_bad` is called at most once per ring member.
#[must_use]
pub fn select<P: Ord + Clone>(
    self_id: &P,
    peers: &[P],
    limit: usize,
    is_bad: impl Fn(&P) -> bool,
) -> Vec<P> {
    let mut ring: Vec<&P> = Vec::with_capacity(peers.len().saturating_add(1));
    ring.extend(peers);
    ring.push(self_id);
    ring.sort_unstable();
    ring.dedup();
    let n = ring.len();
    let Ok(me) = ring.binary_search(&self_id) else {
        // `self_id` was pushed above; the search cannot miss. Selecting nobody is the safe answer.
        return Vec::new();
    };
    let others = n - 1;

    if limit == 0 || others <= limit {
        return (1..n).map(|k| ring[add_mod(me, k, n)].clone()).collect();
    }

    // Here `n >= 3` and at least one unpicked peer remains in every round, so a pick always
    // succeeds.
    let bad: Vec<bool> = ring.iter().map(|p| is_bad(p)).collect();
    let mut taken = vec![false; n];
    taken[me] = true;
    let mut picked = Vec::with_capacity(limit);
    let mut distance = 1; // 2^round mod n, doubled without overflow.
    for _ in 0..limit {
        let start = add_mod(me, distance, n);
        let walk = |k: usize| add_mod(start, k, n);
        let good = (0..n).map(walk).find(|&j| !taken[j] && !bad[j]);
        let Some(j) = good.or_else(|| (0..n).map(walk).find(|&j| !taken[j])) else {
            break;
        };
        taken[j] = true;
        picked.push(ring[j].clone());
        distance = add_mod(distance, distance, n);
    }
    picked
}

/// `(a + b) mod n` for `a, b < n`, without overflow.
fn add_mod(a: usize, b: usize, n: usize) -> usize {
    let room = n - a;
    if b >= room {
        b - room
    } else {
        a + b
    }
}

/// [`select`] over the `eligible` peers only: the others are not on the ring at all, so they
/// occupy no position and never take a slot.
///
/// With `trusted_only` ring selection this is how untrusted peers stay known (and connected)
/// without being synced with: distances `2^n` are counted among eligible peers, so nodes that
/// trust the same peers still agree on the ring. `is_eligible` and `is_bad` are each called at
/// most once per peer.
#[must_use]
pub fn select_eligible<P: Ord + Clone>(
    self_id: &P,
    peers: &[P],
    limit: usize,
    is_eligible: impl Fn(&P) -> bool,
    is_bad: impl Fn(&P) -> bool,
) -> Vec<P> {
    let eligible: Vec<P> = peers.iter().filter(|p| is_eligible(p)).cloned().collect();
    select(self_id, &eligible, limit, is_bad)
}

#[cfg(test)]
#[path = "tests/select.rs"]
mod tests;
