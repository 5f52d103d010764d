//! Protocol tests: the EC2 Query API driven through `api::router` with `oneshot` (no socket), a temporary store and no runtime.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::api::{parse_xml, Harness, Node, Reply};
use ec2d::config::VmManager;
use ec2d::model::{
    now, ContainerObservation, DesiredState, Image, ImageSource, ImageSpec, ImageState,
    ImageStatus, InstanceState, Object, ObjectMeta, StateReason, API_VERSION, IMAGE_KIND,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Harness: the shared one (`tests/common/api.rs`), unsigned as most of these tests send, plus
// what only these tests need.

const AMI: &str = "ami-0a1b2c3d4e5f6a7b8";

impl Harness {
    /// Docker mode with one available AMI in the catalog, as discovery would have written it.
    fn docker() -> Self {
        let h = Self::unsigned(VmManager::Docker);
        h.store
            .catalog()
            .replace_all(&[catalog_image(
                AMI,
                "ubuntu-22.04",
                Some(ImageState::Available),
            )])
            .unwrap();
        h
    }

    async fn run(&self, extra: &[(&str, &str)]) -> Node {
        let mut params = vec![
            ("Action", "RunInstances"),
            ("ImageId", AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ];
        for (k, v) in extra {
            params.retain(|(pk, _)| pk != k);
            params.push((k, v));
        }
        self.post(&params).await.ok("RunInstances")
    }

    async fn run_one(&self) -> String {
        self.run(&[])
            .await
            .path("instancesSet/item/instanceId")
            .text
            .clone()
    }

    /// Emulates the reconciler reaching `state` for the current generation.
    fn observe(&self, id: &str, state: InstanceState, ip: Option<&str>) {
        let inst = self.instance(id);
        let mut status = inst.status.clone();
        status.observed_generation = inst.metadata.generation;
        status.state = Some(state);
        status.container = ip.map(|ip| ContainerObservation {
            id: "c0ffee".into(),
            state: "running".into(),
            ip_address: Some(ip.into()),
            ports: Vec::new(),
        });
        self.store.instances().write_status(id, &status).unwrap();
    }

    async fn shown(&self, id: &str) -> String {
        let doc = self
            .post(&[("Action", "DescribeInstances"), ("InstanceId.1", id)])
            .await
            .ok("DescribeInstances");
        doc.path("reservationSet/item/instancesSet/item/instanceState/name")
            .text
            .clone()
    }
}

fn catalog_image(id: &str, name: &str, state: Option<ImageState>) -> Image {
    Object {
        api_version: API_VERSION.to_string(),
        kind: IMAGE_KIND.to_string(),
        metadata: ObjectMeta::new(id, "us-east-1", now()),
        spec: ImageSpec {
            name: name.to_string(),
            description: Some("from docker".to_string()),
            source: ImageSource::Docker,
            reference: format!("localstack-ec2/{name}:{id}"),
            tags: [("ec2_vm_manager".to_string(), "docker".to_string())].into(),
        },
        status: ImageStatus {
            observed_generation: 1,
            state,
            architecture: Some("amd64".into()),
            ..ImageStatus::default()
        },
    }
}

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

/// The ids DescribeImages answers for these extra parameters, sorted.
async fn described_images(h: &Harness, extra: &[(&str, &str)]) -> Vec<String> {
    let mut params = vec![("Action", "DescribeImages")];
    params.extend_from_slice(extra);
    let doc = h.post(&params).await.ok("DescribeImages");
    let mut ids: Vec<String> = doc
        .items("imagesSet")
        .iter()
        .map(|i| i.text_at("imageId").to_string())
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

    let reply = h.post(&[("Action", "TerminateInstances")]).await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "MissingParameter"),
        "The request must contain the parameter InstanceId"
    );
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

// ---------------------------------------------------------------------------------------------
// DryRun

#[tokio::test]
async fn dry_run_validates_then_refuses_to_write() {
    let h = Harness::docker();
    let reply = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", AMI),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("DryRun", "true"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation"),
        "Request would have succeeded, but DryRun flag is set."
    );
    assert_eq!(h.store.instances().len(), 0);
    // Validation comes first: a dry run with a bad AMI reports the AMI.
    let reply = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-12345678"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("DryRun", "true"),
        ])
        .await;
    reply.err_status(StatusCode::BAD_REQUEST, "InvalidAMIID.NotFound");

    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    for action in ["StopInstances", "TerminateInstances"] {
        let reply = h
            .post(&[
                ("Action", action),
                ("InstanceId.1", &id),
                ("DryRun", "true"),
            ])
            .await;
        reply.err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    }
    let inst = h.instance(&id);
    assert_eq!(inst.metadata.generation, 1);
    assert_eq!(inst.spec.desired, DesiredState::Running);

    let reply = h
        .post(&[
            ("Action", "CreateImage"),
            ("InstanceId", &id),
            ("Name", "dry"),
            ("DryRun", "true"),
        ])
        .await;
    reply.err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    assert_eq!(h.store.images().len(), 0);
    for action in [
        "DescribeInstances",
        "DescribeImages",
        "DescribeRegions",
        "DescribeAvailabilityZones",
    ] {
        h.post(&[("Action", action), ("DryRun", "true")])
            .await
            .err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    }
    h.post(&[("Action", "DescribeInstances"), ("DryRun", "false")])
        .await
        .ok("DescribeInstances");
}

