//! Test support for anonchat, kept out of the service crate so the `anonchat`
//! binary does not link it. The integration tests (`tests/it`) and the load
//! benchmark (`benches/load`) of the root package use it as a dev-dependency.
//!
//! # Layout
//!
//! - [`fake`]: a faithful fake Telegram Bot API for tests, benchmarks and trials
//!   (also the standalone `fake-telegram` binary, `src/bin/fake-telegram.rs`).
//! - [`process`]: start real `redis-server` and `anonchat` processes, for tests and
//!   benchmarks; its items are re-exported here.

pub mod fake;
pub mod process;

pub use process::{
    cpu_time, free_port, redis_server_binary, rss_bytes, RedisServer, Replica, WAIT,
};
