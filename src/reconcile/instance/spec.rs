//! Container policy: how an instance's container is built and how its image boots.

use std::collections::BTreeMap;
use std::path::Path;

use super::super::plan::AttachedVolume;
use super::super::{boot, Context, Settings};
use crate::hostmnt::block_devices::{device_path, BlockDeviceFiles};
use crate::hostmnt::CONTAINER_DIR;
use crate::model::ids::derived_mac;
use crate::model::{instance_types, Instance, InstanceId, CONTAINER_NAME_PREFIX};
use crate::runtime::{
    labels, ContainerRuntime, ContainerSpec, HostLimits, PortRequest, Protocol, ResourceLimits,
    VolumeMount,
};

/// How the boot script runs in a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    /// The boot script is the entrypoint and keeps the container alive (the usual case).
    Entrypoint,
    /// The image runs its own init system as PID 1; the boot script runs beside it via exec.
    BesideInit,
}

/// The CPU and memory limits an instance's type asks of its container: its vCPUs as a CPU
/// quota, at most the host's CPU count (the engine refuses more), and its memory. A limit the
/// engine cannot set (it would refuse the container) is left out, and so is the CPU quota
/// while the host is unknown. A limit `EC2_DOCKER_FLAGS` sets (`--cpus`, `--memory`) wins: it
/// is left out here, since the flags fix it at create. None with `EC2D_INSTANCE_TYPE_LIMITS=0`,
/// or for a type the catalogue does not know (the API accepts only known ones).
pub fn limits_for(
    instance: &Instance,
    settings: &Settings,
    host: Option<HostLimits>,
) -> ResourceLimits {
    let Some(info) = instance_types::find(&instance.spec.instance_type) else {
        return ResourceLimits::default();
    };
    if !settings.instance_type_limits {
        return ResourceLimits::default();
    }
    let flags = &settings.docker_flags;
    let cpus = host
        .filter(|h| h.cpu_quota && flags.nano_cpus.is_none())
        .map(|h| info.vcpus.min(h.cpus));
    // An unknown host is assumed to limit memory, as every engine with cgroups does.
    let memory = host.is_none_or(|h| h.memory_limit) && flags.memory_bytes.is_none();
    ResourceLimits {
        nano_cpus: cpus.map(|cpus| i64::from(cpus) * 1_000_000_000),
        memory_bytes: memory.then(|| i64::try_from(info.memory_mib << 20).unwrap_or(i64::MAX)),
    }
}

/// Builds the container for an instance: the one place that decides how an instance boots.
/// `limits` are the type's, from [`limits_for`].
pub fn container_spec_for(
    instance: &Instance,
    settings: &Settings,
    store_id: &str,
    mode: BootMode,
    limits: ResourceLimits,
) -> ContainerSpec {
    let mut container_labels = BTreeMap::new();
    container_labels.insert(labels::MANAGED.to_string(), "true".to_string());
    container_labels.insert(labels::VM_MANAGER.to_string(), "docker".to_string());
    // Which ec2d store owns the container: several ec2d processes may share one engine, and
    // each only ever garbage-collects its own containers.
    container_labels.insert(labels::STORE_ID.to_string(), store_id.to_string());
    // The region, for humans reading `docker inspect`.
    container_labels.insert(
        labels::REGION.to_string(),
        instance.metadata.namespace.clone(),
    );
    let mut binds = Vec::new();
    if settings.mount_docker_socket {
        binds.push("/var/run/docker.sock:/var/run/docker.sock".to_string());
    }
    let mut ports: Vec<PortRequest> = instance
        .spec
        .ports
        .iter()
        .map(|p| PortRequest {
            container_port: p.port,
            protocol: p.protocol.into(),
            host_port: None,
        })
        .collect();
    // SSH is always reachable, as in LocalStack, whatever the groups say.
    if !ports
        .iter()
        .any(|p| p.container_port == 22 && p.protocol == Protocol::Tcp)
    {
        ports.insert(
            0,
            PortRequest {
                container_port: 22,
                protocol: Protocol::Tcp,
                host_port: None,
            },
        );
    }
    let (entrypoint, cmd, init) = match mode {
        BootMode::Entrypoint => (
            Some(boot::entrypoint()),
            Some(Vec::new()),
            settings.docker_init,
        ),
        // The image's init must be PID 1: Docker's init would take its place.
        BootMode::BesideInit => (None, None, false),
    };
    ContainerSpec {
        network: None,
        name: format!("{CONTAINER_NAME_PREFIX}{}", instance.metadata.name),
        instance_id: InstanceId::parse(&instance.metadata.name).ok(),
        image: instance.spec.image_ref.clone(),
        entrypoint,
        cmd,
        env: instance_env(instance, settings),
        labels: container_labels,
        init,
        binds,
        ports,
        hostname: None,
        mac_address: Some(derived_mac(&instance.metadata.name)),
        limits,
        flags: instance_flags(settings),
        volume_mounts: Vec::new(),
    }
}

