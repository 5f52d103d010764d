//! The volume and snapshot reconcilers against the fake runtime: a volume's Docker volume made (or adopted after a crash), restored from a snapshot only once it completed and never `ready` with half a copy, `error` when removed behind ec2d's back, deleted only once unmounted, snapshots of volumes, of root volumes and of snapshots, and the sweep of orphaned Docker volumes that never touches another store's or an unlabelled one.

use std::collections::BTreeMap;
use std::sync::Arc;

use ec2d::controller::Action;
use ec2d::model::snapshot::new_snapshot;
use ec2d::model::volume::new_volume;
use ec2d::model::{
    fixtures, now, DesiredState, InstanceId, MountedVolume, Snapshot, SnapshotSource, SnapshotSpec,
    Volume, VolumeAttachmentSpec, VolumeModificationSpec, VolumeSpec,
};
use ec2d::reconcile::{self, Context, ObjectRef, Settings};
use ec2d::runtime::fake::Op;
use ec2d::runtime::{labels, ContainerRuntime, DockerVolumeSpec, FakeRuntime, RuntimeError};
use ec2d::store::{Store, StoreError};
use futures::StreamExt;

fn context() -> (Arc<Context<FakeRuntime>>, FakeRuntime, Store) {
    let fake = FakeRuntime::new();
    let store = Store::temporary().unwrap();
    let ctx = Arc::new(Context::new(
        store.clone(),
        fake.clone(),
        Settings::default(),
    ));
    (ctx, fake, store)
}

fn volume_spec() -> VolumeSpec {
    fixtures::volume_spec("us-east-1a", "gp3", 8)
}

fn put_volume(store: &Store, id: &str, spec: VolumeSpec) {
    store
        .create_volume(&new_volume(id, "us-east-1", spec, now()))
        .unwrap();
}

fn snapshot_spec(volume_id: &str) -> SnapshotSpec {
    fixtures::snapshot_spec(volume_id, 8)
}

fn put_snapshot(store: &Store, id: &str, spec: SnapshotSpec) {
    store
        .snapshots()
        .create(&[new_snapshot(id, "us-east-1", spec, now())])
        .unwrap();
}

fn volume(store: &Store, id: &str) -> Option<Volume> {
    store.volumes().get(id).unwrap()
}

fn snapshot(store: &Store, id: &str) -> Option<Snapshot> {
    store.snapshots().get(id).unwrap()
}

async fn run(ctx: &Arc<Context<FakeRuntime>>, key: ObjectRef) -> Option<Action> {
    reconcile::reconcile(key, ctx.clone()).await.ok()
}

fn vol(id: &str) -> ObjectRef {
    ObjectRef::Volume(id.into())
}

fn snap(id: &str) -> ObjectRef {
    ObjectRef::Snapshot(id.into())
}

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
        .collect()
}

/// A ready volume `id` holding `content`.
async fn ready_volume(
    ctx: &Arc<Context<FakeRuntime>>,
    fake: &FakeRuntime,
    store: &Store,
    id: &str,
    content: &[(&str, &str)],
) -> String {
    put_volume(store, id, volume_spec());
    run(ctx, vol(id)).await;
    let name = volume(store, id).unwrap().status.backing.expect("made");
    for (path, data) in content {
        assert!(fake.write_volume_file(&name, path, data.as_bytes()));
    }
    name
}

fn delete_volume(store: &Store, id: &str) {
    store
        .volumes()
        .update_spec::<StoreError>(id, |o| {
            o.metadata.deletion_timestamp = Some(now());
            Ok(true)
        })
        .unwrap();
}

const V1: &str = "vol-0000000000000000a";
const V2: &str = "vol-0000000000000000b";
const S1: &str = "snap-0000000000000000a";
const S2: &str = "snap-0000000000000000b";

