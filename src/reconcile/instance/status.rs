//! The instance's status after a pass, built from what the pass came to (pure; the shell writes it).

use super::super::plan::{self, hot_path, AttachedVolume, Plan};
use crate::hostmnt::HostMount;
use crate::model::volume::MountedVolume;
use crate::model::{
    ContainerObservation, ErrorRecord, Instance, InstanceState, InstanceStatus, StateReason,
    Timestamp,
};
use crate::runtime::{ContainerState, ObservedContainer, RuntimeError, VolumeMount};

/// The status after a pass that reached its plan's outcome: the container as seen, and the
/// state the plan reaches once the container confirms it.
pub(super) fn next_status(
    instance: &Instance,
    plan: &Plan,
    after: Option<&ObservedContainer>,
    at: Timestamp,
) -> InstanceStatus {
    let mut status = instance.status.clone();
    status.container = after.map(|c| ContainerObservation {
        id: c.id.clone(),
        state: c.state.as_str().to_string(),
        ip_address: c.ip_address.clone(),
        ports: c.ports.iter().map(Into::into).collect(),
    });
    status.last_error = None;
    status.reboots_done = plan::reboots_done_after(instance, plan);
    if let Some(reached) = plan.reaches {
        let confirmed = match (reached, after.map(|c| c.state)) {
            (InstanceState::Running, Some(ContainerState::Running)) => true,
            (InstanceState::Running, _) => false,
            _ => true,
        };
        if confirmed {
            let reason = match reached {
                _ if plan.instance_initiated => Some(StateReason::instance_initiated_shutdown()),
                InstanceState::Stopped | InstanceState::Terminated => {
                    Some(StateReason::user_initiated_shutdown())
                }
                _ => None,
            };
            // The reason belongs to the transition: a later pass that finds the instance
            // where it already was (a terminated instance's leftover container removed)
            // keeps the reason it got there with.
            let changed = status.state != Some(reached);
            status.record_transition(reached, reason.as_ref(), at);
            if changed || status.observed_generation < instance.metadata.generation {
                status.state_reason = reason;
                // Remember that this generation ended by the instance's own hand, so it is
                // not booted again until the user asks (StartInstances bumps the generation).
                status.shutdown_generation = plan
                    .instance_initiated
                    .then_some(instance.metadata.generation);
            }
            status.observed_generation = instance.metadata.generation;
        }
    }
    status
}

/// The volumes observed mounted in the container: each attached, ready volume mounted on the
/// host under the instance's directory from its own source (when the container sees that
/// directory, `host_visible`) or given to the container as a Docker volume mount at its mount
/// point; and each volume listed before that is still mounted where it was (a detach whose
/// unmount has not happened yet, or a Docker volume mount only a new container drops).
pub(super) fn mounted_volumes(
    attached: &[AttachedVolume],
    host: &[HostMount],
    host_visible: bool,
    container: &[VolumeMount],
    previous: &[MountedVolume],
) -> Vec<MountedVolume> {
    let on_host = |mount_point: &str, source: Option<&str>| {
        host_visible
            && hot_path(mount_point).is_some_and(|path| {
                host.iter().any(|m| {
                    m.path == path && source.is_none_or(|s| m.is_of(std::path::Path::new(s)))
                })
            })
    };
    let in_container = |mount_point: &str, name: Option<&str>| {
        container
            .iter()
            .any(|m| m.target == mount_point && name.is_none_or(|n| m.name == n))
    };
    let mut mounted: Vec<MountedVolume> = Vec::new();
    for volume in attached {
        let Some((name, source)) = &volume.backing else {
            continue;
        };
        let seen = on_host(&volume.mount_point, Some(source))
            || in_container(&volume.mount_point, Some(name));
        if seen && !mounted.iter().any(|m| m.mount_point == volume.mount_point) {
            mounted.push(MountedVolume {
                volume_id: volume.volume_id.clone(),
                device: volume.device.clone(),
                mount_point: volume.mount_point.clone(),
            });
        }
    }
    for before in previous {
        let taken = mounted
            .iter()
            .any(|m| m.volume_id == before.volume_id || m.mount_point == before.mount_point);
        if !taken && (on_host(&before.mount_point, None) || in_container(&before.mount_point, None))
        {
            mounted.push(before.clone());
        }
    }
    mounted
}

