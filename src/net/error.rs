//! Why the network could not start, and why a request got no response.

use std::io;

use libp2p::{noise, Multiaddr, TransportError};

use crate::protocol::ResponseError;

/// Why the network could not start or a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bootstrap address without its peer id.
    #[error("bootstrap address {0} must end in /p2p/<peer id>")]
    BootstrapWithoutPeerId(Multiaddr),
    /// Listening failed: the address is in use, not available on this host, or of a transport
    /// this node does not run.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// What the transport said.
        #[source]
        source: TransportError<io::Error>,
    },
    /// Building the transport or behaviour failed.
    #[error("cannot build the network")]
    Build(#[from] BuildError),
}

/// Which part of the Swarm could not be built. Each wraps what the lower layer reported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The noise handshake configuration for TCP (derived from the node key) failed.
    #[error("cannot set up noise encryption for TCP")]
    Noise(#[source] noise::Error),
    /// The system DNS configuration could not be read.
    #[error("cannot set up DNS resolution")]
    Dns(#[source] io::Error),
    /// The mDNS sockets could not be opened (turn mDNS off with `--no-mdns`).
    #[error("cannot start mDNS")]
    Mdns(#[source] io::Error),
}

/// Why an outbound request got no response. For `Timeout` and `ConnectionClosed` it is unknown
/// whether the peer processed the request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The peer could not be reached.
    #[error("could not dial peer")]
    Dial,
    /// No response within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// The connection closed before the response arrived.
    #[error("connection closed")]
    ConnectionClosed,
    /// The peer does not speak the protocol.
    #[error("peer does not support the protocol")]
    UnsupportedProtocols,
    /// The stream failed, or the response was over the limit or did not decode.
    #[error("stream error: {0}")]
    Io(StreamError),
    /// The network task is gone.
    #[error("network is shut down")]
    Shutdown,
}

/// What went wrong on a request's stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The peer answered, but not with a response this node accepts: the peer misbehaves or
    /// speaks another version.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// Reading or writing the stream failed (reset, closed early, ...).
    #[error("{message} ({kind})")]
    Io {
        /// The I/O error kind.
        kind: io::ErrorKind,
        /// What the stream reported.
        message: String,
    },
}

impl From<io::Error> for StreamError {
    /// Recovers the codec's typed [`ResponseError`] when the error carries one.
    fn from(e: io::Error) -> Self {
        if let Some(response) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ResponseError>())
        {
            return Self::Response(response.clone());
        }
        Self::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_errors_survive_the_io_error() {
        let too_big: io::Error = ResponseError::TooBig { limit: 7 }.into();
        let e = RequestError::Io(too_big.into());
        assert_eq!(
            e,
            RequestError::Io(StreamError::Response(ResponseError::TooBig { limit: 7 }))
        );
        assert_eq!(
            e.to_string(),
            "stream error: response over the limit of 7 bytes"
        );
        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "stream reset");
        assert_eq!(
            StreamError::from(reset).to_string(),
            "stream reset (connection reset)"
        );
    }
}
