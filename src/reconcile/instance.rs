//! The instance reconciler in four beats: observe the container, plan, apply, record the status.
//!
//! The decisions are pure and live beside it: `plan` (the steps, and whether they boot),
//! `assess` (what applying them came to), `status` (the status each verdict writes) and
//! `spec` (the container a boot creates). This file gathers evidence and carries them out.

mod spec;
mod status;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

pub use spec::{container_spec_for, BootMode};

use super::assess::{self, Applied, Verdict};
use super::boot;
use super::console;
use super::network::{self, Placement};
use super::plan::{self, AttachedVolume, Facts, MountFacts, Plan, PlanSettings, Step};
use super::{Context, Engine, ReconcileError};
use crate::controller::Action;
use crate::hostmnt::VolumeMounts;
use crate::model::volume::{attachment_in_force, mount_point, MountedVolume};
use crate::model::{
    now, ContainerObservation, DesiredState, ImageCopy, Instance, InstanceId, InstanceState,
    PortMapping, PortProtocol, CONTAINER_NAME_PREFIX,
};
use crate::runtime::{
    labels, ContainerRuntime, ContainerSpec, ContainerState, CopyProgress, ObservedContainer,
    RuntimeError, SignalEvidence,
};

/// Reconciles one instance: observe, plan, apply, record.
pub(super) async fn reconcile<R: ContainerRuntime>(
    id: &InstanceId,
    ctx: &Context<R>,
) -> Result<Action, ReconcileError> {
    // Observe: the record; for a user's stop/start the last observation may do (the fast
    // path acts on it at once); else the container and, for an unexplained exit, who ended it.
    let Some(mut instance) = ctx.store.instances().get(id.as_str())? else {
        return Ok(Action::await_change());
    };
    // Every step of the pass is on the instance's engine, whose monitor records the outcome.
    let engine = engine_of(ctx, &instance);
    if let Some(recorded) = instance
        .status
        .engine
        .as_deref()
        .filter(|r| *r != engine.name())
    {
        warn!(instance_id = %id, engine = %recorded, zone = %instance.spec.availability_zone, now_on = %engine.name(), "the instance's engine is no longer configured; its zone's engine takes it");
    }
    let result = reconcile_on(id, &ctx.on(&engine), &mut instance).await;
    engine.monitor().observe(&result);
    result
}

/// The engine an instance's container is on, or is to be made on: the one its status
/// records (sticky: a later `EC2D_ENGINES` never moves a container); with none recorded, the
/// default engine when it already has a container (records from one engine), else its zone's.
pub(super) fn engine_of<R: ContainerRuntime>(
    ctx: &Context<R>,
    instance: &Instance,
) -> Arc<Engine<R>> {
    ctx.engine_recorded_or(
        instance.status.engine.as_deref(),
        instance.status.container.is_some(),
        || {
            ctx.engines
                .for_zone(&instance.spec.availability_zone)
                .clone()
        },
    )
}

