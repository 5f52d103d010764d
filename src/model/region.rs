//! Regions and availability zones (with AWS's zone ids), and each region's derived default network.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::network::{default_group_id, default_subnets, default_vpc, Subnet, Vpc};

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

/// `ec2.<region>.amazonaws.com`.
pub fn endpoint(region: &str) -> String {
    format!("ec2.{region}.amazonaws.com")
}

/// The known regions, the caller's included even when it is not a standard one.
pub fn known_regions(current: &str) -> Vec<String> {
    let mut all: Vec<String> = REGIONS.iter().map(|r| r.to_string()).collect();
    if !all.iter().any(|r| r == current) {
        all.push(current.to_string());
        all.sort();
    }
    all
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

/// The zone names of a region: `<region>a`, `b`, `c`. RunInstances checks placements against these.
pub fn zone_names(region: &str) -> Vec<String> {
    ["a", "b", "c"]
        .iter()
        .map(|s| format!("{region}{s}"))
        .collect()
}

/// AWS's short region code used in zone ids: `us-east-1` → `use1`, `ap-southeast-2` → `apse2`.
pub fn region_code(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    match parts.as_slice() {
        [geo, direction, number] => {
            let dir = match *direction {
                "east" => "e",
                "west" => "w",
                "north" => "n",
                "south" => "s",
                "central" => "c",
                "northeast" => "ne",
                "northwest" => "nw",
                "southeast" => "se",
                "southwest" => "sw",
                other => other,
            };
            format!("{geo}{dir}{number}")
        }
        _ => region.replace('-', ""),
    }
}

/// The region's zones.
pub fn zones(region: &str) -> Vec<Zone> {
    let code = region_code(region);
    zone_names(region)
        .into_iter()
        .enumerate()
        .map(|(i, name)| Zone {
            name,
            id: format!("{code}-az{}", i + 1),
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
    /// One default subnet per zone, in zone order.
    pub subnets: Vec<Subnet>,
    /// The id of the region's `default` security group.
    pub group_id: String,
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
    let defaults = Arc::new(RegionDefaults {
        vpc: default_vpc(region),
        subnets: default_subnets(region, &zones),
        group_id: default_group_id(region),
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
    fn zone_ids_follow_aws_codes() {
        let z = zones("us-east-1");
        assert_eq!(z[0].name, "us-east-1a");
        assert_eq!(z[0].id, "use1-az1");
        assert_eq!(z[2].id, "use1-az3");
        assert_eq!(region_code("ap-southeast-2"), "apse2");
        assert_eq!(region_code("eu-central-1"), "euc1");
        assert_eq!(region_code("weird"), "weird");
    }

    #[test]
    fn current_region_is_known() {
        assert!(known_regions("us-east-1").contains(&"us-east-1".to_string()));
        let custom = known_regions("mars-north-1");
        assert!(custom.contains(&"mars-north-1".to_string()));
        assert!(custom.windows(2).all(|w| w[0] <= w[1]), "sorted");
    }
}
