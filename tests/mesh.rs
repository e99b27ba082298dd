//! The service mesh and connection pools: sidecar proxies on the request's path (their CPU,
//! overload, crash), mTLS handshakes paid per connection, authorization denials, the
//! proxies' own policies, and connections reused, limited, reset and churned.

mod common;

use common::run_text;
use faultline::model::RunResult;

/// `web` (`web_replicas`) calls `catalog` (2 instances) under a `[mesh]`; `extra` is appended.
fn system(rate: f64, extra: &str) -> String {
    format!(
        r#"
[sim]
name = "m"
duration = "20s"
seed = 9

[network]
latency = {{ dist = "constant", value = "1ms" }}

[mesh]
proxy = {{ latency = {{ dist = "constant", value = "0.5ms" }}, workers = 4 }}

[[service]]
name = "web"
replicas = 2
workers = 64
calls = [{{ to = "catalog", timeout = "1s" }}]

[[service]]
name = "catalog"
replicas = 2
workers = 64
work = {{ dist = "constant", value = "10ms" }}

[[workload]]
name = "w"
target = "web"
arrivals = {{ kind = "poisson", rate = {rate} }}
{extra}
"#
    )
}

fn edge(r: &RunResult) -> &faultline::model::EdgeResult {
    r.edges
        .iter()
        .find(|e| e.from == "web" && e.to == "catalog")
        .expect("web->catalog")
}

fn service<'a>(r: &'a RunResult, name: &str) -> &'a faultline::model::ServiceResult {
    r.services.iter().find(|s| s.name == name).expect(name)
}

#[test]
fn mtls_handshake_is_paid_once_per_connection_with_keep_alive_and_http2() {
    let mtls = "mtls = { handshake = { dist = \"constant\", value = \"3ms\" } }";
    let with = |pool: &str| {
        let text = system(200.0, pool).replace("workers = 4 }", &format!("workers = 4 }}\n{mtls}"));
        run_text("m.toml", &text, &[])
    };
    // Keep-alive (HTTP/1.1, Istio's default): each connection carries many requests.
    let (keep, _) = with("");
    let c = edge(&keep).connections.clone().expect("meshed pairs pool");
    let web = service(&keep, "web").proxy.clone().expect("web is meshed");
    assert!(c.mtls);
    assert_eq!(
        web.handshakes, c.stats.opened,
        "one handshake per connection"
    );
    let requests = c.stats.opened + c.stats.reused;
    assert_eq!(
        requests,
        edge(&keep).stats.attempts,
        "no warmup here: every attempt counted"
    );
    assert!(
        c.stats.opened * 50 < requests,
        "keep-alive: {} connections for {requests} requests",
        c.stats.opened
    );
    // HTTP/2: every request of a caller to a host multiplexes on one connection.
    let h2 = "[policy.pool.h2]\nprotocol = \"http2\"\n";
    let two_text = system(200.0, h2).replace(
        "workers = 4 }",
        &format!("workers = 4 }}\n{mtls}\npool = \"h2\""),
    );
    let (two_pool, _) = run_text("m.toml", &two_text, &[]);
    let c2 = edge(&two_pool).connections.clone().expect("pooled");
    assert_eq!(
        c2.stats.opened, 4,
        "2 web pods x 2 catalog hosts, one connection each"
    );
    assert_eq!(
        service(&two_pool, "web").proxy.clone().unwrap().handshakes,
        4
    );
    // No keep-alive: a handshake per request, and every request pays it in latency.
    let once = "[policy.pool.once]\nmax_requests_per_connection = 1\n";
    let once_text = system(200.0, once).replace(
        "workers = 4 }",
        &format!("workers = 4 }}\n{mtls}\npool = \"once\""),
    );
    let (each, _) = run_text("m.toml", &once_text, &[]);
    let ce = edge(&each).connections.clone().unwrap();
    assert_eq!(ce.stats.reused, 0);
    assert_eq!(ce.stats.opened, ce.stats.closed_limit + ce.open_at_end);
    assert_eq!(
        service(&each, "web").proxy.clone().unwrap().handshakes,
        ce.stats.opened
    );
    // Each new connection adds TCP's and TLS's round trips (2 ms each here) and 3 ms of
    // handshake work: 7 ms on the median call.
    let added = each.workloads[0].latency.p50 - keep.workloads[0].latency.p50;
    assert!((6.5..7.5).contains(&added), "added {added} ms");
}

