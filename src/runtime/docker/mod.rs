//! The Docker implementation of [`ContainerRuntime`], via bollard; no bollard type leaves this module.
//!
//! `connect` reaches the engine and negotiates the API version, `errors` maps bollard's
//! errors to [`RuntimeError`], `convert` translates between bollard's types and ours,
//! `events` keeps the engine's event stream alive, `archive` relays a tar stream from one
//! request into another (for `volumes`' copies and `images`' copies between engines); the
//! trait impl lives here.

mod archive;
mod connect;
mod convert;
mod errors;
mod events;
mod images;
mod networks;
mod ssh;
mod volumes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::container::{
    Config, CreateContainerOptions, InspectContainerOptions, ListContainersOptions, LogOutput,
    LogsOptions, RemoveContainerOptions, RestartContainerOptions, StartContainerOptions,
    StopContainerOptions, UpdateContainerOptions,
};
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::image::{
    CommitContainerOptions, ListImagesOptions, RemoveImageOptions, TagImageOptions,
};
use bollard::models::ContainerInspectResponse;
use bollard::network::{ConnectNetworkOptions, ListNetworksOptions};
use bollard::system::EventsOptions;
use bollard::volume::{ListVolumesOptions, RemoveVolumeOptions};
use bollard::Docker;
use futures::stream::{BoxStream, StreamExt};
use tracing::{debug, info, warn};

use super::labels;
use super::{
    AmiImage, ConsoleLog, ContainerRuntime, ContainerSpec, ContainerState, CopyProgress,
    DockerVolumeSpec, EngineInfo, ExecOutput, HostLimits, ImageCommand, NetworkAttachment,
    NetworkSpec, ObservedContainer, ObservedNetwork, ObservedVolume, ResourceLimits, RuntimeError,
    RuntimeEvent, RuntimeResult, SignalEvidence,
};
use crate::backoff::{Backoff, ExponentialJitterBackoff};
use crate::model::{AmiTag, InstanceId, Timestamp, CONTAINER_NAME_PREFIX};
use connect::{version_string, Inner, STOP_TIMEOUT_MARGIN};
use convert::{
    container_config, endpoint_settings, engine_timestamp_arg, grace_seconds,
    observed_from_inspect, observed_from_summary, split_log_line,
};
use errors::map_error;

/// How long reading the engine's event log for one container run may take.
const EVENT_LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// How long reading a container's console output (`docker logs`, not followed) may take.
const CONSOLE_LOG_TIMEOUT: Duration = Duration::from_secs(10);

/// How many of a container's last log lines one console read asks for. With `since` alone the
/// engine scans the whole log file (json-file keeps it unrotated by default) on every read;
/// with a tail it reads backwards and stops. 4096 lines hold 64 KiB unless lines average
/// under 16 bytes; a read that fills the tail says so (`cut`), and the copy restarts from it.
const CONSOLE_TAIL_LINES: usize = 4096;

/// Commit copies the container's writable layer; a big one can take minutes.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How long `exec` waits for its command; a command still running then is reported with no exit
/// code (it cannot be killed through the API, only left behind).
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// `exec` keeps at most this much output; the rest is read and dropped so the command never
/// blocks on a full pipe.
const EXEC_OUTPUT_LIMIT: usize = 64 * 1024;

/// First and largest pause between `exec`'s polls for the exit code once its output has ended.
const EXEC_POLL_FIRST: Duration = Duration::from_millis(5);
const EXEC_POLL_MAX: Duration = Duration::from_millis(200);

/// The pauses between `exec`'s exit-code polls: doubling from [`EXEC_POLL_FIRST`] up to
/// [`EXEC_POLL_MAX`], without jitter. The command's deadline, not the backoff, ends the wait.
fn exec_poll_backoff() -> ExponentialJitterBackoff {
    ExponentialJitterBackoff::without_jitter(EXEC_POLL_FIRST, EXEC_POLL_MAX)
}

