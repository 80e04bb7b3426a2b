//! Every Redis key anonchat uses, named once.
//!
//! All keys start with `{KEY_PREFIX}:v1:` so several bots (and tests) can share
//! one Redis and a future incompatible layout can live beside this one. Each
//! key's name is a constant below; [`Keys`] builds them for Rust callers and
//! [`lua_prelude`] generates the same builders (`K.user(id)`, ...) for the Lua
//! scripts, so a name exists exactly once. The list of keys, their types,
//! writers and lifetimes is in `docs/redis.md`; keep the two in step.

/// Message ids per message-map hash (small hashes stay compact listpacks).
pub const MAP_BUCKET: i32 = 64;

/// Consumer group name used on every partition stream.
pub const GROUP: &str = "workers";

// The names, relative to the key base. A trailing ':' means "followed by an id".
const POLLER_LEASE: &str = "poller:lease";
const POLLER_EPOCH: &str = "poller:epoch";
const POLLER_OFFSET: &str = "poller:offset";
const POLLER_OFFSET_AT: &str = "poller:offset_at";
const INSTANCE: &str = "instance:";
const SEEN: &str = "seen:";
const STREAM: &str = "in:";
const OWNER: &str = "owner:";
const REPLICAS: &str = "replicas";
const USER: &str = "u:";
const QUEUE: &str = "queue";
const SEARCH_TIMERS: &str = "t:search";
const IDLE_TIMERS: &str = "t:idle";
const ALBUM_TIMERS: &str = "t:albums";
const ALBUM: &str = "albums:";
const CHAT_SEQ: &str = "chat:seq";
const EVENT_SEQ: &str = "event:seq";
const MATCH_SWEEP: &str = "t:match";
const BLOCKS: &str = "blk:";
const LEFT: &str = "left:";
const MESSAGE_MAP: &str = "mm:";
const EVENTS: &str = "events";
const PARTITIONS: &str = "partitions";
const CHAT_BUDGET: &str = "rl:c:";
const GLOBAL_BUDGET: &str = "rl:g";
const INBOUND: &str = "rl:in:";
const NOTICE: &str = "rl:note:";
const OVERLOAD_NOTICE: &str = "rl:over:";
const FROZEN: &str = "rl:fz:";
const SEARCH_BUDGET: &str = "rl:nx:";
const SEARCH_NOTICE: &str = "rl:nxnote:";
const RECENT_429: &str = "rl:429";
const CHAT_COUNT: &str = "cm:";
const HELD: &str = "held:";
const ALBUM_COPIES: &str = "ag:";
const LAST_PARTNER: &str = "last:";
const EVIDENCE: &str = "ev:";
const REPORT_SEQ: &str = "rep:seq";
const REPORT: &str = "rep:";
const REPORTED: &str = "repd:";
const REPORT_BUDGET: &str = "rl:rep:";
const MOD_STATS: &str = "mst:";
const ANON: &str = "anon:";
const ANON_USER: &str = "anonu:";
const BAN: &str = "ban:";
const AUDIT: &str = "audit";
const REPORTERS: &str = "rby:";

/// `"lo:hi"`: the id of a pair, the same whichever side names it.
pub fn pair_id(a: i64, b: i64) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

/// Partition of a chat: a 64-bit mix of the id, modulo the partition count,
/// so that neighbouring ids spread evenly. It names the stream `in:{p}` a
/// chat's updates and events go to (Lua can't compute it: the scripts get it
/// from Rust and keep it in the user's hash as `pt`).
pub fn partition_of(chat: i64, partitions: u32) -> u32 {
    let mut x = chat as u64;
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x % u64::from(partitions.max(1))) as u32
}

