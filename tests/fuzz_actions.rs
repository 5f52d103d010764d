//! Properties over arbitrary requests, driven through `api::router` with `oneshot` (no socket):
//!
//! - every action in the dispatch table, given arbitrary parameters (names each action reads,
//!   plus noise), never panics, never corrupts the store, and answers either a success document
//!   or a well-formed EC2 error envelope with a matching HTTP status;
//! - whatever arrives at the endpoint (any keys and values, any action name or none, GET or POST,
//!   raw bytes as the body, any query string, any signing region) is answered with a well-formed
//!   EC2 document: an `…Response` whose first child is `requestId`, or the error envelope;
//! - whatever `LaunchTemplateData` a template is created with (any field, odd list indexes,
//!   unicode, markup, control characters), DescribeLaunchTemplateVersions and a launch from the
//!   template answer well-formed XML whose element names are XML names.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::api::{form, is_xml_name, parse_xml, Harness, Reply, AMI};
use ec2d::api::dispatch;
use ec2d::config::VmManager;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Every action, arbitrary parameters

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
        "LaunchTemplateName",
        "LaunchTemplateId",
        "SourceVersion",
        "SetDefaultVersion",
        "VersionDescription",
        "MinVersion",
        "MaxVersion",
        "LaunchTemplateData.ImageId",
        "LaunchTemplateData.InstanceType",
        "LaunchTemplateData.UserData",
        "LaunchTemplateData.MetadataOptions.HttpTokens",
        "LaunchTemplate.LaunchTemplateName",
        "LaunchTemplate.LaunchTemplateId",
        "LaunchTemplate.Version",
        "VolumeId",
        "SnapshotId",
        "SourceSnapshotId",
        "SourceRegion",
        "OperationType",
        "InstanceSpecification.InstanceId",
        "CreateVolumePermission.Add.1.UserId",
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
        "LaunchTemplateId",
        "LaunchTemplateName",
        "LaunchTemplateVersion",
        "LaunchTemplateData.SecurityGroupId",
        "SnapshotId",
        "UserId",
        "UserGroup",
        "RestorableBy",
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
            "web-template", "lt-0123456789abcdef0", "$Latest", "$Default",
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
            Ok(quick_xml::events::Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                prop_assert!(is_xml_name(&name), "<{}> in {}", name, body);
                depth += 1
            }
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
        let h = Harness::unsigned(if mock { VmManager::Mock } else { VmManager::Docker });
        let store = &h.store;
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
        let reply = rt.block_on(h.send(request));
        well_formed(reply.status.as_u16(), &reply.body)?;
        // Whatever was written is still readable: no request corrupts the store.
        let instances = store.instances().list().unwrap();
        prop_assert!(instances.corrupt.is_empty());
        prop_assert!(store.security_groups().list().unwrap().corrupt.is_empty());
        prop_assert!(store.key_pairs().list().unwrap().corrupt.is_empty());
        prop_assert!(store.images().list().unwrap().corrupt.is_empty());
        prop_assert!(store.launch_templates().list().unwrap().corrupt.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// The endpoint: whatever arrives, the answer is a well-formed EC2 document.

fn assert_ec2_document(reply: &Reply) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        reply.content_type.as_str(),
        "text/xml;charset=UTF-8",
        "body: {}",
        reply.body
    );
    prop_assert!(
        matches!(reply.status.as_u16(), 200 | 400 | 412 | 413),
        "status {} body {}",
        reply.status,
        reply.body
    );
    let doc = parse_xml(&reply.body);
    if reply.status == StatusCode::OK {
        prop_assert!(doc.name.ends_with("Response") && doc.name != "Response");
        prop_assert_eq!(doc.children[0].name.as_str(), "requestId");
    } else {
        prop_assert_eq!(doc.name.as_str(), "Response");
        let error = doc.path("Errors/Error");
        prop_assert!(!error.child("Code").text.is_empty());
        error.child("Message");
        doc.child("RequestID");
    }
    Ok(())
}

fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        // Weighted so most cases name an action, and some name it twice.
        6 => Just("Action".to_string()),
        1 => Just("DryRun".to_string()),
        1 => Just("MaxResults".to_string()),
        1 => Just("NextToken".to_string()),
        1 => Just("ImageId".to_string()),
        1 => Just("MinCount".to_string()),
        1 => Just("MaxCount".to_string()),
        1 => Just("Name".to_string()),
        1 => Just("InstanceId".to_string()),
        1 => (1u32..4).prop_map(|n| format!("InstanceId.{n}")),
        1 => (1u32..3, 1u32..3).prop_map(|(n, m)| format!("Filter.{n}.Value.{m}")),
        1 => (1u32..3).prop_map(|n| format!("Filter.{n}.Name")),
        1 => (1u32..3, 1u32..3).prop_map(|(n, m)| format!("TagSpecification.{n}.Tag.{m}.Key")),
        1 => (1u32..3).prop_map(|n| format!("TagSpecification.{n}.ResourceType")),
        1 => ".{0,12}",
    ]
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("RunInstances".to_string()),
        1 => Just("DescribeInstances".to_string()),
        1 => Just("StopInstances".to_string()),
        1 => Just("StartInstances".to_string()),
        1 => Just("TerminateInstances".to_string()),
        1 => Just("DescribeImages".to_string()),
        1 => Just("CreateImage".to_string()),
        1 => Just("DescribeRegions".to_string()),
        1 => Just("DescribeAvailabilityZones".to_string()),
        1 => Just(AMI.to_string()),
        1 => Just("true".to_string()),
        1 => Just("1".to_string()),
        1 => Just("instance".to_string()),
        1 => Just("tag:Name".to_string()),
        1 => "i-[0-9a-f]{17}",
        1 => "[0-9]{1,4}",
        // Markup and the control characters XML cannot carry: echoed back in error messages.
        6 => "[\\x00-\\x1f<>&\"'\\]]{1,10}",
        1 => ".{0,40}",
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_form_bodies_get_well_formed_answers(
        pairs in prop::collection::vec((key_strategy(), value_strategy()), 0..8),
        region in prop_oneof![Just(None), Just(Some("us-west-2")), Just(Some("eu-central-1"))],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let h = Harness::docker();
        let params: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let reply = rt.block_on(h.post_in(region, &params));
        assert_ec2_document(&reply)?;
        let reply = rt.block_on(h.get(&params));
        assert_ec2_document(&reply)?;
    }

    #[test]
    fn arbitrary_raw_bodies_and_query_strings_get_well_formed_answers(
        body in prop::collection::vec(any::<u8>(), 0..300),
        query in "[A-Za-z0-9=&.%_~+*'()!$,;:@/?-]{0,120}",
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let h = Harness::docker();
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("/?{query}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let reply = rt.block_on(h.send(req));
        assert_ec2_document(&reply)?;
        let req = Request::builder().method(Method::GET).uri(format!("/?{query}")).body(Body::empty()).unwrap();
        let reply = rt.block_on(h.send(req));
        assert_ec2_document(&reply)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Launch template data: whatever was stored, it is described as well-formed XML.

/// A list index: mostly ones EC2 takes, and zero, leading zeros, the bound and past it, past `u64`.
fn index() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (1u32..4).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "0", "00", "007", "1000", "1001", "4294967296", "18446744073709551615",
            "18446744073709551616", "99999999999999999999",
        ]).prop_map(str::to_string),
        1 => "[0-9]{1,25}",
    ]
}

/// A segment where a member name belongs that is not one: markup, unicode, spaces, nothing.
fn odd_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            " ",
            "a b",
            "<x>",
            "&amp;",
            "\"",
            "]]>",
            "-1",
            "ü",
            "\u{1F600}",
            "1e3",
            "N",
        ])
        .prop_map(str::to_string),
        "[<>&\"'a-zA-Z0-9\u{80}-\u{10FF}]{1,8}",
    ]
}

