"""The official AWS SDK for Rust against ec2d: examples/aws-sdk-rust launches one busybox
instance and takes it through running, stopped, running and terminated with the SDK's own
waiters (aws-sdk-ec2, aws-config with an endpoint override).

The example is its own cargo workspace and is built before pytest by scripts/test.sh (the
`clients` step); by hand:
  cargo build --manifest-path examples/aws-sdk-rust/Cargo.toml --target-dir examples/aws-sdk-rust/target
A missing binary fails the test: a CI run that forgot to build it must not pass.

Env:
  EC2D_SDK_EXAMPLE_BIN   the example's binary
                         (default examples/aws-sdk-rust/target/debug/ec2d-aws-sdk-rust-example)
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

import ec2d_harness as h

EXAMPLE_BIN = Path(
    os.environ.get("EC2D_SDK_EXAMPLE_BIN")
    or h.REPO_ROOT / "examples" / "aws-sdk-rust" / "target" / "debug" / "ec2d-aws-sdk-rust-example"
)


def test_rust_sdk_example_launches_stops_starts_and_terminates(ec2d, ec2, busybox_ami, cleanup):
    if not EXAMPLE_BIN.is_file():
        pytest.fail(
            f"the AWS SDK for Rust example is not built ({EXAMPLE_BIN}): "
            "cargo build --manifest-path examples/aws-sdk-rust/Cargo.toml "
            "--target-dir examples/aws-sdk-rust/target",
            pytrace=False,
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["EC2D_ENDPOINT"] = ec2d.url
    t0 = time.monotonic()
    # Each waiter polls every 15 s at first (EC2's model), so four of them take about a minute.
    run = subprocess.run(
        [str(EXAMPLE_BIN), busybox_ami["id"]], env=env, capture_output=True, text=True, timeout=600
    )
    took = time.monotonic() - t0
    h.log(f"rust sdk example: exit {run.returncode} after {took:.1f}s\n{run.stdout}{run.stderr}")
    launched = re.search(r"^launched: (i-[0-9a-f]+)$", run.stdout, re.M)
    if launched:
        cleanup.track_instances([launched.group(1)])
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert launched, run.stdout
    iid = launched.group(1)
    steps = re.findall(r"^(running again|running|stopped|terminated) \(", run.stdout, re.M)
    assert steps == ["running", "stopped", "running again", "terminated"], run.stdout

    # ec2d's view agrees with the SDK's waiters, and the container went with the instance
    # (EC2_REMOVE_CONTAINERS defaults to on).
    assert h.states(ec2, [iid]) == {iid: "terminated"}
    h.wait_container_state(iid, "absent", timeout=15)
