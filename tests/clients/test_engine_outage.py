"""Container engine outages.

ec2d talks to Docker through a Unix-socket proxy the test controls
(h.DockerSocketProxy, DOCKER_HOST=unix:///tmp/ec2d-eo-<random>.sock). Taking the proxy
down refuses new connections and cuts open ones (event stream included), as an engine
that stops or restarts would. The test itself always uses the real socket.
"""

from __future__ import annotations

import time
import uuid

import botocore.exceptions
import pytest

import ec2d_harness as h

RESYNC = "2"
DETECT_BOUND = 20.0  # seconds for ec2d to report the engine unreachable
RECOVER_BOUND = 30.0  # seconds from the proxy coming back to everything converged
ERROR_WINDOW = 10.0
MAX_ERRORS_IN_WINDOW = 40  # a hot loop makes hundreds


@pytest.fixture
def proxy():
    p = h.DockerSocketProxy(f"/tmp/ec2d-eo-{uuid.uuid4().hex[:10]}.sock")
    yield p
    p.down()


def _server(ec2d_factory, proxy, **kw):
    env = {"DOCKER_HOST": proxy.docker_host, "EC2D_RESYNC_SECONDS": RESYNC}
    return ec2d_factory(extra_env=env, **kw)


def _wait_health(srv, want_ok: bool, bound: float) -> tuple[float, dict]:
    t0 = time.monotonic()
    seen = {}

    def check():
        code, body = srv.health(timeout=5)
        seen["last"] = (code, body)
        reachable = (body.get("engine") or {}).get("reachable")
        if want_ok:
            return code == 200 and reachable is True
        return code == 503 and reachable is False

    try:
        h.wait_until(check, bound, 0.2, f"/_ec2d/health {'200' if want_ok else '503'}")
    except AssertionError:
        raise AssertionError(f"/_ec2d/health not {'up' if want_ok else 'down'} after {bound}s: {seen.get('last')}") from None
    return time.monotonic() - t0, seen["last"][1]


def _converged(srv, want: dict) -> bool:
    """want: {instance id: 'running'|'stopped'}; status converged and docker matching."""
    doc = srv.status()
    insts = {d["id"]: d for d in doc["instances"]}
    for iid, state in want.items():
        d = insts.get(iid)
        if not d or d["state"] != state or not d["converged"]:
            return False
        if h.container_state(h.container_name(iid)) != {"running": "running", "stopped": "paused"}[state]:
            return False
    return True


