"""AMIs: Docker images tagged localstack-ec2/<name>:<ami-id>, the AMI lifecycle (CreateImage,
attributes, CopyImage, DeregisterImage) and the public catalogue, through boto3 and the aws CLI."""

import secrets
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import ec2d_harness as h


def _check_busybox_ami(images: list, busybox_ami) -> dict:
    by_id = {i["ImageId"]: i for i in images}
    assert busybox_ami["id"] in by_id, f"{busybox_ami['id']} not listed; got {sorted(by_id)}"
    img = by_id[busybox_ami["id"]]
    tags = h.tag_dict(img.get("Tags"))
    assert tags.get("ec2_vm_manager") == "docker", f"tags of {busybox_ami['id']}: {img.get('Tags')}"
    assert img.get("Name") == busybox_ami["name"], img
    assert img.get("State") == "available", img
    return img


def test_describe_images_tag_filter_cli(aws, busybox_ami):
    res = aws("describe-images", "--filters", "Name=tag:ec2_vm_manager,Values=docker").ok()
    assert isinstance(res.json, dict) and "Images" in res.json, res.describe()
    _check_busybox_ami(res.json["Images"], busybox_ami)
    # every image the filter returns carries the tag
    for img in res.json["Images"]:
        assert h.tag_dict(img.get("Tags")).get("ec2_vm_manager") == "docker", img


def test_describe_images_tag_filter_boto3(ec2, busybox_ami):
    resp = ec2.describe_images(Filters=[{"Name": "tag:ec2_vm_manager", "Values": ["docker"]}])
    _check_busybox_ami(resp["Images"], busybox_ami)


def test_describe_images_tag_filter_awslocal(awslocal, busybox_ami):
    res = awslocal("describe-images", "--filters", "Name=tag:ec2_vm_manager,Values=docker").ok()
    _check_busybox_ami(res.json["Images"], busybox_ami)


def test_describe_images_filter_excludes(ec2, busybox_ami):
    resp = ec2.describe_images(Filters=[{"Name": "tag:ec2_vm_manager", "Values": ["no-such-manager"]}])
    assert busybox_ami["id"] not in [i["ImageId"] for i in resp["Images"]], resp["Images"]


def test_describe_images_by_id(ec2, busybox_ami):
    resp = ec2.describe_images(ImageIds=[busybox_ami["id"]])
    assert [i["ImageId"] for i in resp["Images"]] == [busybox_ami["id"]], resp["Images"]
    _check_busybox_ami(resp["Images"], busybox_ami)


# --------------------------------------------------------------------------- the AMI lifecycle

# The public catalogue's Amazon Linux 2023 AMIs (current builds), and Ubuntu 22.04 amd64,
# the id LocalStack's page uses.
AL2023_X86 = "ami-024f768332f0"
AL2023_X86_OLDER = "ami-04e2d9f26611c0709"
AL2023_ARM = "ami-0ee25f51fa8ae8bb1"
AL2023_DEPRECATED = "ami-04bb900bd6b90688e"
JAMMY = "ami-df5de72bdb3b"


def _client_in(ec2d, region: str):
    return boto3.client(
        "ec2",
        endpoint_url=ec2d.url,
        region_name=region,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        **h.CREDS,
    )


def _gone(tag: str) -> bool:
    return h.image_id(tag) is None


def _error(excinfo) -> tuple[str, str]:
    err = excinfo.value.response["Error"]
    return err["Code"], err["Message"]


