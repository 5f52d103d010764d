//! Network protocol tests: VPCs, subnets, security groups and their rules, and what RunInstances takes from them (groups, ports, subnet, key, user data, client token), through `api::router` with `oneshot`.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::api::{Harness, Node, Reply};
use ec2d::model::{InstanceState, PortProtocol, PortSpec};

// ---------------------------------------------------------------------------------------------
// Harness: the shared one (`tests/common/api.rs`) in mock mode, plus network helpers.

/// Any well-formed AMI launches in mock mode.
const AMI: &str = "ami-000001";

impl Harness {
    async fn ok(&self, params: &[(&str, &str)]) -> Node {
        let action = params[0].1;
        assert_eq!(params[0].0, "Action");
        self.post(params).await.ok(action)
    }

    /// RunInstances of one instance of [`AMI`] in `region` with `extra` parameters.
    async fn run_in(&self, region: &str, extra: &[(&str, &str)]) -> Reply {
        let mut params = vec![
            ("Action", "RunInstances"),
            ("ImageId", AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ];
        params.extend_from_slice(extra);
        self.post_in(region, &params).await
    }

    /// Launches one instance and returns its id.
    async fn launch(&self, extra: &[(&str, &str)]) -> String {
        self.run_in("us-east-1", extra)
            .await
            .ok("RunInstances")
            .text_at("instancesSet/item/instanceId")
            .to_string()
    }

    /// The stored groups of `region`.
    fn groups_in(&self, region: &str) -> usize {
        self.store
            .security_groups()
            .list()
            .unwrap()
            .objects
            .iter()
            .filter(|g| g.metadata.namespace == region)
            .count()
    }

    /// Terminates an instance and emulates the reconciler finishing the termination.
    async fn terminate(&self, id: &str) {
        self.ok(&[("Action", "TerminateInstances"), ("InstanceId.1", id)])
            .await;
        let inst = self.instance(id);
        let mut status = inst.status.clone();
        status.observed_generation = inst.metadata.generation;
        status.state = Some(InstanceState::Terminated);
        self.store.instances().write_status(id, &status).unwrap();
    }

    /// `describe-security-groups` with `extra`, as the items of `securityGroupInfo`.
    async fn groups(&self, extra: &[(&str, &str)]) -> Vec<Node> {
        let mut params = vec![("Action", "DescribeSecurityGroups")];
        params.extend_from_slice(extra);
        let doc = self.ok(&params).await;
        doc.items("securityGroupInfo")
            .into_iter()
            .cloned()
            .collect()
    }

    /// The one group named or identified by `group`.
    async fn group(&self, group: &str) -> Node {
        let mut found = self.groups(&[("GroupId.1", group)]).await;
        assert_eq!(found.len(), 1);
        found.remove(0)
    }

    async fn create_group(&self, name: &str) -> String {
        self.ok(&[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", name),
            ("GroupDescription", &format!("{name} servers")),
        ])
        .await
        .text_at("groupId")
        .to_string()
    }

    /// `authorize-security-group-ingress --group-id <group> --protocol <p> --port <from-to>`, as
    /// the aws CLI sends it: `IpPermissions.1.*` without a source.
    async fn open_port(&self, group: &str, protocol: &str, from: &str, to: &str) -> Reply {
        self.post(&[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupId", group),
            ("IpPermissions.1.IpProtocol", protocol),
            ("IpPermissions.1.FromPort", from),
            ("IpPermissions.1.ToPort", to),
        ])
        .await
    }
}

/// An error case: the request's parameters, the code and the message expected.
type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, String);

fn tcp(port: u16) -> PortSpec {
    PortSpec {
        port,
        protocol: PortProtocol::Tcp,
    }
}

fn udp(port: u16) -> PortSpec {
    PortSpec {
        port,
        protocol: PortProtocol::Udp,
    }
}

/// The region's default VPC id, as DescribeVpcs answers it.
async fn default_vpc_id(h: &Harness, region: &str) -> String {
    h.post_in(region, &[("Action", "DescribeVpcs")])
        .await
        .ok("DescribeVpcs")
        .text_at("vpcSet/item/vpcId")
        .to_string()
}

/// The sorted names of the groups `filters` (name, one value each) select.
async fn group_names(h: &Harness, filters: &[(&str, &str)]) -> Vec<String> {
    let mut params = vec![];
    for (i, (name, value)) in filters.iter().enumerate() {
        params.push((format!("Filter.{}.Name", i + 1), name.to_string()));
        params.push((format!("Filter.{}.Value.1", i + 1), value.to_string()));
    }
    let borrowed: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut out: Vec<String> = h
        .groups(&borrowed)
        .await
        .iter()
        .map(|g| g.text_at("groupName").to_string())
        .collect();
    out.sort();
    out
}

