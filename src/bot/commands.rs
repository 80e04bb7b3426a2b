//! What a user can ask for: slash commands, and the same actions as
//! reply-keyboard buttons (a button press arrives as its label's text, in
//! whichever language the keyboard was drawn).

use teloxide::types::BotCommand;
use teloxide::utils::command::BotCommands;

use super::texts::{text, text_with, Lang};
use crate::domain::{ChatId, Decision, MediaMode, Reason, Setting};
use crate::moderation::{BAN_DAY, BAN_WEEK};

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
    Privacy,
    Deletedata,
    /// As a reply to one's own relayed message: delete the stranger's copy.
    Del,
    Block,
    Report,
}

impl Command {
    /// (command, locale key of its description), in menu order.
    pub const MENU: &'static [(&'static str, &'static str)] = &[
        ("search", "cmd_search"),
        ("next", "cmd_next"),
        ("stop", "cmd_stop"),
        ("del", "cmd_del"),
        ("report", "cmd_report"),
        ("block", "cmd_block"),
        ("settings", "cmd_settings"),
        ("language", "cmd_language"),
        ("rules", "cmd_rules"),
        ("privacy", "cmd_privacy"),
        ("deletedata", "cmd_deletedata"),
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

/// An admin command: `/ban <anonymous id> <1d|7d|forever> [reason]` or
/// `/unban <anonymous id> [reason]`. Not in [`Command`]: the tree tries it
/// only for ADMIN_IDS, so for anyone else it is any unknown text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    Ban {
        anon: String,
        /// None = forever.
        length: Option<std::time::Duration>,
        reason: String,
    },
    Unban {
        anon: String,
        reason: String,
    },
    /// /ban or /unban with arguments that don't parse.
    Usage,
}

impl AdminCommand {
    /// `text` as an admin command (`/ban`, or `/ban@{bot}` naming this bot).
    pub fn parse(text: &str, bot: &str) -> Option<AdminCommand> {
        let mut words = text.split_whitespace();
        let head = words.next()?.strip_prefix('/')?;
        let name = match head.split_once('@') {
            Some((name, to)) if to.eq_ignore_ascii_case(bot) => name,
            Some(_) => return None,
            None => head,
        };
        let is_ban = match name {
            "ban" => true,
            "unban" => false,
            _ => return None,
        };
        let anon = match words.next() {
            Some(a) if !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric()) => a,
            _ => return Some(AdminCommand::Usage),
        };
        let anon = anon.to_string();
        if !is_ban {
            let reason = words.collect::<Vec<_>>().join(" ");
            return Some(AdminCommand::Unban { anon, reason });
        }
        let length = match words.next() {
            Some("1d") => Some(BAN_DAY),
            Some("7d") => Some(BAN_WEEK),
            Some("forever") => None,
            _ => return Some(AdminCommand::Usage),
        };
        let reason = words.collect::<Vec<_>>().join(" ");
        Some(AdminCommand::Ban {
            anon,
            length,
            reason,
        })
    }
}

/// A reply-keyboard button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Search,
    Cancel,
    Next,
    Stop,
    Report,
}