#[test]
fn each_proxy_adds_its_cpu_to_the_path_and_mesh_off_removes_it() {
    let text = system(20.0, "");
    let (on, _) = run_text("m.toml", &text, &[]);
    let (off, _) = run_text("m.toml", &text, &["mesh.enabled=false"]);
    // Outbound and inbound proxy, 0.5 ms each, and no queueing at 20/s on 4 workers.
    let added = on.workloads[0].latency.p50 - off.workloads[0].latency.p50;
    assert!((0.99..1.01).contains(&added), "added {added} ms");
    assert!(service(&off, "web").proxy.is_none());
    let web = service(&on, "web").proxy.clone().unwrap();
    let catalog = service(&on, "catalog").proxy.clone().unwrap();
    assert_eq!(web.outbound.requests, catalog.inbound.requests);
    assert_eq!(web.outbound.requests, edge(&on).stats.attempts);
    // 0.5 ms per request at ~20/s over 2 pods x 4 workers x 20 s.
    let expected = web.outbound.requests as f64 * 0.5e-3 / (2.0 * 4.0 * 20.0);
    assert!((web.outbound.utilization - expected).abs() < 1e-9);
}

#[test]
fn an_overloaded_proxy_answers_503_itself() {
    // One proxy worker at 5 ms a request holds 200/s per pod; 600/s over 2 pods is more.
    let text = system(600.0, "")
        .replace("workers = 4 }", "workers = 1, queue = 8 }")
        .replace("value = \"0.5ms\"", "value = \"5ms\"");
    let (r, _) = run_text("m.toml", &text, &[]);
    let web = service(&r, "web").proxy.clone().unwrap();
    assert!(web.outbound.overloaded > 0);
    assert!(
        web.outbound.utilization > 0.95,
        "{}",
        web.outbound.utilization
    );
    assert_eq!(
        edge(&r).stats.failed,
        web.outbound.overloaded,
        "every overflow fails its call (no retry policy)"
    );
}

#[test]
fn authorization_denies_with_403_which_is_not_retried() {
    let extra = r#"
[policy.retry.r]
max_attempts = 3
"#;
    let text = system(50.0, extra).replace(
        "workers = 4 }",
        "workers = 4 }\nauthz = { deny = [{ from = \"web\", to = \"catalog\" }] }\nretry = \"r\"",
    );
    let (r, _) = run_text("m.toml", &text, &[]);
    let e = edge(&r);
    let catalog = service(&r, "catalog").proxy.clone().unwrap();
    assert_eq!(catalog.denied, e.stats.attempts);
    assert_eq!(e.stats.retries, 0, "a 403 is not in the default retry_on");
    assert_eq!(e.stats.ok, 0);
    assert_eq!(
        service(&r, "catalog").counts.requests,
        0,
        "the app never sees them"
    );
}

