//! Launch template plumbing shared by the seven launch template actions and RunInstances: `LaunchTemplateData`'s parameters and their XML, template references and their errors, and a launch's template applied under its own parameters.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use crate::api::error::ApiError;
use crate::api::identity::DEFAULT_USER;
use crate::api::query::QueryParams;
use crate::api::render::render_tags;
use crate::api::state::ApiState;
use crate::api::tags;
use crate::api::xml::XmlWriter;
use crate::model::launch_template::{
    is_index, list_index, DataValue, MAX_LIST_INDEX, TEMPLATE_ID_TAG, TEMPLATE_VERSION_TAG,
};
use crate::model::{
    format_timestamp, LaunchTemplate, LaunchTemplateData, LaunchTemplateId, LaunchTemplateVersion,
    VersionRef, ACCOUNT_ID,
};

/// The `ResourceType` of a launch template's own `TagSpecification`s.
pub const TAG_RESOURCE_TYPE: &str = "launch-template";

/// The resource types a template's data may tag at launch (`LaunchTemplateTagSpecificationRequest`:
/// "instance | volume | network-interface | spot-instances-request").
const DATA_TAGGABLE: &[&str] = &[
    "instance",
    "volume",
    "network-interface",
    "spot-instances-request",
];

/// The longest `ClientToken` the launch template actions take ("Maximum 128 ASCII characters").
const MAX_CLIENT_TOKEN: usize = 128;

/// The longest `VersionDescription` (the API reference: 0 to 255 characters).
const MAX_DESCRIPTION: usize = 255;

/// The most versions DeleteLaunchTemplateVersions takes at once.
pub const MAX_DELETE_VERSIONS: usize = 200;

/// How a `LaunchTemplateData` parameter's value is checked; the Query protocol's scalar types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Text,
    Bool,
    Int,
    Number,
    Time,
}

use Field::{Bool, Int, Number, Text, Time};

