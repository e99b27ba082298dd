//! Trace files: Chrome trace-event JSON (Perfetto, chrome://tracing), OpenTelemetry
//! (OTLP/JSON) and a waterfall SVG of the slowest traces.
//!
//! `traces.json` is the canonical form: every span's fields are in its `args`, so
//! `faultline report DIR` reads the traces back from it without re-running.

use crate::results::trace::{Trace, NONE};
use crate::results::RunResult;
use crate::scenario::Scenario;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// A span with its names resolved, as written to and read from `traces.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanView {
    /// Index in its trace (0: the root).
    pub span_id: u32,
    /// Parent index (None: the root).
    pub parent: Option<u32>,
    /// Callee service.
    pub service: String,
    /// Instance within the service (None: nothing was sent).
    pub instance: Option<u32>,
    /// Endpoint name ("" when nothing was sent).
    pub operation: String,
    /// Attempt number of its call.
    pub attempt: u32,
    /// Start, ns since the simulation began.
    pub start_ns: u64,
    /// End, ns (the trace's end when the span never closed).
    pub end_ns: u64,
    /// ok, error, timeout, rejected, refused, circuit_open, connect_failure, rate_limited, open.
    pub outcome: String,
    /// The server's side, ns: the request reached its instance (None: it never did).
    pub arrived_ns: Option<u64>,
    /// Its first work began (the queue wait is `work_start_ns - arrived_ns`).
    pub work_start_ns: Option<u64>,
    /// The instance sent its answer (it can be after `end_ns`: the caller gave up first).
    pub answered_ns: Option<u64>,
}

impl SpanView {
    /// The time in the callee, arrival to answer (to the span's end if the instance
    /// never answered, e.g. it crashed), or None if the request never arrived.
    pub fn server(&self) -> Option<(u64, u64)> {
        let a = self.arrived_ns?;
        Some((a, self.answered_ns.unwrap_or(self.end_ns.max(a))))
    }
}

/// A kept trace with names resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceView {
    /// Trace number.
    pub id: u64,
    /// Workload that sent the root.
    pub workload: String,
    /// Why it was kept (slowest, failed, sampled).
    pub kept_for: Vec<String>,
    /// Spans, the root first.
    pub spans: Vec<SpanView>,
}

impl TraceView {
    /// Root duration, ns.
    pub fn duration_ns(&self) -> u64 {
        self.spans[0].end_ns - self.spans[0].start_ns
    }
}

