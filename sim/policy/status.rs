//! Response statuses (HTTP codes, gRPC statuses) and the `retry_on` conditions Envoy, Istio and gRPC test them with.
//!
//! Sources: Envoy's router (`RetryStateImpl::wouldRetryFromHeaders` and
//! `wouldRetryFromReset`), the `x-envoy-retry-on` and `x-envoy-retry-grpc-on` documentation
//! that Istio's `retryOn` passes through, Envoy's `Grpc::Utility::grpcToHttpStatus`, and
//! gRPC's status code list. The behaviours:
//!
//! - `5xx` retries any 5xx answer, and any attempt that got no answer: a reset, a failed
//!   connection, a per-try timeout.
//! - `gateway-error` retries 502, 503 and 504, and every attempt with no answer.
//! - `reset` retries only attempts with no answer; `connect-failure` only failed connections.
//! - `retriable-4xx` retries 409. `retriable-status-codes` retries the codes listed in
//!   `retriable_status_codes`.
//! - `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted` and `unavailable`
//!   retry that gRPC status. A gRPC status travels in a response whose HTTP `:status` is
//!   200, so `5xx` never retries it. An attempt with no answer carries no gRPC status.
//! - Never retried by a condition: the caller's own overflow (an open breaker, a full
//!   bulkhead or pool: Envoy's `x-envoy-overloaded`; the outcome names `circuit_open` and
//!   `refused` retry it on purpose). A 429 from the callee's rate limiter carries
//!   `x-envoy-ratelimited` and is retried only under `envoy-ratelimited`; a 429 injected by
//!   a fault carries no such header, so `retriable-status-codes` with 429 retries it.
//! - A bare HTTP code ("503", as Istio's `retryOn` takes it) is a retriable status code.
//! - `refused-stream` is accepted (Istio's default list names it) and matches nothing: there
//!   is no HTTP/2 REFUSED_STREAM here; loading warns about it.

use crate::policy::outcome::{AttemptOutcome, OutcomeSet};

/// A response's status: an HTTP code (100–599) or a gRPC status code (0–16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Status(u16);

/// gRPC statuses are kept above every HTTP code.
const GRPC: u16 = 1000;

/// gRPC status names, by code.
pub const GRPC_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Envoy's `grpcToHttpStatus`, by gRPC code: what the outlier detector and the access log see.
const GRPC_HTTP: [u16; 17] = [
    200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
];

impl Status {
    /// 200.
    pub const OK: Status = Status(200);
    /// 500.
    pub const INTERNAL: Status = Status(500);
    /// 503.
    pub const UNAVAILABLE: Status = Status(503);

    /// An HTTP status; None outside 100–599.
    pub fn http(code: u16) -> Option<Status> {
        (100..=599).contains(&code).then_some(Status(code))
    }

    /// A gRPC status by code; None past 16.
    pub fn grpc(code: u8) -> Option<Status> {
        (usize::from(code) < GRPC_NAMES.len()).then_some(Status(GRPC + u16::from(code)))
    }

    /// A status written in a scenario: an HTTP code ("503") or a gRPC name in either
    /// spelling ("UNAVAILABLE", "unavailable", "deadline-exceeded").
    pub fn parse(s: &str) -> Option<Status> {
        if let Ok(code) = s.parse::<u16>() {
            return Status::http(code);
        }
        let upper = s.to_ascii_uppercase().replace('-', "_");
        let code = GRPC_NAMES.iter().position(|n| *n == upper)?;
        Status::grpc(code as u8)
    }

    /// Its gRPC code, for a gRPC status.
    pub fn grpc_code(self) -> Option<u8> {
        self.0.checked_sub(GRPC).map(|c| c as u8)
    }

    /// As written in files: "503" or "UNAVAILABLE".
    pub fn name(self) -> String {
        match self.grpc_code() {
            Some(c) => GRPC_NAMES[c as usize].to_string(),
            None => self.0.to_string(),
        }
    }

