//! `ModifyNetworkInterfaceAttribute`: changes one attribute of an instance's primary interface (security groups, source/dest check, description), the way Terraform changes an instance's `vpc_security_group_ids`.

use crate::api::actions::modify_instance_attribute::{move_to_groups, resolve_groups};
use crate::api::error::ApiError;
use crate::api::groups::parse_group_ids;
use crate::api::kind::{self, Kind};
use crate::api::kinds::network_interface::{self, NetworkInterfaceKind};
use crate::api::query::QueryParams;
use crate::api::render;
use crate::api::state::ApiState;
use crate::api::{instances, kinds::network_interface::Shown};
use crate::model::{InstanceId, InstanceState};

/// One attribute change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `SecurityGroupId.N`: the interface's (and so its instance's) new groups, by id.
    Groups(Vec<String>),
    /// `SourceDestCheck.Value`.
    SourceDestCheck(bool),
    /// `Description.Value`.
    Description(String),
    /// `Attachment.AttachmentId` with `Attachment.DeleteOnTermination`.
    DeleteOnTermination {
        /// The attachment named.
        attachment_id: String,
        /// The setting asked for.
        on: bool,
    },
    /// An attribute EC2 defines that ec2d does not model (ENA Express, connection tracking,
    /// public address, IPv6, associated subnets): `UnsupportedOperation` after `DryRun`.
    Unsupported(&'static str),
}

/// A validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `NetworkInterfaceId`.
    pub interface_id: String,
    /// The one change asked for.
    pub change: Change,
    /// `DryRun`.
    pub dry_run: bool,
}

/// The longest interface description EC2 keeps.
const MAX_DESCRIPTION: usize = 255;

/// The parameters of the attributes ec2d does not model, by their prefix on the wire.
const NOT_MODELLED: &[(&str, &str)] = &[
    ("EnaSrdSpecification.", "EnaSrdSpecification"),
    (
        "ConnectionTrackingSpecification.",
        "ConnectionTrackingSpecification",
    ),
    ("AssociatePublicIpAddress", "AssociatePublicIpAddress"),
    ("EnablePrimaryIpv6", "EnablePrimaryIpv6"),
    ("AssociatedSubnetId.", "AssociatedSubnetIds"),
    ("Attachment.EnaQueueCount", "Attachment.EnaQueueCount"),
    (
        "Attachment.DefaultEnaQueueCount",
        "Attachment.DefaultEnaQueueCount",
    ),
];

/// Finds the one attribute given; more than one is refused, as EC2 documents ("You can
/// specify only one attribute at a time").
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let interface_id = params.require("NetworkInterfaceId")?.to_string();
    let mut changes: Vec<Change> = Vec::new();
    let group_ids = params.list("SecurityGroupId");
    if !group_ids.is_empty() {
        changes.push(Change::Groups(parse_group_ids(group_ids)?));
    }
    if let Some(on) = params.bool("SourceDestCheck.Value")? {
        changes.push(Change::SourceDestCheck(on));
    }
    if let Some(description) = params.get("Description.Value") {
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(ApiError::invalid_value(format!(
                "Value for parameter description is invalid. Expected at most {MAX_DESCRIPTION} characters."
            )));
        }
        changes.push(Change::Description(description.to_string()));
    }
    let attachment_id = params.get("Attachment.AttachmentId");
    let delete_on_termination = params.bool("Attachment.DeleteOnTermination")?;
    match (attachment_id, delete_on_termination) {
        (Some(attachment_id), Some(on)) => changes.push(Change::DeleteOnTermination {
            attachment_id: attachment_id.to_string(),
            on,
        }),
        (None, Some(_)) => return Err(ApiError::missing_parameter("Attachment.AttachmentId")),
        _ => {}
    }
    for (prefix, name) in NOT_MODELLED {
        if params.pairs().iter().any(|(k, _)| k.starts_with(prefix)) {
            changes.push(Change::Unsupported(name));
        }
    }
    let change = match changes.len() {
        0 => return Err(ApiError::missing_parameter("Attribute")),
        1 => changes.pop().expect("one change"),
        _ => {
            return Err(ApiError::invalid_combination(
                "Only one attribute can be modified at a time",
            ))
        }
    };
    Ok(Request {
        interface_id,
        change,
        dry_run: kind::dry_run(params)?,
    })
}

/// The interface is gone once its instance is terminated (a termination may land between
/// the interface's lookup and the write).
pub(crate) fn check_instance(shown: InstanceState, interface_id: &str) -> Result<(), ApiError> {
    if shown == InstanceState::Terminated {
        return Err(NetworkInterfaceKind::IDS.not_found(&[interface_id]));
    }
    Ok(())
}

