//! `CreateImage`: validates the instance and AMI name, then records a pending Image to be committed from the instance's container.

use std::collections::BTreeMap;

use crate::api::block_devices::{attached_devices, root_device_name, InstanceVolumes};
use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::state::ApiState;
use crate::api::xml::XmlWriter;
use crate::api::{images, instances, kind, tags};
use crate::config::VmManager;
use crate::model::snapshot::new_snapshot;
use crate::model::{
    docker_repository_name, now, AmiTag, Image, ImageId, ImageSource, ImageSpec, ImageStatus,
    InstanceId, InstanceState, Object, ObjectMeta, API_VERSION, IMAGE_KIND, VM_MANAGER_TAG,
};
use crate::model::{ImageBlockDevice, Instance, Snapshot, SnapshotId, SnapshotSpec, Timestamp};
use crate::store::StoreError;

/// The longest `Description` EC2 accepts.
const MAX_DESCRIPTION: usize = 255;

/// A validated CreateImage request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The instance whose container becomes the AMI.
    pub instance_id: InstanceId,
    /// The AMI name.
    pub name: String,
    /// `Description`.
    pub description: Option<String>,
    /// Tags of `TagSpecification`s with `ResourceType=image`.
    pub tags: BTreeMap<String, String>,
    /// Tags of `TagSpecification`s with `ResourceType=snapshot`: each snapshot's.
    pub snapshot_tags: BTreeMap<String, String>,
    /// `DryRun`.
    pub dry_run: bool,
}

/// EC2's AMI name rule: 3–128 characters of letters, digits and `( ) [ ] space . / - ' @ _`.
pub fn valid_ami_name(name: &str) -> bool {
    let len = name.chars().count();
    (3..=128).contains(&len)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c))
}

/// Parses and validates everything that needs no store.
pub fn parse(params: &QueryParams) -> Result<Request, ApiError> {
    let instance_id = InstanceId::parse(params.require("InstanceId")?)?;
    let name = params.require("Name")?;
    if !valid_ami_name(name) {
        return Err(ApiError::client(
            "InvalidAMIName.Malformed",
            "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'",
        ));
    }
    let description = params.get("Description").map(str::to_string);
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(ApiError::invalid_value(format!(
            "Value for parameter description is invalid. Length exceeds {MAX_DESCRIPTION} characters."
        )));
    }
    // NoReboot is accepted (and must be a boolean): committing a container never reboots it.
    params.bool("NoReboot")?;
    Ok(Request {
        instance_id,
        name: name.to_string(),
        description,
        tags: tags::tag_specifications(params, &["image", "snapshot"])?,
        snapshot_tags: tags::tag_specifications(params, &["snapshot", "image"])?,
        dry_run: kind::dry_run(params)?,
    })
}

/// Checks the instance can be imaged and the name is free in the region, then writes the Image.
pub fn handle(state: &ApiState, region: &str, req: Request) -> Result<ImageId, ApiError> {
    let instance =
        instances::load_instances(state, region, std::slice::from_ref(&req.instance_id))?
            .pop()
            .expect("load_instances returns one instance per id");
    let shown = instances::shown_state(&instance);
    if !matches!(
        shown,
        InstanceState::Running | InstanceState::Stopping | InstanceState::Stopped
    ) {
        return Err(ApiError::invalid_value(format!(
            "Invalid value '{}' for instanceId. Instance is not in state 'running' or 'stopping' or 'stopped'",
            req.instance_id
        )));
    }
    check_name_free(state, region, &req.name)?;
    kind::check_dry_run(req.dry_run)?;

    let id = ImageId::generate();
    let mut tags = req.tags;
    if state.vm_manager == VmManager::Docker {
        tags.insert(VM_MANAGER_TAG.to_string(), "docker".to_string());
    }
    // The new AMI boots as the instance's did: it keeps its AMI's boot mode.
    let boot_mode = images::find_ami(state, region, &instance.spec.image_id)?
        .and_then(|ami| ami.boot_mode().map(str::to_string));
    let created = now();
    let (block_devices, snapshots) =
        snapshot_volumes(state, region, &instance, &id, &req.snapshot_tags, created)?;
    let image: Image = Object {
        api_version: API_VERSION.to_string(),
        kind: IMAGE_KIND.to_string(),
        metadata: ObjectMeta::new(id.as_str(), region, created),
        spec: ImageSpec {
            description: req.description,
            tags,
            boot_mode,
            block_devices,
            root_device_name: Some(root_device_name(&instance).to_string()),
            ..ImageSpec::new(
                req.name.clone(),
                ImageSource::Commit {
                    instance_id: req.instance_id.clone(),
                },
                AmiTag::new(docker_repository_name(&req.name), id.clone()).to_string(),
            )
        },
        status: ImageStatus::default(),
    };
    state
        .store
        .create_image_with_snapshots(&image, &snapshots)
        .map_err(store_error)?;
    tracing::info!(image_id = %id, instance_id = %req.instance_id, reference = %image.spec.reference, snapshots = snapshots.len(), "image requested");
    Ok(id)
}

