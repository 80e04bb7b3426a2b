//! Outbound Bot API calls: one place where every send, copy and edit goes
//! through, so each is counted, classified and retried the same way.
//!
//! Errors are sorted by how the caller reacts: the recipient is gone (403:
//! blocked the bot, deactivated) and the chat must end; the message can't be
//! copied and the sender must be told; the edit changed nothing; anything else
//! is an error the worker logs and retries. A 429 waits `retry_after` and a
//! network error backs off, a bounded number of times.

use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::requests::{Output, Request};
use teloxide::types::{MessageEntity, MessageId, ReactionType, ReplyMarkup, ReplyParameters};
use teloxide::{ApiError, RequestError};

use crate::metrics::Metrics;

/// Attempts of one call (429 waits and network errors included).
const ATTEMPTS: u32 = 4;

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
    #[error("Telegram error: {0}")]
    Other(String),
}

/// The bot's outbound side.
#[derive(Clone)]
pub struct Outbound {
    bot: Bot,
    metrics: Arc<Metrics>,
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
            | ApiError::MessageToReplyNotFound => SendError::NotFound(api.to_string()),
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
    pub fn new(bot: Bot, metrics: Arc<Metrics>) -> Outbound {
        Outbound { bot, metrics }
    }

    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// Sends `req`, retrying 429s after `retry_after` and network errors with
    /// backoff; counts every attempt by method and outcome.
    async fn call<R>(&self, method: &'static str, req: R) -> Result<Output<R>, SendError>
    where
        R: Request<Err = RequestError>,
    {
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match req.send_ref().await {
                Ok(out) => {
                    self.metrics.telegram_call(method, "ok");
                    return Ok(out);
                }
                Err(RequestError::RetryAfter(secs)) => {
                    self.metrics.telegram_call(method, "429");
                    if attempt >= ATTEMPTS {
                        return Err(SendError::Other("rate limited".into()));
                    }
                    tokio::time::sleep(secs.duration()).await;
                }
                Err(e) => {
                    if let Some(classified) = classify(&e) {
                        self.metrics.telegram_call(method, "api_error");
                        return Err(classified);
                    }
                    self.metrics.telegram_call(method, "network");
                    if attempt >= ATTEMPTS {
                        return Err(SendError::Other(e.to_string()));
                    }
                    tracing::debug!(method, error = %e, "Bot API call failed; retrying");
                    tokio::time::sleep(backoff).await;
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
    ) -> Result<MessageId, SendError> {
        let mut req = self.bot.send_message(ChatId(chat), text);
        if let Some(m) = markup {
            req = req.reply_markup(m);
        }
        self.call("sendMessage", req).await.map(|m| m.id)
    }

    /// Copies one message (never forwards: a forward shows the sender).
    pub async fn copy(
        &self,
        to: i64,
        from: i64,
        message: i32,
        reply_to: Option<i32>,
        protect: bool,
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
        self.call("copyMessage", req).await
    }

    /// Copies an album (ids ascending) in one call, so it stays one album.
    pub async fn copy_many(
        &self,
        to: i64,
        from: i64,
        messages: &[i32],
        protect: bool,
    ) -> Result<Vec<MessageId>, SendError> {
        let ids: Vec<MessageId> = messages.iter().map(|&m| MessageId(m)).collect();
        let mut req = self.bot.copy_messages(ChatId(to), ChatId(from), ids);
        if protect {
            req = req.protect_content(true);
        }
        self.call("copyMessages", req).await
    }

    pub async fn edit_text(
        &self,
        chat: i64,
        message: i32,
        text: String,
        entities: Option<Vec<MessageEntity>>,
    ) -> Result<(), SendError> {
        let mut req = self
            .bot
            .edit_message_text(ChatId(chat), MessageId(message), text);
        if let Some(e) = entities {
            req = req.entities(e);
        }
        self.call("editMessageText", req).await.map(|_| ())
    }

    pub async fn edit_caption(
        &self,
        chat: i64,
        message: i32,
        caption: Option<String>,
        entities: Option<Vec<MessageEntity>>,
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
        self.call("editMessageCaption", req).await.map(|_| ())
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
        self.call("editMessageReplyMarkup", req).await.map(|_| ())
    }

    pub async fn react(
        &self,
        chat: i64,
        message: i32,
        reaction: Vec<ReactionType>,
    ) -> Result<(), SendError> {
        let req = self
            .bot
            .set_message_reaction(ChatId(chat), MessageId(message))
            .reaction(reaction);
        self.call("setMessageReaction", req).await.map(|_| ())
    }

    pub async fn answer_callback(&self, id: String, text: Option<String>) -> Result<(), SendError> {
        let mut req = self.bot.answer_callback_query(id.into());
        if let Some(t) = text {
            req = req.text(t);
        }
        self.call("answerCallbackQuery", req).await.map(|_| ())
    }
}
