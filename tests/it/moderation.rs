//! Safety: /block, reports with evidence for the moderation queue, admins'
//! decisions (bans enforced at once on every replica) and auto-suspension.
//! Forged and replayed buttons must change nothing.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anonchat::bot::texts::{text, text_with};
use anonchat_testkit::fake::{Received, TgUser};
use serde_json::Value;

use crate::chat::{barrier, count, en, expect_after, pair, says, wait_says, Db, EN};
use crate::harness::{eventually, inline_buttons, Cluster, User, WAIT};

/// Admin ids, outside the range `Cluster::user` hands out.
static NEXT_ADMIN: AtomicI64 = AtomicI64::new(7_000_000);

fn admin_id() -> i64 {
    NEXT_ADMIN.fetch_add(1, Ordering::Relaxed)
}

/// Labels of the reply keyboard sent with `r`.
fn keyboard(r: &Received) -> Vec<String> {
    let markup = match &r.params["reply_markup"] {
        Value::String(s) => serde_json::from_str::<Value>(s).unwrap_or_default(),
        v => v.clone(),
    };
    markup["keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["text"].as_str().map(str::to_string))
        .collect()
}

/// Presses a button; returns the callback's answer (its text, if any).
async fn press(u: &User, message_id: i32, data: &str) -> Option<String> {
    let cb =
        u.tg.press_button(&u.info, message_id, data)
            .expect("button's message exists");
    let answer =
        u.tg.wait_until(WAIT, || {
            u.tg.callback_answers()
                .into_iter()
                .find(|a| a["callback_query_id"].as_str() == Some(cb.callback_query_id.as_str()))
        })
        .await
        .unwrap_or_else(|| panic!("callback {data} never answered"));
    answer["text"].as_str().map(str::to_string)
}

/// The fixed start of the moderation queue's report text.
fn is_report(r: &Received) -> bool {
    let head = text_with("mod_report", EN, &[("id", "\u{1}")]);
    let head = head.split('\u{1}').next().unwrap_or("Report #").to_string();
    r.source.is_none() && r.text().is_some_and(|t| t.starts_with(&head))
}

fn reports(admin: &User) -> Vec<Received> {
    admin.received().into_iter().filter(is_report).collect()
}

/// `reporter` opens /report and presses reason `reason`; returns the
/// reason picker message.
pub(crate) async fn report(reporter: &User, reason: &str) -> Received {
    report_via(reporter, reason, false).await
}

/// Like [`report`]; with `button`, through the reply keyboard's Report button.
async fn report_via(reporter: &User, reason: &str, button: bool) -> Received {
    let pick = expect_after(reporter, "report_pick", EN, || {
        if button {
            reporter.send_text(&en("btn_report"));
        } else {
            reporter.command("/report");
        }
    })
    .await;
    let data = inline_buttons(&pick)
        .into_iter()
        .find(|d| d.starts_with(&format!("rr:{reason}:")))
        .unwrap_or_else(|| panic!("no {reason} button on {:?}", pick.content));
    press(reporter, pick.message_id, &data).await;
    pick
}

async fn redis_str(cluster: &Cluster, key: &str) -> Option<String> {
    let mut conn = cluster.redis.conn().await;
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("GET")
}

async fn pttl(cluster: &Cluster, key: &str) -> i64 {
    let mut conn = cluster.redis.conn().await;
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("PTTL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_ends_the_chat_and_the_two_never_meet_again_across_a_restart() {
    // No rejoin cooldown: only the block can keep them apart.
    let mut cluster = Cluster::start_with(2, &[("REJOIN_COOLDOWN_SECS", "0")]).await;
    let db = Db::new(&cluster).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;

    alice.command("/block");
    wait_says(&alice, "blocked").await;
    wait_says(&bob, "partner_left").await;
    db.assert_state(&alice, "idle", None).await;
    db.assert_state(&bob, "idle", None).await;

    for r in &cluster.replicas {
        r.terminate();
    }
    for r in cluster.replicas.iter_mut() {
        r.wait_exit(WAIT).await.expect("replica exits on SIGTERM");
    }
    cluster.add_replica().await;
    cluster.add_replica().await;

    // Both directions: Bob searching first, then Alice, then the reverse.
    for (first, second) in [(&bob, &alice), (&alice, &bob)] {
        expect_after(first, "searching", EN, || {
            first.command("/search");
        })
        .await;
        expect_after(second, "searching", EN, || {
            second.command("/search");
        })
        .await;
        barrier(first, EN).await;
        assert_eq!(count(&alice, "found"), 1, "Alice met Bob again");
        db.assert_state(&alice, "search", None).await;
        db.assert_state(&bob, "search", None).await;
        for u in [&alice, &bob] {
            expect_after(u, "search_cancelled", EN, || {
                u.command("/stop");
            })
            .await;
        }
    }
    // Anyone else still meets them.
    let carol = cluster.user("Carol");
    pair(&alice, &carol).await;
    let ttl = pttl(&cluster, &cluster.keys().blocks(alice.id())).await;
    assert!(ttl > 179 * 86_400_000, "block set TTL {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_reaches_admins_with_evidence_and_a_ban_applies_once() {
    let admin_id = admin_id();
    let cluster = Cluster::start_with(2, &[("ADMIN_IDS", &admin_id.to_string())]).await;
    let db = Db::new(&cluster).await;
    let admin = cluster.user_with(TgUser::new(admin_id, "Admin"));
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    let carol = cluster.user("Carol");
    pair(&alice, &bob).await;
    for t in ["first", "buy crypto at example", "join my channel"] {
        bob.send_text(t);
        alice.wait_text(t).await;
    }
    let before_bob = alice.send_text("from alice");
    bob.wait_text("from alice").await;

    let pick = report(&alice, "spam").await;
    wait_says(&alice, "report_thanks").await;
    let left = wait_says(&bob, "partner_left").await;
    // Exactly what a Stop sends: Bob can't tell he was reported.
    assert_eq!(keyboard(&left), [en("btn_search"), en("btn_report")]);
    db.assert_state(&alice, "idle", None).await;

    // The queue: reason, anonymous ids, counts, buttons; never who.
    let queued = admin.wait_for("a report", is_report).await;
    let body = queued.text().unwrap_or_default().to_string();
    assert!(body.contains(&text("reason_spam", EN)), "{body}");
    for secret in [
        alice.id().to_string(),
        bob.id().to_string(),
        "Alice".into(),
        "Bob".into(),
    ] {
        assert!(
            !body.contains(&secret),
            "the report reveals {secret}: {body}"
        );
    }
    let decisions = inline_buttons(&queued);
    assert_eq!(decisions.len(), 5, "{decisions:?}");
    // Evidence: copies of Bob's messages from Alice's own chat, protected.
    let copies = admin
        .tg
        .wait_until(WAIT, || {
            let c: Vec<Received> = admin
                .received()
                .into_iter()
                .filter(|r| r.method == "copyMessage")
                .collect();
            (c.len() >= 3).then_some(c)
        })
        .await
        .expect("three evidence copies");
    let texts: Vec<_> = copies.iter().filter_map(|c| c.text()).collect();
    assert_eq!(texts, ["first", "buy crypto at example", "join my channel"]);
    assert!(copies
        .iter()
        .all(|c| c.source.map(|s| s.0) == Some(alice.id())));
    assert!(copies
        .iter()
        .all(|c| c.params["protect_content"] == Value::Bool(true)
            || c.params["protect_content"] == Value::String("true".into())));
    let _ = before_bob;

    // Replayed and forged report buttons: nothing more.
    let replay = inline_buttons(&pick)
        .into_iter()
        .find(|d| d.starts_with("rr:spam:"))
        .expect("spam button");
    press(&alice, pick.message_id, &replay).await;
    press(&alice, pick.message_id, "rr:minor:123456789").await;
    wait_says(&alice, "report_expired").await;
    barrier(&alice, EN).await;
    assert_eq!(reports(&admin).len(), 1, "a replayed report counted twice");

    // A non-admin pressing a moderation button: refused, nothing changes.
    let ban_week = decisions
        .iter()
        .find(|d| d.starts_with("md:b7:"))
        .expect("ban 7 days")
        .clone();
    let help = expect_after(&carol, "rules", EN, || {
        carol.command("/rules");
    })
    .await;
    let refused = press(&carol, help.message_id, &ban_week).await;
    assert_eq!(refused, Some(text("mod_not_allowed", EN)));
    assert_eq!(
        redis_str(&cluster, &cluster.keys().ban(bob.id())).await,
        None
    );

    // The admin bans; a second press changes nothing.
    let start = Instant::now();
    assert_eq!(press(&admin, queued.message_id, &ban_week).await, None);
    let told = bob
        .wait_for("the ban notice", |r| {
            r.text()
                .is_some_and(|t| t.starts_with("You are banned from chatting until"))
        })
        .await;
    assert!(start.elapsed() < Duration::from_secs(3));
    let ttl = pttl(&cluster, &cluster.keys().ban(bob.id())).await;
    assert!(
        ttl > 7 * 86_400_000 - 60_000 && ttl <= 7 * 86_400_000,
        "ban PTTL {ttl}"
    );
    let again = press(&admin, queued.message_id, &ban_week).await;
    assert!(
        again.is_some_and(|t| t.contains("ban")),
        "second press answered"
    );
    let forged = press(&admin, queued.message_id, "md:bf:999999").await;
    assert_eq!(forged, Some(text("mod_unknown", EN)));
    // One decision, one audit entry.
    let mut conn = cluster.redis.conn().await;
    let audited: u64 = redis::cmd("XLEN")
        .arg(cluster.keys().audit())
        .query_async(&mut conn)
        .await
        .expect("XLEN");
    assert_eq!(audited, 1);
    assert_eq!(
        bob.received()
            .iter()
            .filter(|r| r.text() == told.text())
            .count(),
        1
    );
    // Bob can't search; others can.
    bob.command("/search");
    eventually(WAIT, || async {
        (bob.received()
            .iter()
            .filter(|r| r.text() == told.text())
            .count()
            == 2)
            .then_some(())
    })
    .await
    .expect("search refused with the ban's end");
    db.assert_state(&bob, "idle", None).await;
    let _ = says;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_after_the_chat_and_a_ban_end_the_new_chat_on_every_replica() {
    let admin_id = admin_id();
    let cluster = Cluster::start_with(3, &[("ADMIN_IDS", &admin_id.to_string())]).await;
    let db = Db::new(&cluster).await;
    let admin = cluster.user_with(TgUser::new(admin_id, "Admin"));
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    let carol = cluster.user("Carol");
    pair(&alice, &bob).await;
    bob.send_text("rude words");
    alice.wait_text("rude words").await;
    alice.command("/stop");
    wait_says(&bob, "partner_left").await;
    let left = wait_says(&alice, "you_left").await;
    assert_eq!(keyboard(&left), [en("btn_search"), en("btn_report")]);
    pair(&bob, &carol).await;

    // After the chat, within the window, the Report button of the
    // chat-ended message names the last chat.
    report_via(&alice, "harassment", true).await;
    wait_says(&alice, "report_thanks").await;
    let queued = admin.wait_for("a report", is_report).await;
    db.assert_state(&bob, "chat", Some(&carol)).await;
    let ban_day = inline_buttons(&queued)
        .into_iter()
        .find(|d| d.starts_with("md:b1:"))
        .expect("ban 1 day");
    let start = Instant::now();
    press(&admin, queued.message_id, &ban_day).await;
    wait_says(&carol, "partner_left").await;
    bob.wait_for("the ban notice", |r| {
        r.text()
            .is_some_and(|t| t.starts_with("You are banned from chatting until"))
    })
    .await;
    println!("ban across three replicas took {:?}", start.elapsed());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    db.assert_state(&bob, "idle", None).await;
    db.assert_state(&carol, "idle", None).await;
    let ttl = pttl(&cluster, &cluster.keys().ban(bob.id())).await;
    assert!(ttl > 86_400_000 - 60_000, "ban PTTL {ttl}");
    // Bob's messages go nowhere now.
    bob.send_text("still here?");
    wait_says(&bob, "not_in_chat").await;
    assert_eq!(carol.count_text("still here?"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_after_the_window_is_refused_with_an_explanation() {
    let cluster = Cluster::start(1).await;
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    pair(&alice, &bob).await;
    alice.command("/stop");
    wait_says(&bob, "partner_left").await;
    // The window ends: the last-partner record expires.
    let key = cluster.keys().last_partner(alice.id());
    let mut conn = cluster.redis.conn().await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("TTL");
    assert!((590..=600).contains(&ttl), "report window TTL {ttl}");
    let _: () = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(1)
        .query_async(&mut conn)
        .await
        .expect("PEXPIRE");
    tokio::time::sleep(Duration::from_millis(20)).await;
    expect_after(&alice, "report_expired", EN, || {
        alice.command("/report");
    })
    .await;
    assert_eq!(count(&alice, "report_pick"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_distinct_reporters_suspend_until_an_admin_decides() {
    let admin_id = admin_id();
    let cluster = Cluster::start_with(
        2,
        &[
            ("ADMIN_IDS", &admin_id.to_string()),
            ("REJOIN_COOLDOWN_SECS", "0"),
        ],
    )
    .await;
    let admin = cluster.user_with(TgUser::new(admin_id, "Admin"));
    let spammer = cluster.user("Spammer");
    let suspended = text("suspended", EN);
    let mut queued = Vec::new();
    for (i, name) in ["R1", "R2", "R3"].into_iter().enumerate() {
        let r = cluster.user(name);
        pair(&r, &spammer).await;
        // The second one uses the Report button of the chat keyboard.
        report_via(&r, "spam", i == 1).await;
        wait_says(&r, "report_thanks").await;
        let q = admin
            .tg
            .wait_until(WAIT, || {
                let all = reports(&admin);
                (all.len() > i).then(|| all[i].clone())
            })
            .await
            .expect("report queued");
        queued.push(q);
        // The same reporter again (a replayed button) never adds weight.
        barrier(&r, EN).await;
        if i < 2 {
            assert_eq!(
                spammer.count_text(&suspended),
                0,
                "suspended after {}",
                i + 1
            );
        }
    }
    spammer
        .wait_for("the suspension", |r| r.text() == Some(suspended.as_str()))
        .await;
    assert!(queued[2]
        .text()
        .is_some_and(|t| t.contains(text("mod_suspended_note", EN).trim())));
    spammer.command("/search");
    eventually(WAIT, || async {
        (spammer.count_text(&suspended) == 2).then_some(())
    })
    .await
    .expect("search refused while suspended");
    // Dismissing lifts the suspension.
    let dismiss = inline_buttons(&queued[2])
        .into_iter()
        .find(|d| d.starts_with("md:dm:"))
        .expect("dismiss");
    press(&admin, queued[2].message_id, &dismiss).await;
    expect_after(&spammer, "searching", EN, || {
        spammer.command("/search");
    })
    .await;
    // A ban forever, then a 1-day ban from another report: still forever.
    let decision = |q: &Received, code: &str| {
        inline_buttons(q)
            .into_iter()
            .find(|d| d.starts_with(&format!("md:{code}:")))
            .expect("decision button")
    };
    press(&admin, queued[0].message_id, &decision(&queued[0], "bf")).await;
    press(&admin, queued[1].message_id, &decision(&queued[1], "b1")).await;
    let key = cluster.keys().ban(spammer.id());
    assert_eq!(redis_str(&cluster, &key).await.as_deref(), Some("0"));
    assert_eq!(pttl(&cluster, &key).await, -1, "a forever ban got an end");
    let db = Db::new(&cluster).await;
    db.assert_state(&spammer, "idle", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reporter_judged_false_weighs_less_toward_a_suspension() {
    let admin_id = admin_id();
    let cluster = Cluster::start_with(
        2,
        &[
            ("ADMIN_IDS", &admin_id.to_string()),
            ("AUTO_SUSPEND_REPORTERS", "2"),
        ],
    )
    .await;
    let admin = cluster.user_with(TgUser::new(admin_id, "Admin"));
    let (r1, r2) = (cluster.user("R1"), cluster.user("R2"));
    let (x, y) = (cluster.user("X"), cluster.user("Y"));
    pair(&r1, &x).await;
    report(&r1, "other").await;
    let q = admin.wait_for("a report", is_report).await;
    let false_report = inline_buttons(&q)
        .into_iter()
        .find(|d| d.starts_with("md:fr:"))
        .expect("false report");
    assert_eq!(press(&admin, q.message_id, &false_report).await, None);

    // R1 now weighs 1/2: R1 and R2 together (1.5) stay below 2.
    pair(&r1, &y).await;
    report(&r1, "spam").await;
    wait_says(&r1, "report_thanks").await;
    pair(&r2, &y).await;
    report(&r2, "spam").await;
    wait_says(&r2, "report_thanks").await;
    admin
        .tg
        .wait_until(WAIT, || (reports(&admin).len() == 3).then_some(()))
        .await
        .expect("three reports queued");
    barrier(&y, EN).await;
    assert_eq!(y.count_text(&text("suspended", EN)), 0, "suspended by 1.5");
    assert_eq!(redis_str(&cluster, &cluster.keys().ban(y.id())).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_rate_limited_per_reporter() {
    let cluster = Cluster::start_with(1, &[("REPORTS_PER_HOUR", "1")]).await;
    let alice = cluster.user("Alice");
    let (bob, carol) = (cluster.user("Bob"), cluster.user("Carol"));
    pair(&alice, &bob).await;
    report(&alice, "spam").await;
    wait_says(&alice, "report_thanks").await;
    pair(&alice, &carol).await;
    report(&alice, "spam").await;
    wait_says(&alice, "report_limited").await;
    assert_eq!(count(&alice, "report_thanks"), 1);
    // Not filed: the chat goes on, Carol is not blocked.
    Db::new(&cluster)
        .await
        .assert_state(&alice, "chat", Some(&carol))
        .await;
}

/// `r`'s parameters without the ids that differ from message to message.
fn shape(r: &Received) -> Value {
    let mut p = r.params.clone();
    if let Some(o) = p.as_object_mut() {
        o.remove("message_id");
    }
    p
}

/// What `to` received after its first `after` messages, waiting for `n`.
async fn next_received(to: &User, after: usize, n: usize) -> Vec<Received> {
    to.tg
        .wait_until(WAIT, || {
            let got: Vec<Received> = to.received().into_iter().skip(after).collect();
            (got.len() >= n).then_some(got)
        })
        .await
        .unwrap_or_else(|| panic!("{} got fewer than {n} messages", to.info.first_name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_and_unban_commands_work_for_admins_only_and_reveal_nothing_to_others() {
    let admin_id = admin_id();
    let cluster = Cluster::start_with(2, &[("ADMIN_IDS", &admin_id.to_string())]).await;
    let db = Db::new(&cluster).await;
    let admin = cluster.user_with(TgUser::new(admin_id, "Admin"));
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    let carol = cluster.user("Carol");
    pair(&alice, &bob).await;
    report(&alice, "spam").await;
    wait_says(&alice, "report_thanks").await;
    admin.wait_for("a report", is_report).await;
    let anon = redis_str(&cluster, &cluster.keys().anon(bob.id()))
        .await
        .expect("bob's anonymous id");
    pair(&bob, &carol).await;

    // A non-admin's /ban is any unknown command: in a chat it is relayed
    // like one, when idle it is hinted like one; nothing is banned.
    let admin_before = admin.received().len();
    let seen = bob.received().len();
    carol.send_text(&format!("/frobnicate {anon} forever"));
    let unknown = next_received(&bob, seen, 1).await;
    carol.command(&format!("/ban {anon} forever"));
    let ban = next_received(&bob, seen + 1, 1).await;
    assert_eq!(unknown[0].method, ban[0].method);
    assert_eq!(shape(&unknown[0]), shape(&ban[0]));
    assert_eq!(ban[0].source.map(|s| s.0), Some(carol.id()));
    db.assert_state(&bob, "chat", Some(&carol)).await;
    assert_eq!(
        redis_str(&cluster, &cluster.keys().ban(bob.id())).await,
        None
    );

    // An admin's /ban: the chat ends, Bob is told until when, search refused.
    let start = Instant::now();
    admin.command(&format!("/ban {anon} 1d rude"));
    let done = text_with("admin_banned", EN, &[("id", &anon), ("ban", "\u{1}")]);
    let done = done.split('\u{1}').next().unwrap_or_default().to_string();
    admin.wait_text(&done).await;
    wait_says(&carol, "partner_left").await;
    let banned = |r: &Received| {
        r.text()
            .is_some_and(|t| t.starts_with("You are banned from chatting until"))
    };
    bob.wait_for("the ban notice", banned).await;
    println!("admin /ban took effect in {:?}", start.elapsed());
    db.assert_state(&bob, "idle", None).await;
    let ttl = pttl(&cluster, &cluster.keys().ban(bob.id())).await;
    assert!(ttl > 86_400_000 - 60_000, "ban PTTL {ttl}");
    let notices = bob.received().into_iter().filter(|r| banned(r)).count();
    bob.command("/search");
    bob.tg
        .wait_until(WAIT, || {
            (bob.received().into_iter().filter(|r| banned(r)).count() > notices).then_some(())
        })
        .await
        .expect("search refused with the ban");
    db.assert_state(&bob, "idle", None).await;

    // Idle, a non-admin's /unban is hinted exactly like an unknown command.
    let seen = carol.received().len();
    carol.send_text(&format!("/frobnicate {anon}"));
    let unknown = next_received(&carol, seen, 1).await;
    carol.command(&format!("/unban {anon}"));
    let unban = next_received(&carol, seen + 1, 1).await;
    assert_eq!(shape(&unknown[0]), shape(&unban[0]));
    assert!(redis_str(&cluster, &cluster.keys().ban(bob.id()))
        .await
        .is_some());
    // Nothing of it reached the admin beyond their own command's answer.
    let to_admin: Vec<String> = admin
        .received()
        .into_iter()
        .skip(admin_before)
        .filter_map(|r| r.text().map(str::to_string))
        .collect();
    assert_eq!(to_admin.len(), 1, "{to_admin:?}");

    // /unban lifts it, once; the audit trail has both.
    admin.command(&format!("/unban {anon}"));
    admin
        .wait_text(&text_with("admin_unbanned", EN, &[("id", &anon)]))
        .await;
    assert_eq!(
        redis_str(&cluster, &cluster.keys().ban(bob.id())).await,
        None
    );
    admin.command(&format!("/unban {anon}"));
    admin
        .wait_text(&text_with("admin_not_banned", EN, &[("id", &anon)]))
        .await;
    let mut conn = cluster.redis.conn().await;
    let audit: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(cluster.keys().audit())
        .arg("-")
        .arg("+")
        .query_async::<Vec<(String, Vec<String>)>>(&mut conn)
        .await
        .expect("XRANGE");
    let actions: Vec<String> = audit
        .iter()
        .filter_map(|(_, f)| {
            f.iter()
                .position(|x| x == "action")
                .map(|i| f[i + 1].clone())
        })
        .collect();
    assert_eq!(actions, ["ban", "unban"], "{audit:?}");
    bob.command("/search");
    wait_says(&bob, "searching").await;

    // Wrong arguments: the admin gets the usage, nothing changes.
    admin.command("/ban nobody 3d");
    admin.wait_text(&en("admin_usage")[..20]).await;
    admin.command("/ban u0000000000 1d");
    admin
        .wait_text(&text_with("admin_unknown", EN, &[("id", "u0000000000")]))
        .await;
}

/// The evidence copies the admin received after their first `after` messages.
async fn evidence_after(admin: &User, after: usize, n: usize) -> Vec<String> {
    admin
        .tg
        .wait_until(WAIT, || {
            let c: Vec<String> = admin
                .received()
                .into_iter()
                .skip(after)
                .filter(|r| r.method == "copyMessage")
                .filter_map(|r| r.text().map(str::to_string))
                .collect();
            (c.len() >= n).then_some(c)
        })
        .await
        .unwrap_or_else(|| panic!("fewer than {n} evidence copies: {:#?}", admin.received()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_as_a_reply_puts_that_message_first_in_the_evidence() {
    let admin_id = admin_id();
    let cluster = Cluster::start_with(1, &[("ADMIN_IDS", &admin_id.to_string())]).await;
    let admin = cluster.user_with(TgUser::new(admin_id, "Admin"));
    let alice = cluster.user("Alice");
    let bob = cluster.user("Bob");
    let carol = cluster.user("Carol");
    pair(&alice, &bob).await;
    let mut copies = Vec::new();
    for t in ["the bad one", "b2", "b3", "b4", "b5", "b6", "b7"] {
        bob.send_text(t);
        copies.push(alice.wait_text(t).await);
    }
    let mine = alice.send_text("alice's own");
    bob.wait_text("alice's own").await;

    // /report as a reply to Bob's first message: it leads, then the last five.
    let pick = expect_after(&alice, "report_pick", EN, || {
        alice
            .tg
            .reply_command(&alice.info, copies[0].message_id, "/report")
            .expect("the copy exists");
    })
    .await;
    let data = inline_buttons(&pick)
        .into_iter()
        .find(|d| d.starts_with("rr:spam:"))
        .expect("spam button");
    assert!(
        data.ends_with(&format!(":{}", copies[0].message_id)),
        "{data}"
    );
    let seen = admin.received().len();
    press(&alice, pick.message_id, &data).await;
    wait_says(&alice, "report_thanks").await;
    let evidence = evidence_after(&admin, seen, 6).await;
    assert_eq!(evidence, ["the bad one", "b3", "b4", "b5", "b6", "b7"]);

    // A forged button naming the reporter's own message (a map entry into
    // the partner's chat, but not a copy received) adds nothing of hers.
    pair(&carol, &bob).await;
    bob.send_text("c1");
    carol.wait_text("c1").await;
    let own = carol.send_text("carol's own");
    bob.wait_text("carol's own").await;
    let pick = expect_after(&carol, "report_pick", EN, || {
        carol.command("/report");
    })
    .await;
    let plain = inline_buttons(&pick)
        .into_iter()
        .find(|d| d.starts_with("rr:spam:"))
        .expect("spam button");
    let seen = admin.received().len();
    press(
        &carol,
        pick.message_id,
        &format!("{plain}:{}", own.message_id),
    )
    .await;
    wait_says(&carol, "report_thanks").await;
    let evidence = evidence_after(&admin, seen, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let evidence_later = evidence_after(&admin, seen, 1).await;
    assert_eq!(evidence, ["c1"]);
    assert_eq!(evidence_later, ["c1"]);
    let _ = mine;
}
