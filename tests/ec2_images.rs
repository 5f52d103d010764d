//! Image actions through `api::router` with `oneshot` (no socket), a temporary store and no
//! runtime: CreateImage, CopyImage, DeregisterImage, DescribeImages (filters, owners, the public
//! catalogue), Describe/ModifyImageAttribute, and tags on AMIs.

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
            "sourceInstanceId",
        ]
    );
    assert_eq!(item.text_at("sourceInstanceId"), id);
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
    // `all` is the public AMIs (none here: the catalogue is off and own AMIs are private);
    // `self` what the account may launch, its own included.
    assert!(described_images(&h, &[("ExecutableBy.1", "all")])
        .await
        .is_empty());
    assert_eq!(
        described_images(&h, &[("ExecutableBy.1", "self")]).await,
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

// ---------------------------------------------------------------------------------------------
// The public AMI catalogue

use common::api::{catalog_image, Node};
use ec2d::config::VmManager;

/// The catalogue's current Amazon Linux 2023 x86_64 AMI (the id LocalStack documents).
const AL2023: &str = "ami-024f768332f0";
/// An older, still current AL2023 build, and a deprecated one.
const AL2023_OLDER: &str = "ami-04e2d9f26611c0709";
const AL2023_DEPRECATED: &str = "ami-04bb900bd6b90688e";
const AL2023_ARM: &str = "ami-0ee25f51fa8ae8bb1";
/// Ubuntu 22.04 amd64, the id of LocalStack's examples.
const JAMMY: &str = "ami-df5de72bdb3b";
const WINDOWS: &str = "ami-09551167c0aa323b6";

async fn describe(h: &Harness, extra: &[(&str, &str)]) -> Node {
    let mut params = vec![("Action", "DescribeImages")];
    params.extend_from_slice(extra);
    h.post(&params).await.ok("DescribeImages")
}

/// One `Filter.1` with one value.
fn filter<'a>(name: &'a str, value: &'a str) -> [(&'a str, &'a str); 2] {
    [("Filter.1.Name", name), ("Filter.1.Value.1", value)]
}

fn sorted(mut ids: Vec<&str>) -> Vec<String> {
    ids.sort();
    ids.into_iter().map(str::to_string).collect()
}

#[tokio::test]
async fn the_public_catalogue_lists_amazon_linux_2023_by_owner_and_name() {
    let h = Harness::with_public_amis(VmManager::Docker);
    let al2023 = [
        ("Owner.1", "amazon"),
        ("Filter.1.Name", "name"),
        ("Filter.1.Value.1", "al2023-ami-*"),
    ];
    assert_eq!(
        described_images(&h, &al2023).await,
        sorted(vec![AL2023, AL2023_OLDER, AL2023_ARM]),
        "the deprecated build is left out"
    );
    let mut with_deprecated = al2023.to_vec();
    with_deprecated.push(("IncludeDeprecated", "true"));
    assert_eq!(
        described_images(&h, &with_deprecated).await,
        sorted(vec![AL2023, AL2023_OLDER, AL2023_ARM, AL2023_DEPRECATED])
    );
    // Named by id, a deprecated AMI is shown, with its deprecation time.
    let doc = describe(&h, &[("ImageId.1", AL2023_DEPRECATED)]).await;
    assert_eq!(
        doc.text_at("imagesSet/item/deprecationTime"),
        "2026-09-11T00:12:00.000Z"
    );
    h.post(&[
        ("Action", "DescribeImages"),
        ("IncludeDeprecated", "sometimes"),
    ])
    .await
    .err("InvalidParameterValue");

    let doc = describe(&h, &[("ImageId.1", AL2023)]).await;
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
            "imageOwnerAlias",
            "name",
            "description",
            "rootDeviceType",
            "rootDeviceName",
            "blockDeviceMapping",
            "virtualizationType",
            "hypervisor",
            "enaSupport",
            "sriovNetSupport",
            "bootMode",
            "platformDetails",
            "usageOperation",
            "imdsSupport",
        ]
    );
    assert_eq!(
        item.text_at("name"),
        "al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"
    );
    assert_eq!(
        item.text_at("imageLocation"),
        "amazon/al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"
    );
    assert_eq!(item.text_at("imageOwnerId"), "137112412989");
    assert_eq!(item.text_at("imageOwnerAlias"), "amazon");
    assert_eq!(item.text_at("imageState"), "available");
    assert_eq!(item.text_at("isPublic"), "true");
    assert_eq!(item.text_at("architecture"), "x86_64");
    assert_eq!(item.text_at("creationDate"), "2026-11-11T21:04:11.000Z");
    assert_eq!(item.text_at("rootDeviceName"), "/dev/xvda");
    let bdm = item.path("blockDeviceMapping/item");
    assert_eq!(bdm.text_at("deviceName"), "/dev/xvda");
    assert_eq!(bdm.text_at("ebs/volumeSize"), "8");
    assert_eq!(bdm.text_at("ebs/volumeType"), "gp3");
    assert_eq!(bdm.text_at("ebs/deleteOnTermination"), "true");
    assert!(bdm.text_at("ebs/snapshotId").starts_with("snap-"));
    assert_eq!(item.text_at("bootMode"), "uefi-preferred");
    assert!(item.opt("tagSet").is_none(), "nobody backs it: no tags");
}

