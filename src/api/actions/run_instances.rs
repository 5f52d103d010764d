//! `RunInstances`: applies a launch template when one is named, validates the launch, resolves the AMI, subnet, security groups (and their ports), key pair and user data, and writes MaxCount desired-running instances in one reservation.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::config::VmManager;
use crate::model::network::{published_ports, Subnet};
use crate::model::{
    now, DesiredState, GroupRef, IamProfileRef, ImageId, Instance, InstanceId, InstanceOptions,
    InstanceSpec, InstanceStatus, Object, ObjectMeta, PortSpec, ReservationId, ShutdownBehavior,
    Volume, ACCOUNT_ID, API_VERSION, DEFAULT_GROUP_NAME, INSTANCE_KIND, MAX_PUBLISHED_PORTS,
    VM_MANAGER_TAG,
};

use crate::api::block_devices::{
    parse_mappings, plan_volumes, volumes_for, EbsMapping, LaunchMapping, MappingKind,
    PlannedVolume,
};
use crate::api::groups::resolve_group;
use crate::api::instance_options::{imds_v2_defaults, launch_options, MetadataAsked};
use crate::api::key_pairs::public_key_for;
use crate::api::kind::Kind;
use crate::api::kinds::instance_type::known_type;
use crate::api::kinds::SubnetKind;
use crate::api::render::{render_instance, ROOT_DEVICE_NAME};
use crate::api::{groups, iam_profiles, images, kind, launch_templates, private_ips, tags};
use crate::model::region::{self, zone_names};
use crate::model::SECURITY_GROUP_KIND;
use crate::store::{StoreError, CLIENT_TOKEN_KIND, PRIVATE_IP_KIND};

/// The most instances one call may launch.
pub const MAX_COUNT_LIMIT: i64 = 1000;

/// The resource types RunInstances' `TagSpecification` may name (its API reference: "You can
/// specify tags for the following resources only: Instances, Volumes, Spot Instance requests,
/// Network interfaces"); the instance's and the volumes' are kept, the others are checked
/// and accepted.
const RUN_INSTANCES_TAGGABLE: &[&str] = &[
    "instance",
    "volume",
    "network-interface",
    "spot-instances-request",
];

/// [`RUN_INSTANCES_TAGGABLE`] with `volume` first: the tags the launch's volumes get.
const VOLUME_TAGGABLE: &[&str] = &[
    "volume",
    "instance",
    "network-interface",
    "spot-instances-request",
];

/// The instance type used when the request names none (EC2's historical default).
pub const DEFAULT_INSTANCE_TYPE: &str = "m1.small";

/// The most user data EC2 accepts, counted decoded (before base64).
pub const MAX_USER_DATA: usize = 16384;

/// The longest `ClientToken` EC2 accepts.
pub const MAX_CLIENT_TOKEN: usize = 64;

/// A validated RunInstances request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The AMI to launch.
    pub image_id: ImageId,
    /// How many instances to launch (MaxCount; ec2d always has the capacity).
    pub count: u32,
    /// `InstanceType`.
    pub instance_type: String,
    /// Tags of `TagSpecification`s with `ResourceType=instance`.
    pub tags: BTreeMap<String, String>,
    /// `InstanceInitiatedShutdownBehavior`.
    pub shutdown_behavior: ShutdownBehavior,
    /// `DisableApiTermination`.
    pub disable_api_termination: bool,
    /// `DisableApiStop`.
    pub disable_api_stop: bool,
    /// `Placement.AvailabilityZone`, checked against the region in `handle`.
    pub availability_zone: Option<String>,
    /// `SecurityGroupId.N` then `SecurityGroup.N` (or the first network interface's
    /// `SecurityGroupId.N`): ids or names; empty means the region's `default`.
    pub security_groups: Vec<groups::GroupRef>,
    /// `SubnetId` (or the first network interface's); the zone's default subnet when absent.
    pub subnet_id: Option<String>,
    /// `KeyName`.
    pub key_name: Option<String>,
    /// `UserData`, as canonical base64 of at most [`MAX_USER_DATA`] decoded bytes.
    pub user_data: Option<String>,
    /// `ClientToken`.
    pub client_token: Option<String>,
    /// `MinCount`: the fewest instances the launch accepts (the subnet's free addresses may
    /// hold fewer than `count`).
    pub min_count: u32,
    /// `PrivateIpAddress` (or the first network interface's): the address of the one instance.
    pub private_ip: Option<String>,
    /// `MetadataOptions`, `CreditSpecification`, `Monitoring` and the other recorded options.
    pub options: InstanceOptions,
    /// Which metadata options the launch named (an IMDSv2-only AMI sets the others).
    pub metadata_asked: MetadataAsked,
    /// The ARN of `IamInstanceProfile.Arn` or `.Name`: each instance gets its own association.
    pub iam_instance_profile: Option<String>,
    /// `BlockDeviceMapping.N`, over the AMI's block device mapping.
    pub block_devices: Vec<LaunchMapping>,
    /// Tags of `TagSpecification`s with `ResourceType=volume`: every volume of the launch's.
    pub volume_tags: BTreeMap<String, String>,
    /// The first network interface's `Description`: its primary interface's.
    pub interface_description: Option<String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// What was launched.
