//! The image (AMI) kind: CreateImage records of the region over the Docker catalog.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::images;
use crate::api::kind::{IdRules, Kind, Paging};
use crate::api::query::QueryParams;
use crate::api::render::{image_architecture, render_image, ROOT_DEVICE_NAME};
use crate::api::state::ApiState;
use crate::api::tags::{Tagged, Tags};
use crate::api::xml::XmlWriter;
use crate::model::{format_timestamp, Image, ImageId, ACCOUNT_ID};
use crate::model::{ImageSpec, ImageStatus};
use crate::store::{SpecStore, Specs};

/// AMIs.
pub struct ImageKind;

impl Kind for ImageKind {
    type Item = Image;
    type Ref = ImageId;
    type Context = ();
    type Cursor = ();

    const IDS: IdRules = IdRules {
        noun: "image",
        prefix: ImageId::PREFIX,
        malformed: "InvalidAMIID.Malformed",
        not_found: "InvalidAMIID.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some("image");
    /// `owner-alias` and `platform` are accepted and match nothing: ec2d's AMIs have no alias
    /// and are all Linux.
    const FILTERS: &'static [&'static str] = &[
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
    const PAGING: Option<Paging> = None;
    const SET: &'static str = "imagesSet";

    fn id(item: &Image) -> &str {
        &item.metadata.name
    }

    fn refs(params: &QueryParams) -> Result<Vec<ImageId>, ApiError> {
        params
            .list("ImageId")
            .into_iter()
            .map(|raw| ImageId::parse(raw).map_err(ApiError::from))
            .collect()
    }

    fn find(state: &ApiState, region: &str, id: &ImageId) -> Result<Option<Image>, ApiError> {
        images::find_image(state, region, id)
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Image>, ApiError> {
        images::region_images(state, region)
    }

    /// EC2's quirk: the ids in brackets, one message for one or many.
    fn not_found(_region: &str, missing: &[ImageId]) -> ApiError {
        let ids: Vec<String> = missing.iter().map(ToString::to_string).collect();
        ApiError::images_not_found(&ids)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &Image) -> Option<&BTreeMap<String, String>> {
        Some(&item.spec.tags)
    }

    fn values(name: &str, image: &Image, _context: &()) -> Vec<String> {
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

    /// Oldest first.
    fn sort(items: &mut [Image]) {
        items.sort_by(|a, b| {
            (a.metadata.creation_timestamp, &a.metadata.name)
                .cmp(&(b.metadata.creation_timestamp, &b.metadata.name))
        });
    }

    fn cursor(item: &Image) -> String {
        item.metadata.name.clone()
    }

    fn parse_cursor(_text: &str) -> Option<()> {
        None
    }

    fn after(_item: &Image, _cursor: &()) -> bool {
        true
    }

    fn render(w: &mut XmlWriter, item: &Image) {
        render_image(w, item);
    }
}

/// Only AMIs made by CreateImage carry tags: AMIs discovered from Docker tags are observed
/// state that image discovery rewrites.
impl Tagged for ImageKind {
    type Spec = ImageSpec;
    type Status = ImageStatus;

    fn collection(store: &SpecStore) -> Specs<'_, ImageSpec, ImageStatus> {
        store.images()
    }

    fn spec_tags(spec: &ImageSpec) -> &Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut ImageSpec) -> &mut Tags {
        &mut spec.tags
    }

    fn parse_tag_id(id: &str) -> Result<String, ApiError> {
        Ok(ImageId::parse(id)?.to_string())
    }

    /// An AMI ec2d discovered from a Docker tag exists, but keeps no tags of its own.
    fn tag_not_found(state: &ApiState, _region: &str, id: &str) -> ApiError {
        let discovered = state
            .store
            .catalog()
            .get_shared(id)
            .ok()
            .flatten()
            .is_some();
        if discovered {
            ApiError::client(
                "UnsupportedOperation",
                format!(
                    "The image '{id}' comes from a Docker tag; ec2d keeps tags only for \
                     images made by CreateImage"
                ),
            )
        } else {
            ApiError::images_not_found(&[id.to_string()])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{fixtures, ImageState, InstanceId};

    #[test]
    fn values() {
        let mut image =
            fixtures::committed_image(&InstanceId::parse("i-00000001").unwrap(), "web-1");
        image.status.state = Some(ImageState::Available);
        assert_eq!(ImageKind::values("name", &image, &()), vec!["web-1"]);
        assert_eq!(ImageKind::values("state", &image, &()), vec!["available"]);
        assert!(ImageKind::values("owner-alias", &image, &()).is_empty());
        for name in ImageKind::FILTERS {
            let _ = ImageKind::values(name, &image, &());
        }
    }
}
