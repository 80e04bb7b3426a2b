//! Every user-visible text, from the locale files in `locales/` (one YAML file
//! per language, compiled in by `rust-i18n`), and the keyboards built from
//! them. Adding a language is adding a file and a variant of [`Lang`]; a key
//! missing from a file falls back to English.

use teloxide::types::{
    BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, KeyboardMarkup,
    ReplyMarkup, User,
};

use super::commands::{Button, Callback, Command};

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    pub const ALL: &'static [Lang] = &[Lang::En, Lang::Ru];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// Name of the language in itself, for the language picker.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Ru => "Русский",
        }
    }

    /// From an IETF tag such as Telegram's `language_code`; English otherwise.
    pub fn from_code(code: &str) -> Lang {
        let primary = code
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "ru" | "uk" | "be" | "kk" => Lang::Ru,
            _ => Lang::En,
        }
    }

    pub fn of_user(user: Option<&User>) -> Lang {
        user.and_then(|u| u.language_code.as_deref())
            .map(Lang::from_code)
            .unwrap_or(Lang::En)
    }
}

/// The text for `key` in `lang`.
pub fn text(key: &str, lang: Lang) -> String {
    rust_i18n::t!(key, locale = lang.code()).into_owned()
}

/// The text for `key` with `%{name}` placeholders filled in.
pub fn text_with(key: &str, lang: Lang, args: &[(&str, &str)]) -> String {
    let mut s = text(key, lang);
    for (name, value) in args {
        s = s.replace(&format!("%{{{name}}}"), value);
    }
    s
}

pub fn welcome(lang: Lang) -> String {
    text("welcome", lang)
}

pub fn help(lang: Lang) -> String {
    let commands = menu(lang)
        .iter()
        .map(|c| format!("/{} — {}", c.command, c.description))
        .collect::<Vec<_>>()
        .join("\n");
    text_with("help", lang, &[("commands", &commands)])
}

/// The command menu (`setMyCommands`) in one language.
pub fn menu(lang: Lang) -> Vec<BotCommand> {
    Command::MENU
        .iter()
        .map(|(cmd, key)| BotCommand::new(*cmd, text(key, lang)))
        .collect()
}

/// Which reply keyboard a user sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyboard {
    Idle,
    Searching,
    Chatting,
}

/// The reply keyboard for a user's state.
pub fn keyboard(kind: Keyboard, lang: Lang) -> ReplyMarkup {
    let label = |b: Button| KeyboardButton::new(text(b.key(), lang));
    let rows = match kind {
        Keyboard::Idle => vec![vec![label(Button::Search)]],
        Keyboard::Searching => vec![vec![label(Button::Cancel)]],
        Keyboard::Chatting => vec![vec![label(Button::Next), label(Button::Stop)]],
    };
    ReplyMarkup::Keyboard(KeyboardMarkup::new(rows).resize_keyboard())
}

/// The language picker.
pub fn language_picker() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![Lang::ALL
        .iter()
        .map(|&l| InlineKeyboardButton::callback(l.native_name(), Callback::Language(l).data()))
        .collect::<Vec<_>>()])
}

/// The settings buttons, showing the current values.
pub fn settings_buttons(lang: Lang, same_language: bool, protect: bool) -> InlineKeyboardMarkup {
    let sl = if same_language {
        "setting_same_language_on"
    } else {
        "setting_same_language_off"
    };
    let pr = if protect {
        "setting_protect_on"
    } else {
        "setting_protect_off"
    };
    InlineKeyboardMarkup::new(vec![
        vec![InlineKeyboardButton::callback(
            text(sl, lang),
            Callback::ToggleSameLanguage.data(),
        )],
        vec![InlineKeyboardButton::callback(
            text(pr, lang),
            Callback::ToggleProtect.data(),
        )],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_map_to_locales() {
        assert_eq!(Lang::from_code("ru"), Lang::Ru);
        assert_eq!(Lang::from_code("ru-RU"), Lang::Ru);
        assert_eq!(Lang::from_code("en-US"), Lang::En);
        assert_eq!(Lang::from_code("xx"), Lang::En);
    }

    #[test]
    fn every_language_has_every_text() {
        let en = include_str!("../../locales/en.yml");
        let keys: Vec<&str> = en
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('_'))
            .filter_map(|l| l.split_once(':').map(|(k, _)| k))
            .collect();
        assert!(keys.len() > 20, "{keys:?}");
        for &lang in Lang::ALL {
            for key in &keys {
                let t = text(key, lang);
                assert!(
                    !t.is_empty() && t != *key && !t.contains(&format!("{}.", lang.code())),
                    "{lang:?} lacks {key}"
                );
            }
            let help = help(lang);
            assert!(
                help.contains("/start") && help.contains("/search"),
                "{help}"
            );
        }
        let ru = include_str!("../../locales/ru.yml");
        for key in &keys {
            assert!(ru.contains(&format!("\n{key}:")), "ru.yml lacks {key}");
        }
        assert_ne!(welcome(Lang::En), welcome(Lang::Ru));
        assert_eq!(
            text_with("search_timeout", Lang::En, &[("minutes", "10")]),
            "Nobody was found in 10 min. Tap Search to try again."
        );
    }
}
