"""IAM instance profiles through boto3, and ec2d's API from inside an instance.

RunInstances with IamInstanceProfile (Name or Arn) shows it in DescribeInstances and
DescribeIamInstanceProfileAssociations; Associate/Replace/Disassociate answer as EC2, errors
included; the Terraform provider's reads for aws_instance.iam_instance_profile (the
association filtered by instance-id) find it. Inside a busybox instance, AWS_ENDPOINT_URL
(http://ec2d.internal:<port>, the engine's host-gateway) and AWS_REGION are set, and busybox
wget reaches ec2d's API there (the app serves it on the default bridge's gateway).

Not here, since they need the IMDS server and its host wiring (issue 13's other parts): the
credentials under iam/security-credentials/<role> and `aws ec2 describe-instances` run
unconfigured inside an instance; the lead adds them after the merge."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

import ec2d_harness as h

ACCOUNT = "000000000000"


def arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:instance-profile/{name}"


def run_with(ec2, cleanup, **profile) -> dict:
    resp = ec2.run_instances(
        ImageId=h.TEST_AMI_ID, MinCount=1, MaxCount=1, InstanceType="t3.micro", **profile
    )
    cleanup.track_instances([i["InstanceId"] for i in resp["Instances"]])
    return resp["Instances"][0]


def associations_of(ec2, instance_id: str) -> list[dict]:
    """What the Terraform provider reads for aws_instance.iam_instance_profile."""
    return ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]


def test_a_launch_with_a_profile_shows_it_and_its_association(ec2, cleanup):
    inst = run_with(ec2, cleanup, IamInstanceProfile={"Name": "web"})
    iid = inst["InstanceId"]
    assert inst["IamInstanceProfile"]["Arn"] == arn("web")
    assert inst["IamInstanceProfile"]["Id"].startswith("AIPA")
    described = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert described["IamInstanceProfile"] == inst["IamInstanceProfile"]
    [assoc] = associations_of(ec2, iid)
    assert assoc["State"] == "associated"
    assert assoc["AssociationId"].startswith("iip-assoc-")
    assert assoc["IamInstanceProfile"]["Arn"] == arn("web")
    assert assoc["Timestamp"] is not None
    by_arn = run_with(
        ec2, cleanup, IamInstanceProfile={"Arn": "arn:aws:iam::123456789012:instance-profile/ops/api"}
    )
    found = ec2.describe_instances(
        Filters=[{"Name": "iam-instance-profile.arn", "Values": [by_arn["IamInstanceProfile"]["Arn"]]}]
    )["Reservations"]
    assert [i["InstanceId"] for r in found for i in r["Instances"]] == [by_arn["InstanceId"]]


def test_associate_replace_disassociate_and_their_errors(ec2, cleanup):
    iid = run_with(ec2, cleanup)["InstanceId"]
    assert associations_of(ec2, iid) == []
    first = ec2.associate_iam_instance_profile(
        IamInstanceProfile={"Name": "web"}, InstanceId=iid
    )["IamInstanceProfileAssociation"]
    assert first["State"] == "associating" and first["InstanceId"] == iid
    with pytest.raises(ClientError) as e:
        ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": "db"}, InstanceId=iid)
    assert e.value.response["Error"]["Code"] == "IncorrectState"
    assert e.value.response["Error"]["Message"] == f"There is an existing association for instance {iid}"

    second = ec2.replace_iam_instance_profile_association(
        IamInstanceProfile={"Arn": arn("db")}, AssociationId=first["AssociationId"]
    )["IamInstanceProfileAssociation"]
    assert second["AssociationId"] != first["AssociationId"]
    assert [a["IamInstanceProfile"]["Arn"] for a in associations_of(ec2, iid)] == [arn("db")]

    with pytest.raises(ClientError) as e:
        ec2.disassociate_iam_instance_profile(AssociationId=first["AssociationId"])
    assert e.value.response["Error"]["Code"] == "InvalidAssociationID.NotFound"
    gone = ec2.disassociate_iam_instance_profile(AssociationId=second["AssociationId"])
    assert gone["IamInstanceProfileAssociation"]["State"] == "disassociating"
    assert associations_of(ec2, iid) == []
    described = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert "IamInstanceProfile" not in described

    with pytest.raises(ClientError) as e:
        run_with(ec2, cleanup, IamInstanceProfile={"Arn": "not-an-arn"})
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    # An association replaced or removed is no longer described, by id either.
    with pytest.raises(ClientError) as e:
        ec2.describe_iam_instance_profile_associations(AssociationIds=[first["AssociationId"]])
    assert e.value.response["Error"]["Code"] == "InvalidAssociationID.NotFound"


@pytest.mark.parametrize("in_vpc", [False, True], ids=["default-bridge", "vpc-network"])
def test_an_instance_reaches_ec2d_at_its_aws_endpoint_url(ec2, cleanup, ec2d, in_vpc):
    """From Docker's default bridge and from a created VPC's own bridge network alike."""
    placement = {}
    if in_vpc:
        vpc = ec2.create_vpc(CidrBlock="10.213.0.0/16")["Vpc"]["VpcId"]
        placement["SubnetId"] = ec2.create_subnet(VpcId=vpc, CidrBlock="10.213.1.0/24")["Subnet"]["SubnetId"]
    inst = run_with(ec2, cleanup, IamInstanceProfile={"Name": "web"}, **placement)
    iid = inst["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    name = h.container_name(iid)
    port = ec2d.url.rsplit(":", 1)[1].strip("/")
    env = h.docker("exec", name, "sh", "-c", "env").stdout.splitlines()
    assert f"AWS_ENDPOINT_URL=http://ec2d.internal:{port}" in env
    region = ec2.meta.region_name
    assert f"AWS_REGION={region}" in env and f"AWS_DEFAULT_REGION={region}" in env
    # busybox wget, inside the instance, at the address the environment names.
    out = h.docker(
        "exec",
        name,
        "sh",
        "-c",
        f'wget -qO- "$AWS_ENDPOINT_URL/?Action=DescribeInstances&Version=2016-11-15&InstanceId.1={iid}"',
        timeout=60,
    ).stdout
    assert f"<instanceId>{iid}</instanceId>" in out
    assert f"<arn>{arn('web')}</arn>" in out
