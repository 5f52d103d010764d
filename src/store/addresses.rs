//! Elastic IP associations: an address's association lives on its record, and the
//! `addresses.instances` index (instance id -> the allocation id it holds) is written in the
//! same transaction, so "which Elastic IP does this instance hold" is one read and no crash
//! separates the two.
//!
//! An instance holds at most one Elastic IP: associating another one with it takes the
//! association off the address that held it, in the same transaction (EC2 moves it too).
//! The index may keep an entry whose address no longer names that instance (the instance was
//! terminated and the address associated elsewhere since): readers check the record, and
//! every write of an association removes the entry it supersedes.

use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::Transactional;

use super::{Store, StoreError};
use crate::model::{Address, AddressAssociation};

/// Carries a store error out of a transaction whose abort type is the caller's.
fn abort<T, E: From<StoreError>>(e: StoreError) -> ConflictableTransactionResult<T, E> {
    Err(ConflictableTransactionError::Abort(E::from(e)))
}

/// A transaction's result with storage failures turned into the caller's error.
fn finish<R, E: From<StoreError>>(result: Result<R, TransactionError<E>>) -> Result<R, E> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => E::from(e.into()),
    })
}

impl Store {
    /// The allocation id `addresses.instances` records for `instance_id` (check the record:
    /// the entry may be one a later association superseded).
    pub fn address_of_instance(&self, instance_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .address_instances
            .get(instance_id.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Every `(instance id, allocation id)` entry of `addresses.instances`.
    pub fn instance_addresses(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.address_instances
            .iter()
            .map(|entry| {
                let (k, v) = entry?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                ))
            })
            .collect()
    }

    /// Inside a transaction: the Elastic IP record `id`, `None` when there is none.
    fn read_address<E: From<StoreError>>(
        &self,
        spec: &TransactionalTree,
        id: &[u8],
    ) -> ConflictableTransactionResult<Option<Address>, E> {
        let Some(bytes) = spec.get(id)? else {
            return Ok(None);
        };
        match self.addresses.decode_object(id, &bytes, None) {
            Ok(address) => Ok(Some(address)),
            Err(e) => abort(e),
        }
    }

    /// Inside a transaction: writes `address` with its association changed to `association`
    /// (a new generation), keeping the index in step: the entry of the instance it leaves is
    /// removed when it is this address's, and the instance it joins is taken from the address
    /// that held it.
    fn write_association<E: From<StoreError>>(
        &self,
        (spec, index): (&TransactionalTree, &TransactionalTree),
        mut address: Address,
        association: Option<AddressAssociation>,
    ) -> ConflictableTransactionResult<Address, E> {
        let id = address.metadata.name.clone();
        if let Some(old) = &address.spec.association {
            if index.get(old.instance_id.as_bytes())?.as_deref() == Some(id.as_bytes()) {
                index.remove(old.instance_id.as_bytes())?;
            }
        }
        if let Some(new) = &association {
            if let Some(holder) = index.get(new.instance_id.as_bytes())? {
                if holder.as_ref() != id.as_bytes() {
                    if let Some(other) = self.read_address::<E>(spec, holder.as_ref())? {
                        let holds = other
                            .spec
                            .association
                            .as_ref()
                            .is_some_and(|a| a.instance_id == new.instance_id);
                        if holds {
                            self.put_association::<E>(spec, other, None)?;
                        }
                    }
                }
            }
            index.insert(new.instance_id.as_bytes(), id.as_bytes())?;
        }
        address.spec.association = association.clone();
        self.put_association(spec, address, association)
    }

    /// Inside a transaction: stores `address` with `association`, a new generation.
    fn put_association<E: From<StoreError>>(
        &self,
        spec: &TransactionalTree,
        mut address: Address,
        association: Option<AddressAssociation>,
    ) -> ConflictableTransactionResult<Address, E> {
        address.spec.association = association;
        address.metadata.generation += 1;
        address.metadata.resource_version += 1;
        let bytes = match self.addresses.encode_spec(&address) {
            Ok(bytes) => bytes,
            Err(e) => return abort(e),
        };
        spec.insert(address.metadata.name.as_bytes(), bytes)?;
        Ok(address)
    }

    /// Sets Elastic IP `id`'s association (`None`: none) in one transaction with the index
    /// (see the module), if the record is still at `version` (its `resourceVersion` when the
    /// caller read it and decided): a compare-and-swap, so a decision taken on a record that
    /// moved on since is never written ([`AddressWrite::Changed`]: read it again).
    pub fn associate_address(
        &self,
        id: &str,
        version: u64,
        association: Option<AddressAssociation>,
    ) -> Result<AddressWrite, StoreError> {
        let addresses = &self.addresses;
        let writing = addresses.writing();
        let outcome = finish(
            (addresses.spec_tree(), &self.address_instances).transaction(|(spec, index)| {
                let Some(address) = self.read_address::<StoreError>(spec, id.as_bytes())? else {
                    return Ok(AddressWrite::Missing);
                };
                if address.metadata.resource_version != version {
                    return Ok(AddressWrite::Changed);
                }
                let after = self.write_association((spec, index), address, association.clone())?;
                Ok(AddressWrite::Done(Box::new(after)))
            }),
        )?;
        drop(writing);
        if let AddressWrite::Done(_) = outcome {
            addresses.make_durable()?;
        }
        Ok(outcome)
    }

