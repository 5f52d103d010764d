//! EBS snapshots through `api::router`: CreateSnapshot and CreateSnapshots of stored volumes,
//! DescribeSnapshots (references, owners, restorable-by, filters, paging) with the state a
//! client sees as the reconciler (played here through the owning store) completes or fails a
//! snapshot, DeleteSnapshot (and `InvalidSnapshot.InUse`), CopySnapshot between regions, the
//! snapshot attribute actions and tags on `snap-` ids.

mod common;

use axum::http::StatusCode;

use common::api::{catalog_image, Harness, Node};
use ec2d::model::{
    fixtures, now, ImageState, InstanceState, SnapshotStatus, Volume, VolumeAttachmentSpec,
    VolumeStatus,
};

/// A volume record of `region` as the volume API and its reconciler would leave it: `ready`
/// says whether its data is in place (`available`) or not yet (`creating`).
fn volume(id: &str, region: &str, size_gib: u32, ready: bool) -> Volume {
    let spec = fixtures::volume_spec(&format!("{region}a"), "gp3", size_gib);
    let mut v = fixtures::volume_of(id, spec, now());
    v.status = VolumeStatus {
        observed_generation: 1,
        ready,
        ..VolumeStatus::default()
    };
    v
}

/// Stores `v` (spec through the collection, status as the reconciler writes it).
fn store_volume(h: &Harness, v: &Volume) {
    h.store.create_volume(v).unwrap();
    h.store
        .volumes()
        .write_status(&v.metadata.name, &v.status)
        .unwrap();
}

const VOL: &str = "vol-0123456789abcdef0";

/// A harness with one `available` 8 GiB volume, [`VOL`].
fn with_volume() -> Harness {
    let h = Harness::new();
    store_volume(&h, &volume(VOL, "us-east-1", 8, true));
    h
}

async fn create(h: &Harness, extra: &[(&str, &str)]) -> Node {
    let mut params = vec![("Action", "CreateSnapshot"), ("VolumeId", VOL)];
    params.extend_from_slice(extra);
    h.post(&params).await.ok("CreateSnapshot")
}

async fn create_id(h: &Harness) -> String {
    create(h, &[]).await.text("snapshotId").to_string()
}

/// The ids DescribeSnapshots lists for `extra`.
async fn listed(h: &Harness, extra: &[(&str, &str)]) -> Vec<String> {
    let mut params = vec![("Action", "DescribeSnapshots")];
    params.extend_from_slice(extra);
    h.post(&params)
        .await
        .ok("DescribeSnapshots")
        .items("snapshotSet")
        .iter()
        .map(|i| i.text("snapshotId").to_string())
        .collect()
}

/// The item DescribeSnapshots shows for `id`.
async fn item(h: &Harness, id: &str) -> Node {
    h.post(&[("Action", "DescribeSnapshots"), ("SnapshotId.1", id)])
        .await
        .ok("DescribeSnapshots")
        .items("snapshotSet")[0]
        .clone()
}

/// Plays the reconciler: writes `status` for the snapshot's current generation.
fn observe(h: &Harness, id: &str, status: SnapshotStatus) {
    let s = h.store.snapshots().get(id).unwrap().unwrap();
    let status = SnapshotStatus {
        observed_generation: s.metadata.generation,
        ..status
    };
    h.store.snapshots().write_status(id, &status).unwrap();
}