#[tokio::test]
async fn a_volume_gets_a_labelled_docker_volume_once_and_is_ready() {
    let (ctx, fake, store) = context();
    put_volume(&store, V1, volume_spec());
    let action = run(&ctx, vol(V1)).await.expect("reconciled");
    assert!(action.is_await_change());
    let v = volume(&store, V1).unwrap();
    let name = labels::volume_name(store.id(), V1);
    assert_eq!(v.status.backing.as_deref(), Some(name.as_str()));
    assert_eq!(
        v.status.mountpoint,
        Some(format!("/var/lib/docker/volumes/{name}/_data"))
    );
    assert!(v.status.ready);
    assert_eq!(v.status.error, None);
    assert_eq!(v.status.observed_generation, 1);
    let observed = fake.list_volumes().await.unwrap();
    assert_eq!(observed.len(), 1);
    assert_eq!(observed[0].labels[labels::VOLUME_ID], V1);
    assert_eq!(observed[0].labels[labels::STORE_ID], store.id());

    fake.clear_calls();
    run(&ctx, vol(V1)).await;
    assert!(!fake.ops().contains(&Op::CreateVolume), "made once");
    assert_eq!(volume(&store, V1).unwrap().status, v.status);
}

#[tokio::test]
async fn a_docker_volume_made_before_a_crash_is_adopted_with_its_data() {
    let (ctx, fake, store) = context();
    put_volume(&store, V1, volume_spec());
    // A pass made the Docker volume, then ec2d died before writing the status.
    let made = fake
        .create_volume(&DockerVolumeSpec {
            name: labels::volume_name(store.id(), V1),
            owner: ec2d::runtime::VolumeOwner::Volume(V1.into()),
            store_id: store.id().into(),
        })
        .await
        .unwrap();
    fake.write_volume_file(&made.name, "kept", b"yes");
    fake.clear_calls();
    run(&ctx, vol(V1)).await;
    let v = volume(&store, V1).unwrap();
    assert!(v.status.ready);
    assert_eq!(v.status.backing.as_deref(), Some(made.name.as_str()));
    assert!(!fake.ops().contains(&Op::CreateVolume));
    assert!(!fake.ops().contains(&Op::RemoveVolume));
    assert_eq!(
        fake.volume_files(&made.name).unwrap(),
        files(&[("kept", "yes")])
    );
}

#[tokio::test]
async fn a_root_volume_has_no_docker_volume_and_is_ready() {
    let (ctx, fake, store) = context();
    let mut spec = volume_spec();
    spec.root_of = Some("i-0123456789abcdef0".into());
    put_volume(&store, V1, spec);
    run(&ctx, vol(V1)).await;
    let v = volume(&store, V1).unwrap();
    assert!(v.status.ready);
    assert_eq!(v.status.backing, None);
    assert_eq!(v.status.observed_generation, 1);
    assert!(fake.volume_names().is_empty());
}

#[tokio::test]
async fn a_volume_from_a_snapshot_waits_for_it_then_holds_its_data() {
    let (ctx, fake, store) = context();
    ready_volume(&ctx, &fake, &store, V1, &[("a", "one"), ("dir/b", "two")]).await;
    put_snapshot(&store, S1, snapshot_spec(V1));
    let mut spec = volume_spec();
    spec.snapshot_id = Some(S1.into());
    put_volume(&store, V2, spec);

    // The snapshot's copy has not run: the volume waits, made of nothing yet.
    let action = run(&ctx, vol(V2)).await.expect("reconciled");
    assert_eq!(
        action.requeue_after(),
        Some(Settings::default().converging_requeue)
    );
    let v2 = volume(&store, V2).unwrap();
    assert!(!v2.status.ready);
    assert_eq!(v2.status.backing, None);
    assert_eq!(v2.status.error, None);

    run(&ctx, snap(S1)).await;
    let s1 = snapshot(&store, S1).unwrap();
    assert!(s1.status.completed);
    assert!(s1.status.completion_time.is_some());
    assert_eq!(s1.status.size_bytes, Some(6));
    let snap_volume = s1.status.backing.expect("the snapshot's Docker volume");
    assert_eq!(snap_volume, labels::volume_name(store.id(), S1));
    let expected = files(&[("a", "one"), ("dir/b", "two")]);
    assert_eq!(fake.volume_files(&snap_volume).unwrap(), expected);

    // Later writes to the volume are not in the snapshot.
    let v1_name = volume(&store, V1).unwrap().status.backing.unwrap();
    fake.write_volume_file(&v1_name, "later", b"x");

    run(&ctx, vol(V2)).await;
    let v2 = volume(&store, V2).unwrap();
    assert!(v2.status.ready);
    assert_eq!(v2.status.observed_generation, 1);
    assert_eq!(
        fake.volume_files(v2.status.backing.as_deref().unwrap())
            .unwrap(),
        expected
    );
}

