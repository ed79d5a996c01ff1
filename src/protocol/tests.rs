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
            claim: false,
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
    assert!(!Code::StorageFull.is_fatal());
}

/// `storage-full` is a plain kebab-case string, like every code without data.
#[test]
fn storage_full_wire_form() -> anyhow::Result<()> {
    assert_eq!(Code::StorageFull.name(), "storage-full");
    assert_eq!(
        hex::encode(cbor4ii::serde::to_vec(Vec::new(), &Code::StorageFull)?),
        // "storage-full"
        "6c73746f726167652d66756c6c"
    );
    let back: Code = cbor4ii::serde::from_slice(&hex::decode("6c73746f726167652d66756c6c")?)?;
    assert_eq!(back, Code::StorageFull);
    Ok(())
}

proptest! {
    #[test]
    fn request_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut push = push_codec();
        let _ = block_on(push.read_request(&proto(), &mut Cursor::new(bytes.clone())));
        let mut repo: Codec<repo::Request, repo::Response> = Codec::new(repo::REQUEST_MAX, repo::RESPONSE_MAX);
        let _ = block_on(repo.read_request(&proto(), &mut Cursor::new(bytes.clone())));
        let _ = block_on(repo.read_response(&proto(), &mut Cursor::new(bytes.clone())));
        let mut names: Codec<names::Request, names::Response> =
            Codec::new(names::REQUEST_MAX, names::RESPONSE_MAX);
        let _ = block_on(names.read_request(&proto(), &mut Cursor::new(bytes.clone())));
        let _ = block_on(names.read_response(&proto(), &mut Cursor::new(bytes)));
    }
}
mod vectors {
    //! `protocols/vectors/wire-1.json` pins one request or response of every kind, built around
    //! the message of `message-1.json`: if this fails, a wire form changed.

    use serde::Deserialize;
    use serde_bytes::ByteBuf;

    use super::*;
    use crate::message::Header;

    const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/protocols/vectors/wire-1.json");

    #[derive(Deserialize)]
    struct Form {
        name: String,
        protocol: String,
        direction: String,
        hex: String,
    }

    #[derive(Deserialize)]
    struct Vectors {
        forms: Vec<Form>,
    }

    /// The header and content of `message-1.json` (relayed once by the node with seed 0x52*32).
    fn message() -> anyhow::Result<(Header, Vec<u8>)> {
        let content = b"hello from the campfire".to_vec();
        let mut header = Draft {
            recipient: "*".into(),
            created_ms: 1_767_225_600_000,
            lifespan_ms: 86_400_000,
            chains: vec![],
        }
        .sign(&Identity::from_seed([0x4d; 32]), &content)?;
        let relay = Identity::from_seed([0x52; 32]).peer_id();
        header.hops.push(ByteBuf::from(relay.to_bytes()));
        Ok((header, content))
    }

