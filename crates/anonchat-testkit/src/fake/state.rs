//! The fake's whole world, guarded by one mutex in [`super::Shared`].
//!
//! Every operation is a short synchronous critical section: no `.await` while the
//! lock is held, so a std `Mutex` is the right tool (as in mini-redis' `db.rs`).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::content::{self, private_chat_json, user_json};
use super::{
    BotCommand, CallRecord, ControlError, Counters, Edit, FakeConfig, Latency, Received, Sent,
    TgUser, TooManyRequests,
};

/// Update types Telegram leaves out when `allowed_updates` is empty or never set.
const EXCLUDED_BY_DEFAULT: &[&str] = &["chat_member", "message_reaction", "message_reaction_count"];

/// Cap on answered-or-not callback query ids we remember.
const MAX_CALLBACKS: usize = 10_000;

/// Error answered to a Bot API call: serialized as Telegram's error object.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: u16,
    pub description: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: u16, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
        }
    }
    pub fn bad(what: impl AsRef<str>) -> Self {
        Self::new(400, format!("Bad Request: {}", what.as_ref()))
    }
    pub fn forbidden(what: &str) -> Self {
        Self::new(403, format!("Forbidden: {what}"))
    }
    pub fn too_many(secs: u64) -> Self {
        Self {
            code: 429,
            description: format!("Too Many Requests: retry after {secs}"),
            retry_after: Some(secs),
        }
    }
    pub fn to_json(&self) -> Value {
        let mut v = json!({"ok": false, "error_code": self.code, "description": self.description});
        if let Some(secs) = self.retry_after {
            v["parameters"] = json!({ "retry_after": secs });
        }
        v
    }
}

pub(crate) type ApiResult = Result<Value, ApiError>;

pub(crate) struct Pending {
    pub update_id: i64,
    pub kind: String,
    pub json: Value,
}

pub(crate) struct Webhook {
    pub url: String,
    pub secret: Option<String>,
    pub max_connections: u32,
}

pub(crate) struct StoredMessage {
    pub json: Value,
    pub from_bot: bool,
    /// For messages the user sent: the update that carried them and when it became available.
    pub update: Option<(i64, Instant)>,
    /// The user's current reaction on this message (for old_reaction in updates).
    pub user_reaction: Vec<Value>,
    /// The bot's current reaction (setMessageReaction) on this message.
    pub bot_reaction: Vec<Value>,
}

pub(crate) struct ChatState {
    pub next_message_id: i32,
    pub messages: BTreeMap<i32, StoredMessage>,
    pub received: VecDeque<Received>,
}

/// An injected failure window ([`super::FakeTelegram::fail_for`]).
pub(crate) struct FailWindow {
    pub until: Instant,
    pub status: u16,
    pub description: String,
}

/// What an injected fault does to one call.
pub(crate) enum Injected {
    Fail(ApiError),
    /// Stall until this instant, then answer the error.
    Hang(Instant, ApiError),
}

/// Time a hung call stalls past the end of its window.
const HANG_PAST_WINDOW: Duration = Duration::from_secs(20);

/// Methods no injected fault touches (ingest and start-up keep working).
const FAULT_EXEMPT: &[&str] = &["getUpdates", "getMe", "setMyCommands"];

struct RetryWindow {
    deadline: Instant,
    record_id: u64,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            last: now,
        }
    }
    fn refill(&mut self, rate: f64, burst: u32, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(f64::from(burst.max(1)));
        self.last = now;
    }
    /// Seconds until one token is available (0 when one is available now).
    fn wait(&self, rate: f64) -> f64 {
        if self.tokens >= 1.0 {
            0.0
        } else if rate <= 0.0 {
            60.0
        } else {
            (1.0 - self.tokens) / rate
        }
    }
}

