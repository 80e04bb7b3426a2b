//! Partition workers: turn stream entries into handled updates.
//!
//! One worker per owned partition, in two tasks:
//!
//! - the *reader* first adopts what a previous owner left pending
//!   (`XAUTOCLAIM` of entries idle for at least a partition lease, so an owner
//!   that is merely slow keeps its own; it waits until nobody else holds any,
//!   so a chat's old entries always go before its new ones), then re-reads its
//!   own pending list, then reads new entries with a blocking `XREADGROUP` on
//!   its own connection. After any failed read it re-reads its own pending
//!   list (Redis may have delivered entries whose reply was lost). Entries go
//!   to the dispatcher through a bounded channel, each holding one of the
//!   replica's `MAX_BUFFERED_UPDATES` slots (taken after a read, so an idle
//!   partition's blocking read holds none), so a backlog stays in Redis;
//! - the *dispatcher* keeps one queue per chat: a chat's updates run strictly
//!   one after another in stream order, different chats run concurrently
//!   (bounded by `WORKER_CONCURRENCY` across the replica). There is no batch
//!   barrier, so a chat waiting on Telegram (a 429 freeze) never holds up the
//!   other chats of its partition. An entry it already holds or just finished
//!   is not taken twice.
//!
//! Failures are sorted by cause. When Redis or Telegram is unavailable (or
//! this replica's lease on the partition lapsed), the update is retried
//! without limit with backoff, and the whole partition pauses meanwhile: an
//! outage delays updates, never drops them. Only an update that fails by
//! itself is retried `HANDLER_MAX_ATTEMPTS` times and then acknowledged and
//! counted as poison; an entry that is not a valid update is logged and
//! acknowledged. Every entry is acknowledged after its handler finished, in
//! the same Redis round trip as the writes the handler deferred (message
//! maps), retried until it succeeds or the worker stops (then the entry stays
//! pending for the next owner). Handlers run under the partition's
//! [`Fence`]: once the lease lapsed they send nothing. The stream is trimmed
//! up to the oldest unfinished entry, which keeps Redis memory bounded by the
//! backlog.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::fence::{self, Fence};
use crate::runtime::Runtime;
use crate::store::{deferred, stream_id_key, Counted, Entry, EntryKind};

/// How long one blocking read waits for new entries.
const BLOCK: Duration = Duration::from_millis(1000);
/// Entries read at once.
const BATCH: usize = 64;
/// Entries one partition holds in memory at most (queued or running).
const PARTITION_BUFFER: usize = 256;
/// Finished entries remembered, so a re-read of the pending list does not
/// hand one over twice.
const RECENT: usize = 1024;
/// Trim the stream after this many handled entries, or this long after the
/// last trim once the partition is idle.
const TRIM_EVERY: u32 = 100;
const TRIM_IDLE: Duration = Duration::from_secs(1);
/// Backoff of a paused partition.
const PAUSE_MIN: Duration = Duration::from_millis(200);
const PAUSE_MAX: Duration = Duration::from_secs(5);

/// An entry read into memory, holding one of the replica's buffer slots.
struct Buffered {
    entry: Entry,
    _slot: OwnedSemaphorePermit,
}

/// A partition's pause while Redis or Telegram is unavailable: every
/// runner of the partition waits it out before its next attempt.
#[derive(Default)]
struct Pause {
    state: Mutex<(Option<Instant>, Duration)>,
}

impl Pause {
    /// An attempt failed for want of Redis or Telegram: pause (longer each time).
    fn hit(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let backoff = if s.1.is_zero() {
            PAUSE_MIN
        } else {
            (s.1 * 2).min(PAUSE_MAX)
        };
        *s = (Some(Instant::now() + backoff), backoff);
    }

    /// An attempt succeeded: no pause, and the next starts short again.
    fn clear(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *s = (None, Duration::ZERO);
    }

