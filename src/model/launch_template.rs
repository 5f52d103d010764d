//! The LaunchTemplate kind: a named, versioned set of launch parameters, its data as a tree of EC2 Query parameters, and how versions resolve and data merges.
//!
//! A version's data is kept the way the client sent it, as the tree its Query parameters
//! spell (`SecurityGroupId.1=sg-…` is the list `SecurityGroupId`, `MetadataOptions.HttpTokens`
//! a member of the structure `MetadataOptions`), not as typed fields: the names are RunInstances'
//! own, so a launch turns the data back into RunInstances parameters and every parameter
//! RunInstances learns flows through templates with no code here.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ids::LaunchTemplateId;
use super::meta::{Object, ObjectMeta, API_VERSION};
use super::Timestamp;

/// A launch template document: the template and all its versions.
pub type LaunchTemplate = Object<LaunchTemplateSpec, LaunchTemplateStatus>;

/// The kind name stored in `kind`.
pub const LAUNCH_TEMPLATE_KIND: &str = "LaunchTemplate";

/// The tag key every instance launched from a template carries: the template's id.
pub const TEMPLATE_ID_TAG: &str = "aws:ec2launchtemplate:id";

/// The tag key every instance launched from a template carries: the version it was launched from.
pub const TEMPLATE_VERSION_TAG: &str = "aws:ec2launchtemplate:version";

/// One value of a version's data: a scalar as its wire text, a list (`Name.N`, in index
/// order) or a structure (`Name.Member`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DataValue {
    /// A string, number, boolean or timestamp, as sent (booleans canonical: `true`/`false`).
    Text(String),
    /// A list; EC2 numbers its members from 1, the list keeps their order.
    List(Vec<DataValue>),
    /// A structure, by member name.
    Struct(BTreeMap<String, DataValue>),
}

/// A version's launch parameters: the tree of `LaunchTemplateData.*` parameters, by
/// top-level name (`ImageId`, `SecurityGroupId`, `MetadataOptions`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct LaunchTemplateData(pub BTreeMap<String, DataValue>);

/// The lists whose members EC2 merges one by one, by a key member, when a launch (or a new
/// version from a source version) names some of them: the launch template user guide's
/// "complex structure ... plus any additional nested parameters" (a tag replaces the tag of
/// its key, a block device mapping the mapping of its device). Every other list given
/// replaces the list it overrides. Paths name structure members, list members add nothing.
const MERGED_BY_KEY: &[(&str, &str)] = &[
    ("TagSpecification", "ResourceType"),
    ("TagSpecification.Tag", "Key"),
    ("BlockDeviceMapping", "DeviceName"),
    ("NetworkInterface", "DeviceIndex"),
];

/// The largest list index a data parameter may carry (`SecurityGroupId.1000`). SDKs number
/// list members from 1, and EC2's lists in launch template data are short (50 tags per
/// resource, a few groups, interfaces, devices), so 1 to 1000 takes every request EC2 takes
/// while keeping an index a small number: one past `u64` must never become a name.
pub const MAX_LIST_INDEX: u64 = 1000;

/// Whether a parameter segment is spelled as a list index (decimal digits only).
pub fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

/// The list index a segment names, when it is one EC2 takes: 1 to [`MAX_LIST_INDEX`].
pub fn list_index(segment: &str) -> Option<u64> {
    if !is_index(segment) {
        return None;
    }
    segment
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=MAX_LIST_INDEX).contains(n))
}

/// A tree being built from parameters: lists keep their EC2 indexes until the end.
#[derive(Default)]
enum Node {
    #[default]
    Empty,
    Leaf(String),
    List(BTreeMap<u64, Node>),
    Struct(BTreeMap<String, Node>),
}

