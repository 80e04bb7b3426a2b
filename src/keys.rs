//! Every Redis key anonchat uses, built in one place.
//!
//! All keys start with `{KEY_PREFIX}:v1:` so several bots (and tests) can share
//! one Redis and a future incompatible layout can live beside this one.
//! The list of keys, their types, writers and lifetimes is in `docs/redis.md`;
//! keep the two in step.

/// Message ids per message-map hash (small hashes stay compact listpacks).
pub const MAP_BUCKET: i32 = 64;

/// Consumer group name used on every partition stream.
pub const GROUP: &str = "workers";

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

    /// The common start of every key.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// String `"{replica} {epoch}"`, PX lease: who may call getUpdates.
    pub fn poller_lease(&self) -> String {
        format!("{}poller:lease", self.base)
    }

    /// Integer, INCR on every acquisition: the fencing epoch.
    pub fn poller_epoch(&self) -> String {
        format!("{}poller:epoch", self.base)
    }

    /// Integer: the next getUpdates offset, written with each batch.
    pub fn poller_offset(&self) -> String {
        format!("{}poller:offset", self.base)
    }

    /// Prefix of `seen:{update_id / 128}` dedupe hashes (field `update_id % 128`,
    /// EXPIRE about a day after the last write).
    pub fn seen_prefix(&self) -> String {
        format!("{}seen:", self.base)
    }

    /// Prefix of the partition streams `in:{p}`.
    pub fn stream_prefix(&self) -> String {
        format!("{}in:", self.base)
    }

    /// Stream of partition `p`.
    pub fn stream(&self, p: u32) -> String {
        format!("{}in:{p}", self.base)
    }

    /// Prefix of partition owner leases `owner:{p}` (string replica id, PX).
    pub fn owner_prefix(&self) -> String {
        format!("{}owner:", self.base)
    }

    /// Owner lease of partition `p`.
    pub fn owner(&self, p: u32) -> String {
        format!("{}owner:{p}", self.base)
    }

    /// Sorted set replica id -> last heartbeat (ms): the live replicas.
    pub fn replicas(&self) -> String {
        format!("{}replicas", self.base)
    }

    /// Hash per user: `st` (idle|search|chat), `p` partner id, `lang` language
    /// replies use, `lo` language chosen with /language, `sl` same-language
    /// matching (1), `pr` protect my messages (1). EXPIRE 30 days after the last change.
    pub fn user(&self, id: i64) -> String {
        format!("{}u:{id}", self.base)
    }

    /// Sorted set user id -> enqueue time (ms): who is searching, oldest first.
    pub fn queue(&self) -> String {
        format!("{}queue", self.base)
    }

    /// Sorted set user id -> deadline (ms): searches that time out.
    pub fn search_timers(&self) -> String {
        format!("{}t:search", self.base)
    }

    /// Sorted set "lo:hi" pair -> deadline (ms): chats that end when idle.
    pub fn idle_timers(&self) -> String {
        format!("{}t:idle", self.base)
    }

    /// Sorted set "chat:group" -> flush time (ms): albums being gathered.
    pub fn album_timers(&self) -> String {
        format!("{}t:album", self.base)
    }

    /// List of message ids of one album being gathered (PX 60 s).
    pub fn album(&self, chat: i64, group: &str) -> String {
        format!("{}album:{chat}:{group}", self.base)
    }

    /// Set of user ids that `id` blocked (written by reports; checked by matching).
    pub fn blocks(&self, id: i64) -> String {
        format!("{}blk:{id}", self.base)
    }

    /// Marker "these two just left each other" (EX REJOIN_COOLDOWN_SECS), ids ordered.
    pub fn left(&self, a: i64, b: i64) -> String {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        format!("{}left:{lo}:{hi}", self.base)
    }

    /// Hash of one chat's message-id map bucket: message id -> "chat:message"
    /// of its counterpart (64 ids per bucket, EXPIRE 48 h).
    pub fn message_map(&self, chat: i64, message_id: i32) -> String {
        format!("{}mm:{chat}:{}", self.base, message_id / MAP_BUCKET)
    }

    /// Pub/sub channel: "poller" when the poller lease is released,
    /// "partitions" when partitions are handed back, so others act at once.
    pub fn events(&self) -> String {
        format!("{}events", self.base)
    }

    /// String: the partition count this deployment was created with.
    pub fn partitions_setting(&self) -> String {
        format!("{}partitions", self.base)
    }
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
            k.seen_prefix(),
            k.stream(3),
            k.owner(3),
            k.replicas(),
            k.partitions_setting(),
        ] {
            assert!(key.starts_with("t1:v1:"), "{key}");
        }
        assert_eq!(k.stream(3), format!("{}3", k.stream_prefix()));
        assert_eq!(k.owner(3), format!("{}3", k.owner_prefix()));
    }
}
