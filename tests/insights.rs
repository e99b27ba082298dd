//! Insights (`summary.json` `insights`, "What happened" in `report.html`): the stories the
//! gallery's headers tell, checked against what the detectors find in the runs.

use serde_json::Value;
use std::process::Command;

/// Runs `scenario` with `sets` into a fresh directory; the kinds of insight found, in order,
/// with their subjects.
fn insights(scenario: &str, sets: &[&str]) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "faultline-insights-{}-{}",
        std::process::id(),
        scenario.replace('/', "_")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut args = vec!["run", scenario, "--out", dir.to_str().unwrap()];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<h2 id=\"what-happened\">What happened</h2>"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let found: Vec<(String, String)> = summary["insights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            // Each is said on stderr and on the page too.
            let text = i["text"].as_str().unwrap();
            assert!(stderr.contains(text), "{text} not on stderr");
            let (kind, subject) = (i["kind"].as_str().unwrap(), i["subject"].as_str().unwrap());
            (kind.to_string(), subject.to_string())
        })
        .collect();
    if found.is_empty() {
        assert!(
            stderr.contains("what happened: nothing unusual") && html.contains("Nothing unusual")
        );
    }
    std::fs::remove_dir_all(dir).ok();
    found
}

fn has(found: &[(String, String)], kind: &str, subject: &str) -> bool {
    found.iter().any(|(k, s)| k == kind && s == subject)
}

/// retry-storm.toml: "without a budget the system never recovers" (a metastable failure,
/// fed by a retry storm on a saturated backend); with the budget it recovers.
#[test]
fn retry_storm_tells_its_story() {
    let storm = insights("scenarios/retry-storm.toml", &[]);
    assert!(has(&storm, "metastable_failure", "shoppers"), "{storm:?}");
    assert!(has(&storm, "retry_storm", "api->backend"), "{storm:?}");
    let budgeted = insights(
        "scenarios/retry-storm.toml",
        &["service.api.calls[0].retry=budgeted"],
    );
    assert!(
        !budgeted.iter().any(|(k, _)| k == "metastable_failure"),
        "{budgeted:?}"
    );
}

/// registry-overload.toml: the registry's queue stays full, and callers keep calling the
/// crashed catalog/3 from their stale lists.
#[test]
fn registry_overload_tells_its_story() {
    let found = insights("scenarios/registry-overload.toml", &[]);
    assert!(has(&found, "queue_saturated", "consul"), "{found:?}");
    assert!(
        has(&found, "stale_discovery", "front->catalog"),
        "{found:?}"
    );
}

/// bad-canary.toml rolls its canary back; quickstart.toml is a healthy run and says so.
#[test]
fn a_rollback_is_named_and_a_healthy_run_raises_nothing() {
    let canary = insights("scenarios/bad-canary.toml", &[]);
    assert!(has(&canary, "canary_rolled_back", "checkout"), "{canary:?}");
    assert!(insights("scenarios/quickstart.toml", &[]).is_empty());
}

/// cascading-failure.toml: payment slows, and frontend's threads, all waiting on it, give out:
/// the distress climbs from payment to frontend.
#[test]
fn cascading_failure_tells_its_story() {
    let found = insights("scenarios/cascading-failure.toml", &[]);
    assert!(has(&found, "cascading_failure", "payment"), "{found:?}");
}

