//! VPCs, internet gateways and route tables changed together in one sled transaction ([`Store::routing`]), with the indexes that keep a VPC to one attached gateway and a subnet to one route table.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `internet_gateways.vpcs` | VPC id | the id of the gateway attached to it |
//! | `route_tables.subnets` | subnet id | the id of the route table it is explicitly associated with |
//! | `route_tables.vpcs` | VPC id | how many stored route tables the VPC has (u64, big endian) |
//!
//! Both are written only inside [`Store::routing`], in the same transaction as the records
//! they describe, so "is the VPC free? then attach" needs no lock: two attaches of one VPC
//! (or one gateway) cannot both commit, and DeleteVpc's transaction sees an attachment or a
//! route table committed before it.

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

use super::{Collection, Store, StoreError};
use crate::model::{
    InternetGateway, InternetGatewaySpec, InternetGatewayStatus, Object, RouteTable,
    RouteTableSpec, RouteTableStatus, VpcRecord, VpcSpec, VpcStatus,
};

/// One collection's trees inside a routing transaction.
struct Part<'t, S, T: Default> {
    collection: &'t Collection<S, T>,
    spec: &'t TransactionalTree,
    status: &'t TransactionalTree,
}

/// What one attempt of a routing transaction reads and writes; every method's error is the
/// store's, and a failure of the transaction itself (a conflict, which sled retries, or
/// storage) is remembered so the caller's own error cannot hide it.
pub struct RoutingTx<'t> {
    gateways: Part<'t, InternetGatewaySpec, InternetGatewayStatus>,
    tables: Part<'t, RouteTableSpec, RouteTableStatus>,
    vpcs: Part<'t, VpcSpec, VpcStatus>,
    vpc_gateways: &'t TransactionalTree,
    subnet_tables: &'t TransactionalTree,
    vpc_tables: &'t TransactionalTree,
    failure: RefCell<Option<UnabortableTransactionError>>,
    deleted: RefCell<Vec<String>>,
}

