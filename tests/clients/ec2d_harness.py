"""Helpers for ec2d's real-client tests: the ec2d process, the docker CLI,
the aws / awslocal CLIs, boto3 clients and polling.

Everything here talks only to 127.0.0.1 (ec2d) and to the local Docker engine.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import boto3
from botocore.config import Config
from botocore.history import BaseHistoryHandler, get_global_history_recorder

REPO_ROOT = Path(__file__).resolve().parents[2]

REGION = "us-east-1"
CREDS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}

CONTAINER_PREFIX = "localstack-ec2."
AMI_REPO_PREFIX = "localstack-ec2/"
BUSYBOX_IMAGE = os.environ.get("EC2D_TEST_BUSYBOX_IMAGE", "ec2d-test/busybox:latest")
TEST_AMI_ID = "ami-000001"
TEST_AMI_NAME = "test-ami"
TEST_AMI_TAG = f"{AMI_REPO_PREFIX}{TEST_AMI_NAME}:{TEST_AMI_ID}"

# Generous but fast: poll every second, give up after a minute.
WAITER = {"Delay": 1, "MaxAttempts": 60}

STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}

INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8}([0-9a-f]{9})?$")
AMI_ID_RE = re.compile(r"^ami-[0-9a-f]{6,17}$")
RESERVATION_ID_RE = re.compile(r"^r-[0-9a-f]{8}([0-9a-f]{9})?$")

# All ec2d processes started by this session, newest last (for failure reports).
SERVERS: list[Ec2dServer] = []
# Instances and AMIs this session's ec2d processes made. Only their containers
# and image tags are removed at the end: other people's tests may use the same
# Docker engine (and the same localstack-ec2.* names) at the same time.
OWNED_INSTANCES: set[str] = set()
OWNED_AMIS: set[str] = set()


# --------------------------------------------------------------------------- misc


def ec2d_binary() -> Path:
    """$EC2D_BIN, else <repo>/target/debug/ec2d."""
    return Path(os.environ.get("EC2D_BIN") or REPO_ROOT / "target" / "debug" / "ec2d")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred: Callable[[], object], timeout: float, interval: float = 0.25, desc: str = "condition"):
    """Poll pred() until it returns a truthy value; return it. On timeout raise
    AssertionError naming desc and the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {desc}; last value: {last!r}")
        time.sleep(interval)


def tail(path: Path, lines: int = 80) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def script_path(name: str) -> str:
    """An executable installed by pip for *this* interpreter, else from PATH."""
    cand = Path(sysconfig.get_path("scripts")) / name
    if cand.exists() and os.access(cand, os.X_OK):
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found (pip install {'awscli-local' if name == 'awslocal' else 'awscli'})")
    return found


# --------------------------------------------------------------------------- docker


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed (rc={proc.returncode}):\n{proc.stderr.strip()}")
    return proc


def shut_down_from_inside(name: str, *cmd: str) -> None:
    """`docker exec NAME CMD` where CMD ends the container's main process (`kill 1`,
    `poweroff`): the exec itself may be cut short (137/143) as its container goes away;
    only a refusal to run is an error."""
    p = docker("exec", name, *cmd, check=False)
    assert p.returncode in (0, 137, 143) or "is not running" in p.stderr, (
        f"docker exec {name} {list(cmd)}: rc={p.returncode} {p.stderr}"
    )


def docker_available() -> tuple[bool, str]:
    if shutil.which("docker") is None:
        return False, "docker CLI not found"
    try:
        p = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return False, "docker info timed out"
    if p.returncode != 0:
        return False, p.stderr.strip()
    return True, p.stdout.strip()


def container_name(instance_id: str) -> str:
    return f"{CONTAINER_PREFIX}{instance_id}"


