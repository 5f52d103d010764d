//! The EC2 reconcilers: make Docker match the store's instances, images, VPC networks, volumes and snapshots, and keep the AMI catalog current.
//!
//! Each reconcile is keyed by an [`ObjectRef`] and re-reads the world every time (spec and
//! status from the store, the container from the runtime); why it was called is never passed
//! in, only logged. Only this module writes status.

mod assess;
mod boot;
mod catalog;
mod cloud_config;
mod console;
mod engine;
mod engines;
mod error;
#[cfg(test)]
mod fixtures;
mod gc;
mod image;
mod imds_routes;
mod instance;
mod network;
pub mod plan;
pub mod reset;
mod snapshot;
mod volume;

use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;

pub use console::ConsoleReads;
pub use engine::{EngineHealth, EngineMonitor};
pub use engines::{is_local_endpoint, Engine, EngineView, Engines, SINGLE_ENGINE};
pub use error::ReconcileError;
pub use gc::{KeptOrphan, SweepReport};
pub use imds_routes::route_address;
pub use instance::{container_spec_for, BootMode};
pub use network::Networks;

use crate::controller::{Action, ControllerHandle};
use crate::hostmnt::VolumeMounts;
use crate::hostnet::ImdsRoutes;
use crate::model::{ImageId, InstanceId};
use crate::runtime::{labels, ContainerRuntime, RuntimeEvent};
use crate::store::{KindKey, StatusStore, Store};

/// What a reconcile is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectRef {
    /// One instance and its container.
    Instance(InstanceId),
    /// One CreateImage or CopyImage record and its commit or tag.
    Image(ImageId),
    /// The AMI catalog discovered from Docker's image tags, and deregistered AMIs' tags.
    Catalog,
    /// Orphaned containers, networks, Docker volumes and volume-copy helpers, and expired
    /// terminated records.
    Sweep,
    /// One VPC's Docker network: made again when removed while instances need it, removed
    /// when none does.
    Network(String),
    /// One EBS volume and the Docker volume holding its data.
    Volume(String),
    /// One EBS snapshot and the Docker volume holding its copy.
    Snapshot(String),
}

impl ObjectRef {
    /// The kind of key, as metrics label it: `instance`, `image`, `catalog`, `sweep`,
    /// `network`, `volume` or `snapshot`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Instance(_) => "instance",
            Self::Image(_) => "image",
            Self::Catalog => "catalog",
            Self::Sweep => "sweep",
            Self::Network(_) => "network",
            Self::Volume(_) => "volume",
            Self::Snapshot(_) => "snapshot",
        }
    }

    /// The span a reconcile of this key runs in: it names the object with the same field the
    /// API's log lines use (`instance_id`, `image_id`, `vpc_id`, `volume_id`, `snapshot_id`),
    /// so every line the pass logs, down to the runtime's, carries the id.
    pub fn span(&self) -> tracing::Span {
        match self {
            Self::Instance(id) => tracing::info_span!("reconcile", instance_id = %id),
            Self::Image(id) => tracing::info_span!("reconcile", image_id = %id),
            Self::Catalog => tracing::info_span!("reconcile", key = "catalog"),
            Self::Sweep => tracing::info_span!("reconcile", key = "sweep"),
            Self::Network(vpc_id) => tracing::info_span!("reconcile", vpc_id = %vpc_id),
            Self::Volume(id) => tracing::info_span!("reconcile", volume_id = %id),
            Self::Snapshot(id) => tracing::info_span!("reconcile", snapshot_id = %id),
        }
    }
}

