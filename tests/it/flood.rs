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
    // Budget 20/s; 200 messages/s offered for 20 s (4,000 messages).
    let mut cluster = limited_cluster(3, 25.0, &[("TG_GLOBAL_RATE", "20")]).await;
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
