//! `/mule/diff/1` requests and responses through the codec, with its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mule::protocol::diff;

fuzz_target!(|data: &[u8]| {
    let _ = mule_fuzz::wire::<diff::Request, diff::Response>(
        data,
        diff::REQUEST_MAX,
        diff::RESPONSE_MAX,
    );
});
