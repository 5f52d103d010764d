//! EBS volumes through `api::router`: CreateVolume (rules, snapshots, ClientToken), DescribeVolumes
//! (references, filters, paging, the state and attachment table), tags on `vol-` ids,
//! AttachVolume, DetachVolume, DeleteVolume, ModifyVolume and DescribeVolumesModifications,
//! DescribeVolumeStatus, Describe/ModifyVolumeAttribute. The reconciler's side (a volume ready,
//! an instance's mounts) is written through the owning store, as the reconciler would.

mod common;

use std::collections::BTreeMap;

use common::api::{Harness, Node};
use ec2d::model::snapshot::new_snapshot;
use ec2d::model::{fixtures, InstanceState, MountedVolume, VolumeStatus};

const ZONE: &str = "us-east-1a";

impl Harness {
    /// CreateVolume of 8 GiB in [`ZONE`] with `extra` added or overriding.
    async fn create_volume(&self, extra: &[(&str, &str)]) -> Node {
        let mut params = vec![
            ("Action", "CreateVolume"),
            ("AvailabilityZone", ZONE),
            ("Size", "8"),
        ];
        for (k, v) in extra {
            params.retain(|(pk, _)| pk != k);
            // An empty value leaves the parameter out.
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        self.post(&params).await.ok("CreateVolume")
    }

    /// A volume made ready by the reconciler.
    async fn ready_volume(&self, extra: &[(&str, &str)]) -> String {
        let id = self.create_volume(extra).await.text("volumeId").to_string();
        self.set_volume_status(&id, |s| s.ready = true);
        id
    }

    /// Changes a volume's status as the reconciler would.
    fn set_volume_status(&self, id: &str, change: impl FnOnce(&mut VolumeStatus)) {
        let mut status = self.store.volumes().get(id).unwrap().unwrap().status;
        change(&mut status);
        self.store.volumes().write_status(id, &status).unwrap();
    }

    /// A running instance in [`ZONE`].
    async fn running_instance(&self) -> String {
        let doc = self
            .post(&[
                ("Action", "RunInstances"),
                ("ImageId", "ami-12345678"),
                ("MinCount", "1"),
                ("MaxCount", "1"),
                ("Placement.AvailabilityZone", ZONE),
            ])
            .await
            .ok("RunInstances");
        let id = doc.text_at("instancesSet/item/instanceId").to_string();
        self.observe(&id, InstanceState::Running, Some("10.0.0.9"));
        id
    }

    /// The instance's container mounts these `(volume, device)` pairs, as observed.
    fn mounts(&self, instance: &str, volumes: &[(&str, &str)]) {
        let mut status = self.instance(instance).status;
        status.volumes = volumes
            .iter()
            .map(|(v, d)| MountedVolume {
                volume_id: v.to_string(),
                device: d.to_string(),
                mount_point: format!("/mnt/{}", d.trim_start_matches("/dev/")),
            })
            .collect();
        self.store
            .instances()
            .write_status(instance, &status)
            .unwrap();
    }

    /// DescribeVolumes of one volume: its item.
    async fn volume(&self, id: &str) -> Node {
        let doc = self
            .post(&[("Action", "DescribeVolumes"), ("VolumeId.1", id)])
            .await
            .ok("DescribeVolumes");
        let items = doc.items("volumeSet");
        assert_eq!(items.len(), 1);
        items[0].clone()
    }

    /// The volume's status and its attachments' `(instance, device, status)`.
    async fn volume_state(&self, id: &str) -> (String, Vec<(String, String, String)>) {
        let item = self.volume(id).await;
        let attachments = item
            .items("attachmentSet")
            .iter()
            .map(|a| {
                assert_eq!(a.text("volumeId"), id);
                (
                    a.text("instanceId").to_string(),
                    a.text("device").to_string(),
                    a.text("status").to_string(),
                )
            })
            .collect();
        (item.text("status").to_string(), attachments)
    }

    /// The ids DescribeVolumes lists for these extra parameters.
    async fn volume_ids(&self, extra: &[(&str, &str)]) -> Vec<String> {
        let mut params = vec![("Action", "DescribeVolumes")];
        params.extend_from_slice(extra);
        self.post(&params)
            .await
            .ok("DescribeVolumes")
            .items("volumeSet")
            .iter()
            .map(|i| i.text("volumeId").to_string())
            .collect()
    }

    async fn attach(&self, volume: &str, instance: &str, device: &str) -> common::api::Reply {
        self.post(&[
            ("Action", "AttachVolume"),
            ("VolumeId", volume),
            ("InstanceId", instance),
            ("Device", device),
        ])
        .await
    }
}

fn filter<'a>(name: &'a str, value: &'a str) -> [(&'a str, &'a str); 2] {
    [("Filter.1.Name", name), ("Filter.1.Value.1", value)]
}