/// The default subnet of `zone`.
async fn subnet_of(h: &Harness, zone: &str) -> String {
    h.ok(&[
        ("Action", "DescribeSubnets"),
        ("Filter.1.Name", "availability-zone"),
        ("Filter.1.Value.1", zone),
    ])
    .await
    .text_at("subnetSet/item/subnetId")
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// DescribeVpcs / DescribeSubnets

#[tokio::test]
async fn describe_vpcs_answers_one_default_vpc_per_region() {
    let h = Harness::new();
    let doc = h.ok(&[("Action", "DescribeVpcs")]).await;
    let vpcs = doc.items("vpcSet");
    assert_eq!(vpcs.len(), 1);
    let vpc = vpcs[0];
    let id = vpc.text_at("vpcId").to_string();
    assert!(id.starts_with("vpc-") && id.len() == 4 + 17, "{id}");
    assert_eq!(vpc.text_at("cidrBlock"), "172.31.0.0/16");
    assert_eq!(vpc.text_at("isDefault"), "true");
    assert_eq!(vpc.text_at("state"), "available");
    assert_eq!(vpc.text_at("ownerId"), "000000000000");
    assert_eq!(
        vpc.text_at("cidrBlockAssociationSet/item/cidrBlockState/state"),
        "associated"
    );
    // Deterministic: another store agrees; another region differs.
    assert_eq!(default_vpc_id(&Harness::new(), "us-east-1").await, id);
    assert_ne!(default_vpc_id(&h, "eu-west-1").await, id);

    let ids = |doc: Node| -> Vec<String> {
        doc.items("vpcSet")
            .iter()
            .map(|v| v.text_at("vpcId").to_string())
            .collect()
    };
    let by_id = h.ok(&[("Action", "DescribeVpcs"), ("VpcId.1", &id)]).await;
    assert_eq!(ids(by_id), vec![id.clone()]);
    for (name, value, expect) in [
        ("is-default", "true", 1),
        ("is-default", "false", 0),
        ("isDefault", "true", 1),
        ("isDefault", "false", 0),
        ("cidr", "172.31.0.0/16", 1),
        ("cidr", "10.*", 0),
        ("state", "available", 1),
        ("vpc-id", "vpc-*", 1),
        ("owner-id", "000000000000", 1),
    ] {
        let doc = h
            .ok(&[
                ("Action", "DescribeVpcs"),
                ("Filter.1.Name", name),
                ("Filter.1.Value.1", value),
            ])
            .await;
        assert_eq!(doc.items("vpcSet").len(), expect, "{name}={value}");
    }

    let e = h
        .post(&[("Action", "DescribeVpcs"), ("VpcId.1", "vpc-0000000000")])
        .await
        .err("InvalidVpcID.NotFound");
    assert_eq!(e, "The vpc ID 'vpc-0000000000' does not exist");
    let e = h
        .post(&[("Action", "DescribeVpcs"), ("VpcId.1", "default")])
        .await
        .err("InvalidVpcID.Malformed");
    assert_eq!(e, "Invalid id: \"default\" (expecting \"vpc-...\")");
    let e = h
        .post(&[
            ("Action", "DescribeVpcs"),
            ("Filter.1.Name", "colour"),
            ("Filter.1.Value.1", "x"),
        ])
        .await
        .err("InvalidParameterValue");
    assert_eq!(e, "The filter 'colour' is invalid");
}

#[tokio::test]
async fn describe_subnets_answers_one_default_subnet_per_zone() {
    let h = Harness::new();
    let vpc = default_vpc_id(&h, "us-east-1").await;
    let doc = h.ok(&[("Action", "DescribeSubnets")]).await;
    let subnets = doc.items("subnetSet");
    let shown = doc.pairs("subnetSet", "availabilityZone", "cidrBlock");
    assert_eq!(
        shown,
        vec![
            ("us-east-1a".to_string(), "172.31.0.0/20".to_string()),
            ("us-east-1b".to_string(), "172.31.16.0/20".to_string()),
            ("us-east-1c".to_string(), "172.31.32.0/20".to_string()),
            ("us-east-1d".to_string(), "172.31.48.0/20".to_string()),
            ("us-east-1e".to_string(), "172.31.64.0/20".to_string()),
            ("us-east-1f".to_string(), "172.31.80.0/20".to_string()),
        ]
    );
    for s in &subnets {
        assert!(s.text_at("subnetId").starts_with("subnet-"));
        assert_eq!(s.text_at("vpcId"), vpc);
        assert_eq!(s.text_at("defaultForAz"), "true");
        assert_eq!(s.text_at("mapPublicIpOnLaunch"), "true");
        assert_eq!(s.text_at("availableIpAddressCount"), "4091");
        assert_eq!(s.text_at("state"), "available");
    }
    let b = subnets[1].text_at("subnetId").to_string();
    assert_eq!(
        subnet_of(&Harness::new(), "us-east-1b").await,
        b,
        "stable ids"
    );

    // A launch into the subnet takes an address; terminating it gives it back.
    let id = h.launch(&[("SubnetId", &b)]).await;
    let count = |doc: Node| {
        doc.text_at("subnetSet/item/availableIpAddressCount")
            .to_string()
    };
    let doc = h
        .ok(&[("Action", "DescribeSubnets"), ("SubnetId.1", &b)])
        .await;
    assert_eq!(count(doc), "4090");
    h.terminate(&id).await;
    let doc = h
        .ok(&[("Action", "DescribeSubnets"), ("SubnetId.1", &b)])
        .await;
    assert_eq!(count(doc), "4091");

    for (name, value, expect) in [
        ("default-for-az", "true", 6),
        ("defaultForAz", "true", 6),
        ("vpc-id", vpc.as_str(), 6),
        ("vpc-id", "vpc-other", 0),
        ("cidr-block", "172.31.32.0/20", 1),
        ("subnet-id", b.as_str(), 1),
        ("availability-zone", "us-east-1?", 6),
        ("availabilityZone", "us-east-1b", 1),
        ("availability-zone-id", "use1-az6", 1),
        ("state", "available", 6),
    ] {
        let doc = h
            .ok(&[
                ("Action", "DescribeSubnets"),
                ("Filter.1.Name", name),
                ("Filter.1.Value.1", value),
            ])
            .await;
        assert_eq!(doc.items("subnetSet").len(), expect, "{name}={value}");
    }
    let e = h
        .post(&[("Action", "DescribeSubnets"), ("SubnetId.1", "subnet-0000")])
        .await
        .err("InvalidSubnetID.NotFound");
    assert_eq!(e, "The subnet ID 'subnet-0000' does not exist");
    // Subnets are per region: us-east-1's are unknown in us-west-2.
    let e = h
        .post_in(
            "us-west-2",
            &[("Action", "DescribeSubnets"), ("SubnetId.1", &b)],
        )
        .await
        .err("InvalidSubnetID.NotFound");
    assert_eq!(e, format!("The subnet ID '{b}' does not exist"));
}

// ---------------------------------------------------------------------------------------------
// Security groups

#[tokio::test]
async fn default_group_is_created_lazily_once_with_aws_default_rules() {
    let h = Harness::new();
    assert_eq!(h.groups_in("us-east-1"), 0, "nothing before first use");
    let groups = h.groups(&[("GroupName.1", "default")]).await;
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    let id = g.text_at("groupId").to_string();
    assert!(id.starts_with("sg-") && id.len() == 3 + 17, "{id}");
    assert_eq!(g.text_at("groupName"), "default");
    assert_eq!(g.text_at("groupDescription"), "default VPC security group");
    assert_eq!(g.text_at("vpcId"), default_vpc_id(&h, "us-east-1").await);
    assert_eq!(g.text_at("ownerId"), "000000000000");
    // Ingress: all traffic from the group itself.
    let ingress = g.items("ipPermissions");
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0].text_at("ipProtocol"), "-1");
    assert!(!ingress[0].has("fromPort"), "-1 rules have no ports");
    assert_eq!(ingress[0].text_at("groups/item/groupId"), id);
    assert_eq!(ingress[0].text_at("groups/item/userId"), "000000000000");
    assert!(ingress[0].items("ipRanges").is_empty());
    // Egress: all traffic to anywhere.
    let egress = g.items("ipPermissionsEgress");
    assert_eq!(egress.len(), 1);
    assert_eq!(egress[0].text_at("ipProtocol"), "-1");
    assert_eq!(egress[0].text_at("ipRanges/item/cidrIp"), "0.0.0.0/0");

    // Same id in another store (deterministic), one record however often it is used.
    let other = Harness::new();
    assert_eq!(other.group("default").await.text_at("groupId"), id);
    h.groups(&[]).await;
    h.group(&id).await;
    // Reads never write: the group is derived until a write needs the region's network.
    assert_eq!(h.groups_in("us-east-1"), 0);
    h.ok(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "k"),
    ])
    .await;
    h.groups(&[]).await;
    assert_eq!(h.groups_in("us-east-1"), 1);
    // Names and ids are accepted in both lists.
    assert_eq!(
        h.groups(&[("GroupName.1", &id)]).await[0].text_at("groupName"),
        "default"
    );
}

#[tokio::test]
async fn racing_first_uses_create_one_default_group() {
    let h = Arc::new(Harness::new());
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                // A read sees the derived group; the write that follows stores it.
                h.post_in("ap-south-1", &[("Action", "DescribeSecurityGroups")])
                    .await
                    .ok("DescribeSecurityGroups");
                let key = format!("k{i}");
                h.post_in(
                    "ap-south-1",
                    &[
                        ("Action", "CreateTags"),
                        (
                            "ResourceId.1",
                            &ec2d::model::network::default_group_id("ap-south-1"),
                        ),
                        ("Tag.1.Key", &key),
                    ],
                )
                .await
                .ok("CreateTags");
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(h.groups_in("ap-south-1"), 1);
    let doc = h
        .post_in("ap-south-1", &[("Action", "DescribeSecurityGroups")])
        .await
        .ok("DescribeSecurityGroups");
    let groups = doc.items("securityGroupInfo");
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].items("tagSet").len(),
        8,
        "no racing write was lost"
    );
}

