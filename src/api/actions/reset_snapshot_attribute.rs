//! `ResetSnapshotAttribute`: takes every `createVolumePermission` grant off a snapshot, so only its owner may create volumes from it.

use crate::api::actions::describe_snapshot_attribute::attribute;
use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;
use crate::api::{kind, snapshots};

/// A validated ResetSnapshotAttribute request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `SnapshotId`.
    pub snapshot_id: String,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates the request: `Attribute` must be `createVolumePermission` (product
/// codes cannot be reset).
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let snapshot_id = snapshots::parse_id(params.require("SnapshotId")?)?;
    if attribute(params)? != "createVolumePermission" {
        return Err(ApiError::invalid_value(
            "Value (productCodes) for parameter attribute is invalid. Only createVolumePermission can be reset.",
        ));
    }
    Ok(Request {
        snapshot_id,
        dry_run: kind::dry_run(params)?,
    })
}

/// Clears the grants with a compare-and-swap on the snapshot's record (the generation stays).
pub fn handle(state: &ApiState, region: &str, req: &Request) -> Result<(), ApiError> {
    snapshots::update_permissions(state, region, &req.snapshot_id, req.dry_run, |_| Vec::new())
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
    fn only_create_volume_permission() {
        let q = |s: &str| parse(&QueryParams::from_query(s));
        assert!(q("SnapshotId=snap-12345678&Attribute=createVolumePermission").is_ok());
        assert_eq!(
            q("SnapshotId=snap-12345678&Attribute=productCodes")
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
        assert_eq!(
            q("SnapshotId=snap-12345678&Attribute=colour")
                .unwrap_err()
                .message,
            "Value (colour) for parameter attribute is invalid. Unknown attribute."
        );
        assert_eq!(
            q("SnapshotId=snap-12345678").unwrap_err().code,
            "MissingParameter"
        );
    }
}
