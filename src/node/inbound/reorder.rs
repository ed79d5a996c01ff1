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

/// Most transfers one peer may hold open at once.
pub(crate) const MAX_TRANSFERS_PER_PEER: usize = 16;
/// Most transfers open at once, from all peers.
pub(crate) const MAX_TRANSFERS: usize = 256;

/// Why a new transfer is not opened; answered `busy`, or `storage-full` for
/// [`TooMany::Reserved`] (the peer may retry when others finish).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TooMany {
    /// The peer holds its share of open transfers.
    #[error("this peer has {open} transfers open; at most {max} at once")]
    PerPeer {
        /// Its open transfers.
        open: usize,
        /// The cap.
        max: usize,
    },
    /// The node holds as many open transfers as it takes.
    #[error("{open} transfers are open; at most {max} at once")]
    Total {
        /// Open transfers.
        open: usize,
        /// The cap.
        max: usize,
    },
    /// The declared length would bring the bytes open transfers still expect past the free
    /// space on the store's disk.
    #[error("a {length}-byte message would bring open transfers to {reserved} bytes still to come; {max} bytes are free on the disk")]
    Reserved {
        /// The new message's length.
        length: u64,
        /// What open transfers would still write with it.
        reserved: u64,
        /// The free space.
        max: u64,
    },
}

impl TooMany {
    /// Whether the disk, not the number of transfers, is what is short.
    pub(crate) fn is_space(&self) -> bool {
        matches!(self, TooMany::Reserved { .. })
    }
}

/// Whether `owner` may open one more transfer of `length` bytes, given the open transfers as
/// (owner, bytes still to come) pairs and `free` bytes on the store's disk: peers cannot make
/// the node promise more bytes than the disk can take by declaring huge messages. (The store's
/// quota counts declared lengths too; that check is the store's.)
pub(crate) fn may_open<P: PartialEq>(
    open: impl IntoIterator<Item = (P, u64)>,
    owner: &P,
    length: u64,
    free: u64,
) -> Result<(), TooMany> {
    let (mut mine, mut total, mut reserved) = (0usize, 0usize, 0u64);
    for (p, remaining) in open {
        total += 1;
        mine += usize::from(&p == owner);
        reserved = reserved.saturating_add(remaining);
    }
    if mine >= MAX_TRANSFERS_PER_PEER {
        return Err(TooMany::PerPeer {
            open: mine,
            max: MAX_TRANSFERS_PER_PEER,
        });
    }
    if total >= MAX_TRANSFERS {
        return Err(TooMany::Total {
            open: total,
            max: MAX_TRANSFERS,
        });
    }
    let with = reserved.saturating_add(length);
    if with > free {
        return Err(TooMany::Reserved {
            length,
            reserved: with,
            max: free,
        });
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
    fn open_transfers_are_capped_per_peer_in_total_and_in_bytes() {
        const FREE: u64 = 8 << 30;
        let mine = vec![(1u8, 10u64); MAX_TRANSFERS_PER_PEER];
        assert_eq!(
            may_open(mine.clone(), &1, 1, FREE),
            Err(TooMany::PerPeer {
                open: MAX_TRANSFERS_PER_PEER,
                max: MAX_TRANSFERS_PER_PEER
            })
        );
        assert_eq!(
            may_open(mine, &2, 1, FREE),
            Ok(()),
            "other peers are unaffected"
        );
        let many: Vec<(u16, u64)> = (0..MAX_TRANSFERS as u16).map(|p| (p, 1)).collect();
        assert!(matches!(
            may_open(many, &9999, 1, FREE),
            Err(TooMany::Total { .. })
        ));
        assert!(matches!(
            may_open(Vec::<(u8, u64)>::new(), &1, u64::MAX, FREE),
            Err(TooMany::Reserved { .. })
        ));
    }

    #[test]
    fn declared_bytes_still_to_come_are_capped_by_the_free_disk_space() {
        let open = vec![(1u8, 600u64), (2, 300)];
        assert_eq!(may_open(open.clone(), &3, 100, 1_000), Ok(()));
        let refused = may_open(open.clone(), &3, 101, 1_000);
        assert_eq!(
            refused,
            Err(TooMany::Reserved {
                length: 101,
                reserved: 1_001,
                max: 1_000
            })
        );
        assert!(refused.is_err_and(|e| e.is_space()));
        // A disk with less free space than a fixed budget would allow refuses sooner.
        assert!(may_open(Vec::<(u8, u64)>::new(), &1, 4_096, 4_095).is_err());
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
