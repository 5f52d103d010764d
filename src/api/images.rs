//! AMIs as a region sees them (the account's own: CreateImage/CopyImage records of the region and AMIs discovered from Docker tags; and the public catalogue), and the Docker image an AMI launches from.

use std::collections::{BTreeMap, HashSet};

use super::error::ApiError;
use super::render::ROOT_DEVICE_NAME;
use super::state::ApiState;
use crate::config::VmManager;
use crate::model::public_amis::{self, PUBLIC_AMIS};
use crate::model::{
    format_timestamp, Image, ImageBlockDevice, ImageId, ImageSource, ImageState, PublicAmi,
    StateReason, ACCOUNT_ID,
};

/// No tags: what a public AMI nobody backs carries.
static NO_TAGS: BTreeMap<String, String> = BTreeMap::new();

/// One AMI as DescribeImages and the other image actions see it. A pure function of what the
/// store holds (spec and status) and the static catalogue.
#[derive(Debug, Clone)]
pub enum Ami {
    /// The account's own: a CreateImage or CopyImage record of the region, or an AMI
    /// discovered from a `localstack-ec2/<name>:<id>` Docker tag.
    Own(Image),
    /// A public AMI of the catalogue; `backing` is the discovered Docker tag with its id, the
    /// image it launches from (none: it has no Docker image here).
    Public {
        /// The catalogue row.
        ami: &'static PublicAmi,
        /// The discovered AMI that backs it.
        backing: Option<Image>,
    },
}

impl Ami {
    /// `imageId`.
    pub fn id(&self) -> &str {
        match self {
            Self::Own(image) => &image.metadata.name,
            Self::Public { ami, .. } => ami.id,
        }
    }

    /// `name`.
    pub fn name(&self) -> &str {
        match self {
            Self::Own(image) => &image.spec.name,
            Self::Public { ami, .. } => ami.name,
        }
    }

    /// `description`.
    pub fn description(&self) -> Option<&str> {
        match self {
            Self::Own(image) => image.spec.description.as_deref(),
            Self::Public { ami, .. } => Some(ami.description),
        }
    }

    /// Whether the account owns it (its own records and Docker tags; never a public one).
    pub fn is_own(&self) -> bool {
        matches!(self, Self::Own(_))
    }

    /// The stored record or discovered AMI of an own AMI.
    pub fn own(&self) -> Option<&Image> {
        match self {
            Self::Own(image) => Some(image),
            Self::Public { .. } => None,
        }
    }

    /// `imageOwnerId`.
    pub fn owner_id(&self) -> &str {
        match self {
            Self::Own(_) => ACCOUNT_ID,
            Self::Public { ami, .. } => ami.owner_id,
        }
    }

    /// `imageOwnerAlias`.
    pub fn owner_alias(&self) -> Option<&str> {
        match self {
            Self::Own(_) => None,
            Self::Public { ami, .. } => ami.owner_alias,
        }
    }

    /// `imageLocation`: `<owner alias or id>/<name>`.
    pub fn location(&self) -> String {
        format!(
            "{}/{}",
            self.owner_alias().unwrap_or(self.owner_id()),
            self.name()
        )
    }

    /// `imageState`: a public AMI is always available (its Docker image, when it needs one,
    /// is checked at launch).
    pub fn state(&self) -> ImageState {
        match self {
            Self::Own(image) => image.display_state(),
            Self::Public { .. } => ImageState::Available,
        }
    }

    /// `stateReason`, shown for a failed AMI.
    pub fn state_reason(&self) -> Option<&StateReason> {
        match self {
            Self::Own(image) => image.status.state_reason.as_ref(),
            Self::Public { .. } => None,
        }
    }

    /// `isPublic`: the catalogue's, and own AMIs whose launch permission has the `all` group.
    pub fn is_public(&self) -> bool {
        match self {
            Self::Own(image) => image.spec.launch_permissions.public,
            Self::Public { .. } => true,
        }
    }

    /// Whether `account` may launch it by an explicit launch permission (or as its owner).
    pub fn shared_with(&self, account: &str) -> bool {
        match self {
            Self::Own(image) => {
                account == ACCOUNT_ID || image.spec.launch_permissions.user_ids.contains(account)
            }
            Self::Public { .. } => false,
        }
    }

