"""Instance lifecycle through real clients, checked against the real Docker state:
run -> running -> stop (paused) -> start (unpaused) -> create-image -> terminate."""

import secrets
import time

import pytest
from botocore.exceptions import ClientError

import ec2d_harness as h


def test_run_instances_two(aws, ec2, cleanup, busybox_ami):
    res = aws("run-instances", "--image-id", busybox_ami["id"], "--count", "2", "--instance-type", "t3.micro")
    ids = [i["InstanceId"] for i in (res.json or {}).get("Instances", [])]
    cleanup.track_instances(ids)
    res.ok()
    r = res.json
    # RunInstances answers one reservation
    assert h.RESERVATION_ID_RE.match(r.get("ReservationId", "")), r
    insts = r["Instances"]
    assert len(insts) == 2, r
    assert len(set(ids)) == 2, ids
    for inst in insts:
        assert h.INSTANCE_ID_RE.match(inst["InstanceId"]), inst["InstanceId"]
        assert inst["ImageId"] == busybox_ami["id"], inst
        h.assert_state(inst["State"], "pending")
    assert sorted(i["AmiLaunchIndex"] for i in insts) == [0, 1], [i.get("AmiLaunchIndex") for i in insts]

    # both reach running, and DescribeInstances groups them in that reservation
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=h.WAITER)
    desc = ec2.describe_instances(InstanceIds=ids)
    assert [res["ReservationId"] for res in desc["Reservations"]] == [r["ReservationId"]], desc["Reservations"]

    # real containers, running the AMI's image
    for i in ids:
        info = h.wait_container_state(i, "running", timeout=10)
        assert info["State"]["Running"] is True and info["State"]["Paused"] is False, info["State"]
        assert info["Image"] == busybox_ami["image_id"], (info["Image"], busybox_ami)


def test_stop_instances(aws, ec2, launch):
    _, [iid] = launch()
    h.wait_container_state(iid, "running", timeout=10)

    res = aws("stop-instances", "--instance-ids", iid).ok()
    [chg] = res.json["StoppingInstances"]
    assert chg["InstanceId"] == iid
    h.assert_state(chg["CurrentState"], "stopping", "stopped")
    h.assert_state(chg["PreviousState"], "running")

    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    info = h.wait_container_state(iid, "paused", timeout=10)
    assert info["State"]["Paused"] is True, info["State"]
    assert h.states(ec2, [iid]) == {iid: "stopped"}


def test_start_instances(awslocal, ec2, launch):
    _, [iid] = launch()
    before = h.wait_container_state(iid, "running", timeout=10)

    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    h.wait_container_state(iid, "paused", timeout=10)

    res = awslocal("start-instances", "--instance-ids", iid).ok()
    [chg] = res.json["StartingInstances"]
    assert chg["InstanceId"] == iid
    h.assert_state(chg["CurrentState"], "pending")
    h.assert_state(chg["PreviousState"], "stopped")

    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    after = h.wait_container_state(iid, "running", timeout=10)
    assert after["State"]["Paused"] is False, after["State"]
    # unpaused, not replaced
    assert after["Id"] == before["Id"], "start-instances replaced the container instead of unpausing it"


def test_create_image(aws, ec2, launch, cleanup, busybox_ami):
    _, [iid] = launch()
    h.wait_container_state(iid, "running", timeout=10)
    # Leave a mark in the instance's filesystem; the new AMI must carry it.
    marker = secrets.token_hex(8)
    h.docker("exec", h.container_name(iid), "sh", "-c", f"echo {marker} > /root/ec2d-marker")

    name = "my-snap"
    if any(t.startswith(f"{h.AMI_REPO_PREFIX}{name}:") for t in h.list_ami_tags()):
        name = f"my-snap-{secrets.token_hex(3)}"  # a leftover we did not make: don't collide

    res = aws("create-image", "--instance-id", iid, "--name", name)
    ami = (res.json or {}).get("ImageId")
    if ami:
        cleanup.track_image(ami)
    res.ok()
    assert ami and h.AMI_ID_RE.match(ami), res.json
    assert ami != busybox_ami["id"]

    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig=h.WAITER)
    tag = f"{h.AMI_REPO_PREFIX}{name}:{ami}"
    snap_image = h.image_id(tag)
    assert snap_image, f"docker image {tag} does not exist; AMI tags now: {sorted(h.list_ami_tags())}"

    [img] = ec2.describe_images(ImageIds=[ami])["Images"]
    assert img["Name"] == name and img["State"] == "available", img

    # the source instance is (back) in running after the snapshot
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)

    # an instance of the new AMI runs that image and sees the mark
    _, [iid2] = launch(image_id=ami)
    info = h.wait_container_state(iid2, "running", timeout=10)
    assert info["Image"] == snap_image, (info["Image"], snap_image)
    out = h.docker("exec", h.container_name(iid2), "cat", "/root/ec2d-marker").stdout.strip()
    assert out == marker