pub(crate) struct State {
    pub cfg: FakeConfig,
    pub started: Instant,
    pub next_update_id: i64,
    pub pending: VecDeque<Pending>,
    /// As last set by getUpdates/setWebhook; empty means Telegram's default.
    pub allowed: Vec<String>,
    pub confirmed_offset: i64,
    /// Incremented by every getUpdates; a long poll whose epoch is stale lost to a newer one.
    pub poll_epoch: u64,
    pub webhook: Option<Webhook>,
    pub webhook_targets: Vec<String>,
    pub last_webhook_error: Option<(i64, String)>,
    pub users: HashMap<i64, TgUser>,
    pub chats: HashMap<i64, ChatState>,
    pub blocked: HashSet<i64>,
    pub deactivated: HashSet<i64>,
    pub commands: BTreeMap<String, Vec<BotCommand>>,
    pub calls: VecDeque<CallRecord>,
    pub counters: Counters,
    pub floods: VecDeque<TooManyRequests>,
    windows: HashMap<i64, RetryWindow>,
    forced: HashMap<i64, u64>,
    buckets: HashMap<i64, Bucket>,
    global_bucket: Bucket,
    pub callbacks: VecDeque<String>,
    pub callback_answers: Vec<Value>,
    pub seq: u64,
    /// Tokens accepted besides `cfg.token`.
    pub aliases: HashSet<String>,
    pub fail: Option<FailWindow>,
    pub hang_until: Option<Instant>,
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl State {
    pub fn new(cfg: FakeConfig) -> Self {
        let now = Instant::now();
        let burst = cfg.flood.as_ref().map(|f| f.global_burst).unwrap_or(1);
        let cfg_aliases = cfg.token_aliases.iter().cloned().collect();
        Self {
            cfg,
            started: now,
            next_update_id: 100_000_001,
            pending: VecDeque::new(),
            allowed: Vec::new(),
            confirmed_offset: 0,
            poll_epoch: 0,
            webhook: None,
            webhook_targets: Vec::new(),
            last_webhook_error: None,
            users: HashMap::new(),
            chats: HashMap::new(),
            blocked: HashSet::new(),
            deactivated: HashSet::new(),
            commands: BTreeMap::new(),
            calls: VecDeque::new(),
            counters: Counters::default(),
            floods: VecDeque::new(),
            windows: HashMap::new(),
            forced: HashMap::new(),
            buckets: HashMap::new(),
            global_bucket: Bucket::full(burst, now),
            callbacks: VecDeque::new(),
            callback_answers: Vec::new(),
            seq: 0,
            aliases: cfg_aliases,
            fail: None,
            hang_until: None,
        }
    }

    /// Forget everything except the update id sequence and the poll epoch, so a
    /// poller that outlives the reset never sees ids go backwards, and the
    /// token aliases (the bot's identity, not its state).
    pub fn reset(&mut self) {
        let next = self.next_update_id;
        let epoch = self.poll_epoch;
        let seq = self.seq;
        let aliases = std::mem::take(&mut self.aliases);
        *self = State::new(self.cfg.clone());
        self.next_update_id = next;
        self.poll_epoch = epoch;
        self.seq = seq;
        self.aliases = aliases;
    }

    /// Whether `token` is the bot's token or one of its aliases.
    pub fn accepts(&self, token: &str) -> bool {
        token == self.cfg.token || self.aliases.contains(token)
    }

    /// The injected fault that answers a call of `method` arriving at `now`,
    /// if a window is open (counted here).
    pub fn injected_fault(&mut self, method: &str, now: Instant) -> Option<Injected> {
        if FAULT_EXEMPT.contains(&method) {
            return None;
        }
        if let Some(f) = self.fail.as_ref().filter(|f| now < f.until) {
            let err = ApiError::new(f.status, f.description.clone());
            self.counters.injected_failures += 1;
            return Some(Injected::Fail(err));
        }
        if let Some(until) = self.hang_until.filter(|u| now < *u) {
            self.counters.injected_hangs += 1;
            return Some(Injected::Hang(
                until + HANG_PAST_WINDOW,
                ApiError::new(504, "Gateway Timeout"),
            ));
        }
        None
    }

    pub fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_millis() as u64
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn bot_user_json(&self) -> Value {
        json!({
            "id": self.cfg.bot_id,
            "is_bot": true,
            "first_name": self.cfg.bot_first_name,
            "username": self.cfg.bot_username,
        })
    }

    // ---------------------------------------------------------------- updates

    pub fn is_allowed(&self, kind: &str) -> bool {
        if self.allowed.is_empty() {
            !EXCLUDED_BY_DEFAULT.contains(&kind)
        } else {
            self.allowed.iter().any(|a| a == kind)
        }
    }

    /// Assign the next update id and queue the update (unless its type is not
    /// allowed, in which case Telegram never creates it). Returns the id.
    pub fn enqueue(&mut self, kind: &str, payload: Value) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        if !self.is_allowed(kind) {
            self.counters.updates_filtered += 1;
            return id;
        }
        let json = json!({ "update_id": id, kind: payload });
        self.push_pending(Pending {
            update_id: id,
            kind: kind.to_owned(),
            json,
        });
        id
    }

