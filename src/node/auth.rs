//! The one place where access is decided: every inbound request, every outgoing push and every
//! message's original sender pass through [`Authoriser`].
//!
//! Three layers, in order: the block list (`--block`), a per-peer token bucket on inbound
//! requests (a flood guard, whatever the names), and the access lists of [`crate::trust`]
//! (`--acl`), which judge callers by the names they proved: a peer by the chains it presented
//! in the names exchange ([`PeerNames`]), a sender by the chains in its signed header. The rate
//! limiter is a pure state machine taking `now`, tested without clocks.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use libp2p::PeerId;

use super::cooldown::{self, Cooldowns};
use super::peers::PeerNames;
use crate::identity;
use crate::message::{now_ms, Header};
use crate::trust::{self, AccessPolicy, Caller, ListKind, Roots, VerifiedName};

/// Whose access is decided: the peer we talk to, or the original sender of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// The connected peer (noise proved its key).
    Peer(PeerId),
    /// A message's original sender (its signature proved the key).
    Sender(PeerId),
    /// A sender whose key is not a valid ed25519 key (header validation refuses it first).
    InvalidSender,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Peer(p) => write!(f, "peer {p}"),
            Who::Sender(p) => write!(f, "sender {p}"),
            Who::InvalidSender => write!(f, "a sender with an invalid key"),
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
    /// An access list refused (no entry admits the caller, or its entry is over its rate).
    #[error(transparent)]
    Acl(#[from] trust::Denied),
}

impl Denied {
    /// Whether retrying later may succeed (a rate limit), as opposed to a refusal that stands.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Denied::RateLimited { .. } | Denied::Acl(trust::Denied::RateLimited { .. })
        )
    }
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
    /// When a peer that ignores rate-limit answers is disconnected and refused for a while.
    pub cooldown: cooldown::Policy,
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
            cooldown: cooldown::Policy::default(),
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
    cooldowns: Mutex<Cooldowns>,
    acl: Mutex<AccessPolicy>,
    roots: Roots,
    peers: Mutex<PeerNames>,
    /// Whether the `sender` list looks at names at all (see [`trust::AccessList::names_matter`]).
    sender_names_matter: bool,
}

impl Authoriser {
    /// A policy enforcing the block list and flood guard of `policy`, the access lists of
    /// `acl`, with names verified against `roots`.
    pub fn new(policy: Policy, acl: AccessPolicy, roots: Roots) -> Self {
        let limiter = RateLimiter::new(policy.requests_per_second, policy.burst);
        let sender_names_matter = acl.list(ListKind::Sender).names_matter();
        let cooldowns = Mutex::new(Cooldowns::new(policy.cooldown));
        Self {
            policy,
            limiter: Mutex::new(limiter),
            cooldowns,
            sender_names_matter,
            acl: Mutex::new(acl),
            roots,
            peers: Mutex::new(PeerNames::default()),
        }
    }

    /// Everyone allowed (but `policy`'s block list and flood guard), no roots: for tests.
    pub fn open(policy: Policy, own: PeerId) -> Self {
        Self::new(policy, AccessPolicy::open(own), Roots::default())
    }

    fn acl(&self) -> std::sync::MutexGuard<'_, AccessPolicy> {
        self.acl.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, PeerNames> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every peer that proved names in the names exchange, with the names that hold at
    /// `now_ms`: the keys a message to a name is encrypted for.
    pub fn name_holders(&self, now_ms: u64) -> Vec<Caller> {
        let peers = self.peers();
        peers
            .peers()
            .map(|p| peers.caller(p, now_ms))
            .filter(|c| !c.names.is_empty())
            .collect()
    }

    /// The roots names are verified against.
    pub fn roots(&self) -> &Roots {
        &self.roots
    }

    /// May `peer` make a request of us now?
    pub fn inbound(&self, peer: &PeerId) -> Result<(), Denied> {
        self.inbound_at(peer, Instant::now(), now_ms())
    }

