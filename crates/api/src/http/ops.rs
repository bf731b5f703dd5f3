use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use crate::state::SharedState;

/// The process is up.
#[handler]
pub fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can serve: the database answers.
#[handler]
pub async fn readyz(state: Data<&SharedState>) -> Response {
    match state.db.ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "reason": "database unreachable" })),
            )
                .into_response()
        }
    }
}

#[handler]
pub fn metrics(handle: Data<&metrics_exporter_prometheus::PrometheusHandle>) -> Response {
    Response::builder().content_type("text/plain; version=0.0.4").body(handle.render())
}
