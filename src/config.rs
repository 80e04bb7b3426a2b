//! Settings: one struct, loaded once at start-up.
//!
//! Layers, later ones win: built-in defaults, then an optional TOML file
//! (`--config FILE`), then environment variables named exactly like the keys
//! in upper case (`BOT_TOKEN`, `REDIS_URL`, ...). The file uses the same names
//! in lower case.
//!
//! Every value is read as text and validated here, so a bad value fails at
//! start-up with one line naming the variable, instead of a serde message about
//! a struct field. Secrets (`BOT_TOKEN`, a password inside `REDIS_URL`,
//! `WEBHOOK_SECRET`) are wrapped so that neither `Debug` nor logs show them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// How updates get from Telegram into Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestMode {
    /// One elected replica long-polls `getUpdates`.
    Polling,
    /// Every replica serves the webhook endpoint.
    Webhook,
}

/// What happens to a link or @mention early in a chat (`LINK_POLICY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPolicy {
    /// Relayed like anything else.
    Allow,
    /// Held; the receiver is asked whether to show it.
    Hold,
    /// Refused; the sender is told.
    Block,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A configuration error: one line, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// Everything a replica needs to know, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bot_token: SecretString,
    pub redis_url: SecretString,
    pub telegram_api_url: Url,
    pub http_addr: SocketAddr,
    /// Where the webhook endpoint listens (INGEST=webhook); None: on `http_addr`.
    pub webhook_addr: Option<SocketAddr>,
    /// Time limit of one HTTP request, its body included.
    pub http_timeout: Duration,
    pub key_prefix: String,
    pub replica_id: String,
    pub log_format: LogFormat,
    pub rust_log: String,
    pub admin_ids: Vec<i64>,
    /// Where reports go; None: each of `admin_ids` privately.
    pub moderation_chat_id: Option<i64>,
    pub evidence_messages: u32,
    pub reports_per_hour: u32,
    /// Distinct reporters that suspend a user (0 = never).
    pub auto_suspend_reporters: u32,
    pub auto_suspend_window: Duration,
    pub shutdown_grace: Duration,
    pub redis_startup_timeout: Duration,
    pub ingest: IngestMode,
    pub webhook_secret: Option<SecretString>,
    pub webhook_path: String,
    pub webhook_url: Option<Url>,
    pub partitions: u32,
    pub poller_lease: Duration,
    pub partition_lease: Duration,
    pub poll_timeout_secs: u32,
    pub worker_concurrency: usize,
    pub handler_max_attempts: u32,
    pub stream_maxlen: u64,
    pub telegram_timeout: Duration,
    pub search_timeout: Duration,
    pub chat_idle_timeout: Duration,
    pub rejoin_cooldown: Duration,
    pub album_window: Duration,
    pub tg_global_rate: f64,
    pub tg_chat_rate: f64,
    pub tg_chat_burst: u32,
    pub inbound_rate: f64,
    pub inbound_burst: u32,
    pub inbound_notice_secs: u64,
    /// A relay whose send slot is further away is dropped (sender told).
    pub max_send_wait: Duration,
    /// Search/Next presses one user may make per minute (also the burst).
    pub next_rate_per_min: u32,
    pub max_inflight_sends: usize,
    pub max_buffered_updates: usize,
    /// Version of the rules users accept before their first search; raising
    /// it asks everyone again. 0: no acceptance asked.
    pub rules_version: u32,
    /// Message kinds relayed to the partner (names of [`RELAY_KIND_NAMES`]);
    /// any other kind is refused with a notice to the sender.
    pub relay_kinds: Vec<String>,
    pub link_policy: LinkPolicy,
    /// The link policy applies to this many first messages of a chat.
    pub link_hold_messages: u64,
    /// How long reports, moderation counts, bans' records and the audit
    /// trail are kept (even after `/deletedata`); stated by `/privacy`.
    pub report_retention: Duration,
    /// Where the handled-updates journal goes (a test hook; off when None).
    pub handled_journal: Option<std::path::PathBuf>,
}

/// Names of the message kinds `RELAY_KINDS` can list (see
/// `domain::MessageKind`); `other` is anything else Telegram may send.
pub const RELAY_KIND_NAMES: &[&str] = &[
    "text",
    "photo",
    "video",
    "animation",
    "audio",
    "document",
    "voice",
    "video_note",
    "sticker",
    "location",
    "venue",
    "poll",
    "dice",
    "contact",
    "story",
    "other",
];

