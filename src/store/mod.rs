//! Persistence of desired state (spec) and observed state (status) in an embedded sled store; the only module that knows sled.
//!
//! Every kind gets two trees: `<kind>.spec`, written only by the API, and `<kind>.status`,
//! written only by the reconciler, so the two writers never race on one value (the
//! Kubernetes status subresource). Values are JSON: the spec tree holds
//! `{apiVersion, kind, metadata, spec}`, the status tree holds the status object, and
//! reads join them into one Kubernetes-shaped document. Names that must be unique are kept
//! in index trees written in the same transaction as their records (`names.rs`).

mod addresses;
mod collection;
mod commit;
mod error;
mod names;
mod routing;
mod views;
mod volumes;

use std::collections::BTreeMap;
use std::path::Path;

use futures::stream::BoxStream;
use futures::StreamExt;

pub use addresses::AddressWrite;
pub use collection::{Change, Collection, CorruptRecord, Listing};
pub use commit::{deferring, GroupCommit};
pub use error::StoreError;
pub use names::{CLIENT_TOKEN_KIND, PRIVATE_IP_KIND};
pub use routing::RoutingTx;
pub use views::{Reads, SpecStore, Specs, StatusStore, Statuses};
pub use volumes::VolumeAttach;

use crate::model::{AddressSpec, AddressStatus, LaunchTemplateSpec, LaunchTemplateStatus};
use crate::model::{
    ConsoleOutput, ImageSpec, ImageStatus, InstanceSpec, InstanceStatus, KeyPairSpec, KeyPairStatus,
};
use crate::model::{InternetGatewaySpec, InternetGatewayStatus, RouteTableSpec, RouteTableStatus};
use crate::model::{SecurityGroupSpec, SecurityGroupStatus};
use crate::model::{SnapshotSpec, SnapshotStatus, VolumeSpec, VolumeStatus};
use crate::model::{SubnetSpec, SubnetStatus, VpcSpec, VpcStatus};

/// Which collection a watch event or key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KindKey {
    /// The instances collection.
    Instance,
    /// The CreateImage collection.
    Image,
    /// The volumes collection.
    Volume,
    /// The snapshots collection.
    Snapshot,
}

/// A spec changed: the id of the object and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpecChanged {
    /// The kind of object.
    pub kind: KindKey,
    /// The object's id.
    pub id: String,
}

