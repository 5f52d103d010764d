//! Instance types through `api::router` with `oneshot` (no socket): DescribeInstanceTypes,
//! DescribeInstanceTypeOfferings, and the catalogue as the rule for RunInstances and
//! ModifyInstanceAttribute.

mod common;

use std::collections::BTreeSet;

use common::api::{Harness, AMI};
use ec2d::model::instance_types::INSTANCE_TYPES;

/// The text at `path` in each item (`""`: the item's own text).
fn texts(items: &[&common::api::Node], path: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            if path.is_empty() {
                i.text.clone()
            } else {
                i.text_at(path).to_string()
            }
        })
        .collect()
}

#[tokio::test]
async fn describe_by_name_shows_the_figures_terraform_reads() {
    let h = Harness::new();
    let doc = h
        .post(&[
            ("Action", "DescribeInstanceTypes"),
            ("InstanceType.1", "t3.micro"),
        ])
        .await
        .ok("DescribeInstanceTypes");
    let items = doc.items("instanceTypeSet");
    assert_eq!(items.len(), 1);
    let t = items[0];
    assert_eq!(t.text("instanceType"), "t3.micro");
    assert_eq!(t.text_at("vCpuInfo/defaultVCpus"), "2");
    assert_eq!(t.text_at("vCpuInfo/defaultCores"), "1");
    assert_eq!(t.text_at("vCpuInfo/defaultThreadsPerCore"), "2");
    assert_eq!(t.text_at("memoryInfo/sizeInMiB"), "1024");
    assert_eq!(
        t.text_at("processorInfo/supportedArchitectures/item"),
        "x86_64"
    );
    assert_eq!(t.text("burstablePerformanceSupported"), "true");
    assert_eq!(t.text("freeTierEligible"), "true");
    assert_eq!(t.text("hypervisor"), "nitro");
    assert_eq!(t.text_at("ebsInfo/ebsOptimizedSupport"), "default");
    assert_eq!(
        t.text_at("networkInfo/networkPerformance"),
        "Up to 5 Gigabit"
    );
    assert_eq!(
        texts(&t.items("supportedUsageClasses"), ""),
        vec!["on-demand", "spot"]
    );
    assert!(!doc.has("nextToken"));

    let doc = h
        .post(&[
            ("Action", "DescribeInstanceTypes"),
            ("InstanceType.1", "t2.micro"),
            ("InstanceType.2", "m6g.large"),
            ("InstanceType.3", "t2.micro"),
        ])
        .await
        .ok("DescribeInstanceTypes");
    let items = doc.items("instanceTypeSet");
    assert_eq!(texts(&items, "instanceType"), vec!["m6g.large", "t2.micro"]);
    assert_eq!(items[1].text("hypervisor"), "xen");
    assert_eq!(
        items[0].text_at("processorInfo/supportedArchitectures/item"),
        "arm64"
    );
}

#[tokio::test]
async fn unknown_types_are_invalid_instance_type() {
    let h = Harness::new();
    let message = h
        .post(&[
            ("Action", "DescribeInstanceTypes"),
            ("InstanceType.1", "t3.micro"),
            ("InstanceType.2", "t3.mega"),
        ])
        .await
        .err("InvalidInstanceType");
    assert_eq!(
        message,
        "The following supplied instance types do not exist: [t3.mega]"
    );
}

async fn names_filtered(h: &Harness, name: &str, value: &str) -> Vec<String> {
    let doc = h
        .post(&[
            ("Action", "DescribeInstanceTypes"),
            ("Filter.1.Name", name),
            ("Filter.1.Value.1", value),
        ])
        .await
        .ok("DescribeInstanceTypes");
    texts(&doc.items("instanceTypeSet"), "instanceType")
}

#[tokio::test]
async fn filters_select_by_the_catalogue_figures() {
    let h = Harness::new();
    let arm = names_filtered(&h, "processor-info.supported-architecture", "arm64").await;
    assert!(!arm.is_empty());
    for name in &arm {
        let family = name.split('.').next().unwrap();
        assert!(family.ends_with('g'), "{name} is Graviton");
    }
    assert!(arm.contains(&"t4g.micro".to_string()));
    let burstable = names_filtered(&h, "burstable-performance-supported", "true").await;
    assert!(
        burstable.iter().all(|n| n.starts_with('t')),
        "{burstable:?}"
    );
    assert_eq!(
        burstable.len(),
        INSTANCE_TYPES
            .iter()
            .filter(|t| t.name.starts_with('t'))
            .count()
    );
    assert_eq!(
        names_filtered(&h, "free-tier-eligible", "true").await,
        vec!["t2.micro", "t3.micro"]
    );
    let xen = names_filtered(&h, "hypervisor", "xen").await;
    assert!(xen.contains(&"t2.nano".to_string()) && xen.contains(&"m1.small".to_string()));
    assert_eq!(names_filtered(&h, "instance-type", "c7g.*").await.len(), 8);
    assert_eq!(
        names_filtered(&h, "current-generation", "false").await,
        vec!["m1.small"]
    );
    assert!(names_filtered(&h, "bare-metal", "true").await.is_empty());
    let two = names_filtered(&h, "vcpu-info.default-vcpus", "2").await;
    assert!(two.contains(&"t3.micro".to_string()) && !two.contains(&"t2.micro".to_string()));
    h.post(&[
        ("Action", "DescribeInstanceTypes"),
        ("Filter.1.Name", "colour"),
        ("Filter.1.Value.1", "x"),
    ])
    .await
    .err("InvalidParameterValue");
}