def test_create_image_of_a_stopped_instance_without_a_container(aws, ec2, launch, cleanup, busybox_ami):
    """A stopped instance whose container is gone (removed behind ec2d's back, or never
    booted) has its AMI's image as its disk: CreateImage tags that image as the new AMI."""
    _, [iid] = launch()
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    h.docker("rm", "-f", h.container_name(iid))
    h.wait_container_state(iid, "absent", timeout=10)
    assert h.states(ec2, [iid]) == {iid: "stopped"}

    name = f"from-stopped-{secrets.token_hex(3)}"
    res = aws("create-image", "--instance-id", iid, "--name", name)
    ami = (res.json or {}).get("ImageId")
    if ami:
        cleanup.track_image(ami)
    res.ok()
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig=h.WAITER)
    assert h.image_id(f"{h.AMI_REPO_PREFIX}{name}:{ami}") == h.image_id(busybox_ami["tag"])

    # The new AMI launches.
    _, [iid2] = launch(image_id=ami)
    info = h.wait_container_state(iid2, "running", timeout=10)
    assert info["Image"] == h.image_id(busybox_ami["tag"])


def test_terminate_instances(awslocal, ec2, launch):
    _, [iid] = launch()
    h.wait_container_state(iid, "running", timeout=10)

    res = awslocal("terminate-instances", "--instance-ids", iid).ok()
    [chg] = res.json["TerminatingInstances"]
    assert chg["InstanceId"] == iid
    h.assert_state(chg["CurrentState"], "shutting-down")
    h.assert_state(chg["PreviousState"], "running")

    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    # EC2_REMOVE_CONTAINERS defaults to on: the container is removed
    h.wait_container_state(iid, "absent", timeout=15)

    # still listed, as terminated, by id and in the full listing
    assert h.states(ec2, [iid]) == {iid: "terminated"}
    assert h.describe_instances(ec2)[iid]["State"]["Name"] == "terminated"


def test_terminate_stopped_instance(aws, ec2, launch):
    _, [iid] = launch()
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    h.wait_container_state(iid, "paused", timeout=10)

    res = aws("terminate-instances", "--instance-ids", iid).ok()
    [chg] = res.json["TerminatingInstances"]
    h.assert_state(chg["CurrentState"], "shutting-down", "terminated")
    h.assert_state(chg["PreviousState"], "stopped")

    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    h.wait_container_state(iid, "absent", timeout=15)


