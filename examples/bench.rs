//! The ec2d benchmark (issues 5 and 16).
//!
//! Starts the RELEASE `ec2d` binary as child processes (so their CPU time and memory can be
//! read from `/proc/<pid>`), drives them over HTTP the way clients do (SigV4-signed EC2 Query
//! POSTs), measures plain Docker next to them with the same client code (a raw HTTP/1.1 client
//! speaks to ec2d over TCP and to the Docker Engine API over its unix socket), prints one table,
//! writes `bench-results/latest.json` and regenerates `BENCHMARKS.md` from that JSON.
//!
//! ```sh
//! cargo run --release --example bench                        # full run (about 60 minutes)
//! cargo run --release --example bench -- --quick             # short smoke run
//! cargo run --release --example bench -- --only launch,fleet # some sections only
//! cargo run --release --example bench -- --render-only       # BENCHMARKS.md from latest.json
//! ```
//!
//! Sections (`--only`): `run` (RunInstances answer time with 0/100/1000 stored, mock mode),
//! `describe` (DescribeInstances over 1000, mock mode), `launch` (RunInstances until running
//! vs `docker run -d`), `stopstart` (Stop/StartInstances vs `docker pause`/`unpause`), `fleet`
//! (MaxCount 50 vs 50 `docker run -d`), `idle` (CPU and RSS over 60 s with 200 running),
//! `recovery` (SIGKILL with 200 instances, restart, until all converged, vs `docker ps`).
//! Issue 16's scale: `scale` (mock, 10,000 stored: DescribeInstances all and filtered to 10,
//! RunInstances at 10,000 vs 0, DescribeInstances by id with 32 clients, RSS), `throughput`
//! (mock: RunInstances with 32 clients, ec2d's and the bench's own CPU per request, nothing
//! answered lost to a SIGKILL), `startup` (mock: restart with 10,000 stored until the first
//! answer and until every object is reconciled once), `soak` (docker: mixed requests and
//! container churn at a steady rate for 30 minutes, `--soak-secs`; RSS, fds and disk use
//! growth, 5xx answers). `fleet` also launches 200 at once (vs 200 parallel `docker run -d`,
//! with DescribeInstances' p99 meanwhile), and `idle`/`recovery` hold 200 running.
//!
//! A full run writes `bench-results/latest.json` and `BENCHMARKS.md`; `--quick` and `--only`
//! runs write `bench-results/partial.json` and leave both alone unless `--publish` is given.
//! The release `ec2d` is built first (`cargo build --release --bin ec2d`; `--no-build` skips).
//!
//! Needs a Docker engine on the local socket (`DOCKER_HOST=unix://…` is honoured) and the
//! image `ec2d-test/busybox:latest` (`tests/support/build-test-images.sh busybox`). Everything
//! the bench creates is removed at the end, on error and on Ctrl-C: the AMI tag
//! `localstack-ec2/bench:ami-0bec4000000000001` (unless it existed before), the instance containers
//! `localstack-ec2.<id>` of the instances it launched, its baseline containers `ec2d-bench-*`,
//! its ec2d processes and their data directories.
//!
//! SigV4 is implemented here with `sha2` and a small HMAC-SHA256 built on it (the crate has no
//! `hmac` or `aws-sigv4` dependency); `sigv4_matches_the_aws_test_suite` checks it against
//! AWS's published `get-vanilla` vector (`cargo test --release --example bench`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::process::{Child, Command};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type R<T> = Result<T, BoxError>;

macro_rules! bail {
    ($($t:tt)*) => {
        return Err(format!($($t)*).into())
    };
}

/// The AMI id the bench tags its image with (and launches in mock mode).
const AMI_ID: &str = "ami-0bec4000000000001";
/// The repository of that tag: `localstack-ec2/<name>:<ami-id>` makes an image an AMI.
const AMI_REPO: &str = "localstack-ec2/bench";
/// Region of every request (the SigV4 credential scope).
const REGION: &str = "us-east-1";
/// What ec2d's instances run is a keep-alive shell; the Docker baselines run the same loop.
const KEEP_ALIVE: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";
/// ec2d's reconcile concurrency, passed explicitly so the fleet baseline uses the same.
const CONCURRENCY: usize = 16;
/// How long the soak's ec2d keeps terminated instances (see the soak's method).
const SOAK_TERMINATED_RETENTION_SECS: u64 = 120;
const SECTIONS: &[&str] = &[
    "run",
    "describe",
    "launch",
    "stopstart",
    "fleet",
    "idle",
    "recovery",
    "scale",
    "throughput",
    "startup",
    "soak",
];
/// Concurrent clients of the throughput figures (issue 16), each on its own connection.
const CLIENTS: usize = 32;
/// RunInstances' largest MaxCount (`MAX_COUNT_LIMIT` in src/api/actions/run_instances.rs).
const MAX_COUNT: usize = 1000;
/// Instances per RunInstances when the bench fills a store. Not `MAX_COUNT`: ec2d at
/// 92256a0 deadlocks when one transaction's watch events overflow sled's subscriber channel
/// while the watch consumer waits for sled's lock (10 calls of 1,000 hang it), so the store is
/// filled in calls of 100, each waited for.
const POPULATE_BATCH: usize = 100;

// ---------------------------------------------------------------------------------------------
// Command line and plan
// ---------------------------------------------------------------------------------------------

/// ec2d benchmark: see the file header.
#[derive(Parser, Debug, Clone)]
#[command(name = "bench")]
struct Args {
    /// Short smoke run: few repetitions, short windows, 10-instance fleets; the figures are
    /// not comparable with a full run. Writes bench-results/partial.json.
    #[arg(long)]
    quick: bool,
    /// Run only these sections (repeatable or comma separated): run, describe, launch,
    /// stopstart, fleet, idle, recovery, scale, throughput, startup, soak. Writes
    /// bench-results/partial.json.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Regenerate BENCHMARKS.md from bench-results/latest.json without measuring anything.
    #[arg(long)]
    render_only: bool,
    /// Also write latest.json and BENCHMARKS.md for a --quick or --only run.
    #[arg(long)]
    publish: bool,
    /// The ec2d binary [default: target/release/ec2d, built first].
    #[arg(long)]
    ec2d_bin: Option<PathBuf>,
    /// Do not run `cargo build --release --bin ec2d` first.
    #[arg(long)]
    no_build: bool,
    /// First of the 8 consecutive local TCP ports the bench's ec2d processes listen on
    /// (below Linux's ephemeral range, so other programs' connections cannot take them).
    #[arg(long, default_value_t = 31310)]
    port_base: u16,
    /// Interval of every "until <state>" polling loop, identical on both sides (ms).
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// Polling interval of the stop/start section, identical on both sides (ms). Pause and
    /// unpause take ~10-20 ms, so polling must be much finer than the 20% the target allows:
    /// a 5 ms poll alone adds ~3 ms on average to the asynchronous side (half the interval
    /// plus the timer's rounding up) while Docker's synchronous call is seen at once.
    #[arg(long, default_value_t = 1)]
    transition_poll_ms: u64,
    /// The image used as the AMI and by the Docker baselines.
    #[arg(long, default_value = "ec2d-test/busybox:latest")]
    image: String,
    /// Where the ec2d data directories go [default: the system temp dir]; a tmpfs here
    /// (e.g. /dev/shm) takes the disk's fsync out of the request path (a diagnostic).
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Keep the work directory (ec2d data directories and logs) instead of removing it.
    #[arg(long)]
    keep: bool,
    /// Length of the soak section in seconds [default: 1800, --quick 20].
    #[arg(long)]
    soak_secs: Option<u64>,
}