// ---------------------------------------------------------------------------------------------
// Images

async fn create_image(h: &Harness, instance: &str, name: &str) -> Reply {
    h.post(&[
        ("Action", "CreateImage"),
        ("InstanceId", instance),
        ("Name", name),
        ("Description", "nightly"),
        ("NoReboot", "true"),
        ("TagSpecification.1.ResourceType", "image"),
        ("TagSpecification.1.Tag.1.Key", "team"),
        ("TagSpecification.1.Tag.1.Value", "infra"),
    ])
    .await
}

#[tokio::test]
async fn create_image_records_a_commit_and_describe_images_shows_it() {
    let h = Harness::docker();
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    let doc = create_image(&h, &id, "My Snap (v2)")
        .await
        .ok("CreateImage");
    assert_eq!(doc.names(), vec!["requestId", "imageId"]);
    let ami = doc.text_at("imageId").to_string();
    assert!(ami.starts_with("ami-"));
    let stored = h.store.images().get(&ami).unwrap().expect("image stored");
    assert_eq!(stored.kind, "Image");
    assert_eq!(stored.metadata.namespace, "us-east-1");
    assert_eq!(
        stored.spec.reference,
        format!("localstack-ec2/my-snap-v2:{ami}")
    );
    assert_eq!(stored.spec.description.as_deref(), Some("nightly"));
    assert!(
        matches!(&stored.spec.source, ImageSource::Commit { instance_id } if instance_id.as_str() == id)
    );
    assert_eq!(
        stored.spec.tags.get("ec2_vm_manager").map(String::as_str),
        Some("docker")
    );
    assert_eq!(
        stored.spec.tags.get("team").map(String::as_str),
        Some("infra")
    );

    let doc = h
        .post(&[("Action", "DescribeImages"), ("ImageId.1", &ami)])
        .await
        .ok("DescribeImages");
    let item = doc.items("imagesSet")[0];
    assert_eq!(
        item.names(),
        vec![
            "imageId",
            "imageLocation",
            "imageState",
            "imageOwnerId",
            "creationDate",
            "isPublic",
            "architecture",
            "imageType",
            "name",
            "description",
            "rootDeviceType",
            "rootDeviceName",
            "blockDeviceMapping",
            "virtualizationType",
            "tagSet",
            "hypervisor",
            "enaSupport",
            "platformDetails",
            "usageOperation",
        ]
    );
    assert_eq!(item.text_at("imageState"), "pending");
    assert_eq!(item.text_at("name"), "My Snap (v2)");
    assert_eq!(item.text_at("imageLocation"), "000000000000/My Snap (v2)");
    assert_eq!(item.text_at("imageOwnerId"), "000000000000");
    assert_eq!(item.text_at("isPublic"), "false");
    assert_eq!(item.text_at("architecture"), "x86_64");

    // Failed commits carry their reason.
    let mut status = stored.status.clone();
    status.observed_generation = 1;
    status.state = Some(ImageState::Failed);
    status.state_reason = Some(StateReason::internal_error("commit failed"));
    h.store.images().write_status(&ami, &status).unwrap();
    let doc = h
        .post(&[("Action", "DescribeImages"), ("ImageId.1", &ami)])
        .await
        .ok("DescribeImages");
    let item = doc.items("imagesSet")[0];
    assert_eq!(item.text_at("imageState"), "failed");
    assert_eq!(item.text_at("stateReason/code"), "Server.InternalError");
}

