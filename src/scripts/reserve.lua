-- Reserve send slots for a chat (sends that no routing script reserved).
-- ARGV[1] key base   ARGV[2] chat   ARGV[3] messages
-- ARGV[4..7] chat interval ms, chat burst, global interval ms, global burst
-- Returns the wait in ms.
return reserve_send(ARGV[2], now_ms(), tonumber(ARGV[3]), outbound_args(4))
