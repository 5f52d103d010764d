//! `POST /_ec2d/reset` and moto's `POST /moto-api/reset`: every resource of this store removed, answered once done.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::future::BoxFuture;
use tokio::sync::RwLock;

use super::state::ApiState;

/// Removes every resource of this store (containers, networks, volumes, the AMIs CreateImage
/// and CopyImage made, and every record), supplied by the app: the api never reaches the
/// reconciler or the engine itself. The answer says what was removed; an error (the engine
/// unreachable) leaves the store as it was and is safe to retry.
pub trait Reset: Send + Sync + 'static {
    /// Runs the reset to its end.
    fn reset(&self) -> BoxFuture<'static, Result<serde_json::Value, String>>;
}

/// Lets every EC2 request through at once, and a reset alone: a request holds a read pass for
/// its whole run, a reset the write pass, so a reset waits for the requests under way and the
/// requests that come meanwhile wait for it. Each request is thus wholly before the reset (its
/// resources are removed) or wholly after it (they stay), never half-wiped. tokio's lock is
/// fair, so a waiting reset is not starved by a stream of requests.
#[derive(Clone, Default)]
pub struct RequestGate(Arc<RwLock<()>>);

impl RequestGate {
    /// A request's pass, held while it runs.
    pub async fn request(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.0.read().await
    }

    async fn exclusive(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.0.write().await
    }
}

/// The reset routes: ec2d's own and moto server mode's (suites call it between tests).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/_ec2d/reset", post(reset))
        .route("/moto-api/reset", post(reset))
}

async fn reset(State(state): State<ApiState>) -> Response {
    let _alone = state.gate.exclusive().await;
    match state.reset.reset().await {
        // moto answers `{"status": "ok"}`; what was removed comes beside it.
        Ok(removed) => {
            Json(serde_json::json!({ "status": "ok", "removed": removed })).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "reset failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "error", "error": error })),
            )
                .into_response()
        }
    }
}
