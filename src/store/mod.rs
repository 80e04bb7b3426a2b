//! The Redis side of anonchat: the shared connection and every Lua script,
//! behind typed calls.
//!
//! A replica keeps one auto-reconnecting [`ConnectionManager`] for ordinary
//! commands and scripts (redis-rs multiplexes concurrent calls over it), plus
//! one dedicated connection per owned partition for blocking `XREADGROUP`
//! (a blocking command would stall every other caller of a shared connection).
//!
//! The store owns every script (`src/scripts/`, loaded by [`scripts`] with one
//! convention) and decodes each script's reply into a type of [`crate::domain`]
//! ([`chat`] for the chat and budget scripts; this file for ingest, leases,
//! partitions and streams). A reply that does not fit is
//! [`StoreError::Reply`], never a disguised parse error. Every change that
//! touches more than one key is one script; every key name comes from
//! [`crate::keys`]. [`deferred`] lets a handler's writes ride with its
//! update's acknowledgement. `docs/redis.md` lists every key and script.

pub mod chat;
pub mod deferred;
pub mod moderation;
mod scripts;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{AsyncConnectionConfig, Client, RedisResult};
use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::domain::{Event, Lang};
use crate::keys::{Keys, GROUP};
use scripts::Scripts;

/// Idle time given to entries a stopping worker hands back: longer than
/// any partition lease, so the next owner takes them at once.
const GIVE_BACK_IDLE_MS: u64 = 24 * 3600 * 1000;

/// Lifetime of the per-update dedupe markers.
pub const SEEN_TTL_SECS: u64 = 24 * 3600;

/// Start-up failure talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "Redis at {url} is unreachable after {waited:?}: {cause}. Start Redis or fix REDIS_URL"
    )]
    Unreachable {
        url: String,
        waited: Duration,
        cause: String,
    },
    #[error("{0}")]
    Refused(String),
    #[error("Redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// A script answered something its decoder does not know (a bug, or a
    /// script and a binary of different versions).
    #[error("script {script} answered unexpectedly: {reply}")]
    Reply { script: &'static str, reply: String },
}

/// Result of a typed script call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Whether a Redis error is about reaching Redis (connection refused or
/// dropped, timeouts, a server loading or busy) rather than about the command.
pub fn is_transient(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.retry_method(),
            redis::RetryMethod::Reconnect
                | redis::RetryMethod::RetryImmediately
                | redis::RetryMethod::WaitAndRetry
        )
}

impl StoreError {
    /// Whether retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Redis(e) => is_transient(e),
            StoreError::Unreachable { .. } => true,
            StoreError::Refused(_) | StoreError::Reply { .. } => false,
        }
    }

    fn reply(script: &'static str, reply: impl std::fmt::Debug) -> StoreError {
        StoreError::Reply {
            script,
            reply: format!("{reply:?}"),
        }
    }
}

/// One update ready to be written to its partition.
#[derive(Debug, Clone)]
pub struct IngestItem {
    pub update_id: i64,
    pub partition: u32,
    pub chat: i64,
    pub raw: String,
}

/// The poller's stored offset (see [`Store::stored_offset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredOffset {
    pub offset: i64,
    pub age: Option<Duration>,
}

/// What the ingest script did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Written {
        added: u64,
        duplicates: u64,
    },
    /// The fence token is stale: another replica is the poller now.
    Fenced,
    /// A partition stream is full (`STREAM_MAXLEN`): nothing was written.
    Full,
}

/// Result of one partition tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickOutcome {
    /// This replica's fair share of partitions.
    pub target: u32,
    /// The partitions it owns now.
    pub owned: Vec<u32>,
}

/// One page of adopted pending entries.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub entries: Vec<Entry>,
    /// Where the next page starts; "0-0" when the scan is complete.
    pub cursor: String,
    /// Pending entries that had been deleted from the stream.
    pub lost: usize,
}

/// Which lease a renewal or release is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseName {
    Poller,
    Partition(u32),
}

