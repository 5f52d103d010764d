//! `DescribeRegions`: the regions enabled for the caller (the default ones and its own), or with
//! `AllRegions` every region, opt-in ones included, by name and filter.

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;

use crate::api::kind::{check_dry_run, dry_run};
use crate::model::region::{all_regions, endpoint, known_regions, opt_in_status};

/// The filter names ec2d answers.
pub const FILTERS: &[&str] = &["region-name", "endpoint", "opt-in-status"];

/// A validated DescribeRegions request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `RegionName.N`; empty means all.
    pub names: Vec<String>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `AllRegions`: the opt-in regions the caller has not enabled too.
    pub all_regions: bool,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses names, filters and `AllRegions`.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let all_regions = params.bool("AllRegions")?.unwrap_or(false);
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    Ok(Request {
        names: params
            .list("RegionName")
            .into_iter()
            .map(str::to_string)
            .collect(),
        filters,
        all_regions,
        dry_run: dry_run(params)?,
    })
}

fn filter_values(name: &str, region: &str, current: &str) -> Vec<String> {
    match name {
        "region-name" => vec![region.to_string()],
        "endpoint" => vec![endpoint(region)],
        "opt-in-status" => vec![opt_in_status(region, current).to_string()],
        _ => Vec::new(),
    }
}

/// One region of the answer and its `OptInStatus` for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    /// `regionName`.
    pub name: String,
    /// `optInStatus`.
    pub opt_in_status: &'static str,
}

/// Selects regions (a region named is listed even when not enabled, as with `AllRegions`); an
/// unknown `RegionName` is `InvalidParameterValue`, as in EC2.
pub fn handle(_state: &ApiState, region: &str, req: Request) -> Result<Vec<RegionInfo>, ApiError> {
    let all = all_regions(region);
    if let Some(unknown) = req.names.iter().find(|n| !all.contains(n)) {
        return Err(ApiError::invalid_value(format!(
            "Invalid region: [{unknown}]"
        )));
    }
    check_dry_run(req.dry_run)?;
    let listed = if req.all_regions || !req.names.is_empty() {
        all
    } else {
        known_regions(region)
    };
    Ok(listed
        .into_iter()
        .filter(|r| req.names.is_empty() || req.names.contains(r))
        .filter(|r| filter::matches_all(&req.filters, |name| filter_values(name, r, region)))
        .map(|r| RegionInfo {
            opt_in_status: opt_in_status(&r, region),
            name: r,
        })
        .collect())
}

/// `regionInfo`.
pub fn render(regions: &[RegionInfo]) -> String {
    let mut w = XmlWriter::new();
    w.set("regionInfo", regions, |w, r| {
        w.field("regionName", &r.name);
        w.field("regionEndpoint", endpoint(&r.name));
        w.field("optInStatus", r.opt_in_status);
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
        assert!(req.all_regions);
        assert_eq!(req.filters[0].name, "endpoint");
        assert!(parse(&QueryParams::from_query("Filter.1.Name=zone")).is_err());
    }

    #[test]
    fn render_shape() {
        assert_eq!(
            render(&[RegionInfo {
                name: "eu-west-1".to_string(),
                opt_in_status: "opt-in-not-required"
            }]),
            "<regionInfo><item><regionName>eu-west-1</regionName><regionEndpoint>ec2.eu-west-1.amazonaws.com</regionEndpoint>\
             <optInStatus>opt-in-not-required</optInStatus></item></regionInfo>"
        );
    }
}
