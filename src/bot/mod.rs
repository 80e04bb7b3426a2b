//! The teloxide handler tree and its thin handlers.
//!
//! A handler parses the update into a typed command, calls a service, and
//! renders a reply from the locale files; it holds no business rules and
//! makes no Redis calls of its own. The tree is built by [`schema`] so tests
//! and the worker use the same one; the worker calls [`handle`] per update
//! (teloxide's `Dispatcher` and its listeners are not used: see `worker`).

pub mod commands;
pub mod texts;

use std::sync::Arc;

use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;

use crate::app::Context;
use commands::Command;
use texts::Lang;

/// Error type of every handler: logged by the worker with the update id.
pub type HandlerError = anyhow::Error;
type HandlerResult = Result<(), HandlerError>;

/// The handler tree.
pub fn schema() -> UpdateHandler<HandlerError> {
    let commands = teloxide::filter_command::<Command, _>().endpoint(on_command);
    Update::filter_message().branch(commands)
}

/// Handles one update; Ok also when no branch wanted it.
pub async fn handle(ctx: Arc<Context>, update: Update) -> HandlerResult {
    let deps = dptree::deps![ctx.bot.clone(), ctx.me.clone(), ctx.clone(), update];
    match ctx.handler.dispatch(deps).await {
        std::ops::ControlFlow::Break(result) => result,
        std::ops::ControlFlow::Continue(_) => Ok(()),
    }
}

async fn on_command(bot: Bot, ctx: Arc<Context>, msg: Message, cmd: Command) -> HandlerResult {
    let lang = Lang::of_user(msg.from.as_ref());
    let text = match cmd {
        Command::Start => {
            ctx.metrics.command("start");
            texts::welcome(lang)
        }
        Command::Help => {
            ctx.metrics.command("help");
            texts::help(lang)
        }
    };
    let sent = bot.send_message(msg.chat.id, text).await;
    ctx.metrics
        .telegram_call("sendMessage", if sent.is_ok() { "ok" } else { "error" });
    sent?;
    Ok(())
}
