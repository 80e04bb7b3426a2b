//! The one way to send a text to a user, and the one way to deliver a copy
//! of a user's message (single or album) to their partner.
//!
//! Policy for a recipient who is gone (blocked the bot, deleted the account):
//! there is nobody to tell, so it is never a handler error; [`send`] reports
//! it so a caller that must react (the partner of a new match) can. A partner
//! found gone while delivering ends the chat and the sender is told.

use std::time::Duration;

use teloxide::types::{InlineKeyboardMarkup, MessageId, ReplyMarkup};

use super::content::Veiled;
use super::deps::{Deps, HandlerResult};
use super::keyboards::Keyboard;
use super::texts::{text, Lang};
use crate::domain::{ChatId, CopyPair, LeaveOutcome, MediaMode, Visual};
use crate::telegram::{SendError, Slot, Spoiler};

/// A text for one user, in their language, with an optional keyboard.
pub struct Reply {
    body: String,
    lang: Lang,
    markup: Option<ReplyMarkup>,
}

impl Reply {
    /// The locale text `key`.
    pub fn key(key: &str, lang: Lang) -> Reply {
        Reply::body(text(key, lang), lang)
    }

    /// An already rendered text.
    pub fn body(body: String, lang: Lang) -> Reply {
        Reply {
            body,
            lang,
            markup: None,
        }
    }

    /// With the reply keyboard `kb`, labelled in the reply's language.
    pub fn keyboard(mut self, kb: Keyboard) -> Reply {
        self.markup = Some(kb.markup(self.lang));
        self
    }

    /// With inline buttons under the text.
    pub fn buttons(mut self, buttons: InlineKeyboardMarkup) -> Reply {
        self.markup = Some(ReplyMarkup::InlineKeyboard(buttons));
        self
    }
}

/// Whether a text reached its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    RecipientGone,
}

/// Sends `reply` to `to` within the budget `slot`.
pub async fn send(deps: &Deps, to: i64, reply: Reply, slot: Slot) -> Result<Sent, SendError> {
    match deps.out.send_text(to, reply.body, reply.markup, slot).await {
        Ok(_) => Ok(Sent::Delivered),
        Err(SendError::Gone(_)) => Ok(Sent::RecipientGone),
        Err(e) => Err(e),
    }
}

/// Sends `reply` to `to`, reserving its slot now.
pub async fn say(deps: &Deps, to: i64, reply: Reply) -> HandlerResult {
    send(deps, to, reply, Slot::ReserveNow(1)).await?;
    Ok(())
}

/// One message or a whole album of `user`'s, to copy to `partner`.
pub struct Delivery<'a> {
    pub user: i64,
    pub partner: i64,
    /// Message ids in `user`'s chat, ascending.
    pub ids: &'a [i32],
    /// The ids are an album: copied in one call, so they stay one album.
    pub album: bool,
    /// The partner's copy of the message this one replies to.
    pub reply_to: Option<i32>,
    pub protect: bool,
    /// The reserved slot's wait.
    pub wait: Duration,
    /// The chat it was sent in: after a wait, it goes only if the sender is
    /// still in that chat (never into the partner's next one).
    pub chat: ChatId,
    /// The sender's Telegram language, when the update said.
    pub lang: Option<Lang>,
    /// Visual media the partner wants blurred or as text (single messages only).
    pub veiled: Option<Veiled>,
}

