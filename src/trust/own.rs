//! The chains that name this node, kept in `<data-dir>/trust/chains/`, one file per chain.
//!
//! Each file holds the chain's CBOR bytes (an array of certificate byte strings, leaf first)
//! and is named after the first 16 bytes of their sha256, so adding the same chain twice keeps
//! one file. A chain is checked when added; at load it is only decoded, because whether it
//! verifies depends on the time and on the roots, both of which change.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::chain::{self, decode_chain, ChainError, VerifiedName};
use super::roots::Roots;
use crate::identity::key_label;
use crate::message::CertificateChain;

/// Where the chains live inside the data dir.
pub const CHAINS_DIR: &str = "trust/chains";
/// File name suffix of a chain file.
pub const CHAIN_SUFFIX: &str = "chain";

/// Why a chain could not be read or added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OwnError {
    /// Reading or writing a chain file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A chain file does not decode.
    #[error("{}: {source}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ChainError,
    },
    /// The chain names another key; attach it on the node it names.
    #[error("the chain names {subject}, not this node ({me})")]
    NotForThisNode {
        /// Whom the chain names (peer id).
        subject: String,
        /// This node's peer id.
        me: String,
    },
    /// The chain does not verify against this node's roots now.
    #[error("the chain does not verify here: {0}")]
    DoesNotVerify(ChainError),
}

/// A chain this node holds, and the file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The chain file.
    pub file: PathBuf,
    /// The chain, leaf first.
    pub chain: CertificateChain,
}

/// The chains naming this node's key.
#[derive(Clone, Debug)]
pub struct OwnChains {
    dir: PathBuf,
    key: [u8; 32],
    held: Vec<Held>,
}

impl OwnChains {
    /// Reads every `*.chain` file of `dir` (none if it does not exist).
    pub fn load(dir: &Path, key: [u8; 32]) -> Result<Self, OwnError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| OwnError::Io { path, source }
        };
        let mut files = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(io(dir))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(dir)(e)),
        };
        files.retain(|p| p.extension().is_some_and(|e| e == CHAIN_SUFFIX));
        files.sort();
        let mut held = Vec::with_capacity(files.len());
        for file in files {
            let bytes = read_bounded(&file).map_err(io(&file))?;
            let chain = decode_chain(&bytes).map_err(|source| OwnError::BadFile {
                path: file.clone(),
                source,
            })?;
            held.push(Held { file, chain });
        }
        Ok(Self {
            dir: dir.to_owned(),
            key,
            held,
        })
    }

    /// Every chain held, valid or not.
    pub fn held(&self) -> &[Held] {
        &self.held
    }

    /// Verifies `bytes` (a chain file's contents) as naming this node under `roots` at
    /// `now_ms`, then keeps it. Refuses a chain for another key or one that does not verify.
    pub fn add(
        &mut self,
        bytes: &[u8],
        roots: &Roots,
        now_ms: u64,
    ) -> Result<VerifiedName, OwnError> {
        let chain = decode_chain(bytes).map_err(OwnError::DoesNotVerify)?;
        let verified = chain::verify(&chain, &self.key, roots, now_ms).map_err(|e| match e {
            ChainError::WrongSubject { found, .. } => OwnError::NotForThisNode {
                subject: found,
                me: key_label(&self.key),
            },
            other => OwnError::DoesNotVerify(other),
        })?;
        let encoded = chain::encode_chain(&chain)
            .map_err(|e| OwnError::DoesNotVerify(ChainError::Undecodable(e.to_string())))?;
        let digest = Sha256::digest(&encoded);
        let file = self.dir.join(format!(
            "{}.{CHAIN_SUFFIX}",
            hex::encode(digest.get(..16).unwrap_or_default())
        ));
        if !self.held.iter().any(|h| h.file == file) {
            super::files::write_atomically(&file, &encoded).map_err(|source| OwnError::Io {
                path: file.clone(),
                source,
            })?;
            self.held.push(Held { file, chain });
        }
        Ok(verified)
    }
}

/// Reads a chain file, at most one byte more than any chain may have (the decoder refuses it).
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(chain::MAX_ENCODED_CHAIN_LEN as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}
