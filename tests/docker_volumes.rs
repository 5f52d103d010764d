//! `DockerRuntime`'s volume methods against the real local engine: labelled create/list/remove, a foreign volume left alone, the copy of real files (one of 100 MiB, timed) through the engine's archive API with its helper containers gone afterwards, leftover helpers collected per store, and the `destroy` event of a volume removed behind ec2d's back. Skipped (loudly) without an engine unless `EC2D_REQUIRE_DOCKER=1`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{docker_available, TEST_IMAGE};
use ec2d::model::snapshot::new_snapshot;
use ec2d::model::volume::new_volume;
use ec2d::model::{fixtures, now, VolumeSpec};
use ec2d::reconcile::{self, Context, ObjectRef, Settings};
use ec2d::runtime::{
    labels, ContainerRuntime, DockerRuntime, DockerVolumeSpec, RuntimeError, RuntimeEvent,
    VolumeOwner,
};
use ec2d::store::{Store, StoreError};
use futures::StreamExt;

fn engine() -> Option<DockerRuntime> {
    docker_available()
        .then(|| DockerRuntime::connect(None).expect("connect never contacts the engine"))
}

fn docker_cli(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI runs")
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker_cli(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh store id per test, so names never clash with another run or another engineer's.
fn store_id() -> String {
    format!("{}", uuid::Uuid::new_v4().simple())
}

/// Removes a volume by name when dropped, whatever the test did.
struct VolumeGuard(String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        let _ = docker_cli(&["volume", "rm", "-f", &self.0]);
    }
}

/// Removes a container by name when dropped.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = docker_cli(&["rm", "-f", &self.0]);
    }
}

fn spec(store: &str, owner: VolumeOwner) -> DockerVolumeSpec {
    DockerVolumeSpec {
        name: labels::volume_name(store, owner.id()),
        owner,
        store_id: store.to_string(),
    }
}

/// Runs a shell command in a throwaway busybox container with `volume` at `/d`.
fn in_volume(volume: &str, script: &str) -> String {
    docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{volume}:/d"),
        TEST_IMAGE,
        "sh",
        "-c",
        script,
    ])
}

/// The helper containers whose target is `volume`.
fn helpers_of(volume: &str) -> String {
    docker_ok(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label={}={volume}", labels::VOLUME_HELPER),
    ])
}

#[tokio::test]
async fn labelled_volumes_are_made_listed_and_removed_and_a_foreign_one_is_left_alone() {
    let Some(rt) = engine() else { return };
    let store = store_id();
    let vol = spec(&store, VolumeOwner::Volume("vol-0123456789abcdef0".into()));
    let _g1 = VolumeGuard(vol.name.clone());
    let snap = spec(
        &store,
        VolumeOwner::Snapshot("snap-0123456789abcdef0".into()),
    );
    let _g2 = VolumeGuard(snap.name.clone());
    let foreign = format!("{}-foreign", labels::volume_prefix(&store));
    let _g3 = VolumeGuard(foreign.clone());
    docker_ok(&["volume", "create", "--label", "someone=else", &foreign]);

    let made = rt.create_volume(&vol).await.expect("create volume");
    assert_eq!(made.name, vol.name);
    assert_eq!(made.owner, vol.owner);
    assert_eq!(made.store_id.as_deref(), Some(store.as_str()));
    assert!(made.mountpoint.ends_with("/_data"), "{}", made.mountpoint);
    // Creating it again answers the same volume (adoption after a crash).
    assert_eq!(rt.create_volume(&vol).await.expect("again"), made);
    rt.create_volume(&snap)
        .await
        .expect("create snapshot volume");
    // The name of a volume is not another owner's.
    let clash = DockerVolumeSpec {
        owner: VolumeOwner::Volume("vol-0fffffffffffffff0".into()),
        ..vol.clone()
    };
    assert!(matches!(
        rt.create_volume(&clash).await,
        Err(RuntimeError::Failed(_))
    ));

    let listed = rt.list_volumes().await.expect("list");
    let ours: Vec<_> = listed
        .iter()
        .filter(|v| v.store_id.as_deref() == Some(store.as_str()))
        .collect();
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert!(ours.iter().any(|v| v.owner == snap.owner));
    assert!(listed.iter().all(|v| v.name != foreign));

    // A volume without ec2d's labels is never removed.
    assert!(matches!(
        rt.remove_volume(&foreign).await,
        Err(RuntimeError::Failed(_))
    ));
    docker_ok(&["volume", "inspect", &foreign]);

    // In use by a container: a conflict, and the volume stays.
    let user = format!("ec2d-voltest-{}", &store[..12]);
    let _c = ContainerGuard(user.clone());
    docker_ok(&[
        "create",
        "--name",
        &user,
        "-v",
        &format!("{}:/d", vol.name),
        TEST_IMAGE,
        "true",
    ]);
    assert!(matches!(
        rt.remove_volume(&vol.name).await,
        Err(RuntimeError::Conflict(_))
    ));
    docker_ok(&["rm", "-f", &user]);

    rt.remove_volume(&vol.name).await.expect("remove");
    assert!(matches!(
        rt.remove_volume(&vol.name).await,
        Err(RuntimeError::NotFound(_))
    ));
    rt.remove_volume(&snap.name)
        .await
        .expect("remove snapshot's");
    assert!(rt
        .list_volumes()
        .await
        .unwrap()
        .iter()
        .all(|v| v.store_id.as_deref() != Some(store.as_str())));
}

