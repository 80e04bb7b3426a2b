//! The webhook endpoint, served by every replica when `INGEST=webhook`.
//!
//! Telegram retries a webhook delivery until it gets a 2xx, so the update is
//! written to Redis (same script as the poller, without the fence) *before*
//! answering 200; a Redis failure answers 503 and Telegram delivers again.
//! Registering the webhook is an explicit operator step (`anonchat
//! set-webhook`); a replica stopping never deletes it for the others.

use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::ingest::item_for;
use crate::runtime::Runtime;
use crate::store::IngestOutcome;

/// Header Telegram sends with the secret given to `setWebhook`.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Handles one webhook delivery and returns the HTTP status to answer.
pub async fn accept(ctx: &Runtime, secret: Option<&[u8]>, body: &[u8]) -> StatusCode {
    let expected = ctx
        .settings
        .webhook_secret
        .as_ref()
        .map(|s| s.expose_secret().as_bytes());
    let authorised = match (expected, secret) {
        (Some(want), Some(got)) => constant_time_eq(want, got),
        _ => false,
    };
    if !authorised {
        ctx.metrics.webhook_rejected.inc();
        tracing::warn!("webhook request with a missing or wrong secret token");
        return StatusCode::UNAUTHORIZED;
    }
    let update: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            ctx.metrics.webhook_rejected.inc();
            tracing::warn!(error = %e, "webhook body is not JSON");
            return StatusCode::BAD_REQUEST;
        }
    };
    let Some(item) = item_for(&update, ctx.settings.partitions) else {
        ctx.metrics.malformed_updates.inc();
        tracing::warn!("webhook update without update_id skipped");
        // A 2xx: Telegram must not retry something we can never take.
        return StatusCode::OK;
    };
    match ctx
        .store
        .ingest(None, None, std::slice::from_ref(&item))
        .await
    {
        Ok(IngestOutcome::Written { added, duplicates }) => {
            ctx.metrics.updates_ingested.inc_by(added);
            ctx.metrics.duplicates_skipped.inc_by(duplicates);
            StatusCode::OK
        }
        Ok(IngestOutcome::Fenced) => StatusCode::SERVICE_UNAVAILABLE,
        Ok(IngestOutcome::Full) => {
            // Telegram delivers it again later.
            ctx.metrics.ingest_refused.inc();
            tracing::warn!(
                "a partition stream is full (STREAM_MAXLEN); webhook update refused for now"
            );
            StatusCode::SERVICE_UNAVAILABLE
        }
        Err(e) => {
            tracing::warn!(update_id = item.update_id, error = %e, "cannot store webhook update");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
