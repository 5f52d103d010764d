//! ec2d: an AWS EC2 emulator whose instances are real Docker containers, built like a Kubernetes controller.
//!
//! # Layout
//!
//! - [`model`]: pure data (ids, specs, statuses, state machine); no IO.
//! - [`api`]: the EC2 Query protocol front (axum); validates requests and writes desired state only.
//! - [`store`]: the embedded sled store; spec and status kept apart, one writer each.
//! - [`runtime`]: the container runtime seam (Docker via bollard, and an in-memory fake).
//! - [`backoff`]: retry delays, one implementation for the controller and the runtime.
//! - [`imds`]: the instance metadata service each instance reads at 169.254.169.254.
//! - [`controller`]: a generic, EC2-agnostic controller loop (queue, runner, backoff).
//! - [`reconcile`]: the EC2 reconcilers that make Docker match the store.
//! - [`hostnet`]: the host's NAT rules that send instances' metadata requests to ec2d.
//! - [`app`]: wires everything together; [`config`], [`shutdown`], [`telemetry`] support it.
//! - [`metrics`]: the Prometheus metrics served at `GET /metrics`.
//! - [`cli`]: the `ec2d status` table.

pub mod api;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod controller;
pub mod hostmnt;
pub mod hostnet;
pub mod imds;
pub mod metrics;
pub mod model;
pub mod reconcile;
pub mod runtime;
pub mod shutdown;
pub mod store;
pub mod telemetry;

pub use app::App;
pub use config::Config;