impl LeaseName {
    fn arg(self) -> String {
        match self {
            LeaseName::Poller => "poller".to_string(),
            LeaseName::Partition(p) => p.to_string(),
        }
    }
}

/// What a stream entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A Telegram update (written by ingest); `raw` is its JSON.
    Update,
    /// An internal event for user `chat` (written by the timer script,
    /// field `k` = 'e'); `raw` is its JSON, decoded by [`event_from`].
    Event,
}

/// A stream entry as read by a worker.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    /// The Telegram update id; a unique negative id for an event.
    pub update_id: i64,
    pub chat: i64,
    pub raw: String,
    pub kind: EntryKind,
}

/// Decodes the JSON of an event entry (see `scripts/timers_due.lua`);
/// None when it is not one this binary knows.
pub fn event_from(raw: &str) -> Option<Event> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    let lang = Lang::from_code(v.get("lang").and_then(|l| l.as_str()).unwrap_or("en"));
    Some(match v.get("t")?.as_str()? {
        "search_timeout" => Event::SearchTimedOut { lang },
        "idle" => Event::ChatIdle { lang },
        "album" => Event::AlbumDue,
        "found" => Event::Found {
            lang,
            chat: v.get("chat")?.as_str()?.parse().ok()?,
        },
        _ => return None,
    })
}

/// A connection that counts its round trips (a pipeline or script call is
/// one), so `/metrics` and the benchmark can report Redis round trips per
/// relayed message.
#[derive(Clone)]
pub struct Counted<C> {
    inner: C,
    trips: Counter,
}

impl<C: redis::aio::ConnectionLike + Send> redis::aio::ConnectionLike for Counted<C> {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        self.trips.inc();
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        self.trips.inc();
        self.inner.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// Shared handle to Redis; cheap to clone.
#[derive(Clone)]
pub struct Store {
    client: Client,
    conn: ConnectionManager,
    trips: Counter,
    keys: Keys,
    scripts: std::sync::Arc<Scripts>,
    stream_maxlen: u64,
}

impl Store {
    /// Connects, retrying with a log line per attempt until `settings.redis_startup_timeout`.
    pub async fn connect(settings: &Settings) -> Result<Store, StoreError> {
        let url = settings.redis_url_redacted();
        let client = Client::open(settings.redis_url.expose_secret()).map_err(|e| {
            StoreError::Unreachable {
                url: url.clone(),
                waited: Duration::ZERO,
                cause: e.to_string(),
            }
        })?;
        let started = Instant::now();
        let mut attempt = 0u32;
        let conn = loop {
            attempt += 1;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(Duration::from_secs(5)))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_secs(2));
            match client.get_connection_manager_with_config(config).await {
                Ok(conn) => break conn,
                Err(e) => {
                    let waited = started.elapsed();
                    if waited >= settings.redis_startup_timeout {
                        return Err(StoreError::Unreachable {
                            url,
                            waited,
                            cause: e.to_string(),
                        });
                    }
                    tracing::warn!(attempt, redis = %url, error = %e, "Redis unreachable, retrying");
                    tokio::time::sleep(
                        Duration::from_millis(500)
                            .min(settings.redis_startup_timeout.saturating_sub(waited)),
                    )
                    .await;
                }
            }
        };
        Ok(Store {
            client,
            conn,
            trips: Counter::default(),
            keys: Keys::new(&settings.key_prefix),
            scripts: std::sync::Arc::new(Scripts::load()),
            stream_maxlen: settings.stream_maxlen,
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A clone of the shared multiplexed connection (counting round trips).
    pub fn conn(&self) -> Counted<ConnectionManager> {
        Counted {
            inner: self.conn.clone(),
            trips: self.trips.clone(),
        }
    }

    /// Round trips to Redis made through this store so far.
    pub fn round_trips(&self) -> Counter {
        self.trips.clone()
    }

    /// A new dedicated connection for blocking reads.
    pub async fn blocking_connection(
        &self,
        block: Duration,
    ) -> RedisResult<Counted<MultiplexedConnection>> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(block + Duration::from_secs(3)));
        let inner = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(Counted {
            inner,
            trips: self.trips.clone(),
        })
    }

