//! Instance actions through `api::router` with `oneshot` (no socket), a temporary store and no
//! runtime: RunInstances, DescribeInstances (filters, paging), Stop/Start/Terminate.

mod common;

use axum::http::StatusCode;
use common::api::{catalog_image, Harness, Node, AMI};
use ec2d::config::VmManager;
use ec2d::model::{DesiredState, InstanceState, StateReason};

// ---------------------------------------------------------------------------------------------
// RunInstances

#[tokio::test]
async fn run_instances_creates_one_reservation_answering_pending() {
    let h = Harness::docker();
    let doc = h
        .run(&[
            ("MinCount", "2"),
            ("MaxCount", "2"),
            ("InstanceType", "t3.micro"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "web"),
            ("TagSpecification.2.ResourceType", "volume"),
            ("TagSpecification.2.Tag.1.Key", "ignored"),
        ])
        .await;
    assert_eq!(
        doc.names(),
        vec![
            "requestId",
            "reservationId",
            "ownerId",
            "groupSet",
            "instancesSet"
        ]
    );
    let reservation = doc.text_at("reservationId").to_string();
    assert!(reservation.starts_with("r-"));
    assert_eq!(doc.text_at("ownerId"), "000000000000");
    let items = doc.items("instancesSet");
    assert_eq!(items.len(), 2);
    for (index, item) in items.iter().enumerate() {
        let id = item.text_at("instanceId");
        assert!(id.starts_with("i-") && id.len() == 19, "{id}");
        assert_eq!(item.text_at("imageId"), AMI);
        assert_eq!(item.text_at("instanceState/code"), "0");
        assert_eq!(item.text_at("instanceState/name"), "pending");
        assert_eq!(item.text_at("amiLaunchIndex"), index.to_string());
        assert_eq!(item.text_at("instanceType"), "t3.micro");
        assert_eq!(item.text_at("placement/availabilityZone"), "us-east-1a");
        let tags = item.tags();
        assert_eq!(tags.get("Name").map(String::as_str), Some("web"));
        assert_eq!(
            tags.get("ec2_vm_manager").map(String::as_str),
            Some("docker")
        );
        assert!(!tags.contains_key("ignored"));

        let stored = h.instance(id);
        assert_eq!(stored.metadata.namespace, "us-east-1");
        assert_eq!(stored.metadata.generation, 1);
        assert_eq!(stored.kind, "Instance");
        assert_eq!(stored.spec.desired, DesiredState::Running);
        assert_eq!(stored.spec.reservation_id.as_str(), reservation);
        assert_eq!(
            stored.spec.image_ref,
            format!("localstack-ec2/ubuntu-22.04:{AMI}")
        );
    }
    assert_eq!(h.store.instances().len(), 2);
}

#[tokio::test]
async fn run_instances_defaults() {
    let h = Harness::docker();
    let doc = h.run(&[]).await;
    let item = doc.path("instancesSet/item");
    assert_eq!(item.text_at("instanceType"), "m1.small");
    let stored = h.instance(item.text_at("instanceId"));
    assert_eq!(
        stored.spec.shutdown_behavior,
        ec2d::model::ShutdownBehavior::Stop
    );
    let doc = h
        .run(&[
            ("InstanceInitiatedShutdownBehavior", "terminate"),
            ("Placement.AvailabilityZone", "us-east-1c"),
        ])
        .await;
    let item = doc.path("instancesSet/item");
    assert_eq!(item.text_at("placement/availabilityZone"), "us-east-1c");
    let stored = h.instance(item.text_at("instanceId"));
    assert_eq!(
        stored.spec.shutdown_behavior,
        ec2d::model::ShutdownBehavior::Terminate
    );
}

