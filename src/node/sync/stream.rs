//! `/mule/push/2` at the sender: one message's content on one stream (push.md section 9).
//!
//! The sender writes the `open` frame, learns the offset the receiver holds, then writes the
//! rest of the content as plain bytes, read ahead from the store by a thread of its own, and
//! waits for the receiver's last answer. A peer that does not speak `/mule/push/2` is told
//! apart (`None`), so the caller falls back to `/mule/push/1` chunks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncWriteExt, FutureExt};
use libp2p::PeerId;

use super::plan::{classify, Outcome, Trouble};
use crate::message::Header;
use crate::net::RequestError;
use crate::node::counters::Counters;
use crate::node::ctx::Ctx;
use crate::node::transfers::Direction;
use crate::protocol::push;
use crate::protocol::push2::{self, FrameError};

/// Longest wait for the stream to open, for the receiver's first answer, or for one write to
/// go through: the receiver gives a stream up after the same idle time.
const STREAM_IDLE: Duration = Duration::from_secs(30);
/// Longest wait for the last answer once every byte is written: the receiver then finishes
/// hashing, syncs the file to disk and commits, which for a large message on a slow disk takes
/// a while.
const FINISH_WAIT: Duration = Duration::from_secs(120);
/// Bytes per read of the content and per write to the stream.
pub(super) const STREAM_BUFFER: usize = push::DEFAULT_CHUNK;

/// Pushes `header`'s message over `/mule/push/2`; `None` if the peer does not speak it.
pub(super) async fn push(ctx: &Arc<Ctx>, peer: PeerId, header: &Header) -> Option<Outcome> {
    let mut stream = match tokio::time::timeout(STREAM_IDLE, ctx.net.open_push2(peer)).await {
        Err(_) => return Some(Outcome::Connection(RequestError::Timeout)),
        Ok(Err(RequestError::UnsupportedProtocols)) => return None,
        Ok(Err(e)) => return Some(Outcome::Connection(e)),
        Ok(Ok(stream)) => stream,
    };
    let outcome = send(ctx, peer, header, &mut stream).await;
    // The receiver closes its side after its last answer; ours may already be gone.
    let _ = tokio::time::timeout(STREAM_IDLE, stream.close()).await;
    Some(outcome)
}

async fn send(
    ctx: &Arc<Ctx>,
    peer: PeerId,
    header: &Header,
    stream: &mut libp2p::Stream,
) -> Outcome {
    let len = header.length;
    let open = push2::Open {
        header: header.clone(),
    };
    if let Err(e) = timed(STREAM_IDLE, push2::write_frame(stream, &open)).await {
        return Outcome::Connection(e);
    }
    let held = match answer(stream, STREAM_IDLE).await {
        Ok(push::Response::Offset(n)) if n <= len => n,
        Ok(push::Response::Offset(n)) => {
            return Outcome::Transient(Trouble::RestartLoop { have: n })
        }
        Ok(push::Response::Error(e)) => return classify(e),
        Ok(push::Response::Batch(_)) => {
            return Outcome::Transient(Trouble::Unusable("a batch to an open frame"))
        }
        Err(e) => return Outcome::Connection(e),
    };
    tracing::debug!(id = %header.id.short(), held, "receiver holds");
    let key = (header.id, peer, Direction::Out);
    let mut source = ctx.store.read_ahead(header.id, held, STREAM_BUFFER);
    let mut sent = held;
    while let Some(buf) = source.next().await {
        let buf = match buf {
            Ok(buf) => buf,
            Err(e) => return Outcome::Transient(Trouble::Read(e)),
        };
        let write = stream.write_all(&buf).map(|r| r.map_err(FrameError::Io));
        if let Err(failure) = timed(STREAM_IDLE, write).await {
            return refused_or_gone(stream, failure).await;
        }
        let n = buf.len() as u64;
        source.recycle(buf);
        sent += n;
        Counters::add(&ctx.counters.bytes_sent, n);
        ctx.transfers().progress(key, sent, len, Instant::now());
    }
    if let Err(e) = timed(
        STREAM_IDLE,
        stream.flush().map(|r| r.map_err(FrameError::Io)),
    )
    .await
    {
        return Outcome::Connection(e);
    }
    match answer(stream, FINISH_WAIT).await {
        Ok(push::Response::Offset(n)) if n >= len => Outcome::Delivered { duplicate: false },
        Ok(push::Response::Offset(_)) => {
            Outcome::Transient(Trouble::Unusable("a short offset after the whole content"))
        }
        Ok(push::Response::Error(e)) => classify(e),
        Ok(push::Response::Batch(_)) => {
            Outcome::Transient(Trouble::Unusable("a batch after the content"))
        }
        Err(e) => Outcome::Connection(e),
    }
}

/// A write failed: the receiver may have refused the rest (a full disk, say) with an error
/// frame before closing; read it if it is there, else the connection failed.
async fn refused_or_gone(stream: &mut libp2p::Stream, failure: RequestError) -> Outcome {
    match answer(stream, Duration::from_secs(1)).await {
        Ok(push::Response::Error(e)) => classify(e),
        _ => Outcome::Connection(failure),
    }
}

/// Reads one response frame within `wait`.
async fn answer(
    stream: &mut libp2p::Stream,
    wait: Duration,
) -> Result<push::Response, RequestError> {
    timed(wait, push2::read_frame(stream, push2::RESPONSE_MAX)).await
}

/// Runs a frame operation within `wait`, as a [`RequestError`].
async fn timed<T>(
    wait: Duration,
    op: impl std::future::Future<Output = Result<T, FrameError>>,
) -> Result<T, RequestError> {
    match tokio::time::timeout(wait, op).await {
        Err(_) => Err(RequestError::Timeout),
        Ok(Ok(t)) => Ok(t),
        Ok(Err(FrameError::Io(e))) => Err(RequestError::Io(e.into())),
        Ok(Err(e)) => Err(RequestError::Io(
            std::io::Error::other(e.to_string()).into(),
        )),
    }
}
