//! The container engines instances run on: one default engine, and the engines `EC2D_ENGINES` gives availability zones.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::{EngineMonitor, Networks};

/// The name of the one engine [`Engines::single`] makes when no endpoint is known (tests,
/// embedders): it stands for the local engine.
pub const SINGLE_ENGINE: &str = "default";

/// Whether an endpoint, as [`crate::runtime::DockerRuntime::normalize_endpoint`] writes it,
/// is a local socket, so the engine shares this host's routes and mount table.
pub fn is_local_endpoint(endpoint: &str) -> bool {
    endpoint.starts_with("unix://")
}

/// One container engine and what ec2d knows of it.
pub struct Engine<R> {
    name: String,
    zones: Vec<String>,
    default: bool,
    local: bool,
    runtime: R,
    monitor: EngineMonitor,
    networks: Networks,
    /// One lock per image reference copied onto this engine, so instances launching one AMI
    /// together copy it once.
    copy_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl<R> Engine<R> {
    fn new(name: String, local: bool, default: bool, runtime: R) -> Self {
        Self {
            name,
            zones: Vec::new(),
            default,
            local,
            runtime,
            monitor: EngineMonitor::default(),
            networks: Networks::default(),
            copy_locks: Mutex::default(),
        }
    }

    /// The lock held while `reference` is copied onto this engine.
    pub fn copy_lock(&self, reference: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.copy_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(reference.to_string()).or_default().clone()
    }

    /// Its normalised endpoint (`unix:///var/run/docker.sock`, `tcp://10.0.0.12:2375`), or
    /// [`SINGLE_ENGINE`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zones `EC2D_ENGINES` gives it, in the order given. The default engine also serves
    /// every zone no one names.
    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    /// Whether it is the default engine (`DOCKER_HOST`).
    pub fn is_default(&self) -> bool {
        self.default
    }

    /// Whether it listens on a local socket, so its containers are on this host.
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// The runtime that drives it.
    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// Its reachability, host limits, outages and signals.
    pub fn monitor(&self) -> &EngineMonitor {
        &self.monitor
    }

    /// What is known of the VPC networks on it.
    pub fn networks(&self) -> &Networks {
        &self.networks
    }
}

/// What health, status and metrics show of one engine: its name, zones, whether it is the
/// default, and its monitor (shared, so the view stays current).
#[derive(Debug, Clone)]
pub struct EngineView {
    /// The normalised endpoint, or [`SINGLE_ENGINE`].
    pub name: String,
    /// The zones `EC2D_ENGINES` gives it.
    pub zones: Vec<String>,
    /// Whether it is the default engine.
    pub default: bool,
    /// Its reachability and event-stream gaps.
    pub monitor: EngineMonitor,
}

impl<R> Engine<R> {
    /// What health, status and metrics show of it.
    pub fn view(&self) -> EngineView {
        EngineView {
            name: self.name.clone(),
            zones: self.zones.clone(),
            default: self.default,
            monitor: self.monitor.clone(),
        }
    }
}

impl<R> fmt::Debug for Engine<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.name)
            .field("zones", &self.zones)
            .field("default", &self.default)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// Every engine, each once however many zones name it, and which engine serves which zone.
///
/// `ContainerRuntime` is not object safe, so the engines are several values of one runtime
/// type `R`. Cloning shares the engines.
pub struct Engines<R> {
    engines: Vec<Arc<Engine<R>>>,
    by_zone: HashMap<String, usize>,
    default: usize,
}

impl<R> Engines<R> {
    /// One engine, `name` (a normalised endpoint, or [`SINGLE_ENGINE`]), serving every zone.
    pub fn single(name: impl Into<String>, local: bool, runtime: R) -> Self {
        Self {
            engines: vec![Arc::new(Engine::new(name.into(), local, true, runtime))],
            by_zone: HashMap::new(),
            default: 0,
        }
    }

    /// The default engine `default` (named by its normalised endpoint) and, for each
    /// `(zone, endpoint)` with its endpoint normalised, the engine at that endpoint: the
    /// default one or an engine already made when the endpoint is theirs, else one `connect`
    /// makes. So two zones naming one endpoint share one engine. A zone given twice is served
    /// by the last (the configuration refuses that before).
    pub fn build<E>(
        default: &str,
        default_runtime: R,
        zones: impl IntoIterator<Item = (String, String)>,
        mut connect: impl FnMut(&str) -> Result<R, E>,
    ) -> Result<Self, E> {
        let mut engines = vec![Engine::new(
            default.to_string(),
            is_local_endpoint(default),
            true,
            default_runtime,
        )];
        let mut by_zone = HashMap::new();
        for (zone, endpoint) in zones {
            let index = match engines.iter().position(|e| e.name == endpoint) {
                Some(index) => index,
                None => {
                    let runtime = connect(&endpoint)?;
                    let local = is_local_endpoint(&endpoint);
                    engines.push(Engine::new(endpoint, local, false, runtime));
                    engines.len() - 1
                }
            };
            if let Some(before) = by_zone.insert(zone.clone(), index) {
                engines[before].zones.retain(|z| *z != zone);
            }
            engines[index].zones.push(zone);
        }
        Ok(Self {
            engines: engines.into_iter().map(Arc::new).collect(),
            by_zone,
            default: 0,
        })
    }

    /// The engine serving `zone`: the one `EC2D_ENGINES` gives it, else the default one.
    pub fn for_zone(&self, zone: &str) -> &Arc<Engine<R>> {
        let index = self.by_zone.get(zone).copied().unwrap_or(self.default);
        &self.engines[index]
    }

