//! The pure planner: from an instance's spec and status and the observed container, the Docker steps that converge them.
//!
//! This is where EC2 verbs meet Docker verbs, in one place: Stop pauses, Start unpauses,
//! Terminate stops (and removes, when configured). An opt-in real stop/start would change
//! only this file.

use std::time::Duration;

use crate::hostmnt::HostMount;
use crate::model::{DesiredState, Instance, InstanceState, ShutdownBehavior};
use crate::runtime::{
    ContainerSpec, ContainerState, NetworkAttachment, ObservedContainer, ResourceLimits,
    SignalEvidence,
};

/// Facts about the world the planner cannot see in the container alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The container's main process ended because of something outside the instance: the
    /// engine signalled it (`docker stop`, `docker kill`) or was down or restarting. That is
    /// drift to converge back, not the instance's own shutdown.
    pub stopped_from_outside: bool,
    /// The CPU and memory limits the instance's type asks of its container (with the host's
    /// CPU count and `EC2_DOCKER_FLAGS` taken into account); `None` ones are not asked for.
    pub limits: ResourceLimits,
    /// The instance's place on its VPC's network and that network's live Docker id; `None`
    /// when the instance is not meant to be on one (or its network was refused).
    pub network: Option<(NetworkAttachment, String)>,
    /// The volumes attached to the instance and what is mounted for it on the host.
    pub mounts: MountFacts,
}

/// A volume whose attachment to the instance is in force, as its record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedVolume {
    /// `vol-…`.
    pub volume_id: String,
    /// The device it is attached as.
    pub device: String,
    /// Where it appears in the container ([`crate::model::volume::mount_point`]).
    pub mount_point: String,
    /// Its size, GiB (`EC2_MOUNT_BLOCK_DEVICES` reads it as MiB, as LocalStack does).
    pub size_gib: u32,
    /// The Docker volume holding its data and that volume's `Mountpoint` on the host, once
    /// the volume is ready; `None` while it is being made.
    pub backing: Option<(String, String)>,
}

impl AttachedVolume {
    /// Its path under the instance's directory of the propagation root, which the container
    /// sees at `/mnt`: `None` for a mount point outside `/mnt`, which only a container's
    /// creation can give it.
    pub fn hot_path(&self) -> Option<&str> {
        hot_path(&self.mount_point)
    }
}

/// A container mount point's path under `/mnt`, if it is under it.
pub fn hot_path(mount_point: &str) -> Option<&str> {
    mount_point
        .strip_prefix(crate::hostmnt::CONTAINER_DIR)?
        .strip_prefix('/')
        .filter(|p| !p.is_empty())
}

/// What the plan needs to know about the instance's volumes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountFacts {
    /// The host's mount propagation point is set up: volumes can be mounted into running
    /// containers.
    pub hot: bool,
    /// The observed container was created with the instance's directory bound at `/mnt`
    /// (`rslave`), so what is mounted there on the host appears inside it.
    pub container_bound: bool,
    /// The volumes attached to the instance (in force), ready or not.
    pub attached: Vec<AttachedVolume>,
    /// What is mounted under the instance's directory on the host, as mountinfo lists it.
    pub host: Vec<HostMount>,
}

impl MountFacts {
    /// The host mounts the container should have: each ready volume under `/mnt`, by path,
    /// with its source; none unless the container (the observed one or the one being made)
    /// receives them.
    fn wanted(&self, receives: bool) -> Vec<(&str, &str)> {
        if !receives {
            return Vec::new();
        }
        let mut wanted: Vec<(&str, &str)> = self
            .attached
            .iter()
            .filter_map(|v| Some((v.hot_path()?, v.backing.as_ref()?.1.as_str())))
            .collect();
        // Parents before children; one volume per path (the first attached).
        wanted.sort_by(|a, b| a.0.cmp(b.0));
        wanted.dedup_by(|b, a| a.0 == b.0);
        wanted
    }

    /// A volume is attached but not ready yet: the instance is looked at again shortly (the
    /// volume's status changing wakes no one).
    pub fn waiting_for_volumes(&self) -> bool {
        self.attached.iter().any(|v| v.backing.is_none())
    }
}

/// Settings the planner needs.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    /// Remove the container on termination (`EC2_REMOVE_CONTAINERS`).
    pub remove_containers: bool,
    /// Grace period for `docker stop`.
    pub stop_timeout: Duration,
}

/// One side effect on the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create and start a fresh container (a boot).
    Create(Box<ContainerSpec>),
    /// Start an existing, not running container.
    Start(String),
    /// Freeze the container (StopInstances).
    Pause(String),
    /// Thaw the container (StartInstances).
    Unpause(String),
    /// Stop the container (TerminateInstances).
    Stop(String),
    /// Remove the container.
    Remove(String),
    /// Restart the running container in place (RebootInstances): same container, same
    /// file system, same published ports; the boot script runs again.
    Restart(String),
    /// Give the container the CPU and memory limits its instance type asks for, in place
    /// (`docker update`): a type changed by ModifyInstanceAttribute, or a container made
    /// without them.
    UpdateLimits(String, ResourceLimits),
    /// Put the container back on its VPC's network at its address (`docker network connect`):
    /// the network was removed behind its back (and made again), or it was disconnected.
    Connect(String, NetworkAttachment),
    /// Bind-mount a volume's host directory (`source`) at `path` under the instance's
    /// directory of the propagation root: it appears at `/mnt/<path>` in the container.
    Mount {
        /// Under the instance's directory.
        path: String,
        /// The Docker volume's `Mountpoint` on the host.
        source: String,
    },
    /// Unmount what is at `path` under the instance's directory (detached, or drifted).
    Unmount(String),
    /// Unmount everything under the instance's directory and remove it (termination).
    ForgetMounts,
}

