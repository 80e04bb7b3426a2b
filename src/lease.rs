//! The poller lease: at most one replica calls `getUpdates` at a time.
//!
//! Telegram answers a second concurrent `getUpdates` with 409 and splits
//! updates between pollers at random, so replicas elect one poller through a
//! Redis lease (`SET NX PX`). Each acquisition increments a fencing epoch; the
//! lease value `"{replica} {epoch}"` is the token the ingest script checks, so a
//! deposed poller (paused, partitioned, slow) can no longer write or confirm a
//! batch. The holder renews at a third of the lease time; on shutdown it
//! releases at once so a follower takes over within its retry interval.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::store::{LeaseName, Store};

/// How often a follower retries to take a free lease.
pub const FOLLOWER_RETRY: Duration = Duration::from_millis(200);

/// A held lease. Dropping it without [`HeldLease::release`] lets it expire.
pub struct HeldLease {
    store: Store,
    token: String,
    lost: CancellationToken,
    renewer: tokio::task::JoinHandle<()>,
}

impl HeldLease {
    /// The fencing token written with every batch.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Resolves when the lease was lost (expired, taken over, Redis gone too long).
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Stops renewing and deletes the lease if it is still ours, then wakes
    /// the followers so one takes over at once.
    pub async fn release(self) {
        self.renewer.abort();
        match self
            .store
            .release_lease(LeaseName::Poller, &self.token)
            .await
        {
            Ok(true) => {
                tracing::info!("poller lease released");
                let _ = self
                    .store
                    .publish_event(crate::wakeups::POLLER_RELEASED)
                    .await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not release the poller lease; it will expire")
            }
        }
    }
}

/// Waits until this replica holds the poller lease, or `shutdown` fires.
pub async fn acquire_poller(
    store: &Store,
    replica: &str,
    ttl: Duration,
    shutdown: &CancellationToken,
    released: &tokio::sync::Notify,
) -> Option<HeldLease> {
    let mut logged_error = false;
    loop {
        if shutdown.is_cancelled() {
            return None;
        }
        match store.acquire_poller_lease(replica, ttl).await {
            Ok(Some(token)) => {
                tracing::info!(epoch = %token.rsplit(' ').next().unwrap_or(""), "became the poller");
                let lost = CancellationToken::new();
                let renewer = tokio::spawn(renew(store.clone(), token.clone(), ttl, lost.clone()));
                return Some(HeldLease {
                    store: store.clone(),
                    token,
                    lost,
                    renewer,
                });
            }
            Ok(None) => logged_error = false,
            Err(e) => {
                if !logged_error {
                    tracing::warn!(error = %e, "cannot reach Redis for the poller lease");
                    logged_error = true;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = released.notified() => {}
            _ = tokio::time::sleep(FOLLOWER_RETRY) => {}
        }
    }
}

async fn renew(store: Store, token: String, ttl: Duration, lost: CancellationToken) {
    let every = ttl / 3;
    let mut last_ok = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match store.renew_lease(LeaseName::Poller, &token, ttl).await {
            Ok(true) => last_ok = Instant::now(),
            Ok(false) => {
                tracing::warn!("poller lease lost to another replica");
                lost.cancel();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the poller lease");
                if last_ok.elapsed() >= ttl {
                    lost.cancel();
                    return;
                }
            }
        }
    }
}
