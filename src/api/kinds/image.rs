//! The image (AMI) kind: the account's AMIs of the region (CreateImage and CopyImage records, Docker-discovered AMIs) and the public catalogue.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::images::{self, Ami};
use crate::api::kind::{IdRules, Kind, Paging};
use crate::api::paging::{self, SizeWording};
use crate::api::query::QueryParams;
use crate::api::render::render_image;
use crate::api::state::ApiState;
use crate::api::tags::{Tagged, Tags};
use crate::api::xml::XmlWriter;
use crate::model::ImageId;
use crate::model::{ImageSpec, ImageStatus};
use crate::store::{SpecStore, Specs};

/// AMIs.
pub struct ImageKind;

impl Kind for ImageKind {
    type Item = Ami;
    type Ref = ImageId;
    type Context = ();
    /// The creation date and id of the last AMI of a page (the kind's order).
    type Cursor = (String, String);

    const IDS: IdRules = IdRules {
        noun: "image",
        prefix: ImageId::PREFIX,
        malformed: "InvalidAMIID.Malformed",
        not_found: "InvalidAMIID.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some("image");
    /// EC2's DescribeImages filters. Those about things ec2d's AMIs never have (kernels, RAM
    /// disks, product codes) are accepted and match nothing.
    const FILTERS: &'static [&'static str] = &[
        "architecture",
        "block-device-mapping.delete-on-termination",
        "block-device-mapping.device-name",
        "block-device-mapping.snapshot-id",
        "block-device-mapping.volume-size",
        "block-device-mapping.volume-type",
        "block-device-mapping.encrypted",
        "creation-date",
        "description",
        "ena-support",
        "free-tier-eligible",
        "hypervisor",
        "image-allowed",
        "image-id",
        "image-type",
        "is-public",
        "kernel-id",
        "manifest-location",
        "name",
        "owner-alias",
        "owner-id",
        "platform",
        "platform-details",
        "product-code",
        "product-code.type",
        "ramdisk-id",
        "root-device-name",
        "root-device-type",
        "source-image-id",
        "source-image-region",
        "source-instance-id",
        "state",
        "state-reason-code",
        "state-reason-message",
        "sriov-net-support",
        "tag-key",
        "tag-value",
        "usage-operation",
        "virtualization-type",
    ];
    /// EC2 pages DescribeImages (5 to 1000) and refuses a page size together with ids.
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: Some("The parameter imagesSet cannot be used with the parameter maxResults"),
        wording: SizeWording::Between,
    });
    const SET: &'static str = "imagesSet";

    fn id(item: &Ami) -> &str {
        item.id()
    }

    fn refs(params: &QueryParams) -> Result<Vec<ImageId>, ApiError> {
        params
            .list("ImageId")
            .into_iter()
            .map(|raw| ImageId::parse(raw).map_err(ApiError::from))
            .collect()
    }

    fn find(state: &ApiState, region: &str, id: &ImageId) -> Result<Option<Ami>, ApiError> {
        images::find_ami(state, region, id)
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<Ami>, ApiError> {
        images::region_amis(state, region)
    }

    /// A deregistered AMI is left out of the answer (EC2: "recently deregistered images
    /// appear in the returned results for a short interval and then return empty results"),
    /// which is what Ansible's `ec2_ami` waits for after deregistering.
    fn forgotten(state: &ApiState, region: &str, id: &ImageId) -> Result<bool, ApiError> {
        Ok(state.store.was_deregistered(id.as_str(), region)?)
    }

    /// EC2's quirk: the ids in brackets, one message for one or many.
    fn not_found(_region: &str, missing: &[ImageId]) -> ApiError {
        let ids: Vec<String> = missing.iter().map(ToString::to_string).collect();
        ApiError::images_not_found(&ids)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &Ami) -> Option<&BTreeMap<String, String>> {
        Some(item.tags())
    }

    fn values(name: &str, ami: &Ami, _context: &()) -> Vec<String> {
        let one = |s: &str| vec![s.to_string()];
        let opt = |s: Option<&str>| s.map(str::to_string).into_iter().collect();
        let devices = ami.block_devices();
        let device_values = |f: &dyn Fn(&crate::model::ImageBlockDevice) -> Option<String>| {
            devices.iter().filter_map(f).collect::<Vec<String>>()
        };
        match name {
            "architecture" => one(ami.architecture()),
            "block-device-mapping.delete-on-termination" => {
                device_values(&|d| Some(d.delete_on_termination.to_string()))
            }
            "block-device-mapping.device-name" => device_values(&|d| Some(d.device_name.clone())),
            "block-device-mapping.snapshot-id" => device_values(&|d| d.snapshot_id.clone()),
            "block-device-mapping.volume-size" => {
                device_values(&|d| Some(d.volume_size_gib.to_string()))
            }
            "block-device-mapping.volume-type" => device_values(&|d| Some(d.volume_type.clone())),
            "block-device-mapping.encrypted" => device_values(&|d| Some(d.encrypted.to_string())),
            "creation-date" => vec![ami.creation_date()],
            "description" => opt(ami.description()),
            "ena-support" => one("true"),
            // The catalogue's AMIs run on the free tier's types; ec2d's own are not AWS's.
            "free-tier-eligible" => one(if ami.is_own() { "false" } else { "true" }),
            "hypervisor" => one("xen"),
            "image-allowed" => one("true"),
            "image-id" => one(ami.id()),
            "image-type" => one("machine"),
            "is-public" => one(if ami.is_public() { "true" } else { "false" }),
            "manifest-location" => vec![ami.location()],
            "name" => one(ami.name()),
            "owner-alias" => opt(ami.owner_alias()),
            "owner-id" => one(ami.owner_id()),
            "platform" => opt(ami.platform()),
            "platform-details" => one(ami.platform_details()),
            "root-device-name" => one(ami.root_device_name()),
            "root-device-type" => one("ebs"),
            "source-image-id" => opt(ami.copied_from().map(|(id, _)| id)),
            "source-image-region" => opt(ami.copied_from().map(|(_, region)| region)),
            "source-instance-id" => opt(ami.source_instance_id()),
            "state" => one(ami.state().name()),
            "state-reason-code" => opt(ami.state_reason().map(|r| r.code.as_str())),
            "state-reason-message" => opt(ami.state_reason().map(|r| r.message.as_str())),
            "sriov-net-support" => {
                if ami.is_own() {
                    Vec::new()
                } else {
                    one("simple")
                }
            }
            "usage-operation" => one(ami.usage_operation()),
            "virtualization-type" => one("hvm"),
            _ => Vec::new(),
        }
    }

    /// Oldest first (creation dates as EC2 writes them sort as the times do), then by id.
    fn sort(items: &mut [Ami]) {
        items.sort_by_cached_key(|a| (a.creation_date(), a.id().to_string()));
    }

    fn cursor(item: &Ami) -> String {
        paging::pair_cursor(&item.creation_date(), item.id())
    }

    fn parse_cursor(text: &str) -> Option<(String, String)> {
        let (date, id) = text.split_once('\n')?;
        ImageId::parse(id)
            .is_ok()
            .then(|| (date.to_string(), id.to_string()))
    }

    fn after(item: &Ami, (date, id): &(String, String)) -> bool {
        (item.creation_date().as_str(), item.id()) > (date.as_str(), id.as_str())
    }

    fn render(w: &mut XmlWriter, item: &Ami) {
        render_image(w, item);
    }
}