/// What each gallery scenario's report must say happened, kind and subject, in order: the
/// story its header tells (the detectors' part of it). A healthy run (chain, hedging, mmc,
/// quickstart) says nothing unusual.
const GALLERY: &[(&str, &[(&str, &str)])] = &[
    (
        "autoscale-spike",
        &[("goodput_collapse", "shoppers"), ("queue_saturated", "api")],
    ),
    ("bad-canary", &[("canary_rolled_back", "checkout")]),
    (
        "broker-partition",
        &[
            ("messages_redelivered", "shipments"),
            ("duplicate_effects", "shipments"),
        ],
    ),
    (
        "bulkhead",
        &[
            ("goodput_collapse", "browsers"),
            ("goodput_collapse", "reporters"),
            ("queue_saturated", "api"),
        ],
    ),
    (
        "cache-stampede",
        &[
            ("goodput_collapse", "readers-naive"),
            ("queue_saturated", "db-naive"),
        ],
    ),
    (
        "cascading-failure",
        &[
            ("cascading_failure", "payment"),
            ("queue_saturated", "frontend"),
        ],
    ),
    ("chain", &[]),
    (
        "consumer-lag",
        &[("cascading_failure", "bus"), ("queue_growing", "readings")],
    ),
    (
        "dual-write",
        &[("goodput_collapse", "shoppers"), ("events_lost", "orders")],
    ),
    ("duplicate-delivery", &[("duplicate_effects", "shipments")]),
    (
        "event-sourcing-cqrs",
        &[
            ("projection_behind", "order-view"),
            ("projection_behind", "analytics"),
        ],
    ),
    ("explore-checkout", &[("stale_discovery", "front->payment")]),
    ("health-check-kill", &[("cascading_failure", "back")]),
    ("hedging", &[]),
    (
        "lb-slow-instance",
        &[
            ("cascading_failure", "catalog"),
            ("queue_saturated", "catalog"),
            ("slow_instance", "catalog/2"),
        ],
    ),
    ("mesh-cost", &[("host_ejected", "catalog")]),
    (
        "mesh",
        &[
            ("goodput_collapse", "users"),
            ("cascading_failure", "leaf05"),
            ("breaker_flapping", "domain3->leaf09"),
            ("breaker_flapping", "gateway->domain3"),
            ("breaker_flapping", "gateway->domain2"),
            ("host_ejected", "leaf09"),
            ("host_ejected", "domain3"),
            ("host_ejected", "leaf05"),
            ("host_ejected", "domain2"),
            ("host_ejected", "leaf12"),
            ("stale_discovery", "domain3->leaf09"),
        ],
    ),
    ("mmc", &[]),
    ("noisy-neighbour", &[("queue_growing", "reports")]),
    ("one-pod-bad-day", &[("breaker_flapping", "api->recs")]),
    ("outlier-ejection", &[("bad_instance", "inventory/3")]),
    (
        "overload-shedding",
        &[("goodput_collapse", "clients"), ("queue_growing", "api")],
    ),
    (
        "poison-message",
        &[
            ("messages_redelivered", "payments"),
            ("messages_dead", "payments"),
        ],
    ),
    ("priority-shedding", &[("queue_saturated", "catalog")]),
    ("quickstart", &[]),
    ("registry-outage", &[("stale_discovery", "front->catalog")]),
    (
        "registry-overload",
        &[
            ("queue_saturated", "consul"),
            ("stale_discovery", "front->catalog"),
        ],
    ),
    (
        "retry-storm",
        &[
            ("metastable_failure", "shoppers"),
            ("goodput_collapse", "shoppers"),
            ("cascading_failure", "backend"),
            ("retry_storm", "api->backend"),
            ("queue_saturated", "backend"),
        ],
    ),
    ("rolling-update", &[("stale_discovery", "front->orders")]),
    (
        "saga-choreography",
        &[
            ("queue_growing", "order.charge"),
            ("saga_inconsistent", "order"),
            ("messages_redelivered", "order.charge"),
            ("duplicate_effects", "order.charge"),
        ],
    ),
    ("saga-payment-failures", &[("saga_inconsistent", "order")]),
    (
        "saga-stuck-compensation",
        &[
            ("saga_inconsistent", "order"),
            ("stale_discovery", "checkout->stock-admin"),
        ],
    ),
    (
        "saga-vs-2pc",
        &[
            ("goodput_collapse", "saga-orders"),
            ("goodput_collapse", "2pc-orders"),
            ("saga_inconsistent", "order"),
        ],
    ),
    (
        "server-side-discovery",
        &[
            ("stale_discovery", "front->catalog-lb"),
            ("stale_discovery", "catalog-lb->catalog"),
        ],
    ),
    ("stale-discovery", &[("stale_discovery", "front->catalog")]),
    (
        "strangler-migration",
        &[
            ("goodput_collapse", "shoppers"),
            ("cascading_failure", "orders"),
            ("canary_rolled_back", "migration:orders"),
        ],
    ),
    (
        "thundering-herd",
        &[
            ("queue_growing", "api"),
            ("slow_instance", "api/0"),
            ("stale_discovery", "front->api"),
        ],
    ),
    (
        "timeout-inversion",
        &[
            ("goodput_collapse", "shoppers"),
            ("cascading_failure", "backend"),
            ("retry_storm", "mid->backend"),
            ("queue_saturated", "backend"),
            ("timeout_inversion", "front->mid"),
        ],
    ),
    ("zone-outage", &[("stale_discovery", "front->inventory")]),
];

