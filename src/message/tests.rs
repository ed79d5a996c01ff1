use proptest::prelude::*;
use serde_bytes::ByteBuf;

use super::*;

const NOW: u64 = 1_764_000_000_000;

fn draft(recipient: &str) -> Draft {
    Draft {
        recipient: recipient.to_owned(),
        created_ms: NOW,
        lifespan_ms: 3_600_000,
        chains: Vec::new(),
    }
}

fn signed(content: &[u8]) -> Header {
    let id = Identity::from_seed([1; 32]);
    let mut header = draft("*")
        .sign(&id, content)
        .ok()
        .unwrap_or_else(|| panic!("sign"));
    header.hops.push(ByteBuf::from(vec![0, 36, 8, 1]));
    header
}

#[test]
fn signed_header_validates() {
    let h = signed(b"hello");
    assert_eq!(h.validate(NOW, &Limits::default()), Ok(()));
    assert_eq!(h.compute_id().ok(), Some(h.id));
}

#[test]
fn hops_are_not_signed() {
    let mut h = signed(b"hello");
    h.hops.push(ByteBuf::from(vec![9; 38]));
    assert_eq!(h.validate(NOW, &Limits::default()), Ok(()));
}

#[test]
fn expiry_and_future() {
    let h = signed(b"x");
    let limits = Limits::default();
    let err = h.validate(NOW + 3_600_001, &limits).err();
    assert_eq!(
        err.as_ref().map(ToString::to_string).as_deref(),
        Some("message expired at 1764003600000 ms (now 1764003600001 ms)")
    );
    assert!(matches!(
        h.validate(NOW - 400_000, &limits),
        Err(ValidationError::FromTheFuture { .. })
    ));
    // Within the skew is fine.
    assert_eq!(h.validate(NOW - 200_000, &limits), Ok(()));
}

#[test]
fn bounds_are_checked() {
    let limits = Limits {
        max_hops: 2,
        ..Limits::default()
    };
    let mut h = signed(b"x");
    h.hops = vec![ByteBuf::from(vec![1; 38]); 3];
    assert_eq!(
        h.validate(NOW, &limits),
        Err(ValidationError::TooManyHops { hops: 3, max: 2 })
    );
    h.hops = vec![ByteBuf::from(vec![1; 65])];
    assert!(matches!(
        h.validate(NOW, &limits),
        Err(ValidationError::BadHop { index: 0, len: 65 })
    ));
    let mut h = signed(b"x");
    h.recipient = "r".repeat(257);
    assert!(matches!(
        h.validate(NOW, &limits),
        Err(ValidationError::BadRecipient { len: 257, .. })
    ));
    let mut h = signed(b"x");
    h.chains = vec![vec![ByteBuf::from(vec![0; 1025])]];
    assert!(matches!(
        h.validate(NOW, &limits),
        Err(ValidationError::BadCertificates { largest: 1025, .. })
    ));
    let small = Limits {
        max_length: 0,
        ..Limits::default()
    };
    assert_eq!(
        signed(b"x")
            .validate(NOW, &small)
            .map_err(|e| e.to_string()),
        Err("content is 1 bytes, over the limit of 0".to_owned())
    );
}

