//! Brokers, queues and consumers through the whole model (POLICIES.md §16): at-least-once
//! delivery, visibility timeouts, dead letters, duplicates and idempotency.

mod common;

use common::run_file;
use faultline::metrics::{MemorySink, StateEvent};
use faultline::model::messaging::QueueResult;
use faultline::model::{RunOptions, RunResult, World};
use faultline::scenario;

fn run_text(text: &str, sets: &[&str]) -> (RunResult, Vec<StateEvent>) {
    common::run_text("t.toml", text, sets)
}

/// No message is lost silently: every copy stored is acknowledged, dead-lettered, dropped,
/// expired or still present.
fn accounted(q: &QueueResult) {
    let s = &q.stats;
    assert_eq!(
        s.published,
        s.acked + s.dead_lettered + s.dropped + s.expired + q.present_at_end,
        "{q:?}"
    );
}

/// scenarios/poison-message.toml: with a delivery limit, poison messages go to the dead-letter
/// queue after exactly max_deliveries tries and the rest flows; without, they loop and a
/// backlog builds.
#[test]
fn poison_messages_are_dead_lettered_or_starve_the_queue() {
    let f = "scenarios/poison-message.toml";
    let (r, events) = run_file(f, &[]);
    let q = &r.queues[0];
    accounted(q);
    let dead: Vec<&StateEvent> = events
        .iter()
        .filter(|e| e.kind() == "dead_letter")
        .collect();
    assert_eq!(dead.len() as u64, q.stats.dead_lettered);
    assert!(dead
        .iter()
        .all(|e| e.detail().contains("(poison) after 5 deliveries")));
    // One in 200 of ~18 000 messages is poison: 90 expected, sd 9.5; those published in the
    // last seconds are still being retried.
    assert!((60..=120).contains(&q.stats.dead_lettered), "{q:?}");
    // Each dead letter took 5 deliveries, the 4 last of them redeliveries.
    assert!(q.stats.redelivered >= 4 * q.stats.dead_lettered);
    assert_eq!(q.counters.max_ready, 0, "nothing waits: {q:?}");
    let (loop_, _) = run_file(f, &["queue.payments.max_deliveries=1000000"]);
    let l = &loop_.queues[0];
    accounted(l);
    assert_eq!(l.stats.dead_lettered, 0);
    assert!(l.stats.redelivered > 10 * q.stats.redelivered, "{l:?}");
    assert!(
        l.ready_at_end > 50 && l.counters.max_age_ms > 170_000,
        "{l:?}"
    );
    assert!(l.latency.p50 > 4.0 * q.latency.p50);
}

const SLOW_CONSUMER: &str = r#"
[sim]
name = "slow-consumer"
duration = "3m"
seed = 2

[network]
latency = { dist = "constant", value = "1ms" }

[[service]]
name = "orders"
replicas = 1
workers = 8
work = { dist = "constant", value = "1ms" }
calls = [{ publish = "jobs", timeout = "1s" }]

[[service]]
name = "bus"
replicas = 1
workers = 8
work = { dist = "constant", value = "100us" }

[[service]]
name = "worker"
replicas = 2
workers = 4
work = { dist = "constant", value = "40s" }
consumes = [{ queue = "jobs", concurrency = 1 IDEM }]

[[queue]]
name = "jobs"
broker = "bus"
visibility_timeout = "30s"

[[workload]]
name = "one"
target = "orders"
arrivals = { kind = "step", steps = [{ at = "0s", rate = 1 }, { at = "1s", rate = 0 }] }
"#;

