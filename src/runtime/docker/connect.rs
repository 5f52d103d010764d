//! Reaching the engine: the endpoint, the lazily negotiated client, and API version negotiation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};
use tokio::sync::OnceCell;
use tracing::{debug, info};

use super::errors::map_error;
use super::DockerRuntime;
use crate::runtime::{RuntimeError, RuntimeResult};

/// Where the engine listens when neither the caller nor `DOCKER_HOST` says otherwise.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Request timeout for ordinary calls (bollard's default is 120 s). A hung engine should turn
/// into `Unavailable` well before the reconciler's patience runs out; slow calls (stop, commit)
/// get their own, longer timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the first call to an `ssh://` engine waits for its tunnel to come up (ssh's own
/// connect timeout is 10 s; a tunnel on a working network is up within a second).
const TUNNEL_FIRST_UP: Duration = Duration::from_secs(5);

/// Extra time on top of the stop grace period for the engine to kill and reap the container.
pub(super) const STOP_TIMEOUT_MARGIN: Duration = Duration::from_secs(30);

/// How to reach the engine, decided once at [`DockerRuntime::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// A Unix socket path.
    Unix(String),
    /// Plain HTTP, `tcp://host:port` or `http://host:port`.
    Http(String),
    /// TLS with a client certificate, as the docker CLI does it: `https://host:port`, or
    /// `tcp://host:port` while `DOCKER_TLS_VERIFY` is set; `ca.pem`, `cert.pem` and `key.pem`
    /// in `certs` (`DOCKER_CERT_PATH`, else `~/.docker`).
    Tls {
        /// `host:port`.
        addr: String,
        /// The directory holding the three PEM files.
        certs: PathBuf,
    },
    /// `ssh://[user@]host[:port][/socket]`: the remote engine's socket, forwarded by an ssh
    /// process ec2d keeps running to `local`, which the client connects to.
    Ssh {
        /// Whom ssh logs in to, and the remote socket.
        target: super::ssh::SshTarget,
        /// The forwarded socket on this host.
        local: PathBuf,
    },
}

/// The PEM files a TLS endpoint needs, in the docker CLI's names.
const TLS_FILES: [&str; 3] = ["ca.pem", "cert.pem", "key.pem"];

impl Endpoint {
    fn parse(s: &str) -> RuntimeResult<Self> {
        if let Some(path) = s.strip_prefix("unix://") {
            Ok(Self::Unix(path.to_string()))
        } else if s.starts_with('/') {
            Ok(Self::Unix(s.to_string()))
        } else if let Some(addr) = s.strip_prefix("https://") {
            Self::tls(addr)
        } else if let Some(addr) = s.strip_prefix("tcp://").filter(|_| tls_verify_asked()) {
            Self::tls(addr)
        } else if s.starts_with("tcp://") || s.starts_with("http://") {
            Ok(Self::Http(s.to_string()))
        } else if let Some(rest) = s.strip_prefix("ssh://") {
            let target = super::ssh::SshTarget::parse(rest)
                .map_err(|why| RuntimeError::Failed(format!("docker endpoint {s:?}: {why}")))?;
            // The forwarded socket is the tunnel's, which `connect` starts.
            Ok(Self::Ssh {
                target,
                local: PathBuf::new(),
            })
        } else {
            Err(RuntimeError::Failed(format!(
                "unsupported docker endpoint {s:?} (expected unix://, an absolute socket path, tcp://, http://, https:// or ssh://)"
            )))
        }
    }

    /// A TLS endpoint at `addr`, its certificates checked for now (a missing file is a
    /// configuration error, not an outage to wait out).
    fn tls(addr: &str) -> RuntimeResult<Self> {
        Self::tls_in(addr, cert_dir())
    }

