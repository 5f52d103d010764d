//! End to end over HTTP against an in-process ec2d driving the real Docker engine.

mod common;

use std::time::Duration;

use common::{docker, docker_available, tagged_test_ami, Ec2};
use ec2d::config::VmManager;
use ec2d::{App, Config};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_walkthrough_against_the_real_engine() {
    if !docker_available() {
        return;
    }
    let (ami, mut cleanup) = tagged_test_ami("e2e-busybox");

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path().to_path_buf());
    config.vm_manager = VmManager::Docker;
    let app = App::spawn(config).await.unwrap();
    let ec2 = Ec2::new(app.url(), "us-east-1");

    // The AMI was discovered before the API answered.
    let images = ec2
        .ok(
            "DescribeImages",
            &[
                ("Filter.1.Name", "tag:ec2_vm_manager"),
                ("Filter.1.Value.1", "docker"),
            ],
        )
        .await;
    assert!(
        images.all("imageId").contains(&ami.to_string()),
        "{}",
        images.body
    );

    let run = ec2
        .ok(
            "RunInstances",
            &[
                ("ImageId", ami.as_str()),
                ("MinCount", "2"),
                ("MaxCount", "2"),
            ],
        )
        .await;
    let ids = run.all("instanceId");
    assert_eq!(ids.len(), 2);
    cleanup.containers = ids
        .iter()
        .map(|id| format!("localstack-ec2.{id}"))
        .collect();
    for id in &ids {
        ec2.wait_state(id, "running", WAIT).await;
        let (ok, state) = docker(&[
            "inspect",
            "-f",
            "{{.State.Status}}",
            &format!("localstack-ec2.{id}"),
        ]);
        assert!(ok);
        assert_eq!(state, "running");
    }
    let described = ec2
        .ok("DescribeInstances", &[("InstanceId.1", &ids[0])])
        .await;
    let (_, real_ip) = docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.IPAddress}}",
        &format!("localstack-ec2.{}", ids[0]),
    ]);
    assert_eq!(described.one("privateIpAddress"), real_ip);

    ec2.ok("StopInstances", &[("InstanceId.1", &ids[0])]).await;
    ec2.wait_state(&ids[0], "stopped", WAIT).await;
    let name = format!("localstack-ec2.{}", ids[0]);
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Status}}", &name]).1,
        "paused"
    );

    ec2.ok("StartInstances", &[("InstanceId.1", &ids[0])]).await;
    ec2.wait_state(&ids[0], "running", WAIT).await;
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Status}}", &name]).1,
        "running"
    );

    let snap_name = format!("e2e-snap-{}", &ami.as_str()[4..12]);
    let created = ec2
        .ok(
            "CreateImage",
            &[("InstanceId", &ids[0]), ("Name", &snap_name)],
        )
        .await;
    let snap = created.one("imageId");
    cleanup
        .images
        .push(format!("localstack-ec2/{snap_name}:{snap}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let img = ec2.ok("DescribeImages", &[("ImageId.1", &snap)]).await;
        if img.one("imageState") == "available" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "image never available: {}",
            img.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        docker(&[
            "image",
            "inspect",
            &format!("localstack-ec2/{snap_name}:{snap}")
        ])
        .0
    );

    let from_snap = ec2
        .ok(
            "RunInstances",
            &[("ImageId", &snap), ("MinCount", "1"), ("MaxCount", "1")],
        )
        .await
        .one("instanceId");
    cleanup
        .containers
        .push(format!("localstack-ec2.{from_snap}"));
    ec2.wait_state(&from_snap, "running", WAIT).await;

    let mut terminate = vec![
        ("InstanceId.1", ids[0].as_str()),
        ("InstanceId.2", ids[1].as_str()),
    ];
    terminate.push(("InstanceId.3", from_snap.as_str()));
    let answer = ec2.ok("TerminateInstances", &terminate).await;
    assert_eq!(answer.all("currentState").len(), 3);
    for id in [&ids[0], &ids[1], &from_snap] {
        ec2.wait_state(id, "terminated", WAIT).await;
        assert!(
            !docker(&["inspect", &format!("localstack-ec2.{id}")]).0,
            "{id}'s container removed"
        );
    }

    let mocked = ec2
        .call(
            "RunInstances",
            &[
                ("ImageId", "ami-12345678"),
                ("MinCount", "1"),
                ("MaxCount", "1"),
            ],
        )
        .await;
    assert_eq!(mocked.status, 400);
    assert_eq!(
        mocked.error_code().as_deref(),
        Some("InvalidAMIID.NotFound")
    );
    app.shutdown().await.unwrap();
}
