//! Orchestrated sagas through the whole model (POLICIES.md §17): compensation order, stuck
//! and failed compensations, and the consistency of participants' effects.

mod common;

use common::run_file;
use faultline::metrics::StateEvent;
use faultline::model::sagas::SagaResult;

/// Every saga ends completed, compensated, failed or stuck, or is still running at the end:
/// none is lost half way; and every ended saga is judged.
fn ends_add_up(s: &SagaResult) {
    let ended = s.completed + s.compensated + s.failed + s.stuck;
    assert_eq!(ended + s.running_at_end + s.refused, s.started, "{s:?}");
    assert_eq!(s.consistent + s.inconsistent, ended, "{s:?}");
}

/// The saga log of one saga: (time, detail).
fn log_of(events: &[StateEvent], subject: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind() == "saga" && e.subject == subject)
        .map(|e| e.detail())
        .collect()
}

/// scenarios/saga-payment-failures.toml: declined cards roll back in reverse order; a charge
/// that times out at the orchestrator but goes through at payment is a leaked effect, gone
/// with a timeout longer than payment's slowest answer.
#[test]
fn payment_failures_compensate_and_timeouts_leak_charges() {
    let f = "scenarios/saga-payment-failures.toml";
    let (r, events) = run_file(f, &[]);
    let s = &r.sagas[0];
    ends_add_up(s);
    // 10 % declined (sd ~0.4 %), plus a fifth of the 30 s slow window's ~1 500 sagas.
    let share = s.compensated as f64 / s.started as f64;
    assert!((0.12..0.19).contains(&share), "{share}");
    let charge = &s.steps[2];
    assert!(charge.leaked > 200, "{charge:?}");
    assert_eq!(s.inconsistent, charge.leaked);
    assert_eq!((s.failed, s.stuck), (0, 0));
    // A declined saga's log: actions up to the charge, then release before cancel.
    let compensated = events
        .iter()
        .find(|e| e.kind() == "saga" && e.detail() == "ended compensated")
        .unwrap();
    assert_eq!(
        log_of(&events, &compensated.subject),
        vec![
            "create action",
            "reserve action",
            "charge action",
            "reserve compensation",
            "create compensation",
            "ended compensated"
        ]
    );
    let (long, _) = run_file(f, &["saga.order.steps[2].action.timeout=\"5s\""]);
    let s = &long.sagas[0];
    ends_add_up(s);
    assert_eq!((s.steps[2].leaked, s.inconsistent), (0, 0), "{s:?}");
}

/// scenarios/saga-stuck-compensation.toml: a compensation that keeps failing leaves the saga
/// stuck after its attempts (Temporal-style retries), failed at once without retries
/// (Eventuate), and compensated when the retries outlast the outage.
#[test]
fn failing_compensations_end_stuck_failed_or_late() {
    let f = "scenarios/saga-stuck-compensation.toml";
    let (r, events) = run_file(f, &[]);
    let s = &r.sagas[0];
    ends_add_up(s);
    // Declines (10 % of 50/s) during the ~45 s in which a release cannot succeed in time.
    assert!((150..350).contains(&s.stuck), "{s:?}");
    assert_eq!(s.steps[1].leaked, s.stuck);
    assert_eq!(
        s.steps[0].leaked, s.stuck,
        "the cancel after a stuck release never runs"
    );
    let stuck = events
        .iter()
        .find(|e| e.kind() == "saga" && e.detail() == "ended stuck")
        .unwrap();
    let log = log_of(&events, &stuck.subject);
    assert_eq!(
        &log[log.len() - 3..],
        &[
            "reserve compensation, attempt 4",
            "reserve compensation, attempt 5",
            "ended stuck"
        ]
    );
    let (patient, _) = run_file(f, &["saga.order.compensation_attempts=10"]);
    let s = &patient.sagas[0];
    ends_add_up(s);
    assert_eq!((s.stuck, s.failed, s.inconsistent), (0, 0, 0), "{s:?}");
    // Some participants disagreed for most of the outage.
    assert!(s.disagreement.max > 30_000.0, "{:?}", s.disagreement);
    let (eventuate, _) = run_file(f, &["saga.order.compensation_attempts=1"]);
    let s = &eventuate.sagas[0];
    ends_add_up(s);
    assert!(s.failed > 150 && s.stuck == 0, "{s:?}");
}

