//! Typed calls of the chat and budget scripts: matching, leaving, routing,
//! message maps, albums, timers, settings, send reservations and 429 freezes.
//! Each reply is decoded into its [`crate::domain`] type by one decoder.

use std::time::Duration;

use super::{deferred, Store, StoreError, StoreResult};
use crate::domain::{
    AlbumPart, Ban, Budgets, ChatId, CopyPair, Lang, LeaveOutcome, Route, SearchOutcome, Setting,
    Traffic, UserSettings, UserState, UserView,
};

/// A script's reply: a flat list of strings, read by position.
pub(super) struct Reply {
    pub(super) script: &'static str,
    pub(super) items: Vec<String>,
}

impl Reply {
    pub(super) fn str(&self, i: usize) -> Option<&str> {
        self.items.get(i).map(String::as_str)
    }

    pub(super) fn lang(&self, i: usize) -> Lang {
        self.str(i).map(Lang::from_code).unwrap_or(Lang::En)
    }

    pub(super) fn int<T: std::str::FromStr>(&self, i: usize) -> StoreResult<T> {
        self.str(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.unexpected())
    }

    pub(super) fn opt_int<T: std::str::FromStr>(&self, i: usize) -> Option<T> {
        self.str(i).and_then(|s| s.parse().ok())
    }

    fn ms(&self, i: usize) -> Duration {
        Duration::from_millis(self.opt_int(i).unwrap_or(0))
    }

    pub(super) fn unexpected(&self) -> StoreError {
        StoreError::reply(self.script, &self.items)
    }
}

/// The arguments of one search.
pub struct SearchArgs {
    pub search_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    /// Queue entries looked at (stale entries are dropped on the way).
    pub scan: u32,
    pub user_ttl_secs: u64,
    /// The user's partition (timer events for them go to its stream).
    pub partition: u32,
}

/// The arguments of a routing call that are the same for every message.
pub struct RouteArgs<'a> {
    pub idle_timeout_ms: u64,
    pub user_ttl_secs: u64,
    pub budgets: &'a Budgets,
}

/// The arguments of one timer sweep.
pub struct SweepArgs {
    /// Timers fired per kind.
    pub limit: u32,
    pub cooldown_secs: u64,
    pub idle_timeout_ms: u64,
    pub user_ttl_secs: u64,
    /// Longest-waiting queued users retried for a match (once a second).
    pub retry_queued: u32,
    /// Queue entries looked at for each of them.
    pub scan: u32,
}

fn setting_field(s: Setting) -> &'static str {
    match s {
        Setting::SameLanguage => "sl",
        Setting::Protect => "pr",
    }
}

fn outbound_args(b: &Budgets) -> [String; 4] {
    [
        format!("{:.3}", b.chat_interval_ms),
        b.chat_burst.to_string(),
        format!("{:.3}", b.global_interval_ms),
        b.global_burst.to_string(),
    ]
}

impl Store {
    pub(super) async fn reply(
        &self,
        script: &'static str,
        inv: &redis::ScriptInvocation<'_>,
    ) -> StoreResult<Reply> {
        let items: Vec<String> = inv.invoke_async(&mut self.conn()).await?;
        Ok(Reply { script, items })
    }

    /// Search: pair with the longest-waiting compatible user, or queue.
    pub async fn search(&self, user: i64, tg: Lang, a: &SearchArgs) -> StoreResult<SearchOutcome> {
        let mut inv = self.scripts.search.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(user)
            .arg(tg.code())
            .arg(a.search_timeout_ms)
            .arg(a.idle_timeout_ms)
            .arg(a.scan)
            .arg(a.user_ttl_secs)
            .arg(a.partition);
        let r = self.reply("search", &inv).await?;
        let lang = r.lang(1);
        Ok(match r.str(0) {
            Some("chatting") => SearchOutcome::AlreadyChatting { lang },
            Some("searching") => SearchOutcome::AlreadySearching { lang },
            Some("queued") => SearchOutcome::Queued { lang },
            Some("matched") => SearchOutcome::Matched {
                lang,
                partner: r.int(2)?,
                partner_lang: r.lang(3),
            },
            Some("banned") => SearchOutcome::Banned {
                lang,
                ban: Ban::from_ms(r.int(2)?),
            },
            _ => return Err(r.unexpected()),
        })
    }

