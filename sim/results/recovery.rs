//! Recovery times: after each disturbance (a fault window, a load spike or step), how long
//! until each workload's goodput share and p99 are back within a band of their level before
//! it, judged online from the time-series buckets (memory bounded by the look-back).

use std::collections::VecDeque;

/// What counts as recovered (`[recovery]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bands {
    /// Goodput share (ok / sent) must be at least (1 − this) × its level before.
    pub goodput: f64,
    /// p99 must be at most (1 + this) × its level before.
    pub p99: f64,
    /// For this many buckets in a row.
    pub hold_buckets: u32,
    /// The level before is taken over this many buckets before the disturbance.
    pub lookback_buckets: u32,
}

impl Default for Bands {
    fn default() -> Self {
        Bands {
            goodput: 0.05,
            p99: 0.5,
            hold_buckets: 5,
            lookback_buckets: 30,
        }
    }
}

/// A disturbance.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Its key in `summary.json` (`fault0`, `shoppers-spike`).
    pub key: String,
    /// "fault" or "load".
    pub kind: &'static str,
    /// What it is, in words.
    pub what: String,
    /// Start, seconds.
    pub from_s: f64,
    /// End, seconds (equal to `from_s` for a step).
    pub to_s: f64,
}

/// One workload after one disturbance.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    /// Goodput share over the look-back before it (None: no traffic then).
    pub goodput_before: Option<f64>,
    /// Mean of the buckets' p99 before it, ms.
    pub p99_before_ms: Option<f64>,
    /// Seconds from its end to the start of the first bucket of a run of `hold` buckets
    /// within the bands (None: not within them by the end of the run).
    pub after_s: Option<f64>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    sent: u64,
    ok: u64,
    p99_ms: f64,
}

#[derive(Clone, Debug, Default)]
struct State {
    /// (goodput share, p99) before, once the disturbance has started.
    before: Option<Option<(f64, f64)>>,
    /// Start of the current run of buckets within the bands, and its length.
    streak: Option<(f64, u32)>,
    after_s: Option<f64>,
}

/// Follows every (window, workload) pair as buckets close.
#[derive(Clone, Debug)]
pub struct Tracker {
    bands: Bands,
    windows: Vec<Window>,
    workloads: Vec<String>,
    /// Per workload: its last `lookback` buckets.
    recent: Vec<VecDeque<Bucket>>,
    /// Per window, per workload.
    states: Vec<Vec<State>>,
}

impl Tracker {
    /// Follows `windows` for `workloads`.
    pub fn new(bands: Bands, windows: Vec<Window>, workloads: Vec<String>) -> Tracker {
        let n = workloads.len();
        Tracker {
            bands,
            states: vec![vec![State::default(); n]; windows.len()],
            recent: vec![VecDeque::new(); n],
            windows,
            workloads,
        }
    }

    /// Names window `key` in words, unless it has a name.
    pub fn describe(&mut self, key: &str, what: impl FnOnce() -> String) {
        if let Some(w) = self.windows.iter_mut().find(|w| w.key == key) {
            if w.what.is_empty() {
                w.what = what();
            }
        }
    }

    /// Whether there is anything to follow.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() || self.workloads.is_empty()
    }

    /// Workload `w`'s bucket [start_s, end_s) closed with `sent` requests, `ok` answered ok
    /// and p99 `p99_ms`.
    pub fn observe(&mut self, w: usize, start_s: f64, end_s: f64, sent: u64, ok: u64, p99_ms: f64) {
        let b = self.bands;
        for (win, states) in self.windows.iter().zip(&mut self.states) {
            let st = &mut states[w];
            if st.before.is_none() && end_s > win.from_s {
                // The first bucket the disturbance touches: the level before is the look-back's.
                st.before = Some(level(&self.recent[w]));
            }
            let Some(Some((share, p99))) = st.before else {
                continue;
            };
            if st.after_s.is_some() || start_s < win.to_s || sent == 0 {
                // Recovered already, still disturbed, or nothing to judge: an idle bucket
                // neither breaks a run nor adds to it.
                continue;
            }
            let within = (ok as f64 / sent as f64) >= (1.0 - b.goodput) * share
                && p99_ms <= (1.0 + b.p99) * p99;
            st.streak = match (within, st.streak) {
                (false, _) => None,
                (true, None) => Some((start_s, 1)),
                (true, Some((from, k))) => Some((from, k + 1)),
            };
            if let Some((from, k)) = st.streak {
                if k >= b.hold_buckets.max(1) {
                    st.after_s = Some(from - win.to_s);
                }
            }
        }
        let recent = &mut self.recent[w];
        recent.push_back(Bucket { sent, ok, p99_ms });
        if recent.len() > b.lookback_buckets.max(1) as usize {
            recent.pop_front();
        }
    }

    /// Each window with each workload's recovery, in order.
    pub fn finish(self) -> Vec<(Window, Vec<(String, Recovery)>)> {
        self.windows
            .into_iter()
            .zip(self.states)
            .map(|(win, states)| {
                let per = self
                    .workloads
                    .iter()
                    .zip(states)
                    .map(|(name, st)| {
                        let before = st.before.flatten();
                        (
                            name.clone(),
                            Recovery {
                                goodput_before: before.map(|b| b.0),
                                p99_before_ms: before.map(|b| b.1),
                                after_s: st.after_s,
                            },
                        )
                    })
                    .collect();
                (win, per)
            })
            .collect()
    }
}

