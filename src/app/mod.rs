//! Wires store, runtime, controller and API into one running ec2d, with clean shutdown.

mod report;
mod sampler;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::{ListenerExt, TapIo};
use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::api::{self, ApiState, Nudge, Reset};
use crate::config::{Config, VmManager};
use crate::controller::{Controller, ControllerConfig, ControllerHandle};
use crate::hostmnt::block_devices::BlockDeviceFiles;
use crate::hostmnt::{SystemMounts, VolumeMounts};
use crate::hostnet::{ImdsRoutes, SystemIptables};
use crate::imds;
use crate::metrics::Metrics;
use crate::model::InstanceId;
use crate::reconcile::{self, Context, Engine, Engines, ObjectRef, Settings};
use crate::runtime::{ContainerRuntime, DockerRuntime, FakeRuntime, RuntimeError};
use crate::shutdown::{self, Shutdown};
use crate::store::{StatusStore, Store, StoreError};

pub use report::Report;

/// What can stop ec2d from starting or make it fail while running.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The store could not be opened or flushed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    /// The container runtime could not be set up.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// A running ec2d started by [`App::spawn`], for tests and examples.
pub struct RunningApp {
    /// The address the API listens on.
    pub addr: SocketAddr,
    trigger: shutdown::ShutdownTrigger,
    task: JoinHandle<Result<(), AppError>>,
}

impl RunningApp {
    /// The API's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down cleanly and waits for it.
    pub async fn shutdown(self) -> Result<(), AppError> {
        self.trigger.trigger();
        match self.task.await {
            Ok(result) => result,
            Err(join_error) => panic!("ec2d task failed: {join_error}"),
        }
    }
}

/// The application: one configuration, run until shutdown.
pub struct App;

impl App {
    /// Binds the configured address and runs until `shutdown` resolves.
    pub async fn run(
        config: Config,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let listener = TcpListener::bind(config.listen).await?;
        Self::serve_choosing(config, listener, shutdown, Announce::Ready).await
    }

    /// Runs on an already bound listener, choosing the runtime from the configuration.
    pub async fn serve(
        config: Config,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        Self::serve_choosing(config, listener, shutdown, Announce::Quiet).await
    }

    async fn serve_choosing(
        config: Config,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        announce: Announce,
    ) -> Result<(), AppError> {
        let default = default_engine_endpoint(&config);
        let zones: Vec<(String, String)> = config
            .engines
            .iter()
            .map(|e| (e.zone.clone(), e.endpoint.clone()))
            .collect();
        match config.vm_manager {
            VmManager::Docker => {
                let runtime = DockerRuntime::connect(config.docker_host.as_deref())?;
                let engines = Engines::build(&default, runtime, zones, |endpoint| {
                    DockerRuntime::connect(Some(endpoint))
                })?;
                Self::serve_announcing(config, engines, listener, shutdown, announce).await
            }
            VmManager::Mock => {
                let engines = Engines::build(&default, FakeRuntime::mock(), zones, |_| {
                    Ok::<_, RuntimeError>(FakeRuntime::mock())
                })?;
                Self::serve_announcing(config, engines, listener, shutdown, announce).await
            }
        }
    }

    /// Starts ec2d in the background on `config.listen` (port 0 picks a free one).
    pub async fn spawn(config: Config) -> Result<RunningApp, AppError> {
        Self::spawn_with(config, None::<FakeRuntime>).await
    }