#[tokio::test]
async fn create_then_pending_completed_and_error_as_status_says() {
    let h = with_volume();
    let doc = create(
        &h,
        &[
            ("Description", "nightly <db> & more"),
            ("TagSpecification.1.ResourceType", "snapshot"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "db"),
        ],
    )
    .await;
    let id = doc.text("snapshotId").to_string();
    assert!(id.starts_with("snap-") && id.len() == 22, "{id}");
    assert_eq!(doc.text("volumeId"), VOL);
    assert_eq!(doc.text("status"), "pending");
    assert_eq!(doc.text("progress"), "");
    assert_eq!(doc.text("ownerId"), "000000000000");
    assert_eq!(doc.text("volumeSize"), "8");
    assert_eq!(doc.text("description"), "nightly <db> & more");
    assert_eq!(doc.text("encrypted"), "false");
    assert!(doc.text("startTime").ends_with('Z'));
    assert_eq!(
        doc.pairs("tagSet", "key", "value"),
        vec![("Name".into(), "db".into())]
    );

    // The record: the volume's id and size, generation 1, no status yet.
    let stored = h.store.snapshots().get(&id).unwrap().unwrap();
    assert_eq!(stored.spec.volume_id, VOL);
    assert_eq!(stored.spec.volume_size_gib, 8);
    assert_eq!(stored.metadata.generation, 1);
    assert_eq!(stored.status, SnapshotStatus::default());

    let shown = item(&h, &id).await;
    assert_eq!(shown.text("status"), "pending");
    assert_eq!(shown.text("progress"), "0%");
    assert_eq!(shown.text("storageTier"), "standard");
    assert!(shown.opt("completionTime").is_none());
    assert!(shown.opt("fullSnapshotSizeInBytes").is_none());

    observe(
        &h,
        &id,
        SnapshotStatus {
            progress: Some(42),
            ..SnapshotStatus::default()
        },
    );
    assert_eq!(item(&h, &id).await.text("progress"), "42%");

    let done_at = now();
    observe(
        &h,
        &id,
        SnapshotStatus {
            backing: Some("ec2d-snap".into()),
            completed: true,
            completion_time: Some(done_at),
            size_bytes: Some(1 << 20),
            ..SnapshotStatus::default()
        },
    );
    let shown = item(&h, &id).await;
    assert_eq!(shown.text("status"), "completed");
    assert_eq!(shown.text("progress"), "100%");
    assert_eq!(
        shown.text("completionTime"),
        ec2d::model::format_timestamp(done_at)
    );
    assert_eq!(shown.text("fullSnapshotSizeInBytes"), "1048576");

    observe(
        &h,
        &id,
        SnapshotStatus {
            error: Some("the copy failed".into()),
            ..SnapshotStatus::default()
        },
    );
    let shown = item(&h, &id).await;
    assert_eq!(shown.text("status"), "error");
    assert_eq!(shown.text("statusMessage"), "the copy failed");
}

#[tokio::test]
async fn create_snapshot_errors() {
    let h = with_volume();
    let post = |params: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let mut all = vec![("Action", "CreateSnapshot".to_string())];
            all.extend(params);
            let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.post(&refs).await
        }
    };
    assert_eq!(
        post(vec![("VolumeId", "vol-00000000000000000".into())])
            .await
            .err("InvalidVolume.NotFound"),
        "The volume 'vol-00000000000000000' does not exist."
    );
    assert_eq!(
        post(vec![("VolumeId", "disk-1".into())])
            .await
            .err("InvalidVolumeID.Malformed"),
        "Invalid id: \"disk-1\" (expecting \"vol-...\")"
    );
    post(vec![]).await.err("MissingParameter");
    post(vec![
        ("VolumeId", VOL.into()),
        ("Description", "d".repeat(256)),
    ])
    .await
    .err("InvalidParameterValue");
    h.refuses_tag_type(&[("Action", "CreateSnapshot"), ("VolumeId", VOL)], "volume")
        .await;

    // A volume of another region is not found here.
    let west = "vol-0000000000000000a";
    store_volume(&h, &volume(west, "us-west-2", 1, true));
    post(vec![("VolumeId", west.into())])
        .await
        .err("InvalidVolume.NotFound");

    // Still `creating`: its data is not in place yet.
    let creating = "vol-0000000000000000b";
    store_volume(&h, &volume(creating, "us-east-1", 1, false));
    assert_eq!(
        post(vec![("VolumeId", creating.into())])
            .await
            .err("IncorrectState"),
        format!("The volume '{creating}' is in the 'creating' state.")
    );
    // Being deleted.
    let deleting = "vol-0000000000000000c";
    let mut v = volume(deleting, "us-east-1", 1, true);
    v.metadata.deletion_timestamp = Some(now());
    store_volume(&h, &v);
    assert_eq!(
        post(vec![("VolumeId", deleting.into())])
            .await
            .err("IncorrectState"),
        format!("The volume '{deleting}' is in the 'deleting' state.")
    );
    assert!(listed(&h, &[]).await.is_empty(), "a refused call wrote");

    // DryRun after validation, writing nothing.
    post(vec![("VolumeId", VOL.into()), ("DryRun", "true".into())])
        .await
        .err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    post(vec![
        ("VolumeId", creating.into()),
        ("DryRun", "true".into()),
    ])
    .await
    .err("IncorrectState");
    assert!(listed(&h, &[]).await.is_empty());
}

