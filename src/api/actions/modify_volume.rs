//! `ModifyVolume`: records new size, type, IOPS, throughput or multi-attach in the spec with the originals and the start time (`spec.modification`); the reconciler applies it and records its end. One modification at a time is not enforced: a new one replaces the record of the last.

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::kinds::volume::render_modification;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::volumes::{self, Performance, VolumeState};
use crate::api::xml::XmlWriter;
use crate::model::{now, Timestamp, Volume, VolumeModificationSpec};

/// What the request asks to change.
struct Request {
    size: Option<u32>,
    volume_type: Option<String>,
    iops: Option<u32>,
    throughput: Option<u32>,
    multi_attach_enabled: Option<bool>,
}

/// The volume's settings after the request, checked as CreateVolume checks them. A type
/// change drops the IOPS and throughput the new type does not take (gp3's defaults come back).
fn target(volume: &Volume, req: &Request) -> Result<Performance, ApiError> {
    let spec = &volume.spec;
    if let Some(size) = req.size {
        if size < spec.size_gib {
            return Err(ApiError::invalid_value(
                "New size cannot be smaller than existing size",
            ));
        }
    }
    let volume_type = req
        .volume_type
        .clone()
        .unwrap_or_else(|| spec.volume_type.clone());
    let same_type = volume_type == spec.volume_type;
    let kept = |asked: Option<u32>, current: Option<u32>| asked.or(current.filter(|_| same_type));
    Performance {
        size_gib: req.size.unwrap_or(spec.size_gib),
        iops: kept(req.iops, spec.iops),
        throughput: kept(req.throughput, spec.throughput),
        multi_attach_enabled: req
            .multi_attach_enabled
            .unwrap_or(spec.multi_attach_enabled),
        volume_type,
    }
    .checked()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = volumes::volume_id_param(params)?;
    let req = Request {
        size: volumes::u32_param(params, "Size")?,
        volume_type: params.get("VolumeType").map(str::to_string),
        iops: volumes::u32_param(params, "Iops")?,
        throughput: volumes::u32_param(params, "Throughput")?,
        multi_attach_enabled: params.bool("MultiAttachEnabled")?,
    };
    let (shown, _) = volumes::load(state, region, &id)?;
    if !matches!(shown.state, VolumeState::Available | VolumeState::InUse) {
        return Err(ApiError::client(
            "IncorrectState",
            format!("Volume '{id}' is in the '{}' state.", shown.state.name()),
        ));
    }
    target(&shown.volume, &req)?;
    kind::check_dry_run(kind::dry_run(params)?)?;
    // Timestamps are kept to the millisecond, and a modification reads `completed` once the
    // reconciler's end time reaches its start: a new one must start strictly after the last
    // recorded end (and the last start), or one made in the same millisecond as that end
    // would read completed before anything observed it.
    let last_end = shown.volume.status.modification_end_time;
    let after = volumes::update(state, &id, true, |v| {
        let t = target(v, &req)?;
        let last_start = v.spec.modification.as_ref().map(|m| m.start_time);
        let start_time = [last_end, last_start]
            .into_iter()
            .flatten()
            .map(|t| t + time::Duration::milliseconds(1))
            .fold(now(), Timestamp::max);
        v.spec.modification = Some(VolumeModificationSpec {
            start_time,
            original_size_gib: v.spec.size_gib,
            original_volume_type: v.spec.volume_type.clone(),
            original_iops: v.spec.iops,
            original_throughput: v.spec.throughput,
            original_multi_attach_enabled: v.spec.multi_attach_enabled,
        });
        v.spec.size_gib = t.size_gib;
        v.spec.volume_type = t.volume_type;
        v.spec.iops = t.iops;
        v.spec.throughput = t.throughput;
        v.spec.multi_attach_enabled = t.multi_attach_enabled;
        Ok(true)
    })?;
    tracing::info!(volume_id = %id, size_gib = after.spec.size_gib, volume_type = %after.spec.volume_type, "volume modification requested");
    let mut w = XmlWriter::new();
    w.el("volumeModification", |w| render_modification(w, &after));
    Ok(w.finish())
}
