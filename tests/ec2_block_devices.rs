//! Instances' block devices through the router over an in-process store: each instance's root volume record, RunInstances' `BlockDeviceMapping` (sizes, types, deleteOnTermination, tags, errors, ClientToken retries), DescribeInstances' and DescribeInstanceAttribute's block device mappings, ModifyInstanceAttribute's deleteOnTermination, what termination means for the volumes, CreateImage's snapshot records and the AMI's mapping, a launch from that AMI, and Terraform's aws_instance with root and EBS block devices.

mod common;

use std::sync::Arc;

use common::api::{Harness, Node, AMI};
use ec2d::config::VmManager;
use ec2d::model::volume::is_being_deleted;
use ec2d::model::{Instance, InstanceState, MountedVolume, Snapshot, Volume};

impl Harness {
    /// Every stored volume record.
    fn volumes(&self) -> Vec<Volume> {
        self.store.volumes().list().unwrap().objects
    }

    /// The stored volume records attached to `instance`, root first then by device.
    fn volumes_of(&self, instance: &str) -> Vec<Volume> {
        let mut of: Vec<Volume> = self
            .volumes()
            .into_iter()
            .filter(|v| v.spec.attachments.iter().any(|a| a.instance_id == instance))
            .collect();
        of.sort_by_key(|v| {
            (
                v.spec.root_of.is_none(),
                v.spec.attachments[0].device.clone(),
            )
        });
        of
    }

    /// Every stored snapshot record.
    fn snapshots(&self) -> Vec<Snapshot> {
        self.store.snapshots().list().unwrap().objects
    }

    /// `(deviceName, volumeId, status, deleteOnTermination)` of each `blockDeviceMapping` item
    /// DescribeInstances shows for `id`.
    async fn devices(&self, id: &str) -> Vec<(String, String, String, String)> {
        device_rows(&self.instance_item(id).await)
    }

    /// Says the reconciler observed `volume` mounted in `instance`'s container.
    fn mount(&self, instance: &str, volume: &str, device: &str) {
        let inst = self.instance(instance);
        let mut status = inst.status.clone();
        status.volumes.push(MountedVolume {
            volume_id: volume.into(),
            device: device.into(),
            mount_point: format!("/mnt/{}", device.trim_start_matches("/dev/")),
        });
        self.store
            .instances()
            .write_status(instance, &status)
            .unwrap();
    }
}

fn device_rows(item: &Node) -> Vec<(String, String, String, String)> {
    item.items("blockDeviceMapping")
        .iter()
        .map(|d| {
            (
                d.text("deviceName").to_string(),
                d.text_at("ebs/volumeId").to_string(),
                d.text_at("ebs/status").to_string(),
                d.text_at("ebs/deleteOnTermination").to_string(),
            )
        })
        .collect()
}

/// A refused launch: its extra parameters, EC2's code and, when checked, its message.
type RefusedCase = (
    Vec<(&'static str, &'static str)>,
    &'static str,
    Option<&'static str>,
);

/// A volume a launch made: device, size, type, snapshot, deleteOnTermination, IOPS.
type MadeVolume = (String, u32, String, Option<String>, bool, Option<u32>);

fn instance_ids(doc: &Node) -> Vec<String> {
    doc.items("instancesSet")
        .iter()
        .map(|i| i.text("instanceId").to_string())
        .collect()
}

/// The mappings of the main scenario: a 20 GiB gp3 root, a 5 GiB data volume kept after
/// termination, an encrypted io1 one with provisioned IOPS, and an instance store device.
const MAPPINGS: &[(&str, &str)] = &[
    ("BlockDeviceMapping.1.DeviceName", "/dev/sda1"),
    ("BlockDeviceMapping.1.Ebs.VolumeSize", "20"),
    ("BlockDeviceMapping.1.Ebs.VolumeType", "gp3"),
    ("BlockDeviceMapping.2.DeviceName", "/dev/sdf"),
    ("BlockDeviceMapping.2.Ebs.VolumeSize", "5"),
    ("BlockDeviceMapping.2.Ebs.DeleteOnTermination", "false"),
    ("BlockDeviceMapping.3.DeviceName", "/dev/sdg"),
    ("BlockDeviceMapping.3.Ebs.VolumeSize", "10"),
    ("BlockDeviceMapping.3.Ebs.VolumeType", "io1"),
    ("BlockDeviceMapping.3.Ebs.Iops", "500"),
    ("BlockDeviceMapping.3.Ebs.Encrypted", "true"),
    ("BlockDeviceMapping.4.DeviceName", "/dev/sdh"),
    ("BlockDeviceMapping.4.VirtualName", "ephemeral0"),
    ("TagSpecification.1.ResourceType", "volume"),
    ("TagSpecification.1.Tag.1.Key", "data"),
    ("TagSpecification.1.Tag.1.Value", "<yes & no>"),
    ("TagSpecification.2.ResourceType", "instance"),
    ("TagSpecification.2.Tag.1.Key", "Name"),
    ("TagSpecification.2.Tag.1.Value", "web"),
];

