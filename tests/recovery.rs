//! Recovery times (`summary.json` `recovery`): after each fault window and load spike or
//! step, when each workload's goodput share and p99 are back within their bands.

mod common;

use common::{run_file, run_text};
use faultline::results::recovery::Recovery;
use faultline::results::RunResult;
use std::process::Command;

fn recovery<'a>(r: &'a RunResult, key: &str, workload: &str) -> &'a Recovery {
    let (_, per) = r
        .recovery
        .iter()
        .find(|(w, _)| w.key == key)
        .unwrap_or_else(|| panic!("no window {key}"));
    &per.iter().find(|(n, _)| n == workload).expect("workload").1
}

/// The example: scenarios/retry-storm.toml's spike ends at 40 s. Without a retry
/// budget the system never comes back (a metastable failure); with one it does, within
/// about a minute. The counts alone (30 018 against 22 613 failed) hide that difference.
#[test]
fn a_retry_budget_is_the_difference_between_recovering_and_not() {
    let (storm, _) = run_file("scenarios/retry-storm.toml", &[]);
    let r = recovery(&storm, "shoppers-spike", "shoppers");
    assert!(r.goodput_before.unwrap() > 0.99, "{r:?}");
    assert_eq!(r.after_s, None, "{r:?}");
    let (budgeted, _) = run_file(
        "scenarios/retry-storm.toml",
        &["service.api.calls[0].retry=budgeted"],
    );
    let r = recovery(&budgeted, "shoppers-spike", "shoppers");
    let after = r.after_s.expect("recovers");
    assert!((10.0..90.0).contains(&after), "{after}");
}

/// A fault window is named as its event names it, and recovery counts from its end: the
/// registry outage of scenarios/registry-outage.toml ends at 90 s; a crash that lasts to
/// the end of the run never has an after.
#[test]
fn fault_windows_are_named_and_timed_from_their_end() {
    let (r, _) = run_file("scenarios/registry-outage.toml", &[]);
    let (w, _) = r.recovery.iter().find(|(w, _)| w.key == "fault0").unwrap();
    assert_eq!((w.kind, w.from_s, w.to_s), ("fault", 30.0, 90.0));
    assert!(w.what.starts_with("registry outage"), "{}", w.what);
    assert!(recovery(&r, "fault0", "shoppers").after_s.is_some());
    let (w1, _) = r.recovery.iter().find(|(w, _)| w.key == "fault1").unwrap();
    assert_eq!(w1.what, "crash catalog/1");
    assert_eq!(recovery(&r, "fault1", "shoppers").after_s, None);
}

/// A step in the load is a window of no length; a stricter band or a longer hold can only
/// delay recovery.
#[test]
fn steps_and_bands() {
    let text = |recovery: &str| {
        format!(
            "[sim]\nname = \"step\"\nduration = \"120s\"\nseed = 2\n{recovery}\n\
             [[service]]\nname = \"s\"\nworkers = 2\nqueue = {{ capacity = 50 }}\nwork = {{ dist = \"exp\", mean = \"10ms\" }}\n\
             [[workload]]\nname = \"w\"\ntarget = \"s\"\ntimeout = \"1s\"\n\
             arrivals = {{ kind = \"step\", steps = [{{ at = \"0s\", rate = 100 }}, {{ at = \"40s\", rate = 250 }}, {{ at = \"60s\", rate = 100 }}] }}\n"
        )
    };
    let (r, _) = run_text("step.toml", &text(""), &[]);
    let keys: Vec<&str> = r.recovery.iter().map(|(w, _)| w.key.as_str()).collect();
    assert_eq!(keys, ["w-step1", "w-step2"]);
    // 250/s against 200/s of capacity for 20 s: the queue fills and requests are refused;
    // after the step back down the backlog drains and it recovers.
    let loose = recovery(&r, "w-step2", "w").after_s.expect("recovers");
    let (strict, _) = run_text(
        "step.toml",
        &text("[recovery]\ngoodput_band = 0.0\np99_band = 0.1\nhold = \"20s\""),
        &[],
    );
    if let Some(a) = recovery(&strict, "w-step2", "w").after_s {
        assert!(a >= loose, "{a} < {loose}");
    }
    // Overloaded from 40 s: not recovered from the step up while it lasts.
    assert!(recovery(&r, "w-step1", "w")
        .after_s
        .map_or(true, |a| a >= 20.0));
}

/// Recovery can be expected: `after_s` of a run that never recovers is null, which fails
/// the check (exit 1) rather than making the scenario invalid.
#[test]
fn recovery_can_be_checked() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-recovery-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string("scenarios/retry-storm.toml").unwrap()
        + "\n[[expect]]\nmetric = \"recovery.shoppers-spike.workloads.shoppers.after_s\"\nbelow = 90\n";
    let f = dir.join("storm.toml");
    std::fs::write(&f, text).unwrap();
    let check = |sets: &[&str]| {
        let mut args = vec!["check", f.to_str().unwrap()];
        args.extend(sets);
        Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(&args)
            .output()
            .unwrap()
    };
    let out = check(&[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // (`check` has no --set: the budgeted variant is a file of its own.)
    let budgeted = std::fs::read_to_string(&f)
        .unwrap()
        .replace("retry = \"unbudgeted\"", "retry = \"budgeted\"");
    std::fs::write(&f, budgeted).unwrap();
    let out = check(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn recovery_bands_are_checked() {
    for (table, says) in [
        (
            "goodput_band = 1.5",
            "goodput_band is a share between 0 and 1",
        ),
        ("p99_band = -1", "p99_band is 0 or more"),
        ("hold = \"0s\"", "hold must be longer than 0s"),
    ] {
        let text = format!(
            "[sim]\nname = \"x\"\nduration = \"1s\"\n[recovery]\n{table}\n\
             [[service]]\nname = \"s\"\n\
             [[workload]]\nname = \"w\"\ntarget = \"s\"\narrivals = {{ kind = \"poisson\", rate = 1 }}\n"
        );
        let e = faultline::scenario::parse("x.toml", &text, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains(says) && e.contains("x.toml:"), "{e}");
    }
}