#[tokio::test]
async fn paging_walks_every_type_exactly_once() {
    let h = Harness::new();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = vec![("Action", "DescribeInstanceTypes"), ("MaxResults", "7")];
        if let Some(t) = &token {
            params.push(("NextToken", t));
        }
        let doc = h.post(&params).await.ok("DescribeInstanceTypes");
        let items = doc.items("instanceTypeSet");
        assert!(items.len() <= 7);
        seen.extend(texts(&items, "instanceType"));
        pages += 1;
        match doc.opt("nextToken") {
            Some(next) => token = Some(next.text.clone()),
            None => break,
        }
    }
    let all: Vec<String> = INSTANCE_TYPES.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(seen, all);
    assert_eq!(pages, all.len().div_ceil(7));
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), all.len());
    let message = h
        .post(&[("Action", "DescribeInstanceTypes"), ("MaxResults", "1000")])
        .await
        .err("InvalidParameterValue");
    assert!(message.contains("between 5 and 100"), "{message}");
}

#[tokio::test]
async fn offerings_per_region_zone_and_zone_id() {
    let h = Harness::new();
    let doc = h
        .post(&[("Action", "DescribeInstanceTypeOfferings")])
        .await
        .ok("DescribeInstanceTypeOfferings");
    let items = doc.items("instanceTypeOfferingSet");
    assert_eq!(items.len(), INSTANCE_TYPES.len());
    assert!(items
        .iter()
        .all(|i| i.text("location") == "us-east-1" && i.text("locationType") == "region"));

    let doc = h
        .post(&[
            ("Action", "DescribeInstanceTypeOfferings"),
            ("LocationType", "availability-zone"),
            ("Filter.1.Name", "instance-type"),
            ("Filter.1.Value.1", "t3.micro"),
        ])
        .await
        .ok("DescribeInstanceTypeOfferings");
    let items = doc.items("instanceTypeOfferingSet");
    assert_eq!(
        texts(&items, "location"),
        vec![
            "us-east-1a",
            "us-east-1b",
            "us-east-1c",
            "us-east-1d",
            "us-east-1e",
            "us-east-1f"
        ]
    );
    assert!(items
        .iter()
        .all(|i| i.text("locationType") == "availability-zone"
            && i.text("instanceType") == "t3.micro"));

    let doc = h
        .post(&[
            ("Action", "DescribeInstanceTypeOfferings"),
            ("LocationType", "availability-zone-id"),
            ("Filter.1.Name", "location"),
            ("Filter.1.Value.1", "use1-az2"),
            ("MaxResults", "5"),
        ])
        .await
        .ok("DescribeInstanceTypeOfferings");
    assert_eq!(doc.items("instanceTypeOfferingSet").len(), 5);
    assert!(doc.has("nextToken"));

    h.post(&[
        ("Action", "DescribeInstanceTypeOfferings"),
        ("LocationType", "planet"),
    ])
    .await
    .err("InvalidParameterValue");
}

#[tokio::test]
async fn run_and_modify_refuse_types_outside_the_catalogue() {
    let h = Harness::new();
    let message = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("InstanceType", "t3.mega"),
        ])
        .await
        .err("InvalidParameterValue");
    assert_eq!(message, "Invalid value 't3.mega' for InstanceType.");
    let doc = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await
        .ok("RunInstances");
    let item = doc.path("instancesSet/item");
    assert_eq!(
        item.text("instanceType"),
        "m1.small",
        "the default is known"
    );
    let id = item.text("instanceId").to_string();
    let message = h
        .post(&[
            ("Action", "ModifyInstanceAttribute"),
            ("InstanceId", &id),
            ("InstanceType.Value", "m9.huge"),
        ])
        .await
        .err("InvalidParameterValue");
    assert_eq!(message, "Invalid value 'm9.huge' for InstanceType.");
}