#[tokio::test]
async fn describe_by_id_owner_restorable_by_and_filters() {
    let h = with_volume();
    let other = "vol-0123456789abcdef1";
    let mut v = volume(other, "us-east-1", 20, true);
    v.spec.encrypted = true;
    v.spec.kms_key_id = Some("arn:aws:kms:us-east-1:000000000000:key/k1".into());
    store_volume(&h, &v);
    let a = create(
        &h,
        &[
            ("Description", "daily web"),
            ("TagSpecification.1.ResourceType", "snapshot"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "web"),
        ],
    )
    .await
    .text("snapshotId")
    .to_string();
    let b = h
        .post(&[("Action", "CreateSnapshot"), ("VolumeId", other)])
        .await
        .ok("CreateSnapshot");
    assert_eq!(b.text("encrypted"), "true");
    assert_eq!(
        b.text("kmsKeyId"),
        "arn:aws:kms:us-east-1:000000000000:key/k1"
    );
    let b = b.text("snapshotId").to_string();
    observe(
        &h,
        &b,
        SnapshotStatus {
            completed: true,
            completion_time: Some(now()),
            ..SnapshotStatus::default()
        },
    );
    let mut both = vec![a.clone(), b.clone()];
    both.sort();

    assert_eq!(listed(&h, &[]).await, both);
    assert_eq!(listed(&h, &[("SnapshotId.1", &b)]).await, vec![b.clone()]);
    assert_eq!(
        listed(&h, &[("SnapshotId.1", &b), ("SnapshotId.2", &b)]).await,
        vec![b.clone()]
    );
    assert_eq!(
        h.post(&[
            ("Action", "DescribeSnapshots"),
            ("SnapshotId.1", &a),
            ("SnapshotId.2", "snap-00000000000000000"),
        ])
        .await
        .err("InvalidSnapshot.NotFound"),
        "The snapshot 'snap-00000000000000000' does not exist."
    );
    assert_eq!(
        h.post(&[
            ("Action", "DescribeSnapshots"),
            ("SnapshotId.1", "snap-xyz")
        ])
        .await
        .err("InvalidSnapshotID.Malformed"),
        "Invalid id: \"snap-xyz\" (expecting \"snap-...\")"
    );
    // Another region sees none of them.
    let west = h
        .post_in("us-west-2", &[("Action", "DescribeSnapshots")])
        .await
        .ok("DescribeSnapshots");
    assert!(west.items("snapshotSet").is_empty());

    // Owners: every snapshot is the account's own.
    for (owner, want) in [
        ("self", 2),
        ("000000000000", 2),
        ("amazon", 0),
        ("123456789012", 0),
    ] {
        assert_eq!(
            listed(&h, &[("Owner.1", owner)]).await.len(),
            want,
            "{owner}"
        );
    }
    assert_eq!(
        listed(&h, &[("Owner.1", "amazon"), ("Owner.2", "self")])
            .await
            .len(),
        2
    );
    // Restorable by: the owner always; another account once shared with it.
    assert_eq!(listed(&h, &[("RestorableBy.1", "self")]).await.len(), 2);
    assert!(listed(&h, &[("RestorableBy.1", "123456789012")])
        .await
        .is_empty());
    h.post(&[
        ("Action", "ModifySnapshotAttribute"),
        ("SnapshotId", &a),
        ("Attribute", "createVolumePermission"),
        ("OperationType", "add"),
        ("UserId.1", "123456789012"),
    ])
    .await
    .ok("ModifySnapshotAttribute");
    assert_eq!(
        listed(&h, &[("RestorableBy.1", "123456789012")]).await,
        vec![a.clone()]
    );

    for (name, value, want) in [
        ("status", "pending", vec![a.clone()]),
        ("status", "completed", vec![b.clone()]),
        ("progress", "100%", vec![b.clone()]),
        ("progress", "0%", vec![a.clone()]),
        ("volume-id", VOL, vec![a.clone()]),
        ("volume-size", "20", vec![b.clone()]),
        ("encrypted", "true", vec![b.clone()]),
        ("description", "daily*", vec![a.clone()]),
        ("snapshot-id", a.as_str(), vec![a.clone()]),
        ("owner-id", "000000000000", both.clone()),
        ("owner-alias", "amazon", vec![]),
        ("storage-tier", "standard", both.clone()),
        ("start-time", "20*", both.clone()),
        ("tag:Name", "web", vec![a.clone()]),
        ("tag-key", "Name", vec![a.clone()]),
    ] {
        assert_eq!(
            listed(&h, &[("Filter.1.Name", name), ("Filter.1.Value.1", value)]).await,
            want,
            "{name}={value}"
        );
    }
    assert_eq!(
        h.post(&[
            ("Action", "DescribeSnapshots"),
            ("Filter.1.Name", "colour"),
            ("Filter.1.Value.1", "red"),
        ])
        .await
        .err("InvalidParameterValue"),
        "The filter 'colour' is invalid"
    );
}

