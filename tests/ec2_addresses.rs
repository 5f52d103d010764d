//! Elastic IPs through `api::router`: AllocateAddress, DescribeAddresses (references, filters,
//! errors), DescribeAddressesAttribute, ReleaseAddress and tags on `eipalloc-` ids;
//! AssociateAddress and DisassociateAddress, and the association as DescribeAddresses,
//! DescribeInstances and DescribeNetworkInterfaces show it.

mod common;

use common::api::{Harness, Node};
use ec2d::model::InstanceState;

async fn allocate(h: &Harness, extra: &[(&str, &str)]) -> Node {
    let mut params = vec![("Action", "AllocateAddress"), ("Domain", "vpc")];
    params.extend_from_slice(extra);
    h.post(&params).await.ok("AllocateAddress")
}

async fn described(h: &Harness, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params = vec![("Action", "DescribeAddresses")];
    params.extend_from_slice(extra);
    h.post(&params)
        .await
        .ok("DescribeAddresses")
        .pairs("addressesSet", "allocationId", "publicIp")
}

#[tokio::test]
async fn allocate_describe_and_release() {
    let h = Harness::new();
    let a = allocate(
        &h,
        &[
            ("TagSpecification.1.ResourceType", "elastic-ip"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "web"),
        ],
    )
    .await;
    let a_id = a.text("allocationId").to_string();
    assert!(a_id.starts_with("eipalloc-"), "{a_id}");
    assert_eq!(a.text("publicIp"), "198.51.100.1");
    assert_eq!(a.text("domain"), "vpc");
    let b = allocate(&h, &[]).await;
    let b_id = b.text("allocationId").to_string();
    assert_eq!(b.text("publicIp"), "198.51.100.2");

    let all = described(&h, &[]).await;
    assert_eq!(all.len(), 2);
    let one = h
        .post(&[("Action", "DescribeAddresses"), ("AllocationId.1", &a_id)])
        .await
        .ok("DescribeAddresses");
    let item = one.items("addressesSet")[0];
    assert_eq!(item.text("publicIp"), "198.51.100.1");
    assert_eq!(item.text("domain"), "vpc");
    assert_eq!(item.text("networkBorderGroup"), "us-east-1");
    assert_eq!(
        item.pairs("tagSet", "key", "value"),
        vec![("Name".into(), "web".into())]
    );
    assert_eq!(
        described(&h, &[("PublicIp.1", "198.51.100.2")]).await,
        vec![(b_id.clone(), "198.51.100.2".to_string())]
    );
    for (name, value, want) in [
        ("allocation-id", a_id.as_str(), 1),
        ("public-ip", "198.51.100.2", 1),
        ("domain", "vpc", 2),
        ("tag:Name", "web", 1),
        ("tag-key", "Name", 1),
        ("instance-id", "i-0123456789abcdef0", 0),
        ("association-id", "eipassoc-1", 0),
    ] {
        let got = described(&h, &[("Filter.1.Name", name), ("Filter.1.Value.1", value)]).await;
        assert_eq!(got.len(), want, "{name}");
    }

    // Tags on eipalloc- ids.
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &b_id),
        ("Tag.1.Key", "env"),
        ("Tag.1.Value", "prod"),
    ])
    .await
    .ok("CreateTags");
    let tags = h
        .post(&[
            ("Action", "DescribeTags"),
            ("Filter.1.Name", "resource-id"),
            ("Filter.1.Value.1", &b_id),
        ])
        .await
        .ok("DescribeTags");
    assert_eq!(tags.text_at("tagSet/item/resourceType"), "elastic-ip");

    let attr = h
        .post(&[
            ("Action", "DescribeAddressesAttribute"),
            ("AllocationId.1", &a_id),
            ("Attribute", "domain-name"),
        ])
        .await
        .ok("DescribeAddressesAttribute");
    let item = attr.items("addressSet")[0];
    assert_eq!(item.text("allocationId"), a_id);
    assert!(item.opt("ptrRecord").is_none());

    h.post(&[("Action", "ReleaseAddress"), ("AllocationId", &a_id)])
        .await
        .ok("ReleaseAddress");
    assert_eq!(
        described(&h, &[]).await,
        vec![(b_id, "198.51.100.2".to_string())]
    );
    // The released address is free again.
    assert_eq!(allocate(&h, &[]).await.text("publicIp"), "198.51.100.1");
}

