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

    /// A locale file as key → text (`_version` and other `_` keys left out).
    fn locale_file(path: &std::path::Path) -> std::collections::BTreeMap<String, String> {
        let yaml = std::fs::read_to_string(path).unwrap();
        let map: std::collections::BTreeMap<String, serde_json::Value> =
            serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        map.into_iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => panic!("{path:?}: {k} is not a text: {other}"),
            })
            .collect()
    }

    /// The `%{name}` placeholders of a text, sorted.
    fn placeholders(t: &str) -> Vec<&str> {
        let mut names: Vec<&str> = t
            .split("%{")
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(placeholders("a %{b} c %{a}."), ["a", "b"]);
        assert!(placeholders("100% {x}").is_empty());
    }

    /// Every file in `locales/` is a language of [`Lang`] and back, and has
    /// exactly English's keys, each with English's placeholders, compiled in.
    #[test]
    fn every_locale_file_has_exactly_the_english_keys_and_placeholders() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut want: Vec<String> = Lang::ALL
            .iter()
            .map(|l| format!("{}.yml", l.code()))
            .collect();
        want.sort();
        assert_eq!(files, want, "locale files and Lang::ALL differ");

        let en = locale_file(&dir.join("en.yml"));
        assert!(en.len() > 20, "{en:?}");
        for &lang in Lang::ALL {
            let file = locale_file(&dir.join(format!("{}.yml", lang.code())));
            let missing: Vec<&String> = en.keys().filter(|k| !file.contains_key(*k)).collect();
            let extra: Vec<&String> = file.keys().filter(|k| !en.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{lang:?} lacks {missing:?}");
            assert!(
                extra.is_empty(),
                "{lang:?} has keys English has not: {extra:?}"
            );
            for (key, english) in &en {
                let t = &file[key];
                assert!(!t.trim().is_empty(), "{lang:?}: {key} is empty");
                assert_eq!(
                    placeholders(t),
                    placeholders(english),
                    "{lang:?}: placeholders of {key} differ from English"
                );
                assert_eq!(&text(key, lang), t, "{lang:?}: {key} is not compiled in");
            }
            if lang != Lang::En {
                assert_ne!(welcome(lang), welcome(Lang::En), "{lang:?}");
            }
        }
        assert_eq!(
            search_timeout(Lang::En, Duration::from_secs(600)),
            "Nobody was found in 10 min. Tap Search to try again."
        );
    }
}
