//! Retry schedule for transient delivery failures: jittered exponential backoff.

use std::time::Duration;

/// First retry delay.
pub const BASE: Duration = Duration::from_millis(500);
/// Longest delay between attempts.
pub const CAP: Duration = Duration::from_secs(300);
/// First pause of a sync task whose peer answered `rate-limit-exceeded`.
pub const RATE_LIMIT_BASE: Duration = Duration::from_secs(1);
/// Longest such pause: a peer over its rate still gets a burst's worth through this often.
pub const RATE_LIMIT_CAP: Duration = Duration::from_secs(30);

/// Delay before attempt `attempts + 1`, given a uniform `jitter` in `[0, 1)`.
///
/// The delay doubles with each attempt up to [`CAP`]; the actual wait is drawn from the upper
/// half of that ("equal jitter"), so peers that failed together do not retry together.
pub fn delay(attempts: u32, jitter: f64) -> Duration {
    jittered(BASE, CAP, attempts, jitter)
}

/// How long a sync task pauses after its `times`-th pass in a row that the peer cut short with
/// `rate-limit-exceeded` without taking anything (0 for the first, or when the pass delivered
/// something), given a uniform `jitter` in `[0, 1)`.
///
/// Every pause is at least half a second, and a pass stops at the first refusal, so an honest
/// sender stays below the refusals that make a receiver cut it off (`cooldown`).
pub fn rate_limit_pause(times: u32, jitter: f64) -> Duration {
    jittered(RATE_LIMIT_BASE, RATE_LIMIT_CAP, times, jitter)
}

/// `base` doubled `attempts` times, capped at `cap`, drawn from the upper half ("equal jitter").
fn jittered(base: Duration, cap: Duration, attempts: u32, jitter: f64) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(attempts.min(20)).unwrap_or(u32::MAX));
    let full = exp.min(cap);
    let jitter = jitter.clamp(0.0, 1.0);
    full.mul_f64(0.5 + 0.5 * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        assert_eq!(delay(0, 1.0), Duration::from_millis(500));
        assert_eq!(delay(0, 0.0), Duration::from_millis(250));
        assert_eq!(delay(3, 1.0), Duration::from_secs(4));
        assert_eq!(delay(30, 1.0), CAP);
        assert_eq!(delay(u32::MAX, 0.0), CAP / 2);
        let mut last = Duration::ZERO;
        for a in 0..12 {
            let d = delay(a, 1.0);
            assert!(d >= last && d <= CAP);
            last = d;
        }
    }

    #[test]
    fn rate_limit_pauses_leave_an_honest_sender_far_below_a_cool_down() {
        assert_eq!(rate_limit_pause(0, 0.0), Duration::from_millis(500));
        assert_eq!(rate_limit_pause(1, 1.0), Duration::from_secs(2));
        assert_eq!(rate_limit_pause(40, 1.0), RATE_LIMIT_CAP);
        // The worst honest case: every pass delivers something (the pause never grows) and
        // has a whole window of requests refused. Passes that fit in a cool-down window:
        let policy = crate::node::cooldown::Policy::default();
        let (mut at, mut passes) = (Duration::ZERO, 0u32);
        while at < policy.window {
            at += rate_limit_pause(0, 0.0);
            passes += 1;
        }
        let refusals = passes as usize * crate::node::sync::MESSAGE_CONCURRENCY;
        assert!(
            refusals < policy.strikes as usize,
            "{refusals} refusals in {:?}",
            policy.window
        );
    }
}
