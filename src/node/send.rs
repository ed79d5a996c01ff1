//! Sending: sign a header for local content and store it, so the sync tasks carry it on.
//! Works with or without a running node (the CLI stores directly when no node runs).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{Error, Node};
use crate::identity::Identity;
use crate::message::{
    now_ms, CertificateChain, Draft, EncodeError, Header, Limits, MessageId, ValidationError,
};
use crate::store::{self, Store, Stored};

/// Why a message could not be sent (nothing was stored).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The header could not be encoded for signing.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The message breaks this node's own limits (size, lifespan, recipient...).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The file to send could not be read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The blocking file task failed.
    #[error("file task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> SendError + '_ {
    move |source| SendError::File {
        path: path.to_owned(),
        source,
    }
}

/// Content of a message to send.
#[derive(Clone, Debug)]
pub enum Content {
    /// Bytes in memory (text, small payloads).
    Bytes(Vec<u8>),
    /// A file, streamed: hashed first, then copied into the store chunk by chunk.
    File(PathBuf),
    /// A file whose length and SHA-256 were computed while it was written (sealed content):
    /// copied into the store without hashing it again.
    Hashed {
        /// The file.
        path: PathBuf,
        /// Its length.
        length: u64,
        /// Its SHA-256.
        sha256: [u8; 32],
    },
}

/// Chunk size for copying a file into the store.
const COPY_CHUNK: usize = 1 << 20;

/// Where a message goes and for how long, besides its content.
#[derive(Clone, Debug)]
pub struct Addressing {
    /// A peer id, a name pattern (`campfire/bob`) or `*`.
    pub recipient: String,
    /// How long relays carry it.
    pub lifespan: Duration,
    /// Certificate chains naming the sender, so any node can check who sent it, offline.
    pub chains: Vec<CertificateChain>,
}

/// Signs and stores a new message from this identity. Returns its stored record.
pub async fn store_new(
    identity: &Identity,
    store: &Store,
    limits: &Limits,
    addressing: Addressing,
    content: Content,
) -> Result<Stored, SendError> {
    let draft = Draft {
        recipient: addressing.recipient,
        created_ms: now_ms(),
        lifespan_ms: u64::try_from(addressing.lifespan.as_millis()).unwrap_or(u64::MAX),
        chains: addressing.chains,
    };
    let check = |header: Header| -> Result<Header, SendError> {
        header.check_unsigned(now_ms(), limits)?;
        Ok(header)
    };
    match content {
        Content::Bytes(bytes) => {
            let header = check(draft.sign(identity, &bytes)?)?;
            Ok(store.put(header, bytes).await?)
        }
        Content::File(path) => {
            let p = path.clone();
            let (length, digest) = tokio::task::spawn_blocking(move || hash_file(&p))
                .await?
                .map_err(file_error(&path))?;
            let header = check(draft.sign_digest(identity, length, digest)?)?;
            copy_file(store, header, path).await
        }
        Content::Hashed {
            path,
            length,
            sha256,
        } => {
            let header = check(draft.sign_digest(identity, length, sha256)?)?;
            copy_file(store, header, path).await
        }
    }
}

/// Copies a file into a new transfer, chunk by chunk, every read on a blocking thread.
async fn copy_file(store: &Store, header: Header, path: PathBuf) -> Result<Stored, SendError> {
    let mut transfer = store.begin_write(header).await?;
    let p = path.clone();
    let mut file = tokio::task::spawn_blocking(move || std::fs::File::open(p))
        .await?
        .map_err(file_error(&path))?;
    loop {
        let (f, chunk) = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(COPY_CHUNK);
            let r = (&mut file).take(COPY_CHUNK as u64).read_to_end(&mut buf);
            (file, r.map(|_| buf))
        })
        .await?;
        file = f;
        let chunk = chunk.map_err(file_error(&path))?;
        if chunk.is_empty() {
            break;
        }
        let at = transfer.offset();
        transfer.append(at, chunk).await?;
    }
    // A file that changed while we read it fails here with a content mismatch.
    Ok(transfer.finish().await?)
}

fn hash_file(path: &Path) -> std::io::Result<(u64, [u8; 32])> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut length = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        length += n as u64;
    }
    Ok((length, hasher.finalize().into()))
}

impl Node {
    /// Sends a message: signs it, stores it, and hands it to every sync task.
    pub async fn send(
        &self,
        recipient: impl Into<String>,
        content: Content,
        lifespan: Duration,
    ) -> Result<MessageId, Error> {
        let addressing = Addressing {
            recipient: recipient.into(),
            lifespan,
            chains: self.ctx.trust.header_chains(now_ms()),
        };
        let stored = store_new(
            &self.ctx.identity,
            &self.ctx.store,
            &self.ctx.config.limits,
            addressing,
            content,
        )
        .await?;
        let id = stored.header.id;
        tracing::info!(id = %id.short(), recipient = %stored.header.recipient, length = stored.header.length, "message sent");
        self.ctx.announce(id, None);
        Ok(id)
    }
}
