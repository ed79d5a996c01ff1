//! Transfers in flight, in both directions, for `mule status`: bytes done, rate and ETA of
//! every multi-chunk message being received or pushed. Pure bookkeeping; time is passed in.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::message::MessageId;

/// Most transfers tracked (the inbound side caps open transfers well below this).
pub const MAX_TRACKED: usize = 1024;

/// Which way the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// A peer pushes to us.
    In,
    /// We push to a peer.
    Out,
}

/// One transfer as `mule status` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransferView {
    /// The message (hex id).
    pub id: String,
    /// The other side.
    pub peer: String,
    /// Which way.
    pub direction: Direction,
    /// Bytes done (held by the receiver).
    pub done: u64,
    /// The message's length.
    pub length: u64,
    /// Bytes per second since the transfer (re)started here.
    pub rate: f64,
    /// Seconds left at that rate, if it is moving.
    pub eta_s: Option<f64>,
}

#[derive(Debug)]
struct Track {
    length: u64,
    done: u64,
    start_done: u64,
    started: Instant,
}

/// The transfers in flight.
#[derive(Debug, Default)]
pub struct Transfers {
    map: HashMap<(MessageId, PeerId, Direction), Track>,
}

impl Transfers {
    /// Records progress (`done` of `length` bytes), starting the track if it is new.
    pub fn progress(
        &mut self,
        key: (MessageId, PeerId, Direction),
        done: u64,
        length: u64,
        now: Instant,
    ) {
        if self.map.len() >= MAX_TRACKED && !self.map.contains_key(&key) {
            return;
        }
        let track = self.map.entry(key).or_insert(Track {
            length,
            done,
            start_done: done,
            started: now,
        });
        track.done = done.max(track.done).min(length);
    }

    /// The transfer ended (complete, failed, or closed).
    pub fn end(&mut self, key: &(MessageId, PeerId, Direction)) {
        self.map.remove(key);
    }

    /// Every transfer in flight at `now`, largest remainder first.
    pub fn snapshot(&self, now: Instant) -> Vec<TransferView> {
        let mut out: Vec<TransferView> = self
            .map
            .iter()
            .map(|((id, peer, direction), t)| {
                let secs = now.saturating_duration_since(t.started).as_secs_f64();
                let moved = t.done.saturating_sub(t.start_done) as f64;
                let rate = if secs > 0.0 { moved / secs } else { 0.0 };
                let left = t.length.saturating_sub(t.done) as f64;
                TransferView {
                    id: id.to_string(),
                    peer: peer.to_string(),
                    direction: *direction,
                    done: t.done,
                    length: t.length,
                    rate,
                    eta_s: (rate > 0.0).then(|| left / rate),
                }
            })
            .collect();
        out.sort_by_key(|v| std::cmp::Reverse(v.length.saturating_sub(v.done)));
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::identity::Identity;

    #[test]
    fn rate_and_eta_from_progress() {
        let t0 = Instant::now();
        let peer = Identity::from_seed([3; 32]).peer_id();
        let id = MessageId([1; 32]);
        let key = (id, peer, Direction::In);
        let mut t = Transfers::default();
        // Resumed at 1000 bytes: the rate counts only what moved here.
        t.progress(key, 1_000, 11_000, t0);
        let v = t.snapshot(t0);
        assert_eq!((v[0].done, v[0].rate, v[0].eta_s), (1_000, 0.0, None));
        t.progress(key, 3_000, 11_000, t0 + Duration::from_secs(2));
        let v = t.snapshot(t0 + Duration::from_secs(2));
        assert_eq!(v[0].rate, 1_000.0);
        assert_eq!(v[0].eta_s, Some(8.0));
        // Progress never goes back, nor past the length.
        t.progress(key, 2_000, 11_000, t0 + Duration::from_secs(3));
        t.progress(key, 99_999, 11_000, t0 + Duration::from_secs(3));
        assert_eq!(t.snapshot(t0 + Duration::from_secs(3))[0].done, 11_000);
        t.end(&key);
        assert!(t.snapshot(t0).is_empty());
    }
}