#[tokio::test]
async fn owners_executable_users_and_filters_over_the_catalogue() {
    let h = Harness::with_public_amis(VmManager::Docker);
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    let mine = create_image(&h, &id, "web-nightly")
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();
    let all = described_images(&h, &[]).await;
    assert!(
        all.contains(&mine) && all.contains(&AMI.to_string()) && all.contains(&JAMMY.to_string())
    );
    assert_eq!(
        all.len(),
        2 + 14,
        "own AMIs and the catalogue's current builds"
    );

    let mut own = vec![AMI.to_string(), mine.clone()];
    own.sort();
    assert_eq!(described_images(&h, &[("Owner.1", "self")]).await, own);
    assert_eq!(
        described_images(&h, &[("ExecutableBy.1", "self")]).await,
        own
    );
    let ubuntu = described_images(&h, &[("Owner.1", "099720109477")]).await;
    assert_eq!(ubuntu.len(), 6);
    assert!(ubuntu.contains(&JAMMY.to_string()));
    let amazon = described_images(&h, &[("Owner.1", "amazon")]).await;
    assert_eq!(amazon.len(), 6, "AL2023 x3, AL2 x2, Windows");
    assert!(!amazon.contains(&JAMMY.to_string()));
    assert_eq!(
        described_images(&h, &[("Owner.1", "amazon"), ("Owner.2", "self")])
            .await
            .len(),
        8
    );
    assert!(described_images(&h, &[("Owner.1", "aws-marketplace")])
        .await
        .is_empty());
    let public = described_images(&h, &[("ExecutableBy.1", "all")]).await;
    assert_eq!(public.len(), 14);
    assert!(!public.contains(&mine));
    assert_eq!(
        described_images(
            &h,
            &[("Filter.1.Name", "is-public"), ("Filter.1.Value.1", "true")]
        )
        .await,
        public
    );

    assert_eq!(
        described_images(&h, &filter("platform", "windows")).await,
        vec![WINDOWS.to_string()]
    );
    assert_eq!(
        described_images(&h, &filter("owner-alias", "amazon")).await,
        amazon
    );
    assert_eq!(
        described_images(&h, &filter("owner-id", "099720109477")).await,
        ubuntu
    );
    assert_eq!(
        described_images(&h, &filter("description", "Canonical, Ubuntu, 22.04*"))
            .await
            .len(),
        2
    );
    assert_eq!(
        described_images(
            &h,
            &filter(
                "name",
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
            )
        )
        .await,
        vec!["ami-00abfc5e36249c28c".to_string()]
    );
    assert_eq!(
        described_images(&h, &filter("name", "debian-12-???64-*"))
            .await
            .len(),
        2,
        "`?` is one character"
    );
    let arm = described_images(&h, &filter("architecture", "arm64")).await;
    assert_eq!(arm.len(), 6);
    assert!(arm.contains(&AL2023_ARM.to_string()));
    assert_eq!(
        described_images(&h, &filter("virtualization-type", "hvm")).await,
        all
    );
    assert_eq!(
        described_images(&h, &filter("root-device-type", "ebs")).await,
        all
    );
    assert!(
        described_images(&h, &filter("root-device-type", "instance-store"))
            .await
            .is_empty()
    );
    assert_eq!(
        described_images(&h, &filter("source-instance-id", &id)).await,
        vec![mine.clone()]
    );
    assert_eq!(
        described_images(&h, &filter("block-device-mapping.volume-size", "30")).await,
        vec![WINDOWS.to_string()]
    );
    assert_eq!(
        described_images(
            &h,
            &[
                ("Owner.1", "amazon"),
                ("Filter.1.Name", "architecture"),
                ("Filter.1.Value.1", "x86_64"),
                ("Filter.2.Name", "name"),
                ("Filter.2.Value.1", "amzn2-ami-kernel-5.10-hvm-*"),
            ]
        )
        .await,
        vec!["ami-0beb066562eed4a35".to_string()]
    );
    // The catalogue's names never stop the account from using one.
    create_image(&h, &id, "al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64")
        .await
        .ok("CreateImage");
}

/// Terraform's `data "aws_ami"` read, as the provider makes it: DescribeImages with
/// `IncludeDeprecated=false`, the owners and the filters, then the most recent by
/// `CreationDate`, then GetInstanceUefiData, whose error the provider ignores.
#[tokio::test]
async fn terraform_data_aws_ami_picks_the_most_recent_of_its_query() {
    let h = Harness::with_public_amis(VmManager::Docker);
    let doc = describe(
        &h,
        &[
            ("IncludeDeprecated", "false"),
            ("Owner.1", "amazon"),
            ("Filter.1.Name", "name"),
            ("Filter.1.Value.1", "al2023-ami-2023.*-kernel-6.1-x86_64"),
            ("Filter.2.Name", "virtualization-type"),
            ("Filter.2.Value.1", "hvm"),
        ],
    )
    .await;
    let items = doc.items("imagesSet");
    assert_eq!(items.len(), 2);
    let newest = items
        .iter()
        .max_by_key(|i| i.text_at("creationDate").to_string())
        .unwrap();
    assert_eq!(newest.text_at("imageId"), AL2023);
    for field in [
        "architecture",
        "name",
        "imageOwnerId",
        "rootDeviceName",
        "rootDeviceType",
        "imageState",
        "virtualizationType",
    ] {
        assert!(!newest.text_at(field).is_empty(), "{field}");
    }
    h.post(&[("Action", "GetInstanceUefiData"), ("InstanceId", AL2023)])
        .await
        .err("InvalidAction");
}

