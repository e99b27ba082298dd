//! Circuit breakers as sans-IO state machines: Resilience4j's rate breaker and the articles' consecutive-failure breaker.
//!
//! The caller asks [`Breaker::try_acquire`] before each call and reports each
//! admitted call's result with [`Breaker::on_result`]. Time is an argument. When
//! [`Breaker::next_timer`] returns an instant, the owner must call
//! [`Breaker::on_timer`] then (automatic OPEN→HALF_OPEN, half-open max wait).
//! Every state change is returned as a [`Transition`] for logging. Semantics:
//! POLICIES.md §1; behaviours B1–B10 are the unit tests below.

use super::outcome::{AttemptOutcome, OutcomeSet};
use crate::time::{SimDuration, SimTime, NS_PER_S};
use std::collections::VecDeque;

/// Breaker states (Resilience4j's, including the three special ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Calls flow; outcomes are recorded.
    Closed,
    /// Calls are rejected until the wait is over.
    Open,
    /// A limited number of trial calls decide between CLOSED and OPEN.
    HalfOpen,
    /// Always permits, records nothing.
    Disabled,
    /// Always rejects, never leaves by itself.
    ForcedOpen,
    /// Permits and records, never transitions.
    MetricsOnly,
}

/// The sliding window over which rates are computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Window {
    /// The last N calls.
    Count(u32),
    /// The calls of the last N seconds (current partial second included).
    Time(u32),
}

/// How long OPEN lasts, as a function of the `attempts` counter (1 on the first opening).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WaitInterval {
    /// Always the same.
    Fixed(SimDuration),
    /// initial · multiplier^(attempts−1), truncated to whole ms at each step, capped.
    Exponential {
        /// First wait.
        initial: SimDuration,
        /// Growth per opening.
        multiplier: f64,
        /// Cap.
        max: SimDuration,
    },
}

impl WaitInterval {
    /// The wait after the `attempts`-th opening (attempts ≥ 1).
    pub fn of(&self, attempts: u32) -> SimDuration {
        match *self {
            WaitInterval::Fixed(d) => d,
            WaitInterval::Exponential {
                initial,
                multiplier,
                max,
            } => {
                // Resilience4j computes in whole milliseconds, flooring at every step.
                let mut ms = initial.0 / 1_000_000;
                for _ in 1..attempts.max(1) {
                    ms = (ms as f64 * multiplier).floor() as u64;
                    if ms * 1_000_000 >= max.0 {
                        return max;
                    }
                }
                SimDuration(ms * 1_000_000).min(max)
            }
        }
    }
}

/// Resilience4j breaker parameters (defaults as in Resilience4j, POLICIES.md §1).
#[derive(Clone, Debug, PartialEq)]
pub struct RateConfig {
    /// Open when the failure rate (%) is at least this. (0, 100].
    pub failure_rate_threshold: f64,
    /// Open when the slow-call rate (%) is at least this. (0, 100].
    pub slow_call_rate_threshold: f64,
    /// A call strictly longer than this is slow.
    pub slow_call_duration: SimDuration,
    /// The window.
    pub window: Window,
    /// Rates are only evaluated with at least this many calls in the window.
    pub minimum_calls: u32,
    /// Trial calls allowed in HALF_OPEN.
    pub half_open_calls: u32,
    /// OPEN duration.
    pub wait: WaitInterval,
    /// Move OPEN→HALF_OPEN by timer instead of on the next request.
    pub automatic_transition: bool,
    /// Leave HALF_OPEN after this long without a decision (0 = never).
    pub max_wait_half_open: SimDuration,
    /// Where that timer goes: OPEN (default) or CLOSED.
    pub after_max_wait: State,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: SimDuration::from_secs(60),
            window: Window::Count(100),
            minimum_calls: 100,
            half_open_calls: 10,
            wait: WaitInterval::Fixed(SimDuration::from_secs(60)),
            automatic_transition: false,
            max_wait_half_open: SimDuration::ZERO,
            after_max_wait: State::Open,
        }
    }
}

