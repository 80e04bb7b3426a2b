//! The bot: the teloxide handler tree and its thin handlers.
//!
//! A handler parses the update into a typed command, calls a service
//! ([`ChatService`], [`crate::moderation::ModerationService`]), and renders
//! the typed outcome with texts from the locale files through [`Outbound`];
//! it holds no business rules and makes no Redis
//! calls of its own. Handlers get exactly the [`Deps`] they use, injected by
//! dptree the way teloxide's examples do.
//!
//! - [`content`]: what kind of message a user sent (for `RELAY_KINDS`).
//! - [`commands`]: slash commands, reply-keyboard buttons, inline-button data, the menu.
//! - [`texts`]: every user-visible text; [`keyboards`]: the keyboards.
//! - [`reply`]: the one way to send a text to a user and to deliver a copy
//!   to a partner, with one policy for a recipient who is gone.
//! - [`handlers`]: one handler per kind of update; [`timed`]: what fired
//!   timers tell users and relay (search and idle timeouts, albums).
//!
//! The tree is built by [`schema`]; the worker calls [`handle`] per update
//! (teloxide's `Dispatcher` and its listeners are not used: the worker
//! acknowledges after handling).

pub mod commands;
mod content;
mod deps;
pub mod handlers;
pub mod keyboards;
pub mod reply;
pub mod texts;
pub mod timed;

use std::sync::Arc;

use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::Me;

use commands::{AdminCommand, Button, Command};
pub use deps::{is_transient, Deps, HandlerError, HandlerResult};

/// The handler tree. Only private chats are served.
pub fn schema() -> UpdateHandler<HandlerError> {
    let messages = Update::filter_message()
        .filter(|msg: Message| msg.chat.is_private())
        .branch(dptree::filter_map(admin_command).endpoint(handlers::admin))
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

/// An admin command, only from ADMIN_IDS: for anyone else `/ban` and
/// `/unban` fall through to the branches below like any unknown text.
fn admin_command(msg: Message, deps: Arc<Deps>, me: Me) -> Option<AdminCommand> {
    if !deps.moderation.is_admin(msg.from.as_ref()?.id.0 as i64) {
        return None;
    }
    AdminCommand::parse(msg.text()?, me.username())
}

/// Handles one update with `tree` (built by [`schema`]); Ok also when no
/// branch wanted it. `me` is the bot's identity (commands may name it).
pub async fn handle(
    tree: &UpdateHandler<HandlerError>,
    deps: Arc<Deps>,
    me: Me,
    update: Update,
) -> HandlerResult {
    match tree.dispatch(dptree::deps![me, deps, update]).await {
        std::ops::ControlFlow::Break(result) => result,
        std::ops::ControlFlow::Continue(_) => Ok(()),
    }
}
