//! `DockerRuntime`'s resource limits and console reads against the real local engine; skipped (loudly) without one unless `EC2D_REQUIRE_DOCKER=1`.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::{docker_available, TEST_IMAGE};
use ec2d::model::InstanceId;
use ec2d::runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, DockerFlags, DockerRuntime, ResourceLimits,
    CONSOLE_LIMIT,
};

const GIB: i64 = 1 << 30;

fn engine() -> Option<DockerRuntime> {
    docker_available()
        .then(|| DockerRuntime::connect(None).expect("connect never contacts the engine"))
}

fn docker_cli(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes a container by name when dropped, whatever the test did.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.0])
            .output();
    }
}

/// A busybox container for a fresh instance running `script`, with its cleanup guard.
fn spec_running(script: &str) -> (InstanceId, ContainerSpec, ContainerGuard) {
    let id = InstanceId::generate();
    let name = format!("localstack-ec2.{id}");
    let spec = ContainerSpec {
        name: name.clone(),
        instance_id: Some(id.clone()),
        image: TEST_IMAGE.to_string(),
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
        cmd: Some(Vec::new()),
        labels: BTreeMap::from([("ec2d.test".to_string(), "docker_limits".to_string())]),
        ..Default::default()
    };
    (id, spec, ContainerGuard(name))
}

/// NanoCpus, Memory and MemorySwap as the engine reports them.
fn host_limits(cid: &str) -> (i64, i64, i64) {
    let out = docker_cli(&[
        "inspect",
        "-f",
        "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}",
        cid,
    ]);
    let v: Vec<i64> = out.split(' ').map(|n| n.parse().unwrap()).collect();
    (v[0], v[1], v[2])
}

