//! The chat service: matching, leaving, routing, message maps, timers,
//! albums and settings, with this deployment's timeouts and budgets.
//!
//! Every state change is one Lua script run by the [`Store`], so two replicas
//! handling two users at the same moment can never pair someone twice, lose
//! someone from the queue, or leave half a pair chatting. Handlers call these
//! methods and render the typed outcome ([`crate::domain`]); nothing here
//! talks to Telegram.

use std::time::Duration;

use crate::config::{LinkPolicy, Settings};
use crate::domain::{
    AlbumAdd, AlbumPart, Budgets, ChatId, CopyPair, Erased, Lang, LeaveOutcome, MediaMode,
    MessageKind, Press, RelayPolicy, Route, SearchOutcome, Setting, Traffic, UserSettings,
    UserView,
};
use crate::keys::partition_of;
use crate::store::chat::{RouteArgs, SearchArgs, SweepArgs};
use crate::store::{Store, StoreResult};

/// Message-id maps live this long (replies and edits work for about 48 h).
pub const MAP_TTL_SECS: u64 = 48 * 3600;
/// User hashes expire this long after their last search, message or change.
pub const USER_TTL_SECS: u64 = 30 * 86_400;
/// Queue entries looked at per search (stale entries are dropped on the way).
const SCAN: u32 = 500;
/// Timers fired per kind and sweep.
const SWEEP_LIMIT: u32 = 200;
/// Longest-waiting queued users retried for a match per sweep (at most one
/// sweep a second does it), and the queue entries looked at for each.
const RETRY_QUEUED: u32 = 5;
const RETRY_SCAN: u32 = 100;

