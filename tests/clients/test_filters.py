"""DescribeInstances filters: instance-state-name and tag:Name (tags given at
launch with --tag-specifications)."""

import secrets

import pytest

import ec2d_harness as h


@pytest.fixture(scope="module")
def tagged(ec2d, workdir, busybox_ami):
    """Two running 'web-<sfx>' instances and one stopped 'db-<sfx>' instance,
    launched with the aws CLI's --tag-specifications (shared by this module)."""
    cleanup = h.Ec2Cleanup(lambda: ec2d.client())
    try:
        yield _launch_tagged(h.AwsCli(ec2d, "aws", workdir), ec2d.client(), cleanup, busybox_ami)
    finally:
        for p in cleanup.run():
            print(f"[ec2d-tests] cleanup problem: {p}")


def _launch_tagged(aws, ec2, cleanup, busybox_ami):
    sfx = secrets.token_hex(4)
    web, db = f"web-{sfx}", f"db-{sfx}"

    def run(name, count):
        res = aws(
            "run-instances",
            "--image-id",
            busybox_ami["id"],
            "--count",
            str(count),
            "--tag-specifications",
            f"ResourceType=instance,Tags=[{{Key=Name,Value={name}}},{{Key=suite,Value=filters}}]",
        )
        ids = [i["InstanceId"] for i in (res.json or {}).get("Instances", [])]
        cleanup.track_instances(ids)
        res.ok()
        assert len(ids) == count, res.describe()
        for inst in res.json["Instances"]:
            assert h.tag_dict(inst.get("Tags")).get("Name") == name, f"RunInstances response lacks tags: {inst}"
        return ids

    web_ids = run(web, 2)
    [db_id] = run(db, 1)
    ec2.get_waiter("instance_running").wait(InstanceIds=web_ids + [db_id], WaiterConfig=h.WAITER)
    ec2.stop_instances(InstanceIds=[db_id])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[db_id], WaiterConfig=h.WAITER)
    return {"web": web, "db": db, "web_ids": web_ids, "db_id": db_id}


def test_filter_by_tag_name(aws, ec2, tagged):
    got = h.describe_instances(ec2, filters=[{"Name": "tag:Name", "Values": [tagged["web"]]}])
    assert set(got) == set(tagged["web_ids"]), sorted(got)
    for inst in got.values():
        tags = h.tag_dict(inst.get("Tags"))
        # ec2d may add its own tags (ec2_vm_manager=docker, as LocalStack does); ours must be there
        assert {k: tags.get(k) for k in ("Name", "suite")} == {"Name": tagged["web"], "suite": "filters"}, tags

    res = aws("describe-instances", "--filters", f"Name=tag:Name,Values={tagged['db']}").ok()
    ids = {i["InstanceId"] for r in res.json["Reservations"] for i in r["Instances"]}
    assert ids == {tagged["db_id"]}, res.describe()

    # several values are OR-ed
    got = h.describe_instances(ec2, filters=[{"Name": "tag:Name", "Values": [tagged["web"], tagged["db"]]}])
    assert set(got) == set(tagged["web_ids"]) | {tagged["db_id"]}, sorted(got)


def test_filter_by_state(aws, ec2, tagged):
    res = aws("describe-instances", "--filters", "Name=instance-state-name,Values=running").ok()
    running = {i["InstanceId"]: i for r in res.json["Reservations"] for i in r["Instances"]}
    assert set(tagged["web_ids"]) <= set(running), sorted(running)
    assert tagged["db_id"] not in running
    assert all(i["State"]["Name"] == "running" for i in running.values()), running

    stopped = h.describe_instances(ec2, filters=[{"Name": "instance-state-name", "Values": ["stopped"]}])
    assert tagged["db_id"] in stopped, sorted(stopped)
    assert not set(tagged["web_ids"]) & set(stopped)
    assert all(i["State"]["Name"] == "stopped" for i in stopped.values())


def test_filters_are_and_ed(ec2, tagged):
    got = h.describe_instances(
        ec2,
        filters=[
            {"Name": "tag:Name", "Values": [tagged["db"]]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ],
    )
    assert got == {}, sorted(got)
    got = h.describe_instances(
        ec2,
        filters=[
            {"Name": "tag:Name", "Values": [tagged["web"]]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ],
    )
    assert set(got) == set(tagged["web_ids"]), sorted(got)
