//! Connection pools (POLICIES.md §7.3–7.4): which connection an attempt rides, when a new one is opened (paying its connect and TLS handshake), and when connections close: HTTP/1.1 one request at a time, HTTP/2 multiplexed streams, max_requests_per_connection, idle timeout, resets, and churn when either end restarts.
//!
//! One `Pool` belongs to one caller-side state (a caller instance's proxy or client, or the
//! shared one) and covers every host of its callee. Hosts are small indices chosen by the
//! caller; an `epoch` per host says which incarnation of the host a connection was made
//! to, so a restarted or replaced host never receives a request on a dead connection.
//! Limits on connections and pending requests are the Envoy bulkhead's (`bulkhead.rs`);
//! this machine decides reuse and pays the handshakes.

use crate::time::{SimDuration, SimTime};

/// The wire protocol between the two ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// One request at a time per connection (keep-alive reuses it afterwards).
    Http1,
    /// Requests multiplexed as streams, up to `max_concurrent_streams` per connection.
    Http2,
}

/// Parameters of a pool (Istio `DestinationRule.connectionPool` defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Protocol (Istio's default between sidecars: HTTP/1.1, no h2 upgrade).
    pub protocol: Protocol,
    /// Requests a connection carries before it is closed; 0 = unlimited (Istio default),
    /// 1 disables keep-alive.
    pub max_requests_per_connection: u32,
    /// HTTP/2 streams per connection (Istio default 2^31 − 1).
    pub max_concurrent_streams: u32,
    /// A connection not established within this fails the attempt (Istio default 10 s).
    pub connect_timeout: SimDuration,
    /// An idle connection is closed after this (Istio default 1 h).
    pub idle_timeout: SimDuration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            protocol: Protocol::Http1,
            max_requests_per_connection: 0,
            max_concurrent_streams: (1 << 31) - 1,
            connect_timeout: SimDuration(10 * crate::time::NS_PER_S),
            idle_timeout: SimDuration(3600 * crate::time::NS_PER_S),
        }
    }
}

/// What a pool did, over its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections opened (each paid a connect and, under mTLS, a handshake).
    pub opened: u64,
    /// Requests that rode an existing connection.
    pub reused: u64,
    /// Closed after max_requests_per_connection.
    pub closed_limit: u64,
    /// Closed idle (idle_timeout).
    pub closed_idle: u64,
    /// Closed by a reset (an HTTP/1.1 request timed out or was cancelled mid-response, a
    /// connect failed).
    pub closed_reset: u64,
    /// Lost because an end restarted, crashed or left (churn).
    pub closed_churn: u64,
}

impl Stats {
    /// Adds `o`'s counters to these.
    pub fn add(&mut self, o: &Stats) {
        self.opened += o.opened;
        self.reused += o.reused;
        self.closed_limit += o.closed_limit;
        self.closed_idle += o.closed_idle;
        self.closed_reset += o.closed_reset;
        self.closed_churn += o.closed_churn;
    }
}

#[derive(Clone, Debug)]
struct Conn {
    host: u32,
    epoch: u32,
    /// Established (requests before it wait for it).
    ready_at: SimTime,
    active: u32,
    served: u32,
    last_used: SimTime,
    /// No longer offered (its host changed, or it was reset); freed when `active` is 0.
    dead: bool,
}

/// The connection a request rides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Its id, to give back to [`Pool::release`].
    pub conn: u32,
    /// When the connection is established (≤ now for a ready one).
    pub ready_at: SimTime,
}

/// The connections of one caller-side state to one callee's hosts.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    conns: Vec<Conn>,
    free: Vec<u32>,
    /// Live connections of each host, oldest first.
    by_host: Vec<Vec<u32>>,
    /// The owner's incarnation: a restarted caller starts with no connections.
    owner_epoch: u32,
    /// Counters.
    pub stats: Stats,
}

