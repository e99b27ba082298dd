//! Discovery through a registry (heartbeats, health checks, cached instance lists, restarts:
//! POLICIES.md §15 through the whole model), zones, autoscaling and canaries.

mod common;

use common::{run_file, run_text};
use faultline::metrics::{MemorySink, StateEvent};
use faultline::model::{RunOptions, RunResult, World};
use faultline::scenario;

fn dead_calls(r: &RunResult) -> u64 {
    r.edges[0].stats.calls_to_dead
}

/// The stale-cache scenario: calls that reach the dead instance are reported, and fall when
/// the cache TTL falls (summed over seeds: one seed is one cache phase).
#[test]
fn stale_cache_calls_to_dead_fall_with_the_ttl() {
    let f = "scenarios/stale-discovery.toml";
    let (mut slow, mut fast) = (0, 0);
    for seed in 1..=6 {
        let s = format!("sim.seed={seed}");
        slow += dead_calls(&run_file(f, &[&s]).0);
        fast += dead_calls(&run_file(f, &[&s, "registry.cache_ttl=5s"]).0);
    }
    // Detection takes 5-10 s (two failed checks 5 s apart); the cache adds U(0, ttl):
    // on average 7.5 + 15 s against 7.5 + 2.5 s, a ratio of about 2.2.
    assert!(
        fast > 0 && fast * 3 < slow * 2,
        "ttl 5 s: {fast}, ttl 30 s: {slow}"
    );
    // Each call to the dead instance is refused: a failed request. Besides them only the
    // requests catalog/2 held when it crashed fail (reset): at most its 4 workers' worth
    // and what waited for them, a handful at this load.
    let (r, _) = run_file(f, &[]);
    let (errors, dead) = (r.workloads[0].counts.errors, dead_calls(&r));
    assert!(
        errors >= dead && errors <= dead + 4,
        "every dead call fails, and little else: {errors} errors, {dead} dead calls"
    );
}

/// The crashed instance goes unhealthy after its second failed check, comes back after its
/// restart plus boot time, and each front pod's view follows at its own cache refreshes.
#[test]
fn registry_and_caches_follow_a_crash_and_a_restart() {
    let (r, events) = run_file("scenarios/stale-discovery.toml", &[]);
    let of = |kind: &str| -> Vec<(f64, String)> {
        events
            .iter()
            .filter(|e| e.kind() == kind)
            .map(|e| (e.t_s, e.detail().clone()))
            .collect()
    };
    let reg = of("registry");
    assert_eq!(reg.len(), 3, "{reg:?}");
    assert!(reg[0].1.starts_with("healthy -> unhealthy") && (30.0..40.0).contains(&reg[0].0));
    // Restarted at 90 s, boots for 5 s, registers, passes its next check.
    assert_eq!(reg[1].0, 95.0);
    assert!(reg[2].1.starts_with("starting -> healthy") && reg[2].0 < 100.0);
    for pod in ["front/0->catalog", "front/1->catalog"] {
        let disc: Vec<(f64, String)> = events
            .iter()
            .filter(|e| e.kind() == "discovery" && e.subject == pod)
            .map(|e| (e.t_s, e.detail()))
            .collect();
        assert_eq!(disc.len(), 2, "{pod}: {disc:?}");
        assert_eq!(disc[0].1, "sees [0 1 3] of 4");
        assert!(disc[0].0 > reg[0].0 && disc[0].0 <= reg[0].0 + 30.0);
        assert_eq!(disc[1].1, "sees [0 1 2 3] of 4");
    }
    // The two pods refresh at phases of their own: they learn at different times.
    let first: Vec<f64> = events
        .iter()
        .filter(|e| e.kind() == "discovery")
        .map(|e| e.t_s)
        .take(2)
        .collect();
    assert_ne!(first[0], first[1]);
    // After the cache lists it again, nobody calls a dead instance.
    assert!(dead_calls(&r) > 0);
    assert_eq!(r.services[1].registry_changes, Some(3));
}

