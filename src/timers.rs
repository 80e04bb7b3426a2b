//! The timer loop: every replica sweeps the Redis timers a few times a
//! second. Popping a due timer is atomic (`scripts/timers_due.lua`), so each
//! search timeout, idle timeout and album flush fires on exactly one replica,
//! whichever gets there first, and survives any replica restarting. What a
//! fired timer does for users is the bot's ([`crate::bot::timed`]).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bot::timed;
use crate::runtime::Runtime;

/// How often timers are checked (album windows and timeouts resolve to this).
pub const SWEEP: Duration = Duration::from_millis(200);

pub async fn run(ctx: Arc<Runtime>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SWEEP) => {}
        }
        let due = match ctx.deps.chat.pop_due().await {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(error = %e, "timer sweep failed");
                continue;
            }
        };
        for d in due {
            if let Err(e) = timed::fire(&ctx.deps, &d).await {
                tracing::warn!(error = %format!("{e:#}"), "timer action failed");
            }
        }
    }
}
