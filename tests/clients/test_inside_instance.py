"""Inside the instance: the LocalStack user's flow, verbatim through awslocal where possible.

    awslocal ec2 authorize-security-group-ingress --group-id default --protocol tcp --port 8080
    awslocal ec2 describe-security-groups --group-names default
    awslocal ec2 create-key-pair --key-name alice --query KeyMaterial --output text > alice.pem && chmod 400 alice.pem
    awslocal ec2 run-instances --image-id ami-000001 --key-name alice --user-data '#!/bin/sh
        whoami | tee /myname && echo localstack; echo "not printed">/dev/null;'
    # log: Instance i-... will be accessible via SSH at: 127.0.0.1:55705, 172.17.0.4:22
    # log: Instance i-... port mappings (container -> host): {'8080/tcp': 51747, '22/tcp': 55705}
    ssh -i alice.pem -p 55705 root@127.0.0.1 cat /myname      # root
    curl http://127.0.0.1:51747/                               # what the user data serves on 8080

Every test here talks to this module's own ec2d (its own port, data dir and log:
<workdir>/ec2d-inside.log), because the tests change the region's `default` security
group, which every launch without groups lands in: on the shared session server that
would publish their ports on other tests' instances. Each test removes the instances,
key pairs, rules and groups it made.

The SSH tests use the Debian image (ec2d-test/debian-ssh:latest, built by
tests/support/build-test-images.sh debian) as the AMI ami-0deb1a2b3c4d; the web server
and user-data tests use the busybox AMI ami-000001.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import ec2d_harness as h
from ec2d_harness import dexec, wait_file_contains

# The user data of the flow, byte for byte (the second line's indentation included).
USER_DATA = '#!/bin/sh\n    whoami | tee /myname && echo localstack; echo "not printed">/dev/null;'

CLOUD_OUTPUT_LOG = "/var/log/cloud-init-output.log"

SSH_LINE_RE = re.compile(
    r"Instance (?P<id>i-[0-9a-f]+) will be accessible via SSH at: "
    r"(?P<host>\d{1,3}(?:\.\d{1,3}){3}):(?P<port>\d{1,5}), (?P<ip>\d{1,3}(?:\.\d{1,3}){3}):22(?=\s|$)"
)
PORTS_LINE_RE = re.compile(
    r"Instance (?P<id>i-[0-9a-f]+) port mappings \(container -> host\): "
    r"(?P<map>\{(?:'\d{1,5}/(?:tcp|udp)': \d{1,5}(?:, '\d{1,5}/(?:tcp|udp)': \d{1,5})*)?\})(?=\s|$)"
)

# Waiting times, generous for a loaded 2-core machine.
SSH_TIMEOUT = 45.0
HTTP_TIMEOUT = 30.0
LOG_TIMEOUT = 20.0


# --------------------------------------------------------------------------- module server


@pytest.fixture(scope="module")
def srv(busybox_ami, debian_ami, workdir):
    """This module's own ec2d (default settings, quick resync so a rule change would have had
    every chance to reach a running instance), knowing both AMIs."""
    s = h.Ec2dServer(
        h.ec2d_binary(),
        workdir / "data-inside",
        workdir / "ec2d-inside.log",
        name="ec2d[inside]",
        extra_env={
            # Whatever the caller's shell says: these tests are about the defaults.
            "EC2_DOCKER_FLAGS": "",
            "EC2_MOUNT_DOCKER_SOCKET": "1",
            "EC2_DOCKER_INIT": "1",
            "EC2D_RESYNC_SECONDS": "2",
        },
    )
    try:
        s.start()
        err = None
    except RuntimeError as e:
        err = str(e)
    if err:
        pytest.fail(err, pytrace=False)
    client = s.client()
    for ami in (busybox_ami["id"], debian_ami["id"]):
        wait_ami(client, ami)
    yield s
    rc = s.stop()
    if rc not in (0, None):
        print(f"\n[ec2d-tests] {s.name} exited with {rc} after SIGTERM; log: {s.log_path}")


def wait_ami(client, ami: str, timeout: float = 20) -> None:
    def known():
        try:
            imgs = client.describe_images(ImageIds=[ami])["Images"]
        except ClientError:
            return False
        return bool(imgs) and imgs[0].get("State") == "available"

    h.wait_until(known, timeout, 0.5, f"AMI {ami} to be available")


# --------------------------------------------------------------------------- per-test context


class Inside:
    """One test's view of the module server: clients, a temp dir, and what to clean up."""

    def __init__(self, srv: h.Ec2dServer, request, workdir: Path, recorder, tmp: Path):
        self.srv = srv
        self.ec2 = srv.client(recorder)
        self.cli = h.AwsCli(srv, "awslocal", workdir)
        clis = getattr(request.node, "_ec2d_clis", [])
        clis.append(self.cli)
        request.node._ec2d_clis = clis
        self.tmp = tmp
        self.instances = h.Ec2Cleanup(lambda: srv.client())
        self.key_names: list[str] = []
        self.group_ids: list[str] = []
        self.ingress: list[tuple[str, dict]] = []  # (group id or name, IpPermission)

    # -- CLI ---------------------------------------------------------------------------

    def awslocal(self, *args: str) -> h.CliResult:
        """awslocal ec2 ARGS --output json"""
        return self.cli(*args)

    def shell(self, cmdline: str) -> h.CliResult:
        """A command line run by bash in the test's temp dir, with awslocal pointed at this
        server (for the user's commands verbatim: `... --output text > alice.pem && chmod 400 alice.pem`)."""
        env = self.cli.env()
        env["PATH"] = f"{os.path.dirname(self.cli.exe)}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        argv = ["bash", "-c", cmdline]
        p = subprocess.run(
            argv,
            cwd=self.tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        res = h.CliResult(argv=argv, rc=p.returncode, stdout=p.stdout, stderr=p.stderr)
        self.cli.history.append(res)
        return res

    # -- resources -------------------------------------------------------------------

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{secrets.token_hex(4)}"

    def create_key_pem(self, name: str, key_type: str | None) -> Path:
        """The user's command verbatim (plus --key-type for non-RSA keys): the private key
        lands in NAME.pem, mode 400."""
        self.key_names.append(name)
        kt = f" --key-type {key_type}" if key_type else ""
        res = self.shell(
            f"awslocal ec2 create-key-pair --key-name {name}{kt} --query KeyMaterial --output text > {name}.pem "
            f"&& chmod 400 {name}.pem"
        ).ok()
        pem = self.tmp / f"{name}.pem"
        assert pem.exists() and pem.stat().st_size > 0, f"{pem} empty:\n{res.describe()}"
        return pem

    def authorize(self, group: str, permission: dict, *cli_args: str) -> h.CliResult:
        """authorize-security-group-ingress with cli_args; `permission` (boto3 shape) is what
        the teardown revokes."""
        self.ingress.append((group, permission))
        return self.awslocal("authorize-security-group-ingress", *cli_args)

    def create_group(self, name: str, description: str = "ec2d inside-instance test") -> str:
        res = self.awslocal("create-security-group", "--group-name", name, "--description", description).ok()
        gid = res.json["GroupId"]
        self.group_ids.append(gid)
        return gid

    def run(self, *args: str, wait: bool = True) -> str:
        """awslocal ec2 run-instances ARGS (one instance); tracked for cleanup; waits for running."""
        res = self.awslocal("run-instances", *args)
        ids = [i["InstanceId"] for i in (res.json or {}).get("Instances", [])]
        self.instances.track_instances(ids)
        res.ok()
        assert len(ids) == 1, res.json
        if wait:
            self.wait_running(ids[0])
        return ids[0]

    def wait_running(self, iid: str) -> None:
        t0 = time.monotonic()
        self.ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
        h.log(f"{iid} running after {time.monotonic() - t0:.1f}s")

    def instance_ids(self) -> set[str]:
        return set(h.describe_instances(self.ec2))

    def teardown(self) -> list[str]:
        problems = self.instances.run()
        client = self.srv.client() if self.srv.alive() else None
        if client is None:
            return problems
        for group, perm in self.ingress:
            kw = {"GroupId": group} if group.startswith("sg-") else {"GroupName": group}
            try:
                client.revoke_security_group_ingress(IpPermissions=[perm], **kw)
            except ClientError as e:
                if e.response["Error"]["Code"] != "InvalidPermission.NotFound":
                    problems.append(f"revoke {perm} on {group}: {e}")
        for name in self.key_names:
            try:
                client.delete_key_pair(KeyName=name)
            except ClientError as e:
                problems.append(f"delete key pair {name}: {e}")
        for gid in self.group_ids:
            try:
                client.delete_security_group(GroupId=gid)
            except ClientError as e:
                problems.append(f"delete group {gid}: {e}")
        return problems

    # -- what ec2d logs --------------------------------------------------------------

    def access(self, iid: str, timeout: float = LOG_TIMEOUT) -> dict:
        """The two lines ec2d logs when the instance runs, parsed (the last of each):
        {host, port, ip} of the SSH line and {'8080/tcp': host port, ...} of the mapping line."""
        found: dict = {}

        def scan():
            text = Path(self.srv.log_path).read_text(errors="replace")
            ssh = [m for m in SSH_LINE_RE.finditer(text) if m.group("id") == iid]
            ports = [m for m in PORTS_LINE_RE.finditer(text) if m.group("id") == iid]
            if ssh and ports:
                found["ssh"], found["ports"] = ssh[-1], ports[-1]
                return True
            return False

        try:
            h.wait_until(scan, timeout, 0.25, f"the SSH and port-mapping log lines of {iid}")
        except AssertionError:
            lines = [ln for ln in h.tail(self.srv.log_path, 400).splitlines() if iid in ln]
            raise AssertionError(
                f"ec2d did not log both lines for {iid} in the expected format within {timeout}s.\n"
                f"expected: 'Instance {iid} will be accessible via SSH at: 127.0.0.1:<port>, <ip>:22' and "
                f"\"Instance {iid} port mappings (container -> host): {{'22/tcp': <port>, ...}}\"\n"
                f"log lines naming {iid}:\n" + "\n".join(lines[-20:])
            ) from None
        s, p = found["ssh"], found["ports"]
        mapping = ast.literal_eval(p.group("map"))
        return {
            "host": s.group("host"),
            "port": int(s.group("port")),
            "ip": s.group("ip"),
            "ports": mapping,
            "ssh_line": s.group(0),
            "ports_line": p.group(0),
        }


@pytest.fixture
def inside(request, srv, workdir, recorder, tmp_path):
    ctx = Inside(srv, request, workdir, recorder, tmp_path)
    yield ctx
    for p in ctx.teardown():
        print(f"[ec2d-tests] cleanup problem: {p}")


# --------------------------------------------------------------------------- helpers


def need_ssh():
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: apt-get install openssh-client (scripts/test.sh does)", pytrace=False)


def ssh_argv(pem: Path, port: int, *cmd: str) -> list[str]:
    return [
        "ssh", "-F", "/dev/null", "-i", str(pem), "-p", str(port),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
        "root@127.0.0.1", *cmd,
    ]  # fmt: skip


def ssh(pem: Path, port: int, *cmd: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(
        ssh_argv(pem, port, *cmd),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def ssh_until(iid: str, pem: Path, port: int, cmd: str, want: str, timeout: float = SSH_TIMEOUT) -> float:
    """Retry `ssh ... cmd` until it prints `want` (sshd and the user data start in the
    background). Returns the seconds it took; the failure shows the last attempt and what
    the instance logged."""
    t0 = time.monotonic()
    attempts = 0
    last = None
    while True:
        attempts += 1
        try:
            last = ssh(pem, port, cmd)
            if last.returncode == 0 and last.stdout.strip() == want:
                took = time.monotonic() - t0
                h.log(f"ssh -p {port} {cmd!r} -> {want!r} after {took:.1f}s ({attempts} attempts)")
                return took
        except subprocess.TimeoutExpired as e:
            last = e
        if time.monotonic() - t0 > timeout:
            break
        time.sleep(1)
    detail = (
        f"rc={last.returncode}\nstdout={last.stdout!r}\nstderr={last.stderr!r}"
        if isinstance(last, subprocess.CompletedProcess)
        else repr(last)
    )
    inst_log = dexec(iid, "sh", "-c", f"cat {CLOUD_OUTPUT_LOG}; echo ---; ps -ef 2>/dev/null || ps", check=False)
    raise AssertionError(
        f"`{' '.join(ssh_argv(pem, port, cmd))}` did not print {want!r} within {timeout}s ({attempts} attempts); "
        f"last: {detail}\n--- inside {iid}: {CLOUD_OUTPUT_LOG}, processes ---\n{inst_log.stdout}{inst_log.stderr}"
    )


def public_key_of(private_key: Path) -> str:
    """`<type> <base64>` of a private key file (ssh-keygen -y)."""
    p = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(private_key)], capture_output=True, text=True, timeout=30, check=False
    )
    assert p.returncode == 0, f"ssh-keygen -y -f {private_key}: {p.stderr.strip()} (not a usable private key?)"
    return " ".join(p.stdout.split()[:2])


def authorized_keys(iid: str) -> list[str]:
    out = dexec(iid, "cat", "/root/.ssh/authorized_keys").stdout
    return [" ".join(line.split()[:2]) for line in out.splitlines() if line.strip()]


def http_until(url: str, marker: str, timeout: float = HTTP_TIMEOUT) -> str:
    """GET url until it answers 200 with marker in the body; the body."""
    t0 = time.monotonic()
    last = None
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = r.read().decode("utf-8", "replace")
                if r.status == 200 and marker in body:
                    h.log(f"GET {url} -> 200 after {time.monotonic() - t0:.1f}s")
                    return body
                last = f"HTTP {r.status}: {body[:300]!r}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}: {e.read()[:300]!r}"
        except OSError as e:
            last = repr(e)
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"GET {url} did not answer 200 with {marker!r} within {timeout}s; last: {last}")
        time.sleep(0.5)