/// Over many seeds: sagas always end (or run at the end), and with timeouts longer than any
/// answer no effect leaks or doubles.
#[test]
fn sagas_end_and_stay_consistent_across_seeds() {
    for seed in 1..=6 {
        let s = format!("sim.seed={seed}");
        for f in [
            "scenarios/saga-payment-failures.toml",
            "scenarios/saga-stuck-compensation.toml",
        ] {
            let (r, _) = run_file(f, &[&s]);
            ends_add_up(&r.sagas[0]);
        }
        let (r, _) = run_file(
            "scenarios/saga-payment-failures.toml",
            &[&s, "saga.order.steps[2].action.timeout=\"5s\""],
        );
        let sg = &r.sagas[0];
        ends_add_up(sg);
        assert!(
            sg.steps
                .iter()
                .all(|e| e.applied_twice == 0 && e.leaked == 0),
            "{sg:?}"
        );
    }
}

/// scenarios/saga-choreography.toml against its orchestrated twin, same seed and faults: no
/// timeouts, so far fewer leaked charges, but redeliveries charge twice unless participants
/// are idempotent; a redelivered event's second reply never moves the saga twice.
#[test]
fn choreography_trades_timeouts_for_duplicates() {
    let (orch, _) = run_file("scenarios/saga-payment-failures.toml", &[]);
    let (chor, events) = run_file("scenarios/saga-choreography.toml", &[]);
    let (o, c) = (&orch.sagas[0], &chor.sagas[0]);
    ends_add_up(c);
    assert_eq!(o.started, c.started, "the same orders");
    assert!(c.steps[2].leaked * 5 < o.steps[2].leaked, "{c:?}");
    assert!(c.steps[2].applied_twice > 100, "{c:?}");
    assert_eq!(o.steps[2].applied_twice, 0);
    // Only the charge queue sees redeliveries (the slow participant); every saga that
    // charged twice had a double effect at the queue.
    let charge = chor
        .queues
        .iter()
        .find(|q| q.name == "order.charge")
        .unwrap();
    assert!(charge.stats.redelivered > 100);
    for q in chor.queues.iter().filter(|q| q.name != "order.charge") {
        assert_eq!(q.stats.redelivered, 0, "{}", q.name);
    }
    assert!(
        charge.counters.double_effects >= c.steps[2].applied_twice,
        "{c:?} {charge:?}"
    );
    // The log shows the same saga steps as the orchestrated one.
    let first: Vec<String> = events
        .iter()
        .filter(|e| e.kind() == "saga" && e.subject == "order#1")
        .map(|e| e.detail())
        .collect();
    assert_eq!(
        first,
        vec![
            "create action",
            "reserve action",
            "charge action",
            "ship action",
            "ended completed"
        ]
    );
    let (idem, _) = run_file(
        "scenarios/saga-choreography.toml",
        &["saga.order.idempotency_ttl=1h"],
    );
    let i = &idem.sagas[0];
    ends_add_up(i);
    assert!(i.steps.iter().all(|e| e.applied_twice == 0), "{i:?}");
}

