//! The replica's HTTP endpoints (axum): `/healthz`, `/readyz` and `/metrics`
//! on `HTTP_ADDR` ([`router`]), and the webhook path when `INGEST=webhook`:
//! on its own public listener at `WEBHOOK_ADDR` ([`webhook_router`]), or, when
//! that is unset, on `HTTP_ADDR` too (start-up warns: `/metrics` is then as
//! public as the webhook).
//!
//! Every request has a time limit (`HTTP_TIMEOUT_SECS`, reading the body
//! included; answered 408) and a body of at most [`MAX_BODY_BYTES`] (413), so
//! slow or huge requests cannot pile up. Telegram retries a webhook delivery
//! that was not answered 2xx, and the ingest dedupes, so a 408 loses nothing.
//!
//! axum is the HTTP server because it is the tokio project's own, small, and
//! what teloxide's webhook support builds on.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::config::IngestMode;
use crate::ingest::webhook;
use crate::runtime::Runtime;

/// Largest request body accepted (a Telegram update is a few KB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The router of `HTTP_ADDR`: operations endpoints, plus the webhook when
/// it has no listener of its own.
pub fn router(ctx: Arc<Runtime>) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    if ctx.settings.ingest == IngestMode::Webhook && ctx.settings.webhook_addr.is_none() {
        router = router.route(&ctx.settings.webhook_path, post(webhook_endpoint));
    }
    limited(router, &ctx).with_state(ctx)
}

/// The router of `WEBHOOK_ADDR`: the webhook path only.
pub fn webhook_router(ctx: Arc<Runtime>) -> Router {
    let router = Router::new().route(&ctx.settings.webhook_path, post(webhook_endpoint));
    limited(router, &ctx).with_state(ctx)
}

fn limited(router: Router<Arc<Runtime>>, ctx: &Runtime) -> Router<Arc<Runtime>> {
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            ctx.settings.http_timeout,
            time_limit,
        ))
}

/// Answers 408 when a request (its body included) takes longer than the limit.
async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request timed out").into_response(),
    }
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
