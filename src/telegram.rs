//! Outbound Bot API calls: one place where every send, copy and edit goes
//! through, so each is counted, classified and retried the same way.
//!
//! Every send or edit draws from the shared budgets ([`crate::limiter`]):
//! either the routing script already reserved its slot ([`Slot::Prepaid`]),
//! or the call reserves one itself ([`Slot::ReserveNow`]). At most `MAX_INFLIGHT_SENDS` calls are in
//! flight per replica; waiting callers hold a worker slot, not a connection,
//! so the backlog stays in the streams.
//!
//! Errors are sorted by how the caller reacts: the recipient is gone (403:
//! blocked the bot, deactivated) and the chat must end; the message can't be
//! copied and the sender must be told; the edit changed nothing; anything else
//! is an error the worker logs and retries. A 429 freezes the chat's budget for
//! every replica, then the call waits for its next slot and goes again; a
//! network error backs off; both a bounded number of times.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use teloxide::prelude::*;
use teloxide::requests::{Output, Request};
use teloxide::types::{MessageEntity, MessageId, ReactionType, ReplyMarkup, ReplyParameters};
use teloxide::{ApiError, RequestError};

use secrecy::ExposeSecret;

/// A photo, video or animation to send again, blurred.
pub struct Spoiler {
    pub kind: Visual,
    pub file_id: String,
    pub caption: Option<String>,
    pub entities: Option<Vec<MessageEntity>>,
    pub reply_to: Option<i32>,
    pub protect: bool,
}

use crate::config::Settings;
use crate::domain::Visual;
use crate::limiter::Limiter;
use crate::metrics::Metrics;

/// Attempts of one call (429 waits and network errors included).
const ATTEMPTS: u32 = 5;

/// Where a call's send slot comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Nothing reserved yet: reserve `n` slots for the chat before sending.
    ReserveNow(u32),
    /// Already reserved (by the routing script): wait this long first.
    Prepaid(Duration),
    /// Not a message (answering a button press): no budget.
    Unmetered,
}

/// Why a call failed, grouped by what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The recipient blocked the bot or no longer exists.
    #[error("recipient is gone: {0}")]
    Gone(String),
    /// Telegram refuses to copy this message.
    #[error("message can't be copied")]
    CantCopy,
    /// An edit that changes nothing.
    #[error("message is not modified")]
    NotModified,
    /// The message referred to does not exist (any more).
    #[error("message not found: {0}")]
    NotFound(String),
    /// Telegram or the budgets are unavailable for now (network errors,
    /// 5xx, flood control that outlasted the retries, Redis away): worth
    /// retrying later, never a reason to drop the update.
    #[error("Telegram unavailable: {0}")]
    Unavailable(String),
    /// This replica no longer owns the partition of the update being
    /// handled: nothing may be sent for it any more.
    #[error("partition lease lapsed; not sending")]
    Fenced,
    /// Telegram refused the call for a reason that will not go away.
    #[error("Telegram error: {0}")]
    Other(String),
}

impl SendError {
    /// Whether retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Unavailable(_) | SendError::Fenced)
    }
}

/// Descriptions Telegram gives with 5xx answers (the code itself is not
/// passed on by teloxide).
const SERVER_ERRORS: &[&str] = &[
    "Internal Server Error",
    "Bad Gateway",
    "Service Unavailable",
    "Gateway Timeout",
];

/// A teloxide `Bot` for `settings`, with a client timeout that fits normal calls.
pub fn make_bot(settings: &Settings) -> Result<Bot, reqwest::Error> {
    let client = teloxide::net::default_reqwest_settings()
        .timeout(settings.telegram_timeout)
        .pool_max_idle_per_host(64)
        .build()?;
    Ok(Bot::with_client(settings.bot_token.expose_secret(), client)
        .set_api_url(settings.telegram_api_url.clone()))
}

/// The bot's outbound side.
pub struct Outbound {
    bot: Bot,
    metrics: Arc<Metrics>,
    limiter: Limiter,
    in_flight: Semaphore,
}

