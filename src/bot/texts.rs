//! Every user-visible text, from the locale files in `locales/` (one YAML file
//! per language, compiled in by `rust-i18n`). Adding a language is adding a
//! file and a variant of [`Lang`]; a key missing from a file falls back to
//! English. Keyboards built from these texts are in [`super::keyboards`].

use std::time::Duration;

use teloxide::types::User;

use crate::domain::Ban;
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

/// `ms` since the epoch as `YYYY-MM-DD HH:MM` (UTC).
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// What a banned user is told.
pub fn ban_text(lang: Lang, ban: Ban) -> String {
    match ban {
        Ban::Until(ms) => text_with("banned_until", lang, &[("until", &utc(ms))]),
        Ban::Forever => text("banned_forever", lang),
        Ban::Suspended => text("suspended", lang),
    }
}

/// A ban's end as admins are told it ("until ... (UTC)", "forever").
pub fn ban_end(lang: Lang, ban: Ban) -> String {
    match ban {
        Ban::Until(ms) => text_with("admin_ban_until", lang, &[("until", &utc(ms))]),
        Ban::Forever => text("admin_ban_forever", lang),
        Ban::Suspended => text("admin_ban_suspended", lang),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00");
        assert_eq!(
            super::utc(1_709_251_200_000 + 3_660_000),
            "2024-03-01 01:01"
        );
    }

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
