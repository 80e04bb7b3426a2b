//! Thin handlers: typed input in, one service call, replies out.

use std::sync::Arc;
use std::time::Duration;

use teloxide::types::{
    CallbackQuery, ChatMemberUpdated, Message, MessageReactionUpdated, ReactionType,
};

use super::commands::{Button, Callback, Command};
use super::texts::{self, keyboard, text, text_with, Keyboard, Lang};
use super::HandlerResult;
use crate::app::Context;
use crate::chat::{LeaveOutcome, Route, SearchOutcome, Setting, Traffic, UserState};
use crate::telegram::{SendError, Slot};

fn user_lang(msg: &Message) -> Lang {
    Lang::of_user(msg.from.as_ref())
}

/// Sends a text with the keyboard of a state; a recipient who is gone is not an error.
async fn say(
    ctx: &Context,
    chat: i64,
    key: &str,
    lang: Lang,
    kb: Option<Keyboard>,
) -> HandlerResult {
    say_text(ctx, chat, text(key, lang), lang, kb).await
}

async fn say_text(
    ctx: &Context,
    chat: i64,
    body: String,
    lang: Lang,
    kb: Option<Keyboard>,
) -> HandlerResult {
    say_in(ctx, chat, body, lang, kb, Slot::Reserve(1)).await
}

