//! Host wiring: the NAT rules that send an instance's requests to 169.254.169.254 to ec2d's IMDS listener.
//!
//! ec2d owns one nat chain per store (`EC2D-IMDS-<store8>`), jumped to from `PREROUTING` only
//! for TCP to `169.254.169.254:80`, holding one rule per instance container address:
//! `-s <ip>/32 -d 169.254.169.254/32 -p tcp --dport 80 -j REDIRECT --to-ports <imds port>`.
//! `REDIRECT` is DNAT to the address of the interface the packet came in on, i.e. the
//! gateway of the container's own bridge (Docker's default one or a VPC's), so one rule
//! form serves every network without knowing its gateway. Nothing else is matched, so no
//! other traffic changes. The rules are converged level-triggered by the reconciler
//! ([`ImdsRoutes::converge`] per instance, [`ImdsRoutes::sync`] in the sweep); the chain is
//! made (or adopted after a crash) at start and removed on a graceful stop.
//! When the host cannot be wired (no iptables, no permission, a remote engine) everything
//! here is a no-op and [`ImdsRoutes::problem`] says why.

mod iptables;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tracing::{info, warn};

pub use iptables::{FakeFirewall, Firewall, FirewallError, SystemIptables};

/// EC2's instance metadata address.
pub const IMDS_ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// The nat chain of the store with this id.
pub fn chain_name(store_id: &str) -> String {
    let short: String = store_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("EC2D-IMDS-{}", short.to_ascii_uppercase())
}

/// The jump from `PREROUTING` into the chain: only TCP to the metadata address's port 80.
fn jump_spec(chain: &str) -> Vec<String> {
    words(&format!(
        "PREROUTING -d {IMDS_ADDRESS}/32 -p tcp -m tcp --dport 80 -j {chain}"
    ))
}

/// One instance's rule, as iptables prints it back (`-S`), so listing and deleting agree.
fn rule_spec(chain: &str, ip: Ipv4Addr, port: u16) -> Vec<String> {
    words(&format!(
        "{chain} -s {ip}/32 -d {IMDS_ADDRESS}/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports {port}"
    ))
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// What the wiring looks like, for `/_ec2d/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImdsRoutesReport {
    /// Whether instances' metadata requests reach ec2d.
    pub active: bool,
    /// The iptables command in use (the backend Docker's own chains are in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// ec2d's nat chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// The port the rules redirect to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The container addresses redirected.
    pub addresses: Vec<Ipv4Addr>,
    /// Why the wiring is off or failing, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The host's NAT rules for IMDS, shared by the app and the reconciler (cheap to clone).
#[derive(Clone)]
pub struct ImdsRoutes(Arc<Inner>);

struct Inner {
    wiring: Option<Wiring>,
    /// One change at a time, decided and carried out together: two instances trading an
    /// address must not both decide on the same old rules.
    serial: tokio::sync::Mutex<()>,
    problem: Mutex<Option<String>>,
    state: Mutex<Installed>,
}

struct Wiring {
    firewall: Arc<dyn Firewall>,
    chain: String,
    port: u16,
}

/// What ec2d believes is installed: each instance's address, and the rules in the chain.
#[derive(Default)]
struct Installed {
    by_instance: BTreeMap<String, Ipv4Addr>,
    rules: BTreeSet<Ipv4Addr>,
}

impl std::fmt::Debug for ImdsRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ImdsRoutes").field(&self.report()).finish()
    }
}

impl ImdsRoutes {
    /// No wiring, for this reason (IMDS off, mock mode, or setup failed).
    pub fn off(reason: impl Into<String>) -> Self {
        Self(Arc::new(Inner {
            wiring: None,
            serial: tokio::sync::Mutex::new(()),
            problem: Mutex::new(Some(reason.into())),
            state: Mutex::new(Installed::default()),
        }))
    }

    /// Makes (or adopts, after a crash) the store's chain and its jump on `firewall`, with
    /// rules redirecting to `port`. A failure is logged once, loudly, and gives a no-op.
    pub async fn setup(firewall: Arc<dyn Firewall>, store_id: &str, port: u16) -> Self {
        let chain = chain_name(store_id);
        let setup = {
            let (firewall, chain) = (firewall.clone(), chain.clone());
            tokio::task::spawn_blocking(move || ensure_chain(firewall.as_ref(), &chain, port))
                .await
                .unwrap_or_else(|e| Err(FirewallError::Failed(e.to_string())))
        };
        match setup {
            Ok(rules) => {
                info!(backend = %firewall.name(), %chain, port, adopted = rules.len(), "IMDS wired: instances' requests to 169.254.169.254:80 are redirected to ec2d");
                Self(Arc::new(Inner {
                    wiring: Some(Wiring {
                        firewall,
                        chain,
                        port,
                    }),
                    serial: tokio::sync::Mutex::new(()),
                    problem: Mutex::new(None),
                    state: Mutex::new(Installed {
                        by_instance: BTreeMap::new(),
                        rules,
                    }),
                }))
            }
            Err(error) => {
                let reason = format!(
                    "IMDS is unreachable from instances: cannot set up the NAT rules for 169.254.169.254 ({error})"
                );
                warn!("{reason}");
                Self::off(reason)
            }
        }
    }

