//! VPC networks on the engine: the create request, the observed networks, and the host routes a VPC's block must not shadow.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use bollard::models::{Ipam, IpamConfig, Network};
use bollard::network::CreateNetworkOptions;

use crate::runtime::{labels, NetworkSpec, ObservedNetwork};

/// The engine's create request: a bridge with the VPC's block as its one subnet, labelled as
/// ec2d's. The engine refuses a block that overlaps one of its other networks.
pub(super) fn create_options(spec: &NetworkSpec) -> CreateNetworkOptions<String> {
    CreateNetworkOptions {
        name: spec.name.clone(),
        check_duplicate: true,
        driver: "bridge".to_string(),
        ipam: Ipam {
            driver: Some("default".to_string()),
            config: Some(vec![IpamConfig {
                subnet: Some(spec.cidr.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        },
        labels: HashMap::from([
            (labels::VPC_ID.to_string(), spec.vpc_id.clone()),
            (labels::STORE_ID.to_string(), spec.store_id.clone()),
            (labels::MANAGED.to_string(), "true".to_string()),
        ]),
        ..Default::default()
    }
}

/// A listed network, when it carries the VPC label.
pub(super) fn observed_network(network: Network) -> Option<ObservedNetwork> {
    let labels = network.labels.unwrap_or_default();
    let vpc_id = labels.get(labels::VPC_ID)?.clone();
    Some(ObservedNetwork {
        id: network.id.unwrap_or_default(),
        name: network.name.unwrap_or_default(),
        vpc_id,
        store_id: labels.get(labels::STORE_ID).cloned(),
        cidr: network
            .ipam
            .and_then(|ipam| ipam.config)
            .and_then(|configs| configs.into_iter().find_map(|c| c.subnet)),
    })
}

/// A host route `block` would shadow: the engine checks its own networks only, and a bridge
/// over the host's own LAN would cut the host off from it. Routes of Docker's bridges are the
/// engine's business (it refuses those overlaps itself); the default route overlaps everything
/// and is skipped. Reads `/proc/net/route`; `None` when nothing overlaps or it cannot be read.
pub(super) fn shadowed_host_route(block: &str) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    let (base, prefix) = parse_block(block)?;
    route_overlap(&table, base, prefix)
}

fn parse_block(block: &str) -> Option<(u32, u32)> {
    let (addr, prefix) = block.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let prefix: u32 = prefix.parse().ok().filter(|p| *p <= 32)?;
    Some((u32::from(addr) & mask(prefix), prefix))
}

fn mask(prefix: u32) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// The first route of a `/proc/net/route` table (addresses in host byte order, little-endian
/// hex) that overlaps `base/prefix`, as `<destination>/<prefix> dev <interface>`.
fn route_overlap(table: &str, base: u32, prefix: u32) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (iface, destination, route_mask) = (fields.first()?, fields.get(1)?, fields.get(7)?);
        if *iface == "docker0" || iface.starts_with("br-") || iface.starts_with("veth") {
            return None;
        }
        let destination = network_order(destination)?;
        let route_mask = network_order(route_mask)?;
        let route_prefix = route_mask.leading_ones();
        if route_prefix == 0 {
            return None;
        }
        let common = mask(prefix.min(route_prefix));
        (destination & common == base & common)
            .then(|| format!("{}/{route_prefix} dev {iface}", Ipv4Addr::from(destination)))
    })
}

/// The kernel prints each address as the native-endian number its network-order bytes make.
fn network_order(hex: &str) -> Option<u32> {
    let native = u32::from_str_radix(hex, 16).ok()?;
    Some(u32::from_be_bytes(native.to_ne_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
        docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
        eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

    #[test]
    #[cfg(target_endian = "little")]
    fn a_block_over_the_hosts_lan_is_refused_and_docker_bridges_are_left_to_the_engine() {
        let (base, prefix) = parse_block("192.0.0.0/16").unwrap();
        assert_eq!(
            route_overlap(TABLE, base, prefix).as_deref(),
            Some("192.0.2.0/24 dev eth0")
        );
        let (base, prefix) = parse_block("192.0.2.128/25").unwrap();
        assert!(route_overlap(TABLE, base, prefix).is_some());
        for free in ["10.0.0.0/16", "172.17.0.0/16", "192.0.3.0/24"] {
            let (base, prefix) = parse_block(free).unwrap();
            assert_eq!(route_overlap(TABLE, base, prefix), None, "{free}");
        }
    }
}
