//! The instance reconciler: read spec and status, observe the container, plan, apply, write status.

use std::collections::BTreeMap;

use tracing::{debug, info, warn};

use super::boot;
use super::plan::{self, Facts, Plan, PlanSettings, Step};
use super::{Context, ReconcileError};
use crate::controller::Action;
use crate::model::{
    now, ContainerObservation, ErrorRecord, Instance, InstanceId, InstanceState, InstanceStatus,
    PortMapping, PortProtocol, StateReason, CONTAINER_NAME_PREFIX,
};
use crate::runtime::{
    labels, ContainerRuntime, ContainerSpec, ContainerState, ObservedContainer, PortRequest,
    Protocol, RuntimeError, SignalEvidence,
};

/// How the boot script runs in a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    /// The boot script is the entrypoint and keeps the container alive (the usual case).
    Entrypoint,
    /// The image runs its own init system as PID 1; the boot script runs beside it via exec.
    BesideInit,
}

/// Builds the container for an instance: the one place that decides how an instance boots.
pub fn container_spec_for(
    instance: &Instance,
    settings: &super::Settings,
    store_id: &str,
    mode: BootMode,
) -> ContainerSpec {
    let mut container_labels = BTreeMap::new();
    container_labels.insert(labels::MANAGED.to_string(), "true".to_string());
    container_labels.insert(labels::VM_MANAGER.to_string(), "docker".to_string());
    // Which ec2d store owns the container: several ec2d processes may share one engine, and
    // each only ever garbage-collects its own containers.
    container_labels.insert(labels::STORE_ID.to_string(), store_id.to_string());
    // The region, for humans reading `docker inspect`.
    container_labels.insert(
        labels::REGION.to_string(),
        instance.metadata.namespace.clone(),
    );
    let mut binds = Vec::new();
    if settings.mount_docker_socket {
        binds.push("/var/run/docker.sock:/var/run/docker.sock".to_string());
    }
    let mut ports: Vec<PortRequest> = instance
        .spec
        .ports
        .iter()
        .map(|p| PortRequest {
            container_port: p.port,
            protocol: p.protocol.into(),
            host_port: None,
        })
        .collect();
    // SSH is always reachable, as in LocalStack, whatever the groups say.
    if !ports
        .iter()
        .any(|p| p.container_port == 22 && p.protocol == Protocol::Tcp)
    {
        ports.insert(
            0,
            PortRequest {
                container_port: 22,
                protocol: Protocol::Tcp,
                host_port: None,
            },
        );
    }
    let (entrypoint, cmd, init) = match mode {
        BootMode::Entrypoint => (
            Some(boot::entrypoint()),
            Some(Vec::new()),
            settings.docker_init,
        ),
        // The image's init must be PID 1: Docker's init would take its place.
        BootMode::BesideInit => (None, None, false),
    };
    ContainerSpec {
        name: format!("{CONTAINER_NAME_PREFIX}{}", instance.metadata.name),
        instance_id: InstanceId::parse(&instance.metadata.name).ok(),
        image: instance.spec.image_ref.clone(),
        entrypoint,
        cmd,
        env: boot::env(instance),
        labels: container_labels,
        init,
        binds,
        ports,
        hostname: None,
        flags: settings.docker_flags.clone(),
    }
}

/// Decides how the instance boots from its image's command (one engine call, at boot only).
async fn boot_mode<R: ContainerRuntime>(ctx: &Context<R>, image: &str) -> BootMode {
    match ctx.runtime.image_command(image).await {
        Ok(Some(command)) if boot::is_init_system(&command.entrypoint, &command.cmd) => {
            BootMode::BesideInit
        }
        _ => BootMode::Entrypoint,
    }
}

