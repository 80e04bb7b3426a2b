//! What fired timers do for users: a search that found nobody and a chat
//! that went idle are told (both sides), and a gathered album is relayed as
//! one. Called by the timer loop of the replica runtime.

use super::deps::{Deps, HandlerResult};
use super::keyboards::Keyboard;
use super::reply::{deliver, say, Delivery, Reply};
use super::texts;
use crate::domain::{Due, Route, Traffic};

/// Acts on one fired timer.
pub async fn fire(deps: &Deps, due: &Due) -> HandlerResult {
    match due {
        Due::SearchTimedOut { user, lang } => {
            let body = texts::search_timeout(*lang, deps.chat.search_timeout());
            say(
                deps,
                *user,
                Reply::body(body, *lang).keyboard(Keyboard::Idle),
            )
            .await
        }
        Due::ChatIdle {
            a,
            a_lang,
            b,
            b_lang,
        } => {
            for (user, lang) in [(*a, *a_lang), (*b, *b_lang)] {
                let body = texts::idle_timeout(lang, deps.chat.idle_timeout());
                say(deps, user, Reply::body(body, lang).keyboard(Keyboard::Idle)).await?;
            }
            Ok(())
        }
        Due::Album { user, group, ids } => relay_album(deps, *user, group, ids).await,
    }
}

/// Relays a gathered album to the user's partner, then forgets it.
async fn relay_album(deps: &Deps, user: i64, group: &str, ids: &[i32]) -> HandlerResult {
    let sends = ids.len() as u32;
    let route = deps
        .chat
        .route(user, None, None, Traffic::Album { sends })
        .await?;
    if let Route::Chat {
        partner,
        protect,
        wait,
        ..
    } = route
    {
        let d = Delivery {
            user,
            partner,
            ids,
            album: true,
            reply_to: None,
            protect,
            wait,
            lang: None,
        };
        deliver(deps, d).await?;
    }
    deps.chat.album_done(user, group).await?;
    Ok(())
}
