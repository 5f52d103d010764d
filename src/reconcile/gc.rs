//! Garbage collection: containers whose instance is unknown (orphans), Docker volumes whose volume or snapshot record is gone, and terminated instance records past their retention.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tracing::{info, warn};

use super::{Context, ReconcileError};
use crate::controller::Action;
use crate::model::{now, InstanceState};
use crate::runtime::{labels, ContainerRuntime, RuntimeError, VolumeOwner};

/// A labelled container that ec2d keeps although no instance owns it (`EC2_REMOVE_CONTAINERS=0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptOrphan {
    /// Docker's container id.
    pub container_id: String,
    /// The container name.
    pub name: String,
    /// The instance id on its label.
    pub instance_id: String,
    /// Docker's state word.
    pub state: String,
}

/// What the last sweep found, for the status endpoint.
#[derive(Debug, Clone, Default)]
pub struct SweepReport {
    inner: Arc<Mutex<Vec<KeptOrphan>>>,
}

impl SweepReport {
    /// Orphans kept at the last sweep.
    pub fn kept(&self) -> Vec<KeptOrphan> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, kept: Vec<KeptOrphan>) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = kept;
    }
}

/// One sweep: remove (or report) this store's containers that no instance owns, and collect
/// terminated instance records older than the retention.
pub(super) async fn sweep<R: ContainerRuntime>(ctx: &Context<R>) -> Result<Action, ReconcileError> {
    collect_terminated(ctx)?;
    // The IMDS NAT rules' full sync (whatever a lost event or a hand edit left), before
    // anything that needs the engine.
    super::imds_routes::sync(ctx).await;
    let kept = Mutex::new(Vec::new());
    let result = super::on_every_engine(ctx, |on| {
        let kept = &kept;
        async move { sweep_engine(&on, kept).await }
    })
    .await;
    // A sweep that could not list its one engine keeps the last report; with several, what
    // the engines that answered kept is the report.
    if result.is_ok() || ctx.engines.is_multi() {
        ctx.sweep_report
            .set(kept.into_inner().unwrap_or_else(|p| p.into_inner()));
    }
    result.map(|_| Action::requeue(ctx.settings.converged_requeue))
}

/// The sweep on `ctx`'s engine: orphaned containers (no record, or a record of an instance
/// on another engine: a leftover of a configuration that placed it here), then networks and
/// Docker volumes no one needs.
async fn sweep_engine<R: ContainerRuntime>(
    ctx: &Context<R>,
    kept_everywhere: &Mutex<Vec<KeptOrphan>>,
) -> Result<Action, ReconcileError> {
    let containers = ctx.runtime.list_managed().await?;
    let mut kept = Vec::new();
    for container in containers {
        // Only this store's containers: another ec2d sharing the engine owns the rest.
        if container.labels.get(labels::STORE_ID).map(String::as_str) != Some(ctx.store.id()) {
            continue;
        }
        // The record is written before its container is created, so a container without a
        // record is never one that is still being launched.
        match ctx.store.instances().get(container.instance_id.as_str())? {
            Some(instance)
                if !ctx.engines.is_multi()
                    || Arc::ptr_eq(
                        &super::instance::engine_of(ctx, &instance),
                        &ctx.current_engine,
                    ) =>
            {
                continue
            }
            Some(_) => {
                info!(container = %container.name, instance_id = %container.instance_id, engine = %ctx.current_engine.name(), "the instance is on another engine: this container is a leftover")
            }
            None => {}
        }
        if ctx.settings.remove_containers {
            info!(container = %container.name, instance_id = %container.instance_id, "removing orphaned container");
            ctx.runtime.remove(&container.id).await?;
        } else {
            warn!(container = %container.name, instance_id = %container.instance_id, "keeping orphaned container (EC2_REMOVE_CONTAINERS=0)");
            kept.push(KeptOrphan {
                container_id: container.id.clone(),
                name: container.name.clone(),
                instance_id: container.instance_id.to_string(),
                state: container.state.as_str().to_string(),
            });
        }
    }
    kept_everywhere
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(kept);
    // Networks no instance needs: a VPC's last instance went while ec2d was down, or its
    // removal was refused then.
    // A network still being left is tried again by its own key, or by the next sweep.
    let _when_busy = super::network::remove_unneeded(ctx, &[]).await?;
    sweep_volumes(ctx).await?;
    Ok(Action::await_change())
}

/// Removes this store's Docker volumes whose volume or snapshot record is gone (collected, or
/// lost with a crash between a removal and the collection), and the helper containers of copies
/// a crash interrupted. A Docker volume whose record exists is never an orphan, made or not:
/// its own key adopts it. Another store's volumes, and unlabelled ones, are never looked at.
async fn sweep_volumes<R: ContainerRuntime>(ctx: &Context<R>) -> Result<(), ReconcileError> {
    let helpers = ctx
        .runtime
        .remove_volume_helpers(&labels::volume_prefix(ctx.store.id()))
        .await?;
    if helpers > 0 {
        info!(count = helpers, "removed leftover volume helper containers");
    }
    for volume in ctx.runtime.list_volumes().await? {
        if volume.store_id.as_deref() != Some(ctx.store.id()) {
            continue;
        }
        // The record is written before its Docker volume is made, so a volume without one is
        // never one still being made.
        let has_record = match &volume.owner {
            VolumeOwner::Volume(id) => ctx.store.volumes().get_shared(id)?.is_some(),
            VolumeOwner::Snapshot(id) => ctx.store.snapshots().get_shared(id)?.is_some(),
        };
        if has_record {
            continue;
        }
        match ctx.runtime.remove_volume(&volume.name).await {
            Ok(()) => {
                info!(volume = %volume.name, owner = ?volume.owner, "removed an orphaned Docker volume")
            }
            Err(RuntimeError::NotFound(_)) => {}
            // Mounted by a container still (someone's `docker run -v`): the next sweep.
            Err(RuntimeError::Conflict(reason)) => {
                warn!(volume = %volume.name, %reason, "orphaned Docker volume in use; keeping it for now")
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

/// Deletes terminated instances whose termination is older than the retention: EC2 keeps
/// them describable for about an hour.
fn collect_terminated<R: ContainerRuntime>(ctx: &Context<R>) -> Result<(), ReconcileError> {
    let retention =
        time::Duration::try_from(ctx.settings.terminated_retention).unwrap_or(time::Duration::HOUR);
    let cutoff = now() - retention;
    for instance in ctx.store.instances().list()?.objects {
        if instance.status.state != Some(InstanceState::Terminated) {
            continue;
        }
        let terminated_at = instance
            .status
            .transitions
            .iter()
            .rev()
            .find(|t| t.to == InstanceState::Terminated)
            .map(|t| t.at)
            .or(instance.metadata.deletion_timestamp)
            .unwrap_or(instance.metadata.creation_timestamp);
        // A leftover container is removed by the instance's own reconcile first.
        let container_gone = instance.status.container.is_none() || !ctx.settings.remove_containers;
        if terminated_at < cutoff && container_gone {
            info!(instance_id = %instance.metadata.name, "collecting terminated instance record");
            // The copy first: a crash in between then leaves a record whose copy is gone
            // (collected again next sweep), never a copy that nothing will ever collect.
            ctx.store.delete_console_output(&instance.metadata.name)?;
            ctx.store.collect_instance(&instance.metadata.name)?;
            ctx.console_reads.forget(&instance.metadata.name);
        }
    }
    Ok(())
}
