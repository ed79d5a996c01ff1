//! Tests of the bad-peer log, with injected time.

use std::time::{Duration, Instant};

use super::{ErrorLog, BAD_PEER_ERRORS, BAD_PEER_WINDOW, MAX_ERRORS_PER_PEER, MAX_ERROR_PEERS};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn ten_errors_within_the_hour_make_a_peer_bad() {
    let t0 = Instant::now();
    let mut log = ErrorLog::new();
    for k in 0..9 {
        log.record(1u32, t0 + secs(k * 60));
    }
    let t = t0 + secs(9 * 60);
    assert!(!log.is_bad(&1, t));
    assert_eq!(log.bad_until(&1, t), None);
    log.record(1, t);
    assert_eq!(BAD_PEER_ERRORS, 10);
    assert_eq!(log.recent_errors(&1, t), 10);
    assert!(log.is_bad(&1, t));
    assert!(!log.is_bad(&2, t));
    // The first error leaves the window exactly one hour after it happened.
    assert_eq!(BAD_PEER_WINDOW, secs(3600));
    assert!(log.is_bad(&1, t0 + (BAD_PEER_WINDOW - secs(1))));
    assert!(!log.is_bad(&1, t0 + BAD_PEER_WINDOW));
    assert_eq!(log.bad_until(&1, t), Some(t0 + BAD_PEER_WINDOW));
    assert_eq!(log.bad_until(&1, t0 + BAD_PEER_WINDOW), None);
}

#[test]
fn errors_spread_thinner_than_ten_per_hour_never_make_a_peer_bad() {
    let t0 = Instant::now();
    let mut log = ErrorLog::new();
    for k in 0..40 {
        let at = t0 + secs(k * 7 * 60);
        log.record(1u32, at);
        assert!(!log.is_bad(&1, at), "error {k}");
        assert!(log.recent_errors(&1, at) <= 9);
    }
}

#[test]
fn bad_until_follows_the_tenth_most_recent_error() {
    let t0 = Instant::now();
    let mut log = ErrorLog::new();
    for k in 0..12 {
        log.record(1u32, t0 + secs(k));
    }
    let now = t0 + secs(11);
    assert_eq!(log.bad_until(&1, now), Some(t0 + secs(2) + BAD_PEER_WINDOW));
    assert!(log.is_bad(&1, t0 + (secs(1) + BAD_PEER_WINDOW)));
    assert!(!log.is_bad(&1, t0 + secs(2) + BAD_PEER_WINDOW));
}

#[test]
fn errors_per_peer_are_capped() {
    let t0 = Instant::now();
    let mut log = ErrorLog::new();
    for _ in 0..(MAX_ERRORS_PER_PEER * 3) {
        log.record(1u32, t0);
    }
    assert_eq!(log.recent_errors(&1, t0), MAX_ERRORS_PER_PEER);
    assert!(log.is_bad(&1, t0));
}

#[test]
fn tracked_peers_are_capped_by_evicting_the_stalest() {
    let t0 = Instant::now();
    let mut log = ErrorLog::new();
    let total = MAX_ERROR_PEERS + 10;
    for p in 0..total {
        log.record(p, t0 + Duration::from_millis(p as u64));
    }
    let end = t0 + secs(60);
    assert_eq!(log.tracked_peers(), MAX_ERROR_PEERS);
    for p in 0..10 {
        assert_eq!(log.recent_errors(&p, end), 0, "peer {p} should be evicted");
    }
    assert_eq!(log.recent_errors(&10, end), 1);
    assert_eq!(log.recent_errors(&(total - 1), end), 1);
}

#[test]
fn expired_errors_are_pruned() {
    let t0 = Instant::now();
    let mut log = ErrorLog::new();
    for p in 0..MAX_ERROR_PEERS {
        log.record(p, t0);
    }
    log.record(0, t0 + secs(1800));
    log.prune(t0 + BAD_PEER_WINDOW);
    assert_eq!(log.tracked_peers(), 1);
    assert_eq!(log.recent_errors(&0, t0 + BAD_PEER_WINDOW), 1);
    // A full log makes room by pruning before it evicts anything current.
    for p in 0..MAX_ERROR_PEERS {
        log.record(p, t0 + BAD_PEER_WINDOW);
    }
    let later = t0 + BAD_PEER_WINDOW * 2;
    log.record(MAX_ERROR_PEERS, later);
    assert_eq!(log.tracked_peers(), 1);
    assert_eq!(log.recent_errors(&MAX_ERROR_PEERS, later), 1);
}
