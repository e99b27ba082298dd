//! Status codes: faults that answer with a chosen HTTP or gRPC status, Envoy's `retry_on`
//! conditions over them (5xx, gateway-error, retriable-status-codes, gRPC names), and the
//! outlier detector's gateway-failure counting.

use faultline::api::{run, Scenario, Summary};

/// `front` calls `back` with retry policy `r` (settings `retry`); a fault on `back` answers
/// a share `p` of requests with `code` from 1 s on (`extra`: more of the fault's fields,
/// then whatever TOML follows).
fn scenario(code: &str, p: f64, retry: &str, extra: &str) -> Scenario {
    let front = if extra.contains("[policy.outlier.o]") {
        "outlier = \"o\"\n"
    } else {
        ""
    };
    let text = format!(
        r#"
[sim]
name = "status-test"
duration = "20s"
seed = 5

[network]
latency = {{ dist = "constant", value = "1ms" }}

[policy.retry.r]
max_attempts = 3
{retry}

[[service]]
name = "front"
{front}workers = 1000
work = {{ dist = "constant", value = "1ms" }}
calls = [{{ to = "back", retry = "r" }}]

[[service]]
name = "back"
replicas = 4
workers = 1000
work = {{ dist = "constant", value = "2ms" }}

[[workload]]
name = "w"
target = "front"
arrivals = {{ kind = "poisson", rate = 200 }}

[[fault]]
kind = "error"
target = "back"
code = {code}
p = {p}
at = "1s"
{extra}
"#
    );
    Scenario::from_toml_str("status-test", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn get(s: &Summary, path: &str) -> f64 {
    s.get(path).unwrap_or_else(|| panic!("{path} missing"))
}

fn retries(code: &str, retry_on: &str) -> (f64, f64) {
    let s = run(
        &scenario(code, 0.5, &format!("retry_on = {retry_on}"), ""),
        5,
    );
    (
        get(&s, "edges.front->back.retries"),
        get(&s, "workloads.w.ok") / get(&s, "workloads.w.sent"),
    )
}

/// Envoy: `5xx` retries every 5xx, `gateway-error` only 502–504. A 500 is retried by the
/// first and not by the second; a 503 by both. With half the answers failing and three
/// attempts, a retried call fails 1/8 of the time, an unretried one 1/2 (each share ±0.05:
/// about 4,000 calls, so a binomial sd below 0.01).
#[test]
fn five_xx_retries_a_500_and_gateway_error_does_not() {
    let (r, ok) = retries("500", r#"["5xx"]"#);
    assert!(
        r > 1000.0 && (ok - 0.875).abs() < 0.05,
        "5xx on 500: {r} retries, ok {ok}"
    );
    let (r, ok) = retries("500", r#"["gateway-error"]"#);
    assert!(
        r == 0.0 && (ok - 0.5).abs() < 0.05,
        "gateway-error on 500: {r} retries, ok {ok}"
    );
    for cond in [r#"["gateway-error"]"#, r#"["5xx"]"#] {
        let (r, ok) = retries("503", cond);
        assert!(
            r > 1000.0 && (ok - 0.875).abs() < 0.05,
            "{cond} on 503: {r}, ok {ok}"
        );
    }
}

/// A gRPC status rides an HTTP 200: `5xx` does not retry UNAVAILABLE, `unavailable` does
/// (in either spelling), and `unavailable` does not retry DEADLINE_EXCEEDED.
#[test]
fn grpc_statuses_are_retried_by_their_names_only() {
    let (r, _) = retries(r#""UNAVAILABLE""#, r#"["5xx"]"#);
    assert_eq!(r, 0.0);
    for cond in [r#"["unavailable"]"#, r#"["UNAVAILABLE"]"#] {
        let (r, ok) = retries(r#""UNAVAILABLE""#, cond);
        assert!(
            r > 1000.0 && (ok - 0.875).abs() < 0.05,
            "{cond}: {r}, ok {ok}"
        );
    }
    let (r, _) = retries(r#""DEADLINE_EXCEEDED""#, r#"["unavailable"]"#);
    assert_eq!(r, 0.0);
    let (r, _) = retries(r#""DEADLINE_EXCEEDED""#, r#"["deadline-exceeded"]"#);
    assert!(r > 1000.0);
}

/// `retriable-status-codes` retries the listed codes: a fault's 429 when 429 is listed,
/// not when only 503 is.
#[test]
fn retriable_status_codes_retry_what_they_list() {
    let on = |codes: &str| {
        let retry =
            format!("retry_on = [\"retriable-status-codes\"]\nretriable_status_codes = {codes}");
        let s = run(&scenario("429", 0.5, &retry, ""), 5);
        get(&s, "edges.front->back.retries")
    };
    assert!(on("[429]") > 1000.0);
    assert_eq!(on("[503]"), 0.0);
}

/// The outlier detector counts a fault's status as Envoy does: UNAVAILABLE (503 to Envoy)
/// is a gateway failure, INTERNAL (500) a 5xx that is not one. With only gateway-failure
/// detection enforced, the first gets the faulty instance ejected and the second does not;
/// with 5xx detection, both do.
#[test]
fn outlier_gateway_failures_follow_the_status() {
    let ejections = |code: &str, detect: &str| {
        let extra = format!("instance = 0\n\n[policy.outlier.o]\n{detect}\ninterval = \"1s\"\nmax_ejection_percent = 50\n");
        let s = run(&scenario(code, 1.0, "retry_on = [\"timeout\"]", &extra), 5);
        get(&s, "edges.front->back.outlier.ejections")
    };
    let gateway =
        "consecutive_5xx = 0\nconsecutive_gateway = 5\nenforcing_consecutive_gateway = 100";
    assert!(ejections("\"UNAVAILABLE\"", gateway) > 0.0);
    assert!(ejections("503", gateway) > 0.0);
    assert_eq!(ejections("\"INTERNAL\"", gateway), 0.0);
    assert_eq!(ejections("500", gateway), 0.0);
    let five_xx = "consecutive_5xx = 5\nconsecutive_gateway = 0";
    assert!(ejections("\"INTERNAL\"", five_xx) > 0.0);
    assert!(ejections("\"UNAVAILABLE\"", five_xx) > 0.0);
    // A 4xx is not a server failure.
    assert_eq!(ejections("\"RESOURCE_EXHAUSTED\"", five_xx), 0.0);
}

/// Istio's default `retryOn` loads as written: bare codes are retriable status codes, and
/// `refused-stream`, which nothing here can produce, is accepted with a warning at its line.
#[test]
fn istios_default_retry_on_loads_with_a_warning_for_refused_stream() {
    let scn = scenario(
        "503",
        0.5,
        "retry_on = [\"connect-failure\", \"refused-stream\", \"unavailable\", \"cancelled\", \"503\"]",
        "",
    );
    let w = scn.warning_lines().join("\n");
    assert!(
        w.contains("status-test:12:1: warning: policy.retry.r.retry_on:")
            && w.contains("\"refused-stream\" matches nothing here"),
        "{w}"
    );
    // The bare 503 is retried.
    assert!(get(&run(&scn, 5), "edges.front->back.retries") > 1000.0);
}

/// Each edge counts its attempts by the answer they got, as a proxy's cluster statistics
/// do: the statuses a fault chose by name ("502", "UNAVAILABLE"), the rest by their
/// outcome's status (200), and the counts add up to the attempts sent.
#[test]
fn edges_count_attempts_by_the_status_they_got() {
    for (code, name) in [("502", "502"), ("\"UNAVAILABLE\"", "UNAVAILABLE")] {
        let s = run(&scenario(code, 0.3, "retry_on = [\"5xx\"]", ""), 5);
        let edge = "edges.front->back";
        let attempts = get(&s, &format!("{edge}.attempts"));
        let ok = get(&s, &format!("{edge}.responses.200"));
        let chosen = s
            .get(&format!("{edge}.responses.{name}"))
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(ok + chosen, attempts, "{code}");
        // A 502 is retried by 5xx; a gRPC status rides a 200, so 5xx does not retry it:
        // 30 % of the first attempts either way, and of the retries too for the 502.
        let calls = get(&s, &format!("{edge}.calls"));
        let share = chosen / calls;
        assert!((0.25..0.5).contains(&share), "{code}: {share}");
        assert_eq!(
            get(&s, &format!("{edge}.ok")),
            calls - get(&s, &format!("{edge}.failed"))
        );
    }
}