    /// Releases Elastic IP `id` if the record is still at `version` (the caller checked it is
    /// not in use at that version), freeing its address and its index entry, in one transaction.
    pub fn release_address(&self, id: &str, version: u64) -> Result<AddressWrite, StoreError> {
        let addresses = &self.addresses;
        let writing = addresses.writing();
        let outcome = finish(
            (
                addresses.spec_tree(),
                addresses.status_tree(),
                &self.address_ips,
                &self.address_instances,
            )
                .transaction(|(spec, status, ips, index)| {
                    let Some(address) = self.read_address::<StoreError>(spec, id.as_bytes())?
                    else {
                        return Ok(AddressWrite::Missing);
                    };
                    if address.metadata.resource_version != version {
                        return Ok(AddressWrite::Changed);
                    }
                    spec.remove(id.as_bytes())?;
                    status.remove(id.as_bytes())?;
                    let ip = address.spec.public_ip.as_bytes();
                    if ips.get(ip)?.as_deref() == Some(id.as_bytes()) {
                        ips.remove(ip)?;
                    }
                    if let Some(old) = &address.spec.association {
                        let key = old.instance_id.as_bytes();
                        if index.get(key)?.as_deref() == Some(id.as_bytes()) {
                            index.remove(key)?;
                        }
                    }
                    Ok(AddressWrite::Done(Box::new(address)))
                }),
        )?;
        if let AddressWrite::Done(_) = outcome {
            addresses.forget(id);
        }
        drop(writing);
        if let AddressWrite::Done(_) = outcome {
            addresses.make_durable()?;
        }
        Ok(outcome)
    }
}

/// What a compare-and-swap write of an Elastic IP came to.
#[derive(Debug)]
pub enum AddressWrite {
    /// Written: the record after (for a release, the released record).
    Done(Box<Address>),
    /// The record moved on since the caller read it: nothing written.
    Changed,
    /// No such record.
    Missing,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::address::new_address;

    fn association(id: &str, instance: &str) -> AddressAssociation {
        AddressAssociation {
            association_id: id.into(),
            instance_id: instance.into(),
            network_interface_id: None,
            private_ip_address: None,
        }
    }

    fn allocate(store: &Store, id: &str, ip: [u8; 4]) {
        let address = new_address(id, "us-east-1", ip.into(), Default::default());
        store.create_address(&address).unwrap();
    }

    fn version(store: &Store, id: &str) -> u64 {
        let address = store.addresses().get(id).unwrap().unwrap();
        address.metadata.resource_version
    }

    fn set(store: &Store, id: &str, to: Option<AddressAssociation>) -> Address {
        match store.associate_address(id, version(store, id), to).unwrap() {
            AddressWrite::Done(after) => *after,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_instance_holds_one_address_and_a_second_one_takes_its_place() {
        let store = Store::temporary().unwrap();
        allocate(&store, "eipalloc-a", [198, 51, 100, 1]);
        allocate(&store, "eipalloc-b", [198, 51, 100, 2]);
        let a = set(&store, "eipalloc-a", Some(association("eipassoc-1", "i-1")));
        assert_eq!(a.metadata.generation, 2);
        assert_eq!(
            store.address_of_instance("i-1").unwrap().as_deref(),
            Some("eipalloc-a")
        );
        set(&store, "eipalloc-b", Some(association("eipassoc-2", "i-1")));
        let a = store.addresses().get("eipalloc-a").unwrap().unwrap();
        assert_eq!(a.spec.association, None, "moved off the first address");
        assert_eq!(
            store.address_of_instance("i-1").unwrap().as_deref(),
            Some("eipalloc-b")
        );
        // Moving b to another instance frees i-1's entry.
        set(&store, "eipalloc-b", Some(association("eipassoc-3", "i-2")));
        assert_eq!(store.address_of_instance("i-1").unwrap(), None);
        assert_eq!(
            store.instance_addresses().unwrap(),
            vec![("i-2".to_string(), "eipalloc-b".to_string())]
        );
    }

    #[test]
    fn writes_are_compare_and_swap_and_release_frees_address_and_entry() {
        let store = Store::temporary().unwrap();
        allocate(&store, "eipalloc-a", [198, 51, 100, 1]);
        let stale = version(&store, "eipalloc-a");
        set(&store, "eipalloc-a", Some(association("eipassoc-1", "i-1")));
        assert!(matches!(
            store.release_address("eipalloc-a", stale).unwrap(),
            AddressWrite::Changed
        ));
        assert!(matches!(
            store.associate_address("eipalloc-a", stale, None).unwrap(),
            AddressWrite::Changed
        ));
        assert!(store.addresses().get("eipalloc-a").unwrap().is_some());
        let released = store
            .release_address("eipalloc-a", version(&store, "eipalloc-a"))
            .unwrap();
        assert!(matches!(released, AddressWrite::Done(_)));
        assert_eq!(store.address_of_instance("i-1").unwrap(), None);
        assert!(matches!(
            store.release_address("eipalloc-a", 1).unwrap(),
            AddressWrite::Missing
        ));
        // The address is free again.
        allocate(&store, "eipalloc-c", [198, 51, 100, 1]);
    }
}
