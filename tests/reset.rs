//! `POST /_ec2d/reset` and `POST /moto-api/reset` through HTTP against an in-process ec2d on the in-memory runtime, whose world the tests inspect.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::api::{Harness, StubIntrospection};
use common::Ec2;
use ec2d::api::{router, ApiState, NoNudge, Reset};
use ec2d::app::RunningApp;
use ec2d::config::VmManager;
use ec2d::model::InstanceId;
use ec2d::runtime::FakeRuntime;
use ec2d::store::Store;
use ec2d::{App, Config};
use futures::future::BoxFuture;
use tokio::sync::Notify;

const WAIT: Duration = Duration::from_secs(10);
const DISCOVERED: &str = "ami-0123abcd";

/// An ec2d on `fake`, which has one discovered AMI, as with a real engine (the AMI must exist).
async fn spawn(dir: &Path, fake: &FakeRuntime) -> RunningApp {
    fake.add_image(&format!("localstack-ec2/base:{DISCOVERED}"));
    let mut config = Config::for_tests(dir.to_path_buf());
    config.vm_manager = VmManager::Docker;
    App::spawn_with(config, Some(fake.clone())).await.unwrap()
}

async fn run_one(ec2: &Ec2, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("ImageId", DISCOVERED),
        ("MinCount", "1"),
        ("MaxCount", "1"),
    ];
    params.extend_from_slice(extra);
    ec2.ok("RunInstances", &params).await.one("instanceId")
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_removes_everything_the_store_made_and_keeps_discovered_amis() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRuntime::new();
    let app = spawn(dir.path(), &fake).await;
    let ec2 = Ec2::new(app.url(), "us-east-1");

    ec2.ok("CreateKeyPair", &[("KeyName", "k1")]).await;
    let group = ec2
        .ok(
            "CreateSecurityGroup",
            &[("GroupName", "g1"), ("GroupDescription", "d")],
        )
        .await
        .one("groupId");
    let vpc = ec2
        .ok("CreateVpc", &[("CidrBlock", "10.77.0.0/16")])
        .await
        .one("vpcId");
    let subnet = ec2
        .ok(
            "CreateSubnet",
            &[("VpcId", &vpc), ("CidrBlock", "10.77.1.0/24")],
        )
        .await
        .one("subnetId");
    let plain = run_one(&ec2, &[("KeyName", "k1"), ("SecurityGroupId.1", &group)]).await;
    let in_vpc = run_one(&ec2, &[("SubnetId", &subnet)]).await;
    let volume = ec2
        .ok(
            "CreateVolume",
            &[("AvailabilityZone", "us-east-1a"), ("Size", "1")],
        )
        .await
        .one("volumeId");
    for id in [&plain, &in_vpc] {
        ec2.wait_state(id, "running", WAIT).await;
    }
    let made = ec2
        .ok(
            "CreateImage",
            &[("InstanceId", &plain), ("Name", "made-by-create-image")],
        )
        .await
        .one("imageId");
    wait_for("the AMI, the volume and the VPC network", async || {
        let image = ec2.ok("DescribeImages", &[("ImageId.1", &made)]).await.body;
        let vol = ec2
            .ok("DescribeVolumes", &[("VolumeId.1", &volume)])
            .await
            .body;
        image.contains("<imageState>available</imageState>")
            && vol.contains("<status>available</status>")
            && !fake.networks().is_empty()
    })
    .await;
    assert_eq!(fake.container_count(), 2);
    assert!(!fake.volume_names().is_empty());
    assert!(fake
        .image_references()
        .iter()
        .any(|reference| reference.ends_with(&made)));

    let (code, body) = ec2.post_json("/moto-api/reset").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["removed"]["containers"], 2, "{body}");

    // Nothing of the first "test case" is left, in the store or in the engine.
    assert_eq!(fake.container_count(), 0);
    assert_eq!(fake.networks(), Vec::<(String, String)>::new());
    assert_eq!(fake.volume_names(), Vec::<String>::new());
    assert_eq!(
        fake.image_references(),
        vec![format!("localstack-ec2/base:{DISCOVERED}")]
    );
    let described = ec2.ok("DescribeInstances", &[]).await;
    assert!(described.all("instanceId").is_empty(), "{}", described.body);
    assert!(ec2
        .ok("DescribeKeyPairs", &[])
        .await
        .all("keyName")
        .is_empty());
    assert!(ec2
        .ok("DescribeVolumes", &[])
        .await
        .all("volumeId")
        .is_empty());
    let groups = ec2.ok("DescribeSecurityGroups", &[]).await.all("groupName");
    assert_eq!(
        groups,
        vec!["default".to_string()],
        "only the derived default group"
    );
    let vpcs = ec2.ok("DescribeVpcs", &[]).await.all("vpcId");
    assert!(!vpcs.contains(&vpc), "{vpcs:?}");
    let images = ec2.ok("DescribeImages", &[]).await.all("imageId");
    assert!(images.contains(&DISCOVERED.to_string()), "{images:?}");
    assert!(!images.contains(&made), "{images:?}");

    // The store works as new: names are free again and launches boot.
    ec2.ok("CreateKeyPair", &[("KeyName", "k1")]).await;
    let again = run_one(&ec2, &[("KeyName", "k1")]).await;
    ec2.wait_state(&again, "running", WAIT).await;
    assert_eq!(fake.container_count(), 1);

    // ec2d's own path does the same.
    let (code, body) = ec2.post_json("/_ec2d/reset").await;
    assert_eq!((code, body["status"].clone()), (200, "ok".into()), "{body}");
    assert_eq!(fake.container_count(), 0);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn reset_is_a_post_only() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRuntime::new();
    let app = spawn(dir.path(), &fake).await;
    let ec2 = Ec2::new(app.url(), "us-east-1");
    let (code, _) = ec2.get_json("/moto-api/reset").await;
    assert_eq!(code, 405);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_reset_says_so_and_a_retry_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRuntime::new();
    let app = spawn(dir.path(), &fake).await;
    let ec2 = Ec2::new(app.url(), "us-east-1");
    let id = run_one(&ec2, &[]).await;
    ec2.wait_state(&id, "running", WAIT).await;

    fake.set_down(true);
    let (code, body) = ec2.post_json("/_ec2d/reset").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    // Nothing was wiped: the instance is still there.
    assert_eq!(
        ec2.ok("DescribeInstances", &[]).await.all("instanceId"),
        vec![id]
    );

    fake.set_down(false);
    let (code, body) = ec2.post_json("/_ec2d/reset").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(fake.container_count(), 0);
    assert!(ec2
        .ok("DescribeInstances", &[])
        .await
        .all("instanceId")
        .is_empty());
    app.shutdown().await.unwrap();
}

