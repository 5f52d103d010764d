"""Terraform's aws_instance and aws_ec2_instance_state, replayed with boto3 against Docker-mode ec2d.

The calls, their parameters and their order follow ../shared/design/terraform-calls.md
(hashicorp/terraform-provider-aws internal/service/ec2/ec2_instance.go, ec2_instance_state.go,
find.go, status.go, wait.go): create -> read -> tag update -> stop/start through
aws_ec2_instance_state -> the in-place updates that stop, modify and start -> destroy.
Every field the provider dereferences (a panic) or treats as fatal is asserted; a waiter
reimplements the provider's StateChangeConf (a state outside Pending+Target fails).
"""

from __future__ import annotations

import base64
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import ec2d_harness as h

NOT_FOUND_CHECKS = 20


def state_change(refresh, pending: set[str], target: set[str], timeout: float = 60.0) -> dict | None:
    """retry.StateChangeConf: poll until the state is in target; anything outside pending and
    target is an error; 'not found' (None) fails after NOT_FOUND_CHECKS unless target is empty."""
    deadline = time.monotonic() + timeout
    not_found = 0
    while time.monotonic() < deadline:
        obj, state = refresh()
        if obj is None:
            if not target:
                return None
            not_found += 1
            assert not_found <= NOT_FOUND_CHECKS, "resource not found while waiting"
        elif state in target:
            return obj
        else:
            assert state in pending, f"unexpected state {state!r}, wanted {target}"
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {target}")


def find_instance(ec2, iid: str) -> dict | None:
    """FindInstanceByID: exactly one instance with a State, same id, not terminated."""
    try:
        reservations = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
    except ClientError as e:
        if e.response["Error"]["Code"] == "InvalidInstanceID.NotFound":
            return None
        raise
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == 1, instances
    [inst] = instances
    assert inst["InstanceId"] == iid and "State" in inst
    if inst["State"]["Name"] == "terminated":
        return None
    return inst


def instance_refresh(ec2, iid: str):
    def refresh():
        # The status function reads the instance even when terminated (for WaitInstanceDeleted).
        reservations = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
        instances = [i for r in reservations for i in r["Instances"]]
        if not instances:
            return None, ""
        return instances[0], instances[0]["State"]["Name"]

    return refresh


def resource_read(ec2, iid: str) -> dict:
    """resourceInstanceRead, in the provider's order, with its fatal checks and dereferences."""
    inst = find_instance(ec2, iid)
    assert inst is not None, "read right after create must find the instance"
    # The fields the read copies; the nested ones it dereferences must be present.
    for key in (
        "InstanceType",
        "Placement",
        "ImageId",
        "PrivateIpAddress",
        "PrivateDnsName",
        "SubnetId",
        "VpcId",
        "EbsOptimized",
        "SourceDestCheck",
        "Monitoring",
        "SecurityGroups",
        "RootDeviceName",
        "CpuOptions",
        "HibernationOptions",
        "EnclaveOptions",
        "MaintenanceOptions",
        "MetadataOptions",
        "PrivateDnsNameOptions",
        "CapacityReservationSpecification",
    ):
        assert key in inst, f"{key} missing from DescribeInstances"
    assert inst["Placement"]["AvailabilityZone"]
    assert inst["Monitoring"]["State"] in ("enabled", "disabled")
    for eni in inst["NetworkInterfaces"]:
        # The provider dereferences Attachment.DeviceIndex: a panic when absent.
        assert eni["Attachment"]["DeviceIndex"] == 0, eni
        assert eni["NetworkInterfaceId"].startswith("eni-")
    assert inst["CpuOptions"]["CoreCount"] >= 1 and inst["CpuOptions"]["ThreadsPerCore"] >= 1
    for key in ("HttpTokens", "HttpEndpoint", "HttpPutResponseHopLimit", "InstanceMetadataTags"):
        assert key in inst["MetadataOptions"], inst["MetadataOptions"]

    # 2. DescribeInstanceTypes (AssertSingleValueResult; fatal).
    [itype] = ec2.describe_instance_types(InstanceTypes=[inst["InstanceType"]])["InstanceTypes"]
    burstable = itype["BurstablePerformanceSupported"]

    # 3. The launch template tag (the key filter must work): 0 here.
    tags = ec2.describe_tags(
        Filters=[
            {"Name": "resource-id", "Values": [iid]},
            {"Name": "key", "Values": ["aws:ec2launchtemplate:id"]},
        ]
    )["Tags"]
    assert tags == []

    # 4. DescribeVpcs of the instance's VPC (IsDefault decides names vs ids).
    [vpc] = ec2.describe_vpcs(VpcIds=[inst["VpcId"]])["Vpcs"]
    assert "IsDefault" in vpc

    # 5, 7, 8. DescribeInstanceAttribute: fatal on error; the values are dereferenced.
    shutdown = ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")
    assert shutdown["InstanceInitiatedShutdownBehavior"]["Value"] in ("stop", "terminate")
    assert "Value" in ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiStop")["DisableApiStop"]
    assert "Value" in ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")[
        "DisableApiTermination"
    ]
    user_data = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")

    # 6. readBlockDevices: DescribeVolumes of every EBS mapping's volume (fatal on error); the
    # root one is the mapping at RootDeviceName.
    mapped = [m["Ebs"]["VolumeId"] for m in inst.get("BlockDeviceMappings", []) if "Ebs" in m]
    volumes = {}
    if mapped:
        found = ec2.describe_volumes(VolumeIds=mapped)["Volumes"]
        assert sorted(v["VolumeId"] for v in found) == sorted(mapped)
        for v in found:
            for key in ("Size", "VolumeType", "Encrypted", "Iops", "Attachments"):
                assert key in v, (key, v)
            volumes[v["VolumeId"]] = v
    devices = {m["DeviceName"]: volumes[m["Ebs"]["VolumeId"]] for m in inst.get("BlockDeviceMappings", [])}
    assert inst["RootDeviceName"] in devices, "every instance has a root volume"

    # 9. Credit specification of a burstable type: an empty list is fatal.
    credits = None
    if burstable:
        specs = ec2.describe_instance_credit_specifications(InstanceIds=[iid])["InstanceCreditSpecifications"]
        assert len(specs) == 1 and specs[0]["InstanceId"] == iid, specs
        credits = specs[0]["CpuCredits"]
    return {
        "instance": inst,
        "devices": devices,
        "credits": credits,
        "user_data": user_data.get("UserData", {}).get("Value"),
        "disable_api_termination": ec2.describe_instance_attribute(
            InstanceId=iid, Attribute="disableApiTermination"
        )["DisableApiTermination"]["Value"],
    }


