//! Volume attachments reconciled on the fake engine and an in-memory mount table: hot mounts through the propagation point, drift, detach, termination, and the fallback at creation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ec2d::hostmnt::{FakeMounts, MountTable, VolumeMounts};
use ec2d::model::volume::MountedVolume;
use ec2d::model::{fixtures, DesiredState, Instance, InstanceId};
use ec2d::reconcile::{self, Context, ObjectRef, Settings};
use ec2d::runtime::{ContainerRuntime, FakeRuntime, VolumeMount};
use ec2d::store::{Store, StoreError};
use futures::StreamExt;

const AMI_REF: &str = "localstack-ec2/test-ami:ami-000001";
const ROOT: &str = "/var/lib/ec2d/volume-mounts";
const VOL: &str = "vol-0123456789abcdef0";

fn context(mounts: VolumeMounts) -> (Arc<Context<FakeRuntime>>, FakeRuntime, Store) {
    let fake = FakeRuntime::new();
    fake.add_image(AMI_REF);
    let store = Store::temporary().unwrap();
    let ctx = Arc::new(
        Context::new(store.clone(), fake.clone(), Settings::default()).with_volume_mounts(mounts),
    );
    (ctx, fake, store)
}

fn hot() -> (Arc<FakeMounts>, VolumeMounts) {
    let table = Arc::new(FakeMounts::new());
    let mounts = VolumeMounts::setup(table.clone(), Path::new(ROOT));
    assert!(mounts.is_active());
    (table, mounts)
}

fn launch(store: &Store) -> InstanceId {
    let inst = fixtures::instance();
    store
        .instances()
        .create(std::slice::from_ref(&inst))
        .unwrap();
    InstanceId::parse(&inst.metadata.name).unwrap()
}

/// A volume attached to `instance` as `/dev/sdf`, as AttachVolume would record it.
fn attach(store: &Store, instance: &InstanceId) {
    let now = time::OffsetDateTime::now_utc();
    let mut spec = fixtures::volume_spec("us-east-1a", "gp3", 1);
    fixtures::attach(&mut spec, instance.as_str(), "/dev/sdf", false, now);
    store
        .create_volume(&fixtures::volume_of(VOL, spec, now))
        .unwrap();
}

/// The volume engine's part: the Docker volume is made and ready.
fn make_ready(store: &Store) {
    let mut status = store.volumes().get(VOL).unwrap().unwrap().status;
    status.backing = Some(format!("ec2d-{VOL}"));
    status.mountpoint = Some(format!("/var/lib/docker/volumes/ec2d-{VOL}/_data"));
    status.ready = true;
    store.volumes().write_status(VOL, &status).unwrap();
}

fn detach(store: &Store) {
    store
        .volumes()
        .update_spec::<StoreError>(VOL, |v| {
            v.spec.attachments.clear();
            Ok(true)
        })
        .unwrap();
}

fn get(ctx: &Context<FakeRuntime>, id: &InstanceId) -> Instance {
    ctx.store.instances().get(id.as_str()).unwrap().unwrap()
}

async fn run(ctx: &Arc<Context<FakeRuntime>>, id: &InstanceId) -> ec2d::controller::Action {
    reconcile::reconcile(ObjectRef::Instance(id.clone()), ctx.clone())
        .await
        .unwrap()
}

fn mounted() -> Vec<MountedVolume> {
    vec![MountedVolume {
        volume_id: VOL.into(),
        device: "/dev/sdf".into(),
        mount_point: "/mnt/sdf".into(),
    }]
}

