"""ec2d's container image run by the repository's docker-compose.yml, driven from the host as
the README's walkthrough does: LocalStack's health endpoint and `Ready.` line, awslocal
key pair + run-instances on the debian-ssh AMI, SSH with the key to the address the log line
names, the Docker socket inside the instance, CreateImage, and recovery after the ec2d
container is killed and brought up again (same instance, same container, no duplicate).

The image must exist (tests/support/build-ec2d-image.sh builds ec2d:local; EC2D_IMAGE picks
another tag); a missing image fails the module. The compose project has a unique name and a
free host port (EC2D_PORT); teardown removes the project with its named volume, the
instances' containers, the store's networks and volumes, and the AMI tags it made.

Env: EC2D_IMAGE (default ec2d:local).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import ec2d_harness as h

IMAGE = os.environ.get("EC2D_IMAGE", "ec2d:local")
COMPOSE_FILE = h.REPO_ROOT / "docker-compose.yml"
SSH_TIMEOUT = 60


def compose_argv() -> list[str]:
    """`docker compose` (v2) when the CLI has it, else `docker-compose` (v1)."""
    p = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if p.returncode == 0:
        return ["docker", "compose"]
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("neither `docker compose` nor `docker-compose` is installed", pytrace=False)
    return [exe]


class ComposedEc2d:
    """The ec2d service of one compose project: what AwsCli needs (port, url) and more."""

    def __init__(self, workdir: Path):
        self.project = f"ec2dtest{os.getpid()}"
        self.port = h.free_port()
        self.compose = compose_argv()
        self.store_id: str | None = None
        self.starts = 0
        self.name = f"compose {self.project}"
        self.log_path = workdir / f"{self.project}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        env = dict(os.environ, EC2D_IMAGE=IMAGE, EC2D_PORT=str(self.port), EC2D_LOG="info,ec2d=debug")
        argv = [*self.compose, "-p", self.project, "-f", str(COMPOSE_FILE), *args]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=h.REPO_ROOT)
        assert p.returncode == 0, f"$ {' '.join(argv)}\nrc={p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def container(self) -> str:
        """The ec2d container's id (there is exactly one)."""
        ids = self.run("ps", "-q", "ec2d").stdout.split()
        assert len(ids) == 1, f"expected one ec2d container, got {ids}"
        return ids[0]

    def logs(self) -> str:
        p = h.docker("logs", self.container(), check=False)
        return p.stdout + p.stderr

    def up(self, timeout: float = 60) -> float:
        """`up -d`, then wait for `Ready.` in the container's output; returns the seconds."""
        self.starts += 1
        # `Ready.` of this start: a restarted container's log keeps the previous ones.
        existing = self.run("ps", "-q", "ec2d").stdout.split()
        since = self.logs().count("Ready.") if existing else 0
        t0 = time.monotonic()
        self.run("up", "-d")
        cid = self.container()
        h.wait_until(lambda: self.logs().count("Ready.") > since, timeout, desc=f"`Ready.` from {cid[:12]}")
        took = time.monotonic() - t0
        code, _ = h.http_get(f"{self.url}/_localstack/health", timeout=5)
        assert code == 200
        status = json.loads(h.http_get(f"{self.url}/_ec2d/status")[1])
        self.store_id = status.get("storeId") or self.store_id
        return took

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def alive(self) -> bool:
        return False


@pytest.fixture(scope="module")
def composed(workdir, debian_ami):
    if h.image_id(IMAGE) is None:
        pytest.fail(f"image {IMAGE} missing: run tests/support/build-ec2d-image.sh", pytrace=False)
    srv = ComposedEc2d(workdir)
    try:
        took = srv.up()
        h.FIGURES.append(f"ec2d container ({IMAGE}) `docker compose up -d` to `Ready.`: {took:.1f}s")
        yield srv
    finally:
        # The instances' containers first (their networks and volumes go after them), then the
        # project with its named volume.
        if srv.store_id:
            p = h.docker(
                "ps", "-aq", "--filter", f"label={h.STORE_ID_LABEL}={srv.store_id}", check=False
            )
            problems = h.remove_containers(p.stdout.split())
            problems += h.remove_store_networks([srv.store_id])
            problems += h.remove_store_volumes([srv.store_id])
            tags = sorted(t for t in h.list_ami_tags() if t.rsplit(":", 1)[-1] in h.OWNED_AMIS)
            problems += h.remove_tags(tags)
            for problem in problems:
                print(f"[ec2d-tests] cleanup problem: {problem}")
        srv.run("down", "-v", "--remove-orphans", timeout=120)


