"""Availability zones on separate Docker engines (EC2D_ENGINES), through boto3.

Engine A is the default engine; engine B is the second engine scripts/test.sh starts
(tests/support/second-engine.sh), named by EC2D_TEST_ENGINE_B. us-east-1b is put on B; every
other zone stays on A. The tests check the engines themselves with `docker -H`.

Without EC2D_TEST_ENGINE_B these tests skip, loudly, unless CI=true or
EC2D_REQUIRE_SECOND_ENGINE=1, where they fail.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import botocore.exceptions
import pytest

import ec2d_harness as h

ENGINE_B = os.environ.get("EC2D_TEST_ENGINE_B", "")
# Engine B's TLS listener and the client certificates it asks for (second-engine.sh).
ENGINE_B_TLS = os.environ.get("EC2D_TEST_ENGINE_B_TLS", "")
ENGINE_B_CERTS = os.environ.get("EC2D_TEST_ENGINE_B_CERTS", "")
ZONE_B = "us-east-1b"
ZONE_A = "us-east-1a"
AMI_ID = "ami-0a1b2c3d4e5f"
AMI_TAG = f"{h.AMI_REPO_PREFIX}zones-ami:{AMI_ID}"
SECOND_ENGINE = Path(__file__).resolve().parents[1] / "support" / "second-engine.sh"


def _require_engine_b(tls: bool = False):
    if ENGINE_B and (not tls or (ENGINE_B_TLS and ENGINE_B_CERTS)):
        return
    name = "EC2D_TEST_ENGINE_B_TLS and _CERTS are" if tls else "EC2D_TEST_ENGINE_B is"
    why = f"{name} not set (tests/support/second-engine.sh start prints them)"
    if os.environ.get("CI") == "true" or os.environ.get("EC2D_REQUIRE_SECOND_ENGINE") == "1":
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


def docker_b(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["docker", "-H", ENGINE_B, *args], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"docker -H {ENGINE_B} {' '.join(args)} failed: {p.stderr.strip()}")
    return p


def container_id_on(engine_b: bool, iid: str) -> str | None:
    run = docker_b if engine_b else h.docker
    p = run("inspect", "--format", "{{.Id}}", h.container_name(iid), check=False)
    return p.stdout.strip() if p.returncode == 0 else None


def container_state_on(engine_b: bool, iid: str) -> str | None:
    run = docker_b if engine_b else h.docker
    p = run("inspect", "--format", "{{.State.Status}}", h.container_name(iid), check=False)
    return p.stdout.strip() if p.returncode == 0 else None


def engine_b_running() -> bool:
    return subprocess.run(["bash", str(SECOND_ENGINE), "status"], capture_output=True).returncode == 0


def start_engine_b():
    p = subprocess.run(["bash", str(SECOND_ENGINE), "start"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"second-engine.sh start failed: {p.stdout}{p.stderr}"


@pytest.fixture
def zones_ami(busybox_ami):
    """The busybox AMI under its own tag on A only, so launching it in us-east-1b copies it."""
    _require_engine_b()
    docker_b("image", "rm", AMI_TAG, check=False)
    h.docker("tag", h.BUSYBOX_IMAGE, AMI_TAG)
    yield AMI_ID
    h.remove_tags([AMI_TAG])
    if engine_b_running():
        docker_b("image", "rm", AMI_TAG, check=False)


@pytest.fixture
def zoned(ec2d_factory, zones_ami):
    """An ec2d with us-east-1b on engine B. Teardown: ec2d stops first (else it would make
    again what is removed), then its containers on B and any AMI it committed there go (the
    factory cleans engine A)."""
    # Default resync and ping periods: an outage is seen through the engine's event stream.
    # The metadata service on a port of its own: the session's ec2d holds the default one.
    srv = ec2d_factory(extra_env={"EC2D_ENGINES": f"{ZONE_B}={ENGINE_B}",
                                  "EC2D_IMDS_LISTEN": f"0.0.0.0:{h.free_port()}"})
    yield srv
    clean_engine_b(srv)


def clean_engine_b(srv):
    """Stops srv (else it would make again what is removed), then removes its containers,
    Docker volumes and networks on B and the AMIs it committed there."""
    if srv.alive():
        srv.stop()
    if not engine_b_running():
        start_engine_b()
    if srv.store_id:
        ids = docker_b("ps", "-aq", "--filter", f"label={h.STORE_ID_LABEL}={srv.store_id}", check=False).stdout.split()
        if ids:
            docker_b("rm", "-f", *ids, check=False)
        volumes = docker_b("volume", "ls", "-q", "--filter", f"label={h.STORE_ID_LABEL}={srv.store_id}",
                           check=False).stdout.split()
        if volumes:
            docker_b("volume", "rm", "-f", *volumes, check=False)
        networks = docker_b("network", "ls", "-q", "--filter", f"label={h.STORE_ID_LABEL}={srv.store_id}",
                            check=False).stdout.split()
        if networks:
            docker_b("network", "rm", *networks, check=False)
    for image in srv.cleanup.images:
        for tag in docker_b("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split():
            if tag.endswith(f":{image}"):
                docker_b("image", "rm", tag, check=False)


def run_in(ec2, srv, zone: str | None, image_id: str = AMI_ID, **kw) -> str:
    if zone:
        kw["Placement"] = {"AvailabilityZone": zone}
    resp = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro", **kw)
    iid = resp["Instances"][0]["InstanceId"]
    srv.cleanup.track_instances([iid])
    return iid


def zone_states(ec2) -> dict[str, str]:
    return {z["ZoneName"]: z["State"] for z in ec2.describe_availability_zones()["AvailabilityZones"]}


def test_instances_land_on_their_zones_engine_and_the_ami_follows(zoned):
    ec2 = zoned.client(zoned.recorder)
    in_a = run_in(ec2, zoned, ZONE_A)
    in_b = run_in(ec2, zoned, ZONE_B)
    # The default subnet of us-east-1b places the instance there too.
    subnet_b = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": [ZONE_B]},
                                             {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    by_subnet = run_in(ec2, zoned, None, SubnetId=subnet_b["SubnetId"])
    # The copy onto B shows in the instance's status while it runs (it may be quick).
    copies = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        doc = zoned.instance_status(in_b)
        if doc and doc.get("imageCopy"):
            copies.append(doc["imageCopy"])
        if doc and doc["state"] == "running":
            break
        time.sleep(0.02)
    ec2.get_waiter("instance_running").wait(InstanceIds=[in_a, in_b, by_subnet], WaiterConfig=h.WAITER)

    assert container_state_on(False, in_a) == "running"
    assert container_id_on(True, in_a) is None
    for iid in (in_b, by_subnet):
        assert container_state_on(True, iid) == "running", iid
        assert container_id_on(False, iid) is None, f"{iid} also on engine A"
    statuses = {i: zoned.instance_status(i) for i in (in_a, in_b)}
    assert statuses[in_b]["engine"] == ENGINE_B
    assert statuses[in_a]["engine"] != ENGINE_B
    assert statuses[in_b]["imageCopy"] is None, "the copy is over"
    # The image on B is the very image of A (same id), under the AMI's tag.
    assert docker_b("image", "inspect", "--format", "{{.Id}}", AMI_TAG).stdout.strip() == h.image_id(AMI_TAG)
    if copies:
        assert copies[0]["from"] != ENGINE_B and copies[0]["to"] == ENGINE_B, copies[0]
        assert copies[0]["reference"] == AMI_TAG
    h.log(f"image copy seen in status {len(copies)} times while in_b was pending")
    copied = [line for line in Path(zoned.log_path).read_text().splitlines()
              if "image copied to the instance's engine" in line]
    assert copied and (in_b in copied[0] or by_subnet in copied[0]), copied
    # One AMI however many engines hold its image.
    images = ec2.describe_images(ImageIds=[AMI_ID])["Images"]
    assert [i["ImageId"] for i in images] == [AMI_ID]
    # DescribeInstances places them where they run.
    placed = {i: d["Placement"]["AvailabilityZone"] for i, d in h.describe_instances(ec2, [in_a, in_b, by_subnet]).items()}
    assert placed == {in_a: ZONE_A, in_b: ZONE_B, by_subnet: ZONE_B}

    ec2.terminate_instances(InstanceIds=[in_b])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[in_b], WaiterConfig=h.WAITER)
    h.wait_until(lambda: container_id_on(True, in_b) is None, 30, 0.2, "in_b's container gone from B")
    assert container_state_on(False, in_a) == "running"


def test_an_ami_made_on_engine_a_launches_in_zone_b(zoned):
    ec2 = zoned.client(zoned.recorder)
    in_a = run_in(ec2, zoned, ZONE_A)
    ec2.get_waiter("instance_running").wait(InstanceIds=[in_a], WaiterConfig=h.WAITER)
    marker = f"made-on-a-{in_a}"
    h.dexec(in_a, "sh", "-c", f"echo {marker} > /zone-marker")
    image_id = ec2.create_image(InstanceId=in_a, Name=f"zones-{in_a}")["ImageId"]
    zoned.cleanup.track_image(image_id)
    ec2.get_waiter("image_available").wait(ImageIds=[image_id], WaiterConfig=h.WAITER)
    assert docker_b("images", "-q", f"{h.AMI_REPO_PREFIX}zones-{in_a}:{image_id}").stdout.strip() == "", \
        "committed on A only"

    in_b = run_in(ec2, zoned, ZONE_B, image_id=image_id)
    ec2.get_waiter("instance_running").wait(InstanceIds=[in_b], WaiterConfig=h.WAITER)
    assert container_state_on(True, in_b) == "running"
    seen = docker_b("exec", h.container_name(in_b), "cat", "/zone-marker").stdout.strip()
    assert seen == marker
    assert [i["ImageId"] for i in ec2.describe_images(ImageIds=[image_id])["Images"]] == [image_id]


def test_a_stopped_engine_impairs_its_zone_only_and_converges_when_back(zoned):
    ec2 = zoned.client(zoned.recorder)
    in_a = run_in(ec2, zoned, ZONE_A)
    in_b = run_in(ec2, zoned, ZONE_B)
    ec2.get_waiter("instance_running").wait(InstanceIds=[in_a, in_b], WaiterConfig=h.WAITER)
    assert zone_states(ec2)[ZONE_B] == "available"

    p = subprocess.run(["bash", str(SECOND_ENGINE), "stop"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    try:
        t0 = time.monotonic()
        # Well inside the 15 s between pings: the broken event stream asks for one at once.
        h.wait_until(lambda: zone_states(ec2)[ZONE_B] == "impaired", 10, 0.2, "us-east-1b impaired")
        h.log(f"us-east-1b impaired {time.monotonic() - t0:.1f}s after engine B stopped")
        states = zone_states(ec2)
        assert all(state == "available" for zone, state in states.items() if zone != ZONE_B), states

        # Its instance keeps its state; its system check fails. Zone A's passes.
        checks = {s["InstanceId"]: s for s in ec2.describe_instance_status(InstanceIds=[in_a, in_b])["InstanceStatuses"]}
        assert checks[in_b]["InstanceState"]["Name"] == "running"
        assert checks[in_b]["SystemStatus"]["Status"] == "impaired"
        assert checks[in_b]["SystemStatus"]["Details"] == [{"Name": "reachability", "Status": "failed"}]
        assert checks[in_a]["SystemStatus"]["Status"] == "ok"
        impaired = ec2.describe_instance_status(Filters=[{"Name": "system-status.status", "Values": ["impaired"]}])
        assert [s["InstanceId"] for s in impaired["InstanceStatuses"]] == [in_b]
        assert h.describe_instances(ec2, [in_b])[in_b]["State"]["Name"] == "running"

        # No launch into it; the zone error is EC2's, a server error.
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            ec2.run_instances(ImageId=AMI_ID, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                              Placement={"AvailabilityZone": ZONE_B})
        err = refused.value.response
        assert err["Error"]["Code"] == "InsufficientInstanceCapacity"
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert ZONE_B in err["Error"]["Message"] and ZONE_A in err["Error"]["Message"]

        # Zone A keeps working: a launch with no zone goes elsewhere, stop and start go through.
        other = run_in(ec2, zoned, None)
        ec2.get_waiter("instance_running").wait(InstanceIds=[other], WaiterConfig=h.WAITER)
        assert h.describe_instances(ec2, [other])[other]["Placement"]["AvailabilityZone"] != ZONE_B
        ec2.stop_instances(InstanceIds=[in_a])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[in_a], WaiterConfig=h.WAITER)
        assert container_state_on(False, in_a) == "paused"
        ec2.start_instances(InstanceIds=[in_a])
        ec2.get_waiter("instance_running").wait(InstanceIds=[in_a], WaiterConfig=h.WAITER)
        code, health = zoned.health()
        assert code == 503 and health["ok"] is False
        down = [e for e in health["engines"] if e["name"] == ENGINE_B]
        assert down and down[0]["reachable"] is False, health["engines"]
    finally:
        if not engine_b_running():
            start_engine_b()

    # Back: the zone is available, its instance's container runs again (the engine's stop
    # took it down; ec2d starts it again), and the checks pass.
    t1 = time.monotonic()
    h.wait_until(lambda: zone_states(ec2)[ZONE_B] == "available", 30, 0.2, "us-east-1b available again")
    h.wait_until(lambda: container_state_on(True, in_b) == "running", 60, 0.3, "in_b's container running on B")
    ec2.get_waiter("instance_status_ok").wait(InstanceIds=[in_b], WaiterConfig=h.WAITER)
    h.log(f"us-east-1b converged {time.monotonic() - t1:.1f}s after engine B answered again")
    assert h.describe_instances(ec2, [in_b])[in_b]["State"]["Name"] == "running"
    in_b2 = run_in(ec2, zoned, ZONE_B)
    ec2.get_waiter("instance_running").wait(InstanceIds=[in_b2], WaiterConfig=h.WAITER)
    assert container_state_on(True, in_b2) == "running"


def test_a_killed_ec2d_adopts_its_containers_on_both_engines(zoned):
    ec2 = zoned.client(zoned.recorder)
    in_a = run_in(ec2, zoned, ZONE_A)
    in_b = run_in(ec2, zoned, ZONE_B)
    stopped_b = run_in(ec2, zoned, ZONE_B)
    ec2.get_waiter("instance_running").wait(InstanceIds=[in_a, in_b, stopped_b], WaiterConfig=h.WAITER)
    ec2.stop_instances(InstanceIds=[stopped_b])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[stopped_b], WaiterConfig=h.WAITER)
    before = {in_a: container_id_on(False, in_a), in_b: container_id_on(True, in_b),
              stopped_b: container_id_on(True, stopped_b)}
    assert all(before.values()), before

    zoned.kill()
    zoned.start()
    ec2 = zoned.client(zoned.recorder)
    ec2.get_waiter("instance_running").wait(InstanceIds=[in_a, in_b], WaiterConfig=h.WAITER)
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[stopped_b], WaiterConfig=h.WAITER)
    # Give the first passes and a sweep time to do anything they would do.
    time.sleep(4)
    after = {in_a: container_id_on(False, in_a), in_b: container_id_on(True, in_b),
             stopped_b: container_id_on(True, stopped_b)}
    assert after == before, "adopted, not re-created"
    assert container_state_on(True, stopped_b) == "paused"
    for iid in (in_b, stopped_b):
        assert container_id_on(False, iid) is None, f"{iid} duplicated on engine A"
    ec2.start_instances(InstanceIds=[stopped_b])
    ec2.get_waiter("instance_running").wait(InstanceIds=[stopped_b], WaiterConfig=h.WAITER)
    assert container_state_on(True, stopped_b) == "running"

    # Drift on engine B: a container removed behind ec2d's back boots afresh there, through
    # engine B's own event stream, and never on engine A.
    docker_b("rm", "-f", h.container_name(in_b))

    def replaced_on_b():
        new = container_id_on(True, in_b)
        return new if new and new != before[in_b] and container_state_on(True, in_b) == "running" else None

    h.wait_until(replaced_on_b, 30, 0.2, f"a new container for {in_b} on engine B")
    assert container_id_on(False, in_b) is None, f"{in_b} re-created on engine A"
    [inst] = [i for r in ec2.describe_instances(InstanceIds=[in_b])["Reservations"] for i in r["Instances"]]
    assert inst["State"]["Name"] == "running"
    assert inst["Placement"]["AvailabilityZone"] == ZONE_B


def test_volumes_and_the_metadata_service_follow_an_instance_to_engine_b(zoned):
    ec2 = zoned.client(zoned.recorder)
    in_b = run_in(ec2, zoned, ZONE_B, BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}}])
    ec2.get_waiter("instance_running").wait(InstanceIds=[in_b], WaiterConfig=h.WAITER)
    volume = ec2.create_volume(AvailabilityZone=ZONE_B, Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig=h.WAITER)
    ec2.attach_volume(VolumeId=volume, InstanceId=in_b, Device="/dev/sdg")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[volume], WaiterConfig=h.WAITER)

    # Both volumes' data live on B, beside the instance; none on A.
    b_volumes = docker_b("volume", "ls", "-q", "--filter", f"label={h.STORE_ID_LABEL}={zoned.store_id}").stdout.split()
    a_volumes = h.docker("volume", "ls", "-q", "--filter", f"label={h.STORE_ID_LABEL}={zoned.store_id}").stdout.split()
    assert len(b_volumes) == 2 and any(volume in name for name in b_volumes), b_volumes
    assert a_volumes == []
    # Data written at the mount point is in B's Docker volume.
    docker_b("exec", h.container_name(in_b), "sh", "-c", "echo on-b > /mnt/sdf/where")
    found = []
    for name in b_volumes:
        mountpoint = docker_b("volume", "inspect", "--format", "{{.Mountpoint}}", name).stdout.strip()
        if (Path(mountpoint) / "where").exists():
            found.append((Path(mountpoint) / "where").read_text().strip())
    assert found == ["on-b"], found

    def attached():
        vols = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [in_b]}])["Volumes"]
        states = {v["Attachments"][0]["Device"]: v["Attachments"][0]["State"] for v in vols}
        return states.get("/dev/sdf") == "attached" and states.get("/dev/sdg") == "attached"

    h.wait_until(attached, 30, 0.3, "both volumes attached")

    # The metadata service answers an instance on B by its own address on B's bridge.
    request = "printf 'GET /latest/meta-data/instance-id HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc 169.254.169.254 80"

    def imds_answers():
        p = docker_b("exec", h.container_name(in_b), "sh", "-c", request, check=False)
        return p.stdout.strip().splitlines()[-1:] == [in_b]

    routes = zoned.status()["imdsRoutes"]
    assert routes["active"] is True, routes
    h.wait_until(imds_answers, 20, 0.5, "IMDS answering the instance on engine B")


def test_a_vpc_subnet_in_zone_b_gets_its_network_on_engine_b(zoned):
    ec2 = zoned.client(zoned.recorder)
    vpc = ec2.create_vpc(CidrBlock="10.71.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.71.2.0/24", AvailabilityZone=ZONE_B)["Subnet"]["SubnetId"]
    answer = ec2.run_instances(ImageId=AMI_ID, MinCount=2, MaxCount=2, InstanceType="t3.micro", SubnetId=subnet)
    ids = [i["InstanceId"] for i in answer["Instances"]]
    zoned.cleanup.track_instances(ids)
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=h.WAITER)
    shown = {i: d["PrivateIpAddress"] for i, d in h.describe_instances(ec2, ids).items()}
    assert all(ip.startswith("10.71.2.") for ip in shown.values()), shown

    # The VPC's network is on B only, with the VPC's block; each container has its address.
    on_b = docker_b("network", "ls", "-q", "--filter", f"label=ec2d.vpc-id={vpc}").stdout.split()
    on_a = h.docker("network", "ls", "-q", "--filter", f"label=ec2d.vpc-id={vpc}").stdout.split()
    assert len(on_b) == 1 and on_a == [], (on_b, on_a)
    subnet_of = docker_b("network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", on_b[0]).stdout.strip()
    assert subnet_of == "10.71.0.0/16"
    for iid, ip in shown.items():
        addresses = docker_b("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                             h.container_name(iid)).stdout.split()
        assert ip in addresses, (iid, ip, addresses)
    # (No ping between them: engine B runs with --iptables=false beside engine A, whose FORWARD
    # policy DROP then drops bridged traffic on B's networks; firewalling is B's own business.)

    # The VPC's last instance gone, its network on B goes too.
    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=h.WAITER)
    h.wait_until(lambda: docker_b("network", "ls", "-q", "--filter", f"label=ec2d.vpc-id={vpc}").stdout.strip() == "",
                 30, 0.3, "the VPC's network removed from B")


def test_a_zone_on_an_engine_reached_over_tls(ec2d_factory, zones_ami):
    _require_engine_b(tls=True)
    # Without the client certificate the endpoint is refused at start, with why.
    refused = ec2d_factory("no-certs", extra_env={"EC2D_ENGINES": f"{ZONE_B}={ENGINE_B_TLS}",
                                                  "DOCKER_CERT_PATH": "/nonexistent-ec2d-certs"}, start=False)
    with pytest.raises(RuntimeError) as no_certs:
        refused.start(timeout=20)
    assert "/nonexistent-ec2d-certs/ca.pem is missing" in str(no_certs.value), str(no_certs.value)[-2000:]

    srv = ec2d_factory(extra_env={"EC2D_ENGINES": f"{ZONE_B}={ENGINE_B_TLS}", "DOCKER_CERT_PATH": ENGINE_B_CERTS})
    try:
        ec2 = srv.client(srv.recorder)
        engines = {e["name"]: e for e in srv.health()[1]["engines"]}
        assert engines[ENGINE_B_TLS]["reachable"] is True, engines
        assert engines[ENGINE_B_TLS]["zones"] == [ZONE_B]
        in_b = run_in(ec2, srv, ZONE_B)
        ec2.get_waiter("instance_running").wait(InstanceIds=[in_b], WaiterConfig=h.WAITER)
        # On B (seen through its socket), over TLS from ec2d.
        assert container_state_on(True, in_b) == "running"
        assert container_id_on(False, in_b) is None
        assert srv.instance_status(in_b)["engine"] == ENGINE_B_TLS
        ec2.stop_instances(InstanceIds=[in_b])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[in_b], WaiterConfig=h.WAITER)
        assert container_state_on(True, in_b) == "paused"
    finally:
        clean_engine_b(srv)


@pytest.fixture
def ssh_gateway(tmp_path):
    """An sshd reached at 127.0.0.1 that forwards to engine B's socket: a container of the
    Debian test image on engine A with B's socket mounted as its /var/run/docker.sock, logged
    in to with a key made here. Yields (ssh:// endpoint, EC2D_SSH_COMMAND)."""
    _require_engine_b()
    socket_b = ENGINE_B.removeprefix("unix://")
    image = os.environ.get("EC2D_TEST_DEBIAN_IMAGE", "ec2d-test/debian-ssh:latest")
    if h.image_id(image) is None:
        pytest.fail(f"test image {image} missing: run tests/support/build-test-images.sh debian", pytrace=False)
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    port = h.free_port()
    name = f"ec2d-test-ssh-gateway-{port}"
    script = ("ssh-keygen -A >/dev/null && mkdir -p /run/sshd /root/.ssh && cat /gateway/id_ed25519.pub > "
              "/root/.ssh/authorized_keys && chmod 700 /root/.ssh && chmod 600 /root/.ssh/authorized_keys && "
              "exec /usr/sbin/sshd -D -e -o PermitRootLogin=prohibit-password")
    h.docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:22",
             "-v", f"{socket_b}:/var/run/docker.sock", "-v", f"{tmp_path}:/gateway:ro",
             image, "sh", "-c", script)
    known_hosts = tmp_path / "known_hosts"

    def host_key():
        p = subprocess.run(["ssh-keyscan", "-p", str(port), "-t", "ed25519", "127.0.0.1"],
                           capture_output=True, text=True, timeout=10)
        return p.stdout.strip() if p.returncode == 0 and "ssh-ed25519" in p.stdout else None

    try:
        known_hosts.write_text(h.wait_until(host_key, 30, 0.3, "the gateway's sshd") + "\n")
        command = f"ssh -i {key} -o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
        yield f"ssh://root@127.0.0.1:{port}", command
    finally:
        h.docker("rm", "-f", name, check=False)


