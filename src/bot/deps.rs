//! What every handler gets, and what it returns.

use std::sync::Arc;

use crate::chat::ChatService;
use crate::metrics::Metrics;
use crate::telegram::Outbound;

/// What handlers use: the chat service, the outbound Bot API and metrics.
pub struct Deps {
    pub chat: ChatService,
    pub out: Outbound,
    pub metrics: Arc<Metrics>,
}

/// Error type of every handler: logged by the worker with the update id.
pub type HandlerError = anyhow::Error;
pub type HandlerResult = Result<(), HandlerError>;
