//! One certificate's bytes: `Certificate::decode`.
//!
//! Checks: a certificate has exactly one accepted byte form, so whatever decodes encodes back
//! to the very same bytes, within the size bound; its caveats and signature can be examined
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mule::trust::cert::{CertError, Certificate, MAX_CERTIFICATE_LEN, VERSION};

fuzz_target!(|data: &[u8]| {
    match Certificate::decode(data) {
        Ok(cert) => {
            assert!(data.len() <= MAX_CERTIFICATE_LEN);
            assert_eq!(cert.version, VERSION);
            assert_eq!(
                cert.encode().expect("encodes"),
                data,
                "accepted a non-canonical form"
            );
            let _ = cert.restrictions();
            let _ = cert.signature_ok();
        }
        Err(CertError::TooLarge { len, max }) => {
            assert!(len > max && max == MAX_CERTIFICATE_LEN && len == data.len());
        }
        Err(_) => assert!(data.len() <= MAX_CERTIFICATE_LEN),
    }
});
