//! Tags: EC2's tag rules, `TagSpecification`, the tag filters, and which stored resource an id names for CreateTags, DeleteTags and DescribeTags.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::kind::Kind;
use crate::api::kinds::{ImageKind, InstanceKind, KeyPairKind, SecurityGroupKind};
use crate::model::{ImageId, InstanceId, KeyPairId};
use crate::store::StoreError;

use crate::api::groups::GroupRef;
use crate::api::key_pairs;
use crate::api::{groups, instances};

/// A resource's tags, by key.
pub type Tags = BTreeMap<String, String>;

/// The most tags EC2 lets one resource carry.
pub const MAX_TAGS_PER_RESOURCE: usize = 50;

/// A taggable resource, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `i-…`.
    Instance(InstanceId),
    /// `sg-…`.
    SecurityGroup(String),
    /// `key-…`.
    KeyPair(KeyPairId),
    /// `ami-…`: only AMIs made by CreateImage carry tags; AMIs discovered from Docker tags
    /// are observed state that image discovery rewrites.
    Image(ImageId),
}

impl Resource {
    /// Classifies an id by its prefix, with the `Malformed` error EC2 gives for a bad one and
    /// `InvalidID` for a prefix ec2d keeps no taggable resource under.
    pub fn parse(id: &str) -> Result<Self, ApiError> {
        if id.starts_with(InstanceKind::IDS.prefix) {
            Ok(Self::Instance(InstanceId::parse(id)?))
        } else if id.starts_with(SecurityGroupKind::IDS.prefix) {
            match GroupRef::parse(id)? {
                GroupRef::Id(id) => Ok(Self::SecurityGroup(id)),
                GroupRef::Name(_) => Err(invalid_id(id)),
            }
        } else if id.starts_with(KeyPairKind::IDS.prefix) {
            Ok(Self::KeyPair(KeyPairId::parse(id)?))
        } else if id.starts_with(ImageKind::IDS.prefix) {
            Ok(Self::Image(ImageId::parse(id)?))
        } else {
            Err(invalid_id(id))
        }
    }

    /// The id as the client wrote it.
    pub fn id(&self) -> &str {
        match self {
            Self::Instance(id) => id.as_str(),
            Self::SecurityGroup(id) => id,
            Self::KeyPair(id) => id.as_str(),
            Self::Image(id) => id.as_str(),
        }
    }

    /// DescribeTags' `resourceType`, as the kind declares it.
    pub fn type_name(&self) -> &'static str {
        let declared = match self {
            Self::Instance(_) => InstanceKind::TAG_TYPE,
            Self::SecurityGroup(_) => SecurityGroupKind::TAG_TYPE,
            Self::KeyPair(_) => KeyPairKind::TAG_TYPE,
            Self::Image(_) => ImageKind::TAG_TYPE,
        };
        declared.expect("a taggable kind declares its tag resource type")
    }
}

/// `InvalidID`: no taggable resource has ids like this one (vpc and subnet ids included: the
/// default network is derived from the region and stores nothing to tag).
fn invalid_id(id: &str) -> ApiError {
    ApiError::client("InvalidID", format!("The ID '{id}' is not valid"))
}

