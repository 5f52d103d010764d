//! `ModifySecurityGroupRules`: replaces rules of a group, named by id, keeping each rule's id and tags (Terraform's update of a standalone rule).

use crate::api::error::ApiError;
use crate::api::groups::{resolve_group, GroupRef};
use crate::api::kind::{self, Kind};
use crate::api::kinds::SecurityGroupRuleKind;
use crate::api::query::QueryParams;
use crate::api::render;
use crate::api::rules::{duplicate_rule, parse_rule_request, resolve_peer, update_all_rules};
use crate::api::state::ApiState;
use crate::model::network::Rule;

/// A validated ModifySecurityGroupRules request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GroupId`.
    pub group: GroupRef,
    /// `SecurityGroupRule.N`: each rule id and what the rule becomes (a group peer still as written).
    pub updates: Vec<(String, Rule)>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    // EC2 names the missing group by its internal name, `groupId` (as real EC2 answered in
    // aws/aws-sdk-java-v2#5437).
    let group = params
        .get("GroupId")
        .ok_or_else(|| ApiError::missing_parameter("groupId"))?;
    let group = GroupRef::parse(group)?;
    let mut updates = Vec::new();
    for (i, update) in params.structs("SecurityGroupRule").iter().enumerate() {
        let path = format!("SecurityGroupRule.{}", i + 1);
        let id = update
            .get("SecurityGroupRuleId")
            .ok_or_else(|| ApiError::missing_parameter(&format!("{path}.SecurityGroupRuleId")))?;
        let id = SecurityGroupRuleKind::check_id(id)?;
        let rule = parse_rule_request(
            &update.sub("SecurityGroupRule"),
            &format!("{path}.SecurityGroupRule"),
        )?;
        updates.push((id, rule));
    }
    if updates.is_empty() {
        return Err(ApiError::missing_parameter("SecurityGroupRule"));
    }
    Ok(Request {
        group,
        updates,
        dry_run: kind::dry_run(params)?,
    })
}

/// Replaces every named rule in its direction; a rule id the group does not have, or a new
/// rule the group already has under another id, fails the whole call and changes nothing.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<(), ApiError> {
    let group = resolve_group(state, region, &req.group)?;
    let mut updates = req.updates;
    for (_, rule) in &mut updates {
        resolve_peer(state, region, rule)?;
    }
    kind::check_dry_run(req.dry_run)?;
    update_all_rules(state, region, &group, |rules| {
        for (id, new) in &updates {
            let found = rules.iter().enumerate().find_map(|(direction, list)| {
                let at = list.iter().position(|r| r.id.as_ref() == Some(id))?;
                Some((direction, at))
            });
            let Some((direction, at)) = found else {
                return Err(SecurityGroupRuleKind::IDS.not_found(&[id]));
            };
            let list = &mut rules[direction];
            if let Some(other) = list
                .iter()
                .enumerate()
                .find(|(i, r)| *i != at && r.same_as(new))
            {
                return Err(duplicate_rule(other.1));
            }
            let old = &mut list[at];
            *old = Rule {
                id: old.id.take(),
                tags: std::mem::take(&mut old.tags),
                ..new.clone()
            };
        }
        Ok(())
    })?;
    tracing::info!(group_id = %group.metadata.name, modified = updates.len(), "security group rules modified");
    Ok(())
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    handle(state, region, parse(params)?)?;
    Ok(render::render_return_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn parses_updates_and_refuses_what_ec2_refuses() {
        let req = parse_str(
            "GroupId=sg-0abc&SecurityGroupRule.1.SecurityGroupRuleId=sgr-0def\
             &SecurityGroupRule.1.SecurityGroupRule.IpProtocol=tcp\
             &SecurityGroupRule.1.SecurityGroupRule.FromPort=443&SecurityGroupRule.1.SecurityGroupRule.ToPort=443\
             &SecurityGroupRule.1.SecurityGroupRule.CidrIpv4=10.0.0.0%2F8\
             &SecurityGroupRule.1.SecurityGroupRule.Description=https",
        )
        .unwrap();
        assert_eq!(req.updates[0].0, "sgr-0def");
        assert_eq!(req.updates[0].1.from_port, Some(443));
        assert_eq!(req.updates[0].1.description.as_deref(), Some("https"));
        assert_eq!(
            parse_str("SecurityGroupRule.1.SecurityGroupRuleId=sgr-1")
                .unwrap_err()
                .message,
            "The request must contain the parameter groupId"
        );
        assert_eq!(
            parse_str("GroupId=sg-1").unwrap_err().message,
            "The request must contain the parameter SecurityGroupRule"
        );
        assert_eq!(
            parse_str("GroupId=sg-1&SecurityGroupRule.1.SecurityGroupRuleId=sgr-x")
                .unwrap_err()
                .code,
            "InvalidSecurityGroupRuleId.Malformed"
        );
        let two_peers = "GroupId=sg-1&SecurityGroupRule.1.SecurityGroupRuleId=sgr-1\
             &SecurityGroupRule.1.SecurityGroupRule.IpProtocol=-1\
             &SecurityGroupRule.1.SecurityGroupRule.CidrIpv4=10.0.0.0%2F8\
             &SecurityGroupRule.1.SecurityGroupRule.CidrIpv6=%3A%3A%2F0";
        assert_eq!(
            parse_str(two_peers).unwrap_err().code,
            "InvalidParameterValue"
        );
    }
}
