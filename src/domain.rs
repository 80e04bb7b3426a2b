//! The domain: plain types with no I/O and no Telegram or Redis types.
//!
//! Everything the chat service answers and the bot renders is named here:
//! languages, a user's state, what Search, Stop and routing did, fired timers,
//! a user's settings and the send budgets. The store decodes script replies
//! into these types; handlers match on them. Nothing here talks to anything.

use std::time::Duration;

use crate::config::Settings;

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
    Uk,
    De,
    Es,
    Pt,
    Tr,
}

impl Lang {
    /// Every language, in the order of the /language picker. Each has its
    /// file `locales/<code>.yml`.
    pub const ALL: &'static [Lang] = &[
        Lang::En,
        Lang::Ru,
        Lang::Uk,
        Lang::De,
        Lang::Es,
        Lang::Pt,
        Lang::Tr,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
            Lang::Uk => "uk",
            Lang::De => "de",
            Lang::Es => "es",
            Lang::Pt => "pt",
            Lang::Tr => "tr",
        }
    }

    /// Name of the language in itself, for the language picker.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Ru => "Русский",
            Lang::Uk => "Українська",
            Lang::De => "Deutsch",
            Lang::Es => "Español",
            Lang::Pt => "Português",
            Lang::Tr => "Türkçe",
        }
    }

    /// From an IETF tag such as Telegram's `language_code` ("pt-br" is
    /// Portuguese); Belarusian and Kazakh get Russian, others English.
    pub fn from_code(code: &str) -> Lang {
        let primary = code
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "ru" | "be" | "kk" => Lang::Ru,
            "uk" => Lang::Uk,
            "de" => Lang::De,
            "es" => Lang::Es,
            "pt" => Lang::Pt,
            "tr" => Lang::Tr,
            _ => Lang::En,
        }
    }

    /// From an optional `language_code`; English when there is none.
    pub fn from_optional(code: Option<&str>) -> Lang {
        code.map(Lang::from_code).unwrap_or(Lang::En)
    }
}

/// A user's state, for drawing the right keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Idle,
    Searching,
    Chatting,
}

/// A user's state and the language replies to them use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserView {
    pub state: UserState,
    pub lang: Lang,
}

/// A user's boolean settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserSettings {
    /// Only match users of the same language.
    pub same_language: bool,
    /// The partner's copies are protected (no forwarding or saving).
    pub protect: bool,
    /// How photos, videos and animations from strangers arrive.
    pub media: MediaMode,
}

/// How a user receives photos, videos and animations from strangers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MediaMode {
    /// Copied as sent.
    #[default]
    Show,
    /// Sent again with a spoiler: blurred until tapped.
    Blur,
    /// Replaced by a short text (and the caption).
    TextOnly,
}

impl MediaMode {
    pub const ALL: [MediaMode; 3] = [MediaMode::Show, MediaMode::Blur, MediaMode::TextOnly];

    /// Its value in the user's hash and in button data.
    pub fn code(self) -> &'static str {
        match self {
            MediaMode::Show => "show",
            MediaMode::Blur => "blur",
            MediaMode::TextOnly => "text",
        }
    }

    /// The mode named `code`; anything else is `None`.
    pub fn parse(code: &str) -> Option<MediaMode> {
        MediaMode::ALL.into_iter().find(|m| m.code() == code)
    }

    /// The next one, as a settings button offers it.
    pub fn next(self) -> MediaMode {
        match self {
            MediaMode::Show => MediaMode::Blur,
            MediaMode::Blur => MediaMode::TextOnly,
            MediaMode::TextOnly => MediaMode::Show,
        }
    }
}

/// Visual media that a receiver's [`MediaMode`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visual {
    Photo,
    Video,
    Animation,
}

/// One per-user boolean setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    SameLanguage,
    Protect,
}

/// What Search did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchOutcome {
    AlreadyChatting {
        lang: Lang,
    },
    AlreadySearching {
        lang: Lang,
    },
    Queued {
        lang: Lang,
    },
    /// The user has not accepted the current rules: nothing changed, show
    /// them the rules.
    RulesNotAccepted {
        lang: Lang,
    },
    Matched {
        lang: Lang,
        partner: i64,
        partner_lang: Lang,
    },
    /// The user is banned: search refused.
    Banned {
        lang: Lang,
        ban: Ban,
    },
}

/// What Block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockOutcome {
    /// The chat ended on both sides; the partner is blocked.
    LeftChat {
        lang: Lang,
        partner: i64,
        partner_lang: Lang,
    },
    /// Not chatting: the last partner (within the report window) is blocked.
    BlockedLast { lang: Lang },
    /// Nobody to block.
    Nobody { lang: Lang },
}

