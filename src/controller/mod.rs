//! A generic, EC2-agnostic controller loop: a deduplicating delay queue, bounded concurrent reconciles, per-key backoff, periodic resync.
//!
//! Semantics follow kube-runtime's `Controller` (scheduler + runner), without its stream
//! combinators: [`Controller::run`] is one `tokio::select!` loop over the queue, the trigger
//! stream, the resync timer and shutdown, with reconciles spawned into a `JoinSet`.
//!
//! Guarantees:
//!
//! - **Dedup**: a key waits in at most one queue slot; scheduling it again keeps the earliest
//!   run time.
//! - **One reconcile per key at a time**: a key scheduled while its reconcile runs is marked
//!   dirty and runs again once that reconcile has finished (at the earliest requested time).
//! - **Bounded concurrency**: at most [`ControllerConfig::concurrency`] reconciles in flight.
//! - **Failures back off per key** (jittered exponential, see [`ExponentialJitterBackoff`]) and
//!   a panicking reconcile is counted as an error, not a crash of the loop.
//! - **Observable**: an [`Observer`] given with [`Controller::with_observer`] is told of every
//!   finished reconcile, its key, [`Outcome`] and duration (what metrics count).
//! - **Level-triggered safety net**: the resync function is called at start and every
//!   [`ControllerConfig::resync_every`], and every key it returns is enqueued.
//! - **Exclusive sections**: [`ControllerHandle::exclusive`] holds dispatching, waits for the
//!   reconciles in flight, runs its section with none running, then lets the queue go on.

mod action;
mod backoff;
mod queue;
mod runner;

pub use action::Action;
pub use backoff::{Backoff, BackoffFactory, BackoffRegistry, ExponentialJitterBackoff};

use std::fmt::{Debug, Display};
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use futures::Stream;
use tokio::sync::Notify;
use tokio::time::Instant;

use queue::Queue;

/// Tuning for a [`Controller`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerConfig {
    /// Maximum reconciles in flight (across all keys). `0` is treated as `1`.
    pub concurrency: usize,
    /// Period of the full resync. `Duration::ZERO` disables the periodic resync; the initial
    /// one at start still happens.
    pub resync_every: Duration,
    /// Typical first retry delay of a failing key (jittered ±50%).
    pub backoff_initial: Duration,
    /// Hard upper bound of any backoff delay.
    pub backoff_max: Duration,
    /// How long [`Controller::run`] waits for in-flight reconciles after shutdown; the rest are
    /// aborted (their tasks are dropped at their next `.await`).
    pub drain_timeout: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            // Docker events can be missed (daemon restart, stream reconnect); a minute bounds
            // how long a drift can go unnoticed without making idle resyncs noticeable.
            resync_every: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// A point-in-time view of a controller, e.g. for a health/debug endpoint.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ControllerStats {
    /// Keys waiting to run (scheduled, or dirty while in flight).
    pub queue_depth: usize,
    /// Reconciles currently running.
    pub in_flight: usize,
    /// Reconciles finished, whatever their outcome.
    pub reconciles_total: u64,
    /// Reconciles that returned `Err` or panicked.
    pub errors_total: u64,
    /// Wall-clock time of the last resync; serialized as an RFC 3339 string
    /// (`"2025-01-02T03:04:05.123456789Z"`) or `null`, like the model's timestamps.
    #[serde(serialize_with = "serialize_rfc3339_opt")]
    pub last_resync_at: Option<SystemTime>,
}

fn serialize_rfc3339_opt<S: serde::Serializer>(
    t: &Option<SystemTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    time::serde::rfc3339::option::serialize(&t.map(time::OffsetDateTime::from), s)
}

/// How a reconcile ended, as an [`Observer`] is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It returned an action that waits for a change.
    Success,
    /// It returned an action that runs the key again later (a requeue or a backoff).
    Requeue,
    /// It returned an error, or panicked.
    Error,
}

impl Outcome {
    /// `success`, `requeue` or `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Requeue => "requeue",
            Self::Error => "error",
        }
    }
}

/// Told of every finished reconcile; called on the loop task, so it must be quick (a counter).
pub trait Observer<K>: Send + Sync + 'static {
    /// `key`'s reconcile ended with `outcome` after `took`.
    fn reconciled(&self, key: &K, outcome: Outcome, took: Duration);
}

