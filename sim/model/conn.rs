//! Sidecars and connections on the request's path: the caller's outbound proxy, the connection an attempt rides (reused, or opened with its round trips and mTLS handshake), the callee's inbound proxy and its authorization check.

use super::*;
use crate::policy::pool::{Config as PoolConfig, Pool};

/// An edge state's connections (boxed in `Edge`: most edges pool none).
#[derive(Clone)]
pub(super) struct Conns {
    pub(super) cfg: PoolConfig,
    pub(super) pool: Pool,
    /// New connections pay an mTLS handshake (both ends meshed, `[mesh.mtls]`).
    pub(super) mtls: bool,
}

impl World<'_> {
    /// The caller's outbound sidecar takes the attempt: when it leaves the proxy, or why it
    /// cannot (the proxy is down: connection refused; overloaded: its local 503).
    pub(super) fn outbound_proxy(
        &mut self,
        now: SimTime,
        id: CallId,
    ) -> Result<SimTime, AttemptOutcome> {
        let (Some(m), Some(ms)) = (self.mesh.as_mut(), self.spec.mesh.as_ref()) else {
            return Ok(now);
        };
        let caller = self.reqs[self.calls[id].parent].instance;
        let from = self.sites[self.calls[id].site as usize].from;
        match m.outbound(ms, now, caller, from) {
            mesh::Hop::Direct => Ok(now),
            mesh::Hop::Through(t) => Ok(t),
            mesh::Hop::Overloaded => Err(AttemptOutcome::Rejected),
            mesh::Hop::Down | mesh::Hop::Denied(_) => {
                m.tally[from as usize].unreachable += 1;
                Err(AttemptOutcome::ConnectFailure)
            }
        }
    }

    /// The connection the attempt of `id` to `instance` rides, leaving the caller at
    /// `leave` with a one-way network delay `delay` (None: the packet is lost). Returns when
    /// the request goes on the wire, the connection, and when the attempt fails because the
    /// connection cannot be made (lost handshake, or slower than `connect_timeout`).
    pub(super) fn connection(
        &mut self,
        leave: SimTime,
        id: CallId,
        instance: u32,
        delay: Option<SimDuration>,
    ) -> (SimTime, u32, Option<SimTime>) {
        let edge = self.calls[id].edge as usize;
        let target = &self.insts[instance as usize];
        if self.edges[edge].conns.is_none() || target.fault.down || !target.present {
            // No pool; or nothing listens: the connect is refused (the request, sent as
            // before, is refused on arrival) and no connection is made.
            return (leave, NO_CONN, None);
        }
        let e = &mut self.edges[edge];
        let (from, first_host, own) = (e.from, e.first_host, e.caller.is_some());
        let Some(cs) = e.conns.as_mut() else {
            return (leave, NO_CONN, None);
        };
        if own {
            let caller = self.reqs[self.calls[id].parent].instance;
            cs.pool.set_owner(self.insts[caller as usize].epoch);
        }
        let host = instance - first_host;
        let epoch = self.insts[instance as usize].epoch;
        if let Some(lease) = cs.pool.acquire(&cs.cfg, leave, host, epoch) {
            return (leave.max(lease.ready_at), lease.conn, None);
        }
        // A new connection: TCP's round trip, then TLS 1.3's round trip and handshake work.
        let (cfg, mtls) = (cs.cfg, cs.mtls);
        let connect = delay.map(|d| {
            let rtt = 2 * d.0;
            let tls = match (mtls, self.mesh.as_mut(), self.spec.mesh.as_ref()) {
                (true, Some(m), Some(ms)) => {
                    m.tally[from as usize].handshakes += 1;
                    rtt + m.handshake(ms, from).0
                }
                _ => 0,
            };
            SimDuration(rtt + tls)
        });
        let fails = match connect {
            Some(c) if c <= cfg.connect_timeout => None,
            _ => Some(leave.after(cfg.connect_timeout)),
        };
        let ready = leave.after(connect.unwrap_or(cfg.connect_timeout));
        let cs = self.edges[edge].conns.as_mut().expect("pooled");
        let lease = cs.pool.connect(&cfg, leave, host, epoch, ready);
        (ready, lease.conn, fails)
    }

    /// The attempt `id` reached its instance's inbound sidecar: `true` when it goes on to
    /// the instance now; otherwise the proxy answered it or holds it.
    pub(super) fn inbound_proxy(&mut self, now: SimTime, id: ReqId) -> bool {
        let r = &mut self.reqs[id];
        if r.denied {
            r.denied = false;
            r.code = Code::Forbidden;
            self.respond(now, id, Outcome::Rejected);
            return false;
        }
        if !r.proxy_in {
            return true;
        }
        r.proxy_in = false;
        let (inst, svc) = (r.instance, r.service);
        let Origin::Call { call } = r.origin else {
            return true;
        };
        let from = self.sites[self.calls[call].site as usize].from;
        let (Some(m), Some(ms)) = (self.mesh.as_mut(), self.spec.mesh.as_ref()) else {
            return true;
        };
        match m.inbound(ms, now, inst, svc, from) {
            mesh::Hop::Direct => true,
            mesh::Hop::Through(t) => {
                self.engine.schedule_at(t, Ev::Deliver { req: id });
                false
            }
            mesh::Hop::Denied(t) => {
                m.tally[svc as usize].denied += 1;
                self.reqs[id].denied = true;
                self.engine.schedule_at(t, Ev::Deliver { req: id });
                false
            }
            mesh::Hop::Overloaded => {
                self.respond(now, id, Outcome::Rejected);
                false
            }
            mesh::Hop::Down => {
                self.reqs[id].code = Code::Refused;
                self.respond(now, id, Outcome::Error);
                false
            }
        }
    }

    /// Gives back the connection an attempt rode; `reset` when it ended without its
    /// response (a timeout, a cancel, a failed connect).
    pub(super) fn release_conn(&mut self, now: SimTime, edge: u32, conn: u32, reset: bool) {
        if conn == NO_CONN {
            return;
        }
        if let Some(cs) = self.edges[edge as usize].conns.as_mut() {
            cs.pool.release(&cs.cfg, now, conn, reset);
        }
    }
}

/// A pair's connections, summed over its caller-side states (`None`: it pools none).
pub(super) fn result(states: &[&Edge]) -> Option<ConnResult> {
    let mut out: Option<ConnResult> = None;
    for cs in states.iter().filter_map(|e| e.conns.as_ref()) {
        let r = out.get_or_insert_with(|| ConnResult {
            mtls: cs.mtls,
            ..ConnResult::default()
        });
        r.stats.add(&cs.pool.stats);
        r.open_at_end += cs.pool.open() as u64;
    }
    out
}