impl Step {
    /// The step in a few words, for logs (a container spec in full would drown them).
    pub fn summary(&self) -> String {
        let short = |id: &str| id.chars().take(12).collect::<String>();
        match self {
            Self::Create(spec) => format!("create {} from {}", spec.name, spec.image),
            Self::Start(id) => format!("start {}", short(id)),
            Self::Pause(id) => format!("pause {}", short(id)),
            Self::Unpause(id) => format!("unpause {}", short(id)),
            Self::Stop(id) => format!("stop {}", short(id)),
            Self::Remove(id) => format!("remove {}", short(id)),
            Self::Restart(id) => format!("restart {}", short(id)),
            Self::UpdateLimits(id, limits) => format!(
                "update {} to cpus={:?} memory={:?}",
                short(id),
                limits.nano_cpus,
                limits.memory_bytes
            ),
            Self::Connect(id, attachment) => format!(
                "connect {} to {} at {}",
                short(id),
                attachment.network,
                attachment.ipv4_address
            ),
            Self::Mount { path, source } => format!("mount {source} at {path}"),
            Self::Unmount(path) => format!("unmount {path}"),
            Self::ForgetMounts => "forget mounts".to_string(),
        }
    }

    /// Whether the step acts on the host's mounts rather than on the container.
    pub fn is_mount(&self) -> bool {
        matches!(
            self,
            Self::Mount { .. } | Self::Unmount(_) | Self::ForgetMounts
        )
    }
}

/// What the planner decided: the steps, and the state reached once they succeed.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Steps to apply, in order.
    pub steps: Vec<Step>,
    /// The EC2 state the instance is in once the steps are done; `None` while the
    /// container is in a passing state (restarting, removing) and must be observed again.
    pub reaches: Option<InstanceState>,
    /// The instance shut itself down (its main process ended): the state reached is the
    /// instance's own doing, `Client.InstanceInitiatedShutdown`, not the user's.
    pub instance_initiated: bool,
}

impl Plan {
    fn reach(state: InstanceState, steps: Vec<Step>) -> Self {
        Self {
            steps,
            reaches: Some(state),
            instance_initiated: false,
        }
    }

    fn wait() -> Self {
        Self {
            steps: Vec::new(),
            reaches: None,
            instance_initiated: false,
        }
    }

    fn shut_down_by_instance(state: InstanceState, steps: Vec<Step>) -> Self {
        Self {
            steps,
            reaches: Some(state),
            instance_initiated: true,
        }
    }

    /// Whether the plan boots a fresh container.
    pub fn creates(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Create(_)))
    }
}

/// Plans the steps that make the observed container match the instance's spec.
/// `container_spec` builds the container to create; it is only called when a boot is needed.
pub fn plan(
    instance: &Instance,
    observed: Option<&ObservedContainer>,
    facts: Facts,
    settings: &PlanSettings,
    container_spec: impl FnOnce() -> ContainerSpec,
) -> Plan {
    let network = facts.network.clone();
    let mounts = facts.mounts.clone();
    let plan = plan_container(instance, observed, facts, settings, container_spec);
    let plan = reattached(plan, observed, network.as_ref());
    with_mounts(plan, instance, &mounts)
}

/// The host mounts that make the container see its attached volumes, after the container's
/// own steps: a container that will run or stay frozen (a stopped instance is a paused
/// container: mounting into it is fine) gets each ready volume under `/mnt` mounted and
/// anything else under its directory unmounted (a detached volume, a mount whose source
/// changed); a mount removed behind ec2d's back is made again, since the host is what is
/// observed. A terminating instance's mounts are all undone and its directory removed, after
/// its container is stopped and removed. Nothing while the container is passing through a
/// state (`reaches` unknown), or without a propagation point.
fn with_mounts(mut plan: Plan, instance: &Instance, facts: &MountFacts) -> Plan {
    // A boot waits for the volumes attached to the instance to be made: its user data may
    // write into them at once (and without the propagation point, what a container is not
    // created with it never gets). The instance is looked at again shortly.
    if plan.creates() && facts.waiting_for_volumes() {
        return Plan::wait();
    }
    if !facts.hot {
        return plan;
    }
    match plan.reaches {
        Some(InstanceState::Terminated) => {
            let mut host: Vec<&HostMount> = facts.host.iter().collect();
            host.sort_by_key(|m| std::cmp::Reverse(m.path.matches('/').count()));
            plan.steps
                .extend(host.iter().map(|m| Step::Unmount(m.path.clone())));
            if !facts.host.is_empty() || instance.status.state != Some(InstanceState::Terminated) {
                plan.steps.push(Step::ForgetMounts);
            }
        }
        Some(InstanceState::Running | InstanceState::Stopped) => {
            let wanted = facts.wanted(plan.creates() || facts.container_bound);
            let mut unmounts: Vec<&HostMount> = facts
                .host
                .iter()
                .filter(|m| {
                    !wanted.iter().any(|(path, source)| {
                        m.path == *path && m.is_of(std::path::Path::new(source))
                    })
                })
                .collect();
            unmounts.sort_by_key(|m| std::cmp::Reverse(m.path.matches('/').count()));
            plan.steps
                .extend(unmounts.iter().map(|m| Step::Unmount(m.path.clone())));
            // On a boot the mounts come first: the container starts with its volumes in
            // place (its bind of the directory takes what is mounted under it along).
            let mut at = plan
                .steps
                .iter()
                .position(|s| matches!(s, Step::Create(_)))
                .unwrap_or(plan.steps.len());
            for (path, source) in wanted {
                let mounted = facts
                    .host
                    .iter()
                    .any(|m| m.path == path && m.is_of(std::path::Path::new(source)));
                if !mounted {
                    plan.steps.insert(
                        at,
                        Step::Mount {
                            path: path.to_string(),
                            source: source.to_string(),
                        },
                    );
                    at += 1;
                }
            }
        }
        _ => {}
    }
    plan
}

