//! Elastic IPs through `api::router`: AllocateAddress, DescribeAddresses (references, filters,
//! errors), DescribeAddressesAttribute, ReleaseAddress and tags on `eipalloc-` ids.

mod common;

use common::api::{Harness, Node};

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