def docker_host_ports(iid: str) -> dict[str, set[int]]:
    """{'8080/tcp': {host ports}} as the engine publishes them (docker inspect)."""
    info = h.container_inspect(h.container_name(iid))
    assert info is not None, f"no container for {iid}"
    out: dict[str, set[int]] = {}
    for key, bindings in ((info.get("NetworkSettings") or {}).get("Ports") or {}).items():
        for b in bindings or []:
            out.setdefault(key, set()).add(int(b["HostPort"]))
    return out


def status_ports(srv: h.Ec2dServer, iid: str) -> dict[str, int]:
    """{'8080/tcp': host port} from GET /_ec2d/status/instances/<id> (container.ports)."""
    code, body = h.http_get(f"{srv.url}/_ec2d/status/instances/{iid}")
    assert code == 200, f"GET /_ec2d/status/instances/{iid} -> HTTP {code}: {body[:500]}"
    doc = json.loads(body)
    container = doc.get("container") or {}
    return {f"{p['containerPort']}/{p['protocol']}": int(p["hostPort"]) for p in container.get("ports", [])}


def web_user_data(port: int, marker: str) -> str:
    """busybox: write the page, then serve /www on `port` in the background."""
    return (
        "#!/bin/sh\n"
        "mkdir -p /www\n"
        f"echo '<h1>ec2d {marker}</h1>' > /www/index.html\n"
        f"httpd -f -p {port} -h /www &\n"
        f"echo httpd started on {port}\n"
    )