/// Reconciler settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Remove containers on termination (`EC2_REMOVE_CONTAINERS`).
    pub remove_containers: bool,
    /// Grace period for `docker stop` on termination.
    pub stop_timeout: Duration,
    /// Run containers with Docker's init (`EC2_DOCKER_INIT`).
    pub docker_init: bool,
    /// Mount the Docker socket into instances.
    pub mount_docker_socket: bool,
    /// Extra `docker run` flags for every instance (`EC2_DOCKER_FLAGS`).
    pub docker_flags: crate::runtime::DockerFlags,
    /// Give each container its instance type's vCPUs and memory as limits
    /// (`EC2D_INSTANCE_TYPE_LIMITS`).
    pub instance_type_limits: bool,
    /// Put each VPC's instances on a Docker network of their own at the addresses the API
    /// allocated (`EC2D_VPC_NETWORKS`); off, every container is on Docker's default bridge.
    pub vpc_networks: bool,
    /// How long a terminated instance stays describable before its record is collected.
    pub terminated_retention: Duration,
    /// How soon to look again at a resource that is still converging.
    pub converging_requeue: Duration,
    /// How often a converged resource is looked at again (missed-event safety net).
    pub converged_requeue: Duration,
    /// The least time between two reads of one instance's log for its console output.
    pub console_refresh_every: Duration,
    /// The port ec2d's API answers on at `ec2d.internal` from inside instances
    /// (`EC2D_INSTANCE_API`): each container gets `AWS_ENDPOINT_URL` pointing there.
    pub instance_api_port: Option<u16>,
    /// `EC2_MOUNT_BLOCK_DEVICES`: where each attached volume's device file lives.
    pub block_devices: Option<crate::hostmnt::block_devices::BlockDeviceFiles>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            remove_containers: true,
            stop_timeout: Duration::from_secs(3),
            docker_init: true,
            mount_docker_socket: true,
            docker_flags: crate::runtime::DockerFlags::default(),
            instance_type_limits: true,
            vpc_networks: true,
            terminated_retention: Duration::from_secs(3600),
            converging_requeue: Duration::from_millis(500),
            converged_requeue: Duration::from_secs(300),
            console_refresh_every: console::REFRESH_EVERY,
            instance_api_port: None,
            block_devices: None,
        }
    }
}

/// Everything a reconcile needs; generic over the runtime so tests use the fake.
#[derive(Clone)]
pub struct Context<R: ContainerRuntime> {
    /// The store, as the reconciler may use it: reads, and status writes only.
    pub store: StatusStore,
    /// Every container engine, and which serves which zone.
    pub engines: Engines<R>,
    /// The engine this context works on: the default one, or the one [`Context::on_engine`]
    /// chose. `runtime`, `engine` and `networks` are its.
    pub current_engine: Arc<Engine<R>>,
    /// The current engine's runtime.
    pub runtime: R,
    /// Settings.
    pub settings: Settings,
    /// The current engine's reachability, as last seen by reconciles and the monitor.
    pub engine: EngineMonitor,
    /// Orphans the last sweep kept.
    pub sweep_report: SweepReport,
    /// When each instance's log was last copied, so bursts of passes read it once.
    pub console_reads: ConsoleReads,
    /// What is known of each VPC's Docker network on the current engine.
    pub networks: Networks,
    /// The host's NAT rules that send instances' metadata requests to ec2d (off unless the
    /// app wired them).
    pub imds_routes: ImdsRoutes,
    /// The host's mount propagation point, through which attached volumes appear in running
    /// containers (off unless the app set it up: volumes then attach at creation only).
    pub volume_mounts: VolumeMounts,
}

impl<R: ContainerRuntime> Context<R> {
    /// Builds a context on the store's status-writing view, with one engine serving every
    /// zone ([`SINGLE_ENGINE`], taken to be local).
    pub fn new(store: Store, runtime: R, settings: Settings) -> Self {
        Self::with_engines(
            store,
            Engines::single(SINGLE_ENGINE, true, runtime),
            settings,
        )
    }

