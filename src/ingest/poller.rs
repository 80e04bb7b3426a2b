//! The elected long-poller.
//!
//! Only the holder of the poller lease calls `getUpdates`. Each batch is
//! written to Redis by the fenced ingest script together with the next offset;
//! only the *next* `getUpdates` call, carrying that offset, confirms the batch
//! to Telegram. So a crash at any point loses nothing: an unconfirmed batch is
//! delivered again and the dedupe markers drop what was already written.
//!
//! Telegram restarts update ids at a random value, possibly lower, after a
//! week without updates, and a call with an offset above an update's id
//! confirms (drops) that update. So an offset is sent only to confirm a batch
//! just written, in a short call (`timeout` 0, which also picks up whatever
//! came meanwhile); once a call has come back empty everything is confirmed
//! and the long polls carry no offset at all ("from the earliest unconfirmed
//! update"), so no stale offset can swallow the first updates with new, lower
//! ids. The stored offset follows the last batch even when lower, and a
//! starting poller ignores a stored offset older than [`STALE_OFFSET`].
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
use crate::store::{IngestOutcome, StoredOffset};

/// A stored offset older than this is not used at start-up: Telegram may have
/// restarted its update ids (it does after a week without updates).
pub const STALE_OFFSET: Duration = Duration::from_secs(6 * 24 * 3600);

/// The offset a starting poller confirms with first: the stored one, unless
/// there is none or it is so old that the ids may have restarted below it.
pub fn start_offset(stored: StoredOffset) -> Option<i64> {
    match stored.age {
        _ if stored.offset <= 0 => None,
        Some(age) if age >= STALE_OFFSET => None,
        _ => Some(stored.offset),
    }
}

/// What writing a batch gave.
enum Batch {
    /// Written; confirm it with this offset.
    Next(i64),
    /// Nothing in it had an update id: nothing to write or confirm.
    Nothing,
}

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
    let stored = loop {
        match ctx.store.stored_offset().await {
            Ok(o) => break o,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the stored offset");
                if pause(Duration::from_millis(500), held, shutdown).await {
                    return;
                }
            }
        }
    };
    // Some(offset): a batch to confirm (short call); None: all confirmed (long poll).
    let mut confirm = start_offset(stored);
    if confirm.is_none() && stored.offset > 0 {
        tracing::warn!(
            offset = stored.offset,
            age = ?stored.age,
            "stored getUpdates offset is too old to trust (Telegram restarts update ids after a week idle); polling without it"
        );
    }
    let mut backoff = Duration::from_millis(250);
    loop {
        let call = get_updates(ctx, http, confirm);
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = held.lost() => return,
            r = call => r,
        };
        match result {
            Ok(updates) => {
                backoff = Duration::from_millis(250);
                if updates.is_empty() {
                    confirm = None;
                    continue;
                }
                match write_batch(ctx, held, shutdown, &updates).await {
                    Some(Batch::Next(next)) => confirm = Some(next),
                    Some(Batch::Nothing) => {}
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
/// the offset that confirms it, or None when the lease is lost or shutdown started.
async fn write_batch(
    ctx: &Runtime,
    held: &HeldLease,
    shutdown: &CancellationToken,
    updates: &[Value],
) -> Option<Batch> {
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
        return Some(Batch::Nothing);
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
                return Some(Batch::Next(next));
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

/// One `getUpdates`: with `confirm`, a short call carrying that offset;
/// without, a long poll from the earliest unconfirmed update.
async fn get_updates(
    ctx: &Runtime,
    http: &reqwest::Client,
    confirm: Option<i64>,
) -> Result<Vec<Value>, PollError> {
    let url = format!(
        "{}bot{}/getUpdates",
        ensure_slash(ctx.settings.telegram_api_url.as_str()),
        ctx.settings.bot_token.expose_secret()
    );
    let mut body = json!({
        "limit": 100,
        "timeout": if confirm.is_some() { 0 } else { ctx.settings.poll_timeout_secs },
        "allowed_updates": ALLOWED_UPDATES,
    });
    if let Some(offset) = confirm {
        body["offset"] = json!(offset);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_or_missing_offset_is_not_used_at_start() {
        let at = |offset, age: Option<u64>| StoredOffset {
            offset,
            age: age.map(Duration::from_secs),
        };
        assert_eq!(start_offset(at(0, None)), None);
        assert_eq!(start_offset(at(42, None)), Some(42));
        assert_eq!(start_offset(at(42, Some(60))), Some(42));
        assert_eq!(start_offset(at(42, Some(STALE_OFFSET.as_secs()))), None);
    }
}
