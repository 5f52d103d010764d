//! Command line and environment configuration: every option has a flag and an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, Subcommand, ValueEnum};

use crate::model::region;
use crate::runtime::{DockerFlags, DockerRuntime, RuntimeError};
use crate::telemetry::LogFormat;

/// clap's hook for `EC2_DOCKER_FLAGS`: the error names the offending flag.
fn parse_docker_flags(input: &str) -> Result<DockerFlags, String> {
    DockerFlags::parse(input).map_err(|e| e.to_string())
}

/// clap's hook for `EC2D_ENGINES`: the error names the offending entry.
fn parse_engine_zones(input: &str) -> Result<EngineZones, String> {
    EngineZones::parse(input)
}

/// `EC2D_ENGINES`: the Docker engine each availability zone named is served by, as
/// `zone=endpoint[,zone=endpoint…]`; a zone not named is served by the default engine
/// (`DOCKER_HOST`). Empty (the default) means one engine for every zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineZones(Vec<ZoneEngine>);

/// One zone and its engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneEngine {
    /// A zone of one of `model::region`'s regions (`us-east-1b`).
    pub zone: String,
    /// The engine's endpoint, normalised ([`DockerRuntime::normalize_endpoint`]): zones whose
    /// endpoints are equal share one engine.
    pub endpoint: String,
}

impl EngineZones {
    /// Parses `zone=endpoint[,zone=endpoint…]`, with spaces around entries, zones and endpoints
    /// allowed. Refuses an empty entry, a zone that is no known availability zone, a zone named
    /// twice, and an endpoint the Docker client cannot reach (said why).
    /// A blank value names no zone.
    pub fn parse(input: &str) -> Result<Self, String> {
        const FORM: &str =
            "expected zone=endpoint[,zone=endpoint…], as in us-east-1b=tcp://10.0.0.12:2375";
        let input = input.trim();
        if input.is_empty() {
            return Ok(Self::default());
        }
        let mut entries: Vec<ZoneEngine> = Vec::new();
        for item in input.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(format!("EC2D_ENGINES {input:?} has an empty entry; {FORM}"));
            }
            let Some((zone, endpoint)) = item.split_once('=') else {
                return Err(format!("EC2D_ENGINES entry {item:?}: {FORM}"));
            };
            let (zone, endpoint) = (zone.trim(), endpoint.trim());
            if zone.is_empty() || endpoint.is_empty() {
                return Err(format!("EC2D_ENGINES entry {item:?}: {FORM}"));
            }
            if !region::is_known_zone(zone) {
                return Err(format!(
                    "EC2D_ENGINES: {zone:?} is not an availability zone of a known region (as in us-east-1a)"
                ));
            }
            if entries.iter().any(|e| e.zone == zone) {
                return Err(format!(
                    "EC2D_ENGINES names zone {zone} twice: a zone is served by one engine"
                ));
            }
            let endpoint = DockerRuntime::normalize_endpoint(endpoint).map_err(|e| match e {
                RuntimeError::Failed(why) => format!("EC2D_ENGINES zone {zone}: {why}"),
                other => format!("EC2D_ENGINES zone {zone}: {other}"),
            })?;
            entries.push(ZoneEngine {
                zone: zone.to_string(),
                endpoint,
            });
        }
        Ok(Self(entries))
    }

    /// Whether no zone is named: one engine serves every zone.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The zones named, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &ZoneEngine> {
        self.0.iter()
    }
}

/// How instances are backed, as LocalStack's `EC2_VM_MANAGER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VmManager {
    /// Real Docker containers.
    Docker,
    /// No containers: instances converge at once and any well-formed AMI id launches.
    Mock,
}

