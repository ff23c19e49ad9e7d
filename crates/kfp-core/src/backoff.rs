//! Jittered exponential backoff ("equal jitter"), shared by the operator (API server retries, controllers' error
//! policy, Lease polls) and the provider services (event deliveries to the operator's feed): whatever fails together
//! must not retry in lockstep when the peer comes back (docs/decisions/0016-backoff-during-outages.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Exponential backoff with "equal jitter": after `n` consecutive failures the wait is drawn uniformly from
/// `[c/2, c]` where `c = min(initial * 2^(n-1), max)`. The jitter spreads objects and replicas that failed
/// together, so that they do not retry in lockstep when the API server comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling after the first failure.
    pub initial: Duration,
    /// The largest ceiling.
    pub max: Duration,
}

impl Backoff {
    /// A backoff starting at `initial`, doubling up to `max`.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max }
    }

    /// The ceiling of the wait after `failures` consecutive failures (0 counts as 1).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << exponent).min(self.max)
    }

    /// The wait after `failures` consecutive failures, jittered within `[ceiling/2, ceiling]`.
    pub fn delay(&self, failures: u32) -> Duration {
        jittered_within(self.ceiling(failures), jitter())
    }
}

/// `ceiling/2 + fraction * ceiling/2`, `fraction` in `[0, 1)`.
fn jittered_within(ceiling: Duration, fraction: f64) -> Duration {
    let half = ceiling / 2;
    half + half.mul_f64(fraction.clamp(0.0, 1.0))
}

/// A number in `[0, 1)` that differs between calls and processes. Not cryptographic: it only has to keep
/// retries apart (no `rand` dependency for that).
pub fn jitter() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    // SplitMix64 of the clock and a counter: consecutive calls in one nanosecond still differ.
    let mut z = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(300));
        let ceilings: Vec<u64> = (0..9).map(|n| backoff.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [5, 5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(300), "no overflow");
    }

    #[test]
    fn the_delay_stays_between_half_the_ceiling_and_the_ceiling() {
        let ceiling = Duration::from_secs(10);
        assert_eq!(jittered_within(ceiling, 0.0), Duration::from_secs(5));
        assert_eq!(jittered_within(ceiling, 0.5), Duration::from_millis(7500));
        assert!(jittered_within(ceiling, 0.999_999) <= ceiling);
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        for failures in 1..6 {
            let delay = backoff.delay(failures);
            let ceiling = backoff.ceiling(failures);
            assert!(delay >= ceiling / 2 && delay <= ceiling, "{failures}: {delay:?}");
        }
    }

    #[test]
    fn jitter_spreads_over_the_unit_interval() {
        let samples: Vec<f64> = (0..1000).map(|_| jitter()).collect();
        assert!(samples.iter().all(|x| (0.0..1.0).contains(x)));
        let low = samples.iter().filter(|x| **x < 0.5).count();
        assert!((300..700).contains(&low), "{low} of 1000 below 0.5");
    }
}
