//! VPC networks: the Docker bridge network a VPC with Docker instances gets, found or made before an instance boots on it, re-made when removed, and removed after the VPC's last instance.
//!
//! A network is keyed by its VPC and named per store (`labels::network_name`). What is known
//! of each VPC's network is kept in memory (`Networks`) and re-learnt from the engine after a
//! restart (adoption is a list by label), so the steady path of an instance pass asks the
//! engine nothing. When the engine refuses a VPC's block (it overlaps another network, or the
//! host's own routes), the refusal is remembered for a while and the VPC's instances boot on
//! Docker's default bridge, saying why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::{Context, ReconcileError};
use crate::controller::Action;
use crate::model::{DesiredState, Instance};
use crate::runtime::{labels, ContainerRuntime, NetworkAttachment, NetworkSpec, RuntimeError};

/// How long a refused network is not asked for again: boots meanwhile go to the default bridge.
const REFUSAL_HOLDS_FOR: Duration = Duration::from_secs(30);

/// How many times in a row the engine may fail to make a VPC's network for a reason other
/// than its block (an overlap) before the VPC's instances boot on the default bridge: a
/// passing failure (a lock held, a timeout) is retried with the instance's backoff instead
/// of leaving the instance off its VPC for good.
const FAILURES_BEFORE_REFUSAL: u32 = 3;

/// How long one failure to make a VPC's network answers for every pass of the VPC (the
/// instances' backoff starts at a second, so each retry round counts once).
const FAILURE_COUNTS_ONCE_FOR: Duration = Duration::from_secs(1);

/// How soon to try again to remove a network a container is still leaving.
const REMOVAL_RETRY: Duration = Duration::from_secs(2);

/// What is known of one VPC's network.
#[derive(Debug, Clone)]
enum Known {
    /// It exists: Docker's id.
    Ready(String),
    /// The engine refused it, and why.
    Refused(String, Instant),
}

/// Where an instance's container belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Docker's default bridge (networks off, no address allocated, or the operator's `--network`).
    Bridge,
    /// Its VPC's network, with the address the API allocated; and the network's Docker id.
    Vpc(NetworkAttachment, String),
    /// Its VPC's network was refused: the default bridge, and why.
    Refused(String),
}

/// The VPC networks known to this process, and one lock per VPC so two instances booting in
/// one VPC never both create its network.
#[derive(Debug, Default, Clone)]
pub struct Networks {
    known: Arc<Mutex<HashMap<String, Known>>>,
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// Failures in a row to make each VPC's network that named no overlap (kept apart from
    /// `known`, which a VPC pass forgets before it asks again).
    failures: Arc<Mutex<HashMap<String, Failures>>>,
}

/// The failures in a row to make one VPC's network.
#[derive(Debug, Clone)]
struct Failures {
    count: u32,
    last_at: Instant,
    last_reason: String,
}

impl Networks {
    fn known(&self, vpc_id: &str) -> Option<Known> {
        self.known.lock().ok()?.get(vpc_id).cloned()
    }

    fn set(&self, vpc_id: &str, known: Known) {
        if let Ok(mut map) = self.known.lock() {
            map.insert(vpc_id.to_string(), known);
        }
    }

    /// Forgets what is known of a VPC's network (an event says it changed, or a step found it
    /// gone): the next pass asks the engine.
    pub fn forget(&self, vpc_id: &str) {
        if let Ok(mut map) = self.known.lock() {
            map.remove(vpc_id);
        }
    }

    /// Counts one more failure to make the VPC's network; the count so far.
    fn failed_once_more(&self, vpc_id: &str, reason: &str) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let entry = failures
            .entry(vpc_id.to_string())
            .or_insert_with(|| Failures {
                count: 0,
                last_at: Instant::now(),
                last_reason: String::new(),
            });
        entry.count += 1;
        entry.last_at = Instant::now();
        entry.last_reason = reason.to_string();
        entry.count
    }

    /// The last failure to make the VPC's network, when it is recent: a pass that comes
    /// within [`FAILURE_COUNTS_ONCE_FOR`] of it (another instance of the VPC, or one that
    /// waited on the VPC's lock meanwhile) takes that answer instead of asking the engine and
    /// counting again, so one passing failure counts once however many instances wait.
    fn recent_failure(&self, vpc_id: &str) -> Option<String> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures
            .get(vpc_id)
            .filter(|f| f.last_at.elapsed() < FAILURE_COUNTS_ONCE_FOR)
            .map(|f| f.last_reason.clone())
    }

    /// Forgets the VPC's failures: its network was made, refused for good, or is not needed.
    fn clear_failures(&self, vpc_id: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(vpc_id);
    }

    fn made(&self, vpc_id: &str, network_id: String) {
        self.clear_failures(vpc_id);
        self.set(vpc_id, Known::Ready(network_id));
    }

    fn lock_for(&self, vpc_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(vpc_id.to_string()).or_default().clone()
    }

    /// The refusal reason for each VPC whose network the engine refused, for the status report.
    pub fn refusals(&self) -> Vec<(String, String)> {
        let Ok(map) = self.known.lock() else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = map
            .iter()
            .filter_map(|(vpc, known)| match known {
                Known::Refused(reason, _) => Some((vpc.clone(), reason.clone())),
                Known::Ready(_) => None,
            })
            .collect();
        out.sort();
        out
    }
}