/// Every bit of every signed field, the signature and the id: flipping it must fail validation
/// with the error that names what is wrong.
#[test]
fn every_flipped_bit_is_caught() {
    let limits = Limits::default();
    let base = signed(b"some content");
    let mut checked = 0;
    let flip = |bytes: &mut [u8], bit: usize| bytes[bit / 8] ^= 1 << (bit % 8);
    for bit in 0..256 {
        let mut h = base.clone();
        flip(&mut h.id.0, bit);
        assert!(matches!(
            h.validate(NOW, &limits),
            Err(ValidationError::IdMismatch { .. })
        ));
        let mut h = base.clone();
        flip(&mut h.sha256, bit);
        assert_eq!(
            h.validate(NOW, &limits),
            Err(ValidationError::InvalidSignature)
        );
        let mut h = base.clone();
        flip(&mut h.sender, bit);
        assert!(matches!(
            h.validate(NOW, &limits),
            Err(ValidationError::InvalidSignature | ValidationError::BadSenderKey)
        ));
        checked += 3;
    }
    for bit in 0..512 {
        let mut h = base.clone();
        flip(&mut h.signature, bit);
        assert_eq!(
            h.validate(NOW, &limits),
            Err(ValidationError::InvalidSignature)
        );
        checked += 1;
    }
    for bit in 0..64 {
        for field in 0..3 {
            let mut h = base.clone();
            let target = match field {
                0 => &mut h.created_ms,
                1 => &mut h.lifespan_ms,
                _ => &mut h.length,
            };
            *target ^= 1 << bit;
            let err = h.validate(NOW, &limits);
            // A flip may push a field over a bound, which is reported before the signature.
            assert!(
                matches!(
                    err,
                    Err(ValidationError::InvalidSignature
                        | ValidationError::TooBig { .. }
                        | ValidationError::LifespanTooLong { .. })
                ),
                "field {field} bit {bit}: {err:?}"
            );
            checked += 1;
        }
    }
    for bit in 0..8 {
        let mut h = base.clone();
        let mut bytes = h.recipient.clone().into_bytes();
        flip(&mut bytes, bit);
        if let Ok(s) = String::from_utf8(bytes) {
            h.recipient = s;
            assert_eq!(
                h.validate(NOW, &limits),
                Err(ValidationError::InvalidSignature)
            );
            checked += 1;
        }
    }
    assert!(checked > 1400);
}