def tcp_permission(port: int) -> dict:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def has_tcp_rule(group: dict, from_port: int, to_port: int) -> bool:
    return any(
        p.get("IpProtocol") == "tcp"
        and p.get("FromPort") == from_port
        and p.get("ToPort") == to_port
        and any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", []))
        for p in group.get("IpPermissions", [])
    )


# --------------------------------------------------------------------------- SSH (Debian AMI)


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_ssh_with_created_key_runs_user_data_as_root(inside, debian_ami, key_type):
    need_ssh()
    name = inside.unique(f"alice-{key_type}")
    # rsa is the default key type: that case is the user's command exactly.
    pem = inside.create_key_pem(name, None if key_type == "rsa" else key_type)
    assert stat.S_IMODE(pem.stat().st_mode) == 0o400, oct(pem.stat().st_mode)
    text = pem.read_text()
    assert text.startswith("-----BEGIN ") and "PRIVATE KEY-----" in text, text[:80]
    derived = public_key_of(pem)
    assert derived.startswith("ssh-rsa " if key_type == "rsa" else "ssh-ed25519 "), derived

    iid = inside.run("--image-id", debian_ami["id"], "--key-name", name, "--user-data", USER_DATA)
    acc = inside.access(iid)
    assert acc["host"] == "127.0.0.1", acc["ssh_line"]
    assert acc["ports"].get("22/tcp") == acc["port"], (acc["ssh_line"], acc["ports_line"])
    # The key pair's public half is what the instance authorizes.
    assert authorized_keys(iid) == [derived]

    ssh_until(iid, pem, acc["port"], "cat /myname", "root")
    # The login is by key: another key is refused.
    other = inside.tmp / "not-authorized"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True, timeout=30)
    denied = ssh(other, acc["port"], "true")
    assert denied.returncode == 255 and "Permission denied" in denied.stderr, (denied.returncode, denied.stderr)


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_ssh_with_imported_key(inside, debian_ami, key_type):
    need_ssh()
    name = inside.unique(f"imported-{key_type}")
    key = inside.tmp / f"id_{key_type}"
    extra = ["-b", "3072"] if key_type == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, *extra, "-N", "", "-C", name, "-f", str(key)], check=True, timeout=60
    )
    inside.key_names.append(name)
    res = inside.awslocal("import-key-pair", "--key-name", name, "--public-key-material", f"fileb://{key}.pub").ok()
    assert res.json["KeyName"] == name, res.json
    assert res.json.get("KeyFingerprint"), res.json
    [kp] = inside.awslocal("describe-key-pairs", "--key-names", name).ok().json["KeyPairs"]
    assert kp["KeyType"] == key_type, kp

    iid = inside.run("--image-id", debian_ami["id"], "--key-name", name, "--user-data", USER_DATA)
    acc = inside.access(iid)
    pub = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    assert authorized_keys(iid) == [pub]
    ssh_until(iid, key, acc["port"], "cat /myname", "root")