    pub fn push_pending(&mut self, p: Pending) {
        while self.pending.len() >= self.cfg.max_pending_updates.max(1) {
            self.pending.pop_front();
            self.counters.updates_dropped += 1;
        }
        self.counters.updates_enqueued += 1;
        self.pending.push_back(p);
    }

    /// `offset` semantics of getUpdates.
    pub fn apply_offset(&mut self, offset: i64) {
        if offset > 0 {
            let before = self.pending.len();
            self.pending.retain(|p| p.update_id >= offset);
            self.counters.updates_confirmed += (before - self.pending.len()) as u64;
            self.confirmed_offset = self.confirmed_offset.max(offset);
        } else if offset < 0 {
            let keep = offset.unsigned_abs() as usize;
            while self.pending.len() > keep {
                self.pending.pop_front();
                self.counters.updates_confirmed += 1;
            }
        }
    }

    /// Telegram restarts update ids at a random (possibly lower) value after a
    /// week without updates: the next update created gets id `next`.
    pub fn restart_update_ids(&mut self, next: i64) {
        self.next_update_id = next;
    }

    /// Up to `limit` deliverable updates with an id of at least `offset` (when
    /// positive: like Telegram, a poll never returns what its offset
    /// confirmed, even an update that arrives during the poll), dropping queued
    /// ones whose type is no longer allowed.
    pub fn ready_updates(&mut self, limit: usize, offset: Option<i64>) -> Vec<Value> {
        let min_id = offset.filter(|o| *o > 0).unwrap_or(i64::MIN);
        let allowed: Vec<bool> = self
            .pending
            .iter()
            .map(|p| self.is_allowed(&p.kind))
            .collect();
        if allowed.iter().any(|a| !a) {
            let mut i = 0;
            self.pending.retain(|_| {
                let keep = allowed[i];
                i += 1;
                keep
            });
        }
        self.pending
            .iter()
            .filter(|p| p.update_id >= min_id)
            .take(limit)
            .map(|p| p.json.clone())
            .collect()
    }

    // ---------------------------------------------------------------- chats

    pub fn register(&mut self, user: &TgUser) {
        self.users.insert(user.id, user.clone());
        self.chats.entry(user.id).or_insert_with(|| ChatState {
            next_message_id: 1,
            messages: BTreeMap::new(),
            received: VecDeque::new(),
        });
    }

    pub fn chat_json(&self, chat_id: i64) -> Value {
        match self.users.get(&chat_id) {
            Some(u) => private_chat_json(u),
            None => json!({"id": chat_id, "type": "private", "first_name": "User"}),
        }
    }

    pub fn message(&self, chat_id: i64, message_id: i32) -> Option<&StoredMessage> {
        self.chats.get(&chat_id)?.messages.get(&message_id)
    }

    pub fn message_mut(&mut self, chat_id: i64, message_id: i32) -> Option<&mut StoredMessage> {
        self.chats.get_mut(&chat_id)?.messages.get_mut(&message_id)
    }

    pub fn received_mut(&mut self, chat_id: i64, message_id: i32) -> Option<&mut Received> {
        self.chats
            .get_mut(&chat_id)?
            .received
            .iter_mut()
            .rev()
            .find(|r| r.message_id == message_id)
    }

    fn alloc_message_id(&mut self, chat_id: i64) -> i32 {
        match self.chats.get_mut(&chat_id) {
            Some(c) => {
                let id = c.next_message_id;
                c.next_message_id += 1;
                id
            }
            None => 0,
        }
    }

