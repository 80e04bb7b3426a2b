//! What every handler gets, and what it returns.

use std::sync::Arc;

use crate::chat::ChatService;
use crate::metrics::Metrics;
use crate::moderation::ModerationService;
use crate::store::StoreError;
use crate::telegram::{Outbound, SendError};

/// What handlers use: the chat and moderation services, the outbound Bot API and metrics.
pub struct Deps {
    pub chat: ChatService,
    pub moderation: ModerationService,
    pub out: Outbound,
    pub metrics: Arc<Metrics>,
}

/// Error type of every handler: logged by the worker with the update id.
pub type HandlerError = anyhow::Error;
pub type HandlerResult = Result<(), HandlerError>;

/// Whether a handler failed for a reason outside the update itself (Redis
/// or Telegram unavailable, the partition lease lapsed), so that handling it
/// again later can succeed: such updates are retried, never dropped.
pub fn is_transient(e: &HandlerError) -> bool {
    e.chain().any(|cause| {
        if let Some(s) = cause.downcast_ref::<SendError>() {
            return s.is_transient();
        }
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return s.is_transient();
        }
        if let Some(r) = cause.downcast_ref::<redis::RedisError>() {
            return crate::store::is_transient(r);
        }
        false
    })
}
