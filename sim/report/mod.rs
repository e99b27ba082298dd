//! Output files: `summary.json`, `manifest.json`, `timeseries.csv` and `events.csv` (see DESIGN.md's output contract).

pub mod charts;
pub mod data;
pub mod html;
pub mod plot;
pub mod traces;

use crate::metrics::{InstanceRow, LatencyMs, SeriesRow, Sink, StateEvent};
use crate::results::{insights, EdgeStats, RunResult};
use crate::scenario::{analysis, Scenario};
use serde_json::{json, Map, Value};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::results::manifest::Manifest;
pub use crate::results::manifest::VERSION;

/// Streams time-series rows and state changes to CSV files as the run produces them.
pub struct CsvSink {
    series: csv::Writer<BufWriter<File>>,
    events: csv::Writer<BufWriter<File>>,
    instances: csv::Writer<BufWriter<File>>,
    error: Option<csv::Error>,
}

impl CsvSink {
    /// Creates `timeseries.csv`, `events.csv` and `instances.csv` in `dir`.
    pub fn create(dir: &Path) -> io::Result<Self> {
        let open = |name: &str| -> io::Result<csv::Writer<BufWriter<File>>> {
            Ok(csv::Writer::from_writer(BufWriter::new(File::create(
                dir.join(name),
            )?)))
        };
        // instances.csv has its header even when no service has several instances.
        let mut instances = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(File::create(dir.join("instances.csv"))?));
        instances.write_record(["t_s", "service", "instance", "requests", "in_flight"])?;
        Ok(CsvSink {
            series: open("timeseries.csv")?,
            events: open("events.csv")?,
            instances,
            error: None,
        })
    }

    /// Flushes both files, returning the first write error met during the run.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(io::Error::other(e));
        }
        self.series.flush()?;
        self.instances.flush()?;
        self.events.flush()
    }
}

impl Sink for CsvSink {
    fn series(&mut self, row: &SeriesRow) {
        if self.error.is_none() {
            if let Err(e) = self.series.serialize(row) {
                self.error = Some(e);
            }
        }
    }
    fn event(&mut self, event: &StateEvent) {
        if self.error.is_none() {
            if let Err(e) = self.events.serialize(event.row()) {
                self.error = Some(e);
            }
        }
    }
    fn instance(&mut self, row: &InstanceRow) {
        if self.error.is_none() {
            if let Err(e) = self.instances.serialize(row) {
                self.error = Some(e);
            }
        }
    }
}

/// Rounds to 6 decimals: enough for nanoseconds in ms and keeps the JSON readable.
fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn latency_json(l: &LatencyMs) -> Value {
    json!({
        "min": r6(l.min), "mean": r6(l.mean), "p50": r6(l.p50), "p90": r6(l.p90),
        "p99": r6(l.p99), "p999": r6(l.p999), "max": r6(l.max),
    })
}

