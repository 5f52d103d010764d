"""Terraform's aws_security_group and aws_vpc_security_group_ingress_rule, replayed with boto3 against ec2d.

The calls, their parameters and their order follow ../shared/design/terraform-calls.md
(hashicorp/terraform-provider-aws internal/service/ec2/vpc_security_group.go,
vpc_security_group_ingress_rule.go, find.go): a group created in a created VPC, the revoke of its
default egress rule (IPv4 fatal, IPv6 tolerated), the configured rules, the read, the
DescribeNetworkInterfaces before delete and the delete; a standalone ingress rule created with
tags, read by DescribeSecurityGroupRules, updated (ModifySecurityGroupRules, tags) and deleted by
its rule id, with the NotFound codes Terraform tolerates.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def _code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def vpc_id(ec2):
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    yield vpc_id
    ec2.delete_vpc(VpcId=vpc_id)


def _create_group(ec2, vpc_id: str, name: str) -> str:
    """aws_security_group create: the group, its wait, the default egress revokes."""
    group_id = ec2.create_security_group(
        GroupName=name,
        Description="Managed by Terraform",
        VpcId=vpc_id,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": name}]}],
    )["GroupId"]
    ec2.describe_security_groups(GroupIds=[group_id])
    ec2.revoke_security_group_egress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "-1", "FromPort": 0, "ToPort": 0, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    with pytest.raises(ClientError) as e:
        ec2.revoke_security_group_egress(
            GroupId=group_id,
            IpPermissions=[{"IpProtocol": "-1", "FromPort": 0, "ToPort": 0, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}],
        )
    assert _code(e) == "InvalidPermission.NotFound"
    return group_id


def _delete_group(ec2, group_id: str) -> None:
    """aws_security_group delete: lingering interfaces, the delete, the wait for not found."""
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [group_id]}])
    assert enis["NetworkInterfaces"] == []
    ec2.delete_security_group(GroupId=group_id)
    with pytest.raises(ClientError) as e:
        ec2.describe_security_groups(GroupIds=[group_id])
    assert _code(e) == "InvalidGroup.NotFound"


def test_terraform_security_group_in_a_created_vpc(ec2, vpc_id):
    group_id = _create_group(ec2, vpc_id, "tf-web")
    # resourceSecurityGroupUpdate: read, then the configured rules
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert group["IpPermissionsEgress"] == []
    added = ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    (rule,) = added["SecurityGroupRules"]
    assert rule["SecurityGroupRuleId"].startswith("sgr-")
    assert rule["GroupId"] == group_id and rule["IsEgress"] is False
    ec2.authorize_security_group_egress(
        GroupId=group_id, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    # read
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert group["VpcId"] == vpc_id
    assert group["GroupName"] == "tf-web" and group["Description"] == "Managed by Terraform"
    assert group["OwnerId"]
    assert group["Tags"] == [{"Key": "Name", "Value": "tf-web"}]
    (ingress,) = group["IpPermissions"]
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 22, 22)
    assert ingress["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    (egress,) = group["IpPermissionsEgress"]
    assert egress["IpProtocol"] == "-1" and "FromPort" not in egress
    # the group's rules, as revoke_rules_on_delete reads them
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])[
        "SecurityGroupRules"
    ]
    assert sorted((r["IsEgress"], r["IpProtocol"]) for r in rules) == [(False, "tcp"), (True, "-1")]
    _delete_group(ec2, group_id)


def test_terraform_vpc_security_group_ingress_rule(ec2, vpc_id):
    group_id = _create_group(ec2, vpc_id, "tf-rules")
    # create (v2: tags in the create call)
    created = ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}],
        TagSpecifications=[{"ResourceType": "security-group-rule", "Tags": [{"Key": "Name", "Value": "https"}]}],
    )
    rule_id = created["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    assert created["SecurityGroupRules"][0]["Tags"] == [{"Key": "Name", "Value": "https"}]

    def read():
        (rule,) = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]
        assert rule["SecurityGroupRuleId"] == rule_id and rule["IsEgress"] is False
        assert rule["GroupId"] == group_id and rule["GroupOwnerId"]
        return rule

    rule = read()
    assert rule["CidrIpv4"] == "10.0.0.0/8"
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    assert "CidrIpv6" not in rule and "PrefixListId" not in rule and "ReferencedGroupInfo" not in rule
    assert "Description" not in rule
    assert rule["Tags"] == [{"Key": "Name", "Value": "https"}]

    # update: a rule attribute, then tags
    assert ec2.modify_security_group_rules(
        GroupId=group_id,
        SecurityGroupRules=[
            {
                "SecurityGroupRuleId": rule_id,
                "SecurityGroupRule": {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "CidrIpv4": "10.0.0.0/8",
                    "Description": "https from the LAN",
                },
            }
        ],
    )["Return"]
    ec2.delete_tags(Resources=[rule_id], Tags=[{"Key": "Name", "Value": "https"}])
    ec2.create_tags(Resources=[rule_id], Tags=[{"Key": "Name", "Value": "tls"}])
    rule = read()
    assert rule["Description"] == "https from the LAN"
    assert rule["Tags"] == [{"Key": "Name", "Value": "tls"}]
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [rule_id]}])["Tags"]
    assert tags == [{"Key": "Name", "ResourceId": rule_id, "ResourceType": "security-group-rule", "Value": "tls"}]
    by_tag = ec2.describe_security_group_rules(Filters=[{"Name": "tag:Name", "Values": ["tls"]}])
    assert [r["SecurityGroupRuleId"] for r in by_tag["SecurityGroupRules"]] == [rule_id]

    # a description-only change, as the older aws_security_group_rule makes it: the id stays
    ec2.update_security_group_rule_descriptions_ingress(
        GroupId=group_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "tls from the LAN"}],
            }
        ],
    )
    assert read()["Description"] == "tls from the LAN"
    ec2.update_security_group_rule_descriptions_ingress(
        GroupId=group_id, SecurityGroupRuleDescriptions=[{"SecurityGroupRuleId": rule_id}]
    )
    assert "Description" not in read()

    # delete by rule id; a second delete is the NotFound Terraform tolerates
    revoked = ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=[rule_id])
    assert [r["SecurityGroupRuleId"] for r in revoked["RevokedSecurityGroupRules"]] == [rule_id]
    assert revoked["RevokedSecurityGroupRules"][0]["CidrIpv4"] == "10.0.0.0/8"
    with pytest.raises(ClientError) as e:
        ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=[rule_id])
    assert _code(e) == "InvalidSecurityGroupRuleId.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])
    assert _code(e) == "InvalidSecurityGroupRuleId.NotFound"
    _delete_group(ec2, group_id)


def test_describe_security_group_rules_pages(ec2, vpc_id):
    group_id = _create_group(ec2, vpc_id, "tf-pages")
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
            for port in range(8000, 8007)
        ],
    )
    paginator = ec2.get_paginator("describe_security_group_rules")
    pages = list(
        paginator.paginate(
            Filters=[{"Name": "group-id", "Values": [group_id]}], PaginationConfig={"PageSize": 5}
        )
    )
    assert [len(p["SecurityGroupRules"]) for p in pages] == [5, 2]
    with pytest.raises(ClientError) as e:
        ec2.describe_security_group_rules(SecurityGroupRuleIds=["sgr-zz"])
    assert _code(e) == "InvalidSecurityGroupRuleId.Malformed"
    _delete_group(ec2, group_id)
