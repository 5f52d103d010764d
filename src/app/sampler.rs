//! The levels `/metrics` reads at scrape time: controller queue, stored resources by displayed state, engine and store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::api::volumes;
use crate::controller::{ControllerHandle, Observer, Outcome};
use crate::metrics::{EngineSample, Metrics, Sample, Sampler};
use crate::model::display_state;
use crate::reconcile::{EngineView, ObjectRef};
use crate::store::Store;

/// Reads the store (every record, once per scrape: it is memory-resident and listings are
/// cached until a write), the controller's stats and every engine's monitor.
pub struct Levels {
    /// The store.
    pub store: Store,
    /// The controller's queue.
    pub controller: ControllerHandle<ObjectRef>,
    /// Every engine's health and event-stream gaps, the default first.
    pub engines: Vec<EngineView>,
}

impl Sampler for Levels {
    fn sample(&self) -> Sample {
        let stats = self.controller.stats();
        Sample {
            queue_depth: stats.queue_depth as u64,
            in_flight: stats.in_flight as u64,
            resources: self.resources(),
            engines: self
                .engines
                .iter()
                .map(|engine| EngineSample {
                    name: engine.name.clone(),
                    reachable: engine.monitor.snapshot().reachable,
                    event_stream_reconnects: engine.monitor.event_stream_reconnects(),
                })
                .collect(),
            store_size_bytes: self
                .store
                .size_on_disk()
                .inspect_err(|error| tracing::warn!(%error, "cannot read the store's size"))
                .ok(),
        }
    }
}

impl Levels {
    /// `(kind, state, count)` of the stored records, each in the state clients see. VPCs and
    /// subnets count the stored ones (the derived defaults are not records) and are always
    /// `available`; AMIs are the CreateImage/CopyImage records and the discovered catalog.
    fn resources(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut counts: BTreeMap<(&'static str, &'static str), u64> = BTreeMap::new();
        let mut count = |kind, state| *counts.entry((kind, state)).or_default() += 1;
        let instances = listed(self.store.instances().list_shared());
        let mut mounted: HashMap<&str, Vec<(String, String)>> = HashMap::new();
        for i in &instances {
            count(
                "instance",
                display_state(&i.metadata, &i.spec, &i.status).name(),
            );
            for m in &i.status.volumes {
                mounted
                    .entry(m.volume_id.as_str())
                    .or_default()
                    .push((i.metadata.name.clone(), m.device.clone()));
            }
        }
        let by_id: HashMap<&str, &Arc<crate::model::Instance>> = instances
            .iter()
            .map(|i| (i.metadata.name.as_str(), i))
            .collect();
        for image in listed(self.store.images().list_shared())
            .into_iter()
            .chain(listed(self.store.catalog().list_shared()))
        {
            count("image", image.display_state().name());
        }
        for volume in listed(self.store.volumes().list_shared()) {
            let on = mounted
                .get(volume.metadata.name.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let shown = volumes::show(volume, |id| by_id.get(id).map(|i| Arc::clone(i)), on);
            count("volume", shown.state.name());
        }
        for snapshot in listed(self.store.snapshots().list_shared()) {
            count("snapshot", snapshot.display_state().name());
        }
        for _ in listed(self.store.vpcs().list_shared()) {
            count("vpc", "available");
        }
        for _ in listed(self.store.subnets().list_shared()) {
            count("subnet", "available");
        }
        counts
            .into_iter()
            .map(|((kind, state), n)| (kind, state, n))
            .collect()
    }
}

/// A listing's objects; nothing (with a warning) when the store cannot be read.
fn listed<T>(
    listing: Result<crate::store::Listing<Arc<T>>, crate::store::StoreError>,
) -> Vec<Arc<T>> {
    match listing {
        Ok(listing) => listing.objects,
        Err(error) => {
            tracing::warn!(%error, "cannot list records for metrics");
            Vec::new()
        }
    }
}

/// The controller's finished reconciles, counted by kind of key.
pub struct ReconcileMetrics(pub Arc<Metrics>);

impl Observer<ObjectRef> for ReconcileMetrics {
    fn reconciled(&self, key: &ObjectRef, outcome: Outcome, took: std::time::Duration) {
        self.0.reconciled(key.kind(), outcome.as_str(), took);
    }
}
