//! `DescribeRegions`: the commercial regions enabled by default (plus the caller's own), by name and filter.

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;

use crate::api::kind::{check_dry_run, dry_run};
use crate::model::region::{endpoint, known_regions};

/// The filter names ec2d answers.
pub const FILTERS: &[&str] = &["region-name", "endpoint", "opt-in-status"];

/// A validated DescribeRegions request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `RegionName.N`; empty means all.
    pub names: Vec<String>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses names and filters; `AllRegions` is accepted (there are no opt-in regions to add).
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    params.bool("AllRegions")?;
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    Ok(Request {
        names: params
            .list("RegionName")
            .into_iter()
            .map(str::to_string)
            .collect(),
        filters,
        dry_run: dry_run(params)?,
    })
}

fn filter_values(name: &str, region: &str) -> Vec<String> {
    match name {
        "region-name" => vec![region.to_string()],
        "endpoint" => vec![endpoint(region)],
        "opt-in-status" => vec!["opt-in-not-required".to_string()],
        _ => Vec::new(),
    }
}

/// Selects regions; an unknown `RegionName` is `InvalidParameterValue`, as in EC2.
pub fn handle(_state: &ApiState, region: &str, req: Request) -> Result<Vec<String>, ApiError> {
    let all = known_regions(region);
    if let Some(unknown) = req.names.iter().find(|n| !all.contains(n)) {
        return Err(ApiError::invalid_value(format!(
            "Invalid region: [{unknown}]"
        )));
    }
    check_dry_run(req.dry_run)?;
    Ok(all
        .into_iter()
        .filter(|r| req.names.is_empty() || req.names.contains(r))
        .filter(|r| filter::matches_all(&req.filters, |name| filter_values(name, r)))
        .collect())
}

/// `regionInfo`.
pub fn render(regions: &[String]) -> String {
    let mut w = XmlWriter::new();
    w.set("regionInfo", regions, |w, r| {
        w.field("regionName", r);
        w.field("regionEndpoint", endpoint(r));
        w.field("optInStatus", "opt-in-not-required");
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
    fn parse_names_and_filters() {
        let req = parse(&QueryParams::from_query(
            "RegionName.1=eu-west-1&Filter.1.Name=endpoint&Filter.1.Value.1=*eu*&AllRegions=true",
        ))
        .unwrap();
        assert_eq!(req.names, vec!["eu-west-1"]);
        assert_eq!(req.filters[0].name, "endpoint");
        assert!(parse(&QueryParams::from_query("Filter.1.Name=zone")).is_err());
    }

    #[test]
    fn render_shape() {
        assert_eq!(
            render(&["eu-west-1".to_string()]),
            "<regionInfo><item><regionName>eu-west-1</regionName><regionEndpoint>ec2.eu-west-1.amazonaws.com</regionEndpoint>\
             <optInStatus>opt-in-not-required</optInStatus></item></regionInfo>"
        );
    }
}