    /// `architecture`: Docker's word mapped to EC2's for own AMIs.
    pub fn architecture(&self) -> &'static str {
        match self {
            Self::Own(image) => super::render::image_architecture(image),
            Self::Public { ami, .. } => ami.architecture,
        }
    }

    /// `creationDate`, as EC2 writes it (so the strings sort as the times do).
    pub fn creation_date(&self) -> String {
        match self {
            Self::Own(image) => format_timestamp(image.metadata.creation_timestamp),
            Self::Public { ami, .. } => ami.creation_date.to_string(),
        }
    }

    /// `deprecationTime`.
    pub fn deprecation_time(&self) -> Option<&'static str> {
        match self {
            Self::Own(_) => None,
            Self::Public { ami, .. } => ami.deprecation_time,
        }
    }

    /// Whether it is deprecated now (DescribeImages hides it unless asked).
    pub fn is_deprecated(&self, now: &str) -> bool {
        match self {
            Self::Own(_) => false,
            Self::Public { ami, .. } => ami.is_deprecated(now),
        }
    }

    /// `platform` (`windows`).
    pub fn platform(&self) -> Option<&'static str> {
        match self {
            Self::Own(_) => None,
            Self::Public { ami, .. } => ami.platform,
        }
    }

    /// `platformDetails`.
    pub fn platform_details(&self) -> &'static str {
        match self {
            Self::Own(_) => "Linux/UNIX",
            Self::Public { ami, .. } => ami.platform_details,
        }
    }

    /// `usageOperation`.
    pub fn usage_operation(&self) -> &'static str {
        match self {
            Self::Own(_) => "RunInstances",
            Self::Public { ami, .. } => ami.usage_operation,
        }
    }

    /// `rootDeviceName`.
    pub fn root_device_name(&self) -> &str {
        match self {
            Self::Own(image) => image
                .spec
                .root_device_name
                .as_deref()
                .unwrap_or(ROOT_DEVICE_NAME),
            Self::Public { ami, .. } => ami.root_device_name,
        }
    }

    /// The block device mapping: CreateImage's record of the instance's volumes and their
    /// snapshots, the catalogue's root volume for a public AMI; none for discovered AMIs,
    /// copies and AMIs recorded before volumes existed.
    pub fn block_devices(&self) -> Vec<ImageBlockDevice> {
        match self {
            Self::Own(image) => image.spec.block_devices.clone(),
            Self::Public { ami, .. } => vec![ImageBlockDevice {
                device_name: ami.root_device_name.to_string(),
                snapshot_id: Some(ami.snapshot_id.to_string()),
                volume_size_gib: ami.volume_size,
                volume_type: ami.volume_type.to_string(),
                delete_on_termination: true,
                iops: None,
                throughput: None,
                encrypted: false,
            }],
        }
    }

    /// `bootMode`.
    pub fn boot_mode(&self) -> Option<&str> {
        match self {
            Self::Own(image) => image.spec.boot_mode.as_deref(),
            Self::Public { ami, .. } => ami.boot_mode,
        }
    }

    /// `imdsSupport`.
    pub fn imds_support(&self) -> Option<&str> {
        match self {
            Self::Own(image) => image.spec.imds_support.as_deref(),
            Self::Public { ami, .. } => ami.imds_support,
        }
    }

    /// Its tags: an own AMI's; a public AMI's Docker backing's (`ec2_vm_manager=docker`).
    pub fn tags(&self) -> &BTreeMap<String, String> {
        match self {
            Self::Own(image) => &image.spec.tags,
            Self::Public {
                backing: Some(image),
                ..
            } => &image.spec.tags,
            Self::Public { backing: None, .. } => &NO_TAGS,
        }
    }

    /// `sourceInstanceId`: the instance CreateImage made it from.
    pub fn source_instance_id(&self) -> Option<&str> {
        match self {
            Self::Own(Image {
                spec:
                    crate::model::ImageSpec {
                        source: ImageSource::Commit { instance_id },
                        ..
                    },
                ..
            }) => Some(instance_id.as_str()),
            _ => None,
        }
    }

    /// `sourceImageId` and `sourceImageRegion`: the AMI CopyImage copied.
    pub fn copied_from(&self) -> Option<(&str, &str)> {
        match self {
            Self::Own(Image {
                spec:
                    crate::model::ImageSpec {
                        source:
                            ImageSource::Copy {
                                source_image_id,
                                source_region,
                                ..
                            },
                        ..
                    },
                ..
            }) => Some((source_image_id.as_str(), source_region.as_str())),
            _ => None,
        }
    }

    /// The Docker image it launches from: an own AMI's tag, a public AMI's backing tag.
    pub fn docker_reference(&self) -> Option<&str> {
        match self {
            Self::Own(image) => Some(&image.spec.reference),
            Self::Public { backing, .. } => backing.as_ref().map(|b| b.spec.reference.as_str()),
        }
    }
}

