//! Container policy: how an instance's container is built and how its image boots.

use std::collections::BTreeMap;

use super::super::{boot, Context, Settings};
use crate::model::{Instance, InstanceId, CONTAINER_NAME_PREFIX};
use crate::runtime::{labels, ContainerRuntime, ContainerSpec, PortRequest, Protocol};

/// How the boot script runs in a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    /// The boot script is the entrypoint and keeps the container alive (the usual case).
    Entrypoint,
    /// The image runs its own init system as PID 1; the boot script runs beside it via exec.
    BesideInit,
}

/// Builds the container for an instance: the one place that decides how an instance boots.
pub fn container_spec_for(
    instance: &Instance,
    settings: &Settings,
    store_id: &str,
    mode: BootMode,
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
        name: format!("{CONTAINER_NAME_PREFIX}{}", instance.metadata.name),
        instance_id: InstanceId::parse(&instance.metadata.name).ok(),
        image: instance.spec.image_ref.clone(),
        entrypoint,
        cmd,
        env: boot::env(instance),
        labels: container_labels,
        init,
        binds,
        ports,
        hostname: None,
        flags: settings.docker_flags.clone(),
    }
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
