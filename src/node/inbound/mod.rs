//! Answers inbound requests: authorise, validate, write through the store, reply.
//!
//! - [`handler`]: one task per request; diff, repository and push requests.
//! - [`claims`]: which peer is about to push a lacking message, so others hold back.
//! - [`chunk`]: the push of one message's content, chunk by chunk, into a transfer slot.
//! - [`stream`]: `/mule/push/2`, one message's content on one stream, into the same slots.
//! - [`slot`]: one message being received: its admitted header, transfer and progress.
//! - [`reorder`]: the pure rules of a transfer (chunk bounds, reorder wait, idleness).
//! - [`codes`]: the one table from refusals to wire error codes.

mod chunk;
mod claims;
mod codes;
mod handler;
pub(crate) mod reorder;
mod slot;
mod stream;

pub(super) use handler::Handler;
