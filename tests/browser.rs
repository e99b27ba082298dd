//! A real browser opens `report.html`: headless Chromium renders it without script
//! errors and every chart image decodes. Needs Debian's `chromium` (`.ci/run` installs it).
//! Without it the test says so and passes, unless FAULTLINE_REQUIRE_BROWSER=1 (as in CI).

use std::path::Path;
use std::process::Command;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// The browser, or None after saying on stderr that `test` is skipped (a failure when
/// FAULTLINE_REQUIRE_BROWSER is set, as in CI).
fn chromium_or_skip(test: &str) -> Option<&'static str> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var("FAULTLINE_REQUIRE_BROWSER").is_err(),
            "FAULTLINE_REQUIRE_BROWSER is set but no chromium is installed"
        );
        // Straight to the process's stderr, past the test harness's capture, so that a
        // skip shows in `cargo test` output instead of hiding behind "ok".
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: no chromium on this machine \
             (apt-get install chromium; FAULTLINE_REQUIRE_BROWSER=1 makes this a failure, as in CI)"
        );
    }
    found
}

/// Chromium with the flags every test wants (headless, no sandbox, no network chatter, a
/// profile of its own), then `args`.
fn chromium_command(browser: &str, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// `faultline ARGS... --out OUT`, which must succeed.
fn run_ok(args: &[&str], out: &Path) {
    let done = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "faultline {args:?}: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

#[test]
fn report_renders_in_headless_chromium() {
    let Some(browser) = chromium_or_skip("report_renders_in_headless_chromium") else {
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A scenario with faults, breakers and a timeline, so that every kind of chart is there.
    run_ok(&["run", "scenarios/outlier-ejection.toml"], &dir);
    let html = dir.join("report.html");
    let profile = dir.join("chromium-profile");
    let out = chromium_command(browser, &profile)
        .args([
            "--disable-quic",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
        ])
        .arg("--dump-dom")
        .arg(format!("file://{}", abs(&html)))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    let attr = |name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let at = dom.find(&key)? + key.len();
        Some(dom[at..].split('"').next()?.to_string())
    };
    let images =
        attr("data-images").unwrap_or_else(|| panic!("the page's check did not run:\n{log}"));
    let (ok, total) = images.split_once('/').unwrap();
    assert!(total.parse::<u32>().unwrap() >= 8, "{images}");
    assert_eq!(ok, total, "images that did not load: {images}");
    assert_eq!(attr("data-errors").as_deref(), Some("0"), "{log}");
    // Console errors Chromium logged for the page itself.
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && l.contains("report.html"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    std::fs::remove_dir_all(&dir).ok();
}

fn abs(p: &Path) -> String {
    std::fs::canonicalize(p).unwrap().display().to_string()
}

/// Width and height of an SVG, from its root element.
fn svg_size(svg: &str) -> (u32, u32) {
    let attr = |name: &str| -> u32 {
        let key = format!(" {name}=\"");
        let at = svg.find(&key).unwrap() + key.len();
        svg[at..].split('"').next().unwrap().parse().unwrap()
    };
    (attr("width"), attr("height"))
}

/// Chromium's screenshot of `file` at `size`, read back as pixels.
fn screenshot(browser: &str, file: &Path, size: (u32, u32)) -> resvg::tiny_skia::Pixmap {
    let png = file.with_extension("shot.png");
    let profile = file.with_extension("profile");
    let out = chromium_command(browser, &profile)
        .args(["--hide-scrollbars", "--force-device-scale-factor=1"])
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", abs(file)))
        .output()
        .expect("chromium runs");
    resvg::tiny_skia::Pixmap::load_png(&png).unwrap_or_else(|e| {
        panic!(
            "no screenshot of {}: {e}\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Every chart of a run, a sweep (with its heatmap) and a comparison, as Chromium draws them (its fonts, not
/// ours): nothing is drawn into the last pixels at the right edge (the last x tick, band
/// labels and span times used to run off it), the heatmap has its colour scale, and the
/// report page's first screen (where "What happened" is) is drawn, not blank.
#[test]
fn charts_drawn_by_chromium_stay_inside_their_frame() {
    let Some(browser) = chromium_or_skip("charts_drawn_by_chromium_stay_inside_their_frame") else {
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline-shots-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A load spike (shaded, labelled), a retry storm and a waterfall of timeouts.
    let run = dir.join("run");
    run_ok(&["run", "scenarios/retry-storm.toml"], &run);
    let sweep = dir.join("sweep");
    run_ok(
        &[
            "sweep",
            "scenarios/quickstart.toml",
            "--param",
            "service.payment.workers=4,16",
            "--param",
            "service.users.workers=2,4",
            "--set",
            "sim.duration=20s",
        ],
        &sweep,
    );
    // A comparison, whose CDF legend names A and B by their overrides.
    let compare = dir.join("compare");
    run_ok(
        &[
            "compare",
            "scenarios/quickstart.toml",
            "--a",
            "service.payment.workers=4",
            "--b",
            "service.payment.workers=16",
            "--set",
            "sim.duration=20s",
            "--replications",
            "2",
        ],
        &compare,
    );
    let mut charts: Vec<std::path::PathBuf> = [&run, &sweep, &compare]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .collect();
    charts.sort();
    assert!(charts.len() >= 10, "{charts:?}");
    let dark = |px: resvg::tiny_skia::PremultipliedColorU8| {
        let luma = 0.299 * px.red() as f64 + 0.587 * px.green() as f64 + 0.114 * px.blue() as f64;
        luma < 150.0
    };
    for chart in &charts {
        let size = svg_size(&std::fs::read_to_string(chart).unwrap());
        let shot = screenshot(browser, chart, size);
        assert_eq!((shot.width(), shot.height()), size, "{}", chart.display());
        // The last 3 columns: no text or line there.
        let (w, h) = size;
        for x in w - 3..w {
            for y in 0..h {
                let px = shot.pixel(x, y).unwrap();
                assert!(
                    !dark(px),
                    "{}: something drawn at the right edge, ({x}, {y})",
                    chart.display()
                );
            }
        }
        if chart.to_string_lossy().contains("sweep-heatmap") {
            // The colour scale: a column of many shades of red, right of the cells.
            let x = w - 110 + 30;
            let mut shades: Vec<(u8, u8, u8)> = (0..h)
                .map(|y| shot.pixel(x, y).unwrap())
                .filter(|p| p.red() > 200 && p.green() < 245)
                .map(|p| (p.red(), p.green(), p.blue()))
                .collect();
            shades.dedup();
            assert!(
                shades.len() >= 20,
                "{}: {} shades in the scale",
                chart.display(),
                shades.len()
            );
        }
    }
    // The page: drawn, and not blank at its top, where "What happened" is.
    let page = screenshot(browser, &run.join("report.html"), (1200, 900));
    let inked = (0..900)
        .flat_map(|y| (0..1200).map(move |x| (x, y)))
        .filter(|&(x, y)| dark(page.pixel(x, y).unwrap()))
        .count();
    assert!(
        inked > 2_000,
        "the report's first screen is nearly blank: {inked} dark pixels"
    );
    std::fs::remove_dir_all(&dir).ok();
}
