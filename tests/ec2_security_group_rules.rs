//! Security group rules as resources through the router: their `sgr-` ids (fresh per Authorize, kept through ModifySecurityGroupRules), tags (TagSpecification, CreateTags/DeleteTags/DescribeTags), DescribeSecurityGroupRules with its filters, paging and errors, Revoke by rule id, and RunInstances' check that groups are in the subnet's VPC.

mod common;

use common::api::{Harness, Node};

async fn create_group(h: &Harness, name: &str, vpc: Option<&str>) -> String {
    let mut params = vec![
        ("Action", "CreateSecurityGroup"),
        ("GroupName", name),
        ("GroupDescription", "d"),
    ];
    if let Some(vpc) = vpc {
        params.push(("VpcId", vpc));
    }
    h.post(&params)
        .await
        .ok("CreateSecurityGroup")
        .text("groupId")
        .to_string()
}

/// Terraform's aws_vpc_security_group_ingress_rule create: one tcp/443 rule from 10.0.0.0/8, tagged.
async fn authorize_https(h: &Harness, group: &str) -> Node {
    h.post(&[
        ("Action", "AuthorizeSecurityGroupIngress"),
        ("GroupId", group),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "443"),
        ("IpPermissions.1.ToPort", "443"),
        ("IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8"),
        ("IpPermissions.1.IpRanges.1.Description", "https <in>"),
        ("TagSpecification.1.ResourceType", "security-group-rule"),
        ("TagSpecification.1.Tag.1.Key", "Name"),
        ("TagSpecification.1.Tag.1.Value", "https"),
    ])
    .await
    .ok("AuthorizeSecurityGroupIngress")
}

/// A new group `web` with the https rule; the group's id and the rule's.
async fn https_rule(h: &Harness) -> (String, String) {
    let group = create_group(h, "web", None).await;
    let id = authorize_https(h, &group)
        .await
        .text_at("securityGroupRuleSet/item/securityGroupRuleId")
        .to_string();
    (group, id)
}

async fn describe_rules(h: &Harness, extra: &[(&str, &str)]) -> Node {
    let mut params = vec![("Action", "DescribeSecurityGroupRules")];
    params.extend_from_slice(extra);
    h.post(&params).await.ok("DescribeSecurityGroupRules")
}

fn rule_ids(doc: &Node) -> Vec<String> {
    doc.items("securityGroupRuleSet")
        .iter()
        .map(|r| r.text("securityGroupRuleId").to_string())
        .collect()
}

#[tokio::test]
async fn authorize_answers_each_new_rule_with_its_id_and_tags() {
    let h = Harness::new();
    let group = create_group(&h, "web", None).await;
    let doc = authorize_https(&h, &group).await;
    assert_eq!(doc.text("return"), "true");
    let rules = doc.items("securityGroupRuleSet");
    assert_eq!(rules.len(), 1);
    let r = rules[0];
    let id = r.text("securityGroupRuleId");
    assert!(id.starts_with("sgr-") && id.len() == 21, "{id}");
    assert_eq!(r.text("groupId"), group);
    assert_eq!(r.text("isEgress"), "false");
    assert_eq!(r.text("ipProtocol"), "tcp");
    assert_eq!((r.text("fromPort"), r.text("toPort")), ("443", "443"));
    assert_eq!(r.text("cidrIpv4"), "10.0.0.0/8");
    assert_eq!(r.text("description"), "https <in>");
    assert_eq!(
        r.pairs("tagSet", "key", "value"),
        vec![("Name".to_string(), "https".to_string())]
    );
    assert!(r
        .text("securityGroupRuleArn")
        .ends_with(&format!(":security-group-rule/{id}")));

    // DescribeSecurityGroupRules reads it back by id, as Terraform's read does.
    let doc = describe_rules(&h, &[("SecurityGroupRuleId.1", id)]).await;
    let shown = doc.items("securityGroupRuleSet");
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].text("cidrIpv4"), "10.0.0.0/8");
    assert_eq!(
        shown[0].tags().get("Name").map(String::as_str),
        Some("https")
    );

    // Re-created with the same content, a rule gets a new id, as in EC2.
    h.post(&[
        ("Action", "RevokeSecurityGroupIngress"),
        ("GroupId", &group),
        ("SecurityGroupRuleId.1", id),
    ])
    .await
    .ok("RevokeSecurityGroupIngress");
    let again = authorize_https(&h, &group).await;
    let new_id = again.text_at("securityGroupRuleSet/item/securityGroupRuleId");
    assert_ne!(new_id, id);
    h.post(&[
        ("Action", "DescribeSecurityGroupRules"),
        ("SecurityGroupRuleId.1", id),
    ])
    .await
    .err("InvalidSecurityGroupRuleId.NotFound");
}