/// Every parameter of EC2's `RequestLaunchTemplateData` (botocore's model, 2016-11-15), list
/// indexes written `N`. A template keeps any of them; a launch uses those RunInstances knows.
const FIELDS: &[(&str, Field)] = &[
    ("KernelId", Text),
    ("EbsOptimized", Bool),
    ("IamInstanceProfile.Arn", Text),
    ("IamInstanceProfile.Name", Text),
    ("BlockDeviceMapping.N.DeviceName", Text),
    ("BlockDeviceMapping.N.VirtualName", Text),
    ("BlockDeviceMapping.N.Ebs.Encrypted", Bool),
    ("BlockDeviceMapping.N.Ebs.DeleteOnTermination", Bool),
    ("BlockDeviceMapping.N.Ebs.Iops", Int),
    ("BlockDeviceMapping.N.Ebs.KmsKeyId", Text),
    ("BlockDeviceMapping.N.Ebs.SnapshotId", Text),
    ("BlockDeviceMapping.N.Ebs.VolumeSize", Int),
    ("BlockDeviceMapping.N.Ebs.VolumeType", Text),
    ("BlockDeviceMapping.N.Ebs.Throughput", Int),
    ("BlockDeviceMapping.N.Ebs.VolumeInitializationRate", Int),
    ("BlockDeviceMapping.N.Ebs.EbsCardIndex", Int),
    ("BlockDeviceMapping.N.NoDevice", Text),
    ("NetworkInterface.N.AssociateCarrierIpAddress", Bool),
    ("NetworkInterface.N.AssociatePublicIpAddress", Bool),
    ("NetworkInterface.N.DeleteOnTermination", Bool),
    ("NetworkInterface.N.Description", Text),
    ("NetworkInterface.N.DeviceIndex", Int),
    ("NetworkInterface.N.SecurityGroupId.N", Text),
    ("NetworkInterface.N.InterfaceType", Text),
    ("NetworkInterface.N.Ipv6AddressCount", Int),
    ("NetworkInterface.N.Ipv6Addresses.N.Ipv6Address", Text),
    ("NetworkInterface.N.NetworkInterfaceId", Text),
    ("NetworkInterface.N.PrivateIpAddress", Text),
    ("NetworkInterface.N.PrivateIpAddresses.N.Primary", Bool),
    ("NetworkInterface.N.PrivateIpAddresses.N.PrivateIpAddress", Text),
    ("NetworkInterface.N.SecondaryPrivateIpAddressCount", Int),
    ("NetworkInterface.N.SubnetId", Text),
    ("NetworkInterface.N.NetworkCardIndex", Int),
    ("NetworkInterface.N.Ipv4Prefix.N.Ipv4Prefix", Text),
    ("NetworkInterface.N.Ipv4PrefixCount", Int),
    ("NetworkInterface.N.Ipv6Prefix.N.Ipv6Prefix", Text),
    ("NetworkInterface.N.Ipv6PrefixCount", Int),
    ("NetworkInterface.N.PrimaryIpv6", Bool),
    ("NetworkInterface.N.EnaSrdSpecification.EnaSrdEnabled", Bool),
    ("NetworkInterface.N.EnaSrdSpecification.EnaSrdUdpSpecification.EnaSrdUdpEnabled", Bool),
    ("NetworkInterface.N.ConnectionTrackingSpecification.TcpEstablishedTimeout", Int),
    ("NetworkInterface.N.ConnectionTrackingSpecification.UdpStreamTimeout", Int),
    ("NetworkInterface.N.ConnectionTrackingSpecification.UdpTimeout", Int),
    ("NetworkInterface.N.EnaQueueCount", Int),
    ("ImageId", Text),
    ("InstanceType", Text),
    ("KeyName", Text),
    ("Monitoring.Enabled", Bool),
    ("Placement.AvailabilityZone", Text),
    ("Placement.AvailabilityZoneId", Text),
    ("Placement.Affinity", Text),
    ("Placement.GroupName", Text),
    ("Placement.HostId", Text),
    ("Placement.Tenancy", Text),
    ("Placement.SpreadDomain", Text),
    ("Placement.HostResourceGroupArn", Text),
    ("Placement.PartitionNumber", Int),
    ("Placement.GroupId", Text),
    ("RamDiskId", Text),
    ("DisableApiTermination", Bool),
    ("InstanceInitiatedShutdownBehavior", Text),
    ("UserData", Text),
    ("TagSpecification.N.ResourceType", Text),
    ("TagSpecification.N.Tag.N.Key", Text),
    ("TagSpecification.N.Tag.N.Value", Text),
    ("ElasticGpuSpecification.N.Type", Text),
    ("ElasticInferenceAccelerator.N.Type", Text),
    ("ElasticInferenceAccelerator.N.Count", Int),
    ("SecurityGroupId.N", Text),
    ("SecurityGroup.N", Text),
    ("InstanceMarketOptions.MarketType", Text),
    ("InstanceMarketOptions.SpotOptions.MaxPrice", Text),
    ("InstanceMarketOptions.SpotOptions.SpotInstanceType", Text),
    ("InstanceMarketOptions.SpotOptions.BlockDurationMinutes", Int),
    ("InstanceMarketOptions.SpotOptions.ValidUntil", Time),
    ("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior", Text),
    ("CreditSpecification.CpuCredits", Text),
    ("CpuOptions.CoreCount", Int),
    ("CpuOptions.ThreadsPerCore", Int),
    ("CpuOptions.AmdSevSnp", Text),
    ("CpuOptions.NestedVirtualization", Text),
    ("CapacityReservationSpecification.CapacityReservationPreference", Text),
    ("CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId", Text),
    ("CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationResourceGroupArn", Text),
    ("LicenseSpecification.N.LicenseConfigurationArn", Text),
    ("HibernationOptions.Configured", Bool),
    ("MetadataOptions.HttpTokens", Text),
    ("MetadataOptions.HttpPutResponseHopLimit", Int),
    ("MetadataOptions.HttpEndpoint", Text),
    ("MetadataOptions.HttpProtocolIpv6", Text),
    ("MetadataOptions.InstanceMetadataTags", Text),
    ("EnclaveOptions.Enabled", Bool),
    ("InstanceRequirements.VCpuCount.Min", Int),
    ("InstanceRequirements.VCpuCount.Max", Int),
    ("InstanceRequirements.MemoryMiB.Min", Int),
    ("InstanceRequirements.MemoryMiB.Max", Int),
    ("InstanceRequirements.CpuManufacturer.N", Text),
    ("InstanceRequirements.MemoryGiBPerVCpu.Min", Number),
    ("InstanceRequirements.MemoryGiBPerVCpu.Max", Number),
    ("InstanceRequirements.ExcludedInstanceType.N", Text),
    ("InstanceRequirements.InstanceGeneration.N", Text),
    ("InstanceRequirements.SpotMaxPricePercentageOverLowestPrice", Int),
    ("InstanceRequirements.OnDemandMaxPricePercentageOverLowestPrice", Int),
    ("InstanceRequirements.BareMetal", Text),
    ("InstanceRequirements.BurstablePerformance", Text),
    ("InstanceRequirements.RequireHibernateSupport", Bool),
    ("InstanceRequirements.NetworkInterfaceCount.Min", Int),
    ("InstanceRequirements.NetworkInterfaceCount.Max", Int),
    ("InstanceRequirements.LocalStorage", Text),
    ("InstanceRequirements.LocalStorageType.N", Text),
    ("InstanceRequirements.TotalLocalStorageGB.Min", Number),
    ("InstanceRequirements.TotalLocalStorageGB.Max", Number),
    ("InstanceRequirements.BaselineEbsBandwidthMbps.Min", Int),
    ("InstanceRequirements.BaselineEbsBandwidthMbps.Max", Int),
    ("InstanceRequirements.AcceleratorType.N", Text),
    ("InstanceRequirements.AcceleratorCount.Min", Int),
    ("InstanceRequirements.AcceleratorCount.Max", Int),
    ("InstanceRequirements.AcceleratorManufacturer.N", Text),
    ("InstanceRequirements.AcceleratorName.N", Text),
    ("InstanceRequirements.AcceleratorTotalMemoryMiB.Min", Int),
    ("InstanceRequirements.AcceleratorTotalMemoryMiB.Max", Int),
    ("InstanceRequirements.NetworkBandwidthGbps.Min", Number),
    ("InstanceRequirements.NetworkBandwidthGbps.Max", Number),
    ("InstanceRequirements.AllowedInstanceType.N", Text),
    ("InstanceRequirements.MaxSpotPriceAsPercentageOfOptimalOnDemandPrice", Int),
    ("InstanceRequirements.BaselinePerformanceFactors.Cpu.Reference.N.InstanceFamily", Text),
    ("InstanceRequirements.RequireEncryptionInTransit", Bool),
    ("PrivateDnsNameOptions.HostnameType", Text),
    ("PrivateDnsNameOptions.EnableResourceNameDnsARecord", Bool),
    ("PrivateDnsNameOptions.EnableResourceNameDnsAAAARecord", Bool),
    ("MaintenanceOptions.AutoRecovery", Text),
    ("DisableApiStop", Bool),
    ("Operator.Principal", Text),
    ("NetworkPerformanceOptions.BandwidthWeighting", Text),
    ("SecondaryInterface.N.DeleteOnTermination", Bool),
    ("SecondaryInterface.N.DeviceIndex", Int),
    ("SecondaryInterface.N.PrivateIpAddress.N.PrivateIpAddress", Text),
    ("SecondaryInterface.N.PrivateIpAddressCount", Int),
    ("SecondaryInterface.N.SecondarySubnetId", Text),
    ("SecondaryInterface.N.InterfaceType", Text),
    ("SecondaryInterface.N.NetworkCardIndex", Int),
];

