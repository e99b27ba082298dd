//! A host's CPU shared by the threads runnable on it: egalitarian processor sharing over `cores`, each of n runnable threads progressing at min(1, cores/n) of a core.
//!
//! This is the fluid model of a fair scheduler (Linux's CFS gives runnable threads of equal
//! weight equal shares of the cores): co-located instances slow each other down as soon as
//! their runnable work exceeds the cores, whoever they belong to. The multi-server
//! processor-sharing queue is a symmetric queue in Kelly's sense, so its number in system,
//! and so its mean response time, is that of M/M/c for any work distribution of the same mean
//! (insensitivity): `scenarios/validation/host-sharing.toml` checks the mean against Erlang C
//! with deterministic work, where a FIFO station would be much faster.
//!
//! The machine keeps *attained service*: the CPU time every runnable thread has received since
//! the set was last empty (all runnable threads progress at the same rate, so one number
//! serves them all). A job finishes when the attained service reaches its start value plus its
//! work. Threads outside the model (a noisy process, a `cpu_hog` fault) count towards n but
//! finish never.

use crate::time::{SimDuration, SimTime};
use std::collections::BTreeMap;

/// A job with less CPU left than this, ns, is done: what float rounding leaves behind.
const DONE_NS: f64 = 0.5;

/// One host's CPU.
#[derive(Clone, Debug)]
pub struct SharedCpu<T> {
    cores: u32,
    /// Runnable threads outside the model (they never finish).
    hog: u32,
    /// CPU time each runnable thread has received since the set was last empty, ns.
    attained: f64,
    /// When `attained` and the integrals were last brought up to date.
    last: SimTime,
    /// Jobs by (attained service at which each finishes, as bits; admission number).
    jobs: BTreeMap<(u64, u64), T>,
    admitted: u64,
    /// ∫ min(runnable, cores) dt: core time used (the model's jobs and hogs alike), ns.
    pub core_ns: f64,
    /// ∫ runnable dt: the load average's integral, ns.
    pub runnable_ns: f64,
}

impl<T> SharedCpu<T> {
    /// An idle CPU of `cores` cores (at least 1).
    pub fn new(cores: u32, now: SimTime) -> Self {
        SharedCpu {
            cores: cores.max(1),
            hog: 0,
            attained: 0.0,
            last: now,
            jobs: BTreeMap::new(),
            admitted: 0,
            core_ns: 0.0,
            runnable_ns: 0.0,
        }
    }

    /// Cores.
    pub fn cores(&self) -> u32 {
        self.cores
    }

    /// Runnable threads: the model's jobs and the hogs.
    pub fn runnable(&self) -> u32 {
        self.jobs.len() as u32 + self.hog
    }

    /// The model's jobs running.
    pub fn jobs(&self) -> usize {
        self.jobs.len()
    }

    /// The share of a core each runnable thread gets.
    pub fn rate(&self) -> f64 {
        let n = self.runnable();
        if n <= self.cores {
            1.0
        } else {
            self.cores as f64 / n as f64
        }
    }

    /// Brings attained service and the integrals up to `now`.
    pub fn advance(&mut self, now: SimTime) {
        let dt = now.since(self.last).0 as f64;
        self.last = now;
        if dt > 0.0 {
            let n = self.runnable();
            self.core_ns += dt * n.min(self.cores) as f64;
            self.runnable_ns += dt * n as f64;
            if !self.jobs.is_empty() {
                self.attained += dt * self.rate();
            }
        }
        if self.jobs.is_empty() {
            // Nothing refers to the old origin: restart from 0 to keep full precision.
            self.attained = 0.0;
        }
    }

    /// Starts a job needing `work_ns` of CPU at `now`.
    pub fn admit(&mut self, now: SimTime, work_ns: u64, job: T) {
        self.advance(now);
        let finish = self.attained + work_ns as f64;
        self.jobs.insert((finish.to_bits(), self.admitted), job);
        self.admitted += 1;
    }

    /// Removes the first job `pick` chooses (its thread died), if any.
    pub fn remove(&mut self, now: SimTime, mut pick: impl FnMut(&T) -> bool) -> Option<T> {
        self.advance(now);
        let key = *self.jobs.iter().find(|(_, t)| pick(t))?.0;
        self.jobs.remove(&key)
    }

    /// Sets the number of outside threads that never finish.
    pub fn set_hog(&mut self, now: SimTime, threads: u32) {
        self.advance(now);
        self.hog = threads;
    }

    /// Outside threads.
    pub fn hog(&self) -> u32 {
        self.hog
    }

    /// When the next job finishes, as things stand (`None`: no job runs).
    pub fn next_done(&self) -> Option<SimTime> {
        let (&(bits, _), _) = self.jobs.iter().next()?;
        let left = f64::from_bits(bits) - self.attained;
        let wall = if left < DONE_NS {
            0
        } else {
            // At least 1 ns: each wake-up makes progress.
            ((left / self.rate()).ceil() as u64).max(1)
        };
        Some(self.last.after(SimDuration(wall)))
    }

