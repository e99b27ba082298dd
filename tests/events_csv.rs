//! Every `events.csv` of the gallery reads back into typed state events that write the
//! same bytes again: `Change::parse` is the inverse of `Display` on real runs.

use faultline::results::events::StateEvent;
use std::path::Path;

#[test]
fn gallery_events_read_back_and_write_the_same_bytes() {
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let mut files = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&reports).unwrap() {
        let path = entry.unwrap().path().join("events.csv");
        if !path.exists() {
            continue;
        }
        files += 1;
        let original = std::fs::read(&path).unwrap();
        let mut reader = csv::Reader::from_reader(original.as_slice());
        let mut writer = csv::Writer::from_writer(Vec::new());
        for rec in reader.records() {
            let rec = rec.unwrap();
            let t_s: f64 = rec[0].parse().unwrap();
            let e = StateEvent::from_columns(t_s, &rec[1], &rec[2], &rec[3])
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            kinds.insert(e.kind());
            writer.serialize(e.row()).unwrap();
        }
        let again = writer.into_inner().unwrap();
        assert!(
            again == original,
            "{} does not write back the same",
            path.display()
        );
    }
    assert!(
        files >= 20,
        "only {files} gallery runs found under reports/"
    );
    // The gallery exercises most kinds; the unit tests in results/events.rs cover the rest.
    assert!(kinds.len() >= 15, "{kinds:?}");
}
