"""DescribeNetworkInterfaces with boto3 against Docker-mode ec2d, as Terraform's aws_security_group
delete calls it (../shared/design/terraform-calls.md, aws_security_group: `deleteLingeringENIs`
lists the group's interfaces with a `group-id` filter, fatal on error, before DeleteSecurityGroup).
"""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

import ec2d_harness as h


def test_security_group_delete_lists_its_interfaces_first(ec2, cleanup, busybox_ami):
    name = f"tf-eni-{uuid.uuid4().hex[:8]}"
    gid = ec2.create_security_group(GroupName=name, Description="Managed by Terraform")["GroupId"]
    [inst] = ec2.run_instances(ImageId=busybox_ami["id"], MinCount=1, MaxCount=1, SecurityGroupIds=[gid])["Instances"]
    iid = inst["InstanceId"]
    cleanup.track_instances([iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    [described] = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"]
    [inside] = described["NetworkInterfaces"]

    enis = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [gid]}])["NetworkInterfaces"]
    assert [e["NetworkInterfaceId"] for e in enis] == [inside["NetworkInterfaceId"]]
    [eni] = enis
    assert eni["Attachment"]["InstanceId"] == iid
    assert eni["Attachment"]["AttachmentId"] == inside["Attachment"]["AttachmentId"]
    assert eni["Status"] == "in-use" and eni["InterfaceType"] == "interface"
    assert eni["PrivateIpAddress"] == described["PrivateIpAddress"]
    assert [g["GroupId"] for g in eni["Groups"]] == [gid]
    assert eni["SubnetId"] == described["SubnetId"] and eni["VpcId"] == described["VpcId"]
    assert eni["TagSet"] == []

    # Still in use: Terraform retries DeleteSecurityGroup on DependencyViolation.
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=gid)
    assert e.value.response["Error"]["Code"] == "DependencyViolation"

    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    assert ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [gid]}])["NetworkInterfaces"] == []
    with pytest.raises(ClientError) as e:
        ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])
    assert e.value.response["Error"]["Code"] == "InvalidNetworkInterfaceID.NotFound"
    ec2.delete_security_group(GroupId=gid)
