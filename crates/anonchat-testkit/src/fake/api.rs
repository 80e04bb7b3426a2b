//! The Bot API methods: parameter validation and their effect on [`State`].
//!
//! Every method except `getUpdates` is synchronous under the state lock;
//! `getUpdates` lives in [`super::http`] because it waits.

use std::collections::HashMap;
use std::time::Instant;

use rand::Rng;
use serde_json::{json, Map, Value};

use super::content::{
    media_content, utf16_len, CAPTIONED_KEYS, CONTENT_KEYS, PRIMARY_CONTENT_KEYS, UNCOPYABLE_KEYS,
};
use super::state::{inline_markup, truthy, unix_now, ApiError, ApiResult, State, Webhook};
use super::BotCommand;

/// Every method the fake implements, with its canonical spelling.
pub(crate) const METHODS: &[&str] = &[
    "getMe",
    "logOut",
    "close",
    "getUpdates",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "sendMessage",
    "copyMessage",
    "copyMessages",
    "forwardMessage",
    "forwardMessages",
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
    "setMessageReaction",
    "sendChatAction",
    "answerCallbackQuery",
    "deleteMessage",
    "deleteMessages",
    "sendPhoto",
    "sendVideo",
    "sendAnimation",
    "sendVoice",
    "sendVideoNote",
    "sendAudio",
    "sendDocument",
    "sendSticker",
    "sendLocation",
    "sendVenue",
    "sendContact",
    "sendPoll",
    "sendDice",
    "sendMediaGroup",
];

pub(crate) fn canonical(method: &str) -> Option<&'static str> {
    METHODS
        .iter()
        .copied()
        .find(|m| m.eq_ignore_ascii_case(method))
}

const MAX_TEXT: usize = 4096;
const MAX_CAPTION: usize = 1024;

/// Typed access to request parameters, lenient like Telegram about strings
/// (form and query values arrive as strings).
pub(crate) struct Params<'a>(pub &'a Map<String, Value>);

impl Params<'_> {
    pub fn has(&self, key: &str) -> bool {
        !matches!(self.0.get(key), None | Some(Value::Null))
    }

    pub fn i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| bad_type(key, "Integer")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| bad_type(key, "Integer")),
            Some(_) => Err(bad_type(key, "Integer")),
        }
    }

    pub fn req_i64(&self, key: &str) -> Result<i64, ApiError> {
        self.i64(key)?.ok_or_else(|| missing(key))
    }

    pub fn f64(&self, key: &str) -> Result<Option<f64>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| bad_type(key, "Float")),
            Some(_) => Err(bad_type(key, "Float")),
        }
    }

    pub fn req_f64(&self, key: &str) -> Result<f64, ApiError> {
        self.f64(key)?.ok_or_else(|| missing(key))
    }

    pub fn str(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(bad_type(key, "String")),
        }
    }

    pub fn req_str(&self, key: &str) -> Result<String, ApiError> {
        self.str(key)?.ok_or_else(|| missing(key))
    }

    pub fn bool(&self, key: &str) -> bool {
        truthy(self.0.get(key))
    }

    /// A JSON-serialized object or array (sent as JSON, or as a JSON string in a form).
    pub fn json(&self, key: &str) -> Result<Option<Value>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map(Some)
                .map_err(|_| ApiError::bad(format!("can't parse {key} JSON object"))),
            Some(v) => Ok(Some(v.clone())),
        }
    }

    pub fn array(&self, key: &str) -> Result<Option<Vec<Value>>, ApiError> {
        match self.json(key)? {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(bad_type(key, "Array")),
        }
    }

    pub fn chat_id(&self, key: &str) -> Result<i64, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Err(ApiError::bad(format!("{key} is empty"))),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| ApiError::bad("chat not found")),
            // "@username" is for channels; a private chat can't be addressed that way.
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| ApiError::bad("chat not found")),
            Some(_) => Err(ApiError::bad("chat not found")),
        }
    }
}

fn missing(key: &str) -> ApiError {
    ApiError::bad(format!("{key} is empty"))
}

fn bad_type(key: &str, ty: &str) -> ApiError {
    ApiError::bad(format!("field \"{key}\" must be of type {ty}"))
}

fn as_i32(v: i64, what: &str) -> Result<i32, ApiError> {
    i32::try_from(v).map_err(|_| ApiError::bad(format!("{what} not found")))
}