/// Looks an AMI up as the client in `region` sees it. A record (CreateImage, CopyImage)
/// belongs to its region, and once deregistered to none; any record hides the Docker tag of
/// its id from discovery (its own tag, or the tag a deregistration is removing). A public AMI
/// shows with the discovered tag of its id as its backing.
pub fn find_ami(state: &ApiState, region: &str, id: &ImageId) -> Result<Option<Ami>, ApiError> {
    let record = state.store.images().get(id.as_str())?;
    if let Some(image) = &record {
        if image.metadata.namespace == region && !image.spec.deregistered {
            return Ok(record.map(Ami::Own));
        }
    }
    let discovered = match record {
        Some(_) => None,
        None => state.store.catalog().get(id.as_str())?,
    };
    if state.public_amis {
        if let Some(ami) = public_amis::find(id.as_str()) {
            return Ok(Some(Ami::Public {
                ami,
                backing: discovered,
            }));
        }
    }
    Ok(discovered.map(Ami::Own))
}

/// Every AMI visible from `region`, one per id (see [`find_ami`]).
pub fn region_amis(state: &ApiState, region: &str) -> Result<Vec<Ami>, ApiError> {
    let records = state.store.images().list()?.objects;
    let recorded: HashSet<&str> = records.iter().map(|i| i.metadata.name.as_str()).collect();
    let mut discovered: BTreeMap<String, Image> = state
        .store
        .catalog()
        .list()?
        .objects
        .into_iter()
        .filter(|i| !recorded.contains(i.metadata.name.as_str()))
        .map(|i| (i.metadata.name.clone(), i))
        .collect();
    let mut amis = Vec::new();
    if state.public_amis {
        for ami in PUBLIC_AMIS {
            if recorded.contains(ami.id) {
                continue;
            }
            amis.push(Ami::Public {
                ami,
                backing: discovered.remove(ami.id),
            });
        }
    }
    amis.extend(discovered.into_values().map(Ami::Own));
    amis.extend(
        records
            .into_iter()
            .filter(|i| i.metadata.namespace == region && !i.spec.deregistered)
            .map(Ami::Own),
    );
    Ok(amis)
}

/// The AMIs the account owns in `region` (its records and discovered Docker tags, not the
/// public catalogue): the AMI names CreateImage and CopyImage must not reuse.
pub fn own_images(state: &ApiState, region: &str) -> Result<Vec<Image>, ApiError> {
    Ok(region_amis(state, region)?
        .into_iter()
        .filter_map(|ami| match ami {
            Ami::Own(image) => Some(image),
            Ami::Public { .. } => None,
        })
        .collect())
}

/// `AuthFailure` for an action only an AMI's owner may take (DeregisterImage, the image
/// attribute actions on a public AMI), worded as EC2 answers it.
pub fn not_authorized(id: &str) -> ApiError {
    ApiError::client("AuthFailure", format!("Not authorized for image:{id}"))
}

/// `InvalidAMIID.NotFound` for a public AMI that has no Docker image in `docker` mode, with
/// EC2's message followed by how to give it one.
pub fn unbacked(ami: &PublicAmi) -> ApiError {
    ApiError::client(
        "InvalidAMIID.NotFound",
        format!(
            "The image id '[{id}]' does not exist: it is a public AMI of ec2d's catalogue with no \
             Docker image behind it; back it with `docker tag <image> {tag}`",
            id = ami.id,
            tag = ami.docker_tag(),
        ),
    )
}

/// Whether instances of AMI `id` must use IMDSv2 by default (`imdsSupport` `v2.0`: EC2 then
/// launches them with `HttpTokens=required` and a hop limit of 2 unless the launch says otherwise).
pub fn requires_imds_v2(state: &ApiState, region: &str, id: &ImageId) -> Result<bool, ApiError> {
    Ok(find_ami(state, region, id)?.is_some_and(|ami| ami.imds_support() == Some("v2.0")))
}

/// The Docker image AMI `id` launches from, from the store only. In `docker` mode the AMI
/// must be visible and available, and a public AMI backed by a Docker tag; in `mock` mode an
/// AMI that is not known launches too (its id stands for the image).
pub fn launch_reference(state: &ApiState, region: &str, id: &ImageId) -> Result<String, ApiError> {
    let ami = find_ami(state, region, id)?;
    match state.vm_manager {
        VmManager::Docker => match &ami {
            Some(Ami::Public {
                ami: public,
                backing: None,
            }) => Err(unbacked(public)),
            Some(ami) if ami.state() == ImageState::Available => Ok(ami
                .docker_reference()
                .expect("an own or backed AMI has a reference")
                .to_string()),
            _ => Err(ApiError::images_not_found(&[id.to_string()])),
        },
        VmManager::Mock => Ok(ami
            .as_ref()
            .and_then(Ami::docker_reference)
            .map_or_else(|| id.to_string(), str::to_string)),
    }
}
