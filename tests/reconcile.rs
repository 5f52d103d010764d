//! Reconciler scenarios against the recording, failure-injecting fake runtime and a temporary store.

use std::sync::Arc;

use ec2d::controller::Action;
use ec2d::model::{
    display_state, fixtures, DesiredState, ImageState, Instance, InstanceId, InstanceState,
};
use ec2d::reconcile::{self, Context, ObjectRef, Settings};
use ec2d::runtime::fake::Op;
use ec2d::runtime::{
    ContainerRuntime, ContainerState, DockerFlags, FakeRuntime, HostLimits, ResourceLimits,
    RuntimeError,
};
use ec2d::store::{Store, StoreError};

const AMI_REF: &str = "localstack-ec2/test-ami:ami-000001";

/// A reconciler on a fake engine, and the store it reconciles; tests write desired state
/// through the store as the API would (the reconciler's own view cannot write spec).
fn context(remove_containers: bool) -> (Arc<Context<FakeRuntime>>, FakeRuntime, Store) {
    let fake = FakeRuntime::new();
    fake.add_image(AMI_REF);
    let settings = Settings {
        remove_containers,
        ..Settings::default()
    };
    let store = Store::temporary().unwrap();
    let ctx = Arc::new(Context::new(store.clone(), fake.clone(), settings));
    (ctx, fake, store)
}

fn launch(store: &Store) -> InstanceId {
    let inst = fixtures::instance();
    store
        .instances()
        .create(std::slice::from_ref(&inst))
        .unwrap();
    InstanceId::parse(&inst.metadata.name).unwrap()
}

fn desire(store: &Store, id: &InstanceId, desired: DesiredState) {
    store
        .instances()
        .update_spec::<StoreError>(id.as_str(), |o| {
            o.spec.desired = desired;
            Ok(true)
        })
        .unwrap();
}

fn get(ctx: &Context<FakeRuntime>, id: &InstanceId) -> Instance {
    ctx.store.instances().get(id.as_str()).unwrap().unwrap()
}

fn shown(ctx: &Context<FakeRuntime>, id: &InstanceId) -> InstanceState {
    let i = get(ctx, id);
    display_state(&i.metadata, &i.spec, &i.status)
}

async fn run(
    ctx: &Arc<Context<FakeRuntime>>,
    id: &InstanceId,
) -> Result<Action, reconcile::ReconcileError> {
    reconcile::reconcile(ObjectRef::Instance(id.clone()), ctx.clone()).await
}

#[tokio::test]
async fn lifecycle_run_stop_start_terminate() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    assert_eq!(shown(&ctx, &id), InstanceState::Pending);

    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_state(&id), Some(ContainerState::Running));
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
    let status = get(&ctx, &id).status;
    assert_eq!(status.observed_generation, 1);
    assert!(status.container.as_ref().unwrap().ip_address.is_some());

    desire(&store, &id, DesiredState::Stopped);
    assert_eq!(shown(&ctx, &id), InstanceState::Stopping);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_state(&id), Some(ContainerState::Paused));
    assert_eq!(shown(&ctx, &id), InstanceState::Stopped);
    assert_eq!(
        get(&ctx, &id).status.state_reason.unwrap().code,
        "Client.UserInitiatedShutdown"
    );

    desire(&store, &id, DesiredState::Running);
    assert_eq!(shown(&ctx, &id), InstanceState::Pending);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_state(&id), Some(ContainerState::Running));
    assert_eq!(shown(&ctx, &id), InstanceState::Running);

    desire(&store, &id, DesiredState::Terminated);
    assert_eq!(shown(&ctx, &id), InstanceState::ShuttingDown);
    let action = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_state(&id), None, "container removed");
    assert_eq!(shown(&ctx, &id), InstanceState::Terminated);
    assert_eq!(action, Action::await_change());
    let transitions: Vec<_> = get(&ctx, &id)
        .status
        .transitions
        .iter()
        .map(|t| t.to)
        .collect();
    assert_eq!(
        transitions,
        [
            InstanceState::Running,
            InstanceState::Stopped,
            InstanceState::Running,
            InstanceState::Terminated
        ]
    );
}

#[tokio::test]
async fn converged_reconcile_has_no_side_effects() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    fake.clear_calls();
    let _ = run(&ctx, &id).await.unwrap();
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.ops(), [Op::Inspect, Op::Inspect]);
}

#[tokio::test]
async fn terminate_keeps_a_stopped_container_when_removal_is_off() {
    let (ctx, fake, store) = context(false);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    desire(&store, &id, DesiredState::Stopped);
    let _ = run(&ctx, &id).await.unwrap();
    desire(&store, &id, DesiredState::Terminated);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_state(&id), Some(ContainerState::Exited));
    assert_eq!(shown(&ctx, &id), InstanceState::Terminated);
    // A paused container is thawed before it is stopped: Docker refuses otherwise.
    let ops = fake.ops();
    let tail = &ops[ops.len() - 4..];
    assert_eq!(tail, [Op::Inspect, Op::Unpause, Op::Stop, Op::Inspect]);
}

#[tokio::test]
async fn a_missing_image_ends_terminated_with_a_reason() {
    let (ctx, fake, store) = context(true);
    fake.remove_image(AMI_REF);
    let id = launch(&store);
    let action = run(&ctx, &id).await.unwrap();
    assert_eq!(action, Action::await_change());
    assert_eq!(shown(&ctx, &id), InstanceState::Terminated);
    let reason = get(&ctx, &id).status.state_reason.unwrap();
    assert_eq!(reason.code, "Server.InternalError");
    assert!(reason.message.contains(AMI_REF), "{}", reason.message);
}

#[tokio::test]
async fn transient_failures_surface_and_then_converge() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    fake.fail_next(
        Op::Create,
        RuntimeError::Unavailable("engine restarting".into()),
        1,
    );
    let error = run(&ctx, &id).await.unwrap_err();
    assert!(error.is_transient());
    assert_eq!(
        reconcile::error_policy(&ObjectRef::Instance(id.clone()), &error, &ctx),
        Action::backoff()
    );
    let failed = get(&ctx, &id);
    assert!(failed
        .status
        .last_error
        .unwrap()
        .message
        .contains("engine restarting"));
    assert_eq!(
        failed.status.state_reason.unwrap().code,
        "Server.InternalError"
    );
    assert_eq!(
        shown(&ctx, &id),
        InstanceState::Pending,
        "still pending, not failed"
    );
    assert!(!ctx.engine.is_reachable());

    let _ = run(&ctx, &id).await.unwrap();
    let ok = get(&ctx, &id);
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
    assert!(ok.status.last_error.is_none());
    assert!(ok.status.state_reason.is_none());
}

#[tokio::test]
async fn drift_is_converged_back() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();

    fake.set_state_behind_back(&id, ContainerState::Paused, None);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_state(&id), Some(ContainerState::Running));

    fake.remove_behind_back(&id);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        fake.container_state(&id),
        Some(ContainerState::Running),
        "recreated"
    );
    assert_eq!(fake.container_count(), 1);

    desire(&store, &id, DesiredState::Stopped);
    let _ = run(&ctx, &id).await.unwrap();
    fake.set_state_behind_back(&id, ContainerState::Running, None);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        fake.container_state(&id),
        Some(ContainerState::Paused),
        "paused again"
    );
}

