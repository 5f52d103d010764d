//! `CreateRouteTable`: records a table in a VPC with the VPC's `local` route and no associations.

use crate::api::error::ApiError;
use crate::api::kind::{self, Kind};
use crate::api::kinds::route_table::render_table;
use crate::api::kinds::vpc::find_vpc;
use crate::api::kinds::VpcKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::tags;
use crate::api::xml::XmlWriter;
use crate::model::routing::{generate_route_table_id, local_route, route_table_record};
use crate::model::{now, region, RouteTable, RouteTableSpec};

/// Checks the VPC, answers `DryRun`, then writes the table and counts it for its VPC (in a
/// transaction that sees the VPC still stored, so a table never outlives a DeleteVpc that
/// committed first, and a DeleteVpc that commits after sees the count).
pub fn handle(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<RouteTable, ApiError> {
    let vpc_id = VpcKind::check_id(params.require("VpcId")?)?;
    let tags = tags::tag_specifications(params, &["route-table"])?;
    let dry_run = kind::dry_run(params)?;
    let vpc =
        find_vpc(state, region, &vpc_id)?.ok_or_else(|| VpcKind::IDS.not_found(&[&vpc_id]))?;
    kind::check_dry_run(dry_run)?;
    let table = route_table_record(
        &generate_route_table_id(),
        region,
        RouteTableSpec {
            vpc_id: vpc_id.clone(),
            routes: vec![local_route(&vpc.cidr_block)],
            associations: Vec::new(),
            tags,
        },
        now(),
    );
    let is_default = region::defaults(region).vpc.vpc_id == vpc_id;
    state.store.routing(|tx| {
        if !is_default && tx.vpc(&vpc_id)?.is_none() {
            return Err(VpcKind::IDS.not_found(&[&vpc_id]));
        }
        tx.put_route_table(&table)?;
        // Counted in the VPC's entry, which DeleteVpc's transaction checks.
        let count = tx.table_count(&vpc_id)?;
        Ok(tx.set_table_count(&vpc_id, count + 1)?)
    })?;
    tracing::info!(route_table_id = %table.metadata.name, %vpc_id, %region, "route table created");
    Ok(table)
}

/// The dispatch entry: `routeTable`.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let table = handle(state, region, params)?;
    let mut w = XmlWriter::new();
    w.el("routeTable", |w| render_table(w, &table));
    Ok(w.finish())
}