/// The articles' breaker: open after N consecutive failures, stay open for a while,
/// then close after M half-open successes (any half-open failure re-opens).
#[derive(Clone, Debug, PartialEq)]
pub struct ConsecutiveConfig {
    /// Consecutive failures that open it (articles: 5).
    pub failures: u32,
    /// OPEN duration (articles: 30 s).
    pub open_for: SimDuration,
    /// Half-open successes that close it (articles: 3); also the number of trial calls admitted.
    pub half_open_successes: u32,
}

impl Default for ConsecutiveConfig {
    fn default() -> Self {
        ConsecutiveConfig {
            failures: 5,
            open_for: SimDuration::from_secs(30),
            half_open_successes: 3,
        }
    }
}

/// Which breaker.
#[derive(Clone, Debug, PartialEq)]
pub enum Config {
    /// Resilience4j failure/slow-rate breaker.
    Rate(RateConfig),
    /// Consecutive-failure breaker (the source articles).
    Consecutive(ConsecutiveConfig),
}

/// How a breaker hears an outcome: `ignore` first (Resilience4j's ignoreExceptions count
/// neither way and return a half-open permit), then `record` as a failure, else a success.
pub fn classify(outcome: AttemptOutcome, record: OutcomeSet, ignore: OutcomeSet) -> CallResult {
    if ignore.contains(outcome) {
        CallResult::Ignored
    } else if record.contains(outcome) {
        CallResult::Failure
    } else {
        CallResult::Success
    }
}

/// How a completed call is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// Counts as a success.
    Success,
    /// Counts as a failure.
    Failure,
    /// Not recorded (and a half-open permit is returned).
    Ignored,
}

/// A state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Before.
    pub from: State,
    /// After.
    pub to: State,
    /// When.
    pub at: SimTime,
}

/// Rejected: the breaker does not permit the call now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotPermitted;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Totals {
    calls: u32,
    failed: u32,
    slow: u32,
}

#[derive(Clone, Debug)]
enum Ring {
    Count {
        size: u32,
        slots: VecDeque<(bool, bool)>,
    },
    /// Buckets of one second: (second index, totals), oldest first.
    Time {
        seconds: u32,
        buckets: VecDeque<(u64, Totals)>,
    },
}

#[derive(Clone, Debug)]
struct Metrics {
    ring: Ring,
    totals: Totals,
    minimum: u32,
}

impl Metrics {
    fn new(window: Window, minimum: u32) -> Self {
        match window {
            Window::Count(n) => Metrics {
                ring: Ring::Count {
                    size: n.max(1),
                    slots: VecDeque::with_capacity(n as usize),
                },
                totals: Totals::default(),
                minimum: minimum.min(n.max(1)),
            },
            Window::Time(s) => Metrics {
                ring: Ring::Time {
                    seconds: s.max(1),
                    buckets: VecDeque::new(),
                },
                totals: Totals::default(),
                minimum,
            },
        }
    }

    fn advance(&mut self, now: SimTime) {
        if let Ring::Time { seconds, buckets } = &mut self.ring {
            let sec = now.0 / NS_PER_S;
            while let Some(&(s, t)) = buckets.front() {
                if s + (*seconds as u64) <= sec {
                    buckets.pop_front();
                    self.totals.calls -= t.calls;
                    self.totals.failed -= t.failed;
                    self.totals.slow -= t.slow;
                } else {
                    break;
                }
            }
        }
    }

    fn record(&mut self, now: SimTime, failed: bool, slow: bool) {
        match &mut self.ring {
            Ring::Count { size, slots } => {
                if slots.len() as u32 == *size {
                    let (f, s) = slots.pop_front().expect("full");
                    self.totals.calls -= 1;
                    self.totals.failed -= f as u32;
                    self.totals.slow -= s as u32;
                }
                slots.push_back((failed, slow));
            }
            Ring::Time { .. } => {
                self.advance(now);
                let Ring::Time { buckets, .. } = &mut self.ring else {
                    unreachable!()
                };
                let sec = now.0 / NS_PER_S;
                match buckets.back_mut() {
                    Some((s, t)) if *s == sec => {
                        t.calls += 1;
                        t.failed += failed as u32;
                        t.slow += slow as u32;
                    }
                    _ => buckets.push_back((
                        sec,
                        Totals {
                            calls: 1,
                            failed: failed as u32,
                            slow: slow as u32,
                        },
                    )),
                }
            }
        }
        self.totals.calls += 1;
        self.totals.failed += failed as u32;
        self.totals.slow += slow as u32;
    }

