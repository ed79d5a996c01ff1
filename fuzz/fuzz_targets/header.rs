//! Message header bytes: `Header::decode`, then `validate`.
//!
//! Checks: input over `MAX_ENCODED_LEN` is refused before parsing; what decodes encodes to
//! bytes that decode to the same header, deterministically; a header that validates still
//! validates after an encode/decode round trip, with the same id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mule::message::{DecodeError, Header, Limits};

fuzz_target!(|data: &[u8]| {
    let header = match Header::decode(data) {
        Ok(h) => h,
        Err(DecodeError::TooLong { len, limit }) => {
            assert!(len > limit && limit == Header::MAX_ENCODED_LEN);
            return;
        }
        Err(_) => {
            assert!(data.len() <= Header::MAX_ENCODED_LEN);
            return;
        }
    };
    let bytes = header.encode().expect("a decoded header encodes");
    let back = Header::decode(&bytes).expect("an encoded header decodes");
    assert_eq!(back, header);
    assert_eq!(back.encode().expect("encodes"), bytes);

    // Validate at the creation time, so the time checks pass and the rest is exercised.
    let limits = Limits::default();
    let now = header.created_ms;
    if header.validate(now, &limits).is_ok() {
        assert!(
            bytes.len() <= Header::MAX_ENCODED_LEN,
            "a valid header encodes to {} bytes",
            bytes.len()
        );
        assert_eq!(back.validate(now, &limits), Ok(()));
        assert_eq!(back.compute_id().ok(), Some(header.id));
        assert_eq!(header.check_unsigned(now, &limits), Ok(()));
    }
});
