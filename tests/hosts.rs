//! Hosts: instances placed on machines share their cores (processor sharing), a host outage
//! takes down what runs on it, a `cpu_hog` fault competes for its cores, and placement
//! spreads or packs.

use faultline::api::{run, Scenario, Summary};

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml_str("hosts-test", text).unwrap_or_else(|e| panic!("{e}"))
}

fn get(s: &Summary, path: &str) -> f64 {
    s.get(path).unwrap_or_else(|| panic!("{path} missing"))
}

/// `api` and `batch`, constant 10 ms of work each, on the hosts named by `api_on` and
/// `batch_on` (hosts `a` and `b`, 1 core each), with arrivals at the same instants.
fn neighbours(api_on: &str, batch_on: &str, extra: &str) -> Scenario {
    scenario(&format!(
        r#"
[sim]
name = "neighbours"
duration = "10s"
seed = 3

[[host]]
name = "a"
cores = 1

[[host]]
name = "b"
cores = 1

[[service]]
name = "api"
workers = 4
work = {{ dist = "constant", value = "10ms" }}
placement = {{ hosts = ["{api_on}"] }}

[[service]]
name = "batch"
workers = 4
work = {{ dist = "constant", value = "10ms" }}
placement = {{ hosts = ["{batch_on}"] }}

[[workload]]
name = "api"
target = "api"
arrivals = {{ kind = "constant", rate = 20 }}

[[workload]]
name = "batch"
target = "batch"
arrivals = {{ kind = "constant", rate = 20 }}
{extra}
"#
    ))
}

/// Apart, each request has its core to itself: exactly its 10 ms. Together on one core,
/// requests that arrive at the same instant share it: each takes 20 ms, and the host shows
/// twice the stretch.
#[test]
fn work_on_a_shared_core_waits_for_the_neighbours_work() {
    let apart = run(&neighbours("a", "b", ""), 3);
    let together = run(&neighbours("a", "a", ""), 3);
    assert!((get(&apart, "workloads.api.latency_ms.mean") - 10.0).abs() < 0.01);
    assert!((get(&together, "workloads.api.latency_ms.mean") - 20.0).abs() < 0.01);
    assert!((get(&together, "workloads.batch.latency_ms.mean") - 20.0).abs() < 0.01);
    assert!((get(&apart, "hosts.a.stretch") - 1.0).abs() < 1e-3);
    assert!((get(&together, "hosts.a.stretch") - 2.0).abs() < 1e-3);
    assert_eq!(get(&together, "hosts.b.bursts"), 0.0);
    // 40 bursts a second of 10 ms on one core: 40 % busy.
    assert!((get(&together, "hosts.a.utilization") - 0.4).abs() < 0.01);
}

/// A hog of 3 threads on a 2-core host leaves each thread half a core: a lone request's
/// 10 ms of work takes 20 ms while the hog runs, and 10 ms after it ends.
#[test]
fn a_cpu_hog_takes_its_share_of_the_cores() {
    let s = scenario(
        r#"
[sim]
name = "hog"
duration = "10s"
seed = 1

[[host]]
name = "n"
cores = 2

[[service]]
name = "api"
workers = 4
work = { dist = "constant", value = "10ms" }

[[workload]]
name = "api"
target = "api"
arrivals = { kind = "constant", rate = 10 }

[[fault]]
kind = "cpu_hog"
host = "n"
threads = 3
at = "0s"
for = "5s"
"#,
    );
    let r = run(&s, 1);
    assert!((get(&r, "workloads.api.latency_ms.max") - 20.0).abs() < 0.01);
    assert!((get(&r, "workloads.api.latency_ms.min") - 10.0).abs() < 0.01);
    // Half the run with 3 hog threads on 2 cores (both busy), half with only 10 % of one.
    let util = get(&r, "hosts.n.utilization");
    assert!((util - (0.5 + 0.5 * 0.05)).abs() < 0.01, "{util}");
}

/// A crashed instance's running work leaves the core at once: its neighbour's request, which
/// shared the core, runs alone from then on and ends sooner than it would have.
#[test]
fn a_crashed_instances_work_frees_its_share_of_the_core() {
    let fault = r#"
[[fault]]
kind = "crash"
target = "batch"
at = "5ms"
for = "10ms"
"#;
    let plain = run(&neighbours("a", "a", ""), 3);
    let crashed = run(&neighbours("a", "a", fault), 3);
    let first = |s: &Summary| get(s, "workloads.api.latency_ms.min");
    // The requests of t = 0 share the core: 20 ms each.
    assert!((first(&plain) - 20.0).abs() < 0.01);
    // With the crash at 5 ms, each has had 2.5 ms; the api request then runs alone for its
    // last 7.5 ms and ends at 12.5 ms (20 ms if the dead work kept its share).
    assert!((first(&crashed) - 12.5).abs() < 0.01, "{}", first(&crashed));
    assert_eq!(get(&crashed, "workloads.batch.failed"), 1.0);
}