/// A container meant to run on its VPC's network whose attachment is gone (disconnected) or
/// names a network since removed gets its place back, at the same address, before it starts
/// (the engine refuses to start it otherwise), or at once when it runs. A container that has a
/// network, but not its VPC's, booted on the default bridge when its VPC's network was refused,
/// and stays there: moving it would change its address under the user.
fn reattached(
    mut plan: Plan,
    observed: Option<&ObservedContainer>,
    network: Option<&(NetworkAttachment, String)>,
) -> Plan {
    let (Some(container), Some((attachment, network_id))) = (observed, network) else {
        return plan;
    };
    if plan.reaches != Some(InstanceState::Running) || plan.creates() {
        return plan;
    }
    let detached = match container.networks.get(&attachment.network) {
        Some(attached_to) => attached_to != network_id,
        None => container.networks.is_empty(),
    };
    if !detached {
        return plan;
    }
    let connect = Step::Connect(container.id.clone(), attachment.clone());
    match plan
        .steps
        .iter()
        .position(|s| matches!(s, Step::Start(_) | Step::Restart(_)))
    {
        Some(at) => plan.steps.insert(at, connect),
        None => plan.steps.push(connect),
    }
    plan
}

fn plan_container(
    instance: &Instance,
    observed: Option<&ObservedContainer>,
    facts: Facts,
    settings: &PlanSettings,
    container_spec: impl FnOnce() -> ContainerSpec,
) -> Plan {
    use ContainerState as C;
    use InstanceState as S;

    // A terminated instance is finished; only a leftover container is cleaned up.
    let terminated = instance.status.state == Some(S::Terminated);
    let desired = if terminated {
        DesiredState::Terminated
    } else {
        instance.spec.desired
    };

    // The instance shut itself down earlier and the user has not asked for anything since:
    // it stays down (StartInstances bumps the generation and lifts this).
    let shut_down_at_this_generation =
        instance.status.shutdown_generation == Some(instance.metadata.generation);
    if desired == DesiredState::Running && shut_down_at_this_generation {
        return Plan::shut_down_by_instance(S::Stopped, vec![]);
    }

    match (desired, observed) {
        (DesiredState::Running, None) => {
            Plan::reach(S::Running, vec![Step::Create(Box::new(container_spec()))])
        }
        (DesiredState::Running, Some(c)) => match c.state {
            C::Running if reboot_pending(instance) => Plan::reach(
                S::Running,
                limited(c, &facts, vec![Step::Restart(c.id.clone())]),
            ),
            C::Running => Plan::reach(S::Running, limited(c, &facts, vec![])),
            C::Paused => Plan::reach(
                S::Running,
                limited(c, &facts, vec![Step::Unpause(c.id.clone())]),
            ),
            // The main process ended on its own (poweroff, `kill 1`) while the instance was
            // running as asked: EC2's instance-initiated shutdown, per its shutdown behaviour.
            C::Exited if was_running_as_asked(instance) && !facts.stopped_from_outside => {
                match instance.spec.shutdown_behavior {
                    ShutdownBehavior::Stop => Plan::shut_down_by_instance(S::Stopped, vec![]),
                    ShutdownBehavior::Terminate => {
                        let steps = if settings.remove_containers {
                            vec![Step::Remove(c.id.clone())]
                        } else {
                            vec![]
                        };
                        Plan::shut_down_by_instance(S::Terminated, steps)
                    }
                }
            }
            // Stopped by the engine (restart), or StartInstances after an instance-initiated
            // stop: start it again with its file system intact.
            C::Exited => Plan::reach(
                S::Running,
                limited(c, &facts, vec![Step::Start(c.id.clone())]),
            ),
            // A container that was created but never started is a boot cut short (ec2d
            // died in between): its boot never ran, so it is not this instance's disk yet.
            // A dead one cannot be started again. Either way: boot a fresh one.
            C::Created | C::Dead => Plan::reach(
                S::Running,
                vec![
                    Step::Remove(c.id.clone()),
                    Step::Create(Box::new(container_spec())),
                ],
            ),
            C::Restarting | C::Removing => Plan::wait(),
        },
        (DesiredState::Stopped, None) => Plan::reach(S::Stopped, vec![]),
        // A stopped instance's container gets its type's limits while frozen, so a type
        // changed while stopped (the only time EC2 allows it) holds from the next start.
        (DesiredState::Stopped, Some(c)) => match c.state {
            C::Running => Plan::reach(
                S::Stopped,
                limited(c, &facts, vec![Step::Pause(c.id.clone())]),
            ),
            C::Paused | C::Exited => Plan::reach(S::Stopped, limited(c, &facts, vec![])),
            C::Created | C::Dead => Plan::reach(S::Stopped, vec![]),
            C::Restarting | C::Removing => Plan::wait(),
        },
        (DesiredState::Terminated, None) => Plan::reach(S::Terminated, vec![]),
        (DesiredState::Terminated, Some(c)) => {
            let mut steps = Vec::new();
            match c.state {
                // Docker refuses to stop a frozen container: thaw it first.
                C::Paused => {
                    steps.push(Step::Unpause(c.id.clone()));
                    steps.push(Step::Stop(c.id.clone()));
                }
                C::Running | C::Restarting => steps.push(Step::Stop(c.id.clone())),
                C::Created | C::Exited | C::Dead | C::Removing => {}
            }
            if settings.remove_containers && c.state != C::Removing {
                steps.push(Step::Remove(c.id.clone()));
            }
            Plan::reach(S::Terminated, steps)
        }
    }
}

