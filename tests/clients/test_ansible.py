"""Ansible's amazon.aws collection against ec2d in Docker mode.

Each test writes a playbook (localhost, connection local) into tmp_path and runs
`ansible-playbook` against the session's ec2d; the playbooks `register` and
`assert` what the modules answer, and the tests check the same things again from
outside (boto3, and `docker inspect` of the instances' containers), so each can
fail on either side. Only 127.0.0.1 is contacted: every module gets ec2d's URL,
the region and static keys through `module_defaults` (group amazon.aws.aws).

Covered: ec2_key (generated, imported, deleted), ec2_key_info,
ec2_security_group (rules, idempotent rerun, update, delete),
ec2_security_group_info, ec2_instance (wait, exact_count by Name tag,
idempotent rerun, stopped, started, restarted, absent; options compared and
changed in place), ec2_instance_info,
ec2_tag, ec2_tag_info, ec2_ami (from an instance, wait, launch permissions at
create and update, absent), ec2_ami_info, ec2_eip (allocated and associated with
an instance, idempotent rerun, disassociated and released),
and the aws_ec2 inventory plugin.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import ec2d_harness as h

# One playbook's wall time cap; a normal one takes seconds.
PLAYBOOK_TIMEOUT = 240

# The states ec2_instance itself counts as an existing instance.
LIVE_STATES = ["pending", "running", "stopping", "stopped"]

# ec2_instance and ec2_ami poll their botocore waiters every 15 s (hard-coded), and
# the first poll always comes right after the request, while ec2d still shows the
# transitional state EC2 shows (pending, stopping): every wait would cost 15 s.
# This sitecustomize, on the PYTHONPATH of ansible and of the modules it runs,
# polls every second instead, keeping each wait's total time (and so its timeout).
WAITER_HOOK = """\
import botocore.waiter

_wait = botocore.waiter.Waiter.wait


def _wait_fast(self, **kwargs):
    config = dict(kwargs.pop("WaiterConfig", None) or {})
    delay = config.get("Delay", self.config.delay)
    attempts = config.get("MaxAttempts", self.config.max_attempts)
    if delay > 1:
        config["MaxAttempts"] = attempts * delay
        config["Delay"] = 1
    return _wait(self, WaiterConfig=config, **kwargs)