/// Every variable: name, default (None = required or optional without default),
/// and the one-line comment that `.env.example` carries.
pub const VARIABLES: &[(&str, Option<&str>, &str)] = &[
    ("BOT_TOKEN", None, "Bot token from @BotFather (required)"),
    (
        "REDIS_URL",
        Some("redis://127.0.0.1:6379"),
        "Redis server shared by all replicas",
    ),
    (
        "TELEGRAM_API_URL",
        Some("https://api.telegram.org"),
        "Bot API base URL (tests point it at the fake)",
    ),
    (
        "HTTP_ADDR",
        Some("0.0.0.0:8080"),
        "Address for /healthz, /readyz, /metrics, and the webhook unless WEBHOOK_ADDR is set (port 0 = any free port)",
    ),
    (
        "WEBHOOK_ADDR",
        None,
        "Separate public address for the webhook endpoint (INGEST=webhook), so /metrics stays private; unset: the webhook is on HTTP_ADDR",
    ),
    (
        "HTTP_TIMEOUT_SECS",
        Some("10"),
        "Time limit of one HTTP request to the replica, reading its body included",
    ),
    (
        "KEY_PREFIX",
        Some("anonchat"),
        "Prefix of every Redis key, so several bots can share one Redis",
    ),
    (
        "REPLICA_ID",
        None,
        "Name of this replica (default: hostname-pid)",
    ),
    ("LOG_FORMAT", Some("text"), "text or json"),
    (
        "RUST_LOG",
        Some("info"),
        "Log filter, e.g. info or anonchat=debug",
    ),
    (
        "ADMIN_IDS",
        Some(""),
        "Comma-separated Telegram user ids of operators",
    ),
    (
        "MODERATION_CHAT_ID",
        None,
        "Chat (a group or channel the bot is in) that gets reports with their buttons; unset: every ADMIN_IDS user privately",
    ),
    (
        "EVIDENCE_MESSAGES",
        Some("5"),
        "The reported user's last messages copied to moderators with a report (0-20)",
    ),
    (
        "REPORTS_PER_HOUR",
        Some("5"),
        "Reports one user may make per hour",
    ),
    (
        "AUTO_SUSPEND_REPORTERS",
        Some("3"),
        "Distinct reporters within AUTO_SUSPEND_WINDOW that suspend a user until an admin decides (0 = never)",
    ),
    (
        "AUTO_SUSPEND_WINDOW",
        Some("24h"),
        "Window of AUTO_SUSPEND_REPORTERS (seconds, or 30s / 10m / 1h)",
    ),
    (
        "SHUTDOWN_GRACE_SECS",
        Some("10"),
        "Seconds to finish in-flight work after SIGTERM",
    ),
    (
        "REDIS_STARTUP_TIMEOUT_SECS",
        Some("30"),
        "How long to retry an unreachable Redis at start-up",
    ),
    (
        "INGEST",
        Some("polling"),
        "polling (one elected replica calls getUpdates) or webhook",
    ),
    (
        "WEBHOOK_SECRET",
        None,
        "Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token (required for webhook)",
    ),
    (
        "WEBHOOK_PATH",
        Some("/telegram/webhook"),
        "Path of the webhook endpoint (on WEBHOOK_ADDR, or HTTP_ADDR)",
    ),
    (
        "WEBHOOK_URL",
        None,
        "Public URL registered by `anonchat set-webhook`",
    ),
    (
        "PARTITIONS",
        Some("64"),
        "Number of Redis stream partitions (fixed for a deployment)",
    ),
    (
        "POLLER_LEASE_MS",
        Some("5000"),
        "Poller lease time; a dead poller is replaced within this",
    ),
    (
        "PARTITION_LEASE_MS",
        Some("5000"),
        "Partition lease time; a dead replica's partitions move within this",
    ),
    (
        "POLL_TIMEOUT_SECS",
        Some("25"),
        "getUpdates long-poll timeout (at most 50)",
    ),
    (
        "WORKER_CONCURRENCY",
        Some("64"),
        "Updates handled at once per replica (different chats)",
    ),
    (
        "HANDLER_MAX_ATTEMPTS",
        Some("3"),
        "Attempts before an update that fails by itself is skipped (Redis or Telegram outages are retried without limit)",
    ),
    (
        "STREAM_MAXLEN",
        Some("200000"),
        "Entries per partition stream; when one is full, ingest waits instead of trimming unhandled entries",
    ),
    (
        "TELEGRAM_TIMEOUT_SECS",
        Some("15"),
        "Timeout of one Bot API call (other than long polling)",
    ),
    (
        "SEARCH_TIMEOUT",
        Some("10m"),
        "A search with no match ends after this (seconds, or 30s / 10m / 1h)",
    ),
    (
        "CHAT_IDLE_TIMEOUT",
        Some("1h"),
        "A chat with no messages ends after this (seconds, or 30s / 10m / 1h)",
    ),
    (
        "REJOIN_COOLDOWN_SECS",
        Some("60"),
        "Two users who just left each other are not matched again for this long",
    ),
    (
        "ALBUM_WINDOW_MS",
        Some("800"),
        "How long the parts of an album are gathered before relaying them together",
    ),
    (
        "TG_GLOBAL_RATE",
        Some("30"),
        "Messages per second the bot sends overall, across all replicas (Telegram: about 30)",
    ),
    (
        "TG_CHAT_RATE",
        Some("1"),
        "Messages per second sustained into one chat, across all replicas (Telegram: about 1)",
    ),
    (
        "TG_CHAT_BURST",
        Some("3"),
        "Messages one chat may receive in a short burst",
    ),
    (
        "INBOUND_RATE",
        Some("1"),
        "Messages per second one user may send sustained before the excess is dropped",
    ),
    (
        "INBOUND_BURST",
        Some("10"),
        "Messages one user may send in a burst before throttling starts",
    ),
    (
        "INBOUND_NOTICE_SECS",
        Some("10"),
        "A throttled user is told at most once per this many seconds",
    ),
    (
        "MAX_SEND_WAIT",
        Some("30s"),
        "A relay whose send slot is further away than this is dropped and its sender told the bot is overloaded (1s to 10m)",
    ),
    (
        "NEXT_RATE_PER_MIN",
        Some("10"),
        "Search/Next presses one user may make per minute (also the burst); over it a press does nothing and the user is told once",
    ),
    (
        "MAX_INFLIGHT_SENDS",
        Some("64"),
        "Bot API calls in flight at once per replica",
    ),
    (
        "MAX_BUFFERED_UPDATES",
        Some("2048"),
        "Stream entries a replica holds in memory at once (the backlog stays in Redis)",
    ),
    (
        "RULES_VERSION",
        Some("1"),
        "Version of the rules and 18+ confirmation accepted before the first search; raise it to ask everyone again (0 = ask nobody)",
    ),
    (
        "RELAY_KINDS",
        Some("text,photo,video,animation,audio,document,voice,video_note,sticker,location,venue,poll,dice,other"),
        "Comma-separated message kinds relayed to the stranger (text, photo, video, animation, audio, document, voice, video_note, sticker, location, venue, poll, dice, contact, story, other); others are refused with a notice. Contacts and stories reveal identities",
    ),
    (
        "LINK_POLICY",
        Some("hold"),
        "A link or @mention in the first LINK_HOLD_MESSAGES messages of a chat: allow, hold (the receiver is asked whether to show it) or block",
    ),
    (
        "LINK_HOLD_MESSAGES",
        Some("10"),
        "How many first messages of a chat LINK_POLICY applies to",
    ),
    (
        "REPORT_RETENTION",
        Some("90d"),
        "How long reports about a user and bans are kept, even after /deletedata (days, or 90d; 1 to 3650)",
    ),
    (
        "HANDLED_JOURNAL",
        None,
        "Test hook: append one JSON line per handled update (update_id, chat, partition, time) to this file; off when unset",
    ),
];