/// `steps` on a container that will go on as the instance's, preceded by giving it the limits
/// its type asks for when it lacks them, so a start or thaw already runs within them. Only
/// an inspected container's limits are known: one seen otherwise is left as it is.
fn limited(c: &ObservedContainer, facts: &Facts, steps: Vec<Step>) -> Vec<Step> {
    match c.limits {
        Some(seen) if !facts.limits.satisfied_by(&seen) => {
            let mut all = vec![Step::UpdateLimits(c.id.clone(), facts.limits)];
            all.extend(steps);
            all
        }
        _ => steps,
    }
}

/// Whether [`plan`] boots a fresh container for the instance. The reconciler asks before
/// planning, since only a boot needs to know how the image runs (an engine call). It is the
/// plan itself, run with a placeholder container, so the two cannot disagree: facts and
/// settings never decide a boot (they tell why a container exited and whether a finished
/// one is removed), so defaults stand in for them.
pub fn boots(instance: &Instance, observed: Option<&ObservedContainer>) -> bool {
    let settings = PlanSettings {
        remove_containers: false,
        stop_timeout: Duration::ZERO,
    };
    plan(
        instance,
        observed,
        Facts::default(),
        &settings,
        ContainerSpec::default,
    )
    .creates()
}

/// Whether the plan turns on why the container's main process ended: it ended while the
/// instance was running as asked, and no instance-initiated shutdown is recorded for it yet.
/// Only then is it worth finding out (the engine's event log costs a request).
pub fn exit_cause_matters(instance: &Instance, observed: Option<&ObservedContainer>) -> bool {
    observed.is_some_and(|c| c.state == ContainerState::Exited)
        && instance.spec.desired == DesiredState::Running
        && instance.status.shutdown_generation != Some(instance.metadata.generation)
        && was_running_as_asked(instance)
}

/// Whether a container's end came from outside the instance, from what is known about it:
/// a signal ec2d saw on the event stream (or an engine outage at that moment), else the
/// engine's event log, else the exit code.
///
/// Without a record either way, only a clean exit counts as the instance's own: the boot
/// script exits 0 for busybox's `halt`/`poweroff` (SIGUSR1/SIGUSR2) and 143 for SIGTERM,
/// and SIGKILL (137) cannot come from inside a container to its PID 1. An exit that cannot be
/// told apart restores the desired state, since only the API changes what the user asked for.
pub fn ended_from_outside(signal_seen: bool, log: SignalEvidence, exit_code: Option<i64>) -> bool {
    if signal_seen {
        return true;
    }
    match log {
        SignalEvidence::Signalled => true,
        SignalEvidence::NotSignalled => false,
        SignalEvidence::Unknown => exit_code != Some(0),
    }
}

/// Whether RebootInstances asked for a reboot not yet carried out.
fn reboot_pending(instance: &Instance) -> bool {
    instance.spec.reboots_requested > instance.status.reboots_done
}

/// `status.rebootsDone` once `plan` has been applied: every requested reboot is carried out
/// by a restart, a fresh boot or a start of the container (each runs the boot anew), and
/// is void when the instance is not meant to run (a stopped instance is not rebooted later).
pub fn reboots_done_after(instance: &Instance, plan: &Plan) -> u64 {
    let booted = plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::Restart(_) | Step::Create(_) | Step::Start(_)));
    if booted || instance.spec.desired != DesiredState::Running {
        instance.spec.reboots_requested
    } else {
        instance.status.reboots_done
    }
}

