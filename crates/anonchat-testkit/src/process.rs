//! Real processes for tests and benchmarks: a `redis-server` on a free port
//! and `anonchat` replicas (whichever binary the caller names), with their logs
//! captured, SIGTERM/SIGKILL, and per-process CPU and memory read from `/proc`.
//!
//! Everything is killed on drop, so a failing test or an aborted benchmark
//! cleans up too. The root package's integration tests (`tests/it/harness.rs`)
//! and load benchmark (`benches/load/main.rs`) both build on this module.
//!
//! This is test support, not part of the service: it panics with a clear
//! message when a process cannot be started, which is what a test wants.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

/// Default time to wait for something that should happen.
pub const WAIT: Duration = Duration::from_secs(20);

/// A free TCP port on 127.0.0.1 (the OS picks it; tiny race accepted).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// `$REDIS_SERVER`, else `redis-server` on `PATH`.
pub fn redis_server_binary() -> PathBuf {
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
    dir: TempDir,
    aof: bool,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        Self::start_with(false).await
    }

    /// With `aof`, every write is fsynced to an append-only file, so a restart
    /// keeps everything acknowledged.
    pub async fn start_with(aof: bool) -> RedisServer {
        let dir = TempDir::new();
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
            .unwrap_or_else(|e| panic!("spawn redis-server: {e}"));
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

    /// Process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A connection for inspecting state. redis-rs times responses out after
    /// 500 ms by default, which a loaded 2-core machine can exceed: allow 10 s.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        redis::Client::open(self.url())
            .unwrap_or_else(|e| panic!("redis url: {e}"))
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap_or_else(|e| panic!("connect to test redis: {e}"))
    }

    /// Kills the server hard (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `CLIENT PAUSE <ms> ALL`: every client's commands (reads too) wait until
    /// the pause ends; connections stay open.
    pub async fn pause_clients(&self, pause: Duration) {
        let mut conn = self.conn().await;
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(pause.as_millis() as u64)
            .arg("ALL")
            .query_async::<()>(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CLIENT PAUSE: {e}"));
    }

    /// `CLIENT KILL TYPE normal`: closes every normal client connection (the
    /// replicas' commands and blocking reads; pub/sub connections are not
    /// "normal" and survive). Returns how many were closed.
    pub async fn kill_normal_clients(&self) -> u64 {
        let mut conn = self.conn().await;
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .query_async::<u64>(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CLIENT KILL TYPE normal: {e}"))
    }

    /// Kills the server and starts an empty one on the same port: every key
    /// is lost, as after a restart of a Redis without persistence.
    pub async fn restart_empty(&mut self) {
        self.kill();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
        self.relaunch().await;
    }

    /// Kills and starts the server again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.kill();
        self.relaunch().await;
    }

    async fn relaunch(&mut self) {
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
    /// The replica's `HANDLED_JOURNAL` and the directory holding it.
    journal: PathBuf,
    _journal_dir: TempDir,
}

/// One line of a replica's handled-updates journal (`HANDLED_JOURNAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    /// When it was handled, ns since the epoch (comparable across replicas).
    pub t: u128,
    pub update_id: i64,
    pub chat: i64,
}

impl Replica {
    /// Starts `binary` (an `anonchat` build) with exactly these environment
    /// variables (plus PATH, and `HANDLED_JOURNAL` in a directory of its
    /// own unless `env` names one). Set `ANONCHAT_TEST_LOGS` to echo its output.
    pub fn spawn(binary: &Path, name: &str, env: &HashMap<String, String>) -> Replica {
        let journal_dir = TempDir::new();
        let journal = env
            .get("HANDLED_JOURNAL")
            .map(PathBuf::from)
            .unwrap_or_else(|| journal_dir.0.join("handled.jsonl"));
        let mut cmd = Command::new(binary);
        cmd.env_clear();
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("HANDLED_JOURNAL", &journal);
        cmd.envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn anonchat: {e}"));
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
            journal,
            _journal_dir: journal_dir,
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
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("json log line: {e}"));
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
            // kill(1) rather than libc: the library has no libc dependency, and
            // a signal sent a millisecond later makes no difference here.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
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
            .unwrap_or_else(|| panic!("replica http address unknown (call wait_running)"));
        let r = reqwest::get(format!("http://{addr}{path}"))
            .await
            .unwrap_or_else(|e| panic!("replica http: {e}"));
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// Every update this replica handled, with repeats, from its journal.
    pub fn handled_events(&self) -> Vec<Handled> {
        let text = std::fs::read_to_string(&self.journal).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                Some(Handled {
                    t: u128::from(v["t"].as_u64()?),
                    update_id: v["update_id"].as_i64()?,
                    chat: v["chat"].as_i64()?,
                })
            })
            .collect()
    }

    /// (chat, update_id) of every update this replica handled, with repeats.
    pub fn handled(&self) -> Vec<(i64, i64)> {
        self.handled_events()
            .into_iter()
            .map(|h| (h.chat, h.update_id))
            .collect()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "anonchat-testkit-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create temp dir: {e}"));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after its closing
    // parenthesis are plain. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks_per_sec();
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks as f64,
    ))
}

/// `getconf CLK_TCK` (the unit of /proc times), read once; 100 if unknown,
/// which is what every mainstream Linux build uses.
fn clock_ticks_per_sec() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// Resident memory (`VmRSS`) of a process in bytes, from `/proc/<pid>/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_and_memory() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).is_some_and(|b| b > 0));
        assert!(cpu_time(pid).is_some());
    }
}