/// StopInstances/StartInstances on an instance last seen running or paused: plans on that
/// last observation and freezes or thaws the container straight away, with no inspection
/// first. The engine checks the assumption itself (pausing a container that is not running,
/// or one that is gone, fails), and any failure, or any plan that is more than a freeze or a
/// thaw, falls back to the full pass that observes first. Returns the plan and the container
/// as it now is.
async fn freeze_on_last_observation<R: ContainerRuntime>(
    ctx: &Context<R>,
    instance: &Instance,
    settings: &PlanSettings,
) -> Option<(Plan, ObservedContainer)> {
    // Only a user's request not yet carried out; events and resyncs always observe.
    if instance.status.observed_generation >= instance.metadata.generation {
        return None;
    }
    let last = instance.status.container.as_ref()?;
    let state = ContainerState::parse(&last.state);
    if !matches!(state, ContainerState::Running | ContainerState::Paused) {
        return None;
    }
    let mut observed = ObservedContainer {
        id: last.id.clone(),
        name: format!("{CONTAINER_NAME_PREFIX}{}", instance.metadata.name),
        instance_id: InstanceId::parse(&instance.metadata.name).ok()?,
        state,
        exit_code: None,
        ip_address: last.ip_address.clone(),
        image: instance.spec.image_ref.clone(),
        ports: last.ports.iter().map(Into::into).collect(),
        labels: BTreeMap::new(),
        started_at: None,
        finished_at: None,
    };
    // A plan that would boot is never applied here, so no real container spec is needed.
    let plan = plan::plan(
        instance,
        Some(&observed),
        Facts::default(),
        settings,
        ContainerSpec::default,
    );
    let (result, now_in) = match plan.steps.as_slice() {
        [Step::Pause(container)] => (ctx.runtime.pause(container).await, ContainerState::Paused),
        [Step::Unpause(container)] => (
            ctx.runtime.unpause(container).await,
            ContainerState::Running,
        ),
        _ => return None,
    };
    match result {
        Ok(()) => {
            debug!(instance_id = %instance.metadata.name, step = %plan.steps[0].summary(), "applied on the last observation");
            observed.state = now_in;
            Some((plan, observed))
        }
        Err(error) => {
            debug!(instance_id = %instance.metadata.name, %error, "last observation was stale; observing");
            None
        }
    }
}

/// Whether the container's main process was ended from outside the instance (drift to undo)
/// rather than by the instance itself (an instance-initiated shutdown). Asks the engine's
/// event log only when the stream gave no answer: a stop while ec2d was down, or whose event
/// the stream lost, is still found there.
async fn exit_from_outside<R: ContainerRuntime>(
    ctx: &Context<R>,
    instance: &Instance,
    observed: Option<&ObservedContainer>,
) -> bool {
    let Some(container) = observed.filter(|c| plan::exit_cause_matters(instance, Some(c))) else {
        return false;
    };
    let Some(finished) = container.finished_at else {
        return false;
    };
    let id = instance.metadata.name.as_str();
    if ctx
        .engine
        .stopped_from_outside(id, container.started_at, finished)
    {
        return true;
    }
    let log = match container.started_at {
        Some(started) => match ctx
            .runtime
            .signal_evidence(&container.id, started, finished)
            .await
        {
            Ok(evidence) => evidence,
            Err(error) => {
                debug!(instance_id = %id, %error, "cannot read the engine's event log");
                SignalEvidence::Unknown
            }
        },
        None => SignalEvidence::Unknown,
    };
    let outside = plan::ended_from_outside(false, log, container.exit_code);
    info!(
        instance_id = %id,
        container_id = %container.id,
        exit_code = ?container.exit_code,
        event_log = ?log,
        from_outside = outside,
        "the instance's container exited"
    );
    outside
}

