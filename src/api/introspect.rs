//! The `/_ec2d/health` and `/_ec2d/status` inspection endpoints, fed by an [`Introspection`] the app supplies,
//! and LocalStack's `/_localstack/health` for tools written against LocalStack.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::state::ApiState;

/// Reports about the parts the api cannot see (controller, engine), supplied by the app.
pub trait Introspection: Send + Sync + 'static {
    /// `{ "ok": bool, ... }`: is the store open, is the engine reachable.
    fn health(&self) -> serde_json::Value;
    /// The whole status document, or one instance's (`None` when unknown).
    fn status(&self, instance_id: Option<&str>) -> Option<serde_json::Value>;
    /// Whether `zone` reads `impaired`: with several engines (`EC2D_ENGINES`), the engine
    /// serving it was last seen unreachable. One engine never impairs a zone (instances wait
    /// for it, as they always have).
    fn zone_impaired(&self, _zone: &str) -> bool {
        false
    }
    /// Whether an instance's host is unreachable, with several engines configured: the
    /// engine its status records (`engine`), else the default one for an instance whose
    /// container was made under one engine (`made`), else its zone's; as the reconciler
    /// places it.
    fn instance_host_impaired(&self, _zone: &str, _engine: Option<&str>, _made: bool) -> bool {
        false
    }
}

/// The inspection routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/_ec2d/health", get(health))
        .route("/_ec2d/status", get(status))
        .route("/_ec2d/status/instances/{id}", get(instance_status))
        .route("/_localstack/health", get(localstack_health))
}

/// LocalStack's health document for a LocalStack whose only service is a running EC2:
/// compose health checks, `localstack wait` and scripts that poll it work unchanged. The EC2
/// API answers even while the engine is away (instances converge later), so EC2 is always
/// `running` here; `/_ec2d/health` tells the engine's state. axum answers `HEAD` from `get`.
async fn localstack_health() -> Response {
    Json(serde_json::json!({
        "services": { "ec2": "running" },
        "edition": "community",
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

async fn health(State(state): State<ApiState>) -> Response {
    let report = state.introspection.health();
    let code = if report["ok"].as_bool().unwrap_or(false) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}

async fn status(State(state): State<ApiState>) -> Response {
    match state.introspection.status(None) {
        Some(doc) => Json(doc).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn instance_status(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.introspection.status(Some(&id)) {
        Some(doc) => Json(doc).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": format!("instance {id} not found") })),
        )
            .into_response(),
    }
}
