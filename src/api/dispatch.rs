//! The one dispatch table: every EC2 action ec2d answers, whether it reads or writes, and its handler.

use super::actions::*;
use super::error::ApiError;
use super::query::QueryParams;
use super::state::ApiState;
use super::xml::Pieces;

/// An action's entry point: parse, handle against the store in the caller's region, render the
/// response members (the envelope is added by the router). Synchronous: the store is sled.
pub type Call = fn(&ApiState, &str, &QueryParams) -> Result<String, ApiError>;

/// An entry point whose members are sent in pieces (DescribeInstances: megabytes of cached
/// items, never joined into one string).
pub type PiecesCall = fn(&ApiState, &str, &QueryParams) -> Result<Pieces, ApiError>;

/// Whether an action only reads the store or may write it (and so waits for its fsync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads memory-resident trees only.
    Read,
    /// Writes desired state and waits for it to be durable.
    Write,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Action {
    /// The `Action` parameter, case-sensitive as in EC2.
    pub name: &'static str,
    /// Read or write.
    pub access: Access,
    /// The handler.
    pub call: Call,
    /// The same handler answering in pieces, for the router, when the action has one.
    pub pieces: Option<PiecesCall>,
}

const fn read(name: &'static str, call: Call) -> Action {
    Action {
        name,
        access: Access::Read,
        call,
        pieces: None,
    }
}

const fn read_in_pieces(name: &'static str, call: Call, pieces: PiecesCall) -> Action {
    Action {
        name,
        access: Access::Read,
        call,
        pieces: Some(pieces),
    }
}

const fn write(name: &'static str, call: Call) -> Action {
    Action {
        name,
        access: Access::Write,
        call,
        pieces: None,
    }
}

/// Every action ec2d answers.
pub const TABLE: &[Action] = &[
    write("RunInstances", run_instances::call),
    read_in_pieces(
        "DescribeInstances",
        describe_instances::call,
        describe_instances::call_in_pieces,
    ),
    write("StopInstances", change_instance_state::call_stop),
    write("StartInstances", change_instance_state::call_start),
    write("TerminateInstances", change_instance_state::call_terminate),
    write("RebootInstances", reboot_instances::call),
    read(
        "DescribeInstanceAttribute",
        describe_instance_attribute::call,
    ),
    read("DescribeInstanceStatus", describe_instance_status::call),
    write("ModifyInstanceAttribute", modify_instance_attribute::call),
    read("GetPasswordData", get_password_data::call),
    read(
        "DescribeInstanceCreditSpecifications",
        describe_instance_credit_specifications::call,
    ),
    write(
        "ModifyInstanceCreditSpecification",
        modify_instance_credit_specification::call,
    ),
    write(
        "ModifyInstanceMetadataOptions",
        modify_instance_metadata_options::call,
    ),
    write(
        "AssociateIamInstanceProfile",
        associate_iam_instance_profile::call,
    ),
    write(
        "DisassociateIamInstanceProfile",
        disassociate_iam_instance_profile::call,
    ),
    write(
        "ReplaceIamInstanceProfileAssociation",
        replace_iam_instance_profile_association::call,
    ),
    read(
        "DescribeIamInstanceProfileAssociations",
        describe_iam_instance_profile_associations::call,
    ),
    write("MonitorInstances", monitor_instances::call_monitor),
    write("UnmonitorInstances", monitor_instances::call_unmonitor),
    read("GetConsoleOutput", get_console_output::call),
    read("DescribeInstanceTypes", describe_instance_types::call),
    read(
        "DescribeInstanceTypeOfferings",
        describe_instance_type_offerings::call,
    ),
    read("DescribeImages", describe_images::call),
    write("CreateImage", create_image::call),
    write("CopyImage", copy_image::call),
    write("DeregisterImage", deregister_image::call),
    read("DescribeImageAttribute", describe_image_attribute::call),
    write("ModifyImageAttribute", modify_image_attribute::call),
    read("DescribeSnapshots", describe_snapshots::call),
    write("CreateSnapshot", create_snapshot::call),
    write("CreateSnapshots", create_snapshots::call),
    write("DeleteSnapshot", delete_snapshot::call),
    write("CopySnapshot", copy_snapshot::call),
    read(
        "DescribeSnapshotAttribute",
        describe_snapshot_attribute::call,
    ),
    write("ModifySnapshotAttribute", modify_snapshot_attribute::call),
    write("ResetSnapshotAttribute", reset_snapshot_attribute::call),
    read("DescribeRegions", describe_regions::call),
    read(
        "DescribeAvailabilityZones",
        describe_availability_zones::call,
    ),
    write("CreateKeyPair", create_key_pair::call),
    write("ImportKeyPair", import_key_pair::call),
    read("DescribeKeyPairs", describe_key_pairs::call),
    write("DeleteKeyPair", delete_key_pair::call),
    read("DescribeVpcs", describe_vpcs::call),
    write("CreateVpc", create_vpc::call),
    write("DeleteVpc", delete_vpc::call),
    read("DescribeVpcAttribute", vpc_attribute::call_describe),
    write("ModifyVpcAttribute", vpc_attribute::call_modify),
    read("DescribeSubnets", describe_subnets::call),
    write("CreateSubnet", create_subnet::call),
    write("DeleteSubnet", delete_subnet::call),
    write("ModifySubnetAttribute", modify_subnet_attribute::call),
    write("CreateInternetGateway", create_internet_gateway::call),
    write(
        "AttachInternetGateway",
        internet_gateway_attachment::call_attach,
    ),
    write(
        "DetachInternetGateway",
        internet_gateway_attachment::call_detach,
    ),
    write("DeleteInternetGateway", delete_internet_gateway::call),
    read("DescribeInternetGateways", describe_internet_gateways::call),
    write("CreateRouteTable", create_route_table::call),
    write("DeleteRouteTable", delete_route_table::call),
    read("DescribeRouteTables", describe_route_tables::call),
    write("CreateRoute", route::call_create),
    write("ReplaceRoute", route::call_replace),
    write("DeleteRoute", route::call_delete),
    write(
        "AssociateRouteTable",
        route_table_association::call_associate,
    ),
    write(
        "DisassociateRouteTable",
        route_table_association::call_disassociate,
    ),
    write(
        "ReplaceRouteTableAssociation",
        route_table_association::call_replace,
    ),
    read("DescribeNetworkAcls", describe_network_acls::call),
    read("DescribeSecurityGroups", describe_security_groups::call),
    write("AllocateAddress", allocate_address::call),
    read("DescribeAddresses", describe_addresses::call),
    read(
        "DescribeAddressesAttribute",
        describe_addresses_attribute::call,
    ),
    write("ReleaseAddress", release_address::call),
    write("AssociateAddress", associate_address::call),
    write("DisassociateAddress", disassociate_address::call),
    write("CreateVolume", create_volume::call),
    read("DescribeVolumes", describe_volumes::call),
    write("DeleteVolume", delete_volume::call),
    write("AttachVolume", attach_volume::call),
    write("DetachVolume", detach_volume::call),
    write("ModifyVolume", modify_volume::call),
    read(
        "DescribeVolumesModifications",
        describe_volumes_modifications::call,
    ),
    read("DescribeVolumeStatus", describe_volume_status::call),
    read("DescribeVolumeAttribute", describe_volume_attribute::call),
    write("ModifyVolumeAttribute", modify_volume_attribute::call),
    read(
        "DescribeNetworkInterfaces",
        describe_network_interfaces::call,
    ),
    read(
        "DescribeNetworkInterfaceAttribute",
        describe_network_interface_attribute::call,
    ),
    write(
        "ModifyNetworkInterfaceAttribute",
        modify_network_interface_attribute::call,
    ),
    write(
        "ResetNetworkInterfaceAttribute",
        reset_network_interface_attribute::call,
    ),
    write("CreateSecurityGroup", create_security_group::call),
    write("DeleteSecurityGroup", delete_security_group::call),
    write(
        "AuthorizeSecurityGroupIngress",
        authorize_security_group::call_ingress,
    ),
    write(
        "AuthorizeSecurityGroupEgress",
        authorize_security_group::call_egress,
    ),
    write(
        "RevokeSecurityGroupIngress",
        revoke_security_group::call_ingress,
    ),
    write(
        "RevokeSecurityGroupEgress",
        revoke_security_group::call_egress,
    ),
    read(
        "DescribeSecurityGroupRules",
        describe_security_group_rules::call,
    ),
    write(
        "ModifySecurityGroupRules",
        modify_security_group_rules::call,
    ),
    write(
        "UpdateSecurityGroupRuleDescriptionsIngress",
        update_security_group_rule_descriptions::call_ingress,
    ),
    write(
        "UpdateSecurityGroupRuleDescriptionsEgress",
        update_security_group_rule_descriptions::call_egress,
    ),
    write("CreateTags", create_tags::call),
    write("DeleteTags", delete_tags::call),
    read("DescribeTags", describe_tags::call),
    write("CreateLaunchTemplate", create_launch_template::call),
    write(
        "CreateLaunchTemplateVersion",
        create_launch_template_version::call,
    ),
    read("DescribeLaunchTemplates", describe_launch_templates::call),
    read(
        "DescribeLaunchTemplateVersions",
        describe_launch_template_versions::call,
    ),
    write("ModifyLaunchTemplate", modify_launch_template::call),
    write("DeleteLaunchTemplate", delete_launch_template::call),
    write(
        "DeleteLaunchTemplateVersions",
        delete_launch_template_versions::call,
    ),
];

