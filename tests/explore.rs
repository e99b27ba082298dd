//! `faultline explore`: a planted weakness is found and shrunk to its one fault, shrinking
//! is deterministic, the thread count changes nothing, and the command line writes a
//! scenario that reproduces what it found.

use faultline::explore::{self, Space};
use faultline::scenario;
use std::process::Command;

/// front calls `weak` (no retry: any fault there fails calls) and `strong` (five attempts
/// over four instances, so one crashed instance or a few errors are absorbed). The
/// expectation: no call to weak fails. Explore may hit either.
const PLANTED: &str = r#"
[sim]
name = "planted"
duration = "40s"
warmup = "5s"
seed = 3

[policy.retry.five]
max_attempts = 5
backoff = { kind = "fixed", value = "1ms" }

[[service]]
name = "front"
replicas = 2
workers = 32
work = { dist = "constant", value = "1ms" }
calls = [{ to = "weak", timeout = "100ms" }, { to = "strong", timeout = "100ms", retry = "five" }]

[[service]]
name = "weak"
replicas = 2
workers = 16
work = { dist = "exp", mean = "2ms" }

[[service]]
name = "strong"
replicas = 4
workers = 16
work = { dist = "exp", mean = "2ms" }

[[workload]]
name = "w"
target = "front"
arrivals = { kind = "poisson", rate = 100 }

[[expect]]
metric = "edges.front->weak.failed"
below = 1.0

[explore]
kinds = ["crash", "error"]
targets = ["weak", "strong"]
max_faults = 3
longest = "10s"
"#;

fn planted() -> scenario::Scenario {
    scenario::parse("planted.toml", PLANTED, &[]).expect("valid")
}

fn search(threads: usize, budget: u32) -> explore::Outcome {
    let scn = planted();
    let space = Space::of(&scn);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| explore::search(&scn, &space, 11, budget, 3, &|| true, &|_| {}))
        .expect("a search")
}

#[test]
fn a_planted_weakness_is_found_and_shrunk_to_its_one_fault() {
    let o = search(2, 12);
    assert!(!o.violating_runs.is_empty(), "{o:?}");
    assert!(!o.found.is_empty());
    for f in &o.found {
        assert_eq!(f.minimal.len(), 1, "{:?}", f.minimal);
        let only = &f.minimal[0];
        assert_eq!(only.target.as_deref(), Some("weak"), "{only:?}");
        // Shorter than drawn, or already 1 s: the shrinker shortened it.
        assert_eq!(only.length.map(|l| l.as_secs_f64()), Some(1.0), "{only:?}");
        assert!(!f.failing.is_empty());
    }
    // Every violating schedule drawn hits weak; no schedule that leaves weak alone breaks.
    let scn = planted();
    let space = Space::of(&scn);
    for i in 0..12 {
        let drawn = explore::draw(&space, 11, i);
        let hits_weak = drawn.iter().any(|f| f.target.as_deref() == Some("weak"));
        assert_eq!(
            o.violating_runs.contains(&i),
            hits_weak,
            "run {i}: {drawn:?}"
        );
    }
}

/// Half the faults on a service of several instances hit one of them (one pod's bad day),
/// the rest all of them; and findings are distinct in shape, not in their times.
#[test]
fn draws_hit_one_instance_or_all_and_findings_differ_in_shape() {
    let scn = planted();
    let space = Space::of(&scn);
    let (mut one, mut all) = (0, 0);
    for i in 0..200 {
        for f in explore::draw(&space, 11, i) {
            let replicas = if f.target.as_deref() == Some("weak") {
                2
            } else {
                4
            };
            match f.instance {
                Some(k) => {
                    assert!(k < replicas, "{f:?}");
                    one += 1;
                }
                None => all += 1,
            }
        }
    }
    // About 400 faults, each a fair coin: 30 % to 70 % is more than 8 sd either way.
    let share = one as f64 / (one + all) as f64;
    assert!(
        (0.3..0.7).contains(&share),
        "{one} on one instance, {all} on all"
    );

    let fault = |kind: &str, at_s: u64, instance: Option<u32>| {
        let mut f = explore::space::fault(kind, at_s, 2);
        f.target = Some("weak".into());
        f.instance = instance;
        f
    };
    assert_eq!(
        explore::shape(&[fault("crash", 10, None)]),
        explore::shape(&[fault("crash", 30, None)])
    );
    assert_ne!(
        explore::shape(&[fault("crash", 10, None)]),
        explore::shape(&[fault("crash", 10, Some(1))])
    );
    let o = search(2, 12);
    let mut shapes: Vec<String> = o.found.iter().map(|f| explore::shape(&f.minimal)).collect();
    let n = shapes.len();
    shapes.sort();
    shapes.dedup();
    assert_eq!(shapes.len(), n, "{shapes:?}");
}