impl Settings {
    /// Loads settings from the optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    /// Loads settings from the optional file and the given environment map
    /// (tests pass their own map instead of touching the process environment).
    pub fn load_from(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder();
        for (name, default, _) in VARIABLES {
            if let Some(value) = default {
                builder = builder
                    .set_default(name.to_ascii_lowercase(), *value)
                    .map_err(|e| ConfigError(format!("{name}: {e}")))?;
            }
        }
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "--config: file {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let known: HashMap<String, String> = env
            .iter()
            .filter(|(k, _)| VARIABLES.iter().any(|(name, _, _)| name == k))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        builder = builder.add_source(config::Environment::default().source(Some(known)));
        let merged = builder
            .build()
            .map_err(|e| ConfigError(format!("cannot read configuration: {e}")))?;
        let raw: HashMap<String, config::Value> = merged
            .try_deserialize()
            .map_err(|e| ConfigError(format!("cannot read configuration: {e}")))?;
        let raw = Raw(raw
            .into_iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.to_string()))
            .collect());
        raw.validate()
    }

    /// A printable form of the Redis URL with any password hidden.
    pub fn redis_url_redacted(&self) -> String {
        redact_url(self.redis_url.expose_secret())
    }
}

/// Hides the password of a URL (`redis://:***@host:6379`).
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<unparsable url>".to_string(),
    }
}

