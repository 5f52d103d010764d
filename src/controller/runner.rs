//! The loop behind `Controller::run`: dispatch due keys into a bounded `JoinSet`, feed results back into the queue.

use std::collections::HashMap;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::hash::Hash;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{Stream, StreamExt};
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use super::{
    deadline, Action, BackoffFactory, BackoffRegistry, ControllerConfig, Observer, Outcome, Shared,
    SpanFactory,
};

/// Everything the loop owns. `tasks` and `running` always hold the same tasks; `running` is
/// how a finished task (including a panicked one, whose output is lost) maps back to its key.
pub(super) struct Runner<K, Rec, Pol, E> {
    config: ControllerConfig,
    shared: Arc<Shared<K>>,
    backoffs: BackoffRegistry<K>,
    reconcile: Arc<Rec>,
    error_policy: Pol,
    tasks: JoinSet<Result<Action, E>>,
    /// Each running task's key, when it was spawned, and its span (kept so the failure line
    /// lands in the same span).
    running: HashMap<Id, (K, Instant, tracing::Span)>,
    observer: Option<Arc<dyn Observer<K>>>,
    span_for: SpanFactory<K>,
    /// Keys whose last reconcile failed, and until when their backoff holds them. Triggers
    /// and resyncs for such a key wait for the hold: a failing reconcile often causes its own
    /// triggers (a container created and removed again emits events), and letting those
    /// through would turn backoff into a hot loop.
    held_until: HashMap<K, Instant>,
}

