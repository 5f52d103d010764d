//! Instances' block devices: RunInstances' `BlockDeviceMapping.N` checked against EC2's rules, the volume records a launch writes (each instance's root volume and its mappings' volumes, over the AMI's mapping), and the `blockDeviceMapping` DescribeInstances shows from the volume records attached in force.

use std::sync::Arc;

use crate::api::error::ApiError;
use crate::api::query::QueryParams;
use crate::api::render::ROOT_DEVICE_NAME;
use crate::api::state::ApiState;
use crate::api::volumes::{check_type, size_range, Performance};
use crate::api::xml::XmlWriter;
use crate::model::volume::{attachment_in_force, new_volume, VOLUME_TYPES};
use crate::model::{
    format_timestamp, ImageBlockDevice, Instance, SnapshotId, Timestamp, Volume,
    VolumeAttachmentSpec, VolumeId, VolumeSpec,
};
use crate::store::StoreError;

/// The root volume's size when the AMI records none (EC2's usual 8 GiB).
pub const DEFAULT_ROOT_SIZE_GIB: u32 = 8;

/// The volume type of a mapping that names none (EC2's default for RunInstances).
pub const DEFAULT_VOLUME_TYPE: &str = "gp2";

/// What one `BlockDeviceMapping.N` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchMapping {
    /// `DeviceName`, as the client wrote it.
    pub device_name: String,
    /// What the device gets.
    pub device: MappingKind,
}

/// The three forms of a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingKind {
    /// `NoDevice`: the AMI's mapping for the device is dropped.
    NoDevice,
    /// `VirtualName` (`ephemeralN`): an instance store volume; ec2d has none to give, so
    /// the mapping is accepted and makes no volume.
    Virtual(String),
    /// `Ebs`: an EBS volume, over the AMI's mapping for the device when it has one.
    Ebs(EbsMapping),
}

/// `Ebs.*` of one mapping; what is absent comes from the AMI's mapping or EC2's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EbsMapping {
    /// `Ebs.VolumeSize`, GiB.
    pub volume_size: Option<u32>,
    /// `Ebs.VolumeType`.
    pub volume_type: Option<String>,
    /// `Ebs.Iops`.
    pub iops: Option<u32>,
    /// `Ebs.Throughput`, MiB/s.
    pub throughput: Option<u32>,
    /// `Ebs.DeleteOnTermination`.
    pub delete_on_termination: Option<bool>,
    /// `Ebs.Encrypted`.
    pub encrypted: Option<bool>,
    /// `Ebs.KmsKeyId`.
    pub kms_key_id: Option<String>,
    /// `Ebs.SnapshotId`.
    pub snapshot_id: Option<String>,
}

/// A device name without its `/dev/` prefix: EC2 takes `/dev/sdf` and `sdf` for one device.
pub fn short_device(name: &str) -> &str {
    name.strip_prefix("/dev/").unwrap_or(name)
}

/// Whether EC2 takes `name` as a device name: `[/dev/](sd|xvd|hd|vd)` followed by one or
/// two letters and at most two digits (`/dev/sda1`, `/dev/sdf`, `xvdba`).
pub fn valid_device_name(name: &str) -> bool {
    let short = short_device(name);
    let Some(rest) = ["xvd", "sd", "hd", "vd"]
        .iter()
        .find_map(|p| short.strip_prefix(p))
    else {
        return false;
    };
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    let digits = &rest[letters..];
    (1..=2).contains(&letters) && digits.len() <= 2 && digits.bytes().all(|b| b.is_ascii_digit())
}

fn invalid_mapping(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidBlockDeviceMapping", message)
}

/// A non-negative integer member that fits a `u32`.
fn number(params: &QueryParams, name: &str, xml_name: &str) -> Result<Option<u32>, ApiError> {
    match params.int(name)? {
        None => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            ApiError::invalid_value(format!(
                "Value ({n}) for parameter {xml_name} is invalid. Expected a non-negative integer."
            ))
        }),
    }
}