#[tokio::test]
async fn every_instance_gets_a_root_volume_record_in_its_zone() {
    let h = Harness::docker();
    let doc = h
        .run(&[
            ("MaxCount", "3"),
            ("Placement.AvailabilityZone", "us-east-1b"),
        ])
        .await;
    let ids = instance_ids(&doc);
    assert_eq!(ids.len(), 3);
    assert_eq!(h.volumes().len(), 3, "one root volume each, nothing else");
    for id in &ids {
        let volumes = h.volumes_of(id);
        assert_eq!(volumes.len(), 1);
        let root = &volumes[0];
        assert!(root.metadata.name.starts_with("vol-") && root.metadata.name.len() == 21);
        assert_eq!(root.metadata.namespace, "us-east-1");
        assert_eq!(root.spec.root_of.as_deref(), Some(id.as_str()));
        assert_eq!(
            (root.spec.size_gib, root.spec.volume_type.as_str()),
            (8, "gp2")
        );
        assert_eq!(root.spec.availability_zone, "us-east-1b");
        assert_eq!(root.spec.attachments.len(), 1);
        let attachment = &root.spec.attachments[0];
        assert_eq!(attachment.instance_id, *id);
        assert_eq!(attachment.device, "/dev/sda1");
        assert!(attachment.delete_on_termination);
        assert_eq!(
            root.spec.snapshot_id, None,
            "a discovered AMI records no snapshot"
        );
        assert!(root.spec.tags.is_empty());
        assert_eq!(
            root.status,
            Default::default(),
            "the reconciler fills status"
        );
        assert_eq!(root.metadata.generation, 1);
    }
    // The store finds each instance's volumes through its device index, not by reading all.
    for id in &ids {
        let indexed = h.store.volumes_of_instance(id).unwrap();
        let names: Vec<&str> = indexed.iter().map(|v| v.metadata.name.as_str()).collect();
        assert_eq!(names, [h.volumes_of(id)[0].metadata.name.as_str()]);
    }
    // RunInstances answers pending with the root device and no mapping yet, as EC2 does.
    let item = &doc.items("instancesSet")[0];
    assert_eq!(item.text("rootDeviceType"), "ebs");
    assert_eq!(item.text("rootDeviceName"), "/dev/sda1");
}

#[tokio::test]
async fn mappings_size_the_root_and_add_volumes_with_their_settings_and_tags() {
    let h = Harness::docker();
    let id = instance_ids(&h.run(MAPPINGS).await).remove(0);
    let volumes = h.volumes_of(&id);
    assert_eq!(
        volumes.len(),
        3,
        "root, sdf and sdg; the instance store makes none"
    );
    let (root, sdf, sdg) = (&volumes[0], &volumes[1], &volumes[2]);
    assert_eq!(root.spec.root_of.as_deref(), Some(id.as_str()));
    assert_eq!(
        (root.spec.size_gib, root.spec.volume_type.as_str()),
        (20, "gp3")
    );
    assert!(root.spec.attachments[0].delete_on_termination);
    assert_eq!(sdf.spec.attachments[0].device, "/dev/sdf");
    assert_eq!(
        (sdf.spec.size_gib, sdf.spec.volume_type.as_str()),
        (5, "gp2")
    );
    assert!(!sdf.spec.attachments[0].delete_on_termination);
    assert_eq!(sdf.spec.root_of, None);
    assert_eq!(sdg.spec.attachments[0].device, "/dev/sdg");
    assert_eq!(
        (sdg.spec.size_gib, sdg.spec.volume_type.as_str()),
        (10, "io1")
    );
    assert_eq!(sdg.spec.iops, Some(500));
    assert!(sdg.spec.encrypted);
    assert!(
        sdg.spec.attachments[0].delete_on_termination,
        "EC2's default"
    );
    let instance = h.instance(&id);
    for v in &volumes {
        assert_eq!(v.spec.tags.len(), 1, "the volume tags only");
        assert_eq!(v.spec.tags["data"], "<yes & no>");
        assert_eq!(v.spec.availability_zone, instance.spec.availability_zone);
        assert_eq!(
            v.spec.attachments[0].attach_time,
            instance.metadata.creation_timestamp
        );
    }
    assert_eq!(
        instance.spec.tags.get("Name").map(String::as_str),
        Some("web")
    );
    assert!(!instance.spec.tags.contains_key("data"));

    // Pending, no container: every device is attaching; root first, then by device.
    let ids: Vec<String> = volumes.iter().map(|v| v.metadata.name.clone()).collect();
    let row = |device: &str, i: usize, status: &str, dot: &str| {
        (
            device.to_string(),
            ids[i].clone(),
            status.to_string(),
            dot.to_string(),
        )
    };
    assert_eq!(
        h.devices(&id).await,
        vec![
            row("/dev/sda1", 0, "attaching", "true"),
            row("/dev/sdf", 1, "attaching", "false"),
            row("/dev/sdg", 2, "attaching", "true"),
        ]
    );
    // A container: the root is attached; the others once the container's mounts list them.
    h.observe(&id, InstanceState::Running, Some("172.17.0.5"));
    assert_eq!(
        h.devices(&id).await,
        vec![
            row("/dev/sda1", 0, "attached", "true"),
            row("/dev/sdf", 1, "attaching", "false"),
            row("/dev/sdg", 2, "attaching", "true"),
        ]
    );
    h.mount(&id, &ids[1], "/dev/sdf");
    let item = h.instance_item(&id).await;
    assert_eq!(item.text("rootDeviceName"), "/dev/sda1");
    assert_eq!(item.text("rootDeviceType"), "ebs");
    assert_eq!(
        device_rows(&item),
        vec![
            row("/dev/sda1", 0, "attached", "true"),
            row("/dev/sdf", 1, "attached", "false"),
            row("/dev/sdg", 2, "attaching", "true"),
        ]
    );
    // The block-device-mapping filters read the same devices.
    let other = h.run_one().await;
    assert_eq!(
        h.instance_ids_matching("block-device-mapping.volume-id", &ids[1])
            .await,
        vec![id.clone()]
    );
    assert_eq!(
        h.instance_ids_matching("block-device-mapping.delete-on-termination", "false")
            .await,
        vec![id.clone()]
    );
    let mut on_sda1 = h
        .instance_ids_matching("block-device-mapping.device-name", "/dev/sda1")
        .await;
    on_sda1.sort();
    let mut both = vec![id.clone(), other];
    both.sort();
    assert_eq!(on_sda1, both);
    assert_eq!(
        h.instance_ids_matching("block-device-mapping.status", "attached")
            .await,
        vec![id.clone()]
    );
    let attach_time = item.items("blockDeviceMapping")[0]
        .text_at("ebs/attachTime")
        .to_string();
    assert!(
        attach_time.ends_with('Z') && attach_time.contains('T'),
        "{attach_time}"
    );
}

