//! A faithful fake of the Telegram Bot API, for tests, benchmarks and local trials.
//!
//! Real `anonchat` replicas talk to it over HTTP exactly as they would to
//! `api.telegram.org` (teloxide's `Bot::set_api_url`, raw reqwest for `getUpdates`),
//! while tests drive simulated users and inspect what the bot did through the
//! control API: in-process methods on [`FakeTelegram`], or the same operations as
//! JSON routes under `/control/...` for the standalone `fake-telegram` binary.
//!
//! Layout:
//! - `mod.rs`: public types and the [`FakeTelegram`] handle (start, control, inspection).
//! - `state.rs`: the world behind one mutex: chats, messages, the update queue,
//!   flood-control buckets, recorded calls.
//! - `api.rs`: Bot API methods (validation, Telegram's error texts, effects).
//! - `http.rs`: the axum router: parameter decoding, `getUpdates` long polling,
//!   control routes.
//! - `webhook.rs`: delivery of updates to a webhook (or to several, load-balanced).
//! - `content.rs`: JSON builders for users, chats and media objects.
//!
//! What is faithful: per-chat sequential message ids shared by both sides, `offset`
//! / negative offset / `limit` / persistent `allowed_updates` / long-poll wake-up /
//! 409 for a superseded poller or an active webhook, copy vs forward (only forward
//! reveals the sender), album-preserving `copyMessages`, reply validation, edit
//! rules, 403 for blocked or deleted users (with `my_chat_member` updates), token
//! bucket flood control with `retry_after`. Fault injection for tests: windows in
//! which Bot API calls answer a 5xx error ([`FakeTelegram::fail_for`]) or hang past
//! the client's timeout ([`FakeTelegram::hang_for`]), and token aliases so each
//! replica's calls can be told apart ([`FakeTelegram::add_token_alias`]). What is not: groups and channels, file
//! uploads (multipart text fields work; parts with a filename get a 400), inline
//! mode, payments, and entity parsing for `parse_mode` (recorded, not applied).

mod api;
mod content;
mod http;
mod state;
mod webhook;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;

use state::State;

/// Settings of a fake server.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Address to listen on; default `127.0.0.1:0` (a free port).
    pub bind: SocketAddr,
    /// The bot's token, accepted in `/bot<token>/...`.
    pub token: String,
    /// More tokens for the same bot (see [`FakeTelegram::add_token_alias`]):
    /// give each replica its own and tell their calls apart by
    /// [`CallRecord::token`].
    pub token_aliases: Vec<String>,
    pub bot_id: i64,
    pub bot_username: String,
    pub bot_first_name: String,
    /// Flood control; `None` (default) accepts any rate.
    pub flood: Option<FloodConfig>,
    /// Messages remembered per chat (both sides), oldest forgotten first.
    pub max_messages_per_chat: usize,
    /// Pending updates kept; when full the oldest is dropped.
    pub max_pending_updates: usize,
    /// Recorded Bot API calls (and 429 records) kept.
    pub max_recorded_calls: usize,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: "123456:TEST-TOKEN".into(),
            token_aliases: Vec::new(),
            bot_id: 123_456,
            bot_username: "anonchat_fake_bot".into(),
            bot_first_name: "Anonchat".into(),
            flood: None,
            max_messages_per_chat: 10_000,
            max_pending_updates: 100_000,
            max_recorded_calls: 100_000,
        }
    }
}

/// Token buckets applied to every method that sends or edits a message.
#[derive(Debug, Clone, PartialEq)]
pub struct FloodConfig {
    /// Sustained messages per second into one chat.
    pub per_chat_rate: f64,
    /// Messages one chat may receive in a burst.
    pub per_chat_burst: u32,
    /// Sustained messages per second over all chats.
    pub global_rate: f64,
    pub global_burst: u32,
}

impl Default for FloodConfig {
    /// Roughly Telegram's published limits: ~1 msg/s per chat with short bursts,
    /// ~30 msg/s overall.
    fn default() -> Self {
        Self {
            per_chat_rate: 1.0,
            per_chat_burst: 3,
            global_rate: 30.0,
            global_burst: 30,
        }
    }
}

/// A simulated Telegram user (private chat id == user id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TgUser {
    pub id: i64,
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub language_code: Option<String>,
}

