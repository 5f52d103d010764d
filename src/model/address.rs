//! Elastic IP addresses: an address allocated to the account (AllocateAddress) from a
//! documentation range, with its tags and its association with an instance
//! (AssociateAddress). Nothing in Docker backs one, so its status is empty.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{Object, ObjectMeta, API_VERSION};

/// A stored Elastic IP.
pub type Address = Object<AddressSpec, AddressStatus>;

/// The kind name of stored Elastic IPs.
pub const ADDRESS_KIND: &str = "Address";

/// What AllocateAddress recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressSpec {
    /// The public address, unique in the store.
    pub public_ip: String,
    /// Always `vpc` (EC2-Classic is gone).
    pub domain: String,
    /// The network border group: the region.
    pub network_border_group: String,
    /// User tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// What AssociateAddress associated it with; `None` while unassociated. An association
    /// whose instance is terminated (or collected) is over, whatever is recorded here: see
    /// `api::addresses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association: Option<AddressAssociation>,
}

/// An Elastic IP's association with an instance's primary network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressAssociation {
    /// `eipassoc-…`, made by AssociateAddress.
    pub association_id: String,
    /// The instance the address is associated with.
    pub instance_id: String,
    /// The instance's primary interface (`eni-…`, derived from the instance id); `None` for
    /// an instance recorded without a subnet, which has no interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_interface_id: Option<String>,
    /// The private address AssociateAddress named; `None`: the interface's primary address,
    /// whatever it is observed to be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip_address: Option<String>,
}

/// Empty: no reconciler looks at Elastic IPs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddressStatus {}

/// The pools Elastic IPs come from, in order: TEST-NET-2 then TEST-NET-3 (RFC 5737), never
/// routed on the internet, so no address ec2d hands out is anybody's. Network and broadcast
/// addresses are skipped.
pub const POOLS: [(Ipv4Addr, u8); 2] = [
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
];

/// Every address the pools hold, in allocation order.
pub fn pool_addresses() -> impl Iterator<Item = Ipv4Addr> {
    POOLS.into_iter().flat_map(|(base, prefix)| {
        let base = u32::from(base);
        let size = 1u32 << (32 - u32::from(prefix));
        (1..size - 1).map(move |offset| Ipv4Addr::from(base + offset))
    })
}

/// A new Elastic IP record.
pub fn new_address(
    id: &str,
    region: &str,
    public_ip: Ipv4Addr,
    tags: BTreeMap<String, String>,
) -> Address {
    Object {
        api_version: API_VERSION.to_string(),
        kind: ADDRESS_KIND.to_string(),
        metadata: ObjectMeta::new(id, region, super::now()),
        spec: AddressSpec {
            public_ip: public_ip.to_string(),
            domain: "vpc".to_string(),
            network_border_group: region.to_string(),
            tags,
            association: None,
        },
        status: AddressStatus::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_skip_network_and_broadcast_addresses() {
        let all: Vec<_> = pool_addresses().collect();
        assert_eq!(all.len(), 2 * 254);
        assert_eq!(all[0], Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(all[253], Ipv4Addr::new(198, 51, 100, 254));
        assert_eq!(all[254], Ipv4Addr::new(203, 0, 113, 1));
    }
}