#[tokio::test]
async fn a_copy_through_the_engine_carries_every_file_and_leaves_no_helper() {
    let Some(rt) = engine() else { return };
    let store = store_id();
    let from = spec(&store, VolumeOwner::Volume("vol-0aaaaaaaaaaaaaaa0".into()));
    let to = spec(
        &store,
        VolumeOwner::Snapshot("snap-0aaaaaaaaaaaaaaa0".into()),
    );
    let _g1 = VolumeGuard(from.name.clone());
    let _g2 = VolumeGuard(to.name.clone());
    rt.create_volume(&from).await.expect("source");
    rt.create_volume(&to).await.expect("target");

    const BIG: u64 = 100 * 1024 * 1024;
    in_volume(
        &from.name,
        "set -e; mkdir -p /d/sub/deeper; printf 'hello\\n' > /d/a.txt; \
         printf 'x' > /d/sub/deeper/b; chmod 640 /d/a.txt; chown 1234:5678 /d/a.txt; \
         ln -s a.txt /d/link; \
         head -c 104857600 /dev/urandom > /d/big; : > /d/empty",
    );
    let sums = "cd /d && find . | sort && md5sum a.txt sub/deeper/b big empty && \
                stat -c '%a %u:%g %n' a.txt && readlink link";
    let expected = in_volume(&from.name, sums);

    let started = Instant::now();
    let bytes = rt
        .copy_volume_data(&from.name, &to.name)
        .await
        .expect("copy");
    let took = started.elapsed();
    eprintln!(
        "copy_volume_data: {bytes} bytes (100 MiB + 7) in {took:?} ({:.1} MiB/s)",
        bytes as f64 / 1048576.0 / took.as_secs_f64()
    );
    assert_eq!(bytes, BIG + 7, "file bytes: 6 + 1 + 100 MiB + 0");
    assert_eq!(in_volume(&to.name, sums), expected);

    // Both helpers were removed; the source was mounted read-only, so it is untouched.
    assert_eq!(helpers_of(&to.name).trim(), "");
    assert_eq!(in_volume(&from.name, sums), expected);

    // A copy from a volume that is not ec2d's is refused, and leaves no helper either.
    let foreign = format!("ec2d-voltest-foreign-{}", &store[..12]);
    let _g3 = VolumeGuard(foreign.clone());
    docker_ok(&["volume", "create", &foreign]);
    assert!(matches!(
        rt.copy_volume_data(&foreign, &to.name).await,
        Err(RuntimeError::Failed(_))
    ));
    assert!(matches!(
        rt.copy_volume_data(&from.name, "ec2d-no-such-volume-for-sure")
            .await,
        Err(RuntimeError::NotFound(_))
    ));
    assert_eq!(helpers_of(&to.name).trim(), "");
}

#[tokio::test]
async fn leftover_helpers_are_collected_per_store_only() {
    let Some(rt) = engine() else { return };
    let ours = store_id();
    let theirs = store_id();
    let mine = labels::volume_name(&ours, "vol-0bbbbbbbbbbbbbbb0");
    let other = labels::volume_name(&theirs, "vol-0bbbbbbbbbbbbbbb0");
    let names = [
        format!("ec2d-voltest-helper-{}", &ours[..12]),
        format!("ec2d-voltest-helper-{}", &theirs[..12]),
    ];
    let _guards: Vec<_> = names.iter().map(|n| ContainerGuard(n.clone())).collect();
    for (name, target) in names.iter().zip([&mine, &other]) {
        docker_ok(&[
            "create",
            "--name",
            name,
            "--label",
            &format!("{}={target}", labels::VOLUME_HELPER),
            TEST_IMAGE,
            "true",
        ]);
    }
    let removed = rt
        .remove_volume_helpers(&labels::volume_prefix(&ours))
        .await
        .expect("sweep helpers");
    assert_eq!(removed, 1);
    assert_eq!(helpers_of(&mine).trim(), "");
    assert_ne!(
        helpers_of(&other).trim(),
        "",
        "another store's helper stays"
    );
}