#[tokio::test]
async fn limits_are_set_at_create_observed_and_updated_in_place_even_while_paused() {
    let Some(rt) = engine() else { return };
    let host = rt
        .info()
        .await
        .unwrap()
        .host
        .expect("the engine reports its host");
    assert!(host.cpu_quota && host.memory_limit, "{host:?}");
    let cpus = host.cpus;
    assert!(cpus >= 1);
    let nano = |n: i64| n * 1_000_000_000;

    let (id, mut spec, _guard) = spec_running("while :; do sleep 1; done");
    spec.limits = ResourceLimits {
        nano_cpus: Some(nano(1)),
        memory_bytes: Some(GIB),
    };
    let cid = rt.create_and_start(&spec).await.unwrap();
    // No swap beyond the memory, which also lets the limit be raised later.
    assert_eq!(host_limits(&cid), (nano(1), GIB, GIB));
    let seen = rt.inspect_instance(&id).await.unwrap().unwrap();
    assert_eq!(seen.limits, Some(spec.limits));

    // Frozen, as a stopped instance's container is: raised in place (above the swap the
    // engine set at create, which it refuses unless the swap moves too).
    rt.pause(&cid).await.unwrap();
    let bigger = ResourceLimits {
        nano_cpus: Some(nano(i64::from(cpus))),
        memory_bytes: Some(2 * GIB),
    };
    rt.update_limits(&cid, bigger).await.unwrap();
    assert_eq!(host_limits(&cid), (nano(i64::from(cpus)), 2 * GIB, 2 * GIB));
    rt.unpause(&cid).await.unwrap();
    let seen = rt.inspect_instance(&id).await.unwrap().unwrap();
    assert_eq!(
        (seen.id.as_str(), seen.state, seen.limits),
        (cid.as_str(), ContainerState::Running, Some(bigger))
    );

    // Limits left out are left alone; more CPUs than the host has are refused.
    rt.update_limits(
        &cid,
        ResourceLimits {
            nano_cpus: None,
            memory_bytes: Some(GIB / 2),
        },
    )
    .await
    .unwrap();
    assert_eq!(host_limits(&cid), (nano(i64::from(cpus)), GIB / 2, GIB / 2));
    let refused = rt
        .update_limits(
            &cid,
            ResourceLimits {
                nano_cpus: Some(nano(i64::from(cpus) + 1)),
                memory_bytes: None,
            },
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test]
async fn flags_win_over_the_type_and_a_container_without_limits_reads_as_such() {
    let Some(rt) = engine() else { return };
    let (id, mut spec, _guard) = spec_running("while :; do sleep 1; done");
    spec.limits = ResourceLimits {
        nano_cpus: Some(1_000_000_000),
        memory_bytes: Some(GIB),
    };
    spec.flags = DockerFlags::parse("--memory 256m").unwrap();
    let cid = rt.create_and_start(&spec).await.unwrap();
    let (nano_cpus, memory, swap) = host_limits(&cid);
    assert_eq!((nano_cpus, memory), (1_000_000_000, 256 << 20));
    assert_ne!(
        swap,
        256 << 20,
        "the flag's memory keeps Docker's own swap default"
    );

    let (id2, spec2, _guard2) = spec_running("while :; do sleep 1; done");
    rt.create_and_start(&spec2).await.unwrap();
    let seen = rt.inspect_instance(&id2).await.unwrap().unwrap();
    assert_eq!(seen.limits, Some(ResourceLimits::default()));
    assert!(rt.inspect_instance(&id).await.unwrap().is_some());
}

#[tokio::test]
async fn the_console_is_read_from_where_the_last_read_ended() {
    let Some(rt) = engine() else { return };
    // Both streams, and a line printed later on request (a file appearing).
    let (id, spec, _guard) = spec_running(
        "echo first-line; echo to-stderr >&2; \
         while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after-go; \
         while :; do sleep 1; done",
    );
    let cid = rt.create_and_start(&spec).await.unwrap();
    let mut log = rt.console_log(&cid, None).await.unwrap();
    for _ in 0..50 {
        let text = String::from_utf8_lossy(&log.bytes);
        if text.contains("first-line") && text.contains("to-stderr") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        log = rt.console_log(&cid, None).await.unwrap();
    }
    // Both streams, with the engine's timestamps taken off. The engine copies stdout and
    // stderr separately and stamps each line on arrival, so the two may swap places.
    let text = String::from_utf8_lossy(&log.bytes).to_string();
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines.sort_unstable();
    assert_eq!(lines, ["first-line\n", "to-stderr\n"], "{text:?}");
    assert!(!log.cut);
    let read_until = log.last_at.expect("lines have times");

    // Nothing new since: nothing read.
    let again = rt.console_log(&cid, Some(read_until)).await.unwrap();
    assert!(
        again.bytes.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&again.bytes)
    );

    docker_cli(&["exec", &cid, "touch", "/tmp/go"]);
    let mut next = rt.console_log(&cid, Some(read_until)).await.unwrap();
    for _ in 0..50 {
        if !next.bytes.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        next = rt.console_log(&cid, Some(read_until)).await.unwrap();
    }
    assert_eq!(String::from_utf8_lossy(&next.bytes), "after-go\n");
    assert!(next.last_at.unwrap() > read_until);

    // A paused container's log reads all the same.
    rt.pause(&cid).await.unwrap();
    let paused = rt.console_log(&cid, None).await.unwrap();
    assert!(String::from_utf8_lossy(&paused.bytes).ends_with("after-go\n"));
    assert!(rt.inspect_instance(&id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_chatty_console_is_bounded_and_says_when_it_was_cut() {
    let Some(rt) = engine() else { return };
    // 6000 short lines: more than one read's tail of lines, under the byte bound.
    let (_id, spec, _guard) = spec_running(
        "i=0; while [ $i -lt 6000 ]; do echo line-$i; i=$((i+1)); done; echo done; \
         while :; do sleep 1; done",
    );
    let cid = rt.create_and_start(&spec).await.unwrap();
    let mut log = rt.console_log(&cid, None).await.unwrap();
    for _ in 0..100 {
        if String::from_utf8_lossy(&log.bytes).ends_with("done\n") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        log = rt.console_log(&cid, None).await.unwrap();
    }
    let text = String::from_utf8_lossy(&log.bytes).to_string();
    assert!(
        text.ends_with("line-5999\ndone\n"),
        "{}",
        &text[text.len() - 40..]
    );
    assert!(log.bytes.len() <= CONSOLE_LIMIT);
    assert!(log.cut, "the first lines were beyond the tail read");
    assert!(!text.contains("line-0\n"));
}
