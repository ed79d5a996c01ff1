//! Scheduled pulls (`mule node --pull-from PATTERN`): a node that matches a pattern (a data
//! mule's peer id or name) is pulled from when it connects and again every `pull_interval`
//! while it stays around, besides (or instead of) being pushed to. Pure bookkeeping with `now`
//! passed in; the manager runs the pulls.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::trust::{Caller, Pattern};

/// Most peers remembered for scheduling.
pub const MAX_PEERS: usize = 1024;

/// Which peers to pull from, and when they were last pulled.
#[derive(Debug, Default)]
pub struct PullSchedule {
    patterns: Vec<Pattern>,
    interval: Duration,
    last: HashMap<PeerId, Instant>,
    running: HashSet<PeerId>,
}

impl PullSchedule {
    /// Pulls from callers matching `patterns`, at most every `interval`.
    pub fn new(patterns: Vec<Pattern>, interval: Duration) -> Self {
        Self {
            patterns,
            interval,
            ..Self::default()
        }
    }

    /// Whether `caller` is a source at all.
    pub fn wants(&self, caller: &Caller) -> bool {
        self.patterns.iter().any(|p| p.matches(caller))
    }

    /// Whether a pull from `caller` should start at `now`; if so, it is marked running.
    pub fn start(&mut self, caller: &Caller, now: Instant) -> bool {
        let peer = caller.peer;
        if !self.wants(caller) || self.running.contains(&peer) {
            return false;
        }
        let due = self
            .last
            .get(&peer)
            .is_none_or(|at| now.saturating_duration_since(*at) >= self.interval);
        if !due || (self.last.len() >= MAX_PEERS && !self.last.contains_key(&peer)) {
            return false;
        }
        self.running.insert(peer);
        self.last.insert(peer, now);
        true
    }

    /// A pull from `peer` ended at `now` (the interval counts from its end).
    pub fn done(&mut self, peer: &PeerId, now: Instant) {
        self.running.remove(peer);
        self.last.insert(*peer, now);
    }

    /// Peers pulled from before, to pull again when due.
    pub fn known(&self) -> Vec<PeerId> {
        self.last.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn pulls_when_due_and_one_at_a_time() -> anyhow::Result<()> {
        let mule = Identity::from_seed([5; 32]).peer_id();
        let other = Identity::from_seed([6; 32]).peer_id();
        let t0 = Instant::now();
        let mut s = PullSchedule::new(vec![mule.to_string().parse()?], Duration::from_secs(60));
        let caller = Caller::nameless(mule);
        assert!(!s.start(&Caller::nameless(other), t0), "not a source");
        assert!(s.start(&caller, t0));
        assert!(!s.start(&caller, t0), "already running");
        s.done(&mule, t0 + Duration::from_secs(5));
        assert!(
            !s.start(&caller, t0 + Duration::from_secs(64)),
            "not due yet"
        );
        assert!(s.start(&caller, t0 + Duration::from_secs(65)));
        assert_eq!(s.known(), vec![mule]);
        let named = PullSchedule::new(vec!["mules".parse()?], Duration::from_secs(1));
        let mut with_name = Caller::nameless(other);
        assert!(!named.wants(&with_name));
        with_name.names.push("mules/boat".parse()?);
        assert!(named.wants(&with_name));
        Ok(())
    }
}
