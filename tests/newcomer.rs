//! What a newcomer trips over, from the command line: the help names the report, `--set`
//! type errors speak the scenario's terms, `validate` prints estimates to four significant
//! digits, `--png` rasterises every picture, sweep axes carry units and heatmaps a colour
//! scale, and the README cites the reference projects rather than a file users lack.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-newcomer-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_top_level_help_names_the_report_and_charts_run_writes() {
    let out = faultline(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let run = help
        .lines()
        .find(|l| l.trim_start().starts_with("run "))
        .unwrap();
    for word in ["report.html", "charts", "summary.json"] {
        assert!(run.contains(word), "{run}");
    }
}

#[test]
fn set_type_errors_speak_of_numbers_and_text() {
    for (set, said) in [
        (
            "service.gateway.replicas=abc",
            "got the text \"abc\", expected a whole number",
        ),
        (
            "service.gateway.replicas=-1",
            "got -1, expected a whole number",
        ),
        (
            "service.gateway.replicas=1.5",
            "got the number 1.5, expected a whole number",
        ),
    ] {
        let dir = scratch("set");
        let out = faultline(&[
            "run",
            "scenarios/quickstart.toml",
            "--set",
            set,
            "--out",
            dir.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(said), "{set}: {err}");
        for rust in ["u32", "u64", "i64", "f64", "invalid type"] {
            assert!(!err.contains(rust), "{set}: {err}");
        }
    }
}

/// Every duration `validate` prints is a number with four significant digits at most and a
/// unit: an estimate's nanoseconds mean nothing.
#[test]
fn validate_prints_durations_to_four_significant_digits() {
    for scenario in [
        "scenarios/quickstart.toml",
        "scenarios/mesh.toml",
        "scenarios/timeout-inversion.toml",
    ] {
        let out = faultline(&["validate", scenario]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let mut seen = 0;
        for word in text.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')') {
            let Some(number) = ["ms", "us", "ns", "s"]
                .iter()
                .find_map(|u| word.strip_suffix(u))
                .filter(|n| !n.is_empty() && n.parse::<f64>().is_ok())
            else {
                continue;
            };
            seen += 1;
            let digits = number
                .trim_start_matches(['0', '.'])
                .chars()
                .filter(char::is_ascii_digit)
                .count();
            assert!(digits <= 4, "{scenario}: {word}");
        }
        assert!(seen > 0, "{scenario}: no durations in\n{text}");
    }
}

/// PNG width and height, from the IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let be = |k: usize| u32::from_be_bytes(b[k..k + 4].try_into().unwrap());
    (be(16), be(20))
}

/// SVG width and height, from the root element's attributes.
fn svg_size(path: &Path) -> (u32, u32) {
    let s = std::fs::read_to_string(path).unwrap();
    let attr = |name: &str| -> u32 {
        let key = format!(" {name}=\"");
        let at = s.find(&key).unwrap() + key.len();
        s[at..].split('"').next().unwrap().parse().unwrap()
    };
    (attr("width"), attr("height"))
}

#[test]
fn png_rasterises_every_picture_including_the_graph_and_the_waterfall() {
    let dir = scratch("png");
    let out = faultline(&[
        "run",
        "scenarios/quickstart.toml",
        "--set",
        "sim.duration=20s",
        "--png",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut svgs = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "svg") {
            svgs += 1;
            let png = p.with_extension("png");
            assert!(png.exists(), "no PNG beside {}", p.display());
            assert_eq!(png_size(&png), svg_size(&p), "{}", p.display());
        }
    }
    assert!(dir.join("graph.png").exists() && dir.join("waterfall.png").exists());
    assert!(svgs >= 8, "{svgs}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn sweep_axes_carry_units_and_the_heatmap_a_colour_scale() {
    let dir = scratch("sweep");
    let out = faultline(&[
        "sweep",
        "scenarios/quickstart.toml",
        "--param",
        "service.payment.workers=4,16",
        "--param",
        "service.users.workers=2,4",
        "--set",
        "sim.duration=20s",
        "--replications",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let lines = read("sweep-workloads_shoppers_latency_ms_p99-vs-service_payment_workers.svg");
    assert!(
        lines.contains("shoppers p99 latency (ms)"),
        "the y axis has its unit"
    );
    let errors = read("sweep-workloads_shoppers_error_rate-vs-service_payment_workers.svg");
    assert!(errors.contains("shoppers error rate (share of requests)"));
    let heat = read("sweep-heatmap-workloads_shoppers_latency_ms_p99.svg");
    // The scale: 40 steps of white to red beside the cells, titled and labelled.
    let fills = heat.matches("fill=\"#FF").count();
    assert!(fills >= 40 + 4, "{fills} red-ish fills");
    assert!(heat.contains("\nmean\n</text>"), "the scale's title");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_readme_cites_reference_projects_not_internal_documents() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for internal in [
        "POLICIES.md",
        "DESIGN.md",
        "STYLE.md",
        "PATTERNS.md",
        "../shared",
    ] {
        assert!(!readme.contains(internal), "README cites {internal}");
    }
}