/// State shared between the loop and its handles.
struct Shared<K> {
    state: Mutex<State<K>>,
    /// Wakes the loop after a handle enqueued something. `notify_one` stores a permit when the
    /// loop is busy, so a wakeup is never lost.
    wake: Notify,
    /// Wakes exclusive sections waiting for the last in-flight reconcile to finish.
    idle: Notify,
    /// One exclusive section at a time.
    sections: tokio::sync::Mutex<()>,
    reconciles_total: AtomicU64,
    errors_total: AtomicU64,
}

struct State<K> {
    queue: Queue<K>,
    last_resync_at: Option<SystemTime>,
    /// Exclusive sections holding dispatch (waiting for in-flight reconciles, or running):
    /// while above zero, no key is handed out.
    holds: usize,
}

impl<K> Shared<K> {
    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // No user code ever runs under this lock, so a poisoned lock still holds consistent
        // data; refusing it would only turn one panic into many.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `now + delay`, saturating (like tokio's own "far future", 30 years) instead of panicking on
/// absurd delays such as `Duration::MAX`.
fn deadline(now: Instant, delay: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    now + delay.min(FAR)
}

/// A cheap, cloneable way to enqueue keys into a [`Controller`] and read its stats.
///
/// Handles may be used before [`Controller::run`] starts (keys wait in the queue) and after it
/// returns (keys are accepted and never run).
pub struct ControllerHandle<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for ControllerHandle<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> Debug for ControllerHandle<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerHandle").finish_non_exhaustive()
    }
}

impl<K: Clone + Eq + Hash> ControllerHandle<K> {
    /// Reconcile `key` as soon as possible (deduplicated with any pending run).
    pub fn enqueue(&self, key: K) {
        self.enqueue_at(key, Instant::now());
    }

    /// Reconcile `key` after `delay`, unless it is already due earlier.
    pub fn enqueue_after(&self, key: K, delay: Duration) {
        self.enqueue_at(key, deadline(Instant::now(), delay));
    }

    fn enqueue_at(&self, key: K, at: Instant) {
        self.shared.lock().queue.schedule(key, at);
        self.shared.wake.notify_one();
    }

    /// Runs `section` while no reconcile runs: dispatching stops, the reconciles in flight
    /// finish, `section` runs, then the queue goes on (keys scheduled meanwhile wait, and run
    /// after). For work that must not interleave with any reconcile, such as removing
    /// everything a store made. One section runs at a time. Before the loop runs, and after
    /// it returned, nothing is in flight, so the section runs at once.
    pub async fn exclusive<F, Fut, T>(&self, section: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let _one_at_a_time = self.shared.sections.lock().await;
        let _hold = Hold::new(&self.shared);
        loop {
            // Registered before the check, so a completion between the two is not missed.
            let idle = self.shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.shared.lock().queue.in_flight() == 0 {
                break;
            }
            idle.await;
        }
        section().await
    }

    /// Current queue depth, in-flight count, counters and last resync time.
    #[must_use]
    pub fn stats(&self) -> ControllerStats {
        let (queue_depth, in_flight, last_resync_at) = {
            let st = self.shared.lock();
            (st.queue.depth(), st.queue.in_flight(), st.last_resync_at)
        };
        ControllerStats {
            queue_depth,
            in_flight,
            reconciles_total: self.shared.reconciles_total.load(Ordering::Relaxed),
            errors_total: self.shared.errors_total.load(Ordering::Relaxed),
            last_resync_at,
        }
    }
}

/// Holds dispatching while alive; dropping it (the section ended, or its future was dropped)
/// lets the loop hand out keys again.
struct Hold<'a, K> {
    shared: &'a Shared<K>,
}

impl<'a, K> Hold<'a, K> {
    fn new(shared: &'a Shared<K>) -> Self {
        shared.lock().holds += 1;
        Self { shared }
    }
}

impl<K> Drop for Hold<'_, K> {
    fn drop(&mut self) {
        self.shared.lock().holds -= 1;
        self.shared.wake.notify_one();
    }
}

/// A controller loop over keys `K` (e.g. instance ids). It knows nothing about what a key
/// means: reconciling, triggering and listing are all passed to [`Controller::run`].
pub struct Controller<K> {
    config: ControllerConfig,
    shared: Arc<Shared<K>>,
    backoff: BackoffFactory,
    observer: Option<Arc<dyn Observer<K>>>,
    span_for: SpanFactory<K>,
}