/// The embedded store. Cheap to clone (sled handles are reference counted).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// The API's shared flushes (see [`commit`]).
    commit: GroupCommit,
    /// RunInstances' ClientToken index: `<region>/<token>` -> the instance ids it launched.
    client_tokens: sled::Tree,
    /// `<region>/<key name>` -> key pair id (see [`names`]).
    key_pair_names: sled::Tree,
    /// `<region>/<vpc id>/<group name>` -> group id.
    group_names: sled::Tree,
    /// Group id -> how many launches put instances in it (DeleteSecurityGroup's check).
    group_uses: sled::Tree,
    /// `<region>/<AMI name>` -> CreateImage record id.
    image_names: sled::Tree,
    /// CopyImage's ClientToken index: `<region>/<token>` -> the copy's image id.
    image_tokens: sled::Tree,
    /// Deregistered AMI ids -> the region they belonged to (`*` for one discovered from a
    /// Docker tag): DescribeImages leaves such an id out of its answer instead of calling it
    /// unknown, as EC2 does for a deregistered AMI; discovery leaves out another ec2d's image
    /// under such a discovered id (its tag is kept for that ec2d). Kept for good: AMI ids are
    /// never reused.
    deregistered_images: sled::Tree,
    /// `<region>/<template name>` -> launch template id.
    launch_template_names: sled::Tree,
    /// CreateLaunchTemplate's ClientToken index: `<region>/<token>` -> launch template id.
    launch_template_tokens: sled::Tree,
    /// CreateVolume's ClientToken index: `<region>/<token>` -> the volume's id.
    volume_tokens: sled::Tree,
    /// `<instance>/<device>` -> the volume AttachVolume attached there (see `volumes.rs`).
    volume_devices: sled::Tree,
    /// Instance id -> its console output ([`ConsoleOutput`]): observed state the reconciler
    /// alone writes. A tree of its own rather than a status field: up to 64 KiB per instance
    /// would otherwise be decoded, cloned and rewritten with every status of every pass.
    console: sled::Tree,
    /// Elastic IP public address -> its allocation id: an address is allocated once per store.
    address_ips: sled::Tree,
    /// `<vpc-id>/<ip>` to the instance holding that private address (see `names.rs`).
    private_ips: sled::Tree,
    /// Instance id -> the allocation id of the Elastic IP it holds (see [`addresses`]).
    address_instances: sled::Tree,
    /// VPC id -> the internet gateway attached to it (see [`routing`]).
    vpc_gateways: sled::Tree,
    /// Subnet id -> the route table it is explicitly associated with (see [`routing`]).
    subnet_tables: sled::Tree,
    /// VPC id -> how many stored route tables it has (see [`routing`]).
    vpc_tables: sled::Tree,
    id: std::sync::Arc<str>,
    instances: Collection<InstanceSpec, InstanceStatus>,
    images: Collection<ImageSpec, ImageStatus>,
    catalog: Collection<ImageSpec, ImageStatus>,
    key_pairs: Collection<KeyPairSpec, KeyPairStatus>,
    security_groups: Collection<SecurityGroupSpec, SecurityGroupStatus>,
    launch_templates: Collection<LaunchTemplateSpec, LaunchTemplateStatus>,
    addresses: Collection<AddressSpec, AddressStatus>,
    vpcs: Collection<VpcSpec, VpcStatus>,
    subnets: Collection<SubnetSpec, SubnetStatus>,
    internet_gateways: Collection<InternetGatewaySpec, InternetGatewayStatus>,
    route_tables: Collection<RouteTableSpec, RouteTableStatus>,
    volumes: Collection<VolumeSpec, VolumeStatus>,
    snapshots: Collection<SnapshotSpec, SnapshotStatus>,
}

