//! The chat core: searching and pairing, stop/next, relaying every kind of
//! message anonymously (albums, replies, edits, reactions), unreachable
//! partners, Redis-side timers, races between partners, restarts, scale,
//! languages and settings.
//!
//! Replies are matched on the exact localized text (`texts::text`), so a test
//! checks what the user reads. "Exactly once" is checked after a barrier (the
//! user's own `/help` answer: updates of one chat are handled in order) or,
//! for timers that fire on their own, by watching for a bounded window that a
//! second copy does not show up.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anonchat::bot::commands::help;
use anonchat::bot::texts::{text, text_with, Lang};
use anonchat_testkit::fake::{Received, Sent, TgUser};
use serde_json::{json, Value};

use crate::harness::{eventually, poll_until, Cluster, User, WAIT};

pub(crate) const EN: Lang = Lang::En;
const RU: Lang = Lang::Ru;

/// English text of `key`.
pub(crate) fn en(key: &str) -> String {
    text(key, EN)
}

/// A reply of the bot itself (not a relayed copy) whose text is exactly `key`'s.
pub(crate) fn says(r: &Received, key: &str, lang: Lang) -> bool {
    r.source.is_none() && r.text() == Some(text(key, lang).as_str())
}

/// A reply containing the fixed part of a text with a `%{minutes}` placeholder.
pub(crate) fn says_timed(r: &Received, key: &str, lang: Lang) -> bool {
    const MARK: &str = "\u{1}";
    let full = text_with(key, lang, &[("minutes", MARK)]);
    let fragment = full
        .split(MARK)
        .max_by_key(|s| s.len())
        .unwrap_or("")
        .trim()
        .to_string();
    assert!(fragment.len() > 5, "no usable fragment of {key}: {full:?}");
    r.source.is_none() && r.text().is_some_and(|t| t.contains(&fragment))
}

pub(crate) fn count_in(u: &User, key: &str, lang: Lang) -> usize {
    u.received().iter().filter(|r| says(r, key, lang)).count()
}

pub(crate) fn count(u: &User, key: &str) -> usize {
    count_in(u, key, EN)
}

/// Waits until `u` has received reply `key` at least `n` times; returns the n-th.
pub(crate) async fn wait_nth_in(u: &User, key: &str, lang: Lang, n: usize) -> Received {
    let found =
        u.tg.wait_until(WAIT, || {
            u.received()
                .into_iter()
                .filter(|r| says(r, key, lang))
                .nth(n - 1)
        })
        .await;
    found.unwrap_or_else(|| {
        panic!(
            "{} never got {key:?} ({lang:?}) #{n}; chat has: {:#?}",
            u.info.first_name,
            summary(u)
        )
    })
}

pub(crate) async fn wait_says_in(u: &User, key: &str, lang: Lang) -> Received {
    wait_nth_in(u, key, lang, 1).await
}

pub(crate) async fn wait_says(u: &User, key: &str) -> Received {
    wait_nth_in(u, key, EN, 1).await
}

/// Waits for one more reply `key` than `u` has now, after `act` runs.
pub(crate) async fn expect_after(u: &User, key: &str, lang: Lang, act: impl FnOnce()) -> Received {
    let before = count_in(u, key, lang);
    act();
    wait_nth_in(u, key, lang, before + 1).await
}

/// (method, text, source) of everything in `u`'s chat, for failure messages.
/// One line of a chat summary: method, text, copied from.
pub(crate) type Line = (String, Option<String>, Option<(i64, i32)>);

pub(crate) fn summary(u: &User) -> Vec<Line> {
    u.received()
        .iter()
        .map(|r| (r.method.clone(), r.text().map(str::to_string), r.source))
        .collect()
}

/// Every update `u` sent before this call has been handled: `/help` is
/// answered only after them (updates of one chat are handled in order).
pub(crate) async fn barrier(u: &User, lang: Lang) {
    let help = help(lang);
    let is_help = |r: &Received| r.source.is_none() && r.text() == Some(help.as_str());
    let before = u.received().iter().filter(|r| is_help(r)).count();
    u.command("/help");
    let done =
        u.tg.wait_until(WAIT, || {
            (u.received().iter().filter(|r| is_help(r)).count() > before).then_some(())
        })
        .await;
    assert!(
        done.is_some(),
        "{}'s /help never answered: {:#?}",
        u.info.first_name,
        summary(u)
    );
}

/// Fails if, within `window`, `u` gets more than `allowed` messages matching
/// `pred` (for things that fire on their own, such as timers).
pub(crate) async fn assert_no_more(
    u: &User,
    window: Duration,
    allowed: usize,
    what: &str,
    pred: impl Fn(&Received) -> bool,
) {
    let extra =
        u.tg.wait_until(window, || {
            let n = u.received().iter().filter(|r| pred(r)).count();
            (n > allowed).then_some(n)
        })
        .await;
    assert!(
        extra.is_none(),
        "{} got {what} {} times (want {allowed}): {:#?}",
        u.info.first_name,
        extra.unwrap_or(0),
        summary(u)
    );
}

/// Labels of the reply keyboard sent with `r`, row by row flattened.
fn keyboard(r: &Received) -> Option<Vec<String>> {
    let markup = r.params.get("reply_markup")?;
    let markup = match markup {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        v => v.clone(),
    };
    let rows = markup.get("keyboard")?.as_array()?;
    Some(
        rows.iter()
            .flat_map(|row| row.as_array().cloned().unwrap_or_default())
            .filter_map(|b| {
                b.get("text")
                    .and_then(Value::as_str)
                    .or(b.as_str())
                    .map(str::to_string)
            })
            .collect(),
    )
}

fn assert_keyboard(r: &Received, keys: &[&str], lang: Lang) {
    let want: Vec<String> = keys.iter().map(|k| text(k, lang)).collect();
    assert_eq!(
        keyboard(r).as_ref(),
        Some(&want),
        "reply keyboard of {:?}: {}",
        r.text(),
        r.params
    );
}