fn classify(e: &RequestError) -> Option<SendError> {
    match e {
        RequestError::Api(api) => Some(match api {
            ApiError::BotBlocked
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::CantInitiateConversation
            | ApiError::CantTalkWithBots => SendError::Gone(api.to_string()),
            ApiError::MessageNotModified => SendError::NotModified,
            ApiError::MessageToEditNotFound
            | ApiError::MessageIdInvalid
            | ApiError::MessageToReplyNotFound
            | ApiError::MessageToCopyNotFound
            | ApiError::MessageToDeleteNotFound => SendError::NotFound(api.to_string()),
            ApiError::ChatNotFound | ApiError::UserNotFound => SendError::Gone(api.to_string()),
            ApiError::Unknown(text) if SERVER_ERRORS.iter().any(|e| text.contains(e)) => {
                SendError::Unavailable(text.clone())
            }
            ApiError::Unknown(text) if text.contains("message to copy not found") => {
                SendError::NotFound(text.clone())
            }
            ApiError::Unknown(text) if text.contains("chat not found") => {
                SendError::Gone(text.clone())
            }
            ApiError::Unknown(text) if text.contains("can't be copied") => SendError::CantCopy,
            ApiError::Unknown(text) if text.starts_with("Forbidden") => {
                SendError::Gone(text.clone())
            }
            ApiError::Unknown(text) if text.contains("not found") => {
                SendError::NotFound(text.clone())
            }
            other => SendError::Other(other.to_string()),
        }),
        _ => None,
    }
}

impl Outbound {
    pub fn new(
        bot: Bot,
        metrics: Arc<Metrics>,
        limiter: Limiter,
        max_in_flight: usize,
    ) -> Outbound {
        Outbound {
            bot,
            metrics,
            limiter,
            in_flight: Semaphore::new(max_in_flight),
        }
    }

    async fn reserve(&self, chat: i64, n: u32) -> Result<Duration, SendError> {
        self.limiter
            .reserve(chat, n)
            .await
            .map_err(|e| SendError::Unavailable(format!("budget unavailable: {e}")))
    }

    /// Sends `req` to `chat` within the budgets, retrying 429s (after
    /// freezing the chat for every replica) and network errors with backoff;
    /// counts every attempt by method and outcome.
    async fn call<R>(
        &self,
        method: &'static str,
        chat: i64,
        slot: Slot,
        req: R,
    ) -> Result<Output<R>, SendError>
    where
        R: Request<Err = RequestError>,
    {
        let n = match slot {
            Slot::ReserveNow(n) => n,
            _ => 1,
        };
        let mut wait = match slot {
            Slot::ReserveNow(n) => self.reserve(chat, n).await?,
            Slot::Prepaid(w) => w,
            Slot::Unmetered => Duration::ZERO,
        };
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.metrics.budget_wait.observe(wait.as_secs_f64());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            // Checked right before each call: a replica that lost the
            // partition of the update being handled sends nothing for it.
            if !crate::fence::current_is_valid() {
                return Err(SendError::Fenced);
            }
            let result = {
                // Never closed, so acquiring only fails if that breaks; then go unbounded.
                let _permit = self.in_flight.acquire().await.ok();
                self.metrics.sends_in_flight.inc();
                let started = Instant::now();
                let r = req.send_ref().await;
                self.metrics.sends_in_flight.dec();
                self.metrics
                    .send_latency
                    .observe(started.elapsed().as_secs_f64());
                r
            };
            match result {
                Ok(out) => {
                    self.metrics.telegram_call(method, "ok");
                    return Ok(out);
                }
                Err(RequestError::RetryAfter(secs)) => {
                    self.metrics.telegram_call(method, "429");
                    self.metrics.too_many_requests.inc();
                    let retry_after = secs.duration();
                    self.metrics
                        .freeze_seconds
                        .set(retry_after.as_secs() as i64);
                    match self.limiter.freeze(chat, retry_after).await {
                        Ok(true) => {
                            tracing::warn!(retry_after = ?retry_after, "429 from several chats: global budget frozen")
                        }
                        Ok(false) => {
                            tracing::info!(retry_after = ?retry_after, "429: chat budget frozen")
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot record a 429 freeze"),
                    }
                    if attempt >= ATTEMPTS {
                        return Err(SendError::Unavailable("rate limited".into()));
                    }
                    // The freeze pushed the budget; the new slot is after it.
                    // Without Redis, wait the retry_after locally.
                    wait = self
                        .reserve(chat, n)
                        .await
                        .unwrap_or(retry_after)
                        .max(retry_after);
                }
                Err(e) => {
                    let classified = classify(&e);
                    match classified {
                        Some(SendError::Unavailable(_)) => {
                            self.metrics.telegram_call(method, "server_error")
                        }
                        Some(c) => {
                            self.metrics.telegram_call(method, "api_error");
                            return Err(c);
                        }
                        None => self.metrics.telegram_call(method, "network"),
                    }
                    if attempt >= ATTEMPTS {
                        return Err(SendError::Unavailable(e.to_string()));
                    }
                    tracing::debug!(method, error = %e, "Bot API call failed; retrying");
                    wait = backoff;
                    backoff *= 2;
                }
            }
        }
    }