    /// The engine named `name` (its normalised endpoint), if it is configured.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Engine<R>>> {
        self.engines.iter().find(|e| e.name == name)
    }

    /// Whether there is more than the one default engine.
    pub fn is_multi(&self) -> bool {
        self.engines.len() > 1
    }

    /// The default engine (`DOCKER_HOST`), which serves every zone no one names.
    pub fn default(&self) -> &Arc<Engine<R>> {
        &self.engines[self.default]
    }

    /// Every engine once, the default first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Engine<R>>> {
        self.engines.iter()
    }

    /// What health, status and metrics show of every engine, the default first.
    pub fn views(&self) -> Vec<EngineView> {
        let mut views: Vec<EngineView> = self.iter().map(|e| e.view()).collect();
        views.sort_by_key(|v| !v.default);
        views
    }
}

impl<R> Clone for Engines<R> {
    fn clone(&self) -> Self {
        Self {
            engines: self.engines.clone(),
            by_zone: self.by_zone.clone(),
            default: self.default,
        }
    }
}

impl<R> fmt::Debug for Engines<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.engines.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::FakeRuntime;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(zone, endpoint)| (zone.to_string(), endpoint.to_string()))
            .collect()
    }

    /// Builds engines on fakes, counting the connections made.
    fn build(default: &str, zones: &[(&str, &str)]) -> (Engines<FakeRuntime>, Vec<String>) {
        let mut connected = Vec::new();
        let engines = Engines::build(default, FakeRuntime::new(), pairs(zones), |endpoint| {
            connected.push(endpoint.to_string());
            Ok::<_, std::convert::Infallible>(FakeRuntime::new())
        })
        .unwrap();
        (engines, connected)
    }

    #[test]
    fn a_single_engine_serves_every_zone() {
        let engines = Engines::single(SINGLE_ENGINE, true, FakeRuntime::new());
        assert_eq!(engines.iter().count(), 1);
        let default = engines.default();
        assert!(default.is_default() && default.is_local());
        assert_eq!(default.name(), SINGLE_ENGINE);
        assert!(default.zones().is_empty());
        for zone in ["us-east-1a", "eu-west-1c", ""] {
            assert!(Arc::ptr_eq(engines.for_zone(zone), default), "{zone}");
        }
    }

    #[test]
    fn zones_find_their_engine_and_unnamed_zones_the_default() {
        let (engines, connected) = build(
            "unix:///var/run/docker.sock",
            &[("us-east-1b", "tcp://10.0.0.12:2375")],
        );
        assert_eq!(connected, vec!["tcp://10.0.0.12:2375".to_string()]);
        assert_eq!(engines.iter().count(), 2);
        let b = engines.for_zone("us-east-1b");
        assert_eq!(b.name(), "tcp://10.0.0.12:2375");
        assert_eq!(b.zones(), ["us-east-1b".to_string()]);
        assert!(!b.is_default() && !b.is_local());
        let default = engines.default();
        assert_eq!(default.name(), "unix:///var/run/docker.sock");
        assert!(default.is_default() && default.is_local());
        for zone in ["us-east-1a", "us-east-1c", "eu-west-1b"] {
            assert!(Arc::ptr_eq(engines.for_zone(zone), default), "{zone}");
        }
        // The default first, then the others in the order named.
        let names: Vec<&str> = engines.iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            ["unix:///var/run/docker.sock", "tcp://10.0.0.12:2375"]
        );
        // Each engine has its own monitor and networks.
        b.monitor().record_event_gap();
        assert_eq!(b.monitor().event_stream_reconnects(), 1);
        assert_eq!(default.monitor().event_stream_reconnects(), 0);
    }

    #[test]
    fn zones_naming_one_endpoint_share_one_engine() {
        let (engines, connected) = build(
            "unix:///var/run/docker.sock",
            &[
                ("us-east-1b", "unix:///run/b.sock"),
                ("us-east-1c", "unix:///run/b.sock"),
                ("us-east-1a", "unix:///var/run/docker.sock"),
            ],
        );
        // One connection for b.sock; the default endpoint is the default engine.
        assert_eq!(connected, vec!["unix:///run/b.sock".to_string()]);
        assert_eq!(engines.iter().count(), 2);
        let b = engines.for_zone("us-east-1b");
        assert!(Arc::ptr_eq(b, engines.for_zone("us-east-1c")));
        assert_eq!(
            b.zones(),
            ["us-east-1b".to_string(), "us-east-1c".to_string()]
        );
        assert!(b.is_local() && !b.is_default());
        let a = engines.for_zone("us-east-1a");
        assert!(Arc::ptr_eq(a, engines.default()));
        assert_eq!(a.zones(), ["us-east-1a".to_string()]);
    }

    #[test]
    fn a_zone_given_twice_is_served_by_the_last() {
        let (engines, _) = build(
            "unix:///var/run/docker.sock",
            &[
                ("us-east-1b", "tcp://h:2375"),
                ("us-east-1b", "tcp://g:2375"),
            ],
        );
        assert_eq!(engines.for_zone("us-east-1b").name(), "tcp://g:2375");
        let h = engines.iter().find(|e| e.name() == "tcp://h:2375").unwrap();
        assert!(h.zones().is_empty());
    }

    #[test]
    fn a_failed_connection_fails_the_build() {
        let result = Engines::build(
            "unix:///var/run/docker.sock",
            FakeRuntime::new(),
            pairs(&[("us-east-1b", "tcp://h:2375")]),
            |endpoint| Err(format!("cannot reach {endpoint}")),
        );
        assert_eq!(result.unwrap_err(), "cannot reach tcp://h:2375");
    }
}
