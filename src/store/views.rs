//! The store's two writers as types (kube's `Writer`/`Store` split): the API's view writes spec only, the reconciler's status only, so "one writer per tree" is checked by the compiler.

use std::ops::Deref;
use std::sync::Arc;

use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::collection::{Change, Collection, Listing};
use super::{AddressWrite, RoutingTx, SpecChanged, Store, StoreError, VolumeAttach};
use crate::model::{
    Address, AddressAssociation, AddressSpec, AddressStatus, ConsoleOutput, Image, ImageSpec,
    ImageStatus, InstanceSpec, InstanceStatus, InternetGatewaySpec, InternetGatewayStatus, KeyPair,
    KeyPairSpec, KeyPairStatus, LaunchTemplate, LaunchTemplateSpec, LaunchTemplateStatus, Object,
    RouteTableSpec, RouteTableStatus, SecurityGroup, SecurityGroupSpec, SecurityGroupStatus,
    SubnetRecord, SubnetSpec, SubnetStatus, VpcRecord, VpcSpec, VpcStatus, DISCOVERED_NAMESPACE,
};
use crate::model::{SnapshotSpec, SnapshotStatus, Volume, VolumeSpec, VolumeStatus};

/// A collection that can only be read.
pub struct Reads<'a, S, T: Default>(&'a Collection<S, T>);

impl<S, T> Reads<'_, S, T>
where
    S: Serialize + DeserializeOwned + Clone,
    T: Serialize + DeserializeOwned + Default + Clone,
{
    /// See [`Collection::get`].
    pub fn get(&self, id: &str) -> Result<Option<Object<S, T>>, StoreError> {
        self.0.get(id)
    }

    /// See [`Collection::get_shared`].
    pub fn get_shared(&self, id: &str) -> Result<Option<Arc<Object<S, T>>>, StoreError> {
        self.0.get_shared(id)
    }

    /// See [`Collection::list`].
    pub fn list(&self) -> Result<Listing<Object<S, T>>, StoreError> {
        self.0.list()
    }

    /// See [`Collection::list_shared`].
    pub fn list_shared(&self) -> Result<Listing<Arc<Object<S, T>>>, StoreError> {
        self.0.list_shared()
    }

    /// See [`Collection::listing_version`].
    pub fn listing_version(&self) -> Result<u64, StoreError> {
        self.0.listing_version()
    }

    /// See [`Collection::list_tagged`].
    pub fn list_tagged(
        &self,
        tag: &str,
        values: &[&str],
    ) -> Result<super::collection::Tagged<S, T>, StoreError> {
        self.0.list_tagged(tag, values)
    }

    /// See [`Collection::ids`].
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        self.0.ids()
    }

    /// See [`Collection::len`].
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// See [`Collection::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A collection as the API sees it: reads, and spec changes.
pub struct Specs<'a, S, T: Default>(Reads<'a, S, T>);

impl<'a, S, T: Default> Deref for Specs<'a, S, T> {
    type Target = Reads<'a, S, T>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S, T> Specs<'_, S, T>
where
    S: Serialize + DeserializeOwned + Clone,
    T: Serialize + DeserializeOwned + Default + Clone,
{
    /// See [`Collection::update_spec`].
    pub fn update_spec<E>(
        &self,
        id: &str,
        change: impl FnMut(&mut Object<S, T>) -> Result<bool, E>,
    ) -> Result<Change<S, T>, E>
    where
        E: From<StoreError>,
    {
        self.0 .0.update_spec(id, change)
    }

    /// See [`Collection::update_spec_same_generation`].
    pub fn update_spec_same_generation<E>(
        &self,
        id: &str,
        change: impl FnMut(&mut Object<S, T>) -> Result<bool, E>,
    ) -> Result<Change<S, T>, E>
    where
        E: From<StoreError>,
    {
        self.0 .0.update_spec_same_generation(id, change)
    }
}

/// A collection as the reconciler sees it: reads, and status writes (and, for records it
/// collects or observed state it mirrors, deletes and replacement).
pub struct Statuses<'a, S, T: Default>(Reads<'a, S, T>);

