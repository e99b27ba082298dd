//! Event sourcing and CQRS (`[[event_store]]`, `[[projection]]`, `append` and `reads`)
//! through the whole model: in-order applies one at a time, stale reads, replays, limits.

use faultline::api::{run, Scenario, Summary};

/// `orders.place` appends for the request's key, then reads it back from `view` (POST, then
/// GET). Every delay is constant: the network 1 ms, the store's handler 1 ms, a read 1 ms,
/// an apply `apply`. `extra` is appended (more projections, workloads).
fn text(apply: &str, rate: f64, extra: &str) -> String {
    format!(
        r#"
[sim]
name = "es"
duration = "20s"
warmup = "0s"
seed = 5

[network]
latency = {{ dist = "constant", value = "1ms" }}

[[service]]
name = "orders"
workers = 64
calls = [
  {{ append = "log", timeout = "1s" }},
  {{ to = "view", endpoint = "get", reads = "view", timeout = "1s" }},
]

[[service]]
name = "store"
workers = 64
work = {{ dist = "constant", value = "1ms" }}

[[service]]
name = "view"
workers = 64

[[service.endpoint]]
name = "get"
work = {{ dist = "constant", value = "1ms" }}

[[service.endpoint]]
name = "apply"
weight = 0
work = {{ dist = "constant", value = "{apply}" }}

[[event_store]]
name = "log"
service = "store"

[[projection]]
name = "view"
store = "log"
service = "view"
endpoint = "apply"

[[workload]]
name = "w"
target = "orders"
keys = 1000000000
arrivals = {{ kind = "poisson", rate = {rate} }}
{extra}
"#
    )
}

fn scenario(apply: &str, rate: f64, extra: &str) -> Scenario {
    Scenario::from_toml_str("es", &text(apply, rate, extra)).unwrap_or_else(|e| panic!("{e}"))
}

fn get(s: &Summary, path: &str) -> f64 {
    s.get(path).unwrap_or_else(|| panic!("{path} missing"))
}

/// A projection applies one event at a time: with 10 ms of work and the 1 ms hop per event,
/// it applies 1 / 11 ms = 90.9 events/s whatever the rate of appends (200/s here), in order
/// and none skipped. Parallel applies, or a position that skipped, would break the count.
#[test]
fn a_projection_applies_one_event_at_a_time_in_order() {
    let s = run(&scenario("10ms", 200.0, ""), 5);
    let appended = get(&s, "event_stores.log.appended");
    assert!((3800.0..4200.0).contains(&appended), "{appended}");
    let applied = get(&s, "projections.view.applied");
    // 20 s / 11 ms = 1818 (the first event arrives a few ms in).
    assert!((1800.0..=1818.0).contains(&applied), "{applied}");
    assert_eq!(get(&s, "projections.view.position"), applied);
    assert_eq!(
        get(&s, "projections.view.behind_at_end"),
        appended - applied
    );
    // Nearly every read finds the model behind. Staleness is per key: the oldest event of
    // the read's key that the model misses is the one this request just appended (keys are
    // unique here), committed 3 ms before the answer, however far behind the model is.
    assert!(get(&s, "projections.view.stale_share") > 0.9);
    let max = get(&s, "projections.view.staleness_ms.max");
    assert!((2.9..3.1).contains(&max), "{max}");
}

/// POST, then GET: the read is sent 1 ms after the commit (the store's answer travels back)
/// and answered 2 ms later; an apply that takes 100 µs is done by then (the projector
/// receives the event 1 ms after the commit), one that takes 3 ms is not. So the client
/// misses its own write nearly always with the slow apply, and almost never with the fast.
#[test]
fn reading_your_own_write_is_stale_while_the_apply_runs() {
    let slow = run(&scenario("3ms", 50.0, ""), 5);
    let fast = run(&scenario("100us", 50.0, ""), 5);
    let share = |s: &Summary| get(s, "projections.view.stale_share");
    assert!(share(&slow) > 0.9, "{}", share(&slow));
    assert!(share(&fast) < 0.01, "{}", share(&fast));
    // The slow apply's stale reads missed an event committed about 3 ms before the answer.
    let p50 = get(&slow, "projections.view.staleness_ms.p50");
    assert!((2.5..3.5).contains(&p50), "{p50}");
    // Both keep up: 50/s is far below either's rate.
    for s in [&slow, &fast] {
        assert!(get(s, "projections.view.max_behind") < 10.0);
    }
}

