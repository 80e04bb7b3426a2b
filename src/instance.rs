//! One process per replica id.
//!
//! Leases and partition ownership are keyed by `REPLICA_ID`, so two live
//! processes started with the same id (a copied `.env`, a container restarted
//! while its old self still runs) would both act as that replica, both as the
//! poller among others, without anything noticing. Each process draws a random
//! nonce and registers it under its id in Redis with a TTL, renewed while it
//! runs (`scripts/instance_claim.lua`). A process that finds another live
//! nonce under its id at start-up waits one TTL (a crashed process's
//! registration expires by then) and then refuses to start with one line; a
//! running process that finds its id taken logs an error.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

/// This process's registration under its replica id.
pub struct Instance {
    store: Store,
    replica: String,
    nonce: String,
    ttl: Duration,
}

/// A random nonce for this process (std's per-process random hash keys,
/// mixed with the pid and the time).
fn nonce() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    format!("{:016x}-{}", h.finish(), std::process::id())
}

impl Instance {
    /// Registers this process under `replica`, waiting up to about one `ttl`
    /// for a dead predecessor's registration to expire; refused when another
    /// live process keeps it.
    pub async fn register(
        store: &Store,
        replica: &str,
        ttl: Duration,
    ) -> Result<Instance, StoreError> {
        let me = Instance {
            store: store.clone(),
            replica: replica.to_string(),
            nonce: nonce(),
            ttl,
        };
        let deadline = Instant::now() + ttl + ttl / 2;
        let mut warned = false;
        loop {
            if store.claim_instance(replica, &me.nonce, ttl).await? {
                return Ok(me);
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Refused(format!(
                    "REPLICA_ID {replica} is already used by another running process on this Redis; \
                     give every replica its own REPLICA_ID (or leave it unset)"
                )));
            }
            if !warned {
                tracing::warn!(
                    replica,
                    "REPLICA_ID is registered by another process; waiting to see whether it is still alive"
                );
                warned = true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Renews the registration at a third of its TTL until `stop`, then
    /// gives it up. Losing the id to another process is logged as an error.
    pub async fn keep(self, stop: CancellationToken) {
        let mut conflict = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(self.ttl / 3) => {}
            }
            match self
                .store
                .claim_instance(&self.replica, &self.nonce, self.ttl)
                .await
            {
                Ok(true) => {
                    if conflict {
                        tracing::info!(replica = %self.replica, "REPLICA_ID is this process's again");
                    }
                    conflict = false;
                }
                Ok(false) => {
                    if !conflict {
                        tracing::error!(
                            replica = %self.replica,
                            "another process is running with this REPLICA_ID; give every replica its own id"
                        );
                    }
                    conflict = true;
                }
                Err(e) => tracing::debug!(error = %e, "cannot renew the replica id registration"),
            }
        }
        if let Err(e) = self
            .store
            .release_instance(&self.replica, &self.nonce)
            .await
        {
            tracing::debug!(error = %e, "cannot release the replica id registration; it expires");
        }
    }
}
