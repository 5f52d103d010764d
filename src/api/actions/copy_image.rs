//! `CopyImage`: records a new AMI in the caller's region backed by the source AMI's Docker image (the reconciler tags that image with the copy's `localstack-ec2/<name>:<ami>`); a ClientToken seen before answers its copy.

use std::collections::BTreeMap;

use crate::api::actions::create_image::{check_name_free, store_error, valid_ami_name};
use crate::api::actions::run_instances::MAX_CLIENT_TOKEN;
use crate::api::error::ApiError;
use crate::api::images::{self, Ami};
use crate::api::launch_templates::idempotent_mismatch;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{kind, tags};
use crate::config::VmManager;
use crate::model::region::all_regions;
use crate::model::{
    docker_repository_name, now, AmiTag, Image, ImageId, ImageSource, ImageSpec, ImageState,
    ImageStatus, Object, ObjectMeta, API_VERSION, IMAGE_KIND, VM_MANAGER_TAG,
};
use crate::store::{StoreError, CLIENT_TOKEN_KIND};

/// The longest `Description` EC2 accepts.
const MAX_DESCRIPTION: usize = 255;

/// A validated CopyImage request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `SourceImageId`.
    pub source_image_id: ImageId,
    /// `SourceRegion`.
    pub source_region: String,
    /// `Name` of the new AMI.
    pub name: String,
    /// `Description`.
    pub description: Option<String>,
    /// `CopyImageTags`: the source's user tags go to the copy.
    pub copy_tags: bool,
    /// Tags of `TagSpecification`s with `ResourceType=image` (snapshot tags are checked and
    /// ignored: ec2d has no snapshots yet).
    pub tags: BTreeMap<String, String>,
    /// `ClientToken` (botocore fills one in for every call): a retry answers the same AMI.
    pub client_token: Option<String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// `ClientToken`: at most 64 ASCII characters, as EC2's idempotency tokens; empty is none.
fn client_token(params: &QueryParams) -> Result<Option<String>, ApiError> {
    match params.get("ClientToken").filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(token) if token.len() <= MAX_CLIENT_TOKEN && token.is_ascii() => {
            Ok(Some(token.to_string()))
        }
        Some(token) => Err(ApiError::invalid_value(format!(
            "Value ({token}) for parameter clientToken is invalid. Expected at most {MAX_CLIENT_TOKEN} ASCII characters."
        ))),
    }
}

/// Parses and validates everything that needs no store. `Encrypted` and `KmsKeyId` are
/// accepted (ec2d's AMIs have no snapshots to encrypt); copies to an Outpost or a Local Zone
/// are refused.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let source_image_id = ImageId::parse(params.require("SourceImageId")?)?;
    let source_region = params.require("SourceRegion")?.to_string();
    let name = params.require("Name")?;
    if !valid_ami_name(name) {
        return Err(ApiError::client(
            "InvalidAMIName.Malformed",
            "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'",
        ));
    }
    let description = params.get("Description").map(str::to_string);
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(ApiError::invalid_value(format!(
            "Value for parameter description is invalid. Length exceeds {MAX_DESCRIPTION} characters."
        )));
    }
    params.bool("Encrypted")?;
    for destination in [
        "DestinationOutpostArn",
        "DestinationAvailabilityZone",
        "DestinationAvailabilityZoneId",
    ] {
        if params.get(destination).is_some() {
            return Err(ApiError::client(
                "UnsupportedOperation",
                format!("ec2d copies AMIs between regions only: {destination} is not supported"),
            ));
        }
    }
    Ok(Request {
        source_image_id,
        source_region,
        name: name.to_string(),
        description,
        copy_tags: params.bool("CopyImageTags")?.unwrap_or(false),
        tags: tags::tag_specifications(params, &["image", "snapshot"])?,
        client_token: client_token(params)?,
        dry_run: kind::dry_run(params)?,
    })
}

/// The AMI an earlier CopyImage with this `ClientToken` made in the region, while its record
/// exists; `IdempotentParameterMismatch` when that call copied another AMI or named the copy
/// otherwise (what a copy keeps unchanged: its description and tags may have changed since).
fn earlier(
    state: &ApiState,
    region: &str,
    token: &str,
    req: &Request,
) -> Result<Option<ImageId>, ApiError> {
    let Some(id) = state.store.image_for_client_token(region, token)? else {
        return Ok(None);
    };
    let Some(image) = state.store.images().get(&id)? else {
        return Ok(None);
    };
    let same = match &image.spec.source {
        ImageSource::Copy {
            source_image_id,
            source_region,
            ..
        } => {
            *source_image_id == req.source_image_id
                && *source_region == req.source_region
                && image.spec.name == req.name
        }
        _ => false,
    };
    if !same {
        return Err(idempotent_mismatch());
    }
    kind::check_dry_run(req.dry_run)?;
    Ok(Some(ImageId::parse(&id)?))
}