/// Gives a container being created its attached volumes. With the host's propagation point
/// (`hot_dir`: the instance's directory of it), the directory is bound at `/mnt` with `rslave`
/// propagation, so volumes mounted there on the host now or later appear inside; a ready
/// volume whose mount point is outside `/mnt` (its `ec2d:mount-point` tag) can only be given
/// now, as a Docker volume mount. Without it, every ready volume is a Docker volume mount:
/// a volume attached later waits for the next container. One volume per mount point.
pub fn give_volumes(spec: &mut ContainerSpec, hot_dir: Option<&Path>, attached: &[AttachedVolume]) {
    if let Some(dir) = hot_dir {
        spec.binds
            .push(format!("{}:{CONTAINER_DIR}:rslave", dir.display()));
    }
    for volume in attached {
        let Some((backing, _)) = &volume.backing else {
            continue;
        };
        let hot = hot_dir.is_some();
        if hot && (volume.hot_path().is_some() || volume.mount_point == CONTAINER_DIR) {
            continue;
        }
        if spec
            .volume_mounts
            .iter()
            .any(|m| m.target == volume.mount_point)
        {
            continue;
        }
        spec.volume_mounts.push(VolumeMount {
            name: backing.clone(),
            target: volume.mount_point.clone(),
        });
    }
}

/// `EC2_MOUNT_BLOCK_DEVICES`: each volume the container is created with also gets its device
/// file (made, sparse, or grown here, when the boot is planned) bound at its device path, as
/// LocalStack does; a volume attached later gets none until the next container.
pub fn give_block_devices(
    spec: &mut ContainerSpec,
    files: &BlockDeviceFiles,
    attached: &[AttachedVolume],
) {
    for volume in attached.iter().filter(|v| v.backing.is_some()) {
        match files.ensure(&volume.volume_id, u64::from(volume.size_gib)) {
            Ok(path) => spec.binds.push(format!(
                "{}:{}",
                path.display(),
                device_path(&volume.device)
            )),
            Err(error) => {
                tracing::warn!(volume_id = %volume.volume_id, %error, "cannot make the volume's block device file")
            }
        }
    }
}

/// The name instances reach ec2d's API by: the engine's `host-gateway`, the host's address on
/// the default bridge, where the app serves the API too (reachable from every bridge network).
pub const INSTANCE_API_HOST: &str = "ec2d.internal";

/// The boot script's inputs, then what SDKs and the CLI read: the instance's region and, with
/// `EC2D_INSTANCE_API`, `AWS_ENDPOINT_URL` at ec2d's own API (as LocalStack does for the
/// containers it starts), so an SDK that finds its credentials through IMDS calls ec2d.
fn instance_env(instance: &Instance, settings: &Settings) -> Vec<String> {
    let mut env = boot::env(instance);
    let region = &instance.metadata.namespace;
    env.push(format!("AWS_REGION={region}"));
    env.push(format!("AWS_DEFAULT_REGION={region}"));
    if let Some(port) = settings.instance_api_port {
        env.push(format!(
            "AWS_ENDPOINT_URL=http://{INSTANCE_API_HOST}:{port}"
        ));
    }
    env
}

/// `EC2_DOCKER_FLAGS`, plus `--add-host ec2d.internal:host-gateway` with `EC2D_INSTANCE_API`
/// (unless the flags name `ec2d.internal` themselves: theirs wins).
fn instance_flags(settings: &Settings) -> crate::runtime::DockerFlags {
    let mut flags = settings.docker_flags.clone();
    let named = |h: &String| {
        h.split([':', '='])
            .next()
            .is_some_and(|name| name == INSTANCE_API_HOST)
    };
    if settings.instance_api_port.is_some() && !flags.add_hosts.iter().any(named) {
        flags
            .add_hosts
            .push(format!("{INSTANCE_API_HOST}:host-gateway"));
    }
    flags
}

