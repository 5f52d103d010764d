//! `DescribeVpcAttribute` and `ModifyVpcAttribute`: `enableDnsSupport`, `enableDnsHostnames` and `enableNetworkAddressUsageMetrics`, one per call as in EC2.

use crate::api::attributes;
use crate::api::error::ApiError;
use crate::api::kind::{self, Kind};
use crate::api::kinds::vpc::{ensure_default_vpc, find_vpc};
use crate::api::kinds::VpcKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::store::StoreError;

/// The attributes, by their `Attribute` name, in the order of `Vpc::attributes`.
const ATTRIBUTES: [&str; 3] = [
    "enableDnsSupport",
    "enableDnsHostnames",
    "enableNetworkAddressUsageMetrics",
];

/// ModifyVpcAttribute's parameter for each attribute.
const PARAMETERS: [&str; 3] = [
    "EnableDnsSupport.Value",
    "EnableDnsHostnames.Value",
    "EnableNetworkAddressUsageMetrics.Value",
];

fn vpc_id(params: &QueryParams) -> Result<String, ApiError> {
    VpcKind::check_id(params.require("VpcId")?)
}

/// `DescribeVpcAttribute`: `vpcId` and `<attribute><value>…</value></attribute>`.
pub fn call_describe(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    let id = vpc_id(params)?;
    let name = params.require("Attribute")?;
    let index = ATTRIBUTES.iter().position(|a| *a == name).ok_or_else(|| {
        ApiError::invalid_value(format!(
            "Value ({name}) for parameter attribute is invalid. Unknown attribute."
        ))
    })?;
    let dry_run = kind::dry_run(params)?;
    let vpc = find_vpc(state, region, &id)?.ok_or_else(|| VpcKind::IDS.not_found(&[&id]))?;
    kind::check_dry_run(dry_run)?;
    let mut w = XmlWriter::new();
    w.field("vpcId", &vpc.vpc_id);
    w.el(ATTRIBUTES[index], |w| {
        w.field("value", vpc.attributes[index])
    });
    Ok(w.finish())
}

/// `ModifyVpcAttribute`: exactly one attribute; the default VPC is stored by its first change.
pub fn call_modify(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    let id = vpc_id(params)?;
    let (index, value) = attributes::exactly_one(
        params,
        &PARAMETERS,
        "EnableDnsSupport, EnableDnsHostnames or EnableNetworkAddressUsageMetrics",
    )?;
    let value = attributes::bool_value(value, PARAMETERS[index])?;
    let dry_run = kind::dry_run(params)?;
    let vpc = find_vpc(state, region, &id)?.ok_or_else(|| VpcKind::IDS.not_found(&[&id]))?;
    // EC2 refuses DNS hostnames without DNS support.
    let mut after = vpc.attributes;
    after[index] = value;
    if after[1] && !after[0] {
        return Err(ApiError::invalid_value(
            "enableDnsHostnames cannot be true while enableDnsSupport is false",
        ));
    }
    kind::check_dry_run(dry_run)?;
    if vpc.is_default {
        ensure_default_vpc(state, region)?;
    }
    state.store.vpcs().update_spec(&id, |v| {
        let slot = match index {
            0 => &mut v.spec.enable_dns_support,
            1 => &mut v.spec.enable_dns_hostnames,
            _ => &mut v.spec.enable_network_address_usage_metrics,
        };
        let changed = *slot != value;
        *slot = value;
        Ok::<bool, StoreError>(changed)
    })?;
    let mut w = XmlWriter::new();
    w.field("return", true);
    Ok(w.finish())
}
