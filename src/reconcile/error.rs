//! The reconciler's error type, classified for the error policy.

use crate::runtime::RuntimeError;
use crate::store::StoreError;

/// A reconcile failed; the error policy decides when to retry.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The container engine failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The container did not stay in the state the plan reached (it exited right after
    /// starting); retried with backoff.
    #[error("not converged: {0}")]
    NotConverged(String),
}

impl ReconcileError {
    /// Whether retrying soon may help (engine down, conflicting state); otherwise retry slowly.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Runtime(e) => e.is_transient(),
            Self::Store(StoreError::Backend(_)) => true,
            Self::NotConverged(_) => true,
            Self::Store(_) => false,
        }
    }
}
