//! Tags: EC2's tag rules, `TagSpecification`, the tag filters, and which stored resource an id names for CreateTags, DeleteTags and DescribeTags.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::error::ApiError;
use crate::api::kind::Kind;
use crate::api::kinds::security_group_rule;
use crate::api::kinds::{
    AddressKind, ImageKind, InstanceKind, InternetGatewayKind, KeyPairKind, LaunchTemplateKind,
    RouteTableKind, SecurityGroupKind, SecurityGroupRuleKind, SnapshotKind, SubnetKind, VolumeKind,
    VpcKind,
};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::Object;
use crate::store::{SpecStore, Specs, StoreError};

/// A resource's tags, by key.
pub type Tags = BTreeMap<String, String>;

/// The most tags EC2 lets one resource carry (its own `aws:` tags not counted).
pub const MAX_TAGS_PER_RESOURCE: usize = 50;

/// The prefix of the tags EC2 sets itself (`aws:ec2launchtemplate:id`): users cannot create,
/// change or delete them, and they do not count against [`MAX_TAGS_PER_RESOURCE`].
pub const RESERVED_PREFIX: &str = "aws:";

/// How many of `tags` count against [`MAX_TAGS_PER_RESOURCE`]: those the user set.
pub fn user_tag_count(tags: &Tags) -> usize {
    tags.keys()
        .filter(|k| !k.starts_with(RESERVED_PREFIX))
        .count()
}

/// A kind whose stored records carry tags. Declaring it is all CreateTags, DeleteTags,
/// DescribeTags and `TagSpecification` need: [`TAGGABLE`] lists the kinds that do.
pub trait Tagged: Kind {
    /// The stored spec.
    type Spec: Serialize + DeserializeOwned + Clone;
    /// The stored status.
    type Status: Serialize + DeserializeOwned + Default + Clone;

    /// The kind's store collection.
    fn collection(store: &SpecStore) -> Specs<'_, Self::Spec, Self::Status>;
    /// The tags in a spec.
    fn spec_tags(spec: &Self::Spec) -> &Tags;
    /// The tags in a spec, to change them.
    fn spec_tags_mut(spec: &mut Self::Spec) -> &mut Tags;
    /// Checks an id's shape (the kind's `Malformed` error).
    fn parse_tag_id(id: &str) -> Result<String, ApiError>;

    /// Whether a stored record is gone for the API though still stored (a deregistered AMI
    /// waiting for the reconciler): it has no tags to read or write.
    fn gone(_spec: &Self::Spec) -> bool {
        false
    }
    /// Whether a stored record is gone for the API, its metadata included (a snapshot
    /// DeleteSnapshot marked, waiting for the reconciler): by default [`Tagged::gone`].
    fn gone_record(object: &Object<Self::Spec, Self::Status>) -> bool {
        Self::gone(&object.spec)
    }
    /// The tags of the record `id` of `region`; `None` when there is none.
    fn read_tags(state: &ApiState, region: &str, id: &str) -> Result<Option<Tags>, ApiError> {
        Ok(Self::collection(&state.store)
            .get_shared(id)?
            .filter(|o| o.metadata.namespace == region && !Self::gone_record(o))
            .map(|o| Self::spec_tags(&o.spec).clone()))
    }
    /// What a tag write on a missing record answers.
    fn tag_not_found(_state: &ApiState, _region: &str, id: &str) -> ApiError {
        Self::IDS.not_found(&[id])
    }
    /// Runs before a tag write (a derived record is stored first).
    fn prepare_tag_write(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }
    /// Runs before a tag write on `id`: [`Tagged::prepare_tag_write`] unless the kind stores
    /// a derived record only when the write names it (the default VPC).
    fn prepare_tag_write_on(state: &ApiState, region: &str, id: &str) -> Result<(), ApiError> {
        let _ = id;
        Self::prepare_tag_write(state, region)
    }
}

/// One taggable kind, as the tag actions dispatch on it.
#[derive(Debug)]
pub struct Taggable {
    /// `ResourceType` (`instance`, `security-group`, …).
    pub resource_type: &'static str,
    prefix: &'static str,
    parse: fn(&str) -> Result<String, ApiError>,
    read: fn(&ApiState, &str, &str) -> Result<Option<Tags>, ApiError>,
    not_found: fn(&ApiState, &str, &str) -> ApiError,
    change: ChangeFn,
    list: ListFn,
}

/// Every tagged record of a region: `(state, region)` to `(id, tags)`.
type ListFn = fn(&ApiState, &str) -> Result<Vec<(String, Tags)>, ApiError>;

/// Changes one record's tags: `(state, region, id, change)`.
type ChangeFn = fn(&ApiState, &str, &str, &dyn Fn(&mut Tags) -> bool) -> Result<(), ApiError>;