#[tokio::test]
async fn bad_mappings_are_refused_with_ec2s_errors_and_write_nothing() {
    let h = Harness::docker();
    let run = |extra: Vec<(&'static str, &'static str)>| {
        let h = &h;
        async move {
            let mut params = vec![
                ("Action", "RunInstances"),
                ("ImageId", AMI),
                ("MinCount", "1"),
                ("MaxCount", "1"),
            ];
            params.extend(extra);
            h.post(&params).await
        }
    };
    let cases: Vec<RefusedCase> = vec![
        (
            vec![("BlockDeviceMapping.1.DeviceName", "/dev/sdz9x"), ("BlockDeviceMapping.1.Ebs.VolumeSize", "1")],
            "InvalidBlockDeviceMapping",
            Some("Invalid device name /dev/sdz9x"),
        ),
        (
            vec![
                ("BlockDeviceMapping.1.DeviceName", "/dev/xvdb"),
                ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
                ("BlockDeviceMapping.2.DeviceName", "xvdb"),
                ("BlockDeviceMapping.2.Ebs.VolumeSize", "2"),
            ],
            "InvalidBlockDeviceMapping",
            Some("The device 'xvdb' is used in more than one block-device mapping"),
        ),
        (
            vec![("BlockDeviceMapping.1.DeviceName", "/dev/sdb"), ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true")],
            "InvalidBlockDeviceMapping",
            Some("Either snapshot ID or volume size must be provided for: /dev/sdb"),
        ),
        (
            vec![("BlockDeviceMapping.1.DeviceName", "/dev/sdb"), ("BlockDeviceMapping.1.Ebs.VolumeSize", "0")],
            "InvalidParameterValue",
            Some("The volume size is invalid for gp2 volumes: 0 GiB. gp2 volumes must be at least 1 GiB in size. Please specify a volume size above the minimum limit."),
        ),
        (
            vec![
                ("BlockDeviceMapping.1.DeviceName", "/dev/sdb"),
                ("BlockDeviceMapping.1.Ebs.VolumeSize", "100"),
                ("BlockDeviceMapping.1.Ebs.VolumeType", "st1"),
            ],
            "InvalidParameterValue",
            None,
        ),
        (
            vec![
                ("BlockDeviceMapping.1.DeviceName", "/dev/sdb"),
                ("BlockDeviceMapping.1.Ebs.VolumeSize", "10"),
                ("BlockDeviceMapping.1.Ebs.VolumeType", "ssd"),
            ],
            "InvalidParameterValue",
            None,
        ),
        (
            vec![
                ("BlockDeviceMapping.1.DeviceName", "/dev/sdb"),
                ("BlockDeviceMapping.1.Ebs.VolumeSize", "10"),
                ("BlockDeviceMapping.1.Ebs.Iops", "300"),
            ],
            "InvalidParameterCombination",
            None,
        ),
        (
            vec![("BlockDeviceMapping.1.DeviceName", "/dev/sdb"), ("BlockDeviceMapping.1.Ebs.SnapshotId", "snap-0123456789abcdef0")],
            "InvalidSnapshot.NotFound",
            Some("The snapshot 'snap-0123456789abcdef0' does not exist."),
        ),
        (
            vec![("BlockDeviceMapping.1.DeviceName", "/dev/sdb"), ("BlockDeviceMapping.1.Ebs.SnapshotId", "snap-<x>")],
            "InvalidSnapshotID.Malformed",
            None,
        ),
        (
            vec![("BlockDeviceMapping.1.DeviceName", "/dev/sda1"), ("BlockDeviceMapping.1.NoDevice", "")],
            "InvalidBlockDeviceMapping",
            None,
        ),
        (
            vec![
                ("BlockDeviceMapping.1.DeviceName", "/dev/sdb"),
                ("BlockDeviceMapping.1.Ebs.VolumeSize", "10"),
                ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "maybe"),
            ],
            "InvalidParameterValue",
            None,
        ),
    ];
    for (extra, code, message) in cases {
        let reply = run(extra.clone()).await;
        let got = reply.err(code);
        if let Some(message) = message {
            assert_eq!(got, message, "{extra:?}");
        }
    }
    assert!(h.volumes().is_empty());
    assert!(h.store.instances().list().unwrap().objects.is_empty());
    // DryRun checks the mappings first, then answers DryRunOperation without writing.
    let reply = run(vec![
        ("BlockDeviceMapping.1.DeviceName", "/dev/sdb"),
        ("BlockDeviceMapping.1.Ebs.VolumeSize", "10"),
        ("DryRun", "true"),
    ])
    .await;
    reply.err_status(
        axum::http::StatusCode::PRECONDITION_FAILED,
        "DryRunOperation",
    );
    assert!(h.volumes().is_empty());
}

