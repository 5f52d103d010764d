//! The Volume kind: an EBS volume as desired state (size, type, zone, the attachments the user asked for) and what the reconciler observed of the Docker volume backing it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::instance::Instance;
use super::meta::{Object, ObjectMeta, API_VERSION};
use super::state::DesiredState;
use super::Timestamp;

/// A stored EBS volume.
pub type Volume = Object<VolumeSpec, VolumeStatus>;

/// The kind name of stored volumes.
pub const VOLUME_KIND: &str = "Volume";

/// The volume types EC2 has, as CreateVolume spells them.
pub const VOLUME_TYPES: [&str; 7] = ["standard", "io1", "io2", "gp2", "sc1", "st1", "gp3"];

/// What CreateVolume (or RunInstances' block device mappings) recorded, changed since by
/// AttachVolume, DetachVolume, ModifyVolume, ModifyVolumeAttribute, the tag actions and
/// DeleteVolume (which sets `metadata.deletionTimestamp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    /// `Size`, GiB.
    pub size_gib: u32,
    /// `VolumeType`, one of [`VOLUME_TYPES`].
    pub volume_type: String,
    /// Provisioned IOPS (gp3, io1, io2; gp2's are its baseline, derived from the size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<u32>,
    /// Throughput in MiB/s (gp3 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<u32>,
    /// The availability zone the volume lives in; it attaches only to instances there.
    pub availability_zone: String,
    /// The snapshot it was created from, whose data it starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// `Encrypted` (recorded and shown; the data is not encrypted).
    #[serde(default)]
    pub encrypted: bool,
    /// `KmsKeyId`, when encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// `MultiAttachEnabled` (io1/io2 only).
    #[serde(default)]
    pub multi_attach_enabled: bool,
    /// The `autoEnableIO` attribute.
    #[serde(default)]
    pub auto_enable_io: bool,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The attachments the user asked for. An attachment whose instance is terminated (or
    /// collected) is over, whatever is recorded here; with `deleteOnTermination` the volume is
    /// then being deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<VolumeAttachmentSpec>,
    /// The instance whose root volume this is: its data is that instance's container's own
    /// file system, and no Docker volume backs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_of: Option<String>,
    /// The last ModifyVolume: what it changed from and to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modification: Option<VolumeModificationSpec>,
    /// CreateVolume's `ClientToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// One attachment of a volume to an instance, as AttachVolume (or a launch) asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeAttachmentSpec {
    /// The instance.
    pub instance_id: String,
    /// `Device`, as the user named it (`/dev/sdf`, `xvdg`).
    pub device: String,
    /// Delete the volume when the instance terminates.
    #[serde(default)]
    pub delete_on_termination: bool,
    /// When the attachment was asked for.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub attach_time: Timestamp,
}

/// A ModifyVolume request: the volume's settings before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeModificationSpec {
    /// When ModifyVolume was called.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub start_time: Timestamp,
    /// Size before, GiB.
    pub original_size_gib: u32,
    /// Type before.
    pub original_volume_type: String,
    /// IOPS before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_iops: Option<u32>,
    /// Throughput before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_throughput: Option<u32>,
    /// Multi-attach before.
    #[serde(default)]
    pub original_multi_attach_enabled: bool,
}

/// What the reconciler observed and did. Written only by the reconciler.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStatus {
    /// The spec generation this status describes.
    #[serde(default)]
    pub observed_generation: u64,
    /// The engine holding its Docker volume (normalised endpoint), recorded when
    /// `EC2D_ENGINES` names several, so it stays there whatever the configuration says later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The Docker volume holding the data, once made (none for a root volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing: Option<String>,
    /// That Docker volume's `Mountpoint` on the engine's host, as last inspected: what the
    /// instance reconciler bind-mounts into a running container's mount propagation point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mountpoint: Option<String>,
    /// The data is in place: the Docker volume exists and, for a volume made from a snapshot,
    /// the snapshot's data has been copied in (`creating` until then).
    #[serde(default)]
    pub ready: bool,
    /// Why the volume is in `error` (its Docker volume removed behind ec2d's back, a copy
    /// that failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Copies of its snapshot's data that failed in a row: at
    /// [`COPY_ATTEMPTS`](crate::model::snapshot::COPY_ATTEMPTS) the volume is in `error`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub copy_failures: u32,
    /// When the reconciler finished applying the last ModifyVolume (`completed` from then).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub modification_end_time: Option<Timestamp>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A volume attached to an instance's container as the reconciler observed it: part of the
/// instance's status, since the mount belongs to the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MountedVolume {
    /// The volume.
    pub volume_id: String,
    /// The device name it is attached as.
    pub device: String,
    /// Where its file system appears inside the container (`/mnt/sdf`).
    pub mount_point: String,
}

/// A new volume record at generation 1.
pub fn new_volume(id: &str, region: &str, spec: VolumeSpec, now: Timestamp) -> Volume {
    Object {
        api_version: API_VERSION.to_string(),
        kind: VOLUME_KIND.to_string(),
        metadata: ObjectMeta::new(id, region, now),
        spec,
        status: VolumeStatus::default(),
    }
}

/// Whether an attachment to `instance` is in force: the instance exists and termination has
/// not been asked for. From TerminateInstances on, its attachments are over (the reconciler
/// unmounts them and the volumes marked `deleteOnTermination` are deleted), a pure function
/// of the instance's record, so no crash can leave one half-ended.
pub fn attachment_in_force(instance: Option<&Instance>) -> bool {
    instance.is_some_and(|i| {
        i.spec.desired != DesiredState::Terminated && i.metadata.deletion_timestamp.is_none()
    })
}

