//! Retry delays: our own [`Backoff`] trait and its one exponential implementation, shared by the controller and the runtime.
//!
//! # Why our own trait
//!
//! The `backoff` crate is unmaintained (RUSTSEC-2025-0012; its `instant` dependency is flagged
//! too, RUSTSEC-2024-0384). We still use its well-tested `ExponentialBackoff`, but only inside
//! [`ExponentialJitterBackoff`] in this file: everything else talks to [`Backoff`] (the
//! controller's per-key retries) or to [`ExponentialJitterBackoff`]'s constructors (the Docker
//! runtime's event-stream resubscription and `exec` poll), so replacing the crate (or
//! hand-rolling the ~20 lines of maths) touches this file only.

use std::fmt;
use std::time::Duration;

use ::backoff::backoff::Backoff as _;

/// A retry-delay policy: the delays to wait between consecutive failures of one thing.
pub trait Backoff: Send {
    /// The delay before the next retry, or `None` to give up retrying.
    fn next_delay(&mut self) -> Option<Duration>;
    /// Start over, as if no failure had happened.
    fn reset(&mut self);
}

impl<B: Backoff + ?Sized> Backoff for Box<B> {
    fn next_delay(&mut self) -> Option<Duration> {
        (**self).next_delay()
    }
    fn reset(&mut self) {
        (**self).reset()
    }
}

/// Exponential backoff with jitter that never gives up.
///
/// Attempt `n` (from 0) has a nominal interval `min(initial * 2^n, max / 1.5)` and returns a
/// delay drawn uniformly from `nominal * [0.5, 1.5]`, so every delay lies in
/// `[initial / 2, max]`. The nominal cap is `max / 1.5` rather than `max` so that the jitter
/// keeps its full spread at the cap while `max` stays a hard upper bound; a plain clamp would
/// pile half of all capped delays onto exactly `max`, re-synchronising the retries that jitter
/// exists to spread out.
///
/// [`without_jitter`](Self::without_jitter) builds the same doubling with the jitter off:
/// exactly `initial`, `2 * initial`, … up to `max`, for one waiter with no herd to spread out.
pub struct ExponentialJitterBackoff {
    inner: ::backoff::ExponentialBackoff,
    max: Duration,
}

impl ExponentialJitterBackoff {
    /// Jitter: each delay is the nominal interval ±50%.
    pub const RANDOMIZATION_FACTOR: f64 = 0.5;
    /// Growth of the nominal interval per consecutive failure.
    pub const MULTIPLIER: f64 = 2.0;
    /// Floor for `initial`: a zero initial interval would stay zero forever (0 * 2 = 0) and
    /// turn "back off" into a hot loop.
    pub const MIN_INITIAL: Duration = Duration::from_millis(1);

    /// A backoff starting around `initial` and never exceeding `max`.
    ///
    /// `initial` is raised to [`Self::MIN_INITIAL`] and `max` to `initial` if needed.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self::build(initial, max, Self::RANDOMIZATION_FACTOR)
    }

    /// The same doubling without jitter: `initial`, `2 * initial`, `4 * initial`, … then `max`
    /// from the first delay that would exceed it.
    ///
    /// `initial` is raised to [`Self::MIN_INITIAL`] and `max` to `initial` if needed.
    pub fn without_jitter(initial: Duration, max: Duration) -> Self {
        Self::build(initial, max, 0.0)
    }

    fn build(initial: Duration, max: Duration, randomization_factor: f64) -> Self {
        let initial = initial.max(Self::MIN_INITIAL);
        let max = max.max(initial);
        // Largest nominal interval whose jitter still fits under `max`.
        let nominal_cap = max.div_f64(1.0 + randomization_factor);
        let inner = ::backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(initial.min(nominal_cap))
            .with_max_interval(nominal_cap)
            .with_multiplier(Self::MULTIPLIER)
            .with_randomization_factor(randomization_factor)
            // Never give up: a controller retries a broken key for as long as it exists, and a
            // waiter decides itself when it has waited long enough.
            .with_max_elapsed_time(None)
            .build();
        Self { inner, max }
    }
}

impl fmt::Debug for ExponentialJitterBackoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExponentialJitterBackoff")
            .field("current_interval", &self.inner.current_interval)
            .field("initial_interval", &self.inner.initial_interval)
            .field("max", &self.max)
            .finish()
    }
}