/// The chat service; cheap to share.
pub struct ChatService {
    store: Store,
    budgets: Budgets,
    search_timeout_ms: u64,
    idle_timeout_ms: u64,
    cooldown_secs: u64,
    album_window_ms: u64,
    partitions: u32,
    rules_version: u32,
    relay: RelayPolicy,
    link_policy: LinkPolicy,
    link_hold_messages: u64,
    report_retention_days: u64,
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
            partitions: settings.partitions,
            rules_version: settings.rules_version,
            relay: RelayPolicy::from_settings(settings),
            link_policy: settings.link_policy,
            link_hold_messages: settings.link_hold_messages,
            report_retention_days: settings.report_retention.as_secs() / 86_400,
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
            search_timeout_ms: self.search_timeout_ms,
            idle_timeout_ms: self.idle_timeout_ms,
            scan: SCAN,
            user_ttl_secs: USER_TTL_SECS,
            partition: partition_of(user, self.partitions),
            rules_version: self.rules_version,
        };
        self.store.search(user, tg, &args).await
    }

    /// /deletedata: ends the user's chat or search and erases everything
    /// stored about them (see docs/redis.md, "Erasing a user").
    pub async fn erase(&self, user: i64, tg: Option<Lang>) -> StoreResult<Erased> {
        self.store.erase_user(user, tg).await
    }

    /// What to do with a link in the chat's `nth` new message (0: not a
    /// counted message, such as an album: the policy applies).
    pub fn link_policy(&self, nth: u64) -> LinkPolicy {
        if nth <= self.link_hold_messages {
            self.link_policy
        } else {
            LinkPolicy::Allow
        }
    }

    /// Holds `from`'s message for `to` until `to` taps Show.
    pub async fn hold(
        &self,
        to: i64,
        from: i64,
        message: i32,
        chat: ChatId,
        protect: bool,
    ) -> StoreResult<()> {
        self.store.hold(to, from, message, chat, protect).await
    }

    /// Takes a message held for `to` out, once: its chat and protect flag.
    pub async fn take_held(
        &self,
        to: i64,
        from: i64,
        message: i32,
    ) -> StoreResult<Option<(ChatId, bool)>> {
        self.store.take_held(to, from, message).await
    }

    /// Whether messages of `kind` may be relayed (`RELAY_KINDS`).
    pub fn relay_allowed(&self, kind: MessageKind) -> bool {
        self.relay.allows(kind)
    }

    /// The rules version users accept before searching (0: none asked).
    /// Days reports and bans are kept (`REPORT_RETENTION`), for `/privacy`.
    pub fn report_retention_days(&self) -> u64 {
        self.report_retention_days
    }

    pub fn rules_version(&self) -> u32 {
        self.rules_version
    }

    /// Records acceptance of the rules of `version`; false (nothing stored)
    /// when that is not the current version (a button under an old prompt,
    /// or forged data).
    pub async fn accept_rules(&self, user: i64, version: u32) -> StoreResult<bool> {
        if version == 0 || version != self.rules_version {
            return Ok(false);
        }
        self.store
            .accept_rules(user, version, USER_TTL_SECS)
            .await?;
        Ok(true)
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
        let args = RouteArgs {
            idle_timeout_ms: self.idle_timeout_ms,
            user_ttl_secs: USER_TTL_SECS,
            budgets: &self.budgets,
        };
        let partition = partition_of(user, self.partitions);
        self.store
            .route(user, partition, lookup, tg, traffic, &args)
            .await
    }

    /// Takes one Search/Next press made at `at_ms` (the update's own time,
    /// so a burst handled late is still a burst) from the user's budget.
    pub async fn search_press(&self, user: i64, at_ms: u64) -> StoreResult<Press> {
        self.store.search_press(user, at_ms, &self.budgets).await
    }

    /// Whether the user is still in chat `chat` (a chat from before chat
    /// ids existed, 0, is not checked).
    pub async fn in_chat(&self, user: i64, chat: ChatId) -> StoreResult<bool> {
        if chat == 0 {
            return Ok(true);
        }
        self.store.in_chat(user, chat).await
    }

    /// Remembers each copy both ways (for replies, edits and reactions).
    pub async fn remember(&self, pairs: &[CopyPair]) -> StoreResult<()> {
        self.store.remember(pairs, false, MAP_TTL_SECS).await
    }

    /// Remembers the copies of one album, and for each of its originals the
    /// ids of all of them (`/del` deletes an album whole).
    pub async fn remember_album(&self, pairs: &[CopyPair]) -> StoreResult<()> {
        self.store.remember(pairs, true, MAP_TTL_SECS).await
    }

    /// The partner's copies of the album `user`'s `message` went in (empty:
    /// not an album).
    pub async fn album_copies(&self, user: i64, message: i32) -> StoreResult<Vec<i32>> {
        self.store.album_copies(user, message).await
    }

    /// Adds an album part, recording the chat it was sent in; `Some(lang)`
    /// when the user is not chatting.
    pub async fn album_add(
        &self,
        user: i64,
        group: &str,
        message_id: i32,
        tg: Lang,
        visual: bool,
    ) -> StoreResult<AlbumAdd> {
        self.store
            .album_add(user, group, message_id, tg, visual, self.album_window_ms)
            .await
    }

    /// Takes the user's gathered album parts out, in arrival order; each
    /// part is returned by exactly one call.
    pub async fn album_take(&self, user: i64) -> StoreResult<Vec<AlbumPart>> {
        self.store.album_take(user).await
    }

    /// Fires every due timer (each on exactly one replica): the state change
    /// and an event for each user to tell, into their partition stream.
    /// Also pairs compatible users left waiting in the queue. Returns the
    /// number of events queued.
    pub async fn sweep(&self) -> StoreResult<u64> {
        let args = SweepArgs {
            limit: SWEEP_LIMIT,
            cooldown_secs: self.cooldown_secs,
            idle_timeout_ms: self.idle_timeout_ms,
            user_ttl_secs: USER_TTL_SECS,
            retry_queued: RETRY_QUEUED,
            scan: RETRY_SCAN,
        };
        self.store.sweep_timers(&args).await
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
    /// Sets how the user receives strangers' photos, videos and animations.
    pub async fn set_media(&self, user: i64, mode: MediaMode) -> StoreResult<()> {
        self.store.set_media(user, mode, USER_TTL_SECS).await
    }

    pub async fn set_setting(&self, user: i64, setting: Setting, value: bool) -> StoreResult<()> {
        self.store
            .set_setting(user, setting, value, USER_TTL_SECS)
            .await
    }
}