#[tokio::test]
async fn a_public_ami_launches_in_docker_mode_once_a_docker_tag_backs_it() {
    let h = Harness::with_public_amis(VmManager::Docker);
    let launch = [
        ("Action", "RunInstances"),
        ("ImageId", JAMMY),
        ("MinCount", "1"),
        ("MaxCount", "1"),
    ];
    assert_eq!(
        h.post(&launch).await.err("InvalidAMIID.NotFound"),
        "The image id '[ami-df5de72bdb3b]' does not exist: it is a public AMI of ec2d's \
         catalogue with no Docker image behind it; back it with \
         `docker tag <image> localstack-ec2/ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20261107:ami-df5de72bdb3b`"
    );
    // `docker tag …` then discovery: the tag backs the public AMI.
    h.store
        .catalog()
        .replace_all(&[
            catalog_image(AMI, "ubuntu-22.04", Some(ImageState::Available)),
            catalog_image(JAMMY, "jammy", Some(ImageState::Available)),
        ])
        .unwrap();
    let doc = h.post(&launch).await.ok("RunInstances");
    let id = doc.text_at("instancesSet/item/instanceId").to_string();
    assert_eq!(
        h.instance(&id).spec.image_ref,
        "localstack-ec2/jammy:ami-df5de72bdb3b"
    );
    // Shown once, as the public AMI, carrying the Docker marker tag; not the account's own.
    let doc = describe(&h, &[("ImageId.1", JAMMY)]).await;
    let item = doc.items("imagesSet")[0];
    assert_eq!(item.text_at("imageOwnerId"), "099720109477");
    assert_eq!(
        item.tags().get("ec2_vm_manager").map(String::as_str),
        Some("docker")
    );
    assert_eq!(
        described_images(
            &h,
            &[("Filter.1.Name", "image-id"), ("Filter.1.Value.1", JAMMY)]
        )
        .await,
        vec![JAMMY.to_string()]
    );
    assert_eq!(
        described_images(&h, &[("Owner.1", "self")]).await,
        vec![AMI.to_string()]
    );
}

#[tokio::test]
async fn public_amis_launch_in_mock_mode_and_hide_when_the_catalogue_is_off() {
    let h = Harness::with_public_amis(VmManager::Mock);
    let doc = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", AL2023),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await
        .ok("RunInstances");
    let id = doc.text_at("instancesSet/item/instanceId").to_string();
    assert_eq!(doc.text_at("instancesSet/item/imageId"), AL2023);
    // An image of it keeps its boot mode.
    h.observe(&id, InstanceState::Running, None);
    let ami = create_image(&h, &id, "from-al2023")
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();
    let doc = describe(&h, &[("ImageId.1", &ami)]).await;
    assert_eq!(doc.text_at("imagesSet/item/bootMode"), "uefi-preferred");

    let off = Harness::docker();
    assert_eq!(
        off.post(&[("Action", "DescribeImages"), ("ImageId.1", JAMMY)])
            .await
            .err("InvalidAMIID.NotFound"),
        "The image id '[ami-df5de72bdb3b]' does not exist"
    );
    assert_eq!(described_images(&off, &[]).await, vec![AMI.to_string()]);
}

// ---------------------------------------------------------------------------------------------
// DeregisterImage

async fn deregister(h: &Harness, ami: &str) -> Reply {
    h.post(&[("Action", "DeregisterImage"), ("ImageId", ami)])
        .await
}

