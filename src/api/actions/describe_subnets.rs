//! `DescribeSubnets`: the default subnets of the region's default VPC (computed, one per zone), by id and filter.

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::query::QueryParams;
use crate::api::xml::XmlWriter;
use crate::api::ApiState;
use crate::model::network::{Subnet, SUBNET_USABLE_ADDRESSES};
use crate::model::{InstanceState, ACCOUNT_ID};

use super::network::{check_subnet_id, subnet_not_found, subnets};
use super::shared;

/// The filter names ec2d answers.
pub const FILTERS: &[&str] = &[
    "subnet-id",
    "vpc-id",
    "availability-zone",
    "availability-zone-id",
    "availableIpAddressCount",
    "available-ip-address-count",
    "cidr",
    "cidr-block",
    "cidrBlock",
    "default-for-az",
    "defaultForAz",
    "map-public-ip-on-launch",
    "owner-id",
    "state",
    "subnet-arn",
];

/// A validated DescribeSubnets request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `SubnetId.N`; empty means all.
    pub ids: Vec<String>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// A subnet with its free addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The subnet.
    pub subnet: Subnet,
    /// Addresses left: the usable ones minus the region's instances in it that are not terminated.
    pub available: u32,
    /// `arn:aws:ec2:<region>:<account>:subnet/<id>`.
    pub arn: String,
}

/// Parses and validates the request (`MaxResults` must be an integer; three subnets never page).
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let ids: Vec<String> = params
        .list("SubnetId")
        .into_iter()
        .map(str::to_string)
        .collect();
    for id in &ids {
        check_subnet_id(id)?;
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

/// The subnet's values for one filter name.
pub fn filter_values(name: &str, s: &Shown) -> Vec<String> {
    let one = |v: &str| vec![v.to_string()];
    match name {
        "subnet-id" => one(&s.subnet.subnet_id),
        "vpc-id" => one(&s.subnet.vpc_id),
        "availability-zone" => one(&s.subnet.availability_zone),
        "availability-zone-id" => one(&s.subnet.availability_zone_id),
        "availableIpAddressCount" | "available-ip-address-count" => vec![s.available.to_string()],
        "cidr" | "cidr-block" | "cidrBlock" => one(&s.subnet.cidr_block),
        "default-for-az" | "defaultForAz" | "map-public-ip-on-launch" => one("true"),
        "owner-id" => one(ACCOUNT_ID),
        "state" => one("available"),
        "subnet-arn" => one(&s.arn),
        _ => Vec::new(),
    }
}

/// The region's subnets, with each one's free addresses computed from the instances in it.
pub fn shown_subnets(state: &ApiState, region: &str) -> Result<Vec<Shown>, ApiError> {
    let instances = shared::region_instances(state, region)?;
    Ok(subnets(region)
        .into_iter()
        .map(|subnet| {
            let used = instances
                .iter()
                .filter(|i| i.spec.subnet_id.as_deref() == Some(subnet.subnet_id.as_str()))
                .filter(|i| shared::shown_state(i) != InstanceState::Terminated)
                .count();
            Shown {
                available: SUBNET_USABLE_ADDRESSES
                    .saturating_sub(u32::try_from(used).unwrap_or(u32::MAX)),
                arn: format!(
                    "arn:aws:ec2:{region}:{ACCOUNT_ID}:subnet/{}",
                    subnet.subnet_id
                ),
                subnet,
            }
        })
        .collect())
}

/// The subnets by id and filter; an unknown id is `InvalidSubnetID.NotFound`.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Vec<Shown>, ApiError> {
    let all = shown_subnets(state, region)?;
    if let Some(unknown) = req
        .ids
        .iter()
        .find(|id| !all.iter().any(|s| s.subnet.subnet_id == **id))
    {
        return Err(subnet_not_found(unknown));
    }
    shared::check_dry_run(req.dry_run)?;
    Ok(all
        .into_iter()
        .filter(|s| req.ids.is_empty() || req.ids.contains(&s.subnet.subnet_id))
        .filter(|s| filter::matches_all(&req.filters, |name| filter_values(name, s)))
        .collect())
}

/// `subnetSet`.
pub fn render(subnets: &[Shown]) -> String {
    let mut w = XmlWriter::new();
    w.set("subnetSet", subnets, |w, s| {
        let subnet = &s.subnet;
        w.field("subnetId", &subnet.subnet_id);
        w.field("subnetArn", &s.arn);
        w.field("state", "available");
        w.field("ownerId", ACCOUNT_ID);
        w.field("vpcId", &subnet.vpc_id);
        w.field("cidrBlock", &subnet.cidr_block);
        w.empty("ipv6CidrBlockAssociationSet");
        w.field("availableIpAddressCount", s.available);
        w.field("availabilityZone", &subnet.availability_zone);
        w.field("availabilityZoneId", &subnet.availability_zone_id);
        w.field("defaultForAz", true);
        w.field("mapPublicIpOnLaunch", true);
        w.field("mapCustomerOwnedIpOnLaunch", false);
        w.field("assignIpv6AddressOnCreation", false);
        w.field("enableDns64", false);
        w.field("ipv6Native", false);
        w.el("privateDnsNameOptionsOnLaunch", |w| {
            w.field("hostnameType", "ip-name");
            w.field("enableResourceNameDnsARecord", false);
            w.field("enableResourceNameDnsAAAARecord", false);
        });
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
        let q = QueryParams::from_query("SubnetId.1=sn-1");
        let e = parse(&q).unwrap_err();
        assert_eq!(e.code, "InvalidSubnetID.Malformed");
        assert_eq!(e.message, "Invalid id: \"sn-1\" (expecting \"subnet-...\")");
        let q = QueryParams::from_query("Filter.1.Name=colour&Filter.1.Value.1=x");
        assert_eq!(parse(&q).unwrap_err().code, "InvalidParameterValue");
    }

    #[test]
    fn every_filter_is_answered() {
        let s = Shown {
            subnet: subnets("us-east-1").remove(0),
            available: 4091,
            arn: "arn".into(),
        };
        for name in FILTERS {
            assert!(!filter_values(name, &s).is_empty(), "{name}");
        }
        assert_eq!(filter_values("availability-zone", &s), vec!["us-east-1a"]);
    }
}
