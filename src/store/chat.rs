//! Typed calls of the chat and budget scripts: matching, leaving, routing,
//! message maps, albums, timers, settings, send reservations and 429 freezes.
//! Each reply is decoded into its [`crate::domain`] type by one decoder.

use std::time::Duration;

use super::{deferred, Store, StoreError, StoreResult};
use crate::domain::{
    AlbumAdd, AlbumPart, Ban, Budgets, ChatId, CopyPair, Erased, Lang, LeaveOutcome, MediaMode,
    Press, Route, SearchOutcome, Setting, Traffic, UserSettings, UserState, UserView,
};

/// A held message waits this long for the receiver's tap.
const HELD_TTL_SECS: u64 = 86_400;

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
    /// Rules version the user must have accepted (0: none).
    pub rules_version: u32,
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

/// The user-hash field of the media setting (`show`, `blur`, `text`).
const MEDIA_FIELD: &str = "md";

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
            .arg(a.partition)
            .arg(a.rules_version);
        let r = self.reply("search", &inv).await?;
        let lang = r.lang(1);
        Ok(match r.str(0) {
            Some("chatting") => SearchOutcome::AlreadyChatting { lang },
            Some("searching") => SearchOutcome::AlreadySearching { lang },
            Some("queued") => SearchOutcome::Queued { lang },
            Some("rules") => SearchOutcome::RulesNotAccepted { lang },
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
        let flag = |b: bool| if b { "1" } else { "0" };
        inv.arg(a.user_ttl_secs)
            .arg(partition)
            .arg(flag(album_first))
            .arg(flag(traffic.needs_mapping()))
            .arg(flag(traffic.hints()))
            .arg(b.max_send_wait_ms)
            .arg(b.notice_window_secs);
        let r = self.reply("route", &inv).await?;
        Ok(match r.str(0) {
            Some("album") => Route::AlbumPending,
            Some("throttled") => Route::Throttled {
                notify: r.str(1) == Some("1"),
                lang: r.lang(2),
            },
            Some("overloaded") => Route::Overloaded {
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
                nth: r.opt_int(6).unwrap_or(0),
                media: r.str(7).and_then(MediaMode::parse).unwrap_or_default(),
            },
            _ => return Err(r.unexpected()),
        })
    }

    /// Remembers each copy both ways. Inside a worker this rides along with
    /// the update's acknowledgement (see [`deferred`]); elsewhere it runs at once.
    /// With `album`, each original also remembers the ids of all the
    /// album's copies (`/del` deletes an album whole).
    pub async fn remember(
        &self,
        pairs: &[CopyPair],
        album: bool,
        ttl_secs: u64,
    ) -> StoreResult<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        // EVALSHA so it can sit in the acknowledgement's pipeline; `ack_with`
        // loads it again if Redis lost its script cache.
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.scripts.map_store_sha)
            .arg(0)
            .arg(self.keys.base())
            .arg(ttl_secs)
            .arg(if album { "1" } else { "0" });
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

    /// The partner's copies of the whole album that `user`'s message
    /// `message` was relayed in (empty: it was not part of an album, or the
    /// list expired). Ids that do not parse are skipped.
    pub async fn album_copies(&self, user: i64, message: i32) -> StoreResult<Vec<i32>> {
        let v: Option<String> = redis::cmd("GET")
            .arg(self.keys.album_copies(user, message))
            .query_async(&mut self.conn())
            .await?;
        Ok(v.unwrap_or_default()
            .split(',')
            .filter_map(|id| id.parse().ok())
            .collect())
    }

    /// Adds an album part; `Some(lang)` when the user is not chatting.
    pub async fn album_add(
        &self,
        user: i64,
        group: &str,
        message_id: i32,
        tg: Lang,
        visual: bool,
        window_ms: u64,
    ) -> StoreResult<AlbumAdd> {
        let mut inv = self.scripts.album_add.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(user)
            .arg(group)
            .arg(message_id)
            .arg(window_ms)
            .arg(tg.code())
            .arg(if visual { "1" } else { "0" });
        let r = self.reply("album_add", &inv).await?;
        match r.str(0) {
            Some("none") => Ok(AlbumAdd::NotInChat { lang: r.lang(1) }),
            Some("added") => Ok(AlbumAdd::Added),
            Some("single") => Ok(AlbumAdd::Single),
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
        let (sl, pr, md): (Option<String>, Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.user(user))
            .arg(setting_field(Setting::SameLanguage))
            .arg(setting_field(Setting::Protect))
            .arg(MEDIA_FIELD)
            .query_async(&mut self.conn())
            .await?;
        Ok(UserSettings {
            same_language: sl.as_deref() == Some("1"),
            protect: pr.as_deref() == Some("1"),
            media: md.as_deref().and_then(MediaMode::parse).unwrap_or_default(),
        })
    }

    /// Sets how the user receives strangers' visual media (idempotent).
    pub async fn set_media(&self, user: i64, mode: MediaMode, ttl_secs: u64) -> StoreResult<()> {
        self.scripts
            .settings_set
            .arg(self.keys.base())
            .arg(user)
            .arg(MEDIA_FIELD)
            .arg(mode.code())
            .arg(ttl_secs)
            .invoke_async::<()>(&mut self.conn())
            .await?;
        Ok(())
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

    /// Erases the user (/deletedata): ends their chat or search and deletes
    /// every key about them, their message maps (both directions) and the
    /// cooldown markers naming them. Maps are found by SCAN; a second pass
    /// catches a copy the partner's worker mapped while the first ran.
    pub async fn erase_user(&self, user: i64, tg: Option<Lang>) -> StoreResult<Erased> {
        let mut first: Option<Erased> = None;
        for _ in 0..2 {
            let (buckets, pairs) = self.scan_user_leftovers(user).await?;
            if first.is_some() && buckets.is_empty() && pairs.is_empty() {
                break;
            }
            // Batches keep one script call short.
            let mut chunks: Vec<(&[String], &[String])> = buckets
                .chunks(256)
                .map(|b| (b, &[][..]))
                .chain(pairs.chunks(256).map(|p| (&[][..], p)))
                .collect();
            if chunks.is_empty() {
                chunks.push((&[], &[]));
            }
            for (b, p) in chunks {
                let mut inv = self.scripts.erase.prepare_invoke();
                inv.arg(self.keys.base())
                    .arg(user)
                    .arg(tg.map(Lang::code).unwrap_or(""))
                    .arg(b.len());
                for x in b.iter().chain(p) {
                    inv.arg(x);
                }
                let r = self.reply("erase", &inv).await?;
                if r.str(0) != Some("erased") {
                    return Err(r.unexpected());
                }
                let partner = r.opt_int::<i64>(2).map(|id| (id, r.lang(3)));
                if first.is_none() {
                    first = Some(Erased {
                        lang: r.lang(1),
                        partner,
                    });
                }
            }
        }
        // Held links for and from the user: independent keys, one UNLINK.
        let mut held = Vec::new();
        for pattern in self.keys.held_patterns(user) {
            held.extend(self.scan(&pattern).await?);
        }
        // And the album-copy lists of the albums they sent (ids only).
        held.extend(self.scan(&self.keys.album_copies_pattern(user)).await?);
        // And their duplicate-report markers (the reports themselves are kept).
        held.extend(self.scan(&self.keys.reported_pattern(user)).await?);
        for batch in held.chunks(256) {
            redis::cmd("UNLINK")
                .arg(batch)
                .query_async::<()>(&mut self.conn())
                .await?;
        }
        Ok(first.unwrap_or(Erased {
            lang: tg.unwrap_or(Lang::En),
            partner: None,
        }))
    }

    /// The user's message-map bucket numbers and the pair ids of cooldown
    /// markers naming them (SCAN, never KEYS).
    async fn scan_user_leftovers(&self, user: i64) -> StoreResult<(Vec<String>, Vec<String>)> {
        let map_prefix = self.keys.message_map_prefix(user);
        let left_prefix = self.keys.left_prefix();
        let mut buckets = Vec::new();
        for key in self.scan(&self.keys.message_maps_pattern(user)).await? {
            if let Some(b) = key.strip_prefix(&map_prefix) {
                if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) {
                    buckets.push(b.to_string());
                }
            }
        }
        let mut pairs = Vec::new();
        for pattern in self.keys.left_patterns(user) {
            for key in self.scan(&pattern).await? {
                if let Some(pair) = key.strip_prefix(&left_prefix) {
                    pairs.push(pair.to_string());
                }
            }
        }
        Ok((buckets, pairs))
    }

    async fn scan(&self, pattern: &str) -> StoreResult<Vec<String>> {
        let mut conn = self.conn();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            out.extend(keys);
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }

    /// Holds message `message` of `from` for `to` (a link early in chat `chat`).
    pub async fn hold(
        &self,
        to: i64,
        from: i64,
        message: i32,
        chat: ChatId,
        protect: bool,
    ) -> StoreResult<()> {
        redis::cmd("SET")
            .arg(self.keys.held(to, from, message))
            .arg(format!("{chat}:{}", u8::from(protect)))
            .arg("EX")
            .arg(HELD_TTL_SECS)
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Takes a held message out (once: GETDEL): its chat and protect flag,
    /// or None when nothing of that is held for `to`.
    pub async fn take_held(
        &self,
        to: i64,
        from: i64,
        message: i32,
    ) -> StoreResult<Option<(ChatId, bool)>> {
        let v: Option<String> = redis::cmd("GETDEL")
            .arg(self.keys.held(to, from, message))
            .query_async(&mut self.conn())
            .await?;
        Ok(v.and_then(|v| {
            let (chat, protect) = v.split_once(':')?;
            Some((chat.parse().ok()?, protect == "1"))
        }))
    }

    /// Records that the user accepted the rules of `version` (idempotent).
    pub async fn accept_rules(&self, user: i64, version: u32, ttl_secs: u64) -> StoreResult<()> {
        self.scripts
            .rules_accept
            .arg(self.keys.base())
            .arg(user)
            .arg(version)
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

    /// Takes one Search/Next press of `user` made at `at_ms` (the update's
    /// time) from their budget.
    pub async fn search_press(&self, user: i64, at_ms: u64, b: &Budgets) -> StoreResult<Press> {
        let mut inv = self.scripts.search_allow.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(user)
            .arg(at_ms)
            .arg(format!("{:.3}", b.search_interval_ms))
            .arg(b.search_burst)
            .arg(b.notice_window_secs);
        let r: String = inv.invoke_async(&mut self.conn()).await?;
        match r.as_str() {
            "ok" => Ok(Press::Allowed),
            "notify" => Ok(Press::Refused { notify: true }),
            "drop" => Ok(Press::Refused { notify: false }),
            _ => Err(StoreError::reply("search_allow", &[r])),
        }
    }

    /// Freezes `chat` for every replica until `retry_after` has passed;
    /// true when the global budget was frozen too.
    pub async fn freeze(&self, chat: i64, retry_after: Duration, b: &Budgets) -> StoreResult<bool> {
        let mut inv = self.scripts.freeze.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(chat)
            .arg(retry_after.as_millis() as u64)
            .arg(b.freeze_all_after);
        for a in outbound_args(b) {
            inv.arg(a);
        }
        let frozen: i64 = inv.invoke_async(&mut self.conn()).await?;
        Ok(frozen == 1)
    }
}