#[tokio::test]
async fn run_instances_errors_use_aws_codes_and_messages() {
    let h = Harness::docker();
    let run = |extra: Vec<(&'static str, &'static str)>| {
        let mut params = vec![
            ("Action", "RunInstances"),
            ("ImageId", AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ];
        for (k, v) in extra {
            params.retain(|(pk, _)| *pk != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        params
    };
    // (parameters, code, message)
    type Case = (
        Vec<(&'static str, &'static str)>,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (run(vec![("ImageId", "ami-12345678")]), "InvalidAMIID.NotFound", "The image id '[ami-12345678]' does not exist"),
        (run(vec![("ImageId", "rocket-man")]), "InvalidAMIID.Malformed", "Invalid id: \"rocket-man\" (expecting \"ami-...\")"),
        (run(vec![("ImageId", "")]), "MissingParameter", "The request must contain the parameter ImageId"),
        (run(vec![("MinCount", "")]), "MissingParameter", "The request must contain the parameter MinCount"),
        (run(vec![("MaxCount", "")]), "MissingParameter", "The request must contain the parameter MaxCount"),
        (
            run(vec![("MinCount", "0")]),
            "InvalidParameterValue",
            "Value (0) for parameter minCount is invalid. Expected a positive integer.",
        ),
        (
            run(vec![("MinCount", "3"), ("MaxCount", "2")]),
            "InvalidParameterValue",
            "Value (3) for parameter minCount is invalid. Expected a value less than or equal to maxCount (2).",
        ),
        (
            run(vec![("MaxCount", "1001")]),
            "InvalidParameterValue",
            "Value (1001) for parameter maxCount is invalid. Expected a value less than or equal to 1000.",
        ),
        (
            run(vec![("MaxCount", "lots")]),
            "InvalidParameterValue",
            "Value (lots) for parameter MaxCount is invalid. Expected an integer.",
        ),
        (
            run(vec![("InstanceInitiatedShutdownBehavior", "explode")]),
            "InvalidParameterValue",
            "Value (explode) for parameter instanceInitiatedShutdownBehavior is invalid. Expected 'stop' or 'terminate'.",
        ),
        (
            run(vec![("Placement.AvailabilityZone", "us-west-2a")]),
            "InvalidParameterValue",
            "Invalid availability zone: [us-west-2a]",
        ),
        (
            run(vec![("TagSpecification.1.Tag.1.Key", "k")]),
            "InvalidParameterValue",
            "Tag specification resource type must have a value",
        ),
    ];
    for (params, code, message) in cases {
        let reply = h.post(&params).await;
        assert_eq!(
            reply.err_status(StatusCode::BAD_REQUEST, code),
            message,
            "{params:?}"
        );
    }
    assert_eq!(
        h.store.instances().len(),
        0,
        "no failed call wrote anything"
    );
}

#[tokio::test]
async fn run_instances_refuses_an_ami_that_is_not_available() {
    let h = Harness::unsigned(VmManager::Docker);
    h.store
        .catalog()
        .replace_all(&[catalog_image("ami-00000000000000001", "pending-one", None)])
        .unwrap();
    let reply = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-00000000000000001"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await;
    let msg = reply.err_status(StatusCode::BAD_REQUEST, "InvalidAMIID.NotFound");
    assert_eq!(msg, "The image id '[ami-00000000000000001]' does not exist");
}

#[tokio::test]
async fn mock_mode_launches_any_well_formed_ami() {
    let h = Harness::unsigned(VmManager::Mock);
    let doc = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-12345678"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await
        .ok("RunInstances");
    let id = doc.text_at("instancesSet/item/instanceId").to_string();
    let stored = h.instance(&id);
    assert_eq!(stored.spec.image_ref, "ami-12345678");
    assert!(
        !stored.spec.tags.contains_key("ec2_vm_manager"),
        "the docker tag is for docker mode"
    );
    let reply = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", "nope"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await;
    reply.err_status(StatusCode::BAD_REQUEST, "InvalidAMIID.Malformed");
}

// ---------------------------------------------------------------------------------------------
// DescribeInstances

#[tokio::test]
async fn describe_instances_renders_what_boto3_expects() {
    let h = Harness::docker();
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, Some("172.17.0.5"));
    let doc = h
        .post(&[("Action", "DescribeInstances")])
        .await
        .ok("DescribeInstances");
    let reservations = doc.items("reservationSet");
    assert_eq!(reservations.len(), 1);
    let r = reservations[0];
    assert_eq!(
        r.names(),
        vec!["reservationId", "ownerId", "groupSet", "instancesSet"]
    );
    let item = r.items("instancesSet")[0];
    assert_eq!(
        item.names(),
        vec![
            "instanceId",
            "imageId",
            "instanceState",
            "privateDnsName",
            "dnsName",
            "reason",
            "amiLaunchIndex",
            "productCodes",
            "instanceType",
            "launchTime",
            "placement",
            "monitoring",
            "subnetId",
            "vpcId",
            "privateIpAddress",
            "ipAddress",
            "sourceDestCheck",
            "groupSet",
            "architecture",
            "rootDeviceType",
            "rootDeviceName",
            "blockDeviceMapping",
            "virtualizationType",
            "clientToken",
            "tagSet",
            "hypervisor",
            "networkInterfaceSet",
            "ebsOptimized",
            "enaSupport",
            "bootMode",
            "platformDetails",
            "usageOperation",
            "usageOperationUpdateTime",
            "hibernationOptions",
            "cpuOptions",
            "capacityReservationSpecification",
            "metadataOptions",
            "enclaveOptions",
            "privateDnsNameOptions",
            "maintenanceOptions",
            "currentInstanceBootMode",
        ]
    );
    assert_eq!(item.text_at("instanceId"), id);
    assert_eq!(item.text_at("instanceState/code"), "16");
    assert_eq!(item.text_at("instanceState/name"), "running");
    assert_eq!(item.text_at("privateDnsName"), "ip-172-17-0-5.ec2.internal");
    assert_eq!(item.text_at("privateIpAddress"), "172.17.0.5");
    assert_eq!(item.text_at("ipAddress"), "172.17.0.5");
    assert_eq!(item.text_at("reason"), "");
    assert_eq!(item.text_at("placement/tenancy"), "default");
    assert_eq!(item.text_at("monitoring/state"), "disabled");
    assert_eq!(item.text_at("sourceDestCheck"), "true");
    assert_eq!(item.text_at("ebsOptimized"), "false");
    assert_eq!(item.text_at("architecture"), "x86_64");
    assert_eq!(item.text_at("rootDeviceName"), "/dev/sda1");
    let launch = item.text_at("launchTime");
    assert!(
        time::OffsetDateTime::parse(launch, &time::format_description::well_known::Rfc3339).is_ok(),
        "{launch}"
    );
    assert!(launch.ends_with('Z') && launch.len() == 24, "{launch}");
}

#[tokio::test]
async fn describe_instances_unknown_and_malformed_ids() {
    let h = Harness::docker();
    let id = h.run_one().await;
    let reply = h
        .post(&[
            ("Action", "DescribeInstances"),
            ("InstanceId.1", "i-00000000000000001"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound"),
        "The instance ID 'i-00000000000000001' does not exist"
    );
    let reply = h
        .post(&[
            ("Action", "DescribeInstances"),
            ("InstanceId.1", "i-0000000000000000a"),
            ("InstanceId.2", &id),
            ("InstanceId.3", "i-0000000000000000b"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound"),
        "The instance IDs 'i-0000000000000000a, i-0000000000000000b' do not exist"
    );
    let reply = h
        .post(&[
            ("Action", "DescribeInstances"),
            ("InstanceId.1", "instance-1"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.Malformed"),
        "Invalid id: \"instance-1\" (expecting \"i-...\")"
    );
}

/// The ids DescribeInstances answers for these extra parameters, sorted.
async fn described_ids(h: &Harness, extra: &[(&str, &str)]) -> Vec<String> {
    let mut params = vec![("Action", "DescribeInstances")];
    params.extend_from_slice(extra);
    let doc = h.post(&params).await.ok("DescribeInstances");
    let mut ids: Vec<String> = doc
        .items("reservationSet")
        .iter()
        .flat_map(|r| r.items("instancesSet"))
        .map(|i| i.text_at("instanceId").to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn describe_instances_filters_and_names_values_semantics() {
    let h = Harness::docker();
    let web = h
        .run(&[
            ("MinCount", "2"),
            ("MaxCount", "2"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "web-server"),
        ])
        .await;
    let web_ids: Vec<String> = web
        .items("instancesSet")
        .iter()
        .map(|i| i.text_at("instanceId").to_string())
        .collect();
    let db = h
        .run(&[
            ("InstanceType", "r5.large"),
            ("Placement.AvailabilityZone", "us-east-1b"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Role"),
            ("TagSpecification.1.Tag.1.Value", "db"),
        ])
        .await;
    let db_id = db.text_at("instancesSet/item/instanceId").to_string();
    let db_reservation = db.text_at("reservationId").to_string();
    h.observe(&web_ids[0], InstanceState::Running, Some("172.17.0.9"));

    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    assert_eq!(
        described_ids(
            &h,
            &[("Filter.1.Name", "tag:Name"), ("Filter.1.Value.1", "web-*")]
        )
        .await,
        sorted(web_ids.clone())
    );
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "tag:Name"),
                ("Filter.1.Value.1", "web-?erver")
            ]
        )
        .await
        .len(),
        2
    );
    // Plain values are read from the tag index: the other filters still apply to what it
    // names, and a tag written since (CreateTags) is found at once.
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "tag:Name"),
                ("Filter.1.Value.1", "web-server"),
                ("Filter.1.Value.2", "nothing"),
                ("Filter.2.Name", "instance-id"),
                ("Filter.2.Value.1", &web_ids[1]),
            ]
        )
        .await,
        vec![web_ids[1].clone()]
    );
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &db_id),
        ("Tag.1.Key", "Name"),
        ("Tag.1.Value", "web-server"),
    ])
    .await
    .ok("CreateTags");
    let mut all_web = web_ids.clone();
    all_web.push(db_id.clone());
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "tag:Name"),
                ("Filter.1.Value.1", "web-server")
            ]
        )
        .await,
        sorted(all_web)
    );
    h.post(&[
        ("Action", "DeleteTags"),
        ("ResourceId.1", &db_id),
        ("Tag.1.Key", "Name"),
    ])
    .await
    .ok("DeleteTags");
    assert_eq!(
        described_ids(
            &h,
            &[("Filter.1.Name", "tag-key"), ("Filter.1.Value.1", "Role")]
        )
        .await,
        vec![db_id.clone()]
    );
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "instance-type"),
                ("Filter.1.Value.1", "r5.large")
            ]
        )
        .await,
        vec![db_id.clone()]
    );
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "availability-zone"),
                ("Filter.1.Value.1", "us-east-1b")
            ]
        )
        .await,
        vec![db_id.clone()]
    );
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "reservation-id"),
                ("Filter.1.Value.1", &db_reservation)
            ]
        )
        .await,
        vec![db_id.clone()]
    );
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "instance-id"),
                ("Filter.1.Value.1", &db_id)
            ]
        )
        .await,
        vec![db_id.clone()]
    );
    assert_eq!(
        described_ids(
            &h,
            &[("Filter.1.Name", "image-id"), ("Filter.1.Value.1", AMI)]
        )
        .await
        .len(),
        3
    );
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "instance-state-name"),
                ("Filter.1.Value.1", "running")
            ]
        )
        .await,
        vec![web_ids[0].clone()]
    );
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "instance-state-code"),
                ("Filter.1.Value.1", "0")
            ]
        )
        .await
        .len(),
        2
    );
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "private-ip-address"),
                ("Filter.1.Value.1", "172.17.0.*")
            ]
        )
        .await,
        vec![web_ids[0].clone()]
    );
    // Values are ORed...
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "instance-state-name"),
                ("Filter.1.Value.1", "running"),
                ("Filter.1.Value.2", "pending"),
            ]
        )
        .await
        .len(),
        3
    );
    // ...names are ANDed.
    assert_eq!(
        described_ids(
            &h,
            &[
                ("Filter.1.Name", "instance-state-name"),
                ("Filter.1.Value.1", "pending"),
                ("Filter.2.Name", "tag:Name"),
                ("Filter.2.Value.1", "web-server"),
            ]
        )
        .await,
        vec![web_ids[1].clone()]
    );
    // Attributes ec2d does not model match nothing, even with `*`.
    assert!(described_ids(
        &h,
        &[
            ("Filter.1.Name", "instance-lifecycle"),
            ("Filter.1.Value.1", "*")
        ]
    )
    .await
    .is_empty());

    let reply = h
        .post(&[
            ("Action", "DescribeInstances"),
            ("Filter.1.Name", "colour"),
            ("Filter.1.Value.1", "red"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        "The filter 'colour' is invalid"
    );
}

#[tokio::test]
async fn describe_instances_paginates() {
    let h = Harness::docker();
    h.run(&[("MinCount", "4"), ("MaxCount", "4")]).await;
    h.run(&[("MinCount", "3"), ("MaxCount", "3")]).await;
    let page1 = h
        .post(&[("Action", "DescribeInstances"), ("MaxResults", "5")])
        .await
        .ok("DescribeInstances");
    let ids_of = |doc: &Node| -> Vec<String> {
        doc.items("reservationSet")
            .iter()
            .flat_map(|r| r.items("instancesSet"))
            .map(|i| i.text_at("instanceId").to_string())
            .collect()
    };
    let first = ids_of(&page1);
    assert_eq!(first.len(), 5);
    assert_eq!(
        page1.items("reservationSet").len(),
        2,
        "grouped by reservation"
    );
    let token = page1.text_at("nextToken").to_string();
    let page2 = h
        .post(&[
            ("Action", "DescribeInstances"),
            ("MaxResults", "5"),
            ("NextToken", &token),
        ])
        .await
        .ok("DescribeInstances");
    let second = ids_of(&page2);
    assert_eq!(second.len(), 2);
    assert!(
        page2.opt("nextToken").is_none(),
        "no token on the last page"
    );
    let mut all: Vec<String> = first.into_iter().chain(second).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 7);

    let reply = h
        .post(&[
            ("Action", "DescribeInstances"),
            ("MaxResults", "5"),
            ("InstanceId.1", "i-00000000000000001"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterCombination"),
        "The parameter instancesSet cannot be used with the parameter maxResults"
    );
    let reply = h
        .post(&[("Action", "DescribeInstances"), ("MaxResults", "4")])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5."
    );
    let reply = h
        .post(&[("Action", "DescribeInstances"), ("NextToken", "garbage!")])
        .await;
    reply.err_status(StatusCode::BAD_REQUEST, "InvalidNextToken");
}

// ---------------------------------------------------------------------------------------------
// Stop / Start / Terminate

#[tokio::test]
async fn lifecycle_display_states() {
    let h = Harness::docker();
    let id = h.run_one().await;
    assert_eq!(h.shown(&id).await, "pending");
    h.observe(&id, InstanceState::Running, Some("172.17.0.2"));
    assert_eq!(h.shown(&id).await, "running");

    let doc = h
        .post(&[
            ("Action", "StopInstances"),
            ("InstanceId.1", &id),
            ("Force", "true"),
        ])
        .await
        .ok("StopInstances");
    let item = doc.items("instancesSet")[0].clone();
    assert_eq!(
        item.names(),
        vec!["instanceId", "currentState", "previousState"]
    );
    assert_eq!(item.text_at("instanceId"), id);
    assert_eq!(item.text_at("previousState/name"), "running");
    assert_eq!(item.text_at("previousState/code"), "16");
    assert_eq!(item.text_at("currentState/name"), "stopping");
    assert_eq!(item.text_at("currentState/code"), "64");
    assert_eq!(h.instance(&id).spec.desired, DesiredState::Stopped);
    assert_eq!(h.shown(&id).await, "stopping");

    h.observe(&id, InstanceState::Stopped, Some("172.17.0.2"));
    let doc = h
        .post(&[("Action", "DescribeInstances"), ("InstanceId.1", &id)])
        .await
        .ok("DescribeInstances");
    let inst = doc.path("reservationSet/item/instancesSet/item");
    assert_eq!(inst.text_at("instanceState/name"), "stopped");
    let reason = inst.text_at("reason");
    assert!(
        reason.starts_with("User initiated (") && reason.ends_with(" GMT)"),
        "{reason}"
    );
    assert!(
        inst.opt("ipAddress").is_none(),
        "a stopped instance has no public address"
    );
    // The reconciler wrote no reason; the API's user-initiated stop supplies it.
    assert_eq!(
        inst.text_at("stateReason/code"),
        "Client.UserInitiatedShutdown"
    );

    let doc = h
        .post(&[("Action", "StartInstances"), ("InstanceId.1", &id)])
        .await
        .ok("StartInstances");
    let item = doc.path("instancesSet/item");
    assert_eq!(item.text_at("previousState/name"), "stopped");
    assert_eq!(item.text_at("currentState/name"), "pending");
    assert_eq!(h.instance(&id).spec.desired, DesiredState::Running);
    h.observe(&id, InstanceState::Running, None);

    let doc = h
        .post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await
        .ok("TerminateInstances");
    let item = doc.path("instancesSet/item");
    assert_eq!(item.text_at("previousState/name"), "running");
    assert_eq!(item.text_at("currentState/name"), "shutting-down");
    assert_eq!(item.text_at("currentState/code"), "32");
    let stored = h.instance(&id);
    assert_eq!(stored.spec.desired, DesiredState::Terminated);
    assert!(stored.metadata.deletion_timestamp.is_some());

    h.observe(&id, InstanceState::Terminated, None);
    let doc = h
        .post(&[("Action", "DescribeInstances")])
        .await
        .ok("DescribeInstances");
    let inst = doc.path("reservationSet/item/instancesSet/item");
    assert_eq!(
        inst.text_at("instanceState/name"),
        "terminated",
        "terminated instances stay listed"
    );
    assert_eq!(inst.text_at("privateDnsName"), "");

    let doc = h
        .post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await
        .ok("TerminateInstances");
    assert_eq!(
        doc.text_at("instancesSet/item/previousState/name"),
        "terminated"
    );
    assert_eq!(
        doc.text_at("instancesSet/item/currentState/name"),
        "terminated"
    );

    let reply = h
        .post(&[("Action", "StartInstances"), ("InstanceId.1", &id)])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "IncorrectInstanceState"),
        format!("The instance '{id}' is not in a state from which it can be started.")
    );
    let reply = h
        .post(&[("Action", "StopInstances"), ("InstanceId.1", &id)])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "IncorrectInstanceState"),
        format!("The instance '{id}' is not in a state from which it can be stopped.")
    );
}