impl State {
    /// Run one synchronous Bot API method (`getUpdates` excluded).
    pub(crate) fn dispatch(&mut self, method: &str, raw: &Map<String, Value>) -> ApiResult {
        let p = Params(raw);
        let params = Value::Object(raw.clone());
        let now = Instant::now();
        match method {
            "getMe" => Ok(json!({
                "id": self.cfg.bot_id,
                "is_bot": true,
                "first_name": self.cfg.bot_first_name,
                "username": self.cfg.bot_username,
                "can_join_groups": true,
                "can_read_all_group_messages": false,
                "supports_inline_queries": false,
                "can_connect_to_business": false,
                "has_main_web_app": false,
            })),
            "logOut" | "close" => Ok(json!(true)),
            "setWebhook" => self.set_webhook(&p),
            "deleteWebhook" => {
                self.webhook = None;
                if p.bool("drop_pending_updates") {
                    self.drop_pending();
                }
                Ok(json!(true))
            }
            "getWebhookInfo" => Ok(self.webhook_info()),
            "setMyCommands" => {
                let cmds = p.array("commands")?.ok_or_else(|| missing("commands"))?;
                let mut parsed = Vec::with_capacity(cmds.len());
                for c in cmds {
                    let cmd: BotCommand = serde_json::from_value(c)
                        .map_err(|_| ApiError::bad("can't parse BotCommand"))?;
                    let ok_name = !cmd.command.is_empty()
                        && cmd.command.len() <= 32
                        && cmd
                            .command
                            .chars()
                            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
                    if !ok_name {
                        return Err(ApiError::bad("BOT_COMMAND_INVALID"));
                    }
                    if cmd.description.is_empty() || cmd.description.chars().count() > 256 {
                        return Err(ApiError::bad("BOT_COMMAND_DESCRIPTION_INVALID"));
                    }
                    parsed.push(cmd);
                }
                if parsed.len() > 100 {
                    return Err(ApiError::bad("too many commands"));
                }
                let key = commands_key(&p)?;
                self.commands.insert(key, parsed);
                Ok(json!(true))
            }
            "getMyCommands" => {
                let key = commands_key(&p)?;
                Ok(json!(self.commands.get(&key).cloned().unwrap_or_default()))
            }
            "deleteMyCommands" => {
                let key = commands_key(&p)?;
                self.commands.remove(&key);
                Ok(json!(true))
            }
            "sendMessage" => {
                let chat_id = self.target_chat(&p)?;
                let text = p.str("text")?.unwrap_or_default();
                if text.trim().is_empty() {
                    return Err(ApiError::bad("message text is empty"));
                }
                if text.chars().count() > MAX_TEXT {
                    return Err(ApiError::bad("message is too long"));
                }
                let mut c = Map::new();
                c.insert("text".into(), json!(text));
                if let Some(e) = p.array("entities")?.filter(|e| !e.is_empty()) {
                    c.insert("entities".into(), json!(e));
                }
                if let Some(l) = p.json("link_preview_options")? {
                    c.insert("link_preview_options".into(), l);
                }
                self.deliver_one(chat_id, method, &p, &params, c, None, now)
            }
            "sendPhoto" | "sendVideo" | "sendAnimation" | "sendVoice" | "sendVideoNote"
            | "sendAudio" | "sendDocument" | "sendSticker" => {
                let kind = match method {
                    "sendPhoto" => "photo",
                    "sendVideo" => "video",
                    "sendAnimation" => "animation",
                    "sendVoice" => "voice",
                    "sendVideoNote" => "video_note",
                    "sendAudio" => "audio",
                    "sendDocument" => "document",
                    _ => "sticker",
                };
                let chat_id = self.target_chat(&p)?;
                let file_id = file_param(&p, kind)?;
                let mut c = media_content(kind, &file_id).unwrap_or_default();
                if kind != "sticker" && kind != "video_note" {
                    apply_caption(&mut c, &p)?;
                }
                if p.bool("has_spoiler") {
                    c.insert("has_media_spoiler".into(), json!(true));
                }
                self.deliver_one(chat_id, method, &p, &params, c, None, now)
            }
            "sendLocation" => {
                let chat_id = self.target_chat(&p)?;
                let loc = json!({"latitude": p.req_f64("latitude")?, "longitude": p.req_f64("longitude")?});
                let mut c = Map::new();
                c.insert("location".into(), loc);
                self.deliver_one(chat_id, method, &p, &params, c, None, now)
            }
            "sendVenue" => {
                let chat_id = self.target_chat(&p)?;
                let loc = json!({"latitude": p.req_f64("latitude")?, "longitude": p.req_f64("longitude")?});
                let mut venue = json!({
                    "location": loc,
                    "title": p.req_str("title")?,
                    "address": p.req_str("address")?,
                });
                for k in [
                    "foursquare_id",
                    "foursquare_type",
                    "google_place_id",
                    "google_place_type",
                ] {
                    if let Some(v) = p.str(k)? {
                        venue[k] = json!(v);
                    }
                }
                let mut c = Map::new();
                c.insert("venue".into(), venue);
                c.insert("location".into(), loc);
                self.deliver_one(chat_id, method, &p, &params, c, None, now)
            }
            "sendContact" => {
                let chat_id = self.target_chat(&p)?;
                let mut contact = json!({
                    "phone_number": p.req_str("phone_number")?,
                    "first_name": p.req_str("first_name")?,
                });
                for k in ["last_name", "vcard"] {
                    if let Some(v) = p.str(k)? {
                        contact[k] = json!(v);
                    }
                }
                let mut c = Map::new();
                c.insert("contact".into(), contact);
                self.deliver_one(chat_id, method, &p, &params, c, None, now)
            }
            "sendPoll" => {
                let chat_id = self.target_chat(&p)?;
                let question = p.req_str("question")?;
                let options = p.array("options")?.ok_or_else(|| missing("options"))?;
                if !(2..=12).contains(&options.len()) {
                    return Err(ApiError::bad("POLL_ANSWERS_INVALID"));
                }
                let options: Vec<Value> = options
                    .iter()
                    .map(|o| {
                        let text = o
                            .get("text")
                            .and_then(Value::as_str)
                            .or(o.as_str())
                            .unwrap_or("");
                        json!({"text": text, "voter_count": 0})
                    })
                    .collect();
                let n = self.next_seq();
                let mut poll = json!({
                    "id": format!("5{n:018}"),
                    "question": question,
                    "options": options,
                    "total_voter_count": 0,
                    "is_closed": p.bool("is_closed"),
                    "is_anonymous": p.0.get("is_anonymous").map(|v| truthy(Some(v))).unwrap_or(true),
                    "type": p.str("type")?.unwrap_or_else(|| "regular".into()),
                    "allows_multiple_answers": p.bool("allows_multiple_answers"),
                });
                if let Some(id) = p.i64("correct_option_id")? {
                    poll["correct_option_id"] = json!(id);
                }
                let mut c = Map::new();
                c.insert("poll".into(), poll);
                self.deliver_one(chat_id, method, &p, &params, c, None, now)
            }
            "sendDice" => {
                let chat_id = self.target_chat(&p)?;
                let emoji = p.str("emoji")?.unwrap_or_else(|| "🎲".into());
                let max = match emoji.as_str() {
                    "🎲" | "🎯" | "🎳" => 6,
                    "🏀" | "⚽" => 5,
                    "🎰" => 64,
                    _ => return Err(ApiError::bad("invalid dice emoji")),
                };
                let value = rand::rng().random_range(1..=max);
                let mut c = Map::new();
                c.insert("dice".into(), json!({"emoji": emoji, "value": value}));
                self.deliver_one(chat_id, method, &p, &params, c, None, now)
            }
            "sendMediaGroup" => self.send_media_group(&p, &params, now),
            "copyMessage" | "forwardMessage" => {
                let chat_id = self.target_chat(&p)?;
                let from_chat = p.chat_id("from_chat_id")?;
                if !self.chats.contains_key(&from_chat) {
                    return Err(ApiError::bad("chat not found"));
                }
                let message_id = p.req_i64("message_id")?;
                let forward = method == "forwardMessage";
                let what = if forward {
                    "message to forward"
                } else {
                    "message to copy"
                };
                let message_id = as_i32(message_id, what)?;
                let c = self.copied_content(from_chat, message_id, forward, &p, None)?;
                let reply = self.resolve_reply(chat_id, &p)?;
                self.flood_check(chat_id, method, now)?;
                let msg = self.store_bot_message(
                    chat_id,
                    method,
                    &params,
                    c,
                    Some((from_chat, message_id)),
                    reply,
                    now,
                );
                if forward {
                    Ok(msg)
                } else {
                    Ok(json!({"message_id": msg["message_id"]}))
                }
            }
            "copyMessages" | "forwardMessages" => self.copy_many(method, &p, &params, now),
            "editMessageText" | "editMessageCaption" | "editMessageReplyMarkup" => {
                self.edit(method, &p, &params, now)
            }
            "setMessageReaction" => {
                let chat_id = self.target_chat(&p)?;
                let message_id = as_i32(p.req_i64("message_id")?, "message to react")?;
                let reaction = p.array("reaction")?.unwrap_or_default();
                for r in &reaction {
                    let ok = match r.get("type").and_then(Value::as_str) {
                        Some("emoji") => r.get("emoji").and_then(Value::as_str).is_some(),
                        Some("custom_emoji") => r.get("custom_emoji_id").is_some(),
                        Some("paid") => true,
                        _ => false,
                    };
                    if !ok {
                        return Err(ApiError::bad("REACTION_INVALID"));
                    }
                }
                match self.message_mut(chat_id, message_id) {
                    Some(m) => m.bot_reaction = reaction.clone(),
                    None => return Err(ApiError::bad("message to react not found")),
                }
                if let Some(r) = self.received_mut(chat_id, message_id) {
                    r.reactions.push(json!(reaction));
                }
                Ok(json!(true))
            }
            "sendChatAction" => {
                self.target_chat(&p)?;
                p.req_str("action")?;
                Ok(json!(true))
            }
            "answerCallbackQuery" => {
                let id = p.req_str("callback_query_id")?;
                let Some(pos) = self.callbacks.iter().position(|c| *c == id) else {
                    return Err(ApiError::bad(
                        "query is too old and response timeout expired or query ID is invalid",
                    ));
                };
                self.callbacks.remove(pos);
                self.callback_answers.push(params);
                Ok(json!(true))
            }
            "deleteMessage" => {
                let chat_id = p.chat_id("chat_id")?;
                if !self.chats.contains_key(&chat_id) {
                    return Err(ApiError::bad("chat not found"));
                }
                let message_id = as_i32(p.req_i64("message_id")?, "message to delete")?;
                if !self.delete_message(chat_id, message_id) {
                    return Err(ApiError::bad("message to delete not found"));
                }
                Ok(json!(true))
            }
            "deleteMessages" => {
                let chat_id = p.chat_id("chat_id")?;
                if !self.chats.contains_key(&chat_id) {
                    return Err(ApiError::bad("chat not found"));
                }
                let ids = p
                    .array("message_ids")?
                    .ok_or_else(|| missing("message_ids"))?;
                if ids.is_empty() || ids.len() > 100 {
                    return Err(ApiError::bad("too many messages to delete"));
                }
                for id in ids.iter().filter_map(Value::as_i64) {
                    if let Ok(id) = i32::try_from(id) {
                        self.delete_message(chat_id, id);
                    }
                }
                Ok(json!(true))
            }
            _ => Err(ApiError::new(404, "Not Found")),
        }
    }

