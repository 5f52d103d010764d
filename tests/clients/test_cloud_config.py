"""cloud-init inside instances (issue 13, part 3), through boto3 against the shared ec2d.

A busybox instance (no cloud-init) gets its `#cloud-config`, MIME multi-part and gzip user
data from ec2d's boot script, which runs ec2d's translation of it (src/reconcile/cloud_config.rs)
and writes /var/log/cloud-init-output.log as cloud-init does. A Debian instance with cloud-init
(ec2d-test/debian-cloudinit:latest, built by tests/support/build-test-images.sh cloudinit)
runs the same user data with cloud-init itself, which reads it from ec2d's IMDS.
"""

from __future__ import annotations

import gzip
import secrets
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

import ec2d_harness as h
from ec2d_harness import dexec, wait_file_contains

OUTPUT_LOG = "/var/log/cloud-init-output.log"
CLOUDINIT_IMAGE = "ec2d-test/debian-cloudinit:latest"
CLOUDINIT_AMI_ID = "ami-0c1d0c1d0c1d0c1d0"
CLOUDINIT_AMI_TAG = f"{h.AMI_REPO_PREFIX}debian-cloudinit:{CLOUDINIT_AMI_ID}"
# cloud-init in a container: its Ec2 datasource waits for IMDS, then the stages run.
CLOUDINIT_TIMEOUT = 120.0


def cloud_config(marker: str) -> str:
    """The issue's cloud-config: write_files + runcmd, the same for busybox and Debian."""
    return f"""#cloud-config
write_files:
  - path: /etc/ec2d-test/{marker}.conf
    content: |
      written by cloud-config {marker}
    permissions: '0600'
runcmd:
  - echo "ran {marker} on $(cat /etc/ec2d-test/{marker}.conf | wc -l) line" > /runcmd-{marker}
  - [sh, -c, "echo argv-{marker} >> /runcmd-{marker}"]
"""