/// The `NotFound` error EC2 gives for this kind of resource.
fn not_found(state: &ApiState, region: &str, resource: &Resource) -> ApiError {
    match resource {
        Resource::Instance(id) => ApiError::instances_not_found(&[id.to_string()]),
        Resource::SecurityGroup(id) => GroupRef::Id(id.clone()).not_found(region),
        Resource::KeyPair(id) => key_pairs::not_found(id.as_str()),
        Resource::Image(id) => {
            // An AMI ec2d discovered from a Docker tag exists, but keeps no tags of its own.
            let discovered = state
                .store
                .catalog()
                .get(id.as_str())
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
}

/// `ResourceId.N`, deduplicated, every one classified; at least one is required.
pub fn resource_ids(params: &QueryParams) -> Result<Vec<Resource>, ApiError> {
    let raw = params.list("ResourceId");
    if raw.is_empty() {
        return Err(ApiError::missing_parameter("ResourceId"));
    }
    let mut resources: Vec<Resource> = Vec::with_capacity(raw.len());
    for id in raw {
        let resource = Resource::parse(id)?;
        if !resources.contains(&resource) {
            resources.push(resource);
        }
    }
    Ok(resources)
}

/// The tags of a resource in `region`; `None` when it does not exist there.
pub fn tags_of(
    state: &ApiState,
    region: &str,
    resource: &Resource,
) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    let store = &state.store;
    Ok(match resource {
        Resource::Instance(id) => store
            .instances()
            .get_shared(id.as_str())?
            .filter(|i| i.metadata.namespace == region)
            .map(|i| i.spec.tags.clone()),
        Resource::SecurityGroup(id) => {
            groups::find_group(state, region, &GroupRef::Id(id.clone()))?.map(|g| g.spec.tags)
        }
        Resource::KeyPair(id) => key_pairs::find_by_id(store, region, id)?.map(|k| k.spec.tags),
        Resource::Image(id) => store
            .images()
            .get_shared(id.as_str())?
            .filter(|i| i.metadata.namespace == region)
            .map(|i| i.spec.tags.clone()),
    })
}

/// The tags of a resource that must exist in `region`; its `NotFound` error otherwise.
pub fn existing_tags(
    state: &ApiState,
    region: &str,
    resource: &Resource,
) -> Result<Tags, ApiError> {
    tags_of(state, region, resource)?.ok_or_else(|| not_found(state, region, resource))
}

/// `TagLimitExceeded`: the resource would carry more than [`MAX_TAGS_PER_RESOURCE`] tags.
pub fn tag_limit_exceeded(resource: &Resource) -> ApiError {
    ApiError::client(
        "TagLimitExceeded",
        format!(
            "The maximum number of tags for a resource ({MAX_TAGS_PER_RESOURCE}) has been \
             exceeded for '{}'",
            resource.id()
        ),
    )
}

/// Why a tag write did not happen: the request's fault, or the store's (a resource deleted
/// between the check and the write reads as EC2's `NotFound` for its kind).
enum WriteError {
    Api(ApiError),
    Store(StoreError),
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Changes a resource's tags with the store's compare-and-swap. Tags ask nothing of the
/// reconciler, so the generation stays: an instance never reads `pending` for being tagged.
/// `change` returns whether it changed anything; a result over [`MAX_TAGS_PER_RESOURCE`] is
/// `TagLimitExceeded` and writes nothing.
pub fn change_tags(
    state: &ApiState,
    region: &str,
    resource: &Resource,
    change: impl Fn(&mut BTreeMap<String, String>) -> bool,
) -> Result<(), ApiError> {
    let apply = |tags: &mut BTreeMap<String, String>, namespace: &str| {
        if namespace != region {
            return Err(WriteError::Api(not_found(state, region, resource)));
        }
        if !change(tags) {
            return Ok(false);
        }
        if tags.len() > MAX_TAGS_PER_RESOURCE {
            return Err(WriteError::Api(tag_limit_exceeded(resource)));
        }
        Ok(true)
    };
    let store = &state.store;
    let written = match resource {
        Resource::Instance(id) => store
            .instances()
            .update_spec_same_generation(id.as_str(), |o| {
                apply(&mut o.spec.tags, &o.metadata.namespace)
            })
            .map(drop),
        Resource::SecurityGroup(id) => {
            // The region's `default` group is stored on first use.
            groups::ensure_default_group(state, region)?;
            store
                .security_groups()
                .update_spec_same_generation(id, |o| apply(&mut o.spec.tags, &o.metadata.namespace))
                .map(drop)
        }
        Resource::KeyPair(id) => store
            .key_pairs()
            .update_spec_same_generation(id.as_str(), |o| {
                apply(&mut o.spec.tags, &o.metadata.namespace)
            })
            .map(drop),
        Resource::Image(id) => store
            .images()
            .update_spec_same_generation(id.as_str(), |o| {
                apply(&mut o.spec.tags, &o.metadata.namespace)
            })
            .map(drop),
    };
    written.map_err(|e| match e {
        WriteError::Api(e) => e,
        WriteError::Store(StoreError::NotFound { .. }) => not_found(state, region, resource),
        WriteError::Store(other) => other.into(),
    })
}

/// Every tagged resource of the region and its tags, in id order.
pub fn region_tags(state: &ApiState, region: &str) -> Result<Vec<(Resource, Tags)>, ApiError> {
    let mut all = Vec::new();
    for instance in instances::region_instances(state, region)? {
        if !instance.spec.tags.is_empty() {
            let id = InstanceId::parse(&instance.metadata.name)?;
            all.push((Resource::Instance(id), instance.spec.tags.clone()));
        }
    }
    for group in groups::region_groups(state, region)? {
        if !group.spec.tags.is_empty() {
            all.push((
                Resource::SecurityGroup(group.metadata.name.clone()),
                group.spec.tags,
            ));
        }
    }
    for key_pair in key_pairs::region_key_pairs(&state.store, region)? {
        if !key_pair.spec.tags.is_empty() {
            let id = KeyPairId::parse(&key_pair.metadata.name)?;
            all.push((Resource::KeyPair(id), key_pair.spec.tags));
        }
    }
    for image in state.store.images().list_shared()?.objects {
        if image.metadata.namespace == region && !image.spec.tags.is_empty() {
            let id = ImageId::parse(&image.metadata.name)?;
            all.push((Resource::Image(id), image.spec.tags.clone()));
        }
    }
    all.sort_by(|a, b| a.0.id().cmp(b.0.id()));
    Ok(all)
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
