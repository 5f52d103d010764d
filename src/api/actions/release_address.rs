//! `ReleaseAddress`: removes an Elastic IP by `AllocationId` and frees its address.

use crate::api::error::ApiError;
use crate::api::kind::{self, Kind};
use crate::api::kinds::AddressKind;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let id = params
        .get("AllocationId")
        .ok_or_else(|| ApiError::missing_parameter("AllocationId"))?;
    let id = AddressKind::check_id(id)?;
    let exists = state
        .store
        .addresses()
        .get_shared(&id)?
        .is_some_and(|a| a.metadata.namespace == region);
    if !exists {
        return Err(AddressKind::IDS.not_found(&[&id]));
    }
    kind::check_dry_run(kind::dry_run(params)?)?;
    if state.store.delete_address(&id)?.is_none() {
        return Err(AddressKind::IDS.not_found(&[&id]));
    }
    tracing::info!(allocation_id = %id, "address released");
    Ok(render_return_true())
}