/// Launches race a reset: every launch answered lands wholly before it (removed with
/// everything) or wholly after it (kept, and booted); no container outlives its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launches_racing_a_reset_are_either_removed_or_kept_whole() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRuntime::new();
    let app = spawn(dir.path(), &fake).await;
    let ec2 = Arc::new(Ec2::new(app.url(), "us-east-1"));
    let stop = Arc::new(AtomicBool::new(false));
    let mut launchers = Vec::new();
    for _ in 0..3 {
        let (ec2, stop) = (Arc::clone(&ec2), Arc::clone(&stop));
        launchers.push(tokio::spawn(async move {
            let mut launched = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                launched.push(run_one(&ec2, &[]).await);
            }
            launched
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = ec2.post_json("/moto-api/reset").await;
    assert_eq!(code, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut launched = Vec::new();
    for launcher in launchers {
        launched.extend(launcher.await.unwrap());
    }

    let kept: BTreeSet<String> = ec2
        .ok("DescribeInstances", &[])
        .await
        .all("instanceId")
        .into_iter()
        .collect();
    assert!(!kept.is_empty(), "some launches came after the reset");
    assert!(kept.len() < launched.len(), "some launches came before it");
    for id in &kept {
        ec2.wait_state(id, "running", WAIT).await;
    }
    // Every container belongs to a kept instance, and every kept instance has one.
    wait_for("one container per kept instance", async || {
        fake.container_count() == kept.len()
    })
    .await;
    for id in &launched {
        let has_container = fake.container_id(&InstanceId::parse(id).unwrap()).is_some();
        assert_eq!(
            has_container,
            kept.contains(id),
            "{id}: a container must exist exactly for the instances the reset kept"
        );
    }
    app.shutdown().await.unwrap();
}

/// A reset that tells when it runs and waits to be let go, then wipes the store.
struct HeldReset {
    store: Store,
    running: Arc<Notify>,
    let_go: Arc<Notify>,
}

impl Reset for HeldReset {
    fn reset(&self) -> BoxFuture<'static, Result<serde_json::Value, String>> {
        let (store, running, let_go) = (
            self.store.clone(),
            Arc::clone(&self.running),
            Arc::clone(&self.let_go),
        );
        Box::pin(async move {
            running.notify_one();
            let_go.notified().await;
            store.wipe_for_reset().map_err(|e| e.to_string())?;
            Ok(serde_json::json!({}))
        })
    }
}

/// A request that arrives while a reset runs waits for it, then sees the empty store: it is
/// never answered from the store half-way through the reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_during_a_reset_waits_for_it_and_sees_the_empty_store() {
    let mut h = Harness::new();
    let (running, let_go) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    h.app = router(ApiState {
        store: h.store.spec_view(),
        vm_manager: VmManager::Mock,
        public_amis: false,
        allocate_private_ips: true,
        introspection: Arc::new(StubIntrospection),
        rendered_instances: Default::default(),
        nudge: Arc::new(NoNudge),
        reset: Arc::new(HeldReset {
            store: h.store.clone(),
            running: Arc::clone(&running),
            let_go: Arc::clone(&let_go),
        }),
        gate: Default::default(),
        metrics: Default::default(),
    });
    let h = Arc::new(h);
    let launched = h
        .post(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-0123abcd"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
        ])
        .await;
    launched.ok("RunInstances");

    let reset = tokio::spawn({
        let h = Arc::clone(&h);
        async move {
            h.send(
                Request::builder()
                    .method(Method::POST)
                    .uri("/moto-api/reset")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    });
    running.notified().await;
    let describe = tokio::spawn({
        let h = Arc::clone(&h);
        async move { h.post(&[("Action", "DescribeInstances")]).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !describe.is_finished(),
        "a request must wait while a reset runs"
    );
    let_go.notify_one();
    assert_eq!(reset.await.unwrap().status, StatusCode::OK);
    let described = describe.await.unwrap();
    let reservations = described.ok("DescribeInstances");
    assert!(
        reservations.items("reservationSet").is_empty(),
        "the request waited and saw the empty store: {}",
        described.body
    );
}
