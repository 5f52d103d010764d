//! `ModifyInstanceAttribute`: changes one attribute of one instance (shutdown behaviour, protections, type, user data, groups, source/dest check, EBS optimization).

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::instance_types::find as find_type;
use crate::model::{
    CpuCredits, GroupRef as ModelGroupRef, InstanceId, InstanceState, ShutdownBehavior,
};
use crate::store::StoreError;

use crate::api::actions::run_instances::user_data;
use crate::api::block_devices::{attached_devices, short_device, InstanceVolumes};
use crate::api::groups::{resolve_group, GroupRef};
use crate::api::kinds::credit_specification::credits;
use crate::api::kinds::instance_type::known_type;
use crate::api::{groups, instances, kind, render};
use crate::model::Instance;

/// One attribute change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `InstanceInitiatedShutdownBehavior`.
    ShutdownBehavior(ShutdownBehavior),
    /// `DisableApiTermination`.
    DisableApiTermination(bool),
    /// `DisableApiStop`.
    DisableApiStop(bool),
    /// `InstanceType`: only while the instance is stopped, as in EC2.
    InstanceType(String),
    /// `UserData` (canonical base64): only while stopped, as in EC2. Recorded and shown;
    /// like EC2's default cloud-init, the instance does not run user data a second time.
    UserData(Option<String>),
    /// `GroupId.N`: the instance's new groups. Recorded and shown; the host ports published
    /// when its container was created stay as they are (a container's published ports are
    /// fixed at creation).
    Groups(Vec<String>),
    /// `SourceDestCheck`.
    SourceDestCheck(bool),
    /// `EbsOptimized`: only while stopped, as in EC2.
    EbsOptimized(bool),
    /// `BlockDeviceMapping.N.Ebs.DeleteOnTermination`: each device's new setting, written to
    /// the attachment of the volume mapped there (the only block device change EC2 makes on a
    /// launched instance).
    DeleteOnTermination(Vec<(String, bool)>),
    /// An attribute EC2 defines that ec2d cannot change ([`NOT_MODIFIABLE`]): refused with
    /// `UnsupportedOperation`, after `DryRun` has been answered as EC2 would.
    Unsupported(&'static str),
}

/// A validated ModifyInstanceAttribute request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `InstanceId`.
    pub instance_id: InstanceId,
    /// The one change asked for.
    pub change: Change,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Attributes EC2 defines that ec2d cannot change: what a container does not have.
const NOT_MODIFIABLE: &[&str] = &["kernel", "ramdisk", "enaSupport", "sriovNetSupport"];

/// The structured form's parameter for each attribute (`--instance-type Value=…` sends
/// `InstanceType.Value`), and the attribute name of the `Attribute`/`Value` form.
const FORMS: &[(&str, &str)] = &[
    (
        "InstanceInitiatedShutdownBehavior",
        "instanceInitiatedShutdownBehavior",
    ),
    ("DisableApiTermination", "disableApiTermination"),
    ("DisableApiStop", "disableApiStop"),
    ("InstanceType", "instanceType"),
    ("UserData", "userData"),
    ("SourceDestCheck", "sourceDestCheck"),
    ("EbsOptimized", "ebsOptimized"),
    ("EnaSupport", "enaSupport"),
    ("SriovNetSupport", "sriovNetSupport"),
    ("Kernel", "kernel"),
    ("Ramdisk", "ramdisk"),
];

fn boolean(attribute: &str, raw: &str) -> Result<bool, ApiError> {
    match raw.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid_value(format!(
            "Value ({raw}) for parameter {attribute} is invalid. Expected: 'true' or 'false'."
        ))),
    }
}

/// `BlockDeviceMapping.N.DeviceName` with `.Ebs.DeleteOnTermination`, one per device.
fn delete_on_termination(params: &QueryParams) -> Result<Vec<(String, bool)>, ApiError> {
    let mut changes: Vec<(String, bool)> = Vec::new();
    for (i, mapping) in params.structs("BlockDeviceMapping").iter().enumerate() {
        let n = i + 1;
        let device = mapping
            .get("DeviceName")
            .filter(|d| !d.is_empty())
            .ok_or_else(|| {
                ApiError::missing_parameter(&format!("BlockDeviceMapping.{n}.DeviceName"))
            })?;
        let on = mapping.bool("Ebs.DeleteOnTermination")?.ok_or_else(|| {
            ApiError::missing_parameter(&format!("BlockDeviceMapping.{n}.Ebs.DeleteOnTermination"))
        })?;
        if changes
            .iter()
            .any(|(d, _)| short_device(d) == short_device(device))
        {
            return Err(ApiError::client(
                "InvalidBlockDeviceMapping",
                format!(
                    "The device '{}' is used in more than one block-device mapping",
                    short_device(device)
                ),
            ));
        }
        changes.push((device.to_string(), on));
    }
    if changes.is_empty() {
        return Err(ApiError::missing_parameter("BlockDeviceMapping"));
    }
    Ok(changes)
}