/// The VPC id and allocated address of an instance that belongs on its VPC's network.
fn wants_network<R: ContainerRuntime>(
    ctx: &Context<R>,
    instance: &Instance,
) -> Option<(String, String)> {
    if !ctx.settings.vpc_networks || ctx.settings.docker_flags.network.is_some() {
        return None;
    }
    let vpc_id = instance.spec.vpc_id.clone()?;
    let ip = instance.spec.private_ip.clone()?;
    Some((vpc_id, ip))
}

/// Where the instance's container belongs, making its VPC's network first when it is missing.
pub(super) async fn placement<R: ContainerRuntime>(
    ctx: &Context<R>,
    instance: &Instance,
) -> Result<Placement, RuntimeError> {
    let Some((vpc_id, ip)) = wants_network(ctx, instance) else {
        return Ok(Placement::Bridge);
    };
    let name = labels::network_name(ctx.store.id(), &vpc_id);
    Ok(match ensure(ctx, &vpc_id).await? {
        Ok(network_id) => Placement::Vpc(
            NetworkAttachment {
                network: name,
                ipv4_address: ip,
            },
            network_id,
        ),
        Err(reason) => Placement::Refused(reason),
    })
}

/// The VPC's block. Only created VPCs have networks: the API allocates addresses in their
/// subnets only (the default VPC's instances stay on Docker's default bridge).
fn vpc_block<R: ContainerRuntime>(
    ctx: &Context<R>,
    vpc_id: &str,
) -> Result<Option<String>, ReconcileError> {
    Ok(ctx
        .store
        .vpcs()
        .get_shared(vpc_id)?
        .map(|vpc| vpc.spec.cidr_block.clone()))
}

/// The VPC's network id (`Ok`), or why it has none (`Err`): found by its labels after a
/// restart, made when missing, refused when the engine will not have its block.
async fn ensure<R: ContainerRuntime>(
    ctx: &Context<R>,
    vpc_id: &str,
) -> Result<Result<String, String>, RuntimeError> {
    match ctx.networks.known(vpc_id) {
        Some(Known::Ready(id)) => return Ok(Ok(id)),
        Some(Known::Refused(reason, at)) if at.elapsed() < REFUSAL_HOLDS_FOR => {
            return Ok(Err(reason))
        }
        _ => {}
    }
    let waited_from = Instant::now();
    let lock = ctx.networks.lock_for(vpc_id);
    let _held = lock.lock().await;
    // Another instance of the VPC may have made it, been refused or failed while this one
    // waited.
    match ctx.networks.known(vpc_id) {
        Some(Known::Ready(id)) => return Ok(Ok(id)),
        Some(Known::Refused(reason, at)) if at >= waited_from => return Ok(Err(reason)),
        _ => {}
    }
    if let Some(reason) = ctx.networks.recent_failure(vpc_id) {
        return Err(trying_again(reason));
    }
    if let Some(existing) = find(ctx, vpc_id).await? {
        ctx.networks.made(vpc_id, existing.clone());
        return Ok(Ok(existing));
    }
    let cidr = match vpc_block(ctx, vpc_id) {
        Ok(Some(cidr)) => cidr,
        Ok(None) => return Ok(Err(format!("VPC {vpc_id} has no record"))),
        Err(error) => return Err(RuntimeError::Unavailable(error.to_string())),
    };
    let spec = NetworkSpec {
        name: labels::network_name(ctx.store.id(), vpc_id),
        cidr: cidr.clone(),
        vpc_id: vpc_id.to_string(),
        store_id: ctx.store.id().to_string(),
    };
    match ctx.runtime.create_network(&spec).await {
        Ok(id) => {
            info!(%vpc_id, network = %spec.name, %cidr, "VPC network created");
            ctx.networks.made(vpc_id, id.clone());
            Ok(Ok(id))
        }
        Err(RuntimeError::Failed(reason))
            if !names_an_overlap(&reason)
                && ctx.networks.failed_once_more(vpc_id, &reason) < FAILURES_BEFORE_REFUSAL =>
        {
            warn!(%vpc_id, network = %spec.name, %cidr, %reason, "Docker could not make the VPC's network; trying again");
            Err(trying_again(reason))
        }
        Err(RuntimeError::Failed(reason)) => {
            ctx.networks.clear_failures(vpc_id);
            warn!(%vpc_id, network = %spec.name, %cidr, %reason, "Docker refused the VPC's network; its instances boot on Docker's default bridge");
            let reason = format!(
                "VPC {vpc_id} has no Docker network of its own ({cidr} refused: {reason}); the instance is on Docker's default bridge"
            );
            ctx.networks
                .set(vpc_id, Known::Refused(reason.clone(), Instant::now()));
            Ok(Err(reason))
        }
        Err(other) => Err(other),
    }
}

