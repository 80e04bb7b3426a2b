//! What a user can ask for: slash commands, and the same actions as
//! reply-keyboard buttons (a button press arrives as its label's text, in
//! whichever language the keyboard was drawn).

use teloxide::types::BotCommand;
use teloxide::utils::command::BotCommands;

use super::texts::{text, text_with, Lang};

/// Slash commands. Menu and `/help` texts come from the locale files.
#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    Start,
    Search,
    Next,
    Stop,
    Help,
    Rules,
    Language,
    Settings,
}

impl Command {
    /// (command, locale key of its description), in menu order.
    pub const MENU: &'static [(&'static str, &'static str)] = &[
        ("search", "cmd_search"),
        ("next", "cmd_next"),
        ("stop", "cmd_stop"),
        ("settings", "cmd_settings"),
        ("language", "cmd_language"),
        ("rules", "cmd_rules"),
        ("help", "cmd_help"),
        ("start", "cmd_start"),
    ];
}

/// The command menu (`setMyCommands`) in one language.
pub fn menu(lang: Lang) -> Vec<BotCommand> {
    Command::MENU
        .iter()
        .map(|(cmd, key)| BotCommand::new(*cmd, text(key, lang)))
        .collect()
}

/// The `/help` text: the menu with its descriptions.
pub fn help(lang: Lang) -> String {
    let commands = menu(lang)
        .iter()
        .map(|c| format!("/{} — {}", c.command, c.description))
        .collect::<Vec<_>>()
        .join("\n");
    text_with("help", lang, &[("commands", &commands)])
}

/// A reply-keyboard button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Search,
    Cancel,
    Next,
    Stop,
}

impl Button {
    const ALL: [(Button, &'static str); 4] = [
        (Button::Search, "btn_search"),
        (Button::Cancel, "btn_cancel"),
        (Button::Next, "btn_next"),
        (Button::Stop, "btn_stop"),
    ];

    pub fn key(self) -> &'static str {
        Button::ALL
            .iter()
            .find(|(b, _)| *b == self)
            .map(|(_, k)| *k)
            .unwrap_or("btn_search")
    }

    /// The button whose label (in any language) is exactly `text`.
    pub fn parse(input: &str) -> Option<Button> {
        let input = input.trim();
        Button::ALL.iter().find_map(|(b, key)| {
            Lang::ALL
                .iter()
                .any(|&l| text(key, l) == input)
                .then_some(*b)
        })
    }
}

/// An inline-button press (`callback_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    Language(Lang),
    ToggleSameLanguage,
    ToggleProtect,
}

impl Callback {
    pub fn data(self) -> String {
        match self {
            Callback::Language(l) => format!("lang:{}", l.code()),
            Callback::ToggleSameLanguage => "set:same_language".into(),
            Callback::ToggleProtect => "set:protect".into(),
        }
    }

    pub fn parse(data: &str) -> Option<Callback> {
        match data.split_once(':')? {
            ("lang", code) => Lang::ALL
                .iter()
                .find(|l| l.code() == code)
                .map(|&l| Callback::Language(l)),
            ("set", "same_language") => Some(Callback::ToggleSameLanguage),
            ("set", "protect") => Some(Callback::ToggleProtect),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_are_recognised_in_every_language() {
        for &l in Lang::ALL {
            for (b, key) in Button::ALL {
                assert_eq!(Button::parse(&text(key, l)), Some(b));
            }
        }
        assert_eq!(Button::parse("hello"), None);
    }

    #[test]
    fn help_lists_the_commands() {
        for &lang in Lang::ALL {
            let help = help(lang);
            assert!(
                help.contains("/start") && help.contains("/search"),
                "{help}"
            );
        }
    }

    #[test]
    fn callbacks_round_trip() {
        for c in [
            Callback::Language(Lang::Ru),
            Callback::Language(Lang::En),
            Callback::ToggleProtect,
            Callback::ToggleSameLanguage,
        ] {
            assert_eq!(Callback::parse(&c.data()), Some(c));
        }
        assert_eq!(Callback::parse("lang:xx"), None);
        assert_eq!(Callback::parse("junk"), None);
    }
}
