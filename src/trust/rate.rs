//! A sliding-window request counter: requests per second averaged over the last ten seconds.
//!
//! Ten one-second buckets in a ring; a request is admitted while the admitted requests of the
//! window stay within `rate × 10`. Memory is fixed (ten counters) however many callers share
//! it, and time is an argument, so tests drive it without clocks.

use std::time::Instant;

/// Seconds in the window (one bucket each).
pub const WINDOW_SECS: usize = 10;

/// The counters of one window; one per access-list entry.
#[derive(Clone, Debug, Default)]
pub struct Window {
    counts: [u32; WINDOW_SECS],
    origin: Option<Instant>,
    /// The second (since `origin`) of the newest bucket.
    head: u64,
}

impl Window {
    /// Admits one request at `now` if the window's average stays within `rate` per second;
    /// only admitted requests count.
    pub fn try_admit(&mut self, rate: f64, now: Instant) -> bool {
        self.advance(now);
        let admitted: u64 = self.counts.iter().map(|&c| u64::from(c)).sum();
        if (admitted + 1) as f64 > rate * WINDOW_SECS as f64 {
            return false;
        }
        let bucket = (self.head % WINDOW_SECS as u64) as usize;
        if let Some(count) = self.counts.get_mut(bucket) {
            *count = count.saturating_add(1);
        }
        true
    }

    /// Moves the head to `now`'s second, clearing the buckets that left the window. An
    /// instant older than the head counts in the head's bucket.
    fn advance(&mut self, now: Instant) {
        let origin = *self.origin.get_or_insert(now);
        let second = now.saturating_duration_since(origin).as_secs();
        if second <= self.head {
            return;
        }
        let steps = (second - self.head).min(WINDOW_SECS as u64);
        for i in 1..=steps {
            let bucket = ((self.head + i) % WINDOW_SECS as u64) as usize;
            if let Some(count) = self.counts.get_mut(bucket) {
                *count = 0;
            }
        }
        self.head = second;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn averages_over_ten_seconds() {
        let start = Instant::now();
        let mut w = Window::default();
        // 2/s over 10 s = 20 requests, at once if they come at once.
        assert_eq!((0..25).filter(|_| w.try_admit(2.0, start)).count(), 20);
        // Still full 9.9 s later; the first second's bucket leaves at 10 s.
        assert!(!w.try_admit(2.0, start + Duration::from_millis(9_900)));
        assert!(w.try_admit(2.0, start + Duration::from_secs(10)));
        // After a long pause the whole window is free again.
        let later = start + Duration::from_secs(1_000);
        assert_eq!((0..25).filter(|_| w.try_admit(2.0, later)).count(), 20);
    }

    #[test]
    fn spread_requests_pass_at_the_rate() {
        let start = Instant::now();
        let mut w = Window::default();
        // One request every 100 ms is 10/s: all pass at rate 10, half at rate 5 (after the
        // first window fills).
        let passed = (0..300)
            .filter(|i| w.try_admit(10.0, start + Duration::from_millis(i * 100)))
            .count();
        assert_eq!(passed, 300);
        let mut w = Window::default();
        let passed = (0..300)
            .filter(|i| w.try_admit(5.0, start + Duration::from_millis(i * 100)))
            .count();
        assert!((150..=160).contains(&passed), "{passed}");
    }
}
