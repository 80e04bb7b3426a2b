//! Typed calls of the moderation scripts: block, report, decide.

use super::{Store, StoreResult};
use crate::domain::{
    AdminAction, AdminOutcome, BlockOutcome, ChatId, DecideOutcome, Decision, Filed, Lang, Reason,
    ReportOutcome,
};

/// The arguments of a report that are the same for every report.
pub struct ReportArgs {
    pub cooldown_secs: u64,
    pub per_hour: u32,
    pub retention_secs: u64,
    pub evidence: u32,
    /// Anonymous ids to give the two users if they have none yet.
    pub anon: (String, String),
    /// Weight of distinct reporters that suspends (0 = never).
    pub suspend_weight: u32,
    pub suspend_window_ms: u64,
}

impl Store {
    /// Blocks the partner (ending the chat) or, after a chat, the last one.
    pub async fn block(
        &self,
        user: i64,
        tg: Option<Lang>,
        cooldown_secs: u64,
    ) -> StoreResult<BlockOutcome> {
        let mut inv = self.scripts.block.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(user)
            .arg(tg.map(Lang::code).unwrap_or(""))
            .arg(cooldown_secs);
        let r = self.reply("block", &inv).await?;
        let lang = r.lang(1);
        Ok(match r.str(0) {
            Some("left_chat") => BlockOutcome::LeftChat {
                lang,
                partner: r.int(2)?,
                partner_lang: r.lang(3),
            },
            Some("blocked_last") => BlockOutcome::BlockedLast { lang },
            Some("idle") => BlockOutcome::Nobody { lang },
            _ => return Err(r.unexpected()),
        })
    }

    /// Files a report (`reason` Some) about chat `chat` (None: the current
    /// or last one), or with `reason` None only says which chat it would be.
    pub async fn report(
        &self,
        reporter: i64,
        chat: Option<ChatId>,
        reason: Option<Reason>,
        message: Option<i32>,
        tg: Option<Lang>,
        a: &ReportArgs,
    ) -> StoreResult<ReportOutcome> {
        let mut inv = self.scripts.report.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(reporter)
            .arg(chat.map(|c| c.to_string()).unwrap_or_default())
            .arg(reason.map(Reason::code).unwrap_or(""))
            .arg(tg.map(Lang::code).unwrap_or(""))
            .arg(a.cooldown_secs)
            .arg(a.per_hour)
            .arg(a.retention_secs)
            .arg(a.evidence)
            .arg(&a.anon.0)
            .arg(&a.anon.1)
            .arg(a.suspend_weight)
            .arg(a.suspend_window_ms)
            .arg(message.map(|m| m.to_string()).unwrap_or_default());
        let r = self.reply("report", &inv).await?;
        let lang = r.lang(1);
        Ok(match (r.str(0), reason) {
            (Some("pick"), _) => ReportOutcome::Pick {
                lang,
                chat: r.int(2)?,
            },
            (Some("expired"), _) => ReportOutcome::Expired { lang },
            (Some("duplicate"), _) => ReportOutcome::Duplicate { lang },
            (Some("limited"), _) => ReportOutcome::Limited { lang },
            (Some("reported"), Some(reason)) => {
                let other = match r.str(11) {
                    Some("") | None => None,
                    Some(_) => Some((r.int(11)?, r.lang(12))),
                };
                let evidence = r
                    .items
                    .iter()
                    .skip(13)
                    .filter_map(|m| m.parse().ok())
                    .collect();
                ReportOutcome::Filed(Box::new(Filed {
                    lang,
                    id: r.int(2)?,
                    reason,
                    partner: r.int(3)?,
                    partner_lang: r.lang(4),
                    ended_chat: r.str(5) == Some("1"),
                    reporter_anon: r.str(6).unwrap_or_default().to_string(),
                    reported_anon: r.str(7).unwrap_or_default().to_string(),
                    prior_reports: r.int(8)?,
                    prior_bans: r.int(9)?,
                    suspended: r.str(10) == Some("1"),
                    other,
                    evidence,
                }))
            }
            _ => return Err(r.unexpected()),
        })
    }

    /// Marks report `id` as sent to the moderators (a retried report
    /// button is then only a duplicate).
    pub async fn report_queued(&self, id: u64) -> StoreResult<()> {
        self.scripts
            .report_queued
            .arg(self.keys.base())
            .arg(id)
            .invoke_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Applies an admin's decision on report `id` (only while it is open).
    pub async fn decide(
        &self,
        id: u64,
        decision: Decision,
        admin: i64,
        retention_secs: u64,
        cooldown_secs: u64,
    ) -> StoreResult<DecideOutcome> {
        let (action, ms) = match decision {
            Decision::Ban(d) => ("ban", d.map(|d| d.as_millis() as u64).unwrap_or(0)),
            Decision::Dismiss => ("dismiss", 0),
            Decision::FalseReport => ("false", 0),
        };
        let mut inv = self.scripts.decide.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(id)
            .arg(action)
            .arg(ms)
            .arg(admin)
            .arg(retention_secs)
            .arg(cooldown_secs);
        let r = self.reply("decide", &inv).await?;
        Ok(match r.str(0) {
            Some("unknown") => DecideOutcome::Unknown,
            Some("done") => DecideOutcome::AlreadyDecided {
                state: r.str(1).unwrap_or_default().to_string(),
            },
            Some("applied") => DecideOutcome::Applied {
                user: r.int(1)?,
                user_lang: r.lang(2),
                banned_until: r.opt_int(3),
                partner: match r.str(4) {
                    Some("") | None => None,
                    Some(_) => Some((r.int(4)?, r.lang(5))),
                },
            },
            _ => return Err(r.unexpected()),
        })
    }

    /// An admin's /ban or /unban of the user behind anonymous id `anon`;
    /// `at_ms` is the command's date (a ban ends that long after it, so a
    /// command handled twice bans once).
    #[allow(clippy::too_many_arguments)]
    pub async fn admin_ban(
        &self,
        anon: &str,
        action: AdminAction,
        admin: i64,
        at_ms: u64,
        reason: &str,
        retention_secs: u64,
        cooldown_secs: u64,
    ) -> StoreResult<AdminOutcome> {
        let (name, ms) = match action {
            AdminAction::Ban(d) => ("ban", d.map(|d| d.as_millis() as u64).unwrap_or(0)),
            AdminAction::Unban => ("unban", 0),
        };
        let mut inv = self.scripts.admin_ban.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(anon)
            .arg(name)
            .arg(ms)
            .arg(admin)
            .arg(retention_secs)
            .arg(cooldown_secs)
            .arg(at_ms)
            .arg(reason);
        let r = self.reply("admin_ban", &inv).await?;
        Ok(match r.str(0) {
            Some("unknown") => AdminOutcome::Unknown,
            Some("unchanged") => AdminOutcome::Unchanged { ban: r.opt_int(1) },
            Some("banned") => AdminOutcome::Banned {
                user: r.int(1)?,
                user_lang: r.lang(2),
                until: r.int(3)?,
                partner: match r.str(4) {
                    Some("") | None => None,
                    Some(_) => Some((r.int(4)?, r.lang(5))),
                },
            },
            Some("unbanned") => AdminOutcome::Unbanned { user: r.int(1)? },
            _ => return Err(r.unexpected()),
        })
    }
}
