//! Prometheus metrics (`GET /metrics`): request, reconcile and scrape-time gauges in one registry, with no EC2 or store types.
//!
//! Counters and histograms are bumped where things happen (the EC2 endpoint, the
//! controller's finish hook); everything that is a level (queue depth, resources per state,
//! engine reachability, store size) is read at scrape time from a [`Sampler`] the app
//! supplies, so nothing has to keep those in step.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::render`]'s output: Prometheus' text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The `action` label of a request whose action is absent or not one ec2d knows: the
/// label's values stay the finite set of known actions, whatever clients send.
pub const UNKNOWN_ACTION: &str = "unknown";

/// The `code` label of a request that succeeded.
pub const OK_CODE: &str = "ok";

/// Latency buckets (seconds) for API requests: reads answer in well under a millisecond,
/// writes wait for an fsync (milliseconds), and anything past a second is trouble.
const REQUEST_BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Duration buckets (seconds) for reconciles: a pass that finds nothing to do takes a
/// millisecond, a container create or an image commit seconds, a snapshot copy longer.
const RECONCILE_BUCKETS: [f64; 14] = [
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: &'static str,
    action: &'static str,
    code: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    service: &'static str,
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineLabels {
    engine: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    kind: &'static str,
    state: &'static str,
}

/// The levels read at scrape time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Keys waiting in the controller's queue.
    pub queue_depth: u64,
    /// Reconciles running.
    pub in_flight: u64,
    /// `(kind, state, count)` of each stored resource kind and displayed state.
    pub resources: Vec<(&'static str, &'static str, u64)>,
    /// Every container engine, the default first.
    pub engines: Vec<EngineSample>,
    /// The store's size on disk, when it could be read.
    pub store_size_bytes: Option<u64>,
}

/// One container engine's levels, labelled `engine` by its name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineSample {
    /// The engine's normalised endpoint (`unix:///var/run/docker.sock`), or `default`.
    pub name: String,
    /// Whether it answered last time (`None` before first contact).
    pub reachable: Option<bool>,
    /// Times its event stream was subscribed again after a gap, since start.
    pub event_stream_reconnects: u64,
}

/// Reads the levels at scrape time; supplied by the app, which sees the store and engine.
pub trait Sampler: Send + Sync + 'static {
    /// The current levels.
    fn sample(&self) -> Sample;
}

/// The process's metrics, shared (`Arc`) by the API, the controller hook and the app.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<ActionLabels, Histogram>,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_seconds: Family<KindLabels, Histogram>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    /// Metrics without scrape-time levels (protocol tests, which have no controller or engine).
    fn default() -> Self {
        Self::new(None)
    }
}

impl Metrics {
    /// A registry with every metric, reading levels from `sampler` at each scrape.
    pub fn new(sampler: Option<Arc<dyn Sampler>>) -> Self {
        let mut registry = Registry::with_prefix("ec2d");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "API requests answered, by service, action and error code (ok when it succeeded)",
            requests.clone(),
        );
        let request_seconds =
            Family::<ActionLabels, Histogram>::new_with_constructor(request_histogram as fn() -> _);
        registry.register_with_unit(
            "api_request_duration",
            "Time to answer an API request, by service and action",
            Unit::Seconds,
            request_seconds.clone(),
        );
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles finished, by kind of key and outcome (success, requeue, error)",
            reconciles.clone(),
        );
        let reconcile_seconds =
            Family::<KindLabels, Histogram>::new_with_constructor(reconcile_histogram as fn() -> _);
        registry.register_with_unit(
            "reconcile_duration",
            "Time one reconcile took, by kind of key",
            Unit::Seconds,
            reconcile_seconds.clone(),
        );
        if let Some(sampler) = sampler {
            registry.register_collector(Box::new(Levels(sampler)));
        }
        Self {
            registry,
            requests,
            request_seconds,
            reconciles,
            reconcile_seconds,
        }
    }

    /// Counts one answered request and its latency. `action` is a known action's name or
    /// [`UNKNOWN_ACTION`]; `code` the error code, or [`OK_CODE`].
    pub fn request(
        &self,
        service: &'static str,
        action: &'static str,
        code: Cow<'static, str>,
        took: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                service,
                action,
                code,
            })
            .inc();
        self.request_seconds
            .get_or_create(&ActionLabels { service, action })
            .observe(took.as_secs_f64());
    }

    /// Counts one finished reconcile of a key of `kind` and its duration.
    pub fn reconciled(&self, kind: &'static str, outcome: &'static str, took: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels { kind, outcome })
            .inc();
        self.reconcile_seconds
            .get_or_create(&KindLabels { kind })
            .observe(took.as_secs_f64());
    }

    /// Every metric in Prometheus' text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; a collector's error would be a bug, and a
        // partial page is still better than none for whoever is looking.
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!(%error, "cannot encode metrics");
        }
        out
    }
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn reconcile_histogram() -> Histogram {
    Histogram::new(RECONCILE_BUCKETS)
}

/// The scrape-time levels, as a collector of the registry.
struct Levels(Arc<dyn Sampler>);

impl fmt::Debug for Levels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Levels").finish_non_exhaustive()
    }
}

