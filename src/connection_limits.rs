//! How many connections a port keeps open: in all and per remote address. A connection over
//! either cap is closed at once rather than queued, so a flood of connections can neither
//! stop the accept loop nor, with caps below the open-file limit (checked at start-up),
//! exhaust the process's file descriptors.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge};

use crate::identity::address_block;

/// The open connections, by port.
const CONNECTIONS_OPEN: &str = "cardlookup_connections_open";
/// Connections closed on arrival or before their first request, by port and reason.
const CONNECTIONS_REFUSED: &str = "cardlookup_connections_refused_total";
/// Connections that ended at or past their port's maximum age, by port.
const CONNECTIONS_CLOSED_FOR_AGE: &str = "cardlookup_connections_closed_for_age_total";

/// Describes the connection metrics (once is enough; again is harmless).
fn describe_metrics() {
    metrics::describe_gauge!(
        CONNECTIONS_OPEN,
        "Connections open on a port (port: grpc, admin, health, metrics)."
    );
    metrics::describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections closed on arrival or before their first request (reason: total, \
         per_address: over --max-connections or --max-connections-per-address; pending: the \
         oldest of 1,024 connections still starting, closed to make room for a new one; \
         preface_timeout: no HTTP/2 preface in time)."
    );
    metrics::describe_counter!(
        CONNECTIONS_CLOSED_FOR_AGE,
        "Connections that ended at or past --max-connection-age (moved by its jitter) after they \
         were accepted: closed by the server's GOAWAY and grace for their age, by port."
    );
}

/// The caps of one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    pub max_total: usize,
    pub max_per_address: usize,
}

/// Why a connection was closed before it served anything; the metric's `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Total,
    PerAddress,
    Pending,
    PrefaceTimeout,
}

impl Refused {
    const ALL: [Self; 4] = [
        Self::Total,
        Self::PerAddress,
        Self::Pending,
        Self::PrefaceTimeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Total => "total",
            Self::PerAddress => "per_address",
            Self::Pending => "pending",
            Self::PrefaceTimeout => "preface_timeout",
        }
    }
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// An address leaves the map when its last connection closes, so the map is never larger
    /// than the open connections.
    by_address: HashMap<IpAddr, usize>,
}

/// The open connections of one port, counted in all and per address.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    port: &'static str,
    caps: ConnectionCaps,
    open: Mutex<Open>,
    gauge: Gauge,
    refused: [Counter; Refused::ALL.len()],
    /// The port's maximum connection age, and the counter of connections that reached it.
    aged: Option<(Duration, Counter)>,
}

impl ConnectionLimits {
    /// Limits for the port named `port` (the metrics' `port` label).
    pub(crate) fn new(port: &'static str, caps: ConnectionCaps) -> Arc<Self> {
        Self::build(port, caps, None)
    }

    /// Limits for a port whose server closes connections at `max_age`: a connection that ends
    /// at least `max_age` after it was accepted is counted as closed for its age. tonic gives
    /// no hook when it sends the GOAWAY, so the end of the connection tells: the server's age
    /// timer starts once the connection is handed over, a little after it was accepted, so a
    /// connection closed for its age always lived at least that long, and one that lived that
    /// long got the GOAWAY whoever closed it in the end.
    pub(crate) fn with_max_age(
        port: &'static str,
        caps: ConnectionCaps,
        max_age: Duration,
    ) -> Arc<Self> {
        Self::build(port, caps, Some(max_age))
    }

    fn build(port: &'static str, caps: ConnectionCaps, max_age: Option<Duration>) -> Arc<Self> {
        describe_metrics();
        Arc::new(Self {
            port,
            caps,
            open: Mutex::default(),
            gauge: metrics::gauge!(CONNECTIONS_OPEN, "port" => port),
            refused: Refused::ALL.map(|reason| {
                metrics::counter!(CONNECTIONS_REFUSED, "port" => port, "reason" => reason.label())
            }),
            aged: max_age.map(|age| {
                let counter = metrics::counter!(CONNECTIONS_CLOSED_FOR_AGE, "port" => port);
                // At 0 from the start, so that rate() sees the first one.
                counter.increment(0);
                (age, counter)
            }),
        })
    }