/// The lists whose XML element is not the parameter's name, lower-camel, plus `Set`
/// (`ResponseLaunchTemplateData`; paths without list indexes). Every other name follows the rule.
const LIST_ELEMENTS: &[(&str, &str)] = &[
    ("NetworkInterface.SecurityGroupId", "groupSet"),
    ("LicenseSpecification", "licenseSet"),
    (
        "SecondaryInterface.PrivateIpAddress",
        "privateIpAddressesSet",
    ),
];

/// The data parameters RunInstances spells differently (`RamDiskId` is `RamdiskId` there).
const RUN_INSTANCES_NAMES: &[(&str, &str)] = &[("RamDiskId", "RamdiskId")];

/// The data parameters RunInstances has no counterpart for: EC2 Fleet and Auto Scaling read
/// them, a single launch leaves them out.
const NOT_FOR_RUN_INSTANCES: &[&str] = &["InstanceRequirements"];

// ---------------------------------------------------------------------------------------------
// Errors, in EC2's words

/// `InvalidLaunchTemplateName.AlreadyExistsException`.
pub fn name_taken() -> ApiError {
    ApiError::client(
        "InvalidLaunchTemplateName.AlreadyExistsException",
        "Launch template name already in use.",
    )
}

/// `InvalidLaunchTemplateId.NotFound` for one id.
pub fn id_not_found(id: &str) -> ApiError {
    ApiError::client(
        "InvalidLaunchTemplateId.NotFound",
        format!("The specified launch template, with template ID {id}, does not exist."),
    )
}

/// `InvalidLaunchTemplateName.NotFoundException` for one name.
pub fn name_not_found(name: &str) -> ApiError {
    ApiError::client(
        "InvalidLaunchTemplateName.NotFoundException",
        format!("The specified launch template, with template name {name}, does not exist."),
    )
}

/// `InvalidLaunchTemplateName.NotFoundException` as DescribeLaunchTemplates words it for its list of names.
pub fn names_not_found() -> ApiError {
    ApiError::client(
        "InvalidLaunchTemplateName.NotFoundException",
        "At least one of the launch templates specified in the request does not exist.",
    )
}

/// `InvalidLaunchTemplateId.VersionNotFound`: `version` (as asked) names no version of `id`.
pub fn version_not_found(id: &str, version: &str) -> ApiError {
    ApiError::client(
        "InvalidLaunchTemplateId.VersionNotFound",
        format!(
            "Could not find the specified version {version} for the launch template with ID {id}."
        ),
    )
}

