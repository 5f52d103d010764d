//! `AuthorizeSecurityGroupIngress` / `AuthorizeSecurityGroupEgress`: adds rules, in either request form, refusing duplicates.

use crate::api::error::ApiError;
use crate::api::groups::group_param;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::model::network::{explode, generate_rule_id, Rule};
use crate::model::IpPermission;

use crate::api::groups::{resolve_group, GroupRef};
use crate::api::kind;
use crate::api::rules::{
    duplicate_rule, parse_permissions, render_rules, resolve_peers, update_rules,
};
use crate::api::tags::{self, Tags};

/// A validated Authorize request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GroupId`, else `GroupName`; either may be an id or a name (`--group-id default`).
    pub group: GroupRef,
    /// The permissions to add (group peers still as written).
    pub permissions: Vec<IpPermission>,
    /// The tags of `TagSpecification.N` for `security-group-rule`: every new rule gets them.
    pub tags: Tags,
    /// Outbound (`…Egress`) rather than inbound.
    pub egress: bool,
    /// `DryRun`.
    pub dry_run: bool,
}

/// What was added.
#[derive(Debug, Clone)]
pub struct Response {
    /// The group's region.
    pub region: String,
    /// The group's id.
    pub group_id: String,
    /// Outbound rather than inbound.
    pub egress: bool,
    /// The rules added.
    pub rules: Vec<Rule>,
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams, egress: bool) -> Result<Request, ApiError> {
    let group = group_param(params)?;
    let permissions = parse_permissions(params)?;
    if permissions.is_empty() {
        return Err(ApiError::missing_parameter("IpPermissions"));
    }
    let tags = tags::tag_specifications(params, &["security-group-rule"])?;
    Ok(Request {
        group,
        permissions,
        tags,
        egress,
        dry_run: kind::dry_run(params)?,
    })
}

/// Resolves the group and the peers, then adds the rules, each with a fresh id and the
/// request's rule tags; any rule the group already has fails the whole call with
/// `InvalidPermission.Duplicate` and adds nothing.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Response, ApiError> {
    let group = resolve_group(state, region, &req.group)?;
    let mut permissions = req.permissions;
    resolve_peers(state, region, &mut permissions)?;
    let mut new_rules: Vec<Rule> = Vec::new();
    for mut rule in explode(&permissions) {
        if !new_rules.iter().any(|r| r.same_as(&rule)) {
            rule.id = Some(generate_rule_id());
            rule.tags = req.tags.clone();
            new_rules.push(rule);
        }
    }
    kind::check_dry_run(req.dry_run)?;
    update_rules(state, region, &group, req.egress, |rules| {
        if let Some(dup) = new_rules
            .iter()
            .find(|new| rules.iter().any(|old| old.same_as(new)))
        {
            return Err(duplicate_rule(dup));
        }
        rules.extend(new_rules.iter().cloned());
        Ok(())
    })?;
    tracing::info!(group_id = %group.metadata.name, egress = req.egress, added = new_rules.len(), "security group rules authorized");
    Ok(Response {
        region: region.to_string(),
        group_id: group.metadata.name,
        egress: req.egress,
        rules: new_rules,
    })
}

/// `return` and `securityGroupRuleSet`.
pub fn render(resp: &Response) -> String {
    let mut w = XmlWriter::new();
    w.field("return", true);
    render_rules(
        &mut w,
        &resp.region,
        &resp.group_id,
        resp.egress,
        &resp.rules,
    );
    w.finish()
}

/// The dispatch entry of `AuthorizeSecurityGroupIngress`.
pub fn call_ingress(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params, false)?)?))
}

/// The dispatch entry of `AuthorizeSecurityGroupEgress`.
pub fn call_egress(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params, true)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_both_forms_and_errors() {
        let q = QueryParams::from_query(
            "GroupId=default&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=8080&IpPermissions.1.ToPort=8080",
        );
        let req = parse(&q, false).unwrap();
        assert_eq!(req.group, GroupRef::Name("default".into()));
        assert_eq!(req.permissions.len(), 1);
        let q = QueryParams::from_query("GroupName=web&IpProtocol=udp&FromPort=53&ToPort=53");
        assert_eq!(parse(&q, true).unwrap().permissions[0].ip_protocol, "udp");
        let e = parse(&QueryParams::from_query("GroupId=default"), false).unwrap_err();
        assert_eq!(
            e.message,
            "The request must contain the parameter IpPermissions"
        );
        let e = parse(&QueryParams::from_query("IpProtocol=tcp"), false).unwrap_err();
        assert_eq!(e.message, "The request must contain the parameter GroupId");
    }
}