/// Checks the interface and the change, then writes it to the interface's instance (the
/// interface is derived from it). Nothing here asks anything of the reconciler.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    let interface: Shown = network_interface::load(state, region, &req.interface_id)?;
    let instance_id = InstanceId::parse(&interface.instance.metadata.name)?;
    let groups = match &req.change {
        Change::Groups(ids) => {
            let vpc_id = interface
                .instance
                .spec
                .vpc_id
                .as_deref()
                .unwrap_or_default();
            let resource = format!("interface {}", req.interface_id);
            Some(resolve_groups(
                state,
                region,
                ids,
                Some((vpc_id, &resource)),
            )?)
        }
        _ => None,
    };
    if let Change::DeleteOnTermination { attachment_id, .. } = &req.change {
        if *attachment_id != interface.attachment_id {
            return Err(ApiError::client(
                "InvalidAttachmentID.NotFound",
                format!("The attachmentId '{attachment_id}' does not exist"),
            ));
        }
    }
    kind::check_dry_run(req.dry_run)?;
    let check = |shown: InstanceState| check_instance(shown, &req.interface_id);
    match req.change {
        Change::Unsupported(name) => Err(ApiError::client(
            "UnsupportedOperation",
            format!("ec2d cannot modify {name} of a network interface"),
        )),
        Change::DeleteOnTermination { on: true, .. } => Ok(()),
        // The primary interface is derived from its instance and ends with it.
        Change::DeleteOnTermination { on: false, .. } => Err(ApiError::client(
            "UnsupportedOperation",
            "ec2d deletes an instance's primary network interface with the instance; it cannot be kept",
        )),
        Change::Groups(_) => move_to_groups(
            state,
            region,
            &instance_id,
            groups.expect("resolved above"),
            check,
        ),
        Change::SourceDestCheck(on) => {
            write(state, &instance_id, check, |spec| {
                let changed = spec.options.source_dest_check != on;
                spec.options.source_dest_check = on;
                changed
            })?;
            tracing::info!(interface_id = %req.interface_id, instance_id = %instance_id, source_dest_check = on, "network interface attribute modified");
            Ok(())
        }
        Change::Description(description) => {
            let description = Some(description).filter(|d| !d.is_empty());
            write(state, &instance_id, check, |spec| {
                let changed = spec.interface_description != description;
                spec.interface_description = description.clone();
                changed
            })?;
            tracing::info!(interface_id = %req.interface_id, instance_id = %instance_id, "network interface description modified");
            Ok(())
        }
    }
}

/// A compare-and-swap on the instance's spec that keeps its generation (the reconciler has
/// nothing to do), refused if the instance has ended meanwhile.
pub(crate) fn write(
    state: &ApiState,
    instance_id: &InstanceId,
    check: impl Fn(InstanceState) -> Result<(), ApiError>,
    change: impl Fn(&mut crate::model::InstanceSpec) -> bool,
) -> Result<(), ApiError> {
    state
        .store
        .instances()
        .update_spec_same_generation::<ApiError>(instance_id.as_str(), |obj| {
            check(instances::shown_state(obj))?;
            Ok(change(&mut obj.spec))
        })?;
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
    fn each_attribute_parses_to_one_change() {
        let change = |q: &str| {
            parse_str(&format!("NetworkInterfaceId=eni-0123456789abcdef0&{q}"))
                .unwrap()
                .change
        };
        assert_eq!(
            change("SecurityGroupId.1=sg-1&SecurityGroupId.2=sg-2&SecurityGroupId.3=sg-1"),
            Change::Groups(vec!["sg-1".into(), "sg-2".into()])
        );
        assert_eq!(
            change("SourceDestCheck.Value=false"),
            Change::SourceDestCheck(false)
        );
        assert_eq!(
            change("Description.Value=web%20%3Cfront%3E"),
            Change::Description("web <front>".into())
        );
        assert_eq!(
            change("Attachment.AttachmentId=eni-attach-1&Attachment.DeleteOnTermination=true"),
            Change::DeleteOnTermination {
                attachment_id: "eni-attach-1".into(),
                on: true
            }
        );
        assert_eq!(
            change("EnaSrdSpecification.EnaSrdEnabled=true"),
            Change::Unsupported("EnaSrdSpecification")
        );
    }

    #[test]
    fn refuses_what_ec2_refuses() {
        let code = |q: &str| parse_str(q).unwrap_err().code;
        assert_eq!(code("SourceDestCheck.Value=false"), "MissingParameter");
        assert_eq!(
            code("NetworkInterfaceId=eni-1"),
            "MissingParameter",
            "no attribute"
        );
        assert_eq!(
            code("NetworkInterfaceId=eni-1&SourceDestCheck.Value=false&Description.Value=x"),
            "InvalidParameterCombination"
        );
        assert_eq!(
            code("NetworkInterfaceId=eni-1&SourceDestCheck.Value=maybe"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("NetworkInterfaceId=eni-1&SecurityGroupId.1=web"),
            "InvalidGroupId.Malformed"
        );
        assert_eq!(
            code("NetworkInterfaceId=eni-1&Attachment.DeleteOnTermination=false"),
            "MissingParameter"
        );
        assert_eq!(
            code(&format!(
                "NetworkInterfaceId=eni-1&Description.Value={}",
                "d".repeat(256)
            )),
            "InvalidParameterValue"
        );
    }
}
