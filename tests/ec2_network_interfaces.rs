//! DescribeNetworkInterfaces through `api::router`: each VPC instance's primary interface,
//! derived from the instance, its filters, references, errors and paging.

mod common;

use common::api::{Harness, Node};
use ec2d::model::InstanceState;

async fn interfaces(h: &Harness, extra: &[(&str, &str)]) -> Node {
    let mut params = vec![("Action", "DescribeNetworkInterfaces")];
    params.extend_from_slice(extra);
    h.post(&params).await.ok("DescribeNetworkInterfaces")
}

async fn interface_ids(h: &Harness, extra: &[(&str, &str)]) -> Vec<String> {
    interfaces(h, extra)
        .await
        .items("networkInterfaceSet")
        .iter()
        .map(|i| i.text("networkInterfaceId").to_string())
        .collect()
}

/// The interface DescribeInstances shows inside `instance`.
async fn only(h: &Harness, name: &str, value: String) -> Vec<String> {
    interface_ids(h, &[("Filter.1.Name", name), ("Filter.1.Value.1", &value)]).await
}

async fn instance_interface(h: &Harness, instance: &str) -> Node {
    let doc = h
        .post(&[("Action", "DescribeInstances"), ("InstanceId.1", instance)])
        .await
        .ok("DescribeInstances");
    doc.path("reservationSet/item/instancesSet/item/networkInterfaceSet/item")
        .clone()
}

#[tokio::test]
async fn each_instance_has_its_primary_interface_as_describe_instances_shows_it() {
    let h = Harness::new();
    let a = h.run_one().await;
    h.observe(&a, InstanceState::Running, Some("172.17.0.9"));
    let b = h.run_one().await;

    let doc = interfaces(&h, &[]).await;
    let items = doc.items("networkInterfaceSet");
    assert_eq!(items.len(), 2);
    assert!(doc.opt("nextToken").is_none());

    let inside = instance_interface(&h, &a).await;
    let eni = inside.text("networkInterfaceId");
    assert!(eni.starts_with("eni-"), "{eni}");
    let one = interfaces(&h, &[("NetworkInterfaceId.1", eni)]).await;
    let item = one.items("networkInterfaceSet")[0];
    for same in [
        "networkInterfaceId",
        "subnetId",
        "vpcId",
        "macAddress",
        "privateIpAddress",
        "privateDnsName",
        "status",
        "ownerId",
    ] {
        assert_eq!(item.text(same), inside.text(same), "{same}");
    }
    assert_eq!(item.text("privateIpAddress"), "172.17.0.9");
    assert_eq!(item.text("availabilityZone"), "us-east-1a");
    assert_eq!(item.text("interfaceType"), "interface");
    assert_eq!(item.text("requesterManaged"), "false");
    assert_eq!(
        item.text_at("attachment/attachmentId"),
        inside.text_at("attachment/attachmentId")
    );
    assert_eq!(item.text_at("attachment/instanceId"), a);
    assert_eq!(item.text_at("attachment/deviceIndex"), "0");
    assert_eq!(item.text_at("attachment/status"), "attached");
    assert_eq!(item.text_at("association/publicIp"), "172.17.0.9");
    assert_eq!(
        item.pairs("groupSet", "groupId", "groupName")[0].1,
        "default"
    );
    assert!(item.items("tagSet").is_empty());
    assert_eq!(item.text_at("privateIpAddressesSet/item/primary"), "true");

    // A pending instance without an address yet has an interface without one.
    let pending = interfaces(
        &h,
        &[
            ("Filter.1.Name", "attachment.instance-id"),
            ("Filter.1.Value.1", &b),
        ],
    )
    .await;
    let item = pending.items("networkInterfaceSet")[0];
    assert!(item.opt("privateIpAddress").is_none());
    assert!(item.opt("association").is_none());
}