#[tokio::test]
async fn pages_of_five_and_more() {
    let h = with_volume();
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(create_id(&h).await);
    }
    ids.sort();
    let first = h
        .post(&[("Action", "DescribeSnapshots"), ("MaxResults", "5")])
        .await
        .ok("DescribeSnapshots");
    let page: Vec<String> = first
        .items("snapshotSet")
        .iter()
        .map(|i| i.text("snapshotId").to_string())
        .collect();
    assert_eq!(page, ids[..5]);
    let token = first.text("nextToken").to_string();
    let second = h
        .post(&[
            ("Action", "DescribeSnapshots"),
            ("MaxResults", "5"),
            ("NextToken", &token),
        ])
        .await
        .ok("DescribeSnapshots");
    let page: Vec<String> = second
        .items("snapshotSet")
        .iter()
        .map(|i| i.text("snapshotId").to_string())
        .collect();
    assert_eq!(page, ids[5..]);
    assert!(second.opt("nextToken").is_none());
    // Over 1000 is cut to 1000 rather than refused; under 5 is refused.
    assert_eq!(listed(&h, &[("MaxResults", "5000")]).await, ids);
    assert_eq!(
        h.post(&[("Action", "DescribeSnapshots"), ("MaxResults", "4")])
            .await
            .err("InvalidParameterValue"),
        "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5."
    );
    h.post(&[("Action", "DescribeSnapshots"), ("NextToken", "garbage!")])
        .await
        .err("InvalidNextToken");
}

#[tokio::test]
async fn delete_hides_at_once_and_an_ami_keeps_its_snapshot() {
    let h = with_volume();
    let id = create_id(&h).await;
    let keep = create_id(&h).await;
    h.post(&[
        ("Action", "DeleteSnapshot"),
        ("SnapshotId", &id),
        ("DryRun", "true"),
    ])
    .await
    .err_status(StatusCode::PRECONDITION_FAILED, "DryRunOperation");
    assert_eq!(listed(&h, &[]).await.len(), 2);
    h.post(&[("Action", "DeleteSnapshot"), ("SnapshotId", &id)])
        .await
        .ok("DeleteSnapshot");
    // Marked for the reconciler (a new generation), no longer shown.
    let stored = h.store.snapshots().get(&id).unwrap().unwrap();
    assert!(stored.metadata.deletion_timestamp.is_some());
    assert_eq!(stored.metadata.generation, 2);
    assert_eq!(listed(&h, &[]).await, vec![keep.clone()]);
    assert_eq!(
        h.post(&[("Action", "DescribeSnapshots"), ("SnapshotId.1", &id)])
            .await
            .err("InvalidSnapshot.NotFound"),
        format!("The snapshot '{id}' does not exist.")
    );
    h.post(&[("Action", "DeleteSnapshot"), ("SnapshotId", &id)])
        .await
        .err("InvalidSnapshot.NotFound");
    h.post(&[
        ("Action", "DeleteSnapshot"),
        ("SnapshotId", "snap-00000000000000000"),
    ])
    .await
    .err("InvalidSnapshot.NotFound");
    h.post(&[("Action", "DeleteSnapshot"), ("SnapshotId", "ami-12345678")])
        .await
        .err("InvalidSnapshotID.Malformed");
    // Gone for tags and attributes too.
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "k"),
        ("Tag.1.Value", "v"),
    ])
    .await
    .err("InvalidSnapshot.NotFound");
    h.post(&[
        ("Action", "DescribeSnapshotAttribute"),
        ("SnapshotId", &id),
        ("Attribute", "createVolumePermission"),
    ])
    .await
    .err("InvalidSnapshot.NotFound");

    // A snapshot CreateImage made for an AMI stays while the AMI is registered.
    let ami = "ami-0123456789abcdef0";
    let mut image = catalog_image(ami, "web", Some(ImageState::Available));
    image.metadata.namespace = "us-east-1".into();
    h.store.images().create(&[image]).unwrap();
    h.store
        .snapshots()
        .update_spec(&keep, |s| {
            s.spec.image_id = Some(ami.into());
            Ok::<_, ec2d::store::StoreError>(true)
        })
        .unwrap();
    assert_eq!(
        h.post(&[("Action", "DeleteSnapshot"), ("SnapshotId", &keep)])
            .await
            .err("InvalidSnapshot.InUse"),
        format!("The snapshot {keep} is currently in use by {ami}")
    );
    h.post(&[
        ("Action", "DeleteSnapshot"),
        ("SnapshotId", &keep),
        ("DryRun", "true"),
    ])
    .await
    .err("InvalidSnapshot.InUse");
    h.store
        .images()
        .update_spec(ami, |i| {
            i.spec.deregistered = true;
            Ok::<_, ec2d::store::StoreError>(true)
        })
        .unwrap();
    h.post(&[("Action", "DeleteSnapshot"), ("SnapshotId", &keep)])
        .await
        .ok("DeleteSnapshot");
    assert!(listed(&h, &[]).await.is_empty());
}