    /// Leaves the chat (both sides at once) or, unless `chat_only`, the queue.
    pub async fn leave(
        &self,
        user: i64,
        tg: Option<Lang>,
        cooldown_secs: u64,
        chat_only: bool,
    ) -> StoreResult<LeaveOutcome> {
        let mut inv = self.scripts.leave.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(user)
            .arg(tg.map(Lang::code).unwrap_or(""))
            .arg(cooldown_secs)
            .arg(if chat_only { "1" } else { "0" });
        let r = self.reply("leave", &inv).await?;
        let lang = r.lang(1);
        Ok(match r.str(0) {
            Some("searching") => LeaveOutcome::StillSearching { lang },
            Some("left_chat") => LeaveOutcome::LeftChat {
                lang,
                partner: r.int(2)?,
                partner_lang: r.lang(3),
            },
            Some("left_queue") => LeaveOutcome::LeftQueue { lang },
            Some("idle") => LeaveOutcome::Idle { lang },
            _ => return Err(r.unexpected()),
        })
    }

    /// Routes a message: inbound throttle, send reservation, idle deadline,
    /// message-map lookup and the sender's TTL in one call. `partition` is
    /// the sender's (kept in their hash for timer events).
    pub async fn route(
        &self,
        user: i64,
        partition: u32,
        lookup: Option<i32>,
        tg: Option<Lang>,
        traffic: Traffic,
        a: &RouteArgs<'_>,
    ) -> StoreResult<Route> {
        let b = a.budgets;
        let mut inv = self.scripts.route.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(user)
            .arg(a.idle_timeout_ms)
            .arg(lookup.map(|m| m.to_string()).unwrap_or_default())
            .arg(tg.map(Lang::code).unwrap_or(""))
            .arg(traffic.sends())
            .arg(if traffic.throttled() { "1" } else { "0" })
            .arg(format!("{:.3}", b.inbound_interval_ms))
            .arg(b.inbound_burst)
            .arg(b.notice_window_secs);
        for o in outbound_args(b) {
            inv.arg(o);
        }
        // An album being relayed routes itself; anything else waits for it.
        let album_first = !matches!(traffic, Traffic::Album { .. });
        inv.arg(a.user_ttl_secs)
            .arg(partition)
            .arg(if album_first { "1" } else { "0" });
        let r = self.reply("route", &inv).await?;
        Ok(match r.str(0) {
            Some("album") => Route::AlbumPending,
            Some("throttled") => Route::Throttled {
                notify: r.str(1) == Some("1"),
                lang: r.lang(2),
            },
            Some("none") => Route::NotInChat {
                lang: r.lang(1),
                wait: r.ms(2),
            },
            Some("chat") => Route::Chat {
                partner: r.int(1)?,
                protect: r.str(2) == Some("1"),
                mapped: r.opt_int(3),
                wait: r.ms(4),
                chat: r.int(5)?,
            },
            _ => return Err(r.unexpected()),
        })
    }

