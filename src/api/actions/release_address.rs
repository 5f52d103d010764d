//! `ReleaseAddress`: removes an Elastic IP by `AllocationId` and frees its address; one still
//! associated is refused (`InvalidIPAddress.InUse`), as EC2 refuses it outside the default VPC.

use crate::api::addresses::live_association;
use crate::api::error::ApiError;
use crate::api::kind::{self, Kind};
use crate::api::kinds::AddressKind;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;
use crate::model::Address;
use crate::store::AddressWrite;

/// `InvalidIPAddress.InUse` while `address` has an association in force.
fn check_unused(state: &ApiState, address: &Address) -> Result<(), ApiError> {
    match live_association(state, address)? {
        Some(_) => Err(ApiError::client(
            "InvalidIPAddress.InUse",
            format!("Address {} is in use.", address.spec.public_ip),
        )),
        None => Ok(()),
    }
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = params
        .get("AllocationId")
        .ok_or_else(|| ApiError::missing_parameter("AllocationId"))?;
    let id = AddressKind::check_id(id)?;
    let mut checked = false;
    loop {
        let address = state
            .store
            .addresses()
            .get_shared(&id)?
            .filter(|a| a.metadata.namespace == region)
            .ok_or_else(|| AddressKind::IDS.not_found(&[&id]))?;
        check_unused(state, &address)?;
        if !checked {
            kind::check_dry_run(kind::dry_run(params)?)?;
            checked = true;
        }
        // A compare-and-swap on the version checked: an association made meanwhile is seen.
        match state
            .store
            .release_address(&id, address.metadata.resource_version)?
        {
            AddressWrite::Done(_) => break,
            AddressWrite::Changed => continue,
            AddressWrite::Missing => return Err(AddressKind::IDS.not_found(&[&id])),
        }
    }
    tracing::info!(allocation_id = %id, "address released");
    Ok(render_return_true())
}