/// Checks the source (in `SourceRegion`: it must exist there and be available, and in
/// `docker` mode have a Docker image) and the name (free in the caller's region), then writes
/// the copy's record in the caller's region.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<ImageId, ApiError> {
    if let Some(token) = &req.client_token {
        if let Some(id) = earlier(state, region, token, &req)? {
            return Ok(id);
        }
    }
    if !all_regions(region).contains(&req.source_region) {
        return Err(ApiError::invalid_value(format!(
            "Invalid region: [{}]",
            req.source_region
        )));
    }
    let source_id = &req.source_image_id;
    let source = images::find_ami(state, &req.source_region, source_id)?
        .ok_or_else(|| ApiError::images_not_found(&[source_id.to_string()]))?;
    if source.state() != ImageState::Available {
        return Err(ApiError::client(
            "IncorrectState",
            format!(
                "The image '{source_id}' is in the '{}' state; only an available image can be copied",
                source.state().name()
            ),
        ));
    }
    let source_reference = images::launch_reference(state, &req.source_region, source_id)?;
    check_name_free(state, region, &req.name)?;
    kind::check_dry_run(req.dry_run)?;

    let mut tags = BTreeMap::new();
    if req.copy_tags {
        if let Ami::Own(image) = &source {
            tags.extend(image.spec.tags.clone());
        }
    }
    tags.extend(req.tags.clone());
    if state.vm_manager == VmManager::Docker {
        tags.insert(VM_MANAGER_TAG.to_string(), "docker".to_string());
    }
    let id = ImageId::generate();
    let image: Image = Object {
        api_version: API_VERSION.to_string(),
        kind: IMAGE_KIND.to_string(),
        metadata: ObjectMeta::new(id.as_str(), region, now()),
        spec: ImageSpec {
            description: req.description.clone(),
            tags,
            boot_mode: source.boot_mode().map(str::to_string),
            ..ImageSpec::new(
                req.name.clone(),
                ImageSource::Copy {
                    source_image_id: source_id.clone(),
                    source_region: req.source_region.clone(),
                    source_reference,
                    client_token: req.client_token.clone(),
                },
                AmiTag::new(docker_repository_name(&req.name), id.clone()).to_string(),
            )
        },
        status: ImageStatus::default(),
    };
    match state.store.create_image(&image) {
        // A concurrent call with the same token won: answer with its copy.
        Err(StoreError::NameTaken { kind, name, .. }) if kind == CLIENT_TOKEN_KIND => {
            return earlier(state, region, &name, &req)?.ok_or_else(|| {
                ApiError::internal(format!("the copy of ClientToken {name} vanished"))
            });
        }
        Err(e) => return Err(store_error(e)),
        Ok(()) => {}
    }
    tracing::info!(image_id = %id, source = %source_id, source_region = %req.source_region, reference = %image.spec.reference, "image copy requested");
    Ok(id)
}

/// `imageId`.
pub fn render(id: &ImageId) -> String {
    let mut w = XmlWriter::new();
    w.field("imageId", id);
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
        let req = q("SourceImageId=ami-12345678&SourceRegion=us-west-2&Name=copy&Description=d&CopyImageTags=true&Encrypted=false\
                     &TagSpecification.1.ResourceType=image&TagSpecification.1.Tag.1.Key=k&TagSpecification.1.Tag.1.Value=v\
                     &ClientToken=0f6e-retry")
        .unwrap();
        assert_eq!(req.client_token.as_deref(), Some("0f6e-retry"));
        assert_eq!(req.source_region, "us-west-2");
        assert!(req.copy_tags);
        assert_eq!(req.tags["k"], "v");
        let message = |s: &str| q(s).unwrap_err().message;
        assert_eq!(
            message("SourceRegion=us-east-1&Name=copy"),
            "The request must contain the parameter SourceImageId"
        );
        assert_eq!(
            message("SourceImageId=ami-12345678&Name=copy"),
            "The request must contain the parameter SourceRegion"
        );
        assert_eq!(
            message("SourceImageId=ami-12345678&SourceRegion=us-east-1"),
            "The request must contain the parameter Name"
        );
        let code = |s: &str| q(s).unwrap_err().code.to_string();
        assert_eq!(
            code("SourceImageId=ami-12345678&SourceRegion=us-east-1&Name=x"),
            "InvalidAMIName.Malformed"
        );
        assert_eq!(
            code("SourceImageId=nope&SourceRegion=us-east-1&Name=copy"),
            "InvalidAMIID.Malformed"
        );
        assert_eq!(
            code("SourceImageId=ami-12345678&SourceRegion=us-east-1&Name=copy&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=k"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("SourceImageId=ami-12345678&SourceRegion=us-east-1&Name=copy&DestinationOutpostArn=arn"),
            "UnsupportedOperation"
        );
    }
}
