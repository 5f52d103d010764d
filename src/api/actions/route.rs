//! `CreateRoute`, `ReplaceRoute` and `DeleteRoute`: a stored table's IPv4 routes, each to exactly one target (an internet gateway attached to the table's VPC, `local`, or a NAT gateway, interface, instance, peering connection or transit gateway id, taken as given).

use crate::api::error::ApiError;
use crate::api::kind::{self, Kind};
use crate::api::kinds::route_table::stored_table;
use crate::api::kinds::{InternetGatewayKind, RouteTableKind};
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;
use crate::model::routing::{created_route, RouteTarget, LOCAL_GATEWAY};
use crate::model::vpc::Cidr;
use crate::model::{region, RouteTable};
use crate::store::RoutingTx;

/// Targets ec2d does not model: naming one is `UnsupportedOperation`, not a silent no-op.
const UNSUPPORTED_TARGETS: [&str; 6] = [
    "EgressOnlyInternetGatewayId",
    "LocalGatewayId",
    "CarrierGatewayId",
    "VpcEndpointId",
    "CoreNetworkArn",
    "OdbNetworkArn",
];

/// The route a request names: its table and normalised destination.
struct Destination {
    table_id: String,
    cidr: String,
    dry_run: bool,
}

fn destination(params: &QueryParams) -> Result<Destination, ApiError> {
    let table_id = RouteTableKind::check_id(params.require("RouteTableId")?)?;
    if params.get("DestinationIpv6CidrBlock").is_some()
        || params.get("DestinationPrefixListId").is_some()
    {
        return Err(ApiError::client(
            "UnsupportedOperation",
            "ec2d supports IPv4 destination CIDR blocks only",
        ));
    }
    let text = params.require("DestinationCidrBlock")?;
    let cidr = Cidr::parse(text).ok_or_else(|| {
        ApiError::invalid_value(format!(
            "Value ({text}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block."
        ))
    })?;
    Ok(Destination {
        table_id,
        cidr: cidr.to_string(),
        dry_run: kind::dry_run(params)?,
    })
}

/// Exactly one target, as EC2 requires.
fn target(params: &QueryParams) -> Result<(RouteTarget, String), ApiError> {
    if let Some(name) = UNSUPPORTED_TARGETS.iter().find(|n| params.get(n).is_some()) {
        return Err(ApiError::client(
            "UnsupportedOperation",
            format!("ec2d does not support {name} route targets"),
        ));
    }
    let mut given: Vec<(RouteTarget, &str)> = RouteTarget::ALL
        .iter()
        .filter_map(|t| params.get(t.parameter()).map(|v| (*t, v)))
        .collect();
    // ReplaceRoute's `LocalTarget=true`: back to the VPC's own `local` target.
    if params.bool("LocalTarget")? == Some(true) {
        given.push((RouteTarget::Gateway, LOCAL_GATEWAY));
    }
    const MESSAGE: &str = "The request must contain exactly one of gatewayId, natGatewayId, networkInterfaceId, instanceId, vpcPeeringConnectionId or transitGatewayId";
    match given.as_slice() {
        [(t, id)] => Ok((*t, id.to_string())),
        [] => Err(ApiError::missing_parameter(MESSAGE)),
        _ => Err(ApiError::invalid_combination(MESSAGE)),
    }
}

/// The table inside the transaction (gone since it was read: `NotFound`).
fn table_in(tx: &RoutingTx<'_>, region: &str, id: &str) -> Result<RouteTable, ApiError> {
    tx.route_table(id)?
        .filter(|t| t.metadata.namespace == region)
        .ok_or_else(|| RouteTableKind::IDS.not_found(&[id]))
}

