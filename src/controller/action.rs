//! [`Action`]: what a reconcile (or an error policy) asks the controller to do with its key next.

use std::time::Duration;

/// What the controller should do with a key after a reconcile of it.
///
/// Returned by the reconcile function on success and by the error policy on failure.
///
/// # Why an explicit value instead of "requeue on error, otherwise never"
///
/// A reconciler is level-triggered: it looks at the whole current state and converges it, so
/// it is always safe to run it again. What differs between outcomes is only *when* it needs to
/// run again, and only the reconciler knows that:
///
/// - Something it cannot watch (a timer, an external system without events) will change by
///   itself: [`Action::requeue`] with a duration.
/// - Everything it depends on produces triggers (store watch, Docker events): there is nothing
///   to poll, so [`Action::await_change`]. The periodic resync still revisits the key, which
///   protects against lost events.
/// - It failed, or is waiting for something that has no event and no known deadline:
///   [`Action::backoff`] lets the controller pick a per-key, jittered, exponentially growing
///   delay, so a broken key neither hot-loops nor synchronises its retries with other keys.
///
/// Note that an incoming trigger for a key always wins over a later scheduled run (earliest
/// wins), so none of these delays hold back a reaction to a real change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Action {
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Requeue(Duration),
    AwaitChange,
    Backoff,
}

impl Action {
    /// Reconcile this key again after `after`, even if nothing triggers it.
    ///
    /// A zero duration means "as soon as a worker is free" (and after the current reconcile of
    /// the key has finished: one key never has two reconciles in flight).
    pub const fn requeue(after: Duration) -> Self {
        Self {
            kind: Kind::Requeue(after),
        }
    }

    /// Do not schedule anything: wait for a trigger (or the periodic resync).
    pub const fn await_change() -> Self {
        Self {
            kind: Kind::AwaitChange,
        }
    }

    /// Reconcile again after this key's next exponential, jittered backoff delay.
    ///
    /// This is what error policies usually return. The key's backoff grows with each
    /// consecutive `backoff()` outcome and is forgotten when a reconcile of the key returns
    /// `Ok` with any *other* action. Returning `Ok(Action::backoff())` from a reconcile is
    /// therefore a way to say "not done yet, poll me with growing delays" without counting an
    /// error.
    pub const fn backoff() -> Self {
        Self {
            kind: Kind::Backoff,
        }
    }

    /// The fixed requeue delay, if this is an [`Action::requeue`].
    pub const fn requeue_after(&self) -> Option<Duration> {
        match self.kind {
            Kind::Requeue(d) => Some(d),
            _ => None,
        }
    }

    /// Whether this is [`Action::await_change`].
    pub const fn is_await_change(&self) -> bool {
        matches!(self.kind, Kind::AwaitChange)
    }

    /// Whether this is [`Action::backoff`].
    pub const fn is_backoff(&self) -> bool {
        matches!(self.kind, Kind::Backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_distinguish_the_three_actions() {
        let r = Action::requeue(Duration::from_secs(3));
        assert_eq!(r.requeue_after(), Some(Duration::from_secs(3)));
        assert!(!r.is_await_change() && !r.is_backoff());

        let a = Action::await_change();
        assert_eq!(a.requeue_after(), None);
        assert!(a.is_await_change() && !a.is_backoff());

        let b = Action::backoff();
        assert_eq!(b.requeue_after(), None);
        assert!(b.is_backoff() && !b.is_await_change());
    }
}
