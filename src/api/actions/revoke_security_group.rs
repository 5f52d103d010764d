//! `RevokeSecurityGroupIngress` / `RevokeSecurityGroupEgress`: removes rules given as permissions (either form) or rule ids, and answers which rules went.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::network::{explode, Rule};
use crate::model::IpPermission;

use crate::api::groups::group_param;
use crate::api::groups::{resolve_group, GroupRef};
use crate::api::kind::{self, Kind};
use crate::api::kinds::SecurityGroupRuleKind;
use crate::api::rules::{
    parse_permissions, render_revoked_rules, resolve_peers, rule_not_found, update_rules,
};
use crate::api::xml::XmlWriter;

/// A validated Revoke request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GroupId`, else `GroupName`; either may be an id or a name.
    pub group: GroupRef,
    /// The permissions to remove (group peers still as written).
    pub permissions: Vec<IpPermission>,
    /// `SecurityGroupRuleId.N`.
    pub rule_ids: Vec<String>,
    /// Outbound (`…Egress`) rather than inbound.
    pub egress: bool,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams, egress: bool) -> Result<Request, ApiError> {
    let group = group_param(params)?;
    let permissions = parse_permissions(params)?;
    let rule_ids = params
        .list("SecurityGroupRuleId")
        .into_iter()
        .map(SecurityGroupRuleKind::check_id)
        .collect::<Result<Vec<_>, _>>()?;
    if permissions.is_empty() && rule_ids.is_empty() {
        return Err(ApiError::missing_parameter("IpPermissions"));
    }
    Ok(Request {
        group,
        permissions,
        rule_ids,
        egress,
        dry_run: kind::dry_run(params)?,
    })
}

/// What was removed.
#[derive(Debug, Clone)]
pub struct Response {
    /// The group's id.
    pub group_id: String,
    /// Outbound rather than inbound.
    pub egress: bool,
    /// The rules removed, with their ids.
    pub revoked: Vec<Rule>,
}

/// Removes every named rule; one the group does not have fails the whole call and removes nothing.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<Response, ApiError> {
    let group = resolve_group(state, region, &req.group)?;
    let group_id = group.metadata.name.clone();
    let mut permissions = req.permissions;
    // Same completion as Authorize, so `--protocol tcp --port 8080` revokes what it authorized.
    resolve_peers(state, region, &mut permissions)?;
    let wanted = explode(&permissions);
    kind::check_dry_run(req.dry_run)?;
    let mut revoked = Vec::new();
    update_rules(state, region, &group, req.egress, |rules| {
        // A compare-and-swap retry starts again from the group as it is then.
        revoked.clear();
        for rule in &wanted {
            let at = rules
                .iter()
                .position(|r| r.same_as(rule))
                .ok_or_else(rule_not_found)?;
            revoked.push(rules.remove(at));
        }
        for id in &req.rule_ids {
            let at = rules
                .iter()
                .position(|r| r.id.as_ref() == Some(id))
                .ok_or_else(|| SecurityGroupRuleKind::IDS.not_found(&[id]))?;
            revoked.push(rules.remove(at));
        }
        Ok(())
    })?;
    tracing::info!(group_id = %group_id, egress = req.egress, revoked = revoked.len(), "security group rules revoked");
    Ok(Response {
        group_id,
        egress: req.egress,
        revoked,
    })
}

/// `return` and `revokedSecurityGroupRuleSet`.
pub fn render(resp: &Response) -> String {
    let mut w = XmlWriter::new();
    w.field("return", true);
    render_revoked_rules(&mut w, &resp.group_id, resp.egress, &resp.revoked);
    w.finish()
}

/// The dispatch entry of `RevokeSecurityGroupIngress`.
pub fn call_ingress(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params, false)?)?))
}

/// The dispatch entry of `RevokeSecurityGroupEgress`.
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
    fn permissions_or_rule_ids() {
        let q = QueryParams::from_query("GroupId=default&SecurityGroupRuleId.1=sgr-1");
        let req = parse(&q, false).unwrap();
        assert_eq!(req.rule_ids, vec!["sgr-1"]);
        let q = QueryParams::from_query("GroupId=default&SecurityGroupRuleId.1=sgr-!");
        assert_eq!(
            parse(&q, false).unwrap_err().code,
            "InvalidSecurityGroupRuleId.Malformed"
        );
        assert!(req.permissions.is_empty());
        let e = parse(&QueryParams::from_query("GroupId=default"), true).unwrap_err();
        assert_eq!(e.code, "MissingParameter");
    }
}