#[derive(Debug, Clone)]
pub struct Response {
    /// The reservation shared by all instances.
    pub reservation_id: ReservationId,
    /// The instances, in launch-index order.
    pub instances: Vec<Instance>,
}

fn count(params: &QueryParams, name: &str, xml_name: &str) -> Result<i64, ApiError> {
    let n = params
        .int(name)?
        .ok_or_else(|| ApiError::missing_parameter(name))?;
    if n < 1 {
        return Err(ApiError::invalid_value(format!(
            "Value ({n}) for parameter {xml_name} is invalid. Expected a positive integer."
        )));
    }
    Ok(n)
}

/// `UserData` as stored: base64 of the bytes. The CLI and SDKs send base64; some Terraform
/// versions send the script itself, which is not valid base64 (a script starts `#!`), so text
/// that does not decode is taken as the data itself. Line breaks inside base64 (MIME-style
/// wrapping) are tolerated. Text that happens to be valid base64 is read as base64. Empty is none.
pub fn user_data(raw: &str) -> Result<Option<String>, ApiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let unwrapped: String = raw.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let bytes = STANDARD
        .decode(unwrapped.as_bytes())
        .unwrap_or_else(|_| raw.as_bytes().to_vec());
    if bytes.len() > MAX_USER_DATA {
        return Err(ApiError::invalid_value(format!(
            "User data is limited to {MAX_USER_DATA} bytes"
        )));
    }
    Ok(Some(STANDARD.encode(bytes)))
}

