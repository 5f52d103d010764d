"""Fixtures for ec2d's real-client tests (boto3, aws CLI, awslocal).

The session starts the built binary (target/debug/ec2d, or $EC2D_BIN) on a
free 127.0.0.1 port with a temporary --data-dir, and afterwards removes the
localstack-ec2.<id> container of every instance and the localstack-ec2/*:<ami>
tag of every AMI that the session's ec2d processes created. Nothing else is
touched: other tests may share the Docker engine and its localstack-ec2.* names.

Env:
  EC2D_BIN                 ec2d binary (default: <repo>/target/debug/ec2d)
  EC2D_TEST_KEEP_ARTIFACTS=1  keep the temp dir (data dirs, logs) even on success
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

import ec2d_harness as h

# --------------------------------------------------------------------------- reporting


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    shown = [s for s in h.SERVERS if s.alive()] or [s for s in h.SERVERS if s.starts][-1:]
    # Newest first: a test's own ec2d (ec2d_factory) before the session's shared one, so a
    # report cut short still shows the log of the server the test drove.
    for srv in reversed(shown):
        rep.sections.append((f"{srv.name} log tail ({srv.log_path})", srv.log_tail(60)))
    rec = getattr(item, "_ec2d_recorder", None)
    if rec is not None and rec.exchanges:
        rep.sections.append(("last boto3 HTTP exchanges", rec.report()))
    for cli in getattr(item, "_ec2d_clis", []):
        if cli.history:
            rep.sections.append((f"last {cli.kind} CLI calls", cli.report()))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if h.FIGURES:
        terminalreporter.section("ec2d figures")
        for text in h.FIGURES:
            for line in text.splitlines():
                terminalreporter.write_line(line)
    if exitstatus != 0 and h.SERVERS:
        tr = terminalreporter
        tr.section("ec2d logs")
        for srv in h.SERVERS:
            if srv.starts:
                tr.write_line(f"{srv.name}: {srv.log_path} (started {srv.starts}x)")
        last = next((s for s in reversed(h.SERVERS) if s.starts), None)
        if last is not None:
            tr.write_line(f"--- tail of {last.log_path} ---")
            tr.write_line(last.log_tail(40))


# --------------------------------------------------------------------------- session


@pytest.fixture(scope="session")
def workdir(request):
    d = Path(tempfile.mkdtemp(prefix="ec2d-client-tests-"))
    yield d
    for problem in h.unmount_under(d):
        print(f"[ec2d-tests] cleanup problem: {problem}")
    if request.session.testsfailed or os.environ.get("EC2D_TEST_KEEP_ARTIFACTS") == "1":
        print(f"\n[ec2d-tests] kept logs and data dirs in {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def docker_cleanup():
    """Docker must answer. At the end of the session, removes the containers of
    every instance and the tags of every AMI that this session's ec2d
    processes made (and nothing else: the engine may be shared)."""
    ok, info = h.docker_available()
    if not ok:
        pytest.fail(f"docker engine not available: {info}", pytrace=False)
    yield
    for srv in h.SERVERS:
        srv.remember_instances()
    names, tags, problems = h.cleanup_owned()
    if names or tags:
        print(f"\n[ec2d-tests] session cleanup removed containers {names} tags {tags}")
    for p in problems:
        print(f"[ec2d-tests] cleanup problem: {p}")


@pytest.fixture(scope="session")
def busybox_ami(docker_cleanup):
    """ec2d-test/busybox:latest tagged as the AMI localstack-ec2/test-ami:ami-000001."""
    if h.image_id(h.BUSYBOX_IMAGE) is None:
        pytest.fail(f"test image {h.BUSYBOX_IMAGE} missing: run tests/support/build-test-images.sh", pytrace=False)
    existed = h.image_id(h.TEST_AMI_TAG) is not None
    h.docker("tag", h.BUSYBOX_IMAGE, h.TEST_AMI_TAG)
    yield {"id": h.TEST_AMI_ID, "name": h.TEST_AMI_NAME, "tag": h.TEST_AMI_TAG, "image_id": h.image_id(h.TEST_AMI_TAG)}
    if not existed:
        h.remove_tags([h.TEST_AMI_TAG])


def _start(srv) -> str | None:
    """Start srv; the error text if it does not come up (raised outside the except)."""
    try:
        srv.start()
    except RuntimeError as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def ec2d(busybox_ami, workdir):
    """The shared ec2d server for the session (an h.Ec2dServer; .url is the endpoint)."""
    srv = h.Ec2dServer(h.ec2d_binary(), workdir / "data", workdir / "ec2d.log", name="ec2d")
    err = _start(srv)
    if err:
        pytest.fail(err, pytrace=False)
    yield srv
    rc = srv.stop()
    if rc not in (0, None):
        print(f"\n[ec2d-tests] ec2d exited with {rc} after SIGTERM; log: {srv.log_path}")


@pytest.fixture(scope="session")
def endpoint_url(ec2d) -> str:
    return ec2d.url


# --------------------------------------------------------------------------- per test


@pytest.fixture
def recorder(request):
    rec = h.HttpRecorder().activate()
    request.node._ec2d_recorder = rec
    yield rec
    h.HttpRecorder.current = None


@pytest.fixture
def ec2(ec2d, recorder):
    """boto3 EC2 client against the session server."""
    return ec2d.client(recorder)


def _cli(request, server, kind, workdir):
    cli = h.AwsCli(server, kind, workdir)
    clis = getattr(request.node, "_ec2d_clis", [])
    clis.append(cli)
    request.node._ec2d_clis = clis
    return cli


@pytest.fixture
def aws(request, ec2d, workdir):
    """aws CLI: aws --endpoint-url URL --output json ec2 ..."""
    return _cli(request, ec2d, "aws", workdir)


@pytest.fixture
def awslocal(request, ec2d, workdir):
    """awslocal (awscli-local) pointed at ec2d through LOCALSTACK_HOST."""
    return _cli(request, ec2d, "awslocal", workdir)


@pytest.fixture
def cleanup(ec2d):
    """Track instances/images a test creates; terminated/removed afterwards."""
    c = h.Ec2Cleanup(lambda: ec2d.client())
    yield c
    problems = c.run()
    for p in problems:
        print(f"[ec2d-tests] cleanup problem: {p}")


@pytest.fixture
def launch(ec2, cleanup):
    """launch(count=1, image_id=ami-000001, tags=None, wait=True) -> (response, [ids])
    via boto3; waits for instance_running unless wait=False."""

    def _launch(count=1, image_id=h.TEST_AMI_ID, tags=None, wait=True, client=None, tracker=None):
        client = client or ec2
        tracker = tracker or cleanup
        kw = {"ImageId": image_id, "MinCount": count, "MaxCount": count, "InstanceType": "t3.micro"}
        if tags:
            kw["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        resp = client.run_instances(**kw)
        ids = [i["InstanceId"] for i in resp["Instances"]]
        tracker.track_instances(ids)
        if wait:
            t0 = time.monotonic()
            client.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=h.WAITER)
            h.log(f"{ids} running after {time.monotonic() - t0:.1f}s")
        return resp, ids

    return _launch


# --------------------------------------------------------------------------- own servers (recovery, drift, outage)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:80]


@pytest.fixture
def ec2d_factory(request, busybox_ami, workdir, recorder):
    """make(tag="", extra_env=None, start=True, require_healthy=True) -> h.Ec2dServer

    Each server has its own port, data dir and log; srv.recorder is the test's
    recorder, srv.cleanup an h.Ec2Cleanup (track_instances / track_image) and
    srv.store_id the store id once a test learned it (h.container_label).
    Teardown: SIGTERM the server, then remove with docker every container of
    its store (label ec2d.store-id) and of its tracked instances, and the tags of
    its tracked images. Nothing of anyone else's is touched."""
    made: list[h.Ec2dServer] = []

    def make(tag: str = "", extra_env: dict | None = None, start: bool = True, require_healthy: bool = True):
        name = request.node.name + (f"-{tag}" if tag else "")
        safe = _safe(name)
        srv = h.Ec2dServer(
            h.ec2d_binary(), workdir / f"data-{safe}", workdir / f"ec2d-{safe}.log", name=f"ec2d[{name}]", extra_env=extra_env
        )
        srv.recorder = recorder
        srv.cleanup = h.Ec2Cleanup(lambda: srv.client())
        srv.store_id = None
        made.append(srv)
        if start:
            try:
                srv.start(require_healthy=require_healthy)
                err = None
            except RuntimeError as e:
                err = str(e)
            if err:
                pytest.fail(err, pytrace=False)
        return srv

    yield make

    for srv in reversed(made):
        try:
            if srv.alive():
                try:
                    doc = srv.status()
                    srv.cleanup.track_instances(i["id"] for i in doc.get("instances", []))
                    for img in doc.get("images", []):
                        if (img.get("source") or {}).get("type") != "docker":
                            srv.cleanup.track_image(img["id"])
                except Exception as e:  # noqa: BLE001 - best effort
                    print(f"[ec2d-tests] {srv.name}: could not read status before teardown: {e!r}")
            srv.stop()
        finally:
            store_ids = {srv.store_id} if srv.store_id else set()
            for i in srv.cleanup.instances:
                sid = h.container_label(h.container_name(i), h.STORE_ID_LABEL)
                if sid:
                    store_ids.add(sid)
            names = [c["id"] for sid in store_ids for c in h.store_containers(sid)]
            names += [h.container_name(i) for i in srv.cleanup.instances
                      if h.container_label(h.container_name(i), h.STORE_ID_LABEL) in store_ids]
            problems = h.remove_containers(sorted(set(names)))
            problems += h.remove_store_networks(store_ids)
            problems += h.remove_store_volumes(store_ids)
            if srv.cleanup.images:
                problems += h.remove_tags(t for t in h.list_ami_tags() if t.rsplit(":", 1)[-1] in srv.cleanup.images)
            for p in problems:
                print(f"[ec2d-tests] cleanup problem: {p}")