/// `InvalidLaunchTemplateName.MalformedException`.
fn name_malformed() -> ApiError {
    ApiError::client(
        "InvalidLaunchTemplateName.MalformedException",
        "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.",
    )
}

/// `InvalidLaunchTemplateId.Malformed`, in the wording every kind's malformed ids get.
pub fn id_malformed(id: &str) -> ApiError {
    ApiError::client(
        "InvalidLaunchTemplateId.Malformed",
        format!(
            "Invalid id: \"{id}\" (expecting \"{}...\")",
            LaunchTemplateId::PREFIX
        ),
    )
}

/// Checks a launch template id's shape (`lt-` and 17 hex digits).
pub fn parse_id(raw: &str) -> Result<String, ApiError> {
    LaunchTemplateId::parse(raw)
        .map(|id| id.to_string())
        .map_err(|_| id_malformed(raw))
}

/// EC2's name rule: 3 to 128 of `a-zA-Z0-9().-/_`.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (3..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"().-/_".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(name_malformed())
    }
}

/// `ClientToken`: at most 128 ASCII characters; empty is none.
pub fn client_token(params: &QueryParams) -> Result<Option<String>, ApiError> {
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

/// `VersionDescription`: at most 255 characters; empty is none.
pub fn version_description(params: &QueryParams) -> Result<Option<String>, ApiError> {
    match params.get("VersionDescription").filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(text) if text.chars().count() <= MAX_DESCRIPTION => Ok(Some(text.to_string())),
        Some(_) => Err(ApiError::invalid_value(format!(
            "Value for parameter VersionDescription is invalid. Length exceeds maximum of {MAX_DESCRIPTION} characters."
        ))),
    }
}

/// `IdempotentParameterMismatch`: a ClientToken reused with other arguments.
pub fn idempotent_mismatch() -> ApiError {
    ApiError::client(
        "IdempotentParameterMismatch",
        "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).",
    )
}

/// `CreatedBy`: the principal every request acts as (IAM `GetUser`'s default user).
pub fn created_by() -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user/{DEFAULT_USER}")
}

// ---------------------------------------------------------------------------------------------
// LaunchTemplateData

/// A parameter name with its list indexes written `N` (`SecurityGroupId.1` -> `SecurityGroupId.N`).
fn pattern(key: &str) -> String {
    key.split('.')
        .map(|s| if is_index(s) { "N" } else { s })
        .collect::<Vec<_>>()
        .join(".")
}

/// Refuses a parameter (`full` as the client named it) with a list index EC2 would not take:
/// one that is not 1 to [`MAX_LIST_INDEX`] (zero, or past `u64`, whose digits would otherwise
/// be kept as a structure member's name).
fn check_indexes(full: &str) -> Result<(), ApiError> {
    match full
        .split('.')
        .find(|s| is_index(s) && list_index(s).is_none())
    {
        None => Ok(()),
        Some(index) => Err(ApiError::invalid_value(format!(
            "The list index {index} in parameter {full} is invalid. Expected an index from 1 to {MAX_LIST_INDEX}."
        ))),
    }
}

/// The value as stored: checked against its type, booleans canonical.
fn checked(full: &str, field: Field, raw: &str) -> Result<String, ApiError> {
    let invalid = |expected: &str| {
        ApiError::invalid_value(format!(
            "Value ({raw}) for parameter {full} is invalid. Expected {expected}."
        ))
    };
    match field {
        Text => Ok(raw.to_string()),
        Bool if raw.eq_ignore_ascii_case("true") => Ok("true".to_string()),
        Bool if raw.eq_ignore_ascii_case("false") => Ok("false".to_string()),
        Bool => Err(invalid("'true' or 'false'")),
        Int => raw
            .trim()
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| invalid("an integer")),
        Number => match raw.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(raw.trim().to_string()),
            _ => Err(invalid("a number")),
        },
        Time => time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
            .map(|_| raw.to_string())
            .map_err(|_| invalid("a timestamp")),
    }
}

