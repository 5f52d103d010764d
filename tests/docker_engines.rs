//! Two real Docker engines (issue 17, availability zones on separate engines): the default
//! engine and engine B, a second dockerd on the same machine (`tests/support/second-engine.sh`,
//! started by `scripts/test.sh`), whose endpoint `EC2D_TEST_ENGINE_B` names.
//!
//! Without `EC2D_TEST_ENGINE_B` the tests skip, loudly, unless `CI=true` or
//! `EC2D_REQUIRE_SECOND_ENGINE=1`, where they fail; `EC2D_REQUIRE_DOCKER=1` makes a missing
//! default engine or test image a failure too (see `common::docker_available`). An engine B that
//! is named but does not answer is always a failure.
//!
//! Each copy prints its time and bytes (`cargo test --test docker_engines -- --nocapture`).

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{docker_available, TEST_IMAGE};
use ec2d::model::InstanceId;
use ec2d::runtime::labels;
use ec2d::runtime::{ContainerRuntime, CopyProgress, DockerRuntime};

/// The Debian+sshd test AMI (`tests/support/build-test-images.sh debian`).
const DEBIAN_IMAGE: &str = "ec2d-test/debian-ssh:latest";
/// The repository of every tag this file makes, on either engine.
const COPY_REPO: &str = "ec2d-test/engines-copy";
/// The store id the busybox copy is labelled with (no ec2d store has it).
const TEST_STORE_ID: &str = "docker-engines-test-store";

/// One copy at a time: the figures printed are of one copy on an otherwise idle pair of
/// engines, not of two sharing the machine's cores.
static ONE_COPY_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env_is(name: &str, value: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == value)
}

/// Whether a missing engine B fails the test instead of skipping it.
fn second_engine_required() -> bool {
    env_is("CI", "true") || env_is("EC2D_REQUIRE_SECOND_ENGINE", "1")
}

/// Whether a missing test image fails the test instead of skipping it.
fn images_required() -> bool {
    env_is("EC2D_REQUIRE_DOCKER", "1") || env_is("CI", "true")
}

fn skipped(why: &str) {
    eprintln!("\n**************** SKIPPED: {why} ****************\n");
}

/// Both engines: (default, B, B's endpoint); `None` when the test is skipped.
async fn engines() -> Option<(DockerRuntime, DockerRuntime, String)> {
    let endpoint = match std::env::var("EC2D_TEST_ENGINE_B") {
        Ok(e) if !e.trim().is_empty() => e.trim().to_string(),
        _ => {
            let why = "EC2D_TEST_ENGINE_B is not set (tests/support/second-engine.sh start \
                       prints it)";
            if second_engine_required() {
                panic!("CI=true or EC2D_REQUIRE_SECOND_ENGINE=1 but {why}");
            }
            skipped(why);
            return None;
        }
    };
    if !docker_available() {
        if second_engine_required() {
            panic!("engine B is required but the default engine or its test image is missing");
        }
        return None;
    }
    let a = DockerRuntime::connect(None).expect("connect never contacts the engine");
    let b = DockerRuntime::connect(Some(&endpoint)).expect("connect never contacts the engine");
    let info_a = a.info().await.expect("the default engine answers");
    let info_b = match b.info().await {
        Ok(info) => info,
        Err(e) => panic!("EC2D_TEST_ENGINE_B={endpoint} is set but does not answer: {e:?}"),
    };
    eprintln!(
        "default engine {} ({:?}); engine B {} ({:?}) at {endpoint}",
        info_a.version, info_a.engine_id, info_b.version, info_b.engine_id
    );
    // Two engines, not one reached twice (before Docker 23 a second dockerd shares the
    // default one's ID unless it has its own key, which second-engine.sh gives it).
    assert!(info_a.engine_id.is_some() && info_b.engine_id.is_some());
    assert_ne!(
        info_a.engine_id, info_b.engine_id,
        "EC2D_TEST_ENGINE_B={endpoint} is the default engine, or shares its engine ID"
    );
    Some((a, b, endpoint))
}

