//! What kind of message a user sent, for the relay policy.

use teloxide::types::{MediaKind, Message, MessageKind as TgKind};

use crate::domain::MessageKind;

/// The kind of `msg` (anything the policy does not name is `Other`).
pub fn kind_of(msg: &Message) -> MessageKind {
    match &msg.kind {
        TgKind::Dice(_) => MessageKind::Dice,
        TgKind::Common(c) => match &c.media_kind {
            MediaKind::Text(_) => MessageKind::Text,
            MediaKind::Photo(_) => MessageKind::Photo,
            MediaKind::Video(_) => MessageKind::Video,
            MediaKind::Animation(_) => MessageKind::Animation,
            MediaKind::Audio(_) => MessageKind::Audio,
            MediaKind::Document(_) => MessageKind::Document,
            MediaKind::Voice(_) => MessageKind::Voice,
            MediaKind::VideoNote(_) => MessageKind::VideoNote,
            MediaKind::Sticker(_) => MessageKind::Sticker,
            MediaKind::Location(_) => MessageKind::Location,
            MediaKind::Venue(_) => MessageKind::Venue,
            MediaKind::Poll(_) => MessageKind::Poll,
            MediaKind::Contact(_) => MessageKind::Contact,
            MediaKind::Story(_) => MessageKind::Story,
            _ => MessageKind::Other,
        },
        _ => MessageKind::Other,
    }
}