def run_like_terraform(ec2, ami: str, **extra) -> str:
    """resourceInstanceCreate's RunInstances (buildInstanceOpts), then WaitInstanceCreated."""
    params = dict(
        ClientToken=f"terraform-{uuid.uuid4().hex[:20]}",
        ImageId=ami,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        DisableApiTermination=False,
        EbsOptimized=False,
        Monitoring={"Enabled": False},
        HibernationOptions={"Configured": False},
        Placement={"AvailabilityZone": ""},
        CreditSpecification={"CpuCredits": "unlimited"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "tf-web"}]}],
    )
    for key, value in extra.items():
        if value is None:
            params.pop(key)
        else:
            params[key] = value
    resp = ec2.run_instances(**params)
    iid = resp["Instances"][0]["InstanceId"]
    state_change(instance_refresh(ec2, iid), {"pending"}, {"running"})
    return iid


def update_tags(ec2, iid: str, removed: dict, added: dict) -> None:
    """updateTags: DeleteTags with the removed key+value, then CreateTags."""
    if removed:
        ec2.delete_tags(Resources=[iid], Tags=[{"Key": k, "Value": v} for k, v in removed.items()])
    if added:
        ec2.create_tags(Resources=[iid], Tags=[{"Key": k, "Value": v} for k, v in added.items()])


def instance_state_read(ec2, iid: str) -> str | None:
    """aws_ec2_instance_state's read: DescribeInstanceStatus(IncludeAllInstances), one status."""
    statuses = ec2.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)["InstanceStatuses"]
    assert len(statuses) == 1, statuses
    name = statuses[0]["InstanceState"]["Name"]
    return None if name == "terminated" else name


def set_instance_state(ec2, iid: str, want: str) -> None:
    """aws_ec2_instance_state create/update: WaitInstanceReady, then stop or start and wait."""
    state_change(instance_refresh(ec2, iid), {"pending", "stopping"}, {"running", "stopped"})
    if instance_state_read(ec2, iid) == want:
        return
    if want == "stopped":
        ec2.stop_instances(InstanceIds=[iid], Force=False)
        state_change(instance_refresh(ec2, iid), {"pending", "running", "shutting-down", "stopping"}, {"stopped"})
    else:
        ec2.start_instances(InstanceIds=[iid])
        state_change(instance_refresh(ec2, iid), {"pending", "stopped"}, {"running"})
    assert instance_state_read(ec2, iid) == want