    fn store(&mut self, chat_id: i64, id: i32, msg: StoredMessage) {
        let cap = self.cfg.max_messages_per_chat.max(1);
        if let Some(c) = self.chats.get_mut(&chat_id) {
            c.messages.insert(id, msg);
            while c.messages.len() > cap {
                c.messages.pop_first();
            }
        }
    }

    /// Build, store and return a message the bot sends into `chat_id`.
    #[allow(clippy::too_many_arguments)]
    pub fn store_bot_message(
        &mut self,
        chat_id: i64,
        method: &str,
        params: &Value,
        content: Map<String, Value>,
        source: Option<(i64, i32)>,
        reply: Option<Value>,
        now: Instant,
    ) -> Value {
        let id = self.alloc_message_id(chat_id);
        let mut m = Map::new();
        m.insert("message_id".into(), json!(id));
        m.insert("from".into(), self.bot_user_json());
        m.insert("chat".into(), self.chat_json(chat_id));
        m.insert("date".into(), json!(unix_now()));
        m.extend(content);
        let reply_to = reply
            .as_ref()
            .and_then(|r| r.get("message_id"))
            .and_then(Value::as_i64)
            .map(|v| v as i32);
        if let Some(r) = reply {
            m.insert("reply_to_message".into(), r);
        }
        if let Some(markup) = params.get("reply_markup").and_then(inline_markup) {
            m.insert("reply_markup".into(), markup);
        }
        if truthy(params.get("protect_content")) {
            m.insert("has_protected_content".into(), json!(true));
        }
        let json = Value::Object(m);
        self.store(
            chat_id,
            id,
            StoredMessage {
                json: json.clone(),
                from_bot: true,
                update: None,
                user_reaction: Vec::new(),
                bot_reaction: Vec::new(),
            },
        );
        let received = Received {
            chat_id,
            message_id: id,
            method: method.to_owned(),
            params: params.clone(),
            content: json.clone(),
            source,
            reply_to,
            edits: Vec::new(),
            reactions: Vec::new(),
            deleted: false,
            at: now,
            at_ms: self.ms(now),
        };
        let cap = self.cfg.max_messages_per_chat.max(1);
        if let Some(c) = self.chats.get_mut(&chat_id) {
            c.received.push_back(received);
            while c.received.len() > cap {
                c.received.pop_front();
            }
        }
        json
    }

    /// Record an edit of a bot message (store + received list).
    pub fn apply_bot_edit(
        &mut self,
        chat_id: i64,
        message_id: i32,
        method: &str,
        params: &Value,
        json: Value,
        now: Instant,
    ) {
        if let Some(m) = self.message_mut(chat_id, message_id) {
            m.json = json.clone();
        }
        let at_ms = self.ms(now);
        if let Some(r) = self.received_mut(chat_id, message_id) {
            r.content = json.clone();
            r.edits.push(Edit {
                method: method.to_owned(),
                params: params.clone(),
                content: json,
                at: now,
                at_ms,
            });
        }
    }

    // ---------------------------------------------------------------- flood

    pub fn force_429(&mut self, chat_id: i64, secs: u64) {
        self.forced.insert(chat_id, secs.max(1));
    }

    /// Flood control for a method that sends or edits in `chat_id`.
    pub fn flood_check(
        &mut self,
        chat_id: i64,
        method: &str,
        now: Instant,
    ) -> Result<(), ApiError> {
        if let Some(w) = self.windows.get(&chat_id) {
            if now < w.deadline {
                let (deadline, record_id) = (w.deadline, w.record_id);
                self.counters.violations += 1;
                if let Some(r) = self.floods.iter_mut().rev().find(|r| r.id == record_id) {
                    r.violated = true;
                }
                let secs = ceil_secs(deadline.saturating_duration_since(now));
                return Err(self.record_429(chat_id, method, secs, deadline, now));
            }
            self.windows.remove(&chat_id);
        }
        if let Some(secs) = self.forced.remove(&chat_id) {
            let deadline = now + Duration::from_secs(secs);
            return Err(self.record_429(chat_id, method, secs, deadline, now));
        }
        let Some(f) = self.cfg.flood.clone() else {
            return Ok(());
        };
        let chat = self
            .buckets
            .entry(chat_id)
            .or_insert_with(|| Bucket::full(f.per_chat_burst, now));
        chat.refill(f.per_chat_rate, f.per_chat_burst, now);
        let chat_wait = chat.wait(f.per_chat_rate);
        self.global_bucket
            .refill(f.global_rate, f.global_burst, now);
        let global_wait = self.global_bucket.wait(f.global_rate);
        let wait = chat_wait.max(global_wait);
        if wait > 0.0 {
            let secs = (wait.ceil() as u64).max(1);
            let deadline = now + Duration::from_secs(secs);
            return Err(self.record_429(chat_id, method, secs, deadline, now));
        }
        if let Some(b) = self.buckets.get_mut(&chat_id) {
            b.tokens -= 1.0;
        }
        self.global_bucket.tokens -= 1.0;
        Ok(())
    }

