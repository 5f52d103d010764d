//! `DescribeAddressesAttribute`: the `domain-name` attribute (reverse DNS) of Elastic IPs; ec2d
//! sets no PTR records, so each address is listed without one.

use crate::api::error::ApiError;
use crate::api::kind::{self, Kind};
use crate::api::kinds::address::region_addresses;
use crate::api::kinds::AddressKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let ids = params
        .list("AllocationId")
        .into_iter()
        .map(AddressKind::check_id)
        .collect::<Result<Vec<_>, _>>()?;
    match params.get("Attribute") {
        None | Some("domain-name") => {}
        Some(other) => {
            return Err(ApiError::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Valid values: domain-name"
            )))
        }
    }
    let mut addresses = region_addresses(state, region)?;
    if !ids.is_empty() {
        let missing: Vec<&String> = ids
            .iter()
            .filter(|id| !addresses.iter().any(|a| a.metadata.name == **id))
            .collect();
        if !missing.is_empty() {
            return Err(AddressKind::IDS.not_found(&missing));
        }
        addresses.retain(|a| ids.contains(&a.metadata.name));
    }
    kind::check_dry_run(kind::dry_run(params)?)?;
    addresses.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut w = XmlWriter::new();
    w.set("addressSet", &addresses, |w, a| {
        w.field("publicIp", &a.spec.public_ip);
        w.field("allocationId", &a.metadata.name);
    });
    Ok(w.finish())
}
