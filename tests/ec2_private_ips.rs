//! Private addresses through the router: RunInstances answers each instance's address from its (created) subnet at once (the lowest free, or the one asked for), refuses taken, reserved and foreign ones with EC2's errors, frees an address at termination, and keeps it across stop and start.

mod common;

use common::api::{Harness, Reply};
use ec2d::model::InstanceState;

async fn subnet_in_new_vpc(h: &Harness, vpc_cidr: &str, subnet_cidr: &str) -> String {
    let vpc = h.create_vpc(vpc_cidr).await;
    h.create_subnet(&vpc, subnet_cidr, None).await
}

/// RunInstances of [`common::api::AMI`] with `extra` parameters, answered as it comes (the
/// refusals are the point).
async fn run_instances(h: &Harness, extra: &[(&str, &str)]) -> Reply {
    let mut params = vec![
        ("Action", "RunInstances"),
        ("ImageId", common::api::AMI),
        ("MinCount", "1"),
        ("MaxCount", "1"),
    ];
    for (key, value) in extra {
        params.retain(|(k, _)| k != key);
        params.push((key, value));
    }
    h.post(&params).await
}

fn addresses(doc: &common::api::Node) -> Vec<(String, String)> {
    doc.items("instancesSet")
        .iter()
        .map(|i| {
            (
                i.text("privateIpAddress").to_string(),
                i.text("privateDnsName").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn run_instances_answers_the_subnets_lowest_free_addresses_at_once() {
    let h = Harness::docker();
    let subnet = subnet_in_new_vpc(&h, "10.0.0.0/16", "10.0.1.0/24").await;
    let doc = h
        .run(&[("SubnetId", &subnet), ("MinCount", "2"), ("MaxCount", "2")])
        .await;
    assert_eq!(
        addresses(&doc),
        vec![
            (
                "10.0.1.4".to_string(),
                "ip-10-0-1-4.ec2.internal".to_string()
            ),
            (
                "10.0.1.5".to_string(),
                "ip-10-0-1-5.ec2.internal".to_string()
            ),
        ]
    );
    // DescribeInstances shows the same before any container exists.
    let id = doc.items("instancesSet")[0].text("instanceId").to_string();
    let described = h
        .post(&[("Action", "DescribeInstances"), ("InstanceId.1", &id)])
        .await
        .ok("DescribeInstances");
    assert_eq!(
        described.text_at("reservationSet/item/instancesSet/item/privateIpAddress"),
        "10.0.1.4"
    );
    let next = h.run(&[("SubnetId", &subnet)]).await;
    assert_eq!(addresses(&next)[0].0, "10.0.1.6");

    // The default VPC keeps LocalStack's layout: the engine's bridge gives the address, so
    // none is answered before the container exists.
    let default = h.run(&[]).await;
    assert!(!default.has("instancesSet/item/privateIpAddress"));
}

#[tokio::test]
async fn a_requested_address_is_honoured_and_checked() {
    let h = Harness::docker();
    let subnet = subnet_in_new_vpc(&h, "10.1.0.0/16", "10.1.2.0/24").await;
    let doc = h
        .run(&[("SubnetId", &subnet), ("PrivateIpAddress", "10.1.2.77")])
        .await;
    assert_eq!(addresses(&doc)[0].0, "10.1.2.77");

    let refused = |ip: &'static str| {
        let (h, subnet) = (&h, subnet.clone());
        async move { run_instances(h, &[("SubnetId", &subnet), ("PrivateIpAddress", ip)]).await }
    };
    assert_eq!(
        refused("10.1.2.77").await.err("InvalidIPAddress.InUse"),
        "Address 10.1.2.77 is in use."
    );
    assert_eq!(
        refused("10.1.3.5").await.err("InvalidParameterValue"),
        "Address 10.1.3.5 does not fall within the subnet's address range"
    );
    assert_eq!(
        refused("10.1.2.2").await.err("InvalidParameterValue"),
        "Address 10.1.2.2 is in subnet's reserved address range"
    );
    refused("10.1.2.255").await.err("InvalidParameterValue");
    refused("not-an-ip").await.err("InvalidParameterValue");
    let two = [
        ("SubnetId", subnet.as_str()),
        ("PrivateIpAddress", "10.1.2.80"),
        ("MaxCount", "2"),
    ];
    run_instances(&h, &two)
        .await
        .err("InvalidParameterCombination");
    // The same address in another VPC is free: addresses are unique per VPC.
    let elsewhere = subnet_in_new_vpc(&h, "10.1.0.0/16", "10.1.2.0/24").await;
    let doc = h
        .run(&[("SubnetId", &elsewhere), ("PrivateIpAddress", "10.1.2.77")])
        .await;
    assert_eq!(addresses(&doc)[0].0, "10.1.2.77");
}

#[tokio::test]
async fn a_full_subnet_refuses_below_min_count_and_termination_frees_an_address() {
    let h = Harness::docker();
    // A /28 holds 11 usable addresses.
    let subnet = subnet_in_new_vpc(&h, "10.2.0.0/16", "10.2.0.0/28").await;
    let doc = h
        .run(&[("SubnetId", &subnet), ("MinCount", "5"), ("MaxCount", "20")])
        .await;
    assert_eq!(doc.items("instancesSet").len(), 11, "as many as fit");
    let first = doc.items("instancesSet")[0].text("instanceId").to_string();
    assert_eq!(
        run_instances(&h, &[("SubnetId", &subnet)])
            .await
        .err("InsufficientFreeAddressesInSubnet"),
        format!(
            "There are not enough free addresses in subnet '{subnet}' to satisfy the requested number of instances."
        )
    );
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &first)])
        .await
        .ok("TerminateInstances");
    let again = h.run(&[("SubnetId", &subnet)]).await;
    assert_eq!(
        addresses(&again)[0].0,
        "10.2.0.4",
        "the terminated one's address"
    );
}

