//! `/mule/push/2` at the receiver: one message's content on one stream (push.md section 9).
//!
//! The stream shares the `/mule/push/1` slots: the `open` frame is admitted like a transfer's
//! first chunk, the answer is the offset the slot holds, and the raw bytes that follow are
//! handed to the transfer's writer thread ([`Sink`]) while the next ones are read. An
//! interrupted stream leaves its bytes in the slot (and, once the slot idles out, in the store),
//! so the sender resumes exactly as with `/mule/push/1`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use tracing::Instrument;

use super::codes::{err, store_error};
use super::handler::Handler;
use super::slot::Slot;
use crate::protocol::push2::{self, FrameError};
use crate::protocol::{push, Code, WireError};
use crate::store::Sink;

/// Longest wait for the next bytes (or the `open` frame) before the stream is given up: the
/// same as a slot's idle time, so a stalled stream ends before its slot is reaped.
pub(in crate::node) const STREAM_IDLE: Duration = super::reorder::SLOT_IDLE;
/// Bytes read from the stream per write handed to the writer thread.
pub(in crate::node) const STREAM_BUFFER: usize = push::DEFAULT_CHUNK;

/// How a stream ended without a final answer to give.
enum Failure {
    /// Refused or failed for a reason the peer is told.
    Answer(WireError),
    /// The stream broke or stalled; nobody is left to tell.
    Gone(String),
}

impl From<WireError> for Failure {
    fn from(e: WireError) -> Self {
        Failure::Answer(e)
    }
}

impl Handler {
    /// Serves one inbound `/mule/push/2` stream; spawned per stream by the node.
    pub(in crate::node) async fn push2(self: Arc<Self>, peer: PeerId, stream: libp2p::Stream) {
        let span = tracing::debug_span!("push2", %peer);
        async move { self.serve(peer, stream).await }
            .instrument(span)
            .await
    }

    async fn serve(&self, peer: PeerId, mut stream: libp2p::Stream) {
        let answer = match self.receive(peer, &mut stream).await {
            Ok(length) => push::Response::Offset(length),
            Err(Failure::Answer(e)) => match self.account(Err::<(), _>(e)) {
                Err(e) => push::Response::Error(e),
                Ok(()) => return,
            },
            Err(Failure::Gone(why)) => {
                tracing::debug!(%peer, %why, "push stream ended early");
                return;
            }
        };
        let _ = tokio::time::timeout(STREAM_IDLE, async {
            push2::write_frame(&mut stream, &answer).await?;
            stream.close().await.map_err(FrameError::Io)
        })
        .await;
    }

    /// Refuses a stream at once (the node serves too many): answers `busy` and closes.
    pub(in crate::node) async fn refuse_push2(self: Arc<Self>, mut stream: libp2p::Stream) {
        self.ctx.counters.reject(Code::Busy.name());
        let busy = push::Response::Error(err(
            Code::Busy,
            "receiver is serving too many streams; retry later",
        ));
        let _ = tokio::time::timeout(STREAM_IDLE, async {
            push2::write_frame(&mut stream, &busy).await?;
            stream.close().await.map_err(FrameError::Io)
        })
        .await;
    }