/// A plain call with retries, a saga's action and its compensation on one caller → callee
/// pair: each call site keeps its own figures and the edge's are their sum, so the
/// retries of the plain call are not diluted by the saga's single-attempt calls.
#[test]
fn call_sites_sharing_a_pair_keep_their_own_figures() {
    let text = r#"
[sim]
name = "sites"
duration = "20s"
seed = 3

[policy.retry.twice]
max_attempts = 3
retry_on = ["error"]
backoff = { kind = "fixed", value = "1ms" }

[[service]]
name = "api"
workers = 64
calls = [{ to = "ledger", timeout = "1s", retry = "twice" }, { saga = "book" }]

[[service]]
name = "ledger"
workers = 64
error_rate = 0.3
work = { dist = "exp", mean = "1ms" }

[[saga]]
name = "book"
orchestrator = "api"
pivot = "post"
steps = [
  { name = "hold", action = { to = "ledger", timeout = "1s" }, compensation = { to = "ledger", timeout = "1s" } },
  { name = "post", action = { to = "ledger", timeout = "1s" } },
]

[[workload]]
name = "w"
target = "api"
arrivals = { kind = "poisson", rate = 50 }
"#;
    let (r, _) = common::run_text("sites.toml", text, &[]);
    let e = r.edges.iter().find(|e| e.to == "ledger").expect("the edge");
    let names: Vec<&str> = e.sites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "default step 1",
            "saga book: hold",
            "saga book: hold compensation",
            "saga book: post"
        ]
    );
    // The edge is the sum of its sites.
    for (what, of) in [
        (
            "calls",
            (|s: &faultline::model::EdgeStats| s.calls) as fn(&_) -> u64,
        ),
        ("attempts", |s| s.attempts),
        ("retries", |s| s.retries),
        ("ok", |s| s.ok),
        ("failed", |s| s.failed),
    ] {
        let sum: u64 = e.sites.iter().map(|s| of(&s.stats)).sum();
        assert_eq!(of(&e.stats), sum, "{what}");
    }
    let amp = |s: &faultline::model::EdgeStats| s.attempts as f64 / s.calls as f64;
    // The plain call: with p = 0.3 of an error and up to 3 attempts, 1 + 0.3 + 0.09 = 1.39
    // attempts per call (about 1,000 calls: sd of the mean about 0.02, so ±0.1).
    let plain = &e.sites[0].stats;
    assert!((amp(plain) - 1.39).abs() < 0.1, "{plain:?}");
    // The saga's calls have no retry policy: one attempt each, and the compensations are
    // as many as the sagas that failed at "post" after "hold" held.
    for s in &e.sites[1..] {
        assert_eq!(s.stats.attempts, s.stats.calls, "{}", s.name);
    }
    assert!(e.sites[2].stats.calls > 0, "some holds were compensated");
    assert!(amp(&e.stats) < amp(plain), "the edge mixes both");
}

/// A handler that waits for its saga (`{ saga = "order", wait = true }`) answers as the
/// articles' endpoint does: ok (201) when the saga completed, an error (500) when it was
/// compensated, and only after the saga's steps: its latency holds the saga's.
#[test]
fn a_waiting_handler_answers_with_its_sagas_outcome() {
    use faultline::api::{run, Scenario};
    let base = Scenario::from_path("scenarios/saga-payment-failures.toml")
        .unwrap()
        // Before the latency fault (60 s): payment's 10 % of declined cards only.
        .with(&["sim.duration=50s"])
        .unwrap();
    let waits = base.with(&["service.checkout.calls[0].wait=true"]).unwrap();
    let (a, b) = (run(&base, 21), run(&waits, 21));
    let get = |s: &faultline::api::Summary, p: &str| s.get(p).unwrap();
    // Asynchronous: the API answers before the saga ends, whatever becomes of it.
    assert_eq!(get(&a, "workloads.shoppers.failed"), 0.0);
    // Waiting: every saga that did not complete fails its request, and no other does (the
    // sagas still running at the end are requests still waiting).
    let not_completed = get(&b, "sagas.order.compensated")
        + get(&b, "sagas.order.failed")
        + get(&b, "sagas.order.stuck");
    assert!(not_completed > 100.0, "{not_completed}");
    assert_eq!(get(&b, "workloads.shoppers.failed"), not_completed);
    assert_eq!(
        get(&b, "workloads.shoppers.ok"),
        get(&b, "sagas.order.completed")
    );
    // Its latency is the handler's plus the saga's.
    let saga = get(&b, "sagas.order.duration_ms.mean");
    assert!(
        get(&b, "workloads.shoppers.latency_ms.mean")
            > get(&a, "workloads.shoppers.latency_ms.mean") + 0.9 * saga
    );
}

