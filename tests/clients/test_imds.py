"""The instance metadata service from inside real busybox instances at http://169.254.169.254,
as software on EC2 reaches it: the host's NAT rules (`hostnet`) redirect each instance's requests
to ec2d's IMDS listener, which knows the caller by the connection's source address.

Each instance reads its own id, type, zone, address and user data (IMDSv1 with busybox `wget`,
IMDSv2 with a raw `PUT` through busybox `nc`), another instance's token is refused,
`HttpTokens=required` makes v1 answer 401, the identity document parses, and the host, which
reaches the listener directly, gets 404.

The module runs its own ec2d with the IMDS on a free port (EC2D_IMDS_LISTEN), so the shared
session server's defaults are left alone. Log: <workdir>/ec2d-imds.log.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

import ec2d_harness as h


@pytest.fixture(scope="module")
def srv(busybox_ami, workdir):
    port = h.free_port()
    s = h.Ec2dServer(
        h.ec2d_binary(),
        workdir / "data-imds",
        workdir / "ec2d-imds.log",
        name="ec2d[imds]",
        extra_env={"EC2D_IMDS": "1", "EC2D_IMDS_LISTEN": f"0.0.0.0:{port}", "EC2_DOCKER_FLAGS": ""},
    )
    s.imds_port = port
    s.cleanup = h.Ec2Cleanup(lambda: s.client())
    try:
        s.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield s
    problems = s.cleanup.run()
    rc = s.stop()
    assert not problems, problems
    if rc not in (0, None):
        print(f"\n[ec2d-tests] {s.name} exited with {rc} after SIGTERM; log: {s.log_path}")


IMDS = "169.254.169.254"


def inside(instance_id: str, script: str, check: bool = True):
    return h.docker("exec", h.container_name(instance_id), "sh", "-c", script, check=check, timeout=30)


def wget(srv, instance_id: str, path: str, headers: dict | None = None) -> tuple[int, str]:
    """GET from inside the instance; (status, body). busybox wget prints the status on failure."""
    url = f"http://{IMDS}{path}"
    hdrs = " ".join(f"--header '{k}: {v}'" for k, v in (headers or {}).items())
    r = inside(instance_id, f"wget -q -O - {hdrs} '{url}'", check=False)
    if r.returncode == 0:
        return 200, r.stdout
    for code in (400, 401, 403, 404, 405):
        if f" {code} " in r.stderr or f"{code} " in r.stderr:
            return code, ""
    raise AssertionError(f"wget {url}: rc={r.returncode} {r.stderr!r}")


def put_token(srv, instance_id: str, ttl: str) -> tuple[str, str]:
    """PUT /latest/api/token from inside, raw over busybox nc: (status line, body)."""
    request = (
        "PUT /latest/api/token HTTP/1.0\\r\\n"
        f"X-aws-ec2-metadata-token-ttl-seconds: {ttl}\\r\\n"
        "Content-Length: 0\\r\\n\\r\\n"
    )
    # stdin stays open a moment: some nc builds stop reading when it ends (HTTP/1.0: the
    # server closes once it has answered).
    r = inside(instance_id, f"(printf '{request}'; sleep 2) | nc {IMDS} 80")
    head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
    assert head, f"no answer to PUT: rc={r.returncode} out={r.stdout!r} err={r.stderr!r}"
    return head.splitlines()[0], body


def test_instances_read_their_own_metadata_v1_and_v2(srv):
    client = srv.client()
    user_data = "#!/bin/sh\necho from-user-data\n"
    a = h.launch_on(srv, UserData=user_data, Placement={"AvailabilityZone": "us-east-1b"})[0]
    b = h.launch_on(srv)[0]
    described = h.describe_instances(client, [a, b])

    for iid in (a, b):
        me = described[iid]
        assert wget(srv, iid, "/latest/meta-data/instance-id") == (200, iid)
        assert wget(srv, iid, "/latest/meta-data/instance-type") == (200, "t3.micro")
        assert wget(srv, iid, "/latest/meta-data/local-ipv4") == (200, me["PrivateIpAddress"])
        assert wget(srv, iid, "/latest/meta-data/placement/availability-zone") == (
            200,
            me["Placement"]["AvailabilityZone"],
        )
        # cloud-init's paths answer as latest does.
        assert wget(srv, iid, "/2009-04-04/meta-data/instance-id") == (200, iid)
        status, doc = wget(srv, iid, "/latest/dynamic/instance-identity/document")
        assert status == 200
        identity = json.loads(doc)
        assert identity["instanceId"] == iid
        assert identity["imageId"] == h.TEST_AMI_ID
        assert identity["privateIp"] == me["PrivateIpAddress"]
        assert identity["region"] == "us-east-1"
    assert wget(srv, a, "/latest/user-data") == (200, user_data)
    assert wget(srv, b, "/latest/user-data")[0] == 404

    # IMDSv2: a token, then reads with it; the other instance cannot use it.
    status, token = put_token(srv, a, "21600")
    assert " 200 " in status, status
    assert wget(srv, a, "/latest/meta-data/instance-id", {"X-aws-ec2-metadata-token": token}) == (200, a)
    assert wget(srv, b, "/latest/meta-data/instance-id", {"X-aws-ec2-metadata-token": token})[0] == 401
    status, _ = put_token(srv, a, "0")
    assert " 400 " in status, status

    # HttpTokens=required: v1 answers 401 at once, v2 still answers.
    client.modify_instance_metadata_options(InstanceId=a, HttpTokens="required")
    assert wget(srv, a, "/latest/meta-data/instance-id")[0] == 401
    assert wget(srv, a, "/latest/meta-data/instance-id", {"X-aws-ec2-metadata-token": token}) == (200, a)
    assert wget(srv, b, "/latest/meta-data/instance-id") == (200, b)


def test_the_host_gets_nothing(srv):
    url = f"http://127.0.0.1:{srv.imds_port}/latest/meta-data/instance-id"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=5)
    assert e.value.code == 404
    assert e.value.read() == b""


# --------------------------------------------------------------------------- a Debian instance

AWSCLI_IMAGE = "ec2d-test/debian-awscli:latest"
AWSCLI_AMI_ID = "ami-0a5c11a5c11a5c11a"
AWSCLI_AMI_TAG = f"{h.AMI_REPO_PREFIX}debian-awscli:{AWSCLI_AMI_ID}"

# Run inside the instance by its own python3: the v1 and v2 flows as an SDK does them.
IMDS_FLOWS = r"""
import json, sys, urllib.error, urllib.request
BASE = "http://169.254.169.254"
def call(path, method="GET", headers=None):
    req = urllib.request.Request(BASE + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return [r.status, r.read().decode()]
    except urllib.error.HTTPError as e:
        return [e.code, ""]
status, token = call("/latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": "120"})
out = {"token": status}
for path in sys.argv[1:]:
    out["v1 " + path] = call(path)
    out["v2 " + path] = call(path, headers={"X-aws-ec2-metadata-token": token})
