"""POST /moto-api/reset and /_ec2d/reset between test cases (issue 15), against real containers.

Suites written for moto's server mode call /moto-api/reset between tests. Here a first "test
case" makes one of everything that has a Docker object behind it (instances with a key pair, an
instance on a VPC network, an attached EBS volume, a snapshot, a CreateImage AMI); the reset must
leave the second with an empty store and nothing of the first in Docker, while the AMI discovered
from a Docker tag stays, and the store keeps working.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

import ec2d_harness as h

WAIT = {"Delay": 1, "MaxAttempts": 90}


def post(url: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def first_case(ec2) -> dict:
    """One of everything; returns what the second case must not see."""
    ec2.create_key_pair(KeyName="reset-key")
    vpc = ec2.create_vpc(CidrBlock="10.91.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.91.1.0/24")["Subnet"]["SubnetId"]
    plain = ec2.run_instances(ImageId=h.TEST_AMI_ID, MinCount=2, MaxCount=2, KeyName="reset-key")
    in_vpc = ec2.run_instances(ImageId=h.TEST_AMI_ID, MinCount=1, MaxCount=1, SubnetId=subnet)
    ids = [i["InstanceId"] for i in plain["Instances"] + in_vpc["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=WAIT)
    az = plain["Instances"][0]["Placement"]["AvailabilityZone"]
    volume = ec2.create_volume(AvailabilityZone=az, Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig=WAIT)
    ec2.attach_volume(VolumeId=volume, InstanceId=ids[0], Device="/dev/sdf")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[volume], WaiterConfig=WAIT)
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snapshot], WaiterConfig=WAIT)
    ami = ec2.create_image(InstanceId=ids[1], Name="reset-made-ami")["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig=WAIT)
    return {"ids": ids, "vpc": vpc, "volume": volume, "snapshot": snapshot, "ami": ami}


def test_moto_reset_between_two_cases_leaves_an_empty_store_and_no_containers(ec2d_factory, busybox_ami):
    srv = ec2d_factory()
    ec2 = srv.client(srv.recorder)
    store_id = srv.status()["storeId"]
    made = first_case(ec2)
    assert len(h.store_containers(store_id)) == 3
    assert h.store_networks(store_id), "the VPC has its network"
    assert h.store_volumes(store_id), "the volume and the snapshot have their Docker volumes"
    made_ami_tags = [t for t in h.list_ami_tags() if t.endswith(":" + made["ami"])]
    assert made_ami_tags, "CreateImage tagged its image"

    code, body = post(srv.url + "/moto-api/reset")
    assert (code, body.get("status")) == (200, "ok"), body

    # The second case starts from nothing.
    assert h.store_containers(store_id) == []
    assert h.store_networks(store_id) == []
    assert h.store_volumes(store_id) == []
    assert not [t for t in h.list_ami_tags() if t.endswith(":" + made["ami"])]
    assert ec2.describe_instances()["Reservations"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert ec2.describe_volumes()["Volumes"] == []
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert made["vpc"] not in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    images = [i["ImageId"] for i in ec2.describe_images()["Images"]]
    assert made["ami"] not in images
    assert busybox_ami["id"] in images, "an AMI discovered from a Docker tag stays"
    assert h.image_id(busybox_ami["tag"]) is not None, "and so does its tag"

    # ...and works as new: the key name is free, a launch boots.
    ec2.create_key_pair(KeyName="reset-key")
    (again,) = [i["InstanceId"] for i in ec2.run_instances(ImageId=h.TEST_AMI_ID, MinCount=1, MaxCount=1)["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=[again], WaiterConfig=WAIT)
    assert [c["instance_id"] for c in h.store_containers(store_id)] == [again]

    # ec2d's own path, as a pytest fixture would call it after each test.
    code, body = post(srv.url + "/_ec2d/reset")
    assert (code, body.get("status")) == (200, "ok"), body
    assert body["removed"]["containers"] == 1, body
    assert h.store_containers(store_id) == []


def test_reset_survives_a_restart_of_ec2d(ec2d_factory):
    """A reset is durable: after a restart on the same data dir nothing comes back."""
    srv = ec2d_factory()
    ec2 = srv.client(srv.recorder)
    store_id = srv.status()["storeId"]
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=h.TEST_AMI_ID, MinCount=2, MaxCount=2)["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=WAIT)
    code, body = post(srv.url + "/_ec2d/reset")
    assert code == 200, body
    srv.kill()
    srv.start()
    ec2 = srv.client(srv.recorder)
    assert ec2.describe_instances()["Reservations"] == []
    assert h.store_containers(store_id) == []


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_reset_only_answers_post(ec2d, method):
    req = urllib.request.Request(ec2d.url + "/moto-api/reset", method=method)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405