#[tokio::test]
async fn authorize_as_the_cli_sends_it_with_group_id_default() {
    let h = Harness::new();
    // awslocal ec2 authorize-security-group-ingress --group-id default --protocol tcp --port 8080
    let doc = h
        .open_port("default", "tcp", "8080", "8080")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    assert_eq!(doc.text_at("return"), "true");
    let rules = doc.items("securityGroupRuleSet");
    assert_eq!(rules.len(), 1);
    let default_id = h.group("default").await.text_at("groupId").to_string();
    let rule = rules[0];
    assert!(rule.text_at("securityGroupRuleId").starts_with("sgr-"));
    assert_eq!(rule.text_at("groupId"), default_id);
    assert_eq!(rule.text_at("isEgress"), "false");
    assert_eq!(rule.text_at("ipProtocol"), "tcp");
    assert_eq!(rule.text_at("fromPort"), "8080");
    assert_eq!(rule.text_at("toPort"), "8080");
    // No source given: recorded as 0.0.0.0/0.
    assert_eq!(rule.text_at("cidrIpv4"), "0.0.0.0/0");

    // awslocal ec2 describe-security-groups --group-names default
    let g = &h.groups(&[("GroupName.1", "default")]).await[0];
    let ingress = g.items("ipPermissions");
    assert_eq!(ingress.len(), 2);
    let added = ingress[1];
    assert_eq!(added.text_at("ipProtocol"), "tcp");
    assert_eq!(added.text_at("fromPort"), "8080");
    assert_eq!(added.text_at("toPort"), "8080");
    assert_eq!(added.text_at("ipRanges/item/cidrIp"), "0.0.0.0/0");

    // The same rule again, in either form, is a duplicate.
    let expected = "the specified rule \"peer: 0.0.0.0/0, TCP, from port: 8080, to port: 8080, ALLOW\" already exists";
    let e = h
        .open_port("default", "tcp", "8080", "8080")
        .await
        .err("InvalidPermission.Duplicate");
    assert_eq!(e, expected);
    let e = h
        .post(&[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupName", "default"),
            ("IpProtocol", "tcp"),
            ("FromPort", "8080"),
            ("ToPort", "8080"),
            ("CidrIp", "0.0.0.0/0"),
        ])
        .await
        .err("InvalidPermission.Duplicate");
    assert_eq!(e, expected);
    // A call with a new rule and a duplicate adds nothing.
    h.post(&[
        ("Action", "AuthorizeSecurityGroupIngress"),
        ("GroupId", &default_id),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "8080"),
        ("IpPermissions.1.ToPort", "8080"),
        ("IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8"),
        ("IpPermissions.1.IpRanges.2.CidrIp", "0.0.0.0/0"),
    ])
    .await
    .err("InvalidPermission.Duplicate");
    assert_eq!(h.group("default").await.items("ipPermissions").len(), 2);
}

#[tokio::test]
async fn authorize_top_level_and_structured_forms_with_every_peer_kind() {
    let h = Harness::new();
    let web = h.create_group("web").await;
    let default_id = h.group("default").await.text_at("groupId").to_string();
    // The top-level form (older SDKs, boto2): protocol, ports and a CIDR.
    let doc = h
        .ok(&[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupName", "web"),
            ("IpProtocol", "udp"),
            ("FromPort", "53"),
            ("ToPort", "53"),
            ("CidrIp", "10.0.0.0/8"),
        ])
        .await;
    assert_eq!(
        doc.text_at("securityGroupRuleSet/item/cidrIpv4"),
        "10.0.0.0/8"
    );
    // Top-level source group by name, no protocol: all traffic from it.
    h.ok(&[
        ("Action", "AuthorizeSecurityGroupIngress"),
        ("GroupId", &web),
        ("SourceSecurityGroupName", "default"),
    ])
    .await;
    // The structured form with IPv6, a group peer by name (`Groups`, as boto3 names it),
    // descriptions, and a protocol number.
    let doc = h
        .ok(&[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupId", &web),
            ("IpPermissions.1.IpProtocol", "6"),
            ("IpPermissions.1.FromPort", "443"),
            ("IpPermissions.1.ToPort", "443"),
            ("IpPermissions.1.IpRanges.1.CidrIp", "192.168.0.0/16"),
            ("IpPermissions.1.IpRanges.1.Description", "office"),
            ("IpPermissions.1.Ipv6Ranges.1.CidrIpv6", "::/0"),
            ("IpPermissions.1.Groups.1.GroupName", "default"),
            ("IpPermissions.2.IpProtocol", "icmp"),
            ("IpPermissions.2.FromPort", "8"),
            ("IpPermissions.2.ToPort", "-1"),
            ("IpPermissions.2.UserIdGroupPairs.1.GroupId", &web),
        ])
        .await;
    let rules = doc.items("securityGroupRuleSet");
    assert_eq!(rules.len(), 4);
    assert_eq!(rules[0].text_at("description"), "office");
    assert_eq!(rules[1].text_at("cidrIpv6"), "::/0");
    assert_eq!(
        rules[2].text_at("referencedGroupInfo/groupId"),
        default_id,
        "a peer named by name is stored by id"
    );
    assert_eq!(rules[3].text_at("ipProtocol"), "icmp");
    assert_eq!(rules[3].text_at("fromPort"), "8");

    let g = h.group("web").await;
    let ingress = g.items("ipPermissions");
    let protocols: Vec<_> = ingress.iter().map(|p| p.text_at("ipProtocol")).collect();
    assert_eq!(protocols, vec!["udp", "-1", "tcp", "icmp"]);
    let https = ingress[2];
    assert_eq!(https.text_at("ipRanges/item/description"), "office");
    assert_eq!(https.text_at("ipv6Ranges/item/cidrIpv6"), "::/0");
    assert_eq!(https.text_at("groups/item/groupId"), default_id);
    assert_eq!(ingress[1].text_at("groups/item/groupId"), default_id);
    // A new VPC group starts with the allow-all egress rule only.
    let egress = g.items("ipPermissionsEgress");
    assert_eq!(egress.len(), 1);
    assert_eq!(egress[0].text_at("ipRanges/item/cidrIp"), "0.0.0.0/0");

    // Egress rules, and duplicates there.
    h.ok(&[
        ("Action", "AuthorizeSecurityGroupEgress"),
        ("GroupId", &web),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "5432"),
        ("IpPermissions.1.ToPort", "5432"),
        ("IpPermissions.1.IpRanges.1.CidrIp", "10.1.0.0/16"),
    ])
    .await;
    let e = h
        .post(&[
            ("Action", "AuthorizeSecurityGroupEgress"),
            ("GroupId", &web),
            ("IpPermissions.1.IpProtocol", "-1"),
            ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
        ])
        .await
        .err("InvalidPermission.Duplicate");
    assert_eq!(
        e,
        "the specified rule \"peer: 0.0.0.0/0, ALL, ALLOW\" already exists"
    );
    assert_eq!(h.group("web").await.items("ipPermissionsEgress").len(), 2);
}

#[tokio::test]
async fn authorize_errors_use_aws_codes_and_messages() {
    let h = Harness::new();
    let vpc = default_vpc_id(&h, "us-east-1").await;
    let authorize = |extra: Vec<(&'static str, &'static str)>| {
        let mut params = vec![("Action", "AuthorizeSecurityGroupIngress")];
        params.extend(extra);
        params
    };
    let port = |group: &'static str| {
        vec![
            ("GroupId", group),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "80"),
            ("IpPermissions.1.ToPort", "80"),
        ]
    };
    let cases: Vec<Case> = vec![
        (
            authorize(port("nope")),
            "InvalidGroup.NotFound",
            format!("The security group 'nope' does not exist in default VPC '{vpc}'"),
        ),
        (
            authorize(port("sg-0123456789abcdef0")),
            "InvalidGroup.NotFound",
            "The security group 'sg-0123456789abcdef0' does not exist".to_string(),
        ),
        (
            authorize(port("sg-zzz")),
            "InvalidGroupId.Malformed",
            "Invalid id: \"sg-zzz\" (expecting \"sg-...\")".to_string(),
        ),
        (
            authorize(vec![("GroupId", "default")]),
            "MissingParameter",
            "The request must contain the parameter IpPermissions".to_string(),
        ),
        (
            authorize(vec![
                ("GroupId", "default"),
                ("IpPermissions.1.IpProtocol", "tcp"),
                ("IpPermissions.1.FromPort", "80"),
            ]),
            "InvalidParameterValue",
            "Invalid value for portRange. Must specify both from and to ports with TCP/UDP."
                .to_string(),
        ),
        (
            authorize(vec![
                ("GroupId", "default"),
                ("IpPermissions.1.IpProtocol", "tcp"),
                ("IpPermissions.1.FromPort", "90"),
                ("IpPermissions.1.ToPort", "80"),
            ]),
            "InvalidParameterValue",
            "Invalid TCP/UDP port range.".to_string(),
        ),
        (
            authorize(vec![
                ("GroupId", "default"),
                ("IpPermissions.1.IpProtocol", "gopher"),
            ]),
            "InvalidParameterValue",
            "Invalid value 'gopher' for IP protocol. Unknown protocol.".to_string(),
        ),
        (
            authorize(vec![
                ("GroupId", "default"),
                ("IpProtocol", "tcp"),
                ("FromPort", "80"),
                ("ToPort", "80"),
                ("CidrIp", "10.0.0.0/33"),
            ]),
            "InvalidParameterValue",
            "Value (10.0.0.0/33) for parameter cidrIp is invalid. This is not a valid CIDR block."
                .to_string(),
        ),
        (
            authorize(vec![
                ("GroupId", "default"),
                ("IpPermissions.1.IpProtocol", "-1"),
                ("IpPermissions.1.Groups.1.GroupName", "ghost"),
            ]),
            "InvalidGroup.NotFound",
            format!("The security group 'ghost' does not exist in default VPC '{vpc}'"),
        ),
    ];
    for (params, code, message) in cases {
        assert_eq!(h.post(&params).await.err(code), message, "{params:?}");
    }
    assert_eq!(
        h.group("default").await.items("ipPermissions").len(),
        1,
        "no failed call changed the group"
    );
    let reply = h
        .post(&[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupId", "default"),
            ("IpProtocol", "tcp"),
            ("FromPort", "80"),
            ("ToPort", "80"),
            ("DryRun", "true"),
        ])
        .await;
    assert_eq!(reply.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(h.group("default").await.items("ipPermissions").len(), 1);
}

