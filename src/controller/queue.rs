//! The work queue: one slot per key, earliest run time wins, and keys in flight are held back (marked dirty) rather than run twice.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use tokio::time::Instant;

/// A deduplicating delay queue with in-flight tracking.
///
/// Each key is in at most one of two places:
///
/// - *scheduled*: waiting for its run time (one slot per key; scheduling it again keeps the
///   earliest time, because a trigger asking for "now" must not be delayed by an older
///   "in 5 minutes" requeue, and a later request is already covered by the earlier run, which
///   reconciles the whole state anyway);
/// - *running*: handed out by [`Queue::pop_due`] and not yet [`Queue::finish`]ed. Scheduling a
///   running key does not create a second slot; it marks the key dirty with the earliest
///   requested time, and [`Queue::finish`] puts it back into the schedule at that time. So a key
///   never has two reconciles at once, yet a change that lands during a reconcile (which that
///   reconcile may have read too early to see) is never lost.
///
/// Time is `tokio::time::Instant` so tests can drive it with `tokio::time::pause()`.
#[derive(Debug)]
pub(crate) struct Queue<K> {
    /// Scheduled keys -> their slot in `order`.
    scheduled: HashMap<K, (Instant, u64)>,
    /// Run order. The sequence number breaks ties between equal instants (FIFO) and lets us
    /// order keys that are neither `Ord` nor cheap to compare.
    order: BTreeMap<(Instant, u64), K>,
    /// Keys in flight -> earliest time requested while running (`Some` = dirty).
    running: HashMap<K, Option<Instant>>,
    next_seq: u64,
}

impl<K: Clone + Eq + Hash> Queue<K> {
    pub(crate) fn new() -> Self {
        Self {
            scheduled: HashMap::new(),
            order: BTreeMap::new(),
            running: HashMap::new(),
            next_seq: 0,
        }
    }

    /// Ask for `key` to run at `at` (or earlier, if it already has an earlier slot).
    pub(crate) fn schedule(&mut self, key: K, at: Instant) {
        if let Some(dirty) = self.running.get_mut(&key) {
            *dirty = Some(dirty.map_or(at, |d| d.min(at)));
            return;
        }
        if let Some(&(current, seq)) = self.scheduled.get(&key) {
            if current <= at {
                return;
            }
            self.order.remove(&(current, seq));
        }
        let slot = (at, self.next_seq);
        self.next_seq += 1;
        self.order.insert(slot, key.clone());
        self.scheduled.insert(key, slot);
    }

    /// Take the earliest key due at `now`, marking it running.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let entry = self.order.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let key = entry.remove();
        self.scheduled.remove(&key);
        self.running.insert(key.clone(), None);
        Some(key)
    }

    /// When the earliest scheduled key becomes due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.order.first_key_value().map(|(&(at, _), _)| at)
    }

    /// Mark `key`'s reconcile as finished; if it was scheduled meanwhile, schedule it now.
    ///
    /// Call this *before* applying the finished reconcile's own requeue, so both go through
    /// the earliest-wins rule.
    pub(crate) fn finish(&mut self, key: &K) {
        if let Some(Some(at)) = self.running.remove(key) {
            self.schedule(key.clone(), at);
        }
    }

    /// Keys waiting to run: scheduled plus dirty-while-running.
    pub(crate) fn depth(&self) -> usize {
        self.scheduled.len() + self.running.values().filter(|d| d.is_some()).count()
    }

    /// Keys handed out and not finished.
    pub(crate) fn in_flight(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn dedups_one_slot_per_key() {
        let mut q = Queue::new();
        let t0 = Instant::now();
        for _ in 0..10 {
            q.schedule("a", t0);
        }
        assert_eq!(q.depth(), 1);
        assert_eq!(q.pop_due(t0), Some("a"));
        assert_eq!(q.pop_due(t0), None);
    }

    #[test]
    fn earliest_time_wins_both_ways() {
        let mut q = Queue::new();
        let t0 = Instant::now();
        q.schedule("a", t0 + secs(10));
        q.schedule("a", t0 + secs(5)); // earlier: moves the slot
        q.schedule("a", t0 + secs(20)); // later: ignored
        assert_eq!(q.next_deadline(), Some(t0 + secs(5)));
        assert_eq!(q.pop_due(t0 + secs(4)), None);
        assert_eq!(q.pop_due(t0 + secs(5)), Some("a"));
        assert_eq!(q.depth(), 0);
    }

    #[test]
    fn pops_in_time_order_fifo_on_ties() {
        let mut q = Queue::new();
        let t0 = Instant::now();
        q.schedule("late", t0 + secs(2));
        q.schedule("x", t0);
        q.schedule("y", t0);
        let now = t0 + secs(2);
        assert_eq!(q.pop_due(now), Some("x"));
        assert_eq!(q.pop_due(now), Some("y"));
        assert_eq!(q.pop_due(now), Some("late"));
    }

    #[test]
    fn running_key_is_held_dirty_and_rescheduled_on_finish() {
        let mut q = Queue::new();
        let t0 = Instant::now();
        q.schedule("a", t0);
        assert_eq!(q.pop_due(t0), Some("a"));
        assert_eq!(q.in_flight(), 1);

        // Scheduled while running: not poppable, counted as waiting, earliest kept.
        q.schedule("a", t0 + secs(3));
        q.schedule("a", t0 + secs(1));
        q.schedule("a", t0 + secs(9));
        assert_eq!(q.depth(), 1);
        assert_eq!(q.pop_due(t0 + secs(100)), None);

        q.finish(&"a");
        assert_eq!(q.in_flight(), 0);
        assert_eq!(q.next_deadline(), Some(t0 + secs(1)));
        assert_eq!(q.pop_due(t0 + secs(1)), Some("a"));
    }

    #[test]
    fn finish_of_clean_key_schedules_nothing() {
        let mut q = Queue::new();
        let t0 = Instant::now();
        q.schedule("a", t0);
        q.pop_due(t0);
        q.finish(&"a");
        assert_eq!((q.depth(), q.in_flight()), (0, 0));
        assert_eq!(q.next_deadline(), None);
    }
}
