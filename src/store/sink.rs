//! A transfer's writes and hashing on a thread of its own, for content arriving as a stream.
//!
//! [`Transfer::append`] costs one hop to tokio's blocking pool per chunk, and the caller waits
//! for each write before reading the next bytes. A [`Sink`] instead owns one thread for the
//! whole transfer: the network side hands it filled buffers through a short bounded queue and
//! goes on reading while the thread appends and hashes; the thread gives each buffer back for
//! reuse, so a transfer allocates (and zero-fills) only a few buffers in all.

use std::fs;
use std::thread;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::{disk, Error, Stored, Transfer};

/// Buffers queued for the writer thread: with the one being filled and the one being written,
/// this bounds a transfer's content in memory to `SINK_DEPTH + 2` buffers.
pub const SINK_DEPTH: usize = 4;

/// Bytes after which the writer thread asks the kernel to start writing the file out: the
/// final fsync ([`Transfer::finish`]) then waits for the last few MiB instead of the whole
/// message, and a large transfer does not leave the page cache full of dirty pages.
const WRITEBACK_STEP: u64 = 8 << 20;

/// What the writer thread hands back when its queue closes: the file and hash state, and the
/// bytes held, or the error that stopped it.
type Done = Result<(fs::File, Sha256, u64), Error>;

/// A [`Transfer`] whose appends run on a dedicated thread. Made by [`Transfer::into_sink`].
///
/// Bytes handed over with [`Sink::write`] are appended in order at the transfer's held offset.
/// [`Sink::finish`] waits for every write, then verifies and stores the message exactly as
/// [`Transfer::finish`] does; [`Sink::close`] waits for the writes and gives the transfer back
/// (its partial bytes kept for a later resume).
#[derive(Debug)]
pub struct Sink {
    transfer: Transfer,
    queue: Option<mpsc::Sender<Vec<u8>>>,
    spare: mpsc::UnboundedReceiver<Vec<u8>>,
    done: oneshot::Receiver<Done>,
    handed: u64,
}

impl Transfer {
    /// Moves this transfer's appends to a thread of its own (see [`Sink`]).
    pub fn into_sink(mut self) -> Result<Sink, Error> {
        let (Some(file), Some(hasher)) = (self.file.take(), self.hasher.take()) else {
            return Err(Error::Shutdown);
        };
        let (queue, mut rx) = mpsc::channel::<Vec<u8>>(SINK_DEPTH);
        let (spare_tx, spare) = mpsc::unbounded_channel();
        let (done_tx, done) = oneshot::channel();
        let config = self.store.inner.config.clone();
        let path = self.store.partial_path(&self.header.id);
        let start = self.held;
        // Keeps the id reserved while the thread still writes, even if the sink is dropped.
        let active = self.active.clone();
        let writer = move || {
            let (mut hasher, mut offset) = (hasher, start);
            // Writeback was started up to `marks.1`; `marks.0` is the mark before it.
            let mut marks = (start, start);
            let mut result = Ok(());
            while let Some(buf) = rx.blocking_recv() {
                if let Err(e) = disk::write_content(&config, &file, &buf, offset) {
                    result = Err(Error::io(&path)(e));
                    break;
                }
                hasher.update(&buf);
                offset += buf.len() as u64;
                if offset - marks.1 >= WRITEBACK_STEP {
                    // The step before the last is written out by now: it leaves the cache.
                    start_writeback(&file, marks.0, offset);
                    marks = (marks.1, offset);
                }
                // The network side may be gone already; the buffer is then simply freed.
                let _ = spare_tx.send(buf);
            }
            // Done writing: the transfer's own reservation is what counts from here on.
            drop(active);
            let _ = done_tx.send(result.map(|()| (file, hasher, offset)));
        };
        thread::Builder::new()
            .name("mule-sink".into())
            .spawn(writer)
            .map_err(|e| Error::io(self.store.partial_path(&self.header.id))(e))?;
        Ok(Sink {
            handed: self.held,
            transfer: self,
            queue: Some(queue),
            spare,
            done,
        })
    }
}

impl Sink {
    /// Bytes handed over so far (held once the thread has written them): where the next
    /// bytes go.
    pub fn offset(&self) -> u64 {
        self.handed
    }

    /// The declared length of the content.
    pub fn length(&self) -> u64 {
        self.transfer.header.length
    }

    /// A buffer of `len` bytes to fill: one the thread has finished with if there is one.
    pub fn buffer(&mut self, len: usize) -> Vec<u8> {
        match self.spare.try_recv() {
            Ok(mut buf) => {
                // Only a short last buffer leaves a tail to zero-fill.
                buf.resize(len, 0);
                buf
            }
            Err(_) => vec![0; len],
        }
    }

    /// Queues `data` to be appended; waits while the queue is full. An error means the writer
    /// stopped (the disk is full, say): nothing after the bytes it held was written.
    pub async fn write(&mut self, data: Vec<u8>) -> Result<u64, Error> {
        let end = self.handed.saturating_add(data.len() as u64);
        if end > self.length() {
            return Err(Error::TooLong {
                end,
                length: self.length(),
            });
        }
        let Some(queue) = &self.queue else {
            return Err(Error::Shutdown);
        };
        if queue.send(data).await.is_err() {
            self.queue = None;
            return Err(self.join().await.err().unwrap_or(Error::Shutdown));
        }
        self.handed = end;
        Ok(end)
    }

    /// Waits for the thread to write everything queued, and puts the file and hash state back
    /// into the transfer.
    async fn join(&mut self) -> Result<(), Error> {
        self.queue = None;
        let (file, hasher, held) = (&mut self.done).await.map_err(|_| Error::Shutdown)??;
        self.transfer.file = Some(file);
        self.transfer.hasher = Some(hasher);
        self.transfer.held = held;
        Ok(())
    }

    /// Waits for every write, then verifies and stores the message ([`Transfer::finish`]).
    pub async fn finish(mut self) -> Result<Stored, Error> {
        self.join().await?;
        self.transfer.finish().await
    }

    /// Waits for every write and gives the transfer back, holding what was written.
    pub async fn close(mut self) -> Result<Transfer, Error> {
        self.join().await?;
        Ok(self.transfer)
    }
}

/// Starts writing bytes `[from, to)` of `file` out without waiting, and drops the clean pages
/// among them from the page cache (Linux `POSIX_FADV_DONTNEED` starts writeback of the dirty
/// ones). Advice only: a failure, or another system, changes nothing but speed.
fn start_writeback(file: &fs::File, from: u64, to: u64) {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
        if let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) {
            let _ = posix_fadvise(file, offset, len, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, to);
}
