//! Flood control across replicas: the shared outbound budget, 429 freezes,
//! the inbound throttle, and backpressure under overload, against the fake
//! Telegram with its flood control switched on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anonchat::bot::texts::{text, Lang};
use anonchat_testkit::fake::{FakeConfig, FloodConfig};
use anonchat_testkit::{rss_bytes, RedisServer};

use crate::harness::{eventually, Cluster, User, WAIT};

/// A cluster whose fake Telegram enforces `global`/s overall and 1/s (burst 3)
/// per chat; our budgets (set by the caller) sit below them, as an operator
/// sets them below Telegram's limits.
async fn limited_cluster(n: usize, global: f64, ours: &[(&str, &str)]) -> Cluster {
    let fake = FakeConfig {
        flood: Some(FloodConfig {
            per_chat_rate: 1.0,
            per_chat_burst: 3,
            global_rate: global,
            global_burst: (global / 10.0) as u32,
        }),
        ..FakeConfig::default()
    };
    let mut env: Vec<(&str, &str)> = vec![
        ("TG_CHAT_RATE", "1"),
        ("TG_CHAT_BURST", "2"),
        ("INBOUND_RATE", "1000"),
        ("INBOUND_BURST", "1000"),
        ("RUST_LOG", "warn,anonchat=debug"),
    ];
    env.extend_from_slice(ours);
    Cluster::build(RedisServer::start().await, fake, n, &env).await
}

/// Pairs `users` two by two through /search (all at once) and returns each
/// user's partner id, read from the pair state in Redis.
async fn pair_all(cluster: &Cluster, users: &[User]) -> HashMap<i64, i64> {
    for u in users {
        u.command("/search");
    }
    let found = text("found", Lang::En);
    for u in users {
        u.wait_for("found", |r| r.text() == Some(found.as_str()))
            .await;
    }
    let mut conn = cluster.redis.conn().await;
    let mut partners = HashMap::new();
    for u in users {
        let p: Option<i64> = redis::cmd("HGET")
            .arg(cluster.keys().user(u.id()))
            .arg("p")
            .query_async(&mut conn)
            .await
            .expect("redis");
        partners.insert(u.id(), p.expect("paired"));
    }
    partners
}

/// Largest number of bot calls of `methods` in any sliding `window`.
fn peak_in_window(cluster: &Cluster, methods: &[&str], window: Duration) -> usize {
    let mut times: Vec<u64> = cluster
        .tg
        .calls()
        .iter()
        .filter(|c| methods.contains(&c.method.as_str()))
        .map(|c| c.at_ms)
        .collect();
    times.sort_unstable();
    let w = window.as_millis() as u64;
    let mut peak = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= w {
            start += 1;
        }
        peak = peak.max(end - start + 1);
    }
    peak
}

