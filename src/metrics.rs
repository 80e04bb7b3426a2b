//! Prometheus metrics, exposed as text on `/metrics`.
//!
//! We use the `prometheus-client` crate (the Prometheus project's own Rust
//! client): typed metrics, no global registry, and an OpenMetrics text encoder
//! that Prometheus scrapes directly. One [`Metrics`] value is shared by every
//! part of a replica.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub partition: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

/// Every metric a replica exports.
pub struct Metrics {
    registry: Registry,
    pub redis_up: Gauge,
    pub poller_leader: Gauge,
    pub updates_ingested: Counter,
    pub duplicates_skipped: Counter,
    pub webhook_rejected: Counter,
    pub partitions_owned: Gauge,
    pub stream_lag: Family<PartitionLabel, Gauge>,
    pub updates_handled: Counter,
    pub handler_errors: Counter,
    pub poison_updates: Counter,
    pub malformed_updates: Counter,
    pub handler_latency: Histogram,
    pub telegram_calls: Family<MethodLabel, Counter>,
    pub commands: Family<KindLabel, Counter>,
    pub redis_round_trips: Counter,
    pub too_many_requests: Counter,
    pub freeze_seconds: Gauge,
    pub budget_wait: Histogram,
    pub send_latency: Histogram,
    pub sends_in_flight: Gauge,
    pub inbound_dropped: Counter,
    pub overload_dropped: Counter,
    pub updates_lost: Counter,
    pub handler_retries: Counter,
    pub ingest_refused: Counter,
    pub updates_buffered: Gauge,
    /// Reports filed, by reason.
    pub reports: Family<KindLabel, Counter>,
    pub bans: Counter,
    pub suspensions: Counter,
    pub blocks: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Self::with_round_trips(Counter::default())
    }

    /// Metrics exporting the given round-trip counter (the store's).
    pub fn with_round_trips(redis_round_trips: Counter) -> Metrics {
        let mut registry = Registry::with_prefix("anonchat");
        let m = Metrics {
            redis_up: Gauge::default(),
            poller_leader: Gauge::default(),
            updates_ingested: Counter::default(),
            duplicates_skipped: Counter::default(),
            webhook_rejected: Counter::default(),
            partitions_owned: Gauge::default(),
            stream_lag: Family::default(),
            updates_handled: Counter::default(),
            handler_errors: Counter::default(),
            poison_updates: Counter::default(),
            malformed_updates: Counter::default(),
            handler_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            telegram_calls: Family::default(),
            commands: Family::default(),
            redis_round_trips,
            too_many_requests: Counter::default(),
            freeze_seconds: Gauge::default(),
            budget_wait: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            send_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            sends_in_flight: Gauge::default(),
            inbound_dropped: Counter::default(),
            overload_dropped: Counter::default(),
            updates_lost: Counter::default(),
            handler_retries: Counter::default(),
            ingest_refused: Counter::default(),
            updates_buffered: Gauge::default(),
            reports: Family::default(),
            bans: Counter::default(),
            suspensions: Counter::default(),
            blocks: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("reports", "Reports filed, by reason", m.reports.clone());
        registry.register("bans", "Bans decided by admins", m.bans.clone());
        registry.register(
            "suspensions",
            "Users suspended automatically by distinct reporters",
            m.suspensions.clone(),
        );
        registry.register("blocks", "Blocks made with /block", m.blocks.clone());
        registry.register(
            "redis_up",
            "Redis reachable (1) or not (0)",
            m.redis_up.clone(),
        );
        registry.register(
            "poller_leader",
            "This replica holds the getUpdates lease (1) or not (0)",
            m.poller_leader.clone(),
        );
        registry.register(
            "updates_ingested",
            "Updates written to the partition streams",
            m.updates_ingested.clone(),
        );
        registry.register(
            "duplicates_skipped",
            "Updates not written because their id was seen already",
            m.duplicates_skipped.clone(),
        );
        registry.register(
            "webhook_rejected",
            "Webhook requests refused (bad secret or body)",
            m.webhook_rejected.clone(),
        );
        registry.register(
            "partitions_owned",
            "Stream partitions this replica owns",
            m.partitions_owned.clone(),
        );
        registry.register(
            "stream_lag",
            "Entries waiting in an owned partition stream",
            m.stream_lag.clone(),
        );
        registry.register(
            "updates_handled",
            "Updates handled and acknowledged",
            m.updates_handled.clone(),
        );
        registry.register(
            "handler_errors",
            "Handler attempts that failed",
            m.handler_errors.clone(),
        );
        registry.register(
            "poison_updates",
            "Updates skipped after the last failed attempt",
            m.poison_updates.clone(),
        );
        registry.register(
            "malformed_updates",
            "Stream entries that were not a valid Telegram update",
            m.malformed_updates.clone(),
        );
        registry.register(
            "handler_latency_seconds",
            "Time to handle one update",
            m.handler_latency.clone(),
        );
        registry.register(
            "telegram_calls",
            "Bot API calls by method and outcome",
            m.telegram_calls.clone(),
        );
        registry.register(
            "commands",
            "User commands handled, by kind",
            m.commands.clone(),
        );
        registry.register(
            "redis_round_trips",
            "Round trips to Redis (a pipeline or script call counts once)",
            m.redis_round_trips.clone(),
        );
        registry.register(
            "too_many_requests",
            "429 answers from Telegram",
            m.too_many_requests.clone(),
        );
        registry.register(
            "freeze_seconds",
            "retry_after of the latest 429 (the freeze applied)",
            m.freeze_seconds.clone(),
        );
        registry.register(
            "budget_wait_seconds",
            "Time a send waited for its slot in the shared budget",
            m.budget_wait.clone(),
        );
        registry.register(
            "send_latency_seconds",
            "Duration of one Bot API call",
            m.send_latency.clone(),
        );
        registry.register(
            "sends_in_flight",
            "Bot API calls in flight on this replica",
            m.sends_in_flight.clone(),
        );
        registry.register(
            "inbound_dropped",
            "User messages dropped by the inbound throttle",
            m.inbound_dropped.clone(),
        );
        registry.register(
            "overload_dropped",
            "Sends dropped because their slot was further away than MAX_SEND_WAIT",
            m.overload_dropped.clone(),
        );
        registry.register(
            "updates_lost",
            "Pending stream entries found deleted before anyone handled them",
            m.updates_lost.clone(),
        );
        registry.register(
            "handler_retries",
            "Handler attempts retried because Redis or Telegram was unavailable",
            m.handler_retries.clone(),
        );
        registry.register(
            "ingest_refused",
            "Update batches refused because a partition stream was full (STREAM_MAXLEN)",
            m.ingest_refused.clone(),
        );
        registry.register(
            "updates_buffered",
            "Stream entries read into this replica's memory and not yet finished",
            m.updates_buffered.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts one Bot API call.
    pub fn telegram_call(&self, method: &str, outcome: &str) {
        self.telegram_calls
            .get_or_create(&MethodLabel {
                method: method.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts one handled command.
    pub fn command(&self, kind: &str) {
        self.commands
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Counts one report filed for `reason`.
    pub fn report(&self, reason: &str) {
        self.reports
            .get_or_create(&KindLabel {
                kind: reason.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_contains_registered_counters() {
        let m = Metrics::new();
        m.updates_ingested.inc_by(3);
        m.telegram_call("sendMessage", "ok");
        let text = m.render();
        assert!(text.contains("anonchat_updates_ingested_total 3"), "{text}");
        assert!(text.contains("method=\"sendMessage\""), "{text}");
        m.report("spam");
        m.bans.inc();
        let text = m.render();
        assert!(
            text.contains("anonchat_reports_total{kind=\"spam\"} 1"),
            "{text}"
        );
        assert!(text.contains("anonchat_bans_total 1"), "{text}");
    }
}