#[tokio::test]
async fn create_image_errors() {
    let h = Harness::docker();
    let id = h.run_one().await;
    let reply = create_image(&h, &id, "pending-instance").await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        format!("Invalid value '{id}' for instanceId. Instance is not in state 'running' or 'stopping' or 'stopped'")
    );
    h.observe(&id, InstanceState::Running, None);
    let first = create_image(&h, &id, "golden").await.ok("CreateImage");
    let ami = first.text_at("imageId").to_string();
    let reply = create_image(&h, &id, "golden").await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidAMIName.Duplicate"),
        format!("AMI name golden is already in use by AMI {ami}")
    );
    let reply = create_image(&h, &id, "ubuntu-22.04").await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidAMIName.Duplicate"),
        format!("AMI name ubuntu-22.04 is already in use by AMI {AMI}"),
        "catalog names count too"
    );
    let reply = create_image(&h, &id, "x!").await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidAMIName.Malformed"),
        "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'"
    );
    let reply = h
        .post(&[("Action", "CreateImage"), ("InstanceId", &id)])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "MissingParameter"),
        "The request must contain the parameter Name"
    );
    let reply = create_image(&h, "i-0000000000000beef", "other").await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound"),
        "The instance ID 'i-0000000000000beef' does not exist"
    );
    let reply = create_image(&h, "beef", "other").await;
    reply.err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.Malformed");
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await
        .ok("TerminateInstances");
    create_image(&h, &id, "too-late")
        .await
        .err_status(StatusCode::BAD_REQUEST, "InvalidParameterValue");
    assert_eq!(h.store.images().len(), 1);
}