/// Reconciles one instance.
pub(super) async fn reconcile<R: ContainerRuntime>(
    id: &InstanceId,
    ctx: &Context<R>,
) -> Result<Action, ReconcileError> {
    let Some(instance) = ctx.store.instances().get(id.as_str())? else {
        return Ok(Action::await_change());
    };
    let generation = instance.metadata.generation;
    let settings = PlanSettings {
        remove_containers: ctx.settings.remove_containers,
        stop_timeout: ctx.settings.stop_timeout,
    };
    if let Some((plan, after)) = freeze_on_last_observation(ctx, &instance, &settings).await {
        return conclude(ctx, id, &instance, &plan, Some(&after));
    }
    let observed = match ctx.runtime.inspect_instance(id).await {
        Ok(observed) => observed,
        Err(error) => return Err(record_error(ctx, &instance, error)),
    };
    let facts = Facts {
        stopped_from_outside: exit_from_outside(ctx, &instance, observed.as_ref()).await,
    };
    // Only a boot needs to know how the image runs; ask the engine only then. The plan
    // decides what is a boot (a container created but never started is one too).
    let mode = if plan::boots(&instance, observed.as_ref()) {
        boot_mode(ctx, &instance.spec.image_ref).await
    } else {
        BootMode::Entrypoint
    };
    let plan = plan::plan(&instance, observed.as_ref(), facts, &settings, || {
        container_spec_for(&instance, &ctx.settings, ctx.store.id(), mode)
    });
    let steps: Vec<String> = plan.steps.iter().map(Step::summary).collect();
    debug!(instance_id = %id, generation, ?steps, reaches = ?plan.reaches, "planned");

    if let Err(error) = apply(&plan, &ctx.runtime, &settings).await {
        // An image that does not exist (any more) can never boot: fail fast to `terminated`
        // so waiters stop waiting, instead of retrying forever.
        let booting = plan.steps.iter().any(|s| matches!(s, Step::Create(_)));
        if booting && !error.is_transient() && !image_exists(ctx, &instance.spec.image_ref).await {
            let reason = StateReason::internal_error(&format!(
                "the instance's image {} cannot be started: {error}",
                instance.spec.image_ref
            ));
            warn!(instance_id = %id, %error, "boot impossible; instance terminated");
            let mut status = instance.status.clone();
            status.record_transition(InstanceState::Terminated, Some(&reason), now());
            status.state_reason = Some(reason);
            status.observed_generation = generation;
            status.container = None;
            status.last_error = Some(ErrorRecord::new(error.to_string(), now()));
            ctx.store.instances().write_status(id.as_str(), &status)?;
            return Ok(Action::await_change());
        }
        return Err(record_error(ctx, &instance, error));
    }

    // Observe again after acting: the new container's id and address are only known now.
    let freeze_only = plan
        .steps
        .iter()
        .all(|s| matches!(s, Step::Pause(_) | Step::Unpause(_)));
    let after = if plan.steps.is_empty() {
        observed
    } else if freeze_only {
        // Pausing or thawing changes nothing but the state (same container, address and
        // ports), and the engine answered success: no second inspect on the stop/start path.
        observed.map(|mut c| {
            c.state = match plan.steps.last() {
                Some(Step::Pause(_)) => ContainerState::Paused,
                _ => ContainerState::Running,
            };
            c
        })
    } else {
        match ctx.runtime.inspect_instance(id).await {
            Ok(after) => after,
            Err(error) => return Err(record_error(ctx, &instance, error)),
        }
    };
    let booted = plan.steps.iter().any(|s| matches!(s, Step::Create(_)));
    if booted && mode == BootMode::BesideInit {
        if let Some(container) = &after {
            run_boot_beside_init(ctx, id, &container.id).await;
        }
    }
    if plan.steps.iter().any(|s| matches!(s, Step::Restart(_))) {
        info!(instance_id = %id, "instance rebooted");
        // The image's init came back up on its own; the boot tasks beside it run again.
        if let Some(container) = after
            .as_ref()
            .filter(|c| c.state == ContainerState::Running)
        {
            if boot_mode(ctx, &instance.spec.image_ref).await == BootMode::BesideInit {
                run_boot_beside_init(ctx, id, &container.id).await;
            }
        }
    }
    // The container ended right after it was started: its command cannot run in this
    // image (126/127: not executable / not found) — a boot that can never succeed — or it
    // crashed, which is retried with backoff rather than restarted in a tight loop.
    let expected_running = plan.reaches == Some(InstanceState::Running) && !plan.steps.is_empty();
    if let Some(container) = after
        .as_ref()
        .filter(|c| expected_running && c.state != ContainerState::Running)
    {
        let detail = format!(
            "the instance's container {} right after starting (exit code {})",
            container.state.as_str(),
            container
                .exit_code
                .map_or("unknown".to_string(), |c| c.to_string())
        );
        if matches!(container.exit_code, Some(126 | 127)) {
            warn!(instance_id = %id, %detail, "boot impossible; instance terminated");
            let reason = StateReason::internal_error(&detail);
            let mut status = instance.status.clone();
            status.record_transition(InstanceState::Terminated, Some(&reason), now());
            status.state_reason = Some(reason);
            status.observed_generation = generation;
            status.last_error = Some(ErrorRecord::new(detail, now()));
            ctx.store.instances().write_status(id.as_str(), &status)?;
            // Look again soon: the terminated instance's leftover container is cleaned up.
            return Ok(Action::requeue(ctx.settings.converging_requeue));
        }
        let mut status = instance.status.clone();
        status.last_error = Some(ErrorRecord::new(detail.clone(), now()));
        ctx.store.instances().write_status(id.as_str(), &status)?;
        return Err(ReconcileError::NotConverged(detail));
    }
    conclude(ctx, id, &instance, &plan, after.as_ref())
}

