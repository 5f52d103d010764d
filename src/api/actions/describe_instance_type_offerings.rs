//! `DescribeInstanceTypeOfferings`: every catalogue type is offered in the region and in each of its zones.

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::kind::{check_dry_run, dry_run};
use crate::api::paging;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::instance_types::INSTANCE_TYPES;
use crate::model::region::zones;

/// The filter names ec2d answers.
pub const FILTERS: &[&str] = &["instance-type", "location"];

/// `LocationType`: what `location` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationType {
    /// The region (the default).
    Region,
    /// Zone names: `us-east-1a`.
    AvailabilityZone,
    /// Zone ids: `use1-az1`.
    AvailabilityZoneId,
    /// Outpost ARNs: ec2d has no outposts, so nothing is offered there.
    Outpost,
}

impl LocationType {
    const ALL: [(&'static str, LocationType); 4] = [
        ("region", Self::Region),
        ("availability-zone", Self::AvailabilityZone),
        ("availability-zone-id", Self::AvailabilityZoneId),
        ("outpost", Self::Outpost),
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("region", |(name, _)| name)
    }
}

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `LocationType`.
    pub location_type: LocationType,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `MaxResults`.
    pub max_results: Option<usize>,
    /// `NextToken`, decoded: the last (location, type) shown.
    pub after: Option<(String, String)>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// One offering.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Offering {
    /// The region, zone name or zone id.
    pub location: String,
    /// `t3.micro`.
    pub instance_type: &'static str,
}

/// Parses the location type (anything else is `InvalidParameterValue`), filters and the page.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let location_type = match params.get("LocationType") {
        None => LocationType::Region,
        Some(given) => LocationType::ALL
            .iter()
            .find(|(name, _)| *name == given)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                ApiError::invalid_value(format!(
                    "Value ({given}) for parameter locationType is invalid. Expected one of: region, availability-zone, availability-zone-id, outpost."
                ))
            })?,
    };
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    let max_results = paging::max_results(params, None, paging::SizeWording::Between)?;
    let after = paging::next_pair(params)?;
    Ok(Request {
        location_type,
        filters,
        max_results,
        after,
        dry_run: dry_run(params)?,
    })
}

/// The region's offerings for the request's location type, filtered and paged.
pub fn handle(region: &str, req: &Request) -> Result<(Vec<Offering>, Option<String>), ApiError> {
    check_dry_run(req.dry_run)?;
    let locations: Vec<String> = match req.location_type {
        LocationType::Region => vec![region.to_string()],
        LocationType::AvailabilityZone => zones(region).into_iter().map(|z| z.name).collect(),
        LocationType::AvailabilityZoneId => zones(region).into_iter().map(|z| z.id).collect(),
        LocationType::Outpost => Vec::new(),
    };
    let mut offerings: Vec<Offering> = locations
        .iter()
        .flat_map(|location| {
            INSTANCE_TYPES.iter().map(move |t| Offering {
                location: location.clone(),
                instance_type: t.name,
            })
        })
        .filter(|o| {
            req.after.as_ref().is_none_or(|(location, t)| {
                (o.location.as_str(), o.instance_type) > (location.as_str(), t.as_str())
            })
        })
        .filter(|o| {
            filter::matches_all(&req.filters, |name| match name {
                "instance-type" => vec![o.instance_type.to_string()],
                "location" => vec![o.location.clone()],
                _ => Vec::new(),
            })
        })
        .collect();
    offerings.sort();
    let next_token = paging::cut(&mut offerings, req.max_results, |o| {
        paging::pair_cursor(&o.location, o.instance_type)
    });
    Ok((offerings, next_token))
}

/// `instanceTypeOfferingSet` and `nextToken`.
pub fn render(location_type: LocationType, offerings: &[Offering], next: Option<&str>) -> String {
    let mut w = XmlWriter::new();
    w.set("instanceTypeOfferingSet", offerings, |w, o| {
        w.field("instanceType", o.instance_type);
        w.field("locationType", location_type.as_str());
        w.field("location", &o.location);
    });
    w.opt_field("nextToken", next);
    w.finish()
}

/// The dispatch entry.
pub fn call(_state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    let req = parse(params)?;
    let (offerings, next) = handle(region, &req)?;
    Ok(render(req.location_type, &offerings, next.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_types() {
        let q = |s: &str| parse(&QueryParams::from_query(s));
        assert_eq!(q("").unwrap().location_type, LocationType::Region);
        assert_eq!(
            q("LocationType=availability-zone-id")
                .unwrap()
                .location_type,
            LocationType::AvailabilityZoneId
        );
        assert_eq!(
            q("LocationType=galaxy").unwrap_err().code,
            "InvalidParameterValue"
        );
        for (name, t) in LocationType::ALL {
            assert_eq!(t.as_str(), name);
        }
        let req = q(
            "LocationType=availability-zone-id&Filter.1.Name=location&Filter.1.Value.1=use1-az2",
        )
        .unwrap();
        let (offerings, next) = handle("us-east-1", &req).unwrap();
        assert_eq!(offerings.len(), INSTANCE_TYPES.len());
        assert!(next.is_none());
        assert!(offerings.iter().all(|o| o.location == "use1-az2"));
    }
}