#[tokio::test]
async fn copy_between_regions() {
    let h = with_volume();
    let source = create_id(&h).await;
    let doc = h
        .post_in(
            "us-west-2",
            &[
                ("Action", "CopySnapshot"),
                ("SourceRegion", "us-east-1"),
                ("SourceSnapshotId", &source),
                ("DestinationRegion", "eu-west-1"),
                ("TagSpecification.1.ResourceType", "snapshot"),
                ("TagSpecification.1.Tag.1.Key", "Name"),
                ("TagSpecification.1.Tag.1.Value", "copy"),
            ],
        )
        .await
        .ok("CopySnapshot");
    let copy = doc.text("snapshotId").to_string();
    assert_ne!(copy, source);
    assert_eq!(
        doc.pairs("tagSet", "key", "value"),
        vec![("Name".into(), "copy".into())]
    );
    // In the caller's region (DestinationRegion is ignored), with its source recorded.
    let west = h
        .post_in(
            "us-west-2",
            &[("Action", "DescribeSnapshots"), ("SnapshotId.1", &copy)],
        )
        .await
        .ok("DescribeSnapshots");
    let shown = west.items("snapshotSet")[0];
    assert_eq!(shown.text("status"), "pending");
    assert_eq!(shown.text("volumeId"), "vol-ffffffff");
    assert_eq!(shown.text("volumeSize"), "8");
    assert_eq!(
        shown.text("description"),
        format!("[Copied {source} from us-east-1]")
    );
    let stored = h.store.snapshots().get(&copy).unwrap().unwrap();
    assert_eq!(stored.metadata.namespace, "us-west-2");
    let from = stored.spec.source.unwrap();
    assert_eq!(
        (from.region.as_str(), from.snapshot_id.as_str()),
        ("us-east-1", source.as_str())
    );
    assert_eq!(listed(&h, &[]).await, vec![source.clone()]);

    // Within a region, with a description and encryption asked for.
    let copy2 = h
        .post(&[
            ("Action", "CopySnapshot"),
            ("SourceRegion", "us-east-1"),
            ("SourceSnapshotId", &source),
            ("Description", "again"),
            ("Encrypted", "true"),
            ("KmsKeyId", "alias/mine"),
        ])
        .await
        .ok("CopySnapshot")
        .text("snapshotId")
        .to_string();
    let shown = item(&h, &copy2).await;
    assert_eq!(shown.text("description"), "again");
    assert_eq!(shown.text("encrypted"), "true");
    assert_eq!(shown.text("kmsKeyId"), "alias/mine");

    assert_eq!(
        h.post(&[
            ("Action", "CopySnapshot"),
            ("SourceRegion", "mars-north-1"),
            ("SourceSnapshotId", &source),
        ])
        .await
        .err("InvalidParameterValue"),
        "Invalid region: [mars-north-1]"
    );
    // The source must be in the source region.
    assert_eq!(
        h.post(&[
            ("Action", "CopySnapshot"),
            ("SourceRegion", "us-west-2"),
            ("SourceSnapshotId", &source),
        ])
        .await
        .err("InvalidSnapshot.NotFound"),
        format!("The snapshot '{source}' does not exist.")
    );
    observe(
        &h,
        &source,
        SnapshotStatus {
            error: Some("lost".into()),
            ..SnapshotStatus::default()
        },
    );
    h.post(&[
        ("Action", "CopySnapshot"),
        ("SourceRegion", "us-east-1"),
        ("SourceSnapshotId", &source),
    ])
    .await
    .err("IncorrectState");
}

