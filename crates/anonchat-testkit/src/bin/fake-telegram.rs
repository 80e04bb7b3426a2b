//! `fake-telegram`: the fake Telegram Bot API as a standalone server for local
//! trials and benchmarks. Prints the api url on stdout, runs until SIGINT/SIGTERM.
//! Drive simulated users through the JSON routes under `/control/...` (see
//! `anonchat_testkit::fake`).

use std::net::SocketAddr;

use anonchat_testkit::fake::{FakeConfig, FakeTelegram, FloodConfig};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "fake-telegram",
    about = "A fake Telegram Bot API server for tests and trials"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    bind: SocketAddr,
    /// The bot token the fake accepts.
    #[arg(long, default_value = "123456:TEST-TOKEN")]
    token: String,
    /// Enable Telegram-like flood control (about 1 msg/s per chat, 30 msg/s overall).
    #[arg(long)]
    flood: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = FakeConfig {
        bind: args.bind,
        token: args.token,
        flood: args.flood.then(FloodConfig::default),
        ..FakeConfig::default()
    };
    let fake = FakeTelegram::start(cfg)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.bind))?;
    println!("{}", fake.api_url());
    shutdown_signal().await;
    fake.shutdown();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
