//! The keyboards a user sees: the reply keyboard of their state, the
//! language picker and the settings buttons. Labels come from the locale
//! files; button data from [`super::commands`].

use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, KeyboardMarkup, ReplyMarkup,
};

use super::commands::DECISIONS;
use super::commands::{Button, Callback};
use super::texts::{text, Lang};
use crate::domain::{ChatId, Decision, MediaMode, Reason, Setting, UserSettings, UserState};

/// Which reply keyboard a user sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyboard {
    Idle,
    Searching,
    Chatting,
    /// Idle right after a chat ended: Search, and Report for the chat that
    /// just ended (the report window; after it, Report explains why not).
    /// Every chat-ended message carries it, so a partner can't tell a
    /// report or a block from a Stop.
    Ended,
}

impl Keyboard {
    /// The keyboard of a user's state.
    pub fn of(state: UserState) -> Keyboard {
        match state {
            UserState::Idle => Keyboard::Idle,
            UserState::Searching => Keyboard::Searching,
            UserState::Chatting => Keyboard::Chatting,
        }
    }

    /// The reply keyboard, labelled in `lang`.
    pub fn markup(self, lang: Lang) -> ReplyMarkup {
        let label = |b: Button| KeyboardButton::new(text(b.key(), lang));
        let rows = match self {
            Keyboard::Idle => vec![vec![label(Button::Search)]],
            Keyboard::Ended => vec![vec![label(Button::Search)], vec![label(Button::Report)]],
            Keyboard::Searching => vec![vec![label(Button::Cancel)]],
            Keyboard::Chatting => vec![
                vec![label(Button::Next), label(Button::Stop)],
                vec![label(Button::Report)],
            ],
        };
        ReplyMarkup::Keyboard(KeyboardMarkup::new(rows).resize_keyboard())
    }
}

/// The language picker: rows of at most three.
pub fn language_picker() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(Lang::ALL.chunks(3).map(|row| {
        row.iter()
            .map(|&l| InlineKeyboardButton::callback(l.native_name(), Callback::Language(l).data()))
            .collect::<Vec<_>>()
    }))
}

/// The settings buttons, showing the current values. Each button carries
/// the value a press sets (the opposite of the current one), so a press
/// handled twice sets the same value twice.
pub fn settings_buttons(lang: Lang, s: UserSettings) -> InlineKeyboardMarkup {
    let sl = if s.same_language {
        "setting_same_language_on"
    } else {
        "setting_same_language_off"
    };
    let pr = if s.protect {
        "setting_protect_on"
    } else {
        "setting_protect_off"
    };
    InlineKeyboardMarkup::new(vec![
        vec![InlineKeyboardButton::callback(
            text(sl, lang),
            Callback::Set(Setting::SameLanguage, !s.same_language).data(),
        )],
        vec![InlineKeyboardButton::callback(
            text(pr, lang),
            Callback::Set(Setting::Protect, !s.protect).data(),
        )],
        vec![InlineKeyboardButton::callback(
            text(media_label(s.media), lang),
            Callback::Media(s.media.next()).data(),
        )],
    ])
}

/// The label of the media button: the current value (a press offers the next).
fn media_label(m: MediaMode) -> &'static str {
    match m {
        MediaMode::Show => "setting_media_show",
        MediaMode::Blur => "setting_media_blur",
        MediaMode::TextOnly => "setting_media_text",
    }
}

/// Under "The stranger sent a link. Show it?".
pub fn show_held_button(lang: Lang, from: i64, message: i32) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
        text("btn_show_link", lang),
        Callback::ShowHeld { from, message }.data(),
    )]])
}

/// Under the rules prompt: accept (carrying the version shown) or decline.
pub fn rules_buttons(lang: Lang, version: u32) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        vec![InlineKeyboardButton::callback(
            text("btn_rules_accept", lang),
            Callback::AcceptRules(version).data(),
        )],
        vec![InlineKeyboardButton::callback(
            text("btn_rules_decline", lang),
            Callback::DeclineRules.data(),
        )],
    ])
}

fn reason_key(r: Reason) -> &'static str {
    match r {
        Reason::Spam => "reason_spam",
        Reason::Harassment => "reason_harassment",
        Reason::Sexual => "reason_sexual",
        Reason::Minor => "reason_minor",
        Reason::Illegal => "reason_illegal",
        Reason::Other => "reason_other",
    }
}

/// The locale key naming a report reason.
pub fn reason_text(r: Reason, lang: Lang) -> String {
    text(reason_key(r), lang)
}

/// The report reasons for chat `chat`, one per row.
pub fn report_reasons(lang: Lang, chat: ChatId, message: Option<i32>) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(Reason::ALL.iter().map(|&r| {
        vec![InlineKeyboardButton::callback(
            reason_text(r, lang),
            Callback::Report(r, chat, message).data(),
        )]
    }))
}

/// The one "Report" button under a chat-ended message.
pub fn report_button(lang: Lang, chat: ChatId) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
        text("btn_report", lang),
        Callback::ReportPick(chat).data(),
    )]])
}

fn decision_key(d: Decision) -> &'static str {
    match d {
        Decision::Ban(Some(d)) if d.as_secs() <= 86_400 => "mod_ban_day",
        Decision::Ban(Some(_)) => "mod_ban_week",
        Decision::Ban(None) => "mod_ban_forever",
        Decision::Dismiss => "mod_dismiss",
        Decision::FalseReport => "mod_false",
    }
}

/// The label of a decision.
pub fn decision_text(d: Decision, lang: Lang) -> String {
    text(decision_key(d), lang)
}

/// The decision buttons under a report in the moderation queue.
pub fn moderation_buttons(lang: Lang, report: u64) -> InlineKeyboardMarkup {
    let button = |d: Decision| {
        InlineKeyboardButton::callback(decision_text(d, lang), Callback::Moderate(d, report).data())
    };
    let d: Vec<Decision> = DECISIONS.iter().map(|(d, _)| *d).collect();
    InlineKeyboardMarkup::new(vec![
        d[..3].iter().map(|&x| button(x)).collect::<Vec<_>>(),
        d[3..].iter().map(|&x| button(x)).collect::<Vec<_>>(),
    ])
}