impl<K, Rec, RecFut, Pol, E> Runner<K, Rec, Pol, E>
where
    K: Clone + Eq + Hash + Debug + Send + Sync + 'static,
    Rec: Fn(K) -> RecFut + Send + Sync + 'static,
    RecFut: Future<Output = Result<Action, E>> + Send + 'static,
    E: Display + Send + 'static,
    Pol: Fn(&K, &E) -> Action + Send + Sync + 'static,
{
    pub(super) fn new(
        mut config: ControllerConfig,
        shared: Arc<Shared<K>>,
        backoff: BackoffFactory,
        span_for: SpanFactory<K>,
        reconcile: Rec,
        error_policy: Pol,
    ) -> Self {
        config.concurrency = config.concurrency.max(1);
        Self {
            config,
            shared,
            backoffs: BackoffRegistry::new(backoff),
            reconcile: Arc::new(reconcile),
            error_policy,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            span_for,
            held_until: HashMap::new(),
            observer: None,
        }
    }

    pub(super) fn observed_by(mut self, observer: Option<Arc<dyn Observer<K>>>) -> Self {
        self.observer = observer;
        self
    }

    pub(super) async fn run<Trig, Resync>(
        mut self,
        mut triggers: Trig,
        resync: Resync,
        shutdown: impl Future<Output = ()> + Send,
    ) where
        Trig: Stream<Item = K> + Send + Unpin + 'static,
        Resync: Fn() -> Vec<K> + Send + 'static,
    {
        tokio::pin!(shutdown);
        // The initial list (kube's InitDone): every existing key gets reconciled once at start,
        // which is what adopts state left over from a previous process.
        self.resync(&resync);
        let mut resync_timer = (!self.config.resync_every.is_zero()).then(|| {
            let every = self.config.resync_every;
            let mut t = tokio::time::interval_at(deadline(Instant::now(), every), every);
            // After a stall, one resync is enough; a burst of catch-up resyncs would be no-ops.
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        });
        let mut triggers_open = true;
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);

        loop {
            let next_deadline = self.dispatch();
            if let Some(at) = next_deadline {
                sleep.as_mut().reset(at);
            }
            // Biased: shutdown must win over a busy trigger stream, and completions free
            // capacity, so they go before new work. The resync tick and handle wakeups are
            // ready at most once per event, so they cannot starve the triggers below them.
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.complete(joined);
                }
                () = tick(&mut resync_timer) => self.resync(&resync),
                () = self.shared.wake.notified() => {}
                item = triggers.next(), if triggers_open => match item {
                    Some(key) => {
                        let at = self.not_before_hold(&key, Instant::now());
                        self.shared.lock().queue.schedule(key, at);
                    }
                    None => {
                        // Not fatal: handle, resync and requeues still drive the loop.
                        tracing::debug!("controller trigger stream ended");
                        triggers_open = false;
                    }
                },
                () = &mut sleep, if next_deadline.is_some() => {}
            }
        }

        self.drain().await;
    }

    /// Spawn due keys while there is capacity. Returns when the loop must wake up for the
    /// next scheduled key, or `None` if there is none or no capacity (a completion wakes us).
    fn dispatch(&mut self) -> Option<Instant> {
        let mut due = Vec::new();
        let next = {
            let mut st = self.shared.lock();
            if st.holds > 0 {
                // An exclusive section waits for (or runs with) no reconcile in flight; its
                // end wakes the loop.
                return None;
            }
            let now = Instant::now();
            while self.tasks.len() + due.len() < self.config.concurrency {
                match st.queue.pop_due(now) {
                    Some(key) => due.push(key),
                    None => break,
                }
            }
            (self.tasks.len() + due.len() < self.config.concurrency)
                .then(|| st.queue.next_deadline())
                .flatten()
        };
        for key in due {
            self.spawn(key);
        }
        next
    }

    fn spawn(&mut self, key: K) {
        let span = (self.span_for)(&key);
        let reconcile = Arc::clone(&self.reconcile);
        let task_key = key.clone();
        // The user closure is called inside the task too, so a panic while *building* the
        // future is caught by the JoinSet just like one while polling it.
        let handle = self
            .tasks
            .spawn(async move { reconcile(task_key).await }.instrument(span.clone()));
        self.running
            .insert(handle.id(), (key, Instant::now(), span));
    }

    fn complete(&mut self, joined: Result<(Id, Result<Action, E>), JoinError>) {
        let (id, outcome) = match joined {
            Ok((id, result)) => (id, Ok(result)),
            Err(err) => (err.id(), Err(err)),
        };
        let Some((key, started, span)) = self.running.remove(&id) else {
            // Unreachable: every task is spawned through `spawn`.
            tracing::error!(task = %id, "controller: finished task has no key");
            return;
        };
        self.shared.reconciles_total.fetch_add(1, Ordering::Relaxed);

        let failed = !matches!(outcome, Ok(Ok(_)));
        if let Some(observer) = &self.observer {
            let told = match &outcome {
                Ok(Ok(action)) if action.requeue_after().is_some() || action.is_backoff() => {
                    Outcome::Requeue
                }
                Ok(Ok(_)) => Outcome::Success,
                _ => Outcome::Error,
            };
            observer.reconciled(&key, told, started.elapsed());
        }
        let retry_in = match outcome {
            Ok(Ok(action)) => {
                // Success ends the key's failure streak, unless the reconciler itself asks to
                // keep backing off ("not ready yet, poll me with growing delays").
                if !action.is_backoff() {
                    self.backoffs.forget(&key);
                }
                self.delay_for(&key, action)
            }
            Ok(Err(err)) => {
                self.shared.errors_total.fetch_add(1, Ordering::Relaxed);
                let action = self.policy(&key, &err);
                let retry_in = self.delay_for(&key, action);
                span.in_scope(|| {
                    tracing::warn!(key = ?key, error = %err, retry_in = ?retry_in, "reconcile failed")
                });
                retry_in
            }
            Err(join_err) => {
                self.shared.errors_total.fetch_add(1, Ordering::Relaxed);
                // No `E` to show the policy: back off, which is what policies do anyway.
                let retry_in = self.backoffs.next_delay(&key);
                span.in_scope(|| {
                    tracing::warn!(key = ?key, error = %join_err, retry_in = ?retry_in, "reconcile failed")
                });
                retry_in
            }
        };

        match (failed, retry_in) {
            (true, Some(delay)) => {
                self.held_until
                    .insert(key.clone(), deadline(Instant::now(), delay));
            }
            _ => {
                self.held_until.remove(&key);
            }
        }

        let mut st = self.shared.lock();
        // Release the key first, so a dirty reschedule and our own requeue merge through
        // earliest-wins instead of one overwriting the other.
        st.queue.finish(&key);
        if let Some(delay) = retry_in {
            st.queue.schedule(key, deadline(Instant::now(), delay));
        }
        if st.holds > 0 && st.queue.in_flight() == 0 {
            self.shared.idle.notify_waiters();
        }
    }

    /// The earliest time a trigger may run `key`: now, or the end of its failure backoff.
    fn not_before_hold(&self, key: &K, now: Instant) -> Instant {
        match self.held_until.get(key) {
            Some(until) if *until > now => *until,
            _ => now,
        }
    }

    /// The error policy is user code running on the loop task: a panic there must not take
    /// the whole controller down, so it falls back to backing off.
    fn policy(&self, key: &K, err: &E) -> Action {
        catch_unwind(AssertUnwindSafe(|| (self.error_policy)(key, err))).unwrap_or_else(|_| {
            tracing::error!(key = ?key, "controller error policy panicked; backing off");
            Action::backoff()
        })
    }

    fn delay_for(&mut self, key: &K, action: Action) -> Option<Duration> {
        if let Some(after) = action.requeue_after() {
            Some(after)
        } else if action.is_backoff() {
            // `None` = the backoff policy gave up: wait for a trigger or the next resync.
            self.backoffs.next_delay(key)
        } else {
            None
        }
    }

    fn resync<Resync: Fn() -> Vec<K>>(&mut self, resync: &Resync) {
        // User code on the loop task, like the error policy: skip this round if it panics.
        let Ok(keys) = catch_unwind(AssertUnwindSafe(resync)) else {
            tracing::error!("controller resync function panicked; skipping this resync");
            return;
        };
        let count = keys.len();
        {
            let mut st = self.shared.lock();
            let now = Instant::now();
            for key in keys {
                let at = self.not_before_hold(&key, now);
                st.queue.schedule(key, at);
            }
            st.last_resync_at = Some(SystemTime::now());
        }
        tracing::debug!(keys = count, "controller resync");
    }

    /// After shutdown: no new dispatches; let in-flight reconciles finish within the timeout,
    /// then abort the rest (a reconcile must be safe to cut at any `.await` anyway, since the
    /// process can die there too).
    async fn drain(mut self) {
        if self.tasks.is_empty() {
            return;
        }
        tracing::info!(
            in_flight = self.tasks.len(),
            "controller draining in-flight reconciles"
        );
        let timeout = self.config.drain_timeout;
        let drained = tokio::time::timeout(timeout, async {
            while let Some(joined) = self.tasks.join_next_with_id().await {
                self.complete(joined);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                abandoned = self.tasks.len(),
                drain_timeout = ?timeout,
                "controller drain timed out; aborting remaining reconciles"
            );
            self.tasks.shutdown().await;
            let mut st = self.shared.lock();
            for (key, _, _) in self.running.values() {
                st.queue.finish(key);
            }
            self.running.clear();
            self.shared.idle.notify_waiters();
        }
    }
}

/// Next tick of an optional interval; never resolves when there is none.
async fn tick(timer: &mut Option<tokio::time::Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}
