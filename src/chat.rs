//! The chat service: matching, leaving, routing, message maps, timers, albums.
//!
//! Every state change here is one Lua script (`src/scripts/`), so two
//! replicas handling two users at the same moment can never pair someone
//! twice, lose someone from the queue, or leave half a pair chatting. The
//! scripts build keys from the prefix exactly as [`crate::keys`] does (see the
//! test at the bottom and `docs/redis.md`). Handlers call these methods and
//! render the typed outcome; nothing here talks to Telegram.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{RedisResult, Script};

use crate::bot::texts::Lang;
use crate::config::Settings;
use crate::limiter::{script_with_limiter, Budgets};
use crate::store::Store;

/// Message-id maps live this long (replies and edits work for about 48 h).
pub const MAP_TTL_SECS: u64 = 48 * 3600;
/// The map-store script, run inside pipelines (see [`ChatService::remember`]).
pub const MAP_STORE: &str = include_str!("scripts/map_store.lua");

/// SHA1 of [`MAP_STORE`], as Redis names it.
fn map_store_sha() -> &'static str {
    static SHA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SHA.get_or_init(|| Script::new(MAP_STORE).get_hash().to_string())
}

/// User hashes expire this long after their last change.
pub const USER_TTL_SECS: u64 = 30 * 86_400;
/// Queue entries looked at per search (stale entries are dropped on the way).
const SCAN: u32 = 500;
/// Timers fired per kind and sweep.
const SWEEP_LIMIT: u32 = 200;
/// A popped album is re-armed this far ahead until it is confirmed relayed,
/// so a replica dying mid-relay does not lose it.
const ALBUM_RETRY_MS: u64 = 30_000;

/// What Search did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchOutcome {
    AlreadyChatting {
        lang: Lang,
    },
    AlreadySearching {
        lang: Lang,
    },
    Queued {
        lang: Lang,
    },
    Matched {
        lang: Lang,
        partner: i64,
        partner_lang: Lang,
    },
}

/// What Stop (or leaving for any reason) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveOutcome {
    LeftChat {
        lang: Lang,
        partner: i64,
        partner_lang: Lang,
    },
    LeftQueue {
        lang: Lang,
    },
    Idle {
        lang: Lang,
    },
    /// Only from [`ChatService::leave_chat`]: the user is searching and stays so.
    StillSearching {
        lang: Lang,
    },
}

/// A user's state, for drawing the right keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Idle,
    Searching,
    Chatting,
}

/// Where a user's message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The sender is over the inbound budget: drop it; `notify` once per window.
    Throttled { notify: bool, lang: Lang },
    /// Not chatting; a hint may be sent after `wait` (its slot is reserved).
    NotInChat { lang: Lang, wait: Duration },
    Chat {
        partner: i64,
        /// The sender asked for protected copies.
        protect: bool,
        /// The partner's version of the message id that was looked up.
        mapped: Option<i32>,
        /// Wait this long before sending: the send slots are reserved.
        wait: Duration,
    },
}

/// What a routed message is, for the budgets it draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// A new message from the user: throttled inbound, `n` sends reserved.
    Message { sends: u32 },
    /// An edit or reaction: one send reserved, not throttled.
    Followup,
    /// Only a lookup (nothing is sent).
    Lookup,
}

/// A fired timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    SearchTimedOut {
        user: i64,
        lang: Lang,
    },
    ChatIdle {
        a: i64,
        a_lang: Lang,
        b: i64,
        b_lang: Lang,
    },
    Album {
        user: i64,
        group: String,
        ids: Vec<i32>,
    },
}

/// A per-user boolean setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    SameLanguage,
    Protect,
}

impl Setting {
    fn field(self) -> &'static str {
        match self {
            Setting::SameLanguage => "sl",
            Setting::Protect => "pr",
        }
    }
}

struct Scripts {
    search: Script,
    leave: Script,
    route: Script,
    album_add: Script,
    album_done: Script,
    timers_due: Script,
    settings_toggle: Script,
}

/// The chat service; cheap to share.
pub struct ChatService {
    store: Store,
    budgets: Budgets,
    scripts: Scripts,
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

fn lang(v: Option<&String>) -> Lang {
    v.map(|s| Lang::from_code(s)).unwrap_or(Lang::En)
}

fn int<T: std::str::FromStr>(v: Option<&String>) -> Option<T> {
    v.and_then(|s| s.parse().ok())
}

fn unexpected(what: &str, reply: &[String]) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Parse,
        "unexpected script reply",
        format!("{what}: {reply:?}"),
    ))
}

