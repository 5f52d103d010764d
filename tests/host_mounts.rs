//! The volume mount propagation point on the real host and engine: a running busybox container created with its directory bound `rslave` at `/mnt` sees a directory (and a Docker volume's `Mountpoint`) mounted there afterwards, and no longer sees it once unmounted.
//!
//! Needs root (mount(2)) and a local engine. Without them the test says why and skips, unless
//! `EC2D_REQUIRE_DOCKER=1` (CI), where it fails.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{docker, docker_available, TEST_IMAGE};
use ec2d::hostmnt::{MountTable, SystemMounts, VolumeMounts, ROOT_DIR};
use ec2d::model::{InstanceId, CONTAINER_NAME_PREFIX};
use ec2d::runtime::{labels, ContainerRuntime, ContainerSpec, DockerRuntime};

/// Whether this process is root, read from `/proc/self/status` (`Uid:` real, effective, …).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn root_available() -> bool {
    if is_root() {
        return true;
    }
    let why = "host_mounts needs root: it makes bind mounts on the host (run the test as root)";
    if std::env::var("EC2D_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("EC2D_REQUIRE_DOCKER=1 but {why}");
    }
    eprintln!("\n**************** SKIPPED: {why} ****************\n");
    false
}

/// Removes what the test made, whatever happens: the container, the Docker volume, every
/// mount under the temporary root and the root's own bind, then the directories.
struct Cleanup {
    container: String,
    volume: String,
    mounts: Option<VolumeMounts>,
    owner: String,
    root: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.container]);
        if let Some(mounts) = &self.mounts {
            if let Err(error) = mounts.forget(&self.owner) {
                eprintln!("cleanup: {error}");
            }
        }
        // The root's own bind, and anything a failed step left stacked on it.
        let table = SystemMounts;
        for _ in 0..4 {
            if table.unmount(&self.root).is_err() {
                break;
            }
        }
        docker(&["volume", "rm", "-f", &self.volume]);
    }
}