/// The `summary.json` document of a run.
pub fn summary_json(scn: &Scenario, result: &RunResult) -> Value {
    let spec = &scn.spec;
    let mut workloads = Map::new();
    for w in &result.workloads {
        let c = &w.counts;
        let done = c.ok + c.failed();
        workloads.insert(
            w.name.clone(),
            json!({
                "sent": c.requests,
                "ok": c.ok,
                "failed": c.failed(),
                "errors": c.errors,
                "rejected": c.rejected,
                "timeouts": c.timeouts,
                "pending_at_end": w.pending_at_end,
                "error_rate": if done > 0 { r6(c.failed() as f64 / done as f64) } else { 0.0 },
                "latency_ms": latency_json(&w.latency),
            }),
        );
    }
    let mut services = Map::new();
    for s in &result.services {
        let c = &s.counts;
        services.insert(
            s.name.clone(),
            json!({
                "requests": c.requests,
                "ok": c.ok,
                "errors": c.errors,
                "rejected": c.rejected,
                "timeouts": c.timeouts,
                "retries": s.retries,
                "utilization": r6(s.utilization),
                "queue_wait_ms": { "mean": r6(s.queue_wait.mean), "p99": r6(s.queue_wait.p99) },
                "latency_ms": latency_json(&s.latency),
                "wasted_work_ms": r6(s.wasted_work_ms),
                "in_system_mean": r6(s.in_system_mean),
                "dropped": {
                    "rate_limited": s.drops.rate_limited,
                    "concurrency_limited": s.drops.concurrency_limited,
                    "shed": s.drops.shed,
                    "expired": s.drops.expired,
                },
            }),
        );
        if let Some(n) = s.conflicts {
            services[&s.name]["conflicts"] = json!(n);
        }
        if s.instances.len() > 1 {
            services[&s.name]["instances"] = instances_json(&s.name, &s.instances);
        }
        if let Some(c) = s.canary {
            services[&s.name]["canary"] = json!({
                "final_weight": c.weight_pct,
                "rolled_back_at_s": c.rolled_back_at_s.map(r6),
                "requests": c.requests,
                "failed": c.failed,
            });
        }
        if let Some(e) = s.events {
            services[&s.name]["events"] = json!({
                "committed": e.committed,
                "published": e.published,
                "lost": e.lost,
                "outbox_max_backlog": e.outbox_max,
                "republished": e.republished,
            });
        }
        if let Some(r) = s.rollout {
            services[&s.name]["rollout"] = json!({
                "started_at_s": r.started_at_s.map(r6),
                "finished_at_s": r.finished_at_s.map(r6),
                "replaced": r.replaced,
            });
        }
        if let Some(sc) = s.scaling {
            services[&s.name]["replicas"] = json!({
                "final": sc.instances_at_end,
                "max": sc.instances_max,
                "scale_ups": sc.scale_ups,
                "scale_downs": sc.scale_downs,
            });
        }
        if let Some(n) = s.registry_changes {
            services[&s.name]["registry_changes"] = json!(n);
        }
        if let Some(p) = &s.proxy {
            let pass = |p: &crate::results::ProxyPass| {
                json!({
                    "requests": p.requests,
                    "overloaded": p.overloaded,
                    "utilization": r6(p.utilization),
                })
            };
            services[&s.name]["proxy"] = json!({
                "outbound": pass(&p.outbound),
                "inbound": pass(&p.inbound),
                "denied": p.denied,
                "unreachable": p.unreachable,
                "handshakes": p.handshakes,
            });
        }
        if !s.concurrency_limit.is_empty() {
            services[&s.name]["concurrency_limit"] = json!(s.concurrency_limit);
        }
        if let Some(levels) = &s.criticality {
            let by_level: Map<String, Value> = crate::policy::criticality::Criticality::ALL
                .iter()
                .zip(levels)
                .map(|(l, c)| {
                    (
                        l.name().to_string(),
                        json!({
                            "requests": c.requests,
                            "ok": c.ok,
                            "errors": c.errors,
                            "rejected": c.rejected,
                        }),
                    )
                })
                .collect();
            services[&s.name]["criticality"] = Value::Object(by_level);
        }
    }
    let mut edges = Map::new();
    for e in &result.edges {
        let st = &e.stats;
        let mut v = call_counts(st);
        if e.sites.len() > 1 {
            // Several call sites share the pair: each one's own figures (the edge's are
            // their sum), so a saga's compensations do not blur a plain call's amplification.
            let sites: Map<String, Value> = e
                .sites
                .iter()
                .map(|s| (s.name.clone(), call_counts(&s.stats)))
                .collect();
            v["sites"] = Value::Object(sites);
        }
        if spec.registry.is_some() {
            v["failed_refreshes"] = json!(st.failed_refreshes);
        }
        if let Some(ejected) = e.ejected_at_end {
            v["outlier"] = json!({
                "ejections": st.ejections,
                "overflows": st.ejection_overflows,
                "ejected_at_end": ejected,
                "panic_picks": st.panic_picks,
            });
        }
        if let Some(limit) = e.concurrency_limit {
            v["concurrency_limit"] = json!(limit);
        }
        if let Some(c) = &e.connections {
            let s = &c.stats;
            let requests = s.opened + s.reused;
            v["connections"] = json!({
                "opened": s.opened,
                "reused": s.reused,
                "requests_per_connection": if s.opened > 0 { r6(requests as f64 / s.opened as f64) } else { 0.0 },
                "mtls": c.mtls,
                "closed": {
                    "max_requests": s.closed_limit,
                    "idle": s.closed_idle,
                    "reset": s.closed_reset,
                    "churn": s.closed_churn,
                },
                "open_at_end": c.open_at_end,
            });
        }
        if let Some(&first) = e.breaker_states.first() {
            // Per caller instance the breakers may end in different states: "mixed".
            let same = e.breaker_states.iter().all(|&s| s == first);
            v["breaker"] = json!({
                "final_state": if same { json!(first) } else { json!("mixed") },
                "transitions": e.breaker_transitions,
                "time_open_s": r6(e.breaker_open_s),
            });
            if e.callers.is_some() {
                let open = e
                    .breaker_states
                    .iter()
                    .filter(|&&s| s == crate::policy::breaker::State::Open)
                    .count();
                v["breaker"]["open_at_end"] = json!(open);
            }
        }
        if let Some(n) = e.callers {
            v["callers"] = json!(n);
        }
        edges.insert(format!("{}->{}", e.from, e.to), v);
    }
    let mut brokers = Map::new();
    for (q, spec) in result.queues.iter().zip(&spec.queues) {
        let broker = &spec_name(spec.broker.0 as usize, scn);
        let entry = brokers
            .entry(broker.clone())
            .or_insert_with(|| json!({ "queues": {} }));
        let (st, c) = (&q.stats, &q.counters);
        entry["queues"][&q.name] = json!({
            "published": st.published,
            "refused": c.refused,
            "delivered": st.delivered,
            "redelivered": st.redelivered,
            "acked": st.acked,
            "stale_acks": st.stale_acks,
            "dead_lettered": st.dead_lettered,
            "dropped": st.dropped,
            "expired": st.expired,
            "duplicates": c.duplicates,
            "duplicates_skipped": c.skipped,
            "effects_applied": c.applied,
            "double_effects": c.double_effects,
            "ready_at_end": q.ready_at_end,
            "in_flight_at_end": q.in_flight_at_end,
            "present_at_end": q.present_at_end,
            "max_ready": c.max_ready,
            "max_oldest_age_s": r6(c.max_age_ms as f64 / 1e3),
            "publish_to_ack_ms": latency_json(&q.latency),
        });
        if !q.visible_within.is_empty() {
            let probes: Map<String, Value> = q
                .visible_within
                .iter()
                .map(|&(t, stored, visible)| {
                    let share = if stored > 0 {
                        r6(visible as f64 / stored as f64)
                    } else {
                        0.0
                    };
                    (t.to_string(), json!({ "share": share, "messages": stored }))
                })
                .collect();
            entry["queues"][&q.name]["visible_within"] = Value::Object(probes);
        }
    }
    let mut doc = json!({
        "scenario": spec.name,
        "seed": spec.seed,
        "sim_duration_s": r6(result.end.as_secs_f64()),
        "warmup_s": r6(spec.warmup.as_secs_f64()),
        "events": result.events,
        "stop_reason": result.stop,
        "in_flight_at_end": result.in_flight_at_end,
        "network": { "messages": result.network_messages, "lost": result.network_lost },
        "workloads": workloads,
        "services": services,
        "edges": edges,
    });
    if !brokers.is_empty() {
        doc["brokers"] = Value::Object(brokers);
    }
    if let Some(budget) = scn.raw.sim.latency_budget {
        // `validate`'s hop arithmetic beside the run, so `[[expect]]` can hold both.
        let mut per = Map::new();
        for w in &spec.workloads {
            let h = crate::scenario::analysis::hop_budget(spec, w, budget);
            per.insert(
                w.name.clone(),
                json!({
                    "ratio": r6(h.ratio),
                    "article_ratio": r6(h.article_ratio),
                    "hops_fit": h.hops_fit,
                    "deepest_hops": h.deepest_hops,
                    "fits": h.deepest_hops as u64 <= h.hops_fit,
                }),
            );
        }
        doc["latency_budget"] =
            json!({ "budget_ms": r6(budget.as_secs_f64() * 1e3), "workloads": per });
    }
    let mut sagas = Map::new();
    for s in &result.sagas {
        let mut steps = Map::new();
        for e in &s.steps {
            steps.insert(
                e.name.clone(),
                json!({
                    "applied": e.applied,
                    "compensated": e.compensated,
                    "applied_twice": e.applied_twice,
                    "undone_twice": e.undone_twice,
                    "leaked": e.leaked,
                    "missing": e.missing,
                }),
            );
        }
        sagas.insert(
            s.name.clone(),
            json!({
                "started": s.started,
                "completed": s.completed,
                "compensated": s.compensated,
                "failed": s.failed,
                "stuck": s.stuck,
                "running_at_end": s.running_at_end,
                "refused": s.refused,
                "consistent": s.consistent,
                "inconsistent": s.inconsistent,
                "effects": steps,
                "disagreement_ms": latency_json(&s.disagreement),
                "duration_ms": latency_json(&s.duration),
            }),
        );
    }
    if !sagas.is_empty() {
        doc["sagas"] = Value::Object(sagas);
    }
    let mut caches = Map::new();
    for c in &result.caches {
        let lookups = c.hits + c.misses + c.coalesced;
        caches.insert(
            c.name.clone(),
            json!({
                "lookups": lookups,
                "hits": c.hits,
                "hit_ratio": r6(if lookups > 0 { c.hits as f64 / lookups as f64 } else { 0.0 }),
                "stale_hits": c.stale_hits,
                "misses": c.misses,
                "coalesced": c.coalesced,
                "refreshes": c.refreshes,
                "fetch_failures": c.fetch_failures,
                "stale_reads": c.stale_reads,
                "fills": c.fills,
                "evictions": c.evictions,
                "invalidations": c.invalidations,
                "entries_at_end": c.entries_at_end,
            }),
        );
    }
    if !caches.is_empty() {
        doc["caches"] = Value::Object(caches);
    }
    if !result.migrations.is_empty() {
        let migrations: Map<String, Value> = result
            .migrations
            .iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    json!({
                        "final_weight": c.weight_pct,
                        "rolled_back_at_s": c.rolled_back_at_s.map(r6),
                        "to_new": c.requests,
                        "failed_at_new": c.failed,
                    }),
                )
            })
            .collect();
        doc["migrations"] = Value::Object(migrations);
    }
    if !result.transactions.is_empty() {
        let txs: Map<String, Value> = result
            .transactions
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    json!({
                        "started": t.started,
                        "committed": t.committed,
                        "aborted": t.aborted,
                        "blocked": t.blocked,
                        "lock_conflicts": t.lock_conflicts,
                        "refused": t.refused,
                        "resends": t.resends,
                        "running_at_end": t.running_at_end,
                        "locks_at_end": t.locks_at_end,
                        "in_doubt_ms": latency_json(&t.in_doubt),
                        "duration_ms": latency_json(&t.duration),
                    }),
                )
            })
            .collect();
        doc["transactions"] = Value::Object(txs);
    }
    if !result.recovery.is_empty() {
        let opt = |x: Option<f64>| x.map_or(Value::Null, |v| json!(v));
        let windows: Map<String, Value> = result
            .recovery
            .iter()
            .map(|(w, per)| {
                let workloads: Map<String, Value> = per
                    .iter()
                    .map(|(name, r)| {
                        (
                            name.clone(),
                            json!({
                                "goodput_before": opt(r.goodput_before),
                                "p99_before_ms": opt(r.p99_before_ms),
                                "recovered": r.after_s.is_some(),
                                "after_s": opt(r.after_s),
                            }),
                        )
                    })
                    .collect();
                (
                    w.key.clone(),
                    json!({
                        "kind": w.kind,
                        "what": w.what,
                        "from_s": w.from_s,
                        "to_s": w.to_s,
                        "workloads": workloads,
                    }),
                )
            })
            .collect();
        doc["recovery"] = Value::Object(windows);
    }
    if let Some(r) = &result.registry {
        let ops: Map<String, Value> = r
            .ops
            .iter()
            .map(|(name, n)| {
                (
                    name.to_string(),
                    json!({
                        "sent": n.sent,
                        "ok": n.ok,
                        "errors": n.errors,
                        "timeouts": n.timeouts,
                    }),
                )
            })
            .collect();
        doc["registry"] = json!({ "service": r.service, "requests": ops });
    }
    if !result.event_stores.is_empty() {
        let stores: Map<String, Value> = result
            .event_stores
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    json!({
                        "appended": e.appended,
                        "refused_full": e.refused_full,
                        "events_at_end": e.events_at_end,
                    }),
                )
            })
            .collect();
        doc["event_stores"] = Value::Object(stores);
    }
    if !result.projections.is_empty() {
        let projections: Map<String, Value> = result
            .projections
            .iter()
            .map(|p| {
                let stale_share = if p.reads == 0 {
                    0.0
                } else {
                    p.stale_reads as f64 / p.reads as f64
                };
                (
                    p.name.clone(),
                    json!({
                        "started_at_s": p.started_at_s.map(r6),
                        "applied": p.applied,
                        "failures": p.failures,
                        "resends": p.resends,
                        "reapplied": p.reapplied,
                        "position": p.position,
                        "behind_at_end": p.behind_at_end,
                        "max_behind": p.max_behind,
                        "caught_up_at_s": p.caught_up_at_s.map(r6),
                        "lag_ms": latency_json(&p.lag),
                        "reads": p.reads,
                        "stale_reads": p.stale_reads,
                        "stale_share": r6(stale_share),
                        "staleness_ms": latency_json(&p.staleness),
                    }),
                )
            })
            .collect();
        doc["projections"] = Value::Object(projections);
    }
    if !result.hosts.is_empty() {
        let hosts: Map<String, Value> = result
            .hosts
            .iter()
            .map(|h| {
                (
                    h.name.clone(),
                    json!({
                        "cores": h.cores,
                        "zone": h.zone,
                        "instances": h.instances,
                        "requested_cpu": r6(h.requested_cpu),
                        "utilization": r6(h.utilization),
                        "load": r6(h.load),
                        "bursts": h.bursts,
                        "stretch": h.stretch.map(r6),
                    }),
                )
            })
            .collect();
        doc["hosts"] = Value::Object(hosts);
    }
    let t = &result.trace_stats;
    doc["traces"] = json!({
        "traced": t.traced,
        "kept": t.kept,
        "failed_not_kept": t.failed_not_kept,
    });
    doc
}

