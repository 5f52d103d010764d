//! Private IPv4 addresses for RunInstances: the one a launch asks for, checked against its subnet, or the subnet's next free ones, as EC2 hands them out.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::api::error::ApiError;
use crate::model::vpc::Cidr;

/// How many of a subnet's first addresses EC2 keeps (network, router, DNS, future use); the
/// last (broadcast) is kept too.
const RESERVED_AT_START: u32 = 4;

/// The usable range of a subnet block: its first four addresses and its last are EC2's.
fn usable(block: &Cidr) -> std::ops::RangeInclusive<u32> {
    block.base + RESERVED_AT_START..=block.last().saturating_sub(1)
}

/// Checks an address the launch asked for (`PrivateIpAddress`): inside the subnet, not one of
/// the addresses EC2 reserves, not held by a live instance.
pub fn check_requested(
    requested: &str,
    subnet_block: &str,
    in_use: &[String],
) -> Result<String, ApiError> {
    let address: Ipv4Addr = requested.parse().map_err(|_| {
        ApiError::invalid_value(format!(
            "Value ({requested}) for parameter privateIpAddress is invalid. Expected a valid IPv4 address."
        ))
    })?;
    let block = Cidr::parse(subnet_block)
        .ok_or_else(|| ApiError::internal(format!("subnet block {subnet_block} is unreadable")))?;
    let value = u32::from(address);
    if value < block.base || value > block.last() {
        return Err(ApiError::invalid_value(format!(
            "Address {address} does not fall within the subnet's address range"
        )));
    }
    if !usable(&block).contains(&value) {
        return Err(ApiError::invalid_value(format!(
            "Address {address} is in subnet's reserved address range"
        )));
    }
    let address = address.to_string();
    if in_use.contains(&address) {
        return Err(in_use_error(&address));
    }
    Ok(address)
}

/// `InvalidIPAddress.InUse`.
pub fn in_use_error(address: &str) -> ApiError {
    ApiError::client(
        "InvalidIPAddress.InUse",
        format!("Address {address} is in use."),
    )
}

/// Up to `count` free addresses of the subnet, lowest first, as EC2 picks them; fewer when
/// the subnet has fewer free.
pub fn pick_free(subnet_block: &str, in_use: &[String], count: u32) -> Vec<String> {
    let Some(block) = Cidr::parse(subnet_block) else {
        return Vec::new();
    };
    let taken: BTreeSet<u32> = in_use
        .iter()
        .filter_map(|ip| ip.parse::<Ipv4Addr>().ok())
        .map(u32::from)
        .collect();
    usable(&block)
        .filter(|a| !taken.contains(a))
        .take(count as usize)
        .map(|a| Ipv4Addr::from(a).to_string())
        .collect()
}

/// `InsufficientFreeAddressesInSubnet`: the subnet cannot hold the launch's `MinCount`.
pub fn exhausted(subnet_id: &str) -> ApiError {
    ApiError::client(
        "InsufficientFreeAddressesInSubnet",
        format!(
            "There are not enough free addresses in subnet '{subnet_id}' to satisfy the requested number of instances."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_from_the_usable_range_lowest_first() {
        let in_use = vec!["10.0.1.5".to_string()];
        assert_eq!(
            pick_free("10.0.1.0/24", &in_use, 3),
            ["10.0.1.4", "10.0.1.6", "10.0.1.7"]
        );
        // A /28 holds 16 addresses, 11 usable: .4 to .14.
        let all = pick_free("10.0.2.0/28", &[], 100);
        assert_eq!(all.len(), 11);
        assert_eq!(all.first().map(String::as_str), Some("10.0.2.4"));
        assert_eq!(all.last().map(String::as_str), Some("10.0.2.14"));
    }

    #[test]
    fn a_requested_address_is_checked_against_the_subnet() {
        let in_use = vec!["10.0.1.9".to_string()];
        assert_eq!(
            check_requested("10.0.1.10", "10.0.1.0/24", &in_use).unwrap(),
            "10.0.1.10"
        );
        for (asked, code) in [
            ("10.0.1.9", "InvalidIPAddress.InUse"),
            ("10.0.2.9", "InvalidParameterValue"),
            ("10.0.1.3", "InvalidParameterValue"),
            ("10.0.1.255", "InvalidParameterValue"),
            ("10.0.1", "InvalidParameterValue"),
        ] {
            let error = check_requested(asked, "10.0.1.0/24", &in_use).unwrap_err();
            assert_eq!(error.code, code, "{asked}");
        }
    }
}
