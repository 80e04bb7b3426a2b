//! The load generator: simulated users acting through the in-process fake
//! Telegram (each action is one update, exactly as a real client's would be),
//! and the honesty checks on what the fake received.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anonchat::bot::texts::{text, Lang};
use anonchat_testkit::fake::{FakeTelegram, Received, TgUser};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::cluster::Bench;

/// A population of users paired by the bot, and everything they sent.
pub struct Population {
    pub users: Vec<TgUser>,
    /// Index of each user's partner.
    pub partner: Vec<usize>,
    /// Per user: ids of the messages (in their own chat) that must arrive as
    /// copies in the partner's chat, in send order.
    pub sent: Vec<Vec<u32>>,
    /// Per user: ids of their text messages (candidates for edits).
    texts: Vec<Vec<i32>>,
    /// (user, message id) -> edits sent.
    pub edits: HashMap<(usize, i32), usize>,
    rng: SmallRng,
    cursor: usize,
    order: Vec<usize>,
}

/// What one send was.
pub enum Kind {
    Copy { update_id: i64 },
    Edit,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MatchResult {
    pub users: usize,
    pub pairs: usize,
    /// First /search queued -> last "found" arrived at the fake.
    pub seconds: f64,
    pub searches_per_sec: f64,
    pub redis_bytes_per_pair: f64,
    pub redis_memory_usage_per_pair: f64,
}

static NEXT_ID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(5_000_000);

/// Fresh users with unique ids.
pub fn new_users(n: usize) -> Vec<TgUser> {
    (0..n)
        .map(|i| {
            let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            TgUser::new(id, format!("u{i}"))
        })
        .collect()
}

/// All `users` send /search at once; waits until every one got "found", then
/// reads the pairs from Redis.
pub async fn match_all(
    bench: &mut Bench,
    users: Vec<TgUser>,
    timeout: Duration,
) -> anyhow::Result<(Population, MatchResult)> {
    let fake = bench.fake.clone();
    for u in &users {
        fake.register_user(u);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mem_before = bench.used_memory().await;
    let found = text("found", Lang::En);
    let t0 = Instant::now();
    for u in &users {
        fake.send_command(u, "/search");
    }
    let mut remaining: Vec<usize> = (0..users.len()).collect();
    let mut last = t0;
    let deadline = t0 + timeout;
    while !remaining.is_empty() {
        remaining.retain(|&i| {
            match fake
                .received(users[i].id)
                .iter()
                .find(|r| r.source.is_none() && r.text() == Some(found.as_str()))
            {
                Some(r) => {
                    last = last.max(r.at);
                    false
                }
                None => true,
            }
        });
        if Instant::now() > deadline {
            anyhow::bail!(
                "LOSS: {} of {} users never got \"found\" within {timeout:?}",
                remaining.len(),
                users.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seconds = last.duration_since(t0).as_secs_f64();
    // Let stream trimming and timers settle before reading memory.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mem_after = bench.used_memory().await;

    let index: HashMap<i64, usize> = users.iter().enumerate().map(|(i, u)| (u.id, i)).collect();
    let mut conn = bench.conn();
    let mut pipe = redis::pipe();
    for u in &users {
        pipe.cmd("HGET").arg(bench.keys.user(u.id)).arg("p");
    }
    let partners: Vec<Option<i64>> = pipe.query_async(&mut conn).await?;
    let mut partner = vec![usize::MAX; users.len()];
    for (i, p) in partners.iter().enumerate() {
        let p = p.ok_or_else(|| anyhow::anyhow!("user {} has no partner in Redis", users[i].id))?;
        partner[i] = *index
            .get(&p)
            .ok_or_else(|| anyhow::anyhow!("user {} paired outside the population", users[i].id))?;
    }
    for (i, &p) in partner.iter().enumerate() {
        anyhow::ensure!(partner[p] == i && p != i, "pairing is not symmetric at {i}");
    }
    let pairs = users.len() / 2;
    // MEMORY USAGE of what one pair owns: both user hashes.
    let mut sample = 0u64;
    let n_sample = 50.min(users.len());
    for u in users.iter().take(n_sample) {
        sample += bench.memory_usage(&bench.keys.user(u.id)).await;
    }
    let per_user = sample as f64 / n_sample.max(1) as f64;
    let result = MatchResult {
        users: users.len(),
        pairs,
        seconds,
        searches_per_sec: users.len() as f64 / seconds.max(1e-9),
        redis_bytes_per_pair: mem_after.saturating_sub(mem_before) as f64 / pairs.max(1) as f64,
        redis_memory_usage_per_pair: 2.0 * per_user,
    };
    let n = users.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SmallRng::seed_from_u64(7);
    for i in (1..n).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    Ok((
        Population {
            users,
            partner,
            sent: vec![Vec::new(); n],
            texts: vec![Vec::new(); n],
            edits: HashMap::new(),
            rng,
            cursor: 0,
            order,
        },
        result,
    ))
}

const WORDS: &[&str] = &[
    "hi", "hello", "how", "are", "you", "fine", "thanks", "where", "from", "nice", "weather",
    "today", "what", "music", "do", "like", "really", "cool", "same", "haha",
];

impl Population {
    fn text(&mut self) -> String {
        let n = self.rng.random_range(2..9);
        (0..n)
            .map(|_| WORDS[self.rng.random_range(0..WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// One user action from the chat mix: 85% text, 7% photo with caption,
    /// 5% reply to one of their recent messages, 3% edit of a recent text.
    pub fn send_one(&mut self, fake: &FakeTelegram) -> Kind {
        let i = self.order[self.cursor];
        self.cursor = (self.cursor + 1) % self.order.len();
        let roll: f64 = self.rng.random();
        let recent = self.texts[i].len();
        if roll >= 0.97 && recent > 0 {
            let id = self.texts[i][recent - 1 - self.rng.random_range(0..recent.min(5))];
            let t = self.text();
            if fake.edit_text(&self.users[i], id, &t).is_ok() {
                *self.edits.entry((i, id)).or_insert(0) += 1;
                return Kind::Edit;
            }
        }
        let t = self.text();
        let (sent, is_text) = if roll >= 0.92 && recent > 0 {
            let id = self.texts[i][recent - 1 - self.rng.random_range(0..recent.min(5))];
            let sent = fake
                .reply_text(&self.users[i], id, &t)
                .unwrap_or_else(|_| fake.send_text(&self.users[i], &t));
            (sent, true)
        } else if roll >= 0.85 {
            (fake.send_photo(&self.users[i], Some(&t)), false)
        } else {
            (fake.send_text(&self.users[i], &t), true)
        };
        if is_text {
            self.texts[i].push(sent.message_id);
        }
        self.sent[i].push(sent.message_id as u32);
        Kind::Copy {
            update_id: sent.update_id,
        }
    }

    /// Copies expected so far.
    pub fn expected_copies(&self) -> u64 {
        self.sent.iter().map(|s| s.len() as u64).sum()
    }

    /// Every message each user sent arrived in the partner's chat exactly
    /// once and in order, and every edit reached the copy. Returns problems.
    pub fn verify(&self, fake: &FakeTelegram) -> Vec<String> {
        let mut problems = Vec::new();
        let mut by_chat: HashMap<usize, Vec<Received>> = HashMap::new();
        for (i, sent) in self.sent.iter().enumerate() {
            if sent.is_empty() {
                continue;
            }
            let p = self.partner[i];
            let chat = by_chat
                .entry(p)
                .or_insert_with(|| fake.received(self.users[p].id));
            let from = self.users[i].id;
            let got: Vec<&Received> = chat
                .iter()
                .filter(|r| r.source.is_some_and(|(c, _)| c == from))
                .collect();
            let ids: Vec<u32> = got
                .iter()
                .filter_map(|r| r.source.map(|(_, m)| m as u32))
                .collect();
            if &ids != sent {
                let missing = sent.iter().filter(|m| !ids.contains(m)).count();
                let extra = ids.len() as i64 - sent.len() as i64 + missing as i64;
                problems.push(format!(
                    "user {from} -> {}: sent {}, copies {} ({missing} missing, {extra} duplicated or foreign, order {})",
                    self.users[p].id,
                    sent.len(),
                    ids.len(),
                    if missing == 0 && extra == 0 { "WRONG" } else { "n/a" }
                ));
            }
            // Edits: each copy must end with its message's latest text. (An
            // edit made before the copy exists is already in the copy, since
            // copyMessage copies the current version; then the bot's edit is
            // "not modified", which is right.)
            let originals: HashMap<i32, String> = fake
                .history(from)
                .iter()
                .filter_map(|v| {
                    let id = v.get("message_id")?.as_i64()? as i32;
                    let text = v.get("text").or_else(|| v.get("caption"))?.as_str()?;
                    Some((id, text.to_string()))
                })
                .collect();
            for r in got {
                let Some((_, m)) = r.source else { continue };
                if !self.edits.contains_key(&(i, m)) {
                    continue;
                }
                let want = originals.get(&m).map(String::as_str);
                if r.text() != want {
                    problems.push(format!(
                        "user {from} message {m}: edited to {want:?}, copy shows {:?}",
                        r.text()
                    ));
                }
            }
        }
        problems
    }
}

/// How a relay phase offers load.
#[derive(Debug, Clone, Copy)]
pub enum Offer {
    /// Open loop: this many messages per second, whatever the system does.
    Rate(f64),
    /// Closed loop: keep this many copies outstanding (saturation).
    Window(u64),
}

/// Raw outcome of one relay phase.
pub struct PhaseRun {
    pub sent_copies: u64,
    pub sent_edits: u64,
    /// Copies delivered in the steady window / its length.
    pub steady_throughput: f64,
    pub first_update: i64,
    pub last_update: i64,
    /// Seconds from the end of sending until every copy arrived.
    pub drain_seconds: f64,
    pub drained: bool,
    pub peak_replica_rss: Vec<u64>,
}

/// Offers load for `duration`, then waits (up to `drain_timeout`) until every
/// copy arrived. The steady window skips the first `warmup`.
pub async fn relay(
    bench: &Bench,
    pop: &mut Population,
    offer: Offer,
    duration: Duration,
    warmup: Duration,
    drain_timeout: Duration,
) -> PhaseRun {
    let fake = bench.fake.clone();
    let base = bench.copies();
    let edits_before = bench.edits();
    let expected_before = pop.expected_copies();
    let start = Instant::now();
    let (mut sent_copies, mut sent_edits) = (0u64, 0u64);
    let (mut first_update, mut last_update) = (i64::MAX, 0i64);
    let mut warm_mark: Option<(Instant, u64)> = None;
    let mut peak_rss = bench.replica_rss();
    let mut last_rss = Instant::now();
    loop {
        let now = Instant::now();
        let elapsed = now.duration_since(start);
        if elapsed >= duration {
            break;
        }
        let delivered = bench.copies() - base;
        if warm_mark.is_none() && elapsed >= warmup {
            warm_mark = Some((now, delivered));
        }
        let target = match offer {
            Offer::Rate(r) => (r * elapsed.as_secs_f64()) as u64,
            Offer::Window(w) => delivered + w,
        };
        // Bounded per tick so the fake's server tasks get the cores too.
        let mut budget = 2_000;
        while budget > 0 {
            let done = match offer {
                Offer::Rate(_) => sent_copies + sent_edits >= target,
                Offer::Window(_) => sent_copies >= target,
            };
            if done {
                break;
            }
            match pop.send_one(&fake) {
                Kind::Copy { update_id } => {
                    sent_copies += 1;
                    first_update = first_update.min(update_id);
                    last_update = last_update.max(update_id);
                }
                Kind::Edit => sent_edits += 1,
            }
            budget -= 1;
        }
        if now.duration_since(last_rss) > Duration::from_millis(250) {
            last_rss = now;
            for (p, r) in peak_rss.iter_mut().zip(bench.replica_rss()) {
                *p = (*p).max(r);
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let end = Instant::now();
    let delivered_end = bench.copies() - base;
    let (warm_at, warm_delivered) = warm_mark.unwrap_or((start, 0));
    let steady_throughput =
        (delivered_end - warm_delivered) as f64 / end.duration_since(warm_at).as_secs_f64();
    let want = pop.expected_copies() - expected_before;
    let drained = fake
        .wait_until(drain_timeout, || {
            (bench.copies() - base >= want).then_some(())
        })
        .await
        .is_some();
    let drain_seconds = end.elapsed().as_secs_f64();
    // Edits queue behind the copies of their chat: wait for them as well.
    let edits_base = edits_before;
    let _ = fake
        .wait_until(drain_timeout, || {
            (bench.edits() - edits_base >= sent_edits).then_some(())
        })
        .await;
    PhaseRun {
        sent_copies,
        sent_edits,
        steady_throughput,
        first_update,
        last_update,
        drain_seconds,
        drained,
        peak_replica_rss: peak_rss,
    }
}

/// p50/p95/p99/max of the fake's update-to-copy latencies for updates in
/// `[first, last]`, in milliseconds, and the sample count.
pub fn latency(fake: &FakeTelegram, first: i64, last: i64) -> (Percentiles, usize) {
    let mut v: Vec<f64> = fake
        .latencies()
        .into_iter()
        .filter(|l| l.update_id >= first && l.update_id <= last)
        .map(|l| l.latency.as_secs_f64() * 1000.0)
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    (Percentiles::of(&v), v.len())
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of sorted values.
    pub fn of(sorted: &[f64]) -> Percentiles {
        let at = |q: f64| {
            if sorted.is_empty() {
                return f64::NAN;
            }
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1]
        };
        Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// `count` pairs end: the first half by /next, the rest by /stop (pressed by
/// one side). Returns seconds until every partner was told, or an error.
pub async fn churn(bench: &Bench, pop: &Population, count: usize) -> anyhow::Result<f64> {
    let fake = bench.fake.clone();
    let told = text("partner_left", Lang::En);
    let mut seen = vec![false; pop.users.len()];
    let mut leavers = Vec::new();
    for i in 0..pop.users.len() {
        if leavers.len() == count {
            break;
        }
        if seen[i] {
            continue;
        }
        seen[i] = true;
        seen[pop.partner[i]] = true;
        leavers.push(i);
    }
    let count_told = |i: usize| {
        fake.received(pop.users[i].id)
            .iter()
            .filter(|r| r.source.is_none() && r.text() == Some(told.as_str()))
            .count()
    };
    let before: Vec<usize> = leavers
        .iter()
        .map(|&i| count_told(pop.partner[i]))
        .collect();
    let t0 = Instant::now();
    for (k, &i) in leavers.iter().enumerate() {
        let cmd = if k < leavers.len() / 2 {
            "/next"
        } else {
            "/stop"
        };
        fake.send_command(&pop.users[i], cmd);
    }
    let mut remaining: Vec<usize> = (0..leavers.len()).collect();
    let deadline = t0 + Duration::from_secs(60);
    while !remaining.is_empty() {
        remaining.retain(|&k| count_told(pop.partner[leavers[k]]) <= before[k]);
        if Instant::now() > deadline {
            anyhow::bail!(
                "LOSS: {} of {} partners were never told the stranger left",
                remaining.len(),
                leavers.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(t0.elapsed().as_secs_f64())
}