def test_outage_api_answers_backs_off_and_converges_after(proxy, ec2d_factory):
    """Proxy down: health 503 (engine unreachable), DescribeInstances still answers, a
    RunInstances answers pending and a StopInstances stopping, errors_total grows slowly
    (per-key backoff, not a hot loop). Proxy up: health 200 and everything converges."""
    proxy.up()
    srv = _server(ec2d_factory, proxy)
    client = srv.client(srv.recorder)
    a, b = h.launch_on(srv, 2)
    srv.store_id = h.learn_store_id(srv, a)

    proxy.down()
    t_down = time.monotonic()
    detect, health = _wait_health(srv, False, DETECT_BOUND)
    assert health["engine"].get("lastError"), health
    assert health["store"]["ok"] is True, health

    # The API keeps answering from the store.
    t0 = time.monotonic()
    assert h.states(client, [a, b]) == {a: "running", b: "running"}
    resp = client.run_instances(ImageId=h.TEST_AMI_ID, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    [c] = [i["InstanceId"] for i in resp["Instances"]]
    srv.cleanup.track_instances([c])
    h.assert_state(resp["Instances"][0]["State"], "pending")
    stop = client.stop_instances(InstanceIds=[b])["StoppingInstances"][0]
    h.assert_state(stop["CurrentState"], "stopping")
    api_seconds = time.monotonic() - t0
    assert api_seconds < 5, f"the API took {api_seconds:.1f}s to answer 4 requests with the engine down"
    assert h.states(client, [a, b, c]) == {a: "running", b: "stopping", c: "pending"}

    # Errors grow with per-key exponential backoff, not in a hot loop: fewer than
    # MAX_ERRORS_IN_WINDOW in the first 10 s of the outage (5 keys: 3 instances, catalog,
    # sweep; ~5 attempts each at 0.2, 0.6, 1.4, 3, 6 s), and fewer in the second half of
    # the window than in the first.
    samples = [srv.status()["controller"]]
    for _ in range(2):
        time.sleep(ERROR_WINDOW / 2)  # a rate over wall-clock time: the window itself is measured
        samples.append(srv.status()["controller"])
    first = samples[1]["errors_total"] - samples[0]["errors_total"]
    second = samples[2]["errors_total"] - samples[1]["errors_total"]
    errors = first + second
    reconciles = samples[2]["reconciles_total"] - samples[0]["reconciles_total"]
    doc = srv.instance_status(c)
    assert doc["lastError"], f"the pending instance shows no lastError during the outage: {h.brief(doc)}"
    h.report_figure(
        f"engine outage (resync {RESYNC}s, 3 instances + catalog + sweep): unreachable reported "
        f"{detect:.1f}s after the proxy went down; {errors} reconcile errors ({first} + {second} per "
        f"{ERROR_WINDOW / 2:.0f}s) / {reconciles} reconciles in the first {ERROR_WINDOW:.0f}s of the outage; "
        f"pending instance's lastError: {doc['lastError']['message'][:100]!r}"
    )
    assert errors < MAX_ERRORS_IN_WINDOW, f"{errors} reconcile errors in {ERROR_WINDOW}s: not backing off"
    assert errors > 0, "no reconcile error at all while the engine is down?"
    assert second < first, f"errors not slowing down: {first} then {second} per {ERROR_WINDOW / 2}s"

    # Back up: everything converges.
    proxy.up()
    t_up = time.monotonic()
    healthy, _ = _wait_health(srv, True, RECOVER_BOUND)
    h.wait_until(lambda: _converged(srv, {a: "running", b: "stopped", c: "running"}), RECOVER_BOUND, 0.25,
                 "a running, b stopped (paused), c running after the outage")
    recovered = time.monotonic() - t_up
    assert h.states(client, [a, b, c]) == {a: "running", b: "stopped", c: "running"}
    ctrs = h.store_containers(srv.store_id)
    assert sorted(x["instance_id"] for x in ctrs) == sorted([a, b, c]), ctrs
    for iid in (a, b, c):
        assert srv.instance_status(iid)["lastError"] is None, h.brief(srv.instance_status(iid))
    h.report_figure(
        f"engine outage of {t_up - t_down:.0f}s: health 200 {healthy:.1f}s and everything converged "
        f"{recovered:.1f}s after the proxy came back"
    )


@pytest.mark.parametrize("when", ["after-ec2d-noticed", "before-ec2d-noticed"])
def test_containers_stopped_by_the_engine_during_an_outage_are_started_again(proxy, ec2d_factory, when):
    """An engine restart stops containers. With the proxy down, the instance's container
    is stopped through the real socket; when the proxy is back ec2d starts the same
    container again (the exit fell in the outage window, so it is not the instance's
    own shutdown): running, never shown stopped. Another instance is left alone."""
    proxy.up()
    srv = _server(ec2d_factory, proxy)
    client = srv.client(srv.recorder)
    a, other = h.launch_on(srv, 2)
    name = h.container_name(a)
    cid = h.container_inspect(name)["Id"]
    other_cid = h.container_inspect(h.container_name(other))["Id"]
    h.docker("exec", name, "sh", "-c", "echo kept > /root/marker")

    proxy.down()
    if when == "after-ec2d-noticed":
        _wait_health(srv, False, DETECT_BOUND)
    h.docker("stop", name)  # through the real socket, as an engine restart would
    assert h.container_state(name) == "exited"
    h.wait_resyncs(srv, 2)  # two resyncs with the engine still away (their reconciles fail)
    proxy.up()
    t_up = time.monotonic()
    h.wait_until(lambda: h.container_state(name) == "running", RECOVER_BOUND, 0.25, f"{name} running again")
    took = time.monotonic() - t_up
    assert h.container_inspect(name)["Id"] == cid, "a new container instead of starting the stopped one"
    assert h.docker("exec", name, "cat", "/root/marker").stdout.strip() == "kept"
    doc = h.wait_instance_status(srv, a, lambda d: d["state"] == "running" and d["converged"], 15, "running")
    to_states = [t["to"] for t in doc["transitions"]]
    assert "stopped" not in to_states, f"shown stopped on the way: {doc['transitions']}"
    inst = h.describe_instances(client, [a])[a]
    assert inst["State"]["Name"] == "running"
    assert (inst.get("StateReason") or {}).get("Code") != "Client.InstanceInitiatedShutdown", inst.get("StateReason")
    h.wait_resyncs(srv, 2)
    assert h.container_state(name) == "running"
    assert h.container_inspect(h.container_name(other))["Id"] == other_cid
    assert h.states(client, [a, other]) == {a: "running", other: "running"}
    h.report_figure(f"engine outage, container stopped by the engine ({when}): running again {took:.1f}s after the proxy came back")


def test_start_with_the_engine_down_fresh_store(proxy, ec2d_factory):
    """ec2d starts while the engine is unreachable: it serves (health 503, the API
    answers), and once the engine is back it discovers the AMIs and runs instances."""
    srv = _server(ec2d_factory, proxy, require_healthy=False)
    client = srv.client(srv.recorder)
    code, health = srv.health()
    assert code == 503 and health["engine"]["reachable"] is False, (code, health)
    assert h.describe_instances(client) == {}
    try:
        early = client.run_instances(ImageId=h.TEST_AMI_ID, MinCount=1, MaxCount=1, InstanceType="t3.micro")
        early_ids = [i["InstanceId"] for i in early["Instances"]]
        srv.cleanup.track_instances(early_ids)
        early_note = f"answered pending {early_ids}"
    except botocore.exceptions.ClientError as e:
        early_ids = []
        early_note = f"refused: {e.response['Error']['Code']} ({e.response['Error']['Message']})"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] < 500, f"5xx with the engine down: {e.response}"

    proxy.up()
    took, _ = _wait_health(srv, True, RECOVER_BOUND)
    h.wait_until(lambda: h.TEST_AMI_ID in {i["ImageId"] for i in client.describe_images()["Images"]},
                 RECOVER_BOUND, 0.5, "the test AMI discovered once the engine is back")
    ids = early_ids + h.launch_on(srv, 1, wait=False)
    client.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=h.WAITER)
    for i in ids:
        assert h.container_state(h.container_name(i)) == "running"
    h.report_figure(
        f"ec2d started with the engine down (fresh store): RunInstances {early_note}; "
        f"healthy {took:.1f}s after the proxy came up"
    )


