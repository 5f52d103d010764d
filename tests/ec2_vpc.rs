//! VPCs and subnets as stored records through the router: CreateVpc, DeleteVpc, CreateSubnet, DeleteSubnet, their Describe filters and errors, the VPC's own `default` group, and launches into a created subnet.

mod common;

use common::api::Harness;

#[tokio::test]
async fn create_vpc_answers_pending_and_describe_shows_it_available() {
    let h = Harness::new();
    let doc = h
        .post(&[
            ("Action", "CreateVpc"),
            ("CidrBlock", "10.0.0.0/16"),
            ("InstanceTenancy", "dedicated"),
            ("TagSpecification.1.ResourceType", "vpc"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "main <&>"),
        ])
        .await
        .ok("CreateVpc");
    let vpc = doc.path("vpc");
    let id = vpc.text("vpcId").to_string();
    assert!(id.starts_with("vpc-"));
    assert_eq!(vpc.text("state"), "pending");
    assert_eq!(vpc.text("cidrBlock"), "10.0.0.0/16");
    assert_eq!(vpc.text("isDefault"), "false");
    assert_eq!(vpc.text("instanceTenancy"), "dedicated");
    assert_eq!(
        vpc.pairs("tagSet", "key", "value"),
        vec![("Name".to_string(), "main <&>".to_string())]
    );

    let doc = h
        .post(&[("Action", "DescribeVpcs"), ("VpcId.1", &id)])
        .await
        .ok("DescribeVpcs");
    let items = doc.items("vpcSet");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].text("state"), "available");
    assert_eq!(
        items[0].text_at("cidrBlockAssociationSet/item/cidrBlock"),
        "10.0.0.0/16"
    );

    // Both VPCs are listed; the filters tell them apart.
    let all = h
        .post(&[("Action", "DescribeVpcs")])
        .await
        .ok("DescribeVpcs");
    assert_eq!(all.items("vpcSet").len(), 2);
    for (name, value, count) in [
        ("is-default", "false", 1),
        ("is-default", "true", 1),
        ("isDefault", "true", 1),
        ("cidr", "10.0.0.0/16", 1),
        ("instance-tenancy", "dedicated", 1),
        ("tag:Name", "main <&>", 1),
        ("tag-key", "Name", 1),
        ("vpc-id", id.as_str(), 1),
        ("state", "available", 2),
    ] {
        let doc = h
            .post(&[
                ("Action", "DescribeVpcs"),
                ("Filter.1.Name", name),
                ("Filter.1.Value.1", value),
            ])
            .await
            .ok("DescribeVpcs");
        assert_eq!(doc.items("vpcSet").len(), count, "{name}={value}");
    }
}

#[tokio::test]
async fn create_vpc_errors() {
    let h = Harness::new();
    for (cidr, code, message) in [
        (
            "10.0.0.0/8",
            "InvalidVpc.Range",
            "The CIDR '10.0.0.0/8' is invalid.",
        ),
        (
            "10.0.0.0/29",
            "InvalidVpc.Range",
            "The CIDR '10.0.0.0/29' is invalid.",
        ),
        (
            "10.0.0/16",
            "InvalidParameterValue",
            "Value (10.0.0/16) for parameter cidrBlock is invalid. This is not a valid CIDR block.",
        ),
    ] {
        let got = h
            .post(&[("Action", "CreateVpc"), ("CidrBlock", cidr)])
            .await
            .err(code);
        assert_eq!(got, message);
    }
    h.post(&[("Action", "CreateVpc")])
        .await
        .err("MissingParameter");
    h.post(&[
        ("Action", "CreateVpc"),
        ("CidrBlock", "10.0.0.0/16"),
        ("AmazonProvidedIpv6CidrBlock", "true"),
    ])
    .await
    .err("UnsupportedOperation");
    h.post(&[
        ("Action", "CreateVpc"),
        ("CidrBlock", "10.0.0.0/16"),
        ("TagSpecification.1.ResourceType", "subnet"),
        ("TagSpecification.1.Tag.1.Key", "k"),
    ])
    .await
    .err("InvalidParameterValue");
    assert!(h.store.vpcs().is_empty());
}

