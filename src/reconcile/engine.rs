//! What ec2d last knew about the container engine's reachability, for the health and status endpoints.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::ReconcileError;
use crate::model::{format_timestamp, now, Timestamp};
use crate::runtime::{EngineInfo, HostLimits, RuntimeError, RuntimeResult};

/// The engine's health as last observed.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineHealth {
    /// `None` until first contact.
    pub reachable: Option<bool>,
    /// The engine's version, once known.
    pub version: Option<String>,
    /// The negotiated API version, once known.
    pub api_version: Option<String>,
    /// What the engine's host lets containers be limited to, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostLimits>,
    /// The last error talking to the engine.
    pub last_error: Option<String>,
    /// When reachability was last established or lost (RFC 3339).
    pub checked_at: Option<String>,
    /// Recent windows in which the engine was down or its event stream broken, oldest first.
    #[serde(skip)]
    pub outages: VecDeque<(Timestamp, Timestamp)>,
    /// The last time the engine answered.
    #[serde(skip)]
    pub last_ok_at: Option<Timestamp>,
    /// Since when the engine has been unreachable, if it is.
    #[serde(skip)]
    pub down_since: Option<Timestamp>,
}

/// How many outage windows are remembered.
const MAX_OUTAGES: usize = 16;

/// Shared, cheaply cloned record of the engine's health.
#[derive(Debug, Clone, Default)]
pub struct EngineMonitor {
    inner: Arc<Mutex<EngineHealth>>,
    /// When the engine last signalled each instance's container (`docker stop`, `docker
    /// kill`, ec2d's own stop): a container that dies right after was stopped from outside,
    /// not by its own instance.
    signals: Arc<Mutex<HashMap<String, Timestamp>>>,
    /// Gaps in the engine's event stream since start (each a resubscription).
    event_gaps: Arc<AtomicU64>,
    /// Asks the engine's ping task to look now (its event stream broke).
    check_now: Arc<tokio::sync::Notify>,
}

/// How close a container's end must follow an engine signal to count as caused by it.
const SIGNAL_WINDOW: time::Duration = time::Duration::seconds(30);

impl EngineMonitor {
    /// What the engine's host lets containers be limited to, as last reported by a ping.
    pub fn host_limits(&self) -> Option<HostLimits> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).host
    }

    /// A snapshot.
    pub fn snapshot(&self) -> EngineHealth {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut EngineHealth)) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard);
        guard.checked_at = Some(format_timestamp(now()));
    }

    /// Records the outcome of an explicit ping.
    pub fn record_ping(&self, result: &RuntimeResult<EngineInfo>) {
        match result {
            Ok(info) => self.update(|h| {
                h.reachable = Some(true);
                h.version = Some(info.version.clone());
                h.api_version = Some(info.api_version.clone());
                // Kept when the engine did not say: the host has not changed for that.
                if info.host.is_some() {
                    h.host = info.host;
                }
                h.last_error = None;
                let at = now();
                if let Some(since) = h.down_since.take() {
                    let start = h.last_ok_at.unwrap_or(since);
                    push_outage(h, start, at);
                }
                h.last_ok_at = Some(at);
            }),
            Err(e) => self.update(|h| mark_down(h, e)),
        }
    }

    /// The engine's event stream had a gap (it restarted, or the connection dropped): the
    /// engine may have stopped containers since it last answered.
    pub fn record_event_gap(&self) {
        self.event_gaps.fetch_add(1, Ordering::Relaxed);
        self.update(|h| {
            let at = now();
            let start = h.last_ok_at.unwrap_or(at);
            push_outage(h, start, at);
            h.last_ok_at = Some(at);
        });
    }

    /// Whether `at` falls in a window where the engine was down or restarting; a container
    /// that exited then was stopped by the engine, not by its own instance.
    pub fn was_down_at(&self, at: Timestamp) -> bool {
        let health = self.snapshot();
        let in_window = health
            .outages
            .iter()
            .any(|(start, end)| *start <= at && at <= *end);
        let in_current = health
            .down_since
            .is_some_and(|since| health.last_ok_at.unwrap_or(since) <= at);
        in_window || in_current
    }

    /// Learns from a reconcile's outcome: an unreachable engine marks it down at once.
    /// Only a ping marks it up again, since a successful reconcile may not have called it.
    pub fn observe<T>(&self, result: &Result<T, ReconcileError>) {
        if let Err(ReconcileError::Runtime(e @ RuntimeError::Unavailable(_))) = result {
            self.update(|h| mark_down(h, e));
        }
    }

    /// Records that the engine signalled an instance's container (a `kill` event).
    pub fn record_signal(&self, instance_id: &str) {
        let mut signals = self.signals.lock().unwrap_or_else(|p| p.into_inner());
        let at = now();
        signals.insert(instance_id.to_string(), at);
        // Forget old signals so the map stays small over days.
        signals.retain(|_, t| at - *t < SIGNAL_WINDOW * 4);
    }

    /// Whether a container run (started at `started_at`, ended at `finished_at`) was stopped
    /// from outside the instance: the engine signalled it during that run, shortly before
    /// the end, or the engine was down or restarting when it ended.
    pub fn stopped_from_outside(
        &self,
        instance_id: &str,
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
    ) -> bool {
        let signalled = self
            .signals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(instance_id)
            .is_some_and(|at| {
                // Signal times are taken when ec2d sees the event, a little after the fact,
                // but always before a restart that ec2d made in answer to the exit.
                let during_this_run = started_at.is_none_or(|started| *at >= started);
                let slack = time::Duration::seconds(2);
                during_this_run && *at - slack <= finished_at && finished_at - *at <= SIGNAL_WINDOW
            });
        signalled || self.was_down_at(finished_at)
    }

    /// How many times the engine's event stream was subscribed again after a gap.
    pub fn event_stream_reconnects(&self) -> u64 {
        self.event_gaps.load(Ordering::Relaxed)
    }

    /// Whether the engine answered last time.
    pub fn is_reachable(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reachable
            == Some(true)
    }

    /// Asks whoever pings the engine to ping it now (its event stream broke: it may be gone).
    pub fn request_check(&self) {
        self.check_now.notify_one();
    }

    /// Resolves when [`Self::request_check`] was called (at once when it was since the last
    /// wait).
    pub async fn check_requested(&self) {
        self.check_now.notified().await;
    }

    /// Whether the engine was last seen unreachable (not merely not yet contacted).
    pub fn is_down(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reachable
            == Some(false)
    }
}

