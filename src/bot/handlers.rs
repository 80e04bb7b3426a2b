//! Thin handlers: typed input in, one service call, replies out.

use std::sync::Arc;

use teloxide::types::{
    CallbackQuery, ChatMemberUpdated, Message, MessageReactionUpdated, ReactionType,
};

use super::commands::{help, AdminCommand, Button, Callback, Command};
use super::content::{has_link, kind_of, veiled};
use super::deps::{Deps, HandlerError, HandlerResult};
use super::keyboards::{
    decision_text, language_picker, moderation_buttons, reason_text, report_reasons, rules_buttons,
    settings_buttons, show_held_button, Keyboard,
};
use super::reply::{deliver, overloaded, partner_gone, say, send, Delivery, Reply, Sent};
use super::texts::{ban_end, ban_text, text, text_with, user_lang, welcome, Lang};
use super::timed::flush_album;
use crate::config::LinkPolicy;
use crate::domain::{
    AdminAction, AdminOutcome, AlbumAdd, Ban, BlockOutcome, ChatId, CopyPair, DecideOutcome,
    Decision, Filed, LeaveOutcome, MediaMode, Press, Reason, ReportOutcome, Route, SearchOutcome,
    Traffic,
};
use crate::telegram::{SendError, Slot};

pub async fn command(deps: Arc<Deps>, msg: Message, cmd: Command) -> HandlerResult {
    let user = msg.chat.id.0;
    let tg = user_lang(msg.from.as_ref());
    deps.metrics.command(&format!("{cmd:?}").to_lowercase());
    if matches!(
        cmd,
        Command::Search | Command::Next | Command::Stop | Command::Block | Command::Report
    ) {
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
        Command::Block => block(&deps, user, tg).await,
        Command::Report => report_start(&deps, user, tg, replied(&msg)).await,
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
        Button::Report => report_start(&deps, user, tg, replied(&msg)).await,
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
        SearchOutcome::Banned { lang, ban } => {
            let reply = Reply::body(ban_text(lang, ban), lang).keyboard(Keyboard::Idle);
            return say(deps, user, reply).await;
        }
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
                Some(Keyboard::Ended),
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
    let left = Reply::key("partner_left", partner_lang).keyboard(Keyboard::Ended);
    say(deps, partner, left).await?;
    let mut you_left = Reply::key("you_left", lang);
    if let Some(kb) = user_keyboard {
        you_left = you_left.keyboard(kb);
    }
    say(deps, user, you_left).await
}

/// /block: end the chat (the partner is told as for Stop) and never pair
/// the two again; after a chat, block the last partner.
async fn block(deps: &Deps, user: i64, tg: Lang) -> HandlerResult {
    match deps.moderation.block(user, tg).await? {
        BlockOutcome::LeftChat {
            lang,
            partner,
            partner_lang,
        } => {
            deps.metrics.blocks.inc();
            let left = Reply::key("partner_left", partner_lang).keyboard(Keyboard::Ended);
            say(deps, partner, left).await?;
            say(
                deps,
                user,
                Reply::key("blocked", lang).keyboard(Keyboard::Ended),
            )
            .await
        }
        BlockOutcome::BlockedLast { lang } => {
            deps.metrics.blocks.inc();
            say(deps, user, Reply::key("blocked_last", lang)).await
        }
        BlockOutcome::Nobody { lang } => {
            say(deps, user, Reply::key("nothing_to_block", lang)).await
        }
    }
}

/// /report or the Report button: the reasons for the current chat, or for
/// the one that ended within the report window.
/// The message (in the user's own chat) a command replied to.
fn replied(msg: &Message) -> Option<i32> {
    msg.reply_to_message().map(|r| r.id.0)
}

/// /report (or the Report button): the reason picker for the current or
/// last chat. As a reply to one of the partner's messages, the buttons
/// carry its id; the report script checks it is one (callback data can be
/// forged) and puts it first in the evidence.
async fn report_start(deps: &Deps, user: i64, tg: Lang, message: Option<i32>) -> HandlerResult {
    match deps.moderation.report_target(user, tg).await? {
        ReportOutcome::Pick { lang, chat } => {
            let reasons = report_reasons(lang, chat, message);
            let reply = Reply::key("report_pick", lang).buttons(reasons);
            say(deps, user, reply).await
        }
        other => report_refused(deps, user, other).await,
    }
}

/// Tells a user why their report (or /report) was not taken.
async fn report_refused(deps: &Deps, user: i64, outcome: ReportOutcome) -> HandlerResult {
    let (key, lang) = match outcome {
        ReportOutcome::Expired { lang } => ("report_expired", lang),
        ReportOutcome::Duplicate { lang } => ("report_duplicate", lang),
        ReportOutcome::Limited { lang } => ("report_limited", lang),
        ReportOutcome::Pick { .. } | ReportOutcome::Filed(_) => return Ok(()),
    };
    say(deps, user, Reply::key(key, lang)).await
}

/// A reason button: file the report, tell the reporter (and, when it ended
/// the chat, the partner, neutrally), then the moderation queue.
async fn file_report(
    deps: &Deps,
    user: i64,
    tg: Lang,
    chat: ChatId,
    reason: Reason,
    message: Option<i32>,
) -> HandlerResult {
    let f = match deps
        .moderation
        .report(user, chat, reason, message, tg)
        .await?
    {
        ReportOutcome::Filed(f) => f,
        other => return report_refused(deps, user, other).await,
    };
    deps.metrics.report(reason.code());
    if f.ended_chat {
        let left = Reply::key("partner_left", f.partner_lang).keyboard(Keyboard::Ended);
        say(deps, f.partner, left).await?;
    }
    let mut thanks = Reply::key("report_thanks", f.lang);
    if f.ended_chat {
        thanks = thanks.keyboard(Keyboard::Idle);
    }
    say(deps, user, thanks).await?;
    if f.suspended {
        deps.metrics.suspensions.inc();
        if let Some((other, other_lang)) = f.other {
            let left = Reply::key("partner_left", other_lang).keyboard(Keyboard::Ended);
            say(deps, other, left).await?;
        }
        let note = Reply::body(ban_text(f.partner_lang, Ban::Suspended), f.partner_lang);
        say(deps, f.partner, note.keyboard(Keyboard::Idle)).await?;
    }
    to_moderators(deps, user, &f).await?;
    Ok(deps.moderation.queued(f.id).await?)
}

/// Sends a report to the moderation queue: the text with anonymous ids and
/// the decision buttons, then protected copies of the evidence, copied from
/// the reporter's own chat (so moderators see what the reporter received,
/// and nothing of it is stored by us).
async fn to_moderators(deps: &Deps, reporter: i64, f: &Filed) -> HandlerResult {
    for chat in deps.moderation.queue_chats() {
        let lang = deps.chat.user_view(chat, Lang::En).await?.lang;
        let suspended = if f.suspended {
            text("mod_suspended_note", lang)
        } else {
            String::new()
        };
        let body = text_with(
            "mod_report",
            lang,
            &[
                ("id", &f.id.to_string()),
                ("reason", &reason_text(f.reason, lang)),
                ("reported", &f.reported_anon),
                ("reports", &f.prior_reports.to_string()),
                ("bans", &f.prior_bans.to_string()),
                ("reporter", &f.reporter_anon),
                ("evidence", &f.evidence.len().to_string()),
                ("suspended", &suspended),
            ],
        );
        let reply = Reply::body(body, lang).buttons(moderation_buttons(lang, f.id));
        if send(deps, chat, reply, Slot::ReserveNow(1)).await? == Sent::RecipientGone {
            continue;
        }
        for &m in &f.evidence {
            match deps
                .out
                .copy(chat, reporter, m, None, true, Slot::ReserveNow(1))
                .await
            {
                Ok(_) | Err(SendError::NotFound(_) | SendError::CantCopy | SendError::Gone(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// A moderation button: only admins; each decision applies once.
async fn moderate(
    deps: &Deps,
    q: &CallbackQuery,
    decision: Decision,
    report: u64,
) -> HandlerResult {
    let admin = q.from.id.0 as i64;
    let lang = deps
        .chat
        .user_view(admin, user_lang(Some(&q.from)))
        .await?
        .lang;
    let answer = |t: Option<String>| deps.out.answer_callback(admin, q.id.0.clone(), t);
    if !deps.moderation.is_admin(admin) {
        return Ok(answer(Some(text("mod_not_allowed", lang))).await?);
    }
    match deps.moderation.decide(report, decision, admin).await? {
        DecideOutcome::Unknown => Ok(answer(Some(text("mod_unknown", lang))).await?),
        DecideOutcome::AlreadyDecided { state } => {
            let t = text_with("mod_already", lang, &[("state", &state)]);
            Ok(answer(Some(t)).await?)
        }
        DecideOutcome::Applied {
            user,
            user_lang,
            banned_until,
            partner,
        } => {
            answer(None).await?;
            let queue = q.regular_message().map(|m| m.chat.id.0).unwrap_or(admin);
            let done = text_with(
                "mod_applied",
                lang,
                &[
                    ("id", &report.to_string()),
                    ("decision", &decision_text(decision, lang)),
                ],
            );
            say(deps, queue, Reply::body(done, lang)).await?;
            if let Some(until) = banned_until {
                tell_banned(deps, (user, user_lang), until, partner).await?;
            }
            Ok(())
        }
    }
}

/// A ban applied: the partner of the chat it ended is told neutrally (like
/// a Stop), the banned user until when.
async fn tell_banned(
    deps: &Deps,
    (user, user_lang): (i64, Lang),
    until: i64,
    partner: Option<(i64, Lang)>,
) -> HandlerResult {
    deps.metrics.bans.inc();
    if let Some((p, p_lang)) = partner {
        let left = Reply::key("partner_left", p_lang).keyboard(Keyboard::Ended);
        say(deps, p, left).await?;
    }
    let note = Reply::body(ban_text(user_lang, Ban::from_ms(until)), user_lang);
    say(deps, user, note.keyboard(Keyboard::Idle)).await
}

/// An admin's /ban or /unban (the tree routes it here only for ADMIN_IDS;
/// for anyone else it is unknown text, relayed or hinted like any other).
pub async fn admin(deps: Arc<Deps>, msg: Message, cmd: AdminCommand) -> HandlerResult {
    let admin = msg.chat.id.0;
    deps.metrics.command("admin");
    let lang = deps
        .chat
        .user_view(admin, user_lang(msg.from.as_ref()))
        .await?
        .lang;
    let (anon, action, reason) = match cmd {
        AdminCommand::Usage => return say(&deps, admin, Reply::key("admin_usage", lang)).await,
        AdminCommand::Ban {
            anon,
            length,
            reason,
        } => (anon, AdminAction::Ban(length), reason),
        AdminCommand::Unban { anon, reason } => (anon, AdminAction::Unban, reason),
    };
    // The ban's end is reckoned from the command's date: handled twice, once.
    let at_ms = u64::try_from(msg.date.timestamp_millis()).unwrap_or(0);
    let id = [("id", anon.as_str())];
    let body = match deps
        .moderation
        .admin_ban(&anon, action, admin, at_ms, &reason)
        .await?
    {
        AdminOutcome::Unknown => text_with("admin_unknown", lang, &id),
        AdminOutcome::Unchanged { ban: None } => text_with("admin_not_banned", lang, &id),
        AdminOutcome::Unchanged { ban: Some(ms) } => {
            let end = ban_end(lang, Ban::from_ms(ms));
            text_with("admin_already", lang, &[id[0], ("ban", &end)])
        }
        AdminOutcome::Banned {
            user,
            user_lang,
            until,
            partner,
        } => {
            tell_banned(&deps, (user, user_lang), until, partner).await?;
            let end = ban_end(lang, Ban::from_ms(until));
            text_with("admin_banned", lang, &[id[0], ("ban", &end)])
        }
        AdminOutcome::Unbanned { .. } => text_with("admin_unbanned", lang, &id),
    };
    say(&deps, admin, Reply::body(body, lang)).await
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
        Some(Callback::ReportPick(chat)) => {
            answer(None).await?;
            let lang = deps.chat.user_view(user, tg).await?.lang;
            let reasons = report_reasons(lang, chat, None);
            let reply = Reply::key("report_pick", lang).buttons(reasons);
            return say(&deps, user, reply).await;
        }
        Some(Callback::Report(reason, chat, message)) => {
            answer(None).await?;
            return file_report(&deps, user, tg, chat, reason, message).await;
        }
        Some(Callback::Moderate(decision, report)) => {
            return moderate(&deps, &q, decision, report).await;
        }
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