#[tokio::test]
async fn deregister_image_hides_the_ami_at_once_and_frees_its_name() {
    let h = Harness::with_public_amis(VmManager::Docker);
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    let ami = create_image(&h, &id, "golden")
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();
    let before = h.store.images().get(&ami).unwrap().unwrap();
    let doc = deregister(&h, &ami).await.ok("DeregisterImage");
    assert_eq!(doc.text_at("return"), "true");

    let stored = h
        .store
        .images()
        .get(&ami)
        .unwrap()
        .expect("kept for the reconciler");
    assert!(stored.spec.deregistered);
    assert_eq!(stored.metadata.generation, before.metadata.generation + 1);
    // By id, a deregistered AMI lists nothing (EC2's empty result, what Ansible waits
    // for), now and after the reconciler collected its record; with an unknown id beside it,
    // only that one is NotFound; in another region it was never known.
    assert!(described_images(&h, &[("ImageId.1", &ami)])
        .await
        .is_empty());
    h.store.images().delete(&ami).unwrap();
    assert!(described_images(&h, &[("ImageId.1", &ami)])
        .await
        .is_empty());
    assert_eq!(
        h.post(&[
            ("Action", "DescribeImages"),
            ("ImageId.1", &ami),
            ("ImageId.2", "ami-0000000000000beef")
        ])
        .await
        .err("InvalidAMIID.NotFound"),
        "The image id '[ami-0000000000000beef]' does not exist"
    );
    h.post_in(
        Some("eu-west-1"),
        &[("Action", "DescribeImages"), ("ImageId.1", &ami)],
    )
    .await
    .err("InvalidAMIID.NotFound");
    assert!(!described_images(&h, &[]).await.contains(&ami));
    deregister(&h, &ami).await.err("InvalidAMIID.NotFound");
    // Gone for tags and attributes too.
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &ami),
        ("Tag.1.Key", "k"),
    ])
    .await
    .err("InvalidAMIID.NotFound");
    let tags = h
        .post(&[("Action", "DescribeTags")])
        .await
        .ok("DescribeTags");
    assert!(tags
        .pairs("tagSet", "resourceId", "key")
        .iter()
        .all(|(r, _)| *r != ami));
    h.post(&[
        ("Action", "DescribeImageAttribute"),
        ("ImageId", &ami),
        ("Attribute", "description"),
    ])
    .await
    .err("InvalidAMIID.NotFound");
    h.post(&[
        ("Action", "RunInstances"),
        ("ImageId", &ami),
        ("MinCount", "1"),
        ("MaxCount", "1"),
    ])
    .await
    .err("InvalidAMIID.NotFound");
    // The name is free again at once.
    let again = create_image(&h, &id, "golden")
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();
    assert_ne!(again, ami);

    // Errors: a public AMI is another account's; unknown and malformed ids; no id.
    assert_eq!(
        deregister(&h, AL2023).await.err("AuthFailure"),
        format!("Not authorized for image:{AL2023}")
    );
    deregister(&h, "ami-0000000000000beef")
        .await
        .err("InvalidAMIID.NotFound");
    deregister(&h, "image-1")
        .await
        .err("InvalidAMIID.Malformed");
    assert_eq!(
        h.post(&[("Action", "DeregisterImage")])
            .await
            .err("MissingParameter"),
        "The request must contain the parameter ImageId"
    );
}

#[tokio::test]
async fn deregister_image_of_a_discovered_ami_records_the_wish_to_untag_it() {
    let h = Harness::docker();
    assert_eq!(described_images(&h, &[]).await, vec![AMI.to_string()]);
    let discovered = h.store.catalog().get(AMI).unwrap().unwrap();
    assert_eq!(
        discovered.metadata.namespace, "*",
        "the fixture files it where discovery does"
    );
    deregister(&h, AMI).await.ok("DeregisterImage");
    let record = h
        .store
        .images()
        .get(AMI)
        .unwrap()
        .expect("a record hides it");
    assert!(record.spec.deregistered);
    assert_eq!(record.metadata.namespace, "*");
    assert_eq!(
        record.spec.reference,
        format!("localstack-ec2/ubuntu-22.04:{AMI}")
    );
    assert!(
        described_images(&h, &[]).await.is_empty(),
        "though discovery still has the tag"
    );
    h.post(&[
        ("Action", "RunInstances"),
        ("ImageId", AMI),
        ("MinCount", "1"),
        ("MaxCount", "1"),
    ])
    .await
    .err("InvalidAMIID.NotFound");
    deregister(&h, AMI).await.err("InvalidAMIID.NotFound");
    // Discovered AMIs belong to every region: deregistered, none lists it by id.
    for region in ["us-east-1", "eu-west-1"] {
        let doc = h
            .post_in(
                Some(region),
                &[("Action", "DescribeImages"), ("ImageId.1", AMI)],
            )
            .await
            .ok("DescribeImages");
        assert!(doc.items("imagesSet").is_empty(), "{region}");
    }
}

// ---------------------------------------------------------------------------------------------
// DescribeImageAttribute, ModifyImageAttribute

async fn attribute(h: &Harness, ami: &str, name: &str) -> Reply {
    h.post(&[
        ("Action", "DescribeImageAttribute"),
        ("ImageId", ami),
        ("Attribute", name),
    ])
    .await
}

async fn modify(h: &Harness, ami: &str, extra: &[(&str, &str)]) -> Reply {
    let mut params = vec![("Action", "ModifyImageAttribute"), ("ImageId", ami)];
    params.extend_from_slice(extra);
    h.post(&params).await
}