impl TgUser {
    pub fn new(id: i64, first_name: impl Into<String>) -> Self {
        Self {
            id,
            first_name: first_name.into(),
            last_name: None,
            username: None,
            language_code: None,
        }
    }
    pub fn with_last_name(mut self, v: impl Into<String>) -> Self {
        self.last_name = Some(v.into());
        self
    }
    pub fn with_username(mut self, v: impl Into<String>) -> Self {
        self.username = Some(v.into());
        self
    }
    pub fn with_language(mut self, v: impl Into<String>) -> Self {
        self.language_code = Some(v.into());
        self
    }
}

/// A message a simulated user sent (or edited): the update that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub update_id: i64,
    pub message_id: i32,
}

/// A button press: its update and the callback query id the bot must answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackSent {
    pub update_id: i64,
    pub callback_query_id: String,
}

/// A message the bot put into a chat.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub chat_id: i64,
    pub message_id: i32,
    /// Canonical method name, e.g. `"copyMessage"`.
    pub method: String,
    /// Parameters exactly as received (form values that were JSON are parsed).
    pub params: Value,
    /// The message as it is now (after edits), as Telegram would return it.
    pub content: Value,
    /// `(from_chat_id, message_id)` for copies and forwards.
    pub source: Option<(i64, i32)>,
    /// The message this one replies to, in the same chat.
    pub reply_to: Option<i32>,
    pub edits: Vec<Edit>,
    /// Each `setMessageReaction` on this message: its `reaction` array.
    pub reactions: Vec<Value>,
    pub deleted: bool,
    #[serde(skip)]
    pub at: Instant,
    /// Milliseconds since the fake started.
    pub at_ms: u64,
}

impl Received {
    /// The text, or the caption, of the message as it is now.
    pub fn text(&self) -> Option<&str> {
        self.content
            .get("text")
            .or_else(|| self.content.get("caption"))
            .and_then(Value::as_str)
    }
}

/// One edit of a bot message.
#[derive(Debug, Clone, Serialize)]
pub struct Edit {
    pub method: String,
    pub params: Value,
    /// The message after this edit.
    pub content: Value,
    #[serde(skip)]
    pub at: Instant,
    pub at_ms: u64,
}

/// One Bot API call as the fake saw it.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// Canonical name when known, otherwise as requested.
    pub method: String,
    pub params: Value,
    /// HTTP status answered (200 or the error_code).
    pub status: u16,
    /// The error description when `status != 200`.
    pub error: Option<String>,
    /// The token in the URL: [`FakeConfig::token`] or one of its aliases.
    pub token: String,
    /// Answered by an injected fault ([`FakeTelegram::fail_for`],
    /// [`FakeTelegram::hang_for`]): the call had no effect.
    pub injected: bool,
    /// When the request arrived.
    #[serde(skip)]
    pub at: Instant,
    pub at_ms: u64,
}

/// Aggregate counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counters {
    pub calls_by_method: BTreeMap<String, u64>,
    /// 429 answers given.
    pub too_many_requests: u64,
    /// Sends into a chat before the `retry_after` it was given had passed.
    pub violations: u64,
    /// Long polls terminated by a newer getUpdates (409).
    pub get_updates_conflicts: u64,
    pub updates_enqueued: u64,
    pub updates_confirmed: u64,
    /// Updates dropped because the queue was full.
    pub updates_dropped: u64,
    /// Updates never created because their type was not in allowed_updates.
    pub updates_filtered: u64,
    pub webhook_deliveries: u64,
    pub webhook_failures: u64,
    /// Calls answered with the error of a [`FakeTelegram::fail_for`] window.
    #[serde(default)]
    pub injected_failures: u64,
    /// Calls stalled by a [`FakeTelegram::hang_for`] window.
    #[serde(default)]
    pub injected_hangs: u64,
}

/// One 429 answer.
#[derive(Debug, Clone, Serialize)]
pub struct TooManyRequests {
    pub id: u64,
    pub chat_id: i64,
    pub method: String,
    pub retry_after: u64,
    pub at_ms: u64,
    pub deadline_ms: u64,
    /// The bot sent to this chat again before `deadline_ms`.
    pub violated: bool,
}

/// Time from a user's update becoming available to the bot's copy of it arriving.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub update_id: i64,
    pub from_chat_id: i64,
    pub source_message_id: i32,
    pub chat_id: i64,
    pub message_id: i32,
    pub method: String,
    pub latency: Duration,
}

/// A bot command as in setMyCommands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotCommand {
    pub command: String,
    pub description: String,
}

/// A control action that refers to something that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("message {message_id} not found in chat {chat_id}")]
    MessageNotFound { chat_id: i64, message_id: i32 },
    #[error("message {message_id} in chat {chat_id} was not sent by the user")]
    NotUserMessage { chat_id: i64, message_id: i32 },
    #[error("message {message_id} in chat {chat_id} has no text or caption to edit")]
    NoText { chat_id: i64, message_id: i32 },
}

