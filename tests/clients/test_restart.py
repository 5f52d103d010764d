"""Crash recovery: SIGKILL ec2d and start it again on the same data dir.

Uses its own ec2d process (own port, own data dir), so the session server and
the other tests are not disturbed."""

import time

import pytest

import ec2d_harness as h


@pytest.fixture
def own_server(request, test_ami, workdir, recorder):
    tag = request.node.name
    srv = h.Ec2dServer(h.ec2d_binary(), workdir / f"data-{tag}", workdir / f"ec2d-{tag}.log", name=f"ec2d[{tag}]")
    srv.recorder = recorder
    try:
        srv.start()
        err = None
    except RuntimeError as e:
        err = str(e)
    if err:
        pytest.fail(err, pytrace=False)
    cleanup = h.Ec2Cleanup(lambda: srv.client() if srv.alive() else srv.start().client())
    srv.cleanup = cleanup
    yield srv
    for p in cleanup.run():
        print(f"[ec2d-tests] cleanup problem: {p}")
    srv.stop()


def test_restart_after_sigkill(own_server, launch, test_ami):
    srv = own_server
    ec2 = srv.client(srv.recorder)
    tr = srv.cleanup

    # A: running.  B: stopped.  C: launched and ec2d killed right away (pending).
    _, [a] = launch(client=ec2, tracker=tr)
    _, [b] = launch(client=ec2, tracker=tr)
    ec2.stop_instances(InstanceIds=[b])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[b], WaiterConfig=h.WAITER)
    h.wait_container_state(a, "running", timeout=10)
    h.wait_container_state(b, "paused", timeout=10)
    a_cid = h.container_inspect(h.container_name(a))["Id"]
    b_cid = h.container_inspect(h.container_name(b))["Id"]
    resp, [c] = launch(client=ec2, tracker=tr, wait=False)
    h.assert_state(resp["Instances"][0]["State"], "pending")

    srv.kill()  # SIGKILL: no graceful shutdown
    time.sleep(0.5)
    srv.start()
    ec2 = srv.client(srv.recorder)

    # everything is still there ...
    listed = h.describe_instances(ec2)
    assert {a, b, c} <= set(listed), f"after restart, listed: {sorted(listed)}"
    assert listed[a]["State"]["Name"] == "running", listed[a]["State"]
    assert listed[b]["State"]["Name"] == "stopped", listed[b]["State"]
    assert listed[c]["State"]["Name"] in ("pending", "running"), listed[c]["State"]

    # ... and converges to what was asked for
    ec2.get_waiter("instance_running").wait(InstanceIds=[a, c], WaiterConfig=h.WAITER)
    assert h.states(ec2, [b]) == {b: "stopped"}
    a_info = h.wait_container_state(a, "running", timeout=10)
    b_info = h.wait_container_state(b, "paused", timeout=10)
    h.wait_container_state(c, "running", timeout=10)
    # the surviving containers were adopted, not recreated
    assert a_info["Id"] == a_cid and b_info["Id"] == b_cid
    # exactly one container per instance
    names = list(h.list_ec2_containers().values())
    for i in (a, b, c):
        assert names.count(h.container_name(i)) == 1, names

    # and the restarted server still drives them
    ec2.start_instances(InstanceIds=[b])
    ec2.get_waiter("instance_running").wait(InstanceIds=[b], WaiterConfig=h.WAITER)
    h.wait_container_state(b, "running", timeout=10)
    ec2.terminate_instances(InstanceIds=[a, b, c])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[a, b, c], WaiterConfig=h.WAITER)
    for i in (a, b, c):
        h.wait_container_state(i, "absent", timeout=15)


def test_restart_keeps_terminated(own_server, launch):
    """A terminated instance stays listed (terminated) across a restart and
    is not brought back to life."""
    srv = own_server
    ec2 = srv.client(srv.recorder)
    _, [a] = launch(client=ec2, tracker=srv.cleanup)
    ec2.terminate_instances(InstanceIds=[a])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[a], WaiterConfig=h.WAITER)
    h.wait_container_state(a, "absent", timeout=15)

    srv.kill()
    srv.start()
    ec2 = srv.client(srv.recorder)
    assert h.states(ec2, [a]) == {a: "terminated"}
    time.sleep(2)  # give the controller a moment to (wrongly) recreate it
    assert h.container_state(h.container_name(a)) == "absent"
    assert h.states(ec2, [a]) == {a: "terminated"}