#[tokio::test]
async fn errors_are_ec2s() {
    let h = Harness::new();
    let missing = "eipalloc-0123456789abcdef0";
    let message = h
        .post(&[("Action", "DescribeAddresses"), ("AllocationId.1", missing)])
        .await
        .err("InvalidAllocationID.NotFound");
    assert_eq!(
        message,
        format!("The allocation ID '{missing}' does not exist")
    );
    let message = h
        .post(&[
            ("Action", "DescribeAddresses"),
            ("PublicIp.1", "203.0.113.9"),
        ])
        .await
        .err("InvalidAddress.NotFound");
    assert_eq!(message, "Address '203.0.113.9' not found.");
    h.post(&[
        ("Action", "DescribeAddresses"),
        ("AllocationId.1", "alloc-1"),
    ])
    .await
    .err("InvalidAllocationID.Malformed");
    h.post(&[("Action", "ReleaseAddress"), ("AllocationId", missing)])
        .await
        .err("InvalidAllocationID.NotFound");
    h.post(&[("Action", "ReleaseAddress")])
        .await
        .err("MissingParameter");
    h.post(&[
        ("Action", "DescribeAddressesAttribute"),
        ("AllocationId.1", missing),
        ("Attribute", "domain-name"),
    ])
    .await
    .err("InvalidAllocationID.NotFound");
    h.refuses_tag_type(&[("Action", "AllocateAddress")], "instance")
        .await;
    h.post(&[("Action", "AllocateAddress"), ("Domain", "classic")])
        .await
        .err("InvalidParameterValue");
    h.post(&[
        ("Action", "DescribeAddresses"),
        ("Filter.1.Name", "colour"),
        ("Filter.1.Value.1", "x"),
    ])
    .await
    .err("InvalidParameterValue");
}

/// A launched instance, `pending`.
async fn launch(h: &Harness) -> String {
    h.post(&[
        ("Action", "RunInstances"),
        ("ImageId", "ami-12345678"),
        ("MinCount", "1"),
        ("MaxCount", "1"),
    ])
    .await
    .ok("RunInstances")
    .text_at("instancesSet/item/instanceId")
    .to_string()
}

/// A running instance (as the reconciler would have it) with `ip` as its private address.
async fn running(h: &Harness, ip: &str) -> String {
    let id = launch(h).await;
    h.observe(&id, InstanceState::Running, Some(ip));
    id
}

async fn associate(h: &Harness, extra: &[(&str, &str)]) -> String {
    let mut params = vec![("Action", "AssociateAddress")];
    params.extend_from_slice(extra);
    h.post(&params)
        .await
        .ok("AssociateAddress")
        .text("associationId")
        .to_string()
}

async fn address_item(h: &Harness, id: &str) -> Node {
    h.post(&[("Action", "DescribeAddresses"), ("AllocationId.1", id)])
        .await
        .ok("DescribeAddresses")
        .items("addressesSet")[0]
        .clone()
}