struct Raw(HashMap<String, String>);

impl Raw {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn string(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .map(str::to_string)
            .ok_or_else(|| ConfigError(format!("{name} must not be empty")))
    }

    fn number<T>(&self, name: &str, min: T, max: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let text = self.string(name)?;
        let value: T = text
            .parse()
            .map_err(|_| ConfigError(format!("{name} must be a number, got {text:?}")))?;
        if value < min || value > max {
            return Err(ConfigError(format!(
                "{name} must be between {min} and {max}, got {value}"
            )));
        }
        Ok(value)
    }

    /// A whole number of days (`90` or `90d`), from 1 to `max`.
    fn days(&self, name: &str, max: u64) -> Result<Duration, ConfigError> {
        let text = self.string(name)?;
        let digits = text.trim().strip_suffix('d').unwrap_or(text.trim());
        match digits.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Duration::from_secs(n * 86_400))
            }
            _ => Err(ConfigError(format!(
                "{name} must be a number of days like 90 or 90d, from 1 to {max}; got {text:?}"
            ))),
        }
    }

    /// A duration as whole seconds (`90`) or with a unit (`30s`, `10m`, `1h`).
    fn duration(&self, name: &str) -> Result<Duration, ConfigError> {
        let text = self.string(name)?;
        let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => text.split_at(i),
            None => (text.as_str(), "s"),
        };
        let n: u64 = digits.parse().map_err(|_| {
            ConfigError(format!(
                "{name} must be seconds or a duration like 30s, 10m, 1h; got {text:?}"
            ))
        })?;
        let secs = match unit.trim() {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            _ => {
                return Err(ConfigError(format!(
                    "{name} must be seconds or a duration like 30s, 10m, 1h; got {text:?}"
                )))
            }
        };
        if secs == 0 || secs > 7 * 86_400 {
            return Err(ConfigError(format!(
                "{name} must be between 1 second and 7 days, got {text:?}"
            )));
        }
        Ok(Duration::from_secs(secs))
    }

    fn validate(self) -> Result<Settings, ConfigError> {
        let bot_token = self.get("BOT_TOKEN").ok_or_else(|| {
            ConfigError(
                "BOT_TOKEN is not set: create a bot with @BotFather in Telegram (/newbot) and put its token in BOT_TOKEN"
                    .into(),
            )
        })?;
        if !bot_token.contains(':') || bot_token.contains(char::is_whitespace) {
            return Err(ConfigError(
                "BOT_TOKEN does not look like a bot token (expected digits:letters, as @BotFather gives it)"
                    .into(),
            ));
        }
        let redis_url = self.string("REDIS_URL")?;
        if redis::Client::open(redis_url.as_str()).is_err() {
            return Err(ConfigError(format!(
                "REDIS_URL is not a valid Redis URL: {}",
                redact_url(&redis_url)
            )));
        }
        let api = self.string("TELEGRAM_API_URL")?;
        let telegram_api_url = Url::parse(&api)
            .ok()
            .filter(|u| u.scheme() == "http" || u.scheme() == "https")
            .ok_or_else(|| {
                ConfigError(format!(
                    "TELEGRAM_API_URL must be an http(s) URL, got {api:?}"
                ))
            })?;
        let addr = self.string("HTTP_ADDR")?;
        let http_addr: SocketAddr = addr.parse().map_err(|_| {
            ConfigError(format!(
                "HTTP_ADDR must be host:port such as 0.0.0.0:8080, got {addr:?}"
            ))
        })?;
        let webhook_addr = match self.get("WEBHOOK_ADDR") {
            None => None,
            Some(a) => Some(a.parse::<SocketAddr>().map_err(|_| {
                ConfigError(format!(
                    "WEBHOOK_ADDR must be host:port such as 0.0.0.0:8443, got {a:?}"
                ))
            })?),
        };
        if webhook_addr.is_some_and(|w| w == http_addr && w.port() != 0) {
            return Err(ConfigError(format!(
                "WEBHOOK_ADDR must differ from HTTP_ADDR ({http_addr}); leave it unset to share HTTP_ADDR"
            )));
        }
        let key_prefix = self.string("KEY_PREFIX")?;
        if key_prefix.contains(|c: char| c.is_whitespace() || c == '{' || c == '}') {
            return Err(ConfigError(format!(
                "KEY_PREFIX must not contain spaces or braces, got {key_prefix:?}"
            )));
        }
        let replica_id = match self.get("REPLICA_ID") {
            Some(id) => id.to_string(),
            None => format!(
                "{}-{}",
                gethostname::gethostname().to_string_lossy(),
                std::process::id()
            ),
        };
        let log_format = match self.string("LOG_FORMAT")?.to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError(format!(
                    "LOG_FORMAT must be text or json, got {other:?}"
                )))
            }
        };
        let rust_log = self.string("RUST_LOG")?;
        if tracing_subscriber::EnvFilter::try_new(&rust_log).is_err() {
            return Err(ConfigError(format!(
                "RUST_LOG is not a valid log filter: {rust_log:?}"
            )));
        }
        let admin_ids = match self.get("ADMIN_IDS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<i64>().map_err(|_| {
                        ConfigError(format!(
                            "ADMIN_IDS must be comma-separated Telegram user ids, got {s:?}"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let moderation_chat_id = match self.get("MODERATION_CHAT_ID") {
            None => None,
            Some(s) => Some(s.trim().parse::<i64>().map_err(|_| {
                ConfigError(format!(
                    "MODERATION_CHAT_ID must be a Telegram chat id such as -1001234567890, got {s:?}"
                ))
            })?),
        };
        if moderation_chat_id.is_some() && admin_ids.is_empty() {
            return Err(ConfigError(
                "MODERATION_CHAT_ID needs ADMIN_IDS: only they may press the moderation buttons"
                    .into(),
            ));
        }
        let ingest = match self.string("INGEST")?.to_ascii_lowercase().as_str() {
            "polling" => IngestMode::Polling,
            "webhook" => IngestMode::Webhook,
            other => {
                return Err(ConfigError(format!(
                    "INGEST must be polling or webhook, got {other:?}"
                )))
            }
        };
        let webhook_secret = self.get("WEBHOOK_SECRET").map(|s| s.to_string());
        if let Some(secret) = &webhook_secret {
            let ok = (1..=256).contains(&secret.len())
                && secret
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(ConfigError(
                    "WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -".into(),
                ));
            }
        }
        if ingest == IngestMode::Webhook && webhook_secret.is_none() {
            return Err(ConfigError(
                "WEBHOOK_SECRET is required when INGEST=webhook".into(),
            ));
        }
        let webhook_path = self.string("WEBHOOK_PATH")?;
        if !webhook_path.starts_with('/') {
            return Err(ConfigError(format!(
                "WEBHOOK_PATH must start with /, got {webhook_path:?}"
            )));
        }
        let webhook_url = match self.get("WEBHOOK_URL") {
            None => None,
            Some(u) => Some(
                Url::parse(u)
                    .ok()
                    .filter(|u| u.scheme() == "https" || u.scheme() == "http")
                    .ok_or_else(|| ConfigError(format!("WEBHOOK_URL must be a URL, got {u:?}")))?,
            ),
        };
        let relay_kinds = self
            .string("RELAY_KINDS")?
            .split(',')
            .map(|k| k.trim().to_ascii_lowercase())
            .filter(|k| !k.is_empty())
            .map(|k| {
                if RELAY_KIND_NAMES.contains(&k.as_str()) {
                    Ok(k)
                } else {
                    Err(ConfigError(format!(
                        "RELAY_KINDS: unknown kind {k:?}; known: {}",
                        RELAY_KIND_NAMES.join(", ")
                    )))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let link_policy = match self.string("LINK_POLICY")?.to_ascii_lowercase().as_str() {
            "allow" => LinkPolicy::Allow,
            "hold" => LinkPolicy::Hold,
            "block" => LinkPolicy::Block,
            other => {
                return Err(ConfigError(format!(
                    "LINK_POLICY must be allow, hold or block, got {other:?}"
                )))
            }
        };
        let poller_lease_ms: u64 = self.number("POLLER_LEASE_MS", 1000, 600_000)?;
        let partition_lease_ms: u64 = self.number("PARTITION_LEASE_MS", 1000, 600_000)?;
        Ok(Settings {
            bot_token: SecretString::from(bot_token.to_string()),
            redis_url: SecretString::from(redis_url),
            telegram_api_url,
            http_addr,
            webhook_addr,
            http_timeout: Duration::from_secs(self.number("HTTP_TIMEOUT_SECS", 1, 300)?),
            key_prefix,
            replica_id,
            log_format,
            rust_log,
            admin_ids,
            moderation_chat_id,
            evidence_messages: self.number("EVIDENCE_MESSAGES", 0, 20)?,
            reports_per_hour: self.number("REPORTS_PER_HOUR", 1, 1000)?,
            auto_suspend_reporters: self.number("AUTO_SUSPEND_REPORTERS", 0, 1000)?,
            auto_suspend_window: self.duration("AUTO_SUSPEND_WINDOW")?,
            shutdown_grace: Duration::from_secs(self.number("SHUTDOWN_GRACE_SECS", 1, 3600)?),
            redis_startup_timeout: Duration::from_secs(self.number(
                "REDIS_STARTUP_TIMEOUT_SECS",
                0,
                3600,
            )?),
            ingest,
            webhook_secret: webhook_secret.map(SecretString::from),
            webhook_path,
            webhook_url,
            partitions: self.number("PARTITIONS", 1, 4096)?,
            poller_lease: Duration::from_millis(poller_lease_ms),
            partition_lease: Duration::from_millis(partition_lease_ms),
            poll_timeout_secs: self.number("POLL_TIMEOUT_SECS", 0, 50)?,
            worker_concurrency: self.number("WORKER_CONCURRENCY", 1, 10_000)?,
            handler_max_attempts: self.number("HANDLER_MAX_ATTEMPTS", 1, 100)?,
            stream_maxlen: self.number("STREAM_MAXLEN", 1000, 100_000_000)?,
            telegram_timeout: Duration::from_secs(self.number("TELEGRAM_TIMEOUT_SECS", 1, 300)?),
            search_timeout: self.duration("SEARCH_TIMEOUT")?,
            chat_idle_timeout: self.duration("CHAT_IDLE_TIMEOUT")?,
            rejoin_cooldown: Duration::from_secs(self.number("REJOIN_COOLDOWN_SECS", 0, 86_400)?),
            album_window: Duration::from_millis(self.number("ALBUM_WINDOW_MS", 50, 10_000)?),
            tg_global_rate: self.number("TG_GLOBAL_RATE", 0.1, 1e7)?,
            tg_chat_rate: self.number("TG_CHAT_RATE", 0.01, 1e7)?,
            tg_chat_burst: self.number("TG_CHAT_BURST", 1, 1_000_000)?,
            inbound_rate: self.number("INBOUND_RATE", 0.01, 1e7)?,
            inbound_burst: self.number("INBOUND_BURST", 1, 1_000_000)?,
            inbound_notice_secs: self.number("INBOUND_NOTICE_SECS", 1, 86_400)?,
            max_send_wait: {
                let d = self.duration("MAX_SEND_WAIT")?;
                if d > Duration::from_secs(600) {
                    return Err(ConfigError(format!(
                        "MAX_SEND_WAIT must be between 1 second and 10 minutes, got {}s",
                        d.as_secs()
                    )));
                }
                d
            },
            next_rate_per_min: self.number("NEXT_RATE_PER_MIN", 1, 10_000)?,
            max_inflight_sends: self.number("MAX_INFLIGHT_SENDS", 1, 10_000)?,
            max_buffered_updates: self.number("MAX_BUFFERED_UPDATES", 64, 1_000_000)?,
            rules_version: self.number("RULES_VERSION", 0, 1_000_000)?,
            relay_kinds,
            link_policy,
            link_hold_messages: self.number("LINK_HOLD_MESSAGES", 0, 1_000_000)?,
            report_retention: self.days("REPORT_RETENTION", 3650)?,
            handled_journal: self.get("HANDLED_JOURNAL").map(std::path::PathBuf::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn defaults_apply_when_only_the_token_is_set() -> TestResult {
        let s = Settings::load_from(None, &env(&[("BOT_TOKEN", "1:abc")]))?;
        assert_eq!(s.key_prefix, "anonchat");
        assert_eq!(s.partitions, 64);
        assert_eq!(s.http_addr.port(), 8080);
        assert_eq!(s.ingest, IngestMode::Polling);
        assert_eq!(s.telegram_api_url.as_str(), "https://api.telegram.org/");
        Ok(())
    }

    #[test]
    fn relay_kinds_are_validated() -> TestResult {
        let s = Settings::load_from(None, &env(&[("BOT_TOKEN", "1:a")]))?;
        assert!(!s.relay_kinds.iter().any(|k| k == "contact" || k == "story"));
        assert!(s.relay_kinds.iter().any(|k| k == "text"));
        let s = Settings::load_from(
            None,
            &env(&[("BOT_TOKEN", "1:a"), ("RELAY_KINDS", "Text, contact")]),
        )?;
        assert_eq!(s.relay_kinds, vec!["text", "contact"]);
        let err = Settings::load_from(
            None,
            &env(&[("BOT_TOKEN", "1:a"), ("RELAY_KINDS", "text,phone")]),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("RELAY_KINDS") && err.contains("phone"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn missing_token_names_the_variable_and_botfather() {
        let err = Settings::load_from(None, &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("BOT_TOKEN"), "{err}");
        assert!(err.contains("@BotFather"), "{err}");
    }

    #[test]
    fn bad_number_names_the_variable() {
        let err = Settings::load_from(None, &env(&[("BOT_TOKEN", "1:a"), ("PARTITIONS", "many")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PARTITIONS"), "{err}");
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output() -> TestResult {
        let s = Settings::load_from(
            None,
            &env(&[
                ("BOT_TOKEN", "42:VERYSECRET"),
                ("REDIS_URL", "redis://:hunter2@localhost:6379"),
            ]),
        )?;
        let debug = format!("{s:?}");
        assert!(!debug.contains("VERYSECRET"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!s.redis_url_redacted().contains("hunter2"));
        Ok(())
    }

    #[test]
    fn send_wait_cap_and_search_budget_are_validated() -> TestResult {
        let d = Settings::load_from(None, &env(&[("BOT_TOKEN", "1:a")]))?;
        assert_eq!(d.max_send_wait, Duration::from_secs(30));
        assert_eq!(d.next_rate_per_min, 10);
        let s = Settings::load_from(
            None,
            &env(&[
                ("BOT_TOKEN", "1:a"),
                ("MAX_SEND_WAIT", "2m"),
                ("NEXT_RATE_PER_MIN", "4"),
            ]),
        )?;
        assert_eq!(s.max_send_wait, Duration::from_secs(120));
        assert_eq!(s.next_rate_per_min, 4);
        for (name, bad) in [
            ("MAX_SEND_WAIT", "0"),
            ("MAX_SEND_WAIT", "11m"),
            ("MAX_SEND_WAIT", "soon"),
            ("NEXT_RATE_PER_MIN", "0"),
            ("NEXT_RATE_PER_MIN", "many"),
        ] {
            let err = Settings::load_from(None, &env(&[("BOT_TOKEN", "1:a"), (name, bad)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{name}={bad}: {err}");
        }
        Ok(())
    }

    #[test]
    fn report_retention_is_days_and_validated() -> TestResult {
        let s = Settings::load_from(None, &env(&[("BOT_TOKEN", "1:a")]))?;
        assert_eq!(s.report_retention, Duration::from_secs(90 * 86_400));
        let s = Settings::load_from(
            None,
            &env(&[("BOT_TOKEN", "1:a"), ("REPORT_RETENTION", "30")]),
        )?;
        assert_eq!(s.report_retention, Duration::from_secs(30 * 86_400));
        for bad in ["0", "0d", "3651d", "soon", "-1d", "90h", "+5"] {
            let err = Settings::load_from(
                None,
                &env(&[("BOT_TOKEN", "1:a"), ("REPORT_RETENTION", bad)]),
            )
            .expect_err(bad)
            .to_string();
            assert!(err.contains("REPORT_RETENTION"), "{err}");
        }
        Ok(())
    }

    #[test]
    fn durations_take_seconds_or_units() -> TestResult {
        let s = Settings::load_from(
            None,
            &env(&[
                ("BOT_TOKEN", "1:a"),
                ("SEARCH_TIMEOUT", "90"),
                ("CHAT_IDLE_TIMEOUT", "2h"),
            ]),
        )?;
        assert_eq!(s.search_timeout, Duration::from_secs(90));
        assert_eq!(s.chat_idle_timeout, Duration::from_secs(7200));
        let d = Settings::load_from(None, &env(&[("BOT_TOKEN", "1:a")]))?;
        assert_eq!(d.search_timeout, Duration::from_secs(600));
        let err = Settings::load_from(
            None,
            &env(&[("BOT_TOKEN", "1:a"), ("SEARCH_TIMEOUT", "soon")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("SEARCH_TIMEOUT"), "{err}");
        Ok(())
    }

    #[test]
    fn webhook_addr_is_validated_and_optional() -> TestResult {
        let d = Settings::load_from(None, &env(&[("BOT_TOKEN", "1:a")]))?;
        assert_eq!(d.webhook_addr, None);
        assert_eq!(d.http_timeout, Duration::from_secs(10));
        let s = Settings::load_from(
            None,
            &env(&[("BOT_TOKEN", "1:a"), ("WEBHOOK_ADDR", "0.0.0.0:8443")]),
        )?;
        assert_eq!(s.webhook_addr.map(|a| a.port()), Some(8443));
        for (name, value) in [
            ("WEBHOOK_ADDR", "nowhere"),
            ("WEBHOOK_ADDR", "0.0.0.0:8080"),
            ("HTTP_TIMEOUT_SECS", "0"),
        ] {
            let err = Settings::load_from(None, &env(&[("BOT_TOKEN", "1:a"), (name, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{err}");
        }
        Ok(())
    }

    #[test]
    fn moderation_settings_are_validated() -> TestResult {
        let d = Settings::load_from(None, &env(&[("BOT_TOKEN", "1:a")]))?;
        assert_eq!(d.moderation_chat_id, None);
        assert_eq!(d.evidence_messages, 5);
        assert_eq!(d.report_retention, Duration::from_secs(90 * 86_400));
        assert_eq!(d.auto_suspend_reporters, 3);
        assert_eq!(d.auto_suspend_window, Duration::from_secs(86_400));
        let s = Settings::load_from(
            None,
            &env(&[
                ("BOT_TOKEN", "1:a"),
                ("ADMIN_IDS", "5"),
                ("MODERATION_CHAT_ID", "-1001234"),
            ]),
        )?;
        assert_eq!(s.moderation_chat_id, Some(-1001234));
        for (extra, name) in [
            (vec![("MODERATION_CHAT_ID", "-100")], "ADMIN_IDS"),
            (vec![("MODERATION_CHAT_ID", "group")], "MODERATION_CHAT_ID"),
            (vec![("EVIDENCE_MESSAGES", "50")], "EVIDENCE_MESSAGES"),
            (vec![("REPORT_RETENTION", "0")], "REPORT_RETENTION"),
        ] {
            let mut e = vec![("BOT_TOKEN", "1:a")];
            e.extend(extra);
            let err = Settings::load_from(None, &env(&e)).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
        Ok(())
    }

    #[test]
    fn webhook_mode_requires_a_secret() {
        let err = Settings::load_from(None, &env(&[("BOT_TOKEN", "1:a"), ("INGEST", "webhook")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("WEBHOOK_SECRET"), "{err}");
    }

    #[test]
    fn file_layer_is_overridden_by_environment() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("anonchat.toml");
        std::fs::write(&path, "key_prefix = \"fromfile\"\npartitions = 8\n")?;
        let s = Settings::load_from(
            Some(&path),
            &env(&[("BOT_TOKEN", "1:a"), ("PARTITIONS", "16")]),
        )?;
        assert_eq!(s.key_prefix, "fromfile");
        assert_eq!(s.partitions, 16);
        Ok(())
    }
}