    /// A text message from the bot, with an optional keyboard.
    pub async fn send_text(
        &self,
        chat: i64,
        text: String,
        markup: Option<ReplyMarkup>,
        slot: Slot,
    ) -> Result<MessageId, SendError> {
        let mut req = self.bot.send_message(ChatId(chat), text);
        if let Some(m) = markup {
            req = req.reply_markup(m);
        }
        self.call("sendMessage", chat, slot, req)
            .await
            .map(|m| m.id)
    }

    /// Copies one message (never forwards: a forward shows the sender).
    pub async fn copy(
        &self,
        to: i64,
        from: i64,
        message: i32,
        reply_to: Option<i32>,
        protect: bool,
        slot: Slot,
    ) -> Result<MessageId, SendError> {
        let mut req = self
            .bot
            .copy_message(ChatId(to), ChatId(from), MessageId(message));
        if let Some(target) = reply_to {
            req = req.reply_parameters(
                ReplyParameters::new(MessageId(target)).allow_sending_without_reply(),
            );
        }
        if protect {
            req = req.protect_content(true);
        }
        self.call("copyMessage", to, slot, req).await
    }

    /// Copies an album (ids ascending) in one call, so it stays one album.
    pub async fn copy_many(
        &self,
        to: i64,
        from: i64,
        messages: &[i32],
        protect: bool,
        slot: Slot,
    ) -> Result<Vec<MessageId>, SendError> {
        let ids: Vec<MessageId> = messages.iter().map(|&m| MessageId(m)).collect();
        let mut req = self.bot.copy_messages(ChatId(to), ChatId(from), ids);
        if protect {
            req = req.protect_content(true);
        }
        self.call("copyMessages", to, slot, req).await
    }

    pub async fn edit_text(
        &self,
        chat: i64,
        message: i32,
        text: String,
        entities: Option<Vec<MessageEntity>>,
        slot: Slot,
    ) -> Result<(), SendError> {
        let mut req = self
            .bot
            .edit_message_text(ChatId(chat), MessageId(message), text);
        if let Some(e) = entities {
            req = req.entities(e);
        }
        self.call("editMessageText", chat, slot, req)
            .await
            .map(|_| ())
    }

    pub async fn edit_caption(
        &self,
        chat: i64,
        message: i32,
        caption: Option<String>,
        entities: Option<Vec<MessageEntity>>,
        slot: Slot,
    ) -> Result<(), SendError> {
        let mut req = self
            .bot
            .edit_message_caption(ChatId(chat), MessageId(message));
        if let Some(c) = caption {
            req = req.caption(c);
        }
        if let Some(e) = entities {
            req = req.caption_entities(e);
        }
        self.call("editMessageCaption", chat, slot, req)
            .await
            .map(|_| ())
    }

    pub async fn edit_markup(
        &self,
        chat: i64,
        message: i32,
        markup: teloxide::types::InlineKeyboardMarkup,
    ) -> Result<(), SendError> {
        let req = self
            .bot
            .edit_message_reply_markup(ChatId(chat), MessageId(message))
            .reply_markup(markup);
        self.call("editMessageReplyMarkup", chat, Slot::ReserveNow(1), req)
            .await
            .map(|_| ())
    }

    /// Moves a live location's copy.
    pub async fn edit_live_location(
        &self,
        chat: i64,
        message: i32,
        latitude: f64,
        longitude: f64,
        slot: Slot,
    ) -> Result<(), SendError> {
        let req = self.bot.edit_message_live_location(
            ChatId(chat),
            MessageId(message),
            latitude,
            longitude,
        );
        self.call("editMessageLiveLocation", chat, slot, req)
            .await
            .map(|_| ())
    }

