//! Answering pings (`mule chat`'s `/ping`, `protocols/envelope.md`): a message this node can
//! read whose envelope carries the `ping` marker gets a pong, sealed for the pinger's key alone,
//! naming the ping and the relays it passed. So the pinger learns who is reachable, the round
//! trip time and the hops of both legs, through the same store-carry-forward path as any
//! message.
//!
//! Answers are bounded: at most [`PER_SENDER`] pongs in a burst per pinger (refilling one every
//! [`SENDER_REFILL`]) and [`TOTAL_BURST`] over all pingers (refilling [`TOTAL_PER_SECOND`] a
//! second), so a ping flood cannot make this node flood the mesh. Pings older than
//! [`MAX_PING_AGE`] are not answered: a round trip measured over days says nothing useful, and
//! a node that comes back after a while would otherwise answer a backlog at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::arrivals::Arrival;
use super::auth::RateLimiter;
use super::ctx::Ctx;
use super::post::{Letter, Privacy};
use super::relay;
use crate::content::envelope::{Head, Pong};
use crate::message::Header;

/// Pongs per pinger in a burst.
pub const PER_SENDER: u32 = 3;
/// One more pong per pinger after this long.
pub const SENDER_REFILL: Duration = Duration::from_secs(5);
/// Pongs over all pingers in a burst.
pub const TOTAL_BURST: u32 = 10;
/// Pongs per second over all pingers, sustained.
pub const TOTAL_PER_SECOND: f64 = 2.0;
/// Pings created longer ago than this are not answered.
pub const MAX_PING_AGE: Duration = Duration::from_secs(600);
/// How long a pong is worth carrying.
pub const PONG_LIFESPAN: Duration = Duration::from_secs(600);
/// The text a pong carries, for readers that do not know the marker.
pub const PONG_TEXT: &str = "pong";

/// The pong that answers `head` of the message `header`, if it is a ping worth answering at
/// `now_ms` by the node `me` (pure).
pub fn answer(header: &Header, head: &Head, me: &relay::Me, now_ms: u64) -> Option<Pong> {
    head.ping.as_ref()?;
    if me.sent(header) {
        return None;
    }
    let age = now_ms.saturating_sub(header.created_ms);
    if u128::from(age) > MAX_PING_AGE.as_millis() {
        return None;
    }
    Some(Pong {
        ping: header.id.to_string(),
        hops: u32::try_from(header.hops.len()).unwrap_or(u32::MAX),
    })
}

/// The two token buckets that bound how many pongs leave.
#[derive(Debug)]
pub struct Budget {
    per_sender: RateLimiter<[u8; 32]>,
    total: RateLimiter<()>,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            per_sender: RateLimiter::new(1.0 / SENDER_REFILL.as_secs_f64(), PER_SENDER),
            total: RateLimiter::new(TOTAL_PER_SECOND, TOTAL_BURST),
        }
    }
}

impl Budget {
    /// Spends a pong for `sender` at `now`, if both buckets allow it.
    pub fn allows(&mut self, sender: &[u8; 32], now: Instant) -> bool {
        self.per_sender.allows(sender, now) && self.total.allows(&(), now)
    }
}

/// Answers the arrival if it is a ping worth answering and the budget allows.
pub(super) async fn on_arrival(ctx: &Arc<Ctx>, arrival: &Arrival, budget: &mut Budget) {
    let (header, id) = (&arrival.header, arrival.header.id);
    let now = crate::message::now_ms();
    let Some(pong) = answer(header, &arrival.head, &ctx.me, now) else {
        return;
    };
    if !budget.allows(&header.sender, Instant::now()) {
        tracing::debug!(id = %id.short(), "ping not answered: over the pong budget");
        return;
    }
    let Some(pinger) = crate::identity::peer_id_of(&header.sender) else {
        return;
    };
    let letter = Letter {
        text: Some(PONG_TEXT.to_string()),
        pong: Some(pong),
        ..Letter::default()
    };
    match super::post::post(
        ctx,
        pinger.to_string(),
        letter,
        &Privacy::ByRecipient,
        PONG_LIFESPAN,
    )
    .await
    {
        Ok(posted) => {
            tracing::info!(ping = %id.short(), pong = %posted.id, %pinger, "answered a ping");
        }
        Err(e) => tracing::warn!(ping = %id.short(), "could not answer a ping: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::envelope::Ping;
    use crate::identity::Identity;
    use serde_bytes::ByteBuf;

    fn ping_head() -> Head {
        Head {
            text: Some("ping".into()),
            ping: Some(Ping {}),
            ..Head::default()
        }
    }

    fn header(from: &Identity, created_ms: u64, hops: usize) -> anyhow::Result<Header> {
        let mut h = crate::message::Draft {
            recipient: "*".into(),
            created_ms,
            lifespan_ms: 3_600_000,
            chains: vec![],
        }
        .sign(from, b"x")?;
        h.hops = (0..hops).map(|i| ByteBuf::from(vec![i as u8])).collect();
        Ok(h)
    }

    #[test]
    fn pings_from_others_are_answered_with_their_id_and_hops() -> anyhow::Result<()> {
        let (alice, bob) = (Identity::generate(), Identity::generate());
        let me = relay::Me::of(&bob);
        let now = 1_000_000_000;
        let h = header(&alice, now - 1_000, 2)?;
        let pong = answer(&h, &ping_head(), &me, now).ok_or_else(|| anyhow::anyhow!("none"))?;
        assert_eq!(pong.ping, h.id.to_string());
        assert_eq!(pong.hops, 2);
        // Not a ping, our own ping, a ping too old: no answer.
        let text = Head {
            text: Some("hi".into()),
            ..Head::default()
        };
        assert_eq!(answer(&h, &text, &me, now), None);
        assert_eq!(answer(&h, &ping_head(), &relay::Me::of(&alice), now), None);
        let old = header(&alice, now - MAX_PING_AGE.as_millis() as u64 - 1, 0)?;
        assert_eq!(answer(&old, &ping_head(), &me, now), None);
        Ok(())
    }

    #[test]
    fn the_budget_bounds_pongs_per_pinger_and_in_all() {
        let mut budget = Budget::default();
        let t = Instant::now();
        let a = [1u8; 32];
        for _ in 0..PER_SENDER {
            assert!(budget.allows(&a, t));
        }
        assert!(!budget.allows(&a, t), "a pinger's burst is spent");
        assert!(budget.allows(&a, t + SENDER_REFILL), "and refills");
        // Many pingers at once: the total burst caps them.
        let mut answered = 0;
        for i in 0..100u8 {
            if budget.allows(&[i.wrapping_add(2); 32], t + SENDER_REFILL) {
                answered += 1;
            }
        }
        // Five seconds refilled the total bucket too: all but the one pong just spent.
        assert_eq!(answered, TOTAL_BURST - 1);
    }
}
