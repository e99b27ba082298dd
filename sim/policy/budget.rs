//! Retry limiters that stop retry storms: Envoy's budget, Finagle's RetryBudget, gRPC throttling, the AWS retry quota (POLICIES.md §4).

use crate::time::{SimDuration, SimTime};

/// Envoy: concurrent retries allowed = max(percent · (active + pending), min_concurrency).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnvoyBudget {
    /// budget_percent (default 20).
    pub percent: f64,
    /// min_retry_concurrency (default 3).
    pub min_concurrency: u32,
}

impl Default for EnvoyBudget {
    fn default() -> Self {
        EnvoyBudget {
            percent: 20.0,
            min_concurrency: 3,
        }
    }
}

impl EnvoyBudget {
    /// Concurrent retries allowed with this many active plus pending requests.
    pub fn allowed(&self, active_requests: u64) -> u64 {
        ((self.percent / 100.0 * active_requests as f64) as u64).max(self.min_concurrency as u64)
    }

    /// Whether one more retry may start.
    pub fn may_retry(&self, active_requests: u64, active_retries: u64) -> bool {
        active_retries < self.allowed(active_requests)
    }
}

/// Envoy's plain `max_retries` limit (default 3 concurrent retries).
pub fn envoy_max_retries_allows(max_retries: u64, active_retries: u64) -> bool {
    active_retries < max_retries
}

/// Finagle RetryBudget: deposits per request and withdrawals per retry in a window of `ttl`
/// (10 slices), plus a constant reserve of `min_retries_per_s · ttl` retries.
#[derive(Clone, Debug)]
pub struct FinagleBudget {
    ttl: SimDuration,
    /// Tokens a retry costs: 1000 / percent_can_retry (scaled by 1000 as in Finagle).
    cost: i64,
    reserve: i64,
    /// (slice index, balance) for the live slices, oldest first.
    slices: std::collections::VecDeque<(u64, i64)>,
}

impl FinagleBudget {
    /// A budget; Finagle's defaults are ttl 10 s, 10 retries/s, 20 %.
    pub fn new(ttl: SimDuration, min_retries_per_s: f64, percent_can_retry: f64) -> Self {
        let cost = (1000.0 / percent_can_retry.max(1e-9)) as i64;
        let reserve = (min_retries_per_s * ttl.as_secs_f64()) as i64 * cost;
        FinagleBudget {
            ttl: SimDuration(ttl.0.max(10)),
            cost,
            reserve,
            slices: Default::default(),
        }
    }

    fn slice(&self, now: SimTime) -> u64 {
        now.0 / (self.ttl.0 / 10)
    }

    fn expire(&mut self, now: SimTime) {
        let cur = self.slice(now);
        while self.slices.front().is_some_and(|&(s, _)| s + 10 <= cur) {
            self.slices.pop_front();
        }
    }

    fn add(&mut self, now: SimTime, tokens: i64) {
        self.expire(now);
        let cur = self.slice(now);
        match self.slices.back_mut() {
            Some((s, b)) if *s == cur => *b += tokens,
            _ => self.slices.push_back((cur, tokens)),
        }
    }

    /// Every request (first attempt) deposits.
    pub fn deposit(&mut self, now: SimTime) {
        self.add(now, 1000);
    }

    /// A retry withdraws if the balance allows it.
    pub fn try_withdraw(&mut self, now: SimTime) -> bool {
        self.expire(now);
        let balance: i64 = self.reserve + self.slices.iter().map(|s| s.1).sum::<i64>();
        if balance >= self.cost {
            self.add(now, -self.cost);
            true
        } else {
            false
        }
    }
}

/// gRPC retry throttling: tokens in [0, max]; failures cost 1, successes earn `ratio`;
/// retries and hedges only while tokens > max / 2. Kept in thousandths, as gRPC does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcThrottle {
    max_milli: u64,
    ratio_milli: u64,
    tokens_milli: u64,
}

