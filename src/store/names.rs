//! Uniqueness the store keeps itself: name-index trees written in the same sled transaction as
//! the records they index, so no API lock is needed for "is this name free? then write".
//!
//! | tree | key | value | written by |
//! |---|---|---|---|
//! | `addresses.ips` | public address | allocation id | [`Store::create_address`], [`Store::release_address`] |
//! | `addresses.instances` | instance id | allocation id of the Elastic IP it holds | [`Store::associate_address`], [`Store::release_address`] (see `store/addresses.rs`) |
//! | `key_pairs.names` | `<region>/<key name>` | key pair id | [`Store::create_key_pair`], [`Store::delete_key_pair`] |
//! | `security_groups.names` | `<region>/<vpc id>/<group name>` | group id | [`Store::create_security_group`], [`Store::delete_security_group`] |
//! | `images.names` | `<region>/<AMI name>` | image id | [`Store::create_image`], [`Store::deregister_image`] |
//! | `images.client-tokens` | `<region>/<token>` | image id | [`Store::create_image`] for a CopyImage with a ClientToken (stale once its record is collected) |
//! | `images.deregistered` | AMI id | its region (`*`: discovered) | [`Store::deregister_image`], [`Store::remember_deregistered`]; kept for good (read by DescribeImages and discovery) |
//! | `launch_templates.names` | `<region>/<template name>` | launch template id | [`Store::create_launch_template`], [`Store::delete_launch_template`] |
//! | `launch_templates.client-tokens` | `<region>/<token>` | launch template id | [`Store::create_launch_template`], [`Store::delete_launch_template`]; entries older versions left stale are pruned at open |
//! | `volumes.client-tokens` | `<region>/<token>` | volume id | [`Store::create_volume`] for a CreateVolume with a ClientToken, removed with the record by [`Store::collect_volume`] |
//! | `volumes.devices` | `<instance id>/<device without /dev/>` | volume id | [`Store::attach_volume`] (`store/volumes.rs`) and [`Store::create_instances`] for a launch's volumes; stale once that volume no longer records the attachment; read by prefix for an instance's volumes (`Store::volumes_of_instance`) |
//! | `instances.client-tokens` | `<region>/<token>` | JSON list of instance ids | [`Store::create_instances`], removed with the last of its instances by [`Store::collect_instance`]; entries older versions left are pruned at open |
//! | `security_groups.uses` | group id | u64 (big endian): launches into the group and instances moved into it | [`Store::create_instances`], [`Store::count_group_uses`], removed by [`Store::delete_security_group`] |
//!
//! Regions and VPC ids hold no `/`, so a key names one scope and one name even when the name
//! itself holds `/`. A create checks the record's id and its name in one transaction and aborts
//! with [`StoreError::NameTaken`] (writing nothing) when another record holds the name; a
//! delete removes the record and its entry together. sled runs transactions one at a time
//! against each other (0.34 takes its global concurrency lock for the commit), so two creates
//! of one name cannot both succeed.
//!
//! An entry whose holder no longer exists (its record was removed by something that does not
//! know the index) is stale: a create takes it over. [`Store::open`] adds the entries records written by older versions lack.

