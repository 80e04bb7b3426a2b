//! The bot's commands. The doc comments are not user-facing: the menu and
//! `/help` texts come from the locale files (see [`super::texts`]).

use teloxide::utils::command::BotCommands;

#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    /// Welcome and the Search button.
    Start,
    /// List the commands.
    Help,
}

impl Command {
    /// (command, locale key of its description), in menu order.
    pub const MENU: &'static [(&'static str, &'static str)] =
        &[("start", "cmd_start"), ("help", "cmd_help")];
}