    /// Ends a live location's copy.
    pub async fn stop_live_location(
        &self,
        chat: i64,
        message: i32,
        slot: Slot,
    ) -> Result<(), SendError> {
        let req = self
            .bot
            .stop_message_live_location(ChatId(chat), MessageId(message));
        self.call("stopMessageLiveLocation", chat, slot, req)
            .await
            .map(|_| ())
    }

    pub async fn react(
        &self,
        chat: i64,
        message: i32,
        reaction: Vec<ReactionType>,
        slot: Slot,
    ) -> Result<(), SendError> {
        let req = self
            .bot
            .set_message_reaction(ChatId(chat), MessageId(message))
            .reaction(reaction);
        self.call("setMessageReaction", chat, slot, req)
            .await
            .map(|_| ())
    }

    /// Deletes the bot's messages `messages` in `chat`: one `deleteMessage`,
    /// or one `deleteMessages` for several (at most 100 per call; Telegram
    /// skips those already gone).
    pub async fn delete(&self, chat: i64, messages: &[i32], slot: Slot) -> Result<(), SendError> {
        match messages {
            [] => Ok(()),
            [one] => {
                let req = self.bot.delete_message(ChatId(chat), MessageId(*one));
                self.call("deleteMessage", chat, slot, req)
                    .await
                    .map(|_| ())
            }
            many => {
                let mut slot = slot;
                for batch in many.chunks(100) {
                    let ids: Vec<MessageId> = batch.iter().map(|&m| MessageId(m)).collect();
                    let req = self.bot.delete_messages(ChatId(chat), ids);
                    self.call("deleteMessages", chat, slot, req).await?;
                    slot = Slot::ReserveNow(1);
                }
                Ok(())
            }
        }
    }

    /// Sends a photo, video or animation again by its file id with
    /// `has_spoiler` (blurred until tapped; `copyMessage` cannot set it).
    /// Sent by the bot, so it names nobody, like a copy.
    pub async fn send_spoiler(
        &self,
        to: i64,
        media: Spoiler,
        slot: Slot,
    ) -> Result<MessageId, SendError> {
        let file = teloxide::types::InputFile::file_id(teloxide::types::FileId(media.file_id));
        let chat = ChatId(to);
        let reply = media
            .reply_to
            .map(|t| ReplyParameters::new(MessageId(t)).allow_sending_without_reply());
        macro_rules! send {
            ($method:literal, $req:expr) => {{
                let mut req = $req.has_spoiler(true).protect_content(media.protect);
                if let Some(c) = media.caption {
                    req = req.caption(c);
                }
                if let Some(e) = media.entities {
                    req = req.caption_entities(e);
                }
                if let Some(r) = reply {
                    req = req.reply_parameters(r);
                }
                self.call($method, to, slot, req).await.map(|m| m.id)
            }};
        }
        match media.kind {
            Visual::Photo => send!("sendPhoto", self.bot.send_photo(chat, file)),
            Visual::Video => send!("sendVideo", self.bot.send_video(chat, file)),
            Visual::Animation => send!("sendAnimation", self.bot.send_animation(chat, file)),
        }
    }

    /// A text in place of a relayed message (as a reply, protected if asked).
    pub async fn send_text_as_copy(
        &self,
        to: i64,
        text: String,
        entities: Option<Vec<MessageEntity>>,
        reply_to: Option<i32>,
        protect: bool,
        slot: Slot,
    ) -> Result<MessageId, SendError> {
        let mut req = self
            .bot
            .send_message(ChatId(to), text)
            .protect_content(protect);
        if let Some(e) = entities {
            req = req.entities(e);
        }
        if let Some(t) = reply_to {
            req = req
                .reply_parameters(ReplyParameters::new(MessageId(t)).allow_sending_without_reply());
        }
        self.call("sendMessage", to, slot, req).await.map(|m| m.id)
    }

    pub async fn answer_callback(
        &self,
        chat: i64,
        id: String,
        text: Option<String>,
    ) -> Result<(), SendError> {
        let mut req = self.bot.answer_callback_query(id.into());
        if let Some(t) = text {
            req = req.text(t);
        }
        self.call("answerCallbackQuery", chat, Slot::Unmetered, req)
            .await
            .map(|_| ())
    }
}