impl GrpcThrottle {
    /// A full bucket.
    pub fn new(max_tokens: u32, token_ratio: f64) -> Self {
        let max_milli = max_tokens as u64 * 1000;
        GrpcThrottle {
            max_milli,
            ratio_milli: (token_ratio * 1000.0) as u64,
            tokens_milli: max_milli,
        }
    }
    /// A counted failure.
    pub fn on_failure(&mut self) {
        self.tokens_milli = self.tokens_milli.saturating_sub(1000);
    }
    /// A success.
    pub fn on_success(&mut self) {
        self.tokens_milli = (self.tokens_milli + self.ratio_milli).min(self.max_milli);
    }
    /// Whether retries (and extra hedges) are allowed now.
    pub fn may_retry(&self) -> bool {
        self.tokens_milli * 2 > self.max_milli
    }
    /// Tokens, for reports.
    pub fn tokens(&self) -> f64 {
        self.tokens_milli as f64 / 1000.0
    }
}

/// Brooker's retry token bucket ("Fixing retries with token buckets and circuit breakers",
/// 2022): every successful call deposits `deposit` tokens (up to `max`); a retry takes one
/// whole token or is not sent. Retries are then at most `deposit` per success in the long
/// run, so the load stays near 1 + `deposit` however many calls fail. Kept in thousandths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryTokenBucket {
    max_milli: u64,
    deposit_milli: u64,
    tokens_milli: u64,
}

impl RetryTokenBucket {
    /// A full bucket.
    pub fn new(max_tokens: u32, deposit: f64) -> Self {
        let max_milli = max_tokens as u64 * 1000;
        RetryTokenBucket {
            max_milli,
            deposit_milli: (deposit * 1000.0).round() as u64,
            tokens_milli: max_milli,
        }
    }
    /// A successful call.
    pub fn on_success(&mut self) {
        self.tokens_milli = (self.tokens_milli + self.deposit_milli).min(self.max_milli);
    }
    /// Takes one token for a retry; false (no retry) if less than one is left.
    pub fn try_withdraw(&mut self) -> bool {
        let ok = self.tokens_milli >= 1000;
        if ok {
            self.tokens_milli -= 1000;
        }
        ok
    }
    /// Tokens, for reports.
    pub fn tokens(&self) -> f64 {
        self.tokens_milli as f64 / 1000.0
    }
}

/// The AWS SDK standard retry quota: 500 tokens; a retry costs 5 (10 after a timeout);
/// a first-try success refunds 1, a success after retries refunds the last cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AwsQuota {
    capacity: u32,
    tokens: u32,
    cost: u32,
    timeout_cost: u32,
}

impl Default for AwsQuota {
    fn default() -> Self {
        AwsQuota {
            capacity: 500,
            tokens: 500,
            cost: 5,
            timeout_cost: 10,
        }
    }
}

impl AwsQuota {
    /// Takes the cost of one retry; returns the amount taken, or `None` (no retry).
    pub fn acquire(&mut self, after_timeout: bool) -> Option<u32> {
        let cost = if after_timeout {
            self.timeout_cost
        } else {
            self.cost
        };
        (self.tokens >= cost).then(|| {
            self.tokens -= cost;
            cost
        })
    }
    /// A successful response; `last_cost` is what the last retry of this call took (None: no retry).
    pub fn on_success(&mut self, last_cost: Option<u32>) {
        self.tokens = (self.tokens + last_cost.unwrap_or(1)).min(self.capacity);
    }
    /// Tokens left.
    pub fn tokens(&self) -> u32 {
        self.tokens
    }
}

/// A retry limiter's configuration, one per edge (caller service → callee).
#[derive(Clone, Debug)]
pub enum BudgetSpec {
    /// Envoy: concurrent retries ≤ max(percent · active calls, min).
    Envoy(EnvoyBudget),
    /// Finagle: 20 % of recent calls plus a reserve per second.
    Finagle {
        /// Window.
        ttl: SimDuration,
        /// Reserve, retries per second.
        min_retries_per_s: f64,
        /// Share of calls that may be retried.
        percent_can_retry: f64,
    },
    /// gRPC retry throttling.
    Grpc {
        /// Bucket size.
        max_tokens: u32,
        /// Tokens earned per success.
        token_ratio: f64,
    },
    /// AWS SDK standard retry quota.
    Aws,
    /// Brooker's token bucket: a retry costs a token, a success deposits a fraction.
    TokenBucket {
        /// Bucket size (and its content at the start).
        max_tokens: u32,
        /// Tokens deposited per successful call.
        deposit: f64,
    },
}

