//! Partition ownership: each stream partition is consumed by exactly one live
//! replica at a time, and live replicas hold about equal shares.
//!
//! Once per tick (a fifth of `PARTITION_LEASE_MS`) every replica runs
//! `scripts/partitions_tick.lua`, which in one step heartbeats the replica into
//! the live set, forgets replicas whose heartbeat is older than the lease,
//! renews this replica's partition leases, computes its fair share (partitions
//! divided by live replicas, the remainder going to the first ids in order),
//! and takes free partitions up to that share. A replica over its share (a new
//! one joined) stops the workers of its extra partitions; each worker finishes
//! its batch, acknowledges, and deletes its lease, and the newcomer takes the
//! partition on its next tick. A dead replica's leases simply expire.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;
use crate::worker;

struct Running {
    stop: CancellationToken,
    join: JoinHandle<()>,
}

/// Runs the ownership loop and the partition workers until shutdown, then
/// leaves the live set and stops every worker (each finishes and
/// acknowledges its updates, then releases and announces its partition).
pub async fn run(ctx: Arc<Runtime>, shutdown: CancellationToken) {
    // Renew well before expiry; a released partition is announced at once
    // (wakeups), so this interval only bounds how fast dead replicas are replaced.
    let tick = (ctx.settings.partition_lease / 5)
        .clamp(Duration::from_millis(100), Duration::from_millis(500));
    let mut running: HashMap<u32, Running> = HashMap::new();
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ctx.wakeups.partitions.notified() => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
        first = false;
        running.retain(|_, r| !r.join.is_finished());
        let outcome = ctx
            .store
            .partitions_tick(
                &ctx.settings.replica_id,
                ctx.settings.partition_lease,
                ctx.settings.partitions,
                false,
            )
            .await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                ctx.health.set_working(false);
                tracing::warn!(error = %e, "partition tick failed; Redis unreachable?");
                continue;
            }
        };
        ctx.health.set_working(true);
        let owned: std::collections::HashSet<u32> = outcome.owned.iter().copied().collect();
        // Lost leases (expired while we were away): stop at once.
        for (p, r) in running.iter() {
            if !owned.contains(p) && !r.stop.is_cancelled() {
                tracing::warn!(partition = p, "partition lease lost; stopping its worker");
                r.stop.cancel();
            }
        }
        // New partitions: start workers.
        for &p in &outcome.owned {
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(p) {
                let stop = CancellationToken::new();
                let join = tokio::spawn(worker::run_partition(ctx.clone(), p, stop.clone()));
                slot.insert(Running { stop, join });
            }
        }
        // Over our share: hand the highest partitions back.
        let mut active: Vec<u32> = running
            .iter()
            .filter(|(_, r)| !r.stop.is_cancelled())
            .map(|(p, _)| *p)
            .collect();
        let target = outcome.target as usize;
        if active.len() > target {
            active.sort_unstable();
            for p in active.split_off(target) {
                tracing::info!(partition = p, target, "handing partition over to rebalance");
                if let Some(r) = running.get(&p) {
                    r.stop.cancel();
                }
            }
        }
        ctx.metrics
            .partitions_owned
            .set(running.values().filter(|r| !r.stop.is_cancelled()).count() as i64);
    }
    // Leave the live set first, so the others' fair share already counts
    // without us when our partitions come free; then stop the workers, each
    // of which finishes, acknowledges, releases and announces its partition.
    if let Err(e) = ctx
        .store
        .partitions_tick(
            &ctx.settings.replica_id,
            ctx.settings.partition_lease,
            ctx.settings.partitions,
            true,
        )
        .await
    {
        tracing::warn!(error = %e, "could not leave the live replica set; it will expire");
    }
    for r in running.values() {
        r.stop.cancel();
    }
    for (_, r) in running.drain() {
        let _ = r.join.await;
    }
    ctx.metrics.partitions_owned.set(0);
}