/// A Docker (or Podman) engine client. Cheap to clone: clones share one negotiated connection.
#[derive(Clone)]
pub struct DockerRuntime {
    inner: Arc<Inner>,
}

impl DockerRuntime {
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
            .map_err(|e| match map_error("start container", e) {
                // Attached to a network removed since: the reconciler re-attaches it and
                // starts it again.
                RuntimeError::NotFound(msg) if msg.contains("network") => {
                    RuntimeError::Conflict(msg)
                }
                other => other,
            })
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
impl ContainerRuntime for DockerRuntime {
    #[tracing::instrument(skip(self), level = "debug")]
    async fn info(&self) -> RuntimeResult<EngineInfo> {
        let docker = self.docker().await?;
        let v = docker
            .version()
            .await
            .map_err(|e| map_error("version", e))?;
        // What instance types' limits may be: the host's CPU count caps a CPU quota, and an
        // engine that cannot set one or the other refuses a container asking for it. Only
        // `/info` says; an engine that does not answer it is still reachable, and the limits
        // wait until it does.
        let (host, engine_id) = match docker.info().await {
            Ok(info) => (
                info.ncpu
                    .and_then(|n| u32::try_from(n).ok())
                    .map(|cpus| HostLimits {
                        cpus,
                        cpu_quota: info.cpu_cfs_quota.unwrap_or(true),
                        memory_limit: info.memory_limit.unwrap_or(true),
                    }),
                info.id.filter(|id| !id.is_empty()),
            ),
            Err(e) => {
                debug!(error = %map_error("info", e), "engine info unavailable; host limits unknown");
                (None, None)
            }
        };
        // Where instances reach the host (`host-gateway`): the default bridge's gateway.
        let bridge_gateway = match docker.inspect_network::<String>("bridge", None).await {
            Ok(network) => network
                .ipam
                .and_then(|ipam| ipam.config)
                .into_iter()
                .flatten()
                .find_map(|c| bridge_gateway(c.gateway.as_deref(), c.subnet.as_deref())),
            Err(e) => {
                debug!(error = %map_error("inspect bridge", e), "the default bridge's gateway is unknown");
                None
            }
        };
        Ok(EngineInfo {
            version: v.version.unwrap_or_default(),
            api_version: version_string(&docker.client_version()),
            host,
            bridge_gateway,
            engine_id,
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
                // A network removed since it was observed: the next pass makes it again.
                RuntimeError::NotFound(msg) if msg.contains("network") => {
                    return Err(RuntimeError::Conflict(msg))
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
    async fn list_networks(&self) -> RuntimeResult<Vec<ObservedNetwork>> {
        let docker = self.docker().await?;
        let filters = HashMap::from([("label".to_string(), vec![labels::VPC_ID.to_string()])]);
        let list = docker
            .list_networks(Some(ListNetworksOptions { filters }))
            .await
            .map_err(|e| map_error("list networks", e))?;
        Ok(list
            .into_iter()
            .filter_map(networks::observed_network)
            .collect())
    }

    #[tracing::instrument(skip(self), level = "debug", fields(name = %spec.name, cidr = %spec.cidr))]
    async fn create_network(&self, spec: &NetworkSpec) -> RuntimeResult<String> {
        if self.engine_is_local() {
            if let Some(route) = networks::shadowed_host_route(&spec.cidr) {
                return Err(RuntimeError::Failed(format!(
                    "create network: {} overlaps the host's route {route}",
                    spec.cidr
                )));
            }
        }
        let docker = self.docker().await?;
        let created = docker
            .create_network(networks::create_options(spec))
            .await
            .map_err(|e| map_error("create network", e))?;
        if !created.warning.is_empty() {
            warn!(network = %spec.name, warning = %created.warning, "engine warning on network create");
        }
        Ok(created.id)
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn remove_network(&self, network_id: &str) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        docker
            .remove_network(network_id)
            .await
            .map_err(|e| match map_error("remove network", e) {
                // "has active endpoints": a running container is still attached.
                RuntimeError::Failed(msg) if msg.contains("active endpoints") => {
                    RuntimeError::Conflict(msg)
                }
                other => other,
            })
    }

    #[tracing::instrument(skip(self, attachment), level = "debug", fields(network = %attachment.network, ip = %attachment.ipv4_address))]
    async fn connect_network(
        &self,
        container_id: &str,
        attachment: &NetworkAttachment,
    ) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        docker
            .connect_network(
                &attachment.network,
                ConnectNetworkOptions {
                    container: container_id.to_string(),
                    endpoint_config: endpoint_settings(&attachment.ipv4_address),
                },
            )
            .await
            .map_err(|e| map_error("connect network", e))
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn list_volumes(&self) -> RuntimeResult<Vec<ObservedVolume>> {
        let docker = self.docker().await?;
        let mut out = Vec::new();
        // Docker ORs label filters given as one list only for some keys; two listings keep
        // it plain (`label=a` AND `label=b` would match nothing).
        for label in [labels::VOLUME_ID, labels::SNAPSHOT_ID] {
            let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
            let list = docker
                .list_volumes(Some(ListVolumesOptions { filters }))
                .await
                .map_err(|e| map_error("list volumes", e))?;
            out.extend(
                list.volumes
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(volumes::observed_volume),
            );
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }

    #[tracing::instrument(skip(self), level = "debug", fields(name = %spec.name))]
    async fn create_volume(&self, spec: &DockerVolumeSpec) -> RuntimeResult<ObservedVolume> {
        let docker = self.docker().await?;
        // The engine answers an existing volume of that name as created; only ours is returned.
        let created = docker
            .create_volume(volumes::create_options(spec))
            .await
            .map_err(|e| map_error("create volume", e))?;
        let observed = volumes::observed_volume(created).ok_or_else(|| {
            RuntimeError::Failed(format!(
                "volume name {} is taken by a volume ec2d does not own",
                spec.name
            ))
        })?;
        if observed.owner != spec.owner {
            return Err(RuntimeError::Failed(format!(
                "volume name {} is taken by {:?}'s volume",
                spec.name, observed.owner
            )));
        }
        Ok(observed)
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn remove_volume(&self, name: &str) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        volumes::inspect_owned(&docker, name).await?;
        docker
            .remove_volume(name, Some(RemoveVolumeOptions { force: false }))
            .await
            .map_err(|e| map_error("remove volume", e))
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn copy_volume_data(&self, from: &str, to: &str) -> RuntimeResult<u64> {
        let docker = self.docker().await?;
        volumes::copy(&docker, &self.inner.helpers, from, to).await
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn remove_volume_helpers(&self, volume_prefix: &str) -> RuntimeResult<usize> {
        let docker = self.docker().await?;
        volumes::remove_leftover_helpers(&docker, &self.inner.helpers, volume_prefix).await
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
    async fn update_limits(&self, container_id: &str, limits: ResourceLimits) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        // The swap limit moves with the memory limit: the engine refuses a memory limit above
        // the swap limit already set, and the instance has no swap beyond its memory.
        let options = UpdateContainerOptions::<String> {
            nano_cpus: limits.nano_cpus,
            memory: limits.memory_bytes,
            memory_swap: limits.memory_bytes,
            ..Default::default()
        };
        docker
            .update_container(container_id, options)
            .await
            .map_err(|e| map_error("update container", e))
    }

    #[tracing::instrument(skip(self), level = "debug")]
    async fn console_log(
        &self,
        container_id: &str,
        after: Option<Timestamp>,
    ) -> RuntimeResult<ConsoleLog> {
        let docker = self.docker().await?;
        // `since` takes whole seconds and keeps the lines of that second: lines at or before
        // `after` (read last time) are dropped by their own nanosecond timestamps.
        let stream = docker.logs(
            container_id,
            Some(LogsOptions::<String> {
                follow: false,
                stdout: true,
                stderr: true,
                since: after.map_or(0, |t| t.unix_timestamp()),
                until: 0,
                timestamps: true,
                tail: CONSOLE_TAIL_LINES.to_string(),
            }),
        );
        let read = async {
            let mut log = ConsoleLog::default();
            let mut lines = 0usize;
            let mut stream = std::pin::pin!(stream);
            while let Some(frame) = stream.next().await {
                lines += 1;
                let message = match frame.map_err(|e| map_error("container logs", e))? {
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message } => message,
                    LogOutput::StdIn { .. } => continue,
                };
                let (at, line) = split_log_line(&message);
                if let (Some(at), Some(after)) = (at, after) {
                    if at <= after {
                        continue;
                    }
                }
                log.push(line, at);
            }
            // The engine filters by `since` within the tail: a full tail may have left lines
            // after `after` out.
            log.cut = lines >= CONSOLE_TAIL_LINES;
            Ok(log.finish())
        };
        match tokio::time::timeout(CONSOLE_LOG_TIMEOUT, read).await {
            Ok(result) => result,
            Err(_) => Err(RuntimeError::Unavailable(format!(
                "reading the logs of container {container_id} timed out"
            ))),
        }
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
    async fn remove_image_tag(&self, reference: &str) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        // No force: the engine refuses (409) to drop an image's last tag while a container
        // uses it, rather than leave an untagged image behind; noprune: only what is named goes.
        docker
            .remove_image(
                reference,
                Some(RemoveImageOptions {
                    force: false,
                    noprune: true,
                }),
                None,
            )
            .await
            .map(drop)
            .map_err(|e| map_error("remove image", e))
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
                let Some(AmiTag { name, ami_id }) = AmiTag::parse(repo_tag) else {
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
                    store_id: img.labels.get(labels::STORE_ID).cloned(),
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
        let mut pause = exec_poll_backoff();
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
            tokio::time::sleep(pause.next_delay().unwrap_or(EXEC_POLL_MAX)).await;
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

    #[tracing::instrument(skip(self, target, progress), level = "debug")]
    async fn copy_image_to(
        &self,
        reference: &str,
        target: &Self,
        progress: &CopyProgress,
    ) -> RuntimeResult<u64> {
        let source = self.docker().await?;
        let target = target.docker().await?;
        images::copy(&source, &target, reference, progress).await
    }

    fn events(&self) -> BoxStream<'static, RuntimeEvent> {
        events::stream(self.clone())
    }
}

/// The default bridge's gateway: the one its IPAM names, else the first host of its subnet
/// (the engine's default when it names none, as `docker network inspect bridge` often shows).
fn bridge_gateway(gateway: Option<&str>, subnet: Option<&str>) -> Option<std::net::Ipv4Addr> {
    if let Some(gateway) = gateway.and_then(|g| g.parse().ok()) {
        return Some(gateway);
    }
    let (network, prefix) = subnet?.split_once('/')?;
    let network: std::net::Ipv4Addr = network.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    (prefix < 31).then(|| std::net::Ipv4Addr::from(u32::from(network) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_polls_5ms_doubling_to_200ms() {
        // The pauses as `exec` computed them before it shared the controller's backoff.
        let mut old = Duration::from_millis(5);
        let mut b = exec_poll_backoff();
        for poll in 0..12 {
            assert_eq!(b.next_delay(), Some(old), "poll {poll}");
            old = (old * 2).min(Duration::from_millis(200));
        }
    }

    #[test]
    fn the_gateway_is_named_or_the_subnets_first_host() {
        let ip = |s: &str| s.parse::<std::net::Ipv4Addr>().ok();
        assert_eq!(
            bridge_gateway(Some("10.1.0.5"), Some("10.1.0.0/24")),
            ip("10.1.0.5")
        );
        assert_eq!(
            bridge_gateway(None, Some("172.17.0.0/16")),
            ip("172.17.0.1")
        );
        assert_eq!(bridge_gateway(None, Some("fd00::/64")), None);
        assert_eq!(bridge_gateway(None, None), None);
    }
}