botocore.waiter.Waiter.wait = _wait_fast
"""


def ansible_playbook_path() -> str:
    """ansible-playbook installed for this interpreter (scripts/test.sh pip-installs `ansible`)."""
    cand = Path(sysconfig.get_path("scripts")) / "ansible-playbook"
    if cand.exists():
        return str(cand)
    found = shutil.which("ansible-playbook")
    if not found:
        pytest.fail("ansible-playbook not found: pip install ansible (scripts/test.sh does)", pytrace=False)
    return found


@dataclass
class PlaybookRun:
    book: Path
    rc: int
    stdout: str
    stderr: str
    took: float
    # {task name: the task's result on localhost}, from the json callback
    results: dict
    # {task name: seconds it took}
    durations: dict

    def summary(self) -> str:
        """Each task with its outcome, then the whole result of every failed task."""
        lines = [f"ansible-playbook {self.book} rc={self.rc} in {self.took:.1f}s"]
        failed = []
        for name, res in self.results.items():
            flag = "FAILED" if res.get("failed") else ("changed" if res.get("changed") else "ok")
            if res.get("skipped"):
                flag = "skipped"
            msg = res.get("msg") or ""
            took = self.durations.get(name)
            took = f" {took:.1f}s" if took is not None else ""
            lines.append(f"  [{flag}{took}] {name}" + (f": {str(msg)[:300]}" if flag == "FAILED" else ""))
            if res.get("failed"):
                failed.append((name, res))
        if failed:
            # what the modules answered before, for an assert that failed on it
            for name, res in self.results.items():
                if res.get("failed") or res.get("action") == "ansible.builtin.assert":
                    continue
                lines.append(f"--- task {name!r} ---")
                lines.append(json.dumps(_brief(res), default=str)[:2500])
        for name, res in failed:
            lines.append(f"--- failed task {name!r} ---")
            lines.append(json.dumps(_brief(res), indent=1, default=str)[:6000])
        if not self.results:
            lines.append("--- stdout ---")
            lines.append(self.stdout[-6000:])
        if self.stderr.strip():
            lines.append("--- stderr ---")
            lines.append(self.stderr[-3000:])
        return "\n".join(lines)

    def warnings(self) -> list[str]:
        return [f"{name}: {w}" for name, res in self.results.items() for w in res.get("warnings") or []]

    def ok(self) -> "PlaybookRun":
        """Every task succeeded, and none warned: ec2_instance warns, and does not fail,
        when a waiter gives up (an instance that never reached the state asked for)."""
        assert self.rc == 0, self.summary()
        assert not self.warnings(), "\n".join(["modules warned:", *self.warnings(), self.summary()])
        return self

    def __getitem__(self, task: str) -> dict:
        assert task in self.results, f"no task {task!r} ran:\n{self.summary()}"
        return self.results[task]


class Ansible:
    """Writes and runs playbooks against one ec2d endpoint."""

    def __init__(self, endpoint: str, tmp: Path):
        self.endpoint = endpoint
        self.tmp = tmp
        self.home = tmp / "ansible-home"
        self.home.mkdir(exist_ok=True)
        self.hosts_file = tmp / "inventory.ini"
        self.hosts_file.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        self.config = tmp / "ansible.cfg"
        self.config.write_text("[defaults]\n")
        self.hooks = tmp / "pyhooks"
        self.hooks.mkdir(exist_ok=True)
        (self.hooks / "sitecustomize.py").write_text(WAITER_HOOK)
        self.runs = 0

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "AWS_", "BOTO"))}
        env.update(
            {
                "ANSIBLE_HOME": str(self.home),
                "ANSIBLE_LOCAL_TEMP": str(self.home / "tmp"),
                "ANSIBLE_RETRY_FILES_ENABLED": "False",
                "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
                "ANSIBLE_HOST_KEY_CHECKING": "False",
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                "ANSIBLE_DEPRECATION_WARNINGS": "False",
                "ANSIBLE_LOCALHOST_WARNING": "False",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
                "ANSIBLE_GATHERING": "explicit",
                # an empty ansible.cfg of our own: none of the user's or the system's
                "ANSIBLE_CONFIG": str(self.config),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(self.hooks), os.environ.get("PYTHONPATH")])),
                # botocore: static keys, never the instance metadata service
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "ec2d-ansible-secret",
                "AWS_REGION": h.REGION,
                "AWS_DEFAULT_REGION": h.REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        return env

    def run(self, tasks: str, extra_vars: dict | None = None, name: str = "play") -> PlaybookRun:
        """Run the tasks (YAML, as under `tasks:`) in a play on localhost."""
        self.runs += 1
        stem = f"{self.runs:02d}-{name}"
        play = textwrap.dedent(
            """\
            - name: {name}
              hosts: localhost
              connection: local
              gather_facts: false
              module_defaults:
                group/amazon.aws.aws:
                  endpoint_url: "{{{{ ec2d_url }}}}"
                  region: "{{{{ ec2d_region }}}}"
                  access_key: test
                  # not "test": ansible masks a no_log value wherever it appears in output
                  secret_key: ec2d-ansible-secret
              tasks:
            """
        ).format(name=name)
        play += textwrap.indent(textwrap.dedent(tasks).strip("\n"), "    ") + "\n"
        book = self.tmp / f"{stem}.yml"
        book.write_text(play)
        vars_file = self.tmp / f"{stem}-vars.json"
        vars_file.write_text(json.dumps({"ec2d_url": self.endpoint, "ec2d_region": h.REGION, **(extra_vars or {})}))
        argv = [ansible_playbook_path(), "-i", str(self.hosts_file), "-e", f"@{vars_file}", str(book)]
        t0 = time.monotonic()
        p = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=self.tmp,
            timeout=PLAYBOOK_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        took = time.monotonic() - t0
        results, durations = _task_results(p.stdout)
        slowest = sorted(durations.items(), key=lambda kv: -kv[1])[:2]
        h.log(
            f"ansible-playbook {book.name}: rc={p.returncode} in {took:.1f}s; slowest: "
            + ", ".join(f"{n!r} {d:.1f}s" for n, d in slowest)
        )
        return PlaybookRun(book, p.returncode, p.stdout, p.stderr, took, results, durations)

    def inventory(self, config: dict) -> dict:
        """`ansible-inventory --list` of the amazon.aws.aws_ec2 inventory plugin with `config`
        (pointed at ec2d, in the test region)."""
        self.runs += 1
        source = self.tmp / f"{self.runs:02d}-inventory.aws_ec2.yml"
        source.write_text(
            json.dumps(
                {
                    "plugin": "amazon.aws.aws_ec2",
                    "endpoint_url": self.endpoint,
                    "access_key": "test",
                    "secret_key": "ec2d-ansible-secret",
                    "regions": [h.REGION],
                    **config,
                }
            )
        )
        tool = str(Path(ansible_playbook_path()).with_name("ansible-inventory"))
        t0 = time.monotonic()
        p = subprocess.run(
            [tool, "-i", str(source), "--list"],
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=self.tmp,
            timeout=PLAYBOOK_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        h.log(f"ansible-inventory {source.name}: rc={p.returncode} in {time.monotonic() - t0:.1f}s")
        # a source that fails to parse is only a warning, and the inventory is then empty
        assert p.returncode == 0 and "Failed to parse" not in p.stderr, f"rc={p.returncode}\n{p.stderr}"
        return _unwrap(json.loads(p.stdout))


def _unwrap(value):
    """ansible-inventory's JSON without ansible-core's `{"__ansible_unsafe": v}` wrappers."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _brief(res: dict) -> dict:
    """A task's result without ansible's bookkeeping keys."""
    return {k: v for k, v in res.items() if not k.startswith("_ansible") and k not in ("invocation", "action")}


def _task_results(stdout: str) -> tuple[dict, dict]:
    """({task name: localhost's result}, {task name: seconds}) from the
    ansible.posix.json callback's document."""
    start = stdout.find("{")
    if start < 0:
        return {}, {}
    try:
        doc = json.loads(stdout[start:])
    except json.JSONDecodeError:
        return {}, {}
    results, durations = {}, {}
    for play in doc.get("plays", []):
        for t in play.get("tasks", []):
            res = (t.get("hosts") or {}).get("localhost")
            if res is None:
                continue
            name = t["task"]["name"]
            results[name] = res
            span = t["task"].get("duration") or {}
            try:
                durations[name] = (_when(span["end"]) - _when(span["start"])).total_seconds()
            except (KeyError, ValueError):
                pass
    return results, durations


