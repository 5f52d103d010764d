"""EC2 error codes as real clients see them, and the service endpoints."""

import json
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

import ec2d_harness as h

UNKNOWN_ID = "i-0123456789abcdef0"
MALFORMED_ID = "i-xyz"
UNKNOWN_AMI = "ami-12345678"


def _client_error(excinfo) -> tuple[str, int]:
    err = excinfo.value.response
    return err.get("Error", {}).get("Code"), err.get("ResponseMetadata", {}).get("HTTPStatusCode")


def test_run_instances_unknown_ami_cli(aws, ec2, cleanup):
    before = set(h.describe_instances(ec2))
    res = aws("run-instances", "--image-id", UNKNOWN_AMI, "--count", "1")
    if res.rc == 0 and res.json:
        cleanup.track_instances(i["InstanceId"] for i in res.json.get("Instances", []))
    assert res.rc != 0, f"expected a failure:\n{res.describe()}"
    assert "InvalidAMIID.NotFound" in res.stderr, res.describe()
    assert res.error_code() == "InvalidAMIID.NotFound", res.describe()
    assert set(h.describe_instances(ec2)) == before, "an instance was recorded for a failed RunInstances"


def test_run_instances_unknown_ami_boto3(ec2, cleanup):
    before = set(h.describe_instances(ec2))
    with pytest.raises(ClientError) as ei:
        resp = ec2.run_instances(ImageId=UNKNOWN_AMI, MinCount=1, MaxCount=1)
        cleanup.track_instances(i["InstanceId"] for i in resp["Instances"])
    code, status = _client_error(ei)
    assert code == "InvalidAMIID.NotFound", ei.value.response
    assert status == 400, ei.value.response
    assert set(h.describe_instances(ec2)) == before, "an instance was recorded for a failed RunInstances"


def test_stop_unknown_instance(ec2, aws):
    with pytest.raises(ClientError) as ei:
        ec2.stop_instances(InstanceIds=[UNKNOWN_ID])
    code, status = _client_error(ei)
    assert code == "InvalidInstanceID.NotFound", ei.value.response
    assert status == 400, ei.value.response

    res = aws("stop-instances", "--instance-ids", UNKNOWN_ID)
    assert res.rc != 0 and res.error_code() == "InvalidInstanceID.NotFound", res.describe()


def test_stop_malformed_instance_id(ec2, aws):
    with pytest.raises(ClientError) as ei:
        ec2.stop_instances(InstanceIds=[MALFORMED_ID])
    code, status = _client_error(ei)
    assert code == "InvalidInstanceID.Malformed", ei.value.response
    assert status == 400, ei.value.response

    res = aws("stop-instances", "--instance-ids", MALFORMED_ID)
    assert res.rc != 0 and res.error_code() == "InvalidInstanceID.Malformed", res.describe()


def test_describe_unknown_instance(ec2):
    with pytest.raises(ClientError) as ei:
        ec2.describe_instances(InstanceIds=[UNKNOWN_ID])
    assert _client_error(ei)[0] == "InvalidInstanceID.NotFound", ei.value.response


def test_terminate_unknown_instance(ec2):
    with pytest.raises(ClientError) as ei:
        ec2.terminate_instances(InstanceIds=[UNKNOWN_ID])
    assert _client_error(ei)[0] == "InvalidInstanceID.NotFound", ei.value.response


def test_unknown_action_raw_http(endpoint_url):
    status, _headers, body = h.http_post_form(endpoint_url + "/", "Action=NoSuchAction&Version=2016-11-15")
    assert status == 400, (status, body)
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise AssertionError(f"error body is not XML ({e}): {body!r}") from None
    assert root.tag == "Response", body
    code = root.find("./Errors/Error/Code")
    assert code is not None and code.text == "InvalidAction", body
    msg = root.find("./Errors/Error/Message")
    assert msg is not None and (msg.text or "").strip(), body
    assert root.find("./RequestID") is not None, f"no RequestID element: {body}"


