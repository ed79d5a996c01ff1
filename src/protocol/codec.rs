//! A request-response codec for CBOR that bounds every read and reports bad frames to the app.
//!
//! libp2p's stock CBOR codec drops a request that does not decode: the peer sees a reset stream
//! and the app never learns. Here a malformed or oversized request still reaches the handler as
//! [`Frame::Malformed`] / [`Frame::TooBig`], so it can answer `bad-request` / `too-big` with a
//! reason, and count it against the peer. Framing as in `protocols/README.md`: one CBOR value per
//! stream direction, ended by closing the write half; no length prefix.

use std::io;
use std::marker::PhantomData;

use futures::prelude::*;
use libp2p::request_response;
use libp2p::StreamProtocol;
use serde::{de::DeserializeOwned, Serialize};

/// An inbound request as read off the wire: decoded, or why not.
#[derive(Debug, Clone)]
pub enum Frame<T> {
    /// A well-formed request.
    Ok(T),
    /// Bytes that are not a valid request of this protocol.
    Malformed(String),
    /// More bytes than the protocol allows; the rest was not read.
    TooBig {
        /// The protocol's limit.
        limit: u64,
    },
}

/// Why a response could not be read. The codec hands it to libp2p inside an `io::Error` (kind
/// `InvalidData`), from which the network layer recovers it with `get_ref()` + downcast.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The peer wrote more than the protocol's response limit; the rest was not read.
    #[error("response over the limit of {limit} bytes")]
    TooBig {
        /// The protocol's limit.
        limit: u64,
    },
    /// The bytes are not a response of this protocol (including an empty stream).
    #[error("malformed response: {reason}")]
    Malformed {
        /// The decoder's complaint.
        reason: String,
    },
}

impl From<ResponseError> for io::Error {
    fn from(e: ResponseError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Bounded CBOR codec for requests `Req` and responses `Resp`.
#[derive(Debug)]
pub struct Codec<Req, Resp> {
    request_max: u64,
    response_max: u64,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> Clone for Codec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::new(self.request_max, self.response_max)
    }
}

impl<Req, Resp> Codec<Req, Resp> {
    /// A codec refusing requests over `request_max` and responses over `response_max` bytes.
    pub fn new(request_max: u64, response_max: u64) -> Self {
        Self {
            request_max,
            response_max,
            _types: PhantomData,
        }
    }
}

/// Reads at most `max` bytes; `None` if the stream holds more.
async fn read_bounded<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max: u64,
) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    io.take(max + 1).read_to_end(&mut buf).await?;
    Ok((buf.len() as u64 <= max).then_some(buf))
}

async fn write_cbor<T: AsyncWrite + Unpin + Send, V: Serialize>(
    io: &mut T,
    value: &V,
) -> io::Result<()> {
    let bytes = cbor4ii::serde::to_vec(Vec::new(), value)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl<Req, Resp> request_response::Codec for Codec<Req, Resp>
where
    Req: Serialize + DeserializeOwned + Send + Sync + 'static,
    Resp: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Frame<Req>;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame<Req>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let Some(bytes) = read_bounded(io, self.request_max).await? else {
            return Ok(Frame::TooBig {
                limit: self.request_max,
            });
        };
        Ok(match cbor4ii::serde::from_slice(&bytes) {
            Ok(req) => Frame::Ok(req),
            Err(e) => Frame::Malformed(e.to_string()),
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_bounded(io, self.response_max)
            .await?
            .ok_or(ResponseError::TooBig {
                limit: self.response_max,
            })?;
        cbor4ii::serde::from_slice(&bytes).map_err(|e| {
            ResponseError::Malformed {
                reason: e.to_string(),
            }
            .into()
        })
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Frame<Req>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match req {
            Frame::Ok(req) => write_cbor(io, &req).await,
            #[cfg(feature = "testing")]
            other => write_garbage(io, other).await,
            #[cfg(not(feature = "testing"))]
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only test builds send malformed or oversized requests",
            )),
        }
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_cbor(io, &res).await
    }
}

/// Sends garbage on purpose, for tests of the receiving side: raw bytes for `Malformed`,
/// one byte over the limit for `TooBig`.
#[cfg(feature = "testing")]
async fn write_garbage<T, R>(io: &mut T, frame: Frame<R>) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    match frame {
        Frame::Ok(_) => Ok(()),
        Frame::Malformed(raw) => {
            io.write_all(raw.as_bytes()).await?;
            io.close().await
        }
        Frame::TooBig { limit } => {
            let junk = vec![0u8; usize::try_from(limit).unwrap_or(usize::MAX - 1) + 1];
            io.write_all(&junk).await?;
            io.close().await
        }
    }
}
