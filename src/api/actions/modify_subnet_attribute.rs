//! `ModifySubnetAttribute`: one launch attribute per call, as EC2 documents; a default subnet is stored (under its derived id) by its first change, as the default group is.

use crate::api::attributes;
use crate::api::error::ApiError;
use crate::api::kind::{self, Kind};
use crate::api::kinds::subnet::ensure_default_subnet;
use crate::api::kinds::SubnetKind;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;
use crate::model::{region, SubnetSpec};
use crate::store::StoreError;

/// The attributes, by their parameter.
const PARAMETERS: [&str; 6] = [
    "MapPublicIpOnLaunch.Value",
    "AssignIpv6AddressOnCreation.Value",
    "EnableDns64.Value",
    "PrivateDnsHostnameTypeOnLaunch",
    "EnableResourceNameDnsARecordOnLaunch.Value",
    "EnableResourceNameDnsAAAARecordOnLaunch.Value",
];

/// Outposts' attributes: ec2d has no Outposts.
const UNSUPPORTED: [&str; 4] = [
    "MapCustomerOwnedIpOnLaunch.Value",
    "CustomerOwnedIpv4Pool",
    "EnableLniAtDeviceIndex",
    "DisableLniAtDeviceIndex.Value",
];

/// One attribute's new value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// A flag, by its index in [`PARAMETERS`].
    Flag(usize, bool),
    /// `PrivateDnsHostnameTypeOnLaunch`.
    HostnameType(String),
}

fn parse_change(params: &QueryParams) -> Result<Change, ApiError> {
    if let Some(name) = UNSUPPORTED.iter().find(|n| params.get(n).is_some()) {
        return Err(ApiError::client(
            "UnsupportedOperation",
            format!("ec2d does not support {name} (an Outposts attribute)"),
        ));
    }
    let (index, value) = attributes::exactly_one(
        params,
        &PARAMETERS,
        "MapPublicIpOnLaunch, AssignIpv6AddressOnCreation, EnableDns64, PrivateDnsHostnameTypeOnLaunch, EnableResourceNameDnsARecordOnLaunch or EnableResourceNameDnsAAAARecordOnLaunch",
    )?;
    if index == 3 {
        return match value {
            "ip-name" | "resource-name" => Ok(Change::HostnameType(value.to_string())),
            other => Err(ApiError::invalid_value(format!(
                "Value ({other}) for parameter PrivateDnsHostnameTypeOnLaunch is invalid. Valid values are: ip-name, resource-name"
            ))),
        };
    }
    let flag = attributes::bool_value(value, PARAMETERS[index])?;
    Ok(Change::Flag(index, flag))
}

/// Applies the change to a spec; whether it changed anything.
fn apply(spec: &mut SubnetSpec, change: &Change) -> bool {
    let options = &mut spec.options;
    match change {
        Change::HostnameType(t) => {
            let changed = options.hostname_type != *t;
            options.hostname_type = t.clone();
            changed
        }
        Change::Flag(index, value) => {
            let slot = match index {
                0 => &mut spec.map_public_ip_on_launch,
                1 => &mut options.assign_ipv6_address_on_creation,
                2 => &mut options.enable_dns64,
                4 => &mut options.enable_resource_name_dns_a_record,
                _ => &mut options.enable_resource_name_dns_aaaa_record,
            };
            let changed = *slot != *value;
            *slot = *value;
            changed
        }
    }
}

/// Validates, answers `DryRun`, stores a default subnet on its first change, then writes.
pub fn handle(state: &ApiState, region: &str, params: &QueryParams) -> Result<(), ApiError> {
    let id = SubnetKind::check_id(params.require("SubnetId")?)?;
    let change = parse_change(params)?;
    let dry_run = kind::dry_run(params)?;
    let is_default = region::defaults(region)
        .subnets
        .iter()
        .any(|s| s.subnet_id == id);
    let stored = state
        .store
        .subnets()
        .get_shared(&id)?
        .is_some_and(|s| s.metadata.namespace == region);
    if !is_default && !stored {
        return Err(SubnetKind::IDS.not_found(&[&id]));
    }
    if change == Change::Flag(1, true) {
        return Err(ApiError::invalid_value(format!(
            "The subnet {id} has no IPv6 CIDR block: ec2d subnets are IPv4 only"
        )));
    }
    kind::check_dry_run(dry_run)?;
    ensure_default_subnet(state, region, &id)?;
    state
        .store
        .subnets()
        .update_spec(&id, |s| Ok::<bool, StoreError>(apply(&mut s.spec, &change)))?;
    tracing::info!(subnet_id = %id, ?change, %region, "subnet attribute modified");
    Ok(())
}

/// The dispatch entry: `return`.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, params)?;
    Ok(render_return_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_attribute() {
        let parse = |q: &str| parse_change(&QueryParams::from_query(q));
        assert_eq!(
            parse("MapPublicIpOnLaunch.Value=true").unwrap(),
            Change::Flag(0, true)
        );
        assert_eq!(
            parse("PrivateDnsHostnameTypeOnLaunch=resource-name").unwrap(),
            Change::HostnameType("resource-name".into())
        );
        assert_eq!(parse("").unwrap_err().code, "MissingParameter");
        assert_eq!(
            parse("MapPublicIpOnLaunch.Value=true&EnableDns64.Value=true")
                .unwrap_err()
                .code,
            "InvalidParameterCombination"
        );
        assert_eq!(
            parse("EnableDns64.Value=maybe").unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            parse("PrivateDnsHostnameTypeOnLaunch=x").unwrap_err().code,
            "InvalidParameterValue"
        );
    }
}