/// The limiter inside a [`RetryBudget`].
#[derive(Clone, Debug)]
enum Limiter {
    Unlimited,
    Envoy(EnvoyBudget),
    Finagle(FinagleBudget),
    Grpc(GrpcThrottle),
    Aws(AwsQuota),
    TokenBucket(RetryTokenBucket),
}

/// What one call keeps between its attempts for the budget: whether a retry of it is
/// counted active (Envoy), and what its last retry cost (AWS refunds that on success).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetTicket {
    in_retry: bool,
    last_cost: Option<u32>,
}

/// The retry limits of one edge behind one interface, whatever the kind: the calls and
/// retries in progress (Envoy's budget and `max_retries` read them) and the limiter.
#[derive(Clone, Debug)]
pub struct RetryBudget {
    limiter: Limiter,
    active_calls: u64,
    active_retries: u64,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new(None)
    }
}

impl RetryBudget {
    /// A budget of kind `spec` (`None`: only `max_retries`, if any, limits retries).
    pub fn new(spec: Option<&BudgetSpec>) -> Self {
        let limiter = match spec {
            None => Limiter::Unlimited,
            Some(BudgetSpec::Envoy(b)) => Limiter::Envoy(*b),
            Some(&BudgetSpec::Finagle {
                ttl,
                min_retries_per_s,
                percent_can_retry,
            }) => Limiter::Finagle(FinagleBudget::new(
                ttl,
                min_retries_per_s,
                percent_can_retry,
            )),
            Some(&BudgetSpec::Grpc {
                max_tokens,
                token_ratio,
            }) => Limiter::Grpc(GrpcThrottle::new(max_tokens, token_ratio)),
            Some(BudgetSpec::Aws) => Limiter::Aws(AwsQuota::default()),
            Some(&BudgetSpec::TokenBucket {
                max_tokens,
                deposit,
            }) => Limiter::TokenBucket(RetryTokenBucket::new(max_tokens, deposit)),
        };
        RetryBudget {
            limiter,
            active_calls: 0,
            active_retries: 0,
        }
    }

    /// Whether a limiter is configured (not just `max_retries`).
    pub fn is_limited(&self) -> bool {
        !matches!(self.limiter, Limiter::Unlimited)
    }

    /// A call starts: it is active, and Finagle deposits for it.
    pub fn on_call_start(&mut self, now: SimTime) {
        self.active_calls += 1;
        if let Limiter::Finagle(b) = &mut self.limiter {
            b.deposit(now);
        }
    }

    /// A call ended.
    pub fn on_call_end(&mut self) {
        self.active_calls -= 1;
    }

    /// An attempt of a retried (not hedged) call ended: gRPC counts successes and failures
    /// that came back (not the caller's own refusals); on success the AWS quota refunds
    /// and the token bucket deposits.
    pub fn on_attempt_result(&mut self, ok: bool, local_refusal: bool, ticket: &BudgetTicket) {
        match &mut self.limiter {
            Limiter::Grpc(t) if ok => t.on_success(),
            Limiter::Grpc(t) if !local_refusal => t.on_failure(),
            Limiter::Aws(q) if ok => q.on_success(ticket.last_cost),
            Limiter::TokenBucket(b) if ok => b.on_success(),
            _ => {}
        }
    }

    /// Asks for one more retry of the call holding `ticket`. Envoy's cluster limit
    /// `max_retries` applies on top of any budget, and is asked first. A granted retry is
    /// active until [`RetryBudget::end_retry`].
    pub fn try_begin_retry(
        &mut self,
        now: SimTime,
        after_timeout: bool,
        max_retries: Option<u32>,
        ticket: &mut BudgetTicket,
    ) -> bool {
        if max_retries.is_some_and(|m| !envoy_max_retries_allows(m as u64, self.active_retries)) {
            return false;
        }
        let granted = match &mut self.limiter {
            Limiter::Unlimited => true,
            Limiter::Envoy(b) => b.may_retry(self.active_calls, self.active_retries),
            Limiter::Finagle(b) => b.try_withdraw(now),
            Limiter::Grpc(t) => t.may_retry(),
            Limiter::TokenBucket(b) => b.try_withdraw(),
            Limiter::Aws(q) => match q.acquire(after_timeout) {
                Some(cost) => {
                    ticket.last_cost = Some(cost);
                    true
                }
                None => false,
            },
        };
        if granted {
            ticket.in_retry = true;
            self.active_retries += 1;
        }
        granted
    }

