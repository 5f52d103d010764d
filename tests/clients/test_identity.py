"""STS GetCallerIdentity and IAM GetUser on ec2d's endpoint, as Terraform's provider and
Ansible's modules call them before any EC2 call: boto3 and the aws CLI, signed for `sts`/`iam`."""

from __future__ import annotations

import boto3
from botocore.config import Config

import ec2d_harness as h


def _client(service: str, url: str, access_key: str = "test"):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=h.REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    )


def test_boto3_sts_get_caller_identity(ec2d):
    who = _client("sts", ec2d.url).get_caller_identity()
    assert who["Account"] == "000000000000"
    assert who["Arn"] == "arn:aws:iam::000000000000:root"
    assert who["UserId"] == "000000000000"
    # A 12-digit access key id is the account, as LocalStack answers.
    who = _client("sts", ec2d.url, access_key="111122223333").get_caller_identity()
    assert who["Account"] == "111122223333"
    assert who["Arn"] == "arn:aws:iam::111122223333:root"


def test_boto3_iam_get_user(ec2d):
    iam = _client("iam", ec2d.url)
    user = iam.get_user()["User"]
    assert user["UserName"] == "default_user"
    assert user["Path"] == "/"
    assert user["Arn"] == "arn:aws:iam::000000000000:user/default_user"
    assert user["UserId"].startswith("AIDA")
    assert user["CreateDate"].year >= 2024
    try:
        iam.get_user(UserName="nobody")
    except iam.exceptions.NoSuchEntityException as e:
        assert e.response["Error"]["Code"] == "NoSuchEntity"
        assert e.response["Error"]["Type"] == "Sender"
    else:
        raise AssertionError("GetUser of an unknown user succeeded")


def test_identity_calls_leave_ec2_alone(ec2d):
    # The same endpoint still answers EC2 right after (Terraform's order).
    _client("sts", ec2d.url).get_caller_identity()
    regions = _client("ec2", ec2d.url).describe_regions()["Regions"]
    assert any(r["RegionName"] == h.REGION for r in regions)


def test_aws_cli_sts_get_caller_identity(aws):
    res = aws("get-caller-identity", service="sts").ok()
    assert res.json == {
        "UserId": "000000000000",
        "Account": "000000000000",
        "Arn": "arn:aws:iam::000000000000:root",
    }
    res = aws("get-user", service="iam").ok()
    assert res.json["User"]["UserName"] == "default_user"