# --------------------------------------------------------------------------- web server (busybox AMI)


def _serve_and_fetch(inside, busybox_ami, port: int) -> None:
    marker = secrets.token_hex(6)
    iid = inside.run("--image-id", busybox_ami["id"], "--user-data", web_user_data(port, marker))
    acc = inside.access(iid)
    key = f"{port}/tcp"
    assert key in acc["ports"] and "22/tcp" in acc["ports"], acc["ports_line"]
    host_port = acc["ports"][key]
    # The log, the status endpoint and the engine agree on the mapping.
    assert status_ports(inside.srv, iid) == acc["ports"], (status_ports(inside.srv, iid), acc["ports_line"])
    assert docker_host_ports(iid) == {k: {v} for k, v in acc["ports"].items()}, (
        docker_host_ports(iid),
        acc["ports_line"],
    )
    body = http_until(f"http://127.0.0.1:{host_port}/", marker)
    assert f"<h1>ec2d {marker}</h1>" in body, body
    if shutil.which("curl"):  # and the user's command
        url = f"http://127.0.0.1:{host_port}/"
        p = subprocess.run(
            ["curl", "-sS", "--max-time", "10", url], capture_output=True, text=True, timeout=30, check=False
        )
        assert p.returncode == 0 and f"<h1>ec2d {marker}</h1>" in p.stdout, (p.returncode, p.stdout, p.stderr)