/// Checks a `GatewayId` target inside the transaction: `local`, or an internet gateway
/// attached to the table's VPC.
fn check_gateway(
    tx: &RoutingTx<'_>,
    region: &str,
    table: &RouteTable,
    gateway_id: &str,
) -> Result<(), ApiError> {
    if gateway_id == LOCAL_GATEWAY {
        return Ok(());
    }
    let not_found = || {
        ApiError::client(
            "InvalidGatewayID.NotFound",
            format!("The gateway ID '{gateway_id}' does not exist"),
        )
    };
    if !gateway_id.starts_with(InternetGatewayKind::IDS.prefix) {
        return Err(not_found());
    }
    let attached_to = if InternetGatewayKind::is_default(region, gateway_id) {
        Some(region::defaults(region).vpc.vpc_id.clone())
    } else {
        tx.internet_gateway(gateway_id)?
            .filter(|g| g.metadata.namespace == region)
            .ok_or_else(not_found)?
            .spec
            .vpc_id
    };
    if attached_to.as_deref() != Some(table.spec.vpc_id.as_str()) {
        return Err(ApiError::invalid_value(format!(
            "route table {} and network gateway {gateway_id} belong to different networks",
            table.metadata.name
        )));
    }
    Ok(())
}

/// `InvalidRoute.NotFound`.
fn no_route(table_id: &str, cidr: &str) -> ApiError {
    ApiError::client(
        "InvalidRoute.NotFound",
        format!("no route with destination-cidr-block {cidr} in route table {table_id}"),
    )
}

/// Adds (`replace` false) or replaces a route's target.
fn write_route(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
    replace: bool,
) -> Result<String, ApiError> {
    let dest = destination(params)?;
    let (target, target_id) = target(params)?;
    stored_table(state, region, &dest.table_id)?;
    state.store.routing(|tx| {
        let mut table = table_in(tx, region, &dest.table_id)?;
        if target == RouteTarget::Gateway {
            check_gateway(tx, region, &table, &target_id)?;
        }
        let existing = table
            .spec
            .routes
            .iter()
            .position(|r| r.destination_cidr_block == dest.cidr);
        let route = created_route(&dest.cidr, target, &target_id);
        match (existing, replace) {
            (Some(_), false) => {
                return Err(ApiError::client(
                    "RouteAlreadyExists",
                    format!("The route identified by {} already exists.", dest.cidr),
                ))
            }
            (None, true) => {
                return Err(ApiError::invalid_value(format!(
                "There is no route defined for '{}' in the route table. Use CreateRoute instead.",
                dest.cidr
            )))
            }
            (None, false) => {
                kind::check_dry_run(dest.dry_run)?;
                table.spec.routes.push(route);
            }
            (Some(i), true) => {
                kind::check_dry_run(dest.dry_run)?;
                let kept_origin = table.spec.routes[i].origin.clone();
                table.spec.routes[i] = route;
                table.spec.routes[i].origin = kept_origin;
            }
        }
        Ok(tx.put_route_table(&table)?)
    })?;
    tracing::info!(route_table_id = %dest.table_id, destination = %dest.cidr, target = %target_id, replace, %region, "route written");
    Ok(render_return_true())
}

/// `DeleteRoute`'s dispatch entry: removes a route; the VPC's `local` route stays.
pub fn call_delete(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    let dest = destination(params)?;
    stored_table(state, region, &dest.table_id)?;
    state.store.routing(|tx| {
        let mut table = table_in(tx, region, &dest.table_id)?;
        let i = table
            .spec
            .routes
            .iter()
            .position(|r| r.destination_cidr_block == dest.cidr)
            .ok_or_else(|| no_route(&dest.table_id, &dest.cidr))?;
        if table.spec.routes[i].target_id == LOCAL_GATEWAY {
            return Err(ApiError::invalid_value(format!(
                "cannot remove local route {} in route table {}",
                dest.cidr, dest.table_id
            )));
        }
        kind::check_dry_run(dest.dry_run)?;
        table.spec.routes.remove(i);
        Ok(tx.put_route_table(&table)?)
    })?;
    tracing::info!(route_table_id = %dest.table_id, destination = %dest.cidr, %region, "route deleted");
    Ok(render_return_true())
}

/// `CreateRoute`'s dispatch entry.
pub fn call_create(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    write_route(state, region, params, false)
}

/// `ReplaceRoute`'s dispatch entry.
pub fn call_replace(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    write_route(state, region, params, true)
}