#[tokio::test]
async fn revoke_removes_exactly_the_named_rules() {
    let h = Harness::new();
    let doc = h
        .open_port("default", "tcp", "8080", "8080")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    let rule_id = doc
        .text_at("securityGroupRuleSet/item/securityGroupRuleId")
        .to_string();
    h.open_port("default", "udp", "5000", "5001")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    assert_eq!(h.group("default").await.items("ipPermissions").len(), 3);

    // The CLI form without --cidr revokes what it authorized.
    let revoke_8080 = [
        ("Action", "RevokeSecurityGroupIngress"),
        ("GroupId", "default"),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "8080"),
        ("IpPermissions.1.ToPort", "8080"),
    ];
    let doc = h.ok(&revoke_8080).await;
    assert_eq!(doc.text_at("return"), "true");
    let protocols: Vec<String> = h
        .group("default")
        .await
        .items("ipPermissions")
        .iter()
        .map(|p| p.text_at("ipProtocol").to_string())
        .collect();
    assert_eq!(protocols, vec!["-1", "udp"]);
    let e = h.post(&revoke_8080).await.err("InvalidPermission.NotFound");
    assert_eq!(
        e,
        "The specified rule does not exist in this security group."
    );
    // By rule id: the id Authorize answered names the rule until it is gone. Authorized
    // again, the same rule has a new id, as in EC2: the revoked one names nothing.
    let again = h
        .open_port("default", "tcp", "8080", "8080")
        .await
        .ok("AuthorizeSecurityGroupIngress")
        .text_at("securityGroupRuleSet/item/securityGroupRuleId")
        .to_string();
    assert_ne!(again, rule_id);
    h.post(&[
        ("Action", "RevokeSecurityGroupIngress"),
        ("GroupId", "default"),
        ("SecurityGroupRuleId.1", &rule_id),
    ])
    .await
    .err("InvalidSecurityGroupRuleId.NotFound");
    let rule_id = again;
    h.ok(&[
        ("Action", "RevokeSecurityGroupIngress"),
        ("GroupId", "default"),
        ("SecurityGroupRuleId.1", &rule_id),
    ])
    .await;
    let e = h
        .post(&[
            ("Action", "RevokeSecurityGroupIngress"),
            ("GroupId", "default"),
            ("SecurityGroupRuleId.1", &rule_id),
        ])
        .await
        .err("InvalidSecurityGroupRuleId.NotFound");
    assert_eq!(
        e,
        format!("The security group rule ID '{rule_id}' does not exist")
    );
    // Top-level form, egress: the default allow-all rule can be revoked and re-added.
    h.ok(&[
        ("Action", "RevokeSecurityGroupEgress"),
        ("GroupId", "default"),
        ("IpProtocol", "-1"),
        ("CidrIp", "0.0.0.0/0"),
    ])
    .await;
    assert!(h
        .group("default")
        .await
        .items("ipPermissionsEgress")
        .is_empty());
    h.ok(&[
        ("Action", "AuthorizeSecurityGroupEgress"),
        ("GroupId", "default"),
        ("IpPermissions.1.IpProtocol", "-1"),
        ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
    ])
    .await;
    assert_eq!(
        h.group("default").await.items("ipPermissionsEgress").len(),
        1
    );
    // A revoke naming one missing rule removes nothing.
    h.post(&[
        ("Action", "RevokeSecurityGroupIngress"),
        ("GroupId", "default"),
        ("IpPermissions.1.IpProtocol", "udp"),
        ("IpPermissions.1.FromPort", "5000"),
        ("IpPermissions.1.ToPort", "5001"),
        ("IpPermissions.2.IpProtocol", "tcp"),
        ("IpPermissions.2.FromPort", "1"),
        ("IpPermissions.2.ToPort", "1"),
    ])
    .await
    .err("InvalidPermission.NotFound");
    assert_eq!(h.group("default").await.items("ipPermissions").len(), 2);
}

