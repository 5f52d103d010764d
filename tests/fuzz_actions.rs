//! Property test over every action in the dispatch table: arbitrary parameters (names each
//! action reads, plus noise) never panic, never corrupt the store, and always answer either a
//! success document or a well-formed EC2 error envelope with a matching HTTP status.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use common::api::form;
use ec2d::api::dispatch;
use ec2d::api::{router, ApiState, Introspection};
use ec2d::config::VmManager;
use ec2d::store::Store;
use proptest::prelude::*;
use tower::ServiceExt;

struct NoIntrospection;

impl Introspection for NoIntrospection {
    fn health(&self) -> serde_json::Value {
        serde_json::json!({ "ok": true })
    }
    fn status(&self, _: Option<&str>) -> Option<serde_json::Value> {
        None
    }
}

/// Parameter names the actions read, with list and structure indexes.
fn name() -> impl Strategy<Value = String> {
    let plain = prop::sample::select(vec![
        "ImageId",
        "MinCount",
        "MaxCount",
        "InstanceType",
        "KeyName",
        "KeyType",
        "KeyFormat",
        "PublicKeyMaterial",
        "UserData",
        "SubnetId",
        "ClientToken",
        "DryRun",
        "MaxResults",
        "NextToken",
        "Name",
        "Description",
        "NoReboot",
        "InstanceId",
        "Attribute",
        "GroupId",
        "GroupName",
        "GroupDescription",
        "VpcId",
        "IpProtocol",
        "FromPort",
        "ToPort",
        "CidrIp",
        "SourceSecurityGroupName",
        "KeyPairId",
        "IncludePublicKey",
        "Force",
        "InstanceInitiatedShutdownBehavior",
        "Placement.AvailabilityZone",
    ]);
    let listed = prop::sample::select(vec![
        "InstanceId",
        "ImageId",
        "Owner",
        "KeyName",
        "KeyPairId",
        "GroupName",
        "GroupId",
        "SecurityGroupId",
        "SecurityGroup",
        "VpcId",
        "SubnetId",
        "RegionName",
        "ZoneName",
        "ResourceId",
    ]);
    prop_oneof![
        4 => plain.prop_map(str::to_string),
        2 => (listed, 0u32..4).prop_map(|(n, i)| format!("{n}.{i}")),
        1 => (0u32..3, 0u32..3).prop_map(|(n, m)| format!("Filter.{n}.Value.{m}")),
        1 => (0u32..3).prop_map(|n| format!("Filter.{n}.Name")),
        1 => (0u32..2, prop::sample::select(vec!["IpProtocol", "FromPort", "ToPort"]))
            .prop_map(|(n, f)| format!("IpPermissions.{n}.{f}")),
        1 => (0u32..2, 0u32..2).prop_map(|(n, m)| format!("IpPermissions.{n}.IpRanges.{m}.CidrIp")),
        1 => (0u32..2, 0u32..2).prop_map(|(n, m)| format!("TagSpecification.{n}.Tag.{m}.Key")),
        1 => (0u32..2).prop_map(|n| format!("TagSpecification.{n}.ResourceType")),
        1 => (0u32..3, prop::sample::select(vec!["Key", "Value"]))
            .prop_map(|(n, f)| format!("Tag.{n}.{f}")),
        1 => "[A-Za-z.0-9]{0,12}",
    ]
}

/// Values: plausible ones, hostile markup and control characters, and anything.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "ami-000001", "i-0123456789abcdef0", "i-xyz", "sg-0123456789abcdef0", "default",
            "tcp", "udp", "-1", "icmp", "22", "8080", "0", "65535", "70000", "-5", "1", "2",
            "1001", "true", "false", "rsa", "ed25519", "ppk", "0.0.0.0/0", "10.0.0.0/33",
            "userData", "instanceType", "stop", "terminate", "us-east-1a", "tag:Name",
            "instance-state-name", "c3NoLXJzYSBBQUFB", "key-0123456789abcdef0",
        ]).prop_map(str::to_string),
        2 => "[\\x00-\\x1f<>&\"'\\]]{1,8}",
        1 => "[0-9]{1,25}",
        1 => any::<String>(),
    ]
}

fn well_formed(status: u16, body: &str) -> Result<(), TestCaseError> {
    prop_assert!(body.starts_with("<?xml"), "not XML: {body}");
    let mut reader = quick_xml::Reader::from_str(body);
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(_) => {}
            Err(e) => return Err(TestCaseError::fail(format!("bad XML ({e}): {body}"))),
        }
    }
    prop_assert_eq!(depth, 0);
    if status == 200 {
        prop_assert!(
            body.contains("Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\""),
            "{}",
            body
        );
    } else {
        prop_assert!(
            body.contains("<Response><Errors><Error><Code>") && body.contains("<RequestID>"),
            "status {} without the error envelope: {}",
            status,
            body
        );
        prop_assert!(
            status == 412 || (400..500).contains(&status),
            "status {} for {}",
            status,
            body
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn every_action_answers_arbitrary_parameters_with_a_well_formed_document(
        action in prop::sample::select(dispatch::names()),
        params in prop::collection::vec((name(), value()), 0..10),
        mock in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = Store::temporary().unwrap();
        let app = router(ApiState {
            store: store.clone(),
            vm_manager: if mock { VmManager::Mock } else { VmManager::Docker },
            introspection: Arc::new(NoIntrospection),
            rendered_instances: Default::default(),
        });
        let mut encoded = form(&[("Action", action), ("Version", "2016-11-15")]);
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        encoded.push('&');
        encoded.push_str(&form(&pairs));
        let request = Request::builder()
            .method(Method::POST)
            .uri("/")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(encoded))
            .unwrap();
        let (status, body) = rt.block_on(async {
            let response = app.clone().oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            (status, String::from_utf8(bytes.to_vec()).unwrap())
        });
        well_formed(status, &body)?;
        // Whatever was written is still readable: no request corrupts the store.
        let instances = store.instances().list().unwrap();
        prop_assert!(instances.corrupt.is_empty());
        prop_assert!(store.security_groups().list().unwrap().corrupt.is_empty());
        prop_assert!(store.key_pairs().list().unwrap().corrupt.is_empty());
        prop_assert!(store.images().list().unwrap().corrupt.is_empty());
    }
}
