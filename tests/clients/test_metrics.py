"""GET /metrics as Prometheus reads it: parsed with prometheus_client's text parser, the
request counter moves by exactly the boto3 calls made, and the reconcile, resource, engine
and store metrics describe the running ec2d."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

import ec2d_harness as h


def scrape(url: str) -> dict[str, dict]:
    """Family name -> {"type": ..., "samples": {(sample name, frozen labels): value}}."""
    status, body = h.http_get(f"{url}/metrics")
    assert status == 200, body
    families = {}
    for family in text_string_to_metric_families(body):
        families[family.name] = {
            "type": family.type,
            "samples": {(s.name, frozenset(s.labels.items())): s.value for s in family.samples},
        }
    return families


def value(families: dict, family: str, sample: str | None = None, **labels) -> float:
    """A sample's value; 0 when the series does not exist yet."""
    samples = families.get(family, {}).get("samples", {})
    return samples.get((sample or family, frozenset(labels.items())), 0.0)


def requests(families: dict, **labels) -> float:
    return value(families, "ec2d_api_requests", "ec2d_api_requests_total", **labels)


def all_requests(families: dict) -> float:
    return sum(families.get("ec2d_api_requests", {}).get("samples", {}).values())


def _client(service: str, url: str):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=h.REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_request_counter_moves_by_exactly_the_calls_made(ec2d):
    ec2 = _client("ec2", ec2d.url)
    sts = _client("sts", ec2d.url)
    ec2.describe_regions()  # the series exists before the first scrape
    before = scrape(ec2d.url)
    assert before["ec2d_api_requests"]["type"] == "counter"
    assert before["ec2d_api_request_duration_seconds"]["type"] == "histogram"

    k = 5
    for _ in range(k):
        ec2.describe_regions()
    for _ in range(2):
        ec2.describe_instances()
    with pytest.raises(ClientError) as ei:
        ec2.describe_instances(InstanceIds=["i-xyz"])
    assert ei.value.response["Error"]["Code"] == "InvalidInstanceID.Malformed"
    sts.get_caller_identity()
    scrape(ec2d.url)  # a scrape is not an API request
    after = scrape(ec2d.url)

    def moved(**labels):
        return requests(after, **labels) - requests(before, **labels)

    assert moved(service="ec2", action="DescribeRegions", code="ok") == k
    assert moved(service="ec2", action="DescribeInstances", code="ok") == 2
    assert moved(service="ec2", action="DescribeInstances", code="InvalidInstanceID.Malformed") == 1
    assert moved(service="sts", action="GetCallerIdentity", code="ok") == 1
    assert all_requests(after) - all_requests(before) == k + 4

    count = "ec2d_api_request_duration_seconds_count"
    hist = "ec2d_api_request_duration_seconds"
    labels = {"service": "ec2", "action": "DescribeRegions"}
    assert value(after, hist, count, **labels) - value(before, hist, count, **labels) == k
    assert value(after, hist, "ec2d_api_request_duration_seconds_bucket", le="+Inf", **labels) == value(
        after, hist, count, **labels
    )


def test_reconcile_resource_engine_and_store_metrics(ec2d, ec2, launch):
    _, ids = launch(count=1)
    families = scrape(ec2d.url)

    running = [i for i, d in h.describe_instances(ec2).items() if d["State"]["Name"] == "running"]
    assert ids[0] in running
    assert value(families, "ec2d_resources", kind="instance", state="running") == len(running)

    reconciles = families["ec2d_reconciles"]
    assert reconciles["type"] == "counter"
    instance_reconciles = sum(
        v for (name, labels), v in reconciles["samples"].items() if ("kind", "instance") in labels
    )
    assert instance_reconciles >= 1
    outcomes = {dict(labels)["outcome"] for (_, labels) in reconciles["samples"]}
    assert outcomes <= {"success", "requeue", "error"}, outcomes
    assert value(
        families, "ec2d_reconcile_duration_seconds", "ec2d_reconcile_duration_seconds_count", kind="instance"
    ) >= instance_reconciles - 1  # the pass in flight at the scrape may be counted only once

    # The engine metrics carry an `engine` label: the engine's normalised endpoint, as the
    # health document's `engines` list names it. Every engine answers here.
    reachable = families["ec2d_engine_reachable"]["samples"]
    assert reachable, families["ec2d_engine_reachable"]
    assert all(dict(labels).keys() == {"engine"} for (_, labels) in reachable), reachable
    assert all(v == 1 for v in reachable.values()), reachable
    assert families["ec2d_engine_event_stream_reconnects"]["type"] == "counter"
    reconnects = families["ec2d_engine_event_stream_reconnects"]["samples"]
    assert {dict(labels)["engine"] for (_, labels) in reconnects} == {
        dict(labels)["engine"] for (_, labels) in reachable
    }, reconnects
    assert all(v >= 0 for v in reconnects.values()), reconnects
    status, body = h.http_get(f"{ec2d.url}/_ec2d/health")
    assert status == 200, body
    names = {e["name"] for e in json.loads(body)["engines"]}
    assert {dict(labels)["engine"] for (_, labels) in reachable} == names, (names, reachable)
    assert value(families, "ec2d_store_size_bytes") > 0
    assert value(families, "ec2d_controller_queue_depth") >= 0
    assert value(families, "ec2d_controller_reconciles_in_flight") >= 0