    /// Tells the other replicas something was released (see [`crate::wakeups`]).
    pub async fn publish_event(&self, event: &str) -> RedisResult<()> {
        redis::cmd("PUBLISH")
            .arg(self.keys.events())
            .arg(event)
            .query_async::<()>(&mut self.conn())
            .await
    }

    /// A pub/sub connection subscribed to the events channel.
    pub async fn subscribe_events(&self) -> RedisResult<redis::aio::PubSub> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.keys.events()).await?;
        Ok(pubsub)
    }

    pub async fn ping(&self) -> RedisResult<()> {
        let mut c = self.conn();
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
    }

    /// Refuses a partition count different from the one the deployment was
    /// created with, unless every old stream is empty (drained).
    pub async fn check_partitions(&self, partitions: u32) -> Result<(), StoreError> {
        let mut c = self.conn();
        let key = self.keys.partitions_setting();
        let set: bool = redis::cmd("SET")
            .arg(&key)
            .arg(partitions)
            .arg("NX")
            .query_async::<Option<String>>(&mut c)
            .await?
            .is_some();
        if set {
            return Ok(());
        }
        let current: u32 = redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<String>>(&mut c)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(partitions);
        if current == partitions {
            return Ok(());
        }
        let mut waiting = 0u64;
        for p in 0..current {
            let len: u64 = redis::cmd("XLEN")
                .arg(self.keys.stream(p))
                .query_async(&mut c)
                .await?;
            waiting += len;
        }
        if waiting > 0 {
            return Err(StoreError::Refused(format!(
                "PARTITIONS={partitions} but this deployment uses {current} and {waiting} updates are still queued; \
                 keep PARTITIONS={current}, or stop ingest, let the replicas drain the streams, then change it"
            )));
        }
        redis::cmd("SET")
            .arg(&key)
            .arg(partitions)
            .query_async::<()>(&mut c)
            .await?;
        tracing::warn!(
            from = current,
            to = partitions,
            "partition count changed on a drained deployment"
        );
        Ok(())
    }

    /// Creates the consumer group on every partition stream (idempotent).
    pub async fn ensure_groups(&self, partitions: u32) -> RedisResult<()> {
        for p in 0..partitions {
            self.ensure_group(p).await?;
        }
        Ok(())
    }

    /// Creates the consumer group of one stream if it is missing.
    pub async fn ensure_group(&self, partition: u32) -> RedisResult<()> {
        let mut c = self.conn();
        let r: RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.keys.stream(partition))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut c)
            .await;
        match r {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    // ---- leases ---------------------------------------------------------------

    /// Takes the poller lease if free; returns the fencing token when held.
    pub async fn acquire_poller_lease(
        &self,
        replica: &str,
        lease: Duration,
    ) -> RedisResult<Option<String>> {
        self.scripts
            .lease_acquire
            .arg(self.keys.base())
            .arg(replica)
            .arg(lease.as_millis() as u64)
            .invoke_async(&mut self.conn())
            .await
    }

    /// Extends a lease still held under `token`; false when lost.
    pub async fn renew_lease(
        &self,
        lease: LeaseName,
        token: &str,
        ttl: Duration,
    ) -> RedisResult<bool> {
        let n: i64 = self
            .scripts
            .lease_renew
            .arg(self.keys.base())
            .arg(lease.arg())
            .arg(token)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(n == 1)
    }

    /// Deletes a lease only if it is still held under `token`.
    pub async fn release_lease(&self, lease: LeaseName, token: &str) -> RedisResult<bool> {
        let n: i64 = self
            .scripts
            .lease_release
            .arg(self.keys.base())
            .arg(lease.arg())
            .arg(token)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(n == 1)
    }

    /// Registers (or renews) `nonce` as the live process running as
    /// `replica`; false when another live process holds the id.
    pub async fn claim_instance(
        &self,
        replica: &str,
        nonce: &str,
        ttl: Duration,
    ) -> RedisResult<bool> {
        let n: i64 = self
            .scripts
            .instance_claim
            .arg(self.keys.base())
            .arg(replica)
            .arg(nonce)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(n == 1)
    }

    /// Gives the registration of `replica` up if it is still `nonce`'s.
    pub async fn release_instance(&self, replica: &str, nonce: &str) -> RedisResult<()> {
        self.scripts
            .instance_claim
            .arg(self.keys.base())
            .arg(replica)
            .arg(nonce)
            .arg(0)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
    }

    /// The stored next getUpdates offset (0 when none).
    pub async fn poller_offset(&self) -> RedisResult<i64> {
        let v: Option<i64> = redis::cmd("GET")
            .arg(self.keys.poller_offset())
            .query_async(&mut self.conn())
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// The stored next getUpdates offset (0 when none) and how long ago the
    /// batch that wrote it came (None when unknown), by Redis's clock.
    pub async fn stored_offset(&self) -> RedisResult<StoredOffset> {
        let (offset, at, (secs, micros)): (Option<i64>, Option<i64>, (i64, i64)) = redis::pipe()
            .cmd("GET")
            .arg(self.keys.poller_offset())
            .cmd("GET")
            .arg(self.keys.poller_offset_at())
            .cmd("TIME")
            .query_async(&mut self.conn())
            .await?;
        let now_ms = secs * 1000 + micros / 1000;
        Ok(StoredOffset {
            offset: offset.unwrap_or(0),
            age: at.map(|at| Duration::from_millis(now_ms.saturating_sub(at).max(0) as u64)),
        })
    }

    // ---- ingest ---------------------------------------------------------------

    /// Writes a batch in one script. `fence` is the poller token (None for the
    /// webhook); `next_offset` is stored with the batch when given.
    pub async fn ingest(
        &self,
        fence: Option<&str>,
        next_offset: Option<i64>,
        items: &[IngestItem],
    ) -> StoreResult<IngestOutcome> {
        let mut inv = self.scripts.ingest.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(fence.unwrap_or(""))
            .arg(next_offset.map(|o| o.to_string()).unwrap_or_default())
            .arg(SEEN_TTL_SECS)
            .arg(self.stream_maxlen);
        for item in items {
            inv.arg(item.update_id)
                .arg(item.partition)
                .arg(item.chat)
                .arg(&item.raw);
        }
        let v: redis::Value = inv.invoke_async(&mut self.conn()).await?;
        match v {
            redis::Value::Int(-1) => Ok(IngestOutcome::Fenced),
            redis::Value::Int(-2) => Ok(IngestOutcome::Full),
            other => match redis::from_redis_value::<(u64, u64)>(other.clone()) {
                Ok((added, duplicates)) => Ok(IngestOutcome::Written { added, duplicates }),
                Err(_) => Err(StoreError::reply("ingest", other)),
            },
        }
    }

    // ---- partitions -------------------------------------------------------------

    /// Heartbeat + renew + acquire; see `scripts/partitions_tick.lua`.
    pub async fn partitions_tick(
        &self,
        replica: &str,
        lease: Duration,
        partitions: u32,
        leaving: bool,
    ) -> RedisResult<TickOutcome> {
        let v: Vec<u32> = self
            .scripts
            .partitions_tick
            .arg(self.keys.base())
            .arg(replica)
            .arg(lease.as_millis() as u64)
            .arg(partitions)
            .arg(if leaving { "1" } else { "0" })
            .invoke_async(&mut self.conn())
            .await?;
        let mut v = v.into_iter();
        Ok(TickOutcome {
            target: v.next().unwrap_or(0),
            owned: v.collect(),
        })
    }

    /// Gives one partition up (only if this replica still owns it).
    pub async fn release_partition(&self, replica: &str, partition: u32) -> RedisResult<bool> {
        self.release_lease(LeaseName::Partition(partition), replica)
            .await
    }

    /// Moves up to `count` entries that other consumers left pending (idle for
    /// at least `min_idle`) to `consumer`, from `cursor` on. Returns them, the
    /// next cursor ("0-0" when the scan is complete) and how many pending
    /// entries had been trimmed away (lost; they are acknowledged and logged).
    pub async fn claim_pending(
        &self,
        conn: &mut Counted<MultiplexedConnection>,
        partition: u32,
        consumer: &str,
        min_idle: Duration,
        cursor: &str,
        count: usize,
    ) -> RedisResult<Claimed> {
        let stream = self.keys.stream(partition);
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(min_idle.as_millis() as u64)
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(conn)
            .await?;
        let lost = reply.deleted_ids.len();
        if lost > 0 {
            // Deleted while pending: nothing left to handle; acknowledge so
            // they stop showing as pending. The caller counts and logs them.
            let mut cmd = redis::cmd("XACK");
            cmd.arg(&stream).arg(GROUP);
            for id in &reply.deleted_ids {
                cmd.arg(id);
            }
            cmd.query_async::<()>(conn).await?;
        }
        let mut entries: Vec<Entry> = reply.claimed.iter().map(entry_from).collect();
        entries.sort_by_key(|a| stream_id_key(&a.id));
        Ok(Claimed {
            entries,
            cursor: reply.next_stream_id,
            lost,
        })
    }

    /// How many entries consumers other than `consumer` hold pending, and the
    /// names of consumers with nothing pending (safe to delete).
    pub async fn pending_elsewhere(
        &self,
        conn: &mut Counted<MultiplexedConnection>,
        partition: u32,
        consumer: &str,
    ) -> RedisResult<(u64, Vec<String>)> {
        let info: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(self.keys.stream(partition))
            .arg(GROUP)
            .query_async(conn)
            .await?;
        let mut elsewhere = 0;
        let mut idle = Vec::new();
        for c in info {
            let name: Option<String> = c
                .get("name")
                .and_then(|v| redis::from_redis_value_ref(v).ok());
            let pending: u64 = c
                .get("pending")
                .and_then(|v| redis::from_redis_value_ref(v).ok())
                .unwrap_or(0);
            let Some(name) = name else { continue };
            if name == consumer {
                continue;
            }
            if pending == 0 {
                idle.push(name);
            } else {
                elsewhere += pending;
            }
        }
        Ok((elsewhere, idle))
    }

    /// Deletes consumers that hold nothing pending (left by replicas that are gone).
    pub async fn delete_consumers(
        &self,
        conn: &mut Counted<MultiplexedConnection>,
        partition: u32,
        names: &[String],
    ) -> RedisResult<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for n in names {
            pipe.cmd("XGROUP")
                .arg("DELCONSUMER")
                .arg(self.keys.stream(partition))
                .arg(GROUP)
                .arg(n)
                .ignore();
        }
        pipe.query_async::<()>(conn).await
    }

    /// Re-reads this consumer's own pending entries after `after` (use "0"
    /// to start): entries Redis delivered but whose reply was lost.
    pub async fn read_own_pending(
        &self,
        conn: &mut Counted<MultiplexedConnection>,
        partition: u32,
        consumer: &str,
        after: &str,
        count: usize,
    ) -> RedisResult<Vec<Entry>> {
        self.read_group(conn, partition, consumer, count, None, after)
            .await
    }

    /// Reads new entries for this consumer, blocking up to `block`.
    pub async fn read_new(
        &self,
        conn: &mut Counted<MultiplexedConnection>,
        partition: u32,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> RedisResult<Vec<Entry>> {
        self.read_group(conn, partition, consumer, count, Some(block), ">")
            .await
    }

    async fn read_group(
        &self,
        conn: &mut Counted<MultiplexedConnection>,
        partition: u32,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
        from: &str,
    ) -> RedisResult<Vec<Entry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(b) = block {
            cmd.arg("BLOCK").arg(b.as_millis() as u64);
        }
        let reply: Option<StreamReadReply> = cmd
            .arg("STREAMS")
            .arg(self.keys.stream(partition))
            .arg(from)
            .query_async(conn)
            .await?;
        Ok(reply
            .map(|r| {
                r.keys
                    .into_iter()
                    .flat_map(|k| k.ids.into_iter())
                    .map(|id| entry_from(&id))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Acknowledges one handled entry.
    pub async fn ack(&self, partition: u32, id: &str) -> RedisResult<()> {
        redis::cmd("XACK")
            .arg(self.keys.stream(partition))
            .arg(GROUP)
            .arg(id)
            .query_async::<()>(&mut self.conn())
            .await
    }

    /// Acknowledges one handled entry together with the writes its handler
    /// deferred, in one round trip.
    pub async fn ack_with(
        &self,
        partition: u32,
        id: &str,
        deferred: &[redis::Cmd],
    ) -> RedisResult<()> {
        if deferred.is_empty() {
            return self.ack(partition, id).await;
        }
        let mut pipe = redis::pipe();
        for cmd in deferred {
            pipe.add_command(cmd.clone()).ignore();
        }
        pipe.cmd("XACK")
            .arg(self.keys.stream(partition))
            .arg(GROUP)
            .arg(id)
            .ignore();
        match pipe.query_async::<()>(&mut self.conn()).await {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                // Redis restarted and forgot its scripts: load and go again.
                self.load_map_store().await?;
                pipe.query_async::<()>(&mut self.conn()).await
            }
            other => other,
        }
    }

    /// Loads the map-store script, which runs by EVALSHA inside pipelines.
    async fn load_map_store(&self) -> RedisResult<()> {
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(&self.scripts.map_store_source)
            .query_async::<String>(&mut self.conn())
            .await
            .map(|_| ())
    }

    /// Marks every entry still pending for `consumer` as long idle, so the
    /// partition's next owner adopts them at once; returns how many.
    pub async fn give_back(&self, partition: u32, consumer: &str) -> RedisResult<u64> {
        self.scripts
            .give_back
            .arg(self.keys.base())
            .arg(partition)
            .arg(consumer)
            .arg(GROUP)
            .arg(GIVE_BACK_IDLE_MS)
            .invoke_async(&mut self.conn())
            .await
    }

    /// Drops entries older than `min_id` (all handled and acknowledged), but
    /// never one still pending for anyone, and reports how many entries
    /// remain (the partition's lag).
    pub async fn trim(&self, partition: u32, min_id: &str) -> RedisResult<u64> {
        let len: u64 = self
            .scripts
            .trim
            .arg(self.keys.base())
            .arg(partition)
            .arg(min_id)
            .arg(GROUP)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(len.saturating_sub(1))
    }
}

fn entry_from(id: &StreamId) -> Entry {
    let field = |name: &str| -> Option<String> {
        id.map
            .get(name)
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
    };
    Entry {
        id: id.id.clone(),
        update_id: field("u").and_then(|s| s.parse().ok()).unwrap_or(-1),
        chat: field("c").and_then(|s| s.parse().ok()).unwrap_or(0),
        raw: field("d").unwrap_or_default(),
        kind: match field("k").as_deref() {
            Some("e") => EntryKind::Event,
            _ => EntryKind::Update,
        },
    }
}

/// Orders stream ids numerically (`ms-seq`).
pub fn stream_id_key(id: &str) -> (u64, u64) {
    let mut it = id.split('-');
    let ms = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let seq = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (ms, seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_decode() {
        assert_eq!(
            event_from(r#"{"t":"search_timeout","lang":"ru"}"#),
            Some(Event::SearchTimedOut { lang: Lang::Ru })
        );
        assert_eq!(
            event_from(r#"{"t":"found","lang":"en","chat":"12"}"#),
            Some(Event::Found {
                lang: Lang::En,
                chat: 12
            })
        );
        assert_eq!(event_from(r#"{"t":"album"}"#), Some(Event::AlbumDue));
        assert_eq!(event_from(r#"{"t":"nope"}"#), None);
        assert_eq!(event_from("junk"), None);
    }
}
