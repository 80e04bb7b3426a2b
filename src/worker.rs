//! Partition workers: turn stream entries into handled updates.
//!
//! One task per owned partition. On start it adopts every entry a previous
//! owner left pending (`XAUTOCLAIM`) and handles those first, then reads new
//! entries with a blocking `XREADGROUP` on its own connection. Each batch is
//! split by chat: one chat's updates run strictly one after another in stream
//! order, different chats run concurrently (bounded by `WORKER_CONCURRENCY`
//! across the replica). Every entry is acknowledged right after its handler
//! finished, so a crash re-delivers only what was in flight. A failing update
//! is retried a bounded number of times, then acknowledged and counted as
//! poison; an entry that is not a valid update is logged and acknowledged.
//! After each batch the stream is trimmed up to the batch, which keeps Redis
//! memory bounded by the backlog.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use redis::aio::MultiplexedConnection;
use tokio_util::sync::CancellationToken;

use crate::app::Context;
use crate::store::Entry;

/// How long one blocking read waits for new entries.
const BLOCK: Duration = Duration::from_millis(1000);
/// Entries read per batch.
const BATCH: usize = 200;

/// Consumes partition `p` until `stop` fires, then releases its lease.
pub async fn run_partition(ctx: Arc<Context>, p: u32, stop: CancellationToken) {
    tracing::info!(partition = p, "partition acquired");
    let me = ctx.settings.replica_id.clone();
    let mut conn: Option<MultiplexedConnection> = None;
    let mut adopted = false;
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match ctx.store.blocking_connection(BLOCK).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "cannot open a stream connection");
                    sleep_or_stop(&stop, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
        };
        let read = if adopted {
            ctx.store.read_new(c, p, &me, BATCH, BLOCK).await
        } else {
            ctx.store.claim_pending(c, p, &me).await
        };
        match read {
            Ok(entries) => {
                backoff = Duration::from_millis(100);
                if !adopted && !entries.is_empty() {
                    tracing::info!(
                        partition = p,
                        pending = entries.len(),
                        "replaying entries left by a previous owner"
                    );
                }
                adopted = true;
                if let Some(last) = entries.last().map(|e| e.id.clone()) {
                    handle_batch(&ctx, p, entries).await;
                    match ctx.store.trim(p, &last).await {
                        Ok(lag) => {
                            ctx.metrics
                                .stream_lag
                                .get_or_create(&crate::metrics::PartitionLabel { partition: p })
                                .set(lag as i64);
                        }
                        Err(e) => tracing::debug!(partition = p, error = %e, "trim failed"),
                    }
                }
            }
            Err(e) => {
                if e.code() == Some("NOGROUP") {
                    // Redis lost the group (restarted without persistence): recreate.
                    let _ = ctx.store.ensure_group(p).await;
                } else {
                    tracing::warn!(partition = p, error = %e, "stream read failed; retrying");
                    conn = None;
                }
                sleep_or_stop(&stop, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
    ctx.metrics
        .stream_lag
        .remove(&crate::metrics::PartitionLabel { partition: p });
    match ctx.store.release_partition(&me, p).await {
        Ok(_) => tracing::info!(partition = p, "partition released"),
        Err(e) => {
            tracing::warn!(partition = p, error = %e, "could not release partition; it will expire")
        }
    }
}

async fn sleep_or_stop(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// Handles one batch: per chat in order, chats concurrently.
async fn handle_batch(ctx: &Arc<Context>, p: u32, entries: Vec<Entry>) {
    let mut order: Vec<i64> = Vec::new();
    let mut by_chat: HashMap<i64, Vec<Entry>> = HashMap::new();
    for e in entries {
        by_chat
            .entry(e.chat)
            .or_insert_with(|| {
                order.push(e.chat);
                Vec::new()
            })
            .push(e);
    }
    let chats = order.into_iter().filter_map(|chat| by_chat.remove(&chat));
    futures::future::join_all(chats.map(|list| async move {
        for entry in list {
            handle_entry(ctx, p, entry).await;
        }
    }))
    .await;
}

async fn handle_entry(ctx: &Arc<Context>, p: u32, entry: Entry) {
    let update_id = entry.update_id;
    let chat = entry.chat;
    // Bounded concurrency across the replica. The semaphore is never closed,
    // so acquiring fails only if that invariant breaks; then run unbounded.
    let _permit = ctx.handler_slots.acquire().await.ok();
    let started = Instant::now();
    match serde_json::from_str::<teloxide::types::Update>(&entry.raw) {
        Err(e) => {
            ctx.metrics.malformed_updates.inc();
            tracing::warn!(update_id, partition = p, error = %e, "malformed update skipped");
        }
        Ok(update) if matches!(update.kind, teloxide::types::UpdateKind::Error(_)) => {
            // teloxide parses unknown or broken update bodies into `Error`.
            ctx.metrics.malformed_updates.inc();
            tracing::warn!(
                update_id,
                partition = p,
                "malformed or unsupported update skipped"
            );
        }
        Ok(update) => {
            let max = ctx.settings.handler_max_attempts;
            let mut attempt = 0;
            loop {
                attempt += 1;
                let outcome = AssertUnwindSafe(crate::bot::handle(ctx.clone(), update.clone()))
                    .catch_unwind()
                    .await;
                let err = match outcome {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(_) => "handler panicked".to_string(),
                };
                ctx.metrics.handler_errors.inc();
                if attempt >= max {
                    ctx.metrics.poison_updates.inc();
                    tracing::error!(update_id, partition = p, attempt, error = %err, "update failed for the last time; skipped");
                    break;
                }
                tracing::warn!(update_id, partition = p, attempt, error = %err, "update failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
    ctx.metrics
        .handler_latency
        .observe(started.elapsed().as_secs_f64());
    // Logged before the acknowledgement: a crash in between re-delivers the
    // entry, and tests count exactly those repeats.
    tracing::debug!(update_id, chat, partition = p, "update handled");
    // Acknowledge; on a Redis error the entry stays pending and is handled
    // again by whoever adopts the partition next (at-least-once).
    for attempt in 0..3u64 {
        match ctx.store.ack(p, &entry.id).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(update_id, partition = p, error = %e, "ack failed");
                tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
            }
        }
    }
    ctx.metrics.updates_handled.inc();
}
