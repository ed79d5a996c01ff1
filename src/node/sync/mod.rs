//! One sync task per selected peer: diff what the peer lacks, push it in creation order, record
//! the outcome in the store, back off on transient failures, and follow new messages as they come.
//!
//! - [`plan`]: the pure decisions (candidates, batches, window units, outcome → delivery state).
//! - [`task`]: the task itself and its passes (store reads, diff requests, recording).
//! - [`push`]: pushing one message in chunks, or many small ones in a batch.
//! - [`stream`]: pushing one large message on one `/mule/push/2` stream.

mod plan;
mod push;
mod stream;
mod task;

pub(super) use task::run;

/// Messages pushed to one peer concurrently (lets the receiver group-commit small messages).
pub(super) const MESSAGE_CONCURRENCY: usize = 64;
/// Restarts of one push after `incorrect-offset` before it counts as a transient failure.
pub(super) const MAX_RESTARTS: u32 = 3;
