//! `EC2_DOCKER_FLAGS`: extra `docker run` flags, split like shell words (never run through a shell) and validated at start-up.

use std::collections::BTreeMap;

use serde::Serialize;

/// A flag that ec2d does not know or cannot read: ec2d refuses to start, naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("EC2_DOCKER_FLAGS: {0}")]
pub struct FlagError(pub String);

/// A resource limit (`--ulimit name=soft[:hard]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ulimit {
    /// E.g. `nofile`.
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// A `-p/--publish` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishSpec {
    /// Host address to bind (`127.0.0.1` when omitted, so nothing is exposed beyond the host).
    pub host_ip: String,
    /// Host port; `None` lets the engine choose.
    pub host_port: Option<u16>,
    /// Container port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: super::Protocol,
}

/// The parsed flags, applied to every instance container.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DockerFlags {
    /// `-e/--env KEY=value` (or `KEY`, taken from ec2d's own environment).
    pub env: Vec<String>,
    /// `-v/--volume host:container[:mode]`.
    pub volumes: Vec<String>,
    /// `-p/--publish`.
    pub publish: Vec<PublishSpec>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--platform os/arch`.
    pub platform: Option<String>,
    /// `--label k=v`.
    pub labels: BTreeMap<String, String>,
    /// `--add-host name:ip`.
    pub add_hosts: Vec<String>,
    /// `--network name`.
    pub network: Option<String>,
    /// `--dns ip`.
    pub dns: Vec<String>,
    /// `--cpus 1.5`, as nano-CPUs.
    pub nano_cpus: Option<i64>,
    /// `--memory 512m`, in bytes.
    pub memory_bytes: Option<i64>,
    /// `--user uid[:gid]`.
    pub user: Option<String>,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--cap-add CAP`.
    pub cap_add: Vec<String>,
    /// `--tmpfs /path[:options]`, path to options.
    pub tmpfs: BTreeMap<String, String>,
}
