//! The SecurityGroup kind, its rules, the computed default VPC and subnets of a region, and the ports a launch publishes.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::instance::{PortProtocol, PortSpec, MAX_PUBLISHED_PORTS};
use super::meta::{Object, ObjectMeta, API_VERSION};
use super::{Timestamp, ACCOUNT_ID};

/// A security group document.
pub type SecurityGroup = Object<SecurityGroupSpec, SecurityGroupStatus>;

/// The kind name stored in `kind`.
pub const SECURITY_GROUP_KIND: &str = "SecurityGroup";

/// The name of the group every region has and every launch without groups lands in.
pub const DEFAULT_GROUP_NAME: &str = "default";

/// The default VPC's block, as in every AWS region.
pub const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";

/// Usable addresses of a default /20 subnet: 4096 minus the 5 AWS reserves.
pub const SUBNET_USABLE_ADDRESSES: u32 = 4091;

/// The prefix of every security group id.
pub const GROUP_ID_PREFIX: &str = "sg-";

/// A security group as the user defined it. Written only by the API; no reconciler reads it
/// (instances copy what they need at launch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupSpec {
    /// `GroupName`, unique per VPC.
    pub group_name: String,
    /// `GroupDescription`.
    pub description: String,
    /// The VPC the group belongs to.
    pub vpc_id: String,
    /// Inbound rules, one entry per (protocol, port range) with its peers merged.
    #[serde(default)]
    pub ingress: Vec<IpPermission>,
    /// Outbound rules, same shape.
    #[serde(default)]
    pub egress: Vec<IpPermission>,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Each rule's id and tags, by the rule's content ([`Rule::key`]): EC2 gives a rule a new
    /// id each time it is authorized and keeps it through description changes. A rule without
    /// an entry (stored before rules had ids) has its derived id ([`Rule::derived_id`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rule_meta: BTreeMap<String, RuleMeta>,
}

/// What EC2 keeps about a rule besides its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleMeta {
    /// `sgr-…`.
    pub id: String,
    /// User tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// The prefix of every security group rule id.
pub const RULE_ID_PREFIX: &str = "sgr-";

/// Nothing is observed about a security group: the status stays empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupStatus {}

/// EC2's `IpPermission`: a protocol and port range, and the peers it allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IpPermission {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `-1` (all) or another protocol number.
    pub ip_protocol: String,
    /// First port (TCP/UDP) or ICMP type; absent for protocols without ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i32>,
    /// Last port (TCP/UDP) or ICMP code; absent for protocols without ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i32>,
    /// IPv4 peers.
    #[serde(default)]
    pub ip_ranges: Vec<IpRange>,
    /// IPv6 peers.
    #[serde(default)]
    pub ipv6_ranges: Vec<Ipv6Range>,
    /// Security group peers.
    #[serde(default)]
    pub user_id_group_pairs: Vec<UserIdGroupPair>,
    /// Prefix list peers.
    #[serde(default)]
    pub prefix_list_ids: Vec<PrefixListId>,
}

/// An IPv4 peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IpRange {
    /// `0.0.0.0/0`.
    pub cidr_ip: String,
    /// The rule's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An IPv6 peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ipv6Range {
    /// `::/0`.
    pub cidr_ipv6: String,
    /// The rule's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A security group peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserIdGroupPair {
    /// The peer group's id.
    pub group_id: String,
    /// The account owning the peer group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The rule's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A prefix list peer (recorded only: ec2d has no prefix lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrefixListId {
    /// `pl-…`.
    pub prefix_list_id: String,
    /// The rule's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Who a single rule allows. Descriptions are not part of a rule's identity, as in EC2.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    /// An IPv4 block.
    Cidr(String),
    /// An IPv6 block.
    Ipv6(String),
    /// A security group (by id).
    Group(String),
    /// A prefix list.
    PrefixList(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cidr(s) | Self::Ipv6(s) | Self::Group(s) | Self::PrefixList(s) => f.write_str(s),
        }
    }
}