#[tokio::test]
async fn create_image_commits_once_and_fails_without_source() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    let image = fixtures::committed_image(&id, "my-snap");
    let image_id = ec2d::model::ImageId::parse(&image.metadata.name).unwrap();
    store.images().create(std::slice::from_ref(&image)).unwrap();

    let _ = reconcile::reconcile(ObjectRef::Image(image_id.clone()), ctx.clone())
        .await
        .unwrap();
    let made = ctx.store.images().get(image_id.as_str()).unwrap().unwrap();
    assert_eq!(made.display_state(), ImageState::Available);
    assert!(fake.ops().contains(&Op::Commit));

    // Reconciling again does not commit again.
    fake.clear_calls();
    let _ = reconcile::reconcile(ObjectRef::Image(image_id.clone()), ctx.clone())
        .await
        .unwrap();
    assert!(!fake.ops().contains(&Op::Commit));

    // The committed image shows up in the catalog as an AMI.
    let _ = reconcile::reconcile(ObjectRef::Catalog, ctx.clone())
        .await
        .unwrap();
    assert!(ctx
        .store
        .catalog()
        .get(image_id.as_str())
        .unwrap()
        .is_some());

    // An image of an instance without a container fails with a reason.
    let other = launch(&store);
    desire(&store, &other, DesiredState::Terminated);
    let _ = run(&ctx, &other).await.unwrap();
    let orphan = fixtures::committed_image(&other, "nope");
    store
        .images()
        .create(std::slice::from_ref(&orphan))
        .unwrap();
    let orphan_id = ec2d::model::ImageId::parse(&orphan.metadata.name).unwrap();
    let _ = reconcile::reconcile(ObjectRef::Image(orphan_id.clone()), ctx.clone())
        .await
        .unwrap();
    let failed = ctx.store.images().get(orphan_id.as_str()).unwrap().unwrap();
    assert_eq!(failed.display_state(), ImageState::Failed);
    assert!(failed.status.state_reason.is_some());
}

#[tokio::test]
async fn catalog_follows_docker_tags() {
    let (ctx, fake, _store) = context(true);
    fake.add_image("localstack-ec2/other:ami-0abc1234");
    fake.add_image("localstack-ec2:ami-local");
    fake.add_image("localstack-ec2/latest-only:latest");
    let _ = reconcile::reconcile(ObjectRef::Catalog, ctx.clone())
        .await
        .unwrap();
    let mut ids: Vec<_> = ctx.store.catalog().ids().unwrap();
    ids.sort();
    assert_eq!(ids, ["ami-000001", "ami-0abc1234"]);
    let entry = ctx.store.catalog().get("ami-0abc1234").unwrap().unwrap();
    assert_eq!(
        entry.spec.tags.get("ec2_vm_manager").map(String::as_str),
        Some("docker")
    );
    assert_eq!(entry.spec.name, "other");
    assert_eq!(
        entry.metadata.namespace,
        ec2d::model::DISCOVERED_NAMESPACE,
        "seen from every region; tests/common/api.rs `catalog_image` files its entries so too"
    );

    fake.remove_image("localstack-ec2/other:ami-0abc1234");
    let _ = reconcile::reconcile(ObjectRef::Catalog, ctx.clone())
        .await
        .unwrap();
    assert_eq!(ctx.store.catalog().ids().unwrap(), ["ami-000001"]);
}

#[tokio::test]
async fn instance_initiated_shutdown_follows_the_shutdown_behaviour() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    // `poweroff` inside: the main process ends.
    fake.set_state_behind_back(&id, ContainerState::Exited, Some(143));
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(shown(&ctx, &id), InstanceState::Stopped);
    assert_eq!(
        get(&ctx, &id).status.state_reason.unwrap().code,
        "Client.InstanceInitiatedShutdown"
    );
    // It stays down across reconciles (no restart loop)...
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_state(&id), Some(ContainerState::Exited));
    // ...until StartInstances asks again (a new generation).
    desire(&store, &id, DesiredState::Running);
    assert_eq!(shown(&ctx, &id), InstanceState::Pending);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_state(&id), Some(ContainerState::Running));
    assert_eq!(shown(&ctx, &id), InstanceState::Running);

    // With `terminate` behaviour the instance ends terminated and its container is removed.
    let other = launch(&store);
    store
        .instances()
        .update_spec::<StoreError>(other.as_str(), |o| {
            o.spec.shutdown_behavior = ec2d::model::ShutdownBehavior::Terminate;
            Ok(true)
        })
        .unwrap();
    let _ = run(&ctx, &other).await.unwrap();
    fake.set_state_behind_back(&other, ContainerState::Exited, Some(0));
    let _ = run(&ctx, &other).await.unwrap();
    assert_eq!(shown(&ctx, &other), InstanceState::Terminated);
    assert_eq!(fake.container_state(&other), None);
}

fn stray_container(
    instance_id: &InstanceId,
    store_id: Option<&str>,
) -> ec2d::runtime::ContainerSpec {
    let mut labels = std::collections::BTreeMap::new();
    if let Some(store_id) = store_id {
        labels.insert("ec2d.store-id".to_string(), store_id.to_string());
    }
    ec2d::runtime::ContainerSpec {
        name: format!("localstack-ec2.{instance_id}"),
        instance_id: Some(instance_id.clone()),
        image: AMI_REF.to_string(),
        labels,
        ..Default::default()
    }
}

#[tokio::test]
async fn sweep_removes_only_this_stores_orphans() {
    use ec2d::runtime::ContainerRuntime;
    let (ctx, fake, store) = context(true);
    let owned = launch(&store);
    let _ = run(&ctx, &owned).await.unwrap();
    let orphan = InstanceId::generate();
    let foreign = InstanceId::generate();
    let unlabelled = InstanceId::generate();
    fake.create_and_start(&stray_container(&orphan, Some(ctx.store.id())))
        .await
        .unwrap();
    fake.create_and_start(&stray_container(&foreign, Some("another-store")))
        .await
        .unwrap();
    fake.create_and_start(&stray_container(&unlabelled, None))
        .await
        .unwrap();

    let _ = reconcile::reconcile(ObjectRef::Sweep, ctx.clone())
        .await
        .unwrap();
    assert_eq!(fake.container_state(&orphan), None, "orphan removed");
    assert!(
        fake.container_state(&foreign).is_some(),
        "another ec2d's container untouched"
    );
    assert!(
        fake.container_state(&unlabelled).is_some(),
        "container without store id untouched"
    );
    assert_eq!(
        fake.container_state(&owned),
        Some(ContainerState::Running),
        "owned instance untouched"
    );
    assert!(ctx.sweep_report.kept().is_empty());
}

#[tokio::test]
async fn sweep_keeps_and_reports_orphans_when_removal_is_off() {
    use ec2d::runtime::ContainerRuntime;
    let (ctx, fake, _store) = context(false);
    let orphan = InstanceId::generate();
    fake.create_and_start(&stray_container(&orphan, Some(ctx.store.id())))
        .await
        .unwrap();
    let _ = reconcile::reconcile(ObjectRef::Sweep, ctx.clone())
        .await
        .unwrap();
    assert!(fake.container_state(&orphan).is_some());
    let kept = ctx.sweep_report.kept();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].instance_id, orphan.to_string());
}

