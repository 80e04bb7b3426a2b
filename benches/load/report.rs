//! The report: every figure as JSON, the headline tables and targets as
//! Markdown, and PNG plots drawn with plotters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::drive::{MatchResult, Percentiles};

#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseReport {
    pub name: String,
    /// Open loop: messages per second offered.
    pub offered_per_sec: Option<f64>,
    /// Closed loop (saturation): copies kept outstanding.
    pub window: Option<u64>,
    pub sent_copies: u64,
    pub sent_edits: u64,
    /// Copies the fake received between the phase's snapshots.
    pub delivered: u64,
    /// Copies arrived per second after the warm-up, while load was offered.
    pub steady_throughput: f64,
    /// Open loop: kept up (>= 95% of the offer, drained within 1 s).
    pub sustained: bool,
    pub drain_seconds: f64,
    pub wall_seconds: f64,
    pub latency_ms: Percentiles,
    pub latency_samples: usize,
    pub replica_cpu_s_per_1000: f64,
    pub redis_cpu_s_per_1000: f64,
    /// The bench process: fake Telegram plus load generator.
    pub harness_cpu_s_per_1000: f64,
    pub replica_cpu_us_per_msg: f64,
    pub round_trips_per_msg: f64,
    pub commands_per_msg: f64,
    pub commands_by_name_per_msg: BTreeMap<String, f64>,
    pub redis_bytes_per_msg: f64,
    pub peak_replica_rss_mb: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    pub replicas: usize,
    pub idle_rss_mb: Vec<f64>,
    pub idle: Idle,
    pub matching: MatchResult,
    pub phases: Vec<PhaseReport>,
    pub saturation_runs: Vec<f64>,
    pub saturation_median: f64,
    pub relayed: u64,
    pub map_keys: u64,
    pub map_entries: u64,
    pub redis_bytes_per_message: f64,
    pub redis_bytes_per_map_entry: f64,
    pub churn_pairs: usize,
    pub churn_seconds: Option<f64>,
    pub problems_found: usize,
}

impl ConfigReport {
    fn phase(&self, offered: f64) -> Option<&PhaseReport> {
        self.phases
            .iter()
            .find(|p| p.offered_per_sec == Some(offered))
    }
}

/// Background cost with no users at all (polling, heartbeats, leases, timers).
#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    /// Replica CPU seconds per second, all replicas together.
    pub replica_cpu_per_sec: f64,
    pub redis_cpu_per_sec: f64,
    pub round_trips_per_sec: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FloodReport {
    pub replicas: usize,
    pub rate: f64,
    pub window_s: f64,
    pub sends_per_sec: f64,
    pub utilisation: f64,
    pub too_many_requests: u64,
    pub violations: u64,
    pub round_trips_per_msg: f64,
    pub commands_per_msg: f64,
    pub replica_cpu_us_per_msg: f64,
    pub problems_found: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub quick: bool,
    pub cores: usize,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub seconds: f64,
    pub phase_seconds: f64,
    pub configs: Vec<ConfigReport>,
    pub floods: Vec<FloodReport>,
    pub problems: Vec<String>,
}

/// The first three fields of /proc/loadavg.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**MISSED**"
    }
}

