//! The Image kind: AMIs, either discovered from Docker tags or made by CreateImage (docker commit) and CopyImage (docker tag).

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ids::{ImageId, InstanceId};
use super::meta::{ErrorRecord, Object, StateReason};

/// An AMI document.
pub type Image = Object<ImageSpec, ImageStatus>;

/// The kind name stored in `kind`.
pub const IMAGE_KIND: &str = "Image";

/// The namespace of AMIs discovered from Docker tags (and of the records that deregister
/// them): not a region, as they are visible from every region.
pub const DISCOVERED_NAMESPACE: &str = "*";

/// The AMI's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// The AMI name (`Name`).
    pub name: String,
    /// `Description`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the image comes from.
    pub source: ImageSource,
    /// The Docker image reference of the AMI: `localstack-ec2/<name>:<ami id>`.
    pub reference: String,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// DeregisterImage asked for the AMI to be gone: it is hidden at once, and the reconciler
    /// removes its Docker tag and then the record.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deregistered: bool,
    /// Who may launch it besides the owner (ModifyImageAttribute's `launchPermission`).
    #[serde(default, skip_serializing_if = "LaunchPermissions::is_empty")]
    pub launch_permissions: LaunchPermissions,
    /// `bootMode`, inherited from the AMI it was made from (`uefi`, `legacy-bios`,
    /// `uefi-preferred`); Docker images have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<String>,
    /// `imdsSupport` (`v2.0`), set by ModifyImageAttribute; it cannot be unset, as in EC2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imds_support: Option<String>,
    /// The block device mapping CreateImage recorded: one entry per volume attached to the
    /// instance in force, each with the snapshot made of it. Empty for AMIs recorded before
    /// volumes existed, discovered AMIs and copies (they show the derived root device).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_devices: Vec<ImageBlockDevice>,
    /// `rootDeviceName`: the root device of the instance CreateImage imaged (`/dev/sda1` when
    /// none is recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_name: Option<String>,
}

/// One entry of an AMI's block device mapping: an EBS volume made from a snapshot at launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageBlockDevice {
    /// `deviceName` (`/dev/sda1`, `/dev/sdf`).
    pub device_name: String,
    /// `ebs.snapshotId`: the snapshot the launch's volume is made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// `ebs.volumeSize`, GiB.
    pub volume_size_gib: u32,
    /// `ebs.volumeType`.
    pub volume_type: String,
    /// `ebs.deleteOnTermination`.
    #[serde(default)]
    pub delete_on_termination: bool,
    /// `ebs.iops`, when provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<u32>,
    /// `ebs.throughput`, when provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<u32>,
    /// `ebs.encrypted`.
    #[serde(default)]
    pub encrypted: bool,
}

impl ImageSpec {
    /// A spec with no description, tags or attributes.
    pub fn new(name: impl Into<String>, source: ImageSource, reference: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: None,
            source,
            reference: reference.into(),
            tags: BTreeMap::new(),
            deregistered: false,
            launch_permissions: LaunchPermissions::default(),
            boot_mode: None,
            imds_support: None,
            block_devices: Vec::new(),
            root_device_name: None,
        }
    }
}

/// An AMI's launch permissions beyond its owner's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaunchPermissions {
    /// The `all` group: the AMI is public.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
    /// Accounts it is shared with.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub user_ids: BTreeSet<String>,
}

impl LaunchPermissions {
    /// Neither public nor shared.
    pub fn is_empty(&self) -> bool {
        !self.public && self.user_ids.is_empty()
    }
}

/// Where an AMI comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ImageSource {
    /// A Docker image the user tagged `localstack-ec2/<name>:<ami id>`; observed, never written by the API.
    Docker,
    /// CreateImage: commit the instance's container.
    Commit {
        /// The instance whose container is committed.
        #[serde(rename = "instanceId")]
        instance_id: InstanceId,
    },
    /// CopyImage: tag the source AMI's Docker image with the new AMI's reference.
    #[serde(rename_all = "camelCase")]
    Copy {
        /// The AMI copied.
        source_image_id: ImageId,
        /// The region it was copied from.
        source_region: String,
        /// The Docker image of the source AMI, resolved when the copy was asked for.
        source_reference: String,
        /// The request's `ClientToken`: a retry with it answers this AMI (the store indexes
        /// it per region, `images.client-tokens`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_token: Option<String>,
    },
}

/// EC2's image states that ec2d uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ImageState {
    /// Being committed.
    Pending,
    /// Ready to launch.
    Available,
    /// The commit could not be made; see the state reason.
    Failed,
    /// DeregisterImage was acknowledged: no commit or copy will run for it any more. The
    /// record waits for its Docker tags to go, then is collected; clients never see it.
    Deregistered,
}

impl ImageState {
    /// EC2's state name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Available => "available",
            Self::Failed => "failed",
            Self::Deregistered => "deregistered",
        }
    }
}

/// What the reconciler observed of the AMI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStatus {
    /// The spec generation this status describes.
    pub observed_generation: u64,
    /// `None` until the reconciler first acted; shown as `pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ImageState>,
    /// Why the image failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<StateReason>,
    /// Docker's image id (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image_id: Option<String>,
    /// Image size in bytes, as Docker reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// Docker's architecture word (`amd64`, `arm64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// The last reconcile error, kept until a reconcile succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorRecord>,
}

impl Image {
    /// The state a client sees (pending until the reconciler says otherwise; deregistered at
    /// once when DeregisterImage asked for it).
    pub fn display_state(&self) -> ImageState {
        if self.spec.deregistered {
            return ImageState::Deregistered;
        }
        self.status.state.unwrap_or(ImageState::Pending)
    }
}

/// Turns an AMI name into a valid Docker repository component: lower-case, and runs of
/// characters Docker refuses replaced by `-`. EC2 names allow spaces, capitals and `()[]'@`.
pub fn docker_repository_name(ami_name: &str) -> String {
    let mut out = String::with_capacity(ami_name.len());
    for c in ami_name.chars() {
        let c = c.to_ascii_lowercase();
        let ok = c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/');
        let c = if ok { c } else { '-' };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let trimmed = out.trim_matches(|c| matches!(c, '.' | '_' | '-' | '/'));
    if trimmed.is_empty() {
        "image".to_string()
    } else {
        trimmed.replace("//", "/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_are_docker_safe() {
        assert_eq!(docker_repository_name("my-snap"), "my-snap");
        assert_eq!(docker_repository_name("My Snap (v2)"), "my-snap-v2");
        assert_eq!(docker_repository_name("team/app"), "team/app");
        assert_eq!(docker_repository_name("@@@"), "image");
    }
}