def dexec(iid: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    """`docker exec` in an instance's container."""
    return docker("exec", container_name(iid), *cmd, check=check, timeout=30)


def wait_file_contains(iid: str, path: str, needle: str, timeout: float = 20.0) -> str:
    """The text of a file inside an instance once it contains needle."""
    last = [""]

    def check():
        p = dexec(iid, "cat", path, check=False)
        last[0] = p.stdout + p.stderr
        return p.returncode == 0 and needle in p.stdout

    try:
        wait_until(check, timeout, 0.5, f"{path} in {iid} to contain {needle!r}")
    except AssertionError:
        raise AssertionError(
            f"{path} in {iid} never contained {needle!r} within {timeout}s; last:\n{last[0]}"
        ) from None
    return last[0]


def container_inspect(name: str) -> dict | None:
    """docker inspect of a container, or None if there is no such container."""
    p = docker("inspect", "--type", "container", name, check=False)
    if p.returncode != 0:
        if "No such" in p.stderr or "no such" in p.stderr:
            return None
        raise AssertionError(f"docker inspect {name} failed: {p.stderr.strip()}")
    return json.loads(p.stdout)[0]


def container_state(name: str) -> str:
    """'absent', 'paused', 'running', 'exited', 'created', ... (docker's State.Status)."""
    info = container_inspect(name)
    if info is None:
        return "absent"
    st = info["State"]
    if st.get("Paused"):
        return "paused"
    return st.get("Status", "?")


def wait_container_state(instance_id: str, want: str, timeout: float = 20) -> dict | None:
    """Wait until the instance's container is in docker state `want`
    ('running', 'paused', 'absent', ...). Returns the inspect dict (None if absent)."""
    name = container_name(instance_id)
    seen: list[str] = []

    def check():
        s = container_state(name)
        if not seen or seen[-1] != s:
            seen.append(s)
        return s == want

    try:
        wait_until(check, timeout, 0.25, f"container {name} to be {want}")
    except AssertionError:
        raise AssertionError(
            f"container {name}: wanted docker state {want!r}, states seen in {timeout}s: {seen}"
        ) from None
    return container_inspect(name)


def list_ec2_containers() -> dict[str, str]:
    """{container id: name} for every container named localstack-ec2.*"""
    p = docker("ps", "-a", "--no-trunc", "--filter", f"name={CONTAINER_PREFIX}", "--format", "{{.ID}} {{.Names}}")
    out = {}
    for line in p.stdout.splitlines():
        cid, _, name = line.partition(" ")
        name = name.lstrip("/")
        if name.startswith(CONTAINER_PREFIX):
            out[cid] = name
    return out


def cleanup_owned() -> tuple[list[str], list[str], list[str]]:
    """Remove the containers of OWNED_INSTANCES and the localstack-ec2/*:<ami>
    tags of OWNED_AMIS. Returns (containers removed, tags removed, problems)."""
    present = set(list_ec2_containers().values())
    names = sorted(container_name(i) for i in OWNED_INSTANCES if container_name(i) in present)
    stores = {container_label(n, STORE_ID_LABEL) for n in names} - {None, ""}
    problems = remove_containers(names)
    stores |= {s.store_id for s in SERVERS if getattr(s, "store_id", None)}
    problems += remove_store_networks(stores)
    problems += remove_store_volumes(stores)
    tags = sorted(t for t in list_ami_tags() if t.rsplit(":", 1)[-1] in OWNED_AMIS)
    problems += remove_tags(tags)
    return names, tags, problems


def list_ami_tags() -> set[str]:
    """Every image tag localstack-ec2/<name>:<ami-id>."""
    p = docker("images", "--format", "{{.Repository}}:{{.Tag}}")
    return {t for t in p.stdout.split() if t.startswith(AMI_REPO_PREFIX)}


def image_id(ref: str) -> str | None:
    p = docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return p.stdout.strip() if p.returncode == 0 else None


def remove_containers(names_or_ids: Iterable[str]) -> list[str]:
    problems = []
    for c in names_or_ids:
        p = docker("rm", "-f", "-v", c, check=False)
        if p.returncode != 0 and "No such" not in p.stderr:
            problems.append(f"docker rm -f {c}: {p.stderr.strip()}")
    return problems


VPC_ID_LABEL = "ec2d.vpc-id"


def store_networks(store_id: str) -> list[dict]:
    """The VPC networks ec2d made for a store: [{id, name, vpc_id}]."""
    fmt = "{{.ID}}\t{{.Name}}\t{{.Label \"" + VPC_ID_LABEL + "\"}}"
    p = docker("network", "ls", "--no-trunc", "--filter", f"label={STORE_ID_LABEL}={store_id}", "--format", fmt)
    out = []
    for line in p.stdout.splitlines():
        if line.strip():
            nid, name, vpc = (line.split("\t") + ["", "", ""])[:3]
            out.append({"id": nid, "name": name, "vpc_id": vpc})
    return out


def remove_store_networks(store_ids: Iterable[str]) -> list[str]:
    """Remove the VPC networks of these stores (their containers must be gone first)."""
    problems = []
    for sid in store_ids:
        for n in store_networks(sid):
            p = docker("network", "rm", n["id"], check=False)
            if p.returncode != 0 and "No such" not in p.stderr and "not found" not in p.stderr:
                problems.append(f"docker network rm {n['name']}: {p.stderr.strip()}")
    return problems


def store_volumes(store_id: str) -> list[str]:
    """The Docker volumes ec2d made for a store (its EBS volumes' and snapshots' data)."""
    p = docker("volume", "ls", "-q", "--filter", f"label={STORE_ID_LABEL}={store_id}", check=False)
    return [v for v in p.stdout.split() if v]


def remove_store_volumes(store_ids: Iterable[str]) -> list[str]:
    """Remove the Docker volumes of these stores (their containers must be gone first)."""
    problems = []
    for sid in store_ids:
        for v in store_volumes(sid):
            p = docker("volume", "rm", "-f", v, check=False)
            if p.returncode != 0 and "No such" not in p.stderr:
                problems.append(f"docker volume rm {v}: {p.stderr.strip()}")
    return problems


def unmount_under(path: str | Path) -> list[str]:
    """Lazily unmount every mount point under path, deepest first (ec2d's volume mounts in a
    test's data dir, left by a SIGKILLed ec2d), so removing the directory never reaches into
    a mounted volume and no mount outlives the test."""
    root = os.path.realpath(path)
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                points.append(point)
    problems = []
    for point in sorted(set(points), key=len, reverse=True):
        p = subprocess.run(["umount", "-l", point], capture_output=True, text=True)
        if p.returncode != 0 and "not mounted" not in p.stderr:
            problems.append(f"umount {point}: {p.stderr.strip()}")
    return problems


def remove_tags(tags: Iterable[str]) -> list[str]:
    problems = []
    for t in tags:
        p = docker("image", "rm", t, check=False)
        if p.returncode != 0 and "No such" not in p.stderr:
            p2 = docker("image", "rm", "-f", t, check=False)
            if p2.returncode != 0 and "No such" not in p2.stderr:
                problems.append(f"docker image rm {t}: {p2.stderr.strip()}")
    return problems


# --------------------------------------------------------------------------- ec2d process


class Ec2dServer:
    """One ec2d process on 127.0.0.1:<free port> with its own data dir."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, name: str = "ec2d", extra_env=None):
        self.binary = Path(binary)
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.name = name
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.starts = 0
        self.store_id: str | None = None
        SERVERS.append(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict:
        env = dict(os.environ)
        # The tests exercise the Docker backend with default container removal.
        for k in ("EC2_VM_MANAGER", "EC2_REMOVE_CONTAINERS", "EC2D_LISTEN", "EC2D_DATA_DIR"):
            env.pop(k, None)
        env.setdefault("EC2D_LOG", "info,ec2d=debug")  # ec2d's log filter (tracing EnvFilter)
        env.setdefault("RUST_LOG", "info,ec2d=debug")
        env.setdefault("RUST_BACKTRACE", "1")
        env["NO_COLOR"] = "1"
        env["EC2D_LISTEN"] = f"127.0.0.1:{self.port}"
        env["EC2D_DATA_DIR"] = str(self.data_dir)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60, require_healthy: bool = True) -> "Ec2dServer":
        """Spawn ec2d and wait until GET /_ec2d/health answers 200 (or, with
        require_healthy=False, answers at all: 503 while the engine is unreachable)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not self.binary.exists():
            raise RuntimeError(
                f"ec2d binary not found at {self.binary} (build it with `cargo build --bin ec2d`, "
                "or point EC2D_BIN at it)"
            )
        self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== [test harness] start #{self.starts}: {self.binary} on {self.url} =====\n".encode())
        log.flush()
        argv = [str(self.binary), "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env(),
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        last_err = "no answer yet"
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {rc} before answering /_ec2d/health\n"
                    f"argv: {argv}\n--- log tail ({self.log_path}) ---\n{tail(self.log_path, 60)}"
                )
            try:
                status, body = http_get(f"{self.url}/_ec2d/health", timeout=2)
                if status == 200 or (not require_healthy and status == 503):
                    self._learn_store_id()
                    return self
                last_err = f"HTTP {status}: {body[:200]!r}"
            except (OSError, urllib.error.URLError) as e:
                last_err = repr(e)
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"{self.name} did not answer GET /_ec2d/health within {timeout}s (last: {last_err})\n"
            f"argv: {argv}\n--- log tail ({self.log_path}) ---\n{tail(self.log_path, 60)}"
        )

    def _learn_store_id(self) -> None:
        """The store id from /_ec2d/status: the label on the Docker objects to clean up."""
        try:
            sid = self.status(timeout=5).get("storeId")
        except (AssertionError, OSError, ValueError, urllib.error.URLError):
            return
        if sid:
            self.store_id = sid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            self._log_note("SIGKILL sent")

    def remember_instances(self) -> None:
        """Note every instance this server knows, so its container gets removed."""
        if not self.alive():
            return
        try:
            OWNED_INSTANCES.update(describe_instances(self.client()))
        except Exception as e:  # noqa: BLE001 - best effort, before shutdown
            self._log_note(f"could not list instances before stopping: {e!r}")

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL after timeout. Returns the exit code."""
        if self.proc is None:
            return None
        self.remember_instances()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._log_note(f"did not exit {timeout}s after SIGTERM; SIGKILL")
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._log_note(f"exited with {self.proc.returncode}")
        return self.proc.returncode

    def _log_note(self, msg: str) -> None:
        try:
            with open(self.log_path, "a") as f:
                f.write(f"===== [test harness] {self.name}: {msg} =====\n")
        except OSError:
            pass

    def log_tail(self, lines: int = 80) -> str:
        return tail(self.log_path, lines)

    def client(self, recorder: "HttpRecorder | None" = None):
        return ec2_client(self.url, recorder)

    # -- introspection (GET /_ec2d/*) ------------------------------------------

    def health(self, timeout: float = 10) -> tuple[int, dict]:
        """(HTTP status, JSON body) of GET /_ec2d/health."""
        code, body = http_get(f"{self.url}/_ec2d/health", timeout=timeout)
        try:
            return code, json.loads(body)
        except json.JSONDecodeError:
            return code, {"_raw": body}

    def status(self, timeout: float = 10) -> dict:
        """GET /_ec2d/status as JSON (AssertionError on anything but 200)."""
        code, body = http_get(f"{self.url}/_ec2d/status", timeout=timeout)
        assert code == 200, f"GET /_ec2d/status -> HTTP {code}: {body[:500]}"
        return json.loads(body)

    def instance_status(self, instance_id: str, timeout: float = 10) -> dict | None:
        """GET /_ec2d/status/instances/<id> as JSON; None on 404."""
        code, body = http_get(f"{self.url}/_ec2d/status/instances/{instance_id}", timeout=timeout)
        if code == 404:
            return None
        assert code == 200, f"GET /_ec2d/status/instances/{instance_id} -> HTTP {code}: {body[:500]}"
        return json.loads(body)


def http_get(url: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def http_post_form(url: str, body: str, timeout: float = 10) -> tuple[int, dict, str]:
    req = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")


# --------------------------------------------------------------------------- boto3


class HttpRecorder:
    """Keeps the last few HTTP exchanges of boto3 clients, for failure reports.

    Fed by botocore's history recorder, which sees the raw response before it
    is parsed (so unparseable answers are recorded too). The recorder of the
    running test is HttpRecorder.current (tests run one at a time)."""

    current: HttpRecorder | None = None

    def __init__(self, keep: int = 12):
        self.exchanges: collections.deque = collections.deque(maxlen=keep)

    def activate(self) -> HttpRecorder:
        HttpRecorder.current = self
        return self

    def on_request(self, payload: dict) -> None:
        body = payload.get("body")
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        self.exchanges.append({"request": f"{payload.get('method')} {payload.get('url')}\n{body}", "response": None})

    def on_response(self, payload: dict) -> None:
        if not self.exchanges:
            return
        body = payload.get("body", b"")
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        self.exchanges[-1]["response"] = f"HTTP {payload.get('status_code')}\n{body[:3000]}"

    def report(self, last: int = 6) -> str:
        items = list(self.exchanges)[-last:]
        return "\n\n".join(f">>> {ex['request']}\n<<< {ex['response']}" for ex in items)

    def clear(self) -> None:
        self.exchanges.clear()


class _BotocoreHistory(BaseHistoryHandler):
    def emit(self, event_type, payload, source):
        rec = HttpRecorder.current
        if rec is None:
            return
        if event_type == "HTTP_REQUEST":
            rec.on_request(payload)
        elif event_type == "HTTP_RESPONSE":
            rec.on_response(payload)


_history = get_global_history_recorder()
_history.add_handler(_BotocoreHistory())
_history.enable()


def ec2_client(url: str, recorder: HttpRecorder | None = None):
    c = boto3.client(
        "ec2",
        endpoint_url=url,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60),
        **CREDS,
    )
    if recorder is not None:
        recorder.activate()
    return c


def describe_instances(client, ids: list[str] | None = None, filters: list | None = None) -> dict[str, dict]:
    kw = {}
    if ids:
        kw["InstanceIds"] = list(ids)
    if filters:
        kw["Filters"] = filters
    out = {}
    for page in client.get_paginator("describe_instances").paginate(**kw):
        for res in page.get("Reservations", []):
            for inst in res.get("Instances", []):
                out[inst["InstanceId"]] = inst
    return out


def states(client, ids: list[str]) -> dict[str, str]:
    return {i: inst["State"]["Name"] for i, inst in describe_instances(client, ids).items()}


def assert_state(state: dict, *names: str) -> None:
    """state is an EC2 InstanceState {Code, Name}; Name must be one of names and
    Code (low byte) must match Name."""
    assert state["Name"] in names, f"state {state} not in {names}"
    assert (int(state["Code"]) & 0xFF) == STATE_CODES[state["Name"]], f"state code does not match name: {state}"


def tag_dict(tags: list | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in (tags or [])}


# --------------------------------------------------------------------------- aws / awslocal CLIs


@dataclass
class CliResult:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    json: object = field(default=None)

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nrc={self.rc}\n--- stdout ---\n{self.stdout[-4000:]}\n"
            f"--- stderr ---\n{self.stderr[-4000:]}"
        )

    def ok(self) -> "CliResult":
        assert self.rc == 0, f"CLI command failed:\n{self.describe()}"
        return self

    def error_code(self) -> str | None:
        m = re.search(r"\(([A-Za-z0-9.]+)\) when calling", self.stderr)
        return m.group(1) if m else None


class AwsCli:
    """`aws --endpoint-url URL ec2 ...` or `awslocal ec2 ...` (LOCALSTACK_HOST)."""

    def __init__(self, server: Ec2dServer, kind: str, home: Path):
        assert kind in ("aws", "awslocal")
        self.server = server
        self.kind = kind
        self.exe = script_path(kind)
        self.home = Path(home)
        self.history: collections.deque = collections.deque(maxlen=8)

    def env(self) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k not in ("LOCALSTACK_HOST", "EDGE_PORT", "USE_SSL")
        }
        env.update(
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=str(self.home / "aws-config-none"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.home / "aws-credentials-none"),
            AWS_PAGER="",
            AWS_MAX_ATTEMPTS="1",
            AWS_RETRY_MODE="standard",
            PYTHONWARNINGS="ignore",
            DISABLE_DEPRECATION_NOTICE="1",
        )
        if self.kind == "awslocal":
            # awscli-local (localstack_client.config) builds the endpoint from
            # LOCALSTACK_HOST=<host>:<port> unless AWS_ENDPOINT_URL is set.
            env["LOCALSTACK_HOST"] = f"127.0.0.1:{self.server.port}"
        return env

    def __call__(self, *args: str, timeout: float = 90, service: str = "ec2") -> CliResult:
        if self.kind == "aws":
            argv = [self.exe, "--endpoint-url", self.server.url, "--output", "json", service, *args]
        else:
            argv = [self.exe, service, *args, "--output", "json"]
        p = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=self.env(), stdin=subprocess.DEVNULL
        )
        res = CliResult(argv=argv, rc=p.returncode, stdout=p.stdout, stderr=p.stderr)
        if p.returncode == 0 and p.stdout.strip():
            try:
                res.json = json.loads(p.stdout)
            except json.JSONDecodeError:
                res.json = None
        self.history.append(res)
        return res

    def report(self) -> str:
        return "\n\n".join(r.describe() for r in self.history)


# --------------------------------------------------------------------------- per-test cleanup


class Ec2Cleanup:
    """Remembers instances and images a test made; removes them afterwards
    through the API (terminate / deregister) and then docker, whatever the API did."""

    def __init__(self, client_fn: Callable[[], object]):
        self.client_fn = client_fn
        self.instances: list[str] = []
        self.images: list[str] = []

    def track_instances(self, ids: Iterable[str]) -> None:
        for i in ids:
            OWNED_INSTANCES.add(i)
            if i not in self.instances:
                self.instances.append(i)

    def track_image(self, ami: str) -> None:
        OWNED_AMIS.add(ami)
        if ami not in self.images:
            self.images.append(ami)

    def run(self) -> list[str]:
        problems: list[str] = []
        client = None
        try:
            client = self.client_fn()
        except Exception as e:  # server gone
            problems.append(f"no ec2 client for cleanup: {e!r}")
        if client is not None and self.instances:
            for i in self.instances:
                try:
                    client.terminate_instances(InstanceIds=[i])
                except Exception:
                    pass
            try:
                client.get_waiter("instance_terminated").wait(
                    InstanceIds=self.instances, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
                )
            except Exception:
                pass
        leftovers = [container_name(i) for i in self.instances if container_state(container_name(i)) != "absent"]
        problems += remove_containers(leftovers)
        if client is not None:
            for ami in self.images:
                try:
                    client.deregister_image(ImageId=ami)
                except Exception:
                    pass
        if self.images:
            tags = [t for t in list_ami_tags() if t.rsplit(":", 1)[-1] in self.images]
            problems += remove_tags(tags)
        return problems


def log(msg: str) -> None:
    print(f"[ec2d-tests] {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- store-scoped docker views
# (recovery / drift / outage tests)

STORE_ID_LABEL = "ec2d.store-id"
INSTANCE_ID_LABEL = "ec2d.instance-id"

# Figures tests want printed at the end of the run (pytest_terminal_summary).
FIGURES: list[str] = []


def report_figure(text: str) -> None:
    """Print text at the end of the pytest run (and now, on stderr)."""
    FIGURES.append(text)
    log(text)


def container_label(name_or_id: str, label: str) -> str | None:
    info = container_inspect(name_or_id)
    if info is None:
        return None
    return ((info.get("Config") or {}).get("Labels") or {}).get(label)


def store_containers(store_id: str) -> list[dict]:
    """Every container (any state) labelled ec2d.store-id=<store_id>:
    [{id, name, state, instance_id}] with docker's State ('running', 'paused', 'exited', ...)."""
    assert store_id, "store id unknown"
    fmt = "{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Label \"" + INSTANCE_ID_LABEL + "\"}}"
    p = docker("ps", "-a", "--no-trunc", "--filter", f"label={STORE_ID_LABEL}={store_id}", "--format", fmt)
    out = []
    for line in p.stdout.splitlines():
        if not line.strip():
            continue
        cid, name, state, iid = (line.split("\t") + ["", "", "", ""])[:4]
        out.append({"id": cid, "name": name.lstrip("/"), "state": state, "instance_id": iid})
    return out