    /// Builds a context on the store's status-writing view over the given engines; `runtime`,
    /// `engine` and `networks` are the default engine's (clones sharing its state).
    pub fn with_engines(store: Store, engines: Engines<R>, settings: Settings) -> Self {
        let default = engines.default().clone();
        Self {
            store: store.status_view(),
            runtime: default.runtime().clone(),
            engine: default.monitor().clone(),
            networks: default.networks().clone(),
            current_engine: default,
            engines,
            settings,
            sweep_report: SweepReport::default(),
            console_reads: ConsoleReads::default(),
            imds_routes: ImdsRoutes::off("IMDS routes not wired"),
            volume_mounts: VolumeMounts::off("volume mount propagation point not set up"),
        }
    }
}

impl<R: ContainerRuntime> Context<R> {
    /// This context when it already works on `engine` (always, with one engine), else
    /// [`Context::on_engine`]: a pass on the default engine copies nothing.
    pub fn on(&self, engine: &Arc<Engine<R>>) -> std::borrow::Cow<'_, Self> {
        if Arc::ptr_eq(engine, &self.current_engine) {
            std::borrow::Cow::Borrowed(self)
        } else {
            std::borrow::Cow::Owned(self.on_engine(engine))
        }
    }

    /// The same context working on `engine`: its runtime, monitor and networks; the store,
    /// settings and the process-wide records are shared.
    pub fn on_engine(&self, engine: &Arc<Engine<R>>) -> Self {
        Self {
            store: self.store.clone(),
            engines: self.engines.clone(),
            current_engine: engine.clone(),
            runtime: engine.runtime().clone(),
            settings: self.settings.clone(),
            engine: engine.monitor().clone(),
            sweep_report: self.sweep_report.clone(),
            console_reads: self.console_reads.clone(),
            networks: engine.networks().clone(),
            imds_routes: self.imds_routes.clone(),
            // The propagation point is this host's: a remote engine's containers cannot see
            // it, so their volumes attach when the container is created.
            volume_mounts: if engine.is_local() {
                self.volume_mounts.clone()
            } else {
                VolumeMounts::off("the instance's engine is on another host")
            },
        }
    }
}

impl<R: ContainerRuntime> Context<R> {
    /// What a status should record as the engine of a resource this context's pass works
    /// on, given what it records: with several engines, the current one (recorded before
    /// anything is made there); with one, nothing, unless what is recorded is this very
    /// engine (an engine recorded under another configuration is forgotten, so the record
    /// reads as the default engine's, which it now is).
    pub fn engine_to_record(&self, recorded: Option<&str>) -> Option<String> {
        let here = self.current_engine.name();
        if self.engines.is_multi() || recorded == Some(here) {
            Some(here.to_string())
        } else {
            None
        }
    }

    /// The engine a status names, when it is configured; else, for a resource already made
    /// with no engine recorded (under one engine), the default engine; else `otherwise`.
    fn engine_recorded_or(
        &self,
        recorded: Option<&str>,
        made: bool,
        otherwise: impl FnOnce() -> Arc<Engine<R>>,
    ) -> Arc<Engine<R>> {
        match recorded {
            Some(name) => match self.engines.by_name(name) {
                Some(engine) => engine.clone(),
                None => otherwise(),
            },
            None if made => self.engines.default().clone(),
            None => otherwise(),
        }
    }

    /// The same context, mounting attached volumes through the given propagation point.
    pub fn with_volume_mounts(mut self, volume_mounts: VolumeMounts) -> Self {
        self.volume_mounts = volume_mounts;
        self
    }

    /// The same context, converging the given IMDS NAT rules.
    pub fn with_imds_routes(mut self, imds_routes: ImdsRoutes) -> Self {
        self.imds_routes = imds_routes;
        self
    }
}