/// Eureka: a lease outlives a crash by up to two durations plus an eviction tick, so callers
/// hit the dead instance for minutes instead of seconds.
#[test]
fn eureka_leases_are_slow_to_forget() {
    let f = "scenarios/stale-discovery.toml";
    let text = std::fs::read_to_string(f).unwrap();
    let text = text
        .replace(
            "kind = \"ttl\"\nheartbeat = \"10s\"\ncheck_interval = \"10s\"\nunhealthy_after = \"30s\"",
            "kind = \"eureka\"\nheartbeat = \"30s\"\nself_preservation = false",
        )
        .replace("health_check = { interval = \"5s\", timeout = \"1s\", failures = 2, successes = 1 }\n", "")
        .replace("duration = \"2m\"", "duration = \"6m\"")
        .replace("for = \"60s\"", "for = \"5m\"");
    let scn = scenario::parse("eureka.toml", &text, &[]).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut sink = MemorySink::default();
    let r = World::new(&scn.spec, RunOptions::default()).run(&mut sink);
    let evicted = sink
        .events
        .iter()
        .find(|e| e.kind() == "registry" && e.detail().contains("evicted"))
        .map(|e| e.t_s)
        .expect("evicted");
    // Last renewal before the crash at 30 s: at most 30 s earlier; the lease lasts 180 s past
    // it, and the eviction task runs every 60 s.
    assert!((180.0..=300.0).contains(&evicted), "{evicted}");
    // About a quarter of 200/s for those minutes.
    assert!(dead_calls(&r) > 50 * 150, "{}", dead_calls(&r));
}

/// scenarios/health-check-kill.toml: a health check is a real request; under load it waits
/// behind the work, and a check timeout shorter than the queue declares live instances dead.
#[test]
fn health_checks_can_kill_a_loaded_instance() {
    let f = "scenarios/health-check-kill.toml";
    let (r, events) = run_file(f, &[]);
    let unhealthy = events
        .iter()
        .filter(|e| e.kind() == "registry" && e.detail().contains("-> unhealthy"))
        .count();
    assert_eq!(unhealthy, 2, "both instances pulled");
    assert!(events
        .iter()
        .any(|e| e.kind() == "discovery" && e.detail() == "sees [] of 2"));
    assert!(r.workloads[0].counts.errors > 0);
    // Nobody crashed: no call went to a dead instance.
    assert_eq!(r.edges[0].stats.calls_to_dead, 0);
    assert_eq!(
        r.edges[0].stats.no_healthy_upstream,
        r.workloads[0].counts.errors
    );
    // A check timeout above the queueing delay: nothing pulled, nothing failed.
    let (calm, _) = run_file(f, &["registry.health_check.timeout=2s"]);
    assert_eq!(calm.services[1].registry_changes, Some(0));
    assert_eq!(calm.workloads[0].counts.failed(), 0);
}

/// scenarios/zone-outage.toml: zone-aware routing keeps calls local (two 5 ms hops saved),
/// and in a zone outage no caller outside the zone calls into it.
#[test]
fn zone_aware_routing_stays_local_and_contains_an_outage() {
    let f = "scenarios/zone-outage.toml";
    let (plain, events) = run_file(f, &[]);
    let (local, _) = run_file(f, &["service.front.balancer=local-first"]);
    let p50 = |r: &RunResult| r.workloads[0].latency.p50;
    // Plain round robin: 2/3 of calls cross zones (+10 ms round trip).
    assert!(
        p50(&plain) > 8.0 && p50(&local) < 4.0,
        "{} {}",
        p50(&plain),
        p50(&local)
    );
    assert!(dead_calls(&plain) > 0);
    assert_eq!(dead_calls(&local), 0);
    assert!(local.workloads[0].counts.errors * 2 < plain.workloads[0].counts.errors);
    // The outage is logged, and the zone's instances go unhealthy, then come back.
    assert!(events
        .iter()
        .any(|e| e.kind() == "fault_start" && e.subject == "zone b"));
    let down = events
        .iter()
        .filter(|e| e.kind() == "registry" && e.detail().starts_with("healthy -> unhealthy"))
        .count();
    assert_eq!(down, 3, "front/b and the two inventory instances in zone b");
}

