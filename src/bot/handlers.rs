//! Thin handlers: typed input in, one service call, replies out.

use std::sync::Arc;

use teloxide::types::{
    CallbackQuery, ChatMemberUpdated, Message, MessageReactionUpdated, ReactionType,
};

use super::commands::{help, Button, Callback, Command};
use super::content::{has_link, kind_of, veiled};
use super::deps::{Deps, HandlerError, HandlerResult};
use super::keyboards::{
    language_picker, rules_buttons, settings_buttons, show_held_button, Keyboard,
};
use super::reply::{deliver, overloaded, partner_gone, say, send, Delivery, Reply, Sent};
use super::texts::{text, text_with, user_lang, welcome, Lang};
use super::timed::flush_album;
use crate::config::LinkPolicy;
use crate::domain::{
    AlbumAdd, CopyPair, LeaveOutcome, MediaMode, Press, Route, SearchOutcome, Traffic,
};
use crate::telegram::{SendError, Slot};

pub async fn command(deps: Arc<Deps>, msg: Message, cmd: Command) -> HandlerResult {
    let user = msg.chat.id.0;
    let tg = user_lang(msg.from.as_ref());
    deps.metrics.command(&format!("{cmd:?}").to_lowercase());
    if matches!(cmd, Command::Search | Command::Next | Command::Stop) {
        // An album sent before goes first, to the chat it was sent in.
        flush_album(&deps, user).await?;
    }
    if matches!(cmd, Command::Search | Command::Next) && !press_allowed(&deps, &msg, tg).await? {
        return Ok(());
    }
    match cmd {
        Command::Search => search(&deps, user, tg).await,
        Command::Next => next(&deps, user, tg).await,
        Command::Stop => stop(&deps, user, tg).await,
        Command::Start | Command::Help | Command::Rules => {
            let view = deps.chat.user_view(user, tg).await?;
            let body = match cmd {
                Command::Start => welcome(view.lang),
                Command::Help => help(view.lang),
                _ => text("rules", view.lang),
            };
            let reply = Reply::body(body, view.lang).keyboard(Keyboard::of(view.state));
            say(&deps, user, reply).await
        }
        Command::Privacy => {
            let lang = deps.chat.user_view(user, tg).await?.lang;
            let days = (crate::chat::USER_TTL_SECS / 86_400).to_string();
            let hours = (crate::chat::MAP_TTL_SECS / 3600).to_string();
            let reports = deps.chat.report_retention_days().to_string();
            let args = [
                ("days", &*days),
                ("hours", &hours),
                ("report_days", &reports),
            ];
            let body = text_with("privacy", lang, &args);
            say(&deps, user, Reply::body(body, lang)).await
        }
        Command::Deletedata => {
            let erased = deps.chat.erase(user, Some(tg)).await?;
            if let Some((partner, partner_lang)) = erased.partner {
                let left = Reply::key("partner_left", partner_lang).keyboard(Keyboard::Idle);
                say(&deps, partner, left).await?;
            }
            let done = Reply::key("deletedata_done", erased.lang).keyboard(Keyboard::Idle);
            say(&deps, user, done).await
        }
        Command::Del => delete_for_both(&deps, &msg, tg).await,
        Command::Language => {
            let lang = deps.chat.user_view(user, tg).await?.lang;
            let reply = Reply::key("language_prompt", lang).buttons(language_picker());
            say(&deps, user, reply).await
        }
        Command::Settings => {
            let lang = deps.chat.user_view(user, tg).await?.lang;
            let buttons = settings_buttons(lang, deps.chat.settings(user).await?);
            say(
                &deps,
                user,
                Reply::key("settings_title", lang).buttons(buttons),
            )
            .await
        }
    }
}

pub async fn button(deps: Arc<Deps>, msg: Message, button: Button) -> HandlerResult {
    let user = msg.chat.id.0;
    let tg = user_lang(msg.from.as_ref());
    deps.metrics
        .command(&format!("button_{button:?}").to_lowercase());
    flush_album(&deps, user).await?;
    if matches!(button, Button::Search | Button::Next) && !press_allowed(&deps, &msg, tg).await? {
        return Ok(());
    }
    match button {
        Button::Search => search(&deps, user, tg).await,
        Button::Next => next(&deps, user, tg).await,
        Button::Cancel | Button::Stop => stop(&deps, user, tg).await,
    }
}