    /// The HTTP `:status` a proxy's router sees: a gRPC status rides a 200.
    pub fn response_code(self) -> u16 {
        if self.grpc_code().is_some() {
            200
        } else {
            self.0
        }
    }

    /// The HTTP code that stands for it in counts and in outlier detection: a gRPC status
    /// mapped as Envoy's `grpcToHttpStatus` does (UNAVAILABLE is 503, INTERNAL 500).
    pub fn http_equivalent(self) -> u16 {
        match self.grpc_code() {
            Some(c) => GRPC_HTTP[c as usize],
            None => self.0,
        }
    }

    /// 502, 503 or 504 (Envoy's `isGatewayError`), by its HTTP equivalent.
    pub fn is_gateway_error(self) -> bool {
        matches!(self.http_equivalent(), 502..=504)
    }

    /// What Envoy's outlier detector makes of an answer with this status: a gateway
    /// failure (502–504), another 5xx, or a success (every 2xx, 3xx and 4xx), by the HTTP
    /// equivalent.
    fn outlier_class(self) -> crate::policy::outlier::Status {
        use crate::policy::outlier::Status as O;
        if self.is_gateway_error() {
            O::Gateway
        } else if (500..=599).contains(&self.http_equivalent()) {
            O::Error5xx
        } else {
            O::Ok
        }
    }

    /// How the callee counts an answer it gives with this status: a 5xx other than a
    /// gateway error is an error; a 429 a rate-limit refusal; a 403 a denial; anything
    /// else (502, 503, 504 and the other 4xx) a refusal.
    pub fn attempt_outcome(self) -> AttemptOutcome {
        match self.http_equivalent() {
            200..=399 => AttemptOutcome::Ok,
            429 => AttemptOutcome::RateLimited,
            403 => AttemptOutcome::Forbidden,
            502..=504 => AttemptOutcome::Rejected,
            500..=599 => AttemptOutcome::Error,
            _ => AttemptOutcome::Rejected,
        }
    }
}

/// The status of the answer an attempt got: the one a fault chose (`injected`), else the
/// one its outcome stands for (ok 200, error 500, a full queue 503, a rate limit 429, a
/// denial 403). None when no answer came: a timeout or reset, a failed connection, or a
/// refusal of the caller's own.
#[inline]
pub fn answer(outcome: AttemptOutcome, injected: Option<Status>) -> Option<Status> {
    use AttemptOutcome as A;
    match (outcome, injected) {
        (A::Timeout | A::ConnectFailure | A::CircuitOpen | A::Refused, _) => None,
        (A::Ok, _) => Some(Status::OK),
        (_, Some(s)) => Some(s),
        (A::Error, None) => Some(Status::INTERNAL),
        (A::Rejected, None) => Some(Status::UNAVAILABLE),
        (A::RateLimited, None) => Some(Status(429)),
        (A::Forbidden, None) => Some(Status(403)),
    }
}

/// What passive outlier detection (Envoy) sees of an attempt: its answer's status by the
/// HTTP equivalent (a 4xx, a 429 included, is a success), or a gateway failure when no
/// answer came (a timeout, a reset, a failed connection).
#[inline]
pub fn outlier_status(
    outcome: AttemptOutcome,
    injected: Option<Status>,
) -> crate::policy::outlier::Status {
    answer(outcome, injected).map_or(
        crate::policy::outlier::Status::Gateway,
        Status::outlier_class,
    )
}

/// An error status in one byte: an HTTP code from 400 to 599, or a gRPC status other than
/// OK. A request carries the status a fault chose in this form, so that it does not grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorStatus(u8);

impl ErrorStatus {
    /// 500.
    pub const INTERNAL: ErrorStatus = ErrorStatus(100);

