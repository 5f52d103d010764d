//! The EBS volume kinds: volumes (DescribeVolumes, the tag actions), their status checks (DescribeVolumeStatus) and their last modification (DescribeVolumesModifications), three views of one record shown through `api::volumes::show`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::render::render_tags;
use crate::api::state::ApiState;
use crate::api::tags::{Tagged, Tags};
use crate::api::volumes::{self, Performance, Shown, VolumeState, World};
use crate::api::xml::XmlWriter;
use crate::model::{format_timestamp, Volume, VolumeSpec, VolumeStatus};
use crate::store::{SpecStore, Specs};

/// EBS volumes.
pub struct VolumeKind;

/// The references a volume Describe names (`VolumeId.N`), each checked.
fn volume_refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
    params
        .list("VolumeId")
        .into_iter()
        .map(volumes::parse_id)
        .collect()
}

/// The region's volumes, each as shown.
fn region_volumes(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
    let world = World::read(state)?;
    Ok(volumes::in_region(state, region)?
        .into_iter()
        .map(|v| world.show(v))
        .collect())
}

/// One volume of the region, as shown.
fn find_volume(state: &ApiState, region: &str, id: &str) -> Result<Option<Shown>, ApiError> {
    let Some(volume) = state
        .store
        .volumes()
        .get_shared(id)?
        .filter(|v| v.metadata.namespace == region)
    else {
        return Ok(None);
    };
    Ok(Some(World::read(state)?.show(volume)))
}

fn one(v: impl ToString) -> Vec<String> {
    vec![v.to_string()]
}

/// The volume's IOPS as shown (gp2's baseline, none for HDD types).
pub fn shown_iops(spec: &VolumeSpec) -> Option<u32> {
    Performance::shown_iops(&spec.volume_type, spec.size_gib, spec.iops)
}

/// The fields of a volume item, shared by DescribeVolumes and CreateVolume's answer.
pub fn render_volume(w: &mut XmlWriter, s: &Shown, with_attachments: bool) {
    let v = &s.volume;
    let spec = &v.spec;
    w.field("volumeId", &v.metadata.name);
    w.field("size", spec.size_gib);
    w.field("snapshotId", spec.snapshot_id.as_deref().unwrap_or(""));
    w.field("availabilityZone", &spec.availability_zone);
    w.field("status", s.state.name());
    w.field(
        "createTime",
        format_timestamp(v.metadata.creation_timestamp),
    );
    if with_attachments {
        w.set("attachmentSet", &s.attachments, |w, a| {
            w.field("volumeId", &v.metadata.name);
            w.field("instanceId", &a.instance_id);
            w.field("device", &a.device);
            w.field("status", a.state.name());
            w.opt_field("attachTime", a.attach_time.map(format_timestamp));
            w.field("deleteOnTermination", a.delete_on_termination);
        });
    }
    render_tags(w, &spec.tags);
    w.field("volumeType", &spec.volume_type);
    w.opt_field("iops", shown_iops(spec));
    w.field("encrypted", spec.encrypted);
    w.opt_field("kmsKeyId", spec.kms_key_id.as_deref());
    w.field("multiAttachEnabled", spec.multi_attach_enabled);
    w.opt_field("throughput", spec.throughput);
    w.field("fastRestored", false);
}

impl Kind for VolumeKind {
    type Item = Shown;
    type Ref = String;
    type Context = ();

    const IDS: IdRules = IdRules {
        noun: "volume",
        prefix: "vol-",
        malformed: "InvalidVolumeID.Malformed",
        not_found: "InvalidVolume.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some("volume");
    /// The API reference's list.
    const FILTERS: &'static [&'static str] = &[
        "attachment.attach-time",
        "attachment.delete-on-termination",
        "attachment.device",
        "attachment.instance-id",
        "attachment.status",
        "availability-zone",
        "create-time",
        "encrypted",
        "fast-restored",
        "multi-attach-enabled",
        "size",
        "snapshot-id",
        "status",
        "tag-key",
        "tag-value",
        "volume-id",
        "volume-type",
    ];
    /// DescribeVolumes pages 5 to 500 (a larger page is cut to 500) and refuses a page size
    /// with ids.
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: Some(
            "The parameter volumeIdSet cannot be used with the parameter maxResults",
        ),
        wording: SizeWording::Bounds,
    });
    const MAX_PAGE: i64 = 500;
    const CUT_PAGE: bool = true;
    const SET: &'static str = "volumeSet";

    fn id(item: &Shown) -> &str {
        &item.volume.metadata.name
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        volume_refs(params)
    }

    fn find(state: &ApiState, region: &str, reference: &String) -> Result<Option<Shown>, ApiError> {
        find_volume(state, region, reference)
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
        region_volumes(state, region)
    }

    fn not_found(_region: &str, missing: &[String]) -> ApiError {
        volumes::not_found(missing)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &Shown) -> Option<&BTreeMap<String, String>> {
        Some(&item.volume.spec.tags)
    }

    fn values(name: &str, s: &Shown, _context: &()) -> Vec<String> {
        let spec = &s.volume.spec;
        let of_attachments = |value: fn(&volumes::ShownAttachment) -> Option<String>| {
            s.attachments.iter().filter_map(value).collect::<Vec<_>>()
        };
        match name {
            "attachment.attach-time" => of_attachments(|a| a.attach_time.map(format_timestamp)),
            "attachment.delete-on-termination" => {
                of_attachments(|a| Some(a.delete_on_termination.to_string()))
            }
            "attachment.device" => of_attachments(|a| Some(a.device.clone())),
            "attachment.instance-id" => of_attachments(|a| Some(a.instance_id.clone())),
            "attachment.status" => of_attachments(|a| Some(a.state.name().to_string())),
            "availability-zone" => one(&spec.availability_zone),
            "create-time" => one(format_timestamp(s.volume.metadata.creation_timestamp)),
            "encrypted" => one(spec.encrypted),
            "fast-restored" => one(false),
            "multi-attach-enabled" => one(spec.multi_attach_enabled),
            "size" => one(spec.size_gib),
            "snapshot-id" => spec.snapshot_id.iter().cloned().collect(),
            "status" => one(s.state.name()),
            "volume-id" => one(&s.volume.metadata.name),
            "volume-type" => one(&spec.volume_type),
            _ => Vec::new(),
        }
    }

    ordered_by_id!(Shown);

    fn render(w: &mut XmlWriter, s: &Shown) {
        render_volume(w, s, true);
    }
}