#[tokio::test]
async fn a_restore_cut_short_never_reads_ready_and_is_redone_from_empty() {
    let (ctx, fake, store) = context();
    ready_volume(&ctx, &fake, &store, V1, &[("a", "one"), ("b", "two")]).await;
    put_snapshot(&store, S1, snapshot_spec(V1));
    run(&ctx, snap(S1)).await;
    let mut spec = volume_spec();
    spec.snapshot_id = Some(S1.into());
    put_volume(&store, V2, spec);

    fake.fail_next(
        Op::CopyVolume,
        RuntimeError::Unavailable("engine went away".into()),
        1,
    );
    assert!(reconcile::reconcile(vol(V2), ctx.clone()).await.is_err());
    let v2 = volume(&store, V2).unwrap();
    assert!(!v2.status.ready, "half a copy is not ready");
    assert_eq!(v2.status.backing, None);
    let name = labels::volume_name(store.id(), V2);
    assert_eq!(fake.volume_files(&name).unwrap(), files(&[("a", "one")]));
    // Whatever else the cut-short pass left behind goes with it.
    fake.write_volume_file(&name, "junk", b"half");

    run(&ctx, vol(V2)).await;
    let v2 = volume(&store, V2).unwrap();
    assert!(v2.status.ready);
    assert_eq!(
        fake.volume_files(&name).unwrap(),
        files(&[("a", "one"), ("b", "two")])
    );
}

#[tokio::test]
async fn a_docker_volume_removed_behind_ec2ds_back_is_an_error_and_not_made_again_empty() {
    let (ctx, fake, store) = context();
    let name = ready_volume(&ctx, &fake, &store, V1, &[("a", "one")]).await;
    assert!(fake.remove_volume_behind_back(&name));
    run(&ctx, vol(V1)).await;
    let v = volume(&store, V1).unwrap();
    assert!(!v.status.ready);
    assert!(v
        .status
        .error
        .as_deref()
        .unwrap()
        .contains("removed outside ec2d"));
    assert_eq!(v.status.backing.as_deref(), Some(name.as_str()));
    assert!(fake.volume_names().is_empty(), "not made again");
    run(&ctx, vol(V1)).await;
    assert!(fake.volume_names().is_empty());
    assert_eq!(volume(&store, V1).unwrap().status, v.status);
}

#[tokio::test]
async fn a_volume_from_a_deleted_snapshot_is_in_error() {
    let (ctx, _fake, store) = context();
    let mut spec = volume_spec();
    spec.snapshot_id = Some(S1.into());
    put_volume(&store, V2, spec);
    run(&ctx, vol(V2)).await;
    let v = volume(&store, V2).unwrap();
    assert!(!v.status.ready);
    assert!(v.status.error.as_deref().unwrap().contains(S1));
}