impl<'a, S, T: Default> Deref for Statuses<'a, S, T> {
    type Target = Reads<'a, S, T>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S, T> Statuses<'_, S, T>
where
    S: Serialize + DeserializeOwned + Clone,
    T: Serialize + DeserializeOwned + Default + Clone,
{
    /// See [`Collection::write_status`].
    pub fn write_status(&self, id: &str, status: &T) -> Result<(), StoreError> {
        self.0 .0.write_status(id, status)
    }

    /// See [`Collection::delete`]: garbage collection of finished records.
    pub fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.0 .0.delete(id)
    }

    /// See [`Collection::replace_all`]: for observed-state mirrors such as the AMI catalog.
    pub fn replace_all(&self, objects: &[Object<S, T>]) -> Result<(), StoreError>
    where
        S: PartialEq,
        T: PartialEq,
    {
        self.0 .0.replace_all(objects)
    }
}

/// The API's view of the store: it reads everything and writes desired state only.
/// Shared: every request clones the API's state, and a `Store` is some twenty trees, each a
/// reference count (cloning it was 8% of a by-id DescribeInstances).
#[derive(Clone)]
pub struct SpecStore(Arc<Store>);

/// The reconciler's view of the store: it reads everything and writes observed state only.
#[derive(Clone)]
pub struct StatusStore(Store);

impl Store {
    /// The view the API is handed.
    pub fn spec_view(&self) -> SpecStore {
        SpecStore(Arc::new(self.clone()))
    }

    /// The view the reconciler is handed.
    pub fn status_view(&self) -> StatusStore {
        StatusStore(self.clone())
    }
}

/// What both views share: the store's identity and health.
macro_rules! shared_reads {
    ($view:ident) => {
        impl $view {
            /// This store's stable identity.
            pub fn id(&self) -> &str {
                self.0.id()
            }

            /// Whether the store answers.
            pub fn is_healthy(&self) -> bool {
                self.0.is_healthy()
            }

            /// See [`Store::console_output`].
            pub fn console_output(
                &self,
                instance_id: &str,
            ) -> Result<Option<ConsoleOutput>, StoreError> {
                self.0.console_output(instance_id)
            }
        }
    };
}

shared_reads!(SpecStore);
shared_reads!(StatusStore);