#[tokio::test]
async fn repeated_calls_are_harmless_and_do_not_bump_generation() {
    let h = Harness::docker();
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    let doc = h
        .post(&[("Action", "StartInstances"), ("InstanceId.1", &id)])
        .await
        .ok("StartInstances");
    assert_eq!(
        doc.text_at("instancesSet/item/currentState/name"),
        "running"
    );
    assert_eq!(
        h.instance(&id).metadata.generation,
        1,
        "starting a running instance changes nothing"
    );

    h.post(&[("Action", "StopInstances"), ("InstanceId.1", &id)])
        .await
        .ok("StopInstances");
    assert_eq!(h.instance(&id).metadata.generation, 2);
    let doc = h
        .post(&[("Action", "StopInstances"), ("InstanceId.1", &id)])
        .await
        .ok("StopInstances");
    assert_eq!(
        h.instance(&id).metadata.generation,
        2,
        "a second stop is a no-op"
    );
    assert_eq!(
        doc.text_at("instancesSet/item/previousState/name"),
        "stopping"
    );
    assert_eq!(
        doc.text_at("instancesSet/item/currentState/name"),
        "stopping"
    );

    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await
        .ok("TerminateInstances");
    let first = h.instance(&id);
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await
        .ok("TerminateInstances");
    let second = h.instance(&id);
    assert_eq!(first.metadata.generation, second.metadata.generation);
    assert_eq!(
        first.metadata.deletion_timestamp,
        second.metadata.deletion_timestamp
    );
}

