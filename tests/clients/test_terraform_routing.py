"""Terraform's aws_internet_gateway, aws_route_table and aws_route_table_association, replayed with boto3.

The calls, their parameters and their order follow ../shared/design/terraform-calls.md
(hashicorp/terraform-provider-aws internal/service/ec2/vpc_internet_gateway.go,
vpc_route_table.go); aws_route_table_association follows vpc_route_table_association.go:
AssociateRouteTable, then its waiter and read (DescribeRouteTables filtered by
association.route-table-association-id, reading AssociationState.State), a route table change
through ReplaceRouteTableAssociation, and DisassociateRouteTable with a wait until the filter
finds nothing. Each step asserts the response fields the provider reads.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def code_of(call, **kwargs) -> str:
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return e.value.response["Error"]["Code"]


def tags(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def association_by_id(ec2, association_id: str):
    """FindRouteTableAssociationByID: the association of the one table the filter finds."""
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.route-table-association-id", "Values": [association_id]}]
    )["RouteTables"]
    for table in tables:
        for association in table.get("Associations", []):
            if association["RouteTableAssociationId"] == association_id:
                return association
    return None


def test_terraform_gateway_route_table_and_association(ec2):
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]

    # aws_internet_gateway create: CreateInternetGateway, AttachInternetGateway, wait, read
    igw = ec2.create_internet_gateway(
        TagSpecifications=[{"ResourceType": "internet-gateway", "Tags": tags({"Name": "gw"})}]
    )["InternetGateway"]
    igw_id = igw["InternetGatewayId"]
    assert igw_id.startswith("igw-")
    assert igw.get("Attachments", []) == []
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    (read,) = ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"]
    assert read["Attachments"] == [{"State": "available", "VpcId": vpc_id}]
    assert read["OwnerId"]
    assert read["Tags"] == tags({"Name": "gw"})
    # update tags
    ec2.create_tags(Resources=[igw_id], Tags=tags({"env": "test"}))
    (read,) = ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"]
    assert {"Key": "env", "Value": "test"} in read["Tags"]

    # aws_route_table create: CreateRouteTable, wait, CreateRoute, wait for the route, read
    table = ec2.create_route_table(
        VpcId=vpc_id,
        TagSpecifications=[{"ResourceType": "route-table", "Tags": tags({"Name": "public"})}],
    )["RouteTable"]
    table_id = table["RouteTableId"]
    assert table_id.startswith("rtb-")
    ec2.describe_route_tables(RouteTableIds=[table_id])
    ec2.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id)
    (read,) = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"]
    route = next(r for r in read["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")
    assert route == {
        "DestinationCidrBlock": "0.0.0.0/0",
        "GatewayId": igw_id,
        "Origin": "CreateRoute",
        "State": "active",
    }
    assert read["VpcId"] == vpc_id and read["OwnerId"]
    assert read.get("PropagatingVgws", []) == []
    assert read["Tags"] == tags({"Name": "public"})
    assert read.get("Associations", []) == []
    # a second apply of the same route: RouteAlreadyExists
    assert (
        code_of(ec2.create_route, RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id)
        == "RouteAlreadyExists"
    )

    # aws_route_table_association create, wait and read
    association_id = ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)["AssociationId"]
    association = association_by_id(ec2, association_id)
    assert association["AssociationState"]["State"] == "associated"
    assert association["RouteTableId"] == table_id and association["SubnetId"] == subnet_id
    assert association["Main"] is False
    assert code_of(ec2.associate_route_table, RouteTableId=table_id, SubnetId=subnet_id) == "Resource.AlreadyAssociated"
    # route_table_id changed: ReplaceRouteTableAssociation, then read under the new id
    other_id = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    answer = ec2.replace_route_table_association(AssociationId=association_id, RouteTableId=other_id)
    new_id = answer["NewAssociationId"]
    assert answer["AssociationState"]["State"] == "associated"
    assert association_by_id(ec2, association_id) is None
    assert association_by_id(ec2, new_id)["RouteTableId"] == other_id

    # the main table: aws_vpc's read and aws_main_route_table_association's replace
    (main,) = ec2.describe_route_tables(
        Filters=[{"Name": "association.main", "Values": ["true"]}, {"Name": "vpc-id", "Values": [vpc_id]}]
    )["RouteTables"]
    main_association = next(a for a in main["Associations"] if a["Main"])
    replaced = ec2.replace_route_table_association(
        AssociationId=main_association["RouteTableAssociationId"], RouteTableId=table_id
    )["NewAssociationId"]
    (now_main,) = ec2.describe_route_tables(
        Filters=[{"Name": "association.main", "Values": ["true"]}, {"Name": "vpc-id", "Values": [vpc_id]}]
    )["RouteTables"]
    assert now_main["RouteTableId"] == table_id
    ec2.replace_route_table_association(AssociationId=replaced, RouteTableId=main["RouteTableId"])

    # destroy, in Terraform's dependency order
    # aws_route_table_association delete: DisassociateRouteTable, wait until the filter finds nothing
    ec2.disassociate_route_table(AssociationId=new_id)
    assert association_by_id(ec2, new_id) is None
    assert code_of(ec2.disassociate_route_table, AssociationId=new_id) == "InvalidAssociationID.NotFound"
    ec2.delete_route_table(RouteTableId=other_id)
    # aws_route_table delete: read, disassociate the (now none), DeleteRouteTable, wait deleted
    (read,) = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"]
    for association in read.get("Associations", []):
        if not association["Main"]:
            ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
    ec2.delete_route_table(RouteTableId=table_id)
    assert code_of(ec2.describe_route_tables, RouteTableIds=[table_id]) == "InvalidRouteTableID.NotFound"
    assert code_of(ec2.delete_route_table, RouteTableId=table_id) == "InvalidRouteTableID.NotFound"
    # aws_internet_gateway delete: the VPC is refused while it is attached
    assert code_of(ec2.delete_vpc, VpcId=vpc_id) == "DependencyViolation"
    assert code_of(ec2.delete_internet_gateway, InternetGatewayId=igw_id) == "DependencyViolation"
    ec2.detach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    (read,) = ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"]
    assert read.get("Attachments", []) == []
    assert (
        code_of(ec2.detach_internet_gateway, InternetGatewayId=igw_id, VpcId=vpc_id) == "Gateway.NotAttached"
    )
    ec2.delete_internet_gateway(InternetGatewayId=igw_id)
    assert (
        code_of(ec2.delete_internet_gateway, InternetGatewayId=igw_id) == "InvalidInternetGatewayID.NotFound"
    )
    ec2.delete_subnet(SubnetId=subnet_id)
    ec2.delete_vpc(VpcId=vpc_id)


def test_default_vpc_routing_is_derived(ec2):
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    (igw,) = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}]
    )["InternetGateways"]
    (main,) = ec2.describe_route_tables(
        Filters=[{"Name": "association.main", "Values": ["true"]}, {"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    )["RouteTables"]
    assert [r["GatewayId"] for r in main["Routes"]] == ["local", igw["InternetGatewayId"]]
    (acl,) = ec2.describe_network_acls(
        Filters=[{"Name": "default", "Values": ["true"]}, {"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    )["NetworkAcls"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    assert sorted(a["SubnetId"] for a in acl["Associations"]) == sorted(s["SubnetId"] for s in subnets)
    assert {(e["RuleNumber"], e["RuleAction"], e["Egress"]) for e in acl["Entries"]} == {
        (100, "allow", True),
        (32767, "deny", True),
        (100, "allow", False),
        (32767, "deny", False),
    }
