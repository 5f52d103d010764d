"""Terraform's aws_eip (domain = "vpc", tags, no instance), replayed with boto3 against ec2d.

The calls and their order follow ../shared/design/terraform-calls.md, aws_eip
(hashicorp/terraform-provider-aws internal/service/ec2/ec2_eip.go): create -> read -> tag
update -> destroy. Association (`instance` / `network_interface`) is not replayed: ec2d does not
associate Elastic IPs yet.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def read_eip(ec2, allocation_id: str) -> dict | None:
    """resourceEIPRead: the id must be an allocation id; DescribeAddresses by it, then
    DescribeAddressesAttribute(domain-name), whose not-found is tolerated."""
    assert allocation_id.startswith("eipalloc-"), "EC2-Classic"
    try:
        addresses = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"]
    except ClientError as e:
        if e.response["Error"]["Code"] == "InvalidAllocationID.NotFound":
            return None
        raise
    assert len(addresses) == 1, addresses
    [address] = addresses
    attrs = ec2.describe_addresses_attribute(AllocationIds=[allocation_id], Attribute="domain-name")
    for a in attrs.get("Addresses", []):
        assert a["AllocationId"] == allocation_id and "PtrRecord" not in a
    return address


def test_aws_eip_end_to_end(ec2):
    created = ec2.allocate_address(
        Domain="vpc",
        TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": [{"Key": "Name", "Value": "tf-eip"}]}],
    )
    allocation_id = created["AllocationId"]
    assert created["Domain"] == "vpc"
    public_ip = created["PublicIp"]
    assert public_ip.startswith(("198.51.100.", "203.0.113."))

    address = read_eip(ec2, allocation_id)
    assert address is not None
    assert address["PublicIp"] == public_ip and address["Domain"] == "vpc"
    assert address["NetworkBorderGroup"] == "us-east-1"
    assert address["PublicIpv4Pool"] == "amazon"
    assert "AssociationId" not in address and "InstanceId" not in address
    assert address["Tags"] == [{"Key": "Name", "Value": "tf-eip"}]

    # Update tags.
    ec2.create_tags(Resources=[allocation_id], Tags=[{"Key": "env", "Value": "test"}])
    ec2.delete_tags(Resources=[allocation_id], Tags=[{"Key": "Name"}])
    address = read_eip(ec2, allocation_id)
    assert address["Tags"] == [{"Key": "env", "Value": "test"}]
    by_ip = ec2.describe_addresses(PublicIps=[public_ip])["Addresses"]
    assert [a["AllocationId"] for a in by_ip] == [allocation_id]

    # Destroy: not associated, so only ReleaseAddress (NetworkBorderGroup from state).
    ec2.release_address(AllocationId=allocation_id, NetworkBorderGroup=address["NetworkBorderGroup"])
    assert read_eip(ec2, allocation_id) is None
    with pytest.raises(ClientError) as e:
        ec2.release_address(AllocationId=allocation_id)
    assert e.value.response["Error"]["Code"] == "InvalidAllocationID.NotFound"
