//! The container runtime seam: the world the reconciler converges, in our own types (Docker via bollard, or a fake).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use serde::Serialize;

use crate::model::{ImageId, InstanceId, PortMapping, PortProtocol, Timestamp};

pub mod docker;
pub mod fake;
pub mod flags;
pub mod labels;

pub use docker::DockerRuntime;
pub use fake::FakeRuntime;
pub use flags::{DockerFlags, FlagError};

/// Errors from the container runtime, classified by what the reconciler should do about them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The container or image does not exist (Docker 404). Often success in disguise (removal).
    #[error("not found: {0}")]
    NotFound(String),
    /// The operation conflicts with the object's state (Docker 409, e.g. pausing a paused container).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The engine could not be reached or timed out; retry with backoff.
    #[error("container engine unavailable: {0}")]
    Unavailable(String),
    /// The instance's container name is held by a container ec2d does not own; ec2d leaves
    /// it alone, so the instance has no container until someone removes it.
    #[error("container name taken by a container ec2d does not own: {0}")]
    NameTaken(String),
    /// The engine refused the operation for a reason retrying will not fix (bad image, bad config).
    #[error("container engine error: {0}")]
    Failed(String),
}

impl RuntimeError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Conflict(_))
    }
}

/// Result alias for runtime calls.
pub type RuntimeResult<T> = Result<T, RuntimeError>;

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Frozen by `docker pause`.
    Paused,
    /// Restarting by restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Its main process ended.
    Exited,
    /// Failed to stop or remove.
    Dead,
}

impl ContainerState {
    /// Docker's word for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }

    /// Parses Docker's word; unknown words read as `Dead` so they are never mistaken for healthy.
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "exited" => Self::Exited,
            _ => Self::Dead,
        }
    }
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as Docker writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

// The model's port words and the engine's are the same two; these keep the two vocabularies
// apart (the model never imports the runtime) without a hand-written match at every crossing.
impl From<PortProtocol> for Protocol {
    fn from(protocol: PortProtocol) -> Self {
        match protocol {
            PortProtocol::Tcp => Self::Tcp,
            PortProtocol::Udp => Self::Udp,
        }
    }
}

impl From<Protocol> for PortProtocol {
    fn from(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Tcp => Self::Tcp,
            Protocol::Udp => Self::Udp,
        }
    }
}

/// A container port to publish on the host's loopback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PortRequest {
    /// The port inside the container.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The host port to use; `None` lets the engine choose a free one.
    pub host_port: Option<u16>,
}

/// A port the engine actually published.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PublishedPort {
    /// The port inside the container.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The host address it is bound to.
    pub host_ip: String,
    /// The host port.
    pub host_port: u16,
}

impl From<&PortMapping> for PublishedPort {
    fn from(port: &PortMapping) -> Self {
        Self {
            container_port: port.container_port,
            protocol: port.protocol.into(),
            host_ip: port.host_ip.clone(),
            host_port: port.host_port,
        }
    }
}

impl From<&PublishedPort> for PortMapping {
    fn from(port: &PublishedPort) -> Self {
        Self {
            container_port: port.container_port,
            protocol: port.protocol.into(),
            host_ip: port.host_ip.clone(),
            host_port: port.host_port,
        }
    }
}

/// Everything needed to create one instance container. The reconciler decides the policy
/// (command, init, mounts); the runtime only carries it out.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ContainerSpec {
    /// The container name, `localstack-ec2.<InstanceId>`.
    pub name: String,
    /// The instance the container belongs to; becomes the owner label.
    pub instance_id: Option<InstanceId>,
    /// The image reference to run.
    pub image: String,
    /// Overrides the image's entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    /// Overrides the image's command when set.
    pub cmd: Option<Vec<String>>,
    /// `KEY=value` environment entries.
    pub env: Vec<String>,
    /// Extra labels; the runtime adds the owner labels itself.
    pub labels: BTreeMap<String, String>,
    /// Run with Docker's init as PID 1.
    pub init: bool,
    /// Bind mounts, `host:container[:mode]`.
    pub binds: Vec<String>,
    /// Ports to publish on 127.0.0.1.
    pub ports: Vec<PortRequest>,
    /// Hostname inside the container.
    pub hostname: Option<String>,
    /// The MAC address of the container's interface: the instance's, which the API and IMDS
    /// show. Set at creation (an engine re-joining a network later picks its own).
    pub mac_address: Option<String>,
    /// The CPU and memory limits the instance's type gives the container; `EC2_DOCKER_FLAGS`'
    /// `--cpus`/`--memory` win over them.
    pub limits: ResourceLimits,
    /// Extra `docker run` flags from `EC2_DOCKER_FLAGS`, applied on top of the above.
    pub flags: DockerFlags,
    /// The VPC network to join with the instance's private address; `None` is Docker's
    /// default bridge (or `EC2_DOCKER_FLAGS`' `--network`, which wins).
    pub network: Option<NetworkAttachment>,
    /// Docker volumes mounted at creation (`--mount type=volume`): attached EBS volumes when
    /// they cannot be mounted into the running container later.
    pub volume_mounts: Vec<VolumeMount>,
}

