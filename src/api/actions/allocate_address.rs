//! `AllocateAddress`: an Elastic IP from the documentation ranges (198.51.100.0/24, then
//! 203.0.113.0/24), each address allocated once per store, in the record's own transaction.

use std::collections::HashSet;

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::tags;
use crate::api::xml::XmlWriter;
use crate::model::address::{new_address, pool_addresses};
use crate::model::AllocationId;
use crate::store::StoreError;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    match params.get("Domain") {
        None | Some("vpc") => {}
        Some(other) => {
            return Err(ApiError::invalid_value(format!(
                "Invalid value '{other}' for domain."
            )))
        }
    }
    let tags = tags::tag_specifications(params, &["elastic-ip"])?;
    kind::check_dry_run(kind::dry_run(params)?)?;
    let taken: HashSet<String> = state
        .store
        .addresses()
        .list_shared()?
        .objects
        .iter()
        .map(|a| a.spec.public_ip.clone())
        .collect();
    for ip in pool_addresses().filter(|ip| !taken.contains(&ip.to_string())) {
        let id = AllocationId::generate();
        let address = new_address(id.as_str(), region, ip, tags.clone());
        match state.store.create_address(&address) {
            // Taken meanwhile by a concurrent allocation: the next one.
            Err(StoreError::NameTaken { .. }) => continue,
            Err(e) => return Err(e.into()),
            Ok(()) => {
                tracing::info!(allocation_id = %id, public_ip = %ip, "address allocated");
                let mut w = XmlWriter::new();
                w.field("publicIp", &address.spec.public_ip);
                w.field("allocationId", id.as_str());
                w.field("publicIpv4Pool", "amazon");
                w.field("networkBorderGroup", region);
                w.field("domain", "vpc");
                return Ok(w.finish());
            }
        }
    }
    Err(ApiError::client(
        "AddressLimitExceeded",
        "The maximum number of addresses has been reached.",
    ))
}