#[tokio::test]
async fn image_attributes_are_read_and_changed_by_their_owner() {
    let h = Harness::with_public_amis(VmManager::Docker);
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    let ami = create_image(&h, &id, "attrs")
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();
    let generation = h
        .store
        .images()
        .get(&ami)
        .unwrap()
        .unwrap()
        .metadata
        .generation;

    let doc = attribute(&h, &ami, "description")
        .await
        .ok("DescribeImageAttribute");
    assert_eq!(doc.names(), vec!["requestId", "imageId", "description"]);
    assert_eq!(doc.text_at("imageId"), ami);
    assert_eq!(doc.text_at("description/value"), "nightly");
    let doc = attribute(&h, &ami, "launchPermission")
        .await
        .ok("DescribeImageAttribute");
    assert!(doc.path("launchPermission").children.is_empty());
    let doc = attribute(&h, &ami, "bootMode")
        .await
        .ok("DescribeImageAttribute");
    assert!(
        doc.path("bootMode").children.is_empty(),
        "a Docker AMI has no boot mode"
    );
    let doc = attribute(&h, &ami, "kernel")
        .await
        .ok("DescribeImageAttribute");
    assert!(doc.has("kernel"));
    assert_eq!(
        attribute(&h, &ami, "deregistrationProtection")
            .await
            .ok("DescribeImageAttribute")
            .text_at("deregistrationProtection/value"),
        "disabled"
    );

    // Both spellings of a description change.
    modify(&h, &ami, &[("Description.Value", "first <draft>")])
        .await
        .ok("ModifyImageAttribute");
    let doc = attribute(&h, &ami, "description")
        .await
        .ok("DescribeImageAttribute");
    assert_eq!(doc.text_at("description/value"), "first <draft>");
    let doc = modify(
        &h,
        &ami,
        &[("Attribute", "description"), ("Value", "final")],
    )
    .await
    .ok("ModifyImageAttribute");
    assert_eq!(doc.text_at("return"), "true");
    let doc = describe(&h, &[("ImageId.1", &ami)]).await;
    assert_eq!(doc.text_at("imagesSet/item/description"), "final");

    // Launch permissions: public, then shared, then private again.
    modify(&h, &ami, &[("LaunchPermission.Add.1.Group", "all")])
        .await
        .ok("ModifyImageAttribute");
    let doc = describe(&h, &[("ImageId.1", &ami)]).await;
    assert_eq!(doc.text_at("imagesSet/item/isPublic"), "true");
    assert!(described_images(&h, &[("ExecutableBy.1", "all")])
        .await
        .contains(&ami));
    modify(
        &h,
        &ami,
        &[
            ("Attribute", "launchPermission"),
            ("OperationType", "add"),
            ("UserId.1", "123456789012"),
        ],
    )
    .await
    .ok("ModifyImageAttribute");
    let doc = attribute(&h, &ami, "launchPermission")
        .await
        .ok("DescribeImageAttribute");
    let items = doc.items("launchPermission");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].text_at("group"), "all");
    assert_eq!(items[1].text_at("userId"), "123456789012");
    assert_eq!(
        described_images(&h, &[("ExecutableBy.1", "123456789012")]).await,
        vec![ami.clone()]
    );
    modify(
        &h,
        &ami,
        &[
            ("LaunchPermission.Remove.1.Group", "all"),
            ("LaunchPermission.Remove.2.UserId", "123456789012"),
        ],
    )
    .await
    .ok("ModifyImageAttribute");
    let doc = describe(&h, &[("ImageId.1", &ami)]).await;
    assert_eq!(doc.text_at("imagesSet/item/isPublic"), "false");
    modify(&h, &ami, &[("ImdsSupport.Value", "v2.0")])
        .await
        .ok("ModifyImageAttribute");
    assert_eq!(
        attribute(&h, &ami, "imdsSupport")
            .await
            .ok("DescribeImageAttribute")
            .text_at("imdsSupport/value"),
        "v2.0"
    );
    assert_eq!(
        h.store
            .images()
            .get(&ami)
            .unwrap()
            .unwrap()
            .metadata
            .generation,
        generation,
        "nothing for the reconciler"
    );

    // Errors.
    assert_eq!(
        attribute(&h, &ami, "colour")
            .await
            .err("InvalidParameterValue"),
        "Value (colour) for parameter attribute is invalid. Unknown attribute."
    );
    assert_eq!(
        attribute(&h, &ami, "blockDeviceMapping")
            .await
            .err("AuthFailure"),
        format!("Not authorized for image:{ami}")
    );
    attribute(&h, AL2023, "description")
        .await
        .err("AuthFailure");
    attribute(&h, "ami-0000000000000beef", "description")
        .await
        .err("InvalidAMIID.NotFound");
    // A discovered AMI reads as a plain Docker image, and keeps no attributes of its own.
    let doc = attribute(&h, AMI, "description")
        .await
        .ok("DescribeImageAttribute");
    assert_eq!(doc.text_at("description/value"), "from docker");
    modify(&h, AMI, &[("Description.Value", "x")])
        .await
        .err("UnsupportedOperation");
    assert_eq!(
        modify(&h, AL2023, &[("Description.Value", "x")])
            .await
            .err("AuthFailure"),
        format!("Not authorized for image:{AL2023}")
    );
    assert_eq!(
        modify(&h, &ami, &[])
            .await
            .err("InvalidParameterCombination"),
        "No attributes specified."
    );
    modify(&h, &ami, &[("Attribute", "bootMode"), ("Value", "uefi")])
        .await
        .err("InvalidParameterValue");
    assert_eq!(
        modify(&h, &ami, &[("LaunchPermission.Add.1.UserId", "alice")])
            .await
            .err("InvalidAMIAttributeItemValue"),
        "Invalid attribute item value \"alice\" for userId item type."
    );
    modify(&h, "ami-0000000000000beef", &[("Description.Value", "x")])
        .await
        .err("InvalidAMIID.NotFound");
}

