//! The Vpc and Subnet kinds: VPCs and subnets created by CreateVpc/CreateSubnet (the region's default VPC and subnets stay derived, in `network`), and IPv4 CIDR arithmetic.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{Object, ObjectMeta, API_VERSION};
use super::Timestamp;

/// A VPC document.
pub type VpcRecord = Object<VpcSpec, VpcStatus>;

/// A subnet document.
pub type SubnetRecord = Object<SubnetSpec, SubnetStatus>;

/// The kind name stored in a VPC's `kind`.
pub const VPC_KIND: &str = "Vpc";

/// The kind name stored in a subnet's `kind`.
pub const SUBNET_KIND: &str = "Subnet";

/// The smallest and largest blocks EC2 accepts for a VPC or a subnet (/28 to /16).
pub const PREFIX_RANGE: std::ops::RangeInclusive<u8> = 16..=28;

/// Addresses AWS reserves in every subnet (network, router, DNS, future use, broadcast).
pub const RESERVED_PER_SUBNET: u32 = 5;

fn yes() -> bool {
    true
}

/// A VPC as the user defined it (CreateVpc, ModifyVpcAttribute). No reconciler reads it yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VpcSpec {
    /// `CidrBlock`, normalised (`10.0.0.0/16`).
    pub cidr_block: String,
    /// The block's association id (`vpc-cidr-assoc-…`).
    pub cidr_association_id: String,
    /// `InstanceTenancy`: `default` or `dedicated`.
    pub instance_tenancy: String,
    /// The VPC's own `default` security group, created with it.
    pub default_group_id: String,
    /// `enableDnsSupport` (EC2's default: on).
    #[serde(default = "yes")]
    pub enable_dns_support: bool,
    /// `enableDnsHostnames` (EC2's default for a non-default VPC: off).
    #[serde(default)]
    pub enable_dns_hostnames: bool,
    /// `enableNetworkAddressUsageMetrics` (default off).
    #[serde(default)]
    pub enable_network_address_usage_metrics: bool,
    /// Whether this is the region's default VPC, stored (under its derived id) by its first
    /// write: CreateTags or ModifyVpcAttribute.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_default: bool,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Nothing is observed about a VPC yet: the status stays empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VpcStatus {}

/// A subnet as the user defined it (CreateSubnet, ModifySubnetAttribute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubnetSpec {
    /// The VPC it belongs to.
    pub vpc_id: String,
    /// `CidrBlock`, normalised, inside the VPC's.
    pub cidr_block: String,
    /// The zone's name (`us-east-1a`).
    pub availability_zone: String,
    /// The zone's id (`use1-az1`).
    pub availability_zone_id: String,
    /// `MapPublicIpOnLaunch` (default off for a non-default subnet).
    #[serde(default)]
    pub map_public_ip_on_launch: bool,
    /// Whether this is a default subnet of the default VPC, stored by its first write.
    #[serde(default)]
    pub default_for_az: bool,
    /// The other attributes ModifySubnetAttribute changes.
    #[serde(default)]
    pub options: SubnetOptions,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A subnet's launch attributes besides `MapPublicIpOnLaunch`, each ModifySubnetAttribute's
/// (defaults: EC2's for a new subnet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubnetOptions {
    /// `AssignIpv6AddressOnCreation`.
    #[serde(default)]
    pub assign_ipv6_address_on_creation: bool,
    /// `EnableDns64`.
    #[serde(default)]
    pub enable_dns64: bool,
    /// `PrivateDnsHostnameTypeOnLaunch`: `ip-name` or `resource-name`.
    #[serde(default = "ip_name")]
    pub hostname_type: String,
    /// `EnableResourceNameDnsARecordOnLaunch`.
    #[serde(default)]
    pub enable_resource_name_dns_a_record: bool,
    /// `EnableResourceNameDnsAAAARecordOnLaunch`.
    #[serde(default)]
    pub enable_resource_name_dns_aaaa_record: bool,
}