fn html_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every committed gallery report (which `faultline gallery --check` holds to what the code
/// writes) opens with the "What happened" its header's story implies: the same insights,
/// each on the page before the summary, each linked to a chart the report has.
#[test]
fn every_gallery_report_opens_with_what_its_header_tells() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scenarios: Vec<String> = std::fs::read_dir(root.join("scenarios"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    scenarios.sort();
    let mut listed: Vec<&str> = GALLERY.iter().map(|g| g.0).collect();
    listed.sort();
    assert_eq!(
        scenarios, listed,
        "every gallery scenario has its story here"
    );
    for (name, expected) in GALLERY {
        let dir = root.join("reports").join(name);
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        let found = summary["insights"].as_array().unwrap();
        let got: Vec<(&str, &str)> = found
            .iter()
            .map(|i| (i["kind"].as_str().unwrap(), i["subject"].as_str().unwrap()))
            .collect();
        assert_eq!(&got[..], *expected, "{name}");
        let what = html
            .find("<h2 id=\"what-happened\">")
            .expect("What happened");
        let summary_at = html.find("<h2 id=\"summary\">").expect("Summary");
        assert!(what < summary_at, "{name}: What happened opens the report");
        for i in found {
            let text = html_escaped(i["text"].as_str().unwrap());
            let at = html.find(&text).unwrap_or_else(|| panic!("{name}: {text}"));
            assert!(what < at && at < summary_at, "{name}: {text}");
            let chart = i["chart"].as_str().unwrap();
            assert!(
                dir.join(chart).exists(),
                "{name}: the link to {chart} leads nowhere"
            );
        }
        if expected.is_empty() {
            assert!(html[what..summary_at].contains("Nothing unusual"), "{name}");
        }
    }
}

/// timeout-inversion.toml: the inversion bites; with deadlines propagated (the header's
/// second command) it cannot.
#[test]
fn a_timeout_inversion_bites_until_deadlines_propagate() {
    let found = insights("scenarios/timeout-inversion.toml", &[]);
    assert!(has(&found, "timeout_inversion", "front->mid"), "{found:?}");
    let bounded = insights(
        "scenarios/timeout-inversion.toml",
        &[
            "service.front.propagate_deadline=true",
            "service.mid.propagate_deadline=true",
            "service.backend.drop_expired=true",
        ],
    );
    assert!(
        !bounded.iter().any(|(k, _)| k == "timeout_inversion"),
        "{bounded:?}"
    );
}

/// duplicate-delivery.toml: parcels ship twice; with an idempotency store they do not.
/// dual-write.toml: events are lost; with the outbox none are.
#[test]
fn duplicates_and_lost_events_go_away_with_their_remedies() {
    let dup = insights("scenarios/duplicate-delivery.toml", &[]);
    assert!(has(&dup, "duplicate_effects", "shipments"), "{dup:?}");
    let idem = insights(
        "scenarios/duplicate-delivery.toml",
        &["service.shipping.consumes[0].idempotency_ttl=\"1h\""],
    );
    assert!(
        !idem.iter().any(|(k, _)| k == "duplicate_effects"),
        "{idem:?}"
    );
    let lost = insights("scenarios/dual-write.toml", &[]);
    assert!(has(&lost, "events_lost", "orders"), "{lost:?}");
    let outbox = insights(
        "scenarios/dual-write.toml",
        &["service.orders.calls[0].outbox=true"],
    );
    assert!(
        !outbox.iter().any(|(k, _)| k == "events_lost"),
        "{outbox:?}"
    );
}

/// outlier-ejection.toml: one bad instance among ten; with Envoy's outlier detection it is
/// ejected. lb-slow-instance.toml: catalog/2 is the slow one.
#[test]
fn a_bad_instance_is_named_and_its_ejection_told() {
    let bad = insights("scenarios/outlier-ejection.toml", &[]);
    assert!(has(&bad, "bad_instance", "inventory/3"), "{bad:?}");
    let ejected = insights(
        "scenarios/outlier-ejection.toml",
        &["service.front.outlier=envoy"],
    );
    assert!(has(&ejected, "host_ejected", "inventory"), "{ejected:?}");
    let slow = insights("scenarios/lb-slow-instance.toml", &[]);
    assert!(has(&slow, "slow_instance", "catalog/2"), "{slow:?}");
}
