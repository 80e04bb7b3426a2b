//! Test harness: a real `redis-server` on a free port, the project's fake
//! Telegram, and real `anonchat` processes (the binary cargo built for this
//! test run), each on its own port. Process management lives in
//! `anonchat_testkit::process` (shared with the benchmark). Everything is
//! killed on drop, so a failing test cleans up too.
//!
//! Helpers read like a user's actions: `alice.send_text("hi")`,
//! `bob.wait_text("hi").await`. Waits are on conditions with a timeout, never
//! fixed sleeps.

#![allow(dead_code)]

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anonchat_testkit::fake::{FakeConfig, FakeTelegram, Received, Sent, TgUser};
use anonchat_testkit::process;
pub use anonchat_testkit::{free_port, RedisServer, WAIT};

static NEXT_PREFIX: AtomicU32 = AtomicU32::new(0);
static NEXT_USER: AtomicI64 = AtomicI64::new(1_000_000);

/// One real `anonchat` process: the binary cargo built for this test run,
/// wrapping [`process::Replica`] (every method of which it exposes).
pub struct Replica(process::Replica);

impl Replica {
    /// Starts the binary with exactly these environment variables (plus PATH).
    pub fn spawn(name: &str, env: &HashMap<String, String>) -> Replica {
        Replica(process::Replica::spawn(
            Path::new(env!("CARGO_BIN_EXE_anonchat")),
            name,
            env,
        ))
    }
}

impl Replica {
    /// SIGSTOP: the process freezes mid-whatever (its connections stay open,
    /// its leases are not renewed), as under a long GC pause or a VM stall.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP, "SIGSTOP");
    }

    /// SIGCONT after [`Replica::freeze`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT, "SIGCONT");
    }

    fn signal(&self, sig: libc::c_int, name: &str) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{} is not running: cannot {name}", self.name));
        let pid = libc::pid_t::try_from(pid).unwrap_or_else(|e| panic!("pid {pid}: {e}"));
        // SAFETY: kill(2) with a pid we spawned and own; no memory is shared.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(
            rc,
            0,
            "{name} {}: {}",
            self.name,
            std::io::Error::last_os_error()
        );
    }
}

impl Deref for Replica {
    type Target = process::Replica;
    fn deref(&self) -> &process::Replica {
        &self.0
    }
}

impl DerefMut for Replica {
    fn deref_mut(&mut self) -> &mut process::Replica {
        &mut self.0
    }
}

/// Redis + fake Telegram + N replicas with a shared configuration.
pub struct Cluster {
    pub redis: RedisServer,
    pub tg: FakeTelegram,
    pub replicas: Vec<Replica>,
    pub env: HashMap<String, String>,
    /// With [`Cluster::start_with_replica_tokens`]: each replica's own
    /// BOT_TOKEN alias, by replica index (its Bot API calls record it).
    pub tokens: Vec<String>,
    per_replica_tokens: bool,
    spawned: u32,
}

impl Cluster {
    pub async fn start(n: usize) -> Cluster {
        Self::start_with(n, &[]).await
    }

    /// Starts `n` replicas with extra environment variables.
    pub async fn start_with(n: usize, extra: &[(&str, &str)]) -> Cluster {
        Self::build(RedisServer::start().await, FakeConfig::default(), n, extra).await
    }

