//! The Instance kind: desired state (spec) and observed state (status) of one EC2 instance.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::iam::IamProfileRef;
use super::ids::{ImageId, ReservationId};
use super::instance_options::InstanceOptions;
use super::meta::{ErrorRecord, Object, StateReason};
use super::state::{DesiredState, InstanceState};
use super::Timestamp;

/// An EC2 instance document.
pub type Instance = Object<InstanceSpec, InstanceStatus>;

/// The kind name stored in `kind`.
pub const INSTANCE_KIND: &str = "Instance";

/// What the user asked for. Written only by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSpec {
    /// The AMI the instance was launched from.
    pub image_id: ImageId,
    /// The container image reference resolved from the AMI at launch (`localstack-ec2/<name>:<ami>`).
    pub image_ref: String,
    /// E.g. `t3.micro`; its vCPUs and memory become the container's limits (unless off).
    pub instance_type: String,
    /// Running, stopped or terminated.
    pub desired: DesiredState,
    /// The reservation shared by the instances of one RunInstances call.
    pub reservation_id: ReservationId,
    /// The instance's index within its reservation.
    pub ami_launch_index: u32,
    /// The availability zone (`Placement.AvailabilityZone`).
    pub availability_zone: String,
    /// What an OS-initiated shutdown does: `stop` (EC2's default) or `terminate`.
    #[serde(default)]
    pub shutdown_behavior: ShutdownBehavior,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `KeyName`, when the instance was launched with a key pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// The key pair's OpenSSH public key, copied at launch so later key changes do not alter the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// `UserData`, base64-encoded as on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// The security groups the instance was launched in.
    #[serde(default)]
    pub security_groups: Vec<GroupRef>,
    /// Ports published on the host, fixed at launch from the groups' ingress rules (22/tcp always).
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// `SubnetId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// `VpcId` of the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// The private IPv4 address the API allocated from the subnet at launch (written with the
    /// instance, so a crash never leaks or duplicates one); the container gets it on its VPC's
    /// Docker network and keeps it across stop, start and reboot. `None` in records from before
    /// VPC networks, and with `EC2D_VPC_NETWORKS=0` (the engine's bridge address is shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// `ClientToken`, for RunInstances idempotency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// When the user last asked for a stop or terminate, for `StateTransitionReason`.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub user_transition_at: Option<Timestamp>,
    /// How many reboots RebootInstances asked for. A reboot leaves the instance `running`, so
    /// it is counted here and does not move `generation`; the reconciler restarts the
    /// container until `status.rebootsDone` catches up.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reboots_requested: u64,
    /// `DisableApiTermination`: TerminateInstances is refused while set.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_api_termination: bool,
    /// `DisableApiStop`: StopInstances is refused while set.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_api_stop: bool,
    /// The launch options EC2 records and shows (metadata, credits, monitoring, …).
    #[serde(default)]
    pub options: InstanceOptions,
    /// The IAM instance profile associated with the instance (RunInstances'
    /// `IamInstanceProfile`, AssociateIamInstanceProfile); its role's credentials are served
    /// by IMDS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<IamProfileRef>,
    /// The AMI's root device name at launch (`rootDeviceName`, the device of the root volume);
    /// `/dev/sda1` for instances recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_name: Option<String>,
    /// The description of the instance's primary network interface
    /// (ModifyNetworkInterfaceAttribute's `Description`); none reads as EC2's empty one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_description: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A security group an instance belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupRef {
    /// `sg-…`.
    pub group_id: String,
    /// The group's name.
    pub group_name: String,
}

/// Transport protocol of a published port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl PortProtocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A container port to publish on the host.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct PortSpec {
    /// The port inside the instance.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: PortProtocol,
}

/// The most ports one instance publishes (LocalStack's limit).
pub const MAX_PUBLISHED_PORTS: usize = 32;

/// A port as published by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// The port inside the instance.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: PortProtocol,
    /// The host address.
    pub host_ip: String,
    /// The host port.
    pub host_port: u16,
}

/// `InstanceInitiatedShutdownBehavior`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ShutdownBehavior {
    /// The instance becomes stopped.
    #[default]
    Stop,
    /// The instance becomes terminated.
    Terminate,
}