/// The pass, on the instance's engine (`ctx`'s current one).
async fn reconcile_on<R: ContainerRuntime>(
    id: &InstanceId,
    ctx: &Context<R>,
    instance: &mut Instance,
) -> Result<Action, ReconcileError> {
    // With several engines the engine is recorded before anything is made on it, so a crash
    // between the two never leaves a container ec2d would look for elsewhere.
    // With one engine, an engine recorded under another configuration is forgotten once the
    // pass runs here: the record then reads as the default engine's, as it now is.
    let recorded = ctx.engine_to_record(instance.status.engine.as_deref());
    // A copy recorded when no pass runs is one a crash cut short: one key never runs twice at
    // once, and a copy runs inside its instance's pass.
    let stale_copy = instance.status.image_copy.take().is_some();
    if instance.status.engine != recorded || stale_copy {
        instance.status.engine = recorded;
        ctx.store
            .instances()
            .write_status(id.as_str(), &instance.status)?;
    }
    let settings = PlanSettings {
        remove_containers: ctx.settings.remove_containers,
        stop_timeout: ctx.settings.stop_timeout,
    };
    if let Some((plan, after)) = freeze_on_last_observation(ctx, instance, &settings).await {
        // A freeze or a thaw moves no network: the warning recorded stays.
        let placement = match instance.status.network_warning.clone() {
            Some(reason) => Placement::Refused(reason),
            None => Placement::Bridge,
        };
        return record(
            ctx,
            id,
            instance,
            &plan,
            Verdict::Reached(Some(after)),
            &placement,
            None,
        );
    }
    let observed = match ctx.runtime.inspect_instance(id).await {
        Ok(observed) => observed,
        Err(error) => return Err(record_error(ctx, instance, error)),
    };
    let limits = spec::limits_for(instance, &ctx.settings, ctx.engine.host_limits());
    let placement = match place(ctx, instance, observed.as_ref()).await {
        Ok(placement) => placement,
        Err(error) => return Err(record_error(ctx, instance, error)),
    };
    let mounts = observe_mounts(ctx, id, observed.as_ref(), attached_volumes(ctx, instance));
    let facts = Facts {
        mounts: mounts.clone(),
        stopped_from_outside: exit_from_outside(ctx, instance, observed.as_ref()).await,
        limits,
        network: match &placement {
            Placement::Vpc(attachment, network_id) => {
                Some((attachment.clone(), network_id.clone()))
            }
            _ => None,
        },
    };

    // A boot on an engine without the instance's image copies it there first.
    let boots = plan::boots(instance, observed.as_ref());
    if boots && ctx.engines.is_multi() {
        if let Err(error) = bring_image(ctx, id, instance).await {
            return Err(record_error(ctx, instance, error));
        }
    }
    let instance = &*instance;

    // Plan. Only a boot needs to know how the image runs: the engine is asked only then.
    let mode = if boots {
        spec::boot_mode(ctx, &instance.spec.image_ref).await
    } else {
        BootMode::Entrypoint
    };
    let plan = plan::plan(instance, observed.as_ref(), facts, &settings, || {
        let mut spec = container_spec_for(instance, &ctx.settings, ctx.store.id(), mode, limits);
        if let Placement::Vpc(attachment, _) = &placement {
            spec.network = Some(attachment.clone());
        }
        let hot_dir = ctx.volume_mounts.owner_dir(id.as_str());
        spec::give_volumes(&mut spec, hot_dir.as_deref(), &mounts.attached);
        if let Some(files) = &ctx.settings.block_devices {
            spec::give_block_devices(&mut spec, files, &mounts.attached);
        }
        spec
    });
    let steps: Vec<String> = plan.steps.iter().map(Step::summary).collect();
    debug!(instance_id = %id, generation = instance.metadata.generation, ?steps, reaches = ?plan.reaches, "planned");

    // Apply, and gather what it came to.
    let applied = carry_out(ctx, id, instance, &plan, &settings, mode, observed).await;
    if let (Applied::Failed { error, .. }, Some(vpc_id)) = (&applied, &instance.spec.vpc_id) {
        // A step that found the VPC's network gone: the next pass asks the engine again.
        if error.to_string().contains("network") {
            ctx.networks.forget(vpc_id);
        }
    }

    // Record what the verdict names; then copy what the container printed (its boot, its
    // user data) for GetConsoleOutput, after the status so a state change is never held up.
    let verdict = assess::assess(&plan, applied);
    let container = match &verdict {
        Verdict::Reached(Some(container)) => Some(container.clone()),
        _ => None,
    };
    let volumes = match &verdict {
        Verdict::Reached(after) => Some(volume_outcome(
            ctx,
            id,
            instance,
            &plan,
            &mounts,
            after.as_ref(),
        )),
        _ => None,
    };
    let action = record(ctx, id, instance, &plan, verdict, &placement, volumes);
    if let Some(container) = container {
        console::refresh(ctx, id, &container).await;
    }
    action
}