impl Button {
    const ALL: [(Button, &'static str); 5] = [
        (Button::Search, "btn_search"),
        (Button::Cancel, "btn_cancel"),
        (Button::Next, "btn_next"),
        (Button::Stop, "btn_stop"),
        (Button::Report, "btn_report"),
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
///
/// A settings button carries the value it sets (`set:protect:1`), never
/// "flip": a press handled twice (a double tap, or an update delivered again
/// after a crash before its acknowledgement) leaves the value on the button.
/// Buttons drawn before values were in the data (`set:protect`) parse as
/// [`Callback::ShowSettings`]: they re-render the current values and change
/// nothing, so an old message can never flip a setting either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    Language(Lang),
    Set(Setting, bool),
    /// How strangers' visual media arrive (`set:media:blur`).
    Media(MediaMode),
    ShowSettings,
    /// "I am 18 or older and accept" under the rules of this version (the
    /// handler checks it is the current one: the data can be forged or old).
    AcceptRules(u32),
    DeclineRules,
    /// Show the held message `message` of user `from` (checked against what
    /// is held for the presser: forged data finds nothing).
    ShowHeld {
        from: i64,
        message: i32,
    },
    /// Show the report reasons for chat `ChatId` (the button after a chat).
    ReportPick(ChatId),
    /// Report the partner of that chat for this reason. The chat id only
    /// selects among the presser's own chats: the store never takes a
    /// partner from it.
    /// A reason for a report of chat `chat`; with a message id (in the
    /// reporter's chat) when /report replied to one of the partner's messages.
    Report(Reason, ChatId, Option<i32>),
    /// An admin's decision on report `u64`.
    Moderate(Decision, u64),
}

/// Decisions on the moderation buttons, with their codes in callback data.
pub const DECISIONS: [(Decision, &str); 5] = [
    (Decision::Ban(Some(BAN_DAY)), "b1"),
    (Decision::Ban(Some(BAN_WEEK)), "b7"),
    (Decision::Ban(None), "bf"),
    (Decision::Dismiss, "dm"),
    (Decision::FalseReport, "fr"),
];

fn setting_name(s: Setting) -> &'static str {
    match s {
        Setting::SameLanguage => "same_language",
        Setting::Protect => "protect",
    }
}

impl Callback {
    pub fn data(self) -> String {
        match self {
            Callback::Language(l) => format!("lang:{}", l.code()),
            Callback::Set(s, v) => format!("set:{}:{}", setting_name(s), u8::from(v)),
            Callback::Media(m) => format!("set:media:{}", m.code()),
            Callback::ShowSettings => "set:show".into(),
            Callback::AcceptRules(v) => format!("rules:accept:{v}"),
            Callback::DeclineRules => "rules:decline".into(),
            Callback::ShowHeld { from, message } => format!("show:{from}:{message}"),
            Callback::ReportPick(chat) => format!("rp:{chat}"),
            Callback::Report(r, chat, None) => format!("rr:{}:{chat}", r.code()),
            Callback::Report(r, chat, Some(m)) => format!("rr:{}:{chat}:{m}", r.code()),
            Callback::Moderate(d, id) => {
                let code = DECISIONS
                    .iter()
                    .find(|(x, _)| *x == d)
                    .map(|(_, c)| *c)
                    .unwrap_or("dm");
                format!("md:{code}:{id}")
            }
        }
    }

