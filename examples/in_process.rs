//! Runs an ec2d inside this process in mock mode (no Docker needed) and drives it over HTTP
//! the way an SDK does: launch two instances, wait for `running`, stop one, print the status.
//!
//! `cargo run --example in_process`

use std::time::Duration;

use ec2d::{App, Config};

async fn call(http: &reqwest::Client, url: &str, params: &[(&str, &str)]) -> String {
    let mut form = vec![("Version", "2016-11-15")];
    form.extend_from_slice(params);
    http.post(url)
        .form(&form)
        .send()
        .await
        .expect("ec2d answers")
        .text()
        .await
        .expect("a body")
}

/// The text of every `<tag>` element; enough XML for an example.
fn values(xml: &str, tag: &str) -> Vec<String> {
    xml.split(&format!("<{tag}>"))
        .skip(1)
        .filter_map(|rest| rest.split(&format!("</{tag}>")).next())
        .map(str::to_string)
        .collect()
}

#[tokio::main]
async fn main() {
    let data = tempfile_dir();
    let app = App::spawn(Config::for_tests(data.clone()))
        .await
        .expect("ec2d starts");
    let url = app.url();
    let http = reqwest::Client::new();
    println!("ec2d (mock) listening on {url}, data in {}", data.display());

    let run = call(
        &http,
        &url,
        &[
            ("Action", "RunInstances"),
            ("ImageId", "ami-0abc1234"),
            ("MinCount", "2"),
            ("MaxCount", "2"),
        ],
    )
    .await;
    let ids = values(&run, "instanceId");
    println!("RunInstances -> {ids:?}, state {:?}", values(&run, "name"));

    for _ in 0..100 {
        let described = call(&http, &url, &[("Action", "DescribeInstances")]).await;
        if values(&described, "name").iter().all(|s| s == "running") {
            println!("DescribeInstances -> all running");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let stop = call(
        &http,
        &url,
        &[("Action", "StopInstances"), ("InstanceId.1", &ids[0])],
    )
    .await;
    println!("StopInstances -> {:?}", values(&stop, "name"));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let status: serde_json::Value = http
        .get(format!("{url}/_ec2d/status"))
        .send()
        .await
        .expect("status answers")
        .json()
        .await
        .expect("json");
    print!("{}", ec2d::cli::render(&status));
    app.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&data);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ec2d-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