/// A failure to make a network that may pass: transient (the instance's pass backs off and
/// asks again), without marking the engine down as `Unavailable` would.
fn trying_again(reason: String) -> RuntimeError {
    RuntimeError::Conflict(format!("{reason}; trying again"))
}

/// Whether the engine's (or ec2d's own) refusal says the block overlaps another network or a
/// host route: asking again gives the same answer.
fn names_an_overlap(reason: &str) -> bool {
    reason.to_ascii_lowercase().contains("overlap")
}

/// This store's network for the VPC, by its labels.
async fn find<R: ContainerRuntime>(
    ctx: &Context<R>,
    vpc_id: &str,
) -> Result<Option<String>, RuntimeError> {
    Ok(ctx
        .runtime
        .list_networks()
        .await?
        .into_iter()
        .find(|n| n.vpc_id == vpc_id && n.store_id.as_deref() == Some(ctx.store.id()))
        .map(|n| n.id))
}

/// The VPCs whose networks an instance of this store on `ctx`'s engine still needs: any
/// instance not meant to be terminated that has an address on its VPC (a stopped instance
/// keeps its network).
fn needed_vpcs<R: ContainerRuntime>(ctx: &Context<R>) -> Result<Vec<String>, ReconcileError> {
    let mut vpcs: Vec<String> = ctx
        .store
        .instances()
        .list_shared()?
        .objects
        .iter()
        .filter(|i| i.spec.desired != DesiredState::Terminated)
        // With several engines, only the instances on this one need its networks.
        .filter(|i| {
            !ctx.engines.is_multi()
                || std::sync::Arc::ptr_eq(&super::instance::engine_of(ctx, i), &ctx.current_engine)
        })
        .filter_map(|i| wants_network(ctx, i).map(|(vpc, _)| vpc))
        .collect();
    vpcs.sort();
    vpcs.dedup();
    Ok(vpcs)
}

/// Converges one VPC's network: made when an instance needs it and it is missing (removed
/// behind ec2d's back), removed when none does. Instances re-attach on their own passes.
pub(super) async fn reconcile<R: ContainerRuntime>(
    vpc_id: &str,
    ctx: &Context<R>,
) -> Result<Action, ReconcileError> {
    if needed_vpcs(ctx)?.iter().any(|needed| needed == vpc_id) {
        ctx.networks.forget(vpc_id);
        // A refusal is recorded where it matters: in the status of the instances it affects.
        if let Err(reason) = ensure(ctx, vpc_id).await? {
            tracing::debug!(%vpc_id, %reason, "VPC network refused");
        }
        return Ok(Action::await_change());
    }
    ctx.networks.clear_failures(vpc_id);
    remove_unneeded(ctx, &[vpc_id.to_string()]).await
}

/// Removes this store's networks that no instance needs (among `only`, or all when empty):
/// after a VPC's last instance, and orphans found by the sweep. A network a container is
/// still leaving is tried again shortly.
pub(super) async fn remove_unneeded<R: ContainerRuntime>(
    ctx: &Context<R>,
    only: &[String],
) -> Result<Action, ReconcileError> {
    let ours: Vec<_> = ctx
        .runtime
        .list_networks()
        .await?
        .into_iter()
        .filter(|n| n.store_id.as_deref() == Some(ctx.store.id()))
        .filter(|n| only.is_empty() || only.contains(&n.vpc_id))
        .collect();
    if ours.is_empty() {
        return Ok(Action::await_change());
    }
    let mut busy = false;
    for network in ours {
        let lock = ctx.networks.lock_for(&network.vpc_id);
        let _held = lock.lock().await;
        // Re-read under the lock: a launch since the listing needs the network again.
        if needed_vpcs(ctx)?.contains(&network.vpc_id) {
            continue;
        }
        match ctx.runtime.remove_network(&network.id).await {
            Ok(()) | Err(RuntimeError::NotFound(_)) => {
                info!(vpc_id = %network.vpc_id, network = %network.name, "VPC network removed: no instance needs it");
                ctx.networks.forget(&network.vpc_id);
            }
            Err(RuntimeError::Conflict(reason)) => {
                tracing::debug!(network = %network.name, %reason, "network still in use; removing it later");
                busy = true;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(if busy {
        Action::requeue(REMOVAL_RETRY)
    } else {
        Action::await_change()
    })
}