/// How often a copy under way writes its progress into the instance's status.
const COPY_PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Brings the instance's image onto its engine (`ctx`'s current one) before a boot: when the
/// engine lacks it, streams it from another engine that has it, with the copy in the
/// instance's status (`imageCopy`) meanwhile; the instance stays `pending`. One copy of an
/// image onto an engine at a time: instances launched together wait for the first one's.
/// When no engine has the image, the boot meets its absence as with one engine.
async fn bring_image<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    instance: &mut Instance,
) -> Result<(), RuntimeError> {
    let reference = instance.spec.image_ref.clone();
    let here = ctx.current_engine.clone();
    let lock = here.copy_lock(&reference);
    let _one_copy = lock.lock().await;
    let mut source = None;
    let mut unasked = None;
    if !ctx.runtime.image_exists(&reference).await? {
        for engine in ctx.engines.iter().filter(|e| !Arc::ptr_eq(e, &here)) {
            match engine.runtime().image_exists(&reference).await {
                Ok(true) => {
                    source = Some(engine.clone());
                    break;
                }
                Ok(false) => {}
                Err(error) => {
                    debug!(instance_id = %id, engine = %engine.name(), %error, "cannot ask an engine for the image");
                    unasked = Some((engine.name().to_string(), error));
                }
            }
        }
        // An engine that could not be asked may hold the only copy: the boot waits for it
        // rather than find the image missing (an outage never terminates an instance).
        if let (None, Some((engine, error))) = (&source, unasked) {
            return Err(RuntimeError::Unavailable(format!(
                "the image {reference} is on no engine that answers; {engine} does not: {error}"
            )));
        }
    }
    let Some(source) = source else {
        return Ok(());
    };
    info!(instance_id = %id, %reference, from = %source.name(), to = %here.name(), "copying the instance's image to its engine");
    let progress = CopyProgress::default();
    let started = std::time::Instant::now();
    let mut copy = ImageCopy {
        reference: reference.clone(),
        from: source.name().to_string(),
        to: here.name().to_string(),
        bytes_copied: 0,
        started_at: now(),
    };
    instance.status.image_copy = Some(copy.clone());
    write_copy_status(ctx, id, instance)?;
    let copying = source
        .runtime()
        .copy_image_to(&reference, &ctx.runtime, &progress);
    tokio::pin!(copying);
    let mut ticks = tokio::time::interval(COPY_PROGRESS_EVERY);
    ticks.tick().await;
    let result = loop {
        tokio::select! {
            result = &mut copying => break result,
            _ = ticks.tick() => {
                copy.bytes_copied = progress.bytes();
                instance.status.image_copy = Some(copy.clone());
                if let Err(error) = write_copy_status(ctx, id, instance) {
                    debug!(instance_id = %id, %error, "cannot record the image copy's progress");
                }
            }
        }
    };
    instance.status.image_copy = None;
    write_copy_status(ctx, id, instance)?;
    match &result {
        Ok(bytes) => {
            info!(instance_id = %id, %reference, from = %source.name(), to = %here.name(), bytes, seconds = started.elapsed().as_secs_f64(), "image copied to the instance's engine")
        }
        Err(error) => {
            warn!(instance_id = %id, %reference, from = %source.name(), to = %here.name(), %error, "image copy failed; tried again")
        }
    }
    result.map(|_| ())
}

/// Writes the instance's status as the image copy left it.
fn write_copy_status<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    instance: &Instance,
) -> Result<(), RuntimeError> {
    ctx.store
        .instances()
        .write_status(id.as_str(), &instance.status)
        .map_err(|error| RuntimeError::Failed(format!("cannot record the image copy: {error}")))
}

/// Where the instance's container belongs, for a pass that may boot, start or keep it
/// running (a stopped or terminated instance needs no network now). A container attached to
/// a network id other than the one known (made again behind ec2d's back) makes the VPC's
/// network be looked up afresh.
async fn place<R: ContainerRuntime>(
    ctx: &Context<R>,
    instance: &Instance,
    observed: Option<&ObservedContainer>,
) -> Result<Placement, RuntimeError> {
    if instance.spec.desired != DesiredState::Running
        || instance.status.state == Some(InstanceState::Terminated)
    {
        return Ok(Placement::Bridge);
    }
    let placement = network::placement(ctx, instance).await?;
    if let (Placement::Vpc(attachment, network_id), Some(container)) = (&placement, observed) {
        let stale = container
            .networks
            .get(&attachment.network)
            .is_some_and(|attached_to| attached_to != network_id);
        if stale {
            if let Some(vpc_id) = &instance.spec.vpc_id {
                ctx.networks.forget(vpc_id);
                return network::placement(ctx, instance).await;
            }
        }
    }
    Ok(placement)
}

/// Observe, the fast path: StopInstances/StartInstances on an instance last seen running or
/// paused plans on that last observation and freezes or thaws the container straight away,
/// with no inspection first (a freeze or thaw is all the plan can be, so its verdict is
/// `Reached`). The engine checks the assumption itself (pausing a container that is not running,
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
        // Unknown: the plan leaves the limits alone, so it stays a freeze or a thaw.
        limits: None,
        networks: BTreeMap::new(),
        volume_mounts: Vec::new(),
        binds: Vec::new(),
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