/// State shared by the server task, the webhook task and every handle.
pub(crate) struct Shared {
    pub cfg: FakeConfig,
    state: Mutex<State>,
    /// Bumped whenever updates, pollers or the webhook change (wakes long polls).
    pub updates: watch::Sender<u64>,
    /// Bumped whenever the bot changes a chat (wakes `wait_for`).
    pub changes: watch::Sender<u64>,
    pub shutdown: watch::Sender<bool>,
    pub http: reqwest::Client,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent enough for a
        // fake (every critical section is short and does not unwind midway by design).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn bump(&self) {
        self.updates.send_modify(|v| *v = v.wrapping_add(1));
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Run `f` on the state, then wake waiters.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.lock());
        self.bump();
        r
    }

    pub fn is_shutdown(&self) -> bool {
        *self.shutdown.borrow()
    }
}

struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// A running fake Telegram server. Cheap to clone; the server stops when the
/// last clone is dropped or on [`FakeTelegram::shutdown`].
#[derive(Clone)]
pub struct FakeTelegram {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for FakeTelegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTelegram")
            .field("addr", &self.inner.addr)
            .finish()
    }
}

impl FakeTelegram {
    /// Bind `cfg.bind` and serve in a background tokio task.
    pub async fn start(cfg: FakeConfig) -> std::io::Result<FakeTelegram> {
        let listener = tokio::net::TcpListener::bind(cfg.bind).await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            state: Mutex::new(State::new(cfg)),
            updates: watch::Sender::new(0),
            changes: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            http,
        });
        tokio::spawn(http::serve(listener, Arc::clone(&shared)));
        tokio::spawn(webhook::run(Arc::clone(&shared)));
        Ok(FakeTelegram {
            inner: Arc::new(Handle { shared, addr }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Base url to give `Bot::set_api_url`, e.g. `http://127.0.0.1:PORT`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }
    pub fn token(&self) -> &str {
        &self.shared().cfg.token
    }
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }
    pub fn bot_id(&self) -> i64 {
        self.shared().cfg.bot_id
    }
    /// Stop serving (also happens when the last handle drops).
    pub fn shutdown(&self) {
        self.shared().shutdown.send_replace(true);
        self.shared().bump();
    }

    // ------------------------------------------------------------ users act

    /// Make the chat with `user` known without sending anything.
    pub fn register_user(&self, user: &TgUser) {
        self.shared().with(|s| s.register(user));
    }

    /// `user` sends a message whose fields are `content` (merged into the Message).
    pub fn send_message(&self, user: &TgUser, content: Value) -> Sent {
        self.shared().with(|s| s.user_message(user, content))
    }
    pub fn send_text(&self, user: &TgUser, text: &str) -> Sent {
        self.send_message(user, json!({ "text": text }))
    }
    pub fn send_text_with_entities(&self, user: &TgUser, text: &str, entities: Value) -> Sent {
        self.send_message(user, json!({ "text": text, "entities": entities }))
    }
    /// A command such as `"/start"` or `"/start ref"`, with its bot_command entity.
    pub fn send_command(&self, user: &TgUser, command: &str) -> Sent {
        self.send_message(
            user,
            json!({ "text": command, "entities": api::command_entities(command) }),
        )
    }
    fn send_media(&self, user: &TgUser, kind: &str, caption: Option<&str>) -> Sent {
        self.shared()
            .with(|s| s.user_media(user, kind, caption, None))
    }
    pub fn send_photo(&self, user: &TgUser, caption: Option<&str>) -> Sent {
        self.send_media(user, "photo", caption)
    }
    pub fn send_video(&self, user: &TgUser, caption: Option<&str>) -> Sent {
        self.send_media(user, "video", caption)
    }
    pub fn send_document(&self, user: &TgUser, caption: Option<&str>) -> Sent {
        self.send_media(user, "document", caption)
    }
    pub fn send_sticker(&self, user: &TgUser) -> Sent {
        self.send_media(user, "sticker", None)
    }
    pub fn send_voice(&self, user: &TgUser) -> Sent {
        self.send_media(user, "voice", None)
    }
    pub fn send_video_note(&self, user: &TgUser) -> Sent {
        self.send_media(user, "video_note", None)
    }
    /// An album of `n` photos sharing one media_group_id, caption on the first part.
    pub fn send_album(&self, user: &TgUser, n: usize, caption: Option<&str>) -> Vec<Sent> {
        self.shared().with(|s| s.user_album(user, n, caption))
    }
    /// A text replying to `reply_to_message_id` in the user's chat (either side's message).
    pub fn reply_text(
        &self,
        user: &TgUser,
        reply_to_message_id: i32,
        text: &str,
    ) -> Result<Sent, ControlError> {
        self.shared()
            .with(|s| s.user_reply(user, json!({ "text": text }), reply_to_message_id))
    }
    /// A command (with its bot_command entity) replying to `reply_to_message_id`.
    pub fn reply_command(
        &self,
        user: &TgUser,
        reply_to_message_id: i32,
        command: &str,
    ) -> Result<Sent, ControlError> {
        let content = json!({ "text": command, "entities": api::command_entities(command) });
        self.shared()
            .with(|s| s.user_reply(user, content, reply_to_message_id))
    }
    /// The user edits the text of their message (an `edited_message` update).
    pub fn edit_text(
        &self,
        user: &TgUser,
        message_id: i32,
        new_text: &str,
    ) -> Result<Sent, ControlError> {
        self.shared()
            .with(|s| s.user_edit(user, message_id, "text", new_text))
    }
    pub fn edit_caption(
        &self,
        user: &TgUser,
        message_id: i32,
        new_caption: &str,
    ) -> Result<Sent, ControlError> {
        self.shared()
            .with(|s| s.user_edit(user, message_id, "caption", new_caption))
    }
    /// The user sets (or with `""` clears) their reaction; returns the update id.
    /// Like Telegram, no update is queued unless `message_reaction` is allowed.
    pub fn react(&self, user: &TgUser, message_id: i32, emoji: &str) -> Result<i64, ControlError> {
        self.shared()
            .with(|s| s.user_react(user, message_id, emoji))
    }
    /// The user presses an inline button with `data` under message `message_id`.
    pub fn press_button(
        &self,
        user: &TgUser,
        message_id: i32,
        data: &str,
    ) -> Result<CallbackSent, ControlError> {
        self.shared()
            .with(|s| s.user_press(user, message_id, data))
            .map(|(update_id, callback_query_id)| CallbackSent {
                update_id,
                callback_query_id,
            })
    }
    /// Queue an arbitrary update; `update_id` is assigned (overwritten if present).
    pub fn push_raw_update(&self, update: Value) -> i64 {
        self.shared().with(|s| s.push_raw(update))
    }
    /// The user blocks the bot: sends answer 403, a `my_chat_member` update is queued.
    pub fn block(&self, user_id: i64) -> Option<i64> {
        self.shared().with(|s| s.block(user_id))
    }
    pub fn unblock(&self, user_id: i64) -> Option<i64> {
        self.shared().with(|s| s.unblock(user_id))
    }
    /// Sends to this user answer 403 "Forbidden: user is deactivated".
    pub fn delete_account(&self, user_id: i64) {
        self.shared().with(|s| {
            s.deactivated.insert(user_id);
        });
    }
    /// The next send to `chat_id` answers 429 with `retry_after_secs`; sends before
    /// that deadline answer 429 too and count as violations.
    pub fn force_429(&self, chat_id: i64, retry_after_secs: u64) {
        self.shared()
            .with(|s| s.force_429(chat_id, retry_after_secs));
    }
    /// For `duration` from now, every Bot API method except getUpdates, getMe
    /// and setMyCommands answers HTTP `status` with Telegram's error body
    /// (`{"ok":false,"error_code":status,"description":...}`) and has no
    /// effect; each such answer is counted in [`Counters::injected_failures`]
    /// and recorded with [`CallRecord::injected`]. A new window replaces an
    /// older one; `Duration::ZERO` ends it.
    pub fn fail_for(&self, duration: Duration, status: u16, description: &str) {
        let until = Instant::now() + duration;
        self.shared().with(|s| {
            s.fail = Some(state::FailWindow {
                until,
                status,
                description: description.to_owned(),
            })
        });
    }
    /// For `duration` from now, the same methods as [`FakeTelegram::fail_for`]
    /// stall: the answer (504, no effect) comes only 20 s after the window
    /// ends, so the bot's HTTP client times out first. A hung call never takes
    /// effect. Counted in [`Counters::injected_hangs`].
    pub fn hang_for(&self, duration: Duration) {
        let until = Instant::now() + duration;
        self.shared().with(|s| s.hang_until = Some(until));
    }
    /// Accept `token` as another token of the same bot from now on (e.g. one
    /// per replica); calls record which token they used.
    pub fn add_token_alias(&self, token: impl Into<String>) {
        let token = token.into();
        self.shared().with(|s| {
            s.aliases.insert(token);
        });
    }
    /// Deliver each webhook update to a random one of `urls` (a load balancer in
    /// front of replicas) instead of the url given to setWebhook. Empty: back to normal.
    pub fn set_webhook_targets(&self, urls: Vec<String>) {
        self.shared().with(|s| s.webhook_targets = urls);
    }
    /// Telegram restarts update ids at a random value after a week without
    /// updates: the next update gets id `next` (may be lower than any before).
    pub fn restart_update_ids(&self, next: i64) {
        self.shared().with(|s| s.restart_update_ids(next));
    }
    /// Forget all chats, updates, calls and counters (update ids keep increasing).
    pub fn reset(&self) {
        self.shared().with(State::reset);
    }

    // ------------------------------------------------------------ inspection

    /// Messages the bot put into `chat_id`, oldest first.
    pub fn received(&self, chat_id: i64) -> Vec<Received> {
        self.shared().lock().received(chat_id)
    }
    /// Every message in the chat (both sides) as Telegram objects, by message id.
    pub fn history(&self, chat_id: i64) -> Vec<Value> {
        self.shared().lock().history(chat_id)
    }
    /// Every recorded Bot API call, oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared().lock().calls.iter().cloned().collect()
    }
    /// Recorded calls of one method (case-insensitive).
    pub fn calls_for(&self, method: &str) -> Vec<CallRecord> {
        let st = self.shared().lock();
        st.calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method))
            .cloned()
            .collect()
    }
    /// Recorded calls made with `token` (the bot's token or an alias).
    pub fn calls_by_token(&self, token: &str) -> Vec<CallRecord> {
        let st = self.shared().lock();
        st.calls
            .iter()
            .filter(|c| c.token == token)
            .cloned()
            .collect()
    }
    pub fn counters(&self) -> Counters {
        self.shared().lock().counters.clone()
    }
    /// Every 429 answered, with whether the bot honoured its retry_after.
    pub fn too_many_requests(&self) -> Vec<TooManyRequests> {
        self.shared().lock().floods.iter().cloned().collect()
    }
    /// Updates queued and not yet confirmed, as Telegram would send them.
    pub fn pending_updates(&self) -> Vec<Value> {
        self.shared()
            .lock()
            .pending
            .iter()
            .map(|p| p.json.clone())
            .collect()
    }
    /// Highest offset a getUpdates call has confirmed with.
    pub fn confirmed_offset(&self) -> i64 {
        self.shared().lock().confirmed_offset
    }
    /// Commands set for the default scope and no language.
    pub fn my_commands(&self) -> Vec<BotCommand> {
        let st = self.shared().lock();
        st.commands
            .get("{\"type\":\"default\"}|")
            .cloned()
            .unwrap_or_default()
    }
    /// The getWebhookInfo result.
    pub fn webhook_info(&self) -> Value {
        self.shared().lock().webhook_info()
    }
    /// The bot's current reaction (the `reaction` array of its last
    /// setMessageReaction) on any message of the chat, user's or bot's.
    pub fn bot_reaction(&self, chat_id: i64, message_id: i32) -> Option<Vec<Value>> {
        let st = self.shared().lock();
        st.message(chat_id, message_id)
            .map(|m| m.bot_reaction.clone())
    }
    /// Parameters of every answerCallbackQuery, oldest first.
    pub fn callback_answers(&self) -> Vec<Value> {
        self.shared().lock().callback_answers.clone()
    }
    /// For every copy/forward whose source was a user update: update-to-copy time.
    pub fn latencies(&self) -> Vec<Latency> {
        self.shared().lock().latencies()
    }

    /// Wait until a message the bot put into `chat_id` matches `pred` (checked
    /// against current content, so edits count). `None` on timeout.
    pub async fn wait_for(
        &self,
        chat_id: i64,
        pred: impl Fn(&Received) -> bool,
        timeout: Duration,
    ) -> Option<Received> {
        let shared = self.shared();
        self.wait_until(timeout, || {
            shared
                .lock()
                .chats
                .get(&chat_id)
                .and_then(|c| c.received.iter().find(|r| pred(r)).cloned())
        })
        .await
    }

    /// Wait until `check` returns `Some`, re-checking whenever the fake's state
    /// changes. `None` on timeout.
    pub async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut rx = self.shared().changes.subscribe();
            if let Some(v) = check() {
                return Some(v);
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return check(); },
                _ = tokio::time::sleep_until(deadline) => return check(),
            }
        }
    }
}
