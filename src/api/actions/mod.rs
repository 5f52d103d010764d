//! The EC2 actions: one dispatch table from `Action` name to a module with pure `parse` and store-backed `handle`.

pub mod authorize_security_group;
pub mod create_image;
pub mod create_key_pair;
pub mod create_security_group;
pub mod create_tags;
pub mod delete_key_pair;
pub mod delete_security_group;
pub mod delete_tags;
pub mod describe_availability_zones;
pub mod describe_images;
pub mod describe_instance_attribute;
pub mod describe_instance_status;
pub mod describe_instances;
pub mod describe_key_pairs;
pub mod describe_regions;
pub mod describe_security_groups;
pub mod describe_subnets;
pub mod describe_tags;
pub mod describe_vpcs;
pub mod import_key_pair;
pub mod key_pairs;
pub mod modify_instance_attribute;
pub mod network;
pub mod reboot_instances;
pub mod render;
pub mod revoke_security_group;
pub mod run_instances;
pub mod shared;
pub mod start_instances;
pub mod state_change;
pub mod stop_instances;
pub mod tagging;
pub mod terminate_instances;

use super::error::ApiError;
use super::query::QueryParams;
use super::ApiState;

/// An action's entry point: parse, handle against the store in the caller's region, render the
/// response members (the envelope is added by the router). Synchronous: the store is sled.
pub type Call = fn(&ApiState, &str, &QueryParams) -> Result<String, ApiError>;

/// The one dispatch table.
pub fn lookup(action: &str) -> Option<Call> {
    let call: Call = match action {
        "RunInstances" => run_instances::call,
        "DescribeInstances" => describe_instances::call,
        "StopInstances" => stop_instances::call,
        "StartInstances" => start_instances::call,
        "TerminateInstances" => terminate_instances::call,
        "RebootInstances" => reboot_instances::call,
        "DescribeImages" => describe_images::call,
        "CreateImage" => create_image::call,
        "DescribeRegions" => describe_regions::call,
        "DescribeAvailabilityZones" => describe_availability_zones::call,
        "CreateKeyPair" => create_key_pair::call,
        "ImportKeyPair" => import_key_pair::call,
        "DescribeKeyPairs" => describe_key_pairs::call,
        "DeleteKeyPair" => delete_key_pair::call,
        "DescribeVpcs" => describe_vpcs::call,
        "DescribeSubnets" => describe_subnets::call,
        "DescribeSecurityGroups" => describe_security_groups::call,
        "CreateSecurityGroup" => create_security_group::call,
        "DeleteSecurityGroup" => delete_security_group::call,
        "AuthorizeSecurityGroupIngress" => authorize_security_group::call_ingress,
        "AuthorizeSecurityGroupEgress" => authorize_security_group::call_egress,
        "RevokeSecurityGroupIngress" => revoke_security_group::call_ingress,
        "RevokeSecurityGroupEgress" => revoke_security_group::call_egress,
        "DescribeInstanceAttribute" => describe_instance_attribute::call,
        "DescribeInstanceStatus" => describe_instance_status::call,
        "ModifyInstanceAttribute" => modify_instance_attribute::call,
        "CreateTags" => create_tags::call,
        "DeleteTags" => delete_tags::call,
        "DescribeTags" => describe_tags::call,
        _ => return None,
    };
    Some(call)
}

/// Every action name the table knows, for documentation and tests.
pub const ACTIONS: &[&str] = &[
    "RunInstances",
    "DescribeInstances",
    "StopInstances",
    "StartInstances",
    "TerminateInstances",
    "RebootInstances",
    "DescribeImages",
    "CreateImage",
    "DescribeRegions",
    "DescribeAvailabilityZones",
    "CreateKeyPair",
    "ImportKeyPair",
    "DescribeKeyPairs",
    "DeleteKeyPair",
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeSecurityGroups",
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "DescribeInstanceAttribute",
    "DescribeInstanceStatus",
    "ModifyInstanceAttribute",
    "CreateTags",
    "DeleteTags",
    "DescribeTags",
];

/// Resolves `Action`: absent or empty is `MissingAction`, unknown is `InvalidAction`.
pub fn resolve(params: &QueryParams) -> Result<(String, Call), ApiError> {
    let action = params
        .get("Action")
        .filter(|a| !a.is_empty())
        .ok_or_else(ApiError::missing_action)?;
    let call = lookup(action).ok_or_else(|| ApiError::invalid_action(action))?;
    Ok((action.to_string(), call))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_list_agree() {
        for action in ACTIONS {
            assert!(lookup(action).is_some(), "{action} missing from the table");
        }
        assert!(
            lookup("describeinstances").is_none(),
            "names are case-sensitive"
        );
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
                .0,
            "DescribeRegions"
        );
    }
}
