//! The pure selection rule: which of the peers on a sorted ring this node syncs with.
//!
//! Nothing here knows libp2p, clocks or I/O: [`select`] is a function of its arguments, so every
//! node that knows the same peers computes the same overlay, and the rule can be simulated at
//! scale in tests.

/// Where a node's ring neighbours sit: the distances, in ring positions, at which
/// [`select`] starts looking for each of its `limit` peers.
///
/// With `N` ring members a message crosses the overlay in at most about `N / 2^(L-1)` hops
/// with [`Fingers::PowersOfTwo`] (fine for tens of nodes, 127 hops at N = 1000, L = 4), and in
/// at most about `L * N^(1/L)` with [`Fingers::Scaled`] (17 hops at N = 1000, L = 4), whose
/// distances spread geometrically over the whole ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fingers {
    /// Distances 1, 2, 4, ..., 2^(L-1): the original design's neighbours.
    #[default]
    PowersOfTwo,
    /// Distances `round(N^(i/L))` for `i` in `0..L`: 1, then geometric steps up to about
    /// `N^((L-1)/L)`.
    Scaled,
}

impl Fingers {
    /// The distance of round `i` (of `limit`) on a ring of `n >= 2` members, in `1..n`.
    fn distance(self, i: usize, limit: usize, n: usize) -> usize {
        let d = match self {
            // 2^i mod n, doubled without overflow.
            Fingers::PowersOfTwo => (0..i).fold(1 % n, |d, _| add_mod(d, d, n)),
            Fingers::Scaled => {
                // f64 is exact for these sizes (n <= 2^53) but for the last rounding bit of
                // `powf`; nodes that disagree on it pick one neighbour differently, which
                // costs nothing but overlay symmetry.
                let exponent = i as f64 / limit.max(1) as f64;
                ((n as f64).powf(exponent).round() as usize) % n
            }
        };
        d.max(1)
    }
}

impl std::str::FromStr for Fingers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "powers" | "powers-of-two" => Ok(Fingers::PowersOfTwo),
            "scaled" => Ok(Fingers::Scaled),
            other => Err(format!(
                "unknown fingers {other:?}: expected \"powers\" or \"scaled\""
            )),
        }
    }
}

impl std::fmt::Display for Fingers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fingers::PowersOfTwo => "powers",
            Fingers::Scaled => "scaled",
        })
    }
}

/// Ring selection: picks at most `limit` peers for `self_id` to sync with.
///
/// The ring is `peers` plus `self_id`, sorted by `Ord` and deduplicated (so `peers` may or may
/// not contain `self_id`, and may contain duplicates or come in any order). With `N` ring
/// members and `self_id` at position `i`:
///
/// - `limit == 0` (no limit), or at most `limit` other peers: all other peers, in ring order
///   starting after `self_id`.
/// - otherwise, for round `r` in `0..limit`: start at `(i + d_r) mod N`, where `d_r` is the
///   round's distance under `fingers` (`2^r` for [`Fingers::PowersOfTwo`]), and walk forward to
///   the first peer that is neither `self_id`, nor already picked, nor `is_bad`. If every
///   remaining peer is bad, take the first remaining one from that start anyway: a bad peer
///   beats no peer.
///
/// The result is in selection order (round 0 first) and depends only on the arguments.
/// `is_bad` is called at most once per ring member.
#[must_use]
pub fn select<P: Ord + Clone>(
    self_id: &P,
    peers: &[P],
    limit: usize,
    fingers: Fingers,
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
    for round in 0..limit {
        let start = add_mod(me, fingers.distance(round, limit, n), n);
        let walk = |k: usize| add_mod(start, k, n);
        let good = (0..n).map(walk).find(|&j| !taken[j] && !bad[j]);
        let Some(j) = good.or_else(|| (0..n).map(walk).find(|&j| !taken[j])) else {
            break;
        };
        taken[j] = true;
        picked.push(ring[j].clone());
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
    fingers: Fingers,
    is_eligible: impl Fn(&P) -> bool,
    is_bad: impl Fn(&P) -> bool,
) -> Vec<P> {
    let eligible: Vec<P> = peers.iter().filter(|p| is_eligible(p)).cloned().collect();
    select(self_id, &eligible, limit, fingers, is_bad)
}

#[cfg(test)]
#[path = "tests/select.rs"]
mod tests;