/// Like [`say_text`], in a slot that was already reserved.
async fn say_in(
    ctx: &Context,
    chat: i64,
    body: String,
    lang: Lang,
    kb: Option<Keyboard>,
    slot: Slot,
) -> HandlerResult {
    match ctx
        .out
        .send_text(chat, body, kb.map(|k| keyboard(k, lang)), slot)
        .await
    {
        Ok(_) | Err(SendError::Gone(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn command(ctx: Arc<Context>, msg: Message, cmd: Command) -> HandlerResult {
    let user = msg.chat.id.0;
    let tg = user_lang(&msg);
    ctx.metrics.command(&format!("{cmd:?}").to_lowercase());
    match cmd {
        Command::Search => search(&ctx, user, tg).await,
        Command::Next => next(&ctx, user, tg).await,
        Command::Stop => stop(&ctx, user, tg).await,
        Command::Start | Command::Help | Command::Rules => {
            let (state, lang) = ctx.chat.state(user, tg).await?;
            let body = match cmd {
                Command::Start => texts::welcome(lang),
                Command::Help => texts::help(lang),
                _ => text("rules", lang),
            };
            say_text(&ctx, user, body, lang, Some(state_keyboard(state))).await
        }
        Command::Language => {
            let (_, lang) = ctx.chat.state(user, tg).await?;
            ask(
                &ctx,
                user,
                text("language_prompt", lang),
                texts::language_picker(),
            )
            .await
        }
        Command::Settings => {
            let (_, lang) = ctx.chat.state(user, tg).await?;
            let (same_language, protect) = ctx.chat.settings(user).await?;
            let buttons = texts::settings_buttons(lang, same_language, protect);
            ask(&ctx, user, text("settings_title", lang), buttons).await
        }
    }
}

/// Sends a text with inline buttons under it.
async fn ask(
    ctx: &Context,
    chat: i64,
    body: String,
    buttons: teloxide::types::InlineKeyboardMarkup,
) -> HandlerResult {
    let markup = teloxide::types::ReplyMarkup::InlineKeyboard(buttons);
    ctx.out
        .send_text(chat, body, Some(markup), Slot::Reserve(1))
        .await?;
    Ok(())
}

fn state_keyboard(state: UserState) -> Keyboard {
    match state {
        UserState::Idle => Keyboard::Idle,
        UserState::Searching => Keyboard::Searching,
        UserState::Chatting => Keyboard::Chatting,
    }
}

pub async fn button(ctx: Arc<Context>, msg: Message, button: Button) -> HandlerResult {
    let user = msg.chat.id.0;
    let tg = user_lang(&msg);
    ctx.metrics
        .command(&format!("button_{button:?}").to_lowercase());
    match button {
        Button::Search => search(&ctx, user, tg).await,
        Button::Next => next(&ctx, user, tg).await,
        Button::Cancel | Button::Stop => stop(&ctx, user, tg).await,
    }
}

async fn search(ctx: &Context, user: i64, tg: Lang) -> HandlerResult {
    match ctx.chat.search(user, tg).await? {
        SearchOutcome::AlreadyChatting { lang } => {
            say(
                ctx,
                user,
                "already_chatting",
                lang,
                Some(Keyboard::Chatting),
            )
            .await
        }
        SearchOutcome::AlreadySearching { lang } => {
            say(
                ctx,
                user,
                "already_searching",
                lang,
                Some(Keyboard::Searching),
            )
            .await
        }
        SearchOutcome::Queued { lang } => {
            say(ctx, user, "searching", lang, Some(Keyboard::Searching)).await
        }
        SearchOutcome::Matched {
            lang,
            partner,
            partner_lang,
        } => {
            tracing::debug!(user, partner, "pair formed");
            // The partner first: if they are gone, the pair ends before
            // this user is told anything.
            match ctx
                .out
                .send_text(
                    partner,
                    text("found", partner_lang),
                    Some(keyboard(Keyboard::Chatting, partner_lang)),
                    Slot::Reserve(1),
                )
                .await
            {
                Ok(_) => say(ctx, user, "found", lang, Some(Keyboard::Chatting)).await,
                Err(SendError::Gone(_)) => partner_gone(ctx, user, lang).await,
                Err(e) => Err(e.into()),
            }
        }
    }
}

async fn stop(ctx: &Context, user: i64, tg: Lang) -> HandlerResult {
    match ctx.chat.leave(user, Some(tg)).await? {
        LeaveOutcome::LeftChat {
            lang,
            partner,
            partner_lang,
        } => {
            left_chat(
                ctx,
                (user, lang),
                (partner, partner_lang),
                Some(Keyboard::Idle),
            )
            .await
        }
        LeaveOutcome::LeftQueue { lang } => {
            say(ctx, user, "search_cancelled", lang, Some(Keyboard::Idle)).await
        }
        LeaveOutcome::Idle { lang } | LeaveOutcome::StillSearching { lang } => {
            say(ctx, user, "nothing_to_stop", lang, Some(Keyboard::Idle)).await
        }
    }
}

/// Tells both sides that `user` ended the chat.
async fn left_chat(
    ctx: &Context,
    (user, lang): (i64, Lang),
    (partner, partner_lang): (i64, Lang),
    user_keyboard: Option<Keyboard>,
) -> HandlerResult {
    say(
        ctx,
        partner,
        "partner_left",
        partner_lang,
        Some(Keyboard::Idle),
    )
    .await?;
    say(ctx, user, "you_left", lang, user_keyboard).await
}

async fn next(ctx: &Context, user: i64, tg: Lang) -> HandlerResult {
    match ctx.chat.leave_chat(user, Some(tg)).await? {
        LeaveOutcome::LeftChat {
            lang,
            partner,
            partner_lang,
        } => {
            // No keyboard yet: the search right after draws the next one.
            left_chat(ctx, (user, lang), (partner, partner_lang), None).await?;
            search(ctx, user, tg).await
        }
        LeaveOutcome::StillSearching { lang } => {
            say(
                ctx,
                user,
                "already_searching",
                lang,
                Some(Keyboard::Searching),
            )
            .await
        }
        LeaveOutcome::LeftQueue { .. } | LeaveOutcome::Idle { .. } => search(ctx, user, tg).await,
    }
}

/// The partner can't be reached (blocked the bot, deleted the account): end
/// the chat for both and tell the user who is still here.
async fn partner_gone(ctx: &Context, user: i64, lang: Lang) -> HandlerResult {
    // Only the path that actually ends the chat tells the user: when the
    // partner's my_chat_member update got there first, it has told them.
    match ctx.chat.leave_chat(user, Some(lang)).await? {
        LeaveOutcome::LeftChat { lang, .. } => {
            say(ctx, user, "partner_gone", lang, Some(Keyboard::Idle)).await
        }
        _ => Ok(()),
    }
}

/// Any other message: relay it to the partner, or hint how to start.
pub async fn relay(ctx: Arc<Context>, msg: Message) -> HandlerResult {
    let user = msg.chat.id.0;
    let tg = user_lang(&msg);
    if let Some(group) = msg.media_group_id() {
        // Album parts are gathered in Redis and relayed together by the
        // timer loop when the album's window closes.
        if let Some(lang) = ctx.chat.album_add(user, &group.0, msg.id.0, tg).await? {
            say(&ctx, user, "not_in_chat", lang, Some(Keyboard::Idle)).await?;
        }
        return Ok(());
    }
    let reply_to = msg.reply_to_message().map(|r| r.id.0);
    match ctx
        .chat
        .route(user, reply_to, tg, Traffic::Message { sends: 1 })
        .await?
    {
        Route::Throttled { notify, lang } => {
            ctx.metrics.inbound_dropped.inc();
            if notify {
                say(&ctx, user, "slow_down", lang, None).await?;
            }
            Ok(())
        }
        Route::NotInChat { lang, wait } => {
            say_in(
                &ctx,
                user,
                text("not_in_chat", lang),
                lang,
                Some(Keyboard::Idle),
                Slot::Reserved(wait),
            )
            .await
        }
        Route::Chat {
            partner,
            protect,
            mapped,
            wait,
        } => match ctx
            .out
            .copy(
                partner,
                user,
                msg.id.0,
                mapped,
                protect,
                Slot::Reserved(wait),
            )
            .await
        {
            Ok(copy) => {
                ctx.chat
                    .remember(&ctx, &[(user, msg.id.0, partner, copy.0)])
                    .await?;
                Ok(())
            }
            Err(SendError::Gone(_)) => {
                partner_gone(&ctx, user, tg_or_stored(&ctx, user, tg).await).await
            }
            Err(SendError::CantCopy) => {
                let lang = tg_or_stored(&ctx, user, tg).await;
                say(&ctx, user, "cant_deliver", lang, None).await
            }
            Err(e) => Err(e.into()),
        },
    }
}

async fn tg_or_stored(ctx: &Context, user: i64, tg: Lang) -> Lang {
    ctx.chat.state(user, tg).await.map(|(_, l)| l).unwrap_or(tg)
}

/// An edited message: edit the partner's copy.
pub async fn edited(ctx: Arc<Context>, msg: Message) -> HandlerResult {
    let user = msg.chat.id.0;
    let route = ctx
        .chat
        .route(user, Some(msg.id.0), user_lang(&msg), Traffic::Followup)
        .await?;
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
    let slot = Slot::Reserved(wait);
    let result = if let Some(body) = msg.text() {
        let entities = msg.entities().map(<[_]>::to_vec);
        ctx.out
            .edit_text(partner, copy, body.to_string(), entities, slot)
            .await
    } else {
        let caption = msg.caption().map(str::to_string);
        let entities = msg.caption_entities().map(<[_]>::to_vec);
        ctx.out
            .edit_caption(partner, copy, caption, entities, slot)
            .await
    };
    match result {
        Ok(())
        | Err(SendError::NotModified)
        | Err(SendError::NotFound(_))
        | Err(SendError::Gone(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A reaction on a relayed message: mirror it on the partner's version.
pub async fn reaction(ctx: Arc<Context>, r: MessageReactionUpdated) -> HandlerResult {
    let user = r.chat.id.0;
    let Route::Chat {
        partner,
        mapped: Some(target),
        wait,
        ..
    } = ctx
        .chat
        .route(user, Some(r.message_id.0), Lang::En, Traffic::Followup)
        .await?
    else {
        return Ok(());
    };
    // Bots can set plain emoji reactions only.
    let emoji: Vec<ReactionType> = r
        .new_reaction
        .into_iter()
        .filter(|t| matches!(t, ReactionType::Emoji { .. }))
        .collect();
    match ctx
        .out
        .react(partner, target, emoji, Slot::Reserved(wait))
        .await
    {
        Ok(()) | Err(SendError::NotFound(_)) | Err(SendError::Gone(_)) => Ok(()),
        Err(SendError::Other(e)) if e.contains("REACTION_INVALID") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Inline buttons: language picker and settings.
pub async fn callback(ctx: Arc<Context>, q: CallbackQuery) -> HandlerResult {
    let user = q.from.id.0 as i64;
    let tg = Lang::of_user(Some(&q.from));
    let Some(cb) = q.data.as_deref().and_then(Callback::parse) else {
        ctx.out.answer_callback(user, q.id.0.clone(), None).await?;
        return Ok(());
    };
    match cb {
        Callback::Language(lang) => {
            ctx.chat.set_language(user, lang).await?;
            ctx.out.answer_callback(user, q.id.0.clone(), None).await?;
            let (state, _) = ctx.chat.state(user, lang).await?;
            say(
                &ctx,
                user,
                "language_set",
                lang,
                Some(state_keyboard(state)),
            )
            .await
        }
        Callback::ToggleSameLanguage | Callback::ToggleProtect => {
            let setting = if cb == Callback::ToggleProtect {
                Setting::Protect
            } else {
                Setting::SameLanguage
            };
            ctx.chat.toggle(user, setting).await?;
            let (_, lang) = ctx.chat.state(user, tg).await?;
            let (same_language, protect) = ctx.chat.settings(user).await?;
            ctx.out
                .answer_callback(user, q.id.0.clone(), Some(text("setting_saved", lang)))
                .await?;
            if let Some(m) = q.regular_message() {
                match ctx
                    .out
                    .edit_markup(
                        user,
                        m.id.0,
                        texts::settings_buttons(lang, same_language, protect),
                    )
                    .await
                {
                    Ok(()) | Err(SendError::NotModified) | Err(SendError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        }
    }
}

/// The user blocked (or unblocked) the bot.
pub async fn membership(ctx: Arc<Context>, u: ChatMemberUpdated) -> HandlerResult {
    if u.new_chat_member.is_present() {
        return Ok(());
    }
    let user = u.chat.id.0;
    tracing::debug!(user, "user blocked the bot");
    if let LeaveOutcome::LeftChat {
        partner,
        partner_lang,
        ..
    } = ctx.chat.leave(user, None).await?
    {
        say(
            &ctx,
            partner,
            "partner_gone",
            partner_lang,
            Some(Keyboard::Idle),
        )
        .await?;
    }
    Ok(())
}

/// Minutes for the timeout texts, rounded up.
pub fn minutes(d: std::time::Duration) -> String {
    d.as_secs().div_ceil(60).max(1).to_string()
}

/// Renders the search-timeout text.
pub fn search_timeout_text(ctx: &Context, lang: Lang) -> String {
    text_with(
        "search_timeout",
        lang,
        &[("minutes", &minutes(ctx.chat.search_timeout()))],
    )
}

/// Renders the idle-timeout text.
pub fn idle_timeout_text(ctx: &Context, lang: Lang) -> String {
    text_with(
        "idle_timeout",
        lang,
        &[("minutes", &minutes(ctx.chat.idle_timeout()))],
    )
}

/// Sends a rendered text with the idle keyboard (used by the timer loop).
pub async fn notify_idle(ctx: &Context, chat: i64, body: String, lang: Lang) -> HandlerResult {
    say_text(ctx, chat, body, lang, Some(Keyboard::Idle)).await
}

/// Relays a gathered album (timer loop).
pub async fn relay_album(ctx: &Context, user: i64, group: &str, ids: &[i32]) -> HandlerResult {
    let sends = ids.len() as u32;
    match ctx
        .chat
        .route(user, None, Lang::En, Traffic::Followup)
        .await?
    {
        Route::Throttled { .. } | Route::NotInChat { .. } => {}
        Route::Chat {
            partner,
            protect,
            wait,
            ..
        } => {
            // The route reserved one slot; the album's other parts reserve theirs.
            let extra = match sends.saturating_sub(1) {
                0 => Duration::ZERO,
                n => ctx.out.limiter().reserve(partner, n).await?,
            };
            let slot = Slot::Reserved(wait.max(extra));
            match ctx.out.copy_many(partner, user, ids, protect, slot).await {
                Ok(copies) => {
                    let pairs: Vec<_> = ids
                        .iter()
                        .zip(copies.iter())
                        .map(|(&m, c)| (user, m, partner, c.0))
                        .collect();
                    ctx.chat.remember(ctx, &pairs).await?;
                }
                Err(SendError::Gone(_)) => {
                    let lang = tg_or_stored(ctx, user, Lang::En).await;
                    partner_gone(ctx, user, lang).await?;
                }
                Err(SendError::CantCopy) => {
                    let lang = tg_or_stored(ctx, user, Lang::En).await;
                    say(ctx, user, "cant_deliver", lang, None).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    ctx.chat.album_done(user, group).await?;
    Ok(())
}
