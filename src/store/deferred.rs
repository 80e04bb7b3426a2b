//! Writes that ride along with an update's acknowledgement.
//!
//! A worker handles each update inside [`scope`]; a write made with
//! [`crate::store::Store::defer_or_run`] during the handler is collected and
//! sent in the same pipeline as the update's `XACK` (one round trip for both,
//! and never acknowledged without them). Outside a scope (timers) it runs at once.

use std::cell::RefCell;
use std::future::Future;

tokio::task_local! {
    static DEFERRED: RefCell<Vec<redis::Cmd>>;
}

/// Runs `fut` collecting the commands deferred inside it; returns its output
/// and the commands, in the order they were deferred.
pub async fn scope<F: Future>(fut: F) -> (F::Output, Vec<redis::Cmd>) {
    DEFERRED
        .scope(RefCell::new(Vec::new()), async {
            let out = fut.await;
            (out, DEFERRED.with(|d| d.take()))
        })
        .await
}

/// Defers `cmd` when inside a scope; gives it back when not.
pub(super) fn try_defer(cmd: redis::Cmd) -> Option<redis::Cmd> {
    let mut cmd = Some(cmd);
    let _ = DEFERRED.try_with(|d| {
        if let Some(c) = cmd.take() {
            d.borrow_mut().push(c);
        }
    });
    cmd
}
