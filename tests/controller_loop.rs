//! Behaviour tests of the generic controller loop (`ec2d::controller`), on a paused tokio clock.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ec2d::controller::{
    Action, Backoff, Controller, ControllerConfig, ControllerHandle, ExponentialJitterBackoff,
    Observer, Outcome,
};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

type Key = u32;

const MS: Duration = Duration::from_millis(1);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Periodic resync off so that only what a test enqueues runs.
fn config() -> ControllerConfig {
    ControllerConfig {
        concurrency: 4,
        resync_every: Duration::ZERO,
        backoff_initial: secs(1.0),
        backoff_max: secs(100.0),
        drain_timeout: secs(10.0),
    }
}

fn no_triggers() -> BoxStream<'static, Key> {
    stream::pending().boxed()
}

fn no_keys() -> Vec<Key> {
    Vec::new()
}

fn backoff_policy(_: &Key, _: &String) -> Action {
    Action::backoff()
}

/// Paused-clock timers fire on millisecond ticks, so times may be late by a few ms per hop.
#[track_caller]
fn assert_about(actual: Duration, expected: Duration) {
    assert!(
        actual >= expected && actual <= expected + 20 * MS,
        "expected ~{expected:?}, got {actual:?}"
    );
}

#[track_caller]
fn assert_within(actual: Duration, lo: Duration, hi: Duration) {
    assert!(
        actual + MS >= lo && actual <= hi + 20 * MS,
        "expected {actual:?} within [{lo:?}, {hi:?}]"
    );
}

/// Records what reconciles do, and detects overlapping reconciles of one key.
struct Probe {
    t0: Instant,
    starts: Mutex<Vec<(Key, Duration)>>,
    ends: Mutex<Vec<(Key, Duration)>>,
    running: Mutex<HashSet<Key>>,
    overlap: AtomicBool,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Marks the end of a reconcile when dropped, so panics and aborts are recorded too.
struct Running {
    probe: Arc<Probe>,
    key: Key,
}

impl Drop for Running {
    fn drop(&mut self) {
        let p = &self.probe;
        p.ends.lock().unwrap().push((self.key, p.t0.elapsed()));
        p.running.lock().unwrap().remove(&self.key);
        p.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Probe {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            t0: Instant::now(),
            starts: Mutex::default(),
            ends: Mutex::default(),
            running: Mutex::default(),
            overlap: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        })
    }

    fn enter(self: &Arc<Self>, key: Key) -> Running {
        self.starts.lock().unwrap().push((key, self.t0.elapsed()));
        if !self.running.lock().unwrap().insert(key) {
            self.overlap.store(true, Ordering::SeqCst);
        }
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(n, Ordering::SeqCst);
        Running {
            probe: Arc::clone(self),
            key,
        }
    }

    fn starts_of(&self, key: Key) -> Vec<Duration> {
        let starts = self.starts.lock().unwrap();
        starts
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, t)| *t)
            .collect()
    }

    fn ends_of(&self, key: Key) -> Vec<Duration> {
        let ends = self.ends.lock().unwrap();
        ends.iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, t)| *t)
            .collect()
    }

    fn total_starts(&self) -> usize {
        self.starts.lock().unwrap().len()
    }

    fn gaps(&self, key: Key) -> Vec<Duration> {
        self.starts_of(key)
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect()
    }
}

struct Harness {
    handle: ControllerHandle<Key>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Harness {
    /// Signal shutdown and wait for `run` to return.
    async fn shutdown(self) -> ControllerHandle<Key> {
        let _ = self.stop.send(());
        self.task.await.expect("controller loop panicked");
        self.handle
    }
}

fn start<Rec, Fut, Pol, Res>(
    ctrl: Controller<Key>,
    triggers: BoxStream<'static, Key>,
    resync: Res,
    reconcile: Rec,
    policy: Pol,
) -> Harness
where
    Rec: Fn(Key) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, String>> + Send + 'static,
    Pol: Fn(&Key, &String) -> Action + Send + Sync + 'static,
    Res: Fn() -> Vec<Key> + Send + 'static,
{
    let handle = ctrl.handle();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(ctrl.run(triggers, resync, reconcile, policy, async move {
        let _ = stopped.await;
    }));
    Harness { handle, stop, task }
}

/// A reconcile that takes `work` and then returns `action`.
fn worker(
    probe: &Arc<Probe>,
    work: Duration,
    action: Action,
) -> impl Fn(Key) -> futures::future::BoxFuture<'static, Result<Action, String>> + Send + Sync {
    let probe = Arc::clone(probe);
    move |key| {
        let probe = Arc::clone(&probe);
        Box::pin(async move {
            let _running = probe.enter(key);
            if !work.is_zero() {
                sleep(work).await;
            }
            Ok(action)
        })
    }
}

