//! `DescribeSecurityGroups`: the region's groups by id or name (either list accepts both) and filter, paginated.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::api::error::ApiError;
use crate::api::filter::{self, Filter};
use crate::api::query::QueryParams;
use crate::api::xml::XmlWriter;
use crate::api::ApiState;
use crate::model::{IpPermission, SecurityGroup, ACCOUNT_ID};

use super::network::{find_group, names_by_id, region_groups, render_group, GroupRef};
use super::shared;

/// The filter names ec2d answers: EC2's list, ingress (`ip-permission.*`) and egress
/// (`egress.ip-permission.*`) alike.
pub const FILTERS: &[&str] = &[
    "description",
    "group-id",
    "group-name",
    "owner-id",
    "vpc-id",
    "tag-key",
    "tag-value",
    "ip-permission.cidr",
    "ip-permission.from-port",
    "ip-permission.to-port",
    "ip-permission.protocol",
    "ip-permission.group-id",
    "ip-permission.group-name",
    "ip-permission.ipv6-cidr",
    "ip-permission.prefix-list-id",
    "ip-permission.user-id",
    "egress.ip-permission.cidr",
    "egress.ip-permission.from-port",
    "egress.ip-permission.to-port",
    "egress.ip-permission.protocol",
    "egress.ip-permission.group-id",
    "egress.ip-permission.group-name",
    "egress.ip-permission.ipv6-cidr",
    "egress.ip-permission.prefix-list-id",
    "egress.ip-permission.user-id",
];

/// A validated DescribeSecurityGroups request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GroupId.N` then `GroupName.N`: ids or names, in request order.
    pub groups: Vec<GroupRef>,
    /// `Filter.N`.
    pub filters: Vec<Filter>,
    /// `MaxResults`.
    pub max_results: Option<usize>,
    /// The id after which the page starts (`NextToken`, decoded).
    pub after: Option<String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// One page of groups.
#[derive(Debug, Clone)]
pub struct Response {
    /// The groups, in id order.
    pub groups: Vec<SecurityGroup>,
    /// The token of the next page, when there is one.
    pub next_token: Option<String>,
}

fn invalid_token() -> ApiError {
    ApiError::client("InvalidNextToken", "The specified NextToken is not valid.")
}

/// Parses and validates the request.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let mut groups = Vec::new();
    for raw in params
        .list("GroupId")
        .into_iter()
        .chain(params.list("GroupName"))
    {
        let reference = GroupRef::parse(raw)?;
        if !groups.contains(&reference) {
            groups.push(reference);
        }
    }
    let filters = filter::parse_filters(params)?;
    filter::check_names(&filters, |name| FILTERS.contains(&name))?;
    let max_results = shared::max_results(
        params,
        (!groups.is_empty())
            .then_some("The parameter groupIds cannot be used with the parameter maxResults"),
    )?;
    let after = match params.get("NextToken").filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => {
            let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid_token())?;
            let id = String::from_utf8(bytes).map_err(|_| invalid_token())?;
            if !crate::model::network::is_group_id(&id) {
                return Err(invalid_token());
            }
            Some(id)
        }
    };
    Ok(Request {
        groups,
        filters,
        max_results,
        after,
        dry_run: shared::dry_run(params)?,
    })
}

fn permission_values(
    field: &str,
    permissions: &[IpPermission],
    names: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for p in permissions {
        match field {
            "cidr" => out.extend(p.ip_ranges.iter().map(|r| r.cidr_ip.clone())),
            "ipv6-cidr" => out.extend(p.ipv6_ranges.iter().map(|r| r.cidr_ipv6.clone())),
            "prefix-list-id" => {
                out.extend(p.prefix_list_ids.iter().map(|r| r.prefix_list_id.clone()))
            }
            "from-port" => out.extend(p.from_port.map(|v| v.to_string())),
            "to-port" => out.extend(p.to_port.map(|v| v.to_string())),
            "protocol" => out.push(p.ip_protocol.clone()),
            "group-id" => out.extend(p.user_id_group_pairs.iter().map(|g| g.group_id.clone())),
            "group-name" => out.extend(
                p.user_id_group_pairs
                    .iter()
                    .filter_map(|g| names.get(&g.group_id).cloned()),
            ),
            "user-id" => out.extend(
                p.user_id_group_pairs
                    .iter()
                    .filter_map(|g| g.user_id.clone()),
            ),
            _ => {}
        }
    }
    out
}