    /// (failure rate %, slow rate %), or None below the minimum number of calls.
    fn rates(&self) -> Option<(f64, f64)> {
        let t = self.totals;
        if t.calls == 0 || t.calls < self.minimum {
            return None;
        }
        Some((
            100.0 * t.failed as f64 / t.calls as f64,
            100.0 * t.slow as f64 / t.calls as f64,
        ))
    }
}

/// A circuit breaker on one edge.
#[derive(Clone, Debug)]
pub struct Breaker {
    config: Config,
    state: State,
    attempts: u32,
    entered_at: SimTime,
    open_until: SimTime,
    metrics: Metrics,
    permits: u32,
    consecutive: u32,
    not_permitted: u64,
}

impl Breaker {
    /// A CLOSED breaker.
    pub fn new(config: Config) -> Self {
        let metrics = Self::closed_metrics(&config);
        Breaker {
            config,
            state: State::Closed,
            attempts: 0,
            entered_at: SimTime::ZERO,
            open_until: SimTime::ZERO,
            metrics,
            permits: 0,
            consecutive: 0,
            not_permitted: 0,
        }
    }

    fn closed_metrics(config: &Config) -> Metrics {
        match config {
            Config::Rate(c) => Metrics::new(c.window, c.minimum_calls),
            Config::Consecutive(_) => Metrics::new(Window::Count(1), 1),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Openings so far in this OPEN/HALF_OPEN episode (0 when CLOSED).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Calls rejected so far.
    pub fn not_permitted(&self) -> u64 {
        self.not_permitted
    }

    /// Failure rate (%) of the current window, or −1 below the minimum number of calls.
    pub fn failure_rate(&self) -> f64 {
        self.metrics.rates().map_or(-1.0, |r| r.0)
    }

    /// Slow-call rate (%) of the current window, or −1 below the minimum.
    pub fn slow_call_rate(&self) -> f64 {
        self.metrics.rates().map_or(-1.0, |r| r.1)
    }

    /// Calls recorded in the current window.
    pub fn buffered_calls(&self) -> u32 {
        self.metrics.totals.calls
    }

    fn go(&mut self, now: SimTime, to: State) -> Transition {
        let from = self.state;
        self.state = to;
        self.entered_at = now;
        match to {
            State::Closed | State::MetricsOnly => {
                self.attempts = 0;
                self.metrics = Self::closed_metrics(&self.config);
                self.consecutive = 0;
            }
            State::Disabled => self.attempts = 0,
            State::Open => {
                self.attempts += 1;
                let wait = match &self.config {
                    Config::Rate(c) => c.wait.of(self.attempts),
                    Config::Consecutive(c) => c.open_for,
                };
                self.open_until = now.after(wait);
            }
            State::ForcedOpen => self.attempts += 1,
            State::HalfOpen => {
                let (p, min) = match &self.config {
                    Config::Rate(c) => (c.half_open_calls.max(1), c.minimum_calls),
                    Config::Consecutive(c) => {
                        (c.half_open_successes.max(1), c.half_open_successes.max(1))
                    }
                };
                self.permits = p;
                self.metrics = Metrics::new(Window::Count(p), min);
                self.consecutive = 0;
            }
        }
        Transition { from, to, at: now }
    }

    /// Asks to make a call at `now`. May move OPEN→HALF_OPEN (lazily) first; that
    /// transition is returned alongside the decision.
    pub fn try_acquire(&mut self, now: SimTime) -> (Result<(), NotPermitted>, Option<Transition>) {
        let mut transition = None;
        if self.state == State::Open && now > self.open_until {
            transition = Some(self.go(now, State::HalfOpen));
        }
        let ok = match self.state {
            State::Closed | State::Disabled | State::MetricsOnly => true,
            State::Open | State::ForcedOpen => false,
            State::HalfOpen => {
                if self.permits > 0 {
                    self.permits -= 1;
                    true
                } else {
                    false
                }
            }
        };
        if !ok {
            self.not_permitted += 1;
        }
        (if ok { Ok(()) } else { Err(NotPermitted) }, transition)
    }

    /// Gives back a half-open permit that was acquired but not used.
    pub fn release_permission(&mut self) {
        if self.state == State::HalfOpen {
            self.permits += 1;
        }
    }

    /// Records the result of an admitted call that took `duration`.
    pub fn on_result(
        &mut self,
        now: SimTime,
        result: CallResult,
        duration: SimDuration,
    ) -> Option<Transition> {
        if result == CallResult::Ignored {
            self.release_permission();
            return None;
        }
        let failed = result == CallResult::Failure;
        match self.config.clone() {
            Config::Consecutive(c) => match self.state {
                State::Closed => {
                    self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                    (self.consecutive >= c.failures.max(1)).then(|| self.go(now, State::Open))
                }
                State::HalfOpen => {
                    if failed {
                        Some(self.go(now, State::Open))
                    } else {
                        self.consecutive += 1;
                        (self.consecutive >= c.half_open_successes.max(1))
                            .then(|| self.go(now, State::Closed))
                    }
                }
                _ => None,
            },
            Config::Rate(c) => {
                if self.state == State::Disabled || self.state == State::ForcedOpen {
                    return None;
                }
                let slow = duration > c.slow_call_duration;
                self.metrics.record(now, failed, slow);
                let exceeded = self
                    .metrics
                    .rates()
                    .map(|(f, s)| f >= c.failure_rate_threshold || s >= c.slow_call_rate_threshold);
                match (self.state, exceeded) {
                    (State::Closed, Some(true)) => Some(self.go(now, State::Open)),
                    (State::HalfOpen, Some(true)) => Some(self.go(now, State::Open)),
                    (State::HalfOpen, Some(false)) => Some(self.go(now, State::Closed)),
                    _ => None,
                }
            }
        }
    }

    /// When the owner must call [`Breaker::on_timer`] next, if ever.
    pub fn next_timer(&self) -> Option<SimTime> {
        match (&self.config, self.state) {
            (Config::Rate(c), State::Open) if c.automatic_transition => Some(self.open_until),
            (Config::Rate(c), State::HalfOpen) if c.max_wait_half_open.0 > 0 => {
                Some(self.entered_at.after(c.max_wait_half_open))
            }
            _ => None,
        }
    }

    /// Fires a timer returned by [`Breaker::next_timer`]; stale timers are ignored.
    pub fn on_timer(&mut self, now: SimTime) -> Option<Transition> {
        if Some(now) != self.next_timer() {
            return None;
        }
        match (&self.config, self.state) {
            (Config::Rate(_), State::Open) => Some(self.go(now, State::HalfOpen)),
            (Config::Rate(c), State::HalfOpen) => {
                let to = c.after_max_wait;
                Some(self.go(now, to))
            }
            _ => None,
        }
    }

    /// A manual transition (Resilience4j's transitionTo*); CLOSED→HALF_OPEN and
    /// METRICS_ONLY→OPEN/HALF_OPEN are illegal and refused.
    pub fn transition_to(
        &mut self,
        now: SimTime,
        to: State,
    ) -> Result<Option<Transition>, (State, State)> {
        let illegal = matches!(
            (self.state, to),
            (State::Closed, State::HalfOpen)
                | (State::MetricsOnly, State::Open)
                | (State::MetricsOnly, State::HalfOpen)
        );
        if illegal {
            return Err((self.state, to));
        }
        if self.state == to {
            return Ok(None);
        }
        Ok(Some(self.go(now, to)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallResult::{Failure as F, Success as S};

    fn s(x: f64) -> SimTime {
        SimTime((x * 1e9) as u64)
    }
    fn d(x: f64) -> SimDuration {
        SimDuration((x * 1e9) as u64)
    }
    fn rate(cfg: RateConfig) -> Breaker {
        Breaker::new(Config::Rate(cfg))
    }
    fn feed(b: &mut Breaker, at: SimTime, outcomes: &[CallResult]) {
        for &o in outcomes {
            assert!(b.try_acquire(at).0.is_ok());
            b.on_result(at, o, SimDuration::ZERO);
        }
    }
    fn opened(b: &mut Breaker, at: SimTime) {
        b.transition_to(at, State::Open).unwrap();
    }

    #[test]
    fn s1_b1_breaker_opens_on_a_success_once_the_window_is_full() {
        let mut b = rate(RateConfig {
            window: Window::Count(5),
            minimum_calls: 5,
            ..Default::default()
        });
        feed(&mut b, s(0.0), &[F, F, F, S]);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.failure_rate(), -1.0);
        feed(&mut b, s(0.0), &[S]);
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn s1_b1_metrics_before_the_opening_call() {
        let mut b = rate(RateConfig {
            window: Window::Count(5),
            minimum_calls: 5,
            failure_rate_threshold: 61.0,
            ..Default::default()
        });
        feed(&mut b, s(0.0), &[F, F, F, S, S]);
        assert_eq!((b.buffered_calls(), b.failure_rate()), (5, 60.0));
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn s1_b2_min_calls_not_reached_keeps_closed() {
        let mut b = rate(RateConfig {
            window: Window::Count(100),
            minimum_calls: 10,
            ..Default::default()
        });
        feed(&mut b, s(0.0), &[F; 9]);
        assert_eq!(b.state(), State::Closed);
        feed(&mut b, s(0.0), &[F]);
        assert_eq!(b.state(), State::Open);
        // Exactly 50 % opens (>=).
        let mut b = rate(RateConfig {
            window: Window::Count(100),
            minimum_calls: 10,
            ..Default::default()
        });
        feed(&mut b, s(0.0), &[F, S, F, S, F, S, F, S, F]);
        assert_eq!(b.state(), State::Closed);
        feed(&mut b, s(0.0), &[S]);
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn s1_b3_time_window_counts_recent_seconds() {
        let mut b = rate(RateConfig {
            window: Window::Time(20),
            minimum_calls: 5,
            ..Default::default()
        });
        for (t, o) in [(0.0, S), (1.0, S), (2.0, S), (3.0, F), (4.0, F)] {
            feed(&mut b, s(t), &[o]);
        }
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.failure_rate(), 40.0);
        feed(&mut b, s(5.0), &[F]);
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn s1_b3_time_window_forgets_old_seconds() {
        let mut b = rate(RateConfig {
            window: Window::Time(2),
            minimum_calls: 3,
            ..Default::default()
        });
        feed(&mut b, s(0.0), &[F, F]);
        feed(&mut b, s(5.0), &[S, S, S]);
        assert_eq!(b.failure_rate(), 0.0);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn s1_b4_slow_calls_open_the_breaker() {
        let mut b = rate(RateConfig {
            window: Window::Count(5),
            minimum_calls: 5,
            slow_call_duration: d(4.0),
            slow_call_rate_threshold: 50.0,
            ..Default::default()
        });
        for (o, dur) in [(F, 5.0), (S, 5.0), (F, 0.1), (S, 0.1)] {
            b.try_acquire(s(0.0)).0.unwrap();
            b.on_result(s(0.0), o, d(dur));
        }
        b.try_acquire(s(0.0)).0.unwrap();
        let t = b.on_result(s(0.0), S, d(5.0));
        assert_eq!(t.map(|t| t.to), Some(State::Open));
        // A call of exactly the threshold is not slow.
        let mut b = rate(RateConfig {
            window: Window::Count(1),
            minimum_calls: 1,
            slow_call_duration: d(4.0),
            slow_call_rate_threshold: 50.0,
            ..Default::default()
        });
        b.on_result(s(0.0), S, d(4.0));
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn s1_b5_open_waits_strictly_past_the_wait_then_half_opens() {
        let mut b = rate(RateConfig {
            wait: WaitInterval::Fixed(d(5.0)),
            ..Default::default()
        });
        opened(&mut b, s(10.0));
        assert!(b.try_acquire(s(13.0)).0.is_err());
        assert!(b.try_acquire(s(13.0)).0.is_err());
        assert_eq!(b.not_permitted(), 2);
        assert!(
            b.try_acquire(s(15.0)).0.is_err(),
            "at exactly openUntil still rejected"
        );
        let (ok, t) = b.try_acquire(s(16.0));
        assert!(ok.is_ok());
        assert_eq!(
            t.map(|t| (t.from, t.to)),
            Some((State::Open, State::HalfOpen))
        );
        assert_eq!(b.buffered_calls(), 0);
    }

    #[test]
    fn s1_b5_lazy_breaker_stays_open_without_traffic() {
        let mut b = rate(RateConfig {
            wait: WaitInterval::Fixed(d(5.0)),
            ..Default::default()
        });
        opened(&mut b, s(0.0));
        assert_eq!(b.next_timer(), None);
        assert_eq!(b.state(), State::Open);
        let mut b = rate(RateConfig {
            wait: WaitInterval::Fixed(d(5.0)),
            automatic_transition: true,
            ..Default::default()
        });
        opened(&mut b, s(0.0));
        assert_eq!(b.next_timer(), Some(s(5.0)));
        assert_eq!(b.on_timer(s(5.0)).map(|t| t.to), Some(State::HalfOpen));
    }

    #[test]
    fn s1_b6_half_open_permits_are_limited_and_returnable() {
        let mut b = rate(RateConfig {
            half_open_calls: 4,
            wait: WaitInterval::Fixed(d(1.0)),
            ..Default::default()
        });
        opened(&mut b, s(0.0));
        for _ in 0..4 {
            assert!(b.try_acquire(s(2.0)).0.is_ok());
        }
        assert!(b.try_acquire(s(2.0)).0.is_err());
        assert!(b.try_acquire(s(2.0)).0.is_err());
        b.release_permission();
        assert!(b.try_acquire(s(2.0)).0.is_ok());
        assert!(b.try_acquire(s(2.0)).0.is_err());
    }

    #[test]
    fn s1_b7_half_open_decides_on_its_own_window() {
        for (outcomes, want) in [([F, F, S, F], State::Open), ([F, S, S, S], State::Closed)] {
            let mut b = rate(RateConfig {
                half_open_calls: 4,
                minimum_calls: 5,
                wait: WaitInterval::Fixed(d(1.0)),
                ..Default::default()
            });
            opened(&mut b, s(0.0));
            feed(&mut b, s(2.0), &outcomes);
            assert_eq!(b.state(), want);
        }
        // An ignored error leaves state and counts unchanged and frees the permit.
        let mut b = rate(RateConfig {
            half_open_calls: 1,
            wait: WaitInterval::Fixed(d(1.0)),
            ..Default::default()
        });
        opened(&mut b, s(0.0));
        assert!(b.try_acquire(s(2.0)).0.is_ok());
        assert_eq!(
            b.on_result(s(2.0), CallResult::Ignored, SimDuration::ZERO),
            None
        );
        assert_eq!((b.state(), b.buffered_calls()), (State::HalfOpen, 0));
        assert!(b.try_acquire(s(2.0)).0.is_ok());
    }

    #[test]
    fn s1_b8_exponential_open_wait_grows() {
        let wait = WaitInterval::Exponential {
            initial: d(5.0),
            multiplier: 1.5,
            max: d(600.0),
        };
        assert_eq!(wait.of(1), d(5.0));
        assert_eq!(wait.of(2), d(7.5));
        let mut b = rate(RateConfig {
            wait,
            half_open_calls: 1,
            minimum_calls: 1,
            ..Default::default()
        });
        opened(&mut b, s(0.0));
        feed(&mut b, s(5.5), &[F]); // half-open probe fails: OPEN again, attempts 2
        assert_eq!((b.state(), b.attempts()), (State::Open, 2));
        assert!(b.try_acquire(s(5.5 + 6.0)).0.is_err());
        assert!(b.try_acquire(s(5.5 + 7.6)).0.is_ok());
        assert_eq!(b.state(), State::HalfOpen);
    }

    #[test]
    fn s1_b9_special_states() {
        let mut b = rate(RateConfig {
            wait: WaitInterval::Fixed(d(1.0)),
            ..Default::default()
        });
        b.transition_to(s(0.0), State::ForcedOpen).unwrap();
        assert!(b.try_acquire(s(1e6)).0.is_err());
        assert_eq!(b.state(), State::ForcedOpen);
        b.transition_to(s(0.0), State::Disabled).unwrap();
        feed(&mut b, s(0.0), &[F; 200]);
        assert_eq!((b.state(), b.buffered_calls()), (State::Disabled, 0));
        let mut b = rate(RateConfig {
            window: Window::Count(5),
            minimum_calls: 5,
            ..Default::default()
        });
        b.transition_to(s(0.0), State::MetricsOnly).unwrap();
        feed(&mut b, s(0.0), &[F, F, F, S, S]);
        assert_eq!((b.state(), b.failure_rate()), (State::MetricsOnly, 60.0));
        assert!(b.transition_to(s(0.0), State::Open).is_err());
        let mut b = rate(RateConfig::default());
        assert!(b.transition_to(s(0.0), State::HalfOpen).is_err());
    }

    #[test]
    fn s1_b10_half_open_max_wait() {
        for (after, want) in [(State::Open, State::Open), (State::Closed, State::Closed)] {
            let mut b = rate(RateConfig {
                wait: WaitInterval::Fixed(d(1.0)),
                max_wait_half_open: d(1.0),
                after_max_wait: after,
                ..Default::default()
            });
            opened(&mut b, s(0.0));
            b.try_acquire(s(2.0)).0.unwrap();
            assert_eq!(b.next_timer(), Some(s(3.0)));
            assert_eq!(b.on_timer(s(3.0)).map(|t| t.to), Some(want));
        }
    }

    #[test]
    fn articles_consecutive_breaker() {
        let mut b = Breaker::new(Config::Consecutive(ConsecutiveConfig::default()));
        feed(&mut b, s(0.0), &[F, F, F, F, S, F, F, F, F]);
        assert_eq!(b.state(), State::Closed, "a success resets the count");
        feed(&mut b, s(0.0), &[F]);
        assert_eq!(b.state(), State::Open);
        assert!(b.try_acquire(s(30.0)).0.is_err());
        feed(&mut b, s(31.0), &[S, S]);
        assert_eq!(b.state(), State::HalfOpen);
        feed(&mut b, s(31.0), &[F]);
        assert_eq!(b.state(), State::Open, "any half-open failure re-opens");
        feed(&mut b, s(62.0), &[S, S, S]);
        assert_eq!(b.state(), State::Closed);
    }

    proptest::proptest! {
        /// Whatever the sequence of requests and results, a HALF_OPEN episode never
        /// grants more than the permitted number of calls, and CLOSED never rejects.
        #[test]
        fn half_open_never_admits_more_than_permitted(ops in proptest::collection::vec((0u8..4, 0u64..3_000), 1..400)) {
            let permitted = 3u32;
            let mut b = rate(RateConfig { window: Window::Count(10), minimum_calls: 4, half_open_calls: permitted, wait: WaitInterval::Fixed(d(1.0)), ..Default::default() });
            let mut now = SimTime::ZERO;
            let mut granted_this_episode = 0u32;
            let mut in_flight = 0u32;
            for (op, dt) in ops {
                now = now.after(SimDuration::from_millis(dt));
                if op < 2 {
                    let before = b.state();
                    let (ok, t) = b.try_acquire(now);
                    if before == State::Closed { proptest::prop_assert!(ok.is_ok()); }
                    if t.is_some_and(|t| t.to == State::HalfOpen) { granted_this_episode = 0; }
                    if ok.is_ok() {
                        in_flight += 1;
                        if b.state() == State::HalfOpen { granted_this_episode += 1; }
                    }
                    proptest::prop_assert!(granted_this_episode <= permitted);
                } else if in_flight > 0 {
                    in_flight -= 1;
                    b.on_result(now, if op == 2 { F } else { S }, SimDuration::ZERO);
                }
            }
        }
    }
}