def test_restart_with_the_engine_down_serves_and_converges(proxy, ec2d_factory):
    """ec2d is restarted (SIGKILL) while the engine is away: it starts, answers from its
    store (running/stopped as before; RunInstances and StartInstances answer pending),
    and converges everything once the engine is back, adopting the old containers."""
    proxy.up()
    srv = _server(ec2d_factory, proxy)
    client = srv.client(srv.recorder)
    a, b = h.launch_on(srv, 2)
    client.stop_instances(InstanceIds=[b])
    client.get_waiter("instance_stopped").wait(InstanceIds=[b], WaiterConfig=h.WAITER)
    cids = {i: h.container_inspect(h.container_name(i))["Id"] for i in (a, b)}

    srv.kill()
    proxy.down()
    srv.start(require_healthy=False)
    client = srv.client(srv.recorder)
    code, health = srv.health()
    assert code == 503 and health["engine"]["reachable"] is False, (code, health)
    assert h.states(client, [a, b]) == {a: "running", b: "stopped"}
    resp = client.run_instances(ImageId=h.TEST_AMI_ID, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    [c] = [i["InstanceId"] for i in resp["Instances"]]
    srv.cleanup.track_instances([c])
    h.assert_state(resp["Instances"][0]["State"], "pending")
    start = client.start_instances(InstanceIds=[b])["StartingInstances"][0]
    h.assert_state(start["CurrentState"], "pending")
    h.wait_resyncs(srv, 2)  # the engine is still away: their reconciles fail
    assert h.states(client, [a, b, c]) == {a: "running", b: "pending", c: "pending"}

    proxy.up()
    t_up = time.monotonic()
    h.wait_until(lambda: _converged(srv, {a: "running", b: "running", c: "running"}), RECOVER_BOUND, 0.25,
                 "all running after the engine came back")
    took = time.monotonic() - t_up
    assert {i: h.container_inspect(h.container_name(i))["Id"] for i in (a, b)} == cids, "containers recreated"
    _wait_health(srv, True, RECOVER_BOUND)
    h.report_figure(f"ec2d restarted with the engine down: all converged {took:.1f}s after the proxy came up")