fn spec_name(s: usize, scn: &Scenario) -> String {
    scn.spec.services[s].name.clone()
}

/// The `manifest.json` document: what it takes to reproduce the run.
pub fn manifest_json(scn: &Scenario) -> Value {
    let m = Manifest::new(
        &scn.spec.name,
        &scn.file,
        scn.hash(),
        scn.spec.seed,
        &scn.overrides,
        serde_json::to_value(&scn.raw).expect("plain data serialises"),
    );
    serde_json::to_value(m).expect("plain data serialises")
}

/// Writes `value` as pretty JSON with a trailing newline, via a temporary file and a rename.
pub fn write_json(path: &Path, value: &Value) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = BufWriter::new(File::create(&tmp)?);
        serde_json::to_writer_pretty(&mut f, value)?;
        f.write_all(b"\n")?;
        f.flush()?;
    }
    std::fs::rename(tmp, path)
}

/// Writes `latency_cdf.csv`: per workload, points of its latency distribution.
fn write_cdf(dir: &Path, result: &RunResult) -> io::Result<()> {
    let mut w =
        csv::Writer::from_writer(BufWriter::new(File::create(dir.join("latency_cdf.csv"))?));
    w.write_record(["workload", "latency_ms", "fraction"])
        .map_err(io::Error::other)?;
    for wl in &result.workloads {
        for &(ms, q) in &wl.cdf {
            w.write_record([wl.name.clone(), r6(ms).to_string(), r6(q).to_string()])
                .map_err(io::Error::other)?;
        }
    }
    w.flush()
}

