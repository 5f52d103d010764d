"""Launch templates through boto3 against a Docker-backed ec2d: a template and its versions,
the default version, instances launched from $Latest and by name from $Default (real
containers, with the template's type, AMI, user data and tags, aws:ec2launchtemplate:*
included), Terraform's aws_instance read of such an instance, and the deletes."""

import base64
import secrets

import pytest
from botocore.exceptions import ClientError

import ec2d_harness as h


def _code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_a_template_launches_instances_as_ec2_does(ec2, cleanup, busybox_ami):
    name = f"web-{secrets.token_hex(4)}"
    script = "#!/bin/sh\necho launched-from-template > /tmp/lt-marker\n"
    user_data = base64.b64encode(script.encode()).decode()

    created = ec2.create_launch_template(
        LaunchTemplateName=name,
        VersionDescription="first",
        LaunchTemplateData={
            "ImageId": busybox_ami["id"],
            "InstanceType": "t3.micro",
            "UserData": user_data,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
        },
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "team", "Value": "platform"}]}],
    )["LaunchTemplate"]
    lt_id = created["LaunchTemplateId"]
    assert lt_id.startswith("lt-") and len(lt_id) == 20
    assert created["LaunchTemplateName"] == name
    assert (created["DefaultVersionNumber"], created["LatestVersionNumber"]) == (1, 1)
    assert created["CreatedBy"] == "arn:aws:iam::000000000000:user/default_user"
    assert h.tag_dict(created["Tags"]) == {"team": "platform"}

    with pytest.raises(ClientError) as e:
        ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": busybox_ami["id"]})
    assert _code(e) == "InvalidLaunchTemplateName.AlreadyExistsException"

    # Version 2: version 1 with a larger type; version 3: version 1 with another tag.
    v2 = ec2.create_launch_template_version(
        LaunchTemplateId=lt_id, SourceVersion="1", VersionDescription="small", LaunchTemplateData={"InstanceType": "t3.small"}
    )["LaunchTemplateVersion"]
    assert (v2["VersionNumber"], v2["DefaultVersion"]) == (2, False)
    assert v2["LaunchTemplateData"] == {
        "ImageId": busybox_ami["id"],
        "InstanceType": "t3.small",
        "UserData": user_data,
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
    }
    v3 = ec2.create_launch_template_version(
        LaunchTemplateName=name,
        SourceVersion="1",
        LaunchTemplateData={
            "InstanceType": "t3.medium",
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "tier", "Value": "front"}]}],
        },
    )["LaunchTemplateVersion"]
    assert v3["VersionNumber"] == 3
    assert v3["LaunchTemplateData"]["TagSpecifications"] == [
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}, {"Key": "tier", "Value": "front"}]}
    ]

    modified = ec2.modify_launch_template(LaunchTemplateId=lt_id, DefaultVersion="2")["LaunchTemplate"]
    assert (modified["DefaultVersionNumber"], modified["LatestVersionNumber"]) == (2, 3)
    [latest] = ec2.describe_launch_template_versions(LaunchTemplateName=name, Versions=["$Latest"])["LaunchTemplateVersions"]
    [default] = ec2.describe_launch_template_versions(LaunchTemplateId=lt_id, Versions=["$Default"])["LaunchTemplateVersions"]
    assert (latest["VersionNumber"], default["VersionNumber"]) == (3, 2)
    assert default["DefaultVersion"] is True and default["VersionDescription"] == "small"

    # From $Latest by id, and by name with no version ($Default).
    by_latest = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "$Latest"})
    by_default = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": name})
    ids = [by_latest["Instances"][0]["InstanceId"], by_default["Instances"][0]["InstanceId"]]
    cleanup.track_instances(ids)
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=h.WAITER)
    found = h.describe_instances(ec2, ids=ids)
    expected = {ids[0]: ("t3.medium", "3", {"tier": "front"}), ids[1]: ("t3.small", "2", {})}
    for iid, (itype, version, extra) in expected.items():
        inst = found[iid]
        assert inst["InstanceType"] == itype
        assert inst["ImageId"] == busybox_ami["id"]
        assert h.tag_dict(inst["Tags"]) == {
            "Name": name,
            **extra,
            "aws:ec2launchtemplate:id": lt_id,
            "aws:ec2launchtemplate:version": version,
            "ec2_vm_manager": "docker",
        }
        # The template's user data ran in the container.
        h.wait_until(
            lambda iid=iid: h.docker("exec", h.container_name(iid), "cat", "/tmp/lt-marker", check=False).stdout.strip()
            == "launched-from-template",
            timeout=30,
            desc=f"user data of {iid}",
        )
        attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
        assert attr["UserData"]["Value"] == user_data

    # A parameter of the request overrides the template's.
    over = ec2.run_instances(
        MinCount=1, MaxCount=1, InstanceType="t3.nano", LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "1"}
    )["Instances"][0]
    cleanup.track_instances([over["InstanceId"]])
    assert over["InstanceType"] == "t3.nano"
    assert h.tag_dict(over["Tags"])["aws:ec2launchtemplate:version"] == "1"

    # Terraform's aws_instance read: the template tag by resource and key, then the template.
    tags = ec2.describe_tags(
        Filters=[
            {"Name": "resource-id", "Values": [ids[1]]},
            {"Name": "key", "Values": ["aws:ec2launchtemplate:id"]},
        ]
    )["Tags"]
    assert [(t["Key"], t["Value"], t["ResourceType"]) for t in tags] == [("aws:ec2launchtemplate:id", lt_id, "instance")]
    [tmpl] = ec2.describe_launch_templates(LaunchTemplateIds=[lt_id])["LaunchTemplates"]
    assert (tmpl["LaunchTemplateName"], tmpl["DefaultVersionNumber"], tmpl["LatestVersionNumber"]) == (name, 2, 3)
    for version in ["2", "$Default", "$Latest"]:
        [v] = ec2.describe_launch_template_versions(LaunchTemplateId=lt_id, Versions=[version])["LaunchTemplateVersions"]
        assert v["LaunchTemplateId"] == lt_id
    filtered = ec2.describe_launch_templates(Filters=[{"Name": "tag:team", "Values": ["platform"]}])["LaunchTemplates"]
    assert lt_id in [t["LaunchTemplateId"] for t in filtered]

    # The default version cannot be deleted; the others can, and a missing one is reported.
    deleted = ec2.delete_launch_template_versions(LaunchTemplateId=lt_id, Versions=["1", "2", "7"])
    assert [(d["LaunchTemplateId"], d["VersionNumber"]) for d in deleted["SuccessfullyDeletedLaunchTemplateVersions"]] == [(lt_id, 1)]
    refused = {u["VersionNumber"]: u["ResponseError"]["Code"] for u in deleted["UnsuccessfullyDeletedLaunchTemplateVersions"]}
    assert refused == {2: "unexpectedError", 7: "launchTemplateVersionDoesNotExist"}
    left = ec2.describe_launch_template_versions(LaunchTemplateId=lt_id)["LaunchTemplateVersions"]
    assert sorted(v["VersionNumber"] for v in left) == [2, 3]

    with pytest.raises(ClientError) as e:
        ec2.describe_launch_template_versions(LaunchTemplateId=lt_id, Versions=["1"])
    assert _code(e) == "InvalidLaunchTemplateId.VersionNotFound"
    with pytest.raises(ClientError) as e:
        ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "1"})
    assert _code(e) == "InvalidLaunchTemplateId.VersionNotFound"

    # The template goes; its instances keep their tags, which users cannot remove.
    gone = ec2.delete_launch_template(LaunchTemplateName=name)["LaunchTemplate"]
    assert gone["LaunchTemplateId"] == lt_id
    with pytest.raises(ClientError) as e:
        ec2.describe_launch_templates(LaunchTemplateNames=[name])
    assert _code(e) == "InvalidLaunchTemplateName.NotFoundException"
    with pytest.raises(ClientError) as e:
        ec2.describe_launch_template_versions(LaunchTemplateId=lt_id)
    assert _code(e) == "InvalidLaunchTemplateId.NotFound"
    ec2.delete_tags(Resources=[ids[0]])
    [inst] = h.describe_instances(ec2, ids=[ids[0]]).values()
    assert h.tag_dict(inst["Tags"]) == {"aws:ec2launchtemplate:id": lt_id, "aws:ec2launchtemplate:version": "3"}
    with pytest.raises(ClientError) as e:
        ec2.delete_tags(Resources=[ids[0]], Tags=[{"Key": "aws:ec2launchtemplate:id"}])
    assert _code(e) == "InvalidParameterValue"