/// (goodput share, mean p99) over `buckets`, or None without traffic.
fn level(buckets: &VecDeque<Bucket>) -> Option<(f64, f64)> {
    let sent: u64 = buckets.iter().map(|b| b.sent).sum();
    let ok: u64 = buckets.iter().map(|b| b.ok).sum();
    let busy: Vec<f64> = buckets
        .iter()
        .filter(|b| b.ok > 0)
        .map(|b| b.p99_ms)
        .collect();
    if sent == 0 || busy.is_empty() {
        return None;
    }
    Some((
        ok as f64 / sent as f64,
        busy.iter().sum::<f64>() / busy.len() as f64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(from_s: f64, to_s: f64) -> Window {
        Window {
            key: "fault0".into(),
            kind: "fault",
            what: "crash api".into(),
            from_s,
            to_s,
        }
    }

    /// Feeds one-second buckets of (sent, ok, p99) from t = 0.
    fn run(series: &[(u64, u64, f64)], bands: Bands, win: Window) -> Recovery {
        let mut t = Tracker::new(bands, vec![win], vec!["w".into()]);
        for (k, &(sent, ok, p99)) in series.iter().enumerate() {
            t.observe(0, k as f64, k as f64 + 1.0, sent, ok, p99);
        }
        t.finish().remove(0).1.remove(0).1
    }

    fn bands(hold: u32) -> Bands {
        Bands {
            hold_buckets: hold,
            ..Bands::default()
        }
    }

    #[test]
    fn recovery_is_the_start_of_the_first_run_back_within_the_bands() {
        // 10 s healthy (share 1, p99 10 ms), a fault over [10, 15), then 3 s bad, then good.
        let mut s = vec![(100, 100, 10.0); 10];
        s.extend([(100, 20, 80.0); 5]);
        s.extend([(100, 60, 40.0); 3]);
        s.extend([(100, 99, 12.0); 10]);
        let r = run(&s, bands(3), window(10.0, 15.0));
        assert_eq!(r.goodput_before, Some(1.0));
        assert_eq!(r.p99_before_ms, Some(10.0));
        assert_eq!(r.after_s, Some(3.0));
    }

    #[test]
    fn a_relapse_restarts_the_run_and_a_metastable_failure_never_recovers() {
        let mut s = vec![(100, 100, 10.0); 10];
        s.extend([(100, 0, 500.0); 5]);
        // Two good buckets, one bad, then good for good: the run starts after the relapse.
        s.extend([(100, 100, 10.0), (100, 100, 10.0), (100, 50, 10.0)]);
        s.extend([(100, 100, 10.0); 5]);
        assert_eq!(run(&s, bands(3), window(10.0, 15.0)).after_s, Some(3.0));
        // The trigger ends at 15 s but half the requests keep failing: never recovered.
        let mut m = vec![(100, 100, 10.0); 10];
        m.extend([(100, 50, 12.0); 30]);
        assert_eq!(run(&m, bands(3), window(10.0, 15.0)).after_s, None);
        // A tail that stays 3x longer is not recovered either, whatever the goodput.
        let mut tail = vec![(100, 100, 10.0); 10];
        tail.extend([(100, 100, 30.0); 30]);
        assert_eq!(run(&tail, bands(3), window(10.0, 15.0)).after_s, None);
    }

    #[test]
    fn the_level_before_is_the_look_back_and_idle_buckets_are_neutral() {
        // Early buckets at p99 100 ms fall out of a 5-bucket look-back.
        let mut s = vec![(100, 100, 100.0); 10];
        s.extend([(100, 100, 10.0); 5]);
        s.extend([(100, 0, 0.0); 2]);
        s.extend([(0, 0, 0.0); 4]);
        s.extend([(100, 100, 11.0); 3]);
        let b = Bands {
            hold_buckets: 3,
            lookback_buckets: 5,
            ..Bands::default()
        };
        let r = run(&s, b, window(15.0, 17.0));
        assert_eq!(r.p99_before_ms, Some(10.0));
        // Buckets 17..21 are idle: the run starts at 21 s, 4 s after the end.
        assert_eq!(r.after_s, Some(4.0));
        // No traffic before: no level to return to.
        let quiet = [(0, 0, 0.0), (0, 0, 0.0), (100, 100, 5.0)];
        let r = run(&quiet, bands(1), window(2.0, 2.0));
        assert_eq!((r.goodput_before, r.after_s), (None, None));
    }

    #[test]
    fn a_step_is_a_window_of_no_length() {
        let mut s = vec![(100, 100, 10.0); 10];
        s.extend([(200, 200, 13.0); 10]);
        assert_eq!(run(&s, bands(2), window(10.0, 10.0)).after_s, Some(0.0));
    }
}
