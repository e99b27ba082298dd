//! Strangler-fig migrations: a facade's calls to an old service move to its replacement by
//! weight and route, and move back for good when the replacement fails its rollback test.

use faultline::api::{run, Scenario, Summary};

/// `front` calls `old` through migration `m` (`migration`: its weights, routes, rollback);
/// `new` fails a share `new_errors` of its requests. 200 calls a second for 20 s.
fn scenario(migration: &str, new_errors: f64) -> Scenario {
    let text = format!(
        r#"
[sim]
name = "migration-test"
duration = "20s"
seed = 12

[[migration]]
name = "m"
from = "old"
to = "new"
{migration}

[[service]]
name = "front"
workers = 1000
calls = [{{ to = "old", migrate = "m", required = false }}]

[[service]]
name = "old"
workers = 100
work = {{ dist = "constant", value = "2ms" }}

[[service]]
name = "new"
workers = 100
error_rate = {new_errors}
work = {{ dist = "constant", value = "2ms" }}

[[workload]]
name = "w"
target = "front"
headers = {{ beta = 0.1 }}
arrivals = {{ kind = "poisson", rate = 200 }}
"#
    );
    Scenario::from_toml_str("migration-test", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn get(s: &Summary, path: &str) -> f64 {
    s.get(path).unwrap_or_else(|| panic!("{path} missing"))
}

/// At 30 % from t = 0 the replacement takes 30 % of about 4,000 calls (binomial sd 0.7 %,
/// so ±3 % is over 4 sd), the old service the rest, and nothing is lost between them.
#[test]
fn a_weight_splits_calls_between_the_old_service_and_its_replacement() {
    let s = run(
        &scenario(r#"weights = [{ at = "0s", weight = 30 }]"#, 0.0),
        12,
    );
    let (to_new, calls) = (
        get(&s, "migrations.m.to_new"),
        get(&s, "edges.front->old.calls") + get(&s, "edges.front->new.calls"),
    );
    assert!(calls > 3500.0, "{calls}");
    assert_eq!(to_new, get(&s, "edges.front->new.calls"));
    let share = to_new / calls;
    assert!((share - 0.3).abs() < 0.03, "{share}");
    assert_eq!(get(&s, "migrations.m.final_weight"), 30.0);
    assert_eq!(
        get(&s, "services.new.requests") + get(&s, "services.old.requests"),
        calls
    );
}

/// Routes come before weights: at weight 0, the 10 % of requests that carry the beta header
/// all go to the replacement, and no other does.
#[test]
fn a_route_sends_its_requests_to_the_replacement_whatever_the_weight() {
    let s = run(
        &scenario(
            r#"weights = [{ at = "0s", weight = 0 }]
routes = [{ header = "beta", to = "new" }]"#,
            0.0,
        ),
        12,
    );
    let share = get(&s, "migrations.m.to_new") / get(&s, "workloads.w.sent");
    assert!((share - 0.1).abs() < 0.02, "{share}");
}

/// A replacement that fails every call is rolled back at the end of the first window with
/// enough calls (5 s), and from then on takes none: its whole share is what the first
/// window sent it.
#[test]
fn a_failing_replacement_is_rolled_back_for_good() {
    let s = run(
        &scenario(
            r#"weights = [{ at = "0s", weight = 50 }, { at = "10s", weight = 100 }]
routes = [{ header = "beta", to = "new" }]
rollback = { error_rate = 0.1, window = "5s", min_requests = 20 }"#,
            1.0,
        ),
        12,
    );
    assert_eq!(get(&s, "migrations.m.rolled_back_at_s"), 5.0);
    assert_eq!(
        get(&s, "migrations.m.final_weight"),
        0.0,
        "later steps ignored"
    );
    let to_new = get(&s, "migrations.m.to_new");
    // Half of 5 s at 200/s: about 500 calls (sd 16), and none after.
    assert!((400.0..600.0).contains(&to_new), "{to_new}");
    assert_eq!(get(&s, "migrations.m.failed_at_new"), to_new);
    assert_eq!(get(&s, "services.new.requests"), to_new);
}

/// Without a rollback nothing moves the traffic back: the failing replacement keeps its
/// half of the calls to the end.
#[test]
fn without_a_rollback_the_split_holds_even_when_the_replacement_fails() {
    let s = run(
        &scenario(r#"weights = [{ at = "0s", weight = 50 }]"#, 1.0),
        12,
    );
    let failed = get(&s, "migrations.m.failed_at_new");
    assert_eq!(failed, get(&s, "migrations.m.to_new"));
    assert!(failed > 1500.0, "{failed}");
    assert_eq!(
        s.get("migrations.m.rolled_back_at_s"),
        None,
        "never rolled back"
    );
}
