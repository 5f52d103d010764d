//! `DescribeAvailabilityZones`: the zones of the caller's region (AWS's zone ids; us-east-1 has six), by name, id and filter.

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;

use crate::api::kind::{check_dry_run, dry_run};
use crate::model::region::{zones, Zone};

/// The filter names ec2d answers.
pub const FILTERS: &[&str] = &[
    "zone-name",
    "zone-id",
    "state",
    "region-name",
    "zone-type",
    "group-name",
    "network-border-group",
    "opt-in-status",
    "message",
];

/// A validated DescribeAvailabilityZones request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `ZoneName.N`.
    pub names: Vec<String>,
    /// `ZoneId.N`.
    pub ids: Vec<String>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses names, ids and filters; `AllAvailabilityZones` is accepted (there are no local zones).
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    params.bool("AllAvailabilityZones")?;
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    Ok(Request {
        names: params
            .list("ZoneName")
            .into_iter()
            .map(str::to_string)
            .collect(),
        ids: params
            .list("ZoneId")
            .into_iter()
            .map(str::to_string)
            .collect(),
        filters,
        dry_run: dry_run(params)?,
    })
}

/// A zone's state: `impaired` while the engine serving it is unreachable (several engines
/// configured), else `available`.
fn zone_state(state: &ApiState, zone: &Zone) -> &'static str {
    if state.introspection.zone_impaired(&zone.name) {
        "impaired"
    } else {
        "available"
    }
}

fn filter_values(name: &str, (zone, zone_state): &(Zone, &'static str)) -> Vec<String> {
    let one = |s: &str| vec![s.to_string()];
    match name {
        "zone-name" => one(&zone.name),
        "zone-id" => one(&zone.id),
        "state" => one(zone_state),
        "region-name" | "group-name" | "network-border-group" => one(&zone.region),
        "zone-type" => one("availability-zone"),
        "opt-in-status" => one("opt-in-not-required"),
        _ => Vec::new(),
    }
}

/// Selects zones, each with its state; unknown names or ids are `InvalidParameterValue`, as
/// in EC2.
pub fn handle(
    state: &ApiState,
    region: &str,
    req: Request,
) -> Result<Vec<(Zone, &'static str)>, ApiError> {
    let all = zones(region);
    if let Some(unknown) = req
        .names
        .iter()
        .find(|n| !all.iter().any(|z| &z.name == *n))
    {
        return Err(ApiError::invalid_value(format!(
            "Invalid availability zone: [{unknown}]"
        )));
    }
    if let Some(unknown) = req.ids.iter().find(|n| !all.iter().any(|z| &z.id == *n)) {
        return Err(ApiError::invalid_value(format!(
            "Invalid availability zone-id: [{unknown}]"
        )));
    }
    check_dry_run(req.dry_run)?;
    Ok(all
        .into_iter()
        .filter(|z| req.names.is_empty() || req.names.contains(&z.name))
        .filter(|z| req.ids.is_empty() || req.ids.contains(&z.id))
        .map(|z| {
            let zone_state = zone_state(state, &z);
            (z, zone_state)
        })
        .filter(|z| filter::matches_all(&req.filters, |name| filter_values(name, z)))
        .collect())
}

/// `availabilityZoneInfo`.
pub fn render(zones: &[(Zone, &'static str)]) -> String {
    let mut w = XmlWriter::new();
    w.set("availabilityZoneInfo", zones, |w, (z, zone_state)| {
        w.field("zoneName", &z.name);
        w.field("zoneState", *zone_state);
        w.field("regionName", &z.region);
        w.empty("messageSet");
        w.field("optInStatus", "opt-in-not-required");
        w.field("zoneId", &z.id);
        w.field("groupName", &z.region);
        w.field("networkBorderGroup", &z.region);
        w.field("zoneType", "availability-zone");
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
    fn parse_and_render() {
        let req = parse(&QueryParams::from_query(
            "ZoneName.1=us-east-1b&Filter.1.Name=state&Filter.1.Value.1=available",
        ))
        .unwrap();
        assert_eq!(req.names, vec!["us-east-1b"]);
        assert!(parse(&QueryParams::from_query("Filter.1.Name=colour")).is_err());
        let zone = zones("eu-west-1").remove(0);
        let doc = render(&[(zone.clone(), "available")]);
        assert!(doc.starts_with("<availabilityZoneInfo><item><zoneName>eu-west-1a</zoneName><zoneState>available</zoneState>"));
        assert!(doc.contains("<zoneId>euw1-az1</zoneId>"));
        let doc = render(&[(zone.clone(), "impaired")]);
        assert!(doc.contains("<zoneState>impaired</zoneState>"));
        assert_eq!(filter_values("state", &(zone, "impaired")), ["impaired"]);
    }
}
