//! `DryRun=true` over the whole dispatch table: every action validates, answers `DryRunOperation` (HTTP 412) and writes nothing.

mod common;

use axum::http::StatusCode;
use base64::Engine;
use common::api::Harness;
use ec2d::api::dispatch;
use ec2d::model::{fixtures, InstanceState, InstanceStatus};

/// What the store holds, as a client could tell: every record and its resource version.
fn snapshot(h: &Harness) -> Vec<(String, u64)> {
    let store = &h.store;
    let mut all = Vec::new();
    for i in store.instances().list().unwrap().objects {
        all.push((i.metadata.name, i.metadata.resource_version));
    }
    for i in store.images().list().unwrap().objects {
        all.push((i.metadata.name, i.metadata.resource_version));
    }
    for k in store.key_pairs().list().unwrap().objects {
        all.push((k.metadata.name, k.metadata.resource_version));
    }
    for g in store.security_groups().list().unwrap().objects {
        all.push((g.metadata.name, g.metadata.resource_version));
    }
    for t in store.launch_templates().list().unwrap().objects {
        all.push((t.metadata.name, t.metadata.resource_version));
    }
    for v in store.vpcs().list().unwrap().objects {
        all.push((v.metadata.name, v.metadata.resource_version));
    }
    for s in store.subnets().list().unwrap().objects {
        all.push((s.metadata.name, s.metadata.resource_version));
    }
    for a in store.addresses().list().unwrap().objects {
        all.push((a.metadata.name, a.metadata.resource_version));
    }
    all.extend(
        store
            .instance_addresses()
            .unwrap()
            .into_iter()
            .map(|(instance, address)| (format!("{instance}={address}"), 0)),
    );
    for g in store.internet_gateways().list().unwrap().objects {
        all.push((g.metadata.name, g.metadata.resource_version));
    }
    for t in store.route_tables().list().unwrap().objects {
        all.push((t.metadata.name, t.metadata.resource_version));
    }
    for s in store.snapshots().list().unwrap().objects {
        all.push((s.metadata.name, s.metadata.resource_version));
    }
    for v in store.volumes().list().unwrap().objects {
        all.push((v.metadata.name, v.metadata.resource_version));
    }
    all
}