/// `LaunchTemplateData.*`: every parameter must be one of EC2's ([`FIELDS`]; anything else is
/// `UnknownParameter`) with list indexes from 1 to [`MAX_LIST_INDEX`], booleans and numbers
/// must read as such, and its `TagSpecification`s follow the tag rules. The values are not checked further: EC2 does not fully validate a
/// template when it is created, RunInstances checks what a launch uses.
pub fn parse_data(params: &QueryParams) -> Result<LaunchTemplateData, ApiError> {
    let data = params.sub("LaunchTemplateData");
    let mut pairs = Vec::with_capacity(data.pairs().len());
    for (key, raw) in data.pairs() {
        let full = format!("LaunchTemplateData.{key}");
        let Some((_, field)) = FIELDS.iter().find(|(p, _)| *p == pattern(key)) else {
            return Err(ApiError::client(
                "UnknownParameter",
                format!("The parameter {full} is not recognized"),
            ));
        };
        check_indexes(&full)?;
        pairs.push((key.clone(), checked(&full, *field, raw)?));
    }
    tags::tag_specifications(&data, DATA_TAGGABLE)?;
    Ok(LaunchTemplateData::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

/// `name` with its first letter lower-case: the XML element of a parameter.
fn element(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// One member of the model as XML shows it: its element (a list's is its set's) and its shape.
struct Element {
    /// `imageId`, `metadataOptions`, `securityGroupIdSet`, `groupSet`.
    name: String,
    /// A list (`Name.N`): its members are `<item>`s.
    list: bool,
    /// A scalar (or a list of scalars); otherwise a structure (or a list of them).
    scalar: bool,
}

/// Every member path of EC2's model (list indexes left out: `NetworkInterface.SecurityGroupId`)
/// with its element and shape, made from [`FIELDS`] and [`LIST_ELEMENTS`] alone: the renderer
/// takes every element name from here, so nothing a request sent or a record holds can become one.
static ELEMENTS: LazyLock<HashMap<String, Element>> = LazyLock::new(|| {
    let mut elements = HashMap::new();
    for (field, _) in FIELDS {
        let segments: Vec<&str> = field.split('.').collect();
        let mut path = String::new();
        for (i, member) in segments.iter().enumerate().filter(|(_, s)| **s != "N") {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(member);
            let list = segments.get(i + 1) == Some(&"N");
            let scalar = segments[i + 1..].iter().all(|s| *s == "N");
            let name = match LIST_ELEMENTS.iter().find(|(p, _)| *p == path) {
                Some((_, set)) => (*set).to_string(),
                None if list => format!("{}Set", element(member)),
                None => element(member),
            };
            elements
                .entry(path.clone())
                .or_insert(Element { name, list, scalar });
        }
    }
    elements
});

/// One member of the data as `ResponseLaunchTemplateData` shows it; `path` is its member path.
/// A member the model does not have, or of another shape than the model's (a record written
/// before its keys were checked), is left out with its subtree.
fn render_member(w: &mut XmlWriter, path: &str, value: &DataValue) {
    let Some(element) = ELEMENTS.get(path) else {
        tracing::debug!(%path, "launch template data member outside EC2's model not rendered");
        return;
    };
    let members = |w: &mut XmlWriter, members: &std::collections::BTreeMap<String, DataValue>| {
        for (member, value) in members {
            render_member(w, &format!("{path}.{member}"), value);
        }
    };
    match (element.list, element.scalar, value) {
        (false, true, DataValue::Text(text)) => w.field(&element.name, text),
        (false, false, DataValue::Struct(items)) => w.el(&element.name, |w| members(w, items)),
        (true, scalar, DataValue::List(items)) => {
            w.set(&element.name, items, |w, item| match (scalar, item) {
                (true, DataValue::Text(text)) => w.text(text),
                (false, DataValue::Struct(items)) => members(w, items),
                _ => {}
            })
        }
        _ => {
            tracing::debug!(%path, "launch template data member of another shape than EC2's model not rendered")
        }
    }
}

/// `<launchTemplateData>`: the version's parameters under their response names
/// (`securityGroupIdSet`, `tagSpecificationSet`, `networkInterfaceSet`, …).
pub fn render_data(w: &mut XmlWriter, data: &LaunchTemplateData) {
    w.el("launchTemplateData", |w| {
        for (name, value) in &data.0 {
            render_member(w, name, value);
        }
    });
}

/// The members of a `LaunchTemplate` item.
pub fn render_template(w: &mut XmlWriter, template: &LaunchTemplate) {
    let spec = &template.spec;
    w.field("launchTemplateId", &template.metadata.name);
    w.field("launchTemplateName", &spec.launch_template_name);
    w.field(
        "createTime",
        format_timestamp(template.metadata.creation_timestamp),
    );
    w.field("createdBy", &spec.created_by);
    w.field("defaultVersionNumber", spec.default_version_number);
    w.field("latestVersionNumber", spec.latest_version_number());
    render_tags(w, &spec.tags);
}

/// The members of a `LaunchTemplateVersion` item.
pub fn render_version(
    w: &mut XmlWriter,
    template: &LaunchTemplate,
    version: &LaunchTemplateVersion,
) {
    w.field("launchTemplateId", &template.metadata.name);
    w.field("launchTemplateName", &template.spec.launch_template_name);
    w.field("versionNumber", version.version_number);
    w.opt_field("versionDescription", version.version_description.as_deref());
    w.field("createTime", format_timestamp(version.create_time));
    w.field("createdBy", &template.spec.created_by);
    w.field(
        "defaultVersion",
        version.version_number == template.spec.default_version_number,
    );
    render_data(w, &version.data);
}

// ---------------------------------------------------------------------------------------------
// Which template a request names

/// A launch template named by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRef {
    /// `LaunchTemplateId`.
    Id(String),
    /// `LaunchTemplateName`.
    Name(String),
}

impl std::fmt::Display for TemplateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) | Self::Name(id) => f.write_str(id),
        }
    }
}

