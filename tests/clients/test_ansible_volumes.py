"""Ansible's amazon.aws ec2_vol and ec2_snapshot against ec2d, with real data behind them.

One playbook creates a volume attached to a running instance (ec2_vol: CreateVolume, the
`volume_available` waiter, AttachVolume, `volume_in_use`) and snapshots it (ec2_snapshot with
`wait`: CreateSnapshot, `snapshot_completed`); run again it changes nothing. A file written into
the volume from inside the instance is in a volume Ansible restores from the snapshot. A second
playbook detaches and deletes both volumes and the snapshot. boto3 checks each step from
outside. The playbook runner is test_ansible.py's.
"""

from __future__ import annotations

from test_ansible import Ansible, ansible, prefix  # noqa: F401  (fixtures)

import ec2d_harness as h
from ec2d_harness import dexec

CREATE = """
- name: volume
  amazon.aws.ec2_vol:
    instance: "{{ iid }}"
    volume_size: 1
    volume_type: gp3
    device_name: /dev/sdf
    name: "{{ p }}-data"
  register: vol

- name: write
  ansible.builtin.command: docker exec localstack-ec2.{{ iid }} sh -c 'echo {{ p }} > /mnt/sdf/mark'
  changed_when: false
  when: vol.changed

- name: snapshot
  amazon.aws.ec2_snapshot:
    volume_id: "{{ vol.volume_id }}"
    description: "{{ p }} snapshot"
    wait: true
    last_snapshot_min_age: 60
    snapshot_tags:
      Name: "{{ p }}-snap"
  register: snap
"""

RESTORE = """
- name: restored
  amazon.aws.ec2_vol:
    instance: "{{ iid }}"
    snapshot: "{{ snap_id }}"
    device_name: /dev/sdg
    name: "{{ p }}-restored"
  register: restored
"""

ABSENT = """
- name: detach
  amazon.aws.ec2_vol:
    id: "{{ item }}"
    instance: None
  loop: "{{ volumes }}"

- name: volumes absent
  amazon.aws.ec2_vol:
    id: "{{ item }}"
    state: absent
  loop: "{{ volumes }}"

- name: snapshot absent
  amazon.aws.ec2_snapshot:
    snapshot_id: "{{ snap_id }}"
    state: absent
"""


def test_ansible_ec2_vol_and_ec2_snapshot(ansible: Ansible, ec2, cleanup, prefix: str):  # noqa: F811
    answer = ec2.run_instances(ImageId=h.TEST_AMI_ID, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    iid = answer["Instances"][0]["InstanceId"]
    cleanup.track_instances([iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)

    first = ansible.run(CREATE, {"p": prefix, "iid": iid}, name="vol-create").ok()
    assert first["volume"]["changed"] is True and first["snapshot"]["changed"] is True, first.summary()
    vol_id = first["volume"]["volume_id"]
    snap_id = first["snapshot"]["snapshot_id"]
    (vol,) = ec2.describe_volumes(VolumeIds=[vol_id])["Volumes"]
    assert vol["State"] == "in-use" and vol["VolumeType"] == "gp3"
    assert [(a["InstanceId"], a["Device"], a["State"]) for a in vol["Attachments"]] == [(iid, "/dev/sdf", "attached")]
    assert h.tag_dict(vol["Tags"])["Name"] == f"{prefix}-data"
    (snap,) = ec2.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"]
    assert snap["State"] == "completed" and snap["VolumeId"] == vol_id
    assert h.tag_dict(snap["Tags"]) == {"Name": f"{prefix}-snap"}

    # Idempotent: the same playbook finds the volume attached and a recent snapshot.
    second = ansible.run(CREATE, {"p": prefix, "iid": iid}, name="vol-again").ok()
    assert second["volume"]["changed"] is False and second["snapshot"]["changed"] is False, second.summary()
    assert second["volume"]["volume_id"] == vol_id

    restored = ansible.run(RESTORE, {"p": prefix, "iid": iid, "snap_id": snap_id}, name="vol-restore").ok()
    restored_id = restored["restored"]["volume_id"]
    assert restored_id != vol_id
    h.wait_until(
        lambda: dexec(iid, "cat", "/mnt/sdg/mark", check=False).stdout == f"{prefix}\n",
        30,
        0.5,
        "the snapshot's file in the restored volume",
    )

    gone = ansible.run(
        ABSENT, {"p": prefix, "volumes": [vol_id, restored_id], "snap_id": snap_id}, name="vol-absent"
    ).ok()
    assert gone["volumes absent"]["changed"] is True and gone["snapshot absent"]["changed"] is True, gone.summary()
    remaining = ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [vol_id, restored_id]}])["Volumes"]
    assert all(v["State"] == "deleting" for v in remaining), remaining
    assert ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snap_id]}])["Snapshots"] == []
