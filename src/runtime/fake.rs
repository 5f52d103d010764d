//! An in-memory container runtime that records calls and injects failures: the reconciler's test double and `EC2_VM_MANAGER=mock`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::{
    labels, AmiImage, ConsoleLog, ContainerRuntime, ContainerSpec, ContainerState, CopyProgress,
    DockerVolumeSpec, EngineInfo, ExecOutput, HostLimits, ImageCommand, NetworkAttachment,
    NetworkSpec, ObservedContainer, ObservedNetwork, ObservedVolume, PublishedPort, ResourceLimits,
    RuntimeError, RuntimeEvent, RuntimeResult, SignalEvidence, VolumeOwner,
};
use crate::model::{AmiTag, InstanceId, Timestamp};

/// The operations the fake records and can be told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `info`.
    Info,
    /// `list_managed`.
    List,
    /// `inspect_instance`.
    Inspect,
    /// `create_and_start`.
    Create,
    /// `start`.
    Start,
    /// `pause`.
    Pause,
    /// `unpause`.
    Unpause,
    /// `stop`.
    Stop,
    /// `remove`.
    Remove,
    /// `restart`.
    Restart,
    /// `commit`.
    Commit,
    /// `tag_image`.
    Tag,
    /// `remove_image_tag`.
    Untag,
    /// `list_amis`.
    ListAmis,
    /// `image_exists`.
    ImageExists,
    /// `exec`.
    Exec,
    /// `image_command`.
    ImageCommand,
    /// `signal_evidence`.
    EventLog,
    /// `update_limits`.
    UpdateLimits,
    /// `console_log`.
    ConsoleLog,
    /// `list_networks`.
    ListNetworks,
    /// `create_network`.
    CreateNetwork,
    /// `remove_network`.
    RemoveNetwork,
    /// `connect_network`.
    ConnectNetwork,
    /// `list_volumes`.
    ListVolumes,
    /// `create_volume`.
    CreateVolume,
    /// `remove_volume`.
    RemoveVolume,
    /// `copy_volume_data`. A failure injected here copies the source's first file before
    /// failing, as a copy cut short leaves its target partly written.
    CopyVolume,
    /// `remove_volume_helpers`.
    RemoveVolumeHelpers,
    /// `copy_image_to`, on the engine copied from (its `docker save`).
    ExportImage,
    /// `copy_image_to`, on the engine copied to (its `docker load`): recorded only once the
    /// export got going (the source had the image, was up, and no hold kept the copy).
    ImportImage,
}

/// The archive size a fake image reports (`list_amis`) and a copy of one streams.
const FAKE_IMAGE_BYTES: i64 = 1024;

/// One recorded call: the operation and its main argument (container name or id, image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Which operation.
    pub op: Op,
    /// Its main argument.
    pub arg: String,
}

