//! `report.html`: one self-contained page (charts inline as data URIs, no network access)
//! with the scenario, its static analysis, the summary tables, the charts and the traces.

use super::charts::ChartFile;
use super::data::RunData;
use super::traces::esc;
use crate::results::expect::Bound;
use base64::Engine as _;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

const STYLE: &str = "body{font-family:sans-serif;margin:24px auto;max-width:1000px;color:#222;line-height:1.4}\
h1{font-size:24px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f2f4f7}\
pre{background:#f7f7f7;border:1px solid #ddd;padding:10px;font-size:12px;overflow-x:auto}\
figure{margin:16px 0}figcaption{font-size:13px;color:#555}img{max-width:100%;border:1px solid #eee}\
.meta{color:#555;font-size:13px}code{background:#f2f2f2;padding:1px 3px}";

/// Checks, once the page has loaded, that every image decoded and nothing threw; the
/// result lands in `data-` attributes of `<body>` (read by the browser test).
const SCRIPT: &str =
    "var errors=[];window.addEventListener('error',function(e){errors.push(String(e.message));});\
window.addEventListener('load',function(){var imgs=document.images,ok=0;\
for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0){ok++;}}\
document.body.setAttribute('data-images',ok+'/'+imgs.length);\
document.body.setAttribute('data-errors',String(errors.length));});";

fn img(dir: &Path, file: &str) -> std::io::Result<String> {
    let bytes = std::fs::read(dir.join(file))?;
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn num(v: &Value) -> String {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                i.to_string()
            } else if let Some(f) = n.as_f64() {
                if f.abs() >= 100.0 {
                    format!("{f:.1}")
                } else {
                    format!("{f:.3}")
                }
            } else {
                n.to_string()
            }
        }
        Value::Null => "–".into(),
        Value::String(s) => esc(s),
        Value::Bool(b) => b.to_string(),
        other => esc(&other.to_string()),
    }
}