/// How much of everything a run does.
#[derive(Debug, Clone, Serialize)]
struct Plan {
    run_runs: usize,
    run_requests: usize,
    run_warmup: usize,
    describe_instances: usize,
    describe_runs: usize,
    describe_requests: usize,
    describe_throughput_secs: f64,
    describe_concurrency: usize,
    launch_rounds: usize,
    stopstart_pairs: usize,
    fleet_pairs: usize,
    fleet_size: usize,
    steady_size: usize,
    idle_secs: u64,
    idle_window_secs: u64,
    recovery_runs: usize,
    scale_instances: usize,
    scale_runs: usize,
    scale_describe_all: usize,
    scale_requests: usize,
    scale_throughput_secs: f64,
    throughput_runs: usize,
    throughput_secs: f64,
    throughput_warmup_secs: f64,
    startup_instances: usize,
    startup_runs: usize,
    fleet_large_pairs: usize,
    fleet_large_size: usize,
    soak_secs: u64,
    soak_rate: f64,
    soak_pool: usize,
    soak_sample_secs: u64,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                run_runs: 2,
                run_requests: 30,
                run_warmup: 5,
                describe_instances: 1000,
                describe_runs: 2,
                describe_requests: 20,
                describe_throughput_secs: 1.0,
                describe_concurrency: 4,
                launch_rounds: 2,
                stopstart_pairs: 2,
                fleet_pairs: 1,
                fleet_size: 10,
                steady_size: 10,
                idle_secs: 10,
                idle_window_secs: 5,
                recovery_runs: 2,
                scale_instances: 1000,
                scale_runs: 2,
                scale_describe_all: 5,
                scale_requests: 20,
                scale_throughput_secs: 1.0,
                throughput_runs: 1,
                throughput_secs: 2.0,
                throughput_warmup_secs: 0.5,
                startup_instances: 1000,
                startup_runs: 2,
                fleet_large_pairs: 1,
                fleet_large_size: 20,
                soak_secs: 20,
                soak_rate: 10.0,
                soak_pool: 4,
                soak_sample_secs: 2,
            }
        } else {
            Self {
                run_runs: 8,
                run_requests: 100,
                run_warmup: 10,
                describe_instances: 1000,
                describe_runs: 5,
                describe_requests: 100,
                describe_throughput_secs: 3.0,
                describe_concurrency: 4,
                launch_rounds: 9,
                stopstart_pairs: 21,
                fleet_pairs: 3,
                fleet_size: 50,
                steady_size: 200,
                idle_secs: 60,
                idle_window_secs: 10,
                recovery_runs: 5,
                scale_instances: 10_000,
                scale_runs: 5,
                scale_describe_all: 20,
                scale_requests: 100,
                scale_throughput_secs: 3.0,
                throughput_runs: 3,
                throughput_secs: 10.0,
                throughput_warmup_secs: 2.0,
                startup_instances: 10_000,
                startup_runs: 5,
                fleet_large_pairs: 2,
                fleet_large_size: 200,
                soak_secs: 1800,
                soak_rate: 10.0,
                soak_pool: 20,
                soak_sample_secs: 10,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

/// A target: the figure's median (or max) must be below (or at most) the limit.
#[derive(Debug, Clone, Serialize)]
struct Target {
    op: &'static str,
    limit: f64,
    on: &'static str,
    text: String,
}

impl Target {
    fn below(limit: f64, text: &str) -> Option<Self> {
        Some(Self {
            op: "<",
            limit,
            on: "median",
            text: text.to_string(),
        })
    }
    fn at_most(limit: f64, text: &str) -> Option<Self> {
        Some(Self {
            op: "<=",
            limit,
            on: "median",
            text: text.to_string(),
        })
    }
    fn at_least(limit: f64, text: &str) -> Option<Self> {
        Some(Self {
            op: ">=",
            limit,
            on: "median",
            text: text.to_string(),
        })
    }
    fn max_below(limit: f64, text: &str) -> Option<Self> {
        Some(Self {
            op: "<",
            limit,
            on: "max",
            text: text.to_string(),
        })
    }
}

/// One reported figure: median, min and max over its repeated runs (pairs, windows).
#[derive(Debug, Clone, Serialize)]
struct Figure {
    section: String,
    id: String,
    label: String,
    unit: String,
    median: f64,
    min: f64,
    max: f64,
    n: usize,
    values: Vec<f64>,
    target: Option<Target>,
    met: Option<bool>,
    note: String,
}

fn figure(
    section: &str,
    id: &str,
    label: &str,
    unit: &str,
    values: &[f64],
    target: Option<Target>,
    note: &str,
) -> Figure {
    let s = sorted(values);
    let (median, min, max) = if s.is_empty() {
        (f64::NAN, f64::NAN, f64::NAN)
    } else {
        (median_of(&s), s[0], s[s.len() - 1])
    };
    let met = target.as_ref().map(|t| {
        let v = if t.on == "max" { max } else { median };
        match t.op {
            "<" => v < t.limit,
            ">=" => v >= t.limit,
            _ => v <= t.limit,
        }
    });
    Figure {
        section: section.to_string(),
        id: id.to_string(),
        label: label.to_string(),
        unit: unit.to_string(),
        median,
        min,
        max,
        n: values.len(),
        values: values.to_vec(),
        target,
        met,
        note: note.to_string(),
    }
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s
}

fn median_of(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client (keep-alive, Content-Length and chunked bodies), used for both
// ec2d (TCP) and the Docker Engine API (unix socket), so both sides are measured alike.
// ---------------------------------------------------------------------------------------------

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug, Clone)]
enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

struct Http {
    endpoint: Endpoint,
    host: String,
    stream: Option<Box<dyn Io>>,
    buf: Vec<u8>,
}

struct Resp {
    status: u16,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> R<Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn read_more(stream: &mut Box<dyn Io>, buf: &mut Vec<u8>) -> R<usize> {
    let len = buf.len();
    buf.resize(len + 64 * 1024, 0);
    let n = stream.read(&mut buf[len..]).await;
    buf.truncate(len + *n.as_ref().unwrap_or(&0));
    Ok(n?)
}

impl Http {
    fn new(endpoint: Endpoint) -> Self {
        let host = match &endpoint {
            Endpoint::Tcp(addr) => addr.to_string(),
            Endpoint::Unix(_) => "docker".to_string(),
        };
        Self {
            endpoint,
            host,
            stream: None,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    async fn connect(&mut self) -> R<()> {
        let stream: Box<dyn Io> = match &self.endpoint {
            Endpoint::Tcp(addr) => {
                let s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Endpoint::Unix(path) => Box::new(UnixStream::connect(path).await?),
        };
        self.stream = Some(stream);
        self.buf.clear();
        Ok(())
    }

    /// One request on the kept-alive connection; a connection the server closed while idle is
    /// replaced once (nothing of the response was received, so the request was not processed).
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> R<Resp> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (k, v) in headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        if !body.is_empty() || method != "GET" {
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
        }
        head.push_str("\r\n");
        let mut wire = head.into_bytes();
        wire.extend_from_slice(body);
        for attempt in 0..2 {
            let reused = self.stream.is_some();
            if !reused {
                self.connect().await?;
            }
            match self.exchange(&wire).await {
                Ok(Some(resp)) => return Ok(resp),
                Ok(None) if reused && attempt == 0 => {
                    self.stream = None;
                }
                Ok(None) => {
                    self.stream = None;
                    bail!(
                        "{:?} closed the connection without answering",
                        self.endpoint
                    )
                }
                Err(e) => {
                    self.stream = None;
                    return Err(e);
                }
            }
        }
        bail!("{:?}: no answer", self.endpoint)
    }

    /// `Ok(None)`: the connection was closed before any byte of a response arrived.
    async fn exchange(&mut self, wire: &[u8]) -> R<Option<Resp>> {
        let Self { stream, buf, .. } = self;
        let stream = stream.as_mut().expect("connected");
        if stream.write_all(wire).await.is_err() {
            return Ok(None);
        }
        let header_end = loop {
            if let Some(p) = find(buf, b"\r\n\r\n") {
                break p;
            }
            match read_more(stream, buf).await {
                Ok(0) | Err(_) if buf.is_empty() => return Ok(None),
                Ok(0) => bail!("connection closed inside a response head"),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        };
        let head = std::str::from_utf8(&buf[..header_end])?.to_string();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or("malformed status line")?;
        let mut content_length = None;
        let mut chunked = false;
        let mut close = false;
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.parse::<usize>().ok(),
                    "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut pos = header_end + 4;
        let mut body = Vec::new();
        if chunked {
            loop {
                let line_end = loop {
                    if let Some(p) = find(&buf[pos..], b"\r\n") {
                        break pos + p;
                    }
                    if read_more(stream, buf).await? == 0 {
                        bail!("connection closed inside a chunked body");
                    }
                };
                let size_text = std::str::from_utf8(&buf[pos..line_end])?;
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
                pos = line_end + 2;
                if size == 0 {
                    // Optional trailers, then an empty line.
                    loop {
                        if let Some(p) = find(&buf[pos..], b"\r\n") {
                            pos += p + 2;
                            if p == 0 {
                                break;
                            }
                            continue;
                        }
                        if read_more(stream, buf).await? == 0 {
                            bail!("connection closed inside chunked trailers");
                        }
                    }
                    break;
                }
                while buf.len() < pos + size + 2 {
                    if read_more(stream, buf).await? == 0 {
                        bail!("connection closed inside a chunk");
                    }
                }
                body.extend_from_slice(&buf[pos..pos + size]);
                pos += size + 2;
            }
        } else if let Some(n) = content_length {
            while buf.len() < pos + n {
                if read_more(stream, buf).await? == 0 {
                    bail!("connection closed inside a body");
                }
            }
            body.extend_from_slice(&buf[pos..pos + n]);
            pos += n;
        } else if status == 204 || status == 304 || (100..200).contains(&status) {
        } else {
            while read_more(stream, buf).await? > 0 {}
            body.extend_from_slice(&buf[pos..]);
            pos = buf.len();
            close = true;
        }
        buf.drain(..pos);
        if close {
            self.stream = None;
        }
        Ok(Some(Resp { status, body }))
    }
}

// ---------------------------------------------------------------------------------------------
// SigV4 (sha2 + HMAC-SHA256 built on it)
// ---------------------------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// HMAC-SHA256 (RFC 2104) over `sha2`.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for i in 0..64 {
        ipad[i] ^= block[i];
        opad[i] ^= block[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// The SigV4 signature of a canonical request, and its credential scope (the whole
/// derivation; `Signer` keeps the signing key, and the tests check both agree).
#[cfg(test)]
fn sigv4_signature(
    secret: &str,
    amz_date: &str,
    region: &str,
    service: &str,
    canonical_request: &str,
) -> (String, String) {
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let k_signing = signing_key(secret, date, region, service);
    (
        sign_with_key(&k_signing, amz_date, &scope, canonical_request),
        scope,
    )
}

/// SigV4's derived signing key: it depends only on the secret, the day, the region and the
/// service, so a signer may keep it for the day (four HMACs fewer per request).
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

fn sign_with_key(k_signing: &[u8], amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    hex(&hmac_sha256(k_signing, string_to_sign.as_bytes()))
}

/// `(lowercase name, value)` headers, sorted by name, give the canonical request's header part.
fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload_sha256: &str,
) -> String {
    let mut canon_headers = String::new();
    let mut signed = Vec::new();
    for (k, v) in headers {
        let _ = writeln!(canon_headers, "{k}:{}", v.trim());
        signed.push(*k);
    }
    format!(
        "{method}\n{path}\n{query}\n{canon_headers}\n{}\n{payload_sha256}",
        signed.join(";")
    )
}

struct Signer {
    access_key: String,
    secret: String,
    region: String,
    /// `(unix second, X-Amz-Date, signing key, credential scope)` of the last signature: the
    /// date is formatted once a second and the key derived once a day, so a request costs
    /// two SHA-256 of its own (payload, canonical request) and one HMAC.
    cache: Option<(u64, String, [u8; 32], String)>,
}

const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

impl Signer {
    /// The `X-Amz-Date` and `Authorization` headers of an EC2 Query POST to `/`.
    fn sign(&mut self, host: &str, body: &str) -> (String, String) {
        let now = SystemTime::now();
        let second = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if self.cache.as_ref().map(|c| c.0) != Some(second) {
            let fmt =
                time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
            let amz_date = OffsetDateTime::from(now)
                .format(&fmt)
                .expect("formattable date");
            let date = &amz_date[..8];
            let (key, scope) = match self.cache.take() {
                Some((_, old, key, scope)) if old[..8] == *date => (key, scope),
                _ => (
                    signing_key(&self.secret, date, &self.region, "ec2"),
                    format!("{date}/{}/ec2/aws4_request", self.region),
                ),
            };
            self.cache = Some((second, amz_date, key, scope));
        }
        let (_, amz_date, k_signing, scope) = self.cache.as_ref().expect("just set");
        let amz_date = amz_date.clone();
        let payload = hex(&Sha256::digest(body.as_bytes()));
        let canonical = canonical_request(
            "POST",
            "/",
            "",
            &[
                ("content-type", FORM_CONTENT_TYPE),
                ("host", host),
                ("x-amz-date", &amz_date),
            ],
            &payload,
        );
        let signature = sign_with_key(k_signing, &amz_date, scope, &canonical);
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=content-type;host;x-amz-date, Signature={signature}",
            self.access_key
        );
        (amz_date, auth)
    }
}

/// `application/x-www-form-urlencoded` the way the AWS SDKs write it (RFC 3986 unreserved kept).
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The EC2 client
// ---------------------------------------------------------------------------------------------

type Params = Vec<(String, String)>;

fn p(k: impl Into<String>, v: impl Into<String>) -> (String, String) {
    (k.into(), v.into())
}

fn id_params(ids: &[String]) -> Params {
    ids.iter()
        .enumerate()
        .map(|(i, id)| p(format!("InstanceId.{}", i + 1), id.clone()))
        .collect()
}

struct Ec2 {
    http: Http,
    host: String,
    signer: Signer,
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

/// `(instanceId, instanceState.name)` of every instance item of a RunInstances or
/// DescribeInstances answer (an instance item's `instanceId` is followed by its `imageId`).
fn instance_states(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<instanceId>") {
        let after = &rest[i + "<instanceId>".len()..];
        let Some(end) = after.find("</instanceId>") else {
            break;
        };
        let id = &after[..end];
        let tail = &after[end + "</instanceId>".len()..];
        if tail.starts_with("<imageId>") {
            if let Some(state) = tail
                .find("<instanceState>")
                .and_then(|s| between(&tail[s..], "<name>", "</name>"))
            {
                out.push((id.to_string(), state.to_string()));
            }
        }
        rest = tail;
    }
    out
}

impl Ec2 {
    fn new(port: u16) -> Self {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        Self {
            http: Http::new(Endpoint::Tcp(addr)),
            host: addr.to_string(),
            signer: Signer {
                access_key: "test".to_string(),
                secret: "test".to_string(),
                region: REGION.to_string(),
                cache: None,
            },
        }
    }

    /// One signed call; the duration is the HTTP exchange (request written to answer read).
    async fn call(&mut self, action: &str, params: &[(String, String)]) -> R<(Duration, String)> {
        let (elapsed, resp) = self.call_raw(action, params).await?;
        let text = resp.text();
        if resp.status != 200 {
            bail!(
                "{action} answered {}: {} {}",
                resp.status,
                between(&text, "<Code>", "</Code>").unwrap_or(""),
                between(&text, "<Message>", "</Message>").unwrap_or(&text)
            );
        }
        Ok((elapsed, text))
    }

    /// One signed call, whatever it answers (only a transport failure is an error).
    async fn call_raw(&mut self, action: &str, params: &[(String, String)]) -> R<(Duration, Resp)> {
        let mut body = format!("Action={}&Version=2016-11-15", pct(action));
        for (k, v) in params {
            let _ = write!(body, "&{}={}", pct(k), pct(v));
        }
        let (amz_date, auth) = self.signer.sign(&self.host, &body);
        let headers = [
            ("Content-Type", FORM_CONTENT_TYPE),
            ("X-Amz-Date", amz_date.as_str()),
            ("Authorization", auth.as_str()),
            ("User-Agent", "ec2d-bench/1 (sigv4)"),
        ];
        let t = Instant::now();
        // A stalled ec2d must end the section with an error, not hang the bench.
        let resp = tokio::time::timeout(
            Duration::from_secs(120),
            self.http.request("POST", "/", &headers, body.as_bytes()),
        )
        .await
        .map_err(|_| format!("{action}: no answer within 120 s (ec2d stalled?)"))??;
        Ok((t.elapsed(), resp))
    }

    /// RunInstances; a `ClientToken` is sent as the AWS SDKs and CLI do when `token` is set.
    async fn run_instances(
        &mut self,
        count: usize,
        token: bool,
        tags: &[(&str, &str)],
    ) -> R<(Duration, Vec<String>)> {
        let mut params = vec![
            p("ImageId", AMI_ID),
            p("MinCount", count.to_string()),
            p("MaxCount", count.to_string()),
            p("InstanceType", "t3.micro"),
        ];
        if token {
            params.push(p("ClientToken", uuid::Uuid::new_v4().to_string()));
        }
        if !tags.is_empty() {
            params.push(p("TagSpecification.1.ResourceType", "instance"));
            for (i, (k, v)) in tags.iter().enumerate() {
                params.push(p(format!("TagSpecification.1.Tag.{}.Key", i + 1), *k));
                params.push(p(format!("TagSpecification.1.Tag.{}.Value", i + 1), *v));
            }
        }
        let (d, xml) = self.call("RunInstances", &params).await?;
        let ids: Vec<String> = instance_states(&xml)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if ids.len() != count {
            bail!("RunInstances returned {} instances, not {count}", ids.len());
        }
        Ok((d, ids))
    }

    async fn get_json(&mut self, path: &str) -> R<Value> {
        let resp = self.http.request("GET", path, &[], b"").await?;
        if resp.status != 200 {
            bail!("GET {path}: {} {}", resp.status, resp.text());
        }
        resp.json()
    }

    /// Polls DescribeInstances every `poll` until every id reads `want`.
    async fn until_state(
        &mut self,
        ids: &[String],
        want: &str,
        poll: Duration,
        timeout: Duration,
    ) -> R<()> {
        self.until_state_timed(ids, want, poll, timeout)
            .await
            .map(drop)
    }

    /// `until_state`, returning every poll's exchange time (ms).
    async fn until_state_timed(
        &mut self,
        ids: &[String],
        want: &str,
        poll: Duration,
        timeout: Duration,
    ) -> R<Vec<f64>> {
        let t = Instant::now();
        let mut times = Vec::new();
        loop {
            let (d, xml) = self.call("DescribeInstances", &id_params(ids)).await?;
            times.push(ms(d));
            let states = instance_states(&xml);
            if states.len() == ids.len() && states.iter().all(|(_, s)| s == want) {
                return Ok(times);
            }
            if want != "terminated" && states.iter().any(|(_, s)| s == "terminated") {
                let doc = self
                    .get_json(&format!("/_ec2d/status/instances/{}", ids[0]))
                    .await
                    .unwrap_or_default();
                bail!(
                    "an instance was terminated while waiting for {want}: {}",
                    doc["lastError"]
                );
            }
            if t.elapsed() > timeout {
                bail!("timed out after {timeout:?} waiting for {want}: {states:?}");
            }
            between_polls(poll).await;
        }
    }

    /// `GET /metrics` (Prometheus text).
    async fn metrics(&mut self) -> R<String> {
        let resp = tokio::time::timeout(
            Duration::from_secs(60),
            self.http.request("GET", "/metrics", &[], b""),
        )
        .await
        .map_err(|_| "GET /metrics: no answer within 60 s (ec2d stalled?)")??;
        if resp.status != 200 {
            bail!("GET /metrics: {} {}", resp.status, resp.text());
        }
        Ok(resp.text())
    }

    /// Polls `/metrics` (cheaper than the status document at 10,000 instances) until `n`
    /// instances read running and the controller has nothing in flight (its queue depth
    /// counts the keys scheduled for a later look too, so it is not expected to be 0).
    async fn until_settled(&mut self, n: usize, timeout: Duration) -> R<()> {
        let t = Instant::now();
        loop {
            let m = self.metrics().await?;
            let running = metric_sum(
                &m,
                "ec2d_resources",
                &["kind=\"instance\"", "state=\"running\""],
            );
            if running >= n as f64
                && metric_sum(&m, "ec2d_controller_reconciles_in_flight", &[]) == 0.0
            {
                return Ok(());
            }
            if t.elapsed() > timeout {
                bail!("timed out: {running}/{n} running");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls the status endpoint until `n` instances are all converged and the controller idle.
    async fn until_converged(&mut self, n: usize, timeout: Duration) -> R<()> {
        let t = Instant::now();
        loop {
            let doc = self.get_json("/_ec2d/status").await?;
            let instances = doc["instances"].as_array().cloned().unwrap_or_default();
            let converged = instances
                .iter()
                .filter(|i| i["converged"].as_bool() == Some(true))
                .count();
            if instances.len() == n
                && converged == n
                && doc["controller"]["in_flight"].as_u64() == Some(0)
            {
                return Ok(());
            }
            if t.elapsed() > timeout {
                bail!("timed out: {converged}/{n} converged");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The sum of a metric's samples whose labels include every one of `labels` (`k="v"`).
fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// The Docker Engine API client
// ---------------------------------------------------------------------------------------------

struct Docker {
    http: Http,
    api: String,
}

impl Docker {
    fn new(sock: &Path, api: &str) -> Self {
        Self {
            http: Http::new(Endpoint::Unix(sock.to_path_buf())),
            api: api.to_string(),
        }
    }

    async fn call(&mut self, method: &str, path: &str, body: Option<&Value>) -> R<Resp> {
        let full = format!("{}{path}", self.api);
        match body {
            Some(b) => {
                let bytes = serde_json::to_vec(b)?;
                self.http
                    .request(
                        method,
                        &full,
                        &[("Content-Type", "application/json")],
                        &bytes,
                    )
                    .await
            }
            None => self.http.request(method, &full, &[], b"").await,
        }
    }

    async fn ok(&mut self, method: &str, path: &str, body: Option<&Value>) -> R<Resp> {
        let resp = self.call(method, path, body).await?;
        if resp.status >= 300 && resp.status != 304 {
            bail!("docker {method} {path}: {} {}", resp.status, resp.text());
        }
        Ok(resp)
    }

    async fn create(&mut self, name: &str, config: &Value) -> R<String> {
        let resp = self
            .ok(
                "POST",
                &format!("/containers/create?name={}", pct(name)),
                Some(config),
            )
            .await?;
        Ok(resp.json()?["Id"].as_str().ok_or("no Id")?.to_string())
    }

    async fn start(&mut self, id: &str) -> R<()> {
        self.ok("POST", &format!("/containers/{id}/start"), None)
            .await
            .map(drop)
    }

    async fn inspect(&mut self, id: &str) -> R<Option<Value>> {
        let resp = self
            .call("GET", &format!("/containers/{}/json", pct(id)), None)
            .await?;
        match resp.status {
            404 => Ok(None),
            200 => Ok(Some(resp.json()?)),
            s => bail!("docker inspect {id}: {s} {}", resp.text()),
        }
    }

    async fn remove_force(&mut self, id: &str) -> R<bool> {
        let resp = self
            .call(
                "DELETE",
                &format!("/containers/{}?force=1&v=1", pct(id)),
                None,
            )
            .await?;
        match resp.status {
            204 => Ok(true),
            404 => Ok(false),
            s => bail!("docker rm -f {id}: {s} {}", resp.text()),
        }
    }

    async fn list(&mut self, filters: &Value, all: bool) -> R<Vec<Value>> {
        let resp = self
            .ok(
                "GET",
                &format!(
                    "/containers/json?all={}&filters={}",
                    u8::from(all),
                    pct(&filters.to_string())
                ),
                None,
            )
            .await?;
        Ok(resp.json()?.as_array().cloned().unwrap_or_default())
    }

    /// The engine's events for one container between two instants, as (action, time).
    async fn events(
        &mut self,
        name: &str,
        since: SystemTime,
        until: SystemTime,
    ) -> R<Vec<(String, SystemTime)>> {
        let ts = |t: SystemTime| {
            let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
        };
        let filters = json!({ "container": [name], "type": ["container"] });
        let resp = self
            .ok(
                "GET",
                &format!(
                    "/events?since={}&until={}&filters={}",
                    ts(since),
                    ts(until),
                    pct(&filters.to_string())
                ),
                None,
            )
            .await?;
        let mut out = Vec::new();
        for event in serde_json::Deserializer::from_slice(&resp.body).into_iter::<Value>() {
            let event = event?;
            let action = event["Action"].as_str().unwrap_or("");
            let action = action.split(':').next().unwrap_or("").to_string();
            let nanos = event["timeNano"].as_u64().unwrap_or(0);
            out.push((action, std::time::UNIX_EPOCH + Duration::from_nanos(nanos)));
        }
        Ok(out)
    }

    /// Polls `GET /containers/{id}/json` every `poll` until `pred` holds; returns the document.
    async fn until(&mut self, id: &str, poll: Duration, pred: impl Fn(&Value) -> bool) -> R<Value> {
        let t = Instant::now();
        loop {
            let doc = self.inspect(id).await?.ok_or("container vanished")?;
            if pred(&doc) {
                return Ok(doc);
            }
            if t.elapsed() > Duration::from_secs(60) {
                bail!("timed out waiting for container {id}: {}", doc["State"]);
            }
            between_polls(poll).await;
        }
    }
}

/// Waits `poll` between two polls. tokio's timer works in whole milliseconds and rounds up, so
/// a 1 ms tokio sleep lasts 1-2 ms; intervals that short are slept precisely on the thread
/// instead (only the stop/start section uses them, and it sends one request at a time, so
/// nothing else on this single-threaded runtime is kept waiting).
async fn between_polls(poll: Duration) {
    if poll < Duration::from_millis(2) {
        std::thread::sleep(poll);
    } else {
        tokio::time::sleep(poll).await;
    }
}

fn running(doc: &Value) -> bool {
    doc["State"]["Running"].as_bool() == Some(true)
        && doc["State"]["Paused"].as_bool() != Some(true)
}

fn paused(doc: &Value) -> bool {
    doc["State"]["Paused"].as_bool() == Some(true)
}

fn parse_ts(s: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(SystemTime::from)
}

fn since_ms(later: SystemTime, earlier: SystemTime) -> f64 {
    match later.duration_since(earlier) {
        Ok(d) => ms(d),
        Err(e) => -ms(e.duration()),
    }
}

// ---------------------------------------------------------------------------------------------
// ec2d child processes and /proc
// ---------------------------------------------------------------------------------------------

struct Proc {
    child: Child,
    pid: u32,
    port: u16,
    dir: PathBuf,
    mode: &'static str,
}

impl Proc {
    async fn spawn(bin: &Path, port: u16, dir: &Path, mode: &'static str) -> R<Self> {
        Self::spawn_with(bin, port, dir, mode, &[]).await
    }

    /// Like [`Proc::spawn`], with these environment variables set on top of the defaults.
    async fn spawn_with(
        bin: &Path,
        port: u16,
        dir: &Path,
        mode: &'static str,
        env: &[(&str, &str)],
    ) -> R<Self> {
        std::fs::create_dir_all(dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.with_extension("log"))?;
        let mut cmd = Command::new(bin);
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir)
            .arg("--vm-manager")
            .arg(mode)
            .arg("--concurrency")
            .arg(CONCURRENCY.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        // Defaults for everything else, whatever the caller's environment says.
        for (k, _) in std::env::vars() {
            if k.starts_with("EC2D_") || k.starts_with("EC2_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        let child = cmd.spawn()?;
        let pid = child.id().ok_or("no pid")?;
        Ok(Self {
            child,
            pid,
            port,
            dir: dir.to_path_buf(),
            mode,
        })
    }

    /// Polls `/_ec2d/health` every `poll` until it answers 200.
    async fn wait_healthy(&mut self, poll: Duration) -> R<Duration> {
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "ec2d exited ({status}) at start; log: {}",
                    log_tail(&self.dir)
                );
            }
            let mut http = Http::new(Endpoint::Tcp(([127, 0, 0, 1], self.port).into()));
            if let Ok(resp) = http.request("GET", "/_ec2d/health", &[], b"").await {
                if resp.status == 200 {
                    return Ok(t.elapsed());
                }
            }
            if t.elapsed() > Duration::from_secs(60) {
                bail!("ec2d not healthy after 60 s; log: {}", log_tail(&self.dir));
            }
            between_polls(poll).await;
        }
    }

    /// SIGTERM (a clean shutdown), then SIGKILL after 20 s.
    async fn stop(mut self) -> R<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(_) => Ok(()),
            Err(_) => {
                self.child.kill().await?;
                Ok(())
            }
        }
    }

    async fn sigkill(&mut self) -> R<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// utime + stime of every thread of the process, live or exited, in clock ticks.
fn cpu_ticks(pid: u32) -> R<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &stat[stat.rfind(')').ok_or("bad stat")? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// `(VmRSS, VmHWM)` in KiB and the thread count.
fn mem_kib(pid: u32) -> R<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:"), field("Threads:")))
}

/// The 1-minute load average (other work on the machine shows here).
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

// ---------------------------------------------------------------------------------------------
// The run context
// ---------------------------------------------------------------------------------------------

struct Section {
    id: &'static str,
    title: &'static str,
    method: String,
}

struct Ctx {
    args: Args,
    plan: Plan,
    root: PathBuf,
    bin: PathBuf,
    work: PathBuf,
    run_id: String,
    poll: Duration,
    /// The stop/start section's finer polling interval.
    transition_poll: Duration,
    sock: PathBuf,
    api: String,
    ami_ref: String,
    tagged_ami: bool,
    launched: BTreeSet<String>,
    store_ids: BTreeSet<String>,
    figures: Vec<Figure>,
    sections: Vec<Section>,
    details: serde_json::Map<String, Value>,
    loads: BTreeMap<String, Value>,
    failed: Vec<Value>,
}

impl Ctx {
    /// Records the load average around a section (before: taken by the caller).
    fn note_load(&mut self, section: &str, before: f64) {
        self.loads.insert(
            section.to_string(),
            json!({ "before": before, "after": loadavg() }),
        );
    }
    fn port(&self, i: u16) -> u16 {
        self.args.port_base + i
    }
    fn docker(&self) -> Docker {
        Docker::new(&self.sock, &self.api)
    }
    fn push(&mut self, f: Figure) {
        self.figures.push(f);
    }
    /// Issue 16's sections measure ec2d at a scale where it may still fail (stall, crash):
    /// such a failure is printed and recorded in the output (`failed_sections`), and the other
    /// sections still run; a run with a failed section is never published as complete.
    fn section_failed(&mut self, section: &str, result: R<()>) {
        if let Err(e) = result {
            eprintln!("  section {section} FAILED: {e}");
            self.failed
                .push(json!({ "section": section, "error": e.to_string() }));
        }
    }
    fn wants(&self, section: &str) -> bool {
        self.args.only.is_empty() || self.args.only.iter().any(|s| s == section)
    }

    /// The labels of one of our instance containers name the store that owns them.
    async fn learn_store_id(&mut self, docker: &mut Docker, instance_id: &str) -> R<String> {
        let doc = docker
            .inspect(&format!("localstack-ec2.{instance_id}"))
            .await?
            .ok_or("instance container missing")?;
        let sid = doc["Config"]["Labels"]["ec2d.store-id"]
            .as_str()
            .ok_or("no ec2d.store-id label")?
            .to_string();
        self.store_ids.insert(sid.clone());
        Ok(sid)
    }

    /// Launches `n` instances (docker mode) and waits for them to run; not a measurement.
    async fn launch_docker(&mut self, ec2: &mut Ec2, n: usize) -> R<Vec<String>> {
        let (_, ids) = ec2.run_instances(n, true, &[]).await?;
        self.launched.extend(ids.iter().cloned());
        ec2.until_state(
            &ids,
            "running",
            Duration::from_millis(50),
            Duration::from_secs(300),
        )
        .await?;
        Ok(ids)
    }

    /// TerminateInstances, then waits until every instance reads `terminated` and its
    /// container is gone.
    async fn terminate(&mut self, ec2: &mut Ec2, docker: &mut Docker, ids: &[String]) -> R<()> {
        if ids.is_empty() {
            return Ok(());
        }
        ec2.call("TerminateInstances", &id_params(ids)).await?;
        ec2.until_state(
            ids,
            "terminated",
            Duration::from_millis(20),
            Duration::from_secs(300),
        )
        .await?;
        let mut left: Vec<String> = ids.to_vec();
        let t = Instant::now();
        while !left.is_empty() {
            let mut still = Vec::new();
            for id in left {
                if docker
                    .inspect(&format!("localstack-ec2.{id}"))
                    .await?
                    .is_some()
                {
                    still.push(id);
                }
            }
            left = still;
            if t.elapsed() > Duration::from_secs(120) {
                bail!("containers not removed after termination: {left:?}");
            }
            if !left.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        for id in ids {
            self.launched.remove(id);
        }
        Ok(())
    }

    fn baseline_labels(&self, what: &str) -> Value {
        json!({ "ec2d-bench": self.run_id, "ec2d-bench.what": what })
    }

    /// `docker run -d IMAGE sh -c <keep-alive>` as a create request.
    fn plain_config(&self, what: &str) -> Value {
        json!({
            "Image": self.args.image,
            "Cmd": ["/bin/sh", "-c", KEEP_ALIVE],
            "Labels": self.baseline_labels(what),
            "HostConfig": {},
        })
    }

    /// The container ec2d creates for an instance, as far as Docker's work goes: `--init`,
    /// the Docker socket mounted, 22/tcp published on 127.0.0.1, the boot inputs in the
    /// environment and a `sh -c` keep-alive as the entrypoint (ec2d copies no files in).
    fn ec2d_like_config(&self, what: &str) -> Value {
        json!({
            "Image": self.args.image,
            "Entrypoint": ["/bin/sh", "-c", KEEP_ALIVE, "ec2d-boot"],
            "Cmd": [],
            "Env": ["EC2D_INSTANCE_ID=i-0bec4000000000001"],
            "Labels": self.baseline_labels(what),
            "ExposedPorts": { "22/tcp": {} },
            "HostConfig": {
                "Init": true,
                "Binds": ["/var/run/docker.sock:/var/run/docker.sock"],
                "PortBindings": { "22/tcp": [{ "HostIp": "127.0.0.1", "HostPort": "" }] },
                "RestartPolicy": { "Name": "no" },
            },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Section: RunInstances answer time (mock mode)
// ---------------------------------------------------------------------------------------------

async fn bench_run(ctx: &mut Ctx) -> R<()> {
    let plan = ctx.plan.clone();
    let levels = [0usize, 100, 1000];
    let variants = [(true, "token"), (false, "plain")];
    // Six RunInstances series (level x variant), then the floor.
    const SERIES: usize = 7;
    const FLOOR: usize = 6;
    ctx.sections.push(Section {
        id: "run",
        title: "RunInstances answer time",
        method: format!(
            "Mock mode (no containers). Each run starts seven fresh ec2d processes: six hold 0, \
             100 and 1,000 instances already stored (written by one RunInstances MaxCount=N, \
             then waited until converged), each once for requests WITH a ClientToken (as boto3, \
             the AWS CLI and Terraform send RunInstances: an idempotency token is always filled \
             in) and once WITHOUT; the seventh, empty, answers DescribeRegions, the same HTTP, \
             SigV4, parsing and XML path with no store access (the floor). After {} warm-up \
             requests each, {} requests per process are sent one at a time over one kept-alive \
             connection, rotating over the seven processes so machine noise hits all alike. The \
             time is the HTTP exchange: request written to answer read (SigV4 signing is done \
             before). {} runs; each figure is the median over runs of the per-run p50 (or p99), \
             with min and max; ratios are per run. 'ec2d CPU per request' is the process' \
             utime+stime over the measured requests divided by their number (it includes the \
             mock reconcile of each new instance), which does not depend on what else the \
             machine runs. Every measured request adds one instance, so a process ends a run \
             with N+{} stored.",
            plan.run_warmup,
            plan.run_requests,
            plan.run_runs,
            plan.run_warmup + plan.run_requests
        ),
    });
    let tck = clock_ticks_per_sec() as f64;
    let mut p50s: Vec<Vec<f64>> = vec![Vec::new(); SERIES];
    let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); SERIES];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); SERIES];
    let mut pooled: Vec<Vec<f64>> = vec![Vec::new(); SERIES];
    for run in 0..plan.run_runs {
        let mut procs = Vec::new();
        let mut clients = Vec::new();
        for k in 0..SERIES {
            let name = if k == FLOOR {
                "floor".to_string()
            } else {
                format!("{}-{}", levels[k / 2], variants[k % 2].1)
            };
            let dir = ctx.work.join(format!("run-{run}-{name}"));
            let mut proc = Proc::spawn(&ctx.bin, ctx.port(k as u16), &dir, "mock").await?;
            proc.wait_healthy(ctx.poll).await?;
            let mut ec2 = Ec2::new(proc.port);
            if k != FLOOR && levels[k / 2] > 0 {
                ec2.run_instances(levels[k / 2], true, &[]).await?;
            }
            procs.push(proc);
            clients.push(ec2);
        }
        for (k, ec2) in clients.iter_mut().enumerate().take(FLOOR) {
            ec2.until_converged(levels[k / 2], Duration::from_secs(120))
                .await?;
        }
        async fn one(ec2: &mut Ec2, k: usize, token: bool) -> R<Duration> {
            if k == FLOOR {
                Ok(ec2.call("DescribeRegions", &[]).await?.0)
            } else {
                Ok(ec2.run_instances(1, token, &[]).await?.0)
            }
        }
        for (k, ec2) in clients.iter_mut().enumerate() {
            for _ in 0..plan.run_warmup {
                one(ec2, k, variants[k % 2].0).await?;
            }
        }
        let ticks0: Vec<u64> = procs.iter().map(|p| cpu_ticks(p.pid)).collect::<R<_>>()?;
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); SERIES];
        for i in 0..plan.run_requests {
            for j in 0..SERIES {
                let k = (i + j) % SERIES;
                let d = one(&mut clients[k], k, variants[k % 2].0).await?;
                samples[k].push(ms(d));
            }
        }
        for (k, proc) in procs.iter().enumerate() {
            let used = cpu_ticks(proc.pid)? - ticks0[k];
            cpu[k].push(used as f64 / tck * 1000.0 / plan.run_requests as f64);
        }
        for proc in procs {
            let dir = proc.dir.clone();
            proc.stop().await?;
            remove_data_dir(&dir);
        }
        for k in 0..SERIES {
            let s = sorted(&samples[k]);
            p50s[k].push(percentile(&s, 0.50));
            p99s[k].push(percentile(&s, 0.99));
            pooled[k].extend_from_slice(&samples[k]);
        }
        eprintln!(
            "  run {}/{}: p50 ms token 0/100/1000 = {:.3}/{:.3}/{:.3}, plain = {:.3}/{:.3}/{:.3}, floor {:.3}",
            run + 1,
            plan.run_runs,
            p50s[0][run],
            p50s[2][run],
            p50s[4][run],
            p50s[1][run],
            p50s[3][run],
            p50s[5][run],
            p50s[FLOOR][run]
        );
    }
    let pooled_note = |k: usize| {
        let s = sorted(&pooled[k]);
        format!(
            "all {} samples pooled: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            s.len(),
            percentile(&s, 0.5),
            percentile(&s, 0.99),
            s.last().copied().unwrap_or(f64::NAN)
        )
    };
    for (vi, (_, vname)) in variants.iter().enumerate() {
        let with = if vi == 0 {
            "with ClientToken"
        } else {
            "without ClientToken"
        };
        for (li, level) in levels.iter().enumerate() {
            let k = li * 2 + vi;
            ctx.push(figure(
                "run",
                &format!("run.{vname}.{level}.p50"),
                &format!("RunInstances p50, {level} stored, {with}"),
                "ms",
                &p50s[k],
                Target::below(1.0, "p50 < 1 ms"),
                &pooled_note(k),
            ));
            ctx.push(figure(
                "run",
                &format!("run.{vname}.{level}.p99"),
                &format!("RunInstances p99, {level} stored, {with}"),
                "ms",
                &p99s[k],
                None,
                "",
            ));
            ctx.push(figure(
                "run",
                &format!("run.{vname}.{level}.cpu"),
                &format!("ec2d CPU per RunInstances, {level} stored, {with}"),
                "ms",
                &cpu[k],
                None,
                "utime+stime / requests",
            ));
        }
        let ratio: Vec<f64> = p50s[4 + vi]
            .iter()
            .zip(&p50s[vi])
            .map(|(a, b)| a / b)
            .collect();
        ctx.push(figure(
            "run",
            &format!("run.{vname}.ratio_1000_0"),
            &format!("RunInstances p50 with 1,000 stored / with 0 stored, {with}"),
            "x",
            &ratio,
            Target::at_most(
                1.25,
                "independent of the count (read as: p50 at 1,000 <= 1.25x p50 at 0)",
            ),
            "per-run ratio of the p50s",
        ));
    }
    ctx.push(figure(
        "run",
        "run.floor.p50",
        "floor: DescribeRegions p50 (same path, no store)",
        "ms",
        &p50s[FLOOR],
        None,
        &pooled_note(FLOOR),
    ));
    ctx.push(figure(
        "run",
        "run.floor.p99",
        "floor: DescribeRegions p99",
        "ms",
        &p99s[FLOOR],
        None,
        "",
    ));
    ctx.push(figure(
        "run",
        "run.floor.cpu",
        "floor: ec2d CPU per DescribeRegions",
        "ms",
        &cpu[FLOOR],
        None,
        "utime+stime / requests",
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Section: DescribeInstances over 1,000 (mock mode)
// ---------------------------------------------------------------------------------------------

fn describe_filter() -> Params {
    vec![
        p("Filter.1.Name", "tag:group"),
        p("Filter.1.Value.1", "g3"),
        p("Filter.2.Name", "instance-state-name"),
        p("Filter.2.Value.1", "running"),
    ]
}

async fn closed_loop(port: u16, params: Params, conc: usize, secs: f64) -> R<f64> {
    let count = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let deadline = t + Duration::from_secs_f64(secs);
    let workers = (0..conc).map(|_| {
        let count = count.clone();
        let params = params.clone();
        async move {
            let mut ec2 = Ec2::new(port);
            while Instant::now() < deadline {
                ec2.call("DescribeInstances", &params).await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), BoxError>(())
        }
    });
    futures::future::try_join_all(workers).await?;
    Ok(count.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64())
}

async fn bench_describe(ctx: &mut Ctx) -> R<()> {
    let plan = ctx.plan.clone();
    let n = plan.describe_instances;
    let groups = 10;
    ctx.sections.push(Section {
        id: "describe",
        title: "DescribeInstances",
        method: format!(
            "Mock mode. One ec2d holds {n} instances, launched as {groups} reservations of {} with \
             the tag group=g0..g9, all running. 'all' is DescribeInstances without parameters ({n} \
             instances in the answer); 'filtered' is Filter tag:group=g3 AND \
             instance-state-name=running ({} instances in the answer, but every stored instance \
             is read and tested). Latency: {} runs of {} requests of each kind, alternating \
             all/filtered, one at a time over one kept-alive connection; the figure is the \
             median over runs of the per-run p50/p99. Throughput: {} clients in a closed loop \
             (each sends its next request when the answer arrives) for {} s per kind per run, \
             kinds alternating; the client runs on the same machine, on one thread. 'ec2d CPU \
             per request' is utime+stime over a separate batch of {} requests of one kind.",
            n / groups,
            n / groups,
            plan.describe_runs,
            plan.describe_requests,
            plan.describe_concurrency,
            plan.describe_throughput_secs,
            plan.describe_requests / 2
        ),
    });
    let dir = ctx.work.join("describe");
    let mut proc = Proc::spawn(&ctx.bin, ctx.port(6), &dir, "mock").await?;
    proc.wait_healthy(ctx.poll).await?;
    let mut ec2 = Ec2::new(proc.port);
    for g in 0..groups {
        let tag = format!("g{g}");
        ec2.run_instances(n / groups, true, &[("group", &tag)])
            .await?;
    }
    ec2.until_converged(n, Duration::from_secs(120)).await?;
    let (_, all_xml) = ec2.call("DescribeInstances", &[]).await?;
    let all_states = instance_states(&all_xml);
    let (_, filtered_xml) = ec2.call("DescribeInstances", &describe_filter()).await?;
    let filtered_states = instance_states(&filtered_xml);
    if all_states.len() != n
        || all_states.iter().any(|(_, s)| s != "running")
        || filtered_states.len() != n / groups
    {
        bail!(
            "describe setup: {} instances ({} filtered), expected {n} running ({})",
            all_states.len(),
            filtered_states.len(),
            n / groups
        );
    }
    let kinds: [(&str, Params); 2] = [("all", Vec::new()), ("filtered", describe_filter())];
    let mut p50s = [Vec::new(), Vec::new()];
    let mut p99s = [Vec::new(), Vec::new()];
    let mut rps = [Vec::new(), Vec::new()];
    let tck = clock_ticks_per_sec() as f64;
    let mut cpu = [Vec::new(), Vec::new()];
    for run in 0..plan.describe_runs {
        let mut samples = [Vec::new(), Vec::new()];
        // CPU per request is measured on separate, unmixed batches (one kind at a time).
        for (k, kind) in kinds.iter().enumerate() {
            let t0 = cpu_ticks(proc.pid)?;
            for _ in 0..plan.describe_requests / 2 {
                ec2.call("DescribeInstances", &kind.1).await?;
            }
            let used = cpu_ticks(proc.pid)? - t0;
            cpu[k].push(used as f64 / tck * 1000.0 / (plan.describe_requests / 2) as f64);
        }
        for i in 0..plan.describe_requests {
            for j in 0..2 {
                let k = (i + j) % 2;
                let (d, _) = ec2.call("DescribeInstances", &kinds[k].1).await?;
                samples[k].push(ms(d));
            }
        }
        for k in 0..2 {
            let s = sorted(&samples[k]);
            p50s[k].push(percentile(&s, 0.5));
            p99s[k].push(percentile(&s, 0.99));
        }
        for j in 0..2 {
            let k = (run + j) % 2;
            rps[k].push(
                closed_loop(
                    proc.port,
                    kinds[k].1.clone(),
                    plan.describe_concurrency,
                    plan.describe_throughput_secs,
                )
                .await?,
            );
        }
        eprintln!(
            "  run {}/{}: p50 all {:.2} ms, filtered {:.2} ms; {:.0} / {:.0} req/s",
            run + 1,
            plan.describe_runs,
            p50s[0][run],
            p50s[1][run],
            rps[0][run],
            rps[1][run]
        );
    }
    let (rss, hwm, _) = mem_kib(proc.pid)?;
    proc.stop().await?;
    remove_data_dir(&dir);
    for (k, (kind, _)) in kinds.iter().enumerate() {
        let what = if k == 0 {
            format!("all {n}")
        } else {
            format!("filtered, {} of {n} match", n / groups)
        };
        ctx.push(figure(
            "describe",
            &format!("describe.{kind}.p50"),
            &format!("DescribeInstances p50, {what}"),
            "ms",
            &p50s[k],
            if k == 0 {
                Target::below(5.0, "p50 < 5 ms for all 1,000")
            } else {
                None
            },
            "",
        ));
        ctx.push(figure(
            "describe",
            &format!("describe.{kind}.p99"),
            &format!("DescribeInstances p99, {what}"),
            "ms",
            &p99s[k],
            None,
            "",
        ));
        ctx.push(figure(
            "describe",
            &format!("describe.{kind}.cpu"),
            &format!("ec2d CPU per DescribeInstances, {what}"),
            "ms",
            &cpu[k],
            None,
            "utime+stime / requests, batches of one kind",
        ));
        ctx.push(figure(
            "describe",
            &format!("describe.{kind}.rps"),
            &format!(
                "DescribeInstances requests/s, {what}, {} clients",
                plan.describe_concurrency
            ),
            "req/s",
            &rps[k],
            None,
            "",
        ));
    }
    ctx.details.insert(
        "describe".into(),
        json!({
            "answer_bytes_all": all_xml.len(),
            "answer_bytes_filtered": filtered_xml.len(),
            "ec2d_rss_kib_after": rss,
            "ec2d_hwm_kib_after": hwm,
        }),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Section: launch to running (docker mode)
// ---------------------------------------------------------------------------------------------

/// Phases of one launch, in ms from the moment the client started.
#[derive(Debug, Default, Clone)]
struct LaunchTimes {
    total: f64,
    answer: f64,
    recorded_running: f64,
    /// First time of each Docker event of the container (`create`, `start`), from the
    /// engine's event log.
    events: BTreeMap<String, f64>,
}

impl LaunchTimes {
    fn event(&self, action: &str) -> f64 {
        self.events.get(action).copied().unwrap_or(f64::NAN)
    }
}

async fn container_events(
    docker: &mut Docker,
    name: &str,
    wall0: SystemTime,
) -> R<BTreeMap<String, f64>> {
    let since = wall0 - Duration::from_secs(1);
    let mut out = BTreeMap::new();
    for (action, at) in docker.events(name, since, SystemTime::now()).await? {
        out.entry(action).or_insert_with(|| since_ms(at, wall0));
    }
    Ok(out)
}

async fn launch_ec2d(ctx: &mut Ctx, ec2: &mut Ec2, docker: &mut Docker) -> R<LaunchTimes> {
    let wall0 = SystemTime::now();
    let t0 = Instant::now();
    let (answer, ids) = ec2.run_instances(1, true, &[]).await?;
    ctx.launched.extend(ids.iter().cloned());
    ec2.until_state(&ids, "running", ctx.poll, Duration::from_secs(60))
        .await?;
    let total = ms(t0.elapsed());
    let id = &ids[0];
    let doc = ec2
        .get_json(&format!("/_ec2d/status/instances/{id}"))
        .await?;
    let running_at = doc["transitions"]
        .as_array()
        .and_then(|ts| ts.iter().rev().find(|t| t["to"] == "running"))
        .and_then(|t| t["at"].as_str())
        .and_then(parse_ts);
    if ctx.store_ids.is_empty() {
        ctx.learn_store_id(docker, id).await?;
    }
    let times = LaunchTimes {
        total,
        answer: ms(answer),
        recorded_running: running_at.map_or(f64::NAN, |r| since_ms(r, wall0)),
        events: container_events(docker, &format!("localstack-ec2.{id}"), wall0).await?,
    };
    ctx.terminate(ec2, docker, &ids).await?;
    Ok(times)
}

async fn launch_docker(
    ctx: &Ctx,
    docker: &mut Docker,
    n: usize,
    ec2d_like: bool,
) -> R<LaunchTimes> {
    let what = if ec2d_like { "like" } else { "plain" };
    let name = format!("ec2d-bench-{}-launch-{what}-{n}", ctx.run_id);
    let config = if ec2d_like {
        ctx.ec2d_like_config("launch")
    } else {
        ctx.plain_config("launch")
    };
    let wall0 = SystemTime::now();
    let t0 = Instant::now();
    let id = docker.create(&name, &config).await?;
    docker.start(&id).await?;
    docker.until(&id, ctx.poll, running).await?;
    let total = ms(t0.elapsed());
    let events = container_events(docker, &name, wall0).await?;
    docker.remove_force(&id).await?;
    Ok(LaunchTimes {
        total,
        answer: f64::NAN,
        recorded_running: f64::NAN,
        events,
    })
}

async fn bench_launch(ctx: &mut Ctx, ec2: &mut Ec2, docker: &mut Docker) -> R<()> {
    let rounds = ctx.plan.launch_rounds;
    ctx.sections.push(Section {
        id: "launch",
        title: "Launch to running",
        method: format!(
            "Docker mode, image {} (its AMI tag {AMI_REPO}:{AMI_ID}). {rounds} interleaved rounds; \
             each round measures, in rotating order: (E) ec2d: RunInstances (one instance, with \
             ClientToken), then DescribeInstances of that id every {} ms until it reads running; \
             (D) plain Docker, the baseline: `docker run -d IMAGE sh -c <keep-alive>` done as the \
             CLI does it over the Engine API (POST /containers/create, POST /start), then GET \
             /containers/ID/json every {} ms until State.Running; (L) diagnostic: plain Docker \
             creating and starting the container ec2d asks for (--init, the Docker socket \
             mounted, 22/tcp published on 127.0.0.1, boot inputs in the environment, a sh -c \
             keep-alive entrypoint), so E/L is the controller's own share. All three use \
             the same raw HTTP/1.1 client (TCP to ec2d, the unix socket to Docker). After each \
             measurement the instance is terminated (and its container removed) or the container \
             force-removed, so every launch starts from the same idle state. Ratios are per \
             round (E/D, L/D). The phase rows are times from the client's start: Docker's own \
             event log for the container (create, start) and ec2d's \
             recorded transition to running.",
            ctx.args.image, ctx.args.poll_ms, ctx.args.poll_ms
        ),
    });
    let mut e = Vec::new();
    let mut d = Vec::new();
    let mut l = Vec::new();
    for round in 0..rounds {
        let mut times: [Option<LaunchTimes>; 3] = [None, None, None];
        for j in 0..3 {
            let k = (round + j) % 3;
            times[k] = Some(match k {
                0 => launch_ec2d(ctx, ec2, docker).await?,
                1 => launch_docker(ctx, docker, round, false).await?,
                _ => launch_docker(ctx, docker, round, true).await?,
            });
        }
        let [te, td, tl] = times.map(|t| t.expect("measured"));
        eprintln!(
            "  round {}/{rounds}: ec2d {:.1} ms, docker {:.1} ms, ec2d-like docker {:.1} ms",
            round + 1,
            te.total,
            td.total,
            tl.total
        );
        e.push(te);
        d.push(td);
        l.push(tl);
    }
    let col = |v: &[LaunchTimes], f: fn(&LaunchTimes) -> f64| v.iter().map(f).collect::<Vec<_>>();
    let ratio = |a: &[LaunchTimes], b: &[LaunchTimes]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.total / y.total)
            .collect::<Vec<_>>()
    };
    ctx.push(figure(
        "launch",
        "launch.ec2d",
        "ec2d: RunInstances until DescribeInstances says running",
        "ms",
        &col(&e, |t| t.total),
        None,
        "",
    ));
    ctx.push(figure(
        "launch",
        "launch.docker",
        "plain Docker: docker run -d until inspect says running",
        "ms",
        &col(&d, |t| t.total),
        None,
        "",
    ));
    ctx.push(figure(
        "launch",
        "launch.ratio",
        "launch ratio ec2d / plain Docker",
        "x",
        &ratio(&e, &d),
        Target::at_most(1.15, "<= 1.15x plain Docker"),
        "per-round ratio",
    ));
    ctx.push(figure(
        "launch",
        "launch.docker_like",
        "diagnostic: plain Docker starting ec2d's container (init, socket, port 22, env)",
        "ms",
        &col(&l, |t| t.total),
        None,
        "",
    ));
    ctx.push(figure(
        "launch",
        "launch.ratio_like",
        "diagnostic ratio: ec2d-like Docker work / plain Docker",
        "x",
        &ratio(&l, &d),
        None,
        "how much of the gap is Docker doing more work",
    ));
    ctx.push(figure(
        "launch",
        "launch.ratio_ec2d_like",
        "diagnostic ratio: ec2d / ec2d-like Docker work",
        "x",
        &ratio(&e, &l),
        None,
        "the controller's own share",
    ));
    let phases: [(&str, &str, &[LaunchTimes], &[&str]); 3] = [
        ("ec2d", "ec2d", &e, &["create", "start"]),
        ("like", "ec2d-like Docker", &l, &["create", "start"]),
        ("docker", "plain Docker", &d, &["create", "start"]),
    ];
    ctx.push(figure(
        "launch",
        "launch.phase.ec2d.answer",
        "ec2d phase: RunInstances answered",
        "ms",
        &col(&e, |t| t.answer),
        None,
        "ms from the client's start",
    ));
    for (key, who, times, actions) in phases {
        for action in actions {
            let values: Vec<f64> = times.iter().map(|t| t.event(action)).collect();
            if values.iter().all(|v| v.is_nan()) {
                continue; // This launch path never does it (e.g. no archive upload).
            }
            ctx.push(figure(
                "launch",
                &format!("launch.phase.{key}.{action}"),
                &format!("{who} phase: Docker event {action}"),
                "ms",
                &values,
                None,
                "ms from the client's start (first such event)",
            ));
        }
    }
    ctx.push(figure(
        "launch",
        "launch.phase.ec2d.recorded",
        "ec2d phase: running recorded in status",
        "ms",
        &col(&e, |t| t.recorded_running),
        None,
        "ms from the client's start",
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Section: stop, start (docker mode)
// ---------------------------------------------------------------------------------------------

/// One StopInstances/StartInstances measured from the client: total time until DescribeInstances
/// reads `want`, and where that time went (answer, and the transition ec2d recorded in status).
struct Transition {
    total: f64,
    answer: f64,
    recorded: f64,
}

async fn ec2_transition(
    ec2: &mut Ec2,
    action: &str,
    id: &str,
    want: &str,
    poll: Duration,
) -> R<Transition> {
    let ids = vec![id.to_string()];
    let wall0 = SystemTime::now();
    let t = Instant::now();
    ec2.call(action, &id_params(&ids)).await?;
    let answer = ms(t.elapsed());
    ec2.until_state(&ids, want, poll, Duration::from_secs(60))
        .await?;
    let total = ms(t.elapsed());
    let doc = ec2
        .get_json(&format!("/_ec2d/status/instances/{id}"))
        .await?;
    let recorded = doc["transitions"]
        .as_array()
        .and_then(|ts| ts.iter().rev().find(|t| t["to"] == want))
        .and_then(|t| t["at"].as_str())
        .and_then(parse_ts)
        .map_or(f64::NAN, |at| since_ms(at, wall0));
    Ok(Transition {
        total,
        answer,
        recorded,
    })
}

async fn docker_transition(docker: &mut Docker, verb: &str, id: &str, poll: Duration) -> R<f64> {
    let t = Instant::now();
    docker
        .ok("POST", &format!("/containers/{id}/{verb}"), None)
        .await?;
    if verb == "pause" {
        docker.until(id, poll, paused).await?;
    } else {
        docker.until(id, poll, running).await?;
    }
    Ok(ms(t.elapsed()))
}

async fn bench_stopstart(ctx: &mut Ctx, ec2: &mut Ec2, docker: &mut Docker) -> R<()> {
    let pairs = ctx.plan.stopstart_pairs;
    ctx.sections.push(Section {
        id: "stopstart",
        title: "Stop and start",
        method: format!(
            "Docker mode. One running ec2d instance and one plain Docker container (`docker run -d \
             IMAGE sh -c <keep-alive>`). {pairs} interleaved pairs of: StopInstances then \
             DescribeInstances every {} ms until stopped, next to POST /containers/ID/pause then \
             inspect every {} ms until State.Paused; and StartInstances until running, next to \
             /unpause until running. The order within a pair alternates (ec2d first, then Docker \
             first). Ratios are per pair. The poll is finer here than elsewhere because EC2's \
             calls are asynchronous and Docker's are not: Docker's first inspect after its call \
             already sees the new state, while the client of ec2d sees it only at its next poll, \
             so a coarse poll measures the poll, not ec2d. The phase rows split ec2d's time: \
             the answer, then the transition as ec2d recorded it in status (its own clock), the \
             rest being the client's polling.",
            ctx.args.transition_poll_ms, ctx.args.transition_poll_ms
        ),
    });
    let poll = ctx.transition_poll;
    let ids = ctx.launch_docker(ec2, 1).await?;
    let id = ids[0].clone();
    let name = format!("ec2d-bench-{}-stopstart", ctx.run_id);
    let cid = docker.create(&name, &ctx.plain_config("stopstart")).await?;
    docker.start(&cid).await?;
    docker.until(&cid, ctx.poll, running).await?;
    let (mut es, mut ds, mut eu, mut du) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        if i % 2 == 0 {
            es.push(ec2_transition(ec2, "StopInstances", &id, "stopped", poll).await?);
            ds.push(docker_transition(docker, "pause", &cid, poll).await?);
            eu.push(ec2_transition(ec2, "StartInstances", &id, "running", poll).await?);
            du.push(docker_transition(docker, "unpause", &cid, poll).await?);
        } else {
            ds.push(docker_transition(docker, "pause", &cid, poll).await?);
            es.push(ec2_transition(ec2, "StopInstances", &id, "stopped", poll).await?);
            du.push(docker_transition(docker, "unpause", &cid, poll).await?);
            eu.push(ec2_transition(ec2, "StartInstances", &id, "running", poll).await?);
        }
        eprintln!(
            "  pair {}/{pairs}: stop {:.1} (recorded {:.1}) vs pause {:.1} ms; start {:.1} (recorded {:.1}) vs unpause {:.1} ms",
            i + 1,
            es[i].total,
            es[i].recorded,
            ds[i],
            eu[i].total,
            eu[i].recorded,
            du[i]
        );
    }
    ctx.terminate(ec2, docker, &ids).await?;
    docker.remove_force(&cid).await?;
    let ratio = |a: &[Transition], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.total / y)
            .collect::<Vec<_>>()
    };
    let col = |v: &[Transition], f: fn(&Transition) -> f64| v.iter().map(f).collect::<Vec<_>>();
    for (key, ec2d_what, docker_what, docker_verb, e, d) in [
        (
            "stop",
            "StopInstances until stopped",
            "pause until paused",
            "pause",
            &es,
            &ds,
        ),
        (
            "start",
            "StartInstances until running",
            "unpause until running",
            "unpause",
            &eu,
            &du,
        ),
    ] {
        ctx.push(figure(
            "stopstart",
            &format!("{key}.ec2d"),
            &format!("ec2d: {ec2d_what}"),
            "ms",
            &col(e, |t| t.total),
            None,
            "",
        ));
        ctx.push(figure(
            "stopstart",
            &format!("{key}.docker"),
            &format!("Docker: {docker_what}"),
            "ms",
            d,
            None,
            "",
        ));
        ctx.push(figure(
            "stopstart",
            &format!("{key}.ratio"),
            &format!("{key} ratio ec2d / docker {docker_verb}"),
            "x",
            &ratio(e, d),
            Target::at_most(1.2, "<= 1.2x"),
            "per-pair ratio",
        ));
        ctx.push(figure(
            "stopstart",
            &format!("{key}.phase.answer"),
            &format!("ec2d {key} phase: answered"),
            "ms",
            &col(e, |t| t.answer),
            None,
            "ms from the client's start",
        ));
        ctx.push(figure(
            "stopstart",
            &format!("{key}.phase.recorded"),
            &format!("ec2d {key} phase: transition recorded in status"),
            "ms",
            &col(e, |t| t.recorded),
            None,
            "ms from the client's start; the rest of the total is the client's polling",
        ));
        ctx.push(figure(
            "stopstart",
            &format!("{key}.ratio_recorded"),
            &format!("diagnostic ratio: ec2d's recorded {key} / docker {docker_verb}"),
            "x",
            &e.iter()
                .zip(d.iter())
                .map(|(x, y)| x.recorded / y)
                .collect::<Vec<_>>(),
            None,
            "ec2d's side without the client's polling",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Section: fleet (docker mode)
// ---------------------------------------------------------------------------------------------

/// One fleet on ec2d: `(until all running, answer time, the waiter's DescribeInstances p99)`,
/// all in ms. The waiter polls DescribeInstances of the fleet's ids while the reconciler
/// launches them, so its answer times are the API's while Docker works.
async fn fleet_ec2d(
    ctx: &mut Ctx,
    ec2: &mut Ec2,
    docker: &mut Docker,
    n: usize,
) -> R<(f64, f64, f64)> {
    let t0 = Instant::now();
    let (answer, ids) = ec2.run_instances(n, true, &[]).await?;
    ctx.launched.extend(ids.iter().cloned());
    let polls = ec2
        .until_state_timed(&ids, "running", ctx.poll, Duration::from_secs(600))
        .await?;
    let total = ms(t0.elapsed());
    ctx.terminate(ec2, docker, &ids).await?;
    Ok((total, ms(answer), percentile(&sorted(&polls), 0.99)))
}

/// `n` plain `docker run -d` (create + start over the Engine API) with `in_flight` at once,
/// until the engine lists all running.
async fn fleet_docker(ctx: &Ctx, n: usize, in_flight: usize, pair: usize) -> R<f64> {
    let what = format!("fleet-{n}-{pair}");
    let config = ctx.plain_config(&what);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let workers = (0..in_flight.min(n)).map(|_| {
        let next = next.clone();
        let config = config.clone();
        let mut docker = ctx.docker();
        let prefix = format!("ec2d-bench-{}-{what}", ctx.run_id);
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), BoxError>(());
                }
                let id = docker.create(&format!("{prefix}-{i}"), &config).await?;
                docker.start(&id).await?;
            }
        }
    });
    let poller = async {
        let mut docker = ctx.docker();
        let filters = json!({
            "label": [format!("ec2d-bench.what={what}"), format!("ec2d-bench={}", ctx.run_id)],
            "status": ["running"],
        });
        loop {
            let list = docker.list(&filters, false).await?;
            if list.len() >= n {
                return Ok::<f64, BoxError>(ms(t0.elapsed()));
            }
            if t0.elapsed() > Duration::from_secs(600) {
                bail!("docker fleet: {} of {n} running after 600 s", list.len());
            }
            tokio::time::sleep(ctx.poll).await;
        }
    };
    let (started, total) = tokio::join!(futures::future::try_join_all(workers), poller);
    let result = started.and(total);
    remove_baselines(ctx, Some(&what)).await?;
    result
}

/// Force-removes this run's baseline containers (of one kind, or all).
async fn remove_baselines(ctx: &Ctx, what: Option<&str>) -> R<usize> {
    let mut docker = ctx.docker();
    let mut labels = vec![format!("ec2d-bench={}", ctx.run_id)];
    if let Some(w) = what {
        labels.push(format!("ec2d-bench.what={w}"));
    }
    let list = docker.list(&json!({ "label": labels }), true).await?;
    let ids: Vec<String> = list
        .iter()
        .filter_map(|c| c["Id"].as_str().map(str::to_string))
        .collect();
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(ids);
    let workers = (0..CONCURRENCY.min(ids.len().max(1))).map(|_| {
        let next = next.clone();
        let ids = ids.clone();
        let mut docker = ctx.docker();
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else {
                    return Ok::<(), BoxError>(());
                };
                docker.remove_force(id).await?;
            }
        }
    });
    futures::future::try_join_all(workers).await?;
    Ok(ids.len())
}

/// `pairs` interleaved pairs of an ec2d fleet of `n` and `n` plain containers with
/// `in_flight` at once: `(ec2d, answers, waiter p99s, docker)`, ms.
/// The five figures of one fleet size: ec2d until all running, its answer time, the
/// DescribeInstances p99 meanwhile, Docker's time and the per-pair ratio; `targets` are the
/// p99's and the ratio's.
fn push_fleet(
    ctx: &mut Ctx,
    prefix: &str,
    n: usize,
    docker_pace: &str,
    ratio_label: String,
    [e, answers, p99, d]: [Vec<f64>; 4],
    [p99_target, ratio_target]: [Option<Target>; 2],
) {
    let ratio: Vec<f64> = e.iter().zip(&d).map(|(a, b)| a / b).collect();
    let rows = [
        (
            "ec2d",
            format!("ec2d: RunInstances MaxCount {n} until all running"),
            "ms",
            e,
            None,
            "",
        ),
        (
            "answer",
            format!("ec2d: RunInstances MaxCount {n} answer time"),
            "ms",
            answers,
            None,
            "",
        ),
        (
            "describe_p99",
            format!("DescribeInstances p99 while {n} launch"),
            "ms",
            p99,
            p99_target,
            "the waiter's polls",
        ),
        (
            "docker",
            format!("Docker: {n} x docker run -d, {docker_pace}, until all running"),
            "ms",
            d,
            None,
            "",
        ),
        (
            "ratio",
            ratio_label,
            "x",
            ratio,
            ratio_target,
            "per-pair ratio",
        ),
    ];
    for (id, label, unit, values, target, note) in rows {
        ctx.push(figure(
            "fleet",
            &format!("{prefix}.{id}"),
            &label,
            unit,
            &values,
            target,
            note,
        ));
    }
}

async fn fleet_pairs(
    ctx: &mut Ctx,
    ec2: &mut Ec2,
    docker: &mut Docker,
    n: usize,
    pairs: usize,
    in_flight: usize,
) -> R<[Vec<f64>; 4]> {
    let (mut e, mut d, mut answers, mut p99) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        if i % 2 == 1 {
            d.push(fleet_docker(ctx, n, in_flight, i).await?);
        }
        let (t, a, p) = fleet_ec2d(ctx, ec2, docker, n).await?;
        e.push(t);
        answers.push(a);
        p99.push(p);
        if i % 2 == 0 {
            d.push(fleet_docker(ctx, n, in_flight, i).await?);
        }
        eprintln!(
            "  {n}: pair {}/{pairs}: ec2d {:.0} ms (DescribeInstances p99 while launching {:.1} ms), docker {:.0} ms",
            i + 1,
            e[i],
            p99[i],
            d[i]
        );
    }
    Ok([e, answers, p99, d])
}

async fn bench_fleet(ctx: &mut Ctx, ec2: &mut Ec2, docker: &mut Docker) -> R<()> {
    let pairs = ctx.plan.fleet_pairs;
    let n = ctx.plan.fleet_size;
    let large_pairs = ctx.plan.fleet_large_pairs;
    let large = ctx.plan.fleet_large_size;
    ctx.sections.push(Section {
        id: "fleet",
        title: "Fleet",
        method: format!(
            "Docker mode. {pairs} interleaved pairs (order alternating): one RunInstances \
             MinCount=MaxCount={n} (with ClientToken), then DescribeInstances of the {n} ids every \
             {} ms until all read running; next to {n} `docker run -d IMAGE sh -c <keep-alive>` \
             (create + start over the Engine API) with {CONCURRENCY} in flight, the same \
             parallelism as ec2d's reconciler (--concurrency {CONCURRENCY}), while GET \
             /containers/json filtered on the run's label and status=running is polled every {} \
             ms until it lists {n}. Then the same with {large} in {large_pairs} pairs, where \
             the baseline is {large} `docker run -d` all at once ({large} in flight, each on its \
             own connection: issue 16's '200 parallel docker run -d'; ec2d keeps its \
             --concurrency {CONCURRENCY}). 'DescribeInstances p99 while launching' is the p99 \
             of the waiter's own DescribeInstances answer times (the {large} ids, every {} ms \
             from the RunInstances answer to all running). Everything is removed between \
             measurements (instances terminated until their containers are gone).",
            ctx.args.poll_ms, ctx.args.poll_ms, ctx.args.poll_ms
        ),
    });
    let results = fleet_pairs(ctx, ec2, docker, n, pairs, CONCURRENCY).await?;
    push_fleet(
        ctx,
        "fleet",
        n,
        &format!("{CONCURRENCY} in flight"),
        "fleet ratio ec2d / Docker".to_string(),
        results,
        [None, Target::at_most(1.3, "<= 1.3x")],
    );
    let results = fleet_pairs(ctx, ec2, docker, large, large_pairs, large).await?;
    push_fleet(
        ctx,
        "fleet.large",
        large,
        "all at once",
        format!("fleet of {large} ratio ec2d / Docker"),
        results,
        [
            Target::below(20.0, "< 20 ms"),
            Target::at_most(1.15, "<= 1.15x"),
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sections: idle cost and recovery (docker mode, one fresh ec2d with N running instances)
// ---------------------------------------------------------------------------------------------

async fn bench_steady(ctx: &mut Ctx) -> R<()> {
    let n = ctx.plan.steady_size;
    let dir = ctx.work.join("steady");
    let mut proc = Proc::spawn(&ctx.bin, ctx.port(5), &dir, "docker").await?;
    proc.wait_healthy(ctx.poll).await?;
    let mut ec2 = Ec2::new(proc.port);
    let mut docker = ctx.docker();
    let ids = ctx.launch_docker(&mut ec2, n).await?;
    let sid = ctx.learn_store_id(&mut docker, &ids[0]).await?;
    ec2.until_converged(n, Duration::from_secs(120)).await?;
    let result = async {
        if ctx.wants("idle") {
            let l0 = loadavg();
            bench_idle(ctx, &mut proc, n).await?;
            ctx.note_load("idle", l0);
        }
        if ctx.wants("recovery") {
            let l0 = loadavg();
            bench_recovery(ctx, &mut proc, &ids, &sid).await?;
            ctx.note_load("recovery", l0);
        }
        Ok::<(), BoxError>(())
    }
    .await;
    // The process may have been replaced by the recovery runs; talk to whichever runs now.
    let mut ec2 = Ec2::new(proc.port);
    let cleanup = ctx.terminate(&mut ec2, &mut docker, &ids).await;
    proc.stop().await?;
    remove_data_dir(&dir);
    result.and(cleanup)
}

async fn bench_idle(ctx: &mut Ctx, proc: &mut Proc, n: usize) -> R<()> {
    let secs = ctx.plan.idle_secs;
    let window = ctx.plan.idle_window_secs;
    let settle = 5;
    ctx.sections.push(Section {
        id: "idle",
        title: "Idle cost",
        method: format!(
            "Docker mode. A fresh ec2d launches {n} instances (one RunInstances), waits until all \
             run and the status endpoint shows them converged, then {settle} s more. Then nothing \
             is sent for {secs} s while /proc/PID/stat (utime+stime of all threads, in clock \
             ticks of 1/{} s) and /proc/PID/status (VmRSS) are read every second. The CPU figure \
             is per {window}-s window (median, min, max over {} windows) plus the whole {secs}-s \
             average; RSS is over the {secs} one-second samples and judged on its maximum. ec2d \
             runs with its defaults: a full resync every 30 s falls inside the window.",
            clock_ticks_per_sec(),
            secs / window
        ),
    });
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let tck = clock_ticks_per_sec() as f64;
    let pid = proc.pid;
    let t0 = tokio::time::Instant::now();
    let c0 = cpu_ticks(pid)?;
    let mut window_start = c0;
    let mut windows = Vec::new();
    let mut rss_mb = Vec::new();
    let mut threads = 0;
    for s in 1..=secs {
        tokio::time::sleep_until(t0 + Duration::from_secs(s)).await;
        let c = cpu_ticks(pid)?;
        let (rss, _, th) = mem_kib(pid)?;
        threads = th;
        rss_mb.push(rss as f64 / 1024.0);
        if s % window == 0 {
            windows.push((c - window_start) as f64 / tck / window as f64 * 100.0);
            window_start = c;
        }
    }
    let c1 = cpu_ticks(pid)?;
    let avg = (c1 - c0) as f64 / tck / secs as f64 * 100.0;
    let (_, hwm, _) = mem_kib(pid)?;
    eprintln!(
        "  idle: {avg:.3}% of one core over {secs} s; windows {windows:?}; RSS max {:.1} MB",
        sorted(&rss_mb).last().copied().unwrap_or(0.0)
    );
    ctx.push(figure(
        "idle",
        "idle.cpu_avg",
        &format!("ec2d CPU with {n} running, no requests, {secs}-s average"),
        "% core",
        &[avg],
        Target::below(0.5, "< 0.5% of one core"),
        &format!("{} ticks in {secs} s", c1 - c0),
    ));
    ctx.push(figure(
        "idle",
        "idle.cpu_window",
        &format!("ec2d CPU per {window}-s window"),
        "% core",
        &windows,
        None,
        "",
    ));
    ctx.push(figure(
        "idle",
        "idle.rss",
        &format!("ec2d RSS with {n} running (1-s samples)"),
        "MiB",
        &rss_mb,
        Target::max_below(60.0, "< 60 MB (judged on the maximum)"),
        &format!(
            "VmHWM (peak since start, incl. the launch) {:.1} MiB; {threads} threads",
            hwm as f64 / 1024.0
        ),
    ));
    Ok(())
}

/// `docker ps` (the CLI, process start included) listing this store's containers.
async fn docker_ps_cli(sid: &str) -> R<(f64, usize)> {
    let t = Instant::now();
    let out = Command::new("docker")
        .args(["ps", "-q", "--no-trunc", "--filter"])
        .arg(format!("label=ec2d.store-id={sid}"))
        .stdin(Stdio::null())
        .output()
        .await?;
    let d = ms(t.elapsed());
    if !out.status.success() {
        bail!("docker ps failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok((d, String::from_utf8_lossy(&out.stdout).lines().count()))
}

async fn docker_ps_api(docker: &mut Docker, sid: &str) -> R<(f64, usize)> {
    let t = Instant::now();
    let list = docker
        .list(&json!({ "label": [format!("ec2d.store-id={sid}")] }), false)
        .await?;
    Ok((ms(t.elapsed()), list.len()))
}

async fn bench_recovery(ctx: &mut Ctx, proc: &mut Proc, ids: &[String], sid: &str) -> R<()> {
    let n = ids.len();
    let runs = ctx.plan.recovery_runs;
    ctx.sections.push(Section {
        id: "recovery",
        title: "Recovery",
        method: format!(
            "Docker mode, the same ec2d with {n} running instances. {runs} runs: SIGKILL ec2d, \
             wait for it to be reaped, start it again on the same data directory and port, and \
             poll GET /_ec2d/status every {} ms (a refused connection is retried at the same \
             interval). Measured from the spawn: the first status answer; every one of the {n} \
             instances listed with converged=true ('all converged', the target); and the \
             controller having finished its first {n} reconciles with none in flight ('resync \
             done', i.e. every instance re-observed in Docker). Next to it, in alternating order: \
             the time `docker ps -q --filter label=ec2d.store-id=<store>` takes to list them (the \
             CLI, process start included), and the same listing as one Engine API call.",
            ctx.args.poll_ms
        ),
    });
    let mut docker = ctx.docker();
    let (mut conv, mut first, mut resync) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cli, mut api) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let cli_first = run % 2 == 0;
        if cli_first {
            let (c, nc) = docker_ps_cli(sid).await?;
            let (a, na) = docker_ps_api(&mut docker, sid).await?;
            if nc != n || na != n {
                bail!("docker ps listed {nc} / {na}, not {n}");
            }
            cli.push(c);
            api.push(a);
        }
        // Let the store's periodic flush catch up, then kill without warning.
        tokio::time::sleep(Duration::from_secs(1)).await;
        proc.sigkill().await?;
        let t0 = Instant::now();
        let new = Proc::spawn(&ctx.bin, proc.port, &proc.dir, proc.mode).await?;
        *proc = new;
        let mut http = Http::new(Endpoint::Tcp(([127, 0, 0, 1], proc.port).into()));
        let (mut t_first, mut t_conv, mut t_resync) = (None, None, None);
        loop {
            if let Ok(resp) = http.request("GET", "/_ec2d/status", &[], b"").await {
                if resp.status == 200 {
                    let now = ms(t0.elapsed());
                    t_first.get_or_insert(now);
                    let doc = resp.json()?;
                    let instances = doc["instances"].as_array().cloned().unwrap_or_default();
                    let converged = instances
                        .iter()
                        .filter(|i| i["converged"].as_bool() == Some(true))
                        .count();
                    if instances.len() == n && converged == n {
                        t_conv.get_or_insert(now);
                    }
                    let c = &doc["controller"];
                    if c["reconciles_total"].as_u64().unwrap_or(0) >= n as u64
                        && c["in_flight"].as_u64() == Some(0)
                    {
                        t_resync.get_or_insert(now);
                    }
                    if t_conv.is_some() && t_resync.is_some() {
                        break;
                    }
                }
            }
            if let Some(status) = proc.child.try_wait()? {
                bail!(
                    "ec2d exited ({status}) after restart: {}",
                    log_tail(&proc.dir)
                );
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("recovery: not converged after 60 s");
            }
            tokio::time::sleep(ctx.poll).await;
        }
        let (f, c, r) = (
            t_first.expect("set"),
            t_conv.expect("set"),
            t_resync.expect("set"),
        );
        first.push(f);
        conv.push(c);
        resync.push(r);
        if !cli_first {
            let (c, nc) = docker_ps_cli(sid).await?;
            let (a, na) = docker_ps_api(&mut docker, sid).await?;
            if nc != n || na != n {
                bail!("docker ps listed {nc} / {na}, not {n}");
            }
            cli.push(c);
            api.push(a);
        }
        eprintln!(
            "  run {}/{runs}: first answer {f:.0} ms, all converged {c:.0} ms, resync done {r:.0} ms; docker ps {:.0} ms (API {:.1} ms)",
            run + 1,
            cli[run],
            api[run]
        );
    }
    // The instances must have survived the restarts.
    Ec2::new(proc.port)
        .until_state(ids, "running", ctx.poll, Duration::from_secs(10))
        .await?;
    let ratio: Vec<f64> = conv.iter().zip(&cli).map(|(a, b)| a / b).collect();
    ctx.push(figure(
        "recovery",
        "recovery.converged",
        &format!("restart after SIGKILL until status shows all {n} converged"),
        "ms",
        &conv,
        Target::below(2000.0, "< 2 s"),
        "from the spawn of the new process",
    ));
    ctx.push(figure(
        "recovery",
        "recovery.first_answer",
        "restart after SIGKILL until the status endpoint answers",
        "ms",
        &first,
        None,
        "",
    ));
    ctx.push(figure(
        "recovery",
        "recovery.resynced",
        &format!("restart after SIGKILL until the first {n} reconciles are done"),
        "ms",
        &resync,
        None,
        "",
    ));
    ctx.push(figure(
        "recovery",
        "recovery.docker_ps",
        &format!("docker ps listing the {n} containers (CLI)"),
        "ms",
        &cli,
        None,
        "",
    ));
    ctx.push(figure(
        "recovery",
        "recovery.docker_api",
        &format!("Engine API GET /containers/json listing the {n}"),
        "ms",
        &api,
        None,
        "",
    ));
    ctx.push(figure(
        "recovery",
        "recovery.ratio",
        "recovery ratio: all converged / docker ps",
        "x",
        &ratio,
        None,
        "per-run ratio",
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Issue 16: scale, throughput and startup (mock mode)
// ---------------------------------------------------------------------------------------------

/// This process' own CPU (utime+stime of all its threads), in clock ticks: the bench's client
/// cost, reported next to ec2d's.
fn own_cpu_ticks() -> R<u64> {
    cpu_ticks(std::process::id())
}

/// What one closed-loop window did.
struct Window {
    /// Answers (all 200; anything else ends the run with an error).
    count: usize,
    secs: f64,
    /// Every answer's exchange time (request written to answer read), ms.
    latencies: Vec<f64>,
    /// ec2d's and the bench's own CPU over the window, ms.
    ec2d_cpu_ms: f64,
    bench_cpu_ms: f64,
}

impl Window {
    fn rps(&self) -> f64 {
        self.count as f64 / self.secs
    }
    fn ec2d_per_request(&self) -> f64 {
        self.ec2d_cpu_ms / self.count.max(1) as f64
    }
    fn bench_per_request(&self) -> f64 {
        self.bench_cpu_ms / self.count.max(1) as f64
    }
}

/// `clients` clients in a closed loop for `secs`, each on its own kept-alive connection (made
/// before the window opens) and sending its next request when its answer arrives; `next(client,
/// i)` is the client's i-th request. Every request is signed as it is sent (the signing key is
/// derived once a day, the date formatted once a second: see `Signer`).
async fn closed_window<F>(pid: u32, port: u16, clients: usize, secs: f64, next: F) -> R<Window>
where
    F: Fn(usize, usize) -> (&'static str, Params) + Clone,
{
    let tck = clock_ticks_per_sec() as f64;
    let mut conns = Vec::new();
    for _ in 0..clients {
        let mut ec2 = Ec2::new(port);
        ec2.http.connect().await?;
        conns.push(ec2);
    }
    let c0 = cpu_ticks(pid)?;
    let b0 = own_cpu_ticks()?;
    let t = Instant::now();
    let deadline = t + Duration::from_secs_f64(secs);
    let workers = conns.into_iter().enumerate().map(|(w, mut ec2)| {
        let next = next.clone();
        async move {
            let mut lat = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                let (action, params) = next(w, i);
                let (d, resp) = ec2.call_raw(action, &params).await?;
                if resp.status != 200 {
                    let text = resp.text();
                    bail!(
                        "{action} answered {}: {}",
                        resp.status,
                        between(&text, "<Message>", "</Message>").unwrap_or(&text)
                    );
                }
                lat.push(ms(d));
                i += 1;
            }
            Ok::<Vec<f64>, BoxError>(lat)
        }
    });
    // A request still unanswered 30 s after the window closed means ec2d stalled: say so
    // rather than wait for ever.
    let stall = Duration::from_secs_f64(secs) + Duration::from_secs(30);
    let lats = match tokio::time::timeout(stall, futures::future::try_join_all(workers)).await {
        Ok(lats) => lats?,
        Err(_) => bail!(
            "ec2d (pid {pid}) left requests unanswered for 30 s after the {secs} s window closed: stalled"
        ),
    };
    let secs = t.elapsed().as_secs_f64();
    let c1 = cpu_ticks(pid)?;
    let b1 = own_cpu_ticks()?;
    let latencies: Vec<f64> = lats.into_iter().flatten().collect();
    Ok(Window {
        count: latencies.len(),
        secs,
        latencies,
        ec2d_cpu_ms: (c1 - c0) as f64 / tck * 1000.0,
        bench_cpu_ms: (b1 - b0) as f64 / tck * 1000.0,
    })
}

/// Launches `n` instances in RunInstances calls of `POPULATE_BATCH`, each waited for until
/// its instances run, every instance tagged `group=bulk` except the last `needles`, tagged
/// `group=needle`; waits until all run.
async fn populate(ec2: &mut Ec2, n: usize, needles: usize) -> R<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    let bulk = n - needles;
    let mut left = bulk;
    while left > 0 {
        let k = left.min(POPULATE_BATCH);
        ids.extend(ec2.run_instances(k, true, &[("group", "bulk")]).await?.1);
        left -= k;
        ec2.until_settled(ids.len(), Duration::from_secs(120))
            .await?;
    }
    if needles > 0 {
        ids.extend(
            ec2.run_instances(needles, true, &[("group", "needle")])
                .await?
                .1,
        );
    }
    ec2.until_settled(n, Duration::from_secs(600)).await?;
    Ok(ids)
}

fn needle_filter() -> Params {
    vec![
        p("Filter.1.Name", "tag:group"),
        p("Filter.1.Value.1", "needle"),
    ]
}

/// A cheap, deterministic spread of client `w`'s i-th pick over `len` items.
fn spread(w: usize, i: usize, len: usize) -> usize {
    (w.wrapping_mul(7919) ^ i.wrapping_mul(104_729)) % len.max(1)
}

async fn bench_scale(ctx: &mut Ctx) -> R<()> {
    let plan = ctx.plan.clone();
    let n = plan.scale_instances;
    let needles = 10;
    ctx.sections.push(Section {
        id: "scale",
        title: "Scale: 10,000 stored",
        method: format!(
            "Mock mode. One ec2d is given {n} instances by RunInstances calls of \
             {POPULATE_BATCH}, each waited for (MaxCount {MAX_COUNT} calls hang ec2d at 92256a0: \
             see POPULATE_BATCH), every instance tagged group=bulk except {needles} \
             tagged group=needle, and waited for until /metrics shows all running and the \
             controller idle. {} runs; in each: {} DescribeInstances without parameters (all {n} \
             in the answer) one at a time; then {} rounds, one request at a time in rotating \
             order, of DescribeInstances Filter tag:group=needle ({needles} of {n} in the answer), \
             RunInstances (MaxCount 1, with a ClientToken) on the {n}-instance ec2d, and the same \
             RunInstances on a fresh ec2d of the run with nothing stored (its '0 stored' \
             figure; each measured RunInstances adds one instance to its ec2d); then {CLIENTS} \
             clients, each on its own kept-alive connection, in a closed loop for {} s send \
             DescribeInstances InstanceId.1=<one of the {n}, spread over all> (the figure is \
             answers/s; ec2d's and the bench's own CPU per request are utime+stime over that \
             window divided by the answers; the bench signs every request, SigV4 with the \
             signing key kept for the day). Times are the HTTP exchange (request written to \
             answer read); figures are medians over runs of the per-run p50/p99, with min and \
             max. RSS is VmRSS of the {n}-instance ec2d after each run (judged on the maximum).",
            plan.scale_runs,
            plan.scale_describe_all,
            plan.scale_requests,
            plan.scale_throughput_secs,
        ),
    });
    let dir = ctx.work.join("scale");
    let mut proc = Proc::spawn(&ctx.bin, ctx.port(0), &dir, "mock").await?;
    proc.wait_healthy(ctx.poll).await?;
    let mut ec2 = Ec2::new(proc.port);
    let t = Instant::now();
    let ids = populate(&mut ec2, n, needles).await?;
    let populate_secs = t.elapsed().as_secs_f64();
    eprintln!("  {n} instances stored and running in {populate_secs:.1} s");
    let (rss_populated, _, _) = mem_kib(proc.pid)?;
    let (_, all_xml) = ec2.call("DescribeInstances", &[]).await?;
    let all_count = instance_states(&all_xml).len();
    let (_, needle_xml) = ec2.call("DescribeInstances", &needle_filter()).await?;
    let needle_count = instance_states(&needle_xml).len();
    if all_count != n || needle_count != needles {
        bail!(
            "scale setup: {all_count} instances ({needle_count} needles), expected {n} ({needles})"
        );
    }
    let ids = Arc::new(ids);
    let (mut all50, mut all99) = (Vec::new(), Vec::new());
    let (mut f50, mut f99) = (Vec::new(), Vec::new());
    let (mut full50, mut empty50, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    let (mut full99, mut empty99) = (Vec::new(), Vec::new());
    let (mut rps, mut by_id_cpu, mut by_id_bench, mut rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..plan.scale_runs {
        let edir = ctx.work.join(format!("scale-empty-{run}"));
        let mut empty = Proc::spawn(&ctx.bin, ctx.port(1), &edir, "mock").await?;
        empty.wait_healthy(ctx.poll).await?;
        let mut ec2_empty = Ec2::new(empty.port);
        // Warm-up: the first requests of a process set up its caches and connection.
        for _ in 0..5 {
            ec2_empty.run_instances(1, true, &[]).await?;
            ec2.call("DescribeInstances", &needle_filter()).await?;
        }
        let mut all = Vec::new();
        for _ in 0..plan.scale_describe_all {
            all.push(ms(ec2.call("DescribeInstances", &[]).await?.0));
        }
        let mut samples: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for i in 0..plan.scale_requests {
            for j in 0..3 {
                let k = (i + j) % 3;
                let d = match k {
                    0 => ec2.call("DescribeInstances", &needle_filter()).await?.0,
                    1 => ec2.run_instances(1, true, &[]).await?.0,
                    _ => ec2_empty.run_instances(1, true, &[]).await?.0,
                };
                samples[k].push(ms(d));
            }
        }
        empty.stop().await?;
        remove_data_dir(&edir);
        let ids2 = ids.clone();
        let w = closed_window(
            proc.pid,
            proc.port,
            CLIENTS,
            plan.scale_throughput_secs,
            move |c, i| {
                let id = &ids2[spread(c, i, ids2.len())];
                ("DescribeInstances", vec![p("InstanceId.1", id.clone())])
            },
        )
        .await?;
        let s = sorted(&all);
        all50.push(percentile(&s, 0.5));
        all99.push(percentile(&s, 0.99));
        let s = sorted(&samples[0]);
        f50.push(percentile(&s, 0.5));
        f99.push(percentile(&s, 0.99));
        let s = sorted(&samples[1]);
        full50.push(percentile(&s, 0.5));
        full99.push(percentile(&s, 0.99));
        let s = sorted(&samples[2]);
        empty50.push(percentile(&s, 0.5));
        empty99.push(percentile(&s, 0.99));
        ratio.push(full50[run] / empty50[run]);
        rps.push(w.rps());
        by_id_cpu.push(w.ec2d_per_request());
        by_id_bench.push(w.bench_per_request());
        rss.push(mem_kib(proc.pid)?.0 as f64 / 1024.0);
        eprintln!(
            "  run {}/{}: describe all p50 {:.1} ms, needle p50 {:.3} ms, run p50 {n}/0 {:.3}/{:.3} ms, by id {:.0}/s (ec2d {:.3} ms/req, bench {:.3} ms/req), RSS {:.1} MiB",
            run + 1,
            plan.scale_runs,
            all50[run],
            f50[run],
            full50[run],
            empty50[run],
            rps[run],
            by_id_cpu[run],
            by_id_bench[run],
            rss[run]
        );
    }
    let (_, hwm, threads) = mem_kib(proc.pid)?;
    proc.stop().await?;
    remove_data_dir(&dir);
    let sec = "scale";
    ctx.push(figure(
        sec,
        "scale.describe_all.p50",
        &format!("DescribeInstances p50, all {n}"),
        "ms",
        &all50,
        Target::below(25.0, "p50 < 25 ms"),
        &format!("answer {} bytes", all_xml.len()),
    ));
    ctx.push(figure(
        sec,
        "scale.describe_all.p99",
        &format!("DescribeInstances p99, all {n}"),
        "ms",
        &all99,
        None,
        "",
    ));
    ctx.push(figure(
        sec,
        "scale.describe_needle.p50",
        &format!("DescribeInstances p50, filtered by a tag to {needles} of {n}"),
        "ms",
        &f50,
        Target::below(1.0, "p50 < 1 ms"),
        "",
    ));
    ctx.push(figure(
        sec,
        "scale.describe_needle.p99",
        &format!("DescribeInstances p99, filtered by a tag to {needles} of {n}"),
        "ms",
        &f99,
        None,
        "",
    ));
    ctx.push(figure(
        sec,
        "scale.run.full.p50",
        &format!("RunInstances p50, {n} stored, with ClientToken"),
        "ms",
        &full50,
        Target::below(1.0, "p50 < 1 ms"),
        "",
    ));
    ctx.push(figure(
        sec,
        "scale.run.full.p99",
        &format!("RunInstances p99, {n} stored"),
        "ms",
        &full99,
        None,
        "",
    ));
    ctx.push(figure(
        sec,
        "scale.run.empty.p50",
        "RunInstances p50, 0 stored (a fresh ec2d per run)",
        "ms",
        &empty50,
        None,
        "",
    ));
    ctx.push(figure(
        sec,
        "scale.run.empty.p99",
        "RunInstances p99, 0 stored",
        "ms",
        &empty99,
        None,
        "",
    ));
    ctx.push(figure(
        sec,
        "scale.run.ratio",
        &format!("RunInstances p50 with {n} stored / with 0 stored"),
        "x",
        &ratio,
        Target::at_most(1.1, "<= 1.1x"),
        "per-run ratio of the p50s",
    ));
    ctx.push(figure(
        sec,
        "scale.by_id.rps",
        &format!("DescribeInstances by id, {CLIENTS} clients, {n} stored"),
        "req/s",
        &rps,
        Target::at_least(20_000.0, ">= 20,000/s"),
        "",
    ));
    ctx.push(figure(
        sec,
        "scale.by_id.cpu",
        "ec2d CPU per DescribeInstances by id (in that window)",
        "ms",
        &by_id_cpu,
        None,
        "utime+stime / answers",
    ));
    ctx.push(figure(
        sec,
        "scale.by_id.bench_cpu",
        "the bench client's own CPU per DescribeInstances by id",
        "ms",
        &by_id_bench,
        None,
        "the bench's utime+stime / answers (SigV4 signing, HTTP, parsing)",
    ));
    ctx.push(figure(
        sec,
        "scale.rss",
        &format!("ec2d RSS with {n} stored"),
        "MiB",
        &rss,
        Target::max_below(150.0, "< 150 MB (judged on the maximum)"),
        &format!(
            "{:.1} MiB right after the {n} were stored; VmHWM {:.1} MiB; {threads} threads",
            rss_populated as f64 / 1024.0,
            hwm as f64 / 1024.0
        ),
    ));
    ctx.details.insert(
        "scale".into(),
        json!({
            "populate_secs": populate_secs,
            "answer_bytes_all": all_xml.len(),
            "answer_bytes_needle": needle_xml.len(),
        }),
    );
    Ok(())
}

async fn bench_throughput(ctx: &mut Ctx) -> R<()> {
    let plan = ctx.plan.clone();
    ctx.sections.push(Section {
        id: "throughput",
        title: "RunInstances throughput",
        method: format!(
            "Mock mode. {} runs, each on a fresh ec2d: {CLIENTS} clients, each on its own \
             kept-alive connection, in a closed loop (the next request when the answer \
             arrives) of RunInstances MaxCount=1 with a fresh ClientToken (as the SDKs send \
             it), {} s of warm-up then a {} s window. Requests/s is the window's answers \
             (all 200) over its length. 'ec2d CPU per RunInstances' is ec2d's utime+stime over \
             the window divided by its answers (it includes the mock reconcile of every new \
             instance); 'the bench's own CPU' is the same for this process (SigV4 signing of \
             every request with the signing key kept for the day, HTTP, reading the answer), \
             so a client that cannot keep up shows. Durability: after the window ec2d is \
             SIGKILLed at once and started again on its data directory, and the instances it \
             then holds (/metrics ec2d_resources) are compared with the RunInstances answered; \
             'answered but lost' must be 0.",
            plan.throughput_runs, plan.throughput_warmup_secs, plan.throughput_secs,
        ),
    });
    let (mut rps, mut cpu, mut bench, mut p50, mut p99, mut lost, mut cores) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let run_params = |_: usize, _: usize| {
        (
            "RunInstances",
            vec![
                p("ImageId", AMI_ID),
                p("MinCount", "1"),
                p("MaxCount", "1"),
                p("InstanceType", "t3.micro"),
                p("ClientToken", uuid::Uuid::new_v4().to_string()),
            ],
        )
    };
    for run in 0..plan.throughput_runs {
        let dir = ctx.work.join(format!("throughput-{run}"));
        let mut proc = Proc::spawn(&ctx.bin, ctx.port(2), &dir, "mock").await?;
        proc.wait_healthy(ctx.poll).await?;
        let warm = closed_window(
            proc.pid,
            proc.port,
            CLIENTS,
            plan.throughput_warmup_secs,
            run_params,
        )
        .await?;
        let w = closed_window(
            proc.pid,
            proc.port,
            CLIENTS,
            plan.throughput_secs,
            run_params,
        )
        .await?;
        let answered = warm.count + w.count;
        proc.sigkill().await?;
        let mut again = Proc::spawn(&ctx.bin, proc.port, &dir, "mock").await?;
        again.wait_healthy(ctx.poll).await?;
        let stored = metric_sum(
            &Ec2::new(again.port).metrics().await?,
            "ec2d_resources",
            &["kind=\"instance\""],
        );
        again.stop().await?;
        remove_data_dir(&dir);
        let s = sorted(&w.latencies);
        rps.push(w.rps());
        cpu.push(w.ec2d_per_request());
        bench.push(w.bench_per_request());
        cores.push(w.ec2d_cpu_ms / 1000.0 / w.secs * 100.0);
        p50.push(percentile(&s, 0.5));
        p99.push(percentile(&s, 0.99));
        lost.push((answered as f64 - stored).max(0.0));
        eprintln!(
            "  run {}/{}: {:.0} RunInstances/s, ec2d {:.3} ms CPU/req ({:.0}% of a core), bench {:.3} ms CPU/req, p50 {:.2} ms p99 {:.2} ms; {answered} answered, {stored} stored after SIGKILL",
            run + 1,
            plan.throughput_runs,
            rps[run],
            cpu[run],
            cores[run],
            bench[run],
            p50[run],
            p99[run]
        );
    }
    let sec = "throughput";
    ctx.push(figure(
        sec,
        "throughput.run.rps",
        &format!("RunInstances/s, {CLIENTS} clients, every answer durable"),
        "req/s",
        &rps,
        Target::at_least(5000.0, ">= 5,000/s"),
        "",
    ));
    ctx.push(figure(
        sec,
        "throughput.run.cpu",
        "ec2d CPU per RunInstances at that throughput",
        "ms",
        &cpu,
        Target::at_most(0.2, "<= 0.2 ms"),
        "utime+stime / answers, mock reconcile included",
    ));
    ctx.push(figure(
        sec,
        "throughput.run.cores",
        "ec2d CPU during the window",
        "% core",
        &cores,
        None,
        "100 = one core busy",
    ));
    ctx.push(figure(
        sec,
        "throughput.run.bench_cpu",
        "the bench client's own CPU per RunInstances",
        "ms",
        &bench,
        None,
        "the bench's utime+stime / answers",
    ));
    ctx.push(figure(
        sec,
        "throughput.run.p50",
        &format!("RunInstances p50 under {CLIENTS} clients"),
        "ms",
        &p50,
        None,
        "",
    ));
    ctx.push(figure(
        sec,
        "throughput.run.p99",
        &format!("RunInstances p99 under {CLIENTS} clients"),
        "ms",
        &p99,
        None,
        "",
    ));
    ctx.push(figure(
        sec,
        "throughput.run.lost",
        "RunInstances answered but missing after SIGKILL and restart",
        "count",
        &lost,
        Target::at_most(0.0, "0"),
        "answers counted by the bench vs instances stored after the restart",
    ));
    Ok(())
}

async fn bench_startup(ctx: &mut Ctx) -> R<()> {
    let plan = ctx.plan.clone();
    let n = plan.startup_instances;
    let resync_poll = Duration::from_millis(50);
    ctx.sections.push(Section {
        id: "startup",
        title: "Start with 10,000 stored",
        method: format!(
            "Mock mode. One ec2d is given {n} instances (RunInstances calls of \
             {POPULATE_BATCH}, each waited for) and waited for until all run and the controller is idle. {} runs: \
             SIGKILL ec2d, wait for it to be reaped, start it again on the same data directory \
             and port. From the spawn: 'first answer' is the first 200 answer to \
             DescribeInstances InstanceId.1=<a stored instance>, sent every {} ms (a refused \
             connection is retried at the same interval); 'resync done' is the first /metrics \
             scrape (every {} ms after the first answer; a scrape reads every record, so it is \
             not polled faster) showing the controller with at least as many instance \
             reconciles finished as instances stored and none in flight (every instance \
             reconciled once; the queue depth also counts keys scheduled for a later look, \
             so it is not used), confirmed by \
             /_ec2d/status listing all {n} instances converged (the recovery section's test). \
             RSS is VmRSS at 'resync done'.",
            plan.startup_runs,
            ctx.args.poll_ms,
            resync_poll.as_millis()
        ),
    });
    let dir = ctx.work.join("startup");
    let mut proc = Proc::spawn(&ctx.bin, ctx.port(3), &dir, "mock").await?;
    proc.wait_healthy(ctx.poll).await?;
    let mut ec2 = Ec2::new(proc.port);
    let ids = populate(&mut ec2, n, 0).await?;
    let probe = vec![p("InstanceId.1", ids[0].clone())];
    let (mut first, mut resync, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    let result = async {
        for run in 0..plan.startup_runs {
            proc.sigkill().await?;
            let t0 = Instant::now();
            proc = Proc::spawn(&ctx.bin, proc.port, &proc.dir, proc.mode).await?;
            let mut ec2 = Ec2::new(proc.port);
            let f = loop {
                if let Ok((_, resp)) = ec2.call_raw("DescribeInstances", &probe).await {
                    if resp.status == 200 {
                        break ms(t0.elapsed());
                    }
                }
                if let Some(status) = proc.child.try_wait()? {
                    bail!("ec2d exited ({status}) at start: {}", log_tail(&proc.dir));
                }
                if t0.elapsed() > Duration::from_secs(120) {
                    bail!("startup: no answer after 120 s");
                }
                tokio::time::sleep(ctx.poll).await;
            };
            let r = loop {
                let m = ec2.metrics().await?;
                let now = ms(t0.elapsed());
                let stored = metric_sum(&m, "ec2d_resources", &["kind=\"instance\""]);
                let done = metric_sum(&m, "ec2d_reconciles_total", &["kind=\"instance\""]);
                if stored >= n as f64
                    && done >= stored
                    && metric_sum(&m, "ec2d_controller_reconciles_in_flight", &[]) == 0.0
                {
                    let doc = ec2.get_json("/_ec2d/status").await?;
                    let instances = doc["instances"].as_array().cloned().unwrap_or_default();
                    let converged = instances
                        .iter()
                        .filter(|i| i["converged"].as_bool() == Some(true))
                        .count();
                    if converged >= n {
                        break now;
                    }
                }
                if t0.elapsed() > Duration::from_secs(300) {
                    bail!("startup: resync not done after 300 s");
                }
                tokio::time::sleep(resync_poll).await;
            };
            first.push(f);
            resync.push(r);
            rss.push(mem_kib(proc.pid)?.0 as f64 / 1024.0);
            eprintln!(
                "  run {}/{}: first answer {f:.0} ms, resync done {r:.0} ms, RSS {:.1} MiB",
                run + 1,
                plan.startup_runs,
                rss[run]
            );
        }
        Ok::<(), BoxError>(())
    }
    .await;
    proc.stop().await?;
    remove_data_dir(&dir);
    result?;
    let sec = "startup";
    ctx.push(figure(
        sec,
        "startup.first_answer",
        &format!("start with {n} stored (after SIGKILL) until the first EC2 answer"),
        "ms",
        &first,
        Target::below(1000.0, "< 1 s"),
        "from the spawn",
    ));
    ctx.push(figure(
        sec,
        "startup.resynced",
        &format!("start with {n} stored until every object is reconciled once"),
        "ms",
        &resync,
        Target::below(3000.0, "< 3 s"),
        "from the spawn",
    ));
    ctx.push(figure(
        sec,
        "startup.rss",
        &format!("ec2d RSS after the resync, {n} stored"),
        "MiB",
        &rss,
        None,
        "",
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Section: soak (docker mode)
// ---------------------------------------------------------------------------------------------

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> R<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

/// `du` of a directory: allocated bytes of every file under it, not crossing into other file
/// systems (the volume mount propagation point and anything mounted below it).
fn disk_use(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(root) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.dev() != root.dev() {
                continue;
            }
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

/// Growth in % of the samples after the warm-up (the first fifth): the median of the last
/// fifth of them over the median of the first fifth of them.
fn growth_pct(samples: &[f64]) -> f64 {
    let after = &samples[samples.len() / 5..];
    if after.len() < 2 {
        return f64::NAN;
    }
    let k = (after.len() / 5).max(1);
    let first = median_of(&sorted(&after[..k]));
    let last = median_of(&sorted(&after[after.len() - k..]));
    (last / first - 1.0) * 100.0
}

async fn bench_soak(ctx: &mut Ctx) -> R<()> {
    let plan = ctx.plan.clone();
    let secs = ctx.args.soak_secs.unwrap_or(plan.soak_secs);
    let rate = plan.soak_rate;
    let pool = plan.soak_pool;
    let every = plan.soak_sample_secs;
    ctx.sections.push(Section {
        id: "soak",
        title: "Soak",
        method: format!(
            "Docker mode. A fresh ec2d launches {pool} instances and waits until they run; then \
             for {secs} s one client sends {rate} requests/s (a fixed schedule; a slow answer \
             delays the next, so the achieved rate is reported), cycling through: RunInstances \
             (1, tagged soak=yes), DescribeInstances (all), DescribeInstances by id, CreateTags \
             (a changing value on a live instance), DescribeInstances filtered \
             tag:soak=yes and instance-state-name=running, StopInstances, DescribeInstances by \
             id, StartInstances, TerminateInstances (the oldest live instance, while more than \
             {} live), DescribeInstances (all): one launch and one termination per cycle, so \
             containers are created and removed all along. Stop/Start pick a live instance \
             each; an answer 4xx (a Start of an instance still stopping) is counted, not an \
             error. Every {every} s: VmRSS, open file descriptors (/proc/PID/fd) and the data \
             directory's disk use (du, sled's files). Growth is measured after a warm-up of \
             the first fifth of the samples: median of the last fifth of the rest over median \
             of its first fifth. Terminated instances stay describable for \
             {SOAK_TERMINATED_RETENTION_SECS} s (EC2D_TERMINATED_RETENTION_SECONDS; the default \
             is an hour, as EC2 shows them): a steady state of records needs the soak's \
             terminations to be collected within its warm-up, or every figure grows with the \
             terminated records kept, by design.",
            pool / 2
        ),
    });
    let dir = ctx.work.join("soak");
    let retention = SOAK_TERMINATED_RETENTION_SECS.to_string();
    let mut proc = Proc::spawn_with(
        &ctx.bin,
        ctx.port(7),
        &dir,
        "docker",
        &[("EC2D_TERMINATED_RETENTION_SECONDS", &retention)],
    )
    .await?;
    proc.wait_healthy(ctx.poll).await?;
    let mut ec2 = Ec2::new(proc.port);
    let mut docker = ctx.docker();
    let result = async {
        let mut live: std::collections::VecDeque<String> =
            ctx.launch_docker(&mut ec2, pool).await?.into();
        ctx.learn_store_id(&mut docker, &live[0]).await?;
        let pid = proc.pid;
        let (mut rss, mut fds, mut disk) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ok, mut c4xx, mut c5xx) = (0usize, 0usize, 0usize);
        let mut codes: BTreeMap<String, usize> = BTreeMap::new();
        let mut lat = Vec::new();
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let t0 = Instant::now();
        let mut next_sample = Duration::ZERO;
        let mut i = 0usize;
        while t0.elapsed() < Duration::from_secs(secs) {
            if t0.elapsed() >= next_sample {
                rss.push(mem_kib(pid)?.0 as f64 / 1024.0);
                fds.push(open_fds(pid)? as f64);
                disk.push(disk_use(&dir) as f64 / 1024.0 / 1024.0);
                next_sample += Duration::from_secs(every);
            }
            ticker.tick().await;
            let pick = live
                .get(spread(1, i, live.len()))
                .cloned()
                .unwrap_or_default();
            let (action, params): (&str, Params) = match i % 10 {
                0 => (
                    "RunInstances",
                    vec![
                        p("ImageId", AMI_ID),
                        p("MinCount", "1"),
                        p("MaxCount", "1"),
                        p("InstanceType", "t3.micro"),
                        p("ClientToken", uuid::Uuid::new_v4().to_string()),
                        p("TagSpecification.1.ResourceType", "instance"),
                        p("TagSpecification.1.Tag.1.Key", "soak"),
                        p("TagSpecification.1.Tag.1.Value", "yes"),
                    ],
                ),
                1 | 9 => ("DescribeInstances", Vec::new()),
                2 | 6 => ("DescribeInstances", vec![p("InstanceId.1", pick)]),
                3 => (
                    "CreateTags",
                    vec![
                        p("ResourceId.1", pick),
                        p("Tag.1.Key", "round"),
                        p("Tag.1.Value", i.to_string()),
                    ],
                ),
                4 => (
                    "DescribeInstances",
                    vec![
                        p("Filter.1.Name", "tag:soak"),
                        p("Filter.1.Value.1", "yes"),
                        p("Filter.2.Name", "instance-state-name"),
                        p("Filter.2.Value.1", "running"),
                    ],
                ),
                5 => ("StopInstances", vec![p("InstanceId.1", pick)]),
                7 => ("StartInstances", vec![p("InstanceId.1", pick)]),
                _ => {
                    if live.len() > pool / 2 {
                        let oldest = live.pop_front().expect("non-empty");
                        ("TerminateInstances", vec![p("InstanceId.1", oldest)])
                    } else {
                        ("DescribeInstances", Vec::new())
                    }
                }
            };
            let (d, resp) = ec2.call_raw(action, &params).await?;
            lat.push(ms(d));
            match resp.status {
                200 => {
                    ok += 1;
                    if action == "RunInstances" {
                        let ids: Vec<String> = instance_states(&resp.text())
                            .into_iter()
                            .map(|(id, _)| id)
                            .collect();
                        ctx.launched.extend(ids.iter().cloned());
                        live.extend(ids);
                    }
                }
                s => {
                    let text = resp.text();
                    let code = between(&text, "<Code>", "</Code>").unwrap_or("?");
                    *codes.entry(format!("{action} {s} {code}")).or_default() += 1;
                    if s >= 500 {
                        c5xx += 1;
                    } else {
                        c4xx += 1;
                    }
                }
            }
            i += 1;
        }
        let achieved = i as f64 / t0.elapsed().as_secs_f64();
        let last = (rss.last().copied(), fds.last().copied(), disk.last().copied());
        eprintln!(
            "  soak: {i} requests ({achieved:.1}/s), {ok} ok, {c4xx} 4xx, {c5xx} 5xx; RSS {:.1} -> {:.1} MiB, fds {} -> {}, disk {:.1} -> {:.1} MiB; growth after warm-up: RSS {:.1}%, fds {:.1}%, disk {:.1}%",
            rss[0],
            last.0.unwrap_or(f64::NAN),
            fds[0],
            last.1.unwrap_or(f64::NAN),
            disk[0],
            last.2.unwrap_or(f64::NAN),
            growth_pct(&rss),
            growth_pct(&fds),
            growth_pct(&disk)
        );
        let sec = "soak";
        let s = sorted(&lat);
        let growths = [
            (
                "soak.rss_growth",
                format!("RSS growth over {secs} s after warm-up"),
                &rss,
                format!("{} samples every {every} s, MiB", rss.len()),
            ),
            (
                "soak.fds_growth",
                "open file descriptors growth after warm-up".to_string(),
                &fds,
                "fds".to_string(),
            ),
            (
                "soak.disk_growth",
                "data directory disk use growth after warm-up".to_string(),
                &disk,
                "MiB".to_string(),
            ),
        ];
        for (id, name, samples, unit) in growths {
            let range = sorted(samples);
            ctx.push(figure(
                sec,
                id,
                &name,
                "%",
                &[growth_pct(samples)],
                Target::below(5.0, "< 5%"),
                &format!(
                    "{:.1} to {:.1} ({unit})",
                    range[0],
                    range.last().copied().unwrap_or(f64::NAN)
                ),
            ));
        }
        ctx.push(figure(
            sec,
            "soak.5xx",
            "answers 5xx",
            "count",
            &[c5xx as f64],
            Target::at_most(0.0, "0"),
            &format!("{i} requests, {ok} answered 200, {c4xx} 4xx: {codes:?}"),
        ));
        ctx.push(figure(
            sec,
            "soak.rate",
            "achieved request rate",
            "req/s",
            &[achieved],
            None,
            &format!("scheduled {rate}/s"),
        ));
        ctx.push(figure(
            sec,
            "soak.p99",
            "request p99 over the soak (all kinds)",
            "ms",
            &[percentile(&s, 0.99)],
            None,
            &format!("p50 {:.2} ms", percentile(&s, 0.5)),
        ));
        ctx.details.insert(
            "soak".into(),
            json!({ "rss_mib": rss, "fds": fds, "disk_mib": disk, "every_secs": every }),
        );
        let live: Vec<String> = live.into();
        ctx.terminate(&mut ec2, &mut docker, &live).await?;
        Ok::<(), BoxError>(())
    }
    .await;
    proc.stop().await?;
    remove_data_dir(&dir);
    result
}

// ---------------------------------------------------------------------------------------------
// Machine description
// ---------------------------------------------------------------------------------------------

fn first_line_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':').or_else(|| l.split_once('=')))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

fn command_output(cmd: &str, args: &[&str], dir: &Path) -> Option<String> {
    std::process::Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

async fn machine(ctx: &Ctx) -> R<Value> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let mem_kib: u64 = first_line_value(&meminfo, "MemTotal")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let virtualized = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == "hypervisor"));
    let mut docker = ctx.docker();
    let version = docker
        .http
        .request("GET", "/version", &[], b"")
        .await?
        .json()?;
    let info = docker.ok("GET", "/info", None).await?.json()?;
    // Only what builds the binary counts; the bench's own outputs are untracked files.
    let dirty = command_output(
        "git",
        &[
            "status",
            "--porcelain",
            "--",
            "src",
            "Cargo.toml",
            "Cargo.lock",
        ],
        &ctx.root,
    )
    .map(|s| !s.is_empty())
    .unwrap_or(false);
    Ok(json!({
        "cpu_model": first_line_value(&cpuinfo, "model name").unwrap_or_default(),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "virtualized": virtualized,
        "memory_mib": mem_kib / 1024,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "os": first_line_value(&os, "PRETTY_NAME").unwrap_or_default(),
        "docker_version": version["Version"],
        "docker_api_version": version["ApiVersion"],
        "containerd": info["ContainerdCommit"]["ID"],
        "docker_storage_driver": info["Driver"],
        "docker_cgroup": format!("{} {}", info["CgroupDriver"].as_str().unwrap_or(""), info["CgroupVersion"].as_str().unwrap_or("")),
        "docker_containers_running_at_start": info["ContainersRunning"],
        "rustc": command_output("rustc", &["--version"], &ctx.root).unwrap_or_default(),
        "ec2d_commit": command_output("git", &["rev-parse", "--short", "HEAD"], &ctx.root).unwrap_or_default(),
        "ec2d_worktree_dirty": dirty,
        "clock_ticks_per_sec": clock_ticks_per_sec(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Rendering: the table (stdout) and BENCHMARKS.md, both from the JSON document
// ---------------------------------------------------------------------------------------------

fn num(v: &Value, unit: &str) -> String {
    let Some(x) = v.as_f64() else {
        return "-".to_string();
    };
    if x.is_nan() {
        return "-".to_string();
    }
    match unit {
        "x" => format!("{x:.2}x"),
        "% core" => format!("{x:.3}"),
        "req/s" => format!("{x:.0}"),
        "MiB" => format!("{x:.1}"),
        "count" => format!("{x:.0}"),
        "%" => format!("{x:.1}"),
        _ if x.abs() >= 100.0 => format!("{x:.0}"),
        _ if x.abs() >= 10.0 => format!("{x:.1}"),
        _ => format!("{x:.3}"),
    }
}

fn unit_label(unit: &str) -> &str {
    match unit {
        "x" => "",
        "% core" => "% of a core",
        other => other,
    }
}

struct Row {
    cells: Vec<String>,
}

fn table_rows(doc: &Value) -> Vec<(String, Row)> {
    let empty = Vec::new();
    doc["figures"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|f| {
            let unit = f["unit"].as_str().unwrap_or("");
            let met = match f["met"].as_bool() {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "",
            };
            (
                f["section"].as_str().unwrap_or("").to_string(),
                Row {
                    cells: vec![
                        f["label"].as_str().unwrap_or("").to_string(),
                        num(&f["median"], unit),
                        num(&f["min"], unit),
                        num(&f["max"], unit),
                        unit_label(unit).to_string(),
                        f["n"].to_string(),
                        f["target"]["text"].as_str().unwrap_or("").to_string(),
                        met.to_string(),
                    ],
                },
            )
        })
        .collect()
}

const HEADER: [&str; 8] = [
    "figure", "median", "min", "max", "unit", "n", "target", "result",
];

fn print_table(doc: &Value) {
    let rows = table_rows(doc);
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.len()).collect();
    for (_, r) in &rows {
        for (i, c) in r.cells.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            if (1..=5).contains(&i) {
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(pad));
            }
            out.push_str("  ");
        }
        out.trim_end().to_string()
    };
    println!();
    println!(
        "{}",
        line(&HEADER.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    );
    println!(
        "{}",
        line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>())
    );
    let mut last = String::new();
    for (section, r) in &rows {
        if *section != last && !last.is_empty() {
            println!();
        }
        last = section.clone();
        println!("{}", line(&r.cells));
    }
    println!();
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn render_markdown(doc: &Value) -> String {
    let mut md = String::new();
    let m = &doc["machine"];
    let _ = writeln!(md, "# ec2d benchmarks\n");
    let _ = writeln!(
        md,
        "<!-- Generated by `cargo run --release --example bench` from bench-results/latest.json. Do not edit by hand: re-run the bench (or `-- --render-only`). -->\n"
    );
    let _ = writeln!(
        md,
        "Measured {} ({}; {:.0} s of measuring). Every figure is the median over repeated runs, with \
         the minimum and maximum beside it; `n` is the number of runs (rounds, pairs, windows). \
         Comparisons are ratios measured in the same run, interleaved so machine noise hits both \
         sides.\n",
        doc["generated_at"].as_str().unwrap_or(""),
        if doc["complete"].as_bool() == Some(true) {
            "full run"
        } else {
            "PARTIAL run"
        },
        doc["duration_secs"].as_f64().unwrap_or(0.0)
    );
    md.push_str("## How to run\n\n```sh\n");
    md.push_str(
        "cargo run --release --example bench                        # everything, then this file\n",
    );
    md.push_str("cargo run --release --example bench -- --quick             # short smoke run (bench-results/partial.json)\n");
    md.push_str("cargo run --release --example bench -- --only launch,fleet # some sections (run, describe, launch, stopstart, fleet, idle, recovery, scale, throughput, startup, soak)\n");
    md.push_str("cargo run --release --example bench -- --render-only       # regenerate this file from bench-results/latest.json\n");
    md.push_str("```\n\n");
    md.push_str(
        "The bench builds and starts the release `ec2d` binary as child processes (8 local ports \
         from `--port-base`, default 31310), reads their CPU time and memory from `/proc/<pid>`, and \
         talks to them as clients do: EC2 Query POSTs signed with SigV4 (access key `test`, \
         region us-east-1). The Docker baselines go to the Engine API over the unix socket; both \
         sides use the same raw HTTP/1.1 keep-alive client, and every \"until <state>\" loop \
         polls at the same interval on both sides. Needs Docker and `ec2d-test/busybox:latest` \
         (`tests/support/build-test-images.sh busybox`). Everything it creates is removed at the \
         end. Other flags: `--poll-ms`, `--transition-poll-ms`, `--image`, `--ec2d-bin`, `--no-build`, `--data-root`, `--keep`, \
         `--publish`, `--soak-secs`.\n\n",
    );
    md.push_str("## Machine\n\n| | |\n| --- | --- |\n");
    let row = |md: &mut String, k: &str, v: String| {
        let _ = writeln!(md, "| {k} | {} |", md_escape(&v));
    };
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    row(
        &mut md,
        "CPU",
        format!(
            "{} ({} cores{})",
            s(&m["cpu_model"]),
            s(&m["cores"]),
            if m["virtualized"].as_bool() == Some(true) {
                ", virtual machine"
            } else {
                ""
            }
        ),
    );
    row(&mut md, "Memory", format!("{} MiB", s(&m["memory_mib"])));
    row(&mut md, "Kernel", s(&m["kernel"]));
    row(&mut md, "OS", s(&m["os"]));
    row(
        &mut md,
        "Docker",
        format!(
            "{} (API {}), storage {}, cgroup {}; {} containers running at the start",
            s(&m["docker_version"]),
            s(&m["docker_api_version"]),
            s(&m["docker_storage_driver"]),
            s(&m["docker_cgroup"]),
            s(&m["docker_containers_running_at_start"])
        ),
    );
    let loads: Vec<f64> = doc["load"]
        .as_object()
        .into_iter()
        .flat_map(|o| o.values())
        .flat_map(|l| [l["before"].as_f64(), l["after"].as_f64()])
        .flatten()
        .collect();
    if !loads.is_empty() {
        let l = sorted(&loads);
        row(
            &mut md,
            "Load",
            format!(
                "1-minute load average {:.2} to {:.2} around the sections (other work shares this machine; see Method)",
                l[0],
                l[l.len() - 1]
            ),
        );
    }
    row(&mut md, "Rust", s(&m["rustc"]));
    row(
        &mut md,
        "ec2d",
        format!(
            "commit {}{}",
            s(&m["ec2d_commit"]),
            if m["ec2d_worktree_dirty"].as_bool() == Some(true) {
                " with uncommitted changes to src/ or Cargo.*"
            } else {
                ""
            }
        ),
    );
    md.push('\n');

    md.push_str("## Results\n\n");
    let rows = table_rows(doc);
    let titles: BTreeMap<String, String> = doc["sections"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["id"].as_str().unwrap_or("").to_string(),
                        s["title"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut summary = Vec::new();
    for f in doc["figures"].as_array().into_iter().flatten() {
        if let Some(met) = f["met"].as_bool() {
            let unit = f["unit"].as_str().unwrap_or("");
            let on = if f["target"]["on"] == "max" {
                "max"
            } else {
                "median"
            };
            let value = format!("{} {}", num(&f[on], unit), unit_label(unit));
            summary.push(format!(
                "- {} **{}**: {} {} (target {})",
                if met { "met" } else { "MISSED" },
                f["label"].as_str().unwrap_or(""),
                on,
                value.trim_end(),
                f["target"]["text"].as_str().unwrap_or("")
            ));
        }
    }
    for f in doc["failed_sections"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "- FAILED section **{}**: {}",
            f["section"].as_str().unwrap_or(""),
            md_escape(f["error"].as_str().unwrap_or(""))
        );
    }
    md.push_str("Targets:\n\n");
    for line in &summary {
        md.push_str(line);
        md.push('\n');
    }
    md.push('\n');
    let mut last = String::new();
    for (section, r) in &rows {
        if *section != last {
            let _ = writeln!(
                md,
                "\n### {}\n\n| {} |\n| --- | ---: | ---: | ---: | --- | ---: | --- | --- |",
                titles
                    .get(section)
                    .cloned()
                    .unwrap_or_else(|| section.clone()),
                HEADER.join(" | ")
            );
            last = section.clone();
        }
        let cells: Vec<String> = r.cells.iter().map(|c| md_escape(c)).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    md.push_str("\n## Method\n\n");
    for sec in doc["sections"].as_array().into_iter().flatten() {
        let load = &doc["load"][sec["id"].as_str().unwrap_or("")];
        let load = match (load["before"].as_f64(), load["after"].as_f64()) {
            (Some(b), Some(a)) => {
                format!(" (1-minute load average before / after: {b:.2} / {a:.2})")
            }
            _ => String::new(),
        };
        let _ = writeln!(
            md,
            "**{}.** {}{load}\n",
            sec["title"].as_str().unwrap_or(""),
            sec["method"].as_str().unwrap_or("")
        );
    }
    md.push_str(
        "Percentiles are nearest-rank. ec2d runs with its defaults (log level info to a file, \
         resync every 30 s) except `--concurrency 16` made explicit. Poll interval: ",
    );
    let _ = writeln!(
        md,
        "{} ms on both sides of every comparison, except stop/start: {} ms on both sides \
         (see that section's method).\n",
        s(&doc["params"]["poll_ms"]),
        s(&doc["params"]["transition_poll_ms"])
    );
    md.push_str("## Per-run values\n\n");
    for f in doc["figures"].as_array().into_iter().flatten() {
        let unit = f["unit"].as_str().unwrap_or("");
        let values: Vec<String> = f["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| num(v, unit))
            .collect();
        if values.len() > 12 {
            continue;
        }
        let note = f["note"].as_str().unwrap_or("");
        let unit_text = match unit_label(unit) {
            "" => String::new(),
            u => format!(" ({u})"),
        };
        let _ = writeln!(
            md,
            "- {}{unit_text}: {}{}",
            md_escape(f["label"].as_str().unwrap_or("")),
            values.join(", "),
            if note.is_empty() {
                String::new()
            } else {
                format!("; {}", md_escape(note))
            }
        );
    }
    if let Some(details) = doc["details"].as_object() {
        if !details.is_empty() {
            md.push_str("\nOther observations (JSON): `");
            md.push_str(&serde_json::to_string(details).unwrap_or_default());
            md.push_str("`\n");
        }
    }
    md
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

fn docker_socket() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => PathBuf::from(&h["unix://".len()..]),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

async fn prepare(ctx: &mut Ctx) -> R<()> {
    let mut docker = Docker::new(&ctx.sock, "");
    let version = docker
        .http
        .request("GET", "/version", &[], b"")
        .await
        .map_err(|e| format!("Docker engine not reachable at {}: {e}", ctx.sock.display()))?
        .json()?;
    ctx.api = format!("/v{}", version["ApiVersion"].as_str().unwrap_or("1.41"));
    let mut docker = ctx.docker();
    let image_path = format!("/images/{}/json", ctx.args.image);
    if docker.call("GET", &image_path, None).await?.status == 404 {
        eprintln!("building the test image (tests/support/build-test-images.sh busybox)");
        let status = Command::new(ctx.root.join("tests/support/build-test-images.sh"))
            .arg("busybox")
            .status()
            .await?;
        if !status.success() {
            bail!("could not build {}", ctx.args.image);
        }
    }
    let tag_path = format!("/images/{}/json", ctx.ami_ref);
    if docker.call("GET", &tag_path, None).await?.status == 404 {
        docker
            .ok(
                "POST",
                &format!(
                    "/images/{}/tag?repo={}&tag={}",
                    ctx.args.image,
                    pct(AMI_REPO),
                    AMI_ID
                ),
                None,
            )
            .await?;
        ctx.tagged_ami = true;
    }
    Ok(())
}

async fn run_sections(ctx: &mut Ctx) -> R<()> {
    prepare(ctx).await?;
    if ctx.wants("run") {
        eprintln!("== RunInstances answer time (mock)");
        let l0 = loadavg();
        bench_run(ctx).await?;
        ctx.note_load("run", l0);
    }
    if ctx.wants("describe") {
        eprintln!("== DescribeInstances (mock)");
        let l0 = loadavg();
        bench_describe(ctx).await?;
        ctx.note_load("describe", l0);
    }
    if ctx.wants("launch") || ctx.wants("stopstart") || ctx.wants("fleet") {
        let dir = ctx.work.join("docker");
        let mut proc = Proc::spawn(&ctx.bin, ctx.port(4), &dir, "docker").await?;
        proc.wait_healthy(ctx.poll).await?;
        let mut ec2 = Ec2::new(proc.port);
        let mut docker = ctx.docker();
        let result = async {
            if ctx.wants("launch") {
                eprintln!("== launch to running (docker)");
                let l0 = loadavg();
                bench_launch(ctx, &mut ec2, &mut docker).await?;
                ctx.note_load("launch", l0);
            }
            if ctx.wants("stopstart") {
                eprintln!("== stop / start (docker)");
                let l0 = loadavg();
                bench_stopstart(ctx, &mut ec2, &mut docker).await?;
                ctx.note_load("stopstart", l0);
            }
            if ctx.wants("fleet") {
                eprintln!("== fleet (docker)");
                let l0 = loadavg();
                bench_fleet(ctx, &mut ec2, &mut docker).await?;
                ctx.note_load("fleet", l0);
            }
            Ok::<(), BoxError>(())
        }
        .await;
        proc.stop().await?;
        remove_data_dir(&dir);
        result?;
    }
    if ctx.wants("idle") || ctx.wants("recovery") {
        eprintln!("== idle cost / recovery (docker)");
        bench_steady(ctx).await?;
    }
    let scale = ctx.plan.scale_instances;
    let startup = ctx.plan.startup_instances;
    guarded_section(ctx, "scale", format!("scale: {scale} stored (mock)"), |c| {
        Box::pin(bench_scale(c))
    })
    .await;
    guarded_section(
        ctx,
        "throughput",
        format!("RunInstances throughput, {CLIENTS} clients (mock)"),
        |c| Box::pin(bench_throughput(c)),
    )
    .await;
    guarded_section(
        ctx,
        "startup",
        format!("start with {startup} stored (mock)"),
        |c| Box::pin(bench_startup(c)),
    )
    .await;
    guarded_section(ctx, "soak", "soak (docker)".to_string(), |c| {
        Box::pin(bench_soak(c))
    })
    .await;
    Ok(())
}

/// Runs one of issue 16's sections when wanted: its failure is recorded and the run goes on
/// (see [`Ctx::section_failed`]), and the load average around it is noted.
async fn guarded_section<F>(ctx: &mut Ctx, id: &str, banner: String, section: F)
where
    F: for<'a> FnOnce(&'a mut Ctx) -> futures::future::LocalBoxFuture<'a, R<()>>,
{
    if !ctx.wants(id) {
        return;
    }
    eprintln!("== {banner}");
    let l0 = loadavg();
    let result = section(ctx).await;
    ctx.section_failed(id, result);
    ctx.note_load(id, l0);
}

/// Removes whatever the run created and may have left: baseline containers, the containers of
/// instances it launched (and of the stores it ran), the AMI tag, the work directory.
async fn cleanup(ctx: &mut Ctx) {
    if ctx.api.is_empty() {
        return;
    }
    match remove_baselines(ctx, None).await {
        Ok(0) => {}
        Ok(n) => eprintln!("cleanup: removed {n} baseline container(s)"),
        Err(e) => eprintln!("cleanup: baseline containers: {e}"),
    }
    let mut docker = ctx.docker();
    let mut removed = 0;
    for id in std::mem::take(&mut ctx.launched) {
        if let Ok(true) = docker.remove_force(&format!("localstack-ec2.{id}")).await {
            removed += 1;
        }
    }
    for sid in &ctx.store_ids {
        let list = docker
            .list(&json!({ "label": [format!("ec2d.store-id={sid}")] }), true)
            .await
            .unwrap_or_default();
        for c in list {
            if let Some(id) = c["Id"].as_str() {
                if let Ok(true) = docker.remove_force(id).await {
                    removed += 1;
                }
            }
        }
    }
    if removed > 0 {
        eprintln!("cleanup: removed {removed} leftover instance container(s)");
    }
    if ctx.tagged_ami {
        let path = format!("/images/{}?noprune=1", ctx.ami_ref);
        if let Err(e) = docker.ok("DELETE", &path, None).await {
            eprintln!("cleanup: untag {}: {e}", ctx.ami_ref);
        }
    }
    if ctx.args.keep {
        eprintln!("work directory kept: {}", ctx.work.display());
    } else {
        remove_data_dir(&ctx.work);
    }
}

fn write_outputs(ctx: &Ctx, doc: &Value, complete: bool) -> R<()> {
    let dir = ctx.root.join("bench-results");
    std::fs::create_dir_all(&dir)?;
    let publish = complete || ctx.args.publish;
    let json_path = dir.join(if publish {
        "latest.json"
    } else {
        "partial.json"
    });
    std::fs::write(&json_path, serde_json::to_string_pretty(doc)? + "\n")?;
    eprintln!("wrote {}", json_path.display());
    if publish {
        render_file(&ctx.root)?;
    } else {
        eprintln!("BENCHMARKS.md left alone (partial run; --publish to write it)");
    }
    Ok(())
}

/// BENCHMARKS.md from bench-results/latest.json, read back from the file.
fn render_file(root: &Path) -> R<()> {
    let json_path = root.join("bench-results/latest.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json_path)?)?;
    let md_path = root.join("BENCHMARKS.md");
    std::fs::write(&md_path, render_markdown(&doc))?;
    eprintln!("wrote {} from {}", md_path.display(), json_path.display());
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match real_main().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn real_main() -> R<()> {
    let args = Args::parse();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if args.render_only {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(
            root.join("bench-results/latest.json"),
        )?)?;
        print_table(&doc);
        return render_file(&root);
    }
    for s in &args.only {
        if !SECTIONS.contains(&s.as_str()) {
            bail!("unknown section {s:?}; sections: {}", SECTIONS.join(", "));
        }
    }
    let bin = match &args.ec2d_bin {
        Some(b) => b.clone(),
        None => {
            if !args.no_build {
                eprintln!("building the release ec2d (cargo build --release --bin ec2d)");
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
                let status = Command::new(cargo)
                    .args(["build", "--release", "--bin", "ec2d"])
                    .current_dir(&root)
                    .status()
                    .await?;
                if !status.success() {
                    bail!("cargo build --release --bin ec2d failed");
                }
            }
            // Where cargo put it: CARGO_TARGET_DIR (relative to the crate) when set.
            std::env::var_os("CARGO_TARGET_DIR")
                .map(|d| root.join(d))
                .unwrap_or_else(|| root.join("target"))
                .join("release/ec2d")
        }
    };
    if !bin.exists() {
        bail!("{} does not exist", bin.display());
    }
    let run_id = format!("{:08x}", rand::random::<u32>());
    let work = args
        .data_root
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("ec2d-bench-{run_id}"));
    std::fs::create_dir_all(&work)?;
    let complete = !args.quick && args.only.is_empty();
    let mut ctx = Ctx {
        plan: Plan::new(args.quick),
        poll: Duration::from_millis(args.poll_ms),
        transition_poll: Duration::from_millis(args.transition_poll_ms),
        ami_ref: format!("{AMI_REPO}:{AMI_ID}"),
        args,
        root,
        bin,
        work,
        run_id,
        sock: docker_socket(),
        api: String::new(),
        tagged_ami: false,
        launched: BTreeSet::new(),
        store_ids: BTreeSet::new(),
        figures: Vec::new(),
        sections: Vec::new(),
        details: serde_json::Map::new(),
        loads: BTreeMap::new(),
        failed: Vec::new(),
    };
    let started_at = OffsetDateTime::now_utc();
    let t = Instant::now();
    let outcome = tokio::select! {
        r = run_sections(&mut ctx) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    };
    let duration = t.elapsed().as_secs_f64();
    cleanup(&mut ctx).await;
    outcome?;
    let complete = complete && ctx.failed.is_empty();
    let mut command = "cargo run --release --example bench".to_string();
    let mut extra = Vec::new();
    if ctx.args.quick {
        extra.push("--quick".to_string());
    }
    if !ctx.args.only.is_empty() {
        extra.push(format!("--only {}", ctx.args.only.join(",")));
    }
    if !extra.is_empty() {
        command.push_str(" -- ");
        command.push_str(&extra.join(" "));
    }
    let doc = json!({
        "schema": 1,
        "generated_at": started_at.format(&Rfc3339)?,
        "command": command,
        "complete": complete,
        "quick": ctx.args.quick,
        "only": ctx.args.only,
        "duration_secs": duration,
        "machine": machine(&ctx).await?,
        "ec2d_binary": ctx.bin.display().to_string(),
        "params": {
            "poll_ms": ctx.args.poll_ms,
            "transition_poll_ms": ctx.args.transition_poll_ms,
            "port_base": ctx.args.port_base,
            "image": ctx.args.image,
            "ami": ctx.ami_ref,
            "concurrency": CONCURRENCY,
            "plan": ctx.plan,
        },
        "sections": ctx.sections.iter().map(|s| json!({"id": s.id, "title": s.title, "method": s.method})).collect::<Vec<_>>(),
        "figures": ctx.figures,
        "details": ctx.details,
        "load": ctx.loads,
        "failed_sections": ctx.failed,
    });
    print_table(&doc);
    for f in &ctx.failed {
        eprintln!("FAILED section {}: {}", f["section"], f["error"]);
    }
    write_outputs(&ctx, &doc, complete)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sigv4_matches_the_aws_test_suite() {
        // aws-sig-v4-test-suite, get-vanilla.
        let canonical = canonical_request(
            "GET",
            "/",
            "",
            &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
            ],
            &hex(&Sha256::digest(b"")),
        );
        let (sig, scope) = sigv4_signature(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830T123600Z",
            "us-east-1",
            "service",
            &canonical,
        );
        assert_eq!(scope, "20150830/us-east-1/service/aws4_request");
        assert_eq!(
            sig,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn the_cached_signer_signs_as_the_full_derivation() {
        let mut signer = Signer {
            access_key: "test".into(),
            secret: "test".into(),
            region: REGION.into(),
            cache: None,
        };
        let body = "Action=DescribeRegions&Version=2016-11-15";
        for _ in 0..2 {
            let (amz_date, auth) = signer.sign("127.0.0.1:1", body);
            let canonical = canonical_request(
                "POST",
                "/",
                "",
                &[
                    ("content-type", FORM_CONTENT_TYPE),
                    ("host", "127.0.0.1:1"),
                    ("x-amz-date", &amz_date),
                ],
                &hex(&Sha256::digest(body.as_bytes())),
            );
            let (sig, _) = sigv4_signature("test", &amz_date, REGION, "ec2", &canonical);
            assert!(auth.ends_with(&format!("Signature={sig}")), "{auth}");
        }
    }

    #[test]
    fn sums_metric_samples_by_label() {
        let text = "# HELP x\nec2d_resources{kind=\"instance\",state=\"running\"} 3\n\
                    ec2d_resources{kind=\"instance\",state=\"stopped\"} 2\n\
                    ec2d_resources{kind=\"volume\",state=\"in-use\"} 5\n\
                    ec2d_controller_queue_depth 0\n";
        assert_eq!(
            metric_sum(text, "ec2d_resources", &["kind=\"instance\""]),
            5.0
        );
        assert_eq!(metric_sum(text, "ec2d_controller_queue_depth", &[]), 0.0);
        assert_eq!(metric_sum(text, "ec2d_nothing", &[]), 0.0);
    }

    #[test]
    fn growth_is_measured_after_the_warm_up() {
        // The warm-up's climb does not count; a flat rest is 0%, a 10% rise shows.
        let mut flat = vec![10.0, 50.0];
        flat.extend([100.0; 8]);
        assert_eq!(growth_pct(&flat), 0.0);
        let rising: Vec<f64> = (0..10).map(|i| 100.0 + f64::from(i) * 10.0 / 9.0).collect();
        let want = (110.0 / (100.0 + 20.0 / 9.0) - 1.0) * 100.0;
        assert!((growth_pct(&rising) - want).abs() < 1e-9);
    }

    #[test]
    fn parses_instance_states() {
        let xml = "<instancesSet><item><instanceId>i-1</instanceId><imageId>ami-1</imageId>\
                   <instanceState><code>16</code><name>running</name></instanceState></item>\
                   <item><instanceId>i-2</instanceId><imageId>ami-1</imageId>\
                   <instanceState><code>0</code><name>pending</name></instanceState></item></instancesSet>";
        assert_eq!(
            instance_states(xml),
            vec![
                ("i-1".to_string(), "running".to_string()),
                ("i-2".to_string(), "pending".to_string())
            ]
        );
    }

    #[test]
    fn percentiles() {
        let s = sorted(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(percentile(&s, 0.5), 3.0);
        assert_eq!(percentile(&s, 0.99), 5.0);
        assert_eq!(median_of(&sorted(&[1.0, 2.0, 3.0, 4.0])), 2.5);
    }
}

/// Removes a directory that held ec2d data dirs: first unmounts (lazily) every mount under it
/// (ec2d's volume mount propagation point stays mounted after ec2d stops, by design), so no
/// mount outlives the bench and the removal never reaches into one.
fn remove_data_dir(dir: &std::path::Path) {
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut points: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(str::to_string))
        .filter(|point| std::path::Path::new(point).starts_with(&root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = std::process::Command::new("umount")
            .args(["-l", &point])
            .status();
    }
    let _ = std::fs::remove_dir_all(dir);
}