def test_web_server_port_form(inside, busybox_ami):
    # The user's command, verbatim.
    res = inside.authorize(
        "default", tcp_permission(8080), "--group-id", "default", "--protocol", "tcp", "--port", "8080"
    ).ok()
    if res.json is not None:
        assert res.json.get("Return") in (True, None), res.json
    [group] = inside.awslocal("describe-security-groups", "--group-names", "default").ok().json["SecurityGroups"]
    assert group["GroupName"] == "default" and group["GroupId"].startswith("sg-"), group
    assert has_tcp_rule(group, 8080, 8080), group["IpPermissions"]
    _serve_and_fetch(inside, busybox_ami, 8080)


def test_web_server_ip_permissions_form(inside, busybox_ami):
    perm = tcp_permission(8081)
    inside.authorize("default", perm, "--group-name", "default", "--ip-permissions", json.dumps([perm])).ok()
    [group] = inside.awslocal("describe-security-groups", "--group-names", "default").ok().json["SecurityGroups"]
    assert has_tcp_rule(group, 8081, 8081), group["IpPermissions"]
    _serve_and_fetch(inside, busybox_ami, 8081)


# --------------------------------------------------------------------------- user data


def test_user_data_file_output_log_and_attribute(inside, busybox_ami):
    iid = inside.run("--image-id", busybox_ami["id"], "--user-data", USER_DATA)
    log_text = wait_file_contains(iid, CLOUD_OUTPUT_LOG, "localstack")
    lines = log_text.splitlines()
    assert "root" in lines and "localstack" in lines, log_text
    assert "not printed" not in log_text, log_text

    path = f"/var/lib/cloud/instances/{iid}/user-data.txt"
    assert dexec(iid, "cat", path).stdout == USER_DATA
    assert dexec(iid, "cat", "/myname").stdout == "root\n"

    res = inside.awslocal("describe-instance-attribute", "--instance-id", iid, "--attribute", "userData").ok()
    assert res.json["InstanceId"] == iid, res.json
    assert base64.b64decode(res.json["UserData"]["Value"]).decode() == USER_DATA, res.json
    # boto3 shows the same (base64, as EC2 does)
    attr = inside.ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
    assert base64.b64decode(attr["UserData"]["Value"]).decode() == USER_DATA, attr