impl Collector for Levels {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let sample = self.0.sample();
        gauge(
            &mut encoder,
            "controller_queue_depth",
            "Keys waiting in the controller's queue",
            sample.queue_depth,
        )?;
        gauge(
            &mut encoder,
            "controller_reconciles_in_flight",
            "Reconciles running now",
            sample.in_flight,
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "resources",
                "Stored resources, by kind and the state clients see",
                None,
                MetricType::Gauge,
            )?;
            for (kind, state, count) in &sample.resources {
                let labels = ResourceLabels { kind, state };
                ConstGauge::new(*count as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        if sample.engines.iter().any(|e| e.reachable.is_some()) {
            let mut family = encoder.encode_descriptor(
                "engine_reachable",
                "Whether the container engine answered last time (1) or not (0), by engine",
                None,
                MetricType::Gauge,
            )?;
            for engine in &sample.engines {
                if let Some(reachable) = engine.reachable {
                    let labels = EngineLabels {
                        engine: engine.name.clone(),
                    };
                    ConstGauge::new(i64::from(reachable)).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "engine_event_stream_reconnects",
                "Times the engine's event stream was subscribed again after a gap, by engine",
                None,
                MetricType::Counter,
            )?;
            for engine in &sample.engines {
                let labels = EngineLabels {
                    engine: engine.name.clone(),
                };
                ConstCounter::new(engine.event_stream_reconnects)
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        if let Some(bytes) = sample.store_size_bytes {
            let size = ConstGauge::new(bytes as i64);
            size.encode(encoder.encode_descriptor(
                "store_size",
                "The store's size on disk",
                Some(&Unit::Bytes),
                size.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Sample);

    impl Sampler for Fixed {
        fn sample(&self) -> Sample {
            self.0.clone()
        }
    }

    #[test]
    fn counters_histograms_and_levels_are_rendered_with_the_prefix_and_base_units() {
        let metrics = Metrics::new(Some(Arc::new(Fixed(Sample {
            queue_depth: 3,
            in_flight: 1,
            resources: vec![("instance", "running", 2)],
            engines: vec![
                EngineSample {
                    name: "unix:///var/run/docker.sock".into(),
                    reachable: Some(true),
                    event_stream_reconnects: 4,
                },
                EngineSample {
                    name: "tcp://10.0.0.12:2375".into(),
                    reachable: Some(false),
                    event_stream_reconnects: 0,
                },
                EngineSample {
                    name: "tcp://10.0.0.13:2375".into(),
                    reachable: None,
                    event_stream_reconnects: 0,
                },
            ],
            store_size_bytes: Some(1024),
        }))));
        metrics.request(
            "ec2",
            "DescribeInstances",
            OK_CODE.into(),
            Duration::from_millis(2),
        );
        metrics.request(
            "ec2",
            UNKNOWN_ACTION,
            "InvalidAction".into(),
            Duration::from_micros(50),
        );
        metrics.reconciled("instance", "success", Duration::from_millis(20));
        let page = metrics.render();
        for line in [
            "# TYPE ec2d_api_requests_total counter",
            r#"ec2d_api_requests_total{service="ec2",action="DescribeInstances",code="ok"} 1"#,
            r#"ec2d_api_requests_total{service="ec2",action="unknown",code="InvalidAction"} 1"#,
            "# TYPE ec2d_api_request_duration_seconds histogram",
            r#"ec2d_api_request_duration_seconds_count{service="ec2",action="DescribeInstances"} 1"#,
            r#"ec2d_reconciles_total{kind="instance",outcome="success"} 1"#,
            r#"ec2d_reconcile_duration_seconds_count{kind="instance"} 1"#,
            "ec2d_controller_queue_depth 3",
            "ec2d_controller_reconciles_in_flight 1",
            r#"ec2d_resources{kind="instance",state="running"} 2"#,
            r#"ec2d_engine_reachable{engine="unix:///var/run/docker.sock"} 1"#,
            r#"ec2d_engine_reachable{engine="tcp://10.0.0.12:2375"} 0"#,
            "# TYPE ec2d_engine_event_stream_reconnects_total counter",
            r#"ec2d_engine_event_stream_reconnects_total{engine="unix:///var/run/docker.sock"} 4"#,
            r#"ec2d_engine_event_stream_reconnects_total{engine="tcp://10.0.0.12:2375"} 0"#,
            r#"ec2d_engine_event_stream_reconnects_total{engine="tcp://10.0.0.13:2375"} 0"#,
            "ec2d_store_size_bytes 1024",
        ] {
            assert!(
                page.lines().any(|l| l == line),
                "missing {line:?} in:\n{page}"
            );
        }
        assert!(
            !page.contains(r#"ec2d_engine_reachable{engine="tcp://10.0.0.13:2375"}"#),
            "an engine never contacted has no reachability yet:\n{page}"
        );
        assert!(
            !page.contains("# EOF"),
            "the 0.0.4 text format has no EOF marker"
        );
    }

    #[test]
    fn without_a_sampler_only_events_are_rendered() {
        let metrics = Metrics::default();
        metrics.request("ec2", "DescribeRegions", OK_CODE.into(), Duration::ZERO);
        let page = metrics.render();
        assert!(page.contains(
            r#"ec2d_api_requests_total{service="ec2",action="DescribeRegions",code="ok"} 1"#
        ));
        assert!(!page.contains("ec2d_resources"));
    }
}
