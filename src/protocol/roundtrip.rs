//! Property round trips of every wire type through the codec: arbitrary requests and responses
//! of diff, push, repo and names are written and read back equal, and encode within the
//! codec's limits wherever the type bounds their size. The fullest values a type allows are
//! checked against the limits separately, since random values are never the largest.

use futures::executor::block_on;
use futures::io::Cursor;
use libp2p::request_response::Codec as _;
use libp2p::StreamProtocol;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_bytes::ByteBuf;

use super::*;
use crate::message::tests::arb_header;
use crate::message::{CertificateChain, Header, Limits, MessageId};

type Wire = dyn std::error::Error + Send + Sync;

fn proto() -> StreamProtocol {
    StreamProtocol::new("/mule/test/1")
}

/// Writes `req` as the codec does, reads it back, and returns the bytes.
fn request_round_trip<Req, Resp>(
    codec: &mut Codec<Req, Resp>,
    req: &Req,
) -> Result<usize, Box<Wire>>
where
    Req: serde::Serialize + serde::de::DeserializeOwned + Clone + PartialEq + std::fmt::Debug,
    Req: Send + Sync + 'static,
    Resp: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let mut out = Cursor::new(Vec::new());
    block_on(codec.write_request(&proto(), &mut out, Frame::Ok(req.clone())))?;
    let bytes = out.into_inner();
    match block_on(codec.read_request(&proto(), &mut Cursor::new(bytes.clone())))? {
        Frame::Ok(back) if &back == req => Ok(bytes.len()),
        other => Err(format!("{req:?} came back as {other:?}").into()),
    }
}

/// Writes `resp` as the codec does, reads it back, and returns the bytes.
fn response_round_trip<Req, Resp>(
    codec: &mut Codec<Req, Resp>,
    resp: &Resp,
) -> Result<usize, Box<Wire>>
where
    Req: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    Resp: serde::Serialize + serde::de::DeserializeOwned + Clone + PartialEq + std::fmt::Debug,
    Resp: Send + Sync + 'static,
{
    let mut out = Cursor::new(Vec::new());
    block_on(codec.write_response(&proto(), &mut out, resp.clone()))?;
    let bytes = out.into_inner();
    let back = block_on(codec.read_response(&proto(), &mut Cursor::new(bytes.clone())))?;
    if &back != resp {
        return Err(format!("{resp:?} came back as {back:?}").into());
    }
    Ok(bytes.len())
}

fn diff_codec() -> Codec<diff::Request, diff::Response> {
    Codec::new(diff::REQUEST_MAX, diff::RESPONSE_MAX)
}

fn push_codec() -> Codec<push::Request, push::Response> {
    Codec::new(push::REQUEST_MAX, push::RESPONSE_MAX)
}

fn repo_codec() -> Codec<repo::Request, repo::Response> {
    Codec::new(repo::REQUEST_MAX, repo::RESPONSE_MAX)
}

fn names_codec() -> Codec<names::Request, names::Response> {
    Codec::new(names::REQUEST_MAX, names::RESPONSE_MAX)
}

fn arb_id() -> impl Strategy<Value = MessageId> {
    any::<[u8; 32]>().prop_map(MessageId)
}

fn arb_code() -> impl Strategy<Value = Code> {
    prop_oneof![
        Just(Code::AlreadySeen),
        Just(Code::Busy),
        Just(Code::ContentMismatch),
        Just(Code::Expired),
        Just(Code::NotYetValid),
        any::<u64>().prop_map(|have| Code::IncorrectOffset { have }),
        Just(Code::InvalidSignature),
        Just(Code::NoRoute),
        Just(Code::RateLimitExceeded),
        Just(Code::TooBig),
        Just(Code::TooManyHops),
        Just(Code::NotAuthorized),
        Just(Code::BadRequest),
        Just(Code::NotFound),
    ]
}

