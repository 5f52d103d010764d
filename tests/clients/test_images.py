"""DescribeImages: Docker images tagged localstack-ec2/<name>:<ami-id> are AMIs."""

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
