//! `RevokeSecurityGroupIngress` / `RevokeSecurityGroupEgress`: removes rules given as permissions (either form) or rule ids.

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::model::network::explode;
use crate::model::IpPermission;

use crate::api::groups::group_param;
use crate::api::groups::{resolve_group, GroupRef};
use crate::api::kind::{self, Kind};
use crate::api::kinds::SecurityGroupRuleKind;
use crate::api::render;
use crate::api::rules::{parse_permissions, resolve_peers, rule_not_found, update_rules};

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

/// Removes every named rule; one the group does not have fails the whole call and removes nothing.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    let group = resolve_group(state, region, &req.group)?;
    let group_id = group.metadata.name.clone();
    let mut permissions = req.permissions;
    // Same completion as Authorize, so `--protocol tcp --port 8080` revokes what it authorized.
    resolve_peers(state, region, &mut permissions)?;
    let wanted = explode(&permissions);
    kind::check_dry_run(req.dry_run)?;
    update_rules(state, region, &group, req.egress, |rules| {
        for rule in &wanted {
            match rules.iter().position(|r| r.same_as(rule)) {
                Some(at) => {
                    rules.remove(at);
                }
                None => return Err(rule_not_found()),
            }
        }
        for id in &req.rule_ids {
            match rules.iter().position(|r| r.id.as_ref() == Some(id)) {
                Some(at) => {
                    rules.remove(at);
                }
                None => return Err(SecurityGroupRuleKind::IDS.not_found(&[id])),
            }
        }
        Ok(())
    })?;
    tracing::info!(group_id = %group_id, egress = req.egress, "security group rules revoked");
    Ok(())
}

/// The dispatch entry of `RevokeSecurityGroupIngress`.
pub fn call_ingress(
    state: &ApiState,
    region: &str,
    params: &QueryParams,
) -> Result<String, ApiError> {
    handle(state, region, parse(params, false)?)?;
    Ok(render::render_return_true())
}

/// The dispatch entry of `RevokeSecurityGroupEgress`.
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