#[tokio::test]
async fn a_retried_client_token_launch_makes_no_second_set_of_volumes() {
    let h = Harness::docker();
    let mut params: Vec<(&str, &str)> = MAPPINGS.to_vec();
    params.push(("ClientToken", "retry-me"));
    params.push(("MaxCount", "2"));
    let first = instance_ids(&h.run(&params).await);
    assert_eq!(first.len(), 2);
    assert_eq!(h.volumes().len(), 6);
    let again = instance_ids(&h.run(&params).await);
    assert_eq!(again, first);
    assert_eq!(h.volumes().len(), 6, "the retry wrote nothing");
}

#[tokio::test]
async fn instance_attributes_show_and_change_the_block_devices() {
    let h = Harness::docker();
    let id = instance_ids(&h.run(MAPPINGS).await).remove(0);
    let volumes = h.volumes_of(&id);
    h.observe(&id, InstanceState::Running, Some("172.17.0.6"));
    let attribute = |name: &'static str| {
        let h = &h;
        let id = id.clone();
        async move {
            h.post(&[
                ("Action", "DescribeInstanceAttribute"),
                ("InstanceId", &id),
                ("Attribute", name),
            ])
            .await
            .ok("DescribeInstanceAttribute")
        }
    };
    let doc = attribute("rootDeviceName").await;
    assert_eq!(doc.text_at("rootDeviceName/value"), "/dev/sda1");
    let doc = attribute("blockDeviceMapping").await;
    assert_eq!(
        device_rows(&doc),
        vec![
            (
                "/dev/sda1".into(),
                volumes[0].metadata.name.clone(),
                "attached".into(),
                "true".into()
            ),
            (
                "/dev/sdf".into(),
                volumes[1].metadata.name.clone(),
                "attaching".into(),
                "false".into()
            ),
            (
                "/dev/sdg".into(),
                volumes[2].metadata.name.clone(),
                "attaching".into(),
                "true".into()
            ),
        ]
    );

    // DescribeInstances renders once; the change of a volume's attachment shows at once
    // (the cached item is keyed on the volumes' versions too).
    assert_eq!(h.devices(&id).await[1].3, "false");
    let modify = |params: Vec<(&'static str, &'static str)>| {
        let h = &h;
        let id = id.clone();
        async move {
            let mut all = vec![
                ("Action", "ModifyInstanceAttribute"),
                ("InstanceId", id.as_str()),
            ];
            all.extend(params);
            h.post(&all).await
        }
    };
    modify(vec![
        ("BlockDeviceMapping.1.DeviceName", "sdf"),
        ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"),
        ("BlockDeviceMapping.2.DeviceName", "/dev/sda1"),
        ("BlockDeviceMapping.2.Ebs.DeleteOnTermination", "false"),
    ])
    .await
    .ok("ModifyInstanceAttribute");
    let rows = h.devices(&id).await;
    assert_eq!((rows[0].3.as_str(), rows[1].3.as_str()), ("false", "true"));
    let sdf = h
        .store
        .volumes()
        .get(&volumes[1].metadata.name)
        .unwrap()
        .unwrap();
    assert!(sdf.spec.attachments[0].delete_on_termination);
    assert_eq!(
        sdf.metadata.generation, 1,
        "nothing for the reconciler to do"
    );
    assert_eq!(
        sdf.metadata.resource_version,
        volumes[1].metadata.resource_version + 1
    );

    let message = modify(vec![
        ("BlockDeviceMapping.1.DeviceName", "/dev/sdq"),
        ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"),
    ])
    .await
    .err("InvalidInstanceAttributeValue");
    assert_eq!(message, "No device is currently mapped at /dev/sdq");
    modify(vec![("BlockDeviceMapping.1.DeviceName", "/dev/sdf")])
        .await
        .err("MissingParameter");
    modify(vec![
        ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
        ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "false"),
        ("DryRun", "true"),
    ])
    .await
    .err_status(
        axum::http::StatusCode::PRECONDITION_FAILED,
        "DryRunOperation",
    );
    assert!(h.devices(&id).await[1].3 == "true", "DryRun wrote nothing");
}