def test_ami_lifecycle_create_copy_launch_deregister(ec2d, ec2, launch, cleanup, busybox_ami):
    """CreateImage (NoReboot, Description, TagSpecifications) -> available -> attributes ->
    CopyImage to another region -> launch the copy -> DeregisterImage both: the AMIs vanish at
    once, their tags go (the last one once no container uses the image), and the image with it."""
    _, [iid] = launch()
    name = f"lifecycle-{secrets.token_hex(3)}"
    ami = ec2.create_image(
        InstanceId=iid,
        Name=name,
        Description="nightly build",
        NoReboot=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "team", "Value": "infra"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "ignored", "Value": "yes"}]},
        ],
    )["ImageId"]
    cleanup.track_image(ami)
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig=h.WAITER)
    tag = f"{h.AMI_REPO_PREFIX}{name}:{ami}"
    image = h.image_id(tag)
    assert image, f"{tag} missing; AMI tags: {sorted(h.list_ami_tags())}"
    [img] = ec2.describe_images(ImageIds=[ami])["Images"]
    assert img["Description"] == "nightly build" and img["SourceInstanceId"] == iid, img
    assert h.tag_dict(img.get("Tags")).get("team") == "infra", img
    assert img["OwnerId"] == "000000000000" and img["Public"] is False, img

    # Attributes: description both ways, launch permissions.
    attr = ec2.describe_image_attribute(ImageId=ami, Attribute="description")
    assert attr["Description"] == {"Value": "nightly build"}, attr
    ec2.modify_image_attribute(ImageId=ami, Description={"Value": "release candidate"})
    attr = ec2.describe_image_attribute(ImageId=ami, Attribute="description")
    assert attr["Description"] == {"Value": "release candidate"}, attr
    ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"Group": "all"}, {"UserId": "123456789012"}]})
    perms = ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
    assert {"Group": "all"} in perms and {"UserId": "123456789012"} in perms, perms
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["Public"] is True
    ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Remove": [{"Group": "all"}]})
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["Public"] is False
    assert "Value" not in ec2.describe_image_attribute(ImageId=ami, Attribute="bootMode").get("BootMode", {})

    # CopyImage, asked in the target region: a new AMI backed by the same image.
    eu = _client_in(ec2d, "eu-west-1")
    copy_name = f"{name}-eu"
    copy = eu.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name=copy_name, CopyImageTags=True)["ImageId"]
    cleanup.track_image(copy)
    assert copy != ami
    eu.get_waiter("image_available").wait(ImageIds=[copy], WaiterConfig=h.WAITER)
    copy_tag = f"{h.AMI_REPO_PREFIX}{copy_name}:{copy}"
    assert h.image_id(copy_tag) == image, "the copy is the same image under its own tag"
    [cimg] = eu.describe_images(ImageIds=[copy])["Images"]
    assert cimg["SourceImageId"] == ami and cimg["SourceImageRegion"] == "us-east-1", cimg
    assert h.tag_dict(cimg.get("Tags")).get("team") == "infra", cimg
    with pytest.raises(ClientError) as e:
        ec2.describe_images(ImageIds=[copy])
    assert _error(e)[0] == "InvalidAMIID.NotFound", "the copy lives in eu-west-1"

    # Launch the copy (in its region) and keep it running.
    _, [iid2] = launch(image_id=copy, client=eu)
    info = h.wait_container_state(iid2, "running", timeout=10)
    assert info["Image"] == image

    # Deregister the original: gone at once, its tag soon (the copy's tag keeps the image).
    assert ec2.deregister_image(ImageId=ami)["Return"] is True
    assert ec2.describe_images(ImageIds=[ami])["Images"] == [], "a deregistered id lists nothing"
    assert ami not in {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    h.wait_until(lambda: _gone(tag), timeout=20, desc=f"{tag} removed")
    assert h.image_id(copy_tag) == image

    # Deregister the copy while an instance uses its image: gone for clients at once, but the
    # engine keeps the image's last tag until the container goes.
    eu.deregister_image(ImageId=copy)
    assert copy not in {i["ImageId"] for i in eu.describe_images()["Images"]}
    with pytest.raises(ClientError) as e:
        eu.run_instances(ImageId=copy, MinCount=1, MaxCount=1)
    assert _error(e)[0] == "InvalidAMIID.NotFound"
    time.sleep(2)
    assert h.image_id(copy_tag) == image, "in use: kept"
    assert copy not in {i["ImageId"] for i in eu.describe_images()["Images"]}, "and still hidden"
    eu.terminate_instances(InstanceIds=[iid2])
    eu.get_waiter("instance_terminated").wait(InstanceIds=[iid2], WaiterConfig=h.WAITER)
    h.wait_until(lambda: _gone(copy_tag), timeout=30, desc=f"{copy_tag} removed")
    assert h.image_id(image) is None, "the image went with its last tag"
    assert h.image_id(busybox_ami["tag"]), "its parent stays"
    with pytest.raises(ClientError) as e:
        eu.deregister_image(ImageId=copy)
    assert _error(e)[0] == "InvalidAMIID.NotFound"


def test_deregister_a_discovered_ami_removes_its_docker_tag(ec2, busybox_ami):
    ami = "ami-0" + secrets.token_hex(8)
    tag = f"{h.AMI_REPO_PREFIX}ec2d-test-discovered:{ami}"
    h.OWNED_AMIS.add(ami)
    h.docker("tag", h.BUSYBOX_IMAGE, tag)
    try:
        h.wait_until(
            lambda: ami in {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]},
            timeout=20,
            desc=f"{ami} discovered",
        )
        ec2.deregister_image(ImageId=ami)
        assert ec2.describe_images(ImageIds=[ami])["Images"] == []
        h.wait_until(lambda: _gone(tag), timeout=20, desc=f"{tag} removed")
        assert h.image_id(h.BUSYBOX_IMAGE), "the image keeps its other tags"
        # Discovery never brings it back.
        time.sleep(1.5)
        assert ami not in {i["ImageId"] for i in ec2.describe_images()["Images"]}
    finally:
        h.remove_tags([tag])


