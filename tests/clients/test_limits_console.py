"""Instance types as real limits, and GetConsoleOutput, through boto3 and the aws CLI.

A t3.micro's container gets 2 CPUs (at most the host's) and 1 GiB (docker inspect);
ModifyInstanceAttribute InstanceType while stopped changes them in place;
EC2D_INSTANCE_TYPE_LIMITS=0 turns them off; EC2_DOCKER_FLAGS' --memory wins. GetConsoleOutput
answers the container's output (the boot and the user data), and nothing for a mock
instance. Each test starts its own ec2d with the settings under test."""

from __future__ import annotations

import datetime
import time

import pytest
from botocore.exceptions import ClientError

import ec2d_harness as h

GIB = 1 << 30
NANO = 1_000_000_000

# The settings of these tests, whatever the caller's shell exports.
DEFAULTS = {"EC2_DOCKER_FLAGS": "", "EC2D_INSTANCE_TYPE_LIMITS": "1"}


def host_cpus() -> int:
    return int(h.docker("info", "--format", "{{.NCPU}}").stdout.strip())


def host_config(instance_id: str) -> dict:
    info = h.container_inspect(h.container_name(instance_id))
    assert info is not None, f"{instance_id} has no container"
    return info["HostConfig"]


def run_one(srv, instance_type: str = "t3.micro", wait: bool = True, **extra) -> str:
    client = srv.client(srv.recorder)
    resp = client.run_instances(
        ImageId=h.TEST_AMI_ID, MinCount=1, MaxCount=1, InstanceType=instance_type, **extra
    )
    ids = [i["InstanceId"] for i in resp["Instances"]]
    srv.cleanup.track_instances(ids)
    if wait:
        client.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=h.WAITER)
    return ids[0]


def start(ec2d_factory, **env) -> h.Ec2dServer:
    return ec2d_factory(extra_env={**DEFAULTS, **env})


def test_a_t3_micro_gets_its_cpus_and_memory_and_a_type_change_while_stopped_updates_them(ec2d_factory):
    srv = start(ec2d_factory)
    client = srv.client(srv.recorder)
    iid = run_one(srv)
    hc = host_config(iid)
    cpus = min(2, host_cpus())
    assert (hc["NanoCpus"], hc["Memory"]) == (cpus * NANO, GIB), hc
    assert hc["MemorySwap"] == GIB, "no swap beyond the type's memory"
    container_id = h.container_inspect(h.container_name(iid))["Id"]

    client.stop_instances(InstanceIds=[iid])
    client.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    client.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.small"})
    attr = client.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")
    assert attr["InstanceType"]["Value"] == "t3.small"
    client.start_instances(InstanceIds=[iid])
    client.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)

    h.wait_until(lambda: host_config(iid)["Memory"] == 2 * GIB, 15, 0.25, "t3.small's 2 GiB")
    info = h.container_inspect(h.container_name(iid))
    assert info["Id"] == container_id, "the same container, updated in place"
    assert info["State"]["Status"] == "running"
    assert (info["HostConfig"]["NanoCpus"], info["HostConfig"]["MemorySwap"]) == (cpus * NANO, 2 * GIB)


def test_limits_off_leave_the_container_unlimited(ec2d_factory):
    srv = start(ec2d_factory, EC2D_INSTANCE_TYPE_LIMITS="0")
    iid = run_one(srv, instance_type="m5.large")
    hc = host_config(iid)
    assert (hc["NanoCpus"], hc["Memory"]) == (0, 0), hc


def test_docker_flags_memory_wins_over_the_type(ec2d_factory):
    srv = start(ec2d_factory, EC2_DOCKER_FLAGS="--memory 256m")
    iid = run_one(srv)
    hc = host_config(iid)
    assert hc["Memory"] == 256 << 20, hc
    assert hc["NanoCpus"] == min(2, host_cpus()) * NANO, "the type still gives the CPUs"


def test_console_output_shows_what_the_user_data_printed(ec2d_factory, workdir):
    srv = start(ec2d_factory)
    client = srv.client(srv.recorder)
    marker = f"console-marker-{time.time_ns()}"
    # boto3 base64-encodes UserData itself.
    iid = run_one(srv, UserData=f"#!/bin/sh\necho {marker}\necho to-stderr-{marker} >&2\n")

    seen = {}

    def printed():
        resp = client.get_console_output(InstanceId=iid, Latest=True)
        seen.update(resp)
        # botocore decodes Output from base64 itself.
        return marker in resp.get("Output", "") and f"to-stderr-{marker}" in resp.get("Output", "")

    h.wait_until(printed, 30, 1.0, f"{marker} in the console output")
    assert seen["InstanceId"] == iid
    assert isinstance(seen["Timestamp"], datetime.datetime)
    age = datetime.datetime.now(datetime.timezone.utc) - seen["Timestamp"]
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=1), seen["Timestamp"]

    # The wire answer is base64, as EC2's: what the aws CLI decodes for its user.
    cli = h.AwsCli(srv, "aws", workdir)
    doc = cli("get-console-output", "--instance-id", iid).ok().json
    assert marker in doc["Output"] and doc["InstanceId"] == iid

    # Unknown and malformed ids are EC2's errors.
    with pytest.raises(ClientError) as e:
        client.get_console_output(InstanceId="i-00000000000000001")
    assert e.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    with pytest.raises(ClientError) as e:
        client.get_console_output(InstanceId="instance-1")
    assert e.value.response["Error"]["Code"] == "InvalidInstanceID.Malformed"


def test_a_mock_instance_has_no_console_output(ec2d_factory):
    srv = ec2d_factory(extra_env={**DEFAULTS, "EC2_VM_MANAGER": "mock"})
    client = srv.client(srv.recorder)
    resp = client.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.micro")
    iid = resp["Instances"][0]["InstanceId"]
    client.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    out = client.get_console_output(InstanceId=iid)
    assert out["InstanceId"] == iid
    assert "Output" not in out, "EC2 leaves Output out while there is none"
    assert isinstance(out["Timestamp"], datetime.datetime)
    # The raw answer, too: no <output> element at all.
    status, _, body = h.http_post_form(
        srv.url, f"Action=GetConsoleOutput&Version=2016-11-15&InstanceId={iid}"
    )
    assert status == 200 and "<output>" not in body and f"<instanceId>{iid}</instanceId>" in body, body