/// Writes JSON without indentation (trace files are large), with a trailing newline.
fn write_compact(path: &Path, value: &Value) -> io::Result<()> {
    let mut f = BufWriter::new(File::create(path)?);
    serde_json::to_writer(&mut f, value)?;
    f.write_all(b"\n")?;
    f.flush()
}

/// The files `render` writes besides the charts it lists.
pub const RENDERED: [&str; 3] = ["graph.svg", "waterfall.svg", "report.html"];

/// Rebuilds the charts, the call graph, the trace waterfall and `report.html` from the
/// files of a run directory, without running anything; returns the files written.
pub fn render(dir: &Path, png: bool) -> io::Result<Vec<String>> {
    let d = data::RunData::load(dir).map_err(io::Error::other)?;
    let scn = d.scenario().map_err(|e| {
        io::Error::other(format!(
            "the scenario in {} no longer validates: {e}",
            dir.display()
        ))
    })?;
    render_loaded(&d, &scn, dir, png)
}

/// [`render`] of a directory already read, with its scenario (a run that just wrote the
/// directory has it parsed already: a system of thousands of services need not be parsed
/// twice).
fn render_loaded(
    d: &data::RunData,
    scn: &Scenario,
    dir: &Path,
    png: bool,
) -> io::Result<Vec<String>> {
    let charts = charts::draw_all(d, dir, png)?;
    let mut files: Vec<String> = charts.iter().map(|c| c.file.clone()).collect();
    let graph = analysis::graph_svg(&scn.spec);
    std::fs::write(dir.join("graph.svg"), &graph)?;
    files.push("graph.svg".into());
    if png {
        plot::svg_to_png(&graph, &dir.join("graph.png"))?;
    }
    let waterfall = traces::waterfall_svg(&d.traces, 3);
    match &waterfall {
        Some(svg) => {
            std::fs::write(dir.join("waterfall.svg"), svg)?;
            files.push("waterfall.svg".into());
            if png {
                plot::svg_to_png(svg, &dir.join("waterfall.png"))?;
            }
        }
        None => {
            let _ = std::fs::remove_file(dir.join("waterfall.svg"));
            let _ = std::fs::remove_file(dir.join("waterfall.png"));
        }
    }
    let analysis = analysis::report(&scn.spec, scn.raw.sim.latency_budget);
    let page = html::page(d, dir, &charts, &analysis, true, waterfall.is_some())?;
    std::fs::write(dir.join("report.html"), page)?;
    files.push("report.html".into());
    Ok(files)
}