def test_health_and_status_endpoints(endpoint_url):
    status, body = h.http_get(endpoint_url + "/_ec2d/health")
    assert status == 200, (status, body)
    status, body = h.http_get(endpoint_url + "/_ec2d/status")
    assert status == 200, (status, body)
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as e:
        raise AssertionError(f"/_ec2d/status is not JSON ({e}): {body[:500]!r}") from None
    assert isinstance(doc, dict), doc


# --- issue 11: EC2's exact errors and key formats, as boto3 sends and reads them -------------


def _error(excinfo) -> tuple[str, str, int]:
    err = excinfo.value.response
    return (
        err.get("Error", {}).get("Code"),
        err.get("Error", {}).get("Message"),
        err.get("ResponseMetadata", {}).get("HTTPStatusCode"),
    )


def test_state_changes_without_ids_are_no_instances_specified(ec2):
    # An empty list passes botocore's validation and sends no InstanceId at all.
    for call in (ec2.terminate_instances, ec2.stop_instances, ec2.start_instances, ec2.reboot_instances):
        with pytest.raises(ClientError) as ei:
            call(InstanceIds=[])
        assert _error(ei) == ("InvalidParameterCombination", "No instances specified", 400), call


def test_tags_without_resources_name_resource_id_set(ec2):
    with pytest.raises(ClientError) as ei:
        ec2.create_tags(Resources=[], Tags=[{"Key": "k", "Value": "v"}])
    assert _error(ei) == ("MissingParameter", "The request must contain the parameter resourceIdSet", 400)
    with pytest.raises(ClientError) as ei:
        ec2.create_tags(Resources=["eni-0123456789abcdef0"], Tags=[{"Key": "k", "Value": "v"}])
    assert _error(ei) == ("InvalidID", "The ID 'eni-0123456789abcdef0' is not valid", 400)
    with pytest.raises(ClientError) as ei:
        ec2.create_tags(Resources=["vpc-0123456789abcdef0"], Tags=[{"Key": "k", "Value": "v"}])
    assert _error(ei) == ("InvalidVpcID.NotFound", "The vpc ID 'vpc-0123456789abcdef0' does not exist", 400)


def test_key_pair_tag_specification_of_another_type_is_refused(ec2):
    with pytest.raises(ClientError) as ei:
        ec2.create_key_pair(
            KeyName="issue11-bad-tags",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "k", "Value": "v"}]}],
        )
    assert _error(ei) == (
        "InvalidParameterValue",
        "'instance' is not a valid taggable resource type for this operation.",
        400,
    )


def test_import_pem_rsa_public_key(ec2):
    """boto3 base64-encodes PublicKeyMaterial (a blob); a PEM SubjectPublicKeyInfo is accepted,
    fingerprinted as AWS fingerprints imported RSA keys (MD5 of the DER), and described as the
    OpenSSH line named after the key pair."""
    import base64
    import hashlib

    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    openssh = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    name = "issue11-pem"
    try:
        resp = ec2.import_key_pair(KeyName=name, PublicKeyMaterial=pem)
        digest = hashlib.md5(der).hexdigest()
        assert resp["KeyFingerprint"] == ":".join(digest[i : i + 2] for i in range(0, 32, 2))
        got = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"][0]
        assert got["KeyType"] == "rsa"
        assert got["PublicKey"] == f"{openssh} {name}"
        assert base64.b64decode(got["PublicKey"].split()[1])  # a well-formed OpenSSH blob
    finally:
        ec2.delete_key_pair(KeyName=name)
    # A 1024-bit key is under EC2's sizes.
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(ClientError) as ei:
        ec2.import_key_pair(
            KeyName="issue11-small",
            PublicKeyMaterial=small.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
    assert _error(ei) == ("InvalidKey.Format", "Key is not in valid OpenSSH public key format", 400)