/// Makes the span a key's reconcile runs in (and its failure is logged in).
pub type SpanFactory<K> = Arc<dyn Fn(&K) -> tracing::Span + Send + Sync>;

impl<K> Debug for Controller<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<K: Clone + Eq + Hash + Debug + Send + Sync + 'static> Controller<K> {
    /// A controller with `config`, using [`ExponentialJitterBackoff`] from
    /// `backoff_initial`/`backoff_max` for [`Action::backoff`].
    pub fn new(config: ControllerConfig) -> Self {
        let (initial, max) = (config.backoff_initial, config.backoff_max);
        Self {
            config,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: Queue::new(),
                    last_resync_at: None,
                    holds: 0,
                }),
                wake: Notify::new(),
                idle: Notify::new(),
                sections: tokio::sync::Mutex::new(()),
                reconciles_total: AtomicU64::new(0),
                errors_total: AtomicU64::new(0),
            }),
            backoff: Arc::new(move || Box::new(ExponentialJitterBackoff::new(initial, max))),
            observer: None,
            span_for: Arc::new(|key: &K| tracing::info_span!("reconcile", key = ?key)),
        }
    }

    /// Tell `observer` of every finished reconcile.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer<K>>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Replace the span each reconcile runs in (default: `reconcile` with the key's `Debug`).
    ///
    /// The caller knows what a key means and can name its fields (`instance_id = …`), so
    /// every line a reconcile logs, and the controller's own line when it fails, carries them.
    #[must_use]
    pub fn with_span<F>(mut self, span_for: F) -> Self
    where
        F: Fn(&K) -> tracing::Span + Send + Sync + 'static,
    {
        self.span_for = Arc::new(span_for);
        self
    }

    /// Replace the per-key backoff policy (each failing key gets its own `factory()`).
    ///
    /// Mostly for tests that need deterministic delays; the default is what production wants.
    #[must_use]
    pub fn with_backoff<F>(mut self, factory: F) -> Self
    where
        F: Fn() -> Box<dyn Backoff> + Send + Sync + 'static,
    {
        self.backoff = Arc::new(factory);
        self
    }

    /// A handle to enqueue keys and read stats; valid before, during and after [`Self::run`].
    #[must_use]
    pub fn handle(&self) -> ControllerHandle<K> {
        ControllerHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Runs until `shutdown` resolves; then stops dequeuing, waits up to `drain_timeout` for
    /// in-flight reconciles, returns.
    ///
    /// - `triggers`: keys to reconcile now (store watch, Docker events, ...). When it ends the
    ///   loop keeps running on the handle, resync and requeues.
    /// - `resync`: all keys that exist; called at start (the initial list) and every
    ///   `resync_every`. It runs on the loop task, so it must be quick (e.g. a store scan).
    /// - `reconcile`: converges one key; runs as its own task in the key's span (see
    ///   [`Self::with_span`]). `Ok(action)` forgets the key's backoff (unless `action` is
    ///   [`Action::backoff`]) and schedules per `action`.
    /// - `error_policy`: maps a failure to an [`Action`], usually [`Action::backoff`]. A
    ///   panicking reconcile skips the policy and backs off.
    ///
    /// A trigger or resync for a key whose last reconcile failed waits for the key's backoff
    /// to run out: a failing reconcile often triggers itself (its own side effects emit
    /// events), and that must not become a hot loop. An explicit handle `enqueue` still runs
    /// at once.
    pub async fn run<Trig, Resync, Rec, RecFut, E, Pol>(
        self,
        triggers: Trig,
        resync: Resync,
        reconcile: Rec,
        error_policy: Pol,
        shutdown: impl Future<Output = ()> + Send,
    ) where
        Trig: Stream<Item = K> + Send + Unpin + 'static,
        Resync: Fn() -> Vec<K> + Send + 'static,
        Rec: Fn(K) -> RecFut + Send + Sync + 'static,
        RecFut: Future<Output = Result<Action, E>> + Send + 'static,
        E: Display + Send + 'static,
        Pol: Fn(&K, &E) -> Action + Send + Sync + 'static,
    {
        runner::Runner::new(
            self.config,
            self.shared,
            self.backoff,
            self.span_for,
            reconcile,
            error_policy,
        )
        .observed_by(self.observer)
        .run(triggers, resync, shutdown)
        .await
    }
}
