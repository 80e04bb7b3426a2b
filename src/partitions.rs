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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::fence::Fence;
use crate::runtime::Runtime;
use crate::worker;

struct Running {
    stop: CancellationToken,
    fence: Fence,
    join: JoinHandle<()>,
}

/// Runs the ownership loop and the partition workers until shutdown, then
/// leaves the live set and stops every worker (each finishes and
/// acknowledges its updates, then releases and announces its partition),
/// renewing the leases of the partitions still draining until they are done.
pub async fn run(ctx: Arc<Runtime>, shutdown: CancellationToken) {
    // Renew well before expiry; a released partition is announced at once
    // (wakeups), so this interval only bounds how fast dead replicas are replaced.
    let lease = ctx.settings.partition_lease;
    let tick = (lease / 5).clamp(Duration::from_millis(100), Duration::from_millis(500));
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
        let sent = Instant::now();
        let outcome = ctx
            .store
            .partitions_tick(
                &ctx.settings.replica_id,
                lease,
                ctx.settings.partitions,
                false,
            )
            .await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                ctx.health.set_working(false);
                tracing::warn!(error = %e, "partition tick failed; Redis unreachable?");
                stop_lapsed(&running);
                continue;
            }
        };
        ctx.health.set_working(true);
        let owned: HashSet<u32> = outcome.owned.iter().copied().collect();
        let horizon = Fence::horizon(sent, lease);
        for (p, r) in running.iter() {
            if owned.contains(p) {
                r.fence.extend_to(horizon);
            } else {
                // Lost (expired while we were away): stop at once, send nothing more.
                if !r.stop.is_cancelled() {
                    tracing::warn!(partition = p, "partition lease lost; stopping its worker");
                }
                r.fence.revoke();
                r.stop.cancel();
            }
        }
        // New partitions: start workers.
        let mut started = 0;
        for &p in &outcome.owned {
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(p) {
                let stop = CancellationToken::new();
                let fence = Fence::until(horizon);
                let join = tokio::spawn(worker::run_partition(
                    ctx.clone(),
                    p,
                    stop.clone(),
                    fence.clone(),
                ));
                slot.insert(Running { stop, fence, join });
                started += 1;
            }
        }
        // Over our share: hand the highest partitions back.
        let mut active: Vec<u32> = running
            .iter()
            .filter(|(_, r)| !r.stop.is_cancelled())
            .map(|(p, _)| *p)
            .collect();
        let target = outcome.target as usize;
        let mut handed = Vec::new();
        if active.len() > target {
            active.sort_unstable();
            for p in active.split_off(target) {
                if let Some(r) = running.get(&p) {
                    r.stop.cancel();
                }
                handed.push(p);
            }
        }
        let now_owned = running.values().filter(|r| !r.stop.is_cancelled()).count();
        if started > 0 || !handed.is_empty() {
            tracing::info!(
                started,
                handed_over = ?handed,
                owned = now_owned,
                target,
                "partitions rebalanced"
            );
        }
        ctx.metrics.partitions_owned.set(now_owned as i64);
    }
    // Leave the live set first, so the others' fair share already counts
    // without us when our partitions come free; then stop the workers, each
    // of which finishes, acknowledges, releases and announces its partition.
    // Until they are done, keep renewing the leases they still hold.
    let mut first = true;
    loop {
        running.retain(|_, r| !r.join.is_finished());
        let sent = Instant::now();
        match ctx
            .store
            .partitions_tick(
                &ctx.settings.replica_id,
                lease,
                ctx.settings.partitions,
                true,
            )
            .await
        {
            Ok(o) => {
                let owned: HashSet<u32> = o.owned.into_iter().collect();
                for (p, r) in running.iter() {
                    if owned.contains(p) {
                        r.fence.extend_to(Fence::horizon(sent, lease));
                    } else {
                        r.fence.revoke();
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not renew draining partitions; they will expire");
                stop_lapsed(&running);
            }
        }
        if first {
            // Out of the live set now: stop the workers.
            first = false;
            for r in running.values() {
                r.stop.cancel();
            }
        }
        if running.is_empty() {
            break;
        }
        let joins = futures::future::join_all(running.values_mut().map(|r| &mut r.join));
        // Wake up when every worker is done, or to renew again.
        let _ = tokio::time::timeout(tick, joins).await;
    }
    ctx.metrics.partitions_owned.set(0);
}

/// Stops the workers whose lease may have lapsed (renewals failing): from
/// here on another replica may own their partitions.
fn stop_lapsed(running: &HashMap<u32, Running>) {
    for (p, r) in running {
        if !r.fence.is_valid() && !r.stop.is_cancelled() {
            tracing::warn!(
                partition = p,
                "partition lease lapsed without renewal; stopping its worker"
            );
            r.stop.cancel();
        }
    }
}