    /// Like [`App::spawn`], with an explicit runtime (tests drive a [`FakeRuntime`] they keep a handle to).
    pub async fn spawn_with<R: ContainerRuntime>(
        config: Config,
        runtime: Option<R>,
    ) -> Result<RunningApp, AppError> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (trigger, signal) = shutdown::channel();
        let task = match runtime {
            Some(runtime) => {
                tokio::spawn(Self::serve_with(config, runtime, listener, signal.recv()))
            }
            None => tokio::spawn(Self::serve(config, listener, signal.recv())),
        };
        Ok(RunningApp {
            addr,
            trigger,
            task,
        })
    }

    /// Runs with the given runtime until `shutdown` resolves: in-flight reconciles finish,
    /// the store is flushed, instance containers keep running. The runtime is the one engine:
    /// `EC2D_ENGINES` is not read.
    pub async fn serve_with<R: ContainerRuntime>(
        config: Config,
        runtime: R,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        if !config.engines.is_empty() {
            warn!("EC2D_ENGINES is ignored: ec2d was given one runtime to serve every zone");
        }
        let default = default_engine_endpoint(&config);
        let local = reconcile::is_local_endpoint(&default);
        let engines = Engines::single(default, local, runtime);
        Self::serve_announcing(config, engines, listener, shutdown, Announce::Quiet).await
    }

    async fn serve_announcing<R: ContainerRuntime>(
        config: Config,
        engines: Engines<R>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        announce: Announce,
    ) -> Result<(), AppError> {
        let data_dir = config.data_dir();
        let store = Store::open(&data_dir)?;
        info!(data_dir = %data_dir.display(), vm_manager = ?config.vm_manager, "store opened");
        let settings = Settings {
            remove_containers: config.remove_containers,
            stop_timeout: Duration::from_secs(config.stop_timeout_seconds),
            docker_init: config.docker_init,
            mount_docker_socket: config.mount_docker_socket,
            docker_flags: config.docker_flags.clone(),
            instance_type_limits: config.instance_type_limits,
            vpc_networks: config.vpc_networks,
            terminated_retention: Duration::from_secs(config.terminated_retention_seconds),
            instance_api_port: config.instance_api.then_some(listener.local_addr()?.port()),
            block_devices: block_device_files(&config, &data_dir),
            ..Settings::default()
        };
        let (trigger, stop) = shutdown::channel();
        // The metadata listener first: the host's NAT rules redirect to the port it bound.
        let imds_port = start_imds(&config, &store, stop.clone())
            .await
            .map_or(0, |addr| addr.port());
        let imds_routes = wire_imds_routes(&config, store.id(), imds_port).await;
        let volume_mounts = set_up_volume_mounts(&config, &data_dir).await;
        log_engines(&engines);
        let ctx = Arc::new(
            Context::with_engines(store.clone(), engines, settings)
                .with_imds_routes(imds_routes.clone())
                .with_volume_mounts(volume_mounts.clone()),
        );

        tokio::spawn({
            let trigger = trigger.clone();
            async move {
                shutdown.await;
                trigger.trigger();
            }
        });

        // Know the engine and the AMIs before answering, so the first DescribeImages and
        // RunInstances see them (kube's "initial list" before serving).
        // Every engine is pinged (together); discovery lists those that answer, and the
        // default engine's answer gives the instance API's bridge address.
        let pings = futures::future::join_all(ctx.engines.iter().map(|engine| async move {
            let ping = engine.runtime().info().await;
            engine.monitor().record_ping(&ping);
            match &ping {
                Ok(info) => {
                    info!(engine = %engine.name(), version = %info.version, api_version = %info.api_version, "container engine reachable")
                }
                Err(error) => {
                    warn!(engine = %engine.name(), %error, "container engine unreachable; the API answers and instances converge once it is back")
                }
            }
            (engine.is_default(), ping)
        }))
        .await;
        let any_reachable = pings.iter().any(|(_, ping)| ping.is_ok());
        let ping = pings
            .into_iter()
            .find_map(|(default, ping)| default.then_some(ping))
            .expect("there is a default engine");
        if any_reachable {
            if let Err(error) = reconcile::reconcile(ObjectRef::Catalog, ctx.clone()).await {
                warn!(%error, "initial AMI discovery failed");
            }
        }

        let controller = Controller::new(ControllerConfig {
            concurrency: config.concurrency.max(1),
            resync_every: config.resync_every(),
            ..ControllerConfig::default()
        })
        .with_span(ObjectRef::span);
        let handle = controller.handle();
        let metrics = Arc::new(Metrics::new(Some(Arc::new(sampler::Levels {
            store: store.clone(),
            controller: handle.clone(),
            engines: ctx.engines.views(),
        }))));
        let controller =
            controller.with_observer(Arc::new(sampler::ReconcileMetrics(metrics.clone())));
        let report = Arc::new(
            Report::new(
                store.clone(),
                ctx.engines.views(),
                handle.clone(),
                config.vm_manager,
                ctx.sweep_report.clone(),
                ctx.networks.clone(),
            )
            .with_imds_routes(imds_routes.clone())
            .with_volume_mounts(volume_mounts),
        );
        let router = api::router(ApiState {
            store: store.spec_view(),
            vm_manager: config.vm_manager,
            public_amis: config.public_amis,
            // Mock instances get addresses too: IaC reads them, and no engine is involved.
            allocate_private_ips: config.vpc_networks || config.vm_manager == VmManager::Mock,
            introspection: report,
            rendered_instances: Default::default(),
            nudge: Arc::new(NudgeController(handle.clone())),
            reset: Arc::new(ResetAll {
                store: store.clone(),
                ctx: ctx.clone(),
                controller: handle.clone(),
            }),
            gate: Default::default(),
            metrics,
        });

        let triggers = reconcile::engine_triggers(&ctx, handle.clone());
        // What users asked for goes through the handle: it runs at once, past any backoff.
        tokio::spawn({
            let handle = handle.clone();
            let mut specs = reconcile::spec_changes(&store.status_view());
            let stop = stop.clone();
            async move {
                loop {
                    tokio::select! {
                        () = stop.clone().recv() => return,
                        key = specs.next() => match key {
                            Some(key) => handle.enqueue(key),
                            None => return,
                        },
                    }
                }
            }
        });
        let controller_task = tokio::spawn({
            let ctx = ctx.clone();
            let resync_store = store.clone();
            let policy_ctx = ctx.clone();
            let stop = stop.clone();
            async move {
                controller
                    .run(
                        triggers,
                        move || reconcile::all_keys(&resync_store.status_view()),
                        move |key| reconcile::reconcile(key, ctx.clone()),
                        move |key, error| reconcile::error_policy(key, error, &policy_ctx),
                        stop.recv(),
                    )
                    .await;
            }
        });

        for engine in ctx.engines.iter() {
            tokio::spawn(ping_engine(
                engine.clone(),
                ctx.store.clone(),
                handle.clone(),
                stop.clone(),
            ));
        }
        serve_instance_api(
            &config,
            listener.local_addr()?,
            ping.as_ref().ok().and_then(|info| info.bridge_gateway),
            router.clone(),
            stop.clone(),
        )
        .await;
        info!(addr = %listener.local_addr()?, "ec2d listening");
        let listener = without_nagle(listener);
        if announce == Announce::Ready {
            announce_ready();
        }
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(stop.clone().recv())
            .await;
        // The server only returns early on an accept error; stop everything else too.
        trigger.trigger();
        if let Err(join_error) = controller_task.await {
            error!(%join_error, "controller task failed");
        }
        // After the last reconcile, so none adds a rule back.
        imds_routes.teardown().await;
        store.flush().await?;
        info!("ec2d stopped; store flushed");
        served.map_err(AppError::Io)
    }
}