    pub fn parse(data: &str) -> Option<Callback> {
        match data.split_once(':')? {
            ("rules", "decline") => Some(Callback::DeclineRules),
            ("show", rest) => {
                let (from, message) = rest.split_once(':')?;
                Some(Callback::ShowHeld {
                    from: from.parse().ok()?,
                    message: message.parse().ok().filter(|m: &i32| *m > 0)?,
                })
            }
            ("rules", rest) => rest
                .strip_prefix("accept:")
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok())
                .map(Callback::AcceptRules),
            ("lang", code) => Lang::ALL
                .iter()
                .find(|l| l.code() == code)
                .map(|&l| Callback::Language(l)),
            ("set", rest) if rest.starts_with("media:") => rest
                .strip_prefix("media:")
                .and_then(MediaMode::parse)
                .map(Callback::Media),
            ("set", rest) => {
                let (name, value) = match rest.split_once(':') {
                    Some((name, value)) => (name, Some(value)),
                    None => (rest, None),
                };
                let setting = [Setting::SameLanguage, Setting::Protect]
                    .into_iter()
                    .find(|s| setting_name(*s) == name);
                match (setting, value) {
                    (Some(s), Some("1")) => Some(Callback::Set(s, true)),
                    (Some(s), Some("0")) => Some(Callback::Set(s, false)),
                    (Some(_), None) => Some(Callback::ShowSettings),
                    (None, None) if name == "show" => Some(Callback::ShowSettings),
                    _ => None,
                }
            }
            ("rp", chat) => chat.parse().ok().map(Callback::ReportPick),
            ("rr", rest) => {
                let (reason, rest) = rest.split_once(':')?;
                let (chat, message) = match rest.split_once(':') {
                    Some((chat, m)) => (chat, Some(m.parse().ok().filter(|m: &i32| *m > 0)?)),
                    None => (rest, None),
                };
                Some(Callback::Report(
                    Reason::from_code(reason)?,
                    chat.parse().ok()?,
                    message,
                ))
            }
            ("md", rest) => {
                let (code, id) = rest.split_once(':')?;
                let d = DECISIONS.iter().find(|(_, c)| *c == code)?.0;
                Some(Callback::Moderate(d, id.parse().ok()?))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn admin_commands_parse() {
        use super::AdminCommand as A;
        use crate::moderation::{BAN_DAY, BAN_WEEK};
        let ban = |anon: &str, length, reason: &str| A::Ban {
            anon: anon.into(),
            length,
            reason: reason.into(),
        };
        assert_eq!(
            A::parse("/ban u1a 1d", "bot"),
            Some(ban("u1a", Some(BAN_DAY), ""))
        );
        assert_eq!(
            A::parse("/ban@Bot u1a 7d spam ads", "bot"),
            Some(ban("u1a", Some(BAN_WEEK), "spam ads"))
        );
        assert_eq!(
            A::parse("/ban u1a forever", "bot"),
            Some(ban("u1a", None, ""))
        );
        assert_eq!(A::parse("/ban u1a 3d", "bot"), Some(A::Usage));
        assert_eq!(A::parse("/ban", "bot"), Some(A::Usage));
        assert_eq!(A::parse("/ban u*1 1d", "bot"), Some(A::Usage));
        assert_eq!(
            A::parse("/unban u1a", "bot"),
            Some(A::Unban {
                anon: "u1a".into(),
                reason: String::new()
            })
        );
        assert_eq!(A::parse("/ban@other u1a 1d", "bot"), None);
        assert_eq!(A::parse("/banned u1a 1d", "bot"), None);
        assert_eq!(A::parse("ban u1a 1d", "bot"), None);
    }

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
            Callback::Set(Setting::Protect, true),
            Callback::Set(Setting::Protect, false),
            Callback::Set(Setting::SameLanguage, true),
            Callback::Set(Setting::SameLanguage, false),
            Callback::ShowSettings,
            Callback::Media(MediaMode::Show),
            Callback::Media(MediaMode::Blur),
            Callback::Media(MediaMode::TextOnly),
            Callback::AcceptRules(1),
            Callback::AcceptRules(7),
            Callback::DeclineRules,
            Callback::ShowHeld {
                from: 42,
                message: 7,
            },
            Callback::ReportPick(7),
            Callback::Report(Reason::Minor, 42, None),
            Callback::Report(Reason::Other, u64::MAX, Some(i32::MAX)),
            Callback::Moderate(Decision::Ban(Some(BAN_WEEK)), 3),
            Callback::Moderate(Decision::Ban(None), 3),
            Callback::Moderate(Decision::FalseReport, 9),
        ] {
            assert_eq!(Callback::parse(&c.data()), Some(c));
            assert!(
                c.data().len() <= 64,
                "callback data over Telegram's 64 bytes"
            );
        }
        assert_eq!(Callback::parse("rules:accept:"), None);
        assert_eq!(Callback::parse("rules:accept:+1"), None);
        assert_eq!(Callback::parse("rules:accept:99999999999"), None);
        assert_eq!(Callback::parse("rules:junk"), None);
        assert_eq!(Callback::parse("show:1:-2"), None);
        assert_eq!(Callback::parse("show:x:2"), None);
        assert_eq!(
            Callback::parse("set:protect:1"),
            Some(Callback::Set(Setting::Protect, true))
        );
        // Data of buttons sent before the value was in it: show, never flip.
        assert_eq!(Callback::parse("set:protect"), Some(Callback::ShowSettings));
        assert_eq!(
            Callback::parse("set:same_language"),
            Some(Callback::ShowSettings)
        );
        assert_eq!(Callback::parse("set:protect:2"), None);
        assert_eq!(Callback::parse("set:media:loud"), None);
        assert_eq!(Callback::parse("set:media:"), None);
        assert_eq!(Callback::parse("set:junk:1"), None);
        assert_eq!(Callback::parse("lang:xx"), None);
        assert_eq!(Callback::parse("junk"), None);
        assert_eq!(Callback::parse("rr:spam:x"), None);
        assert_eq!(Callback::parse("rr:nope:1"), None);
        assert_eq!(Callback::parse("md:zz:1"), None);
        assert_eq!(Callback::parse("md:b1:-1"), None);
    }
}
