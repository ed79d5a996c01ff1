//! Trust: names for keys, proved offline by certificate chains, and access lists over them.
//!
//! A root key a node trusts under a name (`campfire`) issues certificates granting name
//! extensions to other keys (`campfire/alice`), which may issue further
//! (`campfire/alice/phone`). Anyone holding the chain and trusting the root verifies the name
//! without asking anybody. Access lists then admit callers by name or peer id, at a rate.
//! The format, validation order, patterns and file formats are specified in
//! `protocols/names.md`; the test vector is `protocols/vectors/names-1.json`.
//!
//! Everything here is pure or reads only the data dir: no network, no store.
//!
//! - [`name`]: names and their segments.
//! - [`cert`]: one certificate: fields, canonical encoding, signature, caveats.
//! - [`chain`]: chains: bounded decoding and [`verify`].
//! - [`roots`]: the trusted roots file.
//! - [`own`]: the chains naming this node.
//! - [`pattern`]: patterns over callers, and whether a recipient addresses this node.
//! - [`acl`]: access lists and the node's [`AccessPolicy`].

pub mod acl;
pub mod cert;
pub mod chain;
pub mod files;
pub mod name;
pub mod own;
pub mod pattern;
pub mod rate;
pub mod roots;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

use std::path::{Path, PathBuf};

use libp2p::PeerId;

pub use acl::{AccessList, AccessPolicy, Denied, Entry, ListKind};
pub use cert::{Certificate, Grant, Restrictions};
pub use chain::{issue, names_of, verify, ChainError, Names, VerifiedName};
pub use name::{Name, NameError, Segment};
pub use own::{Held, OwnChains, OwnError};
pub use pattern::{addresses, Caller, Pattern, PatternError};
pub use roots::{Roots, RootsError};

use crate::identity::Identity;
use crate::message::{CertificateChain, Limits};

/// Why the trust state of a data dir could not be loaded or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The roots file.
    #[error(transparent)]
    Roots(#[from] RootsError),
    /// The chain files.
    #[error(transparent)]
    Own(#[from] OwnError),
}

/// The trust state of a node: the roots it believes and the chains naming it. The node opens
/// it at start; the CLI changes it offline.
#[derive(Clone, Debug)]
pub struct Trust {
    roots_file: PathBuf,
    key: [u8; 32],
    peer: PeerId,
    roots: Roots,
    own: OwnChains,
}

impl Trust {
    /// Loads `<data_dir>/trust/roots.toml` and `<data_dir>/trust/chains/` for `identity`.
    pub fn load(data_dir: &Path, identity: &Identity) -> Result<Self, Error> {
        let roots_file = data_dir.join(roots::ROOTS_FILE);
        let roots = Roots::load(&roots_file)?;
        let own = OwnChains::load(&data_dir.join(own::CHAINS_DIR), identity.public_key())?;
        Ok(Self {
            roots_file,
            key: identity.public_key(),
            peer: identity.peer_id(),
            roots,
            own,
        })
    }

    /// The roots this node believes.
    pub fn roots(&self) -> &Roots {
        &self.roots
    }

    /// Trusts `key` as root `name` and saves the roots file.
    pub fn add_root(&mut self, name: Segment, key: [u8; 32]) -> Result<(), Error> {
        let mut roots = self.roots.clone();
        roots.insert(name, key)?;
        roots.save(&self.roots_file)?;
        self.roots = roots;
        Ok(())
    }

    /// Stops trusting root `name` and saves; returns its key if it was trusted.
    pub fn remove_root(&mut self, name: &Segment) -> Result<Option<[u8; 32]>, Error> {
        let mut roots = self.roots.clone();
        let removed = roots.remove(name);
        if removed.is_some() {
            roots.save(&self.roots_file)?;
            self.roots = roots;
        }
        Ok(removed)
    }

    /// Attaches a chain (a chain file's bytes) to this node, if it names this node and
    /// verifies against this node's roots at `now_ms`.
    pub fn add_chain(&mut self, bytes: &[u8], now_ms: u64) -> Result<VerifiedName, Error> {
        Ok(self.own.add(bytes, &self.roots, now_ms)?)
    }

    /// Every chain held, with whether and what it verifies at `now_ms`.
    pub fn held(&self, now_ms: u64) -> Vec<(&Held, Result<VerifiedName, ChainError>)> {
        self.own
            .held()
            .iter()
            .map(|h| (h, verify(&h.chain, &self.key, &self.roots, now_ms)))
            .collect()
    }

    /// This node's names at `now_ms`: its root name if it trusts itself as a root, then one
    /// per held chain that verifies.
    pub fn names(&self, now_ms: u64) -> Vec<VerifiedName> {
        let chains: Vec<&CertificateChain> = self.own.held().iter().map(|h| &h.chain).collect();
        names_of(&self.key, &chains, &self.roots, now_ms).verified
    }

    /// A chain proving `name` for this node at `now_ms` (to issue certificates under it).
    pub fn chain_for(&self, name: &Name, now_ms: u64) -> Option<&CertificateChain> {
        self.held(now_ms)
            .into_iter()
            .find(|(_, v)| v.as_ref().is_ok_and(|v| &v.name == name))
            .map(|(h, _)| &h.chain)
    }

    /// The chains to put in the `chains` field of a header this node signs at `now_ms`: those
    /// that verify, longest-lasting first, at most the header's limit.
    pub fn header_chains(&self, now_ms: u64) -> Vec<CertificateChain> {
        let mut valid: Vec<(u64, &CertificateChain)> = self
            .held(now_ms)
            .into_iter()
            .filter_map(|(h, v)| v.ok().map(|v| (v.not_after_ms, &h.chain)))
            .collect();
        valid.sort_by_key(|(not_after, _)| std::cmp::Reverse(*not_after));
        valid
            .into_iter()
            .take(Limits::MAX_CHAINS)
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// This node as a caller, with its names at `now_ms` (for [`addresses`]).
    pub fn me(&self, now_ms: u64) -> Caller {
        Caller {
            peer: self.peer,
            names: self.names(now_ms).into_iter().map(|v| v.name).collect(),
        }
    }
}
