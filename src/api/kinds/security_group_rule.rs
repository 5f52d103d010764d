//! The security group rule kind: each single-peer rule of the region's groups with its `sgr-` id and tags, kept in its group's record (a view, never a record of its own).

use crate::api::error::ApiError;
use crate::api::groups::{ensure_default_group, region_groups};
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::rules::{render_rule, update_group};
use crate::api::state::ApiState;
use crate::api::tags::{apply_tag_change, Tags};
use crate::api::xml::XmlWriter;
use crate::model::network::{is_rule_id, Rule, RULE_ID_PREFIX};
use crate::model::{region, SecurityGroup};

/// Security group rules.
pub struct SecurityGroupRuleKind;

/// One rule as DescribeSecurityGroupRules shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRule {
    /// The group's region (the rule's ARN names it).
    pub region: String,
    /// The group's id.
    pub group_id: String,
    /// Outbound rather than inbound.
    pub egress: bool,
    /// The rule, with its id (always set here) and tags.
    pub rule: Rule,
}

impl GroupRule {
    /// The rule's `sgr-…` id.
    pub fn id(&self) -> &str {
        self.rule.id.as_deref().unwrap_or_default()
    }
}

impl SecurityGroupRuleKind {
    /// Checks the shape of a rule id (`InvalidSecurityGroupRuleId.Malformed`).
    pub fn check_id(id: &str) -> Result<String, ApiError> {
        if is_rule_id(id) {
            Ok(id.to_string())
        } else {
            Err(Self::IDS.malformed(id))
        }
    }
}

/// Every rule of one group, inbound then outbound.
pub fn group_rules(group: &SecurityGroup) -> Vec<GroupRule> {
    let id = &group.metadata.name;
    [false, true]
        .into_iter()
        .flat_map(|egress| {
            group
                .spec
                .rules(id, egress)
                .into_iter()
                .map(move |rule| GroupRule {
                    region: group.metadata.namespace.clone(),
                    group_id: id.clone(),
                    egress,
                    rule,
                })
        })
        .collect()
}

/// Every rule of the region's groups.
pub fn region_rules(state: &ApiState, region: &str) -> Result<Vec<GroupRule>, ApiError> {
    Ok(region_groups(state, region)?
        .iter()
        .flat_map(group_rules)
        .collect())
}

/// The rule `id` of the region; `None` when no group has it.
pub fn find_rule(state: &ApiState, region: &str, id: &str) -> Result<Option<GroupRule>, ApiError> {
    Ok(region_rules(state, region)?
        .into_iter()
        .find(|r| r.id() == id))
}

impl Kind for SecurityGroupRuleKind {
    type Item = GroupRule;
    type Ref = String;
    type Context = ();
    ordered_by_id!(GroupRule, is_rule_id);