/// `InvalidInstanceAttributeValue` for a device no volume is attached at.
fn not_mapped(device: &str) -> ApiError {
    ApiError::client(
        "InvalidInstanceAttributeValue",
        format!("No device is currently mapped at {device}"),
    )
}

/// Changes `deleteOnTermination` of the volumes attached to the instance at the devices named:
/// every device is checked first, then each volume's attachment is changed by a
/// compare-and-swap on its record (moving `resourceVersion` only: the reconciler has nothing
/// to do until the instance terminates).
fn change_delete_on_termination(
    state: &ApiState,
    region: &str,
    instance: &Instance,
    changes: &[(String, bool)],
) -> Result<(), ApiError> {
    let id = instance.metadata.name.as_str();
    let volumes = InstanceVolumes::of_instance(state, region, id)?;
    let devices = attached_devices(instance, volumes.of(id));
    let mut targets = Vec::with_capacity(changes.len());
    for (device, on) in changes {
        let volume_id = devices
            .iter()
            .find(|d| short_device(d.device_name) == short_device(device))
            .map(|d| d.volume_id.to_string())
            .ok_or_else(|| not_mapped(device))?;
        targets.push((volume_id, device, *on));
    }
    for (volume_id, device, on) in targets {
        let changed = state
            .store
            .volumes()
            .update_spec_same_generation::<StoreError>(&volume_id, |volume| {
                let Some(attachment) = volume.spec.attachments.iter_mut().find(|a| {
                    a.instance_id == id && short_device(&a.device) == short_device(device)
                }) else {
                    return Err(StoreError::NotFound {
                        kind: crate::model::VOLUME_KIND,
                        id: volume_id.clone(),
                    });
                };
                let changed = attachment.delete_on_termination != on;
                attachment.delete_on_termination = on;
                Ok(changed)
            });
        match changed {
            Ok(_) => {}
            // Detached (or deleted) since it was read.
            Err(StoreError::NotFound { .. }) => return Err(not_mapped(device)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Finds the one attribute given, in either form; more than one is refused, as EC2 does.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let instance_id = InstanceId::parse(params.require("InstanceId")?)?;
    let mut given: Vec<(&str, String)> = Vec::new();
    if let Some(attribute) = params.get("Attribute").filter(|a| !a.is_empty()) {
        let value = params.get("Value").unwrap_or_default().to_string();
        given.push((attribute, value));
    }
    for (param, attribute) in FORMS {
        if let Some(value) = params.get(&format!("{param}.Value")) {
            given.push((attribute, value.to_string()));
        }
    }
    let group_ids = params.list("GroupId");
    if !group_ids.is_empty() {
        given.push(("groupSet", String::new()));
    }
    if params
        .pairs()
        .iter()
        .any(|(k, _)| k.starts_with("BlockDeviceMapping."))
    {
        given.push(("blockDeviceMapping", String::new()));
    }
    let (attribute, value) = match given.as_slice() {
        [] => return Err(ApiError::missing_parameter("Attribute")),
        [one] => one.clone(),
        _ => {
            return Err(ApiError::invalid_combination(
                "Only one attribute can be modified at a time",
            ))
        }
    };
    let change = match attribute {
        "instanceInitiatedShutdownBehavior" => Change::ShutdownBehavior(match value.as_str() {
            "stop" => ShutdownBehavior::Stop,
            "terminate" => ShutdownBehavior::Terminate,
            other => {
                return Err(ApiError::invalid_value(format!(
                    "Value ({other}) for parameter instanceInitiatedShutdownBehavior is invalid. Expected 'stop' or 'terminate'."
                )))
            }
        }),
        "disableApiTermination" => {
            Change::DisableApiTermination(boolean("disableApiTermination", &value)?)
        }
        "disableApiStop" => Change::DisableApiStop(boolean("disableApiStop", &value)?),
        "instanceType" => {
            known_type(&value)?;
            Change::InstanceType(value)
        }
        "userData" => Change::UserData(user_data(&value)?),
        "sourceDestCheck" => Change::SourceDestCheck(boolean("sourceDestCheck", &value)?),
        "ebsOptimized" => Change::EbsOptimized(boolean("ebsOptimized", &value)?),
        "blockDeviceMapping" => Change::DeleteOnTermination(delete_on_termination(params)?),
        "groupSet" => {
            let ids = groups::parse_group_ids(group_ids)?;
            if ids.is_empty() {
                return Err(ApiError::missing_parameter("GroupId"));
            }
            Change::Groups(ids)
        }
        other if NOT_MODIFIABLE.contains(&other) => Change::Unsupported(
            NOT_MODIFIABLE
                .iter()
                .find(|a| **a == other)
                .expect("just checked"),
        ),
        other => {
            return Err(ApiError::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Unknown attribute."
            )))
        }
    };
    Ok(Request {
        instance_id,
        change,
        dry_run: kind::dry_run(params)?,
    })
}

/// Checks the instance and the change's precondition, then writes it. None of these asks
/// anything of the reconciler, so the generation stays and the state a client sees with it.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    let instance =
        instances::load_instances(state, region, std::slice::from_ref(&req.instance_id))?
            .pop()
            .expect("load_instances returns one instance per id");
    let check = |shown: InstanceState| match &req.change {
        Change::InstanceType(_) | Change::UserData(_) | Change::EbsOptimized(_)
            if shown != InstanceState::Stopped =>
        {
            Err(ApiError::client(
                "IncorrectInstanceState",
                format!(
                    "The instance '{}' is not in the 'stopped' state.",
                    req.instance_id
                ),
            ))
        }
        _ if shown == InstanceState::Terminated => Err(ApiError::client(
            "IncorrectInstanceState",
            format!(
                "The instance '{}' is not in a state from which it can be modified.",
                req.instance_id
            ),
        )),
        _ => Ok(()),
    };
    check(instances::shown_state(&instance))?;
    let groups = match &req.change {
        Change::Groups(ids) => {
            let resource = format!("instance {}", req.instance_id);
            let network = instance
                .spec
                .vpc_id
                .as_deref()
                .map(|vpc| (vpc, resource.as_str()));
            Some(resolve_groups(state, region, ids, network)?)
        }
        _ => None,
    };
    kind::check_dry_run(req.dry_run)?;
    if let Change::Unsupported(attribute) = req.change {
        return Err(ApiError::client(
            "UnsupportedOperation",
            format!("ec2d cannot modify the attribute '{attribute}' of an instance"),
        ));
    }
    if let Some(groups) = groups {
        return move_to_groups(state, region, &req.instance_id, groups, check);
    }
    if let Change::DeleteOnTermination(changes) = &req.change {
        change_delete_on_termination(state, region, &instance, changes)?;
        tracing::info!(instance_id = %req.instance_id, change = ?req.change, "instance attribute modified");
        return Ok(());
    }
    state
        .store
        .instances()
        .update_spec_same_generation::<ApiError>(req.instance_id.as_str(), |obj| {
            check(instances::shown_state(obj))?;
            // The credit option the instance had (stored, or its type's for an older record).
            let credits_before = credits(obj);
            let spec = &mut obj.spec;
            let before = spec.clone();
            match &req.change {
                Change::ShutdownBehavior(b) => spec.shutdown_behavior = *b,
                Change::DisableApiTermination(on) => spec.disable_api_termination = *on,
                Change::DisableApiStop(on) => spec.disable_api_stop = *on,
                Change::InstanceType(t) => {
                    spec.instance_type = t.clone();
                    // The option stays across resizes (as in EC2); a resize onto a burstable
                    // type gives an instance that had none its family's default.
                    spec.options.cpu_credits =
                        credits_before.or_else(|| find_type(t).and_then(CpuCredits::default_for));
                }
                Change::UserData(data) => spec.user_data = data.clone(),
                Change::SourceDestCheck(on) => spec.options.source_dest_check = *on,
                Change::EbsOptimized(on) => spec.options.ebs_optimized = *on,
                Change::Groups(_) | Change::Unsupported(_) | Change::DeleteOnTermination(_) => {}
            }
            Ok(*spec != before)
        })?;
    tracing::info!(instance_id = %req.instance_id, change = ?req.change, "instance attribute modified");
    Ok(())
}

