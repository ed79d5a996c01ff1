//! Claims: which peer is about to push a message this node lacks, so that the other peers
//! offering it at the same moment hold back (`protocols/diff.md` §3.1).
//!
//! When several peers learn a new message at once they all diff it with this node, all hear
//! "lacking", and all push its content; all but the first push are wasted on the wire. A diff
//! answer therefore claims each lacking id for the asking peer for [`CLAIM_TTL`]; others asking
//! meanwhile hear [`State::Claimed`] and offer it again later, when it is usually held.
//!
//! Pure: the time comes in as an argument, nothing is persisted (after a restart the worst
//! case is one redundant push per message, as without claims).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::message::MessageId;
use crate::protocol::diff::State;

/// How long a claim holds off other peers. Long enough to cover a pass's diffs followed by its
/// pushes; short enough that a claimer that vanished delays the message by little. A transfer
/// in progress holds others off by itself (see [`Claims::answer`]).
pub(super) const CLAIM_TTL: Duration = Duration::from_secs(10);

/// Most claims held at once: beyond, ids are answered lacking without a claim (the behaviour
/// without claims), so a peer diffing many ids cannot grow memory.
pub(super) const MAX_CLAIMS: usize = 16_384;

/// Claims by message id (live, or expired and not yet replaced).
#[derive(Debug, Default)]
pub(super) struct Claims {
    held: HashMap<MessageId, Claim>,
}

/// One peer's claim on one message.
#[derive(Debug, Clone, Copy)]
struct Claim {
    owner: PeerId,
    /// Fixed when the claim is made: asking again does not extend it, so a peer that keeps
    /// asking and never pushes cannot hold a message back from the others for longer.
    until: Instant,
    /// Another peer was told [`State::Claimed`] while this claim was live.
    contested: bool,
}

impl Claims {
    /// The state of one offered id for `peer`: `held` says whether the store holds it complete,
    /// `receiving_from` which peer (if any) has a transfer of it open right now.
    pub(super) fn answer(
        &mut self,
        peer: PeerId,
        id: MessageId,
        held: bool,
        receiving_from: Option<PeerId>,
        now: Instant,
    ) -> State {
        if held {
            self.held.remove(&id);
            return State::Has;
        }
        if receiving_from.is_some_and(|p| p != peer) {
            return State::Claimed;
        }
        if let Some(claim) = self.held.get_mut(&id) {
            let live = claim.until > now;
            match (claim.owner == peer, live) {
                // The owner asking again: still its to push, but no longer than first granted.
                (true, true) => return State::Lacks,
                (false, true) => {
                    claim.contested = true;
                    return State::Claimed;
                }
                // The owner let its claim lapse while others waited: it may still push, but
                // does not get the message reserved again; the next other asker does.
                (true, false) if claim.contested => return State::Lacks,
                _ => {}
            }
        }
        if self.held.len() >= MAX_CLAIMS && !self.held.contains_key(&id) {
            self.held.retain(|_, claim| claim.until > now);
            if self.held.len() >= MAX_CLAIMS {
                return State::Lacks;
            }
        }
        let claim = Claim {
            owner: peer,
            until: now + CLAIM_TTL,
            contested: false,
        };
        self.held.insert(id, claim);
        State::Lacks
    }

    /// Claims held (for tests and status).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> (PeerId, PeerId) {
        (PeerId::random(), PeerId::random())
    }

    #[test]
    fn first_asker_claims_and_others_wait() {
        let (a, b) = peers();
        let id = MessageId([1; 32]);
        let now = Instant::now();
        let mut claims = Claims::default();
        assert_eq!(claims.answer(a, id, false, None, now), State::Lacks);
        assert_eq!(claims.answer(b, id, false, None, now), State::Claimed);
        // The claimer asking again keeps its claim (not extended).
        assert_eq!(claims.answer(a, id, false, None, now), State::Lacks);
        // Once stored, everyone hears Has and the claim is dropped.
        assert_eq!(claims.answer(b, id, true, None, now), State::Has);
        assert_eq!(claims.len(), 0);
    }

    #[test]
    fn a_peer_that_never_pushes_cannot_hold_a_message_back() {
        let (a, b) = peers();
        let id = MessageId([4; 32]);
        let t0 = Instant::now();
        let mut claims = Claims::default();
        assert_eq!(claims.answer(a, id, false, None, t0), State::Lacks);
        // Asking again just before the claim ends does not extend it.
        let almost = t0 + CLAIM_TTL - Duration::from_millis(1);
        assert_eq!(claims.answer(a, id, false, None, almost), State::Lacks);
        assert_eq!(claims.answer(b, id, false, None, almost), State::Claimed);
        // Lapsed while B waited: A, asking first, is not given it again; B then is.
        let later = t0 + CLAIM_TTL;
        assert_eq!(claims.answer(a, id, false, None, later), State::Lacks);
        assert_eq!(claims.answer(b, id, false, None, later), State::Lacks);
        assert_eq!(claims.answer(a, id, false, None, later), State::Claimed);
    }

    #[test]
    fn claims_expire() {
        let (a, b) = peers();
        let id = MessageId([2; 32]);
        let now = Instant::now();
        let mut claims = Claims::default();
        assert_eq!(claims.answer(a, id, false, None, now), State::Lacks);
        let later = now + CLAIM_TTL;
        assert_eq!(claims.answer(b, id, false, None, later), State::Lacks);
        assert_eq!(claims.answer(a, id, false, None, later), State::Claimed);
    }

    #[test]
    fn an_open_transfer_holds_others_off_even_without_a_claim() {
        let (a, b) = peers();
        let id = MessageId([3; 32]);
        let mut claims = Claims::default();
        let now = Instant::now();
        assert_eq!(claims.answer(b, id, false, Some(a), now), State::Claimed);
        // The peer sending it may resume.
        assert_eq!(claims.answer(a, id, false, Some(a), now), State::Lacks);
    }

    #[test]
    fn a_full_table_answers_lacks_without_claiming() {
        let (a, b) = peers();
        let now = Instant::now();
        let mut claims = Claims::default();
        for i in 0..MAX_CLAIMS {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            assert_eq!(
                claims.answer(a, MessageId(id), false, None, now),
                State::Lacks
            );
        }
        let extra = MessageId([0xee; 32]);
        assert_eq!(claims.answer(a, extra, false, None, now), State::Lacks);
        assert_eq!(claims.answer(b, extra, false, None, now), State::Lacks);
        assert_eq!(claims.len(), MAX_CLAIMS);
        // Expired claims make room again.
        let later = now + CLAIM_TTL;
        assert_eq!(claims.answer(a, extra, false, None, later), State::Lacks);
        assert_eq!(claims.answer(b, extra, false, None, later), State::Claimed);
        assert_eq!(claims.len(), 1);
    }
}