/// Observe, the evidence the plan needs for an exit: whether the container's main process
/// was ended from outside the instance (drift to undo) rather than by the instance itself
/// (an instance-initiated shutdown). Asks the engine's
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

/// Applies the plan and gathers the evidence its verdict needs: the container as it now is
/// (with the boot tasks run beside an image's own init), or the failure and, for a boot that
/// retrying will not fix, whether the image is gone.
async fn carry_out<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    instance: &Instance,
    plan: &Plan,
    settings: &PlanSettings,
    mode: BootMode,
    observed: Option<ObservedContainer>,
) -> Applied {
    if let Err(error) = apply(plan, &ctx.runtime, settings, &ctx.volume_mounts, id).await {
        let image_gone = assess::image_cause_matters(plan, &error)
            && !image_exists(ctx, &instance.spec.image_ref).await;
        return Applied::Failed { error, image_gone };
    }
    let after = match look_again(ctx, id, plan, observed).await {
        Ok(after) => after,
        Err(error) => {
            return Applied::Failed {
                error,
                image_gone: false,
            }
        }
    };
    boot_tasks_beside_init(ctx, id, instance, plan, mode, after.as_ref()).await;
    Applied::Done(after)
}

/// Applies the plan's steps in order. `Conflict` (already paused, already running) and
/// `NotFound` on removal mean the world already moved where we wanted it.
async fn apply<R: ContainerRuntime>(
    plan: &Plan,
    runtime: &R,
    settings: &PlanSettings,
    mounts: &VolumeMounts,
    id: &InstanceId,
) -> Result<(), RuntimeError> {
    for step in &plan.steps {
        debug!(step = %step.summary(), "applying");
        if step.is_mount() {
            apply_mount(step, mounts, id);
            continue;
        }
        let result = match step {
            Step::Create(spec) => {
                // The directory the container binds at /mnt must be there before the create.
                if mounts.is_active() {
                    if let Err(error) = mounts.prepare(id.as_str()) {
                        warn!(instance_id = %id, %error, "cannot make the instance's volume mount directory");
                    }
                }
                runtime.create_and_start(spec).await.map(|_| ())
            }
            Step::Start(id) => runtime.start(id).await,
            Step::Pause(id) => runtime.pause(id).await,
            Step::Unpause(id) => runtime.unpause(id).await,
            Step::Stop(id) => runtime.stop(id, settings.stop_timeout).await,
            Step::Remove(id) => runtime.remove(id).await,
            Step::Restart(id) => runtime.restart(id, settings.stop_timeout).await,
            Step::UpdateLimits(id, limits) => runtime.update_limits(id, *limits).await,
            Step::Connect(id, attachment) => runtime.connect_network(id, attachment).await,
            Step::Mount { .. } | Step::Unmount(_) | Step::ForgetMounts => Ok(()),
        };
        match result {
            Ok(()) => {}
            // A refused restart is a reboot not done, refused limits are not applied: both
            // are retried, never taken as done.
            Err(RuntimeError::Conflict(reason))
                if !matches!(
                    step,
                    Step::Create(_) | Step::Restart(_) | Step::UpdateLimits(..) | Step::Connect(..)
                ) =>
            {
                debug!(step = %step.summary(), %reason, "step already satisfied");
            }
            Err(RuntimeError::NotFound(_)) if matches!(step, Step::Remove(_) | Step::Stop(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Carries out a mount step. A failure is logged and leaves the volume out of the status
/// (the pass looks again shortly): the instance itself is fine.
fn apply_mount(step: &Step, mounts: &VolumeMounts, id: &InstanceId) {
    let result = match step {
        Step::Mount { path, source } => mounts.mount(id.as_str(), path, Path::new(source)),
        Step::Unmount(path) => mounts.unmount(id.as_str(), path),
        Step::ForgetMounts => mounts.forget(id.as_str()),
        _ => Ok(()),
    };
    match result {
        Ok(()) => info!(instance_id = %id, step = %step.summary(), "volume mounts changed"),
        Err(error) => {
            warn!(instance_id = %id, step = %step.summary(), %error, "volume mount change failed; retried shortly")
        }
    }
}

/// The volumes whose attachment to the instance is in force, from the volume records the
/// store's index of instances' devices names (`Store::volumes_of_instance`).
/// A root volume is the container's own file system and is never mounted.
fn attached_volumes<R: ContainerRuntime>(
    ctx: &Context<R>,
    instance: &Instance,
) -> Vec<AttachedVolume> {
    if !attachment_in_force(Some(instance)) {
        return Vec::new();
    }
    let volumes = match ctx.store.volumes_of_instance(&instance.metadata.name) {
        Ok(volumes) => volumes,
        Err(error) => {
            warn!(instance_id = %instance.metadata.name, %error, "cannot list volumes");
            return Vec::new();
        }
    };
    let hot = ctx.volume_mounts.is_active();
    let mut attached = Vec::new();
    // A volume in error (its data removed behind ec2d's back) is not mounted, and no boot
    // waits for it.
    for volume in volumes
        .iter()
        .filter(|v| v.spec.root_of.is_none() && v.status.error.is_none())
    {
        for attachment in &volume.spec.attachments {
            if attachment.instance_id != instance.metadata.name {
                continue;
            }
            let status = &volume.status;
            let backing = match (&status.backing, &status.mountpoint) {
                (Some(name), Some(mountpoint)) if status.ready => {
                    // mountinfo spells the source with symlinks resolved.
                    let source = if hot {
                        std::fs::canonicalize(mountpoint)
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|_| mountpoint.clone())
                    } else {
                        mountpoint.clone()
                    };
                    Some((name.clone(), source))
                }
                _ => None,
            };
            attached.push(AttachedVolume {
                volume_id: volume.metadata.name.clone(),
                device: attachment.device.clone(),
                mount_point: mount_point(&attachment.device, &volume.spec.tags),
                size_gib: volume.spec.size_gib,
                backing,
            });
        }
    }
    attached
}

/// Observe, the mounts: what is mounted for the instance on the host, and whether its
/// container receives it. When the host's mounts cannot be read, this pass plans none.
fn observe_mounts<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    observed: Option<&ObservedContainer>,
    attached: Vec<AttachedVolume>,
) -> MountFacts {
    let mounts = &ctx.volume_mounts;
    let host = if mounts.is_active() {
        match mounts.mounts(id.as_str()) {
            Ok(host) => Some(host),
            Err(error) => {
                warn!(instance_id = %id, %error, "cannot read the host's mounts");
                None
            }
        }
    } else {
        None
    };
    MountFacts {
        hot: host.is_some(),
        container_bound: observed.is_some_and(|c| mounts.bound_in(id.as_str(), &c.binds)),
        attached,
        host: host.unwrap_or_default(),
    }
}

/// How soon an instance with a volume not attached yet (being made, or a mount that failed)
/// is looked at again: a volume's status changing wakes no instance.
const VOLUME_WAIT: Duration = Duration::from_secs(2);

/// What the pass came to for the instance's volumes.
struct VolumeOutcome {
    /// What is observed mounted, for `status.volumes`.
    mounted: Vec<MountedVolume>,
    /// An attached volume is not mounted yet, and may be soon.
    settling: bool,
    /// Why ready volumes stay unmounted when no pass will change it, for `status.volumeWarning`.
    warning: Option<String>,
}

/// Observes what the container has mounted after the pass (the host's mounts again when the
/// pass changed them) and says why an attached volume is not there when nothing will change it.
fn volume_outcome<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    instance: &Instance,
    plan: &Plan,
    facts: &MountFacts,
    after: Option<&ObservedContainer>,
) -> VolumeOutcome {
    if plan.reaches == Some(InstanceState::Terminated) {
        // The attachments are over; what an unmount could not undo stays listed (and the pass
        // is retried shortly) until it is gone from the host.
        let host = match facts.hot {
            true => ctx.volume_mounts.mounts(id.as_str()).unwrap_or_default(),
            false => Vec::new(),
        };
        let mounted: Vec<MountedVolume> = instance
            .status
            .volumes
            .iter()
            .filter(|v| {
                plan::hot_path(&v.mount_point).is_some_and(|p| host.iter().any(|m| m.path == p))
            })
            .cloned()
            .collect();
        let settling = !mounted.is_empty();
        return VolumeOutcome {
            mounted,
            settling,
            warning: None,
        };
    }
    let host = if facts.hot && plan.steps.iter().any(Step::is_mount) {
        ctx.volume_mounts
            .mounts(id.as_str())
            .unwrap_or_else(|_| facts.host.clone())
    } else {
        facts.host.clone()
    };
    let visible =
        facts.hot && after.is_some_and(|c| ctx.volume_mounts.bound_in(id.as_str(), &c.binds));
    let in_container = after.map(|c| c.volume_mounts.as_slice()).unwrap_or(&[]);
    let mounted = status::mounted_volumes(
        &facts.attached,
        &host,
        visible,
        in_container,
        &instance.status.volumes,
    );
    let mut settling = facts.waiting_for_volumes();
    let mut warnings = Vec::new();
    let ready: Vec<&AttachedVolume> = facts
        .attached
        .iter()
        .filter(|v| v.backing.is_some())
        .collect();
    for (at, volume) in ready.iter().enumerate() {
        if mounted.iter().any(|m| m.volume_id == volume.volume_id) || after.is_none() {
            continue;
        }
        // One volume per mount point, the first attached (`MountFacts::wanted`, and the
        // container's own volume mounts): the other waits for the path to be free.
        let taken_by = ready[..at]
            .iter()
            .find(|other| other.mount_point == volume.mount_point);
        let why = if let Some(other) = taken_by {
            format!(
                "its mount point {} is taken by {} (attached as {}); it attaches once that volume is detached or one of them gets another ec2d:mount-point",
                volume.mount_point, other.volume_id, other.device
            )
        } else if visible && volume.hot_path().is_some() {
            settling = true;
            continue;
        } else if visible || facts.hot && volume.hot_path().is_none() {
            format!("its mount point {} is outside /mnt, where volumes appear in a running instance; it attaches when the instance's container is next created", volume.mount_point)
        } else if facts.hot {
            "the instance's container was created without the volume mount directory; it attaches when the container is next created".to_string()
        } else {
            format!(
                "volumes attach only when an instance's container is created ({})",
                ctx.volume_mounts.problem().unwrap_or_default()
            )
        };
        warnings.push(format!(
            "{} ({}) stays attaching: {why}",
            volume.volume_id, volume.device
        ));
    }
    VolumeOutcome {
        mounted,
        settling,
        warning: (!warnings.is_empty()).then(|| warnings.join("\n")),
    }
}

/// Whether the instance's image is still there; an unreachable engine counts as "yes" so
/// an outage never terminates an instance.
async fn image_exists<R: ContainerRuntime>(ctx: &Context<R>, reference: &str) -> bool {
    ctx.runtime.image_exists(reference).await.unwrap_or(true)
}

/// The container after the plan's steps: a new container's id and address are only known
/// now. Pausing or thawing changes nothing but the state (same container, address and
/// ports), and the engine answered success: no second inspect on the stop/start path.
async fn look_again<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    plan: &Plan,
    observed: Option<ObservedContainer>,
) -> Result<Option<ObservedContainer>, RuntimeError> {
    // Mounts change the host, not the container.
    let steps: Vec<&Step> = plan.steps.iter().filter(|s| !s.is_mount()).collect();
    let freeze_only = steps
        .iter()
        .all(|s| matches!(s, Step::Pause(_) | Step::Unpause(_)));
    if steps.is_empty() {
        Ok(observed)
    } else if freeze_only {
        Ok(observed.map(|mut c| {
            c.state = match steps.last() {
                Some(Step::Pause(_)) => ContainerState::Paused,
                _ => ContainerState::Running,
            };
            c
        }))
    } else {
        ctx.runtime.inspect_instance(id).await
    }
}

/// An image with its own init system boots with that init as PID 1, and the boot tasks run
/// beside it: after a fresh boot, and after a reboot (the init came back up on its own).
async fn boot_tasks_beside_init<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    instance: &Instance,
    plan: &Plan,
    mode: BootMode,
    after: Option<&ObservedContainer>,
) {
    if plan.creates() && mode == BootMode::BesideInit {
        if let Some(container) = after {
            run_boot_beside_init(ctx, id, &container.id).await;
        }
    }
    if plan.steps.iter().any(|s| matches!(s, Step::Restart(_))) {
        info!(instance_id = %id, "instance rebooted");
        if let Some(container) = after.filter(|c| c.state == ContainerState::Running) {
            if spec::boot_mode(ctx, &instance.spec.image_ref).await == BootMode::BesideInit {
                run_boot_beside_init(ctx, id, &container.id).await;
            }
        }
    }
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

/// Writes the status the verdict names (once, on every path), logs what users grep for, and
/// says when to look again.
fn record<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    instance: &Instance,
    plan: &Plan,
    verdict: Verdict,
    placement: &Placement,
    volumes: Option<VolumeOutcome>,
) -> Result<Action, ReconcileError> {
    let at = now();
    match verdict {
        Verdict::Reached(after) => {
            let settling = volumes.as_ref().is_some_and(|v| v.settling);
            let action = conclude(
                ctx,
                id,
                instance,
                plan,
                after.as_ref(),
                placement,
                volumes.map(|v| (v.mounted, v.warning)),
            )?;
            Ok(match action.requeue_after() {
                Some(after) if settling && after > VOLUME_WAIT => Action::requeue(VOLUME_WAIT),
                None if settling => Action::requeue(VOLUME_WAIT),
                _ => action,
            })
        }
        Verdict::ImageGone(error) => {
            warn!(instance_id = %id, %error, "boot impossible; instance terminated");
            let status = status::image_gone(instance, &error, at);
            ctx.store.instances().write_status(id.as_str(), &status)?;
            Ok(Action::await_change())
        }
        Verdict::CannotRun(detail) => {
            warn!(instance_id = %id, %detail, "boot impossible; instance terminated");
            let status = status::boot_impossible(instance, &detail, detail.clone(), at);
            ctx.store.instances().write_status(id.as_str(), &status)?;
            // Look again soon: the terminated instance's leftover container is cleaned up.
            Ok(Action::requeue(ctx.settings.converging_requeue))
        }
        Verdict::NotConverged(detail) => {
            let status = status::not_converged(instance, &detail, at);
            ctx.store.instances().write_status(id.as_str(), &status)?;
            Err(ReconcileError::NotConverged(detail))
        }
        Verdict::Failed(error) => Err(record_error(ctx, instance, error)),
    }
}

