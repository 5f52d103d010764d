//! `AttachVolume`: records an attachment of an available volume to an instance of its zone at a free device (`attaching` until the instance's container mounts it).
//!
//! One volume is guarded by a compare-and-swap on its record: of two concurrent attachments
//! one wins and the other sees the volume in use. A device is checked against the instance's
//! root device and other volumes first, and claimed in the write's own transaction
//! (`volumes.devices`, `Store::attach_volume`), so of two volumes attached to one instance at
//! one device at once only one gets it.

use crate::api::error::ApiError;
use crate::api::instances::shown_state;
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::volumes::{self, AttachmentState, VolumeState};
use crate::api::xml::XmlWriter;
use crate::model::volume::live_attachments;
use crate::model::{
    format_timestamp, now, InstanceId, InstanceState, Volume, VolumeAttachmentSpec,
};
use crate::store::VolumeAttach;

/// Whether `volume` can take one more attachment to `instance_id`: it is ready and attached
/// nowhere, or multi-attach and not attached to that instance; EC2's errors otherwise.
fn check_attachable(
    volume: &Volume,
    state: VolumeState,
    attached_to: &[String],
    instance_id: &str,
) -> Result<(), ApiError> {
    let id = &volume.metadata.name;
    match state {
        VolumeState::Available => Ok(()),
        VolumeState::InUse
            if volume.spec.multi_attach_enabled
                && !attached_to.iter().any(|i| i == instance_id) =>
        {
            Ok(())
        }
        VolumeState::InUse => Err(ApiError::client(
            "VolumeInUse",
            format!("{id} is already attached to an instance"),
        )),
        _ => Err(ApiError::client(
            "IncorrectState",
            format!("{id} is not 'available'."),
        )),
    }
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = volumes::volume_id_param(params)?;
    let instance_id = InstanceId::parse(params.require("InstanceId")?)?.to_string();
    let device = params.require("Device")?.to_string();
    let (shown, world) = volumes::load(state, region, &id)?;
    let instance = world
        .instance(&instance_id)
        .filter(|i| i.metadata.namespace == region)
        .ok_or_else(|| ApiError::instances_not_found(std::slice::from_ref(&instance_id)))?;
    if !matches!(
        shown_state(&instance),
        InstanceState::Running | InstanceState::Stopped
    ) || instance.metadata.deletion_timestamp.is_some()
    {
        // EC2's words for an instance still pending (a stopped one takes volumes).
        return Err(ApiError::client(
            "IncorrectState",
            format!("Instance '{instance_id}' is not 'running'."),
        ));
    }
    let attached_to: Vec<String> = shown
        .attachments
        .iter()
        .map(|a| a.instance_id.clone())
        .collect();
    check_attachable(&shown.volume, shown.state, &attached_to, &instance_id)?;
    if shown.volume.spec.availability_zone != instance.spec.availability_zone {
        return Err(ApiError::client(
            "InvalidVolume.ZoneMismatch",
            format!("The volume '{id}' is not in the same availability zone as instance '{instance_id}'"),
        ));
    }
    let others = volumes::in_region(state, region)?;
    volumes::check_device(&device, &world.devices_in_use(&others, &instance_id, &id))?;
    kind::check_dry_run(kind::dry_run(params)?)?;

    let attach_time = now();
    loop {
        let current = state
            .store
            .volumes()
            .get_shared(&id)?
            .ok_or_else(|| volumes::not_found(&[&id]))?;
        // Checked again on the record being replaced: a concurrent attachment wins.
        let shown = world.show(current.clone());
        let attached_to: Vec<String> = shown
            .attachments
            .iter()
            .map(|a| a.instance_id.clone())
            .collect();
        check_attachable(&current, shown.state, &attached_to, &instance_id)?;
        let mut after = (*current).clone();
        // Attachments over (their instance terminated) are dropped as this one is recorded.
        after.spec.attachments = live_attachments(&current, |i| world.instance(i))
            .cloned()
            .collect();
        after.spec.attachments.push(VolumeAttachmentSpec {
            instance_id: instance_id.clone(),
            device: device.clone(),
            delete_on_termination: false,
            attach_time,
        });
        match state.store.attach_volume(
            &after,
            current.metadata.resource_version,
            &instance_id,
            &device,
        )? {
            VolumeAttach::Done(_) => break,
            VolumeAttach::Changed => continue,
            VolumeAttach::Missing => return Err(volumes::not_found(&[&id])),
            // Taken meanwhile by another volume.
            VolumeAttach::DeviceTaken(_) => return Err(volumes::device_in_use(&device)),
        }
    }
    tracing::info!(volume_id = %id, instance_id = %instance_id, device = %device, "volume attachment requested");
    let mut w = XmlWriter::new();
    w.field("attachTime", format_timestamp(attach_time));
    w.field("device", &device);
    w.field("instanceId", &instance_id);
    w.field("status", AttachmentState::Attaching.name());
    w.field("volumeId", &id);
    w.field("deleteOnTermination", false);
    Ok(w.finish())
}