    /// [`Endpoint::tls`] with the certificates in `certs`.
    fn tls_in(addr: &str, certs: Option<PathBuf>) -> RuntimeResult<Self> {
        let certs = certs.ok_or_else(|| {
            RuntimeError::Failed(
                "a TLS docker endpoint needs DOCKER_CERT_PATH (or HOME, for ~/.docker)".to_string(),
            )
        })?;
        if let Some(missing) = TLS_FILES.iter().find(|f| !certs.join(f).is_file()) {
            return Err(RuntimeError::Failed(format!(
                "TLS docker endpoint https://{addr}: {} is missing (DOCKER_CERT_PATH names the directory of ca.pem, cert.pem and key.pem)",
                certs.join(missing).display()
            )));
        }
        Ok(Self::Tls {
            addr: addr.trim_end_matches('/').to_string(),
            certs,
        })
    }

    /// Builds a client speaking API `version`. Does no IO except checking that a socket file
    /// exists, or reading a TLS endpoint's certificates.
    fn client(&self, version: &ClientVersion) -> Result<Docker, BollardError> {
        let secs = REQUEST_TIMEOUT.as_secs();
        match self {
            Self::Unix(path) => Docker::connect_with_unix(path, secs, version),
            Self::Ssh { local, .. } => {
                Docker::connect_with_unix(&local.to_string_lossy(), secs, version)
            }
            Self::Http(addr) => Docker::connect_with_http(addr, secs, version),
            Self::Tls { addr, certs } => Docker::connect_with_ssl(
                addr,
                &certs.join("key.pem"),
                &certs.join("cert.pem"),
                &certs.join("ca.pem"),
                secs,
                version,
            ),
        }
    }
}

/// Whether `DOCKER_TLS_VERIFY` asks for TLS (set, and neither empty nor `0`), as the docker
/// CLI reads it.
fn tls_verify_asked() -> bool {
    std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `DOCKER_CERT_PATH`, else `~/.docker`.
fn cert_dir() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CERT_PATH").filter(|p| !p.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None => std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker")),
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{path}"),
            Self::Http(addr) => f.write_str(addr),
            Self::Tls { addr, .. } => write!(f, "https://{addr}"),
            Self::Ssh { target, .. } => f.write_str(&target.endpoint()),
        }
    }
}

/// What every clone of a [`DockerRuntime`] shares.
pub(super) struct Inner {
    endpoint: Endpoint,
    /// An `ssh://` engine's tunnel, stopped when the last clone of the client goes.
    tunnel: Option<super::ssh::Tunnel>,
    /// The negotiated client. Empty until the engine first answers; a failed negotiation leaves
    /// it empty so the next call tries again (ec2d must run, and keep answering, without Docker).
    client: OnceCell<Docker>,
    /// The volume copies' helper containers in use, and the lock for their image.
    pub(super) helpers: super::volumes::Helpers,
}

impl fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("endpoint", &self.inner.endpoint.to_string())
            .field(
                "negotiated",
                &self
                    .inner
                    .client
                    .get()
                    .map(|d| version_string(&d.client_version())),
            )
            .finish()
    }
}

