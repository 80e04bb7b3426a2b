//! anonchat: an anonymous "chat with a stranger" Telegram bot that runs as any
//! number of identical replicas over one Redis.
//!
//! # Layout
//!
//! Layers, each importing only the layers below it:
//!
//! 1. Foundations, no I/O of their own:
//!    - [`domain`]: plain types (languages, user states, what Search, Stop,
//!      routing, blocks, reports and decisions did, fired timers, settings,
//!      budgets); no Telegram or Redis types.
//!    - [`config`]: the `Settings` every part reads; defaults, optional file, environment.
//!    - [`keys`]: every Redis key name, for Rust and (generated) for the Lua scripts.
//!    - [`metrics`]: Prometheus counters and gauges; [`health`]: readiness;
//!      [`fence`]: the local validity of partition leases.
//!    - [`telemetry`]: logging (text or JSON), `log` records bridged into `tracing`.
//! 2. Adapters to Redis and Telegram:
//!    - [`store`]: the Redis connections and every Lua script, behind typed calls.
//!    - [`chat`]: the chat service (matching, leaving, routing, message maps,
//!      timers, albums, settings) with this deployment's timeouts and budgets.
//!    - [`moderation`]: the moderation service (blocks, reports with their
//!      evidence, the moderation queue's recipients, admins' decisions, bans
//!      and auto-suspension).
//!    - [`limiter`]: send budgets shared by all replicas (reservations, 429 freezes).
//!    - [`telegram`]: every outbound Bot API call: budgeted, bounded in flight,
//!      counted, classified, retried.
//!    - [`lease`]: the fenced poller lease; [`wakeups`]: pub/sub wake-ups
//!      between replicas so hand-overs are immediate.
//!    - [`instance`]: one live process per `REPLICA_ID` (a second is refused).
//! 3. [`bot`]: the teloxide handler tree; thin handlers over [`bot::Deps`],
//!    texts and keyboards from the locale files.
//! 4. The replica runtime, sharing [`runtime::Runtime`]:
//!    - [`ingest`]: updates from Telegram into the partitioned streams (long
//!      polling by the lease holder, or the webhook endpoint).
//!    - [`partitions`]: which replica owns which stream partition, and rebalancing.
//!    - [`worker`]: consumes owned partitions; per-chat order, cross-chat
//!      concurrency, acknowledge after handling.
//!    - [`timers`]: fires search/idle timeouts and album windows, once, from any
//!      replica, as events into the users' partition streams.
//!    - [`http`]: `/healthz`, `/readyz`, `/metrics`, and the webhook endpoint
//!      (on its own listener with `WEBHOOK_ADDR`); time and size limits.
//! 5. [`app`] builds the system from `Settings` and runs it until shutdown;
//!    [`cli`] is the command line (`run`, `healthcheck`, `set-webhook`, ...).
//!    Nothing imports them but `main`.
//!
//! The fake Telegram Bot API and the process kit for tests and benchmarks live
//! in the `anonchat-testkit` workspace member, not in this crate.

rust_i18n::i18n!("locales", fallback = "en");

pub mod config;
pub mod domain;
pub mod fence;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod telemetry;

pub mod chat;
pub mod instance;
pub mod lease;
pub mod limiter;
pub mod moderation;
pub mod store;
pub mod telegram;
pub mod wakeups;

pub mod bot;

pub mod http;
pub mod ingest;
pub mod partitions;
pub mod runtime;
pub mod timers;
pub mod worker;

pub mod app;
pub mod cli;