impl Node {
    /// Puts `value` at the dotted path `segments`; a decimal segment is a list index. The first
    /// value of a path wins (as `QueryParams` reads repeated keys), and a path that disagrees
    /// with the shape already built (`A=1` then `A.B=2`) is dropped, as is one with an index
    /// out of 1 to [`MAX_LIST_INDEX`] (the API refuses those first): digits are never a member name.
    fn insert(&mut self, segments: &[&str], value: &str) {
        let Some((first, rest)) = segments.split_first() else {
            if matches!(self, Self::Empty) {
                *self = Self::Leaf(value.to_string());
            }
            return;
        };
        let index = match (is_index(first), list_index(first)) {
            (true, None) => return,
            (_, index) => index,
        };
        match (index, &mut *self) {
            (Some(_), Self::Empty) => *self = Self::List(BTreeMap::new()),
            (None, Self::Empty) => *self = Self::Struct(BTreeMap::new()),
            _ => {}
        }
        match (index, self) {
            (Some(n), Self::List(items)) => items.entry(n).or_default().insert(rest, value),
            (None, Self::Struct(members)) => members
                .entry((*first).to_string())
                .or_default()
                .insert(rest, value),
            _ => {}
        }
    }

    fn finish(self) -> Option<DataValue> {
        match self {
            Self::Empty => None,
            Self::Leaf(text) => Some(DataValue::Text(text)),
            Self::List(items) => Some(DataValue::List(
                items.into_values().filter_map(Self::finish).collect(),
            )),
            Self::Struct(members) => Some(DataValue::Struct(
                members
                    .into_iter()
                    .filter_map(|(k, v)| v.finish().map(|v| (k, v)))
                    .collect(),
            )),
        }
    }
}

impl LaunchTemplateData {
    /// The tree of Query parameters given relative to the data (`ImageId`,
    /// `SecurityGroupId.1`, `TagSpecification.1.Tag.1.Key`).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut root = BTreeMap::<String, Node>::new();
        for (key, value) in pairs {
            let segments: Vec<&str> = key.split('.').collect();
            let (first, rest) = segments.split_first().expect("split yields one part");
            root.entry((*first).to_string())
                .or_default()
                .insert(rest, value);
        }
        Self(
            root.into_iter()
                .filter_map(|(k, v)| v.finish().map(|v| (k, v)))
                .collect(),
        )
    }

    /// The Query parameters the tree spells, lists numbered from 1.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        fn walk(prefix: &str, value: &DataValue, out: &mut Vec<(String, String)>) {
            match value {
                DataValue::Text(text) => out.push((prefix.to_string(), text.clone())),
                DataValue::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        walk(&format!("{prefix}.{}", i + 1), item, out);
                    }
                }
                DataValue::Struct(members) => {
                    for (name, member) in members {
                        walk(&format!("{prefix}.{name}"), member, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (name, value) in &self.0 {
            walk(name, value, &mut out);
        }
        out
    }

    /// Whether no parameter is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A top-level scalar (`ImageId`), if set.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(DataValue::Text(text)) => Some(text),
            _ => None,
        }
    }

    /// Every scalar at a dotted path of member names, through lists (`NetworkInterface.SubnetId`
    /// gives each interface's subnet).
    pub fn values_at(&self, path: &str) -> Vec<&str> {
        fn collect<'a>(value: &'a DataValue, path: &[&str], out: &mut Vec<&'a str>) {
            match (value, path.split_first()) {
                (DataValue::Text(text), None) => out.push(text),
                (DataValue::List(items), _) => {
                    for item in items {
                        collect(item, path, out);
                    }
                }
                (DataValue::Struct(members), Some((first, rest))) => {
                    if let Some(member) = members.get(*first) {
                        collect(member, rest, out);
                    }
                }
                _ => {}
            }
        }
        let segments: Vec<&str> = path.split('.').collect();
        let mut out = Vec::new();
        if let Some((first, rest)) = segments.split_first() {
            if let Some(value) = self.0.get(*first) {
                collect(value, rest, &mut out);
            }
        }
        out
    }

    /// This data with `over` laid on top, as EC2 applies a launch's own parameters to a
    /// template's (and a new version's to its source version's): a scalar or plain list given
    /// replaces the one below, a structure gets the members given replaced or added, and the
    /// keyed lists ([`MERGED_BY_KEY`]) get their members merged by key.
    pub fn overlaid_with(&self, over: &Self) -> Self {
        let mut merged = self.0.clone();
        for (name, value) in &over.0 {
            let value = match merged.get(name) {
                Some(base) => merge(name, base, value),
                None => value.clone(),
            };
            merged.insert(name.clone(), value);
        }
        Self(merged)
    }
}

