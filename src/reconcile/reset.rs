//! Reset: everything this store made in Docker and on the host removed, for `POST /_ec2d/reset` (the app wipes the records after).

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;
use tracing::{info, warn};

use super::{catalog, imds_routes, Context, ReconcileError};
use crate::model::ImageSource;
use crate::runtime::{labels, ContainerRuntime, RuntimeError};

/// What a reset removed, for its answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetReport {
    /// Instance containers removed.
    pub containers: usize,
    /// VPC networks removed.
    pub networks: usize,
    /// Docker volumes (EBS volumes' and snapshots' data) removed.
    pub volumes: usize,
    /// AMI tags (of CreateImage and CopyImage AMIs) removed.
    pub image_tags: usize,
    /// Engines that could not be reached (with several engines): what ec2d made on them is
    /// swept once they are back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub engines_unreachable: Vec<String>,
}

/// Removes this store's instance containers, the volume mounts of its instances, its volume
/// copy helpers, Docker volumes and VPC networks, and the tags of the AMIs its records name
/// (CreateImage's and CopyImage's, and those of deregistered AMIs still waiting to go); nothing
/// another store or the user made. Run while no reconcile is in flight (the controller's
/// exclusive section) and no request changes the store, so nothing is made again meanwhile;
/// the records are wiped after, by the app, then [`after_wipe`] refreshes what follows them.
///
/// Every step is idempotent: a reset that failed halfway (the engine went away) is simply
/// asked for again.
///
/// With several engines each is reset in turn. One that cannot be reached is left as it is
/// and named in the report: once the records are wiped its containers, networks and volumes
/// are orphans, which the sweep removes when the engine is back.
pub async fn remove_everything<R: ContainerRuntime>(
    ctx: &Context<R>,
) -> Result<ResetReport, ReconcileError> {
    let mut report = ResetReport::default();
    for engine in ctx.engines.iter() {
        let on = ctx.on_engine(engine);
        match remove_on_engine(&on, &mut report).await {
            Err(ReconcileError::Runtime(error @ RuntimeError::Unavailable(_)))
                if ctx.engines.is_multi() =>
            {
                warn!(engine = %engine.name(), %error, "reset: engine unreachable; what ec2d made on it is swept once it is back");
                report.engines_unreachable.push(engine.name().to_string());
            }
            other => other?,
        }
    }
    Ok(report)
}

/// [`remove_everything`] on `ctx`'s engine, adding to `report`.
async fn remove_on_engine<R: ContainerRuntime>(
    ctx: &Context<R>,
    report: &mut ResetReport,
) -> Result<(), ReconcileError> {
    let store_id = ctx.store.id().to_string();

    // Containers first: a volume, a network or an image a container uses cannot go before it.
    let mut owners: BTreeSet<String> = ctx.store.instances().ids()?.into_iter().collect();
    for container in ctx.runtime.list_managed().await? {
        if container.labels.get(labels::STORE_ID) != Some(&store_id) {
            continue;
        }
        ctx.runtime.remove(&container.id).await?;
        info!(instance_id = %container.instance_id, container = %container.name, "reset: container removed");
        owners.insert(container.instance_id.to_string());
        report.containers += 1;
    }
    for owner in &owners {
        ctx.console_reads.forget(owner);
    }
    if ctx.volume_mounts.is_active() {
        for owner in &owners {
            if let Err(error) = ctx.volume_mounts.forget(owner) {
                warn!(instance_id = %owner, %error, "reset: could not remove the instance's volume mounts");
            }
        }
    }
    ctx.runtime
        .remove_volume_helpers(&labels::volume_prefix(&store_id))
        .await?;
    for volume in ctx.runtime.list_volumes().await? {
        if volume.store_id.as_deref() != Some(store_id.as_str()) {
            continue;
        }
        match ctx.runtime.remove_volume(&volume.name).await {
            Ok(()) => report.volumes += 1,
            Err(RuntimeError::NotFound(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    if let Some(devices) = &ctx.settings.block_devices {
        for id in ctx.store.volumes().ids()? {
            if let Err(error) = devices.remove(&id) {
                warn!(volume_id = %id, %error, "reset: could not remove the volume's device file");
            }
        }
    }
    for network in ctx.runtime.list_networks().await? {
        if network.store_id.as_deref() != Some(store_id.as_str()) {
            continue;
        }
        match ctx.runtime.remove_network(&network.id).await {
            Ok(()) => report.networks += 1,
            Err(RuntimeError::NotFound(_)) => {}
            Err(other) => return Err(other.into()),
        }
        ctx.networks.forget(&network.vpc_id);
    }
    report.image_tags += remove_image_tags(ctx, &store_id).await?;
    info!(
        containers = report.containers,
        networks = report.networks,
        volumes = report.volumes,
        image_tags = report.image_tags,
        engine = %ctx.current_engine.name(),
        "reset: Docker objects removed"
    );
    Ok(())
}

/// The tags of the AMIs this store's image records name. A discovered AMI's tag on an image
/// another ec2d committed stays, as deregistration leaves it (that ec2d's AMI relies on it).
async fn remove_image_tags<R: ContainerRuntime>(
    ctx: &Context<R>,
    store_id: &str,
) -> Result<usize, ReconcileError> {
    let records = ctx.store.images().list_shared()?.objects;
    let discovered: HashSet<&str> = records
        .iter()
        .filter(|image| matches!(image.spec.source, ImageSource::Docker))
        .map(|image| image.metadata.name.as_str())
        .collect();
    let named: HashSet<&str> = records
        .iter()
        .map(|image| image.metadata.name.as_str())
        .collect();
    let mut removed = 0;
    for ami in ctx.runtime.list_amis().await? {
        let id = ami.ami_id.as_str();
        if !named.contains(id) || (discovered.contains(id) && catalog::foreign(&ami, store_id)) {
            continue;
        }
        match ctx.runtime.remove_image_tag(&ami.reference).await {
            Ok(()) => removed += 1,
            Err(RuntimeError::NotFound(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(removed)
}

/// After the records are wiped: the catalog is discovered again from the tags left (the
/// removed AMIs' are gone, discovered AMIs stay), the host's IMDS rules follow the empty
/// store.
pub async fn after_wipe<R: ContainerRuntime>(ctx: &Context<R>) -> Result<(), ReconcileError> {
    imds_routes::sync(ctx).await;
    let _requeue = catalog::reconcile(ctx).await?;
    Ok(())
}
