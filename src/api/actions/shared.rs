//! Helpers several actions share: id lists, region-scoped store reads, AMI lookup, `TagSpecification` parsing, page sizes and the bare `return` answer.

use std::collections::{BTreeMap, HashSet};

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::xml::XmlWriter;
use crate::api::ApiState;
use crate::model::{
    display_state, Image, ImageId, ImageSource, Instance, InstanceId, InstanceState,
};

/// `DryRun`, defaulting to false.
pub fn dry_run(params: &QueryParams) -> Result<bool, ApiError> {
    Ok(params.bool("DryRun")?.unwrap_or(false))
}

/// Fails with `DryRunOperation` when the flag is set: call after validation, before any write.
pub fn check_dry_run(dry_run: bool) -> Result<(), ApiError> {
    if dry_run {
        Err(ApiError::dry_run())
    } else {
        Ok(())
    }
}

/// `InstanceId.N`, parsed (`InvalidInstanceID.Malformed` on the first bad one) and deduplicated
/// in request order. `required` makes an empty list `MissingParameter`.
pub fn instance_ids(params: &QueryParams, required: bool) -> Result<Vec<InstanceId>, ApiError> {
    let raw = params.list("InstanceId");
    if raw.is_empty() && required {
        return Err(ApiError::missing_parameter("InstanceId"));
    }
    let mut seen = HashSet::new();
    let mut ids = Vec::with_capacity(raw.len());
    for s in raw {
        let id = InstanceId::parse(s)?;
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The state a client sees for an instance.
pub fn shown_state(instance: &Instance) -> InstanceState {
    display_state(&instance.metadata, &instance.spec, &instance.status)
}

/// The instances a Describe* call asks about: those with these ids (each must exist), or
/// every instance of the region when no id is given.
pub fn instances_by_ids_or_region(
    state: &ApiState,
    region: &str,
    ids: &[InstanceId],
) -> Result<Vec<std::sync::Arc<Instance>>, ApiError> {
    if ids.is_empty() {
        region_instances(state, region)
    } else {
        load_instances(state, region, ids)
    }
}

/// `<return>true</return>`: the whole answer of actions that only succeed or fail.
pub fn render_return_true() -> String {
    let mut w = XmlWriter::new();
    w.field("return", true);
    w.finish()
}

/// `MaxResults` as the Describe* calls that page take it: 5 to 1000. `conflict` is the
/// `InvalidParameterCombination` message when the request also names resources, which EC2
/// refuses together with a page size.
pub fn max_results(
    params: &QueryParams,
    conflict: Option<&str>,
) -> Result<Option<usize>, ApiError> {
    let Some(n) = params.int("MaxResults")? else {
        return Ok(None);
    };
    if let Some(message) = conflict {
        return Err(ApiError::invalid_combination(message));
    }
    if !(5..=1000).contains(&n) {
        return Err(ApiError::invalid_value(format!(
            "Value ( {n} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
        )));
    }
    Ok(Some(usize::try_from(n).expect("within 5..=1000")))
}

/// Reads the instances with these ids in `region`; every id missing here (or living in another
/// region) is reported at once, in AWS's singular/plural wording.
pub fn load_instances(
    state: &ApiState,
    region: &str,
    ids: &[InstanceId],
) -> Result<Vec<std::sync::Arc<Instance>>, ApiError> {
    let mut found = Vec::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in ids {
        // Shared with the store's decode cache: no deep copy, and DescribeInstances by id (a
        // waiter's poll) reuses the instance's rendered XML while it is unchanged.
        match state.store.instances().get_shared(id.as_str())? {
            Some(instance) if instance.metadata.namespace == region => found.push(instance),
            _ => missing.push(id.to_string()),
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(ApiError::instances_not_found(&missing))
    }
}

/// Every readable instance of `region` (corrupt records are skipped; the store logs them).
/// Shared with the store's decode cache: listing copies no instance.
pub fn region_instances(
    state: &ApiState,
    region: &str,
) -> Result<Vec<std::sync::Arc<Instance>>, ApiError> {
    let listing = state.store.instances().list_shared()?;
    Ok(listing
        .objects
        .into_iter()
        .filter(|i| i.metadata.namespace == region)
        .collect())
}

/// Whether an AMI is visible from `region`: Docker-discovered AMIs everywhere, CreateImage
/// records only in the region that made them.
fn visible_in(image: &Image, region: &str) -> bool {
    matches!(image.spec.source, ImageSource::Docker) || image.metadata.namespace == region
}

/// Looks an AMI up as the client in `region` sees it.
pub fn find_image(state: &ApiState, region: &str, id: &ImageId) -> Result<Option<Image>, ApiError> {
    match state.store.find_image(id.as_str())? {
        Some(image) if visible_in(&image, region) => Ok(Some(image)),
        // A CreateImage record of another region may shadow a catalog entry with the same id.
        Some(_) => Ok(state.store.catalog().get(id.as_str())?),
        None => Ok(None),
    }
}

/// Every AMI visible from `region`: CreateImage records of the region plus the Docker catalog,
/// one per id, the CreateImage record winning.
pub fn region_images(state: &ApiState, region: &str) -> Result<Vec<Image>, ApiError> {
    let mut by_id: BTreeMap<String, Image> = BTreeMap::new();
    for image in state.store.catalog().list()?.objects {
        by_id.insert(image.metadata.name.clone(), image);
    }
    for image in state.store.images().list()?.objects {
        if image.metadata.namespace == region {
            by_id.insert(image.metadata.name.clone(), image);
        }
    }
    Ok(by_id.into_values().collect())
}

/// The longest tag key and value EC2 accepts.
const MAX_TAG_KEY: usize = 127;
const MAX_TAG_VALUE: usize = 256;

/// The tags of every `TagSpecification.N` whose `ResourceType` is `resource_type`; specifications
/// for other resource types (volumes, network interfaces) are accepted and ignored, as ec2d has
/// no such resources. A later duplicate key wins.
pub fn tag_specifications(
    params: &QueryParams,
    resource_type: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut tags = BTreeMap::new();
    for (i, spec) in params.structs("TagSpecification").iter().enumerate() {
        let Some(kind) = spec.get("ResourceType").filter(|k| !k.is_empty()) else {
            return Err(ApiError::invalid_value(
                "Tag specification resource type must have a value",
            ));
        };
        for (j, tag) in spec.structs("Tag").iter().enumerate() {
            let key = tag.get("Key").ok_or_else(|| {
                ApiError::missing_parameter(&format!(
                    "TagSpecification.{}.Tag.{}.Key",
                    i + 1,
                    j + 1
                ))
            })?;
            let value = tag.get("Value").unwrap_or_default();
            validate_tag(key, value)?;
            if kind == resource_type {
                tags.insert(key.to_string(), value.to_string());
            }
        }
    }
    Ok(tags)
}

/// EC2's tag rules: a key of 1..=127 characters not starting with `aws:`, a value of at most 256.
pub fn validate_tag(key: &str, value: &str) -> Result<(), ApiError> {
    let key_len = key.chars().count();
    if key_len == 0 || key_len > MAX_TAG_KEY {
        return Err(ApiError::invalid_value(format!(
            "Tag key must be between 1 and {MAX_TAG_KEY} characters long"
        )));
    }
    if key.starts_with("aws:") {
        return Err(ApiError::invalid_value(
            "Tag keys starting with 'aws:' are reserved for internal use",
        ));
    }
    if value.chars().count() > MAX_TAG_VALUE {
        return Err(ApiError::invalid_value(format!(
            "Tag value must be at most {MAX_TAG_VALUE} characters long"
        )));
    }
    Ok(())
}

/// The values of the generic tag filters (`tag:<key>`, `tag-key`, `tag-value`) for a resource,
/// or `None` when `name` is not a tag filter.
pub fn tag_filter_values(name: &str, tags: &BTreeMap<String, String>) -> Option<Vec<String>> {
    if let Some(key) = name.strip_prefix("tag:") {
        return Some(tags.get(key).cloned().into_iter().collect());
    }
    match name {
        "tag-key" => Some(tags.keys().cloned().collect()),
        "tag-value" => Some(tags.values().cloned().collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_parsed_and_deduplicated() {
        let q = QueryParams::from_query(
            "InstanceId.1=i-0000000b&InstanceId.2=i-0000000a&InstanceId.3=i-0000000b",
        );
        let ids: Vec<_> = instance_ids(&q, true)
            .unwrap()
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ids, vec!["i-0000000b", "i-0000000a"]);
        let q = QueryParams::from_query("InstanceId.1=i-000000cc&InstanceId.2=bogus");
        assert_eq!(
            instance_ids(&q, true).unwrap_err().code,
            "InvalidInstanceID.Malformed"
        );
        let e = instance_ids(&QueryParams::default(), true).unwrap_err();
        assert_eq!(
            e.message,
            "The request must contain the parameter InstanceId"
        );
        assert!(instance_ids(&QueryParams::default(), false)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn tag_specifications_keep_only_the_resource_type() {
        let q = QueryParams::from_query(
            "TagSpecification.1.ResourceType=volume&TagSpecification.1.Tag.1.Key=v&TagSpecification.1.Tag.1.Value=1\
             &TagSpecification.2.ResourceType=instance&TagSpecification.2.Tag.1.Key=Name&TagSpecification.2.Tag.1.Value=web\
             &TagSpecification.2.Tag.2.Key=empty",
        );
        let tags = tag_specifications(&q, "instance").unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags["Name"], "web");
        assert_eq!(tags["empty"], "");
    }

    #[test]
    fn tag_rules() {
        let q = QueryParams::from_query("TagSpecification.1.Tag.1.Key=a");
        assert_eq!(
            tag_specifications(&q, "instance").unwrap_err().message,
            "Tag specification resource type must have a value"
        );
        let q = QueryParams::from_query(
            "TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=aws:x",
        );
        assert_eq!(
            tag_specifications(&q, "instance").unwrap_err().code,
            "InvalidParameterValue"
        );
        let q = QueryParams::from_query(
            "TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Value=x",
        );
        assert_eq!(
            tag_specifications(&q, "instance").unwrap_err().code,
            "MissingParameter"
        );
        let long = "k".repeat(128);
        let q = QueryParams::from_query(&format!(
            "TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key={long}"
        ));
        assert!(tag_specifications(&q, "instance").is_err());
    }

    #[test]
    fn tag_filters() {
        let tags: BTreeMap<String, String> = [("Name".to_string(), "web".to_string())].into();
        assert_eq!(
            tag_filter_values("tag:Name", &tags),
            Some(vec!["web".to_string()])
        );
        assert_eq!(tag_filter_values("tag:Other", &tags), Some(vec![]));
        assert_eq!(
            tag_filter_values("tag-key", &tags),
            Some(vec!["Name".to_string()])
        );
        assert_eq!(tag_filter_values("instance-id", &tags), None);
    }
}