/// The instance was running and its status describes the current spec: nothing the user
/// asked for is pending, so an exit is the instance's own.
fn was_running_as_asked(instance: &Instance) -> bool {
    instance.status.state == Some(InstanceState::Running)
        && instance.status.observed_generation >= instance.metadata.generation
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;
    use crate::reconcile::fixtures::container;

    fn settings(remove: bool) -> PlanSettings {
        PlanSettings {
            remove_containers: remove,
            stop_timeout: Duration::from_secs(1),
        }
    }

    /// Renders steps as short words so the table below reads like a spec.
    fn words(plan: &Plan) -> Vec<&'static str> {
        plan.steps
            .iter()
            .map(|s| match s {
                Step::Create(_) => "create",
                Step::Start(_) => "start",
                Step::Pause(_) => "pause",
                Step::Unpause(_) => "unpause",
                Step::Stop(_) => "stop",
                Step::Remove(_) => "remove",
                Step::Restart(_) => "restart",
                Step::UpdateLimits(..) => "update",
                Step::Connect(..) => "connect",
                Step::Mount { .. } => "mount",
                Step::Unmount(_) => "unmount",
                Step::ForgetMounts => "forget",
            })
            .collect()
    }

    fn check(
        desired: DesiredState,
        observed: Option<ContainerState>,
        remove: bool,
        expect: &[&str],
        reaches: Option<InstanceState>,
    ) {
        let mut inst = fixtures::instance();
        inst.spec.desired = desired;
        let obs = observed.map(container);
        let plan = plan(
            &inst,
            obs.as_ref(),
            Facts::default(),
            &settings(remove),
            ContainerSpec::default,
        );
        assert_eq!(
            words(&plan),
            expect,
            "desired={desired:?} observed={observed:?} remove={remove}"
        );
        assert_eq!(
            plan.reaches, reaches,
            "desired={desired:?} observed={observed:?}"
        );
    }

    #[test]
    fn plan_table() {
        use ContainerState as C;
        use DesiredState as D;
        use InstanceState as S;
        check(D::Running, None, true, &["create"], Some(S::Running));
        check(D::Running, Some(C::Running), true, &[], Some(S::Running));
        check(
            D::Running,
            Some(C::Paused),
            true,
            &["unpause"],
            Some(S::Running),
        );
        check(
            D::Running,
            Some(C::Exited),
            true,
            &["start"],
            Some(S::Running),
        );
        check(
            D::Running,
            Some(C::Created),
            true,
            &["remove", "create"],
            Some(S::Running),
        );
        check(
            D::Running,
            Some(C::Dead),
            true,
            &["remove", "create"],
            Some(S::Running),
        );
        check(D::Running, Some(C::Restarting), true, &[], None);
        check(
            D::Stopped,
            Some(C::Running),
            true,
            &["pause"],
            Some(S::Stopped),
        );
        check(D::Stopped, Some(C::Paused), true, &[], Some(S::Stopped));
        check(D::Stopped, None, true, &[], Some(S::Stopped));
        check(
            D::Terminated,
            Some(C::Running),
            true,
            &["stop", "remove"],
            Some(S::Terminated),
        );
        check(
            D::Terminated,
            Some(C::Running),
            false,
            &["stop"],
            Some(S::Terminated),
        );
        check(
            D::Terminated,
            Some(C::Paused),
            true,
            &["unpause", "stop", "remove"],
            Some(S::Terminated),
        );
        check(
            D::Terminated,
            Some(C::Exited),
            true,
            &["remove"],
            Some(S::Terminated),
        );
        check(
            D::Terminated,
            Some(C::Exited),
            false,
            &[],
            Some(S::Terminated),
        );
        check(D::Terminated, None, true, &[], Some(S::Terminated));
    }

    #[test]
    fn a_requested_reboot_restarts_a_running_container_once() {
        let mut inst = fixtures::instance();
        inst.spec.reboots_requested = 2;
        inst.status.reboots_done = 1;
        let plan_for = |inst: &Instance, state| {
            plan(
                inst,
                Some(&container(state)),
                Facts::default(),
                &settings(true),
                ContainerSpec::default,
            )
        };
        let rebooting = plan_for(&inst, ContainerState::Running);
        assert_eq!(words(&rebooting), vec!["restart"]);
        assert_eq!(rebooting.reaches, Some(InstanceState::Running));
        assert_eq!(reboots_done_after(&inst, &rebooting), 2);

        // A frozen container is thawed first; the reboot waits for the next pass.
        let thawing = plan_for(&inst, ContainerState::Paused);
        assert_eq!(words(&thawing), vec!["unpause"]);
        assert_eq!(reboots_done_after(&inst, &thawing), 1);

        // A fresh boot or a start carries the reboot out.
        let booting = plan(
            &inst,
            None,
            Facts::default(),
            &settings(true),
            ContainerSpec::default,
        );
        assert_eq!(words(&booting), vec!["create"]);
        assert_eq!(reboots_done_after(&inst, &booting), 2);

        // Carried out: nothing more to do.
        inst.status.reboots_done = 2;
        assert!(plan_for(&inst, ContainerState::Running).steps.is_empty());

        // Not meant to run: the reboot is void, and the instance is never restarted.
        inst.spec.reboots_requested = 3;
        inst.spec.desired = DesiredState::Stopped;
        let stopping = plan_for(&inst, ContainerState::Running);
        assert_eq!(words(&stopping), vec!["pause"]);
        assert_eq!(reboots_done_after(&inst, &stopping), 3);
    }

    #[test]
    fn a_terminated_instance_never_boots_again() {
        let mut inst = fixtures::instance();
        inst.status.state = Some(InstanceState::Terminated);
        let plan = plan(
            &inst,
            None,
            Facts::default(),
            &settings(true),
            ContainerSpec::default,
        );
        assert!(plan.steps.is_empty());
        let running = container(ContainerState::Running);
        let plan2 = super::plan(
            &inst,
            Some(&running),
            Facts::default(),
            &settings(true),
            ContainerSpec::default,
        );
        assert_eq!(words(&plan2), ["stop", "remove"]);
    }

    /// `boots` for an instance desired `desired`, whose status is `state` (`shut_down`: it
    /// shut itself down at this generation), with a container in `observed`; and the plan
    /// agrees, whatever the facts and settings.
    fn check_boots(
        desired: DesiredState,
        state: Option<InstanceState>,
        shut_down: bool,
        observed: Option<ContainerState>,
        expect: bool,
    ) {
        let mut inst = fixtures::instance();
        inst.spec.desired = desired;
        inst.status.state = state;
        inst.status.observed_generation = inst.metadata.generation;
        inst.status.shutdown_generation = shut_down.then_some(inst.metadata.generation);
        let obs = observed.map(container);
        let case = format!(
            "desired={desired:?} state={state:?} shut_down={shut_down} observed={observed:?}"
        );
        assert_eq!(boots(&inst, obs.as_ref()), expect, "{case}");
        let limits = ResourceLimits {
            nano_cpus: Some(1),
            memory_bytes: Some(1),
        };
        for stopped_from_outside in [false, true] {
            for limits in [ResourceLimits::default(), limits] {
                for remove in [false, true] {
                    let facts = Facts {
                        stopped_from_outside,
                        limits,
                        network: None,
                        mounts: MountFacts::default(),
                    };
                    let planned = plan(
                        &inst,
                        obs.as_ref(),
                        facts.clone(),
                        &settings(remove),
                        ContainerSpec::default,
                    );
                    assert_eq!(
                        planned.creates(),
                        expect,
                        "{case} {facts:?} remove={remove}"
                    );
                }
            }
        }
    }

    #[test]
    fn boots_table() {
        use ContainerState as C;
        use DesiredState as D;
        use InstanceState as S;
        let running = Some(S::Running);
        // No container, or one that can never run as this instance: a fresh boot.
        check_boots(D::Running, None, false, None, true);
        check_boots(D::Running, running, false, None, true);
        check_boots(D::Running, running, false, Some(C::Created), true);
        check_boots(D::Running, running, false, Some(C::Dead), true);
        // A container to carry on with, or one in passing: no boot.
        check_boots(D::Running, running, false, Some(C::Running), false);
        check_boots(D::Running, running, false, Some(C::Paused), false);
        check_boots(D::Running, running, false, Some(C::Exited), false);
        check_boots(D::Running, running, false, Some(C::Restarting), false);
        check_boots(D::Running, running, false, Some(C::Removing), false);
        // Not meant to run: never a boot.
        check_boots(D::Stopped, None, false, None, false);
        check_boots(D::Stopped, Some(S::Stopped), false, Some(C::Created), false);
        check_boots(D::Terminated, None, false, None, false);
        check_boots(D::Terminated, running, false, Some(C::Dead), false);
        // Terminated, or shut down by its own hand at this generation: it stays down.
        check_boots(D::Running, Some(S::Terminated), false, None, false);
        check_boots(
            D::Running,
            Some(S::Terminated),
            false,
            Some(C::Created),
            false,
        );
        check_boots(D::Running, Some(S::Stopped), true, None, false);
        check_boots(D::Running, Some(S::Stopped), true, Some(C::Dead), false);
    }

    const MICRO: ResourceLimits = ResourceLimits {
        nano_cpus: Some(2_000_000_000),
        memory_bytes: Some(1 << 30),
    };

    /// The plan for an instance desired `desired` whose type asks for `wanted`, with its
    /// container in `state` and limits `seen` (`None`: not inspected); an update step carries
    /// exactly `wanted`.
    fn check_limits(
        desired: DesiredState,
        state: ContainerState,
        wanted: ResourceLimits,
        seen: Option<ResourceLimits>,
        expect: &[&str],
    ) {
        let mut inst = fixtures::instance();
        inst.spec.desired = desired;
        let observed = ObservedContainer {
            limits: seen,
            ..container(state)
        };
        let facts = Facts {
            limits: wanted,
            ..Facts::default()
        };
        let planned = plan(
            &inst,
            Some(&observed),
            facts,
            &settings(true),
            ContainerSpec::default,
        );
        let case = format!("desired={desired:?} state={state:?} wanted={wanted:?} seen={seen:?}");
        assert_eq!(words(&planned), expect, "{case}");
        for step in &planned.steps {
            if let Step::UpdateLimits(id, limits) = step {
                assert_eq!((id.as_str(), *limits), ("c1", wanted), "{case}");
            }
        }
    }

    #[test]
    fn limits_table() {
        use ContainerState as C;
        use DesiredState as D;
        let none = Some(ResourceLimits::default());
        let small = Some(ResourceLimits {
            memory_bytes: Some(2 << 30),
            ..MICRO
        });
        // Already there, or not known (not inspected): nothing to do.
        check_limits(D::Running, C::Running, MICRO, Some(MICRO), &[]);
        check_limits(D::Running, C::Running, MICRO, None, &[]);
        // Missing or different: updated in place, before a start or thaw.
        check_limits(D::Running, C::Running, MICRO, none, &["update"]);
        check_limits(D::Running, C::Running, MICRO, small, &["update"]);
        check_limits(D::Running, C::Paused, MICRO, small, &["update", "unpause"]);
        check_limits(D::Running, C::Exited, MICRO, small, &["update", "start"]);
        // Stopped: the container gets them while frozen (the type changes only then).
        check_limits(D::Stopped, C::Paused, MICRO, small, &["update"]);
        check_limits(D::Stopped, C::Exited, MICRO, small, &["update"]);
        check_limits(D::Stopped, C::Running, MICRO, small, &["update", "pause"]);
        check_limits(D::Stopped, C::Created, MICRO, small, &[]);
        // A container on its way out, or about to be replaced, is not updated.
        check_limits(D::Terminated, C::Running, MICRO, small, &["stop", "remove"]);
        check_limits(D::Running, C::Dead, MICRO, small, &["remove", "create"]);
        check_limits(D::Running, C::Restarting, MICRO, small, &[]);
        // Limits not asked for are left as they are: turned off, the CPU count unknown, or
        // set by EC2_DOCKER_FLAGS.
        check_limits(
            D::Running,
            C::Running,
            ResourceLimits::default(),
            small,
            &[],
        );
        let memory_only = ResourceLimits {
            nano_cpus: None,
            ..MICRO
        };
        let seen = Some(ResourceLimits {
            nano_cpus: None,
            ..MICRO
        });
        check_limits(D::Running, C::Running, memory_only, seen, &[]);
        check_limits(D::Running, C::Running, memory_only, small, &["update"]);
    }

    #[test]
    fn a_reboot_or_an_instance_initiated_shutdown_and_limits() {
        let facts = Facts {
            limits: MICRO,
            ..Facts::default()
        };
        let unlimited = ObservedContainer {
            limits: Some(ResourceLimits::default()),
            ..container(ContainerState::Running)
        };
        // A reboot restarts within the limits.
        let mut inst = fixtures::instance();
        inst.spec.reboots_requested = 1;
        let rebooting = plan(
            &inst,
            Some(&unlimited),
            facts.clone(),
            &settings(true),
            ContainerSpec::default,
        );
        assert_eq!(words(&rebooting), ["update", "restart"]);
        // A container that shut itself down stays as it is until started again.
        let mut inst = fixtures::instance();
        inst.status.state = Some(InstanceState::Running);
        inst.status.observed_generation = inst.metadata.generation;
        let exited = ObservedContainer {
            state: ContainerState::Exited,
            exit_code: Some(0),
            ..unlimited
        };
        let shut_down = plan(
            &inst,
            Some(&exited),
            facts.clone(),
            &settings(true),
            ContainerSpec::default,
        );
        assert!(shut_down.instance_initiated);
        assert!(shut_down.steps.is_empty());
    }
}