#[tokio::test]
async fn terminated_records_are_collected_after_the_retention() {
    let fake = FakeRuntime::new();
    fake.add_image(AMI_REF);
    let settings = Settings {
        terminated_retention: std::time::Duration::ZERO,
        ..Settings::default()
    };
    let store = Store::temporary().unwrap();
    let ctx = Arc::new(Context::new(store.clone(), fake.clone(), settings));
    let gone = launch(&store);
    let alive = launch(&store);
    for id in [&gone, &alive] {
        let _ = run(&ctx, id).await.unwrap();
    }
    desire(&store, &gone, DesiredState::Terminated);
    let _ = run(&ctx, &gone).await.unwrap();
    assert_eq!(shown(&ctx, &gone), InstanceState::Terminated);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let _ = reconcile::reconcile(ObjectRef::Sweep, ctx.clone())
        .await
        .unwrap();
    assert!(
        ctx.store.instances().get(gone.as_str()).unwrap().is_none(),
        "collected"
    );
    assert!(
        ctx.store.instances().get(alive.as_str()).unwrap().is_some(),
        "running instance kept"
    );

    // With the default retention of an hour, a fresh termination is kept.
    let (ctx, _fake, store) = context(true);
    let recent = launch(&store);
    let _ = run(&ctx, &recent).await.unwrap();
    desire(&store, &recent, DesiredState::Terminated);
    let _ = run(&ctx, &recent).await.unwrap();
    let _ = reconcile::reconcile(ObjectRef::Sweep, ctx.clone())
        .await
        .unwrap();
    assert!(ctx
        .store
        .instances()
        .get(recent.as_str())
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_container_that_cannot_run_its_command_ends_terminated() {
    let (ctx, fake, store) = context(true);
    fake.exit_on_start(Some(127));
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(shown(&ctx, &id), InstanceState::Terminated);
    let reason = get(&ctx, &id).status.state_reason.unwrap();
    assert_eq!(reason.code, "Server.InternalError");
    assert!(
        reason.message.contains("exit code 127"),
        "{}",
        reason.message
    );
    // The leftover container is cleaned up on the next pass.
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_state(&id), None);
}

#[tokio::test]
async fn a_container_that_crashes_at_boot_is_retried_with_backoff() {
    let (ctx, fake, store) = context(true);
    fake.exit_on_start(Some(1));
    let id = launch(&store);
    let error = run(&ctx, &id).await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(
        reconcile::error_policy(&ObjectRef::Instance(id.clone()), &error, &ctx),
        Action::backoff()
    );
    assert_eq!(shown(&ctx, &id), InstanceState::Pending);
    assert!(get(&ctx, &id)
        .status
        .last_error
        .unwrap()
        .message
        .contains("exit code 1"));
}

/// Simulates ec2d dying between create and start (the container exists, never started),
/// reconciles, and checks the container was removed and a fresh one created; the calls made.
async fn redo_a_boot_cut_short(
    ctx: &Arc<Context<FakeRuntime>>,
    fake: &FakeRuntime,
    id: &InstanceId,
) -> Vec<Op> {
    fake.set_state_behind_back(id, ContainerState::Created, None);
    fake.clear_calls();
    let _ = run(ctx, id).await.unwrap();
    let ops = fake.ops();
    assert!(
        ops.contains(&Op::Remove) && ops.contains(&Op::Create),
        "{ops:?}"
    );
    ops
}

#[tokio::test]
async fn a_boot_cut_short_before_start_is_redone_from_scratch() {
    use ec2d::runtime::ContainerRuntime;
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    redo_a_boot_cut_short(&ctx, &fake, &id).await;
    assert_eq!(fake.container_state(&id), Some(ContainerState::Running));
    assert_eq!(fake.container_count(), 1);
    let _ = fake.list_managed().await.unwrap();
}

#[tokio::test]
async fn a_docker_stop_from_outside_is_drift_and_is_converged_back() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    // `docker stop` / `docker kill`: the engine signals the container (a `kill` event), then it dies.
    ctx.engine.record_signal(id.as_str());
    fake.set_state_behind_back(&id, ContainerState::Exited, Some(137));
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        fake.container_state(&id),
        Some(ContainerState::Running),
        "started again"
    );
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
}

#[tokio::test]
async fn an_instance_initiated_termination_keeps_its_reason() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    store
        .instances()
        .update_spec::<StoreError>(id.as_str(), |o| {
            o.spec.shutdown_behavior = ec2d::model::ShutdownBehavior::Terminate;
            Ok(true)
        })
        .unwrap();
    let _ = run(&ctx, &id).await.unwrap();
    fake.set_state_behind_back(&id, ContainerState::Exited, Some(0));
    let _ = run(&ctx, &id).await.unwrap();
    // Later passes (the container's destroy event, resyncs) find it terminated already.
    let _ = run(&ctx, &id).await.unwrap();
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(shown(&ctx, &id), InstanceState::Terminated);
    assert_eq!(
        get(&ctx, &id).status.state_reason.unwrap().code,
        "Client.InstanceInitiatedShutdown"
    );
}

#[tokio::test]
async fn a_docker_stop_whose_event_was_lost_is_found_in_the_engines_log() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    let first = fake.calls().len();
    // ec2d was down, or its stream lost the `kill`: only the engine's log holds it.
    fake.signal_behind_back(&id, 143, false);
    let _ = run(&ctx, &id).await.unwrap();
    assert!(
        fake.calls()[first..].iter().any(|c| c.op == Op::EventLog),
        "the log was asked"
    );
    assert_eq!(fake.container_state(&id), Some(ContainerState::Running));
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
    assert_eq!(get(&ctx, &id).status.shutdown_generation, None);
}

#[tokio::test]
async fn without_an_event_log_only_a_clean_exit_is_the_instances_own_shutdown() {
    let (ctx, fake, store) = context(true);
    // The engine restarted while ec2d was away: its log is gone. SIGTERM's 143 came from
    // the engine or a `docker stop`: converged back.
    let stopped = launch(&store);
    let _ = run(&ctx, &stopped).await.unwrap();
    fake.signal_behind_back(&stopped, 143, false);
    fake.lose_event_log();
    let _ = run(&ctx, &stopped).await.unwrap();
    assert_eq!(
        fake.container_state(&stopped),
        Some(ContainerState::Running)
    );
    assert_eq!(shown(&ctx, &stopped), InstanceState::Running);

    // `poweroff` inside exits 0 through the boot script: the instance's own shutdown.
    let powered_off = launch(&store);
    let _ = run(&ctx, &powered_off).await.unwrap();
    fake.set_state_behind_back(&powered_off, ContainerState::Exited, Some(0));
    fake.lose_event_log();
    let _ = run(&ctx, &powered_off).await.unwrap();
    assert_eq!(
        fake.container_state(&powered_off),
        Some(ContainerState::Exited)
    );
    assert_eq!(shown(&ctx, &powered_off), InstanceState::Stopped);
    assert_eq!(
        get(&ctx, &powered_off).status.state_reason.unwrap().code,
        "Client.InstanceInitiatedShutdown"
    );
}

#[tokio::test]
async fn the_event_log_is_not_asked_when_nothing_turns_on_it() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    fake.set_state_behind_back(&id, ContainerState::Exited, Some(0));
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(shown(&ctx, &id), InstanceState::Stopped);
    // Later passes find the shutdown recorded: no more requests to the engine's log.
    let before = fake.calls().len();
    let _ = run(&ctx, &id).await.unwrap();
    let _ = run(&ctx, &id).await.unwrap();
    assert!(
        !fake.calls()[before..].iter().any(|c| c.op == Op::EventLog),
        "{:?}",
        fake.ops()
    );
}

