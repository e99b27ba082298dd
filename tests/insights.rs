//! Insights (`summary.json` `insights`, "What happened" in `report.html`): the stories the
//! gallery's headers tell, checked against what the detectors find in the runs.

use serde_json::Value;
use std::process::Command;

/// Runs `scenario` with `sets` into a fresh directory; the kinds of insight found, in order,
/// with their subjects.
fn insights(scenario: &str, sets: &[&str]) -> Vec<(String, String)> {
    let dir = std::env::temp_dir().join(format!(
        "faultline-insights-{}-{}",
        std::process::id(),
        scenario.replace('/', "_")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut args = vec!["run", scenario, "--out", dir.to_str().unwrap()];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<h2 id=\"what-happened\">What happened</h2>"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let found: Vec<(String, String)> = summary["insights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            // Each is said on stderr and on the page too.
            let text = i["text"].as_str().unwrap();
            assert!(stderr.contains(text), "{text} not on stderr");
            let (kind, subject) = (i["kind"].as_str().unwrap(), i["subject"].as_str().unwrap());
            (kind.to_string(), subject.to_string())
        })
        .collect();
    if found.is_empty() {
        assert!(
            stderr.contains("what happened: nothing unusual") && html.contains("Nothing unusual")
        );
    }
    std::fs::remove_dir_all(dir).ok();
    found
}

fn has(found: &[(String, String)], kind: &str, subject: &str) -> bool {
    found.iter().any(|(k, s)| k == kind && s == subject)
}

/// retry-storm.toml: "without a budget the system never recovers" (a metastable failure,
/// fed by a retry storm on a saturated backend); with the budget it recovers.
#[test]
fn retry_storm_tells_its_story() {
    let storm = insights("scenarios/retry-storm.toml", &[]);
    assert!(has(&storm, "metastable_failure", "shoppers"), "{storm:?}");
    assert!(has(&storm, "retry_storm", "api->backend"), "{storm:?}");
    let budgeted = insights(
        "scenarios/retry-storm.toml",
        &["service.api.calls[0].retry=budgeted"],
    );
    assert!(
        !budgeted.iter().any(|(k, _)| k == "metastable_failure"),
        "{budgeted:?}"
    );
}

/// registry-overload.toml: the registry's queue stays full, and callers keep calling the
/// crashed catalog/3 from their stale lists.
#[test]
fn registry_overload_tells_its_story() {
    let found = insights("scenarios/registry-overload.toml", &[]);
    assert!(has(&found, "queue_saturated", "consul"), "{found:?}");
    assert!(
        has(&found, "stale_discovery", "front->catalog"),
        "{found:?}"
    );
}

/// bad-canary.toml rolls its canary back; quickstart.toml is a healthy run and says so.
#[test]
fn a_rollback_is_named_and_a_healthy_run_raises_nothing() {
    let canary = insights("scenarios/bad-canary.toml", &[]);
    assert!(has(&canary, "canary_rolled_back", "checkout"), "{canary:?}");
    assert!(insights("scenarios/quickstart.toml", &[]).is_empty());
}

/// cascading-failure.toml: payment slows, and frontend's threads, all waiting on it, give out:
/// the distress climbs from payment to frontend.
#[test]
fn cascading_failure_tells_its_story() {
    let found = insights("scenarios/cascading-failure.toml", &[]);
    assert!(has(&found, "cascading_failure", "payment"), "{found:?}");
}