/// `BlockDeviceMapping.N` of a RunInstances request, checked as EC2 checks them before
/// looking at the AMI: device names, one mapping per device, known volume types, snapshot ids.
pub fn parse_mappings(params: &QueryParams) -> Result<Vec<LaunchMapping>, ApiError> {
    let mut mappings: Vec<LaunchMapping> = Vec::new();
    for (i, member) in params.structs("BlockDeviceMapping").iter().enumerate() {
        let device_name = member
            .get("DeviceName")
            .filter(|d| !d.is_empty())
            .ok_or_else(|| {
                ApiError::missing_parameter(&format!("BlockDeviceMapping.{}.DeviceName", i + 1))
            })?;
        if !valid_device_name(device_name) {
            return Err(invalid_mapping(format!(
                "Invalid device name {device_name}"
            )));
        }
        if mappings
            .iter()
            .any(|m| short_device(&m.device_name) == short_device(device_name))
        {
            return Err(invalid_mapping(format!(
                "The device '{}' is used in more than one block-device mapping",
                short_device(device_name)
            )));
        }
        let ebs = member.sub("Ebs");
        let device = if member.get("NoDevice").is_some() {
            MappingKind::NoDevice
        } else if let Some(name) = member.get("VirtualName").filter(|v| !v.is_empty()) {
            MappingKind::Virtual(name.to_string())
        } else {
            MappingKind::Ebs(parse_ebs(&ebs)?)
        };
        mappings.push(LaunchMapping {
            device_name: device_name.to_string(),
            device,
        });
    }
    Ok(mappings)
}

fn parse_ebs(ebs: &QueryParams) -> Result<EbsMapping, ApiError> {
    let volume_type = ebs.get("VolumeType").filter(|t| !t.is_empty());
    if let Some(t) = volume_type {
        if !VOLUME_TYPES.contains(&t) {
            return Err(ApiError::invalid_value(format!(
                "Value ({t}) for parameter volumeType is invalid. Valid values are: {}.",
                VOLUME_TYPES.join(", ")
            )));
        }
    }
    let snapshot_id = match ebs.get("SnapshotId").filter(|s| !s.is_empty()) {
        Some(raw) => Some(
            SnapshotId::parse(raw)
                .map_err(|e| ApiError::client("InvalidSnapshotID.Malformed", e.to_string()))?
                .to_string(),
        ),
        None => None,
    };
    Ok(EbsMapping {
        volume_size: number(ebs, "VolumeSize", "volumeSize")?,
        volume_type: volume_type.map(str::to_string),
        iops: number(ebs, "Iops", "iops")?,
        throughput: number(ebs, "Throughput", "throughput")?,
        delete_on_termination: ebs.bool("DeleteOnTermination")?,
        encrypted: ebs.bool("Encrypted")?,
        kms_key_id: ebs
            .get("KmsKeyId")
            .filter(|k| !k.is_empty())
            .map(str::to_string),
        snapshot_id,
    })
}

/// EC2's checks of a launch's volume against its type, as RunInstances words them (sizes,
/// IOPS that a type needs or refuses, throughput for gp3 only), then the rules every volume
/// follows (`volumes::Performance`: ranges, ratios); answers the IOPS and throughput with
/// EC2's defaults filled in (gp3's 3000 and 125 MiB/s).
pub fn check_volume(
    volume_type: &str,
    size: u32,
    iops: Option<u32>,
    throughput: Option<u32>,
) -> Result<(Option<u32>, Option<u32>), ApiError> {
    check_type(volume_type)?;
    let (min, max) = size_range(volume_type);
    if size < min {
        return Err(ApiError::invalid_value(format!(
            "The volume size is invalid for {volume_type} volumes: {size} GiB. {volume_type} volumes must be at least {min} GiB in size. Please specify a volume size above the minimum limit."
        )));
    }
    if size > max {
        return Err(ApiError::invalid_value(format!(
            "The volume size is invalid for {volume_type} volumes: {size} GiB. {volume_type} volumes must be at most {max} GiB in size. Please specify a volume size below the maximum limit."
        )));
    }
    if iops.is_none() && matches!(volume_type, "io1" | "io2") {
        return Err(ApiError::missing_parameter("iops"));
    }
    if throughput.is_some() && volume_type != "gp3" {
        // As EC2 answered RunInstances (runs-on/runs-on#426).
        return Err(ApiError::invalid_combination(
            "throughput can only be specified for volumeType gp3.",
        ));
    }
    let checked = Performance {
        size_gib: size,
        volume_type: volume_type.to_string(),
        iops,
        throughput,
        multi_attach_enabled: false,
    }
    .checked()?;
    Ok((checked.iops, checked.throughput))
}

