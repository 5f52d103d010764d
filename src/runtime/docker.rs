//! The Docker implementation of [`ContainerRuntime`], via bollard; no bollard type leaves this file.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::container::{
    Config, CreateContainerOptions, InspectContainerOptions, ListContainersOptions,
    RemoveContainerOptions, RestartContainerOptions, StartContainerOptions, StopContainerOptions,
};
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::image::{CommitContainerOptions, ListImagesOptions, TagImageOptions};
use bollard::models::{
    ContainerInspectResponse, ContainerSummary, EndpointSettings, EventMessage,
    EventMessageTypeEnum, HostConfig, PortBinding, PortMap, PortTypeEnum, ResourcesUlimits,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::system::EventsOptions;
use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};
use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::sync::OnceCell;
use tracing::{debug, info, warn};

use super::labels;
use super::{
    AmiImage, ContainerRuntime, ContainerSpec, ContainerState, EngineInfo, ExecOutput,
    ImageCommand, ObservedContainer, Protocol, PublishedPort, RuntimeError, RuntimeEvent,
    RuntimeResult, SignalEvidence,
};
use crate::model::{ImageId, InstanceId, Timestamp, AMI_REPOSITORY_PREFIX, CONTAINER_NAME_PREFIX};

/// How long reading the engine's event log for one container run may take.
const EVENT_LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the engine listens when neither the caller nor `DOCKER_HOST` says otherwise.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Request timeout for ordinary calls (bollard's default is 120 s). A hung engine should turn
/// into `Unavailable` well before the reconciler's patience runs out; slow calls (stop, commit)
/// get their own, longer timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Commit copies the container's writable layer; a big one can take minutes.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Extra time on top of the stop grace period for the engine to kill and reap the container.
const STOP_TIMEOUT_MARGIN: Duration = Duration::from_secs(30);

/// Docker's stop timeout `t` for a grace period: whole seconds, and at least 1, since 0
/// would skip SIGTERM entirely.
fn grace_seconds(grace: Duration) -> i64 {
    (grace.as_secs_f64().ceil() as i64).max(1)
}

/// How long `exec` waits for its command; a command still running then is reported with no exit
/// code (it cannot be killed through the API, only left behind).
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// `exec` keeps at most this much output; the rest is read and dropped so the command never
/// blocks on a full pipe.
const EXEC_OUTPUT_LIMIT: usize = 64 * 1024;

/// First and largest delay between event-stream resubscriptions.
const EVENTS_FIRST_DELAY: Duration = Duration::from_millis(250);
const EVENTS_MAX_DELAY: Duration = Duration::from_secs(5);

/// Podman names local images `localhost/<repo>`; Docker does not.
const PODMAN_LOCAL_PREFIX: &str = "localhost/";

/// How to reach the engine, decided once at [`DockerRuntime::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// A Unix socket path.
    Unix(String),
    /// Plain HTTP, `tcp://host:port` or `http://host:port`.
    Http(String),
}

impl Endpoint {
    fn parse(s: &str) -> RuntimeResult<Self> {
        if let Some(path) = s.strip_prefix("unix://") {
            Ok(Self::Unix(path.to_string()))
        } else if s.starts_with('/') {
            Ok(Self::Unix(s.to_string()))
        } else if s.starts_with("tcp://") || s.starts_with("http://") {
            Ok(Self::Http(s.to_string()))
        } else {
            Err(RuntimeError::Failed(format!(
                "unsupported docker endpoint {s:?} (expected unix://, an absolute socket path, tcp:// or http://)"
            )))
        }
    }

    /// Builds a client speaking API `version`. Does no IO except checking that a socket file exists.
    fn client(&self, version: &ClientVersion) -> Result<Docker, BollardError> {
        let secs = REQUEST_TIMEOUT.as_secs();
        match self {
            Self::Unix(path) => Docker::connect_with_unix(path, secs, version),
            Self::Http(addr) => Docker::connect_with_http(addr, secs, version),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{path}"),
            Self::Http(addr) => f.write_str(addr),
        }
    }
}

struct Inner {
    endpoint: Endpoint,
    /// The negotiated client. Empty until the engine first answers; a failed negotiation leaves
    /// it empty so the next call tries again (ec2d must run, and keep answering, without Docker).
    client: OnceCell<Docker>,
}

/// A Docker (or Podman) engine client. Cheap to clone: clones share one negotiated connection.
#[derive(Clone)]
pub struct DockerRuntime {
    inner: Arc<Inner>,
}

impl fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("endpoint", &self.inner.endpoint.to_string())
            .field(
                "negotiated",
                &self
                    .inner
                    .client
                    .get()
                    .map(|d| version_string(&d.client_version())),
            )
            .finish()
    }
}

