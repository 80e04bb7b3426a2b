//! The command line (clap): `anonchat [--config FILE] [run|healthcheck|set-webhook|delete-webhook|env-example]`.
//!
//! Every failure here becomes one line on stderr and a non-zero exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use teloxide::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::app::Application;
use crate::config::{Settings, VARIABLES};
use crate::ingest::ALLOWED_UPDATES;
use crate::telegram::make_bot;
use crate::telemetry;

#[derive(Parser, Debug)]
#[command(
    name = "anonchat",
    version,
    about = "Anonymous chat-with-a-stranger Telegram bot"
)]
pub struct Cli {
    /// Optional TOML file with settings (environment variables override it).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a replica (the default).
    Run,
    /// Exit 0 when the local replica answers /healthz (for container health checks).
    Healthcheck,
    /// Register WEBHOOK_URL with Telegram (an explicit operator step for INGEST=webhook).
    SetWebhook,
    /// Remove the webhook so that long polling works again.
    DeleteWebhook,
    /// Print a .env.example listing every variable with its default.
    EnvExample,
}

/// Entry point of the binary.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run);
    match command {
        Command::EnvExample => {
            print!("{}", env_example());
            return ExitCode::SUCCESS;
        }
        Command::Healthcheck => return healthcheck().await,
        _ => {}
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    telemetry::init(settings.log_format, &settings.rust_log);
    match command {
        Command::SetWebhook => set_webhook(&settings).await,
        Command::DeleteWebhook => delete_webhook(&settings).await,
        _ => run(settings).await,
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("anonchat: {e}");
    ExitCode::FAILURE
}

async fn run(settings: Settings) -> ExitCode {
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            return fail(e);
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    app.run(shutdown).await;
    ExitCode::SUCCESS
}

/// Cancels `shutdown` on SIGTERM (docker stop) or SIGINT (Ctrl-C).
async fn wait_for_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops gracefully");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
}

/// Checks the local replica's `/healthz`; reads only `HTTP_ADDR`.
async fn healthcheck() -> ExitCode {
    let addr = std::env::var("HTTP_ADDR").unwrap_or_else(|_| "0.0.0.0:8080".into());
    let port = addr.rsplit(':').next().unwrap_or("8080");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => fail(format!("{url} answered {}", r.status())),
        Err(e) => fail(format!("{url} unreachable: {e}")),
    }
}

async fn set_webhook(settings: &Settings) -> ExitCode {
    let Some(url) = settings.webhook_url.clone() else {
        return fail("configuration error: WEBHOOK_URL is required for set-webhook");
    };
    let Some(secret) = settings.webhook_secret.as_ref() else {
        return fail("configuration error: WEBHOOK_SECRET is required for set-webhook");
    };
    let bot = match make_bot(settings) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let allowed = ALLOWED_UPDATES
        .iter()
        .filter_map(|u| serde_json::from_value(serde_json::Value::String(u.to_string())).ok())
        .collect::<Vec<teloxide::types::AllowedUpdate>>();
    match bot
        .set_webhook(url.clone())
        .secret_token(secret.expose_secret().to_string())
        .allowed_updates(allowed)
        // One delivery at a time: with more, Telegram sends a chat's next
        // update before the previous one is answered, and two replicas can
        // store them in either order. One connection keeps each chat's
        // updates in order (each is stored before it is answered).
        .max_connections(1)
        .await
    {
        Ok(_) => {
            println!("webhook set to {url}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("setWebhook failed: {e}")),
    }
}

async fn delete_webhook(settings: &Settings) -> ExitCode {
    let bot = match make_bot(settings) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    match bot.delete_webhook().await {
        Ok(_) => {
            println!("webhook deleted");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("deleteWebhook failed: {e}")),
    }
}

/// The `.env.example` text, generated from the one list of variables.
pub fn env_example() -> String {
    let mut out = String::from(
        "# anonchat configuration. Copy to .env and set BOT_TOKEN.\n\
         # Every variable is optional except BOT_TOKEN; the value shown is the default.\n",
    );
    for (name, default, comment) in VARIABLES {
        out.push_str(&format!("\n# {comment}\n"));
        match default {
            Some(v) => out.push_str(&format!("{name}={v}\n")),
            None if *name == "BOT_TOKEN" => out.push_str(&format!("{name}=\n")),
            None => out.push_str(&format!("# {name}=\n")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_example_file_lists_every_variable_with_its_default() {
        let committed = include_str!("../.env.example");
        assert_eq!(
            committed,
            super::env_example(),
            "regenerate with: cargo run -- env-example > .env.example"
        );
    }

    #[test]
    fn readme_documents_every_variable() {
        let readme = include_str!("../README.md");
        for (name, _, _) in crate::config::VARIABLES {
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "README lacks {name}"
            );
        }
    }
}