#[tokio::test]
async fn modify_volume_completes_once_recorded() {
    let (ctx, fake, store) = context();
    ready_volume(&ctx, &fake, &store, V1, &[]).await;
    let started = now();
    store
        .volumes()
        .update_spec::<StoreError>(V1, |o| {
            o.spec.size_gib = 20;
            o.spec.modification = Some(VolumeModificationSpec {
                start_time: started,
                original_size_gib: 8,
                original_volume_type: "gp3".into(),
                original_iops: None,
                original_throughput: None,
                original_multi_attach_enabled: false,
            });
            Ok(true)
        })
        .unwrap();
    run(&ctx, vol(V1)).await;
    let v = volume(&store, V1).unwrap();
    assert!(v.status.modification_end_time.unwrap() >= started);
    assert_eq!(v.status.observed_generation, 2);
    assert!(v.status.ready);
}

#[tokio::test]
async fn deletion_waits_for_the_unmount_then_removes_the_docker_volume_and_collects() {
    let (ctx, fake, store) = context();
    let name = ready_volume(&ctx, &fake, &store, V1, &[("a", "one")]).await;
    // An instance's container still has it mounted (as the instance reconciler observed).
    let instance = fixtures::instance();
    let instance_id = instance.metadata.name.clone();
    store.instances().create(&[instance]).unwrap();
    let mut status = store.instances().get(&instance_id).unwrap().unwrap().status;
    status.volumes = vec![MountedVolume {
        volume_id: V1.into(),
        device: "/dev/sdf".into(),
        mount_point: "/mnt/sdf".into(),
    }];
    store
        .instances()
        .write_status(&instance_id, &status)
        .unwrap();
    delete_volume(&store, V1);

    let action = run(&ctx, vol(V1)).await.expect("reconciled");
    assert!(action.requeue_after().is_some(), "waits for the unmount");
    assert!(volume(&store, V1).is_some());
    assert_eq!(fake.volume_names(), vec![name.clone()]);

    status.volumes.clear();
    store
        .instances()
        .write_status(&instance_id, &status)
        .unwrap();
    // The engine refuses once (a container still uses it): tried again soon.
    fake.fail_next(
        Op::RemoveVolume,
        RuntimeError::Conflict("volume is in use".into()),
        1,
    );
    let action = run(&ctx, vol(V1)).await.expect("reconciled");
    assert!(action.requeue_after().is_some());
    assert!(volume(&store, V1).is_some());

    run(&ctx, vol(V1)).await;
    assert!(fake.volume_names().is_empty());
    assert!(volume(&store, V1).is_none(), "record collected");
    // A late pass (the removal's own event) finds nothing to do.
    assert!(run(&ctx, vol(V1)).await.unwrap().is_await_change());
}

#[tokio::test]
async fn delete_on_termination_volumes_go_with_their_instance_and_the_termination_wakes_them() {
    let (ctx, fake, store) = context();
    let instance = fixtures::instance();
    let instance_id = instance.metadata.name.clone();
    store.instances().create(&[instance]).unwrap();
    let attached = |device: &str, delete_on_termination| {
        let mut spec = volume_spec();
        spec.attachments = vec![VolumeAttachmentSpec {
            instance_id: instance_id.clone(),
            device: device.into(),
            delete_on_termination,
            attach_time: now(),
        }];
        spec
    };
    put_volume(&store, V1, attached("/dev/sdf", true));
    put_volume(&store, V2, attached("/dev/sdg", false));
    run(&ctx, vol(V1)).await;
    run(&ctx, vol(V2)).await;
    assert_eq!(fake.volume_names().len(), 2);

    let mut changes = reconcile::spec_changes(&store.status_view());
    store
        .instances()
        .update_spec::<StoreError>(&instance_id, |o| {
            o.spec.desired = DesiredState::Terminated;
            Ok(true)
        })
        .unwrap();
    let mut woken = Vec::new();
    while woken.len() < 3 {
        let key = tokio::time::timeout(std::time::Duration::from_secs(5), changes.next())
            .await
            .expect("keys")
            .expect("stream");
        woken.push(key);
    }
    let iid = InstanceId::parse(&instance_id).unwrap();
    assert!(woken.contains(&ObjectRef::Instance(iid)), "{woken:?}");
    assert!(woken.contains(&vol(V1)), "{woken:?}");
    assert!(woken.contains(&vol(V2)), "{woken:?}");

    run(&ctx, vol(V1)).await;
    run(&ctx, vol(V2)).await;
    assert!(volume(&store, V1).is_none());
    let kept = volume(&store, V2).unwrap();
    assert!(kept.status.ready);
    assert_eq!(
        fake.volume_names(),
        vec![labels::volume_name(store.id(), V2)]
    );
}