impl Taggable {
    /// The entry of kind `K`.
    pub const fn of<K: Tagged>() -> Self {
        Self {
            resource_type: match K::TAG_TYPE {
                Some(t) => t,
                None => panic!("a tagged kind declares its TAG_TYPE"),
            },
            prefix: K::IDS.prefix,
            parse: K::parse_tag_id,
            read: K::read_tags,
            not_found: K::tag_not_found,
            change: change_tags_of::<K>,
            list: tags_in_region::<K>,
        }
    }

    /// Security group rules: kept in their group's record, so reached through it by rule id.
    const fn security_group_rules() -> Self {
        Self {
            resource_type: "security-group-rule",
            prefix: SecurityGroupRuleKind::IDS.prefix,
            parse: SecurityGroupRuleKind::check_id,
            read: security_group_rule::read_rule_tags,
            not_found: security_group_rule::rule_tag_not_found,
            change: security_group_rule::change_rule_tags,
            list: security_group_rule::region_rule_tags,
        }
    }
}

/// Every kind that takes tags.
pub static TAGGABLE: [Taggable; 13] = [
    Taggable::of::<AddressKind>(),
    Taggable::of::<InstanceKind>(),
    Taggable::of::<SecurityGroupKind>(),
    Taggable::of::<KeyPairKind>(),
    Taggable::of::<ImageKind>(),
    Taggable::of::<LaunchTemplateKind>(),
    Taggable::of::<VpcKind>(),
    Taggable::of::<SubnetKind>(),
    Taggable::security_group_rules(),
    Taggable::of::<InternetGatewayKind>(),
    Taggable::of::<RouteTableKind>(),
    Taggable::of::<SnapshotKind>(),
    Taggable::of::<VolumeKind>(),
];

/// A taggable resource, by id.
#[derive(Debug, Clone)]
pub struct Resource {
    kind: &'static Taggable,
    id: String,
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Resource {}

impl Resource {
    /// Classifies an id by its prefix, with the `Malformed` error EC2 gives for a bad one and
    /// `InvalidID` for a prefix ec2d keeps no taggable resource under (the derived default VPC
    /// and subnets store nothing to tag: their ids answer the kind's `NotFound`).
    pub fn parse(id: &str) -> Result<Self, ApiError> {
        let kind = TAGGABLE
            .iter()
            .find(|k| id.starts_with(k.prefix))
            .ok_or_else(|| invalid_id(id))?;
        Ok(Self {
            kind,
            id: (kind.parse)(id)?,
        })
    }

    /// The id as the client wrote it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// DescribeTags' `resourceType`, as the kind declares it.
    pub fn type_name(&self) -> &'static str {
        self.kind.resource_type
    }
}

/// `InvalidID`: no taggable resource has ids like this one.
fn invalid_id(id: &str) -> ApiError {
    ApiError::client("InvalidID", format!("The ID '{id}' is not valid"))
}