#[tokio::test]
async fn a_volume_removed_behind_ec2ds_back_is_an_event() {
    let Some(rt) = engine() else { return };
    let store = store_id();
    let vol = spec(&store, VolumeOwner::Volume("vol-0ccccccccccccccc0".into()));
    let _g = VolumeGuard(vol.name.clone());
    // The stream subscribes when first polled: a task polls it from now on.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut events = rt.events();
    let listener = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    rt.create_volume(&vol).await.expect("create");
    // Let the subscription start before the removal.
    tokio::time::sleep(Duration::from_secs(1)).await;
    docker_ok(&["volume", "rm", &vol.name]);
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = rx.recv().await {
            if let RuntimeEvent::Volume { name, action } = &event {
                if name == &vol.name && action == "destroy" {
                    return true;
                }
            }
        }
        false
    })
    .await;
    listener.abort();
    assert_eq!(seen, Ok(true), "no destroy event for {}", vol.name);
}

fn volume_spec(snapshot_id: Option<&str>) -> VolumeSpec {
    VolumeSpec {
        snapshot_id: snapshot_id.map(str::to_string),
        ..fixtures::volume_spec("us-east-1a", "gp3", 1)
    }
}

#[tokio::test]
async fn the_reconcilers_make_snapshot_restore_sweep_and_delete_on_the_real_engine() {
    let Some(rt) = engine() else { return };
    let store = Store::temporary().unwrap();
    let ctx = std::sync::Arc::new(Context::new(store.clone(), rt.clone(), Settings::default()));
    let (v1, v2, s1) = (
        "vol-0ddddddddddddddd1",
        "vol-0ddddddddddddddd2",
        "snap-0ddddddddddddddd1",
    );
    let names: Vec<String> = [v1, v2, s1, "vol-0ddddddddddddddd9"]
        .iter()
        .map(|id| labels::volume_name(store.id(), id))
        .collect();
    let unlabelled = format!("{}unlabelled", labels::volume_prefix(store.id()));
    let _guards: Vec<_> = names
        .iter()
        .chain([&unlabelled])
        .map(|n| VolumeGuard(n.clone()))
        .collect();
    let run = |key: ObjectRef| {
        let ctx = ctx.clone();
        async move {
            let _next = reconcile::reconcile(key, ctx).await.expect("reconciled");
        }
    };

    store
        .create_volume(&new_volume(v1, "us-east-1", volume_spec(None), now()))
        .unwrap();
    run(ObjectRef::Volume(v1.into())).await;
    let made = store.volumes().get(v1).unwrap().unwrap();
    assert!(made.status.ready);
    let v1_name = made.status.backing.clone().unwrap();
    assert_eq!(v1_name, names[0]);
    in_volume(
        &v1_name,
        "printf 'from v1' > /d/data && mkdir /d/dir && printf z > /d/dir/z",
    );

    let spec = fixtures::snapshot_spec(v1, 1);
    store
        .snapshots()
        .create(&[new_snapshot(s1, "us-east-1", spec, now())])
        .unwrap();
    run(ObjectRef::Snapshot(s1.into())).await;
    let snapshot = store.snapshots().get(s1).unwrap().unwrap();
    assert!(snapshot.status.completed);
    assert_eq!(snapshot.status.size_bytes, Some(8));

    store
        .create_volume(&new_volume(v2, "us-east-1", volume_spec(Some(s1)), now()))
        .unwrap();
    run(ObjectRef::Volume(v2.into())).await;
    let restored = store.volumes().get(v2).unwrap().unwrap();
    assert!(restored.status.ready);
    assert_eq!(
        in_volume(
            restored.status.backing.as_deref().unwrap(),
            "cat /d/data /d/dir/z"
        ),
        "from v1z"
    );

    // An orphan of this store goes with the sweep; an unlabelled volume under our prefix stays.
    let orphan = &names[3];
    docker_ok(&[
        "volume",
        "create",
        "--label",
        &format!("{}=vol-0ddddddddddddddd9", labels::VOLUME_ID),
        "--label",
        &format!("{}={}", labels::STORE_ID, store.id()),
        orphan,
    ]);
    docker_ok(&["volume", "create", &unlabelled]);
    run(ObjectRef::Sweep).await;
    assert!(!docker_cli(&["volume", "inspect", orphan]).status.success());
    docker_ok(&["volume", "inspect", &unlabelled]);
    for name in &names[..3] {
        docker_ok(&["volume", "inspect", name]);
    }

    for id in [v1, v2] {
        store
            .volumes()
            .update_spec::<StoreError>(id, |o| {
                o.metadata.deletion_timestamp = Some(now());
                Ok(true)
            })
            .unwrap();
        run(ObjectRef::Volume(id.into())).await;
        assert!(store.volumes().get(id).unwrap().is_none());
    }
    store
        .snapshots()
        .update_spec::<StoreError>(s1, |o| {
            o.metadata.deletion_timestamp = Some(now());
            Ok(true)
        })
        .unwrap();
    run(ObjectRef::Snapshot(s1.into())).await;
    assert!(store.snapshots().get(s1).unwrap().is_none());
    for name in &names {
        assert!(
            !docker_cli(&["volume", "inspect", name]).status.success(),
            "{name}"
        );
    }
}