#[tokio::test]
async fn an_instance_whose_name_a_foreign_container_holds_is_not_running() {
    use ec2d::runtime::ContainerRuntime;
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
    // While ec2d looked away its container went, and someone else's took the name.
    fake.remove_behind_back(&id);
    let squatter = fake
        .create_and_start(&ec2d::runtime::ContainerSpec {
            instance_id: None,
            ..stray_container(&id, None)
        })
        .await
        .unwrap();
    let err = run(&ctx, &id).await.unwrap_err();
    assert!(err.to_string().contains("does not own"), "{err}");
    let status = get(&ctx, &id).status;
    assert_eq!(status.container, None, "no container of its own");
    assert_eq!(shown(&ctx, &id), InstanceState::Pending);
    assert!(status.last_error.unwrap().message.contains("does not own"));
    assert_eq!(
        fake.container_count(),
        1,
        "the foreign container is left alone"
    );
    // The name is free again: a container of its own, running.
    fake.remove(&squatter).await.unwrap();
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_state(&id), Some(ContainerState::Running));
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
}

#[tokio::test]
async fn stop_and_start_act_on_the_last_observation_without_inspecting_first() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    fake.clear_calls();
    desire(&store, &id, DesiredState::Stopped);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.ops(), [Op::Pause], "one engine call for a stop");
    assert_eq!(shown(&ctx, &id), InstanceState::Stopped);
    assert_eq!(fake.container_state(&id), Some(ContainerState::Paused));
    assert_eq!(
        get(&ctx, &id).status.container.unwrap().state,
        "paused",
        "the observation moves with the step"
    );
    fake.clear_calls();
    desire(&store, &id, DesiredState::Running);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.ops(), [Op::Unpause]);
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
    // Later passes (events, resyncs) observe as always.
    fake.clear_calls();
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.ops(), [Op::Inspect]);
}

#[tokio::test]
async fn a_stale_last_observation_falls_back_to_observing() {
    let (ctx, fake, store) = context(true);
    // The container ended behind ec2d's back, unseen: pausing it fails, ec2d looks, and the
    // instance is stopped all the same (an exited container is a stopped instance).
    let exited = launch(&store);
    let _ = run(&ctx, &exited).await.unwrap();
    fake.set_state_behind_back(&exited, ContainerState::Exited, Some(143));
    fake.clear_calls();
    desire(&store, &exited, DesiredState::Stopped);
    let _ = run(&ctx, &exited).await.unwrap();
    assert_eq!(fake.ops()[..2], [Op::Pause, Op::Inspect]);
    assert_eq!(shown(&ctx, &exited), InstanceState::Stopped);
    assert_eq!(get(&ctx, &exited).status.container.unwrap().state, "exited");

    // Removed behind its back and then started: the unpause fails, ec2d looks, and boots a
    // fresh container.
    let removed = launch(&store);
    let _ = run(&ctx, &removed).await.unwrap();
    desire(&store, &removed, DesiredState::Stopped);
    let _ = run(&ctx, &removed).await.unwrap();
    let old = get(&ctx, &removed).status.container.unwrap().id;
    fake.remove_behind_back(&removed);
    desire(&store, &removed, DesiredState::Running);
    fake.clear_calls();
    let _ = run(&ctx, &removed).await.unwrap();
    assert_eq!(fake.ops()[..2], [Op::Unpause, Op::Inspect]);
    assert!(fake.ops().contains(&Op::Create));
    assert_eq!(shown(&ctx, &removed), InstanceState::Running);
    assert_ne!(get(&ctx, &removed).status.container.unwrap().id, old);
}

fn request_reboot(store: &Store, id: &InstanceId) {
    store
        .instances()
        .update_spec_same_generation::<StoreError>(id.as_str(), |o| {
            o.spec.reboots_requested += 1;
            Ok(true)
        })
        .unwrap();
}

#[tokio::test]
async fn a_reboot_restarts_the_same_container_once_and_the_instance_stays_running() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    let before = get(&ctx, &id).status.container.unwrap().id;

    request_reboot(&store, &id);
    // Queued, not yet carried out: still running, as EC2 shows a rebooting instance.
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
    fake.clear_calls();
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        fake.ops()
            .into_iter()
            .filter(|op| *op == Op::Restart)
            .count(),
        1
    );
    let after = get(&ctx, &id);
    assert_eq!(after.status.reboots_done, 1);
    assert_eq!(after.status.container.unwrap().id, before, "same container");
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
    assert_eq!(fake.container_state(&id), Some(ContainerState::Running));

    // Level-triggered, and done: later passes restart nothing.
    fake.clear_calls();
    let _ = run(&ctx, &id).await.unwrap();
    assert!(!fake.ops().contains(&Op::Restart));

    // A failed restart is retried, never taken as done.
    request_reboot(&store, &id);
    fake.fail_next(Op::Restart, RuntimeError::Conflict("busy".into()), 1);
    assert!(run(&ctx, &id).await.is_err());
    assert_eq!(get(&ctx, &id).status.reboots_done, 1);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(get(&ctx, &id).status.reboots_done, 2);
}

#[tokio::test]
async fn a_reboot_of_a_stopped_instance_does_nothing_then_or_later() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    desire(&store, &id, DesiredState::Stopped);
    let _ = run(&ctx, &id).await.unwrap();
    request_reboot(&store, &id);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(shown(&ctx, &id), InstanceState::Stopped);
    assert_eq!(get(&ctx, &id).status.reboots_done, 1, "void, not pending");
    fake.clear_calls();
    desire(&store, &id, DesiredState::Running);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.ops(), [Op::Unpause], "started, not also rebooted");
}

/// How many times the boot tasks were run through `exec` since the calls were last cleared.
fn execs(fake: &FakeRuntime) -> usize {
    fake.ops().iter().filter(|op| **op == Op::Exec).count()
}

/// An instance of an image whose command is an init system, booted: that init is PID 1 and
/// the boot tasks ran beside it once.
async fn booted_with_its_own_init() -> (Arc<Context<FakeRuntime>>, FakeRuntime, Store, InstanceId) {
    let (ctx, fake, store) = context(true);
    fake.set_image_command(
        AMI_REF,
        ec2d::runtime::ImageCommand {
            entrypoint: vec![],
            cmd: vec!["/sbin/init".into()],
        },
    );
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(execs(&fake), 1, "boot tasks beside init at the first boot");
    (ctx, fake, store, id)
}

#[tokio::test]
async fn an_image_with_its_own_init_gets_its_boot_tasks_again_after_a_reboot() {
    let (ctx, fake, store, id) = booted_with_its_own_init().await;

    fake.clear_calls();
    request_reboot(&store, &id);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        fake.ops().iter().filter(|op| **op == Op::Restart).count(),
        1
    );
    assert_eq!(execs(&fake), 1, "and again after the restart");
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
}