/// The status of an instance whose boot can never succeed: `terminated` with
/// `Server.InternalError` saying why (`detail`), so waiters fail fast; `error` is recorded.
pub(super) fn boot_impossible(
    instance: &Instance,
    detail: &str,
    error: String,
    at: Timestamp,
) -> InstanceStatus {
    let reason = StateReason::internal_error(detail);
    let mut status = instance.status.clone();
    status.record_transition(InstanceState::Terminated, Some(&reason), at);
    status.state_reason = Some(reason);
    status.observed_generation = instance.metadata.generation;
    status.last_error = Some(ErrorRecord::new(error, at));
    status
}

/// [`boot_impossible`] because the instance's image is gone: no container was made.
pub(super) fn image_gone(
    instance: &Instance,
    error: &RuntimeError,
    at: Timestamp,
) -> InstanceStatus {
    let detail = format!(
        "the instance's image {} cannot be started: {error}",
        instance.spec.image_ref
    );
    InstanceStatus {
        container: None,
        ..boot_impossible(instance, &detail, error.to_string(), at)
    }
}

/// The status recording that the container did not stay where the plan put it; the state
/// waits for a pass that converges.
pub(super) fn not_converged(instance: &Instance, detail: &str, at: Timestamp) -> InstanceStatus {
    InstanceStatus {
        last_error: Some(ErrorRecord::new(detail, at)),
        ..instance.status.clone()
    }
}