#[tokio::test]
async fn termination_ends_the_attachments_and_deletes_only_the_delete_on_termination_volumes() {
    let h = Harness::docker();
    let id = instance_ids(&h.run(MAPPINGS).await).remove(0);
    h.observe(&id, InstanceState::Running, Some("172.17.0.7"));
    let before: Vec<Volume> = h.volumes_of(&id);
    h.post(&[("Action", "TerminateInstances"), ("InstanceId.1", &id)])
        .await
        .ok("TerminateInstances");
    let after = h.volumes_of(&id);
    // TerminateInstances wrote nothing to the volumes: what they read is derived.
    assert_eq!(after, before);
    let lookup =
        |wanted: &str| -> Option<Arc<Instance>> { h.store.instances().get_shared(wanted).unwrap() };
    let doomed: Vec<bool> = after.iter().map(|v| is_being_deleted(v, lookup)).collect();
    assert_eq!(
        doomed,
        vec![true, false, true],
        "root and sdg go, sdf stays"
    );
    // The terminating instance lists no devices, but keeps its root device name.
    let item = h.instance_item(&id).await;
    assert!(item.items("blockDeviceMapping").is_empty());
    assert_eq!(item.text("rootDeviceName"), "/dev/sda1");
    // The other instance actions still work with volume records about.
    let other = h.run_one().await;
    for action in ["StopInstances", "StartInstances", "RebootInstances"] {
        h.observe(&other, InstanceState::Running, Some("172.17.0.8"));
        if action == "StartInstances" {
            h.observe(&other, InstanceState::Stopped, None);
        }
        h.post(&[("Action", action), ("InstanceId.1", &other)])
            .await
            .ok(action);
    }
    h.post(&[("Action", "DescribeInstances")])
        .await
        .ok("DescribeInstances");
    h.post(&[
        ("Action", "DescribeInstanceStatus"),
        ("IncludeAllInstances", "true"),
    ])
    .await
    .ok("DescribeInstanceStatus");
}