/// Writes the status a pass that reached its plan's outcome leaves, logs where SSH answers,
/// and says when to look again.
fn conclude<R: ContainerRuntime>(
    ctx: &Context<R>,
    id: &InstanceId,
    instance: &Instance,
    plan: &Plan,
    after: Option<&ObservedContainer>,
    placement: &Placement,
    volumes: Option<(Vec<MountedVolume>, Option<String>)>,
) -> Result<Action, ReconcileError> {
    let mut status = status::next_status(instance, plan, after, now());
    if let Some((volumes, warning)) = volumes {
        if volumes != instance.status.volumes {
            info!(instance_id = %id, volumes = ?volumes.iter().map(|v| (&v.volume_id, &v.mount_point)).collect::<Vec<_>>(), "instance's mounted volumes changed");
        }
        status.volumes = volumes;
        // Logged when it changes, not on every pass: the status keeps saying it.
        if warning.is_some() && warning != instance.status.volume_warning {
            warn!(instance_id = %id, warning = ?warning, "attached volumes stay attaching");
        }
        status.volume_warning = warning;
    }
    status.network_warning = network_warning(instance, placement, after);
    if status.network_warning.is_some() && status.network_warning != instance.status.network_warning
    {
        warn!(instance_id = %id, warning = ?status.network_warning, "instance is not on its VPC's network");
    }
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

/// Why the container is not on its VPC's network: the refusal this pass met, or the one an
/// earlier pass recorded while the container it booted stays on the default bridge.
fn network_warning(
    instance: &Instance,
    placement: &Placement,
    after: Option<&ObservedContainer>,
) -> Option<String> {
    let container = after?;
    let on_bridge_only = !container.networks.is_empty()
        && container
            .networks
            .keys()
            .all(|name| !name.starts_with(labels::NETWORK_PREFIX));
    match placement {
        Placement::Refused(reason) if on_bridge_only => Some(reason.clone()),
        Placement::Vpc(..) | Placement::Refused(_) if on_bridge_only => instance
            .status
            .network_warning
            .clone()
            .or_else(|| Some("the instance booted on Docker's default bridge".to_string())),
        _ => None,
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

/// Records a failure in the instance's status (where clients see it) and passes it on.
fn record_error<R: ContainerRuntime>(
    ctx: &Context<R>,
    instance: &Instance,
    error: RuntimeError,
) -> ReconcileError {
    let status = status::failed(instance, &error, now());
    if let Err(store_error) = ctx
        .store
        .instances()
        .write_status(&instance.metadata.name, &status)
    {
        warn!(instance_id = %instance.metadata.name, error = %store_error, "cannot record reconcile error");
    }
    error.into()
}
