//! The registry as a service (`[registry] service = ...`): heartbeats, lookups and check
//! reports are requests with a queue, workers and failures, so the registry can be
//! overloaded, and its clients' retry and backoff decide whether it recovers.

mod common;

use common::{run_file, run_text};
use faultline::metrics::StateEvent;
use faultline::results::{RegistryOpResult, RunResult};
use faultline::scenario;

const GALLERY: &str = "scenarios/registry-overload.toml";

fn op(r: &RunResult, name: &str) -> RegistryOpResult {
    let reg = r.registry.as_ref().expect("a registry service");
    reg.ops.iter().find(|(n, _)| *n == name).expect("an op").1
}

fn service<'a>(r: &'a RunResult, name: &str) -> &'a faultline::results::ServiceResult {
    r.services
        .iter()
        .find(|s| s.name == name)
        .expect("a service")
}

/// A small system: `a` (5 pods) calls `b` (3 pods); the registry runs as `reg`.
fn small(registry: &str, reg: &str, extra: &str) -> String {
    format!(
        "[sim]\nname = \"small\"\nduration = \"60s\"\nseed = 5\n\
         [registry]\nkind = \"ttl\"\nheartbeat = \"1s\"\ncheck_interval = \"1s\"\n\
         unhealthy_after = \"3s\"\ncache_ttl = \"5s\"\n{registry}\n\
         [[service]]\nname = \"reg\"\n{reg}\n\
         [[service]]\nname = \"a\"\nreplicas = 5\npolicy_state = \"service\"\n\
         work = {{ dist = \"exp\", mean = \"1ms\" }}\ncalls = [{{ to = \"b\" }}]\n\
         [[service]]\nname = \"b\"\nreplicas = 3\nwork = {{ dist = \"exp\", mean = \"1ms\" }}\n\
         [[workload]]\nname = \"w\"\ntarget = \"a\"\narrivals = {{ kind = \"poisson\", rate = 50 }}\n{extra}"
    )
}

fn expired(events: &[StateEvent]) -> Vec<&StateEvent> {
    events
        .iter()
        .filter(|e| e.kind() == "registry" && e.detail().contains("heartbeat expired"))
        .collect()
}

/// Every heartbeat and every cache refresh is a request the registry's service handles:
/// with room to spare, each of the 8 pods heartbeats once a second and the one shared
/// a->b cache refreshes every 5 s; the registry's instances count exactly those requests,
/// and nothing else.
#[test]
fn heartbeats_and_lookups_are_requests_to_the_registry_service() {
    let text = small(
        "service = \"reg\"",
        "workers = 4\nwork = { dist = \"constant\", value = \"1ms\" }",
        "",
    );
    let (r, events) = run_text("small.toml", &text, &[]);
    let (hb, lookup) = (op(&r, "heartbeat"), op(&r, "lookup"));
    // 8 pods, 60 s, one heartbeat a second at a random phase: 59 or 60 each.
    assert!((8 * 59..=8 * 60).contains(&hb.sent), "{hb:?}");
    assert_eq!((hb.ok, hb.errors, hb.timeouts), (hb.sent, 0, 0));
    assert!((11..=12).contains(&lookup.sent), "{lookup:?}");
    assert_eq!(lookup.ok, lookup.sent);
    let reg = service(&r, "reg");
    assert_eq!(reg.counts.requests, hb.sent + lookup.sent);
    // The registry's own pods do not register or heartbeat.
    let own: Vec<_> = events
        .iter()
        .filter(|e| e.kind() == "registry" && e.subject.starts_with("reg/"))
        .collect();
    assert!(own.is_empty(), "{own:?}");
    assert!(expired(&events).is_empty());
    assert_eq!(r.workloads[0].counts.errors, 0);
}

/// A registry that cannot keep up with its heartbeats (8 pods a second against 5 requests
/// a second, a queue of 2) refuses most of them, and the registry expires pods that run
/// fine. The same system with the registry as an abstraction expires nobody.
#[test]
fn a_registry_too_slow_for_its_heartbeats_expires_healthy_pods() {
    let slow =
        "workers = 1\nqueue = { capacity = 2 }\nwork = { dist = \"constant\", value = \"1s\" }";
    let (r, events) = run_text("small.toml", &small("service = \"reg\"", slow, ""), &[]);
    let hb = op(&r, "heartbeat");
    assert!(hb.errors > hb.ok, "{hb:?}");
    assert!(service(&r, "reg").counts.rejected > 0);
    assert!(
        expired(&events).len() >= 3,
        "{} expired",
        expired(&events).len()
    );
    let (r, events) = run_text("small.toml", &small("", slow, ""), &[]);
    assert!(r.registry.is_none());
    assert!(expired(&events).is_empty());
    assert_eq!(service(&r, "reg").counts.requests, 0);
}