const SENDS: &[&str] = &[
    "sendMessage",
    "copyMessage",
    "copyMessages",
    "editMessageText",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_500_chats_is_delivered_in_order_within_the_budget() {
    let cluster = limited_cluster(3, 250.0, &[("TG_GLOBAL_RATE", "200")]).await;
    let users: Vec<User> = (0..500).map(|i| cluster.user(&format!("f{i}"))).collect();
    let partners = pair_all(&cluster, &users).await;
    let by_id: HashMap<i64, &User> = users.iter().map(|u| (u.id(), u)).collect();

    // 5,000 messages: every user sends 10, all within a few seconds.
    let mut sent: HashMap<i64, Vec<i32>> = HashMap::new();
    for round in 0..10 {
        for u in &users {
            let s = u.send_text(&format!("burst {round}"));
            sent.entry(u.id()).or_default().push(s.message_id);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let started = Instant::now();
    for u in &users {
        let from = partners[&u.id()];
        let want = sent[&from].clone();
        let got = cluster
            .tg
            .wait_until(Duration::from_secs(120), || {
                let copies: Vec<i32> = u
                    .received()
                    .iter()
                    .filter(|r| r.method == "copyMessage")
                    .filter_map(|r| r.source.filter(|(c, _)| *c == from).map(|(_, m)| m))
                    .collect();
                (copies.len() >= want.len()).then_some(copies)
            })
            .await
            .unwrap_or_else(|| {
                panic!(
                    "user {} did not get all of {}'s messages",
                    u.id(),
                    by_id[&from].id()
                )
            });
        assert_eq!(got, want, "exactly once and in order");
    }
    let took = started.elapsed();
    let counters = cluster.tg.counters();
    // Over 10 s windows: the budget allows 10 s x 200/s plus its burst (10);
    // sends that leave up to 200 ms after their slots (two busy cores, other
    // tests running) can land in the next window, worth 40 more at 200/s.
    let peak = peak_in_window(&cluster, SENDS, Duration::from_secs(10));
    println!(
        "5,000 relayed in {took:?} after the burst; peak {peak} sends in 10 s (budget 200/s); 429s: {}",
        counters.too_many_requests
    );
    assert_eq!(
        counters.too_many_requests, 0,
        "the budget keeps us under Telegram's limits"
    );
    assert!(
        peak <= 10 * 200 + 10 + 40,
        "global rate above the budget: {peak} in 10 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_freezes_that_chat_for_every_replica_and_others_keep_flowing() {
    let cluster = limited_cluster(3, 1000.0, &[("TG_GLOBAL_RATE", "900")]).await;
    let (alice, bob, carol, dave) = (
        cluster.user("Alice"),
        cluster.user("Bob"),
        cluster.user("Carol"),
        cluster.user("Dave"),
    );
    pair_all(&cluster, &[alice.clone(), bob.clone()]).await;
    pair_all(&cluster, &[carol.clone(), dave.clone()]).await;

    cluster.tg.force_429(bob.id(), 3);
    let forced_at = Instant::now();
    let first = alice.send_text("one");
    let second = alice.send_text("two");
    // Another chat is not held up by Bob's freeze.
    let other = carol.send_text("meanwhile");
    dave.wait_for("carol's message", |r| {
        r.source == Some((carol.id(), other.message_id))
    })
    .await;
    assert!(
        forced_at.elapsed() < Duration::from_secs(2),
        "other chats must keep flowing"
    );

    let got = cluster
        .tg
        .wait_until(WAIT, || {
            let copies: Vec<(i32, Instant)> = bob
                .received()
                .iter()
                .filter_map(|r| {
                    r.source
                        .filter(|(c, _)| *c == alice.id())
                        .map(|(_, m)| (m, r.at))
                })
                .collect();
            (copies.len() >= 2).then_some(copies)
        })
        .await
        .expect("Alice's messages reach Bob after the freeze");
    assert_eq!(
        got.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
        vec![first.message_id, second.message_id]
    );
    let records = cluster.tg.too_many_requests();
    let bobs: Vec<_> = records.iter().filter(|r| r.chat_id == bob.id()).collect();
    assert!(!bobs.is_empty(), "the forced 429 happened");
    assert!(
        bobs.iter().all(|r| !r.violated),
        "a replica sent to Bob before retry_after passed: {bobs:?}"
    );
    assert_eq!(cluster.tg.counters().violations, 0);
    let first_429 = bobs.iter().map(|r| r.at_ms).min().unwrap_or(0);
    let delivered = cluster
        .tg
        .calls()
        .iter()
        .filter(|c| c.status == 200 && c.method == "copyMessage" && c.params["chat_id"] == bob.id())
        .map(|c| c.at_ms)
        .min()
        .unwrap_or(0);
    assert!(
        delivered >= first_429 + 3000,
        "delivered {} ms after the 429",
        delivered.saturating_sub(first_429)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_user_gets_one_notice_and_only_the_burst_is_relayed() {
    let cluster = Cluster::start_with(
        1,
        &[
            ("INBOUND_RATE", "1"),
            ("INBOUND_BURST", "10"),
            ("INBOUND_NOTICE_SECS", "30"),
        ],
    )
    .await;
    let (alice, bob) = (cluster.user("Alice"), cluster.user("Bob"));
    pair_all(&cluster, &[alice.clone(), bob.clone()]).await;
    let started = Instant::now();
    let mut last = None;
    for i in 0..50 {
        last = Some(alice.send_text(&format!("spam {i}")));
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    let slow_down = text("slow_down", Lang::En);
    alice.wait_text(&slow_down).await;
    // Stop always gets through; after it, everything before was handled.
    alice.command("/stop");
    alice.wait_text(&text("you_left", Lang::En)).await;
    let relayed = bob
        .received()
        .iter()
        .filter(|r| r.source.is_some_and(|(c, _)| c == alice.id()))
        .count();
    println!("50 messages in under a second: {relayed} relayed");
    assert!((10..=12).contains(&relayed), "relayed {relayed}");
    assert!(
        !bob.received()
            .iter()
            .any(|r| r.source == last.map(|s| (alice.id(), s.message_id))),
        "the tail of the flood is dropped"
    );
    assert_eq!(alice.count_text(&slow_down), 1, "exactly one notice");
}

/// Open file descriptors of a process (sockets included).
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_overload_stays_bounded_and_drains() {
    // Budget 20/s; 200 messages/s offered for 20 s (4,000 messages). The
    // backlog (about 200 s of budget) is meant to queue and drain here, so
    // the cap on a single wait is raised above it (MAX_SEND_WAIT's drops
    // are tested on their own above).
    let mut cluster = limited_cluster(
        3,
        25.0,
        &[("TG_GLOBAL_RATE", "20"), ("MAX_SEND_WAIT", "10m")],
    )
    .await;
    let users: Vec<User> = (0..100).map(|i| cluster.user(&format!("o{i}"))).collect();
    let partners = pair_all(&cluster, &users).await;
    let idle_rss: Vec<u64> = cluster
        .replicas
        .iter()
        .map(|r| r.pid().and_then(rss_bytes).unwrap_or(0))
        .collect();
    let mut peak_rss = vec![0u64; cluster.replicas.len()];
    let mut peak_fds = vec![0usize; cluster.replicas.len()];
    let mut sent = 0usize;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        for u in &users {
            u.send_text("load");
            sent += 1;
        }
        for (i, r) in cluster.replicas.iter().enumerate() {
            if let Some(pid) = r.pid() {
                peak_rss[i] = peak_rss[i].max(rss_bytes(pid).unwrap_or(0));
                peak_fds[i] = peak_fds[i].max(open_fds(pid));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "overload: {sent} messages offered in 20 s; RSS idle {:?} MB, peak {:?} MB; peak open fds {:?}",
        idle_rss.iter().map(|b| b / 1_000_000).collect::<Vec<_>>(),
        peak_rss.iter().map(|b| b / 1_000_000).collect::<Vec<_>>(),
        peak_fds
    );
    for (i, r) in cluster.replicas.iter_mut().enumerate() {
        assert!(r.is_running(), "replica {i} crashed");
        assert!(
            peak_rss[i] < 100_000_000,
            "replica {i} used {} bytes",
            peak_rss[i]
        );
        assert!(
            peak_fds[i] < 300,
            "replica {i} had {} fds open",
            peak_fds[i]
        );
    }
    // The backlog waits in Redis and drains at the budget.
    let drained = eventually(Duration::from_secs(300), || async {
        let delivered: usize = users
            .iter()
            .map(|u| {
                u.received()
                    .iter()
                    .filter(|r| r.source.is_some_and(|(c, _)| c == partners[&u.id()]))
                    .count()
            })
            .sum();
        (delivered >= sent).then_some(delivered)
    })
    .await;
    assert!(drained.is_some(), "backlog never drained");
    // Under this overload the two cores are saturated and timers fire late,
    // so a few sends can bunch up; the count is printed, not asserted (the
    // zero-429 guarantee is tested at a sustainable load above).
    println!(
        "overload drained after {:?}; 429s: {}",
        started.elapsed(),
        cluster.tg.counters().too_many_requests
    );
}

/// The shipped defaults of the budgets (the harness raises them so other
/// tests run fast).
const DEFAULT_BUDGETS: &[(&str, &str)] = &[
    ("TG_GLOBAL_RATE", "30"),
    ("TG_CHAT_RATE", "1"),
    ("TG_CHAT_BURST", "3"),
    ("INBOUND_RATE", "1"),
    ("INBOUND_BURST", "10"),
];

/// Every successful send into `chat` (any method the bot sends with), by the
/// fake's clock in ms.
fn delivered_into(cluster: &Cluster, chat: i64) -> Vec<u64> {
    cluster
        .tg
        .calls()
        .iter()
        .filter(|c| c.status == 200 && SENDS.contains(&c.method.as_str()))
        .filter(|c| c.params["chat_id"] == chat)
        .map(|c| c.at_ms)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_default_budgets_a_429_holds_every_send_into_its_chat_until_retry_after() {
    // Our per-chat budget at its default (1/s, burst 3): the burst must not
    // let a send start before the frozen chat's retry_after has passed.
    // The fake's own per-chat limit sits a little above ours, so the only
    // 429 is the forced one.
    let fake = FakeConfig {
        flood: Some(FloodConfig {
            per_chat_rate: 1.0,
            per_chat_burst: 5,
            global_rate: 1000.0,
            global_burst: 100,
        }),
        ..FakeConfig::default()
    };
    let env = [
        ("TG_GLOBAL_RATE", "900"),
        ("TG_CHAT_RATE", "1"),
        ("TG_CHAT_BURST", "3"),
        ("RUST_LOG", "warn,anonchat=debug"),
    ];
    let cluster = Cluster::build(RedisServer::start().await, fake, 3, &env).await;
    let (alice, bob, carol, dave) = (
        cluster.user("Alice"),
        cluster.user("Bob"),
        cluster.user("Carol"),
        cluster.user("Dave"),
    );
    pair_all(&cluster, &[alice.clone(), bob.clone()]).await;
    pair_all(&cluster, &[carol.clone(), dave.clone()]).await;
    // Let the budgets refill after the "found" notices.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let retry_after = 5u64;
    cluster.tg.force_429(bob.id(), retry_after);
    let first = alice.send_text("one");
    let first_429 = cluster
        .tg
        .wait_until(WAIT, || {
            cluster
                .tg
                .too_many_requests()
                .iter()
                .filter(|r| r.chat_id == bob.id())
                .map(|r| r.at_ms)
                .min()
        })
        .await
        .expect("the forced 429 happened");
    // A send that had its slot before the freeze was recorded may still race
    // it (as with Telegram); everything booked after it must wait it out.
    let conn = cluster.redis.conn().await;
    let budget_key = cluster.keys().chat_budget(bob.id());
    let recorded = eventually(WAIT, || {
        let mut conn = conn.clone();
        let key = budget_key.clone();
        async move {
            // The freeze pushed Bob's budget seconds into the future.
            let (tat, (secs, micros)): (Option<f64>, (u64, u64)) = redis::pipe()
                .cmd("GET")
                .arg(&key)
                .cmd("TIME")
                .query_async(&mut conn)
                .await
                .ok()?;
            let now_ms = (secs * 1000 + micros / 1000) as f64;
            tat.filter(|t| *t > now_ms + 2500.0)
        }
    })
    .await;
    assert!(recorded.is_some(), "the 429 froze Bob's chat in Redis");
    // Sends into Bob's chat from other handlers during the freeze: his own
    // command's answer, and more of Alice's messages.
    bob.command("/rules");
    let second = alice.send_text("two");
    // Another chat is not held up by Bob's freeze, message after message
    // (asserted below, after the frozen chat's own check).
    let mut other_waits = Vec::new();
    for i in 0..3 {
        let m = carol.send_text(&format!("meanwhile {i}"));
        let sent_at = Instant::now();
        dave.wait_for("carol's message", |r| {
            r.source == Some((carol.id(), m.message_id))
        })
        .await;
        other_waits.push(sent_at.elapsed());
    }
    bob.wait_text(&text("rules", Lang::En)).await;
    for m in [first, second] {
        bob.wait_for("Alice's message", |r| {
            r.source == Some((alice.id(), m.message_id))
        })
        .await;
    }
    let into_bob = delivered_into(&cluster, bob.id());
    let early: Vec<u64> = into_bob
        .iter()
        .filter(|&&at| at > first_429 && at < first_429 + retry_after * 1000)
        .map(|at| at - first_429)
        .collect();
    println!(
        "sends into Bob after the 429 at +ms: {:?}",
        into_bob
            .iter()
            .filter(|&&at| at > first_429)
            .map(|at| at - first_429)
            .collect::<Vec<_>>()
    );
    assert!(
        early.is_empty(),
        "sent into Bob before retry_after passed, at +ms {early:?}"
    );
    assert_eq!(
        cluster.tg.counters().violations,
        0,
        "a replica sent into a frozen chat: {:?}",
        cluster.tg.too_many_requests()
    );
    println!("another chat's messages during the freeze took {other_waits:?}");
    assert!(
        other_waits.iter().all(|w| *w < Duration::from_millis(1500)),
        "another chat waited during Bob's freeze: {other_waits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_reactions_that_send_nothing_reserve_no_send_slot() {
    let cluster = Cluster::start_with(1, DEFAULT_BUDGETS).await;
    let (alice, bob, carol) = (
        cluster.user("Alice"),
        cluster.user("Bob"),
        cluster.user("Carol"),
    );
    // Messages sent outside any chat: never relayed, so nothing maps to them.
    let not_in_chat = text("not_in_chat", Lang::En);
    let alices = alice.send_text("before the chat");
    alice.wait_text(&not_in_chat).await;
    let carols = carol.send_text("never in a chat");
    carol.wait_text(&not_in_chat).await;
    pair_all(&cluster, &[alice.clone(), bob.clone()]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 20 edits and 20 reactions on Alice's unmapped message: nothing to
    // send, so nothing may be booked in Bob's budget.
    for i in 0..20 {
        cluster
            .tg
            .edit_text(&alice.info, alices.message_id, &format!("edit {i}"))
            .expect("edit");
        cluster
            .tg
            .react(
                &alice.info,
                alices.message_id,
                if i % 2 == 0 { "👍" } else { "" },
            )
            .expect("react");
    }
    let hello = alice.send_text("hello");
    let started = Instant::now();
    let got = cluster
        .tg
        .wait_for(
            bob.id(),
            |r| r.source == Some((alice.id(), hello.message_id)),
            Duration::from_secs(8),
        )
        .await;
    assert!(
        got.is_some(),
        "the message after 40 unmapped edits and reactions did not arrive within 8 s"
    );
    println!(
        "message after 40 no-op follow-ups arrived in {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A user in no chat edits 20 times (no hint for edits): their own
    // chat's budget stays free for the answer to their next command.
    for i in 0..20 {
        cluster
            .tg
            .edit_text(&carol.info, carols.message_id, &format!("edit {i}"))
            .expect("edit");
    }
    carol.command("/rules");
    let started = Instant::now();
    let rules = text("rules", Lang::En);
    let got = cluster
        .tg
        .wait_for(
            carol.id(),
            |r| r.text() == Some(rules.as_str()),
            Duration::from_secs(8),
        )
        .await;
    assert!(
        got.is_some(),
        "/rules after 20 edits outside a chat: no answer within 8 s"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_would_wait_past_max_send_wait_is_dropped_with_one_notice() {
    // One send per 10 s into a chat (burst 3, of which the pairing's
    // notices take one or two), and no relay may wait more than 3 s.
    let cluster = Cluster::start_with(
        1,
        &[
            ("TG_CHAT_RATE", "0.1"),
            ("TG_CHAT_BURST", "3"),
            ("MAX_SEND_WAIT", "3s"),
        ],
    )
    .await;
    let (alice, bob) = (cluster.user("Alice"), cluster.user("Bob"));
    pair_all(&cluster, &[alice.clone(), bob.clone()]).await;
    let sent: Vec<_> = (0..8)
        .map(|i| alice.send_text(&format!("burst {i}")))
        .collect();
    let overloaded = text("not_delivered_overloaded", Lang::En);
    alice.wait_text(&overloaded).await;
    // Long enough for every slot the burst could have booked within 3 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let relayed: Vec<i32> = bob
        .received()
        .iter()
        .filter_map(|r| r.source.filter(|(c, _)| *c == alice.id()).map(|(_, m)| m))
        .collect();
    println!("8 messages into a chat with a 10 s budget: relayed {relayed:?}");
    assert!(relayed.len() <= 2, "relayed {relayed:?}");
    assert!(!relayed.is_empty(), "the first fits the budget");
    assert!(
        !relayed.contains(&sent[7].message_id),
        "the tail is dropped, not relayed late"
    );
    assert_eq!(alice.count_text(&overloaded), 1, "told once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tapping_next_in_a_loop_matches_at_most_the_next_budget() {
    // Default budget: 10 Search/Next a minute. 20 strangers wait, so a loop
    // without a budget could walk through all of them.
    let mut env = DEFAULT_BUDGETS.to_vec();
    env.push(("REJOIN_COOLDOWN_SECS", "600"));
    let cluster = Cluster::start_with(1, &env).await;
    let others: Vec<User> = (0..20).map(|i| cluster.user(&format!("s{i}"))).collect();
    // The strangers must wait for the tapper, not pair among themselves:
    // each two of them count as having just left each other.
    let mut conn = cluster.redis.conn().await;
    for (i, a) in others.iter().enumerate() {
        for b in &others[i + 1..] {
            let _: () = redis::cmd("SET")
                .arg(cluster.keys().left(a.id(), b.id()))
                .arg("1")
                .arg("EX")
                .arg(600)
                .query_async(&mut conn)
                .await
                .expect("redis");
        }
    }
    let searching = text("searching", Lang::En);
    for u in &others {
        u.command("/search");
        u.wait_text(&searching).await;
    }
    let tapper = cluster.user("Tapper");
    tapper.command("/search");
    let started = Instant::now();
    for _ in 0..30 {
        tapper.command("/next");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let notice = text("search_slow_down", Lang::En);
    // The allowed presses' answers go out at the tapper's chat rate (1/s).
    let told = cluster
        .tg
        .wait_for(
            tapper.id(),
            |r| r.text() == Some(notice.as_str()),
            Duration::from_secs(60),
        )
        .await;
    assert!(
        told.is_some(),
        "the tapper was never told to search less often"
    );
    // Stop is never budgeted; once it is answered, every tap was handled.
    tapper.command("/stop");
    let (left, cancelled) = (
        text("you_left", Lang::En),
        text("search_cancelled", Lang::En),
    );
    tapper
        .wait_for("the answer to /stop", |r| {
            r.text().is_some_and(|t| t == left || t == cancelled)
        })
        .await;
    let found = text("found", Lang::En);
    let matched = others.iter().filter(|u| u.count_text(&found) > 0).count();
    let partner_left = text("partner_left", Lang::En);
    let left_by = others
        .iter()
        .filter(|u| u.count_text(&partner_left) > 0)
        .count();
    println!("31 Search/Next taps: {matched} strangers matched, {left_by} left");
    assert!(matched <= 10, "matched {matched} strangers");
    assert!(matched >= 1, "the first search matches");
    assert_eq!(tapper.count_text(&notice), 1, "told once");
}