/// The groups and subnet of the launch: instance-level, or those of the first network
/// interface; EC2 refuses both at once.
fn network_params(
    params: &QueryParams,
) -> Result<(Vec<groups::GroupRef>, Option<String>), ApiError> {
    let interfaces = params.structs("NetworkInterface");
    let interface = interfaces.first();
    let mut raw_groups: Vec<&str> = params.list("SecurityGroupId");
    raw_groups.extend(params.list("SecurityGroup"));
    let mut subnet = params.get("SubnetId").filter(|s| !s.is_empty());
    if let Some(interface) = interface {
        let interface_groups = interface.list("SecurityGroupId");
        if !interface_groups.is_empty() {
            if !raw_groups.is_empty() {
                return Err(ApiError::invalid_combination(
                    "Network interfaces and an instance-level security groups may not be specified on the same request",
                ));
            }
            raw_groups = interface_groups;
        }
        if let Some(interface_subnet) = interface.get("SubnetId").filter(|s| !s.is_empty()) {
            if subnet.is_some() {
                return Err(ApiError::invalid_combination(
                    "Network interfaces and an instance-level subnet ID may not be specified on the same request",
                ));
            }
            subnet = Some(interface_subnet);
        }
    }
    let mut groups = Vec::new();
    for raw in raw_groups {
        let group = groups::GroupRef::parse(raw)?;
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    if let Some(subnet) = subnet {
        SubnetKind::check_id(subnet)?;
    }
    Ok((groups, subnet.map(str::to_string)))
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let image_id = ImageId::parse(params.require("ImageId")?)?;
    let min = count(params, "MinCount", "minCount")?;
    let max = count(params, "MaxCount", "maxCount")?;
    if min > max {
        return Err(ApiError::invalid_value(format!(
            "Value ({min}) for parameter minCount is invalid. Expected a value less than or equal to maxCount ({max})."
        )));
    }
    if max > MAX_COUNT_LIMIT {
        return Err(ApiError::invalid_value(format!(
            "Value ({max}) for parameter maxCount is invalid. Expected a value less than or equal to {MAX_COUNT_LIMIT}."
        )));
    }
    let instance_type = params.get("InstanceType").unwrap_or(DEFAULT_INSTANCE_TYPE);
    known_type(instance_type)?;
    let shutdown_behavior = match params.get("InstanceInitiatedShutdownBehavior") {
        None | Some("stop") => ShutdownBehavior::Stop,
        Some("terminate") => ShutdownBehavior::Terminate,
        Some(other) => {
            return Err(ApiError::invalid_value(format!(
                "Value ({other}) for parameter instanceInitiatedShutdownBehavior is invalid. Expected 'stop' or 'terminate'."
            )))
        }
    };
    let (security_groups, subnet_id) = network_params(params)?;
    let client_token = params.get("ClientToken").filter(|t| !t.is_empty());
    if let Some(token) = client_token {
        if token.len() > MAX_CLIENT_TOKEN || !token.is_ascii() {
            return Err(ApiError::invalid_value(format!(
                "Value ({token}) for parameter clientToken is invalid. Expected at most {MAX_CLIENT_TOKEN} ASCII characters."
            )));
        }
    }
    let private_ip = params
        .get("PrivateIpAddress")
        .or_else(|| params.get("NetworkInterface.1.PrivateIpAddress"))
        .filter(|ip| !ip.is_empty())
        .map(str::to_string);
    if private_ip.is_some() && max > 1 {
        return Err(ApiError::client(
            "InvalidParameterCombination",
            "A private IP address can only be specified for a single instance (MaxCount 1).",
        ));
    }
    Ok(Request {
        image_id,
        count: u32::try_from(max).expect("bounded by MAX_COUNT_LIMIT"),
        min_count: u32::try_from(min).expect("bounded by MaxCount"),
        private_ip,
        instance_type: instance_type.to_string(),
        tags: tags::tag_specifications(params, RUN_INSTANCES_TAGGABLE)?,
        volume_tags: tags::tag_specifications(params, VOLUME_TAGGABLE)?,
        block_devices: parse_mappings(params)?,
        shutdown_behavior,
        disable_api_termination: params.bool("DisableApiTermination")?.unwrap_or(false),
        disable_api_stop: params.bool("DisableApiStop")?.unwrap_or(false),
        availability_zone: params
            .get("Placement.AvailabilityZone")
            .filter(|z| !z.is_empty())
            .map(str::to_string),
        security_groups,
        subnet_id,
        key_name: params
            .get("KeyName")
            .filter(|k| !k.is_empty())
            .map(str::to_string),
        user_data: user_data(params.get("UserData").unwrap_or_default())?,
        client_token: client_token.map(str::to_string),
        options: launch_options(params, instance_type)?,
        metadata_asked: MetadataAsked::of(params),
        iam_instance_profile: iam_profiles::profile_param(params)?,
        interface_description: params
            .get("NetworkInterface.1.Description")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        dry_run: kind::dry_run(params)?,
    })
}

/// The subnet of the launch: the one named (which fixes the zone), else the default subnet of
/// the zone asked for (or of the region's first zone).
fn placement(state: &ApiState, region: &str, req: &Request) -> Result<Subnet, ApiError> {
    let zones = zone_names(region);
    if let Some(zone) = &req.availability_zone {
        if !zones.contains(zone) {
            return Err(ApiError::invalid_value(format!(
                "Invalid availability zone: [{zone}]"
            )));
        }
    }
    let subnets = region::defaults(region).subnets.clone();
    match &req.subnet_id {
        Some(id) => {
            let subnet = crate::api::kinds::subnet::find_subnet(state, region, id)?
                .ok_or_else(|| SubnetKind::IDS.not_found(&[id]))?;
            match &req.availability_zone {
                Some(zone) if *zone != subnet.availability_zone => {
                    Err(ApiError::invalid_value(format!(
                        "The subnet '{id}' is in availability zone {}, not {zone}",
                        subnet.availability_zone
                    )))
                }
                _ => Ok(subnet),
            }
        }
        None => {
            // Unasked, the region's first zone that is not impaired (EC2 places a launch
            // where it has capacity), else the first.
            let zone = req.availability_zone.as_ref().unwrap_or_else(|| {
                zones
                    .iter()
                    .find(|z| !state.introspection.zone_impaired(z))
                    .unwrap_or(&zones[0])
            });
            Ok(subnets
                .into_iter()
                .find(|s| s.availability_zone == *zone)
                .expect("one default subnet per zone"))
        }
    }
}

/// `InsufficientInstanceCapacity` (a server error, HTTP 500, as EC2 answers it) for a launch
/// into an impaired zone: its engine is unreachable. EC2's message names the zones that have
/// capacity. `chosen`: the request named the zone (or a subnet in it); else every zone is
/// impaired and ec2d picked one.
fn has_capacity(
    state: &ApiState,
    region: &str,
    zone: &str,
    instance_type: &str,
    chosen: bool,
) -> Result<(), ApiError> {
    if !state.introspection.zone_impaired(zone) {
        return Ok(());
    }
    let others: Vec<String> = zone_names(region)
        .into_iter()
        .filter(|z| z != zone && !state.introspection.zone_impaired(z))
        .collect();
    let mut message = if chosen {
        format!(
            "We currently do not have sufficient {instance_type} capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning additional capacity."
        )
    } else {
        format!(
            "We currently do not have sufficient {instance_type} capacity in any Availability Zone of {region}. Our system will be working on provisioning additional capacity."
        )
    };
    if !others.is_empty() {
        message.push_str(&format!(
            " You can currently get {instance_type} capacity by not specifying an Availability Zone in your request or choosing {}.",
            others.join(", ")
        ));
    }
    Err(ApiError::new(
        "InsufficientInstanceCapacity",
        message,
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
    ))
}

/// The instances an earlier call with this `ClientToken` launched in the region, in launch order.
fn launched_with_token(
    state: &ApiState,
    region: &str,
    token: &str,
) -> Result<Vec<Instance>, ApiError> {
    // An index, not a scan: RunInstances stays fast however many instances are stored.
    let mut launched = Vec::new();
    for id in state.store.instances_for_client_token(region, token)? {
        if let Some(instance) = state.store.instances().get(&id)? {
            launched.push(instance);
        }
    }
    launched.sort_by_key(|i| i.spec.ami_launch_index);
    Ok(launched)
}

/// The launch's groups (the region's `default` when none is named), resolved by id or name
/// and deduplicated, and the ports their ingress rules publish. The ports are copied into the
/// spec: later rule changes never alter a launched instance.
fn groups_and_ports(
    state: &ApiState,
    region: &str,
    subnet: &Subnet,
    requested: &[groups::GroupRef],
) -> Result<(Vec<GroupRef>, Vec<PortSpec>), ApiError> {
    let vpc_id = subnet.vpc_id.as_str();
    // Without groups a launch joins its VPC's `default` group.
    let default = [match state.store.vpcs().get_shared(vpc_id)? {
        Some(vpc) => groups::GroupRef::Id(vpc.spec.default_group_id.clone()),
        None => groups::GroupRef::Name(DEFAULT_GROUP_NAME.to_string()),
    }];
    let requested = if requested.is_empty() {
        &default[..]
    } else {
        requested
    };
    let mut groups = Vec::new();
    for reference in requested {
        let group = resolve_group(state, region, reference)?;
        groups::check_same_network(&group, subnet)?;
        if !groups
            .iter()
            .any(|g: &crate::model::SecurityGroup| g.metadata.name == group.metadata.name)
        {
            groups.push(group);
        }
    }
    let ports = published_ports(groups.iter().map(|g| &g.spec)).map_err(|count| {
        ApiError::invalid_value(format!(
            "The security groups of this launch publish {count} ports (22/tcp included), more than the {MAX_PUBLISHED_PORTS} an instance can publish; narrow the TCP/UDP port ranges of their ingress rules"
        ))
    })?;
    let refs = groups
        .into_iter()
        .map(|g| GroupRef {
            group_id: g.metadata.name,
            group_name: g.spec.group_name,
        })
        .collect();
    Ok((refs, ports))
}

/// The answer to a call whose `ClientToken` launched instances before in the region: that
/// call's reservation, or `IdempotentParameterMismatch`; `None` when the token is new.
fn earlier_launch(
    state: &ApiState,
    region: &str,
    token: &str,
    req: &Request,
) -> Result<Option<Response>, ApiError> {
    let launched = launched_with_token(state, region, token)?;
    let Some(first) = launched.first() else {
        return Ok(None);
    };
    if first.spec.image_id != req.image_id || first.spec.instance_type != req.instance_type {
        return Err(ApiError::client(
            "IdempotentParameterMismatch",
            "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).",
        ));
    }
    kind::check_dry_run(req.dry_run)?;
    Ok(Some(Response {
        reservation_id: first.spec.reservation_id.clone(),
        instances: launched,
    }))
}

/// Checks the placement, groups, key and AMI, then writes all instances in one store call.
/// A `ClientToken` seen before in the region answers that call's reservation and writes nothing.
/// No lock is held: the store's transaction claims the token and checks that every group still
/// exists, so a retried call never launches twice and a deleted group is never joined.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Response, ApiError> {
    let subnet = placement(state, region, &req)?;
    if let Some(token) = &req.client_token {
        if let Some(earlier) = earlier_launch(state, region, token, &req)? {
            return Ok(earlier);
        }
    }
    let (security_groups, ports) = groups_and_ports(state, region, &subnet, &req.security_groups)?;
    let public_key = match &req.key_name {
        Some(name) => Some(public_key_for(&state.store, region, name)?),
        None => None,
    };
    let image_ref = images::launch_reference(state, region, &req.image_id)?;
    let (root_device, planned) = launch_volumes(state, region, &req)?;
    let mut options = req.options;
    if images::requires_imds_v2(state, region, &req.image_id)? {
        imds_v2_defaults(req.metadata_asked, &mut options.metadata);
    }
    kind::check_dry_run(req.dry_run)?;
    let zone_chosen = req.availability_zone.is_some() || req.subnet_id.is_some();
    has_capacity(
        state,
        region,
        &subnet.availability_zone,
        &req.instance_type,
        zone_chosen,
    )?;
    // The region's network is written to: its `default` group is stored first.
    groups::ensure_default_group(state, region)?;

    let mut tags = req.tags.clone();
    if state.vm_manager == VmManager::Docker {
        tags.insert(VM_MANAGER_TAG.to_string(), "docker".to_string());
    }
    let reservation_id = ReservationId::generate();
    // One timestamp for the whole reservation: it is launched by one call.
    let launched_at = now();
    let mut instances: Vec<Instance> = (0..req.count)
        .map(|index| {
            let id = InstanceId::generate();
            Object {
                api_version: API_VERSION.to_string(),
                kind: INSTANCE_KIND.to_string(),
                metadata: ObjectMeta::new(id.as_str(), region, launched_at),
                spec: InstanceSpec {
                    image_id: req.image_id.clone(),
                    image_ref: image_ref.clone(),
                    instance_type: req.instance_type.clone(),
                    desired: DesiredState::Running,
                    reservation_id: reservation_id.clone(),
                    ami_launch_index: index,
                    availability_zone: subnet.availability_zone.clone(),
                    shutdown_behavior: req.shutdown_behavior,
                    tags: tags.clone(),
                    key_name: req.key_name.clone(),
                    public_key: public_key.clone(),
                    user_data: req.user_data.clone(),
                    security_groups: security_groups.clone(),
                    ports: ports.clone(),
                    subnet_id: Some(subnet.subnet_id.clone()),
                    vpc_id: Some(subnet.vpc_id.clone()),
                    private_ip: None,
                    client_token: req.client_token.clone(),
                    user_transition_at: None,
                    reboots_requested: 0,
                    disable_api_termination: req.disable_api_termination,
                    disable_api_stop: req.disable_api_stop,
                    options,
                    iam_instance_profile: req
                        .iam_instance_profile
                        .clone()
                        .map(|arn| IamProfileRef::associate(arn, launched_at)),
                    root_device_name: Some(root_device.clone()),
                    interface_description: req.interface_description.clone(),
                },
                status: InstanceStatus::default(),
            }
        })
        .collect();
    // Addresses are picked from what live instances hold, then claimed in the launch's own
    // transaction; a concurrent launch that claimed one first makes this one pick again.
    let mut attempts = 0;
    let written = loop {
        attempts += 1;
        if state.allocate_private_ips && subnet.vpc_id != region::defaults(region).vpc.vpc_id {
            instances = with_private_ips(state, &subnet, &req, instances)?;
        }
        // Each instance's volumes, for the instances that fit (their ids change with each
        // attempt; none is stored until the launch's transaction commits).
        let volumes: Vec<Volume> = instances
            .iter()
            .flat_map(|i| volumes_for(i, &planned, &req.volume_tags, launched_at))
            .collect();
        match state.store.create_instances(
            &instances,
            &volumes,
            region,
            req.client_token.as_deref(),
        ) {
            Err(StoreError::NameTaken { kind, name, .. }) if kind == PRIVATE_IP_KIND => {
                if req.private_ip.is_some() || attempts >= MAX_ADDRESS_ATTEMPTS {
                    return Err(private_ips::in_use_error(&name));
                }
            }
            other => break other,
        }
    };
    match written {
        Ok(()) => {}
        // A concurrent call with the same token launched first: answer with its launch.
        Err(StoreError::NameTaken { kind, name, .. }) if kind == CLIENT_TOKEN_KIND => {
            return earlier_launch(state, region, &name, &req)?.ok_or_else(|| {
                ApiError::internal(format!("the launch of ClientToken {name} vanished"))
            });
        }
        // A group was deleted since it was resolved.
        Err(StoreError::NotFound { kind, id }) if kind == SECURITY_GROUP_KIND => {
            return Err(groups::GroupRef::Id(id).not_found(region));
        }
        Err(e) => return Err(e.into()),
    }
    // Every line about an instance carries its id. A launch of one (the common case) says it
    // all in that instance's line; a larger one adds a line for the reservation.
    if let [instance] = instances.as_slice() {
        tracing::info!(
            instance_id = %instance.metadata.name,
            %reservation_id,
            image_id = %req.image_id,
            subnet_id = %subnet.subnet_id,
            ports = ports.len(),
            %region,
            "instance requested"
        );
    } else {
        tracing::info!(
            reservation_id = %reservation_id,
            count = instances.len(),
            image_id = %req.image_id,
            subnet_id = %subnet.subnet_id,
            ports = ports.len(),
            %region,
            "instances requested"
        );
        for instance in &instances {
            tracing::info!(
                instance_id = %instance.metadata.name,
                %reservation_id,
                image_id = %req.image_id,
                "instance requested"
            );
        }
    }
    Ok(Response {
        reservation_id,
        instances,
    })
}

