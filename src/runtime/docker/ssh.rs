//! `ssh://` engines: an OpenSSH child process forwards a local socket to the remote engine's, and is started again whenever it ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tracing::{debug, info, warn};

use crate::runtime::RuntimeError;

/// Where a remote engine listens when the `ssh://` endpoint names no socket path.
const REMOTE_DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The first wait before starting a tunnel that ended again; doubled up to [`MAX_RESTART_WAIT`].
const FIRST_RESTART_WAIT: Duration = Duration::from_secs(1);
const MAX_RESTART_WAIT: Duration = Duration::from_secs(30);

/// A tunnel that stayed up this long was working: the next restart waits the first wait again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Numbers the local sockets of one process's tunnels.
static NEXT_TUNNEL: AtomicUsize = AtomicUsize::new(0);

/// An `ssh://[user@]host[:port][/remote/socket]` endpoint, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SshTarget {
    /// `user@host` or `host`, as ssh takes it.
    pub destination: String,
    /// The port, when the endpoint names one (else ssh's own configuration decides).
    pub port: Option<u16>,
    /// The engine's socket on the remote host.
    pub remote_socket: String,
}

impl SshTarget {
    /// Parses what follows `ssh://`; refuses what ssh would misread (an option-like or empty
    /// host, whitespace, a relative socket path).
    pub fn parse(rest: &str) -> Result<Self, String> {
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.starts_with('-') {
            return Err("expected ssh://[user@]host[:port]".to_string());
        }
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("whitespace in the ssh endpoint".to_string());
        }
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((user, host_port)) if !user.is_empty() => (Some(user), host_port),
            Some(_) => return Err("an empty user name before @".to_string()),
            None => (None, authority),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("bad port {port:?}"))?;
                (host, Some(port))
            }
            None => (host_port, None),
        };
        // A name or an IPv4 address (an IPv6 host needs an ~/.ssh/config alias).
        let host_ok = !host.is_empty()
            && !host.starts_with('-')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !host_ok {
            return Err(format!("bad host {host:?}"));
        }
        let remote_socket = match path.trim_end_matches('/') {
            "" => REMOTE_DEFAULT_SOCKET.to_string(),
            socket => socket.to_string(),
        };
        let host = host.to_ascii_lowercase();
        Ok(Self {
            destination: match user {
                Some(user) => format!("{user}@{host}"),
                None => host,
            },
            port,
            remote_socket,
        })
    }

    /// The endpoint in its one spelling: `ssh://user@host:port`, the socket path only when it
    /// is not the default.
    pub fn endpoint(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let socket = if self.remote_socket == REMOTE_DEFAULT_SOCKET {
            ""
        } else {
            self.remote_socket.as_str()
        };
        format!("ssh://{}{port}{socket}", self.destination)
    }

    /// The ssh command line that forwards `local` to the remote socket: the program and its
    /// leading arguments from `EC2D_SSH_COMMAND` (like `GIT_SSH_COMMAND`: an identity file, a
    /// known-hosts file), else `ssh`.
    fn command(&self, local: &Path) -> Result<Vec<String>, RuntimeError> {
        let mut command = match std::env::var("EC2D_SSH_COMMAND") {
            Ok(line) if !line.trim().is_empty() => shlex::split(&line).ok_or_else(|| {
                RuntimeError::Failed(format!("EC2D_SSH_COMMAND {line:?} does not parse"))
            })?,
            _ => vec!["ssh".to_string()],
        };
        // No terminal, no command, no prompt (a password or host key question would hang
        // the tunnel); give up on a dead server so the tunnel is started again.
        command.extend(
            [
                "-nNT",
                "-o",
                "BatchMode=yes",
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "StreamLocalBindUnlink=yes",
                "-o",
                "ServerAliveInterval=10",
                "-o",
                "ServerAliveCountMax=3",
                "-o",
                "ConnectTimeout=10",
            ]
            .map(str::to_string),
        );
        if let Some(port) = self.port {
            command.extend(["-p".to_string(), port.to_string()]);
        }
        command.extend([
            "-L".to_string(),
            format!("{}:{}", local.display(), self.remote_socket),
            "--".to_string(),
            self.destination.clone(),
        ]);
        Ok(command)
    }
}