#[test]
fn decode_refuses_oversized_and_garbage() {
    let big = vec![0u8; Header::MAX_ENCODED_LEN + 1];
    assert!(matches!(
        Header::decode(&big),
        Err(DecodeError::TooLong { .. })
    ));
    assert!(matches!(
        Header::decode(&[0xff, 0x00]),
        Err(DecodeError::Malformed(_))
    ));
    // A valid CBOR value of the wrong shape.
    assert!(matches!(
        Header::decode(&[0x83, 1, 2, 3]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn id_parses_back() {
    let h = signed(b"abc");
    let text = h.id.to_string();
    assert_eq!(text.len(), 64);
    assert_eq!(text.parse::<MessageId>().ok(), Some(h.id));
    assert!("xyz".parse::<MessageId>().is_err());
}

/// Headers signed by arbitrary keys over arbitrary fields (any lifespan), with hops appended.
/// Shared with the wire round trips of `protocol`.
pub(crate) fn arb_header() -> impl Strategy<Value = Header> {
    arb_header_with(any::<u64>())
}

/// Like [`arb_header`], with the lifespan drawn from `lifespan_ms`. Every other field is within
/// the default [`Limits`].
pub(crate) fn arb_header_with(
    lifespan_ms: impl Strategy<Value = u64>,
) -> impl Strategy<Value = Header> {
    (
        any::<[u8; 32]>(),
        "[a-z*/]{1,40}",
        any::<u64>(),
        lifespan_ms,
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..3),
            0..3,
        ),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..5),
    )
        .prop_map(
            |(seed, recipient, created_ms, lifespan_ms, content, chains, hops)| {
                let id = Identity::from_seed(seed);
                let chains = chains
                    .into_iter()
                    .map(|c| c.into_iter().map(ByteBuf::from).collect())
                    .collect();
                let d = Draft {
                    recipient,
                    created_ms,
                    lifespan_ms,
                    chains,
                };
                let mut h = d.sign(&id, &content).ok().unwrap_or_else(|| panic!("sign"));
                h.hops = hops.into_iter().map(ByteBuf::from).collect();
                h
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cbor_round_trip(h in arb_header()) {
        let bytes = h.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = Header::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &h);
        // Re-encoding gives the same bytes: the encoding is deterministic.
        prop_assert_eq!(back.encode().ok(), Some(bytes));
        prop_assert_eq!(back.compute_id().ok(), Some(h.id));
    }

    /// Sign, encode, decode, validate: a header that validates still does after the round
    /// trip, with the same id; one within every bound always validates at its creation time.
    #[test]
    fn signed_headers_validate_after_a_round_trip(
        h in arb_header_with(0..=Limits::DEFAULT_MAX_LIFESPAN.as_millis() as u64 + 1)
    ) {
        let limits = Limits::default();
        let now = h.created_ms;
        let verdict = h.validate(now, &limits);
        if h.lifespan_ms > limits.max_lifespan.as_millis() as u64 {
            let is_too_long = matches!(verdict, Err(ValidationError::LifespanTooLong { .. }));
            prop_assert!(is_too_long, "{:?}", verdict);
        } else {
            prop_assert_eq!(&verdict, &Ok(()));
        }
        let bytes = h.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(bytes.len() <= Header::MAX_ENCODED_LEN);
        let back = Header::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.validate(now, &limits), verdict);
        prop_assert_eq!(back.compute_id().ok(), Some(h.id));
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Header::decode(&bytes);
    }
}

mod vectors {
    //! `protocols/vectors/message-1.json` pins the encoding: if this fails, the format changed.

    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Vector {
        description: String,
        seed_hex: String,
        sender_hex: String,
        peer_id: String,
        recipient: String,
        created_ms: u64,
        lifespan_ms: u64,
        content_hex: String,
        content_sha256_hex: String,
        signing_input_hex: String,
        signature_hex: String,
        signed_bytes_hex: String,
        id: String,
        hops_hex: Vec<String>,
        header_cbor_hex: String,
    }

    const PATH: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/protocols/vectors/message-1.json"
    );

    fn build() -> anyhow::Result<Vector> {
        let seed = [0x4d; 32];
        let id = Identity::from_seed(seed);
        let content = b"hello from the campfire";
        let mut h = Draft {
            recipient: "*".into(),
            created_ms: 1_767_225_600_000,
            lifespan_ms: 86_400_000,
            chains: Vec::new(),
        }
        .sign(&id, content)?;
        let relay = Identity::from_seed([0x52; 32]).peer_id();
        h.hops.push(ByteBuf::from(relay.to_bytes()));
        Ok(Vector {
            description: "Broadcast message signed with seed 0x4d*32, relayed once by the node with seed 0x52*32. All byte strings are lowercase hex.".into(),
            seed_hex: hex::encode(seed),
            sender_hex: hex::encode(h.sender),
            peer_id: id.peer_id().to_string(),
            recipient: h.recipient.clone(),
            created_ms: h.created_ms,
            lifespan_ms: h.lifespan_ms,
            content_hex: hex::encode(content),
            content_sha256_hex: hex::encode(h.sha256),
            signing_input_hex: hex::encode(h.signing_input()?),
            signature_hex: hex::encode(h.signature),
            signed_bytes_hex: hex::encode(h.signed_bytes()?),
            id: h.id.to_string(),
            hops_hex: h.hops.iter().map(hex::encode).collect(),
            header_cbor_hex: hex::encode(h.encode()?),
        })
    }

    #[test]
    fn vector_matches() -> anyhow::Result<()> {
        let expected: Vector = serde_json::from_str(&std::fs::read_to_string(PATH)?)?;
        assert_eq!(build()?, expected);
        let header = Header::decode(&hex::decode(&expected.header_cbor_hex)?)?;
        header.validate(expected.created_ms, &Limits::default())?;
        assert_eq!(header.id.to_string(), expected.id);
        Ok(())
    }

    /// Regenerates the vector: `cargo test write_vector -- --ignored`. Only after a deliberate
    /// format change, together with `protocols/message.md`.
    #[test]
    #[ignore]
    fn write_vector() -> anyhow::Result<()> {
        std::fs::write(PATH, serde_json::to_string_pretty(&build()?)? + "\n")?;
        Ok(())
    }
}