/// A Docker volume mounted in a container (`type=volume`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct VolumeMount {
    /// The Docker volume's name.
    pub name: String,
    /// Where it appears in the container.
    pub target: String,
}

/// A container's place on a VPC's network: the network's name and the fixed address the API
/// gave the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkAttachment {
    /// The Docker network's name.
    pub network: String,
    /// The instance's private IPv4 address on it.
    pub ipv4_address: String,
}

/// The bridge network ec2d asks for a VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSpec {
    /// The network's name ([`labels::network_name`]).
    pub name: String,
    /// The VPC's CIDR block, the network's one subnet.
    pub cidr: String,
    /// The VPC it backs; becomes the [`labels::VPC_ID`] label.
    pub vpc_id: String,
    /// The owning store; becomes the [`labels::STORE_ID`] label.
    pub store_id: String,
}

/// A network carrying ec2d's [`labels::VPC_ID`] label, as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedNetwork {
    /// Docker's network id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The VPC from its label.
    pub vpc_id: String,
    /// The owning store from its label.
    pub store_id: Option<String>,
    /// Its first IPv4 subnet.
    pub cidr: Option<String>,
}

/// Whose data a Docker volume of ec2d's holds: an EBS volume's or a snapshot's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum VolumeOwner {
    /// An EBS volume (`vol-…`), the [`labels::VOLUME_ID`] label.
    Volume(String),
    /// An EBS snapshot (`snap-…`), the [`labels::SNAPSHOT_ID`] label.
    Snapshot(String),
}

impl VolumeOwner {
    /// The `vol-` or `snap-` id.
    pub fn id(&self) -> &str {
        match self {
            Self::Volume(id) | Self::Snapshot(id) => id,
        }
    }
}

/// The Docker volume ec2d asks for (local driver).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerVolumeSpec {
    /// The volume's name ([`labels::volume_name`]).
    pub name: String,
    /// Whose data it holds; becomes its [`labels::VOLUME_ID`] or [`labels::SNAPSHOT_ID`] label.
    pub owner: VolumeOwner,
    /// The owning store; becomes the [`labels::STORE_ID`] label.
    pub store_id: String,
}

/// A Docker volume carrying ec2d's labels, as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedVolume {
    /// The volume's name (Docker's id for a volume).
    pub name: String,
    /// Whose data it holds, from its labels.
    pub owner: VolumeOwner,
    /// The owning store from its label.
    pub store_id: Option<String>,
    /// Where its data lives on the engine's host (`Mountpoint`).
    pub mountpoint: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// A container's CPU and memory limits; `None` is no limit (or, when asked of the runtime,
/// "leave this one as it is").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ResourceLimits {
    /// CPU quota in billionths of a CPU (`docker run --cpus 2` is 2e9).
    pub nano_cpus: Option<i64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<i64>,
}

impl ResourceLimits {
    /// Whether `observed` already has every limit set here (limits left `None` here are
    /// not asked for, so whatever the container has for them is fine).
    pub fn satisfied_by(&self, observed: &ResourceLimits) -> bool {
        let holds = |wanted: Option<i64>, seen: Option<i64>| wanted.is_none() || wanted == seen;
        holds(self.nano_cpus, observed.nano_cpus) && holds(self.memory_bytes, observed.memory_bytes)
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self.nano_cpus.is_none() && self.memory_bytes.is_none()
    }
}