    const IDS: IdRules = IdRules {
        noun: "security group rule",
        prefix: RULE_ID_PREFIX,
        malformed: "InvalidSecurityGroupRuleId.Malformed",
        not_found: "InvalidSecurityGroupRuleId.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some("security-group-rule");
    /// EC2's list (`group-id`, `security-group-rule-id`, `tag:<key>`) and `tag-key`.
    const FILTERS: &'static [&'static str] = &["group-id", "security-group-rule-id", "tag-key"];
    /// 5 to 1000, as botocore's model says; rule ids and a page size go together.
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: None,
        wording: SizeWording::Between,
    });
    const SET: &'static str = "securityGroupRuleSet";

    fn id(item: &GroupRule) -> &str {
        item.id()
    }

    /// `SecurityGroupRuleId.N`.
    fn refs(params: &QueryParams) -> Result<Vec<String>, ApiError> {
        params
            .list("SecurityGroupRuleId")
            .into_iter()
            .map(Self::check_id)
            .collect()
    }

    fn find(state: &ApiState, region: &str, id: &String) -> Result<Option<GroupRule>, ApiError> {
        find_rule(state, region, id)
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<GroupRule>, ApiError> {
        region_rules(state, region)
    }

    fn context(_state: &ApiState, _region: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn tags(item: &GroupRule) -> Option<&Tags> {
        Some(&item.rule.tags)
    }

    fn values(name: &str, item: &GroupRule, _context: &()) -> Vec<String> {
        match name {
            "group-id" => vec![item.group_id.clone()],
            "security-group-rule-id" => vec![item.id().to_string()],
            _ => Vec::new(),
        }
    }

    fn render(w: &mut XmlWriter, item: &GroupRule) {
        render_rule(w, &item.region, &item.group_id, item.egress, &item.rule);
    }
}

/// The tags of the rule `id` of `region`; `None` when there is none.
pub fn read_rule_tags(state: &ApiState, region: &str, id: &str) -> Result<Option<Tags>, ApiError> {
    Ok(find_rule(state, region, id)?.map(|r| r.rule.tags))
}

/// What a tag write on a missing rule answers.
pub fn rule_tag_not_found(_state: &ApiState, _region: &str, id: &str) -> ApiError {
    SecurityGroupRuleKind::IDS.not_found(&[id])
}

/// Changes the tags of the rule `id` in its group's record (the region's `default` group is
/// stored first); a rule revoked meanwhile is `NotFound`, as is one never there.
pub fn change_rule_tags(
    state: &ApiState,
    region: &str,
    id: &str,
    change: &dyn Fn(&mut Tags) -> bool,
) -> Result<(), ApiError> {
    let rule =
        find_rule(state, region, id)?.ok_or_else(|| rule_tag_not_found(state, region, id))?;
    if rule.group_id == region::defaults(region).group_id {
        ensure_default_group(state, region)?;
    }
    let group_id = rule.group_id.as_str();
    update_group(state, region, group_id, false, |spec| {
        let mut rules = spec.rules(group_id, rule.egress);
        let Some(target) = rules.iter_mut().find(|r| r.id.as_deref() == Some(id)) else {
            return Err(rule_tag_not_found(state, region, id));
        };
        if !apply_tag_change(&mut target.tags, change, id)? {
            return Ok(false);
        }
        spec.set_rules(rule.egress, &rules);
        Ok(true)
    })
}

/// Every tagged rule of the region, `(id, tags)`.
pub fn region_rule_tags(state: &ApiState, region: &str) -> Result<Vec<(String, Tags)>, ApiError> {
    Ok(region_rules(state, region)?
        .into_iter()
        .filter(|r| !r.rule.tags.is_empty())
        .map(|r| (r.id().to_string(), r.rule.tags))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::Describe;
    use crate::model::network::default_security_group;

    #[test]
    fn ids_and_paging_parameters() {
        let parse = |q: &str| Describe::<SecurityGroupRuleKind>::parse(&QueryParams::from_query(q));
        let e = parse("SecurityGroupRuleId.1=sgr-xyz").err().unwrap();
        assert_eq!(e.code, "InvalidSecurityGroupRuleId.Malformed");
        assert_eq!(e.message, "Invalid id: \"sgr-xyz\" (expecting \"sgr-...\")");
        let req = parse("SecurityGroupRuleId.1=sgr-0abc&MaxResults=5")
            .ok()
            .unwrap();
        assert_eq!(req.refs, vec!["sgr-0abc"]);
        assert_eq!(
            parse("MaxResults=1001").err().unwrap().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            parse("Filter.1.Name=vpc-id&Filter.1.Value.1=x")
                .err()
                .unwrap()
                .code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn a_default_group_has_two_rules_with_derived_ids() {
        let g = default_security_group("us-east-1", crate::model::now());
        let rules = group_rules(&g);
        assert_eq!(rules.len(), 2);
        assert!(!rules[0].egress && rules[1].egress);
        assert!(rules.iter().all(|r| is_rule_id(r.id())));
        // Derived: the same on every read.
        assert_eq!(group_rules(&g), rules);
    }
}