/// The AMI's root device name and the volumes each instance of the launch gets: the AMI's
/// block device mapping (an 8 GiB gp2 root when it records none) changed by the launch's
/// `BlockDeviceMapping`s. The snapshots the launch names are read first (`InvalidSnapshot.NotFound`
/// for one not in the region).
fn launch_volumes(
    state: &ApiState,
    region: &str,
    req: &Request,
) -> Result<(String, Vec<PlannedVolume>), ApiError> {
    let ami = images::find_ami(state, region, &req.image_id)?;
    let root_device = ami
        .as_ref()
        .map_or(ROOT_DEVICE_NAME, |a| a.root_device_name())
        .to_string();
    let ami_devices = ami.as_ref().map(|a| a.block_devices()).unwrap_or_default();
    let mut snapshot_sizes: HashMap<String, u32> = HashMap::new();
    for mapping in &req.block_devices {
        if let MappingKind::Ebs(EbsMapping {
            snapshot_id: Some(id),
            ..
        }) = &mapping.device
        {
            let snapshot = state.store.snapshots().get_shared(id)?;
            if let Some(snapshot) = snapshot.filter(|s| {
                s.metadata.namespace == region && s.metadata.deletion_timestamp.is_none()
            }) {
                snapshot_sizes.insert(id.clone(), snapshot.spec.volume_size_gib);
            }
        }
    }
    let planned = plan_volumes(&root_device, &ami_devices, &req.block_devices, |id| {
        snapshot_sizes.get(id).copied()
    })?;
    Ok((root_device, planned))
}