impl SpecStore {
    /// See [`Store::durable`]: what a request awaits before answering its writes.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.0.durable().await
    }

    /// Instances.
    pub fn instances(&self) -> Specs<'_, InstanceSpec, InstanceStatus> {
        Specs(Reads(self.0.instances()))
    }

    /// AMIs made by CreateImage.
    pub fn images(&self) -> Specs<'_, ImageSpec, ImageStatus> {
        Specs(Reads(self.0.images()))
    }

    /// AMIs discovered from Docker tags: observed state, so the API only reads it.
    pub fn catalog(&self) -> Reads<'_, ImageSpec, ImageStatus> {
        Reads(self.0.catalog())
    }

    /// Key pairs.
    pub fn key_pairs(&self) -> Specs<'_, KeyPairSpec, KeyPairStatus> {
        Specs(Reads(self.0.key_pairs()))
    }

    /// Security groups.
    pub fn security_groups(&self) -> Specs<'_, SecurityGroupSpec, SecurityGroupStatus> {
        Specs(Reads(self.0.security_groups()))
    }

    /// Launch templates.
    pub fn launch_templates(&self) -> Specs<'_, LaunchTemplateSpec, LaunchTemplateStatus> {
        Specs(Reads(self.0.launch_templates()))
    }

    /// Elastic IPs.
    pub fn addresses(&self) -> Specs<'_, AddressSpec, AddressStatus> {
        Specs(Reads(self.0.addresses()))
    }

    /// See [`Store::create_address`].
    pub fn create_address(&self, address: &Address) -> Result<(), StoreError> {
        self.0.create_address(address)
    }

    /// See [`Store::release_address`].
    pub fn release_address(&self, id: &str, version: u64) -> Result<AddressWrite, StoreError> {
        self.0.release_address(id, version)
    }

    /// See [`Store::associate_address`].
    pub fn associate_address(
        &self,
        id: &str,
        version: u64,
        association: Option<AddressAssociation>,
    ) -> Result<AddressWrite, StoreError> {
        self.0.associate_address(id, version, association)
    }

    /// See [`Store::address_of_instance`].
    pub fn address_of_instance(&self, instance_id: &str) -> Result<Option<String>, StoreError> {
        self.0.address_of_instance(instance_id)
    }

    /// See [`Store::instance_addresses`].
    pub fn instance_addresses(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.0.instance_addresses()
    }

    /// EBS volumes.
    pub fn volumes(&self) -> Specs<'_, VolumeSpec, VolumeStatus> {
        Specs(Reads(self.0.volumes()))
    }

    /// EBS snapshots.
    pub fn snapshots(&self) -> Specs<'_, SnapshotSpec, SnapshotStatus> {
        Specs(Reads(self.0.snapshots()))
    }

    /// CreateSnapshot, CreateSnapshots, CopySnapshot: stores new snapshots, all of them or
    /// none, in one transaction (`AlreadyExists` for a taken id). Snapshots have no names to
    /// keep unique, so no index is written.
    pub fn create_snapshots(&self, snapshots: &[crate::model::Snapshot]) -> Result<(), StoreError> {
        self.0.snapshots().create(snapshots)
    }

    /// See [`Store::create_volume`].
    pub fn create_volume(&self, volume: &Volume) -> Result<(), StoreError> {
        self.0.create_volume(volume)
    }

    /// See [`Store::volumes_of_instance`].
    pub fn volumes_of_instance(&self, instance_id: &str) -> Result<Vec<Arc<Volume>>, StoreError> {
        self.0.volumes_of_instance(instance_id)
    }

    /// See [`Store::attach_volume`].
    pub fn attach_volume(
        &self,
        after: &Volume,
        version: u64,
        instance_id: &str,
        device: &str,
    ) -> Result<VolumeAttach, StoreError> {
        self.0.attach_volume(after, version, instance_id, device)
    }

    /// See [`Store::volume_for_client_token`].
    pub fn volume_for_client_token(
        &self,
        region: &str,
        token: &str,
    ) -> Result<Option<String>, StoreError> {
        self.0.volume_for_client_token(region, token)
    }

    /// VPCs made by CreateVpc.
    pub fn vpcs(&self) -> Specs<'_, VpcSpec, VpcStatus> {
        Specs(Reads(self.0.vpcs()))
    }

    /// Subnets made by CreateSubnet.
    pub fn subnets(&self) -> Specs<'_, SubnetSpec, SubnetStatus> {
        Specs(Reads(self.0.subnets()))
    }

    /// Internet gateways.
    pub fn internet_gateways(&self) -> Specs<'_, InternetGatewaySpec, InternetGatewayStatus> {
        Specs(Reads(self.0.internet_gateways()))
    }

    /// Route tables.
    pub fn route_tables(&self) -> Specs<'_, RouteTableSpec, RouteTableStatus> {
        Specs(Reads(self.0.route_tables()))
    }

    /// Stores a VPC alone (`AlreadyExists` for a taken id), for tests; CreateVpc stores it
    /// with its main route table through [`SpecStore::routing`].
    pub fn create_vpc(&self, vpc: &VpcRecord) -> Result<(), StoreError> {
        self.0.vpcs().create(std::slice::from_ref(vpc))
    }

    /// See [`Store::routing`]: VPCs, gateways and route tables changed in one transaction.
    pub fn routing<R, E: From<StoreError>>(
        &self,
        change: impl Fn(&RoutingTx<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.0.routing(change)
    }

    /// CreateSubnet: stores the subnet (`AlreadyExists` for a taken id).
    pub fn create_subnet(&self, subnet: &SubnetRecord) -> Result<(), StoreError> {
        self.0.subnets().create(std::slice::from_ref(subnet))
    }

    /// DeleteSubnet: removes the subnet's record.
    pub fn delete_subnet(&self, id: &str) -> Result<(), StoreError> {
        self.0.subnets().delete(id)?;
        self.0.subnets().make_durable()
    }

    /// See [`Store::create_launch_template`].
    pub fn create_launch_template(&self, template: &LaunchTemplate) -> Result<(), StoreError> {
        self.0.create_launch_template(template)
    }

    /// See [`Store::delete_launch_template`].
    pub fn delete_launch_template(&self, id: &str) -> Result<Option<LaunchTemplate>, StoreError> {
        self.0.delete_launch_template(id)
    }

    /// See [`Store::launch_template_for_client_token`].
    pub fn launch_template_for_client_token(
        &self,
        region: &str,
        token: &str,
    ) -> Result<Option<String>, StoreError> {
        self.0.launch_template_for_client_token(region, token)
    }

    /// See [`Store::create_instances`].
    pub fn create_instances(
        &self,
        instances: &[crate::model::Instance],
        volumes: &[crate::model::Volume],
        region: &str,
        client_token: Option<&str>,
    ) -> Result<(), StoreError> {
        self.0
            .create_instances(instances, volumes, region, client_token)
    }

    /// See [`Store::private_ips_in_use`].
    pub fn private_ips_in_use(&self, vpc_id: &str) -> Result<Vec<String>, StoreError> {
        self.0.private_ips_in_use(vpc_id)
    }

    /// See [`Store::instances_for_client_token`].
    pub fn instances_for_client_token(
        &self,
        region: &str,
        token: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.0.instances_for_client_token(region, token)
    }

    /// See [`Store::create_key_pair`].
    pub fn create_key_pair(&self, key_pair: &KeyPair) -> Result<(), StoreError> {
        self.0.create_key_pair(key_pair)
    }

    /// See [`Store::delete_key_pair`].
    pub fn delete_key_pair(&self, id: &str) -> Result<Option<KeyPair>, StoreError> {
        self.0.delete_key_pair(id)
    }

    /// See [`Store::create_security_group`].
    pub fn create_security_group(&self, group: &SecurityGroup) -> Result<(), StoreError> {
        self.0.create_security_group(group)
    }

    /// See [`Store::create_image`].
    pub fn create_image(&self, image: &Image) -> Result<(), StoreError> {
        self.0.create_image(image)
    }

    /// See [`Store::create_image_with_snapshots`].
    pub fn create_image_with_snapshots(
        &self,
        image: &Image,
        snapshots: &[crate::model::Snapshot],
    ) -> Result<(), StoreError> {
        self.0.create_image_with_snapshots(image, snapshots)
    }

    /// See [`Store::image_for_client_token`].
    pub fn image_for_client_token(
        &self,
        region: &str,
        token: &str,
    ) -> Result<Option<String>, StoreError> {
        self.0.image_for_client_token(region, token)
    }

    /// See [`Store::count_group_uses`].
    pub fn count_group_uses(&self, group_ids: &[&str]) -> Result<(), StoreError> {
        self.0.count_group_uses(group_ids)
    }

    /// See [`Store::deregister_image`].
    pub fn deregister_image(&self, id: &str, region: &str) -> Result<bool, StoreError> {
        self.0.deregister_image(id, region)
    }

    /// DeregisterImage of an AMI discovered from a Docker tag: stores `image`, a record of the
    /// same id already marked deregistered (the catalog itself is observed state the API never
    /// writes). It hides the discovered AMI at once; the reconciler removes the tag, then the
    /// record. `AlreadyExists` when a record of that id is there already.
    pub fn deregister_discovered_image(&self, image: &Image) -> Result<(), StoreError> {
        debug_assert!(image.spec.deregistered);
        self.0
            .remember_deregistered(&image.metadata.name, DISCOVERED_NAMESPACE)?;
        self.0.images().create(std::slice::from_ref(image))
    }

    /// See [`Store::was_deregistered`].
    pub fn was_deregistered(&self, id: &str, region: &str) -> Result<bool, StoreError> {
        self.0.was_deregistered(id, region)
    }

    /// See [`Store::delete_security_group`].
    pub fn delete_security_group<E: From<StoreError>>(
        &self,
        id: &str,
        still_deletable: impl FnMut() -> Result<(), E>,
    ) -> Result<Option<SecurityGroup>, E> {
        self.0.delete_security_group(id, still_deletable)
    }
}

