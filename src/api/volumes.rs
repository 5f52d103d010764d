//! What the volume actions share: how a volume shows (a pure function of its record, its instances' records and what they mount), device names, and EC2's type, size, IOPS and throughput rules.

use std::collections::HashMap;
use std::sync::Arc;

use super::error::ApiError;
use super::query::QueryParams;
use super::render::ROOT_DEVICE_NAME;
use super::state::ApiState;
use crate::model::volume::{attachment_in_force, is_being_deleted, VOLUME_TYPES};
use crate::model::{Instance, InstanceState, Timestamp, Volume, VolumeId};
use crate::store::StoreError;

/// A volume's `status` as DescribeVolumes shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeState {
    /// The data is not in place yet.
    Creating,
    /// Ready and attached nowhere.
    Available,
    /// Attached (or attaching, or detaching) somewhere.
    InUse,
    /// DeleteVolume asked for it, or its delete-on-termination instance ended.
    Deleting,
    /// The reconciler could not make or keep its data.
    Error,
}

impl VolumeState {
    /// EC2's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Available => "available",
            Self::InUse => "in-use",
            Self::Deleting => "deleting",
            Self::Error => "error",
        }
    }
}

/// An attachment's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentState {
    /// Asked for, not yet mounted.
    Attaching,
    /// Mounted in the instance's container.
    Attached,
    /// No longer asked for, still mounted.
    Detaching,
}

impl AttachmentState {
    /// EC2's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Attaching => "attaching",
            Self::Attached => "attached",
            Self::Detaching => "detaching",
        }
    }
}

/// One item of a volume's `attachmentSet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownAttachment {
    /// The instance.
    pub instance_id: String,
    /// The device, as the user named it (or as the instance mounts it, when detaching).
    pub device: String,
    /// Its status.
    pub state: AttachmentState,
    /// When AttachVolume asked for it; unknown for a detaching mount the spec no longer names.
    pub attach_time: Option<Timestamp>,
    /// `deleteOnTermination`.
    pub delete_on_termination: bool,
}

/// A volume as clients see it.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The record (shared with the store's decode cache).
    pub volume: Arc<Volume>,
    /// Its `status`.
    pub state: VolumeState,
    /// Its `attachmentSet`.
    pub attachments: Vec<ShownAttachment>,
}

/// Whether an instance has (or had, since it stopped) a container: a root volume's data is
/// that container's file system, so it is ready and attached from then on.
fn has_container(instance: &Instance) -> bool {
    instance.status.container.is_some()
        || matches!(
            instance.status.state,
            Some(InstanceState::Running | InstanceState::Stopped)
        )
}

/// How `volume` shows, given a way to look instances up and the `(instance, device)` pairs
/// whose instance status lists it as mounted. Pure: the same records always show the same.
pub fn show<I>(
    volume: Arc<Volume>,
    instance: impl Fn(&str) -> Option<I>,
    mounted_on: &[(String, String)],
) -> Shown
where
    I: std::ops::Deref<Target = Instance>,
{
    let mut attachments = Vec::new();
    for a in &volume.spec.attachments {
        let found = instance(&a.instance_id);
        if !attachment_in_force(found.as_deref()) {
            continue;
        }
        let attached = match (&volume.spec.root_of, found.as_deref()) {
            (Some(root_of), Some(i)) if *root_of == a.instance_id => has_container(i),
            _ => mounted_on.iter().any(|(id, _)| *id == a.instance_id),
        };
        attachments.push(ShownAttachment {
            instance_id: a.instance_id.clone(),
            device: a.device.clone(),
            state: if attached {
                AttachmentState::Attached
            } else {
                AttachmentState::Attaching
            },
            attach_time: Some(a.attach_time),
            delete_on_termination: a.delete_on_termination,
        });
    }
    // Still mounted where the spec no longer asks for it: the reconciler is unmounting.
    for (instance_id, device) in mounted_on {
        if !attachments.iter().any(|a| a.instance_id == *instance_id) {
            attachments.push(ShownAttachment {
                instance_id: instance_id.clone(),
                device: device.clone(),
                state: AttachmentState::Detaching,
                attach_time: None,
                delete_on_termination: false,
            });
        }
    }
    let ready = volume.status.ready
        || volume
            .spec
            .root_of
            .as_deref()
            .and_then(&instance)
            .is_some_and(|i| has_container(&i));
    let state = if is_being_deleted(&volume, &instance) {
        VolumeState::Deleting
    } else if volume.status.error.is_some() {
        VolumeState::Error
    } else if !ready {
        VolumeState::Creating
    } else if !attachments.is_empty() {
        VolumeState::InUse
    } else {
        VolumeState::Available
    };
    Shown {
        volume,
        state,
        attachments,
    }
}

