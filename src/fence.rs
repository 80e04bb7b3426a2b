//! Partition fences: a handler may talk to Telegram only while this replica
//! still owns the handler's partition.
//!
//! Ownership is a Redis lease that this replica renews; if renewals stop
//! (Redis unreachable, the process frozen by SIGSTOP or a long pause), the
//! lease expires and another replica takes the partition over. A [`Fence`]
//! is the local view of that lease: valid until a little before the lease
//! could have expired in Redis, counted from when the last successful renewal
//! was *sent*. The partition loop extends it; the outbound Bot API client
//! checks the fence of the task it runs in ([`scope`]) before every call, so
//! a replica that lost a partition sends nothing more for it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn ticks(at: Instant) -> u64 {
    at.saturating_duration_since(base()).as_micros() as u64
}

/// The local validity of one partition lease; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Fence {
    valid_until: Arc<AtomicU64>,
}

impl Fence {
    /// A fence valid until `until`.
    pub fn until(until: Instant) -> Fence {
        Fence {
            valid_until: Arc::new(AtomicU64::new(ticks(until))),
        }
    }

    /// Extends the fence to `until` (never shortens it).
    pub fn extend_to(&self, until: Instant) {
        self.valid_until.fetch_max(ticks(until), Ordering::Relaxed);
    }

    /// Ends the fence now (the partition was lost or handed over).
    pub fn revoke(&self) {
        self.valid_until.store(0, Ordering::Relaxed);
    }

    pub fn is_valid(&self) -> bool {
        ticks(Instant::now()) < self.valid_until.load(Ordering::Relaxed)
    }

    /// How long a fence may last after a renewal sent at `sent` for a lease
    /// of `lease`: nine tenths of it, leaving room for clock-rate differences.
    pub fn horizon(sent: Instant, lease: Duration) -> Instant {
        sent + lease.mul_f64(0.9)
    }
}

tokio::task_local! {
    static CURRENT: Fence;
}

/// Runs `fut` under `fence`: outbound calls inside it check the fence.
pub async fn scope<F: Future>(fence: Fence, fut: F) -> F::Output {
    CURRENT.scope(fence, fut).await
}

/// Whether the current task may still act for its partition (true outside
/// any fence: timers, start-up).
pub fn current_is_valid() -> bool {
    CURRENT.try_with(Fence::is_valid).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_lapses_and_can_be_extended_or_revoked() {
        let now = Instant::now();
        let f = Fence::until(now + Duration::from_secs(60));
        assert!(f.is_valid());
        f.extend_to(now); // never shortens
        assert!(f.is_valid());
        f.revoke();
        assert!(!f.is_valid());
        let old = Fence::until(now);
        assert!(!old.is_valid());
        old.extend_to(now + Duration::from_secs(60));
        assert!(old.is_valid());
        assert_eq!(
            Fence::horizon(now, Duration::from_secs(10)),
            now + Duration::from_secs(9)
        );
    }

    #[tokio::test]
    async fn the_current_fence_is_the_scope_s() {
        assert!(current_is_valid());
        let lapsed = Fence::until(Instant::now());
        assert!(!scope(lapsed, async { current_is_valid() }).await);
    }
}