#[tokio::test]
async fn create_and_delete_security_groups() {
    let h = Harness::new();
    let vpc = default_vpc_id(&h, "us-east-1").await;
    let doc = h
        .ok(&[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", "web"),
            ("GroupDescription", "web servers"),
            ("VpcId", &vpc),
            ("TagSpecification.1.ResourceType", "security-group"),
            ("TagSpecification.1.Tag.1.Key", "team"),
            ("TagSpecification.1.Tag.1.Value", "platform"),
        ])
        .await;
    assert_eq!(doc.text_at("return"), "true");
    let web = doc.text_at("groupId").to_string();
    assert!(web.starts_with("sg-") && web.len() == 20, "{web}");
    assert_eq!(doc.text_at("tagSet/item/key"), "team");
    let g = h.group("web").await;
    assert_eq!(g.text_at("groupId"), web);
    assert_eq!(g.text_at("groupDescription"), "web servers");
    assert_eq!(g.text_at("vpcId"), vpc);
    assert!(g.items("ipPermissions").is_empty());
    assert_eq!(g.text_at("tagSet/item/value"), "platform");
    assert_eq!(
        g.text_at("securityGroupArn"),
        format!("arn:aws:ec2:us-east-1:000000000000:security-group/{web}")
    );

    let create = |name: &'static str, vpc: &str| {
        vec![
            ("Action", "CreateSecurityGroup"),
            ("GroupName", name),
            ("GroupDescription", "d"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain((!vpc.is_empty()).then(|| ("VpcId".to_string(), vpc.to_string())))
        .collect::<Vec<_>>()
    };
    let send = |params: Vec<(String, String)>| {
        let h = &h;
        async move {
            let borrowed: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            h.post(&borrowed).await
        }
    };
    let e = send(create("web", "")).await.err("InvalidGroup.Duplicate");
    assert_eq!(
        e,
        format!("The security group 'web' already exists for VPC '{vpc}'")
    );
    let e = send(create("default", ""))
        .await
        .err("InvalidGroup.Reserved");
    assert_eq!(e, "The security group 'default' is reserved");
    let e = send(create("db", "vpc-0123456789abcdef0"))
        .await
        .err("InvalidVpcID.NotFound");
    assert_eq!(e, "The vpc ID 'vpc-0123456789abcdef0' does not exist");
    let e = send(create("sg-db", "")).await.err("InvalidParameterValue");
    assert_eq!(e, "Group names may not be in the format sg-*.");
    let e = h
        .post(&[("Action", "CreateSecurityGroup"), ("GroupName", "db")])
        .await
        .err("MissingParameter");
    assert_eq!(e, "The request must contain the parameter GroupDescription");
    // An empty description reads as none; one outside EC2's set has EC2's own wording.
    for (description, code, message) in [
        (
            "",
            "MissingParameter",
            "The request must contain the parameter GroupDescription",
        ),
        (
            "d\u{e9}j\u{e0} vu",
            "InvalidParameterValue",
            "Invalid security group description. Valid descriptions are strings less than 256 \
             characters from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*",
        ),
    ] {
        let params = [
            ("Action", "CreateSecurityGroup"),
            ("GroupName", "db"),
            ("GroupDescription", description),
        ];
        assert_eq!(h.post(&params).await.err(code), message);
    }
    h.refuses_tag_type(
        &[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", "db"),
            ("GroupDescription", "d"),
        ],
        "instance",
    )
    .await;
    assert_eq!(h.groups_in("us-east-1"), 2, "default and web only");

    // Delete by name; it is gone by name and by id, in AWS's two wordings.
    let doc = h
        .ok(&[("Action", "DeleteSecurityGroup"), ("GroupName", "web")])
        .await;
    assert_eq!(doc.text_at("return"), "true");
    assert_eq!(doc.text_at("groupId"), web);
    let e = h
        .post(&[("Action", "DescribeSecurityGroups"), ("GroupName.1", "web")])
        .await
        .err("InvalidGroup.NotFound");
    assert_eq!(
        e,
        format!("The security group 'web' does not exist in default VPC '{vpc}'")
    );
    let e = h
        .post(&[("Action", "DescribeSecurityGroups"), ("GroupId.1", &web)])
        .await
        .err("InvalidGroup.NotFound");
    assert_eq!(e, format!("The security group '{web}' does not exist"));
    let e = h
        .post(&[("Action", "DeleteSecurityGroup"), ("GroupId", &web)])
        .await
        .err("InvalidGroup.NotFound");
    assert_eq!(e, format!("The security group '{web}' does not exist"));
    // The name is free again, under a new id.
    let again = h.create_group("web").await;
    assert_ne!(again, web);

    // `default` can never be deleted.
    let default_id = h.group("default").await.text_at("groupId").to_string();
    let e = h
        .post(&[("Action", "DeleteSecurityGroup"), ("GroupId", "default")])
        .await
        .err("CannotDelete");
    assert_eq!(
        e,
        format!(
            "the specified group: \"{default_id}\" name: \"default\" cannot be deleted by a user"
        )
    );
}

#[tokio::test]
async fn groups_in_use_cannot_be_deleted() {
    let h = Harness::new();
    let web = h.create_group("web").await;
    let id = h.launch(&[("SecurityGroupId.1", &web)]).await;
    let e = h
        .post(&[("Action", "DeleteSecurityGroup"), ("GroupId", &web)])
        .await
        .err("DependencyViolation");
    assert_eq!(e, format!("resource {web} has a dependent object"));
    // Shutting down still depends on it; terminated does not.
    h.ok(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await;
    h.post(&[("Action", "DeleteSecurityGroup"), ("GroupId", &web)])
        .await
        .err("DependencyViolation");
    h.terminate(&id).await;

    // Another group's rule naming it is a dependency too.
    let app = h.create_group("app").await;
    h.ok(&[
        ("Action", "AuthorizeSecurityGroupIngress"),
        ("GroupId", &app),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "80"),
        ("IpPermissions.1.ToPort", "80"),
        ("IpPermissions.1.Groups.1.GroupId", &web),
    ])
    .await;
    let e = h
        .post(&[("Action", "DeleteSecurityGroup"), ("GroupName", "web")])
        .await
        .err("DependencyViolation");
    assert_eq!(e, format!("resource {web} has a dependent object"));
    h.ok(&[("Action", "DeleteSecurityGroup"), ("GroupName", "app")])
        .await;
    let reply = h
        .post(&[
            ("Action", "DeleteSecurityGroup"),
            ("GroupName", "web"),
            ("DryRun", "true"),
        ])
        .await;
    assert_eq!(reply.status, StatusCode::PRECONDITION_FAILED);
    h.ok(&[("Action", "DeleteSecurityGroup"), ("GroupName", "web")])
        .await;
    assert_eq!(h.groups_in("us-east-1"), 1);
}

#[tokio::test]
async fn describe_security_groups_filters_and_pages() {
    let h = Harness::new();
    let vpc = default_vpc_id(&h, "us-east-1").await;
    h.ok(&[
        ("Action", "CreateSecurityGroup"),
        ("GroupName", "web"),
        ("GroupDescription", "web servers"),
        ("TagSpecification.1.ResourceType", "security-group"),
        ("TagSpecification.1.Tag.1.Key", "team"),
        ("TagSpecification.1.Tag.1.Value", "blue"),
    ])
    .await;
    h.create_group("db").await;
    h.ok(&[
        ("Action", "AuthorizeSecurityGroupIngress"),
        ("GroupName", "web"),
        ("IpProtocol", "tcp"),
        ("FromPort", "80"),
        ("ToPort", "81"),
        ("CidrIp", "10.0.0.0/8"),
    ])
    .await;
    h.ok(&[
        ("Action", "AuthorizeSecurityGroupIngress"),
        ("GroupName", "db"),
        ("SourceSecurityGroupName", "web"),
    ])
    .await;
    assert_eq!(group_names(&h, &[]).await, vec!["db", "default", "web"]);
    assert_eq!(
        group_names(&h, &[("group-name", "d*")]).await,
        vec!["db", "default"]
    );
    assert_eq!(
        group_names(&h, &[("description", "web *")]).await,
        vec!["web"]
    );
    assert_eq!(group_names(&h, &[("tag:team", "blue")]).await, vec!["web"]);
    assert_eq!(group_names(&h, &[("tag-key", "team")]).await, vec!["web"]);
    assert_eq!(
        group_names(&h, &[("ip-permission.from-port", "80")]).await,
        vec!["web"]
    );
    assert_eq!(
        group_names(&h, &[("ip-permission.to-port", "81")]).await,
        vec!["web"]
    );
    assert_eq!(
        group_names(&h, &[("ip-permission.cidr", "10.0.0.0/8")]).await,
        vec!["web"]
    );
    assert_eq!(
        group_names(&h, &[("ip-permission.protocol", "-1")]).await,
        vec!["db", "default"]
    );
    assert_eq!(
        group_names(&h, &[("ip-permission.group-name", "web")]).await,
        vec!["db"]
    );
    assert_eq!(
        group_names(&h, &[("egress.ip-permission.cidr", "0.0.0.0/0")]).await,
        vec!["db", "default", "web"]
    );
    assert_eq!(
        group_names(
            &h,
            &[("ip-permission.protocol", "-1"), ("group-name", "db")]
        )
        .await,
        vec!["db"],
        "names are ANDed"
    );
    assert_eq!(group_names(&h, &[("vpc-id", &vpc)]).await.len(), 3);
    assert!(group_names(&h, &[("owner-id", "1")]).await.is_empty());
    let e = h
        .post(&[
            ("Action", "DescribeSecurityGroups"),
            ("Filter.1.Name", "flavour"),
            ("Filter.1.Value.1", "x"),
        ])
        .await
        .err("InvalidParameterValue");
    assert_eq!(e, "The filter 'flavour' is invalid");

    // Paging: 3 + 4 groups in pages of 5.
    for name in ["a1", "a2", "a3", "a4"] {
        h.create_group(name).await;
    }
    let first = h
        .ok(&[("Action", "DescribeSecurityGroups"), ("MaxResults", "5")])
        .await;
    assert_eq!(first.items("securityGroupInfo").len(), 5);
    let token = first.text_at("nextToken").to_string();
    let second = h
        .ok(&[
            ("Action", "DescribeSecurityGroups"),
            ("MaxResults", "5"),
            ("NextToken", &token),
        ])
        .await;
    assert_eq!(second.items("securityGroupInfo").len(), 2);
    assert!(!second.has("nextToken"));
    let mut seen: Vec<String> = first
        .items("securityGroupInfo")
        .iter()
        .chain(second.items("securityGroupInfo").iter())
        .map(|g| g.text_at("groupId").to_string())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7, "every group exactly once");
}

// ---------------------------------------------------------------------------------------------
// RunInstances: groups, subnet, ports