#[tokio::test]
async fn describe_filters_pages_and_errors() {
    let h = Harness::new();
    let (group, https_id) = https_rule(&h).await;

    // The new group's default egress rule and the https rule.
    let doc = describe_rules(
        &h,
        &[("Filter.1.Name", "group-id"), ("Filter.1.Value.1", &group)],
    )
    .await;
    let rules = doc.items("securityGroupRuleSet");
    assert_eq!(rules.len(), 2);
    let egress: Vec<_> = rules
        .iter()
        .filter(|r| r.text("isEgress") == "true")
        .collect();
    assert_eq!(egress.len(), 1);
    assert_eq!(egress[0].text("ipProtocol"), "-1");
    assert_eq!(
        (egress[0].text("fromPort"), egress[0].text("toPort")),
        ("-1", "-1")
    );
    assert_eq!(egress[0].text("cidrIpv4"), "0.0.0.0/0");

    for (name, value, expected) in [
        ("security-group-rule-id", https_id.as_str(), 1),
        ("tag:Name", "https", 1),
        ("tag-key", "Name", 1),
        ("tag:Name", "other", 0),
    ] {
        let doc = describe_rules(&h, &[("Filter.1.Name", name), ("Filter.1.Value.1", value)]).await;
        assert_eq!(
            doc.items("securityGroupRuleSet").len(),
            expected,
            "{name}={value}"
        );
    }

    // The region's rules: the default group's two, the new group's two; paged by 5 at most.
    let all = describe_rules(&h, &[]).await;
    assert_eq!(all.items("securityGroupRuleSet").len(), 4);
    for i in 0..4 {
        h.post(&[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupId", &group),
            ("IpProtocol", "udp"),
            ("FromPort", "53"),
            ("ToPort", "53"),
            ("CidrIp", &format!("10.{i}.0.0/16")),
        ])
        .await
        .ok("AuthorizeSecurityGroupIngress");
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = vec![("MaxResults", "5".to_string())];
        if let Some(t) = &token {
            params.push(("NextToken", t.clone()));
        }
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = describe_rules(&h, &params).await;
        assert!(page.items("securityGroupRuleSet").len() <= 5);
        seen.extend(rule_ids(&page));
        match page.opt("nextToken") {
            Some(t) => token = Some(t.text.clone()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages follow id order without repeats");
    assert_eq!(
        seen.len(),
        describe_rules(&h, &[])
            .await
            .items("securityGroupRuleSet")
            .len()
    );

    let missing = "sgr-0123456789abcdef0";
    assert_eq!(
        h.post(&[
            ("Action", "DescribeSecurityGroupRules"),
            ("SecurityGroupRuleId.1", missing)
        ])
        .await
        .err("InvalidSecurityGroupRuleId.NotFound"),
        format!("The security group rule ID '{missing}' does not exist")
    );
    assert_eq!(
        h.post(&[
            ("Action", "DescribeSecurityGroupRules"),
            ("SecurityGroupRuleId.1", "sgr-nothex")
        ])
        .await
        .err("InvalidSecurityGroupRuleId.Malformed"),
        "Invalid id: \"sgr-nothex\" (expecting \"sgr-...\")"
    );
    h.post(&[
        ("Action", "DescribeSecurityGroupRules"),
        ("MaxResults", "4"),
    ])
    .await
    .err("InvalidParameterValue");
    h.post(&[
        ("Action", "DescribeSecurityGroupRules"),
        ("Filter.1.Name", "vpc-id"),
        ("Filter.1.Value.1", "x"),
    ])
    .await
    .err("InvalidParameterValue");
}

#[tokio::test]
async fn rules_take_tags_through_the_tag_actions() {
    let h = Harness::new();
    let (group, id) = https_rule(&h).await;
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "env"),
        ("Tag.1.Value", "prod"),
    ])
    .await
    .ok("CreateTags");
    h.post(&[
        ("Action", "DeleteTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "Name"),
    ])
    .await
    .ok("DeleteTags");
    let doc = describe_rules(&h, &[("SecurityGroupRuleId.1", &id)]).await;
    assert_eq!(
        doc.items("securityGroupRuleSet")[0].pairs("tagSet", "key", "value"),
        vec![("env".to_string(), "prod".to_string())]
    );
    let tags = h
        .post(&[
            ("Action", "DescribeTags"),
            ("Filter.1.Name", "resource-id"),
            ("Filter.1.Value.1", &id),
        ])
        .await
        .ok("DescribeTags");
    let items = tags.items("tagSet");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].text("resourceType"), "security-group-rule");
    assert_eq!(items[0].text("key"), "env");

    // A rule of the region's derived default group takes tags too (the group is stored first).
    let default_rules = describe_rules(
        &h,
        &[
            ("Filter.1.Name", "group-id"),
            ("Filter.1.Value.1", "default"),
        ],
    )
    .await;
    assert_eq!(
        default_rules.items("securityGroupRuleSet").len(),
        0,
        "group-id takes ids"
    );
    let all = describe_rules(&h, &[]).await;
    let default_rule = all
        .items("securityGroupRuleSet")
        .into_iter()
        .find(|r| r.text("groupId") != group)
        .expect("a default group rule")
        .text("securityGroupRuleId")
        .to_string();
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &default_rule),
        ("Tag.1.Key", "k"),
    ])
    .await
    .ok("CreateTags");
    let doc = describe_rules(&h, &[("SecurityGroupRuleId.1", &default_rule)]).await;
    assert_eq!(doc.items("securityGroupRuleSet")[0].tags().len(), 1);

    let missing = "sgr-0123456789abcdef0";
    assert_eq!(
        h.post(&[
            ("Action", "CreateTags"),
            ("ResourceId.1", missing),
            ("Tag.1.Key", "k")
        ])
        .await
        .err("InvalidSecurityGroupRuleId.NotFound"),
        format!("The security group rule ID '{missing}' does not exist")
    );
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", "sgr-zz"),
        ("Tag.1.Key", "k"),
    ])
    .await
    .err("InvalidSecurityGroupRuleId.Malformed");
}