/// `over` laid on `base` at the member path `path`.
fn merge(path: &str, base: &DataValue, over: &DataValue) -> DataValue {
    match (base, over) {
        (DataValue::Struct(base), DataValue::Struct(over)) => {
            let mut members = base.clone();
            for (name, value) in over {
                let value = match members.get(name) {
                    Some(below) => merge(&format!("{path}.{name}"), below, value),
                    None => value.clone(),
                };
                members.insert(name.clone(), value);
            }
            DataValue::Struct(members)
        }
        (DataValue::List(base), DataValue::List(over)) => {
            let Some((_, key)) = MERGED_BY_KEY.iter().find(|(p, _)| *p == path) else {
                return DataValue::List(over.clone());
            };
            let key_of = |item: &DataValue| match item {
                DataValue::Struct(members) => match members.get(*key) {
                    Some(DataValue::Text(text)) => Some(text.clone()),
                    _ => None,
                },
                _ => None,
            };
            let mut items = base.clone();
            for item in over {
                let position = key_of(item).and_then(|k| {
                    items
                        .iter()
                        .position(|below| key_of(below) == Some(k.clone()))
                });
                match position {
                    Some(i) => items[i] = merge(path, &items[i], item),
                    None => items.push(item.clone()),
                }
            }
            DataValue::List(items)
        }
        _ => over.clone(),
    }
}

/// Which version a request names: `$Latest`, `$Default` or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    /// `$Latest`: the highest version number there is.
    Latest,
    /// `$Default`: the template's default version.
    Default,
    /// A version number.
    Number(u64),
}

impl VersionRef {
    /// Reads `$Latest`, `$Default` or a decimal number (as EC2 spells them, case-sensitive).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "$Latest" => Some(Self::Latest),
            "$Default" => Some(Self::Default),
            digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse().ok().map(Self::Number)
            }
            _ => None,
        }
    }
}

/// One version: immutable once created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplateVersion {
    /// `VersionNumber`: 1 for the template's first, then one more than any version ever made.
    pub version_number: u64,
    /// `VersionDescription`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_description: Option<String>,
    /// `CreateTime`.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub create_time: Timestamp,
    /// The `ClientToken` the version was made with (CreateLaunchTemplateVersion's idempotency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// `LaunchTemplateData`.
    #[serde(default)]
    pub data: LaunchTemplateData,
}

/// The template and its versions, kept in one record: versions are few, immutable and always
/// read with their template, and a version's creation or deletion moves the template's
/// latest and default numbers in the same compare-and-swap (so `$Default` can never name a
/// deleted version, and numbers are never handed out twice). `createTime` is
/// `metadata.creationTimestamp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplateSpec {
    /// `LaunchTemplateName`: unique per region.
    pub launch_template_name: String,
    /// `CreatedBy`: the principal's ARN.
    pub created_by: String,
    /// `DefaultVersionNumber`: always one of `versions`.
    pub default_version_number: u64,
    /// The highest version number ever made; the next version gets the one after it, so a
    /// deleted version's number is never reused.
    pub last_version_number: u64,
    /// The versions there are, by number.
    pub versions: Vec<LaunchTemplateVersion>,
    /// The template's tags (`launch-template`; versions cannot be tagged).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The `ClientToken` CreateLaunchTemplate was called with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl LaunchTemplateSpec {
    /// `LatestVersionNumber`: the highest version there is.
    pub fn latest_version_number(&self) -> u64 {
        self.versions
            .iter()
            .map(|v| v.version_number)
            .max()
            .unwrap_or(self.default_version_number)
    }

    /// The version a reference names, if it exists.
    pub fn version(&self, reference: VersionRef) -> Option<&LaunchTemplateVersion> {
        let number = match reference {
            VersionRef::Latest => self.latest_version_number(),
            VersionRef::Default => self.default_version_number,
            VersionRef::Number(n) => n,
        };
        self.versions.iter().find(|v| v.version_number == number)
    }

    /// Adds a version with the next number and returns it.
    pub fn add_version(
        &mut self,
        description: Option<String>,
        client_token: Option<String>,
        data: LaunchTemplateData,
        at: Timestamp,
    ) -> &LaunchTemplateVersion {
        self.last_version_number += 1;
        self.versions.push(LaunchTemplateVersion {
            version_number: self.last_version_number,
            version_description: description,
            create_time: at,
            client_token,
            data,
        });
        self.versions.last().expect("just pushed")
    }
}

