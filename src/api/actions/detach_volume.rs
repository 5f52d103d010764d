//! `DetachVolume`: removes an attachment from the volume's spec (`detaching` until the instance's container unmounts it, then `available`).

use crate::api::error::ApiError;
use crate::api::instances::shown_state;
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::volumes::{self, device_key, AttachmentState, VolumeState, World};
use crate::api::xml::XmlWriter;
use crate::model::{format_timestamp, InstanceId, InstanceState, Volume, VolumeAttachmentSpec};

/// The attachment in force that the request names (by instance and device when given).
fn named<'a>(
    world: &World,
    volume: &'a Volume,
    instance_id: Option<&str>,
    device: Option<&str>,
) -> Result<&'a VolumeAttachmentSpec, ApiError> {
    let id = &volume.metadata.name;
    let live: Vec<&VolumeAttachmentSpec> =
        crate::model::volume::live_attachments(volume, |i| world.instance(i)).collect();
    let matching: Vec<&VolumeAttachmentSpec> = live
        .iter()
        .copied()
        .filter(|a| instance_id.is_none_or(|i| a.instance_id == i))
        .filter(|a| device.is_none_or(|d| device_key(&a.device) == device_key(d)))
        .collect();
    match (matching.as_slice(), instance_id, device) {
        ([one], _, _) => Ok(one),
        ([], Some(i), Some(d)) if live.iter().any(|a| a.instance_id == i) => Err(ApiError::client(
            "InvalidAttachment.NotFound",
            format!("The volume {id} is not attached to instance {i} as device {d}"),
        )),
        ([], Some(i), _) => Err(ApiError::client(
            "InvalidAttachment.NotFound",
            format!("Volume {id} can not be detached from {i} because it is not attached"),
        )),
        ([], None, Some(d)) => Err(ApiError::client(
            "InvalidAttachment.NotFound",
            format!("Volume {id} is not attached as device {d}"),
        )),
        // Attached to several instances (multi-attach): the instance must be named.
        _ => Err(ApiError::missing_parameter("InstanceId")),
    }
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = volumes::volume_id_param(params)?;
    let instance_id = match params.get("InstanceId").filter(|i| !i.is_empty()) {
        None => None,
        Some(i) => Some(InstanceId::parse(i)?.to_string()),
    };
    let device = params
        .get("Device")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    params.bool("Force")?;
    let (shown, world) = volumes::load(state, region, &id)?;
    let live = crate::model::volume::live_attachments(&shown.volume, |i| world.instance(i)).count();
    if live == 0 || shown.state == VolumeState::Deleting {
        return Err(ApiError::client(
            "IncorrectState",
            format!("Volume '{id}' is in the '{}' state.", shown.state.name()),
        ));
    }
    let attachment = named(
        &world,
        &shown.volume,
        instance_id.as_deref(),
        device.as_deref(),
    )?
    .clone();
    if shown.volume.spec.root_of.as_deref() == Some(attachment.instance_id.as_str()) {
        let stopped = world
            .instance(&attachment.instance_id)
            .is_some_and(|i| shown_state(&i) == InstanceState::Stopped);
        if !stopped {
            return Err(ApiError::client(
                "IncorrectState",
                format!(
                    "Unable to detach root volume '{id}' from instance '{}'",
                    attachment.instance_id
                ),
            ));
        }
    }
    kind::check_dry_run(kind::dry_run(params)?)?;
    volumes::update(state, &id, true, |v| {
        let before = v.spec.attachments.len();
        v.spec
            .attachments
            .retain(|a| a.instance_id != attachment.instance_id);
        Ok(v.spec.attachments.len() != before)
    })?;
    tracing::info!(volume_id = %id, instance_id = %attachment.instance_id, "volume detachment requested");
    let mut w = XmlWriter::new();
    w.field("attachTime", format_timestamp(attachment.attach_time));
    w.field("device", &attachment.device);
    w.field("instanceId", &attachment.instance_id);
    w.field("status", AttachmentState::Detaching.name());
    w.field("volumeId", &id);
    w.field("deleteOnTermination", attachment.delete_on_termination);
    Ok(w.finish())
}