impl DockerRuntime {
    /// Prepares a client for `endpoint`: `None` uses `DOCKER_HOST` or `/var/run/docker.sock`;
    /// `unix:///path` or `/path` is a socket; `tcp://` or `http://` is plain HTTP, `https://`
    /// (or `tcp://` with `DOCKER_TLS_VERIFY`) TLS with the client certificate in
    /// `DOCKER_CERT_PATH`.
    ///
    /// Never contacts the engine, so it succeeds while the engine is down; only an unsupported
    /// endpoint scheme, a TLS endpoint's missing certificate file or an `ssh://` endpoint
    /// without an ssh program is an error. An `ssh://` endpoint starts its tunnel here (an ssh
    /// process, in the background). The API version is negotiated on first use.
    pub fn connect(endpoint: Option<&str>) -> Result<Self, RuntimeError> {
        let endpoint = match endpoint {
            Some(s) => Endpoint::parse(s)?,
            None => match std::env::var("DOCKER_HOST") {
                Ok(host) if !host.trim().is_empty() => Endpoint::parse(host.trim())?,
                _ => Endpoint::Unix(DEFAULT_SOCKET.to_string()),
            },
        };
        let (endpoint, tunnel) = match endpoint {
            Endpoint::Ssh { target, .. } => {
                let tunnel = super::ssh::start_tunnel(&target)?;
                let local = tunnel.local.clone();
                (Endpoint::Ssh { target, local }, Some(tunnel))
            }
            other => (other, None),
        };
        debug!(%endpoint, "docker runtime configured");
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                tunnel,
                client: OnceCell::new(),
                helpers: Default::default(),
            }),
        })
    }

    /// Whether the engine listens on a local socket, so it shares this host's routes.
    pub(super) fn engine_is_local(&self) -> bool {
        matches!(self.inner.endpoint, Endpoint::Unix(_))
    }

    /// The negotiated client, negotiating first if no call has succeeded yet.
    pub(super) async fn docker(&self) -> RuntimeResult<Docker> {
        if let Some(client) = self.inner.client.get() {
            return Ok(client.clone());
        }
        if let Some(tunnel) = &self.inner.tunnel {
            tunnel.first_up(TUNNEL_FIRST_UP).await;
        }
        self.inner
            .client
            .get_or_try_init(|| negotiate(&self.inner.endpoint))
            .await
            .cloned()
    }

    /// The client for a call that blocks while the engine waits up to `t` seconds for a
    /// container to stop: its timeout must outlast that wait.
    pub(super) async fn docker_waiting(&self, t: i64) -> RuntimeResult<Docker> {
        let wait = Duration::from_secs(u64::try_from(t).unwrap_or(0));
        Ok(self
            .docker()
            .await?
            .with_timeout(REQUEST_TIMEOUT.max(wait + STOP_TIMEOUT_MARGIN)))
    }
}

impl DockerRuntime {
    /// The endpoint `connect(None)` falls back to without `DOCKER_HOST`, in normalised form.
    pub fn default_endpoint() -> String {
        format!("unix://{DEFAULT_SOCKET}")
    }

    /// The canonical form of an endpoint named in the configuration, so two spellings of one
    /// engine compare equal: `/p` and `unix:///p` are `unix:///p` (repeated `/` and `.`
    /// components dropped, never resolved through the file system); `tcp://h:p` and
    /// `http://h:p` are `tcp://h:p` (host lower-cased, a trailing `/` dropped). The result is
    /// what [`DockerRuntime::connect`] takes.
    ///
    /// Stricter than `connect`: a socket path must be absolute, a TCP endpoint must name its
    /// port (bollard would silently use 80) and no path. `https://h:p` stays `https://h:p` (TLS:
    /// another transport to the same port is another endpoint). `ssh://[user@]host[:port]`
    /// keeps its user and port, the host lower-cased. `npipe://` is refused with why.
    pub fn normalize_endpoint(endpoint: &str) -> RuntimeResult<String> {
        let s = endpoint.trim();
        let refuse = |why: String| {
            Err(RuntimeError::Failed(format!(
                "docker endpoint {s:?}: {why}"
            )))
        };
        if s.is_empty() {
            return refuse("empty".to_string());
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None if s.starts_with('/') => ("unix".to_string(), s),
            None => {
                return refuse(
                    "expected unix:///path, an absolute socket path, tcp://host:port or http://host:port"
                        .to_string(),
                )
            }
        };
        match scheme.as_str() {
            "unix" => normalize_socket_path(rest).map(|p| format!("unix://{p}")).or_else(refuse),
            "tcp" | "http" => normalize_host_port(rest).map(|a| format!("tcp://{a}")).or_else(refuse),
            "https" => normalize_host_port(rest).map(|a| format!("https://{a}")).or_else(refuse),
            "ssh" => super::ssh::SshTarget::parse(rest).map(|t| t.endpoint()).or_else(refuse),
            "npipe" => refuse("named pipes are Windows-only".to_string()),
            other => refuse(format!("unsupported scheme {other}:// (expected unix://, an absolute socket path, tcp://, http:// or https://)")),
        }
    }
}

