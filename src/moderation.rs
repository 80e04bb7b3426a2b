//! The moderation service: blocks, reports, the moderation queue's
//! recipients, admins' decisions and bans, with this deployment's rules.
//!
//! Like the chat service, every change is one script run by the [`Store`]:
//! a report blocks, dedupes, counts, rate-limits and may suspend in one call,
//! so a button handled twice (at-least-once delivery) counts once, and a
//! forged button can only name the presser's own chat (the partner comes
//! from Redis, never from callback data). Admins see anonymous ids: random
//! ids kept in Redis next to the user, never Telegram identities. Nothing
//! here talks to Telegram; handlers render the typed outcomes.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Settings;
use crate::domain::{
    AdminAction, AdminOutcome, BlockOutcome, ChatId, DecideOutcome, Decision, Lang, Reason,
    ReportOutcome,
};
use crate::store::moderation::ReportArgs;
use crate::store::{Store, StoreResult};

/// The moderation service; cheap to share.
pub struct ModerationService {
    store: Store,
    admins: Vec<i64>,
    moderation_chat: Option<i64>,
    cooldown_secs: u64,
    evidence: u32,
    retention_secs: u64,
    per_hour: u32,
    suspend_reporters: u32,
    suspend_window_ms: u64,
}

/// A fresh random anonymous id such as `u7f3a9c2e41`: 40 random bits from
/// the standard library's randomly keyed hasher (no Telegram id in it).
fn new_anon_id() -> String {
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    format!("u{:010x}", h.finish() & 0xff_ffff_ffff)
}

impl ModerationService {
    pub fn new(store: Store, settings: &Settings) -> ModerationService {
        ModerationService {
            store,
            admins: settings.admin_ids.clone(),
            moderation_chat: settings.moderation_chat_id,
            cooldown_secs: settings.rejoin_cooldown.as_secs(),
            evidence: settings.evidence_messages,
            retention_secs: settings.report_retention.as_secs(),
            per_hour: settings.reports_per_hour,
            suspend_reporters: settings.auto_suspend_reporters,
            suspend_window_ms: settings.auto_suspend_window.as_millis() as u64,
        }
    }

    /// Whether `user` may press moderation buttons.
    pub fn is_admin(&self, user: i64) -> bool {
        self.admins.contains(&user)
    }

    /// Where reports go: the moderation chat, else every admin privately.
    pub fn queue_chats(&self) -> Vec<i64> {
        match self.moderation_chat {
            Some(c) => vec![c],
            None => self.admins.clone(),
        }
    }

    /// Ends the chat and blocks the partner (both ways, for good), or
    /// blocks the last partner after a chat.
    pub async fn block(&self, user: i64, tg: Lang) -> StoreResult<BlockOutcome> {
        self.store.block(user, Some(tg), self.cooldown_secs).await
    }

    /// Which chat a report of `user`'s would be about (changes nothing).
    pub async fn report_target(&self, user: i64, tg: Lang) -> StoreResult<ReportOutcome> {
        self.store
            .report(user, None, None, None, Some(tg), &self.report_args())
            .await
    }

    /// Files a report about chat `chat` of `user`'s (their current one, or
    /// the one that ended within the report window); `message`, a copy of
    /// the partner's message in the reporter's chat, leads the evidence.
    pub async fn report(
        &self,
        user: i64,
        chat: ChatId,
        reason: Reason,
        message: Option<i32>,
        tg: Lang,
    ) -> StoreResult<ReportOutcome> {
        self.store
            .report(
                user,
                Some(chat),
                Some(reason),
                message,
                Some(tg),
                &self.report_args(),
            )
            .await
    }

    /// The report reached every moderator: a retried button is a duplicate now.
    pub async fn queued(&self, report: u64) -> StoreResult<()> {
        self.store.report_queued(report).await
    }

    fn report_args(&self) -> ReportArgs {
        ReportArgs {
            cooldown_secs: self.cooldown_secs,
            per_hour: self.per_hour,
            retention_secs: self.retention_secs,
            evidence: self.evidence,
            anon: (new_anon_id(), new_anon_id()),
            suspend_weight: self.suspend_reporters,
            suspend_window_ms: self.suspend_window_ms,
        }
    }

    /// An admin's decision on a report; the caller checked [`Self::is_admin`].
    pub async fn decide(
        &self,
        report: u64,
        decision: Decision,
        admin: i64,
    ) -> StoreResult<DecideOutcome> {
        self.store
            .decide(
                report,
                decision,
                admin,
                self.retention_secs,
                self.cooldown_secs,
            )
            .await
    }
}

impl ModerationService {
    /// An admin's /ban or /unban; the caller checked [`Self::is_admin`].
    pub async fn admin_ban(
        &self,
        anon: &str,
        action: AdminAction,
        admin: i64,
        at_ms: u64,
        reason: &str,
    ) -> StoreResult<AdminOutcome> {
        self.store
            .admin_ban(
                anon,
                action,
                admin,
                at_ms,
                reason,
                self.retention_secs,
                self.cooldown_secs,
            )
            .await
    }
}

/// The ban lengths on the moderation buttons.
pub const BAN_DAY: Duration = Duration::from_secs(86_400);
pub const BAN_WEEK: Duration = Duration::from_secs(7 * 86_400);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_ids_are_random_and_short() {
        let (a, b) = (new_anon_id(), new_anon_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 11);
        assert!(a.starts_with('u'));
    }
}