/// A partition between two zones drops the messages of cross-zone hops: callers time out,
/// unless zone-aware routing keeps them local.
#[test]
fn zone_partitions_cut_cross_zone_calls() {
    let text = std::fs::read_to_string("scenarios/zone-outage.toml")
        .unwrap()
        .replace(
            "kind = \"zone_outage\"\nzone = \"b\"",
            "kind = \"zone_partition\"\nzone = \"a\"\npeer_zone = \"b\"",
        );
    let run = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let scn = scenario::parse("zp.toml", &text, &sets).unwrap_or_else(|e| panic!("{e}"));
        World::new(&scn.spec, RunOptions::default()).run(&mut MemorySink::default())
    };
    let plain = run(&[]);
    let local = run(&["service.front.balancer=local-first"]);
    // Plain: front/a -> inventory/b and front/b -> inventory/a time out for a minute.
    assert!(
        plain.edges[0].stats.failed > 1000,
        "{:?}",
        plain.edges[0].stats
    );
    assert!(plain.network_lost > 1000);
    assert_eq!(local.edges[0].stats.failed, 0, "{:?}", local.edges[0].stats);
}

/// scenarios/autoscale-spike.toml: the autoscaler follows the spike with HPA arithmetic, new
/// instances serve only after provisioning, and scale-in waits for the stabilization window.
#[test]
fn autoscaler_follows_a_spike_late_then_scales_in() {
    let f = "scenarios/autoscale-spike.toml";
    let (slow, events) = run_file(f, &[]);
    let (fast, _) = run_file(f, &["service.api.autoscale.provision=10s"]);
    let err = |r: &RunResult| {
        let c = &r.workloads[0].counts;
        c.failed() as f64 / c.requests as f64
    };
    assert!(
        err(&fast) * 2.0 < err(&slow),
        "{} {}",
        err(&fast),
        err(&slow)
    );
    let sc = slow.services[0].scaling.unwrap();
    let (final_n, max_n, ups, downs) = (
        sc.instances_at_end,
        sc.instances_max,
        sc.scale_ups,
        sc.scale_downs,
    );
    assert!(
        max_n >= 9 && ups >= 3 && downs >= 1,
        "{:?}",
        slow.services[0].scaling
    );
    assert_eq!(final_n, 3);
    // Decisions: 2 -> 3 at 15 s (75 % > 60 % + 10 %); with fast provisioning, 3 -> 5 once
    // the spike saturates the three (100 % / 60 % x 3 = 5).
    let decisions = |ev: &[StateEvent]| -> Vec<(f64, String)> {
        ev.iter()
            .filter(|e| e.kind() == "autoscale")
            .map(|e| (e.t_s, e.detail().clone()))
            .collect()
    };
    let (_, fast_events) = run_file(f, &["service.api.autoscale.provision=10s"]);
    let fast_d = decisions(&fast_events);
    assert!(fast_d[1].1.starts_with("3 -> 5"), "{fast_d:?}");
    let decisions = decisions(&events);
    assert!(
        decisions[0].1.starts_with("2 -> 3") && decisions[0].0 == 15.0,
        "{decisions:?}"
    );
    // The first new instance serves one provisioning time (90 s) after its decision.
    let up = events
        .iter()
        .find(|e| e.kind() == "instance_up" && e.detail().contains("autoscaler"))
        .unwrap();
    assert_eq!(up.t_s, decisions[0].0 + 90.0);
    // No scale-in before the 5 min window after the last high recommendation (spike ends at 240 s).
    let scale_in = decisions.iter().find(|d| {
        let (a, b) = d.1.split_once(" -> ").unwrap();
        b.split(' ').next().unwrap().parse::<u32>().unwrap() < a.parse::<u32>().unwrap()
    });
    assert!(scale_in.unwrap().0 >= 240.0 + 300.0, "{scale_in:?}");
}

