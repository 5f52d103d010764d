//! The security group kind: stored groups of the region (its `default` one derived until first written), by id or name.

use std::collections::BTreeMap;

use crate::api::error::ApiError;
use crate::api::groups::ensure_default_group;
use crate::api::groups::{find_group, names_by_id, region_groups, GroupRef};
use crate::api::kind::{ordered_by_id, IdRules, Kind, Paging};
use crate::api::paging::SizeWording;
use crate::api::query::QueryParams;
use crate::api::render::render_tags;
use crate::api::rules::render_permissions;
use crate::api::state::ApiState;
use crate::api::tags::{Tagged, Tags};
use crate::api::xml::XmlWriter;
use crate::model::network::{is_group_id, GROUP_ID_PREFIX};
use crate::model::{IpPermission, SecurityGroup, ACCOUNT_ID};
use crate::model::{SecurityGroupSpec, SecurityGroupStatus};
use crate::store::{SpecStore, Specs};

/// Security groups.
pub struct SecurityGroupKind;

impl Kind for SecurityGroupKind {
    type Item = SecurityGroup;
    type Ref = GroupRef;
    /// The name of every group of the region by id (the `*.group-name` filters).
    type Context = BTreeMap<String, String>;
    ordered_by_id!(SecurityGroup, is_group_id);

    const IDS: IdRules = IdRules {
        noun: "security group",
        prefix: GROUP_ID_PREFIX,
        malformed: "InvalidGroupId.Malformed",
        not_found: "InvalidGroup.NotFound",
    };
    const TAG_TYPE: Option<&'static str> = Some("security-group");
    /// EC2's list, ingress (`ip-permission.*`) and egress (`egress.ip-permission.*`) alike.
    const FILTERS: &'static [&'static str] = &[
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
    const PAGING: Option<Paging> = Some(Paging {
        ids_conflict: Some("The parameter groupIds cannot be used with the parameter maxResults"),
        wording: SizeWording::Between,
    });
    const SET: &'static str = "securityGroupInfo";

    fn id(item: &SecurityGroup) -> &str {
        &item.metadata.name
    }

    /// `GroupId.N` then `GroupName.N`: either list takes ids and names.
    fn refs(params: &QueryParams) -> Result<Vec<GroupRef>, ApiError> {
        params
            .list("GroupId")
            .into_iter()
            .chain(params.list("GroupName"))
            .map(GroupRef::parse)
            .collect()
    }

    fn find(
        state: &ApiState,
        region: &str,
        reference: &GroupRef,
    ) -> Result<Option<SecurityGroup>, ApiError> {
        find_group(state, region, reference)
    }

    fn list(state: &ApiState, region: &str) -> Result<Vec<SecurityGroup>, ApiError> {
        region_groups(state, region)
    }

    /// The first missing group, ids plainly and names with their VPC, as EC2 words them.
    fn not_found(region: &str, missing: &[GroupRef]) -> ApiError {
        missing[0].not_found(region)
    }

    fn context(state: &ApiState, region: &str) -> Result<BTreeMap<String, String>, ApiError> {
        Ok(names_by_id(&region_groups(state, region)?))
    }

    fn tags(item: &SecurityGroup) -> Option<&BTreeMap<String, String>> {
        Some(&item.spec.tags)
    }

    fn values(name: &str, group: &SecurityGroup, names: &BTreeMap<String, String>) -> Vec<String> {
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

    fn render(w: &mut XmlWriter, group: &SecurityGroup) {
        let spec = &group.spec;
        w.field("ownerId", ACCOUNT_ID);
        w.field("groupId", &group.metadata.name);
        w.field("groupName", &spec.group_name);
        w.field("groupDescription", &spec.description);
        w.field("vpcId", &spec.vpc_id);
        render_permissions(w, "ipPermissions", &spec.ingress);
        render_permissions(w, "ipPermissionsEgress", &spec.egress);
        render_tags(w, &spec.tags);
        w.field(
            "securityGroupArn",
            format!(
                "arn:aws:ec2:{}:{ACCOUNT_ID}:security-group/{}",
                group.metadata.namespace, group.metadata.name
            ),
        );
    }
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

impl Tagged for SecurityGroupKind {
    type Spec = SecurityGroupSpec;
    type Status = SecurityGroupStatus;

    fn collection(store: &SpecStore) -> Specs<'_, SecurityGroupSpec, SecurityGroupStatus> {
        store.security_groups()
    }

    fn spec_tags(spec: &SecurityGroupSpec) -> &Tags {
        &spec.tags
    }

    fn spec_tags_mut(spec: &mut SecurityGroupSpec) -> &mut Tags {
        &mut spec.tags
    }

    /// Reached only for `sg-…` ids, so a reference is always an id here.
    fn parse_tag_id(id: &str) -> Result<String, ApiError> {
        if is_group_id(id) {
            Ok(id.to_string())
        } else {
            Err(Self::IDS.malformed(id))
        }
    }

    /// The region's `default` group reads as it is derived until stored.
    fn read_tags(state: &ApiState, region: &str, id: &str) -> Result<Option<Tags>, ApiError> {
        Ok(find_group(state, region, &GroupRef::Id(id.to_string()))?.map(|g| g.spec.tags))
    }

    fn tag_not_found(_state: &ApiState, region: &str, id: &str) -> ApiError {
        GroupRef::Id(id.to_string()).not_found(region)
    }

    /// The region's `default` group is stored before its first tag.
    fn prepare_tag_write(state: &ApiState, region: &str) -> Result<(), ApiError> {
        ensure_default_group(state, region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kind::{filter_values, Describe};
    use crate::api::paging;
    use crate::model::network::default_security_group;

    fn parse_str(q: &str) -> Result<Describe<SecurityGroupKind>, ApiError> {
        Describe::parse(&QueryParams::from_query(q))
    }

    #[test]
    fn both_lists_take_ids_and_names() {
        let req = parse_str("GroupName.1=default&GroupId.1=sg-0abc&GroupId.2=web&GroupName.2=web")
            .ok()
            .unwrap();
        assert_eq!(
            req.refs,
            vec![
                GroupRef::Id("sg-0abc".into()),
                GroupRef::Name("web".into()),
                GroupRef::Name("default".into())
            ]
        );
        assert_eq!(
            parse_str("GroupId.1=sg-!!").err().unwrap().code,
            "InvalidGroupId.Malformed"
        );
    }

    #[test]
    fn paging_parameters() {
        assert_eq!(
            parse_str("GroupId.1=default&MaxResults=5")
                .err()
                .unwrap()
                .code,
            "InvalidParameterCombination"
        );
        assert_eq!(
            parse_str("MaxResults=4").err().unwrap().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            parse_str("NextToken=Zm9v").err().unwrap().code,
            "InvalidNextToken"
        );
        let token = paging::token("sg-0abc");
        assert_eq!(
            parse_str(&format!("NextToken={token}"))
                .ok()
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
        let values = |name: &str| filter_values::<SecurityGroupKind>(name, &g, &names);
        assert_eq!(values("egress.ip-permission.cidr"), vec!["0.0.0.0/0"]);
        assert!(values("ip-permission.cidr").is_empty());
        assert_eq!(values("ip-permission.group-name"), vec!["default"]);
        assert_eq!(values("ip-permission.protocol"), vec!["-1"]);
        assert!(values("ip-permission.from-port").is_empty());
        assert_eq!(values("group-name"), vec!["default"]);
    }
}
