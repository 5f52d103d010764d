//! `UpdateSecurityGroupRuleDescriptionsIngress` / `…Egress`: sets (or, without one, removes) the descriptions of rules named by content or by rule id; ids and tags stay.

use crate::api::error::ApiError;
use crate::api::groups::{group_param, resolve_group, GroupRef};
use crate::api::kind::{self, Kind};
use crate::api::kinds::SecurityGroupRuleKind;
use crate::api::query::QueryParams;
use crate::api::render;
use crate::api::rules::{parse_permissions, resolve_peers, rule_not_found, update_rules};
use crate::api::state::ApiState;
use crate::model::network::explode;
use crate::model::IpPermission;

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GroupId`, else `GroupName`; either may be an id or a name.
    pub group: GroupRef,
    /// Rules by content, each peer with its new description (group peers still as written).
    pub permissions: Vec<IpPermission>,
    /// `SecurityGroupRuleDescription.N`: rule ids and their new descriptions.
    pub by_id: Vec<(String, Option<String>)>,
    /// Outbound (`…Egress`) rather than inbound.
    pub egress: bool,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams, egress: bool) -> Result<Request, ApiError> {
    let group = group_param(params)?;
    let permissions = parse_permissions(params)?;
    let mut by_id = Vec::new();
    for (i, d) in params
        .structs("SecurityGroupRuleDescription")
        .iter()
        .enumerate()
    {
        let id = d.get("SecurityGroupRuleId").ok_or_else(|| {
            ApiError::missing_parameter(&format!(
                "SecurityGroupRuleDescription.{}.SecurityGroupRuleId",
                i + 1
            ))
        })?;
        by_id.push((
            SecurityGroupRuleKind::check_id(id)?,
            d.get("Description").map(str::to_string),
        ));
    }
    if permissions.is_empty() && by_id.is_empty() {
        return Err(ApiError::missing_parameter("IpPermissions"));
    }
    Ok(Request {
        group,
        permissions,
        by_id,
        egress,
        dry_run: kind::dry_run(params)?,
    })
}

/// Sets every named rule's description; a rule the group does not have fails the whole call
/// and changes nothing.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    let group = resolve_group(state, region, &req.group)?;
    let mut permissions = req.permissions;
    resolve_peers(state, region, &mut permissions)?;
    let wanted = explode(&permissions);
    kind::check_dry_run(req.dry_run)?;
    update_rules(state, region, &group, req.egress, |rules| {
        for new in &wanted {
            let rule = rules
                .iter_mut()
                .find(|r| r.same_as(new))
                .ok_or_else(rule_not_found)?;
            rule.description.clone_from(&new.description);
        }
        for (id, description) in &req.by_id {
            let rule = rules
                .iter_mut()
                .find(|r| r.id.as_ref() == Some(id))
                .ok_or_else(|| SecurityGroupRuleKind::IDS.not_found(&[id]))?;
            rule.description.clone_from(description);
        }
        Ok(())
    })?;
    tracing::info!(group_id = %group.metadata.name, egress = req.egress, "security group rule descriptions updated");
    Ok(())
}

/// The dispatch entry of `UpdateSecurityGroupRuleDescriptionsIngress`.
pub fn call_ingress(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    handle(state, region, parse(params, false)?)?;
    Ok(render::render_return_true())
}

/// The dispatch entry of `UpdateSecurityGroupRuleDescriptionsEgress`.
pub fn call_egress(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    handle(state, region, parse(params, true)?)?;
    Ok(render::render_return_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_or_rule_ids() {
        let q = QueryParams::from_query(
            "GroupId=sg-1&SecurityGroupRuleDescription.1.SecurityGroupRuleId=sgr-1\
             &SecurityGroupRuleDescription.1.Description=web",
        );
        let req = parse(&q, false).unwrap();
        assert_eq!(
            req.by_id,
            vec![("sgr-1".to_string(), Some("web".to_string()))]
        );
        let q =
            QueryParams::from_query("GroupId=sg-1&SecurityGroupRuleDescription.1.Description=x");
        assert_eq!(parse(&q, true).unwrap_err().code, "MissingParameter");
        let q = QueryParams::from_query("GroupId=sg-1");
        assert_eq!(parse(&q, true).unwrap_err().code, "MissingParameter");
    }
}
