"""CreateTags, DeleteTags and DescribeTags through the aws CLI, awslocal and boto3:
tags land on instances, security groups and key pairs, show in the Describe* calls and
their tag filters, never disturb an instance's state, and bad input gets EC2's errors."""

import secrets

import pytest
from botocore.exceptions import ClientError

import ec2d_harness as h


# ec2d marks every instance as LocalStack does; the tests look at the tags they set.
VM_MANAGER_TAG = "ec2_vm_manager"


def _describe_tags(ec2, resource_id):
    got = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
    return {t["Key"]: (t["Value"], t["ResourceType"]) for t in got if t["Key"] != VM_MANAGER_TAG}


def _user_tags(tags):
    return {k: v for k, v in h.tag_dict(tags).items() if k != VM_MANAGER_TAG}


def test_tag_a_running_instance_with_the_cli(aws, ec2, launch):
    _, [iid] = launch(1)
    name = f"web-{secrets.token_hex(3)}"
    aws("create-tags", "--resources", iid, "--tags", f"Key=Name,Value={name}", "Key=team,Value=").ok()

    # Tagging asks nothing of the reconciler: the instance stays running throughout.
    [inst] = h.describe_instances(ec2, ids=[iid]).values()
    assert inst["State"]["Name"] == "running", inst["State"]
    assert h.tag_dict(inst.get("Tags")) == {"Name": name, "team": "", VM_MANAGER_TAG: "docker"}

    found = h.describe_instances(ec2, filters=[{"Name": "tag:Name", "Values": [name]}])
    assert list(found) == [iid]
    assert _describe_tags(ec2, iid) == {"Name": (name, "instance"), "team": ("", "instance")}

    # Overwrite one value; the other tag stays.
    aws("create-tags", "--resources", iid, "--tags", "Key=team,Value=blue").ok()
    assert _describe_tags(ec2, iid)["team"] == ("blue", "instance")

    # A value that does not match deletes nothing; a bare key deletes whatever its value.
    aws("delete-tags", "--resources", iid, "--tags", "Key=team,Value=red").ok()
    assert "team" in _describe_tags(ec2, iid)
    aws("delete-tags", "--resources", iid, "--tags", "Key=team").ok()
    assert _describe_tags(ec2, iid) == {"Name": (name, "instance")}

    # No --tags: every tag goes, ec2d's own marker included (as in EC2: all of them).
    aws("delete-tags", "--resources", iid).ok()
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]}])["Tags"] == []
    [inst] = h.describe_instances(ec2, ids=[iid]).values()
    assert inst["State"]["Name"] == "running"
    assert not inst.get("Tags")


def test_a_stopped_instance_stays_stopped_when_tagged(ec2, launch):
    _, [iid] = launch(1)
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "parked", "Value": "yes"}])
    [inst] = h.describe_instances(ec2, ids=[iid]).values()
    assert inst["State"]["Name"] == "stopped", inst["State"]
    assert _user_tags(inst.get("Tags")) == {"parked": "yes"}
    # It still starts normally afterwards.
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)


def test_tag_security_groups_and_key_pairs_with_awslocal(awslocal, ec2):
    sfx = secrets.token_hex(3)
    group_id = ec2.create_security_group(GroupName=f"tags-{sfx}", Description="tags")["GroupId"]
    key_id = ec2.create_key_pair(KeyName=f"tags-{sfx}")["KeyPairId"]
    default_id = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    try:
        awslocal(
            "create-tags", "--resources", group_id, key_id, default_id, "--tags", f"Key=suite,Value=tags-{sfx}"
        ).ok()
        [group] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
        assert h.tag_dict(group.get("Tags")) == {"suite": f"tags-{sfx}"}
        [key] = ec2.describe_key_pairs(KeyPairIds=[key_id])["KeyPairs"]
        assert h.tag_dict(key.get("Tags")) == {"suite": f"tags-{sfx}"}

        got = ec2.describe_tags(Filters=[{"Name": "value", "Values": [f"tags-{sfx}"]}])["Tags"]
        assert sorted((t["ResourceId"], t["ResourceType"]) for t in got) == sorted(
            [(group_id, "security-group"), (key_id, "key-pair"), (default_id, "security-group")]
        )
        only_keys = ec2.describe_tags(
            Filters=[
                {"Name": "value", "Values": [f"tags-{sfx}"]},
                {"Name": "resource-type", "Values": ["key-pair"]},
            ]
        )["Tags"]
        assert [t["ResourceId"] for t in only_keys] == [key_id]
    finally:
        ec2.delete_tags(Resources=[default_id], Tags=[{"Key": "suite"}])
        ec2.delete_security_group(GroupId=group_id)
        ec2.delete_key_pair(KeyPairId=key_id)


def test_describe_tags_pages(ec2, launch):
    _, ids = launch(3, wait=False)
    sfx = secrets.token_hex(3)
    ec2.create_tags(Resources=ids, Tags=[{"Key": f"k{i}", "Value": sfx} for i in range(4)])
    seen = []
    pages = 0
    for page in ec2.get_paginator("describe_tags").paginate(
        Filters=[{"Name": "value", "Values": [sfx]}], PaginationConfig={"PageSize": 5}
    ):
        pages += 1
        assert len(page["Tags"]) <= 5
        seen += [(t["ResourceId"], t["Key"]) for t in page["Tags"]]
    assert pages == 3, pages
    assert sorted(seen) == sorted((i, f"k{n}") for i in ids for n in range(4))


def test_tag_errors(aws, ec2, launch):
    _, [iid] = launch(1, wait=False)
    missing = "i-0123456789abcdef0"
    # One missing resource fails the whole call and tags nothing.
    res = aws("create-tags", "--resources", iid, missing, "--tags", "Key=a,Value=b")
    assert res.rc != 0 and res.error_code() == "InvalidInstanceID.NotFound", res.describe()
    assert _describe_tags(ec2, iid) == {}

    cases = [
        (["--resources", "i-zzz", "--tags", "Key=a,Value=b"], "InvalidInstanceID.Malformed"),
        (["--resources", "eni-12345678", "--tags", "Key=a,Value=b"], "InvalidID"),
        (["--resources", "vpc-12345678", "--tags", "Key=a,Value=b"], "InvalidVpcID.NotFound"),
        (["--resources", "sg-0123456789abcdef0", "--tags", "Key=a,Value=b"], "InvalidGroup.NotFound"),
        (["--resources", "key-0123456789abcdef0", "--tags", "Key=a,Value=b"], "InvalidKeyPair.NotFound"),
        (["--resources", iid, "--tags", "Key=aws:reserved,Value=b"], "InvalidParameterValue"),
    ]
    for args, code in cases:
        res = aws("create-tags", *args)
        assert res.rc != 0 and res.error_code() == code, res.describe()

    with pytest.raises(ClientError) as ei:
        ec2.create_tags(Resources=[iid], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert ei.value.response["Error"]["Code"] == "TagLimitExceeded"
    assert _describe_tags(ec2, iid) == {}

    with pytest.raises(ClientError) as ei:
        ec2.describe_tags(Filters=[{"Name": "colour", "Values": ["x"]}])
    assert ei.value.response["Error"]["Code"] == "InvalidParameterValue"

    with pytest.raises(ClientError) as ei:
        ec2.create_tags(Resources=[iid], Tags=[{"Key": "a", "Value": "b"}], DryRun=True)
    assert ei.value.response["Error"]["Code"] == "DryRunOperation"
    assert _describe_tags(ec2, iid) == {}