/// What showing volumes reads besides the volumes: the region's instances and, per volume,
/// where an instance's container has it mounted.
pub struct World {
    instances: HashMap<String, Arc<Instance>>,
    mounted: HashMap<String, Vec<(String, String)>>,
}

impl World {
    /// Reads every instance once.
    pub fn read(state: &ApiState) -> Result<Self, ApiError> {
        let mut instances = HashMap::new();
        let mut mounted: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for i in state.store.instances().list_shared()?.objects {
            for m in &i.status.volumes {
                mounted
                    .entry(m.volume_id.clone())
                    .or_default()
                    .push((i.metadata.name.clone(), m.device.clone()));
            }
            instances.insert(i.metadata.name.clone(), i);
        }
        Ok(Self { instances, mounted })
    }

    /// An instance by id.
    pub fn instance(&self, id: &str) -> Option<Arc<Instance>> {
        self.instances.get(id).cloned()
    }

    /// How `volume` shows.
    pub fn show(&self, volume: Arc<Volume>) -> Shown {
        let mounted = self
            .mounted
            .get(&volume.metadata.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        show(volume, |id| self.instance(id), mounted)
    }

    /// The devices the live attachments of the region's other volumes take on `instance_id`.
    pub fn devices_in_use(
        &self,
        volumes: &[Arc<Volume>],
        instance_id: &str,
        except: &str,
    ) -> Vec<String> {
        volumes
            .iter()
            .filter(|v| v.metadata.name != except)
            .flat_map(|v| {
                crate::model::volume::live_attachments(v, |id| self.instance(id))
                    .filter(|a| a.instance_id == instance_id)
                    .map(|a| a.device.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Every volume record of `region`, those being deleted too.
pub fn in_region(state: &ApiState, region: &str) -> Result<Vec<Arc<Volume>>, ApiError> {
    Ok(state
        .store
        .volumes()
        .list_shared()?
        .objects
        .into_iter()
        .filter(|v| v.metadata.namespace == region)
        .collect())
}

/// The `InvalidVolume.NotFound` message EC2 gives for one id, and (unverified) for several.
pub fn not_found<S: std::fmt::Display>(ids: &[S]) -> ApiError {
    let joined = ids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    ApiError::client(
        "InvalidVolume.NotFound",
        format!("The volume '{joined}' does not exist."),
    )
}

/// Checks a volume id's shape (`InvalidVolumeID.Malformed`).
pub fn parse_id(id: &str) -> Result<String, ApiError> {
    VolumeId::parse(id)
        .map(|v| v.to_string())
        .map_err(|e| ApiError::client("InvalidVolumeID.Malformed", e.to_string()))
}

/// The required `VolumeId`, checked.
pub fn volume_id_param(params: &QueryParams) -> Result<String, ApiError> {
    parse_id(
        params
            .get("VolumeId")
            .ok_or_else(|| ApiError::missing_parameter("VolumeId"))?,
    )
}

/// The volume `id` of `region`, with the world it shows in.
pub fn load(state: &ApiState, region: &str, id: &str) -> Result<(Shown, World), ApiError> {
    let volume = state
        .store
        .volumes()
        .get_shared(id)?
        .filter(|v| v.metadata.namespace == region)
        .ok_or_else(|| not_found(&[id]))?;
    let world = World::read(state)?;
    Ok((world.show(volume), world))
}

/// Why a volume's compare-and-swap update stopped.
enum UpdateError {
    /// A guard refused, with EC2's error.
    Api(ApiError),
    /// The store failed (or the record vanished).
    Store(StoreError),
}

impl From<StoreError> for UpdateError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Changes the spec of volume `id` with a compare-and-swap loop: `change` runs on the latest
/// record each time (so its guards see what a concurrent request wrote) and returns whether
/// it changed anything; `bump` moves the generation (a change the reconciler acts on). A
/// record gone meanwhile is `InvalidVolume.NotFound`. Returns the record after.
pub fn update(
    state: &ApiState,
    id: &str,
    bump: bool,
    mut change: impl FnMut(&mut Volume) -> Result<bool, ApiError>,
) -> Result<Volume, ApiError> {
    let guarded = |v: &mut Volume| change(v).map_err(UpdateError::Api);
    let volumes = state.store.volumes();
    let result = if bump {
        volumes.update_spec(id, guarded)
    } else {
        volumes.update_spec_same_generation(id, guarded)
    };
    match result {
        Ok((_, after)) => Ok(after),
        Err(UpdateError::Api(e)) => Err(e),
        Err(UpdateError::Store(StoreError::NotFound { .. })) => Err(not_found(&[id])),
        Err(UpdateError::Store(e)) => Err(e.into()),
    }
}

/// A device name as it identifies an attachment point: `/dev/sdf` and `sdf` are one.
pub fn device_key(device: &str) -> &str {
    device.strip_prefix("/dev/").unwrap_or(device)
}

/// Whether `device` is a name EBS attaches as: `/dev/sd[a-z]`, `/dev/xvd[a-z]`,
/// `/dev/xvd[b-c][a-z]`, `/dev/hd[a-z]`, and the usual root names (`/dev/sda1`, `/dev/xvda1`);
/// the `/dev/` prefix may be left out, as EC2 accepts `xvdg`.
pub fn valid_device(device: &str) -> bool {
    let name = device_key(device);
    let letters = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase());
    if ["sda1", "xvda1"].contains(&name) {
        return true;
    }
    if let Some(rest) = name.strip_prefix("xvd") {
        return letters(rest, 1) || (letters(rest, 2) && matches!(rest.as_bytes()[0], b'b' | b'c'));
    }
    name.strip_prefix("sd")
        .or_else(|| name.strip_prefix("hd"))
        .is_some_and(|rest| letters(rest, 1))
}

/// Checks `device` for AttachVolume: a valid EBS name, free on the instance (the root device
/// and the other volumes' `taken` devices), with EC2's wording.
pub fn check_device(device: &str, taken: &[String]) -> Result<(), ApiError> {
    if !valid_device(device) {
        return Err(ApiError::invalid_value(format!(
            "Value ({device}) for parameter device is invalid. {device} is not a valid EBS device name."
        )));
    }
    let key = device_key(device);
    if key == device_key(ROOT_DEVICE_NAME) || taken.iter().any(|t| device_key(t) == key) {
        return Err(device_in_use(device));
    }
    Ok(())
}

/// EC2's error for a device another volume of the instance is attached at.
pub fn device_in_use(device: &str) -> ApiError {
    ApiError::invalid_value(format!(
        "Invalid value '{device}' for unixDevice. Attachment point {device} is already in use"
    ))
}

/// A volume's performance settings, checked against EC2's rules for its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Performance {
    /// GiB.
    pub size_gib: u32,
    /// One of [`VOLUME_TYPES`].
    pub volume_type: String,
    /// Provisioned IOPS (gp3, io1, io2).
    pub iops: Option<u32>,
    /// MiB/s (gp3).
    pub throughput: Option<u32>,
    /// io1/io2 only.
    pub multi_attach_enabled: bool,
}

/// EC2's size range for a volume type, GiB.
pub fn size_range(volume_type: &str) -> (u32, u32) {
    match volume_type {
        "io1" => (4, 16384),
        // Raised to 64 TiB (gp3 in September 2025).
        "io2" => (4, 65536),
        "gp3" => (1, 65536),
        "st1" | "sc1" => (125, 16384),
        "standard" => (1, 1024),
        _ => (1, 16384),
    }
}

/// `VolumeType`, checked.
pub fn check_type(volume_type: &str) -> Result<(), ApiError> {
    if VOLUME_TYPES.contains(&volume_type) {
        Ok(())
    } else {
        Err(ApiError::invalid_value(format!(
            "Value ({volume_type}) for parameter volumeType is invalid. Valid values: {}",
            VOLUME_TYPES.join(", ")
        )))
    }
}

/// A non-negative `u32` parameter; anything else is `InvalidParameterValue`.
pub fn u32_param(params: &QueryParams, name: &str) -> Result<Option<u32>, ApiError> {
    match params.int(name)? {
        None => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            ApiError::invalid_value(format!("Value ({n}) for parameter {name} is invalid."))
        }),
    }
}

impl Performance {
    /// Fills in what EC2 defaults (gp3's 3000 IOPS and 125 MiB/s) and checks the rules:
    /// the type's size range, IOPS where the type takes them (required for io1/io2) within
    /// the type's range and per-GiB ratio, throughput for gp3 only within 125 to 2000 MiB/s
    /// and 0.25 MiB/s per IOPS, multi-attach for io1/io2 only.
    pub fn checked(mut self) -> Result<Self, ApiError> {
        let t = self.volume_type.clone();
        check_type(&t)?;
        let (min, max) = size_range(&t);
        if self.size_gib < min {
            return Err(ApiError::invalid_value(format!(
                "The volume size is invalid for {t} volumes: {} GiB. {t} volumes must be at least {min} GiB in size.",
                self.size_gib
            )));
        }
        if self.size_gib > max {
            return Err(ApiError::invalid_value(format!(
                "Volume of {}GiB is too large for volume type {t}; maximum is {max}GiB",
                self.size_gib
            )));
        }
        let iops_rule = match t.as_str() {
            "io1" => Some((100, 64_000, 50)),
            "io2" => Some((100, 256_000, 1000)),
            "gp3" => Some((3000, 80_000, 500)),
            _ => None,
        };
        match (iops_rule, self.iops) {
            (None, Some(_)) => {
                return Err(ApiError::invalid_combination(format!(
                    "The parameter iops is not supported for {t} volumes."
                )))
            }
            (None, None) => {}
            (Some(_), None) if t == "gp3" => self.iops = Some(3000),
            (Some(_), None) => {
                return Err(ApiError::invalid_combination(format!(
                    "The parameter iops must be specified for {t} volumes."
                )))
            }
            (Some((low, high, ratio)), Some(iops)) => {
                if iops < low || iops > high {
                    return Err(ApiError::invalid_value(format!(
                        "Value ({iops}) for parameter iops is invalid. Expected a value between {low} and {high} for {t} volumes."
                    )));
                }
                // gp3's baseline 3000 is allowed at any size.
                let over = f64::from(iops) / f64::from(self.size_gib.max(1));
                if !(t == "gp3" && iops == 3000) && over > f64::from(ratio) {
                    return Err(ApiError::invalid_value(format!(
                        "Iops to volume size ratio of {over:.6} is too high; maximum is {ratio}"
                    )));
                }
            }
        }
        match (t.as_str(), self.throughput) {
            ("gp3", None) => self.throughput = Some(125),
            ("gp3", Some(mibs)) => {
                if !(125..=2000).contains(&mibs) {
                    return Err(ApiError::invalid_value(format!(
                        "Value ({mibs}) for parameter throughput is invalid. Expected a value between 125 and 2000."
                    )));
                }
                let iops = self.iops.unwrap_or(3000);
                let per_iops = f64::from(mibs) / f64::from(iops);
                if per_iops > 0.25 {
                    return Err(ApiError::invalid_value(format!(
                        "Throughput (MiBps) to iops ratio of {per_iops:.6} is too high; maximum is 0.250000 MiBps per iops."
                    )));
                }
            }
            (_, Some(_)) => {
                return Err(ApiError::invalid_combination(format!(
                    "The parameter throughput is not supported for {t} volumes."
                )))
            }
            (_, None) => {}
        }
        if self.multi_attach_enabled && !matches!(t.as_str(), "io1" | "io2") {
            return Err(ApiError::invalid_combination(
                "Multi-Attach is supported only for io1 and io2 volumes.",
            ));
        }
        Ok(self)
    }

    /// The IOPS a volume shows: its provisioned ones, or gp2's baseline (3 per GiB, 100 to
    /// 16000); none for the magnetic and HDD types.
    pub fn shown_iops(volume_type: &str, size_gib: u32, iops: Option<u32>) -> Option<u32> {
        match volume_type {
            "gp2" => Some(size_gib.saturating_mul(3).clamp(100, 16_000)),
            "standard" | "st1" | "sc1" => None,
            _ => iops,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;
    use crate::model::volume::MountedVolume;
    use crate::model::{ContainerObservation, DesiredState};

    fn volume(attached_to: Option<&str>) -> Volume {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let mut spec = fixtures::volume_spec("us-east-1a", "gp2", 8);
        if let Some(instance_id) = attached_to {
            fixtures::attach(&mut spec, instance_id, "/dev/sdf", false, now);
        }
        fixtures::volume_of("vol-0123456789abcdef0", spec, now)
    }

    fn shown(v: &Volume, i: &Instance) -> Shown {
        let mounted: Vec<(String, String)> = i
            .status
            .volumes
            .iter()
            .filter(|m| m.volume_id == v.metadata.name)
            .map(|m| (i.metadata.name.clone(), m.device.clone()))
            .collect();
        let id = i.metadata.name.clone();
        show(
            Arc::new(v.clone()),
            |x: &str| (x == id).then(|| Arc::new(i.clone())),
            &mounted,
        )
    }

    fn mounting(i: &mut Instance) {
        i.status.volumes = vec![MountedVolume {
            volume_id: "vol-0123456789abcdef0".into(),
            device: "/dev/sdf".into(),
            mount_point: "/mnt/sdf".into(),
        }];
    }

    #[test]
    fn the_state_table() {
        let mut inst = fixtures::instance();
        let id = inst.metadata.name.clone();

        let mut v = volume(None);
        assert_eq!(shown(&v, &inst).state, VolumeState::Creating);
        v.status.ready = true;
        assert_eq!(shown(&v, &inst).state, VolumeState::Available);
        v.status.error = Some("gone".into());
        assert_eq!(shown(&v, &inst).state, VolumeState::Error);
        v.metadata.deletion_timestamp = Some(time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(shown(&v, &inst).state, VolumeState::Deleting);

        // Attached: attaching until the instance mounts it, then attached.
        let mut v = volume(Some(&id));
        v.status.ready = true;
        let s = shown(&v, &inst);
        assert_eq!(s.state, VolumeState::InUse);
        assert_eq!(s.attachments[0].state, AttachmentState::Attaching);
        mounting(&mut inst);
        assert_eq!(
            shown(&v, &inst).attachments[0].state,
            AttachmentState::Attached
        );

        // Detached in the spec, still mounted: detaching, and still in use.
        let mut detached = volume(None);
        detached.status.ready = true;
        let s = shown(&detached, &inst);
        assert_eq!(s.state, VolumeState::InUse);
        assert_eq!(s.attachments.len(), 1);
        assert_eq!(s.attachments[0].state, AttachmentState::Detaching);
        assert_eq!(s.attachments[0].instance_id, id);
        inst.status.volumes.clear();
        assert_eq!(shown(&detached, &inst).state, VolumeState::Available);

        // The instance being terminated ends the attachment.
        inst.spec.desired = DesiredState::Terminated;
        let s = shown(&v, &inst);
        assert_eq!(s.state, VolumeState::Available);
        assert!(s.attachments.is_empty());
    }

    #[test]
    fn a_root_volume_is_ready_and_attached_once_its_instance_has_a_container() {
        let mut inst = fixtures::instance();
        let id = inst.metadata.name.clone();
        let mut v = volume(Some(&id));
        v.spec.root_of = Some(id.clone());
        v.spec.attachments[0].device = "/dev/sda1".into();
        let s = shown(&v, &inst);
        assert_eq!(s.state, VolumeState::Creating);
        assert_eq!(s.attachments[0].state, AttachmentState::Attaching);
        inst.status.container = Some(ContainerObservation {
            id: "c0ffee".into(),
            state: "running".into(),
            ip_address: None,
            ports: Vec::new(),
        });
        let s = shown(&v, &inst);
        assert_eq!(s.state, VolumeState::InUse);
        assert_eq!(s.attachments[0].state, AttachmentState::Attached);
        inst.status.container = None;
        inst.status.state = Some(InstanceState::Stopped);
        assert_eq!(shown(&v, &inst).state, VolumeState::InUse);
    }

    #[test]
    fn device_names() {
        for ok in [
            "/dev/sdf",
            "sdf",
            "/dev/xvdg",
            "xvdba",
            "/dev/sda1",
            "/dev/hdb",
        ] {
            assert!(valid_device(ok), "{ok}");
        }
        for bad in [
            "/dev/sdk1",
            "/dev/xvdeo",
            "",
            "/dev/",
            "/dev/sdF",
            "/dev/nvme1n1",
        ] {
            assert!(!valid_device(bad), "{bad}");
        }
        assert!(check_device("/dev/sdf", &["sdf".into()]).is_err());
        assert!(check_device("/dev/sda1", &[]).is_err(), "the root device");
        assert!(check_device("/dev/sdg", &["/dev/sdf".into()]).is_ok());
    }

    fn perf(t: &str, size: u32, iops: Option<u32>, throughput: Option<u32>) -> Performance {
        Performance {
            size_gib: size,
            volume_type: t.into(),
            iops,
            throughput,
            multi_attach_enabled: false,
        }
    }

    #[test]
    fn performance_rules() {
        let gp3 = perf("gp3", 8, None, None).checked().unwrap();
        assert_eq!((gp3.iops, gp3.throughput), (Some(3000), Some(125)));
        assert!(perf("gp2", 8, Some(300), None).checked().is_err());
        assert!(perf("io1", 8, None, None).checked().is_err());
        assert!(perf("io1", 10, Some(500), None).checked().is_ok());
        assert!(
            perf("io1", 10, Some(501), None).checked().is_err(),
            "50 per GiB"
        );
        assert!(
            perf("io1", 3, Some(100), None).checked().is_err(),
            "at least 4 GiB"
        );
        assert!(perf("gp3", 20, Some(15000), None).checked().is_err());
        assert!(perf("gp3", 100, Some(12000), Some(2001)).checked().is_err());
        assert!(perf("gp3", 100, Some(80001), None).checked().is_err());
        assert!(perf("gp3", 65536, None, None).checked().is_ok());
        assert!(perf("gp2", 16385, None, None).checked().is_err());
        assert!(perf("gp3", 100, Some(3000), Some(751)).checked().is_err());
        assert!(perf("gp3", 100, Some(4000), Some(1000)).checked().is_ok());
        assert!(perf("gp2", 8, None, Some(125)).checked().is_err());
        assert!(perf("st1", 100, None, None).checked().is_err());
        assert!(perf("standard", 1025, None, None).checked().is_err());
        assert!(perf("gp9", 8, None, None).checked().is_err());
        let mut multi = perf("gp2", 8, None, None);
        multi.multi_attach_enabled = true;
        assert!(multi.checked().is_err());
        assert_eq!(Performance::shown_iops("gp2", 8, None), Some(100));
        assert_eq!(Performance::shown_iops("gp2", 100, None), Some(300));
        assert_eq!(Performance::shown_iops("st1", 500, None), None);
    }
}