/// Why a user reports their partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Spam,
    Harassment,
    Sexual,
    Minor,
    Illegal,
    Other,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::Spam,
        Reason::Harassment,
        Reason::Sexual,
        Reason::Minor,
        Reason::Illegal,
        Reason::Other,
    ];

    /// Short code in callback data, Redis and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Spam => "spam",
            Reason::Harassment => "harassment",
            Reason::Sexual => "sexual",
            Reason::Minor => "minor",
            Reason::Illegal => "illegal",
            Reason::Other => "other",
        }
    }

    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// A report that was filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    pub lang: Lang,
    pub id: u64,
    pub reason: Reason,
    pub partner: i64,
    pub partner_lang: Lang,
    /// The report was made during the chat, which it ended.
    pub ended_chat: bool,
    /// Anonymous ids admins see (never Telegram ids).
    pub reporter_anon: String,
    pub reported_anon: String,
    /// Reports against and bans of the reported user before this one.
    pub prior_reports: u64,
    pub prior_bans: u64,
    /// Enough distinct reporters: the reported user is suspended now.
    pub suspended: bool,
    /// The chat the suspension ended (the reported user's new partner).
    pub other: Option<(i64, Lang)>,
    /// Ids, in the reporter's chat, of the reported user's last messages
    /// as the reporter received them, oldest first.
    pub evidence: Vec<i32>,
}

/// What a report (or asking to report) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Which chat a report would be about (show the reasons for it).
    Pick {
        lang: Lang,
        chat: ChatId,
    },
    /// No chat now and none ended within the report window (or a button
    /// naming another chat).
    Expired {
        lang: Lang,
    },
    /// This chat was reported by this user already: nothing changed.
    Duplicate {
        lang: Lang,
    },
    /// Too many reports from this user this hour.
    Limited {
        lang: Lang,
    },
    Filed(Box<Filed>),
}

/// An admin's decision on a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Ban for this long; None = forever.
    Ban(Option<Duration>),
    Dismiss,
    FalseReport,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideOutcome {
    /// No such report (forged, or past its retention).
    Unknown,
    /// Decided before (`state` is what was decided); nothing changed.
    AlreadyDecided { state: String },
    Applied {
        /// The reported user and their reply language.
        user: i64,
        user_lang: Lang,
        /// The ban's end (ms since the epoch; 0 = forever) when banned.
        banned_until: Option<i64>,
        /// The chat the ban ended.
        partner: Option<(i64, Lang)>,
    },
}

/// An admin's command about the user behind an anonymous id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    /// Ban for this long; None = forever.
    Ban(Option<Duration>),
    Unban,
}

/// What an admin's /ban or /unban did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOutcome {
    /// No user has that anonymous id (mistyped, or past the retention).
    Unknown,
    /// Nothing changed: the ban in force (ms, 0 = forever, negative =
    /// suspended) already ends as late, or (None) there is no ban to lift.
    Unchanged {
        ban: Option<i64>,
    },
    Banned {
        user: i64,
        user_lang: Lang,
        /// The ban's end (ms since the epoch; 0 = forever).
        until: i64,
        /// The chat the ban ended.
        partner: Option<(i64, Lang)>,
    },
    Unbanned {
        user: i64,
    },
}

/// A user's ban: until a time (ms since the epoch), forever, or suspended
/// until an admin decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ban {
    Until(i64),
    Forever,
    Suspended,
}

impl Ban {
    /// From the stored value: ms, 0 = forever, negative = suspended.
    pub fn from_ms(ms: i64) -> Ban {
        match ms {
            0 => Ban::Forever,
            m if m < 0 => Ban::Suspended,
            m => Ban::Until(m),
        }
    }
}

/// What Stop (or leaving for any reason) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveOutcome {
    LeftChat {
        lang: Lang,
        partner: i64,
        partner_lang: Lang,
    },
    LeftQueue {
        lang: Lang,
    },
    Idle {
        lang: Lang,
    },
    /// Only when leaving a chat alone was asked for: the user is searching
    /// and stays so.
    StillSearching {
        lang: Lang,
    },
}

/// What /deletedata did: everything about the user is gone; `partner` (id,
/// language) was in a chat with them, which has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub lang: Lang,
    pub partner: Option<(i64, Lang)>,
}

