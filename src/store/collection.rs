//! One kind's pair of trees (spec and status), with typed reads, compare-and-swap spec updates and a spec watch.

use std::collections::HashMap;
use std::marker::PhantomData;
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
    /// The keys written since the cached listing last caught up with the trees. Every write
    /// goes through this type or the store's transactions (sled's lock keeps any other
    /// process out), and each marks what it writes, so nothing can change the trees unseen.
    written: Arc<Written>,
    /// The last listing, brought up to date on the next list by re-reading only the keys
    /// written since. Walking both trees of 10,000 instances took 6 ms, and a filtered
    /// Describe after any write (a launch, a status) paid it all.
    listed: Arc<Mutex<Option<CachedListing<S, T>>>>,
    /// How the kind's tags are read, for kinds whose listing keeps a tag index.
    tags_of: Option<TagsOf<S>>,
    /// Moves whenever the listing changes (see [`Collection::listing_version`]).
    listing_changes: Arc<std::sync::atomic::AtomicU64>,
    _types: PhantomData<fn() -> (S, T)>,
}

/// The objects a tag index names, shared with the decode cache; `None` without an index.
pub type Tagged<S, T> = Option<Vec<Arc<Object<S, T>>>>;

/// Reads a kind's tags from its spec.
pub type TagsOf<S> = fn(&S) -> &std::collections::BTreeMap<String, String>;

/// Object keys by tag key and value: a filter on one tag reads the few objects it names
/// instead of every object (each a cache miss: 10,000 took 4.5 ms).
type TagIndex = HashMap<String, HashMap<String, std::collections::BTreeSet<sled::IVec>>>;

/// A listing with the key of each object beside it (what a re-read key is found by).
struct CachedListing<S, T: Default> {
    keys: Vec<sled::IVec>,
    listing: Listing<Arc<Object<S, T>>>,
    by_tag: TagIndex,
}