def destroy(ec2, iid: str) -> None:
    """resourceInstanceDelete: lift termination protection, terminate, WaitInstanceDeleted."""
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
    try:
        ec2.terminate_instances(InstanceIds=[iid])
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    state_change(
        instance_refresh(ec2, iid),
        {"pending", "running", "shutting-down", "stopping", "stopped"},
        {"terminated"},
    )


def test_aws_instance_and_instance_state_end_to_end(ec2, cleanup, busybox_ami):
    iid = run_like_terraform(ec2, busybox_ami["id"])
    cleanup.track_instances([iid])
    read = resource_read(ec2, iid)
    inst = read["instance"]
    assert inst["InstanceType"] == "t3.micro" and inst["ImageId"] == busybox_ami["id"]
    assert inst["State"]["Name"] == "running"
    assert h.tag_dict(inst["Tags"])["Name"] == "tf-web"
    assert read["credits"] == "unlimited"
    assert inst["Monitoring"]["State"] == "disabled" and inst["EbsOptimized"] is False
    assert inst["HibernationOptions"]["Configured"] is False
    assert inst["MetadataOptions"]["HttpTokens"] == "optional"
    assert h.container_state(h.container_name(iid)) == "running"
    # A second read (terraform plan's refresh) sees the same: no diff.
    assert resource_read(ec2, iid)["instance"]["Tags"] == inst["Tags"]

    # Tag update: tags = { Name = "tf-web-2", env = "test" }.
    update_tags(ec2, iid, removed={"Name": "tf-web"}, added={"Name": "tf-web-2", "env": "test"})
    assert h.tag_dict(resource_read(ec2, iid)["instance"]["Tags"]) == {
        "Name": "tf-web-2",
        "env": "test",
        "ec2_vm_manager": "docker",
    }

    # In-place updates that need no stop: metadata options, credits, monitoring.
    resp = ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required", HttpPutResponseHopLimit=2)
    assert resp["InstanceMetadataOptions"]["HttpTokens"] == "required"
    state_change(
        lambda: (lambda i: (i, i["MetadataOptions"]["State"]))(find_instance(ec2, iid)),
        {"pending"},
        {"applied"},
    )
    resp = ec2.modify_instance_credit_specification(
        InstanceCreditSpecifications=[{"InstanceId": iid, "CpuCredits": "standard"}]
    )
    assert resp["SuccessfulInstanceCreditSpecifications"] == [{"InstanceId": iid}]
    assert resp["UnsuccessfulInstanceCreditSpecifications"] == []
    ec2.monitor_instances(InstanceIds=[iid])
    read = resource_read(ec2, iid)
    assert read["credits"] == "standard"
    assert read["instance"]["Monitoring"]["State"] == "enabled"
    assert read["instance"]["MetadataOptions"]["HttpPutResponseHopLimit"] == 2

    # aws_ec2_instance_state: stopped (container paused), then running again.
    set_instance_state(ec2, iid, "stopped")
    assert h.container_state(h.container_name(iid)) == "paused"
    # instance_type and user_data updates: stop -> ModifyInstanceAttribute -> start.
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.small"})
    # A blob: boto3 base64-encodes it on the wire, EC2 shows it base64-encoded once.
    ec2.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"#!/bin/sh\necho updated\n"})
    set_instance_state(ec2, iid, "running")
    read = resource_read(ec2, iid)
    assert read["instance"]["InstanceType"] == "t3.small"
    assert base64.b64decode(read["user_data"]) == b"#!/bin/sh\necho updated\n"
    assert read["credits"] == "standard", "a resize keeps the credit option"
    assert h.container_state(h.container_name(iid)) == "running"

    # Destroy: the instance stays describable as terminated, the container goes.
    destroy(ec2, iid)
    assert find_instance(ec2, iid) is None
    h.wait_until(lambda: h.container_inspect(h.container_name(iid)) is None, 20, desc="container removed")


