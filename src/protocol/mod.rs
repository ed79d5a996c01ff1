//! Wire types of mule's request-response protocols, and their codec.
//!
//! Each protocol is specified in `protocols/` (fields, limits, errors, examples); the module
//! for it holds its name, limits and types. Encoding is CBOR via cbor4ii: structs are maps
//! keyed by field name, enums are externally tagged with kebab-case names, byte strings are
//! CBOR byte strings. Every decoder bounds its input before parsing ([`codec`]).

pub mod codec;
pub mod diff;
pub mod error;
pub mod names;
pub mod push;
pub mod push2;
pub mod repo;

pub use codec::{Codec, Frame, ResponseError};
pub use error::{Code, WireError};

#[cfg(test)]
mod roundtrip;
#[cfg(test)]
mod tests;