/// Launch templates have nothing to observe (no reconciler acts on them); the status stays empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LaunchTemplateStatus {}

/// A new launch template with a fresh id and its version 1 (the default), created now (not yet stored).
pub fn new_launch_template(
    region: &str,
    name: &str,
    created_by: &str,
    version: (Option<String>, LaunchTemplateData),
    tags: BTreeMap<String, String>,
    client_token: Option<String>,
) -> LaunchTemplate {
    let id = LaunchTemplateId::generate();
    let at = super::now();
    let mut spec = LaunchTemplateSpec {
        launch_template_name: name.to_string(),
        created_by: created_by.to_string(),
        default_version_number: 1,
        last_version_number: 0,
        versions: Vec::new(),
        tags,
        client_token: client_token.clone(),
    };
    spec.add_version(version.0, client_token, version.1, at);
    Object {
        api_version: API_VERSION.to_string(),
        kind: LAUNCH_TEMPLATE_KIND.to_string(),
        metadata: ObjectMeta::new(id.as_str(), region, at),
        spec,
        status: LaunchTemplateStatus::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> LaunchTemplateData {
        LaunchTemplateData::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn parameters_become_a_tree_and_back() {
        let d = data(&[
            ("ImageId", "ami-1"),
            ("SecurityGroupId.2", "sg-b"),
            ("SecurityGroupId.1", "sg-a"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "web"),
            ("MetadataOptions.HttpTokens", "required"),
            ("ImageId", "ami-ignored"),
        ]);
        assert_eq!(d.text("ImageId"), Some("ami-1"), "the first value wins");
        assert_eq!(d.values_at("SecurityGroupId"), vec!["sg-a", "sg-b"]);
        assert_eq!(d.values_at("TagSpecification.Tag.Key"), vec!["Name"]);
        assert_eq!(
            d.to_pairs(),
            [
                ("ImageId", "ami-1"),
                ("MetadataOptions.HttpTokens", "required"),
                ("SecurityGroupId.1", "sg-a"),
                ("SecurityGroupId.2", "sg-b"),
                ("TagSpecification.1.ResourceType", "instance"),
                ("TagSpecification.1.Tag.1.Key", "Name"),
                ("TagSpecification.1.Tag.1.Value", "web"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        // Gaps in the numbering close up; a path that fights the shape is dropped.
        let d = data(&[("A.7", "x"), ("A.3", "y"), ("B", "1"), ("B.C", "2")]);
        assert_eq!(d.values_at("A"), vec!["y", "x"]);
        assert_eq!(d.text("B"), Some("1"));
        // An index out of 1..=1000 is dropped, never kept as a member named by its digits.
        let d = data(&[
            ("A.99999999999999999999", "huge"),
            ("A.1001", "big"),
            ("A.0", "zero"),
            ("A.1000", "last"),
            ("S.99999999999999999999.K", "v"),
        ]);
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"A": ["last"]})
        );
        assert_eq!(list_index("007"), Some(7));
        assert_eq!(list_index("x1"), None);
        // Stored as the JSON a reader expects.
        let json = serde_json::to_value(data(&[("A.1.K", "v"), ("S", "t")])).unwrap();
        assert_eq!(json, serde_json::json!({"A": [{"K": "v"}], "S": "t"}));
        assert_eq!(
            serde_json::from_value::<LaunchTemplateData>(json).unwrap(),
            data(&[("A.1.K", "v"), ("S", "t")])
        );
    }

    #[test]
    fn overlays_replace_scalars_and_lists_and_merge_structures_and_keyed_lists() {
        let template = data(&[
            ("ImageId", "ami-1"),
            ("InstanceType", "t3.micro"),
            ("SecurityGroupId.1", "sg-a"),
            ("SecurityGroupId.2", "sg-b"),
            ("MetadataOptions.HttpTokens", "required"),
            ("MetadataOptions.HttpPutResponseHopLimit", "2"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Owner"),
            ("TagSpecification.1.Tag.1.Value", "TeamB"),
            ("TagSpecification.1.Tag.2.Key", "env"),
            ("TagSpecification.1.Tag.2.Value", "dev"),
            ("BlockDeviceMapping.1.DeviceName", "/dev/xvda"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "8"),
        ]);
        let request = data(&[
            ("InstanceType", "t3.small"),
            ("SecurityGroupId.1", "sg-c"),
            ("MetadataOptions.HttpPutResponseHopLimit", "3"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Owner"),
            ("TagSpecification.1.Tag.1.Value", "TeamA"),
            ("TagSpecification.2.ResourceType", "volume"),
            ("TagSpecification.2.Tag.1.Key", "v"),
            ("BlockDeviceMapping.1.DeviceName", "/dev/xvdb"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "20"),
        ]);
        let merged = template.overlaid_with(&request);
        assert_eq!(merged.text("ImageId"), Some("ami-1"));
        assert_eq!(merged.text("InstanceType"), Some("t3.small"));
        assert_eq!(merged.values_at("SecurityGroupId"), vec!["sg-c"]);
        assert_eq!(
            merged.values_at("MetadataOptions.HttpTokens"),
            vec!["required"]
        );
        assert_eq!(
            merged.values_at("MetadataOptions.HttpPutResponseHopLimit"),
            vec!["3"]
        );
        assert_eq!(
            merged.values_at("TagSpecification.ResourceType"),
            vec!["instance", "volume"]
        );
        assert_eq!(
            merged.values_at("TagSpecification.Tag.Key"),
            vec!["Owner", "env", "v"]
        );
        assert_eq!(
            merged.values_at("TagSpecification.Tag.Value"),
            vec!["TeamA", "dev"]
        );
        assert_eq!(
            merged.values_at("BlockDeviceMapping.DeviceName"),
            vec!["/dev/xvda", "/dev/xvdb"]
        );
        assert_eq!(merged, template.overlaid_with(&request), "pure");
        assert_eq!(
            template.overlaid_with(&LaunchTemplateData::default()),
            template
        );
    }

    #[test]
    fn versions_resolve_and_numbers_are_never_reused() {
        let mut lt = new_launch_template(
            "us-east-1",
            "web",
            "arn",
            (Some("first".into()), data(&[("ImageId", "ami-1")])),
            BTreeMap::new(),
            None,
        );
        assert!(lt.metadata.name.starts_with("lt-") && lt.metadata.name.len() == 20);
        let spec = &mut lt.spec;
        assert_eq!(spec.latest_version_number(), 1);
        assert_eq!(
            spec.add_version(None, None, data(&[]), super::super::now())
                .version_number,
            2
        );
        assert_eq!(spec.version(VersionRef::Latest).unwrap().version_number, 2);
        assert_eq!(spec.version(VersionRef::Default).unwrap().version_number, 1);
        spec.versions.retain(|v| v.version_number != 2);
        assert_eq!(spec.latest_version_number(), 1);
        assert_eq!(
            spec.add_version(None, None, data(&[]), super::super::now())
                .version_number,
            3
        );
        assert!(spec.version(VersionRef::Number(2)).is_none());
        assert_eq!(VersionRef::parse("$Latest"), Some(VersionRef::Latest));
        assert_eq!(VersionRef::parse("$Default"), Some(VersionRef::Default));
        assert_eq!(VersionRef::parse("12"), Some(VersionRef::Number(12)));
        for bad in ["", "$latest", "-1", "1.0", "x"] {
            assert_eq!(VersionRef::parse(bad), None, "{bad:?}");
        }
    }
}
