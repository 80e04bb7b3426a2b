//! Test harness: a real `redis-server` on a free port, the project's fake
//! Telegram, and real `anonchat` processes (the binary cargo built for this
//! test run), each on its own port. Everything is killed on drop, so a failing
//! test cleans up too.
//!
//! Helpers read like a user's actions: `alice.send_text("hi")`,
//! `bob.wait_text("hi").await`. Waits are on conditions with a timeout, never
//! fixed sleeps.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anonchat::fake::{FakeConfig, FakeTelegram, Received, Sent, TgUser};
use serde_json::Value;
use tokio::sync::watch;

/// Default time a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(20);

static NEXT_PREFIX: AtomicU32 = AtomicU32::new(0);
static NEXT_USER: AtomicI64 = AtomicI64::new(1_000_000);

/// A free TCP port on 127.0.0.1 (the OS picks it; tiny race accepted).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

fn redis_server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("REDIS_SERVER") {
        return PathBuf::from(p);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join("redis-server");
        if p.exists() {
            return p;
        }
    }
    panic!("redis-server not found: install it with `apt-get install -y redis-server` (scripts/test does this), or set REDIS_SERVER");
}

/// A real Redis server owned by one test.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    aof: bool,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        Self::start_with(false).await
    }

    /// With `aof`, every write is fsynced to an append-only file, so a restart
    /// keeps everything acknowledged.
    pub async fn start_with(aof: bool) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
            aof,
        };
        for _ in 0..5 {
            server.port = free_port();
            if server.launch().await {
                return server;
            }
        }
        panic!("redis-server did not start");
    }

    async fn launch(&mut self) -> bool {
        let mut cmd = Command::new(redis_server_binary());
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .arg("--loglevel")
            .arg("warning");
        if self.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    return false;
                }
            }
            if self.ping().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        match client.get_multiplexed_async_connection().await {
            Ok(mut c) => redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok(),
            Err(_) => false,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to test redis")
    }

    /// Kills the server hard (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills and starts the server again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.launch().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("redis-server did not restart on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One real `anonchat` process.
pub struct Replica {
    child: Option<Child>,
    pub name: String,
    logs: Arc<Mutex<Vec<String>>>,
    log_changed: watch::Receiver<u64>,
    pub http_addr: Option<SocketAddr>,
}

impl Replica {
    /// Starts the binary with exactly these environment variables (plus PATH).
    pub fn spawn(name: &str, env: &HashMap<String, String>) -> Replica {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_anonchat"));
        cmd.env_clear();
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd.envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn anonchat");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = watch::channel(0u64);
        let tx = Arc::new(tx);
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            let tx = tx.clone();
            let verbose = std::env::var("ANONCHAT_TEST_LOGS").is_ok();
            let name = name.to_string();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if verbose {
                        eprintln!("[{name}] {line}");
                    }
                    logs.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                    tx.send_modify(|n| *n += 1);
                }
            });
        }
        Replica {
            child: Some(child),
            name: name.to_string(),
            logs,
            log_changed: rx,
            http_addr: None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Log lines parsed as JSON (LOG_FORMAT=json); other lines are skipped.
    pub fn json_logs(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for a log line satisfying `pred`.
    pub async fn wait_log(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.log_changed.clone();
        loop {
            if let Some(l) = self.logs().into_iter().find(|l| pred(l)) {
                return Some(l);
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() {
                    return self.logs().into_iter().find(|l| pred(l));
                },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// Waits until the replica logs its HTTP address and "replica running".
    pub async fn wait_running(&mut self) {
        let line = self
            .wait_log(WAIT, |l| l.contains("http listening"))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{} never listened; logs:\n{}",
                    self.name,
                    self.logs().join("\n")
                )
            });
        let v: Value = serde_json::from_str(&line).expect("json log line");
        self.http_addr = v["addr"].as_str().and_then(|a| a.parse().ok());
        self.wait_log(WAIT, |l| l.contains("replica running"))
            .await
            .unwrap_or_else(|| {
                panic!("{} never ran; logs:\n{}", self.name, self.logs().join("\n"))
            });
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        if let Some(pid) = self.pid() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    return Some(status);
                }
            } else {
                return None;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// GET a path on the replica's HTTP endpoint: (status, body).
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        let addr = self
            .http_addr
            .expect("replica http address (call wait_running)");
        let r = reqwest::get(format!("http://{addr}{path}"))
            .await
            .expect("replica http");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// Update ids this replica logged as handled ("update handled" at debug).
    pub fn handled(&self) -> Vec<(i64, i64)> {
        self.json_logs()
            .iter()
            .filter(|v| v["message"] == "update handled")
            .filter_map(|v| Some((v["chat"].as_i64()?, v["update_id"].as_i64()?)))
            .collect()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis + fake Telegram + N replicas with a shared configuration.
pub struct Cluster {
    pub redis: RedisServer,
    pub tg: FakeTelegram,
    pub replicas: Vec<Replica>,
    pub env: HashMap<String, String>,
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
            spawned: 0,
        };
        for _ in 0..n {
            cluster.add_replica().await;
        }
        cluster
    }

    /// Starts one more replica and waits until it runs; returns its index.
    pub async fn add_replica(&mut self) -> usize {
        let idx = self.spawn_replica();
        self.replicas[idx].wait_running().await;
        idx
    }

    /// Starts one more replica without waiting; returns its index.
    pub fn spawn_replica(&mut self) -> usize {
        self.spawned += 1;
        let name = format!("r{}", self.spawned);
        let mut env = self.env.clone();
        env.insert("REPLICA_ID".into(), name.clone());
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

    /// Every (chat, update_id) any replica logged as handled, with repeats.
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

impl User {
    pub fn id(&self) -> i64 {
        self.info.id
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
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