#[tokio::test(start_paused = true)]
async fn dedup_ten_enqueues_one_reconcile() {
    let probe = Probe::new();
    let ctrl = Controller::new(config());
    let h = ctrl.handle();
    // Before the loop runs.
    for _ in 0..10 {
        h.enqueue(1);
    }
    assert_eq!(h.stats().queue_depth, 1);
    let run = start(
        ctrl,
        no_triggers(),
        no_keys,
        worker(&probe, Duration::ZERO, Action::await_change()),
        backoff_policy,
    );
    sleep(secs(1.0)).await;
    assert_eq!(probe.starts_of(1).len(), 1);

    // And in a burst while the loop is idle.
    for _ in 0..10 {
        h.enqueue(1);
    }
    sleep(secs(1.0)).await;
    assert_eq!(probe.starts_of(1).len(), 2);
    let stats = h.stats();
    assert_eq!((stats.reconciles_total, stats.errors_total), (2, 0));
    assert_eq!((stats.queue_depth, stats.in_flight), (0, 0));
    run.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn earliest_scheduled_time_wins() {
    let probe = Probe::new();
    let run = start(
        Controller::new(config()),
        no_triggers(),
        no_keys,
        worker(&probe, Duration::ZERO, Action::await_change()),
        backoff_policy,
    );
    run.handle.enqueue_after(1, secs(10.0));
    run.handle.enqueue_after(1, secs(2.0));
    run.handle.enqueue_after(1, secs(30.0));
    assert_eq!(run.handle.stats().queue_depth, 1);
    sleep(secs(60.0)).await;
    let starts = probe.starts_of(1);
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_about(starts[0], secs(2.0));

    // An immediate enqueue pulls a far-away requeue forward.
    run.handle.enqueue_after(2, secs(100.0));
    run.handle.enqueue(2);
    sleep(secs(1.0)).await;
    assert_eq!(probe.starts_of(2).len(), 1);
    run.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn one_in_flight_per_key_and_rerun_once_after() {
    let probe = Probe::new();
    let run = start(
        Controller::new(config()),
        no_triggers(),
        no_keys,
        worker(&probe, secs(1.0), Action::await_change()),
        backoff_policy,
    );
    run.handle.enqueue(1);
    sleep(secs(0.1)).await;
    assert_eq!(run.handle.stats().in_flight, 1);
    for _ in 0..5 {
        run.handle.enqueue(1);
    }
    // Held back as one dirty mark, not started.
    let stats = run.handle.stats();
    assert_eq!((stats.in_flight, stats.queue_depth), (1, 1));
    assert_eq!(probe.starts_of(1).len(), 1);

    sleep(secs(5.0)).await;
    let starts = probe.starts_of(1);
    let ends = probe.ends_of(1);
    assert_eq!(
        starts.len(),
        2,
        "re-enqueued key must run exactly once more: {starts:?}"
    );
    assert!(
        starts[1] >= ends[0],
        "second run {starts:?} began before first ended {ends:?}"
    );
    assert_about(starts[1], secs(1.0));
    assert!(!probe.overlap.load(Ordering::SeqCst));
    run.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn concurrency_bound_is_respected() {
    let probe = Probe::new();
    let ctrl = Controller::new(ControllerConfig {
        concurrency: 3,
        ..config()
    });
    let run = start(
        ctrl,
        no_triggers(),
        no_keys,
        worker(&probe, secs(0.1), Action::await_change()),
        backoff_policy,
    );
    for key in 0..20 {
        run.handle.enqueue(key);
    }
    sleep(secs(0.05)).await;
    let stats = run.handle.stats();
    assert_eq!((stats.in_flight, stats.queue_depth), (3, 17));

    sleep(secs(2.0)).await;
    assert_eq!(probe.total_starts(), 20);
    assert_eq!(probe.max_in_flight.load(Ordering::SeqCst), 3);
    // 20 keys, 3 at a time, 100ms each: 7 waves.
    let last = probe
        .ends
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| *t)
        .max()
        .unwrap();
    assert_about(last, secs(0.7));
    run.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn requeue_runs_again_after_the_delay() {
    let probe = Probe::new();
    let run = start(
        Controller::new(config()),
        no_triggers(),
        no_keys,
        worker(&probe, Duration::ZERO, Action::requeue(secs(5.0))),
        backoff_policy,
    );
    run.handle.enqueue(1);
    sleep(secs(17.0)).await;
    let starts = probe.starts_of(1);
    assert_eq!(starts.len(), 4, "{starts:?}");
    for (i, t) in starts.iter().enumerate() {
        assert_about(*t, secs(5.0 * i as f64));
    }
    assert_eq!(run.handle.stats().queue_depth, 1);
    run.shutdown().await;
}

/// Reconcile outcomes by attempt number, for scripting failures.
#[derive(Clone, Copy)]
enum Step {
    Fail,
    Ok(Action),
}

fn scripted(
    probe: &Arc<Probe>,
    script: Vec<Step>,
) -> impl Fn(Key) -> futures::future::BoxFuture<'static, Result<Action, String>> + Send + Sync {
    let probe = Arc::clone(probe);
    let attempt = Arc::new(AtomicUsize::new(0));
    move |key| {
        let probe = Arc::clone(&probe);
        let n = attempt.fetch_add(1, Ordering::SeqCst);
        let step = script
            .get(n)
            .copied()
            .unwrap_or(Step::Ok(Action::await_change()));
        Box::pin(async move {
            let _running = probe.enter(key);
            match step {
                Step::Fail => Err(format!("attempt {n} failed")),
                Step::Ok(action) => Ok(action),
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_and_resets_after_success() {
    let probe = Probe::new();
    let script = vec![
        Step::Fail,
        Step::Fail,
        Step::Fail,
        Step::Fail,
        Step::Ok(Action::requeue(Duration::ZERO)),
        Step::Fail,
        Step::Ok(Action::await_change()),
    ];
    // initial 1s, max 100s (nominal cap 66s, not reached here).
    let run = start(
        Controller::new(config()),
        no_triggers(),
        no_keys,
        scripted(&probe, script),
        backoff_policy,
    );
    run.handle.enqueue(1);
    sleep(secs(120.0)).await;

    let gaps = probe.gaps(1);
    assert_eq!(gaps.len(), 6, "{gaps:?}");
    // Nominal 1, 2, 4, 8 s, each jittered ±50%.
    for (i, nominal) in [1.0, 2.0, 4.0, 8.0].into_iter().enumerate() {
        assert_within(gaps[i], secs(nominal * 0.5), secs(nominal * 1.5));
    }
    assert!(gaps[3] > gaps[0], "backoff did not grow: {gaps:?}");
    // Success with requeue(0): runs again at once.
    assert_about(gaps[4], Duration::ZERO);
    // The failure after a success starts from the initial delay again.
    assert_within(gaps[5], secs(0.5), secs(1.5));

    let stats = run.handle.stats();
    assert_eq!((stats.reconciles_total, stats.errors_total), (7, 5));
    run.shutdown().await;
}

/// Deterministic backoff: 1s, 2s, 3s, ...
struct Linear(u64);

impl Backoff for Linear {
    fn next_delay(&mut self) -> Option<Duration> {
        self.0 += 1;
        Some(Duration::from_secs(self.0))
    }
    fn reset(&mut self) {
        self.0 = 0;
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_state_is_per_key() {
    let probe = Probe::new();
    let ctrl = Controller::new(config()).with_backoff(|| Box::new(Linear(0)));
    let p = Arc::clone(&probe);
    let always_fail = move |key: Key| {
        let p = Arc::clone(&p);
        async move {
            let _running = p.enter(key);
            Err::<Action, _>("boom".to_string())
        }
    };
    let run = start(ctrl, no_triggers(), no_keys, always_fail, backoff_policy);
    run.handle.enqueue(1);
    sleep(secs(2.5)).await;
    // Key 2 starts failing while key 1 is already at its third delay: its own streak starts at 1s.
    run.handle.enqueue(2);
    sleep(secs(10.0)).await;

    let k1 = probe.starts_of(1);
    assert_about(k1[1], secs(1.0));
    assert_about(k1[2], secs(3.0));
    assert_about(k1[3], secs(6.0));
    let k2 = probe.gaps(2);
    assert_about(k2[0], secs(1.0));
    assert_about(k2[1], secs(2.0));
    assert_about(k2[2], secs(3.0));
    run.shutdown().await;
}

#[test]
fn exponential_jitter_backoff_stays_within_bounds() {
    let (initial, max) = (Duration::from_millis(200), Duration::from_secs(30));
    let mut spread = HashSet::new();
    for _ in 0..100 {
        let mut b = ExponentialJitterBackoff::new(initial, max);
        let mut nominal = initial;
        for _ in 0..25 {
            let d = b.next_delay().expect("never gives up");
            let lo = nominal.mul_f64(0.5);
            let hi = nominal.mul_f64(1.5).min(max);
            assert!(d + MS >= lo && d <= hi, "{d:?} not in [{lo:?}, {hi:?}]");
            spread.insert(d.as_millis());
            nominal = (nominal * 2).min(max.div_f64(1.5));
        }
        b.reset();
        assert!(b.next_delay().unwrap() <= initial.mul_f64(1.5));
    }
    assert!(spread.len() > 100, "delays are not jittered");
}

#[tokio::test(start_paused = true)]
async fn error_policy_action_is_honoured() {
    let probe = Probe::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let policy = move |key: &Key, err: &String| {
        s.lock().unwrap().push((*key, err.clone()));
        Action::requeue(secs(7.0))
    };
    let run = start(
        Controller::new(config()),
        no_triggers(),
        no_keys,
        scripted(&probe, vec![Step::Fail, Step::Fail]),
        policy,
    );
    run.handle.enqueue(4);
    sleep(secs(20.0)).await;
    let starts = probe.starts_of(4);
    assert_eq!(starts.len(), 3, "{starts:?}");
    assert_about(starts[1], secs(7.0));
    assert_about(starts[2], secs(14.0));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (4, "attempt 0 failed".to_string()),
            (4, "attempt 1 failed".to_string())
        ]
    );
    run.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_in_flight_and_stops_dequeuing() {
    let probe = Probe::new();
    let ctrl = Controller::new(ControllerConfig {
        concurrency: 1,
        ..config()
    });
    let h = ctrl.handle();
    h.enqueue(1);
    h.enqueue(2);
    let run = start(
        ctrl,
        no_triggers(),
        no_keys,
        worker(&probe, secs(2.0), Action::await_change()),
        backoff_policy,
    );
    sleep(secs(0.5)).await;
    let t = Instant::now();
    let h = run.shutdown().await;
    // Returned once key 1 finished, not before and not after.
    assert_about(probe.t0.elapsed(), secs(2.0));
    assert!(t.elapsed() >= secs(1.5));
    assert_eq!(probe.ends_of(1).len(), 1);
    assert!(probe.starts_of(2).is_empty(), "dequeued after shutdown");

    // Nothing runs after `run` returned, even when enqueued.
    h.enqueue(3);
    sleep(secs(5.0)).await;
    assert_eq!(probe.total_starts(), 1);
    let stats = h.stats();
    assert_eq!((stats.in_flight, stats.reconciles_total), (0, 1));
    assert_eq!(stats.queue_depth, 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_aborts_reconciles_after_drain_timeout() {
    let probe = Probe::new();
    let finished = Arc::new(AtomicBool::new(false));
    let (p, f) = (Arc::clone(&probe), Arc::clone(&finished));
    let stuck = move |key: Key| {
        let (p, f) = (Arc::clone(&p), Arc::clone(&f));
        async move {
            let _running = p.enter(key);
            sleep(secs(1000.0)).await;
            f.store(true, Ordering::SeqCst);
            Ok::<_, String>(Action::await_change())
        }
    };
    let ctrl = Controller::new(ControllerConfig {
        drain_timeout: secs(1.0),
        ..config()
    });
    let run = start(ctrl, no_triggers(), no_keys, stuck, backoff_policy);
    run.handle.enqueue(1);
    sleep(secs(0.5)).await;
    let h = run.shutdown().await;
    assert_about(probe.t0.elapsed(), secs(1.5));
    // Aborted: the task was dropped (guard ran) without finishing.
    assert_eq!(probe.ends_of(1).len(), 1);
    assert!(!finished.load(Ordering::SeqCst));
    assert_eq!(h.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn resync_enqueues_all_keys_at_start_and_periodically() {
    let probe = Probe::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let resync = move || {
        c.fetch_add(1, Ordering::SeqCst);
        vec![1, 2, 3]
    };
    let ctrl = Controller::new(ControllerConfig {
        resync_every: secs(10.0),
        ..config()
    });
    assert!(ctrl.handle().stats().last_resync_at.is_none());
    let run = start(
        ctrl,
        no_triggers(),
        resync,
        worker(&probe, Duration::ZERO, Action::await_change()),
        backoff_policy,
    );
    sleep(secs(25.0)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    for key in 1..=3 {
        let starts = probe.starts_of(key);
        assert_eq!(starts.len(), 3, "key {key}: {starts:?}");
        for (i, t) in starts.iter().enumerate() {
            assert_about(*t, secs(10.0 * i as f64));
        }
    }
    assert!(run.handle.stats().last_resync_at.is_some());
    run.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn panicking_reconcile_is_survived_and_backed_off() {
    let probe = Probe::new();
    let p = Arc::clone(&probe);
    let key1_attempts = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&key1_attempts);
    let reconcile = move |key: Key| {
        // Key 9 panics while *building* the future, key 1 on its first poll.
        assert!(key != 9, "reconcile closure panicked");
        let p = Arc::clone(&p);
        let first = key == 1 && a.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            let _running = p.enter(key);
            assert!(!first, "reconcile future panicked");
            Ok::<_, String>(Action::await_change())
        }
    };
    let run = start(
        Controller::new(config()),
        no_triggers(),
        no_keys,
        reconcile,
        backoff_policy,
    );
    run.handle.enqueue(1);
    run.handle.enqueue(2);
    run.handle.enqueue(9);
    sleep(secs(0.1)).await;
    let stats = run.handle.stats();
    assert_eq!((stats.errors_total, stats.in_flight), (2, 0));

    sleep(secs(5.0)).await;
    // Key 1 was retried after a backoff (initial 1s ±50%) and then succeeded.
    let gaps = probe.gaps(1);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_within(gaps[0], secs(0.5), secs(1.5));
    assert_eq!(probe.starts_of(2).len(), 1);
    // The loop is still alive and serving.
    run.handle.enqueue(3);
    sleep(secs(0.1)).await;
    assert_eq!(probe.starts_of(3).len(), 1);
    assert!(
        run.handle.stats().errors_total >= 3,
        "key 9 keeps panicking and backing off"
    );
    run.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn triggers_are_reconciled_and_stream_end_is_not_fatal() {
    let probe = Probe::new();
    let (tx, rx) = futures::channel::mpsc::unbounded::<Key>();
    let run = start(
        Controller::new(config()),
        rx.boxed(),
        no_keys,
        worker(&probe, Duration::ZERO, Action::await_change()),
        backoff_policy,
    );
    tx.unbounded_send(1).unwrap();
    tx.unbounded_send(2).unwrap();
    sleep(secs(0.1)).await;
    assert_eq!((probe.starts_of(1).len(), probe.starts_of(2).len()), (1, 1));

    drop(tx); // the trigger stream ends
    sleep(secs(0.1)).await;
    run.handle.enqueue(3);
    sleep(secs(0.1)).await;
    assert_eq!(probe.starts_of(3).len(), 1);
    run.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stats_serialize_with_rfc3339_resync_time() {
    let ctrl = Controller::<Key>::new(config());
    let h = ctrl.handle();
    let json = serde_json::to_value(h.stats()).unwrap();
    assert!(json["last_resync_at"].is_null());
    let run = start(
        ctrl,
        no_triggers(),
        || vec![7],
        |_| async { Ok::<_, String>(Action::await_change()) },
        backoff_policy,
    );
    sleep(secs(0.1)).await;
    let json = serde_json::to_value(h.stats()).unwrap();
    assert_eq!(json["reconciles_total"], 1);
    assert_eq!(json["errors_total"], 0);
    assert_eq!(json["queue_depth"], 0);
    assert_eq!(json["in_flight"], 0);
    let at = json["last_resync_at"].as_str().expect("RFC 3339 string");
    assert!(at.ends_with('Z') && at.contains('T'), "{at}");
    run.shutdown().await;
}

#[test]
fn handle_and_run_future_are_send() {
    fn send_sync_clone<T: Send + Sync + Clone>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let ctrl = Controller::<String>::new(ControllerConfig::default());
    send_sync_clone(&ctrl.handle());
    let fut = ctrl.run(
        stream::empty::<String>(),
        Vec::new,
        |_k: String| async { Ok::<_, String>(Action::await_change()) },
        |_k: &String, _e: &String| Action::backoff(),
        std::future::ready(()),
    );
    send(&fut);
}

#[tokio::test(start_paused = true)]
async fn ok_backoff_polls_with_growing_delays_without_counting_errors() {
    let probe = Probe::new();
    let ctrl = Controller::new(config()).with_backoff(|| Box::new(Linear(0)));
    let script = vec![Step::Ok(Action::backoff()); 3];
    let run = start(
        ctrl,
        no_triggers(),
        no_keys,
        scripted(&probe, script),
        backoff_policy,
    );
    run.handle.enqueue(1);
    sleep(secs(20.0)).await;
    let gaps = probe.gaps(1);
    assert_eq!(gaps.len(), 3, "{gaps:?}");
    assert_about(gaps[0], secs(1.0));
    assert_about(gaps[1], secs(2.0));
    assert_about(gaps[2], secs(3.0));
    let stats = run.handle.stats();
    assert_eq!((stats.reconciles_total, stats.errors_total), (4, 0));
    run.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn absurd_delays_do_not_panic() {
    let probe = Probe::new();
    let ctrl = Controller::new(ControllerConfig {
        resync_every: Duration::MAX,
        ..config()
    });
    let run = start(
        ctrl,
        no_triggers(),
        || vec![1],
        worker(&probe, Duration::ZERO, Action::requeue(Duration::MAX)),
        backoff_policy,
    );
    run.handle.enqueue_after(2, Duration::MAX);
    sleep(secs(3600.0)).await;
    assert_eq!(probe.total_starts(), 1);
    assert_eq!(run.handle.stats().queue_depth, 2);
    run.shutdown().await;
}

/// A failing reconcile that triggers itself (its side effects emit events) must still back
/// off: triggers for a failing key wait for its backoff instead of hot-looping.
#[tokio::test(start_paused = true)]
async fn triggers_do_not_bypass_the_backoff_of_a_failing_key() {
    let probe = Probe::new();
    let (tx, rx) = futures::channel::mpsc::unbounded::<Key>();
    let failing = {
        let probe = Arc::clone(&probe);
        let tx = tx.clone();
        move |key: Key| {
            let probe = Arc::clone(&probe);
            let tx = tx.clone();
            Box::pin(async move {
                let _running = probe.enter(key);
                // The failed attempt's own side effect: an event for the same key.
                let _ = tx.unbounded_send(key);
                Err::<Action, String>("boom".into())
            }) as futures::future::BoxFuture<'static, Result<Action, String>>
        }
    };
    let run = start(
        Controller::new(config()),
        rx.boxed(),
        no_keys,
        failing,
        backoff_policy,
    );
    tx.unbounded_send(7).unwrap();
    sleep(secs(3.0)).await;
    // backoff_initial is 1 s with ±50% jitter: within 3 s, at most a handful of attempts,
    // where a hot loop would run thousands.
    let attempts = probe.starts_of(7).len();
    assert!((2..=5).contains(&attempts), "{attempts} attempts in 3 s");
    let gaps = probe.gaps(7);
    assert!(gaps.iter().all(|g| *g >= secs(0.5)), "gaps {gaps:?}");
    run.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_exclusive_section_runs_with_no_reconcile_in_flight_and_holds_the_queue() {
    let probe = Probe::new();
    let run = start(
        Controller::new(config()),
        no_triggers(),
        no_keys,
        worker(&probe, secs(2.0), Action::await_change()),
        backoff_policy,
    );
    // Two reconciles of two seconds each start at once.
    run.handle.enqueue(1);
    run.handle.enqueue(2);
    sleep(secs(0.5)).await;
    assert_eq!(probe.in_flight.load(Ordering::SeqCst), 2);

    let section_probe = Arc::clone(&probe);
    let handle = run.handle.clone();
    let section = tokio::spawn(async move {
        handle
            .exclusive(|| async move {
                let started = section_probe.t0.elapsed();
                let in_flight_at_start = section_probe.in_flight.load(Ordering::SeqCst);
                // Keys scheduled during the section wait for its end.
                sleep(secs(3.0)).await;
                let in_flight_at_end = section_probe.in_flight.load(Ordering::SeqCst);
                (started, in_flight_at_start, in_flight_at_end)
            })
            .await
    });
    sleep(secs(0.5)).await;
    // Scheduled while the section waits: held back until it ends.
    run.handle.enqueue(3);
    let (started, at_start, at_end) = section.await.expect("section panicked");
    assert_eq!(
        (at_start, at_end),
        (0, 0),
        "the section must run with no reconcile in flight"
    );
    // It began once both two-second reconciles had finished.
    assert_about(started, secs(2.0));
    sleep(secs(0.5)).await;
    let starts = probe.starts_of(3);
    assert_eq!(starts.len(), 1, "key 3 runs after the section: {starts:?}");
    assert_within(starts[0], secs(5.0), secs(5.1));
    assert!(!probe.overlap.load(Ordering::SeqCst));
    run.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_exclusive_section_without_a_running_loop_runs_at_once() {
    let ctrl: Controller<Key> = Controller::new(config());
    let handle = ctrl.handle();
    handle.enqueue(1);
    let answer = handle.exclusive(|| async { 42 }).await;
    assert_eq!(answer, 42);
    // The hold is released: the key still waits in the queue for the loop.
    assert_eq!(handle.stats().queue_depth, 1);
}

/// What an observer was told, in order.
#[derive(Default)]
struct Told(Mutex<Vec<(Key, Outcome, Duration)>>);

impl Observer<Key> for Told {
    fn reconciled(&self, key: &Key, outcome: Outcome, took: Duration) {
        self.0.lock().unwrap().push((*key, outcome, took));
    }
}

#[tokio::test(start_paused = true)]
async fn an_observer_is_told_each_outcome_and_duration() {
    let told = Arc::new(Told::default());
    let run = start(
        Controller::new(config()).with_observer(told.clone()),
        no_triggers(),
        no_keys,
        |key: Key| async move {
            sleep(secs(f64::from(key))).await;
            match key {
                1 => Ok(Action::await_change()),
                2 => Ok(Action::requeue(secs(100.0))),
                3 => Ok(Action::backoff()),
                _ => Err("no".to_string()),
            }
        },
        |_: &Key, _: &String| Action::await_change(),
    );
    for key in 1..=4 {
        run.handle.enqueue(key);
    }
    sleep(secs(5.0)).await;
    run.shutdown().await;
    // The first pass of each key (key 3's backoff may run it again before the shutdown).
    let mut told = told.0.lock().unwrap().clone();
    told.sort_by_key(|(key, _, _)| *key);
    told.dedup_by_key(|(key, _, _)| *key);
    let outcomes: Vec<_> = told.iter().map(|(k, o, _)| (*k, *o)).collect();
    assert_eq!(
        outcomes,
        vec![
            (1, Outcome::Success),
            (2, Outcome::Requeue),
            (3, Outcome::Requeue),
            (4, Outcome::Error)
        ]
    );
    for (key, _, took) in told {
        assert_about(took, secs(f64::from(key)));
    }
}