#[tokio::test]
async fn create_and_describe_a_volume() {
    let h = Harness::new();
    let doc = h
        .create_volume(&[
            ("VolumeType", "gp3"),
            ("TagSpecification.1.ResourceType", "volume"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "data"),
        ])
        .await;
    let id = doc.text("volumeId").to_string();
    assert!(id.starts_with("vol-") && id.len() == 21, "{id}");
    assert_eq!(doc.text("status"), "creating");
    assert_eq!(doc.text("volumeType"), "gp3");
    assert_eq!(doc.text("iops"), "3000");
    assert_eq!(doc.text("throughput"), "125");
    assert_eq!(doc.tags(), BTreeMap::from([("Name".into(), "data".into())]));

    let item = h.volume(&id).await;
    for (field, want) in [
        ("volumeId", id.as_str()),
        ("size", "8"),
        ("snapshotId", ""),
        ("availabilityZone", ZONE),
        ("status", "creating"),
        ("volumeType", "gp3"),
        ("iops", "3000"),
        ("throughput", "125"),
        ("encrypted", "false"),
        ("multiAttachEnabled", "false"),
    ] {
        assert_eq!(item.text(field), want, "{field}");
    }
    assert!(
        item.text("createTime").ends_with('Z'),
        "CreateTime is always there"
    );
    assert!(item.items("attachmentSet").is_empty());
    assert_eq!(item.tags().get("Name").map(String::as_str), Some("data"));

    h.set_volume_status(&id, |s| s.ready = true);
    assert_eq!(h.volume(&id).await.text("status"), "available");

    // gp2's IOPS are its baseline; an encrypted volume keeps its key.
    let gp2 = h
        .create_volume(&[
            ("Size", "100"),
            ("Encrypted", "true"),
            ("KmsKeyId", "alias/mine"),
        ])
        .await;
    assert_eq!(gp2.text("volumeType"), "gp2");
    assert_eq!(gp2.text("iops"), "300");
    assert_eq!(gp2.text("encrypted"), "true");
    assert_eq!(gp2.text("kmsKeyId"), "alias/mine");
    assert!(!gp2.has("throughput"));

    // An availability zone id names its zone.
    let zone_id = ec2d::model::region::zones("us-east-1")[1].clone();
    let by_id = h
        .create_volume(&[
            ("AvailabilityZone", ""),
            ("AvailabilityZoneId", &zone_id.id),
        ])
        .await;
    assert_eq!(by_id.text("availabilityZone"), zone_id.name);
}

#[tokio::test]
async fn create_volume_refuses_what_ec2_refuses() {
    let h = Harness::new();
    // (parameters added or, when empty, left out; the code; the message)
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("Size", "")],
            "MissingParameter",
            "The request must contain the parameter size",
        ),
        (
            vec![("AvailabilityZone", "us-east-1z")],
            "InvalidParameterValue",
            "Invalid availability zone: [us-east-1z]",
        ),
        (
            vec![("VolumeType", "gp9")],
            "InvalidParameterValue",
            "Value (gp9) for parameter volumeType is invalid. Valid values: standard, io1, io2, gp2, sc1, st1, gp3",
        ),
        (
            vec![("VolumeType", "gp2"), ("Iops", "300")],
            "InvalidParameterCombination",
            "The parameter iops is not supported for gp2 volumes.",
        ),
        (
            vec![("VolumeType", "gp3"), ("Size", "20"), ("Iops", "15000")],
            "InvalidParameterValue",
            "Iops to volume size ratio of 750.000000 is too high; maximum is 500",
        ),
        (
            vec![("Size", "16385")],
            "InvalidParameterValue",
            "Volume of 16385GiB is too large for volume type gp2; maximum is 16384GiB",
        ),
        (
            vec![("VolumeType", "st1"), ("Size", "100")],
            "InvalidParameterValue",
            "The volume size is invalid for st1 volumes: 100 GiB. st1 volumes must be at least 125 GiB in size.",
        ),
        (
            vec![("MultiAttachEnabled", "true")],
            "InvalidParameterCombination",
            "Multi-Attach is supported only for io1 and io2 volumes.",
        ),
        (
            vec![("KmsKeyId", "alias/mine")],
            "InvalidParameterDependency",
            "The parameter KmsKeyId requires the parameter Encrypted to be set.",
        ),
        (
            vec![("SnapshotId", "snap-0123456789abcdef0")],
            "InvalidSnapshot.NotFound",
            "The snapshot 'snap-0123456789abcdef0' does not exist.",
        ),
        (
            vec![("SnapshotId", "snapshot")],
            "InvalidSnapshotID.Malformed",
            "Invalid id: \"snapshot\" (expecting \"snap-...\")",
        ),
        (
            vec![("Size", "-1")],
            "InvalidParameterValue",
            "Value (-1) for parameter Size is invalid.",
        ),
    ];
    for (extra, code, message) in cases {
        let mut params = vec![
            ("Action", "CreateVolume"),
            ("AvailabilityZone", ZONE),
            ("Size", "8"),
        ];
        for (k, v) in &extra {
            params.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        assert_eq!(h.post(&params).await.err(code), message, "{extra:?}");
    }
    // io1 needs its IOPS.
    let mut params = vec![
        ("Action", "CreateVolume"),
        ("AvailabilityZone", ZONE),
        ("Size", "8"),
        ("VolumeType", "io1"),
    ];
    assert_eq!(
        h.post(&params).await.err("InvalidParameterCombination"),
        "The parameter iops must be specified for io1 volumes."
    );
    params.push(("Iops", "400"));
    assert_eq!(h.post(&params).await.ok("CreateVolume").text("iops"), "400");
    h.refuses_tag_type(
        &[
            ("Action", "CreateVolume"),
            ("AvailabilityZone", ZONE),
            ("Size", "8"),
        ],
        "instance",
    )
    .await;
    // Only the io1 volume was made.
    assert_eq!(h.store.volumes().list().unwrap().objects.len(), 1);
}