impl Report {
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(out)?;
        std::fs::write(out.join("report.json"), serde_json::to_string_pretty(self)?)?;
        let plots = match self.plots(out) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("bench: plots skipped: {e:#}");
                Vec::new()
            }
        };
        let md = self.markdown(&plots);
        std::fs::write(out.join("report.md"), &md)?;
        println!("{md}");
        Ok(())
    }

    fn config(&self, n: usize) -> Option<&ConfigReport> {
        self.configs.iter().find(|c| c.replicas == n)
    }

    /// (target, figure, met) rows.
    fn targets(&self) -> Vec<(String, String, bool)> {
        let mut rows = Vec::new();
        let one = self.config(1);
        let three = self.config(3);
        if let Some(c) = one {
            rows.push((
                "1 replica >= 5,000 msg/s sustained".into(),
                format!(
                    "{:.0} msg/s (median of {} saturation runs)",
                    c.saturation_median,
                    c.saturation_runs.len()
                ),
                c.saturation_median >= 5000.0,
            ));
        }
        for c in [one, three].into_iter().flatten() {
            if let Some(p) = c.phase(1000.0) {
                rows.push((
                    format!("{} replica(s): p99 < 10 ms at 1,000 msg/s", c.replicas),
                    format!(
                        "p99 {:.2} ms{}",
                        p.latency_ms.p99,
                        if p.sustained {
                            ""
                        } else {
                            " (offer not sustained)"
                        }
                    ),
                    p.latency_ms.p99 < 10.0 && p.sustained,
                ));
            }
        }
        if let (Some(a), Some(b)) = (one, three) {
            rows.push((
                "3 replicas >= 1 replica throughput".into(),
                format!(
                    "{:.0} vs {:.0} msg/s (ratio {:.2})",
                    b.saturation_median,
                    a.saturation_median,
                    b.saturation_median / a.saturation_median
                ),
                b.saturation_median >= a.saturation_median,
            ));
        }
        for c in [one, three].into_iter().flatten() {
            if let Some(p) = c.phase(1000.0) {
                rows.push((
                    format!(
                        "{} replica(s): <= 150 us replica CPU per message (at 1,000 msg/s)",
                        c.replicas
                    ),
                    format!("{:.0} us", p.replica_cpu_us_per_msg),
                    p.replica_cpu_us_per_msg <= 150.0,
                ));
                rows.push((
                    format!(
                        "{} replica(s): <= 3 Redis round trips per message (at 1,000 msg/s)",
                        c.replicas
                    ),
                    format!("{:.2}", p.round_trips_per_msg),
                    p.round_trips_per_msg <= 3.0,
                ));
            }
        }
        for c in [one, three].into_iter().flatten() {
            let idle = c.idle_rss_mb.iter().cloned().fold(0.0, f64::max);
            rows.push((
                format!("{} replica(s): idle replica < 25 MB RSS", c.replicas),
                format!("{idle:.1} MB (largest replica)"),
                idle < 25.0,
            ));
            if let Some(p) = c.phase(1000.0) {
                let peak = p.peak_replica_rss_mb.iter().cloned().fold(0.0, f64::max);
                rows.push((
                    format!("{} replica(s): < 60 MB RSS at 1,000 msg/s", c.replicas),
                    format!("{peak:.1} MB (largest replica, peak)"),
                    peak < 60.0,
                ));
            }
        }
        for c in [one, three].into_iter().flatten() {
            rows.push((
                format!("{} replica(s): Redis < 1 KB per active pair", c.replicas),
                format!(
                    "{:.0} B (used_memory delta), {:.0} B (MEMORY USAGE of both user hashes)",
                    c.matching.redis_bytes_per_pair, c.matching.redis_memory_usage_per_pair
                ),
                c.matching.redis_bytes_per_pair < 1024.0,
            ));
            rows.push((
                format!(
                    "{} replica(s): Redis < 200 B per message-map entry",
                    c.replicas
                ),
                format!(
                    "{:.0} B per entry ({:.2} entries and {:.0} B per relayed message)",
                    c.redis_bytes_per_map_entry,
                    c.map_entries as f64 / c.relayed.max(1) as f64,
                    c.redis_bytes_per_message
                ),
                c.redis_bytes_per_map_entry < 200.0,
            ));
        }
        for f in &self.floods {
            rows.push((
                format!(
                    "flood, {} replica(s): >= 95% of TG_GLOBAL_RATE={} used",
                    f.replicas, f.rate
                ),
                format!(
                    "{:.1} sends/s = {:.1}%",
                    f.sends_per_sec,
                    f.utilisation * 100.0
                ),
                f.utilisation >= 0.95,
            ));
            rows.push((
                format!("flood, {} replica(s): zero 429s", f.replicas),
                format!(
                    "{} x 429 ({} sent inside retry_after)",
                    f.too_many_requests, f.violations
                ),
                f.too_many_requests == 0,
            ));
            rows.push((
                format!(
                    "flood, {} replica(s): <= 3 round trips per message (limiter included)",
                    f.replicas
                ),
                format!("{:.2}", f.round_trips_per_msg),
                f.round_trips_per_msg <= 3.0,
            ));
        }
        rows
    }

    fn markdown(&self, plots: &[String]) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# anonchat load benchmark\n");
        let _ = writeln!(
            s,
            "Machine: **{} cores**, load average {} before, {} after (1/5/15 min). Run took {:.0} s{}. \
             Redis, the fake Telegram, the load generator and the replicas all share these cores.\n",
            self.cores,
            self.loadavg_before,
            self.loadavg_after,
            self.seconds,
            if self.quick { " (--quick: short phases, one saturation run)" } else { "" }
        );
        if self.problems.is_empty() {
            let _ = writeln!(s, "Delivery check: every relayed message arrived exactly once and in order; every edit reached its copy.\n");
        } else {
            let _ = writeln!(s, "## !!! DELIVERY PROBLEMS: {} !!!\n", self.problems.len());
            for p in &self.problems {
                let _ = writeln!(s, "- {p}");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## Targets\n\n| target | figure | |\n|---|---|---|");
        for (t, f, ok) in self.targets() {
            let _ = writeln!(s, "| {t} | {f} | {} |", yes(ok));
        }
        let _ = writeln!(s, "\n## Throughput (saturation, closed loop)\n\n| replicas | runs (msg/s) | median msg/s |\n|---|---|---|");
        for c in &self.configs {
            let runs: Vec<String> = c
                .saturation_runs
                .iter()
                .map(|v| format!("{v:.0}"))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} |",
                c.replicas,
                runs.join(", "),
                c.saturation_median
            );
        }
        if let (Some(a), Some(b)) = (self.config(1), self.config(3)) {
            let _ = writeln!(
                s,
                "\nRatio 3 replicas / 1 replica (same run): {:.2}",
                b.saturation_median / a.saturation_median
            );
        }
        let _ = writeln!(
            s,
            "\n## Relay phases\n\nLatency is measured by the fake: user update available -> partner's copy stored. \
             The same figures are the pipeline's ingest-to-handler throughput and latency (issue 3): every relayed \
             message goes getUpdates -> stream -> worker -> handler -> copyMessage. Costs are per delivered copy \
             (edits, ~3% of actions, are handled but not counted as messages). Each phase lasts {:.0} s; the steady \
             throughput skips the warm-up.\n",
            self.phase_seconds
        );
        let _ = writeln!(
            s,
            "| replicas | phase | sent | steady msg/s | kept up | p50 ms | p95 ms | p99 ms | max ms | replica CPU s/1000 | Redis CPU s/1000 | fake+loadgen CPU s/1000 | round trips/msg | Redis cmds/msg | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for c in &self.configs {
            for p in &c.phases {
                let rss: Vec<String> = p
                    .peak_replica_rss_mb
                    .iter()
                    .map(|v| format!("{v:.1}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.3} | {:.3} | {:.3} | {:.2} | {:.1} | {} |",
                    c.replicas,
                    p.name,
                    p.sent_copies,
                    p.steady_throughput,
                    if p.offered_per_sec.is_none() { "n/a" } else if p.sustained { "yes" } else { "**no**" },
                    p.latency_ms.p50,
                    p.latency_ms.p95,
                    p.latency_ms.p99,
                    p.latency_ms.max,
                    p.replica_cpu_s_per_1000,
                    p.redis_cpu_s_per_1000,
                    p.harness_cpu_s_per_1000,
                    p.round_trips_per_msg,
                    p.commands_per_msg,
                    rss.join(" / ")
                );
            }
        }
        let _ = writeln!(
            s,
            "\nRedis commands per relayed message by command (saturation #1):\n"
        );
        for c in &self.configs {
            if let Some(p) = c.phases.iter().find(|p| p.window.is_some()) {
                let parts: Vec<String> = p
                    .commands_by_name_per_msg
                    .iter()
                    .filter(|(_, v)| **v >= 0.01)
                    .map(|(k, v)| format!("{k} {v:.2}"))
                    .collect();
                let _ = writeln!(s, "- {} replica(s): {}", c.replicas, parts.join(", "));
            }
        }
        let _ = writeln!(
            s,
            "\n## Matching, churn, memory\n\n| replicas | users | pairs | all found after s | searches/s | Redis B/pair (used_memory) | B/pair (MEMORY USAGE) | idle RSS MB | map entries | B/map entry | B/relayed msg | churn: pairs ended | all partners told after s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for c in &self.configs {
            let idle: Vec<String> = c.idle_rss_mb.iter().map(|v| format!("{v:.1}")).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {:.0} | {:.0} | {:.0} | {} | {} | {:.0} | {:.0} | {} | {} |",
                c.replicas,
                c.matching.users,
                c.matching.pairs,
                c.matching.seconds,
                c.matching.searches_per_sec,
                c.matching.redis_bytes_per_pair,
                c.matching.redis_memory_usage_per_pair,
                idle.join(" / "),
                c.map_entries,
                c.redis_bytes_per_map_entry,
                c.redis_bytes_per_message,
                c.churn_pairs,
                c.churn_seconds.map(|v| format!("{v:.2}")).unwrap_or_else(|| "FAILED".into())
            );
        }
        let _ = writeln!(
            s,
            "\nIdle background (no users; polling, heartbeats, leases, timers), which the per-message \
             costs at low rates include:\n\n| replicas | replica CPU s/s | Redis CPU s/s | round trips/s |\n|---|---|---|---|"
        );
        for c in &self.configs {
            let _ = writeln!(
                s,
                "| {} | {:.4} | {:.4} | {:.1} |",
                c.replicas,
                c.idle.replica_cpu_per_sec,
                c.idle.redis_cpu_per_sec,
                c.idle.round_trips_per_sec
            );
        }
        if !self.floods.is_empty() {
            let _ = writeln!(
                s,
                "\n## Flood control (fake's flood control on at the same global rate)\n\n| replicas | TG_GLOBAL_RATE | sends/s | utilisation | 429s | sends inside retry_after | round trips/msg | Redis cmds/msg | replica CPU us/msg |\n|---|---|---|---|---|---|---|---|---|"
            );
            for f in &self.floods {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.1} | {:.1}% | {} | {} | {:.2} | {:.1} | {:.0} |",
                    f.replicas,
                    f.rate,
                    f.sends_per_sec,
                    f.utilisation * 100.0,
                    f.too_many_requests,
                    f.violations,
                    f.round_trips_per_msg,
                    f.commands_per_msg,
                    f.replica_cpu_us_per_msg
                );
            }
        }
        if !plots.is_empty() {
            let _ = writeln!(s, "\n## Plots\n");
            for p in plots {
                let _ = writeln!(s, "![{p}]({p})");
            }
        }
        s
    }

    /// Draws the PNGs; returns their file names.
    fn plots(&self, out: &Path) -> anyhow::Result<Vec<String>> {
        let font = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"]
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .ok_or_else(|| {
                anyhow::anyhow!("DejaVuSans.ttf not found (apt-get install fonts-dejavu-core)")
            })?;
        // plotters keeps a 'static reference to the font for the process.
        let font: &'static [u8] = Box::leak(font.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, font)
            .map_err(|_| anyhow::anyhow!("font not usable"))?;
        let mut names = Vec::new();

        let name = "latency.png";
        {
            let path = out.join(name);
            let root = BitMapBackend::new(&path, (900, 560)).into_drawing_area();
            root.fill(&WHITE)?;
            let points: Vec<(usize, f64, Percentiles)> = self
                .configs
                .iter()
                .flat_map(|c| {
                    c.phases
                        .iter()
                        .filter_map(move |p| Some((c.replicas, p.offered_per_sec?, p.latency_ms)))
                })
                .collect();
            let ymax = points
                .iter()
                .map(|p| p.2.p99)
                .filter(|v| v.is_finite())
                .fold(1.0, f64::max)
                * 1.5;
            let xmax = points.iter().map(|p| p.1).fold(100.0, f64::max) * 1.5;
            let mut chart = ChartBuilder::on(&root)
                .caption("Relay latency vs offered rate", ("sans-serif", 24))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d((50f64..xmax).log_scale(), (0.1f64..ymax).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("offered messages/s")
                .y_desc("latency, ms")
                .draw()?;
            let palette = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
            let mut k = 0;
            for c in &self.configs {
                for (label, pick) in [
                    ("p50", (|p: &Percentiles| p.p50) as fn(&Percentiles) -> f64),
                    ("p95", |p: &Percentiles| p.p95),
                    ("p99", |p: &Percentiles| p.p99),
                ] {
                    let color = palette[k % palette.len()];
                    k += 1;
                    let series: Vec<(f64, f64)> = points
                        .iter()
                        .filter(|p| p.0 == c.replicas)
                        .map(|p| (p.1, pick(&p.2).max(0.1)))
                        .collect();
                    chart
                        .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))?
                        .label(format!("{} replica(s) {label}", c.replicas))
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        });
                    chart.draw_series(
                        series
                            .iter()
                            .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
                    )?;
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
            root.present()?;
        }
        names.push(name.to_string());

        let name = "throughput.png";
        {
            let path = out.join(name);
            let root = BitMapBackend::new(&path, (700, 480)).into_drawing_area();
            root.fill(&WHITE)?;
            let ymax = self
                .configs
                .iter()
                .flat_map(|c| c.saturation_runs.iter().copied())
                .fold(5000.0, f64::max)
                * 1.25;
            let xmax = self.configs.iter().map(|c| c.replicas).max().unwrap_or(3) as f64 + 0.5;
            let mut chart = ChartBuilder::on(&root)
                .caption("Saturation throughput vs replicas", ("sans-serif", 24))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0.5f64..xmax, 0f64..ymax)?;
            chart
                .configure_mesh()
                .x_desc("replicas")
                .y_desc("relayed messages/s")
                .x_labels(self.configs.len().max(2) + 2)
                .draw()?;
            chart.draw_series(self.configs.iter().map(|c| {
                let x = c.replicas as f64;
                Rectangle::new(
                    [(x - 0.3, 0.0), (x + 0.3, c.saturation_median)],
                    BLUE.mix(0.6).filled(),
                )
            }))?;
            chart.draw_series(self.configs.iter().flat_map(|c| {
                c.saturation_runs
                    .iter()
                    .map(move |v| Circle::new((c.replicas as f64, *v), 4, BLACK.filled()))
            }))?;
            chart
                .draw_series(LineSeries::new(
                    vec![(0.5, 5000.0), (xmax, 5000.0)],
                    RED.stroke_width(2),
                ))?
                .label("target 5,000 msg/s")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
            root.present()?;
        }
        names.push(name.to_string());
        Ok(names)
    }
}
