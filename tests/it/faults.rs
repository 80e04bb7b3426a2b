//! Delivery under faults (issue 11): Redis connections killed or paused,
//! Redis restarted empty, Telegram answering 5xx or hanging, a replica frozen
//! past its partition lease, a timer due while Telegram fails, and replicas
//! whose wall clocks are hours off (libfaketime; skipped, saying so, when it
//! is not installed).
//!
//! Each test drives pairs of users exchanging numbered texts ("m0", "m1", ...)
//! through real replicas and the fake Telegram, injects one fault, and then
//! checks what the users saw: every message reached the right partner (none
//! lost), in the order it was sent, never in a wrong chat; duplicates are
//! counted, printed, and allowed only where a test says so.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anonchat_testkit::fake::{CallRecord, Received, Sent};

use crate::chat::{expect_after, int, pair, says_timed, summary, Db, EN};
use crate::harness::{eventually, poll_until, Cluster, Replica, User, WAIT};
use crate::pipeline::check_all_handled_in_order;

/// How long the delivery of everything sent may take after the traffic ends.
const DELIVERY: Duration = Duration::from_secs(20);

/// `n` pairs of users, each pair chatting with each other.
async fn make_pairs(cluster: &Cluster, n: usize) -> Vec<(User, User)> {
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let a = cluster.user(&format!("A{i}"));
        let b = cluster.user(&format!("B{i}"));
        pair(&a, &b).await;
        pairs.push((a, b));
    }
    pairs
}

/// Every user of every pair sends "m0".."m{rounds-1}", one per round, `gap`
/// apart (pacing of the traffic); returns what each user sent, in order.
async fn exchange(
    pairs: Vec<(User, User)>,
    rounds: usize,
    gap: Duration,
) -> HashMap<i64, Vec<Sent>> {
    let mut sent: HashMap<i64, Vec<Sent>> = HashMap::new();
    for round in 0..rounds {
        for (a, b) in &pairs {
            for u in [a, b] {
                let s = u.send_text(&format!("m{round}"));
                sent.entry(u.id()).or_default().push(s);
            }
        }
        if round + 1 < rounds {
            tokio::time::sleep(gap).await;
        }
    }
    sent
}

/// Update ids per chat, for [`check_all_handled_in_order`].
fn update_ids(sent: &HashMap<i64, Vec<Sent>>) -> HashMap<i64, Vec<i64>> {
    sent.iter()
        .map(|(chat, s)| (*chat, s.iter().map(|s| s.update_id).collect()))
        .collect()
}

/// What the users saw of the traffic.
#[derive(Debug, Default)]
struct Delivery {
    total: usize,
    delivered: usize,
    /// "from->to mN" of messages the partner never received.
    lost: Vec<String>,
    /// Directions whose first copies are not in the order sent.
    reordered: Vec<String>,
    /// Copies in a chat that is not the sender's partner's.
    wrong_chat: Vec<String>,
    /// Copies whose text is not the text sent.
    wrong_text: Vec<String>,
    /// Copies beyond the first of a message.
    duplicates: usize,
    duplicate_examples: Vec<String>,
}

impl Delivery {
    fn summary(&self) -> String {
        format!(
            "{} of {} messages lost (e.g. {:?}), {} directions reordered (e.g. {:?}), {} copies in a wrong chat (e.g. {:?}), {} with a wrong text (e.g. {:?}), {} duplicates (e.g. {:?})",
            self.lost.len(),
            self.total,
            first(&self.lost),
            self.reordered.len(),
            first(&self.reordered),
            self.wrong_chat.len(),
            first(&self.wrong_chat),
            self.wrong_text.len(),
            first(&self.wrong_text),
            self.duplicates,
            first(&self.duplicate_examples),
        )
    }

    /// Panics unless nothing was lost, reordered, misdirected or mangled, and
    /// (unless `duplicates_allowed`) nothing was delivered twice.
    fn assert_ok(&self, what: &str, duplicates_allowed: bool) {
        println!("{what}: {}", self.summary());
        let ok = self.lost.is_empty()
            && self.reordered.is_empty()
            && self.wrong_chat.is_empty()
            && self.wrong_text.is_empty()
            && (duplicates_allowed || self.duplicates == 0);
        assert!(ok, "{what}: {}", self.summary());
    }
}

fn first(v: &[String]) -> &[String] {
    &v[..v.len().min(3)]
}