/// Adds (or removes) the tag index entries of the object with these tags under `key`.
fn index_tags(
    by_tag: &mut TagIndex,
    tags: &std::collections::BTreeMap<String, String>,
    key: &sled::IVec,
    add: bool,
) {
    for (tag, value) in tags {
        if add {
            by_tag
                .entry(tag.clone())
                .or_default()
                .entry(value.clone())
                .or_default()
                .insert(key.clone());
        } else if let Some(values) = by_tag.get_mut(tag) {
            if let Some(keys) = values.get_mut(value) {
                keys.remove(key);
                if keys.is_empty() {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                by_tag.remove(tag);
            }
        }
    }
}

/// More keys written since the last list than this and the next list walks the trees
/// instead: it bounds the marks of a collection nobody lists, and past it a walk costs
/// about what the re-reads would.
const MAX_MARKED_KEYS: usize = 4096;

/// What was written since the last list: the keys of writes that ended since, and of writes
/// under way (re-read by every list until they end).
#[derive(Default)]
struct Written(Mutex<Marks>);

#[derive(Default)]
struct Marks {
    /// A write of unknown keys ended since the last list: the next list walks the trees.
    all: bool,
    ended: std::collections::HashSet<sled::IVec>,
    under_way: HashMap<sled::IVec, usize>,
    /// Writes of unknown keys begun and not ended: every list walks the trees meanwhile.
    unknown_under_way: usize,
}

/// The keys a list must re-read, or `None` when it must walk the trees.
type Reread = Option<Vec<sled::IVec>>;

impl Written {
    fn marks(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn begin(&self, keys: Option<&[sled::IVec]>) {
        let mut marks = self.marks();
        match keys {
            None => marks.unknown_under_way += 1,
            Some(keys) => {
                for key in keys {
                    *marks.under_way.entry(key.clone()).or_default() += 1;
                }
            }
        }
    }

    fn end(&self, keys: Option<&[sled::IVec]>) {
        let mut marks = self.marks();
        match keys {
            None => {
                marks.unknown_under_way -= 1;
                marks.all = true;
            }
            Some(keys) => {
                for key in keys {
                    if let Some(count) = marks.under_way.get_mut(key) {
                        *count -= 1;
                        if *count == 0 {
                            marks.under_way.remove(key);
                        }
                    }
                    if !marks.all {
                        marks.ended.insert(key.clone());
                    }
                }
            }
        }
        if marks.all || marks.ended.len() > MAX_MARKED_KEYS {
            marks.all = true;
            marks.ended.clear();
        }
    }

    /// What a list must re-read now; the ended writes are then forgotten.
    fn take(&self) -> Reread {
        let mut marks = self.marks();
        let all = std::mem::take(&mut marks.all) || marks.unknown_under_way > 0;
        let mut keys: Vec<sled::IVec> = marks.ended.drain().collect();
        if all {
            return None;
        }
        keys.extend(marks.under_way.keys().cloned());
        Some(keys)
    }
}

/// A write under way, from its start until the guard drops (however the write ends). Its
/// keys are re-read by every list while it is under way and by the first list after it
/// ends, so a listing never misses a finished write, and a reader that saw a write's effect
/// elsewhere (a transaction also writes index trees) finds it in the listing too: the keys
/// were marked before the write touched any tree.
pub(super) struct WriteDone<'a> {
    written: &'a Written,
    keys: Option<Vec<sled::IVec>>,
}

impl<'a> WriteDone<'a> {
    fn begin(written: &'a Written, keys: Option<Vec<sled::IVec>>) -> Self {
        written.begin(keys.as_deref());
        Self { written, keys }
    }
}

impl Drop for WriteDone<'_> {
    fn drop(&mut self) {
        self.written.end(self.keys.as_deref());
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
            written: Arc::clone(&self.written),
            listed: Arc::clone(&self.listed),
            tags_of: self.tags_of,
            listing_changes: Arc::clone(&self.listing_changes),
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
            written: Arc::default(),
            listed: Arc::default(),
            tags_of: None,
            listing_changes: Arc::default(),
            _types: PhantomData,
        })
    }

    /// Like [`Collection::open`], for a kind that takes tags: its listing keeps a tag index
    /// ([`Collection::list_tagged`]).
    pub(super) fn open_tagged(
        db: &sled::Db,
        tree_prefix: &str,
        kind: &'static str,
        tags_of: TagsOf<S>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            tags_of: Some(tags_of),
            ..Self::open(db, tree_prefix, kind)?
        })
    }

    /// Call at the start of a write whose keys are not known up front; the write counts as
    /// done when the guard drops, and the next list walks the trees.
    pub(super) fn writing(&self) -> WriteDone<'_> {
        WriteDone::begin(&self.written, None)
    }

    /// Call at the start of a write of these ids (and no others); the next list re-reads only them.
    pub(super) fn writing_ids<I: AsRef<[u8]>>(
        &self,
        ids: impl IntoIterator<Item = I>,
    ) -> WriteDone<'_> {
        let keys = ids
            .into_iter()
            .map(|id| sled::IVec::from(id.as_ref()))
            .collect();
        WriteDone::begin(&self.written, Some(keys))
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
        let writing = self.writing_ids(objects.iter().map(|o| o.metadata.name.as_bytes()));
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
        let cached = self.up_to_date()?;
        Ok(cached
            .as_ref()
            .map(|c| c.listing.clone())
            .unwrap_or_else(|| Listing {
                objects: Vec::new(),
                corrupt: Vec::new(),
            }))
    }

    /// The objects tagged `tag` with one of `values` (exactly), in key order; `None` when the
    /// kind keeps no tag index.
    pub fn list_tagged(&self, tag: &str, values: &[&str]) -> Result<Tagged<S, T>, StoreError> {
        if self.tags_of.is_none() {
            return Ok(None);
        }
        let cached = self.up_to_date()?;
        let Some(cached) = cached.as_ref() else {
            return Ok(Some(Vec::new()));
        };
        let mut keys: Vec<&sled::IVec> = match cached.by_tag.get(tag) {
            None => Vec::new(),
            Some(by_value) => values
                .iter()
                .filter_map(|v| by_value.get(*v))
                .flatten()
                .collect(),
        };
        keys.sort();
        keys.dedup();
        Ok(Some(
            keys.into_iter()
                .filter_map(|key| cached.keys.binary_search(key).ok())
                .map(|at| Arc::clone(&cached.listing.objects[at]))
                .collect(),
        ))
    }

    /// A number that moves whenever the listing changes: what is made from a listing (an
    /// order, a grouping) can be kept while it stays. Read it before listing, so what is made
    /// is never older than the number it is kept under.
    pub fn listing_version(&self) -> Result<u64, StoreError> {
        drop(self.up_to_date()?);
        Ok(self
            .listing_changes
            .load(std::sync::atomic::Ordering::SeqCst))
    }

    /// The cached listing, brought up to date with the trees: the keys written since it
    /// was made are re-read, or the trees walked when that is not known.
    fn up_to_date(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, Option<CachedListing<S, T>>>, StoreError> {
        let mut cached = self.listed.lock().unwrap_or_else(|p| p.into_inner());
        // Taken before reading: a write that ends after this marks its keys again.
        let reread = self.written.take();
        let changed = match (cached.as_mut(), reread) {
            (Some(listing), Some(keys)) => {
                let mut changed = false;
                for key in &keys {
                    match self.reread(listing, key) {
                        Ok(this) => changed |= this,
                        Err(e) => {
                            // Half brought up to date: the next list starts afresh.
                            *cached = None;
                            self.listing_changes
                                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            return Err(e);
                        }
                    }
                }
                changed
            }
            _ => {
                *cached = Some(self.list_trees()?);
                true
            }
        };
        if changed {
            self.listing_changes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(cached)
    }

    /// Brings one key of a cached listing up to date with the trees; whether it changed.
    fn reread(
        &self,
        cached: &mut CachedListing<S, T>,
        key: &sled::IVec,
    ) -> Result<bool, StoreError> {
        let at = cached.keys.binary_search(key);
        let lossy_key = String::from_utf8_lossy(key);
        cached.listing.corrupt.retain(|c| c.key != lossy_key);
        let read = match self.spec.get(key)? {
            None => None,
            Some(spec_bytes) => {
                let status_bytes = self.status.get(key)?;
                match self.join_bytes(key, spec_bytes, status_bytes) {
                    Ok(object) => Some(object),
                    Err(StoreError::Corrupt { kind, key, reason }) => {
                        tracing::error!(kind, %key, %reason, "corrupt record skipped");
                        cached
                            .listing
                            .corrupt
                            .push(CorruptRecord { kind, key, reason });
                        None
                    }
                    Err(other) => return Err(other),
                }
            }
        };
        if let Some(tags_of) = self.tags_of {
            if let Ok(i) = at {
                index_tags(
                    &mut cached.by_tag,
                    tags_of(&cached.listing.objects[i].spec),
                    key,
                    false,
                );
            }
            if let Some(object) = &read {
                index_tags(&mut cached.by_tag, tags_of(&object.spec), key, true);
            }
        }
        let objects = &mut cached.listing.objects;
        Ok(match (at, read) {
            (Ok(i), Some(object)) => {
                !Arc::ptr_eq(&std::mem::replace(&mut objects[i], object), &objects[i])
            }
            (Ok(i), None) => {
                objects.remove(i);
                cached.keys.remove(i);
                true
            }
            (Err(i), Some(object)) => {
                objects.insert(i, object);
                cached.keys.insert(i, key.clone());
                true
            }
            (Err(_), None) => false,
        })
    }

    /// Walks both trees: every object, decoding only what changed since the last read.
    fn list_trees(&self) -> Result<CachedListing<S, T>, StoreError> {
        let mut keys = Vec::new();
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
                Ok(object) => {
                    objects.push(object);
                    keys.push(key);
                }
                Err(StoreError::Corrupt { kind, key, reason }) => {
                    tracing::error!(kind, %key, %reason, "corrupt record skipped");
                    corrupt.push(CorruptRecord { kind, key, reason });
                }
                Err(other) => return Err(other),
            }
        }
        let mut by_tag = TagIndex::new();
        if let Some(tags_of) = self.tags_of {
            for (key, object) in keys.iter().zip(&objects) {
                index_tags(&mut by_tag, tags_of(&object.spec), key, true);
            }
        }
        Ok(CachedListing {
            keys,
            listing: Listing { objects, corrupt },
            by_tag,
        })
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
        let writing = self.writing_ids([id]);
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
        let _done = self.writing_ids([id]);
        if !self.spec.contains_key(id.as_bytes())? {
            return Ok(());
        }
        self.status.insert(id.as_bytes(), encode(status)?)?;
        Ok(())
    }

    /// Deletes an object, spec and status (garbage collection of finished records).
    pub fn delete(&self, id: &str) -> Result<(), StoreError> {
        let _done = self.writing_ids([id]);
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
        let _done = self.writing_ids([id]);
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
        assert_eq!(
            listed_names(instances),
            vec!["i-0000000000000000b".to_string()]
        );
    }

    /// The names a listing holds, in its order.
    fn listed_names(
        instances: &super::Collection<crate::model::InstanceSpec, crate::model::InstanceStatus>,
    ) -> Vec<String> {
        instances
            .list_shared()
            .unwrap()
            .objects
            .iter()
            .map(|o| o.metadata.name.clone())
            .collect()
    }

    /// Writes an instance's spec straight into its tree, as a transaction does while the
    /// caller's write guard is still held.
    fn write_spec_under_guard(
        instances: &super::Collection<crate::model::InstanceSpec, crate::model::InstanceStatus>,
        instance: &crate::model::Instance,
    ) {
        let bytes = instances.encode_spec(instance).unwrap();
        instances
            .spec
            .insert(instance.metadata.name.as_bytes(), bytes)
            .unwrap();
    }

    #[test]
    fn a_listing_is_not_reused_while_a_write_is_under_way() {
        let store = Store::temporary().unwrap();
        let instances = store.instances();
        assert!(instances.list_shared().unwrap().objects.is_empty());
        let writing = instances.writing();
        // Committed but not yet counted, as a transaction's write is before its guard drops:
        // a reader that saw it elsewhere (an index tree) must see it in a listing too.
        write_spec_under_guard(instances, &fixtures::instance());
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
    fn a_key_under_way_is_reread_by_every_list_until_its_write_ends() {
        let store = Store::temporary().unwrap();
        let instances = store.instances();
        let first = fixtures::instance();
        instances.create(std::slice::from_ref(&first)).unwrap();
        assert_eq!(instances.list_shared().unwrap().objects.len(), 1);
        let mut second = fixtures::instance();
        second.metadata.name = "i-0000000000000000b".into();
        let writing = instances.writing_ids([second.metadata.name.as_str()]);
        // A list before the write touches a tree takes the key's mark...
        assert_eq!(instances.list_shared().unwrap().objects.len(), 1);
        write_spec_under_guard(instances, &second);
        // ...and one after it (a reader that saw the write in an index tree) still finds it.
        assert_eq!(instances.list_shared().unwrap().objects.len(), 2);
        drop(writing);
        let names = listed_names(instances);
        let mut expected = vec![first.metadata.name, second.metadata.name];
        expected.sort();
        assert_eq!(names, expected);
    }

    #[test]
    fn the_tag_index_follows_creates_tag_changes_and_deletes() {
        let store = Store::temporary().unwrap();
        let instances = store.instances();
        let tagged = |name: &str, group: &str| {
            let mut inst = fixtures::instance();
            inst.metadata.name = name.into();
            inst.spec.tags.insert("group".into(), group.into());
            inst
        };
        let names = |values: &[&str]| -> Vec<String> {
            instances
                .list_tagged("group", values)
                .unwrap()
                .unwrap()
                .iter()
                .map(|o| o.metadata.name.clone())
                .collect()
        };
        instances
            .create(&[
                tagged("i-0000000000000000a", "web"),
                tagged("i-0000000000000000b", "db"),
            ])
            .unwrap();
        assert_eq!(names(&["web"]), vec!["i-0000000000000000a"]);
        instances
            .create(&[tagged("i-0000000000000000c", "web")])
            .unwrap();
        assert_eq!(
            names(&["web"]),
            vec!["i-0000000000000000a", "i-0000000000000000c"]
        );
        instances
            .update_spec::<StoreError>("i-0000000000000000a", |o| {
                o.spec.tags.insert("group".into(), "db".into());
                Ok(true)
            })
            .unwrap();
        assert_eq!(names(&["web"]), vec!["i-0000000000000000c"]);
        assert_eq!(
            names(&["db", "web"]),
            vec![
                "i-0000000000000000a",
                "i-0000000000000000b",
                "i-0000000000000000c"
            ]
        );
        instances.delete("i-0000000000000000c").unwrap();
        assert!(names(&["web"]).is_empty());
        assert!(instances
            .list_tagged("colour", &["red"])
            .unwrap()
            .unwrap()
            .is_empty());
        assert!(store
            .volumes()
            .list_tagged("group", &["web"])
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_reread_listing_matches_a_walk_of_the_trees() {
        let store = Store::temporary().unwrap();
        let instances = store.instances().clone();
        let view =
            |objects: &[Arc<crate::model::Instance>]| -> Vec<(String, u64, Option<InstanceState>)> {
                objects
                    .iter()
                    .map(|o| {
                        (
                            o.metadata.name.clone(),
                            o.metadata.resource_version,
                            o.status.state,
                        )
                    })
                    .collect()
            };
        let writers: Vec<_> = (0..4u32)
            .map(|w| {
                let instances = instances.clone();
                std::thread::spawn(move || {
                    for n in 0..150u32 {
                        let mut inst = fixtures::instance();
                        inst.metadata.name = format!("i-{w:08x}{:09x}", n % 40);
                        let id = inst.metadata.name.clone();
                        match n % 5 {
                            0 | 1 => {
                                let _ = instances.create(std::slice::from_ref(&inst));
                            }
                            2 => {
                                let _ = instances.update_spec::<StoreError>(&id, |o| {
                                    o.spec.desired = DesiredState::Stopped;
                                    Ok(true)
                                });
                            }
                            3 => {
                                let mut status = inst.status.clone();
                                status.state = Some(InstanceState::Running);
                                instances.write_status(&id, &status).unwrap();
                            }
                            _ => instances.delete(&id).unwrap(),
                        }
                        instances.list_shared().unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let listed = instances.list_shared().unwrap();
        let walked = instances.list_trees().unwrap();
        assert!(!listed.objects.is_empty());
        assert_eq!(view(&listed.objects), view(&walked.listing.objects));
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
