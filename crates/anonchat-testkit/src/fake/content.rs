//! Builders for the JSON objects Telegram puts on the wire (users, chats, media).
//!
//! Everything here is plain `serde_json::Value` so the fake can carry any field a
//! test invents, while the shapes stay what teloxide-core 0.13 deserializes.

use serde_json::{json, Map, Value};

use super::TgUser;

/// Fields that make up the "content" of a message: what `copyMessage` carries over.
pub(crate) const CONTENT_KEYS: &[&str] = &[
    "text",
    "entities",
    "link_preview_options",
    "caption",
    "caption_entities",
    "show_caption_above_media",
    "has_media_spoiler",
    "photo",
    "video",
    "sticker",
    "voice",
    "video_note",
    "audio",
    "document",
    "animation",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "story",
    "media_group_id",
];

/// Fields whose content is the message itself (at least one must be present for a copy).
pub(crate) const PRIMARY_CONTENT_KEYS: &[&str] = &[
    "text",
    "photo",
    "video",
    "sticker",
    "voice",
    "video_note",
    "audio",
    "document",
    "animation",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "story",
];

/// Messages carrying any of these can't be copied (Bot API: service messages, paid
/// media, giveaways and invoices).
pub(crate) const UNCOPYABLE_KEYS: &[&str] = &[
    "invoice",
    "giveaway",
    "giveaway_winners",
    "giveaway_created",
    "giveaway_completed",
    "paid_media",
    "game",
    "successful_payment",
    "refunded_payment",
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "message_auto_delete_timer_changed",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "users_shared",
    "chat_shared",
    "connected_website",
    "write_access_allowed",
    "passport_data",
    "proximity_alert_triggered",
    "boost_added",
    "chat_background_set",
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "general_forum_topic_hidden",
    "general_forum_topic_unhidden",
    "video_chat_scheduled",
    "video_chat_started",
    "video_chat_ended",
    "video_chat_participants_invited",
    "web_app_data",
    "gift",
    "unique_gift",
];

/// Media kinds that can carry a caption.
pub(crate) const CAPTIONED_KEYS: &[&str] =
    &["photo", "video", "document", "audio", "animation", "voice"];

pub(crate) fn user_json(u: &TgUser) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(u.id));
    m.insert("is_bot".into(), json!(false));
    m.insert("first_name".into(), json!(u.first_name));
    if let Some(v) = &u.last_name {
        m.insert("last_name".into(), json!(v));
    }
    if let Some(v) = &u.username {
        m.insert("username".into(), json!(v));
    }
    if let Some(v) = &u.language_code {
        m.insert("language_code".into(), json!(v));
    }
    Value::Object(m)
}

pub(crate) fn private_chat_json(u: &TgUser) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(u.id));
    m.insert("type".into(), json!("private"));
    m.insert("first_name".into(), json!(u.first_name));
    if let Some(v) = &u.last_name {
        m.insert("last_name".into(), json!(v));
    }
    if let Some(v) = &u.username {
        m.insert("username".into(), json!(v));
    }
    Value::Object(m)
}

/// A short stable id derived from a file id, standing in for `file_unique_id`.
pub(crate) fn unique_id(file_id: &str) -> String {
    // FNV-1a: stable across runs, no extra dependency.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in file_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("AQAD{h:016x}")
}

fn file(file_id: &str, size: u64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("file_id".into(), json!(file_id));
    m.insert("file_unique_id".into(), json!(unique_id(file_id)));
    m.insert("file_size".into(), json!(size));
    m
}

fn with(mut m: Map<String, Value>, extra: Value) -> Value {
    if let Value::Object(e) = extra {
        m.extend(e);
    }
    Value::Object(m)
}

/// The content fields of a media message of `kind` whose (largest) file is `file_id`.
/// Returns `None` for an unknown kind.
pub(crate) fn media_content(kind: &str, file_id: &str) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    match kind {
        "photo" => {
            let small = with(
                file(&format!("{file_id}-s"), 1_234),
                json!({"width": 90, "height": 67}),
            );
            let big = with(file(file_id, 65_432), json!({"width": 1280, "height": 960}));
            out.insert("photo".into(), json!([small, big]));
        }
        "video" => {
            out.insert(
                "video".into(),
                with(
                    file(file_id, 1_048_576),
                    json!({"width": 1280, "height": 720, "duration": 12, "mime_type": "video/mp4"}),
                ),
            );
        }
        "animation" => {
            let anim = with(
                file(file_id, 204_800),
                json!({"width": 320, "height": 240, "duration": 3, "file_name": "fake.gif.mp4", "mime_type": "video/mp4"}),
            );
            // Telegram also sends `document` for animations (backward compatibility).
            let doc = with(
                file(file_id, 204_800),
                json!({"file_name": "fake.gif.mp4", "mime_type": "video/mp4"}),
            );
            out.insert("animation".into(), anim);
            out.insert("document".into(), doc);
        }
        "voice" => {
            out.insert(
                "voice".into(),
                with(
                    file(file_id, 10_240),
                    json!({"duration": 4, "mime_type": "audio/ogg"}),
                ),
            );
        }
        "video_note" => {
            out.insert(
                "video_note".into(),
                with(
                    file(file_id, 300_000),
                    json!({"length": 240, "duration": 5}),
                ),
            );
        }
        "audio" => {
            out.insert(
                "audio".into(),
                with(
                    file(file_id, 3_000_000),
                    json!({"duration": 180, "performer": "Fake Artist", "title": "Fake Song", "file_name": "song.mp3", "mime_type": "audio/mpeg"}),
                ),
            );
        }
        "document" => {
            out.insert(
                "document".into(),
                with(
                    file(file_id, 52_000),
                    json!({"file_name": "file.pdf", "mime_type": "application/pdf"}),
                ),
            );
        }
        "sticker" => {
            out.insert(
                "sticker".into(),
                with(
                    file(file_id, 20_000),
                    json!({"width": 512, "height": 512, "type": "regular", "is_animated": false, "is_video": false, "emoji": "🙂", "set_name": "FakeStickers"}),
                ),
            );
        }
        _ => return None,
    }
    Some(out)
}

/// Length of a string in UTF-16 code units (how Telegram measures entity offsets).
pub(crate) fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}
