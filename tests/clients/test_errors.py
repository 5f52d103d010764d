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
