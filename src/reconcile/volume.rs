//! EBS volumes: the Docker volume holding each one's data, found by its labels or made (with a snapshot's data copied in), marked `error` when removed behind ec2d's back, and removed with the record once no container has it mounted.
//!
//! A volume is `ready` only once its Docker volume exists with all its data: the status write
//! that names the Docker volume (`backing`) is the last step, after any copy. So a crash
//! mid-copy leaves a volume that is not ready, and the next pass makes its Docker volume again,
//! empty, before copying: a half-restored volume never reads `ready`. Once `backing` is
//! recorded the Docker volume is never made again: if it is gone, its data is, and the volume
//! says so (`error`) rather than come back empty.

use tracing::{info, warn};

use super::{Context, ReconcileError};
use crate::controller::Action;
use crate::model::snapshot::COPY_ATTEMPTS;
use crate::model::volume::is_being_deleted;
use crate::model::{now, Volume, VolumeStatus};
use crate::runtime::{
    labels, ContainerRuntime, DockerVolumeSpec, ObservedVolume, RuntimeError, VolumeOwner,
};

/// How soon to try again to remove a Docker volume the engine says is in use, or to look
/// again at a volume waiting for its instances to unmount it.
const REMOVAL_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a made volume is in `error` when its Docker volume is gone.
fn drift_error(name: &str) -> String {
    format!("its Docker volume {name} was removed outside ec2d; the volume's data is lost")
}

/// Counts a failed copy of a volume's data (snapshot or restore) in `failures`. `Ok(error)`
/// when the copy is given up (its source is gone, or it failed [`COPY_ATTEMPTS`] times in a
/// row): the caller records the error and waits for a change; `Err` to retry with backoff
/// after recording the count. An engine that cannot be reached is never counted.
pub(super) fn copy_failed(failures: &mut u32, error: RuntimeError) -> Result<String, RuntimeError> {
    match error {
        RuntimeError::Unavailable(_) => Err(error),
        RuntimeError::NotFound(_) => {
            *failures += 1;
            Ok(format!("copying its data failed: {error}"))
        }
        _ => {
            *failures += 1;
            if *failures >= COPY_ATTEMPTS {
                Ok(format!(
                    "copying its data failed {failures} times in a row, the last: {error}"
                ))
            } else {
                Err(error)
            }
        }
    }
}

/// Converges one volume.
pub(super) async fn reconcile<R: ContainerRuntime>(
    id: &str,
    ctx: &Context<R>,
) -> Result<Action, ReconcileError> {
    let Some(volume) = ctx.store.volumes().get(id)? else {
        return Ok(Action::await_change());
    };
    let instances = ctx.store.instances();
    if is_being_deleted(&volume, |i: &str| instances.get_shared(i).ok().flatten()) {
        return delete(ctx, &volume).await;
    }
    let mut status = volume.status.clone();
    status.engine = ctx.engine_to_record(status.engine.as_deref());
    let action = if volume.spec.root_of.is_some() {
        // A root volume's data is its instance's container's own file system: nothing to make.
        status.ready = true;
        Action::await_change()
    } else {
        match converge_backing(ctx, &volume, &mut status).await? {
            Some(wait) => {
                write(ctx, &volume, &status)?;
                return Ok(wait);
            }
            None => Action::await_change(),
        }
    };
    // ModifyVolume: a Docker volume has no size to grow, so the change is done once recorded.
    if let Some(modification) = &volume.spec.modification {
        if status
            .modification_end_time
            .is_none_or(|end| end < modification.start_time)
        {
            status.modification_end_time = Some(now().max(modification.start_time));
        }
    }
    status.observed_generation = volume.metadata.generation;
    write(ctx, &volume, &status)?;
    Ok(action)
}

fn write<R: ContainerRuntime>(
    ctx: &Context<R>,
    volume: &Volume,
    status: &VolumeStatus,
) -> Result<(), ReconcileError> {
    if *status != volume.status {
        ctx.store
            .volumes()
            .write_status(&volume.metadata.name, status)?;
    }
    Ok(())
}

/// This store's Docker volume for `owner`, by its labels.
pub(super) async fn find<R: ContainerRuntime>(
    ctx: &Context<R>,
    owner: &VolumeOwner,
) -> Result<Option<ObservedVolume>, RuntimeError> {
    Ok(ctx
        .runtime
        .list_volumes()
        .await?
        .into_iter()
        .find(|v| &v.owner == owner && v.store_id.as_deref() == Some(ctx.store.id())))
}

/// Makes a fresh, empty Docker volume for `owner`: one found (left by a pass that did not
/// finish, so perhaps holding half a copy) is removed first.
pub(super) async fn make_empty<R: ContainerRuntime>(
    ctx: &Context<R>,
    owner: VolumeOwner,
    found: Option<ObservedVolume>,
) -> Result<ObservedVolume, RuntimeError> {
    if let Some(stale) = found {
        info!(volume = %stale.name, "removing a Docker volume a copy did not finish filling");
        match ctx.runtime.remove_volume(&stale.name).await {
            Ok(()) | Err(RuntimeError::NotFound(_)) => {}
            Err(other) => return Err(other),
        }
    }
    ctx.runtime
        .create_volume(&DockerVolumeSpec {
            name: labels::volume_name(ctx.store.id(), owner.id()),
            owner,
            store_id: ctx.store.id().to_string(),
        })
        .await
}

