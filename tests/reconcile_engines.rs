//! The reconciler over two fake engines, one per zone: placement by zone, the sticky engine, image copies on demand, per-engine sweeps, catalog and reset, and an engine that goes away.

use std::sync::Arc;

use ec2d::model::snapshot::new_snapshot;
use ec2d::model::volume::new_volume;
use ec2d::model::{
    display_state, fixtures, now, DesiredState, ImageCopy, Instance, InstanceId, InstanceState,
};
use ec2d::reconcile::{self, reset, Context, Engines, ObjectRef, Settings};
use ec2d::runtime::fake::Op;
use ec2d::runtime::{ContainerRuntime, ContainerState, FakeRuntime};
use ec2d::store::{Store, StoreError};

const AMI_REF: &str = "localstack-ec2/test-ami:ami-000001";
const ENGINE_A: &str = "unix:///var/run/docker.sock";
const ENGINE_B: &str = "unix:///run/ec2d-engine-b/docker.sock";

/// Two fake engines: A, the default, and B serving `zones_on_b`.
struct Two {
    ctx: Arc<Context<FakeRuntime>>,
    a: FakeRuntime,
    b: FakeRuntime,
    store: Store,
}

fn two_engines_on(store: Store, a: FakeRuntime, b: FakeRuntime, zones_on_b: &[&str]) -> Two {
    let zones = zones_on_b
        .iter()
        .map(|zone| (zone.to_string(), ENGINE_B.to_string()));
    let for_b = b.clone();
    let engines = Engines::build(ENGINE_A, a.clone(), zones, move |_| {
        Ok::<_, std::convert::Infallible>(for_b.clone())
    })
    .unwrap();
    let ctx = Arc::new(Context::with_engines(
        store.clone(),
        engines,
        Settings::default(),
    ));
    Two { ctx, a, b, store }
}

/// A and B with the AMI's image on A only; zone us-east-1b is on B.
fn two_engines() -> Two {
    let a = FakeRuntime::new();
    a.add_image(AMI_REF);
    two_engines_on(
        Store::temporary().unwrap(),
        a,
        FakeRuntime::new(),
        &["us-east-1b"],
    )
}

/// A and B, both holding the AMI's image (no copy needed).
fn both_holding_the_image() -> Two {
    let two = two_engines();
    two.b.add_image(AMI_REF);
    two
}

/// An instance launched in `zone` and reconciled once.
async fn running_in(two: &Two, zone: &str) -> InstanceId {
    let id = launch_in(&two.store, zone);
    run_instance(two, &id).await;
    id
}