/// Errors as this node builds them: any code, any text, cut to the wire limit.
fn arb_error() -> impl Strategy<Value = WireError> {
    (arb_code(), ".{0,600}").prop_map(|(code, message)| WireError::new(code, message))
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

fn arb_cursor() -> impl Strategy<Value = repo::Cursor> {
    (any::<u64>(), arb_id()).prop_map(|(created_ms, id)| repo::Cursor { created_ms, id })
}

fn arb_chains() -> impl Strategy<Value = Vec<CertificateChain>> {
    vec(
        vec(
            arb_bytes(Limits::MAX_CERTIFICATE_LEN).prop_map(ByteBuf::from),
            0..=Limits::MAX_CHAIN_LEN,
        ),
        0..=Limits::MAX_CHAINS,
    )
}

fn arb_whole() -> impl Strategy<Value = push::Whole> {
    (arb_header(), arb_bytes(512)).prop_map(|(header, data)| push::Whole { header, data })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn diff_requests_round_trip(ids in vec(arb_id(), 0..=diff::MAX_IDS), claim in any::<bool>()) {
        let len = request_round_trip(&mut diff_codec(), &diff::Request { ids, claim })
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(len as u64 <= diff::REQUEST_MAX, "{} bytes", len);
    }

    #[test]
    fn diff_responses_round_trip(resp in prop_oneof![
        vec(any::<bool>(), 0..=diff::MAX_IDS).prop_map(diff::Response::Has),
        vec(0u8..3, 0..=diff::MAX_IDS)
            .prop_map(|s| diff::Response::States(s.into_iter().map(diff::State::from).collect())),
        arb_error().prop_map(diff::Response::Error),
    ]) {
        let len = response_round_trip(&mut diff_codec(), &resp)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(len as u64 <= diff::RESPONSE_MAX, "{} bytes", len);
    }

    #[test]
    fn push_requests_round_trip(req in prop_oneof![
        arb_id().prop_map(|id| push::Request::ResumeOffset { id }),
        (arb_header(), any::<u64>(), arb_bytes(4096)).prop_map(|(header, offset, data)| {
            push::Request::Chunk { header: Box::new(header), offset, data }
        }),
        vec(arb_whole(), 0..4).prop_map(push::Request::Batch),
    ]) {
        let len = request_round_trip(&mut push_codec(), &req)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // A chunk's size is bounded by its type (header bounds + MAX_CHUNK); a batch's is not.
        prop_assert!(len as u64 <= push::REQUEST_MAX, "{} bytes", len);
    }

    #[test]
    fn push_responses_round_trip(resp in prop_oneof![
        any::<u64>().prop_map(push::Response::Offset),
        vec(proptest::option::of(arb_error()), 0..=push::MAX_BATCH).prop_map(push::Response::Batch),
        arb_error().prop_map(push::Response::Error),
    ]) {
        let len = response_round_trip(&mut push_codec(), &resp)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(len as u64 <= push::RESPONSE_MAX, "{} bytes", len);
    }

    #[test]
    fn repo_requests_round_trip(req in prop_oneof![
        (proptest::option::of(arb_cursor()), any::<u32>())
            .prop_map(|(after, limit)| repo::Request::Manifest { after, limit }),
        (arb_id(), any::<u64>(), any::<u64>())
            .prop_map(|(id, offset, length)| repo::Request::Pull { id, offset, length }),
    ]) {
        let len = request_round_trip(&mut repo_codec(), &req)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(len as u64 <= repo::REQUEST_MAX, "{} bytes", len);
    }

    #[test]
    fn repo_responses_round_trip(resp in prop_oneof![
        (vec(arb_header(), 0..4), proptest::option::of(arb_cursor()))
            .prop_map(|(headers, next)| repo::Response::Manifest { headers, next }),
        arb_bytes(4096).prop_map(repo::Response::Chunk),
        arb_error().prop_map(repo::Response::Error),
    ]) {
        let len = response_round_trip(&mut repo_codec(), &resp)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(len as u64 <= repo::RESPONSE_MAX, "{} bytes", len);
    }

    #[test]
    fn names_bodies_round_trip(chains in arb_chains()) {
        let body = names::Chains::new(chains).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let len = request_round_trip(&mut names_codec(), &body)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(len as u64 <= names::REQUEST_MAX, "{} bytes", len);
        let len = response_round_trip(&mut names_codec(), &body)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(len as u64 <= names::RESPONSE_MAX, "{} bytes", len);
    }
}

/// The largest header the format bounds allow: longest recipient, every hop and certificate at
/// its largest, every integer at its widest encoding.
fn fullest_header() -> Header {
    let cert = ByteBuf::from(vec![0xc5; Limits::MAX_CERTIFICATE_LEN]);
    Header {
        id: MessageId([0xff; 32]),
        sender: [0xff; 32],
        chains: vec![vec![cert; Limits::MAX_CHAIN_LEN]; Limits::MAX_CHAINS],
        recipient: "r".repeat(Limits::MAX_RECIPIENT_LEN),
        created_ms: u64::MAX,
        lifespan_ms: u64::MAX,
        length: u64::MAX,
        sha256: [0xff; 32],
        signature: [0xff; 64],
        hops: vec![ByteBuf::from(vec![0xff; Limits::MAX_HOP_LEN]); Limits::MAX_HOPS],
    }
}

/// The longest error this node writes: the widest code and a message at the wire limit.
fn longest_error() -> WireError {
    WireError::new(
        Code::IncorrectOffset { have: u64::MAX },
        "x".repeat(error::MAX_MESSAGE_LEN),
    )
}

#[test]
fn the_fullest_header_fits_its_encoded_limit() -> anyhow::Result<()> {
    let len = fullest_header().encode()?.len();
    assert!(len <= Header::MAX_ENCODED_LEN, "{len} bytes");
    Ok(())
}

#[test]
fn the_fullest_values_of_bounded_types_fit_the_codec_limits() -> anyhow::Result<()> {
    let id = MessageId([0xff; 32]);
    let cursor = repo::Cursor {
        created_ms: u64::MAX,
        id,
    };
    let fail = |e: Box<Wire>| anyhow::anyhow!("{e}");

    let len = request_round_trip(
        &mut diff_codec(),
        &diff::Request::claiming(vec![id; diff::MAX_IDS]),
    )
    .map_err(fail)?;
    assert!(len as u64 <= diff::REQUEST_MAX, "diff request: {len}");
    for resp in [
        diff::Response::Has(vec![true; diff::MAX_IDS]),
        diff::Response::States(vec![diff::State::Claimed; diff::MAX_IDS]),
        diff::Response::Error(longest_error()),
    ] {
        let len = response_round_trip(&mut diff_codec(), &resp).map_err(fail)?;
        assert!(len as u64 <= diff::RESPONSE_MAX, "diff response: {len}");
    }

    let chunk = push::Request::Chunk {
        header: Box::new(fullest_header()),
        offset: u64::MAX,
        data: vec![0xff; push::MAX_CHUNK],
    };
    let len = request_round_trip(&mut push_codec(), &chunk).map_err(fail)?;
    assert!(len as u64 <= push::REQUEST_MAX, "push chunk: {len}");
    for resp in [
        push::Response::Batch(vec![Some(longest_error()); push::MAX_BATCH]),
        push::Response::Offset(u64::MAX),
        push::Response::Error(longest_error()),
    ] {
        let len = response_round_trip(&mut push_codec(), &resp).map_err(fail)?;
        assert!(len as u64 <= push::RESPONSE_MAX, "push response: {len}");
    }

    for req in [
        repo::Request::Manifest {
            after: Some(cursor),
            limit: u32::MAX,
        },
        repo::Request::Pull {
            id,
            offset: u64::MAX,
            length: u64::MAX,
        },
    ] {
        let len = request_round_trip(&mut repo_codec(), &req).map_err(fail)?;
        assert!(len as u64 <= repo::REQUEST_MAX, "repo request: {len}");
    }
    for resp in [
        repo::Response::Manifest {
            headers: vec![fullest_header(); repo::MAX_PAGE as usize],
            next: Some(cursor),
        },
        repo::Response::Chunk(vec![0xff; repo::MAX_PULL as usize]),
        repo::Response::Error(longest_error()),
    ] {
        let len = response_round_trip(&mut repo_codec(), &resp).map_err(fail)?;
        assert!(len as u64 <= repo::RESPONSE_MAX, "repo response: {len}");
    }
    Ok(())
}