/// One volume a launch makes for each instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedVolume {
    /// The device it is attached as.
    pub device_name: String,
    /// The root volume (the AMI's root device).
    pub root: bool,
    /// Size, GiB.
    pub size_gib: u32,
    /// Type.
    pub volume_type: String,
    /// Provisioned IOPS.
    pub iops: Option<u32>,
    /// Provisioned throughput.
    pub throughput: Option<u32>,
    /// Deleted with the instance.
    pub delete_on_termination: bool,
    /// Recorded `Encrypted`.
    pub encrypted: bool,
    /// Recorded `KmsKeyId`.
    pub kms_key_id: Option<String>,
    /// The snapshot whose data it starts with.
    pub snapshot_id: Option<String>,
}

impl PlannedVolume {
    fn from_ami(device: &ImageBlockDevice, root: bool) -> Self {
        Self {
            device_name: device.device_name.clone(),
            root,
            size_gib: device.volume_size_gib,
            volume_type: device.volume_type.clone(),
            iops: device.iops,
            throughput: device.throughput,
            delete_on_termination: device.delete_on_termination,
            encrypted: device.encrypted,
            kms_key_id: None,
            snapshot_id: device.snapshot_id.clone(),
        }
    }
}

/// The volumes each instance of a launch gets, root first: the AMI's mapping (`ami_devices`,
/// whose `root_device` entry is the root; an AMI that records none gets an 8 GiB gp2 root),
/// changed by the launch's `mappings` (`NoDevice` drops a device, `Ebs` changes or adds one,
/// a `VirtualName` makes none). `snapshot_size` is the size of a snapshot the launch names
/// (`None`: it does not exist, `InvalidSnapshot.NotFound`). Pure.
pub fn plan_volumes(
    root_device: &str,
    ami_devices: &[ImageBlockDevice],
    mappings: &[LaunchMapping],
    snapshot_size: impl Fn(&str) -> Option<u32>,
) -> Result<Vec<PlannedVolume>, ApiError> {
    let is_root = |name: &str| short_device(name) == short_device(root_device);
    let mut planned: Vec<PlannedVolume> = Vec::new();
    if !ami_devices.iter().any(|d| is_root(&d.device_name)) {
        planned.push(PlannedVolume {
            device_name: root_device.to_string(),
            root: true,
            size_gib: DEFAULT_ROOT_SIZE_GIB,
            volume_type: DEFAULT_VOLUME_TYPE.to_string(),
            iops: None,
            throughput: None,
            delete_on_termination: true,
            encrypted: false,
            kms_key_id: None,
            snapshot_id: None,
        });
    }
    for device in ami_devices {
        let root = is_root(&device.device_name);
        let volume = PlannedVolume::from_ami(device, root);
        if root {
            planned.insert(0, volume);
        } else {
            planned.push(volume);
        }
    }
    for mapping in mappings {
        let at = planned
            .iter()
            .position(|p| short_device(&p.device_name) == short_device(&mapping.device_name));
        match &mapping.device {
            MappingKind::NoDevice => match at {
                Some(0) if is_root(&mapping.device_name) => {
                    return Err(invalid_mapping(format!(
                        "The device '{}' is the root device and cannot be removed",
                        mapping.device_name
                    )))
                }
                Some(at) => {
                    planned.remove(at);
                }
                None => {}
            },
            // An instance store volume replaces what the AMI mapped there; ec2d has none.
            MappingKind::Virtual(_) => {
                if let Some(at) = at.filter(|&at| !planned[at].root) {
                    planned.remove(at);
                }
            }
            MappingKind::Ebs(ebs) => {
                let base = at.map(|at| planned[at].clone());
                let volume = merge(&mapping.device_name, base.as_ref(), ebs, &snapshot_size)?;
                match at {
                    Some(at) => planned[at] = volume,
                    None => planned.push(volume),
                }
            }
        }
    }
    Ok(planned)
}

