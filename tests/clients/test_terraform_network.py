"""Terraform's aws_vpc and aws_subnet, replayed with boto3 against ec2d.

The calls, their parameters and their order follow ../shared/design/terraform-calls.md
(hashicorp/terraform-provider-aws internal/service/ec2/vpc_.go, vpc_subnet.go): create ->
wait for available (boto3's vpc_available/subnet_available waiters too) -> read (with the
VPC's three DescribeVpcAttribute calls and its default group) -> tag update -> destroy, with
DeleteVpc refused while the subnet lives (DependencyViolation, which Terraform retries).
The VPC read's DescribeNetworkAcls (default=true) and DescribeRouteTables (association.main=true),
each expecting exactly one answer, are replayed; DescribeNetworkInterfaces (subnet delete) is not.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def test_terraform_vpc_and_subnet(ec2):
    # aws_vpc create
    vpc = ec2.create_vpc(
        CidrBlock="10.0.0.0/16",
        AmazonProvidedIpv6CidrBlock=False,
        InstanceTenancy="default",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "main"}]}],
    )["Vpc"]
    vpc_id = vpc["VpcId"]
    assert vpc["State"] == "pending"
    ec2.get_waiter("vpc_available").wait(VpcIds=[vpc_id], WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    # aws_vpc read
    (read,) = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    assert read["State"] == "available"
    assert read["CidrBlock"] == "10.0.0.0/16"
    assert read["InstanceTenancy"] == "default"
    assert read["OwnerId"] and read["DhcpOptionsId"]
    assert read["IsDefault"] is False
    assert read["Tags"] == [{"Key": "Name", "Value": "main"}]
    assert read.get("Ipv6CidrBlockAssociationSet", []) == []
    expected = {"enableDnsHostnames": False, "enableDnsSupport": True, "enableNetworkAddressUsageMetrics": False}
    for attribute, value in expected.items():
        answer = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
        key = attribute[0].upper() + attribute[1:]
        assert answer[key]["Value"] is value, attribute
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [vpc_id]}]
    )["SecurityGroups"]
    assert len(groups) == 1
    acls = ec2.describe_network_acls(
        Filters=[{"Name": "default", "Values": ["true"]}, {"Name": "vpc-id", "Values": [vpc_id]}]
    )["NetworkAcls"]
    assert len(acls) == 1
    assert acls[0]["IsDefault"] is True and acls[0]["NetworkAclId"].startswith("acl-")
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.main", "Values": ["true"]}, {"Name": "vpc-id", "Values": [vpc_id]}]
    )["RouteTables"]
    assert len(tables) == 1
    assert tables[0]["RouteTableId"].startswith("rtb-")
    assert tables[0]["Routes"] == [
        {
            "DestinationCidrBlock": "10.0.0.0/16",
            "GatewayId": "local",
            "Origin": "CreateRouteTable",
            "State": "active",
        }
    ]
    # enable_dns_hostnames = true: one ModifyVpcAttribute, then its DescribeVpcAttribute waiter
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]

    # aws_subnet create
    subnet = ec2.create_subnet(
        VpcId=vpc_id,
        CidrBlock="10.0.1.0/24",
        TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "a"}]}],
    )["Subnet"]
    subnet_id = subnet["SubnetId"]
    assert subnet["State"] == "pending"
    ec2.get_waiter("subnet_available").wait(SubnetIds=[subnet_id], WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    # map_public_ip_on_launch defaults to false, as the new subnet answers: no ModifySubnetAttribute
    (read,) = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert read["MapPublicIpOnLaunch"] is False
    assert read["AssignIpv6AddressOnCreation"] is False
    assert read["EnableDns64"] is False
    assert read["VpcId"] == vpc_id
    assert read["CidrBlock"] == "10.0.1.0/24"
    assert read["AvailableIpAddressCount"] == 251
    assert read["SubnetArn"].endswith(f":subnet/{subnet_id}")
    assert read["AvailabilityZone"] and read["AvailabilityZoneId"]
    assert read["Tags"] == [{"Key": "Name", "Value": "a"}]

    # tag updates
    ec2.create_tags(Resources=[vpc_id, subnet_id], Tags=[{"Key": "env", "Value": "test"}])
    (read,) = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    assert {"Key": "env", "Value": "test"} in read["Tags"]
    ec2.delete_tags(Resources=[subnet_id], Tags=[{"Key": "env"}])
    (read,) = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert read["Tags"] == [{"Key": "Name", "Value": "a"}]

    # destroy: the VPC waits for its subnet
    with pytest.raises(ClientError) as e:
        ec2.delete_vpc(VpcId=vpc_id)
    assert e.value.response["Error"]["Code"] == "DependencyViolation"
    ec2.delete_subnet(SubnetId=subnet_id)
    with pytest.raises(ClientError) as e:
        ec2.delete_subnet(SubnetId=subnet_id)
    assert e.value.response["Error"]["Code"] == "InvalidSubnetID.NotFound"
    ec2.delete_vpc(VpcId=vpc_id)
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs(VpcIds=[vpc_id])
    assert e.value.response["Error"]["Code"] == "InvalidVpcID.NotFound"


def test_create_errors(ec2):
    for cidr, code in [("10.0.0.0/8", "InvalidVpc.Range"), ("10.0.0.0/29", "InvalidVpc.Range")]:
        with pytest.raises(ClientError) as e:
            ec2.create_vpc(CidrBlock=cidr)
        assert e.value.response["Error"]["Code"] == code
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.9.0.0/24")
    for cidr, code in [("10.8.0.0/24", "InvalidSubnet.Range"), ("10.9.0.0/25", "InvalidSubnet.Conflict")]:
        with pytest.raises(ClientError) as e:
            ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr)
        assert e.value.response["Error"]["Code"] == code
