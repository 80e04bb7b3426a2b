//! The fake Telegram Bot API behaves like the real one where the bot can tell.

use std::time::{Duration, Instant};

use anonchat_testkit::fake::{FakeConfig, FakeTelegram, FloodConfig, TgUser};
use serde_json::{json, Value};
use teloxide::prelude::*;
use teloxide::types::{MessageId, ReplyParameters, UpdateKind};

const WAIT: Duration = Duration::from_secs(5);

async fn start() -> FakeTelegram {
    start_with(FakeConfig::default()).await
}

async fn start_with(cfg: FakeConfig) -> FakeTelegram {
    FakeTelegram::start(cfg).await.expect("bind 127.0.0.1:0")
}

/// POST a JSON body to a Bot API method; (HTTP status, response JSON).
async fn call(fake: &FakeTelegram, method: &str, params: Value) -> (u16, Value) {
    let url = format!("{}/bot{}/{}", fake.api_url(), fake.token(), method);
    let resp = reqwest::Client::new()
        .post(url)
        .json(&params)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

async fn ok(fake: &FakeTelegram, method: &str, params: Value) -> Value {
    let (status, body) = call(fake, method, params).await;
    assert_eq!(status, 200, "{method}: {body}");
    assert_eq!(body["ok"], true);
    body["result"].clone()
}

async fn err(fake: &FakeTelegram, method: &str, params: Value) -> (u16, String) {
    let (status, body) = call(fake, method, params).await;
    assert_eq!(body["ok"], false, "{method} should fail: {body}");
    assert_eq!(body["error_code"].as_u64(), Some(u64::from(status)));
    (
        status,
        body["description"].as_str().unwrap_or_default().to_owned(),
    )
}

fn ids(updates: &Value) -> Vec<i64> {
    updates
        .as_array()
        .map(|a| a.iter().filter_map(|u| u["update_id"].as_i64()).collect())
        .unwrap_or_default()
}

fn bot(fake: &FakeTelegram) -> Bot {
    let url = reqwest::Url::parse(&fake.api_url()).expect("api url");
    Bot::new(fake.token()).set_api_url(url)
}

fn alice() -> TgUser {
    TgUser::new(1001, "Alice")
        .with_username("alice")
        .with_language("en")
}

fn bob() -> TgUser {
    TgUser::new(2002, "Bob")
}

#[tokio::test]
async fn teloxide_bot_parses_get_me_and_messages() {
    let fake = start().await;
    let bot = bot(&fake);
    let me = bot.get_me().await.expect("getMe parses as Me");
    assert_eq!(me.username(), "anonchat_fake_bot");
    assert!(me.user.is_bot);

    let a = alice();
    fake.send_text(&a, "hello");
    let sent = bot
        .send_message(ChatId(a.id), "hi there")
        .reply_parameters(ReplyParameters::new(MessageId(1)))
        .await
        .expect("sendMessage parses as Message");
    assert_eq!(sent.text(), Some("hi there"));
    assert_eq!(
        sent.id,
        MessageId(2),
        "ids are shared between both sides of the chat"
    );
    assert_eq!(sent.from.as_ref().map(|u| u.is_bot), Some(true));
    assert_eq!(
        sent.reply_to_message().and_then(|m| m.text()),
        Some("hello")
    );

    // teloxide sends media methods as multipart; file ids are text fields.
    let photo = bot
        .send_photo(
            ChatId(a.id),
            teloxide::types::InputFile::file_id("PHOTO-ID".into()),
        )
        .caption("look")
        .await
        .expect("sendPhoto by file id");
    assert_eq!(photo.caption(), Some("look"));
    assert!(photo.photo().is_some());

    let copy = bot
        .copy_message(ChatId(a.id), ChatId(a.id), MessageId(1))
        .await
        .expect("copyMessage parses as MessageId");
    assert_eq!(copy, MessageId(4));
    let edited = bot
        .edit_message_text(ChatId(a.id), sent.id, "edited")
        .await
        .expect("editMessageText parses");
    assert_eq!(edited.text(), Some("edited"));
    assert_eq!(fake.received(a.id).len(), 3);
}

#[tokio::test]
async fn every_simulated_update_parses_as_a_teloxide_update() {
    let fake = start().await;
    let (a, b) = (alice(), bob());
    let bot_msg = {
        fake.send_text(&a, "hi");
        ok(
            &fake,
            "sendMessage",
            json!({"chat_id": a.id, "text": "menu", "reply_markup": {"inline_keyboard": [[{"text": "Next", "callback_data": "next"}]]}}),
        )
        .await
    };
    let bot_msg_id = bot_msg["message_id"]
        .as_i64()
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or(0);
    fake.send_command(&a, "/start");
    fake.send_text_with_entities(
        &a,
        "bold",
        json!([{"type": "bold", "offset": 0, "length": 4}]),
    );
    fake.send_photo(&a, Some("cap"));
    fake.send_video(&a, None);
    fake.send_sticker(&a);
    fake.send_voice(&a);
    fake.send_video_note(&a);
    fake.send_document(&a, Some("doc"));
    fake.send_album(&b, 3, Some("album"));
    fake.send_message(&a, json!({"location": {"latitude": 1.5, "longitude": 2.5}}));
    fake.send_message(
        &a,
        json!({"contact": {"phone_number": "+100", "first_name": "C"}}),
    );
    fake.send_message(&a, json!({"dice": {"emoji": "🎲", "value": 3}}));
    fake.reply_text(&a, bot_msg_id, "reply to bot")
        .expect("reply");
    let m = fake.send_text(&a, "typo");
    fake.edit_text(&a, m.message_id, "fixed").expect("edit");
    fake.press_button(&a, bot_msg_id, "next").expect("press");
    fake.block(b.id);
    ok(&fake, "getUpdates", json!({"allowed_updates": ["message", "edited_message", "callback_query", "my_chat_member", "message_reaction"]})).await;
    fake.react(&a, bot_msg_id, "👍").expect("react");

    let updates = ok(&fake, "getUpdates", json!({})).await;
    let updates = updates.as_array().cloned().unwrap_or_default();
    assert_eq!(updates.len(), 21);
    for u in updates {
        let parsed: Update = serde_json::from_str(&u.to_string()).expect("Update");
        assert!(
            !matches!(parsed.kind, UpdateKind::Error(_)),
            "did not parse: {u}"
        );
    }
}

#[tokio::test]
async fn method_names_are_case_insensitive_and_token_checked() {
    let fake = start().await;
    fake.register_user(&alice());
    ok(&fake, "GETME", json!({})).await;
    ok(&fake, "SendMessage", json!({"chat_id": 1001, "text": "x"})).await;
    assert_eq!(fake.calls_for("sendMessage").len(), 1);
    assert_eq!(fake.received(1001)[0].method, "sendMessage");

    let (status, desc) = err(&fake, "noSuchMethod", json!({})).await;
    assert_eq!((status, desc.as_str()), (404, "Not Found"));

    let url = format!("{}/bot999:WRONG/getMe", fake.api_url());
    let resp = reqwest::get(url).await.expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
}

#[tokio::test]
async fn form_and_query_parameters_are_decoded_with_json_values() {
    let fake = start().await;
    let a = alice();
    fake.send_text(&a, "first");
    let url = format!(
        "{}/bot{}/sendMessage?chat_id={}",
        fake.api_url(),
        fake.token(),
        a.id
    );
    let resp = reqwest::Client::new()
        .post(url)
        .form(&[
            ("text", "123"),
            ("reply_parameters", r#"{"message_id":1}"#),
            (
                "reply_markup",
                r#"{"inline_keyboard":[[{"text":"a","callback_data":"b"}]]}"#,
            ),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let r = &fake.received(a.id)[0];
    assert_eq!(
        r.text(),
        Some("123"),
        "a numeric-looking text stays a string"
    );
    assert_eq!(r.reply_to, Some(1));
    assert_eq!(r.params["reply_parameters"]["message_id"], 1);
    assert!(r.content["reply_markup"]["inline_keyboard"].is_array());

    let url = format!(
        "{}/bot{}/getUpdates?offset=abc",
        fake.api_url(),
        fake.token()
    );
    let resp = reqwest::get(url).await.expect("request");
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test]
async fn get_updates_offset_negative_offset_and_limit() {
    let fake = start().await;
    let a = alice();
    let sent: Vec<i64> = (0..5)
        .map(|i| fake.send_text(&a, &format!("m{i}")).update_id)
        .collect();
    assert!(sent.windows(2).all(|w| w[1] == w[0] + 1));

    let got = ok(&fake, "getUpdates", json!({"limit": 2})).await;
    assert_eq!(ids(&got), sent[..2]);
    // Not confirmed yet: the same two come again.
    assert_eq!(
        ids(&ok(&fake, "getUpdates", json!({"limit": 2})).await),
        sent[..2]
    );
    // Confirm the first two.
    let got = ok(&fake, "getUpdates", json!({"offset": sent[1] + 1})).await;
    assert_eq!(ids(&got), sent[2..]);
    assert_eq!(fake.confirmed_offset(), sent[1] + 1);
    assert_eq!(fake.pending_updates().len(), 3);
    // A negative offset keeps only the last N.
    let got = ok(&fake, "getUpdates", json!({"offset": -1})).await;
    assert_eq!(ids(&got), vec![sent[4]]);
    assert_eq!(fake.pending_updates().len(), 1);
    ok(&fake, "getUpdates", json!({"offset": sent[4] + 1})).await;
    assert!(fake.pending_updates().is_empty());
    let c = fake.counters();
    assert_eq!(c.updates_enqueued, 5);
    assert_eq!(c.updates_confirmed, 5);
}

#[tokio::test]
async fn allowed_updates_filter_and_persist() {
    let fake = start().await;
    let a = alice();
    let m = fake.send_text(&a, "hi");
    // message_reaction is excluded by default: Telegram never creates the update.
    fake.react(&a, m.message_id, "👍").expect("react");
    assert_eq!(fake.pending_updates().len(), 1);

    ok(
        &fake,
        "getUpdates",
        json!({"offset": m.update_id + 1, "allowed_updates": ["message_reaction"]}),
    )
    .await;
    fake.send_text(&a, "not delivered");
    let r = fake.react(&a, m.message_id, "🔥").expect("react");
    // The setting persists when allowed_updates is omitted.
    let got = ok(&fake, "getUpdates", json!({})).await;
    assert_eq!(ids(&got), vec![r]);
    let reaction = &got[0]["message_reaction"];
    assert_eq!(
        reaction["old_reaction"],
        json!([{"type": "emoji", "emoji": "👍"}])
    );
    assert_eq!(
        reaction["new_reaction"],
        json!([{"type": "emoji", "emoji": "🔥"}])
    );

    // An empty list restores the default.
    ok(
        &fake,
        "getUpdates",
        json!({"offset": r + 1, "allowed_updates": []}),
    )
    .await;
    let t = fake.send_text(&a, "back").update_id;
    fake.react(&a, m.message_id, "").expect("react");
    assert_eq!(ids(&ok(&fake, "getUpdates", json!({})).await), vec![t]);
}

#[tokio::test]
async fn long_poll_wakes_on_new_update() {
    let fake = start().await;
    let poller = {
        let fake = fake.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let got = ok(&fake, "getUpdates", json!({"timeout": 20})).await;
            (got, t.elapsed())
        })
    };
    // Let the poll start and park before the update exists.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = fake.send_text(&alice(), "wake up").update_id;
    let (got, elapsed) = tokio::time::timeout(WAIT, poller)
        .await
        .expect("poll returned")
        .expect("task");
    assert_eq!(ids(&got), vec![id]);
    assert!(
        elapsed < Duration::from_secs(5),
        "returned after {elapsed:?}"
    );

    // With nothing to deliver, a short timeout returns an empty list when it expires.
    let t = Instant::now();
    let got = ok(&fake, "getUpdates", json!({"offset": id + 1, "timeout": 1})).await;
    assert_eq!(got, json!([]));
    assert!(t.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn newer_poller_terminates_older_with_conflict() {
    let fake = start().await;
    let older = {
        let fake = fake.clone();
        tokio::spawn(async move { call(&fake, "getUpdates", json!({"timeout": 30})).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let newer = {
        let fake = fake.clone();
        tokio::spawn(async move { call(&fake, "getUpdates", json!({"timeout": 2})).await })
    };
    let (status, body) = tokio::time::timeout(WAIT, older)
        .await
        .expect("older returned")
        .expect("task");
    assert_eq!(status, 409);
    assert_eq!(
        body["description"],
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
    );
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "the older poll fails at once"
    );
    let id = fake.send_text(&alice(), "x").update_id;
    let (status, body) = tokio::time::timeout(WAIT, newer)
        .await
        .expect("newer returned")
        .expect("task");
    assert_eq!(status, 200);
    assert_eq!(ids(&body["result"]), vec![id]);
    assert_eq!(fake.counters().get_updates_conflicts, 1);
}

#[tokio::test]
async fn webhook_blocks_get_updates_and_delivers_with_secret() {
    use axum::{http::HeaderMap, routing::post, Json, Router};
    let fake = start().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Option<String>, Value)>();
    let fail_first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, Json(update): Json<Value>| {
            let tx = tx.clone();
            let fail_first = fail_first.clone();
            async move {
                if fail_first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let secret = headers
                    .get("X-Telegram-Bot-Api-Secret-Token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let _ = tx.send((secret, update));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    ok(
        &fake,
        "setWebhook",
        json!({"url": hook, "secret_token": "s3cret", "allowed_updates": ["message"]}),
    )
    .await;
    let (status, desc) = err(&fake, "getUpdates", json!({})).await;
    assert_eq!(status, 409);
    assert!(desc.starts_with("Conflict: can't use getUpdates method while webhook is active"));
    let info = ok(&fake, "getWebhookInfo", json!({})).await;
    assert_eq!(info["url"], hook);

    let a = alice();
    let first = fake.send_text(&a, "one").update_id;
    let second = fake.send_text(&a, "two").update_id;
    for expected in [first, second] {
        let (secret, update) = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("delivered")
            .expect("open");
        assert_eq!(secret.as_deref(), Some("s3cret"));
        assert_eq!(update["update_id"], expected, "in order, after a retry");
    }
    fake.wait_until(WAIT, || fake.pending_updates().is_empty().then_some(()))
        .await
        .expect("confirmed");
    assert!(fake.counters().webhook_failures >= 1);

    ok(
        &fake,
        "deleteWebhook",
        json!({"drop_pending_updates": true}),
    )
    .await;
    ok(&fake, "getUpdates", json!({})).await;
}

#[tokio::test]
async fn copy_message_carries_content_not_identity() {
    let fake = start().await;
    let (a, b) = (alice(), bob());
    fake.register_user(&b);
    let m = fake.send_text_with_entities(
        &a,
        "secret",
        json!([{"type": "bold", "offset": 0, "length": 6}]),
    );
    let r = ok(&fake, "copyMessage", json!({"chat_id": b.id, "from_chat_id": a.id, "message_id": m.message_id, "protect_content": true})).await;
    assert_eq!(r, json!({"message_id": 1}));
    let got = &fake.received(b.id)[0];
    assert_eq!(got.method, "copyMessage");
    assert_eq!(got.source, Some((a.id, m.message_id)));
    assert_eq!(got.content["text"], "secret");
    assert_eq!(got.content["entities"][0]["type"], "bold");
    assert_eq!(got.content["from"]["is_bot"], true);
    assert_eq!(got.content["chat"]["id"], b.id);
    assert_eq!(got.content["has_protected_content"], true);
    let s = got.content.to_string();
    assert!(
        !s.contains("alice") && !s.contains("Alice") && !s.contains("forward_origin"),
        "{s}"
    );

    // Photo with caption override.
    let p = fake.send_photo(&a, Some("old caption"));
    ok(&fake, "copyMessage", json!({"chat_id": b.id, "from_chat_id": a.id, "message_id": p.message_id, "caption": "new"})).await;
    let got = &fake.received(b.id)[1];
    assert_eq!(got.content["caption"], "new");
    assert!(got.content["photo"].is_array());

    // forwardMessage reveals the sender (the bot must never use it).
    let fwd = ok(
        &fake,
        "forwardMessage",
        json!({"chat_id": b.id, "from_chat_id": a.id, "message_id": m.message_id}),
    )
    .await;
    assert_eq!(fwd["forward_origin"]["sender_user"]["id"], a.id);

    let (status, desc) = err(
        &fake,
        "copyMessage",
        json!({"chat_id": b.id, "from_chat_id": a.id, "message_id": 999}),
    )
    .await;
    assert_eq!(
        (status, desc.as_str()),
        (400, "Bad Request: message to copy not found")
    );
    let svc = fake.send_message(
        &a,
        json!({"successful_payment": {"currency": "XTR", "total_amount": 1}}),
    );
    let (_, desc) = err(
        &fake,
        "copyMessage",
        json!({"chat_id": b.id, "from_chat_id": a.id, "message_id": svc.message_id}),
    )
    .await;
    assert_eq!(desc, "Bad Request: message can't be copied");
    let (status, desc) = err(
        &fake,
        "copyMessage",
        json!({"chat_id": 777, "from_chat_id": a.id, "message_id": m.message_id}),
    )
    .await;
    assert_eq!(
        (status, desc.as_str()),
        (400, "Bad Request: chat not found")
    );
}

#[tokio::test]
async fn copy_messages_keeps_albums_in_order() {
    let fake = start().await;
    let (a, b) = (alice(), bob());
    fake.send_text(&b, "hi");
    let album = fake.send_album(&a, 3, Some("trip"));
    let ids_in: Vec<i32> = album.iter().map(|s| s.message_id).collect();
    let r = ok(
        &fake,
        "copyMessages",
        json!({"chat_id": b.id, "from_chat_id": a.id, "message_ids": ids_in}),
    )
    .await;
    assert_eq!(
        r,
        json!([{"message_id": 2}, {"message_id": 3}, {"message_id": 4}])
    );
    let got = fake.received(b.id);
    assert_eq!(got.len(), 3);
    let groups: Vec<&Value> = got.iter().map(|r| &r.content["media_group_id"]).collect();
    assert!(groups[0].is_string());
    assert!(groups.iter().all(|g| *g == groups[0]), "one new album");
    let src_group = &fake.history(a.id)[0]["media_group_id"];
    assert_ne!(groups[0], src_group, "a new media_group_id");
    assert_eq!(got[0].content["caption"], "trip");
    assert_eq!(
        got.iter()
            .map(|r| r.source.map(|s| s.1))
            .collect::<Vec<_>>(),
        ids_in.iter().map(|i| Some(*i)).collect::<Vec<_>>()
    );

    let (status, _) = err(
        &fake,
        "copyMessages",
        json!({"chat_id": b.id, "from_chat_id": a.id, "message_ids": [3, 2]}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = err(
        &fake,
        "copyMessages",
        json!({"chat_id": b.id, "from_chat_id": a.id, "message_ids": []}),
    )
    .await;
    assert_eq!(status, 400);
    let lat = fake.latencies();
    assert_eq!(lat.len(), 3);
    assert_eq!(lat[0].update_id, album[0].update_id);
}

#[tokio::test]
async fn reply_parameters_are_validated() {
    let fake = start().await;
    let a = alice();
    let m = fake.send_text(&a, "question");
    let r = ok(&fake, "sendMessage", json!({"chat_id": a.id, "text": "answer", "reply_parameters": {"message_id": m.message_id}})).await;
    assert_eq!(r["reply_to_message"]["text"], "question");
    assert_eq!(fake.received(a.id)[0].reply_to, Some(m.message_id));

    let (status, desc) = err(
        &fake,
        "sendMessage",
        json!({"chat_id": a.id, "text": "x", "reply_parameters": {"message_id": 42}}),
    )
    .await;
    assert_eq!(
        (status, desc.as_str()),
        (400, "Bad Request: message to be replied not found")
    );
    let r = ok(
        &fake,
        "sendMessage",
        json!({"chat_id": a.id, "text": "x", "reply_parameters": {"message_id": 42, "allow_sending_without_reply": true}}),
    )
    .await;
    assert!(r.get("reply_to_message").is_none());

    // A user's reply carries the full replied message, whichever side sent it.
    let bot_id = r["message_id"]
        .as_i64()
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or(0);
    let reply = fake.reply_text(&a, bot_id, "to the bot").expect("reply");
    let u = fake
        .pending_updates()
        .into_iter()
        .find(|u| u["update_id"] == reply.update_id)
        .expect("update");
    assert_eq!(u["message"]["reply_to_message"]["from"]["is_bot"], true);
    assert!(fake.reply_text(&a, 999, "x").is_err());
}

#[tokio::test]
async fn edit_message_text_and_not_modified() {
    let fake = start().await;
    let a = alice();
    let m = fake.send_text(&a, "hi");
    let sent = ok(&fake, "sendMessage", json!({"chat_id": a.id, "text": "v1"})).await;
    let id = sent["message_id"].clone();
    let e = ok(
        &fake,
        "editMessageText",
        json!({"chat_id": a.id, "message_id": id, "text": "v2"}),
    )
    .await;
    assert_eq!(e["text"], "v2");
    assert!(e["edit_date"].is_i64());
    let r = &fake.received(a.id)[0];
    assert_eq!(r.text(), Some("v2"));
    assert_eq!(r.edits.len(), 1);

    let (status, desc) = err(
        &fake,
        "editMessageText",
        json!({"chat_id": a.id, "message_id": id, "text": "v2"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(desc, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message");
    let (_, desc) = err(
        &fake,
        "editMessageText",
        json!({"chat_id": a.id, "message_id": 99, "text": "v3"}),
    )
    .await;
    assert_eq!(desc, "Bad Request: message to edit not found");
    let (_, desc) = err(
        &fake,
        "editMessageText",
        json!({"chat_id": a.id, "message_id": m.message_id, "text": "v3"}),
    )
    .await;
    assert_eq!(desc, "Bad Request: message can't be edited");
    let (_, desc) = err(
        &fake,
        "editMessageCaption",
        json!({"chat_id": a.id, "message_id": id, "caption": "c"}),
    )
    .await;
    assert_eq!(
        desc,
        "Bad Request: there is no caption in the message to edit"
    );

    // Reactions, deletes and callback answers are recorded.
    ok(
        &fake,
        "setMessageReaction",
        json!({"chat_id": a.id, "message_id": id, "reaction": [{"type": "emoji", "emoji": "👍"}]}),
    )
    .await;
    assert_eq!(fake.received(a.id)[0].reactions.len(), 1);
    ok(&fake, "setMessageReaction", json!({"chat_id": a.id, "message_id": m.message_id, "reaction": [{"type": "emoji", "emoji": "❤"}]})).await;
    assert_eq!(
        fake.bot_reaction(a.id, m.message_id),
        Some(vec![json!({"type": "emoji", "emoji": "❤"})])
    );
    let (_, desc) = err(
        &fake,
        "setMessageReaction",
        json!({"chat_id": a.id, "message_id": 77, "reaction": []}),
    )
    .await;
    assert_eq!(desc, "Bad Request: message to react not found");
    ok(
        &fake,
        "deleteMessage",
        json!({"chat_id": a.id, "message_id": id}),
    )
    .await;
    assert!(fake.received(a.id)[0].deleted);
    let (_, desc) = err(
        &fake,
        "deleteMessage",
        json!({"chat_id": a.id, "message_id": id}),
    )
    .await;
    assert_eq!(desc, "Bad Request: message to delete not found");
}

#[tokio::test]
async fn flood_control_answers_429_and_counts_violations() {
    let cfg = FakeConfig {
        flood: Some(FloodConfig {
            per_chat_rate: 1.0,
            per_chat_burst: 2,
            global_rate: 100.0,
            global_burst: 100,
        }),
        ..FakeConfig::default()
    };
    let fake = start_with(cfg).await;
    let a = alice();
    fake.send_text(&a, "hi");
    ok(&fake, "sendMessage", json!({"chat_id": a.id, "text": "1"})).await;
    ok(&fake, "sendMessage", json!({"chat_id": a.id, "text": "2"})).await;
    let (status, body) = call(&fake, "sendMessage", json!({"chat_id": a.id, "text": "3"})).await;
    assert_eq!(status, 429);
    assert_eq!(body["parameters"]["retry_after"], 1);
    assert_eq!(body["description"], "Too Many Requests: retry after 1");
    assert_eq!(fake.counters().violations, 0);
    // Ignoring retry_after is a violation.
    let (status, _) = call(&fake, "sendMessage", json!({"chat_id": a.id, "text": "4"})).await;
    assert_eq!(status, 429);
    let c = fake.counters();
    assert_eq!((c.too_many_requests, c.violations), (2, 1));
    assert!(fake.too_many_requests()[0].violated);
}

#[tokio::test]
async fn forced_429_and_its_deadline() {
    let fake = start().await;
    let (a, b) = (alice(), bob());
    fake.send_text(&a, "hi");
    fake.send_text(&b, "hi");
    fake.force_429(a.id, 7);
    let (status, body) = call(
        &fake,
        "copyMessage",
        json!({"chat_id": a.id, "from_chat_id": b.id, "message_id": 1}),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(body["parameters"]["retry_after"], 7);
    assert_eq!(fake.counters().violations, 0);
    // Other chats are unaffected; the same chat is refused until the deadline.
    ok(
        &fake,
        "sendMessage",
        json!({"chat_id": b.id, "text": "fine"}),
    )
    .await;
    let (status, _) = call(
        &fake,
        "sendMessage",
        json!({"chat_id": a.id, "text": "too soon"}),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(fake.counters().violations, 1);
    assert!(fake.received(a.id).is_empty());
}

#[tokio::test]
async fn blocked_and_deleted_users_get_403() {
    let fake = start().await;
    let (a, b) = (alice(), bob());
    let m = fake.send_text(&a, "hi");
    ok(&fake, "getUpdates", json!({"offset": m.update_id + 1})).await;
    let upd = fake.block(a.id).expect("blocked");
    let (status, desc) = err(&fake, "sendMessage", json!({"chat_id": a.id, "text": "x"})).await;
    assert_eq!(
        (status, desc.as_str()),
        (403, "Forbidden: bot was blocked by the user")
    );
    let got = ok(&fake, "getUpdates", json!({})).await;
    assert_eq!(ids(&got), vec![upd]);
    let member = &got[0]["my_chat_member"];
    assert_eq!(member["old_chat_member"]["status"], "member");
    assert_eq!(member["new_chat_member"]["status"], "kicked");
    assert_eq!(member["chat"]["id"], a.id);
    let parsed: Update = serde_json::from_str(&got[0].to_string()).expect("update");
    assert!(matches!(parsed.kind, UpdateKind::MyChatMember(_)));

    fake.unblock(a.id).expect("unblocked");
    ok(
        &fake,
        "sendMessage",
        json!({"chat_id": a.id, "text": "back"}),
    )
    .await;

    fake.send_text(&b, "hi");
    fake.delete_account(b.id);
    let (status, desc) = err(&fake, "sendMessage", json!({"chat_id": b.id, "text": "x"})).await;
    assert_eq!(
        (status, desc.as_str()),
        (403, "Forbidden: user is deactivated")
    );

    let (status, desc) = err(
        &fake,
        "sendMessage",
        json!({"chat_id": 424242, "text": "x"}),
    )
    .await;
    assert_eq!(
        (status, desc.as_str()),
        (400, "Bad Request: chat not found")
    );
    let (status, desc) = err(&fake, "sendMessage", json!({"text": "x"})).await;
    assert_eq!(
        (status, desc.as_str()),
        (400, "Bad Request: chat_id is empty")
    );
}

#[tokio::test]
async fn commands_and_callback_answers() {
    let fake = start().await;
    let a = alice();
    ok(
        &fake,
        "setMyCommands",
        json!({"commands": [{"command": "search", "description": "Find a stranger"}]}),
    )
    .await;
    assert_eq!(fake.my_commands()[0].command, "search");
    let got = ok(&fake, "getMyCommands", json!({})).await;
    assert_eq!(got[0]["description"], "Find a stranger");
    let (status, _) = err(
        &fake,
        "setMyCommands",
        json!({"commands": [{"command": "Bad Cmd", "description": "x"}]}),
    )
    .await;
    assert_eq!(status, 400);

    fake.send_text(&a, "hi");
    let m = ok(
        &fake,
        "sendMessage",
        json!({"chat_id": a.id, "text": "menu"}),
    )
    .await;
    let id = m["message_id"]
        .as_i64()
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or(0);
    let press = fake.press_button(&a, id, "next").expect("press");
    ok(
        &fake,
        "answerCallbackQuery",
        json!({"callback_query_id": press.callback_query_id, "text": "ok"}),
    )
    .await;
    assert_eq!(fake.callback_answers()[0]["text"], "ok");
    let (status, _) = err(
        &fake,
        "answerCallbackQuery",
        json!({"callback_query_id": "nope"}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn wait_for_resolves_on_arrival() {
    let fake = start().await;
    let a = alice();
    fake.send_text(&a, "hi");
    let waiter = {
        let fake = fake.clone();
        tokio::spawn(async move {
            fake.wait_for(1001, |r| r.text() == Some("late"), WAIT)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    ok(
        &fake,
        "sendMessage",
        json!({"chat_id": a.id, "text": "late"}),
    )
    .await;
    let got = tokio::time::timeout(WAIT, waiter)
        .await
        .expect("resolved")
        .expect("task");
    assert_eq!(got.map(|r| r.message_id), Some(2));
    assert!(fake
        .wait_for(
            1001,
            |r| r.text() == Some("never"),
            Duration::from_millis(50)
        )
        .await
        .is_none());
}

#[tokio::test]
async fn bounded_memory() {
    let cfg = FakeConfig {
        max_pending_updates: 3,
        max_messages_per_chat: 2,
        ..FakeConfig::default()
    };
    let fake = start_with(cfg).await;
    let a = alice();
    let sent: Vec<i64> = (0..5)
        .map(|i| fake.send_text(&a, &i.to_string()).update_id)
        .collect();
    assert_eq!(ids(&Value::Array(fake.pending_updates())), sent[2..]);
    assert_eq!(fake.history(a.id).len(), 2);
    assert_eq!(fake.counters().updates_dropped, 2);
}

#[tokio::test]
async fn control_http_routes() {
    let fake = start().await;
    let http = reqwest::Client::new();
    let base = fake.api_url();
    let sent: Value = http
        .post(format!("{base}/control/send_text"))
        .json(&json!({"user": {"id": 5, "first_name": "Eve"}, "text": "hello"}))
        .send()
        .await
        .expect("send_text")
        .json()
        .await
        .expect("json");
    assert_eq!(sent["message_id"], 1);
    let pending = fake.pending_updates();
    assert_eq!(pending[0]["message"]["from"]["first_name"], "Eve");

    let waiter = {
        let http = http.clone();
        let base = base.clone();
        tokio::spawn(async move {
            http.get(format!("{base}/control/wait/5?count=1&timeout_ms=5000"))
                .send()
                .await
        })
    };
    ok(&fake, "sendMessage", json!({"chat_id": 5, "text": "hey"})).await;
    let resp = tokio::time::timeout(WAIT, waiter)
        .await
        .expect("resolved")
        .expect("task")
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let received: Value = resp.json().await.expect("json");
    assert_eq!(received[0]["content"]["text"], "hey");

    let counters: Value = http
        .get(format!("{base}/control/counters"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(counters["calls_by_method"]["sendMessage"], 1);
    let calls: Value = http
        .get(format!("{base}/control/calls?method=sendMessage"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(calls.as_array().map(Vec::len), Some(1));
    let resp = http
        .post(format!("{base}/control/block"))
        .json(&json!({"user_id": 5}))
        .send()
        .await
        .expect("block");
    assert_eq!(resp.status().as_u16(), 200);
    let (status, _) = err(&fake, "sendMessage", json!({"chat_id": 5, "text": "x"})).await;
    assert_eq!(status, 403);
    let resp = http
        .post(format!("{base}/control/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(fake.received(5).is_empty());
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let fake = start().await;
    let url = format!("{}/bot{}/getMe", fake.api_url(), fake.token());
    assert!(reqwest::get(&url).await.is_ok());
    drop(fake);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let mut stopped = false;
    for _ in 0..50 {
        if client.get(&url).send().await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped);
}

// ------------------------------------------------------------ fault injection

/// POST a control action; its HTTP status.
async fn control(fake: &FakeTelegram, action: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/control/{action}", fake.api_url()))
        .json(&body)
        .send()
        .await
        .expect("control request")
        .status()
        .as_u16()
}

#[tokio::test]
async fn fail_for_answers_5xx_without_effect_except_to_ingest() {
    let fake = start().await;
    let a = alice();
    fake.send_text(&a, "hi");
    fake.fail_for(Duration::from_secs(30), 500, "Internal Server Error");
    let (status, body) = call(&fake, "sendMessage", json!({"chat_id": a.id, "text": "x"})).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 500, "description": "Internal Server Error"})
    );
    let (status, _) = call(
        &fake,
        "copyMessage",
        json!({"chat_id": a.id, "from_chat_id": a.id, "message_id": 1}),
    )
    .await;
    assert_eq!(status, 500);
    // Ingest and start-up are untouched.
    ok(&fake, "getMe", json!({})).await;
    assert_eq!(ids(&ok(&fake, "getUpdates", json!({})).await).len(), 1);
    assert!(fake.received(a.id).is_empty(), "a failed call delivered");
    assert_eq!(fake.counters().injected_failures, 2);
    let failed = fake.calls_for("sendMessage");
    assert!(failed[0].injected && failed[0].status == 500);

    // The HTTP route sets a window the same way (502 by its default text).
    assert_eq!(
        control(
            &fake,
            "fail_for",
            json!({"duration_ms": 30_000, "status": 502})
        )
        .await,
        200
    );
    let (status, desc) = err(&fake, "sendMessage", json!({"chat_id": a.id, "text": "x"})).await;
    assert_eq!((status, desc.as_str()), (502, "Bad Gateway"));
    // A zero window ends it.
    fake.fail_for(Duration::ZERO, 500, "Internal Server Error");
    ok(&fake, "sendMessage", json!({"chat_id": a.id, "text": "y"})).await;
    assert_eq!(fake.received(a.id).len(), 1);
    assert_eq!(fake.counters().injected_failures, 3);
}

#[tokio::test]
async fn hang_for_stalls_past_the_client_timeout_and_never_delivers() {
    let fake = start().await;
    let a = alice();
    fake.send_text(&a, "hi");
    fake.hang_for(Duration::from_secs(30));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let url = format!("{}/bot{}/sendMessage", fake.api_url(), fake.token());
    let started = Instant::now();
    let r = client
        .post(&url)
        .json(&json!({"chat_id": a.id, "text": "x"}))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()), "a hung call answered");
    assert!(started.elapsed() < WAIT);
    // Recorded on arrival; ingest is untouched.
    assert_eq!(fake.counters().injected_hangs, 1);
    assert!(fake.calls_for("sendMessage")[0].injected);
    assert_eq!(ids(&ok(&fake, "getUpdates", json!({})).await).len(), 1);
    // Over HTTP, a zero window ends it; the hung call still never delivered.
    assert_eq!(
        control(&fake, "hang_for", json!({"duration_ms": 0})).await,
        200
    );
    ok(&fake, "sendMessage", json!({"chat_id": a.id, "text": "y"})).await;
    let texts: Vec<_> = fake
        .received(a.id)
        .iter()
        .map(|r| r.text().map(str::to_owned))
        .collect();
    assert_eq!(texts, vec![Some("y".to_owned())]);
}

#[tokio::test]
async fn token_aliases_are_the_same_bot_and_recorded_per_call() {
    let cfg = FakeConfig {
        token_aliases: vec!["123456:REPLICA-1".into()],
        ..FakeConfig::default()
    };
    let fake = start_with(cfg).await;
    fake.add_token_alias("123456:REPLICA-2");
    assert_eq!(
        control(
            &fake,
            "add_token_alias",
            json!({"token": "123456:REPLICA-3"})
        )
        .await,
        200
    );
    let a = alice();
    fake.register_user(&a);
    let http = reqwest::Client::new();
    for token in [
        fake.token(),
        "123456:REPLICA-1",
        "123456:REPLICA-2",
        "123456:REPLICA-3",
        "123456:UNKNOWN",
    ] {
        let status = http
            .post(format!("{}/bot{token}/sendMessage", fake.api_url()))
            .json(&json!({"chat_id": a.id, "text": token}))
            .send()
            .await
            .expect("request")
            .status()
            .as_u16();
        let want = if token.ends_with("UNKNOWN") { 401 } else { 200 };
        assert_eq!(status, want, "{token}");
    }
    // One chat, one message sequence, whichever token sent.
    let got: Vec<i32> = fake.received(a.id).iter().map(|r| r.message_id).collect();
    assert_eq!(got, vec![1, 2, 3, 4]);
    let by: Vec<String> = fake.calls().into_iter().map(|c| c.token).collect();
    assert_eq!(
        by,
        vec![
            fake.token(),
            "123456:REPLICA-1",
            "123456:REPLICA-2",
            "123456:REPLICA-3"
        ]
    );
    assert_eq!(fake.calls_by_token("123456:REPLICA-2").len(), 1);
    let calls: Value = http
        .get(format!(
            "{}/control/calls?token=123456:REPLICA-3",
            fake.api_url()
        ))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(calls[0]["token"], "123456:REPLICA-3");
    assert_eq!(calls.as_array().map(Vec::len), Some(1));
}
