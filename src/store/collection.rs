//! One kind's pair of trees (spec and status), with typed reads, compare-and-swap spec updates and a spec watch.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{Object, ObjectMeta, API_VERSION};

/// The spec half of a document, as stored in the spec tree.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecDoc<S> {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: S,
}

/// A record that could not be decoded: reported and skipped, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CorruptRecord {
    /// The kind of the record.
    pub kind: &'static str,
    /// Its key, lossily decoded.
    pub key: String,
    /// Why it could not be read.
    pub reason: String,
}

/// The result of listing a collection: every readable object (owned, or shared with the
/// decode cache), and what could not be read.
#[derive(Debug, Clone)]
pub struct Listing<O> {
    /// Decoded objects in key order.
    pub objects: Vec<O>,
    /// Records skipped because they could not be decoded.
    pub corrupt: Vec<CorruptRecord>,
}

/// An object before and after a spec update.
pub type Change<S, T> = (Object<S, T>, Object<S, T>);

/// The spec and status trees of one kind.
pub struct Collection<S, T: Default> {
    kind: &'static str,
    spec: sled::Tree,
    status: sled::Tree,
    decoded: Arc<Mutex<HashMap<sled::IVec, Decoded<S, T>>>>,
    /// Counts finished writes to either tree and the writes under way: a listing made while
    /// the count was `n` holds until it moves, and is never reused while a write is under way.
    /// Every write goes through this type or the store's transactions (sled's lock keeps any
    /// other process out), so nothing can change the trees without moving it.
    writes: Arc<WriteCount>,
    /// The last full listing and the write count it was made at. Repeated DescribeInstances
    /// over an unchanged store were mostly sled's iterator and comparing stored bytes.
    listed: Arc<Mutex<Option<CachedListing<S, T>>>>,
    _types: PhantomData<fn() -> (S, T)>,
}

/// A full listing and the write count it was made at.
type CachedListing<S, T> = (u64, Listing<Arc<Object<S, T>>>);

/// A collection's write counts: `finished` moves when a write ends, `under_way` is how many
/// have begun and not ended. A reader that has seen a write's effect somewhere else (a
/// transaction also writes index trees, which another request may read first) must not be
/// answered a listing made before it: while the write is under way no listing is reused, and
/// once it ends the count has moved.
#[derive(Default)]
struct WriteCount {
    finished: AtomicU64,
    under_way: AtomicU64,
}

impl WriteCount {
    /// The count a listing may be cached at, and whether no write is under way (a listing
    /// made while one is may be cached, but no cached listing is reused then). `under_way` is
    /// read first: a write that ended before this call moved `finished` before leaving it.
    fn settled(&self) -> (u64, bool) {
        let busy = self.under_way.load(Ordering::SeqCst) > 0;
        (self.finished.load(Ordering::SeqCst), !busy)
    }
}

/// Marks a write under way until dropped, then moves the collection's write count, so every
/// way out of a write (success, error, early return) ends the cached listing made before it.
pub(super) struct WriteDone<'a>(&'a WriteCount);

impl<'a> WriteDone<'a> {
    fn begin(count: &'a WriteCount) -> Self {
        count.under_way.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for WriteDone<'_> {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::SeqCst);
        self.0.under_way.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A document decoded from exactly these bytes. A read whose bytes are unchanged reuses the
/// object instead of parsing JSON again (DescribeInstances over a thousand instances was
/// mostly JSON decoding). sled stays the source of truth: the bytes are compared on every
/// read, so the cache only ever saves work and can never answer stale data.
struct Decoded<S, T: Default> {
    spec_bytes: sled::IVec,
    status_bytes: Option<sled::IVec>,
    /// Shared, so a read hands out a reference count instead of a deep copy.
    object: Arc<Object<S, T>>,
}

impl<S, T: Default> Clone for Collection<S, T> {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            spec: self.spec.clone(),
            status: self.status.clone(),
            decoded: Arc::clone(&self.decoded),
            writes: Arc::clone(&self.writes),
            listed: Arc::clone(&self.listed),
            _types: PhantomData,
        }
    }
}