/// The default engine's name: `DOCKER_HOST` (`--docker-host`) normalised, else the local
/// socket `DockerRuntime::connect` falls back to. An endpoint the normaliser refuses but the
/// connector takes (`tcp://host` without a port) is named as written.
fn default_engine_endpoint(config: &Config) -> String {
    match config
        .docker_host
        .as_deref()
        .map(str::trim)
        .filter(|host| !host.is_empty())
    {
        Some(host) => DockerRuntime::normalize_endpoint(host).unwrap_or_else(|_| host.to_string()),
        None => DockerRuntime::default_endpoint(),
    }
}

/// Says once which engine serves which zones, when `EC2D_ENGINES` names any.
fn log_engines<R>(engines: &Engines<R>) {
    if engines.iter().all(|engine| engine.zones().is_empty()) {
        return;
    }
    for engine in engines.iter() {
        info!(
            engine = %engine.name(),
            zones = %engine.zones().join(","),
            default = engine.is_default(),
            local = engine.is_local(),
            "container engine configured"
        );
    }
}

/// Whether the process says `Ready.` once it serves: the binary does, embedded apps (tests) don't.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announce {
    Ready,
    Quiet,
}

/// LocalStack's start-up line, which Testcontainers' LocalStack module and scripts wait for.
/// A plain stdout line, not a log event, so it reads the same with JSON logs; the listener is
/// bound, so a client that saw it connects at once (the backlog holds it until accept).
fn announce_ready() {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "Ready.").and_then(|()| out.flush()) {
        debug!(%error, "cannot print Ready.");
    }
}

