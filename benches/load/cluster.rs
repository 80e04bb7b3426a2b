//! The system under test: one `redis-server`, the fake Telegram in this
//! process, and N real `anonchat` replicas (the release binary), plus the
//! resource snapshots every figure is computed from.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anonchat::keys::Keys;
use anonchat_testkit::fake::{FakeConfig, FakeTelegram, FloodConfig};
use anonchat_testkit::{cpu_time, free_port, rss_bytes, RedisServer, Replica};
use redis::aio::MultiplexedConnection;

/// Key prefix of every benchmark cluster (each has its own Redis anyway).
const PREFIX: &str = "bench";

pub struct Bench {
    pub redis: RedisServer,
    pub fake: FakeTelegram,
    pub replicas: Vec<Replica>,
    pub keys: Keys,
    conn: MultiplexedConnection,
}

/// Cumulative counters at one instant; figures are differences of two.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Instant,
    pub replica_cpu: Duration,
    pub redis_cpu: Duration,
    /// This process: the fake Telegram and the load generator.
    pub harness_cpu: Duration,
    pub redis_used_memory: u64,
    pub round_trips: u64,
    /// `INFO commandstats` calls by command, without the benchmark's own
    /// `info`/`memory`/`scan`/`hlen`/`hget` probes.
    pub commands: BTreeMap<String, u64>,
    /// Successful copies the fake has stored (relayed messages).
    pub copies: u64,
}

impl Snapshot {
    pub fn commands_total(&self) -> u64 {
        self.commands.values().sum()
    }
}

/// Environment that lifts the service's own rate limits so that only our code
/// is measured (unknown variables are ignored by the service).
pub const UNLIMITED: &[(&str, &str)] = &[
    ("TG_GLOBAL_RATE", "1000000"),
    ("TG_CHAT_RATE", "100000"),
    ("TG_CHAT_BURST", "100000"),
    ("INBOUND_RATE", "100000"),
    ("INBOUND_BURST", "100000"),
];