/// Only AMIs made by CreateImage and CopyImage carry tags: AMIs discovered from Docker tags
/// are observed state that image discovery rewrites, and the public catalogue is static.
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

    /// A deregistered AMI is gone for tags too, though its record waits for the reconciler.
    fn gone(spec: &ImageSpec) -> bool {
        spec.deregistered
    }

    /// An AMI ec2d discovered from a Docker tag, or a public one, exists but keeps no tags.
    fn tag_not_found(state: &ApiState, region: &str, id: &str) -> ApiError {
        let found = ImageId::parse(id)
            .ok()
            .and_then(|id| images::find_ami(state, region, &id).ok().flatten());
        match found {
            Some(Ami::Own(_)) => ApiError::client(
                "UnsupportedOperation",
                format!(
                    "The image '{id}' comes from a Docker tag; ec2d keeps tags only for \
                     images made by CreateImage or CopyImage"
                ),
            ),
            Some(Ami::Public { .. }) => ApiError::client(
                "UnsupportedOperation",
                format!(
                    "The image '{id}' is a public AMI of ec2d's catalogue; ec2d keeps tags \
                     only for images made by CreateImage or CopyImage"
                ),
            ),
            _ => ApiError::images_not_found(&[id.to_string()]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{fixtures, public_amis, ImageState, InstanceId};

    #[test]
    fn values() {
        let mut image =
            fixtures::committed_image(&InstanceId::parse("i-00000001").unwrap(), "web-1");
        image.status.state = Some(ImageState::Available);
        let own = Ami::Own(image);
        assert_eq!(ImageKind::values("name", &own, &()), vec!["web-1"]);
        assert_eq!(ImageKind::values("state", &own, &()), vec!["available"]);
        assert_eq!(
            ImageKind::values("source-instance-id", &own, &()),
            vec!["i-00000001"]
        );
        assert!(ImageKind::values("owner-alias", &own, &()).is_empty());
        assert!(ImageKind::values("block-device-mapping.device-name", &own, &()).is_empty());
        let public = Ami::Public {
            ami: public_amis::find("ami-024f768332f0").unwrap(),
            backing: None,
        };
        assert_eq!(
            ImageKind::values("owner-alias", &public, &()),
            vec!["amazon"]
        );
        assert_eq!(
            ImageKind::values("owner-id", &public, &()),
            vec!["137112412989"]
        );
        assert_eq!(
            ImageKind::values("block-device-mapping.volume-type", &public, &()),
            vec!["gp3"]
        );
        assert!(ImageKind::values("platform", &public, &()).is_empty());
        for name in ImageKind::FILTERS {
            let _ = ImageKind::values(name, &own, &());
            let _ = ImageKind::values(name, &public, &());
        }
    }
}