/// With active checks, each check's result reaches the registry as a request of its own.
#[test]
fn check_results_reach_the_registry_as_reports() {
    let text = small(
        "service = \"reg\"\nhealth_check = { interval = \"2s\", timeout = \"500ms\" }",
        "workers = 4\nwork = { dist = \"constant\", value = \"1ms\" }",
        "",
    );
    let (r, _) = run_text("small.toml", &text, &[]);
    let report = op(&r, "report");
    // 8 checked pods, one check every 2 s for 60 s.
    assert!((8 * 29..=8 * 30).contains(&report.sent), "{report:?}");
    assert_eq!(report.ok, report.sent);
    assert_eq!(
        service(&r, "reg").counts.requests,
        op(&r, "heartbeat").sent + op(&r, "lookup").sent + report.sent
    );
}

/// scenarios/registry-overload.toml: after the registry's outage, clients that retry every
/// 500 ms without backoff keep it overloaded to the end (metastable: the outage ended long
/// before), healthy pods flap, and callers never learn of catalog/3's crash. With Eureka's
/// backoff the herd thins, the registry drains, and callers learn of the crash.
#[test]
fn the_herd_after_an_outage_feeds_itself_without_backoff_and_drains_with_it() {
    let (stuck, stuck_events) = run_file(GALLERY, &[]);
    let (drained, drained_events) = run_file(GALLERY, &["registry.backoff_bound=10"]);
    let (s_hb, d_hb) = (op(&stuck, "heartbeat"), op(&drained, "heartbeat"));
    // 600 pods over the 150 s after the outage: 9 000 heartbeats if all went well.
    assert!(s_hb.ok < 3_000, "{s_hb:?}");
    assert!(d_hb.ok > 7_000, "{d_hb:?}");
    assert!(s_hb.sent > 2 * d_hb.sent, "{s_hb:?} {d_hb:?}");
    // Stuck: p99 tens of seconds; drained: the registry's latency falls back.
    let p99 = |r: &RunResult| service(r, "consul").latency.p99;
    assert!(p99(&stuck) > 20_000.0, "{}", p99(&stuck));
    // Callers: stuck never learn of the crash at 120 s (about a tenth of 500/s for 120 s),
    // drained learn it within a TTL or two.
    let dead = |r: &RunResult| r.edges[0].stats.calls_to_dead;
    assert!(dead(&stuck) > 5_000, "{}", dead(&stuck));
    assert!(dead(&drained) < 3_000, "{}", dead(&drained));
    // The outage itself expires nobody (the registry stood still, then re-synced): with
    // backoff the only pod expired is the crashed one; stuck, healthy pods flap too.
    let subjects = |ev: &[StateEvent]| -> Vec<String> {
        expired(ev).iter().map(|e| e.subject.clone()).collect()
    };
    assert_eq!(subjects(&drained_events), ["catalog/3"]);
    let flapped = subjects(&stuck_events);
    assert!(
        flapped.iter().filter(|s| s.starts_with("estate/")).count() >= 5,
        "{flapped:?}"
    );
}

fn problems(text: &str) -> String {
    match scenario::parse("bad.toml", text, &[]) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_registry_service_is_checked() {
    let ok = "workers = 1";
    let e = problems(&small("service = \"nope\"", ok, ""));
    assert!(e.contains("registry.service") && e.contains("nope"), "{e}");
    let e = problems(&small("timeout = \"1s\"", ok, ""));
    assert!(
        e.contains("registry.timeout") && e.contains("service"),
        "{e}"
    );
    let e = problems(&small("service = \"reg\"\nbackoff_bound = 0", ok, ""));
    assert!(e.contains("backoff_bound"), "{e}");
    let e = problems(&small("service = \"reg\"\nretry = \"0s\"", ok, ""));
    assert!(e.contains("registry.retry"), "{e}");
    // Calling the registry's service: it is found by configuration, not through itself.
    let e = problems(&small("service = \"b\"", ok, ""));
    assert!(e.contains("calls \"b\", the registry's service"), "{e}");
}
