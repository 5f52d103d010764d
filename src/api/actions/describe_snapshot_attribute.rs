//! `DescribeSnapshotAttribute`: a snapshot's `createVolumePermission` (the `all` group and the accounts it is shared with) or its `productCodes` (none).

use crate::api::actions::describe_image_attribute::unknown_attribute;
use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{kind, snapshots};
use crate::model::Snapshot;

/// EC2's `SnapshotAttributeName` values.
pub const ATTRIBUTES: &[&str] = &["createVolumePermission", "productCodes"];

/// A validated DescribeSnapshotAttribute request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `SnapshotId`.
    pub snapshot_id: String,
    /// `Attribute`, one of [`ATTRIBUTES`].
    pub attribute: &'static str,
    /// `DryRun`.
    pub dry_run: bool,
}

/// `Attribute` as [`ATTRIBUTES`] spells it; anything else is EC2's unknown attribute.
pub fn attribute(params: &QueryParams) -> Result<&'static str, ApiError> {
    let attribute = params.require("Attribute")?;
    ATTRIBUTES
        .iter()
        .copied()
        .find(|known| *known == attribute)
        .ok_or_else(|| unknown_attribute(attribute))
}

/// Parses and validates the request.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    Ok(Request {
        snapshot_id: snapshots::parse_id(params.require("SnapshotId")?)?,
        attribute: attribute(params)?,
        dry_run: kind::dry_run(params)?,
    })
}

/// `snapshotId` and the attribute's set.
pub fn render(snapshot: &Snapshot, attribute: &str) -> String {
    let mut w = XmlWriter::new();
    w.field("snapshotId", &snapshot.metadata.name);
    match attribute {
        "createVolumePermission" => {
            w.set(
                "createVolumePermission",
                &snapshot.spec.create_volume_permissions,
                |w, grantee| {
                    if grantee == "all" {
                        w.field("group", "all");
                    } else {
                        w.field("userId", grantee);
                    }
                },
            );
        }
        // ec2d's snapshots carry no product codes.
        _ => w.empty("productCodes"),
    }
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let req = parse(params)?;
    let snapshot = snapshots::existing(state, region, &req.snapshot_id)?;
    kind::check_dry_run(req.dry_run)?;
    Ok(render(&snapshot, req.attribute))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_unknown_attributes() {
        let q = |s: &str| parse(&QueryParams::from_query(s));
        assert_eq!(
            q("SnapshotId=snap-12345678&Attribute=productCodes")
                .unwrap()
                .attribute,
            "productCodes"
        );
        let e = q("SnapshotId=snap-12345678&Attribute=colour").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(
            e.message,
            "Value (colour) for parameter attribute is invalid. Unknown attribute."
        );
        assert_eq!(
            q("SnapshotId=snap-12345678").unwrap_err().message,
            "The request must contain the parameter Attribute"
        );
    }
}
