//! Caches in front of calls: single flight against a cold-start stampede,
//! stale-while-revalidate, invalidation and the stale reads it leaves, the hit latency, and
//! the validation suite's bounds against Che's approximation computed here.

use faultline::api::{run, Scenario, Summary};

/// A front service whose call to `store` goes through cache `c` (settings `cache`), fed by
/// `reads` at `rate`/s over `keys` keys; `extra` adds to the TOML.
fn scenario(cache: &str, rate: u32, keys: u32, store_work: &str, extra: &str) -> Scenario {
    let text = format!(
        r#"
[sim]
name = "cache-test"
duration = "20s"
seed = 3

[network]
latency = {{ dist = "constant", value = "1ms" }}

[policy.cache.c]
{cache}

[[service]]
name = "front"
workers = 10000
work = {{ dist = "constant", value = "1us" }}
calls = [{{ to = "store", cache = "c" }}]

[[service]]
name = "store"
workers = 10000
work = {{ dist = "constant", value = "{store_work}" }}

[[workload]]
name = "reads"
target = "front"
keys = {keys}
arrivals = {{ kind = "poisson", rate = {rate} }}
{extra}
"#
    );
    Scenario::from_toml_str("cache-test", &text).unwrap()
}

fn get(s: &Summary, path: &str) -> f64 {
    s.get(path).unwrap_or_else(|| panic!("{path} missing"))
}

/// A cold cache under 2000 requests/s over 50 keys, with a 50 ms fetch: without single
/// flight every request in a key's first 51 ms misses and fetches (a stampede on the
/// store); with it, each key is fetched once and the others wait for that fetch.
#[test]
fn single_flight_turns_a_cold_start_stampede_into_one_fetch_per_key() {
    let naive = run(&scenario("ttl = \"1h\"", 2000, 50, "50ms", ""), 3);
    let once = run(
        &scenario("ttl = \"1h\"\ncoalesce = true", 2000, 50, "50ms", ""),
        3,
    );
    let store_calls = |s: &Summary| get(s, "edges.front->store.calls");
    assert_eq!(get(&once, "caches.c.misses"), 50.0);
    assert_eq!(store_calls(&once), 50.0, "one fetch per key");
    assert!(get(&once, "caches.c.coalesced") > 50.0);
    // About 2000/s × 52 ms ≈ 100 requests arrive while the first fetches run, and more
    // keep missing until each key's first answer lands.
    assert!(store_calls(&naive) > 100.0, "{}", store_calls(&naive));
    assert_eq!(get(&naive, "caches.c.coalesced"), 0.0);
    assert_eq!(get(&naive, "caches.c.misses"), store_calls(&naive));
    // Waiting for another's fetch is as slow as fetching: the tails agree.
    assert_eq!(
        get(&naive, "workloads.reads.latency_ms.max").round(),
        get(&once, "workloads.reads.latency_ms.max").round()
    );
}

/// With a stale window, an expired entry keeps answering while one refresh runs: after
/// the cold start there are no misses, and each key is refreshed about once per TTL.
#[test]
fn stale_while_revalidate_refreshes_in_the_background() {
    let s = run(
        &scenario(
            "ttl = \"1s\"\nstale_while_revalidate = \"10s\"\ncoalesce = true",
            1000,
            20,
            "5ms",
            "",
        ),
        3,
    );
    assert_eq!(
        get(&s, "caches.c.misses"),
        20.0,
        "only the cold start misses"
    );
    let refreshes = get(&s, "caches.c.refreshes");
    // 20 keys over 20 s, a refresh about every 1 s + 7 ms per key.
    assert!(
        (18.0 * 20.0..=20.0 * 20.0).contains(&refreshes),
        "{refreshes}"
    );
    assert_eq!(
        get(&s, "edges.front->store.calls"),
        20.0 + refreshes,
        "the store sees the misses and the refreshes"
    );
    assert!(get(&s, "caches.c.stale_hits") > 0.0);
    // Nobody waits for a refresh: every request but the cold start's answers at hit speed.
    assert!(get(&s, "workloads.reads.latency_ms.p99") < 1.0);
}