/// The group's values for one filter name; `names` maps the region's group ids to names.
pub fn filter_values(
    name: &str,
    group: &SecurityGroup,
    names: &BTreeMap<String, String>,
) -> Vec<String> {
    if let Some(values) = shared::tag_filter_values(name, &group.spec.tags) {
        return values;
    }
    if let Some(field) = name.strip_prefix("egress.ip-permission.") {
        return permission_values(field, &group.spec.egress, names);
    }
    if let Some(field) = name.strip_prefix("ip-permission.") {
        return permission_values(field, &group.spec.ingress, names);
    }
    let one = |s: &str| vec![s.to_string()];
    match name {
        "description" => one(&group.spec.description),
        "group-id" => one(&group.metadata.name),
        "group-name" => one(&group.spec.group_name),
        "owner-id" => one(ACCOUNT_ID),
        "vpc-id" => one(&group.spec.vpc_id),
        _ => Vec::new(),
    }
}

/// Looks up the named groups (every unknown one is an error) or lists the region, then filters and pages.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Response, ApiError> {
    let all = region_groups(state, region)?;
    let names = names_by_id(&all);
    let mut groups = if req.groups.is_empty() {
        all
    } else {
        let mut found = Vec::with_capacity(req.groups.len());
        for reference in &req.groups {
            let group =
                find_group(state, region, reference)?.ok_or_else(|| reference.not_found(region))?;
            if !found
                .iter()
                .any(|g: &SecurityGroup| g.metadata.name == group.metadata.name)
            {
                found.push(group);
            }
        }
        found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        found
    };
    shared::check_dry_run(req.dry_run)?;
    groups.retain(|g| filter::matches_all(&req.filters, |name| filter_values(name, g, &names)));
    if let Some(after) = &req.after {
        groups.retain(|g| g.metadata.name > *after);
    }
    let next_token = match req.max_results {
        Some(max) if groups.len() > max => {
            groups.truncate(max);
            groups
                .last()
                .map(|g| URL_SAFE_NO_PAD.encode(&g.metadata.name))
        }
        _ => None,
    };
    Ok(Response { groups, next_token })
}

/// `securityGroupInfo` and `nextToken`.
pub fn render(resp: &Response) -> String {
    let mut w = XmlWriter::new();
    w.set("securityGroupInfo", &resp.groups, render_group);
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
    use crate::model::network::default_security_group;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn both_lists_take_ids_and_names() {
        let req = parse_str("GroupName.1=default&GroupId.1=sg-0abc&GroupId.2=web&GroupName.2=web")
            .unwrap();
        assert_eq!(
            req.groups,
            vec![
                GroupRef::Id("sg-0abc".into()),
                GroupRef::Name("web".into()),
                GroupRef::Name("default".into())
            ]
        );
        assert_eq!(
            parse_str("GroupId.1=sg-!!").unwrap_err().code,
            "InvalidGroupId.Malformed"
        );
    }

    #[test]
    fn paging_parameters() {
        assert_eq!(
            parse_str("GroupId.1=default&MaxResults=5")
                .unwrap_err()
                .code,
            "InvalidParameterCombination"
        );
        assert_eq!(
            parse_str("MaxResults=4").unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            parse_str("NextToken=Zm9v").unwrap_err().code,
            "InvalidNextToken"
        );
        let token = URL_SAFE_NO_PAD.encode("sg-0abc");
        assert_eq!(
            parse_str(&format!("NextToken={token}"))
                .unwrap()
                .after
                .as_deref(),
            Some("sg-0abc")
        );
    }

    #[test]
    fn permission_filters_read_the_right_direction() {
        let g = default_security_group("us-east-1", crate::model::now());
        let names = names_by_id(std::slice::from_ref(&g));
        assert_eq!(
            filter_values("egress.ip-permission.cidr", &g, &names),
            vec!["0.0.0.0/0"]
        );
        assert!(filter_values("ip-permission.cidr", &g, &names).is_empty());
        assert_eq!(
            filter_values("ip-permission.group-name", &g, &names),
            vec!["default"]
        );
        assert_eq!(
            filter_values("ip-permission.protocol", &g, &names),
            vec!["-1"]
        );
        assert!(filter_values("ip-permission.from-port", &g, &names).is_empty());
        assert_eq!(filter_values("group-name", &g, &names), vec!["default"]);
    }
}
