//! The EBS snapshot kind: the region's snapshots (CreateSnapshot, CreateSnapshots, CopySnapshot and CreateImage records) that DeleteSnapshot has not marked, each shown as a pure function of its spec and status.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::snapshots;
use crate::api::state::ApiState;
use crate::api::tags::{Tagged, Tags};
use crate::api::xml::XmlWriter;
use crate::model::{format_timestamp, Object, Snapshot, SnapshotSpec, SnapshotStatus, ACCOUNT_ID};
use crate::store::{SpecStore, Specs};

/// EBS snapshots.
pub struct SnapshotKind;

impl Kind for SnapshotKind {
    type Item = Arc<Snapshot>;
    type Ref = String;
    type Context = ();

    const IDS: IdRules = IdRules {
        noun: "snapshot",
        prefix: "snap-",
        malformed: "InvalidSnapshotID.Malformed",
        not_found: "InvalidSnapshot.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some("snapshot");
    /// The API reference's list for DescribeSnapshots.
    const FILTERS: &'static [&'static str] = &[
        "description",
        "encrypted",
        "owner-alias",
        "owner-id",
        "progress",
        "snapshot-id",
        "start-time",
        "status",
        "storage-tier",
        "tag-key",
        "volume-id",
        "volume-size",
    ];
    /// EC2 takes 5 and up; a page over 1000 is cut to 1000 (`describe_snapshots`), so the
    /// only bound refused is the lower one.
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Bounds,
    });
    const MAX_PAGE: i64 = i64::MAX;
    const SET: &'static str = "snapshotSet";

    fn id(item: &Arc<Snapshot>) -> &str {
        &item.metadata.name
    }

    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        params
            .list("SnapshotId")
            .into_iter()
            .map(snapshots::parse_id)
            .collect()
    }

    fn find(
        state: &ApiState,
        region: &str,
        id: &String,
    ) -> Result<Option<Arc<Snapshot>>, ApiError> {
        snapshots::find(state, region, id)
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Arc<Snapshot>>, ApiError> {
        snapshots::region_snapshots(state, region)
    }

    /// EC2 names the first snapshot that does not exist.
    fn not_found(_region: &str, missing: &[String]) -> ApiError {
        snapshots::not_found(missing.first().map(String::as_str).unwrap_or_default())
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &Arc<Snapshot>) -> Option<&BTreeMap<String, String>> {
        Some(&item.spec.tags)
    }

    fn values(name: &str, s: &Arc<Snapshot>, _context: &()) -> Vec<String> {
        let one = |v: &str| vec![v.to_string()];
        match name {
            "description" => one(&s.spec.description),
            "encrypted" => one(if s.spec.encrypted { "true" } else { "false" }),
            // The account's own snapshots have no owner alias (only `amazon`'s do).
            "owner-alias" => Vec::new(),
            "owner-id" => one(ACCOUNT_ID),
            "progress" => vec![s.display_progress()],
            "snapshot-id" => one(&s.metadata.name),
            "start-time" => vec![format_timestamp(s.metadata.creation_timestamp)],
            "status" => one(s.display_state().name()),
            "storage-tier" => one(snapshots::STORAGE_TIER),
            "volume-id" => one(&s.spec.volume_id),
            "volume-size" => vec![s.spec.volume_size_gib.to_string()],
            _ => Vec::new(),
        }
    }

    ordered_by_id!(Arc<Snapshot>);

    fn render(w: &mut XmlWriter, s: &Arc<Snapshot>) {
        snapshots::render_fields(w, s, &s.display_progress());
    }
}

impl Tagged for SnapshotKind {
    type Spec = SnapshotSpec;
    type Status = SnapshotStatus;

    fn collection(store: &SpecStore) -> Specs<'_, SnapshotSpec, SnapshotStatus> {
        store.snapshots()
    }

    fn spec_tags(spec: &SnapshotSpec) -> &Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut SnapshotSpec) -> &mut Tags {
        &mut spec.tags
    }

    fn parse_tag_id(id: &str) -> Result<String, ApiError> {
        snapshots::parse_id(id)
    }

    /// A snapshot DeleteSnapshot marked is gone for tags too, though its record waits for
    /// the reconciler.
    fn gone_record(object: &Object<SnapshotSpec, SnapshotStatus>) -> bool {
        object.metadata.deletion_timestamp.is_some()
    }

    fn tag_not_found(_state: &ApiState, _region: &str, id: &str) -> ApiError {
        snapshots::not_found(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::new_snapshot;

    fn snapshot() -> Arc<Snapshot> {
        let spec = SnapshotSpec {
            description: "nightly <db>".into(),
            encrypted: true,
            kms_key_id: Some("arn:aws:kms:us-east-1:000000000000:key/k".into()),
            tags: [("Name".to_string(), "db".to_string())].into(),
            ..crate::model::fixtures::snapshot_spec("vol-0123456789abcdef0", 8)
        };
        Arc::new(new_snapshot(
            "snap-0123456789abcdef0",
            "us-east-1",
            spec,
            time::OffsetDateTime::UNIX_EPOCH,
        ))
    }

    #[test]
    fn values_follow_spec_and_status() {
        let s = snapshot();
        assert_eq!(SnapshotKind::values("status", &s, &()), vec!["pending"]);
        assert_eq!(SnapshotKind::values("progress", &s, &()), vec!["0%"]);
        assert_eq!(SnapshotKind::values("volume-size", &s, &()), vec!["8"]);
        assert_eq!(SnapshotKind::values("encrypted", &s, &()), vec!["true"]);
        assert_eq!(
            SnapshotKind::values("start-time", &s, &()),
            vec!["1970-01-01T00:00:00.000Z"]
        );
        assert!(SnapshotKind::values("owner-alias", &s, &()).is_empty());
        let mut done = (*s).clone();
        done.status.completed = true;
        let done = Arc::new(done);
        assert_eq!(
            SnapshotKind::values("status", &done, &()),
            vec!["completed"]
        );
        assert_eq!(SnapshotKind::values("progress", &done, &()), vec!["100%"]);
        for name in SnapshotKind::FILTERS {
            let _ = SnapshotKind::values(name, &s, &());
        }
    }

    #[test]
    fn renders_escaped_and_completion_only_when_completed() {
        let mut s = (*snapshot()).clone();
        s.status.completion_time = Some(time::OffsetDateTime::UNIX_EPOCH);
        s.status.size_bytes = Some(4096);
        let mut w = XmlWriter::new();
        SnapshotKind::render(&mut w, &Arc::new(s.clone()));
        let doc = w.finish();
        assert!(
            doc.contains("<description>nightly &lt;db&gt;</description>"),
            "{doc}"
        );
        assert!(doc.contains("<status>pending</status><startTime>"), "{doc}");
        assert!(doc.contains("<progress>0%</progress>"), "{doc}");
        assert!(!doc.contains("completionTime"), "{doc}");
        assert!(doc.contains("<storageTier>standard</storageTier>"), "{doc}");
        assert!(doc.contains("<fullSnapshotSizeInBytes>4096</fullSnapshotSizeInBytes>"));
        s.status.completed = true;
        let mut w = XmlWriter::new();
        SnapshotKind::render(&mut w, &Arc::new(s.clone()));
        let doc = w.finish();
        assert!(doc.contains("<completionTime>1970-01-01T00:00:00.000Z</completionTime>"));
        s.status.error = Some("copy failed".into());
        let mut w = XmlWriter::new();
        SnapshotKind::render(&mut w, &Arc::new(s));
        let doc = w.finish();
        assert!(doc.contains("<status>error</status><statusMessage>copy failed</statusMessage>"));
    }
}