def test_reboot_instances(aws, ec2, cleanup, ec2d):
    """reboot-instances restarts the same container in place: same id and container ports
    (Docker hands a restarted container new host ports, and ec2d prints the new SSH line),
    a new start, the instance `running` throughout, and user data not run a second time."""
    resp = ec2.run_instances(
        ImageId=h.TEST_AMI_ID,
        MinCount=1,
        MaxCount=1,
        UserData="#!/bin/sh\necho ran >> /user-data-runs\n",
    )
    [iid] = [i["InstanceId"] for i in resp["Instances"]]
    cleanup.track_instances([iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    name = h.container_name(iid)
    h.wait_until(
        lambda: h.docker("exec", name, "cat", "/user-data-runs", check=False).stdout == "ran\n",
        timeout=20,
        desc="user data's first run",
    )
    before = h.container_inspect(name)

    aws("reboot-instances", "--instance-ids", iid).ok()
    seen = set()

    def restarted():
        seen.update(h.states(ec2, [iid]).values())
        info = h.container_inspect(name)
        started_again = info["State"]["StartedAt"] != before["State"]["StartedAt"]
        return info if started_again and info["State"]["Running"] else None

    after = h.wait_until(restarted, timeout=30, interval=0.1, desc="the container's restart")
    seen.update(h.states(ec2, [iid]).values())
    assert seen == {"running"}, f"a rebooting instance reads running, saw {seen}"
    assert after["Id"] == before["Id"], "reboot replaced the container"
    assert set(after["NetworkSettings"]["Ports"]) == set(before["NetworkSettings"]["Ports"])
    ssh = after["NetworkSettings"]["Ports"]["22/tcp"][0]
    line = f"Instance {iid} will be accessible via SSH at: {ssh['HostIp']}:{ssh['HostPort']}"
    h.wait_until(lambda: line in ec2d.log_path.read_text(), timeout=10, desc="the new SSH line")
    # The boot script ran again (it keeps the container up), the user data did not: once the
    # script is in its keep-alive loop it has long passed the point where user data starts.
    h.wait_until(
        lambda: "sleep 3600" in h.docker("exec", name, "ps", check=False).stdout,
        timeout=20,
        desc="the boot script's keep-alive loop after the reboot",
    )
    assert h.docker("exec", name, "cat", "/user-data-runs").stdout == "ran\n"

    # Stopped instances are not rebooted, then or when started again.
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    ec2.reboot_instances(InstanceIds=[iid])
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    # Converged (rebootsDone caught up with rebootsRequested, the start's generation observed):
    # a reboot still owed would have been carried out by now.
    h.wait_instance_status(ec2d, iid, lambda d: d["state"] == "running" and d["converged"], 15, "converged")
    assert h.container_inspect(name)["State"]["StartedAt"] == after["State"]["StartedAt"]

    res = aws("reboot-instances", "--instance-ids", "i-0123456789abcdef0")
    assert res.rc != 0 and res.error_code() == "InvalidInstanceID.NotFound", res.describe()


def test_describe_instance_status_and_the_status_ok_waiter(aws, ec2, launch):
    """`aws ec2 wait instance-status-ok` returns for a running instance; by default only
    running instances are listed, IncludeAllInstances shows the others as not-applicable."""
    _, [up, down] = launch(2)
    ec2.stop_instances(InstanceIds=[down])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[down], WaiterConfig=h.WAITER)

    res = aws("wait", "instance-status-ok", "--instance-ids", up)
    res.ok()

    res = aws("describe-instance-status", "--instance-ids", up, down).ok()
    assert [s["InstanceId"] for s in res.json["InstanceStatuses"]] == [up], res.json
    [st] = res.json["InstanceStatuses"]
    assert st["InstanceState"] == {"Code": 16, "Name": "running"}
    assert st["InstanceStatus"] == {"Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]}
    assert st["SystemStatus"]["Status"] == "ok"

    every = ec2.describe_instance_status(InstanceIds=[up, down], IncludeAllInstances=True)["InstanceStatuses"]
    by_id = {s["InstanceId"]: s for s in every}
    assert set(by_id) == {up, down}
    assert by_id[down]["InstanceState"]["Name"] == "stopped"
    assert by_id[down]["InstanceStatus"]["Status"] == "not-applicable"

    ok_only = ec2.describe_instance_status(
        InstanceIds=[up, down],
        IncludeAllInstances=True,
        Filters=[{"Name": "instance-status.status", "Values": ["ok"]}],
    )["InstanceStatuses"]
    assert [s["InstanceId"] for s in ok_only] == [up]

    res = aws("describe-instance-status", "--instance-ids", "i-0123456789abcdef0")
    assert res.rc != 0 and res.error_code() == "InvalidInstanceID.NotFound", res.describe()


def test_modify_instance_attribute(aws, ec2, launch):
    """Termination and stop protection, shutdown behaviour and (stopped) instance type, in
    the CLI's forms; none of it moves the instance out of its state."""
    _, [iid] = launch()

    def attribute(name):
        return aws("describe-instance-attribute", "--instance-id", iid, "--attribute", name).ok().json

    aws("modify-instance-attribute", "--instance-id", iid, "--disable-api-termination").ok()
    assert attribute("disableApiTermination")["DisableApiTermination"] == {"Value": True}
    try:
        res = aws("terminate-instances", "--instance-ids", iid)
        assert res.rc != 0 and res.error_code() == "OperationNotPermitted", res.describe()
        assert h.states(ec2, [iid]) == {iid: "running"}
    finally:
        aws("modify-instance-attribute", "--instance-id", iid, "--no-disable-api-termination").ok()
    assert attribute("disableApiTermination")["DisableApiTermination"] == {"Value": False}

    ec2.modify_instance_attribute(InstanceId=iid, DisableApiStop={"Value": True})
    try:
        with pytest.raises(ClientError) as ei:
            ec2.stop_instances(InstanceIds=[iid])
        assert ei.value.response["Error"]["Code"] == "OperationNotPermitted"
    finally:
        ec2.modify_instance_attribute(InstanceId=iid, DisableApiStop={"Value": False})

    aws(
        "modify-instance-attribute", "--instance-id", iid, "--instance-initiated-shutdown-behavior", "Value=terminate"
    ).ok()
    got = attribute("instanceInitiatedShutdownBehavior")
    assert got["InstanceInitiatedShutdownBehavior"] == {"Value": "terminate"}
    assert h.states(ec2, [iid]) == {iid: "running"}, "an attribute change is not a state change"

    # The type changes only while stopped, as in EC2.
    res = aws("modify-instance-attribute", "--instance-id", iid, "--attribute", "instanceType", "--value", "t3.large")
    assert res.rc != 0 and res.error_code() == "IncorrectInstanceState", res.describe()
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    aws("modify-instance-attribute", "--instance-id", iid, "--instance-type", "Value=t3.large").ok()
    [inst] = h.describe_instances(ec2, ids=[iid]).values()
    assert inst["InstanceType"] == "t3.large" and inst["State"]["Name"] == "stopped", inst

    # Groups are recorded (the ports published at launch stay); an unknown group is refused.
    res = aws("modify-instance-attribute", "--instance-id", iid, "--groups", "sg-0123456789abcdef0")
    assert res.rc != 0 and res.error_code() == "InvalidGroup.NotFound", res.describe()
    group = ec2.create_security_group(GroupName=f"moved-{iid}", Description="moved here")["GroupId"]
    aws("modify-instance-attribute", "--instance-id", iid, "--groups", group).ok()
    assert attribute("groupSet")["Groups"] == [{"GroupId": group, "GroupName": f"moved-{iid}"}]
    aws("modify-instance-attribute", "--instance-id", iid, "--no-source-dest-check").ok()
    assert attribute("sourceDestCheck")["SourceDestCheck"] == {"Value": False}
    [inst] = h.describe_instances(ec2, ids=[iid]).values()
    assert inst["SourceDestCheck"] is False and inst["SecurityGroups"][0]["GroupId"] == group, inst
