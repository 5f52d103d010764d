//! `CopySnapshot`: records a new pending snapshot in the caller's region whose data comes from a snapshot of `SourceRegion` (`spec.source`); the reconciler copies it.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::render::render_tags;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{kind, snapshots, tags};
use crate::model::region::all_regions;
use crate::model::{Snapshot, SnapshotSource, SnapshotSpec, SnapshotState};

/// The volume id EC2 shows for a copied snapshot: "an arbitrary volume ID that should not be
/// used for any purpose" (the API reference's `Snapshot.VolumeId`).
pub const COPIED_VOLUME_ID: &str = "vol-ffffffff";

/// A validated CopySnapshot request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `SourceSnapshotId`.
    pub source_snapshot_id: String,
    /// `SourceRegion`.
    pub source_region: String,
    /// `Description`; EC2's `[Copied snap-… from <region>]` when absent.
    pub description: Option<String>,
    /// `Encrypted`: the copy is encrypted (it is anyway when the source is).
    pub encrypted: bool,
    /// `KmsKeyId`.
    pub kms_key_id: Option<String>,
    /// Tags of `TagSpecification`s with `ResourceType=snapshot`.
    pub tags: BTreeMap<String, String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates everything that needs no store. `DestinationRegion` and
/// `PresignedUrl` are ignored (EC2: the destination is the region the request is sent to);
/// a copy to an Outpost or into a zone is refused.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let source_snapshot_id = snapshots::parse_id(params.require("SourceSnapshotId")?)?;
    let source_region = params.require("SourceRegion")?.to_string();
    for destination in ["DestinationOutpostArn", "DestinationAvailabilityZone"] {
        if params.get(destination).is_some() {
            return Err(ApiError::client(
                "UnsupportedOperation",
                format!(
                    "ec2d copies snapshots between regions only: {destination} is not supported"
                ),
            ));
        }
    }
    params.int("CompletionDurationMinutes")?;
    Ok(Request {
        source_snapshot_id,
        source_region,
        description: snapshots::description(params)?,
        encrypted: params.bool("Encrypted")?.unwrap_or(false),
        kms_key_id: params
            .get("KmsKeyId")
            .filter(|k| !k.is_empty())
            .map(str::to_string),
        tags: tags::tag_specifications(params, &["snapshot"])?,
        dry_run: kind::dry_run(params)?,
    })
}

/// Checks the source region (`Invalid region`, as CopyImage) and the source (it exists there,
/// `InvalidSnapshot.NotFound`, and is not in `error`: its data is gone), answers `DryRun`,
/// then writes the copy's record in the caller's region.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Snapshot, ApiError> {
    if !all_regions(region).contains(&req.source_region) {
        return Err(ApiError::invalid_value(format!(
            "Invalid region: [{}]",
            req.source_region
        )));
    }
    let source_id = req.source_snapshot_id.as_str();
    let source = snapshots::existing(state, &req.source_region, source_id)?;
    if source.display_state() == SnapshotState::Error {
        return Err(ApiError::client(
            "IncorrectState",
            format!("Snapshot '{source_id}' is in the 'error' state and cannot be copied."),
        ));
    }
    kind::check_dry_run(req.dry_run)?;
    let encrypted = req.encrypted || source.spec.encrypted;
    let kms_key_id = if encrypted {
        req.kms_key_id.clone().or(source.spec.kms_key_id.clone())
    } else {
        None
    };
    let spec = SnapshotSpec {
        volume_id: COPIED_VOLUME_ID.to_string(),
        volume_size_gib: source.spec.volume_size_gib,
        description: req
            .description
            .clone()
            .unwrap_or_else(|| format!("[Copied {source_id} from {}]", req.source_region)),
        encrypted,
        kms_key_id,
        tags: req.tags.clone(),
        source: Some(SnapshotSource {
            region: req.source_region.clone(),
            snapshot_id: source_id.to_string(),
        }),
        image_id: None,
        create_volume_permissions: Vec::new(),
    };
    let copy = snapshots::create_one(state, region, spec)?;
    tracing::info!(snapshot_id = %copy.metadata.name, source = %source_id, source_region = %req.source_region, "snapshot copy requested");
    Ok(copy)
}

/// `snapshotId`, and the copy's `tagSet`.
pub fn render(copy: &Snapshot) -> String {
    let mut w = XmlWriter::new();
    w.field("snapshotId", &copy.metadata.name);
    render_tags(&mut w, &copy.spec.tags);
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
        let req = q(
            "SourceSnapshotId=snap-12345678&SourceRegion=us-west-2&DestinationRegion=eu-west-1\
                     &Encrypted=true&KmsKeyId=alias/k&PresignedUrl=https://x",
        )
        .unwrap();
        assert_eq!(req.source_region, "us-west-2");
        assert!(req.encrypted);
        assert_eq!(req.kms_key_id.as_deref(), Some("alias/k"));
        assert_eq!(req.description, None);
        assert_eq!(
            q("SourceRegion=us-east-1").unwrap_err().message,
            "The request must contain the parameter SourceSnapshotId"
        );
        assert_eq!(
            q("SourceSnapshotId=snap-12345678").unwrap_err().message,
            "The request must contain the parameter SourceRegion"
        );
        assert_eq!(
            q("SourceSnapshotId=snap-1&SourceRegion=us-east-1")
                .unwrap_err()
                .code,
            "InvalidSnapshotID.Malformed"
        );
        assert_eq!(
            q("SourceSnapshotId=snap-12345678&SourceRegion=us-east-1&Encrypted=maybe")
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
        assert_eq!(
            q("SourceSnapshotId=snap-12345678&SourceRegion=us-east-1&DestinationOutpostArn=arn")
                .unwrap_err()
                .code,
            "UnsupportedOperation"
        );
    }
}
