//! What `/readyz` reports: Redis reachable and this replica doing its work.
//! Written by the Redis monitor and the partition loop, read by the HTTP endpoint.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Health {
    redis_up: AtomicBool,
    working: AtomicBool,
    stopping: AtomicBool,
}

impl Health {
    pub fn set_redis_up(&self, up: bool) {
        self.redis_up.store(up, Ordering::Relaxed);
    }
    pub fn set_working(&self, working: bool) {
        self.working.store(working, Ordering::Relaxed);
    }
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
    pub fn ready(&self) -> bool {
        self.redis_up.load(Ordering::Relaxed)
            && self.working.load(Ordering::Relaxed)
            && !self.stopping.load(Ordering::Relaxed)
    }
}
