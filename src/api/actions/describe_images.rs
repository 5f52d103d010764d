//! `DescribeImages`: CreateImage records of the region plus the Docker AMI catalog, by id, owner and filter.

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::query::QueryParams;
use crate::api::xml::XmlWriter;
use crate::api::ApiState;
use crate::model::{format_timestamp, Image, ImageId, ACCOUNT_ID};

use super::render::{image_architecture, render_image, ROOT_DEVICE_NAME};
use super::shared;

/// The filter names ec2d answers (plus `tag:<key>`). `owner-alias` and `platform` are
/// accepted and match nothing: ec2d's AMIs have no alias and are all Linux.
pub const FILTERS: &[&str] = &[
    "image-id",
    "name",
    "state",
    "owner-id",
    "is-public",
    "architecture",
    "image-type",
    "root-device-type",
    "root-device-name",
    "virtualization-type",
    "hypervisor",
    "description",
    "platform-details",
    "usage-operation",
    "creation-date",
    "ena-support",
    "state-reason-code",
    "tag-key",
    "tag-value",
    "owner-alias",
    "platform",
];

/// A validated DescribeImages request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `ImageId.N`; empty means all.
    pub ids: Vec<ImageId>,
    /// `Owner.N`; empty means any.
    pub owners: Vec<String>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses ids (`InvalidAMIID.Malformed` on a bad one), owners and filters. `ExecutableBy.N`
/// is ignored: every AMI is launchable by the one account ec2d has.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let mut ids = Vec::new();
    for raw in params.list("ImageId") {
        let id = ImageId::parse(raw)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    Ok(Request {
        ids,
        owners: params
            .list("Owner")
            .into_iter()
            .map(str::to_string)
            .collect(),
        filters,
        dry_run: shared::dry_run(params)?,
    })
}

/// Whether `Owner.N` selects ec2d's AMIs: `self` or the account id; `amazon`, `aws-marketplace`
/// and other accounts own nothing here.
fn owned_by_any(owners: &[String]) -> bool {
    owners.is_empty() || owners.iter().any(|o| o == "self" || o == ACCOUNT_ID)
}

/// The image's values for one filter name.
pub fn filter_values(name: &str, image: &Image) -> Vec<String> {
    if let Some(values) = shared::tag_filter_values(name, &image.spec.tags) {
        return values;
    }
    let one = |s: &str| vec![s.to_string()];
    match name {
        "image-id" => one(&image.metadata.name),
        "name" => one(&image.spec.name),
        "state" => one(image.display_state().name()),
        "owner-id" => one(ACCOUNT_ID),
        "is-public" => one("false"),
        "architecture" => one(image_architecture(image)),
        "image-type" => one("machine"),
        "root-device-type" => one("ebs"),
        "root-device-name" => one(ROOT_DEVICE_NAME),
        "virtualization-type" => one("hvm"),
        "hypervisor" => one("xen"),
        "description" => image.spec.description.iter().cloned().collect(),
        "platform-details" => one("Linux/UNIX"),
        "usage-operation" => one("RunInstances"),
        "creation-date" => vec![format_timestamp(image.metadata.creation_timestamp)],
        "ena-support" => one("true"),
        "state-reason-code" => image
            .status
            .state_reason
            .iter()
            .map(|r| r.code.clone())
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads the images visible from the region and selects.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Vec<Image>, ApiError> {
    let images = if req.ids.is_empty() {
        shared::region_images(state, region)?
    } else {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for id in &req.ids {
            match shared::find_image(state, region, id)? {
                Some(image) => found.push(image),
                None => missing.push(id.to_string()),
            }
        }
        if !missing.is_empty() {
            return Err(ApiError::images_not_found(&missing));
        }
        found
    };
    shared::check_dry_run(req.dry_run)?;
    if !owned_by_any(&req.owners) {
        return Ok(Vec::new());
    }
    let mut selected: Vec<Image> = images
        .into_iter()
        .filter(|i| filter::matches_all(&req.filters, |name| filter_values(name, i)))
        .collect();
    selected.sort_by(|a, b| {
        (a.metadata.creation_timestamp, &a.metadata.name)
            .cmp(&(b.metadata.creation_timestamp, &b.metadata.name))
    });
    Ok(selected)
}

/// `imagesSet`.
pub fn render(images: &[Image]) -> String {
    let mut w = XmlWriter::new();
    w.set("imagesSet", images, render_image);
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{fixtures, ImageState, InstanceId};

    #[test]
    fn parse_ids_owners_filters() {
        let req = parse(&QueryParams::from_query(
            "ImageId.1=ami-1&ImageId.2=ami-1&Owner.1=self&ExecutableBy.1=all&Filter.1.Name=name&Filter.1.Value.1=web*",
        ))
        .unwrap();
        assert_eq!(req.ids.len(), 1);
        assert_eq!(req.owners, vec!["self"]);
        assert_eq!(req.filters.len(), 1);
        let e = parse(&QueryParams::from_query("ImageId.1=image-1")).unwrap_err();
        assert_eq!(e.code, "InvalidAMIID.Malformed");
        let e = parse(&QueryParams::from_query("Filter.1.Name=colour")).unwrap_err();
        assert_eq!(e.message, "The filter 'colour' is invalid");
    }

    #[test]
    fn owners() {
        assert!(owned_by_any(&[]));
        assert!(owned_by_any(&["self".into()]));
        assert!(owned_by_any(&["amazon".into(), ACCOUNT_ID.into()]));
        assert!(!owned_by_any(&["amazon".into()]));
        assert!(!owned_by_any(&["123456789012".into()]));
    }

    #[test]
    fn values() {
        let mut image =
            fixtures::committed_image(&InstanceId::parse("i-00000001").unwrap(), "web-1");
        image.status.state = Some(ImageState::Available);
        assert_eq!(filter_values("name", &image), vec!["web-1"]);
        assert_eq!(filter_values("state", &image), vec!["available"]);
        assert!(filter_values("owner-alias", &image).is_empty());
        for name in FILTERS {
            let _ = filter_values(name, &image);
        }
    }
}