/// Writes every file of a finished run into `dir` besides the streamed CSVs: the
/// summary, the manifest, the scenario, the latency CDF, the traces, the charts and the
/// HTML report. Returns the insights' texts (what happened), in the summary's order.
pub fn write_outputs(
    scn: &Scenario,
    dir: &Path,
    result: &RunResult,
    png: bool,
) -> io::Result<Vec<String>> {
    write_json(&dir.join("manifest.json"), &manifest_json(scn))?;
    std::fs::write(dir.join("scenario.toml"), &scn.text)?;
    write_cdf(dir, result)?;
    let views = traces::views(scn, result);
    write_compact(
        &dir.join("traces.json"),
        &traces::chrome_json(&scn.spec.name, scn.spec.seed, &views),
    )?;
    write_compact(&dir.join("traces.otlp.json"), &traces::otel_json(&views))?;
    let mut d = data::RunData::load_with_summary(dir, summary_json(scn, result))
        .map_err(io::Error::other)?;
    // What happened, from the summary, series and events: into the summary, written once,
    // which the page then opens with.
    let name = |id: crate::ids::ServiceId| scn.spec.services[id.0 as usize].name.clone();
    let inversions: Vec<insights::Inversion> = analysis::timeout_inversions(&scn.spec)
        .into_iter()
        .map(|v| insights::Inversion {
            caller: name(v.caller),
            callee: name(v.callee),
            downstream: name(v.downstream),
            timeout_ms: v.timeout.as_secs_f64() * 1e3,
            may_take_ms: v.callee_may_take.as_secs_f64() * 1e3,
            bounded: v.bounded,
        })
        .collect();
    let found = insights::detect(
        &d.summary,
        &d.series,
        &d.events,
        &inversions,
        scn.spec.duration.as_secs_f64(),
    );
    d.summary["insights"] = Value::Array(
        found
            .iter()
            .map(|i| {
                json!({
                    "kind": i.kind,
                    "subject": i.subject,
                    "at_s": i.at_s,
                    "text": i.text,
                    "chart": chart_file(&i.chart),
                })
            })
            .collect(),
    );
    write_json(&dir.join("summary.json"), &d.summary)?;
    render_loaded(&d, scn, dir, png)?;
    Ok(found.into_iter().map(|i| i.text).collect())
}