/// Where a user's message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The sender has album parts waiting: deliver them first (they were
    /// sent before this), then route again. Nothing was changed.
    AlbumPending,
    /// The sender is over the inbound budget: drop it; `notify` once per window.
    Throttled { notify: bool, lang: Lang },
    /// Not chatting; a hint may be sent after `wait` (its slot is reserved
    /// only for traffic that gets a hint, see [`Traffic::hints`]).
    NotInChat { lang: Lang, wait: Duration },
    /// The send would wait past MAX_SEND_WAIT: nothing was reserved; drop
    /// it and, if `notify`, tell the sender (once per notice window).
    Overloaded { notify: bool, lang: Lang },
    Chat {
        partner: i64,
        /// The sender asked for protected copies.
        protect: bool,
        /// The partner's version of the message id that was looked up.
        mapped: Option<i32>,
        /// Wait this long before sending: the send slots are reserved.
        wait: Duration,
        /// The chat it is sent in (checked again after a wait).
        chat: ChatId,
        /// This is the chat's n-th new message (0: not counted, as for
        /// edits, reactions and albums).
        nth: u64,
        /// How the partner receives visual media.
        media: MediaMode,
    },
}

/// What a routed message is, for the budgets it draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// A new message from the user: throttled inbound, one send reserved.
    Message,
    /// An edit or reaction: one send reserved, not throttled.
    Followup,
    /// A gathered album of `sends` parts: that many sends reserved, not throttled
    /// (each part was counted when it arrived).
    Album { sends: u32 },
}

impl Traffic {
    /// Sends reserved for the recipient.
    pub fn sends(self) -> u32 {
        match self {
            Traffic::Message | Traffic::Followup => 1,
            Traffic::Album { sends } => sends,
        }
    }

    /// Whether the sender's inbound throttle applies.
    pub fn throttled(self) -> bool {
        matches!(self, Traffic::Message)
    }

    /// Whether anything is sent only when the looked-up message maps to the
    /// partner's copy (an edit or reaction of a message never relayed sends
    /// nothing, so it reserves nothing).
    pub fn needs_mapping(self) -> bool {
        matches!(self, Traffic::Followup)
    }

    /// Whether a user who is not chatting gets a hint (whose slot is
    /// reserved with the routing); edits, reactions and albums get none.
    pub fn hints(self) -> bool {
        matches!(self, Traffic::Message)
    }
}

/// What the Search/Next budget says about one press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    /// Within the budget: go ahead.
    Allowed,
    /// Over it: do nothing; `notify` once per notice window.
    Refused { notify: bool },
}

/// The id of one chat (one pairing of two users), from a counter at match
/// time; 0 for a chat from before chat ids existed (then nothing is checked).
pub type ChatId = u64;

/// Something a fired timer asks a user's worker to do, handled in order with
/// that user's own updates (it travels in their partition stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Their search found nobody in time (they are idle now).
    SearchTimedOut { lang: Lang },
    /// Their chat ended without messages (both sides get one).
    ChatIdle { lang: Lang },
    /// The queue sweep paired them in chat `chat` (both sides get one).
    Found { lang: Lang, chat: ChatId },
    /// Their album window closed: deliver what was gathered, if anything.
    AlbumDue,
}

/// What adding an album part did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlbumAdd {
    /// Gathered; relayed with the album.
    Added,
    /// The user is not chatting.
    NotInChat { lang: Lang },
    /// Not gathered: a visual part for a partner who wants visual media
    /// blurred or as text (a copied album can't be), so relay it alone.
    Single,
}

/// One gathered album part: message `message` of media group `group`, sent
/// while the sender was in chat `chat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbumPart {
    pub chat: ChatId,
    pub message: i32,
    pub group: String,
}

/// One message and its relayed copy: `(from_chat, from_message)` was copied
/// to `(to_chat, to_message)`. Remembered both ways for replies and edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyPair {
    pub from_chat: i64,
    pub from_message: i32,
    pub to_chat: i64,
    pub to_message: i32,
}

/// The shared send budgets and the inbound throttle, as the scripts use them.
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    pub chat_interval_ms: f64,
    pub chat_burst: u32,
    pub global_interval_ms: f64,
    pub global_burst: u32,
    pub inbound_interval_ms: f64,
    pub inbound_burst: u32,
    pub notice_window_secs: u64,
    /// 429s from this many chats within a second freeze the global budget.
    pub freeze_all_after: u32,
    /// Longest wait for a relay's send slot (MAX_SEND_WAIT); beyond it the
    /// relay is dropped and nothing is reserved.
    pub max_send_wait_ms: u64,
    /// Search/Next presses of one user: interval and burst (NEXT_RATE_PER_MIN).
    pub search_interval_ms: f64,
    pub search_burst: u32,
}