/// The console output a container wrote after some moment (`docker logs`), bounded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ConsoleLog {
    /// Its stdout and stderr as they were interleaved, the last [`CONSOLE_LIMIT`] bytes at most.
    pub bytes: Vec<u8>,
    /// When the last line read was written (nanosecond precision); `None` when there was none.
    pub last_at: Option<Timestamp>,
    /// Lines written after that moment may be missing before these: the runtime reads only
    /// the log's last lines, so a very chatty container's earlier ones were skipped.
    pub cut: bool,
}

/// The most console output kept: EC2 returns only the most recent 64 KB.
pub const CONSOLE_LIMIT: usize = crate::model::console::CONSOLE_OUTPUT_LIMIT;

impl ConsoleLog {
    /// Adds a line written at `at`, dropping the oldest bytes beyond [`CONSOLE_LIMIT`] (in
    /// batches, so a long log is not shifted once per line).
    pub fn push(&mut self, line: &[u8], at: Option<Timestamp>) {
        self.bytes.extend_from_slice(line);
        if self.bytes.len() > 2 * CONSOLE_LIMIT {
            let excess = self.bytes.len() - CONSOLE_LIMIT;
            self.bytes.drain(..excess);
        }
        if at.is_some() {
            self.last_at = at;
        }
    }

    /// The log once read to its end: at most the last [`CONSOLE_LIMIT`] bytes.
    pub fn finish(mut self) -> Self {
        if self.bytes.len() > CONSOLE_LIMIT {
            let excess = self.bytes.len() - CONSOLE_LIMIT;
            self.bytes.drain(..excess);
        }
        self
    }
}

/// A container as observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedContainer {
    /// Docker's container id.
    pub id: String,
    /// The container name without Docker's leading `/`.
    pub name: String,
    /// The instance id from the owner label.
    pub instance_id: InstanceId,
    /// Its state.
    pub state: ContainerState,
    /// The main process' exit code once exited.
    pub exit_code: Option<i64>,
    /// Its address: the default bridge's, else the one on the `--network` it was created on,
    /// else the first network's by name; `None` without a network.
    pub ip_address: Option<String>,
    /// The image reference it was created from.
    pub image: String,
    /// Ports the engine published.
    pub ports: Vec<PublishedPort>,
    /// Labels on the container.
    pub labels: BTreeMap<String, String>,
    /// When the container's main process last started (ms precision). Only inspection knows
    /// the times: `list_managed` leaves both `None`.
    pub started_at: Option<Timestamp>,
    /// When the container's main process last ended; kept across a restart, as Docker does.
    pub finished_at: Option<Timestamp>,
    /// Its CPU and memory limits. Only inspection knows them: `list_managed` leaves `None`.
    pub limits: Option<ResourceLimits>,
    /// The networks it is attached to: name to Docker's network id. A name whose id is not the
    /// live network's is a network removed (and maybe re-created) behind the container's back.
    pub networks: BTreeMap<String, String>,
    /// The Docker volumes mounted in it. Only inspection knows them: `list_managed` leaves
    /// none.
    pub volume_mounts: Vec<VolumeMount>,
    /// Its bind mounts, `host:container[:mode]` as created. Only inspection knows them.
    pub binds: Vec<String>,
}

/// What a command run inside a container with [`ContainerRuntime::exec`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ExecOutput {
    /// The command's exit code; `None` when it had not finished by the runtime's deadline.
    pub exit_code: Option<i64>,
    /// Its stdout and stderr, interleaved as they arrived, cut at 64 KiB (invalid UTF-8 replaced).
    pub output: String,
}

/// An image's default command, from its config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ImageCommand {
    /// `ENTRYPOINT`; empty when the image has none.
    pub entrypoint: Vec<String>,
    /// `CMD`; empty when the image has none.
    pub cmd: Vec<String>,
}