def test_aws_instance_in_a_subnet_with_metadata_options(ec2, cleanup, busybox_ami):
    """subnet_id + vpc_security_group_ids go in NetworkInterfaces; metadata_options and a
    non-burstable type (no credit call, no CreditSpecification sent)."""
    [subnet] = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][:1]
    [group] = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    iid = run_like_terraform(
        ec2,
        busybox_ami["id"],
        InstanceType="m5.large",
        CreditSpecification=None,
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet["SubnetId"], "Groups": [group["GroupId"]]}],
        MetadataOptions={"HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 1},
    )
    cleanup.track_instances([iid])
    read = resource_read(ec2, iid)
    inst = read["instance"]
    assert read["credits"] is None
    assert inst["SubnetId"] == subnet["SubnetId"]
    assert inst["Placement"]["AvailabilityZone"] == subnet["AvailabilityZone"]
    assert [g["GroupId"] for g in inst["SecurityGroups"]] == [group["GroupId"]]
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    assert inst["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 2}
    # source_dest_check = false: the update step after create.
    ec2.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": False})
    assert resource_read(ec2, iid)["instance"]["SourceDestCheck"] is False
    # The credit call on a type without credits: EC2's error (Terraform never makes it).
    with pytest.raises(ClientError) as e:
        ec2.describe_instance_credit_specifications(InstanceIds=[iid])
    assert e.value.response["Error"]["Code"] == "InstanceCreditSpecification.NotSupported"
    # Termination protection is lifted by destroy before it terminates.
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})
    assert resource_read(ec2, iid)["disable_api_termination"] is True
    destroy(ec2, iid)


def test_aws_instance_with_root_and_ebs_block_devices(ec2, cleanup, busybox_ami):
    """root_block_device { volume_size = 20, volume_type = "gp3" } and one ebs_block_device
    { device_name = "/dev/sdf", volume_size = 5 }: a configured root adds DescribeImages for the
    root device name; Read's readBlockDevices reads both volumes; destroy deletes them with the
    instance (delete_on_termination defaults to true)."""
    [image] = ec2.describe_images(ImageIds=[busybox_ami["id"]])["Images"]
    root_device = image["RootDeviceName"]
    iid = run_like_terraform(
        ec2,
        busybox_ami["id"],
        BlockDeviceMappings=[
            {"DeviceName": root_device, "Ebs": {"VolumeSize": 20, "VolumeType": "gp3", "DeleteOnTermination": True}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 5, "DeleteOnTermination": True}},
        ],
    )
    cleanup.track_instances([iid])
    read = resource_read(ec2, iid)
    root, data = read["devices"][root_device], read["devices"]["/dev/sdf"]
    assert (root["Size"], root["VolumeType"], root["Iops"], root["Throughput"]) == (20, "gp3", 3000, 125)
    assert (data["Size"], data["VolumeType"]) == (5, "gp2")
    for v in (root, data):
        assert v["State"] == "in-use" and v["Attachments"][0]["InstanceId"] == iid
        assert v["Attachments"][0]["DeleteOnTermination"] is True
    # The data volume's file system is in the instance.
    h.wait_until(
        lambda: h.dexec(iid, "sh", "-c", "echo x > /mnt/sdf/x && cat /mnt/sdf/x", check=False).stdout == "x\n",
        30,
        0.5,
        "/mnt/sdf writable",
    )
    destroy(ec2, iid)
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[root["VolumeId"], data["VolumeId"]], WaiterConfig=h.WAITER)


def primary_interface(inst: dict) -> dict:
    """What resourceInstanceUpdate looks for: the interface attached at device index 0."""
    [eni] = [n for n in inst["NetworkInterfaces"] if n["Attachment"]["DeviceIndex"] == 0]
    return eni


