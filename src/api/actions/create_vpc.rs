//! `CreateVpc`: validates the block (/16 to /28) and tenancy, then records the VPC with its main route table, and its own `default` security group.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::kind;
use crate::api::kinds::vpc::{render_vpc, vpc_view};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::tags;
use crate::api::xml::XmlWriter;
use crate::model::network::{generate_group_id, vpc_default_security_group};
use crate::model::routing::{
    generate_association_id, generate_route_table_id, main_route_table_spec, route_table_record,
};
use crate::model::vpc::{
    generate_cidr_association_id, generate_vpc_id, vpc_record, Cidr, PREFIX_RANGE,
};
use crate::model::{now, VpcRecord, VpcSpec, VPC_KIND};
use crate::store::StoreError;

/// A validated CreateVpc request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `CidrBlock`, normalised.
    pub cidr: Cidr,
    /// `InstanceTenancy`.
    pub instance_tenancy: String,
    /// Tags of `TagSpecification`s with `ResourceType=vpc`.
    pub tags: BTreeMap<String, String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// `Value (…) for parameter cidrBlock is invalid. This is not a valid CIDR block.`
pub fn invalid_cidr(text: &str) -> ApiError {
    ApiError::invalid_value(format!(
        "Value ({text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
    ))
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    if params
        .get("AmazonProvidedIpv6CidrBlock")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || params.get("Ipv6CidrBlock").is_some()
        || params.get("Ipv6IpamPoolId").is_some()
        || params.get("Ipv4IpamPoolId").is_some()
    {
        return Err(ApiError::client(
            "UnsupportedOperation",
            "ec2d does not support IPv6 CIDR blocks or IPAM pools for VPCs",
        ));
    }
    let text = params.require("CidrBlock")?;
    let cidr = Cidr::parse(text).ok_or_else(|| invalid_cidr(text))?;
    if !PREFIX_RANGE.contains(&cidr.prefix) {
        return Err(ApiError::client(
            "InvalidVpc.Range",
            format!("The CIDR '{text}' is invalid."),
        ));
    }
    let instance_tenancy = match params.get("InstanceTenancy").filter(|t| !t.is_empty()) {
        None => "default".to_string(),
        Some(t @ ("default" | "dedicated")) => t.to_string(),
        Some(other) => {
            return Err(ApiError::invalid_value(format!(
                "Value ({other}) for parameter instanceTenancy is invalid. Valid values are: default, dedicated"
            )))
        }
    };
    Ok(Request {
        cidr,
        instance_tenancy,
        tags: tags::tag_specifications(params, &["vpc"])?,
        dry_run: kind::dry_run(params)?,
    })
}

/// Writes the VPC, then its `default` group (removing the VPC again if that fails).
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<VpcRecord, ApiError> {
    kind::check_dry_run(req.dry_run)?;
    let id = generate_vpc_id();
    let group_id = generate_group_id();
    let at = now();
    let vpc = vpc_record(
        &id,
        region,
        VpcSpec {
            cidr_block: req.cidr.to_string(),
            cidr_association_id: generate_cidr_association_id(),
            instance_tenancy: req.instance_tenancy,
            default_group_id: group_id.clone(),
            enable_dns_support: true,
            enable_dns_hostnames: false,
            enable_network_address_usage_metrics: false,
            is_default: false,
            tags: req.tags,
        },
        at,
    );
    let table = route_table_record(
        &generate_route_table_id(),
        region,
        main_route_table_spec(&id, &vpc.spec.cidr_block, &generate_association_id()),
        at,
    );
    // The VPC and its main route table are one write: no reader sees a VPC without one.
    state.store.routing(|tx| {
        if tx.vpc(&id)?.is_some() {
            return Err(StoreError::AlreadyExists {
                kind: VPC_KIND,
                id: id.clone(),
            });
        }
        tx.put_vpc(&vpc)?;
        tx.put_route_table(&table)?;
        tx.set_table_count(&id, 1)
    })?;
    let group = vpc_default_security_group(&group_id, &id, region, at);
    if let Err(e) = state.store.create_security_group(&group) {
        state.store.routing(|tx| {
            tx.delete_route_table(&table.metadata.name)?;
            tx.set_table_count(&id, 0)?;
            tx.delete_vpc(&id)
        })?;
        return Err(e.into());
    }
    tracing::info!(vpc_id = %id, cidr = %vpc.spec.cidr_block, %region, "vpc created");
    Ok(vpc)
}

/// `vpc`, in state `pending` as EC2 answers.
pub fn render(vpc: &VpcRecord) -> String {
    let mut w = XmlWriter::new();
    w.el("vpc", |w| render_vpc(w, &vpc_view(vpc), "pending"));
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn blocks_and_tenancy() {
        let req = parse_str("CidrBlock=10.0.0.0/16").unwrap();
        assert_eq!(req.cidr.to_string(), "10.0.0.0/16");
        assert_eq!(req.instance_tenancy, "default");
        for (q, code) in [
            ("", "MissingParameter"),
            ("CidrBlock=10.0.0.0/8", "InvalidVpc.Range"),
            ("CidrBlock=10.0.0.0/29", "InvalidVpc.Range"),
            ("CidrBlock=nope", "InvalidParameterValue"),
            (
                "CidrBlock=10.0.0.0/16&InstanceTenancy=host",
                "InvalidParameterValue",
            ),
            (
                "CidrBlock=10.0.0.0/16&AmazonProvidedIpv6CidrBlock=true",
                "UnsupportedOperation",
            ),
        ] {
            assert_eq!(parse_str(q).unwrap_err().code, code, "{q}");
        }
        assert_eq!(
            parse_str("CidrBlock=10.0.0.0/8").unwrap_err().message,
            "The CIDR '10.0.0.0/8' is invalid."
        );
    }
}