#[tokio::test]
async fn create_image_records_a_snapshot_per_volume_and_a_launch_from_it_uses_them() {
    let h = Harness::docker();
    let source = instance_ids(&h.run(MAPPINGS).await).remove(0);
    h.observe(&source, InstanceState::Running, Some("172.17.0.9"));
    let volumes = h.volumes_of(&source);
    let ami = h
        .post(&[
            ("Action", "CreateImage"),
            ("InstanceId", &source),
            ("Name", "with-data"),
            ("TagSpecification.1.ResourceType", "snapshot"),
            ("TagSpecification.1.Tag.1.Key", "backup"),
            ("TagSpecification.1.Tag.1.Value", "nightly"),
            ("TagSpecification.2.ResourceType", "image"),
            ("TagSpecification.2.Tag.1.Key", "team"),
            ("TagSpecification.2.Tag.1.Value", "infra"),
        ])
        .await
        .ok("CreateImage")
        .text("imageId")
        .to_string();
    let mut snapshots = h.snapshots();
    assert_eq!(
        snapshots.len(),
        3,
        "one per attached volume, the root's included"
    );
    snapshots.sort_by_key(|s| {
        volumes
            .iter()
            .position(|v| v.metadata.name == s.spec.volume_id)
    });
    for (snapshot, volume) in snapshots.iter().zip(&volumes) {
        assert!(snapshot.metadata.name.starts_with("snap-"));
        assert_eq!(snapshot.metadata.namespace, "us-east-1");
        assert_eq!(snapshot.spec.image_id.as_deref(), Some(ami.as_str()));
        assert_eq!(snapshot.spec.volume_id, volume.metadata.name);
        assert_eq!(snapshot.spec.volume_size_gib, volume.spec.size_gib);
        assert_eq!(snapshot.spec.encrypted, volume.spec.encrypted);
        assert_eq!(
            snapshot.spec.description,
            format!("Created by CreateImage({source}) for {ami}")
        );
        assert_eq!(snapshot.spec.tags.len(), 1);
        assert_eq!(snapshot.spec.tags["backup"], "nightly");
        assert_eq!(snapshot.status, Default::default());
    }
    let image = h.store.images().get(&ami).unwrap().unwrap();
    assert!(!image.spec.tags.contains_key("backup"));

    // DescribeImages lists each device with its snapshot.
    let doc = h
        .post(&[("Action", "DescribeImages"), ("ImageId.1", &ami)])
        .await
        .ok("DescribeImages");
    let item = doc.path("imagesSet/item");
    assert_eq!(item.text("rootDeviceName"), "/dev/sda1");
    let mapping: Vec<(String, String, String, String, String)> = item
        .items("blockDeviceMapping")
        .iter()
        .map(|d| {
            (
                d.text("deviceName").to_string(),
                d.text_at("ebs/snapshotId").to_string(),
                d.text_at("ebs/volumeSize").to_string(),
                d.text_at("ebs/volumeType").to_string(),
                d.text_at("ebs/deleteOnTermination").to_string(),
            )
        })
        .collect();
    let snap = |i: usize| snapshots[i].metadata.name.clone();
    assert_eq!(
        mapping,
        vec![
            (
                "/dev/sda1".into(),
                snap(0),
                "20".into(),
                "gp3".into(),
                "true".into()
            ),
            (
                "/dev/sdf".into(),
                snap(1),
                "5".into(),
                "gp2".into(),
                "false".into()
            ),
            (
                "/dev/sdg".into(),
                snap(2),
                "10".into(),
                "io1".into(),
                "true".into()
            ),
        ]
    );
    assert_eq!(
        item.items("blockDeviceMapping")[2].text_at("ebs/iops"),
        "500"
    );
    assert_eq!(
        item.items("blockDeviceMapping")[2].text_at("ebs/encrypted"),
        "true"
    );
    // The image filters see the devices.
    let found = h
        .post(&[
            ("Action", "DescribeImages"),
            ("Filter.1.Name", "block-device-mapping.snapshot-id"),
            ("Filter.1.Value.1", &snap(1)),
        ])
        .await
        .ok("DescribeImages");
    assert_eq!(found.items("imagesSet").len(), 1);
    // EC2 sends block device mappings to DescribeImages: the attribute is AuthFailure.
    h.post(&[
        ("Action", "DescribeImageAttribute"),
        ("ImageId", &ami),
        ("Attribute", "blockDeviceMapping"),
    ])
    .await
    .err("AuthFailure");

    // A launch from the AMI: each device from its snapshot, the AMI's settings kept.
    h.store
        .images()
        .write_status(
            &ami,
            &ec2d::model::ImageStatus {
                observed_generation: 1,
                state: Some(ec2d::model::ImageState::Available),
                ..Default::default()
            },
        )
        .unwrap();
    let launched = instance_ids(
        &h.post(&[
            ("Action", "RunInstances"),
            ("ImageId", &ami),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await
        .ok("RunInstances"),
    )
    .remove(0);
    let made = h.volumes_of(&launched);
    let rows: Vec<MadeVolume> = made
        .iter()
        .map(|v| {
            (
                v.spec.attachments[0].device.clone(),
                v.spec.size_gib,
                v.spec.volume_type.clone(),
                v.spec.snapshot_id.clone(),
                v.spec.attachments[0].delete_on_termination,
                v.spec.iops,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "/dev/sda1".into(),
                20,
                "gp3".into(),
                Some(snap(0)),
                true,
                // gp3's baseline, as EC2 fills it in.
                Some(3000)
            ),
            (
                "/dev/sdf".into(),
                5,
                "gp2".into(),
                Some(snap(1)),
                false,
                None
            ),
            (
                "/dev/sdg".into(),
                10,
                "io1".into(),
                Some(snap(2)),
                true,
                Some(500)
            ),
        ]
    );
    assert_eq!(made[0].spec.root_of.as_deref(), Some(launched.as_str()));
    assert!(made[2].spec.encrypted);

    // The launch's own mapping wins: NoDevice drops a device, Ebs resizes one; a size below
    // the snapshot's is refused.
    let with = |extra: &[(&'static str, &'static str)]| {
        let h = &h;
        let ami = ami.clone();
        let extra = extra.to_vec();
        async move {
            let mut params = vec![
                ("Action", "RunInstances"),
                ("ImageId", ami.as_str()),
                ("MinCount", "1"),
                ("MaxCount", "1"),
            ];
            params.extend(extra);
            h.post(&params).await
        }
    };
    let doc = with(&[
        ("BlockDeviceMapping.1.DeviceName", "/dev/sdg"),
        ("BlockDeviceMapping.1.NoDevice", ""),
        ("BlockDeviceMapping.2.DeviceName", "/dev/sdf"),
        ("BlockDeviceMapping.2.Ebs.VolumeSize", "7"),
    ])
    .await
    .ok("RunInstances");
    let made = h.volumes_of(&instance_ids(&doc)[0]);
    let rows: Vec<(String, u32, Option<String>)> = made
        .iter()
        .map(|v| {
            (
                v.spec.attachments[0].device.clone(),
                v.spec.size_gib,
                v.spec.snapshot_id.clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("/dev/sda1".into(), 20, Some(snap(0))),
            ("/dev/sdf".into(), 7, Some(snap(1)))
        ]
    );
    let message = with(&[
        ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
        ("BlockDeviceMapping.1.Ebs.VolumeSize", "2"),
    ])
    .await
    .err("InvalidBlockDeviceMapping");
    assert_eq!(
        message,
        format!(
            "Volume of size 2GB is smaller than  snapshot '{}', expect size >= 5GB",
            snap(1)
        )
    );
    // A snapshot of the region named by the launch itself.
    let doc = with(&[
        ("BlockDeviceMapping.1.DeviceName", "/dev/sdk"),
        (
            "BlockDeviceMapping.1.Ebs.SnapshotId",
            Box::leak(snap(1).into_boxed_str()),
        ),
    ])
    .await
    .ok("RunInstances");
    let made = h.volumes_of(&instance_ids(&doc)[0]);
    let sdk = made
        .iter()
        .find(|v| v.spec.attachments[0].device == "/dev/sdk")
        .unwrap();
    assert_eq!(
        (sdk.spec.size_gib, sdk.spec.snapshot_id.clone()),
        (5, Some(snap(1)))
    );
}

#[tokio::test]
async fn a_public_ami_decides_the_root_device_and_its_snapshot() {
    let h = Harness::with_public_amis(VmManager::Mock);
    let ami = "ami-04bb900bd6b90688e";
    let images = h
        .post(&[("Action", "DescribeImages"), ("ImageId.1", ami)])
        .await
        .ok("DescribeImages");
    let root_device = images.text_at("imagesSet/item/rootDeviceName").to_string();
    assert_eq!(root_device, "/dev/xvda");
    let id = instance_ids(
        &h.post(&[
            ("Action", "RunInstances"),
            ("ImageId", ami),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("BlockDeviceMapping.1.DeviceName", "xvda"),
            ("BlockDeviceMapping.1.Ebs.VolumeSize", "30"),
        ])
        .await
        .ok("RunInstances"),
    )
    .remove(0);
    let volumes = h.volumes_of(&id);
    assert_eq!(
        volumes.len(),
        1,
        "xvda is the root device, not another volume"
    );
    let root = &volumes[0];
    assert_eq!(root.spec.attachments[0].device, "/dev/xvda");
    assert_eq!(
        (root.spec.size_gib, root.spec.volume_type.as_str()),
        (30, "gp3")
    );
    assert_eq!(
        root.spec.snapshot_id.as_deref(),
        Some("snap-0fd63c20184299900")
    );
    let item = h.instance_item(&id).await;
    assert_eq!(item.text("rootDeviceName"), "/dev/xvda");
    assert_eq!(
        h.instance_ids_matching("root-device-name", "/dev/xvda")
            .await,
        vec![id]
    );
}

/// Terraform's aws_instance with `root_block_device { volume_size = 20, volume_type = "gp3" }`
/// and `ebs_block_device { device_name = "/dev/sdf", volume_size = 5 }`, as the provider calls
/// (terraform-calls.md): DescribeImages for the root device name, RunInstances with the
/// mappings, the wait and Read's DescribeInstances; Read's `DescribeVolumes(VolumeIds)` is
/// checked up to the ids and the records they name.
#[tokio::test]
async fn terraform_aws_instance_with_root_and_ebs_block_devices() {
    let h = Harness::docker();
    let images = h
        .post(&[("Action", "DescribeImages"), ("ImageId.1", AMI)])
        .await
        .ok("DescribeImages");
    let root_device = images.text_at("imagesSet/item/rootDeviceName").to_string();
    let create = [
        ("Action", "RunInstances"),
        ("ClientToken", "terraform-20261206080000000000000001"),
        ("ImageId", AMI),
        ("InstanceType", "t3.micro"),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("DisableApiTermination", "false"),
        ("EbsOptimized", "false"),
        ("Monitoring.Enabled", "false"),
        ("HibernationOptions.Configured", "false"),
        ("Placement.AvailabilityZone", ""),
        ("CreditSpecification.CpuCredits", "unlimited"),
        ("BlockDeviceMapping.1.DeviceName", "/dev/sdf"),
        ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"),
        ("BlockDeviceMapping.1.Ebs.Encrypted", "false"),
        ("BlockDeviceMapping.1.Ebs.VolumeSize", "5"),
        ("BlockDeviceMapping.2.DeviceName", &root_device),
        ("BlockDeviceMapping.2.Ebs.DeleteOnTermination", "true"),
        ("BlockDeviceMapping.2.Ebs.Encrypted", "false"),
        ("BlockDeviceMapping.2.Ebs.VolumeSize", "20"),
        ("BlockDeviceMapping.2.Ebs.VolumeType", "gp3"),
        ("TagSpecification.1.ResourceType", "instance"),
        ("TagSpecification.1.Tag.1.Key", "Name"),
        ("TagSpecification.1.Tag.1.Value", "tf"),
    ];
    let doc = h.post(&create).await.ok("RunInstances");
    let id = instance_ids(&doc).remove(0);
    h.observe(&id, InstanceState::Running, Some("172.17.0.10"));
    let item = h.instance_item(&id).await;
    assert_eq!(item.text_at("instanceState/name"), "running");
    // Read: the root is the mapping at RootDeviceName, the rest are ebs_block_devices.
    let root_name = item.text("rootDeviceName").to_string();
    let rows = device_rows(&item);
    assert_eq!(rows.len(), 2);
    let root = rows
        .iter()
        .find(|r| r.0 == root_name)
        .expect("root mapping");
    let data = rows
        .iter()
        .find(|r| r.0 == "/dev/sdf")
        .expect("sdf mapping");
    // DescribeVolumes(VolumeIds) is the volume actions' (merged separately): the ids name
    // these records.
    let root_record = h
        .store
        .volumes()
        .get(&root.1)
        .unwrap()
        .expect("root volume");
    assert_eq!(
        (
            root_record.spec.size_gib,
            root_record.spec.volume_type.as_str()
        ),
        (20, "gp3")
    );
    assert_eq!(root_record.spec.root_of.as_deref(), Some(id.as_str()));
    assert!(!root_record.spec.encrypted);
    let data_record = h
        .store
        .volumes()
        .get(&data.1)
        .unwrap()
        .expect("data volume");
    assert_eq!(
        (
            data_record.spec.size_gib,
            data_record.spec.volume_type.as_str()
        ),
        (5, "gp2")
    );
    assert_eq!(data.3, "true");
    // Terraform's create retried with the same token (after a timeout) adds nothing.
    assert_eq!(h.volumes().len(), 2);
    let again = h.post(&create).await.ok("RunInstances");
    assert_eq!(instance_ids(&again), vec![id]);
    assert_eq!(h.volumes().len(), 2);
}

#[tokio::test]
async fn a_launch_templates_block_device_mappings_flow_into_the_launch() {
    let h = Harness::docker();
    h.post(&[
        ("Action", "CreateLaunchTemplate"),
        ("LaunchTemplateName", "with-disks"),
        ("LaunchTemplateData.ImageId", AMI),
        (
            "LaunchTemplateData.BlockDeviceMapping.1.DeviceName",
            "/dev/sda1",
        ),
        (
            "LaunchTemplateData.BlockDeviceMapping.1.Ebs.VolumeSize",
            "12",
        ),
        (
            "LaunchTemplateData.BlockDeviceMapping.2.DeviceName",
            "/dev/sdf",
        ),
        (
            "LaunchTemplateData.BlockDeviceMapping.2.Ebs.VolumeSize",
            "3",
        ),
        (
            "LaunchTemplateData.BlockDeviceMapping.2.Ebs.VolumeType",
            "gp3",
        ),
        (
            "LaunchTemplateData.BlockDeviceMapping.2.Ebs.Throughput",
            "250",
        ),
    ])
    .await
    .ok("CreateLaunchTemplate");
    let doc = h
        .post(&[
            ("Action", "RunInstances"),
            ("LaunchTemplate.LaunchTemplateName", "with-disks"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await
        .ok("RunInstances");
    let id = instance_ids(&doc).remove(0);
    let rows: Vec<(String, u32, String, Option<u32>)> = h
        .volumes_of(&id)
        .iter()
        .map(|v| {
            (
                v.spec.attachments[0].device.clone(),
                v.spec.size_gib,
                v.spec.volume_type.clone(),
                v.spec.throughput,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("/dev/sda1".into(), 12, "gp2".into(), None),
            ("/dev/sdf".into(), 3, "gp3".into(), Some(250)),
        ]
    );
}
