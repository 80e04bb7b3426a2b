//! The HTTP face of the fake: `/bot<token>/<method>` and `/control/...`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::api::{self, Params};
use super::state::{ApiError, ApiResult, FailWindow, Injected};
use super::{CallRecord, Shared, TgUser};

/// Longest long poll Telegram allows.
const MAX_POLL_SECS: i64 = 50;

pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut stop = shared.shutdown.subscribe();
    let app = router(shared);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            // An error means every sender is gone: also a reason to stop.
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "fake telegram server stopped");
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/control/received/{chat_id}", get(control_received))
        .route("/control/history/{chat_id}", get(control_history))
        .route("/control/wait/{chat_id}", get(control_wait))
        .route("/control/calls", get(control_calls))
        .route("/control/{action}", get(control_get).post(control_post))
        .route("/{bot}/{method}", any(bot_api))
        .fallback(|| async { api_error(&ApiError::new(404, "Not Found")) })
        .with_state(shared)
}

fn api_error(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(e.to_json())).into_response()
}

async fn bot_api(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = match bot.strip_prefix("bot") {
        Some(t) if shared.lock().accepts(t) => t.to_owned(),
        _ => return api_error(&ApiError::new(401, "Unauthorized")),
    };
    let at = Instant::now();
    let canonical = api::canonical(&method);
    let parsed = parse_params(&headers, query.as_deref(), &body);
    let injected = match (canonical, &parsed) {
        (Some(m), Ok(_)) => shared.lock().injected_fault(m, at),
        _ => None,
    };
    let was_injected = injected.is_some();
    let mut hang = None;
    let (params, result) = match (canonical, parsed, injected) {
        (_, Err(e), _) => (Map::new(), Err(e)),
        (None, Ok(p), _) => (p, Err(ApiError::new(404, "Not Found"))),
        (_, Ok(p), Some(Injected::Fail(e))) => (p, Err(e)),
        (_, Ok(p), Some(Injected::Hang(until, e))) => {
            hang = Some(until);
            (p, Err(e))
        }
        (Some("getUpdates"), Ok(p), None) => {
            let r = get_updates(&shared, &p).await;
            (p, r)
        }
        (Some(m), Ok(p), None) => {
            let r = shared.lock().dispatch(m, &p);
            (p, r)
        }
    };
    let (status, error) = match &result {
        Ok(_) => (200, None),
        Err(e) => (e.code, Some(e.description.clone())),
    };
    // Recorded on arrival for a hung call, so a test sees it while it hangs.
    shared.with(|st| {
        let at_ms = st.ms(at);
        st.record_call(CallRecord {
            method: canonical.map(str::to_owned).unwrap_or(method),
            params: Value::Object(params),
            status,
            error,
            token,
            injected: was_injected,
            at,
            at_ms,
        })
    });
    if let Some(until) = hang {
        let mut stop = shared.shutdown.subscribe();
        tokio::select! {
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    match result {
        Ok(v) => Json(json!({"ok": true, "result": v})).into_response(),
        Err(e) => api_error(&e),
    }
}

/// Merge query string and body (JSON, urlencoded form or multipart text fields).
fn parse_params(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    if let Some(q) = query {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            out.insert(k.into_owned(), form_value(&v));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(out);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("multipart/form-data") {
        for (k, v) in parse_multipart(&ct, body)? {
            out.insert(k, form_value(&v));
        }
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in url::form_urlencoded::parse(body) {
            out.insert(k.into_owned(), form_value(&v));
        }
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => out.extend(m),
            _ => return Err(ApiError::bad("can't parse JSON object")),
        }
    }
    Ok(out)
}

/// Form values that are JSON objects or arrays are parsed; everything else stays a
/// string (typed getters parse numbers and booleans, as Telegram does).
fn form_value(v: &str) -> Value {
    let t = v.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        if let Ok(parsed) = serde_json::from_str::<Value>(v) {
            return parsed;
        }
    }
    Value::String(v.to_owned())
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from >= hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Text fields of a multipart body (teloxide sends every media method as multipart,
/// even with a file id). A part with a filename is a real upload: refused.
fn parse_multipart(ct: &str, body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let boundary = ct
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
        .ok_or_else(|| ApiError::bad("can't parse multipart body"))?;
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut pos = find(body, delim.as_bytes(), 0)
        .ok_or_else(|| ApiError::bad("can't parse multipart body"))?;
    loop {
        let start = pos + delim.len();
        if body.get(start..start + 2) == Some(b"--") {
            break;
        }
        let Some(next) = find(body, delim.as_bytes(), start) else {
            break;
        };
        let part = &body[start..next];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let (head, value) = match find(part, b"\r\n\r\n", 0) {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => (part, &b""[..]),
        };
        let head = String::from_utf8_lossy(head);
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .unwrap_or("");
        if disposition.contains("filename=") {
            return Err(ApiError::bad("file uploads are not supported by the fake"));
        }
        let name = disposition
            .split(';')
            .find_map(|p| p.trim().strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_owned());
        if let Some(name) = name {
            out.push((name, String::from_utf8_lossy(value).into_owned()));
        }
        pos = next;
    }
    Ok(out)
}

/// getUpdates: offset confirmation, filtering, long polling, 409 conflicts.
async fn get_updates(shared: &Shared, raw: &Map<String, Value>) -> ApiResult {
    let p = Params(raw);
    let offset = p.i64("offset")?;
    let limit = match p.i64("limit")?.unwrap_or(100) {
        l if l <= 0 => 100,
        l => l.min(100) as usize,
    };
    let timeout = p.i64("timeout")?.unwrap_or(0).clamp(0, MAX_POLL_SECS) as u64;
    let allowed = match p.array("allowed_updates")? {
        Some(a) => Some(
            a.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| ApiError::bad("can't parse allowed_updates"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let epoch = {
        let mut st = shared.lock();
        if st.webhook.is_some() {
            return Err(webhook_conflict());
        }
        st.poll_epoch += 1;
        if let Some(a) = allowed {
            st.allowed = a;
        }
        if let Some(o) = offset {
            st.apply_offset(o);
        }
        st.poll_epoch
    };
    // Wake an older long poll so it can fail with 409 at once.
    shared.bump();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut stop = shared.shutdown.subscribe();
    loop {
        let mut rx = shared.updates.subscribe();
        {
            let mut st = shared.lock();
            if st.poll_epoch != epoch {
                st.counters.get_updates_conflicts += 1;
                return Err(ApiError::new(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                ));
            }
            if st.webhook.is_some() {
                return Err(webhook_conflict());
            }
            let ready = st.ready_updates(limit, offset);
            if !ready.is_empty()
                || timeout == 0
                || tokio::time::Instant::now() >= deadline
                || shared.is_shutdown()
            {
                return Ok(Value::Array(ready));
            }
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return Ok(json!([])); },
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
}

fn webhook_conflict() -> ApiError {
    ApiError::new(
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
    )
}

// ------------------------------------------------------------------ control

type ControlResult = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn control_err(status: StatusCode, msg: impl std::fmt::Display) -> (StatusCode, Json<Value>) {
    (status, Json(json!({"ok": false, "error": msg.to_string()})))
}

fn to_json<T: serde::Serialize>(v: T) -> ControlResult {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| control_err(StatusCode::INTERNAL_SERVER_ERROR, e))
}

fn field_i64(body: &Value, key: &str) -> Result<i64, (StatusCode, Json<Value>)> {
    body.get(key).and_then(Value::as_i64).ok_or_else(|| {
        control_err(
            StatusCode::BAD_REQUEST,
            format!("missing integer field {key}"),
        )
    })
}

fn field_str<'a>(body: &'a Value, key: &str) -> Result<&'a str, (StatusCode, Json<Value>)> {
    body.get(key).and_then(Value::as_str).ok_or_else(|| {
        control_err(
            StatusCode::BAD_REQUEST,
            format!("missing string field {key}"),
        )
    })
}

/// `"user": {...}` or `"user_id": N` (an already known user, else "User N").
fn body_user(shared: &Shared, body: &Value) -> Result<TgUser, (StatusCode, Json<Value>)> {
    if let Some(u) = body.get("user") {
        return serde_json::from_value(u.clone())
            .map_err(|e| control_err(StatusCode::BAD_REQUEST, e));
    }
    let id = field_i64(body, "user_id")?;
    let known = shared.lock().users.get(&id).cloned();
    Ok(known.unwrap_or_else(|| TgUser::new(id, format!("User {id}"))))
}

fn msg_id(body: &Value) -> Result<i32, (StatusCode, Json<Value>)> {
    i32::try_from(field_i64(body, "message_id")?)
        .map_err(|e| control_err(StatusCode::BAD_REQUEST, e))
}

async fn control_post(
    State(shared): State<Arc<Shared>>,
    Path(action): Path<String>,
    body: Bytes,
) -> ControlResult {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| control_err(StatusCode::BAD_REQUEST, e))?
    };
    let not_found = |e: super::ControlError| control_err(StatusCode::NOT_FOUND, e);
    let s = &*shared;
    match action.as_str() {
        "register_user" => {
            let u = body_user(s, &body)?;
            s.with(|st| st.register(&u));
            to_json(true)
        }
        "send_text" => {
            let u = body_user(s, &body)?;
            let text = field_str(&body, "text")?;
            to_json(s.with(|st| st.user_message(&u, json!({ "text": text }))))
        }
        "send_command" => {
            let u = body_user(s, &body)?;
            let cmd = field_str(&body, "command")?;
            let content = json!({"text": cmd, "entities": api::command_entities(cmd)});
            to_json(s.with(|st| st.user_message(&u, content)))
        }
        "send_message" => {
            let u = body_user(s, &body)?;
            let content = body.get("content").cloned().unwrap_or_else(|| json!({}));
            to_json(s.with(|st| st.user_message(&u, content)))
        }
        "send_media" => {
            let u = body_user(s, &body)?;
            let kind = field_str(&body, "kind")?;
            if super::content::media_content(kind, "x").is_none() {
                return Err(control_err(StatusCode::BAD_REQUEST, "unknown media kind"));
            }
            let caption = body.get("caption").and_then(Value::as_str);
            to_json(s.with(|st| st.user_media(&u, kind, caption, None)))
        }
        "send_album" => {
            let u = body_user(s, &body)?;
            let n = field_i64(&body, "n")?.clamp(1, 10) as usize;
            let caption = body.get("caption").and_then(Value::as_str);
            to_json(s.with(|st| st.user_album(&u, n, caption)))
        }
        "reply_text" => {
            let u = body_user(s, &body)?;
            let to = i32::try_from(field_i64(&body, "reply_to_message_id")?)
                .map_err(|e| control_err(StatusCode::BAD_REQUEST, e))?;
            let text = field_str(&body, "text")?;
            to_json(
                s.with(|st| st.user_reply(&u, json!({ "text": text }), to))
                    .map_err(not_found)?,
            )
        }
        "edit_text" | "edit_caption" => {
            let u = body_user(s, &body)?;
            let id = msg_id(&body)?;
            let field = if action == "edit_text" {
                "text"
            } else {
                "caption"
            };
            let value = field_str(&body, field)?;
            to_json(
                s.with(|st| st.user_edit(&u, id, field, value))
                    .map_err(not_found)?,
            )
        }
        "react" => {
            let u = body_user(s, &body)?;
            let id = msg_id(&body)?;
            let emoji = body.get("emoji").and_then(Value::as_str).unwrap_or("");
            let update_id = s
                .with(|st| st.user_react(&u, id, emoji))
                .map_err(not_found)?;
            to_json(json!({ "update_id": update_id }))
        }
        "press_button" => {
            let u = body_user(s, &body)?;
            let id = msg_id(&body)?;
            let data = field_str(&body, "data")?;
            let (update_id, query) = s
                .with(|st| st.user_press(&u, id, data))
                .map_err(not_found)?;
            to_json(json!({"update_id": update_id, "callback_query_id": query}))
        }
        "push_raw_update" => {
            let id = s.with(|st| st.push_raw(body));
            to_json(json!({ "update_id": id }))
        }
        "block" | "unblock" => {
            let id = field_i64(&body, "user_id")?;
            let update_id = s.with(|st| {
                if action == "block" {
                    st.block(id)
                } else {
                    st.unblock(id)
                }
            });
            to_json(json!({ "update_id": update_id }))
        }
        "delete_account" => {
            let id = field_i64(&body, "user_id")?;
            s.with(|st| st.deactivated.insert(id));
            to_json(true)
        }
        "force_429" => {
            let chat = field_i64(&body, "chat_id")?;
            let secs = field_i64(&body, "retry_after")?.max(1) as u64;
            s.with(|st| st.force_429(chat, secs));
            to_json(true)
        }
        "fail_for" => {
            let ms = field_i64(&body, "duration_ms")?.max(0) as u64;
            let status = match body.get("status").and_then(Value::as_u64) {
                None => 500,
                Some(c) => u16::try_from(c)
                    .ok()
                    .filter(|c| (400..600).contains(c))
                    .ok_or_else(|| {
                        control_err(StatusCode::BAD_REQUEST, "status must be 400..=599")
                    })?,
            };
            let description = body
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| default_description(status));
            let until = Instant::now() + Duration::from_millis(ms);
            s.with(|st| {
                st.fail = Some(FailWindow {
                    until,
                    status,
                    description,
                })
            });
            to_json(true)
        }
        "hang_for" => {
            let ms = field_i64(&body, "duration_ms")?.max(0) as u64;
            let until = Instant::now() + Duration::from_millis(ms);
            s.with(|st| st.hang_until = Some(until));
            to_json(true)
        }
        "add_token_alias" => {
            let token = field_str(&body, "token")?.to_owned();
            s.with(|st| st.aliases.insert(token));
            to_json(true)
        }
        "webhook_targets" => {
            let urls: Vec<String> =
                serde_json::from_value(body.get("urls").cloned().unwrap_or_else(|| json!([])))
                    .map_err(|e| control_err(StatusCode::BAD_REQUEST, e))?;
            s.with(|st| st.webhook_targets = urls);
            to_json(true)
        }
        "restart_update_ids" => {
            let next = field_i64(&body, "next")?;
            s.with(|st| st.restart_update_ids(next));
            to_json(true)
        }
        "reset" => {
            s.with(super::state::State::reset);
            to_json(true)
        }
        _ => Err(control_err(StatusCode::NOT_FOUND, "unknown control action")),
    }
}

/// Telegram's description for a server-side status, as its front end answers.
fn default_description(status: u16) -> String {
    match status {
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
    .to_owned()
}

async fn control_get(
    State(shared): State<Arc<Shared>>,
    Path(action): Path<String>,
) -> ControlResult {
    let st = shared.lock();
    match action.as_str() {
        "counters" => to_json(&st.counters),
        "too_many_requests" => to_json(&st.floods),
        "pending_updates" => to_json(st.pending.iter().map(|p| &p.json).collect::<Vec<_>>()),
        "confirmed_offset" => to_json(st.confirmed_offset),
        "webhook_info" => to_json(st.webhook_info()),
        "my_commands" => to_json(
            st.commands
                .get("{\"type\":\"default\"}|")
                .cloned()
                .unwrap_or_default(),
        ),
        "callback_answers" => to_json(&st.callback_answers),
        "latencies" => {
            let l: Vec<Value> = st
                .latencies()
                .into_iter()
                .map(|l| {
                    json!({
                        "update_id": l.update_id,
                        "from_chat_id": l.from_chat_id,
                        "source_message_id": l.source_message_id,
                        "chat_id": l.chat_id,
                        "message_id": l.message_id,
                        "method": l.method,
                        "latency_ms": l.latency.as_secs_f64() * 1000.0,
                    })
                })
                .collect();
            to_json(l)
        }
        _ => Err(control_err(StatusCode::NOT_FOUND, "unknown control action")),
    }
}

async fn control_received(
    State(shared): State<Arc<Shared>>,
    Path(chat_id): Path<i64>,
) -> ControlResult {
    to_json(shared.lock().received(chat_id))
}

async fn control_history(
    State(shared): State<Arc<Shared>>,
    Path(chat_id): Path<i64>,
) -> ControlResult {
    to_json(shared.lock().history(chat_id))
}

async fn control_calls(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> ControlResult {
    let param = |name: &str| {
        q.as_deref().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
    };
    let method = param("method");
    let token = param("token");
    let st = shared.lock();
    let calls: Vec<&CallRecord> = st
        .calls
        .iter()
        .filter(|c| {
            method
                .as_deref()
                .is_none_or(|m| c.method.eq_ignore_ascii_case(m))
                && token.as_deref().is_none_or(|t| c.token == t)
        })
        .collect();
    to_json(calls)
}

/// `GET /control/wait/{chat_id}?count=N&timeout_ms=T`: until the bot has put at
/// least N messages into the chat; 408 on timeout.
async fn control_wait(
    State(shared): State<Arc<Shared>>,
    Path(chat_id): Path<i64>,
    RawQuery(q): RawQuery,
) -> ControlResult {
    let mut count = 1usize;
    let mut timeout_ms = 5_000u64;
    for (k, v) in url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        match &*k {
            "count" => count = v.parse().unwrap_or(1),
            "timeout_ms" => timeout_ms = v.parse().unwrap_or(5_000).min(600_000),
            _ => {}
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let mut rx = shared.changes.subscribe();
        let got = shared.lock().received(chat_id);
        if got.len() >= count {
            return to_json(got);
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { break; },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    Err(control_err(StatusCode::REQUEST_TIMEOUT, "timed out"))
}