/// Copies a message (or an album, as one `copyMessages`, so it stays one
/// album) and remembers every copy. A copy that had to wait for its slot is
/// checked against its chat first (one HGET; none when there was no wait):
/// if the chat ended meanwhile it is dropped and the sender told. A partner
/// who is gone ends the chat; a message Telegram can't copy is reported to
/// the sender.
pub async fn deliver(deps: &Deps, d: Delivery<'_>) -> HandlerResult {
    let mut slot = Slot::Prepaid(d.wait);
    if !d.wait.is_zero() {
        tokio::time::sleep(d.wait).await;
        if !deps.chat.in_chat(d.user, d.chat).await? {
            return not_delivered(deps, d.user, d.lang).await;
        }
        slot = Slot::Prepaid(Duration::ZERO);
    }
    let copies = match (d.ids, d.veiled) {
        ([_], Some(v)) if !d.album => veil(deps, d.partner, v, d.reply_to, d.protect, slot)
            .await
            .map(|c| vec![c]),
        ([one], _) if !d.album => deps
            .out
            .copy(d.partner, d.user, *one, d.reply_to, d.protect, slot)
            .await
            .map(|c| vec![c]),
        (many, _) => {
            deps.out
                .copy_many(d.partner, d.user, many, d.protect, slot)
                .await
        }
    };
    match copies {
        Ok(copies) => {
            let pairs: Vec<CopyPair> = d
                .ids
                .iter()
                .zip(copies.iter())
                .map(|(&m, c)| CopyPair {
                    from_chat: d.user,
                    from_message: m,
                    to_chat: d.partner,
                    to_message: c.0,
                })
                .collect();
            if d.album {
                deps.chat.remember_album(&pairs).await?;
            } else {
                deps.chat.remember(&pairs).await?;
            }
            Ok(())
        }
        Err(SendError::Gone(_)) => {
            let lang = reply_lang(deps, d.user, d.lang).await;
            partner_gone(deps, d.user, lang).await
        }
        Err(SendError::CantCopy) => {
            let lang = reply_lang(deps, d.user, d.lang).await;
            say(deps, d.user, Reply::key("cant_deliver", lang)).await
        }
        // The sender deleted it before it could be copied: nothing to deliver.
        Err(SendError::NotFound(e)) => {
            tracing::debug!(user = d.user, error = %e, "message gone before its copy");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A send that could not leave within MAX_SEND_WAIT was dropped (nothing
/// was reserved for it): the sender is told once per notice window.
pub async fn overloaded(deps: &Deps, user: i64, notify: bool, lang: Lang) -> HandlerResult {
    deps.metrics.overload_dropped.inc();
    if notify {
        say(deps, user, Reply::key("not_delivered_overloaded", lang)).await?;
    }
    Ok(())
}

/// Sends visual media blurred (again by file id, with a spoiler) or as a
/// short text with its caption, instead of a copy.
async fn veil(
    deps: &Deps,
    to: i64,
    v: Veiled,
    reply_to: Option<i32>,
    protect: bool,
    slot: Slot,
) -> Result<MessageId, SendError> {
    if v.mode == MediaMode::Blur {
        let media = Spoiler {
            kind: v.kind,
            file_id: v.file_id,
            caption: v.caption,
            entities: v.entities,
            reply_to,
            protect,
        };
        return deps.out.send_spoiler(to, media, slot).await;
    }
    let lang = deps
        .chat
        .user_view(to, Lang::En)
        .await
        .map(|u| u.lang)
        .unwrap_or(Lang::En);
    let key = match v.kind {
        Visual::Photo => "media_hidden_photo",
        Visual::Video => "media_hidden_video",
        Visual::Animation => "media_hidden_animation",
    };
    let mut body = text(key, lang);
    let mut entities = None;
    if let Some(caption) = v.caption.filter(|c| !c.is_empty()) {
        body.push_str("\n\n");
        // Entity offsets are in UTF-16 code units, after the placeholder.
        let shift = body.encode_utf16().count();
        entities = v.entities.map(|es| {
            es.into_iter()
                .map(|mut e| {
                    e.offset += shift;
                    e
                })
                .collect()
        });
        body.push_str(&caption);
    }
    deps.out
        .send_text_as_copy(to, body, entities, reply_to, protect, slot)
        .await
}

/// Tells the sender something of theirs was not delivered: its chat ended.
pub async fn not_delivered(deps: &Deps, user: i64, tg: Option<Lang>) -> HandlerResult {
    let lang = reply_lang(deps, user, tg).await;
    say(deps, user, Reply::key("not_delivered_chat_ended", lang)).await
}

/// The user's reply language: chosen, else Telegram's, else English.
async fn reply_lang(deps: &Deps, user: i64, tg: Option<Lang>) -> Lang {
    let tg = tg.unwrap_or(Lang::En);
    deps.chat
        .user_view(user, tg)
        .await
        .map(|v| v.lang)
        .unwrap_or(tg)
}

/// The partner can't be reached (blocked the bot, deleted the account): end
/// the chat for both and tell the user who is still here.
pub async fn partner_gone(deps: &Deps, user: i64, lang: Lang) -> HandlerResult {
    // Only the path that actually ends the chat tells the user: when the
    // partner's my_chat_member update got there first, it has told them.
    match deps.chat.leave_chat(user, Some(lang)).await? {
        LeaveOutcome::LeftChat { lang, .. } => {
            say(
                deps,
                user,
                Reply::key("partner_gone", lang).keyboard(Keyboard::Idle),
            )
            .await
        }
        _ => Ok(()),
    }
}