/// `compensate_failed = true` compensates the step that failed as well: a charge whose
/// answer timed out but which went through at payment is refunded instead of leaking.
#[test]
fn compensating_the_failed_step_refunds_charges_that_timed_out() {
    use faultline::api::{run, Scenario};
    let text = |flag: bool| {
        format!(
            r#"
[sim]
name = "refund"
duration = "60s"
seed = 4

[[service]]
name = "checkout"
replicas = 2
workers = 16
calls = [{{ saga = "order" }}]

[[service]]
name = "orders"
workers = 8
work = {{ dist = "exp", mean = "5ms" }}

[[service]]
name = "payment"
workers = 64
work = {{ dist = "exp", mean = "20ms" }}

[[saga]]
name = "order"
orchestrator = "checkout"
compensate_failed = {flag}
steps = [
  {{ name = "create", action = {{ to = "orders", timeout = "1s" }}, compensation = {{ to = "orders", timeout = "1s" }} }},
  {{ name = "charge", action = {{ to = "payment", timeout = "1s" }}, compensation = {{ to = "payment", timeout = "1s" }} }},
]

[[workload]]
name = "shoppers"
target = "checkout"
arrivals = {{ kind = "poisson", rate = 20 }}

[[fault]]
kind = "latency"
target = "payment"
add = "1500ms"
p = 0.2
at = "0s"
"#
        )
    };
    let plain = run(&Scenario::from_toml_str("refund", &text(false)).unwrap(), 4);
    let undo = run(&Scenario::from_toml_str("refund", &text(true)).unwrap(), 4);
    let get = |s: &faultline::api::Summary, p: &str| s.get(p).unwrap();
    // A fifth of the charges time out (the latency fault holds them 1.5 s): compensated.
    let compensated = get(&plain, "sagas.order.compensated");
    assert!(compensated > 100.0, "{compensated}");
    // Without compensating the failed step, each such charge still goes through: a leak.
    assert!(get(&plain, "sagas.order.effects.charge.leaked") > 0.9 * compensated);
    assert_eq!(get(&plain, "sagas.order.effects.charge.compensated"), 0.0);
    // With it, each is refunded and no charge leaks; but a refund the fault also held past
    // its timeout is retried, and both refunds go through: undone twice, inconsistent too.
    assert_eq!(get(&undo, "sagas.order.effects.charge.leaked"), 0.0);
    let twice = get(&undo, "sagas.order.effects.charge.undone_twice");
    assert!(twice > 0.0);
    // Every compensated saga's charge is one or the other, but for a charge not applied yet
    // when the run ends (then there is nothing to judge).
    let judged = get(&undo, "sagas.order.effects.charge.compensated") + twice;
    let compensated = get(&undo, "sagas.order.compensated");
    assert!(
        judged <= compensated && judged >= 0.98 * compensated,
        "{judged} of {compensated}"
    );
    assert_eq!(get(&undo, "sagas.order.inconsistent"), twice);
    assert!(twice < 0.5 * get(&plain, "sagas.order.inconsistent"));
}

/// `idempotent = true`: participants deduplicate a saga's actions and compensations by saga
/// and step, so the refunds that saga-vs-2pc.toml retries after a timeout apply once.
#[test]
fn idempotent_participants_apply_a_retried_compensation_once() {
    use faultline::api::{run, Scenario};
    let plain = Scenario::from_path("scenarios/saga-vs-2pc.toml").unwrap();
    let idem = plain.with(&["saga.order.idempotent=true"]).unwrap();
    let (a, b) = (run(&plain, 8), run(&idem, 8));
    let get = |s: &faultline::api::Summary, p: &str| s.get(p).unwrap();
    let twice = get(&a, "sagas.order.effects.charge.undone_twice");
    assert!(twice > 10.0, "{twice}");
    assert_eq!(get(&b, "sagas.order.effects.charge.undone_twice"), 0.0);
    assert_eq!(get(&b, "sagas.order.inconsistent"), 0.0);
    // The same sagas ran: only the participants' ledger differs.
    assert_eq!(
        get(&a, "sagas.order.compensated"),
        get(&b, "sagas.order.compensated")
    );
    assert_eq!(
        get(&b, "sagas.order.effects.charge.compensated"),
        get(&a, "sagas.order.effects.charge.compensated") + twice
    );
}

