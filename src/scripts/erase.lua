-- Erase a user (/deletedata): end their chat (the partner's side too, no
-- cooldown marker naming them) or search, and delete every key about them
-- but the kept moderation records.
-- Idempotent: run again it finds nothing and deletes nothing.
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] language from Telegram ('' = not known)
-- ARGV[4] n = message-map buckets that follow   ARGV[5 .. 4+n] bucket numbers
--   of the user's own maps (mm:{user}:{bucket}, found by SCAN in Rust); each
--   entry's counterpart in the partner's map is deleted too
-- ARGV[5+n ..] pair ids "lo:hi" of cooldown markers naming the user
-- Returns {'erased', lang, partner or '', partner_lang or ''}
local me = ARGV[2]
local ukey = K.user(me)
local st, p, chosen, stored = unpack(redis.call('HMGET', ukey, 'st', 'p', 'lo', 'lang'))
local lang = reply_lang(chosen, ARGV[3], stored)
local partner, plang = '', ''
if st == 'chat' and p then
  plang = redis.call('HGET', K.user(p), 'lang') or 'en'
  end_pair(me, p, 0)
  partner = p
end
redis.call('ZREM', K.queue(), me)
redis.call('ZREM', K.search_timers(), me)
redis.call('ZREM', K.album_timers(), me)
redis.call('DEL', ukey, K.blocks(me), K.album(me), K.inbound(me), K.notice(me),
  K.chat_budget(me), K.overload_notice(me), K.search_budget(me), K.search_notice(me))
-- Moderation data about their own activity (after end_pair, which
-- remembers the last partner): the last partner, the ids of the copies they
-- received, their hourly report count. Kept for REPORT_RETENTION: reports
-- (by or about them), mod_stats, anon (matches the kept reports), ban,
-- reporters (the auto-suspend window) and the audit trail. Their
-- duplicate-report markers (repd:{user}:*) are SCANned and UNLINKed by Rust.
redis.call('DEL', K.last_partner(me), K.evidence(me), K.report_budget(me))
local n = tonumber(ARGV[4]) or 0
for i = 5, 4 + n do
  local own = K.message_map(me, tonumber(ARGV[i]) * MAP_BUCKET)
  local entries = redis.call('HGETALL', own)
  for j = 2, #entries, 2 do
    local chat, id = string.match(entries[j], '^(-?%d+):(%d+)$')
    if chat then
      redis.call('HDEL', K.message_map(chat, id), id)
    end
  end
  redis.call('DEL', own)
end
for i = 5 + n, #ARGV do
  redis.call('DEL', K.left(ARGV[i]))
end
return {'erased', lang, partner, plang}
