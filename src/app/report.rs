//! The status inspection document: desired vs observed for every resource, plus the controller and engine.

use serde_json::{json, Value};

use crate::api::Introspection;
use crate::config::VmManager;
use crate::controller::ControllerHandle;
use crate::hostmnt::VolumeMounts;
use crate::hostnet::ImdsRoutes;
use crate::model::{display_state, format_timestamp, Image, Instance};
use crate::reconcile::{EngineView, Networks, ObjectRef, SweepReport};
use crate::store::Store;

/// Builds `/_ec2d/health` and `/_ec2d/status` from the store, the controller and the engines'
/// monitors.
pub struct Report {
    store: Store,
    /// Every engine, the default first.
    engines: Vec<EngineView>,
    controller: ControllerHandle<ObjectRef>,
    vm_manager: VmManager,
    sweep: SweepReport,
    networks: Networks,
    imds_routes: ImdsRoutes,
    volume_mounts: VolumeMounts,
}

impl Report {
    /// A report over these parts; `engines` has the default engine first.
    pub fn new(
        store: Store,
        engines: Vec<EngineView>,
        controller: ControllerHandle<ObjectRef>,
        vm_manager: VmManager,
        sweep: SweepReport,
        networks: Networks,
    ) -> Self {
        assert!(!engines.is_empty(), "a report needs the default engine");
        Self {
            store,
            engines,
            controller,
            vm_manager,
            sweep,
            networks,
            imds_routes: ImdsRoutes::off("IMDS routes not wired"),
            volume_mounts: VolumeMounts::off("volume mount propagation point not set up"),
        }
    }

    /// The same report, showing these IMDS NAT rules (whether instances reach IMDS, and why not).
    pub fn with_imds_routes(mut self, imds_routes: ImdsRoutes) -> Self {
        self.imds_routes = imds_routes;
        self
    }

    /// The same report, showing the volume mount propagation point (whether volumes attach
    /// to running instances, and why not).
    pub fn with_volume_mounts(mut self, volume_mounts: VolumeMounts) -> Self {
        self.volume_mounts = volume_mounts;
        self
    }

    fn instance_doc(instance: &Instance) -> Value {
        let shown = display_state(&instance.metadata, &instance.spec, &instance.status);
        json!({
            "id": instance.metadata.name,
            "region": instance.metadata.namespace,
            "desired": instance.spec.desired,
            "state": shown.name(),
            "observedState": instance.status.state.map(|s| s.name()),
            "generation": instance.metadata.generation,
            "observedGeneration": instance.status.observed_generation,
            "rebootsRequested": instance.spec.reboots_requested,
            "rebootsDone": instance.status.reboots_done,
            "converged": is_converged(instance, shown),
            "container": instance.status.container,
            // What DescribeInstances shows: the container's address, else the allocated one.
            "privateIpAddress": crate::api::render::private_ip(instance, shown),
            "engine": instance.status.engine,
            "imageCopy": instance.status.image_copy,
            "networkWarning": instance.status.network_warning,
            "volumeWarning": instance.status.volume_warning,
            "stateReason": instance.status.state_reason,
            "lastError": instance.status.last_error,
            "transitions": instance.status.transitions,
            "spec": instance.spec,
        })
    }

    /// The default engine, whose health is the document's `engine` object.
    fn default_engine(&self) -> &EngineView {
        self.engines
            .iter()
            .find(|e| e.default)
            .unwrap_or(&self.engines[0])
    }

    /// The engine serving `zone`: the one `EC2D_ENGINES` gives it, else the default one.
    fn engine_serving(&self, zone: &str) -> &EngineView {
        self.engines
            .iter()
            .find(|e| e.zones.iter().any(|z| z == zone))
            .unwrap_or_else(|| self.default_engine())
    }

    /// One engine in the `engines` list: its name, zones, whether it is the default, and
    /// its health as last observed.
    fn engine_doc(engine: &EngineView) -> Value {
        let health = engine.monitor.snapshot();
        json!({
            "name": engine.name,
            "zones": engine.zones,
            "default": engine.default,
            "reachable": health.reachable,
            "version": health.version,
            "apiVersion": health.api_version,
            "lastError": health.last_error,
            "checkedAt": health.checked_at,
            "eventStreamReconnects": engine.monitor.event_stream_reconnects(),
        })
    }

    fn engines_doc(&self) -> Vec<Value> {
        self.engines.iter().map(Self::engine_doc).collect()
    }

