//! AttachVolume's write: the volume's new attachment and its device's entry in `volumes.devices` (`<instance>/<device>` to the volume attached there) in one transaction, so two volumes never take one device of one instance.

use sled::transaction::{
    abort, ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::Transactional;

use super::{client_token_key, Store, StoreError};
use crate::model::Volume;

/// What an attachment write came to.
#[derive(Debug)]
pub enum VolumeAttach {
    /// Written: the record after.
    Done(Box<Volume>),
    /// The record moved on since the caller read it: nothing written.
    Changed,
    /// No such record.
    Missing,
    /// Another volume is attached to the instance at that device (its id): nothing written.
    DeviceTaken(String),
}

/// The `volumes.devices` key of a device of an instance (the device without `/dev/`).
pub(super) fn device_key(instance_id: &str, device: &str) -> Vec<u8> {
    let device = device.strip_prefix("/dev/").unwrap_or(device);
    format!("{instance_id}/{device}").into_bytes()
}

/// Whether `volume` is attached (in its spec) to `instance_id` at `device`.
fn holds(volume: &Volume, instance_id: &str, device: &str) -> bool {
    let key = device_key(instance_id, device);
    volume
        .spec
        .attachments
        .iter()
        .any(|a| device_key(&a.instance_id, &a.device) == key)
}

impl Store {
    /// The volumes whose records attach them to `instance_id` (in force or not: the caller
    /// decides), found through `volumes.devices` (`<instance>/…` entries, written by launches
    /// and AttachVolume) rather than by reading every volume: an instance's pass and a
    /// one-instance Describe stay independent of how many volumes the store holds. Stale
    /// entries (a volume detached since, or collected) are skipped.
    pub fn volumes_of_instance(
        &self,
        instance_id: &str,
    ) -> Result<Vec<std::sync::Arc<Volume>>, StoreError> {
        let prefix = format!("{instance_id}/");
        let mut found: Vec<std::sync::Arc<Volume>> = Vec::new();
        for entry in self.volume_devices.scan_prefix(prefix.as_bytes()) {
            let (_, holder) = entry?;
            let id = String::from_utf8_lossy(&holder);
            let Some(volume) = self.volumes.get_shared(&id)? else {
                continue;
            };
            let names = volume
                .spec
                .attachments
                .iter()
                .any(|a| a.instance_id == instance_id);
            if names
                && !found
                    .iter()
                    .any(|v| v.metadata.name == volume.metadata.name)
            {
                found.push(volume);
            }
        }
        Ok(found)
    }

    /// The instances whose `volumes.devices` entries name `volume_id` (attached now, or
    /// detached since: the entry stays until another volume takes the device), without
    /// reading any record.
    pub fn instances_with_volume_entries(
        &self,
        volume_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = Vec::new();
        for entry in self.volume_devices.iter() {
            let (key, holder) = entry?;
            if holder.as_ref() == volume_id.as_bytes() {
                let key = String::from_utf8_lossy(&key);
                if let Some((instance, _)) = key.split_once('/') {
                    if !out.iter().any(|i| i == instance) {
                        out.push(instance.to_string());
                    }
                }
            }
        }
        Ok(out)
    }

    /// Collects a volume's record and, in the same transaction, the `volumes.devices` entries
    /// still naming it (a device it was detached from and no other volume took since): an
    /// instance's index keeps only volumes that exist. Its CreateVolume ClientToken entry goes
    /// too: SDKs send a fresh token with every call, so entries left behind would grow the
    /// store for as long as it lives.
    pub fn collect_volume(&self, volume_id: &str) -> Result<(), StoreError> {
        let volumes = &self.volumes;
        let id = volume_id.as_bytes();
        let token_key = volumes.get_shared(volume_id)?.and_then(|volume| {
            let token = volume.spec.client_token.as_deref()?;
            Some(client_token_key(&volume.metadata.namespace, token))
        });
        let mut keys = Vec::new();
        for entry in self.volume_devices.iter() {
            let (key, holder) = entry?;
            if holder.as_ref() == id {
                keys.push(key);
            }
        }
        let writing = volumes.writing_ids([id]);
        (
            volumes.spec_tree(),
            volumes.status_tree(),
            &self.volume_devices,
            &self.volume_tokens,
        )
            .transaction(|(spec, status, devices, tokens)| {
                spec.remove(id)?;
                status.remove(id)?;
                if let Some(key) = &token_key {
                    if tokens.get(key)?.is_some_and(|holder| holder.as_ref() == id) {
                        tokens.remove(key.as_slice())?;
                    }
                }
                for key in &keys {
                    // Taken by another volume meanwhile: that entry is its.
                    if devices
                        .get(key)?
                        .is_some_and(|holder| holder.as_ref() == id)
                    {
                        devices.remove(key)?;
                    }
                }
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::from(e),
            })?;
        volumes.forget(volume_id);
        drop(writing);
        Ok(())
    }

    fn read_volume(
        &self,
        spec: &TransactionalTree,
        id: &[u8],
    ) -> ConflictableTransactionResult<Option<Volume>, StoreError> {
        let Some(bytes) = spec.get(id)? else {
            return Ok(None);
        };
        self.volumes
            .decode_object(id, &bytes, None)
            .map(Some)
            .map_err(ConflictableTransactionError::Abort)
    }

    /// Writes `after`, the volume read at resource version `version` with one more attachment
    /// (to `instance_id` at `device`), as a new generation, and claims the device's entry, in
    /// one transaction. An entry whose volume no longer records that attachment (detached,
    /// collected) is stale and taken over, so detaching needs no write of its own here.
    pub fn attach_volume(
        &self,
        after: &Volume,
        version: u64,
        instance_id: &str,
        device: &str,
    ) -> Result<VolumeAttach, StoreError> {
        let volumes = &self.volumes;
        let id = after.metadata.name.as_bytes();
        let key = device_key(instance_id, device);
        let writing = volumes.writing_ids([id]);
        let outcome = (volumes.spec_tree(), &self.volume_devices)
            .transaction(|(spec, devices)| {
                let Some(current) = self.read_volume(spec, id)? else {
                    return Ok(VolumeAttach::Missing);
                };
                if current.metadata.resource_version != version {
                    return Ok(VolumeAttach::Changed);
                }
                if let Some(holder) = devices.get(&key)? {
                    if holder.as_ref() != id {
                        if let Some(other) = self.read_volume(spec, &holder)? {
                            if holds(&other, instance_id, device) {
                                return Ok(VolumeAttach::DeviceTaken(other.metadata.name));
                            }
                        }
                    }
                }
                let mut written = after.clone();
                written.metadata.generation = current.metadata.generation + 1;
                written.metadata.resource_version = version + 1;
                let bytes = match volumes.encode_spec(&written) {
                    Ok(bytes) => bytes,
                    Err(e) => return abort(e),
                };
                spec.insert(id, bytes)?;
                devices.insert(key.as_slice(), id)?;
                Ok(VolumeAttach::Done(Box::new(written)))
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => e.into(),
            })?;
        drop(writing);
        if let VolumeAttach::Done(_) = outcome {
            volumes.make_durable()?;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    #[test]
    fn collecting_a_volume_prunes_its_device_entries_and_leaves_others() {
        let store = Store::temporary().unwrap();
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let mut spec = fixtures::volume_spec("us-east-1a", "gp3", 1);
        fixtures::attach(&mut spec, "i-1", "/dev/sdf", false, now);
        let gone = fixtures::volume_of("vol-00000000000000001", spec.clone(), now);
        let kept = fixtures::volume_of(
            "vol-00000000000000002",
            {
                let mut s = fixtures::volume_spec("us-east-1a", "gp3", 1);
                fixtures::attach(&mut s, "i-1", "/dev/sdg", false, now);
                s
            },
            now,
        );
        store.create_volume(&gone).unwrap();
        store.create_volume(&kept).unwrap();
        // Detached (the entry stays, stale), then collected: the entry goes with the record.
        store
            .volumes()
            .update_spec::<StoreError>("vol-00000000000000001", |v| {
                v.spec.attachments.clear();
                Ok(true)
            })
            .unwrap();
        assert_eq!(
            store
                .instances_with_volume_entries("vol-00000000000000001")
                .unwrap(),
            ["i-1"]
        );
        store.collect_volume("vol-00000000000000001").unwrap();
        assert!(store
            .volumes()
            .get("vol-00000000000000001")
            .unwrap()
            .is_none());
        assert!(store
            .instances_with_volume_entries("vol-00000000000000001")
            .unwrap()
            .is_empty());
        assert_eq!(store.volume_devices.len(), 1);
        let left = store.volumes_of_instance("i-1").unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].metadata.name, "vol-00000000000000002");
    }

    fn volume(id: &str) -> Volume {
        fixtures::volume(id, "us-east-1a", 8)
    }

    fn attached(v: &Volume, instance: &str, device: &str) -> Volume {
        let mut v = v.clone();
        fixtures::attach(&mut v.spec, instance, device, false, crate::model::now());
        v
    }

    #[test]
    fn racing_volumes_never_share_a_device() {
        let store = Store::temporary().unwrap();
        let ids: Vec<String> = (0..8).map(|n| format!("vol-0000000000000000{n}")).collect();
        for id in &ids {
            store.volumes().create(&[volume(id)]).unwrap();
        }
        let done: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = ids
                .iter()
                .map(|id| {
                    let store = store.clone();
                    s.spawn(move || {
                        let v = store.volumes().get(id).unwrap().unwrap();
                        let after = attached(&v, "i-0123456789abcdef0", "/dev/sdf");
                        let version = v.metadata.resource_version;
                        matches!(
                            store
                                .attach_volume(&after, version, "i-0123456789abcdef0", "sdf")
                                .unwrap(),
                            VolumeAttach::Done(_)
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(done.iter().filter(|d| **d).count(), 1, "{done:?}");
        // The same device of another instance is free.
        let loser = ids
            .iter()
            .map(|id| store.volumes().get(id).unwrap().unwrap())
            .find(|v| v.spec.attachments.is_empty())
            .expect("seven volumes lost");
        let after = attached(&loser, "i-0123456789abcdef1", "/dev/sdf");
        assert!(matches!(
            store
                .attach_volume(
                    &after,
                    loser.metadata.resource_version,
                    "i-0123456789abcdef1",
                    "/dev/sdf"
                )
                .unwrap(),
            VolumeAttach::Done(_)
        ));
    }

    #[test]
    fn a_detached_volume_frees_its_device_and_a_stale_version_is_changed() {
        let store = Store::temporary().unwrap();
        store
            .volumes()
            .create(&[volume("vol-00000000000000001")])
            .unwrap();
        store
            .volumes()
            .create(&[volume("vol-00000000000000002")])
            .unwrap();
        let a = store
            .volumes()
            .get("vol-00000000000000001")
            .unwrap()
            .unwrap();
        let after = attached(&a, "i-0123456789abcdef0", "/dev/sdf");
        assert!(matches!(
            store
                .attach_volume(
                    &after,
                    a.metadata.resource_version,
                    "i-0123456789abcdef0",
                    "/dev/sdf"
                )
                .unwrap(),
            VolumeAttach::Done(_)
        ));
        // The same read again: the record moved on.
        assert!(matches!(
            store
                .attach_volume(
                    &after,
                    a.metadata.resource_version,
                    "i-0123456789abcdef0",
                    "/dev/sdf"
                )
                .unwrap(),
            VolumeAttach::Changed
        ));
        let b = store
            .volumes()
            .get("vol-00000000000000002")
            .unwrap()
            .unwrap();
        let b_after = attached(&b, "i-0123456789abcdef0", "sdf");
        match store
            .attach_volume(
                &b_after,
                b.metadata.resource_version,
                "i-0123456789abcdef0",
                "sdf",
            )
            .unwrap()
        {
            VolumeAttach::DeviceTaken(holder) => assert_eq!(holder, "vol-00000000000000001"),
            other => panic!("{other:?}"),
        }
        // Detached (the spec no longer records it): the entry is stale and taken over.
        store
            .volumes()
            .update_spec("vol-00000000000000001", |v| {
                v.spec.attachments.clear();
                Ok::<_, StoreError>(true)
            })
            .unwrap();
        assert!(matches!(
            store
                .attach_volume(
                    &b_after,
                    b.metadata.resource_version,
                    "i-0123456789abcdef0",
                    "sdf"
                )
                .unwrap(),
            VolumeAttach::Done(_)
        ));
        assert!(matches!(
            store
                .attach_volume(&b_after, 99, "i-0123456789abcdef0", "sdf")
                .unwrap(),
            VolumeAttach::Changed
        ));
        assert!(matches!(
            store
                .attach_volume(
                    &volume("vol-00000000000000003"),
                    1,
                    "i-0123456789abcdef0",
                    "sdg"
                )
                .unwrap(),
            VolumeAttach::Missing
        ));
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;
    use crate::model::{fixtures, VolumeId};
    use crate::store::CLIENT_TOKEN_KIND;

    #[test]
    fn racing_creates_with_one_client_token_create_once() {
        let store = Store::temporary().unwrap();
        let results: Vec<Result<String, StoreError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let store = store.clone();
                    s.spawn(move || {
                        let id = VolumeId::generate().to_string();
                        let mut v = fixtures::volume(&id, "us-east-1a", 8);
                        v.spec.client_token = Some("tok".into());
                        store.create_volume(&v).map(|()| id)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let made: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(made.len(), 1, "{results:?}");
        for r in &results {
            match r {
                Ok(_) => {}
                Err(StoreError::NameTaken { kind, holder, .. }) => {
                    assert_eq!(*kind, CLIENT_TOKEN_KIND);
                    assert_eq!(holder, made[0]);
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(store.volumes().list().unwrap().objects.len(), 1);
        assert_eq!(
            store
                .volume_for_client_token("us-east-1", "tok")
                .unwrap()
                .as_ref(),
            Some(made[0])
        );
        assert_eq!(
            store.volume_for_client_token("eu-west-1", "tok").unwrap(),
            None
        );
        // Collected: the token is free again, and its entry is gone with the record.
        store.collect_volume(made[0]).unwrap();
        assert_eq!(
            store.volume_for_client_token("us-east-1", "tok").unwrap(),
            None
        );
        assert!(store.volume_tokens.is_empty());
    }

    #[test]
    fn collecting_a_volume_leaves_a_token_another_volume_took() {
        let store = Store::temporary().unwrap();
        let mut first = fixtures::volume(&VolumeId::generate().to_string(), "us-east-1a", 8);
        first.spec.client_token = Some("tok".into());
        store.create_volume(&first).unwrap();
        // As an older version left it: the entry already names another volume.
        let other = VolumeId::generate().to_string();
        store
            .volume_tokens
            .insert(client_token_key("us-east-1", "tok"), other.as_bytes())
            .unwrap();
        store.collect_volume(&first.metadata.name).unwrap();
        assert_eq!(
            store.volume_for_client_token("us-east-1", "tok").unwrap(),
            None,
            "the entry names a volume that does not exist"
        );
        assert_eq!(
            store.volume_tokens.len(),
            1,
            "another volume's entry is kept"
        );
    }
}