#[derive(Debug, Clone)]
struct FakeContainer {
    id: String,
    spec: ContainerSpec,
    state: ContainerState,
    exit_code: Option<i64>,
    ip: String,
    ports: Vec<PublishedPort>,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    /// The engine's event log for this container: `start` and `kill`, with their times.
    log: Vec<(&'static str, i128)>,
    /// Its CPU and memory limits, as the engine would report them.
    limits: ResourceLimits,
    /// What it wrote to its console, line by line, with the time of each.
    console: Vec<(Timestamp, Vec<u8>)>,
    /// The networks it is attached to: name to network id (which may be one since removed).
    networks: BTreeMap<String, String>,
}

#[derive(Default)]
struct Inner {
    containers: BTreeMap<String, FakeContainer>,
    /// Container id by name, as the engine resolves names: inspection by instance must not
    /// scan every container (mock mode holds thousands).
    names: HashMap<String, String>,
    images: BTreeMap<String, String>,
    /// Labels by Docker image id: a commit's image carries its container's labels.
    image_labels: HashMap<String, BTreeMap<String, String>>,
    calls: Vec<Call>,
    failures: HashMap<Op, (RuntimeError, usize)>,
    next_id: u64,
    next_port: u16,
    down: bool,
    /// Every `exec` so far: container id and command.
    execs: Vec<(String, Vec<String>)>,
    /// What `exec` answers; `None` means exit 0 with no output.
    exec_result: Option<ExecOutput>,
    /// Per-image commands set by tests; other known images run `/bin/sh`.
    image_commands: HashMap<String, ImageCommand>,
    /// When set, containers exit with this code as soon as they start (a broken image).
    exit_on_start: Option<i64>,
    /// What `info` reports of the host's limits.
    host: Option<HostLimits>,
    /// Networks by id.
    networks: BTreeMap<String, NetworkSpec>,
    /// Docker volumes by name: their labels and files (path to content).
    volumes: BTreeMap<String, FakeVolume>,
    /// What `info` reports as the daemon's id: one per world, shared by its clones.
    engine_id: String,
}

#[derive(Debug, Clone, Default)]
struct FakeVolume {
    labels: BTreeMap<String, String>,
    files: BTreeMap<String, Vec<u8>>,
}

impl FakeVolume {
    fn observe(name: &str, volume: &FakeVolume) -> Option<ObservedVolume> {
        let owner = if let Some(id) = volume.labels.get(labels::VOLUME_ID) {
            VolumeOwner::Volume(id.clone())
        } else {
            VolumeOwner::Snapshot(volume.labels.get(labels::SNAPSHOT_ID)?.clone())
        };
        Some(ObservedVolume {
            name: name.to_string(),
            owner,
            store_id: volume.labels.get(labels::STORE_ID).cloned(),
            mountpoint: format!("/var/lib/docker/volumes/{name}/_data"),
            labels: volume.labels.clone(),
        })
    }
}

/// The fake runtime. Cloning shares the same world.
#[derive(Clone)]
pub struct FakeRuntime {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<RuntimeEvent>,
    /// Mock mode: any image reference "exists", as `EC2_VM_MANAGER=mock` promises.
    accept_any_image: bool,
    /// Whether calls are recorded for [`FakeRuntime::calls`]: tests read them; mock mode,
    /// which runs for days, would only grow the log without end.
    record_calls: bool,
    /// Image copies from this engine wait here while a test holds it ([`FakeRuntime::hold_copies`]).
    /// A tokio lock, not part of `inner`: a copy waits on it across an await.
    copy_gate: Arc<tokio::sync::RwLock<()>>,
}

/// Holds every image copy from a fake engine part way, with half its bytes counted, until
/// dropped ([`FakeRuntime::hold_copies`]).
pub struct CopyHold {
    _held: tokio::sync::OwnedRwLockWriteGuard<()>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeRuntime {
    /// An empty world with no images.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Mutex::new(Inner {
                next_port: 40000,
                host: Some(HostLimits {
                    cpus: 2,
                    cpu_quota: true,
                    memory_limit: true,
                }),
                engine_id: format!("fake-{}", uuid::Uuid::new_v4().simple()),
                ..Inner::default()
            })),
            events,
            accept_any_image: false,
            record_calls: true,
            copy_gate: Arc::default(),
        }
    }

    /// The runtime behind `EC2_VM_MANAGER=mock`: no real containers, every image exists.
    pub fn mock() -> Self {
        Self {
            accept_any_image: true,
            record_calls: false,
            ..Self::new()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock only happens in a failing test; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an image, as `docker tag` would.
    pub fn add_image(&self, reference: &str) {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = format!("sha256:{:064x}", inner.next_id);
        inner.images.insert(reference.to_string(), id);
        drop(inner);
        self.emit(RuntimeEvent::Image {
            action: "tag".into(),
        });
    }

    /// Adds an image with labels, as `docker build --label` (or another ec2d's commit) would.
    pub fn add_labelled_image(&self, reference: &str, labels: BTreeMap<String, String>) {
        self.add_image(reference);
        let mut inner = self.lock();
        let id = inner.images[reference].clone();
        inner.image_labels.insert(id, labels);
    }

    /// Removes an image, as `docker rmi` would.
    pub fn remove_image(&self, reference: &str) {
        self.lock().images.remove(reference);
        self.emit(RuntimeEvent::Image {
            action: "untag".into(),
        });
    }

    /// The image references (tags) the engine has, sorted.
    pub fn image_references(&self) -> Vec<String> {
        self.lock().images.keys().cloned().collect()
    }

    /// Every call made so far, in order (none in mock mode, which keeps no log).
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The operations called so far, in order (without arguments).
    pub fn ops(&self) -> Vec<Op> {
        self.lock().calls.iter().map(|c| c.op).collect()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Makes the next `times` calls of `op` fail with `error`.
    pub fn fail_next(&self, op: Op, error: RuntimeError, times: usize) {
        self.lock().failures.insert(op, (error, times));
    }

    /// Makes new containers exit with `code` as soon as they start, like an image whose
    /// command cannot run; `None` restores normal behaviour.
    pub fn exit_on_start(&self, code: Option<i64>) {
        self.lock().exit_on_start = code;
    }

    /// Sets what `info` reports of the host's limits (2 CPUs, quotas and memory limits
    /// supported, unless set).
    pub fn set_host_limits(&self, host: Option<HostLimits>) {
        self.lock().host = host;
    }

    /// The CPU and memory limits of an instance's container, if it has one.
    pub fn container_limits(&self, instance_id: &InstanceId) -> Option<ResourceLimits> {
        self.lock()
            .containers
            .values()
            .find(|c| c.spec.instance_id.as_ref() == Some(instance_id))
            .map(|c| c.limits)
    }

    /// The id of an instance's container, if it has one.
    pub fn container_id(&self, instance_id: &InstanceId) -> Option<String> {
        self.lock()
            .containers
            .values()
            .find(|c| c.spec.instance_id.as_ref() == Some(instance_id))
            .map(|c| c.id.clone())
    }

    /// The instance's container writes `text` to its console (stdout), as its boot or user
    /// data would.
    pub fn print(&self, instance_id: &InstanceId, text: &str) {
        let mut inner = self.lock();
        if let Some(c) = inner
            .containers
            .values_mut()
            .find(|c| c.spec.instance_id.as_ref() == Some(instance_id))
        {
            // Nanosecond times, as the engine's log has: two lines are never at the same time.
            let at = c
                .console
                .last()
                .map(|(last, _)| *last + time::Duration::nanoseconds(1))
                .unwrap_or_else(crate::model::now)
                .max(time::OffsetDateTime::now_utc());
            c.console.push((at, text.as_bytes().to_vec()));
        }
    }

    /// Holds every image copy from this engine once half its bytes are counted, until the
    /// returned hold is dropped: a copy that takes its time, so tests can watch it in flight.
    pub async fn hold_copies(&self) -> CopyHold {
        CopyHold {
            _held: self.copy_gate.clone().write_owned().await,
        }
    }

    /// Makes every call fail with `Unavailable` until set back, like an engine outage.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Changes a container's state behind ec2d's back (drift), by instance id.
    pub fn set_state_behind_back(
        &self,
        instance_id: &InstanceId,
        state: ContainerState,
        exit_code: Option<i64>,
    ) {
        let mut inner = self.lock();
        if let Some(c) = inner
            .containers
            .values_mut()
            .find(|c| c.spec.instance_id.as_ref() == Some(instance_id))
        {
            Self::stamp(c, state);
            c.state = state;
            c.exit_code = exit_code;
        }
        drop(inner);
        self.emit(RuntimeEvent::Container {
            instance_id: instance_id.clone(),
            action: state.as_str().into(),
        });
    }

    /// `docker stop` / `docker kill` behind ec2d's back, by instance id: the engine logs a
    /// `kill`, the container exits with `exit_code`. The `kill` event goes out on the stream
    /// only when `announce` is set (a stream that lost it otherwise).
    pub fn signal_behind_back(&self, instance_id: &InstanceId, exit_code: i64, announce: bool) {
        let mut inner = self.lock();
        if let Some(c) = inner
            .containers
            .values_mut()
            .find(|c| c.spec.instance_id.as_ref() == Some(instance_id))
        {
            c.log
                .push(("kill", crate::model::now().unix_timestamp_nanos()));
            Self::stamp(c, ContainerState::Exited);
            c.state = ContainerState::Exited;
            c.exit_code = Some(exit_code);
        }
        drop(inner);
        for action in ["kill", "die"] {
            if announce || action != "kill" {
                self.emit(RuntimeEvent::Container {
                    instance_id: instance_id.clone(),
                    action: action.into(),
                });
            }
        }
    }

    /// Forgets the engine's event log, as an engine restart does.
    pub fn lose_event_log(&self) {
        for c in self.lock().containers.values_mut() {
            c.log.clear();
        }
    }

    /// Removes a container behind ec2d's back (`docker rm -f`), by instance id.
    pub fn remove_behind_back(&self, instance_id: &InstanceId) {
        let mut inner = self.lock();
        inner
            .containers
            .retain(|_, c| c.spec.instance_id.as_ref() != Some(instance_id));
        let Inner {
            containers, names, ..
        } = &mut *inner;
        names.retain(|_, id| containers.contains_key(id));
        drop(inner);
        self.emit(RuntimeEvent::Container {
            instance_id: instance_id.clone(),
            action: "destroy".into(),
        });
    }

    /// The state of an instance's container, if it has one.
    pub fn container_state(&self, instance_id: &InstanceId) -> Option<ContainerState> {
        self.lock()
            .containers
            .values()
            .find(|c| c.spec.instance_id.as_ref() == Some(instance_id))
            .map(|c| c.state)
    }

    /// How many containers exist.
    pub fn container_count(&self) -> usize {
        self.lock().containers.len()
    }

    /// Makes every later `exec` answer `output` (the default is exit 0 with no output).
    pub fn set_exec_result(&self, output: ExecOutput) {
        self.lock().exec_result = Some(output);
    }

    /// Every `exec` so far, in order: container id and command.
    pub fn execs(&self) -> Vec<(String, Vec<String>)> {
        self.lock().execs.clone()
    }

    /// Sets the entrypoint and command `image_command` reports for `reference`. Does not add
    /// the image: `image_command` still answers `None` for an image that does not exist.
    pub fn set_image_command(&self, reference: &str, command: ImageCommand) {
        self.lock()
            .image_commands
            .insert(reference.to_string(), command);
    }

    /// Records the call and returns the scripted failure, if any.
    fn enter(&self, op: Op, arg: &str) -> RuntimeResult<()> {
        let mut inner = self.lock();
        if self.record_calls {
            inner.calls.push(Call {
                op,
                arg: arg.to_string(),
            });
        }
        if inner.down {
            return Err(RuntimeError::Unavailable("fake engine is down".into()));
        }
        if let Some((error, times)) = inner.failures.get_mut(&op) {
            if *times > 0 {
                *times -= 1;
                return Err(error.clone());
            }
        }
        Ok(())
    }

    fn emit(&self, event: RuntimeEvent) {
        // No subscriber is fine: nobody is watching yet.
        let _ = self.events.send(event);
    }

    fn emit_for(&self, container: &FakeContainer, action: &str) {
        if let Some(id) = &container.spec.instance_id {
            self.emit(RuntimeEvent::Container {
                instance_id: id.clone(),
                action: action.into(),
            });
        }
    }

    /// Records start and finish times for a move to `to`, as Docker does: `StartedAt` when the
    /// main process starts, `FinishedAt` when it ends (both kept across later transitions).
    fn stamp(c: &mut FakeContainer, to: ContainerState) {
        use ContainerState::*;
        let was_alive = matches!(c.state, Running | Paused | Restarting);
        if to == Running && !was_alive {
            let at = crate::model::now();
            c.started_at = Some(at);
            c.log.push(("start", at.unix_timestamp_nanos()));
        }
        if matches!(to, Exited | Dead) && was_alive {
            c.finished_at = Some(crate::model::now());
        }
    }

    fn observe(c: &FakeContainer) -> Option<ObservedContainer> {
        let instance_id = c.spec.instance_id.clone()?;
        let mut labels = c.spec.labels.clone();
        labels.insert(labels::INSTANCE_ID.into(), instance_id.to_string());
        Some(ObservedContainer {
            started_at: c.started_at,
            finished_at: c.finished_at,
            id: c.id.clone(),
            name: c.spec.name.clone(),
            instance_id,
            state: c.state,
            exit_code: c.exit_code,
            ip_address: matches!(c.state, ContainerState::Running | ContainerState::Paused)
                .then(|| c.ip.clone()),
            image: c.spec.image.clone(),
            ports: c.ports.clone(),
            labels,
            limits: Some(c.limits),
            networks: c.networks.clone(),
            volume_mounts: c.spec.volume_mounts.clone(),
            binds: c
                .spec
                .binds
                .iter()
                .chain(&c.spec.flags.volumes)
                .cloned()
                .collect(),
        })
    }

    /// The id of the live network named `name`.
    fn network_id(inner: &Inner, name: &str) -> Option<String> {
        inner
            .networks
            .iter()
            .find(|(_, spec)| spec.name == name)
            .map(|(id, _)| id.clone())
    }

    /// `docker network disconnect -f` of every container, then `docker network rm`, as a user
    /// would do behind ec2d's back; `false` when no such network exists.
    pub fn remove_network_behind_back(&self, name: &str) -> bool {
        let mut inner = self.lock();
        let Some(id) = Self::network_id(&inner, name) else {
            return false;
        };
        inner.networks.remove(&id);
        for container in inner.containers.values_mut() {
            container.networks.remove(name);
        }
        drop(inner);
        self.emit(RuntimeEvent::Network {
            name: name.to_string(),
            action: "destroy".into(),
        });
        true
    }

    /// Writes a file into a Docker volume, as a container using it would; `false` when there is
    /// no such volume.
    pub fn write_volume_file(&self, name: &str, path: &str, content: &[u8]) -> bool {
        let mut inner = self.lock();
        let Some(volume) = inner.volumes.get_mut(name) else {
            return false;
        };
        volume.files.insert(path.to_string(), content.to_vec());
        true
    }

    /// The files of a Docker volume, path to content; `None` when there is no such volume.
    pub fn volume_files(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.lock().volumes.get(name).map(|v| v.files.clone())
    }

    /// The names of every Docker volume, ec2d's or not.
    pub fn volume_names(&self) -> Vec<String> {
        self.lock().volumes.keys().cloned().collect()
    }

    /// Adds a volume with the given labels, as `docker volume create --label` by someone else
    /// (or another ec2d) would.
    pub fn add_volume(&self, name: &str, labels: BTreeMap<String, String>) {
        self.lock().volumes.insert(
            name.to_string(),
            FakeVolume {
                labels,
                files: BTreeMap::new(),
            },
        );
    }

    /// `docker volume rm` behind ec2d's back; `false` when there is no such volume.
    pub fn remove_volume_behind_back(&self, name: &str) -> bool {
        let removed = self.lock().volumes.remove(name).is_some();
        if removed {
            self.emit(RuntimeEvent::Volume {
                name: name.to_string(),
                action: "destroy".into(),
            });
        }
        removed
    }

    /// One of ec2d's volumes by name: `NotFound` when gone, `Failed` without ec2d's labels.
    fn owned_volume<'a>(inner: &'a Inner, name: &str) -> RuntimeResult<&'a FakeVolume> {
        let volume = inner
            .volumes
            .get(name)
            .ok_or_else(|| RuntimeError::NotFound(format!("no such volume: {name}")))?;
        if FakeVolume::observe(name, volume).is_none() {
            return Err(RuntimeError::Failed(format!(
                "volume {name} does not carry ec2d's labels; leaving it alone"
            )));
        }
        Ok(volume)
    }

    /// The networks that exist, as `(name, block)`.
    pub fn networks(&self) -> Vec<(String, String)> {
        self.lock()
            .networks
            .values()
            .map(|n| (n.name.clone(), n.cidr.clone()))
            .collect()
    }

    /// The networks an instance's container is attached to, name to address.
    pub fn container_networks(&self, instance_id: &InstanceId) -> BTreeMap<String, String> {
        let inner = self.lock();
        inner
            .containers
            .values()
            .find(|c| c.spec.instance_id.as_ref() == Some(instance_id))
            .map(|c| {
                c.networks
                    .keys()
                    .map(|name| (name.clone(), c.ip.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A network id the container is attached to that no longer exists.
    fn stale_network(&self, container_id: &str) -> Option<String> {
        let inner = self.lock();
        let container = inner.containers.get(container_id)?;
        container
            .networks
            .values()
            .find(|id| *id != "bridge" && !inner.networks.contains_key(*id))
            .cloned()
    }

    /// Whether a live container on the network holds the address.
    fn address_taken(inner: &Inner, network_id: &str, ip: &str) -> bool {
        inner.containers.values().any(|c| {
            c.ip == ip
                && c.networks.values().any(|n| n == network_id)
                && matches!(c.state, ContainerState::Running | ContainerState::Paused)
        })
    }

    /// Applies a state change to a container by id, with Docker's conflict rules.
    fn transition(
        &self,
        op: Op,
        container_id: &str,
        allowed: &[ContainerState],
        to: ContainerState,
        action: &str,
    ) -> RuntimeResult<()> {
        self.enter(op, container_id)?;
        let mut inner = self.lock();
        let container = inner
            .containers
            .get_mut(container_id)
            .ok_or_else(|| RuntimeError::NotFound(format!("no such container: {container_id}")))?;
        if !allowed.contains(&container.state) {
            return Err(RuntimeError::Conflict(format!(
                "container {container_id} is {}",
                container.state.as_str()
            )));
        }
        if op == Op::Stop {
            container
                .log
                .push(("kill", crate::model::now().unix_timestamp_nanos()));
        }
        Self::stamp(container, to);
        container.state = to;
        if to == ContainerState::Exited {
            container.exit_code = Some(0);
        }
        let snapshot = container.clone();
        drop(inner);
        self.emit_for(&snapshot, action);
        Ok(())
    }
}

impl ContainerRuntime for FakeRuntime {
    async fn info(&self) -> RuntimeResult<EngineInfo> {
        self.enter(Op::Info, "")?;
        let inner = self.lock();
        Ok(EngineInfo {
            version: "fake".into(),
            api_version: "fake".into(),
            host: inner.host,
            bridge_gateway: None,
            engine_id: Some(inner.engine_id.clone()),
        })
    }

    async fn list_managed(&self) -> RuntimeResult<Vec<ObservedContainer>> {
        self.enter(Op::List, "")?;
        Ok(self
            .lock()
            .containers
            .values()
            .filter_map(Self::observe)
            .collect())
    }

    async fn inspect_instance(
        &self,
        instance_id: &InstanceId,
    ) -> RuntimeResult<Option<ObservedContainer>> {
        self.enter(Op::Inspect, instance_id.as_str())?;
        let name = format!("{}{}", crate::model::CONTAINER_NAME_PREFIX, instance_id);
        let inner = self.lock();
        match inner
            .names
            .get(&name)
            .and_then(|id| inner.containers.get(id))
        {
            None => Ok(None),
            Some(c) if c.spec.instance_id.as_ref() == Some(instance_id) => Ok(Self::observe(c)),
            Some(_) => Err(RuntimeError::NameTaken(name)),
        }
    }

    async fn create_and_start(&self, spec: &ContainerSpec) -> RuntimeResult<String> {
        self.enter(Op::Create, &spec.name)?;
        let mut inner = self.lock();
        if !self.accept_any_image && !inner.images.contains_key(&spec.image) {
            return Err(RuntimeError::NotFound(format!(
                "no such image: {}",
                spec.image
            )));
        }
        if let Some(existing) = inner
            .names
            .get(&spec.name)
            .and_then(|id| inner.containers.get(id))
        {
            return Err(RuntimeError::Conflict(format!(
                "container name {} is already in use by {}",
                spec.name, existing.id
            )));
        }
        inner.next_id += 1;
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut networks = BTreeMap::new();
        let ip = match spec
            .network
            .as_ref()
            .filter(|_| spec.flags.network.is_none())
        {
            Some(attachment) => {
                let Some(network_id) = Self::network_id(&inner, &attachment.network) else {
                    return Err(RuntimeError::Conflict(format!(
                        "network {} not found",
                        attachment.network
                    )));
                };
                if Self::address_taken(&inner, &network_id, &attachment.ipv4_address) {
                    return Err(RuntimeError::Conflict("Address already in use".into()));
                }
                networks.insert(attachment.network.clone(), network_id);
                attachment.ipv4_address.clone()
            }
            None => {
                // Docker's default bridge, as the engine names it in a container's networks.
                networks.insert("bridge".to_string(), "bridge".to_string());
                format!(
                    "172.17.{}.{}",
                    (inner.next_id / 250) % 250,
                    inner.next_id % 250 + 2
                )
            }
        };
        let mut ports = Vec::new();
        for request in &spec.ports {
            let host_port = match request.host_port {
                Some(p) => p,
                None => {
                    inner.next_port += 1;
                    inner.next_port
                }
            };
            ports.push(PublishedPort {
                container_port: request.container_port,
                protocol: request.protocol,
                host_ip: "127.0.0.1".into(),
                host_port,
            });
        }
        let exit = inner.exit_on_start;
        let started_at = crate::model::now();
        let container = FakeContainer {
            id: id.clone(),
            // What the engine was asked to run (command, and environment with the boot inputs
            // and user data) is never observed here; kept, it was most of mock mode's memory
            // at 10,000 instances.
            spec: ContainerSpec {
                entrypoint: None,
                cmd: None,
                env: Vec::new(),
                ..spec.clone()
            },
            state: if exit.is_some() {
                ContainerState::Exited
            } else {
                ContainerState::Running
            },
            exit_code: exit,
            ip,
            ports,
            started_at: Some(started_at),
            finished_at: exit.map(|_| crate::model::now()),
            log: vec![("start", started_at.unix_timestamp_nanos())],
            // As the engine merges them: the operator's flags win over the spec's limits.
            limits: ResourceLimits {
                nano_cpus: spec.flags.nano_cpus.or(spec.limits.nano_cpus),
                memory_bytes: spec.flags.memory_bytes.or(spec.limits.memory_bytes),
            },
            console: Vec::new(),
            networks,
        };
        inner.names.insert(spec.name.clone(), id.clone());
        inner.containers.insert(id.clone(), container.clone());
        drop(inner);
        self.emit_for(&container, "start");
        Ok(id)
    }

    async fn start(&self, container_id: &str) -> RuntimeResult<()> {
        use ContainerState::*;
        // As the engine: a container attached to a network since removed cannot start.
        if let Some(stale) = self.stale_network(container_id) {
            self.enter(Op::Start, container_id)?;
            return Err(RuntimeError::Conflict(format!("network {stale} not found")));
        }
        self.transition(
            Op::Start,
            container_id,
            &[Created, Exited, Running],
            Running,
            "start",
        )
    }

    async fn pause(&self, container_id: &str) -> RuntimeResult<()> {
        use ContainerState::*;
        self.transition(Op::Pause, container_id, &[Running], Paused, "pause")
    }

    async fn unpause(&self, container_id: &str) -> RuntimeResult<()> {
        use ContainerState::*;
        self.transition(Op::Unpause, container_id, &[Paused], Running, "unpause")
    }

    async fn stop(&self, container_id: &str, _grace: Duration) -> RuntimeResult<()> {
        use ContainerState::*;
        self.transition(
            Op::Stop,
            container_id,
            &[Running, Paused, Exited, Created],
            Exited,
            "die",
        )
    }

    async fn restart(&self, container_id: &str, _grace: Duration) -> RuntimeResult<()> {
        use ContainerState::*;
        self.enter(Op::Restart, container_id)?;
        let snapshot = {
            let mut inner = self.lock();
            let container = inner.containers.get_mut(container_id).ok_or_else(|| {
                RuntimeError::NotFound(format!("no such container: {container_id}"))
            })?;
            if !matches!(container.state, Running | Paused | Exited | Created) {
                return Err(RuntimeError::Conflict(format!(
                    "container {container_id} is {}",
                    container.state.as_str()
                )));
            }
            // As Docker does it: the main process gets SIGTERM (143), then a fresh start.
            if matches!(container.state, Running | Paused) {
                container
                    .log
                    .push(("kill", crate::model::now().unix_timestamp_nanos()));
                Self::stamp(container, Exited);
                container.state = Exited;
                container.exit_code = Some(143);
            }
            Self::stamp(container, Running);
            container.state = Running;
            container.clone()
        };
        self.emit_for(&snapshot, "restart");
        Ok(())
    }

    async fn update_limits(&self, container_id: &str, limits: ResourceLimits) -> RuntimeResult<()> {
        self.enter(Op::UpdateLimits, container_id)?;
        let mut inner = self.lock();
        let container = inner
            .containers
            .get_mut(container_id)
            .ok_or_else(|| RuntimeError::NotFound(format!("no such container: {container_id}")))?;
        if let Some(nano_cpus) = limits.nano_cpus {
            container.limits.nano_cpus = Some(nano_cpus);
        }
        if let Some(memory) = limits.memory_bytes {
            container.limits.memory_bytes = Some(memory);
        }
        Ok(())
    }

    async fn console_log(
        &self,
        container_id: &str,
        after: Option<Timestamp>,
    ) -> RuntimeResult<ConsoleLog> {
        self.enter(Op::ConsoleLog, container_id)?;
        let inner = self.lock();
        let container = inner
            .containers
            .get(container_id)
            .ok_or_else(|| RuntimeError::NotFound(format!("no such container: {container_id}")))?;
        let mut log = ConsoleLog::default();
        for (at, line) in &container.console {
            if after.is_none_or(|after| *at > after) {
                log.push(line, Some(*at));
            }
        }
        Ok(log.finish())
    }

    async fn remove(&self, container_id: &str) -> RuntimeResult<()> {
        self.enter(Op::Remove, container_id)?;
        let removed = {
            let mut inner = self.lock();
            let removed = inner.containers.remove(container_id);
            if let Some(c) = &removed {
                inner.names.remove(&c.spec.name);
            }
            removed
        };
        if let Some(container) = removed {
            self.emit_for(&container, "destroy");
        }
        Ok(())
    }

    async fn tag_image(&self, source: &str, repository: &str, tag: &str) -> RuntimeResult<String> {
        self.enter(Op::Tag, source)?;
        let id = {
            let mut inner = self.lock();
            let id = match inner.images.get(source) {
                Some(id) => id.clone(),
                None if self.accept_any_image => {
                    inner.next_id += 1;
                    format!("sha256:{:064x}", inner.next_id)
                }
                None => return Err(RuntimeError::NotFound(format!("no such image: {source}"))),
            };
            inner
                .images
                .insert(format!("{repository}:{tag}"), id.clone());
            id
        };
        self.emit(RuntimeEvent::Image {
            action: "tag".into(),
        });
        Ok(id)
    }

    async fn commit(
        &self,
        container_id: &str,
        repository: &str,
        tag: &str,
    ) -> RuntimeResult<String> {
        self.enter(Op::Commit, container_id)?;
        let Some(labels) = self
            .lock()
            .containers
            .get(container_id)
            .map(|c| c.spec.labels.clone())
        else {
            return Err(RuntimeError::NotFound(format!(
                "no such container: {container_id}"
            )));
        };
        let reference = format!("{repository}:{tag}");
        // The engine's commit keeps the container's configuration, labels included.
        self.add_labelled_image(&reference, labels);
        let id = self
            .lock()
            .images
            .get(&reference)
            .cloned()
            .unwrap_or_default();
        Ok(id)
    }

    async fn remove_image_tag(&self, reference: &str) -> RuntimeResult<()> {
        self.enter(Op::Untag, reference)?;
        {
            let mut inner = self.lock();
            let Some(id) = inner.images.get(reference).cloned() else {
                return Err(RuntimeError::NotFound(format!(
                    "no such image: {reference}"
                )));
            };
            // The engine's rule: the last tag of an image a container uses stays.
            let last = !inner
                .images
                .iter()
                .any(|(other, other_id)| other != reference && *other_id == id);
            let user = inner.containers.values().find(|c| {
                c.spec.image == reference || inner.images.get(&c.spec.image) == Some(&id)
            });
            if let (true, Some(user)) = (last, user) {
                return Err(RuntimeError::Conflict(format!(
                    "unable to remove repository reference {reference} (must force) - container {} is using its referenced image",
                    user.id
                )));
            }
            inner.images.remove(reference);
        }
        self.emit(RuntimeEvent::Image {
            action: "untag".into(),
        });
        Ok(())
    }

    async fn list_amis(&self) -> RuntimeResult<Vec<AmiImage>> {
        self.enter(Op::ListAmis, "")?;
        let inner = self.lock();
        // One entry per AMI id: the first of its tags in reference order.
        let mut seen = HashSet::new();
        let mut amis = Vec::new();
        for (reference, docker_id) in &inner.images {
            let Some(AmiTag { name, ami_id }) = AmiTag::parse(reference) else {
                continue;
            };
            if seen.insert(ami_id.clone()) {
                amis.push(AmiImage {
                    ami_id,
                    name,
                    reference: reference.clone(),
                    docker_id: docker_id.clone(),
                    created: None,
                    size_bytes: Some(FAKE_IMAGE_BYTES),
                    architecture: Some("amd64".into()),
                    store_id: inner
                        .image_labels
                        .get(docker_id)
                        .and_then(|l| l.get(labels::STORE_ID))
                        .cloned(),
                });
            }
        }
        Ok(amis)
    }

    async fn image_exists(&self, reference: &str) -> RuntimeResult<bool> {
        self.enter(Op::ImageExists, reference)?;
        Ok(self.accept_any_image || self.lock().images.contains_key(reference))
    }

    async fn exec(&self, container_id: &str, cmd: Vec<String>) -> RuntimeResult<ExecOutput> {
        self.enter(Op::Exec, container_id)?;
        let mut inner = self.lock();
        // Docker's answers: 404 for a missing container, 409 for one that is not running.
        let state = inner
            .containers
            .get(container_id)
            .map(|c| c.state)
            .ok_or_else(|| RuntimeError::NotFound(format!("no such container: {container_id}")))?;
        if state != ContainerState::Running {
            return Err(RuntimeError::Conflict(format!(
                "container {container_id} is {}",
                state.as_str()
            )));
        }
        inner.execs.push((container_id.to_string(), cmd));
        Ok(inner.exec_result.clone().unwrap_or(ExecOutput {
            exit_code: Some(0),
            output: String::new(),
        }))
    }

    async fn image_command(&self, reference: &str) -> RuntimeResult<Option<ImageCommand>> {
        self.enter(Op::ImageCommand, reference)?;
        let inner = self.lock();
        if !self.accept_any_image && !inner.images.contains_key(reference) {
            return Ok(None);
        }
        Ok(Some(
            inner
                .image_commands
                .get(reference)
                .cloned()
                .unwrap_or(ImageCommand {
                    entrypoint: Vec::new(),
                    cmd: vec!["/bin/sh".to_string()],
                }),
        ))
    }

    async fn signal_evidence(
        &self,
        container_id: &str,
        started_at: Timestamp,
        finished_at: Timestamp,
    ) -> RuntimeResult<SignalEvidence> {
        self.enter(Op::EventLog, container_id)?;
        let inner = self.lock();
        let Some(container) = inner.containers.get(container_id) else {
            return Ok(SignalEvidence::Unknown);
        };
        Ok(SignalEvidence::from_log(
            container.log.iter().copied(),
            started_at,
            finished_at,
        ))
    }

    async fn list_networks(&self) -> RuntimeResult<Vec<ObservedNetwork>> {
        self.enter(Op::ListNetworks, "")?;
        Ok(self
            .lock()
            .networks
            .iter()
            .map(|(id, spec)| ObservedNetwork {
                id: id.clone(),
                name: spec.name.clone(),
                vpc_id: spec.vpc_id.clone(),
                store_id: Some(spec.store_id.clone()),
                cidr: Some(spec.cidr.clone()),
            })
            .collect())
    }

    async fn create_network(&self, spec: &NetworkSpec) -> RuntimeResult<String> {
        self.enter(Op::CreateNetwork, &spec.name)?;
        let mut inner = self.lock();
        // As the engine: blocks may not overlap (mock mode has no engine, so no such limit).
        if !self.accept_any_image {
            let block = crate::model::vpc::Cidr::parse(&spec.cidr);
            let clash = inner.networks.values().find(|other| {
                match (block, crate::model::vpc::Cidr::parse(&other.cidr)) {
                    (Some(a), Some(b)) => a.overlaps(&b),
                    _ => false,
                }
            });
            if let Some(other) = clash {
                return Err(RuntimeError::Failed(format!(
                    "create network: Pool overlaps with other one on this address space ({})",
                    other.name
                )));
            }
        }
        inner.next_id += 1;
        let id = format!("net{:061}", inner.next_id);
        inner.networks.insert(id.clone(), spec.clone());
        Ok(id)
    }

    async fn remove_network(&self, network_id: &str) -> RuntimeResult<()> {
        self.enter(Op::RemoveNetwork, network_id)?;
        let mut inner = self.lock();
        let Some(spec) = inner.networks.get(network_id).cloned() else {
            return Err(RuntimeError::NotFound(format!(
                "network {network_id} not found"
            )));
        };
        let active = inner.containers.values().any(|c| {
            c.networks.values().any(|n| n == network_id)
                && matches!(c.state, ContainerState::Running | ContainerState::Paused)
        });
        if active {
            return Err(RuntimeError::Conflict(format!(
                "network {} has active endpoints",
                spec.name
            )));
        }
        inner.networks.remove(network_id);
        drop(inner);
        self.emit(RuntimeEvent::Network {
            name: spec.name,
            action: "destroy".into(),
        });
        Ok(())
    }

    async fn connect_network(
        &self,
        container_id: &str,
        attachment: &NetworkAttachment,
    ) -> RuntimeResult<()> {
        self.enter(Op::ConnectNetwork, container_id)?;
        let mut inner = self.lock();
        let Some(network_id) = Self::network_id(&inner, &attachment.network) else {
            return Err(RuntimeError::NotFound(format!(
                "network {} not found",
                attachment.network
            )));
        };
        let container = inner
            .containers
            .get_mut(container_id)
            .ok_or_else(|| RuntimeError::NotFound(format!("no such container: {container_id}")))?;
        container
            .networks
            .insert(attachment.network.clone(), network_id);
        container.ip = attachment.ipv4_address.clone();
        Ok(())
    }

    async fn list_volumes(&self) -> RuntimeResult<Vec<ObservedVolume>> {
        self.enter(Op::ListVolumes, "")?;
        Ok(self
            .lock()
            .volumes
            .iter()
            .filter_map(|(name, volume)| FakeVolume::observe(name, volume))
            .collect())
    }

    async fn create_volume(&self, spec: &DockerVolumeSpec) -> RuntimeResult<ObservedVolume> {
        self.enter(Op::CreateVolume, &spec.name)?;
        let mut inner = self.lock();
        let owner_label = match &spec.owner {
            VolumeOwner::Volume(_) => labels::VOLUME_ID,
            VolumeOwner::Snapshot(_) => labels::SNAPSHOT_ID,
        };
        // As the engine: an existing name is answered as it is, labels and all.
        let volume = inner
            .volumes
            .entry(spec.name.clone())
            .or_insert_with(|| FakeVolume {
                labels: BTreeMap::from([
                    (owner_label.to_string(), spec.owner.id().to_string()),
                    (labels::STORE_ID.to_string(), spec.store_id.clone()),
                    (labels::MANAGED.to_string(), "true".to_string()),
                ]),
                files: BTreeMap::new(),
            });
        let observed = FakeVolume::observe(&spec.name, volume)
            .filter(|v| v.owner == spec.owner)
            .ok_or_else(|| {
                RuntimeError::Failed(format!(
                    "volume name {} is taken by a volume that is not this one's",
                    spec.name
                ))
            })?;
        Ok(observed)
    }

    async fn remove_volume(&self, name: &str) -> RuntimeResult<()> {
        self.enter(Op::RemoveVolume, name)?;
        let mut inner = self.lock();
        Self::owned_volume(&inner, name)?;
        // As the engine: a container naming the volume in its mounts holds it.
        let in_use = inner.containers.values().any(|c| {
            c.spec
                .binds
                .iter()
                .any(|b| b.split(':').next() == Some(name))
        });
        if in_use {
            return Err(RuntimeError::Conflict(format!(
                "remove {name}: volume is in use"
            )));
        }
        inner.volumes.remove(name);
        drop(inner);
        self.emit(RuntimeEvent::Volume {
            name: name.to_string(),
            action: "destroy".into(),
        });
        Ok(())
    }

    async fn copy_volume_data(&self, from: &str, to: &str) -> RuntimeResult<u64> {
        let entered = self.enter(Op::CopyVolume, &format!("{from} -> {to}"));
        let mut inner = self.lock();
        let files = Self::owned_volume(&inner, from)?.files.clone();
        Self::owned_volume(&inner, to)?;
        let target = inner
            .volumes
            .get_mut(to)
            .ok_or_else(|| RuntimeError::NotFound(format!("no such volume: {to}")))?;
        if let Err(error) = entered {
            // Cut short: the first file made it.
            if let Some((path, content)) = files.into_iter().next() {
                target.files.insert(path, content);
            }
            return Err(error);
        }
        let mut bytes = 0u64;
        for (path, content) in files {
            bytes += content.len() as u64;
            target.files.insert(path, content);
        }
        Ok(bytes)
    }

    async fn remove_volume_helpers(&self, volume_prefix: &str) -> RuntimeResult<usize> {
        // The fake copies in one step: it never leaves helpers behind.
        self.enter(Op::RemoveVolumeHelpers, volume_prefix)?;
        Ok(0)
    }

    async fn copy_image_to(
        &self,
        reference: &str,
        target: &Self,
        progress: &CopyProgress,
    ) -> RuntimeResult<u64> {
        self.enter(Op::ExportImage, reference)?;
        // One lock at a time: source and target may be one world (a copy into itself).
        let (id, image_labels) = {
            let mut inner = self.lock();
            let id = match inner.images.get(reference) {
                Some(id) => id.clone(),
                None if self.accept_any_image => {
                    inner.next_id += 1;
                    format!("sha256:{:064x}", inner.next_id)
                }
                None => {
                    return Err(RuntimeError::NotFound(format!(
                        "no such image: {reference}"
                    )))
                }
            };
            let image_labels = inner.image_labels.get(&id).cloned();
            (id, image_labels)
        };
        let bytes = FAKE_IMAGE_BYTES.unsigned_abs();
        progress.begin();
        progress.add(bytes / 2);
        drop(self.copy_gate.read().await);
        // An engine that went down while the copy was held cut its archive short.
        if self.lock().down {
            return Err(RuntimeError::Unavailable(
                "fake engine went down during the copy".into(),
            ));
        }
        target.enter(Op::ImportImage, reference)?;
        {
            // As `docker load`: the archive's one tag, the image's id and its labels.
            let mut inner = target.lock();
            inner.images.insert(reference.to_string(), id.clone());
            if let Some(image_labels) = image_labels {
                inner.image_labels.insert(id, image_labels);
            }
        }
        progress.add(bytes - bytes / 2);
        target.emit(RuntimeEvent::Image {
            action: "load".into(),
        });
        Ok(bytes)
    }

    fn events(&self) -> BoxStream<'static, RuntimeEvent> {
        // A lagging subscriber missed events: say so, as the Docker stream does after a gap.
        BroadcastStream::new(self.events.subscribe())
            .map(|item| item.unwrap_or(RuntimeEvent::Resubscribed))
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(image: &str) -> ContainerSpec {
        let id = InstanceId::generate();
        ContainerSpec {
            name: format!("{}{id}", crate::model::CONTAINER_NAME_PREFIX),
            instance_id: Some(id),
            image: image.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn exec_answers_like_the_engine_and_is_recorded() {
        let fake = FakeRuntime::new();
        fake.add_image("img");
        let id = fake.create_and_start(&spec("img")).await.unwrap();
        let out = fake.exec(&id, vec!["env".into()]).await.unwrap();
        assert_eq!(
            out,
            ExecOutput {
                exit_code: Some(0),
                output: String::new()
            }
        );
        fake.set_exec_result(ExecOutput {
            exit_code: Some(3),
            output: "no".into(),
        });
        assert_eq!(
            fake.exec(&id, vec!["false".into()])
                .await
                .unwrap()
                .exit_code,
            Some(3)
        );
        assert_eq!(
            fake.execs(),
            vec![
                (id.clone(), vec!["env".to_string()]),
                (id.clone(), vec!["false".to_string()])
            ]
        );
        fake.pause(&id).await.unwrap();
        assert!(matches!(
            fake.exec(&id, vec!["x".into()]).await,
            Err(RuntimeError::Conflict(_))
        ));
        assert!(matches!(
            fake.exec("nope", vec!["x".into()]).await,
            Err(RuntimeError::NotFound(_))
        ));
        assert_eq!(fake.ops().iter().filter(|op| **op == Op::Exec).count(), 4);
    }

    #[tokio::test]
    async fn mock_mode_keeps_no_call_log_and_no_environment() {
        let mock = FakeRuntime::mock();
        let mut launched = spec("any");
        launched.env = vec!["EC2D_USER_DATA=secret".into()];
        launched.binds = vec!["/host:/mnt:rslave".into()];
        let id = mock.create_and_start(&launched).await.unwrap();
        mock.pause(&id).await.unwrap();
        assert!(mock.calls().is_empty());
        let kept = mock.lock().containers[&id].spec.clone();
        assert!(kept.env.is_empty());
        // What inspection shows is still kept.
        assert_eq!(kept.binds, launched.binds);
        let tests = FakeRuntime::new();
        tests.add_image("img");
        tests.create_and_start(&spec("img")).await.unwrap();
        assert_eq!(tests.ops(), vec![Op::Create]);
    }

    #[tokio::test]
    async fn an_image_copy_carries_id_labels_and_tag_and_fails_like_an_engine() {
        let (a, b) = (FakeRuntime::new(), FakeRuntime::new());
        let reference = "localstack-ec2/web:ami-0123456789abcdef0";
        let image_labels = BTreeMap::from([(labels::STORE_ID.to_string(), "store-a".to_string())]);
        a.add_labelled_image(reference, image_labels);
        a.add_image("other:latest");
        a.clear_calls();
        let mut b_events = b.events();
        let progress = CopyProgress::default();

        assert_eq!(a.copy_image_to(reference, &b, &progress).await, Ok(1024));
        assert_eq!(progress.bytes(), 1024);
        assert!(progress.started_at().is_some());
        assert_eq!(
            b.image_references(),
            vec![reference.to_string()],
            "that tag only"
        );
        let (from, to) = (a.list_amis().await.unwrap(), b.list_amis().await.unwrap());
        assert_eq!(to.len(), 1);
        assert_eq!(to[0].docker_id, from[0].docker_id, "same image id");
        assert_eq!(to[0].store_id.as_deref(), Some("store-a"), "labels kept");
        let call = |op, arg: &str| Call {
            op,
            arg: arg.to_string(),
        };
        assert_eq!(a.calls()[0], call(Op::ExportImage, reference));
        assert_eq!(b.calls()[0], call(Op::ImportImage, reference));
        let loaded = tokio::time::timeout(Duration::from_secs(1), b_events.next()).await;
        assert_eq!(
            loaded.unwrap(),
            Some(RuntimeEvent::Image {
                action: "load".into()
            })
        );

        // A missing image: NotFound, and the target never hears of it.
        b.clear_calls();
        let missing = a.copy_image_to("nope:1", &b, &progress).await;
        assert!(
            matches!(missing, Err(RuntimeError::NotFound(_))),
            "{missing:?}"
        );
        assert!(b.calls().is_empty());

        // Either side down: Unavailable, nothing copied.
        let c = FakeRuntime::new();
        c.set_down(true);
        let down = a.copy_image_to(reference, &c, &progress).await;
        assert!(
            matches!(down, Err(RuntimeError::Unavailable(_))),
            "{down:?}"
        );
        assert_eq!(c.ops(), vec![Op::ImportImage]);
        c.set_down(false);
        assert!(c.image_references().is_empty());
        a.set_down(true);
        let down = a.copy_image_to(reference, &c, &progress).await;
        assert!(
            matches!(down, Err(RuntimeError::Unavailable(_))),
            "{down:?}"
        );
        a.set_down(false);

        // Injected failures, on either side, as many times as asked.
        let refused = RuntimeError::Failed("unexpected EOF".into());
        c.fail_next(Op::ImportImage, refused.clone(), 1);
        a.fail_next(Op::ExportImage, refused.clone(), 1);
        assert_eq!(
            a.copy_image_to(reference, &c, &progress).await,
            Err(refused.clone())
        );
        assert_eq!(
            a.copy_image_to(reference, &c, &progress).await,
            Err(refused)
        );
        assert!(c.image_references().is_empty());
        assert_eq!(a.copy_image_to(reference, &c, &progress).await, Ok(1024));
        assert_eq!(c.image_references(), vec![reference.to_string()]);

        // Two engines, two daemon ids; one world's clones, one.
        let id = |rt: &FakeRuntime| rt.lock().engine_id.clone();
        assert_ne!(id(&a), id(&b));
        assert_eq!(a.info().await.unwrap().engine_id, Some(id(&a.clone())));
    }

    #[tokio::test]
    async fn a_held_copy_shows_its_progress_and_fails_when_its_source_goes_down() {
        let (a, b) = (FakeRuntime::new(), FakeRuntime::new());
        a.add_image("img:1");
        let hold = a.hold_copies().await;
        let progress = CopyProgress::default();
        let copy = tokio::spawn({
            let (a, b, progress) = (a.clone(), b.clone(), progress.clone());
            async move { a.copy_image_to("img:1", &b, &progress).await }
        });
        while progress.bytes() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(progress.bytes(), 512, "half way");
        assert!(b.image_references().is_empty(), "not there while held");
        drop(hold);
        assert_eq!(copy.await.unwrap(), Ok(1024));
        assert_eq!(b.image_references(), vec!["img:1".to_string()]);

        let c = FakeRuntime::new();
        let hold = a.hold_copies().await;
        let progress = CopyProgress::default();
        let copy = tokio::spawn({
            let (a, c, progress) = (a.clone(), c.clone(), progress.clone());
            async move { a.copy_image_to("img:1", &c, &progress).await }
        });
        while progress.bytes() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        a.set_down(true);
        drop(hold);
        let cut = copy.await.unwrap();
        assert!(matches!(cut, Err(RuntimeError::Unavailable(_))), "{cut:?}");
        assert!(c.image_references().is_empty());
        assert!(c.calls().is_empty(), "the target never saw the archive");
    }

    #[tokio::test]
    async fn image_command_defaults_to_sh_for_known_images() {
        let fake = FakeRuntime::new();
        fake.add_image("img");
        let sh = ImageCommand {
            entrypoint: vec![],
            cmd: vec!["/bin/sh".into()],
        };
        assert_eq!(fake.image_command("img").await.unwrap(), Some(sh.clone()));
        assert_eq!(fake.image_command("other").await.unwrap(), None);
        let custom = ImageCommand {
            entrypoint: vec!["/init".into()],
            cmd: vec![],
        };
        fake.set_image_command("img", custom.clone());
        fake.set_image_command("other", custom.clone());
        assert_eq!(fake.image_command("img").await.unwrap(), Some(custom));
        assert_eq!(
            fake.image_command("other").await.unwrap(),
            None,
            "still no such image"
        );
        assert_eq!(
            FakeRuntime::mock().image_command("any").await.unwrap(),
            Some(sh)
        );
    }

    #[tokio::test]
    async fn start_and_finish_times_follow_the_state() {
        let fake = FakeRuntime::new();
        fake.add_image("img");
        let s = spec("img");
        let instance = s.instance_id.clone().unwrap();
        let id = fake.create_and_start(&s).await.unwrap();
        let observed = || async { fake.inspect_instance(&instance).await.unwrap().unwrap() };
        let c = observed().await;
        let started = c.started_at.expect("started");
        assert_eq!(c.finished_at, None);
        fake.pause(&id).await.unwrap();
        fake.unpause(&id).await.unwrap();
        assert_eq!(
            observed().await.started_at,
            Some(started),
            "unpause is no start"
        );
        fake.stop(&id, Duration::from_secs(1)).await.unwrap();
        let finished = observed().await.finished_at.expect("finished");
        assert!(finished >= started);
        fake.stop(&id, Duration::from_secs(1)).await.unwrap();
        assert_eq!(
            observed().await.finished_at,
            Some(finished),
            "stopping twice changes nothing"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        fake.start(&id).await.unwrap();
        let c = observed().await;
        assert!(c.started_at.unwrap() > started);
        assert_eq!(c.finished_at, Some(finished), "kept across a restart");
        fake.set_state_behind_back(&instance, ContainerState::Exited, Some(137));
        assert!(observed().await.finished_at.unwrap() >= finished);
    }
}