/// Decides how the instance boots from its image's command (one engine call, at boot only).
pub(super) async fn boot_mode<R: ContainerRuntime>(ctx: &Context<R>, image: &str) -> BootMode {
    match ctx.runtime.image_command(image).await {
        Ok(Some(command)) if boot::is_init_system(&command.entrypoint, &command.cmd) => {
            BootMode::BesideInit
        }
        _ => BootMode::Entrypoint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;
    use crate::runtime::DockerFlags;

    fn attached(id: &str, mount_point: &str, ready: bool) -> AttachedVolume {
        AttachedVolume {
            volume_id: id.into(),
            size_gib: 1,
            device: "/dev/sdf".into(),
            mount_point: mount_point.into(),
            backing: ready.then(|| (format!("ec2d-{id}"), format!("/v/{id}/_data"))),
        }
    }

    #[test]
    fn volumes_are_given_through_the_propagation_point_or_as_docker_mounts() {
        let volumes = [
            attached("vol-1", "/mnt/sdf", true),
            attached("vol-2", "/data", true),
            attached("vol-3", "/mnt/sdh", false),
            attached("vol-4", "/data", true),
        ];
        // Hot: the directory at /mnt, rslave; only what lies outside /mnt as a Docker mount,
        // one volume per mount point.
        let mut hot = ContainerSpec::default();
        give_volumes(&mut hot, Some(Path::new("/r/i-1")), &volumes);
        assert_eq!(hot.binds, ["/r/i-1:/mnt:rslave"]);
        assert_eq!(
            hot.volume_mounts,
            [VolumeMount {
                name: "ec2d-vol-2".into(),
                target: "/data".into()
            }]
        );
        // Fallback: every ready volume is a Docker mount at its mount point.
        let mut cold = ContainerSpec::default();
        give_volumes(&mut cold, None, &volumes);
        assert!(cold.binds.is_empty());
        let targets: Vec<_> = cold
            .volume_mounts
            .iter()
            .map(|m| m.target.as_str())
            .collect();
        assert_eq!(targets, ["/mnt/sdf", "/data"]);
    }

    /// The limits of `instance_type` on a host with `host_cpus` CPUs (`None`: not known yet)
    /// whose engine can set both kinds of limit.
    fn limits(instance_type: &str, settings: &Settings, host_cpus: Option<u32>) -> ResourceLimits {
        let host = host_cpus.map(|cpus| HostLimits {
            cpus,
            cpu_quota: true,
            memory_limit: true,
        });
        on_host(instance_type, settings, host)
    }

    fn on_host(
        instance_type: &str,
        settings: &Settings,
        host: Option<HostLimits>,
    ) -> ResourceLimits {
        let mut instance = fixtures::instance();
        instance.spec.instance_type = instance_type.to_string();
        limits_for(&instance, settings, host)
    }

    const GIB: i64 = 1 << 30;

    #[test]
    fn a_type_gives_its_vcpus_capped_at_the_host_and_its_memory() {
        let on = Settings::default();
        let both = |nano_cpus, memory_bytes| ResourceLimits {
            nano_cpus,
            memory_bytes,
        };
        // t3.micro: 2 vCPUs, 1 GiB; t3.small: 2 vCPUs, 2 GiB; m5.4xlarge: 16 vCPUs, 64 GiB.
        assert_eq!(
            limits("t3.micro", &on, Some(8)),
            both(Some(2_000_000_000), Some(GIB))
        );
        assert_eq!(
            limits("t3.small", &on, Some(2)),
            both(Some(2_000_000_000), Some(2 * GIB))
        );
        assert_eq!(
            limits("m5.4xlarge", &on, Some(2)),
            both(Some(2_000_000_000), Some(64 * GIB)),
            "the engine refuses more CPUs than the host has"
        );
        assert_eq!(
            limits("t2.nano", &on, Some(1)),
            both(Some(1_000_000_000), Some(GIB / 2))
        );
        assert_eq!(
            limits("t3.micro", &on, None),
            both(None, Some(GIB)),
            "the CPU count is not known yet"
        );
        assert_eq!(
            limits("x9.imaginary", &on, Some(2)),
            ResourceLimits::default()
        );
    }

    #[test]
    fn flags_win_and_the_limits_can_be_turned_off() {
        let flagged = |input: &str| Settings {
            docker_flags: DockerFlags::parse(input).unwrap(),
            ..Settings::default()
        };
        assert_eq!(
            limits("t3.micro", &flagged("--memory 256m"), Some(2)),
            ResourceLimits {
                nano_cpus: Some(2_000_000_000),
                memory_bytes: None
            }
        );
        assert_eq!(
            limits("t3.micro", &flagged("--cpus 0.5"), Some(2)),
            ResourceLimits {
                nano_cpus: None,
                memory_bytes: Some(GIB)
            }
        );
        let off = Settings {
            instance_type_limits: false,
            ..Settings::default()
        };
        assert!(limits("t3.micro", &off, Some(2)).is_empty());
    }

    #[test]
    fn a_limit_the_engine_cannot_set_is_left_out() {
        let on = Settings::default();
        let host = |cpu_quota, memory_limit| {
            Some(HostLimits {
                cpus: 4,
                cpu_quota,
                memory_limit,
            })
        };
        // Rootless Docker on cgroup v1: neither.
        assert!(on_host("t3.micro", &on, host(false, false)).is_empty());
        assert_eq!(
            on_host("t3.micro", &on, host(false, true)),
            ResourceLimits {
                nano_cpus: None,
                memory_bytes: Some(GIB)
            }
        );
        assert_eq!(
            on_host("t3.micro", &on, host(true, false)),
            ResourceLimits {
                nano_cpus: Some(2_000_000_000),
                memory_bytes: None
            }
        );
    }

    #[test]
    fn the_container_carries_the_limits() {
        let instance = fixtures::instance();
        let wanted = ResourceLimits {
            nano_cpus: Some(1_000_000_000),
            memory_bytes: Some(GIB),
        };
        let spec = container_spec_for(
            &instance,
            &Settings::default(),
            "store",
            BootMode::Entrypoint,
            wanted,
        );
        assert_eq!(spec.limits, wanted);
        // The interface's MAC is the one the API and IMDS answer for the instance.
        assert_eq!(
            spec.mac_address.as_deref(),
            Some(derived_mac(&instance.metadata.name).as_str())
        );
    }

    #[test]
    fn instances_get_their_region_and_with_the_instance_api_ec2ds_endpoint() {
        let instance = fixtures::instance();
        let spec_with = |settings: &Settings| {
            container_spec_for(
                &instance,
                settings,
                "store",
                BootMode::Entrypoint,
                ResourceLimits::default(),
            )
        };
        let off = spec_with(&Settings::default());
        assert!(off.env.contains(&"AWS_REGION=us-east-1".to_string()));
        assert!(off
            .env
            .contains(&"AWS_DEFAULT_REGION=us-east-1".to_string()));
        assert!(!off.env.iter().any(|e| e.starts_with("AWS_ENDPOINT_URL=")));
        assert!(off.flags.add_hosts.is_empty());

        let on = Settings {
            instance_api_port: Some(4566),
            ..Settings::default()
        };
        let spec = spec_with(&on);
        assert!(spec
            .env
            .contains(&"AWS_ENDPOINT_URL=http://ec2d.internal:4566".to_string()));
        assert_eq!(spec.flags.add_hosts, vec!["ec2d.internal:host-gateway"]);
        // The user's own entry for the name wins.
        let mine = Settings {
            docker_flags: DockerFlags::parse("--add-host ec2d.internal:10.0.0.9").unwrap(),
            ..on
        };
        assert_eq!(
            spec_with(&mine).flags.add_hosts,
            vec!["ec2d.internal:10.0.0.9"]
        );
    }

    #[test]
    fn block_device_files_are_bound_at_the_device_paths_of_ready_volumes() {
        let dir = tempfile::tempdir().unwrap();
        let files = BlockDeviceFiles::new(dir.path(), 2);
        let mut spec = ContainerSpec::default();
        let mut big = attached("vol-1", "/mnt/sdf", true);
        big.size_gib = 5;
        give_block_devices(
            &mut spec,
            &files,
            &[big, attached("vol-2", "/mnt/sdg", false)],
        );
        let file = dir.path().join("block-devices/vol-1.img");
        assert_eq!(spec.binds, [format!("{}:/dev/sdf", file.display())]);
        // Capped at EC2_EBS_MAX_VOLUME_SIZE (MiB); the volume not ready gets nothing yet.
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 2 << 20);
        assert!(!dir.path().join("block-devices/vol-2.img").exists());
    }
}