/// Reads and updates of the same keys. A shared cache invalidated on update serves few
/// stale reads (only a fetch that started before an update and filled after it); a cache
/// in each of three front instances is invalidated only where the update ran, so the other
/// two keep serving the old data; with no invalidation, stale reads last a whole TTL.
#[test]
fn invalidation_and_the_stale_reads_it_leaves() {
    let with = |cache: &str| {
        let text = format!(
            r#"
[sim]
name = "cache-updates"
duration = "30s"
seed = 5

[network]
latency = {{ dist = "constant", value = "1ms" }}

[policy.cache.c]
ttl = "10s"
{cache}

[[service]]
name = "front"
replicas = 3
workers = 1000

[[service.endpoint]]
name = "read"
weight = 0.9
work = {{ dist = "constant", value = "1us" }}
calls = [{{ to = "store", cache = "c" }}]

[[service.endpoint]]
name = "write"
weight = 0.1
work = {{ dist = "constant", value = "1us" }}
calls = [{{ to = "store", updates = "c" }}]

[[service]]
name = "store"
workers = 1000
work = {{ dist = "exp", mean = "2ms" }}

[[workload]]
name = "traffic"
target = "front"
keys = 50
arrivals = {{ kind = "poisson", rate = 500 }}
"#
        );
        run(&Scenario::from_toml_str("cache-updates", &text).unwrap(), 5)
    };
    let shared = with("");
    let local = with("scope = \"instance\"");
    let never = with("invalidate_on_update = false");
    let stale = |s: &Summary| get(s, "caches.c.stale_reads") / get(s, "caches.c.hits");
    assert!(get(&shared, "caches.c.invalidations") > 100.0);
    assert_eq!(get(&never, "caches.c.invalidations"), 0.0);
    assert!(stale(&shared) < 0.01, "{}", stale(&shared));
    // 2/3 of a key's cached copies miss each update: far more stale reads than shared.
    assert!(
        stale(&local) > 5.0 * stale(&shared).max(0.001),
        "{}",
        stale(&local)
    );
    assert!(
        stale(&never) > stale(&local),
        "{} {}",
        stale(&never),
        stale(&local)
    );
}

/// A hit answers after the cache's hit latency: the callee is never asked.
#[test]
fn a_hit_takes_the_hit_latency() {
    let s = run(
        &scenario(
            "ttl = \"1h\"\nhit_latency = \"3ms\"\ncoalesce = true",
            100,
            1,
            "20ms",
            "",
        ),
        3,
    );
    assert_eq!(get(&s, "edges.front->store.calls"), 1.0);
    let p50 = get(&s, "workloads.reads.latency_ms.p50");
    assert!((3.0..3.01).contains(&p50), "{p50}");
}

/// Che's approximation for LRU under Zipf popularity, computed here: the validation
/// scenario's bounds are centred on it.
#[test]
fn the_validation_bounds_hold_che_s_approximation() {
    fn che(n: usize, s: f64, c: f64) -> f64 {
        let w: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
        let z: f64 = w.iter().sum();
        let p: Vec<f64> = w.iter().map(|x| x / z).collect();
        let occupancy = |t: f64| p.iter().map(|pi| 1.0 - (-pi * t).exp()).sum::<f64>();
        let (mut lo, mut hi) = (0.0, 1e9);
        for _ in 0..200 {
            let mid = (lo + hi) / 2.0;
            if occupancy(mid) < c {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        p.iter().map(|pi| pi * (1.0 - (-pi * lo).exp())).sum()
    }
    let text = std::fs::read_to_string("scenarios/validation/cache-hit-ratio.toml").unwrap();
    let doc: toml::Value = toml::from_str(&text).unwrap();
    let bounds = |metric: &str| -> (f64, f64) {
        let e = doc["expect"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["metric"].as_str() == Some(metric))
            .unwrap();
        let b = e["between"].as_array().unwrap();
        (b[0].as_float().unwrap(), b[1].as_float().unwrap())
    };
    for (metric, s) in [
        ("caches.lru-s08.hit_ratio", 0.8),
        ("caches.lru-s10.hit_ratio", 1.0),
    ] {
        let (lo, hi) = bounds(metric);
        let h = che(1000, s, 100.0);
        assert!(
            ((lo + hi) / 2.0 - h).abs() < 1e-4,
            "{metric}: Che {h}, bounds {lo}..{hi}"
        );
    }
    for (metric, lt) in [
        ("caches.ttl-250ms.hit_ratio", 0.5),
        ("caches.ttl-1s.hit_ratio", 2.0),
        ("caches.ttl-4s.hit_ratio", 8.0),
    ] {
        let (lo, hi) = bounds(metric);
        let h = lt / (1.0 + lt);
        assert!(
            ((lo + hi) / 2.0 - h).abs() < 1e-4,
            "{metric}: {h}, bounds {lo}..{hi}"
        );
    }
}

/// A sweep over a cache's TTL reports its hit ratio per point, and a longer TTL hits more.
#[test]
fn a_sweep_over_the_ttl_reports_the_hit_ratio() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-cache-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    std::fs::write(&file, &scenario("ttl = \"1s\"", 200, 100, "1ms", "").text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args([
            "sweep",
            file.to_str().unwrap(),
            "--param",
            "policy.cache.c.ttl=250ms,4s",
        ])
        .args(["--out", dir.join("s").to_str().unwrap(), "--jobs", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(dir.join("s/sweep.csv")).unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = head
        .iter()
        .position(|h| *h == "caches.c.hit_ratio")
        .expect("a column");
    let ratios: Vec<f64> = lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect();
    // λ = 2/s a key: λT/(1+λT) = 1/3 at 250 ms, 8/9 at 4 s.
    assert!(ratios[0] < 0.4 && ratios[1] > 0.8, "{ratios:?}");
    std::fs::remove_dir_all(dir).ok();
}