#[tokio::test]
async fn the_address_stays_across_stop_and_start() {
    let h = Harness::docker();
    let subnet = subnet_in_new_vpc(&h, "10.3.0.0/16", "10.3.0.0/24").await;
    let id = h
        .run(&[("SubnetId", &subnet)])
        .await
        .path("instancesSet/item/instanceId")
        .text
        .clone();
    h.observe(&id, InstanceState::Running, Some("10.3.0.4"));
    for action in ["StopInstances", "StartInstances"] {
        h.post(&[("Action", action), ("InstanceId.1", &id)])
            .await
            .ok(action);
        let doc = h
            .post(&[("Action", "DescribeInstances"), ("InstanceId.1", &id)])
            .await
            .ok("DescribeInstances");
        assert_eq!(
            doc.text_at("reservationSet/item/instancesSet/item/privateIpAddress"),
            "10.3.0.4",
            "{action}"
        );
    }
}

#[test]
fn the_store_refuses_an_address_a_live_instance_holds_and_takes_over_a_terminated_ones() {
    use ec2d::model::{fixtures, DesiredState};
    use ec2d::store::{Store, StoreError, PRIVATE_IP_KIND};

    let store = Store::temporary().unwrap().spec_view();
    let holding = |ip: &str| {
        let mut instance = fixtures::instance();
        instance.spec.vpc_id = Some("vpc-0123456789abcdef0".into());
        instance.spec.private_ip = Some(ip.into());
        instance
    };
    let first = holding("10.9.0.4");
    store
        .create_instances(std::slice::from_ref(&first), &[], "us-east-1", None)
        .unwrap();
    match store.create_instances(&[holding("10.9.0.4")], &[], "us-east-1", None) {
        Err(StoreError::NameTaken { kind, name, holder }) => {
            assert_eq!((kind, name.as_str()), (PRIVATE_IP_KIND, "10.9.0.4"));
            assert_eq!(holder, first.metadata.name);
        }
        other => panic!("expected NameTaken, got {other:?}"),
    }
    assert_eq!(
        store.private_ips_in_use("vpc-0123456789abcdef0").unwrap(),
        vec!["10.9.0.4".to_string()]
    );
    store
        .instances()
        .update_spec::<StoreError>(&first.metadata.name, |o| {
            o.spec.desired = DesiredState::Terminated;
            Ok(true)
        })
        .unwrap();
    assert!(store
        .private_ips_in_use("vpc-0123456789abcdef0")
        .unwrap()
        .is_empty());
    store
        .create_instances(&[holding("10.9.0.4")], &[], "us-east-1", None)
        .unwrap();
}