use sled::transaction::{
    abort, ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::Transactional;

use super::{client_token_key, Collection, Store, StoreError};
use crate::model::{
    Address, Image, ImageSource, Instance, KeyPair, LaunchTemplate, Object, SecurityGroup,
    Snapshot, Volume, ADDRESS_KIND, DISCOVERED_NAMESPACE, IMAGE_KIND, KEY_PAIR_KIND,
    LAUNCH_TEMPLATE_KIND, SECURITY_GROUP_KIND, VOLUME_KIND,
};

/// The kind [`StoreError::NameTaken`] names for a ClientToken already used in its region.
pub const CLIENT_TOKEN_KIND: &str = "ClientToken";

/// The `kind` of a [`StoreError::NameTaken`] for a private address held by a live instance.
pub const PRIVATE_IP_KIND: &str = "PrivateIpAddress";

/// The private-address index key: addresses are unique per VPC.
fn private_ip_key(vpc_id: &str, ip: &str) -> Vec<u8> {
    format!("{vpc_id}/{ip}").into_bytes()
}

/// Whether the instance record `spec` (its stored bytes) still holds its private address: it
/// exists and is not meant to be terminated. EC2 frees an address at termination; an index
/// entry whose holder is gone or terminated is stale and taken over, so nothing has to delete
/// entries (no crash can leak one).
fn holds_address(spec: Option<&[u8]>) -> bool {
    #[derive(serde::Deserialize)]
    struct Desired {
        desired: crate::model::DesiredState,
    }
    #[derive(serde::Deserialize)]
    struct SpecOnly {
        spec: Desired,
    }
    spec.and_then(|bytes| serde_json::from_slice::<SpecOnly>(bytes).ok())
        .is_some_and(|d| d.spec.desired != crate::model::DesiredState::Terminated)
}

/// The public address: an Elastic IP is allocated once per store, whatever the region.
pub(super) fn address_ip_key(address: &Address) -> Vec<u8> {
    address.spec.public_ip.clone().into_bytes()
}

/// `<region>/<key name>`: key pair names are unique per region.
pub(super) fn key_pair_name_key(key_pair: &KeyPair) -> Vec<u8> {
    format!("{}/{}", key_pair.metadata.namespace, key_pair.spec.key_name).into_bytes()
}

/// `<region>/<vpc id>/<group name>`: group names are unique per VPC.
pub(super) fn group_name_key(group: &SecurityGroup) -> Vec<u8> {
    format!(
        "{}/{}/{}",
        group.metadata.namespace, group.spec.vpc_id, group.spec.group_name
    )
    .into_bytes()
}

/// `<region>/<AMI name>`: CreateImage's names are unique per region.
pub(super) fn image_name_key(image: &Image) -> Vec<u8> {
    format!("{}/{}", image.metadata.namespace, image.spec.name).into_bytes()
}

/// `<region>/<template name>`: launch template names are unique per region.
pub(super) fn launch_template_name_key(template: &LaunchTemplate) -> Vec<u8> {
    format!(
        "{}/{}",
        template.metadata.namespace, template.spec.launch_template_name
    )
    .into_bytes()
}

/// Unwraps a transaction's result: an abort is the store error it carries.
fn finish<R>(result: Result<R, TransactionError<StoreError>>) -> Result<R, StoreError> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails the transaction with `e`, writing nothing.
fn fail<T>(e: StoreError) -> ConflictableTransactionResult<T, StoreError> {
    Err(ConflictableTransactionError::Abort(e))
}

/// Inside a transaction: claims a ClientToken's entry `key` for the record `id`. Aborts with
/// `NameTaken` (kind [`CLIENT_TOKEN_KIND`], holder the record the token made) while that
/// record exists; an entry whose record is gone is stale and taken over.
fn claim_token(
    spec: &TransactionalTree,
    tokens: &TransactionalTree,
    key: &[u8],
    token: &str,
    id: &str,
) -> ConflictableTransactionResult<(), StoreError> {
    if let Some(holder) = tokens.get(key)? {
        if spec.get(&holder)?.is_some() {
            return abort(StoreError::NameTaken {
                kind: CLIENT_TOKEN_KIND,
                name: token.to_string(),
                holder: lossy(&holder),
            });
        }
    }
    tokens.insert(key, id.as_bytes())?;
    Ok(())
}

/// Inside a transaction: writes a new record's spec and claims its name. Aborts with
/// `AlreadyExists` when the id is taken and `NameTaken` when a live record holds the name.
fn claim(
    kind: &'static str,
    spec: &TransactionalTree,
    names: &TransactionalTree,
    id: &str,
    bytes: &[u8],
    name_key: &[u8],
    name: &str,
) -> ConflictableTransactionResult<(), StoreError> {
    if spec.get(id.as_bytes())?.is_some() {
        return abort(StoreError::AlreadyExists {
            kind,
            id: id.to_string(),
        });
    }
    if let Some(holder) = names.get(name_key)? {
        if spec.get(&holder)?.is_some() {
            return abort(StoreError::NameTaken {
                kind,
                name: name.to_string(),
                holder: lossy(&holder),
            });
        }
    }
    spec.insert(id.as_bytes(), bytes)?;
    names.insert(name_key, id.as_bytes())?;
    Ok(())
}

/// Writes of one record with its name entry. The records' name is their `metadata.name` (the
/// id); `name_key` gives the entry a record claims.
impl<S, T> Collection<S, T>
where
    S: serde::Serialize + serde::de::DeserializeOwned + Clone,
    T: serde::Serialize + serde::de::DeserializeOwned + Default + Clone,
{
    /// Inside a transaction: removes a record (spec and status) and its name entry when the
    /// entry is the record's. Returns the removed record, `None` when there was none.
    fn release(
        &self,
        (spec, status, names): (&TransactionalTree, &TransactionalTree, &TransactionalTree),
        id: &str,
        name_key: fn(&Object<S, T>) -> Vec<u8>,
    ) -> ConflictableTransactionResult<Option<Object<S, T>>, StoreError> {
        let Some(spec_bytes) = spec.get(id.as_bytes())? else {
            return Ok(None);
        };
        let status_bytes = status.get(id.as_bytes())?;
        let object = match self.decode_object(id.as_bytes(), &spec_bytes, status_bytes.as_deref()) {
            Ok(object) => object,
            Err(e) => return fail(e),
        };
        spec.remove(id.as_bytes())?;
        status.remove(id.as_bytes())?;
        let key = name_key(&object);
        if names.get(&key)?.as_deref() == Some(id.as_bytes()) {
            names.remove(key)?;
        }
        Ok(Some(object))
    }

    /// Creates one record and its name entry in one transaction, then makes it durable.
    fn create_named(
        &self,
        kind: &'static str,
        names: &sled::Tree,
        object: &Object<S, T>,
        name_key: fn(&Object<S, T>) -> Vec<u8>,
        name: &str,
    ) -> Result<(), StoreError> {
        let bytes = self.encode_spec(object)?;
        let key = name_key(object);
        let id = object.metadata.name.as_str();
        let writing = self.writing_ids([id]);
        finish(
            (self.spec_tree(), names)
                .transaction(|(spec, names)| claim(kind, spec, names, id, &bytes, &key, name)),
        )?;
        drop(writing);
        self.make_durable()
    }

    /// Deletes one record and its name entry in one transaction, then makes it durable.
    /// Returns the deleted record, `None` when there was none.
    fn delete_named(
        &self,
        names: &sled::Tree,
        id: &str,
        name_key: fn(&Object<S, T>) -> Vec<u8>,
    ) -> Result<Option<Object<S, T>>, StoreError> {
        let writing = self.writing_ids([id]);
        let deleted = finish(
            (self.spec_tree(), self.status_tree(), names)
                .transaction(|trees| self.release((&trees.0, &trees.1, &trees.2), id, name_key)),
        )?;
        self.forget(id);
        drop(writing);
        if deleted.is_some() {
            self.make_durable()?;
        }
        Ok(deleted)
    }

    /// Adds the name entries records lack (stores written before the indexes existed, or
    /// records written past them by tests); returns how many were added. Two records holding
    /// one name (an older version's race) keep the first in id order, and the other is logged.
    /// Records `holds_name` refuses (a deregistered AMI) hold no name.
    fn repair_names(
        &self,
        names: &sled::Tree,
        name_key: fn(&Object<S, T>) -> Vec<u8>,
        holds_name: fn(&Object<S, T>) -> bool,
    ) -> Result<usize, StoreError> {
        let mut added = 0;
        for object in self.list_shared()?.objects {
            if !holds_name(&object) {
                continue;
            }
            let key = name_key(&object);
            let id = object.metadata.name.as_bytes();
            match names.get(&key)? {
                Some(holder) if holder.as_ref() == id => {}
                Some(holder) if self.spec_tree().contains_key(&holder)? => {
                    tracing::warn!(name = %lossy(&key), holder = %lossy(&holder), duplicate = %object.metadata.name, "two records hold one name; the index keeps the first");
                }
                _ => {
                    names.insert(&key, id)?;
                    added += 1;
                }
            }
        }
        Ok(added)
    }
}

/// The launches recorded for a group, as stored in `security_groups.uses`.
fn uses_count(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// What one attempt of [`Store::delete_security_group`]'s transaction found.
enum GroupDelete {
    /// Deleted (or there was nothing to delete).
    Done(Box<Option<SecurityGroup>>),
    /// A launch put instances in the group since its check: check again.
    Used,
}

impl Store {
    /// Stores a new Elastic IP and claims its address in one transaction: `NameTaken` (and
    /// nothing written) when another Elastic IP has the address.
    pub fn create_address(&self, address: &Address) -> Result<(), StoreError> {
        self.addresses.create_named(
            ADDRESS_KIND,
            &self.address_ips,
            address,
            address_ip_key,
            &address.spec.public_ip,
        )
    }

    /// Stores a new key pair and claims its name in its region, in one transaction:
    /// `NameTaken` (and nothing written) when another key pair of the region has the name.
    pub fn create_key_pair(&self, key_pair: &KeyPair) -> Result<(), StoreError> {
        self.key_pairs.create_named(
            KEY_PAIR_KIND,
            &self.key_pair_names,
            key_pair,
            key_pair_name_key,
            &key_pair.spec.key_name,
        )
    }

    /// Deletes a key pair and frees its name; returns it, `None` when there was none.
    pub fn delete_key_pair(&self, id: &str) -> Result<Option<KeyPair>, StoreError> {
        self.key_pairs
            .delete_named(&self.key_pair_names, id, key_pair_name_key)
    }

    /// Stores a new security group and claims its name in its VPC, in one transaction:
    /// `NameTaken` (and nothing written) when another group of the VPC has the name.
    pub fn create_security_group(&self, group: &SecurityGroup) -> Result<(), StoreError> {
        self.security_groups.create_named(
            SECURITY_GROUP_KIND,
            &self.group_names,
            group,
            group_name_key,
            &group.spec.group_name,
        )
    }

    /// Deletes a security group once `still_deletable` (which looks at what depends on the
    /// group: live instances, other groups' rules) agrees; returns it, `None` when there was none.
    ///
    /// Race-free against RunInstances without a lock: each launch's transaction bumps
    /// `security_groups.uses` for every group its instances join (and aborts with `NotFound`
    /// when a group is gone). This reads the group's count, runs the check, then removes the
    /// group in a transaction only if the count is unchanged; otherwise a launch committed in
    /// between, and the check runs again. A launch committed before the count was read wrote
    /// its instances in the same transaction, so the check sees them (a collection's listing
    /// is never reused while a write is under way); one committed after it either moved the
    /// count (the delete retries) or finds the group gone (the launch fails).
    pub fn delete_security_group<E: From<StoreError>>(
        &self,
        id: &str,
        mut still_deletable: impl FnMut() -> Result<(), E>,
    ) -> Result<Option<SecurityGroup>, E> {
        let groups = &self.security_groups;
        loop {
            let uses = self
                .group_uses
                .get(id.as_bytes())
                .map_err(StoreError::from)?;
            still_deletable()?;
            let writing = groups.writing();
            let outcome = finish(
                (
                    groups.spec_tree(),
                    groups.status_tree(),
                    &self.group_names,
                    &self.group_uses,
                )
                    .transaction(|(spec, status, names, uses_tree)| {
                        if uses_tree.get(id.as_bytes())? != uses {
                            return Ok(GroupDelete::Used);
                        }
                        let deleted = groups.release((spec, status, names), id, group_name_key)?;
                        uses_tree.remove(id.as_bytes())?;
                        Ok(GroupDelete::Done(Box::new(deleted)))
                    }),
            )?;
            match outcome {
                GroupDelete::Used => continue,
                GroupDelete::Done(deleted) => {
                    groups.forget(id);
                    drop(writing);
                    if deleted.is_some() {
                        groups.make_durable()?;
                    }
                    return Ok(*deleted);
                }
            }
        }
    }

    /// Counts one more use of each group, in one transaction that aborts with `NotFound` (and
    /// counts nothing) when a group is gone. ModifyInstanceAttribute calls it after writing
    /// an instance's new groups: a concurrent delete of a group then either sees the
    /// instance in the group (its check runs after the count moved) or has already removed
    /// the group, which this reports so the caller undoes its write.
    pub fn count_group_uses(&self, group_ids: &[&str]) -> Result<(), StoreError> {
        let groups = &self.security_groups;
        finish(
            (groups.spec_tree(), &self.group_uses).transaction(|(group_specs, uses)| {
                for group in group_ids {
                    if group_specs.get(group.as_bytes())?.is_none() {
                        return fail(StoreError::NotFound {
                            kind: SECURITY_GROUP_KIND,
                            id: group.to_string(),
                        });
                    }
                    let count = uses_count(uses.get(group.as_bytes())?.as_deref());
                    uses.insert(group.as_bytes(), &(count + 1).to_be_bytes())?;
                }
                Ok(())
            }),
        )
    }

    /// Stores a CreateImage or CopyImage record, claiming its AMI name in its region and, for
    /// a copy asked for with a ClientToken, the token there, in one transaction: `NameTaken`
    /// (and nothing written) when another record of the region has the name (kind
    /// [`IMAGE_KIND`]) or the token made a copy that still has its record (kind
    /// [`CLIENT_TOKEN_KIND`], holder that copy's id).
    pub fn create_image(&self, image: &Image) -> Result<(), StoreError> {
        self.create_image_with_snapshots(image, &[])
    }

    /// [`Store::create_image`] with CreateImage's snapshot records (one per volume of the
    /// instance), written in the same transaction as the AMI: a refused name writes neither,
    /// and no crash leaves an AMI whose mapping names snapshots that were never recorded.
    pub fn create_image_with_snapshots(
        &self,
        image: &Image,
        snapshots: &[Snapshot],
    ) -> Result<(), StoreError> {
        let images = &self.images;
        let snapshot_bytes = snapshots
            .iter()
            .map(|s| Ok((s.metadata.name.as_str(), self.snapshots.encode_spec(s)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let bytes = images.encode_spec(image)?;
        let name_key = image_name_key(image);
        let id = image.metadata.name.as_str();
        let token = match &image.spec.source {
            ImageSource::Copy {
                client_token: Some(token),
                ..
            } => Some((token, client_token_key(&image.metadata.namespace, token))),
            _ => None,
        };
        let writing = images.writing();
        let writing_snapshots = self.snapshots.writing();
        finish(
            (
                images.spec_tree(),
                &self.image_names,
                &self.image_tokens,
                self.snapshots.spec_tree(),
            )
                .transaction(|(spec, names, tokens, snapshot_specs)| {
                    if let Some((token, key)) = &token {
                        claim_token(spec, tokens, key, token, id)?;
                    }
                    claim(
                        IMAGE_KIND,
                        spec,
                        names,
                        id,
                        &bytes,
                        &name_key,
                        &image.spec.name,
                    )?;
                    for (snapshot_id, bytes) in &snapshot_bytes {
                        if snapshot_specs.get(snapshot_id.as_bytes())?.is_some() {
                            return abort(StoreError::AlreadyExists {
                                kind: crate::model::SNAPSHOT_KIND,
                                id: snapshot_id.to_string(),
                            });
                        }
                        snapshot_specs.insert(snapshot_id.as_bytes(), bytes.as_slice())?;
                    }
                    Ok(())
                }),
        )?;
        drop(writing_snapshots);
        drop(writing);
        images.make_durable()
    }

    /// Stores a new volume record (CreateVolume's), claiming its ClientToken in its region when
    /// it has one and writing the `volumes.devices` entry of each attachment it is made with,
    /// in one transaction: `AlreadyExists` for a taken id, `NameTaken` (kind
    /// [`CLIENT_TOKEN_KIND`], holder the volume the token made) while that volume's record
    /// exists, and nothing written either way.
    pub fn create_volume(&self, volume: &Volume) -> Result<(), StoreError> {
        let volumes = &self.volumes;
        let bytes = volumes.encode_spec(volume)?;
        let id = volume.metadata.name.as_str();
        let token = volume
            .spec
            .client_token
            .as_ref()
            .map(|t| (t, client_token_key(&volume.metadata.namespace, t)));
        let device_entries: Vec<Vec<u8>> = volume
            .spec
            .attachments
            .iter()
            .map(|a| super::volumes::device_key(&a.instance_id, &a.device))
            .collect();
        let writing = volumes.writing_ids([id]);
        finish(
            (
                volumes.spec_tree(),
                &self.volume_tokens,
                &self.volume_devices,
            )
                .transaction(|(spec, tokens, devices)| {
                    if spec.get(id.as_bytes())?.is_some() {
                        return abort(StoreError::AlreadyExists {
                            kind: VOLUME_KIND,
                            id: id.to_string(),
                        });
                    }
                    if let Some((token, key)) = &token {
                        claim_token(spec, tokens, key, token, id)?;
                    }
                    spec.insert(id.as_bytes(), bytes.as_slice())?;
                    for key in &device_entries {
                        devices.insert(key.as_slice(), id.as_bytes())?;
                    }
                    Ok(())
                }),
        )?;
        drop(writing);
        volumes.make_durable()
    }

    /// The id of the volume a CreateVolume with this ClientToken made in the region, while its
    /// record exists.
    pub fn volume_for_client_token(
        &self,
        region: &str,
        token: &str,
    ) -> Result<Option<String>, StoreError> {
        let Some(holder) = self.volume_tokens.get(client_token_key(region, token))? else {
            return Ok(None);
        };
        let id = lossy(&holder);
        Ok(self.volumes.get(&id)?.map(|_| id))
    }

    /// The id of the AMI a CopyImage with this ClientToken made in the region, while its
    /// record exists (deregistered or not: the same request still answers the same AMI).
    pub fn image_for_client_token(
        &self,
        region: &str,
        token: &str,
    ) -> Result<Option<String>, StoreError> {
        let Some(holder) = self.image_tokens.get(client_token_key(region, token))? else {
            return Ok(None);
        };
        let id = lossy(&holder);
        Ok(self.images.get(&id)?.map(|_| id))
    }

    /// Stores a new launch template, claiming its name in its region and, when it has one,
    /// its ClientToken there, in one transaction: `NameTaken` (and nothing written) when
    /// another template of the region has the name (kind [`LAUNCH_TEMPLATE_KIND`]) or was
    /// created with the token (kind [`CLIENT_TOKEN_KIND`], holder that template's id). A
    /// token whose template was deleted since is taken over.
    pub fn create_launch_template(&self, template: &LaunchTemplate) -> Result<(), StoreError> {
        let templates = &self.launch_templates;
        let bytes = templates.encode_spec(template)?;
        let name_key = launch_template_name_key(template);
        let id = template.metadata.name.as_str();
        let token_key = template
            .spec
            .client_token
            .as_deref()
            .map(|t| client_token_key(&template.metadata.namespace, t));
        let writing = templates.writing();
        finish(
            (
                templates.spec_tree(),
                &self.launch_template_names,
                &self.launch_template_tokens,
            )
                .transaction(|(spec, names, tokens)| {
                    if let (Some(key), Some(token)) = (&token_key, &template.spec.client_token) {
                        claim_token(spec, tokens, key, token, id)?;
                    }
                    claim(
                        LAUNCH_TEMPLATE_KIND,
                        spec,
                        names,
                        id,
                        &bytes,
                        &name_key,
                        &template.spec.launch_template_name,
                    )
                }),
        )?;
        drop(writing);
        templates.make_durable()
    }

    /// Deletes a launch template (all its versions), frees its name and removes its
    /// ClientToken entry, in one transaction (so the token index never outgrows the
    /// templates there are); returns it, `None` when there was none. An entry another
    /// template holds is left alone.
    pub fn delete_launch_template(&self, id: &str) -> Result<Option<LaunchTemplate>, StoreError> {
        let templates = &self.launch_templates;
        let writing = templates.writing();
        let deleted = finish(
            (
                templates.spec_tree(),
                templates.status_tree(),
                &self.launch_template_names,
                &self.launch_template_tokens,
            )
                .transaction(|(spec, status, names, tokens)| {
                    let deleted =
                        templates.release((spec, status, names), id, launch_template_name_key)?;
                    if let Some(template) = &deleted {
                        if let Some(token) = &template.spec.client_token {
                            let key = client_token_key(&template.metadata.namespace, token);
                            if tokens.get(&key)?.as_deref() == Some(id.as_bytes()) {
                                tokens.remove(key)?;
                            }
                        }
                    }
                    Ok(deleted)
                }),
        )?;
        templates.forget(id);
        drop(writing);
        if deleted.is_some() {
            templates.make_durable()?;
        }
        Ok(deleted)
    }

    /// Removes the ClientToken entries whose template is gone: versions before
    /// [`Store::delete_launch_template`] removed the entry left it behind. Run at open, before
    /// any request, so no create races it; returns how many were removed.
    pub(super) fn prune_launch_template_tokens(&self) -> Result<usize, StoreError> {
        let mut pruned = 0;
        for entry in self.launch_template_tokens.iter() {
            let (key, holder) = entry?;
            if !self.launch_templates.spec_tree().contains_key(&holder)? {
                // Only if it still names that holder (nothing else writes at open, but be exact).
                if self
                    .launch_template_tokens
                    .compare_and_swap(&key, Some(holder), None as Option<&[u8]>)?
                    .is_ok()
                {
                    pruned += 1;
                }
            }
        }
        if pruned > 0 {
            tracing::info!(
                pruned,
                "removed ClientToken entries of deleted launch templates"
            );
        }
        Ok(pruned)
    }

    /// The id of the launch template CreateLaunchTemplate made with this ClientToken in the
    /// region, while that template exists.
    pub fn launch_template_for_client_token(
        &self,
        region: &str,
        token: &str,
    ) -> Result<Option<String>, StoreError> {
        let Some(holder) = self
            .launch_template_tokens
            .get(client_token_key(region, token))?
        else {
            return Ok(None);
        };
        let id = lossy(&holder);
        Ok(self.launch_templates.get(&id)?.map(|_| id))
    }

    /// DeregisterImage of a CreateImage or CopyImage record of `region`: marks it deregistered
    /// (a new generation, for the reconciler, which removes its Docker tag and then the record)
    /// and frees its name, in one transaction, so the name is free again at once and no crash
    /// separates the two. `false` (nothing written) when the region has no such live record.
    pub fn deregister_image(&self, id: &str, region: &str) -> Result<bool, StoreError> {
        let images = &self.images;
        let writing = images.writing();
        let done = finish(
            (
                images.spec_tree(),
                images.status_tree(),
                &self.image_names,
                &self.deregistered_images,
            )
                .transaction(|(spec, status, names, deregistered)| {
                    let Some(bytes) = spec.get(id.as_bytes())? else {
                        return Ok(false);
                    };
                    let status_bytes = status.get(id.as_bytes())?;
                    let mut image = match images.decode_object(
                        id.as_bytes(),
                        &bytes,
                        status_bytes.as_deref(),
                    ) {
                        Ok(image) => image,
                        Err(e) => return fail(e),
                    };
                    if image.metadata.namespace != region || image.spec.deregistered {
                        return Ok(false);
                    }
                    image.spec.deregistered = true;
                    image.metadata.generation += 1;
                    image.metadata.resource_version += 1;
                    let encoded = match images.encode_spec(&image) {
                        Ok(encoded) => encoded,
                        Err(e) => return fail(e),
                    };
                    spec.insert(id.as_bytes(), encoded)?;
                    let key = image_name_key(&image);
                    if names.get(&key)?.as_deref() == Some(id.as_bytes()) {
                        names.remove(key)?;
                    }
                    deregistered.insert(id.as_bytes(), region.as_bytes())?;
                    Ok(true)
                }),
        )?;
        drop(writing);
        if done {
            images.make_durable()?;
        }
        Ok(done)
    }

    /// Remembers that the AMI `id`, discovered from a Docker tag, was deregistered (see
    /// `images.deregistered`). Written before the record that carries out the deregistration:
    /// a crash in between leaves the AMI visible, and the memory then only ever applies to an
    /// id nothing shows any more.
    pub fn remember_deregistered(&self, id: &str, region: &str) -> Result<(), StoreError> {
        self.deregistered_images
            .insert(id.as_bytes(), region.as_bytes())?;
        Ok(())
    }

    /// Whether the AMI `id` was deregistered in `region` (or, discovered from a Docker tag,
    /// in every region).
    pub fn was_deregistered(&self, id: &str, region: &str) -> Result<bool, StoreError> {
        Ok(self
            .deregistered_images
            .get(id.as_bytes())?
            .is_some_and(|r| *r == *region.as_bytes() || *r == *DISCOVERED_NAMESPACE.as_bytes()))
    }

    /// Creates the instances of one RunInstances call in one transaction, which also records
    /// the call's ClientToken (when given), the launch's volumes (each instance's root
    /// volume and those of its block device mappings) and counts a use of each security group the
    /// instances join. Aborts, writing nothing, with `NameTaken` (kind
    /// [`CLIENT_TOKEN_KIND`], holder the first instance of the earlier launch) when the token
    /// already launched instances that still exist in the region, `NotFound` when a group is
    /// gone (deleted since it was resolved), and `AlreadyExists` on an id collision.
    pub fn create_instances(
        &self,
        instances: &[Instance],
        volumes: &[Volume],
        region: &str,
        client_token: Option<&str>,
    ) -> Result<(), StoreError> {
        let volume_bytes = volumes
            .iter()
            .map(|v| Ok((v.metadata.name.as_str(), self.volumes.encode_spec(v)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Each launch volume's device entry (`volumes.devices`), so an instance finds its
        // volumes without reading every volume; the devices are the instance's own, new.
        let device_entries: Vec<(Vec<u8>, &str)> = volumes
            .iter()
            .flat_map(|v| {
                v.spec.attachments.iter().map(move |a| {
                    (
                        super::volumes::device_key(&a.instance_id, &a.device),
                        v.metadata.name.as_str(),
                    )
                })
            })
            .collect();
        let mut encoded = Vec::with_capacity(instances.len());
        let mut groups: Vec<&str> = Vec::new();
        for instance in instances {
            encoded.push((
                instance.metadata.name.as_str(),
                self.instances.encode_spec(instance)?,
            ));
            for group in &instance.spec.security_groups {
                if !groups.contains(&group.group_id.as_str()) {
                    groups.push(&group.group_id);
                }
            }
        }
        let token = match client_token {
            Some(token) => {
                let ids: Vec<&str> = instances.iter().map(|i| i.metadata.name.as_str()).collect();
                let ids =
                    serde_json::to_vec(&ids).map_err(|e| StoreError::Backend(e.to_string()))?;
                Some((token, client_token_key(region, token), ids))
            }
            None => None,
        };
        let addresses: Vec<(Vec<u8>, &str, &str)> = instances
            .iter()
            .filter_map(|i| {
                let ip = i.spec.private_ip.as_deref()?;
                let vpc = i.spec.vpc_id.as_deref()?;
                Some((private_ip_key(vpc, ip), ip, i.metadata.name.as_str()))
            })
            .collect();
        let writing = self.instances.writing_ids(encoded.iter().map(|(id, _)| id));
        let writing_volumes = self
            .volumes
            .writing_ids(volume_bytes.iter().map(|(id, _)| id));
        finish(
            (
                self.instances.spec_tree(),
                &self.client_tokens,
                self.security_groups.spec_tree(),
                &self.group_uses,
                &self.private_ips,
                self.volumes.spec_tree(),
                &self.volume_devices,
            )
                .transaction(
                    |(spec, tokens, group_specs, uses, private_ips, volume_specs, devices)| {
                        if let Some((token, key, ids)) = &token {
                            if let Some(holder) = live_launch(spec, tokens.get(key)?.as_deref())? {
                                return abort(StoreError::NameTaken {
                                    kind: CLIENT_TOKEN_KIND,
                                    name: token.to_string(),
                                    holder,
                                });
                            }
                            tokens.insert(key.as_slice(), ids.as_slice())?;
                        }
                        for group in &groups {
                            if group_specs.get(group.as_bytes())?.is_none() {
                                return abort(StoreError::NotFound {
                                    kind: SECURITY_GROUP_KIND,
                                    id: group.to_string(),
                                });
                            }
                            let count = uses_count(uses.get(group.as_bytes())?.as_deref());
                            uses.insert(group.as_bytes(), &(count + 1).to_be_bytes())?;
                        }
                        for (id, bytes) in &encoded {
                            if spec.get(id.as_bytes())?.is_some() {
                                return abort(StoreError::AlreadyExists {
                                    kind: crate::model::INSTANCE_KIND,
                                    id: id.to_string(),
                                });
                            }
                            spec.insert(id.as_bytes(), bytes.as_slice())?;
                        }
                        for (key, ip, id) in &addresses {
                            if let Some(holder) = private_ips.get(key)? {
                                if holder.as_ref() != id.as_bytes()
                                    && holds_address(spec.get(&holder)?.as_deref())
                                {
                                    return abort(StoreError::NameTaken {
                                        kind: PRIVATE_IP_KIND,
                                        name: ip.to_string(),
                                        holder: lossy(&holder),
                                    });
                                }
                            }
                            private_ips.insert(key.as_slice(), id.as_bytes())?;
                        }
                        // The launch's volumes (each instance's root and its mappings'), with the
                        // instances and the token: a retried launch finds the token taken and
                        // writes none, and no crash leaves an instance without its root volume.
                        for (id, bytes) in &volume_bytes {
                            if volume_specs.get(id.as_bytes())?.is_some() {
                                return abort(StoreError::AlreadyExists {
                                    kind: crate::model::VOLUME_KIND,
                                    id: id.to_string(),
                                });
                            }
                            volume_specs.insert(id.as_bytes(), bytes.as_slice())?;
                        }
                        for (key, id) in &device_entries {
                            devices.insert(key.as_slice(), id.as_bytes())?;
                        }
                        Ok(())
                    },
                ),
        )?;
        drop(writing_volumes);
        drop(writing);
        self.instances.make_durable()
    }

    /// Deletes a terminated instance's record (garbage collection past its retention) and,
    /// with the last instance of its launch, that launch's ClientToken entry, in one
    /// transaction. SDKs send a fresh token with every RunInstances, so entries left behind
    /// would grow the store for as long as it lives.
    pub fn collect_instance(&self, id: &str) -> Result<(), StoreError> {
        let Some(instance) = self.instances.get_shared(id)? else {
            return Ok(());
        };
        let token_key = instance
            .spec
            .client_token
            .as_deref()
            .map(|token| client_token_key(&instance.metadata.namespace, token));
        let writing = self.instances.writing_ids([id]);
        finish(
            (
                self.instances.spec_tree(),
                self.instances.status_tree(),
                &self.client_tokens,
            )
                .transaction(|(spec, status, tokens)| {
                    spec.remove(id.as_bytes())?;
                    status.remove(id.as_bytes())?;
                    if let Some(key) = &token_key {
                        if live_launch(spec, tokens.get(key)?.as_deref())?.is_none() {
                            tokens.remove(key.as_slice())?;
                        }
                    }
                    Ok(())
                }),
        )?;
        self.instances.forget(id);
        drop(writing);
        self.instances.make_durable()
    }

    /// Removes ClientToken entries none of whose instances exist any more: stores written
    /// before [`Store::collect_instance`] removed them kept one per launch for good.
    pub(super) fn prune_client_tokens(&self) -> Result<usize, StoreError> {
        let mut pruned = 0;
        for entry in self.client_tokens.iter() {
            let (key, stored) = entry?;
            let ids: Vec<String> = serde_json::from_slice(&stored).unwrap_or_default();
            let mut live = false;
            for id in &ids {
                live |= self.instances.spec_tree().contains_key(id.as_bytes())?;
            }
            // Removed only if it still holds what was read: a launch that took the token over
            // meanwhile keeps its entry.
            if !live
                && self
                    .client_tokens
                    .compare_and_swap(&key, Some(&stored), None as Option<&[u8]>)?
                    .is_ok()
            {
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    /// The private addresses live instances hold in a VPC (see [`PRIVATE_IP_KIND`]).
    pub fn private_ips_in_use(&self, vpc_id: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{vpc_id}/");
        let mut out = Vec::new();
        for entry in self.private_ips.scan_prefix(prefix.as_bytes()) {
            let (key, holder) = entry?;
            if holds_address(self.instances.spec_tree().get(&holder)?.as_deref()) {
                out.push(lossy(&key[prefix.len()..]));
            }
        }
        Ok(out)
    }

    /// Adds the name-index entries that stored records lack (see [`Collection::repair_names`]).
    pub(super) fn repair_name_indexes(&self) -> Result<(), StoreError> {
        let added = self
            .key_pairs
            .repair_names(&self.key_pair_names, key_pair_name_key, |_| true)?
            + self
                .security_groups
                .repair_names(&self.group_names, group_name_key, |_| true)?
            + self
                .images
                .repair_names(&self.image_names, image_name_key, |image| {
                    !image.spec.deregistered
                })?
            + self.launch_templates.repair_names(
                &self.launch_template_names,
                launch_template_name_key,
                |_| true,
            )?;
        if added > 0 {
            tracing::info!(
                added,
                "added name-index entries for records written without them"
            );
        }
        Ok(())
    }
}

/// Inside RunInstances' transaction: the first instance of an earlier launch with this
/// token's entry that still exists, `None` when the token is new or its instances were all
/// collected since (then the entry is stale and the launch takes it over).
fn live_launch(
    spec: &TransactionalTree,
    entry: Option<&[u8]>,
) -> ConflictableTransactionResult<Option<String>, StoreError> {
    let Some(entry) = entry else {
        return Ok(None);
    };
    // An entry that cannot be read names no launch this store can answer with.
    let ids: Vec<String> = serde_json::from_slice(entry).unwrap_or_default();
    for id in ids {
        if spec.get(id.as_bytes())?.is_some() {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Barrier};

    use super::*;
    use crate::model::network::{allow_all_egress, generate_group_id, security_group};
    use crate::model::{
        fixtures, now, GroupRef, InstanceId, KeyPairOrigin, KeyType, SecurityGroupSpec,
    };

    const REGION: &str = "us-east-1";
    const VPC: &str = "vpc-0123456789abcdef0";

    fn key_pair(name: &str) -> KeyPair {
        crate::model::keypair::new_key_pair(
            REGION,
            name,
            KeyPairOrigin::Imported,
            KeyType::Ed25519,
            format!("ssh-ed25519 AAAA {name}"),
            "fp".into(),
            BTreeMap::new(),
        )
    }

    fn group(name: &str) -> SecurityGroup {
        security_group(
            &generate_group_id(),
            REGION,
            SecurityGroupSpec {
                group_name: name.to_string(),
                description: "d".into(),
                vpc_id: VPC.into(),
                ingress: Vec::new(),
                egress: allow_all_egress(),
                tags: BTreeMap::new(),
                rule_meta: BTreeMap::new(),
            },
            now(),
        )
    }

    fn image(name: &str) -> Image {
        fixtures::committed_image(&InstanceId::generate(), name)
    }

    fn template(name: &str) -> LaunchTemplate {
        crate::model::launch_template::new_launch_template(
            REGION,
            name,
            "arn",
            (None, Default::default()),
            BTreeMap::new(),
            None,
        )
    }

    /// Instances of one launch joining `group`.
    fn launch(count: u32, group: &SecurityGroup) -> Vec<Instance> {
        (0..count)
            .map(|index| {
                let mut instance = fixtures::instance();
                instance.spec.ami_launch_index = index;
                instance.spec.security_groups = vec![GroupRef {
                    group_id: group.metadata.name.clone(),
                    group_name: group.spec.group_name.clone(),
                }];
                instance
            })
            .collect()
    }

    /// `THREADS` threads released together each create their own record of one name through
    /// `create`; returns how many won and checks every loser was told `NameTaken`.
    fn race<O: Send + 'static>(
        store: &Store,
        make: fn(&str) -> O,
        create: fn(&Store, &O) -> Result<(), StoreError>,
        name: &str,
    ) -> usize {
        const THREADS: usize = 8;
        let barrier = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (store, barrier, object) = (store.clone(), barrier.clone(), make(name));
                std::thread::spawn(move || {
                    barrier.wait();
                    create(&store, &object)
                })
            })
            .collect();
        let mut wins = 0;
        for thread in threads {
            match thread.join().unwrap() {
                Ok(()) => wins += 1,
                Err(StoreError::NameTaken { name: taken, .. }) => assert_eq!(taken, name),
                Err(other) => panic!("unexpected {other}"),
            }
        }
        wins
    }

    #[test]
    fn racing_creates_of_one_name_leave_one_record() {
        let store = Store::temporary().unwrap();
        for round in 0..10 {
            let name = format!("race-{round}");
            assert_eq!(
                race(&store, key_pair, Store::create_key_pair, &name),
                1,
                "key pairs, round {round}"
            );
            assert_eq!(
                race(&store, group, Store::create_security_group, &name),
                1,
                "groups, round {round}"
            );
            assert_eq!(
                race(&store, image, Store::create_image, &name),
                1,
                "images, round {round}"
            );
            assert_eq!(
                race(&store, template, Store::create_launch_template, &name),
                1,
                "launch templates, round {round}"
            );
        }
        assert_eq!(store.key_pairs().len(), 10);
        assert_eq!(store.security_groups().len(), 10);
        assert_eq!(store.images().len(), 10);
        assert_eq!(store.key_pair_names.len(), 10);
        assert_eq!(store.group_names.len(), 10);
        assert_eq!(store.image_names.len(), 10);
        assert_eq!(store.launch_templates().len(), 10);
        assert_eq!(store.launch_template_names.len(), 10);
    }

    #[test]
    fn a_launch_template_client_token_is_claimed_with_the_template() {
        let store = Store::temporary().unwrap();
        let mut first = template("web");
        first.spec.client_token = Some("tok".into());
        store.create_launch_template(&first).unwrap();
        let mut second = template("other");
        second.spec.client_token = Some("tok".into());
        assert_eq!(
            store.create_launch_template(&second),
            Err(StoreError::NameTaken {
                kind: CLIENT_TOKEN_KIND,
                name: "tok".into(),
                holder: first.metadata.name.clone(),
            })
        );
        assert!(store
            .launch_templates()
            .get(&second.metadata.name)
            .unwrap()
            .is_none());
        assert!(
            store
                .launch_template_names
                .get(b"us-east-1/other")
                .unwrap()
                .is_none(),
            "nothing of the refused create was written"
        );
        assert_eq!(
            store
                .launch_template_for_client_token(REGION, "tok")
                .unwrap(),
            Some(first.metadata.name.clone())
        );
        // Deleted: the name and the token are free again.
        store
            .delete_launch_template(&first.metadata.name)
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .launch_template_for_client_token(REGION, "tok")
                .unwrap(),
            None
        );
        store.create_launch_template(&second).unwrap();
        store.create_launch_template(&template("web")).unwrap();
    }

    /// A CopyImage record asked for with `token`.
    fn copy(name: &str, token: &str) -> Image {
        let mut image = image(name);
        image.spec.source = ImageSource::Copy {
            source_image_id: crate::model::ImageId::generate(),
            source_region: REGION.into(),
            source_reference: "localstack-ec2/source:ami-12345678".into(),
            client_token: Some(token.into()),
        };
        image
    }

    #[test]
    fn racing_copies_with_one_client_token_copy_once() {
        let store = Store::temporary().unwrap();
        for round in 0..10 {
            const THREADS: usize = 6;
            let token = format!("tok-{round}");
            let barrier = Arc::new(Barrier::new(THREADS));
            let threads: Vec<_> = (0..THREADS)
                .map(|n| {
                    let (store, barrier) = (store.clone(), barrier.clone());
                    let image = copy(&format!("copy-{round}-{n}"), &token);
                    std::thread::spawn(move || {
                        barrier.wait();
                        let id = image.metadata.name.clone();
                        (id, store.create_image(&image))
                    })
                })
                .collect();
            let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let winners: Vec<&String> = outcomes
                .iter()
                .filter(|(_, r)| r.is_ok())
                .map(|(id, _)| id)
                .collect();
            assert_eq!(winners.len(), 1, "round {round}");
            for (_, outcome) in &outcomes {
                if let Err(e) = outcome {
                    assert_eq!(
                        *e,
                        StoreError::NameTaken {
                            kind: CLIENT_TOKEN_KIND,
                            name: token.clone(),
                            holder: winners[0].clone(),
                        }
                    );
                }
            }
            assert_eq!(
                store.image_for_client_token(REGION, &token).unwrap(),
                Some(winners[0].clone())
            );
        }
        assert_eq!(store.images().len(), 10);
        assert_eq!(store.image_names.len(), 10, "losers claimed no name");
        // Tokens are per region, and a token whose copy was collected is free again.
        assert_eq!(
            store.image_for_client_token("eu-west-1", "tok-0").unwrap(),
            None
        );
        let holder = store
            .image_for_client_token(REGION, "tok-0")
            .unwrap()
            .unwrap();
        store.images().delete(&holder).unwrap();
        assert_eq!(store.image_for_client_token(REGION, "tok-0").unwrap(), None);
        store.create_image(&copy("again", "tok-0")).unwrap();
    }

    #[test]
    fn a_deleted_launch_template_takes_its_client_token_entry_with_it() {
        let store = Store::temporary().unwrap();
        let key = client_token_key(REGION, "tok");
        for round in 0..3 {
            let mut lt = template("web");
            lt.spec.client_token = Some("tok".into());
            store.create_launch_template(&lt).unwrap();
            assert_eq!(store.launch_template_tokens.len(), 1, "round {round}");
            store
                .delete_launch_template(&lt.metadata.name)
                .unwrap()
                .unwrap();
            assert!(
                store.launch_template_tokens.is_empty(),
                "round {round}: the entry goes with its template"
            );
            assert!(store.launch_template_names.is_empty());
        }
        // An entry another template holds (it took a stale one over) is not this one's to remove.
        let mut mine = template("mine");
        mine.spec.client_token = Some("tok".into());
        store.create_launch_template(&mine).unwrap();
        store
            .launch_template_tokens
            .insert(&key, b"lt-0123456789abcdef0".as_slice())
            .unwrap();
        store
            .delete_launch_template(&mine.metadata.name)
            .unwrap()
            .unwrap();
        assert_eq!(
            store.launch_template_tokens.get(&key).unwrap().as_deref(),
            Some(b"lt-0123456789abcdef0".as_slice())
        );
    }

    #[test]
    fn stale_launch_template_client_tokens_are_pruned_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut live = template("live");
        live.spec.client_token = Some("kept".into());
        {
            let store = Store::open(dir.path()).unwrap();
            store.create_launch_template(&live).unwrap();
            // As an older version left them: entries of templates deleted since.
            for n in 0..5 {
                store
                    .launch_template_tokens
                    .insert(
                        client_token_key(REGION, &format!("gone-{n}")),
                        format!("lt-000000000000000{n}a").as_bytes(),
                    )
                    .unwrap();
            }
            futures::executor::block_on(store.flush()).unwrap();
        }
        let store = crate::store::reopen(dir.path());
        assert_eq!(store.launch_template_tokens.len(), 1);
        assert_eq!(
            store
                .launch_template_for_client_token(REGION, "kept")
                .unwrap(),
            Some(live.metadata.name.clone())
        );
    }

    #[test]
    fn a_refused_create_writes_neither_record_nor_name() {
        let store = Store::temporary().unwrap();
        let first = key_pair("dev");
        store.create_key_pair(&first).unwrap();
        let second = key_pair("dev");
        assert_eq!(
            store.create_key_pair(&second),
            Err(StoreError::NameTaken {
                kind: KEY_PAIR_KIND,
                name: "dev".into(),
                holder: first.metadata.name.clone(),
            })
        );
        assert!(store
            .key_pairs()
            .get(&second.metadata.name)
            .unwrap()
            .is_none());
        // An id collision claims no name either.
        let mut same_id = key_pair("other");
        same_id.metadata.name = first.metadata.name.clone();
        assert!(matches!(
            store.create_key_pair(&same_id),
            Err(StoreError::AlreadyExists { .. })
        ));
        let names: Vec<_> = store
            .key_pair_names
            .iter()
            .map(|e| e.unwrap())
            .map(|(k, v)| (lossy(&k), lossy(&v)))
            .collect();
        assert_eq!(
            names,
            vec![("us-east-1/dev".to_string(), first.metadata.name.clone())]
        );
        // Names are scoped: the same name in another region, or another VPC, is free.
        let mut elsewhere = key_pair("dev");
        elsewhere.metadata.namespace = "eu-west-1".into();
        store.create_key_pair(&elsewhere).unwrap();
        let web = group("web");
        store.create_security_group(&web).unwrap();
        let mut other_vpc = group("web");
        other_vpc.spec.vpc_id = "vpc-1".into();
        store.create_security_group(&other_vpc).unwrap();
        assert!(matches!(
            store.create_security_group(&group("web")),
            Err(StoreError::NameTaken { .. })
        ));
    }

    #[test]
    fn a_name_is_free_again_after_delete() {
        let store = Store::temporary().unwrap();
        let first = key_pair("dev");
        store.create_key_pair(&first).unwrap();
        let deleted = store
            .delete_key_pair(&first.metadata.name)
            .unwrap()
            .unwrap();
        assert_eq!(deleted.spec, first.spec);
        assert!(store.key_pair_names.is_empty(), "the entry went with it");
        assert!(store
            .delete_key_pair(&first.metadata.name)
            .unwrap()
            .is_none());
        store.create_key_pair(&key_pair("dev")).unwrap();

        let web = group("web");
        store.create_security_group(&web).unwrap();
        let deleted = store
            .delete_security_group::<StoreError>(&web.metadata.name, || Ok(()))
            .unwrap();
        assert_eq!(deleted.unwrap().metadata.name, web.metadata.name);
        assert!(store.group_names.is_empty());
        assert!(store.security_groups().is_empty());
        store.create_security_group(&group("web")).unwrap();
    }

    #[test]
    fn a_launch_into_a_deleted_group_writes_nothing() {
        let store = Store::temporary().unwrap();
        let web = group("web");
        store.create_security_group(&web).unwrap();
        store
            .delete_security_group::<StoreError>(&web.metadata.name, || Ok(()))
            .unwrap();
        let refused = store.create_instances(&launch(2, &web), &[], REGION, Some("tok"));
        assert_eq!(
            refused,
            Err(StoreError::NotFound {
                kind: SECURITY_GROUP_KIND,
                id: web.metadata.name.clone(),
            })
        );
        assert!(store.instances().is_empty());
        assert!(store.client_tokens.is_empty(), "the token is not claimed");
        assert!(store.group_uses.is_empty());
    }

    #[test]
    fn a_launch_during_the_dependency_check_makes_the_delete_check_again() {
        let store = Store::temporary().unwrap();
        let web = group("web");
        store.create_security_group(&web).unwrap();
        let mut checks = 0;
        let outcome = store.delete_security_group(&web.metadata.name, || {
            checks += 1;
            let in_use = store
                .instances()
                .list_shared()?
                .objects
                .iter()
                .any(|i| i.spec.security_groups[0].group_id == web.metadata.name);
            if in_use {
                return Err(StoreError::Backend("in use".into()));
            }
            // A launch lands between this check and the delete.
            store.create_instances(&launch(1, &web), &[], REGION, None)?;
            Ok(())
        });
        assert_eq!(outcome, Err(StoreError::Backend("in use".into())));
        assert_eq!(checks, 2, "the moved count ran the check again");
        assert!(store
            .security_groups()
            .get(&web.metadata.name)
            .unwrap()
            .is_some());
    }

    #[test]
    fn racing_launches_with_one_client_token_launch_once() {
        let store = Store::temporary().unwrap();
        let web = group("web");
        store.create_security_group(&web).unwrap();
        for round in 0..10 {
            let token = format!("tok-{round}");
            const THREADS: usize = 6;
            let barrier = Arc::new(Barrier::new(THREADS));
            let threads: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (store, barrier, token) = (store.clone(), barrier.clone(), token.clone());
                    let instances = launch(2, &web);
                    std::thread::spawn(move || {
                        barrier.wait();
                        let first = instances[0].metadata.name.clone();
                        (
                            first,
                            store.create_instances(&instances, &[], REGION, Some(&token)),
                        )
                    })
                })
                .collect();
            let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let winners: Vec<&String> = outcomes
                .iter()
                .filter(|(_, r)| r.is_ok())
                .map(|(first, _)| first)
                .collect();
            assert_eq!(winners.len(), 1, "round {round}");
            for (_, outcome) in &outcomes {
                if let Err(e) = outcome {
                    assert_eq!(
                        *e,
                        StoreError::NameTaken {
                            kind: CLIENT_TOKEN_KIND,
                            name: token.clone(),
                            holder: winners[0].clone(),
                        }
                    );
                }
            }
            assert_eq!(
                store.instances_for_client_token(REGION, &token).unwrap()[0],
                *winners[0]
            );
        }
        assert_eq!(store.instances().len(), 20);
        assert_eq!(
            uses_count(store.group_uses.get(&web.metadata.name).unwrap().as_deref()),
            10,
            "only committed launches count"
        );
    }

    #[test]
    fn a_token_whose_instances_were_collected_launches_again() {
        let store = Store::temporary().unwrap();
        let web = group("web");
        store.create_security_group(&web).unwrap();
        let first = launch(1, &web);
        store
            .create_instances(&first, &[], REGION, Some("tok"))
            .unwrap();
        store.instances().delete(&first[0].metadata.name).unwrap();
        let second = launch(1, &web);
        store
            .create_instances(&second, &[], REGION, Some("tok"))
            .unwrap();
        assert_eq!(
            store.instances_for_client_token(REGION, "tok").unwrap(),
            vec![second[0].metadata.name.clone()]
        );
    }

    #[test]
    fn records_without_name_entries_get_them_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (old_key, old_group, old_image) = (key_pair("old"), group("old"), image("old-ami"));
        {
            let store = Store::open(dir.path()).unwrap();
            // As an older version wrote them: records only.
            store
                .key_pairs()
                .create(std::slice::from_ref(&old_key))
                .unwrap();
            store
                .security_groups()
                .create(std::slice::from_ref(&old_group))
                .unwrap();
            store
                .images()
                .create(std::slice::from_ref(&old_image))
                .unwrap();
            futures::executor::block_on(store.flush()).unwrap();
        }
        let store = crate::store::reopen(dir.path());
        let taken = |r: Result<(), StoreError>| matches!(r, Err(StoreError::NameTaken { .. }));
        assert!(taken(store.create_key_pair(&key_pair("old"))));
        assert!(taken(store.create_security_group(&group("old"))));
        assert!(taken(store.create_image(&image("old-ami"))));
    }

    #[test]
    fn deregistering_an_image_frees_its_name_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let old = image("golden");
        let id = old.metadata.name.clone();
        {
            let store = Store::open(dir.path()).unwrap();
            store.create_image(&old).unwrap();
            assert!(
                !store.deregister_image(&id, "eu-west-1").unwrap(),
                "another region's"
            );
            assert!(store.deregister_image(&id, REGION).unwrap());
            assert!(!store.deregister_image(&id, REGION).unwrap(), "once");
            let marked = store.images().get(&id).unwrap().unwrap();
            assert!(marked.spec.deregistered);
            assert_eq!(marked.metadata.generation, old.metadata.generation + 1);
            assert!(store.image_names.is_empty());
            futures::executor::block_on(store.flush()).unwrap();
        }
        // The record waits for the reconciler; opening again does not give it its name back.
        let store = crate::store::reopen(dir.path());
        assert!(store.image_names.is_empty());
        store.create_image(&image("golden")).unwrap();
        assert!(store
            .deregister_image("ami-0000000000000beef", REGION)
            .is_ok_and(|done| !done));
    }
}