impl DockerRuntime {
    /// Prepares a client for `endpoint`: `None` uses `DOCKER_HOST` or `/var/run/docker.sock`;
    /// `unix:///path` or `/path` is a socket; `tcp://` or `http://` is plain HTTP.
    ///
    /// Never contacts the engine, so it succeeds while the engine is down; only an unsupported
    /// endpoint scheme is an error. The API version is negotiated on first use.
    pub fn connect(endpoint: Option<&str>) -> Result<Self, RuntimeError> {
        let endpoint = match endpoint {
            Some(s) => Endpoint::parse(s)?,
            None => match std::env::var("DOCKER_HOST") {
                Ok(host) if !host.trim().is_empty() => Endpoint::parse(host.trim())?,
                _ => Endpoint::Unix(DEFAULT_SOCKET.to_string()),
            },
        };
        debug!(%endpoint, "docker runtime configured");
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                client: OnceCell::new(),
            }),
        })
    }

    /// The negotiated client, negotiating first if no call has succeeded yet.
    async fn docker(&self) -> RuntimeResult<Docker> {
        self.inner
            .client
            .get_or_try_init(|| negotiate(&self.inner.endpoint))
            .await
            .cloned()
    }

    /// The client for a call that blocks while the engine waits up to `t` seconds for a
    /// container to stop: its timeout must outlast that wait.
    async fn docker_waiting(&self, t: i64) -> RuntimeResult<Docker> {
        let wait = Duration::from_secs(u64::try_from(t).unwrap_or(0));
        Ok(self
            .docker()
            .await?
            .with_timeout(REQUEST_TIMEOUT.max(wait + STOP_TIMEOUT_MARGIN)))
    }

    /// Inspects a container by name or id; `Ok(None)` when it does not exist.
    async fn inspect_raw(
        &self,
        docker: &Docker,
        name: &str,
    ) -> RuntimeResult<Option<ContainerInspectResponse>> {
        match docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(e) => match map_error("inspect container", e) {
                RuntimeError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The instance's container if it exists and carries our owner label for that instance.
    async fn inspect_owned(
        &self,
        docker: &Docker,
        name: &str,
        instance_id: &InstanceId,
    ) -> RuntimeResult<Option<ObservedContainer>> {
        let Some(c) = self.inspect_raw(docker, name).await? else {
            return Ok(None);
        };
        let owner = c
            .config
            .as_ref()
            .and_then(|cfg| cfg.labels.as_ref())
            .and_then(|l| l.get(labels::INSTANCE_ID));
        if owner.map(String::as_str) != Some(instance_id.as_str()) {
            warn!(container = name, owner = ?owner, %instance_id, "container name taken by a foreign container; leaving it alone");
            return Err(RuntimeError::NameTaken(name.to_string()));
        }
        Ok(Some(observed_from_inspect(c, instance_id.clone())))
    }

    async fn start_with(&self, docker: &Docker, container_id: &str) -> RuntimeResult<()> {
        docker
            .start_container(container_id, None::<StartContainerOptions<String>>)
            .await
            .map_err(|e| map_error("start container", e))
    }

    /// Starts a created container. On failure the container is removed (no half-made
    /// instance), unless the engine is unreachable: then it cannot be removed either, and the
    /// next attempt adopts it through the name conflict.
    async fn start_or_remove(&self, docker: &Docker, name: &str, id: &str) -> RuntimeResult<()> {
        let result = self.start_with(docker, id).await;
        if let Err(e) = &result {
            if !matches!(e, RuntimeError::Unavailable(_)) {
                let removed = docker
                    .remove_container(
                        id,
                        Some(RemoveContainerOptions {
                            force: true,
                            v: true,
                            link: false,
                        }),
                    )
                    .await;
                match removed {
                    Ok(()) => {
                        debug!(container = %name, %id, error = %e, "removed container that failed to start")
                    }
                    Err(re) => {
                        warn!(container = %name, %id, error = %re, "could not remove container that failed to start")
                    }
                }
            }
        }
        result
    }

    /// Subscribes to container and image events. Container events are filtered by our label in
    /// code: Docker ANDs filters of different keys, so `label=` would drop every image event.
    fn subscribe(docker: &Docker, since: Option<i64>) -> EventStream {
        let filters = HashMap::from([(
            "type".to_string(),
            vec!["container".to_string(), "image".to_string()],
        )]);
        docker
            .events(Some(EventsOptions::<String> {
                since: since.map(|s| s.to_string()),
                until: None,
                filters,
            }))
            .boxed()
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<EventMessage, BollardError>> + Send>>;

/// Negotiates the API version and returns a client that speaks it.
///
/// bollard's `negotiate_version` asks `/v1.47/version`, which engines older than API 1.47
/// (Docker 20.10 speaks 1.41) reject with 400 "client version 1.47 is too new. Maximum supported
/// API version is 1.41". So: try bollard's default first; on "too new", retry at the maximum the
/// engine named, then let bollard settle on min(ours, theirs).
async fn negotiate(endpoint: &Endpoint) -> RuntimeResult<Docker> {
    let first = endpoint
        .client(API_DEFAULT_VERSION)
        .map_err(|e| map_error("connect", e))?;
    let docker = match first.negotiate_version().await {
        Ok(d) => d,
        Err(BollardError::DockerResponseServerError {
            status_code: 400,
            message,
        }) if message.contains("too new") => {
            let max = parse_max_version(&message).ok_or_else(|| {
                RuntimeError::Failed(format!(
                    "cannot negotiate the docker API version: {message}"
                ))
            })?;
            debug!(max = %version_string(&max), "engine is older than bollard's default API; downgrading");
            endpoint
                .client(&max)
                .map_err(|e| map_error("connect", e))?
                .negotiate_version()
                .await
                .map_err(|e| map_error("negotiate API version", e))?
        }
        Err(e) => return Err(map_error("negotiate API version", e)),
    };
    info!(%endpoint, api_version = %version_string(&docker.client_version()), "connected to container engine");
    Ok(docker)
}

/// Reads `1.41` out of "… Maximum supported API version is 1.41".
fn parse_max_version(message: &str) -> Option<ClientVersion> {
    let rest = message.split("Maximum supported API version is").nth(1)?;
    let word = rest.split_whitespace().next()?.trim_end_matches(['.', ',']);
    let (major, minor) = word.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

fn version_string(v: &ClientVersion) -> String {
    format!("{}.{}", v.major_version, v.minor_version)
}

/// The single place bollard errors become [`RuntimeError`]s.
///
/// - 404 -> `NotFound`; 409 -> `Conflict`. bollard already returns `Ok` for 304 ("already
///   started/stopped"), so 304 only reaches here if that changes, and then it is a `Conflict`.
/// - 5xx -> `Failed`, because Docker answers 500 for most real refusals (bad command, OCI
///   runtime errors) and retrying those forever helps nobody. Exceptions: 502/503/504 (a proxy
///   or socket forwarder in front of the engine) and 500s whose message names a transient
///   condition (timeouts, EAGAIN, "device or resource busy", a concurrent removal) -> `Unavailable`
///   or `Conflict`.
/// - Any other 4xx -> `Failed`.
/// - Transport trouble (missing socket, IO, hyper, timeout) -> `Unavailable`.
fn map_error(context: &str, err: BollardError) -> RuntimeError {
    use BollardError as E;
    let text = format!("{context}: {err}");
    match err {
        E::DockerResponseServerError {
            status_code,
            message,
        } => {
            let text = format!("{context}: {message} (HTTP {status_code})");
            match status_code {
                404 => RuntimeError::NotFound(text),
                304 | 409 => RuntimeError::Conflict(text),
                502..=504 => RuntimeError::Unavailable(text),
                500..=599 if looks_like_conflict(&message) => RuntimeError::Conflict(text),
                500..=599 if looks_transient(&message) => RuntimeError::Unavailable(text),
                _ => RuntimeError::Failed(text),
            }
        }
        E::RequestTimeoutError
        | E::IOError { .. }
        | E::HyperResponseError { .. }
        | E::HyperLegacyError { .. }
        | E::SocketNotFoundError(_)
        | E::DockerStreamError { .. } => RuntimeError::Unavailable(text),
        _ => RuntimeError::Failed(text),
    }
}

fn looks_conflict_or(message: &str, needles: &[&str]) -> bool {
    let m = message.to_ascii_lowercase();
    needles.iter().any(|n| m.contains(n))
}

fn looks_like_conflict(message: &str) -> bool {
    looks_conflict_or(
        message,
        &[
            "is already in progress",
            "is already paused",
            "is not paused",
            "is not running",
        ],
    )
}

fn looks_transient(message: &str) -> bool {
    looks_conflict_or(
        message,
        &[
            "context deadline exceeded",
            "i/o timeout",
            "timed out",
            "resource temporarily unavailable",
            "device or resource busy",
            "connection refused",
            "connection reset",
            "broken pipe",
            "try again",
        ],
    )
}

fn protocol_of(t: Option<PortTypeEnum>) -> Option<Protocol> {
    match t {
        Some(PortTypeEnum::TCP) | None => Some(Protocol::Tcp),
        Some(PortTypeEnum::UDP) => Some(Protocol::Udp),
        _ => None,
    }
}

/// Parses a `PortMap` key such as `80/tcp`.
fn parse_port_key(key: &str) -> Option<(u16, Protocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some((port.parse().ok()?, proto))
}

fn ports_from_map(map: Option<&PortMap>) -> Vec<PublishedPort> {
    let mut out: Vec<PublishedPort> = map
        .into_iter()
        .flatten()
        .filter_map(|(key, bindings)| Some((parse_port_key(key)?, bindings.as_ref()?)))
        .flat_map(|((container_port, protocol), bindings)| {
            bindings.iter().filter_map(move |b| {
                Some(PublishedPort {
                    container_port,
                    protocol,
                    host_ip: b.host_ip.clone().unwrap_or_default(),
                    host_port: b.host_port.as_deref()?.parse().ok()?,
                })
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The container's address: the legacy top-level field (set on the default bridge), else the
/// network it was created on (`--network`), else the first network by name (stable across calls).
fn container_ip(
    default_ip: Option<&str>,
    networks: Option<&HashMap<String, EndpointSettings>>,
    network_mode: Option<&str>,
) -> Option<String> {
    if let Some(ip) = default_ip.filter(|ip| !ip.is_empty()) {
        return Some(ip.to_string());
    }
    let networks = networks?;
    let ip_on = |name: &str| {
        networks
            .get(name)
            .and_then(|n| n.ip_address.clone())
            .filter(|ip| !ip.is_empty())
    };
    if let Some(ip) = network_mode.and_then(ip_on) {
        return Some(ip);
    }
    let mut names: Vec<&String> = networks.keys().collect();
    names.sort();
    names.into_iter().find_map(|n| ip_on(n))
}

/// Reads the engine's `StartedAt`/`FinishedAt` (RFC 3339 with nanoseconds). Docker writes Go's
/// zero time, `0001-01-01T00:00:00Z`, for "never"; that and unreadable values are `None`.
/// Truncated to milliseconds like every other ec2d timestamp.
fn engine_time(s: Option<&str>) -> Option<Timestamp> {
    let t = time::OffsetDateTime::parse(s?, &time::format_description::well_known::Rfc3339)
        .ok()?
        .to_offset(time::UtcOffset::UTC);
    if t.year() <= 1 {
        return None;
    }
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .ok()
}

/// A time as the events API's `since`/`until` take it: `seconds.nanoseconds` since the epoch.
fn engine_timestamp_arg(t: Timestamp) -> String {
    let nanos = t.unix_timestamp_nanos();
    format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    )
}

/// The id of the image a reference names.
async fn image_id_of(docker: &Docker, reference: &str) -> RuntimeResult<String> {
    let image = docker
        .inspect_image(reference)
        .await
        .map_err(|e| map_error("inspect image", e))?;
    image
        .id
        .ok_or_else(|| RuntimeError::Failed(format!("image {reference} has no id")))
}

/// The engine's create request for a spec: ec2d's settings with `EC2_DOCKER_FLAGS` on top.
fn container_config(spec: &ContainerSpec, instance_id: &InstanceId) -> Config<String> {
    let flags = &spec.flags;
    // Later inserts win: the operator's flag labels, then the spec's, then the owner labels,
    // which must never be overridden or the container would be lost to ec2d.
    let mut labels_map: HashMap<String, String> = flags.labels.clone().into_iter().collect();
    labels_map.extend(spec.labels.clone());
    labels_map.insert(labels::INSTANCE_ID.to_string(), instance_id.to_string());
    labels_map.insert(labels::MANAGED.to_string(), "true".to_string());

    let mut exposed_ports: HashMap<String, HashMap<(), ()>> = HashMap::new();
    let mut port_bindings: PortMap = HashMap::new();
    let requested = spec
        .ports
        .iter()
        .map(|p| (p.container_port, p.protocol, "127.0.0.1", p.host_port));
    let published = flags.publish.iter().map(|p| {
        (
            p.container_port,
            p.protocol,
            p.host_ip.as_str(),
            p.host_port,
        )
    });
    for (container_port, protocol, host_ip, host_port) in requested.chain(published) {
        let key = format!("{container_port}/{}", protocol.as_str());
        exposed_ports.insert(key.clone(), HashMap::new());
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(host_ip.to_string()),
                // "" asks the engine for a free port.
                host_port: Some(host_port.map(|h| h.to_string()).unwrap_or_default()),
            });
    }

    let env: Vec<String> = spec.env.iter().chain(&flags.env).cloned().collect();
    let binds: Vec<String> = spec.binds.iter().chain(&flags.volumes).cloned().collect();
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let ulimits: Vec<ResourcesUlimits> = flags
        .ulimits
        .iter()
        .map(|u| ResourcesUlimits {
            name: Some(u.name.clone()),
            soft: Some(u.soft),
            hard: Some(u.hard),
        })
        .collect();

    Config {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        env: Some(env),
        labels: Some(labels_map),
        hostname: spec.hostname.clone(),
        user: flags.user.clone(),
        exposed_ports: Some(exposed_ports),
        tty: Some(false),
        open_stdin: Some(false),
        stdin_once: Some(false),
        attach_stdin: Some(false),
        attach_stdout: Some(false),
        attach_stderr: Some(false),
        host_config: Some(HostConfig {
            init: Some(spec.init),
            binds: non_empty(&binds),
            port_bindings: Some(port_bindings),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            privileged: Some(flags.privileged),
            extra_hosts: non_empty(&flags.add_hosts),
            network_mode: flags.network.clone(),
            dns: non_empty(&flags.dns),
            nano_cpus: flags.nano_cpus,
            memory: flags.memory_bytes,
            ulimits: (!ulimits.is_empty()).then_some(ulimits),
            cap_add: non_empty(&flags.cap_add),
            tmpfs: (!flags.tmpfs.is_empty()).then(|| flags.tmpfs.clone().into_iter().collect()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The summary has no exit code field; its status reads "Exited (137) 5 seconds ago".
fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split_once(')')?.0.parse().ok()
}

fn has_exit_code(state: ContainerState) -> bool {
    matches!(state, ContainerState::Exited | ContainerState::Dead)
}

fn observed_from_summary(c: ContainerSummary) -> Option<ObservedContainer> {
    let labels: BTreeMap<String, String> = c.labels.unwrap_or_default().into_iter().collect();
    let raw_id = labels.get(labels::INSTANCE_ID)?;
    let instance_id = match InstanceId::parse(raw_id) {
        Ok(id) => id,
        Err(e) => {
            warn!(container = ?c.id, label = %raw_id, error = %e, "skipping container with a malformed owner label");
            return None;
        }
    };
    let state = ContainerState::parse(c.state.as_deref().unwrap_or(""));
    let exit_code = if has_exit_code(state) {
        c.status.as_deref().and_then(exit_code_from_status)
    } else {
        None
    };
    let mut ports: Vec<PublishedPort> = c
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            Some(PublishedPort {
                container_port: p.private_port,
                protocol: protocol_of(p.typ)?,
                host_ip: p.ip.unwrap_or_default(),
                host_port: p.public_port?,
            })
        })
        .collect();
    ports.sort();
    ports.dedup();
    Some(ObservedContainer {
        // The list answer carries no start or finish times; only inspect has them, and one
        // inspect per container would make every resync cost N requests.
        started_at: None,
        finished_at: None,
        id: c.id.unwrap_or_default(),
        name: c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        instance_id,
        state,
        exit_code,
        ip_address: container_ip(
            None,
            c.network_settings
                .as_ref()
                .and_then(|n| n.networks.as_ref()),
            c.host_config
                .as_ref()
                .and_then(|h| h.network_mode.as_deref()),
        ),
        image: c.image.unwrap_or_default(),
        ports,
        labels,
    })
}

fn observed_from_inspect(
    c: ContainerInspectResponse,
    instance_id: InstanceId,
) -> ObservedContainer {
    let state = c
        .state
        .as_ref()
        .and_then(|s| s.status)
        .map(|s| ContainerState::parse(s.as_ref()))
        .unwrap_or(ContainerState::Dead);
    let exit_code = if has_exit_code(state) {
        c.state.as_ref().and_then(|s| s.exit_code)
    } else {
        None
    };
    let net = c.network_settings.as_ref();
    let ip_address = container_ip(
        net.and_then(|n| n.ip_address.as_deref()),
        net.and_then(|n| n.networks.as_ref()),
        c.host_config
            .as_ref()
            .and_then(|h| h.network_mode.as_deref()),
    );
    let started_at = engine_time(c.state.as_ref().and_then(|s| s.started_at.as_deref()));
    let finished_at = engine_time(c.state.as_ref().and_then(|s| s.finished_at.as_deref()));
    let (labels, image) = match c.config {
        Some(cfg) => (
            cfg.labels.unwrap_or_default().into_iter().collect(),
            cfg.image.unwrap_or_default(),
        ),
        None => (BTreeMap::new(), String::new()),
    };
    ObservedContainer {
        started_at,
        finished_at,
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        instance_id,
        state,
        exit_code,
        ip_address,
        image,
        ports: ports_from_map(net.and_then(|n| n.ports.as_ref())),
        labels,
    }
}

/// Splits `localstack-ec2/<name>:<ami-id>` (or Podman's `localhost/…`) into name and AMI id.
fn parse_ami_tag(repo_tag: &str) -> Option<(String, ImageId)> {
    let rest = repo_tag
        .strip_prefix(PODMAN_LOCAL_PREFIX)
        .unwrap_or(repo_tag);
    let rest = rest.strip_prefix(AMI_REPOSITORY_PREFIX)?;
    let (name, tag) = rest.rsplit_once(':')?;
    if name.is_empty() {
        return None;
    }
    Some((name.to_string(), ImageId::parse(tag).ok()?))
}

/// Container actions that change nothing the reconciler looks at.
fn ignored_container_action(action: &str) -> bool {
    action.starts_with("exec_")
        || matches!(
            action,
            "attach"
                | "detach"
                | "resize"
                | "top"
                | "export"
                | "copy"
                | "archive-path"
                | "extract-to-dir"
        )
}

/// Image actions that can add or remove an AMI.
fn relevant_image_action(action: &str) -> bool {
    matches!(
        action,
        "tag"
            | "untag"
            | "delete"
            | "import"
            | "load"
            | "pull"
            | "commit"
            | "prune"
            | "create"
            | "remove"
    )
}

/// Maps one engine event to ours (zero, one or two of them).
fn map_event(msg: EventMessage) -> Vec<RuntimeEvent> {
    // "exec_start: sh -c …" and "health_status: healthy" carry details after a colon.
    let action = msg
        .action
        .as_deref()
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if action.is_empty() {
        return Vec::new();
    }
    match msg.typ {
        Some(EventMessageTypeEnum::CONTAINER) => {
            if ignored_container_action(&action) {
                return Vec::new();
            }
            let mut out = Vec::new();
            let owner = msg
                .actor
                .as_ref()
                .and_then(|a| a.attributes.as_ref())
                .and_then(|a| a.get(labels::INSTANCE_ID));
            if let Some(owner) = owner {
                match InstanceId::parse(owner) {
                    Ok(instance_id) => out.push(RuntimeEvent::Container {
                        instance_id,
                        action: action.clone(),
                    }),
                    Err(e) => {
                        debug!(label = %owner, error = %e, "event for a container with a malformed owner label")
                    }
                }
            }
            // A commit makes an image (possibly an AMI) without any image event of its own.
            if action == "commit" {
                out.push(RuntimeEvent::Image { action });
            }
            out
        }
        Some(EventMessageTypeEnum::IMAGE) if relevant_image_action(&action) => {
            vec![RuntimeEvent::Image { action }]
        }
        _ => Vec::new(),
    }
}

/// State of the never-ending event stream.
struct EventsState {
    runtime: DockerRuntime,
    stream: Option<EventStream>,
    /// Events mapped but not yet handed out (a commit yields two).
    pending: VecDeque<RuntimeEvent>,
    /// Consecutive failures; drives the backoff and the warn-once logging.
    failures: u32,
    /// A subscription was lost (or never made): the next successful one must say `Resubscribed`.
    gap: bool,
    /// Engine time of the last event seen; resubscriptions replay from shortly before it.
    last_event_time: Option<i64>,
}

impl EventsState {
    fn delay(&self) -> Duration {
        let factor = 1u32 << self.failures.saturating_sub(1).min(6);
        (EVENTS_FIRST_DELAY * factor).min(EVENTS_MAX_DELAY)
    }

    fn note_failure(&mut self, what: &str, error: &dyn fmt::Display) {
        if self.failures == 0 {
            warn!(%error, "docker event stream {what}; resubscribing");
        } else {
            debug!(%error, failures = self.failures, "docker event stream {what}; still retrying");
        }
        self.failures += 1;
        self.gap = true;
        self.stream = None;
    }

    /// Makes sure a subscription exists; returns `Resubscribed` when it had to make one after a gap.
    async fn ensure_subscribed(&mut self) -> Option<RuntimeEvent> {
        while self.stream.is_none() {
            if self.failures > 0 {
                tokio::time::sleep(self.delay()).await;
            }
            // Subscribing is lazy in bollard (the request goes out on first poll, and an idle
            // stream yields nothing), so a ping first tells a live engine from a dead one and keeps
            // `Resubscribed` from being announced once per failed attempt.
            let docker = match self.runtime.docker().await {
                Ok(d) => d,
                Err(e) => {
                    self.note_failure("cannot connect", &e);
                    continue;
                }
            };
            if let Err(e) = docker.ping().await {
                self.note_failure("cannot connect", &map_error("ping", e));
                continue;
            }
            // Replay from a little before the last event (or now) so events between the ping
            // and the subscription are not lost; duplicates are harmless to a level-triggered
            // reconciler.
            let since = if self.gap {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                Some(self.last_event_time.unwrap_or(now).min(now) - 1)
            } else {
                None
            };
            self.stream = Some(DockerRuntime::subscribe(&docker, since));
            debug!(?since, "subscribed to docker events");
            if self.gap {
                self.gap = false;
                return Some(RuntimeEvent::Resubscribed);
            }
        }
        None
    }

    async fn next_event(&mut self) -> RuntimeEvent {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return ev;
            }
            if let Some(ev) = self.ensure_subscribed().await {
                return ev;
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            match stream.next().await {
                Some(Ok(msg)) => {
                    if self.failures > 0 {
                        info!("docker event stream recovered");
                    }
                    self.failures = 0;
                    if let Some(t) = msg.time {
                        self.last_event_time = Some(t);
                    }
                    self.pending.extend(map_event(msg));
                }
                Some(Err(e)) => self.note_failure("failed", &map_error("events", e)),
                None => self.note_failure("ended", &"end of stream"),
            }
        }
    }
}

impl ContainerRuntime for DockerRuntime {
    #[tracing::instrument(skip(self), level = "debug")]
    async fn info(&self) -> RuntimeResult<EngineInfo> {
        let docker = self.docker().await?;
        let v = docker
            .version()
            .await
            .map_err(|e| map_error("version", e))?;
        Ok(EngineInfo {
            version: v.version.unwrap_or_default(),
            api_version: version_string(&docker.client_version()),
        })
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn list_managed(&self) -> RuntimeResult<Vec<ObservedContainer>> {
        let docker = self.docker().await?;
        let filters = HashMap::from([("label".to_string(), vec![labels::INSTANCE_ID.to_string()])]);
        let list = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            }))
            .await
            .map_err(|e| map_error("list containers", e))?;
        // observed_from_summary re-checks the label, so an engine that ignores the filter
        // still never hands us a foreign container.
        let out: Vec<ObservedContainer> =
            list.into_iter().filter_map(observed_from_summary).collect();
        debug!(count = out.len(), "listed managed containers");
        Ok(out)
    }

    #[tracing::instrument(skip(self), level = "debug", fields(instance_id = %instance_id))]
    async fn inspect_instance(
        &self,
        instance_id: &InstanceId,
    ) -> RuntimeResult<Option<ObservedContainer>> {
        let docker = self.docker().await?;
        let name = format!("{CONTAINER_NAME_PREFIX}{instance_id}");
        self.inspect_owned(&docker, &name, instance_id).await
    }

    #[tracing::instrument(skip(self, spec), level = "debug", fields(name = %spec.name, image = %spec.image))]
    async fn create_and_start(&self, spec: &ContainerSpec) -> RuntimeResult<String> {
        // Never create a container without an owner: it would be invisible to ec2d forever.
        let instance_id = match &spec.instance_id {
            Some(id) => id.clone(),
            None => spec
                .name
                .strip_prefix(CONTAINER_NAME_PREFIX)
                .and_then(|s| InstanceId::parse(s).ok())
                .ok_or_else(|| {
                    RuntimeError::Failed(format!(
                        "container spec {:?} has no instance id",
                        spec.name
                    ))
                })?,
        };
        let name = if spec.name.is_empty() {
            format!("{CONTAINER_NAME_PREFIX}{instance_id}")
        } else {
            spec.name.clone()
        };
        let docker = self.docker().await?;

        let created = docker
            .create_container(
                Some(CreateContainerOptions {
                    name: name.clone(),
                    platform: spec.flags.platform.clone(),
                }),
                container_config(spec, &instance_id),
            )
            .await;
        let id = match created {
            Ok(resp) => {
                for w in &resp.warnings {
                    warn!(container = %name, warning = %w, "engine warning on create");
                }
                resp.id
            }
            Err(e) => match map_error("create container", e) {
                // The name is taken, e.g. we crashed between create and recording it. Adopt the
                // container if it is ours; never touch someone else's.
                RuntimeError::Conflict(msg) => {
                    debug!(container = %name, %msg, "name taken; checking whether the container is ours");
                    let Some(existing) = self.inspect_owned(&docker, &name, &instance_id).await?
                    else {
                        // Removed since; the next attempt will create it.
                        return Err(RuntimeError::Conflict(msg));
                    };
                    match existing.state {
                        // Never started: we crashed between create and start.
                        ContainerState::Created => {
                            self.start_or_remove(&docker, &name, &existing.id).await?
                        }
                        ContainerState::Exited | ContainerState::Dead => {
                            self.start_with(&docker, &existing.id).await?
                        }
                        _ => {}
                    }
                    info!(container = %name, id = %existing.id, "adopted existing container");
                    return Ok(existing.id);
                }
                // A missing image is a bad image, not a vanished object: retrying will not help.
                RuntimeError::NotFound(msg) => return Err(RuntimeError::Failed(msg)),
                other => return Err(other),
            },
        };

        self.start_or_remove(&docker, &name, &id).await?;
        debug!(container = %name, %id, "container created and started");
        Ok(id)
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn start(&self, container_id: &str) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        self.start_with(&docker, container_id).await
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn pause(&self, container_id: &str) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        docker
            .pause_container(container_id)
            .await
            .map_err(|e| map_error("pause container", e))
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn unpause(&self, container_id: &str) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        docker
            .unpause_container(container_id)
            .await
            .map_err(|e| map_error("unpause container", e))
    }

    #[tracing::instrument(skip(self), level = "debug", fields(grace_s = grace.as_secs_f64()))]
    async fn stop(&self, container_id: &str, grace: Duration) -> RuntimeResult<()> {
        let t = grace_seconds(grace);
        self.docker_waiting(t)
            .await?
            .stop_container(container_id, Some(StopContainerOptions { t }))
            .await
            .map_err(|e| map_error("stop container", e))
    }

    #[tracing::instrument(skip(self), level = "debug", fields(grace_s = grace.as_secs_f64()))]
    async fn restart(&self, container_id: &str, grace: Duration) -> RuntimeResult<()> {
        let t = grace_seconds(grace);
        self.docker_waiting(t)
            .await?
            .restart_container(
                container_id,
                Some(RestartContainerOptions { t: t as isize }),
            )
            .await
            .map_err(|e| map_error("restart container", e))
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn remove(&self, container_id: &str) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match docker.remove_container(container_id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) => match map_error("remove container", e) {
                RuntimeError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn commit(
        &self,
        container_id: &str,
        repository: &str,
        tag: &str,
    ) -> RuntimeResult<String> {
        let docker = self.docker().await?.with_timeout(COMMIT_TIMEOUT);
        // pause=true freezes a running container for a consistent filesystem; the engine skips
        // the pause (and the unpause) for a container that is already paused.
        let commit = docker
            .commit_container(
                CommitContainerOptions {
                    container: container_id.to_string(),
                    repo: repository.to_string(),
                    tag: tag.to_string(),
                    pause: true,
                    ..Default::default()
                },
                Config::<String>::default(),
            )
            .await
            .map_err(|e| map_error("commit container", e))?;
        if let Some(id) = commit.id.filter(|id| !id.is_empty()) {
            return Ok(id);
        }
        // bollard 0.18 reads the answer's `ID` but the engine sends `Id`, so the id is always
        // missing: look the new tag up instead.
        image_id_of(&docker, &format!("{repository}:{tag}")).await
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn tag_image(&self, source: &str, repository: &str, tag: &str) -> RuntimeResult<String> {
        let docker = self.docker().await?;
        docker
            .tag_image(
                source,
                Some(TagImageOptions {
                    repo: repository,
                    tag,
                }),
            )
            .await
            .map_err(|e| map_error("tag image", e))?;
        image_id_of(&docker, &format!("{repository}:{tag}")).await
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn list_amis(&self) -> RuntimeResult<Vec<AmiImage>> {
        let docker = self.docker().await?;
        let images = docker
            .list_images(Some(ListImagesOptions::<String> {
                all: false,
                ..Default::default()
            }))
            .await
            .map_err(|e| map_error("list images", e))?;
        // The summary has no architecture; inspect each AMI image once (tags share an image).
        let mut arch: HashMap<String, Option<String>> = HashMap::new();
        let mut out = Vec::new();
        for img in images {
            for repo_tag in &img.repo_tags {
                let Some((name, ami_id)) = parse_ami_tag(repo_tag) else {
                    continue;
                };
                if !arch.contains_key(&img.id) {
                    let a = match docker.inspect_image(&img.id).await {
                        Ok(i) => i.architecture.filter(|a| !a.is_empty()),
                        Err(e) => match map_error("inspect image", e) {
                            // Deleted meanwhile: list it without an architecture.
                            RuntimeError::NotFound(_) => None,
                            other => return Err(other),
                        },
                    };
                    arch.insert(img.id.clone(), a);
                }
                out.push(AmiImage {
                    ami_id,
                    name,
                    reference: repo_tag.clone(),
                    docker_id: img.id.clone(),
                    created: time::OffsetDateTime::from_unix_timestamp(img.created).ok(),
                    size_bytes: Some(img.size),
                    architecture: arch.get(&img.id).cloned().flatten(),
                });
            }
        }
        out.sort_by(|a, b| {
            a.ami_id
                .cmp(&b.ami_id)
                .then_with(|| a.reference.cmp(&b.reference))
        });
        debug!(count = out.len(), "listed AMIs");
        Ok(out)
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn image_exists(&self, reference: &str) -> RuntimeResult<bool> {
        let docker = self.docker().await?;
        match docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(e) => match map_error("inspect image", e) {
                RuntimeError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    #[tracing::instrument(skip(self, cmd), level = "debug", fields(cmd = ?cmd.first()))]
    async fn exec(&self, container_id: &str, cmd: Vec<String>) -> RuntimeResult<ExecOutput> {
        if cmd.is_empty() {
            return Err(RuntimeError::Failed("exec: empty command".into()));
        }
        let deadline = tokio::time::Instant::now() + EXEC_TIMEOUT;
        // The attached stream lives as long as the command: the client must outwait our deadline.
        let docker = self
            .docker()
            .await?
            .with_timeout(EXEC_TIMEOUT + STOP_TIMEOUT_MARGIN);
        let created = docker
            .create_exec(
                container_id,
                CreateExecOptions::<String> {
                    cmd: Some(cmd),
                    attach_stdin: Some(false),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    // Numeric, so images without /etc/passwd work; overrides any `--user` flag.
                    user: Some("0".to_string()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| map_error("create exec", e))?;
        let started = docker
            .start_exec(&created.id, None::<StartExecOptions>)
            .await
            .map_err(|e| map_error("start exec", e))?;

        let mut output = Vec::new();
        let mut dropped = 0usize;
        let mut finished_output = true;
        if let StartExecResults::Attached {
            output: mut stream, ..
        } = started
        {
            loop {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Err(_) => {
                        finished_output = false;
                        break;
                    }
                    Ok(None) => break,
                    Ok(Some(Ok(chunk))) => {
                        let bytes = chunk.into_bytes();
                        let room = EXEC_OUTPUT_LIMIT.saturating_sub(output.len());
                        output.extend_from_slice(&bytes[..bytes.len().min(room)]);
                        dropped += bytes.len().saturating_sub(room);
                    }
                    Ok(Some(Err(e))) => return Err(map_error("exec output", e)),
                }
            }
        }
        if dropped > 0 {
            debug!(%container_id, dropped, "exec output cut at the limit");
        }

        // The stream ends when the command's stdio closes; its exit code may land a moment later.
        let mut pause = Duration::from_millis(5);
        let exit_code = loop {
            let info = docker
                .inspect_exec(&created.id)
                .await
                .map_err(|e| map_error("inspect exec", e))?;
            if info.running != Some(true) {
                break info.exit_code;
            }
            if !finished_output || tokio::time::Instant::now() >= deadline {
                warn!(%container_id, exec_id = %created.id, timeout_s = EXEC_TIMEOUT.as_secs(), "exec still running at the deadline; leaving it");
                break None;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        };
        Ok(ExecOutput {
            exit_code,
            output: String::from_utf8_lossy(&output).into_owned(),
        })
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn image_command(&self, reference: &str) -> RuntimeResult<Option<ImageCommand>> {
        let docker = self.docker().await?;
        match docker.inspect_image(reference).await {
            Ok(image) => {
                let config = image.config.unwrap_or_default();
                Ok(Some(ImageCommand {
                    entrypoint: config.entrypoint.unwrap_or_default(),
                    cmd: config.cmd.unwrap_or_default(),
                }))
            }
            Err(e) => match map_error("inspect image", e) {
                RuntimeError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn signal_evidence(
        &self,
        container_id: &str,
        started_at: Timestamp,
        finished_at: Timestamp,
    ) -> RuntimeResult<SignalEvidence> {
        let docker = self.docker().await?;
        // `until` in the future would hold the request open until then.
        let now = time::OffsetDateTime::now_utc();
        let since = started_at - time::Duration::seconds(2);
        let until = (finished_at + time::Duration::seconds(2)).min(now);
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("container".to_string(), vec![container_id.to_string()]),
            (
                "event".to_string(),
                vec![
                    "start".to_string(),
                    "restart".to_string(),
                    "kill".to_string(),
                ],
            ),
        ]);
        let stream = docker.events(Some(EventsOptions::<String> {
            since: Some(engine_timestamp_arg(since)),
            until: Some(engine_timestamp_arg(until)),
            filters,
        }));
        let read = tokio::time::timeout(EVENT_LOG_TIMEOUT, stream.collect::<Vec<_>>()).await;
        let Ok(messages) = read else {
            debug!(%container_id, "event log read timed out");
            return Ok(SignalEvidence::Unknown);
        };
        let mut events = Vec::new();
        for message in messages {
            let message = message.map_err(|e| map_error("events", e))?;
            if let (Some(action), Some(at)) = (message.action, message.time_nano) {
                events.push((action, i128::from(at)));
            }
        }
        let evidence = SignalEvidence::from_log(
            events.iter().map(|(a, t)| (a.as_str(), *t)),
            started_at,
            finished_at,
        );
        debug!(%container_id, events = events.len(), ?evidence, "read the engine's event log");
        Ok(evidence)
    }

    fn events(&self) -> BoxStream<'static, RuntimeEvent> {
        let state = EventsState {
            runtime: self.clone(),
            stream: None,
            pending: VecDeque::new(),
            failures: 0,
            gap: false,
            last_event_time: None,
        };
        futures::stream::unfold(state, |mut state| async move {
            let ev = state.next_event().await;
            Some((ev, state))
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            Endpoint::parse("unix:///x.sock").unwrap(),
            Endpoint::Unix("/x.sock".into())
        );
        assert_eq!(
            Endpoint::parse("/x.sock").unwrap(),
            Endpoint::Unix("/x.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://h:2375").unwrap(),
            Endpoint::Http("tcp://h:2375".into())
        );
        assert!(Endpoint::parse("ssh://h").is_err());
    }

    #[test]
    fn max_version_is_read_from_the_too_new_message() {
        let v = parse_max_version(
            "client version 1.47 is too new. Maximum supported API version is 1.41",
        )
        .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(parse_max_version("something else").is_none());
    }

    #[test]
    fn errors_are_classified() {
        let server = |status_code: u16, message: &str| BollardError::DockerResponseServerError {
            status_code,
            message: message.into(),
        };
        assert!(matches!(
            map_error("x", server(404, "no such container")),
            RuntimeError::NotFound(_)
        ));
        assert!(matches!(
            map_error("x", server(409, "already paused")),
            RuntimeError::Conflict(_)
        ));
        assert!(matches!(
            map_error("x", server(304, "")),
            RuntimeError::Conflict(_)
        ));
        assert!(matches!(
            map_error("x", server(400, "bad")),
            RuntimeError::Failed(_)
        ));
        assert!(matches!(
            map_error("x", server(500, "exec: not found")),
            RuntimeError::Failed(_)
        ));
        assert!(matches!(
            map_error("x", server(503, "")),
            RuntimeError::Unavailable(_)
        ));
        assert!(matches!(
            map_error("x", server(500, "context deadline exceeded")),
            RuntimeError::Unavailable(_)
        ));
        assert!(matches!(
            map_error("x", BollardError::RequestTimeoutError),
            RuntimeError::Unavailable(_)
        ));
        assert!(matches!(
            map_error("x", BollardError::SocketNotFoundError("/nope".into())),
            RuntimeError::Unavailable(_)
        ));
    }

    #[test]
    fn ami_tags_parse() {
        let (name, ami) = parse_ami_tag("localstack-ec2/ubuntu:ami-000001").unwrap();
        assert_eq!((name.as_str(), ami.as_str()), ("ubuntu", "ami-000001"));
        assert!(parse_ami_tag("localhost/localstack-ec2/ubuntu:ami-00ff").is_some());
        assert!(parse_ami_tag("localstack-ec2/ubuntu:latest").is_none());
        assert!(parse_ami_tag("localstack-ec2:ami-local").is_none());
        assert!(parse_ami_tag("other/ubuntu:ami-000001").is_none());
    }

    #[test]
    fn status_exit_codes_and_port_keys_parse() {
        assert_eq!(
            exit_code_from_status("Exited (137) 5 seconds ago"),
            Some(137)
        );
        assert_eq!(exit_code_from_status("Up 3 minutes"), None);
        assert_eq!(parse_port_key("22/tcp"), Some((22, Protocol::Tcp)));
        assert_eq!(parse_port_key("53/udp"), Some((53, Protocol::Udp)));
        assert_eq!(parse_port_key("9/sctp"), None);
    }

    #[test]
    fn engine_times_parse_and_zero_time_is_none() {
        let t = engine_time(Some("2024-05-07T21:09:36.123456789Z")).unwrap();
        assert_eq!(
            crate::model::format_timestamp(t),
            "2024-05-07T21:09:36.123Z"
        );
        assert_eq!(t.nanosecond(), 123_000_000);
        let t = engine_time(Some("2024-05-07T23:09:36.5+02:00")).unwrap();
        assert_eq!(t.offset(), time::UtcOffset::UTC);
        assert_eq!(t.hour(), 21);
        assert_eq!(engine_time(Some("0001-01-01T00:00:00Z")), None);
        assert_eq!(engine_time(Some("")), None);
        assert_eq!(engine_time(Some("yesterday")), None);
        assert_eq!(engine_time(None), None);
    }

    #[test]
    fn container_ip_prefers_the_default_then_the_chosen_network() {
        let endpoint = |ip: &str| EndpointSettings {
            ip_address: Some(ip.to_string()),
            ..Default::default()
        };
        let nets = HashMap::from([
            ("aaa".to_string(), endpoint("10.1.0.2")),
            ("mynet".to_string(), endpoint("10.2.0.2")),
            ("empty".to_string(), endpoint("")),
        ]);
        assert_eq!(
            container_ip(Some("172.17.0.2"), Some(&nets), Some("mynet")).as_deref(),
            Some("172.17.0.2")
        );
        assert_eq!(
            container_ip(Some(""), Some(&nets), Some("mynet")).as_deref(),
            Some("10.2.0.2")
        );
        // "default" (the bridge) is not a key in Networks: fall back to the first by name.
        assert_eq!(
            container_ip(None, Some(&nets), Some("default")).as_deref(),
            Some("10.1.0.2")
        );
        assert_eq!(
            container_ip(None, Some(&nets), Some("empty")).as_deref(),
            Some("10.1.0.2")
        );
        assert_eq!(container_ip(None, None, Some("mynet")), None);
        assert_eq!(container_ip(None, Some(&HashMap::new()), None), None);
    }

    #[test]
    fn the_create_request_merges_flags_under_our_settings() {
        let id = InstanceId::generate();
        let spec = ContainerSpec {
            name: format!("{CONTAINER_NAME_PREFIX}{id}"),
            instance_id: Some(id.clone()),
            image: "img".into(),
            env: vec!["A=spec".into()],
            labels: BTreeMap::from([("shared".to_string(), "spec".to_string())]),
            binds: vec!["/h:/c".into()],
            ports: vec![super::super::PortRequest {
                container_port: 22,
                protocol: Protocol::Tcp,
                host_port: None,
            }],
            flags: crate::runtime::DockerFlags::parse_with_env(
                &format!(
                    "-e A=flag -e B=2 -v /f:/g -p 0.0.0.0:8022:22 -p 53/udp --label shared=flag \
                     --label {}=i-0000000000000dead --label {}=false --label extra=1 \
                     --privileged --add-host h:1.2.3.4 --network n --dns 9.9.9.9 --cpus 2 \
                     -m 1g -u 7 --ulimit nofile=1:2 --cap-add NET_ADMIN --tmpfs /t:size=1m",
                    labels::INSTANCE_ID,
                    labels::MANAGED
                ),
                |_| None,
            )
            .unwrap(),
            ..Default::default()
        };
        let c = container_config(&spec, &id);
        assert_eq!(c.env.unwrap(), vec!["A=spec", "A=flag", "B=2"]);
        let l = c.labels.unwrap();
        assert_eq!(l[labels::INSTANCE_ID], id.as_str());
        assert_eq!(l[labels::MANAGED], "true");
        assert_eq!(l["shared"], "spec");
        assert_eq!(l["extra"], "1");
        let exposed: BTreeSet<String> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(
            exposed,
            BTreeSet::from(["22/tcp".to_string(), "53/udp".to_string()])
        );
        assert_eq!(c.user.as_deref(), Some("7"));
        let h = c.host_config.unwrap();
        assert_eq!(h.binds.unwrap(), vec!["/h:/c", "/f:/g"]);
        let pb = h.port_bindings.unwrap();
        let b22: Vec<(String, String)> = pb["22/tcp"]
            .clone()
            .unwrap()
            .into_iter()
            .map(|b| (b.host_ip.unwrap(), b.host_port.unwrap()))
            .collect();
        assert_eq!(
            b22,
            vec![
                ("127.0.0.1".to_string(), String::new()),
                ("0.0.0.0".to_string(), "8022".to_string())
            ]
        );
        assert_eq!(
            pb["53/udp"].clone().unwrap()[0].host_ip.as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(h.privileged, Some(true));
        assert_eq!(h.extra_hosts.unwrap(), vec!["h:1.2.3.4"]);
        assert_eq!(h.network_mode.as_deref(), Some("n"));
        assert_eq!(h.dns.unwrap(), vec!["9.9.9.9"]);
        assert_eq!(h.nano_cpus, Some(2_000_000_000));
        assert_eq!(h.memory, Some(1 << 30));
        let u = &h.ulimits.unwrap()[0];
        assert_eq!(
            (u.name.as_deref(), u.soft, u.hard),
            (Some("nofile"), Some(1), Some(2))
        );
        assert_eq!(h.cap_add.unwrap(), vec!["NET_ADMIN"]);
        assert_eq!(h.tmpfs.unwrap()["/t"], "size=1m");
        assert_eq!(h.init, Some(false));
    }

    #[test]
    fn without_flags_the_create_request_sets_nothing_extra() {
        let id = InstanceId::generate();
        let spec = ContainerSpec {
            instance_id: Some(id.clone()),
            image: "img".into(),
            ..Default::default()
        };
        let c = container_config(&spec, &id);
        assert_eq!(c.user, None);
        let h = c.host_config.unwrap();
        assert_eq!(h.privileged, Some(false));
        assert_eq!(
            (h.binds, h.extra_hosts, h.network_mode, h.dns),
            (None, None, None, None)
        );
        assert_eq!((h.nano_cpus, h.memory), (None, None));
        assert!(h.ulimits.is_none() && h.cap_add.is_none() && h.tmpfs.is_none());
    }

    #[test]
    fn event_actions_are_normalised() {
        let ev = |typ, action: &str, owner: Option<&str>| EventMessage {
            typ: Some(typ),
            action: Some(action.into()),
            actor: Some(bollard::models::EventActor {
                id: Some("abc".into()),
                attributes: owner
                    .map(|o| HashMap::from([(labels::INSTANCE_ID.to_string(), o.to_string())])),
            }),
            ..Default::default()
        };
        let id = "i-0123456789abcdef0";
        assert_eq!(
            map_event(ev(EventMessageTypeEnum::CONTAINER, "pause", Some(id))),
            vec![RuntimeEvent::Container {
                instance_id: InstanceId::parse(id).unwrap(),
                action: "pause".into()
            }]
        );
        assert!(map_event(ev(
            EventMessageTypeEnum::CONTAINER,
            "exec_start: sh -c true",
            Some(id)
        ))
        .is_empty());
        assert!(map_event(ev(EventMessageTypeEnum::CONTAINER, "die", None)).is_empty());
        assert_eq!(
            map_event(ev(
                EventMessageTypeEnum::CONTAINER,
                "health_status: healthy",
                Some(id)
            ))
            .len(),
            1
        );
        assert_eq!(
            map_event(ev(EventMessageTypeEnum::CONTAINER, "commit", Some(id))).len(),
            2
        );
        assert_eq!(
            map_event(ev(EventMessageTypeEnum::IMAGE, "tag", None)),
            vec![RuntimeEvent::Image {
                action: "tag".into()
            }]
        );
        assert!(map_event(ev(EventMessageTypeEnum::IMAGE, "push", None)).is_empty());
    }
}