@pytest.fixture(scope="module")
def cli(composed, workdir):
    return h.AwsCli(composed, "awslocal", workdir)


def test_health_ready_and_healthcheck(composed):
    code, body = h.http_get(f"{composed.url}/_localstack/health")
    assert code == 200
    doc = json.loads(body)
    assert doc["services"] == {"ec2": "running"}
    assert doc["edition"] == "community" and doc["version"]
    req = urllib.request.Request(f"{composed.url}/_localstack/health", method="HEAD")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    # The image's HEALTHCHECK (`ec2d healthcheck`, no curl in a distroless image) turns healthy.
    cid = composed.container()

    def healthy():
        p = h.docker("inspect", "--format", "{{.State.Health.Status}}", cid)
        return p.stdout.strip() == "healthy"

    h.wait_until(healthy, 30, desc="container health status `healthy`")
    logs = composed.logs()
    assert re.search(r"^Ready\.$", logs, re.M), logs[-2000:]
    # What cannot work from inside a container says so once, instead of failing later.
    assert "ec2d runs in a container" in logs


def test_walkthrough_ssh_socket_create_image_and_restart(composed, cli, workdir, debian_ami):
    key = cli("create-key-pair", "--key-name", "compose-key").ok().json
    pem = workdir / "compose-key.pem"
    pem.write_text(key["KeyMaterial"])
    pem.chmod(0o600)
    run = cli(
        "run-instances", "--image-id", debian_ami["id"], "--key-name", "compose-key",
        "--instance-type", "t3.micro", "--count", "1",
    ).ok().json  # fmt: skip
    iid = run["Instances"][0]["InstanceId"]
    h.OWNED_INSTANCES.add(iid)
    cli("wait", "instance-running", "--instance-ids", iid, timeout=120).ok()
    name = h.container_name(iid)
    inspect = h.container_inspect(name)
    assert inspect is not None, f"no container {name}: instances must be siblings on the host's engine"
    container_id = inspect["Id"]

    # The SSH line names the address the host connects to; it is the engine's published port.
    def ssh_line():
        m = re.search(rf"Instance {iid} will be accessible via SSH at: ([0-9.]+):(\d+)", composed.logs())
        return m and (m.group(1), int(m.group(2)))

    host_ip, port = h.wait_until(ssh_line, 30, desc="the SSH log line")
    published = h.docker("port", name, "22/tcp").stdout.split()
    assert f"{host_ip}:{port}" in published, (host_ip, port, published)
    assert f"port mappings (container -> host): {{'22/tcp': {port}" in composed.logs()

    argv = [
        "ssh", "-F", "/dev/null", "-i", str(pem), "-p", str(port),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
        f"root@{host_ip}", "test -S /var/run/docker.sock && echo socket-ok",
    ]  # fmt: skip

    def ssh_ok():
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        return p.returncode == 0 and p.stdout.strip() == "socket-ok"

    h.wait_until(ssh_ok, SSH_TIMEOUT, interval=1, desc=f"ssh -p {port} with the key pair's key")

    # CreateImage: the engine commits the instance's container; the AMI becomes available.
    ami = cli("create-image", "--instance-id", iid, "--name", "compose-image", "--no-reboot").ok().json["ImageId"]
    h.OWNED_AMIS.add(ami)
    cli("wait", "image-available", "--image-ids", ami, timeout=120).ok()

    # Restart recovery: kill ec2d's container (a crash), bring the project up again.
    h.docker("kill", composed.container())
    took = composed.up()
    h.FIGURES.append(f"ec2d container restart (`up -d` after `docker kill`) to `Ready.`: {took:.1f}s")
    desc = cli("describe-instances", "--instance-ids", iid).ok().json
    inst = desc["Reservations"][0]["Instances"][0]
    assert inst["State"]["Name"] == "running"
    assert inst["KeyName"] == "compose-key"
    again = h.container_inspect(name)
    assert again is not None and again["Id"] == container_id, "the instance's container was re-created"
    same = [n for n in h.list_ec2_containers().values() if n == name]
    assert same == [name]
    images = cli("describe-images", "--image-ids", ami).ok().json["Images"]
    assert [i["State"] for i in images] == ["available"]
    assert ssh_ok(), "SSH no longer answers after ec2d's restart"

    cli("terminate-instances", "--instance-ids", iid).ok()
    cli("wait", "instance-terminated", "--instance-ids", iid, timeout=120).ok()
