//! `CreateInternetGateway`: records a detached gateway with the tags of its `internet-gateway` TagSpecification.

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::kinds::internet_gateway::render_gateway;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::tags;
use crate::api::xml::XmlWriter;
use crate::model::routing::{generate_internet_gateway_id, internet_gateway_record};
use crate::model::{now, InternetGateway, InternetGatewaySpec};
use crate::store::StoreError;

/// Validates the tags, answers `DryRun`, then writes the gateway.
pub fn handle(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<InternetGateway, ApiError> {
    let tags = tags::tag_specifications(params, &["internet-gateway"])?;
    kind::check_dry_run(kind::dry_run(params)?)?;
    let gateway = internet_gateway_record(
        &generate_internet_gateway_id(),
        region,
        InternetGatewaySpec { vpc_id: None, tags },
        now(),
    );
    state
        .store
        .routing(|tx| tx.put_internet_gateway(&gateway))
        .map_err(|e: StoreError| ApiError::from(e))?;
    tracing::info!(internet_gateway_id = %gateway.metadata.name, %region, "internet gateway created");
    Ok(gateway)
}

/// The dispatch entry: `internetGateway`.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let gateway = handle(state, region, params)?;
    let mut w = XmlWriter::new();
    w.el("internetGateway", |w| render_gateway(w, &gateway));
    Ok(w.finish())
}