#[tokio::test]
async fn filters_select_interfaces() {
    let h = Harness::new();
    let a = h.run_one().await;
    h.observe(&a, InstanceState::Running, Some("172.17.0.9"));
    let b = h.run(&[("Placement.AvailabilityZone", "us-east-1b")]).await;
    let b = b.path("instancesSet/item/instanceId").text.clone();
    let eni_a = instance_interface(&h, &a).await;
    let eni_a_id = eni_a.text("networkInterfaceId").to_string();
    let group = eni_a.text_at("groupSet/item/groupId").to_string();
    let subnet_a = eni_a.text("subnetId").to_string();
    let vpc = eni_a.text("vpcId").to_string();
    let attachment = eni_a.text_at("attachment/attachmentId").to_string();

    assert_eq!(only(&h, "group-id", group.clone()).await.len(), 2);
    assert_eq!(only(&h, "group-name", "default".into()).await.len(), 2);
    assert_eq!(only(&h, "vpc-id", vpc).await.len(), 2);
    assert_eq!(
        only(&h, "subnet-id", subnet_a).await,
        vec![eni_a_id.clone()]
    );
    assert_eq!(
        only(&h, "attachment.instance-id", a.clone()).await,
        vec![eni_a_id.clone()]
    );
    assert_eq!(
        only(&h, "attachment.attachment-id", attachment).await,
        vec![eni_a_id.clone()]
    );
    assert_eq!(
        only(&h, "network-interface-id", eni_a_id.clone()).await,
        vec![eni_a_id.clone()]
    );
    assert_eq!(
        only(&h, "private-ip-address", "172.17.0.9".into()).await,
        vec![eni_a_id.clone()]
    );
    assert_eq!(
        only(&h, "availability-zone", "us-east-1a".into()).await,
        vec![eni_a_id.clone()]
    );
    assert_eq!(only(&h, "status", "in-use".into()).await.len(), 2);
    assert!(only(&h, "status", "available".into()).await.is_empty());
    assert_eq!(only(&h, "owner-id", "000000000000".into()).await.len(), 2);
    assert_eq!(only(&h, "description", String::new()).await.len(), 2);
    assert!(only(&h, "group-id", "sg-0000000000000000f".into())
        .await
        .is_empty());
    // Interfaces carry no tags (EC2 does not copy the instance's).
    assert!(only(&h, "tag-key", "Name".into()).await.is_empty());
    assert!(only(&h, "tag:Name", "x".into()).await.is_empty());
    let _ = b;

    h.post(&[
        ("Action", "DescribeNetworkInterfaces"),
        ("Filter.1.Name", "colour"),
        ("Filter.1.Value.1", "x"),
    ])
    .await
    .err("InvalidParameterValue");
}

#[tokio::test]
async fn terminated_instances_have_no_interface() {
    let h = Harness::new();
    let a = h.run_one().await;
    let eni = instance_interface(&h, &a)
        .await
        .text("networkInterfaceId")
        .to_string();
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &a)])
        .await
        .ok("TerminateInstances");
    h.observe(&a, InstanceState::Terminated, None);
    assert!(interface_ids(&h, &[]).await.is_empty());
    let message = h
        .post(&[
            ("Action", "DescribeNetworkInterfaces"),
            ("NetworkInterfaceId.1", &eni),
        ])
        .await
        .err("InvalidNetworkInterfaceID.NotFound");
    assert_eq!(
        message,
        format!("The networkInterface ID '{eni}' does not exist")
    );
}

#[tokio::test]
async fn references_errors_and_paging() {
    let h = Harness::new();
    for _ in 0..7 {
        h.run_one().await;
    }
    let message = h
        .post(&[
            ("Action", "DescribeNetworkInterfaces"),
            ("NetworkInterfaceId.1", "nic-1"),
        ])
        .await
        .err("InvalidNetworkInterfaceID.Malformed");
    assert_eq!(message, "Invalid id: \"nic-1\" (expecting \"eni-...\")");
    let message = h
        .post(&[
            ("Action", "DescribeNetworkInterfaces"),
            ("NetworkInterfaceId.1", "eni-0123456789abcdef0"),
            ("NetworkInterfaceId.2", "eni-0123456789abcdef1"),
        ])
        .await
        .err("InvalidNetworkInterfaceID.NotFound");
    assert_eq!(
        message,
        "The networkInterface IDs 'eni-0123456789abcdef0, eni-0123456789abcdef1' do not exist"
    );

    let all = interface_ids(&h, &[]).await;
    assert_eq!(all.len(), 7);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    let first = interfaces(&h, &[("MaxResults", "5")]).await;
    let token = first.text("nextToken").to_string();
    let second = interface_ids(&h, &[("MaxResults", "5"), ("NextToken", &token)]).await;
    let mut paged: Vec<String> = first
        .items("networkInterfaceSet")
        .iter()
        .map(|i| i.text("networkInterfaceId").to_string())
        .collect();
    paged.extend(second);
    assert_eq!(paged, all);
    h.post(&[("Action", "DescribeNetworkInterfaces"), ("MaxResults", "4")])
        .await
        .err("InvalidParameterValue");
    h.post(&[
        ("Action", "DescribeNetworkInterfaces"),
        ("NextToken", "garbage"),
    ])
    .await
    .err("InvalidNextToken");
}
