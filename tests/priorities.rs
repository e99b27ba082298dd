//! Criticality (the SRE book's "Handling Overload"): levels set by workloads and calls and
//! carried downstream, a priority queue that serves critical work first and pushes out the
//! least critical when full, and per-level shedding thresholds.

use faultline::api::{run, Scenario, Summary};

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml_str("priorities-test", text).unwrap_or_else(|e| panic!("{e}"))
}

fn get(s: &Summary, path: &str) -> f64 {
    s.get(path).unwrap_or_else(|| panic!("{path} missing"))
}

/// One worker, work 10 ms (100/s), a queue of 20 (`queue`: more of its fields), and two
/// streams: sheddable `bulk` at 150/s, enough alone to keep the queue full, and critical
/// `vip` at 20/s.
fn two_streams(queue: &str, seed: u64) -> Scenario {
    scenario(&format!(
        r#"
[sim]
name = "t"
duration = "30s"
seed = {seed}

[[service]]
name = "s"
workers = 1
queue = {{ capacity = 20{queue} }}
work = {{ dist = "constant", value = "10ms" }}

[[workload]]
name = "bulk"
target = "s"
criticality = "sheddable"
arrivals = {{ kind = "poisson", rate = 150 }}

[[workload]]
name = "vip"
target = "s"
arrivals = {{ kind = "poisson", rate = 20 }}
"#
    ))
}

/// `front` calls `back` twice: once inheriting the request's level, once as `critical_plus`.
/// A sheddable workload's requests reach `back` sheddable (the front never says so), and
/// the overriding call's as critical_plus, one for one.
#[test]
fn criticality_travels_down_calls_unless_a_call_sets_its_own() {
    let s = run(
        &scenario(
            r#"
[sim]
name = "t"
duration = "10s"
seed = 3

[[service]]
name = "front"
workers = 100
calls = [{ to = "back" }, { to = "back", criticality = "critical_plus" }]

[[service]]
name = "back"
workers = 100
work = { dist = "constant", value = "1ms" }

[[workload]]
name = "bots"
target = "front"
criticality = "sheddable"
arrivals = { kind = "poisson", rate = 100 }

[[workload]]
name = "people"
target = "front"
arrivals = { kind = "poisson", rate = 50 }
"#,
        ),
        3,
    );
    let front = |l: &str| get(&s, &format!("services.front.criticality.{l}.requests"));
    let back = |l: &str| get(&s, &format!("services.back.criticality.{l}.requests"));
    let (bots, people) = (
        get(&s, "workloads.bots.sent"),
        get(&s, "workloads.people.sent"),
    );
    assert!(bots > 500.0 && people > 250.0, "{bots} {people}");
    assert_eq!(front("sheddable"), bots);
    assert_eq!(front("critical"), people, "the default level is critical");
    assert_eq!(back("sheddable"), bots, "inherited from the bots' requests");
    assert_eq!(back("critical"), people);
    assert_eq!(back("critical_plus"), bots + people, "the call's own level");
    assert_eq!(front("critical_plus") + back("sheddable_plus"), 0.0);
}

/// Sheddable traffic alone keeps the queue full. The critical stream finds room by pushing
/// out the newest sheddable request: no critical request is refused, and every push-out is
/// a shed sheddable one. Under FIFO the same critical stream is refused about as often as
/// the sheddable one.
#[test]
fn a_full_priority_queue_makes_room_for_critical_work() {
    let p = run(&two_streams(", discipline = \"priority\"", 4), 4);
    assert_eq!(get(&p, "workloads.vip.rejected"), 0.0);
    assert_eq!(get(&p, "services.s.criticality.critical.rejected"), 0.0);
    let shed = get(&p, "services.s.dropped.shed");
    assert!(shed > 100.0, "{shed}");
    // Every push-out was a sheddable request: its rejections are the full-queue refusals
    // plus the push-outs.
    assert!(get(&p, "services.s.criticality.sheddable.rejected") >= shed);
    // The critical stream waits behind at most the critical work ahead of it: its p99 is
    // far below a full queue's 200 ms.
    let vip_p99 = get(&p, "workloads.vip.latency_ms.p99");
    assert!(vip_p99 < 60.0, "{vip_p99}");
    let f = run(&two_streams("", 4), 4);
    let refused = get(&f, "workloads.vip.rejected") / get(&f, "workloads.vip.sent");
    assert!(
        refused > 0.2,
        "FIFO refuses critical work as often as any: {refused}"
    );
    assert_eq!(get(&f, "services.s.dropped.shed"), 0.0);
    assert!(get(&f, "workloads.vip.latency_ms.p50") > 150.0);
}

/// Shedding thresholds under FIFO: sheddable work is refused once half the queue waits, so
/// the queue never holds more than 10 when only sheddable work arrives fast, and critical
/// work, admitted up to the full 20, is refused far less often.
#[test]
fn a_level_is_refused_at_its_share_of_the_queue() {
    let with = run(&two_streams(", shed = { sheddable = 0.5 }", 9), 9);
    let without = run(&two_streams("", 9), 9);
    let share = |s: &Summary, w: &str| {
        get(s, &format!("workloads.{w}.rejected")) / get(s, &format!("workloads.{w}.sent"))
    };
    // Without thresholds both levels meet the same full queue.
    assert!((share(&without, "vip") - share(&without, "bulk")).abs() < 0.1);
    // With them, the critical stream only meets a queue of 10 to 20 waiting, which the
    // sheddable stream can no longer fill: it is almost never refused.
    assert!(share(&with, "vip") < 0.02, "{}", share(&with, "vip"));
    assert!(share(&with, "bulk") > 0.3, "{}", share(&with, "bulk"));
    // The bulk's waits are bounded by its 10 places: at most 11 × 10 ms.
    assert!(get(&with, "workloads.bulk.latency_ms.max") <= 111.0);
    assert_eq!(
        get(&with, "services.s.dropped.shed"),
        0.0,
        "FIFO pushes nothing out"
    );
}
