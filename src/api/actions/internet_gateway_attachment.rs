//! `AttachInternetGateway` and `DetachInternetGateway`: one VPC per gateway and one gateway per VPC, kept in one transaction with the `internet_gateways.vpcs` index.

use crate::api::error::ApiError;
use crate::api::kind::{self, Kind};
use crate::api::kinds::route_table::RouteTableKind;
use crate::api::kinds::vpc::find_vpc;
use crate::api::kinds::{InternetGatewayKind, VpcKind};
use crate::api::query::QueryParams;
use crate::api::render::render_return_true;
use crate::api::state::ApiState;
use crate::model::{region, InternetGateway};
use crate::store::RoutingTx;

/// A validated attach or detach request.
struct Request {
    gateway_id: String,
    vpc_id: String,
    dry_run: bool,
}

fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    Ok(Request {
        gateway_id: InternetGatewayKind::check_id(params.require("InternetGatewayId")?)?,
        vpc_id: VpcKind::check_id(params.require("VpcId")?)?,
        dry_run: kind::dry_run(params)?,
    })
}

/// `Resource.AlreadyAssociated` for a gateway attached to a VPC already.
fn already_attached(gateway_id: &str, vpc_id: &str) -> ApiError {
    ApiError::client(
        "Resource.AlreadyAssociated",
        format!("resource {gateway_id} is already attached to network {vpc_id}"),
    )
}

/// The stored gateway of the request's region, inside the transaction.
fn stored_gateway(tx: &RoutingTx<'_>, region: &str, id: &str) -> Result<InternetGateway, ApiError> {
    tx.internet_gateway(id)?
        .filter(|g| g.metadata.namespace == region)
        .ok_or_else(|| InternetGatewayKind::IDS.not_found(&[id]))
}

/// Attaches a detached gateway to a VPC that has none.
fn attach(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    let defaults = region::defaults(region);
    if InternetGatewayKind::is_default(region, &req.gateway_id) {
        return Err(already_attached(&req.gateway_id, &defaults.vpc.vpc_id));
    }
    state.store.routing(|tx| {
        let mut gateway = stored_gateway(tx, region, &req.gateway_id)?;
        let vpc_exists = if defaults.vpc.vpc_id == req.vpc_id {
            true
        } else {
            tx.vpc(&req.vpc_id)?
                .is_some_and(|v| v.metadata.namespace == region)
        };
        if !vpc_exists {
            return Err(VpcKind::IDS.not_found(&[&req.vpc_id]));
        }
        if let Some(vpc) = &gateway.spec.vpc_id {
            return Err(already_attached(&req.gateway_id, vpc));
        }
        let taken = defaults.vpc.vpc_id == req.vpc_id || tx.gateway_of_vpc(&req.vpc_id)?.is_some();
        if taken {
            return Err(ApiError::client(
                "Resource.AlreadyAssociated",
                format!(
                    "Network {} already has an internet gateway attached",
                    req.vpc_id
                ),
            ));
        }
        kind::check_dry_run(req.dry_run)?;
        gateway.spec.vpc_id = Some(req.vpc_id.clone());
        tx.put_internet_gateway(&gateway)?;
        Ok(tx.set_gateway_of_vpc(&req.vpc_id, Some(&req.gateway_id))?)
    })?;
    tracing::info!(internet_gateway_id = %req.gateway_id, vpc_id = %req.vpc_id, %region, "internet gateway attached");
    Ok(())
}

/// Detaches a gateway from the VPC it is attached to.
fn detach(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    if InternetGatewayKind::is_default(region, &req.gateway_id) {
        return Err(RouteTableKind::derived(&req.gateway_id));
    }
    if find_vpc(state, region, &req.vpc_id)?.is_none() {
        return Err(VpcKind::IDS.not_found(&[&req.vpc_id]));
    }
    state.store.routing(|tx| {
        let mut gateway = stored_gateway(tx, region, &req.gateway_id)?;
        if gateway.spec.vpc_id.as_deref() != Some(req.vpc_id.as_str()) {
            return Err(ApiError::client(
                "Gateway.NotAttached",
                format!(
                    "resource {} is not attached to network {}",
                    req.gateway_id, req.vpc_id
                ),
            ));
        }
        kind::check_dry_run(req.dry_run)?;
        gateway.spec.vpc_id = None;
        tx.put_internet_gateway(&gateway)?;
        Ok(tx.set_gateway_of_vpc(&req.vpc_id, None)?)
    })?;
    tracing::info!(internet_gateway_id = %req.gateway_id, vpc_id = %req.vpc_id, %region, "internet gateway detached");
    Ok(())
}

/// `AttachInternetGateway`'s dispatch entry.
pub fn call_attach(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    attach(state, region, parse(params)?)?;
    Ok(render_return_true())
}

/// `DetachInternetGateway`'s dispatch entry.
pub fn call_detach(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    detach(state, region, parse(params)?)?;
    Ok(render_return_true())
}
