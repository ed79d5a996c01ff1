//! `/mule/push/2` frames (a varint length, then CBOR): the `open` frame a receiver reads first
//! and the offset/error frames a sender reads, through `mule::protocol::push2::read_frame`.
#![no_main]

use futures::executor::block_on;
use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;
use mule::protocol::push;
use mule::protocol::push2::{self, FrameError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Reads one frame of `T` from `data`; whatever decodes must encode again within `limit` and
/// decode to an equal value, and only a frame announcing more than `limit` bytes is too big.
fn check<T>(data: &[u8], limit: usize)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    match block_on(push2::read_frame::<T, _>(&mut Cursor::new(data), limit)) {
        Ok(value) => {
            let frame = push2::encode_frame(&value).expect("a decoded value encodes");
            let again: T = block_on(push2::read_frame(&mut Cursor::new(&frame), limit))
                .expect("a re-encoded frame stays within the limit and decodes");
            assert_eq!(again, value);
        }
        Err(FrameError::TooBig { len, limit: l }) => {
            assert_eq!(l, limit);
            assert!(len > limit as u64, "{len} bytes refused as too big");
        }
        Err(FrameError::Io(_) | FrameError::Prefix(_) | FrameError::Malformed(_)) => {}
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    check::<push2::Open>(data, push2::OPEN_MAX);
    check::<push::Response>(data, push2::RESPONSE_MAX);
});