/// One rule: an [`IpPermission`] exploded to a single peer (EC2's `SecurityGroupRule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// As in [`IpPermission::ip_protocol`].
    pub ip_protocol: String,
    /// As in [`IpPermission::from_port`].
    pub from_port: Option<i32>,
    /// As in [`IpPermission::to_port`].
    pub to_port: Option<i32>,
    /// Who is allowed.
    pub peer: Peer,
    /// The account of a group peer.
    pub user_id: Option<String>,
    /// The rule's description.
    pub description: Option<String>,
    /// Its `sgr-…` id: `None` for a rule read from a request, until it is stored.
    pub id: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

impl Peer {
    /// The peer in a rule's key: its kind and value.
    fn key(&self) -> String {
        match self {
            Self::Cidr(s) => format!("cidr {s}"),
            Self::Ipv6(s) => format!("ipv6 {s}"),
            Self::Group(s) => format!("group {s}"),
            Self::PrefixList(s) => format!("prefix-list {s}"),
        }
    }
}

impl Rule {
    /// Whether two rules are the same rule (descriptions aside).
    pub fn same_as(&self, other: &Rule) -> bool {
        self.ip_protocol == other.ip_protocol
            && self.from_port == other.from_port
            && self.to_port == other.to_port
            && self.peer == other.peer
    }

    /// EC2's wording of a rule in `InvalidPermission.Duplicate`:
    /// `peer: 0.0.0.0/0, TCP, from port: 8080, to port: 8080, ALLOW`.
    pub fn describe(&self) -> String {
        let port = |p: Option<i32>| p.unwrap_or(-1);
        match self.ip_protocol.as_str() {
            "-1" => format!("peer: {}, ALL, ALLOW", self.peer),
            "tcp" | "udp" => format!(
                "peer: {}, {}, from port: {}, to port: {}, ALLOW",
                self.peer,
                self.ip_protocol.to_ascii_uppercase(),
                port(self.from_port),
                port(self.to_port)
            ),
            "icmp" | "icmpv6" => format!(
                "peer: {}, {}, type: {}, code: {}, ALLOW",
                self.peer,
                self.ip_protocol.to_ascii_uppercase(),
                port(self.from_port),
                port(self.to_port)
            ),
            other => format!("peer: {}, {}, ALLOW", self.peer, other.to_ascii_uppercase()),
        }
    }

    /// What identifies the rule within its group (descriptions aside), as [`SecurityGroupSpec::rule_meta`]
    /// keys it: `ingress tcp 443 443 cidr 10.0.0.0/8`.
    pub fn key(&self, egress: bool) -> String {
        let port = |p: Option<i32>| p.map_or("-".to_string(), |p| p.to_string());
        format!(
            "{} {} {} {} {}",
            direction(egress),
            self.ip_protocol,
            port(self.from_port),
            port(self.to_port),
            self.peer.key()
        )
    }

    /// The `sgr-…` id of a rule stored before rules had ids of their own (the region's derived
    /// `default` group's too): derived from its content, so it is stable.
    pub fn derived_id(&self, group_id: &str, egress: bool) -> String {
        let key = format!(
            "{group_id}/{egress}/{}/{:?}/{:?}/{:?}",
            self.ip_protocol, self.from_port, self.to_port, self.peer
        );
        format!("{RULE_ID_PREFIX}{}", hashed_hex(&key))
    }
}

/// The word a rule key starts with.
fn direction(egress: bool) -> &'static str {
    if egress {
        "egress"
    } else {
        "ingress"
    }
}

/// A fresh random rule id in AWS's long format.
pub fn generate_rule_id() -> String {
    format!("{RULE_ID_PREFIX}{}", super::ids::random_hex(17))
}

impl IpPermission {
    /// A permission with no peers yet.
    pub fn new(ip_protocol: &str, from_port: Option<i32>, to_port: Option<i32>) -> Self {
        Self {
            ip_protocol: ip_protocol.to_string(),
            from_port,
            to_port,
            ip_ranges: Vec::new(),
            ipv6_ranges: Vec::new(),
            user_id_group_pairs: Vec::new(),
            prefix_list_ids: Vec::new(),
        }
    }

    /// Whether the permission names no peer at all.
    pub fn has_no_peer(&self) -> bool {
        self.ip_ranges.is_empty()
            && self.ipv6_ranges.is_empty()
            && self.user_id_group_pairs.is_empty()
            && self.prefix_list_ids.is_empty()
    }