impl TemplateRef {
    /// The `NotFound` error of this reference.
    pub fn not_found(&self) -> ApiError {
        match self {
            Self::Id(id) => id_not_found(id),
            Self::Name(name) => name_not_found(name),
        }
    }
}

/// `LaunchTemplateId` or `LaunchTemplateName` in `params`, checked; `None` when neither is
/// given. Both at once is `InvalidParameterCombination`, worded with `both` (what the action
/// would do with the template, as EC2's ModifyLaunchTemplate words it).
pub fn template_ref(params: &QueryParams, both: &str) -> Result<Option<TemplateRef>, ApiError> {
    let id = params.get("LaunchTemplateId").filter(|v| !v.is_empty());
    let name = params.get("LaunchTemplateName").filter(|v| !v.is_empty());
    match (id, name) {
        (Some(_), Some(_)) => Err(ApiError::invalid_combination(format!(
            "Either provide launch template ID or launch template name to {both}."
        ))),
        (Some(id), None) => Ok(Some(TemplateRef::Id(parse_id(id)?))),
        (None, Some(name)) => {
            check_name(name)?;
            Ok(Some(TemplateRef::Name(name.to_string())))
        }
        (None, None) => Ok(None),
    }
}

/// Like [`template_ref`] for actions that need a template: neither is `MissingParameter`.
pub fn required_template_ref(params: &QueryParams, both: &str) -> Result<TemplateRef, ApiError> {
    template_ref(params, both)?
        .ok_or_else(|| ApiError::missing_parameter("launch template ID or launch template name"))
}

/// Every launch template of `region`, by id (corrupt records are skipped; the store logs them).
pub fn region_templates(state: &ApiState, region: &str) -> Result<Vec<LaunchTemplate>, ApiError> {
    let mut found: Vec<LaunchTemplate> = state
        .store
        .launch_templates()
        .list_shared()?
        .objects
        .into_iter()
        .filter(|t| t.metadata.namespace == region)
        .map(|t| (*t).clone())
        .collect();
    found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(found)
}

/// The template a reference names in `region`, if any (one of another region is not found, as in EC2).
pub fn find(
    state: &ApiState,
    region: &str,
    reference: &TemplateRef,
) -> Result<Option<LaunchTemplate>, ApiError> {
    match reference {
        TemplateRef::Id(id) => Ok(state
            .store
            .launch_templates()
            .get(id)?
            .filter(|t| t.metadata.namespace == region)),
        TemplateRef::Name(name) => Ok(region_templates(state, region)?
            .into_iter()
            .find(|t| t.spec.launch_template_name == *name)),
    }
}

/// The template a reference names in `region`, or its `NotFound` error.
pub fn existing(
    state: &ApiState,
    region: &str,
    reference: &TemplateRef,
) -> Result<LaunchTemplate, ApiError> {
    find(state, region, reference)?.ok_or_else(|| reference.not_found())
}

/// The version `text` (`$Latest`, `$Default` or a number) names in `template`, or
/// `InvalidLaunchTemplateId.VersionNotFound`.
pub fn version_of<'t>(
    template: &'t LaunchTemplate,
    text: &str,
) -> Result<&'t LaunchTemplateVersion, ApiError> {
    VersionRef::parse(text)
        .and_then(|reference| template.spec.version(reference))
        .ok_or_else(|| version_not_found(&template.metadata.name, text))
}

// ---------------------------------------------------------------------------------------------
// RunInstances with `LaunchTemplate`

/// A RunInstances call with its launch template applied: the parameters to parse as any
/// launch, and the tags EC2 gives every instance launched from a template.
#[derive(Debug)]
pub struct Launch<'a> {
    params: Cow<'a, QueryParams>,
    tags: Vec<(String, String)>,
}

impl Launch<'_> {
    /// The parameters of the launch.
    pub fn params(&self) -> &QueryParams {
        &self.params
    }

    /// `aws:ec2launchtemplate:id` and `aws:ec2launchtemplate:version`, when a template was used.
    pub fn tags(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.tags.iter().cloned()
    }
}

/// The first part of a parameter name (`TagSpecification` of `TagSpecification.1.Tag.1.Key`).
fn top(key: &str) -> &str {
    key.split('.').next().unwrap_or(key)
}

