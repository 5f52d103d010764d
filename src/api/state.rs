//! What every handler can reach: the store's spec-writing view, a few settings and the read-only introspection.

use std::sync::Arc;

use super::introspect::Introspection;
use super::kinds::instance::RenderedInstances;
use super::reset::{RequestGate, Reset};
use crate::config::VmManager;
use crate::metrics::Metrics;
use crate::model::InstanceId;
use crate::store::SpecStore;

/// Asks the reconciler to look at an instance soon, for an answer made from what it observes
/// (GetConsoleOutput's copy of the console). Supplied by the app: the api never reaches the
/// reconciler or the engine itself, and a nudge only enqueues.
pub trait Nudge: Send + Sync + 'static {
    /// The instance's observed state is wanted fresh.
    fn instance(&self, instance_id: &InstanceId);
}

/// A nudge that goes nowhere, for an api without a reconciler (protocol tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNudge;

impl Nudge for NoNudge {
    fn instance(&self, _instance_id: &InstanceId) {}
}

/// What every handler can reach: the store, a few settings and the read-only introspection.
#[derive(Clone)]
pub struct ApiState {
    /// The store, as the API may use it: reads, and spec writes only.
    pub store: SpecStore,
    /// Docker or mock: decides whether an AMI must exist in the catalog.
    pub vm_manager: VmManager,
    /// Whether DescribeImages lists the built-in public AMI catalogue (`EC2D_PUBLIC_AMIS`).
    pub public_amis: bool,
    /// Whether RunInstances gives each instance a private address from its subnet (VPC
    /// networks on, or mock mode); off, the address shown is the engine's bridge address.
    pub allocate_private_ips: bool,
    /// Health and status reports supplied by the app (the api cannot see the runtime).
    pub introspection: Arc<dyn Introspection>,
    /// DescribeInstances' per-instance XML, reused while an instance is unchanged.
    pub rendered_instances: Arc<RenderedInstances>,
    /// Hints to the reconciler, supplied by the app.
    pub nudge: Arc<dyn Nudge>,
    /// Removes everything of this store (`POST /_ec2d/reset`), supplied by the app.
    pub reset: Arc<dyn Reset>,
    /// Keeps a reset apart from EC2 requests (see [`RequestGate`]).
    pub gate: RequestGate,
    /// Request counters and latencies, and what `GET /metrics` renders.
    pub metrics: Arc<Metrics>,
}
