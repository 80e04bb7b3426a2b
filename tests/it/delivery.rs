//! Delivery under faults (issue 11): nothing lost, misrouted or doubled.
//! Albums are delivered in the chat's own order and to the chat they were
//! sent in; a delayed relay never lands in the partner's next chat; timer
//! notices survive failed sends; queued users match once a cooldown ends.

use std::time::{Duration, Instant};

use anonchat_testkit::fake::{FakeTelegram, Received, Sent};

use crate::chat::{
    barrier, count, pair, says, says_timed, summary, wait_nth_in, wait_says, Db, EN,
};
use crate::harness::{eventually, Cluster, User, WAIT};

/// Index in `to`'s chat of the copy of each of `from`'s messages `parts`,
/// once all have arrived.
async fn copies_of(to: &User, from: &User, parts: &[Sent]) -> Vec<usize> {
    let ids: Vec<i32> = parts.iter().map(|s| s.message_id).collect();
    let found = to
        .tg
        .wait_until(WAIT, || {
            let got: Vec<usize> = ids
                .iter()
                .filter_map(|&m| {
                    to.received()
                        .iter()
                        .position(|r| r.source == Some((from.id(), m)))
                })
                .collect();
            (got.len() == ids.len()).then_some(got)
        })
        .await;
    found.unwrap_or_else(|| {
        panic!(
            "{} never got all of {:?} from {}: {:#?}",
            to.info.first_name,
            ids,
            from.info.first_name,
            summary(to)
        )
    })
}

/// True when `u` got a copy of any of `from`'s `parts`.
fn got_any(u: &User, from: &User, parts: &[Sent]) -> bool {
    u.received().iter().any(|r| {
        parts
            .iter()
            .any(|s| r.source == Some((from.id(), s.message_id)))
    })
}

/// Fails if `u` gets a copy of any of `parts` within `window`.
async fn never_gets(u: &User, from: &User, parts: &[Sent], window: Duration) {
    let leaked =
        u.tg.wait_until(window, || got_any(u, from, parts).then_some(()))
            .await;
    assert!(
        leaked.is_none(),
        "{} got {}'s message(s): {:#?}",
        u.info.first_name,
        from.info.first_name,
        summary(u)
    );
}

