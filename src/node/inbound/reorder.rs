//! The receiving side of one transfer as pure state: where a chunk may start, when an early
//! chunk waits, when it gives up, and when an idle transfer is closed. Time is passed in, so
//! every rule is tested without clocks; the handler only does the waiting and the I/O.

use std::time::{Duration, Instant};

use crate::protocol::push;

/// How far ahead of the held bytes a chunk may start and still be waited for.
pub(crate) const REORDER_WINDOW: u64 = 64 * push::MAX_CHUNK as u64;
/// How long an early chunk waits for the bytes before it.
pub(crate) const REORDER_WAIT: Duration = Duration::from_secs(10);
/// A transfer with no chunk for this long is closed (its bytes stay, for resuming).
pub(crate) const SLOT_IDLE: Duration = Duration::from_secs(30);

/// Why a chunk is refused before it may open or touch a transfer (push.md 4.3 step 1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadChunk {
    /// More than one chunk's worth of data.
    #[error("chunk of {len} bytes; at most {max}", max = push::MAX_CHUNK)]
    TooBig {
        /// Bytes in the chunk.
        len: usize,
    },
    /// The chunk would end past the declared content.
    #[error("chunk {offset}+{len} ends past the message's {length} bytes")]
    PastEnd {
        /// Where it starts.
        offset: u64,
        /// Its length.
        len: u64,
        /// The header's `length`.
        length: u64,
    },
    /// Empty data anywhere but at the end.
    #[error("empty chunk at offset {offset}; empty chunks are allowed only at the end ({length})")]
    EmptyNotAtEnd {
        /// Where it starts.
        offset: u64,
        /// The header's `length`.
        length: u64,
    },
}

/// Checks a chunk against its header's length before anything is opened for it.
pub(crate) fn check_chunk(offset: u64, len: usize, length: u64) -> Result<(), BadChunk> {
    if len > push::MAX_CHUNK {
        return Err(BadChunk::TooBig { len });
    }
    let n = len as u64;
    if offset.checked_add(n).is_none_or(|end| end > length) {
        return Err(BadChunk::PastEnd {
            offset,
            len: n,
            length,
        });
    }
    if n == 0 && offset != length {
        return Err(BadChunk::EmptyNotAtEnd { offset, length });
    }
    Ok(())
}

/// Bytes held, and a generation that a `resume-offset` bumps: chunks still waiting from before
/// the resume are stale (the sender will resend them) and must not be written after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Bytes of the content held so far.
    pub(crate) held: u64,
    /// Resumes seen so far.
    pub(crate) generation: u64,
}

/// What to do with a chunk at `offset`, given the progress when it arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Write it now (the store rejects an offset below `held`).
    Write,
    /// It is early but within the window: wait for `held` to reach `offset`.
    Wait,
    /// Too far ahead: answer `incorrect-offset` with what is held.
    Reject {
        /// Bytes held.
        have: u64,
    },
}

impl Progress {
    /// Where a chunk at `offset` stands.
    pub(crate) fn turn(&self, offset: u64) -> Turn {
        if offset <= self.held {
            Turn::Write
        } else if offset - self.held > REORDER_WINDOW {
            Turn::Reject { have: self.held }
        } else {
            Turn::Wait
        }
    }

    /// Whether a waiting chunk at `offset` that arrived at generation `since` may stop waiting:
    /// its bytes are reached, or a resume made it stale.
    pub(crate) fn wakes(&self, offset: u64, since: u64) -> bool {
        self.held >= offset || self.generation != since
    }

    /// After waiting (or giving up): write the chunk, or refuse it with the offset held now.
    pub(crate) fn after_wait(&self, offset: u64, since: u64) -> Turn {
        if self.held >= offset && self.generation == since {
            Turn::Write
        } else {
            Turn::Reject { have: self.held }
        }
    }
}

/// When a transfer was last active, to close stalled ones.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Activity {
    last: Instant,
}

impl Activity {
    /// Active now.
    pub(crate) fn new(now: Instant) -> Self {
        Self { last: now }
    }

    /// A chunk arrived at `now`.
    pub(crate) fn touch(&mut self, now: Instant) {
        self.last = self.last.max(now);
    }

    /// Whether the transfer stalled: nothing for [`SLOT_IDLE`] until `now`.
    pub(crate) fn idle(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) >= SLOT_IDLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_bounds_are_checked_before_anything_opens() {
        assert_eq!(check_chunk(0, 10, 10), Ok(()));
        assert_eq!(
            check_chunk(10, 0, 10),
            Ok(()),
            "empty chunk at the end completes"
        );
        assert_eq!(check_chunk(0, 0, 0), Ok(()), "empty message");
        assert_eq!(
            check_chunk(0, 0, 10),
            Err(BadChunk::EmptyNotAtEnd {
                offset: 0,
                length: 10
            })
        );
        assert_eq!(
            check_chunk(11, 0, 10),
            Err(BadChunk::PastEnd {
                offset: 11,
                len: 0,
                length: 10
            })
        );
        assert_eq!(
            check_chunk(5, 6, 10),
            Err(BadChunk::PastEnd {
                offset: 5,
                len: 6,
                length: 10
            })
        );
        assert!(matches!(
            check_chunk(u64::MAX, 1, u64::MAX),
            Err(BadChunk::PastEnd { .. })
        ));
        assert_eq!(
            check_chunk(0, push::MAX_CHUNK + 1, u64::MAX),
            Err(BadChunk::TooBig {
                len: push::MAX_CHUNK + 1
            })
        );
    }

    #[test]
    fn early_chunks_wait_within_the_window() {
        let p = Progress {
            held: 100,
            generation: 0,
        };
        assert_eq!(p.turn(100), Turn::Write);
        assert_eq!(
            p.turn(50),
            Turn::Write,
            "the store answers incorrect-offset"
        );
        assert_eq!(p.turn(101), Turn::Wait);
        assert_eq!(p.turn(100 + REORDER_WINDOW), Turn::Wait);
        assert_eq!(p.turn(101 + REORDER_WINDOW), Turn::Reject { have: 100 });
    }

    #[test]
    fn a_resume_makes_waiting_chunks_stale() {
        let arrived = Progress {
            held: 0,
            generation: 3,
        };
        let reached = Progress {
            held: 200,
            generation: 3,
        };
        assert!(!arrived.wakes(100, 3));
        assert!(reached.wakes(100, 3));
        assert_eq!(reached.after_wait(100, 3), Turn::Write);
        let resumed = Progress {
            held: 50,
            generation: 4,
        };
        assert!(resumed.wakes(100, 3));
        assert_eq!(resumed.after_wait(100, 3), Turn::Reject { have: 50 });
        // Timed out without reaching the offset.
        assert_eq!(arrived.after_wait(100, 3), Turn::Reject { have: 0 });
    }

    #[test]
    fn idle_after_the_limit_only() {
        let t0 = Instant::now();
        let mut a = Activity::new(t0);
        assert!(!a.idle(t0 + SLOT_IDLE - Duration::from_millis(1)));
        assert!(a.idle(t0 + SLOT_IDLE));
        a.touch(t0 + SLOT_IDLE);
        assert!(!a.idle(t0 + SLOT_IDLE));
        // A clock read earlier by another task never moves activity back.
        a.touch(t0);
        assert!(!a.idle(t0 + SLOT_IDLE + Duration::from_secs(1)));
        // Time before the last activity is not idle.
        assert!(!a.idle(t0));
    }
}