#[test]
fn a_crashed_proxy_makes_its_instance_unreachable_and_churns_its_connections() {
    let fault = r#"
[[fault]]
kind = "proxy_crash"
target = "catalog"
instance = 1
at = "5s"
for = "5s"
"#;
    let (r, _) = run_text("m.toml", &system(100.0, fault), &[]);
    let catalog = service(&r, "catalog").proxy.clone().unwrap();
    let e = edge(&r);
    // Round robin sends half the calls to instance 1: for 5 s of 20, a quarter... of half.
    let share = catalog.unreachable as f64 / e.stats.attempts as f64;
    assert!((0.09..0.16).contains(&share), "unreachable share {share}");
    assert_eq!(
        e.stats.failed, catalog.unreachable,
        "connect failures, no retry"
    );
    let c = e.connections.clone().unwrap();
    assert!(
        c.stats.closed_churn >= 2,
        "each caller's connection to it died: {c:?}"
    );
    let inst = &service(&r, "catalog").instances;
    assert!(inst[1].counts.requests * 10 < inst[0].counts.requests * 8);
    // With retries on connect failures (Istio's default retry_on) the callers go round it.
    let retry = "[policy.retry.r]\nmax_attempts = 3\nretry_on = [\"connect_failure\"]\n";
    let text = system(100.0, &format!("{fault}{retry}"))
        .replace("timeout = \"1s\" }", "timeout = \"1s\", retry = \"r\" }");
    let (r2, _) = run_text("m.toml", &text, &[]);
    assert_eq!(edge(&r2).stats.failed, 0);
    assert!(edge(&r2).stats.retries > 0);
}

#[test]
fn a_caller_whose_proxy_crashed_cannot_call_out() {
    let fault = "[[fault]]\nkind = \"proxy_crash\"\ntarget = \"web\"\ninstance = 0\nat = \"0s\"\n";
    let (r, _) = run_text("m.toml", &system(100.0, fault), &[]);
    let web = service(&r, "web").proxy.clone().unwrap();
    let e = edge(&r);
    assert_eq!(e.stats.failed, web.unreachable);
    let share = e.stats.failed as f64 / e.stats.calls as f64;
    assert!((0.45..0.55).contains(&share), "half the pods fail: {share}");
}

#[test]
fn the_mesh_retry_and_outlier_policies_run_on_meshed_calls_only() {
    let extra = r#"
[policy.retry.istio]
max_attempts = 3
retry_on = ["error"]

[[fault]]
kind = "error"
target = "catalog"
instance = 0
p = 0.5
at = "0s"
"#;
    let text = system(100.0, extra).replace("workers = 4 }", "workers = 4 }\nretry = \"istio\"");
    let (meshed, _) = run_text("m.toml", &text, &[]);
    assert!(edge(&meshed).stats.retries > 0);
    let (outside, _) = run_text("m.toml", &text, &["service.web.sidecar=false"]);
    assert_eq!(
        edge(&outside).stats.retries,
        0,
        "web has no proxy to retry for it"
    );
    assert!(service(&outside, "web").proxy.is_none());
    assert!(
        edge(&outside).connections.is_none(),
        "no sidecar pair, no pool"
    );
    let (off, _) = run_text("m.toml", &text, &["mesh.enabled=false"]);
    assert_eq!(edge(&off).stats.retries, 0);
}

#[test]
fn a_connect_timeout_fails_a_new_connection_fast_while_a_reused_one_times_out() {
    // A partition from 5 s: no keep-alive means every attempt needs a new connection, whose
    // SYN is lost: it fails at the connect timeout (100 ms) as a connect failure, which the
    // retry policy retries. Over HTTP/2 every request multiplexes on the open connection and
    // is lost: it times out after 1 s, which this policy does not retry. (Over HTTP/1.1
    // keep-alive the hanging requests need more connections, whose connects fail: both.)
    let extra = r#"
[policy.retry.r]
max_attempts = 2
retry_on = ["connect_failure"]

[policy.pool.once]
max_requests_per_connection = 1
connect_timeout = "100ms"

[policy.pool.keep]
protocol = "http2"
connect_timeout = "100ms"

[[fault]]
kind = "partition"
target = "web"
peer = "catalog"
at = "5s"
for = "2s"
"#;
    let text = system(50.0, extra).replace(
        "timeout = \"1s\" }",
        "timeout = \"1s\", retry = \"r\", pool = \"once\" }",
    );
    let text = text.replace("arrivals = {", "timeout = \"5s\"\narrivals = {");
    let (once, _) = run_text("m.toml", &text, &["mesh.enabled=false"]);
    assert!(
        edge(&once).stats.retries > 50,
        "{}",
        edge(&once).stats.retries
    );
    // Two connect timeouts of 100 ms, then the call fails: a tenth of the calls (2 s of
    // 20) take ~200 ms (only those already in flight at 5 s wait out the 1 s timeout).
    let p99 = once.workloads[0].latency.p99;
    assert!((195.0..260.0).contains(&p99), "p99 {p99} ms");
    let (keep, _) = run_text(
        "m.toml",
        &text,
        &["mesh.enabled=false", "service.web.calls[0].pool=keep"],
    );
    assert_eq!(edge(&keep).stats.retries, 0);
    assert!(edge(&keep).stats.failed > 50);
    let p99 = keep.workloads[0].latency.p99;
    assert!((995.0..1030.0).contains(&p99), "p99 {p99} ms");
}

