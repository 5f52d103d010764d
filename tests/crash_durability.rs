//! Answered writes survive a SIGKILL: 32 clients, each on its own keep-alive connection, launch instances from the ec2d binary (mock mode) until it is killed mid-stream, and every instance an answer named is there after a restart.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::values;

const CLIENTS: usize = 32;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00";

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The ec2d binary in mock mode on `port` over `dir`, with no IMDS and no host changes.
fn spawn(dir: &Path, port: u16) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ec2d"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .args(["--vm-manager", "mock", "--imds", "false"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("EC2D_") || key.starts_with("EC2_") {
            command.env_remove(key);
        }
    }
    command.spawn().expect("ec2d starts")
}

async fn wait_healthy(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(response) = reqwest::get(format!("{base}/_ec2d/health")).await {
            if response.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("ec2d at {base} never became healthy");
}

async fn call(client: &reqwest::Client, base: &str, form: &[(&str, &str)]) -> Option<String> {
    let response = client
        .post(base)
        .header("Authorization", AUTH)
        .form(form)
        .send()
        .await
        .ok()?;
    let ok = response.status().is_success();
    let body = response.text().await.ok()?;
    assert!(ok, "an error answer: {body}");
    Some(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answered_launch_survives_a_sigkill_under_concurrent_load() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn(dir.path(), port);
    wait_healthy(&base).await;

    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (answered, stop, base) = (answered.clone(), stop.clone(), base.clone());
            tokio::spawn(async move {
                // A client of its own: one kept-alive connection per task.
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let form = [
                    ("Action", "RunInstances"),
                    ("Version", "2016-11-15"),
                    ("ImageId", "ami-0123abcd"),
                    ("MinCount", "1"),
                    ("MaxCount", "1"),
                ];
                while !stop.load(Ordering::Relaxed) {
                    // A request cut off by the kill has no answer, so it promised nothing.
                    let Some(body) = call(&client, &base, &form).await else {
                        break;
                    };
                    answered.lock().unwrap().extend(values(&body, "instanceId"));
                }
            })
        })
        .collect();
    // Kill once a good number of launches were answered, while the clients keep writing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.lock().unwrap().len() < 500 {
        assert!(
            Instant::now() < deadline,
            "too few launches answered in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn(dir.path(), port);
    wait_healthy(&base).await;
    let client = reqwest::Client::new();
    let body = call(
        &client,
        &base,
        &[("Action", "DescribeInstances"), ("Version", "2016-11-15")],
    )
    .await
    .expect("DescribeInstances answers");
    child.kill().unwrap();
    child.wait().unwrap();
    let stored: std::collections::HashSet<String> =
        values(&body, "instanceId").into_iter().collect();
    let lost: Vec<&String> = answered.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered launches lost: {:?}",
        lost.len(),
        answered.len(),
        &lost[..lost.len().min(5)]
    );
}
