//! The `iptables` command ec2d shells out to (the backend Docker's own chains live in), and an in-memory fake for tests.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;

/// Why a firewall command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirewallError {
    /// The command could not be run at all (not installed).
    #[error("cannot run {0}")]
    Missing(String),
    /// The command ran and refused (no permission, no such chain or rule).
    #[error("{0}")]
    Failed(String),
}

/// Runs one iptables invocation: `options` (table and verb) then `spec`; returns stdout.
pub trait Firewall: Send + Sync + 'static {
    /// The command's name, for logs and the status document.
    fn name(&self) -> &str;
    /// Runs it; a non-zero exit is [`FirewallError::Failed`] with its stderr.
    fn run(&self, options: &[&str], spec: &[String]) -> Result<String, FirewallError>;
}

/// The host's `iptables` (or `iptables-legacy`/`iptables-nft`), run directly, never through a shell.
#[derive(Debug, Clone)]
pub struct SystemIptables {
    command: String,
}

/// Candidates in order: the system default first (what Docker itself runs), then each backend.
const CANDIDATES: [&str; 3] = ["iptables", "iptables-nft", "iptables-legacy"];

impl SystemIptables {
    /// A given command (`iptables-legacy`).
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
        }
    }

    /// The backend Docker uses: the first candidate whose nat table has Docker's `DOCKER`
    /// chain (rules in the other backend's tables work too, but would sit apart from
    /// Docker's where nobody looks); else the first that can list the nat table at all.
    pub fn detect() -> Result<Self, FirewallError> {
        let runnable: Vec<Self> = CANDIDATES.iter().map(|c| Self::new(*c)).collect();
        if let Some(docker) = runnable
            .iter()
            .find(|c| c.run(&["-t", "nat", "-S"], &["DOCKER".to_string()]).is_ok())
        {
            return Ok(docker.clone());
        }
        let mut last = FirewallError::Missing("iptables".to_string());
        for candidate in runnable {
            match candidate.run(&["-t", "nat", "-S"], &["PREROUTING".to_string()]) {
                Ok(_) => return Ok(candidate),
                Err(error) => last = error,
            }
        }
        Err(last)
    }
}

impl Firewall for SystemIptables {
    fn name(&self) -> &str {
        &self.command
    }

    fn run(&self, options: &[&str], spec: &[String]) -> Result<String, FirewallError> {
        // `-w`: wait for the xtables lock rather than fail when Docker is changing rules too.
        let output = Command::new(&self.command)
            .arg("-w")
            .arg("5")
            .args(options)
            .args(spec)
            .output()
            .map_err(|e| FirewallError::Missing(format!("{}: {e}", self.command)))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(FirewallError::Failed(format!(
                "{} {} {}: {}",
                self.command,
                options.join(" "),
                spec.join(" "),
                stderr.trim()
            )))
        }
    }
}

/// An in-memory nat table that answers the verbs ec2d uses (`-N -X -F -S -C -A -I -D`),
/// printing rules back as given, and records every call; `deny` makes every call fail.
#[derive(Debug, Default)]
pub struct FakeFirewall {
    chains: Mutex<BTreeMap<String, Vec<Vec<String>>>>,
    calls: Mutex<Vec<String>>,
    deny: Option<String>,
}

impl FakeFirewall {
    /// A nat table with `PREROUTING` and nothing else.
    pub fn new() -> Self {
        let fake = Self::default();
        lock(&fake.chains).insert("PREROUTING".to_string(), Vec::new());
        fake
    }

    /// One whose every call fails with this message (no permission).
    pub fn denying(message: &str) -> Self {
        Self {
            deny: Some(message.to_string()),
            ..Self::new()
        }
    }

    /// The rules of a chain, each as its spec after the chain name; `None` when absent.
    pub fn chain(&self, name: &str) -> Option<Vec<String>> {
        lock(&self.chains)
            .get(name)
            .map(|rules| rules.iter().map(|r| r.join(" ")).collect())
    }

    /// Every call so far (`-t nat -A …`), in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Firewall for FakeFirewall {
    fn name(&self) -> &str {
        "fake-iptables"
    }

    fn run(&self, options: &[&str], spec: &[String]) -> Result<String, FirewallError> {
        lock(&self.calls).push(format!("{} {}", options.join(" "), spec.join(" ")));
        if let Some(message) = &self.deny {
            return Err(FirewallError::Failed(message.clone()));
        }
        let fail = |what: &str| Err(FirewallError::Failed(what.to_string()));
        let mut chains = lock(&self.chains);
        let verb = options.last().copied().unwrap_or_default();
        let Some((chain, rule)) = spec.split_first() else {
            return fail("no chain");
        };
        let rule = rule.to_vec();
        match (verb, chains.get_mut(chain)) {
            ("-N", Some(_)) => fail("Chain already exists."),
            ("-N", None) => {
                chains.insert(chain.clone(), Vec::new());
                Ok(String::new())
            }
            (_, None) => fail("No chain/target/match by that name."),
            ("-S", Some(rules)) => Ok(rules
                .iter()
                .map(|r| format!("-A {chain} {}\n", r.join(" ")))
                .collect()),
            ("-C", Some(rules)) if rules.contains(&rule) => Ok(String::new()),
            ("-A", Some(rules)) => {
                rules.push(rule);
                Ok(String::new())
            }
            ("-I", Some(rules)) => {
                let (position, rule) = match rule.split_first() {
                    Some((n, rest)) if n.parse::<usize>().is_ok() => {
                        (n.parse::<usize>().unwrap_or(1), rest.to_vec())
                    }
                    _ => (1, rule),
                };
                rules.insert(position.saturating_sub(1).min(rules.len()), rule);
                Ok(String::new())
            }
            ("-D", Some(rules)) => match rules.iter().position(|r| *r == rule) {
                Some(i) => {
                    rules.remove(i);
                    Ok(String::new())
                }
                None => fail("Bad rule (does a matching rule exist in that chain?)."),
            },
            ("-F", Some(rules)) => {
                rules.clear();
                Ok(String::new())
            }
            ("-X", Some(rules)) if rules.is_empty() => {
                chains.remove(chain);
                Ok(String::new())
            }
            _ => fail("refused"),
        }
    }
}