/// Callback data of the inline keyboard on `r` as it is now.
fn inline_data(r: &Received) -> Vec<String> {
    r.content["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["callback_data"].as_str().map(str::to_string))
        .collect()
}

/// A number that may have come as a JSON number or a form string.
pub(crate) fn int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Waits for `to` to receive the bot's copy of `from`'s message `sent`.
async fn copy_of(to: &User, from: &User, sent: Sent) -> Received {
    let src = Some((from.id(), sent.message_id));
    to.wait_for(
        &format!(
            "the copy of {}'s message {}",
            from.info.first_name, sent.message_id
        ),
        move |r| r.source == src,
    )
    .await
}

/// `a` searches alone, then `b` searches: both are told they found someone.
pub(crate) async fn pair(a: &User, b: &User) {
    expect_after(a, "searching", EN, || {
        a.command("/search");
    })
    .await;
    let (fa, fb) = (count(a, "found"), count(b, "found"));
    b.command("/search");
    wait_nth_in(a, "found", EN, fa + 1).await;
    wait_nth_in(b, "found", EN, fb + 1).await;
}

/// The chat core's Redis state: user hashes and the search queue.
#[derive(Clone)]
pub(crate) struct Db {
    conn: redis::aio::MultiplexedConnection,
    keys: anonchat::keys::Keys,
}

impl Db {
    pub(crate) async fn new(cluster: &Cluster) -> Db {
        Db {
            conn: cluster.redis.conn().await,
            keys: cluster.keys(),
        }
    }

    /// (`st`, `p`) of one user; a missing hash is an idle user.
    pub(crate) async fn state(&self, id: i64) -> (String, Option<i64>) {
        let mut conn = self.conn.clone();
        let (st, p): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.user(id))
            .arg("st")
            .arg("p")
            .query_async(&mut conn)
            .await
            .expect("HMGET user");
        (
            st.unwrap_or_else(|| "idle".into()),
            p.and_then(|p| p.parse().ok()),
        )
    }

    /// States of many users in one round trip.
    async fn states(&self, ids: &[i64]) -> Vec<(String, Option<i64>)> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.keys.user(*id))
                .arg("st")
                .arg("p");
        }
        let rows: Vec<(Option<String>, Option<String>)> =
            pipe.query_async(&mut conn).await.expect("HMGET users");
        rows.into_iter()
            .map(|(st, p)| {
                (
                    st.unwrap_or_else(|| "idle".into()),
                    p.and_then(|p| p.parse().ok()),
                )
            })
            .collect()
    }

    pub(crate) async fn queue(&self) -> Vec<i64> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.queue())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .expect("ZRANGE queue");
        members.iter().filter_map(|m| m.parse().ok()).collect()
    }

    pub(crate) async fn assert_state(&self, u: &User, st: &str, partner: Option<&User>) {
        let got = self.state(u.id()).await;
        let want_p = partner.map(User::id);
        let ok = got.0 == st && (st != "chat" || got.1 == want_p);
        assert!(
            ok,
            "{} is {got:?}, want ({st}, {want_p:?})",
            u.info.first_name
        );
        let queued = self.queue().await.contains(&u.id());
        assert_eq!(
            queued,
            st == "search",
            "{} in the queue: {queued}, state {st}",
            u.info.first_name
        );
    }
}