    fn drop_pending(&mut self) {
        self.counters.updates_confirmed += self.pending.len() as u64;
        self.pending.clear();
    }

    fn set_webhook(&mut self, p: &Params<'_>) -> ApiResult {
        let url = p.str("url")?.unwrap_or_default();
        if p.bool("drop_pending_updates") {
            self.drop_pending();
        }
        if let Some(a) = p.array("allowed_updates")? {
            self.allowed = a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
        }
        if url.is_empty() {
            self.webhook = None;
            return Ok(json!(true));
        }
        let parsed = url::Url::parse(&url)
            .map_err(|_| ApiError::bad("bad webhook: invalid webhook URL specified"))?;
        if parsed.scheme() != "https" && parsed.scheme() != "http" {
            return Err(ApiError::bad(
                "bad webhook: An HTTPS URL must be provided for webhook",
            ));
        }
        let secret = p.str("secret_token")?.filter(|s| !s.is_empty());
        if let Some(s) = &secret {
            let ok = s.len() <= 256
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(ApiError::bad("secret token contains unallowed characters"));
            }
        }
        let max_connections = p.i64("max_connections")?.unwrap_or(40).clamp(1, 100) as u32;
        self.webhook = Some(Webhook {
            url,
            secret,
            max_connections,
        });
        self.last_webhook_error = None;
        Ok(json!(true))
    }

    /// The private chat a send goes to: must be known, the user reachable.
    fn target_chat(&self, p: &Params<'_>) -> Result<i64, ApiError> {
        let chat_id = p.chat_id("chat_id")?;
        if !self.chats.contains_key(&chat_id) {
            return Err(ApiError::bad("chat not found"));
        }
        if self.deactivated.contains(&chat_id) {
            return Err(ApiError::forbidden("user is deactivated"));
        }
        if self.blocked.contains(&chat_id) {
            return Err(ApiError::forbidden("bot was blocked by the user"));
        }
        Ok(chat_id)
    }

    /// `reply_parameters` (or the legacy `reply_to_message_id`), validated.
    fn resolve_reply(&self, chat_id: i64, p: &Params<'_>) -> Result<Option<Value>, ApiError> {
        let (message_id, reply_chat, allow) = match p.json("reply_parameters")? {
            Some(rp) => {
                let rp_map = rp.as_object().cloned().unwrap_or_default();
                let rpp = Params(&rp_map);
                let id = rpp
                    .i64("message_id")?
                    .ok_or_else(|| missing("message_id"))?;
                let chat = if rpp.has("chat_id") {
                    rpp.chat_id("chat_id")?
                } else {
                    chat_id
                };
                (id, chat, rpp.bool("allow_sending_without_reply"))
            }
            None => match p.i64("reply_to_message_id")? {
                Some(id) => (id, chat_id, p.bool("allow_sending_without_reply")),
                None => return Ok(None),
            },
        };
        let found = i32::try_from(message_id)
            .ok()
            .and_then(|id| self.reply_object(reply_chat, id).ok());
        match found {
            Some(v) => Ok(Some(v)),
            None if allow => Ok(None),
            None => Err(ApiError::bad("message to be replied not found")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver_one(
        &mut self,
        chat_id: i64,
        method: &str,
        p: &Params<'_>,
        params: &Value,
        content: Map<String, Value>,
        source: Option<(i64, i32)>,
        now: Instant,
    ) -> ApiResult {
        let reply = self.resolve_reply(chat_id, p)?;
        self.flood_check(chat_id, method, now)?;
        Ok(self.store_bot_message(chat_id, method, params, content, source, reply, now))
    }

    /// Content of a message to copy or forward, with caption overrides for copies.
    fn copied_content(
        &self,
        from_chat: i64,
        message_id: i32,
        forward: bool,
        p: &Params<'_>,
        group_map: Option<&mut HashMap<String, String>>,
    ) -> Result<Map<String, Value>, ApiError> {
        let what = if forward { "forward" } else { "copy" };
        let stored = self
            .message(from_chat, message_id)
            .ok_or_else(|| ApiError::bad(format!("message to {what} not found")))?;
        let Value::Object(src) = &stored.json else {
            return Err(ApiError::bad(format!("message to {what} not found")));
        };
        let service = UNCOPYABLE_KEYS.iter().any(|k| src.contains_key(*k))
            || !PRIMARY_CONTENT_KEYS.iter().any(|k| src.contains_key(*k));
        if service {
            return Err(ApiError::bad(format!(
                "message can't be {}",
                if forward { "forwarded" } else { "copied" }
            )));
        }
        let mut c: Map<String, Value> = CONTENT_KEYS
            .iter()
            .filter_map(|k| src.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        if let (Some(map), Some(Value::String(g))) = (group_map, src.get("media_group_id")) {
            let next = map.len() as u64;
            let new = map
                .entry(g.clone())
                .or_insert_with(|| {
                    format!(
                        "{}{:04}",
                        13_000_000_000_000_000u64 + u64::from(message_id.unsigned_abs()),
                        next
                    )
                })
                .clone();
            c.insert("media_group_id".into(), json!(new));
        } else if !forward {
            // A single copied message is not part of any album.
            c.remove("media_group_id");
        }
        if forward {
            let origin_user = src
                .get("from")
                .cloned()
                .unwrap_or_else(|| self.bot_user_json());
            c.insert(
                "forward_origin".into(),
                json!({"type": "user", "sender_user": origin_user, "date": src.get("date").cloned().unwrap_or(json!(0))}),
            );
            return Ok(c);
        }
        let captioned = CAPTIONED_KEYS.iter().any(|k| c.contains_key(*k));
        if captioned {
            if p.bool("remove_caption") {
                c.remove("caption");
                c.remove("caption_entities");
            }
            if p.has("caption") {
                apply_caption(&mut c, p)?;
            } else if let Some(e) = p.array("caption_entities")? {
                c.insert("caption_entities".into(), json!(e));
            }
            if p.has("show_caption_above_media") {
                if p.bool("show_caption_above_media") {
                    c.insert("show_caption_above_media".into(), json!(true));
                } else {
                    c.remove("show_caption_above_media");
                }
            }
        }
        Ok(c)
    }

    fn copy_many(
        &mut self,
        method: &str,
        p: &Params<'_>,
        params: &Value,
        now: Instant,
    ) -> ApiResult {
        let forward = method == "forwardMessages";
        let chat_id = self.target_chat(p)?;
        let from_chat = p.chat_id("from_chat_id")?;
        if !self.chats.contains_key(&from_chat) {
            return Err(ApiError::bad("chat not found"));
        }
        let ids = p
            .array("message_ids")?
            .ok_or_else(|| missing("message_ids"))?;
        if ids.is_empty() || ids.len() > 100 {
            return Err(ApiError::bad(
                "message_ids must contain 1-100 message identifiers",
            ));
        }
        let mut parsed = Vec::with_capacity(ids.len());
        for v in &ids {
            let id = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            };
            let id = id
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| bad_type("message_ids", "Array of Integer"))?;
            if parsed.last().is_some_and(|last| *last >= id) {
                return Err(ApiError::bad(
                    "message identifiers must be in a strictly increasing order",
                ));
            }
            parsed.push(id);
        }
        let mut groups = HashMap::new();
        let mut contents = Vec::new();
        for id in parsed {
            // Telegram skips messages that can't be found or copied.
            if let Ok(c) = self.copied_content(from_chat, id, forward, p, Some(&mut groups)) {
                let mut c = c;
                if p.bool("remove_caption") {
                    c.remove("caption");
                    c.remove("caption_entities");
                }
                contents.push((id, c));
            }
        }
        if contents.is_empty() {
            return Err(ApiError::bad(if forward {
                "message to forward not found"
            } else {
                "message to copy not found"
            }));
        }
        self.flood_check(chat_id, method, now)?;
        let mut out = Vec::with_capacity(contents.len());
        for (id, c) in contents {
            let msg = self.store_bot_message(
                chat_id,
                method,
                params,
                c,
                Some((from_chat, id)),
                None,
                now,
            );
            out.push(json!({"message_id": msg["message_id"]}));
        }
        Ok(Value::Array(out))
    }

    fn send_media_group(&mut self, p: &Params<'_>, params: &Value, now: Instant) -> ApiResult {
        let chat_id = self.target_chat(p)?;
        let media = p.array("media")?.ok_or_else(|| missing("media"))?;
        if !(2..=10).contains(&media.len()) {
            return Err(ApiError::bad("wrong number of items in media group"));
        }
        let group = format!("{}", 14_000_000_000_000_000u64 + self.next_seq());
        let mut contents = Vec::with_capacity(media.len());
        for item in &media {
            let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
            if !matches!(kind, "photo" | "video" | "audio" | "document") {
                return Err(ApiError::bad("wrong media type in media group"));
            }
            let file_id = item.get("media").and_then(Value::as_str).unwrap_or("");
            if file_id.is_empty() {
                return Err(ApiError::bad("there is no media in the request"));
            }
            if file_id.starts_with("attach://") {
                return Err(ApiError::bad("file uploads are not supported by the fake"));
            }
            let mut c = media_content(kind, file_id).unwrap_or_default();
            let item_map = item.as_object().cloned().unwrap_or_default();
            apply_caption(&mut c, &Params(&item_map))?;
            c.insert("media_group_id".into(), json!(group));
            contents.push(c);
        }
        let reply = self.resolve_reply(chat_id, p)?;
        self.flood_check(chat_id, "sendMediaGroup", now)?;
        let mut out = Vec::with_capacity(contents.len());
        for c in contents {
            out.push(self.store_bot_message(
                chat_id,
                "sendMediaGroup",
                params,
                c,
                None,
                reply.clone(),
                now,
            ));
        }
        Ok(Value::Array(out))
    }

    fn edit(&mut self, method: &str, p: &Params<'_>, params: &Value, now: Instant) -> ApiResult {
        if p.has("inline_message_id") {
            return Err(ApiError::bad("message to edit not found"));
        }
        let chat_id = self.target_chat(p)?;
        let message_id = as_i32(p.req_i64("message_id")?, "message to edit")?;
        let stored = self
            .message(chat_id, message_id)
            .ok_or_else(|| ApiError::bad("message to edit not found"))?;
        if !stored.from_bot {
            return Err(ApiError::bad("message can't be edited"));
        }
        let Value::Object(old) = &stored.json else {
            return Err(ApiError::bad("message to edit not found"));
        };
        let mut new = old.clone();
        match method {
            "editMessageText" => {
                if !old.contains_key("text") {
                    return Err(ApiError::bad("there is no text in the message to edit"));
                }
                let text = p.str("text")?.unwrap_or_default();
                if text.trim().is_empty() {
                    return Err(ApiError::bad("message text is empty"));
                }
                if text.chars().count() > MAX_TEXT {
                    return Err(ApiError::bad("MESSAGE_TOO_LONG"));
                }
                new.insert("text".into(), json!(text));
                new.remove("entities");
                if let Some(e) = p.array("entities")?.filter(|e| !e.is_empty()) {
                    new.insert("entities".into(), json!(e));
                }
                if let Some(l) = p.json("link_preview_options")? {
                    new.insert("link_preview_options".into(), l);
                }
            }
            "editMessageCaption" => {
                if !CAPTIONED_KEYS.iter().any(|k| old.contains_key(*k)) {
                    return Err(ApiError::bad("there is no caption in the message to edit"));
                }
                new.remove("caption");
                new.remove("caption_entities");
                apply_caption(&mut new, p)?;
            }
            _ => {}
        }
        new.remove("reply_markup");
        if let Some(m) = p.json("reply_markup")?.as_ref().and_then(inline_markup) {
            new.insert("reply_markup".into(), m);
        }
        let same = |k: &str| old.get(k) == new.get(k);
        if [
            "text",
            "entities",
            "caption",
            "caption_entities",
            "reply_markup",
        ]
        .iter()
        .all(|k| same(k))
        {
            return Err(ApiError::bad(
                "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
            ));
        }
        self.flood_check(chat_id, method, now)?;
        new.insert("edit_date".into(), json!(unix_now()));
        let json = Value::Object(new);
        self.apply_bot_edit(chat_id, message_id, method, params, json.clone(), now);
        Ok(json)
    }

    fn delete_message(&mut self, chat_id: i64, message_id: i32) -> bool {
        let removed = self
            .chats
            .get_mut(&chat_id)
            .and_then(|c| c.messages.remove(&message_id))
            .is_some();
        if removed {
            if let Some(r) = self.received_mut(chat_id, message_id) {
                r.deleted = true;
            }
        }
        removed
    }
}

fn commands_key(p: &Params<'_>) -> Result<String, ApiError> {
    let scope = p
        .json("scope")?
        .unwrap_or_else(|| json!({"type": "default"}));
    let lang = p.str("language_code")?.unwrap_or_default();
    Ok(format!("{scope}|{lang}"))
}

/// The file id of a media send. Uploads never reach here (multipart parts with a
/// filename are refused earlier), so anything but a string is malformed.
fn file_param(p: &Params<'_>, kind: &str) -> Result<String, ApiError> {
    match p.0.get(kind) {
        Some(Value::String(s)) if s.starts_with("attach://") => {
            Err(ApiError::bad("file uploads are not supported by the fake"))
        }
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ApiError::bad(format!("there is no {kind} in the request"))),
    }
}

/// Set `caption`/`caption_entities`/`show_caption_above_media` from params.
fn apply_caption(c: &mut Map<String, Value>, p: &Params<'_>) -> Result<(), ApiError> {
    if let Some(caption) = p.str("caption")? {
        if caption.chars().count() > MAX_CAPTION {
            return Err(ApiError::bad("message caption is too long"));
        }
        c.remove("caption_entities");
        if caption.is_empty() {
            c.remove("caption");
        } else {
            c.insert("caption".into(), json!(caption));
            if let Some(e) = p.array("caption_entities")?.filter(|e| !e.is_empty()) {
                c.insert("caption_entities".into(), json!(e));
            }
        }
    }
    if p.bool("show_caption_above_media") {
        c.insert("show_caption_above_media".into(), json!(true));
    }
    Ok(())
}

/// A `bot_command` entity spanning the command word at the start of `text`.
pub(crate) fn command_entities(text: &str) -> Value {
    let word = text.split_whitespace().next().unwrap_or("");
    if word.starts_with('/') {
        json!([{"type": "bot_command", "offset": 0, "length": utf16_len(word)}])
    } else {
        json!([])
    }
}
