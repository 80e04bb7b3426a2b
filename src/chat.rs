//! The chat service: matching, leaving, routing, message maps, timers,
//! albums and settings, with this deployment's timeouts and budgets.
//!
//! Every state change is one Lua script run by the [`Store`], so two replicas
//! handling two users at the same moment can never pair someone twice, lose
//! someone from the queue, or leave half a pair chatting. Handlers call these
//! methods and render the typed outcome ([`crate::domain`]); nothing here
//! talks to Telegram.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Settings;
use crate::domain::{
    Budgets, CopyPair, Due, Lang, LeaveOutcome, Route, SearchOutcome, Setting, Traffic,
    UserSettings, UserView,
};
use crate::store::chat::SearchArgs;
use crate::store::{Store, StoreResult};

/// Message-id maps live this long (replies and edits work for about 48 h).
pub const MAP_TTL_SECS: u64 = 48 * 3600;
/// User hashes expire this long after their last change.
pub const USER_TTL_SECS: u64 = 30 * 86_400;
/// Queue entries looked at per search (stale entries are dropped on the way).
const SCAN: u32 = 500;
/// Timers fired per kind and sweep.
const SWEEP_LIMIT: u32 = 200;
/// A popped album is re-armed this far ahead until it is confirmed relayed,
/// so a replica dying mid-relay does not lose it.
const ALBUM_RETRY_MS: u64 = 30_000;

/// The chat service; cheap to share.
pub struct ChatService {
    store: Store,
    budgets: Budgets,
    search_timeout_ms: u64,
    idle_timeout_ms: u64,
    cooldown_secs: u64,
    album_window_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ChatService {
    pub fn new(store: Store, settings: &Settings) -> ChatService {
        ChatService {
            store,
            budgets: Budgets::from_settings(settings),
            search_timeout_ms: settings.search_timeout.as_millis() as u64,
            idle_timeout_ms: settings.chat_idle_timeout.as_millis() as u64,
            cooldown_secs: settings.rejoin_cooldown.as_secs(),
            album_window_ms: settings.album_window.as_millis() as u64,
        }
    }

    pub fn search_timeout(&self) -> Duration {
        Duration::from_millis(self.search_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// Search: pair with the longest-waiting compatible user, or queue.
    pub async fn search(&self, user: i64, tg: Lang) -> StoreResult<SearchOutcome> {
        let args = SearchArgs {
            now_ms: now_ms(),
            search_timeout_ms: self.search_timeout_ms,
            idle_timeout_ms: self.idle_timeout_ms,
            scan: SCAN,
            user_ttl_secs: USER_TTL_SECS,
        };
        self.store.search(user, tg, &args).await
    }

    /// Leave the chat (both sides at once) or the queue.
    pub async fn leave(&self, user: i64, tg: Option<Lang>) -> StoreResult<LeaveOutcome> {
        self.store.leave(user, tg, self.cooldown_secs, false).await
    }

    /// Leave the chat (both sides at once); a searching user keeps searching.
    pub async fn leave_chat(&self, user: i64, tg: Option<Lang>) -> StoreResult<LeaveOutcome> {
        self.store.leave(user, tg, self.cooldown_secs, true).await
    }

    /// Where a message goes; `lookup` is a message id in the user's chat to
    /// translate into the partner's (reply target, edited or reacted message).
    /// Reserves the send slots and applies the inbound throttle in the same call.
    pub async fn route(
        &self,
        user: i64,
        lookup: Option<i32>,
        tg: Option<Lang>,
        traffic: Traffic,
    ) -> StoreResult<Route> {
        self.store
            .route(
                user,
                lookup,
                tg,
                traffic,
                self.idle_timeout_ms,
                &self.budgets,
            )
            .await
    }

    /// Remembers each copy both ways (for replies, edits and reactions).
    pub async fn remember(&self, pairs: &[CopyPair]) -> StoreResult<()> {
        self.store.remember(pairs, MAP_TTL_SECS).await
    }

    /// Adds an album part; `Some(lang)` when the user is not chatting.
    pub async fn album_add(
        &self,
        user: i64,
        group: &str,
        message_id: i32,
        tg: Lang,
    ) -> StoreResult<Option<Lang>> {
        self.store
            .album_add(user, group, message_id, tg, now_ms(), self.album_window_ms)
            .await
    }

    /// Forgets an album once relayed (or given up).
    pub async fn album_done(&self, user: i64, group: &str) -> StoreResult<()> {
        self.store.album_done(user, group).await
    }

    /// Pops every due timer (each fires on exactly one replica).
    pub async fn pop_due(&self) -> StoreResult<Vec<Due>> {
        self.store
            .pop_due(now_ms(), SWEEP_LIMIT, self.cooldown_secs, ALBUM_RETRY_MS)
            .await
    }

    /// Sets the language chosen with /language.
    pub async fn set_language(&self, user: i64, lang: Lang) -> StoreResult<()> {
        self.store.set_language(user, lang, USER_TTL_SECS).await
    }

    /// The user's state and reply language.
    pub async fn user_view(&self, user: i64, tg: Lang) -> StoreResult<UserView> {
        self.store.user_view(user, tg).await
    }

    /// Current values of the boolean settings.
    pub async fn settings(&self, user: i64) -> StoreResult<UserSettings> {
        self.store.user_settings(user).await
    }

    /// Sets one boolean setting (idempotent).
    pub async fn set_setting(&self, user: i64, setting: Setting, value: bool) -> StoreResult<()> {
        self.store
            .set_setting(user, setting, value, USER_TTL_SECS)
            .await
    }
}
