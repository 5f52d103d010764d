//! What the snapshot actions share: snapshot and volume ids with EC2's errors for them, the snapshots a region shows, the volume a snapshot is taken of, a new snapshot's record, and a snapshot's XML.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::ApiError;
use super::kind::Kind;
use super::kinds::SnapshotKind;
use super::query::QueryParams;
use super::render::render_tags;
use super::state::ApiState;
use super::xml::XmlWriter;
use crate::model::snapshot::new_snapshot;
use crate::model::volume::is_being_deleted;
use crate::model::{
    format_timestamp, Instance, InstanceState, Snapshot, SnapshotId, SnapshotSpec, Timestamp,
    Volume, VolumeId, ACCOUNT_ID,
};

/// The longest `Description` EC2 takes for a snapshot (the API reference: "up to 255
/// characters").
pub const MAX_DESCRIPTION: usize = 255;

/// EC2's one storage tier for a snapshot that was never archived.
pub const STORAGE_TIER: &str = "standard";

/// Checks a snapshot id's shape (`snap-` and 8 or 17 hex digits): `InvalidSnapshotID.Malformed`.
pub fn parse_id(id: &str) -> Result<String, ApiError> {
    SnapshotId::parse(id)
        .map(|id| id.to_string())
        .map_err(|_| SnapshotKind::IDS.malformed(id))
}

/// `InvalidSnapshot.NotFound`, worded as EC2 words it (`The snapshot 'snap-…' does not exist.`).
pub fn not_found(id: &str) -> ApiError {
    ApiError::client(
        SnapshotKind::IDS.not_found,
        format!("The snapshot '{id}' does not exist."),
    )
}

/// Checks a volume id's shape: `InvalidVolumeID.Malformed`, worded as every kind's.
pub fn parse_volume_id(id: &str) -> Result<String, ApiError> {
    VolumeId::parse(id).map(|id| id.to_string()).map_err(|_| {
        ApiError::client(
            "InvalidVolumeID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"vol-...\")"),
        )
    })
}

/// `InvalidVolume.NotFound` (`The volume 'vol-…' does not exist.`).
pub fn volume_not_found(id: &str) -> ApiError {
    ApiError::client(
        "InvalidVolume.NotFound",
        format!("The volume '{id}' does not exist."),
    )
}

/// The snapshot `id` of `region` as clients see it: none once DeleteSnapshot marked it.
pub fn find(state: &ApiState, region: &str, id: &str) -> Result<Option<Arc<Snapshot>>, ApiError> {
    Ok(state
        .store
        .snapshots()
        .get_shared(id)?
        .filter(|s| s.metadata.namespace == region && !s.is_being_deleted()))
}

/// The snapshot `id` of `region`, or `InvalidSnapshot.NotFound`.
pub fn existing(state: &ApiState, region: &str, id: &str) -> Result<Arc<Snapshot>, ApiError> {
    find(state, region, id)?.ok_or_else(|| not_found(id))
}

/// Replaces the `createVolumePermission` grants of snapshot `id` of `region` with what
/// `change` makes of them: checks it exists, answers `DryRun`, then writes with a
/// compare-and-swap. Nothing here asks the reconciler for anything, so the generation stays;
/// a record marked deleted (or collected) between the look-up and the write is
/// `InvalidSnapshot.NotFound`.
pub fn update_permissions(
    state: &ApiState,
    region: &str,
    id: &str,
    dry_run: bool,
    change: impl Fn(&[String]) -> Vec<String>,
) -> Result<(), ApiError> {
    existing(state, region, id)?;
    super::kind::check_dry_run(dry_run)?;
    state
        .store
        .snapshots()
        .update_spec_same_generation(id, |s| {
            if s.metadata.namespace != region || s.is_being_deleted() {
                return Err(not_found(id));
            }
            let after = change(&s.spec.create_volume_permissions);
            if after == s.spec.create_volume_permissions {
                return Ok(false);
            }
            s.spec.create_volume_permissions = after;
            Ok(true)
        })
        .map(drop)
}

/// Every snapshot of `region` clients see.
pub fn region_snapshots(state: &ApiState, region: &str) -> Result<Vec<Arc<Snapshot>>, ApiError> {
    Ok(state
        .store
        .snapshots()
        .list_shared()?
        .objects
        .into_iter()
        .filter(|s| s.metadata.namespace == region && !s.is_being_deleted())
        .collect())
}