impl Bench {
    /// Starts Redis, the fake (with `flood` if given) and `n` replicas, and
    /// waits until every replica answers `/readyz` and all partitions are owned.
    pub async fn start(
        binary: &Path,
        n: usize,
        flood: Option<FloodConfig>,
        limits: &[(&str, &str)],
    ) -> anyhow::Result<Bench> {
        let redis = RedisServer::start().await;
        let fake = FakeTelegram::start(FakeConfig {
            flood,
            max_recorded_calls: 400_000,
            max_pending_updates: 1_000_000,
            ..FakeConfig::default()
        })
        .await?;
        let conn = redis.conn().await;
        let mut bench = Bench {
            redis,
            fake,
            replicas: Vec::new(),
            keys: Keys::new(PREFIX),
            conn,
        };
        let mut env: HashMap<String, String> = HashMap::new();
        for (k, v) in [
            ("BOT_TOKEN", bench.fake.token().to_string()),
            ("REDIS_URL", bench.redis.url()),
            ("TELEGRAM_API_URL", bench.fake.api_url()),
            ("KEY_PREFIX", PREFIX.to_string()),
            ("LOG_FORMAT", "json".to_string()),
            ("RUST_LOG", "warn".to_string()),
            ("PARTITIONS", "64".to_string()),
            // The handled journal is a test hook: off, as in production.
            ("HANDLED_JOURNAL", String::new()),
            // Simulated users search at once (no rules prompt).
            ("RULES_VERSION", "0".to_string()),
        ] {
            env.insert(k.into(), v);
        }
        for (k, v) in limits {
            env.insert(k.to_string(), v.to_string());
        }
        for i in 0..n {
            let mut env = env.clone();
            let name = format!("r{}", i + 1);
            // A fixed port instead of the "http listening" log line: at
            // RUST_LOG=warn the replica logs nothing when all is well.
            let port = free_port();
            env.insert("HTTP_ADDR".into(), format!("127.0.0.1:{port}"));
            env.insert("REPLICA_ID".into(), name.clone());
            let mut r = Replica::spawn(binary, &name, &env);
            r.http_addr = Some(([127, 0, 0, 1], port).into());
            bench.replicas.push(r);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for r in &mut bench.replicas {
            loop {
                if !r.is_running() {
                    anyhow::bail!("replica {} exited:\n{}", r.name, r.logs().join("\n"));
                }
                if let Ok(resp) =
                    reqwest::get(format!("http://{}/readyz", r.http_addr.expect("set"))).await
                {
                    if resp.status().is_success() {
                        break;
                    }
                }
                if Instant::now() > deadline {
                    anyhow::bail!(
                        "replica {} never became ready:\n{}",
                        r.name,
                        r.logs().join("\n")
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Every partition owned, and (with several replicas) spread over all of
        // them: otherwise the first seconds measure rebalancing.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let owners = bench.owners().await;
            let owned: usize = owners.values().sum();
            if owned == 64 && owners.len() == n && owners.values().all(|c| *c >= 64 / n - 2) {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("partitions never settled: {owners:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(bench)
    }

    /// Replica name -> partitions it owns.
    async fn owners(&mut self) -> HashMap<String, usize> {
        let mut pipe = redis::pipe();
        for p in 0..64 {
            pipe.cmd("GET").arg(self.keys.owner(p));
        }
        let vals: Vec<Option<String>> = pipe.query_async(&mut self.conn).await.unwrap_or_default();
        let mut out = HashMap::new();
        for v in vals.into_iter().flatten() {
            let name = v.split(' ').next().unwrap_or("").to_string();
            *out.entry(name).or_insert(0) += 1;
        }
        out
    }

    pub fn conn(&self) -> MultiplexedConnection {
        self.conn.clone()
    }

    pub fn replica_pids(&self) -> Vec<u32> {
        self.replicas.iter().filter_map(|r| r.pid()).collect()
    }

    pub fn replica_rss(&self) -> Vec<u64> {
        self.replica_pids()
            .into_iter()
            .map(|p| rss_bytes(p).unwrap_or(0))
            .collect()
    }

    /// Copies the fake accepted so far.
    pub fn copies(&self) -> u64 {
        let c = self.fake.counters();
        c.calls_by_method.get("copyMessage").copied().unwrap_or(0)
    }

    /// Edits the replicas have made to copies so far.
    pub fn edits(&self) -> u64 {
        let c = self.fake.counters();
        c.calls_by_method
            .get("editMessageText")
            .copied()
            .unwrap_or(0)
    }

    pub async fn info(&mut self, section: &str) -> String {
        redis::cmd("INFO")
            .arg(section)
            .query_async(&mut self.conn)
            .await
            .unwrap_or_default()
    }

    pub async fn used_memory(&mut self) -> u64 {
        let info = self.info("memory").await;
        info_field(&info, "used_memory").unwrap_or(0)
    }

    async fn commandstats(&mut self) -> BTreeMap<String, u64> {
        let info = self.info("commandstats").await;
        let mut out = BTreeMap::new();
        for line in info.lines() {
            let Some(rest) = line.strip_prefix("cmdstat_") else {
                continue;
            };
            let Some((name, stats)) = rest.split_once(':') else {
                continue;
            };
            if matches!(
                name,
                "info" | "memory" | "scan" | "hlen" | "hget" | "ping" | "hello" | "client|setinfo"
            ) {
                continue;
            }
            let calls = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            out.insert(name.to_string(), calls);
        }
        out
    }

    /// Sum of `anonchat_redis_round_trips_total` over the replicas.
    async fn round_trips(&self) -> u64 {
        let mut total = 0;
        for r in &self.replicas {
            let (status, body) = r.http_get("/metrics").await;
            if status != 200 {
                continue;
            }
            total += body
                .lines()
                .find_map(|l| l.strip_prefix("anonchat_redis_round_trips_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0) as u64;
        }
        total
    }

    pub async fn snapshot(&mut self) -> Snapshot {
        let replica_cpu = self.replica_pids().into_iter().filter_map(cpu_time).sum();
        let redis_cpu = self.redis.pid().and_then(cpu_time).unwrap_or_default();
        Snapshot {
            at: Instant::now(),
            replica_cpu,
            redis_cpu,
            harness_cpu: cpu_time(std::process::id()).unwrap_or_default(),
            redis_used_memory: self.used_memory().await,
            round_trips: self.round_trips().await,
            commands: self.commandstats().await,
            copies: self.copies(),
        }
    }

    /// Message-map entries (hash fields of every `mm:*` key).
    pub async fn map_entries(&mut self) -> (u64, u64) {
        let pattern = format!("{}mm:*", self.keys.base());
        let mut cursor: u64 = 0;
        let (mut keys, mut fields) = (0u64, 0u64);
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn)
                .await
                .unwrap_or((0, Vec::new()));
            if !batch.is_empty() {
                let mut pipe = redis::pipe();
                for k in &batch {
                    pipe.cmd("HLEN").arg(k);
                }
                let lens: Vec<u64> = pipe.query_async(&mut self.conn).await.unwrap_or_default();
                keys += batch.len() as u64;
                fields += lens.iter().sum::<u64>();
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        (keys, fields)
    }

    /// `MEMORY USAGE` of one key (0 when missing).
    pub async fn memory_usage(&mut self, key: &str) -> u64 {
        redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .query_async::<Option<u64>>(&mut self.conn)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

/// A numeric `field:value` line of an INFO answer.
pub fn info_field(info: &str, field: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}