/// The attachments of `volume` in force, given a way to look instances up.
pub fn live_attachments<I>(
    volume: &Volume,
    instance: impl Fn(&str) -> Option<I>,
) -> impl Iterator<Item = &VolumeAttachmentSpec>
where
    I: std::ops::Deref<Target = Instance>,
{
    volume
        .spec
        .attachments
        .iter()
        .filter(move |a| attachment_in_force(instance(&a.instance_id).as_deref()))
}

/// Whether the volume is to be deleted: DeleteVolume asked for it, or it was attached with
/// `deleteOnTermination` to an instance whose attachment is over.
pub fn is_being_deleted<I>(volume: &Volume, instance: impl Fn(&str) -> Option<I>) -> bool
where
    I: std::ops::Deref<Target = Instance>,
{
    volume.metadata.deletion_timestamp.is_some()
        || volume.spec.attachments.iter().any(|a| {
            a.delete_on_termination && !attachment_in_force(instance(&a.instance_id).as_deref())
        })
}

/// The tag that overrides where an attached volume's file system appears in the container.
pub const MOUNT_POINT_TAG: &str = "ec2d:mount-point";

/// Where a volume attached as `device` appears in the container: `/dev/sdf` -> `/mnt/sdf`,
/// `xvdg` -> `/mnt/xvdg`, unless the volume's `ec2d:mount-point` tag names an absolute path
/// other than `/`. The tag is ec2d's own, so it is normalised rather than refused (`//`, `.`
/// and a trailing `/` dropped: `/mnt/a//./b/` is `/mnt/a/b`); one with a `..` component is
/// ignored, since what it means depends on links inside the container.
pub fn mount_point(device: &str, tags: &BTreeMap<String, String>) -> String {
    if let Some(path) = tags.get(MOUNT_POINT_TAG).and_then(|p| normalised(p)) {
        return path;
    }
    let name = device.strip_prefix("/dev/").unwrap_or(device);
    match normalised(&format!("/mnt/{name}")) {
        Some(path) if path != "/mnt" => path,
        _ => "/mnt/volume".to_string(),
    }
}

/// An absolute path with its empty and `.` components dropped; `None` when it is relative,
/// has a `..` component, or is `/` itself.
fn normalised(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    fn volume_attached(instance_id: &str, delete_on_termination: bool) -> Volume {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let mut spec = fixtures::volume_spec("us-east-1a", "gp3", 8);
        fixtures::attach(
            &mut spec,
            instance_id,
            "/dev/sdf",
            delete_on_termination,
            now,
        );
        fixtures::volume_of("vol-0123456789abcdef0", spec, now)
    }

    #[test]
    fn attachments_end_with_the_instance_and_take_delete_on_termination_volumes() {
        let running = fixtures::instance();
        let id = running.metadata.name.clone();
        let mut terminating = running.clone();
        terminating.spec.desired = DesiredState::Terminated;
        let lookup = |instance: &Instance| {
            let instance = std::sync::Arc::new(instance.clone());
            move |_: &str| Some(instance.clone())
        };
        let gone = |_: &str| None::<std::sync::Arc<Instance>>;

        let kept = volume_attached(&id, false);
        assert_eq!(live_attachments(&kept, lookup(&running)).count(), 1);
        assert_eq!(live_attachments(&kept, lookup(&terminating)).count(), 0);
        assert!(!is_being_deleted(&kept, lookup(&terminating)));
        assert!(!is_being_deleted(&kept, gone));

        let doomed = volume_attached(&id, true);
        assert!(!is_being_deleted(&doomed, lookup(&running)));
        assert!(is_being_deleted(&doomed, lookup(&terminating)));
        assert!(is_being_deleted(&doomed, gone));
        let mut deleted = kept.clone();
        deleted.metadata.deletion_timestamp = Some(time::OffsetDateTime::UNIX_EPOCH);
        assert!(is_being_deleted(&deleted, lookup(&running)));
    }

    #[test]
    fn devices_map_to_mnt_unless_the_tag_says_otherwise() {
        let none = BTreeMap::new();
        assert_eq!(mount_point("/dev/sdf", &none), "/mnt/sdf");
        assert_eq!(mount_point("xvdg", &none), "/mnt/xvdg");
        let tagged = BTreeMap::from([(MOUNT_POINT_TAG.to_string(), "/data/".to_string())]);
        assert_eq!(mount_point("/dev/sdf", &tagged), "/data");
        for (tag, expected) in [
            ("/mnt/a//b", "/mnt/a/b"),
            ("/mnt/a/./b", "/mnt/a/b"),
            ("/mnt/a/b/", "/mnt/a/b"),
            ("//mnt///data//", "/mnt/data"),
            ("/mnt/./", "/mnt"),
        ] {
            let tags = BTreeMap::from([(MOUNT_POINT_TAG.to_string(), tag.to_string())]);
            assert_eq!(mount_point("/dev/sdf", &tags), expected, "{tag}");
        }
        for bad in [
            "relative",
            "/",
            "//",
            "/./",
            "/a/../etc",
            "/mnt/..",
            "../mnt/x",
            "",
        ] {
            let tags = BTreeMap::from([(MOUNT_POINT_TAG.to_string(), bad.to_string())]);
            assert_eq!(mount_point("/dev/sdh", &tags), "/mnt/sdh", "{bad}");
        }
        // Odd device names never give an empty or escaping path either.
        assert_eq!(mount_point("/dev//sdf/", &none), "/mnt/sdf");
        assert_eq!(mount_point("../etc", &none), "/mnt/volume");
        assert_eq!(mount_point("/dev/", &none), "/mnt/volume");
    }
}