/// A Docker image tagged `localstack-ec2/<AmiName>:<AmiId>`: an AMI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AmiImage {
    /// The AMI id from the tag.
    pub ami_id: ImageId,
    /// The AMI name from the repository.
    pub name: String,
    /// The full reference, `localstack-ec2/<name>:<ami>`.
    pub reference: String,
    /// Docker's image id.
    pub docker_id: String,
    /// When the image was created.
    pub created: Option<Timestamp>,
    /// Size in bytes.
    pub size_bytes: Option<i64>,
    /// Architecture word (`amd64`, `arm64`).
    pub architecture: Option<String>,
    /// The image's `ec2d.store-id` label ([`labels::STORE_ID`]): an image committed from an
    /// instance's container carries the container's labels, so this names the ec2d store
    /// whose CreateImage made it (`None` for an image the user built or pulled).
    pub store_id: Option<String>,
}

/// What the engine said about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineInfo {
    /// The engine's version (`20.10.24`).
    pub version: String,
    /// The API version negotiated with it.
    pub api_version: String,
    /// What its host lets a container be limited to; `None` when the engine did not say.
    pub host: Option<HostLimits>,
    /// The IPv4 gateway of the engine's default `bridge` network: the host's own address on
    /// it, which `--add-host <name>:host-gateway` resolves to inside a container; `None`
    /// when the engine did not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge_gateway: Option<std::net::Ipv4Addr>,
    /// The daemon's own id (`docker info`'s `ID`): one daemon reached through two endpoints
    /// answers the same id on both. `None` when the engine did not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_id: Option<String>,
}

/// What an engine's host lets a container's CPU and memory limits be (`docker info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostLimits {
    /// The host's CPU count (`NCPU`): the most a container's CPU quota may be.
    pub cpus: u32,
    /// Whether the engine can give a container a CPU quota (`CPUCfsQuota`; rootless Docker on
    /// cgroup v1 cannot, and refuses a container asking for one).
    pub cpu_quota: bool,
    /// Whether the engine can limit a container's memory (`MemoryLimit`).
    pub memory_limit: bool,
}

/// What the engine's event log says about how one run of a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SignalEvidence {
    /// The engine signalled the container during the run (`docker stop`, `docker kill`).
    Signalled,
    /// The log covers the whole run and holds no signal: the container's own process ended.
    NotSignalled,
    /// The log does not reach back to the run's start (the engine restarted, or its bounded
    /// log moved on), or could not be read.
    Unknown,
}

impl SignalEvidence {
    /// Judges a container's logged events (Docker's action word and time, in nanoseconds
    /// since the epoch) for the run from `started_at` to `finished_at`. The log covers the
    /// run only if it still holds the run's `start`; a `kill` inside the run is a signal.
    pub fn from_log<'a>(
        events: impl IntoIterator<Item = (&'a str, i128)>,
        started_at: Timestamp,
        finished_at: Timestamp,
    ) -> Self {
        // Times from inspection are cut to milliseconds and events are stamped a moment
        // after the fact, so the run's bounds get a little slack on each side.
        let start = started_at.unix_timestamp_nanos();
        let end = (finished_at + time::Duration::seconds(1)).unix_timestamp_nanos();
        let start_slack = time::Duration::seconds(1).whole_nanoseconds();
        let mut covered = false;
        for (action, at) in events {
            match action {
                "kill" if (start..=end).contains(&at) => return Self::Signalled,
                "start" | "restart" if (start - start_slack..=end).contains(&at) => covered = true,
                _ => {}
            }
        }
        if covered {
            Self::NotSignalled
        } else {
            Self::Unknown
        }
    }
}

/// How far one image copy ([`ContainerRuntime::copy_image_to`]) has got. Clones share one
/// record, so whoever started the copy (and a status page) can read it while the copy writes.
#[derive(Debug, Clone, Default)]
pub struct CopyProgress {
    shared: Arc<CopyCounters>,
}

#[derive(Debug, Default)]
struct CopyCounters {
    /// Bytes of the image's archive streamed to the target so far.
    bytes: AtomicU64,
    /// When the copy (its last attempt) began, in nanoseconds since the epoch; 0 before that.
    /// A number rather than a timestamp behind a lock, so a reader never waits on the copy.
    started_at_nanos: AtomicI64,
}

impl CopyProgress {
    /// Bytes streamed to the target so far.
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// When the copy began; `None` before it has.
    pub fn started_at(&self) -> Option<Timestamp> {
        match self.shared.started_at_nanos.load(Ordering::Relaxed) {
            0 => None,
            nanos => Timestamp::from_unix_timestamp_nanos(i128::from(nanos)).ok(),
        }
    }