/// What `cmd` prints inside the container.
fn exec(container: &str, cmd: &str) -> (bool, String) {
    docker(&["exec", container, "sh", "-c", cmd])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_container_sees_a_directory_mounted_after_its_creation_and_not_after_unmount() {
    if !docker_available() || !root_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(ROOT_DIR);
    let owner = InstanceId::generate();
    let container = format!("{CONTAINER_NAME_PREFIX}{owner}");
    let volume = format!("ec2d-test-hostmnt-{owner}");
    let mut cleanup = Cleanup {
        container: container.clone(),
        volume: volume.clone(),
        mounts: None,
        owner: owner.to_string(),
        root: root.clone(),
    };

    let mounts = VolumeMounts::setup(Arc::new(SystemMounts), &root);
    assert!(mounts.is_active(), "{:?}", mounts.problem());
    cleanup.mounts = Some(mounts.clone());
    cleanup.root = PathBuf::from(mounts.report().root.unwrap());
    // A second setup adopts the shared root instead of binding it again.
    assert!(
        VolumeMounts::setup(Arc::new(SystemMounts), &root)
            .report()
            .adopted
    );

    // The container, through the runtime ec2d uses, with the bind the reconciler gives.
    let bind = mounts.prepare(owner.as_str()).unwrap();
    assert!(bind.ends_with(":/mnt:rslave"), "{bind}");
    let runtime = DockerRuntime::connect(None).unwrap();
    let spec = ContainerSpec {
        name: container.clone(),
        instance_id: Some(owner.clone()),
        image: TEST_IMAGE.to_string(),
        cmd: Some(vec!["sleep".into(), "600".into()]),
        labels: BTreeMap::from([
            ("ec2d.test".to_string(), "host_mounts".to_string()),
            (labels::STORE_ID.to_string(), "host-mounts-test".to_string()),
        ]),
        binds: vec![bind],
        ..Default::default()
    };
    runtime.create_and_start(&spec).await.unwrap();
    let observed = runtime.inspect_instance(&owner).await.unwrap().unwrap();
    assert!(
        mounts.bound_in(owner.as_str(), &observed.binds),
        "{:?}",
        observed.binds
    );
    assert_eq!(exec(&container, "ls -A /mnt").1, "", "nothing mounted yet");

    // A plain directory with a file, mounted after the container started.
    let source = tmp.path().join("source");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(source.join("hello"), "from the host\n").unwrap();
    mounts.mount(owner.as_str(), "sdf", &source).unwrap();
    assert_eq!(exec(&container, "cat /mnt/sdf/hello").1, "from the host");
    let listed = mounts.mounts(owner.as_str()).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].path, "sdf");
    assert!(
        listed[0].is_of(&source.canonicalize().unwrap()),
        "{listed:?}"
    );

    // Written inside, seen on the host: the same directory.
    assert!(exec(&container, "echo back > /mnt/sdf/reply").0);
    assert_eq!(
        std::fs::read_to_string(source.join("reply")).unwrap(),
        "back\n"
    );

    // A Docker volume's Mountpoint, as the volume engine reports it.
    assert!(docker(&["volume", "create", &volume]).0);
    let mountpoint = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &volume]).1;
    std::fs::write(Path::new(&mountpoint).join("data"), "volume data\n").unwrap();
    mounts
        .mount(owner.as_str(), "sdg", Path::new(&mountpoint))
        .unwrap();
    assert_eq!(exec(&container, "cat /mnt/sdg/data").1, "volume data");
    let listed = mounts.mounts(owner.as_str()).unwrap();
    assert!(listed
        .iter()
        .any(|m| m.path == "sdg" && m.is_of(Path::new(&mountpoint))));

    // Unmounted: gone inside the running container, the data kept on the host.
    mounts.unmount(owner.as_str(), "sdf").unwrap();
    let (_, inside) = exec(&container, "ls -A /mnt");
    assert_eq!(inside, "sdg", "sdf gone, sdg still there");
    assert!(source.join("hello").exists());

    // Forget: everything unmounted and the owner's directory removed.
    mounts.forget(owner.as_str()).unwrap();
    assert_eq!(exec(&container, "ls -A /mnt").1, "");
    assert!(
        Path::new(&mountpoint).join("data").exists(),
        "volume data kept"
    );
    assert!(!root.join(owner.as_str()).exists());
    drop(cleanup);
    // Nothing of ours is left mounted.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!info.contains(tmp.path().to_str().unwrap()), "{info}");
}

