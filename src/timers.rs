//! The timer loop: every replica sweeps the Redis timers a few times a
//! second. Firing a due timer is one script (`scripts/timers_due.lua`): the
//! state change (search ended, chat ended) and one event per user to tell,
//! appended to that user's partition stream, happen together, so each timer
//! fires on exactly one replica and its notices are handled at least once,
//! in order with the user's own updates, by the worker owning their chat
//! ([`crate::bot::timed::on_event`]). The loop itself never talks to
//! Telegram, so a slow send can't hold up other timers.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;

/// How often timers are checked (album windows and timeouts resolve to this).
pub const SWEEP: Duration = Duration::from_millis(200);

pub async fn run(ctx: Arc<Runtime>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SWEEP) => {}
        }
        match ctx.deps.chat.sweep().await {
            Ok(0) => {}
            Ok(events) => tracing::debug!(events, "timers fired"),
            Err(e) => tracing::debug!(error = %e, "timer sweep failed"),
        }
    }
}