#[test]
fn one_thread_or_two_find_the_same_and_shrinking_is_deterministic() {
    let (a, b) = (search(1, 8), search(2, 8));
    assert_eq!(a.violating_runs, b.violating_runs);
    let key = |o: &explore::Outcome| -> Vec<String> {
        o.found
            .iter()
            .map(|f| explore::canonical(&f.minimal))
            .collect()
    };
    assert_eq!(key(&a), key(&b));
    assert_eq!(key(&a), key(&search(2, 8)));
}

#[test]
fn the_command_writes_a_scenario_that_reproduces_what_it_found() {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-explore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let file = base.join("planted.toml");
    std::fs::write(&file, PLANTED).unwrap();
    let run = |jobs: &str, out: &str| {
        Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args([
                "explore",
                file.to_str().unwrap(),
                "--budget",
                "6",
                "--jobs",
                jobs,
                "--out",
            ])
            .arg(base.join(out))
            .output()
            .unwrap()
    };
    let one = run("1", "one");
    assert_eq!(
        one.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let two = run("2", "two");
    assert_eq!(two.status.code(), Some(1));
    let text = std::fs::read_to_string(base.join("one/explore.txt")).unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string(base.join("two/explore.txt")).unwrap()
    );
    assert_eq!(String::from_utf8_lossy(&one.stdout), text);
    assert!(text.contains("found 1: run"), "{text}");
    // The written scenario fails its check, as the search said; its report is there.
    let found = base.join("one/found-1.toml");
    let check = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("check")
        .arg(&found)
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert!(base.join("one/found-1/report.html").exists());
    // Nothing to break: exit 0. No expectations: exit 2, with what to add.
    let fine = PLANTED.replace("below = 1.0", "below = 1000000.0");
    std::fs::write(&file, &fine).unwrap();
    assert_eq!(run("2", "fine").status.code(), Some(0));
    let none = &fine[..fine.find("[[expect]]").unwrap()];
    std::fs::write(&file, none).unwrap();
    let out = run("2", "none");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[[expect]]"));
    std::fs::remove_dir_all(&base).ok();
}

/// `[explore]` is checked like every table: a wrong kind or target is an error with its place.
#[test]
fn a_wrong_explore_table_is_an_error_with_its_place() {
    let bad = PLANTED.replace(
        "targets = [\"weak\", \"strong\"]",
        "targets = [\"weak\", \"nope\"]",
    );
    let err = scenario::parse("p.toml", &bad, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("explore.targets[1]") && err.contains("nope"),
        "{err}"
    );
    let bad = PLANTED.replace(
        "kinds = [\"crash\", \"error\"]",
        "kinds = [\"crash\", \"meteor\"]",
    );
    let err = scenario::parse("p.toml", &bad, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown kind \"meteor\""), "{err}");
}

/// A partition where no two targets call each other cannot be drawn: an error, not a panic.
#[test]
fn a_space_with_nothing_to_draw_is_an_error() {
    // weak and strong are both called by front, never by each other.
    let text = PLANTED.replace("kinds = [\"crash\", \"error\"]", "kinds = [\"partition\"]");
    let scn = scenario::parse("p.toml", &text, &[]).expect("valid");
    let space = Space::of(&scn);
    let err = explore::search(&scn, &space, 1, 4, 1, &|| true, &|_| {}).unwrap_err();
    assert!(err.0.contains("no fault can be drawn"), "{}", err.0);
}