/// ec2d: an AWS EC2 emulator whose instances are real Docker containers.
#[derive(Debug, Clone, Parser)]
#[command(name = "ec2d", version, about, long_about = None)]
pub struct Config {
    /// Address the EC2 Query API listens on.
    #[arg(
        long,
        env = "EC2D_LISTEN",
        default_value = "127.0.0.1:4566",
        global = true
    )]
    pub listen: SocketAddr,

    /// Directory of the embedded sled store [default: $XDG_DATA_HOME/ec2d, else ~/.local/share/ec2d].
    #[arg(long, env = "EC2D_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// `docker` runs instances as containers; `mock` runs none (no Docker needed).
    #[arg(long, env = "EC2_VM_MANAGER", value_enum, default_value_t = VmManager::Docker)]
    pub vm_manager: VmManager,

    /// Remove an instance's container when it is terminated (off: stop it and keep it).
    #[arg(long, env = "EC2_REMOVE_CONTAINERS", default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub remove_containers: bool,

    /// Docker endpoint (`unix:///var/run/docker.sock`, `tcp://host:2375`, `https://host:2376`, `ssh://user@host`) [default: DOCKER_HOST, else the local socket].
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// Which Docker engine serves which availability zone: `zone=endpoint[,zone=endpoint…]`
    /// (`us-east-1b=tcp://10.0.0.12:2375`); zones not named use the default engine, and an
    /// instance runs on its zone's engine. Endpoints are unix://, an absolute socket path,
    /// tcp:// or http://, or https:// (TLS, with ca.pem, cert.pem and key.pem in
    /// DOCKER_CERT_PATH), or ssh://[user@]host[:port] (an ssh process forwards the remote
    /// engine's socket; EC2D_SSH_COMMAND gives its command, like GIT_SSH_COMMAND). Checked,
    /// and refused at start when wrong.
    #[arg(long, env = "EC2D_ENGINES", default_value = "", value_parser = parse_engine_zones, hide_default_value = true)]
    pub engines: EngineZones,

    /// Seconds between full resyncs of every resource with Docker.
    #[arg(long, env = "EC2D_RESYNC_SECONDS", default_value_t = 30)]
    pub resync_seconds: u64,

    /// Maximum reconciles running at once.
    #[arg(long, env = "EC2D_CONCURRENCY", default_value_t = 16)]
    pub concurrency: usize,

    /// Seconds a terminating container is given to stop before it is killed.
    #[arg(long, env = "EC2D_STOP_TIMEOUT_SECONDS", default_value_t = 3)]
    pub stop_timeout_seconds: u64,

    /// Run instance containers with Docker's init as PID 1 (`docker run --init`).
    #[arg(long, env = "EC2_DOCKER_INIT", default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub docker_init: bool,

    /// Extra `docker run` flags for every instance, split like shell words (never run through a
    /// shell): -e, -v, -p, --privileged, --platform, --label, --add-host, --network, --dns,
    /// --cpus, --memory, --user, --ulimit, --cap-add, --tmpfs. An unknown flag stops ec2d.
    #[arg(long, env = "EC2_DOCKER_FLAGS", default_value = "", value_parser = parse_docker_flags, allow_hyphen_values = true)]
    pub docker_flags: DockerFlags,

    /// Give each instance's container its type's vCPUs (at most the host's CPUs) and memory
    /// as limits; EC2_DOCKER_FLAGS' --cpus/--memory win. Off: containers get no limits of ours.
    #[arg(long, env = "EC2D_INSTANCE_TYPE_LIMITS", default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub instance_type_limits: bool,

    /// Give each VPC a Docker bridge network with its CIDR and each instance the private
    /// address RunInstances allocated from its subnet; `0` keeps every container on Docker's
    /// default bridge (and shows the bridge's address).
    #[arg(long, env = "EC2D_VPC_NETWORKS", default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub vpc_networks: bool,

    /// Give every instance `AWS_ENDPOINT_URL=http://ec2d.internal:<API port>` (the name is the
    /// engine's `host-gateway`), `AWS_REGION` and `AWS_DEFAULT_REGION`, and serve the API on
    /// the default bridge's gateway too, so SDKs and the CLI inside instances call ec2d.
    #[arg(long, env = "EC2D_INSTANCE_API", default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub instance_api: bool,

    /// Mount the Docker socket at /var/run/docker.sock in every instance, as LocalStack does.
    /// Anything in the instance can then control the host's Docker engine.
    #[arg(long, env = "EC2_MOUNT_DOCKER_SOCKET", default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub mount_docker_socket: bool,

    /// List the built-in catalogue of well-known public AMIs (Amazon Linux, Ubuntu, Debian,
    /// Windows) in DescribeImages; in `docker` mode one launches once a Docker image is tagged
    /// `localstack-ec2/<name>:<its id>`.
    #[arg(long, env = "EC2D_PUBLIC_AMIS", default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub public_amis: bool,

    /// Seconds a terminated instance stays describable before its record is collected.
    #[arg(
        long,
        env = "EC2D_TERMINATED_RETENTION_SECONDS",
        default_value_t = 3600
    )]
    pub terminated_retention_seconds: u64,

    /// Serve the instance metadata service to instances at 169.254.169.254 (a listener of
    /// ec2d's, and NAT rules on the host that send each instance's requests there).
    #[arg(long, env = "EC2D_IMDS", default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub imds: bool,

    /// Address the instance metadata service listens on. The host's NAT rules redirect an
    /// instance's requests to this port on the gateway address of the instance's own Docker
    /// network, so the default listens on every address and answers only instances (by their
    /// connection's source address); everyone else gets an empty 404.
    #[arg(long, env = "EC2D_IMDS_LISTEN", default_value = "0.0.0.0:4567")]
    pub imds_listen: SocketAddr,

    /// Attach EBS volumes to running instances through a mount propagation point on the host
    /// (`<data dir>/volume-mounts`, made a shared mount; needs root and a local engine). Off,
    /// or when it cannot be set up, volumes attach only when an instance's container is created.
    #[arg(long, env = "EC2D_VOLUME_MOUNTS", default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub volume_mounts: bool,

    /// LocalStack's block devices: each EBS volume attached when an instance's container is
    /// created also appears as a file of `VolumeSize` MiB at its device path (`/dev/sdf`), for
    /// users who format and mount devices themselves (kept in `<data dir>/block-devices`).
    #[arg(long, env = "EC2_MOUNT_BLOCK_DEVICES", default_value_t = false, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub mount_block_devices: bool,

    /// The largest such file, MiB (LocalStack's `EC2_EBS_MAX_VOLUME_SIZE`).
    #[arg(long, env = "EC2_EBS_MAX_VOLUME_SIZE", default_value_t = 1000)]
    pub ebs_max_volume_size: u64,

    /// Log filter, in `tracing` EnvFilter syntax (`info`, `ec2d=debug`).
    #[arg(long, env = "EC2D_LOG", default_value = "info")]
    pub log: String,

    /// Log line format: `text` for people, `json` (one object per line, span fields such as
    /// `instance_id` and `request_id` flattened beside the event's) for machines.
    #[arg(long, env = "EC2D_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// What to do; serving the API is the default.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the emulator (the default).
    Serve,
    /// Show what a running ec2d (at --listen) desires and observes, as a table.
    Status {
        /// Show one instance in full (JSON) instead of the table.
        instance: Option<String>,
    },
    /// Exit 0 when a running ec2d (at --listen) answers its health endpoint, else 1: the
    /// container image's HEALTHCHECK, which has no curl.
    Healthcheck,
}

