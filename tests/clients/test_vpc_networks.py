"""Every VPC a Docker network, with boto3 and the Docker CLI on a real engine.

Two instances launched in one subnet of a new VPC get the private addresses RunInstances
answered (inside the subnet) and reach each other there; an instance of another VPC cannot.
`docker network rm` of a VPC's network is undone with every address kept; ec2d killed with
SIGKILL and started again adopts its networks; a VPC whose block the engine refuses (two
stacks with one CIDR side by side) still boots its instances, on the default bridge, and says
why; EC2D_VPC_NETWORKS=0 keeps every container on the default bridge.
"""

from __future__ import annotations

import json
import time

import ec2d_harness as h

WAIT = {"Delay": 0.5, "MaxAttempts": 120}


def _network_in_vpc(ec2, vpc_cidr: str, subnet_cidr: str) -> tuple[str, str]:
    vpc = ec2.create_vpc(CidrBlock=vpc_cidr)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=subnet_cidr)["Subnet"]["SubnetId"]
    return vpc, subnet


def _launch(ec2, cleanup, subnet: str, count: int = 1) -> list[dict]:
    answer = ec2.run_instances(ImageId=h.TEST_AMI_ID, MinCount=count, MaxCount=count, SubnetId=subnet)
    instances = answer["Instances"]
    cleanup.track_instances(i["InstanceId"] for i in instances)
    ec2.get_waiter("instance_running").wait(InstanceIds=[i["InstanceId"] for i in instances], WaiterConfig=WAIT)
    return instances


def _networks_of(container: str) -> dict[str, dict]:
    """The container's networks as docker inspect shows them: name -> {NetworkID, IPAddress}."""
    out = h.docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", container).stdout
    return json.loads(out)


def _vpc_networks(vpc_id: str) -> list[dict]:
    out = h.docker(
        "network", "ls", "--no-trunc", "--filter", f"label=ec2d.vpc-id={vpc_id}", "--format", "{{.ID}} {{.Name}}"
    ).stdout
    return [dict(zip(("id", "name"), line.split())) for line in out.splitlines() if line.strip()]


def _network_story(srv, *vpc_ids: str) -> str:
    """What a failed network assertion needs: the engine's networks with their blocks, and
    what ec2d logged of these VPCs."""
    nets = h.docker(
        "network", "ls", "--no-trunc", "--format", "{{.Name}} {{.Labels}}", check=False
    ).stdout
    blocks = h.docker(
        "network", "inspect", "--format", "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{end}}",
        *[line.split()[0] for line in nets.splitlines() if line.strip()], check=False,
    ).stdout
    logged = [line for line in srv.log_tail(2000).splitlines() if any(v in line for v in vpc_ids)]
    return "networks:\n" + blocks + "ec2d on these VPCs:\n" + "\n".join(logged[-40:])


