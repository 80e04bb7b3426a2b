//! Flood control shared by every replica, in Redis.
//!
//! Telegram limits a bot to about 30 messages a second overall and about one
//! a second per chat (with short bursts), and answers 429 `retry_after` past
//! that. An in-process throttle (teloxide's `Throttle`) believes it owns the
//! whole budget, so N replicas would send N times too much; here the budgets
//! live in Redis and every replica draws from the same ones.
//!
//! The math is GCRA in virtual-scheduling form (the shared functions of
//! `scripts/lib.lua`): a budget is one number, the time its next message may
//! go. Reserving a slot returns how long to wait, so a sender sleeps once and
//! sends; nobody polls. For relayed messages the reservation is folded into
//! the routing script (no extra round trip), and only for a send that will
//! happen; a relay whose slot is further away than `MAX_SEND_WAIT` books
//! nothing and is dropped. A 429 pushes the chat's budget far enough past
//! `retry_after` that GCRA's burst cannot start a send before it, for every
//! replica; while frozen, the chat's sends book the global budget at once
//! rather than at their late slot, so other chats are not held up. 429s from
//! several chats within a second push the global budget too. The inbound
//! throttle (a flood from one user is dropped with one notice per window)
//! lives in the routing script; Search/Next have their own budget.

use std::time::Duration;

use crate::config::Settings;
use crate::domain::Budgets;
use crate::store::{Store, StoreResult};

/// Reserves and freezes send budgets.
pub struct Limiter {
    store: Store,
    budgets: Budgets,
}

impl Limiter {
    pub fn new(store: Store, settings: &Settings) -> Limiter {
        Limiter {
            store,
            budgets: Budgets::from_settings(settings),
        }
    }

    /// Reserves `n` sends to `chat`; returns how long to wait before sending.
    pub async fn reserve(&self, chat: i64, n: u32) -> StoreResult<Duration> {
        self.store.reserve_sends(chat, n, &self.budgets).await
    }

    /// Telegram said `retry_after` for `chat`: freeze it for every replica.
    /// Returns true when the global budget was frozen too.
    pub async fn freeze(&self, chat: i64, retry_after: Duration) -> StoreResult<bool> {
        self.store.freeze(chat, retry_after, &self.budgets).await
    }
}