impl StatusStore {
    /// Instances.
    pub fn instances(&self) -> Statuses<'_, InstanceSpec, InstanceStatus> {
        Statuses(Reads(self.0.instances()))
    }

    /// AMIs made by CreateImage.
    pub fn images(&self) -> Statuses<'_, ImageSpec, ImageStatus> {
        Statuses(Reads(self.0.images()))
    }

    /// AMIs discovered from Docker tags: the reconciler's discovery mirrors them.
    pub fn catalog(&self) -> Statuses<'_, ImageSpec, ImageStatus> {
        Statuses(Reads(self.0.catalog()))
    }

    /// Key pairs (read: they have no reconciler).
    pub fn key_pairs(&self) -> Reads<'_, KeyPairSpec, KeyPairStatus> {
        Reads(self.0.key_pairs())
    }

    /// Security groups (read: they have no reconciler).
    pub fn security_groups(&self) -> Reads<'_, SecurityGroupSpec, SecurityGroupStatus> {
        Reads(self.0.security_groups())
    }

    /// VPCs (read: their networks are converged from the instances that need them).
    pub fn vpcs(&self) -> Reads<'_, VpcSpec, VpcStatus> {
        Reads(self.0.vpcs())
    }

    /// Launch templates (read: they have no reconciler).
    pub fn launch_templates(&self) -> Reads<'_, LaunchTemplateSpec, LaunchTemplateStatus> {
        Reads(self.0.launch_templates())
    }

    /// EBS volumes: the reconciler makes their Docker volumes.
    pub fn volumes(&self) -> Statuses<'_, VolumeSpec, VolumeStatus> {
        Statuses(Reads(self.0.volumes()))
    }

    /// EBS snapshots: the reconciler copies their data.
    pub fn snapshots(&self) -> Statuses<'_, SnapshotSpec, SnapshotStatus> {
        Statuses(Reads(self.0.snapshots()))
    }

    /// See [`Store::volumes_of_instance`].
    pub fn volumes_of_instance(&self, instance_id: &str) -> Result<Vec<Arc<Volume>>, StoreError> {
        self.0.volumes_of_instance(instance_id)
    }

    /// See [`Store::instances_with_volume_entries`].
    pub fn instances_with_volume_entries(
        &self,
        volume_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.0.instances_with_volume_entries(volume_id)
    }

    /// See [`Store::collect_volume`]: a deleted volume's record, collected by its reconciler.
    pub fn collect_volume(&self, volume_id: &str) -> Result<(), StoreError> {
        self.0.collect_volume(volume_id)
    }

    /// See [`Store::watch_specs`].
    pub fn watch_specs(&self) -> BoxStream<'static, SpecChanged> {
        self.0.watch_specs()
    }

    /// See [`Store::was_deregistered`] (read: DeregisterImage remembers the ids).
    pub fn was_deregistered(&self, id: &str, region: &str) -> Result<bool, StoreError> {
        self.0.was_deregistered(id, region)
    }

    /// See [`Store::write_console_output`]: observed state, the reconciler's to write.
    pub fn write_console_output(
        &self,
        instance_id: &str,
        console: &ConsoleOutput,
    ) -> Result<(), StoreError> {
        self.0.write_console_output(instance_id, console)
    }

    /// See [`Store::delete_console_output`].
    pub fn delete_console_output(&self, instance_id: &str) -> Result<(), StoreError> {
        self.0.delete_console_output(instance_id)
    }

    /// See [`Store::collect_instance`].
    pub fn collect_instance(&self, id: &str) -> Result<(), StoreError> {
        self.0.collect_instance(id)
    }
}
