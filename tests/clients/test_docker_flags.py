"""ec2d's Docker settings, checked inside real instances: EC2_DOCKER_FLAGS,
EC2_MOUNT_DOCKER_SOCKET and EC2_DOCKER_INIT. Each test starts its own ec2d (own port,
data dir and log in the session's workdir) with the setting under test, and removes the
instances it launched."""

from __future__ import annotations

import re
import time

import pytest

import ec2d_harness as h

# The settings of these tests, whatever the caller's shell exports.
DEFAULTS = {"EC2_DOCKER_FLAGS": "", "EC2_MOUNT_DOCKER_SOCKET": "1", "EC2_DOCKER_INIT": "1"}

DOCKER_SOCKET = "/var/run/docker.sock"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:80]


@pytest.fixture
def server(request, busybox_ami, debian_ami, workdir, recorder):
    """server(env) -> a started h.Ec2dServer with DEFAULTS overridden by env; server(env,
    start=False) only makes it. srv.launch(image_id) runs one instance and waits for running."""
    made: list[h.Ec2dServer] = []

    def make(env: dict | None = None, start: bool = True) -> h.Ec2dServer:
        tag = _safe(f"{request.node.name}-{len(made)}")
        srv = h.Ec2dServer(
            h.ec2d_binary(),
            workdir / f"data-{tag}",
            workdir / f"ec2d-{tag}.log",
            name=f"ec2d[{tag}]",
            extra_env={**DEFAULTS, **(env or {})},
        )
        srv.cleanup = h.Ec2Cleanup(lambda: srv.client())
        made.append(srv)
        if start:
            try:
                srv.start()
                err = None
            except RuntimeError as e:
                err = str(e)
            if err:
                pytest.fail(err, pytrace=False)

        def launch(image_id: str = busybox_ami["id"]) -> str:
            client = srv.client(recorder)
            _wait_ami(client, image_id)
            resp = client.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro")
            ids = [i["InstanceId"] for i in resp["Instances"]]
            srv.cleanup.track_instances(ids)
            client.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=h.WAITER)
            h.wait_container_state(ids[0], "running", timeout=15)
            return ids[0]

        srv.launch = launch
        return srv

    yield make
    for srv in reversed(made):
        if srv.alive():
            for p in srv.cleanup.run():
                print(f"[ec2d-tests] cleanup problem: {p}")
        srv.stop()


def _wait_ami(client, ami: str, timeout: float = 20) -> None:
    def known():
        try:
            imgs = client.describe_images(ImageIds=[ami])["Images"]
        except Exception:  # noqa: BLE001 - not yet
            return False
        return bool(imgs) and imgs[0].get("State") == "available"

    h.wait_until(known, timeout, 0.5, f"AMI {ami} to be available")


def dexec(iid: str, *cmd: str, check: bool = True):
    return h.docker("exec", h.container_name(iid), *cmd, check=check, timeout=30)


# --------------------------------------------------------------------------- EC2_DOCKER_FLAGS


def test_docker_flags_take_effect_inside_the_instance(server):
    srv = server({"EC2_DOCKER_FLAGS": "-e EC2D_FLAG_TEST=hello --label ec2d.test=yes --add-host myhost:10.1.2.3"})
    iid = srv.launch()

    env = dexec(iid, "env").stdout.splitlines()
    assert "EC2D_FLAG_TEST=hello" in env, env
    # ... also for what the instance runs at boot (the user-data shell sees PID 1's environment)
    pid1_env = dexec(iid, "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ").stdout.splitlines()
    assert "EC2D_FLAG_TEST=hello" in pid1_env, pid1_env

    info = h.container_inspect(h.container_name(iid))
    labels = info["Config"]["Labels"] or {}
    assert labels.get("ec2d.test") == "yes", labels
    # ec2d's own labels are still there next to the user's
    assert labels.get("ec2d.instance-id") == iid, labels
    assert "myhost:10.1.2.3" in (info["HostConfig"].get("ExtraHosts") or []), info["HostConfig"].get("ExtraHosts")

    hosts = dexec(iid, "cat", "/etc/hosts").stdout
    assert any(line.split()[:2] == ["10.1.2.3", "myhost"] for line in hosts.splitlines()), hosts


def test_unknown_docker_flag_stops_ec2d_at_start(server):
    srv = server({"EC2_DOCKER_FLAGS": "-e A=1 --frobnicate"}, start=False)
    with pytest.raises(RuntimeError) as e:
        srv.start(timeout=30)
    assert "exited with code" in str(e.value), str(e.value)
    rc = srv.proc.returncode
    assert rc not in (0, None), rc
    log = h.tail(srv.log_path, 60)
    assert "--frobnicate" in log, f"ec2d's message does not name the flag:\n{log}"


# --------------------------------------------------------------------------- EC2_MOUNT_DOCKER_SOCKET

# Talks HTTP to the engine through the mounted socket with nothing but python3-minimal.
PING = (
    "import socket; s = socket.socket(socket.AF_UNIX); s.connect('" + DOCKER_SOCKET + "'); "
    "s.sendall(b'GET /_ping HTTP/1.0\\r\\nHost: docker\\r\\n\\r\\n'); "
    "print(s.recv(4096).decode(errors='replace'))"
)


def _socket_mounts(iid: str) -> list[dict]:
    info = h.container_inspect(h.container_name(iid))
    return [m for m in info.get("Mounts") or [] if m.get("Destination") == DOCKER_SOCKET]


def test_docker_socket_mounted_by_default(server, debian_ami):
    srv = server()
    iid = srv.launch(debian_ami["id"])
    mounts = _socket_mounts(iid)
    assert len(mounts) == 1 and mounts[0].get("Source") == DOCKER_SOCKET, mounts
    assert dexec(iid, "test", "-S", DOCKER_SOCKET, check=False).returncode == 0, "no socket inside the instance"
    # and it is the engine: GET /_ping answers OK
    out = dexec(iid, "python3", "-c", PING).stdout
    assert re.match(r"HTTP/1\.[01] 200", out) and out.rstrip().endswith("OK"), out


def test_docker_socket_not_mounted_when_disabled(server):
    srv = server({"EC2_MOUNT_DOCKER_SOCKET": "0"})
    iid = srv.launch()
    assert _socket_mounts(iid) == []
    assert dexec(iid, "test", "-e", DOCKER_SOCKET, check=False).returncode != 0, dexec(
        iid, "ls", "-l", "/var/run", check=False
    ).stdout


# --------------------------------------------------------------------------- EC2_DOCKER_INIT


@pytest.mark.parametrize("init", ["1", "0"])
def test_docker_init_setting(server, init):
    srv = server({"EC2_DOCKER_INIT": init})
    iid = srv.launch()
    info = h.container_inspect(h.container_name(iid))
    assert bool(info["HostConfig"].get("Init")) is (init == "1"), info["HostConfig"].get("Init")
    # PID 1: Docker's init with the boot script under it, or the boot script itself
    deadline = time.monotonic() + 10
    while True:
        comm = dexec(iid, "cat", "/proc/1/comm").stdout.strip()
        cmdline = dexec(iid, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline").stdout.strip()
        if comm or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if init == "1":
        assert comm in ("docker-init", "tini"), (comm, cmdline)
    else:
        assert cmdline.rstrip().endswith("ec2d-boot"), (comm, cmdline)
