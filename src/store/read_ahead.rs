//! Reading a complete message's content ahead of the network, on a thread of its own.
//!
//! A sender that reads each chunk with [`Store::read_range`] pays a blocking-pool hop, an open
//! and a fresh zero-filled buffer per chunk, and the stream waits for every read. A
//! [`ReadAhead`] keeps a few buffers read in advance by one thread per transfer, reading the
//! file sequentially, and takes the sent buffers back for reuse.

use std::io::{Read, Seek, SeekFrom};
use std::thread;

use tokio::sync::mpsc;

use super::{Error, Store};
use crate::message::MessageId;

/// Buffers read ahead of the one being sent.
pub const READ_AHEAD: usize = 4;

/// The content of a message from some offset on, in buffers read ahead by a thread.
#[derive(Debug)]
pub struct ReadAhead {
    filled: mpsc::Receiver<Result<Vec<u8>, Error>>,
    spare: mpsc::UnboundedSender<Vec<u8>>,
}

impl ReadAhead {
    /// The next buffer (at most the buffer size, in order), `None` after the last one. After an
    /// error nothing more follows.
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, Error>> {
        self.filled.recv().await
    }

    /// Gives a sent buffer back, to be filled again.
    pub fn recycle(&self, buf: Vec<u8>) {
        // The thread may have finished; the buffer is then simply freed.
        let _ = self.spare.send(buf);
    }
}

impl Store {
    /// Reads message `id`'s content from `offset` to its end in buffers of `buf_len` bytes, on
    /// a thread of its own that stays at most [`READ_AHEAD`] buffers ahead. The thread stops
    /// when the [`ReadAhead`] is dropped.
    pub fn read_ahead(&self, id: MessageId, offset: u64, buf_len: usize) -> ReadAhead {
        let (tx, filled) = mpsc::channel(READ_AHEAD);
        let (spare, mut spare_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let store = self.clone();
        let reader = move || {
            let read = || -> Result<_, Error> {
                let (stored, mut content) = store.read_blocking(&id)?;
                let length = stored.header.length;
                if offset > length {
                    return Err(Error::OutOfRange {
                        offset,
                        len: 0,
                        length,
                    });
                }
                let path = store.content_path(&id);
                content
                    .seek(SeekFrom::Start(offset))
                    .map_err(Error::io(&path))?;
                Ok((content, length, path))
            };
            let (mut content, length, path) = match read() {
                Ok(opened) => opened,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            let mut at = offset;
            while at < length {
                let n = (length - at).min(buf_len.max(1) as u64) as usize;
                let mut buf = spare_rx.try_recv().unwrap_or_default();
                buf.resize(n, 0);
                let item = content
                    .read_exact(&mut buf)
                    .map(|()| buf)
                    .map_err(Error::io(&path));
                let failed = item.is_err();
                if tx.blocking_send(item).is_err() || failed {
                    return;
                }
                at += n as u64;
            }
        };
        if let Err(e) = thread::Builder::new()
            .name("mule-read-ahead".into())
            .spawn(reader)
        {
            let (tx, filled) = mpsc::channel(1);
            let _ = tx.try_send(Err(Error::io(self.content_path(&id))(e)));
            return ReadAhead { filled, spare };
        }
        ReadAhead { filled, spare }
    }
}
