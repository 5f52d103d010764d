//! Persistence of desired state (spec) and observed state (status) in an embedded sled store; the only module that knows sled.
//!
//! Every kind gets two trees: `<kind>.spec`, written only by the API, and `<kind>.status`,
//! written only by the reconciler, so the two writers never race on one value (the
//! Kubernetes status subresource). Values are JSON: the spec tree holds
//! `{apiVersion, kind, metadata, spec}`, the status tree holds the status object, and
//! reads join them into one Kubernetes-shaped document.

mod collection;
mod error;

use std::path::Path;

use futures::stream::BoxStream;
use futures::StreamExt;

pub use collection::{Change, Collection, CorruptRecord, Listing};
pub use error::StoreError;

use crate::model::{
    Image, ImageSpec, ImageStatus, InstanceSpec, InstanceStatus, KeyPairSpec, KeyPairStatus,
};
use crate::model::{SecurityGroupSpec, SecurityGroupStatus};

/// Which collection a watch event or key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KindKey {
    /// The instances collection.
    Instance,
    /// The CreateImage collection.
    Image,
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
    /// RunInstances' ClientToken index: `<region>/<token>` -> the instance ids it launched.
    client_tokens: sled::Tree,
    id: std::sync::Arc<str>,
    instances: Collection<InstanceSpec, InstanceStatus>,
    images: Collection<ImageSpec, ImageStatus>,
    catalog: Collection<ImageSpec, ImageStatus>,
    key_pairs: Collection<KeyPairSpec, KeyPairStatus>,
    security_groups: Collection<SecurityGroupSpec, SecurityGroupStatus>,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let db = sled::Config::new()
            .path(dir.join("db"))
            .flush_every_ms(Some(200))
            .open()
            .map_err(StoreError::from)?;
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
        Ok(Self {
            client_tokens: db.open_tree("instances.client-tokens")?,
            id: id.into(),
            instances: Collection::open(&db, "instances", crate::model::INSTANCE_KIND)?,
            images: Collection::open(&db, "images", crate::model::IMAGE_KIND)?,
            catalog: Collection::open(&db, "catalog", crate::model::IMAGE_KIND)?,
            key_pairs: Collection::open(&db, "key_pairs", crate::model::KEY_PAIR_KIND)?,
            security_groups: Collection::open(
                &db,
                "security_groups",
                crate::model::SECURITY_GROUP_KIND,
            )?,
            db,
        })
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

    /// Key pairs: spec from CreateKeyPair/ImportKeyPair; no reconciler, so the status stays empty.
    pub fn key_pairs(&self) -> &Collection<KeyPairSpec, KeyPairStatus> {
        &self.key_pairs
    }

    /// Security groups: spec from CreateSecurityGroup and the rule actions; no reconciler
    /// (instances copy their ports at launch), so the status stays empty.
    pub fn security_groups(&self) -> &Collection<SecurityGroupSpec, SecurityGroupStatus> {
        &self.security_groups
    }

    /// Creates the instances of one RunInstances call, recording its ClientToken (when
    /// given) in the same transaction, so a retried call finds them without a scan.
    pub fn create_instances(
        &self,
        instances: &[crate::model::Instance],
        region: &str,
        client_token: Option<&str>,
    ) -> Result<(), StoreError> {
        match client_token {
            None => self.instances.create(instances),
            Some(token) => {
                let ids: Vec<&str> = instances.iter().map(|i| i.metadata.name.as_str()).collect();
                let value =
                    serde_json::to_vec(&ids).map_err(|e| StoreError::Backend(e.to_string()))?;
                let key = format!("{region}/{token}");
                self.instances.create_indexed(
                    instances,
                    Some((&self.client_tokens, key.as_bytes(), &value)),
                )
            }
        }
    }

    /// The ids of the instances a RunInstances call with this ClientToken launched in the
    /// region (empty when the token is new, or its instances were collected since).
    pub fn instances_for_client_token(
        &self,
        region: &str,
        token: &str,
    ) -> Result<Vec<String>, StoreError> {
        let key = format!("{region}/{token}");
        let Some(bytes) = self.client_tokens.get(key.as_bytes())? else {
            return Ok(Vec::new());
        };
        let ids: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            kind: "ClientToken",
            key,
            reason: e.to_string(),
        })?;
        Ok(ids)
    }

    /// Looks an AMI up by id: a CreateImage record first, then the Docker catalog.
    pub fn find_image(&self, id: &str) -> Result<Option<Image>, StoreError> {
        match self.images.get(id)? {
            Some(image) => Ok(Some(image)),
            None => self.catalog.get(id),
        }
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
        futures::stream::select(instances, images).boxed()
    }

    /// Whether the store answers (a read of its metadata succeeds).
    pub fn is_healthy(&self) -> bool {
        self.db.get(b"health").is_ok()
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