def _when(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.rstrip("Z"))


@pytest.fixture
def ansible(endpoint_url, tmp_path) -> Ansible:
    return Ansible(endpoint_url, tmp_path)


@pytest.fixture
def prefix() -> str:
    """A name prefix of this test run: ec2d's session is shared with other tests."""
    return f"ans-{secrets.token_hex(3)}"


def ssh_public_key(tmp: Path) -> str:
    key = tmp / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ansible-test", "-f", str(key)],
                   check=True, timeout=30, capture_output=True)
    return (tmp / "id_ed25519.pub").read_text().strip()


# --------------------------------------------------------------------------- ec2_key


def test_ansible_ec2_key(ansible, ec2, prefix, tmp_path):
    public_key = ssh_public_key(tmp_path)
    run = ansible.run(
        """
        - name: create a key pair EC2 generates
          amazon.aws.ec2_key:
            name: "{{ prefix }}-gen"
          register: gen
        - name: check the generated key
          ansible.builtin.assert:
            that:
              - gen is changed
              - gen.key.name == prefix + '-gen'
              - gen.key.private_key is search('BEGIN RSA PRIVATE KEY')
              - gen.key.fingerprint | length > 0
              - gen.key.id is match('key-[0-9a-f]+$')
        - name: create it again
          amazon.aws.ec2_key:
            name: "{{ prefix }}-gen"
          register: gen_again
        - name: check the rerun changed nothing
          ansible.builtin.assert:
            that:
              - gen_again is not changed
              - gen_again.key.fingerprint == gen.key.fingerprint
              - gen_again.key.private_key is not defined
        - name: import a public key
          amazon.aws.ec2_key:
            name: "{{ prefix }}-imported"
            key_material: "{{ public_key }}"
            tags:
              team: ansible
          register: imported
        - name: import the same public key again
          amazon.aws.ec2_key:
            name: "{{ prefix }}-imported"
            key_material: "{{ public_key }}"
            tags:
              team: ansible
          register: imported_again
        - name: check the imports
          ansible.builtin.assert:
            that:
              - imported is changed
              - imported.key.tags.team == 'ansible'
              - imported_again is not changed
              - imported_again.key.fingerprint == imported.key.fingerprint
              - imported_again.key.id == imported.key.id
        - name: list the key pairs
          amazon.aws.ec2_key_info:
            names:
              - "{{ prefix }}-gen"
              - "{{ prefix }}-imported"
          register: info
        - name: check the listing
          ansible.builtin.assert:
            that:
              - info.keypairs | map(attribute='key_name') | sort | list == [prefix + '-gen', prefix + '-imported']
        """,
        {"prefix": prefix, "public_key": public_key},
        name="keys",
    ).ok()

    # what ec2d stored is what the modules reported
    pairs = {k["KeyName"]: k for k in ec2.describe_key_pairs(KeyNames=[f"{prefix}-gen", f"{prefix}-imported"])["KeyPairs"]}
    assert pairs[f"{prefix}-gen"]["KeyFingerprint"] == run["create a key pair EC2 generates"]["key"]["fingerprint"]
    imported = pairs[f"{prefix}-imported"]
    assert imported["KeyFingerprint"] == run["import a public key"]["key"]["fingerprint"], imported
    assert imported["KeyType"] == "ed25519", imported
    assert h.tag_dict(imported.get("Tags")) == {"team": "ansible"}, imported
    # the private key the module returned opens the generated pair's public key
    pem = tmp_path / "gen.pem"
    pem.write_text(run["create a key pair EC2 generates"]["key"]["private_key"])
    pem.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(pem)], capture_output=True, text=True, timeout=30)
    assert derived.returncode == 0 and derived.stdout.startswith("ssh-rsa "), derived.stderr

    ansible.run(
        """
        - name: delete both key pairs
          amazon.aws.ec2_key:
            name: "{{ item }}"
            state: absent
          loop: ["{{ prefix }}-gen", "{{ prefix }}-imported"]
          register: deleted
        - name: delete them again
          amazon.aws.ec2_key:
            name: "{{ item }}"
            state: absent
          loop: ["{{ prefix }}-gen", "{{ prefix }}-imported"]
          register: deleted_again
        - name: check the deletions
          ansible.builtin.assert:
            that:
              - deleted.results | map(attribute='changed') | list == [true, true]
              - deleted_again.results | map(attribute='changed') | list == [false, false]
        """,
        {"prefix": prefix},
        name="keys-delete",
    ).ok()
    left = ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [f"{prefix}-*"]}])["KeyPairs"]
    assert left == [], left


# --------------------------------------------------------------------------- ec2_security_group


def _perms(group: dict) -> set[tuple]:
    """(protocol, from, to, cidr) of every IPv4 ingress rule of a DescribeSecurityGroups item."""
    out = set()
    for p in group.get("IpPermissions", []):
        for r in p.get("IpRanges", []):
            out.add((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["CidrIp"]))
    return out


