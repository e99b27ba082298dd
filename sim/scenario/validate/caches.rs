//! `[policy.cache.NAME]`: capacity, TTL, stale window, single flight, scope.

use super::*;
use crate::model::spec::CachePolicy;
use crate::policy::cache::Config;

/// Builds the named caches, each checked.
pub(super) fn build_caches(cx: &mut Ctx, raw: &RawScenario) -> Vec<CachePolicy> {
    let mut out = Vec::new();
    for (name, c) in &raw.policy.cache {
        let p = root().key("policy").key("cache").key(name);
        if c.ttl == SimDuration::ZERO {
            cx.err(
                p.key("ttl"),
                "ttl must be longer than 0s: an entry that is never fresh caches nothing",
            );
        }
        if c.capacity == Some(0) {
            cx.err(
                p.key("capacity"),
                "capacity must be at least 1 (or absent: unbounded)",
            );
        }
        let shared = match c.scope.as_deref().unwrap_or("shared") {
            "shared" => true,
            "instance" => false,
            other => {
                cx.err(p.key("scope"), format!("unknown scope {other:?}: use \"shared\" (one cache for every caller, such as Redis) or \"instance\" (one per caller instance, in-process)"));
                true
            }
        };
        out.push(CachePolicy {
            name: name.clone(),
            config: Config {
                capacity: c.capacity.unwrap_or(0),
                ttl: c.ttl,
                stale_for: c.stale_while_revalidate.unwrap_or(SimDuration::ZERO),
                coalesce: c.coalesce.unwrap_or(false),
            },
            hit_latency: c.hit_latency.unwrap_or(SimDuration(500_000)),
            shared,
            invalidate_on_update: c.invalidate_on_update.unwrap_or(true),
        });
    }
    out
}
