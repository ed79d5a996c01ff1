//! Ring selection: which peers this node syncs with.
//!
//! Syncing with every known peer costs bandwidth, connections and storage work that grow with the
//! network. Syncing with too few, or with the wrong few, splits the overlay so that messages stop
//! spreading. Ring selection bounds the number of sync partners to a limit `L` while keeping the
//! overlay connected:
//!
//! - Every node places all known peers and itself on one ring, sorted by peer id. Every node
//!   sorts the same way, so nodes that know the same peers agree on the ring.
//! - A node at position `i` on a ring of `N` picks the peers at distances `1, 2, 4, …, 2^(L-1)`
//!   (`(i + 2^n) mod N`). Distance 1 alone already links the ring into one cycle, so the overlay
//!   stays strongly connected; the longer chords are shortcuts. Every distance below `2^L` is a
//!   sum of distinct chords, so with `L >= log2 N` the diameter is at most `L` hops, i.e.
//!   O(log N); with a smaller `L` it is about `N / 2^(L-1) + L` hops.
//! - [`Fingers::Scaled`] picks distances `round(N^(i/L))` instead, spread geometrically over
//!   the whole ring: at most about `L * N^(1/L)` hops, for large meshes with a small `L`
//!   (N = 1000, L = 4: a diameter of 17 hops instead of 127).
//! - When a distance lands on a peer already picked, or on a peer that keeps failing
//!   ([`ErrorLog`]), the node walks forward to the next usable peer. Failing peers are taken only
//!   when nothing else is left.
//!
//! [`select`] is the pure rule. [`Behaviour`] applies it inside the libp2p swarm: it tracks
//! discovered peers and sync errors, reports changes as [`Event`]s, dials newly selected peers
//! and keeps their connections open. It never denies a connection: Kademlia, identify and
//! inbound pushes from peers that selected *us* must keep working. Connections to peers that are
//! not selected simply close once idle.
//!
//! # Peer order
//!
//! `PeerId`'s `Ord` is derived from its multihash: `(code, digest length, digest)`. Valid peer
//! ids use code `0x00` (identity) or `0x12` (sha2-256) and digests of at most 42 bytes, so every
//! field's varint is one byte and this order equals the order of [`PeerId::to_bytes`](libp2p::PeerId::to_bytes). The test
//!
//! # Trusted peers only
//!
//! With [`Behaviour::with_trusted_only`] the ring holds only the known peers marked trusted
//! ([`Behaviour::set_trusted`]); the others stay known and may stay connected, but never take a
//! selection slot ([`select_eligible`]).
//!
//! # Layout
//!
//! - `select`: the pure rule on sorted peer ids ([`select`], [`select_eligible`]).
//! - `errors`: which peers keep failing ([`ErrorLog`]).
//! - `behaviour`: the [`Behaviour`] that applies the rule inside the swarm.
//! - `handler`: its per-connection [`Handler`], which only keeps connections open.

mod behaviour;
mod errors;
mod handler;
mod select;

pub use behaviour::{Behaviour, Event, MAX_KNOWN_PEERS, MAX_TRUSTED_PEERS, REDIAL_INTERVAL};
pub use errors::{
    ErrorLog, BAD_PEER_ERRORS, BAD_PEER_WINDOW, MAX_ERRORS_PER_PEER, MAX_ERROR_PEERS,
};
pub use handler::Handler;
pub use select::{select, select_eligible, Fingers};

#[cfg(test)]
#[path = "tests/swarm.rs"]
mod swarm_tests;