/// Applies `LaunchTemplate.{LaunchTemplateId|LaunchTemplateName, Version}` (the default
/// version when no `Version`): the version's data, as RunInstances parameters, with the
/// request's own parameters laid over it as EC2 does (see
/// [`LaunchTemplateData::overlaid_with`]). A call without a template is left as it is.
pub fn resolve_launch<'a>(
    state: &ApiState,
    region: &str,
    params: &'a QueryParams,
) -> Result<Launch<'a>, ApiError> {
    let spec = params.sub("LaunchTemplate");
    let Some(reference) = template_ref(&spec, "launch an instance")? else {
        return Ok(Launch {
            params: Cow::Borrowed(params),
            tags: Vec::new(),
        });
    };
    let template = existing(state, region, &reference)?;
    let version = version_of(
        &template,
        spec.get("Version")
            .filter(|v| !v.is_empty())
            .unwrap_or("$Default"),
    )?;
    let from_template = LaunchTemplateData(
        version
            .data
            .0
            .iter()
            .filter(|(name, _)| !NOT_FOR_RUN_INSTANCES.contains(&name.as_str()))
            .map(|(name, value)| {
                let name = RUN_INSTANCES_NAMES
                    .iter()
                    .find(|(ours, _)| ours == name)
                    .map_or(name.as_str(), |(_, theirs)| theirs);
                (name.to_string(), value.clone())
            })
            .collect(),
    );
    let named: BTreeSet<&str> = from_template.0.keys().map(String::as_str).collect();
    // The request's own values of what the template names are laid over it; an empty one
    // (how some clients write "not given") leaves the template's. They become a data tree, so
    // their list indexes are held to the data's rule.
    let own: Vec<(&str, &str)> = params
        .pairs()
        .iter()
        .filter(|(key, value)| named.contains(top(key)) && !value.is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (key, _) in &own {
        check_indexes(key)?;
    }
    let own = LaunchTemplateData::from_pairs(own);
    let mut pairs: Vec<(String, String)> = params
        .pairs()
        .iter()
        .filter(|(key, _)| !named.contains(top(key)))
        .cloned()
        .collect();
    pairs.extend(from_template.overlaid_with(&own).to_pairs());
    Ok(Launch {
        params: Cow::Owned(QueryParams::new(pairs)),
        tags: vec![
            (TEMPLATE_ID_TAG.to_string(), template.metadata.name.clone()),
            (
                TEMPLATE_VERSION_TAG.to_string(),
                version.version_number.to_string(),
            ),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(q: &str) -> Result<LaunchTemplateData, ApiError> {
        parse_data(&QueryParams::from_query(q))
    }

    #[test]
    fn data_parameters_are_checked_against_ec2s_model() {
        let d = data(
            "LaunchTemplateData.ImageId=ami-1&LaunchTemplateData.EbsOptimized=TRUE\
             &LaunchTemplateData.NetworkInterface.1.SecurityGroupId.2=sg-b\
             &LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit=2&Other=x",
        )
        .unwrap();
        assert_eq!(d.text("EbsOptimized"), Some("true"), "canonical");
        assert_eq!(
            d.values_at("NetworkInterface.SecurityGroupId"),
            vec!["sg-b"]
        );
        let e = data("LaunchTemplateData.Flavour=x").unwrap_err();
        assert_eq!(e.code, "UnknownParameter");
        assert_eq!(
            e.message,
            "The parameter LaunchTemplateData.Flavour is not recognized"
        );
        let e = data("LaunchTemplateData.DisableApiStop=maybe").unwrap_err();
        assert_eq!(
            e.message,
            "Value (maybe) for parameter LaunchTemplateData.DisableApiStop is invalid. Expected 'true' or 'false'."
        );
        assert_eq!(
            data("LaunchTemplateData.CpuOptions.CoreCount=two")
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
        assert_eq!(
            data("LaunchTemplateData.TagSpecification.1.ResourceType=instance&LaunchTemplateData.TagSpecification.1.Tag.1.Key=aws:x")
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
        assert_eq!(
            data("LaunchTemplateData.TagSpecification.1.ResourceType=launch-template&LaunchTemplateData.TagSpecification.1.Tag.1.Key=k")
                .unwrap_err()
                .message,
            "'launch-template' is not a valid taggable resource type for this operation."
        );
        // EC2 keeps what it does not validate at creation: a fake AMI, raw user data.
        assert!(data(
            "LaunchTemplateData.ImageId=ami-bogus&LaunchTemplateData.UserData=not%20base64"
        )
        .is_ok());
        assert!(FIELDS.iter().all(|(p, _)| !p.contains(' ')));
    }

    #[test]
    fn data_renders_with_ec2s_response_names() {
        let d = data(
            "LaunchTemplateData.SecurityGroupId.1=sg-a&LaunchTemplateData.NetworkInterface.1.SecurityGroupId.1=sg-b\
             &LaunchTemplateData.NetworkInterface.1.DeviceIndex=0&LaunchTemplateData.LicenseSpecification.1.LicenseConfigurationArn=arn\
             &LaunchTemplateData.TagSpecification.1.ResourceType=instance&LaunchTemplateData.TagSpecification.1.Tag.1.Key=a%3Cb\
             &LaunchTemplateData.TagSpecification.1.Tag.1.Value=v&LaunchTemplateData.MetadataOptions.HttpTokens=required",
        )
        .unwrap();
        let mut w = XmlWriter::new();
        render_data(&mut w, &d);
        assert_eq!(
            w.finish(),
            "<launchTemplateData><licenseSet><item><licenseConfigurationArn>arn</licenseConfigurationArn></item></licenseSet>\
             <metadataOptions><httpTokens>required</httpTokens></metadataOptions>\
             <networkInterfaceSet><item><deviceIndex>0</deviceIndex><groupSet><item>sg-b</item></groupSet></item></networkInterfaceSet>\
             <securityGroupIdSet><item>sg-a</item></securityGroupIdSet>\
             <tagSpecificationSet><item><resourceType>instance</resourceType><tagSet><item><key>a&lt;b</key><value>v</value></item></tagSet></item></tagSpecificationSet>\
             </launchTemplateData>"
        );
    }

    #[test]
    fn element_names_come_from_the_model_only() {
        // A record written before indexes were checked, or by hand: digits, markup and
        // unknown names as members. None of them becomes an element.
        let stored: LaunchTemplateData = serde_json::from_value(serde_json::json!({
            "ImageId": "ami-1",
            "SecurityGroupId": {"99999999999999999999": "sg-1"},
            "NetworkInterface": [{"DeviceIndex": "0", "<x>": "y", "SecurityGroupId": ["sg-2"]}],
            "MetadataOptions": {"HttpTokens": "required", "a b": "c"},
            "Evil><script": "z",
            "12": "n",
        }))
        .unwrap();
        let mut w = XmlWriter::new();
        render_data(&mut w, &stored);
        assert_eq!(
            w.finish(),
            "<launchTemplateData><imageId>ami-1</imageId>\
             <metadataOptions><httpTokens>required</httpTokens></metadataOptions>\
             <networkInterfaceSet><item><deviceIndex>0</deviceIndex><groupSet><item>sg-2</item></groupSet></item></networkInterfaceSet>\
             </launchTemplateData>"
        );
        // Every element the model can name is a plain XML name.
        let plain = |name: &str| {
            name.starts_with(|c: char| c.is_ascii_lowercase())
                && name.bytes().all(|b| b.is_ascii_alphanumeric())
        };
        assert!(ELEMENTS.len() > FIELDS.len() / 2);
        for (path, element) in ELEMENTS.iter() {
            assert!(plain(&element.name), "{path}");
            assert_eq!(element.list, element.name.ends_with("Set"), "{path}");
        }
        // An index past the bound is refused before anything is stored.
        let e = data("LaunchTemplateData.SecurityGroupId.99999999999999999999=sg-1").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert!(data("LaunchTemplateData.SecurityGroupId.1000=sg-1").is_ok());
    }

    #[test]
    fn names_ids_and_references() {
        for ok in ["abc", "web-server_v1.2(x)/y", &"a".repeat(128)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "has space", "ünï", &"a".repeat(129), "x:y"] {
            assert_eq!(
                check_name(bad).unwrap_err().code,
                "InvalidLaunchTemplateName.MalformedException",
                "{bad}"
            );
        }
        assert!(parse_id("lt-0123456789abcdef0").is_ok());
        let e = parse_id("lt-123").unwrap_err();
        assert_eq!(e.code, "InvalidLaunchTemplateId.Malformed");
        assert_eq!(e.message, "Invalid id: \"lt-123\" (expecting \"lt-...\")");
        let q = |s: &str| template_ref(&QueryParams::from_query(s), "modify the template");
        assert_eq!(
            q("LaunchTemplateName=web").unwrap(),
            Some(TemplateRef::Name("web".into()))
        );
        assert_eq!(q("").unwrap(), None);
        assert_eq!(
            q("LaunchTemplateName=web&LaunchTemplateId=lt-0123456789abcdef0")
                .unwrap_err()
                .message,
            "Either provide launch template ID or launch template name to modify the template."
        );
        assert_eq!(
            required_template_ref(&QueryParams::from_query(""), "x")
                .unwrap_err()
                .message,
            "The request must contain the parameter launch template ID or launch template name"
        );
        assert_eq!(
            pattern("NetworkInterface.12.SecurityGroupId.3"),
            "NetworkInterface.N.SecurityGroupId.N"
        );
    }
}
