//! Flood control shared by every replica, in Redis.
//!
//! Telegram limits a bot to about 30 messages a second overall and about one
//! a second per chat (with short bursts), and answers 429 `retry_after` past
//! that. An in-process throttle (teloxide's `Throttle`) believes it owns the
//! whole budget, so N replicas would send N times too much; here the budgets
//! live in Redis and every replica draws from the same ones.
//!
//! The math is GCRA in virtual-scheduling form (`scripts/limiter.lua`): a
//! budget is one number, the time its next message may go. Reserving a slot
//! returns how long to wait, so a sender sleeps once and sends; nobody polls.
//! For relayed messages the reservation is folded into the routing script
//! (no extra round trip); other sends reserve with `scripts/reserve.lua`.
//! A 429 pushes the chat's budget past `retry_after` for every replica
//! (`scripts/freeze.lua`); 429s from several chats within a second push the
//! global budget too. The same file holds the inbound throttle (a flood from
//! one user is dropped with one notice per window).
//!
//! The group limit (20 messages a minute per group) is kept in
//! [`GROUP_INTERVAL_MS`] for completeness: the bot only serves private chats.

use std::time::Duration;

use redis::{RedisResult, Script};

use crate::config::Settings;
use crate::store::Store;

/// The shared Lua functions, prepended to every script that uses them.
pub const LIMITER_LUA: &str = include_str!("scripts/limiter.lua");

/// Telegram's limit for groups (20 messages a minute), unused by private chats.
pub const GROUP_INTERVAL_MS: f64 = 60_000.0 / 20.0;

/// A script that uses the limiter functions.
pub fn script_with_limiter(body: &str) -> Script {
    Script::new(&format!("{LIMITER_LUA}\n{body}"))
}

/// The budgets, as script arguments.
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    pub chat_interval_ms: f64,
    pub chat_burst: u32,
    pub global_interval_ms: f64,
    pub global_burst: u32,
    pub inbound_interval_ms: f64,
    pub inbound_burst: u32,
    pub notice_window_secs: u64,
    pub freeze_all_after: u32,
}

impl Budgets {
    pub fn from_settings(s: &Settings) -> Budgets {
        Budgets {
            chat_interval_ms: 1000.0 / s.tg_chat_rate,
            chat_burst: s.tg_chat_burst,
            global_interval_ms: 1000.0 / s.tg_global_rate,
            // A twentieth of a second's worth: smooth, so Telegram sees no spikes.
            global_burst: ((s.tg_global_rate / 20.0).floor() as u32).max(1),
            inbound_interval_ms: 1000.0 / s.inbound_rate,
            inbound_burst: s.inbound_burst,
            notice_window_secs: s.inbound_notice_secs,
            freeze_all_after: 3,
        }
    }

    /// Arguments `chat interval, chat burst, global interval, global burst`.
    pub fn outbound_args(&self) -> [String; 4] {
        [
            format!("{:.3}", self.chat_interval_ms),
            self.chat_burst.to_string(),
            format!("{:.3}", self.global_interval_ms),
            self.global_burst.to_string(),
        ]
    }
}

/// Reserves and freezes send budgets.
pub struct Limiter {
    store: Store,
    budgets: Budgets,
    reserve: Script,
    freeze: Script,
}

impl Limiter {
    pub fn new(store: Store, settings: &Settings) -> Limiter {
        Limiter {
            store,
            budgets: Budgets::from_settings(settings),
            reserve: script_with_limiter(include_str!("scripts/reserve.lua")),
            freeze: script_with_limiter(include_str!("scripts/freeze.lua")),
        }
    }

    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Reserves `n` sends to `chat`; returns how long to wait before sending.
    pub async fn reserve(&self, chat: i64, n: u32) -> RedisResult<Duration> {
        let mut inv = self.reserve.prepare_invoke();
        inv.arg(self.store.keys().base()).arg(chat).arg(n);
        for a in self.budgets.outbound_args() {
            inv.arg(a);
        }
        let wait: i64 = inv.invoke_async(&mut self.store.conn()).await?;
        Ok(Duration::from_millis(wait.max(0) as u64))
    }

    /// Telegram said `retry_after` for `chat`: freeze it for every replica.
    /// Returns true when the global budget was frozen too.
    pub async fn freeze(&self, chat: i64, retry_after: Duration) -> RedisResult<bool> {
        let frozen: i64 = self
            .freeze
            .arg(self.store.keys().base())
            .arg(chat)
            .arg(retry_after.as_millis() as u64)
            .arg(self.budgets.freeze_all_after)
            .invoke_async(&mut self.store.conn())
            .await?;
        Ok(frozen == 1)
    }
}