    /// Reads the `open` frame, answers the held offset, copies the content in and stores it.
    /// Returns the message's length once it is stored.
    async fn receive(&self, peer: PeerId, stream: &mut libp2p::Stream) -> Result<u64, Failure> {
        self.admit_peer(peer)?;
        let open = self.read_open(peer, stream).await?;
        let header = open.header;
        let existing = self.slots().get(&header.id).cloned();
        let slot = match existing {
            Some(slot) => slot,
            None => {
                self.admit(&header)?;
                self.new_slot(peer, header).await?
            }
        };
        if slot.peer != peer {
            return Err(err(
                Code::Busy,
                format!(
                    "message {} is being received from another peer",
                    slot.header.id
                ),
            )
            .into());
        }
        slot.activity().touch(Instant::now());
        // A new stream from the owner is a restart, like its `resume-offset`: an older stream
        // still holding the transfer is dead (its connection may be gone without its reads
        // noticing), so it stops and hands the transfer over.
        slot.progress.send_modify(|p| p.generation += 1);
        let generation = slot.progress.borrow().generation;
        self.open_transfer(peer, &slot).await?;
        // Held for the whole stream: chunks of the same message over `/mule/push/1` wait.
        let mut guard = slot.transfer.lock().await;
        let Some(transfer) = guard.take() else {
            return Err(err(Code::Busy, "transfer closed").into());
        };
        let held = transfer.offset();
        let told = tokio::time::timeout(
            STREAM_IDLE,
            push2::write_frame(stream, &push::Response::Offset(held)),
        )
        .await;
        if !matches!(told, Ok(Ok(()))) {
            *guard = Some(transfer);
            return Err(Failure::Gone("could not answer the open frame".into()));
        }
        let mut sink = match transfer.into_sink() {
            Ok(sink) => sink,
            Err(e) => {
                self.close_slot(&slot);
                return Err(store_error(e).into());
            }
        };
        if let Err(failure) = self.copy_in(&slot, generation, stream, &mut sink).await {
            // Keep what was written, in the slot, for the owner's resume.
            match sink.close().await {
                Ok(transfer) => {
                    slot.set_held(transfer.offset());
                    *guard = Some(transfer);
                }
                Err(e) => {
                    self.close_slot(&slot);
                    return Err(store_error(e).into());
                }
            }
            return Err(failure);
        }
        self.close_slot(&slot);
        drop(guard);
        let length = sink.length();
        let stored = sink.finish().await.map_err(store_error)?;
        self.stored(peer, stored);
        Ok(length)
    }

    /// Reads the `open` frame. Bytes that are not one count against the peer, as a malformed
    /// `/mule/push/1` request does.
    async fn read_open(
        &self,
        peer: PeerId,
        stream: &mut libp2p::Stream,
    ) -> Result<push2::Open, Failure> {
        let read = push2::read_frame(stream, push2::OPEN_MAX);
        let e = match tokio::time::timeout(STREAM_IDLE, read).await {
            Ok(Ok(open)) => return Ok(open),
            Ok(Err(FrameError::Io(e))) => return Err(Failure::Gone(e.to_string())),
            Err(_) => return Err(Failure::Gone("no open frame in time".into())),
            Ok(Err(e)) => e,
        };
        let net = self.ctx.net.clone();
        tokio::spawn(async move { net.report_error(peer).await });
        let code = match e {
            FrameError::TooBig { .. } => Code::TooBig,
            _ => Code::BadRequest,
        };
        Err(err(code, format!("bad open frame: {e}")).into())
    }

    /// Reads the content from the sink's offset to the end, handing each buffer to the writer
    /// thread while the next one is read.
    /// Stops early if the owner restarts (the slot's generation moves on from `generation`).
    async fn copy_in(
        &self,
        slot: &Slot,
        generation: u64,
        stream: &mut libp2p::Stream,
        sink: &mut Sink,
    ) -> Result<(), Failure> {
        let length = sink.length();
        let mut restarts = slot.progress.subscribe();
        while sink.offset() < length {
            let n = (length - sink.offset()).min(STREAM_BUFFER as u64) as usize;
            let mut buf = sink.buffer(n);
            let filled =
                tokio::time::timeout(STREAM_IDLE, fill(stream, &mut buf, sink.offset(), length));
            tokio::select! {
                filled = filled => filled.map_err(|_| Failure::Gone(format!(
                    "no {n} bytes within {} s",
                    STREAM_IDLE.as_secs()
                )))??,
                _ = restarts.wait_for(|p| p.generation != generation) => {
                    return Err(Failure::Gone("the owner restarted the transfer".into()));
                }
            }
            let held = sink.write(buf).await.map_err(store_error)?;
            slot.activity().touch(Instant::now());
            self.progressed(slot, held, n as u64);
        }
        Ok(())
    }
}

/// Fills `buf` from the stream. Unbounded in time: the caller bounds the whole buffer (one
/// timer per buffer, not per read: a QUIC read may return only one packet's worth).
async fn fill<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut [u8],
    at: u64,
    length: u64,
) -> Result<(), Failure> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]).await {
            Err(e) => return Err(Failure::Gone(e.to_string())),
            Ok(0) => {
                return Err(Failure::Gone(format!(
                    "stream ended at {} of {length} bytes",
                    at + filled as u64
                )))
            }
            Ok(k) => filled += k,
        }
    }
    Ok(())
}