#[tokio::test]
async fn start_after_instance_initiated_shutdown_bumps_generation() {
    let h = Harness::docker();
    let id = h.run_one().await;
    // The container's main process exited while running was desired: the reconciler records it.
    let inst = h.instance(&id);
    let mut status = inst.status.clone();
    status.observed_generation = 1;
    status.state = Some(InstanceState::Stopped);
    status.shutdown_generation = Some(1);
    status.state_reason = Some(StateReason::new(
        "Client.InstanceInitiatedShutdown",
        "Instance initiated shutdown",
    ));
    h.store.instances().write_status(&id, &status).unwrap();
    let doc = h
        .post(&[("Action", "DescribeInstances"), ("InstanceId.1", &id)])
        .await
        .ok("DescribeInstances");
    let item = doc.path("reservationSet/item/instancesSet/item");
    assert_eq!(item.text_at("instanceState/name"), "stopped");
    assert_eq!(
        item.text_at("stateReason/code"),
        "Client.InstanceInitiatedShutdown"
    );
    assert_eq!(
        item.text_at("reason"),
        "",
        "not a user-initiated transition"
    );

    let doc = h
        .post(&[("Action", "StartInstances"), ("InstanceId.1", &id)])
        .await
        .ok("StartInstances");
    assert_eq!(
        doc.text_at("instancesSet/item/previousState/name"),
        "stopped"
    );
    assert_eq!(
        doc.text_at("instancesSet/item/currentState/name"),
        "pending"
    );
    assert_eq!(h.instance(&id).metadata.generation, 2);
}