#[tokio::test]
async fn describe_images_ids_owners_and_filters() {
    let h = Harness::docker();
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    let mine = create_image(&h, &id, "web-nightly")
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();

    let mut both = vec![AMI.to_string(), mine.clone()];
    both.sort();
    assert_eq!(described_images(&h, &[]).await, both);
    assert_eq!(described_images(&h, &[("Owner.1", "self")]).await, both);
    assert_eq!(
        described_images(&h, &[("Owner.1", "000000000000")]).await,
        both
    );
    assert!(described_images(&h, &[("Owner.1", "amazon")])
        .await
        .is_empty());
    assert_eq!(
        described_images(&h, &[("Owner.1", "amazon"), ("Owner.2", "self")]).await,
        both
    );
    assert_eq!(
        described_images(&h, &[("ExecutableBy.1", "all")]).await,
        both
    );
    assert_eq!(
        described_images(
            &h,
            &[("Filter.1.Name", "name"), ("Filter.1.Value.1", "web-*")]
        )
        .await,
        vec![mine.clone()]
    );
    assert_eq!(
        described_images(
            &h,
            &[
                ("Filter.1.Name", "tag:ec2_vm_manager"),
                ("Filter.1.Value.1", "docker")
            ]
        )
        .await,
        both
    );
    assert_eq!(
        described_images(
            &h,
            &[("Filter.1.Name", "tag-key"), ("Filter.1.Value.1", "team")]
        )
        .await,
        vec![mine.clone()]
    );
    assert_eq!(
        described_images(
            &h,
            &[
                ("Filter.1.Name", "state"),
                ("Filter.1.Value.1", "available")
            ]
        )
        .await,
        vec![AMI.to_string()]
    );
    assert_eq!(
        described_images(
            &h,
            &[("Filter.1.Name", "image-id"), ("Filter.1.Value.1", AMI)]
        )
        .await,
        vec![AMI.to_string()]
    );
    assert_eq!(
        described_images(
            &h,
            &[
                ("Filter.1.Name", "owner-id"),
                ("Filter.1.Value.1", "000000000000")
            ]
        )
        .await,
        both
    );
    assert!(described_images(
        &h,
        &[("Filter.1.Name", "is-public"), ("Filter.1.Value.1", "true")]
    )
    .await
    .is_empty());

    let reply = h
        .post(&[("Action", "DescribeImages"), ("ImageId.1", "ami-12345678")])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidAMIID.NotFound"),
        "The image id '[ami-12345678]' does not exist"
    );
    let reply = h
        .post(&[("Action", "DescribeImages"), ("ImageId.1", "image-1")])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidAMIID.Malformed"),
        "Invalid id: \"image-1\" (expecting \"ami-...\")"
    );
    let reply = h
        .post(&[
            ("Action", "DescribeImages"),
            ("Filter.1.Name", "flavour"),
            ("Filter.1.Value.1", "x"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        "The filter 'flavour' is invalid"
    );
}

// ---------------------------------------------------------------------------------------------
// Regions

#[tokio::test]
async fn resources_are_scoped_per_region() {
    let h = Harness::docker();
    let west = h
        .post_in(
            Some("us-west-2"),
            &[
                ("Action", "RunInstances"),
                ("ImageId", AMI),
                ("MinCount", "1"),
                ("MaxCount", "1"),
            ],
        )
        .await
        .ok("RunInstances");
    let id = west.text_at("instancesSet/item/instanceId").to_string();
    assert_eq!(
        west.text_at("instancesSet/item/placement/availabilityZone"),
        "us-west-2a"
    );
    assert_eq!(h.instance(&id).metadata.namespace, "us-west-2");

    let east = h
        .post(&[("Action", "DescribeInstances")])
        .await
        .ok("DescribeInstances");
    assert!(
        east.items("reservationSet").is_empty(),
        "not visible from us-east-1"
    );
    h.post(&[("Action", "DescribeInstances"), ("InstanceId.1", &id)])
        .await
        .err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound");
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await
        .err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound");
    assert_eq!(h.instance(&id).spec.desired, DesiredState::Running);

    let doc = h
        .post_in(Some("us-west-2"), &[("Action", "DescribeInstances")])
        .await
        .ok("DescribeInstances");
    assert_eq!(doc.items("reservationSet").len(), 1);

    // CreateImage records belong to their region; catalog AMIs are everywhere.
    h.observe(&id, InstanceState::Running, None);
    let ami = h
        .post_in(
            Some("us-west-2"),
            &[
                ("Action", "CreateImage"),
                ("InstanceId", &id),
                ("Name", "west-image"),
            ],
        )
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();
    let east_images = h
        .post(&[("Action", "DescribeImages")])
        .await
        .ok("DescribeImages");
    let east_ids: Vec<&str> = east_images
        .items("imagesSet")
        .iter()
        .map(|i| i.text_at("imageId"))
        .collect();
    assert_eq!(east_ids, vec![AMI]);
    h.post(&[("Action", "DescribeImages"), ("ImageId.1", &ami)])
        .await
        .err_status(StatusCode::BAD_REQUEST, "InvalidAMIID.NotFound");
    let west_images = h
        .post_in(Some("us-west-2"), &[("Action", "DescribeImages")])
        .await
        .ok("DescribeImages");
    assert_eq!(west_images.items("imagesSet").len(), 2);
    // The same name is free in another region.
    h.observe(&id, InstanceState::Running, None);
    let east_id = h.run_one().await;
    h.observe(&east_id, InstanceState::Running, None);
    h.post(&[
        ("Action", "CreateImage"),
        ("InstanceId", &east_id),
        ("Name", "west-image"),
    ])
    .await
    .ok("CreateImage");
}

#[tokio::test]
async fn describe_regions_and_zones() {
    let h = Harness::docker();
    let doc = h
        .post(&[("Action", "DescribeRegions")])
        .await
        .ok("DescribeRegions");
    let regions = doc.items("regionInfo");
    assert!(regions.len() >= 17);
    let east = regions
        .iter()
        .find(|r| r.text_at("regionName") == "us-east-1")
        .expect("us-east-1 listed");
    assert_eq!(
        east.names(),
        vec!["regionName", "regionEndpoint", "optInStatus"]
    );
    assert_eq!(
        east.text_at("regionEndpoint"),
        "ec2.us-east-1.amazonaws.com"
    );
    assert_eq!(east.text_at("optInStatus"), "opt-in-not-required");

    let doc = h
        .post(&[
            ("Action", "DescribeRegions"),
            ("RegionName.1", "eu-west-1"),
            ("RegionName.2", "ap-south-1"),
        ])
        .await
        .ok("DescribeRegions");
    let names: Vec<&str> = doc
        .items("regionInfo")
        .iter()
        .map(|r| r.text_at("regionName"))
        .collect();
    assert_eq!(names, vec!["ap-south-1", "eu-west-1"]);
    let doc = h
        .post(&[
            ("Action", "DescribeRegions"),
            ("Filter.1.Name", "region-name"),
            ("Filter.1.Value.1", "eu-*"),
        ])
        .await
        .ok("DescribeRegions");
    assert!(doc
        .items("regionInfo")
        .iter()
        .all(|r| r.text_at("regionName").starts_with("eu-")));
    let reply = h
        .post(&[
            ("Action", "DescribeRegions"),
            ("RegionName.1", "mars-north-1"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        "Invalid region: [mars-north-1]"
    );

    let doc = h
        .post_in(
            Some("eu-central-1"),
            &[("Action", "DescribeAvailabilityZones")],
        )
        .await
        .ok("DescribeAvailabilityZones");
    let zones = doc.items("availabilityZoneInfo");
    let names: Vec<&str> = zones.iter().map(|z| z.text_at("zoneName")).collect();
    assert_eq!(
        names,
        vec!["eu-central-1a", "eu-central-1b", "eu-central-1c"]
    );
    let z = zones[0];
    assert_eq!(
        z.names(),
        vec![
            "zoneName",
            "zoneState",
            "regionName",
            "messageSet",
            "optInStatus",
            "zoneId",
            "groupName",
            "networkBorderGroup",
            "zoneType"
        ]
    );
    assert_eq!(z.text_at("zoneState"), "available");
    assert_eq!(z.text_at("regionName"), "eu-central-1");
    assert_eq!(z.text_at("zoneId"), "euc1-az1");
    assert_eq!(z.text_at("zoneType"), "availability-zone");
    assert_eq!(z.text_at("networkBorderGroup"), "eu-central-1");

    let doc = h
        .post(&[
            ("Action", "DescribeAvailabilityZones"),
            ("ZoneName.1", "us-east-1b"),
        ])
        .await
        .ok("DescribeAvailabilityZones");
    assert_eq!(doc.items("availabilityZoneInfo").len(), 1);
    let doc = h
        .post(&[
            ("Action", "DescribeAvailabilityZones"),
            ("Filter.1.Name", "zone-name"),
            ("Filter.1.Value.1", "*c"),
        ])
        .await
        .ok("DescribeAvailabilityZones");
    assert_eq!(
        doc.text_at("availabilityZoneInfo/item/zoneName"),
        "us-east-1c"
    );
    let reply = h
        .post(&[
            ("Action", "DescribeAvailabilityZones"),
            ("ZoneName.1", "us-east-1z"),
        ])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        "Invalid availability zone: [us-east-1z]"
    );
}

// ---------------------------------------------------------------------------------------------
// Protocol

#[tokio::test]
async fn get_and_post_are_equivalent() {
    let h = Harness::docker();
    let id = h.run_one().await;
    let strip = |body: &str| {
        let start = body.find("<requestId>").unwrap();
        let end = body.find("</requestId>").unwrap();
        format!("{}{}", &body[..start], &body[end..])
    };
    for params in [
        vec![
            ("Action", "DescribeInstances"),
            ("Version", "2016-11-15"),
            ("InstanceId.1", id.as_str()),
        ],
        vec![("Action", "DescribeRegions"), ("Version", "2016-11-15")],
        vec![("Action", "DescribeImages"), ("Owner.1", "self")],
    ] {
        let get = h.get(&params).await;
        let post = h.post(&params).await;
        assert_eq!(get.status, StatusCode::OK);
        assert_eq!(get.content_type, post.content_type);
        assert_eq!(strip(&get.body), strip(&post.body));
    }
    let get_err = h
        .get(&[
            ("Action", "DescribeInstances"),
            ("InstanceId.1", "i-00000000000000001"),
        ])
        .await;
    get_err.err_status(StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound");
    // Parameters may also be split between the query string and the body.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/?Action=DescribeRegions")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("RegionName.1=eu-west-1"))
        .unwrap();
    let doc = h.send(req).await.ok("DescribeRegions");
    assert_eq!(doc.items("regionInfo").len(), 1);
}

#[tokio::test]
async fn hostile_tag_values_are_escaped() {
    let h = Harness::docker();
    let hostile = "<script>alert(\"x\")</script> & 'quotes' ]]> \u{1} \r\n";
    let key = "k<&>\"'";
    let doc = h
        .run(&[
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", key),
            ("TagSpecification.1.Tag.1.Value", hostile),
        ])
        .await;
    let tags = doc.path("instancesSet/item").tags();
    // Control characters XML cannot carry are replaced; everything else survives the round trip.
    assert_eq!(tags[key], hostile.replace('\u{1}', "\u{FFFD}"));
    let reply = h.post(&[("Action", "DescribeInstances")]).await;
    assert!(reply
        .body
        .contains("&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; 'quotes' ]]&gt;"));
    assert!(!reply.body.contains("<script>"));
    let tags = reply
        .ok("DescribeInstances")
        .path("reservationSet/item/instancesSet/item")
        .tags();
    assert_eq!(tags[key], hostile.replace('\u{1}', "\u{FFFD}"));

    // Error messages echo client input: escaped as well.
    let reply = h.post(&[("Action", "<Evil&Action>")]).await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidAction"),
        "The action <Evil&Action> is not valid for this web service."
    );
    assert!(reply.body.contains("&lt;Evil&amp;Action&gt;"));
}

#[tokio::test]
async fn action_errors() {
    let h = Harness::docker();
    let reply = h.post(&[("Version", "2016-11-15")]).await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "MissingAction"),
        "The request must contain the parameter Action"
    );
    let reply = h.get(&[]).await;
    reply.err_status(StatusCode::BAD_REQUEST, "MissingAction");
    let reply = h.post(&[("Action", "LaunchRockets")]).await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidAction"),
        "The action LaunchRockets is not valid for this web service."
    );
    let req = Request::builder()
        .method(Method::PUT)
        .uri("/?Action=DescribeRegions")
        .body(Body::empty())
        .unwrap();
    h.send(req)
        .await
        .err_status(StatusCode::METHOD_NOT_ALLOWED, "InvalidRequest");
    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"Action\":\"DescribeRegions\"}"))
        .unwrap();
    h.send(req)
        .await
        .err_status(StatusCode::BAD_REQUEST, "InvalidRequest");
    // A POST without a body or content type may carry everything in the query string.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/?Action=DescribeRegions")
        .body(Body::empty())
        .unwrap();
    h.send(req).await.ok("DescribeRegions");
    let reply = h
        .post(&[("Action", "DescribeInstances"), ("DryRun", "yes please")])
        .await;
    assert_eq!(
        reply.err_status(StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        "Value (yes please) for parameter DryRun is invalid. Expected 'true' or 'false'."
    );
}

