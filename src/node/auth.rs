//! The one place where access is decided: every inbound request, every outgoing push and every
//! message's original sender pass through [`Authoriser`].
//!
//! Today the policy is a block list plus a per-peer token bucket on inbound requests; access
//! lists with names from certificate chains plug in here later without touching the protocol
//! handlers. The rate limiter is a pure state machine taking `now`, tested without clocks.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use libp2p::PeerId;

use crate::identity;
use crate::message::Header;

/// Whose access is decided: the peer we talk to, or the original sender of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// The connected peer (noise proved its key).
    Peer(PeerId),
    /// A message's original sender (its signature proved the key).
    Sender(PeerId),
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Peer(p) => write!(f, "peer {p}"),
            Who::Sender(p) => write!(f, "sender {p}"),
        }
    }
}

/// Why access was refused; becomes `not-authorized` or `rate-limit-exceeded` on the wire.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The peer or sender is blocked.
    #[error("{who} is not authorized")]
    NotAuthorized {
        /// Who was refused.
        who: Who,
    },
    /// The peer is over its request rate.
    #[error("{who} is over its rate limit of {rate} requests per second")]
    RateLimited {
        /// Who was refused.
        who: Who,
        /// The rate it is allowed.
        rate: f64,
    },
}

/// Access settings.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Peers (and senders) refused everything.
    pub blocked: HashSet<PeerId>,
    /// Sustained inbound requests per second per peer.
    pub requests_per_second: f64,
    /// Requests a peer may make in a burst above the sustained rate.
    pub burst: u32,
}

impl Policy {
    /// Default sustained rate: generous enough for a full push window of small messages.
    pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 5_000.0;
    /// Default burst.
    pub const DEFAULT_BURST: u32 = 10_000;
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            blocked: HashSet::new(),
            requests_per_second: Self::DEFAULT_REQUESTS_PER_SECOND,
            burst: Self::DEFAULT_BURST,
        }
    }
}

/// A token bucket per key: `allows(key, now)` spends a token if one is there.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: HashMap<K, (f64, Instant)>,
}

impl<K: std::hash::Hash + Eq + Clone> RateLimiter<K> {
    /// Most keys tracked; idle full buckets are dropped beyond this.
    pub const MAX_KEYS: usize = 4096;

    /// `rate` tokens per second, up to `burst` saved.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate: rate.max(0.0),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Spends one token of `key` at `now`, if it has one.
    pub fn allows(&mut self, key: &K, now: Instant) -> bool {
        if self.buckets.len() >= Self::MAX_KEYS && !self.buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + rate * now.saturating_duration_since(*at).as_secs_f64() < burst
            });
        }
        let (tokens, at) = self.buckets.entry(key.clone()).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*at);
        *tokens = (*tokens + self.rate * elapsed.as_secs_f64()).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Access policy of a node.
#[derive(Debug)]
pub struct Authoriser {
    policy: Policy,
    limiter: Mutex<RateLimiter<PeerId>>,
}

impl Default for Authoriser {
    fn default() -> Self {
        Self::new(Policy::default())
    }
}

impl Authoriser {
    /// A policy enforcing `policy`.
    pub fn new(policy: Policy) -> Self {
        let limiter = RateLimiter::new(policy.requests_per_second, policy.burst);
        Self {
            policy,
            limiter: Mutex::new(limiter),
        }
    }

    /// May `peer` make a request of us now?
    pub fn inbound(&self, peer: &PeerId) -> Result<(), Denied> {
        self.inbound_at(peer, Instant::now())
    }

    /// [`Self::inbound`] at a given time.
    pub fn inbound_at(&self, peer: &PeerId, now: Instant) -> Result<(), Denied> {
        let who = Who::Peer(*peer);
        if self.policy.blocked.contains(peer) {
            return Err(Denied::NotAuthorized { who });
        }
        let mut limiter = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        if !limiter.allows(peer, now) {
            return Err(Denied::RateLimited {
                who,
                rate: self.policy.requests_per_second,
            });
        }
        Ok(())
    }

    /// May we carry messages from this header's original sender (checked on receipt and send)?
    pub fn sender(&self, header: &Header) -> Result<(), Denied> {
        match identity::peer_id_of(&header.sender) {
            Some(sender) if self.policy.blocked.contains(&sender) => Err(Denied::NotAuthorized {
                who: Who::Sender(sender),
            }),
            _ => Ok(()),
        }
    }

    /// May we push this message to `peer`?
    pub fn push_to(&self, peer: &PeerId, header: &Header) -> Result<(), Denied> {
        if self.policy.blocked.contains(peer) {
            return Err(Denied::NotAuthorized {
                who: Who::Peer(*peer),
            });
        }
        self.sender(header)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn token_bucket_spends_and_refills() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(10.0, 3);
        assert!(rl.allows(&1, t0));
        assert!(rl.allows(&1, t0));
        assert!(rl.allows(&1, t0));
        assert!(!rl.allows(&1, t0));
        // Another key has its own bucket.
        assert!(rl.allows(&2, t0));
        // 100 ms at 10/s gives one token back.
        assert!(rl.allows(&1, t0 + Duration::from_millis(100)));
        assert!(!rl.allows(&1, t0 + Duration::from_millis(100)));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..5).filter(|_| rl.allows(&1, later)).count(), 3);
    }

    #[test]
    fn key_table_is_bounded() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(1.0, 1);
        for k in 0..(RateLimiter::<u32>::MAX_KEYS as u32 * 2) {
            rl.allows(&k, t0 + Duration::from_secs(u64::from(k)));
        }
        assert!(rl.buckets.len() <= RateLimiter::<u32>::MAX_KEYS);
    }

    #[test]
    fn blocked_peers_and_senders_are_refused() {
        let bad = crate::identity::Identity::from_seed([9; 32]);
        let mut policy = Policy::default();
        policy.blocked.insert(bad.peer_id());
        let auth = Authoriser::new(policy);
        assert!(matches!(
            auth.inbound(&bad.peer_id()),
            Err(Denied::NotAuthorized { .. })
        ));
        let header = crate::message::Draft {
            recipient: "*".into(),
            created_ms: 0,
            lifespan_ms: 1,
            chains: vec![],
        }
        .sign(&bad, b"x")
        .ok();
        assert!(header.is_some_and(|h| auth.sender(&h).is_err()));
        let good = crate::identity::Identity::from_seed([8; 32]).peer_id();
        assert_eq!(auth.inbound(&good), Ok(()));
    }
}
