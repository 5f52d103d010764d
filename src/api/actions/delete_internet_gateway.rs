//! `DeleteInternetGateway`: removes a detached gateway; an attached one is `DependencyViolation`.

use crate::api::error::ApiError;
use crate::api::kind::{self, Kind};
use crate::api::kinds::InternetGatewayKind;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;

/// EC2's `DependencyViolation` for a gateway still attached.
pub fn has_dependencies(id: &str) -> ApiError {
    ApiError::client(
        "DependencyViolation",
        format!("The internetGateway '{id}' has dependencies and cannot be deleted."),
    )
}

/// Checks the gateway and deletes it in one transaction (an attach racing with it either
/// commits first, and the delete is refused, or finds the gateway gone).
pub fn handle(state: &ApiState, region: &str, params: &QueryParams) -> Result<(), ApiError> {
    let id = InternetGatewayKind::check_id(params.require("InternetGatewayId")?)?;
    let dry_run = kind::dry_run(params)?;
    if InternetGatewayKind::is_default(region, &id) {
        return Err(has_dependencies(&id));
    }
    state.store.routing(|tx| {
        let gateway = tx
            .internet_gateway(&id)?
            .filter(|g| g.metadata.namespace == region)
            .ok_or_else(|| InternetGatewayKind::IDS.not_found(&[&id]))?;
        if gateway.spec.vpc_id.is_some() {
            return Err(has_dependencies(&id));
        }
        kind::check_dry_run(dry_run)?;
        Ok(tx.delete_internet_gateway(&id)?)
    })?;
    tracing::info!(internet_gateway_id = %id, %region, "internet gateway deleted");
    Ok(())
}

/// The dispatch entry: `return`.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, params)?;
    Ok(render_return_true())
}