def test_ansible_ec2_security_group(ansible, ec2, prefix):
    group = f"{prefix}-web"
    tasks_create = """
        - name: create the group
          amazon.aws.ec2_security_group:
            name: "{{ group }}"
            description: web servers of {{ prefix }}
            rules:
              - proto: tcp
                ports: [22]
                cidr_ip: 10.0.0.0/8
                rule_desc: ssh from inside
              - proto: tcp
                from_port: 8000
                to_port: 8010
                cidr_ip: 0.0.0.0/0
            tags:
              team: ansible
          register: created
        - name: create it again
          amazon.aws.ec2_security_group:
            name: "{{ group }}"
            description: web servers of {{ prefix }}
            rules:
              - proto: tcp
                ports: [22]
                cidr_ip: 10.0.0.0/8
                rule_desc: ssh from inside
              - proto: tcp
                from_port: 8000
                to_port: 8010
                cidr_ip: 0.0.0.0/0
            tags:
              team: ansible
          register: again
        - name: check create and rerun
          ansible.builtin.assert:
            that:
              - created is changed
              - created.group_id is match('sg-[0-9a-f]+$')
              - created.group_name == group
              - created.vpc_id is match('vpc-')
              - created.tags.team == 'ansible'
              - created.ip_permissions | length == 2
              - again is not changed
              - again.group_id == created.group_id
        - name: find it
          amazon.aws.ec2_security_group_info:
            filters:
              group-name: "{{ group }}"
          register: found
        - name: check the listing
          ansible.builtin.assert:
            that:
              - found.security_groups | map(attribute='group_id') | list == [created.group_id]
    """
    run = ansible.run(tasks_create, {"prefix": prefix, "group": group}, name="sg-create").ok()
    gid = run["create the group"]["group_id"]
    sg = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    assert sg["GroupName"] == group and sg["Description"] == f"web servers of {prefix}", sg
    assert _perms(sg) == {("tcp", 22, 22, "10.0.0.0/8"), ("tcp", 8000, 8010, "0.0.0.0/0")}, sg["IpPermissions"]
    ssh = next(p for p in sg["IpPermissions"] if p["FromPort"] == 22)
    assert ssh["IpRanges"][0].get("Description") == "ssh from inside", ssh
    assert h.tag_dict(sg.get("Tags")) == {"team": "ansible"}, sg

    run = ansible.run(
        """
        - name: replace the rules and the tags
          amazon.aws.ec2_security_group:
            name: "{{ group }}"
            description: web servers of {{ prefix }}
            rules:
              - proto: tcp
                ports: [443]
                cidr_ip: 0.0.0.0/0
              - proto: udp
                ports: [53]
                cidr_ip: 192.168.0.0/16
            tags:
              team: platform
          register: updated
        - name: replace them again
          amazon.aws.ec2_security_group:
            name: "{{ group }}"
            description: web servers of {{ prefix }}
            rules:
              - proto: tcp
                ports: [443]
                cidr_ip: 0.0.0.0/0
              - proto: udp
                ports: [53]
                cidr_ip: 192.168.0.0/16
            tags:
              team: platform
          register: updated_again
        - name: check the update
          ansible.builtin.assert:
            that:
              - updated is changed
              - updated_again is not changed
              - "updated.tags == {'team': 'platform'}"
        """,
        {"prefix": prefix, "group": group},
        name="sg-update",
    ).ok()
    sg = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    assert _perms(sg) == {("tcp", 443, 443, "0.0.0.0/0"), ("udp", 53, 53, "192.168.0.0/16")}, sg["IpPermissions"]
    assert h.tag_dict(sg.get("Tags")) == {"team": "platform"}, sg

    ansible.run(
        """
        - name: delete the group
          amazon.aws.ec2_security_group:
            name: "{{ group }}"
            state: absent
          register: deleted
        - name: delete it again
          amazon.aws.ec2_security_group:
            name: "{{ group }}"
            state: absent
          register: deleted_again
        - name: check the deletion
          ansible.builtin.assert:
            that:
              - deleted is changed
              - deleted_again is not changed
        """,
        {"group": group},
        name="sg-delete",
    ).ok()
    left = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [group]}])["SecurityGroups"]
    assert left == [], left


# --------------------------------------------------------------------------- ec2_instance, ec2_instance_info, ec2_tag


def _live(ec2, name: str) -> dict[str, dict]:
    return h.describe_instances(
        ec2, filters=[{"Name": "tag:Name", "Values": [name]}, {"Name": "instance-state-name", "Values": LIVE_STATES}]
    )


def _started_at(iid: str) -> str:
    info = h.container_inspect(h.container_name(iid))
    assert info is not None, f"no container for {iid}"
    return info["State"]["StartedAt"]