    fn image_doc(image: &Image) -> Value {
        json!({
            "id": image.metadata.name,
            "region": image.metadata.namespace,
            "name": image.spec.name,
            "reference": image.spec.reference,
            "source": image.spec.source,
            "state": image.display_state().name(),
            "generation": image.metadata.generation,
            "observedGeneration": image.status.observed_generation,
            "dockerImageId": image.status.docker_image_id,
            "stateReason": image.status.state_reason,
            "lastError": image.status.last_error,
        })
    }
}

impl Introspection for Report {
    fn zone_impaired(&self, zone: &str) -> bool {
        self.engines.len() > 1 && self.engine_serving(zone).monitor.is_down()
    }

    fn instance_host_impaired(&self, zone: &str, engine: Option<&str>, made: bool) -> bool {
        if self.engines.len() < 2 {
            return false;
        }
        let view = match engine.and_then(|name| self.engines.iter().find(|e| e.name == name)) {
            Some(view) => view,
            None if engine.is_none() && made => self.default_engine(),
            None => self.engine_serving(zone),
        };
        view.monitor.is_down()
    }

    fn health(&self) -> Value {
        let store_ok = self.store.is_healthy();
        // Every engine must answer: with one engine (no EC2D_ENGINES) that is the default
        // one, as before; with several, one engine down makes ec2d unhealthy, though the
        // zones of the others still work. Mock instances need no engine.
        let engines_ok = self.vm_manager == VmManager::Mock
            || self
                .engines
                .iter()
                .all(|e| e.monitor.snapshot().reachable == Some(true));
        json!({
            "ok": store_ok && engines_ok,
            "store": { "ok": store_ok },
            "engine": self.default_engine().monitor.snapshot(),
            "engines": self.engines_doc(),
            "vmManager": self.vm_manager,
        })
    }

    fn status(&self, instance_id: Option<&str>) -> Option<Value> {
        if let Some(id) = instance_id {
            let instance = self.store.instances().get(id).ok()??;
            return Some(Self::instance_doc(&instance));
        }
        let instances = self.store.instances().list().ok()?;
        let images = self.store.images().list().ok()?;
        let catalog = self.store.catalog().list().ok()?;
        let stats = self.controller.stats();
        let corrupt: Vec<_> = instances
            .corrupt
            .iter()
            .chain(images.corrupt.iter())
            .collect();
        Some(json!({
            "generatedAt": format_timestamp(crate::model::now()),
            // The `ec2d.store-id` label on every Docker object this ec2d owns.
            "storeId": self.store.id(),
            "vmManager": self.vm_manager,
            "controller": stats,
            "engine": self.default_engine().monitor.snapshot(),
            "engines": self.engines_doc(),
            "instances": instances.objects.iter().map(Self::instance_doc).collect::<Vec<_>>(),
            "images": images.objects.iter().chain(catalog.objects.iter()).map(Self::image_doc).collect::<Vec<_>>(),
            "corruptRecords": corrupt,
            "keptOrphans": self.sweep.kept(),
            "imdsRoutes": self.imds_routes.report(),
            "volumeMounts": self.volume_mounts.report(),
            "refusedVpcNetworks": self.networks.refusals().into_iter().map(|(vpc_id, reason)| json!({"vpcId": vpc_id, "reason": reason})).collect::<Vec<_>>(),
        }))
    }
}

