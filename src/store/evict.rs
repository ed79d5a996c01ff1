//! Which stored messages make room for a new one when the store's quota is used up: a pure
//! function of the messages held and the time, apart from the I/O that gathers them
//! ([`super::quota`]) and removes them (`expiry.rs`), so the order is tested without a disk and
//! can grow new rules (per-sender fairness, priorities) without touching either.
//!
//! The order (`protocols/store.md`, "Quota and eviction"):
//!
//! 1. expired messages, whoever sent them: they are dead weight the next collection removes
//!    anyway;
//! 2. partial transfers nobody is writing (their sender went away mid-transfer): each holds
//!    its whole declared length of the quota, and is worth nothing until its sender comes back
//!    (which then starts over), soonest to expire first;
//! 3. messages this node carries for others (and its own that already reached a peer), the
//!    soonest to expire first: they are worth least to the network, and every one of them is
//!    held by at least the peer it came from;
//! 4. never this node's own messages that no peer has yet: the store is their only copy.
//!
//! Ties go to the smaller id, so the choice is deterministic. Nothing is chosen unless the
//! choice frees enough: evicting messages for a newcomer that is refused anyway would lose them
//! for nothing.

use crate::message::MessageId;

/// A message, complete or partly received, as eviction sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The message.
    pub(crate) id: MessageId,
    /// Its declared content bytes: what evicting it frees of the quota.
    pub(crate) length: u64,
    /// Whether it is a partial transfer nobody is writing (else a complete message).
    pub(crate) partial: bool,
    /// When it expires (Unix ms, `created_ms + lifespan_ms`).
    pub(crate) expires_ms: u64,
    /// Whether it is this node's own and no peer has it yet.
    pub(crate) own_unsent: bool,
}

impl Candidate {
    fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms < now_ms
    }

    /// Whether it may go at all at `now_ms`.
    fn evictable(&self, now_ms: u64) -> bool {
        self.expired(now_ms) || !self.own_unsent
    }
}

/// Why no set of messages frees `need` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shortfall {
    /// Bytes that had to be freed.
    pub(crate) need: u64,
    /// Bytes the evictable messages hold together (less than `need`).
    pub(crate) evictable: u64,
    /// Bytes held by this node's own unexpired messages that no peer has: what keeps the room.
    pub(crate) own_unsent: u64,
}

/// The messages to evict, in order, so that their lengths add up to at least `need` bytes;
/// empty if `need` is 0. Fails, choosing nothing, when every evictable message together frees
/// less.
pub(crate) fn plan(
    candidates: &[Candidate],
    need: u64,
    now_ms: u64,
) -> Result<Vec<MessageId>, Shortfall> {
    if need == 0 {
        return Ok(Vec::new());
    }
    let mut order: Vec<&Candidate> = candidates.iter().filter(|c| c.evictable(now_ms)).collect();
    order.sort_by_key(|c| (!c.expired(now_ms), !c.partial, c.expires_ms, c.id));
    let mut freed = 0u64;
    let mut chosen = Vec::new();
    for c in order {
        if freed >= need {
            break;
        }
        freed = freed.saturating_add(c.length);
        chosen.push(c.id);
    }
    if freed >= need {
        return Ok(chosen);
    }
    let own_unsent = candidates
        .iter()
        .filter(|c| !c.evictable(now_ms))
        .fold(0u64, |sum, c| sum.saturating_add(c.length));
    Err(Shortfall {
        need,
        evictable: freed,
        own_unsent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    fn c(n: u8, length: u64, expires_ms: u64, own_unsent: bool) -> Candidate {
        Candidate {
            id: MessageId([n; 32]),
            length,
            partial: false,
            expires_ms,
            own_unsent,
        }
    }

    fn partial(n: u8, length: u64, expires_ms: u64) -> Candidate {
        Candidate {
            partial: true,
            ..c(n, length, expires_ms, false)
        }
    }

    fn ids(v: &[u8]) -> Vec<MessageId> {
        v.iter().map(|&n| MessageId([n; 32])).collect()
    }

    #[test]
    fn nothing_needed_evicts_nothing() {
        assert_eq!(plan(&[c(1, 10, 0, false)], 0, NOW), Ok(Vec::new()));
    }

    #[test]
    fn expired_go_first_then_the_soonest_to_expire() {
        let held = [
            c(1, 10, NOW + 50, false),
            c(2, 10, NOW + 10, false),
            c(3, 10, NOW - 1, false),
            c(4, 10, NOW + 30, false),
            c(5, 10, NOW - 100, true),
        ];
        // Both expired ones (own or not), then relayed by expiry.
        assert_eq!(plan(&held, 35, NOW), Ok(ids(&[5, 3, 2, 4])));
        assert_eq!(plan(&held, 1, NOW), Ok(ids(&[5])));
        assert_eq!(plan(&held, 50, NOW), Ok(ids(&[5, 3, 2, 4, 1])));
    }

    #[test]
    fn idle_partial_transfers_go_after_the_expired_and_before_complete_messages() {
        let held = [
            c(1, 10, NOW + 5, false),
            partial(2, 10, NOW + 50),
            c(3, 10, NOW - 1, false),
            partial(4, 10, NOW + 20),
            partial(5, 10, NOW - 2),
        ];
        // Expired first (partial or not), then the other partials by expiry, then the rest.
        assert_eq!(plan(&held, 50, NOW), Ok(ids(&[5, 3, 4, 2, 1])));
        assert_eq!(plan(&held, 30, NOW), Ok(ids(&[5, 3, 4])));
    }

    #[test]
    fn stops_as_soon_as_enough_is_freed() {
        let held = [c(1, 100, NOW + 1, false), c(2, 1, NOW + 2, false)];
        assert_eq!(plan(&held, 50, NOW), Ok(ids(&[1])));
    }

    #[test]
    fn own_unsent_messages_are_never_chosen() {
        let held = [
            c(1, 10, NOW + 1, true),
            c(2, 10, NOW + 99, false),
            c(3, 10, NOW + 5, true),
        ];
        assert_eq!(plan(&held, 10, NOW), Ok(ids(&[2])));
        assert_eq!(
            plan(&held, 11, NOW),
            Err(Shortfall {
                need: 11,
                evictable: 10,
                own_unsent: 20
            })
        );
    }

    #[test]
    fn an_own_message_expiring_now_is_still_kept() {
        // `now == expires`: still live (a message lives while now <= created + lifespan).
        let held = [c(1, 10, NOW, true)];
        assert!(plan(&held, 1, NOW).is_err());
        assert_eq!(plan(&held, 1, NOW + 1), Ok(ids(&[1])));
    }

    #[test]
    fn ties_are_broken_by_id() {
        let held = [c(9, 10, NOW + 5, false), c(2, 10, NOW + 5, false)];
        assert_eq!(plan(&held, 10, NOW), Ok(ids(&[2])));
    }

    #[test]
    fn nothing_is_chosen_when_it_cannot_fit() {
        let held = [c(1, 10, NOW - 5, false), c(2, 10, NOW + 5, false)];
        assert_eq!(
            plan(&held, 21, NOW),
            Err(Shortfall {
                need: 21,
                evictable: 20,
                own_unsent: 0
            })
        );
        assert!(plan(&[], 1, NOW).is_err());
    }
}
