//! EBS snapshots: a Docker volume of the snapshot's own holding a copy of its source's data (a volume's, or for CopySnapshot another snapshot's), `completed` once the copy is in, `error` when the source is gone first or the copy is removed behind ec2d's back; removed with the record on DeleteSnapshot.
//!
//! A root volume has no Docker volume (its data is its instance's container's own layer), so a
//! snapshot of one completes holding no data; CreateImage's commit is what keeps that data.
//! As for volumes, `backing` is written with `completed`, after the copy: a snapshot whose copy
//! was cut short by a crash is copied again into a fresh Docker volume.

use tracing::{info, warn};

use super::volume::{copy_failed, find, make_empty};
use super::{Context, ReconcileError};
use crate::controller::Action;
use crate::model::{now, Snapshot, SnapshotStatus};
use crate::runtime::{ContainerRuntime, RuntimeError, VolumeOwner};

/// How soon to try again to remove a Docker volume the engine says is in use.
const REMOVAL_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a completed snapshot is in `error` when its Docker volume is gone.
fn drift_error(name: &str) -> String {
    format!("its Docker volume {name} was removed outside ec2d; the snapshot's data is lost")
}

/// Where a snapshot's data comes from, once it can be copied.
enum Source {
    /// This Docker volume.
    Data(String),
    /// Nothing to copy: a root volume, or a copy of a snapshot of one.
    Empty,
    /// Not yet: the source is still being made or copied.
    Wait,
    /// Never: why.
    Gone(String),
}

/// Converges one snapshot.
pub(super) async fn reconcile<R: ContainerRuntime>(
    id: &str,
    ctx: &Context<R>,
) -> Result<Action, ReconcileError> {
    let Some(snapshot) = ctx.store.snapshots().get(id)? else {
        return Ok(Action::await_change());
    };
    if snapshot.metadata.deletion_timestamp.is_some() {
        return delete(ctx, &snapshot).await;
    }
    let mut status = snapshot.status.clone();
    status.engine = ctx.engine_to_record(status.engine.as_deref());
    let owner = VolumeOwner::Snapshot(id.to_string());
    let action = if status.completed {
        if let Some(backing) = status.backing.clone() {
            match find(ctx, &owner).await? {
                Some(_) => {
                    if status.error.as_deref() == Some(drift_error(&backing).as_str()) {
                        status.error = None;
                    }
                }
                None => {
                    if status.error.is_none() {
                        warn!(snapshot_id = %id, docker_volume = %backing, "the snapshot's Docker volume was removed outside ec2d; the snapshot is in error");
                    }
                    status.error = Some(drift_error(&backing));
                }
            }
        }
        Action::await_change()
    } else if status.error.is_some() {
        // Its source went before the copy: nothing will bring it back.
        Action::await_change()
    } else {
        match source(ctx, &snapshot)? {
            Source::Wait => Action::requeue(ctx.settings.converging_requeue),
            Source::Gone(why) => {
                warn!(snapshot_id = %id, reason = %why, "the snapshot's source is gone; the snapshot is in error");
                status.error = Some(why);
                Action::await_change()
            }
            Source::Empty => {
                status.backing = None;
                status.size_bytes = Some(0);
                status.completed = true;
                status.completion_time = Some(now());
                info!(snapshot_id = %id, "snapshot of a root volume completed: it holds no data");
                Action::await_change()
            }
            Source::Data(from) => {
                let found = find(ctx, &owner).await?;
                let made = make_empty(ctx, owner, found).await?;
                match ctx.runtime.copy_volume_data(&from, &made.name).await {
                    Ok(bytes) => {
                        info!(snapshot_id = %id, from = %from, bytes, "snapshot completed");
                        status.backing = Some(made.name);
                        status.size_bytes = Some(bytes);
                        status.completed = true;
                        status.completion_time = Some(now());
                        status.copy_failures = 0;
                        Action::await_change()
                    }
                    Err(error) => match copy_failed(&mut status.copy_failures, error) {
                        Ok(why) => {
                            warn!(snapshot_id = %id, from = %from, error = %why, "the snapshot's copy failed; the snapshot is in error");
                            status.error = Some(why);
                            Action::await_change()
                        }
                        Err(error) => {
                            write(ctx, &snapshot, &status)?;
                            return Err(error.into());
                        }
                    },
                }
            }
        }
    };
    status.observed_generation = snapshot.metadata.generation;
    write(ctx, &snapshot, &status)?;
    Ok(action)
}

fn write<R: ContainerRuntime>(
    ctx: &Context<R>,
    snapshot: &Snapshot,
    status: &SnapshotStatus,
) -> Result<(), ReconcileError> {
    if *status != snapshot.status {
        ctx.store
            .snapshots()
            .write_status(&snapshot.metadata.name, status)?;
    }
    Ok(())
}

/// Where the snapshot's data comes from: CopySnapshot's source snapshot once completed, else
/// the volume's Docker volume once made.
fn source<R: ContainerRuntime>(
    ctx: &Context<R>,
    snapshot: &Snapshot,
) -> Result<Source, ReconcileError> {
    if let Some(copied) = &snapshot.spec.source {
        let from = &copied.snapshot_id;
        return Ok(match ctx.store.snapshots().get_shared(from)? {
            None => Source::Gone(format!(
                "its source snapshot {from} was deleted before the copy"
            )),
            Some(s) if s.status.error.is_some() => {
                Source::Gone(format!("its source snapshot {from} is in error"))
            }
            Some(s) if !s.status.completed => Source::Wait,
            Some(s) => match &s.status.backing {
                Some(backing) => Source::Data(backing.clone()),
                None => Source::Empty,
            },
        });
    }
    let volume_id = &snapshot.spec.volume_id;
    Ok(match ctx.store.volumes().get_shared(volume_id)? {
        None => Source::Gone(format!(
            "its volume {volume_id} was deleted before the copy"
        )),
        Some(v) if v.spec.root_of.is_some() => Source::Empty,
        Some(v) if v.metadata.deletion_timestamp.is_some() => Source::Gone(format!(
            "its volume {volume_id} was being deleted before the copy"
        )),
        Some(v) if v.status.error.is_some() => Source::Gone(format!(
            "its volume {volume_id} is in error: it has no data to copy"
        )),
        Some(v) => match (&v.status.backing, v.status.ready) {
            (Some(backing), true) => Source::Data(backing.clone()),
            // Still being made (or restored from its own snapshot).
            _ => Source::Wait,
        },
    })
}

/// DeleteSnapshot: its Docker volume removed, then its record collected.
async fn delete<R: ContainerRuntime>(
    ctx: &Context<R>,
    snapshot: &Snapshot,
) -> Result<Action, ReconcileError> {
    let id = &snapshot.metadata.name;
    let found = find(ctx, &VolumeOwner::Snapshot(id.clone())).await?;
    let mut names: Vec<String> = found.into_iter().map(|v| v.name).collect();
    names.extend(snapshot.status.backing.clone());
    names.dedup();
    for name in names {
        match ctx.runtime.remove_volume(&name).await {
            Ok(()) | Err(RuntimeError::NotFound(_)) => {}
            // A copy from it is running (a helper container mounts it): done in a moment.
            Err(RuntimeError::Conflict(reason)) => {
                tracing::debug!(snapshot_id = %id, %reason, "snapshot's Docker volume in use; removing it later");
                return Ok(Action::requeue(REMOVAL_RETRY));
            }
            Err(other) => return Err(other.into()),
        }
    }
    info!(snapshot_id = %id, "snapshot deleted; collecting its record");
    ctx.store.snapshots().delete(id)?;
    Ok(Action::await_change())
}
