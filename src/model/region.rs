//! Regions and availability zones (with AWS's zone ids), and each region's derived default network.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::network::{default_group_id, default_subnets, default_vpc, Subnet, Vpc};
use super::routing::{
    default_internet_gateway, default_main_route_table, InternetGateway, RouteTable,
};

/// The commercial regions every account has without opting in.
pub const REGIONS: &[&str] = &[
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// The commercial regions an account must opt in to (AWS's list of regions "not enabled by
/// default"), each with three zones.
pub const OPT_IN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
];

/// `ec2.<region>.amazonaws.com`.
pub fn endpoint(region: &str) -> String {
    format!("ec2.{region}.amazonaws.com")
}

/// Whether an account must opt in to the region.
pub fn is_opt_in(region: &str) -> bool {
    OPT_IN_REGIONS.contains(&region)
}

/// A region's `OptInStatus` for a caller in `current`: the default regions need none; an
/// opt-in region is `opted-in` when it is the caller's own (a request signed for it proves it
/// is enabled), else `not-opted-in`.
pub fn opt_in_status(region: &str, current: &str) -> &'static str {
    match (is_opt_in(region), region == current) {
        (false, _) => "opt-in-not-required",
        (true, true) => "opted-in",
        (true, false) => "not-opted-in",
    }
}

/// Every region, opt-in ones included, and the caller's even when it is not a standard one (a
/// GovCloud region, or a made-up name), sorted.
pub fn all_regions(current: &str) -> Vec<String> {
    let mut all: Vec<String> = REGIONS
        .iter()
        .chain(OPT_IN_REGIONS)
        .map(|r| r.to_string())
        .collect();
    if !all.iter().any(|r| r == current) {
        all.push(current.to_string());
    }
    all.sort();
    all
}

/// The regions enabled for a caller in `current`: the default ones and its own.
pub fn known_regions(current: &str) -> Vec<String> {
    all_regions(current)
        .into_iter()
        .filter(|r| !is_opt_in(r) || r == current)
        .collect()
}

/// One availability zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// `us-east-1a`.
    pub name: String,
    /// `use1-az1`.
    pub id: String,
    /// The region it belongs to.
    pub region: String,
}

/// The regions whose zones are not `a`, `b`, `c` with ids `az1`..`az3`: each zone's letter and
/// the number of its id. (AWS maps letters to ids per account in regions opened before 2019;
/// these are the ids AWS's documentation lists, in a common mapping.)
const ZONE_LAYOUTS: &[(&str, &[(char, u8)])] = &[
    (
        "us-east-1",
        &[('a', 1), ('b', 2), ('c', 3), ('d', 4), ('e', 5), ('f', 6)],
    ),
    ("us-west-1", &[('a', 1), ('b', 3)]),
    ("us-west-2", &[('a', 1), ('b', 2), ('c', 3), ('d', 4)]),
    ("ap-northeast-1", &[('a', 4), ('c', 1), ('d', 2)]),
    ("ap-northeast-2", &[('a', 1), ('b', 2), ('c', 3), ('d', 4)]),
    ("ca-central-1", &[('a', 1), ('b', 2), ('d', 4)]),
];

/// Three zones `a`..`c` with ids `az1`..`az3`: every other region.
const THREE_ZONES: &[(char, u8)] = &[('a', 1), ('b', 2), ('c', 3)];

fn zone_layout(region: &str) -> &'static [(char, u8)] {
    ZONE_LAYOUTS
        .iter()
        .find(|(r, _)| *r == region)
        .map_or(THREE_ZONES, |(_, layout)| *layout)
}

/// The zone names of a region (`us-east-1a`..`f`). RunInstances checks placements against these.
pub fn zone_names(region: &str) -> Vec<String> {
    zone_layout(region)
        .iter()
        .map(|(letter, _)| format!("{region}{letter}"))
        .collect()
}

/// Whether `name` is a zone of one of the commercial regions, opt-in ones included
/// (`us-east-1a`, `eu-west-3c`); `us-east-1g` and a made-up region's zones are not.
pub fn is_known_zone(name: &str) -> bool {
    REGIONS
        .iter()
        .chain(OPT_IN_REGIONS)
        .filter(|region| name.starts_with(**region))
        .any(|region| zone_names(region).iter().any(|zone| zone == name))
}

/// AWS's short region code used in zone ids: `us-east-1` → `use1`, `ap-southeast-2` → `apse2`,
/// GovCloud's `us-gov-west-1` → `usgw1`.
pub fn region_code(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    let direction = |d: &str| match d {
        "east" => "e".to_string(),
        "west" => "w".to_string(),
        "north" => "n".to_string(),
        "south" => "s".to_string(),
        "central" => "c".to_string(),
        "northeast" => "ne".to_string(),
        "northwest" => "nw".to_string(),
        "southeast" => "se".to_string(),
        "southwest" => "sw".to_string(),
        other => other.to_string(),
    };
    match parts.as_slice() {
        [geo, dir, number] => format!("{geo}{}{number}", direction(dir)),
        ["us", "gov", dir, number] => format!("usg{}{number}", direction(dir)),
        _ => region.replace('-', ""),
    }
}