/// Makes every send to `chat` answer 429 (retry_after 1 s) for `length`.
fn fail_sends_for(tg: &FakeTelegram, chat: i64, length: Duration) -> tokio::task::JoinHandle<()> {
    let tg = tg.clone();
    tokio::spawn(async move {
        let until = Instant::now() + length;
        while Instant::now() < until {
            tg.force_429(chat, 1);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Alice and Bob chatting, Carol searching (so Next pairs Alice with Carol).
async fn chat_and_searcher(cluster: &Cluster) -> (User, User, User) {
    let (alice, bob, carol) = (
        cluster.user("Alice"),
        cluster.user("Bob"),
        cluster.user("Carol"),
    );
    pair(&alice, &bob).await;
    carol.command("/search");
    wait_says(&carol, "searching").await;
    (alice, bob, carol)
}

// ---------------------------------------------------------------- albums

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_album_then_next_goes_to_the_old_partner_only() {
    let cluster = Cluster::start(2).await;
    let (alice, bob, carol) = chat_and_searcher(&cluster).await;

    let parts = cluster.tg.send_album(&alice.info, 3, Some("for Bob"));
    alice.command("/next");
    copies_of(&bob, &alice, &parts).await;
    wait_says(&carol, "found").await;
    wait_says(&bob, "partner_left").await;
    // Bob's copies came before he was told Alice left.
    let left = bob
        .received()
        .iter()
        .position(|r| says(r, "partner_left", EN));
    let last = copies_of(&bob, &alice, &parts).await.into_iter().max();
    assert!(
        last < left,
        "album after partner_left: {:#?}",
        summary(&bob)
    );
    never_gets(&carol, &alice, &parts, Duration::from_millis(2500)).await;
    assert_eq!(
        cluster.tg.calls_for("copyMessages").len(),
        1,
        "album copied more than once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_album_then_text_arrive_in_the_order_sent() {
    let cluster = Cluster::start(2).await;
    let (alice, bob) = (cluster.user("Alice"), cluster.user("Bob"));
    pair(&alice, &bob).await;

    let parts = cluster.tg.send_album(&alice.info, 2, None);
    let text = alice.send_text("after the album");
    let album_at = copies_of(&bob, &alice, &parts).await;
    let text_at = copies_of(&bob, &alice, std::slice::from_ref(&text)).await[0];
    assert!(
        album_at.iter().all(|&i| i < text_at),
        "text overtook the album: {:#?}",
        summary(&bob)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_album_then_stop_reaches_the_partner_before_partner_left() {
    let cluster = Cluster::start(2).await;
    let (alice, bob) = (cluster.user("Alice"), cluster.user("Bob"));
    pair(&alice, &bob).await;

    let parts = cluster.tg.send_album(&alice.info, 2, None);
    alice.command("/stop");
    let left = wait_says(&bob, "partner_left").await;
    let album_at = copies_of(&bob, &alice, &parts).await;
    let left_at = bob
        .received()
        .iter()
        .position(|r| r.message_id == left.message_id);
    assert!(
        album_at.iter().all(|&i| Some(i) < left_at),
        "album missing or after partner_left: {:#?}",
        summary(&bob)
    );
}

// ---------------------------------------------------------------- chat ids

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_relay_never_lands_in_the_partners_next_chat() {
    // A realistic per-chat budget: Bob's second copy waits about a second.
    let cluster = Cluster::start_with(1, &[("TG_CHAT_RATE", "1"), ("TG_CHAT_BURST", "1")]).await;
    let (alice, bob, carol) = chat_and_searcher(&cluster).await;
    barrier(&bob, EN).await;

    // Bob's /help answer just used his budget: this copy has to wait for it.
    // Bob presses Next once it is routed (its slot reserved), during the wait.
    let budget = cluster.keys().chat_budget(bob.id());
    let conn = cluster.redis.conn().await;
    let tat = |conn: redis::aio::MultiplexedConnection| {
        let budget = budget.clone();
        async move {
            let mut conn = conn;
            let v: Option<String> = redis::cmd("GET")
                .arg(&budget)
                .query_async(&mut conn)
                .await
                .ok()?;
            v.and_then(|v| v.parse::<f64>().ok())
        }
    };
    let before = tat(conn.clone()).await.unwrap_or(0.0);
    let waiting = alice.send_text("one");
    let routed = eventually(WAIT, || {
        let conn = conn.clone();
        let tat = &tat;
        async move { tat(conn).await.filter(|&t| t > before) }
    })
    .await;
    assert!(routed.is_some(), "Alice's message was never routed");
    bob.command("/next");
    wait_says(&alice, "partner_left").await;
    wait_says(&carol, "found").await;
    // Bob moved on to Carol while the copy waited: Bob never gets it in his
    // chat with Carol, and Alice is told it was not delivered.
    never_gets(&bob, &alice, &[waiting], Duration::from_millis(2500)).await;
    wait_says(&alice, "not_delivered_chat_ended").await;
    assert!(!got_any(&carol, &alice, &[waiting]));
}

// ---------------------------------------------------------------- timers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_timeout_notice_survives_failed_sends() {
    let cluster = Cluster::start_with(1, &[("SEARCH_TIMEOUT", "2")]).await;
    let db = Db::new(&cluster).await;
    let alice = cluster.user("Alice");
    alice.command("/search");
    wait_says(&alice, "searching").await;
    // Every send to Alice fails for longer than one notice's own retries.
    let failing = fail_sends_for(&cluster.tg, alice.id(), Duration::from_secs(8));
    let timed_out = |r: &Received| says_timed(r, "search_timeout", EN);
    alice.wait_for("search_timeout", timed_out).await;
    let _ = failing.await;
    db.assert_state(&alice, "idle", None).await;
    barrier(&alice, EN).await;
    assert_eq!(alice.received().iter().filter(|r| timed_out(r)).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_timeout_tells_both_even_when_one_send_fails() {
    let cluster =
        Cluster::start_with(1, &[("CHAT_IDLE_TIMEOUT", "2"), ("SEARCH_TIMEOUT", "1h")]).await;
    let (alice, bob) = (cluster.user("Alice"), cluster.user("Bob"));
    pair(&alice, &bob).await;
    let idle = |r: &Received| says_timed(r, "idle_timeout", EN);
    // Alice (the lower id, told first before) can't be reached for a while.
    let failing = fail_sends_for(&cluster.tg, alice.id(), Duration::from_secs(8));
    bob.wait_for("idle_timeout", idle).await;
    alice.wait_for("idle_timeout", idle).await;
    let _ = failing.await;
}

// ---------------------------------------------------------------- matching, TTLs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_queued_users_match_once_their_cooldown_ends() {
    let cluster = Cluster::start_with(2, &[("REJOIN_COOLDOWN_SECS", "2")]).await;
    let db = Db::new(&cluster).await;
    let (alice, bob) = (cluster.user("Alice"), cluster.user("Bob"));
    pair(&alice, &bob).await;
    alice.command("/next");
    wait_says(&bob, "partner_left").await;
    bob.command("/search");
    let t = Instant::now();
    // Both wait in the queue (they just left each other)...
    wait_nth_in(&alice, "searching", EN, 2).await;
    wait_nth_in(&bob, "searching", EN, 1).await;
    assert_eq!(count(&alice, "found"), 1);
    // ...and are paired once the cooldown has passed, with nobody else searching.
    wait_nth_in(&alice, "found", EN, 2).await;
    wait_nth_in(&bob, "found", EN, 2).await;
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "matched during the cooldown"
    );
    db.assert_state(&alice, "chat", Some(&bob)).await;
    db.assert_state(&bob, "chat", Some(&alice)).await;
    let hi = alice.send_text("hi again");
    copies_of(&bob, &alice, &[hi]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_users_hash_does_not_expire() {
    let cluster = Cluster::start(1).await;
    let (alice, bob) = (cluster.user("Alice"), cluster.user("Bob"));
    pair(&alice, &bob).await;
    let mut conn = cluster.redis.conn().await;
    let key = cluster.keys().user(alice.id());
    redis::cmd("EXPIRE")
        .arg(&key)
        .arg(100)
        .query_async::<()>(&mut conn)
        .await
        .expect("EXPIRE");
    let s = alice.send_text("still here");
    copies_of(&bob, &alice, &[s]).await;
    let ttl = eventually(WAIT, || {
        let mut conn = conn.clone();
        let key = key.clone();
        async move {
            let ttl: i64 = redis::cmd("TTL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .ok()?;
            (ttl > 86_400).then_some(ttl)
        }
    })
    .await;
    assert!(ttl.is_some(), "activity did not refresh the user's TTL");
}
