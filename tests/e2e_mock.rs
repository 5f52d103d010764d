//! End to end through HTTP against an in-process ec2d with the in-memory runtime (`EC2_VM_MANAGER=mock`).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Ec2, Reply};
use ec2d::app::RunningApp;
use ec2d::{App, Config};

const WAIT: Duration = Duration::from_secs(10);

/// An in-process ec2d in mock mode over the data directory `dir`.
async fn spawn(dir: &Path) -> RunningApp {
    App::spawn(Config::for_tests(dir.to_path_buf()))
        .await
        .unwrap()
}

/// RunInstances of `count` instances of a mock AMI, which must succeed.
async fn run_instances(ec2: &Ec2, count: &str) -> Reply {
    ec2.ok(
        "RunInstances",
        &[
            ("ImageId", "ami-0123abcd"),
            ("MinCount", count),
            ("MaxCount", count),
        ],
    )
    .await
}

#[tokio::test]
async fn lifecycle_through_http_and_state_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let ec2 = Ec2::new(app.url(), "us-east-1");

    let run = run_instances(&ec2, "2").await;
    let ids = run.all("instanceId");
    assert_eq!(ids.len(), 2);
    assert_eq!(run.all("reservationId").len(), 1);
    assert!(run.body.contains("<name>pending</name>"), "{}", run.body);
    for id in &ids {
        ec2.wait_state(id, "running", WAIT).await;
    }

    let stop = ec2.ok("StopInstances", &[("InstanceId.1", &ids[0])]).await;
    assert!(stop.one("previousState").contains("<name>running</name>"));
    assert!(stop.one("currentState").contains("<name>stopping</name>"));
    ec2.wait_state(&ids[0], "stopped", WAIT).await;

    let start = ec2.ok("StartInstances", &[("InstanceId.1", &ids[0])]).await;
    assert!(start.one("currentState").contains("<name>pending</name>"));
    ec2.wait_state(&ids[0], "running", WAIT).await;

    let terminate = ec2
        .ok("TerminateInstances", &[("InstanceId.1", &ids[1])])
        .await;
    assert!(terminate
        .one("currentState")
        .contains("<name>shutting-down</name>"));
    ec2.wait_state(&ids[1], "terminated", WAIT).await;

    // The status endpoint shows desired vs observed per instance.
    let (code, status) = ec2.get_json("/_ec2d/status").await;
    assert_eq!(code, 200);
    let instances = status["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2);
    assert!(
        instances.iter().all(|i| i["converged"] == true),
        "{status:#}"
    );
    let (code, one) = ec2
        .get_json(&format!("/_ec2d/status/instances/{}", ids[0]))
        .await;
    assert_eq!(code, 200);
    assert_eq!(one["state"], "running");
    let (code, health) = ec2.get_json("/_ec2d/health").await;
    assert_eq!(
        (code, health["ok"].clone()),
        (200, serde_json::Value::Bool(true))
    );

    app.shutdown().await.unwrap();

    // A new process on the same data directory still knows every instance.
    let app = spawn(dir.path()).await;
    let ec2 = Ec2::new(app.url(), "us-east-1");
    let described = ec2.ok("DescribeInstances", &[]).await;
    let mut seen = described.all("instanceId");
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);
    ec2.wait_state(&ids[0], "running", WAIT).await;
    assert_eq!(ec2.state(&ids[1]).await, "terminated");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn engines_configured_for_zones_change_nothing_yet() {
    // EC2D_ENGINES is parsed and its engines made (a mock runtime each), but every instance
    // still runs on the default engine: a launch into a zone named converges as before.
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path().to_path_buf());
    config.engines = ec2d::config::EngineZones::parse(
        "us-east-1b=tcp://10.0.0.12:2375, us-east-1c=http://10.0.0.12:2375/",
    )
    .unwrap();
    let app = App::spawn(config).await.unwrap();
    let ec2 = Ec2::new(app.url(), "us-east-1");
    for zone in ["us-east-1a", "us-east-1b", "us-east-1c"] {
        let run = ec2
            .ok(
                "RunInstances",
                &[
                    ("ImageId", "ami-0123abcd"),
                    ("MinCount", "1"),
                    ("MaxCount", "1"),
                    ("Placement.AvailabilityZone", zone),
                ],
            )
            .await;
        assert!(run.body.contains(zone), "{}", run.body);
        ec2.wait_state(&run.one("instanceId"), "running", WAIT)
            .await;
    }
    // Health and status list both engines, each pinged, with the zones it serves.
    for path in ["/_ec2d/health", "/_ec2d/status"] {
        let doc: serde_json::Value = reqwest::get(format!("{}{path}", app.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let engines = doc["engines"].as_array().expect("an engines list");
        assert_eq!(engines.len(), 2, "{path}: {doc:#}");
        assert_eq!(engines[0]["default"], true, "{path}: {doc:#}");
        assert_eq!(engines[0]["zones"], serde_json::json!([]));
        assert_eq!(
            engines[1]["name"], "tcp://10.0.0.12:2375",
            "{path}: {doc:#}"
        );
        assert_eq!(engines[1]["default"], false);
        assert_eq!(
            engines[1]["zones"],
            serde_json::json!(["us-east-1b", "us-east-1c"])
        );
        assert!(
            engines.iter().all(|e| e["reachable"] == true),
            "{path}: {doc:#}"
        );
        assert_eq!(doc["engine"]["reachable"], true, "{path}: {doc:#}");
    }
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn regions_are_separate() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let east = Ec2::new(app.url(), "us-east-1");
    let west = Ec2::new(app.url(), "eu-west-1");
    let run = run_instances(&west, "1").await;
    let id = run.one("instanceId");
    assert!(run.body.contains("eu-west-1a"), "{}", run.body);
    assert!(west.ok("DescribeInstances", &[]).await.body.contains(&id));
    assert!(!east.ok("DescribeInstances", &[]).await.body.contains(&id));
    let missing = east.call("StopInstances", &[("InstanceId.1", &id)]).await;
    assert_eq!(
        missing.error_code().as_deref(),
        Some("InvalidInstanceID.NotFound")
    );
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_corrupt_record_is_reported_and_skipped_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let good = ec2d::model::fixtures::instance();
    {
        let store = ec2d::store::Store::open(&dir.path().join("")).unwrap();
        // Config::for_tests points the store at the data dir itself.
        store
            .instances()
            .create(std::slice::from_ref(&good))
            .unwrap();
        store
            .instances()
            .insert_raw_spec_for_test("i-0badbadbadbadbad0", b"{\"apiVersion\": 3, truncated")
            .unwrap();
        store.flush().await.unwrap();
    }
    let app = spawn(dir.path()).await;
    let ec2 = Ec2::new(app.url(), "us-east-1");

    let described = ec2.ok("DescribeInstances", &[]).await;
    assert_eq!(
        described.all("instanceId"),
        vec![good.metadata.name.clone()]
    );
    ec2.wait_state(&good.metadata.name, "running", WAIT).await;

    let (code, status) = ec2.get_json("/_ec2d/status").await;
    assert_eq!(code, 200);
    let corrupt = status["corruptRecords"].as_array().unwrap();
    assert_eq!(corrupt.len(), 1, "{status:#}");
    assert_eq!(corrupt[0]["key"], "i-0badbadbadbadbad0");

    // The rest of the store keeps working: new launches succeed.
    let run = run_instances(&ec2, "1").await;
    ec2.wait_state(&run.one("instanceId"), "running", WAIT)
        .await;
    // Asking for the corrupt one by id is an error envelope, not a crash.
    let reply = ec2
        .call(
            "DescribeInstances",
            &[("InstanceId.1", "i-0badbadbadbadbad0")],
        )
        .await;
    assert!(reply.error_code().is_some(), "{}", reply.body);
    app.shutdown().await.unwrap();
}