def _post(srv: h.Ec2dServer, params: dict) -> tuple[int, str]:
    status, _headers, body = h.http_post_form(srv.url + "/", urllib.parse.urlencode(params))
    return status, body


def test_user_data_raw_text_over_http_is_tolerated(inside, busybox_ami):
    marker = secrets.token_hex(6)
    raw = f"#!/bin/sh\necho raw-{marker} | tee /raw-marker\n"
    status, body = _post(
        inside.srv,
        {
            "Action": "RunInstances",
            "Version": "2016-11-15",
            "ImageId": busybox_ami["id"],
            "MinCount": "1",
            "MaxCount": "1",
            "UserData": raw,  # not base64: some Terraform versions send the script itself
        },
    )
    ids = re.findall(r"<instanceId>(i-[0-9a-f]+)</instanceId>", body)
    inside.instances.track_instances(ids)
    assert status == 200, (status, body[:2000])
    ET.fromstring(body)  # well-formed
    [iid] = ids
    inside.wait_running(iid)
    assert dexec(iid, "cat", f"/var/lib/cloud/instances/{iid}/user-data.txt").stdout == raw
    wait_file_contains(iid, CLOUD_OUTPUT_LOG, f"raw-{marker}")
    attr = inside.ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
    assert base64.b64decode(attr["UserData"]["Value"]).decode() == raw, attr


def test_user_data_over_16k_is_refused(inside, busybox_ami):
    before = inside.instance_ids()
    limit = 16384
    # exactly the limit is accepted (DryRun: nothing launched)
    with pytest.raises(ClientError) as ok:
        inside.ec2.run_instances(ImageId=busybox_ami["id"], MinCount=1, MaxCount=1, UserData="a" * limit, DryRun=True)
    assert ok.value.response["Error"]["Code"] == "DryRunOperation", ok.value.response
    # one byte more is refused, through boto3 (base64 on the wire) ...
    with pytest.raises(ClientError) as big:
        inside.ec2.run_instances(ImageId=busybox_ami["id"], MinCount=1, MaxCount=1, UserData="a" * (limit + 1))
    assert big.value.response["Error"]["Code"] == "InvalidParameterValue", big.value.response
    # ... and as raw text over HTTP
    status, body = _post(
        inside.srv,
        {
            "Action": "RunInstances",
            "Version": "2016-11-15",
            "ImageId": busybox_ami["id"],
            "MinCount": "1",
            "MaxCount": "1",
            "UserData": "#!/bin/sh\n" + "#" * limit,
        },
    )
    inside.instances.track_instances(re.findall(r"<instanceId>(i-[0-9a-f]+)</instanceId>", body))
    assert status == 400 and "<Code>InvalidParameterValue</Code>" in body, (status, body[:1000])
    assert inside.instance_ids() == before, "a refused launch left instances behind"


