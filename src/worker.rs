//! Partition workers: turn stream entries into handled updates.
//!
//! One worker per owned partition, in two tasks:
//!
//! - the *reader* adopts every entry a previous owner left pending
//!   (`XAUTOCLAIM`), then reads new entries with a blocking `XREADGROUP` on its
//!   own connection, and hands them over through a bounded channel (so a slow
//!   partition leaves its backlog in Redis, not in memory);
//! - the *dispatcher* keeps one queue per chat: a chat's updates run strictly
//!   one after another in stream order, different chats run concurrently
//!   (bounded by `WORKER_CONCURRENCY` across the replica). There is no batch
//!   barrier, so a chat waiting on Telegram (a 429 freeze) never holds up the
//!   other chats of its partition.
//!
//! Every entry is acknowledged right after its handler finished, in the same
//! Redis round trip as the writes the handler deferred (message maps), so a
//! crash re-delivers only what was in flight. A failing update is retried a
//! bounded number of times, then acknowledged and counted as poison; an entry
//! that is not a valid update is logged and acknowledged. The stream is
//! trimmed up to the oldest unfinished entry, which keeps Redis memory bounded
//! by the backlog.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;
use crate::store::{deferred, stream_id_key, Counted, Entry, EntryKind};

/// How long one blocking read waits for new entries.
const BLOCK: Duration = Duration::from_millis(1000);
/// Entries read at once.
const BATCH: usize = 64;
/// Entries a partition holds in memory (read but not yet handled): with 64
/// partitions a replica holds at most a few thousand updates.
const BUFFER: usize = 64;
/// Trim the stream after this many handled entries, or this long after the
/// last trim once the partition is idle.
const TRIM_EVERY: u32 = 100;
const TRIM_IDLE: Duration = Duration::from_secs(1);

/// Consumes partition `p` until `stop` fires, then releases its lease.
pub async fn run_partition(ctx: Arc<Runtime>, p: u32, stop: CancellationToken) {
    tracing::info!(partition = p, "partition acquired");
    let (tx, rx) = mpsc::channel::<Entry>(BUFFER);
    let reader_stop = stop.child_token();
    let reader = tokio::spawn(read_loop(ctx.clone(), p, tx, reader_stop.clone()));
    dispatch(&ctx, p, rx, &stop).await;
    reader_stop.cancel();
    let _ = reader.await;
    ctx.metrics
        .stream_lag
        .remove(&crate::metrics::PartitionLabel { partition: p });
    match ctx
        .store
        .release_partition(&ctx.settings.replica_id, p)
        .await
    {
        Ok(true) => {
            tracing::info!(partition = p, "partition released");
            let _ = ctx
                .store
                .publish_event(crate::wakeups::PARTITIONS_RELEASED)
                .await;
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(partition = p, error = %e, "could not release partition; it will expire")
        }
    }
}

