//! The replica runtime's shared state: what its long-running parts (the
//! poller or webhook, partition ownership, workers, timers, the HTTP
//! endpoint) have in common. Built by the composition root (`app`); the bot's handlers never
//! see it, they get [`crate::bot::Deps`].

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use teloxide::dispatching::UpdateHandler;
use teloxide::types::Me;
use tokio::sync::Semaphore;

use crate::bot::{Deps, HandlerError};
use crate::config::Settings;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::wakeups::Wakeups;

/// Everything the runtime's parts share.
pub struct Runtime {
    pub settings: Settings,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub health: Health,
    /// Wake-ups from other replicas' releases.
    pub wakeups: Arc<Wakeups>,
    /// What the handlers get.
    pub deps: Arc<Deps>,
    /// The bot's identity, for command parsing.
    pub me: Me,
    /// The handler tree ([`crate::bot::schema`]).
    pub handlers: UpdateHandler<HandlerError>,
    /// Bounds the updates handled at once by this replica.
    pub handler_slots: Semaphore,
    /// Bounds the stream entries held in memory across all partitions
    /// (`MAX_BUFFERED_UPDATES`); the rest of a backlog stays in Redis.
    pub buffered: Arc<Semaphore>,
    /// The handled-updates journal, when `HANDLED_JOURNAL` is set.
    pub journal: Option<Journal>,
}

/// A test hook: one JSON line per handled update, written before the
/// update is acknowledged (so a crash in between shows as a repeat), with
/// the time in ns since the epoch so lines of several replicas can be ordered.
pub struct Journal {
    file: Mutex<File>,
}

impl Journal {
    pub fn open(path: &std::path::Path) -> std::io::Result<Journal> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Journal {
            file: Mutex::new(file),
        })
    }

    /// Appends one line; a failure is logged, never fatal.
    pub fn handled(&self, update_id: i64, chat: i64, partition: u32) {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let line = format!(
            "{{\"t\":{t},\"update_id\":{update_id},\"chat\":{chat},\"partition\":{partition}}}\n"
        );
        // One write per line on an unbuffered file: whole lines survive a SIGKILL.
        let written = match self.file.lock() {
            Ok(mut f) => f.write_all(line.as_bytes()),
            Err(poisoned) => poisoned.into_inner().write_all(line.as_bytes()),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write the handled journal");
        }
    }
}
