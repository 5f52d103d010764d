//! `DeleteVolume`: marks a volume for deletion (`metadata.deletionTimestamp`, a compare-and-swap spec update); the reconciler removes its data, then the record. Refused while it is attached.

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;
use crate::api::volumes::{self, VolumeState, World};
use crate::model::now;

/// `VolumeInUse` while the volume shows an attachment (attaching, attached or detaching).
fn check_unattached(world: &World, volume: &crate::model::Volume) -> Result<(), ApiError> {
    let shown = world.show(std::sync::Arc::new(volume.clone()));
    match shown.attachments.first() {
        Some(a) if shown.state != VolumeState::Deleting => Err(ApiError::client(
            "VolumeInUse",
            format!(
                "Volume {} is currently attached to {}",
                volume.metadata.name, a.instance_id
            ),
        )),
        _ => Ok(()),
    }
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = volumes::volume_id_param(params)?;
    let (shown, world) = volumes::load(state, region, &id)?;
    check_unattached(&world, &shown.volume)?;
    kind::check_dry_run(kind::dry_run(params)?)?;
    volumes::update(state, &id, true, |v| {
        if v.metadata.deletion_timestamp.is_some() {
            // Already being deleted: nothing more to ask.
            return Ok(false);
        }
        // Checked again on the record being replaced: an attachment made meanwhile wins.
        check_unattached(&world, v)?;
        v.metadata.deletion_timestamp = Some(now());
        Ok(true)
    })?;
    tracing::info!(volume_id = %id, "volume deletion requested");
    Ok(render_return_true())
}