#[tokio::test]
async fn a_volume_from_a_snapshot_takes_its_size() {
    let h = Harness::new();
    let snap = new_snapshot(
        "snap-0123456789abcdef0",
        "us-east-1",
        fixtures::snapshot_spec("vol-0123456789abcdef0", 10),
        ec2d::model::now(),
    );
    h.store.snapshots().create(&[snap]).unwrap();
    let doc = h
        .create_volume(&[("Size", ""), ("SnapshotId", "snap-0123456789abcdef0")])
        .await;
    assert_eq!(doc.text("size"), "10");
    assert_eq!(doc.text("snapshotId"), "snap-0123456789abcdef0");
    let bigger = h
        .create_volume(&[("Size", "12"), ("SnapshotId", "snap-0123456789abcdef0")])
        .await;
    assert_eq!(bigger.text("size"), "12");
    let id = bigger.text("volumeId").to_string();
    assert_eq!(
        h.volume_ids(&filter("snapshot-id", "snap-0123456789abcdef0"))
            .await
            .len(),
        2
    );
    assert!(h.volume_ids(&filter("size", "12")).await.contains(&id));
    assert_eq!(
        h.post(&[
            ("Action", "CreateVolume"),
            ("AvailabilityZone", ZONE),
            ("Size", "9"),
            ("SnapshotId", "snap-0123456789abcdef0"),
        ])
        .await
        .err("InvalidParameterValue"),
        "Volume of size 9GB is smaller than  snapshot 'snap-0123456789abcdef0', expect size >= 10GB"
    );
    // A snapshot of another region does not exist here.
    h.post_in(
        "eu-west-1",
        &[
            ("Action", "CreateVolume"),
            ("AvailabilityZone", "eu-west-1a"),
            ("SnapshotId", "snap-0123456789abcdef0"),
        ],
    )
    .await
    .err("InvalidSnapshot.NotFound");
}

#[tokio::test]
async fn a_client_token_makes_one_volume() {
    let h = Harness::new();
    let first = h.create_volume(&[("ClientToken", "tok-1")]).await;
    let again = h.create_volume(&[("ClientToken", "tok-1")]).await;
    assert_eq!(first.text("volumeId"), again.text("volumeId"));
    assert_eq!(h.store.volumes().list().unwrap().objects.len(), 1);
    h.post(&[
        ("Action", "CreateVolume"),
        ("AvailabilityZone", ZONE),
        ("Size", "9"),
        ("ClientToken", "tok-1"),
    ])
    .await
    .err("IdempotentParameterMismatch");
    let other = h.create_volume(&[("ClientToken", "tok-2")]).await;
    assert_ne!(first.text("volumeId"), other.text("volumeId"));
}

#[tokio::test]
async fn describe_volumes_references_filters_and_pages() {
    let h = Harness::new();
    let mut ids = Vec::new();
    for n in 0..7 {
        let size = (n + 1).to_string();
        let id = h
            .create_volume(&[
                ("Size", &size),
                ("TagSpecification.1.ResourceType", "volume"),
                ("TagSpecification.1.Tag.1.Key", "n"),
                ("TagSpecification.1.Tag.1.Value", &size),
            ])
            .await
            .text("volumeId")
            .to_string();
        ids.push(id);
    }
    ids.sort();

    assert_eq!(
        h.post(&[("Action", "DescribeVolumes"), ("VolumeId.1", "volume-1")])
            .await
            .err("InvalidVolumeID.Malformed"),
        "Invalid id: \"volume-1\" (expecting \"vol-...\")"
    );
    assert_eq!(
        h.post(&[
            ("Action", "DescribeVolumes"),
            ("VolumeId.1", "vol-0123456789abcdef0")
        ])
        .await
        .err("InvalidVolume.NotFound"),
        "The volume 'vol-0123456789abcdef0' does not exist."
    );
    // Another region's volumes are not this one's.
    h.post_in(
        "eu-west-1",
        &[("Action", "DescribeVolumes"), ("VolumeId.1", &ids[0])],
    )
    .await
    .err("InvalidVolume.NotFound");

    // Pages of 5, in id order.
    let doc = h
        .post(&[("Action", "DescribeVolumes"), ("MaxResults", "5")])
        .await
        .ok("DescribeVolumes");
    let first: Vec<String> = doc
        .items("volumeSet")
        .iter()
        .map(|i| i.text("volumeId").to_string())
        .collect();
    assert_eq!(first, ids[..5]);
    let token = doc.text("nextToken").to_string();
    let doc = h
        .post(&[
            ("Action", "DescribeVolumes"),
            ("MaxResults", "5"),
            ("NextToken", &token),
        ])
        .await
        .ok("DescribeVolumes");
    assert_eq!(doc.items("volumeSet").len(), 2);
    assert!(!doc.has("nextToken"));
    assert_eq!(
        h.post(&[("Action", "DescribeVolumes"), ("MaxResults", "4")])
            .await
            .err("InvalidParameterValue"),
        "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5."
    );
    // Above 500 the page is cut to 500, not refused.
    let doc = h
        .post(&[("Action", "DescribeVolumes"), ("MaxResults", "10000")])
        .await
        .ok("DescribeVolumes");
    assert_eq!(doc.items("volumeSet").len(), 7);
    h.post(&[
        ("Action", "DescribeVolumes"),
        ("MaxResults", "5"),
        ("VolumeId.1", &ids[0]),
    ])
    .await
    .err("InvalidParameterCombination");
    h.post(&[("Action", "DescribeVolumes"), ("NextToken", "junk")])
        .await
        .err("InvalidNextToken");

    // Filters.
    for (name, value, want) in [
        ("size", "3", 1),
        ("status", "creating", 7),
        ("status", "available", 0),
        ("volume-type", "gp2", 7),
        ("availability-zone", ZONE, 7),
        ("encrypted", "false", 7),
        ("multi-attach-enabled", "false", 7),
        ("fast-restored", "false", 7),
        ("tag:n", "4", 1),
        ("tag-key", "n", 7),
        ("volume-id", ids[2].as_str(), 1),
        ("attachment.status", "attached", 0),
        ("create-time", "*Z", 7),
    ] {
        assert_eq!(
            h.volume_ids(&filter(name, value)).await.len(),
            want,
            "{name}"
        );
    }
    h.post(&[
        ("Action", "DescribeVolumes"),
        ("Filter.1.Name", "colour"),
        ("Filter.1.Value.1", "red"),
    ])
    .await
    .err("InvalidParameterValue");
}

