//! Who a call comes from. Admission works it out (certificate, trusted `x-client-id` header or
//! peer address) and puts it into the request's extensions; the request layer, card-testing
//! detection and the call's log line read it. A leaf module, so that each of them can name the
//! type without importing the others.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// Who a call comes from: the mTLS certificate's common name (else subject); else the
/// `x-client-id` header when the peer's network is trusted to name its callers; else the
/// peer's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The identity the service trusts: rate limits, the per-client share of the concurrency
    /// limit and card-testing detection are kept per `id`.
    pub id: Arc<str>,
    /// The rate-limit class: a configured one, or `default`.
    pub class: Arc<str>,
    /// The `x-client-id` an untrusted caller sent: it labels the call in logs, inside the
    /// budget of `id`, and buys nothing.
    pub label: Option<Arc<str>>,
}

/// The block of addresses one caller is taken to have: an IPv4 address alone; an IPv6
/// address's /64 network, the block one host or customer is given, so that a host rotating
/// through the addresses of its own network stays one caller. An IPv4 address mapped into IPv6
/// is the IPv4 address.
#[must_use]
pub fn address_block(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// The identity of a caller known only by its address: its [`address_block`], an IPv6 block
/// written with its prefix length (`2001:db8:1:2::/64`).
#[must_use]
pub fn address_identity(ip: IpAddr) -> String {
    match address_block(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{v6}/64"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_caller_is_its_64_network_and_ipv4_is_itself() {
        let identity = |text: &str| address_identity(text.parse().unwrap());
        assert_eq!(identity("10.1.2.3"), "10.1.2.3");
        assert_eq!(identity("::ffff:10.1.2.3"), "10.1.2.3");
        assert_eq!(identity("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            identity("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            identity("2001:db8:1:2::7")
        );
        assert_ne!(identity("2001:db8:1:3::1"), identity("2001:db8:1:2::1"));
    }
}