    /// The status, for an error status (what a fault may inject); None otherwise.
    pub fn new(s: Status) -> Option<ErrorStatus> {
        match s.grpc_code() {
            Some(0) => None,
            Some(c) => Some(ErrorStatus(199 + c)),
            None => (400..=599)
                .contains(&s.0)
                .then(|| ErrorStatus((s.0 - 400) as u8)),
        }
    }

    /// The status.
    #[inline]
    pub fn status(self) -> Status {
        if self.0 < 200 {
            Status(400 + u16::from(self.0))
        } else {
            Status(GRPC + u16::from(self.0 - 199))
        }
    }
}

/// One `retry_on` condition named as Envoy, Istio or gRPC names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
enum Condition {
    FiveXx = 1,
    GatewayError = 1 << 1,
    Reset = 1 << 2,
    ConnectFailure = 1 << 3,
    Retriable4xx = 1 << 4,
    RetriableStatusCodes = 1 << 5,
    GrpcCancelled = 1 << 6,
    GrpcDeadlineExceeded = 1 << 7,
    GrpcInternal = 1 << 8,
    GrpcResourceExhausted = 1 << 9,
    GrpcUnavailable = 1 << 10,
    EnvoyRateLimited = 1 << 11,
    RefusedStream = 1 << 12,
}

/// The conditions that retry an attempt with no answer (a reset, a per-try timeout, a
/// failed connection): Envoy counts an upstream reset as a 5xx.
const NO_ANSWER: u16 =
    Condition::Reset as u16 | Condition::FiveXx as u16 | Condition::GatewayError as u16;

/// The names, Envoy's spelling first; gRPC names also in gRPC's own spelling (as a gRPC
/// service config's `retryableStatusCodes` writes them).
const CONDITIONS: [(&str, Condition); 13] = [
    ("5xx", Condition::FiveXx),
    ("gateway-error", Condition::GatewayError),
    ("reset", Condition::Reset),
    ("connect-failure", Condition::ConnectFailure),
    ("retriable-4xx", Condition::Retriable4xx),
    ("retriable-status-codes", Condition::RetriableStatusCodes),
    ("cancelled", Condition::GrpcCancelled),
    ("deadline-exceeded", Condition::GrpcDeadlineExceeded),
    ("internal", Condition::GrpcInternal),
    ("resource-exhausted", Condition::GrpcResourceExhausted),
    ("unavailable", Condition::GrpcUnavailable),
    ("envoy-ratelimited", Condition::EnvoyRateLimited),
    ("refused-stream", Condition::RefusedStream),
];

/// The condition names accepted in `retry_on`, besides faultline's outcome names.
pub fn condition_names() -> impl Iterator<Item = &'static str> {
    CONDITIONS.iter().map(|(n, _)| *n)
}

/// What a retry policy retries: faultline's outcome names, and Envoy's conditions over
/// statuses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// Outcomes retried by name (`error`, `timeout`, ...).
    pub outcomes: OutcomeSet,
    conditions: u16,
    /// `retriable_status_codes`, for `retriable-status-codes`.
    pub codes: Vec<u16>,
}

impl RetryOn {
    /// Retries exactly `outcomes`.
    pub fn outcomes(outcomes: OutcomeSet) -> RetryOn {
        RetryOn {
            outcomes,
            conditions: 0,
            codes: Vec::new(),
        }
    }

    /// Adds the condition or outcome named `name` (`UNAVAILABLE` and `unavailable` alike;
    /// a bare HTTP code, as Istio's `retryOn` takes "503", adds that code under
    /// `retriable-status-codes`); false when no condition or outcome has that name.
    pub fn add(&mut self, name: &str) -> bool {
        if let Ok(code) = name.parse::<u16>() {
            if Status::http(code).is_none() {
                return false;
            }
            self.conditions |= Condition::RetriableStatusCodes as u16;
            self.codes.push(code);
            return true;
        }
        if let Some(o) = AttemptOutcome::from_name(name) {
            self.outcomes = self.outcomes.with(o);
            return true;
        }
        let lower = name.to_ascii_lowercase().replace('_', "-");
        match CONDITIONS.iter().find(|(n, _)| *n == lower) {
            Some((_, c)) => {
                self.conditions |= *c as u16;
                true
            }
            None => false,
        }
    }