/// Reconciles one object. Errors are also recorded in the object's status by the
/// per-kind reconcilers; here they only go back to the controller for the retry decision.
pub async fn reconcile<R: ContainerRuntime>(
    key: ObjectRef,
    ctx: Arc<Context<R>>,
) -> Result<Action, ReconcileError> {
    match &key {
        ObjectRef::Instance(id) => {
            // The pass observes the instance's own engine.
            let result = instance::reconcile(id, &ctx).await;
            // Whatever the pass came to, the rule follows the status it left.
            imds_routes::converge(id, &ctx).await;
            result
        }
        ObjectRef::Catalog => catalog::reconcile(&ctx).await,
        ObjectRef::Sweep => gc::sweep(&ctx).await,
        ObjectRef::Network(vpc_id) => {
            on_every_engine(
                &ctx,
                |on| async move { network::reconcile(vpc_id, &on).await },
            )
            .await
        }
        ObjectRef::Image(id) => match image::engine_for(id, &ctx).await {
            Ok(engine) => {
                let on = ctx.on(&engine);
                observed(&on, image::reconcile(id, &on).await)
            }
            Err(error) => Err(error.into()),
        },
        ObjectRef::Volume(id) => {
            let on = ctx.on(&volume_engine(&ctx, Some(id)));
            observed(&on, volume::reconcile(id, &on).await)
        }
        ObjectRef::Snapshot(id) => {
            let on = ctx.on(&snapshot_engine(&ctx, id));
            observed(&on, snapshot::reconcile(id, &on).await)
        }
    }
}

/// The engine holding a volume's Docker volume: the one its status records, else its
/// zone's (an instance attaches volumes of its own zone only, so they meet on one engine).
/// The default one for a volume unknown.
fn volume_engine<R: ContainerRuntime>(ctx: &Context<R>, volume_id: Option<&str>) -> Arc<Engine<R>> {
    if !ctx.engines.is_multi() {
        return ctx.engines.default().clone();
    }
    let Some(volume) = volume_id.and_then(|id| ctx.store.volumes().get_shared(id).ok().flatten())
    else {
        return ctx.engines.default().clone();
    };
    ctx.engine_recorded_or(
        volume.status.engine.as_deref(),
        volume.status.backing.is_some(),
        || ctx.engines.for_zone(&volume.spec.availability_zone).clone(),
    )
}

/// The engine holding a snapshot's copy: the one its status records, else its volume's (the
/// copy is made beside the data it copies).
fn snapshot_engine<R: ContainerRuntime>(ctx: &Context<R>, snapshot_id: &str) -> Arc<Engine<R>> {
    if !ctx.engines.is_multi() {
        return ctx.engines.default().clone();
    }
    let Some(snapshot) = ctx.store.snapshots().get_shared(snapshot_id).ok().flatten() else {
        return ctx.engines.default().clone();
    };
    ctx.engine_recorded_or(
        snapshot.status.engine.as_deref(),
        snapshot.status.backing.is_some(),
        || volume_engine(ctx, Some(&snapshot.spec.volume_id)),
    )
}

/// A pass's result, recorded by the monitor of the engine it ran on.
fn observed<R: ContainerRuntime>(
    ctx: &Context<R>,
    result: Result<Action, ReconcileError>,
) -> Result<Action, ReconcileError> {
    ctx.engine.observe(&result);
    result
}