# --------------------------------------------------------------------------- Debian SSH AMI (inside-instance tests)

DEBIAN_IMAGE = os.environ.get("EC2D_TEST_DEBIAN_IMAGE", "ec2d-test/debian-ssh:latest")
DEBIAN_AMI_ID = "ami-0deb1a2b3c4d"
DEBIAN_AMI_NAME = "debian-ssh"
DEBIAN_AMI_TAG = f"{h.AMI_REPO_PREFIX}{DEBIAN_AMI_NAME}:{DEBIAN_AMI_ID}"


@pytest.fixture(scope="session")
def debian_ami(docker_cleanup):
    """ec2d-test/debian-ssh:latest (debootstrap + openssh-server) tagged as the AMI
    localstack-ec2/debian-ssh:ami-0deb1a2b3c4d. Tag it before starting an ec2d that
    must know it (AMIs are discovered at start and from image events)."""
    if h.image_id(DEBIAN_IMAGE) is None:
        pytest.fail(
            f"test image {DEBIAN_IMAGE} missing: run tests/support/build-test-images.sh debian", pytrace=False
        )
    existed = h.image_id(DEBIAN_AMI_TAG) is not None
    h.docker("tag", DEBIAN_IMAGE, DEBIAN_AMI_TAG)
    yield {"id": DEBIAN_AMI_ID, "name": DEBIAN_AMI_NAME, "tag": DEBIAN_AMI_TAG, "image_id": h.image_id(DEBIAN_AMI_TAG)}
    if not existed:
        h.remove_tags([DEBIAN_AMI_TAG])
