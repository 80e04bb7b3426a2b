//! The timer loop: every replica sweeps the Redis timers a few times a
//! second. Popping a due timer is atomic (`scripts/timers_due.lua`), so each
//! search timeout, idle timeout and album flush fires on exactly one replica,
//! whichever gets there first, and survives any replica restarting.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::Context;
use crate::bot::handlers;
use crate::chat::Due;

/// How often timers are checked (album windows and timeouts resolve to this).
pub const SWEEP: Duration = Duration::from_millis(200);

pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SWEEP) => {}
        }
        let due = match ctx.chat.due().await {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(error = %e, "timer sweep failed");
                continue;
            }
        };
        for d in due {
            if let Err(e) = fire(&ctx, &d).await {
                tracing::warn!(error = %format!("{e:#}"), "timer action failed");
            }
        }
    }
}

async fn fire(ctx: &Context, due: &Due) -> anyhow::Result<()> {
    match due {
        Due::SearchTimedOut { user, lang } => {
            let body = handlers::search_timeout_text(ctx, *lang);
            handlers::notify_idle(ctx, *user, body, *lang).await
        }
        Due::ChatIdle {
            a,
            a_lang,
            b,
            b_lang,
        } => {
            handlers::notify_idle(ctx, *a, handlers::idle_timeout_text(ctx, *a_lang), *a_lang)
                .await?;
            handlers::notify_idle(ctx, *b, handlers::idle_timeout_text(ctx, *b_lang), *b_lang).await
        }
        Due::Album { user, group, ids } => handlers::relay_album(ctx, *user, group, ids).await,
    }
}