def test_ansible_ec2_instance_lifecycle(ansible, ec2, cleanup, prefix, busybox_ami):
    name = f"{prefix}-fleet"
    launch = """
        - name: "{{ title }}"
          amazon.aws.ec2_instance:
            name: "{{ fleet }}"
            image_id: "{{ ami }}"
            instance_type: t3.micro
            exact_count: 2
            filters:
              "tag:Name": "{{ fleet }}"
              instance-state-name: {states}
            tags:
              team: ansible
            # `present` waits only until the instances exist; `running` until they run
            state: running
            wait: true
            wait_timeout: 90
          register: "{{ reg }}"
    """.replace("{states}", json.dumps(LIVE_STATES))
    tasks = (
        launch.replace('"{{ title }}"', "launch two")
        .replace('"{{ reg }}"', "launched")
        + launch.replace('"{{ title }}"', "launch two again").replace('"{{ reg }}"', "relaunched")
        + """
        - name: check the launch and the rerun
          ansible.builtin.assert:
            that:
              - launched is changed
              - launched.instance_ids | length == 2
              - launched.instances | map(attribute='state.name') | unique | list == ['running']
              - launched.instances | map(attribute='image_id') | unique | list == [ami]
              - launched.instances | map(attribute='tags.Name') | unique | list == [fleet]
              - relaunched is not changed
              - relaunched.instance_ids | sort == launched.instance_ids | sort
        - name: find them by tag and state
          amazon.aws.ec2_instance_info:
            filters:
              "tag:Name": "{{ fleet }}"
              instance-state-name: running
          register: found
        - name: find none stopped
          amazon.aws.ec2_instance_info:
            filters:
              "tag:Name": "{{ fleet }}"
              instance-state-name: stopped
          register: none_stopped
        - name: check the listings
          ansible.builtin.assert:
            that:
              - found.instances | map(attribute='instance_id') | sort == launched.instance_ids | sort
              - found.instances | map(attribute='tags.team') | unique | list == ['ansible']
              - found.instances | map(attribute='instance_type') | unique | list == ['t3.micro']
              - none_stopped.instances == []
        """
    )
    run = ansible.run(tasks, {"fleet": name, "ami": busybox_ami["id"]}, name="instances-launch")
    ids = sorted((run.results.get("launch two") or {}).get("instance_ids") or [])
    cleanup.track_instances(ids)
    if not ids:
        cleanup.track_instances(_live(ec2, name))
    run.ok()
    assert len(ids) == 2, ids
    # the same two, running, from outside: EC2 and Docker
    assert sorted(_live(ec2, name)) == ids
    assert h.states(ec2, ids) == {i: "running" for i in ids}
    for i in ids:
        info = h.wait_container_state(i, "running", timeout=10)
        assert info["Image"] == busybox_ami["image_id"], info["Image"]
    booted = {i: _started_at(i) for i in ids}

    # the aws_ec2 inventory plugin finds them: named by private DNS name (ec2d gives no
    # public one), reachable at the container's address, grouped by a tag
    inv = ansible.inventory(
        {
            "filters": {"tag:Name": name},
            "keyed_groups": [{"key": "tags.team", "prefix": "team"}],
            "compose": {"ansible_host": "private_ip_address"},
        }
    )
    hostvars = inv["_meta"]["hostvars"]
    by_id = {v["instance_id"]: host for host, v in hostvars.items()}
    assert sorted(by_id) == ids, inv
    for i, host in by_id.items():
        nets = h.container_inspect(h.container_name(i))["NetworkSettings"]["Networks"]
        (ip,) = {n["IPAddress"] for n in nets.values() if n.get("IPAddress")}
        assert host == "ip-" + ip.replace(".", "-") + ".ec2.internal", (host, ip)
        assert hostvars[host]["ansible_host"] == ip, hostvars[host]
        assert hostvars[host]["state"]["name"] == "running", hostvars[host]
    assert sorted(inv["team_ansible"]["hosts"]) == sorted(by_id.values()), inv

    ids_var = {"ids": ids, "fleet": name}
    run = ansible.run(
        """
        - name: stop them
          amazon.aws.ec2_instance:
            instance_ids: "{{ ids }}"
            state: stopped
            wait: true
            wait_timeout: 60
          register: stopped
        - name: stop them again
          amazon.aws.ec2_instance:
            instance_ids: "{{ ids }}"
            state: stopped
          register: stopped_again
        - name: list the stopped ones
          amazon.aws.ec2_instance_info:
            filters:
              "tag:Name": "{{ fleet }}"
              instance-state-name: stopped
          register: now_stopped
        - name: check the stop
          ansible.builtin.assert:
            that:
              - stopped is changed
              - stopped_again is not changed
              - now_stopped.instances | map(attribute='instance_id') | sort == ids | sort
        """,
        ids_var,
        name="instances-stop",
    ).ok()
    assert h.states(ec2, ids) == {i: "stopped" for i in ids}
    for i in ids:
        h.wait_container_state(i, "paused", timeout=10)

    ansible.run(
        """
        - name: start them
          amazon.aws.ec2_instance:
            instance_ids: "{{ ids }}"
            state: started
            wait: true
            wait_timeout: 60
          register: started
        - name: start them again
          amazon.aws.ec2_instance:
            instance_ids: "{{ ids }}"
            state: running
          register: started_again
        - name: check the start
          ansible.builtin.assert:
            that:
              - started is changed
              - started_again is not changed
        """,
        ids_var,
        name="instances-start",
    ).ok()
    assert h.states(ec2, ids) == {i: "running" for i in ids}
    for i in ids:
        h.wait_container_state(i, "running", timeout=10)
    # a start unpauses: the same container's process goes on
    assert {i: _started_at(i) for i in ids} == booted
    # `started` waited on instance_status_ok: DescribeInstanceStatus, every check passed
    for st in ec2.describe_instance_status(InstanceIds=ids)["InstanceStatuses"]:
        assert st["AvailabilityZone"] == "us-east-1a" and st["AvailabilityZoneId"] == "use1-az1", st
        assert st["Operator"] == {"Managed": False}, st
        for check in ("SystemStatus", "InstanceStatus", "AttachedEbsStatus"):
            assert st[check] == {"Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]}, st

    ansible.run(
        """
        - name: restart them
          amazon.aws.ec2_instance:
            instance_ids: "{{ ids }}"
            state: restarted
            wait: true
            wait_timeout: 60
          register: restarted
        - name: check the restart
          ansible.builtin.assert:
            that:
              - restarted is changed
              - restarted.instances | map(attribute='state.name') | unique | list == ['running']
        """,
        ids_var,
        name="instances-restart",
    ).ok()
    assert h.states(ec2, ids) == {i: "running" for i in ids}
    # `restarted` is StopInstances then StartInstances (not RebootInstances): ec2d
    # paused and unpaused the containers, whose processes go on
    for i in ids:
        h.wait_container_state(i, "running", timeout=10)
    assert {i: _started_at(i) for i in ids} == booted

    run = ansible.run(
        """
        - name: tag the first
          amazon.aws.ec2_tag:
            resource: "{{ ids[0] }}"
            tags:
              env: test
              owner: "{{ fleet }}"
          register: tagged
        - name: tag it again
          amazon.aws.ec2_tag:
            resource: "{{ ids[0] }}"
            tags:
              env: test
              owner: "{{ fleet }}"
          register: tagged_again
        - name: remove one tag
          amazon.aws.ec2_tag:
            resource: "{{ ids[0] }}"
            state: absent
            tags:
              env: test
          register: untagged
        - name: read the tags
          amazon.aws.ec2_tag_info:
            resource: "{{ ids[0] }}"
          register: tag_info
        - name: check the tags
          ansible.builtin.assert:
            that:
              - tagged is changed
              - "tagged.added_tags == {'env': 'test', 'owner': fleet}"
              - tagged_again is not changed
              - untagged is changed
              - "untagged.removed_tags == {'env': 'test'}"
              - "tag_info.tags == {'Name': fleet, 'team': 'ansible', 'owner': fleet}"
        - name: find by the added tag
          amazon.aws.ec2_instance_info:
            filters:
              "tag:owner": "{{ fleet }}"
          register: by_owner
        - name: check the tag filter
          ansible.builtin.assert:
            that:
              - by_owner.instances | map(attribute='instance_id') | list == [ids[0]]
        """,
        ids_var,
        name="tags",
    ).ok()
    first = h.describe_instances(ec2, [ids[0]])[ids[0]]
    assert h.tag_dict(first.get("Tags")) == {"Name": name, "team": "ansible", "owner": name}, first.get("Tags")

    ansible.run(
        """
        - name: shrink to one
          amazon.aws.ec2_instance:
            name: "{{ fleet }}"
            image_id: "{{ ami }}"
            instance_type: t3.micro
            exact_count: 1
            filters:
              "tag:Name": "{{ fleet }}"
              instance-state-name: {states}
            tags:
              team: ansible
            # the survivor keeps the tags ec2_tag added
            purge_tags: false
            wait: true
          register: shrunk
        - name: check the shrink
          ansible.builtin.assert:
            that:
              - shrunk is changed
              - shrunk.terminated_ids | length == 1
        """.replace("{states}", json.dumps(LIVE_STATES)),
        {**ids_var, "ami": busybox_ami["id"]},
        name="instances-shrink",
    ).ok()
    live = _live(ec2, name)
    assert len(live) == 1 and set(live) < set(ids), (live, ids)
    (gone,) = set(ids) - set(live)
    assert h.states(ec2, [gone]) == {gone: "terminated"}
    h.wait_container_state(gone, "absent", timeout=20)

    ansible.run(
        """
        - name: terminate them
          amazon.aws.ec2_instance:
            instance_ids: "{{ ids }}"
            state: absent
            wait: true
            wait_timeout: 60
          register: terminated
        - name: terminate them again
          amazon.aws.ec2_instance:
            instance_ids: "{{ ids }}"
            state: absent
          register: terminated_again
        - name: check the termination
          ansible.builtin.assert:
            that:
              - terminated is changed
              - terminated_again is not changed
        """,
        ids_var,
        name="instances-terminate",
    ).ok()
    assert h.states(ec2, ids) == {i: "terminated" for i in ids}
    for i in ids:
        h.wait_container_state(i, "absent", timeout=20)


def test_ansible_ec2_instance_options(ansible, ec2, cleanup, prefix, busybox_ami):
    """The options ec2_instance compares on every run (DescribeInstanceAttribute, the
    instance's MetadataOptions) and changes in place (ModifyInstanceAttribute,
    ModifyInstanceMetadataOptions): a rerun with the same options changes nothing."""
    launch = """
        - name: "{title}"
          amazon.aws.ec2_instance:
            name: "{{ prefix }}-opts"
            image_id: "{{ ami }}"
            instance_type: t3.micro
            detailed_monitoring: true
            cpu_credit_specification: unlimited
            metadata_options:
              http_tokens: required
              http_put_response_hop_limit: 2
            termination_protection: true
            instance_initiated_shutdown_behavior: terminate
            state: running
            wait: true
          register: {reg}
    """
    run = ansible.run(
        """
        - name: a group to move to
          amazon.aws.ec2_security_group:
            name: "{{ prefix }}-moved"
            description: moved here
          register: moved
        """
        + launch.replace("{title}", "launch with options").replace("{reg}", "launched")
        + launch.replace("{title}", "launch with options again").replace("{reg}", "relaunched")
        + """
        - name: move it to the group
          amazon.aws.ec2_instance:
            instance_ids: "{{ launched.instance_ids }}"
            security_groups: ["{{ prefix }}-moved"]
            source_dest_check: false
          register: regrouped
        - name: move it again
          amazon.aws.ec2_instance:
            instance_ids: "{{ launched.instance_ids }}"
            security_groups: ["{{ prefix }}-moved"]
            source_dest_check: false
          register: regrouped_again
        - name: terminate it while protected
          amazon.aws.ec2_instance:
            instance_ids: "{{ launched.instance_ids }}"
            state: absent
          register: refused
          ignore_errors: true
        - name: check the options
          ansible.builtin.assert:
            that:
              - launched is changed
              - launched.instances[0].monitoring.state == 'enabled'
              - launched.instances[0].metadata_options.http_tokens == 'required'
              - launched.instances[0].metadata_options.http_put_response_hop_limit == 2
              - relaunched is not changed
              - regrouped is changed
              - regrouped.instances[0].security_groups | map(attribute='group_id') | list == [moved.group_id]
              - regrouped.instances[0].source_dest_check == false
              - regrouped_again is not changed
              - refused is failed
              - refused.msg is search('OperationNotPermitted')
        """,
        {"prefix": prefix, "ami": busybox_ami["id"]},
        name="instance-options",
    )
    ids = (run.results.get("launch with options") or {}).get("instance_ids") or []
    cleanup.track_instances(ids)
    run.ok()
    (iid,) = ids
    inst = h.describe_instances(ec2, [iid])[iid]
    assert inst["Monitoring"] == {"State": "enabled"}, inst["Monitoring"]
    assert inst["MetadataOptions"]["HttpTokens"] == "required", inst["MetadataOptions"]
    assert [g["GroupName"] for g in inst["SecurityGroups"]] == [f"{prefix}-moved"], inst["SecurityGroups"]
    assert inst["SourceDestCheck"] is False, inst
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")
    assert attr["InstanceInitiatedShutdownBehavior"] == {"Value": "terminate"}, attr
    credits = ec2.describe_instance_credit_specifications(InstanceIds=[iid])["InstanceCreditSpecifications"]
    assert credits == [{"InstanceId": iid, "CpuCredits": "unlimited"}], credits
    h.wait_container_state(iid, "running", timeout=10)

    ansible.run(
        """
        - name: unprotect it
          amazon.aws.ec2_instance:
            instance_ids: ["{{ iid }}"]
            termination_protection: false
          register: unprotected
        - name: terminate it
          amazon.aws.ec2_instance:
            instance_ids: ["{{ iid }}"]
            state: absent
            wait: true
          register: terminated
        - name: delete the group
          amazon.aws.ec2_security_group:
            name: "{{ prefix }}-moved"
            state: absent
          register: deleted
        - name: check the teardown
          ansible.builtin.assert:
            that:
              - unprotected is changed
              - terminated is changed
              - deleted is changed
        """,
        {"prefix": prefix, "iid": iid},
        name="instance-options-teardown",
    ).ok()
    h.wait_container_state(iid, "absent", timeout=20)


# --------------------------------------------------------------------------- ec2_ami, ec2_ami_info


def test_ansible_ec2_ami(ansible, ec2, cleanup, prefix, busybox_ami):
    image_name = f"{prefix}-image"
    run = ansible.run(
        """
        - name: launch the source
          amazon.aws.ec2_instance:
            name: "{{ prefix }}-source"
            image_id: "{{ ami }}"
            instance_type: t3.micro
            state: running
            wait: true
          register: source
        - name: create an image of it
          amazon.aws.ec2_ami:
            instance_id: "{{ source.instance_ids[0] }}"
            name: "{{ image_name }}"
            description: made by ansible
            tags:
              team: ansible
            # shared after the wait: ModifyImageAttribute with Attribute=LaunchPermission
            # (capital L) and LaunchPermission.Add.N.UserId
            launch_permissions:
              user_ids: ["123456789012"]
            wait: true
            wait_timeout: 120
          register: image
        - name: create it again by name
          amazon.aws.ec2_ami:
            instance_id: "{{ source.instance_ids[0] }}"
            name: "{{ image_name }}"
            description: made by ansible
            wait: true
          register: duplicate
          ignore_errors: true
        - name: the same image by id
          amazon.aws.ec2_ami:
            image_id: "{{ image.image_id }}"
            description: made by ansible
            tags:
              team: ansible
            # ec2d tags every AMI ec2_vm_manager=docker, as LocalStack does
            purge_tags: false
            launch_permissions:
              user_ids: ["123456789012"]
          register: same
        - name: share it with another account instead
          amazon.aws.ec2_ami:
            image_id: "{{ image.image_id }}"
            purge_tags: false
            # Attribute=launchPermission with LaunchPermission.Add and .Remove
            launch_permissions:
              user_ids: ["210987654321"]
          register: reshared
        - name: check the image
          ansible.builtin.assert:
            that:
              - image is changed
              - image.image_id is match('ami-[0-9a-f]+$')
              - image.name == image_name
              - image.description == 'made by ansible'
              - image.state == 'available'
              - image.tags.team == 'ansible'
              - image.launch_permissions | map(attribute='user_id') | list == ['123456789012']
              # without an image_id ec2_ami always calls CreateImage, and EC2 refuses a
              # name in use (the module drops the error code; boto3 checks it below)
              - duplicate is failed
              - duplicate.msg is search('Error registering/creating image')
              - same is not changed
              - same.image_id == image.image_id
              - reshared is changed
              - reshared.launch_permissions | map(attribute='user_id') | list == ['210987654321']
        - name: find it by name
          amazon.aws.ec2_ami_info:
            owners: self
            filters:
              name: "{{ image_name }}"
            describe_image_attributes: true
          register: mine
        - name: find nothing by another name
          amazon.aws.ec2_ami_info:
            owners: self
            filters:
              name: "{{ image_name }}-nope"
          register: nothing
        - name: check the listing
          ansible.builtin.assert:
            that:
              - mine.images | map(attribute='image_id') | list == [image.image_id]
              - mine.images[0].state == 'available'
              - mine.images[0].name == image_name
              - mine.images[0].tags.team == 'ansible'
              - mine.images[0].launch_permissions | map(attribute='user_id') | list == ['210987654321']
              - nothing.images == []
        """,
        {"prefix": prefix, "ami": busybox_ami["id"], "image_name": image_name},
        name="ami-create",
    )
    source = (run.results.get("launch the source") or {}).get("instance_ids") or []
    cleanup.track_instances(source)
    ami = (run.results.get("create an image of it") or {}).get("image_id")
    if ami:
        cleanup.track_image(ami)
    run.ok()

    # the AMI is a Docker image tagged localstack-ec2/<name>:<ami-id>
    tag = f"{h.AMI_REPO_PREFIX}{image_name}:{ami}"
    assert h.image_id(tag) is not None, f"no image {tag}; AMI tags: {sorted(h.list_ami_tags())}"
    img = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert img["Name"] == image_name and img["State"] == "available", img
    assert img.get("Description") == "made by ansible", img
    assert h.tag_dict(img.get("Tags")) == {"team": "ansible", "ec2_vm_manager": "docker"}, img
    shared = ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
    assert shared == [{"UserId": "210987654321"}], shared
    with pytest.raises(ClientError) as dup:
        ec2.create_image(InstanceId=source[0], Name=image_name)
    assert dup.value.response["Error"]["Code"] == "InvalidAMIName.Duplicate", dup.value.response

    run = ansible.run(
        """
        - name: deregister the image
          amazon.aws.ec2_ami:
            image_id: "{{ ami }}"
            state: absent
            wait: true
          register: gone
        - name: deregister it again
          amazon.aws.ec2_ami:
            image_id: "{{ ami }}"
            state: absent
          register: gone_again
        - name: terminate the source
          amazon.aws.ec2_instance:
            instance_ids: "{{ source }}"
            state: absent
            wait: true
        - name: check the deregistration
          ansible.builtin.assert:
            that:
              - gone is changed
              - gone_again is not changed
        """,
        {"ami": ami, "source": source},
        name="ami-delete",
    )
    # `state: absent, wait: true` polls DescribeImages(ImageIds=[the AMI]) until the AMI is no
    # longer listed (any error but InvalidAMIID.Unavailable fails it): EC2, and ec2d, answer a
    # deregistered AMI's id with an empty list, and the rerun finds nothing to do.
    run.ok()
    assert ec2.describe_images(Filters=[{"Name": "name", "Values": [image_name]}])["Images"] == []
    h.wait_until(lambda: h.image_id(tag) is None, 20, desc=f"image tag {tag} to be removed")
    # Long after its tag went, the id still lists nothing rather than being unknown.
    assert ec2.describe_images(ImageIds=[ami])["Images"] == []


def test_ansible_ec2_eip(ansible, ec2, launch):
    """ec2_eip with `device_id`: allocates an address and associates it (AllowReassociation
    false, as the module sends it); a rerun finds it by `instance-id` and changes nothing;
    `state: absent` with `release_on_disassociation` disassociates and releases it."""
    _, [instance_id] = launch()
    tasks = """
        - name: "{{ title }}"
          amazon.aws.ec2_eip:
            device_id: "{{ instance_id }}"
            in_vpc: true
          register: "{{ reg }}"
        """
    run = ansible.run(
        tasks.replace('"{{ title }}"', "associate").replace('"{{ reg }}"', "eip")
        + tasks.replace('"{{ title }}"', "associate again").replace('"{{ reg }}"', "again")
        + """
        - name: check
          ansible.builtin.assert:
            that:
              - eip is changed
              - again is not changed
              - again.allocation_id == eip.allocation_id
              - again.public_ip == eip.public_ip
        """,
        {"instance_id": instance_id},
        name="eip-present",
    ).ok()
    allocation_id, public_ip = run["associate"]["allocation_id"], run["associate"]["public_ip"]
    [address] = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"]
    assert address["InstanceId"] == instance_id and address["PublicIp"] == public_ip
    [r] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    assert r["Instances"][0]["PublicIpAddress"] == public_ip

    run = ansible.run(
        """
        - name: release
          amazon.aws.ec2_eip:
            device_id: "{{ instance_id }}"
            public_ip: "{{ public_ip }}"
            in_vpc: true
            release_on_disassociation: true
            state: absent
          register: gone
        - name: check
          ansible.builtin.assert:
            that:
              - gone is changed
              - gone.disassociated
              - gone.released
        """,
        {"instance_id": instance_id, "public_ip": public_ip},
        name="eip-absent",
    ).ok()
    with pytest.raises(ClientError) as e:
        ec2.describe_addresses(AllocationIds=[allocation_id])
    assert e.value.response["Error"]["Code"] == "InvalidAllocationID.NotFound"
    [r] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    assert r["Instances"][0].get("PublicIpAddress") != public_ip