    /// Remembers each copy both ways. Inside a worker this rides along with
    /// the update's acknowledgement (see [`deferred`]); elsewhere it runs at once.
    pub async fn remember(&self, pairs: &[CopyPair], ttl_secs: u64) -> StoreResult<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        // EVALSHA so it can sit in the acknowledgement's pipeline; `ack_with`
        // loads it again if Redis lost its script cache.
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.scripts.map_store_sha)
            .arg(0)
            .arg(self.keys.base())
            .arg(ttl_secs);
        for p in pairs {
            cmd.arg(p.from_chat)
                .arg(p.from_message)
                .arg(p.to_chat)
                .arg(p.to_message);
        }
        match deferred::try_defer(cmd) {
            None => Ok(()),
            Some(cmd) => match cmd.query_async::<()>(&mut self.conn()).await {
                Err(e) if e.code() == Some("NOSCRIPT") => {
                    self.load_map_store().await?;
                    Ok(cmd.query_async::<()>(&mut self.conn()).await?)
                }
                other => Ok(other?),
            },
        }
    }

    /// Adds an album part; `Some(lang)` when the user is not chatting.
    pub async fn album_add(
        &self,
        user: i64,
        group: &str,
        message_id: i32,
        tg: Lang,
        window_ms: u64,
    ) -> StoreResult<Option<Lang>> {
        let mut inv = self.scripts.album_add.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(user)
            .arg(group)
            .arg(message_id)
            .arg(window_ms)
            .arg(tg.code());
        let r = self.reply("album_add", &inv).await?;
        match r.str(0) {
            Some("none") => Ok(Some(r.lang(1))),
            Some("added") => Ok(None),
            _ => Err(r.unexpected()),
        }
    }

    /// Takes the user's gathered album parts out (each is delivered once),
    /// in arrival order.
    pub async fn album_take(&self, user: i64) -> StoreResult<Vec<AlbumPart>> {
        let mut inv = self.scripts.album_take.prepare_invoke();
        inv.arg(self.keys.base()).arg(user);
        let r = self.reply("album_take", &inv).await?;
        r.items
            .iter()
            .map(|item| {
                let mut it = item.splitn(3, ':');
                let chat = it.next().and_then(|s| s.parse().ok());
                let message = it.next().and_then(|s| s.parse().ok());
                match (chat, message, it.next()) {
                    (Some(chat), Some(message), Some(group)) => Ok(AlbumPart {
                        chat,
                        message,
                        group: group.to_string(),
                    }),
                    _ => Err(r.unexpected()),
                }
            })
            .collect()
    }

    /// Whether the user is still in chat `chat` (one HGET).
    pub async fn in_chat(&self, user: i64, chat: ChatId) -> StoreResult<bool> {
        let c: Option<u64> = redis::cmd("HGET")
            .arg(self.keys.user(user))
            .arg("c")
            .query_async(&mut self.conn())
            .await?;
        Ok(c == Some(chat))
    }

    /// Fires due timers: their state changes and the events telling users
    /// (into the users' partition streams) in one script. Returns the
    /// number of events queued.
    pub async fn sweep_timers(&self, a: &SweepArgs) -> StoreResult<u64> {
        let mut inv = self.scripts.timers_due.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(a.limit)
            .arg(a.cooldown_secs)
            .arg(a.idle_timeout_ms)
            .arg(a.user_ttl_secs)
            .arg(a.retry_queued)
            .arg(a.scan);
        Ok(inv.invoke_async(&mut self.conn()).await?)
    }

    /// Sets the language chosen with /language.
    pub async fn set_language(&self, user: i64, lang: Lang, ttl_secs: u64) -> StoreResult<()> {
        let key = self.keys.user(user);
        redis::pipe()
            .atomic()
            .hset_multiple(&key, &[("lo", lang.code()), ("lang", lang.code())])
            .ignore()
            .expire(&key, ttl_secs as i64)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// The user's state and reply language (`tg` when none was chosen).
    pub async fn user_view(&self, user: i64, tg: Lang) -> StoreResult<UserView> {
        let (st, chosen): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.user(user))
            .arg("st")
            .arg("lo")
            .query_async(&mut self.conn())
            .await?;
        let state = match st.as_deref() {
            Some("chat") => UserState::Chatting,
            Some("search") => UserState::Searching,
            _ => UserState::Idle,
        };
        Ok(UserView {
            state,
            lang: chosen.map(|s| Lang::from_code(&s)).unwrap_or(tg),
        })
    }

    /// Current values of the boolean settings.
    pub async fn user_settings(&self, user: i64) -> StoreResult<UserSettings> {
        let (sl, pr): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.user(user))
            .arg(setting_field(Setting::SameLanguage))
            .arg(setting_field(Setting::Protect))
            .query_async(&mut self.conn())
            .await?;
        Ok(UserSettings {
            same_language: sl.as_deref() == Some("1"),
            protect: pr.as_deref() == Some("1"),
        })
    }

    /// Sets one boolean setting (idempotent: a repeat sets the same value).
    pub async fn set_setting(
        &self,
        user: i64,
        s: Setting,
        value: bool,
        ttl_secs: u64,
    ) -> StoreResult<()> {
        self.scripts
            .settings_set
            .arg(self.keys.base())
            .arg(user)
            .arg(setting_field(s))
            .arg(u8::from(value))
            .arg(ttl_secs)
            .invoke_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Reserves `n` sends to `chat`; returns how long to wait before sending.
    pub async fn reserve_sends(&self, chat: i64, n: u32, b: &Budgets) -> StoreResult<Duration> {
        let mut inv = self.scripts.reserve.prepare_invoke();
        inv.arg(self.keys.base()).arg(chat).arg(n);
        for a in outbound_args(b) {
            inv.arg(a);
        }
        let wait: i64 = inv.invoke_async(&mut self.conn()).await?;
        Ok(Duration::from_millis(wait.max(0) as u64))
    }

    /// Freezes `chat` for every replica until `retry_after` has passed;
    /// true when the global budget was frozen too.
    pub async fn freeze(&self, chat: i64, retry_after: Duration, b: &Budgets) -> StoreResult<bool> {
        let frozen: i64 = self
            .scripts
            .freeze
            .arg(self.keys.base())
            .arg(chat)
            .arg(retry_after.as_millis() as u64)
            .arg(b.freeze_all_after)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(frozen == 1)
    }
}