#[tokio::test]
async fn a_boot_cut_short_of_an_image_with_its_own_init_is_redone_beside_that_init() {
    let (ctx, fake, _store, id) = booted_with_its_own_init().await;
    let ops = redo_a_boot_cut_short(&ctx, &fake, &id).await;
    // Booted again as a fresh boot of this image is: its init as PID 1, the boot tasks beside it.
    assert!(ops.contains(&Op::ImageCommand), "{ops:?}");
    assert_eq!(execs(&fake), 1, "boot tasks beside init again: {ops:?}");
    let container = get(&ctx, &id).status.container.unwrap();
    assert_eq!(
        fake.execs().last().unwrap().0,
        container.id,
        "in the new container"
    );
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
}

#[tokio::test]
async fn create_image_of_an_instance_stopped_before_its_first_boot_tags_its_ami() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    desire(&store, &id, DesiredState::Stopped);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(shown(&ctx, &id), InstanceState::Stopped);
    assert_eq!(fake.container_state(&id), None, "never booted");

    let image = fixtures::committed_image(&id, "from-the-ami");
    let reference = image.spec.reference.clone();
    let image_id = ec2d::model::ImageId::parse(&image.metadata.name).unwrap();
    store.images().create(std::slice::from_ref(&image)).unwrap();
    fake.clear_calls();
    let _ = reconcile::reconcile(ObjectRef::Image(image_id.clone()), ctx.clone())
        .await
        .unwrap();
    let made = ctx.store.images().get(image_id.as_str()).unwrap().unwrap();
    assert_eq!(made.display_state(), ImageState::Available);
    assert!(fake.ops().contains(&Op::Tag));
    assert!(!fake.ops().contains(&Op::Commit));
    // The new AMI is the instance's AMI image under the new name.
    use ec2d::runtime::ContainerRuntime;
    let amis = fake.list_amis().await.unwrap();
    let id_of = |r: &str| {
        amis.iter()
            .find(|a| a.reference == r)
            .map(|a| a.docker_id.clone())
    };
    assert_eq!(id_of(&reference), id_of(AMI_REF));
    assert!(id_of(&reference).is_some());
    assert_eq!(made.status.docker_image_id, id_of(AMI_REF));
}

// ---------------------------------------------------------------------------------------------
// CopyImage and DeregisterImage

async fn reconcile_image(ctx: &Arc<Context<FakeRuntime>>, id: &str) {
    let id = ec2d::model::ImageId::parse(id).unwrap();
    let action = reconcile::reconcile(ObjectRef::Image(id), ctx.clone())
        .await
        .unwrap();
    assert_ne!(
        action,
        Action::requeue(Settings::default().converging_requeue),
        "done in one pass"
    );
}

async fn discover(ctx: &Arc<Context<FakeRuntime>>) -> Action {
    reconcile::reconcile(ObjectRef::Catalog, ctx.clone())
        .await
        .unwrap()
}

/// A CreateImage record of instance `id`, committed and available.
async fn committed(
    ctx: &Arc<Context<FakeRuntime>>,
    store: &Store,
    id: &InstanceId,
    name: &str,
) -> ec2d::model::Image {
    let image = fixtures::committed_image(id, name);
    store.images().create(std::slice::from_ref(&image)).unwrap();
    reconcile_image(ctx, &image.metadata.name).await;
    let made = store.images().get(&image.metadata.name).unwrap().unwrap();
    assert_eq!(made.display_state(), ImageState::Available);
    made
}

/// A CopyImage record of the AMI whose Docker image is `source_reference`.
fn copy_of(source: &ec2d::model::Image, source_reference: &str, name: &str) -> ec2d::model::Image {
    let id = ec2d::model::ImageId::generate();
    let mut copy = source.clone();
    copy.metadata = ec2d::model::ObjectMeta::new(id.as_str(), "eu-west-1", ec2d::model::now());
    copy.spec = ec2d::model::ImageSpec::new(
        name,
        ec2d::model::ImageSource::Copy {
            source_image_id: ec2d::model::ImageId::parse(&source.metadata.name).unwrap(),
            source_region: source.metadata.namespace.clone(),
            source_reference: source_reference.to_string(),
            client_token: None,
        },
        ec2d::model::AmiTag::new(name, id).to_string(),
    );
    copy.status = Default::default();
    copy
}

fn tagged(fake: &FakeRuntime, reference: &str) -> bool {
    use ec2d::runtime::ContainerRuntime;
    futures::executor::block_on(fake.image_exists(reference)).unwrap()
}

#[tokio::test]
async fn copy_image_tags_the_source_image_once_and_fails_when_it_is_gone() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    let source = committed(&ctx, &store, &id, "golden").await;

    let copy = copy_of(&source, &source.spec.reference, "golden-copy");
    store.images().create(std::slice::from_ref(&copy)).unwrap();
    fake.clear_calls();
    reconcile_image(&ctx, &copy.metadata.name).await;
    let made = store.images().get(&copy.metadata.name).unwrap().unwrap();
    assert_eq!(made.display_state(), ImageState::Available);
    assert_eq!(fake.ops(), vec![Op::ImageExists, Op::Tag]);
    assert!(tagged(&fake, &copy.spec.reference));
    assert_eq!(
        made.status.docker_image_id, source.status.docker_image_id,
        "the copy is the same image under another tag"
    );
    fake.clear_calls();
    reconcile_image(&ctx, &copy.metadata.name).await;
    assert!(fake.ops().is_empty(), "a finished copy is left alone");

    let lost = copy_of(&source, "localstack-ec2/gone:ami-0000dead", "lost-copy");
    store.images().create(std::slice::from_ref(&lost)).unwrap();
    reconcile_image(&ctx, &lost.metadata.name).await;
    let failed = store.images().get(&lost.metadata.name).unwrap().unwrap();
    assert_eq!(failed.display_state(), ImageState::Failed);
    assert_eq!(
        failed.status.state_reason.unwrap().message,
        "Client.InternalError: the image localstack-ec2/gone:ami-0000dead of the source AMI is gone"
    );
}

#[tokio::test]
async fn a_deregistered_image_loses_its_tag_then_its_record() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    let image = committed(&ctx, &store, &id, "short-lived").await;
    let ami = image.metadata.name.clone();
    // A second tag of the same image (a copy): the image stays while it has one.
    let copy = copy_of(&image, &image.spec.reference, "copy");
    store.images().create(std::slice::from_ref(&copy)).unwrap();
    reconcile_image(&ctx, &copy.metadata.name).await;
    let _ = discover(&ctx).await;
    assert!(store.catalog().get(&ami).unwrap().is_some());

    assert!(store
        .spec_view()
        .deregister_image(&ami, "us-east-1")
        .unwrap());
    assert!(
        !store
            .spec_view()
            .deregister_image(&ami, "us-east-1")
            .unwrap(),
        "once"
    );
    // Discovery removes the tag at once, but keeps the record until the record's own key has
    // acknowledged that no commit will run for it any more; it looks again soon.
    let action = discover(&ctx).await;
    assert!(fake.ops().contains(&Op::Untag));
    assert!(!tagged(&fake, &image.spec.reference));
    assert!(tagged(&fake, &copy.spec.reference), "the other tag stays");
    assert!(store.catalog().get(&ami).unwrap().is_none());
    assert!(store.images().get(&ami).unwrap().is_some());
    assert_eq!(
        action,
        Action::requeue(Settings::default().converging_requeue)
    );

    fake.clear_calls();
    reconcile_image(&ctx, &ami).await;
    assert!(
        fake.ops().is_empty(),
        "acknowledging asks nothing of the engine"
    );
    let acknowledged = store.images().get(&ami).unwrap().unwrap();
    assert_eq!(acknowledged.status.state, Some(ImageState::Deregistered));
    let action = discover(&ctx).await;
    assert!(store.images().get(&ami).unwrap().is_none(), "collected");
    assert_eq!(
        action,
        Action::requeue(Settings::default().converged_requeue)
    );
    let _ = discover(&ctx).await;
    assert!(store.catalog().get(&ami).unwrap().is_none(), "never back");
    assert!(
        store.catalog().get(&copy.metadata.name).unwrap().is_some(),
        "the copy's tag is still discovered"
    );
}