/// The groups named by id, each existing in the region (the `default` group stored first
/// when named, so its uses can be counted); with `network`, each in that VPC, else EC2's
/// `InvalidParameter` naming the group and `network`'s resource (an interface or subnet).
pub(crate) fn resolve_groups(
    state: &ApiState,
    region: &str,
    ids: &[String],
    network: Option<(&str, &str)>,
) -> Result<Vec<ModelGroupRef>, ApiError> {
    let mut resolved = Vec::with_capacity(ids.len());
    for id in ids {
        let group = resolve_group(state, region, &GroupRef::Id(id.clone()))?;
        if let Some((vpc_id, resource)) = network {
            if group.spec.vpc_id != vpc_id {
                return Err(ApiError::client(
                    "InvalidParameter",
                    format!(
                        "Security group {} and {resource} belong to different networks.",
                        group.metadata.name
                    ),
                ));
            }
        }
        resolved.push(ModelGroupRef {
            group_id: group.metadata.name,
            group_name: group.spec.group_name,
        });
    }
    groups::ensure_default_group(state, region)?;
    Ok(resolved)
}

/// Writes the instance's new groups, then counts a use of each in the store, so that a
/// concurrent DeleteSecurityGroup either sees the instance in the group or has already
/// deleted it; in that case the write is undone and the group reported missing.
pub(crate) fn move_to_groups(
    state: &ApiState,
    region: &str,
    instance_id: &InstanceId,
    groups: Vec<ModelGroupRef>,
    check: impl Fn(InstanceState) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let (before, _) = state
        .store
        .instances()
        .update_spec_same_generation::<ApiError>(instance_id.as_str(), |obj| {
            check(instances::shown_state(obj))?;
            let changed = obj.spec.security_groups != groups;
            obj.spec.security_groups = groups.clone();
            Ok(changed)
        })?;
    let ids: Vec<&str> = groups.iter().map(|g| g.group_id.as_str()).collect();
    match state.store.count_group_uses(&ids) {
        Ok(()) => {}
        Err(StoreError::NotFound { id, .. }) => {
            state
                .store
                .instances()
                .update_spec_same_generation::<ApiError>(instance_id.as_str(), |obj| {
                    let ours = obj.spec.security_groups == groups;
                    if ours {
                        obj.spec.security_groups = before.spec.security_groups.clone();
                    }
                    Ok(ours)
                })?;
            return Err(GroupRef::Id(id).not_found(region));
        }
        Err(e) => return Err(e.into()),
    }
    let ports: Vec<String> = before
        .spec
        .ports
        .iter()
        .map(|p| format!("{}/{}", p.port, p.protocol.as_str()))
        .collect();
    tracing::info!(
        instance_id = %instance_id,
        groups = ?ids,
        published_ports = ?ports,
        "instance security groups changed; its published host ports stay those fixed when its container was created"
    );
    Ok(())
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, parse(params)?)?;
    Ok(render::render_return_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn both_forms_parse_to_one_change() {
        let id = "InstanceId=i-00000001";
        let change = |q: &str| parse_str(&format!("{id}&{q}")).unwrap().change;
        assert_eq!(
            change("InstanceInitiatedShutdownBehavior.Value=terminate"),
            Change::ShutdownBehavior(ShutdownBehavior::Terminate)
        );
        assert_eq!(
            change("Attribute=instanceInitiatedShutdownBehavior&Value=stop"),
            Change::ShutdownBehavior(ShutdownBehavior::Stop)
        );
        assert_eq!(
            change("DisableApiTermination.Value=true"),
            Change::DisableApiTermination(true)
        );
        assert_eq!(
            change("Attribute=disableApiStop&Value=False"),
            Change::DisableApiStop(false)
        );
        assert_eq!(
            change("InstanceType.Value=t3.large"),
            Change::InstanceType("t3.large".into())
        );
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let code = |q: &str| parse_str(q).unwrap_err().code;
        assert_eq!(
            code("Attribute=instanceType&Value=t3.large"),
            "MissingParameter"
        );
        assert_eq!(code("InstanceId=i-00000001"), "MissingParameter");
        assert_eq!(
            code("InstanceId=i-00000001&InstanceType.Value=t3.large&DisableApiStop.Value=true"),
            "InvalidParameterCombination"
        );
        assert_eq!(
            code("InstanceId=i-00000001&DisableApiTermination.Value=maybe"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("InstanceId=i-00000001&InstanceInitiatedShutdownBehavior.Value=explode"),
            "InvalidParameterValue"
        );
        let change = |q: &str| parse(&QueryParams::from_query(q)).unwrap().change;
        assert_eq!(
            change("InstanceId=i-00000001&GroupId.1=sg-0123456789abcdef0&GroupId.2=sg-0123456789abcdef0"),
            Change::Groups(vec!["sg-0123456789abcdef0".into()])
        );
        assert_eq!(
            code("InstanceId=i-00000001&GroupId.1=web"),
            "InvalidGroupId.Malformed"
        );
        assert_eq!(
            change("InstanceId=i-00000001&UserData.Value=ZWNobw=="),
            Change::UserData(Some("ZWNobw==".into()))
        );
        assert_eq!(
            change("InstanceId=i-00000001&SourceDestCheck.Value=false"),
            Change::SourceDestCheck(false)
        );
        assert_eq!(
            change("InstanceId=i-00000001&Attribute=ebsOptimized&Value=true"),
            Change::EbsOptimized(true)
        );
        assert_eq!(
            change("InstanceId=i-00000001&Attribute=kernel&Value=aki-1"),
            Change::Unsupported("kernel")
        );
        assert_eq!(
            code("InstanceId=i-00000001&Attribute=colour&Value=red"),
            "InvalidParameterValue"
        );
    }
}