/// Resolves the names of a run's traces.
pub fn views(scn: &Scenario, result: &RunResult) -> Vec<TraceView> {
    let spec = &scn.spec;
    result
        .traces
        .iter()
        .map(|t: &Trace| {
            let end = t.spans[0].end;
            TraceView {
                id: t.id,
                workload: spec.workloads[t.workload as usize].name.clone(),
                kept_for: t.kept_for.iter().map(|s| s.to_string()).collect(),
                spans: t
                    .spans
                    .iter()
                    .enumerate()
                    .map(|(k, s)| {
                        let svc = &spec.services[s.service as usize];
                        SpanView {
                            span_id: k as u32,
                            parent: (s.parent != NONE).then_some(s.parent),
                            service: svc.name.clone(),
                            instance: (s.instance != NONE).then_some(s.instance),
                            operation: if s.endpoint == NONE {
                                String::new()
                            } else {
                                svc.endpoints[s.endpoint as usize].name.clone()
                            },
                            attempt: s.attempt,
                            start_ns: s.start.0,
                            end_ns: if s.end == crate::time::SimTime::MAX {
                                end.0
                            } else {
                                s.end.0
                            },
                            outcome: s.outcome.to_string(),
                            arrived_ns: known(s.arrived),
                            work_start_ns: known(s.work_started),
                            answered_ns: known(s.answered),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

fn known(t: crate::time::SimTime) -> Option<u64> {
    (t != crate::time::SimTime::MAX).then_some(t.0)
}

fn span_label(s: &SpanView) -> String {
    let mut l = s.service.clone();
    if let Some(i) = s.instance {
        let _ = write!(l, "/{i}");
    }
    if !s.operation.is_empty() && s.operation != "default" {
        let _ = write!(l, " {}", s.operation);
    }
    if s.attempt > 1 {
        let _ = write!(l, " (attempt {})", s.attempt);
    }
    l
}

/// The Chrome trace-event document: one process per trace, one thread row per span.
/// Inside a span's slice, nested slices show its time in the callee ("in `<service>`",
/// cut at the span's end; the args have the true answer time) and the queue wait in it.
pub fn chrome_json(scenario: &str, seed: u64, traces: &[TraceView]) -> Value {
    let mut events = Vec::new();
    for t in traces {
        let pid = t.id;
        events.push(json!({
            "name": "process_name", "ph": "M", "pid": pid, "tid": 0,
            "args": { "name": format!(
                "trace {}: {}, {:.3} ms ({})",
                t.id, t.workload, t.duration_ns() as f64 / 1e6, t.kept_for.join(", ")
            )},
        }));
        events.push(json!({
            "name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
            "args": { "sort_index": t.id },
        }));
        for s in &t.spans {
            let tid = s.span_id + 1;
            events.push(json!({
                "name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                "args": { "name": span_label(s) },
            }));
            events.push(json!({
                "name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                "args": { "sort_index": tid },
            }));
            events.push(json!({
                "name": span_label(s),
                "cat": s.outcome,
                "ph": "X",
                "pid": pid,
                "tid": tid,
                "ts": s.start_ns as f64 / 1e3,
                "dur": (s.end_ns - s.start_ns) as f64 / 1e3,
                "args": {
                    "trace_id": t.id,
                    "span_id": s.span_id,
                    "parent_id": s.parent,
                    "workload": t.workload,
                    "kept_for": t.kept_for,
                    "service": s.service,
                    "instance": s.instance,
                    "operation": s.operation,
                    "attempt": s.attempt,
                    "start_ns": s.start_ns,
                    "end_ns": s.end_ns,
                    "outcome": s.outcome,
                    "arrived_ns": s.arrived_ns,
                    "work_start_ns": s.work_start_ns,
                    "answered_ns": s.answered_ns,
                },
            }));
            if let Some((a, b)) = s.server() {
                let b = b.min(s.end_ns).max(a);
                events.push(json!({
                    "name": format!("in {}", s.service), "cat": "server", "ph": "X",
                    "pid": pid, "tid": tid,
                    "ts": a as f64 / 1e3, "dur": (b - a) as f64 / 1e3,
                    "args": { "answered_after_caller_ended": s.answered_ns.is_some_and(|x| x > s.end_ns) },
                }));
                if let Some(w) = s.work_start_ns.filter(|&w| w > a) {
                    let w = w.min(b);
                    events.push(json!({
                        "name": "queued", "cat": "queued", "ph": "X",
                        "pid": pid, "tid": tid,
                        "ts": a as f64 / 1e3, "dur": (w - a) as f64 / 1e3,
                        "args": {},
                    }));
                }
            }
        }
    }
    json!({
        "displayTimeUnit": "ms",
        "otherData": { "generator": "faultline", "scenario": scenario, "seed": seed,
            "time": "virtual: microseconds since the simulation began" },
        "traceEvents": events,
    })
}

/// Reads the traces back from a Chrome trace-event document written by [`chrome_json`].
pub fn from_chrome(doc: &Value) -> Result<Vec<TraceView>, String> {
    let events = doc["traceEvents"]
        .as_array()
        .ok_or("no traceEvents array")?;
    let mut traces: Vec<TraceView> = Vec::new();
    // Server and queue slices nest inside their span; the span's args hold their times.
    let spans = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] != "server" && e["cat"] != "queued");
    for e in spans {
        let a = &e["args"];
        let num = |k: &str| a[k].as_u64().ok_or(format!("span without a numeric {k}"));
        let text = |k: &str| {
            a[k].as_str()
                .map(str::to_string)
                .ok_or(format!("span without {k}"))
        };
        let id = num("trace_id")?;
        let span = SpanView {
            span_id: num("span_id")? as u32,
            parent: a["parent_id"].as_u64().map(|p| p as u32),
            service: text("service")?,
            instance: a["instance"].as_u64().map(|i| i as u32),
            operation: text("operation")?,
            attempt: num("attempt")? as u32,
            start_ns: num("start_ns")?,
            end_ns: num("end_ns")?,
            outcome: text("outcome")?,
            arrived_ns: a["arrived_ns"].as_u64(),
            work_start_ns: a["work_start_ns"].as_u64(),
            answered_ns: a["answered_ns"].as_u64(),
        };
        match traces.last_mut() {
            Some(t) if t.id == id => t.spans.push(span),
            _ => traces.push(TraceView {
                id,
                workload: text("workload")?,
                kept_for: a["kept_for"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                spans: vec![span],
            }),
        }
    }
    Ok(traces)
}

/// The OpenTelemetry document (OTLP/JSON `resourceSpans`, one resource per service).
/// Timestamps are virtual: nanoseconds since the simulation began.
///
/// Each attempt is a CLIENT span (the caller's view, in the callee's resource) and, if
/// the request reached its instance, a SERVER span under it (arrival to answer, with the
/// queue wait as an attribute); the calls a handler made are children of its SERVER span,
/// as an instrumented service would report them.
pub fn otel_json(traces: &[TraceView]) -> Value {
    let mut services: Vec<&str> = traces
        .iter()
        .flat_map(|t| t.spans.iter().map(|s| s.service.as_str()))
        .collect();
    services.sort_unstable();
    services.dedup();
    // Spans per trace are at most 100 000 (< 2^19): bit 19 marks a server span.
    let span_id = |t: u64, s: u32| format!("{:016x}", (t << 20) | (s as u64 + 1));
    let server_id = |t: u64, s: u32| format!("{:016x}", (t << 20) | (1 << 19) | (s as u64 + 1));
    let resource_spans: Vec<Value> = services
        .iter()
        .map(|&svc| {
            let spans: Vec<Value> = traces
                .iter()
                .flat_map(|t| {
                    t.spans.iter().filter(|s| s.service == svc).flat_map(move |s| {
                        let mut attrs = vec![
                            json!({"key": "faultline.attempt", "value": {"intValue": s.attempt.to_string()}}),
                            json!({"key": "faultline.outcome", "value": {"stringValue": s.outcome}}),
                            json!({"key": "faultline.workload", "value": {"stringValue": t.workload}}),
                        ];
                        if let Some(i) = s.instance {
                            attrs.push(json!({"key": "service.instance.id", "value": {"stringValue": format!("{svc}/{i}")}}));
                        }
                        let name = if s.operation.is_empty() { svc.to_string() } else { format!("{svc} {}", s.operation) };
                        // A call's parent is the server span of the handler that made it.
                        let parent = s.parent.map(|p| {
                            let made_in = &t.spans[p as usize];
                            if made_in.arrived_ns.is_some() { server_id(t.id, p) } else { span_id(t.id, p) }
                        });
                        let mut out = vec![json!({
                            "traceId": format!("{:032x}", t.id),
                            "spanId": span_id(t.id, s.span_id),
                            "parentSpanId": parent.unwrap_or_default(),
                            "name": name,
                            // CLIENT: the caller's view (the root: the workload's client).
                            "kind": 3,
                            "startTimeUnixNano": s.start_ns.to_string(),
                            "endTimeUnixNano": s.end_ns.to_string(),
                            "attributes": attrs,
                            "status": { "code": if s.outcome == "ok" { 1 } else { 2 } },
                        })];
                        if let Some((a, b)) = s.server() {
                            let queued = s.work_start_ns.map_or(0, |w| w.saturating_sub(a));
                            out.push(json!({
                                "traceId": format!("{:032x}", t.id),
                                "spanId": server_id(t.id, s.span_id),
                                "parentSpanId": span_id(t.id, s.span_id),
                                "name": name,
                                "kind": 2,
                                "startTimeUnixNano": a.to_string(),
                                "endTimeUnixNano": b.to_string(),
                                "attributes": [
                                    {"key": "faultline.queue_wait_ns", "value": {"intValue": queued.to_string()}},
                                    {"key": "faultline.answered", "value": {"boolValue": s.answered_ns.is_some()}},
                                ],
                                // Unset: the server's own verdict is not recorded, only the caller's.
                                "status": { "code": 0 },
                            }));
                        }
                        out
                    })
                })
                .collect();
            json!({
                "resource": { "attributes": [
                    {"key": "service.name", "value": {"stringValue": svc}},
                ]},
                "scopeSpans": [{
                    "scope": { "name": "faultline", "version": super::VERSION },
                    "spans": spans,
                }],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

/// The colour of an outcome, the same in every chart.
pub fn outcome_colour(outcome: &str) -> (u8, u8, u8) {
    match outcome {
        "ok" => (44, 160, 44),
        "error" => (214, 39, 40),
        "timeout" => (255, 127, 14),
        "rejected" | "rate_limited" | "shed" => (148, 103, 189),
        "circuit_open" | "refused" => (127, 127, 127),
        "connect_failure" => (227, 119, 194),
        _ => (23, 190, 207),
    }
}

/// Escapes text for SVG and HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Depth of each span (the root 0).
fn depths(t: &TraceView) -> Vec<usize> {
    let mut d = vec![0usize; t.spans.len()];
    for (k, s) in t.spans.iter().enumerate() {
        if let Some(p) = s.parent {
            d[k] = d.get(p as usize).copied().unwrap_or(0) + 1;
        }
    }
    d
}

/// A waterfall SVG of the `n` slowest traces, stacked: one row per span, bars coloured
/// by outcome, durations written beside them. A pale bar is the caller's view (send to
/// answer); inside it, the solid part is the time in the callee (arrival to answer) and
/// the grey part at its start the queue wait, so the rest of the pale bar is network.
pub fn waterfall_svg(traces: &[TraceView], n: usize) -> Option<String> {
    let mut slowest: Vec<&TraceView> = traces.iter().collect();
    slowest.sort_by_key(|t| (std::cmp::Reverse(t.duration_ns()), t.id));
    slowest.truncate(n);
    if slowest.is_empty() {
        return None;
    }
    const W: f64 = 960.0;
    const LABEL: f64 = 300.0;
    const ROW: f64 = 18.0;
    const HEAD: f64 = 44.0;
    let bar_w = W - LABEL - 90.0;
    let rows: usize = slowest.iter().map(|t| t.spans.len()).sum();
    let height = 30.0 + slowest.len() as f64 * (HEAD + 10.0) + rows as f64 * ROW;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="10" y="20" font-size="15" font-weight="bold">Slowest traces: each row an attempt; pale: send to answer, solid: in the callee, grey: queued there</text>"#
    );
    let mut y = 30.0;
    for t in slowest {
        let (t0, total) = (t.spans[0].start_ns, t.duration_ns().max(1) as f64);
        let _ = writeln!(
            o,
            r#"<text x="10" y="{}" font-size="13" font-weight="bold">trace {} ({}): {}, {:.1} ms, root {}</text>"#,
            y + 16.0,
            t.id,
            esc(&t.kept_for.join(", ")),
            esc(&t.workload),
            total / 1e6,
            esc(&t.spans[0].outcome)
        );
        // A time axis: four ticks across the bar area.
        for k in 0..=4 {
            let x = LABEL + bar_w * k as f64 / 4.0;
            let _ = writeln!(
                o,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#555">{:.1} ms</text>"##,
                y + HEAD - 8.0,
                y + HEAD + t.spans.len() as f64 * ROW,
                y + HEAD - 12.0,
                total / 1e6 * k as f64 / 4.0
            );
        }
        y += HEAD;
        let depth = depths(t);
        for (s, d) in t.spans.iter().zip(depth) {
            let mut label = format!("{}{}", "  ".repeat(d.min(8)), span_label(s));
            if label.chars().count() > 46 {
                label = label.chars().take(45).collect::<String>() + "…";
            }
            let x = LABEL + bar_w * (s.start_ns - t0) as f64 / total;
            let w = (bar_w * (s.end_ns - s.start_ns) as f64 / total).max(1.5);
            let (r, g, b) = outcome_colour(&s.outcome);
            let at =
                |ns: u64| LABEL + bar_w * (ns.clamp(t0, t0 + total as u64) - t0) as f64 / total;
            let mut inner = String::new();
            if let Some((a, e)) = s.server() {
                let (xa, xe) = (at(a), at(e));
                let _ = write!(
                    inner,
                    r#"<rect x="{xa:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="rgb({r},{g},{b})"><title>in {} {:.3} ms</title></rect>"#,
                    y + 3.0,
                    (xe - xa).max(1.0),
                    ROW - 6.0,
                    esc(&s.service),
                    (e - a) as f64 / 1e6
                );
                if let Some(q) = s.work_start_ns.filter(|&q| q > a) {
                    let _ = write!(
                        inner,
                        r##"<rect x="{xa:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#999"><title>queued {:.3} ms</title></rect>"##,
                        y + 3.0,
                        (at(q) - xa).max(0.5),
                        ROW - 6.0,
                        (q - a) as f64 / 1e6
                    );
                }
            }
            let took = format!(
                "{:.1} ms {}",
                (s.end_ns - s.start_ns) as f64 / 1e6,
                if s.outcome == "ok" {
                    ""
                } else {
                    s.outcome.as_str()
                }
            );
            // After the bar when it fits (about 6 px a character at 10 px), else ending at
            // the right edge, over the bar's end.
            let fits = x + w + 4.0 + 6.0 * took.chars().count() as f64 <= W - 4.0;
            let (tx, anchor) = if fits {
                (x + w + 4.0, "start")
            } else {
                (W - 4.0, "end")
            };
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" xml:space="preserve">{}</text><rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="rgb({r},{g},{b})" fill-opacity="0.35"><title>{} {} {:.3} ms</title></rect>{inner}<text x="{tx:.1}" y="{:.1}" font-size="10" text-anchor="{anchor}">{}</text>"#,
                10.0,
                y + 13.0,
                esc(&label),
                y + 3.0,
                ROW - 6.0,
                esc(&span_label(s)),
                esc(&s.outcome),
                (s.end_ns - s.start_ns) as f64 / 1e6,
                y + 13.0,
                esc(took.trim_end())
            );
            y += ROW;
        }
        y += 10.0;
    }
    o.push_str("</svg>\n");
    Some(o)
}
