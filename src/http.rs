//! The replica's HTTP endpoint (axum): `/healthz`, `/readyz`, `/metrics`, and
//! the webhook path when `INGEST=webhook`.
//!
//! axum is the HTTP server because it is the tokio project's own, small, and
//! what teloxide's webhook support builds on.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::config::IngestMode;
use crate::ingest::webhook;
use crate::runtime::Runtime;

/// The router for one replica.
pub fn router(ctx: Arc<Runtime>) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    if ctx.settings.ingest == IngestMode::Webhook {
        router = router.route(&ctx.settings.webhook_path, post(webhook_endpoint));
    }
    router.with_state(ctx)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(ctx): State<Arc<Runtime>>) -> impl IntoResponse {
    if ctx.health.ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics(State(ctx): State<Arc<Runtime>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ctx.metrics.render(),
    )
}

async fn webhook_endpoint(
    State(ctx): State<Arc<Runtime>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let secret = headers.get(webhook::SECRET_HEADER).map(|v| v.as_bytes());
    webhook::accept(&ctx, secret, &body).await
}