def test_deregister_a_public_ami_is_not_authorized(ec2):
    with pytest.raises(ClientError) as e:
        ec2.deregister_image(ImageId=AL2023_X86)
    assert _error(e) == ("AuthFailure", f"Not authorized for image:{AL2023_X86}")


def test_describe_images_owners_amazon_al2023_cli(aws):
    res = aws("describe-images", "--owners", "amazon", "--filters", "Name=name,Values=al2023-ami-*").ok()
    images = {i["ImageId"]: i for i in res.json["Images"]}
    assert set(images) == {AL2023_X86, AL2023_X86_OLDER, AL2023_ARM}, sorted(images)
    img = images[AL2023_X86]
    assert img["OwnerId"] == "137112412989" and img["ImageOwnerAlias"] == "amazon", img
    assert img["Name"].startswith("al2023-ami-2023.") and img["Name"].endswith("-kernel-6.1-x86_64"), img
    assert img["Architecture"] == "x86_64" and img["Public"] is True and img["State"] == "available", img
    [bdm] = img["BlockDeviceMappings"]
    assert bdm["DeviceName"] == img["RootDeviceName"] == "/dev/xvda", img
    assert bdm["Ebs"]["VolumeType"] == "gp3" and bdm["Ebs"]["SnapshotId"].startswith("snap-"), bdm
    res = aws(
        "describe-images", "--owners", "amazon", "--include-deprecated", "--filters", "Name=name,Values=al2023-ami-*"
    ).ok()
    assert AL2023_DEPRECATED in {i["ImageId"] for i in res.json["Images"]}


def _terraform_data_aws_ami(client, owners, filters):
    """The provider's dataSourceAMIRead: DescribeImages, most recent by CreationDate, the
    fields it reads, then GetInstanceUefiData whose errors it ignores."""
    images = client.describe_images(IncludeDeprecated=False, Owners=owners, Filters=filters)["Images"]
    assert images, "Your query returned no results"
    newest = max(images, key=lambda i: i["CreationDate"])
    for field in ("Architecture", "BlockDeviceMappings", "Name", "OwnerId", "RootDeviceName",
                  "RootDeviceType", "State", "VirtualizationType"):
        assert field in newest, (field, newest)
    try:
        client.get_instance_uefi_data(InstanceId=newest["ImageId"])
    except ClientError:
        pass  # ignored by the provider
    return newest


def test_terraform_data_aws_ami_replay(ec2, busybox_ami):
    ami = _terraform_data_aws_ami(
        ec2,
        ["amazon"],
        [
            {"Name": "name", "Values": ["al2023-ami-2023.*-kernel-6.1-x86_64"]},
            {"Name": "virtualization-type", "Values": ["hvm"]},
        ],
    )
    assert ami["ImageId"] == AL2023_X86, ami
    assert ami["State"] == "available" and ami["RootDeviceType"] == "ebs"
    # owners = ["self"] for a Docker-backed AMI.
    mine = _terraform_data_aws_ami(
        ec2,
        ["self"],
        [
            {"Name": "name", "Values": [f"{busybox_ami['name']}*"]},
            {"Name": "virtualization-type", "Values": ["hvm"]},
        ],
    )
    assert mine["ImageId"] == busybox_ami["id"], mine
    assert h.tag_dict(mine.get("Tags")).get("ec2_vm_manager") == "docker", mine


def test_a_catalogue_ami_launches_once_a_docker_tag_backs_it(ec2, cleanup, busybox_ami):
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=JAMMY, MinCount=1, MaxCount=1)
    code, message = _error(e)
    assert code == "InvalidAMIID.NotFound", message
    assert message.startswith(f"The image id '[{JAMMY}]' does not exist"), message
    hint = message.split("`docker tag <image> ", 1)[1].rstrip("`")
    assert hint == f"localstack-ec2/ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20261107:{JAMMY}", hint

    cleanup.track_image(JAMMY)  # at the end: its tag is removed (deregistering it is refused)
    h.docker("tag", h.BUSYBOX_IMAGE, hint)
    h.wait_until(
        lambda: h.tag_dict(ec2.describe_images(ImageIds=[JAMMY])["Images"][0].get("Tags")).get("ec2_vm_manager")
        == "docker",
        timeout=20,
        desc=f"{JAMMY} backed by {hint}",
    )
    [img] = ec2.describe_images(ImageIds=[JAMMY])["Images"]
    assert img["OwnerId"] == "099720109477" and img["Public"] is True, img
    resp = ec2.run_instances(ImageId=JAMMY, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    iid = resp["Instances"][0]["InstanceId"]
    cleanup.track_instances([iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=h.WAITER)
    info = h.wait_container_state(iid, "running", timeout=10)
    assert info["Image"] == h.image_id(h.BUSYBOX_IMAGE)