def launch_with(ec2, cleanup, user_data: str | bytes, image_id: str = h.TEST_AMI_ID) -> str:
    resp = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, UserData=user_data)
    iid = resp["Instances"][0]["InstanceId"]
    cleanup.track_instances([iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    return iid


def assert_cloud_config_applied(iid: str, marker: str, timeout: float = 20.0) -> None:
    ran = wait_file_contains(iid, f"/runcmd-{marker}", f"argv-{marker}", timeout)
    assert ran == f"ran {marker} on 1 line\nargv-{marker}\n", ran
    conf = dexec(iid, "cat", f"/etc/ec2d-test/{marker}.conf").stdout
    assert conf == f"written by cloud-config {marker}\n", conf
    mode = dexec(iid, "stat", "-c", "%a %U", f"/etc/ec2d-test/{marker}.conf").stdout.split()
    assert mode == ["600", "root"], mode


def test_busybox_runs_cloud_config_write_files_and_runcmd(ec2, cleanup, busybox_ami):
    marker = secrets.token_hex(4)
    iid = launch_with(ec2, cleanup, cloud_config(marker) + "packages: [nginx]\n")
    assert_cloud_config_applied(iid, marker)
    log = wait_file_contains(iid, OUTPUT_LOG, "module packages is not supported")
    assert "ec2d cloud-config: module packages is not supported by ec2d; skipped" in log, log
    # The raw user data stays where cloud-init keeps it.
    raw = dexec(iid, "cat", f"/var/lib/cloud/instances/{iid}/user-data.txt").stdout
    assert raw.startswith("#cloud-config\n"), raw


def test_busybox_runs_gzipped_multipart_shell_and_cloud_config(ec2, cleanup, busybox_ami):
    marker = secrets.token_hex(4)
    msg = MIMEMultipart()
    msg.attach(MIMEText(f"#!/bin/sh\necho script-{marker} > /script-{marker}\n", "x-shellscript"))
    msg.attach(MIMEText(cloud_config(marker), "cloud-config"))
    # boto3 base64-encodes bytes user data: the gzip arrives intact.
    iid = launch_with(ec2, cleanup, gzip.compress(msg.as_bytes()))
    assert_cloud_config_applied(iid, marker)
    assert dexec(iid, "cat", f"/script-{marker}").stdout == f"script-{marker}\n"
    # The shell part ran before runcmd, as cloud-init's scripts-user runs them.
    log = dexec(iid, "cat", OUTPUT_LOG).stdout
    assert "failed" not in log, log


def test_busybox_users_keys_hostname_and_bootcmd(ec2, cleanup, busybox_ami):
    marker = secrets.token_hex(4)
    key = f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEc2ZHRlc3Qga2V5IGZvciBjbG91ZC1jb25maWcgdGVzdHM {marker}"
    user_data = f"""#cloud-config
hostname: web-{marker}
bootcmd:
  - echo boot >> /bootcmd-{marker}
users:
  - default
  - name: deploy{marker}
    shell: /bin/sh
    groups: [ops{marker}]
    ssh_authorized_keys: ["{key}"]
ssh_authorized_keys:
  - {key}
runcmd:
  - touch /done-{marker}
"""
    iid = launch_with(ec2, cleanup, user_data)
    wait_file_contains(iid, OUTPUT_LOG, "default user of an ec2d instance is root")
    h.wait_until(lambda: dexec(iid, "test", "-f", f"/done-{marker}", check=False).returncode == 0, 20, 0.5, "runcmd")
    passwd = dexec(iid, "cat", "/etc/passwd").stdout
    assert f"deploy{marker}:" in passwd, passwd
    group = dexec(iid, "cat", "/etc/group").stdout
    ops = [line for line in group.splitlines() if line.startswith(f"ops{marker}:")]
    assert len(ops) == 1 and ops[0].endswith(f":deploy{marker}"), group
    keys = dexec(iid, "cat", f"/home/deploy{marker}/.ssh/authorized_keys").stdout
    assert keys == key + "\n", keys
    assert key in dexec(iid, "cat", "/root/.ssh/authorized_keys").stdout
    assert dexec(iid, "cat", "/etc/hostname").stdout == f"web-{marker}\n"
    assert dexec(iid, "cat", f"/bootcmd-{marker}").stdout == "boot\n"


# --------------------------------------------------------------------------- real cloud-init


@pytest.fixture(scope="module")
def cloudinit_ami(ec2d):
    """ec2d-test/debian-cloudinit:latest tagged as an AMI of the shared ec2d (discovered from
    the image event)."""
    if h.image_id(CLOUDINIT_IMAGE) is None:
        pytest.fail(
            f"test image {CLOUDINIT_IMAGE} missing: run tests/support/build-test-images.sh cloudinit", pytrace=False
        )
    existed = h.image_id(CLOUDINIT_AMI_TAG) is not None
    h.docker("tag", CLOUDINIT_IMAGE, CLOUDINIT_AMI_TAG)
    yield CLOUDINIT_AMI_ID
    if not existed:
        h.remove_tags([CLOUDINIT_AMI_TAG])


def test_debian_cloud_init_runs_the_cloud_config_from_imds(ec2, cleanup, cloudinit_ami):
    marker = secrets.token_hex(4)
    iid = launch_with(ec2, cleanup, cloud_config(marker), image_id=cloudinit_ami)
    assert_cloud_config_applied(iid, marker, CLOUDINIT_TIMEOUT)
    # cloud-init's own log says where the user data came from.
    log = wait_file_contains(iid, "/var/log/cloud-init.log", "DataSourceEc2", CLOUDINIT_TIMEOUT)
    assert "DataSourceEc2" in log
    status = dexec(iid, "cloud-init", "status", "--long", check=False).stdout
    assert "DataSourceEc2" in status, status
    # ec2d's translation stepped aside: its script never ran.
    out = dexec(iid, "cat", OUTPUT_LOG).stdout
    assert "ec2d cloud-config" not in out, out
    assert "Cloud-init v." in out, out


def test_debian_cloud_init_image_gets_keys_and_sshd_and_ec2d_steps_aside(ec2, cleanup, cloudinit_ami):
    """Without IMDS too: the boot script installs the key pair, starts sshd and cloud-init's
    stages, and does not run the user data itself."""
    marker = secrets.token_hex(4)
    iid = launch_with(ec2, cleanup, cloud_config(marker), image_id=cloudinit_ami)
    h.wait_until(
        lambda: "cloud-init" in dexec(iid, "ps", "-eo", "args", check=False).stdout
        or dexec(iid, "test", "-s", "/var/log/cloud-init.log", check=False).returncode == 0,
        30,
        0.5,
        "cloud-init started by the boot script",
    )
    h.wait_until(lambda: "sshd" in dexec(iid, "ps", "-eo", "comm", check=False).stdout, 30, 0.5, "sshd")
    out = dexec(iid, "sh", "-c", f"cat {OUTPUT_LOG} 2>/dev/null; echo", check=False).stdout
    assert "ec2d cloud-config" not in out, out
    raw = dexec(iid, "cat", f"/var/lib/cloud/instances/{iid}/user-data.txt").stdout
    assert raw == cloud_config(marker), raw
