use futures::io::Cursor;
use libp2p::request_response::Codec as _;
use libp2p::StreamProtocol;
use proptest::prelude::*;

use super::*;
use crate::identity::Identity;
use crate::message::{Draft, MessageId};

fn proto() -> StreamProtocol {
    StreamProtocol::new(push::PROTOCOL)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

fn push_codec() -> Codec<push::Request, push::Response> {
    Codec::new(push::REQUEST_MAX, push::RESPONSE_MAX)
}

#[test]
fn push_request_round_trips_through_codec() -> anyhow::Result<()> {
    let id = Identity::from_seed([2; 32]);
    let data = vec![7u8; 1000];
    let header = Draft {
        recipient: "*".into(),
        created_ms: 1,
        lifespan_ms: 2,
        chains: vec![],
    }
    .sign(&id, &data)?;
    let req = push::Request::Chunk {
        header: Box::new(header),
        offset: 0,
        data,
    };
    let mut codec = push_codec();
    let mut wire = Cursor::new(Vec::new());
    block_on(codec.write_request(&proto(), &mut wire, Frame::Ok(req.clone())))?;
    let bytes = wire.into_inner();
    // Byte strings, not integer arrays: the 1000-byte chunk costs ~1000 bytes.
    assert!(bytes.len() < 1000 + 600, "{} bytes", bytes.len());
    let back = block_on(codec.read_request(&proto(), &mut Cursor::new(bytes)))?;
    assert!(matches!(back, Frame::Ok(r) if r == req));
    Ok(())
}

#[test]
fn oversized_and_malformed_requests_reach_the_handler() -> anyhow::Result<()> {
    let mut codec: Codec<diff::Request, diff::Response> = Codec::new(64, 64);
    let big = vec![0u8; 65];
    let frame = block_on(codec.read_request(&proto(), &mut Cursor::new(big)))?;
    assert!(matches!(frame, Frame::TooBig { limit: 64 }));
    let frame = block_on(codec.read_request(&proto(), &mut Cursor::new(vec![0xa1, 0x61])))?;
    assert!(matches!(frame, Frame::Malformed(_)));
    // Exactly at the limit is fine (if it decodes).
    let ok = cbor4ii::serde::to_vec(
        Vec::new(),
        &diff::Request {
            ids: vec![MessageId([1; 32])],
        },
    )?;
    let frame = block_on(codec.read_request(&proto(), &mut Cursor::new(ok)))?;
    assert!(matches!(frame, Frame::Ok(r) if r.ids.len() == 1));
    // Responses over the limit are an error, not a buffer that grows.
    let err = block_on(codec.read_response(&proto(), &mut Cursor::new(vec![0u8; 65]))).err();
    assert!(err
        .map(|e| e.to_string())
        .unwrap_or_default()
        .contains("over the limit"));
    Ok(())
}

/// The wire forms other implementations match on (also in `protocols/errors.md`).
#[test]
fn wire_forms_are_stable() -> anyhow::Result<()> {
    let busy = push::Response::Error(WireError::new(Code::Busy, "x"));
    assert_eq!(
        hex::encode(cbor4ii::serde::to_vec(Vec::new(), &busy)?),
        // {"error": {"code": "busy", "message": "x"}}
        "a1656572726f72a264636f64656462757379676d6573736167656178"
    );
    let offset = push::Response::Error(WireError::new(Code::IncorrectOffset { have: 5 }, ""));
    assert_eq!(
        hex::encode(cbor4ii::serde::to_vec(Vec::new(), &offset)?),
        // {"error": {"code": {"incorrect-offset": {"have": 5}}, "message": ""}}
        "a1656572726f72a264636f6465a170696e636f72726563742d6f6666736574a164686176650567\
         6d65737361676560"
    );
    let ok = push::Response::Offset(1024);
    assert_eq!(
        hex::encode(cbor4ii::serde::to_vec(Vec::new(), &ok)?),
        "a1666f6666736574190400"
    );
    let has = diff::Response::Has(vec![true, false]);
    assert_eq!(
        hex::encode(cbor4ii::serde::to_vec(Vec::new(), &has)?),
        "a163686173 82f5f4".replace(' ', "")
    );
    Ok(())
}

#[test]
fn long_error_messages_are_cut_at_a_char_boundary() {
    let e = WireError::new(Code::BadRequest, "é".repeat(400));
    assert!(e.message.len() <= error::MAX_MESSAGE_LEN);
    assert!(e.message.chars().all(|c| c == 'é'));
}

#[test]
fn fatal_codes() {
    assert!(Code::InvalidSignature.is_fatal());
    assert!(!Code::Busy.is_fatal());
    assert!(!Code::IncorrectOffset { have: 1 }.is_fatal());
    assert!(!Code::AlreadySeen.is_fatal());
}

proptest! {
    #[test]
    fn request_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut push = push_codec();
        let _ = block_on(push.read_request(&proto(), &mut Cursor::new(bytes.clone())));
        let mut repo: Codec<repo::Request, repo::Response> = Codec::new(repo::REQUEST_MAX, repo::RESPONSE_MAX);
        let _ = block_on(repo.read_request(&proto(), &mut Cursor::new(bytes.clone())));
        let _ = block_on(repo.read_response(&proto(), &mut Cursor::new(bytes)));
    }
}