/// A launched instance of the mock harness.
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

#[tokio::test]
async fn create_snapshots_of_an_instances_volumes() {
    let h = Harness::new();
    let instance = launch(&h).await;
    h.observe(&instance, InstanceState::Running, Some("172.31.0.10"));
    let attached = |id: &str, size: u32| {
        let mut v = volume(id, "us-east-1", size, true);
        v.spec.attachments.push(VolumeAttachmentSpec {
            instance_id: instance.clone(),
            device: "/dev/sdf".into(),
            delete_on_termination: false,
            attach_time: now(),
        });
        v
    };
    // The root volume RunInstances recorded: its data is the instance's container, so it is
    // ready once the instance runs.
    let root = h
        .store
        .volumes()
        .list()
        .unwrap()
        .objects
        .into_iter()
        .find(|v| v.spec.root_of.as_deref() == Some(instance.as_str()))
        .expect("the launch's root volume")
        .metadata
        .name;
    let mut data = attached("vol-00000000000000002", 20);
    data.spec.tags.insert("Name".into(), "data".into());
    store_volume(&h, &data);
    let data2 = attached("vol-00000000000000003", 30);
    store_volume(&h, &data2);
    // Not attached: not part of it.
    store_volume(&h, &volume("vol-00000000000000004", "us-east-1", 40, true));
    // Attached to another instance.
    let other = launch(&h).await;
    let mut elsewhere = volume("vol-00000000000000005", "us-east-1", 50, true);
    elsewhere.spec.attachments.push(VolumeAttachmentSpec {
        instance_id: other.clone(),
        device: "/dev/sdf".into(),
        delete_on_termination: false,
        attach_time: now(),
    });
    store_volume(&h, &elsewhere);

    let snapshot_volumes = |doc: &Node| -> Vec<(String, String)> {
        doc.pairs("snapshotSet", "volumeId", "volumeSize")
    };
    let doc = h
        .post(&[
            ("Action", "CreateSnapshots"),
            ("InstanceSpecification.InstanceId", &instance),
            ("Description", "all of it"),
            ("CopyTagsFromSource", "volume"),
            ("TagSpecification.1.ResourceType", "snapshot"),
            ("TagSpecification.1.Tag.1.Key", "batch"),
            ("TagSpecification.1.Tag.1.Value", "1"),
        ])
        .await
        .ok("CreateSnapshots");
    let mut shown = snapshot_volumes(&doc);
    shown.sort();
    let mut want = vec![
        (root.clone(), "8".to_string()),
        ("vol-00000000000000002".into(), "20".into()),
        ("vol-00000000000000003".into(), "30".into()),
    ];
    want.sort();
    assert_eq!(shown, want);
    let items = doc.items("snapshotSet");
    let of_volume = |id: &str| {
        items
            .iter()
            .find(|i| i.text("volumeId") == id)
            .expect("a snapshot of the volume")
    };
    assert_eq!(of_volume(&root).text("state"), "pending");
    assert_eq!(of_volume(&root).text("description"), "all of it");
    assert_eq!(of_volume(&root).text("ownerId"), "000000000000");
    assert_eq!(
        of_volume("vol-00000000000000002").pairs("tagSet", "key", "value"),
        vec![("Name".into(), "data".into()), ("batch".into(), "1".into())]
    );
    assert_eq!(
        of_volume(&root).pairs("tagSet", "key", "value"),
        vec![("batch".into(), "1".into())]
    );
    let ids: Vec<String> = items
        .iter()
        .map(|i| i.text("snapshotId").to_string())
        .collect();
    let mut all = listed(&h, &[]).await;
    all.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(all, want);

    let doc = h
        .post(&[
            ("Action", "CreateSnapshots"),
            ("InstanceSpecification.InstanceId", &instance),
            ("InstanceSpecification.ExcludeBootVolume", "true"),
            (
                "InstanceSpecification.ExcludeDataVolumeId.1",
                "vol-00000000000000003",
            ),
        ])
        .await
        .ok("CreateSnapshots");
    assert_eq!(
        snapshot_volumes(&doc),
        vec![("vol-00000000000000002".into(), "20".into())]
    );
    // No tags copied unless asked.
    assert!(doc.items("snapshotSet")[0].opt("tagSet").is_none());

    // A volume still being made refuses the whole call; nothing is written.
    let before = listed(&h, &[]).await.len();
    store_volume(&h, &{
        let mut v = attached("vol-00000000000000006", 1);
        v.status.ready = false;
        v
    });
    h.post(&[
        ("Action", "CreateSnapshots"),
        ("InstanceSpecification.InstanceId", &instance),
    ])
    .await
    .err("IncorrectState");
    h.post(&[
        ("Action", "CreateSnapshots"),
        ("InstanceSpecification.InstanceId", &instance),
        ("DryRun", "true"),
    ])
    .await
    .err("IncorrectState");
    assert_eq!(listed(&h, &[]).await.len(), before);

    // Copied tags and the request's together stay within a snapshot's 50.
    let mut params = vec![
        ("Action".to_string(), "CreateSnapshots".to_string()),
        (
            "InstanceSpecification.InstanceId".to_string(),
            instance.clone(),
        ),
        (
            "InstanceSpecification.ExcludeBootVolume".to_string(),
            "true".to_string(),
        ),
        (
            "InstanceSpecification.ExcludeDataVolumeId.1".to_string(),
            "vol-00000000000000006".to_string(),
        ),
        ("CopyTagsFromSource".to_string(), "volume".to_string()),
        (
            "TagSpecification.1.ResourceType".to_string(),
            "snapshot".to_string(),
        ),
    ];
    for i in 1..=50 {
        params.push((format!("TagSpecification.1.Tag.{i}.Key"), format!("k{i}")));
        params.push((format!("TagSpecification.1.Tag.{i}.Value"), "v".to_string()));
    }
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    h.post(&refs).await.err("TagLimitExceeded");
    assert_eq!(listed(&h, &[]).await.len(), before);

    h.post(&[
        ("Action", "CreateSnapshots"),
        ("InstanceSpecification.InstanceId", "i-00000000000000000"),
    ])
    .await
    .err("InvalidInstanceID.NotFound");
    h.post(&[("Action", "CreateSnapshots")])
        .await
        .err("MissingParameter");
    // Once termination is asked for, its attachments are over.
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &other)])
        .await
        .ok("TerminateInstances");
    h.post(&[
        ("Action", "CreateSnapshots"),
        ("InstanceSpecification.InstanceId", &other),
    ])
    .await
    .err("IncorrectInstanceState");
}

