//! The replica's HTTP endpoint (axum): `/healthz`, `/readyz`, `/metrics`, and
//! the webhook path when `INGEST=webhook`.
//!
//! axum is the HTTP server because it is the tokio project's own, small, and
//! what teloxide's webhook support builds on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::app::Context;
use crate::config::IngestMode;
use crate::ingest::webhook;

/// What `/readyz` reports: Redis reachable and this replica doing its work.
#[derive(Debug, Default)]
pub struct Health {
    redis_up: AtomicBool,
    working: AtomicBool,
    stopping: AtomicBool,
}

impl Health {
    pub fn set_redis_up(&self, up: bool) {
        self.redis_up.store(up, Ordering::Relaxed);
    }
    pub fn set_working(&self, working: bool) {
        self.working.store(working, Ordering::Relaxed);
    }
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
    pub fn ready(&self) -> bool {
        self.redis_up.load(Ordering::Relaxed)
            && self.working.load(Ordering::Relaxed)
            && !self.stopping.load(Ordering::Relaxed)
    }
}

/// The router for one replica.
pub fn router(ctx: Arc<Context>) -> Router {
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

async fn readyz(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    if ctx.health.ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ctx.metrics.render(),
    )
}

async fn webhook_endpoint(
    State(ctx): State<Arc<Context>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let secret = headers.get(webhook::SECRET_HEADER).map(|v| v.as_bytes());
    webhook::accept(&ctx, secret, &body).await
}