/// Brings `status` to the volume's Docker volume. `Some(action)` when the volume has to wait
/// (its snapshot is not complete yet) or cannot be converged (it is in `error`).
async fn converge_backing<R: ContainerRuntime>(
    ctx: &Context<R>,
    volume: &Volume,
    status: &mut VolumeStatus,
) -> Result<Option<Action>, ReconcileError> {
    let id = &volume.metadata.name;
    let owner = VolumeOwner::Volume(id.clone());
    if let Some(backing) = status.backing.clone() {
        match find(ctx, &owner).await? {
            Some(observed) => {
                // Still there (or put back by hand with ec2d's labels): the data is in place.
                status.mountpoint = Some(observed.mountpoint);
                status.ready = true;
                if status.error.as_deref() == Some(drift_error(&backing).as_str()) {
                    status.error = None;
                }
            }
            None => {
                if status.error.is_none() {
                    warn!(volume_id = %id, docker_volume = %backing, "the volume's Docker volume was removed outside ec2d; the volume is in error");
                }
                status.ready = false;
                status.error = Some(drift_error(&backing));
            }
        }
        return Ok(None);
    }
    // A restore given up: nothing will bring its data (DeleteVolume still removes it).
    if status.error.is_some() && status.copy_failures > 0 {
        return Ok(Some(Action::await_change()));
    }
    // Never made, or made by a pass that did not finish.
    let source = match &volume.spec.snapshot_id {
        None => None,
        Some(snapshot_id) => match ctx.store.snapshots().get_shared(snapshot_id)? {
            None => {
                status.error = Some(format!(
                    "its snapshot {snapshot_id} was deleted before the volume was made"
                ));
                return Ok(Some(Action::await_change()));
            }
            Some(snapshot) if snapshot.status.error.is_some() => {
                status.error = Some(format!(
                    "its snapshot {snapshot_id} is in error: {}",
                    snapshot.status.error.as_deref().unwrap_or_default()
                ));
                return Ok(Some(Action::await_change()));
            }
            // Restoring waits for the snapshot's copy to complete.
            Some(snapshot) if !snapshot.status.completed => {
                return Ok(Some(Action::requeue(ctx.settings.converging_requeue)));
            }
            // A root volume's snapshot holds no data: the volume starts empty.
            Some(snapshot) => snapshot.status.backing.clone(),
        },
    };
    // Looked for only now, so a volume waiting for its snapshot asks the engine nothing.
    let found = find(ctx, &owner).await?;
    let made = match (found, &source) {
        // Nothing to copy in: a volume made before a crash is adopted as it is.
        (Some(observed), None) => observed,
        (found, _) => make_empty(ctx, owner, found).await?,
    };
    if let Some(snapshot_volume) = &source {
        let bytes = match ctx
            .runtime
            .copy_volume_data(snapshot_volume, &made.name)
            .await
        {
            Ok(bytes) => bytes,
            Err(error) => {
                let given_up = copy_failed(&mut status.copy_failures, error);
                return match given_up {
                    Ok(why) => {
                        warn!(volume_id = %id, snapshot_id = ?volume.spec.snapshot_id, error = %why, "restoring the volume's data failed; the volume is in error");
                        status.error = Some(why);
                        Ok(Some(Action::await_change()))
                    }
                    Err(error) => {
                        write(ctx, volume, status)?;
                        Err(error.into())
                    }
                };
            }
        };
        info!(volume_id = %id, snapshot_id = ?volume.spec.snapshot_id, bytes, "restored the volume's data from its snapshot");
    } else {
        info!(volume_id = %id, docker_volume = %made.name, "volume's Docker volume ready");
    }
    status.backing = Some(made.name);
    status.mountpoint = Some(made.mountpoint);
    status.ready = true;
    status.error = None;
    status.copy_failures = 0;
    Ok(None)
}

/// Deletes a volume: once no instance's container has it mounted, its Docker volume is removed
/// and its record collected.
async fn delete<R: ContainerRuntime>(
    ctx: &Context<R>,
    volume: &Volume,
) -> Result<Action, ReconcileError> {
    let id = &volume.metadata.name;
    // The instance reconciler unmounts it first (it reads the attachment as over).
    let mounted = ctx
        .store
        .instances()
        .list_shared()?
        .objects
        .iter()
        .any(|i| i.status.volumes.iter().any(|m| &m.volume_id == id));
    if mounted {
        tracing::debug!(volume_id = %id, "volume being deleted is still mounted; waiting");
        return Ok(Action::requeue(REMOVAL_RETRY));
    }
    if volume.spec.root_of.is_none() {
        let found = find(ctx, &VolumeOwner::Volume(id.clone())).await?;
        let mut names: Vec<String> = found.into_iter().map(|v| v.name).collect();
        names.extend(volume.status.backing.clone());
        names.dedup();
        for name in names {
            match ctx.runtime.remove_volume(&name).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => {}
                Err(RuntimeError::Conflict(reason)) => {
                    tracing::debug!(volume_id = %id, %reason, "Docker volume still in use; removing it later");
                    return Ok(Action::requeue(REMOVAL_RETRY));
                }
                Err(other) => return Err(other.into()),
            }
        }
    }
    // Its `EC2_MOUNT_BLOCK_DEVICES` file goes with it (no container binds it any more: the
    // volume is mounted nowhere).
    if let Some(files) = &ctx.settings.block_devices {
        if let Err(error) = files.remove(id) {
            warn!(volume_id = %id, %error, "cannot remove the volume's block device file");
        }
    }
    info!(volume_id = %id, "volume deleted; collecting its record");
    ctx.store.collect_volume(id)?;
    Ok(Action::await_change())
}
