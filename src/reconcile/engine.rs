//! What ec2d last knew about the container engine's reachability, for the health and status endpoints.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::ReconcileError;
use crate::model::{format_timestamp, now};
use crate::runtime::{EngineInfo, RuntimeError, RuntimeResult};

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
    /// The last error talking to the engine.
    pub last_error: Option<String>,
    /// When reachability was last established or lost (RFC 3339).
    pub checked_at: Option<String>,
}

/// Shared, cheaply cloned record of the engine's health.
#[derive(Debug, Clone, Default)]
pub struct EngineMonitor {
    inner: Arc<Mutex<EngineHealth>>,
}

impl EngineMonitor {
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
                h.last_error = None;
            }),
            Err(e) => self.update(|h| {
                h.reachable = Some(false);
                h.last_error = Some(e.to_string());
            }),
        }
    }

    /// Learns from a reconcile's outcome: an unreachable engine marks it down at once.
    /// Only a ping marks it up again, since a successful reconcile may not have called it.
    pub fn observe<T>(&self, result: &Result<T, ReconcileError>) {
        if let Err(ReconcileError::Runtime(e @ RuntimeError::Unavailable(_))) = result {
            self.update(|h| {
                h.reachable = Some(false);
                h.last_error = Some(e.to_string());
            });
        }
    }

    /// Whether the engine answered last time.
    pub fn is_reachable(&self) -> bool {
        self.snapshot().reachable == Some(true)
    }
}