/// What a message is, for the relay policy (`RELAY_KINDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Photo,
    Video,
    Animation,
    Audio,
    Document,
    Voice,
    VideoNote,
    Sticker,
    Location,
    Venue,
    Poll,
    Dice,
    /// A contact card: carries a phone number and often a user id.
    Contact,
    /// A shared story: names its poster.
    Story,
    Other,
}

impl MessageKind {
    pub const ALL: &'static [MessageKind] = &[
        MessageKind::Text,
        MessageKind::Photo,
        MessageKind::Video,
        MessageKind::Animation,
        MessageKind::Audio,
        MessageKind::Document,
        MessageKind::Voice,
        MessageKind::VideoNote,
        MessageKind::Sticker,
        MessageKind::Location,
        MessageKind::Venue,
        MessageKind::Poll,
        MessageKind::Dice,
        MessageKind::Contact,
        MessageKind::Story,
        MessageKind::Other,
    ];

    /// Its name in `RELAY_KINDS` (`config::RELAY_KIND_NAMES`).
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Photo => "photo",
            MessageKind::Video => "video",
            MessageKind::Animation => "animation",
            MessageKind::Audio => "audio",
            MessageKind::Document => "document",
            MessageKind::Voice => "voice",
            MessageKind::VideoNote => "video_note",
            MessageKind::Sticker => "sticker",
            MessageKind::Location => "location",
            MessageKind::Venue => "venue",
            MessageKind::Poll => "poll",
            MessageKind::Dice => "dice",
            MessageKind::Contact => "contact",
            MessageKind::Story => "story",
            MessageKind::Other => "other",
        }
    }
}

/// Which message kinds are relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayPolicy {
    allowed: Vec<MessageKind>,
}

impl RelayPolicy {
    pub fn from_settings(s: &Settings) -> RelayPolicy {
        RelayPolicy {
            allowed: MessageKind::ALL
                .iter()
                .copied()
                .filter(|k| s.relay_kinds.iter().any(|n| n == k.name()))
                .collect(),
        }
    }

    pub fn allows(&self, kind: MessageKind) -> bool {
        self.allowed.contains(&kind)
    }
}

impl Budgets {
    pub fn from_settings(s: &Settings) -> Budgets {
        Budgets {
            chat_interval_ms: 1000.0 / s.tg_chat_rate,
            chat_burst: s.tg_chat_burst,
            global_interval_ms: 1000.0 / s.tg_global_rate,
            // A twentieth of a second's worth: smooth, so Telegram sees no spikes.
            global_burst: ((s.tg_global_rate / 20.0).floor() as u32).max(1),
            inbound_interval_ms: 1000.0 / s.inbound_rate,
            inbound_burst: s.inbound_burst,
            notice_window_secs: s.inbound_notice_secs,
            freeze_all_after: 3,
            max_send_wait_ms: s.max_send_wait.as_millis() as u64,
            search_interval_ms: 60_000.0 / f64::from(s.next_rate_per_min),
            search_burst: s.next_rate_per_min,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_relay_kind_has_a_configurable_name() {
        let names: Vec<&str> = MessageKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, crate::config::RELAY_KIND_NAMES);
    }

    #[test]
    fn language_codes_map_to_locales() {
        assert_eq!(Lang::from_code("ru"), Lang::Ru);
        assert_eq!(Lang::from_code("ru-RU"), Lang::Ru);
        assert_eq!(Lang::from_code("en-US"), Lang::En);
        assert_eq!(Lang::from_code("xx"), Lang::En);
        assert_eq!(Lang::from_code("be"), Lang::Ru);
        assert_eq!(Lang::from_code("uk"), Lang::Uk);
        assert_eq!(Lang::from_code("pt-br"), Lang::Pt);
        assert_eq!(Lang::from_code("pt_PT"), Lang::Pt);
        assert_eq!(Lang::from_code("es-419"), Lang::Es);
        assert_eq!(Lang::from_code("de-AT"), Lang::De);
        assert_eq!(Lang::from_code("TR"), Lang::Tr);
        for &l in Lang::ALL {
            assert_eq!(Lang::from_code(l.code()), l, "{l:?}");
        }
        assert_eq!(Lang::from_optional(None), Lang::En);
    }

    #[test]
    fn traffic_budgets() {
        assert_eq!(Traffic::Message.sends(), 1);
        assert!(Traffic::Message.throttled());
        assert!(!Traffic::Followup.throttled());
        assert_eq!(Traffic::Album { sends: 4 }.sends(), 4);
        assert!(!Traffic::Album { sends: 4 }.throttled());
    }
}