print(json.dumps(out))
"""
PATHS = [
    "/latest/meta-data/instance-id",
    "/latest/meta-data/instance-type",
    "/latest/meta-data/placement/availability-zone",
    "/latest/meta-data/local-ipv4",
    "/latest/meta-data/ami-launch-index",
    "/latest/meta-data/iam/info",
    "/latest/meta-data/mac",
    "/latest/user-data",
    "/latest/dynamic/instance-identity/document",
]


@pytest.fixture(scope="module")
def awscli_ami(srv):
    if h.image_id(AWSCLI_IMAGE) is None:
        pytest.fail(f"test image {AWSCLI_IMAGE} missing: run tests/support/build-test-images.sh awscli", pytrace=False)
    existed = h.image_id(AWSCLI_AMI_TAG) is not None
    h.docker("tag", AWSCLI_IMAGE, AWSCLI_AMI_TAG)
    h.wait_until(
        # By filter, not ImageIds: an id not discovered yet is an error there, not an empty list.
        lambda: srv.client().describe_images(Filters=[{"Name": "image-id", "Values": [AWSCLI_AMI_ID]}])["Images"],
        30,
        0.5,
        "the AMI discovered",
    )
    yield AWSCLI_AMI_ID
    if not existed:
        h.remove_tags([AWSCLI_AMI_TAG])


def flows(instance_id: str) -> dict:
    r = h.docker("exec", h.container_name(instance_id), "python3", "-c", IMDS_FLOWS, *PATHS, timeout=60)
    return json.loads(r.stdout)


def test_debian_instances_read_their_own_metadata_and_the_aws_cli_finds_its_role(srv, awscli_ami):
    """Two Debian instances of one launch, with an instance profile: each reads its own data
    by v1 and v2 (python's urllib, as the SDKs), v1 stops at HttpTokens=required, and the aws CLI
    inside, configured by nothing in the image, takes the role's credentials from IMDS and the
    endpoint from AWS_ENDPOINT_URL, and lists the instance."""
    client = srv.client()
    user_data = "#!/bin/sh\necho debian-user-data\n"
    ids = h.launch_on(
        srv,
        count=2,
        image_id=awscli_ami,
        UserData=user_data,
        IamInstanceProfile={"Name": "reader"},
        Placement={"AvailabilityZone": "us-east-1c"},
    )
    described = h.describe_instances(client, ids)
    for iid in ids:
        me = described[iid]
        got = flows(iid)
        assert got["token"] == 200, got
        for version in ("v1", "v2"):
            assert got[f"{version} /latest/meta-data/instance-id"] == [200, iid]
            assert got[f"{version} /latest/meta-data/instance-type"] == [200, "t3.micro"]
            assert got[f"{version} /latest/meta-data/placement/availability-zone"] == [200, "us-east-1c"]
            assert got[f"{version} /latest/meta-data/local-ipv4"] == [200, me["PrivateIpAddress"]]
            assert got[f"{version} /latest/meta-data/ami-launch-index"] == [200, str(me["AmiLaunchIndex"])]
            assert got[f"{version} /latest/user-data"] == [200, user_data]
            status, info = got[f"{version} /latest/meta-data/iam/info"]
            assert status == 200 and json.loads(info)["InstanceProfileArn"].endswith(":instance-profile/reader")
            status, doc = got[f"{version} /latest/dynamic/instance-identity/document"]
            identity = json.loads(doc)
            assert identity["instanceId"] == iid and identity["imageId"] == awscli_ami
            assert identity["privateIp"] == me["PrivateIpAddress"]
            assert identity["availabilityZone"] == "us-east-1c"
    # The interface inside has the MAC that IMDS and the API give the instance.
    first = ids[0]
    mac = inside(first, "cat /sys/class/net/eth0/address").stdout.strip()
    assert flows(first)["v1 /latest/meta-data/mac"] == [200, mac]
    assert described[first]["NetworkInterfaces"][0]["MacAddress"] == mac

    # The aws CLI, unconfigured: credentials from IMDS (the role), region and endpoint from the
    # environment ec2d gives every instance.
    name = h.container_name(first)
    listing = h.docker("exec", name, "aws", "configure", "list", timeout=60).stdout
    assert "iam-role" in listing, listing
    out = h.docker(
        "exec", name, "aws", "ec2", "describe-instances", "--instance-ids", first, "--output", "json", timeout=90
    ).stdout
    reservations = json.loads(out)["Reservations"]
    assert [i["InstanceId"] for r in reservations for i in r["Instances"]] == [first]
    everyone = json.loads(h.docker("exec", name, "aws", "ec2", "describe-instances", timeout=90).stdout)
    assert set(ids) <= {i["InstanceId"] for r in everyone["Reservations"] for i in r["Instances"]}

    # HttpTokens=required: at once, v1 is refused and v2 still answers; the other instance is
    # untouched.
    client.modify_instance_metadata_options(InstanceId=first, HttpTokens="required")
    got = flows(first)
    assert got["v1 /latest/meta-data/instance-id"] == [401, ""]
    assert got["v2 /latest/meta-data/instance-id"] == [200, first]
    assert flows(ids[1])["v1 /latest/meta-data/instance-id"] == [200, ids[1]]
