//! `DescribeInstanceStatus`: the status checks of the region's instances (what `aws ec2 wait instance-status-ok` polls).
//!
//! ec2d has no hardware to check: a running instance's container is up, so both checks pass
//! (`ok`, reachability `passed`); any other state has no checks (`not-applicable`). By
//! default only running instances are listed, as in EC2; `IncludeAllInstances` lists all.

use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::{Instance, InstanceId, InstanceState};

use crate::api::render::render_state;
use crate::api::{instances, kind, paging};

/// The filter names EC2 documents for instance status.
pub const FILTERS: &[&str] = &[
    "availability-zone",
    "instance-state-name",
    "instance-state-code",
    "instance-status.status",
    "instance-status.reachability",
    "system-status.status",
    "system-status.reachability",
];

/// A validated DescribeInstanceStatus request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `InstanceId.N`; each must exist.
    pub ids: Vec<InstanceId>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `IncludeAllInstances`: every state, not only running.
    pub include_all: bool,
    /// `MaxResults`.
    pub max_results: Option<usize>,
    /// `NextToken`: the instance id the previous page ended on.
    pub after: Option<String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// One instance's checks.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusItem {
    /// The instance.
    pub instance: Arc<Instance>,
    /// The state a client sees.
    pub state: InstanceState,
}

impl StatusItem {
    /// `ok` for a running instance, `not-applicable` otherwise (both checks alike).
    fn check(&self) -> &'static str {
        if self.state == InstanceState::Running {
            "ok"
        } else {
            "not-applicable"
        }
    }

    /// The reachability check's result, when there is one.
    fn reachability(&self) -> Option<&'static str> {
        (self.state == InstanceState::Running).then_some("passed")
    }
}

/// A page of statuses.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The statuses, by instance id.
    pub statuses: Vec<StatusItem>,
    /// Where the next page starts.
    pub next_token: Option<String>,
}

/// Parses ids, filters, `IncludeAllInstances` and paging.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let ids = instances::instance_ids(params, false)?;
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    let max_results = paging::max_results(
        params,
        (!ids.is_empty())
            .then_some("The parameter instancesSet cannot be used with the parameter maxResults"),
        paging::SizeWording::Between,
    )?;
    Ok(Request {
        ids,
        filters,
        include_all: params.bool("IncludeAllInstances")?.unwrap_or(false),
        max_results,
        after: match paging::next_token(params)? {
            Some(id) if InstanceId::parse(&id).is_err() => return Err(paging::invalid_token()),
            after => after,
        },
        dry_run: kind::dry_run(params)?,
    })
}

/// A status's values for each filter name.
fn filter_values(name: &str, item: &StatusItem) -> Vec<String> {
    match name {
        "availability-zone" => vec![item.instance.spec.availability_zone.clone()],
        "instance-state-name" => vec![item.state.name().to_string()],
        "instance-state-code" => vec![item.state.code().to_string()],
        "instance-status.status" | "system-status.status" => vec![item.check().to_string()],
        "instance-status.reachability" | "system-status.reachability" => item
            .reachability()
            .map(str::to_string)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads, filters and pages.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Response, ApiError> {
    let instances = instances::instances_by_ids_or_region(state, region, &req.ids)?;
    kind::check_dry_run(req.dry_run)?;
    let mut statuses: Vec<StatusItem> = instances
        .into_iter()
        .map(|instance| StatusItem {
            state: instances::shown_state(&instance),
            instance,
        })
        .filter(|item| req.include_all || item.state == InstanceState::Running)
        .filter(|item| filter::matches_all(&req.filters, |name| filter_values(name, item)))
        .filter(|item| {
            req.after
                .as_deref()
                .is_none_or(|after| item.instance.metadata.name.as_str() > after)
        })
        .collect();
    statuses.sort_by(|a, b| a.instance.metadata.name.cmp(&b.instance.metadata.name));
    let next_token = paging::cut(&mut statuses, req.max_results, |s| {
        s.instance.metadata.name.clone()
    });
    Ok(Response {
        statuses,
        next_token,
    })
}

fn render_check(w: &mut XmlWriter, element: &str, item: &StatusItem) {
    w.el(element, |w| {
        w.field("status", item.check());
        match item.reachability() {
            Some(result) => w.set("details", [result], |w, result| {
                w.field("name", "reachability");
                w.field("status", result);
            }),
            None => w.empty("details"),
        }
    });
}

/// `instanceStatusSet` and `nextToken`.
pub fn render(resp: &Response) -> String {
    let mut w = XmlWriter::new();
    w.set("instanceStatusSet", &resp.statuses, |w, item| {
        w.field("instanceId", &item.instance.metadata.name);
        w.field("availabilityZone", &item.instance.spec.availability_zone);
        render_state(w, "instanceState", item.state);
        render_check(w, "systemStatus", item);
        render_check(w, "instanceStatus", item);
        w.empty("eventsSet");
    });
    w.opt_field("nextToken", resp.next_token.as_deref());
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
    fn a_token_must_name_an_instance() {
        let q =
            |cursor: &str| QueryParams::from_query(&format!("NextToken={}", paging::token(cursor)));
        assert_eq!(
            parse(&q("i-0123456789abcdef0")).unwrap().after.as_deref(),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(parse(&q("sg-1")).unwrap_err().code, "InvalidNextToken");
    }

    #[test]
    fn parses_and_checks_like_ec2() {
        let req = parse(&QueryParams::from_query(
            "IncludeAllInstances=true&Filter.1.Name=instance-status.status&Filter.1.Value.1=ok&MaxResults=5",
        ))
        .unwrap();
        assert!(req.include_all);
        assert_eq!(req.max_results, Some(5));
        let code = |q: &str| parse(&QueryParams::from_query(q)).unwrap_err().code;
        assert_eq!(
            code("InstanceId.1=i-00000001&MaxResults=5"),
            "InvalidParameterCombination"
        );
        assert_eq!(code("MaxResults=4"), "InvalidParameterValue");
        assert_eq!(
            code("Filter.1.Name=colour&Filter.1.Value.1=x"),
            "InvalidParameterValue"
        );
        assert_eq!(code("IncludeAllInstances=maybe"), "InvalidParameterValue");
        assert_eq!(code("InstanceId.1=nope"), "InvalidInstanceID.Malformed");
    }

    #[test]
    fn only_a_running_instance_passes_its_checks() {
        let instance = Arc::new(crate::model::fixtures::instance());
        let item = |state| StatusItem {
            instance: Arc::clone(&instance),
            state,
        };
        let running = item(InstanceState::Running);
        assert_eq!(
            (running.check(), running.reachability()),
            ("ok", Some("passed"))
        );
        let stopped = item(InstanceState::Stopped);
        assert_eq!(
            (stopped.check(), stopped.reachability()),
            ("not-applicable", None)
        );
        let xml = render(&Response {
            statuses: vec![running],
            next_token: None,
        });
        assert!(xml.contains(
            "<instanceStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></instanceStatus>"
        ), "{xml}");
    }
}
