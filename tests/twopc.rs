//! Two-phase commit (`[[transaction]]`) through the whole model: votes, locks, the decision
//! answering the waiting handler, presumed abort after a coordinator's crash.

use faultline::api::{run, Scenario, Summary};

/// A coordinator `shop` and participants `a` and `b`; `extra` is appended (faults), and
/// `keys`, `error` and `rate` shape the load.
fn scenario(keys: u64, error: f64, rate: f64, extra: &str) -> Scenario {
    let text = format!(
        r#"
[sim]
name = "twopc"
duration = "60s"
seed = 11

[network]
latency = {{ dist = "constant", value = "1ms" }}

[[service]]
name = "shop"
replicas = 2
workers = 32
calls = [{{ transaction = "t" }}]

[[service]]
name = "a"
replicas = 2
workers = 16
work = {{ dist = "exp", mean = "5ms" }}

[[service]]
name = "b"
replicas = 2
workers = 16
error_rate = {error}
work = {{ dist = "exp", mean = "10ms" }}

[[transaction]]
name = "t"
coordinator = "shop"
participants = [{{ to = "a", timeout = "1s" }}, {{ to = "b", timeout = "1s" }}]

[[workload]]
name = "w"
target = "shop"
keys = {keys}
arrivals = {{ kind = "poisson", rate = {rate} }}
{extra}
"#
    );
    Scenario::from_toml_str("twopc", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn get(s: &Summary, path: &str) -> f64 {
    s.get(path).unwrap_or_else(|| panic!("{path} missing"))
}

/// With every participant able to commit and no two orders on one key, every transaction
/// commits, the handler answers ok at the decision, and no lock outlives its transaction.
#[test]
fn all_yes_commits_and_answers_ok() {
    let s = run(&scenario(1_000_000_000, 0.0, 50.0, ""), 11);
    let started = get(&s, "transactions.t.started");
    assert!(started > 2500.0);
    let pending = get(&s, "transactions.t.running_at_end");
    // (Those running at the end may be decided and still waiting for acknowledgements.)
    let committed = get(&s, "transactions.t.committed");
    assert!(committed <= started && started - committed <= pending);
    assert_eq!(get(&s, "transactions.t.aborted"), 0.0);
    assert_eq!(
        get(&s, "workloads.w.ok"),
        get(&s, "transactions.t.committed")
    );
    assert_eq!(get(&s, "workloads.w.failed"), 0.0);
    assert!(get(&s, "transactions.t.locks_at_end") <= 2.0 * pending);
    // Both PREPAREs go at once: the decision comes after the slower of the two (exp 5 ms and
    // exp 10 ms: 11.7 ms on average, plus 2 ms of network), not after both in turn (19 ms).
    let each = |p: &str| get(&s, &format!("services.{p}.latency_ms.mean"));
    let one_after_the_other = each("a") + each("b") + 4.0;
    let took = get(&s, "transactions.t.duration_ms.mean");
    assert!(
        took < 0.85 * one_after_the_other,
        "{took} vs {one_after_the_other}"
    );
}

/// A participant that says no (an error) aborts the transaction: the handler fails, and the
/// abort releases the other participant's lock.
#[test]
fn a_no_vote_aborts_and_releases_the_locks() {
    let s = run(&scenario(1_000_000_000, 0.2, 50.0, ""), 11);
    let aborted = get(&s, "transactions.t.aborted");
    // b refuses a fifth of its PREPAREs (and of the decisions, which are resent).
    let started = get(&s, "transactions.t.started");
    assert!(
        (0.15 * started..0.25 * started).contains(&aborted),
        "{aborted} of {started}"
    );
    assert_eq!(get(&s, "workloads.w.failed"), aborted);
    assert!(get(&s, "transactions.t.resends") > 0.0);
    assert!(
        get(&s, "transactions.t.locks_at_end") <= 2.0 * get(&s, "transactions.t.running_at_end")
    );
}

/// Every order on one key: a PREPARE that finds the key locked by a transaction in doubt
/// votes NO, so concurrent orders abort; never do two hold the key at once.
#[test]
fn a_locked_key_votes_no() {
    let hot = run(&scenario(1, 0.0, 50.0, ""), 11);
    let cold = run(&scenario(1_000_000_000, 0.0, 50.0, ""), 11);
    assert_eq!(get(&cold, "transactions.t.lock_conflicts"), 0.0);
    let conflicts = get(&hot, "transactions.t.lock_conflicts");
    assert!(conflicts > 100.0, "{conflicts}");
    // Each conflict is a NO: at least half as many aborts (both participants may conflict).
    assert!(get(&hot, "transactions.t.aborted") >= conflicts / 2.0);
    assert!(get(&hot, "transactions.t.locks_at_end") <= 2.0);
}

/// A coordinator that crashes between the votes and the decision decides nothing: its
/// participants stay in doubt, holding their locks, until it recovers and aborts (presumed
/// abort). The window is the outage.
#[test]
fn a_crashed_coordinator_blocks_its_participants_until_it_recovers() {
    let crash = r#"
[[fault]]
kind = "crash"
target = "shop"
instance = 0
at = "20s"
for = "10s"
"#;
    let s = run(&scenario(1_000_000_000, 0.0, 400.0, crash), 11);
    assert!(get(&s, "transactions.t.blocked") >= 1.0);
    let longest = get(&s, "transactions.t.in_doubt_ms.max");
    // Recovery is noticed within one resend period (1 s) of the restart.
    assert!((9_900.0..11_100.0).contains(&longest), "{longest}");
    let quiet = run(&scenario(1_000_000_000, 0.0, 400.0, ""), 11);
    assert_eq!(get(&quiet, "transactions.t.blocked"), 0.0);
    assert!(get(&quiet, "transactions.t.in_doubt_ms.max") < 1_000.0);
}

/// Same seed, same bytes.
#[test]
fn transactions_repeat_exactly() {
    let s = Scenario::from_path("scenarios/saga-vs-2pc.toml").unwrap();
    assert_eq!(run(&s, 3).json, run(&s, 3).json);
}

/// `validate`'s latency estimate counts what a handler waits for: a waiting saga's actions in
/// turn (1 + 2 + 5 + 2 + 40 ms = 50 ms), a transaction's slowest PREPARE (1 + 2 + 40 = 43 ms).
#[test]
fn validate_counts_waiting_sagas_and_transactions_in_latency() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["validate", "scenarios/saga-vs-2pc.toml"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let saga = text.split("workload \"saga-orders\"").nth(1).unwrap();
    assert!(saga.contains("mean >= 50ms"), "{saga}");
    let tx = text.split("workload \"2pc-orders\"").nth(1).unwrap();
    assert!(tx.contains("mean >= 43ms"), "{tx}");
    assert!(tx.contains("at most 3 in flight at once"), "{tx}");
}