impl RoutingTx<'_> {
    fn tree<R>(&self, result: Result<R, UnabortableTransactionError>) -> Result<R, StoreError> {
        result.map_err(|e| {
            let message = e.to_string();
            self.failure.borrow_mut().get_or_insert(e);
            StoreError::Backend(message)
        })
    }

    fn get<S, T>(&self, part: &Part<'_, S, T>, id: &str) -> Result<Option<Object<S, T>>, StoreError>
    where
        S: Serialize + DeserializeOwned + Clone,
        T: Serialize + DeserializeOwned + Default + Clone,
    {
        let Some(spec) = self.tree(part.spec.get(id.as_bytes()))? else {
            return Ok(None);
        };
        let status = self.tree(part.status.get(id.as_bytes()))?;
        part.collection
            .decode_object(id.as_bytes(), &spec, status.as_deref())
            .map(Some)
    }

    /// Writes `object`: a new record as it is, a changed one with its generation and
    /// resource version moved past the stored ones.
    fn put<S, T>(&self, part: &Part<'_, S, T>, object: &Object<S, T>) -> Result<(), StoreError>
    where
        S: Serialize + DeserializeOwned + Clone,
        T: Serialize + DeserializeOwned + Default + Clone,
    {
        let id = object.metadata.name.as_str();
        let mut object = object.clone();
        if let Some(before) = self.get(part, id)? {
            object.metadata.generation = before.metadata.generation + 1;
            object.metadata.resource_version = before.metadata.resource_version + 1;
        }
        let bytes = part.collection.encode_spec(&object)?;
        self.tree(part.spec.insert(id.as_bytes(), bytes))?;
        Ok(())
    }

    fn delete<S, T: Default>(&self, part: &Part<'_, S, T>, id: &str) -> Result<(), StoreError> {
        self.tree(part.spec.remove(id.as_bytes()))?;
        self.tree(part.status.remove(id.as_bytes()))?;
        self.deleted.borrow_mut().push(id.to_string());
        Ok(())
    }

    fn index(&self, tree: &TransactionalTree, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .tree(tree.get(key.as_bytes()))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn set_index(
        &self,
        tree: &TransactionalTree,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        match value {
            Some(v) => self.tree(tree.insert(key.as_bytes(), v.as_bytes()))?,
            None => self.tree(tree.remove(key.as_bytes()))?,
        };
        Ok(())
    }

    /// The stored internet gateway `id`.
    pub fn internet_gateway(&self, id: &str) -> Result<Option<InternetGateway>, StoreError> {
        self.get(&self.gateways, id)
    }

    /// Stores an internet gateway (new or changed).
    pub fn put_internet_gateway(&self, gateway: &InternetGateway) -> Result<(), StoreError> {
        self.put(&self.gateways, gateway)
    }

    /// Removes an internet gateway.
    pub fn delete_internet_gateway(&self, id: &str) -> Result<(), StoreError> {
        self.delete(&self.gateways, id)
    }

    /// The stored route table `id`.
    pub fn route_table(&self, id: &str) -> Result<Option<RouteTable>, StoreError> {
        self.get(&self.tables, id)
    }

    /// Stores a route table (new or changed).
    pub fn put_route_table(&self, table: &RouteTable) -> Result<(), StoreError> {
        self.put(&self.tables, table)
    }

    /// Removes a route table.
    pub fn delete_route_table(&self, id: &str) -> Result<(), StoreError> {
        self.delete(&self.tables, id)
    }

    /// The stored VPC `id`.
    pub fn vpc(&self, id: &str) -> Result<Option<VpcRecord>, StoreError> {
        self.get(&self.vpcs, id)
    }

    /// Stores a VPC (new or changed).
    pub fn put_vpc(&self, vpc: &VpcRecord) -> Result<(), StoreError> {
        self.put(&self.vpcs, vpc)
    }

    /// Removes a VPC.
    pub fn delete_vpc(&self, id: &str) -> Result<(), StoreError> {
        self.delete(&self.vpcs, id)
    }

    /// The gateway the index says is attached to `vpc_id`.
    pub fn gateway_of_vpc(&self, vpc_id: &str) -> Result<Option<String>, StoreError> {
        self.index(self.vpc_gateways, vpc_id)
    }

    /// Records (or, with `None`, forgets) the gateway attached to `vpc_id`.
    pub fn set_gateway_of_vpc(
        &self,
        vpc_id: &str,
        gateway: Option<&str>,
    ) -> Result<(), StoreError> {
        self.set_index(self.vpc_gateways, vpc_id, gateway)
    }

    /// The route table the index says `subnet_id` is associated with.
    pub fn table_of_subnet(&self, subnet_id: &str) -> Result<Option<String>, StoreError> {
        self.index(self.subnet_tables, subnet_id)
    }

    /// How many stored route tables the index counts for `vpc_id`.
    pub fn table_count(&self, vpc_id: &str) -> Result<u64, StoreError> {
        let bytes = self.tree(self.vpc_tables.get(vpc_id.as_bytes()))?;
        Ok(bytes
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Sets the count of `vpc_id`'s stored route tables (0 removes the entry).
    pub fn set_table_count(&self, vpc_id: &str, count: u64) -> Result<(), StoreError> {
        if count == 0 {
            self.tree(self.vpc_tables.remove(vpc_id.as_bytes()))?;
        } else {
            self.tree(
                self.vpc_tables
                    .insert(vpc_id.as_bytes(), &count.to_be_bytes()),
            )?;
        }
        Ok(())
    }

    /// Records (or, with `None`, forgets) the table `subnet_id` is associated with.
    pub fn set_table_of_subnet(
        &self,
        subnet_id: &str,
        table: Option<&str>,
    ) -> Result<(), StoreError> {
        self.set_index(self.subnet_tables, subnet_id, table)
    }
}

impl Store {
    /// Runs `change` in one transaction over the VPCs, internet gateways, route tables and
    /// their indexes, then makes what it wrote durable. `change` may run more than once (sled
    /// retries a conflicting transaction) and must only read and write through its argument;
    /// its error aborts the transaction, writing nothing.
    pub fn routing<R, E: From<StoreError>>(
        &self,
        change: impl Fn(&RoutingTx<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let (gateways, tables, vpcs) = (&self.internet_gateways, &self.route_tables, &self.vpcs);
        let writing = (gateways.writing(), tables.writing(), vpcs.writing());
        let result = (
            gateways.spec_tree(),
            gateways.status_tree(),
            tables.spec_tree(),
            tables.status_tree(),
            vpcs.spec_tree(),
            vpcs.status_tree(),
            &self.vpc_gateways,
            &self.subnet_tables,
            &self.vpc_tables,
        )
            .transaction(|(gs, gst, ts, tst, vs, vst, vg, st, vt)| {
                let tx = RoutingTx {
                    gateways: Part {
                        collection: gateways,
                        spec: gs,
                        status: gst,
                    },
                    tables: Part {
                        collection: tables,
                        spec: ts,
                        status: tst,
                    },
                    vpcs: Part {
                        collection: vpcs,
                        spec: vs,
                        status: vst,
                    },
                    vpc_gateways: vg,
                    subnet_tables: st,
                    vpc_tables: vt,
                    failure: RefCell::default(),
                    deleted: RefCell::default(),
                };
                let outcome = change(&tx);
                if let Some(failure) = tx.failure.take() {
                    return Err(failure.into());
                }
                match outcome {
                    Ok(r) => Ok((r, tx.deleted.take())),
                    Err(e) => Err(ConflictableTransactionError::Abort(e)),
                }
            });
        let (value, deleted) = match result {
            Ok(done) => done,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(StoreError::from(e).into()),
        };
        for id in &deleted {
            gateways.forget(id);
            tables.forget(id);
            vpcs.forget(id);
        }
        drop(writing);
        // One flush covers every tree of the database.
        vpcs.make_durable()?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::routing::{internet_gateway_record, InternetGatewaySpec};

    fn gateway(id: &str) -> InternetGateway {
        internet_gateway_record(
            id,
            "us-east-1",
            InternetGatewaySpec {
                vpc_id: None,
                tags: Default::default(),
            },
            crate::model::now(),
        )
    }

    #[test]
    fn an_aborted_transaction_writes_nothing_and_a_committed_one_everything() {
        let store = Store::temporary().unwrap();
        let refused: Result<(), StoreError> = store.routing(|tx| {
            tx.put_internet_gateway(&gateway("igw-1"))?;
            tx.set_gateway_of_vpc("vpc-1", Some("igw-1"))?;
            Err(StoreError::Backend("refused".into()))
        });
        assert!(refused.is_err());
        assert!(store.internet_gateways().get("igw-1").unwrap().is_none());
        store
            .routing(|tx| {
                tx.put_internet_gateway(&gateway("igw-1"))?;
                tx.set_gateway_of_vpc("vpc-1", Some("igw-1"))
            })
            .unwrap();
        let stored = store.internet_gateways().get("igw-1").unwrap().unwrap();
        assert_eq!(stored.metadata.generation, 1);
        let attached = store
            .routing(|tx| {
                let mut g = tx.internet_gateway("igw-1")?.unwrap();
                g.spec.vpc_id = Some("vpc-1".into());
                tx.put_internet_gateway(&g)?;
                tx.gateway_of_vpc("vpc-1")
            })
            .unwrap();
        assert_eq!(attached.as_deref(), Some("igw-1"));
        let stored = store.internet_gateways().get("igw-1").unwrap().unwrap();
        assert_eq!(stored.metadata.generation, 2);
        store
            .routing(|tx| tx.delete_internet_gateway("igw-1"))
            .unwrap();
        assert!(store.internet_gateways().get("igw-1").unwrap().is_none());
    }
}