    /// One rule per peer, in peer order.
    pub fn rules(&self) -> Vec<Rule> {
        let rule = |peer, user_id, description: &Option<String>| Rule {
            ip_protocol: self.ip_protocol.clone(),
            from_port: self.from_port,
            to_port: self.to_port,
            peer,
            user_id,
            description: description.clone(),
            id: None,
            tags: BTreeMap::new(),
        };
        let mut out = Vec::new();
        for r in &self.ip_ranges {
            out.push(rule(Peer::Cidr(r.cidr_ip.clone()), None, &r.description));
        }
        for r in &self.ipv6_ranges {
            out.push(rule(Peer::Ipv6(r.cidr_ipv6.clone()), None, &r.description));
        }
        for p in &self.user_id_group_pairs {
            out.push(rule(
                Peer::Group(p.group_id.clone()),
                p.user_id.clone(),
                &p.description,
            ));
        }
        for p in &self.prefix_list_ids {
            out.push(rule(
                Peer::PrefixList(p.prefix_list_id.clone()),
                None,
                &p.description,
            ));
        }
        out
    }

    fn push(&mut self, rule: &Rule) {
        let description = rule.description.clone();
        match &rule.peer {
            Peer::Cidr(c) => self.ip_ranges.push(IpRange {
                cidr_ip: c.clone(),
                description,
            }),
            Peer::Ipv6(c) => self.ipv6_ranges.push(Ipv6Range {
                cidr_ipv6: c.clone(),
                description,
            }),
            Peer::Group(g) => self.user_id_group_pairs.push(UserIdGroupPair {
                group_id: g.clone(),
                user_id: rule.user_id.clone(),
                description,
            }),
            Peer::PrefixList(p) => self.prefix_list_ids.push(PrefixListId {
                prefix_list_id: p.clone(),
                description,
            }),
        }
    }
}

/// Every rule of a list of permissions.
pub fn explode(permissions: &[IpPermission]) -> Vec<Rule> {
    permissions.iter().flat_map(IpPermission::rules).collect()
}

/// Groups rules back into permissions, one per (protocol, from, to), in first-seen order:
/// EC2 shows a group's rules merged that way whatever the calls that added them.
pub fn merge(rules: &[Rule]) -> Vec<IpPermission> {
    let mut out: Vec<IpPermission> = Vec::new();
    for rule in rules {
        let slot = out.iter_mut().find(|p| {
            p.ip_protocol == rule.ip_protocol
                && p.from_port == rule.from_port
                && p.to_port == rule.to_port
        });
        match slot {
            Some(p) => p.push(rule),
            None => {
                let mut p = IpPermission::new(&rule.ip_protocol, rule.from_port, rule.to_port);
                p.push(rule);
                out.push(p);
            }
        }
    }
    out
}

impl SecurityGroupSpec {
    /// The inbound (`egress == false`) or outbound rule list.
    pub fn permissions(&self, egress: bool) -> &[IpPermission] {
        if egress {
            &self.egress
        } else {
            &self.ingress
        }
    }

    /// The mutable inbound or outbound rule list.
    pub fn permissions_mut(&mut self, egress: bool) -> &mut Vec<IpPermission> {
        if egress {
            &mut self.egress
        } else {
            &mut self.ingress
        }
    }

    /// The rules of one direction, each with its id and tags.
    pub fn rules(&self, group_id: &str, egress: bool) -> Vec<Rule> {
        let mut rules = explode(self.permissions(egress));
        for rule in &mut rules {
            match self.rule_meta.get(&rule.key(egress)) {
                Some(meta) => {
                    rule.id = Some(meta.id.clone());
                    rule.tags = meta.tags.clone();
                }
                None => rule.id = Some(rule.derived_id(group_id, egress)),
            }
        }
        rules
    }

    /// Replaces the rules of one direction with `rules`, their ids and tags included (a rule
    /// without an id gets a fresh one).
    pub fn set_rules(&mut self, egress: bool, rules: &[Rule]) {
        let prefix = format!("{} ", direction(egress));
        self.rule_meta.retain(|key, _| !key.starts_with(&prefix));
        for rule in rules {
            let meta = RuleMeta {
                id: rule.id.clone().unwrap_or_else(generate_rule_id),
                tags: rule.tags.clone(),
            };
            self.rule_meta.insert(rule.key(egress), meta);
        }
        *self.permissions_mut(egress) = merge(rules);
    }