#[tokio::test]
async fn request_ids_are_fresh_per_request() {
    let h = Harness::docker();
    let a = h
        .post(&[("Action", "DescribeRegions")])
        .await
        .ok("DescribeRegions")
        .text_at("requestId")
        .to_string();
    let b = h
        .post(&[("Action", "DescribeRegions")])
        .await
        .ok("DescribeRegions")
        .text_at("requestId")
        .to_string();
    assert_ne!(a, b);
}

#[tokio::test]
async fn oversized_bodies_get_an_ec2_error() {
    let h = Harness::docker();
    let big = format!(
        "Action=DescribeRegions&Padding={}",
        "a".repeat(ec2d::api::BODY_LIMIT + 1)
    );
    // With a Content-Length the limit layer refuses before the handler runs...
    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let msg = h
        .send(req)
        .await
        .err_status(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge");
    assert!(msg.contains("1048576"), "{msg}");
    // ...and a streamed body without one is cut off while it is read.
    let stream = futures::stream::iter(
        big.into_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from_stream(stream))
        .unwrap();
    h.send(req)
        .await
        .err_status(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge");
    // Just under the limit is fine.
    let fits = format!(
        "Action=DescribeRegions&Padding={}",
        "a".repeat(ec2d::api::BODY_LIMIT - 100)
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(fits))
        .unwrap();
    h.send(req).await.ok("DescribeRegions");
}

#[tokio::test]
async fn introspection_routes_are_merged() {
    let h = Harness::docker();
    let req = Request::builder()
        .uri("/_ec2d/health")
        .body(Body::empty())
        .unwrap();
    let reply = h.send(req).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains("\"stub\":true"));
}

// ---------------------------------------------------------------------------------------------
// Robustness: whatever arrives, the answer is a well-formed EC2 document.

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

#[tokio::test]
async fn create_image_amis_take_tags_and_discovered_amis_refuse_them() {
    let h = Harness::docker();
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    let ami = create_image(&h, &id, "tagged")
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &ami),
        ("Tag.1.Key", "stage"),
        ("Tag.1.Value", "prod"),
    ])
    .await
    .ok("CreateTags");
    let doc = h
        .post(&[("Action", "DescribeImages"), ("ImageId.1", &ami)])
        .await
        .ok("DescribeImages");
    let tags = doc.items("imagesSet")[0].tags();
    assert_eq!(tags.get("stage").map(String::as_str), Some("prod"));
    assert_eq!(tags.get("team").map(String::as_str), Some("infra"));
    let listed = h
        .post(&[
            ("Action", "DescribeTags"),
            ("Filter.1.Name", "resource-type"),
            ("Filter.1.Value.1", "image"),
        ])
        .await
        .ok("DescribeTags");
    let items: Vec<(String, String)> = listed
        .items("tagSet")
        .iter()
        .map(|t| {
            (
                t.text_at("resourceId").to_string(),
                t.text_at("key").to_string(),
            )
        })
        .collect();
    assert_eq!(
        items,
        vec![
            (ami.clone(), "ec2_vm_manager".to_string()),
            (ami.clone(), "stage".to_string()),
            (ami.clone(), "team".to_string())
        ]
    );

    let reply = h
        .post(&[
            ("Action", "CreateTags"),
            ("ResourceId.1", AMI),
            ("Tag.1.Key", "stage"),
        ])
        .await;
    reply.err_status(StatusCode::BAD_REQUEST, "UnsupportedOperation");
    let reply = h
        .post(&[
            ("Action", "CreateTags"),
            ("ResourceId.1", "ami-0000000000000beef"),
            ("Tag.1.Key", "stage"),
        ])
        .await;
    reply.err_status(StatusCode::BAD_REQUEST, "InvalidAMIID.NotFound");

    // Tagging leaves the instance's generation alone: it keeps reading running.
    let before = h.instance(&id).metadata.generation;
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "Name"),
        ("Tag.1.Value", "<web & co>"),
    ])
    .await
    .ok("CreateTags");
    assert_eq!(h.instance(&id).metadata.generation, before);
    let doc = h
        .post(&[("Action", "DescribeInstances"), ("InstanceId.1", &id)])
        .await
        .ok("DescribeInstances");
    let item = doc.path("reservationSet/item/instancesSet/item");
    assert_eq!(item.text_at("instanceState/name"), "running");
    assert_eq!(
        item.tags().get("Name").map(String::as_str),
        Some("<web & co>")
    );
}
