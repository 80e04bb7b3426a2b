//! Wake-ups between replicas over Redis pub/sub, so a graceful hand-over
//! takes milliseconds instead of a polling interval. (Operating-system
//! signals, SIGTERM and SIGINT, are handled in [`crate::cli`].)
//!
//! When a replica releases the poller lease or hands partitions back, it
//! publishes on the deployment's events channel; every replica listens and
//! wakes its lease follower or its partition loop at once. This is only a
//! shortcut: without it (a lost message, Redis briefly away) the periodic
//! retries still converge, just slower.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Event published when the poller lease was released.
pub const POLLER_RELEASED: &str = "poller";
/// Event published when partitions were handed back.
pub const PARTITIONS_RELEASED: &str = "partitions";

/// What a replica can be woken for.
#[derive(Debug, Default)]
pub struct Wakeups {
    pub poller: Notify,
    pub partitions: Notify,
}

/// Listens on the events channel until `stop`, reconnecting as needed.
pub async fn listen(store: Store, wakeups: Arc<Wakeups>, stop: CancellationToken) {
    loop {
        let pubsub = tokio::select! {
            _ = stop.cancelled() => return,
            r = store.subscribe_events() => r,
        };
        match pubsub {
            Ok(pubsub) => {
                let mut messages = pubsub.into_on_message();
                loop {
                    let msg = tokio::select! {
                        _ = stop.cancelled() => return,
                        m = messages.next() => m,
                    };
                    let Some(msg) = msg else { break };
                    match msg.get_payload::<String>().as_deref() {
                        Ok(POLLER_RELEASED) => wakeups.poller.notify_one(),
                        Ok(PARTITIONS_RELEASED) => wakeups.partitions.notify_one(),
                        _ => {}
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot subscribe to replica events"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
