//! Counters a node keeps about its traffic, for `mule status` and the mesh test.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::Serialize;

/// Live counters, shared by every task of a node.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages this node handed to a peer that accepted them (complete).
    pub messages_sent: AtomicU64,
    /// Messages this node received complete from peers.
    pub messages_received: AtomicU64,
    /// Content bytes sent in push chunks.
    pub bytes_sent: AtomicU64,
    /// Content bytes accepted from push chunks.
    pub bytes_received: AtomicU64,
    /// Content transfers this node accepted (the first chunk of a message from a peer).
    pub content_transfers: AtomicU64,
    /// Pushes of messages this node already held (answered `already-seen`).
    pub duplicates: AtomicU64,
    /// Peers cut off for a cool-down because they kept asking above their rate.
    pub peers_cooled_down: AtomicU64,
    rejections: Mutex<BTreeMap<&'static str, u64>>,
}

/// A copy of the counters at one instant.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Counters::messages_sent`].
    pub messages_sent: u64,
    /// See [`Counters::messages_received`].
    pub messages_received: u64,
    /// See [`Counters::bytes_sent`].
    pub bytes_sent: u64,
    /// See [`Counters::bytes_received`].
    pub bytes_received: u64,
    /// See [`Counters::content_transfers`].
    pub content_transfers: u64,
    /// See [`Counters::duplicates`].
    pub duplicates: u64,
    /// See [`Counters::peers_cooled_down`] (absent from older nodes' answers).
    #[serde(default)]
    pub peers_cooled_down: u64,
    /// Requests this node refused, by wire error code.
    pub rejections: BTreeMap<String, u64>,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Counts a refused request by its wire code name.
    pub fn reject(&self, code: &'static str) {
        let mut map = self.rejections.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(code).or_default() += 1;
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> Snapshot {
        let rejections = self
            .rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        Snapshot {
            messages_sent: self.messages_sent.load(Relaxed),
            messages_received: self.messages_received.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            content_transfers: self.content_transfers.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            peers_cooled_down: self.peers_cooled_down.load(Relaxed),
            rejections,
        }
    }
}
