//! Sending: sign a header for local content and store it, so the sync tasks carry it on.
//! Works with or without a running node (the CLI stores directly when no node runs).

use std::path::{Path, PathBuf};
use std::time::Duration;

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
#[derive(Debug)]
pub enum Content {
    /// Bytes in memory (text, small payloads).
    Bytes(Vec<u8>),
    /// A file, streamed into the store once and hashed on the way.
    File(PathBuf),
    /// Content already written into the store's staging file (sealed content): adopted as it
    /// is, without reading or hashing it again.
    Staged(store::Staged),
}

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
            let s = store.clone();
            let staged = tokio::task::spawn_blocking(move || stage_file(&s, &path)).await??;
            let header = check(draft.sign_digest(identity, staged.length(), staged.sha256())?)?;
            Ok(store.adopt(header, staged).await?)
        }
        Content::Staged(staged) => {
            let header = check(draft.sign_digest(identity, staged.length(), staged.sha256())?)?;
            Ok(store.adopt(header, staged).await?)
        }
    }
}

/// Copies the file at `path` into a new staging file of `store` (one read, hashed as it is
/// written). A file that changes meanwhile is sent as it was read.
fn stage_file(store: &Store, path: &Path) -> Result<store::Staged, SendError> {
    use std::io::{Read, Write};
    let mut staged = store.stage()?;
    let mut file = std::fs::File::open(path).map_err(file_error(path))?;
    let mut buf = vec![0u8; COPY_CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            read => read.map_err(file_error(path))?,
        };
        if n == 0 {
            return Ok(staged);
        }
        let into = staged.path().to_owned();
        staged.write_all(&buf[..n]).map_err(file_error(&into))?;
    }
}

/// Bytes read from a file to send at a time.
const COPY_CHUNK: usize = 1 << 18;

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