    /// Moves the jobs done by `now` into `out`, in finishing order (admission order on ties).
    pub fn take_done(&mut self, now: SimTime, out: &mut Vec<T>) {
        self.advance(now);
        while let Some(entry) = self.jobs.first_entry() {
            if f64::from_bits(entry.key().0) - self.attained >= DONE_NS {
                break;
            }
            out.push(entry.remove());
        }
        if self.jobs.is_empty() {
            self.attained = 0.0;
        }
    }

    /// Forgets the integrals (the warm-up ends).
    pub fn reset_integrals(&mut self, now: SimTime) {
        self.advance(now);
        self.core_ns = 0.0;
        self.runnable_ns = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(ns: u64) -> SimTime {
        SimTime(ns)
    }

    /// Runs the CPU to the end, returning (job, finish time) in finishing order.
    fn drain(cpu: &mut SharedCpu<u32>) -> Vec<(u32, u64)> {
        let mut done = Vec::new();
        while let Some(at) = cpu.next_done() {
            let mut out = Vec::new();
            cpu.take_done(at, &mut out);
            done.extend(out.into_iter().map(|j| (j, at.0)));
        }
        done
    }

    #[test]
    fn a_lone_job_runs_at_full_speed() {
        let mut cpu = SharedCpu::new(1, t(0));
        cpu.admit(t(10), 1_000, 7);
        assert_eq!(drain(&mut cpu), vec![(7, 1_010)]);
    }

    #[test]
    fn two_jobs_on_one_core_share_it() {
        // Each gets half a core: the short one (100) ends at 200, then the long one (300)
        // runs alone for its last 200.
        let mut cpu = SharedCpu::new(1, t(0));
        cpu.admit(t(0), 300, 1);
        cpu.admit(t(0), 100, 2);
        assert_eq!(drain(&mut cpu), vec![(2, 200), (1, 400)]);
    }

    #[test]
    fn jobs_up_to_the_core_count_do_not_slow_each_other() {
        let mut cpu = SharedCpu::new(4, t(0));
        for j in 0..4 {
            cpu.admit(t(0), 1_000, j);
        }
        assert!(drain(&mut cpu).iter().all(|&(_, at)| at == 1_000));
    }

    #[test]
    fn a_hog_takes_its_share_and_never_finishes() {
        // 1 core, one job of 100 and one hog: the job runs at half speed.
        let mut cpu = SharedCpu::new(1, t(0));
        cpu.set_hog(t(0), 1);
        cpu.admit(t(0), 100, 1);
        assert_eq!(drain(&mut cpu), vec![(1, 200)]);
        assert!(cpu.next_done().is_none());
        // The core stayed busy the whole time, and 2 threads were runnable while the job ran.
        cpu.advance(t(300));
        assert_eq!(cpu.core_ns, 300.0);
        assert_eq!(cpu.runnable_ns, 2.0 * 200.0 + 100.0);
    }

    #[test]
    fn a_removed_job_frees_its_share() {
        let mut cpu = SharedCpu::new(1, t(0));
        cpu.admit(t(0), 1_000, 1);
        cpu.admit(t(0), 1_000, 2);
        // At 500 each has 250 done; job 2 dies, job 1 then runs alone: 750 more.
        assert_eq!(cpu.remove(t(500), |&j| j == 2), Some(2));
        assert_eq!(drain(&mut cpu), vec![(1, 1_250)]);
    }

    #[test]
    fn a_late_arrival_only_slows_the_rest_from_then() {
        let mut cpu = SharedCpu::new(1, t(0));
        cpu.admit(t(0), 1_000, 1);
        cpu.admit(t(600), 100, 2);
        // From 600 both run at half speed: job 2 ends at 800, job 1 has 300 left at 800.
        assert_eq!(drain(&mut cpu), vec![(2, 800), (1, 1_100)]);
    }

    proptest! {
        /// Work is conserved: the core time used equals the work, each job finishes no sooner
        /// than its own work and no later than the total, the last no sooner than any
        /// schedule allows, and shorter work never finishes later.
        #[test]
        fn work_is_conserved(cores in 1u32..5, works in prop::collection::vec(1u64..10_000, 1..12)) {
            let mut cpu = SharedCpu::new(cores, t(0));
            for (j, &w) in works.iter().enumerate() {
                cpu.admit(t(0), w, j as u32);
            }
            let done = drain(&mut cpu);
            prop_assert_eq!(done.len(), works.len());
            let total: u64 = works.iter().sum();
            for &(j, at) in &done {
                prop_assert!(at >= works[j as usize]);
                prop_assert!(at <= total + works.len() as u64);
            }
            let last = done.iter().map(|&(_, at)| at).max().unwrap();
            let longest = *works.iter().max().unwrap();
            // No schedule beats max(longest job, total / cores).
            prop_assert!(last + 1 >= longest.max(total.div_ceil(cores as u64)));
            // The core time used is the work done: each wake-up rounds up by under 1 ns.
            let slack = ((works.len() + 1) * cores as usize) as f64;
            prop_assert!((cpu.core_ns - total as f64).abs() <= slack,
                "core time {} work {}", cpu.core_ns, total);
            // Shorter work never finishes later.
            for a in &done {
                for b in &done {
                    if works[a.0 as usize] < works[b.0 as usize] {
                        prop_assert!(a.1 <= b.1);
                    }
                }
            }
        }
    }
}
