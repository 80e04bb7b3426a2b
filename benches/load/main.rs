//! Load benchmark (issue 6): real `redis-server`, the fake Telegram in this
//! process, and 1 and 3 real `anonchat` replicas (the release binary), driven
//! by simulated users who search, chat, press Next and Stop.
//!
//! Run it with `scripts/bench` (builds, installs what is missing, then runs
//! this). Arguments:
//!
//! - `--anonchat PATH`: the replica binary (default `target/release/anonchat`);
//! - `--quick`: a 1-2 minute smoke run (shorter phases, fewer users);
//! - `--replicas 1,3`: the replica counts to measure;
//! - `--out DIR`: where `report.md`, `report.json` and the plots go (`bench-out`);
//! - `--skip-flood`: leave out the flood-control scenario.
//!
//! Exits non-zero when any relayed message was lost, duplicated or reordered,
//! or a scenario could not complete. Missed performance targets are reported,
//! not fatal: the figures are what they are.

mod cluster;
mod drive;
mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anonchat_testkit::fake::FloodConfig;

use cluster::{Bench, Snapshot, UNLIMITED};
use drive::Offer;
use report::{ConfigReport, FloodReport, PhaseReport, Report};

pub struct Args {
    pub anonchat: PathBuf,
    pub quick: bool,
    pub replicas: Vec<usize>,
    pub out: PathBuf,
    pub flood: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        anonchat: PathBuf::from("target/release/anonchat"),
        quick: false,
        replicas: vec![1, 3],
        out: PathBuf::from("bench-out"),
        flood: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--anonchat" => {
                args.anonchat = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--anonchat PATH"))?
                    .into()
            }
            "--out" => {
                args.out = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--out DIR"))?
                    .into()
            }
            "--quick" => args.quick = true,
            "--skip-flood" => args.flood = false,
            "--replicas" => {
                args.replicas = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--replicas 1,3"))?
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?;
            }
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    anyhow::ensure!(
        args.anonchat.exists(),
        "{} does not exist: run `cargo build --release --bins` (scripts/bench does)",
        args.anonchat.display()
    );
    Ok(args)
}