    /// Whether `retriable-status-codes` is among the conditions.
    pub fn wants_codes(&self) -> bool {
        self.has(Condition::RetriableStatusCodes)
    }

    /// Whether `refused-stream` is among the conditions: it matches nothing here, since
    /// faultline has no HTTP/2 REFUSED_STREAM (a pool at its stream limit queues instead).
    pub fn names_refused_stream(&self) -> bool {
        self.has(Condition::RefusedStream)
    }

    fn has(&self, c: Condition) -> bool {
        self.conditions & c as u16 != 0
    }

    /// Whether an attempt that ended with `outcome`, carrying `status` when a fault chose
    /// it, is retried.
    #[inline]
    pub fn matches(&self, outcome: AttemptOutcome, status: Option<Status>) -> bool {
        if self.outcomes.contains(outcome) {
            return true;
        }
        self.conditions != 0 && self.matches_conditions(outcome, status)
    }

    fn matches_conditions(&self, outcome: AttemptOutcome, status: Option<Status>) -> bool {
        use AttemptOutcome as A;
        match (outcome, status) {
            // Nothing to retry; or the caller's own overflow (x-envoy-overloaded), which no
            // condition retries.
            (A::Ok | A::CircuitOpen | A::Refused, _) => return false,
            // The callee's rate limiter marks its 429 x-envoy-ratelimited: retried only
            // under `envoy-ratelimited`.
            (A::RateLimited, None) => return self.has(Condition::EnvoyRateLimited),
            (A::ConnectFailure, _) if self.has(Condition::ConnectFailure) => return true,
            _ => {}
        }
        let Some(s) = answer(outcome, status) else {
            return self.conditions & NO_ANSWER != 0;
        };
        let code = s.response_code();
        if self.has(Condition::FiveXx) && (500..=599).contains(&code) {
            return true;
        }
        if self.has(Condition::GatewayError) && matches!(code, 502..=504) {
            return true;
        }
        if self.has(Condition::Retriable4xx) && code == 409 {
            return true;
        }
        if self.has(Condition::RetriableStatusCodes) && self.codes.contains(&code) {
            return true;
        }
        let grpc = match s.grpc_code() {
            Some(1) => Condition::GrpcCancelled,
            Some(4) => Condition::GrpcDeadlineExceeded,
            Some(13) => Condition::GrpcInternal,
            Some(8) => Condition::GrpcResourceExhausted,
            Some(14) => Condition::GrpcUnavailable,
            _ => return false,
        };
        self.has(grpc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttemptOutcome as A;

    fn on(names: &[&str]) -> RetryOn {
        let mut r = RetryOn::default();
        for n in names {
            assert!(r.add(n), "{n}");
        }
        r
    }

    fn s(x: &str) -> Option<Status> {
        Some(Status::parse(x).expect(x))
    }

    #[test]
    fn statuses_parse_in_both_spellings_and_map_as_envoy() {
        assert_eq!(Status::parse("503"), Status::http(503));
        assert_eq!(Status::parse("unavailable"), Status::parse("UNAVAILABLE"));
        assert_eq!(Status::parse("deadline-exceeded"), Status::grpc(4));
        assert_eq!(Status::parse("600"), None);
        assert_eq!(Status::parse("SLOW"), None);
        // grpcToHttpStatus
        for (name, http) in [
            ("UNAVAILABLE", 503),
            ("DEADLINE_EXCEEDED", 504),
            ("RESOURCE_EXHAUSTED", 429),
            ("INTERNAL", 500),
            ("CANCELLED", 499),
            ("UNIMPLEMENTED", 501),
        ] {
            let st = Status::parse(name).unwrap();
            assert_eq!(st.http_equivalent(), http, "{name}");
            assert_eq!(st.response_code(), 200, "{name} rides a 200");
            assert_eq!(st.name(), name);
        }
        assert!(Status::parse("UNAVAILABLE").unwrap().is_gateway_error());
        assert!(!Status::parse("INTERNAL").unwrap().is_gateway_error());
    }

    #[test]
    fn error_statuses_fit_a_byte_and_come_back_whole() {
        let mut n = 0;
        for code in 100..=599 {
            let st = Status::http(code).unwrap();
            match ErrorStatus::new(st) {
                Some(e) => {
                    assert!(code >= 400);
                    assert_eq!(e.status(), st);
                    n += 1;
                }
                None => assert!(code < 400),
            }
        }
        for c in 0..17 {
            let st = Status::grpc(c).unwrap();
            assert_eq!(
                ErrorStatus::new(st).map(ErrorStatus::status),
                (c > 0).then_some(st)
            );
            n += usize::from(c > 0);
        }
        assert_eq!(n, 216);
    }

    #[test]
    fn the_callee_counts_a_status_as_faultline_always_has() {
        // The fault codes accepted before statuses: the same outcomes as then.
        assert_eq!(Status::INTERNAL.attempt_outcome(), A::Error);
        for c in [502, 503, 504] {
            assert_eq!(Status::http(c).unwrap().attempt_outcome(), A::Rejected);
        }
        assert_eq!(Status::http(429).unwrap().attempt_outcome(), A::RateLimited);
        assert_eq!(Status::http(501).unwrap().attempt_outcome(), A::Error);
        assert_eq!(s("INTERNAL").unwrap().attempt_outcome(), A::Error);
        assert_eq!(s("UNAVAILABLE").unwrap().attempt_outcome(), A::Rejected);
    }

    #[test]
    fn s12_outlier_detection_counts_5xx_and_gateway_failures() {
        // POLICIES.md §12: consecutive_5xx counts 5xx and gateway failures; a 429 is neither.
        use crate::policy::outlier::Status as O;
        assert_eq!(outlier_status(A::Error, None), O::Error5xx);
        assert_eq!(outlier_status(A::RateLimited, None), O::Ok);
        assert_eq!(outlier_status(A::Forbidden, None), O::Ok);
        assert_eq!(outlier_status(A::Ok, None), O::Ok);
        for a in [A::Timeout, A::ConnectFailure, A::Rejected] {
            assert_eq!(outlier_status(a, None), O::Gateway, "{a:?}");
        }
        // A fault's status, by its HTTP equivalent; no answer stays a gateway failure.
        assert_eq!(outlier_status(A::Rejected, s("UNAVAILABLE")), O::Gateway);
        assert_eq!(outlier_status(A::Error, s("INTERNAL")), O::Error5xx);
        assert_eq!(outlier_status(A::Error, s("501")), O::Error5xx);
        assert_eq!(outlier_status(A::Rejected, s("404")), O::Ok);
        assert_eq!(outlier_status(A::Timeout, s("500")), O::Gateway);
    }

    #[test]
    fn five_xx_retries_every_5xx_and_no_answer_but_not_grpc_or_overflow() {
        let r = on(&["5xx"]);
        assert!(r.matches(A::Error, None));
        assert!(r.matches(A::Error, s("501")));
        assert!(r.matches(A::Rejected, s("503")));
        assert!(r.matches(A::Timeout, None));
        assert!(r.matches(A::ConnectFailure, None));
        // A gRPC status rides :status 200.
        assert!(!r.matches(A::Rejected, s("UNAVAILABLE")));
        // x-envoy-overloaded, x-envoy-ratelimited, 4xx.
        assert!(!r.matches(A::CircuitOpen, None));
        assert!(!r.matches(A::Refused, None));
        assert!(!r.matches(A::RateLimited, None));
        assert!(!r.matches(A::RateLimited, s("429")));
        assert!(!r.matches(A::Forbidden, None));
        assert!(!r.matches(A::Ok, None));
    }

    #[test]
    fn gateway_error_is_502_to_504_and_no_answer() {
        let r = on(&["gateway-error"]);
        assert!(!r.matches(A::Error, None), "a 500 is not a gateway error");
        for c in ["502", "503", "504"] {
            assert!(r.matches(A::Rejected, s(c)), "{c}");
        }
        assert!(r.matches(A::Rejected, None), "a full queue answers 503");
        assert!(r.matches(A::Timeout, None));
        assert!(r.matches(A::ConnectFailure, None));
    }

    #[test]
    fn reset_and_connect_failure_take_no_answer_only() {
        let r = on(&["reset"]);
        assert!(r.matches(A::Timeout, None) && r.matches(A::ConnectFailure, None));
        assert!(!r.matches(A::Error, None) && !r.matches(A::Rejected, s("503")));
        let c = on(&["connect-failure"]);
        assert!(c.matches(A::ConnectFailure, None));
        assert!(!c.matches(A::Timeout, None) && !c.matches(A::Error, None));
    }

    #[test]
    fn listed_codes_409_and_grpc_statuses() {
        let mut r = on(&["retriable-status-codes"]);
        assert!(r.wants_codes());
        r.codes = vec![429, 500];
        assert!(r.matches(A::RateLimited, s("429")), "an injected 429");
        assert!(
            !r.matches(A::RateLimited, None),
            "the rate limiter's own 429"
        );
        assert!(r.matches(A::Error, None));
        assert!(!r.matches(A::Rejected, s("503")));
        assert!(on(&["retriable-4xx"]).matches(A::Rejected, s("409")));
        let g = on(&["UNAVAILABLE", "deadline-exceeded"]);
        assert!(g.matches(A::Rejected, s("UNAVAILABLE")));
        assert!(g.matches(A::Rejected, s("DEADLINE_EXCEEDED")));
        assert!(!g.matches(A::Error, s("INTERNAL")));
        assert!(
            !g.matches(A::Rejected, s("503")),
            "an HTTP 503 has no grpc-status"
        );
        assert!(
            !g.matches(A::Timeout, None),
            "no answer carries no gRPC status"
        );
        assert!(on(&["internal"]).matches(A::Error, s("INTERNAL")));
        assert!(on(&["resource-exhausted"]).matches(A::RateLimited, s("RESOURCE_EXHAUSTED")));
        assert!(on(&["cancelled"]).matches(A::Rejected, s("CANCELLED")));
    }

    #[test]
    fn envoy_ratelimited_bare_codes_and_refused_stream() {
        assert!(on(&["envoy-ratelimited"]).matches(A::RateLimited, None));
        assert!(!on(&["envoy-ratelimited"]).matches(A::Error, None));
        let bare = on(&["503", "409"]);
        assert!(bare.wants_codes() && bare.codes == [503, 409]);
        assert!(bare.matches(A::Rejected, None) && bare.matches(A::Rejected, s("409")));
        assert!(!bare.matches(A::Error, None));
        assert!(!RetryOn::default().add("700"));
        let rs = on(&["refused-stream"]);
        assert!(rs.names_refused_stream());
        assert!(A::ALL.iter().all(|&o| !rs.matches(o, None)));
        // B4: retriable-4xx retries a 409, not a 429.
        let r4 = on(&["retriable-4xx"]);
        assert!(r4.matches(A::Rejected, s("409")) && !r4.matches(A::RateLimited, s("429")));
    }

    #[test]
    fn outcome_names_still_work_and_unknown_names_are_refused() {
        let r = on(&["timeout"]);
        assert!(r.matches(A::Timeout, None) && !r.matches(A::Error, None));
        assert!(!RetryOn::default().add("6xx"));
    }
}
