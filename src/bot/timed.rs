//! What fired timers do for users, and album delivery.
//!
//! A timer never talks to Telegram itself: the timer script changes the state
//! and queues an [`Event`] for each user to tell into that user's partition
//! stream, and the worker owning the user's chat calls [`on_event`] in order
//! with the user's own updates (retried like an update on failure, so a
//! notice is sent at least once, and a failure telling one side never skips
//! the other).
//!
//! Albums: parts are gathered in Redis, each with the chat it was sent in.
//! [`flush_album`] delivers them, as one `copyMessages` per album, before the
//! sender's next message, edit, reaction, Search, Next or Stop is handled
//! (so an album keeps its place in the chat and reaches the partner it was
//! sent to), or when the album's window closes ([`Event::AlbumDue`]).

use super::deps::{Deps, HandlerResult};
use super::keyboards::Keyboard;
use super::reply::{deliver, not_delivered, overloaded, say, Delivery, Reply};
use super::texts;
use crate::domain::{AlbumPart, Event, Route, Traffic};

/// Handles one event for `user`.
pub async fn on_event(deps: &Deps, user: i64, event: &Event) -> HandlerResult {
    match event {
        Event::SearchTimedOut { lang } => {
            let body = texts::search_timeout(*lang, deps.chat.search_timeout());
            let reply = Reply::body(body, *lang).keyboard(Keyboard::Idle);
            say(deps, user, reply).await
        }
        Event::ChatIdle { lang } => {
            let body = texts::idle_timeout(*lang, deps.chat.idle_timeout());
            let reply = Reply::body(body, *lang).keyboard(Keyboard::Idle);
            say(deps, user, reply).await
        }
        Event::Found { lang, chat } => {
            // A chat that already ended (the other side left at once) has
            // told this user so; "found" would only confuse.
            if !deps.chat.in_chat(user, *chat).await? {
                return Ok(());
            }
            say(
                deps,
                user,
                Reply::key("found", *lang).keyboard(Keyboard::Chatting),
            )
            .await
        }
        Event::AlbumDue => flush_album(deps, user).await,
    }
}

/// Delivers the user's gathered album parts, if any, each album to the
/// partner of the chat it was sent in. Parts whose chat has ended go to
/// nobody, and the sender is told once. Taking the parts out is atomic, so
/// each is delivered at most once; a flush that finds nothing does nothing.
pub async fn flush_album(deps: &Deps, user: i64) -> HandlerResult {
    let parts = deps.chat.album_take(user).await?;
    let mut undelivered = false;
    for (chat, ids) in albums(&parts) {
        let sends = ids.len() as u32;
        let route = deps
            .chat
            .route(user, None, None, Traffic::Album { sends })
            .await?;
        match route {
            Route::Chat {
                partner,
                protect,
                wait,
                chat: now,
                ..
            } if now == chat || chat == 0 => {
                let d = Delivery {
                    user,
                    partner,
                    ids: &ids,
                    album: true,
                    reply_to: None,
                    protect,
                    wait,
                    chat: now,
                    lang: None,
                    veiled: None,
                };
                deliver(deps, d).await?;
            }
            Route::Overloaded { notify, lang } => overloaded(deps, user, notify, lang).await?,
            _ => undelivered = true,
        }
    }
    if undelivered {
        not_delivered(deps, user, None).await?;
    }
    Ok(())
}

/// Groups parts into albums (same chat and media group), in the order their
/// first parts arrived; ids ascending without repeats within each album.
fn albums(parts: &[AlbumPart]) -> Vec<(u64, Vec<i32>)> {
    let mut out: Vec<(u64, &str, Vec<i32>)> = Vec::new();
    for p in parts {
        match out
            .iter_mut()
            .find(|(c, g, _)| *c == p.chat && *g == p.group)
        {
            Some((_, _, ids)) => ids.push(p.message),
            None => out.push((p.chat, &p.group, vec![p.message])),
        }
    }
    out.into_iter()
        .map(|(chat, _, mut ids)| {
            ids.sort_unstable();
            ids.dedup();
            (chat, ids)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(chat: u64, message: i32, group: &str) -> AlbumPart {
        AlbumPart {
            chat,
            message,
            group: group.to_string(),
        }
    }

    #[test]
    fn parts_group_into_albums_in_arrival_order() {
        let parts = [
            part(1, 11, "b"),
            part(1, 10, "b"),
            part(1, 12, "a"),
            part(1, 11, "b"),
            part(2, 13, "a"),
        ];
        assert_eq!(
            albums(&parts),
            vec![(1, vec![10, 11]), (1, vec![12]), (2, vec![13])]
        );
    }
}
