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

/// How many copies of a volume's data (snapshot, restore) may fail in a row before the
/// snapshot or volume is in `error`, as EC2 shows a copy that cannot complete. An engine that
/// cannot be reached counts for nothing: that is an outage, retried with backoff.
pub const COPY_ATTEMPTS: u32 = 3;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the reconciler did. Written only by the reconciler.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatus {
    /// The spec generation this status describes.
    #[serde(default)]
    pub observed_generation: u64,
    /// The engine holding its copy (normalised endpoint; its volume's engine when made),
    /// recorded when `EC2D_ENGINES` names several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
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
    /// Copies of its volume's data that failed in a row: at [`COPY_ATTEMPTS`] the snapshot
    /// is in `error`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub copy_failures: u32,
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
    /// How far the copy has got, in percent, while it runs (DescribeSnapshots' `progress`
    /// of a `pending` snapshot; none reads as 0%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
}

/// EC2's `SnapshotState` as a client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotState {
    /// The copy has not completed.
    Pending,
    /// The copy is complete.
    Completed,
    /// The copy failed, or its data was lost.
    Error,
}

impl SnapshotState {
    /// EC2's name (`pending`, `completed`, `error`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Error => "error",
        }
    }
}

impl Snapshot {
    /// The state a client sees, a pure function of status: `error` once the reconciler
    /// recorded one (an error outranks an earlier completion: the data behind it is gone),
    /// `completed` once the copy is, `pending` until then.
    pub fn display_state(&self) -> SnapshotState {
        if self.status.error.is_some() {
            SnapshotState::Error
        } else if self.status.completed {
            SnapshotState::Completed
        } else {
            SnapshotState::Pending
        }
    }

    /// The progress a client sees, `0%` to `100%`: `100%` once the copy completed (an error
    /// found later does not undo the copy), else what the reconciler last recorded (capped at
    /// 99%, since only completion is 100%), `0%` before.
    pub fn display_progress(&self) -> String {
        let percent = if self.status.completed {
            100
        } else {
            self.status.progress.unwrap_or(0).min(99)
        };
        format!("{percent}%")
    }

    /// Whether DeleteSnapshot asked for it to go: no longer listed, while the reconciler
    /// removes its data and collects the record.
    pub fn is_being_deleted(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let spec = crate::model::fixtures::snapshot_spec("vol-0123456789abcdef0", 8);
        new_snapshot(
            "snap-0123456789abcdef0",
            "us-east-1",
            spec,
            time::OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn state_and_progress_follow_status() {
        let mut s = snapshot();
        assert_eq!(s.display_state(), SnapshotState::Pending);
        assert_eq!(s.display_progress(), "0%");
        s.status.progress = Some(40);
        assert_eq!(s.display_progress(), "40%");
        // Only completion reads 100%.
        s.status.progress = Some(100);
        assert_eq!(s.display_state().name(), "pending");
        assert_eq!(s.display_progress(), "99%");
        s.status.completed = true;
        assert_eq!(s.display_state().name(), "completed");
        assert_eq!(s.display_progress(), "100%");
        s.status.error = Some("data gone".into());
        assert_eq!(s.display_state().name(), "error");
        assert_eq!(s.display_progress(), "100%");
        s.status = SnapshotStatus {
            error: Some("copy failed".into()),
            ..SnapshotStatus::default()
        };
        assert_eq!(s.display_state(), SnapshotState::Error);
        assert_eq!(s.display_progress(), "0%");
        assert!(!s.is_being_deleted());
        s.metadata.deletion_timestamp = Some(time::OffsetDateTime::UNIX_EPOCH);
        assert!(s.is_being_deleted());
    }

    #[test]
    fn older_status_records_read() {
        let status: SnapshotStatus = serde_json::from_str(r#"{"completed":true}"#).unwrap();
        assert_eq!(status.progress, None);
    }
}
