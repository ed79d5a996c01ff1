//! The content envelope's head decoder (`Head::read_from`) and body copy (`copy_body`), on the
//! plaintext any sender controls (`protocols/envelope.md`).
//!
//! Checks: a head length of 0 or over `MAX_HEAD` is refused before anything is allocated;
//! only bytes starting with the envelope magic decode, and another magic of the envelope family
//! reads as a newer version; what decodes validates, re-encodes to an envelope that decodes to
//! the same head, deterministically; the body copy succeeds exactly when the rest of the input
//! is the attachment's length, and then copies exactly those bytes.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use mule::content::envelope::{copy_body, EnvelopeError, Head, MAGIC, MAGIC_FAMILY, MAX_HEAD};

fuzz_target!(|data: &[u8]| {
    let mut input = Cursor::new(data);
    let head = match Head::read_from(&mut input) {
        Ok(head) => head,
        Err(EnvelopeError::NotAnEnvelope) => {
            assert!(!data.starts_with(MAGIC_FAMILY) || data.len() < MAGIC.len());
            return;
        }
        Err(EnvelopeError::NewerVersion(_)) => {
            assert!(data.starts_with(MAGIC_FAMILY) && !data.starts_with(MAGIC));
            return;
        }
        Err(EnvelopeError::HeadSize(len)) => {
            assert!(data.starts_with(MAGIC));
            assert!(len == 0 || len > MAX_HEAD, "head length {len} refused");
            return;
        }
        Err(EnvelopeError::Malformed(_) | EnvelopeError::Invalid { .. }) => {
            assert!(data.starts_with(MAGIC));
            return;
        }
        Err(e) => panic!("reading from memory failed unexpectedly: {e}"),
    };
    assert!(data.starts_with(MAGIC));
    head.validate().expect("a decoded head validates");

    // Re-encoding gives an envelope that reads back as the same head, every time.
    let bytes = head.to_bytes().expect("a decoded head encodes");
    assert_eq!(head.to_bytes().expect("encodes again"), bytes);
    let back = Head::read_from(&mut Cursor::new(&bytes)).expect("an encoded head decodes");
    assert_eq!(back, head);

    // The body is exactly the attachment's length, or refused.
    let at = input.position() as usize;
    let rest = data.len() - at;
    let mut out = Vec::new();
    match copy_body(&head, &mut input, &mut out) {
        Ok(n) => {
            assert_eq!(n, head.body_length());
            assert_eq!(rest as u64, n);
            assert_eq!(out, &data[at..]);
        }
        Err(EnvelopeError::BodyLength { expected, actual }) => {
            assert_eq!(expected, head.body_length());
            assert_ne!(rest as u64, expected);
            assert!(actual == (rest as u64).min(expected) || actual == expected + 1);
        }
        Err(e) => panic!("copying from memory failed unexpectedly: {e}"),
    }
});
