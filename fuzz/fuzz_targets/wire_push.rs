//! `/mule/push/1` requests and responses through the codec, with its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mule::protocol::push;

fuzz_target!(|data: &[u8]| {
    let (request, _) = mule_fuzz::wire::<push::Request, push::Response>(
        data,
        push::REQUEST_MAX,
        push::RESPONSE_MAX,
    );
    if let Some(push::Request::Chunk { header, .. }) = request {
        // Every header that arrives inside a push can be stored and forwarded on its own.
        let bytes = header.encode().expect("a decoded header encodes");
        let back = mule::message::Header::decode(&bytes).expect("a decoded header decodes alone");
        assert_eq!(back, *header);
    }
});