#[test]
fn mesh_and_pool_mistakes_are_refused_at_their_line() {
    let bad = |text: &str, needle: &str| {
        let e = faultline::scenario::parse("m.toml", text, &[]).expect_err("invalid");
        let msg = e.to_string();
        assert!(msg.contains(needle), "{msg}");
        assert!(msg.contains("m.toml:"), "{msg}");
    };
    let base = system(10.0, "");
    let no_mesh = base.replace(
        "[mesh]\nproxy = { latency = { dist = \"constant\", value = \"0.5ms\" }, workers = 4 }\n",
        "",
    );
    bad(
        &no_mesh.replace(
            "replicas = 2\nworkers = 64\ncalls",
            "replicas = 2\nsidecar = false\nworkers = 64\ncalls",
        ),
        "a sidecar needs a [mesh]",
    );
    bad(
        &format!("{base}\n[policy.pool.p]\nprotocol = \"http3\"\n"),
        "unknown protocol \"http3\"",
    );
    bad(
        &format!("{base}\n[policy.pool.p]\nmax_concurrent_streams = 10\n"),
        "max_concurrent_streams is an HTTP/2 setting",
    );
    bad(
        &format!("{no_mesh}\n[[fault]]\nkind = \"proxy_crash\"\ntarget = \"web\"\nat = \"1s\"\n"),
        "a proxy_crash needs a target with a sidecar",
    );
    bad(
        &base.replace(
            "name = \"catalog\"",
            "name = \"catalog\"\nsidecar = \"yes\"",
        ),
        "sidecar is false (no sidecar), true (the mesh's proxy) or a table",
    );
    bad(
        &base.replace("workers = 4 }", "workers = 4 }\npool = \"nope\""),
        "unknown pool policy \"nope\"",
    );
}

/// `scenarios/mesh-cost.toml`: what its header promises, by direction and band.
#[test]
fn mesh_cost_scenario_buys_no_failures_for_its_price() {
    let f = "scenarios/mesh-cost.toml";
    let run = |sets: &[&str]| common::run_file(f, sets).0;
    let on = run(&[]);
    assert_eq!(
        on.workloads[0].counts.failed(),
        0,
        "ejection and retries hide catalog/2"
    );
    let c = edge_named(&on).connections.clone().unwrap();
    assert!(
        c.stats.opened <= 4 * 6 + 4,
        "keep-alive: about one per pod and host"
    );
    let off = run(&["mesh.enabled=false"]);
    let failed = off.workloads[0].counts.failed() as f64 / off.workloads[0].counts.requests as f64;
    assert!((0.13..0.17).contains(&failed), "{failed}");
    // Without the fault: the mesh's latency is the two proxies and the check (0.65 ms).
    let calm_on = run(&["fault[0].at=2m"]);
    let calm_off = run(&["fault[0].at=2m", "mesh.enabled=false"]);
    let added = calm_on.workloads[0].latency.p50 - calm_off.workloads[0].latency.p50;
    assert!((0.5..0.8).contains(&added), "{added} ms");
    // Without keep-alive every call pays two round trips and the handshake (~3.6 ms).
    let each = run(&["mesh.pool=no-keepalive"]);
    let more = each.workloads[0].latency.p50 - on.workloads[0].latency.p50;
    assert!((3.0..4.5).contains(&more), "{more} ms");
}