#[tokio::test]
async fn tags_on_volumes() {
    let h = Harness::new();
    let id = h.ready_volume(&[]).await;
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "team"),
        ("Tag.1.Value", "db"),
    ])
    .await
    .ok("CreateTags");
    assert_eq!(
        h.volume(&id).await.tags().get("team").map(String::as_str),
        Some("db")
    );
    let doc = h
        .post(&[
            ("Action", "DescribeTags"),
            ("Filter.1.Name", "resource-type"),
            ("Filter.1.Value.1", "volume"),
        ])
        .await
        .ok("DescribeTags");
    assert_eq!(
        doc.pairs("tagSet", "resourceId", "resourceType"),
        vec![(id.clone(), "volume".to_string())]
    );
    h.post(&[
        ("Action", "DeleteTags"),
        ("ResourceId.1", &id),
        ("Tag.1.Key", "team"),
    ])
    .await
    .ok("DeleteTags");
    assert!(h.volume(&id).await.tags().is_empty());
    h.post(&[
        ("Action", "CreateTags"),
        ("ResourceId.1", "vol-0123456789abcdef0"),
        ("Tag.1.Key", "k"),
    ])
    .await
    .err("InvalidVolume.NotFound");
}

#[tokio::test]
async fn attach_mount_detach_unmount() {
    let h = Harness::new();
    let instance = h.running_instance().await;
    let id = h.ready_volume(&[]).await;

    let doc = h
        .attach(&id, &instance, "/dev/sdf")
        .await
        .ok("AttachVolume");
    assert_eq!(doc.text("status"), "attaching");
    assert_eq!(doc.text("device"), "/dev/sdf");
    assert_eq!(doc.text("instanceId"), instance);
    assert_eq!(doc.text("volumeId"), id);
    assert_eq!(doc.text("deleteOnTermination"), "false");
    assert!(doc.text("attachTime").ends_with('Z'));
    let attaching = (
        instance.clone(),
        "/dev/sdf".to_string(),
        "attaching".to_string(),
    );
    assert_eq!(
        h.volume_state(&id).await,
        ("in-use".into(), vec![attaching])
    );

    // The instance's container mounts it: attached.
    h.mounts(&instance, &[(&id, "/dev/sdf")]);
    let attached = (
        instance.clone(),
        "/dev/sdf".to_string(),
        "attached".to_string(),
    );
    assert_eq!(h.volume_state(&id).await, ("in-use".into(), vec![attached]));
    // The store's index of the instance's devices finds it (with the launch's own volumes).
    let indexed = |h: &Harness| -> Vec<String> {
        h.store
            .volumes_of_instance(&instance)
            .unwrap()
            .iter()
            .filter(|v| v.spec.root_of.is_none())
            .map(|v| v.metadata.name.clone())
            .collect()
    };
    assert!(indexed(&h).contains(&id));
    assert_eq!(
        h.store.instances_with_volume_entries(&id).unwrap(),
        vec![instance.clone()]
    );
    // Terraform's lookup of the attachment.
    let found = h
        .volume_ids(&[
            ("VolumeId.1", &id),
            ("Filter.1.Name", "attachment.device"),
            ("Filter.1.Value.1", "/dev/sdf"),
            ("Filter.2.Name", "attachment.instance-id"),
            ("Filter.2.Value.1", &instance),
        ])
        .await;
    assert_eq!(found, vec![id.clone()]);
    // Attached: this volume, and the instance's root volume (its container's own disk).
    let mut attached = h.volume_ids(&filter("attachment.status", "attached")).await;
    attached.sort();
    let root = h
        .store
        .volumes_of_instance(&instance)
        .unwrap()
        .iter()
        .find(|v| v.spec.root_of.is_some())
        .map(|v| v.metadata.name.clone())
        .unwrap();
    let mut want = vec![id.clone(), root];
    want.sort();
    assert_eq!(attached, want);

    let doc = h
        .post(&[
            ("Action", "DetachVolume"),
            ("VolumeId", &id),
            ("InstanceId", &instance),
            ("Device", "/dev/sdf"),
        ])
        .await
        .ok("DetachVolume");
    assert_eq!(doc.text("status"), "detaching");
    assert_eq!(doc.text("instanceId"), instance);
    // Still mounted: detaching, and the volume still in use.
    let detaching = (
        instance.clone(),
        "/dev/sdf".to_string(),
        "detaching".to_string(),
    );
    assert_eq!(
        h.volume_state(&id).await,
        ("in-use".into(), vec![detaching])
    );
    h.mounts(&instance, &[]);
    assert_eq!(h.volume_state(&id).await, ("available".into(), vec![]));
    // Its device entry stays (a detached volume's instance may still have it mounted, so a
    // change of it wakes that instance), but the index no longer counts it as the instance's.
    assert!(!indexed(&h).contains(&id));
    assert_eq!(
        h.store.instances_with_volume_entries(&id).unwrap(),
        vec![instance.clone()]
    );

    // Detached again: EC2's words, which Terraform tolerates.
    assert_eq!(
        h.post(&[("Action", "DetachVolume"), ("VolumeId", &id)])
            .await
            .err("IncorrectState"),
        format!("Volume '{id}' is in the 'available' state.")
    );
}

