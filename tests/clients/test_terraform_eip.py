"""Terraform's aws_eip (domain = "vpc", tags; then with `instance`) and aws_eip_association,
replayed with boto3 against ec2d.

The calls and their order follow ../shared/design/terraform-calls.md, aws_eip
(hashicorp/terraform-provider-aws internal/service/ec2/ec2_eip.go): create -> read -> tag
update -> destroy; with `instance` set, create also sends AssociateAddress and reads the
association back by `association-id` before the Read, and destroy disassociates first
(`InvalidAssociationID.NotFound` tolerated). aws_eip_association (ec2_eip_association.go) is
the same AssociateAddress / DescribeAddresses(association-id) / DisassociateAddress cycle.
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


def error_code(call, **params) -> str:
    """The EC2 error code `call(**params)` fails with."""
    with pytest.raises(ClientError) as e:
        call(**params)
    return e.value.response["Error"]["Code"]


def find_by_association(ec2, association_id: str) -> dict | None:
    """FindEIPByAssociationID: DescribeAddresses filtered by association-id."""
    addresses = ec2.describe_addresses(Filters=[{"Name": "association-id", "Values": [association_id]}])[
        "Addresses"
    ]
    assert len(addresses) <= 1, addresses
    return addresses[0] if addresses else None


def instance_of(ec2, instance_id: str) -> dict:
    [r] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    [i] = r["Instances"]
    return i


def test_aws_eip_with_instance(ec2, launch):
    _, [instance_id] = launch()
    before = instance_of(ec2, instance_id)
    eni = before["NetworkInterfaces"][0]["NetworkInterfaceId"]
    private_ip = before["PrivateIpAddress"]

    # Create: allocate, wait until DescribeAddresses finds it, associate, read the association.
    created = ec2.allocate_address(
        Domain="vpc",
        TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": [{"Key": "Name", "Value": "tf-eip-web"}]}],
    )
    allocation_id, public_ip = created["AllocationId"], created["PublicIp"]
    assert read_eip(ec2, allocation_id) is not None
    associated = ec2.associate_address(AllocationId=allocation_id, InstanceId=instance_id)
    association_id = associated["AssociationId"]
    assert association_id.startswith("eipassoc-")
    found = find_by_association(ec2, association_id)
    assert found is not None and found["AllocationId"] == allocation_id

    # Read: the fields resourceEIPRead sets.
    address = read_eip(ec2, allocation_id)
    assert address["AssociationId"] == association_id
    assert address["InstanceId"] == instance_id
    assert address["NetworkInterfaceId"] == eni
    assert address["NetworkInterfaceOwnerId"] == before["NetworkInterfaces"][0]["OwnerId"]
    assert address["PrivateIpAddress"] == private_ip
    assert address["PublicIp"] == public_ip and address["Domain"] == "vpc"

    # aws_instance's refresh sees the Elastic IP as its public address and DNS name.
    inst = instance_of(ec2, instance_id)
    octets = public_ip.replace(".", "-")
    assert inst["PublicIpAddress"] == public_ip
    assert inst["PublicDnsName"] == f"ec2-{octets}.compute-1.amazonaws.com"
    nic = inst["NetworkInterfaces"][0]
    assert nic["Association"]["PublicIp"] == public_ip
    assert nic["Association"]["IpOwnerId"] == nic["OwnerId"]
    assert nic["PrivateIpAddresses"][0]["Association"]["PublicIp"] == public_ip
    by_ip = ec2.describe_instances(Filters=[{"Name": "ip-address", "Values": [public_ip]}])["Reservations"]
    assert [i["InstanceId"] for r in by_ip for i in r["Instances"]] == [instance_id]
    [iface] = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
    assert iface["Association"]["AllocationId"] == allocation_id
    assert iface["Association"]["AssociationId"] == association_id

    # Releasing while associated is refused.
    assert error_code(ec2.release_address, AllocationId=allocation_id) == "InvalidIPAddress.InUse"

    # Destroy: disassociate (a second time is tolerated as InvalidAssociationID.NotFound), release.
    ec2.disassociate_address(AssociationId=association_id)
    gone = error_code(ec2.disassociate_address, AssociationId=association_id)
    assert gone == "InvalidAssociationID.NotFound"
    assert find_by_association(ec2, association_id) is None
    inst = instance_of(ec2, instance_id)
    assert inst.get("PublicIpAddress") != public_ip
    assert inst["PublicDnsName"] == ""
    ec2.release_address(AllocationId=allocation_id, NetworkBorderGroup=address["NetworkBorderGroup"])
    assert read_eip(ec2, allocation_id) is None


def test_aws_eip_association_and_termination(ec2, launch):
    """aws_eip_association by network interface, moved with AllowReassociation, then the
    instance terminated: the association ends, the address stays allocated."""
    _, [first, second] = launch(count=2)
    eni = instance_of(ec2, second)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    allocation_id = ec2.allocate_address(Domain="vpc")["AllocationId"]
    one = ec2.associate_address(AllocationId=allocation_id, InstanceId=first)["AssociationId"]
    refused = error_code(
        ec2.associate_address, AllocationId=allocation_id, NetworkInterfaceId=eni, AllowReassociation=False
    )
    assert refused == "Resource.AlreadyAssociated"
    two = ec2.associate_address(AllocationId=allocation_id, NetworkInterfaceId=eni, AllowReassociation=True)[
        "AssociationId"
    ]
    assert two != one
    assert find_by_association(ec2, one) is None
    assert find_by_association(ec2, two)["InstanceId"] == second

    ec2.terminate_instances(InstanceIds=[second])
    assert find_by_association(ec2, two) is None
    [address] = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"]
    assert "InstanceId" not in address and "AssociationId" not in address
    # aws_eip_association's delete tolerates the association being gone.
    assert error_code(ec2.disassociate_address, AssociationId=two) == "InvalidAssociationID.NotFound"
    ec2.release_address(AllocationId=allocation_id)