/// The status recording a failed step or look, where clients see it.
pub(super) fn failed(instance: &Instance, error: &RuntimeError, at: Timestamp) -> InstanceStatus {
    let mut status = instance.status.clone();
    status.last_error = Some(ErrorRecord::new(error.to_string(), at));
    // While the instance has not reached what was asked, the failure is its StateReason,
    // where EC2 clients look; a converged instance keeps its own reason.
    if status.observed_generation < instance.metadata.generation || status.state.is_none() {
        status.state_reason = Some(StateReason::internal_error(&error.to_string()));
    }
    // A foreign container holds the name: the instance has no container of its own, so it
    // is not running, whatever it was; it boots (pending) once the name is free.
    if let RuntimeError::NameTaken(_) = error {
        status.container = None;
        if status.state == Some(InstanceState::Running) {
            let reason = StateReason::internal_error(&error.to_string());
            status.record_transition(InstanceState::Pending, Some(&reason), at);
            status.state_reason = Some(reason);
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{fixtures, now, DesiredState, PortMapping, PortProtocol};
    use crate::reconcile::fixtures::{container, plan_for};
    use crate::runtime::{Protocol, PublishedPort};

    #[test]
    fn mounted_volumes_are_what_the_container_sees() {
        let vol = |id: &str, mount_point: &str| AttachedVolume {
            volume_id: id.into(),
            size_gib: 1,
            device: "/dev/sdf".into(),
            mount_point: mount_point.into(),
            backing: Some((format!("ec2d-{id}"), format!("/v/{id}/_data"))),
        };
        let host = |path: &str, id: &str| HostMount {
            path: path.into(),
            source_root: format!("/v/{id}/_data").into(),
        };
        let attached = [vol("vol-1", "/mnt/sdf"), vol("vol-2", "/data")];
        let docker = [VolumeMount {
            name: "ec2d-vol-2".into(),
            target: "/data".into(),
        }];
        let ids = |m: Vec<MountedVolume>| m.into_iter().map(|v| v.volume_id).collect::<Vec<_>>();
        assert_eq!(
            ids(mounted_volumes(
                &attached,
                &[host("sdf", "vol-1")],
                true,
                &docker,
                &[]
            )),
            ["vol-1", "vol-2"]
        );
        // A host mount the container does not see does not count.
        assert_eq!(
            ids(mounted_volumes(
                &attached,
                &[host("sdf", "vol-1")],
                false,
                &[],
                &[]
            )),
            Vec::<String>::new()
        );
        // Another volume's directory at the path is not this volume.
        assert!(
            mounted_volumes(&attached[..1], &[host("sdf", "vol-9")], true, &[], &[]).is_empty()
        );
        // Detached but still mounted (its unmount failed): still listed, until it is gone.
        let before = MountedVolume {
            volume_id: "vol-7".into(),
            device: "/dev/sdg".into(),
            mount_point: "/mnt/sdg".into(),
        };
        let kept = mounted_volumes(
            &[],
            &[host("sdg", "vol-7")],
            true,
            &[],
            std::slice::from_ref(&before),
        );
        assert_eq!(kept, std::slice::from_ref(&before));
        assert!(mounted_volumes(&[], &[], true, &[], &[before]).is_empty());
    }

    /// An instance at generation 1 desired `desired`, last recorded in `was` for generation 0
    /// (the user asked for something since), with an error from an earlier pass.
    fn instance(desired: DesiredState, was: Option<InstanceState>) -> Instance {
        let mut inst = fixtures::instance();
        inst.spec.desired = desired;
        inst.status.state = was;
        inst.status.last_error = Some(ErrorRecord::new("earlier", now()));
        inst
    }

    /// `next_status` after the plan for a container in `observed` left it in `after`: the
    /// state and reason code it records, and whether it converged the generation.
    fn check(
        desired: DesiredState,
        was: Option<InstanceState>,
        observed: Option<ContainerState>,
        after: Option<ContainerState>,
        expect: (Option<InstanceState>, Option<&str>, bool),
    ) {
        let inst = instance(desired, was);
        let plan = plan_for(&inst, observed);
        let seen = after.map(container);
        let status = next_status(&inst, &plan, seen.as_ref(), now());
        let case = format!("desired={desired:?} was={was:?} observed={observed:?} after={after:?}");
        let reason = status.state_reason.as_ref().map(|r| r.code.as_str());
        let converged = status.observed_generation == inst.metadata.generation;
        assert_eq!((status.state, reason, converged), expect, "{case}");
        assert_eq!(
            status.container.map(|c| c.state),
            after.map(|s| s.as_str().to_string()),
            "{case}: the container as seen"
        );
        assert_eq!(
            status.last_error, None,
            "{case}: a pass that got here clears the error"
        );
    }

    #[test]
    fn next_status_table() {
        use ContainerState as C;
        use DesiredState as D;
        use InstanceState as S;
        let user = Some("Client.UserInitiatedShutdown");
        // Running is reached only once the container is seen running.
        check(
            D::Running,
            None,
            None,
            Some(C::Running),
            (Some(S::Running), None, true),
        );
        check(D::Running, None, None, Some(C::Exited), (None, None, false));
        check(D::Running, None, None, None, (None, None, false));
        check(
            D::Running,
            Some(S::Stopped),
            Some(C::Paused),
            Some(C::Running),
            (Some(S::Running), None, true),
        );
        // Stopped and terminated hold once the steps succeeded, with the user's reason.
        check(
            D::Stopped,
            Some(S::Running),
            Some(C::Running),
            Some(C::Paused),
            (Some(S::Stopped), user, true),
        );
        check(D::Stopped, None, None, None, (Some(S::Stopped), user, true));
        check(
            D::Terminated,
            Some(S::Running),
            Some(C::Running),
            None,
            (Some(S::Terminated), user, true),
        );
        // A container in passing: nothing is reached yet.
        check(
            D::Running,
            Some(S::Running),
            Some(C::Restarting),
            Some(C::Restarting),
            (Some(S::Running), None, false),
        );
    }

    #[test]
    fn an_instance_initiated_shutdown_is_remembered_for_its_generation() {
        let mut inst = instance(DesiredState::Running, Some(InstanceState::Running));
        inst.status.observed_generation = inst.metadata.generation;
        let plan = plan_for(&inst, Some(ContainerState::Exited));
        let exited = container(ContainerState::Exited);
        let status = next_status(&inst, &plan, Some(&exited), now());
        assert_eq!(status.state, Some(InstanceState::Stopped));
        assert_eq!(
            status.state_reason,
            Some(StateReason::instance_initiated_shutdown())
        );
        assert_eq!(status.shutdown_generation, Some(inst.metadata.generation));
        assert_eq!(status.transitions.len(), 1);
    }

    #[test]
    fn a_later_pass_keeps_the_reason_the_instance_got_where_it_is_with() {
        let mut inst = instance(DesiredState::Running, Some(InstanceState::Terminated));
        inst.status.observed_generation = inst.metadata.generation;
        let reason = StateReason::internal_error("boot impossible");
        inst.status.state_reason = Some(reason.clone());
        // The terminated instance's leftover container is removed.
        let plan = plan_for(&inst, Some(ContainerState::Exited));
        let status = next_status(&inst, &plan, None, now());
        assert_eq!(status.state, Some(InstanceState::Terminated));
        assert_eq!(status.state_reason, Some(reason));
        assert!(status.transitions.is_empty(), "no transition: it was there");
    }

    #[test]
    fn the_container_is_recorded_with_its_ports_and_the_reboots_carried_out() {
        let mut inst = instance(DesiredState::Running, None);
        inst.spec.reboots_requested = 2;
        let plan = plan_for(&inst, None);
        let booted = ObservedContainer {
            ip_address: Some("172.17.0.2".into()),
            ports: vec![PublishedPort {
                container_port: 22,
                protocol: Protocol::Tcp,
                host_ip: "127.0.0.1".into(),
                host_port: 32768,
            }],
            ..container(ContainerState::Running)
        };
        let status = next_status(&inst, &plan, Some(&booted), now());
        assert_eq!(
            status.container,
            Some(ContainerObservation {
                id: "c1".into(),
                state: "running".into(),
                ip_address: Some("172.17.0.2".into()),
                ports: vec![PortMapping {
                    container_port: 22,
                    protocol: PortProtocol::Tcp,
                    host_ip: "127.0.0.1".into(),
                    host_port: 32768,
                }],
            })
        );
        assert_eq!(
            status.reboots_done, 2,
            "a fresh boot carries the reboots out"
        );
    }

    #[test]
    fn a_boot_that_cannot_succeed_ends_terminated() {
        let mut inst = instance(DesiredState::Running, None);
        inst.status.container = Some(ContainerObservation {
            id: "old".into(),
            state: "exited".into(),
            ip_address: None,
            ports: vec![],
        });
        let at = now();
        let cannot_run = boot_impossible(&inst, "exit code 127", "exit code 127".into(), at);
        assert_eq!(cannot_run.state, Some(InstanceState::Terminated));
        assert_eq!(
            cannot_run.state_reason,
            Some(StateReason::internal_error("exit code 127"))
        );
        assert_eq!(cannot_run.observed_generation, inst.metadata.generation);
        assert_eq!(
            cannot_run.last_error,
            Some(ErrorRecord::new("exit code 127", at))
        );
        assert!(
            cannot_run.container.is_some(),
            "left for the next pass to clean up"
        );

        let gone = image_gone(&inst, &RuntimeError::NotFound("no such image".into()), at);
        assert_eq!(gone.state, Some(InstanceState::Terminated));
        assert_eq!(
            gone.state_reason.unwrap().message,
            "Server.InternalError: the instance's image localstack-ec2/test-ami:ami-000001 \
             cannot be started: not found: no such image"
        );
        assert_eq!(gone.container, None);
    }

    #[test]
    fn a_failure_is_the_reason_only_until_the_instance_converged() {
        let error = RuntimeError::Unavailable("engine down".into());
        let pending = instance(DesiredState::Running, None);
        let status = failed(&pending, &error, now());
        assert_eq!(status.state_reason.unwrap().code, "Server.InternalError");
        assert_eq!(status.last_error.unwrap().message, error.to_string());

        let mut running = instance(DesiredState::Running, Some(InstanceState::Running));
        running.status.observed_generation = running.metadata.generation;
        let status = failed(&running, &error, now());
        assert_eq!(
            status.state_reason, None,
            "a converged instance keeps its own"
        );
        assert_eq!(status.state, Some(InstanceState::Running));

        // A foreign container holds the name: no container of its own, so not running.
        let taken = RuntimeError::NameTaken("localstack-ec2.i-00000001".into());
        let status = failed(&running, &taken, now());
        assert_eq!(status.state, Some(InstanceState::Pending));
        assert_eq!(status.container, None);
        assert_eq!(status.state_reason.unwrap().code, "Server.InternalError");
    }
}
