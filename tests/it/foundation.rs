//! The service skeleton: start-up, configuration errors, health, shutdown,
//! and the first vertical slice (/start, /help) with several replicas.

use std::collections::HashMap;
use std::time::Duration;

use crate::harness::{eventually, free_port, Cluster, Replica, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_gets_exactly_one_welcome_with_three_replicas() {
    let cluster = Cluster::start(3).await;
    let alice = cluster.user("Alice");
    alice.command("/start");
    alice.wait_text("Welcome to anonchat").await;
    alice.command("/help");
    let help = alice.wait_text("/help").await;
    assert!(help.text().unwrap_or("").contains("/start"));
    // Per-chat order: the /help answer came after the /start one was handled,
    // so a duplicate welcome from another replica would be here by now.
    assert_eq!(
        alice.count_text("Welcome to anonchat"),
        1,
        "{:?}",
        alice.received()
    );
    assert_eq!(
        alice.received().len(),
        2,
        "exactly two answers for two commands"
    );
    // The command menu was registered, in English and Russian.
    let commands = cluster.tg.my_commands();
    assert!(
        commands.iter().any(|c| c.command == "start"),
        "{commands:?}"
    );
    let set_calls = cluster.tg.calls_for("setMyCommands");
    assert!(set_calls
        .iter()
        .any(|c| c.params.get("language_code").and_then(|v| v.as_str()) == Some("ru")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_follows_the_users_language() {
    let cluster = Cluster::start(1).await;
    let ivan =
        cluster.user_with(anonchat_testkit::fake::TgUser::new(77_001, "Иван").with_language("ru"));
    ivan.command("/start");
    ivan.wait_text("Добро пожаловать").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_within_grace_and_releases_the_poller_lease() {
    let mut cluster = Cluster::start(1).await;
    let alice = cluster.user("Alice");
    alice.command("/start");
    alice.wait_text("Welcome").await;
    assert_eq!(cluster.poller_index().await, Some(0));
    let replica = &mut cluster.replicas[0];
    replica.terminate();
    let status = replica
        .wait_exit(Duration::from_secs(6))
        .await
        .expect("replica did not exit within SHUTDOWN_GRACE_SECS=5 (+1 s)");
    assert!(status.success(), "exit status {status:?}");
    assert!(replica
        .logs()
        .iter()
        .any(|l| l.contains("poller lease released")));
    assert_eq!(cluster.poller_index().await, None, "lease must be gone");
    let mut conn = cluster.redis.conn().await;
    let live: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{}:v1:replicas", cluster.env["KEY_PREFIX"]))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(live.is_empty(), "replica left the live set: {live:?}");
}

fn base_env(redis_url: &str) -> HashMap<String, String> {
    [
        ("BOT_TOKEN", "123456:TEST-TOKEN"),
        ("REDIS_URL", redis_url),
        ("TELEGRAM_API_URL", "http://127.0.0.1:9"),
        ("HTTP_ADDR", "127.0.0.1:0"),
        ("REDIS_STARTUP_TIMEOUT_SECS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn exit_line(mut replica: Replica) -> (bool, String) {
    let status = replica
        .wait_exit(WAIT)
        .await
        .expect("process should exit on bad configuration");
    // The reader threads may still be draining the pipes.
    let line = replica
        .wait_log(Duration::from_secs(2), |l| l.starts_with("anonchat:"))
        .await
        .unwrap_or_else(|| replica.logs().join("\n"));
    (status.success(), line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bot_token_exits_with_a_line_naming_it() {
    let mut env = base_env("redis://127.0.0.1:1");
    env.remove("BOT_TOKEN");
    let (ok, line) = exit_line(Replica::spawn("no-token", &env)).await;
    assert!(!ok);
    assert!(
        line.contains("BOT_TOKEN") && line.contains("@BotFather"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_value_exits_with_a_line_naming_the_variable() {
    let mut env = base_env("redis://127.0.0.1:1");
    env.insert("PARTITIONS".into(), "lots".into());
    let (ok, line) = exit_line(Replica::spawn("bad-partitions", &env)).await;
    assert!(!ok);
    assert!(line.contains("PARTITIONS"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_is_retried_then_a_clear_error() {
    let port = free_port();
    let env = base_env(&format!("redis://127.0.0.1:{port}"));
    let replica = Replica::spawn("no-redis", &env);
    let (ok, line) = exit_line(replica).await;
    assert!(!ok);
    assert!(
        line.contains("Redis") && line.contains("unreachable") && line.contains(&port.to_string()),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_and_redis_outage_recovery() {
    let mut cluster = Cluster::start(1).await;
    let (code, body) = cluster.replicas[0].http_get("/healthz").await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    let ready = eventually(WAIT, || async {
        (cluster.replicas[0].http_get("/readyz").await.0 == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "never ready");
    let alice = cluster.user("Alice");
    alice.command("/start");
    alice.wait_text("Welcome").await;
    // The answer goes out before the acknowledgement; wait for the counter.
    let metrics = eventually(WAIT, || async {
        let (code, m) = cluster.replicas[0].http_get("/metrics").await;
        (code == 200 && m.contains("anonchat_updates_handled_total 1")).then_some(m)
    })
    .await
    .expect("updates_handled never reached 1");
    assert!(metrics.contains("anonchat_poller_leader 1"), "{metrics}");
    assert!(
        metrics.contains("anonchat_partitions_owned 16"),
        "{metrics}"
    );

    // Redis goes away: the replica stays up and reports not ready.
    cluster.redis.kill();
    let unready = eventually(WAIT, || async {
        (cluster.replicas[0].http_get("/readyz").await.0 == 503).then_some(())
    })
    .await;
    assert!(
        unready.is_some(),
        "readiness should fail while Redis is down"
    );
    assert!(cluster.replicas[0].is_running());
    assert_eq!(cluster.replicas[0].http_get("/healthz").await.0, 200);

    // Redis returns (empty: no persistence in this test): work resumes by itself.
    cluster.redis.restart().await;
    let ready = eventually(WAIT, || async {
        (cluster.replicas[0].http_get("/readyz").await.0 == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "never ready again after Redis came back");
    let bob = cluster.user("Bob");
    bob.command("/start");
    bob.wait_text("Welcome").await;
    assert!(cluster.replicas[0].is_running());
}