    fn record_429(
        &mut self,
        chat_id: i64,
        method: &str,
        secs: u64,
        deadline: Instant,
        now: Instant,
    ) -> ApiError {
        let id = self.next_seq();
        self.counters.too_many_requests += 1;
        let at_ms = self.ms(now);
        let deadline_ms = self.ms(deadline);
        self.floods.push_back(TooManyRequests {
            id,
            chat_id,
            method: method.to_owned(),
            retry_after: secs,
            at_ms,
            deadline_ms,
            violated: false,
        });
        while self.floods.len() > self.cfg.max_recorded_calls.max(1) {
            self.floods.pop_front();
        }
        self.windows.insert(
            chat_id,
            RetryWindow {
                deadline,
                record_id: id,
            },
        );
        ApiError::too_many(secs)
    }

    // ---------------------------------------------------------------- calls

    pub fn record_call(&mut self, rec: CallRecord) {
        *self
            .counters
            .calls_by_method
            .entry(rec.method.clone())
            .or_insert(0) += 1;
        self.calls.push_back(rec);
        while self.calls.len() > self.cfg.max_recorded_calls.max(1) {
            self.calls.pop_front();
        }
    }

    // ---------------------------------------------------------------- user actions

    /// The user sends a message with `content` merged into it.
    pub fn user_message(&mut self, user: &TgUser, content: Value) -> Sent {
        self.user_message_with_reply(user, content, None)
    }

    /// The user replies to `reply_to` (a message of either side in their chat).
    pub fn user_reply(
        &mut self,
        user: &TgUser,
        content: Value,
        reply_to: i32,
    ) -> Result<Sent, ControlError> {
        let reply = self.reply_object(user.id, reply_to)?;
        Ok(self.user_message_with_reply(user, content, Some(reply)))
    }

    fn user_message_with_reply(
        &mut self,
        user: &TgUser,
        content: Value,
        reply: Option<Value>,
    ) -> Sent {
        self.register(user);
        if self.blocked.remove(&user.id) {
            // Writing to a bot you blocked means restarting it: Telegram unblocks first.
            self.enqueue_member_change(user, "kicked", "member");
        }
        let id = self.alloc_message_id(user.id);
        let mut m = Map::new();
        m.insert("message_id".into(), json!(id));
        m.insert("from".into(), user_json(user));
        m.insert("chat".into(), private_chat_json(user));
        m.insert("date".into(), json!(unix_now()));
        if let Value::Object(c) = content {
            m.extend(c);
        }
        if let Some(r) = reply {
            m.insert("reply_to_message".into(), r);
        }
        let json = Value::Object(m);
        let update_id = self.enqueue("message", json.clone());
        self.store(
            user.id,
            id,
            StoredMessage {
                json,
                from_bot: false,
                update: Some((update_id, Instant::now())),
                user_reaction: Vec::new(),
                bot_reaction: Vec::new(),
            },
        );
        Sent {
            update_id,
            message_id: id,
        }
    }