/// `/var//run/./docker.sock` → `/var/run/docker.sock`; refuses a relative or empty path.
fn normalize_socket_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err("a socket path must be absolute".to_string());
    }
    if path.chars().any(char::is_whitespace) {
        return Err("whitespace in the socket path".to_string());
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if parts.is_empty() {
        return Err("no socket path".to_string());
    }
    Ok(format!("/{}", parts.join("/")))
}

/// `Host:2375/` → `host:2375`; refuses a missing host or port, a path, user info or whitespace.
fn normalize_host_port(authority: &str) -> Result<String, String> {
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.contains('/') {
        return Err("a TCP endpoint takes no path".to_string());
    }
    if authority.contains('@') || authority.chars().any(char::is_whitespace) {
        return Err("expected tcp://host:port".to_string());
    }
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Err("name the port, as in tcp://host:2375".to_string());
    };
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        }
    };
    if !host_ok {
        return Err(format!("bad host {host:?}"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(format!("{}:{p}", host.to_ascii_lowercase())),
        _ => Err(format!("bad port {port:?}")),
    }
}

/// Negotiates the API version and returns a client that speaks it.
///
/// bollard's `negotiate_version` asks `/v1.47/version`, which engines older than API 1.47
/// (Docker 20.10 speaks 1.41) reject with 400 "client version 1.47 is too new. Maximum supported
/// API version is 1.41". So: try bollard's default first; on "too new", retry at the maximum the
/// engine named, then let bollard settle on min(ours, theirs).
async fn negotiate(endpoint: &Endpoint) -> RuntimeResult<Docker> {
    let first = endpoint
        .client(API_DEFAULT_VERSION)
        .map_err(|e| map_error("connect", e))?;
    let docker = match first.negotiate_version().await {
        Ok(d) => d,
        Err(BollardError::DockerResponseServerError {
            status_code: 400,
            message,
        }) if message.contains("too new") => {
            let max = parse_max_version(&message).ok_or_else(|| {
                RuntimeError::Failed(format!(
                    "cannot negotiate the docker API version: {message}"
                ))
            })?;
            debug!(max = %version_string(&max), "engine is older than bollard's default API; downgrading");
            endpoint
                .client(&max)
                .map_err(|e| map_error("connect", e))?
                .negotiate_version()
                .await
                .map_err(|e| map_error("negotiate API version", e))?
        }
        Err(e) => return Err(map_error("negotiate API version", e)),
    };
    info!(%endpoint, api_version = %version_string(&docker.client_version()), "connected to container engine");
    Ok(docker)
}

/// Reads `1.41` out of "… Maximum supported API version is 1.41".
fn parse_max_version(message: &str) -> Option<ClientVersion> {
    let rest = message.split("Maximum supported API version is").nth(1)?;
    let word = rest.split_whitespace().next()?.trim_end_matches(['.', ',']);
    let (major, minor) = word.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

pub(super) fn version_string(v: &ClientVersion) -> String {
    format!("{}.{}", v.major_version, v.minor_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            Endpoint::parse("unix:///x.sock").unwrap(),
            Endpoint::Unix("/x.sock".into())
        );
        assert_eq!(
            Endpoint::parse("/x.sock").unwrap(),
            Endpoint::Unix("/x.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://h:2375").unwrap(),
            Endpoint::Http("tcp://h:2375".into())
        );
        // The tunnel, and with it the forwarded socket, is `connect`'s.
        assert!(matches!(
            Endpoint::parse("ssh://ops@h:2222").unwrap(),
            Endpoint::Ssh { target, .. } if target.destination == "ops@h" && target.port == Some(2222)
        ));
        assert!(Endpoint::parse("ssh://-oProxyCommand=x").is_err());
    }

    #[test]
    fn configured_endpoints_normalise_to_one_spelling() {
        let n = |s: &str| DockerRuntime::normalize_endpoint(s);
        for same in [
            "unix:///var/run/docker.sock",
            "/var/run/docker.sock",
            " /var//run/./docker.sock ",
            "UNIX:///var/run/docker.sock",
        ] {
            assert_eq!(n(same).unwrap(), "unix:///var/run/docker.sock", "{same}");
        }
        for same in [
            "tcp://10.0.0.12:2375",
            "http://10.0.0.12:2375",
            "TCP://10.0.0.12:2375/",
        ] {
            assert_eq!(n(same).unwrap(), "tcp://10.0.0.12:2375", "{same}");
        }
        assert_eq!(
            n("tcp://Engine-B.local:2375").unwrap(),
            "tcp://engine-b.local:2375"
        );
        assert_eq!(n("tcp://[::1]:2375").unwrap(), "tcp://[::1]:2375");
        assert_eq!(
            n("HTTPS://Engine-B:2376/").unwrap(),
            "https://engine-b:2376"
        );
        assert_eq!(
            n("SSH://ops@Build-2:2222/").unwrap(),
            "ssh://ops@build-2:2222"
        );
        // What it gives, the connector takes as the same endpoint.
        for ok in ["unix:///x.sock", "tcp://h:2375"] {
            let parsed = Endpoint::parse(&n(ok).unwrap()).unwrap();
            assert_eq!(parsed.to_string(), ok);
        }
    }

    #[test]
    fn unsupported_endpoints_are_refused_with_why() {
        let err = |s: &str| {
            DockerRuntime::normalize_endpoint(s)
                .unwrap_err()
                .to_string()
        };
        assert!(err("ssh://-oProxyCommand=x").contains("expected ssh://"));
        assert!(err("ssh://me@host:22x").contains("bad port"));
        assert!(err("npipe:////./pipe/docker_engine").contains("Windows"));
        assert!(err("fd://").contains("unsupported scheme fd://"));
        assert!(err("").contains("empty"));
        assert!(err("docker.sock").contains("expected"));
        assert!(err("unix://docker.sock").contains("absolute"));
        assert!(err("unix://").contains("absolute"));
        assert!(err("unix:///").contains("no socket path"));
        assert!(err("tcp://h").contains("name the port"));
        assert!(err("tcp://h:0").contains("bad port"));
        assert!(err("tcp://h:2375/v1.41").contains("no path"));
        assert!(err("tcp://:2375").contains("bad host"));
        assert!(err("tcp://h :2375").contains("expected tcp://host:port"));
    }

    #[test]
    fn a_tls_endpoint_needs_its_three_pem_files() {
        let dir = std::env::temp_dir().join(format!("ec2d-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["ca.pem", "cert.pem"] {
            std::fs::write(dir.join(file), "x").unwrap();
        }
        let missing = Endpoint::tls_in("h:2376", Some(dir.clone()))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("key.pem is missing"), "{missing}");
        std::fs::write(dir.join("key.pem"), "x").unwrap();
        let endpoint = Endpoint::tls_in("h:2376/", Some(dir.clone())).unwrap();
        assert_eq!(
            endpoint,
            Endpoint::Tls {
                addr: "h:2376".into(),
                certs: dir.clone()
            }
        );
        assert_eq!(endpoint.to_string(), "https://h:2376");
        assert!(Endpoint::tls_in("h:2376", None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn max_version_is_read_from_the_too_new_message() {
        let v = parse_max_version(
            "client version 1.47 is too new. Maximum supported API version is 1.41",
        )
        .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(parse_max_version("something else").is_none());
    }
}