/// Key builder for one deployment (one prefix).
#[derive(Debug, Clone)]
pub struct Keys {
    base: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            base: format!("{prefix}:v1:"),
        }
    }

    /// The common start of every key (every script's `ARGV[1]`).
    pub fn base(&self) -> &str {
        &self.base
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.base)
    }

    /// String `"{replica} {epoch}"`, PX lease: who may call getUpdates.
    pub fn poller_lease(&self) -> String {
        self.key(POLLER_LEASE)
    }

    /// Integer, INCR on every acquisition: the fencing epoch.
    pub fn poller_epoch(&self) -> String {
        self.key(POLLER_EPOCH)
    }

    /// Integer: the next getUpdates offset, written with each batch.
    pub fn poller_offset(&self) -> String {
        self.key(POLLER_OFFSET)
    }

    /// Integer (ms, Redis clock): when the stored offset was written, i.e.
    /// when the last batch came. Telegram restarts update ids after a week
    /// without updates, so an offset that old is not used.
    pub fn poller_offset_at(&self) -> String {
        self.key(POLLER_OFFSET_AT)
    }

    /// String: the random nonce of the live process running as replica `id`
    /// (PX, renewed while it runs), so a second process with the same
    /// `REPLICA_ID` is noticed and refused.
    pub fn instance(&self, id: &str) -> String {
        format!("{}{INSTANCE}{id}", self.base)
    }

    /// Dedupe hash `seen:{update_id / 128}` (field `update_id % 128`,
    /// EXPIRE about a day after the last write).
    pub fn seen(&self, bucket: i64) -> String {
        format!("{}{SEEN}{bucket}", self.base)
    }

    /// Stream of partition `p`.
    pub fn stream(&self, p: u32) -> String {
        format!("{}{STREAM}{p}", self.base)
    }

    /// Owner lease of partition `p` (string replica id, PX).
    pub fn owner(&self, p: u32) -> String {
        format!("{}{OWNER}{p}", self.base)
    }

    /// Sorted set replica id -> last heartbeat (ms): the live replicas.
    pub fn replicas(&self) -> String {
        self.key(REPLICAS)
    }

    /// Hash per user: `st` (idle|search|chat), `p` partner id, `c` chat id,
    /// `pt` partition, `lang` language replies use, `lo` language chosen with
    /// /language, `sl` same-language matching (1), `pr` protect my messages
    /// (1), `rv` rules version accepted. EXPIRE 30 days after the last search, message or setting change.
    pub fn user(&self, id: i64) -> String {
        format!("{}{USER}{id}", self.base)
    }

    /// Sorted set user id -> enqueue time (ms): who is searching, oldest first.
    pub fn queue(&self) -> String {
        self.key(QUEUE)
    }

    /// Sorted set user id -> deadline (ms): searches that time out.
    pub fn search_timers(&self) -> String {
        self.key(SEARCH_TIMERS)
    }

    /// Sorted set pair id ("lo:hi") -> deadline (ms): chats that end when idle.
    pub fn idle_timers(&self) -> String {
        self.key(IDLE_TIMERS)
    }

    /// Sorted set user id -> flush time (ms): users gathering album parts.
    pub fn album_timers(&self) -> String {
        self.key(ALBUM_TIMERS)
    }

    /// List of one user's gathered album parts, "chat id:message id:group".
    pub fn album(&self, user: i64) -> String {
        format!("{}{ALBUM}{user}", self.base)
    }

    /// Integer, INCR per pair formed: the chat ids.
    pub fn chat_seq(&self) -> String {
        self.key(CHAT_SEQ)
    }

    /// Integer, INCR per internal event: their (negated) ids in the streams.
    pub fn event_seq(&self) -> String {
        self.key(EVENT_SEQ)
    }

    /// Marker (PX 1 s): the queue was retried for matches this second.
    pub fn match_sweep(&self) -> String {
        self.key(MATCH_SWEEP)
    }

    /// Sorted set user id -> block time (ms): whom `id` blocked (/block or
    /// a report); checked by matching in both directions. The last 1,000,
    /// for 180 days (trimmed and EXPIREd on every write).
    pub fn blocks(&self, id: i64) -> String {
        format!("{}{BLOCKS}{id}", self.base)
    }

    /// Marker "these two just left each other" (EX REJOIN_COOLDOWN_SECS).
    pub fn left(&self, a: i64, b: i64) -> String {
        format!("{}{LEFT}{}", self.base, pair_id(a, b))
    }

    /// Hash of one chat's message-id map bucket: message id -> "chat:message"
    /// of its counterpart (64 ids per bucket, EXPIRE 48 h).
    pub fn message_map(&self, chat: i64, message_id: i32) -> String {
        format!(
            "{}{MESSAGE_MAP}{chat}:{}",
            self.base,
            message_id / MAP_BUCKET
        )
    }

    /// SCAN pattern of every message-map bucket of `chat` (`/deletedata`);
    /// the bucket number is what follows [`Keys::message_map_prefix`].
    pub fn message_maps_pattern(&self, chat: i64) -> String {
        format!("{}*", glob_escape(&self.message_map_prefix(chat)))
    }

    /// `mm:{chat}:`, the start of each of its buckets' keys.
    pub fn message_map_prefix(&self, chat: i64) -> String {
        format!("{}{MESSAGE_MAP}{chat}:", self.base)
    }

    /// SCAN patterns of the cooldown markers naming `user` (either side);
    /// the pair id is what follows [`Keys::left_prefix`].
    pub fn left_patterns(&self, user: i64) -> [String; 2] {
        let p = glob_escape(&self.left_prefix());
        [format!("{p}{user}:*"), format!("{p}*:{user}")]
    }

    /// `left:`, the start of every cooldown marker.
    pub fn left_prefix(&self) -> String {
        format!("{}{LEFT}", self.base)
    }

    /// Pub/sub channel: "poller" when the poller lease is released,
    /// "partitions" when partitions are handed back, so others act at once.
    pub fn events(&self) -> String {
        self.key(EVENTS)
    }

    /// String: the partition count this deployment was created with.
    pub fn partitions_setting(&self) -> String {
        self.key(PARTITIONS)
    }

    /// String (float ms): GCRA time of the next send into one chat.
    pub fn chat_budget(&self, chat: i64) -> String {
        format!("{}{CHAT_BUDGET}{chat}", self.base)
    }

    /// String (float ms): GCRA time of the bot's next send overall.
    pub fn global_budget(&self) -> String {
        self.key(GLOBAL_BUDGET)
    }

    /// String (float ms): GCRA inbound throttle of one user.
    pub fn inbound(&self, user: i64) -> String {
        format!("{}{INBOUND}{user}", self.base)
    }

    /// Marker (EX INBOUND_NOTICE_SECS): this user was told to slow down.
    pub fn notice(&self, user: i64) -> String {
        format!("{}{NOTICE}{user}", self.base)
    }

    /// Integer: new messages sent so far in chat `chat` (a chat id), for
    /// the link policy (PEXPIRE twice the idle timeout, pushed per message).
    pub fn chat_count(&self, chat: u64) -> String {
        format!("{}{CHAT_COUNT}{chat}", self.base)
    }

    /// String `"{chat id}:{protect}"`: message `message` of `from` held for
    /// `to` (it has a link) until `to` taps Show (GETDEL; EX 24 h).
    pub fn held(&self, to: i64, from: i64, message: i32) -> String {
        format!("{}{HELD}{to}:{from}:{message}", self.base)
    }

    /// String: the ids of every copy of the album message `message` of
    /// `chat` belongs to, in the partner's chat, comma-separated (ids only;
    /// `/del` deletes an album whole). EXPIRE with the message maps.
    pub fn album_copies(&self, chat: i64, message: i32) -> String {
        format!("{}{ALBUM_COPIES}{chat}:{message}", self.base)
    }

    /// SCAN pattern of `chat`'s album-copy lists (`/deletedata`).
    pub fn album_copies_pattern(&self, chat: i64) -> String {
        format!(
            "{}*",
            glob_escape(&format!("{}{ALBUM_COPIES}{chat}:", self.base))
        )
    }

    /// SCAN patterns of the held messages for and from `user`.
    pub fn held_patterns(&self, user: i64) -> [String; 2] {
        let p = glob_escape(&format!("{}{HELD}", self.base));
        [format!("{p}{user}:*"), format!("{p}*:{user}:*")]
    }

    /// String (ms): a 429 froze this chat until then (PX: its retry_after).
    pub fn frozen(&self, chat: i64) -> String {
        format!("{}{FROZEN}{chat}", self.base)
    }

    /// Marker (EX INBOUND_NOTICE_SECS): this user was told a message was
    /// dropped because its send would have waited past MAX_SEND_WAIT.
    pub fn overload_notice(&self, user: i64) -> String {
        format!("{}{OVERLOAD_NOTICE}{user}", self.base)
    }

    /// String (float ms): GCRA budget of one user's Search/Next presses.
    pub fn search_budget(&self, user: i64) -> String {
        format!("{}{SEARCH_BUDGET}{user}", self.base)
    }

    /// Marker (EX INBOUND_NOTICE_SECS): this user was told to search less often.
    pub fn search_notice(&self, user: i64) -> String {
        format!("{}{SEARCH_NOTICE}{user}", self.base)
    }

    /// Sorted set chat -> time of its last 429 (ms), the last second only.
    pub fn recent_429(&self) -> String {
        self.key(RECENT_429)
    }

    /// Hash `p` partner, `c` chat id of the user's last ended chat (EX the
    /// report window): what a report after the chat names.
    pub fn last_partner(&self, user: i64) -> String {
        format!("{}{LAST_PARTNER}{user}", self.base)
    }

    /// List of `"{chat id}:{message id}"`: the newest copies the user
    /// received (ids in their own chat, never content), for report evidence.
    pub fn evidence(&self, user: i64) -> String {
        format!("{}{EVIDENCE}{user}", self.base)
    }

    /// Integer, INCR per report: the report ids.
    pub fn report_seq(&self) -> String {
        self.key(REPORT_SEQ)
    }

    /// Hash of one report (reporter, reported, reason, chat, state).
    pub fn report(&self, id: u64) -> String {
        format!("{}{REPORT}{id}", self.base)
    }

    /// String report id: `reporter` reported chat `chat` already.
    pub fn reported(&self, reporter: i64, chat: u64) -> String {
        format!("{}{REPORTED}{reporter}:{chat}", self.base)
    }

    /// SCAN pattern of `reporter`'s duplicate-report markers (`/deletedata`).
    pub fn reported_pattern(&self, reporter: i64) -> String {
        format!(
            "{}*",
            glob_escape(&format!("{}{REPORTED}{reporter}:", self.base))
        )
    }

    /// Integer: reports one user made in the current hour (rate limit).
    pub fn report_budget(&self, user: i64) -> String {
        format!("{}{REPORT_BUDGET}{user}", self.base)
    }

    /// Hash `r` reports against, `b` bans, `f` false reports made.
    pub fn mod_stats(&self, user: i64) -> String {
        format!("{}{MOD_STATS}{user}", self.base)
    }

    /// String: the anonymous id admins see for a user.
    pub fn anon(&self, user: i64) -> String {
        format!("{}{ANON}{user}", self.base)
    }

    /// String: the user an anonymous id stands for (admins' `/ban ID`).
    pub fn anon_user(&self, anon: &str) -> String {
        format!("{}{ANON_USER}{anon}", self.base)
    }

    /// String: ban end (ms, 0 = forever), PX until then.
    pub fn ban(&self, user: i64) -> String {
        format!("{}{BAN}{user}", self.base)
    }

    /// Sorted set reporter -> time (ms): who reported `user` within the
    /// auto-suspend window (PEXPIRE the window).
    pub fn reporters(&self, user: i64) -> String {
        format!("{}{REPORTERS}{user}", self.base)
    }

    /// Stream: the moderation audit trail.
    pub fn audit(&self) -> String {
        self.key(AUDIT)
    }
}