/// How many times a launch picks addresses again after concurrent launches took its picks.
const MAX_ADDRESS_ATTEMPTS: u32 = 8;

/// Gives each instance in a created VPC its private address: the one asked for, or the
/// subnet's lowest free ones. (The region's default VPC keeps LocalStack's layout: its
/// instances are on Docker's default bridge at the engine's address, so any number of ec2d
/// stores share one engine and `docker inspect`'s `.NetworkSettings.IPAddress` still answers.) When the subnet holds fewer than `MaxCount` but at least `MinCount`, the launch is
/// cut to what fits, as EC2 launches as many as it can.
fn with_private_ips(
    state: &ApiState,
    subnet: &Subnet,
    req: &Request,
    mut instances: Vec<Instance>,
) -> Result<Vec<Instance>, ApiError> {
    let in_use = state.store.private_ips_in_use(&subnet.vpc_id)?;
    let addresses = match &req.private_ip {
        Some(asked) => vec![private_ips::check_requested(
            asked,
            &subnet.cidr_block,
            &in_use,
        )?],
        None => private_ips::pick_free(&subnet.cidr_block, &in_use, req.count),
    };
    if addresses.len() < req.min_count.max(1) as usize {
        return Err(private_ips::exhausted(&subnet.subnet_id));
    }
    instances.truncate(addresses.len());
    for (instance, address) in instances.iter_mut().zip(addresses) {
        instance.spec.private_ip = Some(address);
    }
    Ok(instances)
}