/// One of EC2's data fields with its `N`s filled in.
fn filled_field() -> impl Strategy<Value = String> {
    let field = prop::sample::select(vec![
        "ImageId",
        "InstanceType",
        "UserData",
        "EbsOptimized",
        "RamDiskId",
        "KernelId",
        "CpuOptions.CoreCount",
        "MetadataOptions.HttpTokens",
        "MetadataOptions.HttpEndpoint",
        "MetadataOptions.HttpPutResponseHopLimit",
        "InstanceMarketOptions.SpotOptions.ValidUntil",
        "InstanceRequirements.MemoryGiBPerVCpu.Min",
        "SecurityGroupId.N",
        "SecurityGroup.N",
        "InstanceRequirements.CpuManufacturer.N",
        "NetworkInterface.N.DeviceIndex",
        "NetworkInterface.N.SecurityGroupId.N",
        "NetworkInterface.N.PrivateIpAddresses.N.PrivateIpAddress",
        "BlockDeviceMapping.N.DeviceName",
        "BlockDeviceMapping.N.Ebs.VolumeSize",
        "TagSpecification.N.ResourceType",
        "TagSpecification.N.Tag.N.Key",
        "TagSpecification.N.Tag.N.Value",
        "LicenseSpecification.N.LicenseConfigurationArn",
        "SecondaryInterface.N.PrivateIpAddress.N.PrivateIpAddress",
    ]);
    (field, prop::collection::vec(index(), 3)).prop_map(|(field, indexes)| {
        let mut indexes = indexes.into_iter();
        field
            .split('.')
            .map(|s| match s {
                "N" => indexes.next().unwrap_or_else(|| "1".into()),
                s => s.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".")
    })
}

/// A `LaunchTemplateData.*` key: one of EC2's fields, sometimes with one member swapped for an
/// odd segment, or anything at all.
fn data_key() -> impl Strategy<Value = String> {
    let swapped =
        (filled_field(), odd_segment(), any::<prop::sample::Index>()).prop_map(|(key, odd, at)| {
            let mut segments: Vec<String> = key.split('.').map(str::to_string).collect();
            let i = at.index(segments.len());
            segments[i] = odd;
            segments.join(".")
        });
    prop_oneof![8 => filled_field(), 2 => swapped, 1 => ".{0,24}"]
        .prop_map(|key| format!("LaunchTemplateData.{key}"))
}

/// A data value: plausible for some field, or hostile.
fn data_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "true", "False", "2", "required", "enabled", "disabled", "instance", "volume",
            "2030-01-01T00:00:00Z", "0.5", "sg-1", "/dev/xvda", "t3.micro", "ami-000001",
        ]).prop_map(str::to_string),
        2 => value(),
    ]
}

/// Every element name and character of `body` is XML's, and the document is the action's
/// answer or the error envelope.
fn parses(status: u16, body: &str) -> Result<(), TestCaseError> {
    well_formed(status, body)?;
    std::panic::catch_unwind(|| parse_xml(body))
        .map_err(|_| TestCaseError::fail(format!("not XML: {body}")))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_launch_template_data_is_described_as_well_formed_xml(
        data in prop::collection::vec((data_key(), data_value()), 1..10),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let h = Harness::docker();
        let data: Vec<(&str, &str)> = data.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let send = |params: Vec<(&str, &str)>| rt.block_on(h.post(&params));

        // All of it at once (refused whole when one parameter is bad) ...
        let mut create = vec![("Action", "CreateLaunchTemplate"), ("LaunchTemplateName", "all")];
        create.extend_from_slice(&data);
        let created = send(create);
        parses(created.status.as_u16(), &created.body)?;
        // ... and one parameter per version, each on the last, so whatever EC2 takes piles up.
        let made = send(vec![
            ("Action", "CreateLaunchTemplate"),
            ("LaunchTemplateName", "each"),
            ("LaunchTemplateData.ImageId", AMI),
        ]);
        parses(made.status.as_u16(), &made.body)?;
        for pair in &data {
            let reply = send(vec![
                ("Action", "CreateLaunchTemplateVersion"),
                ("LaunchTemplateName", "each"),
                ("SourceVersion", "$Latest"),
                *pair,
            ]);
            parses(reply.status.as_u16(), &reply.body)?;
        }
        prop_assert!(h.store.launch_templates().list().unwrap().corrupt.is_empty());

        let mut describes = vec![
            vec![("LaunchTemplateVersion.1", "$Latest"), ("LaunchTemplateVersion.2", "$Default")],
            vec![("LaunchTemplateName", "each")],
            vec![
                ("LaunchTemplateName", "each"),
                ("Filter.1.Name", "http-protocol-ipv4"),
                ("Filter.1.Value.1", "enabled"),
            ],
        ];
        if created.status.is_success() {
            describes.push(vec![("LaunchTemplateName", "all")]);
        }
        for describe in describes {
            let mut params = vec![("Action", "DescribeLaunchTemplateVersions")];
            params.extend(describe);
            let reply = send(params);
            prop_assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
            parses(200, &reply.body)?;
        }

        // A launch from the template, the same parameters as its own laid over the template's.
        let mut run = vec![
            ("Action", "RunInstances"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("LaunchTemplate.LaunchTemplateName", "each"),
        ];
        run.extend(data.iter().map(|(k, v)| (k.trim_start_matches("LaunchTemplateData."), *v)));
        let ran = send(run);
        parses(ran.status.as_u16(), &ran.body)?;
    }
}