// ---------------------------------------------------------------- pairing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pairs_two_users_once_and_keyboards_follow_the_state() {
    let cluster = Cluster::start(2).await;
    let db = Db::new(&cluster).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");

    let searching = expect_after(&alice, "searching", EN, || {
        alice.command("/search");
    })
    .await;
    assert_keyboard(&searching, &["btn_cancel"], EN);
    db.assert_state(&alice, "search", None).await;

    // Searching again changes nothing.
    expect_after(&alice, "already_searching", EN, || {
        alice.command("/search");
    })
    .await;
    db.assert_state(&alice, "search", None).await;
    assert_eq!(db.queue().await, vec![alice.id()]);

    // Bob presses the Search button: a pair forms, both are told once.
    bob.send_text(&en("btn_search"));
    let a_found = wait_says(&alice, "found").await;
    let b_found = wait_says(&bob, "found").await;
    assert_keyboard(&a_found, &["btn_next", "btn_stop", "btn_report"], EN);
    assert_keyboard(&b_found, &["btn_next", "btn_stop", "btn_report"], EN);
    db.assert_state(&alice, "chat", Some(&bob)).await;
    db.assert_state(&bob, "chat", Some(&alice)).await;
    assert_eq!(count(&bob, "searching"), 0, "Bob had someone waiting");

    // Searching while chatting changes nothing either.
    expect_after(&bob, "already_chatting", EN, || {
        bob.command("/search");
    })
    .await;
    expect_after(&alice, "already_chatting", EN, || {
        alice.send_text(&en("btn_search"));
    })
    .await;
    barrier(&alice, EN).await;
    barrier(&bob, EN).await;
    assert_eq!(count(&alice, "found"), 1, "{:#?}", summary(&alice));
    assert_eq!(count(&bob, "found"), 1, "{:#?}", summary(&bob));
    db.assert_state(&alice, "chat", Some(&bob)).await;
    db.assert_state(&bob, "chat", Some(&alice)).await;

    // And they can talk.
    let hi = alice.send_text("hi Bob");
    assert_eq!(copy_of(&bob, &alice, hi).await.text(), Some("hi Bob"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_chat_for_both_and_cancel_leaves_the_queue() {
    let cluster = Cluster::start(1).await;
    let db = Db::new(&cluster).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    let carol = cluster.user("Carol");
    pair(&alice, &bob).await;

    alice.send_text(&en("btn_stop"));
    let left = wait_says(&alice, "you_left").await;
    let gone = wait_says(&bob, "partner_left").await;
    assert_keyboard(&left, &["btn_search", "btn_report"], EN);
    assert_keyboard(&gone, &["btn_search", "btn_report"], EN);
    db.assert_state(&alice, "idle", None).await;
    db.assert_state(&bob, "idle", None).await;

    // Idle: nothing to stop, and messages go nowhere.
    expect_after(&alice, "nothing_to_stop", EN, || {
        alice.command("/stop");
    })
    .await;
    let lost = alice.send_text("anyone there?");
    wait_says(&alice, "not_in_chat").await;
    expect_after(&bob, "not_in_chat", EN, || {
        bob.send_text("hello?");
    })
    .await;
    barrier(&alice, EN).await;
    assert!(
        !bob.received()
            .iter()
            .any(|r| r.source == Some((alice.id(), lost.message_id))),
        "a message sent after Stop reached the old partner"
    );
    assert_eq!(count(&alice, "partner_left"), 0);
    assert_eq!(count(&bob, "you_left"), 0);

    // Cancel while searching: out of the queue, so Carol waits alone.
    expect_after(&alice, "searching", EN, || {
        alice.command("/search");
    })
    .await;
    let cancelled = expect_after(&alice, "search_cancelled", EN, || {
        alice.send_text(&en("btn_cancel"));
    })
    .await;
    assert_keyboard(&cancelled, &["btn_search"], EN);
    db.assert_state(&alice, "idle", None).await;
    expect_after(&carol, "searching", EN, || {
        carol.command("/search");
    })
    .await;
    db.assert_state(&carol, "search", None).await;
    assert_eq!(count(&alice, "found"), 1);

    // /stop while searching cancels too.
    expect_after(&carol, "search_cancelled", EN, || {
        carol.command("/stop");
    })
    .await;
    db.assert_state(&carol, "idle", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_ends_the_chat_searches_again_and_never_rematches_the_same_pair() {
    let cluster = Cluster::start(1).await;
    let db = Db::new(&cluster).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    let carol = cluster.user("Carol");
    pair(&alice, &bob).await;

    let searching_before = count(&alice, "searching");
    alice.send_text(&en("btn_next"));
    wait_says(&alice, "you_left").await;
    wait_says(&bob, "partner_left").await;
    let again = wait_nth_in(&alice, "searching", EN, searching_before + 1).await;
    assert_keyboard(&again, &["btn_cancel"], EN);
    db.assert_state(&alice, "search", None).await;

    // Bob searches: Alice waits, but they just left each other.
    expect_after(&bob, "searching", EN, || {
        bob.command("/search");
    })
    .await;
    db.assert_state(&alice, "search", None).await;
    db.assert_state(&bob, "search", None).await;
    assert_eq!(db.queue().await, vec![alice.id(), bob.id()]);

    // Carol is matched with the longest-waiting compatible user: Alice.
    carol.command("/search");
    wait_says(&carol, "found").await;
    wait_nth_in(&alice, "found", EN, 2).await;
    db.assert_state(&alice, "chat", Some(&carol)).await;
    db.assert_state(&carol, "chat", Some(&alice)).await;
    db.assert_state(&bob, "search", None).await;
    assert_eq!(count(&bob, "found"), 1, "{:#?}", summary(&bob));

    // Next with nobody compatible waiting: back in the queue.
    let bob_searching = count(&bob, "searching");
    carol.command("/next");
    wait_says(&carol, "you_left").await;
    wait_says(&alice, "partner_left").await;
    // Bob was waiting and has no history with Carol.
    wait_nth_in(&bob, "found", EN, 2).await;
    wait_nth_in(&carol, "found", EN, 2).await;
    db.assert_state(&carol, "chat", Some(&bob)).await;
    db.assert_state(&bob, "chat", Some(&carol)).await;
    db.assert_state(&alice, "idle", None).await;
    assert_eq!(count(&bob, "searching"), bob_searching);
}

// ---------------------------------------------------------------- relay

fn photo(file: &str) -> Value {
    json!([
        {"file_id": format!("{file}-s"), "file_unique_id": format!("{file}us"), "file_size": 1234, "width": 90, "height": 67},
        {"file_id": file, "file_unique_id": format!("{file}u"), "file_size": 65432, "width": 1280, "height": 960},
    ])
}

/// Every kind `RELAY_KINDS` lets through by default (contacts and stories
/// are refused: see `consent::contacts_and_stories_are_never_relayed_and_the_sender_is_told_once`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_message_is_copied_without_revealing_the_sender() {
    let cluster = Cluster::start(1).await;
    let tg = cluster.tg.clone();
    const ALICE_ID: i64 = 4_242_424_242;
    let alice = cluster.user_with(
        TgUser::new(ALICE_ID, "Zebediah")
            .with_last_name("Quimbleworth")
            .with_username("zq_secret_handle"),
    );
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;

    let bold = json!([{"type": "bold", "offset": 6, "length": 4}, {"type": "text_link", "offset": 11, "length": 4, "url": "https://example.com/"}]);
    let cap_entities = json!([{"type": "italic", "offset": 0, "length": 3}]);
    let a = &alice.info;
    let sent: Vec<(&str, Sent)> = vec![
        ("text", tg.send_text_with_entities(a, "hello bold link", bold.clone())),
        (
            "photo",
            tg.send_message(a, json!({"photo": photo("PHOTO1"), "caption": "sea view", "caption_entities": cap_entities})),
        ),
        ("video", tg.send_video(a, Some("clip"))),
        (
            "animation",
            tg.send_message(a, json!({
                "animation": {"file_id": "ANIM1", "file_unique_id": "ANIM1u", "width": 320, "height": 240, "duration": 3, "file_name": "a.gif.mp4", "mime_type": "video/mp4", "file_size": 2048},
                "document": {"file_id": "ANIM1", "file_unique_id": "ANIM1u", "file_name": "a.gif.mp4", "mime_type": "video/mp4", "file_size": 2048},
                "caption": "lol",
            })),
        ),
        ("voice", tg.send_voice(a)),
        ("video_note", tg.send_video_note(a)),
        (
            "audio",
            tg.send_message(a, json!({"audio": {"file_id": "AUD1", "file_unique_id": "AUD1u", "duration": 180, "performer": "Band", "title": "Song", "file_name": "s.mp3", "mime_type": "audio/mpeg", "file_size": 3000}})),
        ),
        ("document", tg.send_document(a, Some("the report"))),
        ("sticker", tg.send_sticker(a)),
        (
            "location",
            tg.send_message(a, json!({"location": {"latitude": 51.5, "longitude": -0.12}})),
        ),
        (
            "venue",
            tg.send_message(a, json!({
                "venue": {"location": {"latitude": 48.85, "longitude": 2.35}, "title": "Cafe", "address": "1 Rue"},
                "location": {"latitude": 48.85, "longitude": 2.35},
            })),
        ),
        (
            "poll",
            tg.send_message(a, json!({"poll": {
                "id": "5000000000000000001", "question": "Tea or coffee?",
                "options": [{"text": "Tea", "voter_count": 0}, {"text": "Coffee", "voter_count": 0}],
                "total_voter_count": 0, "is_closed": false, "is_anonymous": true,
                "type": "regular", "allows_multiple_answers": false,
            }})),
        ),
        ("dice", tg.send_message(a, json!({"dice": {"emoji": "🎲", "value": 4}}))),
    ];

    for (kind, s) in &sent {
        let copy = copy_of(&bob, &alice, *s).await;
        assert_eq!(copy.method, "copyMessage", "{kind}");
        assert_eq!(int(&copy.params["from_chat_id"]), Some(ALICE_ID), "{kind}");
        assert_eq!(
            int(&copy.params["message_id"]),
            Some(i64::from(s.message_id)),
            "{kind}"
        );
        assert!(
            copy.content.get(*kind).is_some(),
            "{kind}: {}",
            copy.content
        );
    }
    let by_kind = |kind: &str| {
        let s = sent.iter().find(|(k, _)| *k == kind).expect("sent").1;
        bob.received()
            .into_iter()
            .find(|r| r.source == Some((ALICE_ID, s.message_id)))
            .expect("copy")
    };
    let text = by_kind("text");
    assert_eq!(text.content["text"], "hello bold link");
    assert_eq!(text.content["entities"], bold);
    let photo = by_kind("photo");
    assert_eq!(photo.content["caption"], "sea view");
    assert_eq!(photo.content["caption_entities"], cap_entities);
    assert_eq!(by_kind("video").content["caption"], "clip");
    assert_eq!(
        by_kind("poll").content["poll"]["question"],
        "Tea or coffee?"
    );

    // The other way round works too.
    let back = bob.send_text("hi Zebediah?");
    copy_of(&alice, &bob, back).await;

    // Telegram can't copy an invoice: the sender is told.
    let invoice = tg.send_message(
        a,
        json!({"invoice": {"title": "T", "description": "D", "start_parameter": "s", "currency": "USD", "total_amount": 100}}),
    );
    wait_says(&alice, "cant_deliver").await;
    barrier(&alice, EN).await;
    assert!(!bob
        .received()
        .iter()
        .any(|r| r.source == Some((ALICE_ID, invoice.message_id))));
    db_still_paired(&cluster, &alice, &bob).await;

    // Nothing Bob sees names Alice.
    let seen = serde_json::to_string(
        &bob.received()
            .iter()
            .map(|r| {
                let mut v = vec![r.content.clone()];
                v.extend(r.edits.iter().map(|e| e.content.clone()));
                v
            })
            .collect::<Vec<_>>(),
    )
    .expect("json");
    for secret in [
        ALICE_ID.to_string().as_str(),
        "Zebediah",
        "Quimbleworth",
        "zq_secret_handle",
    ] {
        assert!(
            !seen.contains(secret),
            "Bob's chat reveals {secret}: {seen}"
        );
    }
    for method in ["forwardMessage", "forwardMessages"] {
        assert!(
            tg.calls_for(method).is_empty(),
            "{method} reveals the sender"
        );
    }
}

async fn db_still_paired(cluster: &Cluster, a: &User, b: &User) {
    let db = Db::new(cluster).await;
    db.assert_state(a, "chat", Some(b)).await;
    db.assert_state(b, "chat", Some(a)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_album_is_relayed_with_one_copy_messages_call() {
    let cluster = Cluster::start(2).await;
    let tg = cluster.tg.clone();
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;

    let parts = tg.send_album(&alice.info, 3, Some("our trip"));
    let ids: Vec<i32> = parts.iter().map(|s| s.message_id).collect();
    let copies = bob
        .copies_of(&alice, &ids)
        .await
        .unwrap_or_else(|| panic!("album never arrived: {:#?}", summary(&bob)));

    let from_alice =
        |c: &anonchat_testkit::fake::CallRecord| int(&c.params["from_chat_id"]) == Some(alice.id());
    let calls: Vec<_> = tg
        .calls_for("copyMessages")
        .into_iter()
        .filter(|c| from_alice(c))
        .collect();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let sent_ids: Vec<i64> = calls[0].params["message_ids"]
        .as_array()
        .expect("message_ids")
        .iter()
        .filter_map(int)
        .collect();
    assert_eq!(
        sent_ids,
        ids.iter().map(|&i| i64::from(i)).collect::<Vec<_>>()
    );
    assert!(
        !tg.calls_for("copyMessage").iter().any(|c| from_alice(c)
            && int(&c.params["message_id"]).is_some_and(|m| ids.contains(&(m as i32)))),
        "album parts were also copied one by one"
    );
    // One album on Bob's side, caption on the first part.
    let groups: HashSet<String> = copies
        .iter()
        .map(|r| {
            r.content["media_group_id"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert!(!groups.contains(""), "copies are not an album");
    let first = copies
        .iter()
        .find(|r| r.source == Some((alice.id(), ids[0])))
        .expect("first part");
    assert_eq!(first.text(), Some("our trip"));

    // The album is flushed once, by one replica, not again when its window
    // passes on another (ALBUM_WINDOW_MS is 800 by default).
    let extra = tg
        .wait_until(Duration::from_millis(2000), || {
            let n = tg
                .calls_for("copyMessages")
                .iter()
                .filter(|c| from_alice(c))
                .count();
            (n > 1).then_some(n)
        })
        .await;
    assert_eq!(extra, None, "album copied more than once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_edits_and_reactions_land_on_the_partners_copies() {
    let cluster = Cluster::start(1).await;
    let tg = cluster.tg.clone();
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;

    let q1 = alice.send_text("question one");
    let b_q1 = copy_of(&bob, &alice, q1).await;
    // The bot learns the copy's id when copyMessage returns and records the
    // pair right after; a reply within those milliseconds is not what this
    // test is about, so wait until Alice's message is fully handled.
    barrier(&alice, EN).await;

    // Bob replies to the copy in his chat: Alice sees a reply to her original.
    let r1 = tg
        .reply_text(&bob.info, b_q1.message_id, "answer one")
        .expect("reply");
    let a_r1 = copy_of(&alice, &bob, r1).await;
    barrier(&bob, EN).await;
    assert_eq!(a_r1.reply_to, Some(q1.message_id), "{}", a_r1.params);
    assert_eq!(
        int(&a_r1.params["reply_parameters"]["message_id"]),
        Some(i64::from(q1.message_id))
    );

    // Alice replies to her own message: Bob sees a reply to his copy of it.
    let r2 = tg
        .reply_text(&alice.info, q1.message_id, "to myself")
        .expect("reply");
    let b_r2 = copy_of(&bob, &alice, r2).await;
    assert_eq!(b_r2.reply_to, Some(b_q1.message_id), "{}", b_r2.params);

    // Alice replies to the copy of Bob's answer: Bob sees a reply to his original.
    let r3 = tg
        .reply_text(&alice.info, a_r1.message_id, "thanks")
        .expect("reply");
    let b_r3 = copy_of(&bob, &alice, r3).await;
    assert_eq!(b_r3.reply_to, Some(r1.message_id), "{}", b_r3.params);

    // Edits follow to the copy.
    tg.edit_text(&alice.info, q1.message_id, "question one (edited)")
        .expect("edit");
    let edited = bob
        .wait_for("the edited copy", |r| {
            r.message_id == b_q1.message_id && r.text() == Some("question one (edited)")
        })
        .await;
    assert!(
        edited.edits.iter().any(|e| e.method == "editMessageText"),
        "{:?}",
        edited.edits
    );
    let pic = tg.send_photo(&alice.info, Some("before"));
    let b_pic = copy_of(&bob, &alice, pic).await;
    tg.edit_caption(&alice.info, pic.message_id, "after")
        .expect("edit caption");
    let recaptioned = bob
        .wait_for("the re-captioned copy", |r| {
            r.message_id == b_pic.message_id && r.text() == Some("after")
        })
        .await;
    assert!(recaptioned
        .edits
        .iter()
        .any(|e| e.method == "editMessageCaption"));

    // Reactions: Alice on her own message shows on Bob's copy...
    tg.react(&alice.info, q1.message_id, "👍").expect("react");
    let reacted = bob
        .wait_for("the reaction on the copy", |r| {
            r.message_id == b_q1.message_id
                && r.reactions.iter().any(|x| x.to_string().contains("👍"))
        })
        .await;
    assert_eq!(reacted.reactions.len(), 1);
    // ...and Bob on his copy of Alice's message shows on her original.
    tg.react(&bob.info, b_q1.message_id, "🔥").expect("react");
    let call = tg
        .wait_until(WAIT, || {
            tg.calls_for("setMessageReaction").into_iter().find(|c| {
                int(&c.params["chat_id"]) == Some(alice.id())
                    && int(&c.params["message_id"]) == Some(i64::from(q1.message_id))
            })
        })
        .await
        .expect("Bob's reaction reached Alice's message");
    assert_eq!(call.status, 200, "{:?}", call.error);
    assert!(
        call.params["reaction"].to_string().contains("🔥"),
        "{}",
        call.params
    );
}

// ---------------------------------------------------------------- unreachable partners

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_who_blocks_the_bot_ends_the_chat_without_a_message() {
    let cluster = Cluster::start(1).await;
    let db = Db::new(&cluster).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;

    cluster.tg.block(bob.id()).expect("block update");
    let gone = wait_says(&alice, "partner_gone").await;
    assert_keyboard(&gone, &["btn_search"], EN);
    db.assert_state(&alice, "idle", None).await;
    db.assert_state(&bob, "idle", None).await;
    let after = alice.send_text("still there?");
    wait_says(&alice, "not_in_chat").await;
    barrier(&alice, EN).await;
    assert_eq!(count(&alice, "partner_gone"), 1);
    assert!(!bob
        .received()
        .iter()
        .any(|r| r.source == Some((alice.id(), after.message_id))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_on_delivery_ends_the_chat() {
    let cluster = Cluster::start(2).await;
    let db = Db::new(&cluster).await;
    // A deleted account answers 403 and, unlike a block, queues no update:
    // only the failed copy can tell the bot.
    let (alice, bob) = (cluster.user("Alice"), cluster.user("Bob"));
    pair(&alice, &bob).await;
    cluster.tg.delete_account(bob.id());
    alice.send_text("are you there?");
    wait_says(&alice, "partner_gone").await;
    db.assert_state(&alice, "idle", None).await;
    db.assert_state(&bob, "idle", None).await;

    // Blocking and a message at the same moment: one chat end, told once.
    let (carol, dave) = (cluster.user("Carol"), cluster.user("Dave"));
    pair(&carol, &dave).await;
    cluster.tg.block(dave.id());
    carol.send_text("hey");
    wait_says(&carol, "partner_gone").await;
    barrier(&carol, EN).await;
    assert_eq!(count(&carol, "partner_gone"), 1, "{:#?}", summary(&carol));
    db.assert_state(&carol, "idle", None).await;
    db.assert_state(&dave, "idle", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_searcher_who_blocks_the_bot_leaves_the_queue() {
    let cluster = Cluster::start(1).await;
    let db = Db::new(&cluster).await;
    let carol = cluster.user("Carol");
    expect_after(&carol, "searching", EN, || {
        carol.command("/search");
    })
    .await;
    assert_eq!(db.queue().await, vec![carol.id()]);
    cluster.tg.block(carol.id());
    let left = eventually(WAIT, || async {
        let st = db.state(carol.id()).await;
        (db.queue().await.is_empty() && st.0 != "search").then_some(st)
    })
    .await;
    assert!(
        left.is_some(),
        "blocked searcher still queued: {:?}",
        db.queue().await
    );
    // Nobody gets paired with her.
    let dave = cluster.user("Dave");
    expect_after(&dave, "searching", EN, || {
        dave.command("/search");
    })
    .await;
    db.assert_state(&dave, "search", None).await;
}

// ---------------------------------------------------------------- timers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_times_out_once_across_replicas() {
    let cluster = Cluster::start_with(3, &[("SEARCH_TIMEOUT", "2")]).await;
    let db = Db::new(&cluster).await;
    let alice = cluster.user("Alice");
    let started = Instant::now();
    expect_after(&alice, "searching", EN, || {
        alice.command("/search");
    })
    .await;
    let timed_out = alice
        .wait_for("search_timeout", |r| says_timed(r, "search_timeout", EN))
        .await;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "timed out after {took:?}");
    assert_keyboard(&timed_out, &["btn_search"], EN);
    db.assert_state(&alice, "idle", None).await;
    assert_no_more(
        &alice,
        Duration::from_millis(2500),
        1,
        "search_timeout",
        |r| says_timed(r, "search_timeout", EN),
    )
    .await;
    expect_after(&alice, "nothing_to_stop", EN, || {
        alice.command("/stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_chat_ends_once_for_both_but_messages_keep_it_alive() {
    let cluster =
        Cluster::start_with(3, &[("CHAT_IDLE_TIMEOUT", "2"), ("SEARCH_TIMEOUT", "1h")]).await;
    let db = Db::new(&cluster).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;
    let idle = |r: &Received| says_timed(r, "idle_timeout", EN);

    // Messages 700 ms apart for 3.5 s, longer than the idle timeout: this is
    // pacing of the traffic, the assertions wait on deliveries.
    let mut tick = tokio::time::interval(Duration::from_millis(700));
    for i in 0..5 {
        tick.tick().await;
        let (from, to) = if i % 2 == 0 {
            (&alice, &bob)
        } else {
            (&bob, &alice)
        };
        let s = from.send_text(&format!("keepalive {i}"));
        copy_of(to, from, s).await;
    }
    for u in [&alice, &bob] {
        assert!(
            !u.received().iter().any(idle),
            "chat timed out while active: {:#?}",
            summary(u)
        );
    }

    let ended = Instant::now();
    let a = alice.wait_for("idle_timeout", idle).await;
    bob.wait_for("idle_timeout", idle).await;
    assert!(
        ended.elapsed() >= Duration::from_millis(1000),
        "ended too early"
    );
    assert_keyboard(&a, &["btn_search"], EN);
    db.assert_state(&alice, "idle", None).await;
    db.assert_state(&bob, "idle", None).await;
    for u in [&alice, &bob] {
        assert_no_more(u, Duration::from_millis(1500), 1, "idle_timeout", idle).await;
    }
    let late = alice.send_text("hello?");
    wait_says(&alice, "not_in_chat").await;
    barrier(&alice, EN).await;
    assert!(!bob
        .received()
        .iter()
        .any(|r| r.source == Some((alice.id(), late.message_id))));
}

// ---------------------------------------------------------------- races

/// `n` chatting pairs (A0..An with B0..Bn) and Carol, who is searching.
async fn pairs_and_a_searcher(cluster: &Cluster, n: usize) -> (Vec<(User, User)>, User) {
    let pairs: Vec<(User, User)> = (0..n)
        .map(|i| {
            (
                cluster.user(&format!("A{i}")),
                cluster.user(&format!("B{i}")),
            )
        })
        .collect();
    for (a, b) in &pairs {
        pair(a, b).await;
    }
    let carol = cluster.user("Carol");
    expect_after(&carol, "searching", EN, || {
        carol.command("/search");
    })
    .await;
    (pairs, carol)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_racing_stop_never_reaches_anyone_else() {
    let cluster = Cluster::start(2).await;
    let db = Db::new(&cluster).await;
    let (pairs, carol) = pairs_and_a_searcher(&cluster, 8).await;

    // Bob's Stop and Alice's text at the same moment, in both orders; Bob
    // searches again at once, so a stale route would land in a new chat.
    let mut racing = Vec::new();
    for (i, (a, b)) in pairs.iter().enumerate() {
        let s = if i % 2 == 0 {
            b.send_text(&en("btn_stop"));
            a.send_text("racing")
        } else {
            let s = a.send_text("racing");
            b.send_text(&en("btn_stop"));
            s
        };
        b.command("/search");
        racing.push(s);
    }
    for (a, b) in &pairs {
        wait_says(b, "you_left").await;
        wait_says(a, "partner_left").await;
    }
    let everyone: Vec<&User> = pairs
        .iter()
        .flat_map(|(a, b)| [a, b])
        .chain([&carol])
        .collect();
    for u in &everyone {
        barrier(u, EN).await;
    }

    // Eight Bobs and Carol searched: four new pairs, one left waiting.
    let searchers: Vec<i64> = pairs
        .iter()
        .map(|(_, b)| b.id())
        .chain([carol.id()])
        .collect();
    let states = db.states(&searchers).await;
    assert_eq!(
        states.iter().filter(|s| s.0 == "chat").count(),
        8,
        "{states:?}"
    );
    assert_eq!(db.queue().await.len(), 1);
    for (a, _) in &pairs {
        db.assert_state(a, "idle", None).await;
    }

    for ((a, b), s) in pairs.iter().zip(&racing) {
        for u in &everyone {
            let copies = u
                .received()
                .iter()
                .filter(|r| r.source == Some((a.id(), s.message_id)))
                .count();
            let allowed = usize::from(u.id() == b.id());
            assert!(
                copies <= allowed,
                "{}'s racing text reached {} {copies} times",
                a.info.first_name,
                u.info.first_name
            );
        }
    }
    assert!(
        carol.received().iter().all(|r| r.source.is_none()),
        "Carol got someone's message: {:#?}",
        summary(&carol)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_partners_pressing_next_together_never_double_pair() {
    let cluster = Cluster::start(2).await;
    let db = Db::new(&cluster).await;
    let (pairs, carol) = pairs_and_a_searcher(&cluster, 4).await;

    for (a, b) in &pairs {
        a.send_text(&en("btn_next"));
        b.command("/next");
    }

    // Nine users searching for a partner, four old pairs barred: four new
    // pairs and one user left waiting.
    let everyone: Vec<&User> = pairs
        .iter()
        .flat_map(|(a, b)| [a, b])
        .chain([&carol])
        .collect();
    let ids: Vec<i64> = everyone.iter().map(|u| u.id()).collect();
    let settled = eventually(WAIT, || async {
        let states = db.states(&ids).await;
        let queue = db.queue().await;
        let searching: Vec<i64> = ids
            .iter()
            .zip(&states)
            .filter(|(_, s)| s.0 == "search")
            .map(|(id, _)| *id)
            .collect();
        let chatting = states.iter().filter(|s| s.0 == "chat").count();
        // Before the Nexts are handled the old pairs still chat; after, none do.
        let old_pair = pairs.iter().any(|(a, b)| {
            states[ids.iter().position(|i| *i == a.id()).unwrap_or(0)].1 == Some(b.id())
        });
        (searching.len() == 1 && chatting == 8 && queue == searching && !old_pair).then_some(states)
    })
    .await;
    let states = match settled {
        Some(s) => s,
        None => panic!(
            "never settled into 4 new pairs + 1 waiting (old pairs {:?} barred): \
             users {ids:?} are {:?}, queue {:?}",
            pairs
                .iter()
                .map(|(a, b)| (a.id(), b.id()))
                .collect::<Vec<_>>(),
            db.states(&ids).await,
            db.queue().await
        ),
    };
    let partner: HashMap<i64, i64> = ids
        .iter()
        .zip(&states)
        .filter_map(|(id, s)| Some((*id, s.1.filter(|_| s.0 == "chat")?)))
        .collect();
    for (id, p) in &partner {
        assert_eq!(partner.get(p), Some(id), "pair {id}-{p} is not mutual");
    }
    // Every handler involved belongs to one of these users: after their
    // barriers every reply is in.
    for u in &everyone {
        barrier(u, EN).await;
    }
    for (a, b) in &pairs {
        assert_ne!(
            partner.get(&a.id()),
            Some(&b.id()),
            "old partners re-paired"
        );
        // The chat ended once: each side is told once.
        for u in [a, b] {
            let (left, gone) = (count(u, "you_left"), count(u, "partner_left"));
            assert!(
                left <= 1 && gone <= 1 && left + gone >= 1,
                "{}: you_left {left}, partner_left {gone}",
                u.info.first_name
            );
        }
        assert!(count(a, "you_left") + count(b, "you_left") >= 1);
    }
    // Everyone in a pair was told once per pair they were in.
    for u in &everyone {
        let before = usize::from(u.id() != carol.id());
        let want = before + usize::from(partner.contains_key(&u.id()));
        assert_eq!(count(u, "found"), want, "{:#?}", summary(u));
    }
}

// ---------------------------------------------------------------- restart

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_and_its_reply_mapping_survive_a_restart_of_every_replica() {
    let mut cluster = Cluster::start(2).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;
    let before = alice.send_text("before the restart");
    let b_before = copy_of(&bob, &alice, before).await;

    for r in &cluster.replicas {
        r.terminate();
    }
    for r in cluster.replicas.iter_mut() {
        let status = r.wait_exit(WAIT).await.expect("replica exits on SIGTERM");
        assert!(status.success(), "{} exited with {status:?}", r.name);
    }
    cluster.add_replica().await;
    cluster.add_replica().await;

    let after = alice.send_text("after the restart");
    assert_eq!(
        copy_of(&bob, &alice, after).await.text(),
        Some("after the restart")
    );
    let reply = cluster
        .tg
        .reply_text(&bob.info, b_before.message_id, "replying to the old one")
        .expect("reply");
    let a_reply = copy_of(&alice, &bob, reply).await;
    assert_eq!(a_reply.reply_to, Some(before.message_id));
    assert_eq!(count(&alice, "found"), 1);
    assert_eq!(count(&bob, "found"), 1);
}

// ---------------------------------------------------------------- scale

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_searches_form_a_thousand_pairs() {
    const USERS: usize = 2000;
    let budget = Duration::from_secs(120);
    let started = Instant::now();
    let cluster = Cluster::start_with(3, &[("RUST_LOG", "warn,anonchat=info")]).await;
    let db = Db::new(&cluster).await;
    let users: Vec<User> = (0..USERS).map(|i| cluster.user(&format!("s{i}"))).collect();
    let ids: Vec<i64> = users.iter().map(User::id).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), USERS);
    for u in &users {
        u.command("/search");
    }

    let every = Duration::from_millis(250);
    let left = || budget.saturating_sub(started.elapsed());
    let states = poll_until(left(), every, || async {
        if !db.queue().await.is_empty() {
            return None;
        }
        let states = db.states(&ids).await;
        states.iter().all(|s| s.0 == "chat").then_some(states)
    })
    .await;
    let states = match states {
        Some(s) => s,
        None => {
            let states = db.states(&ids).await;
            let by_state = states.iter().fold(HashMap::new(), |mut m, s| {
                *m.entry(s.0.clone()).or_insert(0) += 1;
                m
            });
            panic!(
                "not all paired after {:?}: {by_state:?}, queue {}",
                started.elapsed(),
                db.queue().await.len()
            );
        }
    };
    let partner: HashMap<i64, i64> = ids
        .iter()
        .zip(&states)
        .map(|(id, s)| (*id, s.1.expect("a chatting user has a partner")))
        .collect();
    let mut pairs = HashSet::new();
    for (id, p) in &partner {
        assert_ne!(id, p, "paired with themself");
        assert_eq!(partner.get(p), Some(id), "{id} -> {p} is not mutual");
        pairs.insert((*id.min(p), *id.max(p)));
    }
    assert_eq!(pairs.len(), USERS / 2);

    // Each user was told exactly once.
    let found = en("found");
    let told = |u: &User| {
        u.received()
            .iter()
            .filter(|r| r.source.is_none() && r.text() == Some(found.as_str()))
            .count()
    };
    let all_told = poll_until(left(), every, || async {
        users.iter().all(|u| told(u) >= 1).then_some(())
    })
    .await;
    assert!(
        all_told.is_some(),
        "{} users never got found",
        users.iter().filter(|u| told(u) == 0).count()
    );
    let twice: Vec<i64> = users.iter().filter(|u| told(u) > 1).map(User::id).collect();
    assert!(twice.is_empty(), "found more than once: {twice:?}");
    println!("{USERS} searches paired in {:?}", started.elapsed());
}

// ---------------------------------------------------------------- language and settings

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_follow_the_users_language_and_the_language_button() {
    let cluster = Cluster::start(1).await;
    let ivan = cluster.user_in("Иван", "ru");
    let searching = expect_after(&ivan, "searching", RU, || {
        ivan.command("/search");
    })
    .await;
    assert_keyboard(&searching, &["btn_cancel"], RU);
    expect_after(&ivan, "search_cancelled", RU, || {
        ivan.send_text(&text("btn_cancel", RU));
    })
    .await;

    let alice = cluster.user("Alice");
    let prompt = expect_after(&alice, "language_prompt", EN, || {
        alice.command("/language");
    })
    .await;
    let data = inline_data(&prompt);
    assert!(
        data.contains(&"lang:en".to_string()) && data.contains(&"lang:ru".to_string()),
        "{data:?}"
    );
    alice.press(prompt.message_id, "lang:ru").await;
    wait_says_in(&alice, "language_set", RU).await;
    let searching = expect_after(&alice, "searching", RU, || {
        alice.command("/search");
    })
    .await;
    assert_keyboard(&searching, &["btn_cancel"], RU);
    expect_after(&alice, "search_cancelled", RU, || {
        alice.send_text(&text("btn_cancel", RU));
    })
    .await;
    assert_eq!(
        count(&alice, "searching"),
        0,
        "English after choosing Russian"
    );
}

/// Every language besides English and Russian: picked in /language it is
/// what the bot speaks (search and its keyboard button); a new user whose
/// Telegram client uses it is welcomed in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_is_selectable_and_followed() {
    let cluster = Cluster::start(1).await;
    let others: Vec<Lang> = Lang::ALL
        .iter()
        .copied()
        .filter(|l| !matches!(l, Lang::En | Lang::Ru))
        .collect();
    assert!(others.len() >= 5, "{others:?}");
    for (i, &lang) in others.iter().enumerate() {
        let u = cluster.user(&format!("Picker{i}"));
        let prompt = expect_after(&u, "language_prompt", EN, || {
            u.command("/language");
        })
        .await;
        let data = format!("lang:{}", lang.code());
        assert!(inline_data(&prompt).contains(&data), "{lang:?} not offered");
        u.press(prompt.message_id, &data).await;
        wait_says_in(&u, "language_set", lang).await;
        let searching = expect_after(&u, "searching", lang, || {
            u.command("/search");
        })
        .await;
        assert_keyboard(&searching, &["btn_cancel"], lang);
        // The button's text in that language is understood as Cancel.
        expect_after(&u, "search_cancelled", lang, || {
            u.send_text(&text("btn_cancel", lang));
        })
        .await;

        let native = cluster.user_in(&format!("Native{i}"), lang.code());
        expect_after(&native, "searching", lang, || {
            native.command("/search");
        })
        .await;
        // Out of the queue again, so the next user searches alone.
        expect_after(&native, "search_cancelled", lang, || {
            native.send_text(&text("btn_cancel", lang));
        })
        .await;
    }
}

/// Opens /settings and presses the button of the setting `setting` (e.g.
/// `set:protect`), which carries the value it sets (`set:protect:1`).
async fn toggle(u: &User, lang: Lang, setting: &str) {
    let menu = expect_after(u, "settings_title", lang, || {
        u.command("/settings");
    })
    .await;
    let buttons = inline_data(&menu);
    assert!(
        buttons.contains(&"set:same_language:1".to_string())
            && buttons.contains(&"set:protect:1".to_string()),
        "{buttons:?}"
    );
    u.press(menu.message_id, &format!("{setting}:1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_marks_the_partners_copies_of_my_messages() {
    let cluster = Cluster::start(1).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    toggle(&alice, EN, "set:protect").await;
    pair(&alice, &bob).await;

    let mine = alice.send_text("don't forward this");
    let copy = copy_of(&bob, &alice, mine).await;
    assert_eq!(
        copy.params["protect_content"],
        json!(true),
        "{}",
        copy.params
    );
    assert_eq!(copy.content["has_protected_content"], json!(true));
    // Bob did not ask for protection.
    let theirs = bob.send_text("fine");
    let copy = copy_of(&alice, &bob, theirs).await;
    assert_ne!(
        copy.params["protect_content"],
        json!(true),
        "{}",
        copy.params
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_language_matches_only_users_of_the_same_language() {
    let cluster = Cluster::start(1).await;
    let db = Db::new(&cluster).await;
    let ivan = cluster.user_in("Иван", "ru");
    let alice = cluster.user("Alice");
    let olga = cluster.user_in("Ольга", "ru");
    toggle(&ivan, RU, "set:same_language").await;

    expect_after(&ivan, "searching", RU, || {
        ivan.command("/search");
    })
    .await;
    expect_after(&alice, "searching", EN, || {
        alice.command("/search");
    })
    .await;
    db.assert_state(&ivan, "search", None).await;
    db.assert_state(&alice, "search", None).await;

    olga.command("/search");
    wait_says_in(&olga, "found", RU).await;
    wait_says_in(&ivan, "found", RU).await;
    db.assert_state(&ivan, "chat", Some(&olga)).await;
    db.assert_state(&olga, "chat", Some(&ivan)).await;
    db.assert_state(&alice, "search", None).await;
    assert_eq!(count(&alice, "found"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_edits_of_recent_messages_all_reach_the_copies() {
    let cluster = Cluster::start(1).await;
    let (alice, bob) = (cluster.user("Alice"), cluster.user("Bob"));
    pair(&alice, &bob).await;
    let mut latest: std::collections::HashMap<i32, String> = Default::default();
    let mut sent = Vec::new();
    for i in 0..60 {
        let text = format!("message {i}");
        let s = alice.send_text(&text);
        sent.push(s.message_id);
        latest.insert(s.message_id, text);
        if i % 3 == 2 {
            // Edit one of the last two messages, often before its copy exists:
            // then the copy already carries the new text (copyMessage copies
            // the current version) and the edit changes nothing.
            let target = sent[sent.len() - 1 - (i % 2)];
            let text = format!("edited {i}");
            cluster
                .tg
                .edit_text(&alice.info, target, &text)
                .expect("edit");
            latest.insert(target, text);
        }
    }
    let copies = cluster
        .tg
        .wait_until(WAIT, || {
            let copies: std::collections::HashMap<i32, String> = bob
                .received()
                .iter()
                .filter_map(|r| {
                    let (c, m) = r.source?;
                    (c == alice.id()).then(|| (m, r.text().unwrap_or("").to_string()))
                })
                .collect();
            (copies == latest).then_some(copies)
        })
        .await;
    assert!(
        copies.is_some(),
        "every copy must end with its message's latest text: {:#?}",
        summary(&bob)
    );
}
