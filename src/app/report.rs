//! The status inspection document: desired vs observed for every resource, plus the controller and engine.

use serde_json::{json, Value};

use crate::api::Introspection;
use crate::config::VmManager;
use crate::controller::ControllerHandle;
use crate::hostmnt::VolumeMounts;
use crate::hostnet::ImdsRoutes;
use crate::model::{display_state, format_timestamp, Image, Instance};
use crate::reconcile::{EngineMonitor, Networks, ObjectRef, SweepReport};
use crate::store::Store;

/// Builds `/_ec2d/health` and `/_ec2d/status` from the store, the controller and the engine monitor.
pub struct Report {
    store: Store,
    engine: EngineMonitor,
    controller: ControllerHandle<ObjectRef>,
    vm_manager: VmManager,
    sweep: SweepReport,
    networks: Networks,
    imds_routes: ImdsRoutes,
    volume_mounts: VolumeMounts,
}

impl Report {
    /// A report over these parts.
    pub fn new(
        store: Store,
        engine: EngineMonitor,
        controller: ControllerHandle<ObjectRef>,
        vm_manager: VmManager,
        sweep: SweepReport,
        networks: Networks,
    ) -> Self {
        Self {
            store,
            engine,
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
            "networkWarning": instance.status.network_warning,
            "volumeWarning": instance.status.volume_warning,
            "stateReason": instance.status.state_reason,
            "lastError": instance.status.last_error,
            "transitions": instance.status.transitions,
            "spec": instance.spec,
        })
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
    fn health(&self) -> Value {
        let store_ok = self.store.is_healthy();
        let engine = self.engine.snapshot();
        let engine_ok = self.vm_manager == VmManager::Mock || engine.reachable == Some(true);
        json!({
            "ok": store_ok && engine_ok,
            "store": { "ok": store_ok },
            "engine": engine,
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
            "engine": self.engine.snapshot(),
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
    use crate::model::{fixtures, ErrorRecord, InstanceState};

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