    /// Whether any rule (either direction) names `group_id` as its peer.
    pub fn references(&self, group_id: &str) -> bool {
        self.ingress
            .iter()
            .chain(&self.egress)
            .flat_map(|p| &p.user_id_group_pairs)
            .any(|pair| pair.group_id == group_id)
    }
}

/// The first 17 hex digits of SHA-256 of `key`: the length of AWS's long ids.
pub(crate) fn hashed_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..17]
        .to_string()
}

/// The default VPC of a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    /// `vpc-…`, the same on every start for a region.
    pub vpc_id: String,
    /// [`DEFAULT_VPC_CIDR`].
    pub cidr_block: String,
    /// The association id of the primary block.
    pub cidr_association_id: String,
    /// `dopt-…`.
    pub dhcp_options_id: String,
    /// Whether this is the region's default VPC.
    pub is_default: bool,
    /// `default` or `dedicated`.
    pub instance_tenancy: String,
    /// User tags (none on the derived default VPC).
    pub tags: BTreeMap<String, String>,
    /// `enableDnsSupport`, `enableDnsHostnames`, `enableNetworkAddressUsageMetrics`.
    pub attributes: [bool; 3],
}

/// A default subnet: one per availability zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// `subnet-…`, the same on every start for a zone.
    pub subnet_id: String,
    /// The default VPC.
    pub vpc_id: String,
    /// `172.31.{16·i}.0/20`.
    pub cidr_block: String,
    /// `us-east-1a`.
    pub availability_zone: String,
    /// `use1-az1`.
    pub availability_zone_id: String,
    /// Whether this is its zone's default subnet.
    pub default_for_az: bool,
    /// Whether launches in it get a public address.
    pub map_public_ip_on_launch: bool,
    /// Its usable addresses: the block's size minus the 5 AWS reserves.
    pub usable: u32,
    /// ModifySubnetAttribute's other attributes.
    pub options: super::vpc::SubnetOptions,
    /// User tags (none on the derived default subnets).
    pub tags: BTreeMap<String, String>,
}

/// The default VPC of `region`; computed, never stored.
pub fn default_vpc(region: &str) -> Vpc {
    Vpc {
        vpc_id: format!("vpc-{}", hashed_hex(&format!("vpc/{region}"))),
        cidr_block: DEFAULT_VPC_CIDR.to_string(),
        cidr_association_id: format!(
            "vpc-cidr-assoc-{}",
            hashed_hex(&format!("vpc-cidr/{region}"))
        ),
        dhcp_options_id: format!("dopt-{}", hashed_hex(&format!("dopt/{region}"))),
        is_default: true,
        instance_tenancy: "default".to_string(),
        tags: BTreeMap::new(),
        // A default VPC resolves DNS and gives hostnames.
        attributes: [true, true, false],
    }
}

/// The default subnets of `region`, one per `(zone name, zone id)`, in zone order:
/// `172.31.0.0/20`, `172.31.16.0/20`, `172.31.32.0/20`, … as in AWS's default VPCs.
pub fn default_subnets(region: &str, zones: &[(String, String)]) -> Vec<Subnet> {
    let vpc_id = default_vpc(region).vpc_id;
    zones
        .iter()
        .enumerate()
        .map(|(i, (name, id))| Subnet {
            subnet_id: format!("subnet-{}", hashed_hex(&format!("subnet/{name}"))),
            vpc_id: vpc_id.clone(),
            cidr_block: format!("172.31.{}.0/20", 16 * i),
            availability_zone: name.clone(),
            availability_zone_id: id.clone(),
            default_for_az: true,
            map_public_ip_on_launch: true,
            usable: SUBNET_USABLE_ADDRESSES,
            options: super::vpc::SubnetOptions::default(),
            tags: BTreeMap::new(),
        })
        .collect()
}

/// The id of `region`'s `default` group: derived from the region, so two requests racing to
/// create it write the same document and the store keeps one.
pub fn default_group_id(region: &str) -> String {
    format!(
        "{GROUP_ID_PREFIX}{}",
        hashed_hex(&format!("sg/default/{region}"))
    )
}

