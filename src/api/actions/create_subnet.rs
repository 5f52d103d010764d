//! `CreateSubnet`: validates the block (inside its VPC's, /16 to /28, overlapping none of the VPC's subnets) and the zone, then records the subnet.

use std::collections::BTreeMap;

use crate::api::actions::create_vpc::invalid_cidr;
use crate::api::error::ApiError;
use crate::api::kind::{self, Kind};
use crate::api::kinds::subnet::{region_subnets, render_subnet, subnet_view, Shown};
use crate::api::kinds::vpc::find_vpc;
use crate::api::kinds::VpcKind;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::tags;
use crate::api::xml::XmlWriter;
use crate::model::region;
use crate::model::vpc::{generate_subnet_id, subnet_record, Cidr, PREFIX_RANGE};
use crate::model::{now, SubnetRecord, SubnetSpec, ACCOUNT_ID};

/// A validated CreateSubnet request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `VpcId`.
    pub vpc_id: String,
    /// `CidrBlock` as written, and normalised.
    pub cidr_text: String,
    /// The block.
    pub cidr: Cidr,
    /// `AvailabilityZone`.
    pub zone: Option<String>,
    /// `AvailabilityZoneId`.
    pub zone_id: Option<String>,
    /// Tags of `TagSpecification`s with `ResourceType=subnet`.
    pub tags: BTreeMap<String, String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let vpc_id = VpcKind::check_id(params.require("VpcId")?)?;
    if params.get("Ipv6CidrBlock").is_some()
        || params.get("Ipv6Native").is_some_and(|v| v == "true")
    {
        return Err(ApiError::client(
            "UnsupportedOperation",
            "ec2d does not support IPv6 CIDR blocks for subnets",
        ));
    }
    let text = params.require("CidrBlock")?;
    let cidr = Cidr::parse(text).ok_or_else(|| invalid_cidr(text))?;
    let non_empty = |name| {
        params
            .get(name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Ok(Request {
        vpc_id,
        cidr_text: text.to_string(),
        cidr,
        zone: non_empty("AvailabilityZone"),
        zone_id: non_empty("AvailabilityZoneId"),
        tags: tags::tag_specifications(params, &["subnet"])?,
        dry_run: kind::dry_run(params)?,
    })
}

/// `InvalidSubnet.Range`.
fn out_of_range(text: &str) -> ApiError {
    ApiError::client(
        "InvalidSubnet.Range",
        format!("The CIDR '{text}' is invalid."),
    )
}

/// Checks the VPC, the block against it and its subnets, and the zone, then writes.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Shown, ApiError> {
    let vpc = find_vpc(state, region, &req.vpc_id)?
        .ok_or_else(|| VpcKind::IDS.not_found(&[&req.vpc_id]))?;
    let vpc_cidr = Cidr::parse(&vpc.cidr_block).ok_or_else(|| invalid_cidr(&vpc.cidr_block))?;
    if !PREFIX_RANGE.contains(&req.cidr.prefix) || !vpc_cidr.contains(&req.cidr) {
        return Err(out_of_range(&req.cidr_text));
    }
    let siblings = region_subnets(state, region)?;
    if siblings.iter().any(|s| {
        s.vpc_id == vpc.vpc_id && Cidr::parse(&s.cidr_block).is_some_and(|c| c.overlaps(&req.cidr))
    }) {
        return Err(ApiError::client(
            "InvalidSubnet.Conflict",
            format!("The CIDR '{}' conflicts with another subnet", req.cidr_text),
        ));
    }
    let zones = region::zones(region);
    let zone = match (&req.zone, &req.zone_id) {
        (Some(name), _) => zones.iter().find(|z| z.name == *name),
        (None, Some(id)) => zones.iter().find(|z| z.id == *id),
        (None, None) => zones.first(),
    };
    let zone = zone.ok_or_else(|| {
        let (parameter, value) = match (&req.zone, &req.zone_id) {
            (Some(name), _) => ("availabilityZone", name.as_str()),
            (None, id) => ("availabilityZoneId", id.as_deref().unwrap_or_default()),
        };
        ApiError::invalid_value(format!(
            "Value ({value}) for parameter {parameter} is invalid. Subnets can currently only be created in the following availability zones: {}.",
            zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    if let (Some(name), Some(id)) = (&req.zone, &req.zone_id) {
        if zone.id != *id {
            return Err(ApiError::invalid_combination(format!(
                "The availability zone '{name}' and availability zone id '{id}' do not match"
            )));
        }
    }
    kind::check_dry_run(req.dry_run)?;
    let id = generate_subnet_id();
    let record = subnet_record(
        &id,
        region,
        SubnetSpec {
            vpc_id: vpc.vpc_id,
            cidr_block: req.cidr.to_string(),
            availability_zone: zone.name.clone(),
            availability_zone_id: zone.id.clone(),
            map_public_ip_on_launch: false,
            default_for_az: false,
            options: Default::default(),
            tags: req.tags,
        },
        now(),
    );
    state.store.create_subnet(&record)?;
    tracing::info!(subnet_id = %id, cidr = %record.spec.cidr_block, %region, "subnet created");
    Ok(shown(region, &record))
}

/// A new subnet with every address free.
fn shown(region: &str, record: &SubnetRecord) -> Shown {
    let subnet = subnet_view(record);
    Shown {
        available: subnet.usable,
        arn: format!(
            "arn:aws:ec2:{region}:{ACCOUNT_ID}:subnet/{}",
            subnet.subnet_id
        ),
        subnet,
    }
}

/// `subnet`, in state `pending` as EC2 answers.
pub fn render(subnet: &Shown) -> String {
    let mut w = XmlWriter::new();
    w.el("subnet", |w| render_subnet(w, subnet, "pending"));
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
    fn parse_errors() {
        let parse_str = |q: &str| parse(&QueryParams::from_query(q));
        assert_eq!(
            parse_str("CidrBlock=10.0.0.0/24").unwrap_err().code,
            "MissingParameter"
        );
        assert_eq!(
            parse_str("VpcId=x&CidrBlock=10.0.0.0/24").unwrap_err().code,
            "InvalidVpcID.Malformed"
        );
        assert_eq!(
            parse_str("VpcId=vpc-1&CidrBlock=10.0.0/24")
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
        assert!(parse_str("VpcId=vpc-1&CidrBlock=10.0.0.0/24").is_ok());
    }
}