#[tokio::test]
async fn create_volume_permissions() {
    let h = with_volume();
    let id = create_id(&h).await;
    let permissions = |doc: Node| -> Vec<(String, String)> {
        doc.items("createVolumePermission")
            .iter()
            .map(|i| {
                i.opt("group")
                    .map(|g| ("group".to_string(), g.text.clone()))
                    .or_else(|| {
                        i.opt("userId")
                            .map(|u| ("userId".to_string(), u.text.clone()))
                    })
                    .unwrap()
            })
            .collect()
    };
    let describe = |attribute: &'static str| {
        let h = &h;
        let id = id.clone();
        async move {
            h.post(&[
                ("Action", "DescribeSnapshotAttribute"),
                ("SnapshotId", &id),
                ("Attribute", attribute),
            ])
            .await
            .ok("DescribeSnapshotAttribute")
        }
    };
    let doc = describe("createVolumePermission").await;
    assert_eq!(doc.text("snapshotId"), id);
    assert!(permissions(doc).is_empty());
    assert!(describe("productCodes").await.has("productCodes"));

    let version = h.store.snapshots().get(&id).unwrap().unwrap().metadata;
    h.post(&[
        ("Action", "ModifySnapshotAttribute"),
        ("SnapshotId", &id),
        ("CreateVolumePermission.Add.1.Group", "all"),
        ("CreateVolumePermission.Add.2.UserId", "123456789012"),
    ])
    .await
    .ok("ModifySnapshotAttribute");
    assert_eq!(
        permissions(describe("createVolumePermission").await),
        vec![
            ("userId".into(), "123456789012".into()),
            ("group".into(), "all".into()),
        ]
    );
    // A spec change that asks nothing of the reconciler: the version moves, not the generation.
    let after = h.store.snapshots().get(&id).unwrap().unwrap().metadata;
    assert_eq!(after.generation, version.generation);
    assert_eq!(after.resource_version, version.resource_version + 1);
    assert_eq!(
        listed(&h, &[("RestorableBy.1", "all")]).await,
        vec![id.clone()]
    );

    h.post(&[
        ("Action", "ModifySnapshotAttribute"),
        ("SnapshotId", &id),
        ("Attribute", "createVolumePermission"),
        ("OperationType", "remove"),
        ("UserGroup.1", "all"),
    ])
    .await
    .ok("ModifySnapshotAttribute");
    assert_eq!(
        permissions(describe("createVolumePermission").await),
        vec![("userId".into(), "123456789012".into())]
    );
    h.post(&[
        ("Action", "ResetSnapshotAttribute"),
        ("SnapshotId", &id),
        ("Attribute", "createVolumePermission"),
    ])
    .await
    .ok("ResetSnapshotAttribute");
    assert!(permissions(describe("createVolumePermission").await).is_empty());

    let err = |params: Vec<(&'static str, &'static str)>, code: &'static str| {
        let h = &h;
        let id = id.clone();
        async move {
            let mut all = vec![("SnapshotId", id.as_str())];
            all.extend(params);
            h.post(&all).await.err(code)
        }
    };
    assert_eq!(
        err(
            vec![
                ("Action", "ModifySnapshotAttribute"),
                ("OperationType", "add"),
                ("UserGroup.1", "everyone"),
            ],
            "InvalidAMIAttributeItemValue"
        )
        .await,
        "Invalid attribute item value \"everyone\" for group item type."
    );
    err(
        vec![
            ("Action", "ModifySnapshotAttribute"),
            ("Attribute", "createVolumePermission"),
        ],
        "InvalidParameterCombination",
    )
    .await;
    err(
        vec![
            ("Action", "ModifySnapshotAttribute"),
            ("Attribute", "productCodes"),
            ("OperationType", "add"),
            ("UserGroup.1", "all"),
        ],
        "InvalidParameterValue",
    )
    .await;
    assert_eq!(
        err(
            vec![
                ("Action", "DescribeSnapshotAttribute"),
                ("Attribute", "colour"),
            ],
            "InvalidParameterValue"
        )
        .await,
        "Value (colour) for parameter attribute is invalid. Unknown attribute."
    );
    err(
        vec![
            ("Action", "ResetSnapshotAttribute"),
            ("Attribute", "productCodes"),
        ],
        "InvalidParameterValue",
    )
    .await;
    h.post(&[
        ("Action", "ModifySnapshotAttribute"),
        ("SnapshotId", "snap-00000000000000000"),
        ("CreateVolumePermission.Add.1.Group", "all"),
    ])
    .await
    .err("InvalidSnapshot.NotFound");
}