/// Runs `pass` on every engine, each observed by its own monitor. An engine that fails does
/// not hold up the others; the first failure is the key's (so it is retried), else the
/// soonest look-again any engine asked for.
async fn on_every_engine<R, F, Fut>(ctx: &Context<R>, pass: F) -> Result<Action, ReconcileError>
where
    R: ContainerRuntime,
    F: Fn(Context<R>) -> Fut,
    Fut: std::future::Future<Output = Result<Action, ReconcileError>>,
{
    if !ctx.engines.is_multi() {
        return observed(ctx, pass(ctx.on_engine(&ctx.current_engine)).await);
    }
    let mut failure = None;
    let mut action = Action::await_change();
    for engine in ctx.engines.iter() {
        let on = ctx.on_engine(engine);
        let monitor = on.engine.clone();
        let result = pass(on).await;
        monitor.observe(&result);
        match result {
            Ok(next) => action = sooner(action, next),
            Err(error) => {
                tracing::warn!(engine = %engine.name(), %error, "pass failed on one engine");
                failure.get_or_insert(error);
            }
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(action),
    }
}

/// Of two actions, the one that looks again sooner (a backoff counts as soonest).
fn sooner(a: Action, b: Action) -> Action {
    if a.is_backoff() || b.is_await_change() {
        return a;
    }
    if b.is_backoff() || a.is_await_change() {
        return b;
    }
    match (a.requeue_after(), b.requeue_after()) {
        (Some(x), Some(y)) if y < x => b,
        _ => a,
    }
}

/// Decides the retry after a failed reconcile: transient failures back off per key with
/// jitter; permanent ones were recorded as the object's `StateReason` and are retried slowly.
pub fn error_policy<R: ContainerRuntime>(
    _key: &ObjectRef,
    error: &ReconcileError,
    ctx: &Context<R>,
) -> Action {
    if error.is_transient() {
        Action::backoff()
    } else {
        Action::requeue(ctx.settings.converged_requeue.min(Duration::from_secs(60)))
    }
}

/// How long after a container leaves its VPC's network its instance is looked at again.
const DISCONNECT_GRACE: Duration = Duration::from_secs(3);

/// Every key the store and engine know of: the resync list (kube's "list" half of list-watch).
pub fn all_keys(store: &StatusStore) -> Vec<ObjectRef> {
    let mut keys = vec![ObjectRef::Catalog, ObjectRef::Sweep];
    match store.instances().ids() {
        Ok(ids) => keys.extend(
            ids.iter()
                .filter_map(|id| InstanceId::parse(id).ok())
                .map(ObjectRef::Instance),
        ),
        Err(error) => tracing::error!(%error, "cannot list instances for resync"),
    }
    match store.images().ids() {
        Ok(ids) => keys.extend(
            ids.iter()
                .filter_map(|id| ImageId::parse(id).ok())
                .map(ObjectRef::Image),
        ),
        Err(error) => tracing::error!(%error, "cannot list images for resync"),
    }
    match store.volumes().ids() {
        Ok(ids) => keys.extend(ids.into_iter().map(ObjectRef::Volume)),
        Err(error) => tracing::error!(%error, "cannot list volumes for resync"),
    }
    match store.snapshots().ids() {
        Ok(ids) => keys.extend(ids.into_iter().map(ObjectRef::Snapshot)),
        Err(error) => tracing::error!(%error, "cannot list snapshots for resync"),
    }
    keys
}

/// Spec changes from the store, as keys: what users asked for. The app feeds these through
/// the controller handle, so a new generation runs at once even while its key is backing
/// off after a failure (a user's StopInstances must not wait out a retry delay).
///
/// An AMI record's change also wakes discovery, which carries out deregistrations (see
/// `catalog`): the record's own key acknowledges one, discovery removes the tags.
pub fn spec_changes(store: &StatusStore) -> BoxStream<'static, ObjectRef> {
    let watched = store.clone();
    let store = store.clone();
    watched
        .watch_specs()
        .flat_map(move |changed| {
            let keys = match changed.kind {
                KindKey::Instance => match InstanceId::parse(&changed.id) {
                    Ok(id) => {
                        let mut keys = vec![ObjectRef::Instance(id)];
                        // A terminated instance may have been its VPC network's last user.
                        if let Some(vpc_id) = terminated_in_vpc(&store, &changed.id) {
                            keys.push(ObjectRef::Network(vpc_id));
                        }
                        // Its attachments are over: `deleteOnTermination` volumes go now.
                        keys.extend(volumes_of_terminated(&store, &changed.id));
                        keys
                    }
                    Err(_) => Vec::new(),
                },
                KindKey::Image => match ImageId::parse(&changed.id) {
                    Ok(id) => vec![ObjectRef::Image(id), ObjectRef::Catalog],
                    Err(_) => Vec::new(),
                },
                // The volume itself, and the instances it concerns (a mount to make or end).
                KindKey::Volume => {
                    let mut keys = vec![ObjectRef::Volume(changed.id.clone())];
                    keys.extend(instances_of_volume(&store, &changed.id));
                    keys
                }
                KindKey::Snapshot => vec![ObjectRef::Snapshot(changed.id)],
            };
            futures::stream::iter(keys)
        })
        .boxed()
}