/// Search and Next have their own small budget, judged by when the press
/// was made (the update's date): over it, the press does nothing and the
/// user is told once per notice window. Stop is never budgeted.
async fn press_allowed(deps: &Deps, msg: &Message, tg: Lang) -> Result<bool, HandlerError> {
    let user = msg.chat.id.0;
    let at_ms = u64::try_from(msg.date.timestamp_millis()).unwrap_or(0);
    match deps.chat.search_press(user, at_ms).await? {
        Press::Allowed => Ok(true),
        Press::Refused { notify } => {
            deps.metrics.inbound_dropped.inc();
            if notify {
                let lang = deps.chat.user_view(user, tg).await?.lang;
                say(deps, user, Reply::key("search_slow_down", lang)).await?;
            }
            Ok(false)
        }
    }
}

async fn search(deps: &Deps, user: i64, tg: Lang) -> HandlerResult {
    let (key, lang, kb) = match deps.chat.search(user, tg).await? {
        SearchOutcome::AlreadyChatting { lang } => ("already_chatting", lang, Keyboard::Chatting),
        SearchOutcome::AlreadySearching { lang } => {
            ("already_searching", lang, Keyboard::Searching)
        }
        SearchOutcome::Queued { lang } => ("searching", lang, Keyboard::Searching),
        SearchOutcome::RulesNotAccepted { lang } => return rules_prompt(deps, user, lang).await,
        SearchOutcome::Matched {
            lang,
            partner,
            partner_lang,
        } => {
            tracing::debug!(user, partner, "pair formed");
            // The partner first: if they are gone, the pair ends before
            // this user is told anything.
            let found = Reply::key("found", partner_lang).keyboard(Keyboard::Chatting);
            if send(deps, partner, found, Slot::ReserveNow(1)).await? == Sent::RecipientGone {
                return partner_gone(deps, user, lang).await;
            }
            ("found", lang, Keyboard::Chatting)
        }
    };
    say(deps, user, Reply::key(key, lang).keyboard(kb)).await
}

/// The rules and the 18+ confirmation, with accept and decline buttons.
async fn rules_prompt(deps: &Deps, user: i64, lang: Lang) -> HandlerResult {
    let body = format!("{}\n\n{}", text("rules", lang), text("rules_confirm", lang));
    let buttons = rules_buttons(lang, deps.chat.rules_version());
    say(deps, user, Reply::body(body, lang).buttons(buttons)).await
}

async fn stop(deps: &Deps, user: i64, tg: Lang) -> HandlerResult {
    match deps.chat.leave(user, Some(tg)).await? {
        LeaveOutcome::LeftChat {
            lang,
            partner,
            partner_lang,
        } => {
            left_chat(
                deps,
                (user, lang),
                (partner, partner_lang),
                Some(Keyboard::Idle),
            )
            .await
        }
        LeaveOutcome::LeftQueue { lang } => {
            say(
                deps,
                user,
                Reply::key("search_cancelled", lang).keyboard(Keyboard::Idle),
            )
            .await
        }
        LeaveOutcome::Idle { lang } | LeaveOutcome::StillSearching { lang } => {
            say(
                deps,
                user,
                Reply::key("nothing_to_stop", lang).keyboard(Keyboard::Idle),
            )
            .await
        }
    }
}

/// Tells both sides that `user` ended the chat.
async fn left_chat(
    deps: &Deps,
    (user, lang): (i64, Lang),
    (partner, partner_lang): (i64, Lang),
    user_keyboard: Option<Keyboard>,
) -> HandlerResult {
    let left = Reply::key("partner_left", partner_lang).keyboard(Keyboard::Idle);
    say(deps, partner, left).await?;
    let mut you_left = Reply::key("you_left", lang);
    if let Some(kb) = user_keyboard {
        you_left = you_left.keyboard(kb);
    }
    say(deps, user, you_left).await
}

async fn next(deps: &Deps, user: i64, tg: Lang) -> HandlerResult {
    match deps.chat.leave_chat(user, Some(tg)).await? {
        LeaveOutcome::LeftChat {
            lang,
            partner,
            partner_lang,
        } => {
            // No keyboard yet: the search right after draws the next one.
            left_chat(deps, (user, lang), (partner, partner_lang), None).await?;
            search(deps, user, tg).await
        }
        LeaveOutcome::StillSearching { lang } => {
            let reply = Reply::key("already_searching", lang).keyboard(Keyboard::Searching);
            say(deps, user, reply).await
        }
        LeaveOutcome::LeftQueue { .. } | LeaveOutcome::Idle { .. } => search(deps, user, tg).await,
    }
}

