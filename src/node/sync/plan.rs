//! The decisions of a sync pass, as pure functions: which stored messages are candidates for a
//! peer, how they are grouped into batch requests, how a push's outcome becomes the delivery
//! state in the store, and how much of the push window a request takes. No I/O, no clock, no
//! RNG: `now` and the backoff jitter are passed in.

use crate::message::MessageId;
use crate::net::RequestError;
use crate::node::backoff;
use crate::protocol::{push, Code, WireError};
use crate::store::{Delivery, Stored};

/// Most content bytes in one batch request (the request limit is a little over 1 MiB).
pub(super) const BATCH_BYTES: usize = 512 * 1024;
/// Unit of the push window, in bytes.
pub(super) const WINDOW_UNIT: usize = 1024;
/// Per-message allowance for the header when packing a batch.
const HEADER_ALLOWANCE: usize = 1024;

/// How one push ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The peer has it now (or had it: `duplicate`).
    Delivered {
        /// The peer already had it (`already-seen`).
        duplicate: bool,
    },
    /// The peer will never take it.
    Fatal(WireError),
    /// Worth retrying later.
    Transient(Trouble),
    /// The connection failed; stop this pass.
    Connection(RequestError),
    /// Not attempted (the pass was aborted).
    Skipped,
}

/// Why a push is worth retrying later.
#[derive(Debug, thiserror::Error)]
pub(super) enum Trouble {
    /// The peer answered a transient error (busy, rate limit, incorrect offset...).
    #[error("{0}")]
    Refused(WireError),
    /// Our own content could not be read.
    #[error("cannot read content: {0}")]
    Read(#[source] crate::store::Error),
    /// The push window was closed (the pass is ending).
    #[error("push window closed")]
    WindowClosed,
    /// The peer answered something that does not fit the request.
    #[error("peer answered {0}")]
    Unusable(&'static str),
    /// The peer keeps asking to restart at an offset.
    #[error("peer keeps asking for offset {have}")]
    RestartLoop {
        /// The offset it asked for last.
        have: u64,
    },
    /// This node's own `out` list entry for the peer is over its rate.
    #[error("this node's out list: {0}")]
    OutRate(crate::node::auth::Denied),
    /// A chunk task died.
    #[error("push task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A peer's error answer as an outcome: `already-seen` is a delivery, fatal codes never change.
pub(super) fn classify(e: WireError) -> Outcome {
    match e.code {
        Code::AlreadySeen => Outcome::Delivered { duplicate: true },
        ref c if c.is_fatal() => Outcome::Fatal(e),
        _ => Outcome::Transient(Trouble::Refused(e)),
    }
}

/// A message to offer, with what we knew of its delivery to this peer.
#[derive(Debug)]
pub(super) struct Candidate {
    pub(super) stored: Stored,
    pub(super) attempts: u32,
    /// The content, when it is small and was read with the batch.
    pub(super) content: Option<Vec<u8>>,
}

impl Candidate {
    pub(super) fn id(&self) -> MessageId {
        self.stored.header.id
    }

    /// Whether its whole content is in memory (it can travel in a batch).
    pub(super) fn is_whole(&self) -> bool {
        self.content
            .as_ref()
            .is_some_and(|d| d.len() as u64 == self.stored.header.length)
    }
}

/// What a pass starts from.
#[derive(Debug, Default)]
pub(super) struct Candidates {
    /// Messages to offer now.
    pub(super) now: Vec<Candidate>,
    /// Earliest time a message waiting for its retry is due (Unix ms).
    pub(super) next_retry_ms: Option<u64>,
}

/// Picks the messages to offer: not delivered or refused for good, due for retry at `now_ms`
/// (`u64::MAX` after a fresh connection: every retry is due), and accepted by `offer` (the
/// relay and access policies).
pub(super) fn candidates(
    rows: Vec<(Stored, Option<Delivery>)>,
    now_ms: u64,
    offer: impl Fn(&Stored) -> bool,
) -> Candidates {
    let mut out = Candidates::default();
    for (stored, state) in rows {
        let attempts = match state {
            Some(s) if s.is_final() => continue,
            Some(Delivery::Retry {
                attempts,
                next_attempt_ms,
                ..
            }) => {
                if next_attempt_ms > now_ms {
                    earliest(&mut out.next_retry_ms, next_attempt_ms);
                    continue;
                }
                attempts
            }
            _ => 0,
        };
        if offer(&stored) {
            out.now.push(Candidate {
                stored,
                attempts,
                content: None,
            });
        }
    }
    out
}

/// Keeps the earliest of two times.
pub(super) fn earliest(slot: &mut Option<u64>, at: u64) {
    let next = slot.get_or_insert(at);
    *next = (*next).min(at);
}

/// Orders what the peer lacks by creation time (then id), as the protocol asks.
pub(super) fn in_creation_order(lacking: &mut [Candidate]) {
    lacking.sort_by_key(|c| (c.stored.header.created_ms, c.stored.header.id));
}

/// Packs whole small messages into batch requests of at most [`push::MAX_BATCH`] messages and
/// about [`BATCH_BYTES`] of content, keeping their order.
pub(super) fn batches(small: Vec<Candidate>) -> Vec<Vec<Candidate>> {
    let mut batches: Vec<Vec<Candidate>> = Vec::new();
    let mut bytes = 0usize;
    for c in small {
        let size = (c.stored.header.length as usize).saturating_add(HEADER_ALLOWANCE);
        match batches.last_mut() {
            Some(b) if b.len() < push::MAX_BATCH && bytes + size <= BATCH_BYTES => {
                bytes += size;
                b.push(c);
            }
            _ => {
                bytes = size;
                batches.push(vec![c]);
            }
        }
    }
    batches
}

/// The push window in units: `push_window` chunks' worth of bytes.
pub(super) fn window_units(push_window: usize, chunk_size: usize) -> usize {
    push_window.max(1) * chunk_size.max(WINDOW_UNIT) / WINDOW_UNIT
}

/// Units of the window a request carrying `bytes` of content takes (at least one, at most all).
pub(super) fn units(bytes: u64, window_units: usize) -> u32 {
    let n = usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .div_ceil(WINDOW_UNIT)
        .clamp(1, window_units.max(1));
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The delivery state an outcome leaves in the store (`None`: nothing to record). `jitter` is
/// uniform in `[0, 1)` and spreads the retries of messages that failed together.
pub(super) fn delivery(
    outcome: Outcome,
    attempts: u32,
    now_ms: u64,
    jitter: f64,
) -> Option<Delivery> {
    Some(match outcome {
        Outcome::Delivered { .. } => Delivery::Sent { at_ms: now_ms },
        Outcome::Fatal(e) => Delivery::Failed {
            reason: e.to_string(),
            at_ms: now_ms,
        },
        Outcome::Transient(t) => retry(attempts, now_ms, jitter, t.to_string()),
        Outcome::Connection(e) => retry(attempts, now_ms, jitter, e.to_string()),
        Outcome::Skipped => return None,
    })
}

fn retry(attempts: u32, now_ms: u64, jitter: f64, last_error: String) -> Delivery {
    let attempts = attempts.saturating_add(1);
    let delay = backoff::delay(attempts - 1, jitter);
    Delivery::Retry {
        attempts,
        next_attempt_ms: now_ms.saturating_add(delay.as_millis() as u64),
        last_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::message::Draft;

    fn stored(created_ms: u64, len: usize) -> anyhow::Result<Stored> {
        let header = Draft {
            recipient: "*".into(),
            created_ms,
            lifespan_ms: 1_000,
            chains: vec![],
        }
        .sign(&Identity::from_seed([7; 32]), &vec![0; len])?;
        Ok(Stored {
            header,
            received_ms: 0,
            inline: true,
        })
    }

    fn candidate(created_ms: u64, len: usize) -> anyhow::Result<Candidate> {
        Ok(Candidate {
            stored: stored(created_ms, len)?,
            attempts: 0,
            content: Some(vec![0; len]),
        })
    }

    #[test]
    fn candidates_skip_final_and_not_yet_due() -> anyhow::Result<()> {
        let retry = |next_attempt_ms| Delivery::Retry {
            attempts: 2,
            next_attempt_ms,
            last_error: "busy".into(),
        };
        let rows = vec![
            (stored(1, 1)?, None),
            (stored(2, 1)?, Some(Delivery::Sent { at_ms: 0 })),
            (
                stored(3, 1)?,
                Some(Delivery::Failed {
                    reason: "x".into(),
                    at_ms: 0,
                }),
            ),
            (stored(4, 1)?, Some(retry(50))),
            (stored(5, 1)?, Some(retry(500))),
            (stored(6, 1)?, Some(retry(300))),
            (stored(7, 2)?, None),
        ];
        let c = candidates(rows, 100, |s| s.header.length == 1);
        let got: Vec<(u64, u32)> = c
            .now
            .iter()
            .map(|c| (c.stored.header.created_ms, c.attempts))
            .collect();
        assert_eq!(got, vec![(1, 0), (4, 2)]);
        assert_eq!(c.next_retry_ms, Some(300));
        Ok(())
    }

    #[test]
    fn a_fresh_connection_makes_every_retry_due() -> anyhow::Result<()> {
        let rows = vec![(
            stored(1, 1)?,
            Some(Delivery::Retry {
                attempts: 9,
                next_attempt_ms: 10_000_000,
                last_error: "connection closed".into(),
            }),
        )];
        let c = candidates(rows, u64::MAX, |_| true);
        assert_eq!(c.now.len(), 1);
        assert_eq!(c.now[0].attempts, 9);
        assert_eq!(c.next_retry_ms, None);
        Ok(())
    }

    #[test]
    fn batches_respect_count_and_bytes_and_order() -> anyhow::Result<()> {
        let small = (0..600)
            .map(|i| candidate(i, 10))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let b = batches(small);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![256, 256, 88]
        );
        let order: Vec<u64> = b
            .iter()
            .flatten()
            .map(|c| c.stored.header.created_ms)
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
        // 100 KiB messages: 5 fit under 512 KiB with their header allowance.
        let big = (0..11)
            .map(|i| candidate(i, 100 * 1024))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let b = batches(big);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![5, 5, 1]);
        assert!(batches(Vec::new()).is_empty());
        Ok(())
    }

    #[test]
    fn window_units_bound_every_request() {
        assert_eq!(window_units(16, 1 << 20), 16 * 1024);
        assert_eq!(window_units(0, 0), 1);
        assert_eq!(units(0, 100), 1);
        assert_eq!(units(1024, 100), 1);
        assert_eq!(units(1025, 100), 2);
        assert_eq!(units(u64::MAX, 100), 100);
    }

    #[test]
    fn outcomes_become_delivery_states() {
        let busy = WireError::new(Code::Busy, "busy");
        assert!(matches!(
            delivery(Outcome::Delivered { duplicate: true }, 0, 7, 0.5),
            Some(Delivery::Sent { at_ms: 7 })
        ));
        let fatal = WireError::new(Code::TooBig, "too big");
        assert!(matches!(
            delivery(Outcome::Fatal(fatal), 0, 7, 0.5),
            Some(Delivery::Failed { at_ms: 7, .. })
        ));
        match delivery(Outcome::Transient(Trouble::Refused(busy)), 2, 1_000, 1.0) {
            Some(Delivery::Retry {
                attempts,
                next_attempt_ms,
                last_error,
            }) => {
                assert_eq!(attempts, 3);
                assert_eq!(
                    next_attempt_ms,
                    1_000 + backoff::delay(2, 1.0).as_millis() as u64
                );
                assert!(last_error.contains("busy"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(delivery(Outcome::Skipped, 0, 0, 0.0).is_none());
        assert!(matches!(
            classify(WireError::new(Code::AlreadySeen, "")),
            Outcome::Delivered { duplicate: true }
        ));
        assert!(matches!(
            classify(WireError::new(Code::Busy, "")),
            Outcome::Transient(_)
        ));
    }
}