#[tokio::test]
async fn run_instances_launches_into_the_default_group_and_subnet() {
    let h = Harness::new();
    let vpc = default_vpc_id(&h, "us-east-1").await;
    let subnet_a = subnet_of(&h, "us-east-1a").await;
    let doc = h.run_in("us-east-1", &[]).await.ok("RunInstances");
    let item = doc.path("instancesSet/item");
    let id = item.text_at("instanceId").to_string();
    let default_id = h.group("default").await.text_at("groupId").to_string();
    assert_eq!(item.text_at("vpcId"), vpc);
    assert_eq!(item.text_at("subnetId"), subnet_a);
    assert_eq!(item.text_at("placement/availabilityZone"), "us-east-1a");
    let groups = item.items("groupSet");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].text_at("groupId"), default_id);
    assert_eq!(groups[0].text_at("groupName"), "default");
    let eni = item.path("networkInterfaceSet/item");
    assert!(eni.text_at("networkInterfaceId").starts_with("eni-"));
    assert_eq!(eni.text_at("subnetId"), subnet_a);
    assert_eq!(eni.text_at("vpcId"), vpc);
    assert_eq!(eni.text_at("groupSet/item/groupId"), default_id);
    assert_eq!(eni.text_at("attachment/deviceIndex"), "0");
    assert!(!item.has("keyName"), "no key, no keyName");

    let stored = h.instance(&id);
    assert_eq!(stored.spec.vpc_id.as_deref(), Some(vpc.as_str()));
    assert_eq!(stored.spec.subnet_id.as_deref(), Some(subnet_a.as_str()));
    assert_eq!(stored.spec.security_groups.len(), 1);
    assert_eq!(stored.spec.security_groups[0].group_id, default_id);
    assert_eq!(stored.spec.ports, vec![tcp(22)], "22/tcp always");
    assert_eq!(stored.spec.user_data, None);
    assert_eq!(stored.spec.client_token, None);

    // DescribeInstances shows the same, and the interface keeps its id.
    let described = h
        .ok(&[("Action", "DescribeInstances"), ("InstanceId.1", &id)])
        .await;
    let again = described.path("reservationSet/item/instancesSet/item");
    assert_eq!(again.text_at("subnetId"), subnet_a);
    assert_eq!(
        again.text_at("networkInterfaceSet/item/networkInterfaceId"),
        eni.text_at("networkInterfaceId")
    );

    // A subnet fixes the zone; a zone picks its default subnet.
    let subnet_b = subnet_of(&h, "us-east-1b").await;
    let doc = h
        .run_in("us-east-1", &[("SubnetId", &subnet_b)])
        .await
        .ok("RunInstances");
    assert_eq!(
        doc.text_at("instancesSet/item/placement/availabilityZone"),
        "us-east-1b"
    );
    let subnet_c = subnet_of(&h, "us-east-1c").await;
    let doc = h
        .run_in("us-east-1", &[("Placement.AvailabilityZone", "us-east-1c")])
        .await
        .ok("RunInstances");
    assert_eq!(doc.text_at("instancesSet/item/subnetId"), subnet_c);
    // Through a network interface, as some SDK users launch.
    let doc = h
        .run_in(
            "us-east-1",
            &[
                ("NetworkInterface.1.DeviceIndex", "0"),
                ("NetworkInterface.1.SubnetId", &subnet_c),
                ("NetworkInterface.1.SecurityGroupId.1", "default"),
            ],
        )
        .await
        .ok("RunInstances");
    assert_eq!(doc.text_at("instancesSet/item/subnetId"), subnet_c);
}

#[tokio::test]
async fn run_instances_resolves_groups_by_id_or_name_and_publishes_their_ports() {
    let h = Harness::new();
    let web = h.create_group("web").await;
    h.open_port("web", "tcp", "8080", "8080")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    h.open_port("web", "udp", "5000", "5002")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    h.open_port("web", "tcp", "22", "22")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    // ICMP and all-traffic rules publish nothing.
    h.ok(&[
        ("Action", "AuthorizeSecurityGroupIngress"),
        ("GroupId", &web),
        ("IpPermissions.1.IpProtocol", "icmp"),
        ("IpPermissions.1.FromPort", "-1"),
        ("IpPermissions.1.ToPort", "-1"),
        ("IpPermissions.2.IpProtocol", "-1"),
        ("IpPermissions.2.IpRanges.1.CidrIp", "10.0.0.0/8"),
    ])
    .await;
    h.open_port("default", "tcp", "8080", "8081")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    let default_id = h.group("default").await.text_at("groupId").to_string();

    // SecurityGroupId.N takes names, SecurityGroup.N takes ids; duplicates collapse.
    let doc = h
        .run_in(
            "us-east-1",
            &[
                ("SecurityGroupId.1", "web"),
                ("SecurityGroup.1", &default_id),
                ("SecurityGroup.2", "web"),
            ],
        )
        .await
        .ok("RunInstances");
    let item = doc.path("instancesSet/item");
    let shown = item.pairs("groupSet", "groupId", "groupName");
    assert_eq!(
        shown,
        vec![
            (web.clone(), "web".to_string()),
            (default_id.clone(), "default".to_string())
        ]
    );
    let stored = h.instance(item.text_at("instanceId"));
    assert_eq!(
        stored.spec.ports,
        vec![
            tcp(22),
            udp(5000),
            udp(5001),
            udp(5002),
            tcp(8080),
            tcp(8081)
        ]
    );
}

#[tokio::test]
async fn ports_are_fixed_at_launch_and_rule_changes_reach_only_later_launches() {
    let h = Harness::new();
    let first = h.launch(&[]).await;
    let before = h.instance(&first);
    assert_eq!(before.spec.ports, vec![tcp(22)]);

    h.open_port("default", "tcp", "8080", "8080")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    assert_eq!(
        h.instance(&first),
        before,
        "authorize never touches instances"
    );
    let second = h.launch(&[]).await;
    assert_eq!(h.instance(&second).spec.ports, vec![tcp(22), tcp(8080)]);

    h.ok(&[
        ("Action", "RevokeSecurityGroupIngress"),
        ("GroupId", "default"),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "8080"),
        ("IpPermissions.1.ToPort", "8080"),
    ])
    .await;
    assert_eq!(h.instance(&first), before);
    assert_eq!(
        h.instance(&second).spec.ports,
        vec![tcp(22), tcp(8080)],
        "revoke never touches instances"
    );
    assert_eq!(h.instance(&second).metadata.generation, 1);
    let third = h.launch(&[]).await;
    assert_eq!(h.instance(&third).spec.ports, vec![tcp(22)]);
}

#[tokio::test]
async fn more_than_32_ports_are_refused_never_cut() {
    let h = Harness::new();
    h.create_group("wide").await;
    // 1000-1030 is 31 ports; with 22/tcp exactly 32.
    h.open_port("wide", "tcp", "1000", "1030")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    let id = h.launch(&[("SecurityGroupId.1", "wide")]).await;
    assert_eq!(h.instance(&id).spec.ports.len(), 32);

    h.open_port("wide", "udp", "1000", "1000")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    let e = h
        .run_in("us-east-1", &[("SecurityGroupId.1", "wide")])
        .await
        .err("InvalidParameterValue");
    assert_eq!(
        e,
        "The security groups of this launch publish 33 ports (22/tcp included), more than the 32 an instance can publish; narrow the TCP/UDP port ranges of their ingress rules"
    );
    // Every port of a range counts: all ports is 65535 (port 0 is not published).
    h.open_port("default", "tcp", "0", "65535")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    let e = h
        .run_in("us-east-1", &[])
        .await
        .err("InvalidParameterValue");
    assert!(e.contains("publish 65535 ports"), "{e}");
    assert_eq!(
        h.store.instances().len(),
        1,
        "refused launches write nothing"
    );
}