/// The controller's triggers from the engine: container events mapped to their instances,
/// image events to the catalog. These wait for a failing key's backoff (a failed boot's own
/// events must not re-run it in a loop). An event stream gap (`Resubscribed`) may have lost
/// anything, so it enqueues everything through `handle`, at once.
///
/// Every engine's stream is followed, each with its own resubscription and gap record.
pub fn engine_triggers<R: ContainerRuntime>(
    ctx: &Arc<Context<R>>,
    handle: ControllerHandle<ObjectRef>,
) -> BoxStream<'static, ObjectRef> {
    futures::stream::select_all(
        ctx.engines
            .iter()
            .map(|engine| one_engine_triggers(engine, ctx.store.clone(), handle.clone())),
    )
    .boxed()
}

/// [`engine_triggers`] of one engine.
fn one_engine_triggers<R: ContainerRuntime>(
    on: &Arc<Engine<R>>,
    store: StatusStore,
    handle: ControllerHandle<ObjectRef>,
) -> BoxStream<'static, ObjectRef> {
    let engine = on.monitor().clone();
    let networks = on.networks().clone();
    let name = on.name().to_string();
    on.runtime()
        .events()
        .flat_map(move |event| {
            let keys = match event {
                RuntimeEvent::Container {
                    instance_id,
                    action,
                } => {
                    tracing::debug!(%instance_id, %action, "container event");
                    // The engine sent the container a signal: an exit that follows is someone's
                    // `docker stop`/`docker kill` (or ec2d's own stop), not the instance shutting down.
                    if action == "kill" {
                        engine.record_signal(instance_id.as_str());
                    }
                    vec![ObjectRef::Instance(instance_id)]
                }
                RuntimeEvent::Image { action } => {
                    tracing::debug!(%action, "image event");
                    vec![ObjectRef::Catalog]
                }
                RuntimeEvent::Network { name, action } => {
                    match labels::vpc_of_network(store.id(), &name) {
                        // Removed: made again at once, and its instances put back on it.
                        Some(vpc_id) if action == "destroy" => {
                            tracing::info!(%vpc_id, network = %name, "VPC network removed; converging");
                            networks.forget(&vpc_id);
                            let mut keys = instances_in_vpc(&store, &vpc_id);
                            keys.push(ObjectRef::Network(vpc_id));
                            keys
                        }
                        // A container taken off it (ec2d's own removals too): looked at after a
                        // grace, so a user's `disconnect -f` then `network rm` is not raced.
                        Some(vpc_id) => {
                            tracing::debug!(%vpc_id, network = %name, %action, "VPC network endpoint changed");
                            for key in instances_in_vpc(&store, &vpc_id) {
                                handle.enqueue_after(key, DISCONNECT_GRACE);
                            }
                            Vec::new()
                        }
                        None => Vec::new(),
                    }
                }
                // ec2d's own removals come back here too: their records are gone, and the
                // pass finds nothing to do.
                RuntimeEvent::Volume { name, action } => {
                    match labels::id_of_volume(store.id(), &name) {
                        Some(id) if id.starts_with("snap-") => {
                            tracing::debug!(snapshot_id = %id, volume = %name, %action, "snapshot's Docker volume event");
                            vec![ObjectRef::Snapshot(id)]
                        }
                        Some(id) => {
                            tracing::debug!(volume_id = %id, volume = %name, %action, "volume's Docker volume event");
                            vec![ObjectRef::Volume(id)]
                        }
                        None => Vec::new(),
                    }
                }
                RuntimeEvent::Interrupted => {
                    tracing::debug!(engine = %name, "engine event stream lost; checking the engine");
                    engine.request_check();
                    Vec::new()
                }
                RuntimeEvent::Resubscribed => {
                    tracing::info!(engine = %name, "engine event stream resubscribed; resyncing everything");
                    engine.record_event_gap();
                    enqueue_everything(&store, &handle);
                    Vec::new()
                }
            };
            futures::stream::iter(keys)
        })
        .boxed()
}