#[tokio::test]
async fn each_vpc_has_its_own_default_group() {
    let h = Harness::new();
    let vpc = h.create_vpc("10.0.0.0/16").await;
    let doc = h
        .post(&[
            ("Action", "DescribeSecurityGroups"),
            ("Filter.1.Name", "vpc-id"),
            ("Filter.1.Value.1", &vpc),
        ])
        .await
        .ok("DescribeSecurityGroups");
    let groups = doc.items("securityGroupInfo");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].text("groupName"), "default");
    let group_id = groups[0].text("groupId").to_string();
    // The name `default` still means the default VPC's group.
    let doc = h
        .post(&[
            ("Action", "DescribeSecurityGroups"),
            ("GroupName.1", "default"),
        ])
        .await
        .ok("DescribeSecurityGroups");
    assert_ne!(
        doc.text_at("securityGroupInfo/item/groupId"),
        group_id.as_str()
    );
    // A group of the same name as one in the default VPC can be made in the new VPC.
    for vpc_id in [None, Some(vpc.as_str())] {
        let mut params = vec![
            ("Action", "CreateSecurityGroup"),
            ("GroupName", "web"),
            ("GroupDescription", "web"),
        ];
        if let Some(v) = vpc_id {
            params.push(("VpcId", v));
        }
        h.post(&params).await.ok("CreateSecurityGroup");
    }
    // It cannot be deleted while the VPC lives.
    h.post(&[("Action", "DeleteSecurityGroup"), ("GroupId", &group_id)])
        .await
        .err("CannotDelete");
}