#[tokio::test]
async fn run_instances_network_errors() {
    let h = Harness::new();
    let vpc = default_vpc_id(&h, "us-east-1").await;
    let subnet_a = subnet_of(&h, "us-east-1a").await;
    let cases: Vec<Case> = vec![
        (
            vec![("SecurityGroupId.1", "sg-0123456789abcdef0")],
            "InvalidGroup.NotFound",
            "The security group 'sg-0123456789abcdef0' does not exist".to_string(),
        ),
        (
            vec![("SecurityGroup.1", "ghost")],
            "InvalidGroup.NotFound",
            format!("The security group 'ghost' does not exist in default VPC '{vpc}'"),
        ),
        (
            vec![("SecurityGroupId.1", "sg-xyz")],
            "InvalidGroupId.Malformed",
            "Invalid id: \"sg-xyz\" (expecting \"sg-...\")".to_string(),
        ),
        (
            vec![("SubnetId", "subnet-0000")],
            "InvalidSubnetID.NotFound",
            "The subnet ID 'subnet-0000' does not exist".to_string(),
        ),
        (
            vec![
                ("SubnetId", subnet_a.as_str()),
                ("Placement.AvailabilityZone", "us-east-1b"),
            ],
            "InvalidParameterValue",
            format!("The subnet '{subnet_a}' is in availability zone us-east-1a, not us-east-1b"),
        ),
        (
            vec![
                ("SubnetId", subnet_a.as_str()),
                ("NetworkInterface.1.SubnetId", subnet_a.as_str()),
            ],
            "InvalidParameterCombination",
            "Network interfaces and an instance-level subnet ID may not be specified on the same request"
                .to_string(),
        ),
        (
            vec![("KeyName", "nobody")],
            "InvalidKeyPair.NotFound",
            "The key pair 'nobody' does not exist".to_string(),
        ),
    ];
    for (extra, code, message) in cases {
        assert_eq!(
            h.run_in("us-east-1", &extra).await.err(code),
            message,
            "{extra:?}"
        );
    }
    assert_eq!(
        h.store.instances().len(),
        0,
        "no failed call wrote anything"
    );
}

// ---------------------------------------------------------------------------------------------
// RunInstances: key pair, user data, client token

#[tokio::test]
async fn key_name_copies_the_public_key_into_the_instance() {
    let h = Harness::new();
    let line = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap();
    h.ok(&[
        ("Action", "ImportKeyPair"),
        ("KeyName", "alice"),
        ("PublicKeyMaterial", &STANDARD.encode(&line)),
    ])
    .await;
    let script = "#!/bin/sh\n    whoami | tee /myname";
    // awslocal ec2 run-instances --image-id ami-000001 --key-name alice --user-data '<script>'
    // (the CLI sends the user data base64-encoded)
    let doc = h
        .run_in(
            "us-east-1",
            &[("KeyName", "alice"), ("UserData", &STANDARD.encode(script))],
        )
        .await
        .ok("RunInstances");
    let item = doc.path("instancesSet/item");
    assert_eq!(item.text_at("keyName"), "alice");
    let stored = h.instance(item.text_at("instanceId"));
    assert_eq!(stored.spec.key_name.as_deref(), Some("alice"));
    let key = stored.spec.public_key.expect("public key copied");
    assert!(
        key.starts_with(
            line.split(' ')
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
                .as_str()
        ),
        "{key} vs {line}"
    );
    assert_eq!(stored.spec.user_data, Some(STANDARD.encode(script)));

    // The key pair can go; the instance keeps its copy.
    h.ok(&[("Action", "DeleteKeyPair"), ("KeyName", "alice")])
        .await;
    assert_eq!(
        h.instance(item.text_at("instanceId")).spec.public_key,
        Some(key)
    );
}

#[tokio::test]
async fn user_data_base64_raw_text_and_the_16_kb_limit() {
    let h = Harness::new();
    let attribute = |id: String| {
        let h = &h;
        async move {
            h.ok(&[
                ("Action", "DescribeInstanceAttribute"),
                ("InstanceId", &id),
                ("Attribute", "userData"),
            ])
            .await
        }
    };
    let script = "#!/bin/sh\necho hello > /tmp/hi\n";
    let b64 = STANDARD.encode(script);
    let id = h.launch(&[("UserData", &b64)]).await;
    assert_eq!(
        h.instance(&id).spec.user_data.as_deref(),
        Some(b64.as_str())
    );
    assert_eq!(attribute(id).await.text_at("userData/value"), b64);

    // Raw text, as some Terraform versions send it, is stored base64-encoded.
    let id = h.launch(&[("UserData", script)]).await;
    assert_eq!(
        h.instance(&id).spec.user_data.as_deref(),
        Some(b64.as_str())
    );

    // The limit is on the decoded bytes.
    let max = STANDARD.encode(vec![b'#'; 16384]);
    let id = h.launch(&[("UserData", &max)]).await;
    assert_eq!(
        h.instance(&id).spec.user_data.as_deref(),
        Some(max.as_str())
    );
    let over = STANDARD.encode(vec![b'#'; 16385]);
    let e = h
        .run_in("us-east-1", &[("UserData", &over)])
        .await
        .err("InvalidParameterValue");
    assert_eq!(e, "User data is limited to 16384 bytes");
    let e = h
        .run_in("us-east-1", &[("UserData", &"#".repeat(16385))])
        .await
        .err("InvalidParameterValue");
    assert_eq!(e, "User data is limited to 16384 bytes");

    // No user data: an empty element.
    let id = h.launch(&[]).await;
    let doc = attribute(id).await;
    assert!(doc.has("userData") && !doc.has("userData/value"));
}

#[tokio::test]
async fn client_token_makes_run_instances_idempotent_per_region() {
    let h = Harness::new();
    let token = [
        ("ClientToken", "deploy-42"),
        ("MinCount", "2"),
        ("MaxCount", "2"),
    ];
    let mut params = vec![("Action", "RunInstances"), ("ImageId", AMI)];
    params.extend_from_slice(&token);
    let first = h.ok(&params).await;
    let ids = |doc: &Node| -> Vec<String> {
        doc.items("instancesSet")
            .iter()
            .map(|i| i.text_at("instanceId").to_string())
            .collect()
    };
    let second = h.ok(&params).await;
    assert_eq!(
        second.text_at("reservationId"),
        first.text_at("reservationId")
    );
    assert_eq!(ids(&second), ids(&first));
    assert_eq!(h.store.instances().len(), 2, "the retry created nothing");
    assert_eq!(first.text_at("instancesSet/item/clientToken"), "deploy-42");
    assert_eq!(
        h.instance(&ids(&first)[0]).spec.client_token.as_deref(),
        Some("deploy-42")
    );
    // The same token in another region is another launch.
    let other = h.post_in("eu-west-1", &params).await.ok("RunInstances");
    assert_ne!(ids(&other), ids(&first));
    assert_eq!(h.store.instances().len(), 4);
    // Reusing the token for something else is refused.
    let e = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-000002"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("ClientToken", "deploy-42"),
        ])
        .await
        .err("IdempotentParameterMismatch");
    assert_eq!(
        e,
        "Arguments on this idempotent request are inconsistent with arguments used in previous request(s)."
    );
    // DescribeInstances finds them by token.
    let doc = h
        .ok(&[
            ("Action", "DescribeInstances"),
            ("Filter.1.Name", "client-token"),
            ("Filter.1.Value.1", "deploy-42"),
        ])
        .await;
    assert_eq!(
        doc.items("reservationSet/item/instancesSet").len(),
        2,
        "us-east-1's two only"
    );
}

// ---------------------------------------------------------------------------------------------
// DescribeInstances filters, DescribeInstanceAttribute, regions

