//! Shared helpers for black-box tests: a tiny EC2 Query client over HTTP and XML field extraction.
#![allow(dead_code)]

/// The in-process `api::router` harness (oneshot, temporary store) of the protocol tests.
pub mod api;

use std::time::Duration;

/// A client that speaks the EC2 Query protocol to one ec2d, the way SDKs do (POST form).
pub struct Ec2 {
    http: reqwest::Client,
    base: String,
    region: String,
}

/// One response: HTTP status and body.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// Every text value of `<tag>…</tag>`, in document order.
    pub fn all(&self, tag: &str) -> Vec<String> {
        values(&self.body, tag)
    }

    /// The first text value of `<tag>`; panics with the body when absent.
    pub fn one(&self, tag: &str) -> String {
        self.all(tag)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no <{tag}> in {}", self.body))
    }

    /// The EC2 error code, if this is an error envelope.
    pub fn error_code(&self) -> Option<String> {
        self.body
            .contains("<Response><Errors>")
            .then(|| self.one("Code"))
    }
}

/// Text values of every `<tag>` element (no nesting of the same tag in EC2 responses).
pub fn values(body: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(after[..end].to_string());
        rest = &after[end + close.len()..];
    }
    out
}

impl Ec2 {
    /// A client for `base` (e.g. `http://127.0.0.1:4566`) in `region`.
    pub fn new(base: impl Into<String>, region: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            base: base.into(),
            region: region.to_string(),
        }
    }

    /// Sends `Action` with `params` and returns the reply, whatever its status.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Reply {
        let mut form: Vec<(&str, &str)> = vec![("Action", action), ("Version", "2016-11-15")];
        form.extend_from_slice(params);
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/{}/ec2/aws4_request, SignedHeaders=host, Signature=00",
            self.region
        );
        let response = self
            .http
            .post(&self.base)
            .header("Authorization", auth)
            .form(&form)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body read");
        Reply { status, body }
    }

    /// Like `call`, but panics unless the answer is a success.
    pub async fn ok(&self, action: &str, params: &[(&str, &str)]) -> Reply {
        let reply = self.call(action, params).await;
        assert_eq!(reply.status, 200, "{action} failed: {}", reply.body);
        reply
    }

    /// The state name of one instance.
    pub async fn state(&self, id: &str) -> String {
        let reply = self.ok("DescribeInstances", &[("InstanceId.1", id)]).await;
        values(&reply.one("instanceState"), "name")[0].clone()
    }

    /// Polls until the instance reads `want`, panicking after `timeout` with the last state.
    pub async fn wait_state(&self, id: &str, want: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            last = self.state(id).await;
            if last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{id} never reached {want}; last state {last}");
    }

    /// POSTs to a control path (`/_ec2d/reset`), returning the status and JSON body.
    pub async fn post_json(&self, path: &str) -> (u16, serde_json::Value) {
        Self::json_of(self.http.post(format!("{}{path}", self.base))).await
    }

    /// GET on a path of the same server, parsed as JSON.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        Self::json_of(self.http.get(format!("{}{path}", self.base))).await
    }

    async fn json_of(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }
}

/// The image the real-engine tests run their instances from; built on demand.
pub const TEST_IMAGE: &str = "ec2d-test/busybox:latest";

/// The one gate of every test that needs a real Docker engine: whether the engine answers
/// (`docker info`) and the busybox test image is there, building it with
/// `tests/support/build-test-images.sh` when it is missing. Without either the test is skipped
/// with a loud banner (the caller returns early on `false`), unless `EC2D_REQUIRE_DOCKER=1`
/// (as `scripts/test.sh` and CI set it): then it fails.
pub fn docker_available() -> bool {
    let required = std::env::var("EC2D_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
    let skip = |why: String| {
        if required {
            panic!("EC2D_REQUIRE_DOCKER=1 but {why}");
        }
        eprintln!("\n**************** SKIPPED: {why} ****************\n");
        false
    };
    let info = std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match info {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return skip(format!("no docker engine answers ({})", stderr.trim()));
        }
        Err(e) => return skip(format!("no docker CLI ({e})")),
    }
    if !docker(&["image", "inspect", TEST_IMAGE]).0 {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/build-test-images.sh"
        );
        let status = std::process::Command::new(script).arg("busybox").status();
        if !matches!(status, Ok(s) if s.success()) {
            return skip(format!(
                "test image {TEST_IMAGE} is missing and {script} failed: {status:?}"
            ));
        }
    }
    true
}

/// What a real-engine test made, removed whatever happens (on drop): containers, AMI tags, and
/// the Docker networks of its VPCs.
#[derive(Default)]
pub struct Cleanup {
    pub images: Vec<String>,
    pub containers: Vec<String>,
    pub vpcs: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        for i in &self.images {
            let _ = docker(&["rmi", "-f", i]);
        }
        for vpc in &self.vpcs {
            let label = format!("label=ec2d.vpc-id={vpc}");
            let (_, networks) = docker(&["network", "ls", "-q", "--filter", &label]);
            for network in networks.split_whitespace() {
                remove_network(network);
            }
        }
    }
}

/// Removes a test's VPC network, taking off whatever is still attached first (a leftover
/// network would make the next run's VPC of the same block fall back to the default bridge).
fn remove_network(network: &str) {
    for _ in 0..10 {
        if docker(&["network", "rm", network]).0 {
            return;
        }
        let (_, attached) = docker(&[
            "network",
            "inspect",
            "--format",
            "{{range $id, $c := .Containers}}{{$id}} {{end}}",
            network,
        ]);
        for container in attached.split_whitespace() {
            let _ = docker(&["network", "disconnect", "-f", network, container]);
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    eprintln!("test cleanup: could not remove network {network}");
}

/// A fresh AMI: the test image tagged `localstack-ec2/<name>:<id>`, with the cleanup that
/// removes the tag (and, once the test adds them, its containers and VPC networks).
pub fn tagged_test_ami(name: &str) -> (ec2d::model::ImageId, Cleanup) {
    let ami = ec2d::model::ImageId::generate();
    let source = format!("localstack-ec2/{name}:{ami}");
    let mut cleanup = Cleanup::default();
    cleanup.images.push(source.clone());
    assert!(
        docker(&["tag", TEST_IMAGE, &source]).0,
        "docker tag {source}"
    );
    (ami, cleanup)
}

/// Runs the docker CLI; returns success and trimmed stdout.
pub fn docker(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}