/// A volume record attached to `instance` as `/dev/sdf`, ready on the Docker volume `backing`.
fn attached_volume(
    store: &ec2d::store::Store,
    volume_id: &str,
    instance: &InstanceId,
    backing: &str,
    mountpoint: &str,
) {
    use ec2d::model::fixtures;
    let now = time::OffsetDateTime::now_utc();
    let mut spec = fixtures::volume_spec("us-east-1a", "gp3", 1);
    fixtures::attach(&mut spec, instance.as_str(), "/dev/sdf", false, now);
    let mut volume = fixtures::volume_of(volume_id, spec, now);
    store.create_volume(&volume).unwrap();
    volume.status.backing = Some(backing.to_string());
    volume.status.mountpoint = Some(mountpoint.to_string());
    volume.status.ready = true;
    store
        .volumes()
        .write_status(volume_id, &volume.status)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_attaches_a_volume_to_a_running_instance_and_detaches_it() {
    use ec2d::model::{fixtures, DesiredState};
    use ec2d::reconcile::{self, Context, ObjectRef, Settings};
    use ec2d::store::{Store, StoreError};

    if !docker_available() || !root_available() {
        return;
    }
    let (ami, mut images) = common::tagged_test_ami("hostmnt-busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(ROOT_DIR);
    let mut instance = fixtures::instance();
    instance.spec.image_id = ami.clone();
    instance.spec.image_ref = format!("localstack-ec2/hostmnt-busybox:{ami}");
    let id = InstanceId::parse(&instance.metadata.name).unwrap();
    let container = format!("{CONTAINER_NAME_PREFIX}{id}");
    images.containers.push(container.clone());
    let volume = format!("ec2d-test-hostmnt-{id}");
    let mut cleanup = Cleanup {
        container: container.clone(),
        volume: volume.clone(),
        mounts: None,
        owner: id.to_string(),
        root: root.clone(),
    };
    let mounts = VolumeMounts::setup(Arc::new(SystemMounts), &root);
    assert!(mounts.is_active(), "{:?}", mounts.problem());
    cleanup.mounts = Some(mounts.clone());
    cleanup.root = PathBuf::from(mounts.report().root.unwrap());

    let store = Store::temporary().unwrap();
    let settings = Settings {
        mount_docker_socket: false,
        ..Settings::default()
    };
    let ctx = Arc::new(
        Context::new(
            store.clone(),
            DockerRuntime::connect(None).unwrap(),
            settings,
        )
        .with_volume_mounts(mounts.clone()),
    );
    let run = || reconcile::reconcile(ObjectRef::Instance(id.clone()), ctx.clone());
    store
        .instances()
        .create(std::slice::from_ref(&instance))
        .unwrap();
    let _ = run().await.unwrap();
    let first = docker(&["inspect", "-f", "{{.Id}}", &container]).1;
    assert!(!first.is_empty(), "the instance's container runs");

    // The volume engine's part, by hand: a Docker volume with data, recorded ready.
    assert!(docker(&["volume", "create", &volume]).0);
    let mountpoint = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &volume]).1;
    std::fs::write(Path::new(&mountpoint).join("data"), "on the volume\n").unwrap();
    attached_volume(&store, "vol-0a1b2c3d4e5f60718", &id, &volume, &mountpoint);
    let _ = run().await.unwrap();
    assert_eq!(exec(&container, "cat /mnt/sdf/data").1, "on the volume");
    let status = store.instances().get(id.as_str()).unwrap().unwrap().status;
    assert_eq!(status.volumes.len(), 1, "{:?}", status.volumes);
    assert_eq!(status.volumes[0].mount_point, "/mnt/sdf");
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", &container]).1,
        first,
        "the same container"
    );

    // Unmounted behind ec2d's back: the next pass mounts it again.
    let target = PathBuf::from(mounts.report().root.unwrap())
        .join(id.as_str())
        .join("sdf");
    SystemMounts.unmount(&target).unwrap();
    assert!(!exec(&container, "test -e /mnt/sdf/data").0);
    let _ = run().await.unwrap();
    assert_eq!(exec(&container, "cat /mnt/sdf/data").1, "on the volume");

    // Detached: gone from the running container, the data kept.
    store
        .volumes()
        .update_spec::<StoreError>("vol-0a1b2c3d4e5f60718", |v| {
            v.spec.attachments.clear();
            Ok(true)
        })
        .unwrap();
    let _ = run().await.unwrap();
    assert!(!exec(&container, "test -e /mnt/sdf").0);
    let status = store.instances().get(id.as_str()).unwrap().unwrap().status;
    assert!(status.volumes.is_empty());
    assert!(Path::new(&mountpoint).join("data").exists());

    // Terminated: the container goes and nothing stays mounted on the host.
    store
        .instances()
        .update_spec::<StoreError>(id.as_str(), |o| {
            o.spec.desired = DesiredState::Terminated;
            Ok(true)
        })
        .unwrap();
    let _ = run().await.unwrap();
    assert!(!docker(&["inspect", &container]).0, "container removed");
    assert!(!root.join(id.as_str()).exists());
    drop(cleanup);
    drop(images);
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!info.contains(tmp.path().to_str().unwrap()), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_sets_up_the_propagation_point_reports_it_and_leaves_it_when_stopping() {
    use ec2d::config::VmManager;
    use ec2d::{App, Config};

    if !docker_available() || !root_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(ROOT_DIR);
    let mut cleanup = Cleanup {
        container: "ec2d-test-hostmnt-none".into(),
        volume: "ec2d-test-hostmnt-none".into(),
        mounts: None,
        owner: "none".into(),
        root: root.clone(),
    };
    let mut config = Config::for_tests(tmp.path().to_path_buf());
    config.vm_manager = VmManager::Docker;
    config.volume_mounts = true;
    let app = App::spawn(config.clone()).await.unwrap();
    let (_, status) = common::Ec2::new(app.url(), "us-east-1")
        .get_json("/_ec2d/status")
        .await;
    let report = &status["volumeMounts"];
    assert_eq!(report["active"], true, "{report}");
    assert_eq!(report["adopted"], false, "{report}");
    let shown_root = report["root"].as_str().unwrap().to_string();
    cleanup.root = PathBuf::from(&shown_root);
    assert!(shown_root.ends_with(ROOT_DIR));
    app.shutdown().await.unwrap();

    // Stopping leaves the root mounted (it carries the containers' mounts); the next start
    // adopts it.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(info.contains(&shown_root), "still mounted");
    let app = App::spawn(config.clone()).await.unwrap();
    let (_, status) = common::Ec2::new(app.url(), "us-east-1")
        .get_json("/_ec2d/status")
        .await;
    assert_eq!(status["volumeMounts"]["adopted"], true, "{status:#}");
    app.shutdown().await.unwrap();

    // Off: reported, with the reason.
    config.volume_mounts = false;
    let app = App::spawn(config).await.unwrap();
    let (_, status) = common::Ec2::new(app.url(), "us-east-1")
        .get_json("/_ec2d/status")
        .await;
    let report = &status["volumeMounts"];
    assert_eq!(report["active"], false, "{report}");
    assert!(report["problem"]
        .as_str()
        .is_some_and(|p| p.contains("EC2D_VOLUME_MOUNTS=0")));
    app.shutdown().await.unwrap();
    drop(cleanup);
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!info.contains(tmp.path().to_str().unwrap()), "{info}");
}