#[tokio::test]
async fn a_snapshot_of_a_root_volume_completes_holding_no_data() {
    let (ctx, fake, store) = context();
    let mut spec = volume_spec();
    spec.root_of = Some("i-0123456789abcdef0".into());
    put_volume(&store, V1, spec);
    put_snapshot(&store, S1, snapshot_spec(V1));
    run(&ctx, snap(S1)).await;
    let s = snapshot(&store, S1).unwrap();
    assert!(s.status.completed);
    assert_eq!(s.status.backing, None);
    assert_eq!(s.status.size_bytes, Some(0));
    assert!(fake.volume_names().is_empty());

    // A volume made from it starts empty.
    let mut spec = volume_spec();
    spec.snapshot_id = Some(S1.into());
    put_volume(&store, V2, spec);
    run(&ctx, vol(V2)).await;
    let v2 = volume(&store, V2).unwrap();
    assert!(v2.status.ready);
    assert_eq!(
        fake.volume_files(v2.status.backing.as_deref().unwrap()),
        Some(BTreeMap::new())
    );
}

#[tokio::test]
async fn a_snapshot_waits_for_its_volume_and_errs_when_it_is_gone() {
    let (ctx, fake, store) = context();
    put_volume(&store, V1, volume_spec());
    put_snapshot(&store, S1, snapshot_spec(V1));
    // The volume is not made yet: the snapshot waits.
    let action = run(&ctx, snap(S1)).await.expect("reconciled");
    assert!(action.requeue_after().is_some());
    assert!(!snapshot(&store, S1).unwrap().status.completed);

    put_snapshot(&store, S2, snapshot_spec("vol-0ffffffffffffffff"));
    run(&ctx, snap(S2)).await;
    let s2 = snapshot(&store, S2).unwrap();
    assert!(!s2.status.completed);
    assert!(s2.status.error.as_deref().unwrap().contains("deleted"));
    assert!(fake.volume_names().is_empty());
}

#[tokio::test]
async fn copy_snapshot_copies_the_source_snapshots_data() {
    let (ctx, fake, store) = context();
    ready_volume(&ctx, &fake, &store, V1, &[("a", "one")]).await;
    put_snapshot(&store, S1, snapshot_spec(V1));
    let mut copy = snapshot_spec(V1);
    copy.source = Some(SnapshotSource {
        region: "us-east-1".into(),
        snapshot_id: S1.into(),
    });
    put_snapshot(&store, S2, copy);
    // The source has not completed: the copy waits.
    assert!(run(&ctx, snap(S2)).await.unwrap().requeue_after().is_some());
    run(&ctx, snap(S1)).await;
    // Changing the volume now does not reach the copy: it copies the snapshot.
    let v1_name = volume(&store, V1).unwrap().status.backing.unwrap();
    fake.write_volume_file(&v1_name, "later", b"x");
    run(&ctx, snap(S2)).await;
    let s2 = snapshot(&store, S2).unwrap();
    assert!(s2.status.completed);
    assert_eq!(
        fake.volume_files(s2.status.backing.as_deref().unwrap())
            .unwrap(),
        files(&[("a", "one")])
    );
}