#[tokio::test]
async fn association_shows_on_the_address_the_instance_and_its_interface() {
    let h = Harness::new();
    let id = running(&h, "172.17.0.5").await;
    let a = allocate(&h, &[]).await;
    let a_id = a.text("allocationId").to_string();
    // Rendered (and kept) before the association: it must show at once after it.
    let before = h.instance_item(&id).await;
    assert!(before
        .opt("ipAddress")
        .is_some_and(|n| n.text == "172.17.0.5"));
    assert_eq!(before.text("dnsName"), "");

    let assoc = associate(&h, &[("AllocationId", &a_id), ("InstanceId", &id)]).await;
    assert!(assoc.starts_with("eipassoc-"), "{assoc}");

    let item = h.instance_item(&id).await;
    let eni = item
        .text_at("networkInterfaceSet/item/networkInterfaceId")
        .to_string();
    assert_eq!(item.text("ipAddress"), "198.51.100.1");
    assert_eq!(
        item.text("dnsName"),
        "ec2-198-51-100-1.compute-1.amazonaws.com"
    );
    assert_eq!(
        item.text_at("networkInterfaceSet/item/association/publicIp"),
        "198.51.100.1"
    );
    assert_eq!(
        item.text_at("networkInterfaceSet/item/association/ipOwnerId"),
        "000000000000"
    );
    assert_eq!(
        item.text_at("networkInterfaceSet/item/privateIpAddressesSet/item/association/publicIp"),
        "198.51.100.1"
    );

    let address = address_item(&h, &a_id).await;
    assert_eq!(address.text("instanceId"), id);
    assert_eq!(address.text("associationId"), assoc);
    assert_eq!(address.text("networkInterfaceId"), eni);
    assert_eq!(address.text("networkInterfaceOwnerId"), "000000000000");
    assert_eq!(address.text("privateIpAddress"), "172.17.0.5");
    for (name, value) in [
        ("instance-id", id.as_str()),
        ("association-id", assoc.as_str()),
        ("network-interface-id", eni.as_str()),
        ("private-ip-address", "172.17.0.5"),
        ("network-interface-owner-id", "000000000000"),
    ] {
        let got = described(&h, &[("Filter.1.Name", name), ("Filter.1.Value.1", value)]).await;
        assert_eq!(got.len(), 1, "{name}");
    }
    for (name, value) in [
        ("ip-address", "198.51.100.1"),
        ("network-interface.association.public-ip", "198.51.100.1"),
        (
            "network-interface.addresses.association.public-ip",
            "198.51.100.1",
        ),
        ("network-interface.association.allocation-id", a_id.as_str()),
        (
            "network-interface.association.association-id",
            assoc.as_str(),
        ),
        ("dns-name", "ec2-198-51-100-1.compute-1.amazonaws.com"),
    ] {
        assert_eq!(
            h.instance_ids_matching(name, value).await,
            vec![id.clone()],
            "{name}"
        );
    }
    let interfaces = h
        .post(&[
            ("Action", "DescribeNetworkInterfaces"),
            ("Filter.1.Name", "association.allocation-id"),
            ("Filter.1.Value.1", &a_id),
        ])
        .await
        .ok("DescribeNetworkInterfaces");
    let interface = interfaces.items("networkInterfaceSet")[0];
    assert_eq!(interface.text("networkInterfaceId"), eni);
    assert_eq!(interface.text_at("association/publicIp"), "198.51.100.1");
    assert_eq!(interface.text_at("association/allocationId"), a_id);
    assert_eq!(interface.text_at("association/associationId"), assoc);
    assert_eq!(
        interface.text_at("association/publicDnsName"),
        "ec2-198-51-100-1.compute-1.amazonaws.com"
    );

    // An associated address cannot be released.
    let message = h
        .post(&[("Action", "ReleaseAddress"), ("AllocationId", &a_id)])
        .await
        .err("InvalidIPAddress.InUse");
    assert_eq!(message, "Address 198.51.100.1 is in use.");

    // An Elastic IP stays on a stopped instance.
    h.post(&[("Action", "StopInstances"), ("InstanceId.1", &id)])
        .await
        .ok("StopInstances");
    h.observe(&id, InstanceState::Stopped, None);
    let item = h.instance_item(&id).await;
    assert_eq!(item.text_at("instanceState/name"), "stopped");
    assert_eq!(item.text("ipAddress"), "198.51.100.1");
    assert_eq!(address_item(&h, &a_id).await.text("instanceId"), id);

    // Disassociated: gone everywhere at once; a second time the association is unknown.
    h.post(&[("Action", "DisassociateAddress"), ("AssociationId", &assoc)])
        .await
        .ok("DisassociateAddress");
    let item = h.instance_item(&id).await;
    assert!(item.opt("ipAddress").is_none());
    assert_eq!(item.text("dnsName"), "");
    let address = address_item(&h, &a_id).await;
    assert!(address.opt("instanceId").is_none());
    assert!(address.opt("associationId").is_none());
    let message = h
        .post(&[("Action", "DisassociateAddress"), ("AssociationId", &assoc)])
        .await
        .err("InvalidAssociationID.NotFound");
    assert_eq!(
        message,
        format!("The association ID '{assoc}' does not exist")
    );
    h.post(&[("Action", "ReleaseAddress"), ("AllocationId", &a_id)])
        .await
        .ok("ReleaseAddress");
}

#[tokio::test]
async fn reassociation_moves_addresses_and_an_instance_holds_one() {
    let h = Harness::new();
    let one = running(&h, "172.17.0.5").await;
    let two = running(&h, "172.17.0.6").await;
    let a_id = allocate(&h, &[]).await.text("allocationId").to_string();
    let b_id = allocate(&h, &[]).await.text("allocationId").to_string();
    let first = associate(&h, &[("AllocationId", &a_id), ("InstanceId", &one)]).await;
    // Again to the same place: nothing changes, even without reassociation.
    let again = associate(
        &h,
        &[
            ("AllocationId", &a_id),
            ("InstanceId", &one),
            ("AllowReassociation", "false"),
        ],
    )
    .await;
    assert_eq!(again, first);
    // Elsewhere with AllowReassociation=false: refused.
    let message = h
        .post(&[
            ("Action", "AssociateAddress"),
            ("AllocationId", &a_id),
            ("InstanceId", &two),
            ("AllowReassociation", "false"),
        ])
        .await
        .err("Resource.AlreadyAssociated");
    assert_eq!(
        message,
        format!("resource {a_id} is already associated with associate-id {first}")
    );
    // Without it the address moves.
    let moved = associate(&h, &[("AllocationId", &a_id), ("InstanceId", &two)]).await;
    assert_ne!(moved, first);
    assert_eq!(address_item(&h, &a_id).await.text("instanceId"), two);
    assert!(h
        .instance_item(&one)
        .await
        .opt("ipAddress")
        .is_some_and(|n| n.text == "172.17.0.5"));
    assert_eq!(
        h.instance_item(&two).await.text("ipAddress"),
        "198.51.100.1"
    );
    // A second address for instance two (by its interface) takes the first one's place.
    let eni = h
        .instance_item(&two)
        .await
        .text_at("networkInterfaceSet/item/networkInterfaceId")
        .to_string();
    associate(
        &h,
        &[
            ("AllocationId", &b_id),
            ("NetworkInterfaceId", &eni),
            ("PrivateIpAddress", "172.17.0.6"),
        ],
    )
    .await;
    assert!(address_item(&h, &a_id).await.opt("instanceId").is_none());
    let b = address_item(&h, &b_id).await;
    assert_eq!(b.text("instanceId"), two);
    assert_eq!(b.text("networkInterfaceId"), eni);
    assert_eq!(
        h.instance_item(&two).await.text("ipAddress"),
        "198.51.100.2"
    );
    // The legacy PublicIp forms.
    associate(&h, &[("PublicIp", "198.51.100.1"), ("InstanceId", &one)]).await;
    assert_eq!(
        h.instance_item(&one).await.text("ipAddress"),
        "198.51.100.1"
    );
    h.post(&[
        ("Action", "DisassociateAddress"),
        ("PublicIp", "198.51.100.1"),
    ])
    .await
    .ok("DisassociateAddress");
    assert!(address_item(&h, &a_id).await.opt("instanceId").is_none());
}

