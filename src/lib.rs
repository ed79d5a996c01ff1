//! mule: a delay-tolerant peer-to-peer messenger.
//!
//! # Layout
//! - [`identity`]: the node's ed25519 key, its key file and its libp2p `PeerId`.
//! - [`message`]: signed headers, their canonical encoding, ids and validation.
//! - [`trust`]: names from certificate chains, trusted roots, patterns and access lists.
//! - [`store`]: redb index + content files; resumable writes, delivery state, expiry.
//! - [`protocol`]: wire types of the diff, push and repository protocols, and their codec.
//! - [`net`]: the libp2p Swarm, its event loop and handle, ring selection.
//! - [`node`]: a running node: peer manager, sync tasks, inbound handler, access decisions.
//! - [`control`]: the local control socket the CLI uses to talk to a running node.
//! - [`cli`]: the `mule` command line.
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

pub mod cli;
pub mod control;
pub mod identity;
pub mod message;
pub mod net;
pub mod node;
pub mod protocol;
pub mod store;
pub mod trust;
