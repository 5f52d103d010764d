//! Translation between bollard's types and ours: observed containers, ports, addresses, engine times, the create request.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::container::{Config, NetworkingConfig};
use bollard::models::{
    ContainerInspectResponse, ContainerSummary, EndpointIpamConfig, EndpointSettings, HostConfig,
    Mount, MountPointTypeEnum, MountTypeEnum, PortBinding, PortMap, PortTypeEnum, ResourcesUlimits,
    RestartPolicy, RestartPolicyNameEnum,
};
use tracing::warn;

use crate::model::{InstanceId, Timestamp};
use crate::runtime::{
    labels, ContainerSpec, ContainerState, ObservedContainer, Protocol, PublishedPort,
    ResourceLimits, VolumeMount,
};

/// Docker's stop timeout `t` for a grace period: whole seconds, and at least 1, since 0
/// would skip SIGTERM entirely.
pub(super) fn grace_seconds(grace: Duration) -> i64 {
    (grace.as_secs_f64().ceil() as i64).max(1)
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

/// Splits a log line read with `timestamps=true` into the engine's RFC 3339 time (kept to the
/// nanosecond, so consecutive reads can tell which lines they already had) and the line.
/// A line without a readable time is returned whole.
pub(super) fn split_log_line(message: &[u8]) -> (Option<Timestamp>, &[u8]) {
    let Some(space) = message.iter().position(|b| *b == b' ') else {
        return (None, message);
    };
    let at = std::str::from_utf8(&message[..space])
        .ok()
        .and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| t.to_offset(time::UtcOffset::UTC));
    match at {
        Some(at) => (Some(at), &message[space + 1..]),
        None => (None, message),
    }
}

/// A time as the events API's `since`/`until` take it: `seconds.nanoseconds` since the epoch.
pub(super) fn engine_timestamp_arg(t: Timestamp) -> String {
    let nanos = t.unix_timestamp_nanos();
    format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    )
}

/// The engine's create request for a spec: ec2d's settings with `EC2_DOCKER_FLAGS` on top.
pub(super) fn container_config(spec: &ContainerSpec, instance_id: &InstanceId) -> Config<String> {
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

    // The operator's `--cpus`/`--memory` win over the instance type's limits. A type's memory
    // comes without swap beyond it, like an EC2 instance without a swap volume; saying so also
    // lets `docker update` raise it later (the engine refuses a memory limit above the swap
    // limit it set at create, twice the memory by default).
    let nano_cpus = flags.nano_cpus.or(spec.limits.nano_cpus);
    let memory = flags.memory_bytes.or(spec.limits.memory_bytes);
    let memory_swap = match flags.memory_bytes {
        Some(_) => None,
        None => spec.limits.memory_bytes,
    };

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
        // The default bridge's endpoint takes it from here (API 1.41); a VPC network's from
        // its endpoint settings below (the place engines from API 1.44 on read).
        mac_address: spec.mac_address.clone(),
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
            // The operator's `--network` wins over the VPC's network.
            network_mode: flags
                .network
                .clone()
                .or_else(|| spec.network.as_ref().map(|n| n.network.clone())),
            dns: non_empty(&flags.dns),
            nano_cpus,
            memory,
            memory_swap,
            ulimits: (!ulimits.is_empty()).then_some(ulimits),
            cap_add: non_empty(&flags.cap_add),
            tmpfs: (!flags.tmpfs.is_empty()).then(|| flags.tmpfs.clone().into_iter().collect()),
            mounts: (!spec.volume_mounts.is_empty()).then(|| {
                spec.volume_mounts
                    .iter()
                    .map(|v| Mount {
                        target: Some(v.target.clone()),
                        source: Some(v.name.clone()),
                        typ: Some(MountTypeEnum::VOLUME),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }),
        networking_config: endpoint_config(spec),
        ..Default::default()
    }
}

/// The fixed address on the VPC's network, unless the operator's `--network` replaced it.
fn endpoint_config(spec: &ContainerSpec) -> Option<NetworkingConfig<String>> {
    let attachment = spec
        .network
        .as_ref()
        .filter(|_| spec.flags.network.is_none())?;
    Some(NetworkingConfig {
        endpoints_config: HashMap::from([(
            attachment.network.clone(),
            EndpointSettings {
                mac_address: spec.mac_address.clone(),
                ..endpoint_settings(&attachment.ipv4_address)
            },
        )]),
    })
}

/// An endpoint with a fixed IPv4 address.
pub(super) fn endpoint_settings(ipv4_address: &str) -> EndpointSettings {
    EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(ipv4_address.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Network name to Docker's network id, for each network a container is attached to.
fn attached_networks(
    networks: Option<&HashMap<String, EndpointSettings>>,
) -> BTreeMap<String, String> {
    networks
        .into_iter()
        .flatten()
        .map(|(name, endpoint)| {
            (
                name.clone(),
                endpoint.network_id.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// The summary has no exit code field; its status reads "Exited (137) 5 seconds ago".
fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split_once(')')?.0.parse().ok()
}

fn has_exit_code(state: ContainerState) -> bool {
    matches!(state, ContainerState::Exited | ContainerState::Dead)
}

pub(super) fn observed_from_summary(c: ContainerSummary) -> Option<ObservedContainer> {
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
        limits: None,
        volume_mounts: Vec::new(),
        binds: Vec::new(),
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
        networks: attached_networks(
            c.network_settings
                .as_ref()
                .and_then(|n| n.networks.as_ref()),
        ),
        image: c.image.unwrap_or_default(),
        ports,
        labels,
    })
}

pub(super) fn observed_from_inspect(
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
    // The engine writes 0 for "no limit".
    let limits = c.host_config.as_ref().map(|h| ResourceLimits {
        nano_cpus: h.nano_cpus.filter(|n| *n > 0),
        memory_bytes: h.memory.filter(|m| *m > 0),
    });
    let (labels, image) = match c.config {
        Some(cfg) => (
            cfg.labels.unwrap_or_default().into_iter().collect(),
            cfg.image.unwrap_or_default(),
        ),
        None => (BTreeMap::new(), String::new()),
    };
    let mut volume_mounts: Vec<VolumeMount> = c
        .mounts
        .iter()
        .flatten()
        .filter(|m| m.typ == Some(MountPointTypeEnum::VOLUME))
        .filter_map(|m| {
            Some(VolumeMount {
                name: m.name.clone()?,
                target: m.destination.clone()?,
            })
        })
        .collect();
    volume_mounts.sort();
    let binds = c
        .host_config
        .as_ref()
        .and_then(|h| h.binds.clone())
        .unwrap_or_default();
    ObservedContainer {
        binds,
        started_at,
        finished_at,
        limits,
        volume_mounts,
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
        networks: attached_networks(net.and_then(|n| n.networks.as_ref())),
        labels,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::CONTAINER_NAME_PREFIX;

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
            ports: vec![crate::runtime::PortRequest {
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
}
