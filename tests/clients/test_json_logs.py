"""EC2D_LOG_FORMAT=json: every line ec2d writes is one JSON object, span fields (the
request's request_id and action, a reconcile's instance_id) flattened beside the event's,
so every line about an instance can be found by its id; a bad format stops start-up.

The launch test runs its own ec2d (ec2d_factory) so its log holds only its own lines."""

from __future__ import annotations

import json
import os
import subprocess

import ec2d_harness as h


def _json_lines(path) -> list[dict]:
    """The log's JSON lines; besides them only the harness's banners and LocalStack's plain
    `Ready.` (on stdout, which the harness writes into the same file) may appear, once per start."""
    lines = []
    ready = 0
    for raw in path.read_text().splitlines():
        # The harness writes its own "===== [test harness] ..." banner into the log.
        if not raw.strip() or raw.startswith("===== [test harness]"):
            continue
        if raw == "Ready.":
            ready += 1
            continue
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError as e:
            raise AssertionError(f"log line is not JSON ({e}): {raw!r}") from None
    assert ready == 1, f"`Ready.` printed {ready} times"
    return lines


def test_json_log_lines_carry_instance_ids(ec2d_factory, busybox_ami):
    srv = ec2d_factory(extra_env={"EC2D_LOG_FORMAT": "json"})
    ec2 = srv.client(srv.recorder)
    iid = ec2.run_instances(ImageId=busybox_ami["id"], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    srv.cleanup.track_instances([iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    h.wait_container_state(iid, "absent", timeout=15)
    srv.stop()

    lines = _json_lines(srv.log_path)
    assert lines, "empty log"
    for line in lines:
        assert {"timestamp", "level", "target", "message"} <= line.keys(), line

    about = [line for line in lines if line.get("instance_id") == iid]
    # The API's line for the launch, inside the request span (with its id and action).
    requested = [line for line in about if line["message"] == "instance requested"]
    assert len(requested) == 1, about
    assert requested[0]["action"] == "RunInstances" and requested[0]["request_id"], requested
    # The reconciler's lines inherit the id from the reconcile span, LocalStack's grep lines
    # included, with their text unchanged.
    reconciled = [line for line in about if "reconcile" in line.get("spans", [])]
    # "applying" names no instance itself: its id can only come from the span.
    assert any(line["message"] == "applying" for line in reconciled), reconciled
    assert any(
        line["message"].startswith(f"Instance {iid} will be accessible via SSH at: ") for line in about
    ), about
    assert any(
        line["message"].startswith(f"Instance {iid} port mappings (container -> host): ") for line in about
    ), about
    # Termination: the API's line and the reconciler's.
    assert any(line.get("action") == "TerminateInstances" for line in about), about
    assert any(line["message"] == "instance state changed" and line.get("to") == 'Some("terminated")' for line in about), about

    # Every line of an instance's reconcile pass carries an instance id.
    for line in lines:
        if "reconcile" in line.get("spans", []) and line.get("message") == "applying":
            assert "instance_id" in line or "volume_id" in line or "vpc_id" in line or "snapshot_id" in line, line


def test_bad_log_format_is_refused_at_start(tmp_path):
    env = dict(os.environ)
    env.update(
        {
            "EC2D_LOG_FORMAT": "xml",
            "EC2D_LISTEN": f"127.0.0.1:{h.free_port()}",
            "EC2D_DATA_DIR": str(tmp_path / "data"),
        }
    )
    run = subprocess.run([str(h.ec2d_binary())], env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert "invalid value 'xml'" in run.stderr and "--log-format" in run.stderr, run.stderr
    assert "[possible values: text, json]" in run.stderr, run.stderr
    assert not (tmp_path / "data").exists(), "ec2d started before refusing the format"