#[tokio::test]
async fn nothing_is_written_when_one_id_is_bad() {
    let h = Harness::docker();
    let a = h.run_one().await;
    let b = h.run_one().await;
    h.observe(&a, InstanceState::Running, None);
    h.observe(&b, InstanceState::Running, None);

    let reply = h
        .post(&[
            ("Action", "TerminateInstances"),
            ("InstanceId.1", &a),
            ("InstanceId.2", "i-0000000000000dead"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound"),
        "The instance ID 'i-0000000000000dead' does not exist"
    );
    let reply = h
        .post(&[
            ("Action", "StopInstances"),
            ("InstanceId.1", &a),
            ("InstanceId.2", "bad-id"),
        ])
        .await;
    reply.err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.Malformed");

    // b is terminated: starting [a, b] fails on b's guard and leaves a alone too.
    h.post(&[("Action", "StopInstances"), ("InstanceId.1", &a)])
        .await
        .ok("StopInstances");
    h.observe(&a, InstanceState::Stopped, None);
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &b)])
        .await
        .ok("TerminateInstances");
    let before = h.instance(&a);
    let reply = h
        .post(&[
            ("Action", "StartInstances"),
            ("InstanceId.1", &a),
            ("InstanceId.2", &b),
        ])
        .await;
    reply.err_status(StatusCode::BAD_REQUEST, "IncorrectInstanceState");
    let after = h.instance(&a);
    assert_eq!(before.metadata.generation, after.metadata.generation);
    assert_eq!(after.spec.desired, DesiredState::Stopped);

    for action in [
        "TerminateInstances",
        "StopInstances",
        "StartInstances",
        "RebootInstances",
    ] {
        let reply = h.post(&[("Action", action)]).await;
        assert_eq!(
            reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterCombination"),
            "No instances specified",
            "{action}"
        );
    }
}

