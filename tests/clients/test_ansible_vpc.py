"""Ansible's amazon.aws VPC modules against ec2d: ec2_vpc_net, ec2_vpc_subnet, ec2_vpc_igw and ec2_vpc_route_table.

One playbook creates a VPC, a public subnet (map_public: ModifySubnetAttribute), an internet
gateway attached to the VPC and a route table with a default route through it, associated with
the subnet; the same playbook run again must report nothing changed; a second playbook removes
them all (state: absent) in reverse order. boto3 checks each step from outside. The playbook
runner (module defaults pointing every module at ec2d, the json callback) is test_ansible.py's.
"""

from __future__ import annotations

from test_ansible import Ansible, ansible, prefix  # noqa: F401  (fixtures)

CREATE = """
- name: vpc
  amazon.aws.ec2_vpc_net:
    name: "{{ p }}-net"
    cidr_block: 10.30.0.0/16
    tags:
      purpose: routing
  register: vpc

- name: subnet
  amazon.aws.ec2_vpc_subnet:
    vpc_id: "{{ vpc.vpc.id }}"
    cidr: 10.30.1.0/24
    map_public: true
    tags:
      Name: "{{ p }}-public"
  register: subnet

- name: igw
  amazon.aws.ec2_vpc_igw:
    vpc_id: "{{ vpc.vpc.id }}"
    tags:
      Name: "{{ p }}-igw"
  register: igw

- name: route table
  amazon.aws.ec2_vpc_route_table:
    vpc_id: "{{ vpc.vpc.id }}"
    tags:
      Name: "{{ p }}-public"
    subnets:
      - "{{ subnet.subnet.id }}"
    routes:
      - dest: 0.0.0.0/0
        gateway_id: "{{ igw.gateway_id }}"
  register: rtb
"""

ABSENT = """
- name: route table absent
  amazon.aws.ec2_vpc_route_table:
    vpc_id: "{{ vpc_id }}"
    route_table_id: "{{ rtb_id }}"
    lookup: id
    state: absent

- name: igw absent
  amazon.aws.ec2_vpc_igw:
    vpc_id: "{{ vpc_id }}"
    state: absent

- name: subnet absent
  amazon.aws.ec2_vpc_subnet:
    vpc_id: "{{ vpc_id }}"
    cidr: 10.30.1.0/24
    state: absent

- name: vpc absent
  amazon.aws.ec2_vpc_net:
    name: "{{ p }}-net"
    cidr_block: 10.30.0.0/16
    state: absent
"""

TASKS = ["vpc", "subnet", "igw", "route table"]


def test_ansible_vpc_igw_route_table(ansible: Ansible, ec2, prefix: str):  # noqa: F811
    first = ansible.run(CREATE, {"p": prefix}, name="vpc-create").ok()
    for task in TASKS:
        assert first[task]["changed"] is True, (task, first.summary())
    vpc_id = first["vpc"]["vpc"]["id"]
    subnet_id = first["subnet"]["subnet"]["id"]
    igw_id = first["igw"]["gateway_id"]
    rtb_id = first["route table"]["route_table"]["id"]

    (subnet,) = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert subnet["MapPublicIpOnLaunch"] is True and subnet["VpcId"] == vpc_id
    (igw,) = ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"]
    assert igw["Attachments"] == [{"State": "available", "VpcId": vpc_id}]
    (table,) = ec2.describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"]
    assert {(r["DestinationCidrBlock"], r["GatewayId"]) for r in table["Routes"]} == {
        ("10.30.0.0/16", "local"),
        ("0.0.0.0/0", igw_id),
    }
    assert [a["SubnetId"] for a in table["Associations"]] == [subnet_id]

    # idempotent: the same playbook changes nothing
    second = ansible.run(CREATE, {"p": prefix}, name="vpc-again").ok()
    for task in TASKS:
        assert second[task]["changed"] is False, (task, second.summary())
    assert second["vpc"]["vpc"]["id"] == vpc_id
    assert second["route table"]["route_table"]["id"] == rtb_id

    gone = ansible.run(
        ABSENT, {"p": prefix, "vpc_id": vpc_id, "rtb_id": rtb_id}, name="vpc-absent"
    ).ok()
    for task in ["route table absent", "igw absent", "subnet absent", "vpc absent"]:
        assert gone[task]["changed"] is True, (task, gone.summary())
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"] == []
    assert (
        ec2.describe_internet_gateways(Filters=[{"Name": "internet-gateway-id", "Values": [igw_id]}])[
            "InternetGateways"
        ]
        == []
    )
    assert ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"] == []