impl Backoff for ExponentialJitterBackoff {
    fn next_delay(&mut self) -> Option<Duration> {
        // The crate's interval formula can overshoot by a nanosecond (it samples
        // `[min, max + 1ns)`); the clamp keeps `max` a true bound. It also never returns `None`
        // with `max_elapsed_time: None`, but we pass `None` through rather than assume it.
        self.inner.next_backoff().map(|d| d.min(self.max))
    }

    fn reset(&mut self) {
        self.inner.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(30);
    // Float <-> nanosecond conversions inside the crate can be off by a few ns.
    const EPS: Duration = Duration::from_micros(1);

    fn nominal(attempt: u32) -> Duration {
        let cap = MAX.div_f64(1.5);
        INITIAL
            .checked_mul(2u32.saturating_pow(attempt))
            .unwrap_or(cap)
            .min(cap)
    }

    #[test]
    fn jitter_stays_within_bounds() {
        // Many independent sequences: each delay must be within ±50% of its nominal interval
        // and never above MAX, and the samples must actually spread (jitter is on).
        let mut saw_below = false;
        let mut saw_above = false;
        for _ in 0..200 {
            let mut b = ExponentialJitterBackoff::new(INITIAL, MAX);
            for attempt in 0..20 {
                let n = nominal(attempt);
                let d = b.next_delay().expect("never gives up");
                assert!(
                    d + EPS >= n.mul_f64(0.5),
                    "attempt {attempt}: {d:?} < 0.5 * {n:?}"
                );
                assert!(
                    d <= n.mul_f64(1.5) + EPS,
                    "attempt {attempt}: {d:?} > 1.5 * {n:?}"
                );
                assert!(d <= MAX, "attempt {attempt}: {d:?} > max");
                saw_below |= d < n;
                saw_above |= d > n;
            }
        }
        assert!(saw_below && saw_above, "delays are not jittered");
    }

    #[test]
    fn grows_exponentially_then_caps() {
        let mut b = ExponentialJitterBackoff::new(INITIAL, MAX);
        let first = b.next_delay().unwrap();
        assert!(first <= INITIAL.mul_f64(1.5) + EPS);
        // After enough attempts we are at the cap: delays in [cap/2, MAX] = [10s, 30s].
        for _ in 0..30 {
            b.next_delay();
        }
        for _ in 0..50 {
            let d = b.next_delay().unwrap();
            assert!(d >= Duration::from_secs(10) - EPS && d <= MAX, "{d:?}");
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut b = ExponentialJitterBackoff::new(INITIAL, MAX);
        for _ in 0..10 {
            b.next_delay();
        }
        b.reset();
        let d = b.next_delay().unwrap();
        assert!(d <= INITIAL.mul_f64(1.5) + EPS, "{d:?}");
    }

    #[test]
    fn never_gives_up() {
        let mut b =
            ExponentialJitterBackoff::new(Duration::from_millis(1), Duration::from_millis(4));
        assert!((0..10_000).all(|_| b.next_delay().is_some()));
    }

    #[test]
    fn degenerate_config_is_sane() {
        // Zero initial would stay zero forever; it is floored instead.
        let mut b = ExponentialJitterBackoff::new(Duration::ZERO, Duration::ZERO);
        let d = b.next_delay().unwrap();
        assert!(d > Duration::ZERO && d <= ExponentialJitterBackoff::MIN_INITIAL);
        // initial > max: max wins as the bound.
        let mut b = ExponentialJitterBackoff::new(Duration::from_secs(10), Duration::from_secs(1));
        assert!(b.next_delay().unwrap() <= Duration::from_secs(10));
    }

    #[test]
    fn without_jitter_doubles_exactly_up_to_the_cap() {
        let ms = Duration::from_millis;
        let mut b = ExponentialJitterBackoff::without_jitter(ms(250), ms(5000));
        let got: Vec<Duration> = (0..8).map(|_| b.next_delay().unwrap()).collect();
        let want = [250, 500, 1000, 2000, 4000, 5000, 5000, 5000].map(ms);
        assert_eq!(got, want);
        b.reset();
        assert_eq!(b.next_delay(), Some(ms(250)));
    }
}