/// The host's NAT rules for IMDS (`hostnet`), redirecting to `port`; off, with the reason
/// logged and in `/_ec2d/status`, when they cannot work here. Only ec2d's own rules change.
async fn wire_imds_routes(config: &Config, store_id: &str, port: u16) -> ImdsRoutes {
    let remote = config
        .docker_host
        .as_deref()
        .filter(|host| !host.starts_with("unix://") && !host.starts_with("npipe://"));
    let why_not = if !config.imds {
        Some("IMDS is off (EC2D_IMDS=0)".to_string())
    } else if config.vm_manager == VmManager::Mock {
        Some("no containers in mock mode".to_string())
    } else if let Some(host) = remote {
        Some(format!("IMDS is unreachable from instances: the engine is remote (DOCKER_HOST={host}), so its containers' traffic never crosses this host's NAT table"))
    } else if port == 0 {
        Some("IMDS is unreachable from instances: its listener is not running".to_string())
    } else if in_container() {
        Some("IMDS is unreachable from instances: ec2d runs in a container, so its NAT rules would be its own network namespace's, not the engine host's".to_string())
    } else {
        None
    };
    if let Some(reason) = why_not {
        if config.imds && config.vm_manager == VmManager::Docker {
            warn!("{reason}");
        }
        return ImdsRoutes::off(reason);
    }
    let detected = tokio::task::spawn_blocking(SystemIptables::detect).await;
    match detected {
        Ok(Ok(iptables)) => ImdsRoutes::setup(Arc::new(iptables), store_id, port).await,
        Ok(Err(error)) => {
            let reason = format!("IMDS is unreachable from instances: no usable iptables to redirect 169.254.169.254 ({error}); run ec2d as root with iptables installed, or with CAP_NET_ADMIN");
            warn!("{reason}");
            ImdsRoutes::off(reason)
        }
        Err(join_error) => ImdsRoutes::off(format!("iptables detection failed: {join_error}")),
    }
}

/// The mount propagation point through which attached volumes appear in running instances
/// (`hostmnt`): `<data dir>/volume-mounts`, made a shared mount or adopted. Off, with the
/// reason logged and in `/_ec2d/status`, when it cannot work here; volumes then attach only
/// when a container is created. Mounts stay when ec2d stops: they belong to the containers.
async fn set_up_volume_mounts(config: &Config, data_dir: &std::path::Path) -> VolumeMounts {
    let remote = config
        .docker_host
        .as_deref()
        .filter(|host| !host.starts_with("unix://") && !host.starts_with("npipe://"));
    let why_not = if !config.volume_mounts {
        Some("off (EC2D_VOLUME_MOUNTS=0): volumes attach only when an instance's container is created".to_string())
    } else if config.vm_manager == VmManager::Mock {
        Some("no containers in mock mode".to_string())
    } else if let Some(host) = remote {
        Some(format!("volumes attach only when an instance's container is created: the engine is remote (DOCKER_HOST={host}), so its volumes and containers are not on this host's mount table"))
    } else if in_container() {
        Some("volumes attach only when an instance's container is created: ec2d runs in a container, whose data directory and mount table are not the engine host's".to_string())
    } else {
        None
    };
    if let Some(reason) = why_not {
        if config.volume_mounts && config.vm_manager == VmManager::Docker {
            warn!("{reason}");
        }
        return VolumeMounts::off(reason);
    }
    let root = data_dir.join(crate::hostmnt::ROOT_DIR);
    tokio::task::spawn_blocking(move || VolumeMounts::setup(Arc::new(SystemMounts), &root))
        .await
        .unwrap_or_else(|e| VolumeMounts::off(format!("volume mount setup failed: {e}")))
}

/// Whether ec2d itself runs in a container ([`crate::hostmnt::in_container`]). Paths ec2d
/// hands the engine as bind sources name the engine host's file system, so what lives in
/// ec2d's own data directory cannot be bound into instances.
fn in_container() -> bool {
    crate::hostmnt::in_container()
}