def random_instance_id() -> str:
    """A well-formed 17-hex-digit instance id nobody else uses (for hand-made containers)."""
    return "i-" + os.urandom(9).hex()[:17]


# --------------------------------------------------------------------------- docker socket proxy


class DockerSocketProxy:
    """A Unix-socket forwarder to the real Docker socket that a test can take down
    and bring back, to simulate an engine outage for one ec2d (DOCKER_HOST=unix://<path>).

    - up(): listen on `path`; every accepted connection is piped both ways to `target`
      (one thread per direction, so many concurrent requests and long-lived
      event streams work).
    - down(): stop listening (the socket file is removed: connects fail at once) and cut
      every open connection, event streams included.
    - mute_events: forward the response headers of GET /events but drop every event after
      them, so the client's stream stays open but silent (a stream that silently lost
      its events; only the periodic resync can notice drift then).
    """

    EVENTS_RE = re.compile(rb"^GET /(v[0-9.]+/)?events[?\s]")

    def __init__(self, path: str | Path, target: str = "/var/run/docker.sock", mute_events: bool = False):
        self.path = str(path)
        self.target = target
        self.mute_events = mute_events
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._accept_thread: threading.Thread | None = None
        self.accepted = 0
        self.events_connections = 0
        self.dropped_event_bytes = 0

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def is_up(self) -> bool:
        return self._listener is not None

    def up(self) -> DockerSocketProxy:
        with self._lock:
            if self._listener is not None:
                return self
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            lst.bind(self.path)
            lst.listen(256)
            lst.settimeout(0.2)
            self._listener = lst
            t = threading.Thread(target=self._accept_loop, args=(lst,), name=f"proxy-accept {self.path}", daemon=True)
            self._accept_thread = t
            t.start()
        return self

    def down(self) -> DockerSocketProxy:
        with self._lock:
            lst, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if lst is not None:
            try:
                lst.close()
            except OSError:
                pass
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        for c in conns:
            self._kill(c)
        return self

    close = down

    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns) // 2

    @staticmethod
    def _kill(s: socket.socket) -> None:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass

    def _accept_loop(self, lst: socket.socket) -> None:
        while True:
            with self._lock:
                if self._listener is not lst:
                    return
            try:
                client, _ = lst.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.setblocking(True)
            threading.Thread(target=self._serve, args=(lst, client), daemon=True).start()

    def _serve(self, lst: socket.socket, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.target)
        except OSError:
            self._kill(client)
            self._kill(upstream)
            return
        with self._lock:
            if self._listener is not lst:  # went down meanwhile
                self._kill(client)
                self._kill(upstream)
                return
            self._conns.update((client, upstream))
            self.accepted += 1
        state = {"events": False}
        t = threading.Thread(target=self._pump, args=(upstream, client, state, False), daemon=True)
        t.start()
        self._pump(client, upstream, state, True)

    def _pump(self, src: socket.socket, dst: socket.socket, state: dict, from_client: bool) -> None:
        headers_done = False
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client:
                    if not state["events"] and self.EVENTS_RE.match(data):
                        state["events"] = True
                        with self._lock:
                            self.events_connections += 1
                    dst.sendall(data)
                    continue
                if state["events"] and self.mute_events:
                    if headers_done:
                        self.dropped_event_bytes += len(data)
                        continue
                    buf += data
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    dst.sendall(buf[: end + 4])
                    self.dropped_event_bytes += len(buf) - end - 4
                    headers_done = True
                    buf = b""
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            with self._lock:
                self._conns.discard(src)
            try:
                src.close()
            except OSError:
                pass


