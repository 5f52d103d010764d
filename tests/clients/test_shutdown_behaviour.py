"""Instance-initiated shutdown: the instance ends its own main process.

Inside the container (busybox) `kill 1` signals PID 1 (Docker's init, which passes
it to the boot script) and `poweroff` sends PID 1 SIGUSR2; either way the main
process ends without the engine having signalled the container (no `kill` event), which
ec2d takes as EC2's instance-initiated shutdown (src/reconcile/plan.rs):

- InstanceInitiatedShutdownBehavior=stop (default): stopped, StateReason
  Client.InstanceInitiatedShutdown, the exited container kept; StartInstances starts the
  same container again (its file system intact).
- =terminate: terminated, reason Client.InstanceInitiatedShutdown, container removed.

Each test runs its own ec2d with a 2 s resync, so "stays down" is checked across resyncs.
"""

from __future__ import annotations

import time

import pytest

import ec2d_harness as h

ENV = {"EC2D_RESYNC_SECONDS": "2"}
FAST = {"Delay": 0.5, "MaxAttempts": 60}
SHUTDOWN_COMMANDS = {"kill-1": ["kill", "1"], "poweroff": ["poweroff"]}


def _shut_down(name: str, how: str) -> None:
    h.shut_down_from_inside(name, *SHUTDOWN_COMMANDS[how])


def _reason(client, iid) -> dict:
    return h.describe_instances(client, [iid])[iid].get("StateReason") or {}


@pytest.mark.parametrize("how", list(SHUTDOWN_COMMANDS))
def test_shutdown_from_inside_stops_the_instance(ec2d_factory, how):
    srv = ec2d_factory(extra_env=ENV)
    client = srv.client(srv.recorder)
    [a] = h.launch_on(srv, 1)
    name = h.container_name(a)
    cid = h.container_inspect(name)["Id"]
    h.docker("exec", name, "sh", "-c", "echo survived > /root/marker")

    for round_ in (1, 2):  # a second shutdown after StartInstances works the same way
        t0 = time.monotonic()
        _shut_down(name, how)
        client.get_waiter("instance_stopped").wait(InstanceIds=[a], WaiterConfig=FAST)
        took = time.monotonic() - t0
        reason = _reason(client, a)
        assert reason.get("Code") == "Client.InstanceInitiatedShutdown", reason
        if round_ == 1:
            h.wait_resyncs(srv, 2)  # two full resyncs: it stays down, nobody restarts it
        assert h.states(client, [a]) == {a: "stopped"}
        assert h.container_state(name) == "exited", f"round {round_}: {h.container_state(name)}"
        doc = srv.instance_status(a)
        assert doc["converged"] and doc["lastError"] is None, h.brief(doc)

        client.start_instances(InstanceIds=[a])
        client.get_waiter("instance_running").wait(InstanceIds=[a], WaiterConfig=FAST)
        info = h.wait_container_state(a, "running", timeout=10)
        assert info["Id"] == cid, f"round {round_}: StartInstances made a new container"
        assert h.docker("exec", name, "cat", "/root/marker").stdout.strip() == "survived"
        assert _reason(client, a).get("Code") != "Client.InstanceInitiatedShutdown", _reason(client, a)
        h.log(f"{how}: round {round_}: stopped {took:.2f}s after the shutdown, started again")


@pytest.mark.parametrize("how", list(SHUTDOWN_COMMANDS))
def test_shutdown_from_inside_with_terminate_behaviour(ec2d_factory, how):
    srv = ec2d_factory(extra_env=ENV)
    client = srv.client(srv.recorder)
    [a, keep] = h.launch_on(srv, 2, InstanceInitiatedShutdownBehavior="terminate")
    name = h.container_name(a)
    _shut_down(name, how)
    client.get_waiter("instance_terminated").wait(InstanceIds=[a], WaiterConfig=FAST)
    h.wait_container_state(a, "absent", timeout=15)
    reason = _reason(client, a)
    assert reason.get("Code") == "Client.InstanceInitiatedShutdown", reason
    h.wait_resyncs(srv, 2)  # two full resyncs: never booted again
    assert h.container_state(name) == "absent"
    assert h.states(client, [a, keep]) == {a: "terminated", keep: "running"}
    assert h.container_state(h.container_name(keep)) == "running"