/// `reservationId`, `ownerId`, `groupSet`, `instancesSet`.
pub fn render(resp: &Response) -> String {
    let mut w = XmlWriter::new();
    w.field("reservationId", &resp.reservation_id);
    w.field("ownerId", ACCOUNT_ID);
    w.empty("groupSet");
    w.set("instancesSet", &resp.instances, |w, i| {
        render_instance(w, i, None, &[])
    });
    w.finish()
}

/// The dispatch entry. A `LaunchTemplate` fills in what the request leaves out before the
/// launch is parsed like any other (so every parameter RunInstances takes can come from a
/// template), and its instances get the template's `aws:ec2launchtemplate:*` tags.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let launch = launch_templates::resolve_launch(state, region, params)?;
    let mut req = parse(launch.params())?;
    req.tags.extend(launch.tags());
    Ok(render(&handle(state, region, req)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn minimal_request_gets_defaults() {
        let req = parse_str("ImageId=ami-000001&MinCount=1&MaxCount=3").unwrap();
        assert_eq!(req.image_id.as_str(), "ami-000001");
        assert_eq!(req.count, 3);
        assert_eq!(req.instance_type, "m1.small");
        assert_eq!(req.shutdown_behavior, ShutdownBehavior::Stop);
        assert_eq!(req.availability_zone, None);
        assert!(!req.dry_run);
        assert!(req.tags.is_empty());
    }

    #[test]
    fn full_request() {
        let req = parse_str(
            "ImageId=ami-000001&MinCount=2&MaxCount=2&InstanceType=t3.micro&InstanceInitiatedShutdownBehavior=terminate\
             &Placement.AvailabilityZone=us-west-2b&DryRun=true&TagSpecification.1.ResourceType=instance\
             &TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=web&ClientToken=abc",
        )
        .unwrap();
        assert_eq!(req.count, 2);
        assert_eq!(req.instance_type, "t3.micro");
        assert_eq!(req.shutdown_behavior, ShutdownBehavior::Terminate);
        assert!(!req.disable_api_termination && !req.disable_api_stop);
        let protected = parse(&QueryParams::from_query(
            "ImageId=ami-000001&MinCount=1&MaxCount=1&DisableApiTermination=true&DisableApiStop=true",
        ))
        .unwrap();
        assert!(protected.disable_api_termination && protected.disable_api_stop);
        assert_eq!(req.availability_zone.as_deref(), Some("us-west-2b"));
        assert!(req.dry_run);
        assert_eq!(req.tags["Name"], "web");
    }

    #[test]
    fn errors() {
        let code = |q: &str| parse_str(q).unwrap_err().code.to_string();
        let msg = |q: &str| parse_str(q).unwrap_err().message;
        assert_eq!(
            msg("MinCount=1&MaxCount=1"),
            "The request must contain the parameter ImageId"
        );
        assert_eq!(
            code("ImageId=rocket&MinCount=1&MaxCount=1"),
            "InvalidAMIID.Malformed"
        );
        assert_eq!(
            msg("ImageId=rocket&MinCount=1&MaxCount=1"),
            "Invalid id: \"rocket\" (expecting \"ami-...\")"
        );
        assert_eq!(
            msg("ImageId=ami-1&MaxCount=1"),
            "The request must contain the parameter MinCount"
        );
        assert_eq!(
            msg("ImageId=ami-1&MinCount=1"),
            "The request must contain the parameter MaxCount"
        );
        assert_eq!(
            msg("ImageId=ami-1&MinCount=0&MaxCount=1"),
            "Value (0) for parameter minCount is invalid. Expected a positive integer."
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=3&MaxCount=2"),
            "InvalidParameterValue"
        );
        assert_eq!(
            msg("ImageId=ami-1&MinCount=1&MaxCount=1001"),
            "Value (1001) for parameter maxCount is invalid. Expected a value less than or equal to 1000."
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=x&MaxCount=1"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=1&MaxCount=1&InstanceInitiatedShutdownBehavior=explode"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=1&MaxCount=1&InstanceType=%3Cscript%3E"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=1&MaxCount=1&DryRun=perhaps"),
            "InvalidParameterValue"
        );
    }

    #[test]
    fn user_data_base64_raw_and_limit() {
        let b64 = STANDARD.encode("#!/bin/sh\nwhoami | tee /myname\n");
        assert_eq!(user_data(&b64).unwrap(), Some(b64.clone()));
        // Raw text (as some Terraform versions send it) is stored base64-encoded.
        let raw = "#!/bin/sh\necho hi";
        assert_eq!(user_data(raw).unwrap(), Some(STANDARD.encode(raw)));
        // MIME-style wrapped base64 is unwrapped, not mistaken for text.
        let long = STANDARD.encode("x".repeat(100));
        let wrapped = format!("{}\r\n{}", &long[..76], &long[76..]);
        assert_eq!(user_data(&wrapped).unwrap(), Some(long));
        assert_eq!(user_data("").unwrap(), None);
        assert!(user_data(&STANDARD.encode(vec![b'a'; MAX_USER_DATA])).is_ok());
        let e = user_data(&STANDARD.encode(vec![b'a'; MAX_USER_DATA + 1])).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(e.message, "User data is limited to 16384 bytes");
        assert!(
            user_data(&"#".repeat(MAX_USER_DATA + 1)).is_err(),
            "raw text counts too"
        );
    }

    #[test]
    fn groups_subnet_key_and_token() {
        let req = parse_str(
            "ImageId=ami-1&MinCount=1&MaxCount=1&SecurityGroupId.1=sg-0abc&SecurityGroup.1=web\
             &SecurityGroupId.2=sg-0abc&SubnetId=subnet-0abc&KeyName=alice&ClientToken=t-1",
        )
        .unwrap();
        assert_eq!(
            req.security_groups,
            vec![
                groups::GroupRef::Id("sg-0abc".into()),
                groups::GroupRef::Name("web".into())
            ]
        );
        assert_eq!(req.subnet_id.as_deref(), Some("subnet-0abc"));
        assert_eq!(req.key_name.as_deref(), Some("alice"));
        assert_eq!(req.client_token.as_deref(), Some("t-1"));
        let req = parse_str(
            "ImageId=ami-1&MinCount=1&MaxCount=1&NetworkInterface.1.DeviceIndex=0\
             &NetworkInterface.1.SubnetId=subnet-1&NetworkInterface.1.SecurityGroupId.1=default",
        )
        .unwrap();
        assert_eq!(req.subnet_id.as_deref(), Some("subnet-1"));
        assert_eq!(
            req.security_groups,
            vec![groups::GroupRef::Name("default".into())]
        );
        let code = |q: &str| parse_str(q).unwrap_err().code.to_string();
        assert_eq!(
            code("ImageId=ami-1&MinCount=1&MaxCount=1&SubnetId=subnet-1&NetworkInterface.1.SubnetId=subnet-2"),
            "InvalidParameterCombination"
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=1&MaxCount=1&SecurityGroupId.1=sg-%21"),
            "InvalidGroupId.Malformed"
        );
        assert_eq!(
            code("ImageId=ami-1&MinCount=1&MaxCount=1&SubnetId=net-1"),
            "InvalidSubnetID.Malformed"
        );
        let long = "t".repeat(65);
        assert_eq!(
            code(&format!(
                "ImageId=ami-1&MinCount=1&MaxCount=1&ClientToken={long}"
            )),
            "InvalidParameterValue"
        );
    }

    #[test]
    fn instance_types_come_from_the_catalogue() {
        assert!(parse(&QueryParams::from_query(
            "ImageId=ami-1&MinCount=1&MaxCount=1"
        ))
        .is_ok());
        for bad in ["micro", "T3.micro", "t3.", "t3.mega"] {
            let e = parse(&QueryParams::from_query(&format!(
                "ImageId=ami-1&MinCount=1&MaxCount=1&InstanceType={bad}"
            )))
            .unwrap_err();
            assert_eq!(
                e.message,
                format!("Invalid value '{bad}' for InstanceType.")
            );
        }
    }
}