#[tokio::test]
async fn multi_instance_state_change_answers_in_request_order() {
    let h = Harness::docker();
    let doc = h.run(&[("MinCount", "3"), ("MaxCount", "3")]).await;
    let ids: Vec<String> = doc
        .items("instancesSet")
        .iter()
        .map(|i| i.text_at("instanceId").to_string())
        .collect();
    let doc = h
        .post(&[
            ("Action", "TerminateInstances"),
            ("InstanceId.1", &ids[2]),
            ("InstanceId.2", &ids[0]),
            ("InstanceId.3", &ids[2]),
        ])
        .await
        .ok("TerminateInstances");
    let answered: Vec<&str> = doc
        .items("instancesSet")
        .iter()
        .map(|i| i.text_at("instanceId"))
        .collect();
    assert_eq!(answered, vec![ids[2].as_str(), ids[0].as_str()]);
    assert_eq!(h.instance(&ids[1]).spec.desired, DesiredState::Running);
}

#[tokio::test]
async fn every_filter_of_the_api_reference_is_accepted() {
    let h = Harness::docker();
    let id = h.run_one().await;
    let count = |name: &'static str, value: &'static str| {
        let h = &h;
        async move {
            h.post(&[
                ("Action", "DescribeInstances"),
                ("Filter.1.Name", name),
                ("Filter.1.Value.1", value),
            ])
            .await
            .ok("DescribeInstances")
            .items("reservationSet")
            .len()
        }
    };
    // What ec2d shows, answered.
    for (name, value) in [
        ("launch-index", "0"),
        ("availability-zone-id", "use1-az1"),
        ("metadata-options.http-tokens", "optional"),
        ("metadata-options.http-endpoint", "enabled"),
        ("source-dest-check", "true"),
        ("ebs-optimized", "false"),
        ("boot-mode", "legacy-bios"),
        ("network-interface.status", "in-use"),
        ("network-interface.attachment.device-index", "0"),
        ("network-interface.owner-id", "000000000000"),
        ("block-device-mapping.device-name", "/dev/sda1"),
        ("block-device-mapping.volume-id", "vol-*"),
    ] {
        assert_eq!(count(name, value).await, 1, "{name}={value}");
    }
    assert_eq!(count("launch-index", "1").await, 0);
    // What ec2d does not model: accepted, matching nothing.
    for name in [
        "affinity",
        "host-id",
        "iam-instance-profile.id",
        "instance-lifecycle",
        "kernel-id",
        "ipv6-address",
        "network-interface.ipv6-address",
        "placement-partition-number",
        "spot-instance-request-id",
    ] {
        assert_eq!(count(name, "*").await, 0, "{name}");
    }
    h.post(&[
        ("Action", "DescribeInstances"),
        ("Filter.1.Name", "launch-index-typo"),
        ("Filter.1.Value.1", "0"),
    ])
    .await
    .err("InvalidParameterValue");
    assert!(!id.is_empty());
}