/// Starts the tunnel for `target` in the background and returns the local socket the Docker
/// client connects to. The socket exists while ssh runs; calls made meanwhile fail as an
/// unreachable engine does, so the engine reads down until the tunnel is up.
pub(super) fn start_tunnel(target: &SshTarget) -> Result<PathBuf, RuntimeError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        RuntimeError::Failed("an ssh:// engine needs ec2d's async runtime".to_string())
    })?;
    let local = std::env::temp_dir().join(format!(
        "ec2d-{}-ssh-{}.sock",
        std::process::id(),
        NEXT_TUNNEL.fetch_add(1, Ordering::Relaxed)
    ));
    let command = target.command(&local)?;
    let endpoint = target.endpoint();
    runtime.spawn(keep_tunnel_up(endpoint, command, local.clone()));
    Ok(local)
}

/// Runs ssh, and runs it again (after a growing wait) whenever it ends, for the life of the
/// process. Each ssh dies with ec2d (a parent-death signal), so a killed ec2d leaves none.
async fn keep_tunnel_up(endpoint: String, command: Vec<String>, local: PathBuf) {
    let mut wait = FIRST_RESTART_WAIT;
    loop {
        let started = tokio::time::Instant::now();
        match run_once(&endpoint, &command, &local).await {
            Ok(status) => {
                warn!(%endpoint, %status, socket = %local.display(), "ssh tunnel to the engine ended; starting it again")
            }
            Err(error) => warn!(%endpoint, %error, "cannot run ssh for the engine; trying again"),
        }
        let _ = std::fs::remove_file(&local);
        if started.elapsed() >= HEALTHY_RUN {
            wait = FIRST_RESTART_WAIT;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_RESTART_WAIT);
    }
}

/// One run of ssh: its error output logged line by line, its exit status returned.
async fn run_once(
    endpoint: &str,
    command: &[String],
    local: &Path,
) -> std::io::Result<std::process::ExitStatus> {
    let (program, args) = command.split_first().expect("ssh's command has a program");
    let mut ssh = tokio::process::Command::new(program);
    ssh.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: only an async-signal-safe system call (prctl) runs between fork and exec.
    unsafe {
        ssh.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(std::io::Error::from)
        });
    }
    let mut child = ssh.spawn()?;
    info!(endpoint, socket = %local.display(), pid = child.id(), "ssh tunnel to the engine started");
    if let Some(stderr) = child.stderr.take() {
        let endpoint = endpoint.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                debug!(%endpoint, ssh = %line, "ssh tunnel said");
            }
        });
    }
    child.wait().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_into_what_ssh_takes() {
        let t = SshTarget::parse("ops@Build-2:2222").unwrap();
        assert_eq!(t.destination, "ops@build-2");
        assert_eq!(t.port, Some(2222));
        assert_eq!(t.remote_socket, "/var/run/docker.sock");
        assert_eq!(t.endpoint(), "ssh://ops@build-2:2222");
        let t = SshTarget::parse("build-2/run/user/1000/docker.sock").unwrap();
        assert_eq!(t.destination, "build-2");
        assert_eq!(t.port, None);
        assert_eq!(t.remote_socket, "/run/user/1000/docker.sock");
        assert_eq!(t.endpoint(), "ssh://build-2/run/user/1000/docker.sock");
        for bad in [
            "",
            "-oProxyCommand=x",
            "me@",
            "@host",
            "host:0",
            "host:ssh",
            "ho st",
            "me@-x",
        ] {
            assert!(SshTarget::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_command_forwards_the_local_socket_and_never_prompts() {
        let t = SshTarget::parse("ops@10.0.0.12:2222").unwrap();
        let command = t.command(Path::new("/tmp/e.sock")).unwrap();
        let line = command.join(" ");
        assert!(line.starts_with("ssh -nNT -o BatchMode=yes"), "{line}");
        assert!(line.contains("-p 2222"), "{line}");
        assert!(
            line.ends_with("-L /tmp/e.sock:/var/run/docker.sock -- ops@10.0.0.12"),
            "{line}"
        );
    }
}