#[tokio::test]
async fn a_snapshot_copy_cut_short_is_redone_into_a_fresh_volume() {
    let (ctx, fake, store) = context();
    ready_volume(&ctx, &fake, &store, V1, &[("a", "one"), ("b", "two")]).await;
    put_snapshot(&store, S1, snapshot_spec(V1));
    fake.fail_next(Op::CopyVolume, RuntimeError::Failed("cut".into()), 1);
    assert!(reconcile::reconcile(snap(S1), ctx.clone()).await.is_err());
    let s = snapshot(&store, S1).unwrap();
    assert!(!s.status.completed);
    assert_eq!(
        s.status.error, None,
        "a failed copy is retried, not an error"
    );
    let name = labels::volume_name(store.id(), S1);
    fake.write_volume_file(&name, "junk", b"half");
    run(&ctx, snap(S1)).await;
    assert!(snapshot(&store, S1).unwrap().status.completed);
    assert_eq!(
        fake.volume_files(&name).unwrap(),
        files(&[("a", "one"), ("b", "two")])
    );
}

#[tokio::test]
async fn a_snapshots_docker_volume_removed_behind_the_back_is_an_error_and_deletion_collects() {
    let (ctx, fake, store) = context();
    ready_volume(&ctx, &fake, &store, V1, &[("a", "one")]).await;
    put_snapshot(&store, S1, snapshot_spec(V1));
    put_snapshot(&store, S2, snapshot_spec(V1));
    run(&ctx, snap(S1)).await;
    run(&ctx, snap(S2)).await;
    let s1_name = snapshot(&store, S1).unwrap().status.backing.unwrap();
    assert!(fake.remove_volume_behind_back(&s1_name));
    run(&ctx, snap(S1)).await;
    let s1 = snapshot(&store, S1).unwrap();
    assert!(s1
        .status
        .error
        .as_deref()
        .unwrap()
        .contains("removed outside ec2d"));
    assert!(!fake.volume_names().contains(&s1_name), "not made again");

    let s2_name = snapshot(&store, S2).unwrap().status.backing.unwrap();
    store
        .snapshots()
        .update_spec::<StoreError>(S2, |o| {
            o.metadata.deletion_timestamp = Some(now());
            Ok(true)
        })
        .unwrap();
    run(&ctx, snap(S2)).await;
    assert!(snapshot(&store, S2).is_none());
    assert!(!fake.volume_names().contains(&s2_name));
}

#[tokio::test]
async fn the_sweep_removes_only_this_stores_orphans() {
    let (ctx, fake, store) = context();
    // A volume whose record is gone (collected, or lost): an orphan.
    let orphan = labels::volume_name(store.id(), V2);
    fake.add_volume(
        &orphan,
        BTreeMap::from([
            (labels::VOLUME_ID.to_string(), V2.to_string()),
            (labels::STORE_ID.to_string(), store.id().to_string()),
        ]),
    );
    let orphan_snap = labels::volume_name(store.id(), S2);
    fake.add_volume(
        &orphan_snap,
        BTreeMap::from([
            (labels::SNAPSHOT_ID.to_string(), S2.to_string()),
            (labels::STORE_ID.to_string(), store.id().to_string()),
        ]),
    );
    // Made before a crash, its record still there: adopted by its key, not an orphan.
    put_volume(&store, V1, volume_spec());
    let adopted = labels::volume_name(store.id(), V1);
    fake.add_volume(
        &adopted,
        BTreeMap::from([
            (labels::VOLUME_ID.to_string(), V1.to_string()),
            (labels::STORE_ID.to_string(), store.id().to_string()),
        ]),
    );
    // Another store's, and a volume that is not ec2d's at all.
    let foreign_store = labels::volume_name("ffffffffffffffff", V2);
    fake.add_volume(
        &foreign_store,
        BTreeMap::from([
            (labels::VOLUME_ID.to_string(), V2.to_string()),
            (labels::STORE_ID.to_string(), "ffffffffffffffff".to_string()),
        ]),
    );
    let unlabelled = format!("{}{V2}-mine", labels::volume_prefix(store.id()));
    fake.add_volume(&unlabelled, BTreeMap::new());

    let _requeue = run(&ctx, ObjectRef::Sweep).await.expect("swept");
    let mut left = fake.volume_names();
    left.sort();
    let mut expected = vec![adopted.clone(), foreign_store, unlabelled];
    expected.sort();
    assert_eq!(left, expected);
    assert!(fake
        .calls()
        .iter()
        .any(|c| c.op == Op::RemoveVolumeHelpers && c.arg == labels::volume_prefix(store.id())));

    run(&ctx, vol(V1)).await;
    assert_eq!(
        volume(&store, V1).unwrap().status.backing.as_deref(),
        Some(adopted.as_str())
    );
}

