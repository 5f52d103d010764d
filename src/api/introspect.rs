//! The `/_ec2d/health` and `/_ec2d/status` inspection endpoints, fed by an [`Introspection`] the app supplies.

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
}

/// The inspection routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/_ec2d/health", get(health))
        .route("/_ec2d/status", get(status))
        .route("/_ec2d/status/instances/{id}", get(instance_status))
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
