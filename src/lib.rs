//! anonchat: an anonymous "chat with a stranger" Telegram bot that runs as any
//! number of identical replicas over one Redis.
//!
//! # Layout
//!
//! - [`config`]: the `Settings` every part reads; defaults, optional file, environment.
//! - [`telemetry`]: logging (text or JSON), `log` records bridged into `tracing`.
//! - [`app`]: builds the system from `Settings` and runs it until shutdown.
//! - [`cli`]: the command line (`run`, `healthcheck`, `set-webhook`, ...).
//! - [`keys`]: every Redis key the service uses, in one place.
//! - [`store`]: the Redis connection and every Lua script, behind typed calls.
//! - [`lease`]: the fenced poller lease (one elected `getUpdates` caller).
//! - [`ingest`]: getting updates from Telegram into the partitioned streams
//!   (long polling by the lease holder, or the webhook endpoint).
//! - [`partitions`]: which replica owns which stream partition, and rebalancing.
//! - [`signals`]: pub/sub wake-ups so hand-overs on shutdown are immediate.
//! - [`worker`]: consumes owned partitions; per-chat order, cross-chat concurrency,
//!   acknowledge after handling.
//! - [`bot`]: the teloxide handler tree; thin handlers that call services;
//!   texts and keyboards from the locale files.
//! - [`chat`]: the chat service: matching, leaving, routing, message maps,
//!   timers, albums; every change one Lua script.
//! - [`limiter`]: flood control shared by all replicas (outbound budgets,
//!   429 freezes, inbound throttle), GCRA in Redis.
//! - [`telegram`]: every outbound Bot API call: budgeted, bounded in flight,
//!   counted, classified, retried.
//! - [`timers`]: fires search/idle timeouts and album flushes, once, from any replica.
//! - [`http`]: `/healthz`, `/readyz`, `/metrics` and the webhook endpoint.
//! - [`metrics`]: Prometheus counters and gauges.

rust_i18n::i18n!("locales", fallback = "en");

pub mod app;
pub mod bot;
pub mod chat;
pub mod cli;
pub mod config;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod lease;
pub mod limiter;
pub mod metrics;
pub mod partitions;
pub mod signals;
pub mod store;
pub mod telegram;
pub mod telemetry;
pub mod timers;
pub mod worker;
