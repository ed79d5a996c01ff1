//! `/mule/repo/1` requests and responses through the codec, with its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mule::protocol::repo;

fuzz_target!(|data: &[u8]| {
    let _ = mule_fuzz::wire::<repo::Request, repo::Response>(
        data,
        repo::REQUEST_MAX,
        repo::RESPONSE_MAX,
    );
});