#[tokio::test]
async fn describe_instances_network_filters() {
    let h = Harness::new();
    let web = h.create_group("web").await;
    let line = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap();
    h.ok(&[
        ("Action", "ImportKeyPair"),
        ("KeyName", "alice"),
        ("PublicKeyMaterial", &STANDARD.encode(&line)),
    ])
    .await;
    let subnet_b = subnet_of(&h, "us-east-1b").await;
    let plain = h.launch(&[]).await;
    let tuned = h
        .launch(&[
            ("SecurityGroupId.1", &web),
            ("SubnetId", &subnet_b),
            ("KeyName", "alice"),
        ])
        .await;
    let vpc = default_vpc_id(&h, "us-east-1").await;
    let found = |name: &'static str, value: String| {
        let h = &h;
        async move {
            let doc = h
                .ok(&[
                    ("Action", "DescribeInstances"),
                    ("Filter.1.Name", name),
                    ("Filter.1.Value.1", &value),
                ])
                .await;
            let mut ids: Vec<String> = doc
                .items("reservationSet")
                .iter()
                .flat_map(|r| r.items("instancesSet"))
                .map(|i| i.text_at("instanceId").to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    let mut both = vec![plain.clone(), tuned.clone()];
    both.sort();
    assert_eq!(found("vpc-id", vpc.clone()).await, both);
    assert_eq!(
        found("subnet-id", subnet_b.clone()).await,
        vec![tuned.clone()]
    );
    assert_eq!(found("key-name", "alice".into()).await, vec![tuned.clone()]);
    assert_eq!(found("group-id", web.clone()).await, vec![tuned.clone()]);
    assert_eq!(
        found("instance.group-id", web.clone()).await,
        vec![tuned.clone()]
    );
    assert_eq!(found("group-name", "web".into()).await, vec![tuned.clone()]);
    assert_eq!(
        found("instance.group-name", "default".into()).await,
        vec![plain.clone()]
    );
    assert_eq!(
        found("network-interface.subnet-id", subnet_b).await,
        vec![tuned.clone()]
    );
    assert!(found("vpc-id", "vpc-other".into()).await.is_empty());
}

#[tokio::test]
async fn describe_instance_attribute_answers_each_attribute() {
    let h = Harness::new();
    let web = h.create_group("web").await;
    let id = h
        .launch(&[
            ("InstanceType", "t3.nano"),
            ("InstanceInitiatedShutdownBehavior", "terminate"),
            ("SecurityGroupId.1", &web),
        ])
        .await;
    let attribute = |name: &'static str| {
        let h = &h;
        let id = id.clone();
        async move {
            let doc = h
                .ok(&[
                    ("Action", "DescribeInstanceAttribute"),
                    ("InstanceId", &id),
                    ("Attribute", name),
                ])
                .await;
            assert_eq!(doc.text_at("instanceId"), id);
            assert_eq!(doc.names(), vec!["requestId", "instanceId", name]);
            doc
        }
    };
    assert_eq!(
        attribute("instanceType")
            .await
            .text_at("instanceType/value"),
        "t3.nano"
    );
    assert_eq!(
        attribute("instanceInitiatedShutdownBehavior")
            .await
            .text_at("instanceInitiatedShutdownBehavior/value"),
        "terminate"
    );
    assert_eq!(
        attribute("disableApiTermination")
            .await
            .text_at("disableApiTermination/value"),
        "false"
    );
    assert_eq!(
        attribute("rootDeviceName")
            .await
            .text_at("rootDeviceName/value"),
        "/dev/sda1"
    );
    let groups = attribute("groupSet").await;
    assert_eq!(groups.text_at("groupSet/item/groupId"), web);
    assert_eq!(groups.text_at("groupSet/item/groupName"), "web");
    for empty in ["kernel", "ramdisk", "userData"] {
        let doc = attribute(empty).await;
        assert!(doc.path(empty).children.is_empty(), "{empty} is empty");
    }

    let e = h
        .post(&[
            ("Action", "DescribeInstanceAttribute"),
            ("InstanceId", &id),
            ("Attribute", "flavour"),
        ])
        .await
        .err("InvalidParameterValue");
    assert_eq!(
        e,
        "Value (flavour) for parameter attribute is invalid. Unknown attribute."
    );
    let e = h
        .post(&[
            ("Action", "DescribeInstanceAttribute"),
            ("InstanceId", "i-0123456789abcdef0"),
            ("Attribute", "userData"),
        ])
        .await
        .err("InvalidInstanceID.NotFound");
    assert_eq!(e, "The instance ID 'i-0123456789abcdef0' does not exist");
    // Instances are per region.
    h.post_in(
        "us-west-2",
        &[
            ("Action", "DescribeInstanceAttribute"),
            ("InstanceId", &id),
            ("Attribute", "userData"),
        ],
    )
    .await
    .err("InvalidInstanceID.NotFound");
}

#[tokio::test]
async fn network_resources_are_scoped_per_region() {
    let h = Harness::new();
    let east_default = h.group("default").await.text_at("groupId").to_string();
    let west_default = h
        .post_in(
            "us-west-2",
            &[
                ("Action", "DescribeSecurityGroups"),
                ("GroupName.1", "default"),
            ],
        )
        .await
        .ok("DescribeSecurityGroups")
        .text_at("securityGroupInfo/item/groupId")
        .to_string();
    assert_ne!(east_default, west_default);

    // A group made in us-west-2 is invisible from us-east-1, by id, by name and in listings.
    let west_web = h
        .post_in(
            "us-west-2",
            &[
                ("Action", "CreateSecurityGroup"),
                ("GroupName", "web"),
                ("GroupDescription", "west"),
            ],
        )
        .await
        .ok("CreateSecurityGroup")
        .text_at("groupId")
        .to_string();
    let e = h
        .post(&[
            ("Action", "DescribeSecurityGroups"),
            ("GroupId.1", &west_web),
        ])
        .await
        .err("InvalidGroup.NotFound");
    assert_eq!(e, format!("The security group '{west_web}' does not exist"));
    h.post(&[("Action", "DescribeSecurityGroups"), ("GroupName.1", "web")])
        .await
        .err("InvalidGroup.NotFound");
    assert_eq!(h.groups(&[]).await.len(), 1);
    h.open_port(&west_web, "tcp", "80", "80")
        .await
        .err("InvalidGroup.NotFound");
    h.run_in("us-east-1", &[("SecurityGroupId.1", &west_web)])
        .await
        .err("InvalidGroup.NotFound");
    // The same name is free in us-east-1.
    let east_web = h.create_group("web").await;
    assert_ne!(east_web, west_web);

    // A launch in us-west-2 lands in that region's default group, VPC and subnet.
    let doc = h.run_in("us-west-2", &[]).await.ok("RunInstances");
    let item = doc.path("instancesSet/item");
    assert_eq!(item.text_at("groupSet/item/groupId"), west_default);
    assert_eq!(item.text_at("vpcId"), default_vpc_id(&h, "us-west-2").await);
    assert_eq!(item.text_at("placement/availabilityZone"), "us-west-2a");
    // Rules changed in one region leave the other's default group alone.
    h.open_port("default", "tcp", "8080", "8080")
        .await
        .ok("AuthorizeSecurityGroupIngress");
    let west = h
        .post_in(
            "us-west-2",
            &[
                ("Action", "DescribeSecurityGroups"),
                ("GroupName.1", "default"),
            ],
        )
        .await
        .ok("DescribeSecurityGroups");
    assert_eq!(west.items("securityGroupInfo/item/ipPermissions").len(), 1);
}

/// CreateTags and DeleteTags answer EC2's errors: no `ResourceId` names `resourceIdSet`, an id
/// ec2d keeps nothing taggable under (unknown prefixes) is `InvalidID`, and the derived default
/// VPC and subnets, which store nothing, are not found.
#[tokio::test]
async fn tag_actions_answer_ec2s_errors() {
    let h = Harness::new();
    let defaults = ec2d::model::region::defaults("us-east-1");
    for action in ["CreateTags", "DeleteTags"] {
        let e = h
            .post(&[("Action", action), ("Tag.1.Key", "k")])
            .await
            .err("MissingParameter");
        assert_eq!(e, "The request must contain the parameter resourceIdSet");
        // The default VPC and subnets are stored by their first tag write.
        for id in [&defaults.vpc.vpc_id, &defaults.subnets[0].subnet_id] {
            h.post(&[("Action", action), ("ResourceId.1", id), ("Tag.1.Key", "k")])
                .await
                .ok(action);
        }
        h.post(&[
            ("Action", action),
            ("ResourceId.1", "subnet-0123456789abcdef0"),
            ("Tag.1.Key", "k"),
        ])
        .await
        .err("InvalidSubnetID.NotFound");
        for id in ["eni-0123456789abcdef0", "bogus"] {
            let e = h
                .post(&[("Action", action), ("ResourceId.1", id), ("Tag.1.Key", "k")])
                .await
                .err("InvalidID");
            assert_eq!(e, format!("The ID '{id}' is not valid"), "{action} {id}");
        }
    }
}
