//! This node's own large contents, written once: a sender writes (or seals) its content straight
//! into a file inside the store, hashed on the way, signs a header with that hash, and the store
//! adopts the file as the message's content by renaming it. Nothing is read or hashed twice,
//! however large the message (issue 12: "hashing once while copying in on `send`").
//!
//! A staged file lives in `partial/` under a name that is no message id, so start-up recovery
//! removes it if the node dies before the message is stored; dropping a [`Staged`] removes it
//! too.

use std::fs;
use std::io::{self, BufWriter, Write};

use sha2::{Digest, Sha256};

use super::tables;
use super::transfer::ActiveGuard;
use super::write::insert_message;
use super::{blocking, Error, Store, Stored};
use crate::message::Header;

/// Buffer between the caller's writes and the file.
const BUFFER: usize = 1 << 16;

/// Content being written into the store by this node, counted and hashed as it goes. Write it
/// (it is a [`Write`], used from blocking code), then sign a header with [`Staged::length`] and
/// [`Staged::sha256`] and hand both to [`Store::adopt`].
#[derive(Debug)]
pub struct Staged {
    out: BufWriter<fs::File>,
    /// Removes the file unless it was adopted.
    path: tempfile::TempPath,
    hasher: Sha256,
    length: u64,
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.length += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Staged {
    /// Bytes written so far.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// SHA-256 of the bytes written so far.
    pub fn sha256(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }

    /// Where the staged bytes are (for error messages).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// A staged content after its buffer is flushed.
enum Flushed {
    /// Small: its bytes, to be stored inline (the file is gone).
    Inline(Vec<u8>),
    /// Large: the file, fsynced, to be renamed into place.
    Durable(tempfile::TempPath),
}

impl Store {
    /// Opens a new staging file for content this node is about to send. Blocking (it creates
    /// a file): call it where the content is written, on a blocking thread.
    pub fn stage(&self) -> Result<Staged, Error> {
        let dir = self.inner.dir.join(super::PARTIAL_DIR);
        let file = tempfile::Builder::new()
            .prefix("staging-")
            .tempfile_in(&dir)
            .map_err(Error::io(&dir))?;
        let (file, path) = file.into_parts();
        Ok(Staged {
            out: BufWriter::with_capacity(BUFFER, file),
            path,
            hasher: Sha256::new(),
            length: 0,
        })
    }

    /// Stores `staged` as the content of `header`, which must declare its length and SHA-256
    /// (this node signed it over them): the file is made durable and renamed into place, then
    /// the index row commits. Small contents are stored inline like [`Store::put`].
    pub async fn adopt(&self, header: Header, staged: Staged) -> Result<Stored, Error> {
        let id = header.id;
        if staged.length != header.length {
            return Err(Error::Incomplete {
                held: staged.length,
                length: header.length,
            });
        }
        if staged.sha256() != header.sha256 {
            return Err(Error::ContentMismatch(id));
        }
        let Staged { out, path, .. } = staged;
        let inline = header.length <= self.inner.config.inline_max;
        // One blocking hop: flush, then read a small content back (the staging file goes with
        // `path`) or make a large one durable before it is renamed.
        let flushed = blocking(move || {
            let file = out
                .into_inner()
                .map_err(|e| Error::io(&path)(e.into_error()))?;
            if inline {
                drop(file);
                return Ok(Flushed::Inline(fs::read(&path).map_err(Error::io(&path))?));
            }
            file.sync_all().map_err(Error::io(&path))?;
            Ok(Flushed::Durable(path))
        })
        .await?;
        match flushed {
            Flushed::Inline(bytes) => self.put(header, bytes).await,
            Flushed::Durable(path) => self.adopt_file(header, path).await,
        }
    }

    /// [`Store::adopt`] of a large content: claim the id, reserve, rename, commit.
    async fn adopt_file(&self, header: Header, path: tempfile::TempPath) -> Result<Stored, Error> {
        let id = header.id;
        // The claim keeps transfers and eviction off this id until this returns (or is dropped);
        // only a message already stored under it could still own the content path.
        let _claim = ActiveGuard::claim(self, id)?;
        if self.offset(id).await? == super::Offset::Complete {
            return Err(Error::AlreadyStored(id));
        }
        let reservation = self.reserve(id, header.length).await?;
        let content = self.content_path(&id);
        let content_dir = self.inner.dir.join(super::CONTENT_DIR);
        let target = content.clone();
        blocking(move || {
            path.persist(&target)
                .map_err(|e| Error::io(&target)(e.error))?;
            crate::identity::sync_dir(&content_dir).map_err(Error::io(&content_dir))
        })
        .await?;
        let stored = Stored {
            header,
            received_ms: crate::message::now_ms(),
            inline: false,
        };
        let record = tables::encode(&stored)?;
        let row = stored.header.clone();
        let result = self
            .inner
            .writer
            .write(move |txn| insert_message(txn, &row, &record, None))
            .await;
        match result {
            // A partial row it replaced had reserved these bytes already.
            Ok(false) => reservation.keep(),
            // An interrupted transfer of the same message had a partial row and file: the row
            // is gone with this commit, and so goes the file.
            Ok(true) => {
                let partial = self.partial_path(&id);
                blocking(move || super::remove_if_exists(&partial)).await?;
            }
            Err(e) => {
                // Not stored: the file goes (start-up recovery would remove it otherwise).
                blocking(move || super::remove_if_exists(&content)).await?;
                return Err(e);
            }
        }
        tracing::debug!(id = %id.short(), length = stored.header.length, "stored own message");
        Ok(stored)
    }
}