/// The AMI's block device mapping and its snapshot records: one snapshot of each volume
/// attached to the instance in force, root first. The root's snapshot holds no data (the
/// committed Docker image is the root's data; the reconciler records it completed with none)
/// but is recorded so clients see EC2's shape. An instance recorded before volumes existed
/// has none, and its AMI shows no mapping, as before.
fn snapshot_volumes(
    state: &ApiState,
    region: &str,
    instance: &Instance,
    image_id: &ImageId,
    tags: &BTreeMap<String, String>,
    at: Timestamp,
) -> Result<(Vec<ImageBlockDevice>, Vec<Snapshot>), ApiError> {
    let volumes = InstanceVolumes::of_instance(state, region, &instance.metadata.name)?;
    let volumes = volumes.of(&instance.metadata.name);
    let mut devices = Vec::new();
    let mut snapshots = Vec::new();
    for device in attached_devices(instance, volumes) {
        let Some(volume) = volumes.iter().find(|v| v.metadata.name == device.volume_id) else {
            continue;
        };
        let snapshot_id = SnapshotId::generate();
        let spec = &volume.spec;
        snapshots.push(new_snapshot(
            snapshot_id.as_str(),
            region,
            SnapshotSpec {
                volume_id: volume.metadata.name.clone(),
                volume_size_gib: spec.size_gib,
                description: format!(
                    "Created by CreateImage({}) for {image_id}",
                    instance.metadata.name
                ),
                encrypted: spec.encrypted,
                kms_key_id: spec.kms_key_id.clone(),
                tags: tags.clone(),
                source: None,
                image_id: Some(image_id.to_string()),
                create_volume_permissions: Vec::new(),
            },
            at,
        ));
        devices.push(ImageBlockDevice {
            device_name: device.device_name.to_string(),
            snapshot_id: Some(snapshot_id.to_string()),
            volume_size_gib: spec.size_gib,
            volume_type: spec.volume_type.clone(),
            delete_on_termination: device.delete_on_termination,
            iops: spec.iops,
            throughput: spec.throughput,
            encrypted: spec.encrypted,
        });
    }
    Ok((devices, snapshots))
}

/// `InvalidAMIName.Duplicate`, as EC2 words it.
fn duplicate(name: &str, holder: &str) -> ApiError {
    ApiError::client(
        "InvalidAMIName.Duplicate",
        format!("AMI name {name} is already in use by AMI {holder}"),
    )
}

/// Checks no AMI the account owns in the region has the name yet. The Docker catalog's names
/// count too (observed state, not indexed); among records the store's name index decides at
/// the write ([`store_image`]). Public AMIs are other accounts' and never conflict.
pub fn check_name_free(state: &ApiState, region: &str, name: &str) -> Result<(), ApiError> {
    match images::own_images(state, region)?
        .into_iter()
        .find(|i| i.spec.name == name)
    {
        Some(taken) => Err(duplicate(name, &taken.metadata.name)),
        None => Ok(()),
    }
}

/// Stores a new AMI record, claiming its name in its region.
pub fn store_image(state: &ApiState, image: &Image) -> Result<(), ApiError> {
    state.store.create_image(image).map_err(store_error)
}

/// A refused store of an AMI record as the client sees it: a name another record of the
/// region holds is `InvalidAMIName.Duplicate`.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NameTaken { name, holder, .. } => duplicate(&name, &holder),
        e => e.into(),
    }
}

/// `imageId`.
pub fn render(id: &ImageId) -> String {
    let mut w = XmlWriter::new();
    w.field("imageId", id);
    w.finish()
}

/// The dispatch entry.
pub fn call(state: &ApiState, region: &str, params: &QueryParams) -> Result<String, ApiError> {
    Ok(render(&handle(state, region, parse(params)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(q: &str) -> Result<Request, ApiError> {
        parse(&QueryParams::from_query(q))
    }

    #[test]
    fn names() {
        assert!(valid_ami_name("my-snap (v2) [x] it's@home_1./"));
        assert!(!valid_ami_name("ab"));
        assert!(!valid_ami_name(&"a".repeat(129)));
        assert!(valid_ami_name(&"a".repeat(128)));
        assert!(!valid_ami_name("semi;colon"));
        assert!(!valid_ami_name("ünïcode"));
    }

    #[test]
    fn parse_happy() {
        let req = parse_str(
            "InstanceId=i-00000001&Name=snap&Description=d&NoReboot=true&TagSpecification.1.ResourceType=image\
             &TagSpecification.1.Tag.1.Key=k&TagSpecification.1.Tag.1.Value=v\
             &TagSpecification.2.ResourceType=snapshot&TagSpecification.2.Tag.1.Key=s",
        )
        .unwrap();
        assert_eq!(req.name, "snap");
        assert_eq!(req.description.as_deref(), Some("d"));
        assert_eq!(req.tags.len(), 1);
        assert_eq!(req.tags["k"], "v");
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            parse_str("Name=snap").unwrap_err().message,
            "The request must contain the parameter InstanceId"
        );
        assert_eq!(
            parse_str("InstanceId=i-00000001").unwrap_err().message,
            "The request must contain the parameter Name"
        );
        assert_eq!(
            parse_str("InstanceId=x&Name=snap").unwrap_err().code,
            "InvalidInstanceID.Malformed"
        );
        assert_eq!(
            parse_str("InstanceId=i-00000001&Name=x").unwrap_err().code,
            "InvalidAMIName.Malformed"
        );
        assert_eq!(
            parse_str("InstanceId=i-00000001&Name=snap&NoReboot=nah")
                .unwrap_err()
                .code,
            "InvalidParameterValue"
        );
        let long = "d".repeat(256);
        assert_eq!(
            parse_str(&format!(
                "InstanceId=i-00000001&Name=snap&Description={long}"
            ))
            .unwrap_err()
            .code,
            "InvalidParameterValue"
        );
    }
}
