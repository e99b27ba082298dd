//! Stop-the-world pauses (`kind = "gc"` faults): each instance freezes for `pause`, at a fixed
//! period from a random phase or after exponential gaps, and what arrives meanwhile waits.

use faultline::api::{run, Scenario, Summary};

/// One instance, one worker, 1 ms of work, an arrival every 10 ms (no queue without pauses).
fn scenario(gc: &str) -> Scenario {
    let text = format!(
        r#"
[sim]
name = "gc-test"
duration = "60s"
seed = 6

[[service]]
name = "s"
workers = 1
work = {{ dist = "constant", value = "1ms" }}

[[workload]]
name = "w"
target = "s"
arrivals = {{ kind = "constant", rate = 100 }}

[[fault]]
kind = "gc"
target = "s"
at = "0s"
{gc}
"#
    );
    Scenario::from_toml_str("gc-test", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn get(s: &Summary, path: &str) -> f64 {
    s.get(path).unwrap_or_else(|| panic!("{path} missing"))
}

/// Pauses of 100 ms every second: a tenth of the arrivals land in a pause and wait for its
/// end, on average half of it, then for the ten that arrived with them to drain (1 ms each,
/// 4.5 ms on average). So the mean latency is about 1 + 0.1 × (50 + 4.5) = 6.45 ms (±1 ms
/// for where the arrivals fall in the pauses), no wait is longer than one pause plus the
/// 1 ms of work, and the median request never sees one.
#[test]
fn periodic_pauses_hold_what_arrives_during_them() {
    let s = run(
        &scenario("every = \"1s\"\npause = \"100ms\"\nperiodic = true"),
        6,
    );
    let (mean, p50, max) = (
        get(&s, "workloads.w.latency_ms.mean"),
        get(&s, "workloads.w.latency_ms.p50"),
        get(&s, "workloads.w.latency_ms.max"),
    );
    assert!((5.45..7.45).contains(&mean), "{mean}");
    assert!(p50 < 1.5, "{p50}");
    assert!((90.0..=101.0).contains(&max), "{max}");
    assert_eq!(get(&s, "workloads.w.failed"), 0.0);
}

/// Exponential gaps of mean 900 ms between 100 ms pauses: the same tenth of the time paused
/// on average, so about the same mean latency. But some gaps are shorter than the backlog
/// a pause leaves (a gap under 50 ms has probability 5.4 %, about three of the 60), so a
/// request can wait through two pauses: the longest wait exceeds the periodic one's.
#[test]
fn random_pauses_pause_as_often_on_average() {
    let periodic = run(
        &scenario("every = \"1s\"\npause = \"100ms\"\nperiodic = true"),
        6,
    );
    let random = run(&scenario("every = \"900ms\"\npause = \"100ms\""), 6);
    let mean = get(&random, "workloads.w.latency_ms.mean");
    // 60 pauses on average (sd about 8 for a Poisson count): the mean is 6 ms ± 40 %.
    assert!((3.5..8.5).contains(&mean), "{mean}");
    assert!(
        get(&random, "workloads.w.latency_ms.max")
            > get(&periodic, "workloads.w.latency_ms.max") + 20.0
    );
}
