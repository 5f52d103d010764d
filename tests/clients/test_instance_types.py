"""DescribeInstanceTypes / DescribeInstanceTypeOfferings with boto3: what Terraform's aws_instance reads."""

import botocore.exceptions
import pytest


def test_describe_instance_types_t3_micro(ec2):
    resp = ec2.describe_instance_types(InstanceTypes=["t3.micro"])
    [t] = resp["InstanceTypes"]
    assert t["InstanceType"] == "t3.micro"
    assert t["VCpuInfo"]["DefaultVCpus"] == 2
    assert t["MemoryInfo"]["SizeInMiB"] == 1024
    assert t["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"]
    assert t["BurstablePerformanceSupported"] is True
    assert t["FreeTierEligible"] is True
    assert t["SupportedUsageClasses"] == ["on-demand", "spot"]
    assert t["EbsInfo"]["EbsOptimizedSupport"] == "default"
    assert t["NetworkInfo"]["NetworkPerformance"] == "Up to 5 Gigabit"
    assert t["Hypervisor"] == "nitro"
    assert t["SupportedBootModes"] == ["legacy-bios", "uefi"]


def test_unknown_instance_type_is_invalid_instance_type(ec2):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_instance_types(InstanceTypes=["t3.mega"])
    err = e.value.response["Error"]
    assert err["Code"] == "InvalidInstanceType"
    assert err["Message"] == "The following supplied instance types do not exist: [t3.mega]"


def test_paginator_walks_every_type_once(ec2):
    names = []
    pages = 0
    for page in ec2.get_paginator("describe_instance_types").paginate(PaginationConfig={"PageSize": 20}):
        assert len(page["InstanceTypes"]) <= 20
        names += [t["InstanceType"] for t in page["InstanceTypes"]]
        pages += 1
    assert pages > 1
    assert len(names) == len(set(names))
    assert {"t2.micro", "t3.micro", "t4g.micro", "m7g.large", "r6i.xlarge", "m1.small"} <= set(names)
    graviton = ec2.describe_instance_types(
        Filters=[{"Name": "processor-info.supported-architecture", "Values": ["arm64"]}]
    )["InstanceTypes"]
    assert graviton and all(t["InstanceType"].split(".")[0].endswith("g") for t in graviton)


def test_offerings_per_zone(ec2):
    resp = ec2.describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": ["t3.micro"]}]
    )
    offerings = resp["InstanceTypeOfferings"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    assert sorted(o["Location"] for o in offerings) == sorted(zones)
    assert all(o["LocationType"] == "availability-zone" and o["InstanceType"] == "t3.micro" for o in offerings)
    every = []
    for page in ec2.get_paginator("describe_instance_type_offerings").paginate(LocationType="region"):
        every += page["InstanceTypeOfferings"]
    assert len(every) == len({o["InstanceType"] for o in every}) > 100
