-- The Search/Next budget of one user, judged by the press's own time (the
-- update's date), so a burst stays a burst however late it is handled.
-- ARGV[1] key base   ARGV[2] user   ARGV[3] press time ms
-- ARGV[4] interval ms   ARGV[5] burst   ARGV[6] notice window s
-- Returns 'ok' (the press is taken), 'notify' (over budget: drop it, tell the
-- user) or 'drop' (over budget, already told in this window).
local me = ARGV[2]
if gcra_allow(K.search_budget(me), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])) then
  return 'ok'
end
if redis.call('SET', K.search_notice(me), '1', 'NX', 'EX', ARGV[6]) then
  return 'notify'
end
return 'drop'