fn ip_name() -> String {
    "ip-name".to_string()
}

impl Default for SubnetOptions {
    fn default() -> Self {
        Self {
            assign_ipv6_address_on_creation: false,
            enable_dns64: false,
            hostname_type: ip_name(),
            enable_resource_name_dns_a_record: false,
            enable_resource_name_dns_aaaa_record: false,
        }
    }
}

/// Nothing is observed about a subnet yet: the status stays empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubnetStatus {}

/// A fresh VPC id (`vpc-` and 17 hex digits, as EC2's).
pub fn generate_vpc_id() -> String {
    format!("vpc-{}", super::ids::random_hex(17))
}

/// A fresh subnet id.
pub fn generate_subnet_id() -> String {
    format!("subnet-{}", super::ids::random_hex(17))
}

/// A fresh CIDR block association id.
pub fn generate_cidr_association_id() -> String {
    format!("vpc-cidr-assoc-{}", super::ids::random_hex(17))
}

/// A VPC document.
pub fn vpc_record(id: &str, region: &str, spec: VpcSpec, now: Timestamp) -> VpcRecord {
    Object {
        api_version: API_VERSION.to_string(),
        kind: VPC_KIND.to_string(),
        metadata: ObjectMeta::new(id, region, now),
        spec,
        status: VpcStatus::default(),
    }
}

/// A subnet document.
pub fn subnet_record(id: &str, region: &str, spec: SubnetSpec, now: Timestamp) -> SubnetRecord {
    Object {
        api_version: API_VERSION.to_string(),
        kind: SUBNET_KIND.to_string(),
        metadata: ObjectMeta::new(id, region, now),
        spec,
        status: SubnetStatus::default(),
    }
}

/// An IPv4 block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The first address.
    pub base: u32,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`; `None` when it is not one. Host bits set are cleared, as EC2 does.
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = text.split_once('/')?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 2 {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        let addr: Ipv4Addr = addr.parse().ok()?;
        let mask = Self::mask(prefix);
        Some(Self {
            base: u32::from(addr) & mask,
            prefix,
        })
    }

    fn mask(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    /// The last address.
    pub fn last(&self) -> u32 {
        self.base | !Self::mask(self.prefix)
    }

    /// How many addresses the block holds.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// Whether `other` lies wholly inside this block.
    pub fn contains(&self, other: &Cidr) -> bool {
        other.base >= self.base && other.last() <= self.last()
    }

    /// Whether the two blocks share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.base <= other.last() && other.base <= self.last()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// Usable addresses of a subnet block: its size minus the 5 AWS reserves.
pub fn usable_addresses(cidr: &str) -> u32 {
    Cidr::parse(cidr).map_or(0, |c| {
        u32::try_from(c.size().saturating_sub(u64::from(RESERVED_PER_SUBNET))).unwrap_or(u32::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_arithmetic() {
        let vpc = Cidr::parse("10.0.0.0/16").unwrap();
        let a = Cidr::parse("10.0.1.0/24").unwrap();
        let b = Cidr::parse("10.0.1.128/25").unwrap();
        let c = Cidr::parse("10.1.0.0/24").unwrap();
        assert!(vpc.contains(&a) && vpc.contains(&b) && !vpc.contains(&c));
        assert!(a.overlaps(&b) && b.overlaps(&a) && !a.overlaps(&c));
        assert_eq!(
            Cidr::parse("10.0.0.7/24").unwrap().to_string(),
            "10.0.0.0/24"
        );
        for junk in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/16",
            "x/16",
            "10.0.0.0/+1",
            "10.0.0.0/",
        ] {
            assert!(Cidr::parse(junk).is_none(), "{junk}");
        }
        assert_eq!(usable_addresses("10.0.1.0/24"), 251);
        assert_eq!(usable_addresses("172.31.0.0/20"), 4091);
    }
}
