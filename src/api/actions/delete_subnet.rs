//! `DeleteSubnet`: removes a created subnet (and its route table association) unless instances still live in it.

use crate::api::error::ApiError;
use crate::api::instances;
use crate::api::kind::{self, Kind};
use crate::api::kinds::{route_table, SubnetKind};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{region, InstanceState};

/// A validated DeleteSubnet request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `SubnetId`.
    pub subnet_id: String,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses `SubnetId` and `DryRun`.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    Ok(Request {
        subnet_id: SubnetKind::check_id(params.require("SubnetId")?)?,
        dry_run: kind::dry_run(params)?,
    })
}

/// EC2's `DependencyViolation` for a subnet.
fn has_dependencies(id: &str) -> ApiError {
    ApiError::client(
        "DependencyViolation",
        format!("The subnet '{id}' has dependencies and cannot be deleted."),
    )
}

/// Refuses the derived default subnets and subnets with instances that are not terminated.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    let id = req.subnet_id;
    if region::defaults(region)
        .subnets
        .iter()
        .any(|s| s.subnet_id == id)
    {
        return Err(has_dependencies(&id));
    }
    state
        .store
        .subnets()
        .get_shared(&id)?
        .filter(|s| s.metadata.namespace == region)
        .ok_or_else(|| SubnetKind::IDS.not_found(&[&id]))?;
    let busy = instances::region_instances(state, region)?.iter().any(|i| {
        i.spec.subnet_id.as_deref() == Some(id.as_str())
            && instances::shown_state(i) != InstanceState::Terminated
    });
    if busy {
        return Err(has_dependencies(&id));
    }
    kind::check_dry_run(req.dry_run)?;
    state.store.delete_subnet(&id)?;
    // EC2 drops a deleted subnet's route table association with it.
    let holders: Vec<String> = route_table::region_tables(state, region)?
        .iter()
        .filter(|t| {
            t.spec
                .associations
                .iter()
                .any(|a| a.subnet_id.as_deref() == Some(id.as_str()))
        })
        .map(|t| t.metadata.name.clone())
        .collect();
    if !holders.is_empty() {
        state.store.routing(|tx| {
            for holder in &holders {
                if let Some(mut table) = tx.route_table(holder)? {
                    table
                        .spec
                        .associations
                        .retain(|a| a.subnet_id.as_deref() != Some(id.as_str()));
                    tx.put_route_table(&table)?;
                }
            }
            tx.set_table_of_subnet(&id, None)
        })?;
    }
    tracing::info!(subnet_id = %id, %region, "subnet deleted");
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