/// Writes the status a successful pass reached, logs what users grep for, and says when to look again.
fn conclude<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    instance: &Instance,
    plan: &Plan,
    after: Option<&ObservedContainer>,
) -> Result<Action, ReconcileError> {
    let status = next_status(instance, plan, after);
    // Where SSH answers moves with a new container, and with a restart too: Docker gives a
    // restarted container new ephemeral host ports.
    fn access(c: &ContainerObservation) -> (&String, &Option<String>, &Vec<PortMapping>) {
        (&c.id, &c.ip_address, &c.ports)
    }
    let access_moved =
        status.container.as_ref().map(access) != instance.status.container.as_ref().map(access);
    if status.state == Some(InstanceState::Running)
        && (access_moved || instance.status.state != Some(InstanceState::Running))
    {
        if let Some(container) = &status.container {
            log_access(id, container);
        }
    }
    if status != instance.status {
        if status.state != instance.status.state {
            info!(
                instance_id = %id,
                from = ?instance.status.state.map(|s| s.name()),
                to = ?status.state.map(|s| s.name()),
                "instance state changed"
            );
        }
        ctx.store.instances().write_status(id.as_str(), &status)?;
    }
    Ok(match status.state {
        Some(InstanceState::Terminated) if after.is_none() => Action::await_change(),
        _ if plan.reaches.is_none() => Action::requeue(ctx.settings.converging_requeue),
        _ => Action::requeue(ctx.settings.converged_requeue),
    })
}

/// Runs the boot script beside an image's own init system; failures are logged, since the
/// instance itself is up.
async fn run_boot_beside_init<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    container_id: &str,
) {
    match ctx.runtime.exec(container_id, boot::exec_command()).await {
        Ok(out) if out.exit_code == Some(0) => {
            debug!(instance_id = %id, "boot tasks ran beside the image's init")
        }
        Ok(out) => {
            warn!(instance_id = %id, exit_code = ?out.exit_code, output = %out.output, "boot tasks failed")
        }
        Err(error) => warn!(instance_id = %id, %error, "boot tasks could not run"),
    }
}

