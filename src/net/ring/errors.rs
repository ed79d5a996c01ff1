//! Which peers keep failing: the bad-peer bookkeeping that ring selection consults.
//!
//! Time is always an argument (`now`), so the log is deterministic and testable.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
    time::{Duration, Instant},
};

/// Errors within [`BAD_PEER_WINDOW`] at which a peer counts as bad and is skipped by
/// [`select`](super::select) unless nothing else is left.
pub const BAD_PEER_ERRORS: usize = 10;

/// How long a sync error counts against a peer. After this a peer that came back (a phone out
/// of range, a laptop that slept) gets selected again.
pub const BAD_PEER_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Error timestamps kept per peer. More than [`BAD_PEER_ERRORS`] so that a bad peer's recovery
/// time stays exact, few enough that a flood of errors costs little memory.
pub const MAX_ERRORS_PER_PEER: usize = 64;

/// Peers an [`ErrorLog`] tracks at most; beyond it the peer with the oldest last error is
/// forgotten, so hostile churn cannot grow memory without bound.
pub const MAX_ERROR_PEERS: usize = 4096;

/// Sync errors per peer, to decide which peers are bad.
///
/// A peer is bad when it caused [`BAD_PEER_ERRORS`] or more errors within the last
/// [`BAD_PEER_WINDOW`]. Selection skips bad peers so that one unreachable or misbehaving peer
/// does not eat a sync slot, and the window lets it back once it recovers. Time is passed in
/// (`now`), so the log is deterministic and testable; callers should pass non-decreasing times.
/// Memory is bounded by [`MAX_ERRORS_PER_PEER`] and [`MAX_ERROR_PEERS`].
#[derive(Debug, Clone)]
pub struct ErrorLog<P> {
    errors: HashMap<P, VecDeque<Instant>>,
}

impl<P> Default for ErrorLog<P> {
    fn default() -> Self {
        Self {
            errors: HashMap::new(),
        }
    }
}

/// Whether an error at `at` still counts at `now`. An error exactly [`BAD_PEER_WINDOW`] old
/// no longer counts; one stamped after `now` does.
fn in_window(at: Instant, now: Instant) -> bool {
    now.saturating_duration_since(at) < BAD_PEER_WINDOW
}

impl<P: Eq + Hash + Clone> ErrorLog<P> {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one error with `peer` at `now`, dropping its expired errors. If the log already
    /// tracks [`MAX_ERROR_PEERS`] peers, expired entries are pruned and, if still full, the peer
    /// whose last error is oldest is forgotten.
    pub fn record(&mut self, peer: P, now: Instant) {
        if !self.errors.contains_key(&peer) && self.errors.len() >= MAX_ERROR_PEERS {
            self.prune(now);
            if self.errors.len() >= MAX_ERROR_PEERS {
                self.evict_stalest();
            }
        }
        let log = self.errors.entry(peer).or_default();
        log.retain(|&at| in_window(at, now));
        log.push_back(now);
        while log.len() > MAX_ERRORS_PER_PEER {
            log.pop_front();
        }
    }

    /// Number of `peer`'s errors that still count at `now` (at most [`MAX_ERRORS_PER_PEER`]).
    #[must_use]
    pub fn recent_errors(&self, peer: &P, now: Instant) -> usize {
        self.errors.get(peer).map_or(0, |log| {
            log.iter().filter(|&&at| in_window(at, now)).count()
        })
    }

    /// Whether `peer` is bad at `now`: [`BAD_PEER_ERRORS`] or more errors within the last
    /// [`BAD_PEER_WINDOW`].
    #[must_use]
    pub fn is_bad(&self, peer: &P, now: Instant) -> bool {
        self.recent_errors(peer, now) >= BAD_PEER_ERRORS
    }

    /// When `peer`, bad at `now`, stops being bad if no further errors occur: the moment its
    /// [`BAD_PEER_ERRORS`]-th most recent error leaves the window. `None` if it is not bad.
    /// Lets a driver wake up exactly when a re-selection could change.
    #[must_use]
    pub fn bad_until(&self, peer: &P, now: Instant) -> Option<Instant> {
        let log = self.errors.get(peer)?;
        let mut recent: Vec<Instant> = log
            .iter()
            .copied()
            .filter(|&at| in_window(at, now))
            .collect();
        let count = recent.len();
        if count < BAD_PEER_ERRORS {
            return None;
        }
        recent.sort_unstable();
        recent
            .get(count - BAD_PEER_ERRORS)
            .and_then(|at| at.checked_add(BAD_PEER_WINDOW))
    }

    /// Drops every error that no longer counts at `now`, and peers left without errors.
    pub fn prune(&mut self, now: Instant) {
        self.errors.retain(|_, log| {
            log.retain(|&at| in_window(at, now));
            !log.is_empty()
        });
    }

    /// Number of peers with recorded errors (expired ones included until pruned).
    #[must_use]
    pub fn tracked_peers(&self) -> usize {
        self.errors.len()
    }

    /// Forgets the peer whose most recent error is oldest.
    fn evict_stalest(&mut self) {
        let stalest = self
            .errors
            .iter()
            .min_by_key(|(_, log)| log.iter().max().copied())
            .map(|(peer, _)| peer.clone());
        if let Some(peer) = stalest {
            self.errors.remove(&peer);
        }
    }
}

#[cfg(test)]
#[path = "tests/errors.rs"]
mod tests;
