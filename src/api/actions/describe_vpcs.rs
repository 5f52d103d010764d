//! `DescribeVpcs`: the region's default VPC (computed, never stored), by id and filter.

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::query::QueryParams;
use crate::api::xml::XmlWriter;
use crate::api::ApiState;
use crate::model::network::Vpc;
use crate::model::ACCOUNT_ID;

use super::network::{check_vpc_id, vpc, vpc_not_found};
use super::shared;

/// The filter names ec2d answers.
pub const FILTERS: &[&str] = &[
    "vpc-id",
    "cidr",
    "cidr-block-association.cidr-block",
    "cidr-block-association.association-id",
    "cidr-block-association.state",
    "dhcp-options-id",
    "is-default",
    "owner-id",
    "state",
];

/// A validated DescribeVpcs request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `VpcId.N`; empty means all.
    pub ids: Vec<String>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates the request. `MaxResults`/`NextToken` must be well-formed but never
/// page: a region has one VPC.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let ids: Vec<String> = params
        .list("VpcId")
        .into_iter()
        .map(str::to_string)
        .collect();
    for id in &ids {
        check_vpc_id(id)?;
    }
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    params.int("MaxResults")?;
    Ok(Request {
        ids,
        filters,
        dry_run: shared::dry_run(params)?,
    })
}

/// The VPC's values for one filter name.
pub fn filter_values(name: &str, vpc: &Vpc) -> Vec<String> {
    let one = |s: &str| vec![s.to_string()];
    match name {
        "vpc-id" => one(&vpc.vpc_id),
        "cidr" | "cidr-block-association.cidr-block" => one(&vpc.cidr_block),
        "cidr-block-association.association-id" => one(&vpc.cidr_association_id),
        "cidr-block-association.state" => one("associated"),
        "dhcp-options-id" => one(&vpc.dhcp_options_id),
        "is-default" => one("true"),
        "owner-id" => one(ACCOUNT_ID),
        "state" => one("available"),
        _ => Vec::new(),
    }
}

/// Answers the default VPC when the ids and filters allow it; an unknown id is `InvalidVpcID.NotFound`.
pub fn handle(_state: &ApiState, region: &str, req: Request) -> Result<Vec<Vpc>, ApiError> {
    let vpc = vpc(region);
    if let Some(unknown) = req.ids.iter().find(|id| **id != vpc.vpc_id) {
        return Err(vpc_not_found(unknown));
    }
    shared::check_dry_run(req.dry_run)?;
    let matches = filter::matches_all(&req.filters, |name| filter_values(name, &vpc));
    Ok(if matches { vec![vpc] } else { Vec::new() })
}

/// `vpcSet`.
pub fn render(vpcs: &[Vpc]) -> String {
    let mut w = XmlWriter::new();
    w.set("vpcSet", vpcs, |w, v| {
        w.field("vpcId", &v.vpc_id);
        w.field("ownerId", ACCOUNT_ID);
        w.field("state", "available");
        w.field("cidrBlock", &v.cidr_block);
        w.set("cidrBlockAssociationSet", [v], |w, v| {
            w.field("cidrBlock", &v.cidr_block);
            w.field("associationId", &v.cidr_association_id);
            w.el("cidrBlockState", |w| w.field("state", "associated"));
        });
        w.field("dhcpOptionsId", &v.dhcp_options_id);
        w.field("instanceTenancy", "default");
        w.field("isDefault", true);
    });
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_ids_and_filters() {
        let q = QueryParams::from_query("VpcId.1=nope");
        assert_eq!(parse(&q).unwrap_err().code, "InvalidVpcID.Malformed");
        let q = QueryParams::from_query("Filter.1.Name=flavour&Filter.1.Value.1=x");
        assert_eq!(
            parse(&q).unwrap_err().message,
            "The filter 'flavour' is invalid"
        );
    }

    #[test]
    fn default_vpc_answers_its_filters() {
        let v = vpc("us-east-1");
        assert_eq!(filter_values("is-default", &v), vec!["true"]);
        assert_eq!(filter_values("cidr", &v), vec!["172.31.0.0/16"]);
        for name in FILTERS {
            assert!(!filter_values(name, &v).is_empty(), "{name} answered");
        }
    }
}