def _shown_ip(ec2, instance_id: str) -> str | None:
    (res,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return res["Instances"][0].get("PrivateIpAddress")


def _ping(from_instance: str, address: str) -> bool:
    p = h.docker("exec", h.container_name(from_instance), "ping", "-c", "1", "-W", "2", address, check=False)
    return p.returncode == 0


def _until(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen within {timeout}s (last: {last!r})")


def test_one_subnet_reaches_itself_at_the_answered_addresses_and_not_another_vpc(ec2, cleanup):
    started = time.monotonic()
    vpc_a, subnet_a = _network_in_vpc(ec2, "10.61.0.0/16", "10.61.1.0/24")
    ec2.get_waiter("vpc_available").wait(VpcIds=[vpc_a], WaiterConfig=WAIT)
    available = time.monotonic() - started
    pair = _launch(ec2, cleanup, subnet_a, count=2)
    running = time.monotonic() - started
    h.log(f"VPC available after {available:.2f}s, two instances in it running after {running:.2f}s")
    answered = {i["InstanceId"]: i["PrivateIpAddress"] for i in pair}
    assert all(ip.startswith("10.61.1.") for ip in answered.values()), answered
    assert len(set(answered.values())) == 2
    (network,) = _vpc_networks(vpc_a)
    for instance_id, ip in answered.items():
        assert _shown_ip(ec2, instance_id) == ip
        attached = _networks_of(h.container_name(instance_id))
        assert list(attached) == [network["name"]], attached
        assert attached[network["name"]]["IPAddress"] == ip
        # The interface has the instance's own MAC, the one the API (and IMDS) answer.
        shown_mac = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0][
            "NetworkInterfaces"
        ][0]["MacAddress"]
        assert attached[network["name"]]["MacAddress"] == shown_mac
    a, b = pair[0]["InstanceId"], pair[1]["InstanceId"]
    assert _ping(a, answered[b]) and _ping(b, answered[a])
    tcp = h.docker("exec", "-d", h.container_name(b), "sh", "-c", "echo hello-from-b | nc -l -p 7070")
    assert tcp.returncode == 0
    got = _until(
        "a TCP answer from b",
        lambda: h.docker("exec", h.container_name(a), "sh", "-c", f"nc -w 2 {answered[b]} 7070", check=False).stdout,
    )
    assert "hello-from-b" in got

    vpc_b, subnet_b = _network_in_vpc(ec2, "10.62.0.0/16", "10.62.1.0/24")
    (other,) = _launch(ec2, cleanup, subnet_b)
    assert other["PrivateIpAddress"].startswith("10.62.1.")
    assert not _ping(other["InstanceId"], answered[a]), "another VPC must not reach this one"

    # Stop and start keep the address; the last instance's termination removes the network.
    ec2.stop_instances(InstanceIds=[a])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[a], WaiterConfig=WAIT)
    ec2.start_instances(InstanceIds=[a])
    ec2.get_waiter("instance_running").wait(InstanceIds=[a], WaiterConfig=WAIT)
    assert _shown_ip(ec2, a) == answered[a]
    assert _networks_of(h.container_name(a))[network["name"]]["IPAddress"] == answered[a]
    ec2.terminate_instances(InstanceIds=[a, b, other["InstanceId"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[a, b, other["InstanceId"]], WaiterConfig=WAIT)
    _until("the VPCs' networks to be removed", lambda: not _vpc_networks(vpc_a) and not _vpc_networks(vpc_b))


def test_a_removed_network_is_made_again_and_sigkill_adopts_it(ec2d_factory):
    srv = ec2d_factory()
    ec2 = srv.client(srv.recorder)
    vpc, subnet = _network_in_vpc(ec2, "10.64.0.0/16", "10.64.3.0/24")
    pair = _launch(ec2, srv.cleanup, subnet, count=2)
    srv.store_id = h.learn_store_id(srv, pair[0]["InstanceId"])
    # The status document names the store its Docker objects are labelled with.
    assert srv.status()["storeId"] == srv.store_id
    answered = {i["InstanceId"]: i["PrivateIpAddress"] for i in pair}
    (network,) = _vpc_networks(vpc)

    # Behind ec2d's back: every container taken off the network, then the network removed.
    for instance_id in answered:
        h.docker("network", "disconnect", "-f", network["name"], h.container_name(instance_id))
    h.docker("network", "rm", network["name"])

    def rejoined():
        nets = _vpc_networks(vpc)
        if len(nets) != 1 or nets[0]["id"] == network["id"]:
            return None
        for instance_id, ip in answered.items():
            attached = _networks_of(h.container_name(instance_id)).get(nets[0]["name"])
            if not attached or attached.get("IPAddress") != ip or attached.get("NetworkID") != nets[0]["id"]:
                return None
        return nets[0]

    remade = _until("the network made again with both instances at their addresses", rejoined)
    a, b = list(answered)
    assert _ping(a, answered[b])

    # A crash: the network and every address survive a restart, with no second network.
    srv.kill()
    srv.start()
    ec2 = srv.client(srv.recorder)  # a restart listens on a new port
    time.sleep(2)
    assert _vpc_networks(vpc) == [remade]
    for instance_id, ip in answered.items():
        assert _shown_ip(ec2, instance_id) == ip
        assert _networks_of(h.container_name(instance_id))[remade["name"]]["IPAddress"] == ip
    assert _ping(b, answered[a])


def test_a_refused_block_boots_on_the_default_bridge_and_says_why(ec2d_factory):
    srv = ec2d_factory()
    ec2 = srv.client(srv.recorder)
    first_vpc, first_subnet = _network_in_vpc(ec2, "10.65.0.0/16", "10.65.0.0/24")
    second_vpc, second_subnet = _network_in_vpc(ec2, "10.65.0.0/16", "10.65.0.0/24")
    (first,) = _launch(ec2, srv.cleanup, first_subnet)
    (second,) = _launch(ec2, srv.cleanup, second_subnet)
    assert first["PrivateIpAddress"] == second["PrivateIpAddress"] == "10.65.0.4", "EC2 lets two VPCs share a block"
    assert len(_vpc_networks(first_vpc)) == 1, _network_story(srv, first_vpc, second_vpc)
    assert _vpc_networks(second_vpc) == [], _network_story(srv, first_vpc, second_vpc)

    attached = _networks_of(h.container_name(second["InstanceId"]))
    assert list(attached) == ["bridge"], attached
    bridge_ip = attached["bridge"]["IPAddress"]
    assert _shown_ip(ec2, second["InstanceId"]) == bridge_ip, "the address shown is the one it has"
    status = srv.instance_status(second["InstanceId"])
    assert status["privateIpAddress"] == bridge_ip
    assert second_vpc in (status["networkWarning"] or ""), status
    assert any(r["vpcId"] == second_vpc for r in srv.status()["refusedVpcNetworks"])
    assert f"{bridge_ip}:22" in srv.log_tail(400), "the SSH line shows the real address"
    assert "Docker refused the VPC's network" in srv.log_tail(400)
    # The first VPC is unaffected.
    assert _shown_ip(ec2, first["InstanceId"]) == "10.65.0.4"


def test_vpc_networks_off_keeps_the_default_bridge(ec2d_factory):
    srv = ec2d_factory(extra_env={"EC2D_VPC_NETWORKS": "0"})
    ec2 = srv.client(srv.recorder)
    vpc, subnet = _network_in_vpc(ec2, "10.66.0.0/16", "10.66.0.0/24")
    answer = ec2.run_instances(ImageId=h.TEST_AMI_ID, MinCount=1, MaxCount=1, SubnetId=subnet)
    (instance,) = answer["Instances"]
    srv.cleanup.track_instances([instance["InstanceId"]])
    assert "PrivateIpAddress" not in instance, "no address before the engine gives one"
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance["InstanceId"]], WaiterConfig=WAIT)
    attached = _networks_of(h.container_name(instance["InstanceId"]))
    assert list(attached) == ["bridge"]
    assert _shown_ip(ec2, instance["InstanceId"]) == attached["bridge"]["IPAddress"]
    assert _vpc_networks(vpc) == []