impl Tagged for VolumeKind {
    type Spec = VolumeSpec;
    type Status = VolumeStatus;

    fn collection(store: &SpecStore) -> Specs<'_, VolumeSpec, VolumeStatus> {
        store.volumes()
    }

    fn spec_tags(spec: &VolumeSpec) -> &Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut VolumeSpec) -> &mut Tags {
        &mut spec.tags
    }

    fn parse_tag_id(id: &str) -> Result<String, ApiError> {
        volumes::parse_id(id)
    }
}

/// A volume's status check (DescribeVolumeStatus): `ok` once ready, `insufficient-data`
/// while creating, `impaired` in error.
pub struct VolumeStatusKind;

/// The volume status check's status and its `io-enabled` detail.
pub fn status_check(state: VolumeState) -> (&'static str, &'static str) {
    match state {
        VolumeState::Creating => ("insufficient-data", "insufficient-data"),
        VolumeState::Error => ("impaired", "failed"),
        _ => ("ok", "passed"),
    }
}

impl Kind for VolumeStatusKind {
    type Item = Shown;
    type Ref = String;
    type Context = ();

    const IDS: IdRules = VolumeKind::IDS;
    const TAG_TYPE: Option<&'static str> = None;
    /// The API reference's list.
    const FILTERS: &'static [&'static str] = &[
        "action.code",
        "action.description",
        "action.event-id",
        "availability-zone",
        "event.description",
        "event.event-id",
        "event.event-type",
        "event.not-after",
        "event.not-before",
        "volume-status.details-name",
        "volume-status.details-status",
        "volume-status.status",
    ];
    /// DescribeVolumeStatus pages 5 to 1000 (a larger page is cut to 1000) and refuses a page
    /// size with ids.
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: Some(
            "The parameter volumeIdSet cannot be used with the parameter maxResults",
        ),
        wording: SizeWording::Bounds,
    });
    const CUT_PAGE: bool = true;
    const SET: &'static str = "volumeStatusSet";

    fn id(item: &Shown) -> &str {
        &item.volume.metadata.name
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        volume_refs(params)
    }

    fn find(state: &ApiState, region: &str, reference: &String) -> Result<Option<Shown>, ApiError> {
        find_volume(state, region, reference)
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
        region_volumes(state, region)
    }

    fn not_found(_region: &str, missing: &[String]) -> ApiError {
        volumes::not_found(missing)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(_item: &Shown) -> Option<&BTreeMap<String, String>> {
        None
    }

    fn values(name: &str, s: &Shown, _context: &()) -> Vec<String> {
        let (status, io_enabled) = status_check(s.state);
        match name {
            "availability-zone" => one(&s.volume.spec.availability_zone),
            "volume-status.status" => one(status),
            "volume-status.details-name" => vec!["io-enabled".into(), "io-performance".into()],
            "volume-status.details-status" => vec![io_enabled.into(), "not-applicable".into()],
            // No actions or events are ever scheduled.
            _ => Vec::new(),
        }
    }

    ordered_by_id!(Shown);

    fn render(w: &mut XmlWriter, s: &Shown) {
        let (status, io_enabled) = status_check(s.state);
        w.field("volumeId", &s.volume.metadata.name);
        w.field("availabilityZone", &s.volume.spec.availability_zone);
        w.el("volumeStatus", |w| {
            w.field("status", status);
            w.el("details", |w| {
                w.el("item", |w| {
                    w.field("name", "io-enabled");
                    w.field("status", io_enabled);
                });
                w.el("item", |w| {
                    w.field("name", "io-performance");
                    w.field("status", "not-applicable");
                });
            });
        });
        w.empty("actionsSet");
        w.empty("eventsSet");
    }
}

/// A volume's last ModifyVolume (DescribeVolumesModifications).
pub struct VolumeModificationKind;