/// A choreographed step honours its call's retry policy: a failed handling goes back to the
/// step's queue after the policy's back-off, up to its attempts, before the step fails and
/// the saga compensates. With cards declined 10 % of the time independently per try, three
/// attempts leave 0.1 % of charges failing instead of 10 %.
#[test]
fn choreographed_steps_retry_with_their_policy() {
    let base = std::fs::read_to_string("scenarios/saga-choreography.toml")
        .unwrap()
        .replace("for = \"30s\"", "for = \"0s\"");
    let retried = base.replace(
        "{ name = \"charge\", action = { to = \"payment\" } }",
        "{ name = \"charge\", action = { to = \"payment\", retry = \"again\" } }",
    ) + "\n[policy.retry.again]\nmax_attempts = 3\nretry_on = [\"error\"]\nbackoff = { kind = \"fixed\", value = \"50ms\" }\n";
    let sets = ["saga.order.visibility_timeout=\"30s\""];
    let (plain, _) = common::run_text("plain.toml", &base, &sets);
    let (retry, _) = common::run_text("retry.toml", &retried, &sets);
    let (p, r) = (&plain.sagas[0], &retry.sagas[0]);
    ends_add_up(p);
    ends_add_up(r);
    let share = |s: &SagaResult| s.compensated as f64 / s.started as f64;
    assert!((0.08..0.12).contains(&share(p)), "{p:?}");
    assert!(share(r) < 0.005, "{r:?}");
    // The retries went through the queue: about a tenth of the charges were redelivered.
    let charge = retry
        .queues
        .iter()
        .find(|q| q.name == "order.charge")
        .unwrap();
    let tenth = r.started as f64 * 0.1;
    let again = charge.stats.redelivered as f64;
    assert!(
        (0.8 * tenth..1.25 * tenth).contains(&again),
        "{again} {tenth}"
    );
    // Nothing was charged twice: a retry follows a failed (declined) handling.
    assert_eq!(r.steps[2].applied_twice, 0, "{r:?}");
}

/// A choreographed step honours its call's timeout: a participant that waits longer than
/// `timeout` for its handler fails the step (and the saga compensates) while the handling
/// goes on; a charge that then goes through is leaked, as an orchestrator's timeout leaks
/// it. Without the timeout the slow charges just finish late.
#[test]
fn choreographed_steps_time_out_and_leak_like_orchestration() {
    let base = std::fs::read_to_string("scenarios/saga-choreography.toml").unwrap();
    let timed = base.replace(
        "{ name = \"charge\", action = { to = \"payment\" } }",
        "{ name = \"charge\", action = { to = \"payment\", timeout = \"1s\" } }",
    );
    let sets = ["saga.order.visibility_timeout=\"30s\""];
    let (plain, _) = common::run_text("plain.toml", &base, &sets);
    let (timed, _) = common::run_text("timed.toml", &timed, &sets);
    let (p, t) = (&plain.sagas[0], &timed.sagas[0]);
    ends_add_up(p);
    ends_add_up(t);
    // No redelivery within 30 s, so no leak and no double charge without the timeout.
    assert_eq!(
        (p.steps[2].leaked, p.steps[2].applied_twice),
        (0, 0),
        "{p:?}"
    );
    // 50/s for 30 s, one in five slowed by 2 s: ~300 charges time out; nine in ten of them
    // go through anyway. The orchestrated twin leaks 292.
    assert!((200..400).contains(&t.steps[2].leaked), "{t:?}");
    assert!(t.compensated > p.compensated + 200, "{t:?} {p:?}");
}