/// A consumer that joins later replays from offset 0 (every event) or takes only the new
/// ones ("end"), and says when it caught up.
#[test]
fn a_new_consumer_replays_from_an_offset() {
    let extra = r#"
[[service]]
name = "late"
workers = 4
work = { dist = "constant", value = "200us" }

[[projection]]
name = "replay"
store = "log"
service = "late"
start = "10s"
from = 0

[[projection]]
name = "tail"
store = "log"
service = "late"
start = "10s"
from = "end"
"#;
    let s = run(&scenario("100us", 100.0, extra), 5);
    let appended = get(&s, "event_stores.log.appended");
    let replay = get(&s, "projections.replay.applied");
    let tail = get(&s, "projections.tail.applied");
    assert!(replay >= appended - 2.0, "{replay} of {appended}");
    // About half the events came after 10 s.
    assert!(
        (0.4 * appended..0.6 * appended).contains(&tail),
        "{tail} of {appended}"
    );
    assert_eq!(get(&s, "projections.replay.started_at_s"), 10.0);
    // ~1,000 events at 1.2 ms each, while ~100/s keep coming: caught up about 1.4 s in.
    let caught = get(&s, "projections.replay.caught_up_at_s");
    assert!((11.0..12.5).contains(&caught), "{caught}");
}

/// A failing apply is tried again (after retry_delay), and a poison event stops the
/// projection where it is, as it stops a real one; a full log refuses appends.
#[test]
fn failures_stop_the_projection_and_a_full_log_refuses() {
    let mut text = text("100us", 50.0, "");
    text = text.replace(
        "name = \"view\"\nworkers = 64",
        "name = \"view\"\nworkers = 64\nerror_rate = 1.0",
    );
    text = text.replace(
        "name = \"log\"\nservice = \"store\"",
        "name = \"log\"\nservice = \"store\"\nmax_events = 100",
    );
    let scn = Scenario::from_toml_str("es", &text).unwrap_or_else(|e| panic!("{e}"));
    let s = run(&scn, 5);
    assert_eq!(get(&s, "projections.view.applied"), 0.0);
    assert_eq!(get(&s, "projections.view.position"), 0.0);
    // One try a second (retry_delay 1 s) for 20 s, after the first event.
    let failures = get(&s, "projections.view.failures");
    assert!((18.0..=21.0).contains(&failures), "{failures}");
    assert_eq!(get(&s, "event_stores.log.events_at_end"), 100.0);
    let refused = get(&s, "event_stores.log.refused_full");
    assert!(refused > 800.0, "{refused}");
    // A refused append fails the request that made it (and the view fails the reads of the
    // 100 that were stored).
    assert_eq!(get(&s, "workloads.w.failed"), refused + 100.0);
}

/// Bad definitions are reported with where they are and what would be valid.
#[test]
fn bad_definitions_are_reported() {
    let bad = |from: &str, to: &str| {
        let text = text("1ms", 10.0, "").replace(from, to);
        match Scenario::from_toml_str("es", &text) {
            Ok(_) => panic!("accepted {to:?}"),
            Err(e) => e.to_string(),
        }
    };
    let e = bad("append = \"log\"", "append = \"logg\"");
    assert!(e.contains("unknown event store \"logg\""), "{e}");
    assert!(e.contains("did you mean \"log\""), "{e}");
    let e = bad(
        "endpoint = \"apply\"\n",
        "endpoint = \"apply\"\nfrom = -3\n",
    );
    assert!(e.contains("from is an offset"), "{e}");
    let e = bad(
        "{ to = \"view\", endpoint = \"get\", reads = \"view\"",
        "{ to = \"store\", reads = \"view\"",
    );
    assert!(e.contains("read model is kept by \"view\""), "{e}");
}
