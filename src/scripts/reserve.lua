-- Reserve send slots for a chat (sends that no routing script reserved).
-- ARGV[1] key base   ARGV[2] chat   ARGV[3] messages
-- ARGV[4] chat interval ms   ARGV[5] chat burst   ARGV[6] global interval ms   ARGV[7] global burst
-- Returns the wait in ms.
return reserve_send(ARGV[1], ARGV[2], now_ms(), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
