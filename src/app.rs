//! Building the system from [`Settings`] and running it until shutdown.
//!
//! [`Application::build`] does everything that can fail at start-up (Redis,
//! the bot token, binding the HTTP port) so that a misconfigured replica exits
//! with one clear line. [`Application::run`] starts the long-running parts and,
//! when `shutdown` fires, stops taking work, lets in-flight updates finish and
//! be acknowledged within `SHUTDOWN_GRACE_SECS`, releases every lease, and returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use teloxide::prelude::*;
use teloxide::types::Me;
use teloxide::RequestError;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::bot::{self, commands, texts::Lang, Deps};
use crate::chat::ChatService;
use crate::config::{IngestMode, Settings};
use crate::health::Health;
use crate::instance::Instance;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::moderation::ModerationService;
use crate::runtime::{Journal, Runtime};
use crate::store::{Store, StoreError};
use crate::telegram::{make_bot, Outbound};
use crate::wakeups::{self, Wakeups};
use crate::{http, ingest, partitions, timers};

/// A start-up failure, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Telegram rejected BOT_TOKEN ({0}); get a valid token from @BotFather")]
    BadToken(String),
    #[error("Telegram Bot API at {url} is unreachable: {cause}")]
    TelegramUnreachable { url: String, cause: String },
    #[error("cannot listen on {var} {addr}: {cause}")]
    Bind {
        var: &'static str,
        addr: SocketAddr,
        cause: String,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("cannot open HANDLED_JOURNAL {path}: {cause}")]
    Journal { path: String, cause: String },
}

/// A replica, built and ready to run.
pub struct Application {
    ctx: Arc<Runtime>,
    listener: TcpListener,
    /// The webhook's own listener (`WEBHOOK_ADDR` in webhook mode).
    webhook_listener: Option<TcpListener>,
    instance: Instance,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        tracing::info!(
            replica = %settings.replica_id,
            redis = %settings.redis_url_redacted(),
            api = %settings.telegram_api_url,
            ingest = ?settings.ingest,
            partitions = settings.partitions,
            "starting anonchat"
        );
        let store = Store::connect(&settings).await?;
        store.check_partitions(settings.partitions).await?;
        store
            .ensure_groups(settings.partitions)
            .await
            .map_err(StoreError::from)?;
        // Before anything acts as this replica: refuse a second live process
        // with the same REPLICA_ID.
        let instance =
            Instance::register(&store, &settings.replica_id, settings.partition_lease).await?;
        let bot = make_bot(&settings).map_err(|e| StartupError::Client(e.to_string()))?;
        let me = get_me(&bot, &settings).await?;
        tracing::info!(bot = %me.username(), "bot identity confirmed");
        register_commands(&bot).await;
        let listener = bind("HTTP_ADDR", settings.http_addr).await?;
        let webhook_listener = match (settings.ingest, settings.webhook_addr) {
            (IngestMode::Webhook, Some(addr)) => Some(bind("WEBHOOK_ADDR", addr).await?),
            (IngestMode::Webhook, None) => {
                tracing::warn!(
                    http_addr = %settings.http_addr,
                    "INGEST=webhook without WEBHOOK_ADDR: the public webhook shares HTTP_ADDR with /metrics, /healthz and /readyz; set WEBHOOK_ADDR and expose only that"
                );
                None
            }
            (IngestMode::Polling, Some(_)) => {
                tracing::warn!("WEBHOOK_ADDR is set but INGEST=polling; not listening on it");
                None
            }
            (IngestMode::Polling, None) => None,
        };
        let journal = match &settings.handled_journal {
            None => None,
            Some(path) => Some(Journal::open(path).map_err(|e| StartupError::Journal {
                path: path.display().to_string(),
                cause: e.to_string(),
            })?),
        };
        let metrics = Arc::new(Metrics::with_round_trips(store.round_trips()));
        metrics.redis_up.set(1);
        let health = Health::default();
        health.set_redis_up(true);
        let deps = Arc::new(Deps {
            out: Outbound::new(
                bot,
                metrics.clone(),
                Limiter::new(store.clone(), &settings),
                settings.max_inflight_sends,
            ),
            chat: ChatService::new(store.clone(), &settings),
            moderation: ModerationService::new(store.clone(), &settings),
            metrics: metrics.clone(),
        });
        let ctx = Arc::new(Runtime {
            handler_slots: Semaphore::new(settings.worker_concurrency),
            buffered: Arc::new(Semaphore::new(settings.max_buffered_updates)),
            settings,
            store,
            metrics,
            health,
            wakeups: Arc::new(Wakeups::default()),
            deps,
            me,
            handlers: bot::schema(),
            journal,
        });
        Ok(Application {
            ctx,
            listener,
            webhook_listener,
            instance,
        })
    }

    /// The HTTP address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Runs until `shutdown` fires, then shuts down gracefully.
    pub async fn run(self, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let addr = self
            .listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(addr = %addr, "http listening");
        let http_stop = CancellationToken::new();
        let http_task = {
            let stop = http_stop.clone();
            let router = http::router(ctx.clone());
            let listener = self.listener;
            tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "http server failed");
                }
            })
        };
        let webhook_task = self.webhook_listener.map(|listener| {
            let addr = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            tracing::info!(addr = %addr, "webhook listening");
            let stop = http_stop.clone();
            let router = http::webhook_router(ctx.clone());
            tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "webhook server failed");
                }
            })
        });
        let instance_stop = CancellationToken::new();
        let instance = tokio::spawn(self.instance.keep(instance_stop.clone()));
        let monitor = tokio::spawn(monitor_redis(ctx.clone(), http_stop.clone()));
        let listener = tokio::spawn(wakeups::listen(
            ctx.store.clone(),
            ctx.wakeups.clone(),
            http_stop.clone(),
        ));
        let poller = match ctx.settings.ingest {
            IngestMode::Polling => Some(tokio::spawn(ingest::poller::run(
                ctx.clone(),
                shutdown.clone(),
            ))),
            IngestMode::Webhook => None,
        };
        let owners = tokio::spawn(partitions::run(ctx.clone(), shutdown.clone()));
        let sweeper = tokio::spawn(timers::run(ctx.clone(), shutdown.clone()));
        tracing::info!("replica running");

        shutdown.cancelled().await;
        let started = Instant::now();
        tracing::info!(grace = ?ctx.settings.shutdown_grace, "shutting down: finishing in-flight work");
        ctx.health.set_stopping();
        let finish = async {
            if let Some(p) = poller {
                let _ = p.await;
            }
            let _ = owners.await;
            let _ = sweeper.await;
        };
        if tokio::time::timeout(ctx.settings.shutdown_grace, finish)
            .await
            .is_err()
        {
            tracing::warn!(
                "grace period over; unfinished updates stay pending for another replica"
            );
        }
        // Every lease of this replica is released: give its id up too.
        instance_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), instance).await;
        http_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), http_task).await;
        if let Some(task) = webhook_task {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
        monitor.abort();
        listener.abort();
        tracing::info!(took = ?started.elapsed(), "stopped");
    }
}

