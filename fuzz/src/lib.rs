//! Shared checks of the fuzz targets in `fuzz_targets/`.
//!
//! The wire targets all read through [`mule::protocol::Codec`], the path a node's network
//! layer uses, with each protocol's own size limits, so a crash here is a crash a peer could
//! cause. Panicking is how a target reports a broken property, so `expect`/`assert!` are the
//! point here, not a shortcut.

use std::fmt::Debug;

use futures::executor::block_on;
use futures::io::Cursor;
use libp2p::request_response::Codec as _;
use libp2p::StreamProtocol;
use mule::protocol::{Codec, Frame, ResponseError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A wire type the codec carries.
pub trait Wire: Serialize + DeserializeOwned + PartialEq + Debug + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + PartialEq + Debug + Send + Sync + 'static> Wire for T {}

fn proto() -> StreamProtocol {
    StreamProtocol::new("/mule/fuzz/1")
}

/// Feeds `data` to the codec both as a request and as a response of a protocol with these
/// types and limits, and checks:
/// - input over the limit is refused as too big, and only such input;
/// - whatever decodes re-encodes within the limit (a node can pass on what it accepted),
///   decodes back to an equal value, and encodes to the same bytes again.
///
/// Returns the decoded request and response, for per-protocol checks.
pub fn wire<Req: Wire, Resp: Wire>(
    data: &[u8],
    request_max: u64,
    response_max: u64,
) -> (Option<Req>, Option<Resp>) {
    let mut codec = Codec::<Req, Resp>::new(request_max, response_max);
    let len = data.len() as u64;

    let request = match block_on(codec.read_request(&proto(), &mut Cursor::new(data.to_vec()))) {
        Err(e) => panic!("reading a request from memory failed: {e}"),
        Ok(Frame::TooBig { limit }) => {
            assert_eq!(limit, request_max);
            assert!(len > request_max, "{len} bytes refused as too big");
            None
        }
        Ok(Frame::Malformed(_)) => {
            assert!(len <= request_max, "{len} bytes over the limit were parsed");
            None
        }
        Ok(Frame::Ok(req)) => {
            assert!(len <= request_max, "{len} bytes over the limit were parsed");
            request_round_trip(&mut codec, &req, request_max);
            Some(req)
        }
    };

    let response = match block_on(codec.read_response(&proto(), &mut Cursor::new(data.to_vec()))) {
        Ok(resp) => {
            assert!(
                len <= response_max,
                "{len} bytes over the limit were parsed"
            );
            response_round_trip(&mut codec, &resp, response_max);
            Some(resp)
        }
        Err(e) => {
            match e.get_ref().and_then(|e| e.downcast_ref::<ResponseError>()) {
                Some(ResponseError::TooBig { limit }) => {
                    assert_eq!(*limit, response_max);
                    assert!(len > response_max, "{len} bytes refused as too big");
                }
                Some(ResponseError::Malformed { .. }) => assert!(len <= response_max),
                other => panic!("response error without a typed reason: {e} ({other:?})"),
            }
            None
        }
    };
    (request, response)
}

fn request_round_trip<Req: Wire, Resp: Wire>(codec: &mut Codec<Req, Resp>, req: &Req, max: u64) {
    let write = |codec: &mut Codec<Req, Resp>| {
        let mut out = Cursor::new(Vec::new());
        let value = cbor4ii::serde::from_slice::<Req>(&to_cbor(req)).expect("own encoding decodes");
        block_on(codec.write_request(&proto(), &mut out, Frame::Ok(value)))
            .expect("writing to memory works");
        out.into_inner()
    };
    let bytes = write(codec);
    assert!(
        bytes.len() as u64 <= max,
        "a request that decoded re-encodes to {} bytes, over the limit of {max}",
        bytes.len()
    );
    match block_on(codec.read_request(&proto(), &mut Cursor::new(bytes.clone()))) {
        Ok(Frame::Ok(back)) => assert_eq!(&back, req),
        other => panic!("a re-encoded request does not decode: {other:?}"),
    }
    assert_eq!(write(codec), bytes, "encoding is not deterministic");
}

fn response_round_trip<Req: Wire, Resp: Wire>(codec: &mut Codec<Req, Resp>, resp: &Resp, max: u64) {
    let write = |codec: &mut Codec<Req, Resp>| {
        let mut out = Cursor::new(Vec::new());
        let value =
            cbor4ii::serde::from_slice::<Resp>(&to_cbor(resp)).expect("own encoding decodes");
        block_on(codec.write_response(&proto(), &mut out, value)).expect("writing to memory works");
        out.into_inner()
    };
    let bytes = write(codec);
    assert!(
        bytes.len() as u64 <= max,
        "a response that decoded re-encodes to {} bytes, over the limit of {max}",
        bytes.len()
    );
    match block_on(codec.read_response(&proto(), &mut Cursor::new(bytes.clone()))) {
        Ok(back) => assert_eq!(&back, resp),
        Err(e) => panic!("a re-encoded response does not decode: {e}"),
    }
    assert_eq!(write(codec), bytes, "encoding is not deterministic");
}

/// CBOR of a value the way the codec writes it.
pub fn to_cbor<T: Serialize>(value: &T) -> Vec<u8> {
    cbor4ii::serde::to_vec(Vec::new(), value).expect("encoding into memory works")
}

/// The instant the chain vectors of `protocols/vectors/names-1.json` are checked at.
pub const VECTOR_NOW_MS: u64 = 1_767_312_000_000;

/// The key of the vectors' identity with this seed byte (`0x43` is the root).
pub fn vector_key(seed: u8) -> [u8; 32] {
    mule::identity::Identity::from_seed([seed; 32]).public_key()
}

/// The vectors' roots: `campfire` = the key of seed `0x43 * 32`.
pub fn vector_roots() -> mule::trust::Roots {
    let mut roots = mule::trust::Roots::default();
    let name = "campfire".parse().expect("a valid segment");
    roots
        .insert(name, vector_key(0x43))
        .expect("one root cannot clash");
    roots
}

/// What must hold of any chain `verify` accepted at `now`, re-derived from its certificates:
/// every certificate correctly signed, each issued by the next one's subject, the last by a
/// trusted root, all valid at `now`; the name is the root's followed by the segments from the
/// root side down; the end is the earliest `not_after_ms`; the restrictions the strictest.
pub fn check_verified(
    certs: &[mule::trust::Certificate],
    roots: &mule::trust::Roots,
    now: u64,
    verified: &mule::trust::VerifiedName,
) {
    assert!(!certs.is_empty());
    for pair in certs.windows(2) {
        assert_eq!(pair[0].issuer, pair[1].subject, "broken link accepted");
    }
    let last = certs.last().expect("not empty");
    let root = roots
        .name_of(&last.issuer)
        .expect("untrusted root accepted");
    let mut name = root.as_str().to_owned();
    let mut restrictions = mule::trust::Restrictions::default();
    for cert in certs.iter().rev() {
        assert!(cert.signature_ok(), "bad signature accepted");
        assert!(
            cert.not_before_ms <= now && now < cert.not_after_ms,
            "window not held"
        );
        name.push('/');
        name.push_str(cert.name.as_str());
        restrictions = restrictions.tighten(cert.restrictions().expect("bad caveat accepted"));
    }
    assert_eq!(verified.name.as_str(), name);
    assert_eq!(
        Some(verified.not_after_ms),
        certs.iter().map(|c| c.not_after_ms).min()
    );
    assert_eq!(verified.restrictions, restrictions);
}

/// The peer id of the key of seed `0x41 * 32` (deriving it for every input is slow).
pub fn peer_a() -> libp2p::PeerId {
    static PEER: std::sync::OnceLock<libp2p::PeerId> = std::sync::OnceLock::new();
    *PEER.get_or_init(|| mule::identity::Identity::from_seed([0x41; 32]).peer_id())
}

/// The peer id of the key of seed `0x4f * 32`, standing for this node.
pub fn peer_own() -> libp2p::PeerId {
    static PEER: std::sync::OnceLock<libp2p::PeerId> = std::sync::OnceLock::new();
    *PEER.get_or_init(|| mule::identity::Identity::from_seed([0x4f; 32]).peer_id())
}

/// A caller with the key of [`peer_a`] and these names.
pub fn caller(names: &[&str]) -> mule::trust::Caller {
    mule::trust::Caller {
        peer: peer_a(),
        names: names
            .iter()
            .map(|n| n.parse().expect("valid name"))
            .collect(),
    }
}