/// scenarios/bad-canary.toml: the canary's first judged window shows its error rate, it is
/// rolled back on its own, and the report says when and why.
#[test]
fn bad_canary_rolls_back_on_its_own() {
    let f = "scenarios/bad-canary.toml";
    let (r, events) = run_file(f, &[]);
    let canary: Vec<&StateEvent> = events.iter().filter(|e| e.kind() == "canary").collect();
    assert_eq!(canary.len(), 2, "{canary:?}");
    assert_eq!(
        (canary[0].t_s, canary[0].detail().as_str()),
        (30.0, "weight 0% -> 5%")
    );
    assert_eq!(canary[1].t_s, 40.0);
    assert!(
        canary[1].detail().starts_with("rolled back: error rate"),
        "{}",
        canary[1].detail()
    );
    let c = r.services[1].canary.unwrap();
    let (weight, rolled_back, requests) = (c.weight_pct, c.rolled_back_at_s, c.requests);
    assert_eq!((weight, rolled_back), (0.0, Some(40.0)));
    // 5 % of 200/s for 10 s.
    assert!((80..=120).contains(&requests), "{requests}");
    // No canary traffic after the rollback: the weight schedule no longer moves it.
    let (never, _) = run_file(f, &["service.checkout.canary.rollback.error_rate=1.0"]);
    assert_eq!(never.services[1].canary.unwrap().weight_pct, 100.0);
    assert!(never.workloads[0].counts.errors > 10 * r.workloads[0].counts.errors);
}

/// Instances of `svc` in service over time, from the lifecycle events: (min, max) after t = 0.
fn present_range(events: &[StateEvent], svc: &str) -> (i32, i32) {
    let mut n = 0;
    let (mut lo, mut hi) = (i32::MAX, i32::MIN);
    let prefix = format!("{svc}/");
    let mut last_t = -1.0;
    for e in events.iter().filter(|e| e.subject.starts_with(&prefix)) {
        // Judge once every event at one instant is applied (an up and a down can share it).
        if e.t_s > last_t && last_t > 0.0 {
            lo = lo.min(n);
            hi = hi.max(n);
        }
        last_t = e.t_s;
        match e.kind() {
            "instance_up" => n += 1,
            "instance_down" => n -= 1,
            _ => {}
        }
    }
    (lo.min(n), hi.max(n))
}

/// scenarios/rolling-update.toml: stopping old instances at once drops requests (those in
/// flight, and those stale caches still send); draining past the cache TTL drops none.
/// Either way the controller keeps within max surge and max unavailable.
#[test]
fn rolling_update_drops_requests_only_without_draining() {
    let f = "scenarios/rolling-update.toml";
    let (cut, events) = run_file(f, &[]);
    let (drained, drained_events) = run_file(f, &["service.orders.rollout.drain=true"]);
    let orders = |r: &RunResult| r.services.iter().position(|s| s.name == "orders").unwrap();
    for (r, ev) in [(&cut, &events), (&drained, &drained_events)] {
        let ro = r.services[orders(r)].rollout.unwrap();
        let (finished, replaced) = (ro.finished_at_s, ro.replaced);
        assert!(
            finished.is_some() && replaced == 4,
            "{:?}",
            r.services[1].rollout
        );
        let downs = ev
            .iter()
            .filter(|e| e.kind() == "instance_down" && e.subject.starts_with("orders/"))
            .count();
        assert_eq!(downs, 4);
        // max surge 1, max unavailable 0: between 4 and 5 instances serving throughout.
        let (lo, hi) = present_range(ev, "orders");
        assert!(lo == 4 && hi <= 5, "{lo} {hi}");
    }
    // Stopped at once, an old instance goes as its replacement comes up; draining, both
    // serve for the grace period.
    assert_eq!(present_range(&events, "orders"), (4, 4));
    assert_eq!(present_range(&drained_events, "orders"), (4, 5));
    // No drain: each replacement drops a burst; the stale calls are counted as calls to dead.
    let c = &cut.workloads[0].counts;
    assert!(c.errors > 500, "{c:?}");
    assert!(cut.edges[0].stats.calls_to_dead > 400);
    let c = &drained.workloads[0].counts;
    assert_eq!((c.errors, c.timeouts), (0, 0), "{c:?}");
    assert_eq!(drained.edges[0].stats.calls_to_dead, 0);
    // Draining costs time: each batch waits out the 15 s grace period.
    let took = |r: &RunResult| {
        let ro = r.services[orders(r)].rollout.unwrap();
        let (s, f) = (ro.started_at_s, ro.finished_at_s);
        f.unwrap() - s.unwrap()
    };
    assert_eq!(took(&cut), 40.0);
    assert!(took(&drained) >= 40.0 + 4.0 * 15.0, "{}", took(&drained));
}