async fn bind(var: &'static str, addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| StartupError::Bind {
            var,
            addr,
            cause: e.to_string(),
        })
}

/// Pings Redis every second; readiness and `redis_up` follow the answer.
async fn monitor_redis(ctx: Arc<Runtime>, stop: CancellationToken) {
    let mut was_up = true;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let up = tokio::time::timeout(Duration::from_secs(2), ctx.store.ping())
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false);
        ctx.health.set_redis_up(up);
        ctx.metrics.redis_up.set(i64::from(up));
        if up != was_up {
            if up {
                tracing::info!("Redis reachable again; resuming");
            } else {
                tracing::warn!("Redis unreachable; work paused until it returns");
            }
            was_up = up;
        }
    }
}

/// `getMe`, retried while the network fails; a rejected token is final.
async fn get_me(bot: &Bot, settings: &Settings) -> Result<Me, StartupError> {
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match bot.get_me().await {
            Ok(me) => return Ok(me),
            Err(RequestError::Api(e)) => return Err(StartupError::BadToken(e.to_string())),
            Err(e) => {
                let cause = e.to_string();
                if started.elapsed() >= settings.redis_startup_timeout {
                    return Err(StartupError::TelegramUnreachable {
                        url: settings.telegram_api_url.to_string(),
                        cause,
                    });
                }
                tracing::warn!(attempt, error = %cause, "getMe failed, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Sets the command menu in every language; a failure is only logged.
async fn register_commands(bot: &Bot) {
    for &lang in Lang::ALL {
        let mut req = bot.set_my_commands(commands::menu(lang));
        if lang != Lang::En {
            req = req.language_code(lang.code());
        }
        if let Err(e) = req.await {
            tracing::warn!(lang = lang.code(), error = %e, "setMyCommands failed");
        }
    }
}