    pub async fn build(
        redis: RedisServer,
        fake: FakeConfig,
        n: usize,
        extra: &[(&str, &str)],
    ) -> Cluster {
        let tg = FakeTelegram::start(fake)
            .await
            .expect("start fake telegram");
        let mut env = HashMap::new();
        let prefix = format!("t{}", NEXT_PREFIX.fetch_add(1, Ordering::Relaxed));
        for (k, v) in [
            ("BOT_TOKEN", tg.token().to_string()),
            ("REDIS_URL", redis.url()),
            ("TELEGRAM_API_URL", tg.api_url()),
            ("HTTP_ADDR", "127.0.0.1:0".to_string()),
            ("KEY_PREFIX", prefix),
            ("LOG_FORMAT", "json".to_string()),
            ("RUST_LOG", "info,anonchat=debug".to_string()),
            ("PARTITIONS", "16".to_string()),
            ("POLL_TIMEOUT_SECS", "10".to_string()),
            ("POLLER_LEASE_MS", "2000".to_string()),
            ("PARTITION_LEASE_MS", "2000".to_string()),
            ("SHUTDOWN_GRACE_SECS", "5".to_string()),
            ("REDIS_STARTUP_TIMEOUT_SECS", "10".to_string()),
            // Telegram's real limits would make most tests slow; the flood
            // control tests set realistic budgets themselves.
            ("TG_GLOBAL_RATE", "100000".to_string()),
            ("TG_CHAT_RATE", "10000".to_string()),
            ("TG_CHAT_BURST", "10000".to_string()),
            ("INBOUND_RATE", "10000".to_string()),
            ("INBOUND_BURST", "10000".to_string()),
            // No rules prompt before searching: tests of other features
            // search at once and links pass; tests/it/consent.rs sets both.
            ("RULES_VERSION", "0".to_string()),
            ("LINK_POLICY", "allow".to_string()),
        ] {
            env.insert(k.to_string(), v);
        }
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let mut cluster = Cluster {
            redis,
            tg,
            replicas: Vec::new(),
            env,
            tokens: Vec::new(),
            per_replica_tokens: false,
            spawned: 0,
        };
        for _ in 0..n {
            cluster.add_replica().await;
        }
        cluster
    }

    /// Like [`Cluster::start_with`], but every replica (also those added
    /// later) gets its own token alias of the bot, so the fake's call records
    /// tell which replica made each call ([`Cluster::tokens`]).
    pub async fn start_with_replica_tokens(n: usize, extra: &[(&str, &str)]) -> Cluster {
        let mut cluster =
            Self::build(RedisServer::start().await, FakeConfig::default(), 0, extra).await;
        cluster.per_replica_tokens = true;
        for _ in 0..n {
            cluster.add_replica().await;
        }
        cluster
    }

    /// Index of the replica whose token alias is `token`.
    pub fn replica_of_token(&self, token: &str) -> Option<usize> {
        self.tokens.iter().position(|t| t == token)
    }

    /// Starts one more replica and waits until it runs; returns its index.
    pub async fn add_replica(&mut self) -> usize {
        let idx = self.spawn_replica();
        self.replicas[idx].wait_running().await;
        idx
    }

    /// Starts one more replica without waiting; returns its index.
    pub fn spawn_replica(&mut self) -> usize {
        self.spawn_replica_with_env(&[])
    }

    /// Starts one more replica with `extra` environment variables on top of
    /// the cluster's (for this process only, e.g. an `LD_PRELOAD`) and waits
    /// until it runs; returns its index.
    pub async fn add_replica_with_env(&mut self, extra: &[(&str, &str)]) -> usize {
        let idx = self.spawn_replica_with_env(extra);
        self.replicas[idx].wait_running().await;
        idx
    }

    /// [`Cluster::spawn_replica`] with `extra` environment variables on top
    /// of the cluster's.
    pub fn spawn_replica_with_env(&mut self, extra: &[(&str, &str)]) -> usize {
        self.spawned += 1;
        let name = format!("r{}", self.spawned);
        let mut env = self.env.clone();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        env.insert("REPLICA_ID".into(), name.clone());
        let token = if self.per_replica_tokens {
            let alias = format!("{}-{name}", self.tg.token());
            self.tg.add_token_alias(alias.clone());
            alias
        } else {
            self.tg.token().to_string()
        };
        env.insert("BOT_TOKEN".into(), token.clone());
        self.tokens.push(token);
        self.replicas.push(Replica::spawn(&name, &env));
        self.replicas.len() - 1
    }

    /// A new simulated Telegram user with a unique id.
    pub fn user(&self, first_name: &str) -> User {
        self.user_with(TgUser::new(
            NEXT_USER.fetch_add(1, Ordering::Relaxed),
            first_name,
        ))
    }

    /// A new simulated user whose Telegram client language is `language_code`.
    pub fn user_in(&self, first_name: &str, language_code: &str) -> User {
        self.user_with(
            TgUser::new(NEXT_USER.fetch_add(1, Ordering::Relaxed), first_name)
                .with_language(language_code),
        )
    }

    /// Key builder for this cluster's `KEY_PREFIX`.
    pub fn keys(&self) -> anonchat::keys::Keys {
        anonchat::keys::Keys::new(&self.env["KEY_PREFIX"])
    }