#[tokio::test]
async fn attach_volume_refuses_what_ec2_refuses() {
    let h = Harness::new();
    let instance = h.running_instance().await;
    let other = h.running_instance().await;
    let creating = h.create_volume(&[]).await.text("volumeId").to_string();
    let id = h.ready_volume(&[]).await;
    let elsewhere = h.ready_volume(&[("AvailabilityZone", "us-east-1b")]).await;

    assert_eq!(
        h.attach(&creating, &instance, "/dev/sdf")
            .await
            .err("IncorrectState"),
        format!("{creating} is not 'available'.")
    );
    assert_eq!(
        h.attach(&elsewhere, &instance, "/dev/sdf")
            .await
            .err("InvalidVolume.ZoneMismatch"),
        format!("The volume '{elsewhere}' is not in the same availability zone as instance '{instance}'")
    );
    assert_eq!(
        h.attach(&id, &instance, "/dev/sdk1")
            .await
            .err("InvalidParameterValue"),
        "Value (/dev/sdk1) for parameter device is invalid. /dev/sdk1 is not a valid EBS device name."
    );
    assert_eq!(
        h.attach(&id, &instance, "/dev/sda1")
            .await
            .err("InvalidParameterValue"),
        "Invalid value '/dev/sda1' for unixDevice. Attachment point /dev/sda1 is already in use"
    );
    assert_eq!(
        h.attach(&id, "i-0123456789abcdef0", "/dev/sdf")
            .await
            .err("InvalidInstanceID.NotFound"),
        "The instance ID 'i-0123456789abcdef0' does not exist"
    );
    h.attach("vol-0123456789abcdef0", &instance, "/dev/sdf")
        .await
        .err("InvalidVolume.NotFound");
    h.attach("vol", &instance, "/dev/sdf")
        .await
        .err("InvalidVolumeID.Malformed");
    h.post(&[
        ("Action", "AttachVolume"),
        ("VolumeId", &id),
        ("InstanceId", &instance),
    ])
    .await
    .err("MissingParameter");

    h.attach(&id, &instance, "/dev/sdf")
        .await
        .ok("AttachVolume");
    assert_eq!(
        h.attach(&id, &other, "/dev/sdf").await.err("VolumeInUse"),
        format!("{id} is already attached to an instance")
    );
    // Another volume at the same device of the same instance.
    let second = h.ready_volume(&[]).await;
    assert_eq!(
        h.attach(&second, &instance, "sdf")
            .await
            .err("InvalidParameterValue"),
        "Invalid value 'sdf' for unixDevice. Attachment point sdf is already in use"
    );
    h.attach(&second, &instance, "xvdg")
        .await
        .ok("AttachVolume");

    // A pending instance takes no volume yet.
    let pending = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-12345678"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("Placement.AvailabilityZone", ZONE),
        ])
        .await
        .ok("RunInstances")
        .text_at("instancesSet/item/instanceId")
        .to_string();
    let spare = h.ready_volume(&[]).await;
    assert_eq!(
        h.attach(&spare, &pending, "/dev/sdh")
            .await
            .err("IncorrectState"),
        format!("Instance '{pending}' is not 'running'.")
    );
    // A stopped one does.
    h.observe(&pending, InstanceState::Running, None);
    h.post(&[("Action", "StopInstances"), ("InstanceId.1", &pending)])
        .await
        .ok("StopInstances");
    h.observe(&pending, InstanceState::Stopped, None);
    h.attach(&spare, &pending, "/dev/sdh")
        .await
        .ok("AttachVolume");

    // A terminated instance takes no volume, and its attachments are over.
    h.post(&[
        ("Action", "TerminateInstances"),
        ("InstanceId.1", &instance),
    ])
    .await
    .ok("TerminateInstances");
    let third = h.ready_volume(&[]).await;
    assert_eq!(
        h.attach(&third, &instance, "/dev/sdh")
            .await
            .err("IncorrectState"),
        format!("Instance '{instance}' is not 'running'.")
    );
    assert_eq!(h.volume_state(&id).await, ("available".into(), vec![]));
    h.attach(&id, &other, "/dev/sdf").await.ok("AttachVolume");
    assert_eq!(
        h.volume_state(&id).await.1,
        vec![(other.clone(), "/dev/sdf".into(), "attaching".into())]
    );
}