    /// The user sends a media message of `kind` with a fresh file id.
    pub fn user_media(
        &mut self,
        user: &TgUser,
        kind: &str,
        caption: Option<&str>,
        group: Option<&str>,
    ) -> Sent {
        let n = self.next_seq();
        let file_id = format!("AgACAgIAAxkBAAI{kind}{n:08}");
        let mut c = content::media_content(kind, &file_id).unwrap_or_default();
        if let Some(cap) = caption {
            c.insert("caption".into(), json!(cap));
        }
        if let Some(g) = group {
            c.insert("media_group_id".into(), json!(g));
        }
        self.user_message(user, Value::Object(c))
    }

    /// An album of `n` photos sharing one media_group_id, caption on the first part.
    pub fn user_album(&mut self, user: &TgUser, n: usize, caption: Option<&str>) -> Vec<Sent> {
        let group = format!("{}", 13_900_000_000_000_000u64 + self.next_seq());
        (0..n)
            .map(|i| {
                self.user_media(
                    user,
                    "photo",
                    if i == 0 { caption } else { None },
                    Some(&group),
                )
            })
            .collect()
    }

    /// The message as embedded in `reply_to_message` (without its own reply).
    pub fn reply_object(&self, chat_id: i64, message_id: i32) -> Result<Value, ControlError> {
        let mut v = self
            .message(chat_id, message_id)
            .ok_or(ControlError::MessageNotFound {
                chat_id,
                message_id,
            })?
            .json
            .clone();
        if let Value::Object(m) = &mut v {
            m.remove("reply_to_message");
        }
        Ok(v)
    }

    pub fn user_edit(
        &mut self,
        user: &TgUser,
        message_id: i32,
        field: &str,
        value: &str,
    ) -> Result<Sent, ControlError> {
        let chat_id = user.id;
        let stored =
            self.message_mut(chat_id, message_id)
                .ok_or(ControlError::MessageNotFound {
                    chat_id,
                    message_id,
                })?;
        if stored.from_bot {
            return Err(ControlError::NotUserMessage {
                chat_id,
                message_id,
            });
        }
        let Value::Object(m) = &mut stored.json else {
            return Err(ControlError::MessageNotFound {
                chat_id,
                message_id,
            });
        };
        if field == "text" && !m.contains_key("text") {
            return Err(ControlError::NoText {
                chat_id,
                message_id,
            });
        }
        if field == "caption" && !content::CAPTIONED_KEYS.iter().any(|k| m.contains_key(*k)) {
            return Err(ControlError::NoText {
                chat_id,
                message_id,
            });
        }
        m.insert(field.to_owned(), json!(value));
        m.remove(if field == "text" {
            "entities"
        } else {
            "caption_entities"
        });
        m.insert("edit_date".into(), json!(unix_now()));
        let json = stored.json.clone();
        let update_id = self.enqueue("edited_message", json);
        Ok(Sent {
            update_id,
            message_id,
        })
    }

    pub fn user_react(
        &mut self,
        user: &TgUser,
        message_id: i32,
        emoji: &str,
    ) -> Result<i64, ControlError> {
        let chat_id = user.id;
        let new: Vec<Value> = if emoji.is_empty() {
            Vec::new()
        } else {
            vec![json!({"type": "emoji", "emoji": emoji})]
        };
        let stored =
            self.message_mut(chat_id, message_id)
                .ok_or(ControlError::MessageNotFound {
                    chat_id,
                    message_id,
                })?;
        let old = std::mem::replace(&mut stored.user_reaction, new.clone());
        let payload = json!({
            "chat": private_chat_json(user),
            "message_id": message_id,
            "user": user_json(user),
            "date": unix_now(),
            "old_reaction": old,
            "new_reaction": new,
        });
        Ok(self.enqueue("message_reaction", payload))
    }

    pub fn user_press(
        &mut self,
        user: &TgUser,
        message_id: i32,
        data: &str,
    ) -> Result<(i64, String), ControlError> {
        let chat_id = user.id;
        let msg = self.reply_object(chat_id, message_id)?;
        let n = self.next_seq();
        let query_id = format!("{}{:06}", chat_id.unsigned_abs(), n);
        self.callbacks.push_back(query_id.clone());
        while self.callbacks.len() > MAX_CALLBACKS {
            self.callbacks.pop_front();
        }
        let payload = json!({
            "id": query_id,
            "from": user_json(user),
            "message": msg,
            "chat_instance": format!("-{}", chat_id.unsigned_abs().wrapping_mul(7_919).wrapping_add(13)),
            "data": data,
        });
        Ok((self.enqueue("callback_query", payload), query_id))
    }

