//! `faultline import istio`: Istio's documented samples and the source articles' examples
//! (tests/fixtures/istio/) read into policy tables with the values they imply, applied to a
//! scenario that then validates and runs; what cannot be mapped is listed with its reason.

use faultline::import::istio;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/istio");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

fn imported() -> istio::Imported {
    let mut im = istio::Imported::default();
    for f in fixtures() {
        istio::read(
            &f.display().to_string(),
            &std::fs::read_to_string(&f).unwrap(),
            &mut im,
        )
        .unwrap();
    }
    im
}

#[test]
fn each_field_maps_to_the_value_istio_means() {
    let im = imported();
    let p = &im.policy;
    // Istio's `attempts` counts retries; faultline's max_attempts counts the first try too.
    let ratings = &p.retry["ratings"];
    assert_eq!(ratings.max_attempts, 4);
    assert_eq!(
        ratings.retry_on.as_deref().unwrap(),
        ["gateway-error", "connect-failure", "refused-stream"]
    );
    // perTryTimeout is the call's timeout; without a route timeout there is no overall one.
    assert_eq!(im.hosts["ratings"].timeout.unwrap().to_string(), "2s");
    assert!(ratings.overall_timeout.is_none());
    // A route timeout alone is the call's.
    assert_eq!(im.hosts["reviews"].timeout.unwrap().to_string(), "500ms");
    // httpbin's circuit breaking: the task's values, one for one.
    let od = &p.outlier["httpbin"];
    assert_eq!(od.consecutive_5xx, Some(1));
    assert_eq!(od.interval.unwrap().to_string(), "1s");
    assert_eq!(od.base_ejection.unwrap().to_string(), "3m");
    assert_eq!(od.max_ejection_percent, Some(100.0));
    let cb = &p.bulkhead["httpbin"];
    assert_eq!(
        (cb.kind.as_str(), cb.max_connections, cb.max_pending),
        ("envoy", Some(1), Some(1))
    );
    assert_eq!(p.pool["httpbin"].max_requests_per_connection, Some(1));
    // The article's DestinationRule.
    assert_eq!(p.balancer["order-service"].kind, "least_request");
    assert_eq!(p.bulkhead["order-service"].max_requests, Some(1000));
    assert_eq!(
        p.pool["order-service"].connect_timeout.unwrap().to_string(),
        "5s"
    );
    // consistentHash on a cookie: a ring hash (by the request's key).
    assert_eq!(p.balancer["ratings"].kind, "ring_hash");
    // Traffic shifting: the smaller share of two subsets is the canary's weight.
    assert_eq!(im.hosts["reviews"].canary, Some(("v3".to_string(), 50.0)));
    // The abort applies to every request of details; the delay only to jason's: not taken.
    assert_eq!(im.fault.len(), 1);
    let abort = &im.fault[0];
    assert_eq!(
        (abort.kind.as_str(), abort.target.as_deref(), abort.p),
        ("error", Some("details"), Some(0.1))
    );
}

#[test]
fn what_cannot_be_mapped_is_listed_with_its_reason() {
    let im = imported();
    let said = |field: &str, why: &str| {
        im.unmapped
            .iter()
            .any(|(_, f, w)| f == field && w.contains(why))
    };
    assert!(
        said(
            "spec.http[0].fault",
            "only to the requests the route matches"
        ),
        "{:?}",
        im.unmapped
    );
    assert!(said(
        "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie",
        "request's key"
    ));
    assert!(said("spec.http[1].weight", "belongs on a destination"));
    assert!(said("spec.http[0].match[0]", "[[migration]]"));
    assert!(said("spec.http[0].retries", "route without a match"));
    // Kinds that are not traffic policy.
    let mut other = istio::Imported::default();
    istio::read(
        "x.yaml",
        "kind: PeerAuthentication\nmetadata:\n  name: default\n",
        &mut other,
    )
    .unwrap();
    assert!(other.unmapped[0].2.contains("PeerAuthentication"));
}

const BASE: &str = r#"
[sim]
name = "bookinfo"
duration = "20s"
warmup = "2s"
seed = 5

[[service]]
name = "front"
replicas = 2
workers = 16
work = { dist = "exp", mean = "1ms" }
calls = [
  { parallel = [{ to = "ratings" }, { to = "details" }] },
  { to = "reviews" },
  { to = "httpbin", required = false },
  { to = "order-service" },
]

[[service]]
name = "ratings"
replicas = 3
work = { dist = "exp", mean = "2ms" }

[[service]]
name = "details"
work = { dist = "exp", mean = "2ms" }