# --------------------------------------------------------------------------- own-server helpers


def launch_on(srv: Ec2dServer, count: int = 1, wait: bool = True, image_id: str = TEST_AMI_ID, **kw) -> list[str]:
    """RunInstances(count) on srv (tracked for cleanup); waits for running unless wait=False."""
    client = srv.client(getattr(srv, "recorder", None))
    resp = client.run_instances(ImageId=image_id, MinCount=count, MaxCount=count, InstanceType="t3.micro", **kw)
    ids = [i["InstanceId"] for i in resp["Instances"]]
    cleanup = getattr(srv, "cleanup", None)
    if cleanup is not None:
        cleanup.track_instances(ids)
    if wait:
        t0 = time.monotonic()
        client.get_waiter("instance_running").wait(
            InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": max(60, 6 * count)}
        )
        log(f"{srv.name}: {len(ids)} instance(s) running after {time.monotonic() - t0:.1f}s")
    return ids


def learn_store_id(srv: Ec2dServer, instance_id: str) -> str:
    """The ec2d.store-id label of the instance's container (remembered as srv.store_id)."""
    sid = container_label(container_name(instance_id), STORE_ID_LABEL)
    assert sid, f"container of {instance_id} has no {STORE_ID_LABEL} label: {container_inspect(container_name(instance_id))}"
    srv.store_id = sid
    return sid