#[tokio::test]
async fn a_deregistered_image_a_container_uses_keeps_its_last_tag_until_the_container_goes() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    let image = committed(&ctx, &store, &id, "in-use").await;
    let ami = image.metadata.name.clone();
    // An instance launched from the new AMI.
    let mut user = fixtures::instance();
    user.spec.image_id = ec2d::model::ImageId::parse(&ami).unwrap();
    user.spec.image_ref = image.spec.reference.clone();
    store
        .instances()
        .create(std::slice::from_ref(&user))
        .unwrap();
    let user_id = InstanceId::parse(&user.metadata.name).unwrap();
    let _ = run(&ctx, &user_id).await.unwrap();
    assert_eq!(shown(&ctx, &user_id), InstanceState::Running);

    assert!(store
        .spec_view()
        .deregister_image(&ami, "us-east-1")
        .unwrap());
    reconcile_image(&ctx, &ami).await;
    let action = discover(&ctx).await;
    assert!(tagged(&fake, &image.spec.reference), "the engine refuses");
    assert!(store.images().get(&ami).unwrap().is_some(), "kept, hidden");
    assert!(store.catalog().get(&ami).unwrap().is_none());
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(5)));

    desire(&store, &user_id, DesiredState::Terminated);
    let _ = run(&ctx, &user_id).await.unwrap();
    assert_eq!(fake.container_state(&user_id), None, "container removed");
    let _ = discover(&ctx).await;
    assert!(!tagged(&fake, &image.spec.reference));
    assert!(store.images().get(&ami).unwrap().is_none());
}

#[tokio::test]
async fn a_deregistered_discovered_ami_is_untagged_and_a_failed_pass_converges_later() {
    let (ctx, fake, store) = context(true);
    fake.add_image("localstack-ec2/found:ami-0abc1234");
    let _ = discover(&ctx).await;
    let found = store.catalog().get("ami-0abc1234").unwrap().unwrap();
    let mut record = found.clone();
    record.metadata.namespace = ec2d::model::DISCOVERED_NAMESPACE.to_string();
    record.spec.deregistered = true;
    record.status = Default::default();
    store
        .spec_view()
        .deregister_discovered_image(&record)
        .unwrap();

    // The engine fails mid-way: the record stays, and the next pass (a resync, or ec2d
    // started again) carries on from what it finds.
    fake.fail_next(
        Op::Untag,
        RuntimeError::Unavailable("engine restarting".into()),
        1,
    );
    let _ = discover(&ctx).await;
    assert!(tagged(&fake, "localstack-ec2/found:ami-0abc1234"));
    assert!(store.images().get("ami-0abc1234").unwrap().is_some());
    let restarted = Arc::new(Context::new(
        store.clone(),
        fake.clone(),
        Settings::default(),
    ));
    for key in reconcile::all_keys(&restarted.store) {
        if !matches!(key, ObjectRef::Sweep) {
            let _ = reconcile::reconcile(key, restarted.clone()).await.unwrap();
        }
    }
    let _ = discover(&restarted).await;
    assert!(!tagged(&fake, "localstack-ec2/found:ami-0abc1234"));
    assert!(store.images().get("ami-0abc1234").unwrap().is_none());
    assert!(store.catalog().get("ami-0abc1234").unwrap().is_none());

    // Tagged again later, it is a new discovery like any other.
    fake.add_image("localstack-ec2/found:ami-0abc1234");
    let _ = discover(&ctx).await;
    assert!(store.catalog().get("ami-0abc1234").unwrap().is_some());
}

/// DeregisterImage of a discovered AMI, as the API writes it: a record of its id, marked.
fn deregister_discovered(store: &Store, id: &str) {
    let mut record = store.catalog().get(id).unwrap().unwrap();
    record.spec.deregistered = true;
    record.status = Default::default();
    store
        .spec_view()
        .deregister_discovered_image(&record)
        .unwrap();
}

#[tokio::test]
async fn a_failed_untag_keeps_its_record_for_the_next_pass_and_discovery_goes_on() {
    let (ctx, fake, store) = context(true);
    fake.add_image("localstack-ec2/first:ami-0abc1234");
    fake.add_image("localstack-ec2/second:ami-0def5678");
    let _ = discover(&ctx).await;
    for id in ["ami-0abc1234", "ami-0def5678"] {
        deregister_discovered(&store, id);
        reconcile_image(&ctx, id).await;
    }
    fake.add_image("localstack-ec2/new:ami-0123abcd");
    // The first removal fails (not "in use", not "gone"): logged, and the pass goes on.
    fake.fail_next(
        Op::Untag,
        RuntimeError::Failed("layer store: input/output error".into()),
        1,
    );
    let action = discover(&ctx).await;
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(5)));
    let untagged: Vec<_> = [
        "localstack-ec2/first:ami-0abc1234",
        "localstack-ec2/second:ami-0def5678",
    ]
    .into_iter()
    .filter(|r| !tagged(&fake, r))
    .collect();
    assert_eq!(untagged.len(), 1, "the other tag went in the same pass");
    let (failed, done) = if untagged[0].ends_with("ami-0abc1234") {
        ("ami-0def5678", "ami-0abc1234")
    } else {
        ("ami-0abc1234", "ami-0def5678")
    };
    assert!(
        store.images().get(failed).unwrap().is_some(),
        "kept for the next pass"
    );
    assert!(store.images().get(done).unwrap().is_none());
    assert!(
        store.catalog().get("ami-0123abcd").unwrap().is_some(),
        "discovery was not stopped"
    );
    assert!(
        store.catalog().get(failed).unwrap().is_none(),
        "still hidden"
    );

    let action = discover(&ctx).await;
    assert_eq!(
        action,
        Action::requeue(Settings::default().converged_requeue)
    );
    assert!(store.images().get(failed).unwrap().is_none());
    assert!(store.catalog().get(failed).unwrap().is_none());
}

