//! Optimistic concurrency (`occ` services) and burst arrivals through the whole model: N
//! clients racing for one row, and Brooker's back-off comparison.

mod common;

use common::{run_file, run_text};
use faultline::scenario;

/// A burst of `size` requests sharing a key, to an `occ` row with constant work, no retry.
fn race(size: u32, every: &str, extra: &str) -> String {
    format!(
        r#"
[sim]
name = "race"
duration = "10s"
[network]
latency = {{ dist = "constant", value = "1ms" }}
[[service]]
name = "client"
workers = 1000
calls = [{{ to = "row", timeout = "5s" }}]
[[service]]
name = "row"
occ = true
workers = 1000
work = {{ dist = "constant", value = "10ms" }}
[[workload]]
name = "w"
target = "client"
arrivals = {{ kind = "burst", size = {size}, {every} same_key = true }}
{extra}
"#
    )
}

/// All N read version 0 at the same instant; the first commit wins and the other N - 1
/// conflict. The row's version is forgotten once nobody holds a read, so later bursts
/// (fresh keys) race again from scratch.
#[test]
fn simultaneous_writers_one_commit_the_rest_conflict() {
    let (r, _) = run_text(
        "race.toml",
        &race(10, "every = \"1s\", count = 3,", ""),
        &[],
    );
    let w = &r.workloads[0].counts;
    assert_eq!(w.requests, 30, "three bursts of ten");
    assert_eq!(w.ok, 3, "one winner per burst");
    assert_eq!(r.services[1].conflicts, Some(27));
    assert_eq!(
        r.services[0].conflicts, None,
        "client is not an occ service"
    );
}

/// Writers that do not overlap never conflict: a burst of one every 100 ms against 10 ms of work.
#[test]
fn writers_that_do_not_overlap_never_conflict() {
    let (r, _) = run_text("race.toml", &race(1, "every = \"100ms\",", ""), &[]);
    let w = &r.workloads[0].counts;
    assert!(w.requests >= 99, "{}", w.requests);
    assert_eq!(w.ok, w.requests - r.workloads[0].pending_at_end);
    assert_eq!(r.services[1].conflicts, Some(0));
}

/// Without `same_key` the burst's requests carry the workload's keys (none: all key 0), so
/// they race too; with keys = 1000 they rarely collide.
#[test]
fn bursts_without_same_key_use_the_workload_keys() {
    let text = race(10, "", "").replace("same_key = true", "same_key = false");
    let (r, _) = run_text("race.toml", &text, &[]);
    assert_eq!(r.services[1].conflicts, Some(9));
    let text = text.replace("target = \"client\"", "target = \"client\"\nkeys = 1000000");
    let (r, _) = run_text("race.toml", &text, &[]);
    assert_eq!(r.services[1].conflicts, Some(0));
}

/// Retrying until success: every client commits exactly once, so the row's ok count equals
/// the clients and its conflicts equal the extra attempts.
#[test]
fn retries_until_success_commit_each_client_once() {
    let extra = "[policy.retry.forever]\nmax_attempts = 1000\nretry_on = [\"error\"]\nbackoff = { kind = \"exponential\", base = \"5ms\", cap = \"1s\", jitter = \"full\" }";
    let text = race(20, "", extra).replace(
        "timeout = \"5s\" }",
        "timeout = \"5s\", retry = \"forever\" }",
    );
    let (r, _) = run_text("race.toml", &text, &[]);
    let row = &r.services[1];
    assert_eq!(r.workloads[0].counts.ok, 20);
    assert_eq!(row.counts.ok, 20, "one commit per client");
    assert_eq!(row.counts.requests, 20 + row.conflicts.unwrap());
    assert_eq!(r.edges[0].stats.attempts, row.counts.requests);
}

#[test]
fn burst_arrivals_are_checked() {
    let bad = |arrivals: &str| {
        let text = race(10, "", "").replace(
            "arrivals = { kind = \"burst\", size = 10,  same_key = true }",
            arrivals,
        );
        scenario::parse("race.toml", &text, &[])
            .unwrap_err()
            .to_string()
    };
    let e = bad("arrivals = { kind = \"burst\", size = 0 }");
    assert!(e.contains("size"), "{e}");
    let e = bad("arrivals = { kind = \"burst\", size = 5, count = 3 }");
    assert!(e.contains("`count` needs `every`"), "{e}");
    let e = bad("arrivals = { kind = \"burst\", size = 5, rate = 3 }");
    assert!(e.contains("not used by kind = \"burst\""), "{e}");
}

/// Brooker's comparison, 40 trials per lane instead of the validation suite's 200: at
/// N = 100 full jitter needs less than half the writes of plain exponential back-off, and
/// full ~ equal < decorrelated < none. (Per-trial sd is 0.07 to 0.56 writes per client, so
/// over 40 trials the lanes' means are within 0.09 of their expectations: 7.96, 8.12,
/// 10.04 and 18.6, far apart compared with that.)
#[test]
fn full_jitter_halves_the_work_of_plain_backoff() {
    let f = "scenarios/validation/backoff-jitter.toml";
    let mut sets = vec!["sim.duration=\"200s\"".to_string()];
    for k in ["none", "equal", "full", "decorrelated"] {
        for n in [10, 50, 100] {
            sets.push(format!("workload.{k}-{n}.arrivals.count=40"));
        }
    }
    let sets: Vec<&str> = sets.iter().map(|s| s.as_str()).collect();
    let (r, _) = run_file(f, &sets);
    let amp = |name: &str| {
        let e = r.edges.iter().find(|e| e.from == name).unwrap();
        assert_eq!(
            e.stats.calls,
            40 * name[name.rfind('-').unwrap() + 1..].parse::<u64>().unwrap()
        );
        e.stats.attempts as f64 / e.stats.calls as f64
    };
    let (none, equal, full, decorr) = (
        amp("none-100"),
        amp("equal-100"),
        amp("full-100"),
        amp("decorrelated-100"),
    );
    assert!(full < 0.5 * none, "full {full} vs none {none}");
    assert!((full - equal).abs() < 0.4, "full {full} ~ equal {equal}");
    assert!(
        equal < decorr && decorr < none,
        "{equal} < {decorr} < {none}"
    );
    assert!((full - 7.96).abs() < 0.2, "full {full}");
    assert!(r.workloads.iter().all(|w| w.pending_at_end == 0));
}
