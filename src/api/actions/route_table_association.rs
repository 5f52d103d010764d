//! `AssociateRouteTable`, `DisassociateRouteTable` and `ReplaceRouteTableAssociation`: a subnet's explicit table (one per subnet, kept by the `route_tables.subnets` index in the same transaction) and the VPC's main association.

use crate::api::error::ApiError;
use crate::api::kind::{self, IdRules, Kind};
use crate::api::kinds::route_table::{find_association, render_association_state, stored_table};
use crate::api::kinds::subnet::find_subnet;
use crate::api::kinds::{RouteTableKind, SubnetKind};
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::routing::{generate_association_id, RouteTableAssociation};
use crate::model::RouteTable;
use crate::store::RoutingTx;

/// Route table association ids.
const ASSOCIATION_IDS: IdRules = IdRules {
    noun: "association",
    prefix: "rtbassoc-",
    malformed: "InvalidAssociationID.Malformed",
    not_found: "InvalidAssociationID.NotFound",
};

/// The table inside the transaction (gone since it was read: `NotFound`).
fn table_in(tx: &RoutingTx<'_>, region: &str, id: &str) -> Result<RouteTable, ApiError> {
    tx.route_table(id)?
        .filter(|t| t.metadata.namespace == region)
        .ok_or_else(|| RouteTableKind::IDS.not_found(&[id]))
}

/// `Resource.AlreadyAssociated` for a subnet that has a table already.
fn conflicts(table_id: &str) -> ApiError {
    ApiError::client(
        "Resource.AlreadyAssociated",
        format!("the specified association for route table {table_id} conflicts with an existing association"),
    )
}

/// `InvalidParameterValue` for a table and a subnet or table of another VPC.
fn different_networks(table_id: &str, other: &str) -> ApiError {
    ApiError::invalid_value(format!(
        "Route table {table_id} and {other} belong to different networks"
    ))
}

/// `AssociateRouteTable`'s dispatch entry: associates a subnet (of the table's VPC, with no
/// table of its own yet) with a table; `associationId` and `associationState`.
pub fn call_associate(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    let table_id = RouteTableKind::check_id(params.require("RouteTableId")?)?;
    if params.get("GatewayId").is_some() {
        return Err(ApiError::client(
            "UnsupportedOperation",
            "ec2d does not support gateway route table associations",
        ));
    }
    let subnet_id = SubnetKind::check_id(params.require("SubnetId")?)?;
    let dry_run = kind::dry_run(params)?;
    let table = stored_table(state, region, &table_id)?;
    let subnet = find_subnet(state, region, &subnet_id)?
        .ok_or_else(|| SubnetKind::IDS.not_found(&[&subnet_id]))?;
    if subnet.vpc_id != table.spec.vpc_id {
        return Err(different_networks(
            &table_id,
            &format!("subnet {subnet_id}"),
        ));
    }
    kind::check_dry_run(dry_run)?;
    let association_id = generate_association_id();
    state.store.routing(|tx| {
        let mut table = table_in(tx, region, &table_id)?;
        if let Some(holder) = tx.table_of_subnet(&subnet_id)? {
            // An entry whose table no longer holds the subnet is stale: taken over.
            let held = tx.route_table(&holder)?.is_some_and(|t| {
                t.spec
                    .associations
                    .iter()
                    .any(|a| a.subnet_id.as_deref() == Some(subnet_id.as_str()))
            });
            if held {
                return Err(conflicts(&table_id));
            }
        }
        table.spec.associations.push(RouteTableAssociation {
            association_id: association_id.clone(),
            subnet_id: Some(subnet_id.clone()),
            main: false,
        });
        tx.put_route_table(&table)?;
        Ok(tx.set_table_of_subnet(&subnet_id, Some(&table_id))?)
    })?;
    tracing::info!(route_table_id = %table_id, %subnet_id, %association_id, %region, "route table associated");
    let mut w = XmlWriter::new();
    w.field("associationId", &association_id);
    render_association_state(&mut w);
    Ok(w.finish())
}

/// The association a request names, with the table holding it now.
fn named_association(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<(String, RouteTableAssociation, String), ApiError> {
    let id = ASSOCIATION_IDS.check_alphanumeric(params.require("AssociationId")?)?;
    let (table, association) =
        find_association(state, region, &id)?.ok_or_else(|| ASSOCIATION_IDS.not_found(&[&id]))?;
    if RouteTableKind::is_default(region, &table.metadata.name) {
        return Err(RouteTableKind::derived(&table.metadata.name));
    }
    Ok((id, association, table.metadata.name.clone()))
}

/// Removes `association_id` from its table inside the transaction (and its subnet's index
/// entry); `NotFound` when another request removed it first.
fn take_association(
    tx: &RoutingTx<'_>,
    region: &str,
    table_id: &str,
    association_id: &str,
) -> Result<RouteTableAssociation, ApiError> {
    let mut table = table_in(tx, region, table_id)?;
    let i = table
        .spec
        .associations
        .iter()
        .position(|a| a.association_id == association_id)
        .ok_or_else(|| ASSOCIATION_IDS.not_found(&[association_id]))?;
    let association = table.spec.associations.remove(i);
    tx.put_route_table(&table)?;
    if let Some(subnet) = &association.subnet_id {
        tx.set_table_of_subnet(subnet, None)?;
    }
    Ok(association)
}

/// `DisassociateRouteTable`'s dispatch entry: removes a subnet's association (the subnet
/// falls back to the main table).
pub fn call_disassociate(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    let dry_run = kind::dry_run(params)?;
    let (id, association, table_id) = named_association(state, region, params)?;
    if association.main {
        return Err(ApiError::invalid_value(format!(
            "Cannot disassociate the main route table association {id}"
        )));
    }
    kind::check_dry_run(dry_run)?;
    state
        .store
        .routing(|tx| take_association(tx, region, &table_id, &id).map(|_| ()))?;
    tracing::info!(association_id = %id, route_table_id = %table_id, %region, "route table disassociated");
    Ok(render_return_true())
}

/// `ReplaceRouteTableAssociation`'s dispatch entry: moves an association (a subnet's, or the
/// VPC's main one) to another table of the VPC, under a new id; `newAssociationId` and
/// `associationState`.
pub fn call_replace(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    let new_table_id = RouteTableKind::check_id(params.require("RouteTableId")?)?;
    let dry_run = kind::dry_run(params)?;
    let (id, association, old_table_id) = named_association(state, region, params)?;
    let new_table = stored_table(state, region, &new_table_id)?;
    let old_table = stored_table(state, region, &old_table_id)?;
    if new_table.spec.vpc_id != old_table.spec.vpc_id {
        return Err(different_networks(
            &new_table_id,
            &format!("route table {old_table_id}"),
        ));
    }
    kind::check_dry_run(dry_run)?;
    let new_id = generate_association_id();
    state.store.routing(|tx| {
        let moved = take_association(tx, region, &old_table_id, &id)?;
        let mut table = table_in(tx, region, &new_table_id)?;
        table.spec.associations.push(RouteTableAssociation {
            association_id: new_id.clone(),
            ..moved.clone()
        });
        tx.put_route_table(&table)?;
        if let Some(subnet) = &moved.subnet_id {
            tx.set_table_of_subnet(subnet, Some(&new_table_id))?;
        }
        Ok::<(), ApiError>(())
    })?;
    tracing::info!(association_id = %id, new_association_id = %new_id, route_table_id = %new_table_id, main = association.main, %region, "route table association replaced");
    let mut w = XmlWriter::new();
    w.field("newAssociationId", &new_id);
    render_association_state(&mut w);
    Ok(w.finish())
}
