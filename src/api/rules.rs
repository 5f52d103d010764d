//! Security group rules: parsing Authorize/Revoke permissions in both request forms, resolving peers, the compare-and-swap rule update, and their XML.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::ApiError;
use super::groups::{resolve_group, GroupRef};
use super::query::QueryParams;
use super::render::render_tags;
use super::state::ApiState;
use super::xml::XmlWriter;
use crate::model::network::{Peer, Rule};
use crate::model::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, SecurityGroup, SecurityGroupSpec,
    UserIdGroupPair, ACCOUNT_ID,
};
use crate::store::StoreError;

/// Normalises a protocol the way EC2 stores it: names lower-cased, the numbers of TCP, UDP,
/// ICMP and ICMPv6 turned into their names, `all` into `-1`, other numbers 0–255 kept.
pub fn normalize_protocol(raw: &str) -> Result<String, ApiError> {
    let lower = raw.trim().to_ascii_lowercase();
    let name = match lower.as_str() {
        "tcp" | "6" => "tcp",
        "udp" | "17" => "udp",
        "icmp" | "1" => "icmp",
        "icmpv6" | "58" => "icmpv6",
        "-1" | "all" => "-1",
        other => match other.parse::<u8>() {
            Ok(n) => return Ok(n.to_string()),
            Err(_) => {
                return Err(ApiError::invalid_value(format!(
                    "Invalid value '{raw}' for IP protocol. Unknown protocol."
                )))
            }
        },
    };
    Ok(name.to_string())
}