# --------------------------------------------------------------------------- ports follow the groups at launch only


def test_rule_added_after_launch_applies_to_next_instance_only(inside, busybox_ami):
    first = inside.run("--image-id", busybox_ami["id"])
    acc1 = inside.access(first)
    container1 = h.container_inspect(h.container_name(first))["Id"]
    docker1, status1 = docker_host_ports(first), status_ports(inside.srv, first)
    assert "8090/tcp" not in acc1["ports"], acc1["ports_line"]

    perm = tcp_permission(8090)
    inside.authorize("default", perm, "--group-id", "default", "--protocol", "tcp", "--port", "8090").ok()
    # Several resyncs (EC2D_RESYNC_SECONDS=2 on this server) pass: the running instance keeps
    # what it was launched with, and is not re-created to get the new port.
    h.wait_resyncs(inside.srv, 3)
    assert h.container_inspect(h.container_name(first))["Id"] == container1, "the instance's container was replaced"
    assert docker_host_ports(first) == docker1
    assert status_ports(inside.srv, first) == status1
    assert h.states(inside.ec2, [first]) == {first: "running"}

    second = inside.run("--image-id", busybox_ami["id"])
    acc2 = inside.access(second)
    assert "8090/tcp" in acc2["ports"] and "22/tcp" in acc2["ports"], acc2["ports_line"]
    assert docker_host_ports(second).get("8090/tcp") == {acc2["ports"]["8090/tcp"]}, docker_host_ports(second)