    fn cbor<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
        Ok(hex::encode(cbor4ii::serde::to_vec(Vec::new(), value)?))
    }

    /// Every form, in file order.
    fn build() -> anyhow::Result<Vec<(&'static str, String)>> {
        let (h, content) = message()?;
        let id = h.id;
        let cursor = repo::Cursor {
            created_ms: h.created_ms,
            id,
        };
        Ok(vec![
            (
                "diff-request",
                cbor(&diff::Request {
                    ids: vec![id],
                    claim: false,
                })?,
            ),
            (
                "diff-request-claim",
                cbor(&diff::Request::claiming(vec![id]))?,
            ),
            (
                "diff-response-has",
                cbor(&diff::Response::Has(vec![true, false]))?,
            ),
            (
                "diff-response-states",
                cbor(&diff::Response::States(vec![
                    diff::State::Lacks,
                    diff::State::Has,
                    diff::State::Claimed,
                ]))?,
            ),
            (
                "diff-response-too-big",
                cbor(&diff::Response::Error(WireError::new(
                    Code::TooBig,
                    "request over the limit of 16384 bytes",
                )))?,
            ),
            (
                "push-resume-offset-request",
                cbor(&push::Request::ResumeOffset { id })?,
            ),
            (
                "push-chunk-request",
                cbor(&push::Request::Chunk {
                    header: Box::new(h.clone()),
                    offset: 0,
                    data: content.clone(),
                })?,
            ),
            ("push-response-offset", cbor(&push::Response::Offset(23))?),
            (
                "push-response-already-seen",
                cbor(&push::Response::Error(WireError::new(
                    Code::AlreadySeen,
                    format!("message {id} is already stored"),
                )))?,
            ),
            (
                "push-response-incorrect-offset",
                cbor(&push::Response::Error(WireError::new(
                    Code::IncorrectOffset { have: 5 },
                    "incorrect offset (got 10, have 5)",
                )))?,
            ),
            (
                "push-response-storage-full",
                cbor(&push::Response::Error(WireError::new(
                    Code::StorageFull,
                    "receiver storage is full; retry later",
                )))?,
            ),
            (
                "push-batch-request",
                cbor(&push::Request::Batch(vec![push::Whole {
                    header: h.clone(),
                    data: content.clone(),
                }]))?,
            ),
            (
                "push-response-batch",
                cbor(&push::Response::Batch(vec![
                    None,
                    Some(WireError::new(
                        Code::AlreadySeen,
                        format!("message {id} is already stored"),
                    )),
                ]))?,
            ),
            (
                "push2-open-frame",
                hex::encode(push2::encode_frame(&push2::Open { header: h.clone() })?),
            ),
            (
                "push2-response-offset-frame",
                hex::encode(push2::encode_frame(&push::Response::Offset(23))?),
            ),
            (
                "repo-manifest-request-first",
                cbor(&repo::Request::Manifest {
                    after: None,
                    limit: 128,
                })?,
            ),
            (
                "repo-manifest-request-after",
                cbor(&repo::Request::Manifest {
                    after: Some(cursor),
                    limit: 2,
                })?,
            ),
            (
                "repo-manifest-response",
                cbor(&repo::Response::Manifest {
                    headers: vec![h.clone()],
                    next: None,
                })?,
            ),
            (
                "repo-pull-request",
                cbor(&repo::Request::Pull {
                    id,
                    offset: 6,
                    length: 4,
                })?,
            ),
            (
                "repo-chunk-response",
                cbor(&repo::Response::Chunk(content[6..10].to_vec()))?,
            ),
            (
                "names-request",
                cbor(&names::Chains::new(vec![vec![
                    ByteBuf::from(b"leaf".to_vec()),
                    ByteBuf::from(b"root".to_vec()),
                ]])?)?,
            ),
            ("names-response-empty", cbor(&names::Chains::empty())?),
        ])
    }

    /// Decodes `bytes` as the type of `protocol`/`direction` and encodes it again.
    fn round_trip(protocol: &str, direction: &str, bytes: &[u8]) -> anyhow::Result<String> {
        use cbor4ii::serde::from_slice;
        match (protocol, direction) {
            (diff::PROTOCOL, "request") => cbor(&from_slice::<diff::Request>(bytes)?),
            (diff::PROTOCOL, "response") => cbor(&from_slice::<diff::Response>(bytes)?),
            (push::PROTOCOL, "request") => cbor(&from_slice::<push::Request>(bytes)?),
            (push::PROTOCOL, "response") => cbor(&from_slice::<push::Response>(bytes)?),
            (push2::PROTOCOL, "request") => {
                let open: push2::Open = block_on(push2::read_frame(
                    &mut Cursor::new(bytes.to_vec()),
                    push2::OPEN_MAX,
                ))?;
                Ok(hex::encode(push2::encode_frame(&open)?))
            }
            (push2::PROTOCOL, "response") => {
                let answer: push::Response = block_on(push2::read_frame(
                    &mut Cursor::new(bytes.to_vec()),
                    push2::RESPONSE_MAX,
                ))?;
                Ok(hex::encode(push2::encode_frame(&answer)?))
            }
            (repo::PROTOCOL, "request") => cbor(&from_slice::<repo::Request>(bytes)?),
            (repo::PROTOCOL, "response") => cbor(&from_slice::<repo::Response>(bytes)?),
            (names::PROTOCOL, _) => cbor(&from_slice::<names::Chains>(bytes)?),
            other => anyhow::bail!("unknown protocol/direction {other:?}"),
        }
    }

    #[test]
    #[ignore = "prints the built forms, for regenerating wire-1.json after a deliberate change"]
    fn print_wire_forms() -> anyhow::Result<()> {
        for (name, hex) in build()? {
            println!("FORM {name} {hex}");
        }
        Ok(())
    }

    #[test]
    fn wire_vectors_match() -> anyhow::Result<()> {
        let file: Vectors = serde_json::from_str(&std::fs::read_to_string(PATH)?)?;
        let built = build()?;
        let names: Vec<&str> = file.forms.iter().map(|f| f.name.as_str()).collect();
        let expected: Vec<&str> = built.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, expected);
        for (form, (_, hex)) in file.forms.iter().zip(&built) {
            assert_eq!(&form.hex, hex, "{}", form.name);
            let again = round_trip(&form.protocol, &form.direction, &hex::decode(&form.hex)?)?;
            assert_eq!(&again, hex, "{} does not round-trip", form.name);
        }
        Ok(())
    }
}
