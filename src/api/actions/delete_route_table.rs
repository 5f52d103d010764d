//! `DeleteRouteTable`: removes a table with no associations; a VPC's main table or one a subnet uses is `DependencyViolation`.

use crate::api::error::ApiError;
use crate::api::kind::{self, Kind};
use crate::api::kinds::RouteTableKind;
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;

/// EC2's `DependencyViolation` for a table still associated.
fn has_dependencies(id: &str) -> ApiError {
    ApiError::client(
        "DependencyViolation",
        format!("The routeTable '{id}' has dependencies and cannot be deleted."),
    )
}

/// Checks and deletes in one transaction, so an association racing with it either commits
/// first (and the delete is refused) or finds the table gone.
pub fn handle(state: &ApiState, region: &str, params: &QueryParams) -> Result<(), ApiError> {
    let id = RouteTableKind::check_id(params.require("RouteTableId")?)?;
    let dry_run = kind::dry_run(params)?;
    if RouteTableKind::is_default(region, &id) {
        return Err(has_dependencies(&id));
    }
    state.store.routing(|tx| {
        let table = tx
            .route_table(&id)?
            .filter(|t| t.metadata.namespace == region)
            .ok_or_else(|| RouteTableKind::IDS.not_found(&[&id]))?;
        if !table.spec.associations.is_empty() {
            return Err(has_dependencies(&id));
        }
        kind::check_dry_run(dry_run)?;
        tx.delete_route_table(&id)?;
        let count = tx.table_count(&table.spec.vpc_id)?;
        Ok(tx.set_table_count(&table.spec.vpc_id, count.saturating_sub(1))?)
    })?;
    tracing::info!(route_table_id = %id, %region, "route table deleted");
    Ok(())
}

/// The dispatch entry: `return`.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, params)?;
    Ok(render_return_true())
}