/// What the reconciler observed and did. Written only by the reconciler.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// The spec generation this status describes.
    pub observed_generation: u64,
    /// The last state the reconciler reached; `None` until the first reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<InstanceState>,
    /// EC2's `StateReason`, also where reconcile failures surface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<StateReason>,
    /// The generation at which the instance shut itself down while running was desired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_generation: Option<u64>,
    /// The backing container as last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerObservation>,
    /// The last reconcile error, kept until a reconcile succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorRecord>,
    /// The most recent state transitions, newest last (bounded).
    #[serde(default)]
    pub transitions: Vec<Transition>,
    /// `spec.rebootsRequested` as last carried out (by a restart, a fresh boot, or by the
    /// instance not being meant to run).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reboots_done: u64,
    /// Why the container is on Docker's default bridge rather than its VPC's network (the
    /// engine refused the VPC's block); the address shown is then the bridge's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_warning: Option<String>,
    /// Why attached volumes stay `attaching` while nothing ec2d does will change it (their
    /// mount point taken by another volume, outside `/mnt` of a running container, …), one
    /// line per volume; none when every ready volume is mounted or about to be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_warning: Option<String>,
    /// The volumes attached to the container as last observed (mounted at their mount
    /// points); an attachment the user asked for is `attached` once it is listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<super::volume::MountedVolume>,
    /// The engine the instance's container is on (its normalised endpoint), recorded when
    /// `EC2D_ENGINES` names several so the instance stays there whatever the configuration
    /// says later. None with one engine, and in records from before: an instance with a
    /// container is then on the default engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The copy of the instance's image onto its engine, while one is under way: the instance
    /// stays `pending` until its image is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_copy: Option<ImageCopy>,
}

/// An image being copied from one engine to another for an instance's boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageCopy {
    /// The image reference copied (`localstack-ec2/<name>:<ami>`).
    pub reference: String,
    /// The engine it is copied from.
    pub from: String,
    /// The engine it is copied to (the instance's).
    pub to: String,
    /// Bytes of the image's archive streamed so far.
    pub bytes_copied: u64,
    /// When the copy began.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub started_at: Timestamp,
}

/// How many transitions a status keeps.
pub const MAX_TRANSITIONS: usize = 10;

impl InstanceStatus {
    /// Whether the instance has ever reached `running`, read from what the status already
    /// records (no field of its own, so records of any age answer): a reached state that only
    /// follows running (`running`, `stopping`, `stopped`: an instance stops only once it ran,
    /// or shuts itself down from inside, which needs it running), a reboot carried out, or a
    /// transition to or from running in the kept history (the reconciler records `pending`
    /// again only from `running`, when a foreign container takes the name).
    pub fn has_reached_running(&self) -> bool {
        matches!(
            self.state,
            Some(InstanceState::Running | InstanceState::Stopping | InstanceState::Stopped)
        ) || self.reboots_done > 0
            || self
                .transitions
                .iter()
                .any(|t| t.to == InstanceState::Running || t.from == Some(InstanceState::Running))
    }

    /// Records a change of reached state (bounded history); a no-op when unchanged.
    pub fn record_transition(
        &mut self,
        to: InstanceState,
        reason: Option<&StateReason>,
        at: Timestamp,
    ) {
        if self.state == Some(to) {
            return;
        }
        self.transitions.push(Transition {
            from: self.state,
            to,
            reason: reason.map(|r| r.code.clone()),
            at,
        });
        if self.transitions.len() > MAX_TRANSITIONS {
            let excess = self.transitions.len() - MAX_TRANSITIONS;
            self.transitions.drain(..excess);
        }
        self.state = Some(to);
    }
}

/// One observed change of state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// The state before (absent for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<InstanceState>,
    /// The state reached.
    pub to: InstanceState,
    /// The `StateReason` code, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was observed.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: Timestamp,
}

/// The container backing an instance, as last observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerObservation {
    /// Docker's container id.
    pub id: String,
    /// Docker's state word: created, running, paused, exited, dead, …
    pub state: String,
    /// The container's address on its Docker network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// The ports the engine published on the host.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
}