    pub fn enqueue_member_change(&mut self, user: &TgUser, old: &str, new: &str) -> i64 {
        let bot = self.bot_user_json();
        let member = |status: &str| {
            let mut v = json!({"user": bot.clone(), "status": status});
            if status == "kicked" {
                v["until_date"] = json!(0);
            }
            v
        };
        let payload = json!({
            "chat": private_chat_json(user),
            "from": user_json(user),
            "date": unix_now(),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        });
        self.enqueue("my_chat_member", payload)
    }

    pub fn block(&mut self, user_id: i64) -> Option<i64> {
        let user = self
            .users
            .get(&user_id)
            .cloned()
            .unwrap_or_else(|| TgUser::new(user_id, "User"));
        self.register(&user);
        if self.blocked.insert(user_id) {
            Some(self.enqueue_member_change(&user, "member", "kicked"))
        } else {
            None
        }
    }

    pub fn unblock(&mut self, user_id: i64) -> Option<i64> {
        if !self.blocked.remove(&user_id) {
            return None;
        }
        let user = self.users.get(&user_id).cloned()?;
        Some(self.enqueue_member_change(&user, "kicked", "member"))
    }

    /// Queue an arbitrary update, assigning its update_id.
    pub fn push_raw(&mut self, mut update: Value) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        let kind = update
            .as_object()
            .and_then(|m| m.keys().find(|k| *k != "update_id").cloned())
            .unwrap_or_default();
        if let Value::Object(m) = &mut update {
            m.insert("update_id".into(), json!(id));
        }
        self.push_pending(Pending {
            update_id: id,
            kind,
            json: update,
        });
        id
    }

    // ---------------------------------------------------------------- reading

    pub fn received(&self, chat_id: i64) -> Vec<Received> {
        self.chats
            .get(&chat_id)
            .map(|c| c.received.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn history(&self, chat_id: i64) -> Vec<Value> {
        self.chats
            .get(&chat_id)
            .map(|c| c.messages.values().map(|m| m.json.clone()).collect())
            .unwrap_or_default()
    }

    pub fn latencies(&self) -> Vec<Latency> {
        let mut out = Vec::new();
        for (chat_id, chat) in &self.chats {
            for r in &chat.received {
                let Some((from_chat, from_id)) = r.source else {
                    continue;
                };
                let Some((update_id, at)) = self.message(from_chat, from_id).and_then(|m| m.update)
                else {
                    continue;
                };
                out.push(Latency {
                    update_id,
                    from_chat_id: from_chat,
                    source_message_id: from_id,
                    chat_id: *chat_id,
                    message_id: r.message_id,
                    method: r.method.clone(),
                    latency: r.at.saturating_duration_since(at),
                });
            }
        }
        out.sort_by_key(|l| l.update_id);
        out
    }

    pub fn webhook_info(&self) -> Value {
        let mut v = json!({
            "url": self.webhook.as_ref().map(|w| w.url.clone()).unwrap_or_default(),
            "has_custom_certificate": false,
            "pending_update_count": self.pending.len(),
        });
        if let Some(w) = &self.webhook {
            v["max_connections"] = json!(w.max_connections);
            if !self.allowed.is_empty() {
                v["allowed_updates"] = json!(self.allowed);
            }
            if let Some((date, msg)) = &self.last_webhook_error {
                v["last_error_date"] = json!(date);
                v["last_error_message"] = json!(msg);
            }
        }
        v
    }
}

/// Whole seconds, rounded up, at least 1.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

pub(crate) fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1" || s == "True",
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
        _ => false,
    }
}

/// Telegram shows `reply_markup` on a message only for inline keyboards.
pub(crate) fn inline_markup(v: &Value) -> Option<Value> {
    let v = match v {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        other => other.clone(),
    };
    let rows = v.get("inline_keyboard")?.as_array()?;
    if rows.is_empty() {
        return None;
    }
    Some(json!({ "inline_keyboard": rows }))
}
