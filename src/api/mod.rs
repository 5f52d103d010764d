//! The EC2 Query protocol front (axum): parses and validates requests, writes desired state, renders XML; never calls the runtime.

use std::sync::Arc;

use crate::config::VmManager;
use crate::store::Store;

pub mod introspect;

pub use introspect::Introspection;

/// What every handler can reach: the store, a few settings and the read-only introspection.
#[derive(Clone)]
pub struct ApiState {
    /// The desired/observed state store.
    pub store: Store,
    /// Docker or mock: decides whether an AMI must exist in the catalog.
    pub vm_manager: VmManager,
    /// Health and status reports supplied by the app (the api cannot see the runtime).
    pub introspection: Arc<dyn Introspection>,
}
