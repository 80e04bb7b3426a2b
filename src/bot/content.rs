//! What kind of message a user sent, for the relay policy.

use teloxide::types::{MediaKind, Message, MessageKind as TgKind};

use crate::domain::{MediaMode, MessageKind, Visual};

/// A photo, video or animation that the receiver's setting asks to blur or
/// replace by a text.
#[derive(Debug, Clone)]
pub struct Veiled {
    pub mode: MediaMode,
    pub kind: Visual,
    pub file_id: String,
    pub caption: Option<String>,
    pub entities: Option<Vec<teloxide::types::MessageEntity>>,
}

/// `msg` as the receiver's `mode` wants it, when it is visual media and the
/// mode is not "show".
pub fn veiled(msg: &Message, mode: MediaMode) -> Option<Veiled> {
    if mode == MediaMode::Show {
        return None;
    }
    let TgKind::Common(c) = &msg.kind else {
        return None;
    };
    let (kind, file_id) = match &c.media_kind {
        MediaKind::Photo(p) => (Visual::Photo, p.photo.last()?.file.id.0.clone()),
        MediaKind::Video(v) => (Visual::Video, v.video.file.id.0.clone()),
        MediaKind::Animation(a) => (Visual::Animation, a.animation.file.id.0.clone()),
        _ => return None,
    };
    Some(Veiled {
        mode,
        kind,
        file_id,
        caption: msg.caption().map(str::to_string),
        entities: msg.caption_entities().map(<[_]>::to_vec),
    })
}

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

/// Whether `msg` carries a link or an @mention (in its entities, or spelled
/// out in its text or caption).
pub fn has_link(msg: &Message) -> bool {
    use teloxide::types::MessageEntityKind as E;
    let entities = msg.entities().or(msg.caption_entities()).unwrap_or(&[]);
    let by_entity = entities.iter().any(|e| {
        matches!(
            e.kind,
            E::Url | E::TextLink { .. } | E::Mention | E::TextMention { .. }
        )
    });
    by_entity || msg.text().or(msg.caption()).is_some_and(looks_like_link)
}

/// A URL, a t.me link or an @username written out.
fn looks_like_link(s: &str) -> bool {
    let lower = s.to_lowercase();
    if [
        "http://",
        "https://",
        "www.",
        "t.me/",
        "telegram.me/",
        "tg://",
    ]
    .iter()
    .any(|p| lower.contains(p))
    {
        return true;
    }
    // "@name" with at least 3 name characters, not inside a word (e-mail).
    let chars: Vec<char> = s.chars().collect();
    chars.iter().enumerate().any(|(i, &c)| {
        c == '@'
            && (i == 0 || !chars[i - 1].is_alphanumeric())
            && chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .count()
                >= 3
    })
}

#[cfg(test)]
mod tests {
    use super::looks_like_link;

    #[test]
    fn links_and_mentions_are_recognised() {
        for s in [
            "see https://example.com",
            "t.me/somechannel",
            "WWW.example.org",
            "ask @someone",
            "@abc",
        ] {
            assert!(looks_like_link(s), "{s}");
        }
        for s in ["hello", "me@example", "@ab", "a @ b", ""] {
            assert!(!looks_like_link(s), "{s}");
        }
    }
}