#[tokio::test]
async fn modify_keeps_the_id_and_tags_and_revoke_takes_rule_ids() {
    let h = Harness::new();
    let (group, id) = https_rule(&h).await;
    let modify = |rule_id: &str, port: &str, description: &str| {
        let params: Vec<(String, String)> = [
            ("Action", "ModifySecurityGroupRules"),
            ("GroupId", group.as_str()),
            ("SecurityGroupRule.1.SecurityGroupRuleId", rule_id),
            ("SecurityGroupRule.1.SecurityGroupRule.IpProtocol", "tcp"),
            ("SecurityGroupRule.1.SecurityGroupRule.FromPort", port),
            ("SecurityGroupRule.1.SecurityGroupRule.ToPort", port),
            (
                "SecurityGroupRule.1.SecurityGroupRule.CidrIpv4",
                "10.0.0.0/8",
            ),
            (
                "SecurityGroupRule.1.SecurityGroupRule.Description",
                description,
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        params
    };
    let post = |params: Vec<(String, String)>| {
        let h = &h;
        async move {
            let params: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            h.post(&params).await
        }
    };
    assert_eq!(
        post(modify(&id, "8443", "alt"))
            .await
            .ok("ModifySecurityGroupRules")
            .text("return"),
        "true"
    );
    let doc = describe_rules(&h, &[("SecurityGroupRuleId.1", &id)]).await;
    let r = doc.items("securityGroupRuleSet")[0];
    assert_eq!((r.text("fromPort"), r.text("description")), ("8443", "alt"));
    assert_eq!(r.tags().get("Name").map(String::as_str), Some("https"));
    // DescribeSecurityGroups shows the changed permission.
    let groups = h
        .post(&[("Action", "DescribeSecurityGroups"), ("GroupId.1", &group)])
        .await
        .ok("DescribeSecurityGroups");
    assert_eq!(
        groups.text_at("securityGroupInfo/item/ipPermissions/item/fromPort"),
        "8443"
    );

    // Another rule with the modified content is a duplicate.
    let other = h
        .post(&[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupId", &group),
            ("IpProtocol", "tcp"),
            ("FromPort", "22"),
            ("ToPort", "22"),
            ("CidrIp", "10.0.0.0/8"),
        ])
        .await
        .ok("AuthorizeSecurityGroupIngress");
    let other_id = other
        .text_at("securityGroupRuleSet/item/securityGroupRuleId")
        .to_string();
    assert_ne!(other_id, id);
    post(modify(&other_id, "8443", ""))
        .await
        .err("InvalidPermission.Duplicate");

    let missing = "sgr-0123456789abcdef0";
    post(modify(missing, "1", ""))
        .await
        .err("InvalidSecurityGroupRuleId.NotFound");

    // Revoke by rule id: an ingress id is not an egress rule; a wrong id removes nothing.
    h.post(&[
        ("Action", "RevokeSecurityGroupEgress"),
        ("GroupId", &group),
        ("SecurityGroupRuleId.1", &id),
    ])
    .await
    .err("InvalidSecurityGroupRuleId.NotFound");
    h.post(&[
        ("Action", "RevokeSecurityGroupIngress"),
        ("GroupId", &group),
        ("SecurityGroupRuleId.1", &id),
        ("SecurityGroupRuleId.2", missing),
    ])
    .await
    .err("InvalidSecurityGroupRuleId.NotFound");
    h.post(&[
        ("Action", "RevokeSecurityGroupIngress"),
        ("GroupId", &group),
        ("SecurityGroupRuleId.1", "sgr-bad!"),
    ])
    .await
    .err("InvalidSecurityGroupRuleId.Malformed");
    let doc = h
        .post(&[
            ("Action", "RevokeSecurityGroupIngress"),
            ("GroupId", &group),
            ("SecurityGroupRuleId.1", &id),
        ])
        .await
        .ok("RevokeSecurityGroupIngress");
    let revoked = doc.items("revokedSecurityGroupRuleSet");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].text("securityGroupRuleId"), id);
    assert_eq!(revoked[0].text("groupId"), group);
    assert_eq!(revoked[0].text("isEgress"), "false");
    assert_eq!(revoked[0].text("fromPort"), "8443");
    assert_eq!(revoked[0].text("cidrIpv4"), "10.0.0.0/8");
    let left = describe_rules(
        &h,
        &[("Filter.1.Name", "group-id"), ("Filter.1.Value.1", &group)],
    )
    .await;
    let mut left = rule_ids(&left);
    left.sort();
    assert!(left.contains(&other_id) && !left.contains(&id) && left.len() == 2);
}

