//! mule: a delay-tolerant peer-to-peer messenger.
//!
//! # Layout
//! - [`identity`]: the node's ed25519 key, its key file and its libp2p `PeerId`.
//! - [`message`]: signed headers, their canonical encoding, ids and validation.
//! - [`content`]: what a message says (the envelope) and its end-to-end encryption with age;
//!   the keys derived from identities, group keys, and attachments saved under safe names.
//! - [`trust`]: names from certificate chains, trusted roots, patterns and access lists.
//! - [`store`]: redb index + content files; resumable writes, delivery state, expiry
//!   (on-disk format: `protocols/store.md`).
//! - [`protocol`]: wire types of the diff, push, repo and names protocols, and their codec.
//! - [`net`]: the libp2p Swarm, its event loop and handle, discovery policy, ring selection.
//! - [`node`]: a running node: peer [`manager`](node::manager), sync tasks, inbound handler,
//!   the pure [`relay`](node::relay) policy and access decisions, and the repository client
//!   ([`pull`](node::pull)) with which an islander takes what a data mule carries.
//! - [`control`]: the local control socket the CLI serves on top of a node.
//! - [`metrics`]: the `--metrics` HTTP endpoint the CLI serves on top of a node (the registry
//!   itself is [`node::metrics`]).
//! - [`cli`]: the `mule` command line.
//! - `testing` (feature `testing`): the harness the tests and benches share.
//!
//! Imports run one way, from `cli` down to `identity`: nothing imports a module above it.
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

pub mod cli;
pub mod content;
pub mod control;
pub mod identity;
pub mod message;
pub mod metrics;
pub mod net;
pub mod node;
pub mod protocol;
pub mod resident;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trust;