    /// Marks the start of an attempt: now, no bytes yet (a retry reusing the record starts
    /// over, as its archive does).
    pub(crate) fn begin(&self) {
        let now = crate::model::now().unix_timestamp_nanos();
        self.shared.bytes.store(0, Ordering::Relaxed);
        self.shared
            .started_at_nanos
            .store(i64::try_from(now).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Counts `bytes` more streamed.
    pub(crate) fn add(&self, bytes: u64) {
        self.shared.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Something changed in the engine; the controller maps it to keys to reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeEvent {
    /// A container carrying our owner label changed (`action` is Docker's word: die, pause, destroy…).
    Container {
        /// The owning instance.
        instance_id: InstanceId,
        /// Docker's action word.
        action: String,
    },
    /// An image was tagged, untagged, deleted, committed, imported or loaded.
    Image {
        /// Docker's action word.
        action: String,
    },
    /// A network changed (`action`: connect, disconnect, destroy, create); ec2d's own networks
    /// are the ones named by [`labels::network_name`].
    Network {
        /// The network's name.
        name: String,
        /// Docker's action word.
        action: String,
    },
    /// A Docker volume was removed (`destroy`); ec2d's own volumes are the ones named by
    /// [`labels::volume_name`] (volume events carry no labels).
    Volume {
        /// The volume's name.
        name: String,
        /// Docker's action word.
        action: String,
    },
    /// The event stream was lost (the engine stopped, restarted or dropped the connection):
    /// said once per gap, before the resubscription is retried, so whoever watches the engine
    /// can look at it at once rather than at its next scheduled check.
    Interrupted,
    /// The event stream was re-established after a gap: events may have been missed.
    Resubscribed,
}

/// The operations ec2d needs from a container engine, in our own types so no bollard type
/// crosses this seam and the fake needs no Docker models.
///
/// Every method is idempotent-friendly: `NotFound` and `Conflict` tell the reconciler that
/// the world is already where it wanted it, or moved, and it re-observes on the next pass.
/// Runtimes are cheap handles: a clone drives the same engine (a reconcile on another engine
/// takes a clone of that engine's runtime).
pub trait ContainerRuntime: Clone + Send + Sync + 'static {
    /// Pings the engine and returns its version.
    fn info(&self) -> impl Future<Output = RuntimeResult<EngineInfo>> + Send;
    /// All containers carrying our owner label, in any state.
    fn list_managed(&self) -> impl Future<Output = RuntimeResult<Vec<ObservedContainer>>> + Send;
    /// The container of one instance, found by name and checked against the owner label.
    fn inspect_instance(
        &self,
        instance_id: &InstanceId,
    ) -> impl Future<Output = RuntimeResult<Option<ObservedContainer>>> + Send;
    /// Creates and starts a container; returns its id.
    fn create_and_start(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = RuntimeResult<String>> + Send;
    /// Starts a created or exited container.
    fn start(&self, container_id: &str) -> impl Future<Output = RuntimeResult<()>> + Send;
    /// Freezes a running container.
    fn pause(&self, container_id: &str) -> impl Future<Output = RuntimeResult<()>> + Send;
    /// Thaws a paused container.
    fn unpause(&self, container_id: &str) -> impl Future<Output = RuntimeResult<()>> + Send;
    /// Stops a container, killing it after `grace`.
    fn stop(
        &self,
        container_id: &str,
        grace: Duration,
    ) -> impl Future<Output = RuntimeResult<()>> + Send;
    /// Restarts a container in place (stop, killing it after `grace`, then start): same
    /// container, file system and published ports.
    fn restart(
        &self,
        container_id: &str,
        grace: Duration,
    ) -> impl Future<Output = RuntimeResult<()>> + Send;
    /// Changes a container's CPU and memory limits in place (`docker update`), in any state but
    /// removed; limits left `None` are left as they are.
    fn update_limits(
        &self,
        container_id: &str,
        limits: ResourceLimits,
    ) -> impl Future<Output = RuntimeResult<()>> + Send;
    /// The container's console output (stdout and stderr, `docker logs`) written after
    /// `after`, or all of it, keeping the last [`CONSOLE_LIMIT`] bytes.
    fn console_log(
        &self,
        container_id: &str,
        after: Option<Timestamp>,
    ) -> impl Future<Output = RuntimeResult<ConsoleLog>> + Send;
    /// Removes a container (forcefully) with its anonymous volumes.
    fn remove(&self, container_id: &str) -> impl Future<Output = RuntimeResult<()>> + Send;
    /// Commits a container into `repository:tag`; returns the new image's id.
    fn commit(
        &self,
        container_id: &str,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = RuntimeResult<String>> + Send;
    /// Tags the existing image `source` as `repository:tag`; returns the image's id.
    fn tag_image(
        &self,
        source: &str,
        repository: &str,
        tag: &str,
    ) -> impl Future<Output = RuntimeResult<String>> + Send;
    /// Removes the tag `reference`, as `docker rmi` without force and keeping untagged
    /// parents: the engine deletes the image with its last tag unless a container (of any
    /// state) uses it, which is a `Conflict`; a missing tag is `NotFound`.
    fn remove_image_tag(&self, reference: &str) -> impl Future<Output = RuntimeResult<()>> + Send;
    /// All images tagged `localstack-ec2/<AmiName>:<AmiId>` with a well-formed AMI id.
    fn list_amis(&self) -> impl Future<Output = RuntimeResult<Vec<AmiImage>>> + Send;
    /// Whether an image reference exists locally.
    fn image_exists(&self, reference: &str) -> impl Future<Output = RuntimeResult<bool>> + Send;
    /// Runs `cmd` as root inside a running container and waits for it to finish (bounded by a
    /// runtime deadline, after which `exit_code` is `None`). A stopped or paused container is a
    /// `Conflict`, a missing one `NotFound`.
    fn exec(
        &self,
        container_id: &str,
        cmd: Vec<String>,
    ) -> impl Future<Output = RuntimeResult<ExecOutput>> + Send;
    /// The image's entrypoint and command; `None` when the image does not exist.
    fn image_command(
        &self,
        reference: &str,
    ) -> impl Future<Output = RuntimeResult<Option<ImageCommand>>> + Send;
    /// Asks the engine's event log whether a container's run (from `started_at` to
    /// `finished_at`) ended because the engine signalled it. Answers `Unknown` rather than
    /// guess when the log does not cover the run.
    fn signal_evidence(
        &self,
        container_id: &str,
        started_at: Timestamp,
        finished_at: Timestamp,
    ) -> impl Future<Output = RuntimeResult<SignalEvidence>> + Send;
    /// Networks carrying ec2d's [`labels::VPC_ID`] label (any store's).
    fn list_networks(&self) -> impl Future<Output = RuntimeResult<Vec<ObservedNetwork>>> + Send;
    /// Creates a labelled bridge network; returns its id. `Failed` when the engine (or the
    /// host's routes) refuse its block: it overlaps a network that exists.
    fn create_network(
        &self,
        spec: &NetworkSpec,
    ) -> impl Future<Output = RuntimeResult<String>> + Send;
    /// Removes a network; `Conflict` while a running container is attached, `NotFound` when gone.
    fn remove_network(&self, network_id: &str) -> impl Future<Output = RuntimeResult<()>> + Send;
    /// Attaches a container to a network with a fixed address (replacing a stale attachment of
    /// the same name, one to a network since removed).
    fn connect_network(
        &self,
        container_id: &str,
        attachment: &NetworkAttachment,
    ) -> impl Future<Output = RuntimeResult<()>> + Send;
    /// Docker volumes carrying ec2d's [`labels::VOLUME_ID`] or [`labels::SNAPSHOT_ID`] label
    /// (any store's), with their `Mountpoint`. Unlabelled volumes are never listed.
    fn list_volumes(&self) -> impl Future<Output = RuntimeResult<Vec<ObservedVolume>>> + Send;
    /// Creates a labelled volume with the local driver; returns it as observed (with its
    /// `Mountpoint`). Creating a volume that exists with ec2d's labels returns it as it is.
    fn create_volume(
        &self,
        spec: &DockerVolumeSpec,
    ) -> impl Future<Output = RuntimeResult<ObservedVolume>> + Send;
    /// Removes one of ec2d's volumes; `NotFound` when gone, `Conflict` while a container
    /// uses it, `Failed` for a volume without ec2d's labels (left alone).
    fn remove_volume(&self, name: &str) -> impl Future<Output = RuntimeResult<()>> + Send;
    /// Copies every file of ec2d's volume `from` into ec2d's volume `to`, through the engine
    /// only (no host paths, so a remote engine works too); returns the bytes of file data
    /// copied. Files already in `to` are overwritten or kept, never deleted: copy into an empty
    /// volume for an exact copy. A copy that fails part way leaves `to` partly written.
    fn copy_volume_data(
        &self,
        from: &str,
        to: &str,
    ) -> impl Future<Output = RuntimeResult<u64>> + Send;
    /// Removes the helper containers of copies that are not running in this process any more
    /// (left by a crash) whose target volume's name begins with `volume_prefix`; returns how
    /// many were removed.
    fn remove_volume_helpers(
        &self,
        volume_prefix: &str,
    ) -> impl Future<Output = RuntimeResult<usize>> + Send;
    /// Copies the image `reference` names from this engine to `target`, streamed, as
    /// `docker save reference | docker -H target load` would: the image keeps its id, its
    /// labels and the tag `reference` names (a tag `target` already had moves to it).
    /// `progress` is updated as the archive streams; returns the archive's bytes.
    ///
    /// `NotFound` when this engine has no `reference`; `Unavailable` when either engine cannot
    /// be reached (or stops answering part way); `Failed` when the target refuses the archive
    /// or the copy was cut short. The target tags the image only once it has loaded the whole
    /// archive, so a copy cut short leaves its tags as they were; layers it took may stay,
    /// unused, until the engine prunes them.
    fn copy_image_to(
        &self,
        reference: &str,
        target: &Self,
        progress: &CopyProgress,
    ) -> impl Future<Output = RuntimeResult<u64>> + Send;
    /// Engine events relevant to ec2d; reconnects by itself and says so with `Resubscribed`.
    fn events(&self) -> BoxStream<'static, RuntimeEvent>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_progress_is_shared_by_its_clones_and_starts_over_on_begin() {
        let progress = CopyProgress::default();
        assert_eq!((progress.bytes(), progress.started_at()), (0, None));
        let writer = progress.clone();
        let before = crate::model::now();
        writer.begin();
        writer.add(10);
        writer.add(5);
        assert_eq!(progress.bytes(), 15);
        let started = progress.started_at().expect("started");
        assert!(started >= before && started <= crate::model::now());
        writer.begin();
        assert_eq!(progress.bytes(), 0, "a retry counts anew");
    }

    #[test]
    fn the_event_log_is_judged_only_when_it_covers_the_run() {
        let started = crate::model::now();
        let finished = started + time::Duration::minutes(5);
        let at = |offset: time::Duration| (started + offset).unix_timestamp_nanos();
        let secs = time::Duration::seconds;
        let start = ("start", at(secs(0)) + 300_000);
        let judge = |log: &[(&'static str, i128)]| {
            SignalEvidence::from_log(log.iter().copied(), started, finished)
        };
        assert_eq!(judge(&[start]), SignalEvidence::NotSignalled);
        assert_eq!(
            judge(&[start, ("kill", at(secs(299)))]),
            SignalEvidence::Signalled
        );
        // A kill logged a moment after the finish time was cut to milliseconds.
        assert_eq!(
            judge(&[start, ("kill", at(secs(300)) + 500_000)]),
            SignalEvidence::Signalled
        );
        // A kill from the previous run (before this start) explains nothing.
        assert_eq!(
            judge(&[("kill", at(secs(-1))), start]),
            SignalEvidence::NotSignalled
        );
        // Without the run's start the log may have lost the kill: unknown.
        assert_eq!(judge(&[]), SignalEvidence::Unknown);
        assert_eq!(judge(&[("start", at(secs(-60)))]), SignalEvidence::Unknown);
        assert_eq!(
            judge(&[("restart", at(secs(0)))]),
            SignalEvidence::NotSignalled
        );
        // Even without the start, a kill inside the run is a signal.
        assert_eq!(judge(&[("kill", at(secs(10)))]), SignalEvidence::Signalled);
    }
}