/// §16 B2 through the model: a 40 s handler and a 30 s visibility timeout. The message is
/// redelivered at 30 s to the other consumer and handled twice: a duplicate, and a double
/// effect unless the consumer keeps an idempotency store.
#[test]
fn s16_b2_slow_handler_is_handled_twice_unless_idempotent() {
    let (r, _) = run_text(&SLOW_CONSUMER.replace(" IDEM", ""), &[]);
    let q = &r.queues[0];
    accounted(q);
    assert_eq!(q.stats.published, 1);
    // Delivered at 0 s, 30 s, 60 s, ...: the first handler (40 s) acks with a stale receipt,
    // the second (from 30 s) ends at 70 s, after its own timeout at 60 s: stale too.
    assert!(q.stats.redelivered >= 2, "{q:?}");
    assert!(q.stats.stale_acks >= 1, "{q:?}");
    assert!(q.counters.double_effects >= 1, "{q:?}");
    assert_eq!(q.counters.duplicates, q.counters.double_effects);
    let (r, _) = run_text(
        &SLOW_CONSUMER.replace(" IDEM", r#", idempotency_ttl = "1h""#),
        &[],
    );
    let q = &r.queues[0];
    accounted(q);
    assert_eq!(q.counters.double_effects, 0, "{q:?}");
    assert_eq!(q.counters.applied, 1);
    assert!(q.counters.skipped >= 1, "{q:?}");
}

/// §16 B1 through the model: an always-failing consumer with maxReceiveCount 3 sees the
/// message three times, 30 s apart (SQS: it just does not delete it), then it is
/// dead-lettered.
#[test]
fn s16_b1_always_failing_consumer_dead_letters_after_three() {
    let text = SLOW_CONSUMER
        .replace(" IDEM", "")
        .replace(
            "work = { dist = \"constant\", value = \"40s\" }",
            "work = { dist = \"constant\", value = \"10ms\" }\nerror_rate = 1.0",
        )
        .replace(
            "visibility_timeout = \"30s\"",
            "visibility_timeout = \"30s\"\nmax_deliveries = 3",
        );
    let (r, events) = run_text(&text, &[]);
    let q = &r.queues[0];
    accounted(q);
    assert_eq!((q.stats.delivered, q.stats.dead_lettered), (3, 1), "{q:?}");
    let dead = events.iter().find(|e| e.kind() == "dead_letter").unwrap();
    // Deliveries at ~0, 30 and 60 s; dead-lettered when the third times out at ~90 s.
    assert!((90.0..91.0).contains(&dead.t_s), "{}", dead.t_s);
}

/// Invariants over many seeds with crashes, retries and a failing consumer: nothing is lost
/// silently, and with idempotency no effect is applied twice.
#[test]
fn messages_are_never_lost_and_idempotency_holds_across_seeds() {
    let f = "scenarios/duplicate-delivery.toml";
    for seed in 1..=8 {
        let s = format!("sim.seed={seed}");
        for idem in [false, true] {
            let mut sets = vec![s.as_str()];
            if idem {
                sets.push("service.shipping.consumes[0].idempotency_ttl=\"1h\"");
            }
            let (r, _) = run_file(f, &sets);
            for q in &r.queues {
                accounted(q);
                if idem {
                    assert_eq!(q.counters.double_effects, 0, "seed {seed}: {q:?}");
                }
            }
        }
    }
}

/// scenarios/consumer-lag.toml: a slow broker cuts prefetch-bound consumers below the
/// arrival rate; the backlog builds at the difference and drains at the spare rate.
#[test]
fn consumer_lag_builds_and_drains_with_the_broker_slowdown() {
    let f = "scenarios/consumer-lag.toml";
    let scn = scenario::load(std::path::Path::new(f), &[]).unwrap();
    let mut sink = MemorySink::default();
    let r = World::new(&scn.spec, RunOptions::default()).run(&mut sink);
    let q = &r.queues[0];
    accounted(q);
    let depth: Vec<(f64, u64)> = sink
        .rows
        .iter()
        .filter(|row| row.kind == "queue")
        .map(|row| (row.t_s, row.queue_depth))
        .collect();
    let at = |t: f64| depth.iter().find(|d| d.0 == t).unwrap().1;
    // Nothing waits before the slowdown; 60 s at a deficit of about 200 - 10 / 0.122 = 118/s
    // builds about 7 000; the spare 450 - 200 = 250/s drains it in about 28 s.
    assert_eq!(at(50.0), 0);
    assert!((5_500..8_500).contains(&at(119.0)), "{}", at(119.0));
    assert_eq!(at(160.0), 0);
    assert!((5_500..8_500).contains(&q.counters.max_ready), "{q:?}");
    // A deeper prefetch covers the latency: 40 slots at 122 ms is 330/s > 200/s.
    let (deep, _) = run_file(f, &["service.indexer.consumes[0].concurrency=20"]);
    assert!(
        deep.queues[0].counters.max_ready < 50,
        "{:?}",
        deep.queues[0]
    );
}

/// A broker crash: publishes are refused (the producers see connection failures), stored
/// messages survive, acknowledgements sent while it is down are lost, so the messages whose
/// effects were applied come back after it returns: duplicates.
#[test]
fn broker_crash_refuses_publishes_and_loses_acks() {
    let text = std::fs::read_to_string("scenarios/consumer-lag.toml")
        .unwrap()
        .replace(
            "kind = \"latency\"\ntarget = \"bus\"\nadd = \"100ms\"\nat = \"60s\"\nfor = \"60s\"",
            "kind = \"crash\"\ntarget = \"bus\"\nat = \"60s\"\nfor = \"20s\"",
        );
    let (r, _) = run_text(&text, &[]);
    let q = &r.queues[0];
    accounted(q);
    // 20 s of 200/s refused at the broker.
    let failed = r.workloads[0].counts.errors;
    assert!((3_500..4_500).contains(&failed), "{failed}");
    // The ~10 messages being handled when it crashed are acknowledged into the void, then
    // redelivered after their visibility timeout: applied twice.
    assert!(q.counters.duplicates >= 5, "{q:?}");
    assert_eq!(q.counters.duplicates, q.counters.double_effects);
    assert_eq!(q.present_at_end, q.in_flight_at_end + q.ready_at_end);
}

/// scenarios/dual-write.toml: lost events are counted, and are zero with the outbox under the
/// same seed; every committed event is accounted for.
#[test]
fn dual_writes_lose_events_and_the_outbox_does_not() {
    let f = "scenarios/dual-write.toml";
    for seed in [17, 1, 2, 3] {
        let s = format!("sim.seed={seed}");
        let (dual, _) = run_file(f, &[&s]);
        let e = dual.services[0].events.unwrap();
        assert!(e.lost > 50, "seed {seed}: {e:?}");
        assert!(e.committed >= e.published + e.lost, "{e:?}");
        // At most the publishes in flight at the end are neither.
        assert!(e.committed - e.published - e.lost < 20, "{e:?}");
        let (outbox, _) = run_file(f, &[&s, "service.orders.calls[0].outbox=true"]);
        let o = outbox.services[0].events.unwrap();
        assert_eq!(o.lost, 0, "seed {seed}: {o:?}");
        assert_eq!(
            o.committed, e.committed,
            "the same orders commit either way"
        );
        // What the relay has not published yet is still in the outbox, not lost.
        assert!(o.committed - o.published <= o.outbox_max, "{o:?}");
        for q in &outbox.queues {
            accounted(q);
        }
    }
}

/// The outbox relay publishes a batch, then marks its rows sent 5 ms later: a crash of the
/// relay's instance in between leaves them unsent, and the relay publishes them again, so
/// the consumer sees them twice. A crash outside that window loses and repeats nothing.
#[test]
fn an_outbox_relay_that_crashes_before_marking_publishes_again() {
    let text = std::fs::read_to_string("scenarios/dual-write.toml").unwrap();
    let head = &text[..text.find("[[fault]]").unwrap()];
    // Relay ticks come every 500 ms from t = 0.5 s; instance 0 runs the relay.
    let with_crash = |at: &str| {
        let t = format!("{head}[[fault]]\nkind = \"crash\"\ntarget = \"orders\"\ninstance = 0\nat = \"{at}\"\nfor = \"3s\"\n");
        run_text(
            &t,
            &["service.orders.calls[0].outbox=true", "sim.duration=30s"],
        )
        .0
    };
    let inside = with_crash("10002ms");
    let outside = with_crash("10200ms");
    let (i, o) = (
        inside.services[0].events.unwrap(),
        outside.services[0].events.unwrap(),
    );
    assert!(i.republished > 0, "{i:?}");
    assert_eq!(o.republished, 0, "{o:?}");
    assert_eq!(i.lost + o.lost, 0);
    // Every committed event is published once (the repeats are counted apart).
    assert!(i.committed - i.published <= i.outbox_max, "{i:?}");
    let dup = |r: &faultline::model::RunResult| r.queues[0].counters.duplicates;
    assert!(
        dup(&inside) >= i.republished,
        "{} {}",
        dup(&inside),
        i.republished
    );
    assert_eq!(dup(&outside), 0);
}

/// Fire and forget: the producer never hears of a broker outage; the messages sent during
/// it are simply gone. Waiting for the acknowledgement turns the same outage into errors
/// the producer sees.
#[test]
fn fire_and_forget_loses_messages_silently() {
    let text = std::fs::read_to_string("scenarios/consumer-lag.toml")
        .unwrap()
        .replace(
            "kind = \"latency\"\ntarget = \"bus\"\nadd = \"100ms\"\nat = \"60s\"\nfor = \"60s\"",
            "kind = \"crash\"\ntarget = \"bus\"\nat = \"60s\"\nfor = \"20s\"",
        );
    let forget = text.replace(
        "calls = [{ publish = \"readings\", timeout = \"1s\" }]",
        "calls = [{ publish = \"readings\", wait = false }]",
    );
    assert_ne!(forget, text);
    let (f, _) = run_text(&forget, &[]);
    let (w, _) = run_text(&text, &[]);
    let sent = f.workloads[0].counts.requests;
    assert_eq!(
        f.workloads[0].counts.failed(),
        0,
        "the producer sees nothing"
    );
    let lost = sent - f.queues[0].stats.published;
    // 20 s at 200/s.
    assert!((3_500..4_500).contains(&lost), "{lost}");
    assert!(w.workloads[0].counts.errors >= lost * 9 / 10);
    accounted(&f.queues[0]);
}

/// Per-key order costs parallelism: with one partition only one message is in flight at a
/// time, whatever the consumers' prefetch, and the backlog grows; with many, none.
#[test]
fn partitions_bound_the_messages_in_flight() {
    let f = "scenarios/consumer-lag.toml";
    // Readings carry a sensor id (1 000 keys); the broker is never slow here.
    let base = ["fault[0].add=\"1ms\"", "workload.sensors.keys=1000"];
    let (one, _) = run_file(f, &[base[0], base[1], "queue.readings.partitions=1"]);
    let (many, _) = run_file(f, &[base[0], base[1], "queue.readings.partitions=256"]);
    // One at a time at ~22 ms each: about 45/s against 200/s arriving.
    let q = &one.queues[0];
    accounted(q);
    assert!(q.in_flight_at_end <= 1);
    assert!(q.stats.acked < 50 * 240, "{q:?}");
    assert!(q.ready_at_end > 30_000, "{q:?}");
    let m = &many.queues[0];
    accounted(m);
    assert!(m.counters.max_ready < 100, "{m:?}");
}

/// `visible_within` (the eventual-consistency window): with an exponential apply time of
/// mean 5 s and nothing queueing, the share of changes visible after t is 1 - e^(-t/5);
/// a read model with too few slots falls behind and the share after 2 s collapses.
/// Bounds: 10 min at 50 writes/s (about 30 000 messages): sd 0.003; 5 sd.
#[test]
fn visible_within_is_the_replication_delay_cdf() {
    let f = "scenarios/validation/eventual-consistency.toml";
    let sets = ["sim.duration=\"10m\""];
    let (r, _) = run_file(f, &sets);
    let q = &r.queues[0];
    accounted(q);
    for &(t, stored, visible) in &q.visible_within {
        let want = 1.0 - (-t.as_secs_f64() / 5.0).exp();
        let share = visible as f64 / stored as f64;
        assert!(stored > 25_000, "{t}: {stored} messages");
        assert!((share - want).abs() < 0.015, "{t}: {share} vs {want}");
    }
    // 100 slots at 5 s each serve 20 changes/s of the 50 coming in: a backlog builds and
    // almost no change is visible within 2 s.
    let slow = [
        "sim.duration=\"10m\"",
        "service.replica.consumes[0].concurrency=100",
    ];
    let (r, _) = run_file(f, &slow);
    let (_, stored, visible) = r.queues[0].visible_within[1];
    assert!(
        (visible as f64) < 0.01 * stored as f64,
        "{visible} of {stored}"
    );
}

#[test]
fn visible_within_rejects_a_zero_delay() {
    let text = std::fs::read_to_string("scenarios/validation/eventual-consistency.toml")
        .unwrap()
        .replace("visible_within = [\"1s\"", "visible_within = [\"0s\"");
    let err = scenario::parse("ec.toml", &text, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("visible_within"), "{err}");
}

/// scenarios/broker-partition.toml: deliveries and acknowledgements cross the broker <->
/// consumer links. A zone partition loses the deliveries to the consumer it cuts off (they
/// come back after the visibility timeout) and the acknowledgements it was sending (their
/// messages are handled twice); without the cut nothing is redelivered. Before deliveries
/// used the network, the partition changed nothing.
#[test]
fn a_partition_between_broker_and_consumer_loses_deliveries_and_acks() {
    let f = "scenarios/broker-partition.toml";
    let (cut, _) = run_file(f, &[]);
    let (whole, _) = run_file(f, &["fault=[]"]);
    for r in [&cut, &whole] {
        accounted(&r.queues[0]);
    }
    let (c, w) = (&cut.queues[0], &whole.queues[0]);
    assert_eq!(w.stats.redelivered, 0, "{w:?}");
    // Half the ~3,000 messages of the 30 s cut go to the cut-off instance, some several times.
    assert!(c.stats.redelivered > 1_000, "{c:?}");
    // A lost delivery waits out at least one 10 s visibility timeout.
    assert!(c.latency.p99 >= 10_000.0, "{c:?}");
    assert!(w.latency.p99 < 1_000.0, "{w:?}");
}

/// A lossy broker -> consumer link (a `loss` fault on it): a lost acknowledgement leaves an
/// applied effect unacknowledged, so the redelivery applies it again; an idempotent consumer
/// skips it.
#[test]
fn lost_acknowledgements_are_handled_twice_unless_idempotent() {
    let text = std::fs::read_to_string("scenarios/broker-partition.toml")
        .unwrap()
        .replace(
            "kind = \"zone_partition\"\nzone = \"a\"\npeer_zone = \"b\"",
            "kind = \"loss\"\ntarget = \"bus\"\npeer = \"shipping\"\np = 0.1",
        );
    let (r, _) = run_text(&text, &[]);
    let q = &r.queues[0];
    accounted(q);
    // A tenth of deliveries and of acknowledgements lost for 30 s (~3,000 messages).
    assert!((300..900).contains(&q.stats.redelivered), "{q:?}");
    assert!(q.counters.double_effects > 100, "{q:?}");
    let (r, _) = run_text(
        &text,
        &["service.shipping.consumes[0].idempotency_ttl=\"1h\""],
    );
    let q = &r.queues[0];
    assert_eq!(q.counters.double_effects, 0, "{q:?}");
    assert!(q.counters.skipped > 100, "{q:?}");
}
