//! Consent and content safety: the rules and 18+ acceptance before the
//! first search (a new RULES_VERSION asks again), message kinds that are
//! never relayed (contacts, stories), /deletedata and /privacy.

use anonchat::bot::commands::Callback;
use anonchat_testkit::fake::Received;
use serde_json::{json, Value};

use crate::chat::{
    barrier, count, en, expect_after, int, pair, summary, wait_nth_in, wait_says, Db, EN,
};
use crate::harness::{eventually, inline_buttons, Cluster, User, WAIT};
use crate::moderation::report;

/// The rules prompt: the rules, the 18+ line, accept and decline buttons.
fn is_rules_prompt(r: &Received) -> bool {
    r.source.is_none()
        && r.text()
            .is_some_and(|t| t.contains(&en("rules")) && t.contains(&en("rules_confirm")))
}

fn prompts(u: &User) -> Vec<Received> {
    u.received().into_iter().filter(is_rules_prompt).collect()
}

async fn wait_prompt(u: &User, n: usize) -> Received {
    u.tg.wait_until(WAIT, || prompts(u).into_iter().nth(n - 1))
        .await
        .unwrap_or_else(|| panic!("no rules prompt #{n}: {:#?}", summary(u)))
}

/// Searches, gets the prompt and accepts; waits for the search reply `then`.
async fn accept_and_search(u: &User, then: &str) {
    let n = prompts(u).len() + 1;
    u.command("/search");
    let prompt = wait_prompt(u, n).await;
    let accept = inline_buttons(&prompt)
        .into_iter()
        .find(|d| d.starts_with("rules:accept:"))
        .expect("an accept button");
    let before = count(u, then);
    u.press(prompt.message_id, &accept).await;
    wait_nth_in(u, then, EN, before + 1).await;
}

