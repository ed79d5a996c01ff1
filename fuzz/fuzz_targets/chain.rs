//! A chain file's bytes: `decode_chain`, then `verify` for the leaf's subject against the fixed
//! roots of `protocols/vectors/names-1.json` (root `campfire` = the key of seed 0x43 * 32), at
//! the vectors' instant. The seeds are the vectors' chains.
//!
//! Checks: oversized input is refused before parsing; a decoded chain encodes back to a chain
//! that decodes equal; a chain that verifies has every certificate canonical and correctly
//! signed, links leaf to a trusted root, holds at `now`, and grants the name its segments spell.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mule::trust::chain::{decode_chain, encode_chain, ChainError, MAX_ENCODED_CHAIN_LEN};
use mule::trust::{verify, Certificate};

fuzz_target!(|data: &[u8]| {
    let chain = match decode_chain(data) {
        Ok(c) => c,
        Err(ChainError::EncodedTooLarge { len, max }) => {
            assert!(len > max && max == MAX_ENCODED_CHAIN_LEN);
            return;
        }
        Err(_) => return,
    };
    let again = encode_chain(&chain).expect("encodes");
    assert_eq!(decode_chain(&again).ok().as_ref(), Some(&chain));

    let roots = mule_fuzz::vector_roots();
    let certs: Vec<Certificate> = chain
        .iter()
        .map(|c| Certificate::decode(c).expect("decode_chain decoded every certificate"))
        .collect();
    let subject = certs[0].subject;
    for now in [mule_fuzz::VECTOR_NOW_MS, certs[0].not_before_ms] {
        if let Ok(verified) = verify(&chain, &subject, &roots, now) {
            mule_fuzz::check_verified(&certs, &roots, now, &verified);
        }
    }
});