/// A table with one row per key of `obj`, and the given columns (JSON pointers under each).
fn table(o: &mut String, obj: &Value, first: &str, cols: &[(&str, &str)]) {
    let Some(map) = obj.as_object() else { return };
    if map.is_empty() {
        return;
    }
    let _ = write!(o, "<table><tr><th>{}</th>", esc(first));
    for (h, _) in cols {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr>\n");
    for (k, v) in map {
        let _ = write!(o, "<tr><td>{}</td>", esc(k));
        for (_, p) in cols {
            let _ = write!(o, "<td>{}</td>", num(v.pointer(p).unwrap_or(&Value::Null)));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
}

/// Builds the page from the directory's files and charts.
pub fn page(
    d: &RunData,
    dir: &Path,
    charts: &[ChartFile],
    analysis: &str,
    has_graph: bool,
    has_waterfall: bool,
) -> std::io::Result<String> {
    let s = &d.summary;
    let m = &d.manifest;
    let name = s["scenario"].as_str().unwrap_or("");
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>faultline: {}</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style><script>{SCRIPT}</script></head>\n<body>\n",
        esc(name)
    );
    let _ = writeln!(o, "<h1>faultline report: {}</h1>", esc(name));
    let _ = writeln!(
        o,
        "<p class=\"meta\">seed {} · {} s simulated ({} s warmup) · {} events · stopped: {} · faultline {}<br>reproduce: <code>{}</code></p>",
        num(&s["seed"]),
        num(&s["sim_duration_s"]),
        num(&s["warmup_s"]),
        num(&s["events"]),
        num(&s["stop_reason"]),
        esc(&m.faultline_version),
        esc(&m.reproduce)
    );
    o.push_str("<p>Contents: <a href=\"#summary\">summary</a> · <a href=\"#charts\">charts</a> · <a href=\"#traces\">traces</a> · <a href=\"#graph\">call graph</a> · <a href=\"#analysis\">static analysis</a> · <a href=\"#scenario\">scenario</a></p>\n");
    if let Some(found) = s["insights"].as_array() {
        o.push_str("<h2 id=\"what-happened\">What happened</h2>\n");
        if found.is_empty() {
            o.push_str("<p>Nothing unusual: no metastable failure, goodput collapse, cascade, retry storm, flapping breaker, saturated or growing queue, timeout inversion that bit, stale discovery, saga inconsistency or rollback was detected.</p>\n");
        } else {
            o.push_str("<ul>\n");
            for i in found {
                // The chart that shows it (named by the detector).
                let chart = i["chart"].as_str().unwrap_or("services.svg");
                let _ = writeln!(
                    o,
                    "<li>{} (<a href=\"{}\">chart</a>)</li>",
                    esc(i["text"].as_str().unwrap_or("")),
                    esc(chart)
                );
            }
            o.push_str("</ul>\n");
        }
    }
    if let Some(expect) = m.effective.get("expect").and_then(|e| e.as_array()) {
        o.push_str("<h2 id=\"expect\">Expectations</h2>\n<p>The scenario's <code>[[expect]]</code> blocks, judged on this run's seed (<code>faultline check</code> runs each over its <code>seeds</code>).</p>\n<table><tr><th>metric</th><th>bound</th><th>measured</th><th>held</th></tr>\n");
        for e in expect {
            let metric = e["metric"].as_str().unwrap_or("");
            // Judged exactly as `faultline check` judges it.
            let bound = Bound::from_json(e);
            let value = crate::results::expect::Expr::parse(metric)
                .ok()
                .and_then(|x| x.eval(s).ok());
            // A mean judged in standard errors needs several seeds: not judged on one run.
            let over_seeds = matches!(
                bound,
                Some(Bound::Mean {
                    tolerance: crate::results::expect::Tolerance::StandardErrors(_),
                    ..
                })
            );
            let held = bound
                .zip(value)
                .filter(|_| !over_seeds)
                .map(|(b, x)| b.holds(x));
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(metric),
                esc(&bound.map(Bound::text).unwrap_or_default()),
                value.map_or("not in summary.json".to_string(), |x| num(&Value::from(x))),
                match held {
                    Some(true) => "yes",
                    Some(false) => "<b>no</b>",
                    None => "–",
                }
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("<h2 id=\"summary\">Summary</h2>\n<h3>Workloads (after warmup)</h3>\n");
    table(
        &mut o,
        &s["workloads"],
        "workload",
        &[
            ("sent", "/sent"),
            ("ok", "/ok"),
            ("failed", "/failed"),
            ("error rate", "/error_rate"),
            ("p50 ms", "/latency_ms/p50"),
            ("p90 ms", "/latency_ms/p90"),
            ("p99 ms", "/latency_ms/p99"),
            ("p99.9 ms", "/latency_ms/p999"),
            ("max ms", "/latency_ms/max"),
        ],
    );
    o.push_str("<h3>Services</h3>\n");
    table(
        &mut o,
        &s["services"],
        "service",
        &[
            ("requests", "/requests"),
            ("ok", "/ok"),
            ("errors", "/errors"),
            ("rejected", "/rejected"),
            ("timeouts", "/timeouts"),
            ("utilization", "/utilization"),
            ("queue wait p99 ms", "/queue_wait_ms/p99"),
            ("p50 ms", "/latency_ms/p50"),
            ("p99 ms", "/latency_ms/p99"),
            ("shed", "/dropped/shed"),
        ],
    );
    o.push_str("<h3>Edges (caller → callee)</h3>\n");
    table(
        &mut o,
        &s["edges"],
        "edge",
        &[
            ("calls", "/calls"),
            ("attempts", "/attempts"),
            ("amplification", "/amplification"),
            ("ok", "/ok"),
            ("failed", "/failed"),
            ("breaker rejected", "/breaker_rejected"),
            ("breaker open s", "/breaker/time_open_s"),
            ("budget denied", "/budget_denied"),
            ("fallbacks", "/fallbacks"),
            ("to dead", "/calls_to_dead"),
        ],
    );
    if let Some(brokers) = s["brokers"].as_object() {
        o.push_str("<h3>Broker queues</h3>\n");
        for (b, v) in brokers {
            let _ = writeln!(o, "<p>broker {}</p>", esc(b));
            table(
                &mut o,
                &v["queues"],
                "queue",
                &[
                    ("published", "/published"),
                    ("delivered", "/delivered"),
                    ("acked", "/acked"),
                    ("redelivered", "/redelivered"),
                    ("dead-lettered", "/dead_lettered"),
                    ("duplicates", "/duplicates"),
                    ("double effects", "/double_effects"),
                    ("max ready", "/max_ready"),
                ],
            );
        }
    }
    if s.get("caches").is_some() {
        o.push_str("<h3>Caches</h3>\n");
        table(
            &mut o,
            &s["caches"],
            "cache",
            &[
                ("lookups", "/lookups"),
                ("hit ratio", "/hit_ratio"),
                ("stale hits", "/stale_hits"),
                ("misses", "/misses"),
                ("coalesced", "/coalesced"),
                ("refreshes", "/refreshes"),
                ("stale reads", "/stale_reads"),
                ("evictions", "/evictions"),
            ],
        );
    }
    if s.get("projections").is_some() {
        o.push_str("<h3>Projections (CQRS read models)</h3>\n");
        table(
            &mut o,
            &s["projections"],
            "projection",
            &[
                ("applied", "/applied"),
                ("max behind", "/max_behind"),
                ("behind at end", "/behind_at_end"),
                ("caught up at s", "/caught_up_at_s"),
                ("lag p99 ms", "/lag_ms/p99"),
                ("reads", "/reads"),
                ("stale reads", "/stale_reads"),
                ("staleness p99 ms", "/staleness_ms/p99"),
            ],
        );
    }
    if s.get("sagas").is_some() {
        o.push_str("<h3>Sagas</h3>\n");
        table(
            &mut o,
            &s["sagas"],
            "saga",
            &[
                ("started", "/started"),
                ("completed", "/completed"),
                ("compensated", "/compensated"),
                ("failed", "/failed"),
                ("stuck", "/stuck"),
                ("consistent", "/consistent"),
                ("inconsistent", "/inconsistent"),
                ("p99 ms", "/duration_ms/p99"),
            ],
        );
    }
    o.push_str("<h2 id=\"charts\">Charts</h2>\n");
    for c in charts {
        let _ = writeln!(
            o,
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{} <a href=\"{}\">{}</a></figcaption></figure>",
            img(dir, &c.file)?,
            esc(&c.caption),
            esc(&c.caption),
            esc(&c.file),
            esc(&c.file)
        );
    }
    o.push_str("<h2 id=\"traces\">Traces</h2>\n");
    let kept = d.traces.len();
    let _ = writeln!(
        o,
        "<p>{kept} trace(s) kept ({} roots traced). Open <a href=\"traces.json\">traces.json</a> in <a href=\"https://ui.perfetto.dev\">Perfetto</a> or chrome://tracing; <a href=\"traces.otlp.json\">traces.otlp.json</a> is the same in OpenTelemetry's OTLP/JSON.</p>",
        num(&s["traces"]["traced"])
    );
    if has_waterfall {
        let _ = writeln!(
            o,
            "<figure><img src=\"{}\" alt=\"waterfall of the slowest traces\"><figcaption>The slowest traces, one row per attempt.</figcaption></figure>",
            img(dir, "waterfall.svg")?
        );
    }
    o.push_str("<h2 id=\"graph\">Call graph</h2>\n");
    if has_graph {
        let _ = writeln!(
            o,
            "<figure><img src=\"{}\" alt=\"call graph\"><figcaption>Services, replicas and calls with their timeouts, retries and breakers (<code>faultline graph</code> prints DOT).</figcaption></figure>",
            img(dir, "graph.svg")?
        );
    }
    let _ = writeln!(
        o,
        "<h2 id=\"analysis\">Static analysis</h2>\n<pre>{}</pre>",
        esc(analysis)
    );
    let _ = writeln!(
        o,
        "<h2 id=\"scenario\">Scenario</h2>\n<pre>{}</pre>",
        esc(&d.scenario_text)
    );
    o.push_str("</body></html>\n");
    Ok(o)
}