/// The two lines LocalStack users grep for: where SSH answers, and the port mapping.
fn log_access(id: &InstanceId, container: &ContainerObservation) {
    let ssh = container
        .ports
        .iter()
        .find(|p| p.container_port == 22 && p.protocol == PortProtocol::Tcp);
    let container_ip = container.ip_address.as_deref().unwrap_or("");
    if let Some(ssh) = ssh {
        let ssh_address = format!("{}:{}", ssh.host_ip, ssh.host_port);
        info!(
            instance_id = %id,
            ssh = %ssh_address,
            "Instance {id} will be accessible via SSH at: {ssh_address}, {container_ip}:22"
        );
    }
    let mapping = container
        .ports
        .iter()
        .map(|p| {
            format!(
                "'{}/{}': {}",
                p.container_port,
                p.protocol.as_str(),
                p.host_port
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    info!(instance_id = %id, ports = %mapping, "Instance {id} port mappings (container -> host): {{{mapping}}}");
}

/// Whether the instance's image is still there; an unreachable engine counts as "yes" so
/// an outage never terminates an instance.
async fn image_exists<R: ContainerRuntime>(ctx: &Context<R>, reference: &str) -> bool {
    ctx.runtime.image_exists(reference).await.unwrap_or(true)
}

/// Applies the plan's steps in order. `Conflict` (already paused, already running) and
/// `NotFound` on removal mean the world already moved where we wanted it.
async fn apply<R: ContainerRuntime>(
    plan: &Plan,
    runtime: &R,
    settings: &PlanSettings,
) -> Result<(), RuntimeError> {
    for step in &plan.steps {
        debug!(step = %step.summary(), "applying");
        let result = match step {
            Step::Create(spec) => runtime.create_and_start(spec).await.map(|_| ()),
            Step::Start(id) => runtime.start(id).await,
            Step::Pause(id) => runtime.pause(id).await,
            Step::Unpause(id) => runtime.unpause(id).await,
            Step::Stop(id) => runtime.stop(id, settings.stop_timeout).await,
            Step::Remove(id) => runtime.remove(id).await,
            Step::Restart(id) => runtime.restart(id, settings.stop_timeout).await,
        };
        match result {
            Ok(()) => {}
            // A refused restart is a reboot not done: it is retried, never taken as done.
            Err(RuntimeError::Conflict(reason))
                if !matches!(step, Step::Create(_) | Step::Restart(_)) =>
            {
                debug!(step = %step.summary(), %reason, "step already satisfied");
            }
            Err(RuntimeError::NotFound(_)) if matches!(step, Step::Remove(_) | Step::Stop(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The status after a successful apply: pure, so it is tested with the plan.
fn next_status(
    instance: &Instance,
    plan: &Plan,
    after: Option<&ObservedContainer>,
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
            (InstanceState::Running, Some(crate::runtime::ContainerState::Running)) => true,
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
            status.record_transition(reached, reason.as_ref(), now());
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

/// Records a failure in the instance's status (where clients see it) and passes it on.
fn record_error<R: ContainerRuntime>(
    ctx: &Context<R>,
    instance: &Instance,
    error: RuntimeError,
) -> ReconcileError {
    let mut status = instance.status.clone();
    status.last_error = Some(ErrorRecord::new(error.to_string(), now()));
    // While the instance has not reached what was asked, the failure is its StateReason,
    // where EC2 clients look; a converged instance keeps its own reason.
    if status.observed_generation < instance.metadata.generation || status.state.is_none() {
        status.state_reason = Some(StateReason::internal_error(&error.to_string()));
    }
    // A foreign container holds the name: the instance has no container of its own, so it
    // is not running, whatever it was; it boots (pending) once the name is free.
    if let RuntimeError::NameTaken(_) = &error {
        status.container = None;
        if status.state == Some(InstanceState::Running) {
            let reason = StateReason::internal_error(&error.to_string());
            status.record_transition(InstanceState::Pending, Some(&reason), now());
            status.state_reason = Some(reason);
        }
    }
    if let Err(store_error) = ctx
        .store
        .instances()
        .write_status(&instance.metadata.name, &status)
    {
        warn!(instance_id = %instance.metadata.name, error = %store_error, "cannot record reconcile error");
    }
    error.into()
}