/// A fresh random group id in AWS's long format.
pub fn generate_group_id() -> String {
    format!("{GROUP_ID_PREFIX}{}", super::ids::random_hex(17))
}

/// Whether `s` is a well-formed group id: `sg-` and 1..=32 hex digits (AWS makes 8 or 17).
pub fn is_group_id(s: &str) -> bool {
    s.strip_prefix(GROUP_ID_PREFIX).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 32 && rest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Whether `s` is a well-formed rule id: `sgr-` and 1..=32 hex digits (AWS makes 17).
pub fn is_rule_id(s: &str) -> bool {
    s.strip_prefix(RULE_ID_PREFIX).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 32 && rest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A security group document for a region, at generation 1.
pub fn security_group(
    id: &str,
    region: &str,
    spec: SecurityGroupSpec,
    now: Timestamp,
) -> SecurityGroup {
    Object {
        api_version: API_VERSION.to_string(),
        kind: SECURITY_GROUP_KIND.to_string(),
        metadata: ObjectMeta::new(id, region, now),
        spec,
        status: SecurityGroupStatus::default(),
    }
}

/// The egress every new VPC group starts with: all traffic to anywhere.
pub fn allow_all_egress() -> Vec<IpPermission> {
    let mut all = IpPermission::new("-1", None, None);
    all.ip_ranges.push(IpRange {
        cidr_ip: "0.0.0.0/0".to_string(),
        description: None,
    });
    vec![all]
}

/// `region`'s `default` group with AWS's default rules: all traffic out to anywhere, all
/// traffic in from members of the group itself.
pub fn default_security_group(region: &str, now: Timestamp) -> SecurityGroup {
    vpc_default_security_group(
        &default_group_id(region),
        &default_vpc(region).vpc_id,
        region,
        now,
    )
}

/// The `default` group of a VPC, `id`: all traffic from its own members in, all out.
pub fn vpc_default_security_group(
    id: &str,
    vpc_id: &str,
    region: &str,
    now: Timestamp,
) -> SecurityGroup {
    let id = id.to_string();
    let mut from_self = IpPermission::new("-1", None, None);
    from_self.user_id_group_pairs.push(UserIdGroupPair {
        group_id: id.clone(),
        user_id: Some(ACCOUNT_ID.to_string()),
        description: None,
    });
    let spec = SecurityGroupSpec {
        group_name: DEFAULT_GROUP_NAME.to_string(),
        description: "default VPC security group".to_string(),
        vpc_id: vpc_id.to_string(),
        ingress: vec![from_self],
        egress: allow_all_egress(),
        tags: BTreeMap::new(),
        rule_meta: BTreeMap::new(),
    };
    security_group(&id, region, spec, now)
}

/// The ports a launch in `groups` publishes: every port of every TCP/UDP ingress rule, plus
/// 22/tcp always, deduplicated and sorted. Rules of other protocols (`-1`, ICMP, …) publish
/// nothing: "all traffic" cannot be mapped to host ports. Port 0 is not a port and is skipped.
/// More than [`MAX_PUBLISHED_PORTS`] is refused with the count, never cut silently.
pub fn published_ports<'a>(
    groups: impl IntoIterator<Item = &'a SecurityGroupSpec>,
) -> Result<Vec<PortSpec>, usize> {
    let mut ranges: BTreeMap<PortProtocol, Vec<(u16, u16)>> = BTreeMap::new();
    ranges.entry(PortProtocol::Tcp).or_default().push((22, 22));
    for group in groups {
        for p in &group.ingress {
            let protocol = match p.ip_protocol.as_str() {
                "tcp" => PortProtocol::Tcp,
                "udp" => PortProtocol::Udp,
                _ => continue,
            };
            let (Some(from), Some(to)) = (p.from_port, p.to_port) else {
                continue;
            };
            let clamp = |v: i32| u16::try_from(v.clamp(1, 65535)).expect("clamped");
            if to < 1 || from > to {
                continue;
            }
            ranges
                .entry(protocol)
                .or_default()
                .push((clamp(from), clamp(to)));
        }
    }
    // Merging the intervals counts a 0-65535 rule without enumerating it.
    let mut merged: Vec<(PortProtocol, u16, u16)> = Vec::new();
    for (protocol, mut list) in ranges {
        list.sort_unstable();
        for (from, to) in list {
            match merged.last_mut() {
                Some((p, _, end)) if *p == protocol && u32::from(from) <= u32::from(*end) + 1 => {
                    *end = (*end).max(to);
                }
                _ => merged.push((protocol, from, to)),
            }
        }
    }
    let count: usize = merged
        .iter()
        .map(|(_, from, to)| usize::from(*to - *from) + 1)
        .sum();
    if count > MAX_PUBLISHED_PORTS {
        return Err(count);
    }
    let mut ports: Vec<PortSpec> = merged
        .into_iter()
        .flat_map(|(protocol, from, to)| (from..=to).map(move |port| PortSpec { port, protocol }))
        .collect();
    ports.sort_unstable();
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(from: i32, to: i32) -> IpPermission {
        let mut p = IpPermission::new("tcp", Some(from), Some(to));
        p.ip_ranges.push(IpRange {
            cidr_ip: "0.0.0.0/0".into(),
            description: None,
        });
        p
    }

    fn group(ingress: Vec<IpPermission>) -> SecurityGroupSpec {
        SecurityGroupSpec {
            group_name: "g".into(),
            description: "d".into(),
            vpc_id: "vpc-1".into(),
            ingress,
            egress: Vec::new(),
            tags: BTreeMap::new(),
            rule_meta: BTreeMap::new(),
        }
    }

    #[test]
    fn defaults_are_deterministic_per_region() {
        assert_eq!(default_vpc("us-east-1"), default_vpc("us-east-1"));
        assert_ne!(
            default_vpc("us-east-1").vpc_id,
            default_vpc("eu-west-1").vpc_id
        );
        let id = default_group_id("us-east-1");
        assert!(is_group_id(&id) && id.len() == 3 + 17, "{id}");
        assert_ne!(id, default_group_id("eu-west-1"));
        let zones = vec![
            ("us-east-1a".to_string(), "use1-az1".to_string()),
            ("us-east-1b".to_string(), "use1-az2".to_string()),
            ("us-east-1c".to_string(), "use1-az3".to_string()),
        ];
        let subnets = default_subnets("us-east-1", &zones);
        let cidrs: Vec<_> = subnets.iter().map(|s| s.cidr_block.as_str()).collect();
        assert_eq!(
            cidrs,
            vec!["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"]
        );
        assert_ne!(subnets[0].subnet_id, subnets[1].subnet_id);
        assert!(subnets[0].subnet_id.starts_with("subnet-"));
    }

    #[test]
    fn default_group_has_aws_default_rules() {
        let g = default_security_group("us-east-1", crate::model::now());
        assert_eq!(g.spec.group_name, "default");
        let ingress = explode(&g.spec.ingress);
        assert_eq!(ingress.len(), 1);
        assert_eq!(ingress[0].ip_protocol, "-1");
        assert_eq!(ingress[0].peer, Peer::Group(g.metadata.name.clone()));
        let egress = explode(&g.spec.egress);
        assert_eq!(egress[0].peer, Peer::Cidr("0.0.0.0/0".into()));
        assert!(g.spec.references(&g.metadata.name));
    }

    #[test]
    fn group_ids() {
        assert!(is_group_id("sg-0123456789abcdef0"));
        assert!(is_group_id("sg-12345678"));
        for bad in ["sg-", "sg-xyz", "sg-12 34", "default", "sg_123"] {
            assert!(!is_group_id(bad), "{bad}");
        }
        assert!(is_group_id(&generate_group_id()));
    }

    #[test]
    fn rules_explode_and_merge_back() {
        let mut p = tcp(80, 80);
        p.ip_ranges.push(IpRange {
            cidr_ip: "10.0.0.0/8".into(),
            description: Some("office".into()),
        });
        p.user_id_group_pairs.push(UserIdGroupPair {
            group_id: "sg-1".into(),
            user_id: None,
            description: None,
        });
        let rules = explode(std::slice::from_ref(&p));
        assert_eq!(rules.len(), 3);
        assert_eq!(merge(&rules), vec![p]);
        let mut more = rules.clone();
        more.extend(tcp(443, 443).rules());
        more.extend(tcp(80, 80).rules().into_iter().map(|mut r| {
            r.peer = Peer::Cidr("1.2.3.4/32".into());
            r
        }));
        let merged = merge(&more);
        assert_eq!(merged.len(), 2, "same protocol and ports merge");
        assert_eq!(merged[0].ip_ranges.len(), 3);
    }

    #[test]
    fn rule_wording_and_identity() {
        let r = &tcp(8080, 8080).rules()[0];
        assert_eq!(
            r.describe(),
            "peer: 0.0.0.0/0, TCP, from port: 8080, to port: 8080, ALLOW"
        );
        let mut other = r.clone();
        other.description = Some("x".into());
        assert!(r.same_as(&other), "descriptions are not identity");
        assert_eq!(r.derived_id("sg-1", false), other.derived_id("sg-1", false));
        assert_ne!(r.derived_id("sg-1", false), r.derived_id("sg-1", true));
        assert_eq!(r.key(false), other.key(false));
        assert_eq!(r.key(false), "ingress tcp 8080 8080 cidr 0.0.0.0/0");
        other.to_port = Some(8081);
        assert!(!r.same_as(&other));
        let all = &allow_all_egress()[0].rules()[0];
        assert_eq!(all.describe(), "peer: 0.0.0.0/0, ALL, ALLOW");
        assert!(is_rule_id(&r.derived_id("sg-1", false)));
        assert_eq!(all.key(true), "egress -1 - - cidr 0.0.0.0/0");
    }

    #[test]
    fn rules_keep_their_ids_and_tags_through_a_merge() {
        let mut spec = group(vec![tcp(80, 80)]);
        // A rule stored before rules had ids reads with its derived id.
        let old = spec.rules("sg-1", false);
        assert_eq!(old[0].id, Some(old[0].derived_id("sg-1", false)));
        let mut fresh = tcp(443, 443).rules().remove(0);
        fresh.tags.insert("Name".into(), "https".into());
        let mut rules = old.clone();
        rules.push(fresh);
        spec.set_rules(false, &rules);
        let read = spec.rules("sg-1", false);
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].id, old[0].id);
        assert!(is_rule_id(read[1].id.as_deref().unwrap()));
        assert_ne!(read[1].id, Some(read[1].derived_id("sg-1", false)));
        assert_eq!(read[1].tags["Name"], "https");
        assert_eq!(spec.ingress.len(), 2, "merged back into permissions");
        // Egress is untouched by an ingress change, and a revoked rule's entry goes.
        spec.set_rules(true, &allow_all_egress()[0].rules());
        spec.set_rules(false, &read[1..]);
        assert_eq!(spec.rule_meta.len(), 2);
        assert_eq!(spec.rules("sg-1", false)[0].id, read[1].id);
    }

    #[test]
    fn ports_always_include_ssh_and_dedupe() {
        let ports = published_ports(&[group(vec![])]).unwrap();
        assert_eq!(
            ports,
            vec![PortSpec {
                port: 22,
                protocol: PortProtocol::Tcp
            }]
        );
        let mut udp = tcp(53, 53);
        udp.ip_protocol = "udp".into();
        let all = allow_all_egress().remove(0);
        let a = group(vec![tcp(80, 81), tcp(22, 22), udp, all]);
        let b = group(vec![tcp(81, 81), tcp(8080, 8080)]);
        let ports = published_ports([&a, &b]).unwrap();
        let shown: Vec<_> = ports
            .iter()
            .map(|p| format!("{}/{}", p.port, p.protocol.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec!["22/tcp", "53/udp", "80/tcp", "81/tcp", "8080/tcp"]
        );
    }

    #[test]
    fn too_many_ports_are_refused_with_the_count() {
        // 1000-1030 is 31 ports: with 22/tcp exactly the limit.
        assert_eq!(
            published_ports(&[group(vec![tcp(1000, 1030)])]).map(|p| p.len()),
            Ok(32)
        );
        assert_eq!(published_ports(&[group(vec![tcp(1000, 1031)])]), Err(33));
        // Port 0 is skipped; 22 falls inside the range.
        assert_eq!(published_ports(&[group(vec![tcp(0, 65535)])]), Err(65535));
    }
}
