"""Drift: someone changes an instance's container behind ec2d's back.

Each test runs its own ec2d. Two ways ec2d can notice:

- "events": Docker's event stream; the periodic resync is pushed out of the way
  (EC2D_RESYNC_SECONDS=600), so only an event can explain a quick convergence.
- "resync": ec2d talks to Docker through a socket proxy that keeps the event stream
  open but drops every event (h.DockerSocketProxy(mute_events=True)), and resyncs
  every 2 s; only the resync can notice.

What ec2d does (src/reconcile/plan.rs):
  paused while it should run         -> unpaused
  running while it should be stopped -> paused
  gone                               -> a fresh boot from the AMI (new container, user data again)
  exited after an engine signal      -> `docker stop` / `docker kill` from outside (a `kill` event
                                        during the run, seen on the stream or, when ec2d was down or
                                        the stream lost it, found in the engine's event log): drift,
                                        the same container is started again (running), whatever the
                                        shutdown behaviour
  exited, the log covers the run     -> the instance's own shutdown (test_shutdown_behaviour.py)
  and holds no signal
  exited, no record either way       -> a clean exit (0: busybox halt/poweroff) is the instance's own;
                                        any other status (143 SIGTERM, 137 SIGKILL) is converged back
"""

from __future__ import annotations

import time
import uuid

import pytest

import ec2d_harness as h

EVENT_BOUND = 5.0  # seconds; typically well under 1 s (the figures are printed)
BOOT_BOUND = 20.0  # a re-boot needs docker create + copy + start: seconds on a loaded engine
RESYNC_SECONDS = 2
RESYNC_BOUND = RESYNC_SECONDS * 2 + 4.0

USER_DATA = "#!/bin/sh\necho booted-$(cat /proc/sys/kernel/random/uuid) >> /root/user-data-runs\n"

LATENCIES: dict = {}


@pytest.fixture
def drift_server(request, ec2d_factory):
    """(server, mode) for mode in ('events', 'resync')."""
    mode = getattr(request, "param", "events")
    proxy = None
    if mode == "events":
        env = {"EC2D_RESYNC_SECONDS": "600"}
    else:
        proxy = h.DockerSocketProxy(f"/tmp/ec2d-drift-{uuid.uuid4().hex[:10]}.sock", mute_events=True).up()
        env = {"EC2D_RESYNC_SECONDS": str(RESYNC_SECONDS), "DOCKER_HOST": proxy.docker_host}
    srv = ec2d_factory(extra_env=env)
    srv.proxy = proxy
    yield srv, mode
    if proxy is not None:
        srv.stop()  # before the proxy goes: the factory's teardown uses the real socket anyway
        proxy.down()


def _converge(instance_id: str, want: str, mode: str, what: str) -> float:
    """Wait for the container to reach docker state `want`; returns the seconds it took."""
    bound = EVENT_BOUND if mode == "events" else RESYNC_BOUND
    t0 = time.monotonic()
    h.wait_container_state(instance_id, want, timeout=bound)
    took = time.monotonic() - t0
    LATENCIES.setdefault((what, mode), []).append(took)
    h.log(f"{what} [{mode}]: container {want} again after {took:.2f}s")
    return took


def _report(what, mode, took, srv):
    extra = ""
    if srv.proxy is not None:
        extra = f" (events muted by the proxy: {srv.proxy.dropped_event_bytes} bytes of events dropped)"
        assert srv.proxy.events_connections >= 1, "ec2d never subscribed to events through the proxy"
    h.report_figure(f"drift {what} [{mode}]: converged {took:.2f}s after the docker command returned{extra}")


MODES = pytest.mark.parametrize("drift_server", ["events", "resync"], indirect=True)


@MODES
def test_docker_pause_is_undone(drift_server):
    """`docker pause` on a running instance's container: ec2d unpauses it (same container)."""
    srv, mode = drift_server
    [a] = h.launch_on(srv, 1)
    cid = h.container_inspect(h.container_name(a))["Id"]
    h.docker("pause", h.container_name(a))
    took = _converge(a, "running", mode, "docker pause")
    assert h.container_inspect(h.container_name(a))["Id"] == cid
    assert h.states(srv.client(srv.recorder), [a]) == {a: "running"}
    _report("docker pause", mode, took, srv)


@MODES
def test_docker_unpause_of_stopped_instance_is_paused_again(drift_server):
    """`docker unpause` on a stopped (paused) instance's container: ec2d pauses it again."""
    srv, mode = drift_server
    client = srv.client(srv.recorder)
    [a] = h.launch_on(srv, 1)
    client.stop_instances(InstanceIds=[a])
    client.get_waiter("instance_stopped").wait(InstanceIds=[a], WaiterConfig=h.WAITER)
    cid = h.wait_container_state(a, "paused")["Id"]
    h.docker("unpause", h.container_name(a))
    took = _converge(a, "paused", mode, "docker unpause (stopped instance)")
    assert h.container_inspect(h.container_name(a))["Id"] == cid
    assert h.states(client, [a]) == {a: "stopped"}
    _report("docker unpause of a stopped instance", mode, took, srv)