#[tokio::test]
async fn tags_on_snapshot_ids() {
    let h = with_volume();
    let id = create_id(&h).await;
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "env"),
        ("Tag.1.Value", "prod"),
    ])
    .await
    .ok("CreateTags");
    let tags = h
        .post(&[
            ("Action", "DescribeTags"),
            ("Filter.1.Name", "resource-id"),
            ("Filter.1.Value.1", &id),
        ])
        .await
        .ok("DescribeTags");
    assert_eq!(tags.text_at("tagSet/item/resourceType"), "snapshot");
    assert_eq!(tags.text_at("tagSet/item/key"), "env");
    assert_eq!(
        listed(
            &h,
            &[("Filter.1.Name", "tag:env"), ("Filter.1.Value.1", "prod")]
        )
        .await,
        vec![id.clone()]
    );
    // Tags move the version only: the reconciler has nothing to do for them.
    assert_eq!(
        h.store
            .snapshots()
            .get(&id)
            .unwrap()
            .unwrap()
            .metadata
            .generation,
        1
    );
    h.post(&[
        ("Action", "DeleteTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "env"),
    ])
    .await
    .ok("DeleteTags");
    assert!(item(&h, &id).await.opt("tagSet").is_none());
    assert_eq!(
        h.post(&[
            ("Action", "CreateTags"),
            ("ResourceId.1", "snap-00000000000000000"),
            ("Tag.1.Key", "k"),
        ])
        .await
        .err("InvalidSnapshot.NotFound"),
        "The snapshot 'snap-00000000000000000' does not exist."
    );
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", "snap-zz"),
        ("Tag.1.Key", "k"),
    ])
    .await
    .err("InvalidSnapshotID.Malformed");
}