/// Whether two values hold the same bytes. sled hands out the same shared buffer for a value
/// that has not been rewritten, so identity answers most checks without comparing contents.
fn same_bytes(a: &sled::IVec, b: &sled::IVec) -> bool {
    let (a, b) = (a.as_ref(), b.as_ref());
    std::ptr::eq(a, b) || a == b
}

fn encode<V: Serialize>(value: &V) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Backend(format!("encoding: {e}")))
}

impl<S, T> Collection<S, T>
where
    S: Serialize + DeserializeOwned + Clone,
    T: Serialize + DeserializeOwned + Default + Clone,
{
    pub(super) fn open(
        db: &sled::Db,
        tree_prefix: &str,
        kind: &'static str,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            kind,
            spec: db.open_tree(format!("{tree_prefix}.spec"))?,
            status: db.open_tree(format!("{tree_prefix}.status"))?,
            decoded: Arc::default(),
            writes: Arc::default(),
            listed: Arc::default(),
            _types: PhantomData,
        })
    }

    /// Call at the start of every write; the write counts as done when the guard drops.
    pub(super) fn writing(&self) -> WriteDone<'_> {
        WriteDone::begin(&self.writes)
    }

    /// The spec tree, for the store's transactions over several trees (which take
    /// [`Collection::writing`] themselves).
    pub(super) fn spec_tree(&self) -> &sled::Tree {
        &self.spec
    }

    /// The status tree, for the store's transactions over several trees.
    pub(super) fn status_tree(&self) -> &sled::Tree {
        &self.status
    }

    /// Drops an object's decoded copy (after a delete).
    pub(super) fn forget(&self, id: &str) {
        self.decoded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id.as_bytes());
    }

    /// The bytes of an object's spec document as the spec tree holds them.
    pub(super) fn encode_spec(&self, object: &Object<S, T>) -> Result<Vec<u8>, StoreError> {
        encode(&SpecDoc {
            api_version: API_VERSION.to_string(),
            kind: self.kind.to_string(),
            metadata: object.metadata.clone(),
            spec: object.spec.clone(),
        })
    }

    /// Decodes a spec document and a status read inside a transaction into an object.
    pub(super) fn decode_object(
        &self,
        key: &[u8],
        spec_bytes: &[u8],
        status_bytes: Option<&[u8]>,
    ) -> Result<Object<S, T>, StoreError> {
        let doc = self.decode_spec(key, spec_bytes)?;
        Ok(self.join(doc, self.decode_status(key, status_bytes)))
    }

    fn corrupt(&self, key: &[u8], reason: impl ToString) -> StoreError {
        StoreError::Corrupt {
            kind: self.kind,
            key: String::from_utf8_lossy(key).into_owned(),
            reason: reason.to_string(),
        }
    }

    fn decode_spec(&self, key: &[u8], bytes: &[u8]) -> Result<SpecDoc<S>, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| self.corrupt(key, e))
    }

    /// A status that cannot be decoded reads as "nothing observed": the reconciler will
    /// observe again and overwrite it, so one bad status never hides its object.
    fn read_status(&self, key: &[u8]) -> Result<T, StoreError> {
        Ok(self.decode_status(key, self.status.get(key)?.as_deref()))
    }

    fn decode_status(&self, key: &[u8], bytes: Option<&[u8]>) -> T {
        match bytes {
            None => T::default(),
            Some(bytes) => serde_json::from_slice(bytes).unwrap_or_else(|e| {
                tracing::error!(kind = self.kind, key = %String::from_utf8_lossy(key), error = %e, "corrupt status record ignored");
                T::default()
            }),
        }
    }

    fn join(&self, doc: SpecDoc<S>, status: T) -> Object<S, T> {
        Object {
            api_version: doc.api_version,
            kind: doc.kind,
            metadata: doc.metadata,
            spec: doc.spec,
            status,
        }
    }

    /// Inserts new objects atomically, all of them or none, with no index entries: for kinds
    /// without names to keep unique, and for tests (the API's creates go through `Store`'s
    /// named creates in `names.rs`, which write the index in the same transaction).
    pub fn create(&self, objects: &[Object<S, T>]) -> Result<(), StoreError> {
        let writing = self.writing();
        let mut encoded = Vec::with_capacity(objects.len());
        for object in objects {
            encoded.push((object.metadata.name.clone(), self.encode_spec(object)?));
        }
        let kind = self.kind;
        if let [(id, bytes)] = encoded.as_slice() {
            // One object needs no transaction: an insert-if-absent is atomic by itself, and
            // it writes one log entry where a transaction adds a batch manifest, so the
            // flush below has half the work (most launches are of one instance).
            return match self.spec.compare_and_swap(
                id.as_bytes(),
                None as Option<&[u8]>,
                Some(bytes.as_slice()),
            )? {
                Ok(()) => {
                    drop(writing);
                    self.make_durable()
                }
                Err(_) => Err(StoreError::AlreadyExists {
                    kind,
                    id: id.clone(),
                }),
            };
        }
        self.spec
            .transaction(|tx| {
                for (id, bytes) in &encoded {
                    if tx.get(id.as_bytes())?.is_some() {
                        return sled::transaction::abort(StoreError::AlreadyExists {
                            kind,
                            id: id.clone(),
                        });
                    }
                    tx.insert(id.as_bytes(), bytes.as_slice())?;
                }
                Ok(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Abort(e) => e,
                sled::transaction::TransactionError::Storage(e) => e.into(),
            })?;
        // The write is visible once committed: listings need not wait for the fsync.
        drop(writing);
        self.make_durable()
    }

    /// Forces desired state to disk before the API answers: an acknowledged request must
    /// survive a SIGKILL. Status needs no such care (the reconciler observes it again), so
    /// only spec writes pay for the fsync. Inside [`super::deferring`] (an API request) the
    /// flush is left to the caller, which awaits a group commit before answering; anywhere
    /// else it happens here, blocking.
    pub(super) fn make_durable(&self) -> Result<(), StoreError> {
        if super::commit::defer_flush() {
            return Ok(());
        }
        self.spec.flush()?;
        Ok(())
    }

    /// Reads one object (spec joined with status).
    pub fn get(&self, id: &str) -> Result<Option<Object<S, T>>, StoreError> {
        Ok(self.get_shared(id)?.map(Arc::unwrap_or_clone))
    }

    /// Reads one object, shared with the decode cache (no copy): for readers that only look.
    pub fn get_shared(&self, id: &str) -> Result<Option<Arc<Object<S, T>>>, StoreError> {
        let Some(bytes) = self.spec.get(id.as_bytes())? else {
            return Ok(None);
        };
        self.read(&sled::IVec::from(id.as_bytes()), bytes).map(Some)
    }

    /// Joins a spec with its status, decoding only what changed since the last read.
    fn read(
        &self,
        key: &sled::IVec,
        spec_bytes: sled::IVec,
    ) -> Result<Arc<Object<S, T>>, StoreError> {
        let status_bytes = self.status.get(key)?;
        self.join_bytes(key, spec_bytes, status_bytes)
    }

    /// Joins a spec's bytes with its status' bytes, decoding only what changed since the
    /// last read.
    fn join_bytes(
        &self,
        key: &sled::IVec,
        spec_bytes: sled::IVec,
        status_bytes: Option<sled::IVec>,
    ) -> Result<Arc<Object<S, T>>, StoreError> {
        let mut decoded = self.decoded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = decoded.get(key) {
            if same_bytes(&hit.spec_bytes, &spec_bytes)
                && match (&hit.status_bytes, &status_bytes) {
                    (Some(cached), Some(stored)) => same_bytes(cached, stored),
                    (None, None) => true,
                    _ => false,
                }
            {
                return Ok(Arc::clone(&hit.object));
            }
        }
        let doc = self.decode_spec(key, &spec_bytes)?;
        let object = Arc::new(self.join(doc, self.decode_status(key, status_bytes.as_deref())));
        decoded.insert(
            key.clone(),
            Decoded {
                spec_bytes,
                status_bytes,
                object: Arc::clone(&object),
            },
        );
        Ok(object)
    }

    /// Reads every object; undecodable records are skipped and reported, never fatal.
    pub fn list(&self) -> Result<Listing<Object<S, T>>, StoreError> {
        let shared = self.list_shared()?;
        Ok(Listing {
            objects: shared
                .objects
                .into_iter()
                .map(Arc::unwrap_or_clone)
                .collect(),
            corrupt: shared.corrupt,
        })
    }

    /// Like [`Collection::list`], sharing the objects with the decode cache (no copies):
    /// listing a thousand instances hands out a thousand reference counts.
    pub fn list_shared(&self) -> Result<Listing<Arc<Object<S, T>>>, StoreError> {
        // Read before walking the trees: a write that lands during the walk moves the count
        // past this one, so a listing that may have missed it is never reused.
        let (writes, settled) = self.writes.settled();
        if let Some((at, listing)) = &*self.listed.lock().unwrap_or_else(|p| p.into_inner()) {
            if settled && *at == writes {
                return Ok(listing.clone());
            }
        }
        let listing = self.list_trees()?;
        *self.listed.lock().unwrap_or_else(|p| p.into_inner()) = Some((writes, listing.clone()));
        Ok(listing)
    }

    /// Walks both trees: every object, decoding only what changed since the last read.
    fn list_trees(&self) -> Result<Listing<Arc<Object<S, T>>>, StoreError> {
        let mut objects = Vec::new();
        let mut corrupt = Vec::new();
        // Both trees are walked side by side in key order (a merge join): one pass over
        // each instead of a status lookup per object.
        let mut statuses = self.status.iter().peekable();
        for entry in self.spec.iter() {
            let (key, bytes) = entry?;
            let mut status_bytes = None;
            while let Some(next) = statuses.peek() {
                let Ok((status_key, _)) = next else {
                    // Surface the storage error from the iterator.
                    statuses.next().transpose()?;
                    break;
                };
                match status_key.as_ref().cmp(key.as_ref()) {
                    std::cmp::Ordering::Less => {
                        statuses.next();
                    }
                    std::cmp::Ordering::Equal => {
                        status_bytes = statuses.next().transpose()?.map(|(_, v)| v);
                        break;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
            match self.join_bytes(&key, bytes, status_bytes) {
                Ok(object) => objects.push(object),
                Err(StoreError::Corrupt { kind, key, reason }) => {
                    tracing::error!(kind, %key, %reason, "corrupt record skipped");
                    corrupt.push(CorruptRecord { kind, key, reason });
                }
                Err(other) => return Err(other),
            }
        }
        Ok(Listing { objects, corrupt })
    }

    /// The ids of every object, cheaply (no decoding), for resyncs.
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        self.spec
            .iter()
            .keys()
            .map(|k| {
                k.map(|k| String::from_utf8_lossy(&k).into_owned())
                    .map_err(StoreError::from)
            })
            .collect()
    }

    /// How many objects are stored.
    pub fn len(&self) -> usize {
        self.spec.len()
    }

    /// Whether the collection is empty.
    pub fn is_empty(&self) -> bool {
        self.spec.is_empty()
    }

    /// Changes an object's spec with a compare-and-swap loop. `change` sees the whole object
    /// (status included, for guards) and returns whether it changed the spec; a change bumps
    /// `generation` and `resourceVersion`. Returns the object before and after.
    pub fn update_spec<E>(
        &self,
        id: &str,
        change: impl FnMut(&mut Object<S, T>) -> Result<bool, E>,
    ) -> Result<Change<S, T>, E>
    where
        E: From<StoreError>,
    {
        self.update(id, true, change)
    }

    /// Like [`Collection::update_spec`] for a change that asks nothing of the reconciler
    /// (tags): `resourceVersion` moves, `generation` does not, so an instance never reads
    /// `pending` or `stopping` because it was tagged.
    pub fn update_spec_same_generation<E>(
        &self,
        id: &str,
        change: impl FnMut(&mut Object<S, T>) -> Result<bool, E>,
    ) -> Result<Change<S, T>, E>
    where
        E: From<StoreError>,
    {
        self.update(id, false, change)
    }

    fn update<E>(
        &self,
        id: &str,
        bump_generation: bool,
        mut change: impl FnMut(&mut Object<S, T>) -> Result<bool, E>,
    ) -> Result<Change<S, T>, E>
    where
        E: From<StoreError>,
    {
        let writing = self.writing();
        loop {
            let Some(current_bytes) = self.spec.get(id.as_bytes()).map_err(StoreError::from)?
            else {
                return Err(StoreError::NotFound {
                    kind: self.kind,
                    id: id.to_string(),
                }
                .into());
            };
            let doc = self.decode_spec(id.as_bytes(), &current_bytes)?;
            let before = self.join(doc, self.read_status(id.as_bytes())?);
            let mut after = before.clone();
            if !change(&mut after)? {
                return Ok((before, after));
            }
            if bump_generation {
                after.metadata.generation = before.metadata.generation + 1;
            }
            after.metadata.resource_version = before.metadata.resource_version + 1;
            let new_doc = SpecDoc {
                api_version: after.api_version.clone(),
                kind: after.kind.clone(),
                metadata: after.metadata.clone(),
                spec: after.spec.clone(),
            };
            let new_bytes = encode(&new_doc)?;
            match self
                .spec
                .compare_and_swap(id.as_bytes(), Some(current_bytes), Some(new_bytes))
                .map_err(StoreError::from)?
            {
                Ok(()) => {
                    drop(writing);
                    self.make_durable()?;
                    return Ok((before, after));
                }
                // Another request changed the spec in between: re-read and re-apply.
                Err(_) => continue,
            }
        }
    }

    /// Writes an object's status. Only the reconciler calls this. A status for an object
    /// that no longer exists is dropped, so a late reconcile never resurrects a collected record.
    pub fn write_status(&self, id: &str, status: &T) -> Result<(), StoreError> {
        let _done = self.writing();
        if !self.spec.contains_key(id.as_bytes())? {
            return Ok(());
        }
        self.status.insert(id.as_bytes(), encode(status)?)?;
        Ok(())
    }

    /// Deletes an object, spec and status (garbage collection of finished records).
    pub fn delete(&self, id: &str) -> Result<(), StoreError> {
        let _done = self.writing();
        self.spec.remove(id.as_bytes())?;
        self.status.remove(id.as_bytes())?;
        self.forget(id);
        Ok(())
    }

    /// Deletes every object, undecodable ones and a status without its spec included (a reset).
    pub fn clear(&self) -> Result<(), StoreError> {
        let _done = self.writing();
        let mut ids = std::collections::BTreeSet::new();
        for tree in [&self.spec, &self.status] {
            for key in tree.iter().keys() {
                ids.insert(String::from_utf8_lossy(&key?).into_owned());
            }
        }
        for id in ids {
            self.delete(&id)?;
        }
        Ok(())
    }

    /// Replaces the whole collection with `objects` (for observed-state caches such as the
    /// AMI catalog), writing only what changed so the store is not rewritten on every resync.
    pub fn replace_all(&self, objects: &[Object<S, T>]) -> Result<(), StoreError>
    where
        S: PartialEq,
        T: PartialEq,
    {
        let _done = self.writing();
        let wanted: std::collections::BTreeMap<&str, &Object<S, T>> = objects
            .iter()
            .map(|o| (o.metadata.name.as_str(), o))
            .collect();
        for id in self.ids()? {
            if !wanted.contains_key(id.as_str()) {
                self.delete(&id)?;
            }
        }
        for (id, object) in wanted {
            let unchanged = matches!(self.get(id), Ok(Some(ref existing))
                if existing.spec == object.spec && existing.status == object.status);
            if !unchanged {
                self.spec.insert(id.as_bytes(), self.encode_spec(object)?)?;
                self.status.insert(id.as_bytes(), encode(&object.status)?)?;
            }
        }
        Ok(())
    }

    /// Ids whose spec was written or removed, as they happen. The subscription is taken
    /// when this is called, so changes made after the call are never missed.
    ///
    /// sled hands each write's event to a bounded channel (1024) while the writing
    /// transaction holds the tree's write lock, so a reader that falls 1024 events behind
    /// blocks the writer; if that reader is itself waiting on a sled read (the spec watch's
    /// consumer looks records up), both wait forever: RunInstances MaxCount=1000 after
    /// another launch hung ec2d this way. A thread of its own drains the subscription into an
    /// unbounded channel and never touches sled, so writers never wait on a consumer, and it
    /// needs no tokio worker (reconciles read sled on them, and could all be waiting too).
    pub fn watch_spec_ids(&self) -> BoxStream<'static, String> {
        let subscriber = self.spec.watch_prefix(Vec::new());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let drained = std::thread::Builder::new()
            .name(format!("{}-watch", self.kind))
            .spawn(move || {
                // Ends when the store closes (the iterator ends) or the stream was dropped
                // (the next send fails).
                for event in subscriber {
                    let id = String::from_utf8_lossy(event.key()).into_owned();
                    if tx.send(id).is_err() {
                        return;
                    }
                }
            });
        if let Err(error) = drained {
            tracing::error!(kind = self.kind, %error, "cannot start the spec watch thread");
        }
        tokio_stream::wrappers::UnboundedReceiverStream::new(rx).boxed()
    }

    /// Writes raw bytes under a spec key, bypassing encoding: only for tests of corrupt-record handling.
    #[doc(hidden)]
    pub fn insert_raw_spec_for_test(&self, id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let _done = self.writing();
        self.spec.insert(id.as_bytes(), bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::model::{fixtures, DesiredState, InstanceState};
    use crate::store::{Store, StoreError};

    #[test]
    fn create_get_update_status_roundtrip() {
        let store = Store::temporary().unwrap();
        let inst = fixtures::instance();
        let id = inst.metadata.name.clone();
        store
            .instances()
            .create(std::slice::from_ref(&inst))
            .unwrap();
        let again = store.instances().create(std::slice::from_ref(&inst));
        assert!(matches!(again, Err(StoreError::AlreadyExists { .. })));

        let (before, after) = store
            .instances()
            .update_spec::<StoreError>(&id, |o| {
                o.spec.desired = DesiredState::Stopped;
                Ok(true)
            })
            .unwrap();
        assert_eq!(before.metadata.generation, 1);
        assert_eq!(after.metadata.generation, 2);

        let mut status = after.status.clone();
        status.observed_generation = 2;
        status.state = Some(InstanceState::Stopped);
        store.instances().write_status(&id, &status).unwrap();
        let read = store.instances().get(&id).unwrap().unwrap();
        assert_eq!(read.spec.desired, DesiredState::Stopped);
        assert_eq!(read.status.state, Some(InstanceState::Stopped));
        assert_eq!(read.metadata.generation, 2);

        let unchanged = store
            .instances()
            .update_spec::<StoreError>(&id, |_| Ok(false))
            .unwrap();
        assert_eq!(unchanged.1.metadata.generation, 2);
    }

    #[test]
    fn reads_never_answer_stale_data_from_the_decode_cache() {
        let store = Store::temporary().unwrap();
        let inst = fixtures::instance();
        let id = inst.metadata.name.clone();
        let instances = store.instances();
        instances.create(std::slice::from_ref(&inst)).unwrap();
        assert_eq!(instances.get(&id).unwrap().unwrap().status.state, None);
        assert_eq!(instances.list().unwrap().objects.len(), 1);

        let mut status = inst.status.clone();
        status.state = Some(InstanceState::Running);
        instances.write_status(&id, &status).unwrap();
        assert_eq!(
            instances.get(&id).unwrap().unwrap().status.state,
            Some(InstanceState::Running)
        );
        assert_eq!(
            instances.list().unwrap().objects[0].status.state,
            Some(InstanceState::Running)
        );

        instances
            .update_spec::<StoreError>(&id, |o| {
                o.spec.desired = DesiredState::Stopped;
                Ok(true)
            })
            .unwrap();
        let read = instances.get(&id).unwrap().unwrap();
        assert_eq!(
            (read.spec.desired, read.metadata.generation),
            (DesiredState::Stopped, 2)
        );

        instances.delete(&id).unwrap();
        assert!(instances.get(&id).unwrap().is_none());
        assert!(instances.list().unwrap().objects.is_empty());
    }

    #[test]
    fn a_same_generation_update_moves_only_the_resource_version() {
        let store = Store::temporary().unwrap();
        let instances = store.instances();
        let inst = fixtures::instance();
        let id = inst.metadata.name.clone();
        instances.create(std::slice::from_ref(&inst)).unwrap();
        let (before, after) = instances
            .update_spec_same_generation::<StoreError>(&id, |o| {
                o.spec.tags.insert("Name".into(), "web".into());
                Ok(true)
            })
            .unwrap();
        assert_eq!(after.metadata.generation, before.metadata.generation);
        assert_eq!(
            after.metadata.resource_version,
            before.metadata.resource_version + 1
        );
        let read = instances.get(&id).unwrap().unwrap();
        assert_eq!(read.spec.tags.get("Name").map(String::as_str), Some("web"));
        assert_eq!(read.metadata.generation, before.metadata.generation);
    }

    #[test]
    fn a_cached_listing_never_outlives_a_write() {
        let store = Store::temporary().unwrap();
        let instances = store.instances();
        let first = fixtures::instance();
        let id = first.metadata.name.clone();
        instances.create(std::slice::from_ref(&first)).unwrap();
        let listed = instances.list_shared().unwrap();
        // Unchanged store: the very same objects come back.
        let again = instances.list_shared().unwrap();
        assert!(Arc::ptr_eq(&listed.objects[0], &again.objects[0]));

        let mut second = fixtures::instance();
        second.metadata.name = "i-0000000000000000b".into();
        instances.create(std::slice::from_ref(&second)).unwrap();
        assert_eq!(instances.list_shared().unwrap().objects.len(), 2);

        let mut status = first.status.clone();
        status.state = Some(InstanceState::Running);
        instances.write_status(&id, &status).unwrap();
        let states: Vec<_> = instances
            .list_shared()
            .unwrap()
            .objects
            .iter()
            .map(|o| (o.metadata.name.clone(), o.status.state))
            .collect();
        assert!(states.contains(&(id.clone(), Some(InstanceState::Running))));

        instances
            .update_spec::<StoreError>(&id, |o| {
                o.spec.desired = DesiredState::Stopped;
                Ok(true)
            })
            .unwrap();
        let listed = instances.list_shared().unwrap();
        let updated = listed
            .objects
            .iter()
            .find(|o| o.metadata.name == id)
            .unwrap();
        assert_eq!(updated.spec.desired, DesiredState::Stopped);

        instances.delete(&id).unwrap();
        let left: Vec<_> = instances
            .list_shared()
            .unwrap()
            .objects
            .iter()
            .map(|o| o.metadata.name.clone())
            .collect();
        assert_eq!(left, vec!["i-0000000000000000b".to_string()]);
    }

    #[test]
    fn a_listing_is_not_reused_while_a_write_is_under_way() {
        let store = Store::temporary().unwrap();
        let instances = store.instances();
        assert!(instances.list_shared().unwrap().objects.is_empty());
        let writing = instances.writing();
        // Committed but not yet counted, as a transaction's write is before its guard drops:
        // a reader that saw it elsewhere (an index tree) must see it in a listing too.
        let inst = fixtures::instance();
        let bytes = instances.encode_spec(&inst).unwrap();
        instances
            .spec
            .insert(inst.metadata.name.as_bytes(), bytes)
            .unwrap();
        assert_eq!(instances.list_shared().unwrap().objects.len(), 1);
        drop(writing);
        let listed = instances.list_shared().unwrap();
        assert_eq!(listed.objects.len(), 1);
        let again = instances.list_shared().unwrap();
        assert!(
            Arc::ptr_eq(&listed.objects[0], &again.objects[0]),
            "reused once settled"
        );
    }

    #[test]
    fn a_listing_made_during_concurrent_writes_sees_every_finished_write() {
        let store = Store::temporary().unwrap();
        let instances = store.instances().clone();
        let writer = {
            let instances = instances.clone();
            std::thread::spawn(move || {
                for n in 0..200u32 {
                    let mut inst = fixtures::instance();
                    inst.metadata.name = format!("i-{n:017x}");
                    instances.create(std::slice::from_ref(&inst)).unwrap();
                    // Once a write has returned, every later listing holds it.
                    let listed = instances.list_shared().unwrap();
                    assert_eq!(listed.objects.len(), n as usize + 1);
                }
            })
        };
        // A second reader lists all the while, filling the cache mid-write.
        let mut last = 0;
        while !writer.is_finished() {
            let seen = instances.list_shared().unwrap().objects.len();
            assert!(
                seen >= last,
                "a listing went back in time: {seen} after {last}"
            );
            last = seen;
        }
        writer.join().unwrap();
        assert_eq!(instances.list_shared().unwrap().objects.len(), 200);
    }

    #[test]
    fn corrupt_records_are_reported_and_skipped() {
        let store = Store::temporary().unwrap();
        let good = fixtures::instance();
        store
            .instances()
            .create(std::slice::from_ref(&good))
            .unwrap();
        store
            .instances()
            .insert_raw_spec_for_test("i-bad", b"{not json")
            .unwrap();
        let listing = store.instances().list().unwrap();
        assert_eq!(listing.objects.len(), 1);
        assert_eq!(listing.corrupt.len(), 1);
        assert_eq!(listing.corrupt[0].key, "i-bad");
        assert!(matches!(
            store.instances().get("i-bad"),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn status_for_deleted_object_is_dropped() {
        let store = Store::temporary().unwrap();
        let inst = fixtures::instance();
        let id = inst.metadata.name.clone();
        store
            .instances()
            .create(std::slice::from_ref(&inst))
            .unwrap();
        store.instances().delete(&id).unwrap();
        store.instances().write_status(&id, &inst.status).unwrap();
        assert!(store.instances().get(&id).unwrap().is_none());
        assert_eq!(store.instances().len(), 0);
    }

    #[tokio::test]
    async fn watch_reports_spec_writes() {
        use futures::StreamExt;
        let store = Store::temporary().unwrap();
        let mut watch = store.watch_specs();
        let inst = fixtures::instance();
        store
            .instances()
            .create(std::slice::from_ref(&inst))
            .unwrap();
        let changed = tokio::time::timeout(std::time::Duration::from_secs(5), watch.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(changed.id, inst.metadata.name);
    }

    /// More watched writes in one transaction than sled's subscriber channel holds, while
    /// the watch's consumer is busy reading the store, must not hang the writer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_transaction_never_waits_on_a_busy_watch_consumer() {
        use futures::StreamExt;
        let store = Store::temporary().unwrap();
        let mut watch = store.instances().watch_spec_ids();
        let batch = |n: usize| -> Vec<crate::model::Instance> {
            (0..n)
                .map(|_| {
                    let mut i = fixtures::instance();
                    i.metadata.name = crate::model::InstanceId::generate().to_string();
                    i
                })
                .collect()
        };
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                store.instances().create(&batch(1500)).unwrap();
                store.instances().create(&batch(1500)).unwrap();
            })
        };
        let mut seen = 0;
        let deadline = std::time::Duration::from_secs(30);
        while seen < 3000 {
            let id = tokio::time::timeout(deadline, watch.next())
                .await
                .expect("the writer hung")
                .unwrap();
            seen += 1;
            // The consumer reads the store, as the reconciler's spec watch does (on a thread
            // of its own, so a hang fails the test instead of stalling it).
            let reader = store.clone();
            tokio::time::timeout(
                deadline,
                tokio::task::spawn_blocking(move || reader.instances().get_shared(&id).unwrap()),
            )
            .await
            .expect("the read behind the writer hung")
            .unwrap();
        }
        writer.join().unwrap();
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let inst = fixtures::instance();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .instances()
                .create(std::slice::from_ref(&inst))
                .unwrap();
            futures::executor::block_on(store.flush()).unwrap();
        }
        let store = crate::store::reopen(dir.path());
        assert_eq!(
            store
                .instances()
                .get(&inst.metadata.name)
                .unwrap()
                .unwrap()
                .spec,
            inst.spec
        );
    }
}
