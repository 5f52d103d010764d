//! Elastic IP associations as the actions read them: the association in force (its instance
//! exists and is not terminated), the addresses instances hold, and how an instance and its
//! interface show one.
//!
//! TerminateInstances writes nothing to the address: an association whose instance is
//! terminated (desired or observed) or collected reads as gone, everywhere, from the moment
//! the termination is recorded. A write at terminate time would be a second record to keep in
//! step with the instance's, and a crash between the two would leave an association with a
//! terminated instance; a read derived from the instance's own record cannot disagree with it.
//! The stale record is overwritten by the address's next association, disassociation or release.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::error::ApiError;
use super::instances::shown_state;
use super::render::public_ip;
use super::state::ApiState;
use super::xml::XmlWriter;
use crate::model::{
    Address, AddressAssociation, DesiredState, Instance, InstanceState, ACCOUNT_ID,
};
use crate::store::{AddressWrite, SpecStore, StoreError};

/// Changes Elastic IP `id`'s association: `decide` sees the record and its association in
/// force (read outside the store's transaction, which must not read other trees) and answers
/// the association to write (`Some(None)`: none), or `None` to write nothing. The write is a
/// compare-and-swap on the record's version, so a record that moved on is read and decided
/// again. Returns the record as it is now, `None` when there is no record `id`.
pub fn change_association(
    state: &ApiState,
    id: &str,
    decide: impl Fn(
        &Address,
        Option<&AddressAssociation>,
    ) -> Result<Option<Option<AddressAssociation>>, ApiError>,
) -> Result<Option<Address>, ApiError> {
    loop {
        let Some(address) = state.store.addresses().get_shared(id)? else {
            return Ok(None);
        };
        let live = live_association(state, &address)?.map(|(a, _)| a.clone());
        let Some(association) = decide(&address, live.as_ref())? else {
            return Ok(Some(Address::clone(&address)));
        };
        match state
            .store
            .associate_address(id, address.metadata.resource_version, association)?
        {
            AddressWrite::Done(after) => return Ok(Some(*after)),
            AddressWrite::Changed => continue,
            AddressWrite::Missing => return Ok(None),
        }
    }
}

/// Whether `instance` can hold an Elastic IP: it is not terminated, nor being terminated.
pub fn holds_addresses(instance: &Instance) -> bool {
    instance.spec.desired != DesiredState::Terminated
        && shown_state(instance) != InstanceState::Terminated
}

/// The association of `address` in force, with its instance: `None` when it has none, or its
/// instance is gone or terminated.
pub fn live_association<'a>(
    state: &ApiState,
    address: &'a Address,
) -> Result<Option<(&'a AddressAssociation, Arc<Instance>)>, ApiError> {
    let Some(association) = &address.spec.association else {
        return Ok(None);
    };
    Ok(state
        .store
        .instances()
        .get_shared(&association.instance_id)?
        .filter(|i| holds_addresses(i))
        .map(|instance| (association, instance)))
}

/// The Elastic IPs instances hold, by instance id, read from `addresses.instances` and checked
/// against each address's record.
#[derive(Debug, Default)]
pub struct HeldAddresses(HashMap<String, Arc<Address>>);

impl HeldAddresses {
    /// Every instance's.
    pub fn read(state: &ApiState) -> Result<Self, ApiError> {
        let mut held = HashMap::new();
        for (instance_id, allocation_id) in state.store.instance_addresses()? {
            if let Some(address) = held_by(&state.store, &instance_id, &allocation_id)? {
                held.insert(instance_id, address);
            }
        }
        Ok(Self(held))
    }

    /// One instance's (one read of the index).
    pub fn of_instance(state: &ApiState, instance_id: &str) -> Result<Self, ApiError> {
        Self::of_instances(state, &[instance_id])
    }

    /// These instances' (one read of the index each).
    pub fn of_instances(state: &ApiState, instance_ids: &[&str]) -> Result<Self, ApiError> {
        let mut held = HashMap::new();
        for &instance_id in instance_ids {
            if let Some(address) = held_address(&state.store, instance_id)? {
                held.insert(instance_id.to_string(), address);
            }
        }
        Ok(Self(held))
    }