impl Pool {
    /// Connections currently open (established, connecting, or closing once their last
    /// request ends).
    pub fn open(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    /// The owner's incarnation is `epoch`: if it changed, every connection is gone.
    pub fn set_owner(&mut self, epoch: u32) {
        if self.owner_epoch == epoch {
            return;
        }
        self.owner_epoch = epoch;
        for h in 0..self.by_host.len() {
            for id in std::mem::take(&mut self.by_host[h]) {
                self.stats.closed_churn += 1;
                self.kill(id);
            }
        }
    }

    /// A connection to `host` (incarnation `epoch`) that can take a request now, if any:
    /// HTTP/1.1 needs an idle one, HTTP/2 one with a free stream. Dead and idle-expired
    /// connections of the host are closed on the way.
    pub fn acquire(&mut self, cfg: &Config, now: SimTime, host: u32, epoch: u32) -> Option<Lease> {
        let h = host as usize;
        if self.by_host.len() <= h {
            self.by_host.resize_with(h + 1, Vec::new);
        }
        let mut i = 0;
        while i < self.by_host[h].len() {
            let id = self.by_host[h][i];
            let c = &self.conns[id as usize];
            let churned = c.epoch != epoch;
            let idle = c.active == 0 && now.since(c.last_used) >= cfg.idle_timeout;
            if churned || idle {
                if churned {
                    self.stats.closed_churn += 1;
                } else {
                    self.stats.closed_idle += 1;
                }
                self.by_host[h].remove(i);
                self.kill(id);
                continue;
            }
            let room = match cfg.protocol {
                Protocol::Http1 => c.active == 0,
                Protocol::Http2 => c.active < cfg.max_concurrent_streams,
            };
            if room {
                let c = &mut self.conns[id as usize];
                c.active += 1;
                c.served += 1;
                self.stats.reused += 1;
                let lease = Lease {
                    conn: id,
                    ready_at: c.ready_at,
                };
                if cfg.max_requests_per_connection > 0
                    && c.served >= cfg.max_requests_per_connection
                {
                    // Its last request: offered to nobody else, closed when it ends.
                    self.by_host[h].remove(i);
                    self.conns[id as usize].dead = true;
                }
                return Some(lease);
            }
            i += 1;
        }
        None
    }

    /// Opens a connection to `host` (incarnation `epoch`), established at `ready_at`, and
    /// puts the request on it.
    pub fn connect(
        &mut self,
        cfg: &Config,
        now: SimTime,
        host: u32,
        epoch: u32,
        ready_at: SimTime,
    ) -> Lease {
        let conn = Conn {
            host,
            epoch,
            ready_at,
            active: 1,
            served: 1,
            last_used: now,
            dead: cfg.max_requests_per_connection == 1,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.conns[id as usize] = conn;
                id
            }
            None => {
                self.conns.push(conn);
                (self.conns.len() - 1) as u32
            }
        };
        if self.by_host.len() <= host as usize {
            self.by_host.resize_with(host as usize + 1, Vec::new);
        }
        if !self.conns[id as usize].dead {
            self.by_host[host as usize].push(id);
        }
        self.stats.opened += 1;
        Lease { conn: id, ready_at }
    }

    /// The request on `conn` ended at `now`; `reset` when it ended without a complete
    /// response (timed out, cancelled, connect failed), which closes an HTTP/1.1
    /// connection (the response may still arrive on it) or one that never connected.
    pub fn release(&mut self, cfg: &Config, now: SimTime, conn: u32, reset: bool) {
        let c = &mut self.conns[conn as usize];
        c.active -= 1;
        c.last_used = now;
        let never_ready = c.ready_at > now;
        let closes = reset && (cfg.protocol == Protocol::Http1 || never_ready);
        if closes && !c.dead {
            self.stats.closed_reset += 1;
            let h = c.host as usize;
            self.by_host[h].retain(|&id| id != conn);
            self.conns[conn as usize].dead = true;
        } else if c.dead
            && c.active == 0
            && cfg.max_requests_per_connection > 0
            && c.served >= cfg.max_requests_per_connection
        {
            self.stats.closed_limit += 1;
        }
        if self.conns[conn as usize].dead && self.conns[conn as usize].active == 0 {
            self.free.push(conn);
        }
    }