/// max surge 0, max unavailable 1: one old instance goes before its replacement starts, so
/// the service never has more than its replicas and never fewer than one less.
#[test]
fn rolling_update_with_max_unavailable_replaces_in_place() {
    let f = "scenarios/rolling-update.toml";
    let (r, events) = run_file(
        f,
        &[
            "service.orders.rollout.max_surge=0",
            "service.orders.rollout.max_unavailable=1",
        ],
    );
    assert_eq!(present_range(&events, "orders"), (3, 4));
    let ro = r.services[1].rollout.unwrap();
    let (finished, replaced) = (ro.finished_at_s, ro.replaced);
    assert_eq!((finished, replaced), (Some(30.0 + 4.0 * 10.0), 4));
    // Both zero could never move: rejected with a clear message.
    let err = scenario::load(
        std::path::Path::new(f),
        &["service.orders.rollout.max_surge=0".into()],
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("cannot both be 0"), "{err}");
}

const VERSIONS: &str = r#"
[sim]
name = "versions"
duration = "60s"
seed = 5

[network]
latency = { dist = "constant", value = "1ms" }

[[service]]
name = "api"
replicas = 2
workers = 16
work = { dist = "constant", value = "10ms" }

[service.canary]
replicas = 2
work = { dist = "constant", value = "20ms" }
SPLIT

[[workload]]
name = "users"
target = "api"
keys = 1000
headers = { beta = 0.1 }
arrivals = { kind = "poisson", rate = 200 }
"#;

fn run_versions(split: &str) -> (RunResult, Vec<StateEvent>) {
    run_text("versions.toml", &VERSIONS.replace("SPLIT", split), &[])
}