/// One `Ebs` mapping over the AMI's volume for its device (`base`), checked.
fn merge(
    device_name: &str,
    base: Option<&PlannedVolume>,
    ebs: &EbsMapping,
    snapshot_size: &impl Fn(&str) -> Option<u32>,
) -> Result<PlannedVolume, ApiError> {
    let snapshot_id = ebs
        .snapshot_id
        .clone()
        .or_else(|| base.and_then(|b| b.snapshot_id.clone()));
    // The smallest size the snapshot allows: the one the launch names, else the AMI's.
    let snapshot_min = match (&ebs.snapshot_id, base) {
        (Some(id), _) => Some(snapshot_size(id).ok_or_else(|| snapshot_not_found(id))?),
        (None, Some(b)) if b.snapshot_id.is_some() => Some(b.size_gib),
        _ => None,
    };
    let size = match (ebs.volume_size, snapshot_min, base) {
        (Some(size), _, _) => size,
        (None, Some(min), _) => min,
        (None, None, Some(b)) => b.size_gib,
        (None, None, None) => {
            return Err(invalid_mapping(format!(
                "Either snapshot ID or volume size must be provided for: {device_name}"
            )))
        }
    };
    let volume_type = ebs
        .volume_type
        .clone()
        .or_else(|| base.map(|b| b.volume_type.clone()))
        .unwrap_or_else(|| DEFAULT_VOLUME_TYPE.to_string());
    // A changed type does not keep the AMI's provisioned performance.
    let same_type = base.is_some_and(|b| b.volume_type == volume_type);
    let iops = ebs
        .iops
        .or_else(|| base.filter(|_| same_type).and_then(|b| b.iops));
    let throughput = ebs
        .throughput
        .or_else(|| base.filter(|_| same_type).and_then(|b| b.throughput));
    if let (Some(id), Some(min)) = (&snapshot_id, snapshot_min) {
        if size < min {
            return Err(invalid_mapping(format!(
                "Volume of size {size}GB is smaller than  snapshot '{id}', expect size >= {min}GB"
            )));
        }
    }
    let (iops, throughput) = check_volume(&volume_type, size, iops, throughput)?;
    Ok(PlannedVolume {
        // The root stays at the AMI's root device name (`xvda` names `/dev/xvda`), which
        // DescribeInstances' `rootDeviceName` matches.
        device_name: match base {
            Some(b) if b.root => b.device_name.clone(),
            _ => device_name.to_string(),
        },
        root: base.is_some_and(|b| b.root),
        size_gib: size,
        volume_type,
        iops,
        throughput,
        delete_on_termination: ebs
            .delete_on_termination
            .or_else(|| base.map(|b| b.delete_on_termination))
            .unwrap_or(true),
        encrypted: ebs
            .encrypted
            .or_else(|| base.map(|b| b.encrypted))
            .unwrap_or(false),
        kms_key_id: ebs.kms_key_id.clone(),
        snapshot_id,
    })
}

/// `InvalidSnapshot.NotFound`, as EC2 words it.
pub fn snapshot_not_found(id: &str) -> ApiError {
    ApiError::client(
        "InvalidSnapshot.NotFound",
        format!("The snapshot '{id}' does not exist."),
    )
}

/// The volume records of one instance: the planned volumes, in its zone, attached to it as
/// launched, with the launch's `volume` tags. The root volume names its instance
/// (`rootOf`); its status stays empty for the reconciler to fill.
pub fn volumes_for(
    instance: &Instance,
    planned: &[PlannedVolume],
    tags: &std::collections::BTreeMap<String, String>,
    at: Timestamp,
) -> Vec<Volume> {
    let instance_id = &instance.metadata.name;
    planned
        .iter()
        .map(|p| {
            let id = VolumeId::generate();
            let spec = VolumeSpec {
                size_gib: p.size_gib,
                volume_type: p.volume_type.clone(),
                iops: p.iops,
                throughput: p.throughput,
                availability_zone: instance.spec.availability_zone.clone(),
                snapshot_id: p.snapshot_id.clone(),
                encrypted: p.encrypted,
                kms_key_id: p.kms_key_id.clone(),
                multi_attach_enabled: false,
                auto_enable_io: false,
                tags: tags.clone(),
                attachments: vec![VolumeAttachmentSpec {
                    instance_id: instance_id.clone(),
                    device: p.device_name.clone(),
                    delete_on_termination: p.delete_on_termination,
                    attach_time: at,
                }],
                root_of: p.root.then(|| instance_id.clone()),
                modification: None,
                client_token: None,
            };
            new_volume(id.as_str(), &instance.metadata.namespace, spec, at)
        })
        .collect()
}

