//! The scale-out pipeline: elected poller, partitioned streams, per-chat
//! order, failover, rebalancing, Redis restarts, webhook mode.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anonchat::config::Settings;
use anonchat::store::{IngestItem, IngestOutcome, Store};
use rand::Rng;

use crate::harness::{eventually, Cluster, RedisServer, User, WAIT};

/// Sends `rounds` texts from every user, `gap` apart per round; returns the
/// update ids per chat in the order Telegram numbered them.
async fn produce(users: Vec<User>, rounds: usize, gap: Duration) -> HashMap<i64, Vec<i64>> {
    let mut sent: HashMap<i64, Vec<i64>> = HashMap::new();
    for round in 0..rounds {
        for u in &users {
            let s = u.send_text(&format!("m{round}"));
            sent.entry(u.id()).or_default().push(s.update_id);
        }
        tokio::time::sleep(gap).await;
    }
    sent
}

/// Waits until every sent update was handled at least once (across replicas,
/// dead ones included); then checks per-chat order of first handling and
/// returns how many handlings were repeats.
pub(crate) async fn check_all_handled_in_order(
    cluster: &Cluster,
    sent: &HashMap<i64, Vec<i64>>,
    timeout: Duration,
) -> usize {
    let want: HashSet<i64> = sent.values().flatten().copied().collect();
    let done = eventually(timeout, || async {
        let handled: HashSet<i64> = cluster.handled().into_iter().map(|(_, u)| u).collect();
        want.is_subset(&handled).then_some(())
    })
    .await;
    if done.is_none() {
        let handled: HashSet<i64> = cluster.handled().into_iter().map(|(_, u)| u).collect();
        let missing: Vec<_> = want.difference(&handled).take(20).collect();
        panic!(
            "{} of {} updates never handled, e.g. {missing:?}",
            want.difference(&handled).count(),
            want.len()
        );
    }
    // Order: sort every handled event by its time; within a chat the first
    // handling of each update must follow Telegram's numbering.
    let mut events: Vec<(u128, i64, i64)> = cluster
        .replicas
        .iter()
        .flat_map(|r| r.handled_events())
        .map(|h| (h.t, h.chat, h.update_id))
        .collect();
    events.sort();
    let mut seen: HashSet<i64> = HashSet::new();
    let mut order: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut repeats = 0;
    for (_, chat, uid) in events {
        if !want.contains(&uid) {
            continue;
        }
        if seen.insert(uid) {
            order.entry(chat).or_default().push(uid);
        } else {
            repeats += 1;
        }
    }
    for (chat, ids) in sent {
        assert_eq!(
            order.get(chat),
            Some(ids),
            "chat {chat} handled out of order"
        );
    }
    repeats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_lose_nothing_and_keep_each_chats_order() {
    let mut cluster = Cluster::start_with(3, &[("RUST_LOG", "warn,anonchat=debug")]).await;
    let users: Vec<User> = (0..200).map(|i| cluster.user(&format!("u{i}"))).collect();
    // 5,000 updates from 200 chats over about 10 s.
    let producer = tokio::spawn(produce(users, 25, Duration::from_millis(400)));
    let mut kills = 0;
    let mut rng = rand::rng();
    let started = Instant::now();
    while !producer.is_finished() || started.elapsed() < Duration::from_secs(6) {
        let pause = Duration::from_millis(rng.random_range(1200..2500));
        tokio::time::sleep(pause).await;
        let running: Vec<usize> = (0..cluster.replicas.len())
            .filter(|&i| cluster.replicas[i].is_running())
            .collect();
        let victim = running[rng.random_range(0..running.len())];
        cluster.replicas[victim].kill();
        kills += 1;
        cluster.spawn_replica();
    }
    let sent = producer.await.expect("producer");
    assert_eq!(sent.values().map(Vec::len).sum::<usize>(), 5000);
    let repeats = check_all_handled_in_order(&cluster, &sent, Duration::from_secs(90)).await;
    println!(
        "chaos: {kills} SIGKILLs, {repeats} updates handled twice (in flight in a killed replica)"
    );
    // A repeat needs a kill between the end of a handler and its XACK: at
    // most the updates in flight (WORKER_CONCURRENCY) per kill.
    assert!(repeats <= kills * 64, "{repeats} repeats for {kills} kills");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poller_failover_after_sigkill_and_sigterm() {
    let mut cluster = Cluster::start_with(3, &[("POLLER_LEASE_MS", "3000")]).await;
    let alice = cluster.user("Alice");
    alice.command("/start");
    alice.wait_text("Welcome").await;

    // SIGKILL: the lease must expire first (3 s), then a follower takes over.
    let poller = cluster.poller_index().await.expect("a poller");
    cluster.replicas[poller].kill();
    let t0 = Instant::now();
    alice.command("/help");
    alice.wait_text("/help").await;
    let after_kill = t0.elapsed();
    println!("updates flowed again {after_kill:?} after SIGKILL of the poller (lease 3 s)");
    assert!(after_kill < Duration::from_millis(4500), "{after_kill:?}");
    let new_poller = eventually(WAIT, || async {
        cluster.poller_index().await.filter(|&i| i != poller)
    })
    .await
    .expect("a new poller");

    // SIGTERM: the lease is released at once; under a second.
    cluster.replicas[new_poller].terminate();
    let t0 = Instant::now();
    let bob = cluster.user("Bob");
    bob.command("/start");
    bob.wait_text("Welcome").await;
    let after_term = t0.elapsed();
    println!("updates flowed again {after_term:?} after SIGTERM of the poller");
    assert!(after_term < Duration::from_secs(1), "{after_term:?}");
    let status = cluster.replicas[new_poller]
        .wait_exit(WAIT)
        .await
        .expect("exit");
    assert!(status.success());
}

async fn owners(cluster: &Cluster, partitions: u32) -> HashMap<String, u32> {
    let mut conn = cluster.redis.conn().await;
    let mut counts = HashMap::new();
    for p in 0..partitions {
        let key = format!("{}:v1:owner:{p}", cluster.env["KEY_PREFIX"]);
        let owner: Option<String> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap_or(None);
        *counts
            .entry(owner.unwrap_or_else(|| "-".into()))
            .or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_one_to_three_to_one_keeps_order_and_spreads_partitions() {
    let mut cluster = Cluster::start(1).await;
    let users: Vec<User> = (0..100).map(|i| cluster.user(&format!("s{i}"))).collect();
    let producer = tokio::spawn(produce(users, 30, Duration::from_millis(300)));

    cluster.add_replica().await;
    cluster.add_replica().await;
    let even = eventually(WAIT, || async {
        let o = owners(&cluster, 16).await;
        let ok = !o.contains_key("-")
            && o.len() == 3
            && o.values().max().unwrap_or(&0) - o.values().min().unwrap_or(&0) <= 1;
        ok.then_some(o)
    })
    .await;
    assert!(
        even.is_some(),
        "partitions never spread evenly: {:?}",
        owners(&cluster, 16).await
    );
    println!("3 replicas own {:?}", even);

    for i in [1, 2] {
        cluster.replicas[i].terminate();
    }
    for i in [1, 2] {
        let status = cluster.replicas[i].wait_exit(WAIT).await.expect("exit");
        assert!(status.success());
    }
    let all = eventually(WAIT, || async {
        let o = owners(&cluster, 16).await;
        (o.get("r1") == Some(&16)).then_some(())
    })
    .await;
    assert!(all.is_some(), "{:?}", owners(&cluster, 16).await);

    let sent = producer.await.expect("producer");
    let repeats = check_all_handled_in_order(&cluster, &sent, Duration::from_secs(60)).await;
    assert_eq!(repeats, 0, "graceful scaling must not repeat updates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_with_aof_is_ridden_out() {
    let redis = RedisServer::start_with(true).await;
    let mut cluster = Cluster::build(
        redis,
        Default::default(),
        2,
        &[("RUST_LOG", "warn,anonchat=debug")],
    )
    .await;
    let users: Vec<User> = (0..50).map(|i| cluster.user(&format!("a{i}"))).collect();
    let producer = tokio::spawn(produce(users, 20, Duration::from_millis(250)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.redis.restart().await;
    let sent = producer.await.expect("producer");
    check_all_handled_in_order(&cluster, &sent, Duration::from_secs(60)).await;
    for r in cluster.replicas.iter_mut() {
        assert!(r.is_running(), "{} crashed", r.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode_keeps_order_and_rejects_a_wrong_secret() {
    let secret = "s3cret-token";
    let mut cluster =
        Cluster::start_with(3, &[("INGEST", "webhook"), ("WEBHOOK_SECRET", secret)]).await;
    let urls: Vec<String> = cluster
        .replicas
        .iter()
        .map(|r| format!("http://{}/telegram/webhook", r.http_addr.expect("addr")))
        .collect();

    // Registering is an explicit operator step.
    let mut env = cluster.env.clone();
    env.insert("WEBHOOK_URL".into(), urls[0].clone());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anonchat"))
        .arg("set-webhook")
        .env_clear()
        .envs(&env)
        .output()
        .expect("run set-webhook");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cluster.tg.webhook_info()["url"], urls[0].as_str());
    // A load balancer in front of the replicas: each update to a random one.
    cluster.tg.set_webhook_targets(urls.clone());

    // Wrong secret: 401, nothing written.
    let client = reqwest::Client::new();
    let before = stream_total(&cluster).await;
    let r = client
        .post(&urls[1])
        .header("X-Telegram-Bot-Api-Secret-Token", "wrong")
        .json(&serde_json::json!({"update_id": 999_999_999, "message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "x"}}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(stream_total(&cluster).await, before);

    let users: Vec<User> = (0..50).map(|i| cluster.user(&format!("w{i}"))).collect();
    let sent = produce(users, 10, Duration::from_millis(50)).await;
    check_all_handled_in_order(&cluster, &sent, Duration::from_secs(60)).await;
    assert!(!cluster.handled().iter().any(|(_, u)| *u == 999_999_999));
    // Stopping a replica does not delete the webhook for the others.
    cluster.replicas[0].terminate();
    cluster.replicas[0].wait_exit(WAIT).await.expect("exit");
    assert_eq!(cluster.tg.webhook_info()["url"], urls[0].as_str());
}

/// Sum of entries ever added to the partition streams (XINFO entries-added).
async fn stream_total(cluster: &Cluster) -> u64 {
    let mut conn = cluster.redis.conn().await;
    let mut total = 0;
    for p in 0..16 {
        let key = format!("{}:v1:in:{p}", cluster.env["KEY_PREFIX"]);
        let info: redis::Value = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap_or(redis::Value::Nil);
        let map: HashMap<String, redis::Value> = redis::from_redis_value(info).unwrap_or_default();
        if let Some(v) = map.get("entries-added") {
            total += redis::from_redis_value_ref::<u64>(v).unwrap_or(0);
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_update_is_logged_and_skipped() {
    let cluster = Cluster::start(1).await;
    let alice = cluster.user("Alice");
    let bad = cluster.tg.push_raw_update(serde_json::json!({
        "message": {"chat": {"id": alice.id(), "type": "private"}, "garbage": true}
    }));
    alice.command("/start");
    alice.wait_text("Welcome").await;
    let line = cluster.replicas[0]
        .wait_log(WAIT, |l| {
            l.contains("malformed") && l.contains(&bad.to_string())
        })
        .await;
    assert!(line.is_some(), "malformed update {bad} not logged");
}

fn settings_for(redis: &RedisServer, prefix: &str, partitions: u32) -> Settings {
    let env: HashMap<String, String> = [
        ("BOT_TOKEN", "1:x".to_string()),
        ("REDIS_URL", redis.url()),
        ("KEY_PREFIX", prefix.to_string()),
        ("PARTITIONS", partitions.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Settings::load_from(None, &env).expect("settings")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_pollers_batch_is_rejected() {
    let redis = RedisServer::start().await;
    let store = Store::connect(&settings_for(&redis, "fence", 4))
        .await
        .expect("store");
    let lease = Duration::from_secs(30);
    let a = store
        .acquire_poller_lease("a", lease)
        .await
        .unwrap()
        .expect("a holds");
    assert_eq!(store.acquire_poller_lease("b", lease).await.unwrap(), None);
    // a's lease is lost (expired); b takes it with a new epoch.
    let mut conn = redis.conn().await;
    redis::cmd("DEL")
        .arg(store.keys().poller_lease())
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let b = store
        .acquire_poller_lease("b", lease)
        .await
        .unwrap()
        .expect("b holds");
    assert_ne!(a, b);
    let item = IngestItem {
        update_id: 10,
        partition: 0,
        chat: 1,
        raw: "{}".into(),
    };
    let out = store
        .ingest(Some(&a), Some(11), std::slice::from_ref(&item))
        .await
        .unwrap();
    assert_eq!(out, IngestOutcome::Fenced);
    assert_eq!(store.poller_offset().await.unwrap(), 0, "offset untouched");
    let out = store
        .ingest(Some(&b), Some(11), std::slice::from_ref(&item))
        .await
        .unwrap();
    assert_eq!(
        out,
        IngestOutcome::Written {
            added: 1,
            duplicates: 0
        }
    );
    let out = store
        .ingest(Some(&b), Some(11), std::slice::from_ref(&item))
        .await
        .unwrap();
    assert_eq!(
        out,
        IngestOutcome::Written {
            added: 0,
            duplicates: 1
        },
        "deduped"
    );
    assert_eq!(store.poller_offset().await.unwrap(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_partitions_on_a_live_deployment_is_refused_until_drained() {
    let redis = RedisServer::start().await;
    let store = Store::connect(&settings_for(&redis, "parts", 4))
        .await
        .expect("store");
    store.check_partitions(4).await.expect("first start");
    let item = IngestItem {
        update_id: 1,
        partition: 2,
        chat: 1,
        raw: "{}".into(),
    };
    store.ingest(None, None, &[item]).await.unwrap();
    let err = store.check_partitions(8).await.expect_err("must refuse");
    assert!(err.to_string().contains("PARTITIONS=8"), "{err}");
    let mut conn = redis.conn().await;
    redis::cmd("DEL")
        .arg(store.keys().stream(2))
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    store.check_partitions(8).await.expect("drained: allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handled_entries_are_trimmed_from_the_streams() {
    let cluster = Cluster::start(1).await;
    let users: Vec<User> = (0..40).map(|i| cluster.user(&format!("t{i}"))).collect();
    let sent = produce(users, 5, Duration::from_millis(10)).await;
    check_all_handled_in_order(&cluster, &sent, Duration::from_secs(30)).await;
    // Each partition keeps at most its last handled entry.
    let trimmed = eventually(WAIT, || async {
        let mut conn = cluster.redis.conn().await;
        let mut total = 0u64;
        for p in 0..16 {
            let key = format!("{}:v1:in:{p}", cluster.env["KEY_PREFIX"]);
            total += redis::cmd("XLEN")
                .arg(key)
                .query_async::<u64>(&mut conn)
                .await
                .unwrap_or(u64::MAX / 32);
        }
        (total <= 16).then_some(total)
    })
    .await;
    assert!(trimmed.is_some(), "streams still hold handled entries");
}