/// The region's zones, with AWS's zone ids.
pub fn zones(region: &str) -> Vec<Zone> {
    let code = region_code(region);
    zone_layout(region)
        .iter()
        .map(|(letter, number)| Zone {
            name: format!("{region}{letter}"),
            id: format!("{code}-az{number}"),
            region: region.to_string(),
        })
        .collect()
}

/// A region's computed default network. It is a pure function of the region, and every
/// launch needs it, so it is made once per region (hashing ids each time cost RunInstances
/// about 4% of its time) and shared.
#[derive(Debug)]
pub struct RegionDefaults {
    /// The default VPC.
    pub vpc: Vpc,
    /// One default subnet per zone, in zone order (EC2 makes one per zone).
    pub subnets: Vec<Subnet>,
    /// The id of the region's `default` security group.
    pub group_id: String,
    /// The default VPC's internet gateway, attached to it (derived, as AWS makes one).
    pub internet_gateway: InternetGateway,
    /// The default VPC's main route table: `local` and `0.0.0.0/0` through the gateway.
    pub main_route_table: RouteTable,
}

/// How many regions' defaults are kept; region names come from requests, so the memo is bounded.
const REGION_DEFAULTS_LIMIT: usize = 64;

/// The region's default network, memoised.
pub fn defaults(region: &str) -> Arc<RegionDefaults> {
    static MEMO: LazyLock<Mutex<HashMap<String, Arc<RegionDefaults>>>> =
        LazyLock::new(Mutex::default);
    let mut memo = MEMO.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(defaults) = memo.get(region) {
        return defaults.clone();
    }
    let zones: Vec<(String, String)> = zones(region).into_iter().map(|z| (z.name, z.id)).collect();
    let vpc = default_vpc(region);
    let internet_gateway = default_internet_gateway(region, &vpc.vpc_id);
    let main_route_table = default_main_route_table(
        region,
        &vpc.vpc_id,
        &vpc.cidr_block,
        &internet_gateway.metadata.name,
    );
    let defaults = Arc::new(RegionDefaults {
        subnets: default_subnets(region, &zones),
        group_id: default_group_id(region),
        vpc,
        internet_gateway,
        main_route_table,
    });
    if memo.len() < REGION_DEFAULTS_LIMIT {
        memo.insert(region.to_string(), defaults.clone());
    }
    defaults
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_zones_are_the_regions_zones() {
        assert!(is_known_zone("us-east-1a"));
        assert!(is_known_zone("us-east-1f"));
        assert!(is_known_zone("ap-northeast-1d"));
        assert!(is_known_zone("af-south-1c"));
        assert!(!is_known_zone("us-east-1g"));
        assert!(!is_known_zone("ap-northeast-1b"));
        assert!(!is_known_zone("us-east-1"));
        assert!(!is_known_zone("mars-north-1a"));
        assert!(!is_known_zone(""));
    }

    #[test]
    fn zone_ids_follow_aws_codes() {
        let z = zones("us-east-1");
        assert_eq!(z.len(), 6);
        assert_eq!(z[0].name, "us-east-1a");
        assert_eq!(z[0].id, "use1-az1");
        assert_eq!(z[5].name, "us-east-1f");
        assert_eq!(z[5].id, "use1-az6");
        assert_eq!(zones("us-west-2").len(), 4);
        let ca: Vec<_> = zones("ca-central-1")
            .into_iter()
            .map(|z| (z.name, z.id))
            .collect();
        assert_eq!(ca[2], ("ca-central-1d".to_string(), "cac1-az4".to_string()));
        assert_eq!(zones("us-gov-west-1")[0].id, "usgw1-az1");
        assert_eq!(zones("us-gov-east-1")[2].id, "usge1-az3");
        assert_eq!(zones("af-south-1")[1].id, "afs1-az2");
        assert_eq!(region_code("ap-southeast-2"), "apse2");
        assert_eq!(region_code("eu-central-1"), "euc1");
        assert_eq!(region_code("weird"), "weird");
        assert_eq!(
            zone_names("mars-north-1"),
            ["mars-north-1a", "mars-north-1b", "mars-north-1c"]
        );
    }

    #[test]
    fn current_region_is_known() {
        assert!(known_regions("us-east-1").contains(&"us-east-1".to_string()));
        assert!(!known_regions("us-east-1").contains(&"af-south-1".to_string()));
        assert!(known_regions("af-south-1").contains(&"af-south-1".to_string()));
        let custom = known_regions("mars-north-1");
        assert!(custom.contains(&"mars-north-1".to_string()));
        assert!(custom.windows(2).all(|w| w[0] <= w[1]), "sorted");
        assert_eq!(
            all_regions("us-east-1").len(),
            REGIONS.len() + OPT_IN_REGIONS.len()
        );
    }

    #[test]
    fn opt_in_statuses() {
        assert_eq!(
            opt_in_status("us-east-1", "eu-west-1"),
            "opt-in-not-required"
        );
        assert_eq!(opt_in_status("af-south-1", "af-south-1"), "opted-in");
        assert_eq!(opt_in_status("af-south-1", "us-east-1"), "not-opted-in");
    }
}