async fn read_loop(ctx: Arc<Runtime>, p: u32, tx: mpsc::Sender<Entry>, stop: CancellationToken) {
    let me = ctx.settings.replica_id.clone();
    let mut conn: Option<Counted<MultiplexedConnection>> = None;
    let mut adopted = false;
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        // Wait for room first: entries read are pending for us until handled.
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = tx.reserve_many(BATCH.min(BUFFER)) => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        drop(permit);
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
                for e in entries {
                    if tx.send(e).await.is_err() {
                        return;
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
}

async fn sleep_or_stop(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// Per-chat queues over one partition's entries.
async fn dispatch(
    ctx: &Arc<Runtime>,
    p: u32,
    mut rx: mpsc::Receiver<Entry>,
    stop: &CancellationToken,
) {
    let mut waiting: HashMap<i64, VecDeque<Entry>> = HashMap::new();
    let mut running: JoinSet<(i64, String)> = JoinSet::new();
    let mut active: HashMap<i64, ()> = HashMap::new();
    // Ids received and not yet finished, for trimming.
    let mut unfinished: BTreeSet<(u64, u64)> = BTreeSet::new();
    // The newest id received: with nothing unfinished, everything up to it is done.
    let mut newest: Option<String> = None;
    let mut since_trim = 0u32;
    let mut last_trim = Instant::now();
    let mut receiving = true;
    loop {
        if stop.is_cancelled() && receiving {
            // Stop taking work; what is buffered stays pending for the next owner.
            receiving = false;
            rx.close();
            waiting.clear();
        }
        if !receiving && running.is_empty() {
            break;
        }
        tokio::select! {
            _ = stop.cancelled(), if receiving => {}
            entry = rx.recv(), if receiving => {
                let Some(entry) = entry else {
                    receiving = false;
                    continue;
                };
                unfinished.insert(stream_id_key(&entry.id));
                newest = Some(entry.id.clone());
                let chat = entry.chat;
                if let std::collections::hash_map::Entry::Vacant(slot) = active.entry(chat) {
                    slot.insert(());
                    running.spawn(run_chat(ctx.clone(), p, chat, entry));
                } else {
                    waiting.entry(chat).or_default().push_back(entry);
                }
            }
            done = running.join_next(), if !running.is_empty() => {
                let (chat, id) = match done {
                    Some(Ok(v)) => v,
                    // The runner panicked outside the handler guard: its chat
                    // is unknown; entries stay pending and are replayed by
                    // the next owner of the partition.
                    _ => continue,
                };
                unfinished.remove(&stream_id_key(&id));
                since_trim += 1;
                match waiting.get_mut(&chat).and_then(VecDeque::pop_front) {
                    Some(next) => {
                        running.spawn(run_chat(ctx.clone(), p, chat, next));
                    }
                    None => {
                        waiting.remove(&chat);
                        active.remove(&chat);
                    }
                }
                if since_trim >= TRIM_EVERY {
                    since_trim = 0;
                    last_trim = Instant::now();
                    trim(ctx, p, &unfinished, newest.as_deref()).await;
                }
            }
            // Handled entries not trimmed yet: trim once a second at most.
            _ = tokio::time::sleep_until((last_trim + TRIM_IDLE).into()), if since_trim > 0 => {
                since_trim = 0;
                last_trim = Instant::now();
                trim(ctx, p, &unfinished, newest.as_deref()).await;
            }
        }
    }
    trim(ctx, p, &unfinished, newest.as_deref()).await;
}

/// Trims the stream below the oldest unfinished entry (or up to the newest
/// received one when nothing is in flight) and records the lag.
async fn trim(ctx: &Runtime, p: u32, unfinished: &BTreeSet<(u64, u64)>, newest: Option<&str>) {
    let min_id = match unfinished.first() {
        Some((ms, seq)) => format!("{ms}-{seq}"),
        None => match newest {
            Some(id) => id.to_string(),
            None => return,
        },
    };
    match ctx.store.trim(p, &min_id).await {
        Ok(lag) => {
            ctx.metrics
                .stream_lag
                .get_or_create(&crate::metrics::PartitionLabel { partition: p })
                .set(lag as i64);
        }
        Err(e) => tracing::debug!(partition = p, error = %e, "trim failed"),
    }
}

/// Handles one entry of `chat` and returns (chat, entry id) when done.
async fn run_chat(ctx: Arc<Runtime>, p: u32, chat: i64, entry: Entry) -> (i64, String) {
    let id = entry.id.clone();
    handle_entry(&ctx, p, entry).await;
    (chat, id)
}

/// What one stream entry asks for.
enum Work {
    /// A Telegram update, for the handler tree.
    Update(Box<teloxide::types::Update>),
    /// An internal event for a user (a fired timer's notice, an album
    /// flush), written to the user's partition by the timer script.
    Event {
        user: i64,
        event: crate::domain::Event,
    },
}

/// Decodes an entry; None (logged and counted) when it is not valid work.
fn decode(ctx: &Runtime, p: u32, entry: &Entry) -> Option<Work> {
    let update_id = entry.update_id;
    if entry.kind == EntryKind::Event {
        return match crate::store::event_from(&entry.raw) {
            Some(event) => Some(Work::Event {
                user: entry.chat,
                event,
            }),
            None => {
                ctx.metrics.malformed_updates.inc();
                tracing::warn!(update_id, partition = p, "unknown event skipped");
                None
            }
        };
    }
    match serde_json::from_str::<teloxide::types::Update>(&entry.raw) {
        Err(e) => {
            ctx.metrics.malformed_updates.inc();
            tracing::warn!(update_id, partition = p, error = %e, "malformed update skipped");
            None
        }
        Ok(update) if matches!(update.kind, teloxide::types::UpdateKind::Error(_)) => {
            // teloxide parses unknown or broken update bodies into `Error`.
            ctx.metrics.malformed_updates.inc();
            tracing::warn!(
                update_id,
                partition = p,
                "malformed or unsupported update skipped"
            );
            None
        }
        Ok(update) => Some(Work::Update(Box::new(update))),
    }
}

/// Runs `work` once; returns the writes its handler deferred.
async fn run_once(ctx: &Arc<Runtime>, work: &Work) -> Result<Vec<redis::Cmd>, String> {
    let handled = async {
        match work {
            Work::Update(update) => {
                crate::bot::handle(
                    &ctx.handlers,
                    ctx.deps.clone(),
                    ctx.me.clone(),
                    (**update).clone(),
                )
                .await
            }
            Work::Event { user, event } => {
                crate::bot::timed::on_event(&ctx.deps, *user, event).await
            }
        }
    };
    match deferred::scope(AssertUnwindSafe(handled).catch_unwind()).await {
        (Ok(Ok(())), cmds) => Ok(cmds),
        (Ok(Err(e)), _) => Err(format!("{e:#}")),
        (Err(_), _) => Err("handler panicked".to_string()),
    }
}

async fn handle_entry(ctx: &Arc<Runtime>, p: u32, entry: Entry) {
    let update_id = entry.update_id;
    let chat = entry.chat;
    // Bounded concurrency across the replica. The semaphore is never closed,
    // so acquiring fails only if that invariant breaks; then run unbounded.
    let _permit = ctx.handler_slots.acquire().await.ok();
    let started = Instant::now();
    let mut writes = Vec::new();
    if let Some(work) = decode(ctx, p, &entry) {
        let max = ctx.settings.handler_max_attempts;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match run_once(ctx, &work).await {
                Ok(cmds) => {
                    writes = cmds;
                    break;
                }
                Err(e) => e,
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
    ctx.metrics
        .handler_latency
        .observe(started.elapsed().as_secs_f64());
    // Journaled before the acknowledgement: a crash in between re-delivers
    // the entry, and tests count exactly those repeats.
    if let Some(j) = &ctx.journal {
        j.handled(update_id, chat, p);
    }
    tracing::debug!(update_id, chat, partition = p, "update handled");
    // Acknowledge (with the deferred writes); on a Redis error the entry stays
    // pending and is handled again by whoever adopts the partition next.
    for attempt in 0..3u64 {
        match ctx.store.ack_with(p, &entry.id, &writes).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(update_id, partition = p, error = %e, "ack failed");
                tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
            }
        }
    }
    ctx.metrics.updates_handled.inc();
}
