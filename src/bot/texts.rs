//! Every user-visible text, from the locale files in `locales/` (one YAML file
//! per language, compiled in by `rust-i18n`). Adding a language is adding a
//! file and a variant of [`Lang`]; a key missing from a file falls back to
//! English. Keyboards built from these texts are in [`super::keyboards`].

use std::time::Duration;

use teloxide::types::User;

pub use crate::domain::Lang;

/// The language a Telegram user's client reports (English when none).
pub fn user_lang(user: Option<&User>) -> Lang {
    Lang::from_optional(user.and_then(|u| u.language_code.as_deref()))
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

/// Minutes for the timeout texts, rounded up.
pub fn minutes(d: Duration) -> String {
    d.as_secs().div_ceil(60).max(1).to_string()
}

/// "Nobody was found in N min."
pub fn search_timeout(lang: Lang, timeout: Duration) -> String {
    text_with("search_timeout", lang, &[("minutes", &minutes(timeout))])
}

/// "The chat ended after N min without messages."
pub fn idle_timeout(lang: Lang, timeout: Duration) -> String {
    text_with("idle_timeout", lang, &[("minutes", &minutes(timeout))])
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
        let ru = include_str!("../../locales/ru.yml");
        for key in &keys {
            assert!(ru.contains(&format!("\n{key}:")), "ru.yml lacks {key}");
        }
        assert_ne!(welcome(Lang::En), welcome(Lang::Ru));
        assert_eq!(
            search_timeout(Lang::En, Duration::from_secs(600)),
            "Nobody was found in 10 min. Tap Search to try again."
        );
    }
}
