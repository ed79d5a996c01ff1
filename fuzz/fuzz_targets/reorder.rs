//! The reassembly rules of one inbound transfer (`src/node/inbound/reorder.rs`), driven by
//! arbitrary sequences of chunks, waits, resumes and clock ticks against a model store that
//! writes a chunk only at its held offset (as the real store does).
//!
//! The rules are `pub(crate)` inside the node, so this target compiles that very file as a
//! module of its own (`#[path]`), with `crate::protocol` pointing at mule's protocol module.
//!
//! Checks: a chunk passes `check_chunk` exactly when it fits the message and the chunk size;
//! `held` never decreases and never passes the length; a write is only allowed at an offset
//! <= held; a wait only for an offset within the window ahead; every reject carries the held
//! offset; a waiting chunk from before a resume is never written; `wakes` is true whenever
//! `after_wait` would write; a transfer is idle exactly `SLOT_IDLE` after its latest chunk.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// What `reorder.rs` imports as `crate::protocol`.
mod protocol {
    pub(crate) use mule::protocol::push;
}

#[allow(dead_code)]
#[path = "../../src/node/inbound/reorder.rs"]
mod reorder;

use protocol::push::MAX_CHUNK;
use reorder::{check_chunk, Activity, BadChunk, Progress, Turn, REORDER_WINDOW, SLOT_IDLE};

#[derive(Arbitrary, Debug)]
enum Op {
    /// A chunk arrives: offset relative to held (`ahead` bytes past it, or `behind` before).
    Chunk { ahead: u64, behind: bool, len: u32 },
    /// A chunk at an absolute offset, to reach the bounds.
    Raw { offset: u64, len: u32 },
    /// `resume-offset`: waiting chunks become stale.
    Resume,
    /// A waiting chunk is woken (it rechecks `wakes`) or times out.
    Wake { which: u8, timed_out: bool },
    /// Time passes (ms); `chunk` says whether a chunk arrived then.
    Tick { ms: u16, chunk: bool },
}

#[derive(Arbitrary, Debug)]
struct Input {
    length: u64,
    ops: Vec<Op>,
}

struct Waiting {
    offset: u64,
    len: u64,
    since: u64,
}

/// The store's side: writes only at `held`, refuses any other offset with `held`.
fn write(progress: &mut Progress, offset: u64, len: u64, length: u64) {
    assert!(
        offset <= progress.held,
        "write allowed at {offset} past held {}",
        progress.held
    );
    if offset == progress.held {
        let end = offset + len;
        assert!(end <= length, "a checked chunk ends past the length");
        progress.held = end;
    }
}

fuzz_target!(|input: Input| {
    // Mostly small messages so chunks land inside them; sometimes the full range.
    let length = if input.length % 4 == 0 {
        input.length
    } else {
        input.length % (4 * MAX_CHUNK as u64)
    };
    let mut progress = Progress::default();
    let mut waiting: Vec<Waiting> = Vec::new();
    let start = Instant::now();
    let mut clock = start;
    let mut last_chunk = start;
    let mut activity = Activity::new(start);

    for op in input.ops.into_iter().take(256) {
        let before = progress;
        match op {
            Op::Chunk { .. } | Op::Raw { .. } => {
                let (offset, len) = match op {
                    Op::Chunk { ahead, behind, len } => {
                        let offset = if behind {
                            progress.held.saturating_sub(ahead % (2 * MAX_CHUNK as u64))
                        } else {
                            progress.held.saturating_add(ahead % (REORDER_WINDOW + 2))
                        };
                        (offset, len as usize % (MAX_CHUNK + 2))
                    }
                    Op::Raw { offset, len } => (offset, len as usize),
                    _ => unreachable!(),
                };
                let n = len as u64;
                let fits = len <= MAX_CHUNK
                    && offset.checked_add(n).is_some_and(|end| end <= length)
                    && (n > 0 || offset == length);
                match check_chunk(offset, len, length) {
                    Ok(()) => assert!(fits, "{offset}+{len} of {length} accepted"),
                    Err(e) => {
                        assert!(!fits, "{offset}+{len} of {length} refused: {e}");
                        match e {
                            BadChunk::TooBig { len: l } => assert!(l == len && len > MAX_CHUNK),
                            BadChunk::PastEnd {
                                offset: o,
                                len: l,
                                length: m,
                            } => {
                                assert!(o == offset && l == n && m == length);
                            }
                            BadChunk::EmptyNotAtEnd {
                                offset: o,
                                length: m,
                            } => {
                                assert!(o == offset && m == length && n == 0);
                            }
                        }
                        continue;
                    }
                }
                activity.touch(clock);
                last_chunk = clock;
                match progress.turn(offset) {
                    Turn::Write => write(&mut progress, offset, n, length),
                    Turn::Wait => {
                        assert!(offset > progress.held && offset - progress.held <= REORDER_WINDOW);
                        waiting.push(Waiting {
                            offset,
                            len: n,
                            since: progress.generation,
                        });
                    }
                    Turn::Reject { have } => {
                        assert_eq!(have, progress.held);
                        assert!(offset - progress.held > REORDER_WINDOW);
                    }
                }
            }
            Op::Resume => progress.generation += 1,
            Op::Wake { which, timed_out } => {
                if waiting.is_empty() {
                    continue;
                }
                let i = usize::from(which) % waiting.len();
                let w = &waiting[i];
                let wakes = progress.wakes(w.offset, w.since);
                if !wakes && !timed_out {
                    continue;
                }
                let w = waiting.swap_remove(i);
                match progress.after_wait(w.offset, w.since) {
                    Turn::Write => {
                        assert!(wakes, "after_wait writes a chunk that does not wake");
                        assert_eq!(w.since, progress.generation, "a stale chunk was written");
                        write(&mut progress, w.offset, w.len, length);
                    }
                    Turn::Reject { have } => assert_eq!(have, progress.held),
                    Turn::Wait => panic!("after_wait never waits again"),
                }
            }
            Op::Tick { ms, chunk } => {
                clock += Duration::from_millis(u64::from(ms) * 10);
                if chunk {
                    activity.touch(clock);
                    last_chunk = clock;
                }
                assert_eq!(activity.idle(clock), clock - last_chunk >= SLOT_IDLE);
                // A clock read earlier by another task never makes the transfer look idle.
                activity.touch(start);
                assert_eq!(activity.idle(clock), clock - last_chunk >= SLOT_IDLE);
            }
        }
        assert!(progress.held >= before.held, "held went back");
        assert!(progress.held <= length, "held passed the length");
        assert!(progress.generation >= before.generation);
    }
});