#[tokio::test]
async fn a_volume_attached_to_a_running_instance_is_mounted_without_re_creating_it() {
    let (table, mounts) = hot();
    let (ctx, fake, store) = context(mounts);
    let id = launch(&store);
    let _ = run(&ctx, &id).await;
    let container = fake.inspect_instance(&id).await.unwrap().unwrap();
    let bind = format!("{ROOT}/{id}:/mnt:rslave");
    assert!(container.binds.contains(&bind), "{:?}", container.binds);
    assert!(
        table.has_dir(&Path::new(ROOT).join(id.as_str())),
        "made before the create"
    );

    // Attached, not ready yet: nothing mounted, looked at again shortly.
    attach(&store, &id);
    let action = run(&ctx, &id).await;
    assert!(get(&ctx, &id).status.volumes.is_empty());
    assert!(
        action
            .requeue_after()
            .is_some_and(|after| after <= Duration::from_secs(2)),
        "{action:?}"
    );

    make_ready(&store);
    let _ = run(&ctx, &id).await;
    let target: PathBuf = Path::new(ROOT).join(id.as_str()).join("sdf");
    assert!(table.mount_points().contains(&target));
    assert_eq!(get(&ctx, &id).status.volumes, mounted());
    let same = fake.inspect_instance(&id).await.unwrap().unwrap();
    assert_eq!(same.id, container.id, "the same container");

    // Unmounted behind ec2d's back: mounted again on the next pass.
    table.unmount(&target).unwrap();
    let _ = run(&ctx, &id).await;
    assert!(table.mount_points().contains(&target));
    assert_eq!(get(&ctx, &id).status.volumes, mounted());

    // A stopped instance is a frozen container: its volume stays.
    store
        .instances()
        .update_spec::<StoreError>(id.as_str(), |o| {
            o.spec.desired = DesiredState::Stopped;
            Ok(true)
        })
        .unwrap();
    let _ = run(&ctx, &id).await;
    let _ = run(&ctx, &id).await;
    assert_eq!(get(&ctx, &id).status.volumes, mounted());

    detach(&store);
    let _ = run(&ctx, &id).await;
    assert!(!table.mount_points().contains(&target));
    assert!(get(&ctx, &id).status.volumes.is_empty());
}

#[tokio::test]
async fn termination_leaves_nothing_mounted_on_the_host() {
    let (table, mounts) = hot();
    let (ctx, _fake, store) = context(mounts);
    let id = launch(&store);
    attach(&store, &id);
    make_ready(&store);
    let _ = run(&ctx, &id).await;
    assert_eq!(get(&ctx, &id).status.volumes, mounted());

    store
        .instances()
        .update_spec::<StoreError>(id.as_str(), |o| {
            o.spec.desired = DesiredState::Terminated;
            Ok(true)
        })
        .unwrap();
    let _ = run(&ctx, &id).await;
    assert_eq!(table.mount_points(), vec![PathBuf::from(ROOT)]);
    assert!(!table.has_dir(&Path::new(ROOT).join(id.as_str())));
    assert!(get(&ctx, &id).status.volumes.is_empty());
}

#[tokio::test]
async fn without_the_propagation_point_ready_volumes_are_docker_mounts_at_creation() {
    let (ctx, fake, store) = context(VolumeMounts::off("not root"));
    let id = launch(&store);
    attach(&store, &id);
    make_ready(&store);
    let _ = run(&ctx, &id).await;
    let container = fake.inspect_instance(&id).await.unwrap().unwrap();
    assert_eq!(
        container.volume_mounts,
        vec![VolumeMount {
            name: format!("ec2d-{VOL}"),
            target: "/mnt/sdf".into(),
        }]
    );
    assert!(!container.binds.iter().any(|b| b.ends_with(":/mnt:rslave")));
    assert_eq!(get(&ctx, &id).status.volumes, mounted());
}

#[tokio::test]
async fn without_the_propagation_point_a_volume_attached_later_waits_for_a_new_container() {
    let (ctx, _fake, store) = context(VolumeMounts::off("not root"));
    let id = launch(&store);
    let _ = run(&ctx, &id).await;
    attach(&store, &id);
    make_ready(&store);
    let _ = run(&ctx, &id).await;
    assert!(get(&ctx, &id).status.volumes.is_empty());
}