def test_aws_instance_vpc_security_group_ids_change_in_place(ec2, cleanup, busybox_ami):
    """vpc_security_group_ids changed on a VPC instance: ModifyNetworkInterfaceAttribute on its
    primary interface (Groups), then the Read; the interface's other attributes through the
    same action, DescribeNetworkInterfaceAttribute and ResetNetworkInterfaceAttribute."""
    [subnet] = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][:1]
    [default] = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    web = ec2.create_security_group(GroupName=f"tf-web-{uuid.uuid4().hex[:8]}", Description="web")["GroupId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.73.0.0/16")["Vpc"]["VpcId"]
    elsewhere = ec2.create_security_group(GroupName="elsewhere", Description="x", VpcId=other_vpc)["GroupId"]
    iid = run_like_terraform(
        ec2,
        busybox_ami["id"],
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet["SubnetId"], "Groups": [default["GroupId"]],
                            "Description": "tf primary"}],
    )
    cleanup.track_instances([iid])
    eni = primary_interface(resource_read(ec2, iid)["instance"])
    eni_id = eni["NetworkInterfaceId"]
    assert eni["Description"] == "tf primary", "the launch's interface description is kept"

    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=[web, default["GroupId"]])
    inst = resource_read(ec2, iid)["instance"]
    assert sorted(g["GroupId"] for g in inst["SecurityGroups"]) == sorted([web, default["GroupId"]])
    assert sorted(g["GroupId"] for g in primary_interface(inst)["Groups"]) == sorted([web, default["GroupId"]])
    [shown] = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"]
    assert sorted(g["GroupId"] for g in shown["Groups"]) == sorted([web, default["GroupId"]])
    groups = ec2.describe_network_interface_attribute(NetworkInterfaceId=eni_id, Attribute="groupSet")["Groups"]
    assert sorted(g["GroupId"] for g in groups) == sorted([web, default["GroupId"]])
    # A group in use cannot be deleted: the instance's new group counts.
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=web)
    assert e.value.response["Error"]["Code"] == "DependencyViolation"

    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Description={"Value": "web <front> & back"})
    attr = ec2.describe_network_interface_attribute(NetworkInterfaceId=eni_id, Attribute="description")
    assert attr["Description"]["Value"] == "web <front> & back"
    described = ec2.describe_network_interfaces(Filters=[{"Name": "description", "Values": ["web <front> & back"]}])
    assert [n["NetworkInterfaceId"] for n in described["NetworkInterfaces"]] == [eni_id]
    assert primary_interface(resource_read(ec2, iid)["instance"])["Description"] == "web <front> & back"

    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, SourceDestCheck={"Value": False})
    assert resource_read(ec2, iid)["instance"]["SourceDestCheck"] is False
    attr = ec2.describe_network_interface_attribute(NetworkInterfaceId=eni_id, Attribute="sourceDestCheck")
    assert attr["SourceDestCheck"]["Value"] is False
    ec2.reset_network_interface_attribute(NetworkInterfaceId=eni_id, SourceDestCheck="sourceDestCheck")
    assert resource_read(ec2, iid)["instance"]["SourceDestCheck"] is True

    attachment = ec2.describe_network_interface_attribute(NetworkInterfaceId=eni_id, Attribute="attachment")
    assert attachment["Attachment"]["AttachmentId"] == eni["Attachment"]["AttachmentId"]
    assert attachment["Attachment"]["InstanceId"] == iid
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni_id,
        Attachment={"AttachmentId": eni["Attachment"]["AttachmentId"], "DeleteOnTermination": True},
    )

    def error(call, **kwargs) -> tuple[str, int]:
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]

    modify = ec2.modify_network_interface_attribute
    assert error(modify, NetworkInterfaceId=eni_id, Groups=[elsewhere]) == ("InvalidParameter", 400)
    assert error(modify, NetworkInterfaceId=eni_id, Groups=["sg-0123456789abcdef0"]) == ("InvalidGroup.NotFound", 400)
    assert error(modify, NetworkInterfaceId="eni-0123456789abcdef0", Groups=[web]) == (
        "InvalidNetworkInterfaceID.NotFound",
        400,
    )
    assert error(modify, NetworkInterfaceId="ni-1", Groups=[web]) == ("InvalidNetworkInterfaceID.Malformed", 400)
    assert error(
        modify, NetworkInterfaceId=eni_id, Groups=[web], SourceDestCheck={"Value": True}
    ) == ("InvalidParameterCombination", 400)
    assert error(
        modify, NetworkInterfaceId=eni_id, Attachment={"AttachmentId": "eni-attach-0123456789abcdef0", "DeleteOnTermination": True}
    ) == ("InvalidAttachmentID.NotFound", 400)
    assert error(modify, NetworkInterfaceId=eni_id, Groups=[web], DryRun=True) == ("DryRunOperation", 412)
    assert error(
        ec2.describe_network_interface_attribute, NetworkInterfaceId=eni_id, Attribute="colour"
    ) == ("InvalidParameterValue", 400)
    # The groups are still the ones set above: nothing refused was written.
    inst = resource_read(ec2, iid)["instance"]
    assert sorted(g["GroupId"] for g in inst["SecurityGroups"]) == sorted([web, default["GroupId"]])

    # get_password_data on a Linux instance: empty, as EC2 answers.
    password = ec2.get_password_data(InstanceId=iid)
    assert password["InstanceId"] == iid and password["PasswordData"] == ""
    assert error(ec2.get_password_data, InstanceId="i-0123456789abcdef0")[0] == "InvalidInstanceID.NotFound"

    destroy(ec2, iid)
    # The interface ends with its instance.
    assert error(modify, NetworkInterfaceId=eni_id, Groups=[web])[0] == "InvalidNetworkInterfaceID.NotFound"
    ec2.delete_security_group(GroupId=web)
    ec2.delete_security_group(GroupId=elsewhere)
    ec2.delete_vpc(VpcId=other_vpc)