#[tokio::test]
async fn termination_ends_the_association() {
    let h = Harness::new();
    let id = running(&h, "172.17.0.5").await;
    let a_id = allocate(&h, &[]).await.text("allocationId").to_string();
    associate(&h, &[("AllocationId", &a_id), ("InstanceId", &id)]).await;
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await
        .ok("TerminateInstances");
    // Over as soon as the termination is recorded, before the reconciler gets to it.
    let address = address_item(&h, &a_id).await;
    assert!(address.opt("associationId").is_none());
    assert!(h.instance_item(&id).await.opt("ipAddress").is_none());
    assert!(described(
        &h,
        &[("Filter.1.Name", "instance-id"), ("Filter.1.Value.1", &id)]
    )
    .await
    .is_empty());
    // The address stays allocated, and can be released or associated again.
    let message = h
        .post(&[
            ("Action", "AssociateAddress"),
            ("AllocationId", &a_id),
            ("InstanceId", &id),
        ])
        .await
        .err("InvalidInstanceID");
    assert!(
        message.ends_with(&format!(
            "instance '{id}' is not in a valid state for this operation."
        )),
        "{message}"
    );
    h.post(&[("Action", "ReleaseAddress"), ("AllocationId", &a_id)])
        .await
        .ok("ReleaseAddress");
}

#[tokio::test]
async fn association_errors_are_ec2s() {
    let h = Harness::new();
    let a_id = allocate(&h, &[]).await.text("allocationId").to_string();
    let pending = launch(&h).await;
    let message = h
        .post(&[
            ("Action", "AssociateAddress"),
            ("AllocationId", &a_id),
            ("InstanceId", &pending),
        ])
        .await
        .err("InvalidInstanceID");
    assert_eq!(
        message,
        format!("The pending instance '{pending}' is not in a valid state for this operation.")
    );
    let missing = "i-0123456789abcdef0";
    h.post(&[
        ("Action", "AssociateAddress"),
        ("AllocationId", &a_id),
        ("InstanceId", missing),
    ])
    .await
    .err("InvalidInstanceID.NotFound");
    h.post(&[
        ("Action", "AssociateAddress"),
        ("AllocationId", "eipalloc-0123456789abcdef0"),
        ("InstanceId", &pending),
    ])
    .await
    .err("InvalidAllocationID.NotFound");
    h.post(&[
        ("Action", "AssociateAddress"),
        ("AllocationId", &a_id),
        ("NetworkInterfaceId", "eni-0123456789abcdef0"),
    ])
    .await
    .err("InvalidNetworkInterfaceID.NotFound");
    h.post(&[
        ("Action", "AssociateAddress"),
        ("AllocationId", &a_id),
        ("InstanceId", &pending),
        ("NetworkInterfaceId", "eni-0123456789abcdef0"),
    ])
    .await
    .err("InvalidParameterCombination");
    h.post(&[("Action", "AssociateAddress"), ("InstanceId", &pending)])
        .await
        .err("MissingParameter");
    h.post(&[
        ("Action", "AssociateAddress"),
        ("PublicIp", "203.0.113.9"),
        ("InstanceId", &pending),
    ])
    .await
    .err("InvalidAddress.NotFound");
    let message = h
        .post(&[("Action", "DisassociateAddress")])
        .await
        .err("MissingParameter");
    assert_eq!(
        message,
        "Either public IP or association id must be specified"
    );
    h.post(&[
        ("Action", "DisassociateAddress"),
        ("AssociationId", "eipassoc-0123456789abcdef0"),
    ])
    .await
    .err("InvalidAssociationID.NotFound");
}