/// EC2 refuses to stop an instance whose first launch has not reached `running` yet, with its
/// own wording; once it ran, a stop (and a pending restart's stop) is accepted. Mock mode holds
/// the instance pending: no reconciler runs behind the router here, so the status is written by
/// hand.
#[tokio::test]
async fn stopping_a_first_launch_still_pending_is_incorrect_instance_state() {
    let h = Harness::unsigned(VmManager::Mock);
    let id = h.run_one().await;
    for dry_run in ["false", "true"] {
        let reply = h
            .post(&[
                ("Action", "StopInstances"),
                ("InstanceId.1", &id),
                ("DryRun", dry_run),
            ])
            .await;
        assert_eq!(
            reply.err_status(StatusCode::BAD_REQUEST, "IncorrectInstanceState"),
            format!(
                "Instance '{id}' cannot be stopped as it has never reached the 'running' state."
            )
        );
    }
    assert_eq!(h.instance(&id).spec.desired, DesiredState::Running);
    assert_eq!(h.instance(&id).metadata.generation, 1);
    // Terminating a pending instance stays allowed.
    let other = h.run_one().await;
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &other)])
        .await
        .ok("TerminateInstances");

    h.observe(&id, InstanceState::Running, None);
    h.post(&[("Action", "StopInstances"), ("InstanceId.1", &id)])
        .await
        .ok("StopInstances");
    h.observe(&id, InstanceState::Stopped, None);
    let doc = h
        .post(&[("Action", "StartInstances"), ("InstanceId.1", &id)])
        .await
        .ok("StartInstances");
    assert_eq!(
        doc.path("instancesSet/item/currentState/name").text,
        "pending"
    );
    // Pending again, but it has run: the stop is accepted.
    h.post(&[("Action", "StopInstances"), ("InstanceId.1", &id)])
        .await
        .ok("StopInstances");
}