impl ChatService {
    pub fn new(store: Store, settings: &Settings) -> ChatService {
        ChatService {
            store,
            budgets: Budgets::from_settings(settings),
            scripts: Scripts {
                search: Script::new(include_str!("scripts/search.lua")),
                leave: Script::new(include_str!("scripts/leave.lua")),
                route: script_with_limiter(include_str!("scripts/route.lua")),
                album_add: Script::new(include_str!("scripts/album_add.lua")),
                album_done: Script::new(include_str!("scripts/album_done.lua")),
                timers_due: Script::new(include_str!("scripts/timers_due.lua")),
                settings_toggle: Script::new(include_str!("scripts/settings_toggle.lua")),
            },
            search_timeout_ms: settings.search_timeout.as_millis() as u64,
            idle_timeout_ms: settings.chat_idle_timeout.as_millis() as u64,
            cooldown_secs: settings.rejoin_cooldown.as_secs(),
            album_window_ms: settings.album_window.as_millis() as u64,
        }
    }

    fn base(&self) -> &str {
        self.store.keys().base()
    }

    pub fn search_timeout(&self) -> Duration {
        Duration::from_millis(self.search_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// Search: pair with the longest-waiting compatible user, or queue.
    pub async fn search(&self, user: i64, tg_lang: Lang) -> RedisResult<SearchOutcome> {
        let r: Vec<String> = self
            .scripts
            .search
            .arg(self.base())
            .arg(user)
            .arg(now_ms())
            .arg(tg_lang.code())
            .arg(self.search_timeout_ms)
            .arg(self.idle_timeout_ms)
            .arg(SCAN)
            .arg(USER_TTL_SECS)
            .invoke_async(&mut self.store.conn())
            .await?;
        let l = lang(r.get(1));
        Ok(match r.first().map(String::as_str) {
            Some("chatting") => SearchOutcome::AlreadyChatting { lang: l },
            Some("searching") => SearchOutcome::AlreadySearching { lang: l },
            Some("queued") => SearchOutcome::Queued { lang: l },
            Some("matched") => SearchOutcome::Matched {
                lang: l,
                partner: int(r.get(2)).ok_or_else(|| unexpected("search", &r))?,
                partner_lang: lang(r.get(3)),
            },
            _ => return Err(unexpected("search", &r)),
        })
    }

    /// Leave the chat (both sides at once) or the queue.
    pub async fn leave(&self, user: i64, tg_lang: Option<Lang>) -> RedisResult<LeaveOutcome> {
        self.leave_inner(user, tg_lang, false).await
    }

    /// Leave the chat (both sides at once); a searching user keeps searching.
    pub async fn leave_chat(&self, user: i64, tg_lang: Option<Lang>) -> RedisResult<LeaveOutcome> {
        self.leave_inner(user, tg_lang, true).await
    }

    async fn leave_inner(
        &self,
        user: i64,
        tg_lang: Option<Lang>,
        chat_only: bool,
    ) -> RedisResult<LeaveOutcome> {
        let r: Vec<String> = self
            .scripts
            .leave
            .arg(self.base())
            .arg(user)
            .arg(tg_lang.map(Lang::code).unwrap_or(""))
            .arg(self.cooldown_secs)
            .arg(if chat_only { "1" } else { "0" })
            .invoke_async(&mut self.store.conn())
            .await?;
        let l = lang(r.get(1));
        Ok(match r.first().map(String::as_str) {
            Some("searching") => LeaveOutcome::StillSearching { lang: l },
            Some("left_chat") => LeaveOutcome::LeftChat {
                lang: l,
                partner: int(r.get(2)).ok_or_else(|| unexpected("leave", &r))?,
                partner_lang: lang(r.get(3)),
            },
            Some("left_queue") => LeaveOutcome::LeftQueue { lang: l },
            Some("idle") => LeaveOutcome::Idle { lang: l },
            _ => return Err(unexpected("leave", &r)),
        })
    }

    /// Where a message goes; `lookup` is a message id in the user's chat to
    /// translate into the partner's (reply target, edited or reacted message).
    /// Reserves the send slots and applies the inbound throttle in the same call.
    pub async fn route(
        &self,
        user: i64,
        lookup: Option<i32>,
        tg_lang: Lang,
        traffic: Traffic,
    ) -> RedisResult<Route> {
        let (sends, inbound) = match traffic {
            Traffic::Message { sends } => (sends, true),
            Traffic::Followup => (1, false),
            Traffic::Lookup => (0, false),
        };
        let b = &self.budgets;
        let mut inv = self.scripts.route.prepare_invoke();
        inv.arg(self.base())
            .arg(user)
            .arg(self.idle_timeout_ms)
            .arg(lookup.map(|m| m.to_string()).unwrap_or_default())
            .arg(tg_lang.code())
            .arg(sends)
            .arg(if inbound { "1" } else { "0" })
            .arg(format!("{:.3}", b.inbound_interval_ms))
            .arg(b.inbound_burst)
            .arg(b.notice_window_secs);
        for a in b.outbound_args() {
            inv.arg(a);
        }
        let r: Vec<String> = inv.invoke_async(&mut self.store.conn()).await?;
        let wait = |i: usize| Duration::from_millis(int::<u64>(r.get(i)).unwrap_or(0));
        Ok(match r.first().map(String::as_str) {
            Some("throttled") => Route::Throttled {
                notify: r.get(1).map(String::as_str) == Some("1"),
                lang: lang(r.get(2)),
            },
            Some("none") => Route::NotInChat {
                lang: lang(r.get(1)),
                wait: wait(2),
            },
            Some("chat") => Route::Chat {
                partner: int(r.get(1)).ok_or_else(|| unexpected("route", &r))?,
                protect: r.get(2).map(String::as_str) == Some("1"),
                mapped: int(r.get(3)),
                wait: wait(4),
            },
            _ => return Err(unexpected("route", &r)),
        })
    }

    /// Remembers `(chat_a, msg_a) <-> (chat_b, msg_b)` for each pair given.
    /// Inside a worker this rides along with the update's acknowledgement
    /// (one round trip for both); elsewhere it runs at once.
    pub async fn remember(
        &self,
        ctx: &crate::app::Context,
        pairs: &[(i64, i32, i64, i32)],
    ) -> RedisResult<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        // EVALSHA so it can sit in the acknowledgement's pipeline; the store
        // reloads it if Redis lost its script cache (see `Store::ack_with`).
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(map_store_sha())
            .arg(0)
            .arg(self.base())
            .arg(MAP_TTL_SECS);
        for (ca, ma, cb, mb) in pairs {
            cmd.arg(ca).arg(ma).arg(cb).arg(mb);
        }
        crate::worker::defer_or_run(ctx, cmd).await
    }

    /// Adds an album part; `Some(lang)` when the user is not chatting.
    pub async fn album_add(
        &self,
        user: i64,
        group: &str,
        message_id: i32,
        tg_lang: Lang,
    ) -> RedisResult<Option<Lang>> {
        let r: Vec<String> = self
            .scripts
            .album_add
            .arg(self.base())
            .arg(user)
            .arg(group)
            .arg(message_id)
            .arg(now_ms())
            .arg(self.album_window_ms)
            .arg(tg_lang.code())
            .invoke_async(&mut self.store.conn())
            .await?;
        Ok(match r.first().map(String::as_str) {
            Some("none") => Some(lang(r.get(1))),
            _ => None,
        })
    }

    /// Forgets an album once relayed (or given up).
    pub async fn album_done(&self, user: i64, group: &str) -> RedisResult<()> {
        let keys = self.store.keys();
        self.scripts
            .album_done
            .key(keys.album_timers())
            .key(keys.album(user, group))
            .arg(format!("{user}:{group}"))
            .invoke_async::<i64>(&mut self.store.conn())
            .await
            .map(|_| ())
    }

    /// Pops every due timer (each fires on exactly one replica).
    pub async fn due(&self) -> RedisResult<Vec<Due>> {
        let r: Vec<String> = self
            .scripts
            .timers_due
            .arg(self.base())
            .arg(now_ms())
            .arg(SWEEP_LIMIT)
            .arg(self.cooldown_secs)
            .arg(ALBUM_RETRY_MS)
            .invoke_async(&mut self.store.conn())
            .await?;
        let mut out = Vec::new();
        let mut i = 0;
        while i < r.len() {
            match r[i].as_str() {
                "s" if i + 2 < r.len() => {
                    if let Some(user) = int(r.get(i + 1)) {
                        out.push(Due::SearchTimedOut {
                            user,
                            lang: lang(r.get(i + 2)),
                        });
                    }
                    i += 3;
                }
                "i" if i + 4 < r.len() => {
                    if let (Some(a), Some(b)) = (int(r.get(i + 1)), int(r.get(i + 3))) {
                        out.push(Due::ChatIdle {
                            a,
                            a_lang: lang(r.get(i + 2)),
                            b,
                            b_lang: lang(r.get(i + 4)),
                        });
                    }
                    i += 5;
                }
                "a" if i + 3 < r.len() => {
                    if let Some(user) = int(r.get(i + 1)) {
                        let mut ids: Vec<i32> =
                            r[i + 3].split(',').filter_map(|s| s.parse().ok()).collect();
                        ids.sort_unstable();
                        ids.dedup();
                        out.push(Due::Album {
                            user,
                            group: r[i + 2].clone(),
                            ids,
                        });
                    }
                    i += 4;
                }
                _ => return Err(unexpected("timers", &r)),
            }
        }
        Ok(out)
    }

    /// Sets the language chosen with /language; returns it.
    pub async fn set_language(&self, user: i64, lang: Lang) -> RedisResult<Lang> {
        let key = self.store.keys().user(user);
        redis::pipe()
            .atomic()
            .hset_multiple(&key, &[("lo", lang.code()), ("lang", lang.code())])
            .ignore()
            .expire(&key, USER_TTL_SECS as i64)
            .ignore()
            .query_async::<()>(&mut self.store.conn())
            .await?;
        Ok(lang)
    }

    /// The user's state and reply language.
    pub async fn state(&self, user: i64, tg_lang: Lang) -> RedisResult<(UserState, Lang)> {
        let (st, lo): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.store.keys().user(user))
            .arg("st")
            .arg("lo")
            .query_async(&mut self.store.conn())
            .await?;
        let state = match st.as_deref() {
            Some("chat") => UserState::Chatting,
            Some("search") => UserState::Searching,
            _ => UserState::Idle,
        };
        Ok((state, lo.map(|s| Lang::from_code(&s)).unwrap_or(tg_lang)))
    }