    /// The Elastic IP `instance` shows: none once it is terminated.
    pub fn of(&self, instance: &Instance) -> Option<&Arc<Address>> {
        self.0
            .get(&instance.metadata.name)
            .filter(|_| holds_addresses(instance))
    }
}

/// The Elastic IP whose record names `instance_id` (one read of the index), whatever the
/// instance's state: callers check that with [`holds_addresses`] (the IMDS reads it too).
pub fn held_address(
    store: &SpecStore,
    instance_id: &str,
) -> Result<Option<Arc<Address>>, StoreError> {
    match store.address_of_instance(instance_id)? {
        Some(allocation_id) => held_by(store, instance_id, &allocation_id),
        None => Ok(None),
    }
}

/// The address `allocation_id` when its record still names `instance_id` (the index entry may
/// be one a later association superseded).
fn held_by(
    store: &SpecStore,
    instance_id: &str,
    allocation_id: &str,
) -> Result<Option<Arc<Address>>, StoreError> {
    Ok(store.addresses().get_shared(allocation_id)?.filter(|a| {
        a.spec
            .association
            .as_ref()
            .is_some_and(|assoc| assoc.instance_id == instance_id)
    }))
}

/// The public address an instance shows: its Elastic IP (`eip`, in every state it can hold
/// one: an Elastic IP stays on a stopped instance), else the one it got at launch.
pub fn shown_public_ip<'a>(
    instance: &'a Instance,
    shown: InstanceState,
    eip: Option<&'a Address>,
) -> Option<&'a str> {
    match eip {
        Some(address) => Some(&address.spec.public_ip),
        None => public_ip(instance, shown),
    }
}

/// EC2's public DNS name for an address: `ec2-a-b-c-d.compute-1.amazonaws.com` in us-east-1,
/// `ec2-a-b-c-d.<region>.compute.amazonaws.com` elsewhere.
pub fn public_dns_name(ip: &str, region: &str) -> String {
    match ip.parse::<Ipv4Addr>() {
        Ok(addr) => {
            let [a, b, c, d] = addr.octets();
            if region == "us-east-1" {
                format!("ec2-{a}-{b}-{c}-{d}.compute-1.amazonaws.com")
            } else {
                format!("ec2-{a}-{b}-{c}-{d}.{region}.compute.amazonaws.com")
            }
        }
        Err(_) => String::new(),
    }
}

/// An interface's `<association>` for its public address `public`: an Elastic IP (`eip`)
/// shows its DNS name and the account as owner, and with `ids` (DescribeNetworkInterfaces'
/// shape) its allocation and association ids; an address the instance got at launch shows
/// no DNS name and `amazon`.
pub fn render_association(
    w: &mut XmlWriter,
    public: Option<&str>,
    eip: Option<&Address>,
    ids: bool,
) {
    let Some(ip) = public else {
        return;
    };
    w.el("association", |w| match eip {
        Some(address) => {
            if ids {
                w.field("allocationId", &address.metadata.name);
                if let Some(association) = &address.spec.association {
                    w.field("associationId", &association.association_id);
                }
            }
            w.field("publicIp", ip);
            w.field(
                "publicDnsName",
                public_dns_name(ip, &address.metadata.namespace),
            );
            w.field("ipOwnerId", ACCOUNT_ID);
        }
        None => {
            w.field("publicIp", ip);
            w.field("publicDnsName", "");
            w.field("ipOwnerId", "amazon");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_dns_names_follow_the_region() {
        assert_eq!(
            public_dns_name("198.51.100.7", "us-east-1"),
            "ec2-198-51-100-7.compute-1.amazonaws.com"
        );
        assert_eq!(
            public_dns_name("203.0.113.1", "eu-west-1"),
            "ec2-203-0-113-1.eu-west-1.compute.amazonaws.com"
        );
        assert_eq!(public_dns_name("nope", "us-east-1"), "");
    }
}
