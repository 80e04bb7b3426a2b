//! Every user-visible text, from the locale files in `locales/` (one YAML file
//! per language, loaded at compile time by `rust-i18n`). Adding a language is
//! adding a file and a variant here; a missing key falls back to English.

use teloxide::types::{BotCommand, User};

use super::commands::Command;

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

    /// From an IETF tag such as Telegram's `language_code`; English otherwise.
    pub fn from_code(code: &str) -> Lang {
        let primary = code
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "ru" | "uk" | "be" => Lang::Ru,
            _ => Lang::En,
        }
    }

    pub fn of_user(user: Option<&User>) -> Lang {
        user.and_then(|u| u.language_code.as_deref())
            .map(Lang::from_code)
            .unwrap_or(Lang::En)
    }
}

fn t(key: &str, lang: Lang) -> String {
    rust_i18n::t!(key, locale = lang.code()).into_owned()
}

pub fn welcome(lang: Lang) -> String {
    t("welcome", lang)
}

pub fn help(lang: Lang) -> String {
    let commands = menu(lang)
        .iter()
        .map(|c| format!("/{} — {}", c.command, c.description))
        .collect::<Vec<_>>()
        .join("\n");
    rust_i18n::t!("help", locale = lang.code(), commands = commands).into_owned()
}

/// The command menu (`setMyCommands`) in one language.
pub fn menu(lang: Lang) -> Vec<BotCommand> {
    Command::MENU
        .iter()
        .map(|(cmd, key)| BotCommand::new(*cmd, t(key, lang)))
        .collect()
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
        for &lang in Lang::ALL {
            assert!(!welcome(lang).contains("welcome"), "{lang:?}");
            let help = help(lang);
            assert!(help.contains("/start") && help.contains("/help"), "{help}");
            for c in menu(lang) {
                assert!(!c.description.starts_with("cmd_"), "{lang:?} {c:?}");
            }
        }
        assert_ne!(welcome(Lang::En), welcome(Lang::Ru));
    }
}