/// The description and tags DescribeSecurityGroupRules shows for rule `id`.
async fn shown(
    h: &Harness,
    id: &str,
) -> (Option<String>, std::collections::BTreeMap<String, String>) {
    let doc = describe_rules(h, &[("SecurityGroupRuleId.1", id)]).await;
    let r = doc.items("securityGroupRuleSet")[0];
    (r.opt("description").map(|d| d.text.clone()), r.tags())
}

#[tokio::test]
async fn descriptions_change_by_content_or_id_and_the_id_stays() {
    let h = Harness::new();
    let (group, id) = https_rule(&h).await;
    // By content, as the CLI's --ip-permissions sends it.
    h.post(&[
        ("Action", "UpdateSecurityGroupRuleDescriptionsIngress"),
        ("GroupId", &group),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "443"),
        ("IpPermissions.1.ToPort", "443"),
        ("IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8"),
        ("IpPermissions.1.IpRanges.1.Description", "lan"),
    ])
    .await
    .ok("UpdateSecurityGroupRuleDescriptionsIngress");
    let (description, tags) = shown(&h, &id).await;
    assert_eq!(description.as_deref(), Some("lan"));
    assert_eq!(tags.get("Name").map(String::as_str), Some("https"));
    // By id, without a description: removed.
    h.post(&[
        ("Action", "UpdateSecurityGroupRuleDescriptionsIngress"),
        ("GroupId", &group),
        ("SecurityGroupRuleDescription.1.SecurityGroupRuleId", &id),
    ])
    .await
    .ok("UpdateSecurityGroupRuleDescriptionsIngress");
    assert_eq!(shown(&h, &id).await.0, None);
    // A rule the group does not have, by content or by id (an ingress id is no egress rule).
    let e = h
        .post(&[
            ("Action", "UpdateSecurityGroupRuleDescriptionsIngress"),
            ("GroupId", &group),
            ("IpProtocol", "tcp"),
            ("FromPort", "1"),
            ("ToPort", "1"),
            ("CidrIp", "10.0.0.0/8"),
        ])
        .await
        .err("InvalidPermission.NotFound");
    assert_eq!(
        e,
        "The specified rule does not exist in this security group."
    );
    h.post(&[
        ("Action", "UpdateSecurityGroupRuleDescriptionsEgress"),
        ("GroupId", &group),
        ("SecurityGroupRuleDescription.1.SecurityGroupRuleId", &id),
        ("SecurityGroupRuleDescription.1.Description", "x"),
    ])
    .await
    .err("InvalidSecurityGroupRuleId.NotFound");
}