def test_a_zone_on_an_engine_reached_over_ssh(ec2d_factory, zones_ami, ssh_gateway):
    endpoint, command = ssh_gateway
    # Without the ssh program the endpoint is refused at start, with why.
    refused = ec2d_factory("no-ssh", extra_env={"EC2D_ENGINES": f"{ZONE_B}={endpoint}",
                                                "EC2D_SSH_COMMAND": "/nonexistent-ec2d/ssh"}, start=False)
    with pytest.raises(RuntimeError) as no_ssh:
        refused.start(timeout=20)
    assert "/nonexistent-ec2d/ssh" in str(no_ssh.value) and "not on PATH" in str(no_ssh.value), \
        str(no_ssh.value)[-2000:]
    srv = ec2d_factory(extra_env={"EC2D_ENGINES": f"{ZONE_B}={endpoint}", "EC2D_SSH_COMMAND": command})
    tunnel_pattern = f"ssh .*-p {endpoint.rsplit(':', 1)[1]} -L "
    try:
        ec2 = srv.client(srv.recorder)
        engines = {e["name"]: e for e in srv.health()[1]["engines"]}
        assert engines[endpoint]["zones"] == [ZONE_B], engines
        h.wait_until(lambda: {e["name"]: e for e in srv.health()[1]["engines"]}[endpoint]["reachable"], 30, 0.3,
                     "engine B reachable through the ssh tunnel")
        assert "ssh tunnel to the engine started" in srv.log_tail(400)
        in_b = run_in(ec2, srv, ZONE_B)
        ec2.get_waiter("instance_running").wait(InstanceIds=[in_b], WaiterConfig=h.WAITER)
        # On B (seen through its own socket), reached by ec2d over ssh; the AMI copied there.
        assert container_state_on(True, in_b) == "running"
        assert container_id_on(False, in_b) is None
        assert srv.instance_status(in_b)["engine"] == endpoint

        # The tunnel's ssh killed: it is started again and ec2d goes on working through it.
        pids = subprocess.run(["pgrep", "-f", tunnel_pattern], capture_output=True, text=True).stdout.split()
        assert pids, "the tunnel's ssh process"
        subprocess.run(["kill", *pids], check=True)
        h.wait_until(lambda: srv.log_tail(400).count("ssh tunnel to the engine started") >= 2, 30, 0.3,
                     "the tunnel started again")
        ec2.stop_instances(InstanceIds=[in_b])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[in_b], WaiterConfig=h.WAITER)
        assert container_state_on(True, in_b) == "paused"
    finally:
        clean_engine_b(srv)
    # ec2d gone, its ssh is gone too.
    h.wait_until(lambda: subprocess.run(["pgrep", "-f", tunnel_pattern], capture_output=True).returncode != 0,
                 10, 0.2, "no ssh left behind")
