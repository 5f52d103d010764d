"""The host's IMDS NAT rules follow instances launched and terminated with boto3.

The session's ec2d (docker mode, default EC2D_IMDS_LISTEN port) must have wired its
nat chain: /_ec2d/status says so under imdsRoutes, and iptables shows one REDIRECT
rule for the instance's container address, gone once the instance is terminated.
The request from inside the instance through 169.254.169.254 is tested in
tests/docker_imds_routes.rs (with a stub listener) until the IMDS listener is merged.
"""

import json
import subprocess
import time
import urllib.request

import ec2d_harness as h


def _routes(ec2d):
    with urllib.request.urlopen(f"{ec2d.url}/_ec2d/status", timeout=10) as r:
        return json.load(r)["imdsRoutes"]


def _chain_rules(routes):
    out = subprocess.run(
        [routes["backend"], "-w", "5", "-t", "nat", "-S", routes["chain"]],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _wait(what, check, timeout=60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = check()
        if ok:
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what}: last seen {last!r}")


def test_a_redirect_rule_follows_the_instance(ec2d, ec2, launch, cleanup):
    routes = _routes(ec2d)
    assert routes["active"] is True, routes
    assert routes["chain"].startswith("EC2D-IMDS-"), routes
    port = routes["port"]

    _, ids = launch()
    instance = ec2.describe_instances(InstanceIds=ids)["Reservations"][0]["Instances"][0]
    ip = instance["PrivateIpAddress"]
    rule = (f"-s {ip}/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 "
            f"-j REDIRECT --to-ports {port}")

    _wait("the instance's address listed", lambda: (ip in (r := _routes(ec2d))["addresses"], r))
    assert rule in _chain_rules(routes)

    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=h.WAITER)
    _wait("the instance's address gone", lambda: (ip not in (r := _routes(ec2d))["addresses"], r))
    assert rule not in _chain_rules(routes)