/// LocalStack's block-device files (`EC2_MOUNT_BLOCK_DEVICES`), unless ec2d runs in a
/// container: their bind sources would name paths that do not exist on the engine's host.
fn block_device_files(config: &Config, data_dir: &std::path::Path) -> Option<BlockDeviceFiles> {
    if !config.mount_block_devices {
        return None;
    }
    if config.vm_manager == VmManager::Docker && in_container() {
        warn!("EC2_MOUNT_BLOCK_DEVICES is off: ec2d runs in a container, so the files in its data directory are not on the engine host's file system");
        return None;
    }
    Some(BlockDeviceFiles::new(data_dir, config.ebs_max_volume_size))
}

/// Starts the instance metadata service on `config.imds_listen` until `stop`, unless it is
/// off. A listener that cannot be bound leaves ec2d running without it (the API matters more),
/// with one warning saying what that means.
async fn start_imds(config: &Config, store: &Store, stop: Shutdown) -> Option<SocketAddr> {
    if !config.imds {
        info!("instance metadata service off (EC2D_IMDS=0)");
        return None;
    }
    let listener = match TcpListener::bind(config.imds_listen).await {
        Ok(listener) => listener,
        Err(error) => {
            warn!(addr = %config.imds_listen, %error, "instance metadata service not started: instances get no metadata at 169.254.169.254 (set EC2D_IMDS_LISTEN to a free address)");
            return None;
        }
    };
    let addr = listener.local_addr().ok()?;
    info!(%addr, "instance metadata service listening");
    let state = imds::ImdsState::new(store.spec_view());
    tokio::spawn(async move {
        if let Err(error) = imds::serve(listener, state, stop.recv()).await {
            error!(%error, "instance metadata service failed");
        }
    });
    Some(addr)
}

/// How soon a nudged instance is reconciled. A short delay, not "now": the queue keeps the
/// earliest run, so a client polling in a tight loop costs at most one pass per delay.
const NUDGE_DELAY: Duration = Duration::from_secs(1);

/// Serves the API on the engine's default bridge gateway too (`EC2D_INSTANCE_API`): the host's
/// address that `ec2d.internal` (`host-gateway`) names inside instances, reachable from every
/// bridge network, so their `AWS_ENDPOINT_URL` answers without exposing the API beyond the
/// host. Same port as the API; an API already on every address needs no second listener.
/// What cannot be set up is said once, and ec2d runs on.
async fn serve_instance_api(
    config: &Config,
    api: SocketAddr,
    gateway: Option<std::net::Ipv4Addr>,
    router: axum::Router,
    stop: Shutdown,
) {
    if !config.instance_api || config.vm_manager != VmManager::Docker {
        return;
    }
    if in_container() {
        // ec2d's own addresses are its container's; instances reach it only through the port
        // the engine publishes on its host, which `ec2d.internal` (host-gateway) names.
        info!(port = api.port(), "ec2d runs in a container: instances' AWS_ENDPOINT_URL (ec2d.internal) reaches it only when the container's API port is published on the engine host at the same port on every address (compose: \"{0}:{0}\")", api.port());
        return;
    }
    if api.ip().is_unspecified() {
        return;
    }
    let Some(gateway) = gateway else {
        warn!("the engine's default bridge gateway is unknown: instances' AWS_ENDPOINT_URL (ec2d.internal) is unreachable; listen on 0.0.0.0 (EC2D_LISTEN) or set EC2D_INSTANCE_API=0");
        return;
    };
    let addr = SocketAddr::new(gateway.into(), api.port());
    if addr == api {
        return;
    }
    match TcpListener::bind(addr).await {
        Ok(listener) => {
            info!(%addr, "API served to instances at ec2d.internal");
            tokio::spawn(async move {
                let served = axum::serve(without_nagle(listener), router)
                    .with_graceful_shutdown(stop.recv())
                    .await;
                if let Err(error) = served {
                    warn!(%error, "the instances' API listener failed");
                }
            });
        }
        Err(error) => {
            warn!(%addr, %error, "cannot serve the API on the bridge gateway: instances' AWS_ENDPOINT_URL (ec2d.internal) is unreachable (a rootless or remote engine's bridge is not on this host)")
        }
    }
}

/// The api's nudges, as keys for the controller.
struct NudgeController(ControllerHandle<ObjectRef>);