#[tokio::test]
async fn a_launch_refuses_groups_of_another_vpc() {
    let h = Harness::docker();
    let vpc = h
        .post(&[("Action", "CreateVpc"), ("CidrBlock", "10.1.0.0/16")])
        .await
        .ok("CreateVpc")
        .text_at("vpc/vpcId")
        .to_string();
    let subnet = h
        .post(&[
            ("Action", "CreateSubnet"),
            ("VpcId", &vpc),
            ("CidrBlock", "10.1.1.0/24"),
        ])
        .await
        .ok("CreateSubnet")
        .text_at("subnet/subnetId")
        .to_string();
    let in_vpc = create_group(&h, "app", Some(&vpc)).await;
    let in_default = create_group(&h, "app", None).await;

    let e = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", common::api::AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("SubnetId", &subnet),
            ("SecurityGroupId.1", &in_default),
        ])
        .await
        .err("InvalidParameter");
    assert_eq!(
        e,
        format!("Security group {in_default} and subnet {subnet} belong to different networks.")
    );
    // A group of the default VPC with the default subnets, and one of the VPC with its subnet.
    let e = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", common::api::AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("SecurityGroupId.1", &in_vpc),
        ])
        .await
        .err("InvalidParameter");
    assert!(
        e.starts_with(&format!("Security group {in_vpc} and subnet subnet-")),
        "{e}"
    );
    h.run(&[("SubnetId", &subnet), ("SecurityGroupId.1", &in_vpc)])
        .await;
    h.run(&[("SecurityGroupId.1", &in_default)]).await;
}
