//! Builders of model objects for tests and examples (controller-rs `fixtures.rs` style).

use std::collections::BTreeMap;

use super::ami_tag::AmiTag;
use super::ids::{ImageId, InstanceId, ReservationId};
use super::image::{Image, ImageSource, ImageSpec, ImageStatus, IMAGE_KIND};
use super::instance::{Instance, InstanceSpec, InstanceStatus, ShutdownBehavior, INSTANCE_KIND};
use super::meta::{Object, ObjectMeta, API_VERSION};
use super::snapshot::SnapshotSpec;
use super::state::DesiredState;
use super::volume::{new_volume, Volume, VolumeAttachmentSpec, VolumeSpec};
use super::Timestamp;

/// A fresh instance in `us-east-1`, desired running, never reconciled.
pub fn instance() -> Instance {
    let id = InstanceId::generate();
    Object {
        api_version: API_VERSION.to_string(),
        kind: INSTANCE_KIND.to_string(),
        metadata: ObjectMeta::new(id.as_str(), "us-east-1", super::now()),
        spec: InstanceSpec {
            private_ip: None,
            image_id: ImageId::parse("ami-000001").expect("valid id"),
            image_ref: "localstack-ec2/test-ami:ami-000001".to_string(),
            instance_type: "t3.micro".to_string(),
            desired: DesiredState::Running,
            reservation_id: ReservationId::generate(),
            ami_launch_index: 0,
            availability_zone: "us-east-1a".to_string(),
            shutdown_behavior: ShutdownBehavior::Stop,
            tags: BTreeMap::new(),
            key_name: None,
            public_key: None,
            user_data: None,
            security_groups: Vec::new(),
            ports: Vec::new(),
            subnet_id: None,
            vpc_id: None,
            client_token: None,
            user_transition_at: None,
            reboots_requested: 0,
            disable_api_termination: false,
            disable_api_stop: false,
            options: Default::default(),
            iam_instance_profile: None,
            root_device_name: None,
            interface_description: None,
        },
        status: InstanceStatus::default(),
    }
}

/// A pending CreateImage of `instance_id`.
pub fn committed_image(instance_id: &InstanceId, name: &str) -> Image {
    let id = ImageId::generate();
    Object {
        api_version: API_VERSION.to_string(),
        kind: IMAGE_KIND.to_string(),
        metadata: ObjectMeta::new(id.as_str(), "us-east-1", super::now()),
        spec: ImageSpec::new(
            name,
            ImageSource::Commit {
                instance_id: instance_id.clone(),
            },
            AmiTag::new(name, id.clone()).to_string(),
        ),
        status: ImageStatus::default(),
    }
}

/// An unattached `volume_type` volume of `size_gib` GiB in `zone`, every option off.
pub fn volume_spec(zone: &str, volume_type: &str, size_gib: u32) -> VolumeSpec {
    VolumeSpec {
        size_gib,
        volume_type: volume_type.to_string(),
        iops: None,
        throughput: None,
        availability_zone: zone.to_string(),
        snapshot_id: None,
        encrypted: false,
        kms_key_id: None,
        multi_attach_enabled: false,
        auto_enable_io: false,
        tags: BTreeMap::new(),
        attachments: Vec::new(),
        root_of: None,
        modification: None,
        client_token: None,
    }
}

/// The record of volume `id` with `spec`, created `at` in the region of its zone, never
/// reconciled.
pub fn volume_of(id: &str, spec: VolumeSpec, at: Timestamp) -> Volume {
    // A zone is its region's name and one letter (`us-east-1a`).
    let zone = &spec.availability_zone;
    let region = zone
        .strip_suffix(|c: char| c.is_ascii_lowercase())
        .unwrap_or(zone)
        .to_string();
    new_volume(id, &region, spec, at)
}

/// An unattached gp2 volume `id` of `size_gib` GiB in `zone`, created now.
pub fn volume(id: &str, zone: &str, size_gib: u32) -> Volume {
    volume_of(id, volume_spec(zone, "gp2", size_gib), super::now())
}

/// Attaches the volume to `instance_id` as `device`, asked for `at`, as AttachVolume records it.
pub fn attach(
    spec: &mut VolumeSpec,
    instance_id: &str,
    device: &str,
    delete_on_termination: bool,
    at: Timestamp,
) {
    spec.attachments.push(VolumeAttachmentSpec {
        instance_id: instance_id.to_string(),
        device: device.to_string(),
        delete_on_termination,
        attach_time: at,
    });
}

/// A snapshot of the `volume_size_gib` GiB volume `volume_id`: no description, tags,
/// encryption, source, AMI or grants.
pub fn snapshot_spec(volume_id: &str, volume_size_gib: u32) -> SnapshotSpec {
    SnapshotSpec {
        volume_id: volume_id.to_string(),
        volume_size_gib,
        description: String::new(),
        encrypted: false,
        kms_key_id: None,
        tags: BTreeMap::new(),
        source: None,
        image_id: None,
        create_volume_permissions: Vec::new(),
    }
}