fn edge_named(r: &RunResult) -> &faultline::model::EdgeResult {
    &r.edges[0]
}

#[test]
fn validate_counts_the_sidecars_in_latency_without_queueing() {
    let text = system(10.0, "");
    let on = faultline::scenario::parse("m.toml", &text, &[]).unwrap();
    let off =
        faultline::scenario::parse("m.toml", &text, &["mesh.enabled=false".to_string()]).unwrap();
    let mean = |s: &faultline::scenario::Scenario| {
        let report = faultline::scenario::analysis::report(&s.spec, None);
        let line = report
            .lines()
            .find(|l| l.contains("latency without queueing"))
            .expect("a latency line")
            .to_string();
        line
    };
    // web's call to catalog: 2 x 1 ms network + 10 ms work, and 2 x 0.5 ms of proxies.
    assert!(mean(&off).contains("mean >= 12ms"), "{}", mean(&off));
    assert!(mean(&on).contains("mean >= 13ms"), "{}", mean(&on));
}

#[test]
fn a_restarted_instance_loses_its_connections_and_callers_reconnect() {
    // No mesh: a plain HTTP/2 pool on the call. catalog/0 crashes at 5 s and restarts at
    // 10 s; each web pod's connection to it dies (churn) and a new one is made.
    let extra = r#"
[policy.pool.h2]
protocol = "http2"

[[fault]]
kind = "crash"
target = "catalog"
instance = 0
at = "5s"
for = "5s"
"#;
    let text =
        system(100.0, extra).replace("timeout = \"1s\" }", "timeout = \"1s\", pool = \"h2\" }");
    let (r, _) = run_text("m.toml", &text, &["mesh.enabled=false"]);
    let c = edge(&r).connections.clone().expect("pooled without a mesh");
    assert!(!c.mtls);
    // 2 pods x 2 hosts at first, then each pod's connection to catalog/0 again.
    assert_eq!(c.stats.closed_churn, 2, "{c:?}");
    assert_eq!(c.stats.opened, 6, "{c:?}");
    // Over HTTP/1.1 a failed request would reset its connection: but while catalog/0 is
    // down no connection to it is made at all (the connect is refused), so none is reset.
    let h1 = text.replace("protocol = \"http2\"", "protocol = \"http1\"");
    let (r, _) = run_text("m.toml", &h1, &["mesh.enabled=false"]);
    let c = edge(&r).connections.clone().unwrap();
    assert_eq!(c.stats.closed_reset, 0, "{c:?}");
    assert!(r.workloads[0].counts.errors > 200, "its calls still fail");
    // No crash: the four first connections carry everything.
    let calm = text.replace("at = \"5s\"", "at = \"50s\"");
    let (r, _) = run_text("m.toml", &calm, &["mesh.enabled=false"]);
    let c = edge(&r).connections.clone().unwrap();
    assert_eq!((c.stats.opened, c.stats.closed_churn), (4, 0));
}

#[test]
fn a_pool_with_state_service_is_shared_by_the_calling_pods() {
    // HTTP/2: one connection per (pool, host). Each of web's 2 pods keeps its own pool by
    // default (4 connections to 2 hosts); `state = "service"` shares one (2).
    let pool = |state: &str| {
        let extra = format!("[policy.pool.h2]\nprotocol = \"http2\"\n{state}\n");
        let text = system(100.0, &extra)
            .replace("timeout = \"1s\" }", "timeout = \"1s\", pool = \"h2\" }");
        let (r, _) = run_text("m.toml", &text, &["mesh.enabled=false"]);
        edge(&r).connections.clone().unwrap().stats.opened
    };
    assert_eq!(pool(""), 4);
    assert_eq!(pool("state = \"service\""), 2);
}