/// A fixed 90/10 split: the canary (20 ms work against 10 ms) takes 10 % of the requests,
/// within 4 standard deviations of a binomial share.
#[test]
fn weighted_split_sends_its_share() {
    let (r, _) = run_versions(r#"weights = [{ at = "0s", weight = 10 }]"#);
    let canary = r.services[0].canary.unwrap().requests;
    let total = r.workloads[0].counts.requests as f64;
    let share = canary as f64 / total;
    let sd = (0.1 * 0.9 / total).sqrt();
    assert!((share - 0.1).abs() < 4.0 * sd, "{share} of {total}");
}

/// Blue-green: nothing reaches green before the switch, everything after it.
#[test]
fn blue_green_switches_all_traffic_at_once() {
    let (r, events) = run_versions(r#"switch_at = "30s""#);
    let c = r.services[0].canary.unwrap();
    let (weight, canary) = (c.weight_pct, c.requests);
    assert_eq!(weight, 100.0);
    let total = r.workloads[0].counts.requests as f64;
    // Half the run on green: 50 % of the requests, within 3 % (Poisson counts of ~6000).
    assert!(
        (canary as f64 / total - 0.5).abs() < 0.03,
        "{canary} of {total}"
    );
    let switch: Vec<&StateEvent> = events.iter().filter(|e| e.kind() == "canary").collect();
    assert_eq!(switch.len(), 1);
    assert_eq!(
        (switch[0].t_s, switch[0].detail().as_str()),
        (30.0, "weight 0% -> 100%")
    );
}

/// Routes decide before weights: the beta header (10 % of requests) and a key range (keys
/// 0..=99 of 1000: 10 %) each send their requests to the canary at weight 0.
#[test]
fn header_and_key_routes_pick_the_version() {
    let share = |split: &str| {
        let (r, _) = run_versions(split);
        r.services[0].canary.unwrap().requests as f64 / r.workloads[0].counts.requests as f64
    };
    let none = share(r#"weights = [{ at = "0s", weight = 0 }]"#);
    assert_eq!(none, 0.0);
    let header = share(
        r#"weights = [{ at = "0s", weight = 0 }]
routes = [{ header = "beta", to = "canary" }]"#,
    );
    let keys = share(
        r#"weights = [{ at = "0s", weight = 0 }]
routes = [{ keys = [0, 99], to = "canary" }]"#,
    );
    let both = share(
        r#"weights = [{ at = "0s", weight = 0 }]
routes = [{ header = "beta", to = "canary" }, { keys = [0, 99], to = "canary" }]"#,
    );
    // 12 000 requests: a share of 10 % has a standard deviation of 0.27 %.
    assert!((header - 0.1).abs() < 0.012, "{header}");
    assert!((keys - 0.1).abs() < 0.012, "{keys}");
    // Independent matches: 1 - 0.9 x 0.9 = 19 %.
    assert!((both - 0.19).abs() < 0.015, "{both}");
    // A stable route beats the weight: at weight 100 the beta users stay on stable.
    let pinned = share(
        r#"weights = [{ at = "0s", weight = 100 }]
routes = [{ header = "beta", to = "stable" }]"#,
    );
    assert!((pinned - 0.9).abs() < 0.012, "{pinned}");
    // An unknown header is an error that names the ones sent.
    let text = VERSIONS.replace(
        "SPLIT",
        "weights = [{ at = \"0s\", weight = 0 }]\nroutes = [{ header = \"alpha\", to = \"canary\" }]",
    );
    let err = scenario::parse("v.toml", &text, &[])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("no workload sends header \"alpha\"") && err.contains("beta"),
        "{err}"
    );
}

/// scenarios/registry-outage.toml: while the registry is down nobody learns of a crash;
/// callers keep their stale lists (failed refreshes are counted) and learn it only after the
/// registry is back and the re-synced registration expires.
#[test]
fn registry_outage_keeps_stale_caches_until_it_returns() {
    let (r, events) = run_file("scenarios/registry-outage.toml", &[]);
    let e = &r.edges[0].stats;
    // 60 s of outage with a 10 s cache TTL: 6 refreshes fail, for each of front's 2 pods.
    assert_eq!(e.failed_refreshes, 12);
    let expired = events
        .iter()
        .find(|e| e.kind() == "registry" && e.detail().contains("heartbeat expired"))
        .unwrap();
    // Back at 90 s, every registration renewed then: expiry 20 s later (at a 5 s tick).
    assert_eq!(expired.t_s, 110.0);
    let seen = events
        .iter()
        .find(|e| e.kind() == "discovery" && e.detail().starts_with("sees [0 2 3]"))
        .unwrap();
    assert!((110.0..120.0).contains(&seen.t_s), "{}", seen.t_s);
    // Calls to the dead instance from the crash (45 s) to the refresh: about a quarter of
    // 200/s for 72 s (3 600), every one a failed request without a retry.
    assert!((3000..4200).contains(&e.calls_to_dead), "{e:?}");
    assert_eq!(r.workloads[0].counts.errors, e.calls_to_dead);
}

fn with_faults(file: &str, from: &str, to: &str, sets: &[&str]) -> (RunResult, Vec<StateEvent>) {
    let text = std::fs::read_to_string(file).unwrap().replace(from, to);
    run_text(file, &text, sets)
}

/// A healthy service cut off from the registry: its heartbeats stop arriving, so the registry
/// expires every instance and its callers stop calling it, though it works; it comes back
/// when its heartbeats do.
#[test]
fn registry_partition_expires_a_healthy_service() {
    let (r, events) = with_faults(
        "scenarios/registry-outage.toml",
        "kind = \"registry_outage\"",
        "kind = \"registry_partition\"\ntarget = \"catalog\"",
        &[],
    );
    let expired: Vec<f64> = events
        .iter()
        .filter(|e| e.kind() == "registry" && e.detail().contains("heartbeat expired"))
        .map(|e| e.t_s)
        .collect();
    // All four expire 20-25 s into the partition (heartbeats every 5 s, 5 s ticks).
    assert_eq!(expired.len(), 4, "{expired:?}");
    assert!(
        expired.iter().all(|t| (50.0..=55.0).contains(t)),
        "{expired:?}"
    );
    // front's own refreshes still work: it learns, and has nothing left to call.
    assert_eq!(r.edges[0].stats.failed_refreshes, 0);
    assert!(
        r.edges[0].stats.no_healthy_upstream > 1000,
        "{:?}",
        r.edges[0].stats
    );
    // After the partition heals, the three live instances heartbeat and are listed again.
    let back = events
        .iter()
        .filter(|e| {
            e.kind() == "registry" && e.detail().contains("heartbeat resumed") && e.t_s >= 90.0
        })
        .count();
    assert_eq!(back, 3);
}

/// Active checks of a service cut off from the registry are lost, so each fails when its
/// timeout (100 ms) expires, not at once: the instances turn unhealthy 100 ms after a
/// check is sent. A check that passes again after the partition is answered in about a
/// millisecond, so the gap between the two transitions is 100 ms short of a whole
/// number of 2 s check intervals (plus that millisecond). Failing at once would make
/// the gap a whole number of intervals plus the millisecond.
#[test]
fn checks_of_a_cut_off_service_fail_at_their_timeout() {
    let text = std::fs::read_to_string("scenarios/health-check-kill.toml")
        .unwrap()
        .replace(
            "arrivals = { kind = \"spike\", base = 80, peak = 190, at = \"20s\", for = \"10s\" }",
            "arrivals = { kind = \"poisson\", rate = 50 }",
        )
        + "\n[[fault]]\nkind = \"registry_partition\"\ntarget = \"back\"\nat = \"30s\"\nfor = \"10s\"\n";
    let (_, events) = run_text("hck-partition.toml", &text, &[]);
    let at = |inst: &str, change: &str| {
        events
            .iter()
            .find(|e| e.kind() == "registry" && e.subject == inst && e.detail().contains(change))
            .map(|e| e.t_s)
            .unwrap_or_else(|| panic!("{inst}: no {change}"))
    };
    for inst in ["back/0", "back/1"] {
        let down = at(inst, "healthy -> unhealthy");
        let up = at(inst, "unhealthy -> healthy");
        assert!((30.0..34.2).contains(&down), "{inst} unhealthy at {down}");
        assert!(up > 40.0, "{inst} healthy again at {up}");
        let gap = (up - down).rem_euclid(2.0);
        assert!((1.9..1.95).contains(&gap), "{inst}: gap mod 2 s = {gap}");
    }
}

/// Third-party registration: a registrar that polls every 10 s deregisters a crashed
/// instance at its next poll (no heartbeats, no TTL), and re-registers it after its restart;
/// a paused (hung) instance still looks alive to it and stays listed.
#[test]
fn registrar_follows_what_it_sees() {
    let registrar = "kind = \"registrar\"\npoll_interval = \"10s\"\n";
    let strip =
        "kind = \"ttl\"\nheartbeat = \"5s\"\ncheck_interval = \"5s\"\nunhealthy_after = \"20s\"\n";
    let crash = "kind = \"crash\"\ntarget = \"catalog\"\ninstance = 1\nat = \"45s\"";
    let text = std::fs::read_to_string("scenarios/registry-outage.toml")
        .unwrap()
        .replace(strip, registrar)
        .replace(
            "kind = \"registry_outage\"\nat = \"30s\"\nfor = \"60s\"",
            "kind = \"pause\"\ntarget = \"catalog\"\ninstance = 2\nat = \"20s\"\nfor = \"20s\"",
        )
        .replace(crash, &format!("{crash}\nfor = \"30s\""));
    let scn = scenario::parse("registrar.toml", &text, &[]).unwrap_or_else(|e| panic!("{e}"));
    let mut sink = MemorySink::default();
    World::new(&scn.spec, RunOptions::default()).run(&mut sink);
    let reg: Vec<(f64, String)> = sink
        .events
        .iter()
        .filter(|e| e.kind() == "registry")
        .map(|e| (e.t_s, format!("{} {}", e.subject, e.detail())))
        .collect();
    // The crash at 45 s is seen at the poll at 50 s; the restart at 75 s at the poll at 80 s.
    // The pause of catalog/2 is never seen.
    assert_eq!(
        reg,
        vec![
            (50.0, "catalog/1 healthy -> gone (deregistered)".to_string()),
            (80.0, "catalog/1 gone -> healthy (registered)".to_string()),
        ]
    );
    // kind = "registrar" takes no heartbeat.
    let bad = text.replace(registrar, &format!("{registrar}heartbeat = \"5s\"\n"));
    let err = scenario::parse("r.toml", &bad, &[])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("do not heartbeat"), "{err}");
}

/// scenarios/thundering-herd.toml: a cold instance given its full share at once is flooded
/// and pulled by its checks; slow start ramps its weight and avoids both.
#[test]
fn slow_start_tames_the_herd_on_a_cold_instance() {
    let f = "scenarios/thundering-herd.toml";
    let (herd, events) = run_file(f, &[]);
    let (ramp, ramp_events) = run_file(f, &["policy.balancer.rr.slow_start={window=\"60s\"}"]);
    let flaps = |ev: &[StateEvent]| {
        ev.iter()
            .filter(|e| e.subject == "api/0" && e.detail().starts_with("healthy -> unhealthy"))
            .filter(|e| e.t_s > 60.0)
            .count()
    };
    assert!(flaps(&events) >= 1);
    assert_eq!(flaps(&ramp_events), 0);
    // The crash itself costs both the same (calls refused before caches drop api/0); the herd
    // costs the plain balancer more than a thousand more.
    let e = |r: &RunResult| r.edges[0].stats.clone();
    assert_eq!(e(&herd).calls_to_dead, e(&ramp).calls_to_dead);
    let beyond = |r: &RunResult| e(r).failed - e(r).calls_to_dead;
    assert!(beyond(&herd) > 1000, "{}", beyond(&herd));
    assert!(beyond(&ramp) < 100, "{}", beyond(&ramp));
    // Without the cold start there is no herd to tame.
    let (warm, warm_events) = run_file(f, &["service.api.cold_start.multiply=1.0"]);
    assert_eq!(flaps(&warm_events), 0);
    assert!(beyond(&warm) < 100, "{}", beyond(&warm));
}

/// scenarios/server-side-discovery.toml: a load balancer that watches the registry sends
/// fewer calls to a dead instance than clients with 30 s caches, for one more hop, and is
/// itself discovered through a stale cache when it fails.
#[test]
fn server_side_discovery_is_fresher_but_one_more_hop() {
    let f = "scenarios/server-side-discovery.toml";
    let (fresh, _) = run_file(f, &[]);
    let (lazy, _) = run_file(f, &["service.catalog-lb.cache_ttl=30s"]);
    let edge = |r: &RunResult, name: &str| {
        r.edges
            .iter()
            .find(|e| format!("{}->{}", e.from, e.to) == name)
            .unwrap()
            .stats
            .clone()
    };
    let dead = |r: &RunResult| edge(r, "catalog-lb->catalog").calls_to_dead;
    // Detection (5-10 s) plus a 1 s cache against detection plus a 30 s cache; the phases
    // differ, so only the order of magnitude is asserted: at least twice fewer.
    assert!(
        dead(&fresh) > 0 && dead(&fresh) * 2 < dead(&lazy),
        "{} {}",
        dead(&fresh),
        dead(&lazy)
    );
    // The balancer's own crash reaches shoppers through front's 30 s cache.
    assert!(edge(&fresh, "front->catalog-lb").calls_to_dead > 300);
    // The extra hop: two 1 ms network legs and 200 us of work on every request.
    let (client_side, _) = run_file("scenarios/stale-discovery.toml", &[]);
    let p50 = |r: &RunResult| r.workloads[0].latency.p50;
    assert!(
        p50(&fresh) - p50(&client_side) > 2.0,
        "{} {}",
        p50(&fresh),
        p50(&client_side)
    );
}