#[tokio::test]
async fn delete_vpc_refuses_while_things_live_in_it() {
    let h = Harness::new();
    let vpc = h.create_vpc("10.0.0.0/16").await;
    let subnet = h
        .create_subnet(&vpc, "10.0.1.0/24", Some("us-east-1a"))
        .await;
    let message = h
        .post(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
        .await
        .err("DependencyViolation");
    assert_eq!(
        message,
        format!("The vpc '{vpc}' has dependencies and cannot be deleted.")
    );
    h.post(&[("Action", "DeleteSubnet"), ("SubnetId", &subnet)])
        .await
        .ok("DeleteSubnet");
    let group = h
        .post(&[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", "db"),
            ("GroupDescription", "db"),
            ("VpcId", &vpc),
        ])
        .await
        .ok("CreateSecurityGroup")
        .text_at("groupId")
        .to_string();
    h.post(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
        .await
        .err("DependencyViolation");
    h.post(&[("Action", "DeleteSecurityGroup"), ("GroupId", &group)])
        .await
        .ok("DeleteSecurityGroup");
    h.post(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
        .await
        .ok("DeleteVpc");
    // Gone, with its default group.
    h.post(&[("Action", "DescribeVpcs"), ("VpcId.1", &vpc)])
        .await
        .err("InvalidVpcID.NotFound");
    h.post(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
        .await
        .err("InvalidVpcID.NotFound");
    assert!(h
        .store
        .security_groups()
        .list()
        .unwrap()
        .objects
        .iter()
        .all(|g| g.spec.vpc_id != vpc));
    // The default VPC is not deleted; ids are checked.
    let default = h
        .post(&[
            ("Action", "DescribeVpcs"),
            ("Filter.1.Name", "is-default"),
            ("Filter.1.Value.1", "true"),
        ])
        .await
        .ok("DescribeVpcs")
        .text_at("vpcSet/item/vpcId")
        .to_string();
    h.post(&[("Action", "DeleteVpc"), ("VpcId", &default)])
        .await
        .err("DependencyViolation");
    h.post(&[("Action", "DeleteVpc"), ("VpcId", "nope")])
        .await
        .err("InvalidVpcID.Malformed");
    h.post(&[("Action", "DeleteVpc")])
        .await
        .err("MissingParameter");
}

#[tokio::test]
async fn create_subnet_checks_range_conflict_and_zone() {
    let h = Harness::new();
    let vpc = h.create_vpc("10.0.0.0/16").await;
    let doc = h
        .post(&[
            ("Action", "CreateSubnet"),
            ("VpcId", &vpc),
            ("CidrBlock", "10.0.1.0/24"),
            ("AvailabilityZoneId", "use1-az2"),
            ("TagSpecification.1.ResourceType", "subnet"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "a"),
        ])
        .await
        .ok("CreateSubnet");
    let subnet = doc.path("subnet");
    assert_eq!(subnet.text("state"), "pending");
    assert_eq!(subnet.text("vpcId"), vpc);
    assert_eq!(subnet.text("availabilityZone"), "us-east-1b");
    assert_eq!(subnet.text("availabilityZoneId"), "use1-az2");
    assert_eq!(subnet.text("availableIpAddressCount"), "251");
    assert_eq!(subnet.text("defaultForAz"), "false");
    assert_eq!(subnet.text("mapPublicIpOnLaunch"), "false");
    let id = subnet.text("subnetId").to_string();

    for (cidr, code, message) in [
        (
            "10.1.0.0/24",
            "InvalidSubnet.Range",
            "The CIDR '10.1.0.0/24' is invalid.",
        ),
        (
            "10.0.0.0/29",
            "InvalidSubnet.Range",
            "The CIDR '10.0.0.0/29' is invalid.",
        ),
        (
            "10.0.1.128/25",
            "InvalidSubnet.Conflict",
            "The CIDR '10.0.1.128/25' conflicts with another subnet",
        ),
        (
            "10.0.0.0/16",
            "InvalidSubnet.Conflict",
            "The CIDR '10.0.0.0/16' conflicts with another subnet",
        ),
    ] {
        let got = h
            .post(&[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", cidr),
            ])
            .await
            .err(code);
        assert_eq!(got, message, "{cidr}");
    }
    h.post(&[
        ("Action", "CreateSubnet"),
        ("VpcId", &vpc),
        ("CidrBlock", "10.0.2.0/24"),
        ("AvailabilityZone", "us-east-1z"),
    ])
    .await
    .err("InvalidParameterValue");
    h.post(&[
        ("Action", "CreateSubnet"),
        ("VpcId", "vpc-0000000000000000a"),
        ("CidrBlock", "10.0.2.0/24"),
    ])
    .await
    .err("InvalidVpcID.NotFound");
    // The default VPC's subnets take part in conflicts too.
    let default = h
        .post(&[
            ("Action", "DescribeVpcs"),
            ("Filter.1.Name", "is-default"),
            ("Filter.1.Value.1", "true"),
        ])
        .await
        .ok("DescribeVpcs")
        .text_at("vpcSet/item/vpcId")
        .to_string();
    h.post(&[
        ("Action", "CreateSubnet"),
        ("VpcId", &default),
        ("CidrBlock", "172.31.0.0/24"),
    ])
    .await
    .err("InvalidSubnet.Conflict");

    // DescribeSubnets lists it with the default ones, and its filters find it.
    let all = h
        .post(&[("Action", "DescribeSubnets")])
        .await
        .ok("DescribeSubnets");
    assert_eq!(all.items("subnetSet").len(), 7);
    for (name, value) in [
        ("vpc-id", vpc.as_str()),
        ("subnet-id", id.as_str()),
        ("cidr-block", "10.0.1.0/24"),
        ("default-for-az", "false"),
        ("map-public-ip-on-launch", "false"),
        ("available-ip-address-count", "251"),
        ("tag:Name", "a"),
    ] {
        let doc = h
            .post(&[
                ("Action", "DescribeSubnets"),
                ("Filter.1.Name", name),
                ("Filter.1.Value.1", value),
            ])
            .await
            .ok("DescribeSubnets");
        let items = doc.items("subnetSet");
        assert_eq!(items.len(), 1, "{name}={value}");
        assert_eq!(items[0].text("subnetId"), id);
        assert_eq!(items[0].text("state"), "available");
    }
}

#[tokio::test]
async fn subnets_page_through_zones_with_several_per_zone() {
    let h = Harness::new();
    let vpc = h.create_vpc("10.0.0.0/16").await;
    for i in 0..3 {
        h.create_subnet(&vpc, &format!("10.0.{i}.0/24"), Some("us-east-1a"))
            .await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = vec![("Action", "DescribeSubnets"), ("MaxResults", "5")];
        if let Some(t) = &token {
            params.push(("NextToken", t));
        }
        let doc = h.post(&params).await.ok("DescribeSubnets");
        for item in doc.items("subnetSet") {
            seen.push(item.text("subnetId").to_string());
        }
        match doc.opt("nextToken") {
            Some(t) => token = Some(t.text.clone()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 9, "no subnet twice: {seen:?}");
}

#[tokio::test]
async fn launches_land_in_a_created_subnet_and_hold_it() {
    let h = Harness::new();
    let vpc = h.create_vpc("10.0.0.0/16").await;
    let subnet = h
        .create_subnet(&vpc, "10.0.1.0/28", Some("us-east-1c"))
        .await;
    let doc = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-12345678"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("SubnetId", &subnet),
        ])
        .await
        .ok("RunInstances");
    let item = doc.path("instancesSet/item");
    assert_eq!(item.text("subnetId"), subnet);
    assert_eq!(item.text("vpcId"), vpc);
    assert_eq!(item.text_at("placement/availabilityZone"), "us-east-1c");
    // It joined the VPC's own default group.
    let group = h
        .post(&[
            ("Action", "DescribeSecurityGroups"),
            ("Filter.1.Name", "vpc-id"),
            ("Filter.1.Value.1", &vpc),
        ])
        .await
        .ok("DescribeSecurityGroups")
        .text_at("securityGroupInfo/item/groupId")
        .to_string();
    assert_eq!(item.text_at("groupSet/item/groupId"), group);
    let id = item.text("instanceId").to_string();
    let doc = h
        .post(&[("Action", "DescribeSubnets"), ("SubnetId.1", &subnet)])
        .await
        .ok("DescribeSubnets");
    assert_eq!(doc.text_at("subnetSet/item/availableIpAddressCount"), "10");
    let message = h
        .post(&[("Action", "DeleteSubnet"), ("SubnetId", &subnet)])
        .await
        .err("DependencyViolation");
    assert_eq!(
        message,
        format!("The subnet '{subnet}' has dependencies and cannot be deleted.")
    );
    h.post(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
        .await
        .err("DependencyViolation");
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await
        .ok("TerminateInstances");
    let mut status = h.instance(&id).status;
    status.state = Some(ec2d::model::InstanceState::Terminated);
    status.observed_generation = h.instance(&id).metadata.generation;
    h.store.instances().write_status(&id, &status).unwrap();
    h.post(&[("Action", "DeleteSubnet"), ("SubnetId", &subnet)])
        .await
        .ok("DeleteSubnet");
    h.post(&[("Action", "DeleteSubnet"), ("SubnetId", &subnet)])
        .await
        .err("InvalidSubnetID.NotFound");
    h.post(&[("Action", "DeleteVpc"), ("VpcId", &vpc)])
        .await
        .ok("DeleteVpc");
}

#[tokio::test]
async fn vpc_attributes_one_per_call() {
    let h = Harness::new();
    let vpc = h.create_vpc("10.0.0.0/16").await;
    let attribute = |name: &'static str| {
        let h = &h;
        let vpc = vpc.clone();
        async move {
            let doc = h
                .post(&[
                    ("Action", "DescribeVpcAttribute"),
                    ("VpcId", &vpc),
                    ("Attribute", name),
                ])
                .await
                .ok("DescribeVpcAttribute");
            assert_eq!(doc.text("vpcId"), vpc);
            doc.text_at(&format!("{name}/value")).to_string()
        }
    };
    assert_eq!(attribute("enableDnsSupport").await, "true");
    assert_eq!(attribute("enableDnsHostnames").await, "false");
    assert_eq!(attribute("enableNetworkAddressUsageMetrics").await, "false");
    h.post(&[
        ("Action", "ModifyVpcAttribute"),
        ("VpcId", &vpc),
        ("EnableDnsHostnames.Value", "true"),
    ])
    .await
    .ok("ModifyVpcAttribute");
    assert_eq!(attribute("enableDnsHostnames").await, "true");
    // Turning DNS support off under hostnames is refused; one attribute per call.
    h.post(&[
        ("Action", "ModifyVpcAttribute"),
        ("VpcId", &vpc),
        ("EnableDnsSupport.Value", "false"),
    ])
    .await
    .err("InvalidParameterValue");
    h.post(&[
        ("Action", "ModifyVpcAttribute"),
        ("VpcId", &vpc),
        ("EnableDnsSupport.Value", "true"),
        ("EnableDnsHostnames.Value", "true"),
    ])
    .await
    .err("InvalidParameterCombination");
    h.post(&[("Action", "ModifyVpcAttribute"), ("VpcId", &vpc)])
        .await
        .err("MissingParameter");
    h.post(&[
        ("Action", "ModifyVpcAttribute"),
        ("VpcId", &vpc),
        ("EnableNetworkAddressUsageMetrics.Value", "maybe"),
    ])
    .await
    .err("InvalidParameterValue");
    h.post(&[
        ("Action", "DescribeVpcAttribute"),
        ("VpcId", &vpc),
        ("Attribute", "colour"),
    ])
    .await
    .err("InvalidParameterValue");
    h.post(&[
        ("Action", "DescribeVpcAttribute"),
        ("VpcId", "vpc-0000000000000000a"),
        ("Attribute", "enableDnsSupport"),
    ])
    .await
    .err("InvalidVpcID.NotFound");
    // The derived default VPC answers its attributes.
    let default = h
        .post(&[
            ("Action", "DescribeVpcs"),
            ("Filter.1.Name", "is-default"),
            ("Filter.1.Value.1", "true"),
        ])
        .await
        .ok("DescribeVpcs")
        .text_at("vpcSet/item/vpcId")
        .to_string();
    let doc = h
        .post(&[
            ("Action", "DescribeVpcAttribute"),
            ("VpcId", &default),
            ("Attribute", "enableDnsHostnames"),
        ])
        .await
        .ok("DescribeVpcAttribute");
    assert_eq!(doc.text_at("enableDnsHostnames/value"), "true");
}

#[tokio::test]
async fn created_vpcs_and_subnets_take_tags() {
    let h = Harness::new();
    let vpc = h.create_vpc("10.0.0.0/16").await;
    let subnet = h
        .create_subnet(&vpc, "10.0.1.0/24", Some("us-east-1a"))
        .await;
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &vpc),
        ("ResourceId.2", &subnet),
        ("Tag.1.Key", "Name"),
        ("Tag.1.Value", "net"),
    ])
    .await
    .ok("CreateTags");
    let doc = h
        .post(&[
            ("Action", "DescribeTags"),
            ("Filter.1.Name", "value"),
            ("Filter.1.Value.1", "net"),
        ])
        .await
        .ok("DescribeTags");
    let mut types: Vec<String> = doc
        .items("tagSet")
        .iter()
        .map(|i| i.text("resourceType").to_string())
        .collect();
    types.sort();
    assert_eq!(types, vec!["subnet", "vpc"]);
    let doc = h
        .post(&[
            ("Action", "DescribeSubnets"),
            ("Filter.1.Name", "tag:Name"),
            ("Filter.1.Value.1", "net"),
        ])
        .await
        .ok("DescribeSubnets");
    assert_eq!(doc.text_at("subnetSet/item/subnetId"), subnet);
    h.post(&[
        ("Action", "DeleteTags"),
        ("ResourceId.1", &vpc),
        ("Tag.1.Key", "Name"),
    ])
    .await
    .ok("DeleteTags");
    let doc = h
        .post(&[("Action", "DescribeVpcs"), ("VpcId.1", &vpc)])
        .await
        .ok("DescribeVpcs");
    assert!(!doc.path("vpcSet/item").has("tagSet"));
}