/// How long opening waits for the store's file lock: a previous ec2d on the same data dir may
/// still be exiting, and within one process a dropped store's flusher thread holds the lock
/// a moment longer. A second live ec2d is still refused, after this wait.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Whether sled refused to open because another handle holds the database's file lock.
fn is_lock_held(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// The ClientToken index key: tokens are unique per region.
fn client_token_key(region: &str, token: &str) -> Vec<u8> {
    format!("{region}/{token}").into_bytes()
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled::Config::new()
                .path(dir.join("db"))
                .flush_every_ms(Some(200))
                .open()
            {
                Ok(db) => break db,
                Err(e) if is_lock_held(&e) && std::time::Instant::now() < deadline => {
                    tracing::debug!(dir = %dir.display(), "store locked; waiting for its holder to let go");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        };
        Self::from_db(db)
    }

    /// A store that lives in memory and a temporary file, for tests and examples.
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(StoreError::from)?;
        Self::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        // A stable identity for this store, made once: containers are labelled with it so
        // that several ec2d processes sharing one engine never collect each other's.
        let fresh = uuid::Uuid::new_v4().to_string();
        let id = match db.compare_and_swap(
            b"store-id",
            None as Option<&[u8]>,
            Some(fresh.as_bytes()),
        )? {
            Ok(()) => fresh,
            Err(existing) => {
                String::from_utf8_lossy(&existing.current.unwrap_or_default()).into_owned()
            }
        };
        let store = Self {
            commit: GroupCommit::new(db.clone()),
            client_tokens: db.open_tree("instances.client-tokens")?,
            key_pair_names: db.open_tree("key_pairs.names")?,
            group_names: db.open_tree("security_groups.names")?,
            group_uses: db.open_tree("security_groups.uses")?,
            image_names: db.open_tree("images.names")?,
            image_tokens: db.open_tree("images.client-tokens")?,
            deregistered_images: db.open_tree("images.deregistered")?,
            launch_template_names: db.open_tree("launch_templates.names")?,
            launch_template_tokens: db.open_tree("launch_templates.client-tokens")?,
            volume_tokens: db.open_tree("volumes.client-tokens")?,
            volume_devices: db.open_tree("volumes.devices")?,
            console: db.open_tree("instances.console")?,
            address_ips: db.open_tree("addresses.ips")?,
            private_ips: db.open_tree("instances.private-ips")?,
            address_instances: db.open_tree("addresses.instances")?,
            vpc_gateways: db.open_tree("internet_gateways.vpcs")?,
            subnet_tables: db.open_tree("route_tables.subnets")?,
            vpc_tables: db.open_tree("route_tables.vpcs")?,
            id: id.into(),
            instances: Collection::open_tagged(
                &db,
                "instances",
                crate::model::INSTANCE_KIND,
                |spec: &InstanceSpec| &spec.tags,
            )?,
            images: Collection::open(&db, "images", crate::model::IMAGE_KIND)?,
            catalog: Collection::open(&db, "catalog", crate::model::IMAGE_KIND)?,
            key_pairs: Collection::open(&db, "key_pairs", crate::model::KEY_PAIR_KIND)?,
            security_groups: Collection::open(
                &db,
                "security_groups",
                crate::model::SECURITY_GROUP_KIND,
            )?,
            launch_templates: Collection::open(
                &db,
                "launch_templates",
                crate::model::LAUNCH_TEMPLATE_KIND,
            )?,
            addresses: Collection::open(&db, "addresses", crate::model::ADDRESS_KIND)?,
            vpcs: Collection::open(&db, "vpcs", crate::model::VPC_KIND)?,
            subnets: Collection::open(&db, "subnets", crate::model::SUBNET_KIND)?,
            internet_gateways: Collection::open(
                &db,
                "internet_gateways",
                crate::model::INTERNET_GATEWAY_KIND,
            )?,
            route_tables: Collection::open(&db, "route_tables", crate::model::ROUTE_TABLE_KIND)?,
            volumes: Collection::open(&db, "volumes", crate::model::VOLUME_KIND)?,
            snapshots: Collection::open(&db, "snapshots", crate::model::SNAPSHOT_KIND)?,
            db,
        };
        store.repair_client_token_index()?;
        store.repair_name_indexes()?;
        store.prune_launch_template_tokens()?;
        let pruned = store.prune_client_tokens()?;
        if pruned > 0 {
            tracing::info!(pruned, "removed ClientToken entries of collected launches");
        }
        Ok(store)
    }

    /// Removes every record and index entry but the AMI catalog (observed state, rediscovered
    /// from Docker's tags) and the store's identity (its containers, networks and volumes are
    /// labelled with it): `POST /_ec2d/reset`, once the reconciler removed what the records
    /// made. Flushed before it returns, like an answered write. Only the owning store can do
    /// this; neither view can.
    pub fn wipe_for_reset(&self) -> Result<(), StoreError> {
        self.instances.clear()?;
        self.images.clear()?;
        self.key_pairs.clear()?;
        self.security_groups.clear()?;
        self.launch_templates.clear()?;
        self.addresses.clear()?;
        self.vpcs.clear()?;
        self.subnets.clear()?;
        self.internet_gateways.clear()?;
        self.route_tables.clear()?;
        self.volumes.clear()?;
        self.snapshots.clear()?;
        for index in [
            &self.client_tokens,
            &self.key_pair_names,
            &self.group_names,
            &self.group_uses,
            &self.image_names,
            &self.image_tokens,
            &self.deregistered_images,
            &self.launch_template_names,
            &self.launch_template_tokens,
            &self.volume_tokens,
            &self.volume_devices,
            &self.console,
            &self.address_ips,
            &self.private_ips,
            &self.address_instances,
            &self.vpc_gateways,
            &self.subnet_tables,
            &self.vpc_tables,
        ] {
            index.clear()?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// This store's stable identity (a UUID made when it was created).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Instances: spec from RunInstances and friends, status from the reconciler.
    pub fn instances(&self) -> &Collection<InstanceSpec, InstanceStatus> {
        &self.instances
    }

    /// AMIs made by CreateImage: spec from the API, status from the reconciler.
    pub fn images(&self) -> &Collection<ImageSpec, ImageStatus> {
        &self.images
    }

    /// AMIs discovered from Docker tags. This is observed state, written only by the
    /// reconciler's image discovery (like a reflector cache), so both its trees have one writer.
    pub fn catalog(&self) -> &Collection<ImageSpec, ImageStatus> {
        &self.catalog
    }

    /// VPCs made by CreateVpc (the default VPC is derived): spec only, no reconciler yet.
    pub fn vpcs(&self) -> &Collection<VpcSpec, VpcStatus> {
        &self.vpcs
    }

    /// Subnets made by CreateSubnet (the default subnets are derived): spec only.
    pub fn subnets(&self) -> &Collection<SubnetSpec, SubnetStatus> {
        &self.subnets
    }

    /// Internet gateways made by CreateInternetGateway (the default VPC's is derived).
    pub fn internet_gateways(&self) -> &Collection<InternetGatewaySpec, InternetGatewayStatus> {
        &self.internet_gateways
    }

    /// Route tables: created VPCs' main tables and CreateRouteTable's.
    pub fn route_tables(&self) -> &Collection<RouteTableSpec, RouteTableStatus> {
        &self.route_tables
    }

    /// Key pairs: spec from CreateKeyPair/ImportKeyPair; no reconciler, so the status stays empty.
    pub fn key_pairs(&self) -> &Collection<KeyPairSpec, KeyPairStatus> {
        &self.key_pairs
    }

    /// Security groups: spec from CreateSecurityGroup and the rule actions; no reconciler
    /// (instances copy their ports at launch), so the status stays empty.
    pub fn security_groups(&self) -> &Collection<SecurityGroupSpec, SecurityGroupStatus> {
        &self.security_groups
    }

    /// Launch templates and their versions: spec from the launch template actions; no
    /// reconciler (nothing in Docker backs them), so the status stays empty.
    pub fn launch_templates(&self) -> &Collection<LaunchTemplateSpec, LaunchTemplateStatus> {
        &self.launch_templates
    }

    /// Elastic IPs: spec from AllocateAddress and the tag actions; no reconciler, so the
    /// status stays empty.
    pub fn addresses(&self) -> &Collection<AddressSpec, AddressStatus> {
        &self.addresses
    }

    /// EBS volumes: spec from the volume actions and launches' block device mappings; status
    /// from the reconciler, which makes the Docker volume behind each.
    pub fn volumes(&self) -> &Collection<VolumeSpec, VolumeStatus> {
        &self.volumes
    }

    /// EBS snapshots: spec from the snapshot actions and CreateImage; status from the
    /// reconciler, which copies the data into a Docker volume of its own.
    pub fn snapshots(&self) -> &Collection<SnapshotSpec, SnapshotStatus> {
        &self.snapshots
    }

    /// Restores ClientToken index entries missing for stored instances, so a retried launch
    /// never runs twice. Launches write their entry in the same transaction as their
    /// instances; stores written by older versions wrote it after them, and a crash in
    /// between lost it.
    fn repair_client_token_index(&self) -> Result<usize, StoreError> {
        let mut launches: BTreeMap<Vec<u8>, Vec<(u32, String)>> = BTreeMap::new();
        for instance in self.instances.list_shared()?.objects {
            if let Some(token) = &instance.spec.client_token {
                launches
                    .entry(client_token_key(&instance.metadata.namespace, token))
                    .or_default()
                    .push((
                        instance.spec.ami_launch_index,
                        instance.metadata.name.clone(),
                    ));
            }
        }
        let mut repaired = 0;
        for (key, mut ids) in launches {
            if self.client_tokens.get(&key)?.is_some() {
                continue;
            }
            ids.sort();
            let ids: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();
            let value = serde_json::to_vec(&ids).map_err(|e| StoreError::Backend(e.to_string()))?;
            self.client_tokens.insert(key, value)?;
            repaired += 1;
        }
        if repaired > 0 {
            tracing::info!(repaired, "restored ClientToken index entries after a crash");
        }
        Ok(repaired)
    }

    /// The ids of the instances a RunInstances call with this ClientToken launched in the
    /// region (empty when the token is new, or its instances were collected since).
    pub fn instances_for_client_token(
        &self,
        region: &str,
        token: &str,
    ) -> Result<Vec<String>, StoreError> {
        let key = client_token_key(region, token);
        let Some(bytes) = self.client_tokens.get(&key)? else {
            return Ok(Vec::new());
        };
        let ids: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            kind: "ClientToken",
            key: String::from_utf8_lossy(&key).into_owned(),
            reason: e.to_string(),
        })?;
        Ok(ids)
    }

    /// The console output kept for an instance, if any.
    pub fn console_output(&self, instance_id: &str) -> Result<Option<ConsoleOutput>, StoreError> {
        let Some(bytes) = self.console.get(instance_id.as_bytes())? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                kind: "ConsoleOutput",
                key: instance_id.to_string(),
                reason: e.to_string(),
            })
    }

    /// Replaces an instance's console output. Not flushed at once: like status, it is
    /// observed again after a restart.
    pub fn write_console_output(
        &self,
        instance_id: &str,
        console: &ConsoleOutput,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_vec(console).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.console.insert(instance_id.as_bytes(), value)?;
        Ok(())
    }

    /// Forgets an instance's console output (its record is being collected).
    pub fn delete_console_output(&self, instance_id: &str) -> Result<(), StoreError> {
        self.console.remove(instance_id.as_bytes())?;
        Ok(())
    }

    /// A stream of spec changes of every kind, for the controller's triggers.
    pub fn watch_specs(&self) -> BoxStream<'static, SpecChanged> {
        let instances = self.instances.watch_spec_ids().map(|id| SpecChanged {
            kind: KindKey::Instance,
            id,
        });
        let images = self.images.watch_spec_ids().map(|id| SpecChanged {
            kind: KindKey::Image,
            id,
        });
        let volumes = self.volumes.watch_spec_ids().map(|id| SpecChanged {
            kind: KindKey::Volume,
            id,
        });
        let snapshots = self.snapshots.watch_spec_ids().map(|id| SpecChanged {
            kind: KindKey::Snapshot,
            id,
        });
        futures::stream::select_all([
            instances.boxed(),
            images.boxed(),
            volumes.boxed(),
            snapshots.boxed(),
        ])
        .boxed()
    }

    /// Whether the store answers (a read of its metadata succeeds).
    pub fn is_healthy(&self) -> bool {
        self.db.get(b"health").is_ok()
    }

    /// The store's size on disk in bytes (what `ec2d_store_size_bytes` shows).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(StoreError::from)
    }

    /// Returns once every write finished before the call is on disk, sharing the flush with
    /// concurrent callers (see [`commit`]): what a request whose writes ran inside
    /// [`deferring`] awaits before it answers.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.commit.durable().await
    }

    /// Flushes every pending write to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(StoreError::from)
    }
}