/// Compares what every user received from their partner with what the
/// partner sent.
fn delivery(pairs: &[(User, User)], sent: &HashMap<i64, Vec<Sent>>) -> Delivery {
    let mut d = Delivery::default();
    for (a, b) in pairs {
        for (from, to) in [(a, b), (b, a)] {
            let want: &[Sent] = sent.get(&from.id()).map(Vec::as_slice).unwrap_or(&[]);
            let index: HashMap<i32, usize> = want
                .iter()
                .enumerate()
                .map(|(i, s)| (s.message_id, i))
                .collect();
            let got: Vec<Received> = to.received();
            let mut seen: HashSet<i32> = HashSet::new();
            let mut order: Vec<usize> = Vec::new();
            for r in &got {
                let Some((src_chat, src_id)) = r.source else {
                    continue;
                };
                let label = format!("{}->{}", from.info.first_name, to.info.first_name);
                if src_chat != from.id() {
                    d.wrong_chat.push(format!(
                        "{label}: a copy of chat {src_chat}'s message {src_id}"
                    ));
                    continue;
                }
                let Some(&i) = index.get(&src_id) else {
                    continue;
                };
                if r.text() != Some(format!("m{i}").as_str()) {
                    d.wrong_text
                        .push(format!("{label} m{i}: copy says {:?}", r.text()));
                }
                if seen.insert(src_id) {
                    order.push(i);
                } else {
                    d.duplicates += 1;
                    d.duplicate_examples.push(format!("{label} m{i}"));
                }
            }
            d.total += want.len();
            d.delivered += order.len();
            for (i, s) in want.iter().enumerate() {
                if !seen.contains(&s.message_id) {
                    d.lost.push(format!(
                        "{}->{} m{i}",
                        from.info.first_name, to.info.first_name
                    ));
                }
            }
            if order.windows(2).any(|w| w[0] > w[1]) {
                let shown: Vec<String> = order.iter().map(|i| format!("m{i}")).collect();
                d.reordered.push(format!(
                    "{}->{}: {}",
                    from.info.first_name,
                    to.info.first_name,
                    shown.join(",")
                ));
            }
        }
    }
    d
}

/// Waits until every sent message was delivered (or `timeout`); returns what
/// users saw (a duplicate is the repeat of an earlier message of the same
/// chat, so it comes before the chat's last first copy).
async fn wait_delivered(
    pairs: &[(User, User)],
    sent: &HashMap<i64, Vec<Sent>>,
    timeout: Duration,
) -> Delivery {
    poll_until(timeout, Duration::from_millis(100), || async {
        delivery(pairs, sent).lost.is_empty().then_some(())
    })
    .await;
    delivery(pairs, sent)
}

/// Copies delivered so far from the pairs' users (any message).
fn copies_so_far(pairs: &[(User, User)]) -> usize {
    pairs
        .iter()
        .flat_map(|(a, b)| [a, b])
        .map(|u| u.received().iter().filter(|r| r.source.is_some()).count())
        .sum()
}

/// Waits until the traffic is flowing: at least `n` copies delivered.
async fn wait_flowing(pairs: &[(User, User)], n: usize) {
    let flowing = poll_until(WAIT, Duration::from_millis(20), || async {
        (copies_so_far(pairs) >= n).then_some(())
    })
    .await;
    assert!(
        flowing.is_some(),
        "traffic never flowed: {} copies delivered",
        copies_so_far(pairs)
    );
}

fn assert_all_running(cluster: &mut Cluster) {
    for r in cluster.replicas.iter_mut() {
        assert!(r.is_running(), "{} exited", r.name);
    }
}