/// `modifying` until the reconciler records the end of this modification, then `completed`.
pub fn modification_state(volume: &Volume) -> Option<(&'static str, u32)> {
    let m = volume.spec.modification.as_ref()?;
    let done = volume
        .status
        .modification_end_time
        .is_some_and(|end| end >= m.start_time);
    Some(if done {
        ("completed", 100)
    } else {
        ("modifying", 0)
    })
}

/// The `volumeModification` fields of `volume` (ModifyVolume's answer, and each item of
/// DescribeVolumesModifications).
pub fn render_modification(w: &mut XmlWriter, volume: &Volume) {
    let (Some(m), Some((state, progress))) =
        (&volume.spec.modification, modification_state(volume))
    else {
        return;
    };
    let spec = &volume.spec;
    w.field("volumeId", &volume.metadata.name);
    w.field("modificationState", state);
    w.field("targetSize", spec.size_gib);
    w.opt_field("targetIops", shown_iops(spec));
    w.field("targetVolumeType", &spec.volume_type);
    w.opt_field("targetThroughput", spec.throughput);
    w.field("targetMultiAttachEnabled", spec.multi_attach_enabled);
    w.field("originalSize", m.original_size_gib);
    w.opt_field(
        "originalIops",
        Performance::shown_iops(
            &m.original_volume_type,
            m.original_size_gib,
            m.original_iops,
        ),
    );
    w.field("originalVolumeType", &m.original_volume_type);
    w.opt_field("originalThroughput", m.original_throughput);
    w.field(
        "originalMultiAttachEnabled",
        m.original_multi_attach_enabled,
    );
    w.field("progress", progress);
    w.field("startTime", format_timestamp(m.start_time));
    if state == "completed" {
        w.opt_field(
            "endTime",
            volume.status.modification_end_time.map(format_timestamp),
        );
    }
}

impl Kind for VolumeModificationKind {
    type Item = Arc<Volume>;
    type Ref = String;
    type Context = ();

    const IDS: IdRules = VolumeKind::IDS;
    const TAG_TYPE: Option<&'static str> = None;
    /// The API reference's list.
    const FILTERS: &'static [&'static str] = &[
        "modification-state",
        "original-iops",
        "original-multi-attach-enabled",
        "original-size",
        "original-volume-type",
        "start-time",
        "target-iops",
        "target-multi-attach-enabled",
        "target-size",
        "target-throughput",
        "target-volume-type",
        "volume-id",
    ];
    /// DescribeVolumesModifications pages up to 500 (a larger page is cut to 500).
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Bounds,
    });
    const MAX_PAGE: i64 = 500;
    const CUT_PAGE: bool = true;
    const SET: &'static str = "volumeModificationSet";

    fn id(item: &Arc<Volume>) -> &str {
        &item.metadata.name
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        volume_refs(params)
    }

    fn find(
        state: &ApiState,
        region: &str,
        reference: &String,
    ) -> Result<Option<Arc<Volume>>, ApiError> {
        Ok(state
            .store
            .volumes()
            .get_shared(reference)?
            .filter(|v| v.metadata.namespace == region && v.spec.modification.is_some()))
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Arc<Volume>>, ApiError> {
        Ok(volumes::in_region(state, region)?
            .into_iter()
            .filter(|v| v.spec.modification.is_some())
            .collect())
    }

    /// A volume never modified (or unknown): EC2's `InvalidVolumeModification.NotFound`.
    fn not_found(_region: &str, missing: &[String]) -> ApiError {
        ApiError::client(
            "InvalidVolumeModification.NotFound",
            format!("Modification for volume '{}' does not exist.", missing[0]),
        )
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(_item: &Arc<Volume>) -> Option<&BTreeMap<String, String>> {
        None
    }

    fn values(name: &str, v: &Arc<Volume>, _context: &()) -> Vec<String> {
        let (Some(m), Some((state, _))) = (&v.spec.modification, modification_state(v)) else {
            return Vec::new();
        };
        let spec = &v.spec;
        let opt = |n: Option<u32>| n.into_iter().map(|n| n.to_string()).collect::<Vec<_>>();
        match name {
            "modification-state" => one(state),
            "original-iops" => opt(Performance::shown_iops(
                &m.original_volume_type,
                m.original_size_gib,
                m.original_iops,
            )),
            "original-multi-attach-enabled" => one(m.original_multi_attach_enabled),
            "original-size" => one(m.original_size_gib),
            "original-volume-type" => one(&m.original_volume_type),
            "start-time" => one(format_timestamp(m.start_time)),
            "target-iops" => opt(shown_iops(spec)),
            "target-multi-attach-enabled" => one(spec.multi_attach_enabled),
            "target-size" => one(spec.size_gib),
            "target-throughput" => opt(spec.throughput),
            "target-volume-type" => one(&spec.volume_type),
            "volume-id" => one(&v.metadata.name),
            _ => Vec::new(),
        }
    }

    ordered_by_id!(Arc<Volume>);

    fn render(w: &mut XmlWriter, v: &Arc<Volume>) {
        render_modification(w, v);
    }
}