    /// Takes a connection out of service; its slot is reused once nothing rides it.
    fn kill(&mut self, id: u32) {
        let c = &mut self.conns[id as usize];
        c.dead = true;
        if c.active == 0 {
            self.free.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MS: u64 = 1_000_000;

    fn t(ms: u64) -> SimTime {
        SimTime(ms * MS)
    }

    fn open_or_reuse(p: &mut Pool, cfg: &Config, now: SimTime, host: u32) -> (Lease, bool) {
        match p.acquire(cfg, now, host, 0) {
            Some(l) => (l, false),
            None => (
                p.connect(cfg, now, host, 0, now.after(SimDuration(MS))),
                true,
            ),
        }
    }

    #[test]
    fn http1_keep_alive_reuses_one_connection_for_sequential_requests() {
        let cfg = Config::default();
        let mut p = Pool::default();
        for k in 0..10 {
            let (l, new) = open_or_reuse(&mut p, &cfg, t(10 * k), 0);
            assert_eq!(new, k == 0);
            p.release(&cfg, t(10 * k + 5), l.conn, false);
        }
        assert_eq!((p.stats.opened, p.stats.reused), (1, 9));
    }

    #[test]
    fn http1_concurrent_requests_each_need_a_connection_http2_shares_one() {
        let mut p = Pool::default();
        let cfg = Config::default();
        for _ in 0..4 {
            open_or_reuse(&mut p, &cfg, t(0), 0);
        }
        assert_eq!(p.stats.opened, 4);
        let cfg2 = Config {
            protocol: Protocol::Http2,
            ..Config::default()
        };
        let mut p2 = Pool::default();
        for _ in 0..4 {
            open_or_reuse(&mut p2, &cfg2, t(0), 0);
        }
        assert_eq!(p2.stats.opened, 1, "streams ride the connecting connection");
    }

    #[test]
    fn http2_opens_another_connection_past_max_concurrent_streams() {
        let cfg = Config {
            protocol: Protocol::Http2,
            max_concurrent_streams: 2,
            ..Config::default()
        };
        let mut p = Pool::default();
        for _ in 0..5 {
            open_or_reuse(&mut p, &cfg, t(0), 0);
        }
        assert_eq!(p.stats.opened, 3);
    }

    #[test]
    fn max_requests_per_connection_1_disables_keep_alive() {
        let cfg = Config {
            max_requests_per_connection: 1,
            ..Config::default()
        };
        let mut p = Pool::default();
        for k in 0..5 {
            let (l, new) = open_or_reuse(&mut p, &cfg, t(10 * k), 0);
            assert!(new);
            p.release(&cfg, t(10 * k + 5), l.conn, false);
        }
        assert_eq!((p.stats.opened, p.stats.closed_limit), (5, 5));
        assert_eq!(p.open(), 0);
        assert_eq!(p.conns.len(), 1, "the slot is reused");
    }

    #[test]
    fn idle_connections_close_after_the_idle_timeout() {
        let cfg = Config {
            idle_timeout: SimDuration(100 * MS),
            ..Config::default()
        };
        let mut p = Pool::default();
        let (l, _) = open_or_reuse(&mut p, &cfg, t(0), 0);
        p.release(&cfg, t(10), l.conn, false);
        assert!(
            !open_or_reuse(&mut p, &cfg, t(109), 0).1,
            "idle 99 ms: reused"
        );
        let mut p = Pool::default();
        let (l, _) = open_or_reuse(&mut p, &cfg, t(0), 0);
        p.release(&cfg, t(10), l.conn, false);
        assert!(
            open_or_reuse(&mut p, &cfg, t(110), 0).1,
            "idle 100 ms: closed"
        );
        assert_eq!(p.stats.closed_idle, 1);
    }

    #[test]
    fn a_restarted_host_or_owner_gets_new_connections() {
        let cfg = Config::default();
        let mut p = Pool::default();
        let (l, _) = open_or_reuse(&mut p, &cfg, t(0), 0);
        p.release(&cfg, t(1), l.conn, false);
        assert!(
            p.acquire(&cfg, t(2), 0, 1).is_none(),
            "host epoch 1: old conn dropped"
        );
        assert_eq!(p.stats.closed_churn, 1);
        let l = p.connect(&cfg, t(2), 0, 1, t(3));
        p.release(&cfg, t(4), l.conn, false);
        p.set_owner(7);
        assert_eq!((p.open(), p.stats.closed_churn), (0, 2));
    }

    #[test]
    fn a_reset_closes_an_http1_connection_but_only_the_stream_under_http2() {
        let cfg = Config::default();
        let mut p = Pool::default();
        let (l, _) = open_or_reuse(&mut p, &cfg, t(0), 0);
        p.release(&cfg, t(5), l.conn, true);
        assert_eq!((p.open(), p.stats.closed_reset), (0, 1));
        let cfg2 = Config {
            protocol: Protocol::Http2,
            ..Config::default()
        };
        let mut p = Pool::default();
        let (l, _) = open_or_reuse(&mut p, &cfg2, t(0), 0);
        p.release(&cfg2, t(5), l.conn, true);
        assert_eq!(p.open(), 1);
    }

    #[test]
    fn a_connection_in_use_when_its_host_changes_is_freed_only_when_its_request_ends() {
        let cfg = Config::default();
        let mut p = Pool::default();
        let (a, _) = open_or_reuse(&mut p, &cfg, t(0), 0);
        assert!(p.acquire(&cfg, t(1), 0, 1).is_none());
        let b = p.connect(&cfg, t(1), 0, 1, t(2));
        assert_ne!(a.conn, b.conn, "the busy slot is not handed out again");
        p.release(&cfg, t(3), a.conn, false);
        let c = p.connect(&cfg, t(4), 0, 1, t(5));
        assert_eq!(c.conn, a.conn, "freed once its request ended");
    }
}
