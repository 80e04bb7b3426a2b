//! Every Lua script, loaded once per replica.
//!
//! One convention for all of them: `ARGV[1]` is the key base, and each script
//! is prepended with the generated key builders ([`crate::keys::lua_prelude`])
//! and the shared functions of `scripts/lib.lua` (clock, pair ids, reply
//! language, ending a pair, the GCRA budgets). Scripts never spell a key name.

use redis::Script;

use crate::keys::lua_prelude;

const LIB: &str = include_str!("../scripts/lib.lua");

/// The full source of a script body: prelude, shared library, body.
pub fn source(body: &str) -> String {
    format!("{}\n{LIB}\n{body}", lua_prelude())
}

fn script(body: &str) -> Script {
    Script::new(&source(body))
}

/// The map-store body; it runs inside pipelines by EVALSHA (see `Store::map_store`).
pub const MAP_STORE: &str = include_str!("../scripts/map_store.lua");

pub(super) struct Scripts {
    pub lease_acquire: Script,
    pub lease_renew: Script,
    pub lease_release: Script,
    pub ingest: Script,
    pub partitions_tick: Script,
    pub search: Script,
    pub leave: Script,
    pub route: Script,
    pub album_add: Script,
    pub album_take: Script,
    pub timers_due: Script,
    pub settings_set: Script,
    pub rules_accept: Script,
    pub erase: Script,
    pub instance_claim: Script,
    pub reserve: Script,
    pub freeze: Script,
    pub search_allow: Script,
    pub trim: Script,
    pub give_back: Script,
    pub block: Script,
    pub report: Script,
    pub decide: Script,
    pub admin_ban: Script,
    pub report_queued: Script,
    /// Kept as source too: a pipeline that hits NOSCRIPT loads it again.
    pub map_store_source: String,
    pub map_store_sha: String,
}

impl Scripts {
    pub fn load() -> Scripts {
        let map_store_source = source(MAP_STORE);
        let map_store_sha = Script::new(&map_store_source).get_hash().to_string();
        Scripts {
            lease_acquire: script(include_str!("../scripts/lease_acquire.lua")),
            lease_renew: script(include_str!("../scripts/lease_renew.lua")),
            lease_release: script(include_str!("../scripts/lease_release.lua")),
            ingest: script(include_str!("../scripts/ingest.lua")),
            partitions_tick: script(include_str!("../scripts/partitions_tick.lua")),
            search: script(include_str!("../scripts/search.lua")),
            leave: script(include_str!("../scripts/leave.lua")),
            route: script(include_str!("../scripts/route.lua")),
            album_add: script(include_str!("../scripts/album_add.lua")),
            album_take: script(include_str!("../scripts/album_take.lua")),
            timers_due: script(include_str!("../scripts/timers_due.lua")),
            settings_set: script(include_str!("../scripts/settings_set.lua")),
            rules_accept: script(include_str!("../scripts/rules_accept.lua")),
            erase: script(include_str!("../scripts/erase.lua")),
            instance_claim: script(include_str!("../scripts/instance_claim.lua")),
            reserve: script(include_str!("../scripts/reserve.lua")),
            freeze: script(include_str!("../scripts/freeze.lua")),
            search_allow: script(include_str!("../scripts/search_allow.lua")),
            trim: script(include_str!("../scripts/trim.lua")),
            give_back: script(include_str!("../scripts/give_back.lua")),
            block: script(include_str!("../scripts/block.lua")),
            report: script(include_str!("../scripts/report.lua")),
            decide: script(include_str!("../scripts/decide.lua")),
            admin_ban: script(include_str!("../scripts/admin_ban.lua")),
            report_queued: script(include_str!("../scripts/report_queued.lua")),
            map_store_source,
            map_store_sha,
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every script follows the one convention: no `KEYS`, no hand-built keys.
    #[test]
    fn scripts_use_the_key_builders() {
        for (name, body) in [
            (
                "lease_acquire",
                include_str!("../scripts/lease_acquire.lua"),
            ),
            ("lease_renew", include_str!("../scripts/lease_renew.lua")),
            (
                "lease_release",
                include_str!("../scripts/lease_release.lua"),
            ),
            ("ingest", include_str!("../scripts/ingest.lua")),
            (
                "partitions_tick",
                include_str!("../scripts/partitions_tick.lua"),
            ),
            ("search", include_str!("../scripts/search.lua")),
            ("leave", include_str!("../scripts/leave.lua")),
            ("route", include_str!("../scripts/route.lua")),
            ("album_add", include_str!("../scripts/album_add.lua")),
            ("album_take", include_str!("../scripts/album_take.lua")),
            ("timers_due", include_str!("../scripts/timers_due.lua")),
            ("settings_set", include_str!("../scripts/settings_set.lua")),
            ("rules_accept", include_str!("../scripts/rules_accept.lua")),
            ("erase", include_str!("../scripts/erase.lua")),
            (
                "instance_claim",
                include_str!("../scripts/instance_claim.lua"),
            ),
            ("reserve", include_str!("../scripts/reserve.lua")),
            ("freeze", include_str!("../scripts/freeze.lua")),
            ("search_allow", include_str!("../scripts/search_allow.lua")),
            ("trim", include_str!("../scripts/trim.lua")),
            ("give_back", include_str!("../scripts/give_back.lua")),
            ("block", include_str!("../scripts/block.lua")),
            ("report", include_str!("../scripts/report.lua")),
            ("decide", include_str!("../scripts/decide.lua")),
            ("admin_ban", include_str!("../scripts/admin_ban.lua")),
            (
                "report_queued",
                include_str!("../scripts/report_queued.lua"),
            ),
            ("map_store", super::MAP_STORE),
            ("lib", super::LIB),
        ] {
            assert!(!body.contains("KEYS["), "{name} uses KEYS");
            assert!(!body.contains("B .. "), "{name} builds a key by hand");
            assert!(!body.contains("ARGV[1] .."), "{name} builds a key by hand");
        }
    }
}
