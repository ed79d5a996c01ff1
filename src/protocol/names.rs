//! `/mule/names/1`: two peers tell each other the certificate chains that name them.
//! Spec: `protocols/names-exchange.md` (the certificates themselves: `protocols/names.md`).
//!
//! Request and response have the same shape, [`Chains`]: a version and a list of certificate
//! chains, each a list of opaque certificates, leaf first. The bounds are those of a message
//! header's `chains` field ([`message::check_chains`](crate::message::check_chains)), and they
//! are enforced while decoding: a [`Chains`] value that exists is always within them.
//!
//! # Discrepancies
//!
//! None known.

use serde::{Deserialize, Serialize};

use crate::message::{check_chains, CertificateChain, Limits, ValidationError};

/// Protocol name.
pub const PROTOCOL: &str = "/mule/names/1";
/// The only version of the exchange body this node speaks (the `v` field).
pub const VERSION: u64 = 1;
/// Largest request: every chain full of the largest certificates (each with its 3-byte CBOR
/// head), plus 1 KiB for the map, keys and array heads.
pub const REQUEST_MAX: u64 =
    (Limits::MAX_CHAINS * Limits::MAX_CHAIN_LEN * (Limits::MAX_CERTIFICATE_LEN + 3) + 1024) as u64;
/// Largest response: the same shape as a request.
pub const RESPONSE_MAX: u64 = REQUEST_MAX;

/// A names-exchange body: the certificate chains that name the sending node.
///
/// Built by [`Chains::new`] or decoded; either way the version is [`VERSION`] and the chains
/// are within the header bounds, so a receiver never holds an oversized or unknown body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Unchecked")]
pub struct Chains {
    v: u64,
    chains: Vec<CertificateChain>,
}

/// What the requester sends: its own chains.
pub type Request = Chains;
/// What the responder answers: its own chains.
pub type Response = Chains;

/// The wire form before validation.
#[derive(Deserialize)]
struct Unchecked {
    v: u64,
    chains: Vec<CertificateChain>,
}

impl TryFrom<Unchecked> for Chains {
    type Error = Error;

    fn try_from(raw: Unchecked) -> Result<Self, Error> {
        if raw.v != VERSION {
            return Err(Error::UnsupportedVersion { got: raw.v });
        }
        Self::new(raw.chains)
    }
}

impl Chains {
    /// A body carrying `chains`, checked against the header bounds.
    pub fn new(chains: Vec<CertificateChain>) -> Result<Self, Error> {
        check_chains(&chains)?;
        Ok(Self { v: VERSION, chains })
    }

    /// A body without chains: what a node without names sends.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            v: VERSION,
            chains: Vec::new(),
        }
    }

    /// The chains, leaf certificate first in each.
    #[must_use]
    pub fn chains(&self) -> &[CertificateChain] {
        &self.chains
    }

    /// Takes the chains out.
    #[must_use]
    pub fn into_chains(self) -> Vec<CertificateChain> {
        self.chains
    }
}

/// Why a names-exchange body was refused. The spec's rule for both sides: a peer whose body is
/// refused is treated as nameless.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body's `v` is not [`VERSION`].
    #[error("names exchange version {got} is not supported; this node speaks version {VERSION}")]
    UnsupportedVersion {
        /// The version received.
        got: u64,
    },
    /// More chains, longer chains or larger certificates than a header may carry.
    #[error(transparent)]
    BadChains(#[from] ValidationError),
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;
    use libp2p::StreamProtocol;
    use serde_bytes::ByteBuf;

    use super::*;
    use crate::protocol::{Codec, Frame, ResponseError};

    fn codec() -> Codec<Request, Response> {
        Codec::new(REQUEST_MAX, RESPONSE_MAX)
    }

    fn proto() -> StreamProtocol {
        StreamProtocol::new(PROTOCOL)
    }

    fn cert(len: usize) -> ByteBuf {
        ByteBuf::from(vec![0xc5; len])
    }

    /// The largest body the bounds allow.
    fn fullest() -> Vec<CertificateChain> {
        let chain = vec![cert(Limits::MAX_CERTIFICATE_LEN); Limits::MAX_CHAIN_LEN];
        vec![chain; Limits::MAX_CHAINS]
    }

    /// Encodes a body as a peer might, bypassing [`Chains::new`].
    fn raw(v: u64, chains: &[CertificateChain]) -> anyhow::Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Raw<'a> {
            v: u64,
            chains: &'a [CertificateChain],
        }
        Ok(cbor4ii::serde::to_vec(Vec::new(), &Raw { v, chains })?)
    }

    fn read_request(bytes: Vec<u8>) -> anyhow::Result<Frame<Request>> {
        Ok(futures::executor::block_on(
            codec().read_request(&proto(), &mut Cursor::new(bytes)),
        )?)
    }

    #[test]
    fn the_fullest_body_fits_the_limit_and_round_trips() -> anyhow::Result<()> {
        let body = Chains::new(fullest())?;
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &body)?;
        assert!(bytes.len() as u64 <= REQUEST_MAX, "{} bytes", bytes.len());
        assert!(matches!(read_request(bytes)?, Frame::Ok(back) if back == body));
        Ok(())
    }

    #[test]
    fn bodies_over_the_bounds_are_refused_with_the_reason() -> anyhow::Result<()> {
        let mut too_many = fullest();
        too_many.push(vec![cert(1)]);
        let mut too_long = fullest();
        too_long[0].push(cert(1));
        let mut too_large = vec![vec![cert(1)]];
        too_large[0][0] = cert(Limits::MAX_CERTIFICATE_LEN + 1);
        for chains in [too_many, too_long, too_large] {
            let err = Chains::new(chains.clone()).err();
            assert!(matches!(
                err,
                Some(Error::BadChains(ValidationError::BadCertificates { .. }))
            ));
            match read_request(raw(1, &chains)?)? {
                Frame::Malformed(why) => {
                    assert!(why.contains("certificate chains over the limit"), "{why}")
                }
                other => anyhow::bail!("accepted or misread: {other:?}"),
            }
        }
        Ok(())
    }

    #[test]
    fn other_versions_are_refused() -> anyhow::Result<()> {
        match read_request(raw(2, &[])?)? {
            Frame::Malformed(why) => assert!(
                why.contains("names exchange version 2 is not supported"),
                "{why}"
            ),
            other => anyhow::bail!("accepted or misread: {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn a_bad_response_is_a_typed_error() -> anyhow::Result<()> {
        let bytes = raw(1, &[vec![cert(Limits::MAX_CERTIFICATE_LEN + 1)]])?;
        let err =
            futures::executor::block_on(codec().read_response(&proto(), &mut Cursor::new(bytes)))
                .err()
                .ok_or_else(|| anyhow::anyhow!("oversized certificate accepted"))?;
        let typed = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<ResponseError>());
        assert!(
            matches!(typed, Some(ResponseError::Malformed { reason }) if reason.contains("1025")),
            "{err}"
        );
        Ok(())
    }
}