/// A root process in the instance swapping a directory of its `/mnt` for a symbolic link to a
/// host directory, as fast as it can, while ec2d mounts there: no mount ever lands outside the
/// instance's directory (the mount goes onto the directory opened beneath it, not a path).
#[test]
fn a_directory_swapped_for_a_link_while_mounting_never_sends_the_mount_outside() {
    if !root_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(ROOT_DIR);
    let host_dir = tmp.path().join("host-dir");
    let source = tmp.path().join("source");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::create_dir(&source).unwrap();
    let mounts = VolumeMounts::setup(Arc::new(SystemMounts), &root);
    assert!(mounts.is_active(), "{:?}", mounts.problem());
    let root = PathBuf::from(mounts.report().root.unwrap());
    let host_dir = host_dir.canonicalize().unwrap();
    let owner = "i-0123456789abcdef0";
    mounts.prepare(owner).unwrap();
    let target = root.join(owner).join("sdf");

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, target, host_dir) = (stop.clone(), target.clone(), host_dir.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::create_dir(&target);
                let _ = std::fs::remove_dir(&target);
                let _ = std::os::unix::fs::symlink(&host_dir, &target);
                let _ = std::fs::remove_file(&target);
            }
        })
    };
    let escaped = |info: &str| {
        ec2d::hostmnt::parse_mountinfo(info)
            .iter()
            .any(|e| e.mount_point == host_dir)
    };
    let (mut made, mut refused, mut outside) = (0, 0, 0);
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(3) {
        match mounts.mount(owner, "sdf", &source) {
            Ok(()) => made += 1,
            Err(_) => refused += 1,
        }
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        if escaped(&info) {
            outside += 1;
            let _ = SystemMounts.unmount(&host_dir);
        }
        let _ = mounts.unmount(owner, "sdf");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    mounts.forget(owner).unwrap();
    for _ in 0..4 {
        if SystemMounts.unmount(&root).is_err() {
            break;
        }
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!info.contains(tmp.path().to_str().unwrap()), "{info}");
    eprintln!("mounts made {made}, refused {refused}, landed outside {outside}");
    assert_eq!(outside, 0, "a mount landed on the host directory");
    assert!(
        made > 0,
        "never mounted while racing: the test proved nothing"
    );
}
