//! The elected long-poller.
//!
//! Only the holder of the poller lease calls `getUpdates`. Each batch is
//! written to Redis by the fenced ingest script together with the next offset;
//! only the *next* `getUpdates` call, carrying that offset, confirms the batch
//! to Telegram. So a crash at any point loses nothing: an unconfirmed batch is
//! delivered again and the dedupe markers drop what was already written.
//!
//! `getUpdates` is called with plain reqwest rather than teloxide's typed
//! request so that one malformed update cannot fail the whole batch, and so the
//! HTTP timeout can exceed the long-poll timeout (teloxide's client gives up
//! after 17 s).

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::ingest::{item_for, ALLOWED_UPDATES};
use crate::lease::{self, HeldLease};
use crate::runtime::Runtime;
use crate::store::IngestOutcome;

/// Why a `getUpdates` call gave nothing.
#[derive(Debug)]
enum PollError {
    /// 409: another poller (or a webhook) is active.
    Conflict(String),
    /// 429: wait this long.
    RetryAfter(Duration),
    /// 401/404: the token is wrong; retrying soon will not help.
    Unauthorized,
    Other(String),
}

/// Runs until shutdown: wait for the lease, poll while holding it, repeat.
pub async fn run(ctx: Arc<Runtime>, shutdown: CancellationToken) {
    let timeout = Duration::from_secs(u64::from(ctx.settings.poll_timeout_secs) + 10);
    let http = match reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(1)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client for getUpdates");
            return;
        }
    };
    loop {
        let Some(held) = lease::acquire_poller(
            &ctx.store,
            &ctx.settings.replica_id,
            ctx.settings.poller_lease,
            &shutdown,
            &ctx.wakeups.poller,
        )
        .await
        else {
            return;
        };
        ctx.metrics.poller_leader.set(1);
        poll_while_held(&ctx, &http, &held, &shutdown).await;
        ctx.metrics.poller_leader.set(0);
        held.release().await;
        if shutdown.is_cancelled() {
            return;
        }
    }
}

async fn poll_while_held(
    ctx: &Runtime,
    http: &reqwest::Client,
    held: &HeldLease,
    shutdown: &CancellationToken,
) {
    let mut offset = loop {
        match ctx.store.poller_offset().await {
            Ok(o) => break o,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the stored offset");
                if pause(Duration::from_millis(500), held, shutdown).await {
                    return;
                }
            }
        }
    };
    let mut backoff = Duration::from_millis(250);
    loop {
        let call = get_updates(ctx, http, offset);
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = held.lost() => return,
            r = call => r,
        };
        match result {
            Ok(updates) => {
                backoff = Duration::from_millis(250);
                if updates.is_empty() {
                    continue;
                }
                match write_batch(ctx, held, shutdown, &updates).await {
                    Some(next) => offset = next.max(offset),
                    None => return,
                }
            }
            Err(PollError::Conflict(desc)) => {
                tracing::warn!(description = %desc, "getUpdates conflict; is another bot instance or a webhook using this token?");
                if pause(Duration::from_secs(1), held, shutdown).await {
                    return;
                }
            }
            Err(PollError::RetryAfter(d)) => {
                tracing::warn!(retry_after = ?d, "getUpdates rate limited");
                if pause(d, held, shutdown).await {
                    return;
                }
            }
            Err(PollError::Unauthorized) => {
                tracing::error!("Telegram rejected BOT_TOKEN (401/404); check the token");
                if pause(Duration::from_secs(5), held, shutdown).await {
                    return;
                }
            }
            Err(PollError::Other(e)) => {
                tracing::warn!(error = %e, "getUpdates failed; retrying");
                if pause(backoff, held, shutdown).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Writes one batch (retrying Redis errors while the lease holds) and returns
/// the next offset, or None when the lease is lost or shutdown started.
async fn write_batch(
    ctx: &Runtime,
    held: &HeldLease,
    shutdown: &CancellationToken,
    updates: &[Value],
) -> Option<i64> {
    let mut max_id = None;
    let mut items = Vec::with_capacity(updates.len());
    for u in updates {
        match item_for(u, ctx.settings.partitions) {
            Some(item) => {
                max_id = max_id.max(Some(item.update_id));
                items.push(item);
            }
            None => {
                ctx.metrics.malformed_updates.inc();
                tracing::warn!("update without update_id skipped");
            }
        }
    }
    let Some(max_id) = max_id else {
        // Nothing with an id: nothing to write, nothing to confirm.
        return Some(0);
    };
    let next = max_id + 1;
    loop {
        match ctx
            .store
            .ingest(Some(held.token()), Some(next), &items)
            .await
        {
            Ok(IngestOutcome::Written { added, duplicates }) => {
                ctx.metrics.updates_ingested.inc_by(added);
                ctx.metrics.duplicates_skipped.inc_by(duplicates);
                tracing::debug!(added, duplicates, next_offset = next, "batch ingested");
                return Some(next);
            }
            Ok(IngestOutcome::Fenced) => {
                tracing::warn!("batch rejected: this replica is no longer the poller");
                return None;
            }
            Ok(IngestOutcome::Full) => {
                // Not confirmed to Telegram, which keeps the updates for us.
                ctx.metrics.ingest_refused.inc();
                tracing::warn!(
                    "a partition stream is full (STREAM_MAXLEN); waiting for the workers"
                );
                if pause(Duration::from_secs(1), held, shutdown).await {
                    return None;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot write the batch to Redis; retrying");
                if pause(Duration::from_millis(250), held, shutdown).await {
                    return None;
                }
            }
        }
    }
}

/// Sleeps; true when the lease was lost or shutdown started meanwhile.
async fn pause(d: Duration, held: &HeldLease, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = held.lost() => true,
        _ = tokio::time::sleep(d) => held.is_lost(),
    }
}

async fn get_updates(
    ctx: &Runtime,
    http: &reqwest::Client,
    offset: i64,
) -> Result<Vec<Value>, PollError> {
    let url = format!(
        "{}bot{}/getUpdates",
        ensure_slash(ctx.settings.telegram_api_url.as_str()),
        ctx.settings.bot_token.expose_secret()
    );
    let body = json!({
        "offset": offset,
        "limit": 100,
        "timeout": ctx.settings.poll_timeout_secs,
        "allowed_updates": ALLOWED_UPDATES,
    });
    let resp = http
        .post(url)
        .json(&body)
        .send()
        .await
        // reqwest's error text includes the URL, and so the token: keep it out.
        .map_err(|e| PollError::Other(e.without_url().to_string()))?;
    let status = resp.status();
    let value: Value = resp
        .json()
        .await
        .map_err(|e| PollError::Other(format!("HTTP {status}: {}", e.without_url())))?;
    if value.get("ok").and_then(Value::as_bool) == Some(true) {
        ctx.metrics.telegram_call("getUpdates", "ok");
        return match value.get("result") {
            Some(Value::Array(list)) => Ok(list.clone()),
            _ => Err(PollError::Other("getUpdates result is not a list".into())),
        };
    }
    let code = value.get("error_code").and_then(Value::as_i64).unwrap_or(0);
    let desc = value
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    ctx.metrics.telegram_call("getUpdates", &code.to_string());
    Err(match code {
        409 => PollError::Conflict(desc),
        429 => PollError::RetryAfter(Duration::from_secs(
            value
                .pointer("/parameters/retry_after")
                .and_then(Value::as_u64)
                .unwrap_or(1),
        )),
        401 | 404 => PollError::Unauthorized,
        _ => PollError::Other(format!("{code} {desc}")),
    })
}

fn ensure_slash(base: &str) -> String {
    if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    }
}