/// Two users who accepted the rules, chatting.
async fn consented_pair(a: &User, b: &User) {
    accept_and_search(a, "searching").await;
    accept_and_search(b, "found").await;
    wait_says(a, "found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_search_waits_for_the_rules_and_a_new_version_asks_again() {
    let mut cluster = Cluster::start_with(1, &[("RULES_VERSION", "1")]).await;
    let db = Db::new(&cluster).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");

    // Before accepting: the prompt, and nobody is queued.
    alice.command("/search");
    let prompt = wait_prompt(&alice, 1).await;
    assert_eq!(
        inline_buttons(&prompt),
        vec!["rules:accept:1".to_string(), "rules:decline".to_string()]
    );
    barrier(&alice, EN).await;
    db.assert_state(&alice, "idle", None).await;
    assert_eq!(count(&alice, "searching"), 0);

    // Declining: no search, and Search shows the prompt again.
    alice.press(prompt.message_id, "rules:decline").await;
    wait_says(&alice, "rules_declined").await;
    db.assert_state(&alice, "idle", None).await;
    // A forged or stale version accepts nothing: the prompt comes again.
    alice.press(prompt.message_id, "rules:accept:2").await;
    wait_prompt(&alice, 2).await;
    db.assert_state(&alice, "idle", None).await;

    // Accepting searches at once; then a stranger who accepted pairs.
    accept_and_search(&alice, "searching").await;
    db.assert_state(&alice, "search", None).await;
    accept_and_search(&bob, "found").await;
    wait_says(&alice, "found").await;
    db.assert_state(&alice, "chat", Some(&bob)).await;
    alice.command("/stop");
    wait_says(&alice, "you_left").await;
    // Accepted once: the next search goes straight to the queue.
    let before = prompts(&alice).len();
    expect_after(&alice, "searching", EN, || {
        alice.command("/search");
    })
    .await;
    assert_eq!(prompts(&alice).len(), before);
    alice.command("/stop");
    wait_says(&alice, "search_cancelled").await;

    // The operator raises the version: everyone is asked again.
    for r in &cluster.replicas {
        r.terminate();
    }
    for r in cluster.replicas.iter_mut() {
        r.wait_exit(WAIT).await.expect("replica exits on SIGTERM");
    }
    cluster.env.insert("RULES_VERSION".into(), "2".into());
    cluster.add_replica().await;
    let before = prompts(&alice).len();
    alice.command("/search");
    let again = wait_prompt(&alice, before + 1).await;
    assert!(inline_buttons(&again).contains(&"rules:accept:2".to_string()));
    // The button under the old prompt (version 1) does not accept version 2.
    alice.press(prompt.message_id, "rules:accept:1").await;
    wait_prompt(&alice, before + 2).await;
    barrier(&alice, EN).await;
    db.assert_state(&alice, "idle", None).await;
    alice
        .press(again.message_id, &Callback::AcceptRules(2).data())
        .await;
    wait_nth_in(&alice, "searching", EN, 3).await;
    db.assert_state(&alice, "search", None).await;
}

/// Everything the fake recorded as copied from `from`'s message `id`.
fn copies_of(cluster: &Cluster, from: &User, id: i32) -> usize {
    [
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
    ]
    .iter()
    .flat_map(|m| cluster.tg.calls_for(m))
    .filter(|c| {
        let p = &c.params;
        let from_chat = int(&p["from_chat_id"]) == Some(from.id());
        let one = int(&p["message_id"]) == Some(i64::from(id));
        let many = match &p["message_ids"] {
            Value::Array(ids) => ids.iter().any(|v| int(v) == Some(i64::from(id))),
            Value::String(s) => s.contains(&id.to_string()),
            _ => false,
        };
        from_chat && (one || many)
    })
    .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_and_stories_are_never_relayed_and_the_sender_is_told_once() {
    let cluster = Cluster::start(1).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;

    let contact = alice.tg.send_message(
        &alice.info,
        json!({"contact": {"phone_number": "+15550001111", "first_name": "Alice", "user_id": alice.id()}}),
    );
    let story = alice.tg.send_message(
        &alice.info,
        json!({"story": {"chat": {"id": alice.id(), "type": "private", "first_name": "Alice"}, "id": 7}}),
    );
    let text = alice.send_text("still here");
    let copy = bob
        .wait_for("the text after the refused ones", |r| {
            r.source == Some((alice.id(), text.message_id))
        })
        .await;
    assert_eq!(copy.text(), Some("still here"));
    barrier(&alice, EN).await;

    assert_eq!(
        count(&alice, "kind_not_allowed"),
        2,
        "{:#?}",
        summary(&alice)
    );
    for (what, sent) in [("contact", contact), ("story", story)] {
        assert_eq!(
            copies_of(&cluster, &alice, sent.message_id),
            0,
            "{what} copied"
        );
    }
    let leaked: Vec<_> = bob
        .received()
        .into_iter()
        .filter(|r| {
            r.content.get("contact").is_some()
                || r.content.get("story").is_some()
                || r.text().is_some_and(|t| t.contains("+15550001111"))
        })
        .collect();
    assert!(leaked.is_empty(), "bob got {leaked:#?}");
    assert_eq!(count(&bob, "kind_not_allowed"), 0);
}

/// Every key of the cluster's prefix, listed with SCAN (never KEYS).
async fn scan_all(cluster: &Cluster) -> Vec<String> {
    let mut conn = cluster.redis.conn().await;
    let base = cluster.keys().base().to_string();
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{base}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .expect("SCAN");
        keys.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Every key of the cluster's prefix that names `id` (a `:`-separated part of
/// its name) or holds it (a zset or set member, a hash value pointing at
/// it, a string equal to it), the prefix cut off; sorted.
async fn traces_of(cluster: &Cluster, id: i64) -> Vec<String> {
    let mut conn = cluster.redis.conn().await;
    let base = cluster.keys().base().to_string();
    let me = id.to_string();
    let mut found = Vec::new();
    for key in scan_all(cluster).await {
        let name = key[base.len()..].to_string();
        if name.split(':').any(|part| part == me) {
            found.push(name);
            continue;
        }
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("TYPE");
        let holds = match kind.as_str() {
            "zset" => redis::cmd("ZSCORE")
                .arg(&key)
                .arg(&me)
                .query_async::<Option<f64>>(&mut conn)
                .await
                .expect("ZSCORE")
                .is_some(),
            "set" => redis::cmd("SISMEMBER")
                .arg(&key)
                .arg(&me)
                .query_async::<bool>(&mut conn)
                .await
                .expect("SISMEMBER"),
            "hash" => {
                let values: Vec<String> = redis::cmd("HVALS")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("HVALS");
                values
                    .iter()
                    .any(|v| *v == me || v.starts_with(&format!("{me}:")))
            }
            "string" => redis::cmd("GET")
                .arg(&key)
                .query_async::<Option<String>>(&mut conn)
                .await
                .expect("GET")
                .is_some_and(|v| v == me),
            _ => false,
        };
        if holds {
            found.push(format!("{name} ({kind})"));
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletedata_ends_the_chat_and_erases_every_key_of_the_user_but_kept_moderation_records() {
    let cluster = Cluster::start_with(1, &[("RULES_VERSION", "1"), ("LINK_POLICY", "hold")]).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    let carol = cluster.user("Carol");
    let dave = cluster.user("Dave");

    // Settings, acceptance, message maps both ways, received copies
    // (evidence ids), and a report Alice made (ends the chat, blocks Bob).
    alice.command("/settings");
    let settings = wait_says(&alice, "settings_title").await;
    alice.press(settings.message_id, "set:protect:1").await;
    consented_pair(&alice, &bob).await;
    let hi = alice.send_text("hi bob");
    bob.wait_for("alice's hi", |r| {
        r.source == Some((alice.id(), hi.message_id))
    })
    .await;
    let back = bob.send_text("hi alice");
    alice
        .wait_for("bob's hi", |r| {
            r.source == Some((bob.id(), back.message_id))
        })
        .await;
    report(&alice, "spam").await;
    wait_says(&alice, "report_thanks").await;
    wait_says(&bob, "partner_left").await;

    // A second chat: maps, a link held for Alice, and Carol reports her.
    let searching = count(&alice, "searching");
    alice.command("/search");
    wait_nth_in(&alice, "searching", EN, searching + 1).await;
    accept_and_search(&carol, "found").await;
    wait_nth_in(&alice, "found", EN, 2).await;
    let to_carol = alice.send_text("hi carol");
    carol
        .wait_for("alice's message", |r| {
            r.source == Some((alice.id(), to_carol.message_id))
        })
        .await;
    let from_carol = carol.send_text("hi alice");
    alice
        .wait_for("carol's message", |r| {
            r.source == Some((carol.id(), from_carol.message_id))
        })
        .await;
    carol.send_text("https://example.com/carol");
    wait_says(&alice, "link_held").await;
    let before = traces_of(&cluster, alice.id()).await;
    assert!(before.iter().any(|k| k.starts_with("held:")), "{before:?}");
    report(&carol, "harassment").await;
    wait_says(&carol, "report_thanks").await;
    wait_nth_in(&alice, "partner_left", EN, 1).await;

    // A third chat in progress when Alice erases her data.
    let searching = count(&alice, "searching");
    alice.command("/search");
    wait_nth_in(&alice, "searching", EN, searching + 1).await;
    accept_and_search(&dave, "found").await;
    wait_nth_in(&alice, "found", EN, 3).await;
    let from_dave = dave.send_text("hello");
    alice
        .wait_for("dave's message", |r| {
            r.source == Some((dave.id(), from_dave.message_id))
        })
        .await;
    let before = traces_of(&cluster, alice.id()).await;
    for k in [
        format!("ev:{}", alice.id()),
        format!("last:{}", alice.id()),
        format!("rl:rep:{}", alice.id()),
        format!("blk:{}", alice.id()),
        format!("u:{}", alice.id()),
    ] {
        assert!(before.contains(&k), "{k} missing before: {before:?}");
    }
    assert!(
        before
            .iter()
            .any(|k| k.starts_with(&format!("repd:{}:", alice.id()))),
        "{before:?}"
    );

    let mut conn = cluster.redis.conn().await;
    let anon: String = redis::cmd("GET")
        .arg(cluster.keys().anon(alice.id()))
        .query_async(&mut conn)
        .await
        .expect("alice's anonymous id");

    alice.command("/deletedata");
    wait_says(&alice, "deletedata_done").await;
    wait_says(&dave, "partner_left").await;
    Db::new(&cluster)
        .await
        .assert_state(&dave, "idle", None)
        .await;

    // What remains is exactly the kept moderation records (REPORT_RETENTION)
    // and other users' data naming her. The reply just sent leaves its send
    // budget for a moment, which expires.
    let kept = vec![
        // Bob's last partner and Carol's, Dave's: their 10-minute report window.
        format!("last:{} (hash)", bob.id()),
        format!("last:{} (hash)", carol.id()),
        format!("last:{} (hash)", dave.id()),
        // Carol's report blocked Alice: Carol's block.
        format!("blk:{} (zset)", carol.id()),
        // Alice's anonymous id (matches the kept reports), her moderation
        // counts, the reporters within the auto-suspend window.
        format!("anon:{}", alice.id()),
        format!("anonu:{anon} (string)"),
        format!("mst:{}", alice.id()),
        format!("rby:{}", alice.id()),
        // The two reports, by her and about her.
        "rep:1 (hash)".to_string(),
        "rep:2 (hash)".to_string(),
        // Her weight as Bob's reporter (the kept report's).
        format!("rby:{} (zset)", bob.id()),
    ];
    let mut kept = kept;
    kept.sort();
    let left = eventually(WAIT, || async {
        (traces_of(&cluster, alice.id()).await == kept).then_some(())
    })
    .await;
    assert!(
        left.is_some(),
        "keys of alice: {:?}, expected only {kept:?}",
        traces_of(&cluster, alice.id()).await
    );

    // Acceptance was erased too: the next search asks again.
    let before = prompts(&alice).len();
    alice.command("/search");
    wait_prompt(&alice, before + 1).await;

    // /privacy says what is stored and for how long.
    alice.command("/privacy");
    let privacy = alice
        .wait_for("the privacy statement", |r| {
            r.source.is_none() && r.text().is_some_and(|t| t.contains("/deletedata"))
        })
        .await;
    let t = privacy.text().unwrap_or_default().to_string();
    assert!(
        t.contains("30") && t.contains("48") && t.contains("90"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_early_in_a_chat_is_held_until_the_receiver_taps_and_later_passes() {
    let cluster = Cluster::start_with(1, &[("LINK_POLICY", "hold")]).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;

    let copy = |sent: anonchat_testkit::fake::Sent| {
        let bob = bob.clone();
        let src = Some((alice.id(), sent.message_id));
        async move { bob.wait_for("a copy", move |r| r.source == src).await }
    };
    let first = alice.send_text("hello");
    copy(first).await;
    copy(alice.send_text("how are you")).await;
    let link = alice.send_text("see https://example.com/me");
    let ask = wait_says(&bob, "link_held").await;
    wait_says(&alice, "link_held_sender").await;
    let show = inline_buttons(&ask);
    assert_eq!(
        show,
        vec![format!("show:{}:{}", alice.id(), link.message_id)]
    );
    barrier(&alice, EN).await;
    assert_eq!(
        copies_of(&cluster, &alice, link.message_id),
        0,
        "held, not copied"
    );

    // A forged button (a message that is not held) shows nothing.
    bob.press(
        ask.message_id,
        &format!("show:{}:{}", alice.id(), first.message_id),
    )
    .await;
    // The real one shows it, once, however often it is pressed.
    bob.press(ask.message_id, &show[0]).await;
    let shown = copy(link).await;
    assert_eq!(shown.text(), Some("see https://example.com/me"));
    bob.press(ask.message_id, &show[0]).await;
    barrier(&bob, EN).await;
    assert_eq!(copies_of(&cluster, &alice, first.message_id), 1);
    assert_eq!(copies_of(&cluster, &alice, link.message_id), 1);

    // Messages 4 to 10 are plain; the link in message 11 passes at once.
    for i in 4..=10 {
        copy(alice.send_text(&format!("message {i}"))).await;
    }
    let late = alice.send_text("t.me/somewhere in message 11");
    assert_eq!(
        copy(late).await.text(),
        Some("t.me/somewhere in message 11")
    );
    assert_eq!(count(&bob, "link_held"), 1);
}

/// Bob's copy of Alice's message `id` (waits for it).
async fn copy_at(to: &User, from: &User, id: i32) -> Received {
    to.wait_for("a copy", |r| r.source == Some((from.id(), id)))
        .await
}

/// Whether `u`'s message `id` is deleted now.
fn is_deleted(u: &User, id: i32) -> bool {
    u.received().iter().any(|r| r.message_id == id && r.deleted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn del_as_a_reply_to_ones_own_message_deletes_the_strangers_copy_and_a_whole_album() {
    let cluster = Cluster::start(1).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;

    let mine = alice.send_text("I regret this");
    let my_copy = copy_at(&bob, &alice, mine.message_id).await;
    let theirs = bob.send_text("bob's own words");
    copy_at(&alice, &bob, theirs.message_id).await;
    let theirs_at_alice = alice
        .received()
        .into_iter()
        .find(|r| r.source == Some((bob.id(), theirs.message_id)))
        .expect("bob's message at alice");

    // Not a reply, or a reply to the stranger's message: explained, nothing deleted.
    expect_after(&alice, "del_how", EN, || {
        alice.command("/del");
    })
    .await;
    let before = count(&alice, "del_how");
    alice
        .tg
        .reply_command(&alice.info, theirs_at_alice.message_id, "/del")
        .expect("message exists");
    wait_nth_in(&alice, "del_how", EN, before + 1).await;
    barrier(&alice, EN).await;
    assert!(cluster.tg.calls_for("deleteMessage").is_empty());
    assert!(cluster.tg.calls_for("deleteMessages").is_empty());
    assert!(!is_deleted(&bob, my_copy.message_id));

    // A reply to her own message: the stranger's copy goes, she is told.
    alice
        .tg
        .reply_command(&alice.info, mine.message_id, "/del")
        .expect("message exists");
    wait_says(&alice, "del_done").await;
    assert!(is_deleted(&bob, my_copy.message_id), "{:#?}", summary(&bob));
    assert_eq!(count(&bob, "del_done"), 0);

    // An album is deleted whole, from a /del on any of its parts.
    let album = alice.tg.send_album(&alice.info, 3, Some("three"));
    let mut copies = Vec::new();
    for part in &album {
        copies.push(copy_at(&bob, &alice, part.message_id).await.message_id);
    }
    let before = count(&alice, "del_done");
    alice
        .tg
        .reply_command(&alice.info, album[1].message_id, "/del")
        .expect("message exists");
    wait_nth_in(&alice, "del_done", EN, before + 1).await;
    for c in &copies {
        assert!(is_deleted(&bob, *c), "copy {c} kept: {:#?}", summary(&bob));
    }
    // Bob's own message was never touched.
    assert!(bob.received().iter().all(
        |r| r.deleted == (r.message_id == my_copy.message_id || copies.contains(&r.message_id))
    ));

    // The album's copy lists are Alice's: /deletedata erases them too.
    alice.command("/deletedata");
    wait_says(&alice, "deletedata_done").await;
    let left = traces_of(&cluster, alice.id()).await;
    assert!(left.iter().all(|k| !k.contains(":ag:")), "{left:#?}");
}

/// A Bot API boolean parameter as sent (JSON or form value).
fn truthy(v: &Value) -> bool {
    *v == json!(true) || *v == json!("true")
}

/// The settings message's button data, from `u`'s latest /settings.
async fn settings_buttons_of(u: &User) -> (i32, Vec<String>) {
    let before = count(u, "settings_title");
    u.command("/settings");
    let m = wait_nth_in(u, "settings_title", EN, before + 1).await;
    (m.message_id, inline_buttons(&m))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_from_strangers_can_arrive_blurred_or_as_text_only() {
    let cluster = Cluster::start(1).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;

    // Default: shown, as a plain copy.
    let shown = alice.tg.send_photo(&alice.info, Some("as is"));
    let copy = copy_at(&bob, &alice, shown.message_id).await;
    assert_eq!(copy.method, "copyMessage");

    // Alice protects her messages; Bob asks for blurred media.
    let (id, data) = settings_buttons_of(&alice).await;
    assert!(data.contains(&"set:protect:1".to_string()), "{data:?}");
    alice.press(id, "set:protect:1").await;
    let (id, data) = settings_buttons_of(&bob).await;
    assert!(data.contains(&"set:media:blur".to_string()), "{data:?}");
    bob.press(id, "set:media:blur").await;
    bob.press(id, "set:media:blur").await; // twice: still blurred

    for (kind, method) in [("photo", "sendPhoto"), ("video", "sendVideo")] {
        let sent = if kind == "photo" {
            alice.tg.send_photo(&alice.info, Some("blurry"))
        } else {
            alice.tg.send_video(&alice.info, Some("blurry"))
        };
        let got = bob
            .wait_for(method, |r| {
                r.method == method && r.at_ms >= copy.at_ms && r.text() == Some("blurry")
            })
            .await;
        assert_eq!(got.content["has_media_spoiler"], json!(true), "{got:#?}");
        assert!(truthy(&got.params["protect_content"]), "{got:#?}");
        assert!(truthy(&got.params["has_spoiler"]), "{got:#?}");
        assert!(got.content.get(kind).is_some(), "{got:#?}");
        assert!(got.source.is_none());
        let all = format!("{} {}", got.content, got.params);
        assert!(
            !all.contains("Alice") && !all.contains(&alice.id().to_string()),
            "{all}"
        );
        assert_eq!(copies_of(&cluster, &alice, sent.message_id), 0);
    }
    // An album can't be copied blurred: its photos arrive one by one, blurred.
    let album = alice.tg.send_album(&alice.info, 2, Some("pair of"));
    let spoilers = || {
        bob.received()
            .into_iter()
            .filter(|r| r.method == "sendPhoto" && r.content["has_media_spoiler"] == json!(true))
            .count()
    };
    let blurred_photos = bob
        .tg
        .wait_until(WAIT, || (spoilers() >= 3).then_some(()))
        .await;
    assert!(blurred_photos.is_some(), "{:#?}", summary(&bob));
    for part in &album {
        assert_eq!(copies_of(&cluster, &alice, part.message_id), 0);
    }

    // The blurred copy is mapped like a copy: Bob's reply reaches Alice as a reply.
    let blurred = bob
        .received()
        .into_iter()
        .rfind(|r| r.method == "sendVideo")
        .expect("the blurred video");
    let reply = bob
        .tg
        .reply_text(&bob.info, blurred.message_id, "nice")
        .expect("message exists");
    let back = copy_at(&alice, &bob, reply.message_id).await;
    assert!(back.reply_to.is_some(), "{back:#?}");

    // Text only: a short text and the caption, no media.
    let (id, data) = settings_buttons_of(&bob).await;
    assert!(data.contains(&"set:media:text".to_string()), "{data:?}");
    bob.press(id, "set:media:text").await;
    alice.tg.send_photo(&alice.info, Some("hidden caption"));
    let got = bob.wait_text("hidden caption").await;
    assert_eq!(got.method, "sendMessage");
    let body = got.text().unwrap_or_default();
    assert!(body.contains(&en("media_hidden_photo")), "{body}");
    assert!(got.content.get("photo").is_none());
    assert!(truthy(&got.params["protect_content"]), "{got:#?}");

    // A forged value changes nothing.
    bob.press(id, "set:media:loud").await;
    let (_, data) = settings_buttons_of(&bob).await;
    assert!(data.contains(&"set:media:show".to_string()), "{data:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_states_the_report_retention() {
    let cluster = Cluster::start_with(1, &[("REPORT_RETENTION", "45d")]).await;
    let alice = cluster.user("Alice");
    alice.command("/privacy");
    let got = alice.wait_text(&en("privacy")[..20]).await;
    let body = got.text().unwrap_or_default();
    assert!(body.contains("45 days"), "{body}");
    assert!(!body.contains("%{"), "{body}");
}