impl Nudge for NudgeController {
    fn instance(&self, instance_id: &InstanceId) {
        self.0
            .enqueue_after(ObjectRef::Instance(instance_id.clone()), NUDGE_DELAY);
    }
}

/// `POST /_ec2d/reset`: the reconciler removes what the store's records made while no
/// reconcile runs (the controller's exclusive section; the api's gate keeps requests out
/// meanwhile), then the records go, then the catalog is discovered again.
struct ResetAll<R: ContainerRuntime> {
    store: Store,
    ctx: Arc<Context<R>>,
    controller: ControllerHandle<ObjectRef>,
}

impl<R: ContainerRuntime> Reset for ResetAll<R> {
    fn reset(&self) -> futures::future::BoxFuture<'static, Result<serde_json::Value, String>> {
        let (store, ctx, controller) = (
            self.store.clone(),
            self.ctx.clone(),
            self.controller.clone(),
        );
        Box::pin(async move {
            let started = std::time::Instant::now();
            let removed = controller
                .exclusive(|| async {
                    let removed = reconcile::reset::remove_everything(&ctx)
                        .await
                        .map_err(|e| e.to_string())?;
                    store.wipe_for_reset().map_err(|e| e.to_string())?;
                    reconcile::reset::after_wipe(&ctx)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>(removed)
                })
                .await?;
            info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "reset done: every resource of this store removed"
            );
            serde_json::to_value(removed).map_err(|e| e.to_string())
        })
    }
}

/// The API's listener, with Nagle's algorithm off on every connection: otherwise an answer
/// written in more than one segment (a large DescribeInstances) waits for the client's
/// delayed ACK, a ~40 ms stall (seen as the bench's DescribeInstances p99 of 47 ms).
fn without_nagle(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    fn set_nodelay(tcp: &mut TcpStream) {
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
    }
    listener.tap_io(set_nodelay)
}

/// Pings one engine regularly (every 15 s while it answers, every 2 s while it does not, and
/// at once when its event stream breaks) so health, metrics and its zones' state report it,
/// and so its return is noticed: then everything that backed off while it was away is
/// enqueued. One such task runs per engine.
async fn ping_engine<R: ContainerRuntime>(
    engine: Arc<Engine<R>>,
    store: StatusStore,
    handle: ControllerHandle<ObjectRef>,
    stop: Shutdown,
) {
    let monitor = engine.monitor();
    loop {
        let period = if monitor.is_reachable() {
            Duration::from_secs(15)
        } else {
            Duration::from_secs(2)
        };
        tokio::select! {
            () = stop.clone().recv() => return,
            () = tokio::time::sleep(period) => {}
            // Its event stream broke: the engine may be gone, and its zone impaired now.
            () = monitor.check_requested() => {}
        }
        let was_reachable = monitor.is_reachable();
        let result = engine.runtime().info().await;
        monitor.record_ping(&result);
        match (&result, was_reachable) {
            (Ok(info), false) => {
                info!(engine = %engine.name(), version = %info.version, "container engine reachable");
                // Everything that backed off while the engine was away converges now (every
                // key: the catalog, the sweep and the networks span engines).
                reconcile::enqueue_everything(&store, &handle);
            }
            (Err(error), true) => {
                warn!(engine = %engine.name(), %error, "container engine unreachable")
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;

    #[test]
    fn the_default_engine_is_named_by_its_normalised_endpoint() {
        let mut config = Config::for_tests(std::env::temp_dir());
        let mut named = |host: Option<&str>| {
            config.docker_host = host.map(str::to_string);
            default_engine_endpoint(&config)
        };
        assert_eq!(named(None), "unix:///var/run/docker.sock");
        assert_eq!(named(Some("  ")), "unix:///var/run/docker.sock");
        assert_eq!(named(Some("/run/docker.sock")), "unix:///run/docker.sock");
        assert_eq!(named(Some("http://H:2375/")), "tcp://h:2375");
        // What the connector takes but the normaliser does not is named as written.
        assert_eq!(named(Some("tcp://h")), "tcp://h");
    }

    #[tokio::test]
    async fn api_connections_are_accepted_with_nagle_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = without_nagle(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap());
    }
}
