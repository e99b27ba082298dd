//! The event stream of every gallery scenario, pinned: a digest of each delivered
//! `(time, sequence, event)` and the event count, recorded in `tests/event_digests.txt`.
//!
//! Refactors must not change a single event. When one does, this test names the
//! scenarios whose streams parted, which points at the mechanism long before a diff of
//! output files would. A change that alters results on purpose regenerates the record:
//! `FAULTLINE_BLESS=1 cargo test --test event_stream`, in the same commit as the gallery.

use faultline::metrics::MemorySink;
use faultline::model::{RunOptions, World};
use faultline::scenario;
use std::fmt::Write as _;
use std::path::Path;

const RECORD: &str = "tests/event_digests.txt";

/// `name events digest` for every top-level scenario, by file name.
fn digests() -> String {
    let mut files: Vec<_> = std::fs::read_dir("scenarios")
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = String::new();
    for file in files {
        let scn = scenario::load(&file, &[]).unwrap_or_else(|e| panic!("{e}"));
        let opts = RunOptions {
            digest_events: true,
            ..RunOptions::default()
        };
        let r = World::new(&scn.spec, opts).run(&mut MemorySink::default());
        let name = file.file_stem().expect("a file name").to_string_lossy();
        let digest = r.event_digest.expect("asked for");
        writeln!(out, "{name} {} {digest:016x}", r.events).expect("a String");
    }
    out
}

#[test]
fn every_gallery_event_stream_is_unchanged() {
    let now = digests();
    if std::env::var_os("FAULTLINE_BLESS").is_some() {
        std::fs::write(RECORD, &now).expect("write the record");
        return;
    }
    let record = std::fs::read_to_string(Path::new(RECORD)).expect("the record exists");
    let parted: Vec<String> = record
        .lines()
        .zip(now.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("  recorded {a}\n  now      {b}"))
        .collect();
    assert!(
        parted.is_empty() && record.lines().count() == now.lines().count(),
        "event streams changed:\n{}\n(recorded {} scenarios, now {})",
        parted.join("\n"),
        record.lines().count(),
        now.lines().count()
    );
}

#[test]
fn the_digest_sees_a_one_event_difference() {
    // The same scenario with one more request's worth of time: the digest must differ, or
    // the test above could pass whatever happened.
    let text = "[sim]\nname = \"d\"\nduration = \"10s\"\n[[service]]\nname = \"a\"\nwork = { dist = \"exp\", mean = \"1ms\" }\n[[workload]]\nname = \"w\"\ntarget = \"a\"\narrivals = { kind = \"constant\", rate = 10 }\n";
    let digest = |sets: &[String]| {
        let scn = scenario::parse("d.toml", text, sets).expect("valid");
        let opts = RunOptions {
            digest_events: true,
            ..RunOptions::default()
        };
        World::new(&scn.spec, opts)
            .run(&mut MemorySink::default())
            .event_digest
            .expect("asked for")
    };
    let a = digest(&[]);
    assert_eq!(a, digest(&[]), "the digest is deterministic");
    assert_ne!(a, digest(&["sim.duration=10.1s".to_string()]));
}