[[service]]
name = "reviews"
replicas = 2
work = { dist = "exp", mean = "3ms" }
[service.canary]
replicas = 1
weights = [{ at = "0s", weight = 5 }]

[[service]]
name = "httpbin"
work = { dist = "exp", mean = "1ms" }

[[service]]
name = "order-service"
replicas = 2
work = { dist = "exp", mean = "4ms" }

[[workload]]
name = "users"
target = "front"
arrivals = { kind = "poisson", rate = 50 }
"#;

#[test]
fn applied_to_a_scenario_the_policies_validate_and_run() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("bookinfo.toml");
    std::fs::write(&base, BASE).unwrap();
    let out = dir.join("imported.toml");
    let bin = env!("CARGO_BIN_EXE_faultline");
    let r = Command::new(bin)
        .args(["import", "istio"])
        .args(fixtures())
        .arg("--into")
        .arg(&base)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let scn = faultline::scenario::load(&out, &[]).expect("the imported scenario validates");
    let front = scn.raw.service.iter().find(|s| s.name == "front").unwrap();
    let ratings = &front.calls[0].parallel.as_ref().unwrap()[0];
    assert_eq!(ratings.retry.as_deref(), Some("ratings"));
    assert_eq!(ratings.timeout.unwrap().to_string(), "2s");
    let httpbin = &front.calls[2];
    assert_eq!(httpbin.outlier.as_deref(), Some("httpbin"));
    assert_eq!(httpbin.bulkhead.as_deref(), Some("httpbin"));
    let reviews = scn
        .raw
        .service
        .iter()
        .find(|s| s.name == "reviews")
        .unwrap();
    assert_eq!(reviews.canary.as_ref().unwrap().weights[0].weight, 50.0);
    // order-service's routes need a canary it does not have: said, not applied.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("# Not applied: order-service:"), "{text}");
    assert!(text.contains("# Not mapped:"));
    // And it runs.
    let run = Command::new(bin)
        .args(["run", out.to_str().unwrap(), "--out"])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The fragment form parses as TOML, with the same tables.
    let frag = Command::new(bin)
        .args(["import", "istio"])
        .args(fixtures())
        .output()
        .unwrap();
    assert!(frag.status.success());
    let doc: toml::Table = String::from_utf8_lossy(&frag.stdout).parse().expect("TOML");
    assert_eq!(
        doc["policy"]["retry"]["ratings"]["max_attempts"].as_integer(),
        Some(4)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn broken_yaml_is_an_error_with_its_place() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-import-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "kind: VirtualService\nspec:\n  http: [\n").unwrap();
    let r = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["import", "istio"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("bad.yaml: document 1") && err.contains("line"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Envoy clusters map where Envoy's and faultline's fields are the same thing.
#[test]
fn envoy_clusters_map_where_the_fields_are_the_same() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/istio/envoy-clusters.yaml");
    let mut im = istio::Imported::default();
    istio::read("envoy.yaml", &std::fs::read_to_string(f).unwrap(), &mut im).unwrap();
    let p = &im.policy;
    // Istio's generated cluster name is the host reviews.
    let lb = &p.balancer["reviews"];
    assert_eq!(
        (lb.kind.as_str(), lb.choices, lb.panic_threshold),
        ("least_request", Some(3), 30.0)
    );
    let cb = &p.bulkhead["reviews"];
    assert_eq!(
        (
            cb.max_connections,
            cb.max_pending,
            cb.max_requests,
            cb.max_retries
        ),
        (Some(512), Some(256), Some(1024), Some(5))
    );
    let od = &p.outlier["reviews"];
    assert_eq!(od.consecutive_5xx, Some(7));
    assert_eq!(od.base_ejection.unwrap().to_string(), "15s");
    // Envoy writes the standard-deviation factor times 1000.
    assert_eq!(od.success_rate_stdev_factor, Some(1.9));
    let pool = &p.pool["reviews"];
    assert_eq!(pool.protocol.as_deref(), Some("http2"));
    assert_eq!(pool.connect_timeout.unwrap().to_string(), "250ms");
    assert_eq!(p.balancer["details"].ring_size, Some(2048));
    let said = |field: &str, why: &str| {
        im.unmapped
            .iter()
            .any(|(_, f, w)| f == field && w.contains(why))
    };
    assert!(
        said("circuit_breakers.thresholds[1]", "priority HIGH"),
        "{:?}",
        im.unmapped
    );
    assert!(said("health_checks", "[registry]"));
    assert!(said("load_assignment", "replicas"));
}