def test_more_than_32_ports_refused_nothing_launched(inside, busybox_ami):
    gid = inside.create_group(inside.unique("ec2d-many-ports"))
    # 40 ports (+ 22/tcp): refused
    inside.authorize(
        gid,
        {"IpProtocol": "tcp", "FromPort": 9000, "ToPort": 9039, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        "--group-id", gid, "--protocol", "tcp", "--port", "9000-9039",
    ).ok()  # fmt: skip
    before = inside.instance_ids()
    res = inside.awslocal("run-instances", "--image-id", busybox_ami["id"], "--security-group-ids", gid)
    inside.instances.track_instances(i["InstanceId"] for i in (res.json or {}).get("Instances", []))
    assert res.rc != 0, f"a launch publishing 41 ports was accepted:\n{res.describe()}"
    assert res.error_code() == "InvalidParameterValue", res.describe()
    assert inside.instance_ids() == before, "a refused launch left instances behind"

    # The boundary: 31 ports + 22/tcp = 32 passes (DryRun), 32 + 22/tcp = 33 does not.
    gid31 = inside.create_group(inside.unique("ec2d-31-ports"))
    inside.authorize(gid31, {"IpProtocol": "tcp", "FromPort": 9100, "ToPort": 9130, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
                     "--group-id", gid31, "--protocol", "tcp", "--port", "9100-9130").ok()  # fmt: skip
    with pytest.raises(ClientError) as dry:
        inside.ec2.run_instances(ImageId=busybox_ami["id"], MinCount=1, MaxCount=1, SecurityGroupIds=[gid31], DryRun=True)
    assert dry.value.response["Error"]["Code"] == "DryRunOperation", dry.value.response
    gid32 = inside.create_group(inside.unique("ec2d-32-ports"))
    inside.authorize(gid32, {"IpProtocol": "tcp", "FromPort": 9200, "ToPort": 9231, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
                     "--group-id", gid32, "--protocol", "tcp", "--port", "9200-9231").ok()  # fmt: skip
    with pytest.raises(ClientError) as over:
        inside.ec2.run_instances(ImageId=busybox_ami["id"], MinCount=1, MaxCount=1, SecurityGroupIds=[gid32], DryRun=True)
    assert over.value.response["Error"]["Code"] == "InvalidParameterValue", over.value.response
    assert inside.instance_ids() == before


# --------------------------------------------------------------------------- addresses


def test_describe_instances_shows_real_addresses_and_placement(inside, busybox_ami):
    key = inside.unique("addr")
    inside.key_names.append(key)
    inside.ec2.create_key_pair(KeyName=key, KeyType="ed25519")
    iid = inside.run("--image-id", busybox_ami["id"], "--key-name", key)
    acc = inside.access(iid)

    info = h.container_inspect(h.container_name(iid))
    nets = (info.get("NetworkSettings") or {}).get("Networks") or {}
    real_ips = {n.get("IPAddress") for n in nets.values() if n.get("IPAddress")}
    assert real_ips, f"container has no IP address: {nets}"

    res = inside.awslocal("describe-instances", "--instance-ids", iid).ok()
    [reservation] = res.json["Reservations"]
    [inst] = reservation["Instances"]
    ip = inst.get("PrivateIpAddress")
    assert ip in real_ips, (ip, real_ips)
    assert acc["ip"] == ip, acc["ssh_line"]
    assert inst.get("PrivateDnsName") == "ip-{}.ec2.internal".format(ip.replace(".", "-")), inst.get("PrivateDnsName")
    assert inst.get("KeyName") == key, inst
    assert inst.get("VpcId", "").startswith("vpc-"), inst
    assert inst.get("SubnetId", "").startswith("subnet-"), inst
    zone = inst.get("Placement", {}).get("AvailabilityZone", "")
    assert zone.startswith(h.REGION) and len(zone) == len(h.REGION) + 1, inst.get("Placement")

    [default] = inside.ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    assert inst.get("SecurityGroups") == [{"GroupName": "default", "GroupId": default["GroupId"]}], inst.get(
        "SecurityGroups"
    )
    assert default["VpcId"] == inst["VpcId"], (default, inst["VpcId"])
    [subnet] = inside.ec2.describe_subnets(SubnetIds=[inst["SubnetId"]])["Subnets"]
    assert subnet["VpcId"] == inst["VpcId"] and subnet["AvailabilityZone"] == zone, subnet
    [eni] = inst.get("NetworkInterfaces") or [None]
    assert eni and eni.get("PrivateIpAddress") == ip and eni.get("SubnetId") == inst["SubnetId"], eni


def test_ssh_answers_again_after_a_reboot(inside, debian_ami):
    """RebootInstances restarts the container: the boot script starts sshd again, on the
    new host port that ec2d reports (Docker re-publishes a restarted container's ports)."""
    need_ssh()
    name = inside.unique("reboot")
    pem = inside.create_key_pem(name, "ed25519")
    iid = inside.run("--image-id", debian_ami["id"], "--key-name", name, "--user-data", USER_DATA)
    acc = inside.access(iid)
    ssh_until(iid, pem, acc["port"], "cat /myname", "root")
    before = h.container_inspect(h.container_name(iid))

    inside.ec2.reboot_instances(InstanceIds=[iid])

    def restarted():
        info = h.container_inspect(h.container_name(iid))
        return info if info["State"]["Running"] and info["State"]["StartedAt"] != before["State"]["StartedAt"] else None

    after = h.wait_until(restarted, timeout=30, interval=0.2, desc="the container's restart")
    port = int(after["NetworkSettings"]["Ports"]["22/tcp"][0]["HostPort"])
    h.wait_until(
        lambda: status_ports(inside.srv, iid).get("22/tcp") == port,
        timeout=10,
        desc="ec2d's status to show the new SSH port",
    )
    took = ssh_until(iid, pem, port, "cat /myname", "root")
    h.report_figure(f"ssh after reboot: answered {took:.1f}s after the restart (port {acc['port']} -> {port})")
