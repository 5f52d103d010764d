//! The EC2 actions: one dispatch table from `Action` name to a module with pure `parse` and store-backed `handle`.

pub mod create_image;
pub mod describe_availability_zones;
pub mod describe_images;
pub mod describe_instances;
pub mod describe_regions;
pub mod render;
pub mod run_instances;
pub mod shared;
pub mod start_instances;
pub mod state_change;
pub mod stop_instances;
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
        "DescribeImages" => describe_images::call,
        "CreateImage" => create_image::call,
        "DescribeRegions" => describe_regions::call,
        "DescribeAvailabilityZones" => describe_availability_zones::call,
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
    "DescribeImages",
    "CreateImage",
    "DescribeRegions",
    "DescribeAvailabilityZones",
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
        let e = resolve(&QueryParams::from_query("Action=DescribeVpcs")).unwrap_err();
        assert_eq!(e.code, "InvalidAction");
        assert_eq!(
            e.message,
            "The action DescribeVpcs is not valid for this web service."
        );
        assert_eq!(
            resolve(&QueryParams::from_query("Action=DescribeRegions"))
                .unwrap()
                .0,
            "DescribeRegions"
        );
    }
}