#[tokio::test]
async fn multi_attach_volumes_attach_to_several_instances() {
    let h = Harness::new();
    let a = h.running_instance().await;
    let b = h.running_instance().await;
    let id = h
        .ready_volume(&[
            ("VolumeType", "io2"),
            ("Iops", "1000"),
            ("MultiAttachEnabled", "true"),
        ])
        .await;
    h.attach(&id, &a, "/dev/sdf").await.ok("AttachVolume");
    h.attach(&id, &b, "/dev/sdf").await.ok("AttachVolume");
    h.attach(&id, &b, "/dev/sdg").await.err("VolumeInUse");
    assert_eq!(h.volume_state(&id).await.1.len(), 2);
    // Detaching one of several needs the instance.
    h.post(&[("Action", "DetachVolume"), ("VolumeId", &id)])
        .await
        .err("MissingParameter");
    h.post(&[
        ("Action", "DetachVolume"),
        ("VolumeId", &id),
        ("InstanceId", &a),
    ])
    .await
    .ok("DetachVolume");
    assert_eq!(
        h.volume_state(&id).await.1,
        vec![(b.clone(), "/dev/sdf".into(), "attaching".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_attachments_of_one_volume_do_not_both_succeed() {
    let h = Harness::new();
    let a = h.running_instance().await;
    let b = h.running_instance().await;
    for _ in 0..5 {
        let id = h.ready_volume(&[]).await;
        let (ra, rb) = tokio::join!(h.attach(&id, &a, "/dev/sdz"), h.attach(&id, &b, "/dev/sdz"));
        let ok = [&ra, &rb]
            .iter()
            .filter(|r| r.status == axum::http::StatusCode::OK)
            .count();
        assert_eq!(ok, 1, "{} / {}", ra.body, rb.body);
        let loser = if ra.status == axum::http::StatusCode::OK {
            &rb
        } else {
            &ra
        };
        loser.err("VolumeInUse");
        assert_eq!(h.volume_state(&id).await.1.len(), 1);
        // Free the device for the next round.
        h.post(&[("Action", "DetachVolume"), ("VolumeId", &id)])
            .await
            .ok("DetachVolume");
    }
    // Two volumes at one device of one instance: one gets it.
    for round in 0..5 {
        let device = format!("/dev/sd{}", ['f', 'g', 'h', 'i', 'j'][round]);
        let (v1, v2) = (h.ready_volume(&[]).await, h.ready_volume(&[]).await);
        let (r1, r2) = tokio::join!(h.attach(&v1, &a, &device), h.attach(&v2, &a, &device));
        let ok = [&r1, &r2]
            .iter()
            .filter(|r| r.status == axum::http::StatusCode::OK)
            .count();
        assert_eq!(ok, 1, "{} / {}", r1.body, r2.body);
        let loser = if r1.status == axum::http::StatusCode::OK {
            &r2
        } else {
            &r1
        };
        assert_eq!(
            loser.err("InvalidParameterValue"),
            format!("Invalid value '{device}' for unixDevice. Attachment point {device} is already in use")
        );
    }
}

#[tokio::test]
async fn detach_volume_refuses_what_ec2_refuses() {
    let h = Harness::new();
    let instance = h.running_instance().await;
    let other = h.running_instance().await;
    let id = h.ready_volume(&[]).await;
    h.attach(&id, &instance, "/dev/sdf")
        .await
        .ok("AttachVolume");
    assert_eq!(
        h.post(&[
            ("Action", "DetachVolume"),
            ("VolumeId", &id),
            ("InstanceId", &other)
        ])
        .await
        .err("InvalidAttachment.NotFound"),
        format!("Volume {id} can not be detached from {other} because it is not attached")
    );
    assert_eq!(
        h.post(&[
            ("Action", "DetachVolume"),
            ("VolumeId", &id),
            ("InstanceId", &instance),
            ("Device", "/dev/sdg"),
        ])
        .await
        .err("InvalidAttachment.NotFound"),
        format!("The volume {id} is not attached to instance {instance} as device /dev/sdg")
    );
    h.post(&[
        ("Action", "DetachVolume"),
        ("VolumeId", "vol-0123456789abcdef0"),
    ])
    .await
    .err("InvalidVolume.NotFound");
    h.post(&[("Action", "DetachVolume")])
        .await
        .err("MissingParameter");

    // A root volume stays with its running instance.
    let now = ec2d::model::now();
    let mut spec = fixtures::volume_spec(ZONE, "gp3", 8);
    spec.iops = Some(3000);
    spec.throughput = Some(125);
    spec.root_of = Some(instance.clone());
    fixtures::attach(&mut spec, &instance, "/dev/sda1", true, now);
    let root = fixtures::volume_of("vol-0aaaaaaaaaaaaaaa1", spec, now);
    h.store.create_volume(&root).unwrap();
    // Ready and attached because the instance has a container.
    assert_eq!(
        h.volume_state("vol-0aaaaaaaaaaaaaaa1").await,
        (
            "in-use".into(),
            vec![(instance.clone(), "/dev/sda1".into(), "attached".into())]
        )
    );
    assert_eq!(
        h.post(&[
            ("Action", "DetachVolume"),
            ("VolumeId", "vol-0aaaaaaaaaaaaaaa1")
        ])
        .await
        .err("IncorrectState"),
        format!("Unable to detach root volume 'vol-0aaaaaaaaaaaaaaa1' from instance '{instance}'")
    );
    // Its instance terminated: the volume goes with it (deleteOnTermination).
    h.post(&[
        ("Action", "TerminateInstances"),
        ("InstanceId.1", &instance),
    ])
    .await
    .ok("TerminateInstances");
    assert_eq!(h.volume_state("vol-0aaaaaaaaaaaaaaa1").await.0, "deleting");
}

/// A root volume record of `instance`, as a launch would store it.
fn root_volume(id: &str, instance: &str) -> ec2d::model::Volume {
    let now = ec2d::model::now();
    let mut spec = fixtures::volume_spec(ZONE, "gp2", 8);
    spec.root_of = Some(instance.into());
    fixtures::attach(&mut spec, instance, "/dev/sda1", false, now);
    fixtures::volume_of(id, spec, now)
}

#[tokio::test]
async fn a_stopped_instances_root_volume_detaches() {
    let h = Harness::new();
    let instance = h.running_instance().await;
    h.store
        .create_volume(&root_volume("vol-0aaaaaaaaaaaaaaa2", &instance))
        .unwrap();
    h.post(&[
        ("Action", "DetachVolume"),
        ("VolumeId", "vol-0aaaaaaaaaaaaaaa2"),
    ])
    .await
    .err("IncorrectState");
    h.post(&[("Action", "StopInstances"), ("InstanceId.1", &instance)])
        .await
        .ok("StopInstances");
    h.observe(&instance, InstanceState::Stopped, None);
    let doc = h
        .post(&[
            ("Action", "DetachVolume"),
            ("VolumeId", "vol-0aaaaaaaaaaaaaaa2"),
        ])
        .await
        .ok("DetachVolume");
    assert_eq!(doc.text("device"), "/dev/sda1");
    assert_eq!(
        h.volume_state("vol-0aaaaaaaaaaaaaaa2").await,
        ("available".into(), vec![])
    );
}

#[tokio::test]
async fn delete_volume() {
    let h = Harness::new();
    let instance = h.running_instance().await;
    let id = h.ready_volume(&[]).await;
    h.attach(&id, &instance, "/dev/sdf")
        .await
        .ok("AttachVolume");
    assert_eq!(
        h.post(&[("Action", "DeleteVolume"), ("VolumeId", &id)])
            .await
            .err("VolumeInUse"),
        format!("Volume {id} is currently attached to {instance}")
    );
    // Detached but still mounted: still in use.
    h.mounts(&instance, &[(&id, "/dev/sdf")]);
    h.post(&[("Action", "DetachVolume"), ("VolumeId", &id)])
        .await
        .ok("DetachVolume");
    h.post(&[("Action", "DeleteVolume"), ("VolumeId", &id)])
        .await
        .err("VolumeInUse");
    h.mounts(&instance, &[]);

    h.post(&[("Action", "DeleteVolume"), ("VolumeId", &id)])
        .await
        .ok("DeleteVolume");
    assert_eq!(h.volume_state(&id).await.0, "deleting");
    let stored = h.store.volumes().get(&id).unwrap().unwrap();
    assert!(stored.metadata.deletion_timestamp.is_some());
    // Again: fine, nothing changes.
    h.post(&[("Action", "DeleteVolume"), ("VolumeId", &id)])
        .await
        .ok("DeleteVolume");
    assert_eq!(
        h.store
            .volumes()
            .get(&id)
            .unwrap()
            .unwrap()
            .metadata
            .resource_version,
        stored.metadata.resource_version
    );
    // A volume being deleted takes no attachment.
    assert_eq!(
        h.attach(&id, &instance, "/dev/sdf")
            .await
            .err("IncorrectState"),
        format!("{id} is not 'available'.")
    );
    // The reconciler collects it: NotFound from then on.
    h.store.status_view().volumes().delete(&id).unwrap();
    assert_eq!(
        h.post(&[("Action", "DeleteVolume"), ("VolumeId", &id)])
            .await
            .err("InvalidVolume.NotFound"),
        format!("The volume '{id}' does not exist.")
    );
}

#[tokio::test]
async fn modify_volume_and_its_modifications() {
    let h = Harness::new();
    let id = h.ready_volume(&[("Size", "10")]).await;
    let untouched = h.ready_volume(&[]).await;
    assert_eq!(
        h.post(&[("Action", "ModifyVolume"), ("VolumeId", &id), ("Size", "9")])
            .await
            .err("InvalidParameterValue"),
        "New size cannot be smaller than existing size"
    );
    h.post(&[
        ("Action", "ModifyVolume"),
        ("VolumeId", &id),
        ("VolumeType", "io1"),
    ])
    .await
    .err("InvalidParameterCombination");
    h.post(&[
        ("Action", "ModifyVolume"),
        ("VolumeId", &id),
        ("Throughput", "200"),
    ])
    .await
    .err("InvalidParameterCombination");

    let doc = h
        .post(&[
            ("Action", "ModifyVolume"),
            ("VolumeId", &id),
            ("Size", "20"),
            ("VolumeType", "gp3"),
            ("Iops", "4000"),
        ])
        .await
        .ok("ModifyVolume");
    let m = doc.child("volumeModification");
    for (field, want) in [
        ("volumeId", id.as_str()),
        ("modificationState", "modifying"),
        ("targetSize", "20"),
        ("targetVolumeType", "gp3"),
        ("targetIops", "4000"),
        ("targetThroughput", "125"),
        ("originalSize", "10"),
        ("originalVolumeType", "gp2"),
        ("originalIops", "100"),
        ("progress", "0"),
    ] {
        assert_eq!(m.text(field), want, "{field}");
    }
    let start = m.text("startTime").to_string();
    let item = h.volume(&id).await;
    assert_eq!(
        (
            item.text("size"),
            item.text("volumeType"),
            item.text("iops")
        ),
        ("20", "gp3", "4000")
    );

    let modifications = |extra: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let mut params = vec![("Action", "DescribeVolumesModifications".to_string())];
            params.extend(extra);
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.post(&params)
                .await
                .ok("DescribeVolumesModifications")
                .items("volumeModificationSet")
                .iter()
                .map(|i| {
                    (
                        i.text("volumeId").to_string(),
                        i.text("modificationState").to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        modifications(vec![]).await,
        vec![(id.clone(), "modifying".to_string())]
    );
    assert_eq!(
        modifications(vec![
            ("Filter.1.Name", "target-size".into()),
            ("Filter.1.Value.1", "20".into())
        ])
        .await
        .len(),
        1
    );
    assert_eq!(
        h.post(&[
            ("Action", "DescribeVolumesModifications"),
            ("VolumeId.1", &untouched)
        ])
        .await
        .err("InvalidVolumeModification.NotFound"),
        format!("Modification for volume '{untouched}' does not exist.")
    );

    // The reconciler finished it: completed.
    h.set_volume_status(&id, |s| s.modification_end_time = Some(ec2d::model::now()));
    let doc = h
        .post(&[
            ("Action", "DescribeVolumesModifications"),
            ("VolumeId.1", &id),
        ])
        .await
        .ok("DescribeVolumesModifications");
    let item = doc.items("volumeModificationSet")[0];
    assert_eq!(item.text("modificationState"), "completed");
    assert_eq!(item.text("progress"), "100");
    assert_eq!(item.text("startTime"), start);
    assert!(item.text("endTime") >= start.as_str());
    assert_eq!(
        modifications(vec![
            ("Filter.1.Name", "modification-state".into()),
            ("Filter.1.Value.1", "modifying".into())
        ])
        .await,
        vec![]
    );
    // A new modification starts over.
    h.post(&[
        ("Action", "ModifyVolume"),
        ("VolumeId", &id),
        ("Size", "30"),
    ])
    .await
    .ok("ModifyVolume");
    assert_eq!(
        modifications(vec![]).await,
        vec![(id.clone(), "modifying".to_string())]
    );
}

#[tokio::test]
async fn volume_status_and_attributes() {
    let h = Harness::new();
    let creating = h.create_volume(&[]).await.text("volumeId").to_string();
    let ok = h.ready_volume(&[]).await;
    let broken = h.ready_volume(&[]).await;
    h.set_volume_status(&broken, |s| {
        s.error = Some("its Docker volume was removed".into())
    });
    assert_eq!(h.volume(&broken).await.text("status"), "error");

    let doc = h
        .post(&[("Action", "DescribeVolumeStatus")])
        .await
        .ok("DescribeVolumeStatus");
    let statuses: BTreeMap<String, (String, String)> = doc
        .items("volumeStatusSet")
        .iter()
        .map(|i| {
            let details = i.items("volumeStatus/details");
            assert_eq!(details[1].text("name"), "io-performance");
            assert!(i.items("actionsSet").is_empty() && i.items("eventsSet").is_empty());
            (
                i.text("volumeId").to_string(),
                (
                    i.text_at("volumeStatus/status").to_string(),
                    details[0].text("status").to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(
        statuses[&creating],
        ("insufficient-data".into(), "insufficient-data".into())
    );
    assert_eq!(statuses[&ok], ("ok".into(), "passed".into()));
    assert_eq!(statuses[&broken], ("impaired".into(), "failed".into()));
    let impaired = h
        .post(&[
            ("Action", "DescribeVolumeStatus"),
            ("Filter.1.Name", "volume-status.status"),
            ("Filter.1.Value.1", "impaired"),
        ])
        .await
        .ok("DescribeVolumeStatus");
    assert_eq!(impaired.items("volumeStatusSet").len(), 1);
    h.post(&[
        ("Action", "DescribeVolumeStatus"),
        ("VolumeId.1", "vol-0123456789abcdef0"),
    ])
    .await
    .err("InvalidVolume.NotFound");

    let attribute = |name: &'static str| {
        let h = &h;
        let ok = ok.clone();
        async move {
            h.post(&[
                ("Action", "DescribeVolumeAttribute"),
                ("VolumeId", &ok),
                ("Attribute", name),
            ])
            .await
            .ok("DescribeVolumeAttribute")
        }
    };
    assert_eq!(
        attribute("autoEnableIO")
            .await
            .text_at("autoEnableIO/value"),
        "false"
    );
    h.post(&[
        ("Action", "ModifyVolumeAttribute"),
        ("VolumeId", &ok),
        ("AutoEnableIO.Value", "true"),
    ])
    .await
    .ok("ModifyVolumeAttribute");
    assert_eq!(
        attribute("autoEnableIO")
            .await
            .text_at("autoEnableIO/value"),
        "true"
    );
    assert!(attribute("productCodes").await.has("productCodes"));
    h.post(&[
        ("Action", "DescribeVolumeAttribute"),
        ("VolumeId", &ok),
        ("Attribute", "colour"),
    ])
    .await
    .err("InvalidParameterValue");
}