/// Phase lengths and sizes.
struct Plan {
    users: usize,
    phase: Duration,
    warmup: Duration,
    rates: Vec<f64>,
    saturation_runs: usize,
    window: u64,
    churn_pairs: usize,
    flood_rate: f64,
    flood_phase: Duration,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                users: 10_000,
                phase: Duration::from_secs(3),
                warmup: Duration::from_secs(1),
                rates: vec![100.0, 1_000.0, 5_000.0],
                saturation_runs: 1,
                window: 1_000,
                churn_pairs: 200,
                flood_rate: 200.0,
                flood_phase: Duration::from_secs(5),
            }
        } else {
            Plan {
                users: 10_000,
                phase: Duration::from_secs(8),
                warmup: Duration::from_secs(2),
                rates: vec![100.0, 1_000.0, 5_000.0],
                saturation_runs: 3,
                window: 1_000,
                churn_pairs: 500,
                flood_rate: 200.0,
                flood_phase: Duration::from_secs(12),
            }
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Per-message costs between two snapshots.
fn costs(name: &str, a: &Snapshot, b: &Snapshot) -> PhaseReport {
    let copies = b.copies.saturating_sub(a.copies).max(1) as f64;
    let per = |x: f64| x / copies;
    let mut by_name = BTreeMap::new();
    for (k, v) in &b.commands {
        let d = v.saturating_sub(a.commands.get(k).copied().unwrap_or(0));
        if d > 0 {
            by_name.insert(k.clone(), per(d as f64));
        }
    }
    let replica_cpu = b.replica_cpu.saturating_sub(a.replica_cpu).as_secs_f64();
    let redis_cpu = b.redis_cpu.saturating_sub(a.redis_cpu).as_secs_f64();
    PhaseReport {
        name: name.to_string(),
        delivered: b.copies - a.copies,
        wall_seconds: b.at.duration_since(a.at).as_secs_f64(),
        replica_cpu_s_per_1000: per(replica_cpu) * 1000.0,
        redis_cpu_s_per_1000: per(redis_cpu) * 1000.0,
        harness_cpu_s_per_1000: per(b.harness_cpu.saturating_sub(a.harness_cpu).as_secs_f64())
            * 1000.0,
        replica_cpu_us_per_msg: per(replica_cpu) * 1e6,
        round_trips_per_msg: per(b.round_trips.saturating_sub(a.round_trips) as f64),
        commands_per_msg: per(b.commands_total().saturating_sub(a.commands_total()) as f64),
        commands_by_name_per_msg: by_name,
        redis_bytes_per_msg: (b.redis_used_memory as f64 - a.redis_used_memory as f64) / copies,
        ..PhaseReport::default()
    }
}

async fn run_config(
    args: &Args,
    plan: &Plan,
    n: usize,
    problems: &mut Vec<String>,
) -> anyhow::Result<ConfigReport> {
    eprintln!("== {n} replica(s): starting");
    let mut bench = Bench::start(&args.anonchat, n, None, UNLIMITED).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_a = bench.snapshot().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_b = bench.snapshot().await;
    let idle_secs = idle_b.at.duration_since(idle_a.at).as_secs_f64();
    let idle = report::Idle {
        replica_cpu_per_sec: (idle_b.replica_cpu - idle_a.replica_cpu).as_secs_f64() / idle_secs,
        redis_cpu_per_sec: (idle_b.redis_cpu - idle_a.redis_cpu).as_secs_f64() / idle_secs,
        round_trips_per_sec: (idle_b.round_trips - idle_a.round_trips) as f64 / idle_secs,
    };
    eprintln!("   idle: {idle:?}");
    let idle_rss: Vec<f64> = bench.replica_rss().into_iter().map(mb).collect();
    eprintln!("   idle RSS MB: {idle_rss:.1?}");

    eprintln!("   matching: {} simultaneous /search", plan.users);
    let users = drive::new_users(plan.users);
    let (mut pop, matching) = drive::match_all(&mut bench, users, Duration::from_secs(180)).await?;
    eprintln!(
        "   matched {} pairs in {:.2} s; Redis {:.0} B/pair",
        matching.pairs, matching.seconds, matching.redis_bytes_per_pair
    );

    let mut phases = Vec::new();
    let relay_start = bench.snapshot().await;
    let mut offers: Vec<(String, Offer)> = plan
        .rates
        .iter()
        .map(|r| (format!("{r:.0} msg/s"), Offer::Rate(*r)))
        .collect();
    for k in 0..plan.saturation_runs {
        offers.push((format!("saturation #{}", k + 1), Offer::Window(plan.window)));
    }
    for (name, offer) in offers {
        let before = bench.snapshot().await;
        let run = drive::relay(
            &bench,
            &mut pop,
            offer,
            plan.phase,
            plan.warmup,
            Duration::from_secs(90),
        )
        .await;
        let after = bench.snapshot().await;
        let (lat, samples) = drive::latency(&bench.fake, run.first_update, run.last_update);
        let mut ph = costs(&name, &before, &after);
        ph.offered_per_sec = match offer {
            Offer::Rate(r) => Some(r),
            Offer::Window(_) => None,
        };
        ph.window = match offer {
            Offer::Window(w) => Some(w),
            Offer::Rate(_) => None,
        };
        ph.sent_copies = run.sent_copies;
        ph.sent_edits = run.sent_edits;
        ph.steady_throughput = run.steady_throughput;
        ph.drain_seconds = run.drain_seconds;
        ph.sustained = match offer {
            Offer::Rate(r) => {
                run.drained && run.steady_throughput >= 0.95 * r && run.drain_seconds < 1.0
            }
            Offer::Window(_) => run.drained,
        };
        ph.latency_ms = lat;
        ph.latency_samples = samples;
        ph.peak_replica_rss_mb = run.peak_replica_rss.into_iter().map(mb).collect();
        eprintln!(
            "   {name}: {:.0} msg/s steady, p50 {:.2} p99 {:.2} max {:.1} ms, {:.0} us CPU/msg, {:.2} RT/msg, drain {:.2} s{}",
            ph.steady_throughput,
            lat.p50,
            lat.p99,
            lat.max,
            ph.replica_cpu_us_per_msg,
            ph.round_trips_per_msg,
            ph.drain_seconds,
            if run.drained { "" } else { "  NOT DRAINED" }
        );
        if !run.drained {
            problems.push(format!(
                "{n} replica(s), {name}: copies still missing after 90 s"
            ));
        }
        phases.push(ph);
    }
    let relay_end = bench.snapshot().await;
    let verify = pop.verify(&bench.fake);
    eprintln!(
        "   verified exactly-once in-order delivery: {} problem(s)",
        verify.len()
    );
    for p in verify.iter().take(20) {
        problems.push(format!("{n} replica(s): {p}"));
    }
    if verify.len() > 20 {
        problems.push(format!(
            "{n} replica(s): ... and {} more",
            verify.len() - 20
        ));
    }
    let (map_keys, map_entries) = bench.map_entries().await;
    let relayed = relay_end.copies - relay_start.copies;
    let mem_delta = relay_end.redis_used_memory as f64 - relay_start.redis_used_memory as f64;

    let churn_pairs = plan.churn_pairs.min(pop.users.len() / 2);
    let churn_seconds = match drive::churn(&bench, &pop, churn_pairs).await {
        Ok(s) => Some(s),
        Err(e) => {
            problems.push(format!("{n} replica(s): {e}"));
            None
        }
    };
    let sat: Vec<f64> = phases
        .iter()
        .filter(|p| p.window.is_some())
        .map(|p| p.steady_throughput)
        .collect();
    Ok(ConfigReport {
        replicas: n,
        idle_rss_mb: idle_rss,
        idle,
        matching,
        saturation_median: median(&sat),
        saturation_runs: sat,
        phases,
        relayed,
        map_keys,
        map_entries,
        redis_bytes_per_message: mem_delta / relayed.max(1) as f64,
        redis_bytes_per_map_entry: mem_delta / map_entries.max(1) as f64,
        churn_pairs,
        churn_seconds,
        problems_found: verify.len(),
    })
}

async fn run_flood(
    args: &Args,
    plan: &Plan,
    n: usize,
    problems: &mut Vec<String>,
) -> anyhow::Result<FloodReport> {
    let rate = plan.flood_rate;
    eprintln!("== flood control: {n} replica(s), TG_GLOBAL_RATE={rate}, fake flood control on");
    let rate_s = format!("{rate}");
    let limits: Vec<(&str, &str)> = vec![
        ("TG_GLOBAL_RATE", rate_s.as_str()),
        ("TG_CHAT_RATE", "100000"),
        ("TG_CHAT_BURST", "100000"),
        ("INBOUND_RATE", "100000"),
        ("INBOUND_BURST", "100000"),
    ];
    let flood = FloodConfig {
        per_chat_rate: 100_000.0,
        per_chat_burst: 100_000,
        global_rate: rate,
        global_burst: rate as u32,
    };
    let mut bench = Bench::start(&args.anonchat, n, Some(flood), &limits).await?;
    let users = drive::new_users(200);
    let (mut pop, _) = drive::match_all(&mut bench, users, Duration::from_secs(60)).await?;
    let before = bench.snapshot().await;
    let fake = bench.fake.clone();
    let t0 = Instant::now();
    let warm = Duration::from_secs(2);
    let run = drive::relay(
        &bench,
        &mut pop,
        Offer::Window((rate * 2.0) as u64),
        plan.flood_phase,
        warm,
        Duration::from_secs(120),
    )
    .await;
    let after = bench.snapshot().await;
    let (start, end) = (t0 + warm, t0 + plan.flood_phase);
    let counted = |m: &str| {
        m.starts_with("send")
            || m.starts_with("copy")
            || m.starts_with("forward")
            || m.starts_with("edit")
    };
    let calls = fake.calls();
    let sends = calls
        .iter()
        .filter(|c| c.status == 200 && counted(&c.method) && c.at >= start && c.at < end)
        .count();
    let window_s = (end - start).as_secs_f64();
    let counters = fake.counters();
    let verify = pop.verify(&fake);
    for p in verify.iter().take(20) {
        problems.push(format!("flood, {n} replica(s): {p}"));
    }
    if !run.drained {
        problems.push(format!(
            "flood, {n} replica(s): copies still missing after 120 s"
        ));
    }
    let c = costs("flood", &before, &after);
    let report = FloodReport {
        replicas: n,
        rate,
        window_s,
        sends_per_sec: sends as f64 / window_s,
        utilisation: sends as f64 / window_s / rate,
        too_many_requests: counters.too_many_requests,
        violations: counters.violations,
        round_trips_per_msg: c.round_trips_per_msg,
        commands_per_msg: c.commands_per_msg,
        replica_cpu_us_per_msg: c.replica_cpu_us_per_msg,
        problems_found: verify.len(),
    };
    eprintln!(
        "   {:.1} sends/s of {rate} ({:.1}%), {} x 429, {:.2} RT/msg",
        report.sends_per_sec,
        report.utilisation * 100.0,
        report.too_many_requests,
        report.round_trips_per_msg
    );
    Ok(report)
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    // Two worker threads: the fake and the load generator are guests on the
    // same two cores as Redis and the replicas; more threads only add switching.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("bench: FAILED: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let plan = Plan::new(args.quick);
    let started = Instant::now();
    let load_before = report::loadavg();
    let mut problems = Vec::new();
    let mut configs = Vec::new();
    for &n in &args.replicas {
        configs.push(run_config(&args, &plan, n, &mut problems).await?);
    }
    let mut floods = Vec::new();
    if args.flood {
        for &n in &args.replicas {
            floods.push(run_flood(&args, &plan, n, &mut problems).await?);
        }
    }
    let report = Report {
        quick: args.quick,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        loadavg_before: load_before,
        loadavg_after: report::loadavg(),
        seconds: started.elapsed().as_secs_f64(),
        phase_seconds: plan.phase.as_secs_f64(),
        configs,
        floods,
        problems,
    };
    report.write(&args.out)?;
    let ok = report.problems.is_empty();
    if ok {
        eprintln!("every relayed message arrived exactly once and in order");
    } else {
        eprintln!(
            "\n!!!!!!!! {} PROBLEM(S): messages lost, duplicated or out of order !!!!!!!!",
            report.problems.len()
        );
        for p in &report.problems {
            eprintln!("!! {p}");
        }
    }
    eprintln!("report: {}/report.md", args.out.display());
    Ok(ok)
}