/// The docker CLI against one engine (`None`: the default one).
fn docker_on(host: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new("docker");
    if let Some(host) = host {
        command.args(["-H", host]);
    }
    command.args(args).output().expect("docker CLI runs")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker image inspect -f <format> <reference>` on one engine; `None` when it has no such image.
fn image_field(host: Option<&str>, reference: &str, format: &str) -> Option<String> {
    let out = docker_on(host, &["image", "inspect", "-f", format, reference]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Removes a tag from both engines when dropped (the image goes with its last tag), whatever
/// the test did.
struct TagGuard {
    reference: String,
    engine_b: String,
}

impl Drop for TagGuard {
    fn drop(&mut self) {
        for host in [None, Some(self.engine_b.as_str())] {
            let _ = docker_on(host, &["rmi", "-f", &self.reference]);
        }
    }
}

/// A fresh tag name of this file's, with its guard (made before the tag, so nothing escapes).
fn fresh_tag(what: &str, engine_b: &str) -> (String, TagGuard) {
    let reference = format!("{COPY_REPO}:{what}-{}", InstanceId::generate());
    let guard = TagGuard {
        reference: reference.clone(),
        engine_b: engine_b.to_string(),
    };
    (reference, guard)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Copies `reference` from the default engine to B through the runtime and checks it arrived:
/// same image id, same labels, the tag, and a container of it runs on B.
async fn copy_and_check(a: &DockerRuntime, b: &DockerRuntime, endpoint: &str, reference: &str) {
    let host_b = Some(endpoint);
    let id = image_field(None, reference, "{{.Id}}").expect("the source has the image");
    let image_labels = image_field(None, reference, "{{json .Config.Labels}}").unwrap();
    let size = image_field(None, reference, "{{.Size}}").unwrap();
    assert!(!b.image_exists(reference).await.unwrap(), "not on B before");

    let _one = ONE_COPY_AT_A_TIME.lock().await;
    let progress = CopyProgress::default();
    let t0 = Instant::now();
    let bytes = tokio::time::timeout(
        Duration::from_secs(600),
        a.copy_image_to(reference, b, &progress),
    )
    .await
    .expect("the copy ends within 10 min")
    .expect("the copy succeeds");
    let took = t0.elapsed();
    eprintln!(
        "COPY {reference} default engine -> engine B: {bytes} bytes ({:.1} MiB; image size {size}) \
         in {took:.2?} ({:.1} MiB/s)",
        mib(bytes),
        mib(bytes) / took.as_secs_f64().max(1e-9),
    );
    assert!(bytes > 0);
    assert_eq!(progress.bytes(), bytes);
    assert!(progress.started_at().is_some());

    assert!(b.image_exists(reference).await.unwrap(), "the tag is on B");
    assert_eq!(
        image_field(host_b, reference, "{{.Id}}").as_deref(),
        Some(id.as_str()),
        "same image id on B"
    );
    assert_eq!(
        image_field(host_b, reference, "{{json .Config.Labels}}"),
        Some(image_labels),
        "same labels on B"
    );
    // The layers arrived whole: B runs it. (--rm: nothing left behind.)
    let out = docker_on(
        host_b,
        &[
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            reference,
            "-c",
            "echo ran-on-engine-b",
        ],
    );
    assert_eq!(ok(&out, "docker run on B"), "ran-on-engine-b");
    // The source keeps its image.
    assert!(a.image_exists(reference).await.unwrap());
}

/// The busybox test AMI, rebuilt under a fresh tag with an `ec2d.store-id` label (as ec2d's
/// own AMIs carry, which `catalog::foreign` reads), copied to B.
#[tokio::test]
async fn copy_image_to_brings_the_busybox_image_to_engine_b_with_its_id_and_labels() {
    let Some((a, b, endpoint)) = engines().await else {
        return;
    };
    let (reference, _guard) = fresh_tag("busybox", &endpoint);
    let build = Command::new("docker")
        .args([
            "build",
            "-q",
            "-t",
            &reference,
            "--label",
            &format!("{}={TEST_STORE_ID}", labels::STORE_ID),
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("FROM {TEST_IMAGE}\n").as_bytes())?;
            child.wait_with_output()
        })
        .expect("docker build runs");
    ok(&build, "docker build (a label on the test image)");
    let store_label = image_field(
        None,
        &reference,
        &format!("{{{{index .Config.Labels \"{}\"}}}}", labels::STORE_ID),
    );
    assert_eq!(store_label.as_deref(), Some(TEST_STORE_ID));

    copy_and_check(&a, &b, &endpoint, &reference).await;
    assert_eq!(
        image_field(
            Some(&endpoint),
            &reference,
            &format!("{{{{index .Config.Labels \"{}\"}}}}", labels::STORE_ID)
        )
        .as_deref(),
        Some(TEST_STORE_ID),
        "the store-id label is kept"
    );
}

/// The Debian+sshd test AMI (~150 MB) under a fresh tag, copied to B.
#[tokio::test]
async fn copy_image_to_brings_the_debian_image_to_engine_b_with_its_id_and_labels() {
    let Some((a, b, endpoint)) = engines().await else {
        return;
    };
    if image_field(None, DEBIAN_IMAGE, "{{.Id}}").is_none() {
        let why = format!(
            "{DEBIAN_IMAGE} is not on the default engine \
             (tests/support/build-test-images.sh debian builds it)"
        );
        if images_required() {
            panic!("EC2D_REQUIRE_DOCKER=1 or CI=true but {why}");
        }
        skipped(&why);
        return;
    }
    let (reference, _guard) = fresh_tag("debian", &endpoint);
    ok(
        &docker_on(None, &["tag", DEBIAN_IMAGE, &reference]),
        "docker tag",
    );
    copy_and_check(&a, &b, &endpoint, &reference).await;
}
