//! `DeleteVpc`: removes a created VPC with its main route table and its `default` group unless subnets, other groups or route tables, an attached internet gateway or instances still live in it.

use crate::api::error::ApiError;
use crate::api::instances;
use crate::api::kind::{self, Kind};
use crate::api::kinds::route_table;
use crate::api::kinds::VpcKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{groups, kinds};
use crate::model::{region, InstanceState};
use crate::store::StoreError;

/// A validated DeleteVpc request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `VpcId`.
    pub vpc_id: String,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses `VpcId` and `DryRun`.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    Ok(Request {
        vpc_id: VpcKind::check_id(params.require("VpcId")?)?,
        dry_run: kind::dry_run(params)?,
    })
}

/// EC2's `DependencyViolation` for a VPC.
fn has_dependencies(id: &str) -> ApiError {
    ApiError::client(
        "DependencyViolation",
        format!("The vpc '{id}' has dependencies and cannot be deleted."),
    )
}

/// Refuses the default VPC (its default subnets depend on it) and a VPC with subnets,
/// security groups other than its `default` one, route tables other than its main one, an
/// attached internet gateway, or instances that are not terminated.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    let id = req.vpc_id;
    if region::defaults(region).vpc.vpc_id == id {
        return Err(has_dependencies(&id));
    }
    let vpc = state
        .store
        .vpcs()
        .get(&id)?
        .filter(|v| v.metadata.namespace == region)
        .ok_or_else(|| VpcKind::IDS.not_found(&[&id]))?;
    let subnets = kinds::subnet::region_subnets(state, region)?;
    let groups = groups::region_groups(state, region)?;
    let busy = subnets.iter().any(|s| s.vpc_id == id)
        || groups
            .iter()
            .any(|g| g.spec.vpc_id == id && g.metadata.name != vpc.spec.default_group_id)
        || instances::region_instances(state, region)?.iter().any(|i| {
            i.spec.vpc_id.as_deref() == Some(id.as_str())
                && instances::shown_state(i) != InstanceState::Terminated
        });
    let tables: Vec<_> = route_table::region_tables(state, region)?
        .into_iter()
        .filter(|t| t.spec.vpc_id == id)
        .collect();
    let main_tables: Vec<String> = tables
        .iter()
        .filter(|t| t.spec.is_main())
        .map(|t| t.metadata.name.clone())
        .collect();
    if busy || tables.len() > main_tables.len() {
        return Err(has_dependencies(&id));
    }
    kind::check_dry_run(req.dry_run)?;
    // The VPC goes with its main table, in the transaction that sees any gateway attached
    // to it and its count of tables: an attach or a CreateRouteTable that committed after the
    // checks above refuses the delete.
    state.store.routing(|tx| {
        let count = tx.table_count(&id)?;
        if tx.gateway_of_vpc(&id)?.is_some() || count > main_tables.len() as u64 {
            return Err(has_dependencies(&id));
        }
        for table in &main_tables {
            tx.delete_route_table(table)?;
        }
        tx.set_table_count(&id, 0)?;
        Ok(tx.delete_vpc(&id)?)
    })?;
    state
        .store
        .delete_security_group(&vpc.spec.default_group_id, || Ok::<(), StoreError>(()))?;
    tracing::info!(vpc_id = %id, %region, "vpc deleted");
    Ok(())
}

/// `return`.
pub fn render() -> String {
    let mut w = XmlWriter::new();
    w.field("return", true);
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, parse(params)?)?;
    Ok(render())
}