/// `Description`: at most [`MAX_DESCRIPTION`] characters; absent is empty.
pub fn description(params: &QueryParams) -> Result<Option<String>, ApiError> {
    match params.get("Description") {
        Some(text) if text.chars().count() > MAX_DESCRIPTION => {
            Err(ApiError::invalid_value(format!(
                "Value for parameter description is invalid. Length exceeds {MAX_DESCRIPTION} characters."
            )))
        }
        other => Ok(other.map(str::to_string)),
    }
}

/// Looks an instance up for the volume guards (a store error reads as no instance: the
/// guard then treats the attachment as over, which only refuses a snapshot, never loses one).
pub fn instance_lookup(state: &ApiState) -> impl Fn(&str) -> Option<Arc<Instance>> + '_ {
    move |id| state.store.instances().get_shared(id).ok().flatten()
}

/// Whether a volume's data is in place: the reconciler said so, or, for a root volume (whose
/// data is its instance's container), its instance has a container or is running or stopped.
/// The same rule as DescribeVolumes' `creating`.
pub fn volume_ready(volume: &Volume, instance: impl Fn(&str) -> Option<Arc<Instance>>) -> bool {
    volume.status.ready
        || volume
            .spec
            .root_of
            .as_deref()
            .and_then(instance)
            .is_some_and(|i| {
                i.status.container.is_some()
                    || matches!(
                        i.status.state,
                        Some(InstanceState::Running | InstanceState::Stopped)
                    )
            })
}

/// The state a volume shows that a snapshot cannot be taken in, if any: `deleting` (DeleteVolume,
/// or a `deleteOnTermination` attachment that ended), `error`, or `creating` (its data is not in
/// place yet). A pure function of the volume's spec and status and its instances.
pub fn unsnapshottable_state(
    volume: &Volume,
    instance: impl Fn(&str) -> Option<Arc<Instance>>,
) -> Option<&'static str> {
    if is_being_deleted(volume, &instance) {
        Some("deleting")
    } else if volume.status.error.is_some() {
        Some("error")
    } else if !volume_ready(volume, &instance) {
        Some("creating")
    } else {
        None
    }
}

/// `IncorrectState` for a volume in `shown` state.
pub fn volume_incorrect_state(id: &str, shown: &str) -> ApiError {
    ApiError::client(
        "IncorrectState",
        format!("The volume '{id}' is in the '{shown}' state."),
    )
}

/// The volume `id` of `region` a snapshot is to be taken of: it must exist
/// (`InvalidVolume.NotFound`) and be neither `creating` nor being deleted (`IncorrectState`).
pub fn source_volume(state: &ApiState, region: &str, id: &str) -> Result<Arc<Volume>, ApiError> {
    let volume = state
        .store
        .volumes()
        .get_shared(id)?
        .filter(|v| v.metadata.namespace == region)
        .ok_or_else(|| volume_not_found(id))?;
    if let Some(shown) = unsnapshottable_state(&volume, instance_lookup(state)) {
        return Err(volume_incorrect_state(id, shown));
    }
    Ok(volume)
}

/// Whether `volume` is `instance_id`'s root volume, or attached to it (in force when the
/// instance's own record is: the caller checks that).
pub fn belongs_to(volume: &Volume, instance_id: &str) -> bool {
    volume.spec.root_of.as_deref() == Some(instance_id)
        || volume
            .spec
            .attachments
            .iter()
            .any(|a| a.instance_id == instance_id)
}

/// The spec of a snapshot of `volume`: its id and size, and its encryption.
pub fn spec_of_volume(
    volume: &Volume,
    description: String,
    tags: BTreeMap<String, String>,
) -> SnapshotSpec {
    SnapshotSpec {
        volume_id: volume.metadata.name.clone(),
        volume_size_gib: volume.spec.size_gib,
        description,
        encrypted: volume.spec.encrypted,
        kms_key_id: volume.spec.kms_key_id.clone(),
        tags,
        source: None,
        image_id: None,
        create_volume_permissions: Vec::new(),
    }
}

/// A new snapshot record of `region` with a fresh id, at generation 1.
fn new_record(region: &str, spec: SnapshotSpec, now: Timestamp) -> Snapshot {
    new_snapshot(SnapshotId::generate().as_str(), region, spec, now)
}

