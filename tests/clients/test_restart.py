"""One SIGKILL of ec2d and a restart on the same data dir, seen through boto3: the
basic promise that an acknowledged answer survives a crash, checked one situation at a
time with fixed instances: settled instances (running, stopped) come back as they were
in their own containers and are still driven; a launch acknowledged just before the kill
is not lost; a terminated instance stays terminated.

Repeated crashes under a random workload, large numbers of instances, adoption of every
container state, orphan and foreign containers and record collection are in
test_recovery.py.

Uses its own ec2d process (own port, own data dir, the default 30 s resync, so what
converges after a restart is the start-up resync's doing), so the session server and the
other tests are not disturbed."""

import pytest

import ec2d_harness as h


@pytest.fixture
def own_server(request, busybox_ami, workdir, recorder):
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


def test_restart_after_sigkill(own_server, launch):
    """Settled instances (one running, one stopped) survive a SIGKILL of ec2d:
    listed with the same state, their containers adopted (not recreated), and
    still driven by the restarted server."""
    srv = own_server
    ec2 = srv.client(srv.recorder)
    tr = srv.cleanup

    _, [a] = launch(client=ec2, tracker=tr)
    _, [b] = launch(client=ec2, tracker=tr)
    ec2.stop_instances(InstanceIds=[b])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[b], WaiterConfig=h.WAITER)
    a_cid = h.wait_container_state(a, "running", timeout=10)["Id"]
    b_cid = h.wait_container_state(b, "paused", timeout=10)["Id"]

    srv.kill()  # SIGKILL: no graceful shutdown
    srv.start()
    ec2 = srv.client(srv.recorder)

    listed = h.describe_instances(ec2)
    seen = {i: listed[i]["State"]["Name"] if i in listed else "<not listed>" for i in (a, b)}
    assert seen == {a: "running", b: "stopped"}, f"after restart: {seen}; listed: {sorted(listed)}"

    # converged, with the same containers: once the start-up resync has reconciled both
    h.wait_resyncs(srv, 1, since_start=True)
    assert h.states(ec2, [a, b]) == {a: "running", b: "stopped"}
    a_info = h.wait_container_state(a, "running", timeout=10)
    b_info = h.wait_container_state(b, "paused", timeout=10)
    assert (a_info["Id"], b_info["Id"]) == (a_cid, b_cid), "containers were recreated instead of adopted"

    # the restarted server still drives them
    ec2.start_instances(InstanceIds=[b])
    ec2.get_waiter("instance_running").wait(InstanceIds=[b], WaiterConfig=h.WAITER)
    h.wait_container_state(b, "running", timeout=10)
    ec2.terminate_instances(InstanceIds=[a, b])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[a, b], WaiterConfig=h.WAITER)
    for i in (a, b):
        h.wait_container_state(i, "absent", timeout=15)


def test_restart_right_after_run_instances(own_server, launch):
    """ec2d is SIGKILLed right after answering RunInstances (instance pending,
    container maybe half made). An acknowledged launch must not be lost: after
    the restart the instance is listed and reaches running, with one container."""
    srv = own_server
    ec2 = srv.client(srv.recorder)
    resp, [c] = launch(client=ec2, tracker=srv.cleanup, wait=False)
    h.assert_state(resp["Instances"][0]["State"], "pending")

    srv.kill()
    before_restart = h.container_state(h.container_name(c))
    srv.start()
    ec2 = srv.client(srv.recorder)

    listed = h.describe_instances(ec2)
    assert c in listed, (
        f"acknowledged RunInstances lost by SIGKILL: {c} not listed after restart "
        f"(its container was {before_restart!r} at the kill; listed: {sorted(listed)})"
    )
    assert listed[c]["State"]["Name"] in ("pending", "running"), listed[c]["State"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[c], WaiterConfig=h.WAITER)
    h.wait_container_state(c, "running", timeout=10)
    names = list(h.list_ec2_containers().values())
    assert names.count(h.container_name(c)) == 1, names


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
    h.wait_resyncs(srv, 1, since_start=True)  # the start-up resync had its chance to (wrongly) recreate it
    assert h.container_state(h.container_name(a)) == "absent"
    assert h.states(ec2, [a]) == {a: "terminated"}