/// The ports of a permission as EC2 keeps them: TCP/UDP need both (`-1`/`-1` meaning every
/// port), ICMP takes a type and code defaulting to `-1`, other protocols have none.
fn normalize_ports(
    protocol: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<(Option<i32>, Option<i32>), ApiError> {
    match protocol {
        "tcp" | "udp" => {
            let (Some(from), Some(to)) = (from, to) else {
                return Err(ApiError::invalid_value(
                    "Invalid value for portRange. Must specify both from and to ports with TCP/UDP.",
                ));
            };
            if from == -1 && to == -1 {
                return Ok((Some(0), Some(65535)));
            }
            if !(0..=65535).contains(&from) || !(0..=65535).contains(&to) || from > to {
                return Err(ApiError::invalid_value("Invalid TCP/UDP port range."));
            }
            Ok((Some(from as i32), Some(to as i32)))
        }
        "icmp" | "icmpv6" => {
            let check = |v: Option<i64>, what: &str| -> Result<i32, ApiError> {
                let v = v.unwrap_or(-1);
                if (-1..=255).contains(&v) {
                    Ok(v as i32)
                } else {
                    Err(ApiError::invalid_value(format!(
                        "Invalid value '{v}' for ICMP {what}. Expected a value from -1 to 255."
                    )))
                }
            };
            Ok((Some(check(from, "type")?), Some(check(to, "code")?)))
        }
        _ => Ok((None, None)),
    }
}

/// Validates an IPv4 CIDR block (`a.b.c.d/n`).
pub fn check_cidr(cidr: &str) -> Result<(), ApiError> {
    let ok = cidr.split_once('/').is_some_and(|(addr, len)| {
        addr.parse::<Ipv4Addr>().is_ok()
            && len.bytes().all(|b| b.is_ascii_digit())
            && len.parse::<u8>().is_ok_and(|n| n <= 32)
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_value(format!(
            "Value ({cidr}) for parameter cidrIp is invalid. This is not a valid CIDR block."
        )))
    }
}

fn check_cidr_v6(cidr: &str) -> Result<(), ApiError> {
    let ok = cidr.split_once('/').is_some_and(|(addr, len)| {
        addr.parse::<Ipv6Addr>().is_ok()
            && len.bytes().all(|b| b.is_ascii_digit())
            && len.parse::<u8>().is_ok_and(|n| n <= 128)
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_value(format!(
            "Value ({cidr}) for parameter cidrIpv6 is invalid. This is not a valid IPv6 CIDR block."
        )))
    }
}

fn description(params: &QueryParams) -> Option<String> {
    params.get("Description").map(str::to_string)
}

/// A group peer as written in the request (`GroupId`, else `GroupName`); resolved to an id by
/// [`resolve_peers`].
fn peer_group(params: &QueryParams, path: &str) -> Result<UserIdGroupPair, ApiError> {
    let reference = params
        .get("GroupId")
        .or_else(|| params.get("GroupName"))
        .ok_or_else(|| ApiError::missing_parameter(&format!("{path}.GroupId")))?;
    GroupRef::parse(reference)?;
    Ok(UserIdGroupPair {
        group_id: reference.to_string(),
        user_id: params.get("UserId").map(str::to_string),
        description: description(params),
    })
}

/// One `IpPermissions.N` structure.
fn permission(params: &QueryParams, path: &str) -> Result<IpPermission, ApiError> {
    let raw = params
        .get("IpProtocol")
        .ok_or_else(|| ApiError::missing_parameter(&format!("{path}.IpProtocol")))?;
    let protocol = normalize_protocol(raw)?;
    let (from, to) = normalize_ports(&protocol, params.int("FromPort")?, params.int("ToPort")?)?;
    let mut p = IpPermission::new(&protocol, from, to);
    for r in params.structs("IpRanges") {
        let cidr = r
            .require("CidrIp")
            .map_err(|_| ApiError::missing_parameter(&format!("{path}.IpRanges.CidrIp")))?;
        check_cidr(cidr)?;
        p.ip_ranges.push(IpRange {
            cidr_ip: cidr.to_string(),
            description: description(&r),
        });
    }
    for r in params.structs("Ipv6Ranges") {
        let cidr = r
            .require("CidrIpv6")
            .map_err(|_| ApiError::missing_parameter(&format!("{path}.Ipv6Ranges.CidrIpv6")))?;
        check_cidr_v6(cidr)?;
        p.ipv6_ranges.push(Ipv6Range {
            cidr_ipv6: cidr.to_string(),
            description: description(&r),
        });
    }
    // boto3 and the CLI send group peers as `Groups.M` (the member's XML name); other
    // clients use the member name `UserIdGroupPairs.M`.
    for list in ["Groups", "UserIdGroupPairs"] {
        for g in params.structs(list) {
            p.user_id_group_pairs
                .push(peer_group(&g, &format!("{path}.{list}"))?);
        }
    }
    for r in params.structs("PrefixListIds") {
        let id = r.require("PrefixListId").map_err(|_| {
            ApiError::missing_parameter(&format!("{path}.PrefixListIds.PrefixListId"))
        })?;
        p.prefix_list_ids.push(PrefixListId {
            prefix_list_id: id.to_string(),
            description: description(&r),
        });
    }
    Ok(p)
}

/// One rule of ModifySecurityGroupRules (`SecurityGroupRule.N.SecurityGroupRule`, EC2's
/// `SecurityGroupRuleRequest`): a protocol, ports and exactly one peer, checked as Authorize
/// checks them; a group peer is still as written (resolve it with [`resolve_peer`]).
pub fn parse_rule_request(params: &QueryParams, path: &str) -> Result<Rule, ApiError> {
    let raw = params
        .get("IpProtocol")
        .ok_or_else(|| ApiError::missing_parameter(&format!("{path}.IpProtocol")))?;
    let protocol = normalize_protocol(raw)?;
    let (from_port, to_port) =
        normalize_ports(&protocol, params.int("FromPort")?, params.int("ToPort")?)?;
    let mut peers = Vec::new();
    if let Some(cidr) = params.get("CidrIpv4") {
        check_cidr(cidr)?;
        peers.push(Peer::Cidr(cidr.to_string()));
    }
    if let Some(cidr) = params.get("CidrIpv6") {
        check_cidr_v6(cidr)?;
        peers.push(Peer::Ipv6(cidr.to_string()));
    }
    if let Some(id) = params.get("PrefixListId") {
        peers.push(Peer::PrefixList(id.to_string()));
    }
    if let Some(group) = params.get("ReferencedGroupId") {
        GroupRef::parse(group)?;
        peers.push(Peer::Group(group.to_string()));
    }
    let Ok([peer]) = <[Peer; 1]>::try_from(peers) else {
        return Err(ApiError::invalid_value(format!(
            "{path} must specify exactly one of CidrIpv4, CidrIpv6, PrefixListId and ReferencedGroupId."
        )));
    };
    Ok(Rule {
        ip_protocol: protocol,
        from_port,
        to_port,
        peer,
        user_id: None,
        description: description(params),
        id: None,
        tags: Default::default(),
    })
}

/// Resolves a single rule's group peer (an id or a name) to an id in the region, with our
/// account, as [`resolve_peers`] does for permissions.
pub fn resolve_peer(state: &ApiState, region: &str, rule: &mut Rule) -> Result<(), ApiError> {
    if let Peer::Group(reference) = &rule.peer {
        let reference = GroupRef::parse(reference)?;
        rule.peer = Peer::Group(resolve_group(state, region, &reference)?.metadata.name);
        rule.user_id.get_or_insert_with(|| ACCOUNT_ID.to_string());
    }
    Ok(())
}

/// The permissions of an Authorize/Revoke request, in either form clients send:
/// `IpPermissions.N.…` (SDKs, and the CLI's `--protocol/--port/--cidr/--source-group`), or the
/// older top-level `IpProtocol`/`FromPort`/`ToPort`/`CidrIp`/`SourceSecurityGroupName`. A
/// top-level source group without a protocol allows all traffic from it, as in EC2-Classic.
/// Empty when the request has neither.
pub fn parse_permissions(params: &QueryParams) -> Result<Vec<IpPermission>, ApiError> {
    let mut out = Vec::new();
    for (i, p) in params.structs("IpPermissions").iter().enumerate() {
        out.push(permission(p, &format!("IpPermissions.{}", i + 1))?);
    }
    let source_group = params.get("SourceSecurityGroupName");
    if params.get("IpProtocol").is_some() || source_group.is_some() {
        let protocol = match params.get("IpProtocol") {
            Some(raw) => normalize_protocol(raw)?,
            None => "-1".to_string(),
        };
        let (from, to) =
            normalize_ports(&protocol, params.int("FromPort")?, params.int("ToPort")?)?;
        let mut p = IpPermission::new(&protocol, from, to);
        if let Some(cidr) = params.get("CidrIp") {
            check_cidr(cidr)?;
            p.ip_ranges.push(IpRange {
                cidr_ip: cidr.to_string(),
                description: None,
            });
        }
        if let Some(name) = source_group {
            GroupRef::parse(name)?;
            p.user_id_group_pairs.push(UserIdGroupPair {
                group_id: name.to_string(),
                user_id: params.get("SourceSecurityGroupOwnerId").map(str::to_string),
                description: None,
            });
        }
        out.push(p);
    }
    Ok(out)
}

/// Resolves group peers (ids or names) to ids in the region and completes what a request left
/// out: a permission naming no peer at all allows `0.0.0.0/0` (what `--protocol tcp --port 8080`
/// without `--cidr` sends, and what users mean by it), a group peer's account is ours.
pub fn resolve_peers(
    state: &ApiState,
    region: &str,
    permissions: &mut [IpPermission],
) -> Result<(), ApiError> {
    for p in permissions.iter_mut() {
        if p.has_no_peer() {
            p.ip_ranges.push(IpRange {
                cidr_ip: "0.0.0.0/0".to_string(),
                description: None,
            });
        }
        for pair in &mut p.user_id_group_pairs {
            let reference = GroupRef::parse(&pair.group_id)?;
            pair.group_id = resolve_group(state, region, &reference)?.metadata.name;
            pair.user_id.get_or_insert_with(|| ACCOUNT_ID.to_string());
        }
    }
    Ok(())
}

/// `InvalidPermission.Duplicate` for a rule the group already has.
pub fn duplicate_rule(rule: &Rule) -> ApiError {
    ApiError::client(
        "InvalidPermission.Duplicate",
        format!("the specified rule \"{}\" already exists", rule.describe()),
    )
}

/// `InvalidPermission.NotFound` for a rule the group does not have.
pub fn rule_not_found() -> ApiError {
    ApiError::client(
        "InvalidPermission.NotFound",
        "The specified rule does not exist in this security group.",
    )
}

/// A failure inside a rule update: the store's, or the change's own (duplicate, not found).
enum UpdateError {
    Store(StoreError),
    Api(ApiError),
}

impl From<StoreError> for UpdateError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Changes a stored group's spec with the store's compare-and-swap (`change` returns whether
/// it changed anything); a `change` error leaves the group untouched, and a group deleted
/// since it was resolved is `InvalidGroup.NotFound`. `bump` says whether the change moves the
/// generation (rules do; tags ask nothing of anyone and do not).
pub fn update_group(
    state: &ApiState,
    region: &str,
    group_id: &str,
    bump: bool,
    mut change: impl FnMut(&mut SecurityGroupSpec) -> Result<bool, ApiError>,
) -> Result<(), ApiError> {
    let groups = state.store.security_groups();
    let apply = |g: &mut SecurityGroup| {
        if g.metadata.namespace != region {
            return Err(UpdateError::Api(
                GroupRef::Id(group_id.to_string()).not_found(region),
            ));
        }
        change(&mut g.spec).map_err(UpdateError::Api)
    };
    let result = if bump {
        groups.update_spec(group_id, apply)
    } else {
        groups.update_spec_same_generation(group_id, apply)
    };
    result.map(drop).map_err(|e| match e {
        UpdateError::Api(e) => e,
        UpdateError::Store(StoreError::NotFound { .. }) => {
            GroupRef::Id(group_id.to_string()).not_found(region)
        }
        UpdateError::Store(e) => e.into(),
    })
}

/// Applies `change` to the group's rules, `[inbound, outbound]`, each with its id and tags,
/// with the store's compare-and-swap, so concurrent Authorize/Revoke/Modify calls never lose
/// each other's rules; a `change` error leaves the group untouched. Instances are never
/// touched: their ports were fixed at launch.
pub fn update_all_rules(
    state: &ApiState,
    region: &str,
    group: &SecurityGroup,
    mut change: impl FnMut(&mut [Vec<Rule>; 2]) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    // The region's `default` group is derived until its first change stores it.
    super::groups::ensure_default_group(state, region)?;
    let id = group.metadata.name.as_str();
    update_group(state, region, id, true, |spec| {
        let mut rules = [spec.rules(id, false), spec.rules(id, true)];
        change(&mut rules)?;
        let [ingress, egress] = rules;
        spec.set_rules(false, &ingress);
        spec.set_rules(true, &egress);
        Ok(true)
    })
}

/// [`update_all_rules`] for the rules of one direction.
pub fn update_rules(
    state: &ApiState,
    region: &str,
    group: &SecurityGroup,
    egress: bool,
    mut change: impl FnMut(&mut Vec<Rule>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    update_all_rules(state, region, group, |rules| {
        change(&mut rules[usize::from(egress)])
    })
}

/// `<ipPermissions>` / `<ipPermissionsEgress>`: EC2's `IpPermissionList`.
pub fn render_permissions(w: &mut XmlWriter, element: &str, permissions: &[IpPermission]) {
    w.set(element, permissions, |w, p| {
        w.field("ipProtocol", &p.ip_protocol);
        w.opt_field("fromPort", p.from_port);
        w.opt_field("toPort", p.to_port);
        w.set("groups", &p.user_id_group_pairs, |w, g| {
            w.opt_field("description", g.description.as_deref());
            w.opt_field("userId", g.user_id.as_deref());
            w.field("groupId", &g.group_id);
        });
        w.set("ipRanges", &p.ip_ranges, |w, r| {
            w.field("cidrIp", &r.cidr_ip);
            w.opt_field("description", r.description.as_deref());
        });
        w.set("ipv6Ranges", &p.ipv6_ranges, |w, r| {
            w.field("cidrIpv6", &r.cidr_ipv6);
            w.opt_field("description", r.description.as_deref());
        });
        w.set("prefixListIds", &p.prefix_list_ids, |w, r| {
            w.field("prefixListId", &r.prefix_list_id);
            w.opt_field("description", r.description.as_deref());
        });
    });
}

/// `<securityGroupRuleSet>`: rules with their ids (those an Authorize call added).
pub fn render_rules(w: &mut XmlWriter, region: &str, group_id: &str, egress: bool, rules: &[Rule]) {
    w.set("securityGroupRuleSet", rules, |w, r| {
        render_rule(w, region, group_id, egress, r);
    });
}

/// One `SecurityGroupRule`: a single-peer rule with its id, group and tags.
pub fn render_rule(w: &mut XmlWriter, region: &str, group_id: &str, egress: bool, r: &Rule) {
    rule_fields(w, group_id, Some(ACCOUNT_ID), egress, r);
    render_tags(w, &r.tags);
    w.field(
        "securityGroupRuleArn",
        format!(
            "arn:aws:ec2:{region}:{ACCOUNT_ID}:security-group-rule/{}",
            r.id.as_deref().unwrap_or_default()
        ),
    );
}

/// `<revokedSecurityGroupRuleSet>`: the rules a Revoke call removed (EC2's
/// `RevokedSecurityGroupRule`: no owner or tags, a group peer as a bare `referencedGroupId`).
pub fn render_revoked_rules(w: &mut XmlWriter, group_id: &str, egress: bool, rules: &[Rule]) {
    w.set("revokedSecurityGroupRuleSet", rules, |w, r| {
        rule_fields(w, group_id, None, egress, r);
    });
}

/// The fields a rule and a revoked rule share; `owner` is the group's owner, shown (with the
/// group peer's account) in a `SecurityGroupRule` only.
fn rule_fields(w: &mut XmlWriter, group_id: &str, owner: Option<&str>, egress: bool, r: &Rule) {
    w.field("securityGroupRuleId", r.id.as_deref().unwrap_or_default());
    w.field("groupId", group_id);
    w.opt_field("groupOwnerId", owner);
    w.field("isEgress", egress);
    w.field("ipProtocol", &r.ip_protocol);
    // SecurityGroupRule shows -1 where a permission has no ports.
    w.field("fromPort", r.from_port.unwrap_or(-1));
    w.field("toPort", r.to_port.unwrap_or(-1));
    match &r.peer {
        Peer::Cidr(c) => w.field("cidrIpv4", c),
        Peer::Ipv6(c) => w.field("cidrIpv6", c),
        Peer::PrefixList(p) => w.field("prefixListId", p),
        Peer::Group(g) if owner.is_some() => w.el("referencedGroupInfo", |w| {
            w.field("groupId", g);
            w.opt_field("userId", r.user_id.as_deref());
        }),
        Peer::Group(g) => w.field("referencedGroupId", g),
    }
    w.opt_field("description", r.description.as_deref());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms(q: &str) -> Result<Vec<IpPermission>, ApiError> {
        parse_permissions(&QueryParams::from_query(q))
    }

    #[test]
    fn protocols_and_ports() {
        assert_eq!(normalize_protocol("TCP").unwrap(), "tcp");
        assert_eq!(normalize_protocol("6").unwrap(), "tcp");
        assert_eq!(normalize_protocol("all").unwrap(), "-1");
        assert_eq!(normalize_protocol("47").unwrap(), "47");
        assert_eq!(
            normalize_protocol("sctp-ish").unwrap_err().message,
            "Invalid value 'sctp-ish' for IP protocol. Unknown protocol."
        );
        assert_eq!(
            normalize_ports("tcp", Some(-1), Some(-1)).unwrap(),
            (Some(0), Some(65535))
        );
        assert_eq!(
            normalize_ports("icmp", None, None).unwrap(),
            (Some(-1), Some(-1))
        );
        assert_eq!(
            normalize_ports("-1", Some(1), Some(2)).unwrap(),
            (None, None)
        );
        assert_eq!(
            normalize_ports("tcp", Some(80), None).unwrap_err().message,
            "Invalid value for portRange. Must specify both from and to ports with TCP/UDP."
        );
        assert!(normalize_ports("tcp", Some(90), Some(80)).is_err());
        assert!(normalize_ports("udp", Some(1), Some(70000)).is_err());
        assert!(normalize_ports("icmp", Some(300), None).is_err());
    }

    #[test]
    fn structured_form_as_sdks_send_it() {
        let p = perms(
            "GroupId=default&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=80&IpPermissions.1.ToPort=81\
             &IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0%2F8&IpPermissions.1.IpRanges.1.Description=office\
             &IpPermissions.1.Groups.1.GroupName=web&IpPermissions.1.UserIdGroupPairs.1.GroupId=sg-0abc\
             &IpPermissions.1.Ipv6Ranges.1.CidrIpv6=%3A%3A%2F0&IpPermissions.2.IpProtocol=-1",
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].from_port, p[0].to_port), (Some(80), Some(81)));
        assert_eq!(p[0].ip_ranges[0].description.as_deref(), Some("office"));
        let peers: Vec<_> = p[0]
            .user_id_group_pairs
            .iter()
            .map(|g| g.group_id.as_str())
            .collect();
        assert_eq!(peers, vec!["web", "sg-0abc"]);
        assert_eq!(p[0].ipv6_ranges[0].cidr_ipv6, "::/0");
        assert!(p[1].has_no_peer());
        assert_eq!(crate::model::network::explode(&p).len(), 4);
    }

    #[test]
    fn top_level_form() {
        let p = perms("IpProtocol=tcp&FromPort=8080&ToPort=8080&CidrIp=1.2.3.4%2F32").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].ip_ranges[0].cidr_ip, "1.2.3.4/32");
        let p = perms("SourceSecurityGroupName=web").unwrap();
        assert_eq!(p[0].ip_protocol, "-1");
        assert_eq!(p[0].user_id_group_pairs[0].group_id, "web");
        assert!(perms("GroupId=x").unwrap().is_empty());
    }

    #[test]
    fn rule_parameter_errors() {
        let e = perms("IpProtocol=tcp&FromPort=1&ToPort=2&CidrIp=1.2.3.4").unwrap_err();
        assert_eq!(
            e.message,
            "Value (1.2.3.4) for parameter cidrIp is invalid. This is not a valid CIDR block."
        );
        assert!(check_cidr("10.0.0.0/33").is_err());
        assert!(check_cidr("0.0.0.0/0").is_ok());
        let e = perms("IpPermissions.1.FromPort=1").unwrap_err();
        assert_eq!(
            e.message,
            "The request must contain the parameter IpPermissions.1.IpProtocol"
        );
        let e = perms("IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=1&IpPermissions.1.ToPort=1&IpPermissions.1.Groups.1.GroupId=sg-!")
            .unwrap_err();
        assert_eq!(e.code, "InvalidGroupId.Malformed");
    }
}
