//! `CreateVolume`: records a volume (`creating`) in one of the region's zones, empty or from a snapshot, with EC2's type, size, IOPS and throughput rules; a `ClientToken` makes a retry answer the same volume.

use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::kinds::volume::render_volume;
use crate::api::launch_templates::idempotent_mismatch;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::tags;
use crate::api::volumes::{self, Performance, World};
use crate::api::xml::XmlWriter;
use crate::model::region::zones;
use crate::model::volume::new_volume;
use crate::model::{now, SnapshotId, Volume, VolumeId, VolumeSpec};
use crate::store::{StoreError, CLIENT_TOKEN_KIND};

/// EC2's longest idempotency token.
const MAX_CLIENT_TOKEN: usize = 64;

/// The zone named by `AvailabilityZone` or `AvailabilityZoneId`, one of the region's.
fn zone(params: &QueryParams, region: &str) -> Result<String, ApiError> {
    let all = zones(region);
    let name = params.get("AvailabilityZone").filter(|z| !z.is_empty());
    let id = params.get("AvailabilityZoneId").filter(|z| !z.is_empty());
    match (name, id) {
        (Some(name), _) => {
            let zone = all.iter().find(|z| z.name == name).ok_or_else(|| {
                ApiError::invalid_value(format!("Invalid availability zone: [{name}]"))
            })?;
            if let Some(id) = id.filter(|id| *id != zone.id) {
                return Err(ApiError::invalid_combination(format!(
                    "The availability zone '{name}' and availability zone id '{id}' do not match"
                )));
            }
            Ok(zone.name.clone())
        }
        (None, Some(id)) => all
            .iter()
            .find(|z| z.id == id)
            .map(|z| z.name.clone())
            .ok_or_else(|| {
                ApiError::invalid_value(format!("Invalid availability zone-id: [{id}]"))
            }),
        (None, None) => Err(ApiError::missing_parameter("AvailabilityZone")),
    }
}

/// `ClientToken`: at most 64 ASCII characters; empty is none.
fn client_token(params: &QueryParams) -> Result<Option<String>, ApiError> {
    match params.get("ClientToken").filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(token) if token.len() <= MAX_CLIENT_TOKEN && token.is_ascii() => {
            Ok(Some(token.to_string()))
        }
        Some(token) => Err(ApiError::invalid_value(format!(
            "Value ({token}) for parameter clientToken is invalid. Expected at most {MAX_CLIENT_TOKEN} ASCII characters."
        ))),
    }
}

/// The volume an earlier CreateVolume with this token made, when its record exists and was
/// asked for with the same zone, size, type and snapshot.
fn earlier(
    state: &ApiState,
    region: &str,
    token: &str,
    spec: &VolumeSpec,
) -> Result<Option<Arc<Volume>>, ApiError> {
    let Some(id) = state.store.volume_for_client_token(region, token)? else {
        return Ok(None);
    };
    let Some(volume) = state.store.volumes().get_shared(&id)? else {
        return Ok(None);
    };
    let v = &volume.spec;
    if v.availability_zone != spec.availability_zone
        || v.volume_type != spec.volume_type
        || v.snapshot_id != spec.snapshot_id
        || (v.size_gib != spec.size_gib && v.modification.is_none())
    {
        return Err(idempotent_mismatch());
    }
    Ok(Some(volume))
}

/// Validates everything, then writes the record (spec only).
pub fn handle(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<Arc<Volume>, ApiError> {
    let availability_zone = zone(params, region)?;
    let size = volumes::u32_param(params, "Size")?;
    let snapshot_id = match params.get("SnapshotId").filter(|s| !s.is_empty()) {
        None => None,
        Some(id) => Some(
            SnapshotId::parse(id)
                .map_err(|e| ApiError::client("InvalidSnapshotID.Malformed", e.to_string()))?
                .to_string(),
        ),
    };
    let size_gib = match (&snapshot_id, size) {
        (None, None) => return Err(ApiError::missing_parameter("size")),
        (None, Some(size)) => size,
        (Some(snap), size) => {
            let snapshot = state
                .store
                .snapshots()
                .get_shared(snap)?
                .filter(|s| {
                    s.metadata.namespace == region && s.metadata.deletion_timestamp.is_none()
                })
                .ok_or_else(|| {
                    ApiError::client(
                        "InvalidSnapshot.NotFound",
                        format!("The snapshot '{snap}' does not exist."),
                    )
                })?;
            let least = snapshot.spec.volume_size_gib;
            match size {
                // EC2's words, double space included.
                Some(size) if size < least => {
                    return Err(ApiError::invalid_value(format!(
                        "Volume of size {size}GB is smaller than  snapshot '{snap}', expect size >= {least}GB"
                    )))
                }
                Some(size) => size,
                None => least,
            }
        }
    };
    let performance = Performance {
        size_gib,
        volume_type: params.get("VolumeType").unwrap_or("gp2").to_string(),
        iops: volumes::u32_param(params, "Iops")?,
        throughput: volumes::u32_param(params, "Throughput")?,
        multi_attach_enabled: params.bool("MultiAttachEnabled")?.unwrap_or(false),
    }
    .checked()?;
    let encrypted = params.bool("Encrypted")?.unwrap_or(false);
    let kms_key_id = params.get("KmsKeyId").filter(|k| !k.is_empty());
    if kms_key_id.is_some() && !encrypted {
        return Err(ApiError::client(
            "InvalidParameterDependency",
            "The parameter KmsKeyId requires the parameter Encrypted to be set.",
        ));
    }
    let tags = tags::tag_specifications(params, &["volume"])?;
    let client_token = client_token(params)?;
    let spec = VolumeSpec {
        size_gib: performance.size_gib,
        volume_type: performance.volume_type,
        iops: performance.iops,
        throughput: performance.throughput,
        availability_zone,
        snapshot_id,
        encrypted,
        kms_key_id: kms_key_id.map(str::to_string),
        multi_attach_enabled: performance.multi_attach_enabled,
        auto_enable_io: false,
        tags,
        attachments: Vec::new(),
        root_of: None,
        modification: None,
        client_token: client_token.clone(),
    };
    let dry_run = kind::dry_run(params)?;
    if let Some(token) = &client_token {
        if let Some(volume) = earlier(state, region, token, &spec)? {
            kind::check_dry_run(dry_run)?;
            return Ok(volume);
        }
    }
    kind::check_dry_run(dry_run)?;
    let id = VolumeId::generate();
    let volume = new_volume(id.as_str(), region, spec.clone(), now());
    match state.store.create_volume(&volume) {
        // A concurrent call with the same token won: answer with its volume.
        Err(StoreError::NameTaken { kind, name, .. }) if kind == CLIENT_TOKEN_KIND => {
            return earlier(state, region, &name, &spec)?.ok_or_else(|| {
                ApiError::internal(format!("the volume of ClientToken {name} vanished"))
            });
        }
        Err(e) => return Err(e.into()),
        Ok(()) => {}
    }
    tracing::info!(volume_id = %id, size_gib = volume.spec.size_gib, volume_type = %volume.spec.volume_type, "volume requested");
    Ok(Arc::new(volume))
}

/// The dispatch entry: the volume as DescribeVolumes would show it, without attachments.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let volume = handle(state, region, params)?;
    let shown = World::read(state)?.show(volume);
    let mut w = XmlWriter::new();
    render_volume(&mut w, &shown, false);
    Ok(w.finish())
}