/// `ResourceId.N`, deduplicated, every one classified; at least one is required. EC2 names the
/// missing list by its internal name, `resourceIdSet` (as real EC2 answered in fog/fog#591 and
/// awsdocs/aws-doc-sdk-examples#1302).
pub fn resource_ids(params: &QueryParams) -> Result<Vec<Resource>, ApiError> {
    let raw = params.list("ResourceId");
    if raw.is_empty() {
        return Err(ApiError::missing_parameter("resourceIdSet"));
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
) -> Result<Option<Tags>, ApiError> {
    (resource.kind.read)(state, region, &resource.id)
}

/// The tags of a resource that must exist in `region`; its `NotFound` error otherwise.
pub fn existing_tags(
    state: &ApiState,
    region: &str,
    resource: &Resource,
) -> Result<Tags, ApiError> {
    tags_of(state, region, resource)?
        .ok_or_else(|| (resource.kind.not_found)(state, region, &resource.id))
}

/// `TagLimitExceeded`: the resource would carry more than [`MAX_TAGS_PER_RESOURCE`] tags.
pub fn tag_limit_exceeded(id: &str) -> ApiError {
    ApiError::client(
        "TagLimitExceeded",
        format!(
            "The maximum number of tags for a resource ({MAX_TAGS_PER_RESOURCE}) has been \
             exceeded for '{id}'"
        ),
    )
}

/// Changes a resource's tags with the store's compare-and-swap. Tags ask nothing of the
/// reconciler, so the generation stays: an instance never reads `pending` for being tagged.
/// `change` returns whether it changed anything; a result over [`MAX_TAGS_PER_RESOURCE`] is
/// `TagLimitExceeded` and writes nothing.
pub fn change_tags(
    state: &ApiState,
    region: &str,
    resource: &Resource,
    change: impl Fn(&mut Tags) -> bool,
) -> Result<(), ApiError> {
    (resource.kind.change)(state, region, &resource.id, &change)
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

/// Applies a tag change to a resource's tags: whether it changed anything, or
/// `TagLimitExceeded` when the result is over [`MAX_TAGS_PER_RESOURCE`] (the caller then
/// writes nothing).
pub fn apply_tag_change(
    tags: &mut Tags,
    change: &dyn Fn(&mut Tags) -> bool,
    id: &str,
) -> Result<bool, ApiError> {
    if !change(tags) {
        return Ok(false);
    }
    if user_tag_count(tags) > MAX_TAGS_PER_RESOURCE {
        return Err(tag_limit_exceeded(id));
    }
    Ok(true)
}

fn change_tags_of<K: Tagged>(
    state: &ApiState,
    region: &str,
    id: &str,
    change: &dyn Fn(&mut Tags) -> bool,
) -> Result<(), ApiError> {
    K::prepare_tag_write_on(state, region, id)?;
    K::collection(&state.store)
        .update_spec_same_generation(id, |o| {
            if o.metadata.namespace != region || K::gone_record(o) {
                return Err(WriteError::Api(K::tag_not_found(state, region, id)));
            }
            apply_tag_change(K::spec_tags_mut(&mut o.spec), change, id).map_err(WriteError::Api)
        })
        .map(drop)
        .map_err(|e| match e {
            WriteError::Api(e) => e,
            WriteError::Store(StoreError::NotFound { .. }) => K::tag_not_found(state, region, id),
            WriteError::Store(other) => other.into(),
        })
}

fn tags_in_region<K: Tagged>(
    state: &ApiState,
    region: &str,
) -> Result<Vec<(String, Tags)>, ApiError> {
    Ok(K::collection(&state.store)
        .list_shared()?
        .objects
        .into_iter()
        .filter(|o| o.metadata.namespace == region && !K::gone_record(o))
        .filter(|o| !K::spec_tags(&o.spec).is_empty())
        .map(|o| (o.metadata.name.clone(), K::spec_tags(&o.spec).clone()))
        .collect())
}

/// Every tagged resource of the region and its tags, in id order.
pub fn region_tags(state: &ApiState, region: &str) -> Result<Vec<(Resource, Tags)>, ApiError> {
    let mut all = Vec::new();
    for kind in &TAGGABLE {
        for (id, tags) in (kind.list)(state, region)? {
            all.push((Resource { kind, id }, tags));
        }
    }
    all.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    Ok(all)
}

/// The longest tag key and value EC2 accepts.
const MAX_TAG_KEY: usize = 127;
const MAX_TAG_VALUE: usize = 256;

/// The tags of every `TagSpecification.N` whose `ResourceType` is `taggable[0]`, the resource
/// the action stores. The other types of `taggable` are those the action can tag in EC2 (its
/// API reference's list): their specifications are checked and ignored, as ec2d has no such
/// resources (RunInstances' volumes, network interfaces). Any other type is refused as EC2
/// refuses it (`InvalidParameterValue`, `'<type>' is not a valid taggable resource type for this
/// operation.`, as real EC2 answered in aws/aws-cli#2865, boto/boto3#1806 and
/// aws/aws-sdk-ruby#1718). A later duplicate key wins.
pub fn tag_specifications(
    params: &QueryParams,
    taggable: &[&str],
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut tags = BTreeMap::new();
    for (i, spec) in params.structs("TagSpecification").iter().enumerate() {
        let Some(kind) = spec.get("ResourceType").filter(|k| !k.is_empty()) else {
            return Err(ApiError::invalid_value(
                "Tag specification resource type must have a value",
            ));
        };
        if !taggable.contains(&kind) {
            return Err(ApiError::invalid_value(format!(
                "'{kind}' is not a valid taggable resource type for this operation."
            )));
        }
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
            if taggable.first() == Some(&kind) {
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
    if key.starts_with(RESERVED_PREFIX) {
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
        let tags = tag_specifications(&q, &["instance", "volume"]).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags["Name"], "web");
        assert_eq!(tags["empty"], "");
    }

    #[test]
    fn a_type_the_action_cannot_tag_is_refused() {
        let q = QueryParams::from_query(
            "TagSpecification.1.ResourceType=volume&TagSpecification.1.Tag.1.Key=v",
        );
        let e = tag_specifications(&q, &["security-group"]).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(
            e.message,
            "'volume' is not a valid taggable resource type for this operation."
        );
    }

    #[test]
    fn tag_rules() {
        let q = QueryParams::from_query("TagSpecification.1.Tag.1.Key=a");
        assert_eq!(
            tag_specifications(&q, &["instance"]).unwrap_err().message,
            "Tag specification resource type must have a value"
        );
        let q = QueryParams::from_query(
            "TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=aws:x",
        );
        assert_eq!(
            tag_specifications(&q, &["instance"]).unwrap_err().code,
            "InvalidParameterValue"
        );
        let q = QueryParams::from_query(
            "TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Value=x",
        );
        assert_eq!(
            tag_specifications(&q, &["instance"]).unwrap_err().code,
            "MissingParameter"
        );
        let long = "k".repeat(128);
        let q = QueryParams::from_query(&format!(
            "TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key={long}"
        ));
        assert!(tag_specifications(&q, &["instance"]).is_err());
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