#[cfg(test)]
mod shutdown_tests {
    use super::*;
    use crate::model::fixtures;
    use crate::reconcile::fixtures::container;

    fn exited() -> ObservedContainer {
        ObservedContainer {
            exit_code: Some(143),
            ..container(ContainerState::Exited)
        }
    }

    fn running_instance(behavior: ShutdownBehavior) -> Instance {
        let mut inst = fixtures::instance();
        inst.spec.shutdown_behavior = behavior;
        inst.status.state = Some(InstanceState::Running);
        inst.status.observed_generation = inst.metadata.generation;
        inst
    }

    fn settings() -> PlanSettings {
        PlanSettings {
            remove_containers: true,
            stop_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn an_exit_while_running_is_an_instance_initiated_shutdown() {
        let inst = running_instance(ShutdownBehavior::Stop);
        let plan = plan(
            &inst,
            Some(&exited()),
            Facts::default(),
            &settings(),
            ContainerSpec::default,
        );
        assert_eq!(plan.reaches, Some(InstanceState::Stopped));
        assert!(plan.instance_initiated);
        assert!(plan.steps.is_empty());

        let inst = running_instance(ShutdownBehavior::Terminate);
        let terminated = super::plan(
            &inst,
            Some(&exited()),
            Facts::default(),
            &settings(),
            ContainerSpec::default,
        );
        assert_eq!(terminated.reaches, Some(InstanceState::Terminated));
        assert_eq!(terminated.steps, vec![Step::Remove("c1".into())]);
    }

    #[test]
    fn an_exit_caused_by_the_engine_restarts_the_container() {
        let inst = running_instance(ShutdownBehavior::Stop);
        let facts = Facts {
            stopped_from_outside: true,
            ..Facts::default()
        };
        let plan = plan(
            &inst,
            Some(&exited()),
            facts,
            &settings(),
            ContainerSpec::default,
        );
        assert_eq!(plan.steps, vec![Step::Start("c1".into())]);
        assert!(!plan.instance_initiated);
    }

    #[test]
    fn a_shut_down_instance_stays_down_until_started() {
        let mut inst = running_instance(ShutdownBehavior::Stop);
        inst.status.state = Some(InstanceState::Stopped);
        inst.status.shutdown_generation = Some(inst.metadata.generation);
        let plan1 = plan(
            &inst,
            Some(&exited()),
            Facts::default(),
            &settings(),
            ContainerSpec::default,
        );
        assert!(plan1.steps.is_empty());
        assert_eq!(plan1.reaches, Some(InstanceState::Stopped));
        // StartInstances bumps the generation.
        inst.metadata.generation += 1;
        let plan2 = plan(
            &inst,
            Some(&exited()),
            Facts::default(),
            &settings(),
            ContainerSpec::default,
        );
        assert_eq!(plan2.steps, vec![Step::Start("c1".into())]);
    }

    #[test]
    fn an_exit_is_the_instances_own_only_on_evidence() {
        use SignalEvidence::*;
        // A signal on the stream or in the log: from outside, whatever the exit code.
        assert!(ended_from_outside(true, NotSignalled, Some(0)));
        assert!(ended_from_outside(false, Signalled, Some(0)));
        // The log covers the run and holds no signal: the instance's own (kill 1, poweroff).
        assert!(!ended_from_outside(false, NotSignalled, Some(143)));
        assert!(!ended_from_outside(false, NotSignalled, Some(0)));
        // No record: only a clean exit (halt/poweroff through the boot script) is the instance's.
        assert!(!ended_from_outside(false, Unknown, Some(0)));
        assert!(ended_from_outside(false, Unknown, Some(143)));
        assert!(ended_from_outside(false, Unknown, Some(137)));
        assert!(ended_from_outside(false, Unknown, None));
    }

    #[test]
    fn the_exit_cause_matters_only_for_an_unexplained_exit_of_a_running_instance() {
        let inst = running_instance(ShutdownBehavior::Stop);
        let exited = exited();
        assert!(exit_cause_matters(&inst, Some(&exited)));
        let running = ObservedContainer {
            state: ContainerState::Running,
            ..exited.clone()
        };
        assert!(!exit_cause_matters(&inst, Some(&running)));
        assert!(!exit_cause_matters(&inst, None));
        let mut shut = inst.clone();
        shut.status.shutdown_generation = Some(shut.metadata.generation);
        assert!(!exit_cause_matters(&shut, Some(&exited)), "already judged");
        let mut stopping = inst.clone();
        stopping.spec.desired = DesiredState::Stopped;
        assert!(!exit_cause_matters(&stopping, Some(&exited)));
    }
}

#[cfg(test)]
mod mount_tests {
    use super::*;
    use crate::model::fixtures;
    use crate::reconcile::fixtures::container;

    fn settings(remove: bool) -> PlanSettings {
        PlanSettings {
            remove_containers: remove,
            stop_timeout: Duration::from_secs(1),
        }
    }

    fn words(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .map(|s| s.summary().split(' ').next().unwrap_or("").to_string())
            .collect()
    }

    fn volume(id: &str, device: &str, ready: bool) -> AttachedVolume {
        AttachedVolume {
            volume_id: id.into(),
            size_gib: 1,
            device: device.into(),
            mount_point: crate::model::volume::mount_point(device, &Default::default()),
            backing: ready.then(|| {
                (
                    format!("ec2d-{id}"),
                    format!("/var/lib/docker/volumes/ec2d-{id}/_data"),
                )
            }),
        }
    }

    fn host(path: &str, id: &str) -> HostMount {
        HostMount {
            path: path.into(),
            source_root: format!("/var/lib/docker/volumes/ec2d-{id}/_data").into(),
        }
    }

    fn mount_plan(
        desired: DesiredState,
        observed: Option<ContainerState>,
        mounts: MountFacts,
    ) -> Plan {
        let mut inst = fixtures::instance();
        inst.spec.desired = desired;
        inst.status.state = Some(InstanceState::Running);
        let observed = observed.map(container);
        let facts = Facts {
            mounts,
            ..Facts::default()
        };
        plan(
            &inst,
            observed.as_ref(),
            facts,
            &settings(true),
            ContainerSpec::default,
        )
    }

    fn bound(attached: Vec<AttachedVolume>, host: Vec<HostMount>) -> MountFacts {
        MountFacts {
            hot: true,
            container_bound: true,
            attached,
            host,
        }
    }

    #[test]
    fn a_ready_volume_is_mounted_into_a_running_or_frozen_container() {
        let facts = bound(vec![volume("vol-1", "/dev/sdf", true)], vec![]);
        for (desired, state) in [
            (DesiredState::Running, ContainerState::Running),
            (DesiredState::Stopped, ContainerState::Paused),
        ] {
            let planned = mount_plan(desired, Some(state), facts.clone());
            assert_eq!(
                planned.steps,
                vec![Step::Mount {
                    path: "sdf".into(),
                    source: "/var/lib/docker/volumes/ec2d-vol-1/_data".into(),
                }],
                "{desired:?}"
            );
        }
        // Already mounted from its source: nothing to do.
        let mounted = bound(
            vec![volume("vol-1", "/dev/sdf", true)],
            vec![host("sdf", "vol-1")],
        );
        assert!(mount_plan(
            DesiredState::Running,
            Some(ContainerState::Running),
            mounted
        )
        .steps
        .is_empty());
    }

    #[test]
    fn a_boot_mounts_then_creates_the_container() {
        let facts = MountFacts {
            container_bound: false,
            ..bound(vec![volume("vol-1", "xvdg", true)], vec![])
        };
        let planned = mount_plan(DesiredState::Running, None, facts);
        assert_eq!(words(&planned), ["mount", "create"]);
    }

    #[test]
    fn a_boot_waits_for_its_volumes_to_be_made() {
        for hot in [true, false] {
            let facts = MountFacts {
                hot,
                container_bound: false,
                ..bound(vec![volume("vol-1", "xvdg", false)], vec![])
            };
            let planned = mount_plan(DesiredState::Running, None, facts);
            assert!(
                planned.steps.is_empty() && planned.reaches.is_none(),
                "{planned:?}"
            );
        }
    }

    #[test]
    fn a_volume_no_longer_attached_is_unmounted() {
        let facts = bound(
            vec![volume("vol-1", "/dev/sdf", true)],
            vec![host("sdf", "vol-1"), host("sdg", "vol-2")],
        );
        let planned = mount_plan(DesiredState::Running, Some(ContainerState::Running), facts);
        assert_eq!(planned.steps, vec![Step::Unmount("sdg".into())]);
    }

    #[test]
    fn a_volume_not_ready_waits_and_asks_to_be_looked_at_again() {
        let facts = bound(vec![volume("vol-1", "/dev/sdf", false)], vec![]);
        assert!(facts.waiting_for_volumes());
        let planned = mount_plan(DesiredState::Running, Some(ContainerState::Running), facts);
        assert!(planned.steps.is_empty());
        assert!(!bound(vec![volume("vol-1", "/dev/sdf", true)], vec![]).waiting_for_volumes());
    }

    #[test]
    fn drift_is_undone_a_mount_removed_or_replaced_behind_ec2ds_back() {
        // Unmounted by hand: mounted again.
        let removed = bound(vec![volume("vol-1", "/dev/sdf", true)], vec![]);
        let planned = mount_plan(
            DesiredState::Running,
            Some(ContainerState::Running),
            removed,
        );
        assert_eq!(words(&planned), ["mount"]);
        // Something else mounted there: replaced by the volume.
        let replaced = bound(
            vec![volume("vol-1", "/dev/sdf", true)],
            vec![host("sdf", "vol-9")],
        );
        let planned = mount_plan(
            DesiredState::Running,
            Some(ContainerState::Running),
            replaced,
        );
        assert_eq!(words(&planned), ["unmount", "mount"]);
    }

    #[test]
    fn termination_unmounts_everything_after_the_container_and_forgets_the_directory() {
        let facts = bound(
            vec![],
            vec![host("sdf", "vol-1"), host("data/logs", "vol-2")],
        );
        let planned = mount_plan(
            DesiredState::Terminated,
            Some(ContainerState::Running),
            facts,
        );
        assert_eq!(
            words(&planned),
            ["stop", "remove", "unmount", "unmount", "forget"]
        );
        assert_eq!(
            planned.steps[2],
            Step::Unmount("data/logs".into()),
            "deepest first"
        );
    }

    #[test]
    fn no_hot_mounts_without_the_propagation_point_or_into_a_container_made_without_it() {
        let off = MountFacts {
            hot: false,
            ..bound(vec![volume("vol-1", "/dev/sdf", true)], vec![])
        };
        assert!(
            mount_plan(DesiredState::Running, Some(ContainerState::Running), off)
                .steps
                .is_empty()
        );
        let unbound = MountFacts {
            container_bound: false,
            ..bound(vec![volume("vol-1", "/dev/sdf", true)], vec![])
        };
        assert!(mount_plan(
            DesiredState::Running,
            Some(ContainerState::Running),
            unbound
        )
        .steps
        .is_empty());
        // A mount point outside /mnt is never hot-mounted.
        let mut outside = volume("vol-1", "/dev/sdf", true);
        outside.mount_point = "/data".into();
        assert!(outside.hot_path().is_none());
        assert!(mount_plan(
            DesiredState::Running,
            Some(ContainerState::Running),
            bound(vec![outside], vec![])
        )
        .steps
        .is_empty());
        assert_eq!(hot_path("/mnt"), None);
        assert_eq!(hot_path("/mntx/a"), None);
        assert_eq!(hot_path("/mnt/data/x"), Some("data/x"));
    }
}
