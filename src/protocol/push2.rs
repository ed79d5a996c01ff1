//! `/mule/push/2`: one message's content on one stream, as a plain byte run after a framed
//! header. Spec: `protocols/push.md` section 9.
//!
//! `/mule/push/1` sends every chunk as its own request-response pair (a new stream, a CBOR
//! value read to EOF into a growing buffer, the header again). For bulk content that framing
//! costs more CPU than the transport. Here the sender writes one length-prefixed `open` frame
//! with the header, the receiver answers with the offset it holds, and the sender then writes
//! exactly `length - offset` raw content bytes: the receiver knows how many to expect from the
//! admitted header, so the bytes need no framing at all. A last response frame says whether the
//! message was stored.
//!
//! Frames are an unsigned varint (multiformats, at most 9 bytes) of the CBOR value's length,
//! then the value. Every read is bounded before anything is allocated.

use futures::prelude::*;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::message::Header;

/// Protocol name.
pub const PROTOCOL: &str = "/mule/push/2";
/// Largest `open` frame body: the largest header plus room for the map around it.
pub const OPEN_MAX: usize = Header::MAX_ENCODED_LEN + 1024;
/// Largest response frame body: one error with its longest message, and then some.
pub const RESPONSE_MAX: usize = 4096;

/// The sender's first frame: which message follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    /// The header, with the pushing relay appended to `hops`, as in a `/mule/push/1` chunk.
    pub header: Header,
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The stream failed or ended early.
    #[error("stream failed: {0}")]
    Io(#[from] std::io::Error),
    /// The length prefix is not a valid unsigned varint.
    #[error("bad length prefix: {0}")]
    Prefix(String),
    /// The length prefix announces more than the frame may hold; nothing of it was read.
    #[error("frame of {len} bytes is over the limit of {limit} bytes")]
    TooBig {
        /// The announced length.
        len: u64,
        /// The limit for this frame.
        limit: usize,
    },
    /// The frame's bytes are not the expected CBOR value.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Reads one frame of at most `limit` bytes and decodes it.
pub async fn read_frame<T, R>(io: &mut R, limit: usize) -> Result<T, FrameError>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let len = unsigned_varint::aio::read_u64(&mut *io)
        .await
        .map_err(|e| match e {
            unsigned_varint::io::ReadError::Io(e) => FrameError::Io(e),
            other => FrameError::Prefix(other.to_string()),
        })?;
    if len > limit as u64 {
        return Err(FrameError::TooBig { len, limit });
    }
    let mut body = vec![0u8; len as usize];
    io.read_exact(&mut body).await?;
    cbor4ii::serde::from_slice(&body).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Encodes `value` as one frame: its length as an unsigned varint, then its CBOR.
pub fn encode_frame<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    let body = cbor4ii::serde::to_vec(Vec::new(), value)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    let mut prefix = unsigned_varint::encode::u64_buffer();
    let prefix = unsigned_varint::encode::u64(body.len() as u64, &mut prefix);
    let mut frame = Vec::with_capacity(prefix.len() + body.len());
    frame.extend_from_slice(prefix);
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Writes one frame and flushes it.
pub async fn write_frame<T, W>(io: &mut W, value: &T) -> Result<(), FrameError>
where
    T: Serialize,
    W: AsyncWrite + Unpin,
{
    io.write_all(&encode_frame(value)?).await?;
    io.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;

    use super::*;
    use crate::protocol::push;

    #[test]
    fn frames_round_trip() -> anyhow::Result<()> {
        let frame = encode_frame(&push::Response::Offset(23))?;
        assert_eq!(hex::encode(&frame), "09a1666f666673657417");
        let back: push::Response = block_on(read_frame(&mut Cursor::new(frame), RESPONSE_MAX))?;
        assert_eq!(back, push::Response::Offset(23));
        Ok(())
    }

    #[test]
    fn oversize_frame_is_refused_before_reading() {
        // A prefix announcing 1 MiB, and no body at all: the limit is checked first.
        let mut prefix = unsigned_varint::encode::u64_buffer();
        let bytes = unsigned_varint::encode::u64(1 << 20, &mut prefix).to_vec();
        let r: Result<push::Response, _> =
            block_on(read_frame(&mut Cursor::new(bytes), RESPONSE_MAX));
        let e = r.err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("frame of 1048576 bytes is over the limit of 4096 bytes")
        );
    }

    #[test]
    fn bad_prefix_and_body_are_typed() {
        let r: Result<push::Response, _> =
            block_on(read_frame(&mut Cursor::new(vec![0xff; 10]), RESPONSE_MAX));
        assert!(matches!(r, Err(FrameError::Prefix(_))), "{r:?}");
        let r: Result<push::Response, _> = block_on(read_frame(
            &mut Cursor::new(vec![2, 0xff, 0xff]),
            RESPONSE_MAX,
        ));
        assert!(matches!(r, Err(FrameError::Malformed(_))), "{r:?}");
        let r: Result<push::Response, _> =
            block_on(read_frame(&mut Cursor::new(vec![5, 0xa1]), RESPONSE_MAX));
        assert!(matches!(r, Err(FrameError::Io(_))), "{r:?}");
    }
}
