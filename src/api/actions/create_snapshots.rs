//! `CreateSnapshots`: one pending snapshot of each volume attached to an instance (its root volume unless excluded, and its data volumes but those excluded), written in one transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::render::render_tags;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{kind, snapshots, tags, volumes};
use crate::model::volume::attachment_in_force;
use crate::model::{format_timestamp, InstanceId, Snapshot, Volume, ACCOUNT_ID};

/// A validated CreateSnapshots request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `InstanceSpecification.InstanceId`.
    pub instance_id: InstanceId,
    /// `InstanceSpecification.ExcludeBootVolume`.
    pub exclude_boot_volume: bool,
    /// `InstanceSpecification.ExcludeDataVolumeId.N`.
    pub exclude_data_volumes: Vec<String>,
    /// `Description`, the same for every snapshot (empty when absent).
    pub description: String,
    /// `CopyTagsFromSource=volume`: each snapshot gets its volume's tags.
    pub copy_tags: bool,
    /// Tags of `TagSpecification`s with `ResourceType=snapshot`, on every snapshot (over the
    /// volume's tags of the same key).
    pub tags: BTreeMap<String, String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates everything that needs no store. botocore sends the excluded volumes
/// as `ExcludeDataVolumeId.N` (the member's location name); `ExcludeDataVolumeIds.N` is
/// accepted too.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let spec = params.sub("InstanceSpecification");
    let instance_id = spec
        .get("InstanceId")
        .ok_or_else(|| ApiError::missing_parameter("InstanceSpecification.InstanceId"))?;
    let instance_id = InstanceId::parse(instance_id)?;
    let mut exclude_data_volumes = Vec::new();
    for list in ["ExcludeDataVolumeId", "ExcludeDataVolumeIds"] {
        for id in spec.list(list) {
            exclude_data_volumes.push(snapshots::parse_volume_id(id)?);
        }
    }
    let copy_tags = match params.get("CopyTagsFromSource") {
        None => false,
        Some("volume") => true,
        Some(other) => {
            return Err(ApiError::invalid_value(format!(
                "Value ({other}) for parameter copyTagsFromSource is invalid. Valid values: volume"
            )))
        }
    };
    if params.get("OutpostArn").is_some() || params.get("Location") == Some("outpost") {
        return Err(ApiError::client(
            "UnsupportedOperation",
            "ec2d has no Outposts: snapshots are stored in the region",
        ));
    }
    Ok(Request {
        instance_id,
        exclude_boot_volume: spec.bool("ExcludeBootVolume")?.unwrap_or(false),
        exclude_data_volumes,
        description: snapshots::description(params)?.unwrap_or_default(),
        copy_tags,
        tags: tags::tag_specifications(params, &["snapshot"])?,
        dry_run: kind::dry_run(params)?,
    })
}

/// The volumes to snapshot, in id order: those of the region attached to the instance in
/// force, and its root volume, less the excluded ones.
fn chosen_volumes(
    state: &ApiState,
    region: &str,
    req: &Request,
) -> Result<Vec<Arc<Volume>>, ApiError> {
    let id = req.instance_id.as_str();
    let mut volumes: Vec<Arc<Volume>> = volumes::in_region(state, region)?
        .into_iter()
        .filter(|v| snapshots::belongs_to(v, id))
        .filter(|v| {
            let root = v.spec.root_of.as_deref() == Some(id);
            if root {
                !req.exclude_boot_volume
            } else {
                !req.exclude_data_volumes.contains(&v.metadata.name)
            }
        })
        .collect();
    volumes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(volumes)
}

/// Checks the instance (it exists in the region and termination was not asked for) and each
/// volume (neither `creating` nor being deleted), answers `DryRun`, then writes every snapshot
/// in one transaction: all of them or none.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Vec<Snapshot>, ApiError> {
    let id = req.instance_id.as_str();
    let instance = state
        .store
        .instances()
        .get_shared(id)?
        .filter(|i| i.metadata.namespace == region)
        .ok_or_else(|| ApiError::instances_not_found(&[id.to_string()]))?;
    if !attachment_in_force(Some(&instance)) {
        return Err(ApiError::client(
            "IncorrectInstanceState",
            format!(
                "The instance '{id}' is not in a state from which its volumes can be snapshotted."
            ),
        ));
    }
    let volumes = chosen_volumes(state, region, &req)?;
    for volume in &volumes {
        if let Some(shown) =
            snapshots::unsnapshottable_state(volume, snapshots::instance_lookup(state))
        {
            return Err(snapshots::volume_incorrect_state(
                &volume.metadata.name,
                shown,
            ));
        }
    }
    // The volume's tags and the request's together may be more than a snapshot can carry.
    if req.copy_tags {
        for volume in &volumes {
            let mut tags = volume.spec.tags.clone();
            tags.extend(req.tags.clone());
            if tags::user_tag_count(&tags) > tags::MAX_TAGS_PER_RESOURCE {
                return Err(tags::tag_limit_exceeded(&volume.metadata.name));
            }
        }
    }
    kind::check_dry_run(req.dry_run)?;
    let specs = volumes.iter().map(|volume| {
        let mut tags = if req.copy_tags {
            volume.spec.tags.clone()
        } else {
            BTreeMap::new()
        };
        tags.extend(req.tags.clone());
        snapshots::spec_of_volume(volume, req.description.clone(), tags)
    });
    let records = snapshots::create(state, region, specs)?;
    tracing::info!(instance_id = %id, snapshots = records.len(), "snapshots of an instance requested");
    Ok(records)
}

/// `snapshotSet`: each snapshot as EC2's `SnapshotInfo` (`state`, not `status`).
pub fn render(records: &[Snapshot]) -> String {
    let mut w = XmlWriter::new();
    w.set("snapshotSet", records, |w, s| {
        w.field("description", &s.spec.description);
        render_tags(w, &s.spec.tags);
        w.field("encrypted", s.spec.encrypted);
        w.field("volumeId", &s.spec.volume_id);
        w.field("state", s.display_state().name());
        w.field("volumeSize", s.spec.volume_size_gib);
        w.field("startTime", format_timestamp(s.metadata.creation_timestamp));
        w.field("progress", "");
        w.field("ownerId", ACCOUNT_ID);
        w.field("snapshotId", &s.metadata.name);
    });
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(s))
    }

    #[test]
    fn parse_happy_and_errors() {
        let req = q("InstanceSpecification.InstanceId=i-12345678&InstanceSpecification.ExcludeBootVolume=true\
                     &InstanceSpecification.ExcludeDataVolumeId.1=vol-12345678&CopyTagsFromSource=volume&Description=d")
        .unwrap();
        assert_eq!(req.instance_id.as_str(), "i-12345678");
        assert!(req.exclude_boot_volume);
        assert_eq!(req.exclude_data_volumes, vec!["vol-12345678"]);
        assert!(req.copy_tags);
        assert_eq!(req.description, "d");
        assert_eq!(
            q("Description=d").unwrap_err().message,
            "The request must contain the parameter InstanceSpecification.InstanceId"
        );
        assert_eq!(
            q("InstanceSpecification.InstanceId=web").unwrap_err().code,
            "InvalidInstanceID.Malformed"
        );
        assert_eq!(
            q("InstanceSpecification.InstanceId=i-12345678&InstanceSpecification.ExcludeDataVolumeIds.1=v")
                .unwrap_err()
                .code,
            "InvalidVolumeID.Malformed"
        );
        assert_eq!(
            q("InstanceSpecification.InstanceId=i-12345678&CopyTagsFromSource=instance")
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
    }
}
