"""Testcontainers' LocalStack module (the Python `testcontainers` package) starting ec2d's
image in place of LocalStack's: `start()` waits for the `Ready.` line, `get_client("ec2")`
gives a boto3 client on the mapped port, and a RunInstances through it boots a sibling
container on the host's engine.

The image must exist (tests/support/build-ec2d-image.sh builds ec2d:local; EC2D_IMAGE picks
another tag). Ryuk (Testcontainers' reaper, an image that cannot be pulled here) is off; the
test removes the ec2d container, its anonymous data volume and its instances itself.
"""

from __future__ import annotations

import json
import os
import time

# Before testcontainers is imported: it reads the setting at import.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
# The engine is on this machine, whose own root has a /.dockerenv: Testcontainers would then
# reach the mapped port through the default bridge's gateway, a path that now and then timed
# out on the first request here. The published port on 127.0.0.1 is where a user on the
# engine's host connects.
os.environ.setdefault("TC_HOST", "127.0.0.1")

import pytest  # noqa: E402
from testcontainers.community.localstack import LocalStackContainer  # noqa: E402

import ec2d_harness as h  # noqa: E402

IMAGE = os.environ.get("EC2D_IMAGE", "ec2d:local")


def test_localstack_module_starts_ec2d_and_boto3_runs_an_instance(busybox_ami):
    if h.image_id(IMAGE) is None:
        pytest.fail(f"image {IMAGE} missing: run tests/support/build-ec2d-image.sh", pytrace=False)
    container = LocalStackContainer(image=IMAGE).with_volume_mapping(
        "/var/run/docker.sock", "/var/run/docker.sock", "rw"
    )
    t0 = time.monotonic()
    container.start(timeout=60)
    store_id = None
    try:
        h.FIGURES.append(f"Testcontainers LocalStackContainer({IMAGE}).start() (to `Ready.`): {time.monotonic() - t0:.1f}s")
        url = container.get_url()
        code, body = h.http_get(f"{url}/_localstack/health")
        assert code == 200 and json.loads(body)["services"] == {"ec2": "running"}
        store_id = json.loads(h.http_get(f"{url}/_ec2d/status")[1]).get("storeId")

        ec2 = container.get_client("ec2")
        regions = [r["RegionName"] for r in ec2.describe_regions()["Regions"]]
        assert container.region_name in regions
        iid = ec2.run_instances(ImageId=h.TEST_AMI_ID, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        h.OWNED_INSTANCES.add(iid)
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
        inspect = h.container_inspect(h.container_name(iid))
        assert inspect is not None and inspect["State"]["Running"], "no running sibling container for the instance"
        ec2.terminate_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    finally:
        # Removes the container with its anonymous data volume (the image's VOLUME).
        container.stop()
        if store_id:
            p = h.docker("ps", "-aq", "--filter", f"label={h.STORE_ID_LABEL}={store_id}", check=False)
            problems = h.remove_containers(p.stdout.split())
            problems += h.remove_store_networks([store_id]) + h.remove_store_volumes([store_id])
            for problem in problems:
                print(f"[ec2d-tests] cleanup problem: {problem}")