    /// Whether the chain is in place.
    pub fn is_active(&self) -> bool {
        self.0.wiring.is_some()
    }

    /// Why the wiring is off, or its last failure.
    pub fn problem(&self) -> Option<String> {
        lock(&self.0.problem).clone()
    }

    /// The document `/_ec2d/status` shows.
    pub fn report(&self) -> ImdsRoutesReport {
        let wiring = self.0.wiring.as_ref();
        ImdsRoutesReport {
            active: wiring.is_some(),
            backend: wiring.map(|w| w.firewall.name().to_string()),
            chain: wiring.map(|w| w.chain.clone()),
            port: wiring.map(|w| w.port),
            addresses: lock(&self.0.state).rules.iter().copied().collect(),
            problem: self.problem(),
        }
    }

    /// Converges one instance: `address` is where its container's requests come from while
    /// it should reach IMDS, `None` once it should not (gone, terminated, no container).
    /// Costs nothing when nothing changed, so every instance pass may call it.
    pub async fn converge(&self, instance_id: &str, address: Option<Ipv4Addr>) {
        let Some(wiring) = &self.0.wiring else { return };
        let _serial = self.0.serial.lock().await;
        let (add, remove) = {
            let mut state = lock(&self.0.state);
            let before = match address {
                Some(ip) => state.by_instance.insert(instance_id.to_string(), ip),
                None => state.by_instance.remove(instance_id),
            };
            if before == address && address.is_none_or(|ip| state.rules.contains(&ip)) {
                return;
            }
            let wanted: BTreeSet<Ipv4Addr> = state.by_instance.values().copied().collect();
            let add: Vec<Ipv4Addr> = address
                .filter(|ip| !state.rules.contains(ip))
                .into_iter()
                .collect();
            // The old address goes unless another instance now has it (an address reused).
            let remove: Vec<Ipv4Addr> = before
                .filter(|ip| {
                    Some(*ip) != address && !wanted.contains(ip) && state.rules.contains(ip)
                })
                .into_iter()
                .collect();
            (add, remove)
        };
        self.apply(wiring, add, remove, Vec::new()).await;
    }

    /// The sweep's full sync: `desired` is every instance that should reach IMDS with its
    /// address. Re-reads the chain (making it and its jump again when removed behind ec2d's
    /// back) and fixes any difference.
    pub async fn sync(&self, desired: BTreeMap<String, Ipv4Addr>) {
        let Some(wiring) = &self.0.wiring else { return };
        let _serial = self.0.serial.lock().await;
        let listed = {
            let (firewall, chain, port) =
                (wiring.firewall.clone(), wiring.chain.clone(), wiring.port);
            tokio::task::spawn_blocking(move || {
                ensure_chain(firewall.as_ref(), &chain, port)
                    .map(|rules| (rules, stale_rules(firewall.as_ref(), &chain, port)))
            })
            .await
            .unwrap_or_else(|e| Err(FirewallError::Failed(e.to_string())))
        };
        let (rules, stale) = match listed {
            Ok((rules, stale)) => (rules, stale.unwrap_or_default()),
            Err(error) => return self.failed(&error),
        };
        let wanted: BTreeSet<Ipv4Addr> = desired.values().copied().collect();
        let add = wanted.difference(&rules).copied().collect();
        let remove = rules.difference(&wanted).copied().collect();
        {
            let mut state = lock(&self.0.state);
            state.by_instance = desired;
            state.rules = rules;
        }
        self.apply(wiring, add, remove, stale).await;
    }

    /// Removes the jump and the chain (a graceful stop). Instances lose IMDS until ec2d is back.
    pub async fn teardown(&self) {
        let Some(wiring) = &self.0.wiring else { return };
        let _serial = self.0.serial.lock().await;
        let (firewall, chain) = (wiring.firewall.clone(), wiring.chain.clone());
        let result = tokio::task::spawn_blocking(move || remove_chain(firewall.as_ref(), &chain))
            .await
            .unwrap_or_else(|e| Err(FirewallError::Failed(e.to_string())));
        match result {
            Ok(()) => {
                lock(&self.0.state).rules.clear();
                info!(chain = %wiring.chain, "IMDS NAT chain removed");
            }
            Err(error) => warn!(%error, chain = %wiring.chain, "cannot remove the IMDS NAT chain"),
        }
    }