#[tokio::test]
async fn deregistering_another_ec2ds_ami_here_keeps_its_tag() {
    let (ctx, fake, store) = context(true);
    let ours = ctx.store.id().to_string();
    let label = |store_id: &str| {
        std::collections::BTreeMap::from([(
            ec2d::runtime::labels::STORE_ID.to_string(),
            store_id.to_string(),
        )])
    };
    // Another ec2d on the same engine committed this one; the user tagged the second; this
    // ec2d's own store id is on the third (a tag the user added to an image ec2d committed).
    let theirs = "localstack-ec2/theirs:ami-0abc1234";
    let users = "localstack-ec2/users:ami-0def5678";
    let own = "localstack-ec2/own:ami-0123abcd";
    fake.add_labelled_image(theirs, label("6c1d0cf4-other-store"));
    fake.add_image(users);
    fake.add_labelled_image(own, label(&ours));
    let _ = discover(&ctx).await;
    for id in ["ami-0abc1234", "ami-0def5678", "ami-0123abcd"] {
        assert!(
            store.catalog().get(id).unwrap().is_some(),
            "{id} discovered"
        );
        deregister_discovered(&store, id);
        reconcile_image(&ctx, id).await;
    }
    let action = discover(&ctx).await;
    assert_eq!(
        action,
        Action::requeue(Settings::default().converged_requeue)
    );
    assert!(tagged(&fake, theirs), "the other ec2d's AMI keeps its tag");
    assert!(!tagged(&fake, users));
    assert!(!tagged(&fake, own));
    for id in ["ami-0abc1234", "ami-0def5678", "ami-0123abcd"] {
        assert!(
            store.images().get(id).unwrap().is_none(),
            "{id}'s record dropped"
        );
    }
    // Its record is gone, and still the AMI stays deregistered here.
    for _ in 0..2 {
        let _ = discover(&ctx).await;
        assert!(store.catalog().get("ami-0abc1234").unwrap().is_none());
        assert!(tagged(&fake, theirs));
    }
    // A tag of an image this ec2d's CreateImage committed carries this store's id.
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    let committed = committed(&ctx, &store, &id, "mine").await;
    let listed = fake.list_amis().await.unwrap();
    let entry = listed
        .iter()
        .find(|a| a.ami_id.as_str() == committed.metadata.name)
        .unwrap();
    assert_eq!(entry.store_id.as_deref(), Some(ours.as_str()));
}

#[tokio::test]
async fn a_copy_of_another_ec2ds_ami_loses_its_own_tag_when_deregistered() {
    let (ctx, fake, store) = context(true);
    let theirs = "localstack-ec2/theirs:ami-0abc1234";
    fake.add_labelled_image(
        theirs,
        std::collections::BTreeMap::from([(
            ec2d::runtime::labels::STORE_ID.to_string(),
            "6c1d0cf4-other-store".to_string(),
        )]),
    );
    let _ = discover(&ctx).await;
    let source = store.catalog().get("ami-0abc1234").unwrap().unwrap();
    // CopyImage here tags the other ec2d's image anew: that tag is this ec2d's own.
    let copy = copy_of(&source, theirs, "copy");
    store.images().create(std::slice::from_ref(&copy)).unwrap();
    reconcile_image(&ctx, &copy.metadata.name).await;
    assert!(tagged(&fake, &copy.spec.reference));
    assert!(store
        .spec_view()
        .deregister_image(&copy.metadata.name, "eu-west-1")
        .unwrap());
    reconcile_image(&ctx, &copy.metadata.name).await;
    let _ = discover(&ctx).await;
    assert!(!tagged(&fake, &copy.spec.reference));
    assert!(tagged(&fake, theirs));
    assert!(store.images().get(&copy.metadata.name).unwrap().is_none());
    assert!(
        store.catalog().get("ami-0abc1234").unwrap().is_some(),
        "the source is still discovered"
    );
}

#[tokio::test]
async fn a_commit_deregistered_before_it_ran_never_runs() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    let image = fixtures::committed_image(&id, "never");
    store.images().create(std::slice::from_ref(&image)).unwrap();
    assert!(store
        .spec_view()
        .deregister_image(&image.metadata.name, "us-east-1")
        .unwrap());
    fake.clear_calls();
    reconcile_image(&ctx, &image.metadata.name).await;
    let _ = discover(&ctx).await;
    assert!(!fake.ops().contains(&Op::Commit));
    assert!(store.images().get(&image.metadata.name).unwrap().is_none());
    assert!(!tagged(&fake, &image.spec.reference));
}

// ---------------------------------------------------------------------------------------------
// Instance types as limits

const GIB: i64 = 1 << 30;

/// A reconciler whose engine reports `cpus` host CPUs (as the app's ping records them).
async fn context_with(
    settings: Settings,
    cpus: u32,
) -> (Arc<Context<FakeRuntime>>, FakeRuntime, Store) {
    let fake = FakeRuntime::new();
    fake.add_image(AMI_REF);
    fake.set_host_limits(Some(HostLimits {
        cpus,
        cpu_quota: true,
        memory_limit: true,
    }));
    let store = Store::temporary().unwrap();
    let ctx = Arc::new(Context::new(store.clone(), fake.clone(), settings));
    ctx.engine.record_ping(&fake.info().await);
    (ctx, fake, store)
}

fn limits(cpus: Option<i64>, gib: Option<i64>) -> ResourceLimits {
    ResourceLimits {
        nano_cpus: cpus.map(|c| c * 1_000_000_000),
        memory_bytes: gib.map(|g| g * GIB),
    }
}

fn set_type(store: &Store, id: &InstanceId, instance_type: &str) {
    store
        .instances()
        .update_spec_same_generation::<StoreError>(id.as_str(), |o| {
            o.spec.instance_type = instance_type.to_string();
            Ok(true)
        })
        .unwrap();
}

#[tokio::test]
async fn a_t3_micro_gets_2_cpus_and_1_gib_capped_at_the_hosts_cpus() {
    let (ctx, fake, store) = context_with(Settings::default(), 8).await;
    let id = launch(&store);
    assert_eq!(get(&ctx, &id).spec.instance_type, "t3.micro");
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_limits(&id), Some(limits(Some(2), Some(1))));

    // A host with one CPU: the engine refuses a quota above it, so the type gets one.
    let (ctx, fake, store) = context_with(Settings::default(), 1).await;
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_limits(&id), Some(limits(Some(1), Some(1))));
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
}

#[tokio::test]
async fn a_type_changed_while_stopped_is_applied_in_place_before_the_start() {
    let (ctx, fake, store) = context_with(Settings::default(), 2).await;
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    let container = fake.container_id(&id).unwrap();
    desire(&store, &id, DesiredState::Stopped);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(shown(&ctx, &id), InstanceState::Stopped);

    // ModifyInstanceAttribute InstanceType=t3.small (2 GiB) moves only resourceVersion.
    set_type(&store, &id, "t3.small");
    fake.clear_calls();
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.ops(), [Op::Inspect, Op::UpdateLimits, Op::Inspect]);
    assert_eq!(fake.container_limits(&id), Some(limits(Some(2), Some(2))));
    assert_eq!(fake.container_state(&id), Some(ContainerState::Paused));
    assert_eq!(shown(&ctx, &id), InstanceState::Stopped, "still stopped");

    desire(&store, &id, DesiredState::Running);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(shown(&ctx, &id), InstanceState::Running);
    assert_eq!(
        fake.container_id(&id),
        Some(container),
        "the same container"
    );
    assert_eq!(fake.container_limits(&id), Some(limits(Some(2), Some(2))));

    // Converged: later passes leave the limits alone.
    fake.clear_calls();
    let _ = run(&ctx, &id).await.unwrap();
    assert!(!fake.ops().contains(&Op::UpdateLimits));
}

