//! `ssh://` engines: an OpenSSH child process forwards a local socket to the remote engine's, and is started again whenever it ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
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

/// Letters, digits, `.`, `_` and `-`, not starting with `-`: a user name or path component
/// nothing (ssh's `%` tokens, a shell in a ProxyCommand, an option parser) reads specially.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

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
            Some((user, host_port)) if plain_name(user) => (Some(user), host_port),
            Some((user, _)) => return Err(format!("bad user name {user:?}")),
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
        // ssh expands `%` and `~` in socket paths and `-L` splits at `:`: plain paths only.
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.iter().any(|p| !plain_name(p) || *p == "..") {
            return Err(format!("bad remote socket path {path:?}"));
        }
        let remote_socket = match parts.as_slice() {
            [] => REMOTE_DEFAULT_SOCKET.to_string(),
            parts => format!("/{}", parts.join("/")),
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
                // A shared master connection would live apart from this process (and past ec2d).
                "-o",
                "ControlMaster=no",
                "-o",
                "ControlPath=none",
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

/// A running tunnel: dropping it (with the last clone of its engine's client) stops the
/// supervisor, which kills its ssh, and removes the socket.
#[derive(Debug)]
pub(super) struct Tunnel {
    supervisor: tokio::task::JoinHandle<()>,
    /// The forwarded socket on this host.
    pub local: PathBuf,
    /// Set once the socket first appeared.
    up: tokio::sync::watch::Receiver<bool>,
    /// Set once a call has waited for the first start: later calls do not wait again.
    waited: std::sync::atomic::AtomicBool,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.supervisor.abort();
        let _ = std::fs::remove_file(&self.local);
    }
}

impl Tunnel {
    /// Waits, at most `limit`, for the tunnel's socket to appear the first time, so the first
    /// call to a freshly configured engine does not find it missing and read the engine down.
    /// Only the calls made before the first wait ended wait: a tunnel that never comes up
    /// makes later calls fail at once, as any unreachable engine does.
    pub async fn first_up(&self, limit: Duration) {
        if self.waited.load(Ordering::Relaxed) {
            return;
        }
        let mut up = self.up.clone();
        let _ = tokio::time::timeout(limit, up.wait_for(|up| *up)).await;
        self.waited.store(true, Ordering::Relaxed);
    }
}

/// The runtime every tunnel's ssh is started from: one thread that lives as long as the
/// process. A parent-death signal fires when the forking *thread* ends, and the threads of
/// ec2d's own runtime may end (a `block_in_place` hands a worker's place to a new thread).
fn tunnel_runtime() -> Result<&'static tokio::runtime::Handle, RuntimeError> {
    static HANDLE: OnceLock<Result<tokio::runtime::Handle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name("ec2d-ssh-tunnels".to_string())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .map_err(|e| e.to_string())?;
            Ok(handle)
        })
        .as_ref()
        .map_err(|e| RuntimeError::Failed(format!("cannot start the ssh tunnels' thread: {e}")))
}

/// A directory only this user can enter, for the tunnels' sockets (as tmux keeps
/// `/tmp/tmux-<uid>`): in a shared /tmp another user could otherwise bind a socket of a
/// tunnel's name while it is down and pose as the engine. Made once, kept for later runs; one
/// that another user owns, or others may enter, is refused.
fn socket_dir() -> Result<&'static Path, RuntimeError> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let uid = rustix::process::getuid().as_raw();
        let dir = std::env::temp_dir().join(format!("ec2d-ssh-{uid}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
        let meta =
            std::fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
            return Err(format!(
                "{} is not a directory only this user may enter",
                dir.display()
            ));
        }
        Ok(dir)
    })
    .as_deref()
    .map_err(|e| RuntimeError::Failed(format!("cannot use the ssh tunnels' socket directory {e}")))
}