/// Opens the store in `dir` again within the same process ([`Store::open`] waits out the
/// lock a just-dropped store still holds).
#[cfg(test)]
pub(crate) fn reopen(dir: &Path) -> Store {
    Store::open(dir).expect("reopening the store")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    fn launch(token: &str, count: u32) -> Vec<crate::model::Instance> {
        (0..count)
            .map(|index| {
                let mut instance = fixtures::instance();
                instance.spec.client_token = Some(token.to_string());
                instance.spec.ami_launch_index = index;
                instance
            })
            .collect()
    }

    #[test]
    fn a_lost_client_token_entry_is_restored_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (launch("tok-1", 1), launch("tok-2", 3));
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .create_instances(&one, &[], "us-east-1", Some("tok-1"))
                .unwrap();
            store
                .create_instances(&two, &[], "us-east-1", Some("tok-2"))
                .unwrap();
            // A crash between the specs' durable write and the index entry.
            store
                .client_tokens
                .remove(client_token_key("us-east-1", "tok-2"))
                .unwrap();
            assert!(store
                .instances_for_client_token("us-east-1", "tok-2")
                .unwrap()
                .is_empty());
            futures::executor::block_on(store.flush()).unwrap();
        }
        let store = reopen(dir.path());
        let names = |v: &[crate::model::Instance]| -> Vec<String> {
            v.iter().map(|i| i.metadata.name.clone()).collect()
        };
        assert_eq!(
            store
                .instances_for_client_token("us-east-1", "tok-2")
                .unwrap(),
            names(&two),
            "restored, in launch order"
        );
        assert_eq!(
            store
                .instances_for_client_token("us-east-1", "tok-1")
                .unwrap(),
            names(&one)
        );
        assert!(store
            .instances_for_client_token("eu-west-1", "tok-1")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_client_token_goes_with_the_last_collected_instance_of_its_launch() {
        let store = Store::temporary().unwrap();
        let (pair, other) = (launch("tok-pair", 2), launch("tok-other", 1));
        store
            .create_instances(&pair, &[], "us-east-1", Some("tok-pair"))
            .unwrap();
        store
            .create_instances(&other, &[], "us-east-1", Some("tok-other"))
            .unwrap();
        let ids_of = |token: &str| {
            store
                .instances_for_client_token("us-east-1", token)
                .unwrap()
        };
        store.collect_instance(&pair[0].metadata.name).unwrap();
        assert!(store
            .instances()
            .get(&pair[0].metadata.name)
            .unwrap()
            .is_none());
        assert_eq!(
            ids_of("tok-pair").len(),
            2,
            "one instance of the launch is left"
        );
        store.collect_instance(&pair[1].metadata.name).unwrap();
        assert!(
            ids_of("tok-pair").is_empty(),
            "gone with the launch's last instance"
        );
        assert_eq!(ids_of("tok-other"), vec![other[0].metadata.name.clone()]);
        assert_eq!(store.client_tokens.len(), 1);
        // Collecting an instance that is gone already, or that had no token, is harmless.
        store.collect_instance(&pair[1].metadata.name).unwrap();
        let mut plain = fixtures::instance();
        plain.spec.client_token = None;
        store
            .create_instances(&[plain.clone()], &[], "us-east-1", None)
            .unwrap();
        store.collect_instance(&plain.metadata.name).unwrap();
        assert_eq!(store.client_tokens.len(), 1);
        // The token is free again: a new launch with it runs.
        let again = launch("tok-pair", 1);
        store
            .create_instances(&again, &[], "us-east-1", Some("tok-pair"))
            .unwrap();
        assert_eq!(ids_of("tok-pair"), vec![again[0].metadata.name.clone()]);
    }

    #[test]
    fn client_tokens_of_collected_launches_are_pruned_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, gone) = (launch("tok-kept", 1), launch("tok-gone", 2));
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .create_instances(&kept, &[], "us-east-1", Some("tok-kept"))
                .unwrap();
            store
                .create_instances(&gone, &[], "us-east-1", Some("tok-gone"))
                .unwrap();
            // As older versions collected instances: the records only, the entry left behind.
            for instance in &gone {
                store.instances().delete(&instance.metadata.name).unwrap();
            }
            assert_eq!(store.client_tokens.len(), 2);
            futures::executor::block_on(store.flush()).unwrap();
        }
        let store = reopen(dir.path());
        assert_eq!(store.client_tokens.len(), 1);
        assert_eq!(
            store
                .instances_for_client_token("us-east-1", "tok-kept")
                .unwrap(),
            vec![kept[0].metadata.name.clone()]
        );
    }

    #[test]
    fn console_output_is_kept_per_instance_and_forgotten_on_delete() {
        let store = Store::temporary().unwrap();
        assert_eq!(store.console_output("i-00000001").unwrap(), None);
        let copy = ConsoleOutput::new("c1", b"booted\n", crate::model::now(), None);
        store.write_console_output("i-00000001", &copy).unwrap();
        assert_eq!(store.console_output("i-00000001").unwrap(), Some(copy));
        assert_eq!(store.console_output("i-00000002").unwrap(), None);
        store.delete_console_output("i-00000001").unwrap();
        assert_eq!(store.console_output("i-00000001").unwrap(), None);
    }

    #[test]
    fn a_store_held_by_a_live_handle_is_refused_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let held = Store::open(dir.path()).unwrap();
        let started = std::time::Instant::now();
        let refused = Store::open(dir.path())
            .err()
            .expect("a second open is refused");
        assert!(
            refused.to_string().contains("could not acquire lock"),
            "{refused}"
        );
        assert!(
            started.elapsed() >= LOCK_WAIT,
            "it waited for the holder first"
        );
        drop(held);
    }
}