#[tokio::test]
async fn a_container_found_without_its_limits_gets_them_in_place() {
    // Made while the limits were off (or by an older ec2d), then reconciled with them on.
    let off = Settings {
        instance_type_limits: false,
        ..Settings::default()
    };
    let (ctx, fake, store) = context_with(off, 2).await;
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_limits(&id), Some(ResourceLimits::default()));
    let container = fake.container_id(&id);

    let on = Arc::new(Context::new(
        store.clone(),
        fake.clone(),
        Settings::default(),
    ));
    on.engine.record_ping(&fake.info().await);
    let _ = run(&on, &id).await.unwrap();
    assert_eq!(fake.container_limits(&id), Some(limits(Some(2), Some(1))));
    assert_eq!(fake.container_id(&id), container, "updated, not re-created");

    // Turned off again: what the container has is left as it is (the engine cannot lift a
    // limit in place), and nothing is updated.
    fake.clear_calls();
    let _ = run(&ctx, &id).await.unwrap();
    assert!(!fake.ops().contains(&Op::UpdateLimits));
}

#[tokio::test]
async fn the_operators_flags_win_over_the_type() {
    let flagged = Settings {
        docker_flags: DockerFlags::parse("--memory 256m").unwrap(),
        ..Settings::default()
    };
    let (ctx, fake, store) = context_with(flagged, 2).await;
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        fake.container_limits(&id),
        Some(ResourceLimits {
            nano_cpus: Some(2_000_000_000),
            memory_bytes: Some(256 << 20),
        })
    );
    // A type change never overrides the flag either.
    desire(&store, &id, DesiredState::Stopped);
    let _ = run(&ctx, &id).await.unwrap();
    set_type(&store, &id, "t3.small");
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        fake.container_limits(&id).unwrap().memory_bytes,
        Some(256 << 20)
    );
}

#[tokio::test]
async fn while_the_hosts_cpu_count_is_unknown_only_memory_is_limited_then_cpus_follow() {
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_limits(&id), Some(limits(None, Some(1))));
    ctx.engine.record_ping(&fake.info().await);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_limits(&id), Some(limits(Some(2), Some(1))));
}

#[tokio::test]
async fn a_refused_limit_update_is_recorded_and_retried() {
    let (ctx, fake, store) = context_with(Settings::default(), 2).await;
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    desire(&store, &id, DesiredState::Stopped);
    let _ = run(&ctx, &id).await.unwrap();
    set_type(&store, &id, "t3.small");
    fake.fail_next(
        Op::UpdateLimits,
        RuntimeError::Failed("Range of CPUs is from 0.01 to 1.00".into()),
        1,
    );
    assert!(run(&ctx, &id).await.is_err());
    assert!(get(&ctx, &id).status.last_error.is_some());
    assert_eq!(shown(&ctx, &id), InstanceState::Stopped);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(fake.container_limits(&id), Some(limits(Some(2), Some(2))));
    assert!(get(&ctx, &id).status.last_error.is_none());
}

// ---------------------------------------------------------------------------------------------
// Console output

/// A reconciler that reads logs on every pass (no spacing), so each pass shows its effect.
fn console_context() -> (Arc<Context<FakeRuntime>>, FakeRuntime, Store) {
    let fake = FakeRuntime::new();
    fake.add_image(AMI_REF);
    let settings = Settings {
        console_refresh_every: std::time::Duration::ZERO,
        ..Settings::default()
    };
    let store = Store::temporary().unwrap();
    let ctx = Arc::new(Context::new(store.clone(), fake.clone(), settings));
    (ctx, fake, store)
}

fn console(ctx: &Context<FakeRuntime>, id: &InstanceId) -> Option<String> {
    ctx.store
        .console_output(id.as_str())
        .unwrap()
        .map(|c| String::from_utf8(c.bytes()).unwrap())
}

#[tokio::test]
async fn the_containers_console_is_copied_and_grows_with_it() {
    let (ctx, fake, store) = console_context();
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        console(&ctx, &id),
        None,
        "nothing printed yet: nothing kept"
    );

    fake.print(&id, "ec2d boot\n");
    fake.print(&id, "user data says hi\n");
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        console(&ctx, &id).as_deref(),
        Some("ec2d boot\nuser data says hi\n")
    );
    let first = ctx.store.console_output(id.as_str()).unwrap().unwrap();

    // Only what is new is read and appended; nothing new writes nothing.
    fake.print(&id, "later\n");
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        console(&ctx, &id).as_deref(),
        Some("ec2d boot\nuser data says hi\nlater\n")
    );
    let second = ctx.store.console_output(id.as_str()).unwrap().unwrap();
    assert!(second.updated_at >= first.updated_at);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        ctx.store.console_output(id.as_str()).unwrap().unwrap(),
        second,
        "unchanged copy, unchanged time"
    );

    // A stopped (frozen) instance's console is still there.
    desire(&store, &id, DesiredState::Stopped);
    let _ = run(&ctx, &id).await.unwrap();
    let _ = run(&ctx, &id).await.unwrap();
    assert!(console(&ctx, &id).unwrap().ends_with("later\n"));
}

#[tokio::test]
async fn a_fresh_container_starts_a_fresh_console() {
    let (ctx, fake, store) = console_context();
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    fake.print(&id, "first boot\n");
    let _ = run(&ctx, &id).await.unwrap();
    fake.remove_behind_back(&id);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        console(&ctx, &id).as_deref(),
        Some(""),
        "the old boot's output is gone"
    );
    fake.print(&id, "second boot\n");
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(console(&ctx, &id).as_deref(), Some("second boot\n"));
}

#[tokio::test]
async fn reads_of_the_log_are_spaced_out_and_a_failed_one_changes_nothing() {
    // The default spacing: a burst of passes reads the log once.
    let (ctx, fake, store) = context(true);
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    fake.print(&id, "hello\n");
    for _ in 0..3 {
        let _ = run(&ctx, &id).await.unwrap();
    }
    let reads = fake
        .ops()
        .iter()
        .filter(|op| **op == Op::ConsoleLog)
        .count();
    assert_eq!(reads, 1, "read once, right after the boot");

    // A failed read is no failed pass.
    let (ctx, fake, store) = console_context();
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    fake.print(&id, "hello\n");
    fake.fail_next(
        Op::ConsoleLog,
        RuntimeError::Failed("logging driver does not support reading".into()),
        1,
    );
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(console(&ctx, &id), None);
    assert!(get(&ctx, &id).status.last_error.is_none());
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(console(&ctx, &id).as_deref(), Some("hello\n"));
}

#[tokio::test]
async fn a_collected_instance_takes_its_console_with_it() {
    let fake = FakeRuntime::new();
    fake.add_image(AMI_REF);
    let settings = Settings {
        terminated_retention: std::time::Duration::ZERO,
        console_refresh_every: std::time::Duration::ZERO,
        remove_containers: true,
        ..Settings::default()
    };
    let store = Store::temporary().unwrap();
    let ctx = Arc::new(Context::new(store.clone(), fake.clone(), settings));
    let id = launch(&store);
    let _ = run(&ctx, &id).await.unwrap();
    fake.print(&id, "bye\n");
    let _ = run(&ctx, &id).await.unwrap();
    desire(&store, &id, DesiredState::Terminated);
    let _ = run(&ctx, &id).await.unwrap();
    assert_eq!(
        console(&ctx, &id).as_deref(),
        Some("bye\n"),
        "a terminated instance's console stays until its record goes"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let _ = reconcile::reconcile(ObjectRef::Sweep, ctx.clone())
        .await
        .unwrap();
    assert!(ctx.store.instances().get(id.as_str()).unwrap().is_none());
    assert_eq!(console(&ctx, &id), None);
}