/// The file of the chart that shows an insight.
fn chart_file(chart: &insights::Chart) -> String {
    match chart {
        insights::Chart::Throughput(w) => format!("throughput-{}.svg", plot::slug(w)),
        insights::Chart::Services => "services.svg".into(),
        insights::Chart::Amplification => "amplification.svg".into(),
        insights::Chart::Timeline => "timeline.svg".into(),
        insights::Chart::Brokers => "brokers.svg".into(),
        insights::Chart::Sagas => "sagas.svg".into(),
        insights::Chart::Projections => "projections.svg".into(),
        insights::Chart::Share(s) => format!("share-{}.svg", plot::slug(s)),
    }
}

/// The counters of the calls on an edge or at one call site, as `summary.json` writes them.
fn call_counts(st: &EdgeStats) -> Value {
    json!({
        "calls": st.calls,
        "attempts": st.attempts,
        "retries": st.retries,
        "hedges": st.hedges,
        "amplification": if st.calls > 0 { r6(st.attempts as f64 / st.calls as f64) } else { 0.0 },
        "ok": st.ok,
        "failed": st.failed,
        "breaker_rejected": st.breaker_rejected,
        "budget_denied": st.budget_denied,
        "bulkhead_rejected": st.bulkhead_rejected,
        "throttled": st.throttled,
        // The adaptive throttle's local rejections per call (SRE's client-side p).
        "throttled_rate": if st.calls > 0 { r6(st.throttled as f64 / st.calls as f64) } else { 0.0 },
        "limited": st.limited,
        "no_healthy_upstream": st.no_healthy_upstream,
        "fallbacks": st.fallbacks,
        "calls_to_dead": st.calls_to_dead,
        "responses": st.responses.named(),
    })
}

