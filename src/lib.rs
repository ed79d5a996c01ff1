//! mule: a delay-tolerant peer-to-peer messenger.
//!
//! # Layout
//! - [`identity`]: the node's ed25519 key, its key file and its libp2p `PeerId`.
//! - [`message`]: signed headers, their canonical encoding, ids and validation.
//! - [`store`]: redb index + content files; resumable writes, delivery state, expiry.
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

pub mod identity;
pub mod message;
pub mod store;
