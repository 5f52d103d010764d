//! `CreateSnapshot`: records a pending snapshot of a volume of the region (its id, size and encryption); the reconciler copies the volume's data and completes it.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{kind, snapshots, tags};
use crate::model::Snapshot;

/// A validated CreateSnapshot request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `VolumeId`.
    pub volume_id: String,
    /// `Description` (empty when absent).
    pub description: String,
    /// Tags of `TagSpecification`s with `ResourceType=snapshot`.
    pub tags: BTreeMap<String, String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates everything that needs no store. A snapshot on an Outpost is refused:
/// ec2d has none.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let volume_id = snapshots::parse_volume_id(params.require("VolumeId")?)?;
    let description = snapshots::description(params)?.unwrap_or_default();
    if params.get("OutpostArn").is_some() || params.get("Location") == Some("outpost") {
        return Err(ApiError::client(
            "UnsupportedOperation",
            "ec2d has no Outposts: snapshots are stored in the region",
        ));
    }
    Ok(Request {
        volume_id,
        description,
        tags: tags::tag_specifications(params, &["snapshot"])?,
        dry_run: kind::dry_run(params)?,
    })
}

/// Checks the volume (it exists in the region, and is neither `creating` nor being deleted),
/// answers `DryRun`, then writes the snapshot's record.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Snapshot, ApiError> {
    let volume = snapshots::source_volume(state, region, &req.volume_id)?;
    kind::check_dry_run(req.dry_run)?;
    let snapshot = snapshots::create_one(
        state,
        region,
        snapshots::spec_of_volume(&volume, req.description, req.tags),
    )?;
    tracing::info!(snapshot_id = %snapshot.metadata.name, volume_id = %req.volume_id, "snapshot requested");
    Ok(snapshot)
}

/// The snapshot, as EC2 answers it: `pending`, with an empty `progress`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut w = XmlWriter::new();
    snapshots::render_fields(&mut w, snapshot, "");
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
        let req = q("VolumeId=vol-12345678&Description=nightly\
                     &TagSpecification.1.ResourceType=snapshot&TagSpecification.1.Tag.1.Key=k&TagSpecification.1.Tag.1.Value=v")
        .unwrap();
        assert_eq!(req.volume_id, "vol-12345678");
        assert_eq!(req.description, "nightly");
        assert_eq!(req.tags["k"], "v");
        assert!(!req.dry_run);
        assert_eq!(
            q("Description=x").unwrap_err().message,
            "The request must contain the parameter VolumeId"
        );
        let e = q("VolumeId=volume-1").unwrap_err();
        assert_eq!(e.code, "InvalidVolumeID.Malformed");
        assert_eq!(
            e.message,
            "Invalid id: \"volume-1\" (expecting \"vol-...\")"
        );
        let long = "d".repeat(256);
        assert_eq!(
            q(&format!("VolumeId=vol-12345678&Description={long}"))
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
        assert!(q(&format!(
            "VolumeId=vol-12345678&Description={}",
            "d".repeat(255)
        ))
        .is_ok());
        assert_eq!(
            q("VolumeId=vol-12345678&TagSpecification.1.ResourceType=volume&TagSpecification.1.Tag.1.Key=k")
                .unwrap_err()
                .message,
            "'volume' is not a valid taggable resource type for this operation."
        );
    }
}