/// Whether the reconciler has carried out the latest spec and nothing stands in its way: an
/// instance whose last pass failed (a foreign container holds its name) is not converged,
/// even when its generation was observed.
fn is_converged(instance: &Instance, shown: crate::model::InstanceState) -> bool {
    instance.status.observed_generation >= instance.metadata.generation
        && instance.status.state == Some(shown)
        && instance.status.last_error.is_none()
        // A requested reboot not yet carried out is work left, though the state reads running.
        && instance.status.reboots_done >= instance.spec.reboots_requested
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{Controller, ControllerConfig};
    use crate::model::{fixtures, ErrorRecord, InstanceState};
    use crate::reconcile::{Engines, SweepReport};
    use crate::runtime::{ContainerRuntime, FakeRuntime};

    /// A report over a temporary store and `engines`, each pinged once as the app does.
    async fn report_over(engines: &Engines<FakeRuntime>, vm_manager: VmManager) -> Report {
        for engine in engines.iter() {
            engine.monitor().record_ping(&engine.runtime().info().await);
        }
        let controller = Controller::<ObjectRef>::new(ControllerConfig::default());
        Report::new(
            Store::temporary().unwrap(),
            engines.views(),
            controller.handle(),
            vm_manager,
            SweepReport::default(),
            Networks::default(),
        )
    }

    /// The default engine on the local socket, and `us-east-1b`/`us-east-1c` on a second
    /// engine, down when `b_down`.
    fn two_engines(b_down: bool) -> Engines<FakeRuntime> {
        let b = FakeRuntime::new();
        b.set_down(b_down);
        Engines::build(
            "unix:///var/run/docker.sock",
            FakeRuntime::new(),
            [
                ("us-east-1b".to_string(), "tcp://10.0.0.12:2375".to_string()),
                ("us-east-1c".to_string(), "tcp://10.0.0.12:2375".to_string()),
            ],
            |_| Ok::<_, std::convert::Infallible>(b.clone()),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn health_and_status_list_every_engine_and_one_down_makes_health_not_ok() {
        let report = report_over(&two_engines(true), VmManager::Docker).await;
        let health = report.health();
        assert_eq!(health["ok"], false, "{health:#}");
        assert_eq!(health["store"]["ok"], true);
        // The `engine` object stays the default engine's, as before.
        assert_eq!(health["engine"]["reachable"], true, "{health:#}");
        let engines = health["engines"].as_array().unwrap();
        assert_eq!(engines.len(), 2, "{health:#}");
        assert_eq!(engines[0]["name"], "unix:///var/run/docker.sock");
        assert_eq!(engines[0]["default"], true);
        assert_eq!(engines[0]["zones"], serde_json::json!([]));
        assert_eq!(engines[0]["reachable"], true);
        assert!(engines[0]["version"].is_string() && engines[0]["apiVersion"].is_string());
        assert!(engines[0]["lastError"].is_null());
        assert!(engines[0]["checkedAt"].is_string());
        assert_eq!(engines[1]["name"], "tcp://10.0.0.12:2375");
        assert_eq!(engines[1]["default"], false);
        assert_eq!(
            engines[1]["zones"],
            serde_json::json!(["us-east-1b", "us-east-1c"])
        );
        assert_eq!(engines[1]["reachable"], false);
        assert!(engines[1]["lastError"].is_string(), "{health:#}");
        assert!(engines[1]["checkedAt"].is_string());
        assert_eq!(engines[1]["eventStreamReconnects"], 0);

        let status = report.status(None).unwrap();
        assert_eq!(status["engines"], health["engines"], "{status:#}");
        assert_eq!(status["engine"]["reachable"], true);
    }

    #[tokio::test]
    async fn health_is_ok_when_every_engine_answers() {
        let report = report_over(&two_engines(false), VmManager::Docker).await;
        let health = report.health();
        assert_eq!(health["ok"], true, "{health:#}");
        assert_eq!(health["engines"].as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn one_engine_keeps_the_meaning_health_had() {
        let engines = Engines::single("unix:///var/run/docker.sock", true, FakeRuntime::new());
        let report = report_over(&engines, VmManager::Docker).await;
        assert_eq!(report.health()["ok"], true);
        let engines_doc = report.health()["engines"].clone();
        assert_eq!(engines_doc.as_array().unwrap().len(), 1);
        assert_eq!(engines_doc[0]["default"], true);

        engines.default().runtime().set_down(true);
        let report = report_over(&engines, VmManager::Docker).await;
        let health = report.health();
        assert_eq!(health["ok"], false);
        assert_eq!(health["engine"]["reachable"], false);
        // Mock instances need no engine.
        let report = report_over(&engines, VmManager::Mock).await;
        assert_eq!(report.health()["ok"], true);
    }

    #[test]
    fn an_instance_with_an_unresolved_error_is_not_converged() {
        let mut instance = fixtures::instance();
        instance.status.state = Some(InstanceState::Running);
        instance.status.observed_generation = instance.metadata.generation;
        assert!(is_converged(&instance, InstanceState::Running));
        assert!(!is_converged(&instance, InstanceState::Pending));
        instance.spec.reboots_requested = 1;
        assert!(
            !is_converged(&instance, InstanceState::Running),
            "a reboot is pending"
        );
        instance.status.reboots_done = 1;
        assert!(is_converged(&instance, InstanceState::Running));
        instance.status.last_error = Some(ErrorRecord {
            message: "container name taken by a container ec2d does not own".into(),
            at: crate::model::now(),
        });
        assert!(!is_converged(&instance, InstanceState::Running));
        instance.status.last_error = None;
        instance.status.observed_generation -= 1;
        assert!(!is_converged(&instance, InstanceState::Running));
    }
}