    async fn apply(
        &self,
        wiring: &Wiring,
        add: Vec<Ipv4Addr>,
        remove: Vec<Ipv4Addr>,
        stale: Vec<Vec<String>>,
    ) {
        if add.is_empty() && remove.is_empty() && stale.is_empty() {
            return;
        }
        let (firewall, chain, port) = (wiring.firewall.clone(), wiring.chain.clone(), wiring.port);
        let (add2, remove2) = (add.clone(), remove.clone());
        let result = tokio::task::spawn_blocking(move || {
            for spec in stale {
                firewall.run(&["-t", "nat", "-D"], &spec)?;
            }
            for ip in remove2 {
                firewall.run(&["-t", "nat", "-D"], &rule_spec(&chain, ip, port))?;
            }
            for ip in add2 {
                firewall.run(&["-t", "nat", "-A"], &rule_spec(&chain, ip, port))?;
            }
            Ok::<(), FirewallError>(())
        })
        .await
        .unwrap_or_else(|e| Err(FirewallError::Failed(e.to_string())));
        match result {
            Ok(()) => {
                let mut state = lock(&self.0.state);
                for ip in &remove {
                    state.rules.remove(ip);
                }
                state.rules.extend(add.iter().copied());
                drop(state);
                *lock(&self.0.problem) = None;
                if !add.is_empty() || !remove.is_empty() {
                    info!(added = ?add, removed = ?remove, "IMDS NAT rules converged");
                }
            }
            // What is installed is unknown now: the next sweep re-reads the chain.
            Err(error) => self.failed(&error),
        }
    }

    fn failed(&self, error: &FirewallError) {
        warn!(%error, "IMDS NAT rules could not be converged; retried at the next sweep");
        *lock(&self.0.problem) = Some(format!("last NAT rule change failed: {error}"));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes the chain and its one jump when missing; returns the addresses it redirects to
/// `port` (a restart adopts what the last run left).
fn ensure_chain(
    firewall: &dyn Firewall,
    chain: &str,
    port: u16,
) -> Result<BTreeSet<Ipv4Addr>, FirewallError> {
    if firewall
        .run(&["-t", "nat", "-S"], &[chain.to_string()])
        .is_err()
    {
        firewall.run(&["-t", "nat", "-N"], &[chain.to_string()])?;
    }
    let jump = jump_spec(chain);
    if firewall.run(&["-t", "nat", "-C"], &jump).is_err() {
        let mut first = vec![jump[0].clone(), "1".to_string()];
        first.extend(jump[1..].iter().cloned());
        firewall.run(&["-t", "nat", "-I"], &first)?;
    }
    let listing = firewall.run(&["-t", "nat", "-S"], &[chain.to_string()])?;
    Ok(listing
        .lines()
        .filter_map(|line| {
            let spec = words(line.strip_prefix("-A ")?);
            let source = spec.iter().position(|w| w == "-s")?;
            let ip = spec.get(source + 1)?.strip_suffix("/32")?.parse().ok()?;
            (spec == rule_spec(chain, ip, port)).then_some(ip)
        })
        .collect())
}

/// The chain's rules that are not ec2d's current form (another port, a hand-made rule):
/// removed by the sync, as they would redirect somewhere ec2d no longer listens.
fn stale_rules(
    firewall: &dyn Firewall,
    chain: &str,
    port: u16,
) -> Result<Vec<Vec<String>>, FirewallError> {
    let listing = firewall.run(&["-t", "nat", "-S"], &[chain.to_string()])?;
    Ok(listing
        .lines()
        .filter_map(|line| line.strip_prefix("-A ").map(words))
        .filter(|spec| {
            let ip = spec
                .iter()
                .position(|w| w == "-s")
                .and_then(|i| spec.get(i + 1))
                .and_then(|s| s.strip_suffix("/32"))
                .and_then(|s| s.parse::<Ipv4Addr>().ok());
            ip.is_none_or(|ip| *spec != rule_spec(chain, ip, port))
        })
        .collect())
}

/// Removes every jump to the chain, then the chain.
fn remove_chain(firewall: &dyn Firewall, chain: &str) -> Result<(), FirewallError> {
    let jump = jump_spec(chain);
    while firewall.run(&["-t", "nat", "-C"], &jump).is_ok() {
        firewall.run(&["-t", "nat", "-D"], &jump)?;
    }
    if firewall
        .run(&["-t", "nat", "-S"], &[chain.to_string()])
        .is_ok()
    {
        firewall.run(&["-t", "nat", "-F"], &[chain.to_string()])?;
        firewall.run(&["-t", "nat", "-X"], &[chain.to_string()])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