/// The shapes Terraform and Ansible send: `Attribute` naming the attribute their structured
/// parameter changes too (Terraform's `aws_ami_launch_permission`, Ansible's `ec2_ami` update
/// of launch permissions and of the description), in Ansible's capitals on its create path.
#[tokio::test]
async fn modify_image_attribute_takes_the_shapes_terraform_and_ansible_send() {
    let h = Harness::docker();
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    let ami = create_image(&h, &id, "clients")
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();
    let shared = |h: &Harness, ami: &str| {
        let permissions = h
            .store
            .images()
            .get(ami)
            .unwrap()
            .unwrap()
            .spec
            .launch_permissions;
        (
            permissions.public,
            permissions.user_ids.into_iter().collect::<Vec<_>>(),
        )
    };

    // Terraform's aws_ami_launch_permission (create, then destroy).
    modify(
        &h,
        &ami,
        &[
            ("Attribute", "launchPermission"),
            ("LaunchPermission.Add.1.UserId", "111122223333"),
        ],
    )
    .await
    .ok("ModifyImageAttribute");
    assert_eq!(shared(&h, &ami), (false, vec!["111122223333".to_string()]));
    modify(
        &h,
        &ami,
        &[
            ("Attribute", "launchPermission"),
            ("LaunchPermission.Remove.1.UserId", "111122223333"),
        ],
    )
    .await
    .ok("ModifyImageAttribute");
    assert_eq!(shared(&h, &ami), (false, vec![]));
    modify(
        &h,
        &ami,
        &[
            ("Attribute", "launchPermission"),
            ("LaunchPermission.Add.1.Group", "all"),
        ],
    )
    .await
    .ok("ModifyImageAttribute");
    assert_eq!(shared(&h, &ami), (true, vec![]));

    // Ansible's ec2_ami at create (`LaunchPermission`, capital L), then its update (both lists).
    modify(
        &h,
        &ami,
        &[
            ("Attribute", "LaunchPermission"),
            ("LaunchPermission.Add.1.UserId", "123456789012"),
            ("LaunchPermission.Add.2.UserId", "210987654321"),
        ],
    )
    .await
    .ok("ModifyImageAttribute");
    modify(
        &h,
        &ami,
        &[
            ("Attribute", "launchPermission"),
            ("LaunchPermission.Add.1.UserId", "111122223333"),
            ("LaunchPermission.Remove.1.Group", "all"),
            ("LaunchPermission.Remove.2.UserId", "210987654321"),
        ],
    )
    .await
    .ok("ModifyImageAttribute");
    assert_eq!(
        shared(&h, &ami),
        (
            false,
            vec!["111122223333".to_string(), "123456789012".to_string()]
        )
    );
    // Ansible's description update: `Attribute=Description` with `Description.Value`.
    modify(
        &h,
        &ami,
        &[
            ("Attribute", "Description"),
            ("Description.Value", "by ansible"),
        ],
    )
    .await
    .ok("ModifyImageAttribute");
    let doc = attribute(&h, &ami, "description")
        .await
        .ok("DescribeImageAttribute");
    assert_eq!(doc.text_at("description/value"), "by ansible");

    // Still one attribute at a time, and still a known one.
    assert_eq!(
        modify(
            &h,
            &ami,
            &[("Attribute", "description"), ("ImdsSupport.Value", "v2.0")],
        )
        .await
        .err("InvalidParameterCombination"),
        "Only one attribute can be modified at a time."
    );
    assert_eq!(
        modify(
            &h,
            &ami,
            &[
                ("Attribute", "launchpermission"),
                ("Description.Value", "x"),
                ("LaunchPermission.Add.1.Group", "all"),
            ],
        )
        .await
        .err("InvalidParameterCombination"),
        "Only one attribute can be modified at a time."
    );
    assert_eq!(
        modify(&h, &ami, &[("Attribute", "Colour"), ("Value", "red")])
            .await
            .err("InvalidParameterValue"),
        "Value (Colour) for parameter attribute is invalid. Unknown attribute."
    );
    // Without its structured parameter, `Attribute=launchPermission` needs `OperationType`.
    assert_eq!(
        modify(
            &h,
            &ami,
            &[
                ("Attribute", "LaunchPermission"),
                ("UserId.1", "123456789012")
            ],
        )
        .await
        .err("MissingParameter"),
        "The request must contain the parameter OperationType"
    );
    assert_eq!(
        shared(&h, &ami),
        (
            false,
            vec!["111122223333".to_string(), "123456789012".to_string()]
        ),
        "refused requests change nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// CopyImage

async fn copy(h: &Harness, region: &str, extra: &[(&str, &str)]) -> Reply {
    let mut params = vec![("Action", "CopyImage")];
    params.extend_from_slice(extra);
    h.post_in(Some(region), &params).await
}

fn available(h: &Harness, ami: &str) {
    let image = h.store.images().get(ami).unwrap().unwrap();
    let mut status = image.status.clone();
    status.state = Some(ImageState::Available);
    status.observed_generation = image.metadata.generation;
    h.store.images().write_status(ami, &status).unwrap();
}

#[tokio::test]
async fn copy_image_records_a_new_ami_in_the_callers_region() {
    let h = Harness::with_public_amis(VmManager::Docker);
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    let source = create_image(&h, &id, "golden")
        .await
        .ok("CreateImage")
        .text_at("imageId")
        .to_string();
    let from_east = [
        ("SourceImageId", source.as_str()),
        ("SourceRegion", "us-east-1"),
        ("Name", "golden-eu"),
    ];
    assert_eq!(
        copy(&h, "eu-west-1", &from_east)
            .await
            .err("IncorrectState"),
        format!(
            "The image '{source}' is in the 'pending' state; only an available image can be copied"
        )
    );
    available(&h, &source);
    let mut params = from_east.to_vec();
    params.extend([
        ("Description", "for Europe"),
        ("CopyImageTags", "true"),
        ("Encrypted", "false"),
        ("TagSpecification.1.ResourceType", "image"),
        ("TagSpecification.1.Tag.1.Key", "copied"),
        ("TagSpecification.1.Tag.1.Value", "yes"),
        ("TagSpecification.2.ResourceType", "snapshot"),
        ("TagSpecification.2.Tag.1.Key", "ignored"),
    ]);
    let doc = copy(&h, "eu-west-1", &params).await.ok("CopyImage");
    assert_eq!(doc.names(), vec!["requestId", "imageId"]);
    let copied = doc.text_at("imageId").to_string();
    assert_ne!(copied, source);

    let stored = h.store.images().get(&copied).unwrap().unwrap();
    assert_eq!(stored.metadata.namespace, "eu-west-1");
    assert_eq!(
        stored.spec.reference,
        format!("localstack-ec2/golden-eu:{copied}")
    );
    match &stored.spec.source {
        ImageSource::Copy {
            source_image_id,
            source_region,
            source_reference,
            ..
        } => {
            assert_eq!(source_image_id.as_str(), source);
            assert_eq!(source_region, "us-east-1");
            assert_eq!(source_reference, &format!("localstack-ec2/golden:{source}"));
        }
        other => panic!("source {other:?}"),
    }
    let doc = h
        .post_in(
            Some("eu-west-1"),
            &[("Action", "DescribeImages"), ("ImageId.1", &copied)],
        )
        .await
        .ok("DescribeImages");
    let item = doc.items("imagesSet")[0];
    assert_eq!(item.text_at("imageState"), "pending");
    assert_eq!(item.text_at("name"), "golden-eu");
    assert_eq!(item.text_at("description"), "for Europe");
    assert_eq!(item.text_at("sourceImageId"), source);
    assert_eq!(item.text_at("sourceImageRegion"), "us-east-1");
    let tags = item.tags();
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("infra"),
        "CopyImageTags"
    );
    assert_eq!(tags.get("copied").map(String::as_str), Some("yes"));
    assert_eq!(
        tags.get("ec2_vm_manager").map(String::as_str),
        Some("docker")
    );
    assert!(!tags.contains_key("ignored"));
    assert_eq!(
        described_images(&h, &filter("source-image-id", &source)).await,
        Vec::<String>::new(),
        "the copy lives in eu-west-1, not in us-east-1"
    );
    h.post(&[("Action", "DescribeImages"), ("ImageId.1", &copied)])
        .await
        .err("InvalidAMIID.NotFound");

    // The name is taken in eu-west-1 now, not in us-east-1.
    assert_eq!(
        copy(&h, "eu-west-1", &from_east)
            .await
            .err("InvalidAMIName.Duplicate"),
        format!("AMI name golden-eu is already in use by AMI {copied}")
    );
    copy(&h, "us-east-1", &from_east).await.ok("CopyImage");

    // Errors.
    copy(
        &h,
        "eu-west-1",
        &[
            ("SourceImageId", "ami-0000000000000beef"),
            ("SourceRegion", "us-east-1"),
            ("Name", "x-copy"),
        ],
    )
    .await
    .err("InvalidAMIID.NotFound");
    assert_eq!(
        copy(
            &h,
            "eu-west-1",
            &[
                ("SourceImageId", source.as_str()),
                ("SourceRegion", "mars-1"),
                ("Name", "x-copy")
            ],
        )
        .await
        .err("InvalidParameterValue"),
        "Invalid region: [mars-1]"
    );
    h.post(&[
        ("Action", "CopyImage"),
        ("SourceRegion", "us-east-1"),
        ("Name", "x-copy"),
    ])
    .await
    .err("MissingParameter");
    h.refuses_tag_type(
        &[
            ("Action", "CopyImage"),
            ("SourceImageId", source.as_str()),
            ("SourceRegion", "us-east-1"),
            ("Name", "tagged-copy"),
        ],
        "instance",
    )
    .await;
    // A public AMI copies only once a Docker image backs it (in docker mode).
    copy(
        &h,
        "eu-west-1",
        &[
            ("SourceImageId", JAMMY),
            ("SourceRegion", "us-east-1"),
            ("Name", "my-jammy"),
        ],
    )
    .await
    .err("InvalidAMIID.NotFound");
}

/// botocore fills `ClientToken` in for every CopyImage (an idempotency token): its retry of a
/// call whose answer was lost must get the same AMI, not a second copy.
#[tokio::test]
async fn copy_image_with_a_client_token_copies_once() {
    let h = Harness::with_public_amis(VmManager::Mock);
    let request = |name: &'static str, token: &'static str| {
        vec![
            ("SourceImageId", JAMMY),
            ("SourceRegion", "us-west-2"),
            ("Name", name),
            ("Description", "retried"),
            ("ClientToken", token),
        ]
    };
    let first = copy(&h, "us-east-1", &request("my-jammy", "tok-1"))
        .await
        .ok("CopyImage")
        .text_at("imageId")
        .to_string();
    let again = copy(&h, "us-east-1", &request("my-jammy", "tok-1"))
        .await
        .ok("CopyImage")
        .text_at("imageId")
        .to_string();
    assert_eq!(again, first, "the retry answers the same AMI");
    assert_eq!(h.store.images().len(), 1, "and copies nothing more");
    // Still the same AMI once its description changed; a dry run of the retry is allowed.
    modify(&h, &first, &[("Description.Value", "changed")])
        .await
        .ok("ModifyImageAttribute");
    let mut dry = request("my-jammy", "tok-1");
    dry.push(("DryRun", "true"));
    copy(&h, "us-east-1", &dry)
        .await
        .err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    // The same token for another copy is a mismatch, whatever differs.
    let mismatch = "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).";
    assert_eq!(
        copy(&h, "us-east-1", &request("other-name", "tok-1"))
            .await
            .err("IdempotentParameterMismatch"),
        mismatch
    );
    let mut other_source = request("my-jammy", "tok-1");
    other_source[0] = ("SourceImageId", AL2023);
    assert_eq!(
        copy(&h, "us-east-1", &other_source)
            .await
            .err("IdempotentParameterMismatch"),
        mismatch
    );
    // Tokens are per region; another token is another copy (whose name must then be free).
    let elsewhere = copy(&h, "eu-west-1", &request("my-jammy", "tok-1"))
        .await
        .ok("CopyImage")
        .text_at("imageId")
        .to_string();
    assert_ne!(elsewhere, first);
    copy(&h, "us-east-1", &request("my-jammy", "tok-2"))
        .await
        .err("InvalidAMIName.Duplicate");
    assert_eq!(h.store.images().len(), 2);
    let long = "t".repeat(65);
    let mut too_long = request("my-jammy", "x");
    too_long[4] = ("ClientToken", &long);
    copy(&h, "us-east-1", &too_long)
        .await
        .err("InvalidParameterValue");
    // A retry after the copy was deregistered still answers it, while its record is kept.
    deregister(&h, &first).await.ok("DeregisterImage");
    assert_eq!(
        copy(&h, "us-east-1", &request("my-jammy", "tok-1"))
            .await
            .ok("CopyImage")
            .text_at("imageId"),
        first
    );
}

#[tokio::test]
async fn copy_image_of_a_public_ami_in_mock_mode_keeps_its_boot_mode() {
    let h = Harness::with_public_amis(VmManager::Mock);
    let copied = copy(
        &h,
        "us-east-1",
        &[
            ("SourceImageId", JAMMY),
            ("SourceRegion", "us-west-2"),
            ("Name", "my-jammy"),
        ],
    )
    .await
    .ok("CopyImage")
    .text_at("imageId")
    .to_string();
    let stored = h.store.images().get(&copied).unwrap().unwrap();
    assert_eq!(stored.spec.boot_mode.as_deref(), Some("uefi-preferred"));
    assert!(
        !stored.spec.tags.contains_key("ec2_vm_manager"),
        "mock mode"
    );
    let doc = describe(&h, &[("ImageId.1", &copied)]).await;
    assert_eq!(doc.text_at("imagesSet/item/imageOwnerId"), "000000000000");
    assert_eq!(doc.text_at("imagesSet/item/sourceImageRegion"), "us-west-2");
}

#[tokio::test]
async fn create_image_refuses_tags_for_other_resource_types() {
    let h = Harness::docker();
    let id = h.run_one().await;
    h.observe(&id, InstanceState::Running, None);
    h.refuses_tag_type(
        &[
            ("Action", "CreateImage"),
            ("InstanceId", &id),
            ("Name", "tagged"),
        ],
        "instance",
    )
    .await;
    assert_eq!(h.store.images().len(), 0);
}

/// DescribeImages pages as EC2 does: `MaxResults` 5 to 1000 and a `NextToken`, the pages
/// together holding every AMI of the unpaged answer once, in order; a page size with ids is
/// refused.
#[tokio::test]
async fn describe_images_pages_through_the_catalogue() {
    let h = Harness::with_public_amis(VmManager::Docker);
    let all: Vec<String> = describe(&h, &[])
        .await
        .items("imagesSet")
        .iter()
        .map(|i| i.text_at("imageId").to_string())
        .collect();
    assert!(all.len() > 10, "the catalogue fills several pages");
    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = vec![("MaxResults", "5")];
        if let Some(t) = token.as_deref() {
            params.push(("NextToken", t));
        }
        let doc = describe(&h, &params).await;
        let page: Vec<String> = doc
            .items("imagesSet")
            .iter()
            .map(|i| i.text_at("imageId").to_string())
            .collect();
        assert!(page.len() <= 5);
        paged.extend(page);
        match doc.opt("nextToken") {
            Some(next) => token = Some(next.text.clone()),
            None => break,
        }
    }
    assert_eq!(paged, all);

    let e = h
        .post(&[
            ("Action", "DescribeImages"),
            ("ImageId.1", AL2023),
            ("MaxResults", "5"),
        ])
        .await
        .err("InvalidParameterCombination");
    assert!(e.contains("maxResults"), "{e}");
    h.post(&[("Action", "DescribeImages"), ("MaxResults", "4")])
        .await
        .err("InvalidParameterValue");
    h.post(&[("Action", "DescribeImages"), ("NextToken", "bm9wZQ")])
        .await
        .err("InvalidNextToken");
}