def wait_instance_status(srv: Ec2dServer, instance_id: str, pred: Callable[[dict], bool], timeout: float, desc: str) -> dict:
    """Poll GET /_ec2d/status/instances/<id> until pred(doc); the doc. The failure names the last doc."""
    last: list = [None]

    def check():
        doc = srv.instance_status(instance_id)
        last[0] = doc
        return doc is not None and pred(doc)

    try:
        wait_until(check, timeout, 0.2, desc)
    except AssertionError:
        raise AssertionError(f"timed out after {timeout}s waiting for {desc}; last status of {instance_id}:\n"
                             f"{json.dumps(last[0], indent=1)[:3000]}") from None
    return last[0]


def wait_resyncs(srv: Ec2dServer, n: int = 1, timeout: float = 60, since_start: bool = False) -> dict:
    """Wait until `n` full resyncs have run and the reconciles they queued have finished;
    return the controller stats of /_ec2d/status at that point. For "nothing happens"
    checks: after this, the controller has had `n` full passes over everything to (wrongly)
    act, however slow the machine, so the caller's assertions mean something.

    What /_ec2d/status offers (src/controller/mod.rs, ControllerStats): `last_resync_at`, set
    when a resync *queues* every key; `reconciles_total`, counting reconciles that finished
    (whatever their outcome); `in_flight`. (`queue_depth` also counts keys requeued minutes
    ahead, so it is never 0 and cannot say "idle".) So a resync is counted when
    `last_resync_at` changes, and the last one is complete when, after it, at least one
    reconcile has finished and none is running (the resync's due keys are all dispatched at
    once, up to the concurrency limit, so in_flight == 0 means they are done). Keys held by
    an error backoff (engine away) run when their hold ends, not at the resync.

    Counts resyncs after the call, or, with since_start=True, since the process started
    (for a server just (re)started: its initial resync, which adopts what it finds, counts).
    Several resyncs between two polls count as one: it can only wait longer, never less."""
    deadline = time.monotonic() + timeout
    if since_start:
        last_at, prev_total = None, 0
    else:
        c = srv.status()["controller"]
        last_at, prev_total = c["last_resync_at"], c["reconciles_total"]
    seen = 0
    total_before = 0  # reconciles_total just before the n-th resync was seen
    while True:
        c = srv.status()["controller"]
        if seen < n:
            if c["last_resync_at"] != last_at:
                seen += 1
                last_at = c["last_resync_at"]
                # The previous poll still showed the old timestamp: nothing of this resync
                # had run then (it sets the timestamp as it queues the keys).
                total_before = prev_total
            prev_total = c["reconciles_total"]
        if seen == n and c["in_flight"] == 0 and c["reconciles_total"] > total_before:
            return c
        if time.monotonic() >= deadline:
            what = f"{seen} of {n} resync(s) seen" if seen < n else f"the reconciles of resync {n} not finished"
            raise AssertionError(f"{srv.name}: {what} within {timeout}s; controller: {c}")
        time.sleep(0.1)


def brief(doc: dict | None) -> dict | None:
    """The interesting fields of an instance status doc, for messages."""
    if doc is None:
        return None
    keys = ("desired", "state", "observedState", "converged", "generation", "observedGeneration", "stateReason", "lastError")
    out = {k: doc.get(k) for k in keys}
    c = doc.get("container")
    out["container"] = {"id": c["id"][:12], "state": c.get("state")} if c else None
    return out