/// The volume records naming each instance in an attachment, read once per request and
/// grouped by instance (DescribeInstances over a thousand instances reads the volumes once).
/// Whether an attachment is in force is decided per instance when it is shown.
#[derive(Debug, Default, Clone)]
pub struct InstanceVolumes(Arc<rustc_hash::FxHashMap<String, Vec<Arc<Volume>>>>);

impl InstanceVolumes {
    /// Every instance's in `region`.
    pub fn read(state: &ApiState, region: &str) -> Result<Self, StoreError> {
        let mut by_instance = rustc_hash::FxHashMap::<String, Vec<Arc<Volume>>>::default();
        for volume in state.store.volumes().list_shared()?.objects {
            if volume.metadata.namespace != region {
                continue;
            }
            let mut named: Vec<&str> = Vec::new();
            for attachment in &volume.spec.attachments {
                let id = attachment.instance_id.as_str();
                if !named.contains(&id) {
                    named.push(id);
                    by_instance
                        .entry(id.to_string())
                        .or_default()
                        .push(Arc::clone(&volume));
                }
            }
        }
        Ok(Self(Arc::new(by_instance)))
    }

    /// One instance's, through the store's index of instances' devices (no other volume is
    /// read).
    pub fn of_instance(
        state: &ApiState,
        region: &str,
        instance_id: &str,
    ) -> Result<Self, StoreError> {
        Self::of_instances(state, region, &[instance_id])
    }

    /// These instances', through the same index (for a page of a few instances).
    pub fn of_instances(
        state: &ApiState,
        region: &str,
        instance_ids: &[&str],
    ) -> Result<Self, StoreError> {
        let mut by_instance = rustc_hash::FxHashMap::default();
        for &instance_id in instance_ids {
            let volumes: Vec<Arc<Volume>> = state
                .store
                .volumes_of_instance(instance_id)?
                .into_iter()
                .filter(|v| v.metadata.namespace == region)
                .collect();
            by_instance.insert(instance_id.to_string(), volumes);
        }
        Ok(Self(Arc::new(by_instance)))
    }

    /// The volume records naming `instance_id` (in store order; see [`attached_devices`]).
    pub fn of(&self, instance_id: &str) -> &[Arc<Volume>] {
        self.0.get(instance_id).map_or(&[], Vec::as_slice)
    }
}

/// One device of an instance's `blockDeviceMapping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedDevice<'a> {
    /// `deviceName`.
    pub device_name: &'a str,
    /// `ebs.volumeId`.
    pub volume_id: &'a str,
    /// `ebs.status`: `attached` or `attaching`.
    pub status: &'static str,
    /// `ebs.attachTime`.
    pub attach_time: Timestamp,
    /// `ebs.deleteOnTermination`.
    pub delete_on_termination: bool,
}

/// The devices of `instance` from the volume records naming it, root first then by device:
/// only attachments in force (none once termination is recorded). A root volume is
/// `attached` once the instance has a container (its data is the container's file system),
/// another once the instance's observed mounts list it; `attaching` until then.
pub fn attached_devices<'a>(
    instance: &Instance,
    volumes: &'a [Arc<Volume>],
) -> Vec<AttachedDevice<'a>> {
    if !attachment_in_force(Some(instance)) {
        return Vec::new();
    }
    let id = instance.metadata.name.as_str();
    let mut devices: Vec<(bool, AttachedDevice<'a>)> = Vec::new();
    for volume in volumes {
        let root = volume.spec.root_of.as_deref() == Some(id);
        for attachment in volume
            .spec
            .attachments
            .iter()
            .filter(|a| a.instance_id == id)
        {
            let ready = if root {
                instance.status.container.is_some()
            } else {
                instance
                    .status
                    .volumes
                    .iter()
                    .any(|m| m.volume_id == volume.metadata.name)
            };
            devices.push((
                root,
                AttachedDevice {
                    device_name: &attachment.device,
                    volume_id: &volume.metadata.name,
                    status: if ready { "attached" } else { "attaching" },
                    attach_time: attachment.attach_time,
                    delete_on_termination: attachment.delete_on_termination,
                },
            ));
        }
    }
    devices.sort_by(|(a_root, a), (b_root, b)| {
        b_root
            .cmp(a_root)
            .then_with(|| a.device_name.cmp(b.device_name))
            .then_with(|| a.volume_id.cmp(b.volume_id))
    });
    devices.into_iter().map(|(_, d)| d).collect()
}

