//! `DeleteSnapshot`: marks a snapshot for deletion (`metadata.deletionTimestamp`), refused while a registered AMI is made from it; from then on it is no longer listed, and the reconciler removes its data and collects the record.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;
use crate::api::{kind, snapshots};
use crate::model::{now, Snapshot};

/// A validated DeleteSnapshot request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `SnapshotId`.
    pub snapshot_id: String,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates the request.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    Ok(Request {
        snapshot_id: snapshots::parse_id(params.require("SnapshotId")?)?,
        dry_run: kind::dry_run(params)?,
    })
}

/// `InvalidSnapshot.InUse`, as EC2 words it.
pub fn in_use(snapshot_id: &str, image_id: &str) -> ApiError {
    ApiError::client(
        "InvalidSnapshot.InUse",
        format!("The snapshot {snapshot_id} is currently in use by {image_id}"),
    )
}

/// The AMI that keeps the snapshot in use: the one its record names (CreateImage's block
/// device mapping), while that AMI's record is in the snapshot's region and not deregistered.
pub fn in_use_by(state: &ApiState, snapshot: &Snapshot) -> Result<Option<String>, ApiError> {
    let Some(image_id) = &snapshot.spec.image_id else {
        return Ok(None);
    };
    let registered = state
        .store
        .images()
        .get_shared(image_id)?
        .is_some_and(|image| {
            image.metadata.namespace == snapshot.metadata.namespace && !image.spec.deregistered
        });
    Ok(registered.then(|| image_id.clone()))
}

/// Checks the snapshot exists and no registered AMI uses it, answers `DryRun`, then sets its
/// `deletionTimestamp` with a compare-and-swap on its record (a new generation: the
/// reconciler has data to remove). A snapshot deleted twice is `InvalidSnapshot.NotFound`,
/// as it is no longer listed.
pub fn handle(state: &ApiState, region: &str, req: &Request) -> Result<(), ApiError> {
    let id = req.snapshot_id.as_str();
    let snapshot = snapshots::existing(state, region, id)?;
    if let Some(image_id) = in_use_by(state, &snapshot)? {
        return Err(in_use(id, &image_id));
    }
    kind::check_dry_run(req.dry_run)?;
    let at = now();
    state.store.snapshots().update_spec(id, |s| {
        if s.metadata.namespace != region || s.is_being_deleted() {
            return Err(snapshots::not_found(id));
        }
        // The record may have moved on since it was read: check the AMI it names again.
        if let Some(image_id) = in_use_by(state, s)? {
            return Err(in_use(id, &image_id));
        }
        s.metadata.deletion_timestamp = Some(at);
        Ok(true)
    })?;
    tracing::info!(snapshot_id = %id, "snapshot deletion requested");
    Ok(())
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, &parse(params)?)?;
    Ok(render_return_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_the_id() {
        let q = |s: &str| parse(&QueryParams::from_query(s));
        assert_eq!(
            q("SnapshotId=snap-12345678").unwrap().snapshot_id,
            "snap-12345678"
        );
        assert_eq!(
            q("").unwrap_err().message,
            "The request must contain the parameter SnapshotId"
        );
        let e = q("SnapshotId=snap-xyz").unwrap_err();
        assert_eq!(e.code, "InvalidSnapshotID.Malformed");
        assert_eq!(
            e.message,
            "Invalid id: \"snap-xyz\" (expecting \"snap-...\")"
        );
    }
}
