//! Reports: charts, traces (Chrome trace-event and OTLP JSON), report.html, `faultline
//! report DIR` and the gallery check, through the command line as a user runs them.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("runs")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run_into(dir: &Path, scenario: &str, extra: &[&str]) {
    let mut args = vec!["run", scenario, "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The README's run writes every chart that applies and a report.html that embeds them
/// all with no outside resource; `faultline report DIR` rebuilds them byte for byte.
#[test]
fn quickstart_charts_and_html_rebuild_identically() {
    let dir = tmp("qs");
    run_into(
        &dir,
        "scenarios/quickstart.toml",
        &["--set", "sim.duration=30s"],
    );
    let first = files(&dir);
    let svgs: Vec<&str> = first
        .iter()
        .map(|f| f.0.as_str())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    for want in [
        "latency-workload-shoppers.svg",
        "throughput-shoppers.svg",
        "latency-cdf.svg",
        "services.svg",
        "amplification.svg",
        "graph.svg",
        "waterfall.svg",
    ] {
        assert!(svgs.contains(&want), "{want} missing from {svgs:?}");
    }
    // Nothing in quickstart changes state, has a broker or a saga.
    for absent in ["timeline.svg", "brokers.svg", "sagas.svg"] {
        assert!(!svgs.contains(&absent), "{absent}");
    }
    for (name, bytes) in first.iter().filter(|f| f.0.ends_with(".svg")) {
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{name}"
        );
    }
    let html = String::from_utf8(
        first
            .iter()
            .find(|f| f.0 == "report.html")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    // Every chart inline, and nothing fetched from anywhere.
    let images = html
        .matches("<img src=\"data:image/svg+xml;base64,")
        .count();
    assert_eq!(images, svgs.len(), "one inline image per SVG");
    assert!(!html.contains("src=\"http"), "no outside resource");
    for section in [
        "Static analysis",
        "Scenario",
        "Workloads",
        "Edges",
        "Traces",
    ] {
        assert!(html.contains(section), "{section}");
    }
    assert!(
        html.contains("call graph:\n  gateway (2 x 16 workers, queue 1000)"),
        "the static analysis is there"
    );
    // Rebuild from the files alone, after deleting what `report` produces.
    for (name, _) in &first {
        if name.ends_with(".svg") || name == "report.html" {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
    }
    let out = cli(&["report", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(files(&dir), first, "report DIR gave other bytes");
    // PNG on request.
    let out = cli(&["report", dir.to_str().unwrap(), "--png"]);
    assert!(out.status.success());
    let png = std::fs::read(dir.join("latency-cdf.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::remove_dir_all(&dir).ok();
}

/// `traces.json` is valid trace-event JSON as Perfetto reads it: the required fields of
/// every event, and spans that point at a parent in the same trace that started first.
#[test]
fn chrome_trace_has_the_required_fields_and_spans_nest() {
    let dir = tmp("trace");
    run_into(&dir, "scenarios/retry-storm.toml", &[]);
    let doc = json(&dir.join("traces.json"));
    let events = doc["traceEvents"].as_array().expect("traceEvents array");
    assert!(!events.is_empty());
    let mut spans: Vec<&Value> = Vec::new();
    for e in events {
        assert!(e["name"].is_string(), "{e}");
        assert!(e["pid"].is_u64() && e["tid"].is_u64(), "{e}");
        match e["ph"].as_str() {
            Some("M") => assert!(e["args"].is_object(), "{e}"),
            Some("X") => {
                assert!(e["ts"].as_f64().unwrap() >= 0.0, "{e}");
                assert!(e["dur"].as_f64().unwrap() >= 0.0, "{e}");
                // Server and queued slices nest in their span and carry no ids.
                if e["args"]["trace_id"].is_u64() {
                    spans.push(e);
                }
            }
            other => panic!("unexpected phase {other:?}"),
        }
    }
    let span = |t: u64, s: u64| {
        spans
            .iter()
            .find(|e| e["args"]["trace_id"] == t && e["args"]["span_id"] == s)
    };
    let mut retried = 0;
    for e in &spans {
        let a = &e["args"];
        let t = a["trace_id"].as_u64().unwrap();
        assert_eq!(e["pid"].as_u64(), Some(t));
        match a["parent_id"].as_u64() {
            None => assert_eq!(a["span_id"], 0),
            Some(p) => {
                let parent = span(t, p).unwrap_or_else(|| panic!("no parent for {e}"));
                assert!(parent["args"]["start_ns"].as_u64() <= a["start_ns"].as_u64());
            }
        }
        assert!(a["end_ns"].as_u64() >= a["start_ns"].as_u64());
        if a["attempt"].as_u64().unwrap() > 1 {
            retried += 1;
        }
    }
    assert!(
        retried > 0,
        "a retry storm's traces show retries as attempts"
    );
    // What was kept: the 5 slowest, and failures (retry-storm fails many).
    let roots: Vec<&&Value> = spans.iter().filter(|e| e["args"]["span_id"] == 0).collect();
    let slowest = roots
        .iter()
        .filter(|e| {
            e["args"]["kept_for"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "slowest")
        })
        .count();
    assert_eq!(slowest, 5);
    assert!(roots.iter().any(|e| e["args"]["outcome"] != "ok"));
    let summary = json(&dir.join("summary.json"));
    assert_eq!(summary["traces"]["kept"].as_u64(), Some(roots.len() as u64));
    // The OTLP document: hex ids of the right width, parents among the spans.
    let otel = json(&dir.join("traces.otlp.json"));
    let mut ids = Vec::new();
    let mut parents = Vec::new();
    for rs in otel["resourceSpans"].as_array().unwrap() {
        assert_eq!(rs["resource"]["attributes"][0]["key"], "service.name");
        for s in rs["scopeSpans"][0]["spans"].as_array().unwrap() {
            let (t, id) = (
                s["traceId"].as_str().unwrap(),
                s["spanId"].as_str().unwrap(),
            );
            assert!(t.len() == 32 && id.len() == 16, "{s}");
            assert!(t.chars().chain(id.chars()).all(|c| c.is_ascii_hexdigit()));
            ids.push(id.to_string());
            parents.push(s["parentSpanId"].as_str().unwrap().to_string());
        }
    }
    // A CLIENT span per attempt, and a SERVER span per attempt that reached its instance.
    let arrived = spans
        .iter()
        .filter(|e| e["args"]["arrived_ns"].is_u64())
        .count();
    assert!(arrived > 0);
    assert_eq!(ids.len(), spans.len() + arrived);
    assert!(parents.iter().all(|p| p.is_empty() || ids.contains(p)));
    std::fs::remove_dir_all(&dir).ok();
}

/// Tracing observes: the same run with tracing off gives the same results.
#[test]
fn tracing_does_not_change_results() {
    let text = std::fs::read_to_string("scenarios/retry-storm.toml").unwrap();
    let (on, _) = common::run_text("retry-storm", &text, &[]);
    let (off, _) = common::run_text(
        "retry-storm",
        &text,
        &["trace.slowest=0", "trace.failed=0", "trace.sample=0"],
    );
    assert!(!on.traces.is_empty() && off.traces.is_empty());
    assert_eq!(on.events, off.events);
    assert_eq!(
        format!("{:?}", on.workloads),
        format!("{:?}", off.workloads)
    );
    assert_eq!(format!("{:?}", on.edges), format!("{:?}", off.edges));
}

/// Charts for state, sagas and brokers appear when the run has them.
#[test]
fn state_saga_and_broker_charts_apply_when_present() {
    let dir = tmp("saga");
    run_into(&dir, "scenarios/saga-payment-failures.toml", &[]);
    assert!(dir.join("sagas.svg").exists() && dir.join("timeline.svg").exists());
    let dir2 = tmp("broker");
    run_into(&dir2, "scenarios/poison-message.toml", &[]);
    let brokers = std::fs::read_to_string(dir2.join("brokers.svg")).unwrap();
    assert!(brokers.contains("dead_lettered"));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&dir2).ok();
}

/// `report` on a directory that no run wrote is invalid input, and says what it needs.
#[test]
fn report_on_a_directory_without_a_run_is_invalid_input() {
    let dir = tmp("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let out = cli(&["report", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("summary.json"));
    std::fs::remove_dir_all(&dir).ok();
}

/// The gallery check passes on what the code produces and fails, naming the file, when
/// one byte differs, a file is missing or an old one is left over.
#[test]
fn gallery_check_catches_one_changed_byte() {
    let base = tmp("gallery");
    let (scn, rep) = (base.join("scenarios"), base.join("reports"));
    std::fs::create_dir_all(&scn).unwrap();
    let text = std::fs::read_to_string("scenarios/mmc.toml")
        .unwrap()
        .replace("duration = \"31h\"", "duration = \"2m\"")
        .replace("warmup = \"1h\"", "warmup = \"10s\"")
        .replace("bucket = \"10m\"", "bucket = \"10s\"");
    std::fs::write(scn.join("mmc.toml"), text).unwrap();
    let (s, r) = (scn.to_str().unwrap(), rep.to_str().unwrap());
    let gen = cli(&["gallery", "--scenarios", s, "--out", r]);
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    assert!(rep.join("README.md").exists() && rep.join("mmc/report.html").exists());
    let check = || cli(&["gallery", "--scenarios", s, "--out", r, "--check"]);
    assert_eq!(check().status.code(), Some(0));
    let summary = rep.join("mmc/summary.json");
    let mut bytes = std::fs::read(&summary).unwrap();
    let k = bytes.iter().position(|&b| b.is_ascii_digit()).unwrap();
    bytes[k] = if bytes[k] == b'9' { b'8' } else { bytes[k] + 1 };
    std::fs::write(&summary, &bytes).unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("differs") && err.contains("summary.json"),
        "{err}"
    );
    std::fs::remove_file(&summary).unwrap();
    std::fs::write(rep.join("mmc/old-chart.svg"), "<svg/>").unwrap();
    let err = String::from_utf8_lossy(&check().stderr).to_string();
    assert!(
        err.contains("missing") && err.contains("no longer produced"),
        "{err}"
    );
    std::fs::remove_dir_all(&base).ok();
}

/// Every gallery scenario opens with a comment: a title line, then what it teaches.
#[test]
fn every_scenario_opens_with_its_lesson() {
    let list = faultline::api::gallery::entries(Path::new("scenarios")).unwrap();
    assert!(list.len() >= 20);
    for e in list {
        let words: usize = e.header.iter().map(|l| l.split_whitespace().count()).sum();
        assert!(
            e.header.len() >= 5 && words >= 40,
            "{}: the header comment should explain the trade-off it teaches",
            e.file.display()
        );
    }
}

/// `[report] services` adds a percentile chart per named service; an unknown name is
/// invalid input that names the path.
#[test]
fn chosen_services_get_their_own_latency_chart() {
    let dir = tmp("chosen");
    run_into(
        &dir,
        "scenarios/quickstart.toml",
        &[
            "--set",
            "sim.duration=20s",
            "--set",
            "report.services=[\"payment\", \"orders\"]",
        ],
    );
    for s in ["payment", "orders"] {
        let svg = std::fs::read_to_string(dir.join(format!("latency-service-{s}.svg"))).unwrap();
        assert!(svg.contains(&format!("service {s}")), "{s}");
    }
    assert!(!dir.join("latency-service-users.svg").exists());
    let out = cli(&[
        "validate",
        "scenarios/quickstart.toml",
        "--set",
        "report.services=[\"paymnt\"]",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("report.services[0]") && err.contains("paymnt"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Spans carry the server's side: arrival, first work, answer. With constant times the
/// decomposition is exact: a 2 ms network each way, 30 ms of work, and a burst of three
/// at a one-worker service that queues the second 30 ms and the third 60 ms. The OTLP
/// document gives each attempt that arrived a SERVER span under its CLIENT span.
#[test]
fn spans_split_network_queue_and_work() {
    let dir = tmp("server-spans");
    std::fs::create_dir_all(&dir).unwrap();
    let scn = dir.join("s.toml");
    std::fs::write(
        &scn,
        r#"
[sim]
name = "server-spans"
duration = "10s"
seed = 1
[network]
latency = { dist = "constant", value = "2ms" }
[trace]
sample = 1.0
max_sampled = 100
[[workload]]
name = "w"
target = "front"
arrivals = { kind = "burst", size = 3, every = "5s", count = 1 }
[[service]]
name = "front"
workers = 8
work = { dist = "constant", value = "10ms" }
calls = [{ to = "back", timeout = "10s" }]
[[service]]
name = "back"
workers = 1
work = { dist = "constant", value = "30ms" }
"#,
    )
    .unwrap();
    let out_dir = dir.join("out");
    run_into(&out_dir, scn.to_str().unwrap(), &[]);
    let doc = json(&out_dir.join("traces.json"));
    let spans: Vec<&Value> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["args"]["trace_id"].is_u64())
        .collect();
    let ms = 1_000_000u64;
    let n = |e: &Value, k: &str| e["args"][k].as_u64().unwrap_or_else(|| panic!("{k}: {e}"));
    let mut waits = Vec::new();
    for e in &spans {
        let (start, end) = (n(e, "start_ns"), n(e, "end_ns"));
        let (arr, work, ans) = (
            n(e, "arrived_ns"),
            n(e, "work_start_ns"),
            n(e, "answered_ns"),
        );
        if e["args"]["service"] == "back" {
            assert_eq!(arr - start, 2 * ms, "network out: {e}");
            assert_eq!(ans - work, 30 * ms, "work: {e}");
            assert_eq!(end - ans, 2 * ms, "network back: {e}");
            waits.push((work - arr) / ms);
        } else {
            // The client sits at the edge: the root arrives as it is sent.
            assert_eq!(arr, start, "{e}");
            assert_eq!(work, arr, "{e}");
            assert_eq!(ans, end, "{e}");
        }
    }
    waits.sort_unstable();
    assert_eq!(
        waits,
        vec![0, 30, 60],
        "queue waits at a one-worker service"
    );
    // Perfetto: each span's server slice and, where it waited, a queued slice nest in it.
    let nested: Vec<&Value> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cat"] == "server" || e["cat"] == "queued")
        .collect();
    assert_eq!(
        nested.len(),
        spans.len() + 2,
        "a server slice each, two queued"
    );
    // OTLP: a SERVER span per arrived attempt, the back call a child of front's SERVER span.
    let otel = json(&out_dir.join("traces.otlp.json"));
    let all: Vec<&Value> = otel["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["scopeSpans"][0]["spans"].as_array().unwrap())
        .collect();
    let servers: Vec<&&Value> = all.iter().filter(|s| s["kind"] == 2).collect();
    assert_eq!(servers.len(), spans.len());
    for s in all.iter().filter(|s| s["kind"] == 3 && s["name"] == "back") {
        let parent = all
            .iter()
            .find(|p| p["spanId"] == s["parentSpanId"])
            .expect("a parent");
        assert_eq!(
            parent["kind"], 2,
            "a call's parent is its handler's SERVER span"
        );
        assert_eq!(parent["name"], "front");
    }
    let waits_otel: u64 = servers
        .iter()
        .map(|s| {
            s["attributes"][0]["value"]["intValue"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(waits_otel, 90 * ms);
    std::fs::remove_dir_all(&dir).ok();
}

/// A callee that answers after its caller gave up (and after the root request ended)
/// still has its answer in the kept trace: the quickstart's payment works on after
/// orders' 300 ms timeout, and the waterfall draws that wasted work.
#[test]
fn late_answers_reach_the_kept_traces() {
    let scn = faultline::scenario::Scenario::from_path("scenarios/quickstart.toml").unwrap();
    let result = faultline::model::World::new(&scn.spec, faultline::model::RunOptions::default())
        .run(&mut faultline::metrics::NullSink);
    let late = result
        .traces
        .iter()
        .flat_map(|t| &t.spans)
        .filter(|s| s.answered != faultline::time::SimTime::MAX && s.answered > s.end)
        .count();
    assert!(
        late > 0,
        "no span answered after its caller stopped waiting"
    );
}

#[path = "../benches/layered.rs"]
mod layered;

/// `cargo bench --bench scale` compares a 20-service and a 2,000-service system that must
/// carry the same work: both valid, with events within 2 % of each other (the same arrivals;
/// only which replicas and services they meet differs), and a report of the large one that
/// lists every service and draws the busiest.
#[test]
fn the_scale_benchmarks_two_systems_carry_the_same_work() {
    let mut events = Vec::new();
    for n in [20, 2000] {
        let dir = tmp(&format!("layered-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("scenario.toml");
        std::fs::write(&file, layered::layered(n, 5)).unwrap();
        let out = dir.join("out");
        run_into(&out, file.to_str().unwrap(), &[]);
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["services"].as_object().unwrap().len(), n);
        assert!(out.join("services.svg").exists());
        events.push(summary["events"].as_f64().unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
    let ratio = events[1] / events[0];
    assert!(events[0] > 50_000.0, "{events:?}");
    assert!((0.98..1.02).contains(&ratio), "events {events:?}");
}

/// No text in a committed chart runs past its image's right edge (the last x tick, band
/// labels, the waterfall's span times). Widths are estimated at 0.6 em a character, about
/// what sans-serif digits and lower case take (wide capitals are rare in labels).
#[test]
fn no_chart_text_is_clipped_at_the_right_edge() {
    let attr = |tag: &str, name: &str| -> Option<f64> {
        let key = format!(" {name}=\"");
        let at = tag.find(&key)? + key.len();
        tag[at..].split('"').next()?.parse().ok()
    };
    let mut clipped = Vec::new();
    for gallery in std::fs::read_dir("reports").unwrap() {
        let dir = gallery.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let p = f.unwrap().path();
            if p.extension().map_or(true, |e| e != "svg") || p.ends_with("graph.svg") {
                continue;
            }
            let svg = std::fs::read_to_string(&p).unwrap();
            let head = &svg[..svg.find('>').unwrap()];
            let width = attr(head, "width").unwrap();
            let default_size = attr(head, "font-size").unwrap_or(12.0);
            for piece in svg.split("<text").skip(1) {
                let (tag, rest) = piece.split_once('>').unwrap();
                let text = rest.split("</text>").next().unwrap().trim();
                let (Some(x), size) = (
                    attr(tag, "x"),
                    attr(tag, "font-size").unwrap_or(default_size),
                ) else {
                    continue;
                };
                let w = 0.6 * size * text.chars().count() as f64;
                let right = if tag.contains("text-anchor=\"end\"") {
                    x
                } else if tag.contains("text-anchor=\"middle\"") {
                    x + w / 2.0
                } else {
                    x + w
                };
                if right > width + 1.0 {
                    clipped.push(format!(
                        "{}: {text:?} ends at {right:.0} of {width}",
                        p.display()
                    ));
                }
            }
        }
    }
    assert!(clipped.is_empty(), "{}", clipped.join("\n"));
}