    /// Waits until the pause is over (or `stop` fires).
    async fn wait(&self, stop: &CancellationToken) {
        let until = self.state.lock().unwrap_or_else(|e| e.into_inner()).0;
        if let Some(until) = until {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }
}

/// Consumes partition `p` until `stop` fires, then releases its lease.
/// Handlers send only while `fence` is valid.
pub async fn run_partition(ctx: Arc<Runtime>, p: u32, stop: CancellationToken, fence: Fence) {
    tracing::debug!(partition = p, "partition acquired");
    let (tx, rx) = mpsc::channel::<Buffered>(BATCH);
    let reader_stop = stop.child_token();
    let reader = tokio::spawn(read_loop(
        ctx.clone(),
        p,
        tx,
        reader_stop.clone(),
        fence.clone(),
    ));
    dispatch(&ctx, p, rx, &stop, &fence).await;
    reader_stop.cancel();
    let _ = reader.await;
    ctx.metrics
        .stream_lag
        .remove(&crate::metrics::PartitionLabel { partition: p });
    // Whatever is still pending for us was read but not finished: hand it
    // to the next owner at once (if we still own the partition).
    if fence.is_valid() {
        match ctx.store.give_back(p, &ctx.settings.replica_id).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(partition = p, entries = n, "unfinished entries handed back"),
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "could not hand unfinished entries back; the next owner waits a lease for them")
            }
        }
    }
    match ctx
        .store
        .release_partition(&ctx.settings.replica_id, p)
        .await
    {
        Ok(true) => {
            tracing::debug!(partition = p, "partition released");
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
    fence.revoke();
}

/// Where the reader is.
enum Phase {
    /// Adopting what other consumers left pending, from this cursor.
    Adopt { cursor: String },
    /// Re-reading this consumer's own pending list after this id.
    Own { after: String },
    /// Reading new entries.
    New,
}

async fn read_loop(
    ctx: Arc<Runtime>,
    p: u32,
    tx: mpsc::Sender<Buffered>,
    stop: CancellationToken,
    fence: Fence,
) {
    let me = ctx.settings.replica_id.clone();
    let min_idle = ctx.settings.partition_lease;
    let started = Instant::now();
    let mut last_check = Instant::now();
    let mut conn: Option<Counted<MultiplexedConnection>> = None;
    let mut phase = Phase::Adopt {
        cursor: "0-0".to_string(),
    };
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        if !fence.is_valid() {
            // The lease may have lapsed: read nothing more (what we read now
            // could be owned by another replica already) until it is renewed.
            sleep_or_stop(&stop, Duration::from_millis(100)).await;
            continue;
        }
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
        let read = match &phase {
            Phase::Adopt { cursor } => {
                adopt_step(&ctx, c, p, &me, min_idle, cursor)
                    .await
                    .map(|(entries, next)| {
                        phase = next;
                        entries
                    })
            }
            Phase::Own { after } => {
                match ctx.store.read_own_pending(c, p, &me, after, BATCH).await {
                    Ok(entries) => {
                        phase = match entries.last() {
                            Some(last) => Phase::Own {
                                after: last.id.clone(),
                            },
                            None => Phase::New,
                        };
                        Ok(entries)
                    }
                    Err(e) => Err(e),
                }
            }
            Phase::New if last_check.elapsed() >= recheck_every(started, min_idle) => {
                // A previous owner that was cut off (a long Redis pause, a
                // frozen process) can still have read entries after we
                // adopted: look again, and adopt them before new ones.
                last_check = Instant::now();
                match ctx.store.pending_elsewhere(c, p, &me).await {
                    Ok((0, _)) => Ok(Vec::new()),
                    Ok((n, _)) => {
                        tracing::warn!(
                            partition = p,
                            pending = n,
                            "entries pending for a previous owner appeared; adopting them"
                        );
                        phase = Phase::Adopt {
                            cursor: "0-0".to_string(),
                        };
                        Ok(Vec::new())
                    }
                    Err(e) => Err(e),
                }
            }
            Phase::New => ctx.store.read_new(c, p, &me, BATCH, BLOCK).await,
        };
        match read {
            Ok(entries) => {
                backoff = Duration::from_millis(100);
                if entries.is_empty() {
                    continue;
                }
                // One of the replica's buffer slots per entry read. Taken
                // after the read, never held through a blocking one (idle
                // partitions would starve busy ones): at most one batch per
                // partition waits here beyond MAX_BUFFERED_UPDATES.
                let slots = tokio::select! {
                    _ = stop.cancelled() => return,
                    s = ctx.buffered.clone().acquire_many_owned(entries.len() as u32) => match s {
                        Ok(s) => s,
                        Err(_) => return,
                    },
                };
                if !hand_over(&tx, slots, entries).await {
                    return;
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
                // Redis may have delivered entries whose reply never came:
                // they are in our pending list; read it again before new ones.
                if matches!(phase, Phase::New) {
                    phase = Phase::Own {
                        after: "0".to_string(),
                    };
                }
                sleep_or_stop(&stop, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// How often a reader looks for entries pending for other consumers: often
/// in the first leases after taking a partition over, rarely afterwards.
fn recheck_every(started: Instant, lease: Duration) -> Duration {
    if started.elapsed() < lease * 3 {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(15)
    }
}

/// One page of adoption; returns the entries and the next phase.
async fn adopt_step(
    ctx: &Runtime,
    c: &mut Counted<MultiplexedConnection>,
    p: u32,
    me: &str,
    min_idle: Duration,
    cursor: &str,
) -> redis::RedisResult<(Vec<Entry>, Phase)> {
    let claimed = ctx
        .store
        .claim_pending(c, p, me, min_idle, cursor, BATCH)
        .await?;
    if claimed.lost > 0 {
        ctx.metrics.updates_lost.inc_by(claimed.lost as u64);
        tracing::error!(
            partition = p,
            lost = claimed.lost,
            "pending updates were deleted from the stream before anyone handled them"
        );
    }
    if !claimed.entries.is_empty() {
        tracing::info!(
            partition = p,
            adopted = claimed.entries.len(),
            "replaying entries left by a previous owner"
        );
    }
    if claimed.cursor != "0-0" {
        let next = Phase::Adopt {
            cursor: claimed.cursor,
        };
        return Ok((claimed.entries, next));
    }
    let (elsewhere, idle) = ctx.store.pending_elsewhere(c, p, me).await?;
    if elsewhere > 0 {
        // Left by an owner that stopped less than a lease ago: not idle
        // enough to take yet. New entries wait, so the chat's order holds.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let next = Phase::Adopt {
            cursor: "0-0".to_string(),
        };
        return Ok((claimed.entries, next));
    }
    if let Err(e) = ctx.store.delete_consumers(c, p, &idle).await {
        tracing::debug!(partition = p, error = %e, "could not delete idle consumers");
    }
    let next = Phase::Own {
        after: "0".to_string(),
    };
    Ok((claimed.entries, next))
}

/// Sends `entries` to the dispatcher, one buffer slot each (unused slots
/// go back); false when the dispatcher is gone.
async fn hand_over(
    tx: &mpsc::Sender<Buffered>,
    mut slots: OwnedSemaphorePermit,
    entries: Vec<Entry>,
) -> bool {
    for entry in entries {
        let Some(slot) = slots.split(1) else {
            // Never: one slot was taken per entry.
            tracing::error!("more entries read than buffer slots; entry left pending");
            continue;
        };
        if tx.send(Buffered { entry, _slot: slot }).await.is_err() {
            return false;
        }
    }
    true
}

async fn sleep_or_stop(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// How a runner ended.
struct Finished {
    chat: i64,
    key: (u64, u64),
    /// Acknowledged (or never to be handled again); false when the worker
    /// stopped first and the entry stays pending for the next owner.
    done: bool,
}

/// Entries seen by one dispatcher, for trimming and de-duplication.
#[derive(Default)]
struct Ledger {
    /// Received and not finished.
    unfinished: BTreeSet<(u64, u64)>,
    /// Recently finished, oldest first.
    recent: VecDeque<(u64, u64)>,
    recent_set: HashSet<(u64, u64)>,
    /// The highest id received: with nothing unfinished, all up to it is done.
    newest: Option<(u64, u64)>,
}

impl Ledger {
    /// Takes an entry; false when it is already held or just finished.
    fn take(&mut self, key: (u64, u64)) -> bool {
        if self.unfinished.contains(&key) || self.recent_set.contains(&key) {
            return false;
        }
        self.unfinished.insert(key);
        self.newest = self.newest.max(Some(key));
        true
    }

    fn finish(&mut self, key: (u64, u64)) {
        self.unfinished.remove(&key);
        self.recent.push_back(key);
        self.recent_set.insert(key);
        if self.recent.len() > RECENT {
            if let Some(old) = self.recent.pop_front() {
                self.recent_set.remove(&old);
            }
        }
    }

    /// The id below which everything is finished.
    fn trim_point(&self) -> Option<String> {
        let (ms, seq) = match self.unfinished.first() {
            Some(k) => *k,
            None => self.newest?,
        };
        Some(format!("{ms}-{seq}"))
    }
}

/// Per-chat queues over one partition's entries.
async fn dispatch(
    ctx: &Arc<Runtime>,
    p: u32,
    mut rx: mpsc::Receiver<Buffered>,
    stop: &CancellationToken,
    fence: &Fence,
) {
    let pause = Arc::new(Pause::default());
    let mut waiting: HashMap<i64, VecDeque<Buffered>> = HashMap::new();
    let mut running: JoinSet<Finished> = JoinSet::new();
    // Which chat and entry each runner task is for (a panicked task still has its id).
    let mut tasks: HashMap<tokio::task::Id, (i64, (u64, u64))> = HashMap::new();
    let mut active: HashSet<i64> = HashSet::new();
    let mut ledger = Ledger::default();
    let mut held = 0usize;
    let mut since_trim = 0u32;
    let mut last_trim = Instant::now();
    let mut receiving = true;
    let spawn = |running: &mut JoinSet<Finished>,
                 tasks: &mut HashMap<tokio::task::Id, (i64, (u64, u64))>,
                 b: Buffered| {
        let chat = b.entry.chat;
        let key = stream_id_key(&b.entry.id);
        let run = run_chat(
            ctx.clone(),
            p,
            b,
            stop.clone(),
            fence.clone(),
            pause.clone(),
        );
        let handle = running.spawn(run);
        tasks.insert(handle.id(), (chat, key));
    };
    loop {
        if stop.is_cancelled() && receiving {
            // Stop taking work; what is buffered stays pending for the next owner.
            receiving = false;
            rx.close();
            held -= waiting.values().map(VecDeque::len).sum::<usize>();
            waiting.clear();
        }
        if !receiving && running.is_empty() {
            break;
        }
        ctx.metrics
            .updates_buffered
            .set((ctx.settings.max_buffered_updates - ctx.buffered.available_permits()) as i64);
        tokio::select! {
            _ = stop.cancelled(), if receiving => {}
            b = rx.recv(), if receiving && held < PARTITION_BUFFER => {
                let Some(b) = b else {
                    receiving = false;
                    continue;
                };
                if !ledger.take(stream_id_key(&b.entry.id)) {
                    continue;
                }
                held += 1;
                let chat = b.entry.chat;
                if active.insert(chat) {
                    spawn(&mut running, &mut tasks, b);
                } else {
                    waiting.entry(chat).or_default().push_back(b);
                }
            }
            done = running.join_next_with_id(), if !running.is_empty() => {
                let finished = match done {
                    Some(Ok((id, f))) => {
                        tasks.remove(&id);
                        f
                    }
                    Some(Err(e)) => {
                        // The runner panicked outside the handler's guard:
                        // count it as poison and free its chat.
                        let Some((chat, key)) = tasks.remove(&e.id()) else { continue };
                        ctx.metrics.poison_updates.inc();
                        tracing::error!(partition = p, "update runner panicked; skipped");
                        Finished { chat, key, done: true }
                    }
                    None => continue,
                };
                held -= 1;
                if finished.done {
                    ledger.finish(finished.key);
                    since_trim += 1;
                }
                match waiting.get_mut(&finished.chat).and_then(VecDeque::pop_front) {
                    Some(next) => spawn(&mut running, &mut tasks, next),
                    None => {
                        waiting.remove(&finished.chat);
                        active.remove(&finished.chat);
                    }
                }
                if since_trim >= TRIM_EVERY {
                    since_trim = 0;
                    last_trim = Instant::now();
                    trim(ctx, p, &ledger).await;
                }
            }
            // Handled entries not trimmed yet: trim once a second at most.
            _ = tokio::time::sleep_until((last_trim + TRIM_IDLE).into()), if since_trim > 0 => {
                since_trim = 0;
                last_trim = Instant::now();
                trim(ctx, p, &ledger).await;
            }
        }
    }
    trim(ctx, p, &ledger).await;
}

/// Trims the stream below the oldest unfinished entry (or up to the newest
/// received one when nothing is in flight) and records the lag.
async fn trim(ctx: &Runtime, p: u32, ledger: &Ledger) {
    let Some(min_id) = ledger.trim_point() else {
        return;
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

/// Handles one entry of its chat.
async fn run_chat(
    ctx: Arc<Runtime>,
    p: u32,
    b: Buffered,
    stop: CancellationToken,
    fence: Fence,
    pause: Arc<Pause>,
) -> Finished {
    let chat = b.entry.chat;
    let key = stream_id_key(&b.entry.id);
    let done = handle_entry(&ctx, p, &b.entry, &stop, &fence, &pause).await;
    Finished { chat, key, done }
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

/// Why one attempt failed.
struct Failure {
    /// Redis or Telegram unavailable, or the lease lapsed: retry later.
    transient: bool,
    message: String,
}

/// Runs `work` once; returns the writes its handler deferred.
async fn run_once(ctx: &Arc<Runtime>, work: &Work) -> Result<Vec<redis::Cmd>, Failure> {
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
        (Ok(Err(e)), _) => Err(Failure {
            transient: crate::bot::is_transient(&e),
            message: format!("{e:#}"),
        }),
        (Err(_), _) => Err(Failure {
            transient: false,
            message: "handler panicked".to_string(),
        }),
    }
}

/// Handles one entry; true when it is finished (acknowledged), false when
/// the worker stopped first and it stays pending for the next owner.
async fn handle_entry(
    ctx: &Arc<Runtime>,
    p: u32,
    entry: &Entry,
    stop: &CancellationToken,
    fence: &Fence,
    pause: &Pause,
) -> bool {
    let update_id = entry.update_id;
    let chat = entry.chat;
    let started = Instant::now();
    let mut writes = Vec::new();
    if let Some(work) = decode(ctx, p, entry) {
        let max = ctx.settings.handler_max_attempts;
        let mut failed = 0;
        let mut retries = 0u64;
        loop {
            pause.wait(stop).await;
            if stop.is_cancelled() && retries > 0 {
                // Retrying an outage at shutdown or hand-over: leave it pending.
                return false;
            }
            let result = {
                // Bounded concurrency across the replica, taken per attempt so a
                // paused partition holds no slot. Never closed; if that
                // invariant broke, run unbounded.
                let _slot = ctx.handler_slots.acquire().await.ok();
                fence::scope(fence.clone(), run_once(ctx, &work)).await
            };
            let err = match result {
                Ok(cmds) => {
                    pause.clear();
                    writes = cmds;
                    break;
                }
                Err(f) => f,
            };
            ctx.metrics.handler_errors.inc();
            if err.transient {
                retries += 1;
                ctx.metrics.handler_retries.inc();
                pause.hit();
                if retries == 1 || retries.is_multiple_of(20) {
                    tracing::warn!(update_id, partition = p, retries, error = %err.message, "Redis or Telegram unavailable; the partition pauses and retries");
                }
                continue;
            }
            failed += 1;
            if failed >= max {
                ctx.metrics.poison_updates.inc();
                tracing::error!(update_id, partition = p, attempt = failed, error = %err.message, "update failed for the last time; skipped");
                break;
            }
            tracing::warn!(update_id, partition = p, attempt = failed, error = %err.message, "update failed; retrying");
            tokio::time::sleep(Duration::from_millis(200 * u64::from(failed))).await;
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
    // Acknowledge (with the deferred writes) until it works; if the worker
    // stops first, the entry stays pending and is handled again by whoever
    // adopts the partition next.
    let mut backoff = Duration::from_millis(100);
    loop {
        match ctx.store.ack_with(p, &entry.id, &writes).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(update_id, partition = p, error = %e, "ack failed; retrying");
                if stop.is_cancelled() {
                    return false;
                }
                sleep_or_stop(stop, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
    ctx.metrics.updates_handled.inc();
    true
}