/// The row of an action, by its exact name.
pub fn lookup(name: &str) -> Option<&'static Action> {
    TABLE.iter().find(|a| a.name == name)
}

/// Every action name, in table order.
pub fn names() -> Vec<&'static str> {
    TABLE.iter().map(|a| a.name).collect()
}

/// Resolves `Action`: absent or empty is `MissingAction`, unknown is `InvalidAction`.
pub fn resolve(params: &QueryParams) -> Result<&'static Action, ApiError> {
    let action = params
        .get("Action")
        .filter(|a| !a.is_empty())
        .ok_or_else(ApiError::missing_action)?;
    lookup(action).ok_or_else(|| ApiError::invalid_action(action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_case_sensitive() {
        let mut names = names();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "an action is listed twice");
        assert!(lookup("describeinstances").is_none());
    }

    #[test]
    fn reads_are_the_describe_and_get_calls() {
        for action in TABLE {
            assert_eq!(
                action.access == Access::Read,
                action.name.starts_with("Describe") || action.name.starts_with("Get"),
                "{} is marked {:?}",
                action.name,
                action.access
            );
        }
    }

    #[test]
    fn resolve_errors() {
        let e = resolve(&QueryParams::from_query("Version=2016-11-15")).unwrap_err();
        assert_eq!(e.code, "MissingAction");
        let e = resolve(&QueryParams::from_query("Action=")).unwrap_err();
        assert_eq!(e.code, "MissingAction");
        let e = resolve(&QueryParams::from_query("Action=LaunchRockets")).unwrap_err();
        assert_eq!(e.code, "InvalidAction");
        assert_eq!(
            e.message,
            "The action LaunchRockets is not valid for this web service."
        );
        assert_eq!(
            resolve(&QueryParams::from_query("Action=DescribeRegions"))
                .unwrap()
                .name,
            "DescribeRegions"
        );
    }
}