#[tokio::test]
async fn a_copy_that_keeps_failing_puts_the_snapshot_and_the_restored_volume_in_error() {
    use ec2d::model::snapshot::COPY_ATTEMPTS;
    let (ctx, fake, store) = context();
    ready_volume(&ctx, &fake, &store, V1, &[("a", "one")]).await;
    put_snapshot(&store, S1, snapshot_spec(V1));
    // An engine out of reach is an outage: it never counts.
    fake.fail_next(Op::CopyVolume, RuntimeError::Unavailable("down".into()), 5);
    for _ in 0..5 {
        assert!(reconcile::reconcile(snap(S1), ctx.clone()).await.is_err());
    }
    let s = snapshot(&store, S1).unwrap();
    assert_eq!((s.status.copy_failures, s.status.error), (0, None));
    // A copy failing: retried, then given up at COPY_ATTEMPTS with the last error shown.
    fake.fail_next(
        Op::CopyVolume,
        RuntimeError::Failed("tar: short read".into()),
        COPY_ATTEMPTS as usize + 1,
    );
    for _ in 1..COPY_ATTEMPTS {
        assert!(reconcile::reconcile(snap(S1), ctx.clone()).await.is_err());
        assert_eq!(snapshot(&store, S1).unwrap().status.error, None);
    }
    let action = reconcile::reconcile(snap(S1), ctx.clone()).await.unwrap();
    assert_eq!(action, Action::await_change());
    let s = snapshot(&store, S1).unwrap();
    assert!(!s.status.completed);
    let error = s.status.error.expect("in error");
    assert!(error.contains("tar: short read"), "{error}");
    assert_eq!(s.status.copy_failures, COPY_ATTEMPTS);
    // Given up: no further copy.
    run(&ctx, snap(S1)).await;
    assert!(snapshot(&store, S1).unwrap().status.error.is_some());

    // A restore whose copy keeps failing: the volume is in error, never ready.
    let (ctx, fake, store) = context();
    ready_volume(&ctx, &fake, &store, V1, &[("a", "one")]).await;
    put_snapshot(&store, S1, snapshot_spec(V1));
    run(&ctx, snap(S1)).await;
    assert!(snapshot(&store, S1).unwrap().status.completed);
    let mut spec = volume_spec();
    spec.snapshot_id = Some(S1.into());
    put_volume(&store, V2, spec);
    fake.fail_next(
        Op::CopyVolume,
        RuntimeError::Failed("helper exited 2".into()),
        COPY_ATTEMPTS as usize,
    );
    for _ in 1..COPY_ATTEMPTS {
        assert!(reconcile::reconcile(vol(V2), ctx.clone()).await.is_err());
    }
    let _ = reconcile::reconcile(vol(V2), ctx.clone()).await.unwrap();
    let v2 = volume(&store, V2).unwrap();
    assert!(!v2.status.ready);
    assert!(
        v2.status
            .error
            .as_deref()
            .is_some_and(|e| e.contains("helper exited 2")),
        "{:?}",
        v2.status.error
    );
    // And it stays so: the next pass copies nothing (the fake would succeed now).
    run(&ctx, vol(V2)).await;
    let v2 = volume(&store, V2).unwrap();
    assert!(!v2.status.ready && v2.status.error.is_some());
}
