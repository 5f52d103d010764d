//! `GET /metrics`: Prometheus text through the router (request counters move by exactly the
//! requests made, errors under their code, unknown actions under `unknown`), and the
//! reconcile, resource, engine and store metrics of an in-process ec2d in mock mode.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::api::Harness;
use common::Ec2;
use ec2d::{App, Config};

/// One scrape: each sample line's `name{labels}` to its value.
fn parse(page: &str) -> HashMap<String, f64> {
    page.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

async fn scrape(h: &Harness) -> HashMap<String, f64> {
    let reply = h
        .send(
            Request::builder()
                .method(Method::GET)
                .uri("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    parse(&reply.body)
}

fn requests(service: &str, action: &str, code: &str) -> String {
    format!(r#"ec2d_api_requests_total{{service="{service}",action="{action}",code="{code}"}}"#)
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn request_counters_move_by_exactly_the_requests_made() {
    let h = Harness::new();
    // Something counted before, so the deltas are from a non-empty page.
    h.post(&[("Action", "DescribeRegions")])
        .await
        .ok("DescribeRegions");
    let before = scrape(&h).await;

    for _ in 0..3 {
        h.post(&[("Action", "DescribeInstances")])
            .await
            .ok("DescribeInstances");
    }
    h.post(&[("Action", "DescribeInstances"), ("InstanceId.1", "i-nope")])
        .await
        .err("InvalidInstanceID.Malformed");
    for _ in 0..2 {
        h.post(&[("Action", "NoSuchAction")])
            .await
            .err("InvalidAction");
    }
    h.post(&[]).await.err("MissingAction");
    h.post_signed(
        "AKIDEXAMPLE/20240101/us-east-1/sts/aws4_request",
        &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
    )
    .await;
    // Scrapes and introspection are not API requests.
    scrape(&h).await;
    h.send(
        Request::builder()
            .uri("/_ec2d/health")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let after = scrape(&h).await;

    let expected = [
        (requests("ec2", "DescribeInstances", "ok"), 3.0),
        (
            requests("ec2", "DescribeInstances", "InvalidInstanceID.Malformed"),
            1.0,
        ),
        (requests("ec2", "unknown", "InvalidAction"), 2.0),
        (requests("ec2", "unknown", "MissingAction"), 1.0),
        (requests("sts", "GetCallerIdentity", "ok"), 1.0),
        (requests("ec2", "DescribeRegions", "ok"), 0.0),
    ];
    for (series, want) in &expected {
        assert_eq!(delta(&before, &after, series), *want, "{series}");
    }
    let total = |m: &HashMap<String, f64>| -> f64 {
        m.iter()
            .filter(|(k, _)| k.starts_with("ec2d_api_requests_total{"))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(total(&after) - total(&before), 8.0, "nothing else counted");
    // No action name a client made up becomes a label.
    assert!(!after.keys().any(|k| k.contains("NoSuchAction")));

    // One latency observation per request, per action.
    let count =
        r#"ec2d_api_request_duration_seconds_count{service="ec2",action="DescribeInstances"}"#;
    assert_eq!(delta(&before, &after, count), 4.0);
    let inf = r#"ec2d_api_request_duration_seconds_bucket{service="ec2",action="DescribeInstances",le="+Inf"}"#;
    assert_eq!(after[inf], after[count]);
    let sum = r#"ec2d_api_request_duration_seconds_sum{service="ec2",action="DescribeInstances"}"#;
    assert!(after[sum] > 0.0 && after[sum] < 10.0, "{}", after[sum]);
}

#[tokio::test]
async fn reconciles_resources_engine_and_store_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::spawn(Config::for_tests(dir.path().to_path_buf()))
        .await
        .unwrap();
    let ec2 = Ec2::new(app.url(), "us-east-1");
    let http = reqwest::Client::new();
    let scrape = || async {
        let response = http
            .get(format!("{}/metrics", app.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        parse(&response.text().await.unwrap())
    };

    let run = ec2
        .ok(
            "RunInstances",
            &[
                ("ImageId", "ami-0123abcd"),
                ("MinCount", "2"),
                ("MaxCount", "2"),
            ],
        )
        .await;
    for id in run.all("instanceId") {
        ec2.wait_state(&id, "running", Duration::from_secs(10))
            .await;
    }
    let running = r#"ec2d_resources{kind="instance",state="running"}"#;
    let m = scrape().await;
    assert_eq!(m.get(running), Some(&2.0), "{m:#?}");
    let instance_reconciles: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with(r#"ec2d_reconciles_total{kind="instance","#))
        .map(|(_, v)| v)
        .sum();
    assert!(instance_reconciles >= 2.0, "{m:#?}");
    assert!(m[r#"ec2d_reconcile_duration_seconds_count{kind="instance"}"#] >= 2.0);
    // The engine metrics are labelled by engine: its name in the health document's list.
    let health: serde_json::Value = http
        .get(format!("{}/_ec2d/health", app.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let engines = health["engines"].as_array().expect("an engines list");
    assert_eq!(engines.len(), 1, "{health:#}");
    assert_eq!(engines[0]["default"], true, "{health:#}");
    let name = engines[0]["name"].as_str().unwrap();
    assert_eq!(
        m[&format!(r#"ec2d_engine_reachable{{engine="{name}"}}"#)],
        1.0,
        "{m:#?}"
    );
    assert_eq!(
        m[&format!(r#"ec2d_engine_event_stream_reconnects_total{{engine="{name}"}}"#)],
        0.0,
        "{m:#?}"
    );
    assert_eq!(
        m.keys()
            .filter(|k| k.starts_with("ec2d_engine_reachable"))
            .count(),
        1,
        "one engine, one series: {m:#?}"
    );
    assert!(m["ec2d_store_size_bytes"] > 0.0);
    assert!(m.contains_key("ec2d_controller_queue_depth"));
    assert!(m.contains_key("ec2d_controller_reconciles_in_flight"));
    assert_eq!(
        m[r#"ec2d_api_requests_total{service="ec2",action="RunInstances",code="ok"}"#],
        1.0
    );

    app.shutdown().await.unwrap();
}