/// Routes a message of `user`'s; album parts the user sent before it are
/// delivered first (the routing script says when there are any), so they
/// keep their place in the chat.
async fn route_after_album(
    deps: &Deps,
    user: i64,
    lookup: Option<i32>,
    tg: Option<Lang>,
    traffic: Traffic,
) -> Result<Route, HandlerError> {
    let route = deps.chat.route(user, lookup, tg, traffic).await?;
    if route != Route::AlbumPending {
        return Ok(route);
    }
    flush_album(deps, user).await?;
    Ok(deps.chat.route(user, lookup, tg, traffic).await?)
}

/// Any other message: relay it to the partner, or hint how to start.
pub async fn relay(deps: Arc<Deps>, msg: Message) -> HandlerResult {
    let user = msg.chat.id.0;
    let tg = user_lang(msg.from.as_ref());
    if !deps.chat.relay_allowed(kind_of(&msg)) {
        // Contacts and stories reveal who someone is: never relayed by default.
        let lang = deps.chat.user_view(user, tg).await?.lang;
        return say(&deps, user, Reply::key("kind_not_allowed", lang)).await;
    }
    if let Some(group) = msg.media_group_id() {
        // Album parts are gathered in Redis and relayed together when the
        // album's window closes (see `timed`); a visual part for a partner
        // who veils media goes alone, veiled, below.
        let visual = veiled(&msg, MediaMode::Blur).is_some();
        match deps
            .chat
            .album_add(user, &group.0, msg.id.0, tg, visual)
            .await?
        {
            AlbumAdd::Added => return Ok(()),
            AlbumAdd::NotInChat { lang } => {
                let hint = Reply::key("not_in_chat", lang).keyboard(Keyboard::Idle);
                return say(&deps, user, hint).await;
            }
            AlbumAdd::Single => {}
        }
    }
    let reply_to = msg.reply_to_message().map(|r| r.id.0);
    match route_after_album(&deps, user, reply_to, Some(tg), Traffic::Message).await? {
        // Only if parts arrived between the flush and the second route.
        Route::AlbumPending => Ok(()),
        Route::Throttled { notify, lang } => {
            deps.metrics.inbound_dropped.inc();
            if notify {
                say(&deps, user, Reply::key("slow_down", lang)).await?;
            }
            Ok(())
        }
        Route::Overloaded { notify, lang } => overloaded(&deps, user, notify, lang).await,
        Route::NotInChat { lang, wait } => {
            let hint = Reply::key("not_in_chat", lang).keyboard(Keyboard::Idle);
            send(&deps, user, hint, Slot::Prepaid(wait)).await?;
            Ok(())
        }
        Route::Chat {
            partner,
            protect,
            mapped,
            wait,
            chat,
            nth,
            media,
        } => {
            if has_link(&msg) {
                match deps.chat.link_policy(nth) {
                    LinkPolicy::Allow => {}
                    LinkPolicy::Block => {
                        return say(&deps, user, Reply::key("link_not_allowed", tg)).await;
                    }
                    LinkPolicy::Hold => {
                        let held = Held {
                            from: user,
                            to: partner,
                            message: msg.id.0,
                            chat,
                            protect,
                        };
                        return hold_link(&deps, held, wait, tg).await;
                    }
                }
            }
            let ids = [msg.id.0];
            let d = Delivery {
                user,
                partner,
                ids: &ids,
                album: false,
                reply_to: mapped,
                protect,
                wait,
                chat,
                lang: Some(tg),
                veiled: veiled(&msg, media),
            };
            deliver(&deps, d).await
        }
    }
}