/// `s` with Redis glob characters escaped, for a literal SCAN MATCH part.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Lua that every script starts with: `B`, the key base (`ARGV[1]` by
/// convention), and a builder per key, generated from the names above.
pub fn lua_prelude() -> String {
    let fixed = [
        ("poller_lease", POLLER_LEASE),
        ("poller_epoch", POLLER_EPOCH),
        ("poller_offset", POLLER_OFFSET),
        ("poller_offset_at", POLLER_OFFSET_AT),
        ("replicas", REPLICAS),
        ("queue", QUEUE),
        ("search_timers", SEARCH_TIMERS),
        ("idle_timers", IDLE_TIMERS),
        ("album_timers", ALBUM_TIMERS),
        ("chat_seq", CHAT_SEQ),
        ("event_seq", EVENT_SEQ),
        ("match_sweep", MATCH_SWEEP),
        ("global_budget", GLOBAL_BUDGET),
        ("recent_429", RECENT_429),
        ("report_seq", REPORT_SEQ),
        ("audit", AUDIT),
    ];
    let with_id = [
        ("seen", SEEN),
        ("stream", STREAM),
        ("owner", OWNER),
        ("instance", INSTANCE),
        ("user", USER),
        // `album(user)`.
        ("album", ALBUM),
        ("blocks", BLOCKS),
        // `left(pair)` with a pair id from `pair_id`.
        ("left", LEFT),
        ("chat_budget", CHAT_BUDGET),
        ("inbound", INBOUND),
        ("notice", NOTICE),
        ("chat_count", CHAT_COUNT),
        ("overload_notice", OVERLOAD_NOTICE),
        ("frozen", FROZEN),
        ("search_budget", SEARCH_BUDGET),
        ("search_notice", SEARCH_NOTICE),
        ("last_partner", LAST_PARTNER),
        ("evidence", EVIDENCE),
        ("report", REPORT),
        // `reported(reporter .. ':' .. chat)`.
        ("reported", REPORTED),
        ("report_budget", REPORT_BUDGET),
        ("mod_stats", MOD_STATS),
        ("anon", ANON),
        // `anon_user(anonymous id)`: the reverse of `anon(user)`.
        ("anon_user", ANON_USER),
        ("ban", BAN),
        ("reporters", REPORTERS),
    ];
    let mut lua = format!("local B = ARGV[1]\nlocal K = {{}}\nlocal MAP_BUCKET = {MAP_BUCKET}\n");
    for (name, key) in fixed {
        lua.push_str(&format!("function K.{name}() return B .. '{key}' end\n"));
    }
    for (name, key) in with_id {
        lua.push_str(&format!(
            "function K.{name}(id) return B .. '{key}' .. id end\n"
        ));
    }
    lua.push_str(&format!(
        "function K.message_map(chat, id) return B .. '{MESSAGE_MAP}' .. chat .. ':' .. math.floor(tonumber(id) / {MAP_BUCKET}) end\n"
    ));
    lua.push_str(&format!(
        "function K.album_copies(chat, id) return B .. '{ALBUM_COPIES}' .. chat .. ':' .. id end\n"
    ));
    lua
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_starts_with_the_prefix() {
        let k = Keys::new("t1");
        for key in [
            k.poller_lease(),
            k.poller_epoch(),
            k.poller_offset(),
            k.poller_offset_at(),
            k.instance("r1"),
            k.seen(1),
            k.stream(3),
            k.owner(3),
            k.replicas(),
            k.partitions_setting(),
            k.user(1),
            k.chat_budget(1),
            k.global_budget(),
            k.inbound(1),
            k.notice(1),
            k.overload_notice(1),
            k.frozen(1),
            k.search_budget(1),
            k.search_notice(1),
            k.recent_429(),
        ] {
            assert!(key.starts_with("t1:v1:"), "{key}");
        }
        assert_eq!(k.left(9, 7), "t1:v1:left:7:9");
        assert_eq!(k.message_map(7, 130), "t1:v1:mm:7:2");
        assert_eq!(k.message_maps_pattern(7), "t1:v1:mm:7:*");
        assert_eq!(k.reported_pattern(7), "t1:v1:repd:7:*");
        assert_eq!(Keys::new("a*b").message_maps_pattern(7), "a\\*b:v1:mm:7:*");
        assert_eq!(
            k.left_patterns(7),
            ["t1:v1:left:7:*".to_string(), "t1:v1:left:*:7".to_string()]
        );
    }

    #[test]
    fn the_lua_prelude_builds_the_same_keys() {
        let lua = lua_prelude();
        assert!(lua.contains("function K.user(id) return B .. 'u:' .. id end"));
        assert!(lua.contains("function K.queue() return B .. 'queue' end"));
        assert!(lua.contains("/ 64)"));
        assert_eq!(pair_id(9, -3), "-3:9");
    }
}