@MODES
def test_docker_rm_boots_afresh_from_the_ami(drift_server):
    """`docker rm -f`: ec2d boots a new container from the AMI (new id, clean file
    system, user data runs again); the instance stays running."""
    srv, mode = drift_server
    client = srv.client(srv.recorder)
    [a] = h.launch_on(srv, 1, UserData=USER_DATA)
    name = h.container_name(a)
    h.wait_until(lambda: h.docker("exec", name, "cat", "/root/user-data-runs", check=False).returncode == 0,
                 15, 0.25, "user data ran")
    first_run = h.docker("exec", name, "cat", "/root/user-data-runs").stdout.split()
    assert len(first_run) == 1, first_run
    old = h.container_inspect(name)["Id"]
    h.docker("exec", name, "sh", "-c", "echo old > /root/left-behind")

    h.docker("rm", "-f", name)
    bound = BOOT_BOUND + (0 if mode == "events" else RESYNC_BOUND)
    t0 = time.monotonic()
    def replaced():
        info = h.container_inspect(name)
        return info and info["Id"] != old and info["State"]["Running"] and info["Id"]

    new = h.wait_until(replaced, bound, 0.1, f"a new container for {a}")
    took = time.monotonic() - t0
    LATENCIES.setdefault(("docker rm -f", mode), []).append(took)
    assert h.container_label(name, h.INSTANCE_ID_LABEL) == a
    h.wait_until(lambda: h.docker("exec", name, "cat", "/root/user-data-runs", check=False).returncode == 0,
                 15, 0.25, "user data ran again in the new container")
    runs = h.docker("exec", name, "cat", "/root/user-data-runs").stdout.split()
    assert len(runs) == 1 and runs != first_run, f"user data runs: before {first_run}, new container {runs}"
    assert h.docker("exec", name, "test", "-e", "/root/left-behind", check=False).returncode != 0, (
        "the new container kept the old one's file system"
    )
    doc = h.wait_instance_status(srv, a, lambda d: d["converged"] and d["container"] and d["container"]["id"] == new,
                                 10, "status names the new container")
    assert doc["state"] == "running", h.brief(doc)
    assert h.states(client, [a]) == {a: "running"}
    _report("docker rm -f", mode, took, srv)


SHUTDOWN_RESYNC = {"EC2D_RESYNC_SECONDS": "2"}


def _assert_back_running(srv, a, cid, how, took_from, bound=EVENT_BOUND + 10):
    client = srv.client(srv.recorder)
    name = h.container_name(a)
    info = h.wait_container_state(a, "running", timeout=bound)
    took = time.monotonic() - took_from
    assert info["Id"] == cid, f"docker {how}: a new container instead of restarting the instance's own"
    assert h.docker("exec", name, "cat", "/root/marker").stdout.strip() == "kept", "file system not kept"
    h.wait_resyncs(srv, 2)  # two full resyncs: it stays up, not taken for the instance's own shutdown
    assert h.container_state(name) == "running", h.container_state(name)
    inst = h.describe_instances(client, [a])[a]
    assert inst["State"]["Name"] == "running", inst["State"]
    reason = (inst.get("StateReason") or {}).get("Code")
    assert reason != "Client.InstanceInitiatedShutdown", inst.get("StateReason")
    doc = srv.instance_status(a)
    assert doc["converged"] and doc["state"] == "running" and doc["lastError"] is None, h.brief(doc)
    return took


@pytest.mark.parametrize("behaviour", ["stop", "terminate"])
@pytest.mark.parametrize("how", ["stop", "kill"])
def test_docker_stop_or_kill_from_outside_is_converged_back(ec2d_factory, how, behaviour):
    """`docker stop` / `docker kill` from outside, while the instance runs as asked: the
    engine signalled the container (a `kill` event), so the exit is drift, not the
    instance's own shutdown (commit eef6661): the same container is started again, file
    system intact, state running, whatever InstanceInitiatedShutdownBehavior says."""
    srv = ec2d_factory(extra_env=SHUTDOWN_RESYNC)
    [a] = h.launch_on(srv, 1, InstanceInitiatedShutdownBehavior=behaviour)
    name = h.container_name(a)
    cid = h.container_inspect(name)["Id"]
    h.docker("exec", name, "sh", "-c", "echo kept > /root/marker")
    t0 = time.monotonic()
    h.docker(how, name)
    took = _assert_back_running(srv, a, cid, how, t0)
    h.report_figure(f"drift docker {how} (shutdown behaviour {behaviour}) [events]: running again "
                    f"{took:.2f}s after the docker command was issued")


def test_docker_stop_while_ec2d_is_down_is_converged_back(ec2d_factory):
    """`docker stop` while ec2d itself is not running (crashed): ec2d never sees the kill
    event, yet it is the same drift as above; after the restart the instance should be
    running again in its own container."""
    srv = ec2d_factory(extra_env=SHUTDOWN_RESYNC)
    [a] = h.launch_on(srv, 1)
    name = h.container_name(a)
    cid = h.container_inspect(name)["Id"]
    h.docker("exec", name, "sh", "-c", "echo kept > /root/marker")
    srv.kill()
    h.docker("stop", name)
    t0 = time.monotonic()
    srv.start()
    _assert_back_running(srv, a, cid, "stop (ec2d down)", t0, bound=8)
    # The engine's event log, not the exit status, told ec2d who stopped it.
    exits = [line for line in srv.log_path.read_text(errors="replace").splitlines()
             if "the instance's container exited" in line and a in line]
    assert exits and all("Signalled" in line for line in exits), exits


@pytest.mark.parametrize("drift_server", ["resync"], indirect=True)
def test_docker_stop_with_events_lost_is_converged_back(drift_server):
    """`docker stop` while ec2d's event stream silently loses events (only the resync
    sees the exit): the same drift, so the same outcome should follow: running again.
    The proxy mutes every events request, the event-log query too, so what decides here
    is the exit status: 143 (SIGTERM through the boot script) is not a clean exit."""
    srv, _ = drift_server
    [a] = h.launch_on(srv, 1)
    name = h.container_name(a)
    cid = h.container_inspect(name)["Id"]
    h.docker("exec", name, "sh", "-c", "echo kept > /root/marker")
    t0 = time.monotonic()
    h.docker("stop", name)
    _assert_back_running(srv, a, cid, "stop (events lost)", t0, bound=RESYNC_BOUND)