/// The values of the `block-device-mapping.<field>` instance filter: one per device shown.
pub fn block_device_values(
    field: &str,
    instance: &Instance,
    volumes: &[Arc<Volume>],
) -> Vec<String> {
    attached_devices(instance, volumes)
        .iter()
        .filter_map(|d| match field {
            "attach-time" => Some(format_timestamp(d.attach_time)),
            "delete-on-termination" => Some(d.delete_on_termination.to_string()),
            "device-name" => Some(d.device_name.to_string()),
            "status" => Some(d.status.to_string()),
            "volume-id" => Some(d.volume_id.to_string()),
            _ => None,
        })
        .collect()
}

/// The instance's root device name (`rootDeviceName`).
pub fn root_device_name(instance: &Instance) -> &str {
    instance
        .spec
        .root_device_name
        .as_deref()
        .unwrap_or(ROOT_DEVICE_NAME)
}

/// `<blockDeviceMapping>` of an instance: one `InstanceBlockDeviceMapping` per device.
pub fn render_block_devices(w: &mut XmlWriter, instance: &Instance, volumes: &[Arc<Volume>]) {
    let devices = attached_devices(instance, volumes);
    if devices.is_empty() {
        w.empty("blockDeviceMapping");
        return;
    }
    w.set("blockDeviceMapping", &devices, |w, d| {
        w.field("deviceName", d.device_name);
        w.el("ebs", |w| {
            w.field("volumeId", d.volume_id);
            w.field("status", d.status);
            w.field("attachTime", format_timestamp(d.attach_time));
            w.field("deleteOnTermination", d.delete_on_termination);
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;
    use crate::model::{ContainerObservation, DesiredState, MountedVolume};

    fn mappings(q: &str) -> Result<Vec<LaunchMapping>, ApiError> {
        parse_mappings(&QueryParams::from_query(q))
    }

    fn ami_root(size: u32, snapshot: Option<&str>) -> ImageBlockDevice {
        ImageBlockDevice {
            device_name: "/dev/sda1".into(),
            snapshot_id: snapshot.map(str::to_string),
            volume_size_gib: size,
            volume_type: "gp2".into(),
            delete_on_termination: true,
            iops: None,
            throughput: None,
            encrypted: false,
        }
    }

    #[test]
    fn device_names() {
        for good in [
            "/dev/sda1",
            "/dev/sdf",
            "xvdb",
            "/dev/xvdba",
            "sdh12",
            "/dev/vdb",
        ] {
            assert!(valid_device_name(good), "{good}");
        }
        for bad in [
            "",
            "/dev/",
            "sda123",
            "/dev/sd",
            "C:/Program Files/Git/dev/sda1",
            "/dev/SDF",
            "disk1",
        ] {
            assert!(!valid_device_name(bad), "{bad}");
        }
    }

    #[test]
    fn parsing_and_its_errors() {
        let m = mappings(
            "BlockDeviceMapping.1.DeviceName=/dev/sda1&BlockDeviceMapping.1.Ebs.VolumeSize=20\
             &BlockDeviceMapping.1.Ebs.VolumeType=gp3&BlockDeviceMapping.2.DeviceName=/dev/sdf\
             &BlockDeviceMapping.2.Ebs.VolumeSize=5&BlockDeviceMapping.2.Ebs.DeleteOnTermination=false\
             &BlockDeviceMapping.3.DeviceName=/dev/sdg&BlockDeviceMapping.3.NoDevice=\
             &BlockDeviceMapping.4.DeviceName=/dev/sdh&BlockDeviceMapping.4.VirtualName=ephemeral0",
        )
        .unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(
            m[0].device,
            MappingKind::Ebs(EbsMapping {
                volume_size: Some(20),
                volume_type: Some("gp3".into()),
                ..Default::default()
            })
        );
        assert_eq!(m[2].device, MappingKind::NoDevice);
        assert_eq!(m[3].device, MappingKind::Virtual("ephemeral0".into()));
        let err = |q: &str| mappings(q).unwrap_err();
        let e = err("BlockDeviceMapping.1.DeviceName=/dev/xvdb&BlockDeviceMapping.1.Ebs.VolumeSize=1&BlockDeviceMapping.2.DeviceName=xvdb&BlockDeviceMapping.2.Ebs.VolumeSize=1");
        assert_eq!(e.code, "InvalidBlockDeviceMapping");
        assert_eq!(
            e.message,
            "The device 'xvdb' is used in more than one block-device mapping"
        );
        let e = err("BlockDeviceMapping.1.DeviceName=bogus&BlockDeviceMapping.1.Ebs.VolumeSize=1");
        assert_eq!(e.message, "Invalid device name bogus");
        let e =
            err("BlockDeviceMapping.1.DeviceName=/dev/sdf&BlockDeviceMapping.1.Ebs.VolumeType=gp9");
        assert_eq!(e.code, "InvalidParameterValue");
        let e =
            err("BlockDeviceMapping.1.DeviceName=/dev/sdf&BlockDeviceMapping.1.Ebs.VolumeSize=-1");
        assert_eq!(e.code, "InvalidParameterValue");
        let e = err("BlockDeviceMapping.1.DeviceName=/dev/sdf&BlockDeviceMapping.1.Ebs.SnapshotId=snap-nothex");
        assert_eq!(e.code, "InvalidSnapshotID.Malformed");
        let e = err("BlockDeviceMapping.1.Ebs.VolumeSize=1");
        assert_eq!(e.code, "MissingParameter");
    }

    #[test]
    fn the_ami_root_is_sized_by_its_mapping_and_extra_devices_are_added() {
        let m = mappings(
            "BlockDeviceMapping.1.DeviceName=/dev/sda1&BlockDeviceMapping.1.Ebs.VolumeSize=20\
             &BlockDeviceMapping.1.Ebs.VolumeType=gp3&BlockDeviceMapping.2.DeviceName=/dev/sdf\
             &BlockDeviceMapping.2.Ebs.VolumeSize=5",
        )
        .unwrap();
        let plan = plan_volumes(
            "/dev/sda1",
            &[ami_root(8, Some("snap-0123456789abcdef0"))],
            &m,
            |_| None,
        )
        .unwrap();
        assert_eq!(plan.len(), 2);
        assert!(plan[0].root && plan[0].size_gib == 20 && plan[0].volume_type == "gp3");
        assert_eq!(
            plan[0].snapshot_id.as_deref(),
            Some("snap-0123456789abcdef0")
        );
        assert!(!plan[1].root && plan[1].size_gib == 5 && plan[1].volume_type == "gp2");
        assert!(plan[1].delete_on_termination, "EC2's default");
        // No mapping, no AMI mapping: an 8 GiB gp2 root.
        let plan = plan_volumes("/dev/xvda", &[], &[], |_| None).unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(
            (plan[0].device_name.as_str(), plan[0].size_gib),
            ("/dev/xvda", 8)
        );
    }

    #[test]
    fn snapshots_sizes_and_no_device() {
        let data = ImageBlockDevice {
            device_name: "/dev/sdf".into(),
            snapshot_id: Some("snap-00000000000000001".into()),
            volume_size_gib: 10,
            volume_type: "gp3".into(),
            delete_on_termination: false,
            iops: Some(4000),
            throughput: None,
            encrypted: true,
        };
        let ami = [ami_root(8, None), data.clone()];
        let plan = plan_volumes("/dev/sda1", &ami, &[], |_| None).unwrap();
        assert_eq!(plan[1].snapshot_id, data.snapshot_id);
        assert_eq!(plan[1].iops, Some(4000));
        assert!(!plan[1].delete_on_termination && plan[1].encrypted);
        let dropped =
            mappings("BlockDeviceMapping.1.DeviceName=sdf&BlockDeviceMapping.1.NoDevice=").unwrap();
        assert_eq!(
            plan_volumes("/dev/sda1", &ami, &dropped, |_| None)
                .unwrap()
                .len(),
            1
        );
        let smaller = mappings(
            "BlockDeviceMapping.1.DeviceName=/dev/sdf&BlockDeviceMapping.1.Ebs.VolumeSize=5",
        )
        .unwrap();
        let e = plan_volumes("/dev/sda1", &ami, &smaller, |_| None).unwrap_err();
        assert_eq!(e.code, "InvalidBlockDeviceMapping");
        assert_eq!(
            e.message,
            "Volume of size 5GB is smaller than  snapshot 'snap-00000000000000001', expect size >= 10GB"
        );
        let named = mappings("BlockDeviceMapping.1.DeviceName=/dev/sdg&BlockDeviceMapping.1.Ebs.SnapshotId=snap-0123456789abcdef0").unwrap();
        let plan = plan_volumes("/dev/sda1", &ami, &named, |_| Some(3)).unwrap();
        assert_eq!(
            (plan[2].size_gib, plan[2].snapshot_id.as_deref()),
            (3, Some("snap-0123456789abcdef0"))
        );
        let e = plan_volumes("/dev/sda1", &ami, &named, |_| None).unwrap_err();
        assert_eq!(e.code, "InvalidSnapshot.NotFound");
        let bare = mappings("BlockDeviceMapping.1.DeviceName=/dev/sdh&BlockDeviceMapping.1.Ebs.DeleteOnTermination=true").unwrap();
        let e = plan_volumes("/dev/sda1", &ami, &bare, |_| None).unwrap_err();
        assert_eq!(
            e.message,
            "Either snapshot ID or volume size must be provided for: /dev/sdh"
        );
        let root_gone =
            mappings("BlockDeviceMapping.1.DeviceName=/dev/sda1&BlockDeviceMapping.1.NoDevice=")
                .unwrap();
        assert_eq!(
            plan_volumes("/dev/sda1", &ami, &root_gone, |_| None)
                .unwrap_err()
                .code,
            "InvalidBlockDeviceMapping"
        );
    }

    #[test]
    fn volume_checks() {
        assert_eq!(check_volume("gp2", 0, None, None).unwrap_err().message,
            "The volume size is invalid for gp2 volumes: 0 GiB. gp2 volumes must be at least 1 GiB in size. Please specify a volume size above the minimum limit.");
        assert!(check_volume("gp2", 16385, None, None).is_err());
        assert!(check_volume("st1", 100, None, None).is_err());
        assert_eq!(
            check_volume("gp2", 8, Some(100), None).unwrap_err().code,
            "InvalidParameterCombination"
        );
        assert_eq!(
            check_volume("io1", 8, None, None).unwrap_err().code,
            "MissingParameter"
        );
        assert!(check_volume("io2", 8, Some(1000), None).is_ok());
        assert!(check_volume("gp3", 8, Some(3000), Some(125)).is_ok());
        assert_eq!(
            check_volume("io1", 8, Some(100), Some(125))
                .unwrap_err()
                .message,
            "throughput can only be specified for volumeType gp3."
        );
    }

    #[test]
    fn devices_show_attached_in_force_root_first() {
        let mut instance = fixtures::instance();
        let planned = plan_volumes(
            "/dev/sda1",
            &[],
            &mappings(
                "BlockDeviceMapping.1.DeviceName=/dev/sdf&BlockDeviceMapping.1.Ebs.VolumeSize=5",
            )
            .unwrap(),
            |_| None,
        )
        .unwrap();
        let volumes: Vec<Arc<Volume>> = volumes_for(
            &instance,
            &planned,
            &Default::default(),
            crate::model::now(),
        )
        .into_iter()
        .rev()
        .map(Arc::new)
        .collect();
        assert_eq!(
            volumes[1].spec.root_of.as_deref(),
            Some(instance.metadata.name.as_str())
        );
        let shown = attached_devices(&instance, &volumes);
        assert_eq!(shown.len(), 2);
        assert_eq!(
            (shown[0].device_name, shown[0].status),
            ("/dev/sda1", "attaching")
        );
        assert_eq!(
            (shown[1].device_name, shown[1].status),
            ("/dev/sdf", "attaching")
        );
        instance.status.container = Some(ContainerObservation {
            id: "c".into(),
            state: "running".into(),
            ip_address: None,
            ports: Vec::new(),
        });
        instance.status.volumes = vec![MountedVolume {
            volume_id: volumes[0].metadata.name.clone(),
            device: "/dev/sdf".into(),
            mount_point: "/mnt/sdf".into(),
        }];
        let shown = attached_devices(&instance, &volumes);
        assert!(shown.iter().all(|d| d.status == "attached"));
        instance.spec.desired = DesiredState::Terminated;
        assert!(attached_devices(&instance, &volumes).is_empty());
    }
}