#[tokio::test]
async fn every_action_answers_dry_run_after_validating_and_writes_nothing() {
    let h = Harness::new();
    // A world every action can act on: a key pair, a group with a rule, a running instance.
    h.post(&[
        ("Action", "CreateKeyPair"),
        ("KeyName", "kp"),
        ("KeyType", "ed25519"),
    ])
    .await
    .ok("CreateKeyPair");
    let doc = h
        .post(&[
            ("Action", "DescribeKeyPairs"),
            ("KeyName.1", "kp"),
            ("IncludePublicKey", "true"),
        ])
        .await
        .ok("DescribeKeyPairs");
    let public_key = base64::engine::general_purpose::STANDARD
        .encode(doc.text_at("keySet/item/publicKey").as_bytes());
    let doc = h
        .post(&[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", "web"),
            ("GroupDescription", "web servers"),
        ])
        .await
        .ok("CreateSecurityGroup");
    let group_id = doc.text_at("groupId").to_string();
    let rule_id = h
        .post(&[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupId", &group_id),
            ("IpProtocol", "tcp"),
            ("FromPort", "80"),
            ("ToPort", "80"),
            ("CidrIp", "0.0.0.0/0"),
        ])
        .await
        .ok("AuthorizeSecurityGroupIngress")
        .text_at("securityGroupRuleSet/item/securityGroupRuleId")
        .to_string();
    let doc = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-12345678"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await
        .ok("RunInstances");
    let id = doc.text_at("instancesSet/item/instanceId").to_string();
    let eni = doc
        .text_at("instancesSet/item/networkInterfaceSet/item/networkInterfaceId")
        .to_string();
    // An instance launched with an IAM instance profile, for the association actions.
    h.post(&[
        ("Action", "RunInstances"),
        ("ImageId", "ami-12345678"),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("IamInstanceProfile.Name", "world-role"),
    ])
    .await
    .ok("RunInstances");
    let iam_association = h
        .post(&[("Action", "DescribeIamInstanceProfileAssociations")])
        .await
        .ok("DescribeIamInstanceProfileAssociations")
        .text_at("iamInstanceProfileAssociationSet/item/associationId")
        .to_string();
    // A launch template with two versions.
    h.post(&[
        ("Action", "CreateLaunchTemplate"),
        ("LaunchTemplateName", "world"),
        ("LaunchTemplateData.ImageId", "ami-12345678"),
    ])
    .await
    .ok("CreateLaunchTemplate");
    h.post(&[
        ("Action", "CreateLaunchTemplateVersion"),
        ("LaunchTemplateName", "world"),
        ("SourceVersion", "1"),
        ("LaunchTemplateData.InstanceType", "t3.micro"),
    ])
    .await
    .ok("CreateLaunchTemplateVersion");
    let generation = h.instance(&id).metadata.generation;
    h.store
        .instances()
        .write_status(
            &id,
            &InstanceStatus {
                state: Some(InstanceState::Running),
                observed_generation: generation,
                ..Default::default()
            },
        )
        .unwrap();

    // An available AMI of the account's own, for the image actions.
    let ami = h
        .post(&[
            ("Action", "CreateImage"),
            ("InstanceId", &id),
            ("Name", "base"),
        ])
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();
    let made = h.store.images().get(&ami).unwrap().unwrap();
    h.store
        .images()
        .write_status(
            &ami,
            &ec2d::model::ImageStatus {
                state: Some(ec2d::model::ImageState::Available),
                observed_generation: made.metadata.generation,
                ..Default::default()
            },
        )
        .unwrap();

    // A volume (as the volume API and its reconciler leave one) with a snapshot of it.
    let volume_id = "vol-0123456789abcdef0";
    let mut volume = fixtures::volume_of(
        volume_id,
        fixtures::volume_spec("us-east-1a", "gp3", 8),
        ec2d::model::now(),
    );
    volume.status.ready = true;
    h.store.create_volume(&volume).unwrap();
    h.store
        .volumes()
        .write_status(volume_id, &volume.status)
        .unwrap();
    let snapshot_id = h
        .post(&[("Action", "CreateSnapshot"), ("VolumeId", volume_id)])
        .await
        .ok("CreateSnapshot")
        .text("snapshotId")
        .to_string();
    let snapshot_id = snapshot_id.as_str();

    let address = h
        .post(&[("Action", "AllocateAddress"), ("Domain", "vpc")])
        .await
        .ok("AllocateAddress")
        .text_at("allocationId")
        .to_string();
    // A second address, associated with the running instance.
    let associated = h
        .post(&[("Action", "AllocateAddress"), ("Domain", "vpc")])
        .await
        .ok("AllocateAddress")
        .text_at("allocationId")
        .to_string();
    let association = h
        .post(&[
            ("Action", "AssociateAddress"),
            ("AllocationId", &associated),
            ("InstanceId", &id),
        ])
        .await
        .ok("AssociateAddress")
        .text_at("associationId")
        .to_string();
    // An empty VPC, and another with a subnet.
    let empty_vpc = h
        .post(&[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")])
        .await
        .ok("CreateVpc")
        .text_at("vpc/vpcId")
        .to_string();
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
            ("CidrBlock", "10.1.0.0/24"),
        ])
        .await
        .ok("CreateSubnet")
        .text_at("subnet/subnetId")
        .to_string();

    let subnet2 = h
        .post(&[
            ("Action", "CreateSubnet"),
            ("VpcId", &vpc),
            ("CidrBlock", "10.1.2.0/24"),
        ])
        .await
        .ok("CreateSubnet")
        .text_at("subnet/subnetId")
        .to_string();
    // Gateways (one attached to `vpc`), two tables of `vpc` (one with a route and a subnet).
    let mut gateways = Vec::new();
    for _ in 0..2 {
        let doc = h
            .post(&[("Action", "CreateInternetGateway")])
            .await
            .ok("CreateInternetGateway");
        gateways.push(doc.text_at("internetGateway/internetGatewayId").to_string());
    }
    let (igw_attached, igw_free) = (gateways[0].clone(), gateways[1].clone());
    h.post(&[
        ("Action", "AttachInternetGateway"),
        ("InternetGatewayId", &igw_attached),
        ("VpcId", &vpc),
    ])
    .await
    .ok("AttachInternetGateway");
    let mut tables = Vec::new();
    for _ in 0..2 {
        let doc = h
            .post(&[("Action", "CreateRouteTable"), ("VpcId", &vpc)])
            .await
            .ok("CreateRouteTable");
        tables.push(doc.text_at("routeTable/routeTableId").to_string());
    }
    let (table, table2) = (tables[0].clone(), tables[1].clone());
    h.post(&[
        ("Action", "CreateRoute"),
        ("RouteTableId", &table),
        ("DestinationCidrBlock", "0.0.0.0/0"),
        ("GatewayId", &igw_attached),
    ])
    .await
    .ok("CreateRoute");
    let rtb_association = h
        .post(&[
            ("Action", "AssociateRouteTable"),
            ("RouteTableId", &table),
            ("SubnetId", &subnet),
        ])
        .await
        .ok("AssociateRouteTable")
        .text_at("associationId")
        .to_string();

    // Two ready volumes in the instance's zone, one of them attached to it.
    let zone = h.instance(&id).spec.availability_zone.clone();
    let mut volumes = Vec::new();
    for _ in 0..2 {
        let volume = h
            .post(&[
                ("Action", "CreateVolume"),
                ("AvailabilityZone", &zone),
                ("Size", "8"),
            ])
            .await
            .ok("CreateVolume")
            .text_at("volumeId")
            .to_string();
        h.store
            .volumes()
            .write_status(
                &volume,
                &ec2d::model::VolumeStatus {
                    ready: true,
                    ..Default::default()
                },
            )
            .unwrap();
        volumes.push(volume);
    }
    let (vol_free, vol_attached) = (volumes[0].as_str(), volumes[1].as_str());
    h.post(&[
        ("Action", "AttachVolume"),
        ("VolumeId", vol_attached),
        ("InstanceId", &id),
        ("Device", "/dev/sdf"),
    ])
    .await
    .ok("AttachVolume");

    let id = id.as_str();
    let ami = ami.as_str();
    let address = address.as_str();
    let group = group_id.as_str();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "RunInstances",
            vec![
                ("ImageId", "ami-12345678"),
                ("MinCount", "1"),
                ("MaxCount", "1"),
            ],
        ),
        ("DescribeInstances", vec![]),
        ("StopInstances", vec![("InstanceId.1", id)]),
        ("StartInstances", vec![("InstanceId.1", id)]),
        ("TerminateInstances", vec![("InstanceId.1", id)]),
        ("RebootInstances", vec![("InstanceId.1", id)]),
        (
            "DescribeInstanceAttribute",
            vec![("InstanceId", id), ("Attribute", "instanceType")],
        ),
        ("DescribeInstanceStatus", vec![]),
        (
            "ModifyInstanceAttribute",
            vec![("InstanceId", id), ("DisableApiTermination.Value", "true")],
        ),
        ("DescribeInstanceCreditSpecifications", vec![]),
        (
            "ModifyInstanceCreditSpecification",
            vec![
                ("InstanceCreditSpecification.1.InstanceId", id),
                ("InstanceCreditSpecification.1.CpuCredits", "standard"),
            ],
        ),
        (
            "ModifyInstanceMetadataOptions",
            vec![("InstanceId", id), ("HttpTokens", "required")],
        ),
        (
            "AssociateIamInstanceProfile",
            vec![("InstanceId", id), ("IamInstanceProfile.Name", "web")],
        ),
        (
            "DisassociateIamInstanceProfile",
            vec![("AssociationId", iam_association.as_str())],
        ),
        (
            "ReplaceIamInstanceProfileAssociation",
            vec![
                ("AssociationId", iam_association.as_str()),
                ("IamInstanceProfile.Name", "web"),
            ],
        ),
        (
            "DescribeIamInstanceProfileAssociations",
            vec![("AssociationId.1", iam_association.as_str())],
        ),
        ("MonitorInstances", vec![("InstanceId.1", id)]),
        ("UnmonitorInstances", vec![("InstanceId.1", id)]),
        (
            "GetConsoleOutput",
            vec![("InstanceId", id), ("Latest", "true")],
        ),
        ("GetPasswordData", vec![("InstanceId", id)]),
        (
            "DescribeInstanceTypes",
            vec![("InstanceType.1", "t3.micro")],
        ),
        (
            "DescribeInstanceTypeOfferings",
            vec![("LocationType", "availability-zone")],
        ),
        ("DescribeImages", vec![]),
        ("CreateImage", vec![("InstanceId", id), ("Name", "snap")]),
        (
            "CopyImage",
            vec![
                ("SourceImageId", ami),
                ("SourceRegion", "us-east-1"),
                ("Name", "copy"),
            ],
        ),
        ("DeregisterImage", vec![("ImageId", ami)]),
        (
            "DescribeImageAttribute",
            vec![("ImageId", ami), ("Attribute", "description")],
        ),
        (
            "ModifyImageAttribute",
            vec![("ImageId", ami), ("Description.Value", "new")],
        ),
        ("DescribeSnapshots", vec![]),
        ("CreateSnapshot", vec![("VolumeId", volume_id)]),
        (
            "CreateSnapshots",
            vec![("InstanceSpecification.InstanceId", id)],
        ),
        ("DeleteSnapshot", vec![("SnapshotId", snapshot_id)]),
        (
            "CopySnapshot",
            vec![
                ("SourceRegion", "us-east-1"),
                ("SourceSnapshotId", snapshot_id),
            ],
        ),
        (
            "DescribeSnapshotAttribute",
            vec![
                ("SnapshotId", snapshot_id),
                ("Attribute", "createVolumePermission"),
            ],
        ),
        (
            "ModifySnapshotAttribute",
            vec![
                ("SnapshotId", snapshot_id),
                ("CreateVolumePermission.Add.1.Group", "all"),
            ],
        ),
        (
            "ResetSnapshotAttribute",
            vec![
                ("SnapshotId", snapshot_id),
                ("Attribute", "createVolumePermission"),
            ],
        ),
        ("DescribeRegions", vec![]),
        ("DescribeAvailabilityZones", vec![]),
        ("CreateKeyPair", vec![("KeyName", "other")]),
        (
            "ImportKeyPair",
            vec![("KeyName", "imported"), ("PublicKeyMaterial", &public_key)],
        ),
        ("DescribeKeyPairs", vec![]),
        ("DeleteKeyPair", vec![("KeyName", "kp")]),
        ("DescribeVpcs", vec![]),
        ("CreateVpc", vec![("CidrBlock", "10.2.0.0/16")]),
        ("DeleteVpc", vec![("VpcId", &empty_vpc)]),
        (
            "DescribeVpcAttribute",
            vec![("VpcId", &vpc), ("Attribute", "enableDnsSupport")],
        ),
        (
            "ModifyVpcAttribute",
            vec![("VpcId", &vpc), ("EnableDnsHostnames.Value", "true")],
        ),
        ("DescribeSubnets", vec![]),
        ("DescribeNetworkInterfaces", vec![]),
        (
            "DescribeNetworkInterfaceAttribute",
            vec![("NetworkInterfaceId", &eni), ("Attribute", "groupSet")],
        ),
        (
            "ModifyNetworkInterfaceAttribute",
            vec![
                ("NetworkInterfaceId", &eni),
                ("SecurityGroupId.1", &group_id),
            ],
        ),
        (
            "ResetNetworkInterfaceAttribute",
            vec![
                ("NetworkInterfaceId", &eni),
                ("SourceDestCheck", "sourceDestCheck"),
            ],
        ),
        ("AllocateAddress", vec![("Domain", "vpc")]),
        ("DescribeAddresses", vec![]),
        (
            "CreateVolume",
            vec![("AvailabilityZone", zone.as_str()), ("Size", "8")],
        ),
        ("DescribeVolumes", vec![]),
        ("DeleteVolume", vec![("VolumeId", vol_free)]),
        (
            "AttachVolume",
            vec![
                ("VolumeId", vol_free),
                ("InstanceId", id),
                ("Device", "/dev/sdg"),
            ],
        ),
        ("DetachVolume", vec![("VolumeId", vol_attached)]),
        ("ModifyVolume", vec![("VolumeId", vol_free), ("Size", "20")]),
        ("DescribeVolumesModifications", vec![]),
        ("DescribeVolumeStatus", vec![("VolumeId.1", vol_free)]),
        (
            "DescribeVolumeAttribute",
            vec![("VolumeId", vol_free), ("Attribute", "autoEnableIO")],
        ),
        (
            "ModifyVolumeAttribute",
            vec![("VolumeId", vol_free), ("AutoEnableIO.Value", "true")],
        ),
        (
            "DescribeAddressesAttribute",
            vec![("Attribute", "domain-name")],
        ),
        ("ReleaseAddress", vec![("AllocationId", address)]),
        (
            "AssociateAddress",
            vec![("AllocationId", address), ("InstanceId", id)],
        ),
        ("DisassociateAddress", vec![("AssociationId", &association)]),
        (
            "CreateSubnet",
            vec![("VpcId", &vpc), ("CidrBlock", "10.1.1.0/24")],
        ),
        ("DeleteSubnet", vec![("SubnetId", &subnet)]),
        (
            "ModifySubnetAttribute",
            vec![("SubnetId", &subnet), ("MapPublicIpOnLaunch.Value", "true")],
        ),
        ("CreateInternetGateway", vec![]),
        (
            "AttachInternetGateway",
            vec![("InternetGatewayId", &igw_free), ("VpcId", &empty_vpc)],
        ),
        (
            "DetachInternetGateway",
            vec![("InternetGatewayId", &igw_attached), ("VpcId", &vpc)],
        ),
        (
            "DeleteInternetGateway",
            vec![("InternetGatewayId", &igw_free)],
        ),
        ("DescribeInternetGateways", vec![]),
        ("CreateRouteTable", vec![("VpcId", &vpc)]),
        ("DeleteRouteTable", vec![("RouteTableId", &table2)]),
        ("DescribeRouteTables", vec![]),
        (
            "CreateRoute",
            vec![
                ("RouteTableId", &table),
                ("DestinationCidrBlock", "10.9.0.0/16"),
                ("GatewayId", &igw_attached),
            ],
        ),
        (
            "ReplaceRoute",
            vec![
                ("RouteTableId", &table),
                ("DestinationCidrBlock", "0.0.0.0/0"),
                ("GatewayId", &igw_attached),
            ],
        ),
        (
            "DeleteRoute",
            vec![
                ("RouteTableId", &table),
                ("DestinationCidrBlock", "0.0.0.0/0"),
            ],
        ),
        (
            "AssociateRouteTable",
            vec![("RouteTableId", &table), ("SubnetId", &subnet2)],
        ),
        (
            "DisassociateRouteTable",
            vec![("AssociationId", &rtb_association)],
        ),
        (
            "ReplaceRouteTableAssociation",
            vec![
                ("AssociationId", &rtb_association),
                ("RouteTableId", &table2),
            ],
        ),
        ("DescribeNetworkAcls", vec![]),
        ("DescribeSecurityGroups", vec![]),
        (
            "CreateSecurityGroup",
            vec![("GroupName", "db"), ("GroupDescription", "databases")],
        ),
        ("DeleteSecurityGroup", vec![("GroupId", group)]),
        (
            "AuthorizeSecurityGroupIngress",
            vec![
                ("GroupId", group),
                ("IpProtocol", "tcp"),
                ("FromPort", "81"),
                ("ToPort", "81"),
                ("CidrIp", "0.0.0.0/0"),
            ],
        ),
        (
            "AuthorizeSecurityGroupEgress",
            vec![
                ("GroupId", group),
                ("IpPermissions.1.IpProtocol", "tcp"),
                ("IpPermissions.1.FromPort", "443"),
                ("IpPermissions.1.ToPort", "443"),
                ("IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8"),
            ],
        ),
        (
            "RevokeSecurityGroupIngress",
            vec![
                ("GroupId", group),
                ("IpProtocol", "tcp"),
                ("FromPort", "80"),
                ("ToPort", "80"),
                ("CidrIp", "0.0.0.0/0"),
            ],
        ),
        (
            "RevokeSecurityGroupEgress",
            vec![
                ("GroupId", group),
                ("IpPermissions.1.IpProtocol", "-1"),
                ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
            ],
        ),
        (
            "DescribeSecurityGroupRules",
            vec![("SecurityGroupRuleId.1", rule_id.as_str())],
        ),
        (
            "ModifySecurityGroupRules",
            vec![
                ("GroupId", group),
                ("SecurityGroupRule.1.SecurityGroupRuleId", rule_id.as_str()),
                ("SecurityGroupRule.1.SecurityGroupRule.IpProtocol", "tcp"),
                ("SecurityGroupRule.1.SecurityGroupRule.FromPort", "8080"),
                ("SecurityGroupRule.1.SecurityGroupRule.ToPort", "8080"),
                (
                    "SecurityGroupRule.1.SecurityGroupRule.CidrIpv4",
                    "0.0.0.0/0",
                ),
            ],
        ),
        (
            "UpdateSecurityGroupRuleDescriptionsIngress",
            vec![
                ("GroupId", group),
                (
                    "SecurityGroupRuleDescription.1.SecurityGroupRuleId",
                    rule_id.as_str(),
                ),
                ("SecurityGroupRuleDescription.1.Description", "web"),
            ],
        ),
        (
            "UpdateSecurityGroupRuleDescriptionsEgress",
            vec![
                ("GroupId", group),
                ("IpPermissions.1.IpProtocol", "-1"),
                ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
                ("IpPermissions.1.IpRanges.1.Description", "out"),
            ],
        ),
        (
            "CreateTags",
            vec![
                ("ResourceId.1", id),
                ("Tag.1.Key", "Name"),
                ("Tag.1.Value", "web"),
            ],
        ),
        ("DeleteTags", vec![("ResourceId.1", id)]),
        ("DescribeTags", vec![]),
        (
            "CreateLaunchTemplate",
            vec![
                ("LaunchTemplateName", "other"),
                ("LaunchTemplateData.ImageId", "ami-12345678"),
            ],
        ),
        (
            "CreateLaunchTemplateVersion",
            vec![
                ("LaunchTemplateName", "world"),
                ("SourceVersion", "1"),
                ("LaunchTemplateData.InstanceType", "t3.small"),
            ],
        ),
        ("DescribeLaunchTemplates", vec![]),
        (
            "DescribeLaunchTemplateVersions",
            vec![("LaunchTemplateName", "world")],
        ),
        (
            "ModifyLaunchTemplate",
            vec![("LaunchTemplateName", "world"), ("SetDefaultVersion", "2")],
        ),
        (
            "DeleteLaunchTemplate",
            vec![("LaunchTemplateName", "world")],
        ),
        (
            "DeleteLaunchTemplateVersions",
            vec![
                ("LaunchTemplateName", "world"),
                ("LaunchTemplateVersion.1", "2"),
            ],
        ),
    ];

    // The table and the cases agree: a new action needs its case here.
    let mut covered: Vec<&str> = cases.iter().map(|(name, _)| *name).collect();
    covered.sort_unstable();
    let mut table = dispatch::names();
    table.sort_unstable();
    assert_eq!(
        covered, table,
        "every action of the table has a DryRun case"
    );

    let before = snapshot(&h);
    for (action, params) in &cases {
        let mut request = vec![("Action", *action), ("DryRun", "true")];
        request.extend(params.iter().copied());
        let message = h
            .post(&request)
            .await
            .err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
        assert_eq!(
            message, "Request would have succeeded, but DryRun flag is set.",
            "{action}"
        );
        // Without DryRun the same request is valid: the case is a real request, not a stub.
        // (Checked only for reads, which change nothing.)
        if dispatch::lookup(action).map(|a| a.access) == Some(dispatch::Access::Read) {
            let plain: Vec<(&str, &str)> = request
                .iter()
                .copied()
                .filter(|(k, _)| *k != "DryRun")
                .collect();
            h.post(&plain).await.ok(action);
        }
    }
    assert_eq!(snapshot(&h), before, "a DryRun wrote to the store");

    // An attribute ec2d would refuse to change still answers DryRun the EC2 way.
    h.post(&[
        ("Action", "ModifyInstanceAttribute"),
        ("InstanceId", id),
        ("Kernel.Value", "aki-12345678"),
        ("DryRun", "true"),
    ])
    .await
    .err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    h.post(&[
        ("Action", "ModifyInstanceAttribute"),
        ("InstanceId", id),
        ("Kernel.Value", "aki-12345678"),
    ])
    .await
    .err("UnsupportedOperation");

    // A launch from a template answers DryRun once the template and the launch are valid.
    h.post(&[
        ("Action", "RunInstances"),
        ("LaunchTemplate.LaunchTemplateName", "world"),
        ("LaunchTemplate.Version", "$Latest"),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("DryRun", "true"),
    ])
    .await
    .err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    h.post(&[
        ("Action", "RunInstances"),
        ("LaunchTemplate.LaunchTemplateName", "world"),
        ("LaunchTemplate.Version", "7"),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("DryRun", "true"),
    ])
    .await
    .err("InvalidLaunchTemplateId.VersionNotFound");
    assert_eq!(snapshot(&h), before, "a DryRun wrote to the store");

    // Validation comes first: a malformed id is refused even with DryRun.
    h.post(&[
        ("Action", "StopInstances"),
        ("InstanceId.1", "not-an-id"),
        ("DryRun", "true"),
    ])
    .await
    .err("InvalidInstanceID.Malformed");
}