/// Writes a new snapshot record of `region` for each spec, all started at one instant and in
/// one transaction (so a crash leaves all of them or none), and returns them. The reconciler
/// takes them from there.
pub fn create(
    state: &ApiState,
    region: &str,
    specs: impl IntoIterator<Item = SnapshotSpec>,
) -> Result<Vec<Snapshot>, ApiError> {
    let at = crate::model::now();
    let records: Vec<Snapshot> = specs
        .into_iter()
        .map(|spec| new_record(region, spec, at))
        .collect();
    if !records.is_empty() {
        state.store.create_snapshots(&records)?;
    }
    Ok(records)
}

/// [`create`] of one snapshot.
pub fn create_one(
    state: &ApiState,
    region: &str,
    spec: SnapshotSpec,
) -> Result<Snapshot, ApiError> {
    let mut records = create(state, region, [spec])?;
    // `create` returns one record per spec.
    records
        .pop()
        .ok_or_else(|| ApiError::internal("no snapshot record was written"))
}

/// A snapshot's members as DescribeSnapshots and CreateSnapshot answer them. `progress` is
/// the snapshot's display progress, except in CreateSnapshot's answer, where EC2 leaves it empty.
pub fn render_fields(w: &mut XmlWriter, s: &Snapshot, progress: &str) {
    let state = s.display_state();
    w.field("snapshotId", &s.metadata.name);
    w.field("volumeId", &s.spec.volume_id);
    w.field("status", state.name());
    if state == crate::model::SnapshotState::Error {
        w.opt_field("statusMessage", s.status.error.as_deref());
    }
    w.field("startTime", format_timestamp(s.metadata.creation_timestamp));
    w.field("progress", progress);
    w.field("ownerId", ACCOUNT_ID);
    w.field("description", &s.spec.description);
    w.field("volumeSize", s.spec.volume_size_gib);
    render_tags(w, &s.spec.tags);
    w.field("storageTier", STORAGE_TIER);
    w.field("encrypted", s.spec.encrypted);
    w.opt_field("kmsKeyId", s.spec.kms_key_id.as_deref());
    if state == crate::model::SnapshotState::Completed {
        w.opt_field(
            "completionTime",
            s.status.completion_time.map(format_timestamp),
        );
    }
    w.opt_field("fullSnapshotSizeInBytes", s.status.size_bytes);
}

/// Whether `account` may create volumes from the snapshot: its owner always (implicitly), any
/// account when it is public, others when named.
pub fn restorable_by(s: &Snapshot, account: &str) -> bool {
    let permissions = &s.spec.create_volume_permissions;
    account == ACCOUNT_ID
        || permissions.iter().any(|p| p == "all")
        || permissions.iter().any(|p| p == account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;
    use crate::model::ContainerObservation;

    fn volume(root_of: Option<&str>) -> Volume {
        let mut spec = fixtures::volume_spec("us-east-1a", "gp2", 8);
        spec.root_of = root_of.map(str::to_string);
        fixtures::volume_of("vol-12345678", spec, time::OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn which_volumes_can_be_snapshotted() {
        let none = |_: &str| None::<Arc<Instance>>;
        let mut v = volume(None);
        assert_eq!(unsnapshottable_state(&v, none), Some("creating"));
        v.status.ready = true;
        assert_eq!(unsnapshottable_state(&v, none), None);
        v.status.error = Some("gone".into());
        assert_eq!(unsnapshottable_state(&v, none), Some("error"));
        v.metadata.deletion_timestamp = Some(time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(unsnapshottable_state(&v, none), Some("deleting"));

        // A root volume is ready once its instance has a container.
        let mut instance = fixtures::instance();
        instance.status.container = None;
        instance.status.state = None;
        let id = instance.metadata.name.clone();
        let root = volume(Some(&id));
        let lookup = |i: &Instance| {
            let i = Arc::new(i.clone());
            move |_: &str| Some(i.clone())
        };
        assert_eq!(
            unsnapshottable_state(&root, lookup(&instance)),
            Some("creating")
        );
        instance.status.container = Some(ContainerObservation {
            id: "c0ffee".into(),
            state: "running".into(),
            ip_address: None,
            ports: Vec::new(),
        });
        assert_eq!(unsnapshottable_state(&root, lookup(&instance)), None);
        instance.status.container = None;
        instance.status.state = Some(InstanceState::Stopped);
        assert_eq!(unsnapshottable_state(&root, lookup(&instance)), None);
    }
}