/// The program of `command`, looked up on `PATH` when it names no directory: a missing ssh is
/// a configuration error at start, not an outage to retry forever.
fn check_program(program: &str) -> Result<(), RuntimeError> {
    let found = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    };
    if found {
        Ok(())
    } else {
        Err(RuntimeError::Failed(format!(
            "an ssh:// engine needs {program:?}, which is not on PATH (install OpenSSH's client, or set EC2D_SSH_COMMAND)"
        )))
    }
}

/// Starts the tunnel for `target` in the background. Its socket exists while ssh runs; calls
/// made while it does not fail as an unreachable engine's do, so the engine reads down until
/// the tunnel is back.
pub(super) fn start_tunnel(target: &SshTarget) -> Result<Tunnel, RuntimeError> {
    // Named by process, so a socket left by a killed ec2d is never another run's.
    let name = format!(
        "{}-{}.sock",
        std::process::id(),
        NEXT_TUNNEL.fetch_add(1, Ordering::Relaxed)
    );
    let local = socket_dir()?.join(name);
    let command = target.command(&local)?;
    check_program(&command[0])?;
    let (up_tx, up) = tokio::sync::watch::channel(false);
    let supervisor = tunnel_runtime()?.spawn(keep_tunnel_up(
        target.endpoint(),
        command,
        local.clone(),
        up_tx,
    ));
    Ok(Tunnel {
        supervisor,
        local,
        up,
        waited: std::sync::atomic::AtomicBool::new(false),
    })
}

/// Runs ssh, and runs it again (after a growing wait) whenever it ends, for the life of the
/// process. Each ssh dies with ec2d (a parent-death signal), so a killed ec2d leaves none.
async fn keep_tunnel_up(
    endpoint: String,
    command: Vec<String>,
    local: PathBuf,
    up: tokio::sync::watch::Sender<bool>,
) {
    let mut wait = FIRST_RESTART_WAIT;
    loop {
        let started = tokio::time::Instant::now();
        match run_once(&endpoint, &command, &local, &up).await {
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

/// How often a starting tunnel's socket is looked for.
const SOCKET_POLL: Duration = Duration::from_millis(50);

/// One run of ssh: its error output logged line by line (a refused key or an unknown host key
/// is said there), `up` set once its socket appears, its exit status returned.
async fn run_once(
    endpoint: &str,
    command: &[String],
    local: &Path,
    up: &tokio::sync::watch::Sender<bool>,
) -> std::io::Result<std::process::ExitStatus> {
    let (program, args) = command.split_first().expect("ssh's command has a program");
    let mut ssh = tokio::process::Command::new(program);
    ssh.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let parent = rustix::process::getpid();
    // SAFETY: only async-signal-safe system calls (prctl, getppid) run between fork and exec.
    unsafe {
        ssh.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))?;
            // ec2d ended before the signal was armed: end too.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::other("ec2d has ended"));
            }
            Ok(())
        });
    }
    let mut child = ssh.spawn()?;
    info!(endpoint, socket = %local.display(), pid = child.id(), "ssh tunnel to the engine started");
    if let Some(stderr) = child.stderr.take() {
        let endpoint = endpoint.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                warn!(%endpoint, ssh = %line, "ssh tunnel said");
            }
        });
    }
    loop {
        tokio::select! {
            status = child.wait() => return status,
            () = tokio::time::sleep(SOCKET_POLL), if !*up.borrow() => {
                if local.exists() {
                    debug!(endpoint, socket = %local.display(), "ssh tunnel's socket is up");
                    up.send_replace(true);
                }
            }
        }
    }
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
        assert_eq!(
            SshTarget::parse("h//run/./docker.sock/")
                .unwrap()
                .endpoint(),
            "ssh://h/run/docker.sock"
        );
        for bad in [
            "",
            "-oProxyCommand=x",
            "me@",
            "@host",
            "host:0",
            "host:ssh",
            "ho st",
            "me@-x",
            "m;e@host",
            "me%r@host",
            "host/run/a:b.sock",
            "host/run/%d.sock",
            "host/~/docker.sock",
            "host/../docker.sock",
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