// ---------------------------------------------------------------- Redis faults

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_connections_killed_three_times_lose_nothing_and_keep_order() {
    let mut cluster = Cluster::start_with(3, &[("RUST_LOG", "warn,anonchat=debug")]).await;
    let pairs = make_pairs(&cluster, 20).await;
    let producer = tokio::spawn(exchange(pairs.clone(), 10, Duration::from_millis(300)));
    wait_flowing(&pairs, 40).await;
    let mut killed = Vec::new();
    for i in 0..3 {
        killed.push(cluster.redis.kill_normal_clients().await);
        if i < 2 {
            // The fault's pacing: three kills about 300 ms apart.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let sent = producer.await.expect("producer");
    println!("CLIENT KILL TYPE normal closed {killed:?} connections");
    assert!(killed.iter().all(|n| *n > 0), "nothing to kill: {killed:?}");
    let d = wait_delivered(&pairs, &sent, DELIVERY).await;
    d.assert_ok("3x CLIENT KILL", false);
    let repeats = check_all_handled_in_order(&cluster, &update_ids(&sent), WAIT).await;
    println!("3x CLIENT KILL: {repeats} updates handled more than once");
    assert_all_running(&mut cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_for_two_seconds_loses_nothing_and_keeps_order() {
    let mut cluster = Cluster::start_with(3, &[("RUST_LOG", "warn,anonchat=debug")]).await;
    let pairs = make_pairs(&cluster, 20).await;
    let producer = tokio::spawn(exchange(pairs.clone(), 10, Duration::from_millis(400)));
    wait_flowing(&pairs, 40).await;
    cluster.redis.pause_clients(Duration::from_secs(2)).await;
    let sent = producer.await.expect("producer");
    let d = wait_delivered(&pairs, &sent, DELIVERY).await;
    d.assert_ok("CLIENT PAUSE 2000 ALL", false);
    let repeats = check_all_handled_in_order(&cluster, &update_ids(&sent), WAIT).await;
    println!("CLIENT PAUSE: {repeats} updates handled more than once");
    assert_all_running(&mut cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_is_recovered_and_a_new_pair_chats() {
    let mut cluster = Cluster::start_with(2, &[("RUST_LOG", "warn,anonchat=debug")]).await;
    let before = make_pairs(&cluster, 2).await;
    let sent = exchange(before.clone(), 3, Duration::from_millis(100)).await;
    wait_delivered(&before, &sent, DELIVERY)
        .await
        .assert_ok("before the restart", false);

    cluster.redis.restart_empty().await;

    // Every partition gets an owner again and every replica is ready.
    let prefix = cluster.env["KEY_PREFIX"].clone();
    let owned = eventually(WAIT, || async {
        let mut conn = cluster.redis.conn().await;
        let mut pipe = redis::pipe();
        for p in 0..16 {
            pipe.cmd("GET").arg(format!("{prefix}:v1:owner:{p}"));
        }
        let owners: Vec<Option<String>> = pipe.query_async(&mut conn).await.ok()?;
        owners.iter().all(Option::is_some).then_some(())
    })
    .await;
    assert!(
        owned.is_some(),
        "partitions not owned again after the restart"
    );
    for r in &cluster.replicas {
        let ready = eventually(WAIT, || async {
            (r.http_get("/readyz").await.0 == 200).then_some(())
        })
        .await;
        assert!(ready.is_some(), "{} never ready again", r.name);
    }

    // Old chats are gone with the data; a pair formed now chats normally.
    let after = make_pairs(&cluster, 1).await;
    let sent = exchange(after.clone(), 5, Duration::from_millis(100)).await;
    wait_delivered(&after, &sent, DELIVERY)
        .await
        .assert_ok("a pair formed after Redis restarted empty", false);
    assert_all_running(&mut cluster);
}

// ---------------------------------------------------------------- Telegram faults

/// 20 pairs chat on 3 replicas (with `env`) while Telegram answers 500 for
/// 3 s: a 5xx means "not delivered", so everything must arrive, exactly once.
async fn a_500_window_loses_nothing(env: &[(&str, &str)], what: &str) {
    let mut settings = vec![("RUST_LOG", "warn,anonchat=debug")];
    settings.extend_from_slice(env);
    let mut cluster = Cluster::start_with(3, &settings).await;
    let pairs = make_pairs(&cluster, 20).await;
    let producer = tokio::spawn(exchange(pairs.clone(), 10, Duration::from_millis(500)));
    wait_flowing(&pairs, 40).await;
    cluster
        .tg
        .fail_for(Duration::from_secs(3), 500, "Internal Server Error");
    let sent = producer.await.expect("producer");
    let injected = cluster.tg.counters().injected_failures;
    assert!(injected > 0, "the 500 window hit no call");
    println!("Telegram answered 500 to {injected} calls");
    let d = wait_delivered(&pairs, &sent, DELIVERY).await;
    d.assert_ok(what, false);
    assert_all_running(&mut cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_500_for_three_seconds_delivers_everything_once_in_order() {
    a_500_window_loses_nothing(&[], "Telegram 500 for 3 s").await;
}

/// The same 500 window with HANDLER_MAX_ATTEMPTS=1, so only the sender's own
/// retries count. (With the default 3 attempts, the worker's handler retries
/// hide a 3 s window: teloxide sleeps 10 s before returning a 5xx, so the
/// second attempt already falls after the window.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_500_is_retried_by_the_sender_itself() {
    a_500_window_loses_nothing(
        &[("HANDLER_MAX_ATTEMPTS", "1")],
        "Telegram 500 for 3 s, one handler attempt",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_hanging_for_three_seconds_loses_nothing_and_keeps_order() {
    let mut cluster = Cluster::start_with(
        3,
        &[
            ("RUST_LOG", "warn,anonchat=debug"),
            ("TELEGRAM_TIMEOUT_SECS", "2"),
        ],
    )
    .await;
    let pairs = make_pairs(&cluster, 20).await;
    let producer = tokio::spawn(exchange(pairs.clone(), 10, Duration::from_millis(500)));
    wait_flowing(&pairs, 40).await;
    cluster.tg.hang_for(Duration::from_secs(3));
    let sent = producer.await.expect("producer");
    let hung = cluster.tg.counters().injected_hangs;
    assert!(hung > 0, "the hang window hit no call");
    println!("{hung} Bot API calls hung");
    // A hung call never delivers, so a duplicate would be the bot's own.
    let d = wait_delivered(&pairs, &sent, DELIVERY).await;
    d.assert_ok("Telegram hanging for 3 s", false);
    assert_all_running(&mut cluster);
}

// ---------------------------------------------------------------- a frozen replica

/// (chat_id, from_chat_id, message_id) of a successful copyMessage.
fn copy_key(c: &CallRecord) -> Option<(i64, i64, i64)> {
    let int = |k: &str| {
        let v = &c.params[k];
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    (c.method == "copyMessage" && c.status == 200)
        .then(|| Some((int("chat_id")?, int("from_chat_id")?, int("message_id")?)))
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_frozen_past_its_lease_hands_over_and_sends_nothing_stale() {
    let mut cluster = Cluster::start_with_replica_tokens(
        3,
        &[
            ("RUST_LOG", "warn,anonchat=debug"),
            ("PARTITION_LEASE_MS", "2000"),
        ],
    )
    .await;
    let pairs = make_pairs(&cluster, 20).await;
    // About 8 s of traffic: before, during and after the freeze.
    let producer = tokio::spawn(exchange(pairs.clone(), 24, Duration::from_millis(350)));
    // The victim: not the poller (so ingest is not part of this test), and
    // already relaying traffic (so it owns partitions with chats in them).
    let poller = cluster.poller_index().await;
    let victim = (0..3)
        .find(|&i| Some(i) != poller)
        .expect("a replica that is not the poller");
    let token = cluster.tokens[victim].clone();
    let relaying = cluster
        .tg
        .wait_until(WAIT, || {
            let n = cluster
                .tg
                .calls_by_token(&token)
                .iter()
                .filter(|c| copy_key(c).is_some())
                .count();
            (n >= 5).then_some(())
        })
        .await;
    assert!(
        relaying.is_some(),
        "{} never relayed",
        cluster.replicas[victim].name
    );

    let frozen_at = Instant::now();
    cluster.replicas[victim].freeze();
    // Hold the fault: 5 s, more than twice PARTITION_LEASE_MS.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let resumed_at = Instant::now();
    cluster.replicas[victim].resume();
    let sent = producer.await.expect("producer");
    let d = wait_delivered(&pairs, &sent, DELIVERY).await;

    let calls = cluster.tg.calls();
    // Chats the victim relayed into before the freeze...
    let victim_chats: HashSet<i64> = calls
        .iter()
        .filter(|c| c.token == token && c.at < frozen_at)
        .filter_map(copy_key)
        .map(|(chat, _, _)| chat)
        .collect();
    // ...got their messages from another replica while it was frozen.
    let moved = calls.iter().any(|c| {
        c.token != token
            && c.at > frozen_at
            && c.at < resumed_at
            && copy_key(c).is_some_and(|(chat, _, _)| victim_chats.contains(&chat))
    });
    // Every message copied more than once, by who copied it when.
    let mut by_key: HashMap<(i64, i64, i64), Vec<&CallRecord>> = HashMap::new();
    for c in &calls {
        if let Some(k) = copy_key(c) {
            by_key.entry(k).or_default().push(c);
        }
    }
    let (mut stale, mut in_flight, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for ((chat, from, id), cs) in by_key.iter().filter(|(_, cs)| cs.len() > 1) {
        let label = format!("{from}/{id} -> {chat}");
        if cs.iter().any(|c| c.token == token && c.at >= resumed_at) {
            // The resumed replica copied what another replica had delivered
            // (or delivers) for the partition it lost.
            stale.push(label);
        } else if cs[0].token == token
            && cs[0].at < resumed_at
            && cs[1..].iter().all(|c| c.token != token)
        {
            // Sent before the stop (a frozen process sends nothing, so a
            // request arriving during the freeze was on the wire already),
            // not yet acknowledged: the new owner replays it. At least once,
            // as for a crash; allowed.
            in_flight.push(label);
        } else {
            let who: Vec<String> = cs
                .iter()
                .map(|c| {
                    let when = if c.at < frozen_at {
                        "before the freeze".to_string()
                    } else if c.at < resumed_at {
                        format!("{:?} into the freeze", c.at - frozen_at)
                    } else {
                        format!("{:?} after SIGCONT", c.at - resumed_at)
                    };
                    let r = cluster
                        .replica_of_token(&c.token)
                        .map_or("?", |i| cluster.replicas[i].name.as_str());
                    format!("{r} {when}")
                })
                .collect();
            other.push(format!("{label} by {}", who.join(", ")));
        }
    }
    let after_resume = calls
        .iter()
        .filter(|c| c.token == token && c.at >= resumed_at)
        .filter(|c| c.method == "copyMessage" || c.method == "sendMessage")
        .count();
    println!(
        "frozen {}: relayed into {} chats before, moved: {moved}, {after_resume} send/copy calls after SIGCONT; \
         duplicates: {} stale after SIGCONT (e.g. {:?}), {} in flight at the freeze (e.g. {:?}), {} other (e.g. {:?})",
        cluster.replicas[victim].name,
        victim_chats.len(),
        stale.len(),
        first(&stale),
        in_flight.len(),
        first(&in_flight),
        other.len(),
        first(&other),
    );
    assert!(
        moved,
        "no other replica relayed into the frozen replica's chats during the freeze"
    );
    d.assert_ok("a replica frozen for 5 s", true);
    assert!(
        stale.is_empty(),
        "after SIGCONT {} copied {} messages another replica also delivered, e.g. {:?}",
        cluster.replicas[victim].name,
        stale.len(),
        first(&stale)
    );
    assert!(
        other.is_empty(),
        "{} messages copied twice, not by the frozen replica's in-flight work: {:?}",
        other.len(),
        first(&other)
    );
    assert_all_running(&mut cluster);
}

// ---------------------------------------------------------------- timers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_timeout_due_while_telegram_fails_still_tells_both() {
    let cluster = Cluster::start_with(
        3,
        &[
            ("RUST_LOG", "warn,anonchat=debug"),
            ("CHAT_IDLE_TIMEOUT", "2"),
            ("SEARCH_TIMEOUT", "1h"),
        ],
    )
    .await;
    let pairs = make_pairs(&cluster, 1).await;
    let (alice, bob) = pairs[0].clone();
    let sent = exchange(pairs.clone(), 2, Duration::from_millis(100)).await;
    wait_delivered(&pairs, &sent, DELIVERY)
        .await
        .assert_ok("before going quiet", false);
    // The chat's last activity was at most now; the timeout is due within
    // 2 s plus a timer sweep. Hold Telegram failing from 1 s to 3 s from now.
    let quiet = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster
        .tg
        .fail_for(Duration::from_secs(2), 500, "Internal Server Error");
    let idle = |r: &Received| says_timed(r, "idle_timeout", EN);
    let told = |u: &User| u.received().iter().any(idle);
    let both = cluster
        .tg
        .wait_until(WAIT, || (told(&alice) && told(&bob)).then_some(()))
        .await;
    if both.is_none() {
        let failed: Vec<String> = cluster
            .tg
            .calls()
            .iter()
            .filter(|c| c.injected)
            .map(|c| format!("{} to {}", c.method, c.params["chat_id"]))
            .collect();
        panic!(
            "idle timeout not told to both {:?} after the chat went quiet: {} ({}) told: {}, {} ({}) told: {}; calls failed by the fault: {failed:?}",
            quiet.elapsed(),
            alice.info.first_name,
            alice.id(),
            told(&alice),
            bob.info.first_name,
            bob.id(),
            told(&bob),
        );
    }
    // The fault must have hit the notices, or this test showed nothing.
    let hit = cluster.tg.calls().iter().any(|c| {
        c.injected
            && c.method == "sendMessage"
            && [alice.id(), bob.id()].iter().any(|id| {
                c.params["chat_id"].as_i64() == Some(*id)
                    || c.params["chat_id"].as_str() == Some(id.to_string().as_str())
            })
    });
    let counts: Vec<usize> = [&alice, &bob]
        .iter()
        .map(|u| u.received().iter().filter(|r| idle(r)).count())
        .collect();
    println!("idle_timeout notices (Alice, Bob): {counts:?}; fault hit a notice: {hit}");
    assert!(hit, "the 500 window missed the idle-timeout notices");
}

// ------------------------------------------------------------------ backlogs

/// The value of an unlabelled metric in `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_beyond_stream_maxlen_is_delivered_whole_with_bounded_buffers() {
    // One partition, a small stream limit and a small in-memory buffer; no
    // budget holds the chat back, so ingest outruns the worker.
    let cluster = Cluster::start_with(
        1,
        &[
            ("PARTITIONS", "1"),
            ("STREAM_MAXLEN", "1000"),
            ("MAX_BUFFERED_UPDATES", "64"),
            ("INBOUND_RATE", "100000"),
            ("INBOUND_BURST", "100000"),
            ("TG_CHAT_RATE", "100000"),
            ("TG_CHAT_BURST", "100000"),
            ("TG_GLOBAL_RATE", "100000"),
        ],
    )
    .await;
    let pairs = make_pairs(&cluster, 1).await;
    let (alice, _) = &pairs[0];
    let sent: Vec<Sent> = (0..2500)
        .map(|i| alice.send_text(&format!("m{i}")))
        .collect();
    let sent = HashMap::from([(alice.id(), sent)]);
    // While it drains: never more than the buffer in memory.
    let mut peak_buffered = 0.0f64;
    let mut refused = 0.0f64;
    let mut done = false;
    let started = Instant::now();
    // Sampled while it drains (each sample is a condition check too).
    while started.elapsed() < Duration::from_secs(90) {
        let (_, m) = cluster.replicas[0].http_get("/metrics").await;
        peak_buffered = peak_buffered.max(metric(&m, "anonchat_updates_buffered").unwrap_or(0.0));
        refused = refused.max(metric(&m, "anonchat_ingest_refused_total").unwrap_or(0.0));
        if delivery(&pairs, &sent).lost.is_empty() {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = delivery(&pairs, &sent);
    println!(
        "2,500 messages through a 1,000-entry stream: delivered {} in {:?}; peak buffered {peak_buffered}; batches refused while full {refused}",
        d.delivered,
        started.elapsed()
    );
    assert!(done, "not all delivered within 90 s");
    d.assert_ok("backlog beyond STREAM_MAXLEN", false);
    assert!(
        refused >= 1.0,
        "the stream never filled up, so this test did not exercise the limit"
    );
    assert!(peak_buffered <= 64.0, "{peak_buffered} entries buffered");
}

// ---------------------------------------------------------------- a skewed clock

/// libfaketime's preload library: `$LIBFAKETIME` (scripts/test sets it, and
/// then it must exist), else the distribution's (Debian's package
/// `libfaketime` puts it in /usr/lib/<arch>/faketime/).
fn libfaketime() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LIBFAKETIME").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "LIBFAKETIME={} is not a file", p.display());
        return Some(p);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs.push(PathBuf::from("/usr/lib"));
    dirs.into_iter()
        .map(|d| d.join("faketime/libfaketime.so.1"))
        .find(|p| p.is_file())
}

/// Says that `test` did not run, and why, where a passing run shows it:
/// libtest keeps a passing test's print!/eprint! output to itself, so this
/// writes to the process's stderr directly.
fn skipped(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Seconds since the epoch of an RFC 3339 UTC time as tracing's JSON logs
/// write it ("2026-01-02T03:04:05.123456Z").
fn rfc3339_secs(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.splitn(3, ':');
    let h: i64 = t.next()?.parse().ok()?;
    let min: i64 = t.next()?.parse().ok()?;
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3_600 + min * 60) as f64 + sec)
}

/// How far `r`'s wall clock is from this process's, in seconds, by the
/// `timestamp` of its latest JSON log line (call it right after the line).
fn clock_offset_secs(r: &Replica) -> f64 {
    let logs = r.json_logs();
    let stamp = logs
        .iter()
        .rev()
        .find_map(|v| v["timestamp"].as_str())
        .unwrap_or_else(|| panic!("{}: no JSON log line with a timestamp", r.name));
    let theirs = rfc3339_secs(stamp)
        .unwrap_or_else(|| panic!("{}: unparsable log timestamp {stamp:?}", r.name));
    let ours = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    theirs - ours
}

/// Waits until each of the 16 partitions is owned and every replica owns its
/// fair share (5 or 6); returns each partition's owner.
async fn balanced_owners(cluster: &Cluster) -> Vec<String> {
    let prefix = cluster.env["KEY_PREFIX"].clone();
    let names: Vec<String> = cluster.replicas.iter().map(|r| r.name.clone()).collect();
    let found = eventually(WAIT, || async {
        let mut conn = cluster.redis.conn().await;
        let mut pipe = redis::pipe();
        for p in 0..16 {
            pipe.cmd("GET").arg(format!("{prefix}:v1:owner:{p}"));
        }
        let owners: Vec<Option<String>> = pipe.query_async(&mut conn).await.ok()?;
        let owners: Vec<String> = owners.into_iter().collect::<Option<_>>()?;
        let fair = names.iter().all(|n| {
            let k = owners.iter().filter(|o| *o == n).count();
            (5..=6).contains(&k)
        });
        fair.then_some(owners)
    })
    .await;
    found.unwrap_or_else(|| panic!("the 16 partitions never spread over {names:?}"))
}

/// A new user whose chat is in a partition `owner` (a replica's name) owns.
fn user_on(cluster: &Cluster, owners: &[String], owner: &str, first_name: &str) -> User {
    loop {
        let u = cluster.user(first_name);
        let p = anonchat::keys::partition_of(u.id(), 16) as usize;
        if owners[p] == owner {
            return u;
        }
    }
}

/// Fails unless every replica handled some update of `users` (by the
/// replicas' journals): the check exercised each clock.
fn assert_each_replica_handled(cluster: &Cluster, clocks: &[&str], users: &[&User], what: &str) {
    let ids: HashSet<i64> = users.iter().map(|u| u.id()).collect();
    let counts: Vec<(String, usize)> = cluster
        .replicas
        .iter()
        .zip(clocks)
        .map(|(r, clock)| {
            let n = r.handled().iter().filter(|(c, _)| ids.contains(c)).count();
            (format!("{} ({clock})", r.name), n)
        })
        .collect();
    println!("{what}: updates handled per replica: {counts:?}");
    assert!(
        counts.iter().all(|(_, n)| *n > 0),
        "{what}: a replica handled none of the users' updates, so its clock went untested: {counts:?}"
    );
}

/// Fails if, within `window`, a user of `users` is told `what` (`pred`)
/// more than once, or at the end any was not told exactly once.
async fn assert_told_once(
    cluster: &Cluster,
    users: &[&User],
    window: Duration,
    what: &str,
    pred: impl Fn(&Received) -> bool,
) {
    let count = |u: &User| u.received().iter().filter(|r| pred(r)).count();
    // Ends early when someone is told twice; then the loop below fails.
    cluster
        .tg
        .wait_until(window, || users.iter().any(|u| count(u) > 1).then_some(()))
        .await;
    for u in users {
        let n = count(u);
        assert_eq!(
            n,
            1,
            "{} told {what} {n} times: {:#?}",
            u.info.first_name,
            summary(u)
        );
    }
}

/// Fails unless `took` is about the 3 s timeout: not at once, not never.
fn assert_about_three_seconds(took: Duration, what: &str) {
    assert!(
        took >= Duration::from_millis(2500) && took <= Duration::from_secs(8),
        "{what} after {took:?}, want about 3 s (2.5 s to 8 s)"
    );
}

/// Every time decision of the service is made on Redis's clock (`TIME` in
/// the scripts), so replicas whose wall clocks are 2 h ahead and 2 h behind
/// (libfaketime; their monotonic clocks, which tokio's timers use, are true)
/// chat, time out searches and idle chats, and gather albums exactly like
/// one whose clock is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_clocks_two_hours_off_behave_like_the_others() {
    const TEST: &str = "faults::replicas_with_clocks_two_hours_off_behave_like_the_others";
    let Some(lib) = libfaketime() else {
        skipped(
            TEST,
            "libfaketime is not installed (install it with `apt-get install -y libfaketime`, \
             as scripts/test does, or set LIBFAKETIME to libfaketime.so.1)",
        );
        return;
    };
    let lib = lib.to_str().expect("a UTF-8 path").to_string();
    let mut cluster = Cluster::start_with(
        0,
        &[
            ("RUST_LOG", "warn,anonchat=debug"),
            ("SEARCH_TIMEOUT", "3s"),
            ("CHAT_IDLE_TIMEOUT", "3s"),
        ],
    )
    .await;
    // (FAKETIME, expected offset of the wall clock in seconds)
    let clocks = [("", 0.0), ("+2h", 7200.0), ("-2h", -7200.0)];
    for (faketime, want) in clocks {
        let idx = if faketime.is_empty() {
            cluster.add_replica().await
        } else {
            cluster
                .add_replica_with_env(&[
                    ("LD_PRELOAD", lib.as_str()),
                    ("FAKETIME", faketime),
                    ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
                ])
                .await
        };
        // The skew must really be in effect, or this test shows nothing.
        let r = &cluster.replicas[idx];
        let off = clock_offset_secs(r);
        println!(
            "{}: FAKETIME={faketime:?}, wall clock {off:+.1} s off",
            r.name
        );
        assert!(
            (off - want).abs() < 120.0,
            "{} should log timestamps {want:+} s off (FAKETIME={faketime:?}), but they are {off:+.1} s off: the skew is not in effect",
            r.name
        );
    }
    let clock_names: Vec<&str> = clocks
        .iter()
        .map(|(f, _)| if f.is_empty() { "true clock" } else { f })
        .collect();
    let names: Vec<String> = cluster.replicas.iter().map(|r| r.name.clone()).collect();
    let owners = balanced_owners(&cluster).await;

    // (1) Pairs with every combination of clocks chat: nothing lost or
    // reordered. Each pair starts sending right after it is paired (the
    // idle timeout is 3 s; pairing all of them first would take longer).
    let phase = Instant::now();
    let mut pairs = Vec::new();
    let mut producers = Vec::new();
    for i in 0..3 {
        for j in 0..3 {
            let a = user_on(&cluster, &owners, &names[i], &format!("A{i}{j}"));
            let b = user_on(&cluster, &owners, &names[j], &format!("B{i}{j}"));
            pair(&a, &b).await;
            let p = vec![(a.clone(), b.clone())];
            producers.push(tokio::spawn(async move {
                let sent = exchange(p, 10, Duration::from_millis(250)).await;
                (sent, Instant::now())
            }));
            pairs.push((a, b));
        }
    }
    let mut sent: HashMap<i64, Vec<Sent>> = HashMap::new();
    let mut last_sent = Vec::new();
    for p in producers {
        let (s, at) = p.await.expect("producer");
        sent.extend(s);
        last_sent.push(at);
    }
    let d = wait_delivered(&pairs, &sent, DELIVERY).await;
    d.assert_ok("replicas with skewed clocks", false);
    let users: Vec<&User> = pairs.iter().flat_map(|(a, b)| [a, b]).collect();
    assert_each_replica_handled(&cluster, &clock_names, &users, "chatting");
    println!("(1) chatting took {:?}", phase.elapsed());

    // (3) Each chat, quiet since its last message, ends about 3 s later,
    // and both partners are told once.
    let phase = Instant::now();
    let idle = |r: &Received| says_timed(r, "idle_timeout", EN);
    let told = cluster
        .tg
        .wait_until(WAIT, || {
            users
                .iter()
                .all(|u| u.received().iter().any(idle))
                .then_some(())
        })
        .await;
    if told.is_none() {
        let untold: Vec<&str> = users
            .iter()
            .filter(|u| !u.received().iter().any(idle))
            .map(|u| u.info.first_name.as_str())
            .collect();
        panic!("idle chats never ended for {untold:?}");
    }
    for ((a, b), quiet) in pairs.iter().zip(&last_sent) {
        for u in [a, b] {
            let at = u.received().iter().find(|r| idle(r)).expect("told").at;
            let took = at.saturating_duration_since(*quiet);
            println!(
                "{}: idle_timeout {took:?} after the last message",
                u.info.first_name
            );
            assert_about_three_seconds(
                took,
                &format!("{}'s chat ended as idle", u.info.first_name),
            );
        }
    }
    // A second notice (the timer firing again on another replica) would
    // show within a few sweeps.
    assert_told_once(
        &cluster,
        &users,
        Duration::from_millis(1500),
        "idle_timeout",
        idle,
    )
    .await;
    println!("(3) idle timeouts took {:?}", phase.elapsed());

    // (2) A search that finds nobody ends about 3 s later, told once; one
    // searcher on each replica (searchers would match each other, so one at
    // a time).
    let phase = Instant::now();
    let mut searchers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let u = user_on(&cluster, &owners, name, &format!("S{i}"));
        let started = Instant::now();
        expect_after(&u, "searching", EN, || {
            u.command("/search");
        })
        .await;
        let timed_out = u
            .wait_for("search_timeout", |r| says_timed(r, "search_timeout", EN))
            .await;
        let took = timed_out.at.saturating_duration_since(started);
        println!(
            "{} (on {name}, {}): search_timeout after {took:?}",
            u.info.first_name, clock_names[i]
        );
        assert_about_three_seconds(took, &format!("{}'s search timed out", u.info.first_name));
        searchers.push(u);
    }
    // A second notice would show within a few sweeps (the earlier
    // searchers have been watched for longer already).
    let refs: Vec<&User> = searchers.iter().collect();
    assert_told_once(
        &cluster,
        &refs,
        Duration::from_millis(2500),
        "search_timeout",
        |r| says_timed(r, "search_timeout", EN),
    )
    .await;
    let db = Db::new(&cluster).await;
    for u in &searchers {
        db.assert_state(u, "idle", None).await;
    }
    assert_each_replica_handled(&cluster, &clock_names, &refs, "searching");
    println!("(2) search timeouts took {:?}", phase.elapsed());

    // (4) An album sent on each replica is relayed as one album: one
    // copyMessages call, one media group, the caption on its first part.
    let phase = Instant::now();
    let tg = cluster.tg.clone();
    let mut senders = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let alice = user_on(&cluster, &owners, name, &format!("P{i}"));
        let bob = user_on(&cluster, &owners, &names[(i + 1) % 3], &format!("Q{i}"));
        pair(&alice, &bob).await;
        let parts = tg.send_album(&alice.info, 3, Some("our trip"));
        let ids: Vec<i32> = parts.iter().map(|s| s.message_id).collect();
        let copies = bob
            .copies_of(&alice, &ids)
            .await
            .unwrap_or_else(|| panic!("{name}'s album never arrived: {:#?}", summary(&bob)));
        let groups: HashSet<&str> = copies
            .iter()
            .map(|r| r.content["media_group_id"].as_str().unwrap_or(""))
            .collect();
        assert!(
            groups.len() == 1 && !groups.contains(""),
            "the album sent on {name} ({}) arrived as {groups:?}, not as one album",
            clock_names[i]
        );
        let order: Vec<i32> = copies
            .iter()
            .filter_map(|r| r.source.map(|s| s.1))
            .collect();
        assert_eq!(order, ids, "album parts out of order");
        assert_eq!(
            copies[0].text(),
            Some("our trip"),
            "caption not on the first part"
        );
        senders.push((alice, bob, ids));
    }
    // Each album flushed once, with one call (and not again when its
    // window passes on another replica; ALBUM_WINDOW_MS is 800 by default).
    let batches_from = |id: i64| -> Vec<CallRecord> {
        tg.calls_for("copyMessages")
            .into_iter()
            .filter(|c| int(&c.params["from_chat_id"]) == Some(id) && c.status == 200)
            .collect()
    };
    let again = tg
        .wait_until(Duration::from_millis(2000), || {
            senders
                .iter()
                .any(|(alice, _, _)| batches_from(alice.id()).len() > 1)
                .then_some(())
        })
        .await;
    println!("an album copied again within 2 s: {}", again.is_some());
    for (i, (alice, _, ids)) in senders.iter().enumerate() {
        let from_alice = |c: &CallRecord| int(&c.params["from_chat_id"]) == Some(alice.id());
        let batches = batches_from(alice.id());
        assert_eq!(
            batches.len(),
            1,
            "the album sent on {} ({}) took {} copyMessages calls: {batches:#?}",
            names[i],
            clock_names[i],
            batches.len()
        );
        let singles = tg
            .calls_for("copyMessage")
            .iter()
            .filter(|c| {
                from_alice(c)
                    && int(&c.params["message_id"]).is_some_and(|m| ids.contains(&(m as i32)))
            })
            .count();
        assert_eq!(
            singles, 0,
            "album parts sent on {} were also copied one by one",
            names[i]
        );
    }
    let users: Vec<&User> = senders.iter().map(|(a, _, _)| a).collect();
    assert_each_replica_handled(&cluster, &clock_names, &users, "albums");
    println!("(4) albums took {:?}", phase.elapsed());
    assert_all_running(&mut cluster);
}