/// `/del` as a reply to one's own relayed message: delete the partner's
/// copy (a whole album when it was part of one) and confirm. Only a reply to
/// a message the user sent (Telegram says who sent it; the bot's copies of
/// the partner's messages are the bot's) in the current chat finds a copy.
async fn delete_for_both(deps: &Deps, msg: &Message, tg: Lang) -> HandlerResult {
    let user = msg.chat.id.0;
    let own = msg.reply_to_message().filter(|r| {
        r.from
            .as_ref()
            .is_some_and(|f| i64::try_from(f.id.0).ok() == Some(user))
    });
    let Some(original) = own else {
        let lang = deps.chat.user_view(user, tg).await?.lang;
        return say(deps, user, Reply::key("del_how", lang)).await;
    };
    let route =
        route_after_album(deps, user, Some(original.id.0), Some(tg), Traffic::Followup).await?;
    let Route::Chat {
        partner,
        mapped: Some(copy),
        wait,
        ..
    } = route
    else {
        let lang = deps.chat.user_view(user, tg).await?.lang;
        return say(deps, user, Reply::key("del_not_found", lang)).await;
    };
    let mut copies = deps.chat.album_copies(user, original.id.0).await?;
    if !copies.contains(&copy) {
        copies = vec![copy];
    }
    let key = match deps.out.delete(partner, &copies, Slot::Prepaid(wait)).await {
        // Already gone (deleted before, or a repeat of this update): done.
        Ok(()) | Err(SendError::NotFound(_) | SendError::Gone(_)) => "del_done",
        // Telegram refuses (the copy is too old to delete): say so.
        Err(SendError::Other(e)) if e.contains("can't be deleted") => "del_not_found",
        Err(e) => return Err(e.into()),
    };
    let lang = deps.chat.user_view(user, tg).await?.lang;
    say(deps, user, Reply::key(key, lang)).await
}

/// A message with a link, early in a chat, held for the receiver.
struct Held {
    from: i64,
    to: i64,
    message: i32,
    chat: crate::domain::ChatId,
    protect: bool,
}

/// Holds the message and asks the receiver "Show it?" in the slot the
/// routing reserved; tells the sender.
async fn hold_link(deps: &Deps, h: Held, wait: std::time::Duration, tg: Lang) -> HandlerResult {
    deps.chat
        .hold(h.to, h.from, h.message, h.chat, h.protect)
        .await?;
    let to_lang = deps.chat.user_view(h.to, Lang::En).await?.lang;
    let ask =
        Reply::key("link_held", to_lang).buttons(show_held_button(to_lang, h.from, h.message));
    if send(deps, h.to, ask, Slot::Prepaid(wait)).await? == Sent::RecipientGone {
        return partner_gone(deps, h.from, tg).await;
    }
    say(deps, h.from, Reply::key("link_held_sender", tg)).await
}

