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
    for srv in shown:
        rep.sections.append((f"{srv.name} log tail ({srv.log_path})", srv.log_tail(60)))
    rec = getattr(item, "_ec2d_recorder", None)
    if rec is not None and rec.exchanges:
        rep.sections.append(("last boto3 HTTP exchanges", rec.report()))
    for cli in getattr(item, "_ec2d_clis", []):
        if cli.history:
            rep.sections.append((f"last {cli.kind} CLI calls", cli.report()))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
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
def test_ami(docker_cleanup):
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
def ec2d(test_ami, workdir):
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