/// A host outage takes down every instance on it and nothing else.
#[test]
fn a_host_outage_downs_every_instance_on_it_and_only_those() {
    let s = scenario(
        r#"
[sim]
name = "outage"
duration = "30s"
seed = 2

[[host]]
name = "node"
count = 2
cores = 4

[[service]]
name = "web"
replicas = 2
workers = 8
work = { dist = "exp", mean = "5ms" }

[[service]]
name = "db"
workers = 8
work = { dist = "exp", mean = "5ms" }
placement = { hosts = ["node-2"] }

[[workload]]
name = "web"
target = "web"
arrivals = { kind = "poisson", rate = 100 }

[[workload]]
name = "db"
target = "db"
arrivals = { kind = "poisson", rate = 100 }

[[fault]]
kind = "host_outage"
host = "node-1"
at = "10s"
for = "10s"
"#,
    );
    let r = run(&s, 2);
    let hosts = &r.json["hosts"];
    assert_eq!(hosts["node-1"]["instances"], serde_json::json!(["web/0"]));
    assert_eq!(
        hosts["node-2"]["instances"],
        serde_json::json!(["web/1", "db/0"])
    );
    assert_eq!(get(&r, "workloads.db.failed"), 0.0);
    // Half of web's instances are down for a third of the run: about a sixth of its
    // requests fail (round robin sends every other one to web/0), 500 of 3,000 on average.
    let failed = get(&r, "workloads.web.failed");
    assert!((350.0..650.0).contains(&failed), "{failed}");
}

/// Spread puts a service's instances on different hosts first; pack fills a host before the
/// next, as far as the requested cores fit.
#[test]
fn placement_spreads_or_packs() {
    let placed = |strategy: &str| {
        let s = scenario(&format!(
            r#"
[sim]
name = "placement"
duration = "1s"

[[host]]
name = "n"
count = 3
cores = 2

[[service]]
name = "s"
replicas = 4
placement = {{ strategy = "{strategy}", cpu = 1 }}

[[workload]]
name = "w"
target = "s"
arrivals = {{ kind = "poisson", rate = 1 }}
"#
        ));
        let r = run(&s, 1);
        ["n-1", "n-2", "n-3"].map(|h| r.json["hosts"][h]["instances"].as_array().unwrap().len())
    };
    assert_eq!(placed("spread"), [2, 1, 1]);
    assert_eq!(placed("pack"), [2, 2, 0]);
}

/// Hosts keep runs deterministic: the same seed gives the same summary.
#[test]
fn runs_on_hosts_repeat_exactly() {
    let s = Scenario::from_path("scenarios/noisy-neighbour.toml").unwrap();
    let a = run(&s, 9);
    let b = run(&s, 9);
    assert_eq!(a.json, b.json);
    assert!(get(&a, "hosts.node-1.stretch") > 1.0);
}

/// What `noisy-neighbour.toml`'s header promises: shared machines fail shoppers during the
/// reports' surge; kept apart, shoppers lose far fewer and the reports take far longer.
#[test]
fn the_noisy_neighbour_story_holds() {
    let shared = Scenario::from_path("scenarios/noisy-neighbour.toml").unwrap();
    let apart = shared
        .with(&[
            r#"service.checkout.placement.hosts=["node-1","node-2"]"#,
            r#"service.reports.placement.hosts=["node-3"]"#,
        ])
        .unwrap();
    let (a, b) = (run(&shared, 5), run(&apart, 5));
    let rate = |s: &Summary| get(s, "workloads.shoppers.error_rate");
    assert!(rate(&a) > 0.04, "{}", rate(&a));
    assert!(rate(&b) < rate(&a) / 5.0, "{} vs {}", rate(&b), rate(&a));
    let p50 = |s: &Summary| get(s, "workloads.nightly.latency_ms.p50");
    assert!(p50(&b) > 4.0 * p50(&a), "{} vs {}", p50(&b), p50(&a));
    assert_eq!(
        b.json["hosts"]["node-3"]["instances"],
        serde_json::json!(["reports/0", "reports/1", "reports/2"])
    );
}
