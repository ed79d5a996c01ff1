//! Retry schedule for transient delivery failures: jittered exponential backoff.

use std::time::Duration;

/// First retry delay.
pub const BASE: Duration = Duration::from_millis(500);
/// Longest delay between attempts.
pub const CAP: Duration = Duration::from_secs(300);

/// Delay before attempt `attempts + 1`, given a uniform `jitter` in `[0, 1)`.
///
/// The delay doubles with each attempt up to [`CAP`]; the actual wait is drawn from the upper
/// half of that ("equal jitter"), so peers that failed together do not retry together.
pub fn delay(attempts: u32, jitter: f64) -> Duration {
    let exp = BASE.saturating_mul(1u32.checked_shl(attempts.min(20)).unwrap_or(u32::MAX));
    let full = exp.min(CAP);
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
}