fn mark_down(health: &mut EngineHealth, error: &RuntimeError) {
    health.reachable = Some(false);
    health.last_error = Some(error.to_string());
    health.down_since.get_or_insert_with(now);
}

fn push_outage(health: &mut EngineHealth, start: Timestamp, end: Timestamp) {
    health.outages.push_back((start, end));
    while health.outages.len() > MAX_OUTAGES {
        health.outages.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_during_an_outage_are_the_engines() {
        let monitor = EngineMonitor::default();
        let info = EngineInfo {
            version: "20.10".into(),
            api_version: "1.41".into(),
            host: Some(HostLimits {
                cpus: 4,
                cpu_quota: true,
                memory_limit: true,
            }),
            bridge_gateway: None,
            engine_id: None,
        };
        monitor.record_ping(&Ok(info.clone()));
        assert_eq!(monitor.host_limits().map(|h| h.cpus), Some(4));
        let before = now();
        assert!(!monitor.was_down_at(before));
        monitor.record_ping(&Err(RuntimeError::Unavailable("gone".into())));
        assert!(!monitor.is_reachable());
        let during = now();
        assert!(monitor.was_down_at(during));
        monitor.record_ping(&Ok(EngineInfo { host: None, ..info }));
        assert!(monitor.is_reachable());
        assert_eq!(
            monitor.host_limits().map(|h| h.cpus),
            Some(4),
            "an engine that did not say keeps its count"
        );
        assert!(monitor.was_down_at(during), "the window is remembered");
        let after = now() + time::Duration::seconds(5);
        assert!(!monitor.was_down_at(after));
    }

    #[test]
    fn exits_right_after_an_engine_signal_come_from_outside() {
        let monitor = EngineMonitor::default();
        let t = now();
        let started = Some(t - time::Duration::minutes(1));
        assert!(!monitor.stopped_from_outside("i-00000001", started, t));
        monitor.record_signal("i-00000001");
        assert!(monitor.stopped_from_outside("i-00000001", started, now()));
        assert!(
            !monitor.stopped_from_outside("i-00000002", started, now()),
            "per instance"
        );
        let later = now() + time::Duration::minutes(5);
        assert!(!monitor.stopped_from_outside("i-00000001", started, later));
        assert!(!monitor.stopped_from_outside(
            "i-00000001",
            started,
            t - time::Duration::minutes(5)
        ));
        // A signal from before the container's current run does not explain its end.
        let restarted = Some(now() + time::Duration::milliseconds(500));
        let end = now() + time::Duration::seconds(12);
        assert!(!monitor.stopped_from_outside("i-00000001", restarted, end));
    }

    #[test]
    fn event_stream_gaps_are_counted_across_clones() {
        let monitor = EngineMonitor::default();
        let clone = monitor.clone();
        assert_eq!(monitor.event_stream_reconnects(), 0);
        clone.record_event_gap();
        clone.record_event_gap();
        assert_eq!(monitor.event_stream_reconnects(), 2);
    }
}