#[tokio::test]
async fn a_volume_change_wakes_the_instances_it_names_and_those_it_is_mounted_in() {
    let (table, mounts) = hot();
    let (ctx, _fake, store) = context(mounts);
    let id = launch(&store);
    let _ = run(&ctx, &id).await;
    let mut changes = reconcile::spec_changes(&store.status_view());
    attach(&store, &id);
    assert_eq!(
        next_two(&mut changes).await,
        [
            ObjectRef::Volume(VOL.into()),
            ObjectRef::Instance(id.clone())
        ]
    );

    make_ready(&store);
    let _ = run(&ctx, &id).await;
    assert_eq!(table.mount_points().len(), 2);
    // Detached: the attachment is gone from the spec, the status still lists the mount.
    detach(&store);
    assert_eq!(
        next_two(&mut changes).await,
        [
            ObjectRef::Volume(VOL.into()),
            ObjectRef::Instance(id.clone())
        ]
    );
}

/// The keys one volume change wakes: the volume's own, then the instance's.
async fn next_two(
    changes: &mut (impl futures::Stream<Item = ObjectRef> + Unpin),
) -> [ObjectRef; 2] {
    let mut keys = Vec::new();
    for _ in 0..2 {
        let key = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("a key within 5 s")
            .expect("the stream goes on");
        keys.push(key);
    }
    keys.try_into().expect("two keys")
}

/// A ready volume attached to `instance` as `device` with an `ec2d:mount-point` tag.
fn attach_ready_at(store: &Store, id: &str, instance: &InstanceId, device: &str, at: &str) {
    let now = time::OffsetDateTime::now_utc();
    let mut spec = fixtures::volume_spec("us-east-1a", "gp3", 1);
    spec.tags.insert(
        ec2d::model::volume::MOUNT_POINT_TAG.to_string(),
        at.to_string(),
    );
    fixtures::attach(&mut spec, instance.as_str(), device, false, now);
    store
        .create_volume(&fixtures::volume_of(id, spec, now))
        .unwrap();
    let mut status = store.volumes().get(id).unwrap().unwrap().status;
    status.backing = Some(format!("ec2d-{id}"));
    status.mountpoint = Some(format!("/var/lib/docker/volumes/ec2d-{id}/_data"));
    status.ready = true;
    store.volumes().write_status(id, &status).unwrap();
}

#[tokio::test]
async fn a_second_volume_with_a_mount_point_taken_says_why_it_stays_attaching() {
    let (table, mounts) = hot();
    let (ctx, _fake, store) = context(mounts);
    let id = launch(&store);
    let _ = run(&ctx, &id).await;
    const OTHER: &str = "vol-0fedcba9876543210";
    attach_ready_at(&store, VOL, &id, "/dev/sdf", "/mnt/data");
    // The same place, spelled differently: the tag is normalised.
    attach_ready_at(&store, OTHER, &id, "/dev/sdg", "/mnt//data/");
    let action = run(&ctx, &id).await;
    let status = get(&ctx, &id).status;
    assert_eq!(status.volumes.len(), 1, "{:?}", status.volumes);
    let (first, second) = (&status.volumes[0].volume_id, {
        if status.volumes[0].volume_id == VOL {
            OTHER
        } else {
            VOL
        }
    });
    let warning = status.volume_warning.expect("the reason is in the status");
    assert!(
        warning.contains(second) && warning.contains(first.as_str()),
        "{warning}"
    );
    assert!(warning.contains("/mnt/data is taken"), "{warning}");
    // Nothing will change it by itself: no retry every two seconds.
    assert!(
        action
            .requeue_after()
            .is_none_or(|after| after > Duration::from_secs(2)),
        "{action:?}"
    );
    assert_eq!(
        table
            .mount_points()
            .iter()
            .filter(|p| p.ends_with("data"))
            .count(),
        1
    );

    // The first one detached: the second is mounted and the warning goes.
    store
        .volumes()
        .update_spec::<StoreError>(first, |v| {
            v.spec.attachments.clear();
            Ok(true)
        })
        .unwrap();
    let _ = run(&ctx, &id).await;
    let _ = run(&ctx, &id).await;
    let status = get(&ctx, &id).status;
    assert_eq!(status.volumes.len(), 1, "{:?}", status.volumes);
    assert_eq!(status.volumes[0].volume_id, second);
    assert_eq!(status.volume_warning, None);
}