    /// Current values of the boolean settings.
    pub async fn settings(&self, user: i64) -> RedisResult<(bool, bool)> {
        let (sl, pr): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.store.keys().user(user))
            .arg("sl")
            .arg("pr")
            .query_async(&mut self.store.conn())
            .await?;
        Ok((sl.as_deref() == Some("1"), pr.as_deref() == Some("1")))
    }

    /// Flips one setting; returns its new value.
    pub async fn toggle(&self, user: i64, setting: Setting) -> RedisResult<bool> {
        let (v, _lang): (i64, String) = self
            .scripts
            .settings_toggle
            .key(self.store.keys().user(user))
            .arg(setting.field())
            .arg(USER_TTL_SECS)
            .invoke_async(&mut self.store.conn())
            .await?;
        Ok(v == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::keys::Keys;

    /// The Lua scripts build keys by hand; they must match `keys.rs`.
    #[test]
    fn script_key_shapes_match_the_key_module() {
        let k = Keys::new("p");
        let b = k.base();
        assert_eq!(k.user(7), format!("{b}u:7"));
        assert_eq!(k.queue(), format!("{b}queue"));
        assert_eq!(k.search_timers(), format!("{b}t:search"));
        assert_eq!(k.idle_timers(), format!("{b}t:idle"));
        assert_eq!(k.album_timers(), format!("{b}t:album"));
        assert_eq!(k.album(7, "g"), format!("{b}album:7:g"));
        assert_eq!(k.blocks(7), format!("{b}blk:7"));
        assert_eq!(k.left(9, 7), format!("{b}left:7:9"));
        assert_eq!(k.message_map(7, 130), format!("{b}mm:7:2"));
        for script in [
            include_str!("scripts/search.lua"),
            include_str!("scripts/leave.lua"),
            include_str!("scripts/route.lua"),
            include_str!("scripts/timers_due.lua"),
        ] {
            assert!(script.contains("b .. 'u:' .."), "user key shape");
        }
        assert!(include_str!("scripts/route.lua").contains("math.floor(id / 64)"));
        assert!(include_str!("scripts/limiter.lua").contains("'rl:c:'"));
        assert_eq!(crate::keys::MAP_BUCKET, 64);
    }
}
