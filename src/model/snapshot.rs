//! The Snapshot kind: a point-in-time copy of a volume's data (CreateSnapshot, CreateSnapshots, CopySnapshot, CreateImage), held by a Docker volume of ec2d's own.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{Object, ObjectMeta, API_VERSION};
use super::Timestamp;

/// A stored snapshot.
pub type Snapshot = Object<SnapshotSpec, SnapshotStatus>;

/// The kind name of stored snapshots.
pub const SNAPSHOT_KIND: &str = "Snapshot";

/// What the snapshot actions recorded. DeleteSnapshot sets `metadata.deletionTimestamp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSpec {
    /// The volume whose data it copies (kept after that volume is deleted, as EC2 shows it).
    pub volume_id: String,
    /// That volume's size when the snapshot started, GiB.
    pub volume_size_gib: u32,
    /// `Description`.
    #[serde(default)]
    pub description: String,
    /// `Encrypted`, the source volume's (or CopySnapshot's).
    #[serde(default)]
    pub encrypted: bool,
    /// `KmsKeyId`, when encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// CopySnapshot's source: the data comes from that snapshot rather than a volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SnapshotSource>,
    /// The AMI whose block device mapping made it (CreateImage), shown in its description
    /// and guarding DeleteSnapshot (`InvalidSnapshot.InUse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// `createVolumePermission`: account ids, and `all` for the public group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_volume_permissions: Vec<String>,
}

/// Where a copied snapshot came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSource {
    /// `SourceRegion`.
    pub region: String,
    /// `SourceSnapshotId`.
    pub snapshot_id: String,
}

/// What the reconciler did. Written only by the reconciler.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatus {
    /// The spec generation this status describes.
    #[serde(default)]
    pub observed_generation: u64,
    /// The Docker volume holding the copy, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing: Option<String>,
    /// The copy is complete (`completed`, progress 100%).
    #[serde(default)]
    pub completed: bool,
    /// Why the snapshot is in `error` (its source gone before the copy, a copy that failed,
    /// its Docker volume removed behind ec2d's back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the copy completed.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub completion_time: Option<Timestamp>,
    /// Bytes copied, EC2's `FullSnapshotSizeInBytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

/// A new snapshot record at generation 1.
pub fn new_snapshot(id: &str, region: &str, spec: SnapshotSpec, now: Timestamp) -> Snapshot {
    Object {
        api_version: API_VERSION.to_string(),
        kind: SNAPSHOT_KIND.to_string(),
        metadata: ObjectMeta::new(id, region, now),
        spec,
        status: SnapshotStatus::default(),
    }
}