    /// The retry the ticket holds is over (its attempt ended, or its call did).
    pub fn end_retry(&mut self, ticket: &mut BudgetTicket) {
        if std::mem::take(&mut ticket.in_retry) {
            self.active_retries -= 1;
        }
    }

    /// Calls and retries in progress.
    pub fn active(&self) -> (u64, u64) {
        (self.active_calls, self.active_retries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s4_1_b2_max_retries_is_asked_before_the_budget() {
        // POLICIES.md §4.1 B2: with max_retries = 3 and 3 retries active, a 4th is refused,
        // and the budget (here Brooker's bucket) is not charged for it.
        let spec = BudgetSpec::TokenBucket {
            max_tokens: 10,
            deposit: 0.1,
        };
        let mut b = RetryBudget::new(Some(&spec));
        let mut tickets = [BudgetTicket::default(); 4];
        for t in &mut tickets[..3] {
            b.on_call_start(SimTime::ZERO);
            assert!(b.try_begin_retry(SimTime::ZERO, false, Some(3), t));
        }
        assert!(!b.try_begin_retry(SimTime::ZERO, false, Some(3), &mut tickets[3]));
        assert_eq!(b.active(), (3, 3));
        b.end_retry(&mut tickets[0]);
        b.end_retry(&mut tickets[0]); // a second end of the same retry changes nothing
        assert_eq!(b.active(), (3, 2));
        assert!(b.try_begin_retry(SimTime::ZERO, false, Some(3), &mut tickets[3]));
        // 10 tokens, 4 retries granted: 6 left, so six more pass and the next does not.
        let mut t = BudgetTicket::default();
        let granted = (0..7)
            .filter(|_| {
                let ok = b.try_begin_retry(SimTime::ZERO, false, None, &mut t);
                b.end_retry(&mut t);
                ok
            })
            .count();
        assert_eq!(granted, 6);
    }

    #[test]
    fn s4_4_aws_refunds_the_cost_of_the_calls_last_retry() {
        let mut b = RetryBudget::new(Some(&BudgetSpec::Aws));
        let mut t = BudgetTicket::default();
        assert!(b.try_begin_retry(SimTime::ZERO, true, None, &mut t)); // a timeout costs 10
        b.end_retry(&mut t);
        let Limiter::Aws(q) = &b.limiter else {
            panic!("aws")
        };
        assert_eq!(q.tokens(), 490);
        b.on_attempt_result(true, false, &t);
        let Limiter::Aws(q) = &b.limiter else {
            panic!("aws")
        };
        assert_eq!(q.tokens(), 500);
    }

    #[test]
    fn s4_3_grpc_ignores_the_callers_own_refusals() {
        let spec = BudgetSpec::Grpc {
            max_tokens: 10,
            token_ratio: 0.1,
        };
        let mut b = RetryBudget::new(Some(&spec));
        let t = BudgetTicket::default();
        for _ in 0..5 {
            b.on_attempt_result(false, true, &t); // refused locally: not counted
        }
        let mut t2 = BudgetTicket::default();
        assert!(b.try_begin_retry(SimTime::ZERO, false, None, &mut t2));
        for _ in 0..5 {
            b.on_attempt_result(false, false, &t);
        }
        assert!(!b.try_begin_retry(SimTime::ZERO, false, None, &mut t2));
    }

    #[test]
    fn s4_b1_envoy_budget_scales_with_active_requests() {
        let b = EnvoyBudget::default();
        assert_eq!(b.allowed(100), 20);
        assert_eq!(b.allowed(10), 3);
        assert!(b.may_retry(100, 19) && !b.may_retry(100, 20));
    }

    #[test]
    fn s4_b2_envoy_max_retries() {
        assert!(envoy_max_retries_allows(3, 2));
        assert!(!envoy_max_retries_allows(3, 3));
    }

    #[test]
    fn s4_2_b1_finagle_reserve_and_its_return() {
        let mut b = FinagleBudget::new(SimDuration::from_secs(10), 10.0, 0.2);
        let t0 = SimTime::ZERO;
        for i in 0..100 {
            assert!(b.try_withdraw(t0), "retry {i}");
        }
        assert!(!b.try_withdraw(t0));
        assert!(
            b.try_withdraw(t0.after(SimDuration::from_secs(10))),
            "the reserve is back after ttl"
        );
    }

    #[test]
    fn s4_2_b2_finagle_requests_add_twenty_percent() {
        let mut b = FinagleBudget::new(SimDuration::from_secs(10), 10.0, 0.2);
        let t = SimTime::ZERO.after(SimDuration::from_secs(5));
        for _ in 0..1000 {
            b.deposit(t);
        }
        let n = (0..1000).take_while(|_| b.try_withdraw(t)).count();
        assert_eq!(n, 300);
    }

    #[test]
    fn s4_3_b1_grpc_throttle() {
        let mut t = GrpcThrottle::new(10, 0.1);
        for _ in 0..5 {
            assert!(t.may_retry());
            t.on_failure();
        }
        assert_eq!(t.tokens(), 5.0);
        assert!(!t.may_retry());
        t.on_success();
        assert!(t.may_retry());
        assert_eq!(t.tokens(), 5.1);
    }

    #[test]
    fn retry_token_bucket_pays_one_retry_per_ten_successes() {
        let mut b = RetryTokenBucket::new(3, 0.1);
        // A full bucket lets max_tokens retries through, then none.
        assert!((0..3).all(|_| b.try_withdraw()));
        assert!(!b.try_withdraw());
        // Nine successes are not enough for a retry; the tenth is.
        (0..9).for_each(|_| b.on_success());
        assert!(!b.try_withdraw());
        b.on_success();
        assert!(b.try_withdraw());
        assert_eq!(b.tokens(), 0.0);
        // Deposits stop at the bucket's size.
        (0..100).for_each(|_| b.on_success());
        assert_eq!(b.tokens(), 3.0);
    }

    #[test]
    fn s4_4_b1_b2_aws_quota() {
        let mut q = AwsQuota::default();
        for i in 0..100 {
            assert!(q.acquire(false).is_some(), "retry {i}");
        }
        assert!(q.acquire(false).is_none());
        for _ in 0..5 {
            q.on_success(None);
        }
        assert!(q.acquire(false).is_some());
        assert!(q.acquire(false).is_none());
    }

    proptest::proptest! {
        /// Finagle's budget never allows more retries than 20 % of the requests in the
        /// window plus the reserve.
        #[test]
        fn finagle_never_exceeds_ratio_plus_reserve(ops in proptest::collection::vec((proptest::bool::ANY, 0u64..200), 1..2000)) {
            let mut b = FinagleBudget::new(SimDuration::from_secs(10), 10.0, 0.2);
            let mut now = SimTime::ZERO;
            let (mut deposits, mut retries) = (0u64, 0u64);
            for (is_request, dt_ms) in ops {
                now = now.after(SimDuration::from_millis(dt_ms));
                if is_request { b.deposit(now); deposits += 1; }
                else if b.try_withdraw(now) { retries += 1; }
                // Over the whole run (a superset of any window): retries <= 0.2 deposits + reserve per elapsed ttl.
                let windows = 1 + now.0 / SimDuration::from_secs(10).0;
                proptest::prop_assert!(retries <= deposits / 5 + 100 * (windows + 1));
            }
        }

        /// The token bucket never pays for more retries than its size plus the deposits.
        #[test]
        fn token_bucket_never_exceeds_size_plus_deposits(ops in proptest::collection::vec(proptest::bool::ANY, 1..2000), max in 1u32..20) {
            let mut b = RetryTokenBucket::new(max, 0.1);
            let (mut successes, mut retries) = (0u64, 0u64);
            for success in ops {
                if success { b.on_success(); successes += 1; }
                else if b.try_withdraw() { retries += 1; }
                proptest::prop_assert!(retries * 10 <= max as u64 * 10 + successes);
            }
        }
    }
}