fn launch_in(store: &Store, zone: &str) -> InstanceId {
    let mut instance = fixtures::instance();
    let id = InstanceId::generate();
    instance.metadata.name = id.to_string();
    instance.spec.availability_zone = zone.to_string();
    store
        .instances()
        .create(std::slice::from_ref(&instance))
        .unwrap();
    id
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

fn get(two: &Two, id: &InstanceId) -> Instance {
    two.ctx.store.instances().get(id.as_str()).unwrap().unwrap()
}

fn shown(two: &Two, id: &InstanceId) -> InstanceState {
    let i = get(two, id);
    display_state(&i.metadata, &i.spec, &i.status)
}

async fn run(
    two: &Two,
    key: ObjectRef,
) -> Result<ec2d::controller::Action, reconcile::ReconcileError> {
    reconcile::reconcile(key, two.ctx.clone()).await
}

async fn run_instance(two: &Two, id: &InstanceId) {
    let _ = run(two, ObjectRef::Instance(id.clone())).await.unwrap();
}

#[tokio::test]
async fn instances_land_on_their_zones_engine_and_record_it() {
    let two = both_holding_the_image();
    let in_a = launch_in(&two.store, "us-east-1a");
    let in_b = launch_in(&two.store, "us-east-1b");
    let in_c = launch_in(&two.store, "us-east-1c");
    for id in [&in_a, &in_b, &in_c] {
        run_instance(&two, id).await;
        assert_eq!(shown(&two, id), InstanceState::Running, "{id}");
    }
    assert_eq!(two.a.container_state(&in_a), Some(ContainerState::Running));
    assert_eq!(two.b.container_state(&in_b), Some(ContainerState::Running));
    // A zone no one names is the default engine's.
    assert_eq!(two.a.container_state(&in_c), Some(ContainerState::Running));
    assert_eq!(two.a.container_state(&in_b), None);
    assert_eq!(two.b.container_state(&in_a), None);
    assert_eq!(get(&two, &in_a).status.engine.as_deref(), Some(ENGINE_A));
    assert_eq!(get(&two, &in_b).status.engine.as_deref(), Some(ENGINE_B));

    // Stop and terminate reach the right engine.
    desire(&two.store, &in_b, DesiredState::Stopped);
    run_instance(&two, &in_b).await;
    assert_eq!(two.b.container_state(&in_b), Some(ContainerState::Paused));
    assert_eq!(two.a.container_state(&in_a), Some(ContainerState::Running));
    desire(&two.store, &in_b, DesiredState::Terminated);
    run_instance(&two, &in_b).await;
    assert_eq!(two.b.container_state(&in_b), None);
    assert_eq!(shown(&two, &in_b), InstanceState::Terminated);
}

#[tokio::test]
async fn an_instance_stays_on_its_recorded_engine_when_the_zones_move() {
    let two = both_holding_the_image();
    let id = running_in(&two, "us-east-1b").await;
    assert_eq!(two.b.container_state(&id), Some(ContainerState::Running));

    // Restarted with us-east-1b on the default engine and B serving another zone: the
    // instance's container stays where it is, and is still driven there.
    let moved = two_engines_on(
        two.store.clone(),
        two.a.clone(),
        two.b.clone(),
        &["us-east-1c"],
    );
    desire(&moved.store, &id, DesiredState::Stopped);
    run_instance(&moved, &id).await;
    assert_eq!(moved.b.container_state(&id), Some(ContainerState::Paused));
    assert_eq!(
        moved.a.container_state(&id),
        None,
        "no second container on A"
    );
    assert_eq!(get(&moved, &id).status.engine.as_deref(), Some(ENGINE_B));
}

#[tokio::test]
async fn a_record_from_one_engine_with_a_container_stays_on_the_default_engine() {
    // Launched while ec2d had one engine: no engine recorded, the container on the default.
    let a = FakeRuntime::new();
    a.add_image(AMI_REF);
    let store = Store::temporary().unwrap();
    let single = Arc::new(Context::new(store.clone(), a.clone(), Settings::default()));
    let id = launch_in(&store, "us-east-1b");
    let _ = reconcile::reconcile(ObjectRef::Instance(id.clone()), single.clone())
        .await
        .unwrap();
    let before = store.instances().get(id.as_str()).unwrap().unwrap();
    assert_eq!(before.status.engine, None, "one engine records none");

    // Now us-east-1b is on B: the instance keeps its container on A.
    let two = two_engines_on(store, a, FakeRuntime::new(), &["us-east-1b"]);
    desire(&two.store, &id, DesiredState::Stopped);
    run_instance(&two, &id).await;
    assert_eq!(two.a.container_state(&id), Some(ContainerState::Paused));
    assert_eq!(two.b.container_state(&id), None);
    assert_eq!(get(&two, &id).status.engine.as_deref(), Some(ENGINE_A));
}

#[tokio::test]
async fn a_boot_on_an_engine_without_the_image_copies_it_there_first() {
    let two = two_engines();
    assert!(!two.b.image_references().contains(&AMI_REF.to_string()));
    let first = launch_in(&two.store, "us-east-1b");
    let second = launch_in(&two.store, "us-east-1b");

    // Two boots at once: one copy, and both wait for it.
    let (r1, r2) = tokio::join!(
        run(&two, ObjectRef::Instance(first.clone())),
        run(&two, ObjectRef::Instance(second.clone()))
    );
    let _ = r1.unwrap();
    let _ = r2.unwrap();
    assert!(two.b.image_references().contains(&AMI_REF.to_string()));
    let exports = two
        .a
        .ops()
        .iter()
        .filter(|op| **op == Op::ExportImage)
        .count();
    let imports = two
        .b
        .ops()
        .iter()
        .filter(|op| **op == Op::ImportImage)
        .count();
    assert_eq!((exports, imports), (1, 1), "one copy for both boots");
    for id in [&first, &second] {
        assert_eq!(two.b.container_state(id), Some(ContainerState::Running));
        assert_eq!(shown(&two, id), InstanceState::Running);
        assert_eq!(get(&two, id).status.image_copy, None, "the copy is over");
    }
}

#[tokio::test]
async fn the_instance_is_pending_with_its_image_copy_in_status_meanwhile() {
    let two = two_engines();
    let hold = two.a.hold_copies().await;
    let id = launch_in(&two.store, "us-east-1b");
    let pass = tokio::spawn({
        let ctx = two.ctx.clone();
        let id = id.clone();
        async move { reconcile::reconcile(ObjectRef::Instance(id), ctx).await }
    });
    let mut copy = None;
    for _ in 0..200 {
        copy = get(&two, &id).status.image_copy;
        if copy.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let copy = copy.expect("the copy shows in the status while it runs");
    assert_eq!(copy.reference, AMI_REF);
    assert_eq!((copy.from.as_str(), copy.to.as_str()), (ENGINE_A, ENGINE_B));
    assert_eq!(shown(&two, &id), InstanceState::Pending);
    assert_eq!(two.b.container_state(&id), None);
    // Its progress is written as it streams (the held fake copy stops half way: 512 bytes).
    let mut bytes = 0;
    for _ in 0..300 {
        bytes = get(&two, &id)
            .status
            .image_copy
            .map_or(0, |c| c.bytes_copied);
        if bytes > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(bytes, 512);
    drop(hold);
    let _ = pass.await.unwrap().unwrap();
    assert_eq!(shown(&two, &id), InstanceState::Running);
    assert_eq!(get(&two, &id).status.image_copy, None);
}

#[tokio::test]
async fn an_unreachable_engine_fails_its_zone_only_and_its_instances_keep_their_state() {
    let two = both_holding_the_image();
    let in_a = running_in(&two, "us-east-1a").await;
    let in_b = running_in(&two, "us-east-1b").await;

    two.b.set_down(true);
    let error = run(&two, ObjectRef::Instance(in_b.clone()))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    let b = two
        .ctx
        .engines
        .iter()
        .find(|e| e.name() == ENGINE_B)
        .unwrap();
    assert!(b.monitor().is_down(), "B's monitor saw it go");
    assert!(!two.ctx.engines.default().monitor().is_down());
    assert_eq!(
        shown(&two, &in_b),
        InstanceState::Running,
        "state unchanged"
    );

    // Zone A keeps working: stop and start go through.
    desire(&two.store, &in_a, DesiredState::Stopped);
    run_instance(&two, &in_a).await;
    assert_eq!(shown(&two, &in_a), InstanceState::Stopped);
    // The sweep does A's part and reports B's failure.
    assert!(run(&two, ObjectRef::Sweep).await.is_err());

    // Back: B's instance converges.
    two.b.set_down(false);
    desire(&two.store, &in_b, DesiredState::Stopped);
    run_instance(&two, &in_b).await;
    assert_eq!(two.b.container_state(&in_b), Some(ContainerState::Paused));
}

#[tokio::test]
async fn the_sweep_removes_each_engines_orphans_and_leftovers_only() {
    let two = both_holding_the_image();
    let in_a = launch_in(&two.store, "us-east-1a");
    let in_b = launch_in(&two.store, "us-east-1b");
    let orphan = launch_in(&two.store, "us-east-1b");
    for id in [&in_a, &in_b, &orphan] {
        run_instance(&two, id).await;
    }
    // An orphan on B (its record gone), and a leftover on A: a container of an instance
    // whose status records B.
    two.store.instances().delete(orphan.as_str()).unwrap();
    let leftover = running_in(&two, "us-east-1a").await;
    let mut status = get(&two, &leftover).status;
    status.engine = Some(ENGINE_B.to_string());
    two.ctx
        .store
        .instances()
        .write_status(leftover.as_str(), &status)
        .unwrap();

    let _ = run(&two, ObjectRef::Sweep).await.unwrap();
    assert_eq!(
        two.b.container_state(&orphan),
        None,
        "orphan removed from B"
    );
    assert_eq!(
        two.a.container_state(&leftover),
        None,
        "leftover removed from A"
    );
    assert_eq!(two.a.container_state(&in_a), Some(ContainerState::Running));
    assert_eq!(two.b.container_state(&in_b), Some(ContainerState::Running));
}

#[tokio::test]
async fn the_catalog_lists_an_ami_once_and_keeps_an_unreachable_engines_amis() {
    let two = both_holding_the_image();
    two.b.add_image("localstack-ec2/only-on-b:ami-0000000b");
    let _ = run(&two, ObjectRef::Catalog).await.unwrap();
    let ids = |two: &Two| {
        let mut ids: Vec<String> = two
            .ctx
            .store
            .catalog()
            .list()
            .unwrap()
            .objects
            .iter()
            .map(|image| image.metadata.name.clone())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&two), ["ami-0000000b", "ami-000001"]);

    // B away: its AMIs stay; a new tag on A is still discovered.
    two.b.set_down(true);
    two.a.add_image("localstack-ec2/new-on-a:ami-0000000a");
    let _ = run(&two, ObjectRef::Catalog).await.unwrap();
    assert_eq!(ids(&two), ["ami-0000000a", "ami-0000000b", "ami-000001"]);
}

#[tokio::test]
async fn a_reset_clears_every_engine_and_names_one_it_cannot_reach() {
    let two = both_holding_the_image();
    let in_a = running_in(&two, "us-east-1a").await;
    let in_b = running_in(&two, "us-east-1b").await;
    assert!(two.a.container_state(&in_a).is_some() && two.b.container_state(&in_b).is_some());
    let report = reset::remove_everything(&two.ctx).await.unwrap();
    assert_eq!(report.containers, 2);
    assert!(report.engines_unreachable.is_empty());
    assert_eq!((two.a.container_count(), two.b.container_count()), (0, 0));

    let again = running_in(&two, "us-east-1b").await;
    two.b.set_down(true);
    let report = reset::remove_everything(&two.ctx).await.unwrap();
    assert_eq!(report.engines_unreachable, [ENGINE_B.to_string()]);
    // Left where it is, for the sweep once B is back and the records are wiped.
    two.b.set_down(false);
    assert_eq!(two.b.container_state(&again), Some(ContainerState::Running));
}

#[tokio::test]
async fn an_unreachable_engine_holding_the_only_image_makes_the_boot_wait_not_fail() {
    let two = two_engines();
    let id = launch_in(&two.store, "us-east-1b");
    two.a.set_down(true);
    let error = run(&two, ObjectRef::Instance(id.clone()))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(
        shown(&two, &id),
        InstanceState::Pending,
        "never terminated for it"
    );
    two.a.set_down(false);
    run_instance(&two, &id).await;
    assert_eq!(two.b.container_state(&id), Some(ContainerState::Running));
}

#[tokio::test]
async fn an_engine_recorded_under_several_engines_is_forgotten_under_one_and_stays_so() {
    let two = both_holding_the_image();
    let id = running_in(&two, "us-east-1b").await;
    assert_eq!(get(&two, &id).status.engine.as_deref(), Some(ENGINE_B));

    // Restarted with one engine (A): the instance boots there, and no longer records B.
    let single = Arc::new(Context::new(
        two.store.clone(),
        two.a.clone(),
        Settings::default(),
    ));
    let _ = reconcile::reconcile(ObjectRef::Instance(id.clone()), single.clone())
        .await
        .unwrap();
    let status = single
        .store
        .instances()
        .get(id.as_str())
        .unwrap()
        .unwrap()
        .status;
    assert_eq!(status.engine, None);
    assert_eq!(two.a.container_state(&id), Some(ContainerState::Running));

    // B named again: the instance stays on A, and B's sweep removes its old container there.
    let again = two_engines_on(
        two.store.clone(),
        two.a.clone(),
        two.b.clone(),
        &["us-east-1b"],
    );
    run_instance(&again, &id).await;
    assert_eq!(get(&again, &id).status.engine.as_deref(), Some(ENGINE_A));
    let _ = run(&again, ObjectRef::Sweep).await.unwrap();
    assert_eq!(again.b.container_state(&id), None, "B's leftover removed");
    assert_eq!(again.a.container_state(&id), Some(ContainerState::Running));
}

#[tokio::test]
async fn a_copy_a_crash_cut_short_leaves_no_image_copy_in_the_status() {
    let two = both_holding_the_image();
    let id = running_in(&two, "us-east-1b").await;
    // As a crash mid-copy would leave it, on an instance that is now to stop.
    let mut status = get(&two, &id).status;
    status.image_copy = Some(ImageCopy {
        reference: AMI_REF.to_string(),
        from: ENGINE_A.to_string(),
        to: ENGINE_B.to_string(),
        bytes_copied: 10,
        started_at: now(),
    });
    two.ctx
        .store
        .instances()
        .write_status(id.as_str(), &status)
        .unwrap();
    desire(&two.store, &id, DesiredState::Stopped);
    run_instance(&two, &id).await;
    assert_eq!(get(&two, &id).status.image_copy, None);
    assert_eq!(shown(&two, &id), InstanceState::Stopped);
}

#[tokio::test]
async fn volumes_and_snapshots_stay_on_the_engine_that_holds_them() {
    let two = two_engines();
    let volume_id = "vol-0000000000000000b";
    let snapshot_id = "snap-0000000000000000b";
    two.store
        .create_volume(&new_volume(
            volume_id,
            "us-east-1",
            fixtures::volume_spec("us-east-1b", "gp3", 8),
            now(),
        ))
        .unwrap();
    let _ = run(&two, ObjectRef::Volume(volume_id.into()))
        .await
        .unwrap();
    let volume = two.store.volumes().get(volume_id).unwrap().unwrap();
    let backing = volume.status.backing.clone().expect("made");
    assert_eq!(volume.status.engine.as_deref(), Some(ENGINE_B));
    assert!(two.b.volume_names().contains(&backing));
    assert!(!two.a.volume_names().contains(&backing));

    two.store
        .snapshots()
        .create(&[new_snapshot(
            snapshot_id,
            "us-east-1",
            fixtures::snapshot_spec(volume_id, 8),
            now(),
        )])
        .unwrap();
    let _ = run(&two, ObjectRef::Snapshot(snapshot_id.into())).await;
    let _ = run(&two, ObjectRef::Snapshot(snapshot_id.into())).await;
    let snapshot = two.store.snapshots().get(snapshot_id).unwrap().unwrap();
    assert!(snapshot.status.completed, "{:?}", snapshot.status);
    assert_eq!(snapshot.status.engine.as_deref(), Some(ENGINE_B));

    // Its volume's record gone, the snapshot is still looked for on B, and is fine.
    two.store.volumes().delete(volume_id).unwrap();
    let _ = run(&two, ObjectRef::Snapshot(snapshot_id.into())).await;
    let snapshot = two.store.snapshots().get(snapshot_id).unwrap().unwrap();
    assert_eq!(snapshot.status.error, None);
    assert!(two.b.volume_names().iter().any(|n| n.contains(snapshot_id)));
    assert!(two.a.volume_names().is_empty());
    // ContainerRuntime is what the fakes are driven through.
    assert!(two.b.list_volumes().await.unwrap().len() >= 2);
}