    /// [`Self::inbound`] at a given time: block list, flood guard, then the `in` list.
    pub fn inbound_at(&self, peer: &PeerId, now: Instant, now_ms: u64) -> Result<(), Denied> {
        self.not_blocked(peer)?;
        self.flood_guard(peer, now)?;
        let caller = self.peers().caller(peer, now_ms);
        Ok(self.acl().check_in(&caller, now)?)
    }

    /// Counts a rate-limit refusal of `peer` (a transient [`Denied`] from [`Self::inbound`]).
    /// Returns how long to cut the peer off when it keeps going regardless; see [`cooldown`].
    pub fn strike(&self, peer: &PeerId, now: Instant) -> Option<std::time::Duration> {
        let mut cooldowns = self.cooldowns.lock().unwrap_or_else(|p| p.into_inner());
        cooldowns.strike(*peer, now)
    }

    /// The block list only: for the names exchange, which every other peer may use (it is how
    /// a caller proves the names the access lists judge). It happens once per connection, is
    /// bounded like every inbound request by the node's inbound capacity, and does not spend
    /// the caller's request rate.
    pub fn not_blocked(&self, peer: &PeerId) -> Result<(), Denied> {
        if self.policy.blocked.contains(peer) {
            return Err(Denied::NotAuthorized {
                who: Who::Peer(*peer),
            });
        }
        Ok(())
    }

    /// The per-peer token bucket: a flood guard whatever the caller's names.
    fn flood_guard(&self, peer: &PeerId, now: Instant) -> Result<(), Denied> {
        let who = Who::Peer(*peer);
        let mut limiter = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        if !limiter.allows(peer, now) {
            return Err(Denied::RateLimited {
                who,
                rate: self.policy.requests_per_second,
            });
        }
        Ok(())
    }

    /// The original sender of `header` as a caller: its key and the names its header's
    /// chains prove at `now_ms` (chains that fail prove nothing).
    ///
    /// A name whose chain carries a `max-message-size` caveat smaller than the message does not
    /// count for it: the issuer allowed that name only smaller messages.
    pub fn sender_of(&self, header: &Header, now_ms: u64) -> Option<Caller> {
        let peer = identity::peer_id_of(&header.sender)?;
        let names = trust::names_of(&header.sender, &header.chains, &self.roots, now_ms);
        Some(Caller {
            peer,
            names: names
                .verified
                .into_iter()
                .filter(|v| {
                    v.restrictions
                        .max_message_size
                        .is_none_or(|max| header.length <= max)
                })
                .map(|v| v.name)
                .collect(),
        })
    }

    /// May we take a message from this header's original sender? Counts against the `sender`
    /// list's rates (checked once per incoming message).
    pub fn sender(&self, header: &Header) -> Result<(), Denied> {
        let caller = self.blocked_sender(header)?;
        Ok(self.acl().check_sender(&caller, Instant::now())?)
    }

    /// The sender as the `sender` list judges it, refused if blocked. Its chains are verified
    /// only when names can change the list's decision (signature checks cost ~50 µs each, and
    /// this runs for every message offered to every peer).
    fn blocked_sender(&self, header: &Header) -> Result<Caller, Denied> {
        let invalid = Denied::NotAuthorized {
            who: Who::InvalidSender,
        };
        let caller = if self.sender_names_matter {
            self.sender_of(header, now_ms()).ok_or(invalid)?
        } else {
            Caller::nameless(identity::peer_id_of(&header.sender).ok_or(invalid)?)
        };
        if self.policy.blocked.contains(&caller.peer) {
            return Err(Denied::NotAuthorized {
                who: Who::Sender(caller.peer),
            });
        }
        Ok(caller)
    }

    /// May we push this message to `peer`? The peer must be trusted (`out` list) and the
    /// message's sender admitted (`sender` list); neither spends a rate.
    pub fn push_to(&self, peer: &PeerId, header: &Header) -> Result<(), Denied> {
        if !self.trusts(peer, now_ms()) {
            return Err(Denied::NotAuthorized {
                who: Who::Peer(*peer),
            });
        }
        // Chains are verified before the access lists are locked: signature checks are slow,
        // and every request and offer of the node waits on that lock.
        let sender = self.blocked_sender(header)?;
        if !self.acl().list(ListKind::Sender).would_allow(&sender) {
            return Err(Denied::NotAuthorized {
                who: Who::Sender(sender.peer),
            });
        }
        Ok(())
    }