    /// The port's name, for its other metrics.
    pub(crate) fn port(&self) -> &'static str {
        self.port
    }

    /// Counts a connection from `address` in, or says which cap it is over (and counts that).
    /// An IPv6 address counts as its /64 ([`address_block`]): one host has a whole block.
    pub(crate) fn admit(self: &Arc<Self>, address: IpAddr) -> Result<ConnectionSlot, Refused> {
        let address = address_block(address);
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.total >= self.caps.max_total {
            return Err(self.refuse(Refused::Total));
        }
        let of_address = open.by_address.get(&address).copied().unwrap_or(0);
        if of_address >= self.caps.max_per_address {
            return Err(self.refuse(Refused::PerAddress));
        }
        open.by_address.insert(address, of_address + 1);
        open.total += 1;
        // Increments rather than a set: tests run several servers in one process.
        self.gauge.increment(1.0);
        Ok(ConnectionSlot {
            limits: Arc::clone(self),
            address,
            accepted: Instant::now(),
        })
    }

    /// Counts a connection closed for `reason`, and returns the reason.
    pub(crate) fn refuse(&self, reason: Refused) -> Refused {
        self.refused[reason as usize].increment(1);
        reason
    }

    fn release(&self, address: IpAddr, accepted: Instant) {
        if let Some((max_age, closed_for_age)) = &self.aged
            && accepted.elapsed() >= *max_age
        {
            closed_for_age.increment(1);
        }
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(of_address) = open.by_address.get_mut(&address) {
            *of_address -= 1;
            if *of_address == 0 {
                open.by_address.remove(&address);
            }
        }
        open.total -= 1;
        self.gauge.decrement(1.0);
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.open.lock().unwrap().by_address.len()
    }
}

/// File descriptors the process keeps open besides connections (listeners, the runtime, data
/// and certificate files, the watcher), with room to spare.
const FILES_BESIDES_CONNECTIONS: u64 = 100;

/// Warns when the caps of `ports` ports allow more connections than the process may open files
/// (Linux's soft limit, `ulimit -n`): past the limit accepts fail on every port, `/metrics` too,
/// so the caps would not protect anything.
pub(crate) fn warn_if_over_file_limit(caps: ConnectionCaps, ports: usize) {
    let Some(limit) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| open_file_limit(&limits))
    else {
        return;
    };
    let wanted = (caps.max_total as u64).saturating_mul(ports as u64) + FILES_BESIDES_CONNECTIONS;
    if wanted > limit {
        tracing::warn!(
            open_file_limit = limit,
            max_connections = caps.max_total,
            ports,
            "--max-connections on every port allows more connections than the process may open \
             files; lower it below the limit divided by the ports, or raise the limit"
        );
    }
}

/// The soft "Max open files" of a `/proc/<pid>/limits` text; `None` when unlimited or absent.
fn open_file_limit(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One open connection's place under the caps, given back when dropped (when the server drops
/// the connection).
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    address: IpAddr,
    accepted: Instant,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.release(self.address, self.accepted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_open_file_limit_is_the_soft_one() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(open_file_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(open_file_limit(unlimited), None);
        assert_eq!(open_file_limit(""), None);
    }

    #[test]
    fn caps_count_and_slots_give_back() {
        let limits = ConnectionLimits::new(
            "test",
            ConnectionCaps {
                max_total: 3,
                max_per_address: 2,
            },
        );
        let a1 = limits.admit(ip("10.0.0.1")).unwrap();
        let a2 = limits.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(
            limits.admit(ip("10.0.0.1")).unwrap_err(),
            Refused::PerAddress
        );
        let b = limits.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(limits.admit(ip("10.0.0.3")).unwrap_err(), Refused::Total);
        // A refused address leaves no entry behind.
        assert_eq!(limits.addresses(), 2);
        drop(a1);
        let again = limits.admit(ip("10.0.0.1")).unwrap();
        drop((a2, again, b));
        assert_eq!(
            limits.addresses(),
            0,
            "addresses with no connection are forgotten"
        );
        assert!(limits.admit(ip("10.0.0.3")).is_ok());
    }

    #[test]
    fn an_ipv6_host_is_capped_as_its_64_block() {
        let limits = ConnectionLimits::new(
            "test",
            ConnectionCaps {
                max_total: 10,
                max_per_address: 2,
            },
        );
        let _first = limits.admit(ip("2001:db8:1:2::1")).unwrap();
        let _second = limits.admit(ip("2001:db8:1:2::ffff")).unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8:1:2:abcd::9")).unwrap_err(),
            Refused::PerAddress
        );
        assert!(limits.admit(ip("2001:db8:1:3::1")).is_ok());
    }
}
