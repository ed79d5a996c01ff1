//! Reading: records, contents (inline or file), byte ranges, the creation-order manifest, and
//! where a message stands. Every read is one short read transaction on the blocking pool.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};

use redb::ReadableTableMetadata;

use super::tables::{self, name, Stored, BY_CREATED, INLINE, MESSAGES, PARTIAL};
use super::{blocking, Error, Store};
use crate::message::MessageId;

/// Where a message stands in this store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offset {
    /// Never seen (or collected).
    Unknown,
    /// Being received; this many bytes are held, so a transfer resumes here.
    Partial(u64),
    /// Stored complete.
    Complete,
}

/// A complete message's content: inline bytes or a file, both seekable.
#[derive(Debug)]
pub enum Content {
    /// Small content held in the index.
    Inline(io::Cursor<Vec<u8>>),
    /// Content in `content/<id>`.
    File(fs::File),
}

impl Read for Content {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Content::Inline(c) => c.read(buf),
            Content::File(f) => f.read(buf),
        }
    }
}

impl Seek for Content {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Content::Inline(c) => c.seek(pos),
            Content::File(f) => f.seek(pos),
        }
    }
}

impl Store {
    /// Where a message stands: how many bytes of it are held, for resuming transfers.
    pub async fn offset(&self, id: MessageId) -> Result<Offset, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.begin_read()?;
            let key = id.as_bytes().as_slice();
            if read.open_table(MESSAGES)?.get(key)?.is_some() {
                return Ok(Offset::Complete);
            }
            if read.open_table(PARTIAL)?.get(key)?.is_none() {
                return Ok(Offset::Unknown);
            }
            let path = store.partial_path(&id);
            match fs::metadata(&path) {
                Ok(m) => Ok(Offset::Partial(m.len())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Offset::Unknown),
                Err(e) => Err(Error::io(path)(e)),
            }
        })
        .await
    }

    /// Whether the message is stored complete.
    pub async fn exists(&self, id: MessageId) -> Result<bool, Error> {
        Ok(self.has(vec![id]).await?.first().copied().unwrap_or(false))
    }

    /// For each id, whether it is stored complete (one read transaction for the batch).
    pub async fn has(&self, ids: Vec<MessageId>) -> Result<Vec<bool>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.begin_read()?;
            let messages = read.open_table(MESSAGES)?;
            ids.iter()
                .map(|id| Ok(messages.get(id.as_bytes().as_slice())?.is_some()))
                .collect()
        })
        .await
    }

    /// The index record of a complete message.
    pub async fn get(&self, id: MessageId) -> Result<Option<Stored>, Error> {
        let store = self.clone();
        blocking(move || store.get_blocking(&id)).await
    }

    pub(super) fn get_blocking(&self, id: &MessageId) -> Result<Option<Stored>, Error> {
        let read = self.begin_read()?;
        let messages = read.open_table(MESSAGES)?;
        let row = messages.get(id.as_bytes().as_slice())?;
        row.map(|v| tables::decode(v.value())).transpose()
    }

    /// Opens a complete message for reading: its record and a seekable content reader.
    pub async fn read(&self, id: MessageId) -> Result<(Stored, Content), Error> {
        let store = self.clone();
        blocking(move || store.read_blocking(&id)).await
    }

    pub(super) fn read_blocking(&self, id: &MessageId) -> Result<(Stored, Content), Error> {
        let stored = self.get_blocking(id)?.ok_or(Error::NotFound(*id))?;
        let content = if stored.inline {
            let read = self.begin_read()?;
            let inline = read.open_table(INLINE)?;
            let bytes = inline
                .get((stored.header.created_ms, id.as_bytes().as_slice()))?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| Error::Corrupt {
                    table: name::INLINE,
                    reason: format!("no content for message {id}"),
                })?;
            Content::Inline(io::Cursor::new(bytes))
        } else {
            let path = self.content_path(id);
            Content::File(fs::File::open(&path).map_err(Error::io(path))?)
        };
        Ok((stored, content))
    }

    /// The contents of inline (small) messages, given as `(created_ms, id)` (their header's), in
    /// one read transaction; `None` where the content is not inline. Lets a sender push a batch
    /// of small messages without one read each.
    pub async fn inline_contents(
        &self,
        messages: Vec<(u64, MessageId)>,
    ) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.begin_read()?;
            let inline = read.open_table(INLINE)?;
            messages
                .iter()
                .map(|(created_ms, id)| {
                    Ok(inline
                        .get((*created_ms, id.as_bytes().as_slice()))?
                        .map(|v| v.value().to_vec()))
                })
                .collect()
        })
        .await
    }

    /// Reads `len` bytes at `offset` of a complete message (pull requests, push senders).
    pub async fn read_range(&self, id: MessageId, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
        let store = self.clone();
        blocking(move || {
            let (stored, mut content) = store.read_blocking(&id)?;
            let length = stored.header.length;
            if offset > length || len > length - offset {
                return Err(Error::OutOfRange {
                    offset,
                    len,
                    length,
                });
            }
            let mut buf = vec![0u8; len as usize];
            let path = store.content_path(&id);
            content
                .seek(SeekFrom::Start(offset))
                .and_then(|_| content.read_exact(&mut buf))
                .map_err(Error::io(path))?;
            Ok(buf)
        })
        .await
    }

    /// Complete, unexpired messages in creation order, starting after `after`
    /// (a `(created_ms, id)` cursor from the previous page), at most `limit` of them.
    pub async fn manifest(
        &self,
        after: Option<(u64, MessageId)>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<Stored>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.begin_read()?;
            let by_created = read.open_table(BY_CREATED)?;
            let messages = read.open_table(MESSAGES)?;
            let mut out = Vec::new();
            let range = match &after {
                Some((created, id)) => by_created.range((*created, id.as_bytes().as_slice())..)?,
                None => by_created.range::<(u64, &[u8])>(..)?,
            };
            for row in range {
                if out.len() >= limit {
                    break;
                }
                let (key, _) = row?;
                let (created, id) = key.value();
                if let Some((ac, aid)) = &after {
                    if created == *ac && id == aid.as_bytes().as_slice() {
                        continue;
                    }
                }
                let Some(value) = messages.get(id)? else {
                    continue;
                };
                let stored: Stored = tables::decode(value.value())?;
                if stored.header.expires_ms() >= now_ms {
                    out.push(stored);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Number of complete messages.
    pub async fn len(&self) -> Result<u64, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.begin_read()?;
            Ok(read.open_table(MESSAGES)?.len()?)
        })
        .await
    }

    /// Whether the store holds no complete message.
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len().await? == 0)
    }
}