    /// Spends one push request towards `peer` from its `out` list entry's rate (a data mule
    /// may cap what it sends to each group of peers).
    pub fn push_request(&self, peer: &PeerId, now: Instant) -> Result<(), Denied> {
        let caller = self.peers().caller(peer, now_ms());
        Ok(self.acl().check_out(&caller, now)?)
    }

    /// Whether `peer` is trusted at `now_ms` (the `out` list admits it): only trusted peers
    /// take ring slots and get messages pushed.
    pub fn trusts(&self, peer: &PeerId, now_ms: u64) -> bool {
        if self.policy.blocked.contains(peer) {
            return false;
        }
        let caller = self.peers().caller(peer, now_ms);
        self.acl().would_allow_out(&caller)
    }

    /// Whether the `out` list admits everyone (then ring selection need not wait for names).
    pub fn trusts_everyone(&self) -> bool {
        self.policy.blocked.is_empty() && self.acl().is_open_out()
    }

    /// Records the names `peer` proved.
    pub fn learn(&self, peer: PeerId, names: Vec<VerifiedName>) {
        self.peers().set(peer, names);
    }

    /// Forgets what `peer` proved (it disconnected).
    pub fn forget(&self, peer: &PeerId) {
        self.peers().remove(peer);
    }

    /// `peer` as the access lists see it at `now_ms`.
    pub fn caller(&self, peer: &PeerId, now_ms: u64) -> Caller {
        self.peers().caller(peer, now_ms)
    }

    /// Peers whose names are on record.
    pub fn named_peers(&self) -> Vec<PeerId> {
        self.peers().peers().copied().collect()
    }

    /// Peers whose trust changed since last asked (names proved, expired, or forgotten), to
    /// tell the network's ring selection.
    pub fn trust_changes(&self, peers: &[PeerId], now_ms: u64) -> Vec<(PeerId, bool)> {
        peers
            .iter()
            .filter_map(|p| {
                let trusted = self.trusts(p, now_ms);
                self.peers()
                    .set_trusted(*p, trusted)
                    .then_some((*p, trusted))
            })
            .collect()
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
    fn a_size_caveat_limits_what_a_name_may_send() -> anyhow::Result<()> {
        use crate::trust::{Grant, Restrictions};
        let root = crate::identity::Identity::from_seed([20; 32]);
        let sender = crate::identity::Identity::from_seed([21; 32]);
        let me = crate::identity::Identity::from_seed([22; 32]);
        let now = crate::message::now_ms();
        let chain = trust::issue(
            &root,
            Grant {
                subject: sender.public_key(),
                name: "sensor".parse()?,
                not_before_ms: now - 60_000,
                not_after_ms: now + 3_600_000,
                restrictions: Restrictions {
                    max_message_size: Some(10),
                },
            },
            &[],
        )?;
        let mut roots = Roots::default();
        roots.insert("fleet".parse()?, root.public_key())?;
        let acl = AccessPolicy::from_toml(
            std::path::Path::new("acl.toml"),
            "[[sender]]\nallow = [\"fleet\"]\n",
            me.peer_id(),
        )?;
        let auth = Authoriser::new(Policy::default(), acl, roots);
        let signed = |content: &[u8]| {
            crate::message::Draft {
                recipient: "*".into(),
                created_ms: now,
                lifespan_ms: 60_000,
                chains: vec![chain.clone()],
            }
            .sign(&sender, content)
        };
        assert_eq!(auth.sender(&signed(b"0123456789")?), Ok(()));
        assert!(matches!(
            auth.sender(&signed(b"0123456789+")?),
            Err(Denied::Acl(trust::Denied::NotAuthorized { .. }))
        ));
        Ok(())
    }

    #[test]
    fn blocked_peers_and_senders_are_refused() {
        let bad = crate::identity::Identity::from_seed([9; 32]);
        let mut policy = Policy::default();
        policy.blocked.insert(bad.peer_id());
        let auth = Authoriser::open(
            policy,
            crate::identity::Identity::from_seed([1; 32]).peer_id(),
        );
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
