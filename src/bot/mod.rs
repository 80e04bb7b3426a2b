//! The teloxide handler tree and its thin handlers.
//!
//! A handler parses the update into a typed command, calls a service
//! ([`crate::chat::ChatService`]), and renders the outcome with texts from the
//! locale files through [`crate::telegram::Outbound`]; it holds no business
//! rules and makes no Redis calls of its own. The tree is built by [`schema`];
//! the worker calls [`handle`] per update (teloxide's `Dispatcher` and its
//! listeners are not used: the worker acknowledges after handling).

pub mod commands;
pub mod handlers;
pub mod texts;

use std::sync::Arc;

use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;

use crate::app::Context;
use commands::{Button, Command};

/// Error type of every handler: logged by the worker with the update id.
pub type HandlerError = anyhow::Error;
pub type HandlerResult = Result<(), HandlerError>;

/// The handler tree. Only private chats are served.
pub fn schema() -> UpdateHandler<HandlerError> {
    let messages = Update::filter_message()
        .filter(|msg: Message| msg.chat.is_private())
        .branch(teloxide::filter_command::<Command, _>().endpoint(handlers::command))
        .branch(
            dptree::filter_map(|msg: Message| msg.text().and_then(Button::parse))
                .endpoint(handlers::button),
        )
        .branch(dptree::endpoint(handlers::relay));
    dptree::entry()
        .branch(messages)
        .branch(
            Update::filter_edited_message()
                .filter(|msg: Message| msg.chat.is_private())
                .endpoint(handlers::edited),
        )
        .branch(Update::filter_message_reaction_updated().endpoint(handlers::reaction))
        .branch(Update::filter_callback_query().endpoint(handlers::callback))
        .branch(Update::filter_my_chat_member().endpoint(handlers::membership))
}

/// Handles one update; Ok also when no branch wanted it.
pub async fn handle(ctx: Arc<Context>, update: Update) -> HandlerResult {
    let deps = dptree::deps![ctx.me.clone(), ctx.clone(), update];
    match ctx.handler.dispatch(deps).await {
        std::ops::ControlFlow::Break(result) => result,
        std::ops::ControlFlow::Continue(_) => Ok(()),
    }
}