/// RunInstances tags what EC2 lets it tag at launch (its instance, volumes, network interfaces,
/// Spot requests: the latter are accepted and dropped) and refuses any other resource type.
#[tokio::test]
async fn run_instances_refuses_a_tag_specification_it_cannot_tag() {
    let h = Harness::unsigned(VmManager::Mock);
    let doc = h
        .run(&[
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "web"),
            ("TagSpecification.2.ResourceType", "volume"),
            ("TagSpecification.2.Tag.1.Key", "disk"),
        ])
        .await;
    let id = doc.path("instancesSet/item/instanceId").text.clone();
    let tags = h.instance(&id).spec.tags;
    assert_eq!(tags.len(), 1);
    assert_eq!(tags["Name"], "web");
    h.refuses_tag_type(
        &[
            ("Action", "RunInstances"),
            ("ImageId", common::api::AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ],
        "security-group",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// DescribeInstanceStatus

/// The one item DescribeInstanceStatus lists for `id`, or `None`.
async fn status_of(h: &Harness, id: &str, extra: &[(&str, &str)]) -> Option<Node> {
    let mut params = vec![("Action", "DescribeInstanceStatus"), ("InstanceId.1", id)];
    params.extend_from_slice(extra);
    let doc = h.post(&params).await.ok("DescribeInstanceStatus");
    let mut items = doc.items("instanceStatusSet");
    assert!(items.len() <= 1, "{items:?}");
    items.pop().cloned()
}

#[tokio::test]
async fn instance_status_shows_zone_id_operator_and_every_check() {
    let h = Harness::docker();
    let id = h
        .run(&[("Placement.AvailabilityZone", "us-east-1b")])
        .await
        .path("instancesSet/item/instanceId")
        .text
        .clone();
    // not running yet: listed only with IncludeAllInstances, with no checks
    assert!(status_of(&h, &id, &[]).await.is_none());
    let item = status_of(&h, &id, &[("IncludeAllInstances", "true")])
        .await
        .expect("listed with IncludeAllInstances");
    assert_eq!(item.text_at("instanceState/name"), "pending");
    for check in ["systemStatus", "instanceStatus", "attachedEbsStatus"] {
        assert_eq!(item.text_at(&format!("{check}/status")), "not-applicable");
        assert!(item.items(&format!("{check}/details")).is_empty());
    }

    h.observe(&id, InstanceState::Running, Some("172.17.0.2"));
    let item = status_of(&h, &id, &[])
        .await
        .expect("a running instance is listed");
    assert_eq!(item.text_at("availabilityZone"), "us-east-1b");
    assert_eq!(item.text_at("availabilityZoneId"), "use1-az2");
    assert_eq!(item.text_at("operator/managed"), "false");
    assert_eq!(item.text_at("instanceState/name"), "running");
    for check in ["systemStatus", "instanceStatus", "attachedEbsStatus"] {
        assert_eq!(item.text_at(&format!("{check}/status")), "ok", "{check}");
        assert_eq!(
            item.pairs(&format!("{check}/details"), "name", "status"),
            vec![("reachability".to_string(), "passed".to_string())],
            "{check}"
        );
    }
    assert!(item.items("eventsSet").is_empty());
}

#[tokio::test]
async fn instance_status_filters_ec2_documents() {
    let h = Harness::docker();
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, Some("172.17.0.2"));
    let filtered = |name: &'static str, value: &'static str| {
        let h = &h;
        let id = id.clone();
        async move {
            status_of(
                h,
                &id,
                &[("Filter.1.Name", name), ("Filter.1.Value.1", value)],
            )
            .await
            .is_some()
        }
    };
    for (name, value) in [
        ("availability-zone", "us-east-1a"),
        ("availability-zone-id", "use1-az1"),
        ("operator.managed", "false"),
        ("attached-ebs-status.status", "ok"),
        ("instance-status.reachability", "passed"),
        ("system-status.status", "ok"),
    ] {
        assert!(filtered(name, value).await, "{name}={value} should match");
    }
    // ec2d schedules no events and manages nothing for a service: those match nothing
    for (name, value) in [
        ("availability-zone-id", "use1-az2"),
        ("operator.managed", "true"),
        ("operator.principal", "*"),
        ("event.code", "instance-reboot"),
        ("event.description", "*"),
        ("event.instance-event-id", "*"),
        ("event.not-after", "*"),
        ("event.not-before", "*"),
        ("event.not-before-deadline", "*"),
        ("attached-ebs-status.status", "impaired"),
    ] {
        assert!(
            !filtered(name, value).await,
            "{name}={value} should not match"
        );
    }
    let err = h
        .post(&[
            ("Action", "DescribeInstanceStatus"),
            ("Filter.1.Name", "event.colour"),
            ("Filter.1.Value.1", "x"),
        ])
        .await
        .err("InvalidParameterValue");
    assert_eq!(err, "The filter 'event.colour' is invalid");
}
