//! Delivery under faults (issue 11): a callback handled twice, Telegram
//! restarting its update ids, webhook hardening, two processes claiming one
//! replica id.

use std::time::Duration;

use anonchat::bot::texts::{text, Lang};
use anonchat_testkit::fake::Received;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{eventually, Cluster, Replica, User, WAIT};

/// Callback data of every inline button of a message, as it is now (edits included).
fn buttons(u: &User, message_id: i32) -> Vec<String> {
    u.received()
        .iter()
        .rev()
        .find(|r| r.message_id == message_id)
        .map(|r| {
            r.content["reply_markup"]["inline_keyboard"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|row| row.as_array().cloned().unwrap_or_default())
                .filter_map(|b| b["callback_data"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn protect_field(cluster: &Cluster, user: &User) -> Option<String> {
    let mut conn = cluster.redis.conn().await;
    redis::cmd("HGET")
        .arg(cluster.keys().user(user.id()))
        .arg("pr")
        .query_async(&mut conn)
        .await
        .expect("HGET")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_button_pressed_twice_leaves_the_value_on_the_button() {
    let cluster = Cluster::start(1).await;
    let alice = cluster.user("Alice");
    alice.command("/settings");
    let title = text("settings_title", Lang::En);
    let menu: Received = alice.wait_text(&title).await;
    let data = buttons(&alice, menu.message_id)
        .into_iter()
        .find(|d| d.starts_with("set:protect"))
        .expect("a protect button");
    // The same press handled twice (a double tap, or one callback update
    // delivered again after a crash before its acknowledgement).
    alice.press(menu.message_id, &data).await;
    alice.press(menu.message_id, &data).await;
    assert_eq!(protect_field(&cluster, &alice).await.as_deref(), Some("1"));
    // The buttons now offer the opposite value (edited after the answer).
    let redrawn = eventually(WAIT, || async {
        buttons(&alice, menu.message_id)
            .contains(&"set:protect:0".to_string())
            .then_some(())
    })
    .await;
    assert!(redrawn.is_some(), "{:?}", buttons(&alice, menu.message_id));

    // A button of a message sent before values were in the data re-renders
    // the current settings and changes nothing.
    alice.press(menu.message_id, "set:protect").await;
    assert_eq!(protect_field(&cluster, &alice).await.as_deref(), Some("1"));
    alice.press(menu.message_id, "set:protect:0").await;
    assert_eq!(protect_field(&cluster, &alice).await.as_deref(), Some("0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_keep_arriving_after_telegram_restarts_update_ids_lower() {
    let cluster = Cluster::start(1).await;
    let alice = cluster.user("Alice");
    alice.command("/start");
    alice.wait_text("Welcome").await;
    // A week without updates: Telegram starts again at a lower id.
    cluster.tg.restart_update_ids(1_000);
    for n in 2..=3 {
        alice.command("/start");
        let got = eventually(WAIT, || async {
            (alice.count_text("Welcome") >= n).then_some(())
        })
        .await;
        assert!(
            got.is_some(),
            "update {n} after the id restart was never handled"
        );
    }
    let mut conn = cluster.redis.conn().await;
    let offset: i64 = redis::cmd("GET")
        .arg(cluster.keys().poller_offset())
        .query_async(&mut conn)
        .await
        .expect("GET offset");
    assert!((1_001..1_010).contains(&offset), "stored offset {offset}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_with_the_same_replica_id_is_refused() {
    let mut cluster = Cluster::start(1).await;
    let mut env = cluster.env.clone();
    env.insert("REPLICA_ID".into(), cluster.replicas[0].name.clone());
    let mut twin = Replica::spawn("twin", &env);
    let status = twin
        .wait_exit(WAIT)
        .await
        .expect("the twin should refuse to start");
    assert!(!status.success());
    let line = twin
        .wait_log(Duration::from_secs(2), |l| l.starts_with("anonchat:"))
        .await
        .unwrap_or_else(|| twin.logs().join("\n"));
    assert!(
        line.contains("REPLICA_ID") && line.contains(&cluster.replicas[0].name),
        "{line}"
    );
    // The first keeps working.
    assert!(cluster.replicas[0].is_running());
    let alice = cluster.user("Alice");
    alice.command("/start");
    alice.wait_text("Welcome").await;

    // A crashed process does not hold its id for long: a restart under the
    // same id starts once the dead one's registration expires.
    cluster.replicas[0].kill();
    let mut again = Replica::spawn("again", &env);
    again.wait_running().await;
    let bob = cluster.user("Bob");
    bob.command("/start");
    bob.wait_text("Welcome").await;
}

/// The address a replica logged for its webhook listener.
async fn webhook_addr(r: &Replica) -> std::net::SocketAddr {
    let line = r
        .wait_log(WAIT, |l| l.contains("webhook listening"))
        .await
        .expect("webhook listener logged");
    let v: serde_json::Value = serde_json::from_str(&line).expect("json log");
    v["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("addr field")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_has_its_own_listener_one_connection_and_limits() {
    let secret = "s3cret-token";
    let cluster = Cluster::start_with(
        1,
        &[
            ("INGEST", "webhook"),
            ("WEBHOOK_SECRET", secret),
            ("WEBHOOK_ADDR", "127.0.0.1:0"),
            ("HTTP_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let r = &cluster.replicas[0];
    let hook = webhook_addr(r).await;
    let url = format!("http://{hook}/telegram/webhook");
    let mut env = cluster.env.clone();
    env.insert("WEBHOOK_URL".into(), url.clone());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anonchat"))
        .arg("set-webhook")
        .env_clear()
        .envs(&env)
        .output()
        .expect("run set-webhook");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = cluster.tg.webhook_info();
    assert_eq!(info["url"], url.as_str());
    // One delivery at a time: Telegram cannot reorder a chat's updates.
    assert_eq!(info["max_connections"], 1, "{info}");

    let alice = cluster.user("Alice");
    alice.command("/start");
    alice.wait_text("Welcome").await;

    // Operations endpoints are not on the public listener, and the webhook
    // is not on the operations listener.
    let client = reqwest::Client::new();
    let m = client
        .get(format!("http://{hook}/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(m.status().as_u16(), 404);
    assert_eq!(r.http_get("/metrics").await.0, 200);
    let ops = r.http_addr.expect("http addr");
    let w = client
        .post(format!("http://{ops}/telegram/webhook"))
        .header("X-Telegram-Bot-Api-Secret-Token", secret)
        .body("{}")
        .send()
        .await
        .expect("post");
    assert!(w.status().is_client_error(), "{}", w.status());

    // An oversized body is refused.
    let big = client
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", secret)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .expect("post");
    assert_eq!(big.status().as_u16(), 413);

    // A body that never arrives does not hold the request open.
    let mut tcp = tokio::net::TcpStream::connect(hook).await.expect("connect");
    let head = format!(
        "POST /telegram/webhook HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: {secret}\r\nContent-Length: 100\r\n\r\n{{"
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("answered within the request timeout")
        .expect("read");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