impl Config {
    /// Parses the process' arguments and environment.
    pub fn from_env() -> Self {
        Self::parse()
    }

    /// A configuration for tests and examples: mock manager, given data dir, ephemeral port.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        let mut config = Self::parse_from(["ec2d"]);
        config.listen = "127.0.0.1:0".parse().expect("valid address");
        config.imds_listen = "127.0.0.1:0".parse().expect("valid address");
        config.data_dir = Some(data_dir);
        config.vm_manager = VmManager::Mock;
        // Tests never touch the host's NAT table unless they ask to.
        config.imds = false;
        // Nor its mount table.
        config.volume_mounts = false;
        config
    }

    /// The data directory, resolving the per-user default.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            dirs::data_local_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("ec2d")
        })
    }

    /// The resync period.
    pub fn resync_every(&self) -> Duration {
        Duration::from_secs(self.resync_seconds.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_like_localstack_variables() {
        let c = Config::parse_from(["ec2d", "--vm-manager", "mock", "--remove-containers", "0"]);
        assert_eq!(c.vm_manager, VmManager::Mock);
        assert!(!c.remove_containers);
        let c = Config::parse_from([
            "ec2d",
            "--remove-containers",
            "true",
            "--listen",
            "0.0.0.0:5000",
        ]);
        assert!(c.remove_containers);
        assert_eq!(c.listen.port(), 5000);
        assert!(Config::try_parse_from(["ec2d", "--vm-manager", "libvirt"]).is_err());
        assert!(Config::parse_from(["ec2d"]).public_amis);
        assert!(!Config::parse_from(["ec2d", "--public-amis", "0"]).public_amis);
        assert!(Config::parse_from(["ec2d"]).instance_type_limits);
        let c = Config::parse_from(["ec2d", "--instance-type-limits", "0"]);
        assert!(!c.instance_type_limits);
        let c = Config::parse_from(["ec2d"]);
        assert!(c.imds);
        assert_eq!(c.imds_listen.port(), 4567);
        let c = Config::parse_from(["ec2d", "--imds", "0", "--imds-listen", "127.0.0.1:80"]);
        assert!(!c.imds);
        assert_eq!(c.imds_listen.port(), 80);
    }

    fn zones(input: &str) -> Vec<(String, String)> {
        EngineZones::parse(input)
            .unwrap()
            .iter()
            .map(|e| (e.zone.clone(), e.endpoint.clone()))
            .collect()
    }

    fn pair(zone: &str, endpoint: &str) -> (String, String) {
        (zone.to_string(), endpoint.to_string())
    }

    #[test]
    fn engines_name_each_zone_with_a_normalised_endpoint() {
        assert_eq!(
            zones("us-east-1a=unix:///var/run/docker.sock,us-east-1b=tcp://10.0.0.12:2375"),
            vec![
                pair("us-east-1a", "unix:///var/run/docker.sock"),
                pair("us-east-1b", "tcp://10.0.0.12:2375"),
            ]
        );
        // Two spellings of one engine read the same; zones of any known region.
        assert_eq!(
            zones(
                "eu-west-1a=/run/b.sock,eu-west-1b=unix:///run//b.sock,us-west-2d=http://H:2375/"
            ),
            vec![
                pair("eu-west-1a", "unix:///run/b.sock"),
                pair("eu-west-1b", "unix:///run/b.sock"),
                pair("us-west-2d", "tcp://h:2375"),
            ]
        );
        let c = Config::parse_from(["ec2d", "--engines", "us-east-1b=/run/b.sock"]);
        assert_eq!(c.engines.iter().count(), 1);
    }

    #[test]
    fn engines_allow_whitespace_around_entries() {
        assert_eq!(
            zones("  us-east-1a = /a.sock ,\tus-east-1b=\ttcp://h:2375  "),
            vec![
                pair("us-east-1a", "unix:///a.sock"),
                pair("us-east-1b", "tcp://h:2375")
            ]
        );
        // Inside an endpoint, whitespace is an error.
        let err = EngineZones::parse("us-east-1a=tcp://h :2375").unwrap_err();
        assert!(err.contains("us-east-1a"), "{err}");
    }

    #[test]
    fn engines_empty_means_one_engine_and_empty_parts_are_refused() {
        assert!(Config::parse_from(["ec2d"]).engines.is_empty());
        assert!(EngineZones::parse("").unwrap().is_empty());
        assert!(EngineZones::parse("   ").unwrap().is_empty());
        for bad in [
            "us-east-1a=/a.sock,,us-east-1b=/b.sock",
            "us-east-1a=/a.sock,",
            "us-east-1a=",
            "=/a.sock",
            "us-east-1a",
            "us-east-1a /a.sock",
        ] {
            let err = EngineZones::parse(bad).unwrap_err();
            assert!(err.contains("expected zone=endpoint"), "{bad}: {err}");
        }
    }

    #[test]
    fn engines_refuse_a_zone_named_twice() {
        let err = EngineZones::parse("us-east-1a=/a.sock,us-east-1b=/b.sock,us-east-1a=/a.sock")
            .unwrap_err();
        assert!(err.contains("names zone us-east-1a twice"), "{err}");
        // At start: clap stops ec2d with the message.
        let err = Config::try_parse_from(["ec2d", "--engines", "us-east-1a=/a,us-east-1a=/b"])
            .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn engines_refuse_an_unknown_zone() {
        for bad in [
            "us-east-1g=/a.sock",
            "us-east-1=/a.sock",
            "use1-az1=/a.sock",
            "US-EAST-1A=/a.sock",
        ] {
            let err = EngineZones::parse(bad).unwrap_err();
            assert!(err.contains("is not an availability zone"), "{bad}: {err}");
        }
    }

    #[test]
    fn engines_refuse_endpoints_the_client_cannot_reach() {
        let err = EngineZones::parse("us-east-1b=npipe:////./pipe/docker_engine").unwrap_err();
        assert!(
            err.contains("us-east-1b") && err.contains("Windows"),
            "{err}"
        );
        let ssh = EngineZones::parse("us-east-1b=ssh://me@10.0.0.12").unwrap();
        assert_eq!(
            ssh.iter().map(|z| z.endpoint.as_str()).collect::<Vec<_>>(),
            ["ssh://me@10.0.0.12"]
        );
        // TLS is an endpoint of its own, apart from plain TCP to the same address.
        let tls = EngineZones::parse("us-east-1b=HTTPS://10.0.0.12:2376/").unwrap();
        assert_eq!(
            tls.iter().map(|z| z.endpoint.as_str()).collect::<Vec<_>>(),
            ["https://10.0.0.12:2376"]
        );
        for bad in [
            "us-east-1b=ftp://h:21",
            "us-east-1b=docker.sock",
            "us-east-1b=tcp://h",
        ] {
            assert!(EngineZones::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_flags_are_validated_at_start() {
        let c = Config::parse_from(["ec2d", "--docker-flags", "-e A=1 --cap-add NET_ADMIN"]);
        assert_eq!(c.docker_flags.env, vec!["A=1".to_string()]);
        let err = Config::try_parse_from(["ec2d", "--docker-flags", "--frobnicate"]).unwrap_err();
        assert!(err.to_string().contains("--frobnicate"), "{err}");
    }
}
