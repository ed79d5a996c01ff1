//! Headers signed from fuzzed fields: sign, encode, decode, validate.
//!
//! Checks: a header signed by a real key validates exactly when its fields are within the
//! bounds (the signature and id always hold), the same before and after an encode/decode
//! round trip; any one changed signed field then fails validation.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mule::identity::Identity;
use mule::message::{Draft, Header, Limits, ValidationError};
use serde_bytes::ByteBuf;

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u8,
    recipient: String,
    created_ms: u64,
    lifespan_ms: u64,
    content: Vec<u8>,
    chains: Vec<Vec<Vec<u8>>>,
    hops: Vec<Vec<u8>>,
    max_hops: u8,
    /// Which signed field to change afterwards, if any.
    tamper: Option<u8>,
}

fuzz_target!(|input: Input| {
    let identity = Identity::from_seed([input.seed; 32]);
    let chains = input
        .chains
        .into_iter()
        .map(|c| c.into_iter().map(ByteBuf::from).collect())
        .collect();
    let mut header = Draft {
        recipient: input.recipient,
        created_ms: input.created_ms,
        lifespan_ms: input.lifespan_ms,
        chains,
    }
    .sign(&identity, &input.content)
    .expect("signing into memory works");
    header.hops = input.hops.into_iter().map(ByteBuf::from).collect();
    let limits = Limits {
        max_hops: usize::from(input.max_hops),
        ..Limits::default()
    };
    let now = header.created_ms;

    let verdict = header.validate(now, &limits);
    match &verdict {
        Ok(()) => {}
        // A correctly signed header can only fail on bounds (time is `now` = creation).
        Err(
            ValidationError::BadRecipient { .. }
            | ValidationError::TooManyHops { .. }
            | ValidationError::BadHop { .. }
            | ValidationError::BadCertificates { .. }
            | ValidationError::LifespanTooLong { .. },
        ) => {}
        Err(e) => panic!("a freshly signed header fails with {e}"),
    }
    assert_eq!(header.check_unsigned(now, &limits).is_ok(), verdict.is_ok());

    let bytes = header.encode().expect("encodes");
    if verdict.is_ok() {
        assert!(
            bytes.len() <= Header::MAX_ENCODED_LEN,
            "{} bytes",
            bytes.len()
        );
    }
    if bytes.len() <= Header::MAX_ENCODED_LEN {
        let back = Header::decode(&bytes).expect("an encoded header decodes");
        assert_eq!(back, header);
        assert_eq!(back.validate(now, &limits), verdict);
    }

    if let (Ok(()), Some(field)) = (verdict, input.tamper) {
        let mut bad = header.clone();
        match field % 5 {
            0 => bad.created_ms ^= 1,
            1 => bad.lifespan_ms ^= 1,
            2 => bad.length ^= 1,
            3 => bad.sha256[0] ^= 1,
            _ => bad.recipient.push('x'),
        }
        let err = bad.validate(bad.created_ms, &limits);
        assert!(
            err.is_err(),
            "tampered header (field {}) still validates",
            field % 5
        );
    }
});