    pub fn user_with(&self, info: TgUser) -> User {
        self.tg.register_user(&info);
        User {
            tg: self.tg.clone(),
            info,
        }
    }

    /// Every (chat, update_id) any replica journaled as handled, with repeats.
    pub fn handled(&self) -> Vec<(i64, i64)> {
        self.replicas.iter().flat_map(|r| r.handled()).collect()
    }

    /// Index of the replica currently holding the poller lease, by its logs.
    pub async fn poller_index(&self) -> Option<usize> {
        let mut conn = self.redis.conn().await;
        let key = format!("{}:v1:poller:lease", self.env["KEY_PREFIX"]);
        let holder: Option<String> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .ok()
            .flatten();
        let holder = holder?;
        let name = holder.split(' ').next()?;
        self.replicas.iter().position(|r| r.name == name)
    }
}

/// A simulated Telegram user in a test.
#[derive(Clone)]
pub struct User {
    pub tg: FakeTelegram,
    pub info: TgUser,
}

/// Callback data of the inline buttons on `r`.
pub fn inline_buttons(r: &Received) -> Vec<String> {
    r.content["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["callback_data"].as_str().map(str::to_string))
        .collect()
}

impl User {
    pub fn id(&self) -> i64 {
        self.info.id
    }

    /// Waits until this user holds a copy of each of `from`'s messages
    /// `ids`; returns those copies (None after [`WAIT`]).
    pub async fn copies_of(&self, from: &User, ids: &[i32]) -> Option<Vec<Received>> {
        self.tg
            .wait_until(WAIT, || {
                let got: Vec<Received> = self
                    .received()
                    .into_iter()
                    .filter(|r| {
                        r.source
                            .is_some_and(|(c, m)| c == from.id() && ids.contains(&m))
                    })
                    .collect();
                (got.len() == ids.len()).then_some(got)
            })
            .await
    }

    /// Presses the inline button `data` under message `message_id` and
    /// waits until the bot answered that callback.
    pub async fn press(&self, message_id: i32, data: &str) {
        let cb = self
            .tg
            .press_button(&self.info, message_id, data)
            .expect("button's message exists");
        let answered = self
            .tg
            .wait_until(WAIT, || {
                self.tg
                    .callback_answers()
                    .iter()
                    .any(|a| a["callback_query_id"].as_str() == Some(cb.callback_query_id.as_str()))
                    .then_some(())
            })
            .await;
        assert!(answered.is_some(), "callback {data} never answered");
    }

    pub fn send_text(&self, text: &str) -> Sent {
        self.tg.send_text(&self.info, text)
    }

    pub fn command(&self, command: &str) -> Sent {
        self.tg.send_command(&self.info, command)
    }

    /// Everything the bot has put into this user's chat.
    pub fn received(&self) -> Vec<Received> {
        self.tg.received(self.id())
    }

    /// Waits for a message matching `pred`; panics with the chat's contents on timeout.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Received) -> bool) -> Received {
        match self.tg.wait_for(self.id(), pred, WAIT).await {
            Some(r) => r,
            None => panic!(
                "user {} never received {what}; chat has: {:#?}",
                self.info.first_name,
                self.received()
                    .iter()
                    .map(|r| (r.method.clone(), r.text().map(str::to_string)))
                    .collect::<Vec<_>>()
            ),
        }
    }

    /// Waits for a message whose text or caption contains `needle`.
    pub async fn wait_text(&self, needle: &str) -> Received {
        let n = needle.to_string();
        self.wait_for(needle, move |r| r.text().is_some_and(|t| t.contains(&n)))
            .await
    }

    /// Count of received messages whose text contains `needle`.
    pub fn count_text(&self, needle: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| r.text().is_some_and(|t| t.contains(needle)))
            .count()
    }
}

/// Polls `check` until it returns Some or `timeout` passes (for state outside
/// the fake, e.g. Redis or logs); 20 ms between checks.
pub async fn eventually<T, F, Fut>(timeout: Duration, check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    poll_until(timeout, Duration::from_millis(20), check).await
}

/// Like [`eventually`], checking every `every` (for checks too costly to run
/// every 20 ms, e.g. thousands of Redis reads).
pub async fn poll_until<T, F, Fut>(timeout: Duration, every: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}