/// The VPC of an instance the user asked to terminate.
fn terminated_in_vpc(store: &StatusStore, id: &str) -> Option<String> {
    let instance = store.instances().get_shared(id).ok()??;
    (instance.spec.desired == crate::model::DesiredState::Terminated)
        .then(|| instance.spec.vpc_id.clone())
        .flatten()
}

/// The volumes attached to an instance the user asked to terminate, as keys.
fn volumes_of_terminated(store: &StatusStore, id: &str) -> Vec<ObjectRef> {
    let terminated = store
        .instances()
        .get_shared(id)
        .ok()
        .flatten()
        .is_some_and(|i| {
            i.spec.desired == crate::model::DesiredState::Terminated
                || i.metadata.deletion_timestamp.is_some()
        });
    if !terminated {
        return Vec::new();
    }
    match store.volumes_of_instance(id) {
        Ok(volumes) => volumes
            .iter()
            .map(|v| ObjectRef::Volume(v.metadata.name.clone()))
            .collect(),
        Err(error) => {
            tracing::error!(instance_id = %id, %error, "cannot list volumes for a terminated instance");
            Vec::new()
        }
    }
}

/// The instances a volume concerns, as keys: those its attachments name (a mount to make),
/// and those it was attached to, which may still have it mounted (an unmount, once detached
/// or deleted): every volume an instance mounts was attached through a launch or AttachVolume,
/// both of which left a `volumes.devices` entry naming it, so no instance record is read.
///
/// Finding those entries reads the whole index, so it is done only when it can find more than
/// the attachments: a volume still at its first generation has had no attachment taken away
/// (DetachVolume and DeleteVolume make a new generation, as does AttachVolume, the one
/// writer of entries besides the volume's own creation), and a collected volume took its
/// entries with it. A launch writes a volume per instance; each used to read every entry.
fn instances_of_volume(store: &StatusStore, volume_id: &str) -> Vec<ObjectRef> {
    let (mut ids, attached_only): (Vec<String>, bool) = match store.volumes().get_shared(volume_id)
    {
        Ok(Some(volume)) => (
            volume
                .spec
                .attachments
                .iter()
                .map(|a| a.instance_id.clone())
                .collect(),
            volume.metadata.generation <= 1,
        ),
        Ok(None) => (Vec::new(), true),
        Err(error) => {
            tracing::error!(%error, %volume_id, "cannot read a changed volume");
            (Vec::new(), false)
        }
    };
    if !attached_only {
        match store.instances_with_volume_entries(volume_id) {
            Ok(held) => ids.extend(held),
            Err(error) => tracing::error!(%error, "cannot read the instances of a volume change"),
        }
    }
    ids.sort();
    ids.dedup();
    ids.iter()
        .filter_map(|id| InstanceId::parse(id).ok())
        .map(ObjectRef::Instance)
        .collect()
}

/// The instances of a VPC, as keys (an event about its network concerns them all).
fn instances_in_vpc(store: &StatusStore, vpc_id: &str) -> Vec<ObjectRef> {
    match store.instances().list_shared() {
        Ok(listing) => listing
            .objects
            .iter()
            .filter(|i| i.spec.vpc_id.as_deref() == Some(vpc_id))
            .filter_map(|i| InstanceId::parse(&i.metadata.name).ok())
            .map(ObjectRef::Instance)
            .collect(),
        Err(error) => {
            tracing::error!(%error, "cannot list instances for a network event");
            Vec::new()
        }
    }
}

/// Enqueues every key at once, past any backoff: the engine is back, or events were lost.
pub fn enqueue_everything(store: &StatusStore, handle: &ControllerHandle<ObjectRef>) {
    for key in all_keys(store) {
        handle.enqueue(key);
    }
}