/// Instances listed one by one in `summary.json` at most; beyond, the most and least loaded.
pub const INSTANCES_LISTED: usize = 20;

/// A service's instances: how evenly requests spread over them (the coefficient of
/// variation and the busiest against the mean), and each one's figures (up to
/// `INSTANCES_LISTED`, else the five most and five least loaded by requests).
fn instances_json(service: &str, xs: &[crate::results::InstanceResult]) -> Value {
    let one = |k: usize| {
        let x = &xs[k];
        let c = &x.counts;
        (
            format!("{service}/{k}"),
            json!({
                "requests": c.requests,
                "ok": c.ok,
                "failed": c.errors + c.rejected + c.timeouts,
                "utilization": r6(x.utilization),
                "latency_mean_ms": r6(x.latency_mean_ms),
            }),
        )
    };
    let n = xs.len() as f64;
    let reqs: Vec<f64> = xs.iter().map(|x| x.counts.requests as f64).collect();
    let mean = reqs.iter().sum::<f64>() / n;
    let sd = (reqs.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    let max = reqs.iter().cloned().fold(0.0, f64::max);
    let mut v = json!({
        "count": xs.len(),
        "spread": {
            "requests_cv": if mean > 0.0 { r6(sd / mean) } else { 0.0 },
            "max_over_mean": if mean > 0.0 { r6(max / mean) } else { 0.0 },
        },
    });
    if xs.len() <= INSTANCES_LISTED {
        v["each"] = Value::Object((0..xs.len()).map(one).collect());
    } else {
        let mut order: Vec<usize> = (0..xs.len()).collect();
        // Most requests first; ties by index, so the listing is deterministic.
        order.sort_by(|&a, &b| reqs[b].total_cmp(&reqs[a]).then(a.cmp(&b)));
        v["most_loaded"] = Value::Object(order[..5].iter().map(|&k| one(k)).collect());
        v["least_loaded"] = Value::Object(
            order[xs.len() - 5..]
                .iter()
                .rev()
                .map(|&k| one(k))
                .collect(),
        );
    }
    v
}