/// The receiver tapped Show: copy the held message once, if it is still
/// held for them and their chat with its sender goes on.
async fn show_held(deps: &Deps, user: i64, from: i64, message: i32) -> HandlerResult {
    let Some((chat, protect)) = deps.chat.take_held(user, from, message).await? else {
        return Ok(());
    };
    if !deps.chat.in_chat(user, chat).await? {
        return Ok(());
    }
    match deps
        .out
        .copy(user, from, message, None, protect, Slot::ReserveNow(1))
        .await
    {
        Ok(copy) => {
            let pair = CopyPair {
                from_chat: from,
                from_message: message,
                to_chat: user,
                to_message: copy.0,
            };
            Ok(deps.chat.remember(&[pair]).await?)
        }
        Err(SendError::NotFound(_) | SendError::CantCopy | SendError::Gone(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// An edited message: edit the partner's copy.
pub async fn edited(deps: Arc<Deps>, msg: Message) -> HandlerResult {
    let user = msg.chat.id.0;
    let tg = user_lang(msg.from.as_ref());
    let route = route_after_album(&deps, user, Some(msg.id.0), Some(tg), Traffic::Followup).await?;
    if let Route::Overloaded { notify, lang } = route {
        return overloaded(&deps, user, notify, lang).await;
    }
    let Route::Chat {
        partner,
        mapped: Some(copy),
        wait,
        ..
    } = route
    else {
        tracing::debug!(
            user,
            message = msg.id.0,
            ?route,
            "edit of a message with no copy in this chat"
        );
        return Ok(());
    };
    let slot = Slot::Prepaid(wait);
    let result = if let Some(at) = msg.location() {
        // A live location moves (or stops) by edits, never by caption edits.
        match at.live_period {
            Some(_) => {
                deps.out
                    .edit_live_location(partner, copy, at.latitude, at.longitude, slot)
                    .await
            }
            None => deps.out.stop_live_location(partner, copy, slot).await,
        }
    } else if let Some(body) = msg.text() {
        let entities = msg.entities().map(<[_]>::to_vec);
        deps.out
            .edit_text(partner, copy, body.to_string(), entities, slot)
            .await
    } else {
        let caption = msg.caption().map(str::to_string);
        let entities = msg.caption_entities().map(<[_]>::to_vec);
        deps.out
            .edit_caption(partner, copy, caption, entities, slot)
            .await
    };
    match result {
        Ok(()) | Err(SendError::NotModified | SendError::NotFound(_) | SendError::Gone(_)) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A reaction on a relayed message: mirror it on the partner's version.
pub async fn reaction(deps: Arc<Deps>, r: MessageReactionUpdated) -> HandlerResult {
    let user = r.chat.id.0;
    let route =
        route_after_album(&deps, user, Some(r.message_id.0), None, Traffic::Followup).await?;
    if let Route::Overloaded { notify, lang } = route {
        return overloaded(&deps, user, notify, lang).await;
    }
    let Route::Chat {
        partner,
        mapped: Some(target),
        wait,
        ..
    } = route
    else {
        return Ok(());
    };
    // Bots can set plain emoji reactions only.
    let emoji: Vec<ReactionType> = r
        .new_reaction
        .into_iter()
        .filter(|t| matches!(t, ReactionType::Emoji { .. }))
        .collect();
    match deps
        .out
        .react(partner, target, emoji, Slot::Prepaid(wait))
        .await
    {
        Ok(()) | Err(SendError::NotFound(_) | SendError::Gone(_)) => Ok(()),
        Err(SendError::Other(e)) if e.contains("REACTION_INVALID") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Inline buttons: language picker and settings.
pub async fn callback(deps: Arc<Deps>, q: CallbackQuery) -> HandlerResult {
    let user = q.from.id.0 as i64;
    let tg = user_lang(Some(&q.from));
    let answer = |text: Option<String>| deps.out.answer_callback(user, q.id.0.clone(), text);
    let saved = match q.data.as_deref().and_then(Callback::parse) {
        None => return Ok(answer(None).await?),
        Some(Callback::Language(lang)) => {
            deps.chat.set_language(user, lang).await?;
            answer(None).await?;
            let state = deps.chat.user_view(user, lang).await?.state;
            let reply = Reply::key("language_set", lang).keyboard(Keyboard::of(state));
            return say(&deps, user, reply).await;
        }
        Some(Callback::Set(setting, value)) => {
            deps.chat.set_setting(user, setting, value).await?;
            true
        }
        Some(Callback::Media(mode)) => {
            deps.chat.set_media(user, mode).await?;
            true
        }
        Some(Callback::AcceptRules(version)) => {
            // An old prompt's button stores nothing; the search shows the
            // current rules again then.
            deps.chat.accept_rules(user, version).await?;
            answer(None).await?;
            return search(&deps, user, tg).await;
        }
        Some(Callback::ShowHeld { from, message }) => {
            answer(None).await?;
            return show_held(&deps, user, from, message).await;
        }
        Some(Callback::DeclineRules) => {
            answer(None).await?;
            let lang = deps.chat.user_view(user, tg).await?.lang;
            let reply = Reply::key("rules_declined", lang).keyboard(Keyboard::Idle);
            return say(&deps, user, reply).await;
        }
        // An old button (no value in its data): show the current values.
        Some(Callback::ShowSettings) => false,
    };
    let lang = deps.chat.user_view(user, tg).await?.lang;
    let settings = deps.chat.settings(user).await?;
    answer(saved.then(|| text("setting_saved", lang))).await?;
    let Some(m) = q.regular_message() else {
        return Ok(());
    };
    match deps
        .out
        .edit_markup(user, m.id.0, settings_buttons(lang, settings))
        .await
    {
        Ok(()) | Err(SendError::NotModified | SendError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The user blocked (or unblocked) the bot.
pub async fn membership(deps: Arc<Deps>, u: ChatMemberUpdated) -> HandlerResult {
    if u.new_chat_member.is_present() {
        return Ok(());
    }
    let user = u.chat.id.0;
    tracing::debug!(user, "user blocked the bot");
    if let LeaveOutcome::LeftChat {
        partner,
        partner_lang,
        ..
    } = deps.chat.leave(user, None).await?
    {
        let gone = Reply::key("partner_gone", partner_lang).keyboard(Keyboard::Idle);
        say(&deps, partner, gone).await?;
    }
    Ok(())
}
