//! Image actions through `api::router` with `oneshot` (no socket), a temporary store and no
//! runtime: CreateImage, DescribeImages, and tags on AMIs.

mod common;

use axum::http::StatusCode;
use common::api::{Harness, Reply, AMI};
use ec2d::model::{ImageSource, ImageState, InstanceState, StateReason};

// ---------------------------------------------------------------------------------------------
// Images

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
    let items = listed.pairs("tagSet", "resourceId", "key");
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
