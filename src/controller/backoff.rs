//! Per-key retry delays for the controller: a [`BackoffRegistry`] of [`Backoff`]s made by a [`BackoffFactory`].
//!
//! The [`Backoff`] trait and its implementation live in [`crate::backoff`], shared with the
//! runtime; they are re-exported here so the controller's paths stay as they were.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

pub use crate::backoff::{Backoff, ExponentialJitterBackoff};

/// Builds a fresh [`Backoff`] for a key the first time it needs one.
pub type BackoffFactory = Arc<dyn Fn() -> Box<dyn Backoff> + Send + Sync>;

/// One [`Backoff`] per key, created on the key's first failure and forgotten on its success.
///
/// Forgetting (rather than keeping a reset entry) means memory is proportional to the number of
/// *currently failing* keys, not to every key ever seen.
pub struct BackoffRegistry<K> {
    factory: BackoffFactory,
    per_key: HashMap<K, Box<dyn Backoff>>,
}

impl<K: Eq + Hash + Clone> BackoffRegistry<K> {
    /// A registry creating each key's backoff with `factory`.
    pub fn new(factory: BackoffFactory) -> Self {
        Self {
            factory,
            per_key: HashMap::new(),
        }
    }

    /// The next delay for `key`, creating its backoff on first use.
    ///
    /// `None` means the key's policy gave up; its state is dropped so that a later failure
    /// starts from the initial delay again.
    pub fn next_delay(&mut self, key: &K) -> Option<Duration> {
        let delay = match self.per_key.get_mut(key) {
            Some(b) => b.next_delay(),
            None => {
                let mut b = (self.factory)();
                let d = b.next_delay();
                self.per_key.insert(key.clone(), b);
                d
            }
        };
        if delay.is_none() {
            self.per_key.remove(key);
        }
        delay
    }

    /// Reset `key`'s backoff to its initial delay, keeping the entry.
    pub fn reset(&mut self, key: &K) {
        if let Some(b) = self.per_key.get_mut(key) {
            b.reset();
        }
    }

    /// Drop `key`'s backoff (on success): its next failure starts from the initial delay.
    pub fn forget(&mut self, key: &K) {
        self.per_key.remove(key);
    }

    /// Number of keys currently holding backoff state.
    pub fn len(&self) -> usize {
        self.per_key.len()
    }

    /// Whether no key holds backoff state.
    pub fn is_empty(&self) -> bool {
        self.per_key.is_empty()
    }
}

impl<K> fmt::Debug for BackoffRegistry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffRegistry")
            .field("keys", &self.per_key.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic backoff for registry tests: 1, 2, 3, ... seconds; gives up after `limit`.
    struct Counting {
        n: u64,
        limit: u64,
    }
    impl Backoff for Counting {
        fn next_delay(&mut self) -> Option<Duration> {
            self.n += 1;
            (self.n <= self.limit).then(|| Duration::from_secs(self.n))
        }
        fn reset(&mut self) {
            self.n = 0;
        }
    }

    fn counting(limit: u64) -> BackoffRegistry<&'static str> {
        BackoffRegistry::new(Arc::new(move || Box::new(Counting { n: 0, limit })))
    }

    #[test]
    fn registry_is_per_key_and_forgets_on_success() {
        let mut r = counting(100);
        assert_eq!(r.next_delay(&"a"), Some(Duration::from_secs(1)));
        assert_eq!(r.next_delay(&"a"), Some(Duration::from_secs(2)));
        assert_eq!(r.next_delay(&"b"), Some(Duration::from_secs(1)));
        assert_eq!(r.len(), 2);

        r.forget(&"a");
        assert_eq!(r.len(), 1);
        assert_eq!(r.next_delay(&"a"), Some(Duration::from_secs(1)));
        assert_eq!(r.next_delay(&"b"), Some(Duration::from_secs(2)));

        r.reset(&"b");
        assert_eq!(r.next_delay(&"b"), Some(Duration::from_secs(1)));
    }

    #[test]
    fn registry_drops_state_when_policy_gives_up() {
        let mut r = counting(2);
        assert!(r.next_delay(&"a").is_some());
        assert!(r.next_delay(&"a").is_some());
        assert_eq!(r.next_delay(&"a"), None);
        assert!(r.is_empty());
        assert_eq!(r.next_delay(&"a"), Some(Duration::from_secs(1)));
    }
}
