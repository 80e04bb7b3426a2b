//! Ingest: getting updates from Telegram into the partitioned Redis streams.
//!
//! Two ways in, one way down: the elected poller ([`poller`]) or the webhook
//! endpoint ([`webhook`]) hands raw update JSON to the same fenced ingest script
//! (`scripts/ingest.lua`), which dedupes by update id and appends each update
//! to the stream of its chat's partition. Updates are stored raw so that an
//! update teloxide cannot parse is still written, then logged and skipped by
//! the worker, instead of failing a whole batch here.

pub mod poller;
pub mod webhook;

use serde_json::Value;

use crate::store::IngestItem;

/// Update types requested from Telegram (`allowed_updates`).
pub const ALLOWED_UPDATES: &[&str] = &[
    "message",
    "edited_message",
    "callback_query",
    "message_reaction",
    "my_chat_member",
];

/// The chat an update belongs to: all updates about one private chat land in
/// one partition and are handled in order. Falls back to the sender, then 0.
pub fn chat_key(update: &Value) -> i64 {
    let Some(obj) = update.as_object() else {
        return 0;
    };
    for (name, body) in obj {
        if name == "update_id" {
            continue;
        }
        let candidates = [
            body.pointer("/chat/id"),
            body.pointer("/message/chat/id"),
            body.pointer("/from/id"),
            body.pointer("/user/id"),
        ];
        if let Some(id) = candidates.into_iter().flatten().find_map(Value::as_i64) {
            return id;
        }
    }
    0
}

pub use crate::keys::partition_of;

/// Turns one raw update into an ingest item; None when it has no update id
/// (nothing can dedupe or confirm it).
pub fn item_for(update: &Value, partitions: u32) -> Option<IngestItem> {
    let update_id = update.get("update_id")?.as_i64()?;
    let chat = chat_key(update);
    Some(IngestItem {
        update_id,
        partition: partition_of(chat, partitions),
        chat,
        raw: update.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_key_follows_the_update_kind() {
        assert_eq!(
            chat_key(&json!({"update_id": 1, "message": {"chat": {"id": 42}, "from": {"id": 7}}})),
            42
        );
        assert_eq!(
            chat_key(
                &json!({"update_id": 1, "callback_query": {"from": {"id": 9}, "message": {"chat": {"id": 43}}}})
            ),
            43
        );
        assert_eq!(
            chat_key(&json!({"update_id": 1, "callback_query": {"from": {"id": 9}}})),
            9
        );
        assert_eq!(chat_key(&json!({"update_id": 1})), 0);
        assert_eq!(chat_key(&json!("garbage")), 0);
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        let mut counts = [0u32; 8];
        for chat in 1..=8000i64 {
            let p = partition_of(chat, 8);
            assert_eq!(p, partition_of(chat, 8));
            counts[p as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn item_needs_an_update_id() {
        assert!(item_for(&json!({"message": {}}), 4).is_none());
        let item = item_for(&json!({"update_id": 5, "message": {"chat": {"id": 3}}}), 4);
        let Some(item) = item else {
            panic!("an update with an id gives an item");
        };
        assert_eq!(item.update_id, 5);
        assert_eq!(item.chat, 3);
    }
}
