//! Cool-downs for peers that keep asking after being told to slow down.
//!
//! A `rate-limit-exceeded` answer is cheap, but not free: every refused request still costs the
//! receiver a stream, a decode and an answer, and a peer that ignores the answers and goes on at
//! full speed takes CPU from everyone else. A mule sender stops its pass at the first such
//! answer and waits at least half a second (see `sync::task`), so an honest peer collects at
//! most one window of requests (64) per half second, 1,280 in 10 s. A peer that collects [`Policy::strikes`] refusals within
//! [`Policy::window`] is not honest (or is broken): the node disconnects it and refuses its
//! connections for a cool-down, [`Policy::first`] at first and doubling for a peer that does it
//! again within [`Policy::memory`], up to [`Policy::max`] (`protocols/errors.md`,
//! "rate-limit-exceeded").
//!
//! A pure state machine: the caller passes `now`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// When a peer is cooled down, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Refusals within [`Policy::window`] that trigger a cool-down (0: never).
    pub strikes: u32,
    /// The span strikes are counted in.
    pub window: Duration,
    /// The first cool-down of a peer.
    pub first: Duration,
    /// The longest cool-down.
    pub max: Duration,
    /// How long a peer's past cool-downs count towards doubling the next one.
    pub memory: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            strikes: 2_000,
            window: Duration::from_secs(10),
            first: Duration::from_secs(60),
            max: Duration::from_secs(15 * 60),
            memory: Duration::from_secs(60 * 60),
        }
    }
}

/// One peer's record.
#[derive(Clone, Copy, Debug)]
struct Record {
    /// Strikes in the window that started at `since`.
    strikes: u32,
    since: Instant,
    /// Cool-downs so far (within `memory` of the last one), and when the last one began.
    cooled: u32,
    last_cooled: Option<Instant>,
}

/// The strike records of every peer that was refused for its rate recently.
#[derive(Debug)]
pub struct Cooldowns {
    policy: Policy,
    peers: HashMap<PeerId, Record>,
}

impl Cooldowns {
    /// Most peers tracked; records with nothing to remember are dropped beyond this.
    pub const MAX_PEERS: usize = 4096;

    /// Records kept under `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            peers: HashMap::new(),
        }
    }

    /// Counts one rate-limit refusal of `peer` at `now`. Returns the cool-down to impose when
    /// this strike is one too many.
    pub fn strike(&mut self, peer: PeerId, now: Instant) -> Option<Duration> {
        let policy = self.policy;
        if policy.strikes == 0 {
            return None;
        }
        if self.peers.len() >= Self::MAX_PEERS && !self.peers.contains_key(&peer) {
            self.peers.retain(|_, r| !r.forgettable(&policy, now));
        }
        let record = self.peers.entry(peer).or_insert(Record {
            strikes: 0,
            since: now,
            cooled: 0,
            last_cooled: None,
        });
        if now.saturating_duration_since(record.since) >= policy.window {
            record.strikes = 0;
            record.since = now;
        }
        record.strikes += 1;
        if record.strikes < policy.strikes {
            return None;
        }
        let remembered = record
            .last_cooled
            .is_some_and(|at| now.saturating_duration_since(at) < policy.memory);
        record.cooled = if remembered { record.cooled + 1 } else { 1 };
        record.last_cooled = Some(now);
        record.strikes = 0;
        record.since = now;
        let doubling = 1u32.checked_shl(record.cooled - 1).unwrap_or(u32::MAX);
        Some(policy.first.saturating_mul(doubling).min(policy.max))
    }

    /// Peers tracked now.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is tracked.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

impl Record {
    /// Nothing left to remember: its window is over and no cool-down counts any more.
    fn forgettable(&self, policy: &Policy, now: Instant) -> bool {
        now.saturating_duration_since(self.since) >= policy.window
            && self
                .last_cooled
                .is_none_or(|at| now.saturating_duration_since(at) >= policy.memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            strikes: 5,
            window: Duration::from_secs(10),
            first: Duration::from_secs(60),
            max: Duration::from_secs(200),
            memory: Duration::from_secs(3600),
        }
    }

    /// Strikes `n` times at `at`; returns the last answer.
    fn strikes(c: &mut Cooldowns, peer: PeerId, n: u32, at: Instant) -> Option<Duration> {
        (0..n).map(|_| c.strike(peer, at)).last().flatten()
    }

    #[test]
    fn the_strike_that_reaches_the_limit_cools_the_peer_down() {
        let mut c = Cooldowns::new(policy());
        let (p, t) = (PeerId::random(), Instant::now());
        for _ in 0..4 {
            assert_eq!(c.strike(p, t), None);
        }
        assert_eq!(c.strike(p, t), Some(Duration::from_secs(60)));
        // Counting starts again after a cool-down.
        assert_eq!(strikes(&mut c, p, 4, t), None);
    }

    #[test]
    fn strikes_spread_over_more_than_a_window_never_add_up() {
        let mut c = Cooldowns::new(policy());
        let (p, t) = (PeerId::random(), Instant::now());
        // Four per window, forever: an honest sender backing off.
        for w in 0..100u64 {
            let at = t + Duration::from_secs(10 * w);
            assert_eq!(strikes(&mut c, p, 4, at), None, "window {w}");
        }
    }

    #[test]
    fn repeat_offenders_wait_twice_as_long_up_to_the_max_and_are_forgiven_later() {
        let mut c = Cooldowns::new(policy());
        let (p, t) = (PeerId::random(), Instant::now());
        let at = |s: u64| t + Duration::from_secs(s);
        assert_eq!(strikes(&mut c, p, 5, at(0)), Some(Duration::from_secs(60)));
        assert_eq!(
            strikes(&mut c, p, 5, at(70)),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            strikes(&mut c, p, 5, at(200)),
            Some(Duration::from_secs(200))
        );
        assert_eq!(
            strikes(&mut c, p, 5, at(500)),
            Some(Duration::from_secs(200))
        );
        // An hour after its last cool-down it starts from the first length again.
        assert_eq!(
            strikes(&mut c, p, 5, at(500 + 3600)),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn peers_are_counted_apart() {
        let mut c = Cooldowns::new(policy());
        let (a, b, t) = (PeerId::random(), PeerId::random(), Instant::now());
        assert_eq!(strikes(&mut c, a, 4, t), None);
        assert_eq!(strikes(&mut c, b, 4, t), None);
        assert_eq!(c.strike(a, t), Some(Duration::from_secs(60)));
        assert_eq!(c.strike(b, t), Some(Duration::from_secs(60)));
    }

    #[test]
    fn zero_strikes_turns_cool_downs_off() {
        let mut c = Cooldowns::new(Policy {
            strikes: 0,
            ..policy()
        });
        let p = PeerId::random();
        assert_eq!(strikes(&mut c, p, 10_000, Instant::now()), None);
        assert!(c.is_empty());
    }

    #[test]
    fn the_table_stays_bounded_under_many_peers() {
        let mut c = Cooldowns::new(policy());
        let t = Instant::now();
        for i in 0..(Cooldowns::MAX_PEERS as u64 * 3) {
            // Each peer strikes once; old records are forgettable a window later.
            c.strike(PeerId::random(), t + Duration::from_secs(11 * i));
        }
        assert!(c.len() <= Cooldowns::MAX_PEERS);
    }
}
